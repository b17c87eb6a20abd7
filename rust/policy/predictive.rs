//! A predictive autoscaler: forecast the arrival rate `lead` periods ahead with Holt's
//! linear (level + trend) exponential smoothing of the per-period rates, then provision
//! the smallest `c` whose M/M/c response-time quantile meets the SLO
//! ([`crate::queueing::mmc::min_servers_mmc`], Erlang C), or, with `on_wait`, whose
//! waiting-time quantile meets it (for long service times, whose own tail exceeds any
//! useful response-time SLO). Requests already waiting are
//! added as extra demand to be drained within one period. Scale-ups apply at once;
//! scale-downs take the max of the recommendations over `down_window` seconds.

use std::collections::VecDeque;

use super::{check_bounds, check_num, Autoscaler, Signals};
use crate::error::{QcoreError, Result};
use crate::queueing::mmc::{min_servers_mmc, SloTarget};

#[derive(Clone, Debug, PartialEq)]
pub struct PredictiveConfig {
    /// Mean service time of one request on one replica (seconds).
    pub service_mean: f64,
    /// The SLO: `quantile` of the response time at most `slo` seconds.
    pub slo: f64,
    pub quantile: f64,
    /// Whether the SLO bounds the response time (wait + service) or the wait alone.
    pub on_wait: bool,
    pub period: f64,
    /// Holt smoothing of the level and of the trend.
    pub alpha: f64,
    pub beta: f64,
    /// Forecast horizon in periods (cover the start-up delay: `1 + startup / period`).
    pub lead: f64,
    /// Multiplier on the forecast rate.
    pub headroom: f64,
    pub down_window: f64,
    pub min_replicas: usize,
    pub max_replicas: usize,
}

impl PredictiveConfig {
    fn slo_target(&self) -> SloTarget {
        if self.on_wait {
            SloTarget::Wait
        } else {
            SloTarget::Response
        }
    }

    pub fn new(service_mean: f64, slo: f64) -> Self {
        PredictiveConfig {
            service_mean,
            slo,
            quantile: 0.99,
            on_wait: false,
            period: 15.0,
            alpha: 0.5,
            beta: 0.2,
            lead: 1.0,
            headroom: 1.0,
            down_window: 300.0,
            min_replicas: 1,
            max_replicas: 100,
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_num("service_mean", self.service_mean, 0.0, true)?;
        check_num("slo", self.slo, 0.0, true)?;
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(QcoreError::invalid(
                "quantile",
                format!("must be in (0, 1), got {}", self.quantile),
            ));
        }
        // An SLO at or below the service-time quantile can never be met.
        min_servers_mmc(
            0.0,
            1.0 / self.service_mean,
            self.quantile,
            self.slo,
            self.slo_target(),
        )
        .map_err(|_| {
            QcoreError::invalid(
                "slo",
                format!(
                    "= {} s is not above the {}-quantile of an exponential service time \
                         of mean {} s; no replica count meets it",
                    self.slo, self.quantile, self.service_mean
                ),
            )
        })?;
        check_num("period", self.period, 0.0, true)?;
        if self.period > 86_400.0 {
            return Err(QcoreError::invalid("period", "must be at most one day"));
        }
        for (n, v) in [("alpha", self.alpha), ("beta", self.beta)] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(QcoreError::invalid(
                    n,
                    format!("must be in (0, 1], got {v}"),
                ));
            }
        }
        check_num("lead", self.lead, 0.0, false)?;
        check_num("headroom", self.headroom, 0.0, true)?;
        check_num("down_window", self.down_window, 0.0, false)?;
        check_bounds(
            "min_replicas",
            self.min_replicas,
            "max_replicas",
            self.max_replicas,
        )
    }
}

#[derive(Clone, Debug)]
pub struct Predictive {
    pub cfg: PredictiveConfig,
    level: f64,
    trend: f64,
    n: u64,
    recs: VecDeque<(f64, usize)>,
}

