//! The fused bulk ingest of unweighted values at scales `1..=MAX_FUSED_SCALE`.
//!
//! One read of the input, in blocks of [`BLOCK`] values (16 KiB, resident in L1): a
//! vectorised pass over the block (AVX2 when available) for the minimum, the maximum and
//! the smallest nonzero magnitude; then one scalar pass that counts each value in the
//! tally slot of its sign and bucket, spread over [`LANES`] interleaved sub-histograms so
//! repeated buckets do not stall on store-to-load forwarding; and the exact sum of the
//! block.
//!
//! The slot of a value comes from its IEEE bits alone: its prefix `bits >> (51 − S)` (sign,
//! biased exponent and the top `S + 1` fraction bits, one mantissa-table cell of one
//! octave) indexes two tables, the slot of the prefix's lower part and the full bits of
//! the one bucket boundary inside the prefix (if any); one compare of the bits against that
//! boundary adds the carry. The tables are filled per exponent as blocks reach it (from the
//! block summary), so a slot costs a shift, two loads, a compare and an add. The slot of a
//! positive normal value is its index plus `1023·2^S`, of a negative one its index plus
//! `3071·2^S` (the table of [`ExpMapping::index_normal_bits`], offset by the exponent);
//! zeros of either sign share one slot past the buckets, and subnormals, NaN and the
//! infinities one more, the sink (a nonzero sink rejects the fused result; the caller then
//! rejects the batch or takes it value by value).
//!
//! The exact sum: when the block holds no negative value and its exponents span at most 64
//! octaves, a vectorised pass (AVX2) adds every integer mantissa shifted by its exponent's
//! distance from the block's lowest exponent into 128-bit lane sums (three u64 parts);
//! otherwise the scalar pass also adds each mantissa to the slot of its sign and exponent,
//! and those sums are folded after the block. Both are exact, so the sum is the same.

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
/// Slots of a lane past the `4096·2^S` bucket slots (the zero slot and the sink).
const EXTRA: usize = 16;
/// Highest lowest exponent of a block summed by the vector pass: every key of a negative
/// value (from 2048 up) is then more than 64 octaves above it and adds nothing.
const VSUM_MAX_LO: u64 = 1983;

const MANT: u64 = (1u64 << 52) - 1;
const HIDDEN: u64 = 1u64 << 52;

