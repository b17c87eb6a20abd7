//! One pass over a batch of request rows for the grouped report: per group, the outcome
//! counts, the first and last start, the arrival counts per window, and for the completed
//! rows the start and end counts per window and the Little's-law window sums (exact sums,
//! so any cut of the rows into batches gives the same sums to the last bit).
//!
//! The window index of a time `t` is `trunc((t - t0) / bin)` clipped to `0..n`, where a
//! value that does not fit the index type (`index_limit`) or is NaN counts as 0 — the
//! same index the streaming scan computes with a non-strict integer cast.

use crate::accum::exact_sum::{decompose, fixed_unit, UNIT_SHIFT};
use crate::accum::ExactSum;
use crate::error::{check_finite, check_same_len};
use crate::simd::avx2_dispatch;
use crate::sketch::QuantileSketch;
use crate::{QcoreError, Result};

/// The per-group statistics of one batch (row-major `groups × …` tables).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    pub n_groups: usize,
    /// `groups × 3`: rows that are ok (class 0), errors (1), incomplete (2).
    pub outcomes: Vec<i64>,
    /// `groups × n_windows`: starts per window.
    pub windows: Vec<i64>,
    /// `groups × n_windows`: starts of the error rows (class 1) per window.
    pub errors: Vec<i64>,
    /// First and last start per group (`+inf`/`-inf` for a group without rows).
    pub smin: Vec<f64>,
    pub smax: Vec<f64>,
    /// `groups × n_end`: starts and ends of the completed rows per window.
    pub done_starts: Vec<i64>,
    pub ends: Vec<i64>,
    /// Little's-law sums over `[t0, t1)` of the completed rows: the time in the system
    /// clipped to the window, the arrivals inside it and their summed response time (the
    /// per-row terms of `little::littles_law`, summed exactly).
    pub clipped: Vec<ExactSum>,
    pub arrivals: Vec<i64>,
    pub resp: Vec<ExactSum>,
    /// Completed rows starting exactly at `edge` (0 when `edge` is not given).
    pub at_edge: Vec<i64>,
    /// With a template: one sketch per group code `0..=max code` of the ok rows with a
    /// finite latency, as `sketch::sketch_groups` builds them (empty without a template).
    pub sketches: Vec<QuantileSketch>,
}

/// Window parameters of [`batch_stats`].
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub t0: f64,
    pub t1: f64,
    pub bin: f64,
    pub n_windows: usize,
    pub n_end: usize,
    /// Indices at or above this value count as 0 (`2^31` or `2^63`).
    pub index_limit: f64,
    pub edge: Option<f64>,
}

