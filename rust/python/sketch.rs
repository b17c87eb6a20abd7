//! Bindings of [`crate::sketch::QuantileSketch`]: the native base class
//! `qcore._qcore._QuantileSketch` (subclassed by `qcore.QuantileSketch`, which converts
//! inputs) and `_sketch_groups`. Argument conversion, GIL release and error mapping only.

use super::convert::{maybe_detach, slice};
use crate::sketch::{self, QuantileSketch};
use crate::sketch::{ExpBuckets, OtelPoint, PromHistogram};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};
use std::fmt::Write as _;

/// Native state of a quantile sketch.
#[pyclass(subclass, module = "qcore", name = "_QuantileSketch")]
pub struct PySketch {
    pub inner: QuantileSketch,
}

/// A new instance of `cls` (a subclass of `_QuantileSketch`) holding `inner`.
fn wrap<'py>(cls: &Bound<'py, PyType>, inner: QuantileSketch) -> PyResult<Bound<'py, PyAny>> {
    let obj = cls.call0()?;
    {
        let cell = obj.cast::<PySketch>()?;
        cell.borrow_mut().inner = inner;
    }
    Ok(obj)
}

fn inner_of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<QuantileSketch> {
    match obj.cast::<PySketch>() {
        Ok(c) => Ok(c.borrow().inner.clone()),
        Err(_) => Err(super::errors::invalid_type(format!(
            "{name} must be a QuantileSketch, got {}",
            obj.get_type().name()?
        ))),
    }
}

