//! The versioned binary format of [`QuantileSketch`] (format version 1).
//!
//! ```text
//! magic            4 bytes  "QCSK"
//! version          u8       1
//! flags            u8       bit 0 positive store collapsed, bit 1 negative store collapsed,
//!                           bit 2 float counts (non-integer weights), bit 3 non-empty
//! relative_accuracy f64 LE
//! scale            zigzag varint
//! bucket_limit     varint
//! count, sum       exact sums: varint limb offset, varint limb count, u64 LE limbs
//! min, max         f64 LE each (only when non-empty)
//! zero_count       varint (integer counts) or f64 LE (float counts)
//! positive, negative stores, each:
//!   spans          varint n, then per span: start (zigzag varint, absolute for the first
//!                  span, else gap − 1 to the previous span's end as a varint) and length − 1
//!   counts         integer counts: zigzag varint deltas from the previous count (from 0);
//!                  float counts: f64 LE each
//! ```
//!
//! Spans are maximal runs of non-empty buckets, so the encoding of a state is unique:
//! equal sketches have equal bytes. The decoder checks every length against the bytes
//! left, every index against the mapping's range and the limit, and rejects trailing
//! bytes, unknown flags and other versions.

use super::mapping::{scale_relative_error, IndexMapping, MAX_SCALE, MIN_SCALE};
use super::store::DenseStore;
use super::{QuantileSketch, MAX_BUCKET_LIMIT};
use crate::accum::codec::{put_varint, zigzag, Reader};
use crate::accum::exact_sum::ExactSum;
use crate::{QcoreError, Result};

/// The magic bytes.
pub const MAGIC: &[u8; 4] = b"QCSK";
/// The format version written by this build.
pub const VERSION: u8 = 1;

const F_POS_COLLAPSED: u8 = 1;
const F_NEG_COLLAPSED: u8 = 2;
const F_FLOAT_COUNTS: u8 = 4;
const F_NONEMPTY: u8 = 8;
const KNOWN_FLAGS: u8 = 15;

/// Integer weights are exact below 2^53.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Encode a sketch.
pub fn encode(sk: &QuantileSketch) -> Vec<u8> {
    let (count, sum, pos, neg) = sk.exact_parts();
    let float_counts = !sk.integral_counts();
    let mut flags = 0u8;
    if pos.is_collapsed_flag() {
        flags |= F_POS_COLLAPSED;
    }
    if neg.is_collapsed_flag() {
        flags |= F_NEG_COLLAPSED;
    }
    if float_counts {
        flags |= F_FLOAT_COUNTS;
    }
    if !sk.is_empty() {
        flags |= F_NONEMPTY;
    }
    let mut out = Vec::with_capacity(64 + 3 * (pos.len_hint() + neg.len_hint()));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&sk.relative_accuracy().to_le_bytes());
    put_varint(&mut out, zigzag(i64::from(sk.scale())));
    put_varint(&mut out, sk.bucket_limit() as u64);
    count.encode(&mut out);
    sum.encode(&mut out);
    if !sk.is_empty() {
        out.extend_from_slice(&sk.min.to_le_bytes());
        out.extend_from_slice(&sk.max.to_le_bytes());
    }
    put_count(&mut out, sk.zero_count(), float_counts);
    encode_store(&mut out, pos, float_counts);
    encode_store(&mut out, neg, float_counts);
    out
}

fn put_count(out: &mut Vec<u8>, c: f64, float_counts: bool) {
    if float_counts {
        out.extend_from_slice(&c.to_le_bytes());
    } else {
        put_varint(out, c as u64);
    }
}

fn encode_store(out: &mut Vec<u8>, st: &DenseStore, float_counts: bool) {
    let buckets: Vec<(i32, f64)> = st.iter().collect();
    // Maximal runs.
    let mut spans: Vec<(i32, u32)> = Vec::new();
    for &(i, _) in &buckets {
        match spans.last_mut() {
            Some((s, l)) if i64::from(*s) + i64::from(*l) == i64::from(i) => *l += 1,
            _ => spans.push((i, 1)),
        }
    }
    put_varint(out, spans.len() as u64);
    let mut prev_end: i64 = 0;
    for (k, &(s, l)) in spans.iter().enumerate() {
        if k == 0 {
            put_varint(out, zigzag(i64::from(s)));
        } else {
            put_varint(out, (i64::from(s) - prev_end - 1) as u64);
        }
        put_varint(out, u64::from(l) - 1);
        prev_end = i64::from(s) + i64::from(l);
    }
    let mut prev: i64 = 0;
    for &(_, c) in &buckets {
        if float_counts {
            out.extend_from_slice(&c.to_le_bytes());
        } else {
            let c = c as i64;
            put_varint(out, zigzag(c - prev));
            prev = c;
        }
    }
}

