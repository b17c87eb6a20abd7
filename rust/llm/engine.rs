//! One replica: waiting/running queues, the KV block pool with its prefix cache, and the
//! step (LLM-ENGINE.md §3, §4).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::config::{Batch, BatchFormation, MemoryAdmission, Preemption, ReplicaConfig};
use crate::error::{QcoreError, Result};

/// The requests to serve (§1), in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub(crate) arrival: Vec<f64>,
    pub(crate) prompt: Vec<u32>,
    pub(crate) output: Vec<u32>,
    /// CSR offsets into `hash_ids` (length n + 1), or empty when there are no hashes.
    pub(crate) hash_offsets: Vec<usize>,
    pub(crate) hash_ids: Vec<u64>,
    pub(crate) hash_block_tokens: u32,
}

impl Workload {
    /// A workload from arrival times (seconds, non-decreasing), prompt and output token
    /// counts (each ≥ 1).
    pub fn new(arrival: Vec<f64>, prompt: Vec<u32>, output: Vec<u32>) -> Result<Self> {
        crate::error::check_finite("arrival", &arrival)?;
        crate::error::check_same_len("arrival", arrival.len(), "prompt_tokens", prompt.len())?;
        crate::error::check_same_len("arrival", arrival.len(), "output_tokens", output.len())?;
        if let Some(i) = arrival.windows(2).position(|w| w[1] < w[0]) {
            return Err(QcoreError::invalid(
                "arrival",
                format!(
                    "must be non-decreasing (index {} is before index {i})",
                    i + 1
                ),
            ));
        }
        if let Some(i) = prompt.iter().position(|&p| p == 0) {
            return Err(QcoreError::invalid(
                "prompt_tokens",
                format!("must be >= 1 (0 at index {i})"),
            ));
        }
        if let Some(i) = output.iter().position(|&o| o == 0) {
            return Err(QcoreError::invalid(
                "output_tokens",
                format!("must be >= 1 (0 at index {i})"),
            ));
        }
        if let Some(i) = (0..prompt.len())
            .find(|&i| u64::from(prompt[i]) + u64::from(output[i]) > u64::from(u32::MAX))
        {
            return Err(QcoreError::invalid(
                "output_tokens",
                format!("plus prompt_tokens must be below 2^32 (index {i})"),
            ));
        }
        Ok(Workload {
            arrival,
            prompt,
            output,
            hash_offsets: Vec::new(),
            hash_ids: Vec::new(),
            hash_block_tokens: 0,
        })
    }

    /// Attach prompt block hashes: request `i` has `hash_ids[offsets[i]..offsets[i+1]]`,
    /// one id per `hash_block_tokens` prompt tokens (chained ids, as in Mooncake's traces).
    pub fn with_hashes(
        mut self,
        offsets: Vec<usize>,
        hash_ids: Vec<u64>,
        hash_block_tokens: u32,
    ) -> Result<Self> {
        if offsets.len() != self.arrival.len() + 1 {
            return Err(QcoreError::invalid(
                "hash_offsets",
                format!(
                    "must have {} entries (requests + 1), got {}",
                    self.arrival.len() + 1,
                    offsets.len()
                ),
            ));
        }
        if offsets[0] != 0
            || offsets.windows(2).any(|w| w[1] < w[0])
            || *offsets.last().unwrap_or(&0) != hash_ids.len()
        {
            return Err(QcoreError::invalid(
                "hash_offsets",
                "must start at 0, be non-decreasing and end at the number of hash ids",
            ));
        }
        if hash_block_tokens == 0 {
            return Err(QcoreError::invalid("hash_block_tokens", "must be >= 1"));
        }
        self.hash_offsets = offsets;
        self.hash_ids = hash_ids;
        self.hash_block_tokens = hash_block_tokens;
        Ok(self)
    }

    /// `n` synthetic requests: arrivals from the simulator's arrival process (time 0 at
    /// the first), token counts drawn from `prompt` and `output` and rounded to the
    /// nearest integer ≥ 1. Arrivals, prompts and outputs use separate random streams.
    pub fn synthetic(
        arrivals: &crate::sim::ArrivalProcess,
        prompt: &crate::sim::Dist,
        output: &crate::sim::Dist,
        n: usize,
        seed: u64,
    ) -> Result<Self> {
        use crate::sim::rng::{Rng, Stream};
        arrivals.check()?;
        prompt.check("prompt_tokens")?;
        output.check("output_tokens")?;
        let mut gen =
            crate::sim::arrivals::ArrivalGen::new(arrivals, Rng::stream(seed, 0, Stream::Arrivals));
        let mut prng = Rng::stream(seed, 0, Stream::Service);
        let mut orng = Rng::stream(seed, 0, Stream::Patience);
        let tok = |v: f64| -> u32 { v.round().clamp(1.0, f64::from(u32::MAX)) as u32 };
        let (mut a, mut p, mut o) = (Vec::new(), Vec::new(), Vec::new());
        let mut t = 0.0;
        for i in 0..n {
            let Some(g) = gen.next_gap() else { break };
            t = if i == 0 { 0.0 } else { t + g };
            a.push(t);
            p.push(tok(prompt.sample(&mut prng, i)));
            o.push(tok(output.sample(&mut orng, i)));
        }
        Workload::new(a, p, o)
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.arrival.len()
    }

    /// Whether there are no requests.
    pub fn is_empty(&self) -> bool {
        self.arrival.is_empty()
    }

    /// Whether block hashes are attached.
    pub fn has_hashes(&self) -> bool {
        !self.hash_offsets.is_empty()
    }

    /// Arrival times.
    pub fn arrival(&self) -> &[f64] {
        &self.arrival
    }

    /// Prompt tokens.
    pub fn prompt(&self) -> &[u32] {
        &self.prompt
    }

    /// Output tokens.
    pub fn output(&self) -> &[u32] {
        &self.output
    }

    /// The prefix-cache key of engine block `j` of request `r` (§4), or `None` when the
    /// block is not cacheable (not full, outside the prompt, or beyond the hashes).
    #[inline]
    pub(crate) fn block_key(&self, r: usize, j: u32, block_size: u32) -> Option<(u64, u32)> {
        if self.hash_offsets.is_empty() {
            return None;
        }
        if (u64::from(j) + 1) * u64::from(block_size) > u64::from(self.prompt[r]) {
            return None;
        }
        let h = (u64::from(j) * u64::from(block_size) / u64::from(self.hash_block_tokens)) as usize;
        let (a, b) = (self.hash_offsets[r], self.hash_offsets[r + 1]);
        if a + h >= b {
            return None;
        }
        Some((self.hash_ids[a + h], j))
    }
}

/// Final status of a request.
pub const STATUS_FINISHED: u8 = 0;
/// Rejected: it can never fit the replica (or never be scheduled).
pub const STATUS_REJECTED: u8 = 1;
/// Still in the system when the run stopped.
pub const STATUS_UNFINISHED: u8 = 2;
/// Shed on arrival by admission control (token bucket or waiting cap).
pub const STATUS_SHED: u8 = 3;
/// Dropped by the admission queue-wait deadline: still waiting, without its first token,
/// longer than `max_wait` after its arrival.
pub const STATUS_TIMED_OUT: u8 = 4;

