//! Exact counts of timestamps per fixed window.

use crate::error::{QcoreError, Result};
use crate::simd::avx2_dispatch;

/// The most windows a single call may create (8 bytes each).
pub const MAX_WINDOWS: usize = 200_000_000;

/// Summary of one validation pass over timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scan {
    /// Number of values.
    pub n: usize,
    /// Smallest value (`+inf` when empty).
    pub min: f64,
    /// Largest value (`-inf` when empty).
    pub max: f64,
    /// Whether the values are in non-decreasing order.
    pub sorted: bool,
}

avx2_dispatch! {
    /// One pass over `values`: finiteness (an error naming `name` and the first bad index),
    /// minimum, maximum and sortedness. Written in 8 independent lanes so that it vectorises.
    pub fn scan(name: &str, values: &[f64]) -> Result<Scan> => scan_impl
}

#[inline(always)]
fn scan_impl(name: &str, values: &[f64]) -> Result<Scan> {
    const L: usize = 8;
    const BLOCK: usize = 1 << 14;
    let n = values.len();
    let mut mn = [f64::INFINITY; L];
    let mut mx = [f64::NEG_INFINITY; L];
    let mut bad = [false; L];
    let mut dec = [false; L];
    // Lane pass over i in 0..body, comparing values[i] with values[i + 1].
    let body = n.saturating_sub(1) / L * L;
    let mut i = 0;
    while i < body {
        let stop = (i + BLOCK).min(body);
        while i < stop {
            let a = &values[i..i + L + 1];
            for j in 0..L {
                let v = a[j];
                let w = a[j + 1];
                mn[j] = if v < mn[j] { v } else { mn[j] };
                mx[j] = if v > mx[j] { v } else { mx[j] };
                // v - v is NaN for NaN and ±inf
                bad[j] |= !v.is_finite();
                dec[j] |= w < v;
            }
            i += L;
        }
        if bad.iter().any(|&b| b) {
            break;
        }
    }
    let mut min = mn.iter().fold(f64::INFINITY, |a, &b| a.min(b));
    let mut max = mx.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut is_bad = bad.iter().any(|&b| b);
    let mut unsorted = dec.iter().any(|&b| b);
    if !is_bad {
        for k in body..n {
            let v = values[k];
            min = min.min(v);
            max = max.max(v);
            is_bad |= !v.is_finite();
            if k + 1 < n {
                unsorted |= values[k + 1] < v;
            }
        }
    }
    if is_bad {
        crate::error::check_finite(name, values)?;
    }
    Ok(Scan {
        n,
        min,
        max,
        sorted: !unsorted,
    })
}

pub(crate) fn check_window(window: f64) -> Result<()> {
    if !(window.is_finite() && window > 0.0) {
        return Err(QcoreError::invalid(
            "window",
            format!("must be a positive finite number of seconds, got {window}"),
        ));
    }
    Ok(())
}

pub(crate) fn check_n_windows(span: f64, window: f64) -> Result<usize> {
    let k = (span / window).ceil();
    if k.is_nan() || k >= MAX_WINDOWS as f64 {
        return Err(QcoreError::invalid(
            "window",
            format!(
                "is too small for the time span: {span} s / {window} s would make {k:.0} windows \
                 (limit {MAX_WINDOWS})"
            ),
        ));
    }
    Ok(k as usize)
}

