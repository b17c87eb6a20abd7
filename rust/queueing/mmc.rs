//! The M/M/c queue: Poisson arrivals at rate λ, `c` servers with exponential service at
//! rate μ, FCFS, infinite waiting room; a steady state exists when `ρ = λ/(cμ) < 1`.
//!
//! With `C` the Erlang C probability and `θ = cμ − λ`:
//!
//! - the wait `W_q` is 0 with probability `1 − C`, otherwise exponential with rate `θ`:
//!   `P(W_q > t) = C e^{−θt}`;
//! - the response time `T = W_q + S` with `S ~ Exp(μ)` independent of the wait, so
//!   `P(T > t) = (1 − C) e^{−μt} + C · H(t)`, where `H` is the survival function of the sum
//!   of an `Exp(θ)` and an `Exp(μ)` variable (hypoexponential):
//!   `H(t) = e^{−mt} (1 + m t φ((M − m) t))`, `m = min(θ, μ)`, `M = max(θ, μ)`,
//!   `φ(x) = (1 − e^{−x})/x`. This form has no cancellation and covers `θ = μ`
//!   (`cμ − λ = μ`, where `H(t) = (1 + μt) e^{−μt}`).
//!
//! The response-time CDF is evaluated as a sum of positive terms near `t = 0` (a power
//! series for `Mt ≤ 1`), and quantiles are found by safeguarded Newton iteration on the CDF
//! (for `q ≤ ½`) or the survival function (for `q > ½`) to a relative tolerance of 1e-15,
//! so `cdf(quantile(q)) = q` holds to about 1e-15. Waiting-time quantiles are closed form.

use super::erlang::ErlangC;
use super::{check_nonnegative, check_positive, check_probability, check_servers, MAX_SERVERS};
use crate::error::{QcoreError, Result};

/// A solved M/M/c queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MMc {
    /// λ, arrivals per second.
    pub arrival_rate: f64,
    /// μ, completions per second per busy server.
    pub service_rate: f64,
    /// c.
    pub servers: u64,
    /// `a = λ/μ` in Erlangs (the mean number of busy servers).
    pub offered_load: f64,
    /// `ρ = λ/(cμ)`.
    pub utilization: f64,
    /// Erlang C: the probability that an arrival waits.
    pub p_wait: f64,
    /// `1 − p_wait`, accurate when `p_wait` is close to one.
    pub p_no_wait: f64,
    /// Mean time in queue `C/(cμ − λ)`.
    pub mean_wait: f64,
    /// Mean time in system `mean_wait + 1/μ`.
    pub mean_response: f64,
    /// Mean number in system.
    pub l: f64,
    /// Mean number in queue.
    pub lq: f64,
    /// Departure rate (equals λ in steady state).
    pub throughput: f64,
    /// `cμ − λ`: the rate of the conditional wait.
    theta: f64,
}

/// Which time an SLO constrains in [`min_servers_mmc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloTarget {
    /// Time in system (wait + service).
    Response,
    /// Time in queue only.
    Wait,
}

impl MMc {
    /// Solve M/M/c.
    ///
    /// Errors: `arrival_rate` negative or not finite, `service_rate` not finite and
    /// positive, `servers` outside `1..=10^12` (all [`QcoreError::InvalidArgument`]);
    /// `λ ≥ cμ` ([`QcoreError::Unstable`]).
    pub fn new(arrival_rate: f64, service_rate: f64, servers: i64) -> Result<Self> {
        check_nonnegative("arrival_rate", arrival_rate)?;
        check_positive("service_rate", service_rate)?;
        let c = check_servers("servers", servers)?;
        let a = arrival_rate / service_rate;
        if a >= c as f64 {
            return Err(QcoreError::unstable(format!(
                "utilization arrival_rate / (servers * service_rate) = {} >= 1 \
                 (arrival_rate {arrival_rate}, service_rate {service_rate}, servers {c}); \
                 add servers or lower the arrival rate",
                a / c as f64
            )));
        }
        Ok(Self::solve(arrival_rate, service_rate, c))
    }

