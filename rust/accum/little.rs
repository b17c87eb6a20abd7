//! The Little's-law accumulator behind [`crate::little::littles_law`].
//!
//! Pass 1 keeps the log's span (first start, end of the log) and its row classes
//! (running, skewed). [`LittleAccumulator::advance`] fixes the window `[t0, t1)` (defaults:
//! first start, end of the log) and the gauge samples inside `[t0, t1]`. Pass 2 sums each
//! row's terms (time inside the window, response time, edge work)
//! exactly, counts arrivals and the rows in flight at the window's edges, and counts the
//! logs' requests in flight at each gauge time (exact integers). A request is one row,
//! so any cut of the rows into parts gives the same sums.

use super::codec::{put_varint, zigzag, Reader};
use super::{check_end, put_header, read_finite, read_header, ExactSum, FixedSum, Kind};
use crate::error::{QcoreError, Result};
use crate::little::{
    check_gauge, check_tolerance, check_unit, gauge_core, gauge_flags, gauge_window, in_flight,
    row, span_pass, validate, LittleResult, SpanAcc, FLAG_EDGE, FLAG_EMPTY, FLAG_NEGATIVE,
    FLAG_RUNNING,
};
use crate::threads::{map_ranges, threads_for};

/// Pass-2 state on a fixed window.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    t0: f64,
    t1: f64,
    log_end: f64,
    /// Gauge samples inside `[t0, t1]`, in their given order.
    gauge_times: Vec<f64>,
    gauge_counts: Vec<f64>,
    rows: u64,
    running: u64,
    negative: u64,
    clipped: ExactSum,
    resp: ExactSum,
    /// `Σ e_out − Σ e_in`.
    edge: ExactSum,
    arrivals: u64,
    n_t0: u64,
    n_t1: u64,
    max_resp: f64,
    /// The logs' in-flight count at each gauge time.
    in_flight: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Span(SpanAcc),
    Window(Window),
}

/// Mergeable state of [`crate::little::littles_law`]; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct LittleAccumulator {
    stage: Stage,
}

impl Default for LittleAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

/// Window sums of one part of the rows.
struct Part {
    clipped: ExactSum,
    resp: ExactSum,
    edge: ExactSum,
    counts: [u64; 6], // arrivals, n_t0, n_t1, rows, running, negative
    max_resp: f64,
}

fn window_part(start: &[f64], end: &[f64], t0: f64, t1: f64, log_end: f64) -> Part {
    let hint = t1 - t0;
    let mut clipped = FixedSum::new(hint);
    let mut resp = FixedSum::new(hint);
    let mut edge = FixedSum::new(hint);
    let mut counts = [0u64; 6];
    let mut max_resp = 0.0f64;
    for (&s, &e) in start.iter().zip(end) {
        let c = row(s, e, t0, t1, log_end);
        clipped.add(c[0]);
        resp.add(c[4]);
        edge.add(c[5]);
        edge.add(-c[1]);
        counts[0] += u64::from(c[3] > 0.0);
        counts[1] += u64::from(c[2] > 0.0);
        counts[2] += u64::from(c[6] > 0.0);
        counts[4] += u64::from(e.is_nan());
        counts[5] += u64::from(e < s);
        max_resp = max_resp.max(c[7]);
    }
    counts[3] = start.len() as u64;
    Part {
        clipped: clipped.finish(),
        resp: resp.finish(),
        edge: edge.finish(),
        counts,
        max_resp,
    }
}

impl Window {
    fn same_grid(&self, o: &Window) -> bool {
        self.t0 == o.t0
            && self.t1 == o.t1
            && self.log_end.to_bits() == o.log_end.to_bits()
            && self.gauge_times == o.gauge_times
            && self.gauge_counts == o.gauge_counts
    }

