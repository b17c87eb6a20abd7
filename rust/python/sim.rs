//! Bindings of the simulator (`qcore.sim`, `qcore.simulate`, `qcore.capacity`):
//! argument conversion, GIL release and error mapping only.

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::convert::slice;
use crate::sim::{
    self, ArrivalProcess, BatchTime, Batching, Discipline, Dist, Method, Recorder, RunStats,
    SimConfig,
};

/// A distribution spec from `qcore.sim`: `(kind, a, b, values)`.
pub(crate) type DistSpec<'py> = (String, f64, f64, Option<PyReadonlyArray1<'py, f64>>);

fn values(v: Option<&PyReadonlyArray1<'_, f64>>, name: &str) -> PyResult<Vec<f64>> {
    match v {
        Some(a) => Ok(slice(a, name)?.to_vec()),
        None => Err(super::errors::InvalidArgumentError::new_err(format!(
            "{name} is missing its values"
        ))),
    }
}

pub(crate) fn dist_from(spec: &DistSpec<'_>, name: &str) -> PyResult<Dist> {
    let (kind, a, b, v) = spec;
    let d = match kind.as_str() {
        "exponential" => Dist::exponential(*a)?,
        "deterministic" => Dist::deterministic(*a)?,
        "gamma" => Dist::gamma(*a, *b)?,
        "lognormal" => Dist::lognormal(*a, *b)?,
        "empirical" => Dist::empirical(values(v.as_ref(), "samples")?)?,
        "sequence" => Dist::sequence(values(v.as_ref(), name)?, name)?,
        other => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "{name} has an unknown distribution kind {other:?}"
            )))
        }
    };
    Ok(d)
}

/// An arrival spec: `(kind, a, b, c, d, x, y, dist)`.
pub(crate) type ArrivalSpec<'py> = (
    String,
    f64,
    f64,
    f64,
    f64,
    Option<PyReadonlyArray1<'py, f64>>,
    Option<PyReadonlyArray1<'py, f64>>,
    Option<DistSpec<'py>>,
);

pub(crate) fn arrivals_from(spec: &ArrivalSpec<'_>) -> PyResult<ArrivalProcess> {
    let (kind, a, b, c, d, x, y, dist) = spec;
    let p = match kind.as_str() {
        "poisson" => ArrivalProcess::poisson(*a)?,
        "renewal" => match dist {
            Some(ds) => ArrivalProcess::Renewal {
                interarrival: dist_from(ds, "interarrival")?,
            },
            None => {
                return Err(super::errors::InvalidArgumentError::new_err(
                    "interarrival is missing",
                ))
            }
        },
        "mmpp2" => ArrivalProcess::mmpp2([*a, *b], [*c, *d])?,
        "piecewise" => {
            ArrivalProcess::piecewise(values(x.as_ref(), "times")?, values(y.as_ref(), "rates")?)?
        }
        "trace" => ArrivalProcess::trace(values(x.as_ref(), "timestamps")?)?,
        other => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "arrivals has an unknown kind {other:?}"
            )))
        }
    };
    Ok(p)
}

/// Batching: `(max_batch_size, max_batch_wait, fixed, per_item, table)`.
type BatchSpec<'py> = (usize, f64, f64, f64, Option<PyReadonlyArray1<'py, f64>>);

/// Validate a distribution spec; returns `(mean, squared cv)`.
#[pyfunction]
fn _sim_check_dist(spec: DistSpec<'_>, name: &str) -> PyResult<(f64, f64)> {
    let d = dist_from(&spec, name)?;
    Ok((d.mean(), d.scv()))
}

/// Validate an arrival spec; returns the long-run rate (or None).
#[pyfunction]
fn _sim_check_arrivals(spec: ArrivalSpec<'_>) -> PyResult<Option<f64>> {
    let p = arrivals_from(&spec)?;
    p.check()?;
    Ok(p.mean_rate())
}

/// `(lo, mean, hi)` Student-t confidence interval of the mean of `values`.
#[pyfunction]
fn _sim_mean_ci(values: PyReadonlyArray1<'_, f64>, confidence: f64) -> PyResult<(f64, f64, f64)> {
    Ok(sim::mean_ci(slice(&values, "values")?, confidence)?)
}

fn recorder_to_py<'py>(py: Python<'py>, r: &Recorder) -> Bound<'py, PyAny> {
    PyBytes::new(py, &r.sketch().to_bytes()).into_any()
}

fn stats_to_py(py: Python<'_>, s: RunStats) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("arrived", s.arrived)?;
    d.set_item("completed", s.completed)?;
    d.set_item("blocked", s.blocked)?;
    d.set_item("timed_out", s.timed_out)?;
    d.set_item("shed", s.shed)?;
    d.set_item("unfinished", s.unfinished)?;
    d.set_item("served", s.served)?;
    d.set_item("waited", s.waited)?;
    d.set_item("mean_wait", s.mean_wait())?;
    d.set_item("mean_response", s.mean_response())?;
    d.set_item("p_wait", s.p_wait())?;
    d.set_item("utilization", s.utilization())?;
    d.set_item("mean_in_system", s.mean_in_system())?;
    d.set_item("mean_in_queue", s.mean_in_queue())?;
    d.set_item("throughput", s.throughput())?;
    d.set_item("t0", s.t0)?;
    d.set_item("t_end", s.t_end)?;
    d.set_item("duration", s.duration())?;
    d.set_item("t_last", s.t_last)?;
    d.set_item("window", s.window())?;
    d.set_item("server_time", s.server_time)?;
    d.set_item("fast_path", s.fast_path)?;
    d.set_item("response", recorder_to_py(py, &s.response))?;
    d.set_item("wait", recorder_to_py(py, &s.wait))?;
    if let Some(r) = s.records {
        let rec = PyDict::new(py);
        let id: Vec<i64> = r.id.iter().map(|&x| x as i64).collect();
        rec.set_item("id", id.into_pyarray(py))?;
        rec.set_item("arrival", r.arrival.into_pyarray(py))?;
        rec.set_item("start", r.start.into_pyarray(py))?;
        rec.set_item("end", r.end.into_pyarray(py))?;
        rec.set_item("status", r.status.into_pyarray(py))?;
        d.set_item("records", rec)?;
    } else {
        d.set_item("records", py.None())?;
    }
    Ok(d)
}