/// Per-lane histograms and sums, reused across calls (see [`take`] and [`give`]).
pub struct Scratch {
    scale: i32,
    /// `LANES` tallies of `4096·2^scale + EXTRA` slots each, all zero between uses.
    tally: Vec<u32>,
    /// `LANES` rows of `KEYS` mantissa sums, all zero between blocks.
    sums: Vec<u64>,
    acc: ExpAccumulator,
    /// Bucket counts handed to the store.
    counts: Vec<u64>,
    /// Lanes the last [`tally`] used (1 for short parts, else `LANES`).
    used: usize,
    /// Per prefix `bits >> (51 − scale)`: the full bits of the bucket boundary inside the
    /// prefix (`u64::MAX` when there is none); values above it take the next slot.
    thr: Vec<u64>,
    /// Per prefix: the tally slot of its values up to `thr`.
    slot: Vec<u32>,
    /// Biased exponents filled in the tables, positive and negative (empty: `lo > hi`).
    pos: (usize, usize),
    neg: (usize, usize),
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
    let prefixes = 1usize << (13 + scale);
    let mut s = Scratch {
        scale,
        tally: vec![0u32; LANES * ((4096usize << scale) + EXTRA)],
        sums: vec![0u64; LANES * KEYS],
        acc: ExpAccumulator::new(),
        counts: Vec::new(),
        used: LANES,
        thr: vec![0u64; prefixes],
        slot: vec![0u32; prefixes],
        pos: (1, 0),
        neg: (1, 0),
    };
    for key in [0, 2047, 2048, 4095] {
        s.fill_key(key, &[]);
    }
    s
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

/// Count one block into the lanes (`lanes[k]` points at lane `k`'s slot 0; one lane may
/// stand for all four); with `SUMS`, also add each integer mantissa to the slot of its
/// sign and biased exponent in `sums` (same lane pattern, `KEYS` slots per lane).
///
/// # Safety
///
/// Every `lanes[k]` is valid for `4096·2^S + EXTRA` u32 slots and every `sums[k]` for
/// `KEYS` u64 slots, and no other reference reaches them during the call; every entry of
/// `slot` is at most the zero slot `4096·2^S` (see [`Scratch::fill_key`]).
#[inline(always)]
unsafe fn count_block<const SH: u32, const NT: usize, const SUMS: bool>(
    block: &[f64],
    ahead: *const f64,
    thr: &[u64; NT],
    slot: &[u32; NT],
    lanes: [*mut u32; LANES],
    sums: [*mut u64; LANES],
) {
    macro_rules! one {
        ($v:expr, $k:literal) => {{
            let bits = $v.to_bits();
            // The prefix is below NT = 2^(64 − SH): no bounds check.
            let t = (bits >> SH) as usize % NT;
            let k = above(slot[t], thr[t], bits);
            // SAFETY: k ≤ slot[t] + 1 ≤ 4096·2^S + 1, inside the lane (caller's contract).
            unsafe { *lanes[$k].add(k) += 1 };
            if SUMS {
                // SAFETY: the key `bits >> 52` is below KEYS.
                unsafe { *sums[$k].add((bits >> 52) as usize) += (bits & MANT) | HIDDEN };
            }
        }};
    }
    let chunks = block.chunks_exact(2 * LANES);
    let rest = chunks.remainder();
    for (i, c) in chunks.enumerate() {
        // One cache line of the next block per eight values: its read from memory
        // overlaps this block's count.
        prefetch(ahead.wrapping_add(8 * i));
        one!(c[0], 0);
        one!(c[1], 1);
        one!(c[2], 2);
        one!(c[3], 3);
        one!(c[4], 0);
        one!(c[5], 1);
        one!(c[6], 2);
        one!(c[7], 3);
    }
    for &v in rest {
        one!(v, 0);
    }
}

/// Ask for the cache line at `p` (any address; a hint, never a fault).
#[inline(always)]
fn prefetch(p: *const f64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `slot + (thr < bits)`, as one compare and one add with carry on x86-64.
#[inline(always)]
fn above(slot: u32, thr: u64, bits: u64) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_addcarry_u64, _subborrow_u64};
        let mut diff = 0u64;
        let mut k = 0u64;
        let borrow = _subborrow_u64(0, thr, bits, &mut diff);
        _addcarry_u64(borrow, u64::from(slot), 0, &mut k);
        k as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        slot as usize + usize::from(thr < bits)
    }
}

/// The exact sum of a block whose values are all `+0.0`, `−0.0` or positive with biased
/// exponents in `e_lo..=e_lo + 63` (`1 ≤ e_lo ≤ VSUM_MAX_LO`; NaN and infinities may add
/// anything, the block is rejected then): `Σ m·2^(e − e_lo) = a + b·2^32 + h·2^64` for the
/// integer mantissas `m` and biased exponents `e`, as `[a, b, h]`. Zeros add nothing
/// (their shift distance wraps to at least 64).
fn sum_block(block: &[f64], e_lo: u64) -> [u64; 3] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { sum_block_avx2(block, e_lo) };
    }
    sum_scalar(block, e_lo, [0; 3])
}

#[inline(always)]
fn sum_scalar(values: &[f64], e_lo: u64, mut t: [u64; 3]) -> [u64; 3] {
    for &v in values {
        let x = v.to_bits();
        let d = (x >> 52).wrapping_sub(e_lo);
        let m = (x & MANT) | HIDDEN;
        let lo = if d < 64 { m << d } else { 0 };
        let hi = if (1..64).contains(&d) {
            m >> (64 - d)
        } else {
            0
        };
        t[0] += lo & 0xffff_ffff;
        t[1] += lo >> 32;
        t[2] += hi;
    }
    t
}

