//! Tail-latency statistics: distribution-free quantile confidence intervals from binomial
//! order statistics (for raw samples and for sketches), minimum sample sizes, fan-out
//! amplification and SLO attainment with error-budget consumption.

use crate::error::{check_finite, QcoreError, Result};
use crate::intervals::{check_confidence, clopper_pearson};
use crate::special::binomial_cdf;

fn check_q(q: f64) -> Result<()> {
    if !(q > 0.0 && q < 1.0) {
        return Err(QcoreError::invalid(
            "q",
            format!("must be in (0, 1), got {q}"),
        ));
    }
    Ok(())
}

/// Order-statistic ranks of a distribution-free confidence interval for the q-quantile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileRanks {
    /// Sample size.
    pub n: u64,
    /// 1-based rank of the lower bound, `None` when the sample is too small for one.
    pub lower: Option<u64>,
    /// 1-based rank of the upper bound, `None` when the sample is too small for one.
    pub upper: Option<u64>,
    /// Exact coverage `P(lower ≤ B < upper)`, `B ~ Binomial(n, q)` (missing bounds count
    /// as −∞ / +∞). At least `confidence` when both bounds exist.
    pub coverage: f64,
}

/// Ranks `[x_(l), x_(u)]` of the equal-tailed interval: `l − 1` is the largest `k` with
/// `P(B ≤ k) ≤ α/2` and `u − 1` the smallest `k` with `P(B ≤ k) ≥ 1 − α/2`, where
/// `B ~ Binomial(n, q)` counts the sample values below the true quantile.
pub fn quantile_ranks(n: u64, q: f64, confidence: f64) -> Result<QuantileRanks> {
    check_q(q)?;
    check_confidence(confidence)?;
    let half = 0.5 * (1.0 - confidence);
    let nf = n as f64;
    let cdf = |k: u64| binomial_cdf(k as f64, nf, q);
    // Largest k in [0, n] with F(k) ≤ half (F is nondecreasing, F(n) = 1).
    let lower = if n == 0 || cdf(0) > half {
        None
    } else {
        let (mut lo, mut hi) = (0u64, n); // F(lo) ≤ half, F(hi) = 1 > half
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cdf(mid) <= half {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo + 1)
    };
    // Smallest k in [0, n-1] with F(k) ≥ 1 - half.
    let upper = if n == 0 || cdf(n - 1) < 1.0 - half {
        None
    } else if cdf(0) >= 1.0 - half {
        Some(1)
    } else {
        let (mut lo, mut hi) = (0u64, n - 1); // F(lo) < target ≤ F(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cdf(mid) >= 1.0 - half {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi + 1)
    };
    let f_hi = upper.map_or(1.0, |u| cdf(u - 1));
    let f_lo = lower.map_or(0.0, |l| cdf(l - 1));
    Ok(QuantileRanks {
        n,
        lower,
        upper,
        coverage: f_hi - f_lo,
    })
}

/// A quantile estimate with its distribution-free confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileCi {
    /// Lower bound `x_(l)`, `None` when the sample is too small.
    pub lo: Option<f64>,
    /// Point estimate: linear interpolation between order statistics (numpy's default
    /// `quantile` method).
    pub estimate: f64,
    /// Upper bound `x_(u)`, `None` when the sample is too small.
    pub hi: Option<f64>,
    /// The ranks and exact coverage.
    pub ranks: QuantileRanks,
}

/// Distribution-free confidence interval for the q-quantile of `values` from binomial
/// order statistics (valid for any continuous distribution; conservative with ties).
/// Runs in O(n) with selection (no full sort). Empty input or NaN is an error.
pub fn quantile_ci(values: &[f64], q: f64, confidence: f64) -> Result<QuantileCi> {
    check_finite("values", values)?;
    if values.is_empty() {
        return Err(QcoreError::invalid("values", "is empty"));
    }
    let ranks = quantile_ranks(values.len() as u64, q, confidence)?;
    let mut v = values.to_vec();
    let n = v.len();
    let mut select = |k: usize| -> f64 {
        let (_, x, _) = v.select_nth_unstable_by(k, f64::total_cmp);
        *x
    };
    let h = (n - 1) as f64 * q;
    let j = h.floor() as usize;
    let frac = h - j as f64;
    let a = select(j);
    let estimate = if frac > 0.0 && j + 1 < n {
        let b = select(j + 1);
        a + frac * (b - a)
    } else {
        a
    };
    let lo = ranks.lower.map(|l| select(l as usize - 1));
    let hi = ranks.upper.map(|u| select(u as usize - 1));
    Ok(QuantileCi {
        lo,
        estimate,
        hi,
        ranks,
    })
}