/// Per-request state during a run.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub prompt: u32,
    pub output: u32,
    pub emitted: u32,
    pub computed: u32,
    /// Tokens scheduled in the current step.
    pub sched: u32,
    /// Highest prompt progress ever reached (for the outstanding-token load).
    pub prefilled: u32,
    pub preemptions: u32,
    pub cached: u32,
    /// Tokens computed for the request over the run (prefill, recompute and decode; not
    /// prefix-cache hits): wasted when it is then dropped.
    pub work: u64,
    pub status: u8,
    pub replica: i32,
    pub first_sched: f64,
    pub first_token: f64,
    pub last_emit: f64,
    pub finish: f64,
    pub blocks: Vec<u32>,
    /// Blocks held without identity (modes with no prefix cache count them only).
    pub held: u32,
    /// Whether the request is in its replica's lazy decode set. While it is, `emitted`,
    /// `computed`, `work`, `last_emit` and `held` are their values at the lazy step it
    /// joined at, whose counter modulo 2³² is `lz` (it stays fewer steps than it has
    /// output tokens).
    pub in_lz: bool,
    pub lz: u32,
}

impl Req {
    pub fn new(prompt: u32, output: u32) -> Self {
        Req {
            prompt,
            output,
            emitted: 0,
            computed: 0,
            sched: 0,
            prefilled: 0,
            preemptions: 0,
            cached: u32::MAX,
            work: 0,
            status: STATUS_UNFINISHED,
            replica: -1,
            first_sched: f64::NAN,
            first_token: f64::NAN,
            last_emit: f64::NAN,
            finish: f64::NAN,
            blocks: Vec::new(),
            held: 0,
            in_lz: false,
            lz: 0,
        }
    }

    #[inline]
    pub fn num_tokens(&self) -> u32 {
        self.prompt + self.emitted
    }
}

const NIL: u32 = u32::MAX;

/// A small multiplicative hasher for the prefix-cache keys (not `DoS` resistant; keys come
/// from the workload).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
}

pub(crate) type KeyMap = HashMap<(u64, u32), u32, BuildHasherDefault<KeyHasher>>;

/// The KV block pool: reference counts, a free queue (doubly linked, so that a cache hit
/// can take a block out of its middle) and the prefix cache `key → block`.
///
/// The free queue starts as blocks `0..n` in order. Blocks never used yet are kept as a
/// range (`fresh..n`, always at the head of the queue: freed blocks join the tail), so
/// memory grows with the blocks a run touches, not with `num_blocks`.
#[derive(Debug)]
pub(crate) struct Pool {
    n: u32,
    fresh: u32,
    prev: Vec<u32>,
    next: Vec<u32>,
    refc: Vec<u32>,
    key: Vec<(u64, u32)>,
    keyed: Vec<bool>,
    /// Head and tail of the linked part of the free queue (used blocks freed).
    head: u32,
    tail: u32,
    pub nfree: u32,
    pub cache: KeyMap,
    /// Incremented whenever an entry enters or leaves the cache.
    pub epoch: u64,
}

impl Pool {
    pub fn new(n: u32) -> Self {
        Pool {
            n,
            fresh: 0,
            prev: Vec::new(),
            next: Vec::new(),
            refc: Vec::new(),
            key: Vec::new(),
            keyed: Vec::new(),
            head: NIL,
            tail: NIL,
            nfree: n,
            cache: KeyMap::default(),
            epoch: 0,
        }
    }

