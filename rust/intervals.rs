//! Confidence intervals of proportions and means from counts and exact sums: the one
//! definition that the rules, the canary judge and SLO attainment use.
//!
//! - [`clopper_pearson`]: the exact binomial interval (SLO attainment).
//! - [`wilson`]: the Wilson score interval of a proportion (the rules' error rate).
//! - [`proportion_difference`]: the Agresti–Caffo interval of a difference of two
//!   proportions (the canary judge's error rates).
//! - [`mean_interval`]: the normal interval of a mean, or of a ratio of sums, from the exact
//!   sums of the residuals (the rules' mean latency and cost per token).

use crate::error::{QcoreError, Result};
use crate::special::{beta_inc_inv, normal_quantile};

/// `confidence` must be in (0, 1).
pub(crate) fn check_confidence(c: f64) -> Result<()> {
    if !(c > 0.0 && c < 1.0) {
        return Err(QcoreError::invalid(
            "confidence",
            format!("must be in (0, 1), got {c}"),
        ));
    }
    Ok(())
}

/// The two-sided standard normal quantile of `confidence`, `Φ⁻¹(½ + confidence/2)`.
pub fn two_sided_z(confidence: f64) -> Result<f64> {
    check_confidence(confidence)?;
    Ok(normal_quantile(0.5 + 0.5 * confidence))
}

fn check_counts(k: u64, n: u64, kname: &'static str, nname: &'static str) -> Result<()> {
    if k > n {
        return Err(QcoreError::invalid(
            kname,
            format!("must be at most {nname} ({n}), got {k}"),
        ));
    }
    Ok(())
}

/// Clopper–Pearson interval of `k` successes in `n > 0` trials.
pub fn clopper_pearson(k: u64, n: u64, confidence: f64) -> Result<(f64, f64)> {
    check_confidence(confidence)?;
    check_counts(k, n, "k", "n")?;
    if n == 0 {
        return Err(QcoreError::invalid("n", "must be positive"));
    }
    let half = 0.5 * (1.0 - confidence);
    let (kf, nf) = (k as f64, n as f64);
    let lo = if k == 0 {
        0.0
    } else {
        beta_inc_inv(kf, nf - kf + 1.0, half)
    };
    let hi = if k == n {
        1.0
    } else {
        beta_inc_inv(kf + 1.0, nf - kf, 1.0 - half)
    };
    Ok((lo, hi))
}

/// Wilson score interval of `k` successes in `n` trials, within [0, 1]; `(0, 1)` when `n`
/// is 0 (nothing is known).
pub fn wilson(k: u64, n: u64, confidence: f64) -> Result<(f64, f64)> {
    let z = two_sided_z(confidence)?;
    check_counts(k, n, "k", "n")?;
    if n == 0 {
        return Ok((0.0, 1.0));
    }
    let (nf, z2) = (n as f64, z * z);
    let p = k as f64 / nf;
    let den = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / den;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / den;
    // (exact at the edges: the bounds are 0 at k = 0 and 1 at k = n, not a rounding off)
    let lo = if k == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Ok((lo, hi))
}

/// Agresti–Caffo interval of `ka/na − kb/nb`: one success and one failure added to each
/// side, which keeps it well behaved at zero counts. Both `na` and `nb` must be positive.
pub fn proportion_difference(
    ka: u64,
    na: u64,
    kb: u64,
    nb: u64,
    confidence: f64,
) -> Result<(f64, f64)> {
    let z = two_sided_z(confidence)?;
    check_counts(ka, na, "ka", "na")?;
    check_counts(kb, nb, "kb", "nb")?;
    for (name, n) in [("na", na), ("nb", nb)] {
        if n == 0 {
            return Err(QcoreError::invalid(name, "must be positive"));
        }
    }
    let (na2, nb2) = (na as f64 + 2.0, nb as f64 + 2.0);
    let (pa, pb) = ((ka as f64 + 1.0) / na2, (kb as f64 + 1.0) / nb2);
    let se = (pa * (1.0 - pa) / na2 + pb * (1.0 - pb) / nb2).sqrt();
    let d = pa - pb;
    Ok((d - z * se, d + z * se))
}