/// [`sum_scalar`] four values per instruction: the variable shifts give 0 for distances
/// of 64 and more, as the scalar branches do (a distance of exactly 64 cannot occur).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_block_avx2(block: &[f64], e_lo: u64) -> [u64; 3] {
    use std::arch::x86_64::{
        _mm256_add_epi64, _mm256_and_si256, _mm256_castpd_si256, _mm256_loadu_pd, _mm256_or_si256,
        _mm256_set1_epi64x, _mm256_setzero_si256, _mm256_sllv_epi64, _mm256_srli_epi64,
        _mm256_srlv_epi64, _mm256_storeu_si256, _mm256_sub_epi64,
    };
    let chunks = block.chunks_exact(8);
    let rest = chunks.remainder();
    let mant = _mm256_set1_epi64x(MANT as i64);
    let hidden = _mm256_set1_epi64x(HIDDEN as i64);
    let lo_e = _mm256_set1_epi64x(e_lo as i64);
    let c64 = _mm256_set1_epi64x(64);
    let low32 = _mm256_set1_epi64x(0xffff_ffff);
    let z = _mm256_setzero_si256();
    let (mut a0, mut b0, mut h0, mut a1, mut b1, mut h1) = (z, z, z, z, z, z);
    for c in chunks {
        // SAFETY: `c` holds eight f64; unaligned loads.
        let x0 = _mm256_castpd_si256(unsafe { _mm256_loadu_pd(c.as_ptr()) });
        let x1 = _mm256_castpd_si256(unsafe { _mm256_loadu_pd(c.as_ptr().add(4)) });
        let d0 = _mm256_sub_epi64(_mm256_srli_epi64::<52>(x0), lo_e);
        let d1 = _mm256_sub_epi64(_mm256_srli_epi64::<52>(x1), lo_e);
        let m0 = _mm256_or_si256(_mm256_and_si256(x0, mant), hidden);
        let m1 = _mm256_or_si256(_mm256_and_si256(x1, mant), hidden);
        let l0 = _mm256_sllv_epi64(m0, d0);
        let l1 = _mm256_sllv_epi64(m1, d1);
        h0 = _mm256_add_epi64(h0, _mm256_srlv_epi64(m0, _mm256_sub_epi64(c64, d0)));
        h1 = _mm256_add_epi64(h1, _mm256_srlv_epi64(m1, _mm256_sub_epi64(c64, d1)));
        a0 = _mm256_add_epi64(a0, _mm256_and_si256(l0, low32));
        a1 = _mm256_add_epi64(a1, _mm256_and_si256(l1, low32));
        b0 = _mm256_add_epi64(b0, _mm256_srli_epi64::<32>(l0));
        b1 = _mm256_add_epi64(b1, _mm256_srli_epi64::<32>(l1));
    }
    let mut out = [[0u64; 4]; 3];
    for (k, (r0, r1)) in [(a0, a1), (b0, b1), (h0, h1)].into_iter().enumerate() {
        // SAFETY: four u64 into a [u64; 4].
        unsafe { _mm256_storeu_si256(out[k].as_mut_ptr().cast(), _mm256_add_epi64(r0, r1)) };
    }
    let t = out.map(|l| l.iter().sum::<u64>());
    sum_scalar(rest, e_lo, t)
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
    let table = ix.table();
    let mut total = PartSummary::empty();
    let one = values.len() < LANE_MIN;
    scratch.used = if one { 1 } else { LANES };
    let stride = scratch.stride();
    assert!(scratch.tally.len() >= LANES * stride && scratch.sums.len() >= LANES * KEYS);
    let tp = scratch.tally.as_mut_ptr();
    let sp = scratch.sums.as_mut_ptr();
    let (lanes, sums): ([*mut u32; LANES], [*mut u64; LANES]) = if one {
        ([tp; LANES], [sp; LANES])
    } else {
        // SAFETY: the lanes start inside the tally and sums (asserted above).
        unsafe {
            (
                [tp, tp.add(stride), tp.add(2 * stride), tp.add(3 * stride)],
                [sp, sp.add(KEYS), sp.add(2 * KEYS), sp.add(3 * KEYS)],
            )
        }
    };
    let be = |x: f64| (x.to_bits() >> 52) & 0x7ff;
    for (b, block) in values.chunks(BLOCK).enumerate() {
        let ahead = values[((b + 1) * BLOCK).min(values.len() - 1)..].as_ptr();
        let mut s = summarize(block);
        scratch.cover(&s, table);
        let (e_lo, e_hi) = (be(s.min_abs), be(s.max));
        let vsum = s.min >= 0.0
            && s.min_abs < f64::INFINITY
            && (1..=VSUM_MAX_LO).contains(&e_lo)
            && e_hi - e_lo <= 63;
        macro_rules! fixed {
            ($($s:literal => $sh:literal, $n:literal),*) => {
                match ix.scale() {
                    $($s => {
                        let thr: &[u64; $n] = scratch.thr[..].try_into().expect("prefixes");
                        let slot: &[u32; $n] = scratch.slot[..].try_into().expect("prefixes");
                        // SAFETY: the lanes hold `stride` slots each and the sums `KEYS`
                        // (asserted above), reached only through these pointers here; the
                        // slot table's entries are at most the zero slot (`fill_key`).
                        unsafe {
                            if vsum {
                                count_block::<$sh, $n, false>(block, ahead, thr, slot, lanes, sums);
                            } else {
                                count_block::<$sh, $n, true>(block, ahead, thr, slot, lanes, sums);
                            }
                        }
                    })*
                    _ => unreachable!("scale outside 1..=MAX_FUSED_SCALE"),
                }
            };
        }
        fixed!(1 => 50, 16384, 2 => 49, 32768, 3 => 48, 65536, 4 => 47, 131072,
               5 => 46, 262144, 6 => 45, 524288, 7 => 44, 1048576, 8 => 43, 2097152);
        if vsum {
            let [a, b, h] = sum_block(block, e_lo);
            let e = e_lo as i64 - 1075;
            scratch.acc.add_wide(a, e);
            scratch.acc.add_wide(b, e + 32);
            scratch.acc.add_wide(h, e + 64);
        } else {
            // SAFETY: `sp` points at the `LANES * KEYS` sums (asserted above); the slice
            // derives from it, so the lane pointers stay valid for the next blocks.
            let sums_all = unsafe { std::slice::from_raw_parts_mut(sp, LANES * KEYS) };
            flush_sums(sums_all, &mut scratch.acc, &mut s);
        }
        total = total.join(s);
    }
    let sink = scratch.width() + 1;
    if (0..scratch.used).any(|l| scratch.tally[l * stride + sink] != 0) {
        total.nan = true;
    }
    total
}

