//! Per-window timelines, run totals and overload metrics, computed from the samples a
//! [`super::Scaler`] took and the simulator's per-request [`Records`].

use crate::error::{QcoreError, Result};
use crate::sim::result::{status, Records};

use super::Sample;

/// One window of a timeline. Request counts are by arrival time; the latency quantile is
/// over the requests that arrived in the window and completed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub start: f64,
    pub arrivals: u64,
    pub completed: u64,
    /// Completed within the SLO.
    pub good: u64,
    /// Blocked, timed out or shed.
    pub dropped: u64,
    /// The `q`-quantile of the response time (NaN without completions).
    pub latency_q: f64,
    /// Replica count asked for at the end of the window.
    pub desired: f64,
    /// Time averages over the samples in the window.
    pub ready: f64,
    pub starting: f64,
    pub queue: f64,
    pub queue_max: f64,
    pub busy: f64,
}

/// Exact `q`-quantile (lower order statistic at rank `ceil(q·n)`) of `v`, reordering it.
pub fn quantile_in_place(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let k = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    let (_, x, _) = v.select_nth_unstable_by(k, f64::total_cmp);
    *x
}

/// Build the timeline in windows of `width` seconds from simulation time 0 up to the
/// last arrival or sample. The records are on the simulation clock; `origin` (the
/// absolute time of simulation time 0) only labels the windows.
#[allow(clippy::too_many_arguments)]
pub fn windows(
    samples: &[Sample],
    rec: &Records,
    origin: f64,
    width: f64,
    slo: f64,
    q: f64,
    initial_target: usize,
) -> Result<Vec<Window>> {
    if !(width.is_finite() && width > 0.0) {
        return Err(QcoreError::invalid(
            "window",
            format!("must be a positive finite number of seconds, got {width}"),
        ));
    }
    let last_arrival = rec.arrival.last().copied().unwrap_or(0.0);
    let last_sample = samples.last().map_or(0.0, |s| s.t);
    let end = last_arrival.max(last_sample);
    let n_f = (end / width).floor() + 1.0;
    if n_f.is_nan() || n_f > 10_000_000.0 {
        return Err(QcoreError::invalid(
            "window",
            format!("({width} s) would cut the {end} s run into more than 10^7 windows"),
        ));
    }
    let n = n_f as usize;
    let mut w: Vec<Window> = (0..n)
        .map(|i| Window {
            start: origin + i as f64 * width,
            latency_q: f64::NAN,
            ..Window::default()
        })
        .collect();
    let idx = |t: f64| ((t / width).floor().max(0.0) as usize).min(n - 1);
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); n];
    for i in 0..rec.arrival.len() {
        let k = idx(rec.arrival[i]);
        let x = &mut w[k];
        x.arrivals += 1;
        match rec.status[i] {
            status::COMPLETED => {
                let r = rec.end[i] - rec.arrival[i];
                x.completed += 1;
                x.good += u64::from(r <= slo);
                lat[k].push(r);
            }
            status::BLOCKED | status::TIMED_OUT | status::SHED => x.dropped += 1,
            _ => {}
        }
    }
    for (x, l) in w.iter_mut().zip(lat.iter_mut()) {
        x.latency_q = quantile_in_place(l, q);
    }
    let mut cnt = vec![0u64; n];
    let mut target = initial_target as f64;
    let mut desired = vec![f64::NAN; n];
    for s in samples {
        // A sample at time t describes the interval ending at t.
        let k = idx((s.t - 1e-9).max(0.0));
        let x = &mut w[k];
        cnt[k] += 1;
        x.ready += s.serving() as f64;
        x.starting += s.starting as f64;
        x.queue += s.in_queue as f64;
        x.queue_max = x.queue_max.max(s.in_queue as f64);
        x.busy += s.busy as f64;
        desired[k] = s.target as f64;
    }
    for k in 0..n {
        if let Some(d) = Some(desired[k]).filter(|d| !d.is_nan()) {
            target = d;
        }
        let x = &mut w[k];
        x.desired = target;
        if cnt[k] > 0 {
            let c = cnt[k] as f64;
            x.ready /= c;
            x.starting /= c;
            x.queue /= c;
            x.busy /= c;
        } else {
            x.ready = f64::NAN;
            x.starting = f64::NAN;
            x.queue = f64::NAN;
            x.busy = f64::NAN;
            x.queue_max = f64::NAN;
        }
    }
    Ok(w)
}

