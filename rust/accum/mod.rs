//! The mergeable accumulators every path uses: in memory, over batches, and on a cluster.
//!
//! Each accumulator has `update` (fold in arrays), `merge` (fold in another one's state),
//! `encode`/`decode` (a versioned byte format; any byte string decodes to a valid value
//! or an error, never a panic) and `finish` (the statistic). The in-memory functions
//! ([`crate::arrivals::arrival_stats`], [`crate::little::littles_law`]) are the same
//! accumulator over one array, finished, so every statistic has one definition.
//!
//! Multi-pass statistics go through stages: pass 1 collects what fixes the grid (the
//! first arrival, the end of the log), `advance` turns the merged pass-1 state into an
//! empty pass-2 state on that grid, and pass 2 fills it. Float sums are exact sums
//! ([`ExactSum`]), so no result depends on how the rows are cut into batches or
//! partitions, on the merge order, or on the thread budget.
//!
//! - [`ExactSum`]: exact, order-independent sum of doubles (and the sketch's `sum`).
//! - [`ArrivalAccumulator`]: span and count, then the complete-window counts anchored at
//!   the first arrival and the inter-arrival gap moments.
//! - [`LittleAccumulator`]: the log's span and row classes, then Little's-law window
//!   sums and the in-flight counts at gauge times.
//! - [`ReportAccumulator`]: the grouped report's per-group counts, window tables and
//!   Little's-law sums (the batch kernel's state).

pub mod arrivals;
pub mod codec;
pub mod exact_sum;
pub mod little;
pub mod report;

pub use arrivals::ArrivalAccumulator;
pub use exact_sum::{ExactSum, ExpAccumulator, FixedSum};
pub use little::LittleAccumulator;
pub use report::ReportAccumulator;

use crate::error::{QcoreError, Result};

/// First two bytes of every accumulator's encoding.
const MAGIC: [u8; 2] = *b"QA";
/// Format version of the accumulator encodings.
pub const FORMAT_VERSION: u8 = 1;

/// Kind byte of each accumulator's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Sum = 1,
    Arrival = 2,
    Little = 3,
    Report = 4,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sum => "ExactSum",
            Kind::Arrival => "ArrivalAccumulator",
            Kind::Little => "LittleAccumulator",
            Kind::Report => "ReportAccumulator",
        }
    }
}

/// Write the header of an encoding.
pub(crate) fn put_header(out: &mut Vec<u8>, kind: Kind) {
    out.extend_from_slice(&MAGIC);
    out.push(kind as u8);
    out.push(FORMAT_VERSION);
}

/// Read and check the header of an encoding.
pub(crate) fn read_header(r: &mut codec::Reader<'_>, kind: Kind) -> Result<()> {
    let m = r.array::<2>()?;
    if m != MAGIC {
        return Err(QcoreError::data(format!(
            "not a qcore accumulator (expected the bytes of a {})",
            kind.name()
        )));
    }
    let k = r.u8()?;
    if k != kind as u8 {
        return Err(QcoreError::data(format!(
            "accumulator kind {k} is not a {} (kind {})",
            kind.name(),
            kind as u8
        )));
    }
    let v = r.u8()?;
    if v != FORMAT_VERSION {
        return Err(QcoreError::UnsupportedVersion {
            expected: FORMAT_VERSION,
            found: v,
        });
    }
    Ok(())
}

/// Reject bytes left after a decoded value.
pub(crate) fn check_end(r: &codec::Reader<'_>) -> Result<()> {
    if r.remaining() != 0 {
        return Err(QcoreError::data(format!(
            "{} trailing byte(s) after the accumulator",
            r.remaining()
        )));
    }
    Ok(())
}

/// A finite f64 field of an encoding.
pub(crate) fn read_finite(r: &mut codec::Reader<'_>, what: &str) -> Result<f64> {
    let v = r.f64()?;
    if !v.is_finite() {
        return Err(QcoreError::data(format!("{what} is not finite ({v})")));
    }
    Ok(v)
}

/// A boolean byte (0 or 1).
pub(crate) fn read_bool(r: &mut codec::Reader<'_>, what: &str) -> Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(QcoreError::data(format!("{what} byte is {b}, not 0 or 1"))),
    }
}

impl ExactSum {
    /// Add every value of `values` (finite; else an error naming `values` and the index).
    pub fn update(&mut self, values: &[f64]) -> Result<()> {
        crate::error::check_finite("values", values)?;
        if values.len() < 64 {
            for &v in values {
                self.add_f64(v);
            }
        } else {
            let mut acc = ExpAccumulator::new();
            for &v in values {
                acc.add_f64(v);
            }
            acc.drain_into(self);
        }
        Ok(())
    }

    /// The versioned encoding (header, then the canonical limbs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, Kind::Sum);
        self.encode(&mut out);
        out
    }

    /// Decode [`ExactSum::to_bytes`]; any other byte string is an error.
    pub fn from_bytes(data: &[u8]) -> Result<ExactSum> {
        let mut r = codec::Reader::new(data);
        read_header(&mut r, Kind::Sum)?;
        let s = ExactSum::decode(&mut r)?;
        check_end(&r)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests;
