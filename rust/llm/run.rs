//! Running a workload: one replica alone, or a routed fleet (LLM-ENGINE.md §3, §7, §8).

use super::config::{Admission, Batch, ReplicaConfig};
use super::engine::{Replica, ReplicaStats, Req, Sink, Workload, STATUS_REJECTED, STATUS_SHED};
use crate::error::{QcoreError, Result};
use crate::policy::TokenBucket;
use crate::sim::rng::Rng;
use crate::sketch::QuantileSketch;

/// How a fleet assigns an arriving request to a replica (§8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Router {
    /// Replicas in turn.
    RoundRobin,
    /// A uniformly random replica (seeded).
    Random,
    /// The fewest waiting + running requests.
    LeastRequests,
    /// The fewest outstanding tokens: prompt tokens not yet computed plus output tokens
    /// not yet emitted, over the replica's requests.
    LeastTokens,
    /// Two distinct random replicas; the one with fewer waiting + running requests.
    PowerOfTwo,
    /// vLLM's data-parallel balancer: argmin `4·waiting + running`.
    VllmDp,
    /// The least `weight · (prompt − cached prefix tokens) + outstanding tokens`: the
    /// prefill a replica would have to compute, traded against its load.
    PrefixAffinity { weight: f64 },
}

/// A fleet of identical replicas behind a router.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Number of replicas.
    pub replicas: u32,
    /// The router.
    pub router: Router,
    /// The router's view of replica load is refreshed every `staleness` seconds (0: exact);
    /// its own assignments since the last refresh count at once. Prefix-cache contents are
    /// read exactly.
    pub staleness: f64,
    /// Seed of the router's random choices.
    pub seed: u64,
}

impl FleetConfig {
    /// Validate the fields.
    pub fn check(&self) -> Result<()> {
        if self.replicas == 0 {
            return Err(QcoreError::invalid("replicas", "must be >= 1"));
        }
        if !self.staleness.is_finite() || self.staleness < 0.0 {
            return Err(QcoreError::invalid(
                "staleness",
                format!("must be finite and >= 0, got {}", self.staleness),
            ));
        }
        if let Router::PrefixAffinity { weight } = self.router {
            if !weight.is_finite() || weight < 0.0 {
                return Err(QcoreError::invalid(
                    "router.weight",
                    format!("must be finite and >= 0, got {weight}"),
                ));
            }
        }
        Ok(())
    }
}

/// Options of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Relative accuracy of the metric sketches.
    pub relative_accuracy: f64,
    /// Record every step (for small runs: one entry per scheduled request per step).
    pub trace: bool,
    /// Sample each replica's state every `timeline_interval` seconds (None: no timeline).
    pub timeline_interval: Option<f64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            relative_accuracy: 0.01,
            trace: false,
            timeline_interval: None,
        }
    }
}

/// Per-request records (§7), one entry per request of the workload, in its order.
/// Times are NaN where the event did not happen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    /// Replica that served the request (-1: rejected or shed before it joined one).
    pub replica: Vec<i32>,
    /// 0 finished, 1 rejected, 2 unfinished, 3 shed, 4 timed out.
    pub status: Vec<u8>,
    pub first_scheduled: Vec<f64>,
    pub first_token: Vec<f64>,
    pub finish: Vec<f64>,
    /// Output tokens emitted.
    pub output_tokens: Vec<u32>,
    pub preemptions: Vec<u32>,
    /// Prefix-cache hit tokens at the first scheduling.
    pub cached_tokens: Vec<u32>,
}

/// Every step of a run (when [`RunOptions::trace`] is set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepTrace {
    /// Per step: replica, start, end.
    pub step_replica: Vec<u32>,
    pub step_start: Vec<f64>,
    pub step_end: Vec<f64>,
    /// Per step: the replica's waiting requests when the step began (before scheduling).
    pub step_waiting: Vec<u32>,
    /// Per scheduled request: step index, request, tokens scheduled.
    pub sched_step: Vec<u32>,
    pub sched_request: Vec<u32>,
    pub sched_tokens: Vec<u32>,
    /// Per preemption: step index, request.
    pub preempt_step: Vec<u32>,
    pub preempt_request: Vec<u32>,
}

/// Replica state sampled on a fixed grid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub time: Vec<f64>,
    pub replica: Vec<u32>,
    pub kv_blocks: Vec<u32>,
    pub waiting: Vec<u32>,
    pub running: Vec<u32>,
    pub batch_tokens: Vec<u32>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub records: Records,
    /// Time to first token, time per output token, inter-token latency, end to end, queue.
    pub ttft: QuantileSketch,
    pub tpot: QuantileSketch,
    pub itl: QuantileSketch,
    pub e2e: QuantileSketch,
    pub queue: QuantileSketch,
    /// Per replica.
    pub replicas: Vec<ReplicaStats>,
    /// Requests rejected: on arrival (they can never fit a replica), or at the head of
    /// `waiting` when even an empty replica cannot schedule them (a watermark, say).
    pub rejected: u64,
    /// Of `rejected`: requests rejected by admission control (predicted TTFT).
    pub admission_rejected: u64,
    /// Requests shed on arrival by admission control (token bucket, waiting cap).
    pub shed: u64,
    /// Requests dropped by the admission queue-wait deadline.
    pub timed_out: u64,
    /// Tokens computed (prefill and decode) for requests that were then dropped.
    pub wasted_tokens: u64,
    /// First arrival and the end of the last step.
    pub t0: f64,
    pub t_end: f64,
    pub trace: Option<StepTrace>,
    pub timeline: Option<Timeline>,
}

