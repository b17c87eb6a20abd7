//! Erlang B (loss probability of M/M/c/c) and Erlang C (probability of waiting in M/M/c).
//!
//! With `c` servers and offered load `a = λ/μ` (in Erlangs), and `p_k = e^-a a^k / k!` the
//! Poisson probabilities,
//!
//! ```text
//! B(c, a) = p_c / Σ_{k≤c} p_k          C(c, a) = B / (1 − ρ (1 − B)),  ρ = a / c < 1
//! ```
//!
//! Nothing here forms a factorial or a power: every quantity is a sum of ratios
//! `p_k / p_c` accumulated in a scaled representation, or a log-space asymptotic form, so
//! the results are finite from one to 10^12 servers and for any finite load. Three
//! evaluation paths are used:
//!
//! - **near the mode with many servers** (`c ≥ 1000`, `|a/(c + 1) − 1| ≤ 0.3`), where
//!   the series below would need thousands of terms: `B = p_c / F(c)` with the Poisson CDF
//!   `F(c) = Q(c + 1, a)` from Temme's uniform asymptotic expansion of the incomplete
//!   gamma function (DLMF 8.12.3–8.12.9; five terms, truncation error below 1e-18 for
//!   `c ≥ 1000`), in a scaled form (`erfcx`) that does not underflow. Constant cost.
//! - **otherwise near or below the mode** (`c ≤ a + 3√a + 3`, or `c ≤ 30`): the series
//!   `1/B = Σ_j Π_{i<j} (c − i)/a` summed from `k = c` downwards until the remaining terms
//!   are below 1e-17 of the sum (at most `c` terms; about 160 when `c ≥ 1000`);
//! - **otherwise above the mode**: `B = p_c / (1 − P(N > c))`, with `ln p_c` from Loader's
//!   saddle-point formula (`stirlerr` and `bd0`) and
//!   `P(N > c) / p_c = Σ_j Π_{i≤j} a/(c + i)` (ratios below one; a few hundred terms at
//!   most).
//!
//! The series are summed in blocks of eight terms whose products do not depend on the
//! running term, so consecutive blocks overlap in the pipeline.
//!
//! All paths give `ln B` and the log-odds `ln((1 − B)/B)` to a few ulps of the log, so
//! tiny probabilities are available in log space even where `B` underflows.

use super::{check_nonnegative, check_servers, sigmoid, softplus, MAX_SERVERS};
use crate::error::{check_same_len, QcoreError, Result};

const LN_2PI: f64 = 1.837_877_066_409_345_5;
/// Below this load (and with at most `SMALL_C` servers) `B = a^c / c!` to full precision.
const TINY_LOAD: f64 = 1e-250;
/// Up to this many servers the downward series is always used (it has at most c terms).
const SMALL_C: u64 = 30;
/// Truncation tolerance of the series, relative to the sum.
const TOL: f64 = 1e-17;
/// The uniform asymptotic expansion is used from this many servers ...
const TEMME_MIN_C: u64 = 1000;
/// ... when `|a/(c + 1) − 1|` is at most this.
const TEMME_MAX_MU: f64 = 0.3;

/// Erlang B in log form: `ln B(c, a)` and the log-odds `ln((1 − B) / B)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangB {
    /// `ln B(c, a)`; `-inf` when `a = 0`.
    pub ln_b: f64,
    /// `ln((1 − B)/B) = ln Σ_{k<c} p_k / p_c`; `+inf` when `a = 0`.
    pub ln_odds: f64,
}

impl ErlangB {
    /// Erlang B for `servers ≥ 1` and a finite `offered_load ≥ 0` (not re-validated).
    pub fn compute(servers: u64, offered_load: f64) -> Self {
        let a = offered_load;
        if a == 0.0 {
            return ErlangB {
                ln_b: f64::NEG_INFINITY,
                ln_odds: f64::INFINITY,
            };
        }
        let c = servers as f64;
        if servers >= TEMME_MIN_C && ((a - (c + 1.0)) / (c + 1.0)).abs() <= TEMME_MAX_MU {
            near_mode_asymptotic(c, a)
        } else if servers > SMALL_C && c > a + 3.0 * a.sqrt() + 3.0 {
            above_mode(c, a)
        } else if a < TINY_LOAD {
            tiny_load(servers, a)
        } else {
            below_mode(servers, a)
        }
    }

    /// `B(c, a)` (underflows to 0 below about 1e-308; see [`ErlangB::ln_b`]).
    pub fn value(&self) -> f64 {
        self.ln_b.exp()
    }

