//! The arrival accumulator behind [`crate::arrivals::arrival_stats`].
//!
//! Pass 1 ([`ArrivalAccumulator::new`], then `update`) keeps the count and the first and
//! last arrival. [`ArrivalAccumulator::advance`] fixes the grid of the complete windows
//! `[t_min + k·w, t_min + (k+1)·w)` that end at or before the last arrival and the mean
//! gap `duration / (n − 1)`. Pass 2 counts the windows (exact integers) and sums the
//! squared deviations `(gap − mean)²` of the inter-arrival gaps exactly, over time-sorted
//! runs: each `update` sorts its own batch (a copy) when needed, and `merge` adds the gap
//! between two runs when one ends at or before the other begins. When runs overlap, the
//! gaps cannot be known from the parts: [`ArrivalAccumulator::in_time_order`] turns false
//! and the caller feeds pass 2 again in time order (the counts are the same either way).

use super::codec::{put_varint, zigzag, Reader};
use super::{check_end, put_header, read_bool, read_finite, read_header, ExactSum, FixedSum, Kind};
use crate::arrivals::counts::{check_window, count_into, scan, Scan};
use crate::arrivals::stats::bucket_sorted;
use crate::arrivals::{arrival_grid, ArrivalStats, MAX_WINDOWS};
use crate::error::{QcoreError, Result};
use crate::threads::{map_ranges, threads_for};

/// Pass-1 state: count and range of the timestamps.
#[derive(Debug, Clone, PartialEq)]
struct Span {
    n: u64,
    min: f64,
    max: f64,
}

