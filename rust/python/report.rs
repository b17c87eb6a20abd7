//! Binding of the grouped report's accumulator (`accum::ReportAccumulator`).

use super::accum::{reduce, PyExactSum};
use super::arrivals::arrival_dict;
use super::convert::{maybe_detach, slice};
use super::errors::{invalid_type, InvalidArgumentError};
use super::sketch::PySketch;
use crate::accum::ReportAccumulator;
use crate::arrivals::Windows;
use crate::sketch::QuantileSketch;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

/// The grouped report's per-group state (see the core's `accum::report`).
#[pyclass(module = "qcore", name = "ReportAccumulator")]
#[derive(Clone)]
pub(crate) struct PyReportAccumulator {
    inner: ReportAccumulator,
}

/// The sketches of `list` (each a `QuantileSketch`), copied, `n` of them.
fn targets(list: &Bound<'_, PyList>, n: usize, per: usize) -> PyResult<Vec<QuantileSketch>> {
    if list.len() != n {
        return Err(InvalidArgumentError::new_err(format!(
            "sketches: expected {n} sketches (one per group{}), got {}",
            if per > 1 { " and plot window" } else { "" },
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(k, item)| {
            let cell = item
                .cast::<PySketch>()
                .map_err(|_| invalid_type(format!("sketches[{k}] must be a QuantileSketch")))?;
            let inner = cell.borrow().inner.clone();
            Ok(inner)
        })
        .collect()
}

#[pymethods]
impl PyReportAccumulator {
    #[new]
    #[pyo3(signature = (t0, t1, bin, n_windows, n_end, index_limit, edge=None))]
    fn new(
        t0: f64,
        t1: f64,
        bin: f64,
        n_windows: usize,
        n_end: usize,
        index_limit: f64,
        edge: Option<f64>,
    ) -> PyResult<Self> {
        let w = Windows {
            t0,
            t1,
            bin,
            n_windows,
            n_end,
            index_limit,
            edge,
        };
        Ok(Self {
            inner: ReportAccumulator::new(w)?,
        })
    }

    /// Fold one batch in; the ok latencies are merged into `sketches` (one per group, or
    /// per group and plot window with `sketch_windows`). Nothing changes on an error.
    #[pyo3(signature = (codes, start, cls, end, latency, n_groups, sketches=None, relative_accuracy=0.01, sketch_windows=None))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        py: Python<'_>,
        codes: PyReadonlyArray1<'_, i64>,
        start: PyReadonlyArray1<'_, f64>,
        cls: PyReadonlyArray1<'_, i8>,
        end: Option<PyReadonlyArray1<'_, f64>>,
        latency: Option<PyReadonlyArray1<'_, f64>>,
        n_groups: usize,
        sketches: Option<Bound<'_, PyList>>,
        relative_accuracy: f64,
        sketch_windows: Option<usize>,
    ) -> PyResult<()> {
        let n_windows = self.inner.grid().n_windows;
        let per = sketch_windows.map_or(1, |k| n_windows.div_ceil(k.max(1)));
        let mut tgt = match sketches.as_ref() {
            Some(list) => Some(targets(list, n_groups * per, per)?),
            None => None,
        };
        let template = match sketches {
            Some(_) => Some(QuantileSketch::with_limit(relative_accuracy, None)?),
            None => None,
        };
        let (c, s, k) = (
            slice(&codes, "codes")?,
            slice(&start, "start")?,
            slice(&cls, "cls")?,
        );
        let e = end.as_ref().map(|a| slice(a, "end")).transpose()?;
        let l = latency.as_ref().map(|a| slice(a, "latency")).transpose()?;
        // the batch's statistics first, then the sketches merged into copies: only when both
        // succeed do the accumulator and the sketches change
        let inner = &self.inner;
        let batch = maybe_detach(py, s.len(), || -> crate::Result<_> {
            let st = inner.batch(c, s, k, e, l, n_groups, template.as_ref(), sketch_windows)?;
            if let Some(t) = tgt.as_mut() {
                for (t, sk) in t.iter_mut().zip(&st.sketches) {
                    if sk.count() > 0.0 {
                        t.merge(sk)?;
                    }
                }
            }
            Ok(st)
        })?;
        self.inner.fold(&batch)?;
        if let (Some(list), Some(t)) = (sketches.as_ref(), tgt) {
            for (item, t) in list.iter().zip(t) {
                if let Ok(cell) = item.cast::<PySketch>() {
                    cell.borrow_mut().inner = t;
                }
            }
        }
        Ok(())
    }

    /// Fold `other` in: its group `j` into group `codes[j]` (or `j`).
    #[pyo3(signature = (other, codes=None))]
    fn merge(&mut self, other: &Self, codes: Option<PyReadonlyArray1<'_, i64>>) -> PyResult<()> {
        let c = codes.as_ref().map(|a| slice(a, "codes")).transpose()?;
        Ok(self.inner.merge(&other.inner, c)?)
    }

    /// Grow to `n_groups` groups (the new ones empty; never shrinks).
    fn grow(&mut self, n_groups: usize) -> PyResult<()> {
        Ok(self.inner.reserve_groups(n_groups)?)
    }

    /// Every group merged into one.
    fn total(&self) -> Self {
        Self {
            inner: self.inner.total(),
        }
    }

    /// `(first start, last start)` over every group.
    fn start_range(&self) -> (f64, f64) {
        self.inner.start_range()
    }

    /// Fit the end windows to the real last end (`False`, changing nothing, if a row was
    /// counted past `n_end`).
    fn settle(&mut self, t1: f64, n_end: usize, drop_edge: bool) -> PyResult<bool> {
        Ok(self.inner.settle(t1, n_end, drop_edge)?)
    }

    #[getter]
    fn n_groups(&self) -> usize {
        self.inner.n_groups()
    }

    #[getter]
    fn grid(&self) -> (f64, f64, f64, usize, usize, f64, Option<f64>) {
        let w = self.inner.grid();
        (
            w.t0,
            w.t1,
            w.bin,
            w.n_windows,
            w.n_end,
            w.index_limit,
            w.edge,
        )
    }

    /// Group `k`'s tables.
    fn group<'py>(&self, py: Python<'py>, k: usize) -> PyResult<Bound<'py, PyDict>> {
        let g = self.inner.group(k)?;
        let d = PyDict::new(py);
        d.set_item("outcomes", g.outcomes)?;
        d.set_item("windows", PyArray1::from_slice(py, g.windows))?;
        d.set_item("errors", PyArray1::from_slice(py, g.errors))?;
        d.set_item("smin", g.smin)?;
        d.set_item("smax", g.smax)?;
        d.set_item("done_starts", PyArray1::from_slice(py, g.done_starts))?;
        d.set_item("ends", PyArray1::from_slice(py, g.ends))?;
        d.set_item(
            "clipped",
            PyExactSum {
                inner: g.clipped.clone(),
            },
        )?;
        d.set_item(
            "resp",
            PyExactSum {
                inner: g.resp.clone(),
            },
        )?;
        d.set_item("arrivals", g.arrivals)?;
        d.set_item("at_edge", g.at_edge)?;
        d.set_item("latency", g.latency)?;
        Ok(d)
    }

    /// Group `k`'s statistics over the log's span `[t0, s1]` (see the core).
    #[pyo3(signature = (k, s1, confidence=0.95, tolerance=0.02))]
    fn finish_group<'py>(
        &self,
        py: Python<'py>,
        k: usize,
        s1: f64,
        confidence: f64,
        tolerance: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let f = self.inner.finish_group(k, s1, confidence, tolerance)?;
        let d = PyDict::new(py);
        d.set_item("n", f.n)?;
        d.set_item("ok", f.ok)?;
        d.set_item("errors", f.errors)?;
        d.set_item("incomplete", f.incomplete)?;
        d.set_item("rate", f.rate)?;
        match f.stats {
            Some(s) => d.set_item("stats", arrival_dict(py, s)?)?,
            None => d.set_item("stats", py.None())?,
        }
        match f.little {
            Some(l) => {
                let ld = PyDict::new(py);
                ld.set_item("L", l.l)?;
                ld.set_item("arrival_rate", l.arrival_rate)?;
                ld.set_item("mean_response", l.mean_response)?;
                ld.set_item("gap", l.gap)?;
                ld.set_item("holds", l.holds)?;
                d.set_item("little", ld)?;
            }
            None => d.set_item("little", py.None())?,
        }
        d.set_item("in_flight", PyArray1::from_vec(py, f.in_flight))?;
        d.set_item("peak_lo", PyArray1::from_vec(py, f.peak_lo))?;
        d.set_item("peak_hi", PyArray1::from_vec(py, f.peak_hi))?;
        Ok(d)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: ReportAccumulator::from_bytes(data)?,
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
        let w = self.inner.grid();
        format!(
            "ReportAccumulator(groups={}, t0={}, t1={}, bin={}, windows={}, end_windows={})",
            self.inner.n_groups(),
            w.t0,
            w.t1,
            w.bin,
            w.n_windows,
            w.n_end
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyReportAccumulator>()?;
    Ok(())
}
