//! Confidence intervals across independent replications (Student t).

use crate::error::{QcoreError, Result};
use crate::special::student_t_quantile;

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
    let h = student_t_quantile(0.5 + confidence / 2.0, (n - 1) as f64) * (var / n as f64).sqrt();
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
            (0.9, 1000, 1.282_398_721_460_924_7),
        ];
        for (p, df, want) in cases {
            let got = student_t_quantile(p, f64::from(df));
            assert!(
                (got / want - 1.0).abs() < 1e-10,
                "t({p}, {df}) = {got}, want {want}"
            );
        }
        assert!((crate::special::normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((crate::special::normal_quantile(0.001) + 3.090_232_306_167_813_5).abs() < 1e-8);
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
