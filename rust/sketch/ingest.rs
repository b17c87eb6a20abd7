//! The fused bulk ingest of unweighted values at scales `1..=MAX_FUSED_SCALE`.
//!
//! One read of the input, in blocks of [`BLOCK`] values (16 KiB, resident in L1): a
//! vectorised pass over the block (AVX2 when available) for the minimum, the maximum and
//! the smallest nonzero magnitude, then one scalar pass that adds each value's integer mantissa to the
//! slot of its sign and biased exponent and counts it in the slot of its sign and bucket.
//! Both are spread over [`LANES`] interleaved sub-histograms so repeated buckets do not
//! stall on store-to-load forwarding. Zeros and negative values take the same branch-free
//! path (zeros land in a slot of their own). NaN and infinities (found from the mantissa
//! sums of biased exponent 2047) and subnormals (from the smallest magnitude) are
//! detected after the pass; the scratch is cleared and the caller rejects the batch or
//! takes it value by value.
//!
//! The bucket of a value is [`Cell::bucket`] of the same table that
//! [`ExpMapping::index_normal_bits`] reads, offset by the exponent: the slot of a
//! positive normal value is its index plus `1023·2^S`, of a negative one its index plus
//! `3071·2^S`.

use super::mapping::{Cell, ExpMapping};
use crate::accum::exact_sum::{ExactSum, ExpAccumulator};
use std::sync::Mutex;

/// Values per block: the mantissa sums of one exponent over a block stay below
/// `2048·2^53 = 2^64`, whether the four lanes share the block or one lane takes it all.
pub const BLOCK: usize = 2048;
/// Interleaved sub-histograms.
pub const LANES: usize = 4;
/// Parts shorter than this use one lane (less to drain; few repeats to stall on).
const LANE_MIN: usize = 16 * BLOCK;
/// Finest scale with a fused kernel (tally of `4096·2^S` u32 slots per lane).
pub const MAX_FUSED_SCALE: i32 = 8;
/// Values per call of [`tally`] at most: u32 bucket counts cannot overflow below this.
pub const SUPER: usize = 1 << 31;
/// Sign and exponent slots of the mantissa sums.
const KEYS: usize = 4096;

const MANT: u64 = (1u64 << 52) - 1;
const HIDDEN: u64 = 1u64 << 52;

/// Per-lane histograms and sums, reused across calls (see [`take`] and [`give`]).
pub struct Scratch {
    scale: i32,
    /// `LANES` tallies of `4096 << scale` slots each, all zero between uses.
    tally: Vec<u32>,
    /// `LANES` rows of `KEYS` mantissa sums, all zero between blocks.
    sums: Vec<u64>,
    acc: ExpAccumulator,
    /// Bucket counts handed to the store.
    counts: Vec<u64>,
    /// Lanes the last [`tally`] used (1 for short parts, else `LANES`).
    used: usize,
}

static POOL: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

/// A zeroed scratch for `scale` (from the pool when one is free).
pub fn take(scale: i32) -> Scratch {
    let mut pool = POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(k) = pool.iter().position(|s| s.scale == scale) {
        return pool.swap_remove(k);
    }
    drop(pool);
    Scratch {
        scale,
        tally: vec![0u32; LANES << (12 + scale)],
        sums: vec![0u64; LANES * KEYS],
        acc: ExpAccumulator::new(),
        counts: Vec::new(),
        used: LANES,
    }
}

/// Return a zeroed scratch to the pool (at most a few per scale are kept).
pub fn give(s: Scratch) {
    let mut pool = POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if pool.iter().filter(|p| p.scale == s.scale).count() < 4 {
        pool.push(s);
    }
}

/// What one part of a batch left besides its tally.
#[derive(Clone, Copy, Debug)]
pub struct PartSummary {
    /// Minimum of the non-NaN values.
    pub min: f64,
    /// Maximum of the non-NaN values.
    pub max: f64,
    /// Smallest nonzero magnitude (`inf` when every value is zero).
    pub min_abs: f64,
    /// Whether a NaN or an infinity was seen (from the exponent-2047 mantissa sums).
    pub nan: bool,
}

impl PartSummary {
    fn empty() -> Self {
        PartSummary {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            min_abs: f64::INFINITY,
            nan: false,
        }
    }