/// Most groups [`tally_groups`] serves (one tally of `4096·2^S` slots per group).
pub const MAX_GROUPS: usize = 32;

/// One group's part of [`tally_groups`]: what its values add to its sketch.
pub struct GroupPart {
    /// Values in the group.
    pub count: u64,
    /// Minimum and maximum (`±inf` for no values).
    pub min: f64,
    pub max: f64,
    /// Zeros of either sign.
    pub zeros: u64,
    /// The exact sum.
    pub sum: ExactSum,
    /// Bucket counts from the lowest index of the input, positive then negative values.
    pub lo: i32,
    pub positive: Vec<u64>,
    pub negative: Vec<u64>,
}

/// Count `(code, value)` pairs into one tally per group, every code below `n_groups ≤
/// MAX_GROUPS`, in one read of both arrays: the slot of a value as in [`tally`], its
/// mantissa added to the sum slot of its group, sign and exponent (folded after each
/// block), and the group's minimum and maximum. `None` when a value is NaN, infinite or
/// subnormal (nothing is kept; the caller takes the general path). The scratch lends its
/// prefix tables only.
pub fn tally_groups(
    codes: &[i64],
    values: &[f64],
    n_groups: usize,
    scratch: &mut Scratch,
    mapping: &ExpMapping,
) -> Option<Vec<GroupPart>> {
    assert!(n_groups <= MAX_GROUPS && codes.len() == values.len());
    let ix = mapping.normal_indexer();
    let table = ix.table();
    // One lane of 2^lane_bits slots per group (the bucket slots, the zero slot, the sink).
    let lane_bits = 13 + scratch.scale as u32;
    let stride = 1usize << lane_bits;
    let last = n_groups.max(1) - 1;
    let mut tally = vec![0u32; n_groups.max(1) * stride];
    let mut sums = vec![0u64; n_groups.max(1) * KEYS];
    let mut accs: Vec<ExpAccumulator> = (0..n_groups).map(|_| ExpAccumulator::new()).collect();
    let mut mins = vec![f64::INFINITY; n_groups.max(1)];
    let mut maxs = vec![f64::NEG_INFINITY; n_groups.max(1)];
    let mut total = PartSummary::empty();
    let be = |x: f64| (x.to_bits() >> 52) as usize & 0x7ff;
    // The groups seen so far (bit g), and the largest minimum and smallest maximum among
    // them: a block of seen groups only whose own minimum and maximum lie within those
    // cannot move any group's minimum or maximum, and is not read again for them.
    let mut ever = 0u64;
    let (mut top_min, mut low_max) = (f64::NEG_INFINITY, f64::INFINITY);
    for (c, block) in codes.chunks(BLOCK).zip(values.chunks(BLOCK)) {
        let s = summarize(block);
        scratch.cover(&s, table);
        total = total.join(s);
        if !total.clean() {
            return None;
        }
        let mut seen = 0u64;
        macro_rules! fixed {
            ($($s:literal => $sh:literal, $n:literal),*) => {
                match ix.scale() {
                    $($s => {
                        let thr: &[u64; $n] = scratch.thr[..].try_into().expect("prefixes");
                        let slot: &[u32; $n] = scratch.slot[..].try_into().expect("prefixes");
                        let (tp, sp) = (tally.as_mut_ptr(), sums.as_mut_ptr());
                        for (&g, &v) in c.iter().zip(block) {
                            // Codes are validated by the caller; the clamp keeps every
                            // access inside the arrays regardless.
                            let g = (g as usize).min(last);
                            let bits = v.to_bits();
                            let t = (bits >> $sh) as usize % $n;
                            let k = (g << ($s + 13)) + above(slot[t], thr[t], bits);
                            // SAFETY: g < n_groups, the slot is at most the zero slot
                            // plus one (below 2^(S + 13)), the key below KEYS: every
                            // offset is inside its array (sized just above).
                            unsafe {
                                *tp.add(k) += 1;
                                *sp.add((g << 12) + (bits >> 52) as usize) +=
                                    (bits & MANT) | HIDDEN;
                            }
                            seen |= 1u64 << g;
                        }
                    })*
                    _ => unreachable!("scale outside 1..=MAX_FUSED_SCALE"),
                }
            };
        }
        fixed!(1 => 50, 16384, 2 => 49, 32768, 3 => 48, 65536, 4 => 47, 131072,
               5 => 46, 262144, 6 => 45, 524288, 7 => 44, 1048576, 8 => 43, 2097152);
        // The minima and maxima, value by value in order (as `v < min` then `v > max` per
        // value), unless the block cannot move them (see above). The block is in L1.
        if seen & !ever != 0 || s.min < top_min || s.max > low_max {
            for (&g, &v) in c.iter().zip(block) {
                let g = (g as usize).min(last);
                if v < mins[g] {
                    mins[g] = v;
                }
                if v > maxs[g] {
                    maxs[g] = v;
                }
            }
            ever |= seen;
            (top_min, low_max) = (f64::NEG_INFINITY, f64::INFINITY);
            for g in (0..n_groups).filter(|&g| ever >> g & 1 != 0) {
                top_min = top_min.max(mins[g]);
                low_max = low_max.min(maxs[g]);
            }
        }
        // Zeros add only the hidden bit; their sums are dropped.
        let (lo, hi) = (be(s.min_abs).max(1), be(s.max.abs().max(s.min.abs())));
        for (row, acc) in sums.chunks_exact_mut(KEYS).zip(&mut accs) {
            row[0] = 0;
            row[2048] = 0;
            if s.min_abs == f64::INFINITY {
                continue;
            }
            for (base, negative) in [(0usize, false), (2048, true)] {
                if (negative && s.min >= 0.0) || (!negative && s.max <= 0.0) {
                    continue;
                }
                for b in lo..=hi {
                    let t = std::mem::take(&mut row[base + b]);
                    if t != 0 {
                        acc.add_wide_signed(t, negative, b as i64 - 1075);
                    }
                }
            }
        }
    }
    let w = scratch.width();
    if tally.chunks_exact(stride).any(|l| l[w + 1] != 0) {
        return None;
    }
    let scale = scratch.scale;
    let (lo, hi) = if total.min_abs < f64::INFINITY {
        (
            mapping.index_normal_bits(total.min_abs.to_bits()),
            mapping.index_normal_bits(total.max.abs().max(total.min.abs()).to_bits()),
        )
    } else {
        (0, -1)
    };
    let take = |lane: &[u32], base: i32, present: bool| -> Vec<u64> {
        if !present || lo > hi {
            return Vec::new();
        }
        let (a, b) = ((lo + base) as usize, (hi + base) as usize + 1);
        lane[a..b].iter().map(|&x| u64::from(x)).collect()
    };
    let parts = tally
        .chunks_exact(stride)
        .zip(accs)
        .zip(mins.iter().zip(&maxs))
        .map(|((lane, mut acc), (&min, &max))| {
            let mut sum = ExactSum::new();
            acc.drain_into(&mut sum);
            let positive = take(lane, 1023 << scale, max > 0.0);
            let negative = take(lane, 3071 << scale, min < 0.0);
            let zeros = u64::from(lane[w]);
            let count = zeros + positive.iter().sum::<u64>() + negative.iter().sum::<u64>();
            GroupPart {
                count,
                min,
                max,
                zeros,
                sum,
                lo,
                positive,
                negative,
            }
        })
        .collect();
    Some(parts)
}

