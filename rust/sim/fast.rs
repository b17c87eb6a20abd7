//! The fast path for the plain FCFS c-server queue (unlimited waiting room, no timeouts,
//! no batching, a constant number of servers): a recursion over customers instead of an
//! event queue.
//!
//! One server: Lindley, `W(n+1) = max(0, W(n) + S(n) − A(n+1))`. Several servers:
//! Kiefer–Wolfowitz, a 4-ary min-heap of the servers' remaining work measured from a local
//! origin that is moved forward every few customers (`max(x − shift, 0)` preserves the
//! heap order), so every stored number stays of the order of the workload and no
//! absolute clock time enters the waits. Random numbers are drawn exactly as the event
//! loop draws them, so both give the same results for the same seed.

use std::collections::VecDeque;

use super::arrivals::ArrivalGen;
use super::result::{status, RunStats};
use super::rng::{Rng, Stream};
use super::SimConfig;
use crate::error::Result;

/// Replace the root of a 4-ary min-heap with `v` and restore the heap order.
#[inline(always)]
fn sift_down(h: &mut [f64], v: f64) {
    let n = h.len();
    let mut i = 0;
    loop {
        let first = 4 * i + 1;
        if first >= n {
            break;
        }
        let last = (first + 4).min(n);
        let mut c = first;
        let mut cv = h[first];
        for (k, &x) in h.iter().enumerate().take(last).skip(first + 1) {
            if x < cv {
                cv = x;
                c = k;
            }
        }
        if cv < v {
            h[i] = cv;
            i = c;
        } else {
            break;
        }
    }
    h[i] = v;
}

const BLOCK: usize = 8192;

/// The requests that may still be in the system at the end of the arrival window:
/// `(start, departure)` of those that were in the system at the end of the last block.
/// Service starts in arrival order (FCFS), so the ones still waiting form a queue in
/// start order; at most `c` are in service. The memory is that of the waiting line.
#[derive(Default)]
struct Tail {
    in_service: Vec<(f64, f64)>,
    waiting: VecDeque<(f64, f64)>,
}

impl Tail {
    /// Drop the requests gone by `t`; move those started by `t` to `in_service`.
    fn advance(&mut self, t: f64) {
        self.in_service.retain(|&(_, d)| d > t);
        while let Some(&(s, d)) = self.waiting.front() {
            if s > t {
                break;
            }
            self.waiting.pop_front();
            if d > t {
                self.in_service.push((s, d));
            }
        }
    }

    /// Add a request still in the system at `t` (`dep > t`), in arrival order.
    #[inline]
    fn push(&mut self, start: f64, dep: f64, t: f64) {
        if start > t {
            self.waiting.push_back((start, dep));
        } else {
            self.in_service.push((start, dep));
        }
    }

    /// `(requests, Σ (dep − t), Σ (start − t)⁺)` over the requests still in the
    /// system after `t`.
    fn after(&self, t: f64) -> (u64, f64, f64) {
        let (mut n, mut sys, mut q) = (0u64, 0.0f64, 0.0f64);
        for &(s, d) in self.in_service.iter().chain(self.waiting.iter()) {
            if d > t {
                n += 1;
                sys += d - t;
                if s > t {
                    q += s - t;
                }
            }
        }
        (n, sys, q)
    }
}