/// Whole-run outcome of a replay.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub arrived: u64,
    pub completed: u64,
    pub dropped: u64,
    /// Fraction of arrived requests completed within the SLO (drops are misses).
    pub slo_attainment: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    /// ∫ provisioned replicas dt (starting, ready or draining): the cost.
    pub replica_seconds: f64,
    pub mean_replicas: f64,
    pub scale_events: u64,
    pub duration: f64,
}

/// Totals over the records of a run.
pub fn totals(
    rec: &Records,
    slo: f64,
    replica_seconds: f64,
    duration: f64,
    scale_events: u64,
) -> Totals {
    let mut resp = Vec::with_capacity(rec.arrival.len());
    let mut dropped = 0u64;
    for i in 0..rec.arrival.len() {
        match rec.status[i] {
            status::COMPLETED => resp.push(rec.end[i] - rec.arrival[i]),
            status::BLOCKED | status::TIMED_OUT | status::SHED => dropped += 1,
            _ => {}
        }
    }
    let arrived = rec.arrival.len() as u64;
    let good = resp.iter().filter(|&&r| r <= slo).count() as u64;
    let completed = resp.len() as u64;
    Totals {
        arrived,
        completed,
        dropped,
        slo_attainment: if arrived > 0 {
            good as f64 / arrived as f64
        } else {
            f64::NAN
        },
        p50: quantile_in_place(&mut resp, 0.5),
        p99: quantile_in_place(&mut resp, 0.99),
        p999: quantile_in_place(&mut resp, 0.999),
        replica_seconds,
        mean_replicas: if duration > 0.0 {
            replica_seconds / duration
        } else {
            f64::NAN
        },
        scale_events,
        duration,
    }
}

/// Overload-control metrics of one run (optionally of one priority class).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OverloadMetrics {
    pub arrived: u64,
    pub completed: u64,
    pub good: u64,
    /// Rejected on arrival or shed from the queue.
    pub shed: u64,
    /// Left the queue after their patience ran out.
    pub timed_out: u64,
    /// Completions within the SLO per second of offered traffic.
    pub goodput: f64,
    pub throughput: f64,
    pub shed_rate: f64,
    pub timeout_rate: f64,
    /// p99 of the response time of admitted requests that completed.
    pub p99_admitted: f64,
    /// Service time spent on requests that completed after the client's timeout.
    pub wasted_work: f64,
    /// `wasted_work` over all service time.
    pub wasted_fraction: f64,
    pub duration: f64,
}

