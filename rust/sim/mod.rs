//! A discrete-event queue simulator for serving capacity.
//!
//! - `rng`: the fixed RNG (xoshiro256++ seeded by splitmix64) and samplers.
//! - `dist`: duration distributions; `arrivals`: arrival processes.
//! - `fast`: the customer recursion for the plain FCFS c-server queue.
//! - `event`: the general event loop with the [`Controller`] hook.
//! - `result`: what a run produces.
//!
//! ```
//! use qcore::sim::{run, ArrivalProcess, Dist, Method, SimConfig};
//! let cfg = SimConfig::new(
//!     ArrivalProcess::poisson(0.5).unwrap(),
//!     Some(Dist::exponential(1.0).unwrap()),
//!     1,
//!     10_000,
//! );
//! let r = run(&cfg, 0, Method::Auto).unwrap();
//! assert_eq!(r.completed, 10_000);
//! assert!((r.mean_response() - 2.0).abs() < 0.3); // 1 / (μ − λ)
//! ```

pub(crate) mod arrivals;
pub(crate) mod dist;
pub(crate) mod event;
pub(crate) mod fast;
pub(crate) mod result;
pub(crate) mod rng;
pub(crate) mod stats;

pub use arrivals::ArrivalProcess;
pub use dist::Dist;
pub use event::{Controller, NoControl, View};
pub use result::{Recorder, Records, RunStats};
pub use rng::{Rng, Stream};
pub use stats::mean_ci;

use crate::error::{QcoreError, Result};

/// Queue discipline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discipline {
    Fcfs,
    Lifo,
}

/// Service time of a batch of n requests.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchTime {
    /// `fixed + per_item · n`.
    Linear { fixed: f64, per_item: f64 },
    /// `table[n − 1]`.
    Table(Vec<f64>),
}

/// Dynamic batching as inference servers do it: a free server starts a batch when
/// `max_size` requests wait, or when the oldest waiting request has waited `max_wait`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batching {
    pub max_size: usize,
    pub max_wait: f64,
    pub time: BatchTime,
}

/// Which implementation runs a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The fast path when the configuration allows it, the event loop otherwise.
    Auto,
    /// The fast path (an error if the configuration needs the event loop).
    Fast,
    /// The general event loop.
    Event,
}

/// A full simulation configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub arrivals: ArrivalProcess,
    /// Per-request service time (`None` only with batching, whose time is per batch).
    pub service: Option<Dist>,
    /// Servers at time 0.
    pub servers: usize,
    /// Measured requests (after the warm-up).
    pub customers: u64,
    /// Requests simulated before measurement starts.
    pub warmup: u64,
    pub seed: u64,
    pub discipline: Discipline,
    /// Waiting room (requests not in service); `None`: unlimited.
    pub queue_capacity: Option<usize>,
    /// Patience: a request that waits longer leaves (timed out).
    pub patience: Option<Dist>,
    pub batching: Option<Batching>,
    /// `(time, servers)` changes of the server count.
    pub schedule: Vec<(f64, usize)>,
    /// Start-up delay of servers added after time 0.
    pub startup_delay: Option<Dist>,
    /// Keep per-request records.
    pub records: bool,
    /// Relative accuracy of the latency sketches.
    pub relative_accuracy: f64,
}

const ZERO: Dist = Dist::Deterministic { value: 0.0 };

impl SimConfig {
    /// A plain FCFS configuration; adjust the public fields for the rest.
    pub fn new(
        arrivals: ArrivalProcess,
        service: Option<Dist>,
        servers: usize,
        customers: u64,
    ) -> Self {
        SimConfig {
            arrivals,
            service,
            servers,
            customers,
            warmup: 0,
            seed: 1,
            discipline: Discipline::Fcfs,
            queue_capacity: None,
            patience: None,
            batching: None,
            schedule: Vec::new(),
            startup_delay: None,
            records: false,
            relative_accuracy: 0.01,
        }
    }

