//! The simulator's random numbers: a fixed, documented algorithm so that the same seed
//! gives the same result on every platform.
//!
//! - Generator: xoshiro256++ (Blackman & Vigna, 2019), seeded with four outputs of
//!   splitmix64 applied to the user's `u64` seed.
//! - Streams: each source of randomness (arrivals, service, patience, start-up delays)
//!   has its own stream, `jump()` (2^128 steps) apart; replication `r` starts
//!   `long_jump()` (2^192 steps) × r from the seed. Arrival and service samples therefore
//!   do not depend on the number of servers or on the queue discipline (common random
//!   numbers).
//! - Uniforms: the top 53 bits of a draw, `u = (x >> 11) · 2^-53` in [0, 1).
//! - `ln` and `exp` are ports of fdlibm's `__ieee754_log` / `__ieee754_exp` written with
//!   plain IEEE-754 operations, so they do not depend on the platform's libm.
//! - Exponential: `-ln(1 − u)`. Normal: Marsaglia's polar method (the second value of
//!   each pair is kept for the next call). Gamma: Marsaglia–Tsang (2000), with
//!   `Gamma(a) = Gamma(a + 1) · u^(1/a)` for shape a < 1. Lognormal: `exp(μ + σ z)`.

// The fdlibm constants are kept digit for digit as published (tested bit-exact below).
#![allow(clippy::excessive_precision)]

/// One step of splitmix64 (Steele, Lea & Flood); used to expand a seed.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256++ with a cached spare normal deviate.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

const JUMP: [u64; 4] = [
    0x180e_c6d3_3cfd_0aba,
    0xd5a6_1266_f0c9_392c,
    0xa958_2618_e03f_c9aa,
    0x39ab_dc45_29b1_661c,
];
const LONG_JUMP: [u64; 4] = [
    0x76e1_5d3e_fefd_cbbf,
    0xc500_4e44_1c52_2fb3,
    0x7771_0069_854e_e241,
    0x3910_9bb0_2acb_e635,
];

/// The independent streams of one simulation run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Arrivals = 0,
    Service = 1,
    Patience = 2,
    Startup = 3,
    Control = 4,
}

impl Rng {
    /// A generator seeded from `seed` through splitmix64.
    pub fn new(seed: u64) -> Self {
        let mut st = seed;
        let s = [
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
        ];
        Rng { s, spare: None }
    }

    /// The generator of `stream` in replication `replication` for `seed`.
    pub fn stream(seed: u64, replication: u64, stream: Stream) -> Self {
        let mut r = Rng::replication_base(seed, replication);
        for _ in 0..(stream as u32) {
            r.jump_with(&JUMP);
        }
        r
    }

    /// The generator `replication` long jumps after the seed. Replications usually come
    /// in increasing order on a thread, so the last base is cached per thread and the
    /// cost of R replications is O(R) jumps, not O(R²); the result does not depend on
    /// the cache.
    fn replication_base(seed: u64, replication: u64) -> Self {
        thread_local! {
            static LAST: std::cell::Cell<Option<(u64, u64, [u64; 4])>> =
                const { std::cell::Cell::new(None) };
        }
        let (mut r, mut at) = match LAST.with(std::cell::Cell::get) {
            Some((s, k, st)) if s == seed && k <= replication => (Rng { s: st, spare: None }, k),
            _ => (Rng::new(seed), 0),
        };
        while at < replication {
            r.jump_with(&LONG_JUMP);
            at += 1;
        }
        LAST.with(|c| c.set(Some((seed, replication, r.s))));
        r
    }

