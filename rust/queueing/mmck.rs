//! The M/M/c/K queue: M/M/c with room for at most `K ≥ c` requests in the system
//! (`K − c` waiting); an arrival that finds `K` present is blocked. The system is finite,
//! so it has a steady state for every load, including `ρ ≥ 1`.
//!
//! With `a = λ/μ` and `ρ = a/c`, the stationary probabilities relative to `p_c` are
//! `p_n/p_c = Π_{i=n+1}^{c} i/a` below `c` (their sum is the Erlang-B odds
//! `(1 − B(c, a))/B(c, a)`) and `ρ^{n−c}` from `c` to `K` (a geometric sum). Everything
//! is combined in log space (`ln Σ ρ^j` via `expm1`, the Erlang-B log-odds), so the
//! results are finite for capacities up to 2^53 and any load; the mean queue length uses
//! a closed form of the truncated-geometric mean that stays accurate at `ρ = 1` and for
//! `ρ → 1` with huge `K`.

use super::erlang::ErlangB;
use super::{check_nonnegative, check_positive, check_servers, logaddexp};
use crate::error::{QcoreError, Result};

/// The largest accepted capacity (counts stay exact in `f64`).
pub const MAX_CAPACITY: i64 = 1 << 53;
/// The largest capacity for which [`MMcK::state_probabilities`] builds the full vector.
pub const MAX_STATES: u64 = 100_000_000;

/// A solved M/M/c/K queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MMcK {
    /// λ, offered arrivals per second (before blocking).
    pub arrival_rate: f64,
    /// μ per server.
    pub service_rate: f64,
    /// c.
    pub servers: u64,
    /// K, the most requests in the system (in service plus waiting).
    pub capacity: u64,
    /// `a = λ/μ`.
    pub offered_load: f64,
    /// Probability that an arrival is blocked (`p_K`, by PASTA).
    pub p_block: f64,
    /// Probability that an admitted arrival waits.
    pub p_wait: f64,
    /// Mean number in system.
    pub l: f64,
    /// Mean number waiting.
    pub lq: f64,
    /// Mean response time of admitted requests.
    pub mean_response: f64,
    /// Mean wait of admitted requests.
    pub mean_wait: f64,
    /// Admitted (and completed) requests per second, `λ (1 − p_block)`.
    pub throughput: f64,
    /// Mean fraction of busy servers, `throughput / (c μ)`.
    pub utilization: f64,
    /// `ln p_c`.
    ln_p_c: f64,
    /// `ln p_K`.
    ln_p_k: f64,
    /// `ln ρ`.
    ln_rho: f64,
}