    /// Solve M/M/c for validated arguments with `λ/μ < c`.
    fn solve(arrival_rate: f64, service_rate: f64, c: u64) -> Self {
        let cf = c as f64;
        let a = arrival_rate / service_rate;
        let ec = ErlangC::compute(c, a);
        let theta = service_rate * (cf - a);
        let mean_wait = ec.p_wait / theta;
        let lq = arrival_rate * mean_wait;
        MMc {
            arrival_rate,
            service_rate,
            servers: c,
            offered_load: a,
            utilization: a / cf,
            p_wait: ec.p_wait,
            p_no_wait: ec.p_no_wait,
            mean_wait,
            mean_response: mean_wait + 1.0 / service_rate,
            l: lq + a,
            lq,
            throughput: arrival_rate,
            theta,
        }
    }

    /// `P(W_q ≤ t)`; it jumps to `1 − C` at `t = 0`.
    pub fn wait_cdf(&self, t: f64) -> Result<f64> {
        check_time(t)?;
        if t < 0.0 {
            return Ok(0.0);
        }
        Ok(self.p_no_wait - self.p_wait * (-self.theta * t).exp_m1())
    }

    /// `P(W_q > t)`.
    pub fn wait_sf(&self, t: f64) -> Result<f64> {
        check_time(t)?;
        if t < 0.0 {
            return Ok(1.0);
        }
        Ok(self.p_wait * (-self.theta * t).exp())
    }

    /// The `q`-quantile of the wait (the smallest `t` with `P(W_q ≤ t) ≥ q`): zero for
    /// `q ≤ 1 − C`, else `ln(C/(1 − q))/θ`; `inf` for `q = 1`.
    pub fn wait_quantile(&self, q: f64) -> Result<f64> {
        check_probability("q", q)?;
        if q <= self.p_no_wait {
            return Ok(0.0);
        }
        if q == 1.0 {
            return Ok(f64::INFINITY);
        }
        // ln(C/(1 − q)) = ln(1 + (q − (1 − C))/(1 − q)).
        let x = (q - self.p_no_wait) / (1.0 - q);
        Ok(x.ln_1p() / self.theta)
    }

    /// `P(T ≤ t)` for the response time `T` (wait + service).
    pub fn response_cdf(&self, t: f64) -> Result<f64> {
        check_time(t)?;
        Ok(self.response_parts(t).0)
    }

    /// `P(T > t)` for the response time.
    pub fn response_sf(&self, t: f64) -> Result<f64> {
        check_time(t)?;
        Ok(self.response_parts(t).1)
    }

    /// The density of the response time at `t`.
    pub fn response_pdf(&self, t: f64) -> Result<f64> {
        check_time(t)?;
        Ok(self.response_parts(t).2)
    }

    /// The `q`-quantile of the response time: the `t` with `P(T ≤ t) = q` (relative
    /// tolerance 1e-15); 0 for `q = 0` and `inf` for `q = 1`.
    pub fn response_quantile(&self, q: f64) -> Result<f64> {
        check_probability("q", q)?;
        if q == 0.0 {
            return Ok(0.0);
        }
        if q == 1.0 {
            return Ok(f64::INFINITY);
        }
        Ok(self.solve_response_quantile(q))
    }

    /// [`MMc::response_quantile`] over many levels (all validated first).
    pub fn response_quantiles(&self, q: &[f64]) -> Result<Vec<f64>> {
        check_all_probabilities(q)?;
        q.iter().map(|&q| self.response_quantile(q)).collect()
    }

    /// [`MMc::wait_quantile`] over many levels (all validated first).
    pub fn wait_quantiles(&self, q: &[f64]) -> Result<Vec<f64>> {
        check_all_probabilities(q)?;
        q.iter().map(|&q| self.wait_quantile(q)).collect()
    }

    /// [`MMc::response_cdf`] over many times (all validated first).
    pub fn response_cdfs(&self, t: &[f64]) -> Result<Vec<f64>> {
        check_all_times(t)?;
        t.iter().map(|&t| self.response_cdf(t)).collect()
    }

    /// [`MMc::wait_cdf`] over many times (all validated first).
    pub fn wait_cdfs(&self, t: &[f64]) -> Result<Vec<f64>> {
        check_all_times(t)?;
        t.iter().map(|&t| self.wait_cdf(t)).collect()
    }

