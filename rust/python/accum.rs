//! Bindings of the mergeable accumulators and the thread budget.

use super::arrivals::arrival_dict;
use super::convert::{maybe_detach, slice};
use super::stats::little_dict;
use crate::accum::{ArrivalAccumulator, ExactSum, LittleAccumulator};
use crate::arrivals::{self, ArrivalStats};
use crate::error::QcoreError;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

/// `(from_bytes, (bytes,))`, the pickle recipe of every accumulator.
pub(super) fn reduce<'py>(obj: &Bound<'py, PyAny>, data: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
    let py = obj.py();
    let ctor = obj.get_type().getattr("from_bytes")?;
    let args = PyTuple::new(py, [PyBytes::new(py, data)])?;
    PyTuple::new(py, [ctor, args.into_any()])
}

/// Both gauge arrays or neither, as slices.
fn gauge<'a>(
    times: Option<&'a PyReadonlyArray1<'_, f64>>,
    counts: Option<&'a PyReadonlyArray1<'_, f64>>,
) -> PyResult<Option<(&'a [f64], &'a [f64])>> {
    match (times, counts) {
        (Some(t), Some(c)) => Ok(Some((
            slice(t, "in_flight_times")?,
            slice(c, "in_flight_counts")?,
        ))),
        (None, None) => Ok(None),
        (Some(_), None) => {
            Err(QcoreError::invalid("in_flight_counts", "is required with in_flight_times").into())
        }
        (None, Some(_)) => {
            Err(QcoreError::invalid("in_flight_times", "is required with in_flight_counts").into())
        }
    }
}

/// Exact, order-independent sum of doubles (rounded once when read).
#[pyclass(module = "qcore", name = "ExactSum")]
#[derive(Clone, Default)]
pub(crate) struct PyExactSum {
    pub(crate) inner: ExactSum,
}

#[pymethods]
impl PyExactSum {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Add every value of a float64 array (finite; any strides).
    fn update(&mut self, py: Python<'_>, values: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let copy;
        let v = if let Ok(v) = values.as_slice() {
            v
        } else {
            copy = values.as_array().to_vec();
            &copy
        };
        let inner = &mut self.inner;
        Ok(maybe_detach(py, v.len(), || inner.update(v))?)
    }

    /// Same as `update`.
    fn add(&mut self, py: Python<'_>, values: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        self.update(py, values)
    }

    fn merge(&mut self, other: &Self) {
        self.inner.add_sum(&other.inner);
    }

    /// The sum correctly rounded to the nearest double.
    fn finish(&self) -> f64 {
        self.inner.to_f64()
    }

    #[getter]
    fn value(&self) -> f64 {
        self.inner.to_f64()
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: ExactSum::from_bytes(data)?,
        })
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let data = slf.borrow().inner.to_bytes();
        reduce(slf.as_any(), &data)
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }

    fn __repr__(&self) -> String {
        format!("ExactSum({})", self.inner.to_f64())
    }
}

/// The mergeable state of `arrival_stats` (pass 1: count and span; pass 2: window counts
/// and gap moments).
#[pyclass(module = "qcore", name = "ArrivalAccumulator")]
#[derive(Clone, Default)]
struct PyArrivalAccumulator {
    inner: ArrivalAccumulator,
}

#[pymethods]
impl PyArrivalAccumulator {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// The accumulator over one array, both passes done.
    #[staticmethod]
    fn of(py: Python<'_>, timestamps: PyReadonlyArray1<'_, f64>, window: f64) -> PyResult<Self> {
        let ts = slice(&timestamps, "timestamps")?;
        let inner = maybe_detach(py, ts.len(), || ArrivalAccumulator::of(ts, window))?;
        Ok(Self { inner })
    }

    fn update(&mut self, py: Python<'_>, timestamps: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let ts = slice(&timestamps, "timestamps")?;
        let inner = &mut self.inner;
        Ok(maybe_detach(py, ts.len(), || inner.update(ts))?)
    }