/// Most timeline samples a run may ask for (about 0.6 GB).
const MAX_TIMELINE_SAMPLES: f64 = 2e7;

/// Values are added to the sketches in blocks of this many (a bulk add is far cheaper
/// than one value at a time).
const FLUSH: usize = 4096;

/// Equal inter-token gaps of a lazy decode step go to the sketch as one weighted value
/// from this many on (fewer are added one by one).
const WEIGHTED_MIN: u32 = 32;

pub(super) struct Metrics {
    ttft: QuantileSketch,
    itl: QuantileSketch,
    ttft_buf: Vec<f64>,
    itl_buf: Vec<f64>,
    /// Gaps shared by many requests (lazy decode steps) and their counts.
    itl_shared: Vec<f64>,
    itl_counts: Vec<f64>,
    arrival_of_first: Vec<f64>,
    /// `(time, ttft)` of the first tokens since the autoscaler last read them.
    pub(super) recent_ttft: Option<Vec<(f64, f64)>>,
}

impl Metrics {
    fn flush(&mut self) -> Result<()> {
        self.ttft.add_slice(&self.ttft_buf)?;
        self.itl.add_slice(&self.itl_buf)?;
        if !self.itl_shared.is_empty() {
            self.itl.add_weighted(&self.itl_shared, &self.itl_counts)?;
        }
        self.ttft_buf.clear();
        self.itl_buf.clear();
        self.itl_shared.clear();
        self.itl_counts.clear();
        Ok(())
    }
}

impl Sink for Metrics {
    #[inline]
    fn first_token(&mut self, r: u32, t: f64) {
        let ttft = t - self.arrival_of_first[r as usize];
        if let Some(v) = &mut self.recent_ttft {
            v.push((t, ttft));
        }
        self.ttft_buf.push(ttft);
        if self.ttft_buf.len() == FLUSH {
            // Finite, non-negative times: the sketch accepts them.
            let _ = self.ttft.add_slice(&self.ttft_buf);
            self.ttft_buf.clear();
        }
    }
    #[inline]
    fn token_gap(&mut self, gap: f64) {
        self.itl_buf.push(gap);
        if self.itl_buf.len() == FLUSH {
            let _ = self.itl.add_slice(&self.itl_buf);
            self.itl_buf.clear();
        }
    }
    #[inline]
    fn token_gaps(&mut self, gap: f64, n: u32) {
        if n < WEIGHTED_MIN {
            // Few copies: the bulk add of plain values is cheaper than a weighted one.
            if self.itl_buf.len() + (n as usize) < FLUSH {
                self.itl_buf.extend(std::iter::repeat_n(gap, n as usize));
            } else {
                for _ in 0..n {
                    self.token_gap(gap);
                }
            }
            return;
        }
        // The sketch counts and sums exactly: `n` copies of a value and the value with
        // weight `n` leave it in the same state.
        self.itl_shared.push(gap);
        self.itl_counts.push(f64::from(n));
        if self.itl_shared.len() == FLUSH {
            let _ = self.itl.add_weighted(&self.itl_shared, &self.itl_counts);
            self.itl_shared.clear();
            self.itl_counts.clear();
        }
    }
    #[inline]
    fn finish(&mut self, _r: u32) {}
}

/// Whether request `r` can ever finish on a replica of `cfg` (§3 last paragraph).
fn fits(cfg: &ReplicaConfig, prompt: u32, output: u32) -> bool {
    use super::config::{BatchFormation, MemoryAdmission};
    let bounded = cfg.memory_admission != MemoryAdmission::Unlimited;
    let tokens = u64::from(prompt) + u64::from(output) - 1;
    if cfg.batch_formation != BatchFormation::VllmV1 {
        // Whole prompts in one step; after a preemption (only with a KV model) a restart
        // recomputes up to P + O − 1 tokens in one prefill step.
        let largest = if bounded { tokens } else { u64::from(prompt) };
        if largest > u64::from(cfg.max_num_batched_tokens) {
            return false;
        }
    }
    if bounded && cfg.blocks_for(tokens) > u64::from(cfg.num_blocks) {
        return false;
    }
    if cfg.batch_formation == BatchFormation::VllmV1
        && !cfg.chunked_prefill
        && prompt > cfg.max_num_batched_tokens
    {
        return false;
    }
    true
}

