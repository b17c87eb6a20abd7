//! # qcore
//!
//! Queueing and capacity statistics for model serving, as a pure Rust core.
//!
//! - [`accum`]: the mergeable accumulators (exact sum, arrivals, Little's law) every path uses.
//! - [`threads`]: the one thread budget (`QCORE_MAX_THREADS`).
//! - [`sketch`]: the mergeable [`sketch::QuantileSketch`] with a relative-error guarantee.
//! - [`arrivals`]: window counts, arrival statistics, decayed and sliding rates, change points.
//! - [`little`]: Little's law from `(start, end)` pairs; in-flight concurrency.
//! - [`tail`]: order-statistic confidence intervals, fan-out amplification, SLO attainment.
//! - [`intervals`]: intervals of proportions and means from counts and exact sums.
//! - [`queueing`]: analytic models (Erlang B/C, M/M/c, M/M/c/K, M/G/1, G/G/c approximations).
//! - [`sim`]: a discrete-event queue simulator.
//! - [`llm`]: the LLM replica engine (continuous batching, KV blocks, prefix cache) and fleet.
//!
//! The Python bindings live in `rust/python/` behind the `python` feature.

pub mod accum;
pub mod arrivals;
pub mod error;
pub mod intervals;
pub mod little;
pub mod llm;
pub mod policy;
pub mod queueing;
pub mod sim;
mod simd;
pub mod sketch;
pub mod special;
pub mod tail;
pub mod threads;

pub use error::{QcoreError, Result};

#[cfg(feature = "python")]
// PyO3 extracts `#[pyfunction]` arguments by value (arrays, sketches, strings).
#[allow(clippy::needless_pass_by_value)]
mod python;