fn opt_array(py: Python<'_>, v: Option<Vec<f64>>) -> Option<Bound<'_, PyArray1<f64>>> {
    v.map(|v| v.into_pyarray(py))
}

#[pymethods]
impl PySketch {
    #[new]
    #[pyo3(signature = (relative_accuracy = 0.01, bucket_limit = None))]
    fn new(relative_accuracy: f64, bucket_limit: Option<usize>) -> PyResult<Self> {
        Ok(PySketch {
            inner: QuantileSketch::with_limit(relative_accuracy, bucket_limit)?,
        })
    }

    /// Add a contiguous float64 array (validated first; nothing is added on error).
    fn _add_array(&mut self, py: Python<'_>, values: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let v = slice(&values, "values")?;
        let inner = &mut self.inner;
        maybe_detach(py, v.len(), || inner.add_slice(v))?;
        Ok(())
    }

    /// Add values with weights (both contiguous float64).
    fn _add_weighted(
        &mut self,
        py: Python<'_>,
        values: PyReadonlyArray1<'_, f64>,
        weights: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let v = slice(&values, "values")?;
        let w = slice(&weights, "weights")?;
        let inner = &mut self.inner;
        maybe_detach(py, v.len(), || inner.add_weighted(v, w))?;
        Ok(())
    }

    fn _add_float(&mut self, v: f64) -> PyResult<()> {
        Ok(self.inner.add(v)?)
    }

    fn _quantile(&self, q: f64) -> PyResult<Option<f64>> {
        Ok(self.inner.quantile(q)?)
    }

    fn _quantiles<'py>(
        &self,
        py: Python<'py>,
        qs: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Option<Bound<'py, PyArray1<f64>>>> {
        let q = slice(&qs, "q")?;
        Ok(opt_array(py, self.inner.quantiles(q)?))
    }

    /// (lo, hi) arrays bracketing the exact lower quantiles, or None when empty.
    #[allow(clippy::type_complexity)]
    fn _quantile_bounds<'py>(
        &self,
        py: Python<'py>,
        qs: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Option<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)>> {
        let q = slice(&qs, "q")?;
        Ok(self.inner.quantile_bounds(q)?.map(|b| {
            let (lo, hi): (Vec<f64>, Vec<f64>) = b.into_iter().unzip();
            (lo.into_pyarray(py), hi.into_pyarray(py))
        }))
    }

    fn _cdf(&self, x: f64) -> PyResult<Option<f64>> {
        Ok(self.inner.cdf(x)?)
    }

    fn _cdfs<'py>(
        &self,
        py: Python<'py>,
        xs: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Option<Bound<'py, PyArray1<f64>>>> {
        let x = slice(&xs, "x")?;
        Ok(opt_array(py, self.inner.cdfs(x)?))
    }

    /// Total weight (the number of values when unweighted).
    #[getter]
    fn count(&self) -> f64 {
        self.inner.count()
    }

    /// Exact weighted sum, rounded once.
    #[getter]
    fn sum(&self) -> f64 {
        self.inner.sum()
    }

    /// Exact minimum, or None when empty.
    #[getter]
    fn min(&self) -> Option<f64> {
        self.inner.min()
    }

    /// Exact maximum, or None when empty.
    #[getter]
    fn max(&self) -> Option<f64> {
        self.inner.max()
    }

    /// Exact weighted mean, or None when empty.
    #[getter]
    fn mean(&self) -> Option<f64> {
        self.inner.mean()
    }

    /// The requested relative accuracy.
    #[getter]
    fn relative_accuracy(&self) -> f64 {
        self.inner.relative_accuracy()
    }

    /// The relative error guaranteed by the mapping, (b-1)/(b+1) <= `relative_accuracy`.
    #[getter]
    fn effective_relative_accuracy(&self) -> f64 {
        self.inner.effective_relative_accuracy()
    }

    /// The base-2 exponential scale (OpenTelemetry scale, Prometheus schema).
    #[getter]
    fn scale(&self) -> i32 {
        self.inner.scale()
    }

    /// Bucket limit per sign.
    #[getter]
    fn bucket_limit(&self) -> usize {
        self.inner.bucket_limit()
    }

    /// Whether the lowest buckets collapsed (the data spanned more than `bucket_limit`).
    #[getter]
    fn collapsed(&self) -> bool {
        self.inner.collapsed()
    }

    /// Every quantile(q) with q >= this value keeps the guarantee (0.0 unless collapsed).
    #[getter]
    fn min_accurate_quantile(&self) -> f64 {
        self.inner.min_accurate_quantile()
    }

    /// Weight of exact zeros.
    #[getter]
    fn zero_count(&self) -> f64 {
        self.inner.zero_count()
    }

    /// Number of non-empty buckets (positive and negative; zeros excluded).
    #[getter]
    fn num_buckets(&self) -> usize {
        self.inner.positive_buckets().len() + self.inner.negative_buckets().len()
    }

    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    fn __bool__(&self) -> bool {
        !self.inner.is_empty()
    }

    /// Merge `other` into this sketch in place.
    fn merge(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let o = inner_of(other, "other")?;
        slf.borrow_mut().inner.merge(&o)?;
        Ok(())
    }

    /// A new sketch merging all `sketches` (an iterable; at least one).
    #[classmethod]
    fn merge_all<'py>(
        cls: &Bound<'py, PyType>,
        sketches: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut acc: Option<QuantileSketch> = None;
        for (k, item) in sketches.try_iter()?.enumerate() {
            let item = item?;
            let cell = item.cast::<PySketch>().map_err(|_| {
                super::errors::invalid_type(format!(
                    "sketches[{k}] must be a QuantileSketch, got {}",
                    item.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            let b = cell.borrow();
            match acc.as_mut() {
                None => acc = Some(b.inner.clone()),
                Some(a) => a.merge(&b.inner)?,
            }
        }
        let acc = acc.ok_or_else(|| {
            crate::QcoreError::invalid("sketches", "must contain at least one sketch")
        })?;
        wrap(cls, acc)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    #[classmethod]
    fn from_bytes<'py>(cls: &Bound<'py, PyType>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let inner = QuantileSketch::from_bytes(data)?;
        wrap(cls, inner)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let ctor = slf.get_type().getattr("from_bytes")?;
        let data = PyBytes::new(py, &slf.borrow().inner.to_bytes());
        PyTuple::new(py, [ctor, PyTuple::new(py, [data])?.into_any()])
    }

    fn copy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let inner = slf.borrow().inner.clone();
        wrap(&slf.get_type(), inner)
    }

    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::copy(slf)
    }

    fn __deepcopy__<'py>(
        slf: &Bound<'py, Self>,
        _memo: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::copy(slf)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> Py<PyAny> {
        let py = other.py();
        match other.cast::<PySketch>() {
            Ok(o) => PyBool(self.inner == o.borrow().inner).into_py(py),
            Err(_) => py.NotImplemented(),
        }
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        let mut r = format!(
            "QuantileSketch(relative_accuracy={}, count={}",
            s.relative_accuracy(),
            s.count()
        );
        if let (Some(lo), Some(hi)) = (s.min(), s.max()) {
            let q = s.quantiles(&[0.5, 0.99]).ok().flatten().unwrap_or_default();
            if q.len() == 2 {
                let _ = write!(
                    r,
                    ", min={}, p50={}, p99={}, max={}",
                    g6(lo),
                    g6(q[0]),
                    g6(q[1]),
                    g6(hi)
                );
            }
        }
        if s.collapsed() {
            r.push_str(", collapsed=True");
        }
        r.push(')');
        r
    }

    fn _to_otel<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.inner.to_otel()?;
        let d = PyDict::new(py);
        d.set_item("scale", p.scale)?;
        d.set_item("zero_count", p.zero_count)?;
        d.set_item("zero_threshold", p.zero_threshold)?;
        for (name, b) in [("positive", &p.positive), ("negative", &p.negative)] {
            let bd = PyDict::new(py);
            bd.set_item("offset", b.offset)?;
            bd.set_item("bucket_counts", PyList::new(py, &b.counts)?)?;
            d.set_item(name, bd)?;
        }
        d.set_item("count", p.count)?;
        d.set_item("sum", p.sum)?;
        d.set_item("min", p.min)?;
        d.set_item("max", p.max)?;
        Ok(d)
    }

    #[classmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (scale, zero_count, zero_threshold, pos_offset, pos_counts, neg_offset, neg_counts, count, sum, min, max, relative_accuracy, bucket_limit))]
    fn _from_otel<'py>(
        cls: &Bound<'py, PyType>,
        scale: i32,
        zero_count: u64,
        zero_threshold: f64,
        pos_offset: i32,
        pos_counts: Vec<u64>,
        neg_offset: i32,
        neg_counts: Vec<u64>,
        count: u64,
        sum: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
        relative_accuracy: Option<f64>,
        bucket_limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let p = OtelPoint {
            scale,
            zero_count,
            zero_threshold,
            positive: ExpBuckets {
                offset: pos_offset,
                counts: pos_counts,
            },
            negative: ExpBuckets {
                offset: neg_offset,
                counts: neg_counts,
            },
            count,
            sum,
            min,
            max,
        };
        let inner = QuantileSketch::from_otel(&p, relative_accuracy, bucket_limit)?;
        wrap(cls, inner)
    }

    fn _to_prometheus<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let h = self.inner.to_prometheus()?;
        let d = PyDict::new(py);
        d.set_item("schema", h.schema)?;
        d.set_item("zero_threshold", h.zero_threshold)?;
        d.set_item("zero_count", h.zero_count)?;
        d.set_item("count", h.count)?;
        d.set_item("sum", h.sum)?;
        d.set_item("positive_spans", PyList::new(py, &h.positive_spans)?)?;
        d.set_item("positive_deltas", PyList::new(py, &h.positive_deltas)?)?;
        d.set_item("negative_spans", PyList::new(py, &h.negative_spans)?)?;
        d.set_item("negative_deltas", PyList::new(py, &h.negative_deltas)?)?;
        Ok(d)
    }

    #[classmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (schema, zero_threshold, zero_count, count, sum, positive_spans, positive_deltas, negative_spans, negative_deltas, relative_accuracy, bucket_limit))]
    fn _from_prometheus<'py>(
        cls: &Bound<'py, PyType>,
        schema: i32,
        zero_threshold: f64,
        zero_count: u64,
        count: u64,
        sum: f64,
        positive_spans: Vec<(i32, u32)>,
        positive_deltas: Vec<i64>,
        negative_spans: Vec<(i32, u32)>,
        negative_deltas: Vec<i64>,
        relative_accuracy: Option<f64>,
        bucket_limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = PromHistogram {
            schema,
            zero_threshold,
            zero_count,
            count,
            sum,
            positive_spans,
            positive_deltas,
            negative_spans,
            negative_deltas,
        };
        let inner = QuantileSketch::from_prometheus(&h, relative_accuracy, bucket_limit)?;
        wrap(cls, inner)
    }
}