/// An interval `[lo, hi]` of exact order statistics widened by a sketch's relative
/// accuracy `alpha` (`lo − α|lo|`, `hi + α|hi|`), and further to hold `estimate` (the
/// sketch's estimate, whose order statistic can lie outside the interval's ranks: a p99 of
/// a few values). Widening only raises the coverage, so the interval stays valid; the
/// report and the rules pair a sketch's estimate with an exact interval through this. A
/// missing bound stays missing. `alpha` must be in [0, 1) and no bound NaN.
pub fn widen_for_sketch(
    lo: Option<f64>,
    hi: Option<f64>,
    alpha: f64,
    estimate: Option<f64>,
) -> Result<(Option<f64>, Option<f64>)> {
    if !(0.0..1.0).contains(&alpha) {
        return Err(QcoreError::invalid(
            "relative_accuracy",
            format!("must be in [0, 1), got {alpha}"),
        ));
    }
    for (name, v) in [("lo", lo), ("hi", hi), ("estimate", estimate)] {
        if v.is_some_and(f64::is_nan) {
            return Err(QcoreError::invalid(name, "must not be NaN"));
        }
    }
    let mut wlo = lo.map(|x| x - alpha * x.abs());
    let mut whi = hi.map(|x| x + alpha * x.abs());
    if let Some(e) = estimate {
        wlo = wlo.map(|x| x.min(e));
        whi = whi.map(|x| x.max(e));
    }
    Ok((wlo, whi))
}

/// Quantile levels at which to read a sketch of `count` values for the bounds of the
/// q-quantile's confidence interval. `QuantileSketch.quantile(level)` returns the value of
/// 0-based rank `floor(level · (n − 1))`, so rank `r` (1-based) is read at level
/// `(r − ½) / (n − 1)` (clamped to 1), which is robust to the rounding of the product.
/// Weighted counts are rounded down to whole values.
pub fn sketch_ci_levels(
    count: f64,
    q: f64,
    confidence: f64,
) -> Result<(Option<f64>, Option<f64>, QuantileRanks)> {
    if !(count.is_finite() && count >= 0.0) {
        return Err(QcoreError::invalid(
            "count",
            format!("must be finite and ≥ 0, got {count}"),
        ));
    }
    let n = count.floor() as u64;
    let r = quantile_ranks(n, q, confidence)?;
    let level = |k: u64| {
        if n <= 1 {
            0.0
        } else {
            ((k as f64 - 0.5) / (n - 1) as f64).min(1.0)
        }
    };
    Ok((r.lower.map(level), r.upper.map(level), r))
}

/// The smallest sample size at which a distribution-free confidence interval for the
/// q-quantile exists at `confidence`: two-sided needs `q^n ≤ α/2` and `(1−q)^n ≤ α/2`;
/// one-sided (an upper bound only) needs `q^n ≤ α`. For p99 at 95 %: 368 two-sided, 299
/// one-sided.
pub fn min_sample_size(q: f64, confidence: f64, two_sided: bool) -> Result<u64> {
    check_q(q)?;
    check_confidence(confidence)?;
    let a = 1.0 - confidence;
    let t = if two_sided { 0.5 * a } else { a };
    let need = |p: f64| (t.ln() / p.ln()).ceil().max(1.0);
    let mut n = need(q);
    if two_sided {
        n = n.max(need(1.0 - q));
    }
    if n.is_nan() || n >= 1e18 {
        return Err(QcoreError::invalid(
            "q",
            format!("{q} needs an impractically large sample"),
        ));
    }
    let mut n = n as u64;
    // Guard the rounding of the logarithms with the exact criterion.
    let ok = |n: u64| -> bool {
        let nf = n as f64;
        let up = nf * q.ln() <= t.ln();
        let low = !two_sided || nf * (1.0 - q).ln() <= t.ln();
        up && low
    };
    while n > 1 && ok(n - 1) {
        n -= 1;
    }
    while !ok(n) {
        n += 1;
    }
    Ok(n)
}

/// Probability that a request fanned out to `n` back-ends sees at least one back-end
/// latency above the back-ends' q-quantile: `1 − qⁿ` (independent back-ends).
pub fn fanout_probability(n: f64, q: f64) -> Result<f64> {
    check_fanout(n)?;
    check_q(q)?;
    Ok(-(n * q.ln()).exp_m1())
}

/// The per-back-end quantile level needed so that a fan-out of `n` meets the q-quantile
/// end to end: `q^(1/n)` (for example p99 over 100 back-ends needs each at p99.99).
pub fn fanout_quantile(n: f64, q: f64) -> Result<f64> {
    check_fanout(n)?;
    check_q(q)?;
    Ok((q.ln() / n).exp())
}

fn check_fanout(n: f64) -> Result<()> {
    if !(n.is_finite() && n >= 1.0) {
        return Err(QcoreError::invalid(
            "n",
            format!("must be a finite number ≥ 1, got {n}"),
        ));
    }
    Ok(())
}

/// SLO attainment of a latency column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloReport {
    /// Number of requests.
    pub count: u64,
    /// Requests with latency ≤ the SLO.
    pub good: u64,
    /// `good / count`.
    pub attainment: f64,
    /// Clopper–Pearson interval of the attainment.
    pub attainment_ci: (f64, f64),
    /// Target attainment (for example 0.99).
    pub target: f64,
    /// `(1 − attainment) / (1 − target)`: the fraction of the error budget used (> 1 means
    /// overspent).
    pub budget_consumed: f64,
    /// `1 − budget_consumed`.
    pub budget_remaining: f64,
    /// `attainment ≥ target`.
    pub met: bool,
    /// The whole interval is at or above the target.
    pub met_confidently: bool,
    /// The whole interval is below the target.
    pub violated_confidently: bool,
}