impl Predictive {
    pub fn new(cfg: PredictiveConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Predictive {
            cfg,
            level: 0.0,
            trend: 0.0,
            n: 0,
            recs: VecDeque::new(),
        })
    }

    /// Feed one period's observed rate; returns the forecast `lead` periods ahead.
    pub fn observe(&mut self, rate: f64) -> f64 {
        let (a, b) = (self.cfg.alpha, self.cfg.beta);
        if self.n == 0 {
            self.level = rate;
            self.trend = 0.0;
        } else {
            let prev = self.level;
            self.level = a * rate + (1.0 - a) * (self.level + self.trend);
            self.trend = b * (self.level - prev) + (1.0 - b) * self.trend;
        }
        self.n += 1;
        (self.level + self.cfg.lead * self.trend).max(0.0)
    }

    /// The smallest replica count whose M/M/c response quantile meets the SLO at
    /// `rate` (bounded by min/max replicas).
    pub fn provision(&self, rate: f64) -> usize {
        let c = &self.cfg;
        let n = match min_servers_mmc(
            rate,
            1.0 / c.service_mean,
            c.quantile,
            c.slo,
            c.slo_target(),
        ) {
            Ok(n) => n.min(c.max_replicas as u64) as usize,
            Err(_) => c.max_replicas,
        };
        n.clamp(c.min_replicas, c.max_replicas)
    }
}

impl Autoscaler for Predictive {
    fn period(&self) -> f64 {
        self.cfg.period
    }
    fn horizon(&self) -> f64 {
        self.cfg.period
    }
    fn decide(&mut self, t: f64, sig: &Signals, current: usize) -> usize {
        let rate = sig.arrival_rate(self.cfg.period).unwrap_or(0.0);
        let forecast = self.observe(rate);
        let backlog = sig.last().map_or(0.0, |s| s.in_queue as f64) / self.cfg.period;
        let want = self.provision(forecast * self.cfg.headroom + backlog);
        self.recs.push_back((t, want));
        let cut = t - self.cfg.down_window;
        while self.recs.front().is_some_and(|&(u, _)| u <= cut) {
            self.recs.pop_front();
        }
        let hold = self.recs.iter().map(|&(_, n)| n).max().unwrap_or(want);
        if want >= current {
            want
        } else {
            hold.min(current).max(want)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queueing::mmc::MMc;

    #[test]
    fn provision_is_the_smallest_c_meeting_the_slo() {
        let p = Predictive::new(PredictiveConfig::new(1.0, 5.0)).unwrap();
        for rate in [0.5, 3.0, 10.0, 40.0] {
            let c = p.provision(rate);
            let q = MMc::new(rate, 1.0, c as i64)
                .unwrap()
                .response_quantile(0.99)
                .unwrap();
            assert!(q <= 5.0, "rate {rate}: c {c} gives p99 {q}");
            if c > 1 {
                let worse = MMc::new(rate, 1.0, c as i64 - 1)
                    .ok()
                    .map(|m| m.response_quantile(0.99).unwrap());
                assert!(
                    worse.is_none_or(|w| w > 5.0),
                    "rate {rate}: c − 1 also meets it"
                );
            }
        }
    }

    #[test]
    fn holt_follows_a_linear_ramp() {
        let mut p = Predictive::new(PredictiveConfig::new(1.0, 5.0)).unwrap();
        let mut f = 0.0;
        for k in 0..200 {
            f = p.observe(10.0 + f64::from(k));
        }
        // One period ahead of the last observation (209) is 210.
        assert!((f - 210.0).abs() < 0.5, "{f}");
    }

    #[test]
    fn wait_slo_provisions_on_the_wait_quantile() {
        let mut c = PredictiveConfig::new(30.0, 10.0);
        c.on_wait = true;
        let p = Predictive::new(c).unwrap();
        let n = p.provision(0.2);
        let m = MMc::new(0.2, 1.0 / 30.0, n as i64).unwrap();
        assert!(m.wait_quantile(0.99).unwrap() <= 10.0);
        let m = MMc::new(0.2, 1.0 / 30.0, n as i64 - 1).unwrap();
        assert!(m.wait_quantile(0.99).unwrap() > 10.0);
    }

    #[test]
    fn unreachable_slo_is_rejected() {
        // p99 of Exp(1) alone is 4.6 s.
        let e = Predictive::new(PredictiveConfig::new(1.0, 4.0)).unwrap_err();
        assert!(matches!(e, QcoreError::InvalidArgument { name, .. } if name == "slo"));
    }
}