    /// `1 − B(c, a)`, accurate also when `B` is close to one.
    pub fn complement(&self) -> f64 {
        sigmoid(self.ln_odds)
    }
}

/// Erlang C with its complement and logarithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangC {
    /// `C(c, a)`: the probability that an arrival waits.
    pub p_wait: f64,
    /// `1 − C(c, a)`, accurate when `C` is close to one.
    pub p_no_wait: f64,
    /// `ln C(c, a)`.
    pub ln_p_wait: f64,
}

impl ErlangC {
    /// Erlang C for `servers ≥ 1` and `0 ≤ offered_load < servers` (not re-validated).
    ///
    /// `C = B / ((1 − ρ) + ρB)`: a quotient of positive terms with a denominator at most
    /// one, so `B ≤ C ≤ 1` holds in floating point too. Where `B` underflows the same
    /// quantity is evaluated from the log-odds of B, `C = 1 / (1 + (1 − ρ)(1 − B)/B)`.
    pub fn compute(servers: u64, offered_load: f64) -> Self {
        let c = servers as f64;
        let b = ErlangB::compute(servers, offered_load);
        let one_minus_rho = (c - offered_load) / c;
        if b.ln_b > -700.0 {
            let bv = b.value();
            let d = one_minus_rho + (offered_load / c) * bv;
            ErlangC {
                p_wait: (bv / d).min(1.0),
                p_no_wait: one_minus_rho * b.complement() / d,
                ln_p_wait: (b.ln_b - d.ln()).min(0.0),
            }
        } else {
            let x = one_minus_rho.ln() + b.ln_odds;
            ErlangC {
                p_wait: sigmoid(-x),
                p_no_wait: sigmoid(x),
                ln_p_wait: -softplus(x),
            }
        }
    }
}

/// The Erlang B blocking probability `B(servers, offered_load)`.
///
/// Errors: `servers` outside `1..=10^12`, `offered_load` negative or not finite.
pub fn erlang_b(servers: i64, offered_load: f64) -> Result<f64> {
    let c = check_servers("servers", servers)?;
    check_nonnegative("offered_load", offered_load)?;
    Ok(ErlangB::compute(c, offered_load).value())
}

/// The Erlang C waiting probability `C(servers, offered_load)`.
///
/// Errors: as [`erlang_b`], and [`QcoreError::Unstable`] when `offered_load ≥ servers`.
pub fn erlang_c(servers: i64, offered_load: f64) -> Result<f64> {
    let c = check_servers("servers", servers)?;
    check_nonnegative("offered_load", offered_load)?;
    check_stable(c, offered_load, None)?;
    Ok(ErlangC::compute(c, offered_load).p_wait)
}

/// [`erlang_b`] element-wise over two arrays of the same length.
pub fn erlang_b_many(servers: &[i64], offered_load: &[f64]) -> Result<Vec<f64>> {
    let cs = check_arrays(servers, offered_load)?;
    Ok(cs
        .iter()
        .zip(offered_load)
        .map(|(&c, &a)| ErlangB::compute(c, a).value())
        .collect())
}

/// [`erlang_c`] element-wise over two arrays of the same length; any element with
/// `offered_load ≥ servers` is an [`QcoreError::Unstable`] error naming its index.
pub fn erlang_c_many(servers: &[i64], offered_load: &[f64]) -> Result<Vec<f64>> {
    let cs = check_arrays(servers, offered_load)?;
    for (i, (&c, &a)) in cs.iter().zip(offered_load).enumerate() {
        check_stable(c, a, Some(i))?;
    }
    Ok(cs
        .iter()
        .zip(offered_load)
        .map(|(&c, &a)| ErlangC::compute(c, a).p_wait)
        .collect())
}

fn check_stable(c: u64, a: f64, index: Option<usize>) -> Result<()> {
    if a >= c as f64 {
        let at = index.map(|i| format!(" at index {i}")).unwrap_or_default();
        return Err(QcoreError::unstable(format!(
            "offered_load {a} >= servers {c}{at} (utilization {} >= 1); \
             Erlang C needs offered_load < servers",
            a / c as f64
        )));
    }
    Ok(())
}

