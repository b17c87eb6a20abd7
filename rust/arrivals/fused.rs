//! One pass over a batch of request rows for the grouped report: per group, the outcome
//! counts, the first and last start, the arrival counts per window, and for the completed
//! rows the start and end counts per window and the Little's-law window sums.
//!
//! The window index of a time `t` is `trunc((t - t0) / bin)` clipped to `0..n`, where a
//! value that does not fit the index type (`index_limit`) or is NaN counts as 0 — the
//! same index the streaming scan computes with a non-strict integer cast.

use crate::error::{check_finite, check_same_len};
use crate::{QcoreError, Result};

/// The per-group statistics of one batch (row-major `groups × …` tables).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    pub n_groups: usize,
    /// `groups × 3`: rows that are ok (class 0), errors (1), incomplete (2).
    pub outcomes: Vec<i64>,
    /// `groups × n_windows`: starts per window.
    pub windows: Vec<i64>,
    /// First and last start per group (`+inf`/`-inf` for a group without rows).
    pub smin: Vec<f64>,
    pub smax: Vec<f64>,
    /// `groups × n_end`: starts and ends of the completed rows per window.
    pub done_starts: Vec<i64>,
    pub ends: Vec<i64>,
    /// Little's-law sums over `[t0, t1)` of the completed rows: the time in the system
    /// clipped to the window, the arrivals inside it and their summed response time.
    pub clipped: Vec<f64>,
    pub arrivals: Vec<i64>,
    pub resp: Vec<f64>,
    /// Completed rows starting exactly at `edge` (0 when `edge` is not given).
    pub at_edge: Vec<i64>,
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

#[inline(always)]
fn index(t: f64, t0: f64, bin: f64, limit: f64, n: usize) -> usize {
    let v = (t - t0) / bin;
    // NaN fails the comparison: index 0, as a null cast filled with 0
    let i = if v < limit { v as i64 } else { 0 };
    i.clamp(0, n as i64 - 1) as usize
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
    for (name, v) in [("t0", w.t0), ("t1", w.t1), ("bin", w.bin)] {
        if !v.is_finite() {
            return Err(QcoreError::invalid(
                name,
                format!("must be finite, got {v}"),
            ));
        }
    }
    if w.t1 <= w.t0 {
        return Err(QcoreError::invalid(
            "t1",
            format!("({}) must be after t0 ({})", w.t1, w.t0),
        ));
    }
    if w.bin <= 0.0 {
        return Err(QcoreError::invalid(
            "bin",
            format!("must be > 0, got {}", w.bin),
        ));
    }
    if w.n_windows == 0 || w.n_end == 0 {
        return Err(QcoreError::invalid(
            "n_windows",
            "n_windows and n_end must be at least 1",
        ));
    }
    let cells = |n: usize| {
        n_groups
            .checked_mul(n)
            .filter(|&c| c <= 1 << 31)
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
        smin: vec![f64::INFINITY; g],
        smax: vec![f64::NEG_INFINITY; g],
        done_starts: vec![0; if end.is_some() { ce } else { 0 }],
        ends: vec![0; if end.is_some() { ce } else { 0 }],
        clipped: vec![0.0; g],
        arrivals: vec![0; g],
        resp: vec![0.0; g],
        at_edge: vec![0; g],
    };
    let (t0, t1, bin, lim) = (w.t0, w.t1, w.bin, w.index_limit);
    let (nw, ne) = (w.n_windows, w.n_end);
    for ((&c, &s), &k) in codes.iter().zip(start).zip(cls) {
        let c = c as usize;
        st.outcomes[c * 3 + k as usize] += 1;
        st.windows[c * nw + index(s, t0, bin, lim, nw)] += 1;
        if s < st.smin[c] {
            st.smin[c] = s;
        }
        if s > st.smax[c] {
            st.smax[c] = s;
        }
    }
    let (Some(end), Some(lat)) = (end, latency) else {
        return Ok(st);
    };
    for i in 0..start.len() {
        let (s, e) = (start[i], end[i]);
        if cls[i] == 2 || !e.is_finite() || !lat[i].is_finite() {
            continue;
        }
        let c = codes[i] as usize;
        st.done_starts[c * ne + index(s, t0, bin, lim, ne)] += 1;
        st.ends[c * ne + index(e, t0, bin, lim, ne)] += 1;
        if w.edge == Some(s) {
            st.at_edge[c] += 1;
        }
        // Little's law over [t0, t1): as `little::littles_law` with a given window
        if e >= s {
            let lo = if s > t0 { s } else { t0 };
            let hi = if e < t1 { e } else { t1 };
            let d = hi - lo;
            if d > 0.0 {
                st.clipped[c] += d;
            }
            if s >= t0 && s < t1 {
                st.arrivals[c] += 1;
                st.resp[c] += e - s;
            }
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
        let r = batch_stats(&c, &s, &k, Some(&e), Some(&l), 2, win(10)).unwrap();
        assert_eq!(r.outcomes, vec![3, 1, 0, 1, 1, 1]);
        assert_eq!((r.smin[0], r.smax[0]), (0.5, 9.5));
        assert_eq!((r.smin[1], r.smax[1]), (1.5, 4.2));
        assert_eq!(r.windows[9], 2);
        assert_eq!(r.windows[10 + 4], 1);
        // completed: group 0 rows 0, 3, 6; group 1 rows 1, 4 (row 5 incomplete)
        assert_eq!(r.at_edge, vec![2, 0]);
        assert_eq!(r.ends[11], 2); // 11.0 and 12.5 land in the last end window
        for (g, rows) in [(0usize, vec![0usize, 3, 6]), (1, vec![1, 4])] {
            let ss: Vec<f64> = rows.iter().map(|&i| s[i]).collect();
            let ee: Vec<f64> = rows.iter().map(|&i| e[i]).collect();
            let ll = littles_law(&ss, &ee, Some(0.0), Some(10.0), None, 0.02, 0.95).unwrap();
            assert!((r.clipped[g] / 10.0 - ll.l).abs() < 1e-15);
            assert_eq!(r.arrivals[g] as u64, ll.arrivals);
            assert!((r.resp[g] / r.arrivals[g] as f64 - ll.mean_response).abs() < 1e-15);
        }
    }

    #[test]
    fn empty_and_errors() {
        let r = batch_stats(&[], &[], &[], Some(&[]), Some(&[]), 3, win(4)).unwrap();
        assert!(r.outcomes.iter().all(|&v| v == 0));
        assert_eq!(r.smin, vec![f64::INFINITY; 3]);
        let err = batch_stats(&[0], &[f64::NAN], &[0], None, None, 1, win(4)).unwrap_err();
        assert_eq!(err.to_string(), "start contains NaN at index 0");
        assert!(batch_stats(&[1], &[1.0], &[0], None, None, 1, win(4)).is_err());
        assert!(batch_stats(&[0], &[1.0], &[3], None, None, 1, win(4)).is_err());
        assert!(batch_stats(&[0], &[1.0], &[0], Some(&[1.0]), None, 1, win(4)).is_err());
    }

    #[test]
    fn index_is_truncating_cast() {
        assert_eq!(index(-0.5, 0.0, 1.0, 2f64.powi(31), 5), 0);
        assert_eq!(index(f64::NAN, 0.0, 1.0, 2f64.powi(31), 5), 0);
        assert_eq!(index(1e12, 0.0, 1.0, 2f64.powi(31), 5), 0);
        assert_eq!(index(1e12, 0.0, 1.0, 2f64.powi(63), 5), 4);
        assert_eq!(index(3.7, 0.0, 1.0, 2f64.powi(31), 5), 3);
    }
}
