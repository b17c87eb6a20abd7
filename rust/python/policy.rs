//! Bindings of the autoscaling and overload-control policies (`qcore.autoscale`,
//! `qcore.overload`): argument conversion, GIL release and error mapping only.

use std::collections::HashMap;

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::{maybe_detach, slice};
use super::sim::{arrivals_from, dist_from, ArrivalSpec, DistSpec};
use crate::policy::{
    check_servers, discipline as discipline_of, overload_run, Admission, OverloadMetrics,
    PolicySpec, Predictive, PredictiveConfig, Replay, ReplayOptions,
};
use crate::sim::SimConfig;

/// `(kind, numbers, strings)`.
type Spec = (String, HashMap<String, f64>, HashMap<String, String>);

fn policy_spec(spec: Spec) -> PolicySpec {
    let (kind, numbers, strings) = spec;
    PolicySpec {
        kind,
        numbers,
        strings,
    }
}

fn admission_from(
    spec: Option<Spec>,
    classes: Option<&[u8]>,
    seed: u64,
    rep: u64,
) -> PyResult<Admission> {
    match spec {
        None => Ok(Admission::default()),
        Some(s) => Ok(policy_spec(s).admission(classes, seed, rep)?),
    }
}

#[allow(clippy::too_many_arguments)]
fn config(
    arrivals: &ArrivalSpec<'_>,
    service: &DistSpec<'_>,
    servers: usize,
    customers: u64,
    seed: u64,
    startup_delay: Option<&DistSpec<'_>>,
    patience: Option<&DistSpec<'_>>,
    queue_capacity: Option<usize>,
    discipline: &str,
) -> PyResult<SimConfig> {
    let mut cfg = SimConfig::new(
        arrivals_from(arrivals)?,
        Some(dist_from(service, "service")?),
        servers,
        customers,
    );
    cfg.seed = seed;
    cfg.startup_delay = startup_delay
        .as_ref()
        .map(|s| dist_from(s, "startup_delay"))
        .transpose()?;
    cfg.patience = patience
        .as_ref()
        .map(|s| dist_from(s, "patience"))
        .transpose()?;
    cfg.queue_capacity = queue_capacity;
    cfg.discipline = discipline_of(discipline)?;
    check_servers("initial_replicas", servers)?;
    Ok(cfg)
}

fn classes_vec(classes: Option<&PyReadonlyArray1<'_, u8>>) -> PyResult<Option<Vec<u8>>> {
    classes
        .map(|c| Ok(slice(c, "classes")?.to_vec()))
        .transpose()
}

fn replay_to_py(py: Python<'_>, r: Replay) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let w = &r.windows;
    let tl = PyDict::new(py);
    macro_rules! col {
        ($name:expr, $f:expr) => {
            tl.set_item($name, w.iter().map($f).collect::<Vec<_>>().into_pyarray(py))?;
        };
    }
    col!("start", |x| x.start);
    col!("arrivals", |x| x.arrivals as i64);
    col!("completed", |x| x.completed as i64);
    col!("good", |x| x.good as i64);
    col!("dropped", |x| x.dropped as i64);
    col!("latency_q", |x| x.latency_q);
    col!("desired", |x| x.desired);
    col!("ready", |x| x.ready);
    col!("starting", |x| x.starting);
    col!("queue", |x| x.queue);
    col!("queue_max", |x| x.queue_max);
    col!("busy", |x| x.busy);
    d.set_item("timeline", tl)?;
    let t = &r.totals;
    let tot = PyDict::new(py);
    tot.set_item("arrived", t.arrived)?;
    tot.set_item("completed", t.completed)?;
    tot.set_item("dropped", t.dropped)?;
    tot.set_item("slo_attainment", t.slo_attainment)?;
    tot.set_item("p50", t.p50)?;
    tot.set_item("p99", t.p99)?;
    tot.set_item("p999", t.p999)?;
    tot.set_item("replica_seconds", t.replica_seconds)?;
    tot.set_item("mean_replicas", t.mean_replicas)?;
    tot.set_item("scale_events", t.scale_events)?;
    tot.set_item("duration", t.duration)?;
    tot.set_item("shed", r.shed)?;
    d.set_item("totals", tot)?;
    let ev = PyDict::new(py);
    ev.set_item(
        "t",
        r.events
            .iter()
            .map(|e| e.t)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    ev.set_item(
        "from",
        r.events
            .iter()
            .map(|e| e.from as i64)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    ev.set_item(
        "to",
        r.events
            .iter()
            .map(|e| e.to as i64)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    d.set_item("events", ev)?;
    Ok(d)
}

/// Replay an arrival process through an autoscaling policy; a dict with `timeline`
/// (columns), `totals` and `events`.
#[pyfunction]
#[pyo3(signature = (arrivals, service, initial_replicas, customers, seed, startup_delay,
    patience, queue_capacity, discipline, policy, admission, classes, sample_interval,
    window, slo, quantile, replication))]
