//! Value → bucket index: the base-2 exponential mapping of OpenTelemetry exponential
//! histograms and Prometheus native histograms.
//!
//! At scale `s` the base is `b = 2^(2^-s)` and positive bucket `i` holds `(b^i, b^(i+1)]`
//! (upper bound inclusive). Quantile estimates use the point of least relative error of a
//! bucket, `2·b^(i+1)/(1+b)`, whose relative error is at most `(b−1)/(b+1)`.
//!
//! The index comes from the exponent bits and, for `s > 0`, a lookup table over the top
//! `s + 1` mantissa bits with one correction compare. The table's thresholds are the exact
//! largest doubles below each irrational boundary `2^(k/2^s)`, so the index is exact for
//! every double (powers of two, the only representable boundaries, land in the lower
//! bucket as the specifications require).

use std::sync::OnceLock;

/// Coarsest supported scale (OpenTelemetry's minimum).
pub const MIN_SCALE: i32 = -10;
/// Finest supported scale. Scale 16 has relative error 5.3e-6.
pub const MAX_SCALE: i32 = 16;

/// The abstraction a sketch needs from a mapping.
pub trait IndexMapping {
    /// Bucket index of a positive finite value.
    fn index(&self, v: f64) -> i32;
    /// The estimate returned for bucket `i` (point of least relative error).
    fn value(&self, i: i32) -> f64;
    /// Lower bound (exclusive) of bucket `i`.
    fn lower_bound(&self, i: i32) -> f64;
    /// The relative error bound of [`IndexMapping::value`] for values inside a bucket.
    fn relative_error(&self) -> f64;
}

/// Relative error `(b−1)/(b+1)` of the base-2 exponential mapping at `scale`.
pub fn scale_relative_error(scale: i32) -> f64 {
    let base = (2f64.ln() * 2f64.powi(-scale)).exp();
    // (b-1)/(b+1) = tanh(ln(b)/2), computed without cancellation.
    let half_ln = 2f64.ln() * 2f64.powi(-scale) / 2.0;
    let t = half_ln.tanh();
    if t.is_finite() {
        t
    } else {
        (base - 1.0) / (base + 1.0)
    }
}

/// The coarsest scale whose relative error is at most `relative_accuracy`, or `None` when
/// even [`MAX_SCALE`] is too coarse.
pub fn scale_for_accuracy(relative_accuracy: f64) -> Option<i32> {
    // A margin of 1e-12 keeps the guarantee strict under the rounding of the estimate.
    (MIN_SCALE..=MAX_SCALE).find(|&s| scale_relative_error(s) * (1.0 + 1e-12) <= relative_accuracy)
}

/// One cell of the mantissa table: the bucket at the cell's start and the mantissa bits of
/// the one boundary inside the cell (`u64::MAX` when there is none).
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    threshold: u64,
    j0: i32,
}

impl Cell {
    /// Bucket offset within the octave of a value with fraction bits `f` in this cell.
    #[inline(always)]
    pub fn bucket(&self, f: u64) -> i32 {
        self.j0 + i32::from(f > self.threshold)
    }

    /// Bucket offset at the cell's start.
    pub fn first_bucket(&self) -> i32 {
        self.j0
    }

    /// Fraction bits of the boundary inside the cell (`u64::MAX` when there is none).
    pub fn threshold(&self) -> u64 {
        self.threshold
    }
}

/// The base-2 exponential mapping at a fixed scale.
#[derive(Clone)]
pub struct ExpMapping {
    scale: i32,
    table: &'static [Cell],
    /// `2^-scale` as a float, for value reconstruction.
    inv_per_octave: f64,
    /// `2·b/(1+b)`: the representative of `(L, b·L]` is `L·factor`.
    factor: f64,
    relative_error: f64,
}

impl std::fmt::Debug for ExpMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the other fields follow from the scale
        f.debug_struct("ExpMapping")
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ExpMapping {
    fn eq(&self, other: &Self) -> bool {
        self.scale == other.scale
    }
}

