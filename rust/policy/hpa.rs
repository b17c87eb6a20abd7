//! Kubernetes `HorizontalPodAutoscaler` (autoscaling/v2), as documented in
//! `horizontal-pod-autoscale.md` and implemented in `replica_calculator.go` and
//! `horizontal.go` (ANCHORS §1.1):
//!
//! - `desired = ceil(ready × metric / target)`, held at the current count while
//!   `|1 − ratio| ≤ tolerance` (0.1; per direction since v1.33);
//! - on a scale-up, pods that are not ready yet count as using 0 of the metric, and the
//!   count is held when that rebalancing flips the direction or lands in the tolerance;
//! - sync period 15 s; scale-up and scale-down stabilization (the min, resp. the max, of
//!   the recommendations inside the window: 0 s and 300 s by default);
//! - rate policies (`Pods` or `Percent` per period, `selectPolicy` Max/Min/Disabled):
//!   up `Percent 100 / 15 s` and `Pods 4 / 15 s` with Max, down `Percent 100 / 15 s`;
//!   percent changes round up on the way up (ceil) and truncate on the way down;
//! - `minReplicas ≥ 1`, `maxReplicas`.
//!
//! The metric per pod is averaged over `metric_window` seconds of samples, as the
//! metrics pipeline does: `Utilization` is busy / ready servers, `InFlight` the requests
//! waiting or in service per ready server, `RequestRate` arrivals per second per ready
//! server.

use std::collections::VecDeque;

use super::{check_bounds, check_num, Autoscaler, Signals};
use crate::error::{QcoreError, Result};

/// The per-pod metric an HPA scales on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpaMetric {
    /// Fraction of ready servers that are busy (target e.g. 0.7).
    Utilization,
    /// Requests waiting or in service per ready server.
    InFlight,
    /// Arrivals per second per ready server.
    RequestRate,
    /// The value the driver supplies in [`super::Sample::external`] (per ready pod, or
    /// an object/external metric of the whole target: the LLM fleet's KV usage, waiting
    /// requests, TTFT quantile, ...), averaged over the metric window.
    External,
}

impl HpaMetric {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "utilization" => Ok(HpaMetric::Utilization),
            "in_flight" => Ok(HpaMetric::InFlight),
            "request_rate" => Ok(HpaMetric::RequestRate),
            "external" => Ok(HpaMetric::External),
            _ => Err(QcoreError::invalid(
                "metric",
                format!(
                    "must be 'utilization', 'in_flight', 'request_rate' or 'external', got {s:?}"
                ),
            )),
        }
    }
}

/// `Pods` or `Percent` rate policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PolicyKind {
    Pods,
    Percent,
}

/// One HPA scaling policy: at most `value` pods (or percent) per `period` seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatePolicy {
    pub kind: PolicyKind,
    pub value: f64,
    pub period: f64,
}

/// `selectPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

impl Select {
    pub fn parse(name: &str, s: &str) -> Result<Self> {
        match s {
            "Max" | "max" => Ok(Select::Max),
            "Min" | "min" => Ok(Select::Min),
            "Disabled" | "disabled" => Ok(Select::Disabled),
            _ => Err(QcoreError::invalid(
                name,
                format!("must be 'Max', 'Min' or 'Disabled', got {s:?}"),
            )),
        }
    }
}

/// `behavior.scaleUp` / `behavior.scaleDown`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub stabilization_window: f64,
    pub policies: Vec<RatePolicy>,
    pub select: Select,
    pub tolerance: f64,
}

impl Rules {
    /// The documented default scale-up rules.
    pub fn default_up() -> Self {
        Rules {
            stabilization_window: 0.0,
            policies: vec![
                RatePolicy {
                    kind: PolicyKind::Percent,
                    value: 100.0,
                    period: 15.0,
                },
                RatePolicy {
                    kind: PolicyKind::Pods,
                    value: 4.0,
                    period: 15.0,
                },
            ],
            select: Select::Max,
            tolerance: 0.1,
        }
    }

    /// The documented default scale-down rules.
    pub fn default_down() -> Self {
        Rules {
            stabilization_window: 300.0,
            policies: vec![RatePolicy {
                kind: PolicyKind::Percent,
                value: 100.0,
                period: 15.0,
            }],
            select: Select::Max,
            tolerance: 0.1,
        }
    }

