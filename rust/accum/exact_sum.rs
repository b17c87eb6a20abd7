//! An exact, order-independent accumulator of sums of doubles and of products of two
//! doubles.
//!
//! The state is one signed big integer `N` in units of `2^-2176` (below the smallest
//! product of two doubles, `2^-2148`), held as trimmed two's-complement 64-bit limbs.
//! Every double is `M·2^E` with an integer mantissa, so every addition is exact and the
//! result does not depend on order or grouping. Bulk ingestion accumulates mantissas per
//! binary exponent in `i128` slots ([`ExpAccumulator`]) and folds them in once per call.

/// Bit position of `2^0` in the big integer.
pub const UNIT_SHIFT: i64 = 2176;
/// Largest number of limbs a decoded value may have (covers ±2^2200 with headroom).
const MAX_LIMBS: usize = 80;

/// Exact signed sum.
#[derive(Clone, Debug, Default)]
pub struct ExactSum {
    /// Limb index of `limbs[0]`.
    lo: usize,
    /// Two's complement, least significant first; the top limb carries the sign.
    limbs: Vec<u64>,
}

impl PartialEq for ExactSum {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.normalized(), other.normalized());
        a.lo == b.lo && a.limbs == b.limbs
    }
}

impl ExactSum {
    /// Zero.
    pub fn new() -> Self {
        Self::default()
    }

    fn is_negative(&self) -> bool {
        self.limbs.last().is_some_and(|&t| t >> 63 == 1)
    }

    fn sign_limb(&self) -> u64 {
        if self.is_negative() {
            u64::MAX
        } else {
            0
        }
    }

    /// Make limbs `[lo_limb, hi_limb]` addressable, with a pure sign limb on top.
    fn ensure(&mut self, lo_limb: usize, hi_limb: usize) {
        if self.limbs.is_empty() {
            self.lo = lo_limb;
            self.limbs.resize(hi_limb - lo_limb + 2, 0);
            return;
        }
        if lo_limb < self.lo {
            let extra = self.lo - lo_limb;
            self.limbs.splice(0..0, std::iter::repeat_n(0u64, extra));
            self.lo = lo_limb;
        }
        let sign = self.sign_limb();
        let top = self.lo + self.limbs.len() - 1;
        if hi_limb + 1 > top {
            self.limbs.resize(hi_limb + 2 - self.lo, sign);
        }
        let last = self.limbs[self.limbs.len() - 1];
        if last != 0 && last != u64::MAX {
            self.limbs.push(sign);
        }
        // A top limb of all ones/zeros whose neighbour has the other sign bit still
        // represents the value; one more sign limb keeps a full limb of headroom.
        let n = self.limbs.len();
        if n >= 2 && (self.limbs[n - 2] >> 63) != (self.limbs[n - 1] >> 63) {
            self.limbs.push(sign);
        }
    }

    /// Add `±mag · 2^(bit - UNIT_SHIFT)`; `bit ≥ 0`.
    pub fn add_at(&mut self, mag: u128, negative: bool, bit: u64) {
        if mag == 0 {
            return;
        }
        let limb = (bit / 64) as usize;
        let off = (bit % 64) as u32;
        let shifted = mag << off;
        let top = if off == 0 {
            0
        } else {
            (mag >> (128 - off)) as u64
        };
        let words = [shifted as u64, (shifted >> 64) as u64, top];
        self.ensure(limb, limb + 3);
        let base = limb - self.lo;
        if negative {
            let mut borrow = 0u64;
            for (k, slot) in self.limbs[base..].iter_mut().enumerate() {
                let w = if k < 3 { words[k] } else { 0 };
                let (s1, b1) = slot.overflowing_sub(w);
                let (s2, b2) = s1.overflowing_sub(borrow);
                *slot = s2;
                borrow = u64::from(b1 | b2);
                if k >= 2 && borrow == 0 {
                    break;
                }
            }
        } else {
            let mut carry = 0u64;
            for (k, slot) in self.limbs[base..].iter_mut().enumerate() {
                let w = if k < 3 { words[k] } else { 0 };
                let (s1, c1) = slot.overflowing_add(w);
                let (s2, c2) = s1.overflowing_add(carry);
                *slot = s2;
                carry = u64::from(c1 | c2);
                if k >= 2 && carry == 0 {
                    break;
                }
            }
        }
    }

