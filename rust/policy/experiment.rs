//! Whole runs: an autoscaling replay (policy + optional admission control in the event
//! loop, then the timeline and totals) and an overload-control run (metrics per class).

use super::admission::Admission;
use super::timeline::{overload_metrics, totals, windows, OverloadMetrics, Totals, Window};
use super::{Autoscaler, ScaleEvent, Scaler};
use crate::error::{QcoreError, Result};
use crate::sim::result::Records;
use crate::sim::{run_controlled, RunStats, SimConfig};

/// The run's records on the simulation clock (origin 0 at the first arrival). Arrival
/// times in the records are absolute; start and end times are absolute on the fast path
/// and on the simulation clock in the event loop. Which one is detected from the last
/// end time, which is the run's last event (`t_end`, simulation clock).
fn records_on_sim_clock(st: &mut RunStats, origin: f64) -> Result<Records> {
    let mut rec = st
        .records
        .take()
        .ok_or_else(|| QcoreError::data("the simulator returned no records"))?;
    if origin != 0.0 {
        let max_end = rec
            .end
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let absolute = max_end.is_finite()
            && (max_end - (st.t_end + origin)).abs() < (max_end - st.t_end).abs();
        for a in &mut rec.arrival {
            *a -= origin;
        }
        if absolute {
            for x in rec.start.iter_mut().chain(rec.end.iter_mut()) {
                *x -= origin;
            }
        }
    }
    Ok(rec)
}

/// The outcome of [`replay`].
#[derive(Clone, Debug)]
pub struct Replay {
    pub windows: Vec<Window>,
    pub totals: Totals,
    pub events: Vec<ScaleEvent>,
    /// Requests rejected or shed by the admission controller.
    pub shed: u64,
}

/// Options of a replay's report.
#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    /// Sampling interval of the controller (seconds).
    pub sample_interval: f64,
    /// Timeline window (seconds).
    pub window: f64,
    /// Response-time SLO (seconds).
    pub slo: f64,
    /// Quantile reported per window.
    pub quantile: f64,
}

fn check_opts(o: &ReplayOptions) -> Result<()> {
    super::check_num("slo", o.slo, 0.0, true)?;
    if !(o.quantile > 0.0 && o.quantile < 1.0) {
        return Err(QcoreError::invalid(
            "quantile",
            format!("must be in (0, 1), got {}", o.quantile),
        ));
    }
    super::check_num("window", o.window, 0.0, true)
}

/// Run `policy` (with `admission` in front of the queue) on `cfg` (replication `rep`;
/// records are switched on) and build the timeline and totals.
pub fn replay<A: Autoscaler>(
    cfg: &SimConfig,
    rep: u64,
    policy: A,
    admission: Admission,
    opts: &ReplayOptions,
) -> Result<Replay> {
    check_opts(opts)?;
    // Every sample is kept for the timeline: bound their number.
    let span = match &cfg.arrivals {
        crate::sim::ArrivalProcess::Trace { timestamps } => match timestamps.first() {
            Some(first) => timestamps.last().map_or(0.0, |last| last - first),
            None => 0.0,
        },
        crate::sim::ArrivalProcess::Piecewise { times, rates } => {
            let last = times.last().copied().unwrap_or(0.0);
            let tail = rates.last().copied().unwrap_or(0.0);
            if tail > 0.0 {
                last + cfg.customers as f64 / tail
            } else {
                last
            }
        }
        a => a
            .mean_rate()
            .filter(|r| *r > 0.0)
            .map_or(0.0, |r| cfg.customers as f64 / r),
    };
    if span / opts.sample_interval > 2e7 {
        return Err(QcoreError::invalid(
            "sample_interval",
            format!(
                "({} s) would take more than 2·10^7 samples over the {span} s of traffic",
                opts.sample_interval
            ),
        ));
    }
    let mut cfg = cfg.clone();
    cfg.records = true;
    cfg.warmup = 0;
    let mut ctrl = Scaler::new(policy, admission, opts.sample_interval, true)?;
    let mut st = run_controlled(&cfg, rep, &mut ctrl)?;
    let origin = cfg.arrivals.origin();
    let rec = &records_on_sim_clock(&mut st, origin)?;
    let w = windows(
        &ctrl.samples,
        rec,
        origin,
        opts.window,
        opts.slo,
        opts.quantile,
        cfg.servers,
    )?;
    let tot = totals(
        rec,
        opts.slo,
        st.server_time,
        st.duration(),
        ctrl.events.len() as u64,
    );
    Ok(Replay {
        windows: w,
        totals: tot,
        events: ctrl.events,
        shed: ctrl.inner.rejected
            + ctrl.inner.dequeue_shed
            + ctrl.inner.client.as_ref().map_or(0, |c| c.throttled),
    })
}

/// The outcome of [`overload_run`]: metrics for all requests and, with classes, per class
/// (0 high, 1 low).
#[derive(Clone, Debug)]
pub struct OverloadRun {
    pub all: OverloadMetrics,
    pub classes: Option<[OverloadMetrics; 2]>,
    /// Requests rejected by the client-side throttle.
    pub client_throttled: u64,
    /// The final adaptive concurrency limit, if any.
    pub final_limit: Option<f64>,
}