    /// Parse policies written as `"percent:100:15,pods:4:15"`.
    pub fn parse_policies(name: &str, s: &str) -> Result<Vec<RatePolicy>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let f: Vec<&str> = part.split(':').collect();
            let bad = || {
                QcoreError::invalid(
                    name,
                    format!("entry {part:?} must be 'pods:VALUE:PERIOD' or 'percent:VALUE:PERIOD'"),
                )
            };
            if f.len() != 3 {
                return Err(bad());
            }
            let kind = match f[0].to_ascii_lowercase().as_str() {
                "pods" => PolicyKind::Pods,
                "percent" => PolicyKind::Percent,
                _ => return Err(bad()),
            };
            let value: f64 = f[1].parse().map_err(|_| bad())?;
            let period: f64 = f[2].parse().map_err(|_| bad())?;
            if !(value.is_finite() && value > 0.0) {
                return Err(QcoreError::invalid(
                    name,
                    format!("value in {part:?} must be positive"),
                ));
            }
            if !(period > 0.0 && period <= 1800.0) {
                return Err(QcoreError::invalid(
                    name,
                    format!("periodSeconds in {part:?} must be in (0, 1800]"),
                ));
            }
            out.push(RatePolicy {
                kind,
                value,
                period,
            });
        }
        Ok(out)
    }

    fn validate(&self, dir: &str) -> Result<()> {
        let w = self.stabilization_window;
        if !(0.0..=3600.0).contains(&w) {
            return Err(QcoreError::invalid(
                format!("{dir}_stabilization"),
                format!("must be between 0 and 3600 seconds, got {w}"),
            ));
        }
        check_num(&format!("{dir}_tolerance"), self.tolerance, 0.0, false)?;
        if self.policies.is_empty() && self.select != Select::Disabled {
            return Err(QcoreError::invalid(
                format!("{dir}_policies"),
                "must hold at least one policy unless select is 'Disabled'",
            ));
        }
        Ok(())
    }
}

/// HPA configuration; [`HpaConfig::new`] gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct HpaConfig {
    pub metric: HpaMetric,
    /// Target value of the metric per pod.
    pub target: f64,
    pub min_replicas: usize,
    pub max_replicas: usize,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period: f64,
    /// Averaging window of the metric (15 s, the metrics-server resolution).
    pub metric_window: f64,
    pub up: Rules,
    pub down: Rules,
}