pub(super) struct Driver<'a> {
    w: &'a Workload,
    /// The configuration of the replicas requests arrive at.
    pub(super) cfg: &'a ReplicaConfig,
    /// Per replica.
    pub(super) cfgs: Vec<&'a ReplicaConfig>,
    reqs: Vec<Req>,
    pub(super) reps: Vec<Replica>,
    pub(super) metrics: Metrics,
    trace: Option<StepTrace>,
    timeline: Option<(f64, f64, Timeline)>,
    rejected: u64,
    pub(super) t_end: f64,
    /// The admission queue-wait deadline (seconds).
    max_wait: Option<f64>,
    admission_rejected: u64,
    shed: u64,
    timed_out: u64,
    wasted_tokens: u64,
}

impl<'a> Driver<'a> {
    fn new(w: &'a Workload, cfg: &'a ReplicaConfig, n: usize, opts: &RunOptions) -> Result<Self> {
        Self::with_configs(w, vec![cfg; n], opts)
    }

    /// Replica `i` runs `cfgs[i]`; requests arrive at replicas of `cfgs[0]`'s kind.
    fn with_configs(
        w: &'a Workload,
        cfgs: Vec<&'a ReplicaConfig>,
        opts: &RunOptions,
    ) -> Result<Self> {
        for c in &cfgs {
            c.check()?;
        }
        let n = cfgs.len();
        let cfg = cfgs[0];
        if let Some(iv) = opts.timeline_interval {
            if !iv.is_finite() || iv <= 0.0 {
                return Err(QcoreError::invalid(
                    "timeline_interval",
                    format!("must be finite and > 0, got {iv}"),
                ));
            }
        }
        if let Some(iv) = opts.timeline_interval {
            let span = match (w.arrival.first(), w.arrival.last()) {
                (Some(a), Some(b)) => b - a,
                _ => 0.0,
            };
            let samples = span / iv * n as f64;
            if samples > MAX_TIMELINE_SAMPLES {
                return Err(QcoreError::invalid(
                    "timeline_interval",
                    format!(
                        "is too small: {samples:.3e} samples over the arrivals alone (at most {MAX_TIMELINE_SAMPLES:e})"
                    ),
                ));
            }
        }
        let sk = QuantileSketch::new(opts.relative_accuracy)?;
        let reqs = (0..w.len())
            .map(|i| Req::new(w.prompt[i], w.output[i]))
            .collect();
        let t0 = w.arrival.first().copied().unwrap_or(0.0);
        Ok(Driver {
            w,
            cfg,
            reps: cfgs.iter().map(|c| Replica::new(c)).collect(),
            cfgs,
            reqs,
            metrics: Metrics {
                ttft: sk.clone(),
                itl: sk,
                ttft_buf: Vec::with_capacity(FLUSH),
                itl_buf: Vec::with_capacity(FLUSH),
                itl_shared: Vec::new(),
                itl_counts: Vec::new(),
                arrival_of_first: w.arrival.clone(),
                recent_ttft: None,
            },
            trace: opts.trace.then(StepTrace::default),
            timeline: opts
                .timeline_interval
                .map(|iv| (iv, t0, Timeline::default())),
            rejected: 0,
            t_end: t0,
            max_wait: None,
            admission_rejected: 0,
            shed: 0,
            timed_out: 0,
            wasted_tokens: 0,
        })
    }

    /// Record timeline samples for grid points before `t` (state is constant since the
    /// last event).
    #[inline]
    fn sample_until(&mut self, t: f64) {
        if self.timeline.is_some() {
            self.sample_grid(t);
        }
    }

    /// The samples of [`Self::sample_until`], out of line (the loops call that every event).
    #[inline(never)]
    fn sample_grid(&mut self, t: f64) {
        if let Some((iv, next, tl)) = &mut self.timeline {
            while *next < t {
                for (i, r) in self.reps.iter().enumerate() {
                    tl.time.push(*next);
                    tl.replica.push(i as u32);
                    tl.kv_blocks.push(r.blocks_used(self.cfgs[i]));
                    tl.waiting.push(r.waiting.len() as u32);
                    tl.running.push(r.running_len() as u32);
                    tl.batch_tokens
                        .push(if r.busy() { r.step_tokens } else { 0 });
                }
                *next += *iv;
            }
        }
    }

    /// Request `k` arrives: rejected if it can never fit, else queued at replica `i`.
    fn arrive(&mut self, k: usize, i: usize) {
        if !fits(self.cfg, self.w.prompt[k], self.w.output[k]) {
            self.reqs[k].status = STATUS_REJECTED;
            self.rejected += 1;
            return;
        }
        self.reqs[k].replica = i as i32;
        self.reps[i].enqueue(&mut self.reqs, k as u32, self.w.arrival[k]);
    }