    /// The next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn jump_with(&mut self, table: &[u64; 4]) {
        let mut acc = [0u64; 4];
        for &word in table {
            for b in 0..64 {
                if word & (1u64 << b) != 0 {
                    for (a, s) in acc.iter_mut().zip(self.s.iter()) {
                        *a ^= *s;
                    }
                }
                self.next_u64();
            }
        }
        self.s = acc;
        self.spare = None;
    }

    /// A uniform in [0, 1) with 53 random bits.
    #[inline(always)]
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as i64) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A uniform in (0, 1].
    #[inline(always)]
    pub fn uniform_pos(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift (no modulo bias
    /// beyond 2^-64 · n, which is negligible for the table sizes used here).
    #[inline(always)]
    pub fn index(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * (n as u128)) >> 64) as usize
    }

    /// An exponential deviate with mean 1 (Marsaglia–Tsang ziggurat, 256 layers: one
    /// 64-bit draw and a table look-up for ~98.9 % of the deviates).
    #[inline(always)]
    pub fn exp1(&mut self) -> f64 {
        self.exp1_with(ziggurat())
    }

    /// Fill `out` with exponential deviates of mean `mean` (the same values, in order,
    /// as repeated `mean * exp1()`).
    pub fn fill_exp(&mut self, mean: f64, out: &mut [f64]) {
        let z = ziggurat();
        for x in out.iter_mut() {
            *x = mean * self.exp1_with(z);
        }
    }

    /// Fill `a` from `self` and `b` from `other` with exponential deviates (means
    /// `mean_a`, `mean_b`), interleaving the two generators so that their dependency
    /// chains overlap. Each stream yields exactly what [`Rng::fill_exp`] would.
    pub fn fill_exp_pair(
        &mut self,
        mean_a: f64,
        a: &mut [f64],
        other: &mut Rng,
        mean_b: f64,
        b: &mut [f64],
    ) {
        let z = ziggurat();
        for (x, y) in a.iter_mut().zip(b.iter_mut()) {
            *x = mean_a * self.exp1_with(z);
            *y = mean_b * other.exp1_with(z);
        }
        let n = a.len().min(b.len());
        for x in &mut a[n..] {
            *x = mean_a * self.exp1_with(z);
        }
        for y in &mut b[n..] {
            *y = mean_b * other.exp1_with(z);
        }
    }

    #[inline(always)]
    fn exp1_with(&mut self, z: &Ziggurat) -> f64 {
        loop {
            let bits = self.next_u64();
            let i = (bits & 0xff) as usize;
            let x = ((bits >> 11) as i64) as f64 * z.xs[i];
            if x < z.x[i + 1] {
                return x;
            }
            if let Some(v) = self.exp1_slow(z, i, x) {
                return v;
            }
        }
    }

    #[cold]
    fn exp1_slow(&mut self, z: &Ziggurat, i: usize, x: f64) -> Option<f64> {
        if i == 0 {
            // The tail beyond R: R + Exp(1) by memorylessness.
            return Some(ZIG_R - ln(self.uniform_pos()));
        }
        let y = z.f[i + 1] + (z.f[i] - z.f[i + 1]) * self.uniform();
        (y < exp(-x)).then_some(x)
    }

    /// A standard normal deviate (Marsaglia's polar method).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * ln(s) / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }

    /// A gamma deviate with the given shape (> 0) and scale 1 (Marsaglia–Tsang).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let g = self.gamma(shape + 1.0);
            let u = self.uniform_pos();
            return g * exp(ln(u) / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform_pos();
            let x2 = x * x;
            if u < 1.0 - 0.0331 * x2 * x2 {
                return d * v;
            }
            if ln(u) < 0.5 * x2 + d * (1.0 - v + ln(v)) {
                return d * v;
            }
        }
    }
}

/// Right edge of the base layer of the exponential ziggurat (Marsaglia & Tsang, 2000).
const ZIG_R: f64 = 7.697_117_470_131_487;
/// Area of each of its 256 layers.
const ZIG_V: f64 = 3.949_659_822_581_572e-3;

/// Layer edges `x[0] = V/f(R) > x[1] = R > ... > x[256] = 0` and `f[i] = exp(−x[i])`,
/// computed once with this module's `ln` / `exp` (so identical on every platform).
pub struct Ziggurat {
    x: [f64; 257],
    /// `x[i] · 2^-53` (exact), to scale a 53-bit integer in one multiplication.
    xs: [f64; 257],
    f: [f64; 257],
}

fn ziggurat() -> &'static Ziggurat {
    static Z: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    Z.get_or_init(|| {
        let mut x = [0.0; 257];
        let mut f = [0.0; 257];
        x[0] = ZIG_V / exp(-ZIG_R);
        x[1] = ZIG_R;
        for i in 2..256 {
            x[i] = -ln(exp(-x[i - 1]) + ZIG_V / x[i - 1]);
        }
        x[256] = 0.0;
        let mut xs = [0.0; 257];
        for i in 0..257 {
            f[i] = exp(-x[i]);
            xs[i] = x[i] * (1.0 / 9_007_199_254_740_992.0);
        }
        Ziggurat { x, xs, f }
    })
}

const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const TWO54: f64 = 1.801_439_850_948_198_400_00e+16;
const LG1: f64 = 6.666_666_666_666_735_130e-01;
const LG2: f64 = 3.999_999_999_940_941_908e-01;
const LG3: f64 = 2.857_142_874_366_239_149e-01;
const LG4: f64 = 2.222_219_843_214_978_396e-01;
const LG5: f64 = 1.818_357_216_161_805_012e-01;
const LG6: f64 = 1.531_383_769_920_937_332e-01;
const LG7: f64 = 1.479_819_860_511_658_591e-01;