    /// (Counts saturate: decoded states can hold any count, and a merge must not overflow.)
    fn add(&mut self, o: &Window) {
        self.rows = self.rows.saturating_add(o.rows);
        self.running = self.running.saturating_add(o.running);
        self.negative = self.negative.saturating_add(o.negative);
        self.clipped.add_sum(&o.clipped);
        self.resp.add_sum(&o.resp);
        self.edge.add_sum(&o.edge);
        self.arrivals = self.arrivals.saturating_add(o.arrivals);
        self.n_t0 = self.n_t0.saturating_add(o.n_t0);
        self.n_t1 = self.n_t1.saturating_add(o.n_t1);
        self.max_resp = self.max_resp.max(o.max_resp);
        for (a, b) in self.in_flight.iter_mut().zip(&o.in_flight) {
            *a = a.saturating_add(*b);
        }
    }
}

impl LittleAccumulator {
    /// An empty pass-1 accumulator.
    pub fn new() -> Self {
        LittleAccumulator {
            stage: Stage::Span(SpanAcc::empty()),
        }
    }

    /// An empty pass-2 accumulator over the window `[t0, t1)` of a log that ends at
    /// `log_end` (where running rows stop), pairing the gauge samples given (already the
    /// ones inside the window). [`LittleAccumulator::advance`] makes one from pass 1.
    pub fn window_pass(
        t0: f64,
        t1: f64,
        log_end: f64,
        gauge: Option<(&[f64], &[f64])>,
    ) -> Result<Self> {
        for (name, v) in [("t0", t0), ("t1", t1)] {
            if !v.is_finite() {
                return Err(QcoreError::invalid(
                    name,
                    format!("must be finite, got {v}"),
                ));
            }
        }
        if t1 <= t0 {
            return Err(QcoreError::invalid(
                "t1",
                format!("({t1}) must be after t0 ({t0})"),
            ));
        }
        if log_end.is_nan() || log_end == f64::INFINITY {
            return Err(QcoreError::invalid(
                "log_end",
                format!("must be finite or -inf, got {log_end}"),
            ));
        }
        let (gt, gc) = match gauge {
            Some((t, c)) => {
                check_gauge(t, c)?;
                (t.to_vec(), c.to_vec())
            }
            None => (Vec::new(), Vec::new()),
        };
        Ok(LittleAccumulator {
            stage: Stage::Window(Window {
                t0,
                t1,
                log_end,
                in_flight: vec![0; gt.len()],
                gauge_times: gt,
                gauge_counts: gc,
                rows: 0,
                running: 0,
                negative: 0,
                clipped: ExactSum::new(),
                resp: ExactSum::new(),
                edge: ExactSum::new(),
                arrivals: 0,
                n_t0: 0,
                n_t1: 0,
                max_resp: 0.0,
            }),
        })
    }

    /// 1 in pass 1, 2 in pass 2.
    pub fn pass(&self) -> u8 {
        match self.stage {
            Stage::Span(_) => 1,
            Stage::Window(_) => 2,
        }
    }

    /// Rows seen in the current pass.
    pub fn rows(&self) -> u64 {
        match &self.stage {
            Stage::Span(s) => s.rows,
            Stage::Window(w) => w.rows,
        }
    }

    /// Pass 1: first start (`+inf` when empty); pass 2: `t0`.
    pub fn first(&self) -> f64 {
        match &self.stage {
            Stage::Span(s) => s.first,
            Stage::Window(w) => w.t0,
        }
    }

    /// Pass 1: end of the log (`-inf` when empty); pass 2: the log end it was given.
    pub fn last(&self) -> f64 {
        match &self.stage {
            Stage::Span(s) => s.last,
            Stage::Window(w) => w.log_end,
        }
    }

    /// Running rows (NaN end) seen in the current pass.
    pub fn running(&self) -> u64 {
        match &self.stage {
            Stage::Span(s) => s.running,
            Stage::Window(w) => w.running,
        }
    }

    /// Rows with `end < start` seen in the current pass.
    pub fn negative(&self) -> u64 {
        match &self.stage {
            Stage::Span(s) => s.negative,
            Stage::Window(w) => w.negative,
        }
    }

    /// The window `(t0, t1)` of pass 2 (`None` in pass 1).
    pub fn window(&self) -> Option<(f64, f64)> {
        match &self.stage {
            Stage::Span(_) => None,
            Stage::Window(w) => Some((w.t0, w.t1)),
        }
    }

