//! Confidence intervals across independent replications (Student t).

use crate::error::{QcoreError, Result};

/// Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Upper quantile `t` with `P(T ≤ t) = p` (p > 0.5) of Student's t with `df` degrees of
/// freedom: exact for 1 and 2, Hill's algorithm 396 (CACM 1970) otherwise.
pub fn t_quantile(p: f64, df: u64) -> f64 {
    let n = df as f64;
    if df == 1 {
        return (std::f64::consts::PI * (p - 0.5)).tan();
    }
    if df == 2 {
        return (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
    }
    let pp = 2.0 * (1.0 - p); // two-sided tail probability
    let a = 1.0 / (n - 0.5);
    let b = 48.0 / (a * a);
    let mut c = ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36;
    let d = ((94.5 / (b + c) - 3.0) / b + 1.0) * (a * std::f64::consts::PI / 2.0).sqrt() * n;
    let mut x = d * pp;
    let mut y = x.powf(2.0 / n);
    if y > 0.05 + a {
        x = normal_quantile(pp * 0.5);
        y = x * x;
        if df < 5 {
            c += 0.3 * (n - 4.5) * (x + 0.6);
        }
        c += (((0.05 * d * x - 5.0) * x - 7.0) * x - 2.0) * x + b;
        y = (((((0.4 * y + 6.3) * y + 36.0) * y + 94.5) / c - y - 3.0) / b + 1.0) * x;
        y = a * y * y;
        y = if y > 0.002 {
            y.exp() - 1.0
        } else {
            0.5 * y * y + y
        };
    } else {
        y = ((1.0 / (((n + 6.0) / (n * y) - 0.089 * d - 0.822) * (n + 2.0) * 3.0)
            + 0.5 / (n + 4.0))
            * y
            - 1.0)
            * (n + 1.0)
            / (n + 2.0)
            + 1.0 / y;
    }
    (n * y).sqrt()
}

/// `(lo, mean, hi)`: the t confidence interval of the mean of `values` (one per
/// replication). With one value the interval is `(NaN, value, NaN)`.
pub fn mean_ci(values: &[f64], confidence: f64) -> Result<(f64, f64, f64)> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(QcoreError::invalid(
            "confidence",
            format!("must be in (0, 1), got {confidence}"),
        ));
    }
    let n = values.len();
    if n == 0 {
        return Ok((f64::NAN, f64::NAN, f64::NAN));
    }
    let m = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Ok((f64::NAN, m, f64::NAN));
    }
    let var = values.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
    let h = t_quantile(0.5 + confidence / 2.0, (n - 1) as u64) * (var / n as f64).sqrt();
    Ok((m - h, m, m + h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // scipy.stats.t.ppf(p, df)
        let cases = [
            (0.975, 1, 12.706_204_736_174_7),
            (0.975, 2, 4.302_652_729_749_464),
            (0.975, 3, 3.182_446_305_284_263),
            (0.975, 4, 2.776_445_105_197_793),
            (0.975, 5, 2.570_581_835_636_314),
            (0.975, 9, 2.262_157_162_798_205),
            (0.975, 29, 2.045_229_642_132_703),
            (0.995, 9, 3.249_835_541_592_143),
            (0.95, 19, 1.729_132_811_521_367),
            (0.9, 1000, 1.282_399_293_677_651_6),
        ];
        for (p, df, want) in cases {
            let got = t_quantile(p, df);
            assert!(
                (got / want - 1.0).abs() < 1e-5,
                "t({p}, {df}) = {got}, want {want}"
            );
        }
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813_5).abs() < 1e-8);
    }

    #[test]
    fn ci_basics() {
        let (lo, m, hi) = mean_ci(&[1.0, 2.0, 3.0], 0.95).unwrap();
        assert_eq!(m, 2.0);
        let h = 4.302_652_729_749_464 * (1.0f64 / 3.0).sqrt();
        assert!((hi - m - h).abs() < 1e-5 && (m - lo - h).abs() < 1e-5);
        assert!(mean_ci(&[1.0], 0.95).unwrap().0.is_nan());
        assert!(mean_ci(&[1.0], 1.0).is_err());
    }
}
