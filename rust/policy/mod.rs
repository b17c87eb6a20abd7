//! Autoscaling and overload-control policies that run inside the simulator's event loop
//! as [`crate::sim::Controller`]s.
//!
//! - [`Scaler`] samples the simulator's state every `dt` seconds into [`Signals`] and
//!   asks an [`Autoscaler`] for a replica count every decision period. Autoscalers:
//!   [`Hpa`] (Kubernetes HPA, ANCHORS §1.1), [`Kpa`] (Knative KPA, §1.3),
//!   [`TargetTracking`] (AWS target tracking, §1.4), [`Predictive`]
//!   (a Holt forecast provisioned through Erlang C) and [`Fixed`].
//! - [`Admission`] is the overload-control controller (drop-tail, deadline
//!   shedding, `CoDel`, token bucket, AIMD, Gradient2, client-side throttling, priorities;
//!   ANCHORS §2).
//! - `timeline` turns the samples and per-request records of a run into a per-window
//!   timeline, run totals and overload metrics; `experiment` runs whole replays.

pub(crate) mod admission;
pub(crate) mod experiment;
pub(crate) mod hpa;
pub(crate) mod kpa;
pub(crate) mod predictive;
pub(crate) mod spec;
pub(crate) mod target;
pub(crate) mod timeline;

pub use admission::{
    AdaptiveLifo, Admission, Aimd, ArrivalRule, ClientThrottle, Codel, DequeueRule, Gradient2,
    TokenBucket,
};
pub use experiment::{overload_run, replay, Replay, ReplayOptions};
pub use hpa::{Hpa, HpaConfig, HpaMetric, Rules, Select};
pub use kpa::{Kpa, KpaConfig, KpaMetric};
pub use predictive::{Predictive, PredictiveConfig};
pub use spec::{check_servers, discipline, PolicySpec, MAX_COUNT};
pub use target::{TargetTracking, TargetTrackingConfig, TtMetric};
pub use timeline::OverloadMetrics;

use std::collections::VecDeque;

use crate::error::{QcoreError, Result};
use crate::sim::{Controller, NoControl, View};

/// The simulator's state at one sampling instant, with the arrivals and completions of
/// the sampling interval that ends there.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub t: f64,
    /// Arrivals and completions during `(t − dt, t]`.
    pub arrivals: u64,
    pub completions: u64,
    pub in_queue: usize,
    pub in_service: usize,
    pub busy: usize,
    /// Servers able to serve (draining ones included).
    pub ready: usize,
    pub starting: usize,
    pub draining: usize,
    /// The replica count asked for at this instant.
    pub target: usize,
    /// A metric value supplied by the caller (an LLM fleet's KV usage, waiting requests,
    /// TTFT quantile, ...), read by the policies' `External` metrics; `None`: missing.
    pub external: Option<f64>,
}

impl Sample {
    /// Requests in the system (waiting or in service).
    pub fn in_flight(&self) -> f64 {
        (self.in_queue + self.in_service) as f64
    }
    /// Ready servers that are not draining (the pods an autoscaler counts as ready).
    pub fn serving(&self) -> usize {
        self.ready.saturating_sub(self.draining)
    }
}

/// The metric history an [`Autoscaler`] decides from: one [`Sample`] per `dt` seconds
/// (the last `keep` of them) and, if asked for, the response times of recent completions.
#[derive(Clone, Debug)]
pub struct Signals {
    dt: f64,
    keep: usize,
    samples: VecDeque<Sample>,
    last_arrivals: u64,
    last_completions: u64,
    responses: VecDeque<(f64, f64)>,
    response_horizon: f64,
}

impl Signals {
    /// History of `horizon` seconds sampled every `dt` seconds.
    pub fn new(dt: f64, horizon: f64) -> Self {
        let keep = ((horizon / dt).ceil() as usize).max(1) + 1;
        Signals {
            dt,
            keep,
            samples: VecDeque::with_capacity(keep + 1),
            last_arrivals: 0,
            last_completions: 0,
            responses: VecDeque::new(),
            response_horizon: horizon,
        }
    }

    /// Record the state `view` at time `t`; returns the sample.
    pub fn push(&mut self, t: f64, view: &View) -> Sample {
        let s = Sample {
            t,
            arrivals: view.arrivals - self.last_arrivals.min(view.arrivals),
            completions: view.completions - self.last_completions.min(view.completions),
            in_queue: view.in_queue,
            in_service: view.in_service,
            busy: view.busy,
            ready: view.ready,
            starting: view.starting,
            draining: view.draining,
            target: view.target,
            external: None,
        };
        self.last_arrivals = view.arrivals;
        self.last_completions = view.completions;
        self.record(s);
        s
    }

