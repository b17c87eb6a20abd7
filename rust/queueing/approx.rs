//! Approximations for queues with general arrivals (two-moment formulas). They are not
//! exact: results carry `approximation = true` in the Python layer.
//!
//! - **Kingman** (G/G/1, heavy-traffic): `W_q ≈ ρ/(1 − ρ) · (c_a² + c_s²)/2 · E[S]`.
//! - **Allen–Cunneen** (G/G/c): `W_q ≈ C(c, a)/(cμ − λ) · (c_a² + c_s²)/2`, the M/M/c wait
//!   scaled by the mean of the two SCVs; it is exact for M/M/c and reduces to Kingman for
//!   one server.

use super::check_servers;
use super::erlang::ErlangC;
use super::mg1::{check_inputs, QueueMeans};
use crate::error::Result;

/// Kingman's G/G/1 approximation of the mean wait.
///
/// Errors: rates and SCVs negative or not finite, `service_mean ≤ 0`; `ρ ≥ 1` (unstable).
pub fn kingman(
    arrival_rate: f64,
    service_mean: f64,
    arrival_scv: f64,
    service_scv: f64,
) -> Result<QueueMeans> {
    let rho = check_inputs(
        arrival_rate,
        service_mean,
        1,
        &[("arrival_scv", arrival_scv), ("service_scv", service_scv)],
    )?;
    let mean_wait = rho / (1.0 - rho) * 0.5 * (arrival_scv + service_scv) * service_mean;
    Ok(QueueMeans::from_wait(
        arrival_rate,
        service_mean,
        rho,
        rho,
        mean_wait,
    ))
}

/// The Allen–Cunneen G/G/c approximation of the mean wait (`p_wait` is the Erlang C value).
///
/// Errors: as [`kingman`], and `servers` outside `1..=10^12`.
pub fn allen_cunneen(
    arrival_rate: f64,
    service_mean: f64,
    servers: i64,
    arrival_scv: f64,
    service_scv: f64,
) -> Result<QueueMeans> {
    let c = check_servers("servers", servers)?;
    let rho = check_inputs(
        arrival_rate,
        service_mean,
        c,
        &[("arrival_scv", arrival_scv), ("service_scv", service_scv)],
    )?;
    let a = arrival_rate * service_mean;
    let ec = ErlangC::compute(c, a);
    // C/(cμ − λ) = C E[S] / (c − a).
    let mm_wait = ec.p_wait * service_mean / (c as f64 - a);
    let mean_wait = mm_wait * 0.5 * (arrival_scv + service_scv);
    Ok(QueueMeans::from_wait(
        arrival_rate,
        service_mean,
        rho,
        ec.p_wait,
        mean_wait,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queueing::mg1::mg1;
    use crate::queueing::mmc::MMc;
    use crate::QcoreError;

    fn rel(x: f64, y: f64) -> f64 {
        (x - y).abs() / y.abs()
    }

    #[test]
    fn reductions() {
        // Poisson arrivals, exponential service: Kingman = M/M/1, Allen–Cunneen = M/M/c.
        let k = kingman(0.9, 1.0, 1.0, 1.0).unwrap();
        assert!(rel(k.mean_wait, 9.0) < 1e-14);
        for &(lam, c) in &[(1.0, 2i64), (7.0, 8), (60.0, 64)] {
            let ac = allen_cunneen(lam, 1.0, c, 1.0, 1.0).unwrap();
            let m = MMc::new(lam, 1.0, c).unwrap();
            assert!(rel(ac.mean_wait, m.mean_wait) < 1e-13);
            assert!(rel(ac.p_wait, m.p_wait) < 1e-14);
        }
        // One server: Allen–Cunneen equals Kingman.
        let ac = allen_cunneen(0.7, 1.2, 1, 2.0, 0.5).unwrap();
        let k = kingman(0.7, 1.2, 2.0, 0.5).unwrap();
        assert!(rel(ac.mean_wait, k.mean_wait) < 1e-14);
        // Poisson arrivals: Kingman equals Pollaczek–Khinchine.
        let k = kingman(0.5, 1.5, 1.0, 0.3).unwrap();
        let p = mg1(0.5, 1.5, 0.3).unwrap();
        assert!(rel(k.mean_wait, p.mean_wait) < 1e-14);
        // D/D/1 never waits.
        assert_eq!(kingman(0.5, 1.0, 0.0, 0.0).unwrap().mean_wait, 0.0);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            allen_cunneen(2.0, 1.0, 2, 1.0, 1.0).unwrap_err(),
            QcoreError::Unstable { .. }
        ));
        assert!(kingman(0.5, 1.0, -1.0, 1.0)
            .unwrap_err()
            .to_string()
            .starts_with("arrival_scv"));
        assert!(allen_cunneen(0.5, 1.0, 0, 1.0, 1.0)
            .unwrap_err()
            .to_string()
            .starts_with("servers"));
    }
}