impl Scratch {
    fn width(&self) -> usize {
        4096usize << self.scale
    }

    fn stride(&self) -> usize {
        self.width() + EXTRA
    }

    /// Fill the tables of biased exponent and sign `key` from the mantissa table: the
    /// bucket slots of a normal octave; for keys 0 and 2048 the zero slot (`±0.0`) with
    /// the sink above it (subnormals); for keys 2047 and 4095 the sink (NaN, infinities).
    fn fill_key(&mut self, key: usize, table: &[Cell]) {
        let s = self.scale as u32;
        let zero = self.width() as u32;
        let cells = 2usize << s;
        let base = key << (s + 1);
        let thr = &mut self.thr[base..base + cells];
        let slot = &mut self.slot[base..base + cells];
        match key & 2047 {
            0 => {
                thr.fill((key as u64) << 52);
                slot.fill(zero);
            }
            2047 => {
                thr.fill(u64::MAX);
                slot.fill(zero + 1);
            }
            _ => {
                for ((t, j), cell) in thr.iter_mut().zip(slot.iter_mut()).zip(table) {
                    *t = match cell.threshold() {
                        u64::MAX => u64::MAX,
                        f => ((key as u64) << 52) | f,
                    };
                    *j = (((key as i32) << s) + cell.first_bucket()) as u32;
                }
            }
        }
    }