    #[inline]
    fn unlink(&mut self, b: u32) {
        let (p, n) = (self.prev[b as usize], self.next[b as usize]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.nfree -= 1;
    }

    #[inline]
    fn push_tail(&mut self, b: u32) {
        self.prev[b as usize] = self.tail;
        self.next[b as usize] = NIL;
        if self.tail == NIL {
            self.head = b;
        } else {
            self.next[self.tail as usize] = b;
        }
        self.tail = b;
        self.nfree += 1;
    }

    /// Take a block from the head of the free queue, evicting its cache entry.
    #[inline]
    fn pop_head(&mut self) -> u32 {
        if self.fresh < self.n {
            let b = self.fresh;
            self.fresh += 1;
            self.prev.push(NIL);
            self.next.push(NIL);
            self.refc.push(1);
            self.key.push((0, 0));
            self.keyed.push(false);
            self.nfree -= 1;
            return b;
        }
        let b = self.head;
        debug_assert!(b != NIL);
        self.unlink(b);
        if self.keyed[b as usize] {
            // A keyed block is the one its key maps to (keys are only set on a vacant entry).
            let k = self.key[b as usize];
            let removed = self.cache.remove(&k);
            debug_assert_eq!(removed, Some(b));
            self.epoch += 1;
            self.keyed[b as usize] = false;
        }
        self.refc[b as usize] = 1;
        b
    }

    /// Take a reference to a cached block (removing it from the free queue if needed).
    #[inline]
    fn take_hit(&mut self, b: u32) {
        if self.refc[b as usize] == 0 {
            self.unlink(b);
        }
        self.refc[b as usize] += 1;
    }

    /// Release a request's blocks, last block first.
    #[inline]
    pub fn release(&mut self, blocks: &mut Vec<u32>) {
        while let Some(b) = blocks.pop() {
            let rc = &mut self.refc[b as usize];
            *rc -= 1;
            if *rc == 0 {
                self.push_tail(b);
            }
        }
    }

    /// Mark block `b` as holding cache key `k` (if the key is not cached yet).
    #[inline]
    fn insert(&mut self, k: (u64, u32), b: u32) {
        if self.keyed[b as usize] {
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.cache.entry(k) {
            e.insert(b);
            self.epoch += 1;
            self.key[b as usize] = k;
            self.keyed[b as usize] = true;
        }
    }

    /// Whether block `b` is free (reference count 0).
    #[inline]
    pub fn is_free(&self, b: u32) -> bool {
        self.refc[b as usize] == 0
    }
}

/// Counters of one replica over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaStats {
    /// Requests routed to the replica (rejected ones excluded).
    pub arrived: u64,
    /// Requests finished.
    pub finished: u64,
    /// Steps run (with at least one scheduled request).
    pub steps: u64,
    /// Token-steps: Σ over steps of the requests scheduled.
    pub token_steps: u64,
    /// Prefill tokens computed (including recompute after preemption).
    pub prefill_tokens: u64,
    /// Output tokens emitted.
    pub output_tokens: u64,
    /// Time spent in steps (seconds).
    pub busy_time: f64,
    /// Preemptions.
    pub preemptions: u64,
    /// Prefix-cache hit tokens over all admissions.
    pub hit_tokens: u64,
    /// Tokens looked up in the prefix cache over all admissions.
    pub lookup_tokens: u64,
    /// ∫ (waiting + running) dt over the run.
    pub in_system_area: f64,
    /// Highest blocks held at once.
    pub max_blocks_used: u32,
    /// Highest running requests at once.
    pub max_running: u32,
    /// Highest tokens scheduled in one step.
    pub max_step_tokens: u32,
    /// Requests rejected at the head of `waiting` because nothing could ever schedule them.
    pub stuck_rejected: u64,
}

/// A request that emitted its last token: finished at `t_end`, its blocks back in the pool.
#[inline(always)]
fn finish_request(pool: &mut Pool, stats: &mut ReplicaStats, q: &mut Req, t_end: f64) {
    q.status = STATUS_FINISHED;
    q.finish = t_end;
    pool.release(&mut q.blocks);
    pool.nfree += q.held;
    q.held = 0;
    q.blocks = Vec::new();
    stats.finished += 1;
}

/// One decode token of request `r` (past its prompt) emitted at `t_end`: its counters and
/// token gap, and its finish when it was the last one (then `true`).
#[inline(always)]
fn emit_decode_token<S: Sink>(
    pool: &mut Pool,
    stats: &mut ReplicaStats,
    sink: &mut S,
    q: &mut Req,
    r: u32,
    t_end: f64,
) -> bool {
    q.computed += 1;
    q.work += 1;
    q.emitted += 1;
    sink.token_gap(t_end - q.last_emit);
    q.last_emit = t_end;
    if q.emitted == q.output {
        finish_request(pool, stats, q, t_end);
        sink.finish(r);
        true
    } else {
        false
    }
}

/// One replica's scheduler state.
#[derive(Debug)]
pub(crate) struct Replica {
    pub waiting: VecDeque<u32>,
    pub running: VecDeque<u32>,
    pub pool: Pool,
    /// Requests scheduled in the current step.
    pub sched: Vec<u32>,
    /// Requests preempted while scheduling the current step.
    pub preempted: Vec<u32>,
    /// `DistServe` decode step: the batch is the first `rotate` running requests, which go
    /// back to the tail when the step ends.
    rotate: usize,
    hits: Vec<u32>,
    /// `(request, its num_tokens, cache epoch)` whose lookup `hits` holds.
    hits_for: (u32, u32, u64),
    /// Whether every request of the current step is a decode.
    decode_only: bool,
    /// The batch summary and its tokens, summed while scheduling.
    acc: Batch,
    acc_tokens: u32,
    /// Start and end of the current step (end NaN when idle).
    pub step_start: f64,
    pub step_end: f64,
    pub step_tokens: u32,
    /// Outstanding prompt + output tokens (router load).
    pub outstanding: u64,
    pub stats: ReplicaStats,
    last_change: f64,
    pub(crate) lz: Lazy,
}

/// What a replica emits at the end of a step (for the metrics).
pub(crate) trait Sink {
    fn first_token(&mut self, r: u32, ttft: f64);
    fn token_gap(&mut self, gap: f64);
    /// `n` equal gaps (the requests of a lazy decode step).
    fn token_gaps(&mut self, gap: f64, n: u32) {
        for _ in 0..n {
            self.token_gap(gap);
        }
    }
    fn finish(&mut self, r: u32);
}

/// The lazy decode set of a replica.
///
/// With the unmixed batch formations (`prefill_priority_unmixed`,
/// `strict_prefill_priority`) and blocks that are counted, not identified (`watermark`,
/// `unlimited`), a decode-only step that schedules every running request and preempts
/// nothing gives each of them one token: its batch depends only on how many they are and
/// on the sum of their contexts, and the blocks it allocates only on how many of them
/// sit at a block boundary. Such a step is run in O(1): the requests in the set keep
/// the fields they had when they joined ([`Req::in_lz`]), the step counter says how many
/// tokens they have emitted since, a heap holds the step of each one's last token, and
/// the members are counted by their position in a block. A request leaves the set, its
/// fields brought up to date, when it finishes; every member does when a step is not of
/// this kind (an eager step, which runs as before). Steps, their times and every request's
/// times are the eager ones exactly.
#[derive(Debug)]
pub(crate) struct Lazy {
    /// Whether the replica's policies (and the run: no step trace) allow lazy steps.
    pub on: bool,
    /// Tokens per block.
    bs: u32,
    /// Lazy steps run so far.
    step: u64,
    /// Members, and Σ computed over them (current values).
    n: u32,
    sum_computed: u64,
    /// `(the lazy step that emits its last token, request)`, earliest first.
    finish: BinaryHeap<Reverse<(u64, u32)>>,
    /// Members by `(computed − lz) mod block_size` (when counted): the members that need
    /// a block at lazy step `s` are those of `(−s) mod block_size`.
    phase: Vec<u32>,
    /// End of the last lazy step: the last emission of every member that took part in it.
    last_end: f64,
    /// Running requests outside the set, in their order in `running` (unless
    /// [`LazyState::AllOut`]).
    out: Vec<u32>,
    state: LazyState,
    /// Finished requests still in `running`.
    dead: u32,
    /// Highest arrival of a member since the set was last emptied (the arrival order of
    /// `prefill_priority_unmixed`).
    max_arrival: f64,
    /// The requests that joined at the current step.
    joined: Vec<u32>,
    /// `strict_prefill_priority`: the last eager decode step scheduled every running
    /// request (so the next may be lazy).
    try_next: bool,
    /// `strict_prefill_priority`: the batch goes back to the tail of `running` after
    /// requests that joined it during the step; and the length of `running` (members
    /// first) when the lazy step began.
    rotates: bool,
    batch_len: usize,
}

/// Where a replica's lazy decode set stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LazyState {
    /// Every running request is outside the set (the set is empty).
    AllOut,
    /// Members and outsiders (listed in `out`).
    Some,
    /// The current step is lazy.
    Stepping,
}

impl Lazy {
    fn new(cfg: &ReplicaConfig) -> Self {
        let unmixed = matches!(
            cfg.batch_formation,
            BatchFormation::StrictPrefillPriority { .. } | BatchFormation::PrefillPriorityUnmixed
        );
        let counted = cfg.memory_admission == MemoryAdmission::Watermark;
        Lazy {
            on: unmixed && cfg.memory_admission != MemoryAdmission::FreeBlocks,
            bs: cfg.block_size.max(1),
            step: 0,
            n: 0,
            sum_computed: 0,
            finish: BinaryHeap::new(),
            phase: if counted {
                vec![0; cfg.block_size.max(1) as usize]
            } else {
                Vec::new()
            },
            last_end: f64::NAN,
            out: Vec::new(),
            state: LazyState::AllOut,
            dead: 0,
            max_arrival: f64::NEG_INFINITY,
            joined: Vec::new(),
            try_next: true,
            rotates: matches!(
                cfg.batch_formation,
                BatchFormation::StrictPrefillPriority { .. }
            ),
            batch_len: 0,
        }
    }

    /// Blocks are counted (`watermark`): lazy steps allocate them.
    #[inline]
    fn counted(&self) -> bool {
        !self.phase.is_empty()
    }

    /// The block-position class of a member with `computed` tokens at lazy step `at`.
    #[inline]
    fn key(&self, computed: u32, at: u64) -> usize {
        let bs = u64::from(self.bs);
        ((u64::from(computed) + bs - at % bs) % bs) as usize
    }

    /// Request `r` joins the set at the current step; `false` (and nothing done) when it
    /// is not a plain decode.
    #[inline]
    fn join(&mut self, q: &mut Req, r: u32) -> bool {
        if q.emitted == 0 || q.emitted >= q.output || q.computed + 1 != q.num_tokens() {
            return false;
        }
        if self.counted() {
            if q.held != q.computed.div_ceil(self.bs) {
                return false;
            }
            let k = self.key(q.computed, self.step);
            self.phase[k] += 1;
        }
        q.lz = self.step as u32;
        q.in_lz = true;
        self.n += 1;
        self.sum_computed += u64::from(q.computed);
        self.finish.push(Reverse((
            self.step + u64::from(q.output - q.emitted) - 1,
            r,
        )));
        self.joined.push(r);
        true
    }

    /// Bring member `q`'s fields up to date and mark it outside the set (the set's
    /// aggregates are the caller's).
    #[inline]
    fn materialise(&self, q: &mut Req) {
        let d = (self.step as u32).wrapping_sub(q.lz);
        q.emitted += d;
        q.computed += d;
        q.work += u64::from(d);
        if d > 0 {
            q.last_emit = self.last_end;
        }
        if self.counted() {
            q.held = q.held.max(q.computed.div_ceil(self.bs));
        }
        q.in_lz = false;
    }

