//! Arrival processes from timestamps: exact window counts, arrival statistics with a
//! Garwood interval and a burstiness curve, streaming decayed and sliding-window rates,
//! and rate change-point detection.
//!
//! Timestamps are float64 seconds and need not be sorted: every function detects
//! sortedness in its validation pass and sorts a copy only when the computation needs
//! order (inter-arrival times, change points). NaN or infinite timestamps are an error
//! naming the first bad index.

mod changes;
pub(crate) mod counts;
pub(crate) mod fused;
mod rates;
pub(crate) mod stats;

pub use changes::{rate_changes, RateChanges};
pub use counts::{scan, window_counts, Scan, MAX_WINDOWS};
pub use fused::{batch_stats, batch_stats_windows, window_indices, Windows};
pub use rates::{DecayedRate, SlidingRate};
pub use stats::{
    arrival_grid, arrival_stats, burstiness_curve, garwood, window_count_stats, ArrivalStats,
    WindowCountStats,
};
