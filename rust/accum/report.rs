//! The grouped report's accumulator: per group, the outcome counts, the first and last
//! start, the starts (and the failed starts) per window, and for the completed rows the
//! start and end counts per window and the Little's-law sums over `[t0, t1)`.
//!
//! Every path of `qcore report` (one frame, batches, a Dask cluster) folds its rows with
//! [`ReportAccumulator::update`] (the batch kernel [`crate::arrivals::batch_stats_windows`]),
//! merges parts with [`ReportAccumulator::merge`] and finishes each group with
//! [`ReportAccumulator::finish_group`]. Counts are integers and the float sums are exact
//! sums, so any cut of the rows into batches or partitions gives the same state, bit for
//! bit.

use super::codec::{put_varint, zigzag, Reader};
use super::{check_end, put_header, read_bool, read_finite, read_header, Kind};
use crate::accum::ExactSum;
use crate::arrivals::fused::BatchStats;
use crate::arrivals::stats::garwood;
use crate::arrivals::{batch_stats_windows, ArrivalStats, Windows, MAX_WINDOWS};
use crate::sketch::QuantileSketch;
use crate::{QcoreError, Result};

/// Cells (groups × windows) an accumulator holds at most.
const MAX_CELLS: usize = 1 << 30;

/// Per-group report state on one window grid (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportAccumulator {
    t0: f64,
    t1: f64,
    bin: f64,
    n_windows: usize,
    n_end: usize,
    index_limit: f64,
    edge: Option<f64>,
    groups: usize,
    /// `groups × 3`: ok, error, incomplete rows.
    outcomes: Vec<i64>,
    /// `groups × n_windows`: starts, and starts of failed rows, per window.
    windows: Vec<i64>,
    errors: Vec<i64>,
    smin: Vec<f64>,
    smax: Vec<f64>,
    /// `groups × n_end`: starts and ends of the completed rows per window.
    done_starts: Vec<i64>,
    ends: Vec<i64>,
    clipped: Vec<ExactSum>,
    resp: Vec<ExactSum>,
    arrivals: Vec<i64>,
    at_edge: Vec<i64>,
    /// Whether the group's rows came with end times (a log with latencies).
    latency: Vec<bool>,
}

/// Little's law of one group over `[t0, t1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LittleFinish {
    /// Time-average number in the system.
    pub l: f64,
    /// Arrivals inside the window per second.
    pub arrival_rate: f64,
    /// Mean response time of those arrivals.
    pub mean_response: f64,
    /// `|L − λW| / L` (0 when `L` is 0).
    pub gap: f64,
    /// `gap <= tolerance`.
    pub holds: bool,
}

/// One group's finished statistics (the sketch and raw-row statistics are the caller's).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFinish {
    /// Rows, and the rows that were ok, errors and incomplete.
    pub n: u64,
    pub ok: u64,
    pub errors: u64,
    pub incomplete: u64,
    /// The rate over the log's span `[t0, s1]` and its Garwood interval (one arrival or more).
    pub rate: Option<(f64, (f64, f64))>,
    /// The window statistics of the complete windows of that span (two arrivals or more).
    pub stats: Option<ArrivalStats>,
    pub little: Option<LittleFinish>,
    /// Requests with `start < t <= end` at each window boundary `t0 + k·bin` (`n_end` of them).
    pub in_flight: Vec<i64>,
    /// Bounds of the peak in flight inside each window (empty without end times).
    pub peak_lo: Vec<i64>,
    pub peak_hi: Vec<i64>,
}

/// A group's tables, read-only.
#[derive(Debug, Clone, Copy)]
pub struct GroupView<'a> {
    pub outcomes: [i64; 3],
    pub windows: &'a [i64],
    pub errors: &'a [i64],
    pub smin: f64,
    pub smax: f64,
    pub done_starts: &'a [i64],
    pub ends: &'a [i64],
    pub clipped: &'a ExactSum,
    pub resp: &'a ExactSum,
    pub arrivals: i64,
    pub at_edge: i64,
    pub latency: bool,
}

fn cells(groups: usize, n: usize) -> Result<usize> {
    groups
        .checked_mul(n)
        .filter(|&c| c <= MAX_CELLS)
        .ok_or_else(|| {
            QcoreError::invalid(
                "n_groups",
                format!("{groups} groups × {n} windows is too large"),
            )
        })
}

/// `dst += src`, saturating (decoded states can hold any count; a merge must not overflow).
fn add_into(dst: &mut [i64], src: &[i64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = d.saturating_add(*s);
    }
}