/// Exact counts per half-open window `[start + k·window, start + (k+1)·window)`.
///
/// The window of a timestamp `t` is `floor((t - start) / window)` in float64 arithmetic;
/// timestamps before `start` or at/after `end` are ignored. Defaults: `start` is the
/// smallest timestamp, and without `end` the windows run until the one holding the
/// largest timestamp (so every timestamp ≥ start is counted). With `end`, there are
/// `ceil((end - start) / window)` windows and the last one is clipped at `end`.
/// Empty windows are included. Empty input gives no windows unless both `start` and
/// `end` are given. NaN or infinite timestamps are an error.
///
/// Sorted input (detected in the validation pass) is counted by binary search of the
/// window boundaries when there are few windows; otherwise one pass computes each
/// timestamp's window directly (no sort).
pub fn window_counts(
    timestamps: &[f64],
    window: f64,
    start: Option<f64>,
    end: Option<f64>,
) -> Result<Vec<i64>> {
    check_window(window)?;
    for (name, v) in [("start", start), ("end", end)] {
        if let Some(v) = v {
            if !v.is_finite() {
                return Err(QcoreError::invalid(
                    name,
                    format!("must be finite, got {v}"),
                ));
            }
        }
    }
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            return Err(QcoreError::invalid(
                "end",
                format!("({e}) is before start ({s})"),
            ));
        }
    }
    if let Some(c) = sorted_fast_path(timestamps, window, start, end)? {
        return Ok(c);
    }
    let sc = scan("timestamps", timestamps)?;
    let start = match start {
        Some(s) => s,
        // No data and no start: nothing to count.
        None if sc.n == 0 => return Ok(Vec::new()),
        None => sc.min,
    };
    let nb = match end {
        Some(e) => {
            if e < start {
                return Err(QcoreError::invalid(
                    "end",
                    format!("({e}) is before the first timestamp ({start})"),
                ));
            }
            check_n_windows(e - start, window)?
        }
        None => {
            if sc.n == 0 || sc.max < start {
                0
            } else {
                let k = ((sc.max - start) / window).floor();
                check_n_windows(k * window, window)?;
                k as usize + 1
            }
        }
    };
    let limit = end.unwrap_or(f64::INFINITY);
    Ok(count_into(timestamps, sc.sorted, start, window, nb, limit))
}

/// Sorted input, few windows: validate and find the window transitions in one pass (a
/// read of the array, split across cores). `Ok(None)` when the input turns out not to be
/// sorted, holds a non-finite value, or has too many windows for this path: the caller then
/// takes the general path (which reports errors with the first bad index).
fn sorted_fast_path(
    ts: &[f64],
    window: f64,
    start: Option<f64>,
    end: Option<f64>,
) -> Result<Option<Vec<i64>>> {
    let n = ts.len();
    if n < (1 << 16) {
        return Ok(None);
    }
    let (first, last) = (ts[0], ts[n - 1]);
    if !(first.is_finite() && last.is_finite() && first <= last) {
        return Ok(None);
    }
    // If sorted, the first value is the minimum.
    let start = start.unwrap_or(first);
    let limit = end.unwrap_or(f64::INFINITY);
    let top = last.min(limit);
    if top < start {
        return Ok(None);
    }
    let est = (top - start) / window;
    // Worth it only when windows are few next to values (each window costs a transition).
    if !(est.is_finite() && est * 16.0 < n as f64) {
        return Ok(None);
    }
    let nb_cap = match end {
        Some(e) => Some(check_n_windows(e - start, window)?),
        None => None,
    };
    let cap = nb_cap.unwrap_or(usize::MAX);
    let threads = if n < (1 << 20) {
        1
    } else {
        crate::threads::max_threads().clamp(1, 8)
    };
    let chunk = n.div_ceil(threads);
    let bounds: Vec<(usize, usize)> = (0..n)
        .step_by(chunk)
        .map(|a| (a, (a + chunk).min(n)))
        .collect();
    let parts: Vec<Option<ChunkMarks>> = if bounds.len() == 1 {
        vec![Some(chunk_marks(ts, 0, n, start, window, cap, limit))]
    } else {
        std::thread::scope(|sc| {
            let handles: Vec<_> = bounds[1..]
                .iter()
                .map(|&(a, b)| sc.spawn(move || chunk_marks(ts, a, b, start, window, cap, limit)))
                .collect();
            let mut out = vec![Some(chunk_marks(
                ts,
                bounds[0].0,
                bounds[0].1,
                start,
                window,
                cap,
                limit,
            ))];
            out.extend(handles.into_iter().map(|h| Some(crate::threads::join(h))));
            out
        })
    };
    let mut marks: Vec<(usize, usize)> = Vec::new();
    let mut term = n;
    for p in parts {
        let Some(p) = p else { return Ok(None) };
        if !p.ok {
            return Ok(None);
        }
        if term < n {
            continue; // everything after the terminator is validated but not counted
        }
        for m in p.marks {
            if marks.last().is_none_or(|l| l.0 != m.0) {
                marks.push(m);
            }
        }
        if let Some(t) = p.term {
            term = t;
        }
    }
    let nb = match nb_cap {
        Some(nb) => nb,
        None => match marks.last() {
            Some(&(k, _)) => {
                check_n_windows(k as f64 * window, window)?;
                k + 1
            }
            None => 0,
        },
    };
    let mut counts = vec![0i64; nb];
    for (j, &(k, i)) in marks.iter().enumerate() {
        let next = marks.get(j + 1).map_or(term, |m| m.1);
        if k < nb {
            counts[k] = (next - i) as i64;
        }
    }
    Ok(Some(counts))
}

