//! Bindings of Little's law, in-flight concurrency and the tail-latency statistics.

use super::convert::{maybe_detach, slice};
use crate::intervals;
use crate::little::{self, GaugeCheck, LittleResult};
use crate::tail::{self, QuantileRanks};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

#[pyfunction]
fn in_flight<'py>(
    py: Python<'py>,
    start: PyReadonlyArray1<'py, f64>,
    end: PyReadonlyArray1<'py, f64>,
    at: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let (s, e, a) = (
        slice(&start, "start")?,
        slice(&end, "end")?,
        slice(&at, "at")?,
    );
    let v = maybe_detach(py, s.len() + a.len(), || little::in_flight(s, e, a))?;
    Ok(PyArray1::from_vec(py, v))
}

#[pyfunction]
fn peak_in_flight<'py>(
    py: Python<'py>,
    start: PyReadonlyArray1<'py, f64>,
    end: PyReadonlyArray1<'py, f64>,
) -> PyResult<(i64, Option<f64>)> {
    let (s, e) = (slice(&start, "start")?, slice(&end, "end")?);
    Ok(maybe_detach(py, s.len(), || little::peak_in_flight(s, e))?)
}

#[pyfunction]
fn in_flight_peaks<'py>(
    py: Python<'py>,
    start: PyReadonlyArray1<'py, f64>,
    end: PyReadonlyArray1<'py, f64>,
    t0: f64,
    width: f64,
    n: usize,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let (s, e) = (slice(&start, "start")?, slice(&end, "end")?);
    let v = maybe_detach(py, s.len(), || little::in_flight_peaks(s, e, t0, width, n))?;
    Ok(PyArray1::from_vec(py, v))
}

fn gauge_dict<'py>(py: Python<'py>, g: &GaugeCheck) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("samples", g.samples)?;
    d.set_item("gauge_mean", g.gauge_mean)?;
    d.set_item("logs_mean", g.logs_mean)?;
    d.set_item("discrepancy", g.discrepancy)?;
    d.set_item("discrepancy_ci", g.discrepancy_ci)?;
    d.set_item("mismatch", g.mismatch)?;
    d.set_item("mismatch_upper", g.mismatch_upper)?;
    d.set_item("autocorrelation", g.autocorrelation)?;
    d.set_item("gauge_gap", g.gauge_gap)?;
    d.set_item("exact_agreement", g.exact_agreement)?;
    d.set_item("within_tolerance", g.within_tolerance)?;
    Ok(d)
}

pub(super) fn little_dict<'py>(py: Python<'py>, r: &LittleResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("t0", r.t0)?;
    d.set_item("t1", r.t1)?;
    d.set_item("L", r.l)?;
    d.set_item("arrival_rate", r.arrival_rate)?;
    d.set_item("mean_response", r.mean_response)?;
    d.set_item("lambda_w", r.lambda_w)?;
    d.set_item("gap", r.gap)?;
    d.set_item("edge_term", r.edge_term)?;
    d.set_item("edge_bound", r.edge_bound)?;
    d.set_item("in_flight_t0", r.in_flight_t0)?;
    d.set_item("in_flight_t1", r.in_flight_t1)?;
    d.set_item("rows", r.rows)?;
    d.set_item("arrivals", r.arrivals)?;
    d.set_item("running", r.running)?;
    d.set_item("negative_durations", r.negative_durations)?;
    d.set_item("tolerance", r.tolerance)?;
    d.set_item("flags", PyList::new(py, r.flags.iter().copied())?)?;
    d.set_item("holds", r.holds())?;
    match &r.gauge {
        Some(g) => d.set_item("gauge", gauge_dict(py, g)?)?,
        None => d.set_item("gauge", py.None())?,
    }
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (start, end, t0=None, t1=None, in_flight_times=None, in_flight_counts=None, tolerance=0.02, confidence=0.95))]
#[allow(clippy::too_many_arguments)]
fn littles_law<'py>(
    py: Python<'py>,
    start: PyReadonlyArray1<'py, f64>,
    end: PyReadonlyArray1<'py, f64>,
    t0: Option<f64>,
    t1: Option<f64>,
    in_flight_times: Option<PyReadonlyArray1<'py, f64>>,
    in_flight_counts: Option<PyReadonlyArray1<'py, f64>>,
    tolerance: f64,
    confidence: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let (s, e) = (slice(&start, "start")?, slice(&end, "end")?);
    let gauge = match (&in_flight_times, &in_flight_counts) {
        (Some(t), Some(c)) => Some((slice(t, "in_flight_times")?, slice(c, "in_flight_counts")?)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(crate::error::QcoreError::invalid(
                "in_flight_counts",
                "is required with in_flight_times",
            )
            .into())
        }
        (None, Some(_)) => {
            return Err(crate::error::QcoreError::invalid(
                "in_flight_times",
                "is required with in_flight_counts",
            )
            .into())
        }
    };
    let r = maybe_detach(py, s.len(), || {
        little::littles_law(s, e, t0, t1, gauge, tolerance, confidence)
    })?;
    little_dict(py, &r)
}

