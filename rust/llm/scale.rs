//! An autoscaled fleet: the policies of [`crate::policy`] (HPA, KPA, target tracking,
//! predictive, fixed) decide the replica count from the fleet's LLM signals.
//!
//! Every `sample_interval` seconds (from the first arrival) the fleet's state is given
//! to the policy as a [`Sample`]: arrivals and completions of the interval, waiting and
//! running requests, replicas ready, starting and draining, and in
//! [`Sample::external`] the value of the [`ScaleSignal`] (read by the policies'
//! `External` metrics; the predictive policy reads the arrivals). The policy runs in a
//! [`Scaler`], at its own period, exactly as in the simulator's replays.
//!
//! A scale-up adds replicas that become routable after a cold start drawn from
//! `cold_start` (seeded); a scale-down first cancels replicas still starting (the most
//! recent first), then drains routable ones (the fewest waiting + running requests,
//! the highest slot on ties): the router stops sending them requests, they finish
//! their running and waiting requests, then leave. Routers see only the routable
//! replicas. The count asked for stays within `[min_replicas, max_replicas]`.
//! Replica-seconds count every replica from the moment it is asked for until it
//! leaves (starting, ready and draining).

use super::config::{Admission, ReplicaConfig};
use super::engine::{Replica, Workload};
use super::run::{fleet_loop, Driver, FleetConfig, Progress, RunOptions, RunResult};
use crate::error::{QcoreError, Result};
use crate::policy::{nearest_rank, Autoscaler, Sample, Scaler};
use crate::sim::{Dist, NoControl, Rng, Stream};

/// The most replicas an autoscaled fleet may ask for.
pub const MAX_REPLICAS: u32 = 1 << 16;

/// Most samples an autoscaled run may take.
const MAX_TICKS: u64 = 20_000_000;

/// One fleet signal, per routable (ready, not draining) replica unless said otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FleetMetric {
    /// Mean fraction of KV blocks in use.
    KvUsage,
    /// Mean waiting requests.
    Waiting,
    /// Mean running requests.
    Running,
    /// Output tokens emitted by the whole fleet over the sampling interval, per second
    /// and per routable replica.
    TokensPerSecond,
    /// Quantile `q` of the TTFT of the first tokens emitted in the last `ttft_window`
    /// seconds (the whole fleet; nearest rank; missing without first tokens).
    Ttft(f64),
}