/// Run `cfg` with `admission` (records on) and measure goodput, shedding, p99 of the
/// admitted requests and wasted work. `timeout` is the client's timeout (the patience
/// of `cfg`, if any, models requests leaving the queue at that time).
pub fn overload_run(
    cfg: &SimConfig,
    rep: u64,
    mut admission: Admission,
    slo: f64,
    timeout: f64,
    classes: Option<&[u8]>,
) -> Result<OverloadRun> {
    super::check_num("slo", slo, 0.0, true)?;
    if timeout.is_nan() || timeout <= 0.0 {
        return Err(QcoreError::invalid(
            "timeout",
            format!("must be a positive number of seconds (inf allowed), got {timeout}"),
        ));
    }
    let mut cfg = cfg.clone();
    cfg.records = true;
    cfg.warmup = 0;
    let mut st = run_controlled(&cfg, rep, &mut admission)?;
    let rec = &records_on_sim_clock(&mut st, cfg.arrivals.origin())?;
    let n = rec.arrival.len();
    let duration = if n > 1 {
        rec.arrival[n - 1] - rec.arrival[0]
    } else {
        f64::NAN
    };
    let all = overload_metrics(rec, slo, timeout, None, duration);
    let per = classes.map(|c| {
        [
            overload_metrics(rec, slo, timeout, Some((c, 0)), duration),
            overload_metrics(rec, slo, timeout, Some((c, 1)), duration),
        ]
    });
    Ok(OverloadRun {
        all,
        classes: per,
        client_throttled: admission.client.as_ref().map_or(0, |c| c.throttled),
        final_limit: admission.limit(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::admission::{ArrivalRule, Codel, DequeueRule};
    use super::super::hpa::{Hpa, HpaConfig, HpaMetric};
    use super::super::kpa::{Kpa, KpaConfig, KpaMetric};
    use super::super::predictive::{Predictive, PredictiveConfig};
    use super::super::Fixed;
    use super::*;
    use crate::sim::{ArrivalProcess, Discipline, Dist};

    fn opts() -> ReplayOptions {
        ReplayOptions {
            sample_interval: 1.0,
            window: 60.0,
            slo: 5.0,
            quantile: 0.99,
        }
    }

    fn step_cfg(startup: f64) -> SimConfig {
        // 2 req/s for 600 s, then 8 req/s; service Exp(1).
        let arr = ArrivalProcess::piecewise(vec![0.0, 600.0], vec![2.0, 8.0]).unwrap();
        let mut cfg = SimConfig::new(arr, Some(Dist::exponential(1.0).unwrap()), 4, 8_000);
        cfg.seed = 7;
        if startup > 0.0 {
            cfg.startup_delay = Some(Dist::deterministic(startup).unwrap());
        }
        cfg
    }

    #[test]
    fn hpa_scales_up_after_a_step_within_the_windows() {
        let mut hc = HpaConfig::new(HpaMetric::Utilization, 0.5);
        hc.max_replicas = 40;
        let r = replay(
            &step_cfg(0.0),
            0,
            Hpa::new(hc).unwrap(),
            Admission::default(),
            &opts(),
        )
        .unwrap();
        // Load 8 Erlangs at 50 % utilization needs 16 replicas. Before the step (2
        // Erlangs) the HPA settles near 4.
        let first_up = r
            .events
            .iter()
            .find(|e| e.t > 600.0 && e.to > e.from)
            .unwrap();
        // Within a couple of sync periods plus the 15 s metric window.
        assert!(first_up.t <= 600.0 + 45.0, "{first_up:?}");
        let after: Vec<_> = r.events.iter().filter(|e| e.t > 600.0).collect();
        let reached = after.iter().find(|e| e.to >= 14).unwrap();
        // Doubling per 15 s from 4: 16 within about 4 sync periods after the first one.
        assert!(reached.t <= 600.0 + 120.0, "{reached:?}");
        assert!(r.windows.last().unwrap().desired >= 14.0);
        assert!(r.totals.replica_seconds > 0.0);
    }

    #[test]
    fn cold_start_delays_service_by_the_startup_time() {
        // One replica at first; Fixed asks for 3 at the first sample (t = 1). With a
        // 30 s start-up the two new replicas serve from t = 31 on.
        let arr = ArrivalProcess::poisson(2.5).unwrap();
        let mut cfg = SimConfig::new(arr, Some(Dist::exponential(1.0).unwrap()), 1, 2_000);
        cfg.startup_delay = Some(Dist::deterministic(30.0).unwrap());
        let mut s = Scaler::new(Fixed { replicas: 3 }, Admission::default(), 1.0, true).unwrap();
        let st = run_controlled(&cfg, 0, &mut s).unwrap();
        assert!(st.completed > 0);
        assert_eq!(
            s.events,
            vec![ScaleEvent {
                t: 1.0,
                from: 1,
                to: 3
            }]
        );
        for x in &s.samples {
            if x.t > 1.0 && x.t < 31.0 {
                assert_eq!((x.ready, x.starting), (1, 2), "{x:?}");
                assert!(x.busy <= 1);
            }
            if x.t > 31.0 && x.t < 100.0 {
                assert_eq!((x.ready, x.starting), (3, 0), "{x:?}");
            }
        }
        // Before t = 31 at most one request is in service at a time.
        let r = replay(
            &cfg,
            0,
            Fixed { replicas: 3 },
            Admission::default(),
            &opts(),
        )
        .unwrap();
        assert_eq!(r.events.len(), 1);
        // Cost from the first arrival t0 < 1: one replica until t = 1, then 3 provisioned
        // (starting ones count) until the end: 3·d − 2·(1 − t0).
        let (d, rs) = (r.totals.duration, r.totals.replica_seconds);
        assert!(rs >= 3.0 * d - 2.0 - 1e-9 && rs < 3.0 * d, "{rs} {d}");
    }

    #[test]
    fn absolute_trace_times_give_true_response_times() {
        // Arrivals at epoch-like times, 2 s of work each on enough servers: every
        // response is exactly 2 s, whatever clock the records use.
        let ts: Vec<f64> = (0..500).map(|k| 1.7e9 + 0.5 * f64::from(k)).collect();
        let mut cfg = SimConfig::new(
            ArrivalProcess::trace(ts).unwrap(),
            Some(Dist::deterministic(2.0).unwrap()),
            8,
            500,
        );
        cfg.seed = 3;
        let r = replay(
            &cfg,
            0,
            Fixed { replicas: 8 },
            Admission::default(),
            &opts(),
        )
        .unwrap();
        assert_eq!((r.totals.p50, r.totals.p999), (2.0, 2.0));
        assert_eq!(r.windows[0].start, 1.7e9);
        assert_eq!(r.windows.iter().map(|w| w.arrivals).sum::<u64>(), 500);
        let o = overload_run(&cfg, 0, Admission::default(), 2.5, 10.0, None).unwrap();
        assert_eq!(o.all.good, 500);
        assert_eq!(o.all.p99_admitted, 2.0);
    }

    #[test]
    fn kpa_scales_to_zero_and_back() {
        // Traffic for 300 s, silence until 900 s, traffic again.
        let arr = ArrivalProcess::piecewise(vec![0.0, 300.0, 900.0], vec![5.0, 0.0, 5.0]).unwrap();
        let mut cfg = SimConfig::new(arr, Some(Dist::exponential(0.5).unwrap()), 2, 3_000);
        cfg.startup_delay = Some(Dist::deterministic(2.0).unwrap());
        let mut kc = KpaConfig::new(KpaMetric::Concurrency, 1.0);
        kc.target_utilization = 0.7;
        let r = replay(
            &cfg,
            0,
            Kpa::new(kc).unwrap(),
            Admission::default(),
            &opts(),
        )
        .unwrap();
        let zero = r.events.iter().find(|e| e.to == 0).expect("scaled to zero");
        // No traffic for a whole stable window (60 s) plus the 30 s grace after 300 s.
        assert!(
            zero.t >= 300.0 + 60.0 && zero.t <= 300.0 + 60.0 + 30.0 + 10.0,
            "{zero:?}"
        );
        let back = r
            .events
            .iter()
            .find(|e| e.from == 0)
            .expect("scaled from zero");
        assert!(back.t >= 900.0 && back.t <= 902.0, "{back:?}");
        assert_eq!(r.totals.completed, r.totals.arrived);
    }

    #[test]
    fn predictive_meets_the_slo_on_a_steady_load() {
        let arr = ArrivalProcess::poisson(10.0).unwrap();
        let cfg = SimConfig::new(arr, Some(Dist::exponential(1.0).unwrap()), 12, 20_000);
        let p = Predictive::new(PredictiveConfig::new(1.0, 6.0)).unwrap();
        let r = replay(
            &cfg,
            0,
            p,
            Admission::default(),
            &ReplayOptions { slo: 6.0, ..opts() },
        )
        .unwrap();
        assert!(r.totals.p99 <= 6.0 * 1.1, "{:?}", r.totals);
        assert!(r.totals.mean_replicas < 20.0);
    }

    #[test]
    fn codel_keeps_goodput_under_overload_where_fifo_collapses() {
        // 2× overload on 4 servers, client timeout 10 s, SLO 3 s.
        let arr = ArrivalProcess::poisson(8.0).unwrap();
        let mut cfg = SimConfig::new(arr, Some(Dist::exponential(1.0).unwrap()), 4, 20_000);
        cfg.patience = Some(Dist::deterministic(10.0).unwrap());
        let none = overload_run(&cfg, 0, Admission::default(), 3.0, 10.0, None).unwrap();
        let codel = Admission::new(
            None,
            ArrivalRule::None,
            DequeueRule::Codel(Codel::new(0.5, 5.0).unwrap()),
        );
        let mut lifo = cfg.clone();
        lifo.discipline = Discipline::Lifo;
        let with = overload_run(&lifo, 0, codel, 3.0, 10.0, None).unwrap();
        assert!(none.all.goodput < 0.5, "{:?}", none.all);
        assert!(with.all.goodput > 3.0, "{:?}", with.all);
    }
}
