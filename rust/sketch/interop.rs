//! OpenTelemetry exponential-histogram data points and Prometheus native histograms.
//!
//! Both use the base-2 exponential mapping of this sketch: OpenTelemetry `scale` s and
//! Prometheus `schema` s are the same buckets, with Prometheus indices shifted by one
//! (Prometheus bucket `i` is `(b^(i−1), b^i]`, OpenTelemetry bucket `i` is
//! `(b^i, b^(i+1)]`). Export at the sketch's own scale is therefore lossless, and import
//! at the histogram's own scale keeps every bucket: the imported sketch guarantees that
//! scale's relative error `(b−1)/(b+1)`. Importing at a coarser scale merges neighbouring
//! buckets exactly (`i >> d`). A finer scale than the histogram's cannot be recovered
//! and is rejected.
//!
//! What an import cannot know: values in a histogram's zero bucket become exact zeros
//! (absolute error ≤ `zero_threshold`); a missing `min`/`max` is replaced by the outer
//! bucket bounds; a missing `sum` is estimated from the bucket midpoints.

use super::mapping::{self, IndexMapping};
use super::QuantileSketch;
use crate::{QcoreError, Result};

/// Buckets of one sign: `counts[k]` is the count of bucket `offset + k`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ExpBuckets {
    pub offset: i32,
    pub counts: Vec<u64>,
}

/// An OpenTelemetry exponential-histogram data point.
#[derive(Clone, Debug, PartialEq)]
pub struct OtelPoint {
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive: ExpBuckets,
    pub negative: ExpBuckets,
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A Prometheus native histogram (integer counts).
#[derive(Clone, Debug, PartialEq)]
pub struct PromHistogram {
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    pub count: u64,
    pub sum: f64,
    /// `(offset, length)`; the first offset is absolute, later ones are gaps.
    pub positive_spans: Vec<(i32, u32)>,
    /// The first count, then differences between consecutive bucket counts.
    pub positive_deltas: Vec<i64>,
    pub negative_spans: Vec<(i32, u32)>,
    pub negative_deltas: Vec<i64>,
}

/// OpenTelemetry's scale range.
pub const OTEL_MIN_SCALE: i32 = -10;
pub const OTEL_MAX_SCALE: i32 = 20;
/// Prometheus' standard schema range.
pub const PROM_MIN_SCHEMA: i32 = -4;
pub const PROM_MAX_SCHEMA: i32 = 8;

const MAX_EXACT: u64 = 1 << 53;

fn integral_buckets(sk: &QuantileSketch, what: &str) -> Result<()> {
    if !sk.integral_counts() {
        return Err(QcoreError::invalid(
            "sketch",
            format!("has non-integer bucket weights; {what} bucket counts are integers"),
        ));
    }
    Ok(())
}

fn dense(buckets: &[(i32, f64)], shift: u32) -> ExpBuckets {
    let mut out = ExpBuckets::default();
    let mut merged: Vec<(i32, u64)> = Vec::new();
    for &(i, c) in buckets {
        let j = i >> shift;
        match merged.last_mut() {
            Some((k, n)) if *k == j => *n += c as u64,
            _ => merged.push((j, c as u64)),
        }
    }
    if let (Some(&(lo, _)), Some(&(hi, _))) = (merged.first(), merged.last()) {
        out.offset = lo;
        out.counts = vec![0; (hi - lo + 1) as usize];
        for (j, n) in merged {
            out.counts[(j - lo) as usize] = n;
        }
    }
    out
}

impl QuantileSketch {
    /// Export as an OpenTelemetry exponential-histogram data point at the sketch's scale
    /// (lossless). Requires integer bucket weights.
    pub fn to_otel(&self) -> Result<OtelPoint> {
        integral_buckets(self, "OpenTelemetry")?;
        let empty = self.is_empty();
        Ok(OtelPoint {
            scale: self.scale(),
            zero_count: self.zero_count() as u64,
            zero_threshold: 0.0,
            positive: dense(&self.positive_buckets(), 0),
            negative: dense(&self.negative_buckets(), 0),
            count: self.count() as u64,
            sum: Some(self.sum()),
            min: if empty { None } else { self.min() },
            max: if empty { None } else { self.max() },
        })
    }