/// Natural logarithm, a port of fdlibm's `__ieee754_log` (error < 1 ulp); identical on
/// every IEEE-754 platform.
#[inline]
pub fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut hx = (bits >> 32) as i32;
    let lx = bits as u32;
    let mut k: i32 = 0;
    let mut x = x;
    if hx < 0x0010_0000 {
        if ((hx & 0x7fff_ffff) as u32 | lx) == 0 {
            return f64::NEG_INFINITY;
        }
        if hx < 0 {
            return f64::NAN;
        }
        k -= 54;
        x *= TWO54;
        hx = (x.to_bits() >> 32) as i32;
    }
    if hx >= 0x7ff0_0000 {
        return x + x;
    }
    k += (hx >> 20) - 1023;
    hx &= 0x000f_ffff;
    let i = (hx + 0x95f64) & 0x0010_0000;
    let hi = u64::from((hx | (i ^ 0x3ff0_0000)) as u32);
    x = f64::from_bits((hi << 32) | (x.to_bits() & 0xffff_ffff));
    k += i >> 20;
    let f = x - 1.0;
    if (0x000f_ffff & (2 + hx)) < 3 {
        if f == 0.0 {
            if k == 0 {
                return 0.0;
            }
            let dk = f64::from(k);
            return dk * LN2_HI + dk * LN2_LO;
        }
        let r = f * f * (0.5 - 0.333_333_333_333_333_33 * f);
        if k == 0 {
            return f - r;
        }
        let dk = f64::from(k);
        return dk * LN2_HI - ((r - dk * LN2_LO) - f);
    }
    let s = f / (2.0 + f);
    let dk = f64::from(k);
    let z = s * s;
    let mut i = hx - 0x6147a;
    let w = z * z;
    let j = 0x6b851 - hx;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    i |= j;
    let r = t2 + t1;
    if i > 0 {
        let hfsq = 0.5 * f * f;
        if k == 0 {
            f - (hfsq - s * (hfsq + r))
        } else {
            dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)
        }
    } else if k == 0 {
        f - s * (f - r)
    } else {
        dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)
    }
}

const INVLN2: f64 = std::f64::consts::LOG2_E;
const P1: f64 = 1.666_666_666_666_660_190_37e-01;
const P2: f64 = -2.777_777_777_701_559_338_42e-03;
const P3: f64 = 6.613_756_321_437_934_361_17e-05;
const P4: f64 = -1.653_390_220_546_525_153_90e-06;
const P5: f64 = 4.138_136_797_057_238_460_39e-08;