    /// Add a finite double exactly.
    pub fn add_f64(&mut self, v: f64) {
        let (m, e) = decompose(v);
        if m != 0 {
            self.add_at(u128::from(m), v < 0.0, (e + UNIT_SHIFT) as u64);
        }
    }

    /// Add the exact product `a·b` of two finite doubles (the tests' exact reference).
    #[cfg(test)]
    pub fn add_product(&mut self, a: f64, b: f64) {
        let (ma, ea) = decompose(a);
        let (mb, eb) = decompose(b);
        let m = u128::from(ma) * u128::from(mb);
        if m != 0 {
            self.add_at(m, (a < 0.0) != (b < 0.0), (ea + eb + UNIT_SHIFT) as u64);
        }
    }

    /// Add a non-negative integer.
    pub fn add_u64(&mut self, n: u64) {
        self.add_at(u128::from(n), false, UNIT_SHIFT as u64);
    }

    /// Add another exact sum.
    pub fn add_sum(&mut self, other: &ExactSum) {
        let o = other.normalized();
        if o.limbs.is_empty() {
            return;
        }
        let neg = o.is_negative();
        // Add |o| limb by limb (as 64-bit chunks of a magnitude).
        let mag = if neg {
            negate(&o.limbs)
        } else {
            o.limbs.clone()
        };
        for (k, &w) in mag.iter().enumerate() {
            if w != 0 {
                self.add_at(u128::from(w), neg, ((o.lo + k) * 64) as u64);
            }
        }
        self.normalize();
    }

    /// Trim redundant limbs (canonical form), in place.
    pub fn normalize(&mut self) {
        let limbs = &mut self.limbs;
        // Drop redundant sign limbs on top.
        while limbs.len() >= 2 {
            let n = limbs.len();
            let t = limbs[n - 1];
            if (t == 0 && limbs[n - 2] >> 63 == 0) || (t == u64::MAX && limbs[n - 2] >> 63 == 1) {
                limbs.pop();
            } else {
                break;
            }
        }
        if limbs.len() == 1 && limbs[0] == 0 {
            limbs.clear();
        }
        // Drop zero limbs at the bottom.
        let z = limbs.iter().take_while(|&&w| w == 0).count();
        if z == limbs.len() {
            limbs.clear();
            self.lo = 0;
            return;
        }
        limbs.drain(..z);
        self.lo += z;
    }

    fn normalized(&self) -> ExactSum {
        let mut n = self.clone();
        n.normalize();
        n
    }

