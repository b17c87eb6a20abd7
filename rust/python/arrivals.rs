//! Bindings of the arrival-rate functions and streaming estimators.

use super::convert::{maybe_detach, slice};
use crate::arrivals::{self, DecayedRate, SlidingRate};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

#[pyfunction]
#[pyo3(signature = (timestamps, window, start=None, end=None))]
fn window_counts<'py>(
    py: Python<'py>,
    timestamps: PyReadonlyArray1<'py, f64>,
    window: f64,
    start: Option<f64>,
    end: Option<f64>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let ts = slice(&timestamps, "timestamps")?;
    let v = maybe_detach(py, ts.len(), || {
        arrivals::window_counts(ts, window, start, end)
    })?;
    Ok(PyArray1::from_vec(py, v))
}

#[pyfunction]
#[pyo3(signature = (timestamps, window=1.0, confidence=0.95, min_windows=8))]
fn arrival_stats<'py>(
    py: Python<'py>,
    timestamps: PyReadonlyArray1<'py, f64>,
    window: f64,
    confidence: f64,
    min_windows: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let ts = slice(&timestamps, "timestamps")?;
    let s = maybe_detach(py, ts.len(), || {
        arrivals::arrival_stats(ts, window, confidence, min_windows)
    })?;
    arrival_dict(py, s)
}

/// `ArrivalStats` as the dict `qcore.ArrivalStats` is built from.
pub(super) fn arrival_dict(
    py: Python<'_>,
    s: arrivals::ArrivalStats,
) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("count", s.count)?;
    d.set_item("duration", s.duration)?;
    d.set_item("rate", s.rate)?;
    d.set_item("rate_ci", s.rate_ci)?;
    d.set_item("confidence", s.confidence)?;
    d.set_item("window", s.window)?;
    d.set_item("windows", s.windows)?;
    d.set_item("peak_rate", s.peak_rate)?;
    d.set_item("peak_to_mean", s.peak_to_mean)?;
    d.set_item("cv_interarrival", s.cv_interarrival)?;
    d.set_item("index_of_dispersion", s.index_of_dispersion)?;
    d.set_item(
        "burstiness_windows",
        PyArray1::from_vec(py, s.burstiness_windows),
    )?;
    d.set_item("burstiness", PyArray1::from_vec(py, s.burstiness))?;
    Ok(d)
}

#[pyfunction]
fn burstiness_curve<'py>(
    py: Python<'py>,
    timestamps: PyReadonlyArray1<'py, f64>,
    windows: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let ts = slice(&timestamps, "timestamps")?;
    let ws = slice(&windows, "windows")?;
    let v = maybe_detach(py, ts.len(), || arrivals::burstiness_curve(ts, ws))?;
    Ok(PyArray1::from_vec(py, v))
}

#[pyfunction]
#[pyo3(signature = (timestamps, bins=None, penalty=None, min_bins=1))]
fn rate_changes<'py>(
    py: Python<'py>,
    timestamps: PyReadonlyArray1<'py, f64>,
    bins: Option<usize>,
    penalty: Option<f64>,
    min_bins: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let ts = slice(&timestamps, "timestamps")?;
    let r = maybe_detach(py, ts.len(), || {
        arrivals::rate_changes(ts, bins, penalty, min_bins)
    })?;
    let d = PyDict::new(py);
    d.set_item("times", PyArray1::from_vec(py, r.times))?;
    d.set_item("boundaries", PyArray1::from_vec(py, r.boundaries))?;
    d.set_item("rates", PyArray1::from_vec(py, r.rates))?;
    d.set_item("counts", PyArray1::from_vec(py, r.counts))?;
    d.set_item("resolution", r.resolution)?;
    d.set_item("penalty", r.penalty)?;
    Ok(d)
}

/// Native exponentially decayed rate (wrapped by `qcore.DecayedRate`).
#[pyclass(module = "qcore._qcore", name = "_DecayedRate")]
#[derive(Clone)]
struct PyDecayedRate {
    inner: DecayedRate,
}