fn check_arrays(servers: &[i64], offered_load: &[f64]) -> Result<Vec<u64>> {
    check_same_len("servers", servers.len(), "offered_load", offered_load.len())?;
    let mut cs = Vec::with_capacity(servers.len());
    for (i, &c) in servers.iter().enumerate() {
        if !(1..=MAX_SERVERS).contains(&c) {
            return Err(QcoreError::invalid(
                "servers",
                format!("contains {c} at index {i} (servers must be in 1..={MAX_SERVERS})"),
            ));
        }
        cs.push(c as u64);
    }
    for (i, &a) in offered_load.iter().enumerate() {
        if check_nonnegative("offered_load", a).is_err() {
            return Err(QcoreError::invalid(
                "offered_load",
                format!("contains {a} at index {i} (loads must be finite and >= 0)"),
            ));
        }
    }
    Ok(cs)
}

/// Downward series from `k = c`: `t_j = p_{c−j} / p_c = Π_{i<j} (c − i)/a`.
/// `1/B = Σ_{j=0}^{c} t_j`, `(1 − B)/B = Σ_{j=1}^{c} t_j`. Terms are rescaled whenever
/// they exceed 1e20, so nothing overflows for any load ≥ `TINY_LOAD`.
fn below_mode(servers: u64, a: f64) -> ErlangB {
    let mut t = 1.0f64;
    let mut s0 = 1.0f64;
    let mut s1 = 0.0f64;
    let mut log_scale = 0.0f64;
    let mut k = servers as f64; // numerator of the next ratio
    let mut remaining = servers;
    // Blocks of terms: the products inside a block do not depend on the running term,
    // so consecutive blocks overlap in the pipeline. With a ≥ 1 the ratios are below
    // c/a ≤ 7 here, so a block's product cannot overflow.
    if a >= 1.0 {
        // Multiply by 1/a rather than divide; the rounding of 1/a would bias every ratio
        // the same way (an error growing with the number of terms), so each block's
        // product is corrected by (a · fl(1/a))^-8 = 1 + 8e + O(e²), e = 1 − a·fl(1/a)
        // (exact with an FMA); the correction is added, as it is below the ulp of 1.
        let inv_a = 1.0 / a;
        let e8 = BLOCK as f64 * (-a).mul_add(inv_a, 1.0);
        while remaining >= BLOCK as u64 {
            let (p, acc) = block_products(|i| (k - i as f64) * inv_a);
            s1 += t * acc;
            t *= p;
            t += t * e8;
            k -= BLOCK as f64;
            remaining -= BLOCK as u64;
            let f = k / a;
            if f < 1.0 && t * f <= TOL * (s0 + s1) * (1.0 - f) {
                return below_mode_result(s0, s1, log_scale);
            }
            if t > 1e20 {
                log_scale += t.ln();
                s0 /= t;
                s1 /= t;
                t = 1.0;
            }
        }
    }
    for _ in 0..remaining {
        let f = k / a;
        t *= f;
        s1 += t;
        // The ratios decrease with j: once below one, the remainder is at most t f/(1 − f).
        if f < 1.0 && t * f <= TOL * (s0 + s1) * (1.0 - f) {
            break;
        }
        if t > 1e20 {
            log_scale += t.ln();
            s0 /= t;
            s1 /= t;
            t = 1.0;
        }
        k -= 1.0;
    }
    below_mode_result(s0, s1, log_scale)
}

fn below_mode_result(s0: f64, s1: f64, log_scale: f64) -> ErlangB {
    ErlangB {
        ln_b: -((s0 + s1).ln() + log_scale),
        ln_odds: s1.ln() + log_scale,
    }
}

const BLOCK: usize = 8;

/// For ratios `r_0..r_7` (from `ratio(i)`): the product `Π r_i` and the sum of the
/// prefix products `Σ_i Π_{l≤i} r_l`.
#[inline(always)]
fn block_products(ratio: impl Fn(usize) -> f64) -> (f64, f64) {
    let mut r = [0.0f64; BLOCK];
    for (i, ri) in r.iter_mut().enumerate() {
        *ri = ratio(i);
    }
    let mut p = 1.0f64;
    let mut acc = 0.0f64;
    for ri in r {
        p *= ri;
        acc += p;
    }
    (p, acc)
}

/// `a < 1e-250` with few servers: `1/B = (c!/a^c)(1 + a + ...)`, so `ln B = c ln a − ln c!`
/// to full precision, and `1 − B = 1`.
fn tiny_load(servers: u64, a: f64) -> ErlangB {
    let ln_fact: f64 = (2..=servers).map(|k| (k as f64).ln()).sum();
    let ln_b = servers as f64 * a.ln() - ln_fact;
    ErlangB {
        ln_b,
        ln_odds: -ln_b,
    }
}

