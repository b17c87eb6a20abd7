//! The mergeable [`QuantileSketch`] with a relative-error guarantee.
//!
//! # Guarantee
//!
//! For every `q ∈ [0, 1]`, `quantile(q)` is within relative error
//! [`QuantileSketch::effective_relative_accuracy`] (≤ the requested `relative_accuracy`) of
//! the lower order statistic `x_(⌊q·(n−1)⌋)` of the data (numpy's `method="lower"`), for
//! positive, negative and zero values, weighted data and after any merges, as long as no
//! bucket collapse touched the answer (see [`QuantileSketch::min_accurate_quantile`]).
//! `quantile(0)` and `quantile(1)` are the exact minimum and maximum. Values below
//! `2^-1022` in magnitude (subnormals) are counted exactly but their estimates may also
//! be off by one subnormal step (`2^-1074`).
//!
//! # Layout
//!
//! - `mapping`: the base-2 exponential mapping (OpenTelemetry scale / Prometheus schema).
//! - `store`: dense bucket stores with a collapsing bucket limit.
//! - the exact, order-independent sum of `count` and `sum` is [`crate::accum::ExactSum`].
//! - `format`: the versioned binary format (byte helpers in [`crate::accum::codec`]).
//! - `interop`: OpenTelemetry exponential histograms and Prometheus native histograms.
//! - `groups`: one pass over (group code, value) pairs.
//!
//! ```
//! use qcore::sketch::QuantileSketch;
//! let mut sk = QuantileSketch::new(0.01).unwrap();
//! sk.add_slice(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
//! let p50 = sk.quantile(0.5).unwrap().unwrap();
//! assert!((p50 - 3.0).abs() <= 0.01 * 3.0);
//! assert_eq!(sk.quantile(1.0).unwrap(), Some(100.0));
//! let back = QuantileSketch::from_bytes(&sk.to_bytes()).unwrap();
//! assert_eq!(back, sk);
//! ```

pub(crate) mod format;
pub(crate) mod groups;
pub(crate) mod ingest;
pub(crate) mod interop;
pub(crate) mod mapping;
pub(crate) mod store;

use crate::accum::exact_sum::{ExactSum, ExpAccumulator};
use crate::error::check_finite;
use crate::{QcoreError, Result};
use mapping::{ExpMapping, IndexMapping};
use std::cell::RefCell;
use store::{Collapse, DenseStore};

pub use groups::{group_quantiles, sketch_groups};
pub use interop::{ExpBuckets, OtelPoint, PromHistogram};
pub use mapping::{MAX_SCALE, MIN_SCALE};

/// Largest accepted bucket limit per sign (8 MiB of counts).
pub const MAX_BUCKET_LIMIT: usize = 1 << 20;
/// Largest total weight a sketch accepts (bucket weights stay finite).
const MAX_TOTAL_WEIGHT: f64 = 1e300;

/// The default bucket limit per sign at `scale`: 4096 buckets (64 octaves at scale 6,
/// a factor of 1.8e19), 64 octaves at finer scales up to [`MAX_BUCKET_LIMIT`].
pub fn default_bucket_limit(scale: i32) -> usize {
    (64usize << scale.clamp(6, mapping::MAX_SCALE)).min(MAX_BUCKET_LIMIT)
}

thread_local! {
    /// Scratch accumulators of the ingest loops (sums, and weights of weighted batches);
    /// always drained before the loop returns.
    static ACC: RefCell<ExpAccumulator> = RefCell::new(ExpAccumulator::new());
    static WACC: RefCell<ExpAccumulator> = RefCell::new(ExpAccumulator::new());
}

const MANT: u64 = (1u64 << 52) - 1;
const HIDDEN: u64 = 1u64 << 52;

/// Batches at least this long are split across threads.
pub(crate) const PARALLEL_MIN: usize = 1 << 20;
/// At most this many threads per batch.
pub(crate) const MAX_THREADS: usize = 8;
/// Batches at least this long take the fused kernel (shorter ones go value by value).
const FUSED_MIN: usize = 64;
/// Values per block between flushes of the u64 mantissa sums (2^11 · 2^53 < 2^64).
const BLOCK: usize = 2048;