#[pymethods]
impl PyDecayedRate {
    #[new]
    fn new(half_life: f64) -> PyResult<Self> {
        Ok(PyDecayedRate {
            inner: DecayedRate::new(half_life)?,
        })
    }

    #[staticmethod]
    fn from_state(half_life: f64, t_ref: f64, t_first: f64, s: f64, count: u64) -> PyResult<Self> {
        Ok(PyDecayedRate {
            inner: DecayedRate::from_state(half_life, t_ref, t_first, s, count)?,
        })
    }

    fn state(&self) -> (f64, f64, f64, f64, u64) {
        self.inner.state()
    }

    fn update(&mut self, py: Python<'_>, timestamps: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let ts = slice(&timestamps, "timestamps")?;
        let inner = &mut self.inner;
        maybe_detach(py, ts.len(), || inner.update(ts))?;
        Ok(())
    }

    fn merge(&mut self, other: &PyDecayedRate) -> PyResult<()> {
        self.inner.merge(&other.inner)?;
        Ok(())
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    #[pyo3(signature = (at=None, debias=false))]
    fn rate(&self, at: Option<f64>, debias: bool) -> PyResult<Option<f64>> {
        Ok(self.inner.rate(at, debias)?)
    }

    #[getter]
    fn half_life(&self) -> f64 {
        self.inner.half_life()
    }

    #[getter]
    fn count(&self) -> u64 {
        self.inner.count()
    }

    #[getter]
    fn last_time(&self) -> Option<f64> {
        self.inner.last_time()
    }

    #[getter]
    fn first_time(&self) -> Option<f64> {
        self.inner.first_time()
    }
}

/// Native exact sliding-window rate (wrapped by `qcore.SlidingRate`).
#[pyclass(module = "qcore._qcore", name = "_SlidingRate")]
#[derive(Clone)]
struct PySlidingRate {
    inner: SlidingRate,
}

#[pymethods]
impl PySlidingRate {
    #[new]
    fn new(horizon: f64) -> PyResult<Self> {
        Ok(PySlidingRate {
            inner: SlidingRate::new(horizon)?,
        })
    }

    #[staticmethod]
    fn from_state(
        horizon: f64,
        window: PyReadonlyArray1<'_, f64>,
        count: u64,
        dropped_late: u64,
    ) -> PyResult<Self> {
        let w = slice(&window, "window")?;
        Ok(PySlidingRate {
            inner: SlidingRate::from_state(horizon, w, count, dropped_late)?,
        })
    }

    fn state<'py>(&self, py: Python<'py>) -> (f64, Bound<'py, PyArray1<f64>>, u64, u64) {
        let (h, w, c, d) = self.inner.state();
        (h, PyArray1::from_slice(py, w), c, d)
    }

    fn update(&mut self, py: Python<'_>, timestamps: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let ts = slice(&timestamps, "timestamps")?;
        let inner = &mut self.inner;
        maybe_detach(py, ts.len(), || inner.update(ts))?;
        Ok(())
    }

    fn merge(&mut self, other: &PySlidingRate) -> PyResult<()> {
        self.inner.merge(&other.inner)?;
        Ok(())
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    #[pyo3(signature = (at=None))]
    fn rate(&self, at: Option<f64>) -> PyResult<Option<f64>> {
        Ok(self.inner.rate(at)?)
    }

    #[getter]
    fn horizon(&self) -> f64 {
        self.inner.horizon()
    }

    #[getter]
    fn count(&self) -> u64 {
        self.inner.count()
    }

    #[getter]
    fn dropped_late(&self) -> u64 {
        self.inner.dropped_late()
    }

    #[getter]
    fn last_time(&self) -> Option<f64> {
        self.inner.last_time()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(window_counts, m)?)?;
    m.add_function(wrap_pyfunction!(arrival_stats, m)?)?;
    m.add_function(wrap_pyfunction!(burstiness_curve, m)?)?;
    m.add_function(wrap_pyfunction!(rate_changes, m)?)?;
    m.add_class::<PyDecayedRate>()?;
    m.add_class::<PySlidingRate>()?;
    Ok(())
}