impl FleetMetric {
    /// `kv`, `waiting`, `running`, `tokens_per_s` or `ttft_pNN` (`ttft_p99`,
    /// `ttft_p99.9`, ...).
    ///
    /// # Errors
    /// Another name, or a quantile outside (0, 100).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "kv" => Ok(FleetMetric::KvUsage),
            "waiting" => Ok(FleetMetric::Waiting),
            "running" => Ok(FleetMetric::Running),
            "tokens_per_s" => Ok(FleetMetric::TokensPerSecond),
            _ => {
                let bad = || {
                    QcoreError::invalid(
                        "metric",
                        format!(
                            "must be 'kv', 'waiting', 'running', 'tokens_per_s' or 'ttft_pNN' \
                             with NN in (0, 100), got {s:?}"
                        ),
                    )
                };
                let p: f64 = s
                    .strip_prefix("ttft_p")
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|_| bad())?;
                if p > 0.0 && p < 100.0 {
                    Ok(FleetMetric::Ttft(p / 100.0))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// What the policy scales on: one metric, or KEDA's composite `max_i(m_i / target_i)`.
#[derive(Debug, Clone, PartialEq)]
pub enum ScaleSignal {
    Metric(FleetMetric),
    /// `(metric, target)` pairs; the value is the largest ratio over the metrics that
    /// have a value (missing when none has).
    Composite(Vec<(FleetMetric, f64)>),
}

/// An autoscaled fleet: bounds, cold start, sampling and the signal.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscaleConfig {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Seconds from a scale-up until the replica is routable (model load).
    pub cold_start: Dist,
    /// Seconds between samples.
    pub sample_interval: f64,
    pub signal: ScaleSignal,
    /// Window of the TTFT quantile (seconds).
    pub ttft_window: f64,
    /// Seed of the cold-start draws.
    pub seed: u64,
}

impl AutoscaleConfig {
    /// Validate the fields.
    ///
    /// # Errors
    /// The field outside its domain, named.
    pub fn check(&self) -> Result<()> {
        if self.min_replicas < 1 {
            return Err(QcoreError::invalid(
                "min_replicas",
                "must be at least 1 (requests always need a routable replica)",
            ));
        }
        if self.max_replicas < self.min_replicas || self.max_replicas > MAX_REPLICAS {
            return Err(QcoreError::invalid(
                "max_replicas",
                format!(
                    "must be in [min_replicas ({}), {MAX_REPLICAS}], got {}",
                    self.min_replicas, self.max_replicas
                ),
            ));
        }
        for (name, v) in [
            ("sample_interval", self.sample_interval),
            ("ttft_window", self.ttft_window),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(QcoreError::invalid(
                    name,
                    format!("must be a finite number of seconds > 0, got {v}"),
                ));
            }
        }
        let m = self.cold_start.mean();
        if !(m.is_finite() && m >= 0.0) {
            return Err(QcoreError::invalid(
                "cold_start",
                format!("must have a finite mean >= 0, got {m}"),
            ));
        }
        if let ScaleSignal::Composite(terms) = &self.signal {
            if terms.is_empty() {
                return Err(QcoreError::invalid(
                    "metric",
                    "a composite needs at least one (metric, target)",
                ));
            }
            for &(_, t) in terms {
                if !(t.is_finite() && t > 0.0) {
                    return Err(QcoreError::invalid(
                        "metric",
                        format!("composite targets must be finite and > 0, got {t}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn ttft_quantiles(&self) -> bool {
        let has = |m: &FleetMetric| matches!(m, FleetMetric::Ttft(_));
        match &self.signal {
            ScaleSignal::Metric(m) => has(m),
            ScaleSignal::Composite(t) => t.iter().any(|(m, _)| has(m)),
        }
    }
}

/// The replica count over time: one row per sample, after the decision taken at it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScaleTimeline {
    pub time: Vec<f64>,
    /// Routable replicas (ready, not draining).
    pub ready: Vec<u32>,
    pub starting: Vec<u32>,
    pub draining: Vec<u32>,
    /// The replica count asked for.
    pub target: Vec<u32>,
    /// The signal's value at the sample (NaN: missing).
    pub metric: Vec<f64>,
}

/// One replica's life: slot, when it was asked for, became routable, began to drain
/// and left (NaN where it did not happen: a start cancelled before it was ready has no
/// ready time; a replica still there at the end has no leave time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaLives {
    pub slot: Vec<u32>,
    pub requested: Vec<f64>,
    pub ready: Vec<f64>,
    pub drain: Vec<f64>,
    pub left: Vec<f64>,
}

/// What the autoscaler did over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScaleReport {
    pub timeline: ScaleTimeline,
    pub lives: ReplicaLives,
    /// Replica-seconds starting, ready (routable) and draining, up to `t_stop`.
    pub starting_seconds: f64,
    pub ready_seconds: f64,
    pub draining_seconds: f64,
    /// Changes of the count asked for.
    pub scale_events: u64,
    /// The most replicas asked for at once (starting + routable).
    pub peak_replicas: u32,
    /// End of the accounting: the end of the last step or the last arrival, whichever
    /// is later.
    pub t_stop: f64,
}

impl ScaleReport {
    /// Starting + ready + draining replica-seconds.
    #[must_use]
    pub fn replica_seconds(&self) -> f64 {
        self.starting_seconds + self.ready_seconds + self.draining_seconds
    }
}

/// An autoscaled run.
#[derive(Debug, Clone)]
pub struct AutoscaledRun {
    pub result: RunResult,
    pub scaling: ScaleReport,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Ready,
    Starting(f64),
    Draining,
    Gone,
}

/// The autoscaler's state inside the fleet loop.
pub(super) struct Scaling<'c, A: Autoscaler> {
    cfg: &'c AutoscaleConfig,
    scaler: Scaler<A, NoControl>,
    phase: Vec<Phase>,
    /// Index in `report.lives` of each slot's current life.
    life: Vec<usize>,
    /// Routable slots, ascending.
    live: Vec<usize>,
    target: usize,
    rng: Rng,
    draws: usize,
    t0: f64,
    ticks: u64,
    next_tick: f64,
    last_k: usize,
    last_finished: u64,
    last_tokens: u64,
    /// `(time, ttft)` of the first tokens of the TTFT window.
    window: std::collections::VecDeque<(f64, f64)>,
    t_acc: f64,
    /// Loop iterations at the same time without the clock moving.
    same_t: (f64, u64),
    report: ScaleReport,
}

impl<'c, A: Autoscaler> Scaling<'c, A> {
    fn new(cfg: &'c AutoscaleConfig, policy: A, initial: u32) -> Result<Self> {
        cfg.check()?;
        if !(cfg.min_replicas..=cfg.max_replicas).contains(&initial) {
            return Err(QcoreError::invalid(
                "replicas",
                format!(
                    "(the initial replicas, {initial}) must be within [min_replicas, \
                     max_replicas] = [{}, {}]",
                    cfg.min_replicas, cfg.max_replicas
                ),
            ));
        }
        let scaler = Scaler::new(policy, NoControl, cfg.sample_interval, false)?;
        Ok(Scaling {
            cfg,
            scaler,
            phase: Vec::new(),
            life: Vec::new(),
            live: Vec::new(),
            target: initial as usize,
            rng: Rng::stream(cfg.seed, 0, Stream::Startup),
            draws: 0,
            t0: 0.0,
            ticks: 0,
            next_tick: f64::INFINITY,
            last_k: 0,
            last_finished: 0,
            last_tokens: 0,
            window: std::collections::VecDeque::new(),
            t_acc: 0.0,
            same_t: (f64::NAN, 0),
            report: ScaleReport {
                peak_replicas: initial,
                ..ScaleReport::default()
            },
        })
    }