fn read_count(r: &mut Reader<'_>, float_counts: bool, what: &str) -> Result<f64> {
    let c = if float_counts {
        r.f64()?
    } else {
        let v = r.varint()?;
        if v as f64 > MAX_EXACT {
            return Err(QcoreError::data(format!("{what} exceeds 2^53")));
        }
        v as f64
    };
    if !(c.is_finite() && c >= 0.0) {
        return Err(QcoreError::data(format!(
            "{what} is not a finite non-negative number"
        )));
    }
    Ok(c)
}

fn decode_store(
    r: &mut Reader<'_>,
    st: &mut DenseStore,
    float_counts: bool,
    min_index: i32,
    max_index: i32,
    which: &str,
) -> Result<()> {
    let limit = st.limit();
    // Each span takes at least 2 bytes, each count at least 1.
    let n_spans = r.length(&format!("{which} span list"), limit as u64, 3)?;
    let mut spans: Vec<(i64, i64)> = Vec::with_capacity(n_spans);
    let mut total: i64 = 0;
    let mut prev_end: i64 = 0;
    for k in 0..n_spans {
        let start = if k == 0 {
            r.zigzag()?
        } else {
            let gap = r.varint()?;
            if gap > u64::from(u32::MAX) {
                return Err(QcoreError::data(format!("{which} span gap out of range")));
            }
            prev_end + 1 + gap as i64
        };
        let len = r.varint()?;
        if len >= limit as u64 {
            // len - 1 is stored; a span longer than the limit is invalid.
            return Err(QcoreError::data(format!(
                "{which} span longer than bucket_limit"
            )));
        }
        let len = len as i64 + 1;
        let end = start + len; // exclusive
        if start < i64::from(min_index) || end - 1 > i64::from(max_index) {
            return Err(QcoreError::data(format!(
                "{which} bucket index out of range for the scale"
            )));
        }
        total += len;
        if total > limit as i64 {
            return Err(QcoreError::data(format!(
                "{which} store has more buckets than bucket_limit"
            )));
        }
        spans.push((start, len));
        prev_end = end;
    }
    if let (Some(first), Some(last)) = (spans.first(), spans.last()) {
        if last.0 + last.1 - first.0 > limit as i64 {
            return Err(QcoreError::data(format!(
                "{which} store spans more than bucket_limit"
            )));
        }
    }
    let min_bytes = if float_counts { 8 } else { 1 };
    if (total as usize).saturating_mul(min_bytes) > r.remaining() {
        return Err(QcoreError::data(format!("truncated input: {which} counts")));
    }
    let mut buckets = Vec::with_capacity(total as usize);
    let mut prev: i64 = 0;
    for &(s, l) in &spans {
        for i in s..s + l {
            let c = if float_counts {
                r.f64()?
            } else {
                let d = r.zigzag()?;
                let c = prev
                    .checked_add(d)
                    .ok_or_else(|| QcoreError::data(format!("{which} count overflows")))?;
                prev = c;
                if c as f64 > MAX_EXACT {
                    return Err(QcoreError::data(format!("{which} count exceeds 2^53")));
                }
                c as f64
            };
            if !(c.is_finite() && c > 0.0) {
                return Err(QcoreError::data(format!(
                    "{which} bucket count must be positive and finite"
                )));
            }
            buckets.push((i as i32, c));
        }
    }
    st.set_buckets(&buckets);
    Ok(())
}