    /// Record a sample built by the caller (its `arrivals` and `completions` are those
    /// of the interval that ends at `s.t`).
    pub fn record(&mut self, s: Sample) {
        self.samples.push_back(s);
        while self.samples.len() > self.keep {
            self.samples.pop_front();
        }
    }

    /// Record a completion's response time.
    pub fn push_response(&mut self, t: f64, response: f64) {
        self.responses.push_back((t, response));
        let cut = t - self.response_horizon;
        while self.responses.front().is_some_and(|&(u, _)| u <= cut) {
            self.responses.pop_front();
        }
    }

    /// The most recent sample.
    pub fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The samples of the last `secs` seconds (at least one, at most all kept).
    pub fn window(&self, secs: f64) -> impl Iterator<Item = &Sample> {
        let n = ((secs / self.dt).round() as usize)
            .max(1)
            .min(self.samples.len());
        self.samples.iter().skip(self.samples.len() - n)
    }

    /// Mean of `f` over the samples of the last `secs` seconds (`None` without samples).
    pub fn mean(&self, secs: f64, f: impl Fn(&Sample) -> f64) -> Option<f64> {
        let (mut s, mut n) = (0.0, 0usize);
        for x in self.window(secs) {
            s += f(x);
            n += 1;
        }
        (n > 0).then(|| s / n as f64)
    }

    /// Mean of `f` over the samples of the last `secs` seconds where `f` is defined.
    pub fn mean_some(&self, secs: f64, f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        let (mut s, mut n) = (0.0, 0usize);
        for x in self.window(secs) {
            if let Some(v) = f(x) {
                s += v;
                n += 1;
            }
        }
        (n > 0).then(|| s / n as f64)
    }

    /// Arrivals per second over the last `secs` seconds.
    pub fn arrival_rate(&self, secs: f64) -> Option<f64> {
        let (mut a, mut n) = (0u64, 0usize);
        for x in self.window(secs) {
            a += x.arrivals;
            n += 1;
        }
        (n > 0).then(|| a as f64 / (n as f64 * self.dt))
    }

    /// Response times of the completions in `(now − secs, now]`.
    pub fn responses_since(&self, now: f64, secs: f64) -> Vec<f64> {
        let cut = now - secs;
        self.responses
            .iter()
            .filter(|&&(u, _)| u > cut)
            .map(|&(_, r)| r)
            .collect()
    }
}

/// A replica-count policy, consulted every [`Autoscaler::period`] seconds.
pub trait Autoscaler {
    /// Decision period in seconds.
    fn period(&self) -> f64;
    /// Seconds of metric history the policy reads.
    fn horizon(&self) -> f64;
    /// The replica count to ask for at time `t`, given the history and the current
    /// count asked for (`current`).
    fn decide(&mut self, t: f64, sig: &Signals, current: usize) -> usize;
    /// Whether the policy reads response times ([`Signals::responses_since`]).
    fn wants_responses(&self) -> bool {
        false
    }
    /// Whether requests arriving at zero replicas trigger an immediate decision (the
    /// Knative activator's poke).
    fn wakes_from_zero(&self) -> bool {
        false
    }
}

impl<T: Autoscaler + ?Sized> Autoscaler for Box<T> {
    fn period(&self) -> f64 {
        (**self).period()
    }
    fn horizon(&self) -> f64 {
        (**self).horizon()
    }
    fn decide(&mut self, t: f64, sig: &Signals, current: usize) -> usize {
        (**self).decide(t, sig, current)
    }
    fn wants_responses(&self) -> bool {
        (**self).wants_responses()
    }
    fn wakes_from_zero(&self) -> bool {
        (**self).wakes_from_zero()
    }
}

/// A fixed replica count (the baseline of a comparison), asked for at the first sample.
#[derive(Clone, Copy, Debug)]
pub struct Fixed {
    pub replicas: usize,
}

impl Autoscaler for Fixed {
    fn period(&self) -> f64 {
        0.0
    }
    fn horizon(&self) -> f64 {
        0.0
    }
    fn decide(&mut self, _t: f64, _sig: &Signals, _current: usize) -> usize {
        self.replicas
    }
}

/// A change of the replica count asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleEvent {
    pub t: f64,
    pub from: usize,
    pub to: usize,
}