/// Above the mode (`c > a + 3√a + 3`, `c > 30`): `B = p_c / F(c)` with `F(c) = 1 − P(N > c)`
/// and `P(N > c) = p_c Σ_{j≥1} Π_{i=1}^{j} a/(c + i)` (ratios below one, decreasing).
fn above_mode(c: f64, a: f64) -> ErlangB {
    let ln_pc = ln_poisson_pmf(c, a);
    let mut t = 1.0f64;
    let mut v = 0.0f64;
    let mut k = c + 1.0; // denominator of the next ratio
    if a >= 1.0 {
        // Blocks of eight terms with two divisions each: for denominators d_0..d_7,
        // Π a/d_l = a^8 / Π d_l, and the prefix-product sum by Horner's rule as one
        // fraction num/den. Here a < c ≤ 10^12, so nothing exceeds about 1e97.
        let a8 = (a * a) * (a * a) * ((a * a) * (a * a));
        loop {
            let mut den = k + 7.0;
            let mut num = a;
            for l in (0..7).rev() {
                num = a * (den + num);
                den *= k + f64::from(l);
            }
            v += t * (num / den);
            t *= a8 / den;
            k += 8.0;
            let next = a / k;
            if t == 0.0 || t * next <= TOL * v * (1.0 - next) {
                break;
            }
        }
    } else {
        loop {
            t *= a / k;
            v += t;
            k += 1.0;
            let next = a / k;
            if t == 0.0 || t * next <= TOL * v * (1.0 - next) {
                break;
            }
        }
    }
    let upper = (ln_pc + v.ln()).exp(); // P(N > c) ≤ about 0.01 here
    let pc = ln_pc.exp();
    ErlangB {
        ln_b: ln_pc - (-upper).ln_1p(),
        ln_odds: (-(upper + pc)).ln_1p() - ln_pc,
    }
}

/// Near the mode with `c ≥ 1000`: `B = p_c / F(c)` with `F(c) = P(N ≤ c) = Q(c + 1, a)`
/// by Temme's uniform expansion
/// `Q(s, x) = ½ erfc(z) + e^{−z²}/√(2πs) Σ_k c_k(η) s^{−k}`, `s = c + 1`, `λ = x/s`,
/// `η = sign(λ − 1) √(2(λ − 1 − ln λ))`, `z = η √(s/2)`, written with
/// `erfc(z) = e^{−z²} erfcx(z)` so that nothing underflows. The smaller of `Q` and
/// `1 − Q` is the one evaluated. When `Q ≤ ½` (`a ≥ c + 1`) the large exponents of `p_c`
/// and of `e^{−z²}` are cancelled analytically:
/// `ln p_c + z² = ln((c + 1)/a) + c (ln(1 + 1/c) − 1/c) − stirlerr(c) − ½ ln(2πc)`.
/// The log-odds are `−ln B + ln(1 − B)` (`B ≤ 0.25` in this domain).
fn near_mode_asymptotic(c: f64, a: f64) -> ErlangB {
    let s = c + 1.0;
    let mu = (a - s) / s; // λ − 1
    let half_eta2 = -log1pmx(mu); // λ − 1 − ln λ ≥ 0
    let eta = (2.0 * half_eta2).sqrt().copysign(mu);
    let z2 = s * half_eta2;
    let z = z2.sqrt();
    let mut series = 0.0;
    let mut s_pow = 1.0;
    for coeffs in &TEMME {
        let ck = coeffs.iter().rev().fold(0.0, |acc, &v| acc * eta + v);
        series += ck * s_pow;
        s_pow /= s;
    }
    let r = series / (2.0 * std::f64::consts::PI * s).sqrt();
    let ln_b = if mu >= 0.0 {
        // Q = e^{−z²} (½ erfcx(z) + r) ≤ ½.
        let ln_pc_plus_z2 =
            (s / a).ln() + c * log1pmx(1.0 / c) - stirlerr(c) - 0.5 * (LN_2PI + c.ln());
        ln_pc_plus_z2 - (0.5 * erfcx(z) + r).ln()
    } else {
        // 1 − Q = e^{−z²} (½ erfcx(z) − r) < ½.
        let ln_p = -z2 + (0.5 * erfcx(z) - r).ln();
        ln_poisson_pmf(c, a) - (-ln_p.exp()).ln_1p()
    };
    ErlangB {
        ln_b,
        ln_odds: -ln_b + (-ln_b.exp()).ln_1p(),
    }
}

