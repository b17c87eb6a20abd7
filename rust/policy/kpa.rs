//! Knative Pod Autoscaler, following `pkg/autoscaler/scaling/autoscaler.go` and the
//! `config-autoscaler` `ConfigMap` defaults (ANCHORS §1.3):
//!
//! - stable window 60 s, panic window 10 % of it (6 s), panic threshold 200 %, tick 2 s;
//! - target = container concurrency × target utilization (70 %) per replica, on the
//!   average concurrency (requests waiting or in service) or on requests per second;
//! - `ready = max(1, readyPods)`, `maxUp = ceil(maxScaleUpRate·ready)` (1000),
//!   `maxDown = floor(ready / maxScaleDownRate)` (2.0), both desired counts clamped to
//!   `[maxDown, maxUp]`;
//! - panic when `ceil(panic / target) / ready ≥ threshold`; every breach extends the
//!   panic; it ends once `panicTime + stableWindow` has passed without a breach; while
//!   panicking the count only rises (`maxPanicPods`) and is at least the stable count;
//! - a new autoscaler that finds more than one ready pod starts in panic;
//! - scale-down delay: the max of the desired counts over that window;
//! - scale to zero: only after the stable window has seen no traffic, and the last pod
//!   stays for the grace period (30 s) after that decision;
//! - the activator buffers requests at zero replicas and pokes the autoscaler, which then
//!   decides at once (at the next sample, `dt` later at most).

use std::collections::VecDeque;

use super::{check_bounds, check_num, Autoscaler, Signals};
use crate::error::{QcoreError, Result};

/// What the KPA scales on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KpaMetric {
    Concurrency,
    Rps,
    /// The per-replica value the driver supplies in [`super::Sample::external`]; the
    /// decider reads its total over the serving replicas (value × serving), as it reads
    /// the total concurrency.
    External,
}

/// KPA configuration; [`KpaConfig::new`] gives the `ConfigMap` defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct KpaConfig {
    pub metric: KpaMetric,
    /// `containerConcurrency` (or the RPS target) per replica before the utilization.
    pub target_per_replica: f64,
    /// `container-concurrency-target-percentage` / 100 (0.7).
    pub target_utilization: f64,
    pub stable_window: f64,
    /// `panic-window-percentage` / 100 (0.1).
    pub panic_window_fraction: f64,
    /// `panic-threshold-percentage` / 100 (2.0).
    pub panic_threshold: f64,
    pub max_scale_up_rate: f64,
    pub max_scale_down_rate: f64,
    pub tick: f64,
    pub scale_to_zero_grace: f64,
    pub scale_down_delay: f64,
    pub min_scale: usize,
    /// `0` means unlimited, as in Knative.
    pub max_scale: usize,
}

impl KpaConfig {
    pub fn new(metric: KpaMetric, target_per_replica: f64) -> Self {
        KpaConfig {
            metric,
            target_per_replica,
            target_utilization: 0.7,
            stable_window: 60.0,
            panic_window_fraction: 0.1,
            panic_threshold: 2.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            tick: 2.0,
            scale_to_zero_grace: 30.0,
            scale_down_delay: 0.0,
            min_scale: 0,
            max_scale: 0,
        }
    }

    /// The target per replica (`target_per_replica × target_utilization`).
    pub fn target(&self) -> f64 {
        self.target_per_replica * self.target_utilization
    }

    pub fn validate(&self) -> Result<()> {
        check_num("target", self.target_per_replica, 0.0, true)?;
        if !(self.target_utilization > 0.0 && self.target_utilization <= 1.0) {
            return Err(QcoreError::invalid(
                "target_utilization",
                format!("must be in (0, 1], got {}", self.target_utilization),
            ));
        }
        if !(6.0..=3600.0).contains(&self.stable_window) {
            return Err(QcoreError::invalid(
                "stable_window",
                format!("must be between 6 s and 1 h, got {}", self.stable_window),
            ));
        }
        if !(self.panic_window_fraction > 0.0 && self.panic_window_fraction <= 1.0) {
            return Err(QcoreError::invalid(
                "panic_window_fraction",
                format!("must be in (0, 1], got {}", self.panic_window_fraction),
            ));
        }
        check_num("panic_threshold", self.panic_threshold, 1.0, false)?;
        check_num("max_scale_up_rate", self.max_scale_up_rate, 1.0, true)?;
        check_num("max_scale_down_rate", self.max_scale_down_rate, 1.0, true)?;
        check_num("tick", self.tick, 0.0, true)?;
        check_num("scale_to_zero_grace", self.scale_to_zero_grace, 0.0, false)?;
        check_num("scale_down_delay", self.scale_down_delay, 0.0, false)?;
        if self.scale_down_delay > 3600.0 {
            return Err(QcoreError::invalid(
                "scale_down_delay",
                format!("must be at most 1 h, got {}", self.scale_down_delay),
            ));
        }
        if self.max_scale > 0 {
            check_bounds("min_scale", self.min_scale, "max_scale", self.max_scale)?;
        }
        Ok(())
    }
}