    /// The summary of two parts together.
    #[must_use]
    pub fn join(self, o: PartSummary) -> PartSummary {
        PartSummary {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            min_abs: self.min_abs.min(o.min_abs),
            nan: self.nan | o.nan,
        }
    }

    /// Whether the fused result is valid: every value finite and zero or normal.
    pub fn clean(&self) -> bool {
        !self.nan
            && self.min > f64::NEG_INFINITY
            && self.max < f64::INFINITY
            && self.min_abs >= f64::MIN_POSITIVE
    }
}

/// Minimum and maximum (NaN left out) and smallest nonzero magnitude of a block; NaN
/// is found from the mantissa sums instead (see [`flush_sums`]).
fn summarize(block: &[f64]) -> PartSummary {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { summarize_avx2(block) };
    }
    summarize_lanes(block)
}

/// [`summarize_lanes`] with AVX2 intrinsics: four values per instruction; the same
/// results (min and max skip NaN the same way: `minpd(v, m)` keeps `m` unless `v < m`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn summarize_avx2(block: &[f64]) -> PartSummary {
    use std::arch::x86_64::{
        _mm256_and_pd, _mm256_blendv_pd, _mm256_castsi256_pd, _mm256_cmp_pd, _mm256_loadu_pd,
        _mm256_max_pd, _mm256_min_pd, _mm256_set1_epi64x, _mm256_set1_pd, _mm256_setzero_pd,
        _mm256_storeu_pd, _CMP_EQ_OQ,
    };
    let chunks = block.chunks_exact(8);
    let rest = chunks.remainder();
    let abs = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    let inf = _mm256_set1_pd(f64::INFINITY);
    let zero = _mm256_setzero_pd();
    let (mut mn0, mut mn1) = (inf, inf);
    let (mut mx0, mut mx1) = (
        _mm256_set1_pd(f64::NEG_INFINITY),
        _mm256_set1_pd(f64::NEG_INFINITY),
    );
    let (mut mz0, mut mz1) = (inf, inf);
    for c in chunks {
        // SAFETY: `c` holds eight f64; unaligned loads.
        let v0 = unsafe { _mm256_loadu_pd(c.as_ptr()) };
        let v1 = unsafe { _mm256_loadu_pd(c.as_ptr().add(4)) };
        mn0 = _mm256_min_pd(v0, mn0);
        mn1 = _mm256_min_pd(v1, mn1);
        mx0 = _mm256_max_pd(v0, mx0);
        mx1 = _mm256_max_pd(v1, mx1);
        // |v|, with zeros replaced by +inf (a NaN stays NaN and leaves the min alone).
        let a0 = _mm256_and_pd(v0, abs);
        let a1 = _mm256_and_pd(v1, abs);
        let a0 = _mm256_blendv_pd(a0, inf, _mm256_cmp_pd::<_CMP_EQ_OQ>(a0, zero));
        let a1 = _mm256_blendv_pd(a1, inf, _mm256_cmp_pd::<_CMP_EQ_OQ>(a1, zero));
        mz0 = _mm256_min_pd(a0, mz0);
        mz1 = _mm256_min_pd(a1, mz1);
    }
    let mut lanes = [[0.0f64; 4]; 6];
    for (k, r) in [mn0, mn1, mx0, mx1, mz0, mz1].into_iter().enumerate() {
        // SAFETY: four f64 into a [f64; 4].
        unsafe { _mm256_storeu_pd(lanes[k].as_mut_ptr(), r) };
    }
    let mut s = summarize_lanes(rest);
    let [mn0, mn1, mx0, mx1, mz0, mz1] = lanes;
    s.min = mn0.iter().chain(&mn1).fold(s.min, |a, &b| a.min(b));
    s.max = mx0.iter().chain(&mx1).fold(s.max, |a, &b| a.max(b));
    s.min_abs = mz0.iter().chain(&mz1).fold(s.min_abs, |a, &b| a.min(b));
    s
}