/// Tally one part of a positive-normal batch: bucket counts (slot `max(i - offset, 0)`
/// of a window of `width` slots) and the exact sum.
fn tally_part(
    values: &[f64],
    ix: mapping::NormalIndexer,
    offset: i32,
    width: usize,
) -> (Vec<u64>, ExactSum) {
    let mut tally = vec![0u64; width];
    let mut sums = [0u64; 2048];
    let mut acc = ExpAccumulator::new();
    let mut sum = ExactSum::new();
    {
        for block in values.chunks(BLOCK) {
            macro_rules! fixed {
                ($($s:literal => $n:literal),*) => {
                    match ix.scale() {
                        $($s => match ix.table_array::<$n>() {
                            Some(t) => tally_fixed::<$s, $n>(block, &mut sums, t, offset, &mut tally),
                            None => tally_generic(block, &mut sums, ix, offset, &mut tally),
                        },)*
                        _ => tally_generic(block, &mut sums, ix, offset, &mut tally),
                    }
                };
            }
            fixed!(1 => 4, 2 => 8, 3 => 16, 4 => 32, 5 => 64, 6 => 128, 7 => 256, 8 => 512, 9 => 1024, 10 => 2048);
            for (be, t) in sums.iter_mut().enumerate() {
                if *t != 0 {
                    acc.add_wide(*t, be as i64 - 1075);
                    *t = 0;
                }
            }
        }
    }
    acc.drain_into(&mut sum);
    (tally, sum)
}

/// The kernel at a fixed scale `S > 0` (`N = 2^(S+1)` table cells): constant shifts and
/// no bounds checks on the exponent sums or the table.
#[inline(never)]
fn tally_fixed<const S: u32, const N: usize>(
    block: &[f64],
    sums: &mut [u64; 2048],
    table: &[mapping::Cell; N],
    offset: i32,
    tally: &mut [u64],
) {
    let base = 1023i32 << S;
    for &v in block {
        let bits = v.to_bits();
        let be = (bits >> 52) as usize & 0x7ff;
        let f = bits & MANT;
        sums[be] += f | HIDDEN;
        let cell = &table[(f >> (52 - S - 1)) as usize % N];
        let idx = ((be as i32) << S) - base + cell.bucket(f);
        let k = (idx - offset).max(0) as usize;
        tally[k] += 1;
    }
}

/// The kernel at any scale.
#[inline(never)]
fn tally_generic(
    block: &[f64],
    sums: &mut [u64; 2048],
    ix: mapping::NormalIndexer,
    offset: i32,
    tally: &mut [u64],
) {
    let fine = ix.is_fine();
    for &v in block {
        let bits = v.to_bits();
        sums[(bits >> 52) as usize & 0x7ff] += (bits & MANT) | HIDDEN;
        let i = if fine {
            ix.index_fine(bits)
        } else {
            ix.index_coarse(bits)
        };
        let k = (i - offset).max(0) as usize;
        tally[k] += 1;
    }
}

/// Whether a total weight is NaN or above [`MAX_TOTAL_WEIGHT`].
fn exceeds_total(w: f64) -> bool {
    w.is_nan() || w > MAX_TOTAL_WEIGHT
}

/// Whether every value is finite, and the minimum and maximum of the finite ones, in
/// one vectorisable pass (split across threads for large slices).
fn scan(values: &[f64]) -> (bool, f64, f64) {
    let threads = if values.len() >= PARALLEL_MIN {
        crate::threads::max_threads().min(MAX_THREADS)
    } else {
        1
    };
    if threads <= 1 {
        return scan_serial(values);
    }
    let chunk = values.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = values
            .chunks(chunk)
            .map(|part| scope.spawn(move || scan_serial(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| crate::threads::join(h))
            .fold((true, f64::INFINITY, f64::NEG_INFINITY), |a, b| {
                (a.0 && b.0, a.1.min(b.1), a.2.max(b.2))
            })
    })
}

fn scan_serial(values: &[f64]) -> (bool, f64, f64) {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    let mut mn = [f64::INFINITY; 8];
    let mut mx = [f64::NEG_INFINITY; 8];
    let mut bad = [0u64; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            // NaN compares false and leaves min/max alone; `bad` records it.
            mn[k] = if c[k] < mn[k] { c[k] } else { mn[k] };
            mx[k] = if c[k] > mx[k] { c[k] } else { mx[k] };
            bad[k] |= u64::from(c[k].to_bits() & EXP == EXP);
        }
    }
    let mut lo = mn.iter().fold(f64::INFINITY, |a, &b| a.min(b));
    let mut hi = mx.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut finite = bad.iter().all(|&b| b == 0);
    for &v in rest {
        finite &= v.is_finite();
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (finite, lo, hi)
}

/// Where a quantile is answered from.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Min,
    Max,
    Zero,
    Pos(i32),
    Neg(i32),
}

