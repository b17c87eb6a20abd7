//! Service-time (and interarrival, patience, start-up delay) distributions.

use super::rng::{exp, Rng};
use crate::error::{check_finite, QcoreError, Result};

/// A non-negative duration distribution.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Exponential with the given mean.
    Exponential { mean: f64 },
    /// Always `value`.
    Deterministic { value: f64 },
    /// Gamma with `shape` and `scale` (mean = shape · scale).
    Gamma { shape: f64, scale: f64 },
    /// `exp(mu + sigma · Z)` with Z standard normal.
    LogNormal { mu: f64, sigma: f64 },
    /// Resample uniformly (with replacement) from `samples`.
    Empirical { samples: Vec<f64> },
    /// The i-th draw is `values[i]` (trace-driven durations, in request order).
    Sequence { values: Vec<f64> },
}

fn positive(name: &str, what: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(QcoreError::invalid(
            name,
            if what == name {
                format!("must be a positive finite number, got {v}")
            } else {
                format!("{what} must be a positive finite number, got {v}")
            },
        ));
    }
    Ok(())
}

fn non_negative_values(name: &str, values: &[f64]) -> Result<()> {
    check_finite(name, values)?;
    if let Some(i) = values.iter().position(|&v| v < 0.0) {
        return Err(QcoreError::invalid(
            name,
            format!("contains a negative duration {} at index {i}", values[i]),
        ));
    }
    Ok(())
}

impl Dist {
    /// Exponential with the given mean (> 0).
    pub fn exponential(mean: f64) -> Result<Self> {
        positive("mean", "mean", mean)?;
        Ok(Dist::Exponential { mean })
    }

    /// A constant (≥ 0).
    pub fn deterministic(value: f64) -> Result<Self> {
        if !(value.is_finite() && value >= 0.0) {
            return Err(QcoreError::invalid(
                "value",
                format!("must be a non-negative finite number, got {value}"),
            ));
        }
        Ok(Dist::Deterministic { value })
    }

    /// Gamma with the given mean (> 0) and coefficient of variation (≥ 0; 0 gives a
    /// constant).
    pub fn gamma(mean: f64, cv: f64) -> Result<Self> {
        positive("mean", "mean", mean)?;
        check_cv(cv)?;
        let shape = 1.0 / (cv * cv);
        let scale = mean / shape;
        if !shape.is_finite() || scale == 0.0 {
            // cv = 0, or so small that 1/cv² overflows (or the scale underflows): a
            // constant, to within the precision of a double.
            return Ok(Dist::Deterministic { value: mean });
        }
        Ok(Dist::Gamma { shape, scale })
    }

    /// Lognormal with the given mean (> 0) and coefficient of variation (≥ 0).
    pub fn lognormal(mean: f64, cv: f64) -> Result<Self> {
        positive("mean", "mean", mean)?;
        check_cv(cv)?;
        if cv == 0.0 {
            return Ok(Dist::Deterministic { value: mean });
        }
        let s2 = (1.0 + cv * cv).ln();
        Ok(Dist::LogNormal {
            mu: mean.ln() - 0.5 * s2,
            sigma: s2.sqrt(),
        })
    }

    /// Resample from non-empty, finite, non-negative `samples`.
    pub fn empirical(samples: Vec<f64>) -> Result<Self> {
        if samples.is_empty() {
            return Err(QcoreError::invalid("samples", "must not be empty"));
        }
        non_negative_values("samples", &samples)?;
        Ok(Dist::Empirical { samples })
    }

    /// Trace-driven durations, one per request in order.
    pub fn sequence(values: Vec<f64>, name: &str) -> Result<Self> {
        non_negative_values(name, &values)?;
        Ok(Dist::Sequence { values })
    }

    /// Re-check the parameters (for values built from the enum variants directly);
    /// errors name `name`.
    pub fn check(&self, name: &str) -> Result<()> {
        let ok = match self {
            Dist::Exponential { mean } => mean.is_finite() && *mean > 0.0,
            Dist::Deterministic { value } => value.is_finite() && *value >= 0.0,
            Dist::Gamma { shape, scale } => {
                shape.is_finite() && *shape > 0.0 && scale.is_finite() && *scale > 0.0
            }
            Dist::LogNormal { mu, sigma } => mu.is_finite() && sigma.is_finite() && *sigma >= 0.0,
            Dist::Empirical { samples } => {
                if samples.is_empty() {
                    return Err(QcoreError::invalid(name, "has no samples"));
                }
                return non_negative_values(name, samples);
            }
            Dist::Sequence { values } => return non_negative_values(name, values),
        };
        if ok {
            Ok(())
        } else {
            Err(QcoreError::invalid(
                name,
                format!("has invalid parameters: {self:?}"),
            ))
        }
    }

    /// The mean of the distribution.
    pub fn mean(&self) -> f64 {
        match self {
            Dist::Exponential { mean } => *mean,
            Dist::Deterministic { value } => *value,
            Dist::Gamma { shape, scale } => shape * scale,
            Dist::LogNormal { mu, sigma } => (mu + 0.5 * sigma * sigma).exp(),
            Dist::Empirical { samples } | Dist::Sequence { values: samples } => {
                if samples.is_empty() {
                    0.0
                } else {
                    samples.iter().sum::<f64>() / samples.len() as f64
                }
            }
        }
    }