/// Decode a sketch; any malformed input is an error.
pub fn decode(data: &[u8]) -> Result<QuantileSketch> {
    let mut r = Reader::new(data);
    let magic = r
        .array::<4>()
        .map_err(|_| QcoreError::data("too short to be a qcore sketch"))?;
    if &magic != MAGIC {
        return Err(QcoreError::data("not a qcore sketch (bad magic bytes)"));
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(QcoreError::UnsupportedVersion {
            expected: VERSION,
            found: version,
        });
    }
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(QcoreError::data(format!("unknown flags {flags:#04x}")));
    }
    let float_counts = flags & F_FLOAT_COUNTS != 0;
    let nonempty = flags & F_NONEMPTY != 0;
    let ra = r.f64()?;
    if !(ra > 0.0 && ra <= 1.0) {
        return Err(QcoreError::data("relative_accuracy out of (0, 1]"));
    }
    let scale = r.zigzag()?;
    if !(i64::from(MIN_SCALE)..=i64::from(MAX_SCALE)).contains(&scale) {
        return Err(QcoreError::data(format!("scale {scale} out of range")));
    }
    let scale = scale as i32;
    // 1 is the relative error only of the coarsest scales (≤ −6), where (b−1)/(b+1)
    // rounds to 1; OpenTelemetry points at those scales import to such sketches.
    if ra == 1.0 && scale_relative_error(scale) < 1.0 {
        return Err(QcoreError::data(
            "relative_accuracy 1 belongs only to scales whose error rounds to 1",
        ));
    }
    if scale_relative_error(scale) > ra * (1.0 + 1e-9) {
        return Err(QcoreError::data(
            "scale is too coarse for the stated relative_accuracy",
        ));
    }
    let limit = r.varint()?;
    if limit == 0 || limit > MAX_BUCKET_LIMIT as u64 {
        return Err(QcoreError::data(format!(
            "bucket_limit {limit} out of range"
        )));
    }
    let mut sk = QuantileSketch::build(ra, scale, Some(limit as usize))?;
    let count = ExactSum::decode(&mut r)?;
    let sum = ExactSum::decode(&mut r)?;
    let (min, max) = if nonempty {
        let min = r.f64()?;
        let max = r.f64()?;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(QcoreError::data("min/max are not finite with min <= max"));
        }
        if (min == 0.0 && min.is_sign_negative()) || (max == 0.0 && max.is_sign_negative()) {
            return Err(QcoreError::data("min/max is -0.0 (not canonical)"));
        }
        (min, max)
    } else {
        (f64::INFINITY, f64::NEG_INFINITY)
    };
    let zero = read_count(&mut r, float_counts, "zero_count")?;
    let (min_index, max_index) = (sk.mapping().min_index(), sk.mapping().max_index());
    {
        let (pos, neg, z, c, s) = sk.parts_mut();
        decode_store(&mut r, pos, float_counts, min_index, max_index, "positive")?;
        decode_store(&mut r, neg, float_counts, min_index, max_index, "negative")?;
        pos.set_collapsed(flags & F_POS_COLLAPSED != 0);
        neg.set_collapsed(flags & F_NEG_COLLAPSED != 0);
        *z = zero;
        *c = count;
        *s = sum;
    }
    if r.remaining() != 0 {
        return Err(QcoreError::data(format!(
            "{} trailing bytes",
            r.remaining()
        )));
    }
    sk.set_range(min, max);
    // Consistency: emptiness, count, sign ranges, min/max versus buckets.
    let (count, _, pos, neg) = sk.exact_parts();
    let bucket_total = pos.total() + neg.total() + sk.zero_count();
    let has_buckets = bucket_total > 0.0;
    if nonempty != has_buckets {
        return Err(QcoreError::data("empty flag disagrees with the buckets"));
    }
    if !nonempty && (!count.is_zero() || flags & (F_POS_COLLAPSED | F_NEG_COLLAPSED) != 0) {
        return Err(QcoreError::data(
            "empty sketch with a count or collapse flag",
        ));
    }
    if nonempty {
        let c = count.to_f64();
        if c.is_nan() || c <= 0.0 || (c - bucket_total).abs() > 1e-9 * c {
            return Err(QcoreError::data("count disagrees with the bucket weights"));
        }
        if !float_counts && count.to_f64() != bucket_total {
            return Err(QcoreError::data("count disagrees with the bucket weights"));
        }
        if (neg.range().is_some() && min >= 0.0)
            || (pos.range().is_some() && max <= 0.0)
            || (sk.zero_count() > 0.0 && (min > 0.0 || max < 0.0))
        {
            return Err(QcoreError::data("min/max disagree with the buckets"));
        }
        if (neg.range().is_none() && sk.zero_count() == 0.0 && min <= 0.0)
            || (pos.range().is_none() && sk.zero_count() == 0.0 && max >= 0.0)
        {
            return Err(QcoreError::data("min/max disagree with the buckets"));
        }
    }
    if !float_counts && !sk.integral_counts() {
        return Err(QcoreError::data("integer counts out of range"));
    }
    if float_counts && sk.integral_counts() {
        return Err(QcoreError::data(
            "float-count flag on integer counts (not canonical)",
        ));
    }
    if bucket_total.is_nan() || bucket_total > super::MAX_TOTAL_WEIGHT {
        return Err(QcoreError::data("total weight out of range"));
    }
    let _ = sk.mapping().relative_error();
    Ok(sk)
}