    pub(crate) fn service_dist(&self) -> &Dist {
        self.service.as_ref().unwrap_or(&ZERO)
    }

    /// Requests to simulate, warm-up included.
    pub fn total(&self) -> u64 {
        self.warmup.saturating_add(self.customers)
    }

    /// Whether the fast path can run this configuration.
    pub fn fast_path_ok(&self) -> bool {
        self.discipline == Discipline::Fcfs
            && self.queue_capacity.is_none()
            && self.patience.is_none()
            && self.batching.is_none()
            && self.schedule.is_empty()
            && self.servers >= 1
            && self.service.is_some()
    }

    /// Check the configuration; the error names the offending argument.
    pub fn validate(&self) -> Result<()> {
        self.validate_for(false)
    }

    /// [`SimConfig::validate`] for a run whose controller may start servers from zero
    /// (`scales_from_zero`): then zero initial servers is a valid start.
    pub fn validate_for(&self, scales_from_zero: bool) -> Result<()> {
        if self.customers == 0 {
            return Err(QcoreError::invalid("customers", "must be at least 1"));
        }
        if self.servers == 0 && self.schedule.is_empty() && !scales_from_zero {
            return Err(QcoreError::invalid(
                "servers",
                "must be at least 1 (or give a server_schedule)",
            ));
        }
        if self.servers > 1 << 24 {
            return Err(QcoreError::invalid("servers", "must be at most 16777216"));
        }
        if !(self.relative_accuracy > 0.0 && self.relative_accuracy < 1.0) {
            return Err(QcoreError::invalid(
                "relative_accuracy",
                format!("must be in (0, 1), got {}", self.relative_accuracy),
            ));
        }
        self.arrivals.check()?;
        for (name, d) in [
            ("service", &self.service),
            ("patience", &self.patience),
            ("startup_delay", &self.startup_delay),
        ] {
            if let Some(d) = d {
                d.check(name)?;
            }
        }
        if let Some(n) = self.arrivals.limit() {
            if (n as u64) <= self.warmup {
                return Err(QcoreError::invalid(
                    "warmup",
                    format!("is {} but the arrivals hold only {n} requests", self.warmup),
                ));
            }
        }
        let needed = match self.arrivals.limit() {
            Some(n) => self.total().min(n as u64),
            None => self.total(),
        };
        if let Some(d) = &self.service {
            if let Some(n) = d.limit() {
                if (n as u64) < needed {
                    return Err(QcoreError::invalid(
                        "service",
                        format!("holds {n} durations but {needed} requests are simulated"),
                    ));
                }
            }
        }
        if let Some(d) = &self.patience {
            if let Some(n) = d.limit() {
                if (n as u64) < needed {
                    return Err(QcoreError::invalid(
                        "patience",
                        format!("holds {n} values but {needed} requests are simulated"),
                    ));
                }
            }
        }
        match (&self.batching, &self.service) {
            (None, None) => {
                return Err(QcoreError::invalid(
                    "service",
                    "is required unless batching gives the batch service time",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(QcoreError::invalid(
                    "service",
                    "must not be given with batching (batch_service sets the batch time)",
                ))
            }
            _ => {}
        }
        if let Some(b) = &self.batching {
            if b.max_size == 0 {
                return Err(QcoreError::invalid("max_batch_size", "must be at least 1"));
            }
            if !(b.max_wait.is_finite() && b.max_wait >= 0.0) {
                return Err(QcoreError::invalid(
                    "max_batch_wait",
                    format!("must be a non-negative finite number, got {}", b.max_wait),
                ));
            }
            match &b.time {
                BatchTime::Linear { fixed, per_item } => {
                    for (name, v) in [("fixed", fixed), ("per_item", per_item)] {
                        if !(v.is_finite() && *v >= 0.0) {
                            return Err(QcoreError::invalid(
                                "batch_service",
                                format!("{name} must be a non-negative finite number, got {v}"),
                            ));
                        }
                    }
                }
                BatchTime::Table(tab) => {
                    if tab.len() < b.max_size {
                        return Err(QcoreError::invalid(
                            "batch_service",
                            format!(
                                "table has {} entries but max_batch_size is {}",
                                tab.len(),
                                b.max_size
                            ),
                        ));
                    }
                    crate::error::check_finite("batch_service", tab)?;
                    if let Some(i) = tab.iter().position(|&v| v < 0.0) {
                        return Err(QcoreError::invalid(
                            "batch_service",
                            format!("contains a negative time at index {i}"),
                        ));
                    }
                }
            }
        }
        let mut prev = f64::NEG_INFINITY;
        for (i, &(t, n)) in self.schedule.iter().enumerate() {
            if !(t.is_finite() && t >= 0.0) || t < prev {
                return Err(QcoreError::invalid(
                    "server_schedule",
                    format!("times must be finite, non-negative and sorted (entry {i})"),
                ));
            }
            if n > 1 << 24 {
                return Err(QcoreError::invalid(
                    "server_schedule",
                    format!("server count at entry {i} is too large"),
                ));
            }
            prev = t;
        }
        Ok(())
    }
}

/// Run replication `rep` of `cfg`.
pub fn run(cfg: &SimConfig, rep: u64, method: Method) -> Result<RunStats> {
    cfg.validate()?;
    match method {
        Method::Fast => {
            if !cfg.fast_path_ok() {
                return Err(QcoreError::invalid(
                    "method",
                    "'fast' needs FCFS, unlimited waiting room, no patience, no batching and no server schedule",
                ));
            }
            fast_or_event(cfg, rep)
        }
        Method::Auto if cfg.fast_path_ok() => fast_or_event(cfg, rep),
        _ => event::run_event(cfg, rep, &mut NoControl),
    }
}

/// The fast path, unless its window statistics lost their precision: it takes the arrival
/// window's time averages as the whole run's minus what follows the last arrival, which
/// cancels when the window is far shorter than the requests' times in system (below the
/// resolution of the departure clock). Then the event loop, which integrates the window
/// directly, runs the replication (the same seeds, so the same requests; `fast_path` false).
fn fast_or_event(cfg: &SimConfig, rep: u64) -> Result<RunStats> {
    let st = fast::run_fast(cfg, rep)?;
    if st.window_resolved() {
        Ok(st)
    } else {
        event::run_event(cfg, rep, &mut NoControl)
    }
}

/// Run replication `rep` through the event loop with a controller (autoscaling,
/// admission control).
pub fn run_controlled<C: Controller>(cfg: &SimConfig, rep: u64, ctrl: &mut C) -> Result<RunStats> {
    cfg.validate_for(ctrl.scales_from_zero())?;
    event::run_event(cfg, rep, ctrl)
}

/// Run replications `0..replications`, on up to `threads` threads (within the core's
/// thread budget, [`crate::threads::max_threads`]).
pub fn run_replications(
    cfg: &SimConfig,
    replications: u64,
    method: Method,
    threads: usize,
) -> Result<Vec<RunStats>> {
    cfg.validate()?;
    if replications == 0 {
        return Err(QcoreError::invalid("replications", "must be at least 1"));
    }
    // Within the core's thread budget (results do not depend on it: one seed per replication).
    let threads = threads
        .min(crate::threads::max_threads())
        .clamp(1, replications as usize);
    if threads == 1 {
        return (0..replications).map(|r| run(cfg, r, method)).collect();
    }
    let mut out: Vec<Option<Result<RunStats>>> = (0..replications).map(|_| None).collect();
    std::thread::scope(|sc| {
        let chunks: Vec<_> = out
            .chunks_mut(replications.div_ceil(threads as u64) as usize)
            .collect();
        let mut start = 0u64;
        for chunk in chunks {
            let base = start;
            start += chunk.len() as u64;
            sc.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(run(cfg, base + j as u64, method));
                }
            });
        }
    });
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Err(QcoreError::data("a replication did not run"))))
        .collect()
}
#[cfg(test)]
mod tests;