    /// Export as a Prometheus native histogram. Lossless for scales in [−4, 8]; a sketch
    /// at a finer scale is exported at schema 8 (relative error 0.135 %).
    pub fn to_prometheus(&self) -> Result<PromHistogram> {
        integral_buckets(self, "Prometheus")?;
        if self.scale() < PROM_MIN_SCHEMA {
            return Err(QcoreError::invalid(
                "sketch",
                format!(
                    "scale {} is coarser than Prometheus' coarsest schema {PROM_MIN_SCHEMA}",
                    self.scale()
                ),
            ));
        }
        let schema = self.scale().min(PROM_MAX_SCHEMA);
        let shift = (self.scale() - schema) as u32;
        let spans = |b: &[(i32, f64)]| -> (Vec<(i32, u32)>, Vec<i64>) {
            let d = dense(b, shift);
            let mut spans: Vec<(i32, u32)> = Vec::new();
            let mut deltas = Vec::new();
            let mut prev_count = 0i64;
            let mut prev_end: Option<i64> = None; // exclusive, Prometheus indices
            let mut k = 0usize;
            while k < d.counts.len() {
                if d.counts[k] == 0 {
                    k += 1;
                    continue;
                }
                let start = k;
                while k < d.counts.len() && d.counts[k] != 0 {
                    let c = d.counts[k] as i64;
                    deltas.push(c - prev_count);
                    prev_count = c;
                    k += 1;
                }
                let prom_start = i64::from(d.offset) + start as i64 + 1;
                let off = match prev_end {
                    None => prom_start,
                    Some(e) => prom_start - e,
                };
                spans.push((off as i32, (k - start) as u32));
                prev_end = Some(i64::from(d.offset) + k as i64 + 1);
            }
            (spans, deltas)
        };
        let (positive_spans, positive_deltas) = spans(&self.positive_buckets());
        let (negative_spans, negative_deltas) = spans(&self.negative_buckets());
        Ok(PromHistogram {
            schema,
            zero_threshold: 0.0,
            zero_count: self.zero_count() as u64,
            count: self.count() as u64,
            sum: self.sum(),
            positive_spans,
            positive_deltas,
            negative_spans,
            negative_deltas,
        })
    }

    /// Import an OpenTelemetry data point (see the module docs for what is exact).
    ///
    /// With `relative_accuracy = None` the sketch uses the point's own scale (capped at
    /// the finest supported scale, 16) and its relative accuracy is that scale's error.
    /// With a relative accuracy, the sketch is built as `new(relative_accuracy)` and the
    /// point is merged down to its scale; a point coarser than that is rejected.
    pub fn from_otel(
        p: &OtelPoint,
        relative_accuracy: Option<f64>,
        bucket_limit: Option<usize>,
    ) -> Result<Self> {
        if !(OTEL_MIN_SCALE..=OTEL_MAX_SCALE).contains(&p.scale) {
            return Err(QcoreError::invalid(
                "scale",
                format!(
                    "must be in [{OTEL_MIN_SCALE}, {OTEL_MAX_SCALE}], got {}",
                    p.scale
                ),
            ));
        }
        let pos: Vec<(i64, u64)> = p
            .positive
            .counts
            .iter()
            .enumerate()
            .map(|(k, &c)| (i64::from(p.positive.offset) + k as i64, c))
            .collect();
        let neg: Vec<(i64, u64)> = p
            .negative
            .counts
            .iter()
            .enumerate()
            .map(|(k, &c)| (i64::from(p.negative.offset) + k as i64, c))
            .collect();
        import(
            p.scale,
            &pos,
            &neg,
            p.zero_count,
            p.zero_threshold,
            p.count,
            p.sum,
            p.min,
            p.max,
            relative_accuracy,
            bucket_limit,
        )
    }

