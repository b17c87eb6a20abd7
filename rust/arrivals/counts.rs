//! Exact counts of timestamps per fixed window.

use crate::error::{QcoreError, Result};

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

/// One pass over `values`: finiteness (an error naming `name` and the first bad index),
/// minimum, maximum and sortedness.
pub fn scan(name: &str, values: &[f64]) -> Result<Scan> {
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let mut unsorted = 0u32;
    let mut bad = false;
    let mut prev = values.first().copied().unwrap_or(0.0);
    const CH: usize = 256;
    for chunk in values.chunks(CH) {
        for &v in chunk {
            bad |= !v.is_finite();
            min = min.min(v);
            max = max.max(v);
            unsorted |= u32::from(v < prev);
            prev = v;
        }
        if bad {
            break;
        }
    }
    if bad {
        crate::error::check_finite(name, values)?;
    }
    Ok(Scan {
        n: values.len(),
        min,
        max,
        sorted: unsorted == 0,
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
    if !(k < MAX_WINDOWS as f64) {
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
                return Err(QcoreError::invalid(name, format!("must be finite, got {v}")));
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
    let idx = |t: f64| ((t - start) / window).floor();
    let nbf = nb as f64;
    let log_n = (usize::BITS - ts.len().leading_zeros()) as usize + 1;
    if sorted && nb.saturating_mul(log_n) < ts.len() {
        // Boundaries by binary search: window k holds the t with idx(t) == k and t < limit.
        let lo = ts.partition_point(|&t| idx(t) < 0.0);
        let hi = ts.partition_point(|&t| t < limit && idx(t) < nbf);
        let mut pos = lo;
        for (k, c) in counts.iter_mut().enumerate() {
            let kf = (k + 1) as f64;
            let next = pos + ts[pos..hi].partition_point(|&t| idx(t) < kf);
            *c = (next - pos) as i64;
            pos = next;
        }
        return counts;
    }
    for &t in ts {
        let k = idx(t);
        if k >= 0.0 && k < nbf && t < limit {
            counts[k as usize] += 1;
        }
    }
    counts
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
        let nb = ((ts.iter().cloned().fold(f64::MIN, f64::max) - 3.0) / 7.5).floor() as usize + 1;
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
        assert_eq!(window_counts(&rev, 100.0, Some(50.0), Some(620.0)).unwrap(), a);
    }

    #[test]
    fn edge_cases() {
        assert!(window_counts(&[], 1.0, None, None).unwrap().is_empty());
        assert_eq!(window_counts(&[], 1.0, Some(0.0), Some(3.0)).unwrap(), vec![0, 0, 0]);
        assert_eq!(window_counts(&[1.0, 2.0, 2.0], 1.0, None, None).unwrap(), vec![1, 2]);
        let e = window_counts(&[1.0, f64::NAN], 1.0, None, None).unwrap_err();
        assert_eq!(e.to_string(), "timestamps contains NaN at index 1");
        assert!(window_counts(&[1.0], 0.0, None, None).is_err());
        assert!(window_counts(&[1.0], 1.0, Some(2.0), Some(1.0)).is_err());
        assert!(window_counts(&[0.0, 1e12], 1e-3, None, None).is_err());
    }
}