/// Normal interval `centre ± z·se` of a mean over `n ≥ 2` values from the sums of their
/// residuals about `centre` (`s1 = Σ r`, `s2 = Σ r²`, exact sums rounded once): the
/// corrected two-pass variance `max(0, (s2 − s1²/n)/(n − 1))` gives
/// `se = √(var/n) / scale`. With `scale = 1` and residuals `x − mean` it is the interval
/// of a mean; with residuals `c − r·t` about a ratio `r = Σc/Σt` and `scale = Σt/n`, the
/// delta-method interval of the ratio.
pub fn mean_interval(
    n: u64,
    centre: f64,
    s1: f64,
    s2: f64,
    scale: f64,
    confidence: f64,
) -> Result<(f64, f64)> {
    let z = two_sided_z(confidence)?;
    if n < 2 {
        return Err(QcoreError::invalid(
            "n",
            format!("must be at least 2, got {n}"),
        ));
    }
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(QcoreError::invalid(
            "scale",
            format!("must be a positive finite number, got {scale}"),
        ));
    }
    let nf = n as f64;
    let var = ((s2 - s1 * s1 / nf) / (nf - 1.0)).max(0.0);
    let se = (var / nf).sqrt() / scale;
    Ok((centre - z * se, centre + z * se))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_known_values() {
        // 1 error in 200 requests at 95 %: (0.000883, 0.027774), as R's
        // prop.test(1, 200, correct = FALSE) gives.
        let (lo, hi) = wilson(1, 200, 0.95).unwrap();
        assert!((lo - 0.000_883_168_7).abs() < 1e-9, "{lo}");
        assert!((hi - 0.027_773_704).abs() < 1e-8, "{hi}");
        assert_eq!(wilson(0, 0, 0.95).unwrap(), (0.0, 1.0));
        let (lo, hi) = wilson(0, 10, 0.95).unwrap();
        assert_eq!(lo, 0.0);
        assert!(hi > 0.0 && hi < 0.4);
        assert!(wilson(3, 2, 0.95).is_err());
        assert!(wilson(1, 2, 1.0).is_err());
    }

    #[test]
    fn wilson_is_symmetric_and_nested() {
        for n in [1u64, 2, 7, 100, 10_000] {
            for k in 0..=n.min(50) {
                let (lo, hi) = wilson(k, n, 0.95).unwrap();
                let (lo2, hi2) = wilson(n - k, n, 0.95).unwrap();
                assert!((lo - (1.0 - hi2)).abs() < 1e-12 && (hi - (1.0 - lo2)).abs() < 1e-12);
                let (lo9, hi9) = wilson(k, n, 0.9).unwrap();
                assert!(lo <= lo9 && hi9 <= hi);
                let p = k as f64 / n as f64;
                assert!(lo <= p && p <= hi);
            }
        }
    }

    #[test]
    fn clopper_pearson_contains_wilson_at_the_edges() {
        let (lo, hi) = clopper_pearson(0, 50, 0.95).unwrap();
        assert_eq!(lo, 0.0);
        // the exact upper bound of 0 in 50 at 95 %: 1 − 0.025^(1/50)
        assert!(
            (hi - (1.0 - 0.025f64.powf(1.0 / 50.0))).abs() < 1e-12,
            "{hi}"
        );
        assert_eq!(clopper_pearson(50, 50, 0.95).unwrap().1, 1.0);
        assert!(clopper_pearson(0, 0, 0.95).is_err());
    }

    #[test]
    fn proportion_difference_covers_zero_for_equal_sides() {
        let (lo, hi) = proportion_difference(5, 1000, 5, 1000, 0.95).unwrap();
        assert!(lo < 0.0 && hi > 0.0 && (lo + hi).abs() < 1e-15);
        let (lo, _) = proportion_difference(100, 1000, 5, 1000, 0.95).unwrap();
        assert!(lo > 0.0);
        assert!(proportion_difference(1, 0, 0, 1, 0.95).is_err());
    }

    #[test]
    fn mean_interval_is_the_textbook_one() {
        let x = [1.0, 2.0, 4.0, 8.0];
        let m = 3.75;
        let s1: f64 = x.iter().map(|v| v - m).sum();
        let s2: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
        let (lo, hi) = mean_interval(4, m, s1, s2, 1.0, 0.95).unwrap();
        let sd = (s2 / 3.0).sqrt();
        let z = 1.959_963_984_540_054;
        assert!((hi - (m + z * sd / 2.0)).abs() < 1e-12 && (lo - (m - z * sd / 2.0)).abs() < 1e-12);
        assert!(mean_interval(1, m, 0.0, 0.0, 1.0, 0.95).is_err());
        assert!(mean_interval(4, m, s1, s2, 0.0, 0.95).is_err());
    }
}