/// Run one replication on the fast path. The caller has checked
/// [`SimConfig::fast_path_ok`].
///
/// Works in blocks: draw a block of gaps and service times (tight loops over the
/// streams), run the recursion over the block, then hand the block's waits and
/// responses to the sketches in one call each.
pub fn run_fast(cfg: &SimConfig, rep: u64) -> Result<RunStats> {
    let mut st = RunStats::new(cfg.relative_accuracy, cfg.records)?;
    st.fast_path = true;
    let service = cfg.service_dist();
    let mut arr = ArrivalGen::new(&cfg.arrivals, Rng::stream(cfg.seed, rep, Stream::Arrivals));
    let mut srng = Rng::stream(cfg.seed, rep, Stream::Service);
    let c = cfg.servers;
    let total = cfg.total();
    let warmup = cfg.warmup;
    let origin = cfg.arrivals.origin();
    let mut heap = vec![0.0f64; c];
    let mut shift = 0.0f64;
    let mut tau = 0.0f64; // arrival time on the simulation clock (for the window only)
    let mut last_dep = 0.0f64;
    // (start, departure) of warm-up customers, to count their overlap with the window.
    let mut warm: Vec<(f64, f64)> = Vec::new();
    let mut gaps = vec![0.0f64; BLOCK];
    let mut svc = vec![0.0f64; BLOCK];
    let mut waits = vec![0.0f64; BLOCK];
    let mut resp = vec![0.0f64; BLOCK];
    let mut tail = Tail::default();
    let mut back: Vec<(f64, f64)> = Vec::new();
    // Warm-up requests still in the system when the window opens.
    let mut warm_after_t0 = 0u64;
    let mut i: u64 = 0;
    while i < total {
        let want = (total - i).min(BLOCK as u64) as usize;
        let got = if let Some(n) =
            arr.fill_poisson_exp(&mut gaps[..want], &mut srng, service, &mut svc[..want])
        {
            n
        } else {
            let n = arr.fill_gaps(&mut gaps[..want]);
            service.fill(&mut srng, i as usize, &mut svc[..n]);
            n
        };
        if got == 0 {
            break;
        }
        // Customers of this block that are measured start at `m0`.
        let m0 = if i >= warmup {
            0
        } else {
            (warmup - i).min(got as u64) as usize
        };
        let mut sum_w = 0.0;
        let mut sum_s = 0.0;
        let mut n_waited = 0u64;
        let mut blk_last = 0.0f64;
        let mut work_at_t0 = f64::NAN;
        if c == 1 && m0 == 0 && i != warmup && st.records.is_none() {
            // The common block: one server, every customer measured, no records. One
            // fused pass (Lindley, clock, sums); departures are increasing with one
            // server, so the last one is the block's last.
            let mut v = heap[0];
            let mut t = tau;
            let (mut sw, mut ss, mut nw) = (0.0f64, 0.0f64, 0u64);
            for j in 0..got {
                let (g, s) = (gaps[j], svc[j]);
                let w = (v - g).max(0.0);
                v = w + s;
                t += g;
                waits[j] = w;
                resp[j] = v;
                sw += w;
                ss += s;
                nw += u64::from(w > 0.0);
            }
            heap[0] = v;
            tau = t;
            last_dep = last_dep.max(t + v);
            // Departures increase with one server: the requests still in the system at
            // the block's end are its last ones.
            tail.advance(t);
            back.clear();
            let mut tj = t;
            for j in (0..got).rev() {
                let dep = tj + resp[j];
                if dep <= t {
                    break;
                }
                back.push((dep - svc[j], dep));
                tj -= gaps[j];
            }
            for &(s0, d0) in back.iter().rev() {
                tail.push(s0, d0, t);
            }
            let n = got as u64;
            st.arrived += n;
            st.served += n;
            st.completed += n;
            st.waited += nw;
            st.sum_wait += sw;
            st.sum_response += sw + ss;
            st.area_queue += sw;
            st.busy_time += ss;
            st.wait.add_block(&waits[..got]);
            st.response.add_block(&resp[..got]);
            i += n;
            if got < want {
                break;
            }
            continue;
        }
        if c == 1 {
            // Lindley on the remaining work `v` seen by each arrival.
            let mut v = heap[0];
            for j in 0..got {
                let (g, s) = (gaps[j], svc[j]);
                let w = (v - g).max(0.0);
                if j == m0 && i + j as u64 == warmup {
                    work_at_t0 = v - g;
                }
                v = w + s;
                waits[j] = w;
                resp[j] = w + s;
            }
            heap[0] = v;
        } else {
            for j in 0..got {
                let (g, s) = (gaps[j], svc[j]);
                shift += g;
                let w = (heap[0] - shift).max(0.0);
                if j == m0 && i + j as u64 == warmup {
                    work_at_t0 = heap.iter().map(|&x| (x - shift).max(0.0)).sum();
                }
                sift_down(&mut heap, shift + w + s);
                waits[j] = w;
                resp[j] = w + s;
                if j % 64 == 63 {
                    for x in &mut heap {
                        *x = (*x - shift).max(0.0);
                    }
                    shift = 0.0;
                }
            }
            for x in &mut heap {
                *x = (*x - shift).max(0.0);
            }
            shift = 0.0;
        }
        // Clock, departures, warm-up bookkeeping and records (sequential sums). The
        // block's end time first (the same sums in the same order), for the requests
        // still in the system then.
        let tau_end = gaps[..got].iter().fold(tau, |t, &g| t + g);
        tail.advance(tau_end);
        for j in 0..got {
            tau += gaps[j];
            let dep = tau + resp[j];
            blk_last = blk_last.max(dep);
            if dep > tau_end {
                tail.push(tau + waits[j], dep, tau_end);
            }
            if j < m0 {
                warm.push((tau + waits[j], dep));
            } else {
                if j == m0 && i + j as u64 == warmup {
                    warm_after_t0 = open_window(&mut st, tau, &warm, work_at_t0);
                    warm = Vec::new();
                }
                let w = waits[j];
                sum_w += w;
                sum_s += svc[j];
                n_waited += u64::from(w > 0.0);
                if let Some(r) = st.records.as_mut() {
                    let row = r.push(i + j as u64, origin + tau);
                    r.start[row] = origin + tau + w;
                    r.end[row] = origin + dep;
                    r.status[row] = status::COMPLETED;
                }
            }
        }
        last_dep = last_dep.max(blk_last);
        let n = (got - m0) as u64;
        if n > 0 {
            st.arrived += n;
            st.served += n;
            st.completed += n;
            st.waited += n_waited;
            st.sum_wait += sum_w;
            st.sum_response += sum_w + sum_s;
            st.area_queue += sum_w;
            st.busy_time += sum_s;
            st.wait.add_block(&waits[m0..got]);
            st.response.add_block(&resp[m0..got]);
        }
        i += got as u64;
        if got < want {
            break;
        }
    }
    st.area_system += st.sum_response;
    st.t_end = last_dep;
    let d = st.duration();
    st.capacity_time = c as f64 * d;
    st.server_time = c as f64 * d;
    // The arrival window [t0, tau]: take off what happens after the last arrival (the
    // servers' remaining work, and the time in system and in queue of the requests
    // still there).
    let (n_after, sys_after, q_after) = tail.after(tau);
    st.t_last = tau;
    st.win_completed = (st.completed + warm_after_t0).saturating_sub(n_after);
    st.win_area_system = (st.area_system - sys_after).max(0.0);
    st.win_area_queue = (st.area_queue - q_after).max(0.0);
    let remaining: f64 = heap.iter().map(|&x| x.max(0.0)).sum();
    st.win_busy_time = (st.busy_time - remaining).max(0.0);
    st.win_capacity_time = c as f64 * st.window();
    st.finish()?;
    Ok(st)
}

/// Start the measurement window at `t0`: count the warm-up customers' time in system,
/// in queue and in service after `t0` (`work` is the total remaining work at `t0`).
/// Returns how many of them are still in the system at `t0`.
fn open_window(st: &mut RunStats, t0: f64, warm: &[(f64, f64)], work: f64) -> u64 {
    st.t0 = t0;
    let mut left = 0u64;
    for &(start, dep) in warm {
        if dep > t0 {
            st.area_system += dep - t0;
            left += 1;
        }
        if start > t0 {
            st.area_queue += start - t0;
        }
    }
    st.busy_time += work.max(0.0);
    left
}
