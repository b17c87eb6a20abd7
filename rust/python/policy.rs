//! Bindings of the autoscaling and overload-control policies (`qcore.autoscale`,
//! `qcore.overload`): argument conversion, GIL release and error mapping only.

use std::collections::HashMap;

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::{maybe_detach, slice};
use super::sim::{arrivals_from, dist_from, ArrivalSpec, DistSpec};
use crate::policy::{
    overload_run, replay, AdaptiveLifo, Admission, Aimd, ArrivalRule, ClientThrottle, Codel,
    DequeueRule, Fixed, Gradient2, Hpa, HpaConfig, HpaMetric, Kpa, KpaConfig, KpaMetric,
    OverloadMetrics, Predictive, PredictiveConfig, Replay, ReplayOptions, Rules, Select,
    TargetTracking, TargetTrackingConfig, TokenBucket, TtMetric,
};
use crate::sim::{Discipline, SimConfig};
use crate::sim::{Rng, Stream};

/// `(kind, numbers, strings)`.
type Spec = (String, HashMap<String, f64>, HashMap<String, String>);

struct Params<'a>(&'a HashMap<String, f64>, &'a HashMap<String, String>);

impl Params<'_> {
    fn f(&self, k: &str, default: f64) -> f64 {
        self.0.get(k).copied().unwrap_or(default)
    }
    fn n(&self, k: &str, default: usize) -> PyResult<usize> {
        match self.0.get(k) {
            None => Ok(default),
            Some(&v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 16_777_216.0 => {
                Ok(v as usize)
            }
            Some(v) => Err(super::errors::InvalidArgumentError::new_err(format!(
                "{k} must be a non-negative integer at most 16777216, got {v}"
            ))),
        }
    }
    fn s<'b>(&'b self, k: &str, default: &'b str) -> &'b str {
        self.1.get(k).map_or(default, String::as_str)
    }
}

fn hpa_from(p: &Params<'_>) -> PyResult<Hpa> {
    let mut c = HpaConfig::new(
        HpaMetric::parse(p.s("metric", "utilization"))?,
        p.f("target", 0.7),
    );
    c.min_replicas = p.n("min_replicas", c.min_replicas)?;
    c.max_replicas = p.n("max_replicas", c.max_replicas)?;
    c.sync_period = p.f("sync_period", c.sync_period);
    c.metric_window = p.f("metric_window", c.metric_window);
    c.up.stabilization_window = p.f("up_stabilization", c.up.stabilization_window);
    c.down.stabilization_window = p.f("down_stabilization", c.down.stabilization_window);
    c.up.tolerance = p.f("up_tolerance", c.up.tolerance);
    c.down.tolerance = p.f("down_tolerance", c.down.tolerance);
    if let Some(s) = p.1.get("up_policies") {
        c.up.policies = Rules::parse_policies("up_policies", s)?;
    }
    if let Some(s) = p.1.get("down_policies") {
        c.down.policies = Rules::parse_policies("down_policies", s)?;
    }
    c.up.select = Select::parse("up_select", p.s("up_select", "Max"))?;
    c.down.select = Select::parse("down_select", p.s("down_select", "Max"))?;
    Ok(Hpa::new(c)?)
}

fn kpa_from(p: &Params<'_>) -> PyResult<Kpa> {
    let metric = match p.s("metric", "concurrency") {
        "concurrency" => KpaMetric::Concurrency,
        "rps" => KpaMetric::Rps,
        o => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "metric must be 'concurrency' or 'rps', got {o:?}"
            )))
        }
    };
    let default = if metric == KpaMetric::Rps {
        200.0
    } else {
        100.0
    };
    let mut c = KpaConfig::new(metric, p.f("target", default));
    c.target_utilization = p.f("target_utilization", c.target_utilization);
    c.stable_window = p.f("stable_window", c.stable_window);
    c.panic_window_fraction = p.f("panic_window_fraction", c.panic_window_fraction);
    c.panic_threshold = p.f("panic_threshold", c.panic_threshold);
    c.max_scale_up_rate = p.f("max_scale_up_rate", c.max_scale_up_rate);
    c.max_scale_down_rate = p.f("max_scale_down_rate", c.max_scale_down_rate);
    c.tick = p.f("tick", c.tick);
    c.scale_to_zero_grace = p.f("scale_to_zero_grace", c.scale_to_zero_grace);
    c.scale_down_delay = p.f("scale_down_delay", c.scale_down_delay);
    c.min_scale = p.n("min_scale", c.min_scale)?;
    c.max_scale = p.n("max_scale", c.max_scale)?;
    Ok(Kpa::new(c)?)
}