    /// Start a step on replica `i` at `t`; returns its end time (`t` for an empty step).
    fn begin(&mut self, i: usize, t: f64) -> f64 {
        if let Some(mw) = self.max_wait {
            self.timed_out += self.reps[i].drop_expired(
                &mut self.reqs,
                &self.w.arrival,
                t,
                mw,
                &mut self.wasted_tokens,
            );
            if !self.reps[i].has_work() {
                return t;
            }
        }
        let waiting_at_start = self.reps[i].waiting.len() as u32;
        if self.trace.is_some() {
            // The trace lists every scheduled request: no lazy steps.
            self.reps[i].lz.on = false;
        }
        loop {
            let rep = &mut self.reps[i];
            let b = rep.schedule(self.w, self.cfgs[i], &mut self.reqs, t);
            if rep.scheduled() == 0 && rep.preempted.is_empty() {
                if rep.running_len() == 0 && !rep.waiting.is_empty() {
                    // Nothing can schedule the head even with every block free.
                    rep.reject_head(&mut self.reqs, t);
                    continue;
                }
                return t;
            }
            let d = self.cfgs[i].step_time.duration(&b);
            if let Some(tr) = &mut self.trace {
                let s = tr.step_start.len() as u32;
                tr.step_replica.push(i as u32);
                tr.step_start.push(t);
                tr.step_end.push(t + d);
                tr.step_waiting.push(waiting_at_start);
                for &r in &rep.sched {
                    tr.sched_step.push(s);
                    tr.sched_request.push(r);
                    tr.sched_tokens.push(self.reqs[r as usize].sched);
                }
                for &r in &rep.preempted {
                    tr.preempt_step.push(s);
                    tr.preempt_request.push(r);
                }
            }
            rep.step_start = t;
            rep.step_end = t + d;
            return t + d;
        }
    }

    /// End replica `i`'s current step.
    fn end(&mut self, i: usize) {
        let rep = &mut self.reps[i];
        let t_end = rep.step_end;
        let d = t_end - rep.step_start;
        rep.end_step(
            self.w,
            self.cfgs[i],
            &mut self.reqs,
            t_end,
            d,
            &mut self.metrics,
        );
        self.t_end = self.t_end.max(t_end);
    }

    fn finish(mut self) -> Result<RunResult> {
        self.metrics.flush()?;
        let t_end = self.t_end;
        for r in &mut self.reps {
            r.lz_flush(&mut self.reqs);
            r.close(t_end);
        }
        let acc = self.metrics.ttft.relative_accuracy();
        let mut e2e = QuantileSketch::new(acc)?;
        let mut tpot = QuantileSketch::new(acc)?;
        let mut queue = QuantileSketch::new(acc)?;
        let n = self.reqs.len();
        let (mut e2e_v, mut tpot_v, mut queue_v) = (Vec::new(), Vec::new(), Vec::new());
        let mut rec = Records {
            replica: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            first_scheduled: Vec::with_capacity(n),
            first_token: Vec::with_capacity(n),
            finish: Vec::with_capacity(n),
            output_tokens: Vec::with_capacity(n),
            preemptions: Vec::with_capacity(n),
            cached_tokens: Vec::with_capacity(n),
        };
        for (k, q) in self.reqs.iter().enumerate() {
            let a = self.w.arrival[k];
            if q.status == super::engine::STATUS_FINISHED {
                let e = q.finish - a;
                e2e_v.push(e);
                if q.output > 1 {
                    tpot_v.push((e - (q.first_token - a)) / f64::from(q.output - 1));
                }
            }
            if !q.first_sched.is_nan() {
                queue_v.push(q.first_sched - a);
            }
            rec.replica.push(q.replica);
            rec.status.push(q.status);
            rec.first_scheduled.push(q.first_sched);
            rec.first_token.push(q.first_token);
            rec.finish.push(q.finish);
            rec.output_tokens.push(q.emitted);
            rec.preemptions.push(q.preemptions);
            rec.cached_tokens
                .push(if q.cached == u32::MAX { 0 } else { q.cached });
        }
        e2e.add_slice(&e2e_v)?;
        tpot.add_slice(&tpot_v)?;
        queue.add_slice(&queue_v)?;
        Ok(RunResult {
            records: rec,
            ttft: self.metrics.ttft,
            tpot,
            itl: self.metrics.itl,
            e2e,
            queue,
            rejected: self.rejected
                + self
                    .reps
                    .iter()
                    .map(|r| r.stats.stuck_rejected)
                    .sum::<u64>()
                + self.admission_rejected,
            admission_rejected: self.admission_rejected,
            shed: self.shed,
            timed_out: self.timed_out,
            wasted_tokens: self.wasted_tokens,
            replicas: self.reps.into_iter().map(|r| r.stats).collect(),
            t0: self.w.arrival.first().copied().unwrap_or(0.0),
            t_end,
            trace: self.trace,
            timeline: self.timeline.map(|(_, _, tl)| tl),
        })
    }
}

/// Progress of a run: called now and then with (requests arrived, requests in all).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Events between two progress reports.
const PROGRESS_EVERY: u32 = 1 << 14;

/// Run `w` on one replica (the engine alone, §3).
pub fn run_engine(w: &Workload, cfg: &ReplicaConfig, opts: &RunOptions) -> Result<RunResult> {
    run_engine_progress(w, cfg, opts, &mut |_, _| {})
}