impl ReportAccumulator {
    /// An empty accumulator (no groups) on the grid `w`.
    pub fn new(w: Windows) -> Result<Self> {
        w.check()?;
        if w.n_windows.max(w.n_end) > MAX_WINDOWS {
            return Err(QcoreError::invalid(
                "n_windows",
                format!(
                    "n_windows and n_end must be at most {MAX_WINDOWS} (the window counts' limit), got {} and {}",
                    w.n_windows, w.n_end
                ),
            ));
        }
        if w.index_limit.is_nan() || w.index_limit <= 0.0 {
            return Err(QcoreError::invalid(
                "index_limit",
                format!("must be > 0, got {}", w.index_limit),
            ));
        }
        if let Some(e) = w.edge.filter(|e| !e.is_finite()) {
            return Err(QcoreError::invalid(
                "edge",
                format!("must be finite, got {e}"),
            ));
        }
        Ok(Self::empty(w))
    }

    /// No groups on the grid `w` (checked by the caller).
    fn empty(w: Windows) -> Self {
        ReportAccumulator {
            t0: w.t0,
            t1: w.t1,
            bin: w.bin,
            n_windows: w.n_windows,
            n_end: w.n_end,
            index_limit: w.index_limit,
            edge: w.edge,
            groups: 0,
            outcomes: Vec::new(),
            windows: Vec::new(),
            errors: Vec::new(),
            smin: Vec::new(),
            smax: Vec::new(),
            done_starts: Vec::new(),
            ends: Vec::new(),
            clipped: Vec::new(),
            resp: Vec::new(),
            arrivals: Vec::new(),
            at_edge: Vec::new(),
            latency: Vec::new(),
        }
    }

    /// The grid.
    pub fn grid(&self) -> Windows {
        Windows {
            t0: self.t0,
            t1: self.t1,
            bin: self.bin,
            n_windows: self.n_windows,
            n_end: self.n_end,
            index_limit: self.index_limit,
            edge: self.edge,
        }
    }

    /// Number of groups.
    pub fn n_groups(&self) -> usize {
        self.groups
    }

    /// Grow to `groups` groups (new ones empty); never shrinks.
    pub fn reserve_groups(&mut self, groups: usize) -> Result<()> {
        if groups <= self.groups {
            return Ok(());
        }
        cells(groups, self.n_windows.max(self.n_end))?;
        self.grow(groups);
        Ok(())
    }

    /// Grow to `groups > self.groups` groups whose tables fit (see [`cells`]).
    fn grow(&mut self, groups: usize) {
        let (cw, ce) = (groups * self.n_windows, groups * self.n_end);
        self.outcomes.resize(groups * 3, 0);
        self.windows.resize(cw, 0);
        self.errors.resize(cw, 0);
        self.smin.resize(groups, f64::INFINITY);
        self.smax.resize(groups, f64::NEG_INFINITY);
        self.done_starts.resize(ce, 0);
        self.ends.resize(ce, 0);
        self.clipped.resize(groups, ExactSum::new());
        self.resp.resize(groups, ExactSum::new());
        self.arrivals.resize(groups, 0);
        self.at_edge.resize(groups, 0);
        self.latency.resize(groups, false);
        self.groups = groups;
    }

