//! Arrival statistics: rate with a Garwood interval, peak, dispersion, burstiness.

use super::counts::{check_window, count_into, scan, MAX_WINDOWS};
use crate::error::{QcoreError, Result};
use crate::special::gamma_p_inv;

/// Summary statistics of an arrival stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalStats {
    /// Number of arrivals.
    pub count: u64,
    /// Last minus first timestamp (s).
    pub duration: f64,
    /// Mean rate `count / duration` (1/s).
    pub rate: f64,
    /// Exact (Garwood) Poisson confidence interval of the rate.
    pub rate_ci: (f64, f64),
    /// Confidence level of `rate_ci`.
    pub confidence: f64,
    /// Window used for the window statistics (s).
    pub window: f64,
    /// Number of complete windows (starting at the first arrival).
    pub windows: u64,
    /// Largest window count divided by the window (1/s); NaN without a complete window.
    pub peak_rate: f64,
    /// Largest window count over the mean window count.
    pub peak_to_mean: f64,
    /// Coefficient of variation (population std / mean) of the inter-arrival times.
    pub cv_interarrival: f64,
    /// Variance over mean of the complete-window counts (population variance).
    pub index_of_dispersion: f64,
    /// Window sizes of the burstiness curve (window · 2^k).
    pub burstiness_windows: Vec<f64>,
    /// Index of dispersion at each window size of the curve.
    pub burstiness: Vec<f64>,
}

pub(crate) use crate::intervals::check_confidence;

/// Garwood exact Poisson interval for `k` events over `exposure` (a rate interval).
pub fn garwood(k: u64, exposure: f64, confidence: f64) -> (f64, f64) {
    let a = 1.0 - confidence;
    let kf = k as f64;
    let lo = if k == 0 {
        0.0
    } else {
        gamma_p_inv(kf, 0.5 * a)
    };
    let hi = gamma_p_inv(kf + 1.0, 1.0 - 0.5 * a);
    (lo / exposure, hi / exposure)
}

impl ArrivalStats {
    /// The exact (Garwood) Poisson interval of a rate that gives `rate_ci`: `count`
    /// events over `exposure` seconds at level `confidence`. Arguments are checked
    /// (`exposure` positive and finite, `confidence` in (0, 1)); the error names the
    /// argument. Merged partial results use it to give the same `rate_ci` bit for bit.
    pub fn rate_interval(count: u64, exposure: f64, confidence: f64) -> Result<(f64, f64)> {
        if !(exposure.is_finite() && exposure > 0.0) {
            return Err(QcoreError::invalid(
                "exposure",
                format!("must be a positive finite number, got {exposure}"),
            ));
        }
        check_confidence(confidence)?;
        Ok(garwood(count, exposure, confidence))
    }
}

/// (max, mean, population variance) of counts; NaNs when empty.
fn count_moments(c: &[i64]) -> (f64, f64, f64) {
    if c.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = c.len() as f64;
    let mut sum = 0i64;
    let mut mx = i64::MIN;
    for &v in c {
        sum += v;
        mx = mx.max(v);
    }
    let mean = sum as f64 / n;
    let var = c
        .iter()
        .map(|&v| {
            let d = v as f64 - mean;
            d * d
        })
        .sum::<f64>()
        / n;
    (mx as f64, mean, var)
}

/// Dispersion statistics of a series of window counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowCountStats {
    /// Number of windows.
    pub windows: u64,
    /// Largest count (NaN without windows).
    pub max: f64,
    /// Mean count (NaN without windows).
    pub mean: f64,
    /// Population variance of the counts (NaN without windows).
    pub variance: f64,
    /// Index of dispersion: population variance over mean (NaN when the mean is 0).
    pub index_of_dispersion: f64,
    /// Largest count over the mean count.
    pub peak_to_mean: f64,
}