    /// Whether the sum is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.limbs.iter().all(|&w| w == 0)
    }

    /// Sign and magnitude limbs (canonical), with the limb offset.
    fn sign_magnitude(&self) -> (bool, usize, Vec<u64>) {
        let n = self.normalized();
        let neg = n.is_negative();
        let mag = if neg { negate(&n.limbs) } else { n.limbs };
        (neg, n.lo, mag)
    }

    /// The value as `(negative, top64, sticky, exp)`: `|x| ≈ top64 · 2^exp` with `top64`'s
    /// bit 63 set and `sticky` telling whether bits below were dropped.
    fn top_bits(&self) -> Option<(bool, u64, bool, i64)> {
        let (neg, lo, mag) = self.sign_magnitude();
        let top_idx = mag.iter().rposition(|&w| w != 0)?;
        let lz = mag[top_idx].leading_zeros();
        // Absolute bit position of the top bit.
        let p = ((lo + top_idx) * 64) as i64 + 63 - i64::from(lz);
        let bit = |b: i64| -> u64 {
            if b < (lo * 64) as i64 {
                return 0;
            }
            let rel = (b - (lo * 64) as i64) as usize;
            mag.get(rel / 64).map_or(0, |w| (w >> (rel % 64)) & 1)
        };
        let mut top64 = 0u64;
        for k in 0..64 {
            top64 |= bit(p - k) << (63 - k);
        }
        // Sticky: any set bit below p - 63.
        let cut = p - 63; // lowest bit included
        let mut sticky = false;
        if cut > (lo * 64) as i64 {
            let rel = (cut - (lo * 64) as i64) as usize;
            let (wi, bi) = (rel / 64, rel % 64);
            sticky = mag[..wi].iter().any(|&w| w != 0)
                || (bi > 0 && mag.get(wi).is_some_and(|&w| w & ((1u64 << bi) - 1) != 0));
        }
        Some((neg, top64, sticky, cut - UNIT_SHIFT))
    }

    /// The sum correctly rounded to the nearest double (ties to even); ±inf on overflow.
    pub fn to_f64(&self) -> f64 {
        let Some((neg, top64, sticky, exp)) = self.top_bits() else {
            return 0.0;
        };
        // |x| = top64 · 2^exp (+ sticky); top bit exponent:
        let e_top = exp + 63;
        // Bits kept: 53 for normal results, fewer for subnormal ones.
        let keep = (e_top + 1075).min(53);
        let mag = if keep <= 0 {
            // Below half the smallest subnormal, or between half and one.
            let half = keep == 0 && (top64 > 1 << 63 || sticky);
            if half {
                f64::from_bits(1)
            } else {
                0.0
            }
        } else {
            let drop = 64 - keep as u32;
            let mant = top64 >> drop;
            let rem = top64 & ((1u64 << drop) - 1);
            let half = 1u64 << (drop - 1);
            let up = rem > half || (rem == half && (sticky || mant & 1 == 1));
            let mant = mant + u64::from(up);
            ldexp_exact(mant as f64, exp + i64::from(drop))
        };
        if neg {
            -mag
        } else {
            mag
        }
    }

    /// `self / other` to about one ulp, without overflow in intermediate steps.
    pub fn ratio(&self, other: &ExactSum) -> f64 {
        let (Some(a), Some(b)) = (self.top_bits(), other.top_bits()) else {
            return if other.is_zero() { f64::NAN } else { 0.0 };
        };
        let ma = a.1 as f64; // rounded, ≤ 1 ulp
        let mb = b.1 as f64;
        let q = ldexp_exact(ma / mb, a.3 - b.3);
        if a.0 == b.0 {
            q
        } else {
            -q
        }
    }

    /// Canonical encoding: varint limb offset, varint limb count, limbs little-endian.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let n = self.normalized();
        crate::accum::codec::put_varint(out, n.lo as u64);
        crate::accum::codec::put_varint(out, n.limbs.len() as u64);
        for w in &n.limbs {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// Decode the canonical encoding; rejects non-canonical or oversized values.
    pub fn decode(r: &mut crate::accum::codec::Reader<'_>) -> crate::Result<ExactSum> {
        let lo = r.varint()? as usize;
        let len = r.varint()? as usize;
        if lo > MAX_LIMBS || len > MAX_LIMBS || lo + len > MAX_LIMBS {
            return Err(crate::QcoreError::data("exact sum out of range"));
        }
        let mut limbs = Vec::with_capacity(len);
        for _ in 0..len {
            limbs.push(u64::from_le_bytes(r.array::<8>()?));
        }
        let s = ExactSum { lo, limbs };
        if s.normalized().limbs != s.limbs || (len == 0 && lo != 0) {
            return Err(crate::QcoreError::data(
                "exact sum is not in canonical form",
            ));
        }
        Ok(s)
    }
}

/// Two's complement negation of a limb vector (same length).
fn negate(limbs: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(limbs.len());
    let mut carry = 1u64;
    for &w in limbs {
        let (s, c) = (!w).overflowing_add(carry);
        out.push(s);
        carry = u64::from(c);
    }
    out
}

/// `|v| = m · 2^e` with an integer mantissa `m < 2^53`.
#[inline(always)]
pub fn decompose(v: f64) -> (u64, i64) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    }
}

/// `m · 2^e` for an integer-valued `m < 2^54`, exact whenever the result is representable.
pub fn ldexp_exact(m: f64, e: i64) -> f64 {
    let mut m = m;
    let mut e = e;
    while e > 1023 {
        m *= pow2(1023);
        e -= 1023;
        if m.is_infinite() {
            return m;
        }
    }
    while e < -1022 {
        // Keep the intermediate normal: scale down by at most what keeps it ≥ 2^-1022.
        let step = (-1022 - e).min(1022);
        m *= pow2(-step as i32);
        e += step;
        if m == 0.0 {
            return m;
        }
    }
    m * pow2(e as i32)
}