impl HpaConfig {
    pub fn new(metric: HpaMetric, target: f64) -> Self {
        HpaConfig {
            metric,
            target,
            min_replicas: 1,
            max_replicas: 100,
            sync_period: 15.0,
            metric_window: 15.0,
            up: Rules::default_up(),
            down: Rules::default_down(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_num("target", self.target, 0.0, true)?;
        if self.metric == HpaMetric::Utilization && self.target > 1.0 {
            return Err(QcoreError::invalid(
                "target",
                format!(
                    "is a utilization and must be in (0, 1], got {}",
                    self.target
                ),
            ));
        }
        if self.min_replicas < 1 {
            return Err(QcoreError::invalid(
                "min_replicas",
                "must be at least 1 (the HPA does not scale to zero)",
            ));
        }
        check_bounds(
            "min_replicas",
            self.min_replicas,
            "max_replicas",
            self.max_replicas,
        )?;
        check_num("sync_period", self.sync_period, 0.0, true)?;
        check_num("metric_window", self.metric_window, 0.0, true)?;
        self.up.validate("up")?;
        self.down.validate("down")
    }
}

/// The HPA controller state.
#[derive(Clone, Debug)]
pub struct Hpa {
    pub cfg: HpaConfig,
    recommendations: VecDeque<(f64, usize)>,
    initialized: bool,
    up_events: VecDeque<(f64, usize)>,
    down_events: VecDeque<(f64, usize)>,
}

impl Hpa {
    pub fn new(cfg: HpaConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Hpa {
            cfg,
            recommendations: VecDeque::new(),
            initialized: false,
            up_events: VecDeque::new(),
            down_events: VecDeque::new(),
        })
    }

    /// The replica calculator: the count for `ready` pods whose metric averages
    /// `per_pod` and `unready` pods still starting, from `current` replicas
    /// (`replica_calculator.go`).
    pub fn calculate(&self, current: usize, ready: usize, unready: usize, per_pod: f64) -> usize {
        if ready == 0 {
            // No pod reports a metric: the HPA cannot compute a ratio and holds.
            return current;
        }
        let (tol_up, tol_down) = (self.cfg.up.tolerance, self.cfg.down.tolerance);
        let within = |r: f64| (r >= 1.0 && r - 1.0 <= tol_up) || (r < 1.0 && 1.0 - r <= tol_down);
        let ratio = self.ratio(per_pod);
        let rebalance = unready > 0 && ratio > 1.0;
        if !rebalance {
            if within(ratio) {
                return current;
            }
            return (ratio * ready as f64).ceil() as usize;
        }
        // Scale-up with unready pods: they count as 0 of the metric.
        let n = ready + unready;
        let new_ratio = ratio * ready as f64 / n as f64;
        if within(new_ratio) || new_ratio < 1.0 {
            return current;
        }
        let replicas = (new_ratio * n as f64).ceil() as usize;
        if replicas < current {
            return current;
        }
        replicas
    }

    fn change_in_period(events: &VecDeque<(f64, usize)>, now: f64, period: f64) -> usize {
        let cut = now - period;
        events
            .iter()
            .filter(|&&(t, _)| t > cut)
            .map(|&(_, n)| n)
            .sum()
    }

    fn up_limit(&self, now: f64, current: usize) -> usize {
        let r = &self.cfg.up;
        if r.select == Select::Disabled {
            return current;
        }
        let mut out: Option<usize> = None;
        for p in &r.policies {
            let added = Self::change_in_period(&self.up_events, now, p.period);
            let deleted = Self::change_in_period(&self.down_events, now, p.period);
            let start = (current + deleted).saturating_sub(added);
            let proposed = match p.kind {
                PolicyKind::Pods => start + p.value as usize,
                PolicyKind::Percent => (start as f64 * (1.0 + p.value / 100.0)).ceil() as usize,
            };
            out = Some(match (out, r.select) {
                (None, _) => proposed,
                (Some(o), Select::Max) => o.max(proposed),
                (Some(o), _) => o.min(proposed),
            });
        }
        out.unwrap_or(current)
    }

    fn down_limit(&self, now: f64, current: usize) -> usize {
        let r = &self.cfg.down;
        if r.select == Select::Disabled {
            return current;
        }
        let mut out: Option<usize> = None;
        for p in &r.policies {
            let added = Self::change_in_period(&self.up_events, now, p.period);
            let deleted = Self::change_in_period(&self.down_events, now, p.period);
            let start = (current + deleted).saturating_sub(added);
            let proposed = match p.kind {
                PolicyKind::Pods => start.saturating_sub(p.value as usize),
                PolicyKind::Percent => (start as f64 * (1.0 - p.value / 100.0)).max(0.0) as usize,
            };
            // Max picks the largest change, i.e. the smallest count.
            out = Some(match (out, r.select) {
                (None, _) => proposed,
                (Some(o), Select::Max) => o.min(proposed),
                (Some(o), _) => o.max(proposed),
            });
        }
        out.unwrap_or(current)
    }

    /// Stabilization, rate policies and min/max (`normalizeDesiredReplicasWithBehaviors`),
    /// recording the recommendation and the resulting scale event at time `now`.
    ///
    /// As `recordInitialRecommendation` does, the first call records the current count as
    /// a recommendation, so a new HPA does not scale down before the window has passed.
    pub fn normalize(&mut self, now: f64, current: usize, desired: usize) -> usize {
        if !self.initialized {
            self.initialized = true;
            self.recommendations.push_back((now, current));
        }
        let (cmin, cmax) = (self.cfg.min_replicas, self.cfg.max_replicas);
        let desired = desired.clamp(cmin, cmax);
        // Stabilization: min over the up window, max over the down window.
        let up_cut = now - self.cfg.up.stabilization_window;
        let down_cut = now - self.cfg.down.stabilization_window;
        let (mut up_rec, mut down_rec) = (desired, desired);
        for &(t, r) in &self.recommendations {
            if t > up_cut {
                up_rec = up_rec.min(r);
            }
            if t > down_cut {
                down_rec = down_rec.max(r);
            }
        }
        let mut rec = current.max(up_rec).min(down_rec);
        self.recommendations.push_back((now, desired));
        let keep = self
            .cfg
            .up
            .stabilization_window
            .max(self.cfg.down.stabilization_window);
        while self
            .recommendations
            .front()
            .is_some_and(|&(t, _)| t <= now - keep)
        {
            self.recommendations.pop_front();
        }
        // Rate policies.
        if rec > current {
            let limit = self.up_limit(now, current).max(current).min(cmax);
            rec = rec.min(limit);
        } else if rec < current {
            let limit = self.down_limit(now, current).min(current).max(cmin);
            rec = rec.max(limit);
        }
        if rec > current {
            self.up_events.push_back((now, rec - current));
        } else if rec < current {
            self.down_events.push_back((now, current - rec));
        }
        for ev in [&mut self.up_events, &mut self.down_events] {
            while ev.front().is_some_and(|&(t, _)| t <= now - 1800.0) {
                ev.pop_front();
            }
        }
        rec
    }

    /// The per-pod metric over the metric window (`None` without ready pods), at the
    /// resolution Kubernetes computes it with: utilization as a whole percentage
    /// (truncated, as `int32(metricsTotal·100 / requestsTotal)`), other metrics in
    /// milli-units (rounded up, as `Quantity.MilliValue`).
    pub fn observe(&self, sig: &Signals) -> Option<f64> {
        let w = self.cfg.metric_window;
        let v = match self.cfg.metric {
            HpaMetric::Utilization => sig.mean_some(w, |s| {
                let r = s.serving();
                (r > 0).then(|| s.busy.min(r) as f64 / r as f64)
            }),
            HpaMetric::InFlight => sig.mean_some(w, |s| {
                let r = s.serving();
                (r > 0).then(|| s.in_flight() / r as f64)
            }),
            HpaMetric::RequestRate => {
                let pods = sig.mean_some(w, |s| {
                    let r = s.serving();
                    (r > 0).then_some(r as f64)
                })?;
                Some(sig.arrival_rate(w)? / pods)
            }
            HpaMetric::External => sig.mean_some(w, |s| s.external),
        }?;
        Some(match self.cfg.metric {
            HpaMetric::Utilization => (v * 100.0 + 1e-9).floor() / 100.0,
            _ => (v * 1000.0 - 1e-9).ceil().max(0.0) / 1000.0,
        })
    }

    /// `metric / target` computed on the integer scale of the metric (percent or milli).
    fn ratio(&self, per_pod: f64) -> f64 {
        let scale = match self.cfg.metric {
            HpaMetric::Utilization => 100.0,
            _ => 1000.0,
        };
        (per_pod * scale).round() / (self.cfg.target * scale).round().max(1.0)
    }
}

impl Autoscaler for Hpa {
    fn period(&self) -> f64 {
        self.cfg.sync_period
    }
    fn horizon(&self) -> f64 {
        self.cfg.metric_window
    }
    fn decide(&mut self, t: f64, sig: &Signals, current: usize) -> usize {
        let Some(last) = sig.last().copied() else {
            return current;
        };
        // `reconcileAutoscaler`: outside [minReplicas, maxReplicas] the count goes
        // straight to the bound, before metrics and stabilization.
        // A target scaled to zero by hand has autoscaling off (`Spec.Replicas == 0`).
        if current == 0 && self.cfg.min_replicas != 0 {
            return 0;
        }
        if current > self.cfg.max_replicas {
            return self.cfg.max_replicas;
        }
        if current < self.cfg.min_replicas {
            return self.cfg.min_replicas;
        }
        let ready = last.serving();
        let desired = match self.observe(sig) {
            Some(m) if ready > 0 => self.calculate(current, ready, last.starting, m),
            _ => current,
        };
        self.normalize(t, current, desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa() -> Hpa {
        Hpa::new(HpaConfig::new(HpaMetric::Utilization, 0.5)).unwrap()
    }

    fn samples(n: usize, ready: usize, busy: usize) -> Signals {
        let mut sig = Signals::new(1.0, 600.0);
        for i in 0..n {
            sig.push(
                i as f64,
                &crate::sim::View {
                    ready,
                    busy,
                    in_service: busy,
                    target: ready,
                    ..crate::sim::View::default()
                },
            );
        }
        sig
    }

    #[test]
    fn above_max_replicas_goes_straight_to_max() {
        // kubernetes horizontal_test.go TestTooManyReplicas / TestScaleDownRCImmediately:
        // 10 replicas with maxReplicas 5 scale to 5 at once, whatever the metric and
        // the stabilization window say.
        let mut c = HpaConfig::new(HpaMetric::Utilization, 0.5);
        c.min_replicas = 2;
        c.max_replicas = 5;
        let mut h = Hpa::new(c).unwrap();
        let sig = samples(120, 10, 10); // every pod busy: the metric asks for more
        assert_eq!(h.decide(119.0, &sig, 10), 5);
        // below minReplicas: straight to the minimum (TestScaleUpOneMetricEmpty analogue)
        let sig = samples(120, 1, 0);
        assert_eq!(h.decide(119.0, &sig, 1), 2);
    }

    #[test]
    fn formula_and_tolerance() {
        let h = hpa();
        // 4 pods at 75 % vs 50 %: ratio 1.5 → ceil(6) = 6.
        assert_eq!(h.calculate(4, 4, 0, 0.75), 6);
        // 47 % vs 50 %: ratio 0.94, within the 10 % tolerance: hold.
        assert_eq!(h.calculate(8, 8, 0, 0.47), 8);
        // 40 %: ratio 0.8 → ceil(6.4) = 7.
        assert_eq!(h.calculate(8, 8, 0, 0.40), 7);
        // 57 %: ratio 1.14 → ceil(9.12) = 10.
        assert_eq!(h.calculate(8, 8, 0, 0.57), 10);
        // 55 %: ratio 1.1, and in float64 |1 − 1.1| = 0.10000000000000009 > 0.1, so the
        // controller (Go float64, as here) scales: ceil(4.4) = 5.
        assert_eq!(h.calculate(4, 4, 0, 0.55), 5);
        // 54 %: ratio 1.08: hold.
        assert_eq!(h.calculate(4, 4, 0, 0.54), 4);
        // No ready pods: hold.
        assert_eq!(h.calculate(3, 0, 3, 1.0), 3);
    }

    #[test]
    fn unready_pods_count_as_zero_on_scale_up() {
        let h = hpa();
        // 2 ready at 1.0 (ratio 2), 2 starting: new ratio 2·2/4 = 1.0 → within tolerance, hold.
        assert_eq!(h.calculate(4, 2, 2, 1.0), 4);
        // 2 ready at 1.0, 1 starting: new ratio 4/3 → ceil(4/3 · 3) = 4.
        assert_eq!(h.calculate(3, 2, 1, 1.0), 4);
        // Scale-down ignores unready pods: 4 ready at 0.25 → ceil(0.5·4) = 2.
        assert_eq!(h.calculate(6, 4, 2, 0.25), 2);
    }

    #[test]
    fn per_direction_tolerance() {
        let mut cfg = HpaConfig::new(HpaMetric::InFlight, 10.0);
        cfg.up.tolerance = 0.0;
        cfg.down.tolerance = 0.5;
        let h = Hpa::new(cfg).unwrap();
        assert_eq!(h.calculate(10, 10, 0, 10.5), 11);
        assert_eq!(h.calculate(10, 10, 0, 6.0), 10);
        assert_eq!(h.calculate(10, 10, 0, 4.0), 4);
    }

    #[test]
    fn downscale_stabilization_takes_the_max_over_the_window() {
        let mut h = hpa();
        // Recommendations 10 at t=0, then 4: the count stays 10 until t = 300 passes.
        assert_eq!(h.normalize(0.0, 10, 10), 10);
        assert_eq!(h.normalize(15.0, 10, 4), 10);
        assert_eq!(h.normalize(285.0, 10, 4), 10);
        // At t = 300 the t=0 recommendation leaves the window (t > now − 300 is false).
        assert_eq!(h.normalize(300.0, 10, 4), 4);
    }

    #[test]
    fn scale_up_policies_max_of_percent_and_pods() {
        let mut h = hpa();
        // From 2: Percent 100 → 4, Pods 4 → 6; Max → 6.
        assert_eq!(h.normalize(0.0, 2, 50), 6);
        // Within the same 15 s period the budget is used: period start is 2 → limit 6.
        assert_eq!(h.normalize(10.0, 6, 50), 6);
        // Next period: start 6 → Percent 12, Pods 10 → 12.
        assert_eq!(h.normalize(15.0, 6, 50), 12);
    }

    #[test]
    fn scale_up_select_min_and_disabled() {
        let mut cfg = HpaConfig::new(HpaMetric::Utilization, 0.5);
        cfg.up.select = Select::Min;
        let mut h = Hpa::new(cfg.clone()).unwrap();
        // From 2: min(4, 6) = 4.
        assert_eq!(h.normalize(0.0, 2, 50), 4);
        cfg.up.select = Select::Disabled;
        let mut h = Hpa::new(cfg).unwrap();
        assert_eq!(h.normalize(0.0, 2, 50), 2);
    }

    #[test]
    fn percent_rounds_up_and_scale_down_policies() {
        let mut cfg = HpaConfig::new(HpaMetric::Utilization, 0.5);
        cfg.up.policies = vec![RatePolicy {
            kind: PolicyKind::Percent,
            value: 10.0,
            period: 60.0,
        }];
        cfg.down.stabilization_window = 0.0;
        cfg.down.policies = vec![RatePolicy {
            kind: PolicyKind::Pods,
            value: 2.0,
            period: 60.0,
        }];
        let mut h = Hpa::new(cfg).unwrap();
        // 10 % of 72 = 7.2 → ceil(79.2) = 80.
        assert_eq!(h.normalize(0.0, 72, 100), 80);
        // Down: at most 2 pods per 60 s, counted from the period start.
        let mut cfg = HpaConfig::new(HpaMetric::Utilization, 0.5);
        cfg.down.stabilization_window = 0.0;
        cfg.down.policies = vec![RatePolicy {
            kind: PolicyKind::Pods,
            value: 2.0,
            period: 60.0,
        }];
        let mut h = Hpa::new(cfg).unwrap();
        assert_eq!(h.normalize(0.0, 10, 1), 8);
        assert_eq!(h.normalize(30.0, 8, 1), 8);
        assert_eq!(h.normalize(60.0, 8, 1), 6);
    }

    #[test]
    fn initial_recommendation_holds_a_new_hpa() {
        let mut h = hpa();
        // The current count (3) is the first recommendation: no scale-down for 300 s.
        assert_eq!(h.normalize(0.0, 3, 1), 3);
        assert_eq!(h.normalize(299.0, 3, 1), 3);
        assert_eq!(h.normalize(300.0, 3, 1), 1);
    }

    #[test]
    fn min_max_and_validation() {
        let mut cfg = HpaConfig::new(HpaMetric::Utilization, 0.5);
        cfg.down.stabilization_window = 0.0;
        let mut h = Hpa::new(cfg).unwrap();
        assert_eq!(h.normalize(0.0, 3, 0), 1);
        let mut cfg = HpaConfig::new(HpaMetric::Utilization, 0.5);
        cfg.max_replicas = 5;
        let mut h = Hpa::new(cfg).unwrap();
        assert_eq!(h.normalize(0.0, 4, 50), 5);
        let mut cfg = HpaConfig::new(HpaMetric::Utilization, 1.5);
        assert!(cfg.validate().is_err());
        cfg.target = 0.5;
        cfg.min_replicas = 0;
        assert!(
            matches!(cfg.validate(), Err(QcoreError::InvalidArgument { name, .. }) if name == "min_replicas")
        );
        assert!(Rules::parse_policies("up_policies", "pods:4:15,percent:100:15").is_ok());
        assert!(Rules::parse_policies("up_policies", "pods:4").is_err());
        assert!(Rules::parse_policies("up_policies", "pods:4:3600").is_err());
    }
}