/// Overload metrics from per-request records: `slo` decides goodput, `timeout` (the
/// client's) decides wasted work; `class` keeps only requests of that class.
pub fn overload_metrics(
    rec: &Records,
    slo: f64,
    timeout: f64,
    classes: Option<(&[u8], u8)>,
    duration: f64,
) -> OverloadMetrics {
    let mut m = OverloadMetrics {
        duration,
        ..OverloadMetrics::default()
    };
    let mut resp = Vec::new();
    let mut busy = 0.0;
    for i in 0..rec.arrival.len() {
        if let Some((cl, c)) = classes {
            let id = rec.id[i] as usize;
            if cl.get(id).copied().unwrap_or(0).min(1) != c {
                continue;
            }
        }
        m.arrived += 1;
        match rec.status[i] {
            status::COMPLETED => {
                let r = rec.end[i] - rec.arrival[i];
                let s = rec.end[i] - rec.start[i];
                m.completed += 1;
                m.good += u64::from(r <= slo);
                busy += s;
                if r > timeout {
                    m.wasted_work += s;
                }
                resp.push(r);
            }
            status::BLOCKED | status::SHED => m.shed += 1,
            status::TIMED_OUT => m.timed_out += 1,
            _ => {}
        }
    }
    let per = |x: u64| {
        if duration > 0.0 {
            x as f64 / duration
        } else {
            f64::NAN
        }
    };
    let frac = |x: u64| {
        if m.arrived > 0 {
            x as f64 / m.arrived as f64
        } else {
            f64::NAN
        }
    };
    m.goodput = per(m.good);
    m.throughput = per(m.completed);
    m.shed_rate = frac(m.shed);
    m.timeout_rate = frac(m.timed_out);
    m.p99_admitted = quantile_in_place(&mut resp, 0.99);
    m.wasted_fraction = if busy > 0.0 {
        m.wasted_work / busy
    } else {
        0.0
    };
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Records {
        let mut r = Records::default();
        // (arrival, start, end, status)
        let rows = [
            (0.0, 0.0, 1.0, status::COMPLETED),
            (0.5, 1.0, 4.0, status::COMPLETED),
            (2.0, f64::NAN, 3.0, status::SHED),
            (65.0, 65.0, 66.0, status::COMPLETED),
            (70.0, f64::NAN, 80.0, status::TIMED_OUT),
        ];
        for (i, &(a, s, e, st)) in rows.iter().enumerate() {
            r.push(i as u64, a);
            r.start[i] = s;
            r.end[i] = e;
            r.status[i] = st;
        }
        r
    }

    #[test]
    fn windows_count_by_arrival() {
        let samples = vec![
            Sample {
                t: 30.0,
                ready: 2,
                in_queue: 4,
                target: 3,
                ..Sample::default()
            },
            Sample {
                t: 90.0,
                ready: 3,
                in_queue: 0,
                target: 3,
                ..Sample::default()
            },
        ];
        let w = windows(&samples, &rec(), 10.0, 60.0, 2.0, 0.99, 2).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].start, w[1].start), (10.0, 70.0));
        assert_eq!(
            (w[0].arrivals, w[0].completed, w[0].good, w[0].dropped),
            (3, 2, 1, 1)
        );
        assert_eq!(w[0].latency_q, 3.5);
        assert_eq!((w[1].arrivals, w[1].completed, w[1].dropped), (2, 1, 1));
        assert_eq!((w[0].ready, w[0].queue, w[0].desired), (2.0, 4.0, 3.0));
        assert!(windows(&samples, &rec(), 10.0, 0.0, 2.0, 0.99, 2).is_err());
    }

    #[test]
    fn totals_and_overload_metrics() {
        let t = totals(&rec(), 2.0, 100.0, 50.0, 3);
        assert_eq!((t.arrived, t.completed, t.dropped), (5, 3, 2));
        assert!((t.slo_attainment - 2.0 / 5.0).abs() < 1e-12);
        assert_eq!(t.mean_replicas, 2.0);
        let m = overload_metrics(&rec(), 2.0, 3.0, None, 100.0);
        assert_eq!((m.good, m.shed, m.timed_out), (2, 1, 1));
        // Request 1 responded in 3.5 s > timeout 3: its 3 s of service were wasted.
        assert_eq!(m.wasted_work, 3.0);
        assert!((m.wasted_fraction - 3.0 / 5.0).abs() < 1e-12);
        assert!((m.goodput - 0.02).abs() < 1e-12);
        let classes = [0u8, 1, 1, 0, 0];
        let hi = overload_metrics(&rec(), 2.0, 3.0, Some((&classes, 0)), 100.0);
        assert_eq!((hi.arrived, hi.good, hi.timed_out), (3, 2, 1));
    }

    #[test]
    fn exact_quantile() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_in_place(&mut v, 0.99), 99.0);
        assert_eq!(quantile_in_place(&mut v, 0.5), 50.0);
        assert!(quantile_in_place(&mut [], 0.5).is_nan());
    }
}