/// The KPA decider state.
#[derive(Clone, Debug)]
pub struct Kpa {
    pub cfg: KpaConfig,
    panic_time: Option<f64>,
    max_panic_pods: usize,
    delay: VecDeque<(f64, usize)>,
    zero_since: Option<f64>,
    started: bool,
    /// Number of decisions taken in panic mode.
    pub panic_ticks: u64,
}

/// One decision of [`Kpa::scale`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KpaDecision {
    pub desired: usize,
    pub panicking: bool,
}

impl Kpa {
    pub fn new(cfg: KpaConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Kpa {
            cfg,
            panic_time: None,
            max_panic_pods: 0,
            delay: VecDeque::new(),
            zero_since: None,
            started: false,
            panic_ticks: 0,
        })
    }

    /// The decider (`Scale()`): the count for the observed stable and panic values
    /// (total over the replicas) with `ready_pods` ready at time `now`.
    pub fn scale(&mut self, now: f64, stable: f64, panic: f64, ready_pods: usize) -> KpaDecision {
        let target = self.cfg.target();
        let ready = ready_pods.max(1) as f64;
        if !self.started {
            self.started = true;
            if ready_pods > 1 {
                self.panic_time = Some(now);
                self.max_panic_pods = ready_pods;
            }
        }
        let max_up = (self.cfg.max_scale_up_rate * ready).ceil();
        let max_down = (ready / self.cfg.max_scale_down_rate).floor();
        let dspc = (stable / target).ceil();
        let dppc = (panic / target).ceil();
        let desired_stable = dspc.max(max_down).min(max_up) as usize;
        let desired_panic = dppc.max(max_down).min(max_up) as usize;
        let over = dppc / ready >= self.cfg.panic_threshold;
        if over {
            self.panic_time = Some(now);
        } else if let Some(pt) = self.panic_time {
            // Knative: `panicTime.Add(StableWindow).Before(now)`, strictly after
            if pt + self.cfg.stable_window < now {
                self.panic_time = None;
                self.max_panic_pods = 0;
            }
        }
        let mut desired = if self.panic_time.is_some() {
            self.panic_ticks += 1;
            let d = desired_panic.max(desired_stable);
            if d > self.max_panic_pods {
                self.max_panic_pods = d;
            }
            d.max(self.max_panic_pods)
        } else {
            desired_stable
        };
        if self.cfg.scale_down_delay > 0.0 {
            self.delay.push_back((now, desired));
            let cut = now - self.cfg.scale_down_delay;
            while self.delay.front().is_some_and(|&(t, _)| t <= cut) {
                self.delay.pop_front();
            }
            desired = self.delay.iter().map(|&(_, d)| d).max().unwrap_or(desired);
        }
        KpaDecision {
            desired,
            panicking: self.panic_time.is_some(),
        }
    }

    /// Apply min/max scale and the scale-to-zero grace period to a decider count.
    pub fn bound(&mut self, now: f64, current: usize, desired: usize) -> usize {
        let mut d = desired.max(self.cfg.min_scale);
        if self.cfg.max_scale > 0 {
            d = d.min(self.cfg.max_scale);
        }
        if d == 0 {
            if current == 0 {
                return 0;
            }
            let since = *self.zero_since.get_or_insert(now);
            if now - since < self.cfg.scale_to_zero_grace {
                return 1;
            }
            return 0;
        }
        self.zero_since = None;
        d
    }
}