    /// Pass 2: the exact sums of the time in the system clipped to the window and of the
    /// arrivals' response times, and the arrivals (`None` in pass 1). The grouped report
    /// merges them with the same sums of its batch kernel.
    pub fn window_sums(&self) -> Option<(&ExactSum, &ExactSum, u64)> {
        match &self.stage {
            Stage::Span(_) => None,
            Stage::Window(w) => Some((&w.clipped, &w.resp, w.arrivals)),
        }
    }

    /// The logs' in-flight counts at the gauge times of pass 2 (empty otherwise).
    pub fn in_flight_counts(&self) -> &[i64] {
        match &self.stage {
            Stage::Span(_) => &[],
            Stage::Window(w) => &w.in_flight,
        }
    }

    /// Fold in rows (`start` finite, `end` not infinite, NaN for a running request; else
    /// an error naming the array and the index). A failed call changes nothing.
    pub fn update(&mut self, start: &[f64], end: &[f64]) -> Result<()> {
        validate(start, end)?;
        self.update_valid(start, end)
    }

    /// [`LittleAccumulator::update`] on rows already validated (the second pass over the
    /// same arrays).
    pub(crate) fn update_valid(&mut self, start: &[f64], end: &[f64]) -> Result<()> {
        let n = start.len();
        if n == 0 {
            return Ok(());
        }
        let threads = threads_for(n, 1 << 18, 64);
        match &mut self.stage {
            Stage::Span(s) => {
                for p in map_ranges(n, threads, |r| span_pass(&start[r.clone()], &end[r])) {
                    *s = SpanAcc::merge(*s, p);
                }
            }
            Stage::Window(w) => {
                let flights = if w.gauge_times.is_empty() {
                    None
                } else {
                    Some(in_flight(start, end, &w.gauge_times)?)
                };
                let parts = map_ranges(n, threads, |r| {
                    window_part(&start[r.clone()], &end[r], w.t0, w.t1, w.log_end)
                });
                for p in parts {
                    w.clipped.add_sum(&p.clipped);
                    w.resp.add_sum(&p.resp);
                    w.edge.add_sum(&p.edge);
                    w.arrivals += p.counts[0];
                    w.n_t0 += p.counts[1];
                    w.n_t1 += p.counts[2];
                    w.rows += p.counts[3];
                    w.running += p.counts[4];
                    w.negative += p.counts[5];
                    w.max_resp = w.max_resp.max(p.max_resp);
                }
                if let Some(f) = flights {
                    for (a, b) in w.in_flight.iter_mut().zip(f) {
                        *a += b;
                    }
                }
            }
        }
        Ok(())
    }

    /// Fold in another accumulator of the same pass (and, in pass 2, the same window,
    /// log end and gauge); else an incompatible-merge error, leaving `self` unchanged.
    pub fn merge(&mut self, other: &LittleAccumulator) -> Result<()> {
        match (&mut self.stage, &other.stage) {
            (Stage::Span(a), Stage::Span(b)) => {
                *a = SpanAcc::merge(*a, *b);
                Ok(())
            }
            (Stage::Window(a), Stage::Window(b)) => {
                if !a.same_grid(b) {
                    return Err(QcoreError::incompatible(
                        "Little's-law accumulators of pass 2 have different windows, log ends or gauges",
                    ));
                }
                a.add(b);
                Ok(())
            }
            _ => Err(QcoreError::incompatible(
                "Little's-law accumulators are in different passes",
            )),
        }
    }