#[inline(always)]
fn summarize_lanes(block: &[f64]) -> PartSummary {
    const INF: u64 = 0x7ff0_0000_0000_0000;
    const ABS: u64 = !(1u64 << 63);
    let mut mn = [f64::INFINITY; 8];
    let mut mx = [f64::NEG_INFINITY; 8];
    let mut mz = [f64::INFINITY; 8];
    let chunks = block.chunks_exact(8);
    let rest = chunks.remainder();
    let nonzero_abs = |v: f64| {
        let a = v.to_bits() & ABS;
        // Zero becomes +inf; NaN stays NaN and compares false below.
        f64::from_bits(if a == 0 { INF } else { a })
    };
    for c in chunks {
        for k in 0..8 {
            let v = c[k];
            mn[k] = if v < mn[k] { v } else { mn[k] };
            mx[k] = if v > mx[k] { v } else { mx[k] };
            let a = nonzero_abs(v);
            mz[k] = if a < mz[k] { a } else { mz[k] };
        }
    }
    for &v in rest {
        mn[0] = if v < mn[0] { v } else { mn[0] };
        mx[0] = if v > mx[0] { v } else { mx[0] };
        let a = nonzero_abs(v);
        mz[0] = if a < mz[0] { a } else { mz[0] };
    }
    let mut s = PartSummary::empty();
    for k in 0..8 {
        s.min = s.min.min(mn[k]);
        s.max = s.max.max(mx[k]);
        s.min_abs = s.min_abs.min(mz[k]);
    }
    s
}

/// The tally slot of a value: sign and biased exponent shifted by `S`, plus the bucket
/// within the octave (`-1` for an exact power of two), modulo `4096·2^S`. For finite
/// normal values this is the bucket index plus `1023·2^S` (positive) or `3071·2^S`
/// (negative); `+0.0` lands in slot `4096·2^S − 1` and `−0.0` in `2048·2^S − 1`, which
/// no finite normal value reaches.
#[inline(always)]
fn slot<const S: u32, const N: usize, const W: usize>(bits: u64, table: &[Cell; N]) -> usize {
    let key = (bits >> 52) as i32;
    let f = bits & MANT;
    let cell = &table[(f >> (52 - S - 1)) as usize % N];
    ((key << S) + cell.bucket(f)) as u32 as usize & (W - 1)
}

/// Tally one block into the lanes and add its mantissas to the per-key sums.
#[inline(always)]
fn tally_block<const S: u32, const N: usize, const W: usize>(
    block: &[f64],
    table: &[Cell; N],
    tally: &mut [u32],
    sums: &mut [u64],
) {
    let (t01, t23) = tally.split_at_mut(2 * W);
    let (t0, t1) = t01.split_at_mut(W);
    let (t2, t3) = t23.split_at_mut(W);
    let (t0, t1, t2, t3): (&mut [u32; W], &mut [u32; W], &mut [u32; W], &mut [u32; W]) = (
        t0.try_into().expect("lane size"),
        t1.try_into().expect("lane size"),
        t2.try_into().expect("lane size"),
        t3.try_into().expect("lane size"),
    );
    let (s01, s23) = sums.split_at_mut(2 * KEYS);
    let (s0, s1) = s01.split_at_mut(KEYS);
    let (s2, s3) = s23.split_at_mut(KEYS);
    let (s0, s1, s2, s3): (
        &mut [u64; KEYS],
        &mut [u64; KEYS],
        &mut [u64; KEYS],
        &mut [u64; KEYS],
    ) = (
        s0.try_into().expect("lane size"),
        s1.try_into().expect("lane size"),
        s2.try_into().expect("lane size"),
        s3.try_into().expect("lane size"),
    );
    let chunks = block.chunks_exact(LANES);
    let rest = chunks.remainder();
    macro_rules! one {
        ($v:expr, $t:ident, $s:ident) => {{
            let bits = $v.to_bits();
            $s[(bits >> 52) as usize % KEYS] += (bits & MANT) | HIDDEN;
            $t[slot::<S, N, W>(bits, table)] += 1;
        }};
    }
    for c in chunks {
        one!(c[0], t0, s0);
        one!(c[1], t1, s1);
        one!(c[2], t2, s2);
        one!(c[3], t3, s3);
    }
    for &v in rest {
        one!(v, t0, s0);
    }
}

