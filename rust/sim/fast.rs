//! The fast path for the plain FCFS c-server queue (unlimited waiting room, no timeouts,
//! no batching, a constant number of servers): a recursion over customers instead of an
//! event queue.
//!
//! One server: Lindley, `W(n+1) = max(0, W(n) + S(n) − A(n+1))`. Several servers:
//! Kiefer–Wolfowitz, a min-heap of the servers' remaining work measured from a local
//! origin that is moved forward every few customers (`max(x − shift, 0)` preserves the
//! heap order), so every stored number stays of the order of the workload and no
//! absolute clock time enters the waits. Random numbers are drawn exactly as the event
//! loop draws them, so both give the same results for the same seed.

use super::arrivals::ArrivalGen;
use super::result::{status, RunStats};
use super::rng::{Rng, Stream};
use super::SimConfig;
use crate::error::Result;

#[inline(always)]
fn sift_down(h: &mut [f64], v: f64) {
    let n = h.len();
    let mut i = 0;
    loop {
        let l = 2 * i + 1;
        if l >= n {
            break;
        }
        let r = l + 1;
        let c = if r < n && h[r] < h[l] { r } else { l };
        if h[c] < v {
            h[i] = h[c];
            i = c;
        } else {
            break;
        }
    }
    h[i] = v;
}

/// Run one replication on the fast path. The caller has checked
/// [`SimConfig::fast_path_ok`].
pub fn run_fast(cfg: &SimConfig, rep: u64) -> Result<RunStats> {
    let mut st = RunStats::new(cfg.relative_accuracy, cfg.records);
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
    let mut since_rebase = 0u32;
    let mut i: u64 = 0;
    while i < total {
        let Some(gap) = arr.next_gap() else { break };
        let s = service.sample(&mut srng, i as usize);
        tau += gap;
        let w;
        if c == 1 {
            // Lindley on the remaining work seen by the arrival.
            w = (heap[0] - gap).max(0.0);
            if i == warmup {
                open_window(&mut st, tau, &warm, heap[0] - gap);
                warm = Vec::new();
            }
            heap[0] = w + s;
        } else {
            shift += gap;
            w = (heap[0] - shift).max(0.0);
            if i == warmup {
                let work: f64 = heap.iter().map(|&x| (x - shift).max(0.0)).sum();
                open_window(&mut st, tau, &warm, work);
                warm = Vec::new();
            }
            sift_down(&mut heap, shift + w + s);
            since_rebase += 1;
            if since_rebase == 64 {
                for x in heap.iter_mut() {
                    *x = (*x - shift).max(0.0);
                }
                shift = 0.0;
                since_rebase = 0;
            }
        }
        let dep = tau + w + s;
        if dep > last_dep {
            last_dep = dep;
        }
        if i < warmup {
            warm.push((tau + w, dep));
        } else {
            st.arrived += 1;
            st.served += 1;
            st.completed += 1;
            st.waited += (w > 0.0) as u64;
            st.sum_wait += w;
            st.sum_response += w + s;
            st.area_queue += w;
            st.busy_time += s;
            st.wait.push(w);
            st.response.push(w + s);
            if let Some(r) = st.records.as_mut() {
                let row = r.push(i, origin + tau);
                r.start[row] = origin + tau + w;
                r.end[row] = origin + dep;
                r.status[row] = status::COMPLETED;
            }
        }
        i += 1;
    }
    st.area_system = st.sum_response + st.area_system;
    st.t_end = last_dep;
    let d = st.duration();
    st.capacity_time = c as f64 * d;
    st.server_time = c as f64 * d;
    st.response.finish();
    st.wait.finish();
    Ok(st)
}

/// Start the measurement window at `t0`: count the warm-up customers' time in system,
/// in queue and in service after `t0` (`work` is the total remaining work at `t0`).
fn open_window(st: &mut RunStats, t0: f64, warm: &[(f64, f64)], work: f64) {
    st.t0 = t0;
    for &(start, dep) in warm {
        if dep > t0 {
            st.area_system += dep - t0;
        }
        if start > t0 {
            st.area_queue += start - t0;
        }
    }
    st.busy_time += work.max(0.0);
}
