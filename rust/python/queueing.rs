//! Bindings for the analytic queueing models (`rust/queueing/`): argument conversion and
//! error mapping only. The Python layer (`qcore.queueing`) wraps these in documented,
//! frozen result objects.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::convert::{maybe_detach, slice};
use crate::error::QcoreError;
use crate::queueing as q;

/// Mean values as a tuple:
/// `(utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)`.
type MeansTuple = (f64, f64, f64, f64, f64, f64, f64);

fn means(m: q::QueueMeans) -> MeansTuple {
    (
        m.utilization,
        m.p_wait,
        m.mean_wait,
        m.mean_response,
        m.l,
        m.lq,
        m.throughput,
    )
}

#[pyfunction]
fn erlang_b(servers: i64, offered_load: f64) -> PyResult<f64> {
    Ok(q::erlang_b(servers, offered_load)?)
}

#[pyfunction]
fn erlang_c(servers: i64, offered_load: f64) -> PyResult<f64> {
    Ok(q::erlang_c(servers, offered_load)?)
}

#[pyfunction]
fn erlang_b_array<'py>(
    py: Python<'py>,
    servers: PyReadonlyArray1<'py, i64>,
    offered_load: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let s = slice(&servers, "servers")?;
    let a = slice(&offered_load, "offered_load")?;
    let out = maybe_detach(py, s.len(), || q::erlang_b_many(s, a))?;
    Ok(PyArray1::from_vec(py, out))
}

#[pyfunction]
fn erlang_c_array<'py>(
    py: Python<'py>,
    servers: PyReadonlyArray1<'py, i64>,
    offered_load: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let s = slice(&servers, "servers")?;
    let a = slice(&offered_load, "offered_load")?;
    let out = maybe_detach(py, s.len(), || q::erlang_c_many(s, a))?;
    Ok(PyArray1::from_vec(py, out))
}

/// A solved M/M/c queue (see `qcore.queueing.mmc`).
#[pyclass(frozen, module = "qcore._qcore", name = "MMcModel")]
pub struct PyMMc {
    inner: q::MMc,
}

fn array_out<'py>(
    py: Python<'py>,
    x: &PyReadonlyArray1<'py, f64>,
    name: &str,
    f: impl Fn(&[f64]) -> crate::Result<Vec<f64>> + Send + pyo3::marker::Ungil,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let s = slice(x, name)?;
    let out = maybe_detach(py, s.len() * 8, move || f(s))?;
    Ok(PyArray1::from_vec(py, out))
}

#[pymethods]
impl PyMMc {
    #[new]
    fn new(arrival_rate: f64, service_rate: f64, servers: i64) -> PyResult<Self> {
        Ok(PyMMc {
            inner: q::MMc::new(arrival_rate, service_rate, servers)?,
        })
    }

    #[getter]
    fn arrival_rate(&self) -> f64 {
        self.inner.arrival_rate
    }
    #[getter]
    fn service_rate(&self) -> f64 {
        self.inner.service_rate
    }
    #[getter]
    fn servers(&self) -> u64 {
        self.inner.servers
    }
    #[getter]
    fn offered_load(&self) -> f64 {
        self.inner.offered_load
    }
    #[getter]
    fn utilization(&self) -> f64 {
        self.inner.utilization
    }
    #[getter]
    fn p_wait(&self) -> f64 {
        self.inner.p_wait
    }
    #[getter]
    fn mean_wait(&self) -> f64 {
        self.inner.mean_wait
    }
    #[getter]
    fn mean_response(&self) -> f64 {
        self.inner.mean_response
    }
    #[getter(L)]
    fn l(&self) -> f64 {
        self.inner.l
    }
    #[getter(Lq)]
    fn lq(&self) -> f64 {
        self.inner.lq
    }
    #[getter]
    fn throughput(&self) -> f64 {
        self.inner.throughput
    }

    fn response_quantile(&self, q: f64) -> PyResult<f64> {
        Ok(self.inner.response_quantile(q)?)
    }
    fn wait_quantile(&self, q: f64) -> PyResult<f64> {
        Ok(self.inner.wait_quantile(q)?)
    }
    fn response_cdf(&self, t: f64) -> PyResult<f64> {
        Ok(self.inner.response_cdf(t)?)
    }
    fn wait_cdf(&self, t: f64) -> PyResult<f64> {
        Ok(self.inner.wait_cdf(t)?)
    }
    fn response_sf(&self, t: f64) -> PyResult<f64> {
        Ok(self.inner.response_sf(t)?)
    }
    fn wait_sf(&self, t: f64) -> PyResult<f64> {
        Ok(self.inner.wait_sf(t)?)
    }
    fn response_pdf(&self, t: f64) -> PyResult<f64> {
        Ok(self.inner.response_pdf(t)?)
    }