/// [`tally_block`] into lane 0 only.
#[inline(always)]
fn tally_block1<const S: u32, const N: usize, const W: usize>(
    block: &[f64],
    table: &[Cell; N],
    tally: &mut [u32],
    sums: &mut [u64],
) {
    let t0: &mut [u32; W] = (&mut tally[..W]).try_into().expect("lane size");
    let s0: &mut [u64; KEYS] = (&mut sums[..KEYS]).try_into().expect("lane size");
    let mut one = |v: f64| {
        let bits = v.to_bits();
        s0[(bits >> 52) as usize % KEYS] += (bits & MANT) | HIDDEN;
        t0[slot::<S, N, W>(bits, table)] += 1;
    };
    let chunks = block.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        one(c[0]);
        one(c[1]);
        one(c[2]);
        one(c[3]);
    }
    for &v in rest {
        one(v);
    }
}

/// Fold the block's mantissa sums (keys of the block's exponent range) into `acc` and
/// zero them. Keys 2047 and 4095 (biased exponent 2047) are touched by NaN and the
/// infinities only: a nonzero sum there marks the block not finite (`s.nan`).
fn flush_sums(sums: &mut [u64], acc: &mut ExpAccumulator, s: &mut PartSummary) {
    let lanes = |sums: &[u64], k: usize| (0..LANES).fold(0u64, |t, l| t | sums[l * KEYS + k]);
    if lanes(sums, 2047) | lanes(sums, 4095) != 0 {
        s.nan = true;
        return;
    }
    // Zeros (keys 0 and 2048) add only the hidden bit; their sums are dropped.
    for l in 0..LANES {
        sums[l * KEYS] = 0;
        sums[l * KEYS + 2048] = 0;
    }
    if s.min_abs == f64::INFINITY {
        return;
    }
    let be = |x: f64| (x.to_bits() >> 52) as usize & 0x7ff;
    let lo = be(s.min_abs);
    let hi = be(s.max.abs().max(s.min.abs()));
    let mut fold = |base: usize, negative: bool| {
        for b in lo.max(1)..=hi {
            let k = base + b;
            let t = sums[k] + sums[KEYS + k] + sums[2 * KEYS + k] + sums[3 * KEYS + k];
            if t != 0 {
                acc.add_wide_signed(t, negative, b as i64 - 1075);
                sums[k] = 0;
                sums[KEYS + k] = 0;
                sums[2 * KEYS + k] = 0;
                sums[3 * KEYS + k] = 0;
            }
        }
    };
    if s.max > 0.0 {
        fold(0, false);
    }
    if s.min < 0.0 {
        fold(2048, true);
    }
}

/// Tally `values` into the scratch; the sums go into `scratch.acc`. The caller reads
/// the tally with [`Scratch::drain`] or clears it with [`Scratch::clear`].
pub fn tally(values: &[f64], scratch: &mut Scratch, mapping: &ExpMapping) -> PartSummary {
    let ix = mapping.normal_indexer();
    let mut total = PartSummary::empty();
    let one = values.len() < LANE_MIN;
    scratch.used = if one { 1 } else { LANES };
    for block in values.chunks(BLOCK) {
        let mut s = summarize(block);
        macro_rules! fixed {
            ($($s:literal => $n:literal, $w:literal),*) => {
                match ix.scale() {
                    $($s => {
                        let t = ix.table_array::<$n>().expect("table size");
                        if one {
                            tally_block1::<$s, $n, $w>(block, t, &mut scratch.tally, &mut scratch.sums);
                        } else {
                            tally_block::<$s, $n, $w>(block, t, &mut scratch.tally, &mut scratch.sums);
                        }
                    })*
                    _ => unreachable!("scale outside 1..=MAX_FUSED_SCALE"),
                }
            };
        }
        fixed!(1 => 4, 8192, 2 => 8, 16384, 3 => 16, 32768, 4 => 32, 65536,
               5 => 64, 131072, 6 => 128, 262144, 7 => 256, 524288, 8 => 512, 1048576);
        flush_sums(&mut scratch.sums, &mut scratch.acc, &mut s);
        total = total.join(s);
    }
    total
}

impl Scratch {
    fn width(&self) -> usize {
        4096usize << self.scale
    }

    /// Zero every slot `values` could have touched (after a batch that is not clean).
    pub fn clear(&mut self, values: &[f64], mapping: &ExpMapping) {
        let w = self.width();
        let ix = mapping.normal_indexer();
        let s = ix.scale() as u32;
        let table = ix.table();
        for &v in values {
            let bits = v.to_bits();
            let key = (bits >> 52) as i32;
            let f = bits & MANT;
            let cell = &table[(f >> (52 - s - 1)) as usize];
            let k = ((key << s) + cell.bucket(f)) as u32 as usize & (w - 1);
            for l in 0..LANES {
                self.tally[l * w + k] = 0;
            }
        }
        self.sums.iter_mut().for_each(|x| *x = 0);
        self.acc.drain_into(&mut ExactSum::new());
    }