const MANT_BITS: u32 = 52;
const MANT_MASK: u64 = (1u64 << MANT_BITS) - 1;

impl ExpMapping {
    /// The mapping at `scale` (clamped to the supported range by the caller).
    pub fn new(scale: i32) -> Self {
        debug_assert!((MIN_SCALE..=MAX_SCALE).contains(&scale));
        let scale = scale.clamp(MIN_SCALE, MAX_SCALE);
        let table: &'static [Cell] = if scale > 0 { table_for(scale) } else { &[] };
        let base = 2f64.powf(2f64.powi(-scale));
        ExpMapping {
            scale,
            table,
            inv_per_octave: 2f64.powi(-scale),
            factor: if base.is_finite() {
                2.0 * base / (1.0 + base)
            } else {
                2.0
            },
            relative_error: scale_relative_error(scale),
        }
    }

    /// The scale (OpenTelemetry `scale`, Prometheus `schema`).
    pub fn scale(&self) -> i32 {
        self.scale
    }

    /// Lowest index a finite positive double can map to.
    pub fn min_index(&self) -> i32 {
        self.index(f64::from_bits(1))
    }

    /// Highest index a finite positive double can map to.
    pub fn max_index(&self) -> i32 {
        self.index(f64::MAX)
    }

    /// A copyable kernel for bulk indexing of positive normal values (keeps the scale and
    /// table in registers inside hot loops).
    pub fn normal_indexer(&self) -> NormalIndexer {
        NormalIndexer {
            scale: self.scale,
            shift: if self.scale > 0 {
                MANT_BITS - self.scale as u32 - 1
            } else {
                0
            },
            table: self.table,
        }
    }

    /// Index of a positive normal value from its bits (no sign bit, biased exponent ≥ 1).
    #[inline(always)]
    pub fn index_normal_bits(&self, bits: u64) -> i32 {
        let e = (bits >> MANT_BITS) as i32 - 1023;
        let f = bits & MANT_MASK;
        if self.scale > 0 {
            let c = (f >> (MANT_BITS - self.scale as u32 - 1)) as usize;
            let cell = self.table[c];
            (e << self.scale) + cell.j0 + i32::from(f > cell.threshold)
        } else {
            (e - i32::from(f == 0)) >> (-self.scale)
        }
    }

    /// Exponent `e` and fraction bits `f` of a positive finite `v = (1 + f/2^52)·2^e`,
    /// with subnormals normalised.
    #[inline(always)]
    fn split(v: f64) -> (i32, u64) {
        let bits = v.to_bits();
        let biased = (bits >> MANT_BITS) as i32;
        let frac = bits & MANT_MASK;
        if biased != 0 {
            (biased - 1023, frac)
        } else {
            // Subnormal: frac = v · 2^1074, nonzero.
            let lz = frac.leading_zeros(); // ≥ 12
            let shift = lz - 11; // moves the leading one to bit 52
            let m = frac << shift;
            (-1022 - shift as i32, m & MANT_MASK)
        }
    }

    /// Index of a positive finite value (the caller guarantees `v > 0` and finite).
    #[inline(always)]
    pub fn index_positive(&self, v: f64) -> i32 {
        let (e, f) = Self::split(v);
        if self.scale > 0 {
            let c = (f >> (MANT_BITS - self.scale as u32 - 1)) as usize;
            // The table has 2^(scale+1) cells and c < 2^(scale+1) by construction.
            let cell = self.table[c];
            (e << self.scale) + cell.j0 + i32::from(f > cell.threshold)
        } else {
            (e - i32::from(f == 0)) >> (-self.scale)
        }
    }
}

impl IndexMapping for ExpMapping {
    #[inline(always)]
    fn index(&self, v: f64) -> i32 {
        self.index_positive(v)
    }

    fn value(&self, i: i32) -> f64 {
        let lower = self.lower_bound(i);
        lower * self.factor
    }