impl Autoscaler for Kpa {
    fn period(&self) -> f64 {
        self.cfg.tick
    }
    fn horizon(&self) -> f64 {
        self.cfg.stable_window
    }
    fn wakes_from_zero(&self) -> bool {
        true
    }
    fn decide(&mut self, t: f64, sig: &Signals, current: usize) -> usize {
        let Some(last) = sig.last().copied() else {
            return current;
        };
        let sw = self.cfg.stable_window;
        let pw = sw * self.cfg.panic_window_fraction;
        let (stable, panic) = match self.cfg.metric {
            KpaMetric::Concurrency => (
                sig.mean(sw, super::Sample::in_flight).unwrap_or(0.0),
                sig.mean(pw, super::Sample::in_flight).unwrap_or(0.0),
            ),
            KpaMetric::Rps => (
                sig.arrival_rate(sw).unwrap_or(0.0),
                sig.arrival_rate(pw).unwrap_or(0.0),
            ),
            KpaMetric::External => {
                let total = |s: &super::Sample| s.external.map(|v| v * s.serving() as f64);
                (
                    sig.mean_some(sw, total).unwrap_or(0.0),
                    sig.mean_some(pw, total).unwrap_or(0.0),
                )
            }
        };
        // With no pod serving, the activator holds the requests; its buffer counts as
        // demand (also while a pod is still starting, so its cold start is not cancelled).
        let (stable, panic) = if last.serving() == 0 && last.in_queue > 0 {
            let q = last.in_queue as f64;
            (stable.max(q), panic.max(q))
        } else {
            (stable, panic)
        };
        let d = self.scale(t, stable, panic, last.serving());
        self.bound(t, current, d.desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kpa() -> Kpa {
        // target 10 per replica (containerConcurrency 10 at 100 %).
        let mut c = KpaConfig::new(KpaMetric::Concurrency, 10.0);
        c.target_utilization = 1.0;
        let mut k = Kpa::new(c).unwrap();
        // First decision with one ready pod: no start-up panic.
        k.scale(-1000.0, 0.0, 0.0, 1);
        k
    }

    #[test]
    fn stable_mode_formula_and_rate_limits() {
        let mut k = kpa();
        // 1 ready pod, stable 35 → ceil(3.5) = 4, no panic (panic 35 → 4/1 ≥ 2 would
        // panic; use a low panic value here).
        let d = k.scale(0.0, 35.0, 10.0, 1);
        assert_eq!(
            d,
            KpaDecision {
                desired: 4,
                panicking: false
            }
        );
        // maxDown = floor(8 / 2) = 4: from 8 ready, stable 0 → 4.
        let d = k.scale(2.0, 0.0, 0.0, 8);
        assert_eq!(d.desired, 4);
    }

    #[test]
    fn enters_and_leaves_panic_at_the_documented_thresholds() {
        let mut k = kpa();
        // 2 ready pods: dppc / ready = ceil(39/10)/2 = 2.0 ≥ 2 → panic.
        let d = k.scale(0.0, 10.0, 39.0, 2);
        assert!(d.panicking);
        assert_eq!(d.desired, 4);
        let mut k = kpa();
        // dppc = ceil(30/10) = 3 → 3/2 = 1.5 < 2: no panic.
        assert!(!k.scale(0.0, 10.0, 30.0, 2).panicking);
        // Now breach at t = 10 (dppc = 4, ready 2).
        assert!(k.scale(10.0, 10.0, 40.0, 2).panicking);
        // Below threshold but within the stable window after the last breach: still
        // panicking, and the count does not drop below the panic maximum (4).
        let d = k.scale(40.0, 5.0, 5.0, 4);
        assert!(d.panicking);
        assert_eq!(d.desired, 4);
        // The panic ends once 10 + 60 = 70 has strictly passed (panicTime + stableWindow
        // < now, Knative's `Before`): still panicking at 70 itself, over at the next tick.
        let d = k.scale(68.0, 5.0, 5.0, 4);
        assert!(d.panicking);
        let d = k.scale(70.0, 5.0, 5.0, 4);
        assert!(d.panicking);
        let d = k.scale(72.0, 5.0, 5.0, 4);
        assert!(!d.panicking);
        assert_eq!(d.desired, 2); // max(ceil(0.5)=1, maxDown=floor(4/2)=2)
    }

    #[test]
    fn a_new_breach_extends_the_panic() {
        let mut k = kpa();
        assert!(k.scale(0.0, 0.0, 40.0, 2).panicking);
        assert!(k.scale(50.0, 0.0, 40.0, 2).panicking);
        assert!(k.scale(100.0, 0.0, 0.0, 2).panicking);
        assert!(k.scale(110.0, 0.0, 0.0, 2).panicking); // 50 + 60 = 110: not yet passed
        assert!(!k.scale(112.0, 0.0, 0.0, 2).panicking);
    }

    #[test]
    fn starts_in_panic_with_several_ready_pods() {
        let mut c = KpaConfig::new(KpaMetric::Concurrency, 10.0);
        c.target_utilization = 1.0;
        let mut k = Kpa::new(c).unwrap();
        let d = k.scale(0.0, 0.0, 0.0, 5);
        assert!(d.panicking);
        assert_eq!(d.desired, 5);
    }

    #[test]
    fn scale_to_zero_waits_for_the_grace_period() {
        let mut k = kpa();
        assert_eq!(k.bound(0.0, 1, 0), 1);
        assert_eq!(k.bound(29.0, 1, 0), 1);
        assert_eq!(k.bound(30.0, 1, 0), 0);
        assert_eq!(k.bound(32.0, 0, 0), 0);
        assert_eq!(k.bound(34.0, 0, 2), 2);
        // Traffic resets the grace timer.
        assert_eq!(k.bound(40.0, 2, 0), 1);
    }

    #[test]
    fn scale_down_delay_holds_the_max() {
        let mut c = KpaConfig::new(KpaMetric::Concurrency, 10.0);
        c.target_utilization = 1.0;
        c.scale_down_delay = 10.0;
        c.max_scale_down_rate = 100.0;
        let mut k = Kpa::new(c).unwrap();
        assert_eq!(k.scale(0.0, 50.0, 50.0, 1).desired, 5);
        assert_eq!(k.scale(100.0, 10.0, 10.0, 5).desired, 1);
        assert_eq!(k.scale(102.0, 30.0, 10.0, 5).desired, 3);
        assert_eq!(k.scale(104.0, 10.0, 10.0, 3).desired, 3);
        assert_eq!(k.scale(112.0, 10.0, 10.0, 3).desired, 1);
    }

    #[test]
    fn validation_names_the_argument() {
        let mut c = KpaConfig::new(KpaMetric::Concurrency, 10.0);
        c.stable_window = 3.0;
        assert!(
            matches!(Kpa::new(c), Err(QcoreError::InvalidArgument { name, .. }) if name == "stable_window")
        );
    }
}
