//! The one error type of the qcore core.
//!
//! Every fallible function in the crate returns [`Result<T>`]. The Python layer maps each
//! variant to an exception class once (see `rust/python/errors.rs`); all of them subclass
//! Python's `ValueError`.

use std::fmt;

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

impl fmt::Display for QcoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QcoreError::InvalidArgument { name, message } => write!(f, "{name} {message}"),
            QcoreError::IncompatibleMerge { message } => write!(f, "cannot merge: {message}"),
            QcoreError::InvalidData { message } => write!(f, "invalid data: {message}"),
            QcoreError::UnsupportedVersion { expected, found } => write!(
                f,
                "unsupported format version {found} (this build reads version {expected})"
            ),
            QcoreError::Unstable { message } => write!(f, "no steady state: {message}"),
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