/// The window statistics of [`arrival_stats`] from window counts: the one definition of
/// the index of dispersion (population variance over mean) and the peak-to-mean ratio.
/// Callers pass the complete windows only (see [`arrival_stats`]). A negative count is
/// an error naming `counts`.
pub fn window_count_stats(counts: &[i64]) -> Result<WindowCountStats> {
    if let Some(i) = counts.iter().position(|&c| c < 0) {
        return Err(QcoreError::invalid(
            "counts",
            format!("contains a negative count at index {i}"),
        ));
    }
    let (max, mean, variance) = count_moments(counts);
    Ok(WindowCountStats {
        windows: counts.len() as u64,
        max,
        mean,
        variance,
        index_of_dispersion: if mean > 0.0 {
            variance / mean
        } else {
            f64::NAN
        },
        peak_to_mean: max / mean,
    })
}

/// Index of dispersion of counts aggregated dyadically: level k merges 2^k base windows;
/// trailing windows that do not fill a merged window are dropped. Stops when fewer than
/// `min_windows` windows remain.
fn dyadic_curve(base: &[i64], window: f64, min_windows: usize) -> (Vec<f64>, Vec<f64>) {
    let mut ws = Vec::new();
    let mut ds = Vec::new();
    let mut cur: Vec<i64> = base.to_vec();
    let mut w = window;
    while cur.len() >= min_windows.max(2) {
        let (_, mean, var) = count_moments(&cur);
        ws.push(w);
        ds.push(if mean > 0.0 { var / mean } else { f64::NAN });
        cur = cur.chunks_exact(2).map(|p| p[0] + p[1]).collect();
        w *= 2.0;
    }
    (ws, ds)
}

/// The grid of [`arrival_stats`] for `count` arrivals between `min` and `max`:
/// `(duration, complete windows)`. Errors name `timestamps` (fewer than two arrivals at
/// distinct times) or `window` (too small).
pub fn arrival_grid(count: u64, min: f64, max: f64, window: f64) -> Result<(f64, usize)> {
    check_window(window)?;
    if count < 2 || max <= min {
        return Err(QcoreError::invalid(
            "timestamps",
            format!(
                "needs at least two arrivals at distinct times, got {count} value(s) spanning {} s",
                if count == 0 { 0.0 } else { max - min }
            ),
        ));
    }
    let duration = max - min;
    let nb_f = (duration / window).floor();
    if nb_f < MAX_WINDOWS as f64 {
        Ok((duration, nb_f as usize))
    } else {
        Err(QcoreError::invalid(
            "window",
            format!("is too small: {duration} s / {window} s exceeds {MAX_WINDOWS} windows"),
        ))
    }
}

impl ArrivalStats {
    /// The statistics from merged parts: `count` arrivals between `min` and `max`, the
    /// counts of the complete windows anchored at `min` (the first `windows` of
    /// `counts` are used, missing ones are zero), and `gap_ss`, the sum of the squared
    /// deviations of the inter-arrival gaps from their mean `duration / (count − 1)`.
    /// [`arrival_stats`] and [`crate::accum::ArrivalAccumulator`] finish through here.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        count: u64,
        min: f64,
        max: f64,
        counts: &[i64],
        gap_ss: f64,
        window: f64,
        confidence: f64,
        min_windows: usize,
    ) -> Result<ArrivalStats> {
        check_confidence(confidence)?;
        let (duration, nb) = arrival_grid(count, min, max, window)?;
        let mut base = vec![0i64; nb];
        let k = nb.min(counts.len());
        base[..k].copy_from_slice(&counts[..k]);
        let ws = window_count_stats(&base)?;
        let (burstiness_windows, burstiness) = dyadic_curve(&base, window, min_windows);
        let m = duration / (count - 1) as f64;
        Ok(ArrivalStats {
            count,
            duration,
            rate: count as f64 / duration,
            rate_ci: garwood(count, duration, confidence),
            confidence,
            window,
            windows: nb as u64,
            peak_rate: ws.max / window,
            peak_to_mean: ws.peak_to_mean,
            cv_interarrival: (gap_ss / (count - 1) as f64).sqrt() / m,
            index_of_dispersion: ws.index_of_dispersion,
            burstiness_windows,
            burstiness,
        })
    }
}