/// `2^e` for `e ∈ [-1022, 1023]`.
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// Per-exponent `i128` accumulation of mantissas for bulk ingestion.
pub struct ExpAccumulator {
    /// Slot `k` holds mantissas in units of `2^(k + MIN_EXP)`.
    slots: Vec<i128>,
    lo: usize,
    hi: usize,
}

/// Lowest exponent unit held by an [`ExpAccumulator`] (products of two doubles).
const MIN_EXP: i64 = -2148;
/// Number of slots: products reach 2^(1024+1024).
const SLOTS: usize = 4200;

impl Default for ExpAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl ExpAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        ExpAccumulator {
            slots: vec![0; SLOTS],
            lo: SLOTS,
            hi: 0,
        }
    }

    /// Add `±m·2^e` with `m < 2^53`. At most 2^74 additions before overflow.
    #[inline(always)]
    pub fn add(&mut self, m: u64, negative: bool, e: i64) {
        let k = (e - MIN_EXP) as usize;
        let v = if negative {
            -i128::from(m)
        } else {
            i128::from(m)
        };
        self.slots[k] += v;
        self.lo = self.lo.min(k);
        self.hi = self.hi.max(k);
    }

    /// Add a non-negative sum of mantissas `m < 2^64` in units of `2^e`.
    pub fn add_wide(&mut self, m: u64, e: i64) {
        if m != 0 {
            let k = (e - MIN_EXP) as usize;
            self.slots[k] += i128::from(m);
            self.lo = self.lo.min(k);
            self.hi = self.hi.max(k);
        }
    }

    /// Add `±m·2^e` for a sum of mantissas `m < 2^64`.
    pub fn add_wide_signed(&mut self, m: u64, negative: bool, e: i64) {
        if m != 0 {
            let k = (e - MIN_EXP) as usize;
            let v = i128::from(m);
            self.slots[k] += if negative { -v } else { v };
            self.lo = self.lo.min(k);
            self.hi = self.hi.max(k);
        }
    }

    /// Add a double exactly.
    #[inline(always)]
    pub fn add_f64(&mut self, v: f64) {
        let (m, e) = decompose(v);
        self.add(m, v < 0.0, e);
    }

    /// Add the exact product `a·b` (split into two 53-bit halves).
    #[inline(always)]
    pub fn add_product(&mut self, a: f64, b: f64) {
        let (ma, ea) = decompose(a);
        let (mb, eb) = decompose(b);
        let p = u128::from(ma) * u128::from(mb);
        let neg = (a < 0.0) != (b < 0.0);
        let lo = (p & ((1u128 << 53) - 1)) as u64;
        let hi = (p >> 53) as u64;
        self.add(lo, neg, ea + eb);
        if hi != 0 {
            self.add(hi, neg, ea + eb + 53);
        }
    }

    /// Fold into an exact sum and reset.
    pub fn drain_into(&mut self, sum: &mut ExactSum) {
        if self.lo > self.hi {
            return;
        }
        for k in self.lo..=self.hi {
            let v = self.slots[k];
            if v != 0 {
                let bit = (k as i64 + MIN_EXP + UNIT_SHIFT) as u64;
                sum.add_at(v.unsigned_abs(), v < 0, bit);
                self.slots[k] = 0;
            }
        }
        self.lo = SLOTS;
        self.hi = 0;
        sum.normalize();
    }
}

/// The unit (binary exponent) of a fixed point for doubles of magnitude up to about
/// `bound` (any positive hint; else 1): a double of that binade shifted by at most 62 bits.
pub fn fixed_unit(bound: f64) -> i64 {
    let b = if bound.is_finite() && bound > 0.0 {
        bound
    } else {
        1.0
    };
    let (_, e) = decompose(b);
    (e - 62).max(-UNIT_SHIFT)
}

/// Exact accumulation of doubles near a magnitude hint, in an `i128` fixed point: values
/// within 62 binades below the hint are added as shifted mantissas (a register add),
/// others go straight to the [`ExactSum`], so the result is exact whatever the hint; the
/// hint only decides what is fast. Flushed into the exact sum every 2048 additions (each
/// addend is below 2^115, so the fixed point cannot overflow).
pub struct FixedSum {
    unit: i64,
    acc: i128,
    n: u32,
    sum: ExactSum,
}

impl FixedSum {
    /// An empty sum for values of magnitude up to about `bound` (any positive hint).
    pub fn new(bound: f64) -> Self {
        FixedSum {
            unit: fixed_unit(bound),
            acc: 0,
            n: 0,
            sum: ExactSum::new(),
        }
    }