/// [`run_engine`], reporting progress.
pub fn run_engine_progress(
    w: &Workload,
    cfg: &ReplicaConfig,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunResult> {
    let mut dr = Driver::new(w, cfg, 1, opts)?;
    let n = w.len();
    let mut k = 0;
    let mut t = w.arrival.first().copied().unwrap_or(0.0);
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events % PROGRESS_EVERY == 0 {
            progress(k, n);
        }
        // Arrivals up to t join waiting (those during the last step included).
        while k < n && w.arrival[k] <= t {
            dr.sample_until(w.arrival[k]);
            dr.arrive(k, 0);
            k += 1;
        }
        if !dr.reps[0].has_work() {
            if k == n {
                break;
            }
            t = w.arrival[k];
            continue;
        }
        let t1 = dr.begin(0, t);
        if dr.reps[0].busy() {
            // Arrivals during the step join waiting at their time.
            while k < n && w.arrival[k] <= t1 {
                dr.sample_until(w.arrival[k]);
                dr.arrive(k, 0);
                k += 1;
            }
            dr.sample_until(t1);
            dr.end(0);
        }
        t = t1;
    }
    progress(n, n);
    dr.finish()
}

/// Load the router sees for one replica.
#[derive(Debug, Clone, Copy, Default)]
struct Load {
    waiting: u64,
    running: u64,
    tokens: u64,
}

/// Run `w` on a fleet of replicas behind a router (§8).
pub fn run_fleet(
    w: &Workload,
    cfg: &ReplicaConfig,
    fleet: &FleetConfig,
    opts: &RunOptions,
) -> Result<RunResult> {
    run_fleet_progress(w, cfg, fleet, opts, &mut |_, _| {})
}

