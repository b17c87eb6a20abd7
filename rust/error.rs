//! The one error type of the qcore core.
//!
//! Every fallible function in the crate returns [`Result<T>`]. The Python layer maps each
//! variant to an exception class once (see `rust/python/errors.rs`); all of them subclass
//! Python's `ValueError`.

use std::fmt;
use std::fmt::Write as _;

/// Errors raised by the qcore core.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum QcoreError {
    /// An argument is out of its domain (NaN where a finite value is needed, a negative
    /// rate, a quantile outside [0, 1], mismatched lengths, ...). `name` is the argument.
    InvalidArgument { name: String, message: String },
    /// Two accumulators cannot be merged (different accuracy, different window, ...).
    IncompatibleMerge { message: String },
    /// A byte string does not decode to a valid value (truncated, corrupt, hostile).
    InvalidData { message: String },
    /// A byte string was written by a format version this build does not read.
    UnsupportedVersion { expected: u8, found: u8 },
    /// A model has no steady state for the given parameters (for example ρ ≥ 1).
    Unstable { message: String },
}

impl QcoreError {
    /// An [`QcoreError::InvalidArgument`] naming the argument.
    pub fn invalid(name: impl Into<String>, message: impl Into<String>) -> Self {
        QcoreError::InvalidArgument {
            name: name.into(),
            message: message.into(),
        }
    }

    /// An [`QcoreError::InvalidData`] error.
    pub fn data(message: impl Into<String>) -> Self {
        QcoreError::InvalidData {
            message: message.into(),
        }
    }

    /// An [`QcoreError::IncompatibleMerge`] error.
    pub fn incompatible(message: impl Into<String>) -> Self {
        QcoreError::IncompatibleMerge {
            message: message.into(),
        }
    }

    /// An [`QcoreError::Unstable`] error.
    pub fn unstable(message: impl Into<String>) -> Self {
        QcoreError::Unstable {
            message: message.into(),
        }
    }
}

/// Numbers longer than this many digits are rewritten in scientific notation.
const MAX_DIGITS: usize = 16;

/// `msg` with every long plain-decimal number of a tiny or huge magnitude (Rust prints
/// `1e-300` as a 0, a point and 299 more digits) rewritten in the shortest scientific form that reads back the same
/// value (`1e-300`, `1.2345678901234567e20`); short numbers are left as they are.
///
/// ```
/// let tiny = format!("window must be positive, got {}", 1e-300);
/// assert!(tiny.len() > 300);
/// assert_eq!(qcore::error::readable(&tiny), "window must be positive, got 1e-300");
/// assert_eq!(qcore::error::readable("index 17 of 20"), "index 17 of 20");
/// ```
pub fn readable(msg: &str) -> String {
    let b = msg.as_bytes();
    let mut out = String::with_capacity(msg.len());
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'));
        if !starts {
            let ch = msg[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let mut j = i;
        let mut digits = 0;
        let mut dot = false;
        while j < b.len() && (b[j].is_ascii_digit() || (b[j] == b'.' && !dot)) {
            if b[j] == b'.' {
                if !(j + 1 < b.len() && b[j + 1].is_ascii_digit()) {
                    break;
                }
                dot = true;
            } else {
                digits += 1;
            }
            j += 1;
        }
        let token = &msg[i..j];
        match token.parse::<f64>() {
            // A long decimal fraction of a tiny value, or an integer longer than any
            // 64-bit count (20 digits): a float printed in full.
            Ok(x)
                if x.is_finite()
                    && ((dot && digits > MAX_DIGITS && x != 0.0 && x.abs() < 1e-4)
                        || (!dot && digits > 20)) =>
            {
                let _ = write!(out, "{x:e}");
            }
            _ => out.push_str(token),
        }
        i = j;
    }
    out
}

impl fmt::Display for QcoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QcoreError::InvalidArgument { name, message } => {
                write!(f, "{name} {}", readable(message))
            }
            QcoreError::IncompatibleMerge { message } => {
                write!(f, "cannot merge: {}", readable(message))
            }
            QcoreError::InvalidData { message } => write!(f, "invalid data: {}", readable(message)),
            QcoreError::UnsupportedVersion { expected, found } => write!(
                f,
                "unsupported format version {found} (this build reads version {expected})"
            ),
            QcoreError::Unstable { message } => {
                write!(f, "no steady state: {}", readable(message))
            }
        }
    }
}

impl std::error::Error for QcoreError {}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, QcoreError>;

/// Check that every value is finite; the error names the argument and the first bad index,
/// e.g. `values contains NaN at index 17`.
pub fn check_finite(name: &str, values: &[f64]) -> Result<()> {
    // Fast path: a single pass that the compiler vectorises.
    if values.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    let what = if v.is_nan() {
        "NaN"
    } else if *v > 0.0 {
        "inf"
    } else {
        "-inf"
    };
    Err(QcoreError::invalid(
        name,
        format!("contains {what} at index {i}"),
    ))
}

/// Check that two arrays have the same length.
pub fn check_same_len(a_name: &str, a: usize, b_name: &str, b: usize) -> Result<()> {
    if a != b {
        return Err(QcoreError::invalid(
            b_name,
            format!("has length {b} but {a_name} has length {a}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_numbers_read_short() {
        let e = QcoreError::invalid(
            "window",
            format!("is too small: {} s / {} s", 3600.0, 1e-300),
        );
        assert_eq!(e.to_string(), "window is too small: 3600 s / 1e-300 s");
        let e = QcoreError::data(format!("{} and {} and {}", -1e-30, 1e25, 0.1 + 0.2));
        assert_eq!(
            e.to_string(),
            "invalid data: -1e-30 and 1e25 and 0.30000000000000004"
        );
        // Identifiers, indices and short numbers are left alone.
        let e = QcoreError::invalid("x", "v2 at index 12345 of 1.5e3, row_12345678901234567890");
        assert_eq!(
            e.to_string(),
            "x v2 at index 12345 of 1.5e3, row_12345678901234567890"
        );
    }

    #[test]
    fn finite_check_names_index() {
        let e = check_finite("values", &[1.0, 2.0, f64::NAN]).unwrap_err();
        assert_eq!(e.to_string(), "values contains NaN at index 2");
        let e = check_finite("x", &[f64::NEG_INFINITY]).unwrap_err();
        assert_eq!(e.to_string(), "x contains -inf at index 0");
        assert!(check_finite("x", &[0.0, -1.0]).is_ok());
    }

    #[test]
    fn same_len() {
        assert!(check_same_len("a", 1, "b", 1).is_ok());
        let e = check_same_len("start", 2, "end", 3).unwrap_err();
        assert!(matches!(e, QcoreError::InvalidArgument { .. }));
        assert_eq!(e.to_string(), "end has length 3 but start has length 2");
    }
}