/// A mergeable quantile sketch with a relative-error guarantee (see the module docs).
#[derive(Clone, Debug)]
pub struct QuantileSketch {
    relative_accuracy: f64,
    mapping: ExpMapping,
    positive: DenseStore,
    negative: DenseStore,
    zero_count: f64,
    count: ExactSum,
    sum: ExactSum,
    /// `+inf` / `-inf` while empty; `-0.0` is stored as `0.0`.
    min: f64,
    max: f64,
}

impl PartialEq for QuantileSketch {
    /// Same parameters and same state (the same bytes).
    fn eq(&self, other: &Self) -> bool {
        self.relative_accuracy.to_bits() == other.relative_accuracy.to_bits()
            && self.mapping == other.mapping
            && self.positive == other.positive
            && self.negative == other.negative
            && self.zero_count == other.zero_count
            && self.count == other.count
            && self.sum == other.sum
            && self.min.to_bits() == other.min.to_bits()
            && self.max.to_bits() == other.max.to_bits()
    }
}

impl QuantileSketch {
    /// A sketch with the given relative accuracy and the default bucket limit.
    ///
    /// The mapping is the coarsest base-2 exponential scale whose relative error is at
    /// most `relative_accuracy` (0.01 → scale 6, 0.54 %).
    pub fn new(relative_accuracy: f64) -> Result<Self> {
        Self::with_limit(relative_accuracy, None)
    }

    /// A sketch with an explicit bucket limit per sign (`None` for the default).
    pub fn with_limit(relative_accuracy: f64, bucket_limit: Option<usize>) -> Result<Self> {
        if !(relative_accuracy > 0.0 && relative_accuracy < 1.0) {
            return Err(QcoreError::invalid(
                "relative_accuracy",
                format!("must be in (0, 1), got {relative_accuracy}"),
            ));
        }
        let scale = mapping::scale_for_accuracy(relative_accuracy).ok_or_else(|| {
            QcoreError::invalid(
                "relative_accuracy",
                format!(
                    "must be at least {:.3e} (the finest supported scale, {}), got {relative_accuracy}",
                    mapping::scale_relative_error(mapping::MAX_SCALE) * (1.0 + 1e-12),
                    mapping::MAX_SCALE
                ),
            )
        })?;
        Self::build(relative_accuracy, scale, bucket_limit)
    }

    /// A sketch on the base-2 exponential mapping at `scale` (OpenTelemetry scale,
    /// Prometheus schema); its relative accuracy is that scale's `(b−1)/(b+1)`.
    pub fn with_scale(scale: i32, bucket_limit: Option<usize>) -> Result<Self> {
        if !(mapping::MIN_SCALE..=mapping::MAX_SCALE).contains(&scale) {
            return Err(QcoreError::invalid(
                "scale",
                format!(
                    "must be in [{}, {}], got {scale}",
                    mapping::MIN_SCALE,
                    mapping::MAX_SCALE
                ),
            ));
        }
        Self::build(mapping::scale_relative_error(scale), scale, bucket_limit)
    }

    fn build(relative_accuracy: f64, scale: i32, bucket_limit: Option<usize>) -> Result<Self> {
        let limit = bucket_limit.unwrap_or_else(|| default_bucket_limit(scale));
        if limit == 0 || limit > MAX_BUCKET_LIMIT {
            return Err(QcoreError::invalid(
                "bucket_limit",
                format!("must be in [1, {MAX_BUCKET_LIMIT}], got {limit}"),
            ));
        }
        Ok(QuantileSketch {
            relative_accuracy,
            mapping: ExpMapping::new(scale),
            positive: DenseStore::new(limit, Collapse::Lowest),
            negative: DenseStore::new(limit, Collapse::Highest),
            zero_count: 0.0,
            count: ExactSum::new(),
            sum: ExactSum::new(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        })
    }

    /// An empty sketch with the same parameters.
    #[must_use]
    pub fn empty_like(&self) -> Self {
        QuantileSketch {
            relative_accuracy: self.relative_accuracy,
            mapping: self.mapping.clone(),
            positive: DenseStore::new(self.positive.limit(), Collapse::Lowest),
            negative: DenseStore::new(self.negative.limit(), Collapse::Highest),
            zero_count: 0.0,
            count: ExactSum::new(),
            sum: ExactSum::new(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The requested relative accuracy (a parameter; merges require it to match).
    pub fn relative_accuracy(&self) -> f64 {
        self.relative_accuracy
    }

    /// The relative error actually guaranteed by the mapping, `(b−1)/(b+1)`.
    pub fn effective_relative_accuracy(&self) -> f64 {
        self.mapping.relative_error()
    }

    /// The mapping scale (OpenTelemetry scale, Prometheus schema).
    pub fn scale(&self) -> i32 {
        self.mapping.scale()
    }

    /// The bucket limit per sign.
    pub fn bucket_limit(&self) -> usize {
        self.positive.limit()
    }

    /// Whether a bucket collapse happened (the data spanned more than the limit).
    pub fn collapsed(&self) -> bool {
        self.positive.is_collapsed_flag() || self.negative.is_collapsed_flag()
    }

    /// Total weight (the number of values when unweighted), exact up to the final
    /// rounding to a double.
    pub fn count(&self) -> f64 {
        self.count.to_f64()
    }

    /// Whether no weight was added.
    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }

    /// The exact weighted sum, correctly rounded (±inf if it overflows a double).
    pub fn sum(&self) -> f64 {
        self.sum.to_f64()
    }

    /// The exact weighted mean, rounded; `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        if self.is_empty() {
            None
        } else {
            Some(self.sum.ratio(&self.count).clamp(self.min, self.max))
        }
    }

    /// The exact minimum; `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (!self.is_empty()).then_some(self.min)
    }