    /// The initial replicas are ready at `t0` (the first arrival).
    pub(super) fn start(&mut self, dr: &mut Driver<'_>, t0: f64) {
        self.t0 = t0;
        self.t_acc = t0;
        self.next_tick = t0 + self.cfg.sample_interval;
        for i in 0..dr.reps.len() {
            self.phase.push(Phase::Ready);
            self.live.push(i);
            let l = self.new_life(i, t0, t0);
            self.life.push(l);
        }
        if self.cfg.ttft_quantiles() {
            dr.metrics.recent_ttft = Some(Vec::new());
        }
    }

    fn new_life(&mut self, slot: usize, requested: f64, ready: f64) -> usize {
        let l = &mut self.report.lives;
        l.slot.push(slot as u32);
        l.requested.push(requested);
        l.ready.push(ready);
        l.drain.push(f64::NAN);
        l.left.push(f64::NAN);
        l.slot.len() - 1
    }

    pub(super) fn live(&self) -> &[usize] {
        &self.live
    }

    /// The next sample or replica becoming ready; none once every request has arrived
    /// and the fleet is idle.
    pub(super) fn next_event(&self, dr: &Driver<'_>, arrivals_left: bool) -> f64 {
        if !arrivals_left && !dr.reps.iter().any(|r| r.busy() || r.has_work()) {
            return f64::INFINITY;
        }
        let mut t = self.next_tick;
        for p in &self.phase {
            if let Phase::Starting(r) = *p {
                t = t.min(r);
            }
        }
        t
    }

    /// Account the replica-seconds up to `t`.
    fn account(&mut self, t: f64) {
        let dt = t - self.t_acc;
        if dt > 0.0 {
            let (s, d) = self.counts();
            self.report.starting_seconds += s as f64 * dt;
            self.report.ready_seconds += self.live.len() as f64 * dt;
            self.report.draining_seconds += d as f64 * dt;
            self.t_acc = t;
        }
    }

    /// Replicas whose cold start has ended by `t` become routable.
    pub(super) fn promote(&mut self, t: f64) -> Result<()> {
        if self.same_t.0 == t {
            self.same_t.1 += 1;
            // Each iteration at one instant ends a step, routes an arrival, promotes
            // or samples: more than this many is a loop without progress.
            if self.same_t.1 > 1 << 24 {
                return Err(QcoreError::unstable(format!(
                    "the autoscaled fleet made no progress at t = {t}"
                )));
            }
        } else {
            self.same_t = (t, 0);
        }
        self.account(t);
        for i in 0..self.phase.len() {
            if let Phase::Starting(r) = self.phase[i] {
                if r <= t {
                    self.phase[i] = Phase::Ready;
                    let pos = self.live.partition_point(|&j| j < i);
                    self.live.insert(pos, i);
                }
            }
        }
        Ok(())
    }