/// `ln(1 + x) − x` for `|x| ≤ 0.5`, via `ln(1 + x) = 2 atanh(x/(2 + x))`.
fn log1pmx(x: f64) -> f64 {
    let r = x / (2.0 + x);
    let r2 = r * r;
    let mut term = r * r2;
    let mut sum = 0.0f64;
    let mut k = 3.0;
    while term.abs() > 1e-18 * sum.abs().max(f64::MIN_POSITIVE) && k < 200.0 {
        sum += term / k;
        term *= r2;
        k += 2.0;
    }
    -x * x / (2.0 + x) + 2.0 * sum
}

/// The scaled complementary error function `e^{x²} erfc(x)` for `x ≥ 0`: a positive
/// series for `x ≤ 1`, otherwise the continued fraction
/// `1/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))` evaluated from a depth that
/// gives full precision (`12 + 170/x²` levels).
fn erfcx(x: f64) -> f64 {
    const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
    if x <= 1.0 {
        // e^{x²} − (2x/√π) Σ_n (2x²)^n / (2n + 1)!!
        let x2 = x * x;
        let mut term = 2.0 * x * FRAC_1_SQRT_PI;
        let mut sum = 0.0;
        let mut n = 0.0;
        while term > 1e-17 * sum || sum == 0.0 {
            sum += term;
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            if term == 0.0 {
                break;
            }
        }
        x2.exp() - sum
    } else {
        let depth = (12.0 + 170.0 / (x * x)).ceil() as u32;
        let mut t = x;
        for k in (1..=depth).rev() {
            t = x + 0.5 * f64::from(k) / t;
        }
        FRAC_1_SQRT_PI / t
    }
}

/// Temme's coefficients: `c_k(η) = Σ_n TEMME[k][n] η^n` for `k = 0..4` (DLMF 8.12.7–8.12.9),
/// derived exactly in rational arithmetic (reversion of `η(λ)`, the recursion
/// `c_k = η^{-1} c'_{k−1} + (−1)^k g_k/(λ − 1)` with the Stirling coefficients `g_k`) and
/// rounded to `f64`. Truncation error below 1e-18 for `|η| ≤ 0.3`, `s ≥ 1000`.
#[rustfmt::skip]
const TEMME: [[f64; 18]; 5] = [
    [
        -0.3333333333333333,
        0.08333333333333333,
        -0.014814814814814815,
        0.0011574074074074073,
        0.0003527336860670194,
        -0.0001787551440329218,
        3.919263178522438e-05,
        -2.185448510679992e-06,
        -1.85406221071516e-06,
        8.296711340953087e-07,
        -1.7665952736826078e-07,
        6.707853543401498e-09,
        1.0261809784240309e-08,
        -4.382036018453353e-09,
        9.14769958223679e-10,
        -2.5514193994946248e-11,
        -5.830772132550426e-11,
        2.4361948020667415e-11,
    ],
    [
        -0.001851851851851852,
        -0.003472222222222222,
        0.0026455026455026454,
        -0.0009902263374485596,
        0.00020576131687242798,
        -4.018775720164609e-07,
        -1.8098550334489977e-05,
        7.64916091608111e-06,
        -1.6120900894563446e-06,
        4.647127802807434e-09,
        1.378633446915721e-07,
        -5.752545603517705e-08,
        1.1951628599778148e-08,
        -1.7543241719747647e-11,
        -1.0091543710600413e-09,
        4.162792991842583e-10,
        -8.56390702649298e-11,
        6.067215101604758e-14,
    ],
    [
        0.004133597883597883,
        -0.0026813271604938273,
        0.0007716049382716049,
        2.0093878600823047e-06,
        -0.0001073665322636516,
        5.2923448829120125e-05,
        -1.2760635188618728e-05,
        3.423578734096138e-08,
        1.3721957309062934e-06,
        -6.298992138380055e-07,
        1.4280614206064242e-07,
        -2.0477098421990866e-10,
        -1.409252991086752e-08,
        6.228974084922022e-09,
        -1.3670488396617114e-09,
        9.428356159014678e-13,
        1.2872252400089318e-10,
        -5.5645956134363323e-11,
    ],
    [
        0.0006494341563786008,
        0.00022947209362139917,
        -0.0004691894943952557,
        0.00026772063206283885,
        -7.561801671883977e-05,
        -2.396505113867297e-07,
        1.1082654115347302e-05,
        -5.6749528269915965e-06,
        1.4230900732435883e-06,
        -2.7861080291528143e-11,
        -1.6958404091930278e-07,
        8.099464905388083e-08,
        -1.9111168485973655e-08,
        2.3928620439808118e-12,
        2.0620131815488797e-09,
        -9.460496661855133e-10,
        2.1541049775774907e-10,
        -1.388823336813903e-14,
    ],
    [
        -0.0008618882909167117,
        0.0007840392217200666,
        -0.0002990724803031902,
        -1.4638452578843418e-06,
        6.641498215465122e-05,
        -3.968365047179435e-05,
        1.1375726970678419e-05,
        2.507497226237533e-10,
        -1.6954149536558305e-06,
        8.907507532205309e-07,
        -2.292934834000805e-07,
        2.956794137544049e-11,
        2.8865829742708783e-08,
        -1.4189739437803219e-08,
        3.4463580499464896e-09,
        -2.3024517174528067e-13,
        -3.9409233028046403e-10,
        1.86023389685045e-10,
    ],
];