impl MMcK {
    /// Solve M/M/c/K.
    ///
    /// Errors ([`QcoreError::InvalidArgument`]): `arrival_rate` negative or not finite,
    /// `service_rate` not finite and positive, `servers` outside `1..=10^12`, `capacity`
    /// below `servers` or above 2^53, or `arrival_rate / service_rate` overflowing.
    pub fn new(arrival_rate: f64, service_rate: f64, servers: i64, capacity: i64) -> Result<Self> {
        check_nonnegative("arrival_rate", arrival_rate)?;
        check_positive("service_rate", service_rate)?;
        let c = check_servers("servers", servers)?;
        if capacity < servers {
            return Err(QcoreError::invalid(
                "capacity",
                format!("must be >= servers ({servers}), got {capacity}"),
            ));
        }
        if capacity > MAX_CAPACITY {
            return Err(QcoreError::invalid(
                "capacity",
                format!("must be at most 2^53, got {capacity}"),
            ));
        }
        let k = capacity as u64;
        let a = arrival_rate / service_rate;
        if !a.is_finite() {
            return Err(QcoreError::invalid(
                "arrival_rate",
                format!(
                    "/ service_rate overflows ({arrival_rate} / {service_rate}); rescale the \
                     time unit"
                ),
            ));
        }
        let cf = c as f64;
        if a == 0.0 {
            return Ok(MMcK {
                arrival_rate,
                service_rate,
                servers: c,
                capacity: k,
                offered_load: 0.0,
                p_block: 0.0,
                p_wait: 0.0,
                l: 0.0,
                lq: 0.0,
                mean_response: 1.0 / service_rate,
                mean_wait: 0.0,
                throughput: 0.0,
                utilization: 0.0,
                ln_p_c: f64::NEG_INFINITY,
                ln_p_k: f64::NEG_INFINITY,
                ln_rho: f64::NEG_INFINITY,
            });
        }
        let ln_odds = ErlangB::compute(c, a).ln_odds; // ln Σ_{n<c} p_n / p_c
        let r = a / cf;
        let s = if r >= f64::MIN_POSITIVE {
            r.ln()
        } else {
            a.ln() - cf.ln()
        };
        let m = (k - c) as f64; // waiting places
                                // Unnormalised log-weights of groups of states, relative to p_c when ρ ≤ 1 and to
                                // p_K when ρ > 1 (so no weight is huge, whatever K is).
        let (ln_z, w_block, w_admit, w_above, w_queue, w_c) = if s <= 0.0 {
            (
                logaddexp(ln_odds, ln_geo(m + 1.0, s)), // all states
                m * s,                                  // K
                logaddexp(ln_odds, ln_geo(m, s)),       // 0..K−1
                s + ln_geo(m, s),                       // c+1..K
                ln_geo(m, s),                           // c..K−1
                0.0,                                    // c
            )
        } else {
            (
                logaddexp(ln_odds - m * s, ln_geo(m + 1.0, -s)),
                0.0,
                logaddexp(ln_odds - m * s, -s + ln_geo(m, -s)),
                ln_geo(m, -s),
                -s + ln_geo(m, -s),
                -m * s,
            )
        };
        let p_block = (w_block - ln_z).exp();
        let p_admit = (w_admit - ln_z).exp();
        let lq = if m >= 1.0 {
            // P(n > c) times the mean of a geometric(ρ) variable truncated to 1..m.
            (w_above - ln_z).exp() * truncated_geometric_mean(m, s)
        } else {
            0.0
        };
        let p_wait = (w_queue - w_admit).exp();
        let throughput = arrival_rate * p_admit;
        let busy = a * p_admit;
        let mean_wait = lq / throughput;
        Ok(MMcK {
            arrival_rate,
            service_rate,
            servers: c,
            capacity: k,
            offered_load: a,
            p_block,
            p_wait,
            l: lq + busy,
            lq,
            mean_response: mean_wait + 1.0 / service_rate,
            mean_wait,
            throughput,
            utilization: busy / cf,
            ln_p_c: w_c - ln_z,
            ln_p_k: w_block - ln_z,
            ln_rho: s,
        })
    }

    /// The stationary distribution `p_0, ..., p_K` (capacity at most 10^8).
    pub fn state_probabilities(&self) -> Result<Vec<f64>> {
        if self.capacity > MAX_STATES {
            return Err(QcoreError::invalid(
                "capacity",
                format!(
                    "= {} is too large to list every state (at most {MAX_STATES})",
                    self.capacity
                ),
            ));
        }
        let k = self.capacity as usize;
        let c = self.servers as usize;
        let mut p = vec![0.0; k + 1];
        if self.offered_load == 0.0 {
            p[0] = 1.0;
            return Ok(p);
        }
        for (j, pn) in p[c..].iter_mut().enumerate() {
            *pn = if self.ln_rho <= 0.0 {
                (self.ln_p_c + j as f64 * self.ln_rho).exp()
            } else {
                (self.ln_p_k - (k - c - j) as f64 * self.ln_rho).exp()
            };
        }
        let ln_a = self.offered_load.ln();
        let mut lp = self.ln_p_c;
        for n in (0..c).rev() {
            lp += ((n + 1) as f64).ln() - ln_a;
            p[n] = lp.exp();
        }
        Ok(p)
    }
}

/// `ln Σ_{j=0}^{k−1} e^{js}` for a count `k ≥ 0`.
fn ln_geo(k: f64, s: f64) -> f64 {
    if k == 0.0 {
        f64::NEG_INFINITY
    } else if k == 1.0 {
        0.0
    } else if s == 0.0 {
        k.ln()
    } else if s > 0.0 {
        ln_expm1(k * s) - ln_expm1(s)
    } else {
        (-(k * s).exp_m1()).ln() - (-s.exp_m1()).ln()
    }
}