/// Window transitions found in one chunk of sorted input.
struct ChunkMarks {
    /// The chunk is finite and sorted (and so is its link to the previous chunk).
    ok: bool,
    /// (window, global index of its first value in this chunk), ascending.
    marks: Vec<(usize, usize)>,
    /// Global index of the first value past the counted range, if in this chunk.
    term: Option<usize>,
}

avx2_dispatch! {
    fn chunk_marks(
        ts: &[f64],
        lo: usize,
        hi: usize,
        start: f64,
        window: f64,
        cap: usize,
        limit: f64,
    ) -> ChunkMarks => chunk_marks_impl
}

// `!(next >= prev)` is deliberate: unlike `next < prev` it is also true for NaN.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
#[inline(always)]
fn chunk_marks_impl(
    ts: &[f64],
    lo: usize,
    hi: usize,
    start: f64,
    window: f64,
    cap: usize,
    limit: f64,
) -> ChunkMarks {
    const B: usize = 16;
    let capf = cap as f64;
    let seg = &ts[lo..hi];
    let mut out = ChunkMarks {
        ok: true,
        marks: Vec::new(),
        term: None,
    };
    // b: the smallest value that starts a new window (or ends the counted range).
    let Some(mut b) = boundary(start, window, 0.0).map(|v| v.min(limit)) else {
        out.ok = false;
        return out;
    };
    let slow = |i: usize, t: f64, b: &mut f64, out: &mut ChunkMarks| {
        if out.term.is_some() {
            *b = f64::INFINITY;
        } else if t >= limit {
            out.term = Some(i);
            *b = f64::INFINITY;
        } else {
            let x = (t - start) / window;
            if x >= capf {
                out.term = Some(i);
                *b = f64::INFINITY;
            } else {
                let k = x as usize;
                out.marks.push((k, i));
                match boundary(start, window, (k + 1) as f64) {
                    // values at or past `limit` must stop the count too
                    Some(nb) => *b = nb.min(limit),
                    None => out.ok = false,
                }
            }
        }
    };
    let mut prev = if lo > 0 { ts[lo - 1] } else { seg[0] };
    let n = seg.len();
    let mut i = 0;
    while i + B <= n {
        let blk = &seg[i..i + B];
        // `!(next >= prev)` catches both disorder and NaN; with the first and last values
        // finite (checked by the caller) a sorted array holds no infinity either.
        let mut bad = !(blk[0] >= prev);
        for j in 0..B - 1 {
            bad |= !(blk[j + 1] >= blk[j]);
        }
        if bad {
            out.ok = false;
            return out;
        }
        if blk[B - 1] >= b {
            for (j, &t) in blk.iter().enumerate() {
                if t >= b {
                    slow(lo + i + j, t, &mut b, &mut out);
                }
            }
        }
        prev = blk[B - 1];
        i += B;
    }
    while i < n {
        let t = seg[i];
        if !(t >= prev) {
            out.ok = false;
            return out;
        }
        if t >= b {
            slow(lo + i, t, &mut b, &mut out);
        }
        prev = t;
        i += 1;
    }
    out
}