    fn value(&self, m: FleetMetric, dr: &Driver<'_>, tokens: u64, sorted: &[f64]) -> Option<f64> {
        let n = self.live.len();
        if n == 0 {
            return None;
        }
        let mean = |f: &dyn Fn(&Replica, &ReplicaConfig) -> f64| {
            self.live
                .iter()
                .map(|&i| f(&dr.reps[i], dr.cfgs[i]))
                .sum::<f64>()
                / n as f64
        };
        match m {
            FleetMetric::KvUsage => Some(mean(&|r, c| {
                f64::from(r.blocks_used(c)) / f64::from(c.num_blocks.max(1))
            })),
            FleetMetric::Waiting => Some(mean(&|r, _| r.waiting.len() as f64)),
            FleetMetric::Running => Some(mean(&|r, _| r.running_len() as f64)),
            FleetMetric::TokensPerSecond => {
                Some(tokens as f64 / self.cfg.sample_interval / n as f64)
            }
            FleetMetric::Ttft(q) => nearest_rank(sorted, q),
        }
    }

    /// Sample at `t` if a sample is due (`k` requests have arrived), and apply the
    /// policy's decision.
    pub(super) fn tick(&mut self, t: f64, dr: &mut Driver<'_>, k: usize) -> Result<()> {
        if t < self.next_tick {
            return Ok(());
        }
        self.ticks += 1;
        if self.ticks > MAX_TICKS {
            return Err(QcoreError::invalid(
                "sample_interval",
                format!("is too small: more than {MAX_TICKS} samples"),
            ));
        }
        self.next_tick = self.t0 + (self.ticks + 1) as f64 * self.cfg.sample_interval;
        // The TTFT window.
        let mut sorted = Vec::new();
        if let Some(v) = &mut dr.metrics.recent_ttft {
            self.window.extend(v.drain(..));
            let cut = t - self.cfg.ttft_window;
            while self.window.front().is_some_and(|&(u, _)| u <= cut) {
                self.window.pop_front();
            }
            sorted = self.window.iter().map(|&(_, x)| x).collect();
            sorted.sort_by(f64::total_cmp);
        }
        let finished: u64 = dr.reps.iter().map(|r| r.stats.finished).sum();
        let tokens: u64 = dr.reps.iter().map(|r| r.stats.output_tokens).sum();
        let dtok = tokens - self.last_tokens;
        let external = match &self.cfg.signal {
            ScaleSignal::Metric(m) => self.value(*m, dr, dtok, &sorted),
            ScaleSignal::Composite(terms) => terms
                .iter()
                .filter_map(|&(m, thr)| self.value(m, dr, dtok, &sorted).map(|v| v / thr))
                .reduce(f64::max),
        };
        let (starting, draining) = self.counts();
        let in_queue = dr.reps.iter().map(|r| r.waiting.len()).sum();
        let in_service = dr
            .reps
            .iter()
            .map(super::engine::Replica::running_len)
            .sum();
        let s = Sample {
            t,
            arrivals: (k - self.last_k) as u64,
            completions: finished - self.last_finished,
            in_queue,
            in_service,
            busy: self.live.iter().filter(|&&i| dr.reps[i].busy()).count(),
            ready: self.live.len() + draining,
            starting,
            draining,
            target: self.target,
            external,
        };
        self.last_k = k;
        self.last_finished = finished;
        self.last_tokens = tokens;
        if let Some(n) = self.scaler.on_sample(s) {
            let lo = self.cfg.min_replicas as usize;
            let hi = self.cfg.max_replicas as usize;
            let n = n.clamp(lo, hi);
            if n != self.target {
                self.report.scale_events += 1;
                self.apply(t, n, dr)?;
            }
        }
        let (s, d) = self.counts();
        let tl = &mut self.report.timeline;
        tl.time.push(t);
        tl.ready.push(self.live.len() as u32);
        tl.starting.push(s as u32);
        tl.draining.push(d as u32);
        tl.target.push(self.target as u32);
        tl.metric.push(external.unwrap_or(f64::NAN));
        Ok(())
    }