    fn merge(&mut self, other: &Self) -> PyResult<()> {
        Ok(self.inner.merge(&other.inner)?)
    }

    fn advance(&mut self, window: f64) -> PyResult<()> {
        Ok(self.inner.advance(window)?)
    }

    #[pyo3(signature = (confidence=0.95, min_windows=8))]
    fn finish<'py>(
        &self,
        py: Python<'py>,
        confidence: f64,
        min_windows: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.finish(confidence, min_windows)?;
        arrival_dict(py, s)
    }

    #[getter]
    fn stage(&self) -> u8 {
        self.inner.pass()
    }

    #[getter]
    fn count(&self) -> u64 {
        self.inner.count()
    }

    #[getter]
    fn min(&self) -> f64 {
        self.inner.min()
    }

    #[getter]
    fn max(&self) -> f64 {
        self.inner.max()
    }

    #[getter]
    fn window(&self) -> Option<f64> {
        self.inner.window()
    }

    #[getter]
    fn in_time_order(&self) -> bool {
        self.inner.in_time_order()
    }

    /// The complete-window counts of pass 2 (a copy).
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, self.inner.counts())
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = maybe_detach(py, data.len(), || ArrivalAccumulator::from_bytes(data))?;
        Ok(Self { inner })
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let data = slf.borrow().inner.to_bytes();
        reduce(slf.as_any(), &data)
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

/// The mergeable state of `littles_law` (pass 1: span and row classes; pass 2: window
/// sums and in-flight counts at the gauge times).
#[pyclass(module = "qcore", name = "LittleAccumulator")]
#[derive(Clone, Default)]
struct PyLittleAccumulator {
    inner: LittleAccumulator,
}

#[pymethods]
impl PyLittleAccumulator {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// An empty pass-2 accumulator over `[t0, t1)` of a log ending at `log_end`.
    #[staticmethod]
    #[pyo3(signature = (t0, t1, log_end, in_flight_times=None, in_flight_counts=None))]
    fn window_pass(
        t0: f64,
        t1: f64,
        log_end: f64,
        in_flight_times: Option<PyReadonlyArray1<'_, f64>>,
        in_flight_counts: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        let g = gauge(in_flight_times.as_ref(), in_flight_counts.as_ref())?;
        Ok(Self {
            inner: LittleAccumulator::window_pass(t0, t1, log_end, g)?,
        })
    }

    fn update(
        &mut self,
        py: Python<'_>,
        start: PyReadonlyArray1<'_, f64>,
        end: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let (s, e) = (slice(&start, "start")?, slice(&end, "end")?);
        let inner = &mut self.inner;
        Ok(maybe_detach(py, s.len(), || inner.update(s, e))?)
    }

    fn merge(&mut self, other: &Self) -> PyResult<()> {
        Ok(self.inner.merge(&other.inner)?)
    }

    #[pyo3(signature = (t0=None, t1=None, in_flight_times=None, in_flight_counts=None))]
    fn advance(
        &mut self,
        t0: Option<f64>,
        t1: Option<f64>,
        in_flight_times: Option<PyReadonlyArray1<'_, f64>>,
        in_flight_counts: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<()> {
        let g = gauge(in_flight_times.as_ref(), in_flight_counts.as_ref())?;
        Ok(self.inner.advance(t0, t1, g)?)
    }

    #[pyo3(signature = (tolerance=0.02, confidence=0.95))]
    fn finish<'py>(
        &self,
        py: Python<'py>,
        tolerance: f64,
        confidence: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let r = self.inner.finish(tolerance, confidence)?;
        little_dict(py, &r)
    }

    #[getter]
    fn stage(&self) -> u8 {
        self.inner.pass()
    }

    #[getter]
    fn rows(&self) -> u64 {
        self.inner.rows()
    }