    /// The exact maximum; `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (!self.is_empty()).then_some(self.max)
    }

    /// The weight of exact zeros.
    pub fn zero_count(&self) -> f64 {
        self.zero_count
    }

    /// Non-empty positive buckets `(index, weight)` in increasing index order.
    pub fn positive_buckets(&self) -> Vec<(i32, f64)> {
        self.positive.iter().collect()
    }

    /// Non-empty negative buckets `(index of |v|, weight)` in increasing index order.
    pub fn negative_buckets(&self) -> Vec<(i32, f64)> {
        self.negative.iter().collect()
    }

    /// Whether every bucket weight is an integer (then counts and merges are exact).
    pub fn integral_counts(&self) -> bool {
        self.positive.integral()
            && self.negative.integral()
            && self.zero_count == self.zero_count.trunc()
            && self.zero_count < 9_007_199_254_740_992.0
    }

    /// Add one value.
    pub fn add(&mut self, v: f64) -> Result<()> {
        self.add_slice(std::slice::from_ref(&v))
    }

    /// Add every value of `values` with weight 1. On error nothing is added.
    pub fn add_slice(&mut self, values: &[f64]) -> Result<()> {
        self.add_slice_with(values, true)
    }

    /// [`QuantileSketch::add_slice`]; `threaded = false` keeps the fused kernel on the
    /// calling thread (callers that parallelise over sketches).
    pub(crate) fn add_slice_with(&mut self, values: &[f64], threaded: bool) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        if values.len() >= FUSED_MIN && ingest::fused_scale(self.scale()) {
            return self.ingest_fused(values, threaded);
        }
        // One fused pass: finiteness, min and max (parallel for large batches).
        let (finite, lo, hi) = scan(values);
        if !finite {
            check_finite("values", values)?;
        }
        let new_total = self.count() + values.len() as f64;
        if new_total > MAX_TOTAL_WEIGHT {
            return Err(QcoreError::invalid(
                "values",
                "total weight would exceed 1e300",
            ));
        }
        if values.len() >= 2 * self.positive.len_hint().max(128) && lo >= f64::MIN_POSITIVE {
            self.ingest_positive_normal(values, lo, hi);
        } else {
            self.ingest_general(values);
        }
        Ok(())
    }

    /// Add `values` with `weights` (finite, ≥ 0; zero weights are ignored entirely).
    /// On error nothing is added.
    pub fn add_weighted(&mut self, values: &[f64], weights: &[f64]) -> Result<()> {
        check_finite("values", values)?;
        crate::error::check_same_len("values", values.len(), "weights", weights.len())?;
        check_finite("weights", weights)?;
        if let Some(i) = weights.iter().position(|&w| w < 0.0) {
            return Err(QcoreError::invalid(
                "weights",
                format!("must be >= 0, got {} at index {i}", weights[i]),
            ));
        }
        let batch: f64 = weights.iter().sum();
        if exceeds_total(self.count() + batch) {
            return Err(QcoreError::invalid(
                "weights",
                "total weight would exceed 1e300",
            ));
        }
        self.ingest_weighted(values, weights);
        Ok(())
    }

    /// The fused one-read ingest (`ingest`) for scales `1..=MAX_FUSED_SCALE`; batches
    /// with NaN, infinities or subnormals leave no trace and are rejected or taken value
    /// by value. `threaded` allows splitting large batches across threads.
    pub(crate) fn ingest_fused(&mut self, values: &[f64], threaded: bool) -> Result<()> {
        if values.len() > ingest::SUPER {
            // Validate everything first so that an error leaves the sketch unchanged.
            check_finite("values", values)?;
            for piece in values.chunks(ingest::SUPER) {
                self.ingest_fused(piece, threaded)?;
            }
            return Ok(());
        }
        let threads = if threaded && values.len() >= PARALLEL_MIN {
            crate::threads::max_threads().min(MAX_THREADS)
        } else {
            1
        };
        let chunk = values.len().div_ceil(threads);
        let parts: Vec<&[f64]> = values.chunks(chunk).collect();
        let mut scratch: Vec<ingest::Scratch> =
            parts.iter().map(|_| ingest::take(self.scale())).collect();
        let mapping = &self.mapping;
        let summaries: Vec<ingest::PartSummary> = if parts.len() > 1 {
            std::thread::scope(|scope| {
                let mut jobs = scratch.iter_mut().zip(parts.iter().copied());
                let (s0, p0) = jobs.next().expect("one part");
                let handles: Vec<_> = jobs
                    .map(|(s, p)| scope.spawn(move || ingest::tally(p, s, mapping)))
                    .collect();
                let first = ingest::tally(p0, s0, mapping);
                std::iter::once(first)
                    .chain(handles.into_iter().map(|h| crate::threads::join(h)))
                    .collect()
            })
        } else {
            vec![ingest::tally(values, &mut scratch[0], mapping)]
        };
        let total = summaries
            .iter()
            .skip(1)
            .fold(summaries[0], |a, &b| a.join(b));
        let over = self.count() + values.len() as f64 > MAX_TOTAL_WEIGHT;
        if !total.clean() || over {
            for (s, p) in scratch.iter_mut().zip(&parts) {
                s.clear(p, mapping);
            }
            scratch.into_iter().for_each(ingest::give);
            if !total.clean() {
                check_finite("values", values)?;
            }
            if over {
                return Err(QcoreError::invalid(
                    "values",
                    "total weight would exceed 1e300",
                ));
            }
            // Finite with subnormals: value by value.
            self.ingest_general(values);
            return Ok(());
        }
        let mut zeros = 0u64;
        for (s, sum) in scratch.iter_mut().zip(&summaries) {
            let (pos, neg, sum_acc) = (&mut self.positive, &mut self.negative, &mut self.sum);
            zeros += s.drain(sum, mapping, sum_acc, |negative, lo, counts| {
                if negative {
                    neg.add_counts(lo, counts);
                } else {
                    pos.add_counts(lo, counts);
                }
            });
        }
        scratch.into_iter().for_each(ingest::give);
        self.zero_count += zeros as f64;
        self.set_min_max(self.min.min(total.min), self.max.max(total.max));
        self.count.add_u64(values.len() as u64);
        self.count.normalize();
        Ok(())
    }

    /// Add one group's part of [`ingest::tally_groups`].
    pub(crate) fn add_group_part(&mut self, p: &ingest::GroupPart) {
        if p.count == 0 {
            return;
        }
        self.positive.add_counts(p.lo, &p.positive);
        self.negative.add_counts(p.lo, &p.negative);
        self.zero_count += p.zeros as f64;
        self.sum.add_sum(&p.sum);
        self.set_min_max(self.min.min(p.min), self.max.max(p.max));
        self.count.add_u64(p.count);
        self.count.normalize();
    }

    /// All values positive and normal: the exponent and index ranges are known, so the
    /// store window is prepared once and the kernel tallies integer counts per bucket and
    /// integer mantissa sums per exponent. Large batches are split across threads; the
    /// result is identical (integer tallies, exact sums).
    fn ingest_positive_normal(&mut self, values: &[f64], lo: f64, hi: f64) {
        let ix = self.mapping.normal_indexer();
        let (i_lo, i_hi) = (
            self.mapping.index_normal_bits(lo.to_bits()),
            self.mapping.index_normal_bits(hi.to_bits()),
        );
        let (offset, counts) = self.positive.prepare_batch(i_lo, i_hi);
        let width = counts.len();
        let threads = if values.len() >= PARALLEL_MIN {
            crate::threads::max_threads().min(MAX_THREADS)
        } else {
            1
        };
        let parts: Vec<(Vec<u64>, ExactSum)> = if threads > 1 {
            let chunk = values.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = values
                    .chunks(chunk)
                    .map(|part| scope.spawn(move || tally_part(part, ix, offset, width)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| crate::threads::join(h))
                    .collect()
            })
        } else {
            vec![tally_part(values, ix, offset, width)]
        };
        for (tally, sum) in parts {
            for (c, t) in counts.iter_mut().zip(tally) {
                *c += t as f64;
            }
            self.sum.add_sum(&sum);
        }
        self.set_min_max(self.min.min(lo), self.max.max(hi));
        self.count.add_u64(values.len() as u64);
        self.count.normalize();
    }

    fn ingest_general(&mut self, values: &[f64]) {
        if values.len() > 1 {
            // Size each store's window once for the batch (no growth step by step).
            let (mut p_lo, mut p_hi, mut n_lo, mut n_hi) =
                (f64::INFINITY, 0.0f64, f64::INFINITY, 0.0f64);
            for &v in values {
                if v > 0.0 {
                    p_lo = p_lo.min(v);
                    p_hi = p_hi.max(v);
                } else if v < 0.0 {
                    n_lo = n_lo.min(-v);
                    n_hi = n_hi.max(-v);
                }
            }
            if p_hi > 0.0 {
                self.positive.reserve(
                    self.mapping.index_positive(p_lo),
                    self.mapping.index_positive(p_hi),
                );
            }
            if n_hi > 0.0 {
                self.negative.reserve(
                    self.mapping.index_positive(n_lo),
                    self.mapping.index_positive(n_hi),
                );
            }
        }
        ACC.with(|cell| {
            let mut acc = cell.borrow_mut();
            let mapping = &self.mapping;
            let (mut lo, mut hi) = (self.min, self.max);
            let mut zeros = 0u64;
            for &v in values {
                acc.add_f64(v);
                if v > 0.0 {
                    self.positive.add_one(mapping.index_positive(v), 1.0);
                } else if v < 0.0 {
                    self.negative.add_one(mapping.index_positive(-v), 1.0);
                } else {
                    zeros += 1;
                }
                if v < lo {
                    lo = v;
                }
                if v > hi {
                    hi = v;
                }
            }
            acc.drain_into(&mut self.sum);
            self.zero_count += zeros as f64;
            self.set_min_max(lo, hi);
        });
        self.count.add_u64(values.len() as u64);
        self.count.normalize();
    }

    fn ingest_weighted(&mut self, values: &[f64], weights: &[f64]) {
        let (lo, hi) = WACC.with(|wcell| {
            let mut wacc = wcell.borrow_mut();
            let range = ACC.with(|cell| {
                let mut acc = cell.borrow_mut();
                let mapping = &self.mapping;
                let (mut lo, mut hi) = (self.min, self.max);
                for (&v, &w) in values.iter().zip(weights) {
                    if w == 0.0 {
                        continue;
                    }
                    acc.add_product(v, w);
                    wacc.add_f64(w);
                    if v > 0.0 {
                        self.positive.add_one(mapping.index_positive(v), w);
                    } else if v < 0.0 {
                        self.negative.add_one(mapping.index_positive(-v), w);
                    } else {
                        self.zero_count += w;
                    }
                    if v < lo {
                        lo = v;
                    }
                    if v > hi {
                        hi = v;
                    }
                }
                acc.drain_into(&mut self.sum);
                (lo, hi)
            });
            wacc.drain_into(&mut self.count);
            range
        });
        self.set_min_max(lo, hi);
    }

    fn set_min_max(&mut self, lo: f64, hi: f64) {
        // Canonical zero: -0.0 is stored as 0.0.
        self.min = if lo == 0.0 { 0.0 } else { lo };
        self.max = if hi == 0.0 { 0.0 } else { hi };
    }

    /// Check that `other` can be merged into `self`.
    pub fn check_compatible(&self, other: &Self) -> Result<()> {
        if self.relative_accuracy.to_bits() != other.relative_accuracy.to_bits()
            || self.mapping != other.mapping
        {
            return Err(QcoreError::incompatible(format!(
                "relative_accuracy {} (scale {}) differs from {} (scale {})",
                self.relative_accuracy,
                self.scale(),
                other.relative_accuracy,
                other.scale()
            )));
        }
        if self.bucket_limit() != other.bucket_limit() {
            return Err(QcoreError::incompatible(format!(
                "bucket_limit {} differs from {}",
                self.bucket_limit(),
                other.bucket_limit()
            )));
        }
        Ok(())
    }

    /// Merge `other` into `self` (exact and order-invariant for integral weights).
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_compatible(other)?;
        if other.is_empty() {
            return Ok(());
        }
        if exceeds_total(self.count() + other.count()) {
            return Err(QcoreError::invalid(
                "other",
                "total weight would exceed 1e300",
            ));
        }
        self.positive.merge_from(&other.positive);
        self.negative.merge_from(&other.negative);
        self.zero_count += other.zero_count;
        self.count.add_sum(&other.count);
        self.sum.add_sum(&other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// The buckets in value order as `(estimate, weight)`, estimates clamped to
    /// `[min, max]`.
    fn walk(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let clamp = |x: f64| x.clamp(self.min, self.max);
        for (i, c) in self.negative.iter().rev() {
            out.push((clamp(-self.mapping.value(i)), c));
        }
        if self.zero_count > 0.0 {
            out.push((0.0, self.zero_count));
        }
        for (i, c) in self.positive.iter() {
            out.push((clamp(self.mapping.value(i)), c));
        }
        out
    }

    fn check_q(q: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&q) {
            return Err(QcoreError::invalid(
                "q",
                format!("must be in [0, 1], got {q}"),
            ));
        }
        Ok(())
    }

    /// The estimate of the `q`-quantile; `None` when the sketch is empty.
    pub fn quantile(&self, q: f64) -> Result<Option<f64>> {
        Ok(self.quantiles(&[q])?.map(|v| v[0]))
    }

    /// Estimates of several quantiles in one pass; `None` when the sketch is empty.
    pub fn quantiles(&self, qs: &[f64]) -> Result<Option<Vec<f64>>> {
        Ok(self.locate(qs)?.map(|locs| {
            locs.into_iter()
                .map(|l| match l {
                    Loc::Min => self.min,
                    Loc::Max => self.max,
                    Loc::Zero => 0.0,
                    Loc::Pos(i) => self.mapping.value(i).clamp(self.min, self.max),
                    Loc::Neg(i) => (-self.mapping.value(i)).clamp(self.min, self.max),
                })
                .collect()
        }))
    }

    /// For each q, an interval `(lo, hi)` that contains the exact lower quantile: the
    /// bounds of the bucket that answers q, clamped to `[min, max]` (a collapsed bucket
    /// extends to the minimum). `quantile(q)` lies inside it. `None` when empty.
    pub fn quantile_bounds(&self, qs: &[f64]) -> Result<Option<Vec<(f64, f64)>>> {
        // Bucket bounds are computed with exp2: widen by a few ulps so that rounding can
        // never exclude a value that the exact mapping put in the bucket.
        const WIDEN: f64 = 8.0 * f64::EPSILON;
        let pos_floor = self.positive.collapse_bucket();
        let neg_ceil = self.negative.collapse_bucket();
        let clamp = |lo: f64, hi: f64| (lo.clamp(self.min, self.max), hi.clamp(self.min, self.max));
        Ok(self.locate(qs)?.map(|locs| {
            locs.into_iter()
                .map(|l| match l {
                    Loc::Min => (self.min, self.min),
                    Loc::Max => (self.max, self.max),
                    Loc::Zero => (0.0, 0.0),
                    Loc::Pos(i) => {
                        let (lo, hi) = self.bucket_bounds(i);
                        let lo = if pos_floor == Some(i) {
                            self.min
                        } else {
                            lo * (1.0 - WIDEN)
                        };
                        clamp(lo, hi * (1.0 + WIDEN))
                    }
                    Loc::Neg(i) => {
                        let (lo, hi) = self.bucket_bounds(i);
                        let most_negative = if neg_ceil == Some(i) {
                            self.min
                        } else {
                            -hi * (1.0 + WIDEN)
                        };
                        clamp(most_negative, -lo * (1.0 - WIDEN))
                    }
                })
                .collect()
        }))
    }

    /// Which bucket answers each q (one pass over the buckets in value order).
    fn locate(&self, qs: &[f64]) -> Result<Option<Vec<Loc>>> {
        for &q in qs {
            Self::check_q(q)?;
        }
        if self.is_empty() {
            return Ok(None);
        }
        // Buckets in value order: (location, weight).
        let walk = || {
            self.negative
                .iter()
                .rev()
                .map(|(i, c)| (Loc::Neg(i), c))
                .chain((self.zero_count > 0.0).then_some((Loc::Zero, self.zero_count)))
                .chain(self.positive.iter().map(|(i, c)| (Loc::Pos(i), c)))
        };
        let total: f64 = walk().map(|b| b.1).sum();
        let mut order: Vec<usize> = (0..qs.len()).collect();
        order.sort_by(|&a, &b| qs[a].total_cmp(&qs[b]));
        let mut out = vec![Loc::Max; qs.len()];
        let mut it = walk();
        let mut cur = it.next();
        let mut cum = cur.map_or(0.0, |b| b.1);
        for k in order {
            let q = qs[k];
            out[k] = if q == 0.0 {
                Loc::Min
            } else if q == 1.0 {
                Loc::Max
            } else {
                let rank = (total - 1.0) * q;
                // Advance to the first bucket whose cumulative weight exceeds the rank.
                while cum <= rank {
                    match it.next() {
                        Some(b) => {
                            cum += b.1;
                            cur = Some(b);
                        }
                        None => break,
                    }
                }
                cur.map_or(Loc::Max, |b| b.0)
            };
        }
        Ok(Some(out))
    }

    /// Fraction of the weight at or below `x` (buckets counted by their estimate);
    /// `None` when empty.
    pub fn cdf(&self, x: f64) -> Result<Option<f64>> {
        Ok(self.cdfs(&[x])?.map(|v| v[0]))
    }

    /// [`QuantileSketch::cdf`] at several points.
    pub fn cdfs(&self, xs: &[f64]) -> Result<Option<Vec<f64>>> {
        if let Some(i) = xs.iter().position(|x| x.is_nan()) {
            return Err(QcoreError::invalid(
                "x",
                format!("contains NaN at index {i}"),
            ));
        }
        if self.is_empty() {
            return Ok(None);
        }
        let buckets = self.walk();
        let mut cum = Vec::with_capacity(buckets.len());
        let mut acc = 0.0;
        for &(_, c) in &buckets {
            acc += c;
            cum.push(acc);
        }
        let w = acc;
        Ok(Some(
            xs.iter()
                .map(|&x| {
                    if x >= self.max {
                        return 1.0;
                    }
                    if x < self.min {
                        return 0.0;
                    }
                    let k = buckets.partition_point(|&(v, _)| v <= x);
                    if k == 0 {
                        0.0
                    } else {
                        cum[k - 1] / w
                    }
                })
                .collect(),
        ))
    }

    /// The smallest `q` from which every `quantile(q')`, `q' ≥ q`, keeps the guarantee.
    /// `0.0` unless the positive store collapsed (then ranks inside the collapsed lowest
    /// positive bucket lose resolution); a collapse of the negative store (the most
    /// negative values) likewise raises it past that bucket.
    pub fn min_accurate_quantile(&self) -> f64 {
        if !self.collapsed() || self.is_empty() {
            return 0.0;
        }
        let w = self.positive.total() + self.negative.total() + self.zero_count;
        if w <= 1.0 {
            return 0.0;
        }
        let mut through = 0.0f64;
        if let Some(b) = self.negative.collapse_bucket() {
            // The most negative bucket comes first in value order.
            through = through.max(
                self.negative
                    .iter()
                    .rev()
                    .find(|&(i, _)| i == b)
                    .map_or(0.0, |x| x.1),
            );
        }
        if let Some(b) = self.positive.collapse_bucket() {
            let below = self.negative.total() + self.zero_count;
            let c = self
                .positive
                .iter()
                .find(|&(i, _)| i == b)
                .map_or(0.0, |x| x.1);
            through = through.max(below + c);
        }
        (through / (w - 1.0)).min(1.0)
    }

    /// Serialize to the versioned binary format (see `format`).
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Decode bytes written by [`QuantileSketch::to_bytes`]; errors on anything else.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        format::decode(data)
    }

    /// Lower and upper bound of positive bucket `i`.
    pub fn bucket_bounds(&self, i: i32) -> (f64, f64) {
        (
            self.mapping.lower_bound(i),
            self.mapping.lower_bound(i.saturating_add(1)),
        )
    }

    pub(crate) fn parts_mut(
        &mut self,
    ) -> (
        &mut DenseStore,
        &mut DenseStore,
        &mut f64,
        &mut ExactSum,
        &mut ExactSum,
    ) {
        (
            &mut self.positive,
            &mut self.negative,
            &mut self.zero_count,
            &mut self.count,
            &mut self.sum,
        )
    }

    pub(crate) fn set_range(&mut self, min: f64, max: f64) {
        self.min = min;
        self.max = max;
    }

    pub(crate) fn mapping(&self) -> &ExpMapping {
        &self.mapping
    }

    pub(crate) fn exact_parts(&self) -> (&ExactSum, &ExactSum, &DenseStore, &DenseStore) {
        (&self.count, &self.sum, &self.positive, &self.negative)
    }
}

#[cfg(test)]
mod tests;