/// Indices of the gauge samples inside the window `[t0, t1]` (validating the gauge arrays
/// as `littles_law` does; `None` leaves a side open).
#[pyfunction]
#[pyo3(signature = (in_flight_times, in_flight_counts, t0=None, t1=None))]
fn gauge_window<'py>(
    py: Python<'py>,
    in_flight_times: PyReadonlyArray1<'py, f64>,
    in_flight_counts: PyReadonlyArray1<'py, f64>,
    t0: Option<f64>,
    t1: Option<f64>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let (gt, gc) = (
        slice(&in_flight_times, "in_flight_times")?,
        slice(&in_flight_counts, "in_flight_counts")?,
    );
    let idx = maybe_detach(py, gt.len(), || {
        little::check_gauge(gt, gc)?;
        little::gauge_window(gt, t0, t1)
    })?;
    Ok(PyArray1::from_vec(
        py,
        idx.into_iter().map(|k| k as i64).collect(),
    ))
}

/// The gauge part of `littles_law` from the logs' in-flight counts at the gauge times:
/// `(gauge dict, gauge flags)`.
#[pyfunction]
#[pyo3(signature = (in_flight_times, in_flight_counts, logs_counts, lambda_w, tolerance=0.02, confidence=0.95))]
fn gauge_compare<'py>(
    py: Python<'py>,
    in_flight_times: PyReadonlyArray1<'py, f64>,
    in_flight_counts: PyReadonlyArray1<'py, f64>,
    logs_counts: PyReadonlyArray1<'py, i64>,
    lambda_w: f64,
    tolerance: f64,
    confidence: f64,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
    let (gt, gc, lc) = (
        slice(&in_flight_times, "in_flight_times")?,
        slice(&in_flight_counts, "in_flight_counts")?,
        slice(&logs_counts, "logs_counts")?,
    );
    let g = maybe_detach(py, gt.len(), || {
        little::gauge_compare(lc, gt, gc, tolerance, confidence, lambda_w)
    })?;
    let flags = PyList::new(py, little::gauge_flags(&g, tolerance))?;
    Ok((gauge_dict(py, &g)?, flags))
}

/// Exact (Garwood) Poisson interval of a rate: `k` events over `exposure`.
#[pyfunction]
#[pyo3(signature = (k, exposure, confidence=0.95))]
fn garwood(k: &Bound<'_, PyAny>, exposure: f64, confidence: f64) -> PyResult<(f64, f64)> {
    let text = |r: PyResult<Bound<'_, pyo3::types::PyString>>| {
        r.map_or_else(|_| "?".into(), |s| s.to_string())
    };
    let k: u64 = match k.extract::<u64>() {
        Ok(v) => v,
        // an integer below 0 or beyond u64
        Err(_) if k.extract::<i64>().is_ok() || k.is_instance_of::<pyo3::types::PyInt>() => {
            return Err(crate::error::QcoreError::invalid(
                "k",
                format!("must be an integer in [0, 2^64), got {}", text(k.str())),
            )
            .into())
        }
        Err(_) => {
            return Err(super::errors::invalid_type(format!(
                "k must be an integer, got {}",
                text(k.repr())
            )))
        }
    };
    Ok(crate::arrivals::ArrivalStats::rate_interval(
        k, exposure, confidence,
    )?)
}