    #[getter]
    fn first(&self) -> f64 {
        self.inner.first()
    }

    #[getter]
    fn last(&self) -> f64 {
        self.inner.last()
    }

    #[getter]
    fn running(&self) -> u64 {
        self.inner.running()
    }

    #[getter]
    fn negative(&self) -> u64 {
        self.inner.negative()
    }

    #[getter]
    fn window(&self) -> Option<(f64, f64)> {
        self.inner.window()
    }

    /// Pass 2: `(clipped, response, arrivals)`, the exact sums of the time in the system
    /// inside the window and of the arrivals' response times (copies), and the arrivals.
    fn window_sums(&self) -> PyResult<(PyExactSum, PyExactSum, u64)> {
        let (c, r, a) = self
            .inner
            .window_sums()
            .ok_or_else(|| QcoreError::invalid("pass", "is 1: the window sums exist in pass 2"))?;
        Ok((
            PyExactSum { inner: c.clone() },
            PyExactSum { inner: r.clone() },
            a,
        ))
    }

    /// The logs' in-flight counts at the gauge times of pass 2 (a copy).
    fn in_flight_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, self.inner.in_flight_counts())
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: LittleAccumulator::from_bytes(data)?,
        })
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let data = slf.borrow().inner.to_bytes();
        reduce(slf.as_any(), &data)
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

/// Index of dispersion and peak-to-mean of window counts (the one definition).
#[pyfunction]
fn window_count_stats<'py>(
    py: Python<'py>,
    counts: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let c = slice(&counts, "counts")?;
    let w = arrivals::window_count_stats(c)?;
    let d = PyDict::new(py);
    d.set_item("windows", w.windows)?;
    d.set_item("max", w.max)?;
    d.set_item("mean", w.mean)?;
    d.set_item("variance", w.variance)?;
    d.set_item("index_of_dispersion", w.index_of_dispersion)?;
    d.set_item("peak_to_mean", w.peak_to_mean)?;
    Ok(d)
}

/// `(duration, complete windows)` of `arrival_stats` for `count` arrivals in `[min, max]`.
#[pyfunction]
fn arrival_grid(count: u64, min: f64, max: f64, window: f64) -> PyResult<(f64, usize)> {
    Ok(arrivals::arrival_grid(count, min, max, window)?)
}

/// `arrival_stats` from merged parts (see `ArrivalStats::from_parts` in the core).
#[pyfunction]
#[pyo3(signature = (count, min, max, counts, gap_ss, window, confidence=0.95, min_windows=8))]
#[allow(clippy::too_many_arguments)]
fn arrival_stats_from_parts<'py>(
    py: Python<'py>,
    count: u64,
    min: f64,
    max: f64,
    counts: PyReadonlyArray1<'py, i64>,
    gap_ss: f64,
    window: f64,
    confidence: f64,
    min_windows: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let c = slice(&counts, "counts")?;
    let s = ArrivalStats::from_parts(count, min, max, c, gap_ss, window, confidence, min_windows)?;
    arrival_dict(py, s)
}

/// Set the core's thread budget (`None`: back to `QCORE_MAX_THREADS` or the machine).
#[pyfunction]
#[pyo3(signature = (n=None))]
fn set_threads(n: Option<usize>) -> PyResult<()> {
    Ok(crate::threads::set_max_threads(n)?)
}

/// The core's thread budget.
#[pyfunction]
fn threads() -> PyResult<usize> {
    Ok(crate::threads::configured_threads()?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExactSum>()?;
    m.add_class::<PyArrivalAccumulator>()?;
    m.add_class::<PyLittleAccumulator>()?;
    m.add_function(wrap_pyfunction!(window_count_stats, m)?)?;
    m.add_function(wrap_pyfunction!(arrival_grid, m)?)?;
    m.add_function(wrap_pyfunction!(arrival_stats_from_parts, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(threads, m)?)?;
    Ok(())
}