/// [`run_fleet`], reporting progress.
pub fn run_fleet_progress(
    w: &Workload,
    cfg: &ReplicaConfig,
    fleet: &FleetConfig,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunResult> {
    run_fleet_admitted(w, cfg, fleet, &Admission::default(), opts, progress)
}

/// The duration of one prefill chunk of `max_num_batched_tokens` tokens on `cfg` (the
/// step of the predicted-TTFT bound of [`Admission`]).
fn budget_step(cfg: &ReplicaConfig) -> f64 {
    let b = cfg.max_num_batched_tokens;
    cfg.step_time.duration(&Batch {
        prefill_tokens: u64::from(b),
        prefill_tokens_sq: f64::from(b) * f64::from(b),
        prefill_reqs: 1,
        decode_reqs: 0,
        decode_ctx: 0,
        ctx: u64::from(b),
    })
}

/// [`run_fleet_progress`] with admission control in front of the fleet (see
/// [`Admission`]). A request is checked, in order: whether it can ever fit a replica
/// (else rejected), the token bucket (else shed), then, on the replica the router picks,
/// the waiting cap (else shed) and the predicted-TTFT bound (else rejected). Requests
/// shed or rejected here never join a replica (their record's replica is -1). With
/// `Admission::default()` the run is exactly [`run_fleet_progress`]'s.
///
/// # Errors
/// An invalid fleet, admission or configuration.
pub fn run_fleet_admitted(
    w: &Workload,
    cfg: &ReplicaConfig,
    fleet: &FleetConfig,
    adm: &Admission,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunResult> {
    fleet_loop::<crate::policy::Fixed>(w, cfg, fleet, adm, opts, progress, None)
}

/// The fleet's event loop; with `scaling`, replicas start, become routable, drain and
/// leave as the autoscaler asks (see [`super::scale::run_fleet_autoscaled`]).
pub(super) fn fleet_loop<A: crate::policy::Autoscaler>(
    w: &Workload,
    cfg: &ReplicaConfig,
    fleet: &FleetConfig,
    adm: &Admission,
    opts: &RunOptions,
    progress: Progress<'_>,
    mut scaling: Option<&mut super::scale::Scaling<A>>,
) -> Result<RunResult> {
    fleet.check()?;
    adm.check()?;
    let nrep = fleet.replicas as usize;
    let mut dr = Driver::new(w, cfg, nrep, opts)?;
    // The replicas the router may pick, in slot order.
    let all: Vec<usize> = (0..nrep).collect();
    if let Some(sc) = &mut scaling {
        sc.start(&mut dr, w.arrival.first().copied().unwrap_or(0.0));
    }
    dr.max_wait = adm.max_wait;
    // Full at the start; a request costs its prompt tokens.
    let mut bucket = match (adm.token_rate, adm.token_burst) {
        (Some(rate), Some(burst)) => Some(TokenBucket::new(rate, burst)?),
        _ => None,
    };
    let d_budget = budget_step(cfg);
    let per_token = d_budget / f64::from(cfg.max_num_batched_tokens);
    let mut rng = Rng::new(fleet.seed);
    let mut snap = vec![Load::default(); nrep];
    let mut pending = vec![Load::default(); nrep];
    let mut next_refresh = f64::NEG_INFINITY;
    let mut rr = 0usize;
    let n = w.len();
    let mut k = 0;
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events % PROGRESS_EVERY == 0 {
            progress(k, n);
        }
        // Next event: the earliest step end, the next arrival, or (autoscaled) the next
        // sample or replica becoming ready.
        let mut t_step = f64::INFINITY;
        let mut i_step = usize::MAX;
        for (i, r) in dr.reps.iter().enumerate() {
            if r.busy() && r.step_end < t_step {
                t_step = r.step_end;
                i_step = i;
            }
        }
        let t_arr = if k < n { w.arrival[k] } else { f64::INFINITY };
        let mut t = if t_step <= t_arr { t_step } else { t_arr };
        if let Some(sc) = &scaling {
            t = t.min(sc.next_event(&dr, k < n));
        }
        if t == f64::INFINITY {
            break;
        }
        dr.sample_until(t);
        if t_step == t {
            // Every step ending at t, in replica order.
            for i in i_step..dr.reps.len() {
                let r = &dr.reps[i];
                if r.busy() && r.step_end == t {
                    dr.end(i);
                }
            }
        }
        if let Some(sc) = &mut scaling {
            sc.promote(t)?;
        }
        let live: &[usize] = match &scaling {
            Some(sc) => sc.live(),
            None => &all,
        };
        let nlive = live.len();
        // Arrivals up to t.
        while k < n && w.arrival[k] <= t {
            if !fits(cfg, w.prompt[k], w.output[k]) {
                dr.reqs[k].status = STATUS_REJECTED;
                dr.rejected += 1;
                k += 1;
                continue;
            }
            if let Some(b) = &mut bucket {
                if !b.take_n(w.arrival[k], f64::from(w.prompt[k])) {
                    dr.reqs[k].status = STATUS_SHED;
                    dr.shed += 1;
                    k += 1;
                    continue;
                }
            }
            if fleet.staleness == 0.0 || t >= next_refresh {
                for (i, r) in dr.reps.iter().enumerate() {
                    snap[i] = Load {
                        waiting: r.waiting.len() as u64,
                        running: r.running_len() as u64,
                        tokens: r.outstanding,
                    };
                    pending[i] = Load::default();
                }
                if fleet.staleness > 0.0 {
                    next_refresh =
                        (t / fleet.staleness).floor() * fleet.staleness + fleet.staleness;
                }
            }
            let load = |i: usize| Load {
                waiting: snap[i].waiting + pending[i].waiting,
                running: snap[i].running + pending[i].running,
                tokens: snap[i].tokens + pending[i].tokens,
            };
            let argmin = |f: &dyn Fn(usize) -> f64| -> usize {
                let mut best = live[0];
                let mut bv = f64::INFINITY;
                for &i in live {
                    let v = f(i);
                    if v < bv {
                        bv = v;
                        best = i;
                    }
                }
                best
            };
            let i = match fleet.router {
                Router::RoundRobin => {
                    let i = live[rr % nlive];
                    rr += 1;
                    i
                }
                Router::Random => live[rng.index(nlive)],
                Router::LeastRequests => argmin(&|i| {
                    let l = load(i);
                    (l.waiting + l.running) as f64
                }),
                Router::LeastTokens => argmin(&|i| load(i).tokens as f64),
                Router::VllmDp => argmin(&|i| {
                    let l = load(i);
                    (4 * l.waiting + l.running) as f64
                }),
                Router::PowerOfTwo => {
                    if nlive == 1 {
                        live[0]
                    } else {
                        let a = rng.index(nlive);
                        let mut b = rng.index(nlive - 1);
                        if b >= a {
                            b += 1;
                        }
                        let (a, b) = (live[a], live[b]);
                        let (la, lb) = (load(a), load(b));
                        if lb.waiting + lb.running < la.waiting + la.running {
                            b
                        } else {
                            a
                        }
                    }
                }
                Router::PrefixAffinity { weight } => {
                    let p = w.prompt[k];
                    let bs = cfg.block_size;
                    let reps = &dr.reps;
                    argmin(&|i| {
                        let hit = reps[i].peek_hit_blocks(w, cfg, k, p) * bs;
                        weight * f64::from(p - hit) + load(i).tokens as f64
                    })
                }
            };
            if let Some(cap) = adm.max_waiting {
                if dr.reps[i].waiting.len() >= cap as usize {
                    dr.reqs[k].status = STATUS_SHED;
                    dr.shed += 1;
                    k += 1;
                    continue;
                }
            }
            if let Some(bound) = adm.max_predicted_ttft {
                let reqs = &dr.reqs;
                let ahead: u64 = dr.reps[i]
                    .waiting
                    .iter()
                    .map(|&r| {
                        let q = &reqs[r as usize];
                        u64::from(q.num_tokens() - q.computed)
                    })
                    .sum();
                let predicted = (ahead + u64::from(w.prompt[k])) as f64 * per_token + d_budget;
                if predicted > bound {
                    dr.reqs[k].status = STATUS_REJECTED;
                    dr.admission_rejected += 1;
                    k += 1;
                    continue;
                }
            }
            pending[i].waiting += 1;
            pending[i].tokens += u64::from(w.prompt[k]) + u64::from(w.output[k]);
            dr.arrive(k, i);
            k += 1;
        }
        if let Some(sc) = &mut scaling {
            sc.tick(t, &mut dr, k)?;
            snap.resize(dr.reps.len(), Load::default());
            pending.resize(dr.reps.len(), Load::default());
        }
        // Idle replicas with work start a step at t.
        for i in 0..dr.reps.len() {
            if !dr.reps[i].busy() && dr.reps[i].has_work() {
                dr.begin(i, t);
            }
        }
        if let Some(sc) = &mut scaling {
            sc.retire(t, &dr);
        }
    }
    progress(n, n);
    if let Some(sc) = &mut scaling {
        sc.close(&dr, w.arrival.last().copied().unwrap_or(0.0));
    }
    dr.finish()
}

/// KV-cache transfer from a prefill to a decode replica: a request of `P` prompt tokens
/// moves in `latency + P · bytes_per_token / bandwidth` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvTransfer {
    /// Bytes of KV cache per token for the whole model (`2 · layers · kv_heads · head_dim ·
    /// dtype_bytes`, [`super::config::ModelSpec::kv_bytes_per_token`] at tensor parallel 1).
    pub bytes_per_token: f64,
    /// Link bandwidth in bytes per second (`f64::INFINITY`: no size-dependent term).
    pub bandwidth: f64,
    /// Fixed latency per transfer in seconds.
    pub latency: f64,
}