fn tt_from(p: &Params<'_>) -> PyResult<TargetTracking> {
    let metric = match p.s("metric", "rate") {
        "rate" => TtMetric::RatePerReplica,
        "latency" => {
            let q = p.f("quantile", f64::NAN);
            TtMetric::Latency((!q.is_nan()).then_some(q))
        }
        o => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "metric must be 'rate' or 'latency', got {o:?}"
            )))
        }
    };
    let mut c = TargetTrackingConfig::new(metric, p.f("target", f64::NAN));
    c.period = p.f("period", c.period);
    c.out_points = p.n("out_points", c.out_points)?;
    c.in_points = p.n("in_points", c.in_points)?;
    c.scale_in_margin = p.f("scale_in_margin", c.scale_in_margin);
    c.scale_out_cooldown = p.f("scale_out_cooldown", c.scale_out_cooldown);
    c.scale_in_cooldown = p.f("scale_in_cooldown", c.scale_in_cooldown);
    c.disable_scale_in = p.f("disable_scale_in", 0.0) != 0.0;
    c.min_replicas = p.n("min_replicas", c.min_replicas)?;
    c.max_replicas = p.n("max_replicas", c.max_replicas)?;
    Ok(TargetTracking::new(c)?)
}

fn predictive_from(p: &Params<'_>) -> PyResult<Predictive> {
    let mut c = PredictiveConfig::new(p.f("service_mean", f64::NAN), p.f("slo", f64::NAN));
    c.quantile = p.f("quantile", c.quantile);
    c.on_wait = p.f("on_wait", 0.0) != 0.0;
    c.period = p.f("period", c.period);
    c.alpha = p.f("alpha", c.alpha);
    c.beta = p.f("beta", c.beta);
    c.lead = p.f("lead", c.lead);
    c.headroom = p.f("headroom", c.headroom);
    c.down_window = p.f("down_window", c.down_window);
    c.min_replicas = p.n("min_replicas", c.min_replicas)?;
    c.max_replicas = p.n("max_replicas", c.max_replicas)?;
    Ok(Predictive::new(c)?)
}