/// Count `timestamps` into `nb` windows of `window` from `start`, ignoring `t ≥ limit`.
pub(crate) fn count_into(
    ts: &[f64],
    sorted: bool,
    start: f64,
    window: f64,
    nb: usize,
    limit: f64,
) -> Vec<i64> {
    let mut counts = vec![0i64; nb];
    if nb == 0 || ts.is_empty() {
        return counts;
    }
    // x(t) = (t - start) / window; the window index is floor(x). Every comparison below is
    // against an integer k, where floor(x) < k ⇔ x < k, so no floor is needed, and for
    // x ≥ 0 the truncating cast equals floor.
    let idx = |t: f64| (t - start) / window;
    let nbf = nb as f64;
    let log_n = (usize::BITS - ts.len().leading_zeros()) as usize + 1;
    if sorted && nb.saturating_mul(log_n) < ts.len() {
        // Boundaries by galloping search from the previous boundary (local memory
        // accesses): window k holds the t with idx(t) == k and t < limit.
        let lo = ts.partition_point(|&t| idx(t) < 0.0);
        let hi = ts.partition_point(|&t| t < limit && idx(t) < nbf);
        let seg = &ts[..hi];
        let mut pos = lo;
        for (k, c) in counts.iter_mut().enumerate() {
            let kf = (k + 1) as f64;
            let next = match boundary(start, window, kf) {
                // Every t < b has idx(t) < kf and every t ≥ b has not: compare only.
                Some(b) => {
                    let mut p = pos;
                    while p + 8 <= seg.len() && seg[p + 7] < b {
                        p += 8;
                    }
                    while p < seg.len() && seg[p] < b {
                        p += 1;
                    }
                    p
                }
                None => gallop(seg, pos, |t| idx(t) < kf),
            };
            *c = (next - pos) as i64;
            pos = next;
        }
        return counts;
    }
    let count_part = |part: &[f64], counts: &mut [i64]| {
        for &t in part {
            let x = idx(t);
            if x >= 0.0 && x < nbf && t < limit {
                counts[x as usize] += 1;
            }
        }
    };
    let threads = worker_threads(ts.len(), nb);
    if threads <= 1 {
        count_part(ts, &mut counts);
        return counts;
    }
    let chunk = ts.len().div_ceil(threads);
    let partials: Vec<Vec<i64>> = std::thread::scope(|sc| {
        let handles: Vec<_> = ts
            .chunks(chunk)
            .skip(1)
            .map(|part| {
                sc.spawn(move || {
                    let mut c = vec![0i64; nb];
                    count_part(part, &mut c);
                    c
                })
            })
            .collect();
        count_part(&ts[..chunk.min(ts.len())], &mut counts);
        handles.into_iter().map(crate::threads::join).collect()
    });
    for p in partials {
        for (c, v) in counts.iter_mut().zip(p) {
            *c += v;
        }
    }
    counts
}

/// Threads for a scatter pass over `n` values into `nb` bins: one per core when the input
/// is large and the per-thread bins are small next to it.
fn worker_threads(n: usize, nb: usize) -> usize {
    if n < (1 << 20) || nb > n / 8 {
        return 1;
    }
    crate::threads::max_threads().min(8)
}

/// The smallest float64 `b` with `(b - start) / window ≥ kf` (the predicate is monotone in
/// `b`), found from `start + kf·window` by stepping a few ulps; `None` if that takes long.
fn boundary(start: f64, window: f64, kf: f64) -> Option<f64> {
    let below = |t: f64| (t - start) / window < kf;
    let mut c = start + kf * window;
    if !c.is_finite() {
        return None;
    }
    if below(c) {
        for _ in 0..64 {
            c = next_up(c);
            if !below(c) {
                return Some(c);
            }
        }
        None
    } else {
        for _ in 0..64 {
            let d = next_down(c);
            if below(d) {
                return Some(c);
            }
            c = d;
        }
        None
    }
}

/// The next float64 above a finite `x` (as `f64::next_up`, which needs Rust 1.86).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

/// The next float64 below a finite `x`.
fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