/// Simulation options gathered by `qcore.sim.simulate`.
#[allow(clippy::too_many_arguments)]
fn build_config(
    arrivals: &ArrivalSpec<'_>,
    service: Option<&DistSpec<'_>>,
    servers: usize,
    customers: u64,
    warmup: u64,
    seed: u64,
    discipline: &str,
    queue_capacity: Option<usize>,
    patience: Option<&DistSpec<'_>>,
    batching: Option<&BatchSpec<'_>>,
    schedule: Option<&(PyReadonlyArray1<'_, f64>, PyReadonlyArray1<'_, i64>)>,
    startup_delay: Option<&DistSpec<'_>>,
    records: bool,
    relative_accuracy: f64,
) -> PyResult<SimConfig> {
    let arrivals = arrivals_from(arrivals)?;
    let service = service
        .as_ref()
        .map(|s| dist_from(s, "service"))
        .transpose()?;
    let mut cfg = SimConfig::new(arrivals, service, servers, customers);
    cfg.warmup = warmup;
    cfg.seed = seed;
    cfg.discipline = match discipline {
        "fcfs" => Discipline::Fcfs,
        "lifo" => Discipline::Lifo,
        other => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "discipline must be 'fcfs' or 'lifo', got {other:?}"
            )))
        }
    };
    cfg.queue_capacity = queue_capacity;
    cfg.patience = patience
        .as_ref()
        .map(|s| dist_from(s, "patience"))
        .transpose()?;
    if let Some((max_size, max_wait, fixed, per_item, table)) = batching {
        let time = match table {
            Some(t) => BatchTime::Table(slice(t, "batch_service")?.to_vec()),
            None => BatchTime::Linear {
                fixed: *fixed,
                per_item: *per_item,
            },
        };
        cfg.batching = Some(Batching {
            max_size: *max_size,
            max_wait: *max_wait,
            time,
        });
    }
    if let Some((times, counts)) = schedule {
        let times = slice(times, "server_schedule")?;
        let counts = slice(counts, "server_schedule")?;
        crate::error::check_same_len("times", times.len(), "server counts", counts.len())?;
        let mut sch = Vec::with_capacity(times.len());
        for (i, (&t, &n)) in times.iter().zip(counts).enumerate() {
            if n < 0 {
                return Err(super::errors::InvalidArgumentError::new_err(format!(
                    "server_schedule has a negative server count at entry {i}"
                )));
            }
            sch.push((t, n as usize));
        }
        cfg.schedule = sch;
    }
    cfg.startup_delay = startup_delay
        .as_ref()
        .map(|s| dist_from(s, "startup_delay"))
        .transpose()?;
    cfg.records = records;
    cfg.relative_accuracy = relative_accuracy;
    cfg.validate()?;
    Ok(cfg)
}

/// Run `replications` independent replications; one dict per replication.
#[pyfunction]
#[pyo3(signature = (arrivals, service, servers, customers, warmup, seed, discipline,
    queue_capacity, patience, batching, schedule, startup_delay, records,
    relative_accuracy, replications, method, threads))]
#[allow(clippy::too_many_arguments)]
fn _sim_run<'py>(
    py: Python<'py>,
    arrivals: ArrivalSpec<'py>,
    service: Option<DistSpec<'py>>,
    servers: usize,
    customers: u64,
    warmup: u64,
    seed: u64,
    discipline: &str,
    queue_capacity: Option<usize>,
    patience: Option<DistSpec<'py>>,
    batching: Option<BatchSpec<'py>>,
    schedule: Option<(PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, i64>)>,
    startup_delay: Option<DistSpec<'py>>,
    records: bool,
    relative_accuracy: f64,
    replications: u64,
    method: &str,
    threads: usize,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let cfg = build_config(
        &arrivals,
        service.as_ref(),
        servers,
        customers,
        warmup,
        seed,
        discipline,
        queue_capacity,
        patience.as_ref(),
        batching.as_ref(),
        schedule.as_ref(),
        startup_delay.as_ref(),
        records,
        relative_accuracy,
    )?;
    let method = match method {
        "auto" => Method::Auto,
        "fast" => Method::Fast,
        "event" => Method::Event,
        other => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "method must be 'auto', 'fast' or 'event', got {other:?}"
            )))
        }
    };
    let work = cfg.total().saturating_mul(replications) as usize;
    let runs = super::convert::maybe_detach(py, work, || {
        sim::run_replications(&cfg, replications, method, threads)
    })?;
    runs.into_iter().map(|s| stats_to_py(py, s)).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_sim_check_dist, m)?)?;
    m.add_function(wrap_pyfunction!(_sim_check_arrivals, m)?)?;
    m.add_function(wrap_pyfunction!(_sim_mean_ci, m)?)?;
    m.add_function(wrap_pyfunction!(_sim_run, m)?)?;
    Ok(())
}
