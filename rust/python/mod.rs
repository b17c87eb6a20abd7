//! The `PyO3` layer: module `qcore._qcore`. Argument conversion, GIL release and error
//! mapping only; every algorithm lives in the core modules.

use pyo3::prelude::*;

mod accum;
mod arrivals;
mod convert;
mod errors;
mod llm;
mod policy;
mod queueing;
mod report;
mod sim;
mod sketch;
mod stats;

#[pymodule]
#[pyo3(name = "_qcore")]
fn qcore_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    accum::register(m)?;
    sketch::register(m)?;
    arrivals::register(m)?;
    stats::register(m)?;
    report::register(m)?;
    queueing::register(m)?;
    sim::register(m)?;
    policy::register(m)?;
    llm::register(m)?;
    Ok(())
}
