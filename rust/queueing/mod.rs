//! Analytic queueing models.
//!
//! - `erlang`: Erlang B (loss) and Erlang C (delay) probabilities, stable from one server
//!   to 10^12 servers, in linear and in log space.
//! - `mmc`: the M/M/c queue with its exact waiting- and response-time distributions,
//!   their quantiles, and the smallest server count that meets a response-time SLO.
//! - `mmck`: the M/M/c/K queue (finite system, defined for any load).
//! - `mg1`: the M/G/1 queue (Pollaczek–Khinchine mean-value formulas).
//! - `approx`: Kingman (G/G/1) and Allen–Cunneen (G/G/c) approximations.
//!
//! Every constructor validates its arguments and returns [`QcoreError::InvalidArgument`]
//! naming the argument, or [`QcoreError::Unstable`] when a steady state is needed and the
//! utilization is at least one.

pub(crate) mod approx;
pub(crate) mod erlang;
pub(crate) mod mg1;
pub(crate) mod mmc;
pub(crate) mod mmck;

pub use approx::{allen_cunneen, kingman};
pub use erlang::{erlang_b, erlang_b_many, erlang_c, erlang_c_many, ErlangB, ErlangC};
pub use mg1::{md1, mg1, QueueMeans};
pub use mmc::{min_servers_mmc, MMc, SloTarget};
pub use mmck::MMcK;

use crate::error::{QcoreError, Result};

/// The largest server count accepted by the models (counts stay exact in `f64`).
pub const MAX_SERVERS: i64 = 1_000_000_000_000;

/// Validate a server count: an integer in `1..=MAX_SERVERS`.
pub fn check_servers(name: &str, servers: i64) -> Result<u64> {
    if servers < 1 {
        return Err(QcoreError::invalid(
            name,
            format!("must be at least 1, got {servers}"),
        ));
    }
    if servers > MAX_SERVERS {
        return Err(QcoreError::invalid(
            name,
            format!("must be at most {MAX_SERVERS}, got {servers}"),
        ));
    }
    Ok(servers as u64)
}

/// Validate a finite, non-negative value (an arrival rate or an offered load).
pub fn check_nonnegative(name: &str, x: f64) -> Result<()> {
    if x.is_nan() {
        return Err(QcoreError::invalid(name, "must be a number, got NaN"));
    }
    if !x.is_finite() || x < 0.0 {
        return Err(QcoreError::invalid(
            name,
            format!("must be finite and >= 0, got {x}"),
        ));
    }
    Ok(())
}

/// Validate a finite, strictly positive value (a service rate or a mean service time).
pub fn check_positive(name: &str, x: f64) -> Result<()> {
    if x.is_nan() {
        return Err(QcoreError::invalid(name, "must be a number, got NaN"));
    }
    if !x.is_finite() || x <= 0.0 {
        return Err(QcoreError::invalid(
            name,
            format!("must be finite and > 0, got {x}"),
        ));
    }
    Ok(())
}

/// Validate a probability level in `[0, 1]`.
pub fn check_probability(name: &str, q: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&q) {
        return Err(QcoreError::invalid(
            name,
            format!("must be in [0, 1], got {q}"),
        ));
    }
    Ok(())
}

/// `ln(1 + e^x)` without overflow.
pub(crate) fn softplus(x: f64) -> f64 {
    if x == f64::INFINITY {
        return x;
    }
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `1 / (1 + e^-x)` without overflow.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(e^x + e^y)` without overflow; `-inf` terms are allowed.
pub(crate) fn logaddexp(x: f64, y: f64) -> f64 {
    let (hi, lo) = if x >= y { (x, y) } else { (y, x) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    if hi == f64::INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_argument() {
        let e = check_servers("servers", 0).unwrap_err();
        assert_eq!(e.to_string(), "servers must be at least 1, got 0");
        assert!(check_servers("servers", MAX_SERVERS + 1).is_err());
        assert_eq!(check_servers("servers", 3).unwrap(), 3);
        let e = check_nonnegative("offered_load", -1.0).unwrap_err();
        assert!(matches!(e, QcoreError::InvalidArgument { .. }));
        assert!(e.to_string().starts_with("offered_load must be finite"));
        assert!(check_nonnegative("x", f64::NAN).is_err());
        assert!(check_nonnegative("x", f64::INFINITY).is_err());
        assert!(check_nonnegative("x", 0.0).is_ok());
        assert!(check_positive("x", 0.0).is_err());
        assert!(check_probability("q", 1.5).is_err());
        assert!(check_probability("q", f64::NAN).is_err());
        assert!(check_probability("q", 1.0).is_ok());
    }

    #[test]
    fn helpers() {
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-16);
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-16);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((logaddexp(0.0, 0.0) - 2f64.ln()).abs() < 1e-16);
        assert_eq!(logaddexp(f64::NEG_INFINITY, 3.0), 3.0);
        assert_eq!(
            logaddexp(f64::NEG_INFINITY, f64::NEG_INFINITY),
            f64::NEG_INFINITY
        );
    }
}