    /// Turn the merged pass-1 state into an empty pass-2 state: the window `[t0, t1)`
    /// (defaults: first start, end of the log) and the gauge samples inside `[t0, t1]`.
    /// Errors as [`crate::little::littles_law`], or naming `pass` when already in pass 2.
    pub fn advance(
        &mut self,
        t0: Option<f64>,
        t1: Option<f64>,
        gauge: Option<(&[f64], &[f64])>,
    ) -> Result<()> {
        let Stage::Span(s) = &self.stage else {
            return Err(QcoreError::invalid("pass", "is already 2 (advance once)"));
        };
        for (name, v) in [("t0", t0), ("t1", t1)] {
            if let Some(v) = v.filter(|v| !v.is_finite()) {
                return Err(QcoreError::invalid(
                    name,
                    format!("must be finite, got {v}"),
                ));
            }
        }
        if let Some((gt, gc)) = gauge {
            check_gauge(gt, gc)?;
        }
        let t0 = match t0 {
            Some(v) => v,
            None if s.rows == 0 => {
                return Err(QcoreError::invalid(
                    "start",
                    "is empty; give t0 and t1 to describe an empty window",
                ))
            }
            None => s.first,
        };
        let t1 = match t1 {
            Some(v) => v,
            None if s.rows == 0 => {
                return Err(QcoreError::invalid("start", "is empty; give t1 as well"))
            }
            None => s.last,
        };
        if t1 <= t0 {
            return Err(QcoreError::invalid(
                "t1",
                format!("({t1}) must be after t0 ({t0})"),
            ));
        }
        let windowed = match gauge {
            None => None,
            Some((gt, gc)) => {
                let idx = gauge_window(gt, Some(t0), Some(t1))?;
                Some((
                    idx.iter().map(|&k| gt[k]).collect::<Vec<_>>(),
                    idx.iter().map(|&k| gc[k]).collect::<Vec<_>>(),
                ))
            }
        };
        let g = windowed.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice()));
        *self = Self::window_pass(t0, t1, s.last, g)?;
        Ok(())
    }

    /// The result of pass 2 at `tolerance` (with a gauge, its comparison at level
    /// `confidence`), as [`crate::little::littles_law`] gives it.
    pub fn finish(&self, tolerance: f64, confidence: f64) -> Result<LittleResult> {
        check_tolerance(tolerance)?;
        check_unit("confidence", confidence, false)?;
        let Stage::Window(w) = &self.stage else {
            return Err(QcoreError::invalid(
                "pass",
                "is 1: advance to pass 2 and feed the rows again before finishing",
            ));
        };
        let span = w.t1 - w.t0;
        let arrivals = w.arrivals;
        let l = w.clipped.to_f64() / span;
        let arrival_rate = arrivals as f64 / span;
        let mean_response = if arrivals > 0 {
            w.resp.to_f64() / arrivals as f64
        } else {
            f64::NAN
        };
        let lambda_w = if arrivals > 0 {
            arrival_rate * mean_response
        } else {
            0.0
        };
        let gap = if l > 0.0 {
            (l - lambda_w).abs() / l
        } else {
            f64::NAN
        };
        let mut flags = Vec::new();
        if arrivals == 0 || l <= 0.0 {
            flags.push(FLAG_EMPTY);
        }
        if w.running > 0 {
            flags.push(FLAG_RUNNING);
        }
        if w.negative > 0 {
            flags.push(FLAG_NEGATIVE);
        }
        if gap > tolerance {
            flags.push(FLAG_EDGE);
        }
        let gauge = if w.gauge_times.is_empty() {
            None
        } else {
            let g = gauge_core(
                &w.in_flight,
                &w.gauge_times,
                &w.gauge_counts,
                tolerance,
                confidence,
                lambda_w,
            );
            flags.extend(gauge_flags(&g, tolerance));
            Some(g)
        };
        Ok(LittleResult {
            t0: w.t0,
            t1: w.t1,
            l,
            arrival_rate,
            mean_response,
            lambda_w,
            gap,
            edge_term: w.edge.to_f64() / span,
            edge_bound: (w.n_t0 + w.n_t1) as f64 * w.max_resp / span,
            in_flight_t0: w.n_t0,
            in_flight_t1: w.n_t1,
            rows: w.rows,
            arrivals,
            running: w.running,
            negative_durations: w.negative,
            gauge,
            tolerance,
            flags,
        })
    }

    /// The versioned encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, Kind::Little);
        let f = |out: &mut Vec<u8>, v: f64| out.extend_from_slice(&v.to_le_bytes());
        match &self.stage {
            Stage::Span(s) => {
                out.push(1);
                put_varint(&mut out, s.rows);
                f(&mut out, s.first);
                f(&mut out, s.last);
                put_varint(&mut out, s.running);
                put_varint(&mut out, s.negative);
            }
            Stage::Window(w) => {
                out.push(2);
                f(&mut out, w.t0);
                f(&mut out, w.t1);
                f(&mut out, w.log_end);
                put_varint(&mut out, w.gauge_times.len() as u64);
                for (&t, &c) in w.gauge_times.iter().zip(&w.gauge_counts) {
                    f(&mut out, t);
                    f(&mut out, c);
                }
                for v in [w.rows, w.running, w.negative, w.arrivals, w.n_t0, w.n_t1] {
                    put_varint(&mut out, v);
                }
                w.clipped.encode(&mut out);
                w.resp.encode(&mut out);
                w.edge.encode(&mut out);
                f(&mut out, w.max_resp);
                for &c in &w.in_flight {
                    put_varint(&mut out, zigzag(c));
                }
            }
        }
        out
    }

    /// Decode [`LittleAccumulator::to_bytes`]; any other byte string is an error.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        read_header(&mut r, Kind::Little)?;
        let acc = match r.u8()? {
            1 => {
                let rows = r.varint()?;
                let (first, last) = (r.f64()?, r.f64()?);
                let (running, negative) = (r.varint()?, r.varint()?);
                let ok = if rows == 0 {
                    first == f64::INFINITY && last == f64::NEG_INFINITY
                } else {
                    first.is_finite() && last.is_finite() && first <= last
                };
                if !ok || running.saturating_add(negative) > rows {
                    return Err(QcoreError::data("Little's-law span is inconsistent"));
                }
                LittleAccumulator {
                    stage: Stage::Span(SpanAcc {
                        rows,
                        first,
                        last,
                        running,
                        negative,
                        bad: false,
                    }),
                }
            }
            2 => {
                let t0 = read_finite(&mut r, "t0")?;
                let t1 = read_finite(&mut r, "t1")?;
                let log_end = r.f64()?;
                let m = r.length("gauge", 1 << 32, 16)?;
                let mut gt = Vec::with_capacity(m);
                let mut gc = Vec::with_capacity(m);
                for _ in 0..m {
                    gt.push(r.f64()?);
                    gc.push(r.f64()?);
                }
                let g = (m > 0).then_some((gt.as_slice(), gc.as_slice()));
                let mut acc = Self::window_pass(t0, t1, log_end, g)
                    .map_err(|e| QcoreError::data(format!("Little's-law window: {e}")))?;
                let Stage::Window(w) = &mut acc.stage else {
                    unreachable!("window_pass makes pass 2")
                };
                let mut c = [0u64; 6];
                for v in &mut c {
                    *v = r.varint()?;
                }
                [w.rows, w.running, w.negative, w.arrivals, w.n_t0, w.n_t1] = c;
                w.clipped = ExactSum::decode(&mut r)?;
                w.resp = ExactSum::decode(&mut r)?;
                w.edge = ExactSum::decode(&mut r)?;
                w.max_resp = r.f64()?;
                for v in &mut w.in_flight {
                    *v = r.zigzag()?;
                }
                let counts_ok = w.running.saturating_add(w.negative) <= w.rows
                    && w.arrivals <= w.rows
                    && w.n_t0 <= w.rows
                    && w.n_t1 <= w.arrivals;
                let flights_ok = w.in_flight.iter().all(|&v| v >= 0 && v as u64 <= w.rows);
                if !(counts_ok && flights_ok && w.max_resp >= 0.0 && w.max_resp.is_finite()) {
                    return Err(QcoreError::data(
                        "Little's-law pass-2 state is inconsistent",
                    ));
                }
                acc
            }
            s => {
                return Err(QcoreError::data(format!(
                    "Little's-law pass {s} is not 1 or 2"
                )))
            }
        };
        check_end(&r)?;
        Ok(acc)
    }
}