    /// Import a Prometheus native histogram (integer counts); see [`Self::from_otel`].
    pub fn from_prometheus(
        h: &PromHistogram,
        relative_accuracy: Option<f64>,
        bucket_limit: Option<usize>,
    ) -> Result<Self> {
        if !(PROM_MIN_SCHEMA..=PROM_MAX_SCHEMA).contains(&h.schema) {
            return Err(QcoreError::invalid(
                "schema",
                format!(
                    "must be in [{PROM_MIN_SCHEMA}, {PROM_MAX_SCHEMA}] (custom buckets are not exponential), got {}",
                    h.schema
                ),
            ));
        }
        let pos = expand_spans(&h.positive_spans, &h.positive_deltas, "positive")?;
        let neg = expand_spans(&h.negative_spans, &h.negative_deltas, "negative")?;
        import(
            h.schema,
            &pos,
            &neg,
            h.zero_count,
            h.zero_threshold,
            h.count,
            Some(h.sum),
            None,
            None,
            relative_accuracy,
            bucket_limit,
        )
    }
}

/// Spans and deltas → (OpenTelemetry index, count).
fn expand_spans(spans: &[(i32, u32)], deltas: &[i64], which: &str) -> Result<Vec<(i64, u64)>> {
    let total: u64 = spans.iter().map(|s| u64::from(s.1)).sum();
    if total != deltas.len() as u64 {
        return Err(QcoreError::invalid(
            format!("{which}_deltas"),
            format!(
                "has {} entries but the spans hold {total} buckets",
                deltas.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(deltas.len());
    let mut idx: i64 = 0;
    let mut count: i64 = 0;
    let mut d = deltas.iter();
    for (k, &(off, len)) in spans.iter().enumerate() {
        if k > 0 && off < 0 {
            return Err(QcoreError::invalid(
                format!("{which}_spans"),
                format!("offset of span {k} must be >= 0, got {off}"),
            ));
        }
        idx += i64::from(off);
        for _ in 0..len {
            let delta = *d
                .next()
                .ok_or_else(|| QcoreError::invalid(format!("{which}_deltas"), "too short"))?;
            count = count
                .checked_add(delta)
                .ok_or_else(|| QcoreError::invalid(format!("{which}_deltas"), "count overflows"))?;
            if count < 0 {
                return Err(QcoreError::invalid(
                    format!("{which}_deltas"),
                    format!("yield a negative count at bucket {idx}"),
                ));
            }
            out.push((idx - 1, count as u64));
            idx += 1;
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn import(
    scale: i32,
    pos: &[(i64, u64)],
    neg: &[(i64, u64)],
    zero_count: u64,
    zero_threshold: f64,
    count: u64,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    relative_accuracy: Option<f64>,
    bucket_limit: Option<usize>,
) -> Result<QuantileSketch> {
    if !(zero_threshold.is_finite() && zero_threshold >= 0.0) {
        return Err(QcoreError::invalid(
            "zero_threshold",
            format!("must be finite and >= 0, got {zero_threshold}"),
        ));
    }
    let mut sk = if let Some(ra) = relative_accuracy {
        let sk = QuantileSketch::with_limit(ra, bucket_limit)?;
        if sk.scale() > scale {
            return Err(QcoreError::invalid(
                "relative_accuracy",
                format!(
                    "{ra} needs scale {} but the histogram has scale {scale} (relative error {:.4e}); import without relative_accuracy to keep its own scale",
                    sk.scale(),
                    mapping::scale_relative_error(scale)
                ),
            ));
        }
        sk
    } else {
        if scale < mapping::MIN_SCALE {
            return Err(QcoreError::invalid(
                "scale",
                format!("{scale} is below {}", mapping::MIN_SCALE),
            ));
        }
        QuantileSketch::with_scale(scale.min(mapping::MAX_SCALE), bucket_limit)?
    };
    let shift = (scale - sk.scale()) as u32;
    let (lo_i, hi_i) = (
        i64::from(sk.mapping().min_index()),
        i64::from(sk.mapping().max_index()),
    );
    let mut total: u64 = zero_count;
    let check = |i: i64, c: u64, which: &str| -> Result<i32> {
        if c > MAX_EXACT {
            return Err(QcoreError::invalid(
                format!("{which} bucket_counts"),
                "count exceeds 2^53",
            ));
        }
        let j = i >> shift;
        if j < lo_i || j > hi_i {
            return Err(QcoreError::invalid(
                format!("{which} offset"),
                format!("bucket index {i} is outside the range of finite doubles at scale {scale}"),
            ));
        }
        Ok(j as i32)
    };
    let mut pos_b = Vec::new();
    for &(i, c) in pos.iter().filter(|b| b.1 > 0) {
        pos_b.push((check(i, c, "positive")?, c));
        total = total.saturating_add(c);
    }
    let mut neg_b = Vec::new();
    for &(i, c) in neg.iter().filter(|b| b.1 > 0) {
        neg_b.push((check(i, c, "negative")?, c));
        total = total.saturating_add(c);
    }
    if total != count {
        return Err(QcoreError::invalid(
            "count",
            format!("is {count} but the buckets hold {total}"),
        ));
    }
    if total > MAX_EXACT {
        return Err(QcoreError::invalid("count", "exceeds 2^53"));
    }
    if zero_count > MAX_EXACT {
        return Err(QcoreError::invalid("zero_count", "exceeds 2^53"));
    }
    if total == 0 {
        return Ok(sk);
    }
    // Bounds from the buckets, used when min/max are missing and to validate them.
    let m = sk.mapping().clone();
    let upper = |j: i32| m.lower_bound(j.saturating_add(1));
    let lower = |j: i32| m.lower_bound(j);
    let bmin = if let Some(&(j, _)) = neg_b.iter().max_by_key(|b| b.0) {
        -upper(j)
    } else if zero_count > 0 {
        -zero_threshold
    } else {
        lower(pos_b.iter().map(|b| b.0).min().unwrap_or(0))
    };
    let bmax = if let Some(&(j, _)) = pos_b.iter().max_by_key(|b| b.0) {
        upper(j)
    } else if zero_count > 0 {
        zero_threshold
    } else {
        -lower(neg_b.iter().map(|b| b.0).min().unwrap_or(0))
    };
    let min = min.unwrap_or(bmin.max(-f64::MAX));
    let max = max.unwrap_or(bmax.min(f64::MAX));
    if !(min.is_finite() && max.is_finite() && min <= max) {
        return Err(QcoreError::invalid(
            "min",
            format!("min {min} and max {max} must be finite with min <= max"),
        ));
    }
    // The zero bucket's values become exact zeros: a bound inside ±zero_threshold with no
    // bucket of its sign beyond it is such a value. Then min and max must agree with the
    // signs of the buckets, as a decoder of the sketch checks.
    let (has_neg, has_pos) = (!neg_b.is_empty(), !pos_b.is_empty());
    let to_zero = |v: f64| {
        if zero_count > 0 && v.abs() <= zero_threshold {
            0.0
        } else {
            v
        }
    };
    let min = if has_neg { min } else { to_zero(min) };
    let max = if has_pos { max } else { to_zero(max) };
    let sign_ok = |v: f64, has_side: bool, side: f64| {
        if has_side {
            v * side > 0.0
        } else if zero_count > 0 {
            v == 0.0
        } else {
            v * side < 0.0
        }
    };
    if !sign_ok(min, has_neg, -1.0) {
        return Err(QcoreError::invalid(
            "min",
            format!("{min} disagrees with the buckets (negative buckets: {has_neg}, zero count: {zero_count})"),
        ));
    }
    if !sign_ok(max, has_pos, 1.0) {
        return Err(QcoreError::invalid(
            "max",
            format!("{max} disagrees with the buckets (positive buckets: {has_pos}, zero count: {zero_count})"),
        ));
    }
    let min = if min == 0.0 { 0.0 } else { min };
    let max = if max == 0.0 { 0.0 } else { max };
    let est_sum: f64 = pos_b
        .iter()
        .map(|&(j, c)| m.value(j) * c as f64)
        .sum::<f64>()
        - neg_b
            .iter()
            .map(|&(j, c)| m.value(j) * c as f64)
            .sum::<f64>();
    let sum = sum.unwrap_or(est_sum);
    if !sum.is_finite() {
        return Err(QcoreError::invalid(
            "sum",
            format!("must be finite, got {sum}"),
        ));
    }
    {
        let (p, n, z, c, s) = sk.parts_mut();
        for (j, cnt) in pos_b {
            p.add_one(j, cnt as f64);
        }
        for (j, cnt) in neg_b {
            n.add_one(j, cnt as f64);
        }
        *z = zero_count as f64;
        c.add_u64(total);
        c.normalize();
        s.add_f64(sum);
        s.normalize();
    }
    sk.set_range(min, max);
    Ok(sk)
}
