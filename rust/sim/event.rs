//! The general event loop: c servers (a count that may change over time, with start-up
//! delays and draining), FCFS or LIFO, a finite waiting room, patience (timeouts),
//! dynamic batching, and a [`Controller`] hook for admission, per-dequeue shedding, the
//! choice of queue end at each dequeue (adaptive LIFO), loss signals (timeouts, blocks)
//! and autoscaling decisions.
//!
//! The clock is absolute (origin 0 at the start of the arrival process). Event times are
//! ordered by `(time, sequence number)`, so ties resolve in creation order and runs are
//! reproducible.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use super::arrivals::ArrivalGen;
use super::result::{status, RunStats};
use super::rng::{Rng, Stream};
use super::{BatchTime, Discipline, SimConfig};
use crate::error::{QcoreError, Result};

/// The state a [`Controller`] sees when it decides.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct View {
    /// Requests waiting.
    pub in_queue: usize,
    /// Requests in service.
    pub in_service: usize,
    /// Servers serving a request or a batch.
    pub busy: usize,
    /// Servers able to serve (idle or busy, including draining ones).
    pub ready: usize,
    /// Servers still starting up.
    pub starting: usize,
    /// Busy servers that will leave when their work is done.
    pub draining: usize,
    /// The current target server count.
    pub target: usize,
    /// Arrivals and completions so far (including the warm-up).
    pub arrivals: u64,
    pub completions: u64,
}

/// Decisions taken inside the event loop. Every method has a neutral default, so a
/// policy implements only what it needs (autoscalers: `tick_interval` + `on_tick`;
/// admission control: `admit`, `on_dequeue`, `on_complete`, and the loss signals
/// `on_timeout` and `on_block`; adaptive LIFO: `dequeue_lifo`).
///
/// `id` is the request's index in the arrival process (warm-up included), the index of
/// per-request inputs such as priority classes. Each `view` is the state after the
/// event's own change to the queue (a dequeued or timed-out request no longer counts as
/// waiting), except in `admit` and `on_block`, which see the state the request found.
pub trait Controller {
    /// Whether the controller starts servers when requests wait with none (a run may
    /// then begin with zero servers).
    fn scales_from_zero(&self) -> bool {
        false
    }
    /// Period of [`Controller::on_tick`] calls (`None`: never).
    fn tick_interval(&self) -> Option<f64> {
        None
    }
    /// Periodic decision; `Some(n)` sets the target number of servers.
    fn on_tick(&mut self, _t: f64, _view: &View) -> Option<usize> {
        None
    }
    /// Whether an arriving request is admitted (`false`: shed).
    fn admit(&mut self, _t: f64, _id: u64, _view: &View) -> bool {
        true
    }
    /// Which end of the queue the next request is taken from: `Some(true)` the newest,
    /// `Some(false)` the oldest, `None` the configured discipline. Asked before every
    /// dequeue, with the state before it.
    #[inline]
    fn dequeue_lifo(&mut self, _t: f64, _view: &View) -> Option<bool> {
        None
    }
    /// Whether a request that waited `waited` starts service now (`false`: shed).
    fn on_dequeue(&mut self, _t: f64, _id: u64, _waited: f64, _view: &View) -> bool {
        true
    }
    /// Called at each completion with the request's response time.
    fn on_complete(&mut self, _t: f64, _id: u64, _response: f64, _view: &View) {}
    /// Called when an admitted request leaves the queue at its timeout (patience) after
    /// waiting `waited`: a loss signal.
    fn on_timeout(&mut self, _t: f64, _id: u64, _waited: f64, _view: &View) {}
    /// Called when an admitted request is blocked by the full waiting room: a loss
    /// signal.
    fn on_block(&mut self, _t: f64, _id: u64, _view: &View) {}
}

/// The controller that never intervenes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoControl;
impl Controller for NoControl {}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Complete(u32),
    Ready(u32, u32),
    Timeout(u32, u32),
    BatchTimer,
    Schedule(u32),
    Tick,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    t: f64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SState {
    Off,
    Starting,
    Idle,
    Busy,
}

