//! Policies declared by name: a kind and its named numbers and strings (what a TOML
//! table or a Python keyword list holds), turned into configured autoscalers and
//! admission controllers. The defaults of every named field and the domain checks live
//! here, beside the policies, so every caller gets the same ones.

use std::collections::HashMap;

use super::{
    replay, AdaptiveLifo, Admission, Aimd, ArrivalRule, Autoscaler, ClientThrottle, Codel,
    DequeueRule, Fixed, Gradient2, Hpa, HpaConfig, HpaMetric, Kpa, KpaConfig, KpaMetric,
    Predictive, PredictiveConfig, Replay, ReplayOptions, Rules, Select, TargetTracking,
    TargetTrackingConfig, TokenBucket, TtMetric,
};
use crate::error::{QcoreError, Result};
use crate::sim::{Discipline, Rng, SimConfig, Stream};

/// The largest replica count, queue limit or other count a policy field may hold.
pub const MAX_COUNT: usize = 1 << 24;

/// A policy by name: `kind` and its named fields (unset fields take their defaults).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicySpec {
    pub kind: String,
    pub numbers: HashMap<String, f64>,
    pub strings: HashMap<String, String>,
}

impl PolicySpec {
    fn f(&self, k: &str, default: f64) -> f64 {
        self.numbers.get(k).copied().unwrap_or(default)
    }

    fn flag(&self, k: &str) -> bool {
        self.f(k, 0.0) != 0.0
    }