/// Exponential function, a port of fdlibm's `__ieee754_exp` (error < 1 ulp); identical on
/// every IEEE-754 platform.
#[inline]
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 7.097_827_128_933_839_730_96e+02 {
        return f64::INFINITY;
    }
    if x < -7.451_332_191_019_411_084_20e+02 {
        return 0.0;
    }
    let hx = ((x.to_bits() >> 32) as u32) & 0x7fff_ffff;
    let (hi, lo, k) = if hx > 0x3fd6_2e42 {
        // |x| > 0.5 ln 2: reduce x = k ln 2 + r.
        let k: i32 = if hx < 0x3ff0_a2b2 {
            if x > 0.0 {
                1
            } else {
                -1
            }
        } else {
            (INVLN2 * x + if x < 0.0 { -0.5 } else { 0.5 }) as i32
        };
        let kf = f64::from(k);
        (x - kf * LN2_HI, kf * LN2_LO, k)
    } else if hx < 0x3e30_0000 {
        return 1.0 + x;
    } else {
        (x, 0.0, 0)
    };
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    if k == 0 {
        return 1.0 - ((r * c) / (c - 2.0) - r);
    }
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    if k >= -1021 {
        let bits = y.to_bits() as i64 + (i64::from(k) << 52);
        f64::from_bits(bits as u64)
    } else {
        let bits = y.to_bits() as i64 + (i64::from(k + 1000) << 52);
        f64::from_bits(bits as u64) * 9.332_636_185_032_188_789_90e-302
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_reference_values() {
        // Reference: the C implementation seeded with s = {1, 2, 3, 4}.
        let mut r = Rng {
            s: [1, 2, 3, 4],
            spare: None,
        };
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, vec![41943041, 58720359, 3588806011781223]);
    }

    #[test]
    fn fdlibm_constants_are_bit_exact() {
        let want: [(f64, u64); 16] = [
            (LN2_HI, 0x3fe6_2e42_fee0_0000),
            (LN2_LO, 0x3dea_39ef_3579_3c76),
            (TWO54, 0x4350_0000_0000_0000),
            (LG1, 0x3fe5_5555_5555_5593),
            (LG2, 0x3fd9_9999_9997_fa04),
            (LG3, 0x3fd2_4924_9422_9359),
            (LG4, 0x3fcc_71c5_1d8e_78af),
            (LG5, 0x3fc7_4664_96cb_03de),
            (LG6, 0x3fc3_9a09_d078_c69f),
            (LG7, 0x3fc2_f112_df3e_5244),
            (INVLN2, 0x3ff7_1547_652b_82fe),
            (P1, 0x3fc5_5555_5555_553e),
            (P2, 0xbf66_c16c_16be_bd93),
            (P3, 0x3f11_566a_af25_de2c),
            (P4, 0xbebb_bd41_c5d2_6bf1),
            (P5, 0x3e66_3769_72be_a4d0),
        ];
        for (i, (v, bits)) in want.iter().enumerate() {
            assert_eq!(v.to_bits(), *bits, "constant {i}");
        }
    }

    #[test]
    fn splitmix_reference() {
        let mut s = 1234567u64;
        assert_eq!(splitmix64(&mut s), 6457827717110365317);
        assert_eq!(splitmix64(&mut s), 3203168211198807973);
    }

    #[test]
    fn ln_exp_within_one_ulp_of_libm() {
        let mut r = Rng::new(7);
        for i in 0..200_000 {
            let x = match i % 4 {
                0 => r.uniform_pos(),
                1 => r.uniform_pos() * 1e6,
                2 => exp(r.uniform() * 1400.0 - 700.0),
                _ => 1.0 + (r.uniform() - 0.5) * 1e-5,
            };
            let a = ln(x);
            let b = x.ln();
            assert!(
                (a - b).abs() <= 2.0 * f64::EPSILON * b.abs().max(1e-300),
                "ln({x}) {a} {b}"
            );
            let y = r.uniform() * 1400.0 - 700.0;
            let a = exp(y);
            let b = y.exp();
            assert!((a - b).abs() <= 2.0 * f64::EPSILON * b, "exp({y}) {a} {b}");
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        for x in [1e-5, -1e-5, 0.3, -0.3, 0.4, 0.7, -0.7, 1.0, -1.0, 1.2, 2.5] {
            assert!(
                (exp(x) - x.exp()).abs() <= 2.0 * f64::EPSILON * x.exp(),
                "{x}"
            );
        }
    }

    #[test]
    fn streams_differ_and_are_reproducible() {
        let a: Vec<u64> = {
            let mut r = Rng::stream(1, 0, Stream::Arrivals);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::stream(1, 0, Stream::Service);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::stream(1, 1, Stream::Arrivals);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let a2: Vec<u64> = {
            let mut r = Rng::stream(1, 0, Stream::Arrivals);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, a2);
        assert_ne!(a, b);
        assert_ne!(a, c);
        // The per-thread cache of replication bases does not change the streams.
        let fresh = |rep: u64| {
            let mut r = Rng::new(1);
            for _ in 0..rep {
                r.jump_with(&LONG_JUMP);
            }
            r.jump_with(&JUMP);
            r.next_u64()
        };
        for rep in [3u64, 7, 2, 9, 9, 0] {
            assert_eq!(Rng::stream(1, rep, Stream::Service).next_u64(), fresh(rep));
        }
    }

    fn moments(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
        (m, v)
    }

    #[test]
    fn sampler_moments() {
        let mut r = Rng::new(3);
        let n = 400_000;
        let e: Vec<f64> = (0..n).map(|_| r.exp1()).collect();
        let (m, v) = moments(&e);
        assert!((m - 1.0).abs() < 0.01 && (v - 1.0).abs() < 0.02, "{m} {v}");
        // Tail and body probabilities against exp(−t), including beyond the base layer.
        for t in [0.1, 0.5, 1.0, 2.0, 4.0, 7.0, 8.0, 10.0] {
            let p = e.iter().filter(|&&x| x > t).count() as f64 / f64::from(n);
            let want = (-t).exp();
            let sd = (want * (1.0 - want) / f64::from(n)).sqrt();
            assert!(
                (p - want).abs() < 5.0 * sd + 1e-6,
                "P(X > {t}) = {p}, want {want}"
            );
        }
        let z = ziggurat();
        assert!(z.x[255] > 0.0 && z.x[255] < 0.1 && z.x.windows(2).all(|w| w[0] > w[1]));
        let z: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let (m, v) = moments(&z);
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.01, "{m} {v}");
        for shape in [0.3, 1.0, 2.5, 25.0] {
            let g: Vec<f64> = (0..n).map(|_| r.gamma(shape)).collect();
            let (m, v) = moments(&g);
            assert!((m / shape - 1.0).abs() < 0.015, "shape {shape}: mean {m}");
            assert!((v / shape - 1.0).abs() < 0.04, "shape {shape}: var {v}");
        }
        let u: Vec<usize> = (0..n).map(|_| r.index(10)).collect();
        assert!(u.iter().all(|&i| i < 10));
    }
}
