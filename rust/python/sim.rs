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

/// A `qcore.sim` distribution (`Exponential`, `Deterministic`, `Gamma`, `LogNormal`,
/// `Empirical`, `Durations`): the frozen dataclass itself, read by its class's `_kind`
/// and its fields' names.
pub(crate) type DistSpec<'py> = Bound<'py, PyAny>;

/// A `qcore.sim` arrival process (`Poisson`, `Renewal`, `MMPP2`, `PiecewiseRate`,
/// `Trace`), read as [`DistSpec`] is.
pub(crate) type ArrivalSpec<'py> = Bound<'py, PyAny>;

/// The `_kind` of a `qcore.sim` object (`what` names the argument when it has none).
fn kind_of(obj: &Bound<'_, PyAny>, what: &str, of: &str) -> PyResult<String> {
    obj.getattr("_kind")
        .and_then(|k| k.extract::<String>())
        .map_err(|_| {
            super::errors::invalid_type(format!(
                "{what} must be a qcore.sim {of}, got {}",
                obj.get_type()
                    .name()
                    .map_or_else(|_| "?".to_string(), |n| n.to_string())
            ))
        })
}

/// The number in field `field` of `obj`.
fn num(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<f64> {
    obj.getattr(field)?
        .extract::<f64>()
        .map_err(|_| super::errors::invalid_type(format!("{field} must be a number")))
}

/// The float64 array in field `field` of `obj` (`qcore.sim` stores contiguous arrays).
fn values(obj: &Bound<'_, PyAny>, field: &str, name: &str) -> PyResult<Vec<f64>> {
    let a = obj.getattr(field)?;
    let a: PyReadonlyArray1<'_, f64> = a
        .extract()
        .map_err(|_| super::errors::invalid_type(format!("{name} must be a float64 array")))?;
    Ok(slice(&a, name)?.to_vec())
}

/// The pair of numbers in field `field` of `obj`.
fn pair(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<[f64; 2]> {
    let (a, b): (f64, f64) = obj
        .getattr(field)?
        .extract()
        .map_err(|_| super::errors::invalid_type(format!("{field} must hold two numbers")))?;
    Ok([a, b])
}

pub(crate) fn dist_from(spec: &DistSpec<'_>, name: &str) -> PyResult<Dist> {
    let d = match kind_of(spec, name, "distribution")?.as_str() {
        "exponential" => Dist::exponential(num(spec, "mean")?)?,
        "deterministic" => Dist::deterministic(num(spec, "value")?)?,
        "gamma" => Dist::gamma(num(spec, "mean")?, num(spec, "cv")?)?,
        "lognormal" => Dist::lognormal(num(spec, "mean")?, num(spec, "cv")?)?,
        "empirical" => Dist::empirical(values(spec, "samples", "samples")?)?,
        "sequence" => Dist::sequence(values(spec, "values", name)?, name)?,
        other => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "{name} has an unknown distribution kind {other:?}"
            )))
        }
    };
    Ok(d)
}

pub(crate) fn arrivals_from(spec: &ArrivalSpec<'_>) -> PyResult<ArrivalProcess> {
    let p = match kind_of(spec, "arrivals", "arrival process")?.as_str() {
        "poisson" => ArrivalProcess::poisson(num(spec, "rate")?)?,
        "renewal" => ArrivalProcess::Renewal {
            interarrival: dist_from(&spec.getattr("interarrival")?, "interarrival")?,
        },
        "mmpp2" => ArrivalProcess::mmpp2(pair(spec, "rates")?, pair(spec, "switch_rates")?)?,
        "piecewise" => ArrivalProcess::piecewise(
            values(spec, "times", "times")?,
            values(spec, "rates", "rates")?,
        )?,
        "trace" => ArrivalProcess::trace(values(spec, "timestamps", "timestamps")?)?,
        other => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "arrivals has an unknown kind {other:?}"
            )))
        }
    };
    Ok(p)
}

/// Batching, a dict from `qcore.sim`: `max_size`, `max_wait`, and the batch service time
/// as `table` (seconds by batch size) or, without one, `fixed + per_item · size`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct BatchSpec<'py> {
    max_size: usize,
    max_wait: f64,
    fixed: f64,
    per_item: f64,
    table: Option<PyReadonlyArray1<'py, f64>>,
}

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
    if let Some(b) = batching {
        let time = match &b.table {
            Some(t) => BatchTime::Table(slice(t, "batch_service")?.to_vec()),
            None => BatchTime::Linear {
                fixed: b.fixed,
                per_item: b.per_item,
            },
        };
        cfg.batching = Some(Batching {
            max_size: b.max_size,
            max_wait: b.max_wait,
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
