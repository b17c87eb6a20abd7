//! The single mapping from [`QcoreError`] to Python exceptions.
//!
//! All qcore exceptions subclass `ValueError`, so `except ValueError` keeps working;
//! `InvalidTypeError` (an argument of the wrong type) is also a `TypeError`.

use crate::error::QcoreError;
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

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

/// An `InvalidTypeError` (a subclass of both `InvalidArgumentError` and `TypeError`)
/// with `msg`; a plain `TypeError` if the class cannot be found.
pub fn invalid_type(msg: String) -> PyErr {
    Python::attach(|py| {
        match py
            .import("qcore._qcore")
            .and_then(|m| m.getattr("InvalidTypeError"))
            .map(pyo3::Bound::cast_into::<PyType>)
        {
            Ok(Ok(t)) => PyErr::from_type(t, msg),
            _ => PyTypeError::new_err(msg),
        }
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // A class with two bases (create_exception! takes one): built with `type`.
    let bases = PyTuple::new(
        py,
        [
            py.get_type::<InvalidArgumentError>().into_any(),
            py.get_type::<PyTypeError>().into_any(),
        ],
    )?;
    let ns = PyDict::new(py);
    ns.set_item("__module__", "qcore.exceptions")?;
    ns.set_item(
        "__doc__",
        "An argument of the wrong type; the message names it (also a TypeError).",
    )?;
    let invalid_type = py
        .get_type::<PyType>()
        .call1(("InvalidTypeError", bases, ns))?;
    m.add("InvalidTypeError", invalid_type)?;
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