    fn lower_bound(&self, i: i32) -> f64 {
        // i / 2^scale is exact in f64; split into integer and fractional octaves so the
        // power stays accurate, then scale by the exact power of two.
        let x = f64::from(i) * self.inv_per_octave;
        let whole = x.floor();
        let frac = x - whole;
        ldexp(frac.exp2(), whole as i32)
    }

    fn relative_error(&self) -> f64 {
        self.relative_error
    }
}

/// See [`ExpMapping::normal_indexer`].
#[derive(Clone, Copy)]
pub struct NormalIndexer {
    scale: i32,
    shift: u32,
    table: &'static [Cell],
}

impl NormalIndexer {
    /// Index of a positive normal value from its bits; requires `scale > 0`.
    #[inline(always)]
    pub fn index_fine(&self, bits: u64) -> i32 {
        let e = (bits >> MANT_BITS) as i32 - 1023;
        let f = bits & MANT_MASK;
        let cell = self.table[(f >> self.shift) as usize];
        (e << self.scale) + cell.j0 + i32::from(f > cell.threshold)
    }

    /// Index of a positive normal value from its bits; requires `scale ≤ 0`.
    #[inline(always)]
    pub fn index_coarse(&self, bits: u64) -> i32 {
        let e = (bits >> MANT_BITS) as i32 - 1023;
        let f = bits & MANT_MASK;
        (e - i32::from(f == 0)) >> (-self.scale)
    }

    /// The scale.
    pub fn scale(&self) -> i32 {
        self.scale
    }

    /// The table as a fixed-size array (`N = 2^(scale+1)`), for kernels specialised on
    /// the scale.
    pub fn table_array<const N: usize>(&self) -> Option<&'static [Cell; N]> {
        self.table.try_into().ok()
    }

    /// The mantissa table (`2^(scale+1)` cells; empty for `scale ≤ 0`).
    pub fn table(&self) -> &'static [Cell] {
        self.table
    }

    /// Whether [`NormalIndexer::index_fine`] applies.
    pub fn is_fine(&self) -> bool {
        self.scale > 0
    }
}

/// `m · 2^e` without intermediate overflow or underflow.
pub fn ldexp(m: f64, e: i32) -> f64 {
    let mut m = m;
    let mut e = e;
    while e > 1000 {
        m *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        m *= 2f64.powi(-1000);
        e += 1000;
    }
    m * 2f64.powi(e)
}

fn table_for(scale: i32) -> &'static [Cell] {
    static TABLES: [OnceLock<Vec<Cell>>; (MAX_SCALE + 1) as usize] =
        [const { OnceLock::new() }; (MAX_SCALE + 1) as usize];
    TABLES[scale as usize].get_or_init(|| build_table(scale).0)
}

/// Build the mantissa table for `scale > 0`. Also returns how many threshold comparisons
/// the interval arithmetic could not decide (zero in practice; checked by a unit test).
fn build_table(scale: i32) -> (Vec<Cell>, usize) {
    let per_octave = 1u64 << scale;
    let mut undecided = 0usize;
    // thresholds[k-1] = fraction bits of T_k, the largest double < 2^(k/2^s), k = 1..2^s-1.
    let mut thresholds = Vec::with_capacity(per_octave as usize);
    for k in 1..per_octave {
        let guess = 2f64.powf(k as f64 / per_octave as f64);
        let mut m = (guess.to_bits() & MANT_MASK) | (1u64 << MANT_BITS);
        let mut le = |m: u64| {
            let (r, decided) = pow_le(m, scale as u32, k as i64);
            if !decided {
                undecided += 1;
            }
            r
        };
        while !le(m) {
            m -= 1;
        }
        while le(m + 1) {
            m += 1;
        }
        thresholds.push(m & MANT_MASK);
    }
    let cells = 1usize << (scale + 1);
    let cell_shift = MANT_BITS - scale as u32 - 1;
    let mut table = Vec::with_capacity(cells);
    let mut k = 0usize; // number of thresholds strictly below the current cell start
    for c in 0..cells {
        let start = (c as u64) << cell_shift;
        let end = start + (1u64 << cell_shift); // exclusive
        while k < thresholds.len() && thresholds[k] < start {
            k += 1;
        }
        // Values f in the cell with f > threshold move to the next bucket; a threshold
        // equal to `start` means f = start is still in bucket k.
        let threshold = if k < thresholds.len() && thresholds[k] < end {
            thresholds[k]
        } else {
            u64::MAX
        };
        table.push(Cell {
            threshold,
            j0: k as i32,
        });
    }
    // Cell 0 holds no boundary (bucket 0 is wider than a cell); it encodes the power of
    // two instead: f = 0 is the upper bound of bucket -1, every other f is in bucket 0.
    table[0] = Cell {
        threshold: 0,
        j0: -1,
    };
    (table, undecided)
}