    /// `(cdf, sf, pdf)` of the response time at `t` (not NaN).
    fn response_parts(&self, t: f64) -> (f64, f64, f64) {
        if t <= 0.0 {
            let pdf = if t == 0.0 {
                self.p_no_wait * self.service_rate
            } else {
                0.0
            };
            return (0.0, 1.0, pdf);
        }
        if t == f64::INFINITY {
            return (1.0, 0.0, 0.0);
        }
        let mu = self.service_rate;
        let theta = self.theta;
        let (m, big) = if theta <= mu {
            (theta, mu)
        } else {
            (mu, theta)
        };
        let phi = phi((big - m) * t);
        let xe = xexp(m * t);
        let e_mu = (-mu * t).exp();
        let em1_mu = -(-mu * t).exp_m1();
        // Hypoexponential (Exp(θ) + Exp(μ)) survival, CDF and density.
        let h_sf = (-m * t).exp() + xe * phi;
        let h_cdf = if big * t <= 1.0 {
            hypo_cdf_series(theta * t, mu * t)
        } else {
            -(-m * t).exp_m1() - xe * phi
        };
        let h_pdf = big * xe * phi;
        let (c, nc) = (self.p_wait, self.p_no_wait);
        (
            nc * em1_mu + c * h_cdf,
            nc * e_mu + c * h_sf,
            nc * mu * e_mu + c * h_pdf,
        )
    }

    fn solve_response_quantile(&self, q: f64) -> f64 {
        // g(t) is increasing with g(root) = 0: the CDF minus q for q ≤ ½, else
        // (1 − q) minus the survival function; both are evaluated without cancellation.
        let upper = q > 0.5;
        let target = if upper { 1.0 - q } else { q };
        let g = |t: f64| {
            let (cdf, sf, pdf) = self.response_parts(t);
            let v = if upper { target - sf } else { cdf - target };
            (v, pdf)
        };
        let guess = if upper {
            self.mean_response * (1.0 - q).ln().abs().max(1.0)
        } else {
            self.mean_response * q
        };
        solve_increasing(g, guess)
    }
}