    /// Fold one batch in (see [`batch_stats_windows`] for the arguments); the accumulator
    /// grows to `n_groups` groups. With a `template`, returns the batch's sketches of the
    /// ok latencies (by group, or by group and plot window) for the caller to merge. On an
    /// error nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        codes: &[i64],
        start: &[f64],
        cls: &[i8],
        end: Option<&[f64]>,
        latency: Option<&[f64]>,
        n_groups: usize,
        template: Option<&QuantileSketch>,
        sketch_windows: Option<usize>,
    ) -> Result<Vec<QuantileSketch>> {
        let st = self.batch(
            codes,
            start,
            cls,
            end,
            latency,
            n_groups,
            template,
            sketch_windows,
        )?;
        self.fold(&st)?;
        Ok(st.sketches)
    }

    /// One batch's statistics on this grid (nothing changes): [`Self::fold`] adds them.
    #[allow(clippy::too_many_arguments)]
    pub fn batch(
        &self,
        codes: &[i64],
        start: &[f64],
        cls: &[i8],
        end: Option<&[f64]>,
        latency: Option<&[f64]>,
        n_groups: usize,
        template: Option<&QuantileSketch>,
        sketch_windows: Option<usize>,
    ) -> Result<BatchStats> {
        if n_groups < self.groups {
            return Err(QcoreError::invalid(
                "n_groups",
                format!(
                    "({n_groups}) is below the accumulator's {} groups",
                    self.groups
                ),
            ));
        }
        cells(n_groups, self.n_windows.max(self.n_end))?;
        batch_stats_windows(
            codes,
            start,
            cls,
            end,
            latency,
            n_groups,
            self.grid(),
            template,
            sketch_windows,
        )
    }

    /// Add one batch's statistics (from [`Self::batch`] on this grid).
    pub fn fold(&mut self, st: &BatchStats) -> Result<()> {
        let g = st.n_groups;
        // a batch with end times has its end tables (n_end >= 1 window each)
        let done = !st.done_starts.is_empty();
        let sized = st.outcomes.len() == g * 3
            && st.windows.len() == g * self.n_windows
            && st.errors.len() == g * self.n_windows
            && st.smin.len() == g
            && st.smax.len() == g
            && (st.done_starts.is_empty() || st.done_starts.len() == g * self.n_end)
            && st.ends.len() == st.done_starts.len()
            && st.clipped.len() == g
            && st.resp.len() == g
            && st.arrivals.len() == g
            && st.at_edge.len() == g;
        if !sized || g < self.groups {
            return Err(QcoreError::invalid(
                "batch",
                "is not a batch of this accumulator's grid and groups",
            ));
        }
        self.reserve_groups(g)?;
        add_into(&mut self.outcomes, &st.outcomes);
        add_into(&mut self.windows, &st.windows);
        add_into(&mut self.errors, &st.errors);
        for k in 0..g {
            self.smin[k] = self.smin[k].min(st.smin[k]);
            self.smax[k] = self.smax[k].max(st.smax[k]);
        }
        if done {
            add_into(&mut self.done_starts, &st.done_starts);
            add_into(&mut self.ends, &st.ends);
            add_into(&mut self.arrivals, &st.arrivals);
            add_into(&mut self.at_edge, &st.at_edge);
            for k in 0..g {
                self.clipped[k].add_sum(&st.clipped[k]);
                self.resp[k].add_sum(&st.resp[k]);
                self.latency[k] = true;
            }
        }
        Ok(())
    }

    /// Fold `other` in: its group `j` into this one's group `codes[j]` (or `j` without
    /// `codes`), growing as needed. The grids must be equal. On an error nothing changes.
    pub fn merge(&mut self, other: &ReportAccumulator, codes: Option<&[i64]>) -> Result<()> {
        if self.grid_key() != other.grid_key() {
            return Err(QcoreError::invalid(
                "other",
                format!(
                    "is on another grid (t0 {}, t1 {}, bin {}, {} + {} windows) than this one \
                     (t0 {}, t1 {}, bin {}, {} + {} windows)",
                    other.t0,
                    other.t1,
                    other.bin,
                    other.n_windows,
                    other.n_end,
                    self.t0,
                    self.t1,
                    self.bin,
                    self.n_windows,
                    self.n_end
                ),
            ));
        }
        let target = |j: usize| -> Result<usize> {
            match codes {
                None => Ok(j),
                Some(c) => match c.get(j) {
                    Some(&v) if v >= 0 && (v as u64) < MAX_CELLS as u64 => Ok(v as usize),
                    Some(&v) => Err(QcoreError::invalid(
                        "codes",
                        format!("value {v} at index {j} is not a group index"),
                    )),
                    None => Err(QcoreError::invalid(
                        "codes",
                        format!(
                            "has {} entries for the other accumulator's {} groups",
                            c.len(),
                            other.groups
                        ),
                    )),
                },
            }
        };
        let mut top = self.groups;
        for j in 0..other.groups {
            top = top.max(target(j)? + 1);
        }
        if let Some(c) = codes {
            if c.len() != other.groups {
                return Err(QcoreError::invalid(
                    "codes",
                    format!(
                        "has {} entries for the other accumulator's {} groups",
                        c.len(),
                        other.groups
                    ),
                ));
            }
        }
        self.reserve_groups(top)?;
        let (nw, ne) = (self.n_windows, self.n_end);
        for j in 0..other.groups {
            let k = target(j)?;
            add_into(
                &mut self.outcomes[k * 3..k * 3 + 3],
                &other.outcomes[j * 3..j * 3 + 3],
            );
            add_into(
                &mut self.windows[k * nw..(k + 1) * nw],
                &other.windows[j * nw..(j + 1) * nw],
            );
            add_into(
                &mut self.errors[k * nw..(k + 1) * nw],
                &other.errors[j * nw..(j + 1) * nw],
            );
            add_into(
                &mut self.done_starts[k * ne..(k + 1) * ne],
                &other.done_starts[j * ne..(j + 1) * ne],
            );
            add_into(
                &mut self.ends[k * ne..(k + 1) * ne],
                &other.ends[j * ne..(j + 1) * ne],
            );
            self.smin[k] = self.smin[k].min(other.smin[j]);
            self.smax[k] = self.smax[k].max(other.smax[j]);
            self.clipped[k].add_sum(&other.clipped[j]);
            self.resp[k].add_sum(&other.resp[j]);
            self.arrivals[k] = self.arrivals[k].saturating_add(other.arrivals[j]);
            self.at_edge[k] = self.at_edge[k].saturating_add(other.at_edge[j]);
            self.latency[k] |= other.latency[j];
        }
        Ok(())
    }

    fn grid_key(&self) -> (u64, u64, u64, usize, usize, u64, Option<u64>) {
        (
            self.t0.to_bits(),
            self.t1.to_bits(),
            self.bin.to_bits(),
            self.n_windows,
            self.n_end,
            self.index_limit.to_bits(),
            self.edge.map(f64::to_bits),
        )
    }

    /// Every group merged into one (one group, empty when there is none).
    #[must_use]
    pub fn total(&self) -> ReportAccumulator {
        let mut out = Self::empty(self.grid());
        out.grow(1); // one group's tables fit: each of n_windows, n_end was checked
        for k in 0..self.groups {
            let g = self.view(k);
            add_into(&mut out.outcomes, &g.outcomes);
            add_into(&mut out.windows, g.windows);
            add_into(&mut out.errors, g.errors);
            add_into(&mut out.done_starts, g.done_starts);
            add_into(&mut out.ends, g.ends);
            out.smin[0] = out.smin[0].min(g.smin);
            out.smax[0] = out.smax[0].max(g.smax);
            out.clipped[0].add_sum(g.clipped);
            out.resp[0].add_sum(g.resp);
            out.arrivals[0] = out.arrivals[0].saturating_add(g.arrivals);
            out.at_edge[0] = out.at_edge[0].saturating_add(g.at_edge);
            out.latency[0] |= g.latency;
        }
        out
    }

    /// First and last start over every group (`+inf`/`-inf` without rows).
    pub fn start_range(&self) -> (f64, f64) {
        let lo = self.smin.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.smax.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    /// Fit the end windows and Little's law to the log's real last end `t1` (the rows
    /// were counted up to a bound `>= t1`): keep the first `n_end` end windows and, with
    /// `drop_edge`, take the completed rows starting exactly at `edge` out of the window's
    /// arrivals. Returns `false`, changing nothing, when a row was counted past `n_end`.
    pub fn settle(&mut self, t1: f64, n_end: usize, drop_edge: bool) -> Result<bool> {
        if !(t1.is_finite() && t1 > self.t0) {
            return Err(QcoreError::invalid(
                "t1",
                format!("({t1}) must be finite and after t0 ({})", self.t0),
            ));
        }
        if n_end == 0 || n_end > self.n_end {
            return Err(QcoreError::invalid(
                "n_end",
                format!("must be in 1..={}, got {n_end}", self.n_end),
            ));
        }
        let ne = self.n_end;
        for k in 0..self.groups {
            let (ds, en) = (&self.done_starts[k * ne..], &self.ends[k * ne..]);
            if ds[n_end..ne].iter().any(|&v| v != 0) || en[n_end..ne].iter().any(|&v| v != 0) {
                return Ok(false);
            }
        }
        let keep = |v: &[i64]| -> Vec<i64> {
            (0..self.groups)
                .flat_map(|k| v[k * ne..k * ne + n_end].iter().copied())
                .collect()
        };
        self.done_starts = keep(&self.done_starts);
        self.ends = keep(&self.ends);
        self.n_end = n_end;
        self.t1 = t1;
        if drop_edge {
            for k in 0..self.groups {
                self.arrivals[k] = self.arrivals[k].saturating_sub(self.at_edge[k]);
            }
        }
        Ok(true)
    }

    /// Group `k`'s tables.
    pub fn group(&self, k: usize) -> Result<GroupView<'_>> {
        if k >= self.groups {
            return Err(QcoreError::invalid(
                "group",
                format!("{k} is outside 0..{}", self.groups),
            ));
        }
        Ok(self.view(k))
    }

    /// Group `k`'s tables (`k < groups`).
    fn view(&self, k: usize) -> GroupView<'_> {
        let (nw, ne) = (self.n_windows, self.n_end);
        GroupView {
            outcomes: [
                self.outcomes[k * 3],
                self.outcomes[k * 3 + 1],
                self.outcomes[k * 3 + 2],
            ],
            windows: &self.windows[k * nw..(k + 1) * nw],
            errors: &self.errors[k * nw..(k + 1) * nw],
            smin: self.smin[k],
            smax: self.smax[k],
            done_starts: &self.done_starts[k * ne..(k + 1) * ne],
            ends: &self.ends[k * ne..(k + 1) * ne],
            clipped: &self.clipped[k],
            resp: &self.resp[k],
            arrivals: self.arrivals[k],
            at_edge: self.at_edge[k],
            latency: self.latency[k],
        }
    }

    /// Group `k`'s statistics. Rates are over the log's span `[t0, s1]` (first to last
    /// start of the whole log), so the groups' rates add up to the log's; the window
    /// statistics use the complete windows of that span, as [`crate::arrivals::arrival_stats`]
    /// does; Little's law is over `[t0, t1)`.
    pub fn finish_group(
        &self,
        k: usize,
        s1: f64,
        confidence: f64,
        tolerance: f64,
    ) -> Result<GroupFinish> {
        let g = self.group(k)?;
        crate::arrivals::stats::check_confidence(confidence)?;
        if tolerance.is_nan() || tolerance < 0.0 {
            return Err(QcoreError::invalid(
                "tolerance",
                format!("must be >= 0, got {tolerance}"),
            ));
        }
        if !s1.is_finite() {
            return Err(QcoreError::invalid(
                "s1",
                format!("must be finite, got {s1}"),
            ));
        }
        let [ok, err, inc] = g.outcomes;
        let n = ok.saturating_add(err).saturating_add(inc) as u64;
        let (t0, t1) = (self.t0, self.t1);
        let mut rate = None;
        let mut stats = None;
        if n >= 2 && s1 > t0 {
            // the complete windows of [t0, s1] are among the windows counted
            let (_, nb) = crate::arrivals::arrival_grid(n, t0, s1, self.bin)?;
            if nb > self.n_windows {
                return Err(QcoreError::invalid(
                    "s1",
                    format!(
                        "({s1}) spans {nb} complete windows of {} s from t0, more than the {} counted",
                        self.bin, self.n_windows
                    ),
                ));
            }
            let st =
                ArrivalStats::from_parts(n, t0, s1, g.windows, f64::NAN, self.bin, confidence, 8)?;
            rate = Some((st.rate, st.rate_ci));
            stats = Some(st);
        } else if n == 1 && s1 > t0 {
            rate = Some((1.0 / (s1 - t0), garwood(1, s1 - t0, confidence)));
        }
        let span = t1 - t0;
        let little = (g.latency && g.arrivals > 0 && span > 0.0).then(|| {
            let l = g.clipped.to_f64() / span;
            let lam = g.arrivals as f64 / span;
            let w = g.resp.to_f64() / g.arrivals as f64;
            let gap = if l > 0.0 {
                (l - lam * w).abs() / l
            } else {
                0.0
            };
            LittleFinish {
                l,
                arrival_rate: lam,
                mean_response: w,
                gap,
                holds: gap <= tolerance,
            }
        });
        let mut in_flight = Vec::with_capacity(g.done_starts.len());
        let (mut s, mut e) = (0i64, 0i64);
        for (&a, &b) in g.done_starts.iter().zip(g.ends) {
            s = s.saturating_add(a);
            e = e.saturating_add(b);
            in_flight.push(s.saturating_sub(e));
        }
        let (peak_lo, peak_hi) = if g.latency && !in_flight.is_empty() {
            // at least the count just before the window's end, at most the count just
            // before its start plus the window's starts
            let hi = (0..in_flight.len())
                .map(|j| if j == 0 { 0 } else { in_flight[j - 1] }.saturating_add(g.done_starts[j]))
                .collect();
            (in_flight.clone(), hi)
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(GroupFinish {
            n,
            ok: ok as u64,
            errors: err as u64,
            incomplete: inc as u64,
            rate,
            stats,
            little,
            in_flight,
            peak_lo,
            peak_hi,
        })
    }

    /// The versioned encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, Kind::Report);
        for v in [self.t0, self.t1, self.bin, self.index_limit] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_varint(&mut out, self.n_windows as u64);
        put_varint(&mut out, self.n_end as u64);
        match self.edge {
            Some(e) => {
                out.push(1);
                out.extend_from_slice(&e.to_le_bytes());
            }
            None => out.push(0),
        }
        put_varint(&mut out, self.groups as u64);
        let put_all = |out: &mut Vec<u8>, v: &[i64]| {
            for &c in v {
                put_varint(out, zigzag(c));
            }
        };
        for k in 0..self.groups {
            let g = self.view(k);
            put_all(&mut out, &g.outcomes);
            out.extend_from_slice(&g.smin.to_le_bytes());
            out.extend_from_slice(&g.smax.to_le_bytes());
            out.push(u8::from(g.latency));
            put_all(&mut out, &[g.arrivals, g.at_edge]);
            g.clipped.encode(&mut out);
            g.resp.encode(&mut out);
            put_all(&mut out, g.windows);
            put_all(&mut out, g.errors);
            put_all(&mut out, g.done_starts);
            put_all(&mut out, g.ends);
        }
        out
    }

    /// Decode [`ReportAccumulator::to_bytes`]; any other byte string is an error.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        read_header(&mut r, Kind::Report)?;
        let t0 = read_finite(&mut r, "t0")?;
        let t1 = read_finite(&mut r, "t1")?;
        let bin = read_finite(&mut r, "bin")?;
        let index_limit = r.f64()?;
        let n_windows = r.length("windows", MAX_WINDOWS as u64, 0)?;
        let n_end = r.length("end windows", MAX_WINDOWS as u64, 0)?;
        let edge = if read_bool(&mut r, "edge")? {
            Some(r.f64()?)
        } else {
            None
        };
        let mut acc = ReportAccumulator::new(Windows {
            t0,
            t1,
            bin,
            n_windows,
            n_end,
            index_limit,
            edge,
        })
        .map_err(|e| QcoreError::data(format!("report grid: {e}")))?;
        // every group takes at least one byte per window
        let per = 3 + 16 + 1 + 2 + 2 * n_windows + 2 * n_end;
        let groups = r.length("groups", MAX_CELLS as u64, per)?;
        acc.reserve_groups(groups)
            .map_err(|e| QcoreError::data(format!("report groups: {e}")))?;
        let (nw, ne) = (n_windows, n_end);
        let read_counts = |r: &mut Reader<'_>, dst: &mut [i64], what: &str| -> Result<()> {
            for c in dst {
                let v = r.zigzag()?;
                if v < 0 {
                    return Err(QcoreError::data(format!("negative {what}")));
                }
                *c = v;
            }
            Ok(())
        };
        for k in 0..groups {
            read_counts(&mut r, &mut acc.outcomes[k * 3..k * 3 + 3], "outcome count")?;
            acc.smin[k] = r.f64()?;
            acc.smax[k] = r.f64()?;
            let rows = acc.outcomes[k * 3..k * 3 + 3]
                .iter()
                .fold(0i64, |a, &b| a.saturating_add(b));
            let range_ok = if rows == 0 {
                acc.smin[k] == f64::INFINITY && acc.smax[k] == f64::NEG_INFINITY
            } else {
                acc.smin[k].is_finite() && acc.smax[k].is_finite() && acc.smin[k] <= acc.smax[k]
            };
            if !range_ok {
                return Err(QcoreError::data(format!(
                    "group {k}: start range is invalid"
                )));
            }
            acc.latency[k] = read_bool(&mut r, "latency")?;
            let mut two = [0i64; 2];
            read_counts(&mut r, &mut two, "arrival count")?;
            acc.arrivals[k] = two[0];
            acc.at_edge[k] = two[1];
            acc.clipped[k] = ExactSum::decode(&mut r)?;
            acc.resp[k] = ExactSum::decode(&mut r)?;
            read_counts(
                &mut r,
                &mut acc.windows[k * nw..(k + 1) * nw],
                "window count",
            )?;
            read_counts(
                &mut r,
                &mut acc.errors[k * nw..(k + 1) * nw],
                "window count",
            )?;
            read_counts(
                &mut r,
                &mut acc.done_starts[k * ne..(k + 1) * ne],
                "window count",
            )?;
            read_counts(&mut r, &mut acc.ends[k * ne..(k + 1) * ne], "window count")?;
        }
        check_end(&r)?;
        Ok(acc)
    }
}