#[derive(Clone, Debug)]
struct Server {
    state: SState,
    retire: bool,
    gen: u32,
    items: Vec<Item>,
}

#[derive(Clone, Copy, Debug)]
struct Item {
    id: u64,
    arrival: f64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    id: u64,
    arrival: f64,
    service: f64,
    gen: u32,
    alive: bool,
}

struct Sim<'a, C: Controller> {
    cfg: &'a SimConfig,
    ctrl: &'a mut C,
    st: RunStats,
    heap: BinaryHeap<Event>,
    seq: u64,
    servers: Vec<Server>,
    idle: Vec<u32>,
    slab: Vec<Slot>,
    free: Vec<u32>,
    queue: VecDeque<u32>,
    batch_timer: Option<f64>,
    startup_rng: Rng,
    startups: usize,
    // counts
    n_q: usize,
    n_sys: usize,
    n_busy: usize,
    n_in_service: usize,
    n_ready: usize,
    n_starting: usize,
    n_retiring: usize,
    target: usize,
    arrivals: u64,
    completions: u64,
    // window
    measuring: bool,
    /// `completions` when the window opened.
    completions_t0: u64,
    last: f64,
    warmup: u64,
    lifo: bool,
    cap: usize,
}

impl<C: Controller> Sim<'_, C> {
    fn view(&self) -> View {
        View {
            in_queue: self.n_q,
            in_service: self.n_in_service,
            busy: self.n_busy,
            ready: self.n_ready,
            starting: self.n_starting,
            draining: self.n_retiring,
            target: self.target,
            arrivals: self.arrivals,
            completions: self.completions,
        }
    }

    #[inline]
    fn push(&mut self, t: f64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Event {
            t,
            seq: self.seq,
            ev,
        });
    }

    #[inline]
    fn advance(&mut self, t: f64) {
        if self.measuring {
            let dt = t - self.last;
            let st = &mut self.st;
            st.area_system += self.n_sys as f64 * dt;
            st.area_queue += self.n_q as f64 * dt;
            st.busy_time += self.n_busy as f64 * dt;
            st.capacity_time += self.n_ready as f64 * dt;
            st.server_time += (self.n_ready + self.n_starting) as f64 * dt;
        }
        self.last = t;
    }

    #[inline]
    fn row(&self, id: u64) -> Option<usize> {
        (id >= self.warmup).then(|| (id - self.warmup) as usize)
    }

    fn mark(&mut self, id: u64, code: u8, end: f64) {
        // Records are on the arrival process's absolute clock, like `arrival`.
        let origin = self.cfg.arrivals.origin();
        if let (Some(row), Some(r)) = (self.row(id), self.st.records.as_mut()) {
            r.status[row] = code;
            r.end[row] = origin + end;
        }
    }

    fn free_slot(&mut self, k: u32) {
        let s = &mut self.slab[k as usize];
        s.alive = false;
        s.gen = s.gen.wrapping_add(1);
        self.free.push(k);
    }

    fn alloc_slot(&mut self, id: u64, arrival: f64, service: f64) -> (u32, u32) {
        if let Some(k) = self.free.pop() {
            let s = &mut self.slab[k as usize];
            s.id = id;
            s.arrival = arrival;
            s.service = service;
            s.alive = true;
            (k, s.gen)
        } else {
            self.slab.push(Slot {
                id,
                arrival,
                service,
                gen: 0,
                alive: true,
            });
            ((self.slab.len() - 1) as u32, 0)
        }
    }

    fn pop_live(&mut self, t: f64) -> Option<u32> {
        let view = self.view();
        let lifo = self.ctrl.dequeue_lifo(t, &view).unwrap_or(self.lifo);
        loop {
            let k = if lifo {
                self.queue.pop_back()?
            } else {
                self.queue.pop_front()?
            };
            if self.slab[k as usize].alive {
                return Some(k);
            }
            self.free_slot(k);
        }
    }

    fn oldest_live(&mut self) -> Option<f64> {
        while let Some(&k) = self.queue.front() {
            let s = self.slab[k as usize];
            if s.alive {
                return Some(s.arrival);
            }
            self.queue.pop_front();
            self.free_slot(k);
        }
        None
    }

    fn batch_time(&self, n: usize) -> f64 {
        match &self.cfg.batching {
            Some(b) => match &b.time {
                BatchTime::Linear { fixed, per_item } => fixed + per_item * n as f64,
                BatchTime::Table(tab) => tab.get(n - 1).copied().unwrap_or(f64::NAN),
            },
            None => 0.0,
        }
    }

    /// Put `server` to work on the items in its `items` buffer, at time `t`.
    fn start(&mut self, server: u32, t: f64, service: f64) {
        let n = self.servers[server as usize].items.len();
        let origin = self.cfg.arrivals.origin();
        for j in 0..n {
            let it = self.servers[server as usize].items[j];
            if it.id >= self.warmup {
                let w = t - it.arrival;
                let st = &mut self.st;
                st.served += 1;
                st.waited += u64::from(w > 0.0);
                st.sum_wait += w;
                st.wait.push(w);
                if let Some(r) = st.records.as_mut() {
                    r.start[(it.id - self.warmup) as usize] = origin + t;
                }
            }
        }
        self.servers[server as usize].state = SState::Busy;
        self.n_busy += 1;
        self.n_in_service += n;
        self.push(t + service, Ev::Complete(server));
    }

    fn try_dispatch(&mut self, t: f64) {
        while self.n_q > 0 && !self.idle.is_empty() {
            let take = if let Some(b) = &self.cfg.batching {
                let (max_size, max_wait) = (b.max_size, b.max_wait);
                let oldest = self.oldest_live().unwrap_or(t);
                if self.n_q >= max_size || t >= oldest + max_wait {
                    self.n_q.min(max_size)
                } else {
                    let due = oldest + max_wait;
                    if self.batch_timer != Some(due) {
                        self.batch_timer = Some(due);
                        self.push(due, Ev::BatchTimer);
                    }
                    return;
                }
            } else {
                1
            };
            let Some(server) = self.idle.pop() else {
                return;
            };
            let mut items = std::mem::take(&mut self.servers[server as usize].items);
            items.clear();
            let mut single_service = 0.0;
            for _ in 0..take {
                let Some(k) = self.pop_live(t) else { break };
                let s = self.slab[k as usize];
                self.free_slot(k);
                self.n_q -= 1;
                let view = self.view();
                if !self.ctrl.on_dequeue(t, s.id, t - s.arrival, &view) {
                    self.n_sys -= 1;
                    if s.id >= self.warmup {
                        self.st.shed += 1;
                    }
                    self.mark(s.id, status::SHED, t);
                    continue;
                }
                single_service = s.service;
                items.push(Item {
                    id: s.id,
                    arrival: s.arrival,
                });
            }
            let n = items.len();
            self.servers[server as usize].items = items;
            if n == 0 {
                self.idle.push(server);
                continue;
            }
            let service = if self.cfg.batching.is_some() {
                self.batch_time(n)
            } else {
                single_service
            };
            self.start(server, t, service);
        }
    }

    fn arrival(&mut self, t: f64, id: u64, service: f64, patience: f64) {
        if id == self.warmup {
            self.measuring = true;
            self.st.t0 = t;
            self.completions_t0 = self.completions;
        }
        self.arrivals += 1;
        let measured = id >= self.warmup;
        if measured {
            self.st.arrived += 1;
            if let Some(r) = self.st.records.as_mut() {
                r.push(id, self.cfg.arrivals.origin() + t);
            }
        }
        let view = self.view();
        if !self.ctrl.admit(t, id, &view) {
            if measured {
                self.st.shed += 1;
            }
            self.mark(id, status::SHED, t);
            return;
        }
        let batching = self.cfg.batching.is_some();
        if !batching && self.n_q == 0 {
            if let Some(server) = self.idle.pop() {
                self.n_sys += 1;
                let items = &mut self.servers[server as usize].items;
                items.clear();
                items.push(Item { id, arrival: t });
                self.start(server, t, service);
                return;
            }
        }
        if self.n_q >= self.cap {
            if measured {
                self.st.blocked += 1;
            }
            self.mark(id, status::BLOCKED, t);
            let view = self.view();
            self.ctrl.on_block(t, id, &view);
            return;
        }
        self.n_sys += 1;
        self.n_q += 1;
        let (k, gen) = self.alloc_slot(id, t, service);
        self.queue.push_back(k);
        if patience.is_finite() {
            self.push(t + patience, Ev::Timeout(k, gen));
        }
        if batching {
            self.try_dispatch(t);
        }
    }

    fn complete(&mut self, server: u32, t: f64) {
        let items = std::mem::take(&mut self.servers[server as usize].items);
        for it in &items {
            self.n_sys -= 1;
            self.completions += 1;
            let resp = t - it.arrival;
            if it.id >= self.warmup {
                self.st.completed += 1;
                self.st.sum_response += resp;
                self.st.response.push(resp);
            }
            self.mark(it.id, status::COMPLETED, t);
            let view = self.view();
            self.ctrl.on_complete(t, it.id, resp, &view);
        }
        self.n_in_service -= items.len();
        let s = &mut self.servers[server as usize];
        s.items = items;
        self.n_busy -= 1;
        if s.retire {
            s.retire = false;
            s.state = SState::Off;
            self.n_retiring -= 1;
            self.n_ready -= 1;
        } else {
            s.state = SState::Idle;
            self.idle.push(server);
        }
        self.try_dispatch(t);
    }

    fn timeout(&mut self, k: u32, gen: u32, t: f64) {
        let s = self.slab[k as usize];
        if s.gen != gen || !s.alive {
            return;
        }
        self.slab[k as usize].alive = false;
        self.n_q -= 1;
        self.n_sys -= 1;
        if s.id >= self.warmup {
            self.st.timed_out += 1;
        }
        self.mark(s.id, status::TIMED_OUT, t);
        let view = self.view();
        self.ctrl.on_timeout(t, s.id, t - s.arrival, &view);
    }

    fn ready(&mut self, server: u32, gen: u32, t: f64) {
        let s = &mut self.servers[server as usize];
        if s.gen != gen || s.state != SState::Starting {
            return;
        }
        s.state = SState::Idle;
        self.n_starting -= 1;
        self.n_ready += 1;
        self.idle.push(server);
        self.try_dispatch(t);
    }

    fn add_server(&mut self, t: f64) {
        let delay = match &self.cfg.startup_delay {
            Some(d) => {
                self.startups += 1;
                d.sample(&mut self.startup_rng, self.startups - 1)
            }
            None => 0.0,
        };
        let idx = if let Some(i) = self.servers.iter().position(|s| s.state == SState::Off) {
            i
        } else {
            self.servers.push(Server {
                state: SState::Off,
                retire: false,
                gen: 0,
                items: Vec::new(),
            });
            self.servers.len() - 1
        };
        let s = &mut self.servers[idx];
        s.gen = s.gen.wrapping_add(1);
        let gen = s.gen;
        if delay > 0.0 {
            s.state = SState::Starting;
            self.n_starting += 1;
            self.push(t + delay, Ev::Ready(idx as u32, gen));
        } else {
            s.state = SState::Idle;
            self.n_ready += 1;
            self.idle.push(idx as u32);
        }
    }

    /// Copy the integrals at the end of the arrival window (the clock stands at the
    /// last arrival, or at the last event at that time).
    fn snapshot(&mut self) {
        let st = &mut self.st;
        st.win_area_system = st.area_system;
        st.win_area_queue = st.area_queue;
        st.win_busy_time = st.busy_time;
        st.win_capacity_time = st.capacity_time;
        st.win_completed = if self.measuring {
            self.completions - self.completions_t0
        } else {
            0
        };
    }

    /// Move towards `n` serving servers: add (with start-up delay) or remove (starting
    /// ones first, then idle ones, then busy ones, which drain their work).
    fn set_target(&mut self, n: usize, t: f64) {
        self.target = n;
        let active = self.n_ready - self.n_retiring + self.n_starting;
        if n > active {
            let mut need = n - active;
            for s in &mut self.servers {
                if need == 0 {
                    break;
                }
                if s.state == SState::Busy && s.retire {
                    s.retire = false;
                    self.n_retiring -= 1;
                    need -= 1;
                }
            }
            for _ in 0..need {
                self.add_server(t);
            }
            self.try_dispatch(t);
        } else if n < active {
            let mut k = active - n;
            for s in self.servers.iter_mut().rev() {
                if k == 0 {
                    break;
                }
                if s.state == SState::Starting {
                    s.state = SState::Off;
                    s.gen = s.gen.wrapping_add(1);
                    self.n_starting -= 1;
                    k -= 1;
                }
            }
            while k > 0 {
                let Some(idx) = self.idle.pop() else { break };
                self.servers[idx as usize].state = SState::Off;
                self.n_ready -= 1;
                k -= 1;
            }
            for s in self.servers.iter_mut().rev() {
                if k == 0 {
                    break;
                }
                if s.state == SState::Busy && !s.retire {
                    s.retire = true;
                    self.n_retiring += 1;
                    k -= 1;
                }
            }
        }
    }
}