/// Is `(m/2^52)^(2^s) ≤ 2^k`? `m` is a 53-bit integer mantissa in `[2^52, 2^53)`.
/// Interval arithmetic on 128-bit mantissas; the boolean says whether the answer was
/// decided (the interval excluded the boundary).
fn pow_le(m: u64, s: u32, k: i64) -> (bool, bool) {
    // value = mant · 2^exp with mant normalised to bit 127.
    let mant0 = u128::from(m) << 75;
    let exp0: i64 = -52 - 75;
    let (mut lo, mut lo_e) = (mant0, exp0);
    let (mut hi, mut hi_e) = (mant0, exp0);
    for _ in 0..s {
        (lo, lo_e) = square(lo, lo_e, false);
        (hi, hi_e) = square(hi, hi_e, true);
    }
    // Compare against 2^k.
    let cmp = |mant: u128, e: i64| -> std::cmp::Ordering {
        let top = e + 127;
        if top == k {
            mant.cmp(&(1u128 << 127))
        } else {
            top.cmp(&k)
        }
    };
    match (cmp(lo, lo_e), cmp(hi, hi_e)) {
        (_, std::cmp::Ordering::Less | std::cmp::Ordering::Equal) => (true, true),
        (std::cmp::Ordering::Greater, _) => (false, true),
        _ => (true, false),
    }
}

/// Square a normalised 128-bit mantissa, truncating (round down) or rounding up.
fn square(a: u128, e: i64, up: bool) -> (u128, i64) {
    let (hi, lo) = mul_u128(a, a);
    let (mut mant, mut exp, rest) = if hi >> 127 == 1 {
        (hi, 2 * e + 128, lo)
    } else {
        ((hi << 1) | (lo >> 127), 2 * e + 127, lo << 1)
    };
    if up && rest != 0 {
        if let Some(m) = mant.checked_add(1) {
            mant = m;
        } else {
            mant = 1u128 << 127;
            exp += 1;
        }
    }
    (mant, exp)
}

