//! AWS Application Auto Scaling target tracking (ANCHORS §1.4): one datapoint per
//! `period` (60 s); scale out when the last `out_points` (3) datapoints are above the
//! target, to `ceil(current × metric / target)` ("capacity added in proportion to the
//! metric"); scale in only when the last `in_points` (15) datapoints are below the
//! target by more than `scale_in_margin` (10 %). Cooldowns (300 s by default): no
//! scale-out within the scale-out cooldown of the last scale-out; no scale-in within
//! the scale-in cooldown of the last scale-in nor within the scale-out cooldown of the
//! last scale-out; a scale-out during a scale-in cooldown proceeds at once.
//!
//! Metrics: arrivals per second per ready replica, or latency (the mean, or a quantile,
//! of the response times completed in the period).

use std::collections::VecDeque;

use super::{check_bounds, check_num, Autoscaler, Signals};
use crate::error::{QcoreError, Result};

/// The tracked metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TtMetric {
    /// Arrivals per second per ready replica.
    RatePerReplica,
    /// Response time of completions in the period: the mean (`None`) or a quantile.
    Latency(Option<f64>),
    /// The value the driver supplies in [`super::Sample::external`], averaged over the
    /// period (a missing datapoint when no sample has one).
    External,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TargetTrackingConfig {
    pub metric: TtMetric,
    pub target: f64,
    pub period: f64,
    pub out_points: usize,
    pub in_points: usize,
    pub scale_in_margin: f64,
    pub scale_out_cooldown: f64,
    pub scale_in_cooldown: f64,
    pub disable_scale_in: bool,
    pub min_replicas: usize,
    pub max_replicas: usize,
}

impl TargetTrackingConfig {
    pub fn new(metric: TtMetric, target: f64) -> Self {
        TargetTrackingConfig {
            metric,
            target,
            period: 60.0,
            out_points: 3,
            in_points: 15,
            scale_in_margin: 0.1,
            scale_out_cooldown: 300.0,
            scale_in_cooldown: 300.0,
            disable_scale_in: false,
            min_replicas: 1,
            max_replicas: 100,
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_num("target", self.target, 0.0, true)?;
        check_num("period", self.period, 0.0, true)?;
        if self.out_points > 10_000 || self.in_points > 10_000 {
            return Err(QcoreError::invalid(
                "out_points",
                "out_points and in_points must be at most 10000",
            ));
        }
        if self.out_points == 0 || self.in_points == 0 {
            return Err(QcoreError::invalid(
                "out_points",
                "out_points and in_points must be at least 1",
            ));
        }
        if !(0.0..1.0).contains(&self.scale_in_margin) {
            return Err(QcoreError::invalid(
                "scale_in_margin",
                format!("must be in [0, 1), got {}", self.scale_in_margin),
            ));
        }
        check_num("scale_out_cooldown", self.scale_out_cooldown, 0.0, false)?;
        check_num("scale_in_cooldown", self.scale_in_cooldown, 0.0, false)?;
        if let TtMetric::Latency(Some(q)) = self.metric {
            if !(q > 0.0 && q < 1.0) {
                return Err(QcoreError::invalid(
                    "quantile",
                    format!("must be in (0, 1), got {q}"),
                ));
            }
        }
        if self.min_replicas < 1 {
            return Err(QcoreError::invalid("min_replicas", "must be at least 1"));
        }
        check_bounds(
            "min_replicas",
            self.min_replicas,
            "max_replicas",
            self.max_replicas,
        )
    }
}

#[derive(Clone, Debug)]
pub struct TargetTracking {
    pub cfg: TargetTrackingConfig,
    points: VecDeque<f64>,
    last_out: Option<f64>,
    last_in: Option<f64>,
}

impl TargetTracking {
    pub fn new(cfg: TargetTrackingConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(TargetTracking {
            cfg,
            points: VecDeque::new(),
            last_out: None,
            last_in: None,
        })
    }