/// Statistics of an arrival stream at window `window` (s).
///
/// Needs at least two arrivals at distinct times (else an error naming `timestamps`).
/// Window statistics use the complete windows `[t_min + k·w, t_min + (k+1)·w)` that end
/// at or before the last arrival; with none, the peak and dispersion fields are NaN.
/// The inter-arrival CV is over the time-sorted stream (unsorted input is sorted, a
/// copy), its squared deviations summed exactly. The burstiness curve is the index of
/// dispersion at window·2^k, k = 0, 1, …, while at least `min_windows` complete windows
/// remain (formed by merging adjacent base windows).
///
/// This is [`crate::accum::ArrivalAccumulator`] over the one array, finished, so a
/// batched or distributed computation gives the same result bit for bit.
pub fn arrival_stats(
    timestamps: &[f64],
    window: f64,
    confidence: f64,
    min_windows: usize,
) -> Result<ArrivalStats> {
    check_window(window)?;
    check_confidence(confidence)?;
    crate::accum::ArrivalAccumulator::of(timestamps, window)?.finish(confidence, min_windows)
}

/// A sorted copy of finite `values` whose range is `[min, max]`: a counting scatter into
/// about n/1024 equal-width buckets (the bucket index is monotone in the value, so buckets
/// are ordered), then a sort of each small bucket. O(n) for smooth data, never worse than
/// one global sort.
pub(crate) fn bucket_sorted(values: &[f64], min: f64, max: f64) -> Vec<f64> {
    let n = values.len();
    let b = (n / 1024).max(1);
    let span = max - min;
    if n < 4096 || !(span.is_finite() && span > 0.0) {
        let mut v = values.to_vec();
        v.sort_unstable_by(f64::total_cmp);
        return v;
    }
    let scale = b as f64 / span;
    let last = b - 1;
    let bucket = |v: f64| (((v - min) * scale) as usize).min(last);
    let mut start = vec![0usize; b + 1];
    for &v in values {
        start[bucket(v) + 1] += 1;
    }
    for i in 0..b {
        start[i + 1] += start[i];
    }
    let mut out = vec![0.0f64; n];
    let mut pos = start.clone();
    for &v in values {
        let k = bucket(v);
        out[pos[k]] = v;
        pos[k] += 1;
    }
    // Sort the buckets, split across cores at bucket boundaries (disjoint slices).
    let threads = if n < (1 << 20) {
        1
    } else {
        crate::threads::max_threads().clamp(1, 8)
    };
    let sort_range = |seg: &mut [f64], offsets: &[usize], base: usize| {
        for w in offsets.windows(2) {
            let part = &mut seg[w[0] - base..w[1] - base];
            if part.len() > 1 {
                part.sort_unstable_by(f64::total_cmp);
            }
        }
    };
    if threads <= 1 {
        sort_range(&mut out, &start, 0);
        return out;
    }
    // Bucket index at which each thread's share starts (by value count).
    let mut cuts = vec![0usize];
    for t in 1..threads {
        let target = n * t / threads;
        let k = start.partition_point(|&o| o < target);
        if k > *cuts.last().unwrap_or(&0) && k < b {
            cuts.push(k);
        }
    }
    cuts.push(b);
    std::thread::scope(|sc| {
        let mut handles = Vec::new();
        let mut rest: &mut [f64] = &mut out;
        let mut base = 0usize;
        for w in cuts.windows(2) {
            let (k0, k1) = (w[0], w[1]);
            let len = start[k1] - start[k0];
            let (mine, tail) = rest.split_at_mut(len);
            rest = tail;
            let offsets = &start[k0..=k1];
            let b0 = base;
            handles.push(sc.spawn(move || sort_range(mine, offsets, b0)));
            base += len;
        }
        handles.into_iter().for_each(crate::threads::join);
    });
    out
}