/// Full 256-bit product of two u128 as (high, low).
fn mul_u128(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & u128::from(u64::MAX)) + (p10 & u128::from(u64::MAX));
    let lo = (p00 & u128::from(u64::MAX)) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference index from a high-precision log, valid away from boundaries.
    fn index_by_log(v: f64, scale: i32) -> f64 {
        v.log2() * 2f64.powi(scale)
    }

    #[test]
    fn tables_are_decided_for_every_scale() {
        for s in 1..=MAX_SCALE {
            let (table, undecided) = build_table(s);
            assert_eq!(undecided, 0, "scale {s}");
            assert_eq!(table.len(), 1 << (s + 1));
            // j0 is non-decreasing and ends at 2^s - 1; cell 0 encodes powers of two.
            assert_eq!((table[0].j0, table[0].threshold), (-1, 0));
            assert!(table.windows(2).all(|w| w[0].j0 <= w[1].j0));
            let last = table[table.len() - 1];
            let top = last.j0 + i32::from(last.threshold != u64::MAX);
            assert_eq!(top, (1 << s) - 1);
        }
    }

    #[test]
    fn powers_of_two_are_upper_bounds() {
        for s in MIN_SCALE..=MAX_SCALE {
            let m = ExpMapping::new(s);
            for e in [-1074, -1022, -10, -1, 0, 1, 7, 1023] {
                let v = ldexp(1.0, e);
                let i = m.index(v);
                // 2^e = b^(e·2^s): the upper bound of bucket e·2^s − 1.
                let expected = if s >= 0 {
                    (e << s) - 1
                } else {
                    (e - 1) >> (-s)
                };
                assert_eq!(i, expected, "scale {s} e {e}");
                // The next double up is in the next bucket when the boundary is 2^e.
                if e >= -1022 && (s >= 0 || e.rem_euclid(1 << (-s)) == 0) {
                    let up = f64::from_bits(v.to_bits() + 1);
                    assert_eq!(m.index(up), expected + 1, "scale {s} e {e}");
                }
            }
        }
    }

    #[test]
    fn thresholds_are_exact_neighbours_of_boundaries() {
        // For each boundary b^k (k not a multiple of 2^s), T_k and nextup(T_k) fall on
        // either side: index(T_k) = k - 1 and index(nextup(T_k)) = k.
        for s in [1, 2, 3, 6, 9] {
            let m = ExpMapping::new(s);
            for k in 1..(1 << s) {
                let approx = 2f64.powf(f64::from(k) / f64::from(1 << s));
                // Find the last double with index k-1 near approx.
                let mut x = f64::from_bits(approx.to_bits() - 4);
                while m.index(x) == k - 1 {
                    x = f64::from_bits(x.to_bits() + 1);
                }
                assert_eq!(m.index(x), k, "scale {s} k {k}");
                let below = f64::from_bits(x.to_bits() - 1);
                // below ≤ b^k < x: check with the exact comparator.
                let mb = (below.to_bits() & MANT_MASK) | (1 << 52);
                let mx = (x.to_bits() & MANT_MASK) | (1 << 52);
                assert!(pow_le(mb, s as u32, i64::from(k)).0);
                assert!(!pow_le(mx, s as u32, i64::from(k)).0);
            }
        }
    }

    #[test]
    fn index_agrees_with_log_away_from_boundaries() {
        let mut state = 0x9e3779b97f4a7c15u64;
        for s in [0, 1, 4, 6, 8, 12, -1, -3] {
            let m = ExpMapping::new(s);
            for _ in 0..20_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = f64::from_bits((state >> 2) % 0x7fe0_0000_0000_0000 + 1);
                let x = index_by_log(v, s);
                let i = m.index(v);
                // Away from a boundary, i = ceil(x) - 1.
                if (x - x.round()).abs() > 1e-6 * x.abs().max(1.0) {
                    assert_eq!(f64::from(i), x.ceil() - 1.0, "v {v:e} scale {s}");
                }
                // The representative is within the relative error bound.
                let r = m.value(i);
                if v >= f64::MIN_POSITIVE {
                    assert!(
                        (r - v).abs() <= m.relative_error() * v * (1.0 + 1e-9),
                        "v {v:e} r {r:e} scale {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn scale_choice() {
        assert_eq!(scale_for_accuracy(0.01), Some(6));
        assert_eq!(scale_for_accuracy(0.02), Some(5));
        assert_eq!(scale_for_accuracy(1.0 / 3.0 + 1e-9), Some(0));
        assert_eq!(scale_for_accuracy(1e-9), None);
        let e6 = scale_relative_error(6);
        assert!((e6 - 0.005415).abs() < 1e-6, "{e6}");
        assert!((scale_relative_error(5) - 0.010830).abs() < 1e-6);
    }

    #[test]
    fn extreme_indices() {
        for s in MIN_SCALE..=MAX_SCALE {
            let m = ExpMapping::new(s);
            assert!(m.min_index() < m.max_index());
            assert!(m.value(m.max_index()).is_finite(), "scale {s}");
            assert!(m.value(m.min_index()) >= 0.0);
        }
    }
}
