//! The single mapping from [`QcoreError`] to Python exceptions.
//!
//! All qcore exceptions subclass `ValueError`, so `except ValueError` keeps working.

use crate::error::QcoreError;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    qcore.exceptions,
    QcoreValueError,
    PyValueError,
    "Base class of qcore's exceptions (a ValueError)."
);
create_exception!(
    qcore.exceptions,
    InvalidArgumentError,
    QcoreValueError,
    "An argument is outside its domain; the message names the argument."
);
create_exception!(
    qcore.exceptions,
    IncompatibleSketchError,
    QcoreValueError,
    "Two accumulators cannot be merged (for example different relative accuracy)."
);
create_exception!(
    qcore.exceptions,
    DeserializationError,
    QcoreValueError,
    "A byte string does not decode to a valid value."
);
create_exception!(
    qcore.exceptions,
    UnstableSystemError,
    QcoreValueError,
    "A queueing model has no steady state for the given parameters (e.g. utilization >= 1)."
);

impl From<QcoreError> for PyErr {
    fn from(e: QcoreError) -> PyErr {
        let msg = e.to_string();
        match e {
            QcoreError::InvalidArgument { .. } => InvalidArgumentError::new_err(msg),
            QcoreError::IncompatibleMerge { .. } => IncompatibleSketchError::new_err(msg),
            QcoreError::InvalidData { .. } | QcoreError::UnsupportedVersion { .. } => {
                DeserializationError::new_err(msg)
            }
            QcoreError::Unstable { .. } => UnstableSystemError::new_err(msg),
            #[allow(unreachable_patterns)]
            _ => QcoreValueError::new_err(msg),
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("QcoreValueError", py.get_type::<QcoreValueError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add(
        "IncompatibleSketchError",
        py.get_type::<IncompatibleSketchError>(),
    )?;
    m.add(
        "DeserializationError",
        py.get_type::<DeserializationError>(),
    )?;
    m.add("UnstableSystemError", py.get_type::<UnstableSystemError>())?;
    Ok(())
}