    /// The squared coefficient of variation.
    pub fn scv(&self) -> f64 {
        match self {
            Dist::Exponential { .. } => 1.0,
            Dist::Deterministic { .. } => 0.0,
            Dist::Gamma { shape, .. } => 1.0 / shape,
            Dist::LogNormal { sigma, .. } => (sigma * sigma).exp() - 1.0,
            Dist::Empirical { samples } | Dist::Sequence { values: samples } => {
                let n = samples.len() as f64;
                let m = self.mean();
                if n < 1.0 || m == 0.0 {
                    return 0.0;
                }
                let v = samples.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
                v / (m * m)
            }
        }
    }

    /// How many draws are available (`None`: unlimited).
    pub fn limit(&self) -> Option<usize> {
        match self {
            Dist::Sequence { values } => Some(values.len()),
            _ => None,
        }
    }

    /// Draw number `i` (the index matters only for [`Dist::Sequence`]).
    #[inline]
    pub fn sample(&self, rng: &mut Rng, i: usize) -> f64 {
        match self {
            Dist::Exponential { mean } => mean * rng.exp1(),
            Dist::Deterministic { value } => *value,
            Dist::Gamma { shape, scale } => scale * rng.gamma(*shape),
            Dist::LogNormal { mu, sigma } => exp(mu + sigma * rng.normal()),
            Dist::Empirical { samples } => samples[rng.index(samples.len())],
            Dist::Sequence { values } => values.get(i).copied().unwrap_or(f64::NAN),
        }
    }

    /// Fill `out` with draws `first, first + 1, ...` (the same values as repeated
    /// [`Dist::sample`] calls).
    pub fn fill(&self, rng: &mut Rng, first: usize, out: &mut [f64]) {
        match self {
            Dist::Exponential { mean } => rng.fill_exp(*mean, out),
            Dist::Deterministic { value } => out.fill(*value),
            _ => {
                for (j, x) in out.iter_mut().enumerate() {
                    *x = self.sample(rng, first + j);
                }
            }
        }
    }
}

fn check_cv(cv: f64) -> Result<()> {
    if !(cv.is_finite() && cv >= 0.0) {
        return Err(QcoreError::invalid(
            "cv",
            format!("must be a non-negative finite number, got {cv}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(d: &Dist, seed: u64) {
        let mut r = Rng::new(seed);
        let n = 400_000;
        let xs: Vec<f64> = (0..n).map(|i| d.sample(&mut r, i)).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n as f64 - 1.0);
        assert!((m / d.mean() - 1.0).abs() < 0.01, "{d:?}: mean {m}");
        let scv = v / (m * m);
        assert!(
            (scv - d.scv()).abs() < 0.05 * d.scv().max(0.2),
            "{d:?}: scv {scv}"
        );
        assert!(xs.iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn moments_match() {
        check(&Dist::exponential(2.0).unwrap(), 1);
        check(&Dist::gamma(1.5, 0.5).unwrap(), 2);
        check(&Dist::gamma(1.5, 2.0).unwrap(), 3);
        check(&Dist::lognormal(0.2, 0.8).unwrap(), 4);
        check(&Dist::empirical(vec![1.0, 2.0, 7.0]).unwrap(), 5);
        assert_eq!(
            Dist::gamma(3.0, 0.0).unwrap(),
            Dist::Deterministic { value: 3.0 }
        );
        assert_eq!(
            Dist::gamma(3.0, 1e-200).unwrap(),
            Dist::Deterministic { value: 3.0 }
        );
        // cv² subnormal: 1/cv² overflows
        assert_eq!(
            Dist::gamma(1.0, 5.2e-157).unwrap(),
            Dist::Deterministic { value: 1.0 }
        );
        // the scale underflows
        assert_eq!(
            Dist::gamma(5e-324, 0.5).unwrap(),
            Dist::Deterministic { value: 5e-324 }
        );
        let mut r = Rng::new(1);
        for cv in [1e-150, 1e-8, 1e-3] {
            let g = Dist::gamma(2.0, cv).unwrap();
            let l = Dist::lognormal(2.0, cv).unwrap();
            for i in 0..1000 {
                let (a, b) = (g.sample(&mut r, i), l.sample(&mut r, i));
                assert!(
                    (a - 2.0).abs() < 1e-2 && (b - 2.0).abs() < 1e-2,
                    "{cv} {a} {b}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(Dist::exponential(0.0).is_err());
        assert!(Dist::exponential(f64::NAN).is_err());
        assert!(Dist::deterministic(-1.0).is_err());
        assert!(Dist::gamma(1.0, -0.1).is_err());
        assert!(Dist::lognormal(-1.0, 1.0).is_err());
        assert!(Dist::empirical(vec![]).is_err());
        let e = Dist::empirical(vec![1.0, -2.0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "samples contains a negative duration -2 at index 1"
        );
        assert!(Dist::sequence(vec![1.0, f64::NAN], "durations").is_err());
    }
}