    /// Add a finite double exactly.
    #[inline(always)]
    pub fn add(&mut self, v: f64) {
        let (m, e) = decompose(v);
        let sh = e - self.unit;
        if (0..=62).contains(&sh) {
            let x = i128::from(m) << sh;
            self.acc += if v < 0.0 { -x } else { x };
            self.n += 1;
            if self.n == 2048 {
                self.flush();
            }
        } else if m != 0 {
            self.add_apart(v);
        }
    }

    #[cold]
    #[inline(never)]
    fn add_apart(&mut self, v: f64) {
        self.sum.add_f64(v);
    }

    /// Add every value of `values` (finite doubles) exactly, in four fixed-point lanes
    /// (two per sign, so no negation; flushed every 2047 additions).
    #[inline(always)]
    pub fn add_all(&mut self, values: impl IntoIterator<Item = f64>) {
        let unit = self.unit;
        let mut acc = [0u128; 4];
        let mut k = 0usize;
        for v in values {
            let (m, e) = decompose(v);
            let sh = e - unit;
            if (0..=62).contains(&sh) {
                let x = u128::from(m) << (sh as u32 & 63);
                acc[(k & 1) | (usize::from(v < 0.0) << 1)] += x;
                k += 1;
                if k == 2047 {
                    self.flush_lanes(&mut acc);
                    k = 0;
                }
            } else if m != 0 {
                self.add_apart(v);
            }
        }
        self.flush_lanes(&mut acc);
    }

    #[inline(never)]
    fn flush_lanes(&mut self, acc: &mut [u128; 4]) {
        let bit = (self.unit + UNIT_SHIFT) as u64;
        for (i, a) in acc.iter_mut().enumerate() {
            if *a != 0 {
                self.sum.add_at(*a, i >= 2, bit);
                *a = 0;
            }
        }
    }

    #[inline(never)]
    fn flush(&mut self) {
        if self.acc != 0 {
            let bit = (self.unit + UNIT_SHIFT) as u64;
            self.sum.add_at(self.acc.unsigned_abs(), self.acc < 0, bit);
        }
        self.acc = 0;
        self.n = 0;
    }