    fn response_quantile_array<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let m = self.inner;
        array_out(py, &q, "q", move |x| m.response_quantiles(x))
    }
    fn wait_quantile_array<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let m = self.inner;
        array_out(py, &q, "q", move |x| m.wait_quantiles(x))
    }
    fn response_cdf_array<'py>(
        &self,
        py: Python<'py>,
        t: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let m = self.inner;
        array_out(py, &t, "t", move |x| m.response_cdfs(x))
    }
    fn wait_cdf_array<'py>(
        &self,
        py: Python<'py>,
        t: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let m = self.inner;
        array_out(py, &t, "t", move |x| m.wait_cdfs(x))
    }
}

/// A solved M/M/c/K queue (see `qcore.queueing.mmck`).
#[pyclass(frozen, module = "qcore._qcore", name = "MMcKModel")]
pub struct PyMMcK {
    inner: q::MMcK,
}

#[pymethods]
impl PyMMcK {
    #[new]
    fn new(arrival_rate: f64, service_rate: f64, servers: i64, capacity: i64) -> PyResult<Self> {
        Ok(PyMMcK {
            inner: q::MMcK::new(arrival_rate, service_rate, servers, capacity)?,
        })
    }

    #[getter]
    fn offered_load(&self) -> f64 {
        self.inner.offered_load
    }
    #[getter]
    fn p_block(&self) -> f64 {
        self.inner.p_block
    }
    #[getter]
    fn p_wait(&self) -> f64 {
        self.inner.p_wait
    }
    #[getter(L)]
    fn l(&self) -> f64 {
        self.inner.l
    }
    #[getter(Lq)]
    fn lq(&self) -> f64 {
        self.inner.lq
    }
    #[getter]
    fn mean_response(&self) -> f64 {
        self.inner.mean_response
    }
    #[getter]
    fn mean_wait(&self) -> f64 {
        self.inner.mean_wait
    }
    #[getter]
    fn throughput(&self) -> f64 {
        self.inner.throughput
    }
    #[getter]
    fn utilization(&self) -> f64 {
        self.inner.utilization
    }

    fn state_probabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let m = self.inner;
        let n = m.capacity as usize;
        let p = maybe_detach(py, n, move || m.state_probabilities())?;
        Ok(PyArray1::from_vec(py, p))
    }
}

#[pyfunction]
fn mg1(arrival_rate: f64, service_mean: f64, service_scv: f64) -> PyResult<MeansTuple> {
    Ok(means(q::mg1(arrival_rate, service_mean, service_scv)?))
}

#[pyfunction]
fn md1(arrival_rate: f64, service_time: f64) -> PyResult<MeansTuple> {
    Ok(means(q::md1(arrival_rate, service_time)?))
}

#[pyfunction]
fn kingman(
    arrival_rate: f64,
    service_mean: f64,
    arrival_scv: f64,
    service_scv: f64,
) -> PyResult<MeansTuple> {
    Ok(means(q::kingman(
        arrival_rate,
        service_mean,
        arrival_scv,
        service_scv,
    )?))
}

#[pyfunction]
fn allen_cunneen(
    arrival_rate: f64,
    service_mean: f64,
    servers: i64,
    arrival_scv: f64,
    service_scv: f64,
) -> PyResult<MeansTuple> {
    Ok(means(q::allen_cunneen(
        arrival_rate,
        service_mean,
        servers,
        arrival_scv,
        service_scv,
    )?))
}

#[pyfunction]
fn min_servers_mmc(
    arrival_rate: f64,
    service_rate: f64,
    slo_quantile: f64,
    slo_seconds: f64,
    target: &str,
) -> PyResult<u64> {
    let target = match target {
        "response" => q::SloTarget::Response,
        "wait" => q::SloTarget::Wait,
        other => {
            return Err(QcoreError::invalid(
                "target",
                format!("must be 'response' or 'wait', got {other:?}"),
            )
            .into())
        }
    };
    Ok(q::min_servers_mmc(
        arrival_rate,
        service_rate,
        slo_quantile,
        slo_seconds,
        target,
    )?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(erlang_b, m)?)?;
    m.add_function(wrap_pyfunction!(erlang_c, m)?)?;
    m.add_function(wrap_pyfunction!(erlang_b_array, m)?)?;
    m.add_function(wrap_pyfunction!(erlang_c_array, m)?)?;
    m.add_function(wrap_pyfunction!(mg1, m)?)?;
    m.add_function(wrap_pyfunction!(md1, m)?)?;
    m.add_function(wrap_pyfunction!(kingman, m)?)?;
    m.add_function(wrap_pyfunction!(allen_cunneen, m)?)?;
    m.add_function(wrap_pyfunction!(min_servers_mmc, m)?)?;
    m.add_class::<PyMMc>()?;
    m.add_class::<PyMMcK>()?;
    Ok(())
}