/// Index of dispersion of window counts at each of `windows` (each counted directly, with
/// complete windows starting at the first arrival).
pub fn burstiness_curve(timestamps: &[f64], windows: &[f64]) -> Result<Vec<f64>> {
    for &w in windows {
        check_window(w)?;
    }
    let sc = scan("timestamps", timestamps)?;
    let duration = if sc.n == 0 { 0.0 } else { sc.max - sc.min };
    let mut out = Vec::with_capacity(windows.len());
    for &w in windows {
        let nb_f = (duration / w).floor();
        if nb_f >= MAX_WINDOWS as f64 {
            return Err(QcoreError::invalid(
                "windows",
                format!("contains {w}, too small for a {duration} s span"),
            ));
        }
        let counts = count_into(
            timestamps,
            sc.sorted,
            sc.min,
            w,
            nb_f as usize,
            f64::INFINITY,
        );
        let (_, mean, var) = count_moments(&counts);
        out.push(if mean > 0.0 { var / mean } else { f64::NAN });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garwood_known_values() {
        // scipy.stats.chi2.ppf(0.025, 20)/2, chi2.ppf(0.975, 22)/2 for k = 10
        let (lo, hi) = garwood(10, 1.0, 0.95);
        assert!((lo - 4.795_388_696_132_433_5).abs() < 1e-9, "{lo}");
        assert!((hi - 18.390_356_042_017_78).abs() < 1e-9, "{hi}");
        let (lo, hi) = garwood(0, 2.0, 0.95);
        assert_eq!(lo, 0.0);
        assert!((hi - 3.688_879_454_113_936 / 2.0).abs() < 1e-12);
    }

    #[test]
    fn rate_interval_validates_and_matches() {
        assert_eq!(
            ArrivalStats::rate_interval(10, 3.5, 0.9).unwrap(),
            garwood(10, 3.5, 0.9)
        );
        assert_eq!(
            ArrivalStats::rate_interval(0, 1e-9, 0.5).unwrap(),
            garwood(0, 1e-9, 0.5)
        );
        let msg = |e: f64, c: f64| {
            ArrivalStats::rate_interval(3, e, c)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            msg(0.0, 0.95),
            "exposure must be a positive finite number, got 0"
        );
        assert_eq!(
            msg(-1.0, 0.95),
            "exposure must be a positive finite number, got -1"
        );
        assert_eq!(
            msg(f64::INFINITY, 0.95),
            "exposure must be a positive finite number, got inf"
        );
        assert_eq!(
            msg(f64::NAN, 0.95),
            "exposure must be a positive finite number, got NaN"
        );
        assert_eq!(msg(1.0, 1.0), "confidence must be in (0, 1), got 1");
        assert_eq!(msg(1.0, 0.0), "confidence must be in (0, 1), got 0");
        assert_eq!(msg(1.0, f64::NAN), "confidence must be in (0, 1), got NaN");
    }

    #[test]
    fn bucket_sort_sorts() {
        let mut x = 0.5_f64;
        let v: Vec<f64> = (0..100_000)
            .map(|i| {
                x = (x * 3571.0 + 0.377).fract();
                if i % 10 == 0 {
                    x * x * x * 1e6 - 3.0
                } else {
                    x * 50.0
                }
            })
            .collect();
        let (mn, mx) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &t| (a.min(t), b.max(t)));
        let got = bucket_sorted(&v, mn, mx);
        let mut want = v.clone();
        want.sort_by(f64::total_cmp);
        assert_eq!(got, want);
    }

    #[test]
    fn bucket_sort_threaded_skewed() {
        let mut x = 0.25_f64;
        let v: Vec<f64> = (0..1_200_000)
            .map(|_| {
                x = (x * 6151.0 + 0.731).fract();
                (x * 12.0).exp() // heavy right skew: most buckets empty
            })
            .collect();
        let (mn, mx) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &t| (a.min(t), b.max(t)));
        let got = bucket_sorted(&v, mn, mx);
        let mut want = v.clone();
        want.sort_by(f64::total_cmp);
        assert_eq!(got, want);
    }

    #[test]
    fn regular_stream() {
        let ts: Vec<f64> = (0..101).map(f64::from).collect();
        let s = arrival_stats(&ts, 10.0, 0.95, 2).unwrap();
        assert_eq!(s.count, 101);
        assert_eq!(s.duration, 100.0);
        assert!(s.cv_interarrival.abs() < 1e-12);
        assert_eq!(s.windows, 10);
        assert_eq!(s.index_of_dispersion, 0.0);
        assert_eq!(s.peak_rate, 1.0);
        assert_eq!(s.burstiness_windows, vec![10.0, 20.0, 40.0]);
        assert!(arrival_stats(&[1.0], 1.0, 0.95, 8).is_err());
        assert!(arrival_stats(&[1.0, 1.0], 1.0, 0.95, 8).is_err());
        assert!(arrival_stats(&[1.0, 2.0], 1.0, 1.0, 8).is_err());
    }
}
