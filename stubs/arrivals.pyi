# Stubs for the arrival-rate, Little's-law and tail-latency functions of qcore._qcore
# (bindings in rust/python/arrivals.rs and rust/python/stats.rs). The public wrappers live
# in qcore.arrivals, qcore.little and qcore.tail.
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]

# ---- arrivals (rust/python/arrivals.rs)

def window_counts(
    timestamps: _F64, window: float, start: Optional[float] = None, end: Optional[float] = None
) -> _I64:
    """Exact counts per window [start + k·window, start + (k+1)·window)."""

def arrival_stats(
    timestamps: _F64, window: float = 1.0, confidence: float = 0.95, min_windows: int = 8
) -> dict[str, Any]:
    """Keys: count, duration, rate, rate_ci, confidence, window, windows, peak_rate,
    peak_to_mean, cv_interarrival, index_of_dispersion, burstiness_windows, burstiness."""

def burstiness_curve(timestamps: _F64, windows: _F64) -> _F64:
    """Index of dispersion of window counts at each window size."""

def rate_changes(
    timestamps: _F64, bins: Optional[int] = None, penalty: Optional[float] = None, min_bins: int = 1
) -> dict[str, Any]:
    """Keys: times, boundaries, rates, counts (arrays), resolution, penalty."""

class _DecayedRate:
    """Exponentially time-decayed event rate (wrapped by qcore.DecayedRate)."""

    def __init__(self, half_life: float) -> None: ...
    @staticmethod
    def from_state(half_life: float, t_ref: float, t_first: float, s: float, count: int) -> "_DecayedRate": ...
    def state(self) -> tuple[float, float, float, float, int]: ...
    def update(self, timestamps: _F64) -> None: ...
    def merge(self, other: "_DecayedRate") -> None: ...
    def copy(self) -> "_DecayedRate": ...
    def rate(self, at: Optional[float] = None, debias: bool = False) -> Optional[float]: ...
    @property
    def half_life(self) -> float: ...
    @property
    def count(self) -> int: ...
    @property
    def last_time(self) -> Optional[float]: ...
    @property
    def first_time(self) -> Optional[float]: ...

class _SlidingRate:
    """Exact event rate over a sliding horizon (wrapped by qcore.SlidingRate)."""

    def __init__(self, horizon: float) -> None: ...
    @staticmethod
    def from_state(horizon: float, window: _F64, count: int, dropped_late: int) -> "_SlidingRate": ...
    def state(self) -> tuple[float, _F64, int, int]: ...
    def update(self, timestamps: _F64) -> None: ...
    def merge(self, other: "_SlidingRate") -> None: ...
    def copy(self) -> "_SlidingRate": ...
    def rate(self, at: Optional[float] = None) -> Optional[float]: ...
    @property
    def horizon(self) -> float: ...
    @property
    def count(self) -> int: ...
    @property
    def dropped_late(self) -> int: ...
    @property
    def last_time(self) -> Optional[float]: ...

# ---- Little's law and tail statistics (rust/python/stats.rs)

def in_flight(start: _F64, end: _F64, at: _F64) -> _I64:
    """Requests in the system (start ≤ t < end) at each time; NaN end = still running."""

def peak_in_flight(start: _F64, end: _F64) -> tuple[int, Optional[float]]:
    """Peak concurrency and the first time it is reached."""

def littles_law(
    start: _F64,
    end: _F64,
    t0: Optional[float] = None,
    t1: Optional[float] = None,
    in_flight_times: Optional[_F64] = None,
    in_flight_counts: Optional[_F64] = None,
    tolerance: float = 0.02,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Keys: t0, t1, L, arrival_rate, mean_response, lambda_w, gap, edge_term, edge_bound,
    in_flight_t0, in_flight_t1, rows, arrivals, running, negative_durations, tolerance,
    flags (list[str]), holds, gauge (dict or None)."""

def littles_law_grouped(
    codes: _I64,
    start: _F64,
    end: _F64,
    n_groups: int,
    t0: Optional[float] = None,
    t1: Optional[float] = None,
    tolerance: float = 0.02,
) -> list[dict[str, Any]]:
    """One littles_law dict per group code 0..n_groups, or {"error": message}."""

def quantile_ci(
    values: _F64, q: float, confidence: float = 0.95
) -> tuple[Optional[float], float, Optional[float], dict[str, Any]]:
    """(lo, estimate, hi, ranks) with ranks = {n, lower, upper, coverage}."""

def quantile_ranks(n: int, q: float, confidence: float = 0.95) -> dict[str, Any]:
    """{n, lower, upper, coverage}: 1-based order-statistic ranks of the interval."""

def sketch_ci_levels(
    count: float, q: float, confidence: float = 0.95
) -> tuple[Optional[float], Optional[float], dict[str, Any]]:
    """Quantile levels at which to read a sketch for the interval's bounds, and the ranks."""

def min_sample_size(q: float, confidence: float = 0.95, two_sided: bool = True) -> int:
    """Smallest sample with a distribution-free interval for the q-quantile."""

def fanout_probability(n: float, q: float) -> float:
    """1 − qⁿ."""

def fanout_quantile(n: float, q: float) -> float:
    """q^(1/n)."""

def slo_attainment(
    latencies: _F64, slo: float, target: float, confidence: float = 0.95
) -> dict[str, Any]:
    """Keys: count, good, attainment, attainment_ci, target, budget_consumed,
    budget_remaining, met, met_confidently, violated_confidently."""