impl KvTransfer {
    /// Validate the fields.
    ///
    /// # Errors
    /// A negative or non-finite `bytes_per_token` or `latency`, or a `bandwidth` not > 0.
    pub fn check(&self) -> Result<()> {
        for (name, v) in [
            ("transfer.bytes_per_token", self.bytes_per_token),
            ("transfer.latency", self.latency),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(QcoreError::invalid(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        if self.bandwidth.is_nan() || self.bandwidth <= 0.0 {
            return Err(QcoreError::invalid(
                "transfer.bandwidth",
                format!("must be > 0 (inf allowed), got {}", self.bandwidth),
            ));
        }
        Ok(())
    }

    /// Transfer time of a request with `prompt` tokens.
    #[must_use]
    pub fn time(&self, prompt: u32) -> f64 {
        self.latency + f64::from(prompt) * self.bytes_per_token / self.bandwidth
    }
}

/// The pools of a disaggregated run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disaggregation {
    /// Prefill replicas (requests arrive at them in turn).
    pub prefill_replicas: u32,
    /// Decode replicas.
    pub decode_replicas: u32,
    /// KV transfer between the pools (`None`: none, the request moves at once).
    pub transfer: Option<KvTransfer>,
}

/// A KV transfer in flight: request `r` reaches the decode pool at `t` (`seq` breaks ties
/// in the order transfers started).
#[derive(Debug, Clone, Copy)]
struct InFlight {
    t: f64,
    seq: u64,
    r: u32,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    // Reversed: `BinaryHeap` pops the earliest.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// Prefill and decode on separate replicas (`DistServe`'s disaggregated simulator, backend
/// `distserve`) with no KV-transfer time: [`run_disaggregated_with`] with
/// `transfer: None`.
///
/// # Errors
/// As [`run_disaggregated_with`].
pub fn run_disaggregated(
    w: &Workload,
    prefill: &ReplicaConfig,
    decode: &ReplicaConfig,
    prefill_replicas: u32,
    decode_replicas: u32,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunResult> {
    let pools = Disaggregation {
        prefill_replicas,
        decode_replicas,
        transfer: None,
    };
    run_disaggregated_with(w, prefill, decode, &pools, opts, progress)
}

/// Prefill and decode on separate replicas: requests arrive at the prefill replicas in
/// turn; at the end of the step that completes its prefill a request (having emitted its
/// first token) leaves its prefill replica (freeing its blocks there) and, after the KV
/// transfer (none when `pools.transfer` is `None` or its time is 0), joins the running
/// requests of the decode replica with the fewest requests in the system (waiting +
/// running; the first on ties). A decode replica with a KV model allocates the request's
/// blocks when it next schedules it, preempting as its scheduler does.
///
/// Each configuration forms batches as vLLM V1 or with strict prefill priority
/// ([`super::config::BatchFormation`]; the `DistServe` preset reproduces `DistServe`'s
/// simulator with `transfer: None`). Step ends at the same time are processed in the
/// order their steps started, each replica deciding its next step at once; requests
/// arriving at that time, and transfers ending then, are seen first. A request that could
/// never finish on a replica of either pool is rejected on arrival (for a decode
/// configuration without a KV model only the prefill side is checked).
///
/// # Errors
/// A configuration with the `prefill_priority_unmixed` batch formation, an empty pool,
/// an invalid transfer or configuration.
pub fn run_disaggregated_with(
    w: &Workload,
    prefill: &ReplicaConfig,
    decode: &ReplicaConfig,
    pools: &Disaggregation,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunResult> {
    use super::config::{BatchFormation, MemoryAdmission};
    for (name, c) in [("prefill", prefill), ("decode", decode)] {
        if c.batch_formation == BatchFormation::PrefillPriorityUnmixed {
            return Err(QcoreError::invalid(
                name,
                "must use the vllm_v1 or strict_prefill_priority batch formation for a \
                 disaggregated run (prefill_priority_unmixed is colocated only)",
            ));
        }
    }
    if pools.prefill_replicas == 0 || pools.decode_replicas == 0 {
        return Err(QcoreError::invalid(
            "replicas",
            "a disaggregated run needs at least one prefill and one decode replica",
        ));
    }
    if let Some(x) = &pools.transfer {
        x.check()?;
    }
    let check_decode = decode.memory_admission != MemoryAdmission::Unlimited;
    let np = pools.prefill_replicas as usize;
    let nd = pools.decode_replicas as usize;
    let mut cfgs = vec![prefill; np];
    cfgs.extend(std::iter::repeat_n(decode, nd));
    let mut dr = Driver::with_configs(w, cfgs, opts)?;
    let n = w.len();
    let mut k = 0;
    let mut rr = 0usize;
    let mut xfer: Vec<u32> = Vec::new();
    let mut flight: std::collections::BinaryHeap<InFlight> = std::collections::BinaryHeap::new();
    let mut seq = 0u64;
    let mut events = 0u32;
    // The decode replica a request joins.
    let target = |dr: &Driver<'_>| {
        let mut j = np;
        for c in np + 1..np + nd {
            if dr.reps[c].in_system() < dr.reps[j].in_system() {
                j = c;
            }
        }
        j
    };
    loop {
        events = events.wrapping_add(1);
        if events % PROGRESS_EVERY == 0 {
            progress(k, n);
        }
        // The first step end (of replica `first`), the next one, and whether an idle
        // replica has work.
        let (mut t_step, mut first, mut t_next, mut stuck) =
            (f64::INFINITY, usize::MAX, f64::INFINITY, false);
        for (i, r) in dr.reps.iter().enumerate() {
            if !r.busy() {
                stuck |= r.has_work();
            } else if r.step_end < t_step {
                (t_step, first, t_next) = (r.step_end, i, t_step);
            } else if r.step_end < t_next {
                t_next = r.step_end;
            }
        }
        let t_arr = if k < n { w.arrival[k] } else { f64::INFINITY };
        let t_x = flight.peek().map_or(f64::INFINITY, |f| f.t);
        let horizon = t_arr.min(t_x).min(t_next);
        if first >= np && !stuck && t_step < horizon {
            // Only decode replica `first` has events until `horizon` (no arrival, transfer
            // or other step end before): the iterations until then end and begin its steps
            // only, as the general iteration below does, without its scans.
            let i = first;
            loop {
                let t = dr.reps[i].step_end;
                dr.sample_until(t);
                dr.end(i);
                if dr.reps[i].has_work() {
                    dr.begin(i, t);
                }
                if !dr.reps[i].busy() && dr.reps[i].has_work() {
                    dr.begin(i, t);
                }
                if !dr.reps[i].busy() || dr.reps[i].step_end >= horizon {
                    break;
                }
                events = events.wrapping_add(1);
                if events % PROGRESS_EVERY == 0 {
                    progress(k, n);
                }
            }
            continue;
        }
        let t = t_step.min(t_arr).min(t_x);
        if t == f64::INFINITY {
            break;
        }
        dr.sample_until(t);
        while k < n && w.arrival[k] <= t {
            if check_decode && !fits(decode, w.prompt[k], w.output[k]) {
                dr.reqs[k].status = STATUS_REJECTED;
                dr.rejected += 1;
            } else {
                dr.arrive(k, rr % np);
                rr += 1;
            }
            k += 1;
        }
        while let Some(f) = flight.peek().copied().filter(|f| f.t <= t) {
            flight.pop();
            let j = target(&dr);
            dr.reps[j].push_running(&dr.reqs, f.r, t);
        }
        // Step ends at t, in the order the steps started.
        loop {
            let mut pick = usize::MAX;
            let mut start = f64::INFINITY;
            for (i, r) in dr.reps.iter().enumerate() {
                if r.busy() && r.step_end == t && r.step_start < start {
                    start = r.step_start;
                    pick = i;
                }
            }
            if pick == usize::MAX {
                break;
            }
            dr.end(pick);
            if pick < np {
                dr.reps[pick].take_running(&mut dr.reqs, t, &mut xfer);
                for &r in &xfer {
                    if dr.reqs[r as usize].emitted == 0 {
                        // Prefill not complete (chunked): stays, in order.
                        dr.reps[pick].push_running(&dr.reqs, r, t);
                        continue;
                    }
                    let q = &mut dr.reqs[r as usize];
                    let pool = &mut dr.reps[pick].pool;
                    pool.release(&mut q.blocks);
                    pool.nfree += q.held;
                    q.held = 0;
                    let dt = pools.transfer.map_or(0.0, |x| x.time(q.prompt));
                    if dt > 0.0 {
                        flight.push(InFlight { t: t + dt, seq, r });
                        seq += 1;
                    } else {
                        let j = target(&dr);
                        dr.reps[j].push_running(&dr.reqs, r, t);
                    }
                }
            }
            if dr.reps[pick].has_work() {
                dr.begin(pick, t);
            }
        }
        for i in 0..np + nd {
            if !dr.reps[i].busy() && dr.reps[i].has_work() {
                dr.begin(i, t);
            }
        }
    }
    progress(n, n);
    dr.finish()
}
