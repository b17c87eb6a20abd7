//! Argument conversion shared by the bindings.

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

/// Inputs at least this long are processed with the GIL released.
pub const GIL_RELEASE_LEN: usize = 4096;

/// A contiguous read-only view of a 1-D numpy array (C-contiguous and aligned), or a
/// `ValueError` naming the argument.
pub fn slice<'a, T: numpy::Element>(
    arr: &'a PyReadonlyArray1<'_, T>,
    name: &str,
) -> PyResult<&'a [T]> {
    arr.as_slice().map_err(|_| {
        super::errors::InvalidArgumentError::new_err(format!(
            "{name} must be a C-contiguous, aligned 1-D array (pass numpy.require({name}, requirements=\"CA\"))"
        ))
    })
}

/// Run `f` with the GIL released when `n` is large, holding it otherwise (a release costs
/// more than a short loop).
pub fn maybe_detach<T, F>(py: Python<'_>, n: usize, f: F) -> T
where
    F: FnOnce() -> T + Send + pyo3::marker::Ungil,
    T: Send + pyo3::marker::Ungil,
{
    if n >= GIL_RELEASE_LEN {
        py.detach(f)
    } else {
        f()
    }
}