    /// A request joins the tail of `running`.
    #[inline]
    fn pushed(&mut self, r: u32) {
        if self.on && self.state != LazyState::AllOut {
            self.out.push(r);
        }
    }
}

impl Replica {
    pub fn new(cfg: &ReplicaConfig) -> Self {
        Replica {
            waiting: VecDeque::new(),
            running: VecDeque::new(),
            pool: Pool::new(cfg.num_blocks),
            sched: Vec::new(),
            preempted: Vec::new(),
            rotate: 0,
            hits: Vec::new(),
            hits_for: (u32::MAX, 0, u64::MAX),
            decode_only: false,
            acc: Batch::default(),
            acc_tokens: 0,
            step_start: f64::NAN,
            step_end: f64::NAN,
            step_tokens: 0,
            outstanding: 0,
            stats: ReplicaStats::default(),
            last_change: f64::NAN,
            lz: Lazy::new(cfg),
        }
    }

    #[inline]
    pub fn busy(&self) -> bool {
        !self.step_end.is_nan()
    }

    /// Running requests (finished ones a lazy step left in `running` excluded).
    #[inline]
    pub fn running_len(&self) -> usize {
        self.running.len() - self.lz.dead as usize
    }

    /// Requests scheduled in the current step.
    #[inline]
    pub fn scheduled(&self) -> usize {
        if self.lz.state == LazyState::Stepping {
            self.lz.n as usize
        } else {
            self.sched.len()
        }
    }

    #[inline]
    pub fn has_work(&self) -> bool {
        self.running_len() > 0 || !self.waiting.is_empty()
    }

    #[inline]
    pub fn in_system(&self) -> usize {
        self.running_len() + self.waiting.len()
    }

    /// Empty the lazy decode set: every member's fields brought up to date, finished
    /// requests out of `running`.
    #[inline]
    pub fn lz_flush(&mut self, reqs: &mut [Req]) {
        // Nothing to do (the eager steps of a long DistServe queue come here every step).
        if self.lz.state != LazyState::AllOut || self.lz.n > 0 || self.lz.dead > 0 {
            self.lz_flush_set(reqs);
        }
    }

    #[inline(never)]
    fn lz_flush_set(&mut self, reqs: &mut [Req]) {
        let lz = &mut self.lz;
        lz.joined.clear();
        lz.out.clear();
        lz.state = LazyState::AllOut;
        lz.max_arrival = f64::NEG_INFINITY;
        if lz.n == 0 && lz.dead == 0 {
            return;
        }
        if lz.n > 0 {
            for &r in &self.running {
                let q = &mut reqs[r as usize];
                if q.in_lz {
                    lz.materialise(q);
                }
            }
        }
        if lz.dead > 0 {
            self.running
                .retain(|&r| reqs[r as usize].status != STATUS_FINISHED);
            lz.dead = 0;
        }
        lz.n = 0;
        lz.sum_computed = 0;
        lz.finish.clear();
        lz.phase.fill(0);
    }

    /// Join the running requests outside the lazy set to it, in `running` order; with
    /// `arrival`, only while `running` stays sorted by it. `false` when one cannot join
    /// (the caller flushes).
    #[inline]
    fn lz_join(&mut self, reqs: &mut [Req], arrival: Option<&[f64]>) -> bool {
        if self.lz.state == LazyState::Some && self.lz.out.is_empty() {
            // Nobody to join (most steps after a lazy one).
            self.lz.joined.clear();
            return true;
        }
        self.lz_join_out(reqs, arrival)
    }

    /// [`Self::lz_join`] when there may be requests to join.
    fn lz_join_out(&mut self, reqs: &mut [Req], arrival: Option<&[f64]>) -> bool {
        let lz = &mut self.lz;
        lz.joined.clear();
        let all = lz.state == LazyState::AllOut;
        let len = if all {
            self.running.len()
        } else {
            lz.out.len()
        };
        for k in 0..len {
            let r = if all { self.running[k] } else { lz.out[k] };
            let q = &mut reqs[r as usize];
            if q.status == STATUS_FINISHED {
                // Finished at a prefill step (and out of `running` since).
                continue;
            }
            if let Some(a) = arrival {
                let x = a[r as usize];
                if x < lz.max_arrival {
                    return false;
                }
                lz.max_arrival = x;
            }
            if !lz.join(q, r) {
                return false;
            }
        }
        lz.state = LazyState::Some;
        lz.out.clear();
        true
    }

    /// Make the current decode-only step over the whole lazy set (after [`Self::lz_join`])
    /// lazy if every member can take its next block without a preemption: `Σ (ctx + 1)`
    /// within `max_tokens` (when given) and fewer members at a block boundary than free
    /// blocks (when blocks are counted).
    fn lz_step(&mut self, max_tokens: Option<u64>) -> bool {
        let lz = &mut self.lz;
        if lz.n == 0 {
            return false;
        }
        let ctx = lz.sum_computed + u64::from(lz.n);
        if max_tokens.is_some_and(|m| ctx > m) {
            return false;
        }
        if lz.counted() {
            let bs = u64::from(lz.bs);
            let c = lz.phase[((bs - lz.step % bs) % bs) as usize];
            if c >= self.pool.nfree {
                return false;
            }
            self.pool.nfree -= c;
        }
        lz.state = LazyState::Stepping;
        lz.batch_len = self.running.len();
        true
    }

    /// End a lazy step at `t_end` (see [`Lazy`]).
    fn lz_end_step<S: Sink>(&mut self, reqs: &mut [Req], t_end: f64, d: f64, sink: &mut S) {
        let lz = &mut self.lz;
        lz.state = LazyState::Some;
        let n = lz.n;
        let s = &mut self.stats;
        s.steps += 1;
        s.token_steps += u64::from(n);
        s.busy_time += d;
        s.output_tokens += u64::from(n);
        self.outstanding -= u64::from(n);
        let joined = lz.joined.len() as u32;
        if n > joined {
            sink.token_gaps(t_end - lz.last_end, n - joined);
        }
        for &r in &lz.joined {
            sink.token_gap(t_end - reqs[r as usize].last_emit);
        }
        lz.joined.clear();
        let step = lz.step;
        lz.step += 1;
        lz.last_end = t_end;
        lz.sum_computed += u64::from(n);
        let mut done = 0u32;
        while let Some(&Reverse((last, r))) = lz.finish.peek() {
            if last != step {
                debug_assert!(last > step);
                break;
            }
            lz.finish.pop();
            let q = &mut reqs[r as usize];
            lz.materialise(q);
            if lz.counted() {
                // Its class, from its computed tokens now and the step count now.
                let k = lz.key(q.computed, lz.step);
                lz.phase[k] -= 1;
            }
            debug_assert_eq!(q.emitted, q.output);
            lz.n -= 1;
            lz.sum_computed -= u64::from(q.computed);
            finish_request(&mut self.pool, &mut self.stats, q, t_end);
            sink.finish(r);
            done += 1;
        }
        if done > 0 {
            self.touch(t_end);
            self.lz.dead += done;
        }
        if self.lz.rotates && self.running.len() > self.lz.batch_len {
            // Requests joined `running` during the step (a disaggregated decode replica):
            // the batch, all of `running` when the step began, goes back behind them.
            for _ in 0..self.lz.batch_len {
                let Some(r) = self.running.pop_front() else {
                    break;
                };
                if reqs[r as usize].status != STATUS_FINISHED {
                    self.running.push_back(r);
                }
            }
            self.lz.dead = 0;
        } else if 2 * self.lz.dead as usize > self.running.len() {
            self.running
                .retain(|&r| reqs[r as usize].status != STATUS_FINISHED);
            self.lz.dead = 0;
        }
        self.step_end = f64::NAN;
        self.step_tokens = 0;
    }