/// Ticks without capacity after the last arrival before a stuck run stops.
const MAX_IDLE_TICKS: u64 = 100_000;
/// Replica-count changes a controller may ask for, after the last arrival, without any
/// request finishing or leaving; past it the run is an error (a policy that starts and
/// cancels servers forever, as a scale-from-zero whose cold start it keeps cancelling).
const MAX_FUTILE_CHANGES: u64 = 1_000;

/// Run one replication through the general event loop with a controller.
pub fn run_event<C: Controller>(cfg: &SimConfig, rep: u64, ctrl: &mut C) -> Result<RunStats> {
    let service = cfg.service_dist();
    let mut arr = ArrivalGen::new(&cfg.arrivals, Rng::stream(cfg.seed, rep, Stream::Arrivals));
    let mut srng = Rng::stream(cfg.seed, rep, Stream::Service);
    let mut prng = Rng::stream(cfg.seed, rep, Stream::Patience);
    let total = cfg.total();
    let mut sim = Sim {
        cfg,
        ctrl,
        st: RunStats::new(cfg.relative_accuracy, cfg.records)?,
        heap: BinaryHeap::new(),
        seq: 0,
        servers: Vec::new(),
        idle: Vec::new(),
        slab: Vec::new(),
        free: Vec::new(),
        queue: VecDeque::new(),
        batch_timer: None,
        startup_rng: Rng::stream(cfg.seed, rep, Stream::Startup),
        startups: 0,
        n_q: 0,
        n_sys: 0,
        n_busy: 0,
        n_in_service: 0,
        n_ready: 0,
        n_starting: 0,
        n_retiring: 0,
        target: cfg.servers,
        arrivals: 0,
        completions: 0,
        measuring: false,
        completions_t0: 0,
        last: 0.0,
        warmup: cfg.warmup,
        lifo: cfg.discipline == Discipline::Lifo,
        cap: cfg.queue_capacity.unwrap_or(usize::MAX),
    };
    for _ in 0..cfg.servers {
        sim.servers.push(Server {
            state: SState::Idle,
            retire: false,
            gen: 0,
            items: Vec::new(),
        });
    }
    sim.n_ready = cfg.servers;
    sim.idle = (0..cfg.servers as u32).rev().collect();
    for (j, &(t, _)) in cfg.schedule.iter().enumerate() {
        sim.push(t, Ev::Schedule(j as u32));
    }
    let tick = sim
        .ctrl
        .tick_interval()
        .filter(|d| d.is_finite() && *d > 0.0);
    if let Some(d) = tick {
        sim.push(d, Ev::Tick);
    }
    if let Some(r) = sim.st.records.as_mut() {
        *r = super::result::Records::with_capacity(cfg.customers.min(1 << 24) as usize);
    }

    let mut next_id: u64 = 0;
    let mut idle_ticks: u64 = 0;
    let mut futile: u64 = 0;
    let mut left_mark: u64 = u64::MAX;
    // The last arrival's time, and whether the window's integrals have been copied
    // (before the first event after it).
    let mut t_last = 0.0f64;
    let mut snapped = false;
    let mut next_arrival = if total > 0 {
        arr.next_gap().unwrap_or(f64::INFINITY)
    } else {
        f64::INFINITY
    };
    loop {
        let arrivals_done = next_arrival == f64::INFINITY;
        if arrivals_done && sim.n_sys == 0 {
            break;
        }
        let ev_t = sim.heap.peek().map_or(f64::INFINITY, |e| e.t);
        if arrivals_done && ev_t == f64::INFINITY {
            break;
        }
        if next_arrival <= ev_t {
            let t = next_arrival;
            sim.advance(t);
            let id = next_id;
            next_id += 1;
            let s = service.sample(&mut srng, id as usize);
            let p = match &cfg.patience {
                Some(d) => d.sample(&mut prng, id as usize),
                None => f64::INFINITY,
            };
            sim.arrival(t, id, s, p);
            next_arrival = if next_id < total {
                match arr.next_gap() {
                    Some(g) => t + g,
                    None => f64::INFINITY,
                }
            } else {
                f64::INFINITY
            };
            if next_arrival == f64::INFINITY {
                t_last = t;
            }
            continue;
        }
        if arrivals_done && !snapped && ev_t > t_last {
            sim.snapshot();
            snapped = true;
        }
        let Some(e) = sim.heap.pop() else { break };
        let t = e.t;
        sim.advance(t);
        match e.ev {
            Ev::Complete(s) => sim.complete(s, t),
            Ev::Timeout(k, gen) => sim.timeout(k, gen, t),
            Ev::Ready(s, gen) => sim.ready(s, gen, t),
            Ev::BatchTimer => {
                if sim.batch_timer == Some(t) {
                    sim.batch_timer = None;
                }
                sim.try_dispatch(t);
            }
            Ev::Schedule(j) => {
                let n = cfg.schedule[j as usize].1;
                sim.set_target(n, t);
            }
            Ev::Tick => {
                let view = sim.view();
                if let Some(n) = sim.ctrl.on_tick(t, &view) {
                    sim.set_target(n, t);
                    if arrivals_done {
                        let left =
                            sim.st.completed + sim.st.timed_out + sim.st.blocked + sim.st.shed;
                        if left == left_mark {
                            futile += 1;
                            if futile > MAX_FUTILE_CHANGES {
                                return Err(QcoreError::invalid(
                                    "policy",
                                    format!(
                                        "makes no progress: it changed the replica count {MAX_FUTILE_CHANGES} times \
                                         after the last arrival (t = {t:.3} s) while {} request(s) waited and none \
                                         finished; its demand signal must count the waiting requests",
                                        sim.n_sys
                                    ),
                                ));
                            }
                        } else {
                            left_mark = left;
                            futile = 0;
                        }
                    }
                }
                // Stop a run that can no longer progress: arrivals over, requests
                // waiting, no server ready or starting, and the controller idle for
                // MAX_IDLE_TICKS ticks in a row (the requests stay unfinished).
                if arrivals_done && sim.n_ready + sim.n_starting == 0 && sim.heap.is_empty() {
                    idle_ticks += 1;
                    if idle_ticks >= MAX_IDLE_TICKS {
                        break;
                    }
                } else {
                    idle_ticks = 0;
                }
                if let Some(d) = tick {
                    sim.push(t + d, Ev::Tick);
                }
            }
        }
    }
    if !snapped {
        sim.snapshot();
    }
    let mut st = sim.st;
    st.t_end = sim.last;
    st.t_last = t_last;
    st.unfinished = st.arrived - st.completed - st.blocked - st.timed_out - st.shed;
    st.finish()?;
    Ok(st)
}