#[allow(clippy::too_many_arguments)]
fn _policy_replay<'py>(
    py: Python<'py>,
    arrivals: ArrivalSpec<'py>,
    service: DistSpec<'py>,
    initial_replicas: usize,
    customers: u64,
    seed: u64,
    startup_delay: Option<DistSpec<'py>>,
    patience: Option<DistSpec<'py>>,
    queue_capacity: Option<usize>,
    discipline: &str,
    policy: Spec,
    admission: Option<Spec>,
    classes: Option<PyReadonlyArray1<'py, u8>>,
    sample_interval: f64,
    window: f64,
    slo: f64,
    quantile: f64,
    replication: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = config(
        &arrivals,
        &service,
        initial_replicas,
        customers,
        seed,
        startup_delay.as_ref(),
        patience.as_ref(),
        queue_capacity,
        discipline,
    )?;
    let cl = classes_vec(classes.as_ref())?;
    let adm = admission_from(admission, cl.as_deref(), seed, replication)?;
    let opts = ReplayOptions {
        sample_interval,
        window,
        slo,
        quantile,
    };
    let spec = policy_spec(policy);
    let work = cfg.customers as usize;
    let r = maybe_detach(py, work, || spec.replay(&cfg, replication, adm, &opts))?;
    replay_to_py(py, r)
}

fn metrics_to_py<'py>(py: Python<'py>, m: &OverloadMetrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("arrived", m.arrived)?;
    d.set_item("completed", m.completed)?;
    d.set_item("good", m.good)?;
    d.set_item("shed", m.shed)?;
    d.set_item("timed_out", m.timed_out)?;
    d.set_item("goodput", m.goodput)?;
    d.set_item("throughput", m.throughput)?;
    d.set_item("shed_rate", m.shed_rate)?;
    d.set_item("timeout_rate", m.timeout_rate)?;
    d.set_item("p99_admitted", m.p99_admitted)?;
    d.set_item("wasted_work", m.wasted_work)?;
    d.set_item("wasted_fraction", m.wasted_fraction)?;
    d.set_item("duration", m.duration)?;
    Ok(d)
}

/// One overload-control run; a dict with `all` (metrics), `high` / `low` (with classes),
/// `client_throttled` and `final_limit`.
#[pyfunction]
#[pyo3(signature = (arrivals, service, servers, customers, seed, patience, queue_capacity,
    discipline, admission, classes, slo, timeout, replication))]
#[allow(clippy::too_many_arguments)]
fn _policy_overload<'py>(
    py: Python<'py>,
    arrivals: ArrivalSpec<'py>,
    service: DistSpec<'py>,
    servers: usize,
    customers: u64,
    seed: u64,
    patience: Option<DistSpec<'py>>,
    queue_capacity: Option<usize>,
    discipline: &str,
    admission: Option<Spec>,
    classes: Option<PyReadonlyArray1<'py, u8>>,
    slo: f64,
    timeout: f64,
    replication: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = config(
        &arrivals,
        &service,
        servers,
        customers,
        seed,
        None,
        patience.as_ref(),
        queue_capacity,
        discipline,
    )?;
    let cl = classes_vec(classes.as_ref())?;
    let adm = admission_from(admission, cl.as_deref(), seed, replication)?;
    let work = cfg.customers as usize;
    let r = maybe_detach(py, work, || {
        overload_run(&cfg, replication, adm, slo, timeout, cl.as_deref())
    })?;
    let d = PyDict::new(py);
    d.set_item("all", metrics_to_py(py, &r.all)?)?;
    if let Some([hi, lo]) = &r.classes {
        d.set_item("high", metrics_to_py(py, hi)?)?;
        d.set_item("low", metrics_to_py(py, lo)?)?;
    }
    d.set_item("client_throttled", r.client_throttled)?;
    d.set_item("final_limit", r.final_limit)?;
    Ok(d)
}

/// M/M/c provisioning used by the predictive policy: the smallest replica count whose
/// response-time `quantile` is at most `slo` at `rate` (bounded by min/max).
#[pyfunction]
#[pyo3(signature = (rate, service_mean, slo, quantile, on_wait, min_replicas, max_replicas))]
fn _policy_provision(
    rate: f64,
    service_mean: f64,
    slo: f64,
    quantile: f64,
    on_wait: bool,
    min_replicas: usize,
    max_replicas: usize,
) -> PyResult<usize> {
    crate::policy::check_num("rate", rate, 0.0, false)?;
    let mut c = PredictiveConfig::new(service_mean, slo);
    c.quantile = quantile;
    c.on_wait = on_wait;
    c.min_replicas = min_replicas;
    c.max_replicas = max_replicas;
    Ok(Predictive::new(c)?.provision(rate))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_policy_replay, m)?)?;
    m.add_function(wrap_pyfunction!(_policy_overload, m)?)?;
    m.add_function(wrap_pyfunction!(_policy_provision, m)?)?;
    Ok(())
}
