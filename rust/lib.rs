//! # qcore
//!
//! Queueing and capacity statistics for model serving, as a pure Rust core.
//!
//! - [`sketch`]: the mergeable [`sketch::QuantileSketch`] with a relative-error guarantee.
//! - [`arrivals`]: window counts, arrival statistics, decayed and sliding rates, change points.
//! - [`little`]: Little's law from `(start, end)` pairs; in-flight concurrency.
//! - [`tail`]: order-statistic confidence intervals, fan-out amplification, SLO attainment.
//! - [`queueing`]: analytic models (Erlang B/C, M/M/c, M/M/c/K, M/G/1, G/G/c approximations).
//! - [`sim`]: a discrete-event queue simulator.
//! - [`llm`]: the LLM replica engine (continuous batching, KV blocks, prefix cache) and fleet.
//!
//! The Python bindings live in `rust/python/` behind the `python` feature.

pub mod arrivals;
pub mod error;
pub mod little;
pub mod llm;
pub mod policy;
pub mod queueing;
pub mod sim;
mod simd;
// The pedantic findings inside `sketch` (style only: widening `as` casts, `if !x {} else {}`,
// single-arm matches, a missing `#[must_use]`, ...) are fixed in a change of its own.
#[allow(
    clippy::cast_lossless,
    clippy::doc_markdown,
    clippy::enum_glob_use,
    clippy::if_not_else,
    clippy::items_after_statements,
    clippy::missing_fields_in_debug,
    clippy::redundant_closure_for_method_calls,
    clippy::return_self_not_must_use,
    clippy::semicolon_if_nothing_returned,
    clippy::single_match_else,
    clippy::unnested_or_patterns,
    clippy::unused_self
)]
pub mod sketch;
pub mod special;
pub mod tail;

pub use error::{QcoreError, Result};

#[cfg(feature = "python")]
// PyO3 extracts `#[pyfunction]` arguments by value (arrays, sketches, strings).
#[allow(clippy::needless_pass_by_value)]
mod python;