/// SLO attainment: the share of `latencies` at most `slo`, with a Clopper–Pearson
/// interval, against a `target` share; and the error-budget consumption
/// `(1 − attainment) / (1 − target)`. Empty input or NaN is an error.
pub fn slo_attainment(
    latencies: &[f64],
    slo: f64,
    target: f64,
    confidence: f64,
) -> Result<SloReport> {
    check_finite("latencies", latencies)?;
    if latencies.is_empty() {
        return Err(QcoreError::invalid("latencies", "is empty"));
    }
    if slo.is_nan() {
        return Err(QcoreError::invalid("slo", "must not be NaN"));
    }
    if !(target > 0.0 && target < 1.0) {
        return Err(QcoreError::invalid(
            "target",
            format!("must be in (0, 1), got {target}"),
        ));
    }
    check_confidence(confidence)?;
    let n = latencies.len() as u64;
    let good = latencies.iter().filter(|&&x| x <= slo).count() as u64;
    let att = good as f64 / n as f64;
    let (lo, hi) = clopper_pearson(good, n, confidence)?;
    let consumed = (1.0 - att) / (1.0 - target);
    Ok(SloReport {
        count: n,
        good,
        attainment: att,
        attainment_ci: (lo, hi),
        target,
        budget_consumed: consumed,
        budget_remaining: 1.0 - consumed,
        met: att >= target,
        met_confidently: lo >= target,
        violated_confidently: hi < target,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn widen_for_sketch_holds_the_estimate() {
        let w = |lo, hi, a, e| widen_for_sketch(lo, hi, a, e).unwrap();
        assert_eq!(
            w(Some(22.0), Some(23.0), 0.01, None),
            (Some(21.78), Some(23.23))
        );
        assert_eq!(w(Some(2.0), None, 0.01, Some(1.0)), (Some(1.0), None));
        assert_eq!(
            w(Some(-2.0), Some(-1.0), 0.5, None),
            (Some(-3.0), Some(-0.5))
        );
        assert_eq!(
            w(Some(1.0), Some(2.0), 0.0, Some(3.0)),
            (Some(1.0), Some(3.0))
        );
        assert!(widen_for_sketch(Some(1.0), None, 1.0, None).is_err());
        assert!(widen_for_sketch(Some(f64::NAN), None, 0.01, None).is_err());
    }

    use super::*;

    #[test]
    fn ranks_of_median_n10() {
        // Classical table: n = 10, 95 % → [x_(2), x_(9)], coverage 0.9785.
        let r = quantile_ranks(10, 0.5, 0.95).unwrap();
        assert_eq!((r.lower, r.upper), (Some(2), Some(9)));
        assert!((r.coverage - 0.978_515_625).abs() < 1e-12);
        let r = quantile_ranks(5, 0.99, 0.95).unwrap();
        assert_eq!(r.upper, None);
    }

    #[test]
    fn sketch_levels_hit_the_ranks() {
        // level · (n − 1) must floor to the 0-based rank r − 1 for every rank.
        let n = 1001u64;
        let (lo, hi, r) = sketch_ci_levels(n as f64, 0.9, 0.95).unwrap();
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        assert_eq!((lo * 1000.0).floor() as u64, r.lower.unwrap() - 1);
        assert_eq!((hi * 1000.0).floor() as u64, r.upper.unwrap() - 1);
        let (_, hi, _) = sketch_ci_levels(3.0, 0.5, 0.5).unwrap();
        assert!(hi.unwrap() <= 1.0);
        assert!(sketch_ci_levels(f64::NAN, 0.5, 0.95).is_err());
    }

    #[test]
    fn min_sizes() {
        assert_eq!(min_sample_size(0.99, 0.95, true).unwrap(), 368);
        assert_eq!(min_sample_size(0.99, 0.95, false).unwrap(), 299);
        let n = min_sample_size(0.999, 0.95, true).unwrap();
        assert!(quantile_ranks(n, 0.999, 0.95).unwrap().upper.is_some());
        assert!(quantile_ranks(n - 1, 0.999, 0.95).unwrap().upper.is_none());
    }

    #[test]
    fn fanout() {
        assert!(
            (fanout_probability(100.0, 0.99).unwrap() - (1.0 - 0.99f64.powi(100))).abs() < 1e-15
        );
        assert!((fanout_quantile(100.0, 0.99).unwrap() - 0.999_899_502_5).abs() < 1e-9);
        assert!(fanout_probability(0.5, 0.9).is_err());
    }

    #[test]
    fn slo() {
        let lat: Vec<f64> = (1..=1000).map(f64::from).collect();
        let r = slo_attainment(&lat, 990.0, 0.99, 0.95).unwrap();
        assert_eq!(r.good, 990);
        assert!((r.budget_consumed - 1.0).abs() < 1e-12);
        assert!(r.met && !r.met_confidently && !r.violated_confidently);
    }
}