/// Per-group Little's law; returns one dict per group, or the error message for a group
/// whose window is empty or invalid (as a string under "error").
#[pyfunction]
#[pyo3(signature = (codes, start, end, n_groups, t0=None, t1=None, tolerance=0.02))]
#[allow(clippy::too_many_arguments)]
fn littles_law_grouped<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray1<'py, i64>,
    start: PyReadonlyArray1<'py, f64>,
    end: PyReadonlyArray1<'py, f64>,
    n_groups: usize,
    t0: Option<f64>,
    t1: Option<f64>,
    tolerance: f64,
) -> PyResult<Bound<'py, PyList>> {
    let (c, s, e) = (
        slice(&codes, "codes")?,
        slice(&start, "start")?,
        slice(&end, "end")?,
    );
    let rs = maybe_detach(py, s.len(), || {
        little::littles_law_grouped(c, s, e, n_groups, t0, t1, tolerance)
    })?;
    let out = PyList::empty(py);
    for r in rs {
        match r {
            Ok(r) => out.append(little_dict(py, &r)?)?,
            Err(err) => {
                let d = PyDict::new(py);
                d.set_item("error", err.to_string())?;
                out.append(d)?;
            }
        }
    }
    Ok(out)
}

fn ranks_dict<'py>(py: Python<'py>, r: &QuantileRanks) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("n", r.n)?;
    d.set_item("lower", r.lower)?;
    d.set_item("upper", r.upper)?;
    d.set_item("coverage", r.coverage)?;
    Ok(d)
}

/// `(lo, estimate, hi, ranks)`.
type QuantileCiTuple<'py> = (Option<f64>, f64, Option<f64>, Bound<'py, PyDict>);

#[pyfunction]
#[pyo3(signature = (values, q, confidence=0.95))]
fn quantile_ci<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, f64>,
    q: f64,
    confidence: f64,
) -> PyResult<QuantileCiTuple<'py>> {
    let v = slice(&values, "values")?;
    let r = maybe_detach(py, v.len(), || tail::quantile_ci(v, q, confidence))?;
    Ok((r.lo, r.estimate, r.hi, ranks_dict(py, &r.ranks)?))
}