    /// Account ∫(waiting + running) up to `t` before the count changes.
    #[inline]
    fn touch(&mut self, t: f64) {
        if !self.last_change.is_nan() {
            self.stats.in_system_area += self.in_system() as f64 * (t - self.last_change);
        }
        self.last_change = t;
    }

    /// Close the ∫(waiting + running) account at `t`.
    pub fn close(&mut self, t: f64) {
        self.touch(t);
    }

    /// A request joins the tail of `waiting` at time `t`.
    pub fn enqueue(&mut self, reqs: &mut [Req], r: u32, t: f64) {
        self.touch(t);
        self.waiting.push_back(r);
        let q = &reqs[r as usize];
        self.outstanding += u64::from(q.prompt) + u64::from(q.output);
        self.stats.arrived += 1;
    }

    /// The prefix-cache hit of request `r` in blocks, without taking them (for routers).
    pub fn peek_hit_blocks(
        &self,
        w: &Workload,
        cfg: &ReplicaConfig,
        r: usize,
        num_tokens: u32,
    ) -> u32 {
        if !cfg.caches_prefixes() || !w.has_hashes() {
            return 0;
        }
        let max = (num_tokens - 1) / cfg.block_size;
        let mut n = 0;
        while n < max {
            match w.block_key(r, n, cfg.block_size) {
                Some(k) if self.pool.cache.contains_key(&k) => n += 1,
                _ => break,
            }
        }
        n
    }

    /// Grow request `r`'s blocks to cover `tokens` tokens. `hits` (for a request admitted
    /// from waiting) are cached blocks it takes first. Fails without side effects.
    #[inline]
    fn allocate(
        &mut self,
        cfg: &ReplicaConfig,
        reqs: &mut [Req],
        r: u32,
        tokens: u32,
        use_hits: bool,
        reserve: u32,
    ) -> bool {
        let req = &mut reqs[r as usize];
        let nh = if use_hits { self.hits.len() as u32 } else { 0 };
        let have = req.blocks.len() as u32 + nh;
        // Most calls (decodes) need no new block: tell without a division.
        if nh == 0 && u64::from(have) * u64::from(cfg.block_size) >= u64::from(tokens) {
            return true;
        }
        let need = tokens.div_ceil(cfg.block_size);
        let new = need.saturating_sub(have);
        if new == 0 && nh == 0 {
            return true;
        }
        if new > self.pool.nfree {
            return false;
        }
        let free_hits = if use_hits {
            self.hits.iter().filter(|&&b| self.pool.is_free(b)).count() as u32
        } else {
            0
        };
        let take = new + free_hits;
        if take > self.pool.nfree || self.pool.nfree - take < reserve {
            return false;
        }
        if use_hits {
            for &b in &self.hits {
                self.pool.take_hit(b);
                req.blocks.push(b);
            }
        }
        for _ in 0..new {
            let b = self.pool.pop_head();
            req.blocks.push(b);
        }
        true
    }

    fn preempt(&mut self, reqs: &mut [Req], v: u32) {
        let req = &mut reqs[v as usize];
        self.pool.release(&mut req.blocks);
        self.pool.nfree += req.held;
        req.held = 0;
        req.computed = 0;
        req.preemptions += 1;
        self.stats.preemptions += 1;
        self.preempted.push(v);
    }

    #[inline]
    fn cap(cfg: &ReplicaConfig, new: u32) -> u32 {
        let t = cfg.long_prefill_token_threshold;
        if t > 0 && new > t {
            t
        } else {
            new
        }
    }

    /// Grow running request `r` to cover `tokens` tokens under the memory-admission
    /// policy. Fails without side effects.
    #[inline]
    fn grow(&mut self, cfg: &ReplicaConfig, reqs: &mut [Req], r: u32, tokens: u32) -> bool {
        match cfg.memory_admission {
            MemoryAdmission::FreeBlocks => self.allocate(cfg, reqs, r, tokens, false, 0),
            MemoryAdmission::Watermark => {
                // Blocks are counted; a request grows only while a block is free.
                if self.pool.nfree == 0 {
                    return false;
                }
                let q = &mut reqs[r as usize];
                if u64::from(q.held) * u64::from(cfg.block_size) >= u64::from(tokens) {
                    return true;
                }
                let need = tokens.div_ceil(cfg.block_size) - q.held;
                if need > self.pool.nfree {
                    return false;
                }
                self.pool.nfree -= need;
                q.held += need;
                true
            }
            MemoryAdmission::Unlimited => true,
        }
    }

    /// Admit waiting request `r` with `tokens` tokens covered (after the prefix hits in
    /// `self.hits`), keeping `reserve` blocks free. Fails without side effects.
    #[inline]
    fn admit(
        &mut self,
        cfg: &ReplicaConfig,
        reqs: &mut [Req],
        r: u32,
        tokens: u32,
        reserve: u32,
    ) -> bool {
        match cfg.memory_admission {
            MemoryAdmission::FreeBlocks => self.allocate(cfg, reqs, r, tokens, true, reserve),
            MemoryAdmission::Watermark => {
                let q = &mut reqs[r as usize];
                let need = tokens.div_ceil(cfg.block_size).saturating_sub(q.held);
                if need > self.pool.nfree || self.pool.nfree - need < reserve {
                    return false;
                }
                self.pool.nfree -= need;
                q.held += need;
                true
            }
            MemoryAdmission::Unlimited => true,
        }
    }

    /// The index of the preemption victim among `running[from..to]` (running requests
    /// not yet in the batch); `None` when that range is empty.
    fn victim(
        &self,
        cfg: &ReplicaConfig,
        arrival: &[f64],
        from: usize,
        to: usize,
    ) -> Option<usize> {
        if from >= to {
            return None;
        }
        match cfg.preemption {
            Preemption::RecomputeLifo | Preemption::Never => Some(to - 1),
            Preemption::RecomputeLatestArrival => {
                // The latest arrival; on ties the later in `running`.
                let mut k = from;
                for i in from + 1..to {
                    let (a, b) = (
                        arrival[self.running[i] as usize],
                        arrival[self.running[k] as usize],
                    );
                    if a >= b {
                        k = i;
                    }
                }
                Some(k)
            }
        }
    }

    /// Preempt `running[k]` to the front of `waiting`.
    fn preempt_at(&mut self, reqs: &mut [Req], k: usize, t: f64) -> u32 {
        self.touch(t);
        let v = self.running.remove(k).expect("the victim is running");
        self.preempt(reqs, v);
        self.waiting.push_front(v);
        v
    }