    fn counts(&self) -> (usize, usize) {
        let mut c = (0, 0);
        for p in &self.phase {
            match p {
                Phase::Starting(_) => c.0 += 1,
                Phase::Draining => c.1 += 1,
                _ => {}
            }
        }
        c
    }

    /// Move from the current count to `n` replicas at `t`.
    fn apply(&mut self, t: f64, n: usize, dr: &mut Driver<'_>) -> Result<()> {
        self.target = n;
        let (starting, _) = self.counts();
        let active = self.live.len() + starting;
        if n > active {
            for _ in active..n {
                let d = self.cfg.cold_start.sample(&mut self.rng, self.draws);
                self.draws += 1;
                if !(d.is_finite() && d >= 0.0) {
                    return Err(QcoreError::invalid(
                        "cold_start",
                        format!("drew {d}; cold starts must be finite and >= 0"),
                    ));
                }
                let slot = if let Some(i) = self.phase.iter().position(|&p| p == Phase::Gone) {
                    // A fresh replica in a slot whose last replica left (its counters
                    // carry on).
                    let stats = std::mem::take(&mut dr.reps[i].stats);
                    dr.reps[i] = Replica::new(dr.cfg);
                    dr.reps[i].stats = stats;
                    i
                } else {
                    dr.reps.push(Replica::new(dr.cfg));
                    dr.cfgs.push(dr.cfg);
                    self.phase.push(Phase::Gone);
                    self.life.push(0);
                    self.phase.len() - 1
                };
                self.phase[slot] = Phase::Starting(t + d);
                let l = self.new_life(slot, t, t + d);
                self.life[slot] = l;
            }
        } else if n < active {
            let mut excess = active - n;
            // Cancel starts, the most recent first.
            while excess > 0 {
                let Some(slot) = (0..self.phase.len())
                    .filter(|&i| matches!(self.phase[i], Phase::Starting(_)))
                    .max_by_key(|&i| self.life[i])
                else {
                    break;
                };
                self.phase[slot] = Phase::Gone;
                let l = self.life[slot];
                self.report.lives.ready[l] = f64::NAN;
                self.report.lives.left[l] = t;
                excess -= 1;
            }
            // Drain routable replicas: the fewest in the system, the highest slot on ties.
            for _ in 0..excess {
                let Some(pos) = (0..self.live.len())
                    .rev()
                    .min_by_key(|&p| dr.reps[self.live[p]].in_system())
                else {
                    break;
                };
                let slot = self.live.remove(pos);
                self.phase[slot] = Phase::Draining;
                self.report.lives.drain[self.life[slot]] = t;
            }
        }
        let (s, _) = self.counts();
        self.report.peak_replicas = self.report.peak_replicas.max((self.live.len() + s) as u32);
        Ok(())
    }

    /// Draining replicas with nothing left leave at `t`.
    pub(super) fn retire(&mut self, t: f64, dr: &Driver<'_>) {
        for i in 0..self.phase.len() {
            if self.phase[i] == Phase::Draining && !dr.reps[i].busy() && !dr.reps[i].has_work() {
                self.phase[i] = Phase::Gone;
                self.report.lives.left[self.life[i]] = t;
            }
        }
    }