    /// The exact sum of everything added.
    pub fn finish(mut self) -> ExactSum {
        self.flush();
        self.sum.normalize();
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    #[test]
    fn small_integers() {
        let mut s = ExactSum::new();
        for v in [1.0, 2.0, -3.5, 0.25] {
            s.add_f64(v);
        }
        assert_eq!(s.to_f64(), -0.25);
        s.add_f64(0.25);
        assert!(s.is_zero());
        assert_eq!(s, ExactSum::new());
    }

    #[test]
    fn cancellation_is_exact() {
        let mut s = ExactSum::new();
        for v in [1e308, 1.0, -1e308, 1e-300, f64::MIN_POSITIVE / 8.0] {
            s.add_f64(v);
        }
        assert_eq!(s.to_f64(), 1.0);
        let mut t = ExactSum::new();
        t.add_f64(1e308);
        t.add_f64(1e308);
        assert_eq!(t.to_f64(), f64::INFINITY);
        t.add_f64(-1e308);
        assert_eq!(t.to_f64(), 1e308);
    }

    #[test]
    fn order_independent_and_correctly_rounded() {
        let mut st = 3u64;
        for _ in 0..200 {
            let n = (rng(&mut st) % 50) as usize;
            let vals: Vec<f64> = (0..n)
                .map(|_| {
                    let e = (rng(&mut st) % 40) as i32 - 20;
                    let m = (rng(&mut st) % 1_000_000) as f64 / 1000.0 - 500.0;
                    m * 2f64.powi(e)
                })
                .collect();
            let mut a = ExactSum::new();
            for &v in &vals {
                a.add_f64(v);
            }
            let mut b = ExactSum::new();
            let mut acc = ExpAccumulator::new();
            for &v in vals.iter().rev() {
                acc.add_f64(v);
            }
            acc.drain_into(&mut b);
            assert_eq!(a, b);
            // Reference: exact sum via i128 fixed point at 2^-90 (lowest bit ≥ 2^-82 here).
            let mut fx: i128 = 0;
            for &v in &vals {
                let (m, e) = decompose(v);
                let sh = e + 90;
                assert!(sh >= 0);
                let t = i128::from(m) << sh;
                fx += if v < 0.0 { -t } else { t };
            }
            let want = (fx as f64) * 2f64.powi(-90); // i128 → f64 rounds correctly
            assert_eq!(a.to_f64(), want);
        }
    }

    #[test]
    fn products_are_exact() {
        let mut s = ExactSum::new();
        let a = 0.1;
        let b = 3.0;
        s.add_product(a, b);
        // 0.1*3 has a rounding error in f64; the exact product minus the rounded one.
        let p = a * b;
        s.add_f64(-p);
        let err = a.mul_add(b, -p);
        assert_eq!(s.to_f64(), err);
        let mut acc = ExpAccumulator::new();
        acc.add_product(a, b);
        acc.add_product(-1e-300, 1e-300);
        acc.add_product(1e-300, 1e-300);
        let mut t = ExactSum::new();
        acc.drain_into(&mut t);
        t.add_f64(-p);
        assert_eq!(t.to_f64(), err);
    }

    #[test]
    fn subnormal_rounding() {
        let mut s = ExactSum::new();
        s.add_f64(f64::from_bits(3));
        s.add_f64(f64::from_bits(5));
        assert_eq!(s.to_f64(), f64::from_bits(8));
        let mut p = ExactSum::new();
        p.add_product(f64::from_bits(1), 0.75); // 0.75 · 2^-1074 → rounds to 2^-1074
        assert_eq!(p.to_f64(), f64::from_bits(1));
        let mut q = ExactSum::new();
        q.add_product(f64::from_bits(1), 0.5); // exactly half: ties to even → 0
        assert_eq!(q.to_f64(), 0.0);
        let mut r = ExactSum::new();
        r.add_product(f64::from_bits(3), 0.5); // 1.5 ulp → 2
        assert_eq!(r.to_f64(), f64::from_bits(2));
    }

    #[test]
    fn codec_round_trip_and_merge() {
        let mut st = 11u64;
        for _ in 0..100 {
            let mut a = ExactSum::new();
            let mut b = ExactSum::new();
            let mut whole = ExactSum::new();
            for _ in 0..(rng(&mut st) % 20) {
                let v = f64::from_bits(rng(&mut st) % 0x7fe0_0000_0000_0000)
                    * if rng(&mut st) % 2 == 0 { 1.0 } else { -1.0 };
                if rng(&mut st) % 2 == 0 {
                    a.add_f64(v);
                } else {
                    b.add_f64(v);
                }
                whole.add_f64(v);
            }
            let mut m = b.clone();
            m.add_sum(&a);
            assert_eq!(m, whole);
            let mut buf = Vec::new();
            whole.encode(&mut buf);
            let mut r = crate::accum::codec::Reader::new(&buf);
            let d = ExactSum::decode(&mut r).unwrap();
            assert_eq!(d, whole);
            let mut buf2 = Vec::new();
            m.encode(&mut buf2);
            assert_eq!(buf, buf2);
        }
    }

    #[test]
    fn fixed_sum_is_exact_for_any_hint() {
        let mut st = 5u64;
        for hint in [1e-300, 1e-3, 1.0, 1e5, 1e300] {
            let vals: Vec<f64> = (0..5000)
                .map(|_| {
                    let e = (rng(&mut st) % 120) as i32 - 60;
                    let m = (rng(&mut st) % 1_000_000) as f64 - 500_000.0;
                    m * 2f64.powi(e)
                })
                .collect();
            let mut want = ExactSum::new();
            let mut f = FixedSum::new(hint);
            let mut g = FixedSum::new(hint);
            for &v in &vals {
                want.add_f64(v);
                f.add(v);
            }
            g.add_all(vals[..1000].iter().copied());
            g.add_all(vals[1000..].iter().copied());
            assert_eq!(f.finish(), want, "hint {hint}");
            assert_eq!(g.finish(), want, "hint {hint}");
        }
    }

    #[test]
    fn ratio() {
        let mut a = ExactSum::new();
        a.add_f64(1e308);
        a.add_f64(1e308);
        let mut c = ExactSum::new();
        c.add_u64(4);
        assert!((a.ratio(&c) - 5e307).abs() <= 5e307 * 1e-15);
    }
}