/// Six significant digits, like Python's `%.6g`.
fn g6(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-5..6).contains(&mag) {
        return format!("{x:.5e}");
    }
    let s = format!("{:.*}", (5 - mag).max(0) as usize, x);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

struct PyBool(bool);

impl PyBool {
    fn into_py(self, py: Python<'_>) -> Py<PyAny> {
        pyo3::types::PyBool::new(py, self.0)
            .to_owned()
            .into_any()
            .unbind()
    }
}

/// One sketch per group code, as instances of `cls`.
#[pyfunction]
#[pyo3(signature = (cls, codes, values, weights, relative_accuracy, bucket_limit))]
fn _sketch_groups<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    codes: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    relative_accuracy: f64,
    bucket_limit: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let c = slice(&codes, "codes")?;
    let v = slice(&values, "values")?;
    let w = match weights.as_ref() {
        Some(w) => Some(slice(w, "weights")?),
        None => None,
    };
    let template = QuantileSketch::with_limit(relative_accuracy, bucket_limit)?;
    let groups = maybe_detach(py, v.len(), || sketch::sketch_groups(c, v, w, &template))?;
    let out = PyList::empty(py);
    for g in groups {
        out.append(wrap(cls, g)?)?;
    }
    Ok(out)
}

/// Per-group counts and a `groups × len(qs)` quantile table (NaN for empty groups).
#[pyfunction]
#[pyo3(signature = (codes, values, weights, qs, relative_accuracy, bucket_limit))]
#[allow(clippy::type_complexity)]
fn _group_quantiles<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray1<'py, i64>,
    values: PyReadonlyArray1<'py, f64>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    qs: PyReadonlyArray1<'py, f64>,
    relative_accuracy: f64,
    bucket_limit: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let c = slice(&codes, "codes")?;
    let v = slice(&values, "values")?;
    let w = match weights.as_ref() {
        Some(w) => Some(slice(w, "weights")?),
        None => None,
    };
    let q = slice(&qs, "quantiles")?;
    let template = QuantileSketch::with_limit(relative_accuracy, bucket_limit)?;
    let (counts, table) = maybe_detach(py, v.len(), || {
        sketch::group_quantiles(c, v, w, &template, q)
    })?;
    let n = counts.len();
    let table = table.into_pyarray(py).reshape([n, q.len()])?;
    Ok((counts.into_pyarray(py), table))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySketch>()?;
    m.add_function(wrap_pyfunction!(_sketch_groups, m)?)?;
    m.add_function(wrap_pyfunction!(_group_quantiles, m)?)?;
    Ok(())
}