    /// Close the accounting at the end of the last step or the last arrival.
    pub(super) fn close(&mut self, dr: &Driver<'_>, last_arrival: f64) {
        let t = dr.t_end.max(last_arrival).max(self.t_acc);
        self.account(t);
        self.report.t_stop = t;
    }
}

/// Run `w` on a fleet that starts with `fleet.replicas` replicas and is scaled by
/// `policy` on the signals of `scale` (see the module documentation). With a policy
/// that never changes the count (`Fixed` at `fleet.replicas`) the run is exactly
/// [`super::run_fleet_admitted`]'s.
///
/// # Errors
/// An invalid fleet, admission, configuration or scale configuration; initial replicas
/// outside the bounds; a cold-start draw that is negative or not finite; more than
/// 2·10⁷ samples.
#[allow(clippy::too_many_arguments)]
pub fn run_fleet_autoscaled<A: Autoscaler>(
    w: &Workload,
    cfg: &ReplicaConfig,
    fleet: &FleetConfig,
    adm: &Admission,
    opts: &RunOptions,
    scale: &AutoscaleConfig,
    policy: A,
    progress: Progress<'_>,
) -> Result<AutoscaledRun> {
    let mut sc = Scaling::new(scale, policy, fleet.replicas)?;
    let result = fleet_loop(w, cfg, fleet, adm, opts, progress, Some(&mut sc))?;
    Ok(AutoscaledRun {
        result,
        scaling: sc.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{run_fleet_admitted, Router, StepTime, STATUS_FINISHED};
    use crate::policy::{Fixed, Hpa, HpaConfig, HpaMetric, Rules};

    fn linear() -> StepTime {
        StepTime::Linear {
            c0: 0.02,
            c_tok: 2e-5,
            c_seq: 1e-4,
            c_ctx: 0.0,
        }
    }

    /// A ramp: `n` requests whose rate rises from 1/s to about 20/s.
    fn ramp(n: usize) -> Workload {
        let mut t = 0.0;
        let mut arr = Vec::with_capacity(n);
        for k in 0..n {
            arr.push(t);
            t += 1.0 / (1.0 + 19.0 * k as f64 / n as f64);
        }
        let prompt = (0..n).map(|k| 200 + (k as u32 * 37) % 800).collect();
        let output = (0..n).map(|k| 20 + (k as u32 * 13) % 200).collect();
        Workload::new(arr, prompt, output).unwrap()
    }

    fn scale(metric: ScaleSignal, min: u32, max: u32, cold: f64) -> AutoscaleConfig {
        AutoscaleConfig {
            min_replicas: min,
            max_replicas: max,
            cold_start: Dist::deterministic(cold).unwrap(),
            sample_interval: 1.0,
            signal: metric,
            ttft_window: 30.0,
            seed: 7,
        }
    }

    fn fleet(replicas: u32, router: Router) -> FleetConfig {
        FleetConfig {
            replicas,
            router,
            staleness: 0.0,
            seed: 3,
        }
    }

    fn run<A: Autoscaler>(
        w: &Workload,
        cfg: &ReplicaConfig,
        f: &FleetConfig,
        s: &AutoscaleConfig,
        p: A,
    ) -> AutoscaledRun {
        run_fleet_autoscaled(
            w,
            cfg,
            f,
            &Admission::default(),
            &RunOptions::default(),
            s,
            p,
            &mut |_, _| {},
        )
        .unwrap()
    }

    #[test]
    fn a_fixed_policy_is_the_static_fleet() {
        let w = ramp(1500);
        let cfg = ReplicaConfig::new(3000, linear());
        for router in [
            Router::RoundRobin,
            Router::Random,
            Router::LeastRequests,
            Router::PowerOfTwo,
            Router::LeastTokens,
        ] {
            let f = fleet(3, router);
            let base = run_fleet_admitted(
                &w,
                &cfg,
                &f,
                &Admission::default(),
                &RunOptions::default(),
                &mut |_, _| {},
            )
            .unwrap();
            let s = scale(ScaleSignal::Metric(FleetMetric::KvUsage), 1, 8, 60.0);
            let a = run(&w, &cfg, &f, &s, Fixed { replicas: 3 });
            assert_eq!(a.result.records, base.records, "{router:?}");
            assert_eq!(a.result.ttft.to_bytes(), base.ttft.to_bytes());
            assert_eq!(a.result.t_end, base.t_end);
            assert_eq!(a.scaling.scale_events, 0);
            let rs = a.scaling.replica_seconds();
            assert!((rs - 3.0 * (a.scaling.t_stop - w.arrival[0])).abs() < 1e-6 * rs);
        }
    }

    #[test]
    fn a_step_in_waiting_requests_scales_by_the_hpa_formula() {
        // Two replicas that run one request at a time, with 1000 s steps: 20 requests
        // at t = 0 leave 9 waiting on each. HPA on waiting (target 2, no rate limit):
        // at its first sync (t = 15) ceil(2 × 9 / 2) = 9 replicas.
        let w = Workload::new(vec![0.0; 20], vec![10; 20], vec![2; 20]).unwrap();
        let mut cfg = ReplicaConfig::new(
            1000,
            StepTime::Linear {
                c0: 1000.0,
                c_tok: 0.0,
                c_seq: 0.0,
                c_ctx: 0.0,
            },
        );
        cfg.max_num_seqs = 1;
        let mut hc = HpaConfig::new(HpaMetric::External, 2.0);
        hc.max_replicas = 16;
        hc.up.policies = Rules::parse_policies("up_policies", "pods:100:15").unwrap();
        let s = scale(ScaleSignal::Metric(FleetMetric::Waiting), 1, 16, 30.0);
        let a = run(
            &w,
            &cfg,
            &fleet(2, Router::RoundRobin),
            &s,
            Hpa::new(hc).unwrap(),
        );
        let tl = &a.scaling.timeline;
        let i = tl.time.iter().position(|&t| t == 15.0).unwrap();
        assert_eq!(tl.metric[i], 9.0);
        assert_eq!(tl.target[..i], vec![2; i][..]);
        assert_eq!((tl.target[i], tl.ready[i], tl.starting[i]), (9, 2, 7));
        // Routable 30 s later, not before.
        let j = tl.time.iter().position(|&t| t == 45.0).unwrap();
        assert_eq!((tl.ready[j - 1], tl.starting[j - 1]), (2, 7));
        assert_eq!(tl.ready[j], 9);
        assert!(a
            .result
            .records
            .status
            .iter()
            .all(|&s| s == STATUS_FINISHED));
    }

    #[test]
    fn bounds_cold_starts_and_drains_hold() {
        let w = ramp(3000);
        let cfg = ReplicaConfig::new(2000, linear());
        let mut hc = HpaConfig::new(HpaMetric::External, 0.3);
        hc.max_replicas = 6;
        hc.down.stabilization_window = 30.0;
        let mut s = scale(ScaleSignal::Metric(FleetMetric::KvUsage), 1, 6, 0.0);
        s.cold_start = Dist::lognormal(20.0, 0.5).unwrap();
        let a = run(
            &w,
            &cfg,
            &fleet(1, Router::LeastRequests),
            &s,
            Hpa::new(hc).unwrap(),
        );
        let (tl, l) = (&a.scaling.timeline, &a.scaling.lives);
        assert!(a.scaling.scale_events > 0);
        assert!(tl.target.iter().any(|&n| n > 1));
        for i in 0..tl.time.len() {
            let active = tl.ready[i] + tl.starting[i];
            assert!((1..=6).contains(&active), "{active} at {}", tl.time[i]);
            assert_eq!(active, tl.target[i]);
        }
        // Every request served by a replica arrived while it was routable.
        let rec = &a.result.records;
        for (k, &r) in rec.replica.iter().enumerate() {
            assert!(r >= 0);
            let t = w.arrival[k];
            let ok = (0..l.slot.len()).any(|j| {
                l.slot[j] == r as u32 && l.ready[j] <= t && (l.drain[j].is_nan() || l.drain[j] > t)
            });
            assert!(ok, "request {k} at {t} on replica {r}");
        }
        assert!(rec.status.iter().all(|&s| s == STATUS_FINISHED));
        // Drained replicas left only once empty, after their last request finished.
        for j in 0..l.slot.len() {
            if l.drain[j].is_finite() {
                let last = rec
                    .replica
                    .iter()
                    .enumerate()
                    .filter(|&(k, &r)| r == l.slot[j] as i32 && w.arrival[k] < l.drain[j])
                    .map(|(k, _)| rec.finish[k])
                    .fold(f64::NEG_INFINITY, f64::max);
                assert!(l.left[j].is_nan() || l.left[j] >= last);
            }
        }
    }

    #[test]
    fn metric_names_parse() {
        assert_eq!(FleetMetric::parse("kv").unwrap(), FleetMetric::KvUsage);
        assert_eq!(
            FleetMetric::parse("ttft_p99").unwrap(),
            FleetMetric::Ttft(0.99)
        );
        assert!(
            matches!(FleetMetric::parse("ttft_p99.9").unwrap(), FleetMetric::Ttft(q) if (q - 0.999).abs() < 1e-12)
        );
        assert!(FleetMetric::parse("ttft_p100").is_err());
        assert!(FleetMetric::parse("gpu").is_err());
        let mut s = scale(ScaleSignal::Composite(vec![]), 1, 2, 1.0);
        assert!(s.check().is_err());
        s.signal = ScaleSignal::Metric(FleetMetric::Waiting);
        s.min_replicas = 0;
        assert!(s.check().is_err());
    }
}