/// `ln(e^x − 1)` for `x > 0`.
fn ln_expm1(x: f64) -> f64 {
    if x > 50.0 {
        x + (-(-x).exp()).ln_1p()
    } else {
        x.exp_m1().ln()
    }
}

/// `h(x) = 1/(e^x − 1) − 1/x + ½` for `|x| ≤ 1` (≈ x/12; series near 0).
fn h(x: f64) -> f64 {
    if x.abs() < 0.25 {
        let x2 = x * x;
        x * (1.0 / 12.0
            - x2 * (1.0 / 720.0
                - x2 * (1.0 / 30_240.0
                    - x2 * (1.0 / 1_209_600.0
                        - x2 * (1.0 / 47_900_160.0 - x2 * (691.0 / 1_307_674_368_000.0))))))
    } else {
        1.0 / x.exp_m1() - 1.0 / x + 0.5
    }
}

/// Mean of `j ∈ {1..m}` with weights `e^{js}`: `1/(1 − ρ) − m ρ^m/(1 − ρ^m)`, evaluated
/// as `(m + 1)/2 − h(s) − m h(−ms)` when `|ms| ≤ 1` (no cancellation near `ρ = 1`).
fn truncated_geometric_mean(m: f64, s: f64) -> f64 {
    if (m * s).abs() <= 1.0 {
        0.5 * (m + 1.0) - h(s) - m * h(-m * s)
    } else {
        -1.0 / s.exp_m1() - m / (-m * s).exp_m1()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queueing::erlang::erlang_b;
    use crate::queueing::mmc::MMc;

    fn rel(x: f64, y: f64) -> f64 {
        if x == y {
            0.0
        } else {
            (x - y).abs() / y.abs()
        }
    }

    /// Direct evaluation of the balance equations by normalised products.
    fn direct(lam: f64, mu: f64, c: usize, k: usize) -> Vec<f64> {
        let mut w = vec![1.0f64; k + 1];
        for n in 1..=k {
            let rate = mu * n.min(c) as f64;
            w[n] = w[n - 1] * lam / rate;
        }
        let z: f64 = w.iter().sum();
        w.iter().map(|x| x / z).collect()
    }

    #[test]
    fn against_balance_equations() {
        for &(lam, mu, c, k) in &[
            (0.9, 1.0, 1usize, 1usize),
            (0.9, 1.0, 1, 10),
            (5.0, 1.0, 4, 12),
            (8.0, 2.0, 4, 4),
            (3.0, 1.0, 3, 50),
            (30.0, 1.0, 8, 40),
            (1.0, 10.0, 2, 30),
            (12.0, 1.0, 12, 100),
            (12.0, 1.0 + 1e-12, 12, 300),
        ] {
            let m = MMcK::new(lam, mu, c as i64, k as i64).unwrap();
            let p = direct(lam, mu, c, k);
            let got = m.state_probabilities().unwrap();
            for n in 0..=k {
                assert!((got[n] - p[n]).abs() < 1e-13 * p[n].max(1e-3), "{n}");
            }
            let l: f64 = p.iter().enumerate().map(|(n, x)| n as f64 * x).sum();
            let lq: f64 = p
                .iter()
                .enumerate()
                .map(|(n, x)| n.saturating_sub(c) as f64 * x)
                .sum();
            let pw: f64 = p[c..k].iter().sum::<f64>() / (1.0 - p[k]);
            assert!(
                rel(m.p_block, p[k]) < 1e-12,
                "p_block {} vs {}",
                m.p_block,
                p[k]
            );
            assert!(rel(m.l, l) < 1e-12, "L {} vs {l}", m.l);
            if lq > 0.0 {
                assert!(rel(m.lq, lq) < 1e-12, "Lq {} vs {lq}", m.lq);
            } else {
                assert_eq!(m.lq, 0.0);
            }
            assert!(rel(m.p_wait, pw) < 1e-12 || (pw == 0.0 && m.p_wait == 0.0));
            let thr = lam * (1.0 - p[k]);
            assert!(rel(m.throughput, thr) < 1e-12);
            assert!(rel(m.mean_response, l / thr) < 1e-12);
        }
    }

    #[test]
    fn loss_system_is_erlang_b() {
        for &(c, a) in &[(1i64, 0.5), (10, 5.0), (100, 120.0), (1000, 950.0)] {
            let m = MMcK::new(a, 1.0, c, c).unwrap();
            assert!(rel(m.p_block, erlang_b(c, a).unwrap()) < 1e-13);
            assert_eq!(m.lq, 0.0);
            assert_eq!(m.p_wait, 0.0);
        }
    }

    #[test]
    fn large_capacity_tends_to_mmc() {
        for &(lam, c) in &[(0.9, 1i64), (7.0, 8), (60.0, 64), (99.0, 100)] {
            let inf = MMc::new(lam, 1.0, c).unwrap();
            let m = MMcK::new(lam, 1.0, c, 1 << 40).unwrap();
            assert!(m.p_block < 1e-300);
            assert!(rel(m.l, inf.l) < 1e-12, "{} vs {}", m.l, inf.l);
            assert!(rel(m.lq, inf.lq) < 1e-12);
            assert!(rel(m.p_wait, inf.p_wait) < 1e-12);
            assert!(rel(m.mean_response, inf.mean_response) < 1e-12);
        }
    }

    #[test]
    fn overload_and_critical() {
        // ρ = 1 exactly: every state from c to K is equally likely (relative to p_c).
        let m = MMcK::new(4.0, 1.0, 4, 1004).unwrap();
        let p = direct(4.0, 1.0, 4, 1004);
        assert!(rel(m.p_block, p[1004]) < 1e-12);
        // ρ ≫ 1 with a huge room: nearly always full, L ≈ K − ρ/(ρ − 1) + c... finite.
        let m = MMcK::new(1e6, 1.0, 10, 1 << 50).unwrap();
        assert!(m.l.is_finite() && m.l > 0.99 * (1u64 << 50) as f64);
        assert!(rel(m.throughput, 10.0) < 1e-9); // all servers busy
        assert!(rel(m.utilization, 1.0) < 1e-9);
        assert!(rel(m.p_block, 1.0 - 1e-5) < 1e-9);
        // ρ slightly above 1 with a huge room: the mean queue sits near K.
        let m = MMcK::new(1.000001, 1.0, 1, 1 << 40).unwrap();
        assert!(m.lq.is_finite() && m.lq > 0.9 * (1u64 << 40) as f64);
        // ρ slightly below 1 with a huge room: M/M/1 values.
        let m = MMcK::new(0.999999, 1.0, 1, 1 << 52).unwrap();
        assert!(rel(m.l, 0.999999 / 1e-6) < 1e-8, "{}", m.l);
    }

    #[test]
    fn geometric_mean_closed_forms() {
        for &m in &[1.0, 2.0, 5.0, 100.0] {
            for &s in &[-3.0, -0.2, -1e-9, 0.0, 1e-9, 0.2, 3.0] {
                let (mut num, mut den) = (0.0f64, 0.0f64);
                for j in 1..=(m as usize) {
                    let w = (j as f64 * s).exp();
                    num += j as f64 * w;
                    den += w;
                }
                assert!(
                    rel(truncated_geometric_mean(m, s), num / den) < 1e-12,
                    "{m} {s}"
                );
                let g = (0..(m as usize)).map(|j| (j as f64 * s).exp()).sum::<f64>();
                assert!((ln_geo(m, s) - g.ln()).abs() < 1e-13);
            }
        }
    }

    #[test]
    fn errors() {
        let e = MMcK::new(1.0, 1.0, 3, 2).unwrap_err();
        assert_eq!(e.to_string(), "capacity must be >= servers (3), got 2");
        assert!(MMcK::new(1.0, 1.0, 0, 2).is_err());
        assert!(MMcK::new(f64::NAN, 1.0, 1, 2).is_err());
        assert!(MMcK::new(1e300, 1e-300, 1, 2).is_err());
        let m = MMcK::new(0.0, 1.0, 1, 5).unwrap();
        assert_eq!(
            m.state_probabilities().unwrap(),
            vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!(MMcK::new(1.0, 1.0, 1, 1 << 40)
            .unwrap()
            .state_probabilities()
            .is_err());
    }
}