    /// Hand the tally of a clean part to `sink` as `(negative, lowest index, counts)` per
    /// sign present, then the zero count; zero the tally; drain the sums into `sum`.
    pub fn drain(
        &mut self,
        s: &PartSummary,
        mapping: &ExpMapping,
        sum: &mut ExactSum,
        mut sink: impl FnMut(bool, i32, &[u64]),
    ) -> u64 {
        let w = self.width();
        let scale = self.scale;
        let mut zeros = 0u64;
        for z in [w - 1, w / 2 - 1] {
            for l in 0..LANES {
                zeros += u64::from(self.tally[l * w + z]);
                self.tally[l * w + z] = 0;
            }
        }
        if s.min_abs < f64::INFINITY {
            let lo = mapping.index_normal_bits(s.min_abs.to_bits());
            let hi = mapping.index_normal_bits(s.max.abs().max(s.min.abs()).to_bits());
            let mut collect = |base: i32, negative: bool, counts: &mut Vec<u64>| {
                let a = (lo + base) as usize;
                let b = (hi + base) as usize + 1;
                if self.used == 1 {
                    let l0 = &mut self.tally[a..b];
                    counts.clear();
                    counts.extend(l0.iter().map(|&x| u64::from(x)));
                    l0.fill(0);
                    sink(negative, lo, counts);
                    return;
                }
                let (l01, l23) = self.tally.split_at_mut(2 * w);
                let (l0, l1) = l01.split_at_mut(w);
                let (l2, l3) = l23.split_at_mut(w);
                let (l0, l1, l2, l3) = (&mut l0[a..b], &mut l1[a..b], &mut l2[a..b], &mut l3[a..b]);
                counts.clear();
                counts.extend(l0.iter().zip(l1.iter()).zip(l2.iter().zip(l3.iter())).map(
                    |((&x0, &x1), (&x2, &x3))| {
                        u64::from(x0) + u64::from(x1) + u64::from(x2) + u64::from(x3)
                    },
                ));
                for lane in [l0, l1, l2, l3] {
                    lane.fill(0);
                }
                sink(negative, lo, counts);
            };
            let mut counts = std::mem::take(&mut self.counts);
            if s.max > 0.0 {
                collect(1023 << scale, false, &mut counts);
            }
            if s.min < 0.0 {
                collect(3071 << scale, true, &mut counts);
            }
            self.counts = counts;
        }
        self.acc.drain_into(sum);
        zeros
    }
}

/// Whether the fused kernel serves `scale`.
pub fn fused_scale(scale: i32) -> bool {
    (1..=MAX_FUSED_SCALE).contains(&scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_agree_across_instruction_sets() {
        let mut st = 5u64;
        let mut next = || {
            st = st.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = st;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^ (z >> 31)
        };
        let specials = [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            5e-324,
            -1.5,
        ];
        for n in [0usize, 1, 7, 8, 9, 31, 64, 2048] {
            for _ in 0..50 {
                let block: Vec<f64> = (0..n)
                    .map(|_| match next() % 10 {
                        0 => specials[(next() % 7) as usize],
                        _ => f64::from_bits(next() >> 2) * if next() % 3 == 0 { -1.0 } else { 1.0 },
                    })
                    .collect();
                let (a, b) = (summarize(&block), summarize_lanes(&block));
                let finite: Vec<f64> = block.iter().copied().filter(|v| !v.is_nan()).collect();
                let want_min = finite.iter().fold(f64::INFINITY, |m, &v| m.min(v));
                let want_max = finite.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                let want_abs = finite
                    .iter()
                    .filter(|v| **v != 0.0)
                    .fold(f64::INFINITY, |m, &v| m.min(v.abs()));
                for s in [a, b] {
                    assert!(s.min == want_min, "{n}");
                    assert!(s.max == want_max, "{n}");
                    assert_eq!(s.min_abs.to_bits(), want_abs.to_bits(), "{n}");
                }
            }
        }
    }
}