fn admission_from(
    spec: Option<&Spec>,
    classes: Option<Vec<u8>>,
    seed: u64,
    rep: u64,
) -> PyResult<Admission> {
    let Some((kind, nums, strs)) = spec else {
        return Ok(Admission::default());
    };
    let p = Params(nums, strs);
    let client = if p.f("client_throttle", 0.0) == 0.0 {
        None
    } else {
        Some(ClientThrottle::new(
            p.f("k", 2.0),
            p.f("throttle_window", 120.0),
            Rng::stream(seed, rep, Stream::Control),
        )?)
    };
    let arrival = match p.s("arrival", "none") {
        "none" => ArrivalRule::None,
        "drop_tail" => ArrivalRule::DropTail {
            limit: p.n("queue_limit", 0)?,
        },
        "token_bucket" => ArrivalRule::TokenBucket(TokenBucket::new(
            p.f("rate", f64::NAN),
            p.f("burst", f64::NAN),
        )?),
        "aimd" => ArrivalRule::Aimd(Aimd::new(
            p.f("initial_limit", 10.0),
            p.f("backoff", 0.9),
            p.f("timeout", 5.0),
            p.f("max_limit", 1000.0),
        )?),
        "gradient2" => ArrivalRule::Gradient2(Gradient2::new(
            p.f("initial_limit", 20.0),
            p.f("min_limit", 20.0),
            p.f("max_limit", 200.0),
            p.f("smoothing", 0.2),
            p.f("queue_size", 4.0),
            p.f("long_window", 600.0),
        )?),
        "priority" => {
            let Some(classes) = classes else {
                return Err(super::errors::InvalidArgumentError::new_err(
                    "classes is required by the priority policy (0 high, 1 low per request)",
                ));
            };
            let hi = p.n("high_limit", 0)?;
            let lo = p.n("low_limit", 0)?;
            if lo > hi {
                return Err(super::errors::InvalidArgumentError::new_err(format!(
                    "low_limit ({lo}) must not exceed high_limit ({hi}): the low class is shed first"
                )));
            }
            ArrivalRule::Priority {
                classes,
                limits: [hi, lo],
            }
        }
        o => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "{kind}: unknown arrival rule {o:?}"
            )))
        }
    };
    let dequeue = match p.s("dequeue", "none") {
        "none" => DequeueRule::None,
        "deadline" => {
            let w = p.f("max_wait", f64::NAN);
            crate::policy::check_num("max_wait", w, 0.0, false)?;
            DequeueRule::Deadline { max_wait: w }
        }
        "codel" => DequeueRule::Codel(Codel::new(
            p.f("codel_target", 0.005),
            p.f("codel_interval", 0.1),
        )?),
        o => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "{kind}: unknown dequeue rule {o:?}"
            )))
        }
    };
    let admission = Admission::new(client, arrival, dequeue);
    if p.f("adaptive_lifo", 0.0) != 0.0 {
        let interval = p.f("lifo_interval", p.f("codel_interval", 0.1));
        return Ok(admission.with_adaptive_lifo(AdaptiveLifo::new(interval)?));
    }
    Ok(admission)
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
    cfg.discipline = match discipline {
        "fcfs" => Discipline::Fcfs,
        "lifo" => Discipline::Lifo,
        o => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "discipline must be 'fcfs' or 'lifo', got {o:?}"
            )))
        }
    };
    if servers > 1 << 24 {
        return Err(super::errors::InvalidArgumentError::new_err(
            "initial_replicas must be at most 16777216",
        ));
    }
    Ok(cfg)
}

fn classes_vec(classes: Option<&PyReadonlyArray1<'_, u8>>) -> PyResult<Option<Vec<u8>>> {
    match classes {
        None => Ok(None),
        Some(c) => {
            let s = slice(c, "classes")?;
            if let Some(i) = s.iter().position(|&x| x > 1) {
                return Err(super::errors::InvalidArgumentError::new_err(format!(
                    "classes must hold 0 (high) or 1 (low); index {i} holds {}",
                    s[i]
                )));
            }
            Ok(Some(s.to_vec()))
        }
    }
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
    let adm = admission_from(
        admission.as_ref(),
        classes_vec(classes.as_ref())?,
        seed,
        replication,
    )?;
    let opts = ReplayOptions {
        sample_interval,
        window,
        slo,
        quantile,
    };
    let (kind, nums, strs) = &policy;
    let p = Params(nums, strs);
    let work = cfg.customers as usize;
    let r = match kind.as_str() {
        "hpa" => {
            let a = hpa_from(&p)?;
            maybe_detach(py, work, || replay(&cfg, replication, a, adm, &opts))
        }
        "kpa" => {
            let a = kpa_from(&p)?;
            maybe_detach(py, work, || replay(&cfg, replication, a, adm, &opts))
        }
        "target_tracking" => {
            let a = tt_from(&p)?;
            maybe_detach(py, work, || replay(&cfg, replication, a, adm, &opts))
        }
        "predictive" => {
            let a = predictive_from(&p)?;
            maybe_detach(py, work, || replay(&cfg, replication, a, adm, &opts))
        }
        "fixed" => {
            let a = Fixed {
                replicas: p.n("replicas", initial_replicas)?,
            };
            maybe_detach(py, work, || replay(&cfg, replication, a, adm, &opts))
        }
        o => {
            return Err(super::errors::InvalidArgumentError::new_err(format!(
                "policy has an unknown kind {o:?}"
            )))
        }
    }?;
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
    let adm = admission_from(admission.as_ref(), cl.clone(), seed, replication)?;
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