    fn n(&self, k: &str, default: usize) -> Result<usize> {
        match self.numbers.get(k) {
            None => Ok(default),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(&v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_COUNT as f64 => {
                Ok(v as usize)
            }
            Some(v) => Err(QcoreError::invalid(
                k,
                format!("must be a non-negative integer at most {MAX_COUNT}, got {v}"),
            )),
        }
    }

    fn s<'a>(&'a self, k: &str, default: &'a str) -> &'a str {
        self.strings.get(k).map_or(default, String::as_str)
    }

    fn hpa(&self) -> Result<Hpa> {
        let mut c = HpaConfig::new(
            HpaMetric::parse(self.s("metric", "utilization"))?,
            self.f("target", 0.7),
        );
        c.min_replicas = self.n("min_replicas", c.min_replicas)?;
        c.max_replicas = self.n("max_replicas", c.max_replicas)?;
        c.sync_period = self.f("sync_period", c.sync_period);
        c.metric_window = self.f("metric_window", c.metric_window);
        c.up.stabilization_window = self.f("up_stabilization", c.up.stabilization_window);
        c.down.stabilization_window = self.f("down_stabilization", c.down.stabilization_window);
        c.up.tolerance = self.f("up_tolerance", c.up.tolerance);
        c.down.tolerance = self.f("down_tolerance", c.down.tolerance);
        if let Some(s) = self.strings.get("up_policies") {
            c.up.policies = Rules::parse_policies("up_policies", s)?;
        }
        if let Some(s) = self.strings.get("down_policies") {
            c.down.policies = Rules::parse_policies("down_policies", s)?;
        }
        c.up.select = Select::parse("up_select", self.s("up_select", "Max"))?;
        c.down.select = Select::parse("down_select", self.s("down_select", "Max"))?;
        Hpa::new(c)
    }

    fn kpa(&self) -> Result<Kpa> {
        let metric = match self.s("metric", "concurrency") {
            "concurrency" => KpaMetric::Concurrency,
            "rps" => KpaMetric::Rps,
            "external" => KpaMetric::External,
            o => {
                return Err(QcoreError::invalid(
                    "metric",
                    format!("must be 'concurrency', 'rps' or 'external', got {o:?}"),
                ))
            }
        };
        // Knative's defaults: container-concurrency-target-default 100, rps 200.
        let default = if metric == KpaMetric::Rps {
            200.0
        } else {
            100.0
        };
        let mut c = KpaConfig::new(metric, self.f("target", default));
        c.target_utilization = self.f("target_utilization", c.target_utilization);
        c.stable_window = self.f("stable_window", c.stable_window);
        c.panic_window_fraction = self.f("panic_window_fraction", c.panic_window_fraction);
        c.panic_threshold = self.f("panic_threshold", c.panic_threshold);
        c.max_scale_up_rate = self.f("max_scale_up_rate", c.max_scale_up_rate);
        c.max_scale_down_rate = self.f("max_scale_down_rate", c.max_scale_down_rate);
        c.tick = self.f("tick", c.tick);
        c.scale_to_zero_grace = self.f("scale_to_zero_grace", c.scale_to_zero_grace);
        c.scale_down_delay = self.f("scale_down_delay", c.scale_down_delay);
        c.min_scale = self.n("min_scale", c.min_scale)?;
        c.max_scale = self.n("max_scale", c.max_scale)?;
        Kpa::new(c)
    }

    fn target_tracking(&self) -> Result<TargetTracking> {
        let metric = match self.s("metric", "rate") {
            "rate" => TtMetric::RatePerReplica,
            "latency" => {
                let q = self.f("quantile", f64::NAN);
                TtMetric::Latency((!q.is_nan()).then_some(q))
            }
            "external" => TtMetric::External,
            o => {
                return Err(QcoreError::invalid(
                    "metric",
                    format!("must be 'rate', 'latency' or 'external', got {o:?}"),
                ))
            }
        };
        let mut c = TargetTrackingConfig::new(metric, self.f("target", f64::NAN));
        c.period = self.f("period", c.period);
        c.out_points = self.n("out_points", c.out_points)?;
        c.in_points = self.n("in_points", c.in_points)?;
        c.scale_in_margin = self.f("scale_in_margin", c.scale_in_margin);
        c.scale_out_cooldown = self.f("scale_out_cooldown", c.scale_out_cooldown);
        c.scale_in_cooldown = self.f("scale_in_cooldown", c.scale_in_cooldown);
        c.disable_scale_in = self.flag("disable_scale_in");
        c.min_replicas = self.n("min_replicas", c.min_replicas)?;
        c.max_replicas = self.n("max_replicas", c.max_replicas)?;
        TargetTracking::new(c)
    }

    fn predictive(&self) -> Result<Predictive> {
        let mut c =
            PredictiveConfig::new(self.f("service_mean", f64::NAN), self.f("slo", f64::NAN));
        c.quantile = self.f("quantile", c.quantile);
        c.on_wait = self.flag("on_wait");
        c.period = self.f("period", c.period);
        c.alpha = self.f("alpha", c.alpha);
        c.beta = self.f("beta", c.beta);
        c.lead = self.f("lead", c.lead);
        c.headroom = self.f("headroom", c.headroom);
        c.down_window = self.f("down_window", c.down_window);
        c.min_replicas = self.n("min_replicas", c.min_replicas)?;
        c.max_replicas = self.n("max_replicas", c.max_replicas)?;
        Predictive::new(c)
    }

    /// The autoscaler this spec declares (`hpa`, `kpa`, `target_tracking`, `predictive`
    /// or `fixed`; `fixed` needs `replicas`), for a driver other than [`Self::replay`]
    /// (the LLM fleet).
    ///
    /// # Errors
    /// An unknown kind or a field outside its domain (named).
    pub fn autoscaler(&self) -> Result<Box<dyn Autoscaler + Send>> {
        Ok(match self.kind.as_str() {
            "hpa" => Box::new(self.hpa()?),
            "kpa" => Box::new(self.kpa()?),
            "target_tracking" => Box::new(self.target_tracking()?),
            "predictive" => Box::new(self.predictive()?),
            "fixed" => {
                let Some(&v) = self.numbers.get("replicas") else {
                    return Err(QcoreError::invalid(
                        "replicas",
                        "is required by a fixed policy",
                    ));
                };
                let replicas = self.n("replicas", 0)?;
                if v < 1.0 {
                    return Err(QcoreError::invalid("replicas", "must be at least 1"));
                }
                Box::new(Fixed { replicas })
            }
            o => {
                return Err(QcoreError::invalid(
                    "policy",
                    format!(
                        "has an unknown kind {o:?} (hpa, kpa, target_tracking, predictive, fixed)"
                    ),
                ))
            }
        })
    }

    /// Replay `cfg` (replication `rep`) under this autoscaling policy (`hpa`, `kpa`,
    /// `target_tracking`, `predictive` or `fixed`) with `admission` in front.
    ///
    /// # Errors
    /// An unknown kind, a field outside its domain (named), or a replay error.
    pub fn replay(
        &self,
        cfg: &SimConfig,
        rep: u64,
        admission: Admission,
        opts: &ReplayOptions,
    ) -> Result<Replay> {
        match self.kind.as_str() {
            "hpa" => replay(cfg, rep, self.hpa()?, admission, opts),
            "kpa" => replay(cfg, rep, self.kpa()?, admission, opts),
            "target_tracking" => replay(cfg, rep, self.target_tracking()?, admission, opts),
            "predictive" => replay(cfg, rep, self.predictive()?, admission, opts),
            "fixed" => {
                let replicas = self.n("replicas", cfg.servers)?;
                replay(cfg, rep, Fixed { replicas }, admission, opts)
            }
            o => Err(QcoreError::invalid(
                "policy",
                format!("has an unknown kind {o:?} (hpa, kpa, target_tracking, predictive, fixed)"),
            )),
        }
    }

    /// The admission controller this spec declares (`arrival`, `dequeue`, client
    /// throttling and adaptive LIFO fields), with the class of each request (0 high, 1
    /// low) for the priority rule; the client throttle draws from stream
    /// (`seed`, `rep`, control).
    ///
    /// # Errors
    /// An unknown rule, a field outside its domain, `classes` missing for the priority
    /// rule or holding a value other than 0 and 1.
    pub fn admission(&self, classes: Option<&[u8]>, seed: u64, rep: u64) -> Result<Admission> {
        if let Some(c) = classes {
            if let Some(i) = c.iter().position(|&x| x > 1) {
                return Err(QcoreError::invalid(
                    "classes",
                    format!("must hold 0 (high) or 1 (low); index {i} holds {}", c[i]),
                ));
            }
        }
        let client = if self.flag("client_throttle") {
            // Google SRE book, "Handling overload": K = 2 over the last two minutes.
            Some(ClientThrottle::new(
                self.f("k", 2.0),
                self.f("throttle_window", 120.0),
                Rng::stream(seed, rep, Stream::Control),
            )?)
        } else {
            None
        };
        let arrival = match self.s("arrival", "none") {
            "none" => ArrivalRule::None,
            "drop_tail" => ArrivalRule::DropTail {
                limit: self.n("queue_limit", 0)?,
            },
            "token_bucket" => ArrivalRule::TokenBucket(TokenBucket::new(
                self.f("rate", f64::NAN),
                self.f("burst", f64::NAN),
            )?),
            // Netflix concurrency-limits' AIMDLimit defaults.
            "aimd" => ArrivalRule::Aimd(Aimd::new(
                self.f("initial_limit", 10.0),
                self.f("backoff", 0.9),
                self.f("timeout", 5.0),
                self.f("max_limit", 1000.0),
            )?),
            // Netflix concurrency-limits' Gradient2Limit defaults.
            "gradient2" => ArrivalRule::Gradient2(Gradient2::new(
                self.f("initial_limit", 20.0),
                self.f("min_limit", 20.0),
                self.f("max_limit", 200.0),
                self.f("smoothing", 0.2),
                self.f("queue_size", 4.0),
                self.f("long_window", 600.0),
            )?),
            "priority" => {
                let Some(classes) = classes else {
                    return Err(QcoreError::invalid(
                        "classes",
                        "is required by the priority policy (0 high, 1 low per request)",
                    ));
                };
                let hi = self.n("high_limit", 0)?;
                let lo = self.n("low_limit", 0)?;
                if lo > hi {
                    return Err(QcoreError::invalid(
                        "low_limit",
                        format!(
                            "({lo}) must not exceed high_limit ({hi}): the low class is shed first"
                        ),
                    ));
                }
                ArrivalRule::Priority {
                    classes: classes.to_vec(),
                    limits: [hi, lo],
                }
            }
            o => {
                return Err(QcoreError::invalid(
                    "arrival",
                    format!("{}: unknown arrival rule {o:?}", self.kind),
                ))
            }
        };
        let dequeue = match self.s("dequeue", "none") {
            "none" => DequeueRule::None,
            "deadline" => {
                let w = self.f("max_wait", f64::NAN);
                super::check_num("max_wait", w, 0.0, false)?;
                DequeueRule::Deadline { max_wait: w }
            }
            // CoDel's defaults (RFC 8289): target 5 ms, interval 100 ms.
            "codel" => DequeueRule::Codel(Codel::new(
                self.f("codel_target", 0.005),
                self.f("codel_interval", 0.1),
            )?),
            o => {
                return Err(QcoreError::invalid(
                    "dequeue",
                    format!("{}: unknown dequeue rule {o:?}", self.kind),
                ))
            }
        };
        let admission = Admission::new(client, arrival, dequeue);
        if self.flag("adaptive_lifo") {
            let interval = self.f("lifo_interval", self.f("codel_interval", 0.1));
            return Ok(admission.with_adaptive_lifo(AdaptiveLifo::new(interval)?));
        }
        Ok(admission)
    }
}

/// A queue discipline by name: `fcfs` or `lifo`.
///
/// # Errors
/// Any other name.
pub fn discipline(name: &str) -> Result<Discipline> {
    match name {
        "fcfs" => Ok(Discipline::Fcfs),
        "lifo" => Ok(Discipline::Lifo),
        o => Err(QcoreError::invalid(
            "discipline",
            format!("must be 'fcfs' or 'lifo', got {o:?}"),
        )),
    }
}

/// Check a replica count given to a replay or an overload run.
///
/// # Errors
/// More than [`MAX_COUNT`] servers.
pub fn check_servers(name: &str, servers: usize) -> Result<()> {
    if servers > MAX_COUNT {
        return Err(QcoreError::invalid(
            name,
            format!("must be at most {MAX_COUNT}, got {servers}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, nums: &[(&str, f64)], strs: &[(&str, &str)]) -> PolicySpec {
        PolicySpec {
            kind: kind.into(),
            numbers: nums.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
            strings: strs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    #[test]
    fn counts_are_checked_by_name() {
        let e = spec("hpa", &[("max_replicas", 2.5)], &[])
            .hpa()
            .unwrap_err();
        assert!(e.to_string().contains("max_replicas"), "{e}");
        let e = spec("hpa", &[("min_replicas", -1.0)], &[])
            .hpa()
            .unwrap_err();
        assert!(e.to_string().contains("min_replicas"), "{e}");
        assert!(spec("hpa", &[("max_replicas", 7.0)], &[]).hpa().is_ok());
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(spec("kpa", &[], &[("metric", "cpu")]).kpa().is_err());
        assert!(spec("target_tracking", &[], &[("metric", "x")])
            .target_tracking()
            .is_err());
        assert!(discipline("random").is_err());
        assert!(matches!(discipline("lifo"), Ok(Discipline::Lifo)));
        let a = spec("admission", &[], &[("arrival", "nope")]);
        assert!(a.admission(None, 1, 0).is_err());
        let a = spec("admission", &[], &[("dequeue", "nope")]);
        assert!(a.admission(None, 1, 0).is_err());
    }

    #[test]
    fn priority_needs_valid_classes_and_ordered_limits() {
        let p = spec(
            "admission",
            &[("high_limit", 4.0), ("low_limit", 2.0)],
            &[("arrival", "priority")],
        );
        assert!(p.admission(None, 1, 0).is_err());
        assert!(p.admission(Some(&[0, 2]), 1, 0).is_err());
        assert!(p.admission(Some(&[0, 1, 1]), 1, 0).is_ok());
        let bad = spec(
            "admission",
            &[("high_limit", 1.0), ("low_limit", 2.0)],
            &[("arrival", "priority")],
        );
        let e = bad.admission(Some(&[0, 1]), 1, 0).unwrap_err();
        assert!(e.to_string().contains("low_limit"), "{e}");
    }

    #[test]
    fn servers_are_bounded() {
        assert!(check_servers("servers", MAX_COUNT).is_ok());
        assert!(check_servers("servers", MAX_COUNT + 1).is_err());
    }
}