    /// Add a datapoint (NaN: missing, never breaching) and decide at time `now`.
    pub fn step(&mut self, now: f64, current: usize, point: f64) -> usize {
        self.points.push_back(point);
        let keep = self.cfg.out_points.max(self.cfg.in_points);
        while self.points.len() > keep {
            self.points.pop_front();
        }
        let c = &self.cfg;
        let last_n = |n: usize| -> Option<Vec<f64>> {
            (self.points.len() >= n).then(|| self.points.iter().rev().take(n).copied().collect())
        };
        let high = last_n(c.out_points).is_some_and(|v| v.iter().all(|&x| x > c.target));
        let low_bound = c.target * (1.0 - c.scale_in_margin);
        let low = last_n(c.in_points).is_some_and(|v| v.iter().all(|&x| x < low_bound));
        let since = |t: Option<f64>| t.map_or(f64::INFINITY, |u| now - u);
        let proportional = ((current.max(1) as f64) * point / c.target).ceil();
        if high && since(self.last_out) >= c.scale_out_cooldown {
            let d = (proportional as usize).clamp(c.min_replicas, c.max_replicas);
            if d > current {
                self.last_out = Some(now);
                self.last_in = None;
                return d;
            }
        }
        if low
            && !c.disable_scale_in
            && since(self.last_in) >= c.scale_in_cooldown
            && since(self.last_out) >= c.scale_out_cooldown
        {
            let d = (proportional as usize).clamp(c.min_replicas, c.max_replicas);
            if d < current {
                self.last_in = Some(now);
                return d;
            }
        }
        current.clamp(c.min_replicas, c.max_replicas)
    }
}

impl Autoscaler for TargetTracking {
    fn period(&self) -> f64 {
        self.cfg.period
    }
    fn horizon(&self) -> f64 {
        self.cfg.period
    }
    fn wants_responses(&self) -> bool {
        matches!(self.cfg.metric, TtMetric::Latency(_))
    }
    fn decide(&mut self, t: f64, sig: &Signals, current: usize) -> usize {
        let p = self.cfg.period;
        let point = match self.cfg.metric {
            TtMetric::RatePerReplica => {
                let pods = sig.mean(p, |s| s.serving() as f64).unwrap_or(0.0).max(1.0);
                sig.arrival_rate(p).map_or(f64::NAN, |r| r / pods)
            }
            TtMetric::Latency(q) => {
                let mut v = sig.responses_since(t, p);
                if v.is_empty() {
                    f64::NAN
                } else if let Some(q) = q {
                    v.sort_by(f64::total_cmp);
                    super::nearest_rank(&v, q).unwrap_or(f64::NAN)
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            }
            TtMetric::External => sig.mean_some(p, |s| s.external).unwrap_or(f64::NAN),
        };
        self.step(t, current, point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tt() -> TargetTracking {
        TargetTracking::new(TargetTrackingConfig::new(TtMetric::RatePerReplica, 10.0)).unwrap()
    }

    #[test]
    fn scale_out_needs_three_breaching_points() {
        let mut a = tt();
        assert_eq!(a.step(60.0, 4, 20.0), 4);
        assert_eq!(a.step(120.0, 4, 20.0), 4);
        // Third point above target: ceil(4 × 15/10) = 6.
        assert_eq!(a.step(180.0, 4, 15.0), 6);
        // Cooldown: no further scale-out for 300 s.
        assert_eq!(a.step(240.0, 6, 30.0), 6);
        assert_eq!(a.step(480.0, 6, 30.0), 18);
    }

    #[test]
    fn scale_in_needs_fifteen_points_below_the_margin() {
        let mut a = tt();
        for k in 0..14 {
            assert_eq!(a.step(60.0 * f64::from(k), 10, 5.0), 10);
        }
        assert_eq!(a.step(60.0 * 14.0, 10, 5.0), 5);
        // 9.5 is below target but within 10 %: never scales in.
        let mut a = tt();
        for k in 0..30 {
            assert_eq!(a.step(60.0 * f64::from(k), 10, 9.5), 10);
        }
        // Missing datapoints (NaN) breach nothing.
        let mut a = tt();
        for k in 0..30 {
            assert_eq!(a.step(60.0 * f64::from(k), 10, f64::NAN), 10);
        }
    }

    #[test]
    fn validation() {
        let mut c = TargetTrackingConfig::new(TtMetric::Latency(Some(1.5)), 1.0);
        assert!(
            matches!(c.validate(), Err(QcoreError::InvalidArgument { name, .. }) if name == "quantile")
        );
        c.metric = TtMetric::Latency(None);
        c.target = -1.0;
        assert!(c.validate().is_err());
    }
}