/// First index `i ≥ pos` with `!pred(s[i])` (or `s.len()`), for a predicate that is true on
/// a prefix: exponential search from `pos`, then binary search.
fn gallop(s: &[f64], pos: usize, pred: impl Fn(f64) -> bool) -> usize {
    let n = s.len();
    if pos >= n || !pred(s[pos]) {
        return pos;
    }
    // pred(s[lo]) is true
    let mut lo = pos;
    let mut step = 1usize;
    let hi = loop {
        let probe = lo.saturating_add(step);
        if probe >= n {
            break n;
        }
        if pred(s[probe]) {
            lo = probe;
            step = step.saturating_mul(2);
        } else {
            break probe;
        }
    };
    lo + 1 + s[lo + 1..hi].partition_point(|&t| pred(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(ts: &[f64], w: f64, start: f64, nb: usize, limit: f64) -> Vec<i64> {
        let mut c = vec![0; nb];
        for &t in ts {
            let k = ((t - start) / w).floor();
            if k >= 0.0 && (k as usize) < nb && t < limit {
                c[k as usize] += 1;
            }
        }
        c
    }

    #[test]
    fn sorted_and_unsorted_agree_with_naive() {
        let mut x = 0.123_f64;
        let mut ts: Vec<f64> = (0..5000)
            .map(|_| {
                x = (x * 9301.0 + 0.4929).fract();
                x * 1000.0
            })
            .collect();
        let nb = ((ts.iter().copied().fold(f64::MIN, f64::max) - 3.0) / 7.5).floor() as usize + 1;
        let unsorted = window_counts(&ts, 7.5, Some(3.0), None).unwrap();
        assert_eq!(unsorted, naive(&ts, 7.5, 3.0, nb, f64::INFINITY));
        ts.sort_by(f64::total_cmp);
        let sorted = window_counts(&ts, 7.5, Some(3.0), None).unwrap();
        assert_eq!(sorted, unsorted);
        // few windows (binary-search path) with an end clip
        let a = window_counts(&ts, 100.0, Some(50.0), Some(620.0)).unwrap();
        assert_eq!(a.len(), 6);
        assert_eq!(a, naive(&ts, 100.0, 50.0, 6, 620.0));
        let mut rev = ts.clone();
        rev.reverse();
        assert_eq!(
            window_counts(&rev, 100.0, Some(50.0), Some(620.0)).unwrap(),
            a
        );
    }

    #[test]
    fn scan_finds_every_bad_position_and_order() {
        for n in [0usize, 1, 2, 7, 8, 9, 17, 100, 40_000] {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let sc = scan("x", &v).unwrap();
            assert!(sc.sorted);
            if n > 0 {
                assert_eq!((sc.min, sc.max), (0.0, (n - 1) as f64));
            }
            for bad in [0, n / 2, n.saturating_sub(1)] {
                if n == 0 {
                    continue;
                }
                let mut w = v.clone();
                w[bad] = f64::NAN;
                let e = scan("x", &w).unwrap_err();
                assert_eq!(e.to_string(), format!("x contains NaN at index {bad}"));
                let mut w = v.clone();
                if n > 1 {
                    w.swap(bad, if bad == 0 { 1 } else { bad - 1 });
                    assert!(!scan("x", &w).unwrap().sorted, "n={n} swap at {bad}");
                }
            }
        }
    }

    #[test]
    fn threaded_and_galloping_paths_agree() {
        let mut x = 0.3_f64;
        let ts: Vec<f64> = (0..1_500_000)
            .map(|_| {
                x = (x * 7919.0 + 0.1234).fract();
                x * 5000.0
            })
            .collect();
        let nb = ((ts.iter().copied().fold(f64::MIN, f64::max) - 0.0) / 3.0).floor() as usize + 1;
        let threaded = window_counts(&ts, 3.0, Some(0.0), None).unwrap();
        assert_eq!(threaded, naive(&ts, 3.0, 0.0, nb, f64::INFINITY));
        let mut sorted = ts.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(
            window_counts(&sorted, 3.0, Some(0.0), None).unwrap(),
            threaded
        );
    }

    #[test]
    fn values_on_and_next_to_window_edges() {
        // Timestamps exactly at start + k·w and one ulp either side, many per window so the
        // sorted path searches boundaries; must agree with floor((t - start)/w).
        let (start, w) = (1_700_000_000.123, 0.1);
        let mut ts = Vec::new();
        for k in 0..200 {
            let b = start + f64::from(k) * w;
            for _ in 0..120 {
                ts.extend([next_down(b), b, next_up(b)]);
            }
        }
        ts.sort_by(f64::total_cmp);
        let nb = ((ts[ts.len() - 1] - start) / w).floor() as usize + 1;
        let got = window_counts(&ts, w, Some(start), None).unwrap();
        assert_eq!(got, naive(&ts, w, start, nb, f64::INFINITY));
        let mut shuffled = ts.clone();
        shuffled.reverse();
        assert_eq!(window_counts(&shuffled, w, Some(start), None).unwrap(), got);
    }

    #[test]
    fn sorted_fast_path_matches_general_path() {
        let n = 3_000_000;
        let ts: Vec<f64> = (0..n).map(|i| 100.0 + (i as f64).sqrt() * 3.7).collect();
        let last = ts[n - 1];
        for (start, end) in [
            (None, None),
            (Some(50.0), None),
            (Some(101.0), Some(2000.0)),
            (Some(0.0), Some(last + 100.0)),
            (Some(3000.0), Some(6000.0)),
        ] {
            let fast = sorted_fast_path(&ts, 10.0, start, end).unwrap();
            let fast = fast.expect("sorted input takes the fast path");
            let s0 = start.unwrap_or(ts[0]);
            let nb = match end {
                Some(e) => ((e - s0) / 10.0).ceil() as usize,
                None => ((last - s0) / 10.0).floor() as usize + 1,
            };
            assert_eq!(fast, naive(&ts, 10.0, s0, nb, end.unwrap_or(f64::INFINITY)));
            assert_eq!(window_counts(&ts, 10.0, start, end).unwrap(), fast);
        }
        // one late value out of order: the fast path declines, the answer is still exact
        let mut u = ts.clone();
        u.swap(n - 10, n - 9_999);
        assert!(sorted_fast_path(&u, 10.0, None, None).unwrap().is_none());
        let nb = ((last - u[0]) / 10.0).floor() as usize + 1;
        assert_eq!(
            window_counts(&u, 10.0, None, None).unwrap(),
            naive(&u, 10.0, u[0], nb, f64::INFINITY)
        );
        // a NaN deep inside: error with its global index
        let mut v = ts.clone();
        v[n - 77] = f64::NAN;
        let e = window_counts(&v, 10.0, None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("timestamps contains NaN at index {}", n - 77)
        );
    }

    #[test]
    fn edge_cases() {
        assert!(window_counts(&[], 1.0, None, None).unwrap().is_empty());
        assert_eq!(
            window_counts(&[], 1.0, Some(0.0), Some(3.0)).unwrap(),
            vec![0, 0, 0]
        );
        assert_eq!(
            window_counts(&[1.0, 2.0, 2.0], 1.0, None, None).unwrap(),
            vec![1, 2]
        );
        let e = window_counts(&[1.0, f64::NAN], 1.0, None, None).unwrap_err();
        assert_eq!(e.to_string(), "timestamps contains NaN at index 1");
        assert!(window_counts(&[1.0], 0.0, None, None).is_err());
        assert!(window_counts(&[1.0], 1.0, Some(2.0), Some(1.0)).is_err());
        assert!(window_counts(&[0.0, 1e12], 1e-3, None, None).is_err());
    }

    #[test]
    fn avx2_and_portable_builds_agree() {
        // The dispatched kernels (AVX2 build on an AVX2 machine) against the `_impl` bodies
        // called from this portable test.
        let mut r = crate::sim::rng::Rng::new(19);
        for n in [0, 1, 2, 8, 9, 17, 100, 1000, 20_001] {
            for _ in 0..6 {
                let mut ts: Vec<f64> = (0..n).map(|_| r.uniform() * 1000.0).collect();
                if r.index(2) == 0 {
                    ts.sort_by(f64::total_cmp);
                }
                if n > 1 && r.index(3) == 0 {
                    let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][r.index(3)];
                    ts[r.index(n)] = bad;
                }
                match (scan("ts", &ts), scan_impl("ts", &ts)) {
                    (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => panic!("{a:?} vs {b:?}"),
                }
            }
            // chunk_marks wants finite values with a finite first and last one
            let mut ts: Vec<f64> = (0..n).map(|_| r.uniform() * 1000.0).collect();
            ts.sort_by(f64::total_cmp);
            if n > 4 && r.index(2) == 0 {
                ts.swap(1, n - 2);
            }
            if n == 0 {
                continue;
            }
            // a non-empty chunk `lo..hi`, as the callers pass
            let lo = r.index(n);
            let hi = lo + 1 + r.index(n - lo);
            for (window, cap, limit) in [(7.5, usize::MAX, f64::INFINITY), (0.3, 500, 800.0)] {
                let a = chunk_marks(&ts, lo, hi, -1.0, window, cap, limit);
                let b = chunk_marks_impl(&ts, lo, hi, -1.0, window, cap, limit);
                assert_eq!((a.ok, &a.marks, a.term), (b.ok, &b.marks, b.term));
            }
        }
    }
}
