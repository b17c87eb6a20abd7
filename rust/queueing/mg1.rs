//! The M/G/1 queue by the Pollaczek–Khinchine formula, from the mean and the squared
//! coefficient of variation (SCV) of the service time.
//!
//! With `ρ = λ E[S] < 1` and `c_s² = Var S / E[S]²`:
//! `W_q = ρ E[S] (1 + c_s²) / (2 (1 − ρ))`, `W = W_q + E[S]`, `L_q = λ W_q`, `L = λ W`.
//! These are exact for any service distribution with the given two moments.

use super::{check_nonnegative, check_positive};
use crate::error::{QcoreError, Result};

/// Mean-value results shared by M/G/1 and the G/G/1, G/G/c approximations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueMeans {
    /// `ρ = λ E[S] / c`.
    pub utilization: f64,
    /// Probability that an arrival waits (exact `ρ` for M/G/1; Erlang C for Allen–Cunneen).
    pub p_wait: f64,
    /// Mean time in queue.
    pub mean_wait: f64,
    /// Mean time in system.
    pub mean_response: f64,
    /// Mean number in system.
    pub l: f64,
    /// Mean number in queue.
    pub lq: f64,
    /// Departure rate (λ).
    pub throughput: f64,
}

impl QueueMeans {
    /// Complete the means from the mean wait (Little's law).
    pub(crate) fn from_wait(
        arrival_rate: f64,
        service_mean: f64,
        utilization: f64,
        p_wait: f64,
        mean_wait: f64,
    ) -> Self {
        let mean_response = mean_wait + service_mean;
        QueueMeans {
            utilization,
            p_wait,
            mean_wait,
            mean_response,
            l: arrival_rate * mean_response,
            lq: arrival_rate * mean_wait,
            throughput: arrival_rate,
        }
    }
}

/// Validate the inputs shared by the single-queue mean-value models and return ρ.
pub(crate) fn check_inputs(
    arrival_rate: f64,
    service_mean: f64,
    servers: u64,
    scvs: &[(&str, f64)],
) -> Result<f64> {
    check_nonnegative("arrival_rate", arrival_rate)?;
    check_positive("service_mean", service_mean)?;
    for &(name, v) in scvs {
        check_nonnegative(name, v)?;
    }
    let rho = arrival_rate * service_mean / servers as f64;
    if rho >= 1.0 {
        return Err(QcoreError::unstable(format!(
            "utilization arrival_rate * service_mean / servers = {rho} >= 1 (arrival_rate \
             {arrival_rate}, service_mean {service_mean}, servers {servers})"
        )));
    }
    Ok(rho)
}

/// M/G/1 by Pollaczek–Khinchine (exact mean values).
///
/// Errors: `arrival_rate` or `service_scv` negative or not finite, `service_mean` not
/// finite and positive ([`QcoreError::InvalidArgument`]); `ρ ≥ 1` ([`QcoreError::Unstable`]).
pub fn mg1(arrival_rate: f64, service_mean: f64, service_scv: f64) -> Result<QueueMeans> {
    let rho = check_inputs(
        arrival_rate,
        service_mean,
        1,
        &[("service_scv", service_scv)],
    )?;
    let mean_wait = rho * service_mean * (1.0 + service_scv) / (2.0 * (1.0 - rho));
    Ok(QueueMeans::from_wait(
        arrival_rate,
        service_mean,
        rho,
        rho,
        mean_wait,
    ))
}

/// M/D/1: [`mg1`] with deterministic service (`c_s² = 0`), `W_q = ρ/(2μ(1 − ρ))`.
pub fn md1(arrival_rate: f64, service_time: f64) -> Result<QueueMeans> {
    check_positive("service_time", service_time)?;
    mg1(arrival_rate, service_time, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queueing::mmc::MMc;

    fn rel(x: f64, y: f64) -> f64 {
        (x - y).abs() / y.abs()
    }

    #[test]
    fn exponential_service_is_mm1() {
        for &lam in &[0.05, 0.25, 0.45, 0.495] {
            let g = mg1(lam, 2.0, 1.0).unwrap();
            let m = MMc::new(lam, 0.5, 1).unwrap();
            assert!(rel(g.mean_wait, m.mean_wait) < 1e-14);
            assert!(rel(g.mean_response, m.mean_response) < 1e-14);
            assert!(rel(g.l, m.l) < 1e-14);
            assert!(rel(g.lq, m.lq) < 1e-14);
            assert!(rel(g.p_wait, m.p_wait) < 1e-14);
        }
    }

    #[test]
    fn md1_half_of_mm1() {
        // W_q(M/D/1) = ρ / (2 μ (1 − ρ)).
        let d = md1(0.8, 1.0).unwrap();
        assert!(rel(d.mean_wait, 0.8 / (2.0 * 0.2)) < 1e-15);
        assert!(rel(d.mean_response, 3.0) < 1e-15);
        assert!(rel(d.lq, 0.8 * 2.0) < 1e-15);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            mg1(1.0, 1.0, 1.0).unwrap_err(),
            QcoreError::Unstable { .. }
        ));
        assert!(mg1(1.0, 0.5, -1.0)
            .unwrap_err()
            .to_string()
            .starts_with("service_scv"));
        assert!(md1(1.0, 0.0)
            .unwrap_err()
            .to_string()
            .starts_with("service_time"));
        assert!(mg1(f64::INFINITY, 0.5, 1.0).is_err());
        assert_eq!(mg1(0.0, 1.0, 3.0).unwrap().mean_wait, 0.0);
    }
}