/// The [`Controller`] that runs an [`Autoscaler`] in the event loop: it samples the state
/// every `dt` seconds, calls the policy every `period` (rounded to a whole number of
/// samples), and delegates admission and shedding to an inner controller.
pub struct Scaler<A: Autoscaler, C: Controller = NoControl> {
    pub policy: A,
    pub inner: C,
    sig: Signals,
    dt: f64,
    every: u64,
    ticks: u64,
    /// Every sample taken (the timeline is built from them).
    pub samples: Vec<Sample>,
    /// Every change of the replica count asked for.
    pub events: Vec<ScaleEvent>,
    record: bool,
}

impl<A: Autoscaler, C: Controller> Scaler<A, C> {
    /// A scaler sampling every `dt` seconds (`dt` positive and finite). With `record`
    /// every sample is kept in [`Scaler::samples`].
    pub fn new(policy: A, inner: C, dt: f64, record: bool) -> Result<Self> {
        if !(dt.is_finite() && dt > 0.0) {
            return Err(QcoreError::invalid(
                "sample_interval",
                format!("must be a positive finite number of seconds, got {dt}"),
            ));
        }
        let p = policy.period();
        let every = if p.is_finite() {
            ((p / dt).round() as u64).max(1)
        } else {
            u64::MAX
        };
        let horizon = policy
            .horizon()
            .max(if p.is_finite() { p } else { 0.0 })
            .max(dt);
        if horizon / dt > 1e7 {
            return Err(QcoreError::invalid(
                "sample_interval",
                format!(
                    "({dt} s) is too small for the policy's {horizon} s of history                      (more than 10^7 samples)"
                ),
            ));
        }
        Ok(Scaler {
            sig: Signals::new(dt, horizon),
            policy,
            inner,
            dt,
            every,
            ticks: 0,
            samples: Vec::new(),
            events: Vec::new(),
            record,
        })
    }
}

impl<A: Autoscaler, C: Controller> Scaler<A, C> {
    /// Take a sample built by the caller (a driver other than the simulator's event
    /// loop, e.g. an LLM fleet): record it and, on a decision tick, ask the policy.
    /// Returns the new replica count asked for, if it changed.
    pub fn on_sample(&mut self, s: Sample) -> Option<usize> {
        self.sig.record(s);
        self.after_sample(s)
    }

    fn after_sample(&mut self, s: Sample) -> Option<usize> {
        if self.record {
            self.samples.push(s);
        }
        self.ticks += 1;
        let wake = self.policy.wakes_from_zero() && s.ready + s.starting == 0 && s.in_queue > 0;
        if !(self.ticks % self.every == 0 || wake) {
            return None;
        }
        let n = self.policy.decide(s.t, &self.sig, s.target);
        if n == s.target {
            None
        } else {
            self.events.push(ScaleEvent {
                t: s.t,
                from: s.target,
                to: n,
            });
            if let Some(last) = self.samples.last_mut() {
                last.target = n;
            }
            Some(n)
        }
    }
}

impl<A: Autoscaler, C: Controller> Controller for Scaler<A, C> {
    fn scales_from_zero(&self) -> bool {
        self.policy.wakes_from_zero()
    }

    fn tick_interval(&self) -> Option<f64> {
        Some(self.dt)
    }

    fn on_tick(&mut self, t: f64, view: &View) -> Option<usize> {
        let s = self.sig.push(t, view);
        self.after_sample(s)
    }

    fn admit(&mut self, t: f64, id: u64, view: &View) -> bool {
        self.inner.admit(t, id, view)
    }

    fn dequeue_lifo(&mut self, t: f64, view: &View) -> Option<bool> {
        self.inner.dequeue_lifo(t, view)
    }

    fn on_dequeue(&mut self, t: f64, id: u64, waited: f64, view: &View) -> bool {
        self.inner.on_dequeue(t, id, waited, view)
    }

    fn on_complete(&mut self, t: f64, id: u64, response: f64, view: &View) {
        if self.policy.wants_responses() {
            self.sig.push_response(t, response);
        }
        self.inner.on_complete(t, id, response, view);
    }

    fn on_timeout(&mut self, t: f64, id: u64, waited: f64, view: &View) {
        self.inner.on_timeout(t, id, waited, view);
    }

    fn on_block(&mut self, t: f64, id: u64, view: &View) {
        self.inner.on_block(t, id, view);
    }
}

/// The nearest-rank `q`-quantile of ascending `sorted` values (`None` when empty).
#[must_use]
pub fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[k - 1])
}