/// `ln(e^-λ λ^x / x!)` for `x > 15` by Loader's saddle-point form
/// `−stirlerr(x) − bd0(x, λ) − ½ ln(2πx)`, accurate to a few ulps of the exponent.
pub(crate) fn ln_poisson_pmf(x: f64, lambda: f64) -> f64 {
    -stirlerr(x) - bd0(x, lambda) - 0.5 * (LN_2PI + x.ln())
}

/// `ln x! − ((x + ½) ln x − x + ½ ln 2π)` for `x > 15` (Stirling series, error < 1e-19).
fn stirlerr(x: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    let xx = x * x;
    (S0 - (S1 - (S2 - (S3 - S4 / xx) / xx) / xx) / xx) / x
}

/// `x ln(x/np) + np − x` without cancellation (Loader 2000).
fn bd0(x: f64, np: f64) -> f64 {
    if (x - np).abs() < 0.1 * (x + np) {
        let mut v = (x - np) / (x + np);
        let mut s = (x - np) * v;
        if s.abs() < f64::MIN_POSITIVE {
            return s;
        }
        let mut ej = 2.0 * x * v;
        v *= v;
        for j in 1..1000 {
            ej *= v;
            let s1 = s + ej / f64::from(2 * j + 1);
            if s1 == s {
                return s1;
            }
            s = s1;
        }
    }
    let r = x / np;
    let ln_r = if r.is_finite() && r >= f64::MIN_POSITIVE {
        r.ln()
    } else {
        x.ln() - np.ln()
    };
    x * ln_r + np - x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook forward recursion `B_k` = a B_{k−1} / (k + a B_{k−1}) as a reference.
    fn recursion(c: u64, a: f64) -> f64 {
        let mut b = 1.0;
        for k in 1..=c {
            b = a * b / (k as f64 + a * b);
        }
        b
    }

    fn rel(x: f64, y: f64) -> f64 {
        if x == y {
            0.0
        } else {
            (x - y).abs() / y.abs()
        }
    }

    #[test]
    fn published_values() {
        // Erlang B table: B(10, 5) = 0.018385, B(1, 1) = 1/2, B(2, 1) = 1/5.
        assert!((erlang_b(10, 5.0).unwrap() - 0.018_384_570_336_648_133).abs() < 1e-15);
        assert!(rel(erlang_b(1, 1.0).unwrap(), 0.5) < 1e-15);
        assert!(rel(erlang_b(2, 1.0).unwrap(), 0.2) < 1e-15);
        // Erlang C for 2 servers at 1 Erlang is 1/3; for one server C = ρ.
        assert!(rel(erlang_c(2, 1.0).unwrap(), 1.0 / 3.0) < 1e-15);
        assert!(rel(erlang_c(1, 0.9).unwrap(), 0.9) < 1e-15);
        assert_eq!(erlang_b(5, 0.0).unwrap(), 0.0);
        assert_eq!(erlang_c(5, 0.0).unwrap(), 0.0);
    }

    #[test]
    fn matches_recursion_across_regimes() {
        let mut worst = 0.0f64;
        for &c in &[
            1u64, 2, 3, 7, 15, 16, 29, 30, 31, 32, 50, 100, 333, 1000, 5000,
        ] {
            for &rho in &[
                1e-6, 0.001, 0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0, 1.01, 1.5, 3.0, 100.0,
            ] {
                let a = rho * c as f64;
                let want = recursion(c, a);
                if want < 1e-290 {
                    continue;
                }
                let b = ErlangB::compute(c, a);
                let r = rel(b.value(), want);
                worst = worst.max(r);
                assert!(r < 1e-12, "B({c}, {a}) = {} want {want}", b.value());
                assert!(rel(b.complement(), 1.0 - want) < 1e-12 || want > 0.5);
            }
        }
        // Around the switch between the two evaluation paths (c = a + 3√a + 3).
        for c in [31u64, 64, 100, 1000, 10_000] {
            let cf = c as f64;
            // Solve a + 3√a + 3 = c for a, then probe either side.
            let s = f64::midpoint(-3.0, (9.0 + 4.0 * (cf - 3.0)).sqrt());
            let a0 = s * s;
            for d in [-1e-9, -1e-3, 0.0, 1e-3, 1e-9] {
                let a = a0 * (1.0 + d);
                let want = recursion(c, a);
                let got = erlang_b(c as i64, a).unwrap();
                assert!(rel(got, want) < 1e-12, "B({c}, {a}) = {got} want {want}");
            }
        }
        assert!(worst < 1e-12);
    }

    #[test]
    fn hundred_thousand_servers() {
        let c = 100_000u64;
        for &rho in &[0.5, 0.9, 0.99, 0.999, 0.9999] {
            let a = rho * c as f64;
            let want = recursion(c, a);
            let b = ErlangB::compute(c, a);
            if want > 1e-300 {
                // The reference recursion itself carries about √c ulps of error.
                assert!(rel(b.value(), want) < 2e-12, "rho {rho}");
            }
            assert!(b.ln_b.is_finite());
            let cc = ErlangC::compute(c, a);
            assert!(cc.p_wait.is_finite() && cc.p_wait >= b.value() && cc.p_wait <= 1.0);
            assert!((cc.p_wait + cc.p_no_wait - 1.0).abs() < 1e-15);
        }
        // Overload: B close to 1 - c/a.
        let a = 2.0 * c as f64;
        assert!(rel(erlang_b(c as i64, a).unwrap(), recursion(c, a)) < 1e-10);
    }

    #[test]
    fn log_space_when_linear_underflows() {
        // B(1000, 1) = p_1000 / F(1000) ≈ e^-1 / 1000!: far below f64's range.
        let b = ErlangB::compute(1000, 1.0);
        let ln_fact_1000: f64 = (2..=1000).map(|k| f64::from(k).ln()).sum();
        let want = -1.0 - ln_fact_1000; // ln(e^-1 1^1000 / 1000!), F(1000) = 1
        assert!(rel(b.ln_b, want) < 1e-14, "{} vs {want}", b.ln_b);
        assert_eq!(b.value(), 0.0);
        assert!(rel(b.ln_odds, -want) < 1e-14);
        // Tiny loads.
        let b = ErlangB::compute(3, 1e-300);
        assert!(rel(b.ln_b, 3.0 * 1e-300f64.ln() - 6f64.ln()) < 1e-15);
        let b = ErlangB::compute(300, 1e-300);
        assert!(b.ln_b.is_finite() && b.ln_b < -1e5);
        let b = ErlangB::compute(2, f64::MIN_POSITIVE / 4.0);
        assert!(b.ln_b.is_finite());
        // Huge loads.
        let b = ErlangB::compute(1, 1e300);
        assert!(rel(b.value(), 1.0) < 1e-15);
        assert!(rel(b.complement(), 1e-300) < 1e-12);
        let b = ErlangB::compute(1_000_000_000_000, 1e300);
        assert_eq!(b.value(), 1.0);
        assert!(rel(b.complement(), 1e-288) < 1e-9);
    }

    #[test]
    fn monotone() {
        for &a in &[0.3, 4.0, 50.0, 900.0] {
            let mut prev = 1.0;
            for c in 1..2000 {
                let b = erlang_b(c, a).unwrap();
                assert!(b <= prev, "B not decreasing in servers at c={c}, a={a}");
                prev = b;
                if (c as f64) > a {
                    assert!(erlang_c(c, a).unwrap() >= b);
                }
            }
        }
        let mut prev = 0.0;
        for i in 1..1000 {
            let b = erlang_b(40, f64::from(i) * 0.1).unwrap();
            assert!(b >= prev);
            prev = b;
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(
            erlang_c(2, 2.0).unwrap_err(),
            QcoreError::Unstable { .. }
        ));
        let e = erlang_b(0, 1.0).unwrap_err();
        assert!(e.to_string().starts_with("servers"));
        let e = erlang_b(1, -1.0).unwrap_err();
        assert!(e.to_string().starts_with("offered_load"));
        assert!(erlang_b(1, f64::NAN).is_err());
        let e = erlang_b_many(&[1, 0], &[1.0, 1.0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("servers contains 0 at index 1 (servers must be in 1..={MAX_SERVERS})")
        );
        let e = erlang_c_many(&[1, 4], &[0.5, 4.0]).unwrap_err();
        assert!(matches!(e, QcoreError::Unstable { .. }));
        assert!(e.to_string().contains("at index 1"));
        assert!(erlang_b_many(&[1], &[1.0, 2.0]).is_err());
        let v = erlang_c_many(&[2, 10], &[1.0, 5.0]).unwrap();
        assert!(rel(v[0], 1.0 / 3.0) < 1e-15);
        assert!(rel(v[1], erlang_c(10, 5.0).unwrap()) < 1e-15);
    }

    #[test]
    fn asymptotic_matches_series() {
        // The uniform expansion against the two series it replaces, over its whole domain.
        for &c in &[1000.0f64, 1500.0, 10_000.0, 100_000.0, 1_000_000.0] {
            for &mu in &[
                -0.3, -0.2, -0.1, -0.01, -1e-4, 0.0, 1e-4, 0.01, 0.1, 0.2, 0.3,
            ] {
                let a = (c + 1.0) * (1.0 + mu);
                let fast = near_mode_asymptotic(c, a);
                let slow = if c > a + 3.0 * a.sqrt() + 3.0 {
                    above_mode(c, a)
                } else {
                    below_mode(c as u64, a)
                };
                let tol = 5e-15 * slow.ln_b.abs().max(4.0);
                assert!(
                    (fast.ln_b - slow.ln_b).abs() <= tol,
                    "c={c} mu={mu}: {} vs {}",
                    fast.ln_b,
                    slow.ln_b
                );
                assert!((fast.ln_odds - slow.ln_odds).abs() <= tol.max(1e-14 * slow.ln_odds.abs()));
            }
        }
    }

    #[test]
    fn erfcx_and_log1pmx() {
        // e^{x²} erfc(x): erfc(0.5) = 0.4795001221869535, erfc(1) = 0.15729920705028513,
        // erfc(3) = 2.209049699858544e-05, and 1/(x√π)(1 − 1/(2x²) + 3/(4x⁴)) for large x.
        for &(x, erfc) in &[
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (1.2, 0.089_686_021_770_364_62),
            (3.0, 2.209_049_699_858_544e-5),
        ] {
            let x: f64 = x;
            assert!(rel(erfcx(x), erfc * (x * x).exp()) < 2e-15, "{x}");
        }
        let x = 1e4f64;
        let asym =
            (1.0 - 0.5 / (x * x) + 0.75 / (x * x * x * x)) / (x * std::f64::consts::PI.sqrt());
        assert!(rel(erfcx(x), asym) < 1e-15);
        for &x in &[-0.3f64, -0.05, 0.01, 0.3] {
            let want = x.ln_1p() - x;
            assert!(rel(log1pmx(x), want) < 1e-13, "{x}");
        }
        for &x in &[-1e-3f64, 1e-8] {
            // ln(1 + x) − x = Σ_{n≥2} (−1)^{n+1} x^n / n
            let want: f64 = (2..14).map(|n| -(-x).powi(n) / f64::from(n)).sum();
            assert!(rel(log1pmx(x), want) < 1e-15, "{x}");
        }
        assert_eq!(log1pmx(0.0), 0.0);
    }

    #[test]
    fn bd0_and_stirlerr() {
        // ln 20! = 42.335616460753485
        let ln_fact_20 = 20.5 * 20f64.ln() - 20.0 + 0.5 * LN_2PI + stirlerr(20.0);
        assert!((ln_fact_20 - 42.335_616_460_753_485).abs() < 1e-13);
        // bd0 equals the naive formula where that is well conditioned.
        for &(x, np) in &[(100.0f64, 10.0f64), (20.0, 30.0), (50.0, 50.5)] {
            let naive: f64 = x * (x / np).ln() + np - x;
            assert!((bd0(x, np) - naive).abs() < 1e-12 * naive.abs().max(1e-3));
        }
    }
}