impl Span {
    fn empty() -> Self {
        Span {
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// Pass-2 state on the grid fixed by pass 1.
#[derive(Debug, Clone, PartialEq)]
struct Windows {
    /// The merged pass-1 span (the grid's anchor and the expected rows).
    span: Span,
    window: f64,
    mean_gap: f64,
    /// Counts of the complete windows.
    counts: Vec<i64>,
    /// Rows seen in pass 2.
    seen: u64,
    /// First and last time of the time-sorted run covered so far.
    first: f64,
    last: f64,
    /// Exact sum of `(gap − mean_gap)²` over the gaps inside the run.
    gaps: ExactSum,
    /// Whether the parts merged so far formed one time-sorted run.
    ordered: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Span(Span),
    Windows(Windows),
}

/// Mergeable state of [`crate::arrivals::arrival_stats`]; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalAccumulator {
    stage: Stage,
}

impl Default for ArrivalAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

/// Exact sum of `(t[i+1] − t[i] − m)²` over sorted `ts` (squares rounded, sum exact),
/// split across the thread budget.
fn gap_squares(ts: &[f64], m: f64) -> ExactSum {
    let gaps = ts.len().saturating_sub(1);
    let mut total = ExactSum::new();
    if gaps < 64 {
        for i in 0..gaps {
            let d = ts[i + 1] - ts[i] - m;
            total.add_f64(d * d);
        }
        return total;
    }
    let hint = m * m;
    let parts = map_ranges(gaps, threads_for(gaps, 1 << 18, 64), |r| {
        let mut acc = FixedSum::new(hint);
        acc.add_all(ts[r.start..=r.end].windows(2).map(|w| {
            let d = w[1] - w[0] - m;
            d * d
        }));
        acc.finish()
    });
    for p in &parts {
        total.add_sum(p);
    }
    total
}

impl Windows {
    fn add_run(&mut self, first: f64, last: f64, gaps: &ExactSum, ordered: bool) {
        if first > last {
            return; // empty run
        }
        let m = self.mean_gap;
        let boundary = |a: f64, b: f64| {
            let d = b - a - m;
            d * d
        };
        if self.first > self.last {
            self.first = first;
            self.last = last;
            self.gaps = gaps.clone();
        } else if first >= self.last {
            self.gaps.add_sum(gaps);
            self.gaps.add_f64(boundary(self.last, first));
            self.last = last;
        } else if last <= self.first {
            self.gaps.add_sum(gaps);
            self.gaps.add_f64(boundary(last, self.first));
            self.first = first;
        } else {
            self.ordered = false;
            self.first = self.first.min(first);
            self.last = self.last.max(last);
        }
        self.ordered &= ordered;
    }
}

impl ArrivalAccumulator {
    /// An empty pass-1 accumulator.
    pub fn new() -> Self {
        ArrivalAccumulator {
            stage: Stage::Span(Span::empty()),
        }
    }

    /// The accumulator over one array, both passes done (what [`crate::arrivals::arrival_stats`]
    /// finishes).
    pub fn of(timestamps: &[f64], window: f64) -> Result<Self> {
        check_window(window)?;
        let sc = scan("timestamps", timestamps)?;
        let mut acc = Self::new();
        acc.update_scanned(timestamps, &sc)?;
        acc.advance(window)?;
        acc.update_scanned(timestamps, &sc)?;
        Ok(acc)
    }

    /// 1 in pass 1, 2 after [`ArrivalAccumulator::advance`].
    pub fn pass(&self) -> u8 {
        match self.stage {
            Stage::Span(_) => 1,
            Stage::Windows(_) => 2,
        }
    }

    fn span(&self) -> &Span {
        match &self.stage {
            Stage::Span(s) => s,
            Stage::Windows(w) => &w.span,
        }
    }

    /// Number of timestamps of pass 1.
    pub fn count(&self) -> u64 {
        self.span().n
    }

    /// First arrival of pass 1 (`+inf` when empty).
    pub fn min(&self) -> f64 {
        self.span().min
    }

    /// Last arrival of pass 1 (`-inf` when empty).
    pub fn max(&self) -> f64 {
        self.span().max
    }

    /// The window of pass 2 (`None` in pass 1).
    pub fn window(&self) -> Option<f64> {
        match &self.stage {
            Stage::Span(_) => None,
            Stage::Windows(w) => Some(w.window),
        }
    }

    /// The complete-window counts of pass 2 (empty in pass 1).
    pub fn counts(&self) -> &[i64] {
        match &self.stage {
            Stage::Span(_) => &[],
            Stage::Windows(w) => &w.counts,
        }
    }

    /// Whether the pass-2 parts merged so far formed one time-sorted run, so that the gap
    /// moments are complete (always true in pass 1).
    pub fn in_time_order(&self) -> bool {
        match &self.stage {
            Stage::Span(_) => true,
            Stage::Windows(w) => w.ordered,
        }
    }

    /// Fold in a batch of timestamps (finite; else an error naming `timestamps` and the
    /// index). A failed call leaves the accumulator unchanged.
    pub fn update(&mut self, timestamps: &[f64]) -> Result<()> {
        let sc = scan("timestamps", timestamps)?;
        self.update_scanned(timestamps, &sc)
    }

    fn update_scanned(&mut self, ts: &[f64], sc: &Scan) -> Result<()> {
        if sc.n == 0 {
            return Ok(());
        }
        match &mut self.stage {
            Stage::Span(s) => {
                s.n += sc.n as u64;
                s.min = s.min.min(sc.min);
                s.max = s.max.max(sc.max);
            }
            Stage::Windows(w) => {
                if w.seen + sc.n as u64 > w.span.n || sc.min < w.span.min || sc.max > w.span.max {
                    return Err(QcoreError::invalid(
                        "timestamps",
                        "differ from those of the first pass (more rows, or times outside its range)",
                    ));
                }
                let sorted_copy;
                let sorted: &[f64] = if sc.sorted {
                    ts
                } else {
                    sorted_copy = bucket_sorted(ts, sc.min, sc.max);
                    &sorted_copy
                };
                let c = count_into(
                    sorted,
                    true,
                    w.span.min,
                    w.window,
                    w.counts.len(),
                    f64::INFINITY,
                );
                for (a, b) in w.counts.iter_mut().zip(c) {
                    *a += b;
                }
                let g = gap_squares(sorted, w.mean_gap);
                w.seen += sc.n as u64;
                w.add_run(sc.min, sc.max, &g, true);
            }
        }
        Ok(())
    }

    /// Fold in another accumulator of the same pass (and, in pass 2, the same grid); else
    /// an incompatible-merge error, leaving `self` unchanged.
    pub fn merge(&mut self, other: &ArrivalAccumulator) -> Result<()> {
        match (&mut self.stage, &other.stage) {
            (Stage::Span(a), Stage::Span(b)) => {
                a.n = a.n.saturating_add(b.n); // (decoded states can hold any count)
                a.min = a.min.min(b.min);
                a.max = a.max.max(b.max);
                Ok(())
            }
            (Stage::Windows(a), Stage::Windows(b)) => {
                if a.span != b.span || a.window != b.window || a.counts.len() != b.counts.len() {
                    return Err(QcoreError::incompatible(
                        "arrival accumulators of pass 2 are on different grids",
                    ));
                }
                if a.seen.saturating_add(b.seen) > a.span.n {
                    return Err(QcoreError::incompatible(
                        "the merged pass-2 parts hold more rows than pass 1 counted",
                    ));
                }
                for (x, &y) in a.counts.iter_mut().zip(&b.counts) {
                    *x = x.saturating_add(y);
                }
                a.seen += b.seen;
                a.add_run(b.first, b.last, &b.gaps, b.ordered);
                Ok(())
            }
            _ => Err(QcoreError::incompatible(
                "arrival accumulators are in different passes",
            )),
        }
    }

    /// Turn the merged pass-1 state into an empty pass-2 state with windows of `window`
    /// seconds. Errors as [`crate::arrivals::arrival_stats`] (naming `timestamps` or
    /// `window`), or naming `pass` when already in pass 2.
    pub fn advance(&mut self, window: f64) -> Result<()> {
        let Stage::Span(s) = &self.stage else {
            return Err(QcoreError::invalid("pass", "is already 2 (advance once)"));
        };
        let (duration, nb) = arrival_grid(s.n, s.min, s.max, window)?;
        self.stage = Stage::Windows(Windows {
            span: s.clone(),
            window,
            mean_gap: duration / (s.n - 1) as f64,
            counts: vec![0; nb],
            seen: 0,
            first: f64::INFINITY,
            last: f64::NEG_INFINITY,
            gaps: ExactSum::new(),
            ordered: true,
        });
        Ok(())
    }

    /// The statistics, after pass 2 has seen every row in time order (else an error
    /// naming `timestamps`); `confidence` and `min_windows` as in
    /// [`crate::arrivals::arrival_stats`].
    pub fn finish(&self, confidence: f64, min_windows: usize) -> Result<ArrivalStats> {
        let Stage::Windows(w) = &self.stage else {
            return Err(QcoreError::invalid(
                "pass",
                "is 1: advance to pass 2 and feed the rows again before finishing",
            ));
        };
        if w.seen != w.span.n {
            return Err(QcoreError::invalid(
                "timestamps",
                format!("pass 2 saw {} of the {} rows of pass 1", w.seen, w.span.n),
            ));
        }
        if !w.ordered {
            return Err(QcoreError::invalid(
                "timestamps",
                "parts overlap in time, so their gaps are unknown: feed pass 2 in time order",
            ));
        }
        ArrivalStats::from_parts(
            w.span.n,
            w.span.min,
            w.span.max,
            &w.counts,
            w.gaps.to_f64(),
            w.window,
            confidence,
            min_windows,
        )
    }

    /// The versioned encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, Kind::Arrival);
        let put_span = |out: &mut Vec<u8>, s: &Span| {
            put_varint(out, s.n);
            out.extend_from_slice(&s.min.to_le_bytes());
            out.extend_from_slice(&s.max.to_le_bytes());
        };
        match &self.stage {
            Stage::Span(s) => {
                out.push(1);
                put_span(&mut out, s);
            }
            Stage::Windows(w) => {
                out.push(2);
                put_span(&mut out, &w.span);
                out.extend_from_slice(&w.window.to_le_bytes());
                put_varint(&mut out, w.seen);
                out.extend_from_slice(&w.first.to_le_bytes());
                out.extend_from_slice(&w.last.to_le_bytes());
                out.push(u8::from(w.ordered));
                w.gaps.encode(&mut out);
                put_varint(&mut out, w.counts.len() as u64);
                for &c in &w.counts {
                    put_varint(&mut out, zigzag(c));
                }
            }
        }
        out
    }

    /// Decode [`ArrivalAccumulator::to_bytes`]; any other byte string is an error.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        read_header(&mut r, Kind::Arrival)?;
        let stage = r.u8()?;
        let n = r.varint()?;
        let (min, max) = (r.f64()?, r.f64()?);
        let span = if n == 0 {
            if min != f64::INFINITY || max != f64::NEG_INFINITY {
                return Err(QcoreError::data("empty arrival span with a range"));
            }
            Span::empty()
        } else {
            if !(min.is_finite() && max.is_finite() && min <= max) {
                return Err(QcoreError::data("arrival span range is invalid"));
            }
            Span { n, min, max }
        };
        let acc = match stage {
            1 => ArrivalAccumulator {
                stage: Stage::Span(span),
            },
            2 => {
                let window = read_finite(&mut r, "window")?;
                let mut acc = ArrivalAccumulator {
                    stage: Stage::Span(span.clone()),
                };
                acc.advance(window)
                    .map_err(|e| QcoreError::data(format!("arrival grid: {e}")))?;
                let Stage::Windows(w) = &mut acc.stage else {
                    unreachable!("advance makes pass 2")
                };
                w.seen = r.varint()?;
                w.first = r.f64()?;
                w.last = r.f64()?;
                w.ordered = read_bool(&mut r, "ordered")?;
                w.gaps = ExactSum::decode(&mut r)?;
                let nb = r.length("window counts", MAX_WINDOWS as u64, 1)?;
                if nb != w.counts.len() {
                    return Err(QcoreError::data(format!(
                        "{nb} window counts for a grid of {}",
                        w.counts.len()
                    )));
                }
                let mut total = 0u64;
                for c in &mut w.counts {
                    let v = r.zigzag()?;
                    if v < 0 {
                        return Err(QcoreError::data("negative window count"));
                    }
                    total = total.saturating_add(v as u64);
                    *c = v;
                }
                let run_ok = if w.seen == 0 {
                    w.first == f64::INFINITY && w.last == f64::NEG_INFINITY && w.gaps.is_zero()
                } else {
                    w.first.is_finite()
                        && w.last.is_finite()
                        && span.min <= w.first
                        && w.first <= w.last
                        && w.last <= span.max
                };
                if w.seen > span.n || total > w.seen || !run_ok {
                    return Err(QcoreError::data("arrival pass-2 state is inconsistent"));
                }
                acc
            }
            s => return Err(QcoreError::data(format!("arrival pass {s} is not 1 or 2"))),
        };
        check_end(&r)?;
        Ok(acc)
    }
}