/// The smallest number of servers `c` for which the M/M/c `slo_quantile`-quantile of the
/// response time (or of the wait, with [`SloTarget::Wait`]) is at most `slo_seconds`.
///
/// The response-time quantile decreases with `c` towards the service-time quantile, so
/// the search (exponential, then bisection over stable `c`) ends; with
/// [`SloTarget::Response`] an SLO at or below the service-time quantile
/// `−ln(1 − q)/μ` can never be met and is an error naming `slo_seconds`.
///
/// Errors: rates as in [`MMc::new`]; `slo_quantile` outside `(0, 1)`; `slo_seconds`
/// negative or not finite; an unreachable SLO; more than 10^12 servers needed.
pub fn min_servers_mmc(
    arrival_rate: f64,
    service_rate: f64,
    slo_quantile: f64,
    slo_seconds: f64,
    target: SloTarget,
) -> Result<u64> {
    check_nonnegative("arrival_rate", arrival_rate)?;
    check_positive("service_rate", service_rate)?;
    if !(slo_quantile > 0.0 && slo_quantile < 1.0) {
        return Err(QcoreError::invalid(
            "slo_quantile",
            format!("must be in (0, 1), got {slo_quantile}"),
        ));
    }
    check_nonnegative("slo_seconds", slo_seconds)?;
    let q = slo_quantile;
    let allowed = 1.0 - q; // the largest admissible P(time > slo_seconds)
    if target == SloTarget::Response {
        let service_sf = (-service_rate * slo_seconds).exp();
        if service_sf >= allowed {
            let service_q = -(-q).ln_1p() / service_rate;
            return Err(QcoreError::invalid(
                "slo_seconds",
                format!(
                    "= {slo_seconds} is not above the {q}-quantile of the service time alone \
                     ({service_q} s at service_rate {service_rate}); no number of servers \
                     meets it"
                ),
            ));
        }
    }
    let a = arrival_rate / service_rate;
    let first = a.floor() + 1.0; // the smallest stable server count
    if first > MAX_SERVERS as f64 {
        return Err(QcoreError::invalid(
            "arrival_rate",
            format!("needs more than {MAX_SERVERS} servers (offered load {a})"),
        ));
    }
    let first = first as u64;
    let meets = |c: u64| {
        let m = MMc::solve(arrival_rate, service_rate, c);
        let sf = match target {
            SloTarget::Response => m.response_parts(slo_seconds).1,
            SloTarget::Wait => m.p_wait * (-m.theta * slo_seconds).exp(),
        };
        sf <= allowed
    };
    if meets(first) {
        return Ok(first);
    }
    // Exponential search: `lo` fails, `hi` meets.
    let mut lo = first;
    let mut step = 1u64;
    let mut hi;
    loop {
        hi = first.saturating_add(step);
        if hi > MAX_SERVERS as u64 {
            hi = MAX_SERVERS as u64;
            if !meets(hi) {
                return Err(QcoreError::invalid(
                    "slo_seconds",
                    format!("needs more than {MAX_SERVERS} servers"),
                ));
            }
            break;
        }
        if meets(hi) {
            break;
        }
        lo = hi;
        step = step.saturating_mul(2);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if meets(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

fn check_time(t: f64) -> Result<()> {
    if t.is_nan() {
        return Err(QcoreError::invalid("t", "must be a number, got NaN"));
    }
    Ok(())
}

fn check_all_times(t: &[f64]) -> Result<()> {
    if let Some(i) = t.iter().position(|v| v.is_nan()) {
        return Err(QcoreError::invalid(
            "t",
            format!("contains NaN at index {i}"),
        ));
    }
    Ok(())
}

fn check_all_probabilities(q: &[f64]) -> Result<()> {
    if let Some(i) = q.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(QcoreError::invalid(
            "q",
            format!("contains {} at index {i} (must be in [0, 1])", q[i]),
        ));
    }
    Ok(())
}

/// `(1 − e^{−x})/x` for `x ≥ 0`, 1 at 0.
fn phi(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        -(-x).exp_m1() / x
    }
}

/// `x e^{−x}` for `x ≥ 0` without `inf · 0`.
fn xexp(x: f64) -> f64 {
    if x > 700.0 {
        (x.ln() - x).exp()
    } else {
        x * (-x).exp()
    }
}

/// The CDF of `Exp(θ) + Exp(μ)` at `t` from `x = θt`, `y = μt` with `max(x, y) ≤ 1`:
/// `x y Σ_k (−1)^k H_k/(k + 2)!` with `H_k = Σ_{i≤k} x^i y^{k−i}` (no cancellation).
fn hypo_cdf_series(x: f64, y: f64) -> f64 {
    let mut h = 1.0; // H_0
    let mut y_pow = 1.0;
    let mut fact = 2.0; // (k + 2)!
    let mut sign = 1.0;
    let mut sum = 0.5;
    for k in 1..40 {
        y_pow *= y;
        h = x * h + y_pow;
        fact *= f64::from(k + 2);
        sign = -sign;
        let term = sign * h / fact;
        let next = sum + term;
        if next == sum {
            break;
        }
        sum = next;
    }
    x * y * sum
}

/// Root of an increasing function `g` (returned with its derivative) on `(0, ∞)` with
/// `g(0+) < 0 < g(∞)`: bracket from `guess` by doubling/halving, then Newton steps kept
/// inside the bracket (bisection otherwise) to a relative tolerance of 1e-15.
fn solve_increasing<G: Fn(f64) -> (f64, f64)>(g: G, guess: f64) -> f64 {
    let guess = if guess.is_finite() && guess > 0.0 {
        guess
    } else {
        1.0
    };
    let (mut lo, mut hi);
    if g(guess).0 < 0.0 {
        lo = guess;
        hi = 2.0 * guess;
        while g(hi).0 < 0.0 {
            lo = hi;
            hi *= 2.0;
            if !hi.is_finite() {
                return f64::INFINITY;
            }
        }
    } else {
        hi = guess;
        lo = 0.5 * guess;
        while g(lo).0 >= 0.0 {
            hi = lo;
            lo *= 0.5;
            if lo == 0.0 {
                return 0.0;
            }
        }
    }
    let mut t = 0.5 * (lo + hi);
    for _ in 0..200 {
        let (v, d) = g(t);
        if v == 0.0 {
            return t;
        }
        if v < 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        let mut next = t - v / d;
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - t).abs() <= 1e-15 * next || hi - lo <= 1e-15 * hi {
            return next;
        }
        t = next;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(x: f64, y: f64) -> f64 {
        if x == y {
            0.0
        } else {
            (x - y).abs() / y.abs()
        }
    }

    #[test]
    fn mm1_textbook() {
        // ρ = 0.9: mean response 10/μ, mean wait 9/μ, L = 9, Lq = 8.1.
        let m = MMc::new(0.9, 1.0, 1).unwrap();
        assert!(rel(m.mean_response, 10.0) < 1e-14);
        assert!(rel(m.mean_wait, 9.0) < 1e-14);
        assert!(rel(m.l, 9.0) < 1e-14);
        assert!(rel(m.lq, 8.1) < 1e-14);
        assert!(rel(m.p_wait, 0.9) < 1e-15);
        // M/M/1 response time is Exp(μ − λ): quantile = −ln(1 − q)/(μ − λ).
        for &q in &[1e-12f64, 1e-6, 0.01, 0.5, 0.9, 0.99, 0.999_999, 1.0 - 1e-15] {
            let want = -(-q).ln_1p() / 0.1;
            let got = m.response_quantile(q).unwrap();
            assert!(rel(got, want) < 1e-12, "q={q}: {got} vs {want}");
        }
        // Here θ = μ − λ ≠ μ; the wait quantile is closed form.
        assert!(rel(m.wait_quantile(0.99).unwrap(), (0.9f64 / 0.01).ln() / 0.1) < 1e-14);
        assert_eq!(m.wait_quantile(0.05).unwrap(), 0.0);
        assert!(m.wait_quantile(0.1).unwrap() < 1e-12);
    }

    #[test]
    fn two_servers() {
        // λ = 1, μ = 1, c = 2: C = 1/3, Wq = C/(2 − 1) = 1/3, W = 4/3.
        let m = MMc::new(1.0, 1.0, 2).unwrap();
        assert!(rel(m.p_wait, 1.0 / 3.0) < 1e-15);
        assert!(rel(m.mean_wait, 1.0 / 3.0) < 1e-15);
        assert!(rel(m.mean_response, 4.0 / 3.0) < 1e-15);
        // θ = cμ − λ = 1 = μ: the degenerate case, H(t) = (1 + t) e^−t.
        for &t in &[1e-9f64, 0.01, 0.5, 1.0, 3.0, 40.0] {
            let want_sf = (2.0 / 3.0) * (-t).exp() + (1.0 / 3.0) * (1.0 + t) * (-t).exp();
            assert!(rel(m.response_sf(t).unwrap(), want_sf) < 1e-14);
            let cdf = m.response_cdf(t).unwrap();
            assert!((cdf + m.response_sf(t).unwrap() - 1.0).abs() < 1e-15);
        }
    }

    #[test]
    fn quantile_roundtrip() {
        for &(lam, mu, c) in &[
            (0.9, 1.0, 1i64),
            (1.0, 1.0, 2),
            (7.2, 1.0, 8),
            (15.0, 1.0, 16),
            (60.0, 1.0, 64),
            (99.0, 1.0, 100),
            (3.0, 2.0, 3),        // θ = 3 > μ
            (1.99, 1.0, 2),       // θ = 0.01 < μ
            (2.0 - 1e-9, 1.0, 3), // θ ≈ μ
            (0.5, 1e-6, 1_000_000),
        ] {
            let m = MMc::new(lam, mu, c).unwrap();
            for &q in &[
                1e-10,
                1e-4,
                0.1,
                0.3,
                0.5,
                0.5000001,
                0.9,
                0.99,
                0.9999,
                1.0 - 1e-12,
            ] {
                let t = m.response_quantile(q).unwrap();
                let cdf = m.response_cdf(t).unwrap();
                let sf = m.response_sf(t).unwrap();
                if q <= 0.5 {
                    assert!(rel(cdf, q) < 1e-12, "{lam} {mu} {c} q={q}: cdf {cdf}");
                } else {
                    assert!(rel(sf, 1.0 - q) < 1e-12, "{lam} {mu} {c} q={q}: sf {sf}");
                }
                let w = m.wait_quantile(q).unwrap();
                if w > 0.0 {
                    assert!((m.wait_cdf(w).unwrap() - q).abs() < 1e-14);
                }
            }
            assert_eq!(m.response_quantile(0.0).unwrap(), 0.0);
            assert_eq!(m.response_quantile(1.0).unwrap(), f64::INFINITY);
        }
    }

    #[test]
    fn series_matches_closed_form() {
        for &(x, y) in &[
            (0.3f64, 0.7f64),
            (1.0, 1.0),
            (0.5, 0.5),
            (1e-3, 0.9),
            (0.99, 0.01),
        ] {
            let want = if x == y {
                1.0 - (1.0 + x) * (-x).exp()
            } else {
                1.0 - (x * (-y).exp() - y * (-x).exp()) / (x - y)
            };
            assert!(rel(hypo_cdf_series(x, y), want) < 1e-12, "{x} {y}");
        }
    }

    #[test]
    fn pdf_is_derivative() {
        let m = MMc::new(7.0, 1.0, 8).unwrap();
        for &t in &[0.01, 0.3, 1.0, 4.0] {
            let h = 1e-6 * t;
            let num = (m.response_cdf(t + h).unwrap() - m.response_cdf(t - h).unwrap()) / (2.0 * h);
            assert!(rel(m.response_pdf(t).unwrap(), num) < 1e-6);
        }
    }

    #[test]
    fn errors_and_edges() {
        assert!(matches!(
            MMc::new(1.0, 1.0, 1).unwrap_err(),
            QcoreError::Unstable { .. }
        ));
        assert!(MMc::new(-1.0, 1.0, 1)
            .unwrap_err()
            .to_string()
            .starts_with("arrival_rate"));
        assert!(MMc::new(1.0, 0.0, 2)
            .unwrap_err()
            .to_string()
            .starts_with("service_rate"));
        assert!(MMc::new(1.0, 1.0, 0)
            .unwrap_err()
            .to_string()
            .starts_with("servers"));
        let m = MMc::new(0.0, 2.0, 1).unwrap();
        assert_eq!(m.p_wait, 0.0);
        assert!(rel(m.response_quantile(0.5).unwrap(), 2f64.ln() / 2.0) < 1e-14);
        assert!(m.response_quantile(1.5).is_err());
        assert!(m.response_cdf(f64::NAN).is_err());
        assert_eq!(m.response_cdf(-1.0).unwrap(), 0.0);
        assert_eq!(m.response_cdf(f64::INFINITY).unwrap(), 1.0);
        let e = m.response_quantiles(&[0.5, 2.0]).unwrap_err();
        assert!(e.to_string().contains("at index 1"));
    }

    #[test]
    fn min_servers() {
        // Brute force over c against the definition.
        for &(lam, mu, q, slo) in &[
            (10.0, 1.0, 0.99, 6.0),
            (100.0, 2.0, 0.999, 4.0),
            (0.5, 1.0, 0.9, 2.5),
            (1000.0, 1.0, 0.95, 3.1),
        ] {
            let c = min_servers_mmc(lam, mu, q, slo, SloTarget::Response).unwrap();
            let m = MMc::new(lam, mu, c as i64).unwrap();
            assert!(m.response_quantile(q).unwrap() <= slo);
            if (c as f64 - 1.0) > lam / mu {
                let m = MMc::new(lam, mu, c as i64 - 1).unwrap();
                assert!(m.response_quantile(q).unwrap() > slo);
            }
            let cw = min_servers_mmc(lam, mu, q, 0.1, SloTarget::Wait).unwrap();
            assert!(
                MMc::new(lam, mu, cw as i64)
                    .unwrap()
                    .wait_quantile(q)
                    .unwrap()
                    <= 0.1
            );
        }
        // Unreachable: the p99 of Exp(1) alone is 4.6 s.
        let e = min_servers_mmc(1.0, 1.0, 0.99, 4.0, SloTarget::Response).unwrap_err();
        assert!(e.to_string().starts_with("slo_seconds"));
        assert!(min_servers_mmc(1.0, 1.0, 1.0, 4.0, SloTarget::Response).is_err());
    }
}