#[pyfunction]
#[pyo3(signature = (n, q, confidence=0.95))]
fn quantile_ranks(py: Python<'_>, n: u64, q: f64, confidence: f64) -> PyResult<Bound<'_, PyDict>> {
    let r = tail::quantile_ranks(n, q, confidence)?;
    ranks_dict(py, &r)
}

#[pyfunction]
fn widen_for_sketch(
    lo: Option<f64>,
    hi: Option<f64>,
    relative_accuracy: f64,
    estimate: Option<f64>,
) -> PyResult<(Option<f64>, Option<f64>)> {
    Ok(tail::widen_for_sketch(lo, hi, relative_accuracy, estimate)?)
}

#[pyfunction]
#[pyo3(signature = (count, q, confidence=0.95))]
fn sketch_ci_levels(
    py: Python<'_>,
    count: f64,
    q: f64,
    confidence: f64,
) -> PyResult<(Option<f64>, Option<f64>, Bound<'_, PyDict>)> {
    let (lo, hi, r) = tail::sketch_ci_levels(count, q, confidence)?;
    Ok((lo, hi, ranks_dict(py, &r)?))
}

#[pyfunction]
#[pyo3(signature = (q, confidence=0.95, two_sided=true))]
fn min_sample_size(q: f64, confidence: f64, two_sided: bool) -> PyResult<u64> {
    Ok(tail::min_sample_size(q, confidence, two_sided)?)
}

#[pyfunction]
fn wilson_interval(k: u64, n: u64, confidence: f64) -> PyResult<(f64, f64)> {
    Ok(intervals::wilson(k, n, confidence)?)
}

#[pyfunction]
fn clopper_pearson_interval(k: u64, n: u64, confidence: f64) -> PyResult<(f64, f64)> {
    Ok(intervals::clopper_pearson(k, n, confidence)?)
}

#[pyfunction]
fn proportion_difference_interval(
    ka: u64,
    na: u64,
    kb: u64,
    nb: u64,
    confidence: f64,
) -> PyResult<(f64, f64)> {
    Ok(intervals::proportion_difference(
        ka, na, kb, nb, confidence,
    )?)
}

#[pyfunction]
fn mean_interval(
    n: u64,
    centre: f64,
    s1: f64,
    s2: f64,
    scale: f64,
    confidence: f64,
) -> PyResult<(f64, f64)> {
    Ok(intervals::mean_interval(
        n, centre, s1, s2, scale, confidence,
    )?)
}

#[pyfunction]
fn fanout_probability(n: f64, q: f64) -> PyResult<f64> {
    Ok(tail::fanout_probability(n, q)?)
}

#[pyfunction]
fn fanout_quantile(n: f64, q: f64) -> PyResult<f64> {
    Ok(tail::fanout_quantile(n, q)?)
}

#[pyfunction]
#[pyo3(signature = (latencies, slo, target, confidence=0.95))]
fn slo_attainment<'py>(
    py: Python<'py>,
    latencies: PyReadonlyArray1<'py, f64>,
    slo: f64,
    target: f64,
    confidence: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let v = slice(&latencies, "latencies")?;
    let r = maybe_detach(py, v.len(), || {
        tail::slo_attainment(v, slo, target, confidence)
    })?;
    let d = PyDict::new(py);
    d.set_item("count", r.count)?;
    d.set_item("good", r.good)?;
    d.set_item("attainment", r.attainment)?;
    d.set_item("attainment_ci", r.attainment_ci)?;
    d.set_item("target", r.target)?;
    d.set_item("budget_consumed", r.budget_consumed)?;
    d.set_item("budget_remaining", r.budget_remaining)?;
    d.set_item("met", r.met)?;
    d.set_item("met_confidently", r.met_confidently)?;
    d.set_item("violated_confidently", r.violated_confidently)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(in_flight, m)?)?;
    m.add_function(wrap_pyfunction!(peak_in_flight, m)?)?;
    m.add_function(wrap_pyfunction!(in_flight_peaks, m)?)?;
    m.add_function(wrap_pyfunction!(littles_law, m)?)?;
    m.add_function(wrap_pyfunction!(littles_law_grouped, m)?)?;
    m.add_function(wrap_pyfunction!(gauge_window, m)?)?;
    m.add_function(wrap_pyfunction!(gauge_compare, m)?)?;
    m.add_function(wrap_pyfunction!(garwood, m)?)?;
    m.add_function(wrap_pyfunction!(quantile_ci, m)?)?;
    m.add_function(wrap_pyfunction!(quantile_ranks, m)?)?;
    m.add_function(wrap_pyfunction!(sketch_ci_levels, m)?)?;
    m.add_function(wrap_pyfunction!(widen_for_sketch, m)?)?;
    m.add_function(wrap_pyfunction!(min_sample_size, m)?)?;
    m.add_function(wrap_pyfunction!(wilson_interval, m)?)?;
    m.add_function(wrap_pyfunction!(clopper_pearson_interval, m)?)?;
    m.add_function(wrap_pyfunction!(proportion_difference_interval, m)?)?;
    m.add_function(wrap_pyfunction!(mean_interval, m)?)?;
    m.add_function(wrap_pyfunction!(fanout_probability, m)?)?;
    m.add_function(wrap_pyfunction!(fanout_quantile, m)?)?;
    m.add_function(wrap_pyfunction!(slo_attainment, m)?)?;
    m.add_function(wrap_pyfunction!(report_window_indices, m)?)?;
    Ok(())
}

/// The window index of each start as the report's batch kernel counts it.
#[pyfunction]
fn report_window_indices<'py>(
    py: Python<'py>,
    start: PyReadonlyArray1<'py, f64>,
    t0: f64,
    bin: f64,
    n_windows: usize,
    index_limit: f64,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let s = slice(&start, "start")?;
    let w = crate::arrivals::Windows {
        t0,
        t1: f64::INFINITY,
        bin,
        n_windows,
        n_end: n_windows,
        index_limit,
        edge: None,
    };
    let idx = maybe_detach(py, s.len(), || crate::arrivals::window_indices(s, &w))?;
    Ok(PyArray1::from_vec(py, idx))
}