    /// Schedule one step starting at `t` (§3 steps 1–2) and return its batch summary.
    /// The caller runs the step-time model and later calls [`Replica::end_step`].
    #[inline]
    pub fn schedule(
        &mut self,
        w: &Workload,
        cfg: &ReplicaConfig,
        reqs: &mut [Req],
        t: f64,
    ) -> Batch {
        self.sched.clear();
        self.preempted.clear();
        self.acc = Batch::default();
        self.acc_tokens = 0;
        match cfg.batch_formation {
            // These two sum the batch as they form it.
            BatchFormation::StrictPrefillPriority { decode_tokens } => {
                self.schedule_distserve(w, cfg, reqs, t, decode_tokens);
                return self.close_batch(cfg);
            }
            BatchFormation::PrefillPriorityUnmixed => {
                self.schedule_vidur(w, cfg, reqs, t);
                return self.close_batch(cfg);
            }
            BatchFormation::VllmV1 => {}
        }
        let mut budget = cfg.max_num_batched_tokens;
        // 1. Running requests, in list order.
        let mut i = 0;
        'running: while i < self.running.len() && budget > 0 {
            let r = self.running[i];
            let q = &reqs[r as usize];
            let computed = q.computed;
            let new = Self::cap(cfg, q.num_tokens() - computed).min(budget);
            while !self.grow(cfg, reqs, r, computed + new) {
                let k = self
                    .victim(cfg, &w.arrival, i + 1, self.running.len())
                    .unwrap_or(i);
                let v = self.preempt_at(reqs, k, t);
                if v == r {
                    break 'running;
                }
            }
            reqs[r as usize].sched = new;
            self.sched.push(r);
            budget -= new;
            i += 1;
        }
        // 2. Waiting requests, only if nothing was preempted.
        if self.preempted.is_empty() {
            let reserve = cfg.watermark_blocks();
            let caching = cfg.caches_prefixes() && w.has_hashes();
            while budget > 0 && (self.running.len() as u32) < cfg.max_num_seqs {
                let Some(&r) = self.waiting.front() else {
                    break;
                };
                let nt = reqs[r as usize].num_tokens();
                let hit_blocks = if reqs[r as usize].computed == 0 {
                    self.lookup_hits(w, cfg, r as usize, nt)
                } else {
                    self.hits.clear();
                    self.hits_for = (u32::MAX, 0, u64::MAX);
                    0
                };
                let computed = reqs[r as usize].computed + hit_blocks * cfg.block_size;
                let mut new = Self::cap(cfg, nt - computed);
                if !cfg.chunked_prefill && new > budget {
                    break;
                }
                new = new.min(budget);
                if !self.admit(cfg, reqs, r, computed + new, reserve) {
                    break;
                }
                self.touch(t);
                self.waiting.pop_front();
                self.running.push_back(r);
                let q = &mut reqs[r as usize];
                if q.computed == 0 && caching {
                    let hit = hit_blocks * cfg.block_size;
                    self.stats.hit_tokens += u64::from(hit);
                    self.stats.lookup_tokens += u64::from(nt);
                    if q.cached == u32::MAX {
                        q.cached = hit;
                    }
                }
                q.computed = computed;
                if q.first_sched.is_nan() {
                    q.first_sched = t;
                }
                q.sched = new;
                self.sched.push(r);
                budget -= new;
            }
        }
        self.summarize(cfg, reqs)
    }

    /// Record the admission of waiting request `r` (already out of `waiting`) with
    /// `hit_blocks` prefix-cache blocks, `sched` tokens this step, and push it to
    /// `running` and the batch.
    #[inline]
    fn admitted(
        &mut self,
        cfg: &ReplicaConfig,
        reqs: &mut [Req],
        r: u32,
        hit_blocks: u32,
        sched: u32,
        t: f64,
    ) {
        let caching = hit_blocks != u32::MAX;
        let q = &mut reqs[r as usize];
        if caching {
            let hit = hit_blocks * cfg.block_size;
            self.stats.hit_tokens += u64::from(hit);
            self.stats.lookup_tokens += u64::from(q.num_tokens());
            if q.cached == u32::MAX {
                q.cached = hit;
            }
            q.computed = hit;
        } else {
            q.cached = 0;
        }
        if q.first_sched.is_nan() {
            q.first_sched = t;
        }
        q.sched = sched;
        Self::classify(&mut self.acc, &mut self.acc_tokens, q);
        self.running.push_back(r);
        self.lz.pushed(r);
        self.sched.push(r);
    }

    /// The prefix-cache hit of waiting request `r` in blocks (filling `self.hits`), or
    /// `u32::MAX` when prefixes are not cached.
    #[inline]
    fn waiting_hits(&mut self, w: &Workload, cfg: &ReplicaConfig, reqs: &[Req], r: u32) -> u32 {
        if cfg.caches_prefixes() && w.has_hashes() && reqs[r as usize].computed == 0 {
            self.lookup_hits(w, cfg, r as usize, reqs[r as usize].num_tokens())
        } else {
            self.hits.clear();
            self.hits_for = (u32::MAX, 0, u64::MAX);
            u32::MAX
        }
    }

    /// `DistServe`'s strict prefill priority (see [`BatchFormation::StrictPrefillPriority`]):
    /// a prefill-only step if anything waits, else a decode-only step over a prefix of
    /// `running`.
    fn schedule_distserve(
        &mut self,
        w: &Workload,
        cfg: &ReplicaConfig,
        reqs: &mut [Req],
        t: f64,
        cap: u32,
    ) {
        self.rotate = 0;
        if !self.waiting.is_empty() {
            let reserve = cfg.watermark_blocks();
            let mut total = 0u64;
            while let Some(&r) = self.waiting.front() {
                let hit_blocks = self.waiting_hits(w, cfg, reqs, r);
                let nt = reqs[r as usize].num_tokens();
                let hit = if hit_blocks == u32::MAX {
                    0
                } else {
                    hit_blocks * cfg.block_size
                };
                let p = u64::from(nt - hit);
                if total + p > u64::from(cfg.max_num_batched_tokens)
                    || !self.admit(cfg, reqs, r, nt, reserve)
                {
                    break;
                }
                total += p;
                self.touch(t);
                self.waiting.pop_front();
                self.admitted(cfg, reqs, r, hit_blocks, nt - hit, t);
            }
            // Without a KV model a prefill step always follows a non-empty `waiting`; with
            // one, a head that does not fit lets the running requests decode.
            if !self.sched.is_empty() || cfg.memory_admission == MemoryAdmission::Unlimited {
                return;
            }
        }
        if self.lz.on
            && (self.lz.n > 0 || self.lz.try_next)
            && self.lz_join(reqs, None)
            && self.lz_step(Some(u64::from(cap)))
        {
            return;
        }
        self.lz_flush(reqs);
        if cfg.memory_admission == MemoryAdmission::Unlimited {
            // No KV model: nothing to allocate, nobody to preempt; one tight pass.
            let (mut acc, mut tokens) = (std::mem::take(&mut self.acc), self.acc_tokens);
            let mut total = 0u64;
            let (a, b) = self.running.as_slices();
            'pass: for part in [a, b] {
                for &r in part {
                    let q = &mut reqs[r as usize];
                    let need = u64::from(q.num_tokens());
                    if total + need > u64::from(cap) {
                        break 'pass;
                    }
                    total += need;
                    q.sched = 1;
                    Self::classify(&mut acc, &mut tokens, q);
                    self.sched.push(r);
                }
            }
            self.acc = acc;
            self.acc_tokens = tokens;
            self.rotate = self.sched.len();
            self.lz.try_next = self.rotate == self.running.len();
            return;
        }
        let mut total = 0u64;
        let mut k = 0;
        while k < self.running.len() {
            let r = self.running[k];
            let need = u64::from(reqs[r as usize].num_tokens());
            if total + need > u64::from(cap) {
                break;
            }
            let mut dropped = false;
            while !self.grow(cfg, reqs, r, need as u32) {
                let v = self
                    .victim(cfg, &w.arrival, k + 1, self.running.len())
                    .unwrap_or(k);
                if self.preempt_at(reqs, v, t) == r {
                    dropped = true;
                    break;
                }
            }
            if dropped {
                break;
            }
            total += need;
            let q = &mut reqs[r as usize];
            q.sched = 1;
            Self::classify(&mut self.acc, &mut self.acc_tokens, q);
            self.sched.push(r);
            k += 1;
        }
        self.rotate = self.sched.len();
        self.lz.try_next = self.rotate == self.running.len();
    }

    /// Vidur's prefill priority without mixing (see
    /// [`BatchFormation::PrefillPriorityUnmixed`]): a prefill-only step if the head of
    /// `waiting` can be admitted, else a decode-only step over `running`.
    fn schedule_vidur(&mut self, w: &Workload, cfg: &ReplicaConfig, reqs: &mut [Req], t: f64) {
        let cap = cfg.max_num_seqs as usize;
        let reserve = cfg.watermark_blocks();
        let budget = u64::from(cfg.max_num_batched_tokens);
        // 1. Prefill phase: whole prompts (or recomputes), padded token budget.
        let mut widest = 0u64;
        while let Some(&r) = self.waiting.front() {
            let hit_blocks = self.waiting_hits(w, cfg, reqs, r);
            let nt = reqs[r as usize].num_tokens();
            let hit = if hit_blocks == u32::MAX {
                0
            } else {
                hit_blocks * cfg.block_size
            };
            let tokens = nt - hit;
            let wide = widest.max(u64::from(tokens));
            if (self.sched.len() as u64 + 1) * wide > budget
                || self.running_len() >= cap
                || self.sched.len() >= cap
                || !self.admit(cfg, reqs, r, nt, reserve)
            {
                break;
            }
            widest = wide;
            self.touch(t);
            self.waiting.pop_front();
            self.admitted(cfg, reqs, r, hit_blocks, tokens, t);
        }
        if !self.sched.is_empty() {
            return;
        }
        // 2. Decode phase: running sorted stably by arrival; the batch goes to the tail.
        // Lazy when `running` is sorted, fits the batch and needs no preemption.
        if self.lz.on
            && self.running_len() <= cap
            && self.lz_join(reqs, Some(&w.arrival))
            && self.lz_step(None)
        {
            return;
        }
        self.lz_flush(reqs);
        let arrival = &w.arrival;
        let by_arrival = |a: &u32, b: &u32| arrival[*a as usize].total_cmp(&arrival[*b as usize]);
        if !self
            .running
            .iter()
            .is_sorted_by(|a, b| by_arrival(a, b) != std::cmp::Ordering::Greater)
        {
            self.running.make_contiguous().sort_by(by_arrival);
        }
        // Sorted by arrival, the latest arrival not yet in the batch is the last of
        // `running[i..j]`, which is also its tail: both recompute policies pick it.
        let (mut i, mut j) = (0, self.running.len());
        while i < j && self.sched.len() < cap {
            let r = self.running[i];
            i += 1;
            loop {
                let tokens = reqs[r as usize].num_tokens();
                if self.grow(cfg, reqs, r, tokens) {
                    let q = &mut reqs[r as usize];
                    q.sched = 1;
                    Self::classify(&mut self.acc, &mut self.acc_tokens, q);
                    self.sched.push(r);
                    break;
                }
                self.touch(t);
                let v = if i < j {
                    j -= 1;
                    self.running[j]
                } else {
                    r
                };
                self.preempt(reqs, v);
                self.waiting.push_front(v);
                if v == r {
                    break;
                }
            }
        }
        // running = the requests left out of the batch, then the batch in batch order
        // (Vidur's list after the step; victims are gone).
        self.running.truncate(j);
        self.running.drain(..i);
        self.running.extend(self.sched.iter().copied());
    }

    /// Count scheduled request `q` into the batch summary `b` (and its tokens into `tokens`).
    #[inline]
    fn classify(b: &mut Batch, tokens: &mut u32, q: &Req) {
        let ctx = u64::from(q.computed + q.sched);
        if q.emitted >= 1 && q.sched == 1 && q.computed + 1 == q.num_tokens() {
            b.decode_reqs += 1;
            b.decode_ctx += ctx;
        } else {
            b.prefill_reqs += 1;
            b.prefill_tokens += u64::from(q.sched);
            b.prefill_tokens_sq += f64::from(q.sched) * f64::from(q.sched);
        }
        b.ctx += ctx;
        *tokens += q.sched;
    }

    /// The batch as the step-time model sees it, and the per-step maxima.
    fn summarize(&mut self, cfg: &ReplicaConfig, reqs: &[Req]) -> Batch {
        let mut b = Batch::default();
        let mut tokens = 0u32;
        for &r in &self.sched {
            Self::classify(&mut b, &mut tokens, &reqs[r as usize]);
        }
        self.acc = b;
        self.acc_tokens = tokens;
        self.close_batch(cfg)
    }

    /// The batch summed while scheduling (`acc`), and the per-step maxima.
    fn close_batch(&mut self, cfg: &ReplicaConfig) -> Batch {
        let (b, tokens) = if self.lz.state == LazyState::Stepping {
            // A lazy step's batch, from the set (built here: a round trip through `acc`
            // costs a stalled load every step).
            let (n, ctx) = (self.lz.n, self.lz.sum_computed + u64::from(self.lz.n));
            let b = Batch {
                decode_reqs: n,
                decode_ctx: ctx,
                ctx,
                ..Batch::default()
            };
            (b, n)
        } else {
            (
                std::mem::take(&mut self.acc),
                std::mem::take(&mut self.acc_tokens),
            )
        };
        self.step_tokens = tokens;
        self.decode_only = b.prefill_reqs == 0;
        let used = cfg.num_blocks - self.pool.nfree;
        let running = self.running_len() as u32;
        let s = &mut self.stats;
        s.max_blocks_used = s.max_blocks_used.max(used);
        s.max_running = s.max_running.max(running);
        s.max_step_tokens = s.max_step_tokens.max(self.step_tokens);
        b
    }

    /// Fill `self.hits` with the cached blocks of request `r` (§4); returns their number.
    fn lookup_hits(&mut self, w: &Workload, cfg: &ReplicaConfig, r: usize, num_tokens: u32) -> u32 {
        // A head blocked for memory is looked up again every step: reuse the last lookup
        // while the cache has not changed.
        let memo = (r as u32, num_tokens, self.pool.epoch);
        if self.hits_for == memo {
            return self.hits.len() as u32;
        }
        self.hits_for = memo;
        self.hits.clear();
        if !cfg.caches_prefixes() || !w.has_hashes() {
            return 0;
        }
        let max = (num_tokens - 1) / cfg.block_size;
        for j in 0..max {
            match w.block_key(r, j, cfg.block_size) {
                Some(k) => match self.pool.cache.get(&k) {
                    Some(&b) => self.hits.push(b),
                    None => break,
                },
                None => break,
            }
        }
        self.hits.len() as u32
    }

    /// Finish the step at `t_end` (§3 step 3): advance computed tokens, cache full prompt
    /// blocks, emit tokens, finish requests and free their blocks.
    pub fn end_step<S: Sink>(
        &mut self,
        w: &Workload,
        cfg: &ReplicaConfig,
        reqs: &mut [Req],
        t_end: f64,
        d: f64,
        sink: &mut S,
    ) {
        if self.lz.state == LazyState::Stepping {
            self.lz_end_step(reqs, t_end, d, sink);
            return;
        }
        let caching = cfg.caches_prefixes() && w.has_hashes();
        let bs = cfg.block_size;
        let mut finished_any = false;
        if !self.sched.is_empty() {
            self.stats.steps += 1;
        }
        self.stats.token_steps += self.sched.len() as u64;
        self.stats.busy_time += d;
        let rotating = self.decode_only
            && self.rotate > 0
            && self.rotate == self.sched.len()
            && self.rotate < self.running.len();
        if rotating {
            // DistServe's decode batch, the head of `running`, goes back to the tail in
            // batch order without the finished requests (a rotation when none finished).
            let n = self.sched.len() as u64;
            self.outstanding -= n;
            self.stats.output_tokens += n;
            let in_system = self.in_system();
            let mut done = false;
            for &r in self.running.range(..self.rotate) {
                let q = &mut reqs[r as usize];
                done |= emit_decode_token(&mut self.pool, &mut self.stats, sink, q, r, t_end);
            }
            if done {
                for _ in 0..self.rotate {
                    let Some(r) = self.running.pop_front() else {
                        break;
                    };
                    if reqs[r as usize].status != STATUS_FINISHED {
                        self.running.push_back(r);
                    }
                }
                // The account up to `t_end` counts the finished requests.
                if !self.last_change.is_nan() {
                    self.stats.in_system_area += in_system as f64 * (t_end - self.last_change);
                }
                self.last_change = t_end;
            } else {
                self.running.rotate_left(self.rotate);
            }
            self.rotate = 0;
            self.step_end = f64::NAN;
            self.step_tokens = 0;
            return;
        }
        if self.decode_only {
            // Every request decodes one token past its prompt and emits it: no prefill
            // progress, no prompt blocks to cache, never a first token.
            let n = self.sched.len() as u64;
            self.outstanding -= n;
            self.stats.output_tokens += n;
            for k in 0..self.sched.len() {
                let r = self.sched[k];
                let q = &mut reqs[r as usize];
                finished_any |=
                    emit_decode_token(&mut self.pool, &mut self.stats, sink, q, r, t_end);
            }
        }
        // Any other step, request by request.
        let general = if self.decode_only {
            0
        } else {
            self.sched.len()
        };
        for k in 0..general {
            let r = self.sched[k];
            let q = &mut reqs[r as usize];
            let c0 = q.computed;
            let c1 = c0 + q.sched;
            q.computed = c1;
            q.work += u64::from(q.sched);
            let decode = q.emitted >= 1 && q.sched == 1 && c1 == q.num_tokens();
            if !decode {
                self.stats.prefill_tokens += u64::from(q.sched);
            }
            let p_done = c1.min(q.prompt);
            if p_done > q.prefilled {
                self.outstanding -= u64::from(p_done - q.prefilled);
                q.prefilled = p_done;
            }
            if caching && c0 < q.prompt {
                let j_end = c1.min(q.prompt) / bs;
                for j in c0 / bs..j_end {
                    if let Some(key) = w.block_key(r as usize, j, bs) {
                        let b = q.blocks[j as usize];
                        self.pool.insert(key, b);
                    } else {
                        break;
                    }
                }
            }
            if c1 == q.num_tokens() {
                q.emitted += 1;
                self.outstanding -= 1;
                self.stats.output_tokens += 1;
                if q.emitted == 1 {
                    q.first_token = t_end;
                    sink.first_token(r, t_end);
                } else {
                    sink.token_gap(t_end - q.last_emit);
                }
                q.last_emit = t_end;
                if q.emitted == q.output {
                    finish_request(&mut self.pool, &mut self.stats, q, t_end);
                    finished_any = true;
                    sink.finish(r);
                }
            }
        }
        if finished_any {
            self.touch(t_end);
        }
        if self.rotate == self.running.len() {
            // The decode batch is all of `running`: back to the tail is where it is.
            self.rotate = 0;
            if finished_any {
                self.running
                    .retain(|&r| reqs[r as usize].status != STATUS_FINISHED);
                self.lz.dead = 0;
            }
        } else if self.rotate > 0 {
            // DistServe: the decode batch (the head of `running`, holding every request
            // scheduled this step) goes back to the tail in batch order, without the
            // finished ones.
            for _ in 0..self.rotate {
                let Some(r) = self.running.pop_front() else {
                    break;
                };
                if reqs[r as usize].status != STATUS_FINISHED {
                    self.running.push_back(r);
                }
            }
            self.rotate = 0;
        } else if finished_any {
            self.running
                .retain(|&r| reqs[r as usize].status != STATUS_FINISHED);
            self.lz.dead = 0;
        }
        self.step_end = f64::NAN;
        self.step_tokens = 0;
    }

    /// Move every running request out (in order) into `out`, at time `t`.
    pub fn take_running(&mut self, reqs: &mut [Req], t: f64, out: &mut Vec<u32>) {
        self.lz_flush(reqs);
        self.touch(t);
        out.clear();
        for &r in &self.running {
            let q = &reqs[r as usize];
            self.outstanding -= u64::from(q.prompt - q.prefilled) + u64::from(q.output - q.emitted);
        }
        out.extend(self.running.drain(..));
    }

    /// A request joins the tail of `running` at time `t` (with its blocks elsewhere: for
    /// the `DistServe` scheduler, which has no KV model).
    pub fn push_running(&mut self, reqs: &[Req], r: u32, t: f64) {
        self.touch(t);
        let q = &reqs[r as usize];
        self.outstanding += u64::from(q.prompt - q.prefilled) + u64::from(q.output - q.emitted);
        self.running.push_back(r);
        self.lz.pushed(r);
    }

    /// Reject the head of `waiting` (it cannot be scheduled even on an empty replica).
    pub fn reject_head(&mut self, reqs: &mut [Req], t: f64) {
        self.touch(t);
        if let Some(r) = self.waiting.pop_front() {
            let q = &mut reqs[r as usize];
            q.status = STATUS_REJECTED;
            self.outstanding -= u64::from(q.prompt - q.prefilled) + u64::from(q.output - q.emitted);
            self.stats.stuck_rejected += 1;
        }
    }

    /// Drop every waiting request without its first token whose wait `t − arrival`
    /// exceeds `max_wait` (status timed out; blocks it holds, if any, freed). Returns
    /// the number dropped and adds the tokens computed for them to `wasted`.
    pub fn drop_expired(
        &mut self,
        reqs: &mut [Req],
        arrival: &[f64],
        t: f64,
        max_wait: f64,
        wasted: &mut u64,
    ) -> u64 {
        let expired = |q: &Req, a: f64| q.first_token.is_nan() && t - a > max_wait;
        if !self
            .waiting
            .iter()
            .any(|&r| expired(&reqs[r as usize], arrival[r as usize]))
        {
            return 0;
        }
        self.touch(t);
        let mut n = 0;
        let (pool, outstanding) = (&mut self.pool, &mut self.outstanding);
        self.waiting.retain(|&r| {
            let q = &mut reqs[r as usize];
            if !expired(q, arrival[r as usize]) {
                return true;
            }
            q.status = STATUS_TIMED_OUT;
            pool.release(&mut q.blocks);
            pool.nfree += q.held;
            q.held = 0;
            *wasted += q.work;
            *outstanding -= u64::from(q.prompt - q.prefilled) + u64::from(q.output - q.emitted);
            n += 1;
            false
        });
        n
    }

    /// Blocks held by requests.
    pub fn blocks_used(&self, cfg: &ReplicaConfig) -> u32 {
        cfg.num_blocks - self.pool.nfree
    }
}