/// Check that `x` is a finite number `>= lo` (or `> lo` when `strict`).
pub(crate) fn check_num(name: &str, x: f64, lo: f64, strict: bool) -> Result<()> {
    let ok = x.is_finite() && if strict { x > lo } else { x >= lo };
    if ok {
        Ok(())
    } else {
        let rel = if strict { ">" } else { ">=" };
        Err(QcoreError::invalid(
            name,
            format!("must be a finite number {rel} {lo}, got {x}"),
        ))
    }
}

/// `min..=max` replica bounds.
pub(crate) fn check_bounds(min_name: &str, min: usize, max_name: &str, max: usize) -> Result<()> {
    if max < min {
        return Err(QcoreError::invalid(
            max_name,
            format!("({max}) must be at least {min_name} ({min})"),
        ));
    }
    if max > 1 << 24 {
        return Err(QcoreError::invalid(max_name, "must be at most 16777216"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(arrivals: u64, in_queue: usize, ready: usize) -> View {
        View {
            in_queue,
            ready,
            arrivals,
            target: ready,
            ..View::default()
        }
    }

    #[test]
    fn signals_window_means_and_rates() {
        let mut s = Signals::new(1.0, 10.0);
        for k in 1..=20u64 {
            s.push(k as f64, &view(k * 3, k as usize, 2));
        }
        // Each interval saw 3 arrivals.
        assert_eq!(s.arrival_rate(5.0), Some(3.0));
        // The last 4 samples have in_queue 17..=20.
        assert_eq!(s.mean(4.0, |x| x.in_queue as f64), Some(18.5));
        // Only `keep` samples are kept: asking for more returns the mean of all kept.
        assert_eq!(s.window(100.0).count(), 11);
    }

    #[test]
    fn responses_are_trimmed_to_the_horizon() {
        let mut s = Signals::new(1.0, 10.0);
        for k in 0..30 {
            s.push_response(f64::from(k), f64::from(k));
        }
        assert_eq!(s.responses_since(29.0, 3.0), vec![27.0, 28.0, 29.0]);
        assert_eq!(s.responses.len(), 10);
    }

    #[test]
    fn scaler_forwards_the_queue_end_and_loss_signals() {
        use crate::policy::admission::{AdaptiveLifo, Admission, Aimd, ArrivalRule, DequeueRule};
        use crate::sim::{run_controlled, ArrivalProcess, Dist, SimConfig};
        // One server, 10 s service; arrivals at 0, 0.1, …, 0.9 with a 5 s patience:
        // the first dequeue (t = 10) is LIFO (queue busy for 9.9 s > 1 s) but all nine
        // waiting requests have timed out by then, each a drop for AIMD:
        // 10 → 9 → 8 → 7 → 6 → 5 → 4 → 3 → 2 → 1; request 0's completion (inflight
        // 1, 1·2 ≥ 1) then adds one.
        let times: Vec<f64> = (0..10).map(|k| f64::from(k) * 0.1).collect();
        let mut cfg = SimConfig::new(
            ArrivalProcess::trace(times).unwrap(),
            Some(Dist::deterministic(10.0).unwrap()),
            1,
            10,
        );
        cfg.patience = Some(Dist::deterministic(5.0).unwrap());
        let adm = Admission::new(
            None,
            ArrivalRule::Aimd(Aimd::new(10.0, 0.9, 1000.0, 1000.0).unwrap()),
            DequeueRule::None,
        );
        let mut sc = Scaler::new(Fixed { replicas: 1 }, adm, 1.0, false).unwrap();
        let r = run_controlled(&cfg, 0, &mut sc).unwrap();
        assert_eq!((r.timed_out, r.completed), (9, 1));
        assert_eq!(sc.inner.limit(), Some(2.0));
        // The queue end: with a long patience the requests wait; adaptive LIFO (0.5 s)
        // behind the scaler serves them newest first.
        cfg.patience = Some(Dist::deterministic(1000.0).unwrap());
        cfg.records = true;
        let adm = Admission::default().with_adaptive_lifo(AdaptiveLifo::new(0.5).unwrap());
        let mut sc = Scaler::new(Fixed { replicas: 1 }, adm, 1.0, false).unwrap();
        let r = run_controlled(&cfg, 0, &mut sc).unwrap();
        let start = r.records.unwrap().start;
        let want: Vec<f64> = [0, 9, 8, 7, 6, 5, 4, 3, 2, 1]
            .iter()
            .map(|&p| f64::from(p) * 10.0)
            .collect();
        assert_eq!(start, want);
    }
}
