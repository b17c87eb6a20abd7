//! Rate change points: optimal Poisson segmentation (PELT) of binned arrival counts.

use super::counts::{count_into, scan};
use crate::error::{QcoreError, Result};

/// Piecewise-constant rate fit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateChanges {
    /// Times at which the rate changes (s), ascending.
    pub times: Vec<f64>,
    /// Segment boundaries: first arrival, the change times, then the end of the last bin.
    pub boundaries: Vec<f64>,
    /// Rate of each segment (1/s): `len(times) + 1` values.
    pub rates: Vec<f64>,
    /// Arrivals in each segment.
    pub counts: Vec<i64>,
    /// Bin width used (s): the resolution of the change times.
    pub resolution: f64,
    /// Penalty per change (log-likelihood units).
    pub penalty: f64,
}

/// Negative Poisson log-likelihood of a segment with `k` events over `d` seconds, up to
/// terms that are constant across segmentations: `-k ln(k / d)`.
#[inline]
fn seg_cost(k: f64, d: f64) -> f64 {
    if k <= 0.0 {
        0.0
    } else {
        -k * (k / d).ln()
    }
}

/// Find the times at which the arrival rate changes.
///
/// The span from the first to the last arrival is cut into `bins` equal bins (default
/// `clamp(n / 4, 16, 4096)`); the segmentation of the bins into constant-rate pieces that
/// maximises the Poisson likelihood minus `penalty` per change point (default `2 ln n`)
/// is found exactly by PELT (Killick et al. 2012). Segments hold at least `min_bins`
/// bins. Change times are bin edges, so their resolution is the bin width. Needs at least
/// two arrivals at distinct times.
pub fn rate_changes(
    timestamps: &[f64],
    bins: Option<usize>,
    penalty: Option<f64>,
    min_bins: usize,
) -> Result<RateChanges> {
    let sc = scan("timestamps", timestamps)?;
    if sc.n < 2 || sc.max <= sc.min {
        return Err(QcoreError::invalid(
            "timestamps",
            "needs at least two arrivals at distinct times",
        ));
    }
    let n = sc.n;
    let b = match bins {
        Some(b) if (2..=10_000_000).contains(&b) => b,
        Some(b) => {
            return Err(QcoreError::invalid(
                "bins",
                format!("must be between 2 and 10000000, got {b}"),
            ))
        }
        None => (n / 4).clamp(16, 4096),
    };
    let pen = match penalty {
        Some(p) if p.is_finite() && p >= 0.0 => p,
        Some(p) => {
            return Err(QcoreError::invalid(
                "penalty",
                format!("must be a finite number ≥ 0, got {p}"),
            ))
        }
        None => 2.0 * (n as f64).ln(),
    };
    let min_bins = min_bins.max(1);
    if min_bins > b {
        return Err(QcoreError::invalid(
            "min_bins",
            format!("({min_bins}) exceeds the number of bins ({b})"),
        ));
    }
    let span = sc.max - sc.min;
    // Bins of width span/b; the last arrival falls at index b, so it is folded into the
    // last bin (which is closed on the right).
    let w = span / b as f64;
    let mut counts = count_into(timestamps, sc.sorted, sc.min, w, b + 1, f64::INFINITY);
    let tail = counts.pop().unwrap_or(0);
    if let Some(last) = counts.last_mut() {
        *last += tail;
    }
    let mut cum = vec![0.0f64; b + 1];
    for i in 0..b {
        cum[i + 1] = cum[i] + counts[i] as f64;
    }
    // PELT: f[t] = min_s f[s] + C(s, t) + pen, s ≤ t - min_bins.
    let mut f = vec![f64::INFINITY; b + 1];
    let mut last = vec![0usize; b + 1];
    f[0] = -pen;
    let mut cands: Vec<usize> = vec![0];
    for t in min_bins..=b {
        // s = t - min_bins becomes admissible now
        let newly = t - min_bins;
        if newly > 0 && f[newly].is_finite() {
            cands.push(newly);
        }
        let mut best = f64::INFINITY;
        let mut arg = 0;
        for &s in &cands {
            let c = f[s] + seg_cost(cum[t] - cum[s], (t - s) as f64 * w) + pen;
            if c < best {
                best = c;
                arg = s;
            }
        }
        f[t] = best;
        last[t] = arg;
        // Prune: s can never be optimal again if f[s] + C(s,t) > f[t] (K = 0 for this cost).
        let ft = f[t];
        cands.retain(|&s| {
            s + min_bins > t || f[s] + seg_cost(cum[t] - cum[s], (t - s) as f64 * w) <= ft
        });
    }
    let mut cuts = Vec::new();
    let mut t = b;
    while t > 0 {
        let s = last[t];
        cuts.push(s);
        t = s;
    }
    cuts.pop(); // the 0
    cuts.reverse();
    let mut edges = vec![0usize];
    edges.extend(&cuts);
    edges.push(b);
    let times: Vec<f64> = cuts.iter().map(|&c| sc.min + c as f64 * w).collect();
    let mut boundaries = vec![sc.min];
    boundaries.extend(&times);
    boundaries.push(sc.max);
    let mut rates = Vec::with_capacity(edges.len() - 1);
    let mut seg_counts = Vec::with_capacity(edges.len() - 1);
    for p in edges.windows(2) {
        let k = cum[p[1]] - cum[p[0]];
        rates.push(k / ((p[1] - p[0]) as f64 * w));
        seg_counts.push(k as i64);
    }
    Ok(RateChanges {
        times,
        boundaries,
        rates,
        counts: seg_counts,
        resolution: w,
        penalty: pen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_clean_step() {
        // 1/s on [0, 500), 5/s on [500, 1000): regular grids.
        let mut ts: Vec<f64> = (0..500).map(f64::from).collect();
        ts.extend((0..2500).map(|i| 500.0 + f64::from(i) * 0.2));
        let r = rate_changes(&ts, Some(100), None, 1).unwrap();
        assert_eq!(r.times.len(), 1, "{r:?}");
        assert!((r.times[0] - 500.0).abs() <= r.resolution);
        assert!((r.rates[0] - 1.0).abs() < 0.05 && (r.rates[1] - 5.0).abs() < 0.1);
        let flat: Vec<f64> = (0..1000).map(f64::from).collect();
        assert!(rate_changes(&flat, None, None, 1).unwrap().times.is_empty());
        assert!(rate_changes(&[1.0], None, None, 1).is_err());
    }
}