impl Windows {
    /// Check the grid: finite `t0 < t1`, `bin > 0`, at least one window of each kind.
    pub fn check(&self) -> Result<()> {
        for (name, v) in [("t0", self.t0), ("t1", self.t1), ("bin", self.bin)] {
            if !v.is_finite() {
                return Err(QcoreError::invalid(
                    name,
                    format!("must be finite, got {v}"),
                ));
            }
        }
        if self.t1 <= self.t0 {
            return Err(QcoreError::invalid(
                "t1",
                format!("({}) must be after t0 ({})", self.t1, self.t0),
            ));
        }
        if self.bin <= 0.0 {
            return Err(QcoreError::invalid(
                "bin",
                format!("must be > 0, got {}", self.bin),
            ));
        }
        if self.n_windows == 0 || self.n_end == 0 {
            return Err(QcoreError::invalid(
                "n_windows",
                "n_windows and n_end must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
fn index(t: f64, t0: f64, bin: f64, limit: f64, n: usize) -> usize {
    index_f(t, t0, bin, limit, (n - 1) as f64) as usize
}

/// The window index as a float in `0..=top` (branch-free, so the loop vectorises); the
/// integer cast of the caller truncates, and truncating then clipping equals clipping then
/// truncating since `top` is an integer.
#[inline(always)]
fn index_f(t: f64, t0: f64, bin: f64, limit: f64, top: f64) -> f64 {
    let v = (t - t0) / bin;
    // NaN fails the comparison: index 0, as a null cast filled with 0
    let v = if v < limit { v } else { 0.0 };
    let v = if v > 0.0 { v } else { 0.0 };
    clip(v, top)
}

/// `v` clipped to `top` (`index_f` with a top of `+inf`, then this, equals `index_f`).
#[inline(always)]
fn clip(v: f64, top: f64) -> f64 {
    if v < top {
        v
    } else {
        top
    }
}

/// The window index of each start, as [`batch_stats`] counts it (`0..n_windows`).
///
/// # Errors
/// `n_windows` of 0.
pub fn window_indices(start: &[f64], w: &Windows) -> Result<Vec<i64>> {
    if w.n_windows == 0 {
        return Err(QcoreError::invalid("n_windows", "must be at least 1"));
    }
    let top = (w.n_windows - 1) as f64;
    Ok(start
        .iter()
        .map(|&t| index_f(t, w.t0, w.bin, w.index_limit, top) as i64)
        .collect())
}

const CHUNK: usize = 2048;

/// Scratch buffers above this many values are not kept between calls.
const SCRATCH_KEEP: usize = 1 << 24;

/// The sketch codes and ok latencies of one batch, reused between calls.
#[derive(Default)]
struct Pairs {
    codes: Vec<i64>,
    values: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Pairs> = std::cell::RefCell::new(Pairs::default());
}

/// The counting loops; `tab` counts by (group, window, outcome).
#[inline(always)]
fn fold_impl(
    st: &mut BatchStats,
    tab: &mut [i64],
    codes: &[i64],
    start: &[f64],
    cls: &[i8],
    done: Option<(&[f64], &[f64])>,
    w: &Windows,
) {
    let (t0, t1, bin, lim) = (w.t0, w.t1, w.bin, w.index_limit);
    let (nw, ne) = (w.n_windows, w.n_end);
    let (topw, tope) = ((nw - 1) as f64, (ne - 1) as f64);
    let mut vs = [0f64; CHUNK];
    let mut ws = [0i32; CHUNK];
    let mut wd = [0i32; CHUNK];
    let mut we = [0i32; CHUNK];
    // NaN never equals a start
    let edge = w.edge.unwrap_or(f64::NAN);
    let BatchStats {
        smin,
        smax,
        done_starts,
        ends,
        at_edge,
        clipped,
        arrivals,
        resp,
        ..
    } = st;
    let (smin, smax) = (&mut smin[..], &mut smax[..]);
    // exact per-group sums of the (non-negative) Little's-law terms: mantissas added per
    // binary exponent (the 64 exponents from 62 binades below the window's length up),
    // folded into the exact sums every `SLOT_ROWS` rows of a group; a term of another
    // magnitude goes to its exact sum directly
    let ng = if done.is_some() { clipped.len() } else { 0 };
    let unit = fixed_unit(t1 - t0);
    let mut slots = vec![Slots::default(); ng];
    let (done_starts, ends, at_edge, arrivals) = (
        &mut done_starts[..],
        &mut ends[..],
        &mut at_edge[..],
        &mut arrivals[..],
    );
    let n = start.len();
    let mut base = 0;
    while base < n {
        let m = (n - base).min(CHUNK);
        let s = &start[base..base + m];
        let c = &codes[base..base + m];
        let k = &cls[base..base + m];
        // the start's window index before clipping to the top, shared by both tables
        for (o, &t) in vs[..m].iter_mut().zip(s) {
            *o = index_f(t, t0, bin, lim, f64::INFINITY);
        }
        for (o, &v) in ws[..m].iter_mut().zip(&vs[..m]) {
            *o = clip(v, topw) as i32;
        }
        for j in 0..m {
            let g = c[j] as usize;
            tab[(g * nw + ws[j] as usize) * 3 + k[j] as usize] += 1;
            smin[g] = smin[g].min(s[j]);
            smax[g] = smax[g].max(s[j]);
        }
        if let Some((end, lat)) = done {
            let e = &end[base..base + m];
            let l = &lat[base..base + m];
            for j in 0..m {
                wd[j] = clip(vs[j], tope) as i32;
                we[j] = index_f(e[j], t0, bin, lim, tope) as i32;
            }
            for j in 0..m {
                let (a, b) = (s[j], e[j]);
                if k[j] == 2 || !b.is_finite() || !l[j].is_finite() {
                    continue;
                }
                let g = c[j] as usize;
                done_starts[g * ne + wd[j] as usize] += 1;
                ends[g * ne + we[j] as usize] += 1;
                if a == edge {
                    at_edge[g] += 1;
                }
                // Little's law over [t0, t1): the per-row terms of `little::littles_law`
                // (clipped time in the window, arrival inside it, its response time)
                let r = crate::little::row(a, b, t0, t1, f64::NEG_INFINITY);
                let sl = &mut slots[g];
                add_slot(&mut sl.clipped, r[0], unit, &mut clipped[g]);
                if r[3] > 0.0 {
                    arrivals[g] += 1;
                    add_slot(&mut sl.resp, r[4], unit, &mut resp[g]);
                }
                sl.rows += 1;
                if sl.rows == SLOT_ROWS {
                    sl.flush(unit, &mut clipped[g], &mut resp[g]);
                }
            }
        }
        base += m;
    }
    for (g, sl) in slots.iter_mut().enumerate() {
        sl.flush(unit, &mut clipped[g], &mut resp[g]);
    }
}

/// Rows of a group between two flushes of its [`Slots`]: 2048 mantissas below `2^53`
/// stay below `2^64`.
const SLOT_ROWS: u32 = 2048;

/// One group's Little's-law sums as mantissa sums per binary exponent `unit + k`.
#[derive(Clone)]
struct Slots {
    clipped: [u64; 64],
    resp: [u64; 64],
    rows: u32,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            clipped: [0; 64],
            resp: [0; 64],
            rows: 0,
        }
    }
}

impl Slots {
    #[inline(never)]
    fn flush(&mut self, unit: i64, clipped: &mut ExactSum, resp: &mut ExactSum) {
        for (slots, sum) in [(&mut self.clipped, clipped), (&mut self.resp, resp)] {
            for (k, v) in slots.iter_mut().enumerate() {
                if *v != 0 {
                    sum.add_at(u128::from(*v), false, (unit + k as i64 + UNIT_SHIFT) as u64);
                    *v = 0;
                }
            }
            sum.normalize();
        }
        self.rows = 0;
    }
}

/// Add `v` exactly: its mantissa to the slot of its exponent when `v` is non-negative
/// and its exponent within `unit..unit + 63`, else to `cold`.
#[inline(always)]
fn add_slot(slots: &mut [u64; 64], v: f64, unit: i64, cold: &mut ExactSum) {
    let (m, e) = decompose(v);
    let k = e - unit;
    if v >= 0.0 && (0..64).contains(&k) {
        slots[(k & 63) as usize] += m;
    } else if m != 0 {
        add_cold(cold, v);
    }
}

#[cold]
#[inline(never)]
fn add_cold(sum: &mut ExactSum, v: f64) {
    sum.add_f64(v);
}

avx2_dispatch! {
    fn fold(
        st: &mut BatchStats,
        tab: &mut [i64],
        codes: &[i64],
        start: &[f64],
        cls: &[i8],
        done: Option<(&[f64], &[f64])>,
        w: &Windows,
    ) => fold_impl
}

/// Fold one batch into per-group statistics. `codes` in `0..n_groups`; `cls` the outcome
/// class (0 ok, 1 error, 2 incomplete); `start` finite; `end`/`latency` (both or neither)
/// mark a row completed when it is ok or an error and both are finite. Nothing is computed
/// when an argument is invalid.
#[allow(clippy::too_many_arguments)]
pub fn batch_stats(
    codes: &[i64],
    start: &[f64],
    cls: &[i8],
    end: Option<&[f64]>,
    latency: Option<&[f64]>,
    n_groups: usize,
    w: Windows,
    template: Option<&QuantileSketch>,
) -> Result<BatchStats> {
    batch_stats_windows(codes, start, cls, end, latency, n_groups, w, template, None)
}

/// [`batch_stats`], the ok latencies sketched by group, or with `sketch_windows = Some(k)` by group and plot window
/// (`k` windows each, `p = ⌈n_windows / k⌉` of them): sketch `code · p + window / k`, the
/// group's sketch being the merge of its `p` (sketches merge exactly).
#[allow(clippy::too_many_arguments)]
pub fn batch_stats_windows(
    codes: &[i64],
    start: &[f64],
    cls: &[i8],
    end: Option<&[f64]>,
    latency: Option<&[f64]>,
    n_groups: usize,
    w: Windows,
    template: Option<&QuantileSketch>,
    sketch_windows: Option<usize>,
) -> Result<BatchStats> {
    check_same_len("codes", codes.len(), "start", start.len())?;
    check_same_len("cls", cls.len(), "start", start.len())?;
    check_finite("start", start)?;
    match (end, latency) {
        (Some(e), Some(l)) => {
            check_same_len("end", e.len(), "start", start.len())?;
            check_same_len("latency", l.len(), "start", start.len())?;
        }
        (None, None) => {}
        _ => {
            return Err(QcoreError::invalid(
                "end",
                "end and latency must be given together",
            ))
        }
    }
    w.check()?;
    let cells = |n: usize| {
        n_groups
            .checked_mul(n)
            .filter(|&c| c <= 1 << 30)
            .ok_or_else(|| {
                QcoreError::invalid(
                    "n_groups",
                    format!("{n_groups} groups × {n} windows is too large"),
                )
            })
    };
    let (cw, ce) = (cells(w.n_windows)?, cells(w.n_end)?);
    if let Some(i) = codes
        .iter()
        .position(|&c| c < 0 || c as u64 >= n_groups as u64)
    {
        return Err(QcoreError::invalid(
            "codes",
            format!("value {} at index {i} is outside 0..{n_groups}", codes[i]),
        ));
    }
    if let Some(i) = cls.iter().position(|&c| !(0..=2).contains(&c)) {
        return Err(QcoreError::invalid(
            "cls",
            format!("must be 0, 1 or 2, got {} at index {i}", cls[i]),
        ));
    }
    let g = n_groups;
    let mut st = BatchStats {
        n_groups: g,
        outcomes: vec![0; g * 3],
        windows: vec![0; cw],
        errors: vec![0; cw],
        smin: vec![f64::INFINITY; g],
        smax: vec![f64::NEG_INFINITY; g],
        done_starts: vec![0; if end.is_some() { ce } else { 0 }],
        ends: vec![0; if end.is_some() { ce } else { 0 }],
        clipped: vec![ExactSum::new(); g],
        arrivals: vec![0; g],
        resp: vec![ExactSum::new(); g],
        at_edge: vec![0; g],
        sketches: Vec::new(),
    };
    let nw = w.n_windows;
    let mut tab = vec![0i64; cw * 3];
    let done = match (end, latency) {
        (Some(e), Some(l)) => Some((e, l)),
        _ => None,
    };
    let count = |st: &mut BatchStats, tab: &mut [i64]| {
        fold(st, tab, codes, start, cls, done, &w);
    };
    // The sketches of the ok latencies: one pass keeps the (sketch code, latency) pairs of
    // the ok rows with a finite latency, in row order, which then go through the grouped
    // ingest of `sketch::sketch_groups` (`sketch::groups::ingest_groups`), so the sketches
    // are identical. Large batches build the sketches on a second thread next to the
    // counting (the ingest itself then stays on that thread). The sketches: one per code
    // `0..=max code`, as `sketch_groups` returns them (times the plot windows when sketched
    // by window).
    if sketch_windows == Some(0) {
        return Err(QcoreError::invalid("sketch_windows", "must be at least 1"));
    }
    let (k, p) = match sketch_windows {
        Some(k) => (k, w.n_windows.div_ceil(k)),
        None => (1, 1),
    };
    let topw = (w.n_windows - 1) as f64;
    let n_sk = if template.is_some() && latency.is_some() {
        codes.iter().max().map_or(0, |&m| m + 1) as usize * p
    } else {
        0
    };
    let threaded = start.len() >= 1 << 16 && n_sk > 0;
    let sketch_all = |pairs: &mut Pairs| -> Result<Vec<QuantileSketch>> {
        let (Some(t), Some(lat)) = (template, latency) else {
            return Ok(Vec::new());
        };
        let n = lat.len();
        if pairs.codes.len() < n {
            pairs.codes.resize(n, 0);
            pairs.values.resize(n, 0.0);
        }
        let (oc, ov) = (&mut pairs.codes[..n], &mut pairs.values[..n]);
        // Every row is written at the next free slot, which advances past the kept rows
        // only (branch-free).
        let mut m = 0usize;
        if sketch_windows.is_some() {
            // The plot window of each window (a table while it is small, else a division).
            let plot: Vec<u32> = if w.n_windows <= 1 << 20 {
                (0..w.n_windows).map(|i| (i / k) as u32).collect()
            } else {
                Vec::new()
            };
            let mut wins = [0u32; CHUNK];
            for (((cb, kb), lb), sb) in codes
                .chunks(CHUNK)
                .zip(cls.chunks(CHUNK))
                .zip(lat.chunks(CHUNK))
                .zip(start.chunks(CHUNK))
            {
                // The window indices of the block first (one vectorised pass); each is in
                // 0..n_windows (`index_f` clips to the last window).
                for (o, &t) in wins.iter_mut().zip(sb) {
                    *o = index_f(t, w.t0, w.bin, w.index_limit, topw) as u32;
                }
                for (((&c, &k_), &v), &i) in cb.iter().zip(kb).zip(lb).zip(&wins) {
                    let win = match plot.get(i as usize) {
                        Some(&q) => q as usize,
                        None => i as usize / k,
                    };
                    oc[m] = (c as usize * p + win) as i64;
                    ov[m] = v;
                    m += usize::from(k_ == 0 && v.is_finite());
                }
            }
        } else {
            for ((&c, &k_), &v) in codes.iter().zip(cls).zip(lat) {
                oc[m] = c;
                ov[m] = v;
                m += usize::from(k_ == 0 && v.is_finite());
            }
        }
        crate::sketch::groups::ingest_groups(&oc[..m], &ov[..m], n_sk, t, !threaded)
    };
    let mut pairs = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let sketches = if threaded {
        let r = std::thread::scope(|sc| {
            let hdl = sc.spawn(|| sketch_all(&mut pairs));
            count(&mut st, &mut tab);
            hdl.join()
        });
        match r {
            Ok(r) => r,
            Err(_) => Err(QcoreError::data("the sketch thread failed")),
        }
    } else {
        count(&mut st, &mut tab);
        sketch_all(&mut pairs)
    };
    if pairs.codes.capacity() <= SCRATCH_KEEP {
        SCRATCH.with(|s| *s.borrow_mut() = pairs);
    }
    st.sketches = sketches?;
    for (cell, t) in tab.chunks_exact(3).enumerate() {
        let grp = cell / nw;
        st.windows[cell] = t[0] + t[1] + t[2];
        st.errors[cell] = t[1];
        for (o, &v) in st.outcomes[grp * 3..grp * 3 + 3].iter_mut().zip(t) {
            *o += v;
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::little::littles_law;

    fn win(n: usize) -> Windows {
        Windows {
            t0: 0.0,
            t1: 10.0,
            bin: 1.0,
            n_windows: n,
            n_end: n + 2,
            index_limit: 2f64.powi(31),
            edge: Some(9.5),
        }
    }

    #[test]
    fn matches_separate_passes() {
        let s = [0.5, 1.5, 2.0, 9.5, 3.0, 4.2, 9.5];
        let e = [1.0, 4.0, f64::NAN, 11.0, 2.0, 5.0, 12.5];
        let l = [0.5, 2.5, f64::NAN, 1.5, -1.0, 0.8, 3.0];
        let k = [0i8, 1, 0, 0, 0, 2, 1];
        let c = [0i64, 1, 0, 0, 1, 1, 0];
        let r = batch_stats(&c, &s, &k, Some(&e), Some(&l), 2, win(10), None).unwrap();
        assert_eq!(r.outcomes, vec![3, 1, 0, 1, 1, 1]);
        assert_eq!((r.smin[0], r.smax[0]), (0.5, 9.5));
        assert_eq!((r.smin[1], r.smax[1]), (1.5, 4.2));
        assert_eq!(r.windows[9], 2);
        assert_eq!(r.windows[10 + 4], 1);
        // the error rows: row 6 (group 0, window 9) and row 1 (group 1, window 1)
        let mut errs = vec![0i64; 20];
        errs[9] = 1;
        errs[10 + 1] = 1;
        assert_eq!(r.errors, errs);
        // completed: group 0 rows 0, 3, 6; group 1 rows 1, 4 (row 5 incomplete)
        assert_eq!(r.at_edge, vec![2, 0]);
        assert_eq!(r.ends[11], 2); // 11.0 and 12.5 land in the last end window
        for (g, rows) in [(0usize, vec![0usize, 3, 6]), (1, vec![1, 4])] {
            let ss: Vec<f64> = rows.iter().map(|&i| s[i]).collect();
            let ee: Vec<f64> = rows.iter().map(|&i| e[i]).collect();
            let ll = littles_law(&ss, &ee, Some(0.0), Some(10.0), None, 0.02, 0.95).unwrap();
            // the same exact sums as the accumulator behind littles_law: equal bits
            assert_eq!(r.clipped[g].to_f64() / 10.0, ll.l);
            assert_eq!(r.arrivals[g] as u64, ll.arrivals);
            assert_eq!(r.resp[g].to_f64() / r.arrivals[g] as f64, ll.mean_response);
        }
    }

    #[test]
    fn little_sums_do_not_depend_on_the_cut() {
        // Batches of 1, 7 and 1000 rows give the one-pass sums to the last bit, and those
        // are the sums of the accumulator behind `littles_law` over each group's rows;
        // more than 2048 completed rows a group, and terms far below and above the
        // window's length (summed apart).
        let mut r = crate::sim::rng::Rng::new(7);
        let (n, g, w) = (20_000usize, 2usize, win(10));
        let codes: Vec<i64> = (0..n).map(|_| r.index(g) as i64).collect();
        let cls: Vec<i8> = (0..n).map(|_| r.index(3) as i8).collect();
        let (mut start, mut lat) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let (s, l) = match r.index(40) {
                0 => (r.uniform() * 11.0, f64::NAN),
                1 => (1e-300, 1e-300),
                2 => (r.uniform() * 9.0, 1e6),
                3..=22 => (r.uniform() * 8.0, 1.5), // one binade: a slot's flush
                _ => (r.uniform() * 11.0 - 0.5, r.uniform() * 3.0),
            };
            start.push(s);
            lat.push(l);
        }
        let end: Vec<f64> = start.iter().zip(&lat).map(|(s, l)| s + l).collect();
        let one = |rg: std::ops::Range<usize>| {
            batch_stats(
                &codes[rg.clone()],
                &start[rg.clone()],
                &cls[rg.clone()],
                Some(&end[rg.clone()]),
                Some(&lat[rg]),
                g,
                w,
                None,
            )
            .unwrap()
        };
        let whole = one(0..n);
        for cut in [1usize, 7, 1000] {
            let (mut c, mut p, mut a) = (
                vec![ExactSum::new(); g],
                vec![ExactSum::new(); g],
                vec![0; g],
            );
            for lo in (0..n).step_by(cut) {
                let b = one(lo..(lo + cut).min(n));
                for k in 0..g {
                    c[k].add_sum(&b.clipped[k]);
                    p[k].add_sum(&b.resp[k]);
                    a[k] += b.arrivals[k];
                }
            }
            assert_eq!((&c, &p, &a), (&whole.clipped, &whole.resp, &whole.arrivals));
        }
        for k in 0..g {
            let rows: Vec<usize> = (0..n)
                .filter(|&i| codes[i] == k as i64 && cls[i] < 2 && lat[i].is_finite())
                .collect();
            let ss: Vec<f64> = rows.iter().map(|&i| start[i]).collect();
            let ee: Vec<f64> = rows.iter().map(|&i| end[i]).collect();
            let mut la =
                crate::accum::LittleAccumulator::window_pass(w.t0, w.t1, f64::NEG_INFINITY, None)
                    .unwrap();
            la.update(&ss, &ee).unwrap();
            let (cl, rs, arr) = la.window_sums().unwrap();
            assert_eq!(cl, &whole.clipped[k]);
            assert_eq!(rs, &whole.resp[k]);
            assert_eq!(arr, whole.arrivals[k] as u64);
        }
    }

    #[test]
    fn empty_and_errors() {
        let r = batch_stats(&[], &[], &[], Some(&[]), Some(&[]), 3, win(4), None).unwrap();
        assert!(r.outcomes.iter().all(|&v| v == 0));
        assert_eq!(r.smin, vec![f64::INFINITY; 3]);
        let err = batch_stats(&[0], &[f64::NAN], &[0], None, None, 1, win(4), None).unwrap_err();
        assert_eq!(err.to_string(), "start contains NaN at index 0");
        assert!(batch_stats(&[1], &[1.0], &[0], None, None, 1, win(4), None).is_err());
        assert!(batch_stats(&[0], &[1.0], &[3], None, None, 1, win(4), None).is_err());
        assert!(batch_stats(&[0], &[1.0], &[0], Some(&[1.0]), None, 1, win(4), None).is_err());
    }

    #[test]
    fn sketches_by_window_merge_into_the_groups() {
        let n = 5000;
        let c: Vec<i64> = (0..n).map(|i| (i * 7 % 3) as i64).collect();
        let s: Vec<f64> = (0..n).map(|i| i as f64 * 0.002).collect();
        let k: Vec<i8> = (0..n).map(|i| i8::from(i % 11 == 0)).collect();
        let l: Vec<f64> = (0..n)
            .map(|i| 0.01 + (i * 37 % 101) as f64 * 1e-3)
            .collect();
        let e: Vec<f64> = s.iter().zip(&l).map(|(a, b)| a + b).collect();
        let t = QuantileSketch::with_limit(0.01, None).unwrap();
        let by_group = batch_stats(&c, &s, &k, Some(&e), Some(&l), 3, win(10), Some(&t)).unwrap();
        let by_window = batch_stats_windows(
            &c,
            &s,
            &k,
            Some(&e),
            Some(&l),
            3,
            win(10),
            Some(&t),
            Some(3),
        )
        .unwrap();
        let p = 10usize.div_ceil(3);
        assert_eq!(by_window.sketches.len(), 3 * p);
        for g in 0..3 {
            let mut merged = t.empty_like();
            for sk in &by_window.sketches[g * p..(g + 1) * p] {
                merged.merge(sk).unwrap();
            }
            assert_eq!(merged.to_bytes(), by_group.sketches[g].to_bytes());
        }
        // each window's sketch holds the ok latencies of the group's rows starting in it
        let wi = window_indices(&s, &win(10)).unwrap();
        for (j, sk) in by_window.sketches.iter().enumerate() {
            let (g, pw) = (j / p, j % p);
            let mut want = t.empty_like();
            let vals: Vec<f64> = (0..n)
                .filter(|&i| c[i] as usize == g && wi[i] as usize / 3 == pw && k[i] == 0)
                .map(|i| l[i])
                .collect();
            want.add_slice(&vals).unwrap();
            assert_eq!(sk.to_bytes(), want.to_bytes());
        }
        assert!(batch_stats_windows(
            &c,
            &s,
            &k,
            Some(&e),
            Some(&l),
            3,
            win(10),
            Some(&t),
            Some(0)
        )
        .is_err());
        assert_eq!(by_window.windows, by_group.windows);
    }

    #[test]
    fn sketches_match_sketch_groups() {
        // both the sequential path and the threaded one (at least 2^16 rows)
        for n in [1000usize, 70_000] {
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut c = Vec::with_capacity(n);
            let mut s = Vec::with_capacity(n);
            let mut k = Vec::with_capacity(n);
            let mut l = Vec::with_capacity(n);
            for i in 0..n {
                let r = next();
                c.push((r % 5) as i64);
                k.push(((r >> 8) % 3) as i8);
                s.push(i as f64 * 1e-3);
                let v = ((r >> 16) % 100_000) as f64 * 1e-3;
                l.push(if (r >> 40) % 50 == 0 { f64::NAN } else { v });
            }
            let e: Vec<f64> = s.iter().zip(&l).map(|(a, b)| a + b).collect();
            let t = QuantileSketch::new(0.01).unwrap();
            let r = batch_stats(&c, &s, &k, Some(&e), Some(&l), 5, win(10), Some(&t)).unwrap();
            let keep: Vec<usize> = (0..n).filter(|&i| k[i] == 0 && l[i].is_finite()).collect();
            let kc: Vec<i64> = keep.iter().map(|&i| c[i]).collect();
            let kl: Vec<f64> = keep.iter().map(|&i| l[i]).collect();
            let sep = crate::sketch::sketch_groups(&kc, &kl, None, &t).unwrap();
            assert_eq!((r.sketches.len(), sep.len()), (5, 5));
            for (a, b) in r.sketches.iter().zip(&sep) {
                assert_eq!(a.to_bytes(), b.to_bytes());
            }
        }
    }

    #[test]
    fn sketches_equal_value_by_value_on_every_grouped_path() {
        // sketch codes: few (one read into per-group tallies), up to 256 (gathered a chunk
        // at a time), more (a counting sort), and sorted codes (in place); latencies with
        // zeros, negatives, subnormals and non-finite values; the threaded kernel too
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let t = QuantileSketch::new(0.01).unwrap();
        for (n, groups, windows, sorted, subnormal) in [
            (3000usize, 4usize, None, false, false),
            (3000, 4, None, false, true),
            (70_000, 3, Some(2usize), false, false),
            (70_000, 3, None, true, false),
            (20_000, 300, None, false, false),
            (20_000, 7, Some(1), false, true),
            (20_000, 40, Some(1), true, false),
        ] {
            let mut c: Vec<i64> = (0..n).map(|_| (next() % groups as u64) as i64).collect();
            if sorted {
                c.sort_unstable();
            }
            let s: Vec<f64> = (0..n).map(|i| i as f64 * 10.0 / n as f64).collect();
            let k: Vec<i8> = (0..n)
                .map(|_| [0i8, 0, 0, 0, 0, 1, 2][(next() % 7) as usize])
                .collect();
            let l: Vec<f64> = (0..n)
                .map(|i| match next() % 40 {
                    0 => 0.0,
                    1 => -((next() % 1000) as f64) * 1e-3,
                    2 => f64::NAN,
                    3 => f64::INFINITY,
                    4 if subnormal && i % 5 == 0 => f64::from_bits(1 + next() % 1000),
                    _ => ((next() % 6000) as f64 * 1e-3 - 3.0).exp(),
                })
                .collect();
            let e: Vec<f64> = s.iter().zip(&l).map(|(a, b)| a + b.abs()).collect();
            let w = win(10);
            let r =
                batch_stats_windows(&c, &s, &k, Some(&e), Some(&l), groups, w, Some(&t), windows)
                    .unwrap();
            let p = windows.map_or(1, |kk| 10usize.div_ceil(kk));
            let wi = window_indices(&s, &w).unwrap();
            let mut want: Vec<QuantileSketch> = (0..groups * p).map(|_| t.empty_like()).collect();
            for i in 0..n {
                if k[i] == 0 && l[i].is_finite() {
                    let j = match windows {
                        Some(kk) => c[i] as usize * p + wi[i] as usize / kk,
                        None => c[i] as usize,
                    };
                    want[j].add(l[i]).unwrap();
                }
            }
            assert_eq!(r.sketches.len(), want.len(), "n {n} groups {groups}");
            for (j, (a, b)) in r.sketches.iter().zip(&want).enumerate() {
                let ctx = format!("n {n} groups {groups} windows {windows:?} sketch {j}");
                assert_eq!(a.to_bytes(), b.to_bytes(), "{ctx}");
                assert_eq!(a.sum().to_bits(), b.sum().to_bits(), "{ctx}");
            }
        }
    }

    #[test]
    fn index_is_truncating_cast() {
        assert_eq!(index(-0.5, 0.0, 1.0, 2f64.powi(31), 5), 0);
        assert_eq!(index(f64::NAN, 0.0, 1.0, 2f64.powi(31), 5), 0);
        assert_eq!(index(1e12, 0.0, 1.0, 2f64.powi(31), 5), 0);
        assert_eq!(index(1e12, 0.0, 1.0, 2f64.powi(63), 5), 4);
        assert_eq!(index(3.7, 0.0, 1.0, 2f64.powi(31), 5), 3);
    }

    #[test]
    fn window_indices_are_the_counted_windows() {
        let s = [0.5, 1.5, 2.0, 9.5, 3.0, 4.2, 9.5, 25.0, -3.0, 1e12];
        let w = win(10);
        let idx = window_indices(&s, &w).unwrap();
        let c = [0i64; 10];
        let k = [0i8; 10];
        let r = batch_stats(&c, &s, &k, None, None, 1, w, None).unwrap();
        let mut counted = vec![0i64; 10];
        for &i in &idx {
            counted[i as usize] += 1;
        }
        assert_eq!(counted, r.windows);
        // past the last window: the last; before t0 or past the index limit: window 0
        assert_eq!(idx[7..], [9, 0, 0]);
        assert!(window_indices(&s, &Windows { n_windows: 0, ..w }).is_err());
    }

    #[test]
    fn avx2_and_portable_builds_agree() {
        // The dispatched `fold` (AVX2 build on an AVX2 machine) against `fold_impl` called
        // from this portable test, with and without completed rows.
        let mut r = crate::sim::rng::Rng::new(19);
        let empty = |g: usize, w: &Windows| BatchStats {
            n_groups: g,
            outcomes: vec![0; g * 3],
            windows: vec![0; g * w.n_windows],
            errors: vec![0; g * w.n_windows],
            smin: vec![f64::INFINITY; g],
            smax: vec![f64::NEG_INFINITY; g],
            done_starts: vec![0; g * w.n_end],
            ends: vec![0; g * w.n_end],
            clipped: vec![ExactSum::new(); g],
            arrivals: vec![0; g],
            resp: vec![ExactSum::new(); g],
            at_edge: vec![0; g],
            sketches: Vec::new(),
        };
        for n in [0, 1, 9, 100, 2047, 2048, 5000] {
            let g = 1 + r.index(4);
            let w = win(10);
            let codes: Vec<i64> = (0..n).map(|_| r.index(g) as i64).collect();
            let start: Vec<f64> = (0..n).map(|_| r.uniform() * 12.0 - 1.0).collect();
            let cls: Vec<i8> = (0..n).map(|_| r.index(3) as i8).collect();
            let end: Vec<f64> = start
                .iter()
                .map(|&s| match r.index(8) {
                    0 => f64::NAN,
                    1 => s - 0.5,
                    _ => s + r.uniform() * 4.0,
                })
                .collect();
            let lat: Vec<f64> = start.iter().zip(&end).map(|(s, e)| e - s).collect();
            for done in [None, Some((&end[..], &lat[..]))] {
                let (mut a, mut b) = (empty(g, &w), empty(g, &w));
                let mut ta = vec![0i64; g * w.n_windows * 3];
                let mut tb = ta.clone();
                fold(&mut a, &mut ta, &codes, &start, &cls, done, &w);
                fold_impl(&mut b, &mut tb, &codes, &start, &cls, done, &w);
                assert_eq!(format!("{a:?}"), format!("{b:?}"));
                assert_eq!(ta, tb);
            }
        }
    }
}