    /// Make sure the tables hold every key a block with summary `s` can reach (the zero
    /// and non-finite keys are always filled).
    fn cover(&mut self, s: &PartSummary, table: &[Cell]) {
        if s.min_abs == f64::INFINITY {
            return;
        }
        let be = |x: f64| ((x.to_bits() >> 52) & 0x7ff) as usize;
        let lo = be(s.min_abs).max(1);
        let hi = be(s.max.abs().max(s.min.abs())).min(2046);
        if lo > hi {
            return;
        }
        if s.max > 0.0 {
            let r = self.pos;
            self.pos = self.extend(r, 0, lo, hi, table);
        }
        if s.min < 0.0 {
            let r = self.neg;
            self.neg = self.extend(r, 2048, lo, hi, table);
        }
    }

    /// Extend the filled range `(a, b)` of biased exponents to cover `lo..=hi`.
    fn extend(
        &mut self,
        (a, b): (usize, usize),
        base: usize,
        lo: usize,
        hi: usize,
        table: &[Cell],
    ) -> (usize, usize) {
        if a <= lo && hi <= b {
            return (a, b);
        }
        let (na, nb) = if a > b {
            (lo, hi)
        } else {
            (a.min(lo), b.max(hi))
        };
        for k in na..=nb {
            if !(a..=b).contains(&k) {
                self.fill_key(base + k, table);
            }
        }
        (na, nb)
    }

    /// The tally slot of bits `bits` (tables filled for its key).
    fn slot_of(&self, bits: u64) -> usize {
        let t = (bits >> (51 - self.scale as u32)) as usize;
        self.slot[t] as usize + usize::from(self.thr[t] < bits)
    }

    /// Zero every slot `values` could have touched (after a batch that is not clean).
    pub fn clear(&mut self, values: &[f64], _mapping: &ExpMapping) {
        let stride = self.stride();
        for &v in values {
            let k = self.slot_of(v.to_bits());
            for l in 0..LANES {
                self.tally[l * stride + k] = 0;
            }
        }
        let w = self.width();
        for l in 0..LANES {
            self.tally[l * stride + w] = 0;
            self.tally[l * stride + w + 1] = 0;
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
        let w = self.stride();
        let scale = self.scale;
        let z = self.width();
        let mut zeros = 0u64;
        for l in 0..LANES {
            zeros += u64::from(self.tally[l * w + z]);
            self.tally[l * w + z] = 0;
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
                    counts.extend(l0.iter_mut().map(|x| u64::from(std::mem::take(x))));
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
