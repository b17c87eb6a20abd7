"""Type stubs for the native extension ``qcore._qcore``.

Users import the public API from ``qcore``; these names are private building
blocks wrapped by the Python layer."""

from collections.abc import Iterable
from typing import Any, TypeVar, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

from qcore.sim import ArrivalProcess, Distribution

__version__: str

class QcoreValueError(ValueError): ...
class InvalidArgumentError(QcoreValueError): ...
class InvalidTypeError(InvalidArgumentError, TypeError): ...
class IncompatibleSketchError(QcoreValueError): ...
class DeserializationError(QcoreValueError): ...
class UnstableSystemError(QcoreValueError): ...

# ---- arrivals --------------------------------------------------------------

# Stubs for the arrival-rate, Little's-law and tail-latency functions of qcore._qcore
# (bindings in rust/python/arrivals.rs and rust/python/stats.rs). The public wrappers live
# in qcore.arrivals, qcore.little and qcore.tail.


_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]

# ---- arrivals (rust/python/arrivals.rs)

def window_counts(
    timestamps: _F64, window: float, start: float | None = None, end: float | None = None
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
    timestamps: _F64, bins: int | None = None, penalty: float | None = None, min_bins: int = 1
) -> dict[str, Any]:
    """Keys: times, boundaries, rates, counts (arrays), resolution, penalty."""

@final
class _DecayedRate:
    """Exponentially time-decayed event rate (wrapped by qcore.DecayedRate)."""

    def __new__(cls, half_life: float) -> _DecayedRate: ...
    @staticmethod
    def from_state(half_life: float, t_ref: float, t_first: float, s: float, count: int) -> _DecayedRate: ...
    def state(self) -> tuple[float, float, float, float, int]: ...
    def update(self, timestamps: _F64) -> None: ...
    def merge(self, other: _DecayedRate) -> None: ...
    def copy(self) -> _DecayedRate: ...
    def rate(self, at: float | None = None, debias: bool = False) -> float | None: ...
    @property
    def half_life(self) -> float: ...
    @property
    def count(self) -> int: ...
    @property
    def last_time(self) -> float | None: ...
    @property
    def first_time(self) -> float | None: ...

@final
class _SlidingRate:
    """Exact event rate over a sliding horizon (wrapped by qcore.SlidingRate)."""

    def __new__(cls, horizon: float) -> _SlidingRate: ...
    @staticmethod
    def from_state(horizon: float, window: _F64, count: int, dropped_late: int) -> _SlidingRate: ...
    def state(self) -> tuple[float, _F64, int, int]: ...
    def update(self, timestamps: _F64) -> None: ...
    def merge(self, other: _SlidingRate) -> None: ...
    def copy(self) -> _SlidingRate: ...
    def rate(self, at: float | None = None) -> float | None: ...
    @property
    def horizon(self) -> float: ...
    @property
    def count(self) -> int: ...
    @property
    def dropped_late(self) -> int: ...
    @property
    def last_time(self) -> float | None: ...

# ---- Little's law and tail statistics (rust/python/stats.rs)

def in_flight(start: _F64, end: _F64, at: _F64) -> _I64:
    """Requests in the system (start ≤ t < end) at each time; NaN end = still running."""

def peak_in_flight(start: _F64, end: _F64) -> tuple[int, float | None]:
    """Peak concurrency and the first time it is reached."""

def in_flight_peaks(start: _F64, end: _F64, t0: float, width: float, n: int) -> _I64:
    """Peak concurrency in each of ``n`` windows of ``width`` from ``t0`` (exact)."""

def littles_law(
    start: _F64,
    end: _F64,
    t0: float | None = None,
    t1: float | None = None,
    in_flight_times: _F64 | None = None,
    in_flight_counts: _F64 | None = None,
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
    t0: float | None = None,
    t1: float | None = None,
    tolerance: float = 0.02,
) -> list[dict[str, Any]]:
    """One littles_law dict per group code 0..n_groups, or {"error": message}."""

def gauge_window(
    in_flight_times: _F64,
    in_flight_counts: _F64,
    t0: float | None = None,
    t1: float | None = None,
) -> _I64:
    """Indices (in the given order) of the gauge samples with t0 ≤ time ≤ t1 (None: open
    side), after littles_law's checks of the gauge arrays; fewer than two is an error."""

def gauge_compare(
    in_flight_times: _F64,
    in_flight_counts: _F64,
    logs_counts: _I64,
    lambda_w: float,
    tolerance: float = 0.02,
    confidence: float = 0.95,
) -> tuple[dict[str, Any], list[str]]:
    """littles_law's gauge comparison from the logs' in-flight counts at the gauge times:
    (gauge dict with the keys of littles_law's "gauge", gauge flags)."""

def garwood(k: int, exposure: float, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) Poisson interval of a rate: k events over exposure seconds."""

def quantile_ci(
    values: _F64, q: float, confidence: float = 0.95
) -> tuple[float | None, float, float | None, dict[str, Any]]:
    """(lo, estimate, hi, ranks) with ranks = {n, lower, upper, coverage}."""

def quantile_ranks(n: int, q: float, confidence: float = 0.95) -> dict[str, Any]:
    """{n, lower, upper, coverage}: 1-based order-statistic ranks of the interval."""

def sketch_ci_levels(
    count: float, q: float, confidence: float = 0.95
) -> tuple[float | None, float | None, dict[str, Any]]:
    """Quantile levels at which to read a sketch for the interval's bounds, and the ranks."""

def widen_for_sketch(
    lo: float | None, hi: float | None, relative_accuracy: float, estimate: float | None
) -> tuple[float | None, float | None]:
    """Exact order statistics' interval widened by a sketch's accuracy, holding ``estimate``."""

def min_sample_size(q: float, confidence: float = 0.95, two_sided: bool = True) -> int:
    """Smallest sample with a distribution-free interval for the q-quantile."""

def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (``(0, 1)`` when ``n`` is 0)."""

def clopper_pearson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Clopper–Pearson (exact binomial) interval of ``k`` successes in ``n > 0`` trials."""

def proportion_difference_interval(ka: int, na: int, kb: int, nb: int, confidence: float) -> tuple[float, float]:
    """Agresti–Caffo interval of ``ka/na − kb/nb`` (both ``na`` and ``nb`` positive)."""

def mean_interval(n: int, centre: float, s1: float, s2: float, scale: float, confidence: float) -> tuple[float, float]:
    """Normal interval ``centre ± z·√(var/n)/scale`` of a mean from the sums of the
    residuals about ``centre`` (``s1 = Σr``, ``s2 = Σr²``; ``var`` the corrected two-pass
    variance); ``n ≥ 2``."""

def fanout_probability(n: float, q: float) -> float:
    """1 − qⁿ."""

def fanout_quantile(n: float, q: float) -> float:
    """q^(1/n)."""

def slo_attainment(
    latencies: _F64, slo: float, target: float, confidence: float = 0.95
) -> dict[str, Any]:
    """Keys: count, good, attainment, attainment_ci, target, budget_consumed,
    budget_remaining, met, met_confidently, violated_confidently."""

# ---- policy ----------------------------------------------------------------

# Native functions of qcore._qcore for the autoscaling and overload-control policies
# (rust/python/policy.rs). The documented public API is qcore.autoscale and qcore.overload.



# The qcore.sim objects themselves: the core reads their `_kind` and fields by name.
_DistSpec = Distribution
_ArrivalSpec = ArrivalProcess
# (kind, numeric parameters, string parameters).
_PolicySpec = tuple[str, dict[str, float], dict[str, str]]

def _policy_replay(
    arrivals: _ArrivalSpec,
    service: _DistSpec,
    initial_replicas: int,
    customers: int,
    seed: int,
    startup_delay: _DistSpec | None,
    patience: _DistSpec | None,
    queue_capacity: int | None,
    discipline: str,
    policy: _PolicySpec,
    admission: _PolicySpec | None,
    classes: npt.NDArray[np.uint8] | None,
    sample_interval: float,
    window: float,
    slo: float,
    quantile: float,
    replication: int,
) -> dict[str, Any]:
    """Replay through an autoscaling policy (kind 'hpa', 'kpa', 'target_tracking',
    'predictive' or 'fixed'); a dict with 'timeline' (dict of numpy columns), 'totals'
    (dict) and 'events' (dict of numpy columns t/from/to)."""

def _policy_overload(
    arrivals: _ArrivalSpec,
    service: _DistSpec,
    servers: int,
    customers: int,
    seed: int,
    patience: _DistSpec | None,
    queue_capacity: int | None,
    discipline: str,
    admission: _PolicySpec | None,
    classes: npt.NDArray[np.uint8] | None,
    slo: float,
    timeout: float,
    replication: int,
) -> dict[str, Any]:
    """One overload-control run; a dict with 'all' (metrics dict), 'high'/'low' (with
    classes), 'client_throttled' (int) and 'final_limit' (float or None)."""

def _policy_provision(
    rate: float,
    service_mean: float,
    slo: float,
    quantile: float,
    on_wait: bool,
    min_replicas: int,
    max_replicas: int,
) -> int:
    """Smallest M/M/c replica count whose response (or wait) quantile meets the SLO."""

# ---- queueing --------------------------------------------------------------

# Native functions and classes of qcore._qcore for the analytic queueing models
# (rust/python/queueing.rs). The documented public API is qcore.queueing.


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B loss probability (servers in 1..=10**12, load finite >= 0)."""

def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C waiting probability; UnstableSystemError when offered_load >= servers."""

def erlang_b_array(
    servers: npt.NDArray[np.int64], offered_load: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Element-wise Erlang B over two contiguous 1-D arrays of the same length."""

def erlang_c_array(
    servers: npt.NDArray[np.int64], offered_load: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Element-wise Erlang C over two contiguous 1-D arrays of the same length."""

def mg1(
    arrival_rate: float, service_mean: float, service_scv: float
) -> tuple[float, float, float, float, float, float, float]:
    """Pollaczek–Khinchine M/G/1: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def md1(
    arrival_rate: float, service_time: float
) -> tuple[float, float, float, float, float, float, float]:
    """M/D/1: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def kingman(
    arrival_rate: float, service_mean: float, arrival_scv: float, service_scv: float
) -> tuple[float, float, float, float, float, float, float]:
    """Kingman G/G/1 approximation: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def allen_cunneen(
    arrival_rate: float,
    service_mean: float,
    servers: int,
    arrival_scv: float,
    service_scv: float,
) -> tuple[float, float, float, float, float, float, float]:
    """Allen–Cunneen G/G/c approximation: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def min_servers_mmc(
    arrival_rate: float,
    service_rate: float,
    slo_quantile: float,
    slo_seconds: float,
    target: str,
) -> int:
    """Smallest M/M/c server count meeting a response ('response') or wait ('wait') quantile SLO."""

@final
class MMcModel:
    """A solved M/M/c queue (wrapped by qcore.queueing.MMcResult)."""

    def __new__(cls, arrival_rate: float, service_rate: float, servers: int) -> MMcModel: ...
    @property
    def arrival_rate(self) -> float: ...
    @property
    def service_rate(self) -> float: ...
    @property
    def servers(self) -> int: ...
    @property
    def offered_load(self) -> float: ...
    @property
    def utilization(self) -> float: ...
    @property
    def p_wait(self) -> float: ...
    @property
    def mean_wait(self) -> float: ...
    @property
    def mean_response(self) -> float: ...
    @property
    def L(self) -> float: ...
    @property
    def Lq(self) -> float: ...
    @property
    def throughput(self) -> float: ...
    def response_quantile(self, q: float) -> float: ...
    def wait_quantile(self, q: float) -> float: ...
    def response_cdf(self, t: float) -> float: ...
    def wait_cdf(self, t: float) -> float: ...
    def response_sf(self, t: float) -> float: ...
    def wait_sf(self, t: float) -> float: ...
    def response_pdf(self, t: float) -> float: ...
    def response_quantile_array(self, q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def wait_quantile_array(self, q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def response_cdf_array(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def wait_cdf_array(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

@final
class MMcKModel:
    """A solved M/M/c/K queue (wrapped by qcore.queueing.MMcKResult)."""

    def __new__(
        cls, arrival_rate: float, service_rate: float, servers: int, capacity: int
    ) -> MMcKModel: ...
    @property
    def offered_load(self) -> float: ...
    @property
    def p_block(self) -> float: ...
    @property
    def p_wait(self) -> float: ...
    @property
    def L(self) -> float: ...
    @property
    def Lq(self) -> float: ...
    @property
    def mean_response(self) -> float: ...
    @property
    def mean_wait(self) -> float: ...
    @property
    def throughput(self) -> float: ...
    @property
    def utilization(self) -> float: ...
    def state_probabilities(self) -> npt.NDArray[np.float64]: ...

# ---- sim -------------------------------------------------------------------

# Native functions of the simulator (qcore.sim, qcore.simulate, qcore.capacity).


# _DistSpec and _ArrivalSpec are declared above, with the policy functions.

def _sim_check_dist(spec: _DistSpec, name: str) -> tuple[float, float]:
    """Validate a distribution spec; returns ``(mean, squared cv)``."""

def _sim_check_arrivals(spec: _ArrivalSpec) -> float | None:
    """Validate an arrival spec; returns the long-run rate (or None)."""

def _sim_mean_ci(values: npt.NDArray[np.float64], confidence: float) -> tuple[float, float, float]:
    """``(lo, mean, hi)`` Student-t confidence interval of the mean of ``values``."""

def _sim_run(
    arrivals: _ArrivalSpec,
    service: _DistSpec | None,
    servers: int,
    customers: int,
    warmup: int,
    seed: int,
    discipline: str,
    queue_capacity: int | None,
    patience: _DistSpec | None,
    batching: dict[str, Any] | None,  # max_size, max_wait, fixed, per_item, table
    schedule: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]] | None,
    startup_delay: _DistSpec | None,
    records: bool,
    relative_accuracy: float,
    replications: int,
    method: str,
    threads: int,
) -> list[dict[str, Any]]:
    """Run ``replications`` independent replications; one dict of statistics (sketches
    as bytes, optional records as numpy arrays) per replication."""

# ---- sketch ----------------------------------------------------------------

_S = TypeVar("_S", bound="_QuantileSketch")

@disjoint_base
class _QuantileSketch:
    """Native state of a mergeable quantile sketch with a relative-error guarantee.

    Subclassed by ``qcore.QuantileSketch``, which converts inputs; see its docstring.
    """

    def __new__(cls: type[_S], relative_accuracy: float = 0.01, bucket_limit: int | None = None) -> _S: ...
    def _add_array(self, values: npt.NDArray[np.float64]) -> None:
        """Add a contiguous float64 array (validated first; nothing is added on error)."""
    def _add_weighted(self, values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> None:
        """Add values with non-negative weights (both contiguous float64, same length)."""
    def _add_float(self, v: float) -> None: ...
    def _quantile(self, q: float) -> float | None: ...
    def _quantiles(self, qs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None: ...
    def _quantile_bounds(
        self, qs: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
        """(lo, hi) arrays bracketing the exact lower quantiles, or None when empty."""
    def _cdf(self, x: float) -> float | None: ...
    def _cdfs(self, xs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None: ...
    @property
    def count(self) -> float:
        """Total weight (the number of values when unweighted), exact."""
    @property
    def sum(self) -> float:
        """Exact weighted sum, rounded once."""
    @property
    def min(self) -> float | None:
        """Exact minimum, or None when empty."""
    @property
    def max(self) -> float | None:
        """Exact maximum, or None when empty."""
    @property
    def mean(self) -> float | None:
        """Exact weighted mean (rounded), or None when empty."""
    @property
    def relative_accuracy(self) -> float:
        """The requested relative accuracy (merges require it to match)."""
    @property
    def effective_relative_accuracy(self) -> float:
        """The relative error guaranteed by the mapping, (b-1)/(b+1) <= relative_accuracy."""
    @property
    def scale(self) -> int:
        """The base-2 exponential scale (OpenTelemetry scale, Prometheus schema)."""
    @property
    def bucket_limit(self) -> int:
        """Maximum number of buckets per sign."""
    @property
    def collapsed(self) -> bool:
        """Whether the lowest buckets collapsed (the data spanned more than bucket_limit)."""
    @property
    def min_accurate_quantile(self) -> float:
        """Every quantile(q) with q >= this value keeps the guarantee (0.0 unless collapsed)."""
    @property
    def zero_count(self) -> float:
        """Weight of exact zeros."""
    @property
    def num_buckets(self) -> int:
        """Number of non-empty buckets (both signs; zeros excluded)."""
    def is_empty(self) -> bool: ...
    def __bool__(self) -> bool: ...
    def merge(self, other: _QuantileSketch) -> None:
        """Merge ``other`` into this sketch in place (IncompatibleSketchError if the
        relative_accuracy or bucket_limit differ)."""
    @classmethod
    def merge_all(cls: type[_S], sketches: Iterable[_QuantileSketch]) -> _S:
        """A new sketch merging all ``sketches`` (at least one)."""
    def to_bytes(self) -> bytes:
        """Versioned binary encoding (magic ``QCSK``, format version 1)."""
    @classmethod
    def from_bytes(cls: type[_S], data: bytes) -> _S:
        """Decode ``to_bytes`` output; DeserializationError (a ValueError) otherwise."""
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...
    def copy(self: _S) -> _S: ...
    def __copy__(self: _S) -> _S: ...
    def __deepcopy__(self: _S, memo: Any) -> _S: ...
    def __eq__(self, other: object, /) -> bool: ...
    def _to_otel(self) -> dict[str, Any]: ...
    @classmethod
    def _from_otel(
        cls: type[_S],
        scale: int,
        zero_count: int,
        zero_threshold: float,
        pos_offset: int,
        pos_counts: list[int],
        neg_offset: int,
        neg_counts: list[int],
        count: int,
        sum: float | None,
        min: float | None,
        max: float | None,
        relative_accuracy: float | None,
        bucket_limit: int | None,
    ) -> _S: ...
    def _to_prometheus(self) -> dict[str, Any]: ...
    @classmethod
    def _from_prometheus(
        cls: type[_S],
        schema: int,
        zero_threshold: float,
        zero_count: int,
        count: int,
        sum: float,
        positive_spans: list[tuple[int, int]],
        positive_deltas: list[int],
        negative_spans: list[tuple[int, int]],
        negative_deltas: list[int],
        relative_accuracy: float | None,
        bucket_limit: int | None,
    ) -> _S: ...

def _sketch_groups(
    cls: type[_S],
    codes: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64] | None,
    relative_accuracy: float,
    bucket_limit: int | None,
) -> list[_S]:
    """One sketch per group code (instances of ``cls``), built in one pass."""

def _group_quantiles(
    codes: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64] | None,
    qs: npt.NDArray[np.float64],
    relative_accuracy: float,
    bucket_limit: int | None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-group total weight and a ``groups x len(qs)`` quantile table (NaN for empty
    groups), in one pass."""

# ---- report (rust/python/stats.rs)

def report_window_indices(
    start: npt.NDArray[np.float64], t0: float, bin: float, n_windows: int, index_limit: float
) -> npt.NDArray[np.int64]:
    """The window index of each start as :meth:`ReportAccumulator.update` counts it."""

@final
class ReportAccumulator:
    """The grouped report's mergeable per-group state on one window grid: outcome counts,
    first and last start, starts (and failed starts) per window, and for the completed rows
    the start and end counts per window and the exact Little's-law sums over ``[t0, t1)``.
    Every path of ``qcore report`` folds with :meth:`update`, merges with :meth:`merge` and
    finishes with :meth:`finish_group`; any cut of the rows gives the same bytes.

    >>> import numpy as np
    >>> from qcore import ReportAccumulator
    >>> acc = ReportAccumulator(0.0, 10.0, 1.0, 10, 10, 2.0**31)
    >>> acc.update(np.array([0, 1, 0]), np.array([0.5, 2.5, 9.5]), np.array([0, 1, 0], np.int8),
    ...            None, None, 2)
    >>> acc.group(0)["outcomes"], acc.n_groups
    ((2, 0, 0), 2)
    """
    def __new__(
        cls, t0: float, t1: float, bin: float, n_windows: int, n_end: int, index_limit: float,
        edge: float | None = None,
    ) -> ReportAccumulator: ...
    def update(
        self,
        codes: npt.NDArray[np.int64],
        start: npt.NDArray[np.float64],
        cls: npt.NDArray[np.int8],
        end: npt.NDArray[np.float64] | None,
        latency: npt.NDArray[np.float64] | None,
        n_groups: int,
        sketches: list[Any] | None = None,
        relative_accuracy: float = 0.01,
        sketch_windows: int | None = None,
    ) -> None:
        """Fold one batch (group codes in ``0..n_groups``; ``cls`` 0 ok, 1 error, 2
        incomplete); the ok latencies of group g are merged into ``sketches[g]`` when given
        (with ``sketch_windows = k``: into ``sketches[g * p + w // k]``,
        ``p = ceil(n_windows / k)``, by the plot window of the start). Nothing changes on
        an error."""
    def merge(self, other: ReportAccumulator, codes: npt.NDArray[np.int64] | None = None) -> None:
        """Fold ``other`` in, its group ``j`` into group ``codes[j]`` (or ``j``)."""
    def grow(self, n_groups: int) -> None: ...
    def total(self) -> ReportAccumulator:
        """Every group merged into one."""
    def start_range(self) -> tuple[float, float]: ...
    def settle(self, t1: float, n_end: int, drop_edge: bool) -> bool:
        """Fit the end windows to the log's real last end (``False``, changing nothing,
        when a row was counted past ``n_end``)."""
    @property
    def n_groups(self) -> int: ...
    @property
    def grid(self) -> tuple[float, float, float, int, int, float, float | None]: ...
    def group(self, k: int) -> dict[str, Any]:
        """Group ``k``'s tables (``outcomes``, ``windows``, ``errors``, ``smin``, ``smax``,
        ``done_starts``, ``ends``, ``clipped``, ``resp``, ``arrivals``, ``at_edge``,
        ``latency``)."""
    def finish_group(self, k: int, s1: float, confidence: float = 0.95, tolerance: float = 0.02) -> dict[str, Any]:
        """Group ``k``'s rate over the log's span ``[t0, s1]`` with its Garwood interval,
        the window statistics of that span's complete windows, Little's law over
        ``[t0, t1)``, and the in-flight counts at the window edges with the bounds of each
        window's peak."""
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> ReportAccumulator: ...
    def copy(self) -> ReportAccumulator: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

# --------------------------------------------------------------------------- llm

_LlmReplicaSpec = tuple[int, int, int, int, bool, int, bool, float, str, int,
                        tuple[str | None, str | None, str | None]]
_LlmStepSpec = tuple[
    str,
    list[float],
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
    int,
    _VidurTables | None,
]

@final
class _VidurTables:
    """Vidur's step-time tables, converted once and shared by runs."""

    def __new__(
        cls,
        ops: list[npt.NDArray[np.float64]],
        kv_save: npt.NDArray[np.float64],
        decode: npt.NDArray[np.float64],
        prefill: npt.NDArray[np.float64],
        num_layers: int,
        post_attn_norm: bool,
        dec_overhead: float,
        pre_overhead: float,
        kv_gran: int,
    ) -> _VidurTables: ...

_LlmModel = tuple[float, int, int, int, float]
_LlmGpu = tuple[float, float, float]
_LlmAdmissionSpec = tuple[float | None, float | None, int | None, float | None, float | None]

def _llm_simulate(
    arrival: npt.NDArray[np.float64],
    prompt_tokens: npt.NDArray[np.int64],
    output_tokens: npt.NDArray[np.int64],
    hash_offsets: npt.NDArray[np.int64] | None,
    hash_ids: npt.NDArray[np.int64] | None,
    hash_block_tokens: int,
    replica_spec: _LlmReplicaSpec,
    step_spec: _LlmStepSpec,
    fleet_spec: tuple[int, str, float, float, int] | None,
    relative_accuracy: float,
    trace: bool,
    timeline_interval: float | None,
    progress: Any = None,
    disagg_spec: tuple[_LlmReplicaSpec, _LlmStepSpec,
                       int, int, tuple[float, float, float] | None] | None = None,
    admission_spec: _LlmAdmissionSpec | None = None,
    autoscale_spec: tuple[tuple[str, dict[str, float], dict[str, str]], list[tuple[str, float]],
                          bool, int, int, Any, float, float, int] | None = None,
) -> dict[str, Any]:
    """Run the LLM engine (or a fleet when ``fleet_spec`` is given) on a workload;
    ``admission_spec`` (a fleet only) puts admission control in front of the fleet;
    ``autoscale_spec`` ``((kind, numbers, strings), [(metric, target)], composite,
    min_replicas, max_replicas, cold_start, sample_interval, ttft_window, seed)`` (a
    fleet only) scales it; the result's ``scaling`` is then a dict (``timeline``,
    ``lives``, replica-seconds, ``scale_events``, ``peak_replicas``, ``t_stop``), else
    None."""

def _llm_admission_check(spec: _LlmAdmissionSpec) -> None:
    """Validate ``(token_rate, token_burst, max_waiting, max_wait, max_predicted_ttft)``
    with the core's checks (raises :class:`InvalidArgumentError` naming the field)."""

def _llm_presets() -> tuple[dict[str, _LlmModel], dict[str, _LlmGpu]]:
    """The model and GPU presets of the core."""

def _llm_num_blocks(
    model: _LlmModel,
    gpu: _LlmGpu,
    tensor_parallel: int,
    block_size: int,
    gpu_memory_utilization: float,
    activation_reserve: float,
) -> int:
    """KV blocks of one GPU."""

def _llm_kv_bytes_per_token(model: _LlmModel, tensor_parallel: int) -> float:
    """KV bytes per token on one GPU of the group."""

def _llm_roofline(
    model: _LlmModel, gpu: _LlmGpu, tensor_parallel: int, mfu: float, overhead: float
) -> list[float]:
    """Roofline coefficients of a model on a GPU group."""

def _llm_step_duration(
    step_spec: _LlmStepSpec, batch: tuple[int, float, int, int, int, int]
) -> float:
    """Duration of one step of the given batch summary."""

def _llm_defaults() -> dict[str, Any]:
    """The replica defaults of the core."""

def _llm_ceilings(
    prompt_tokens: npt.NDArray[np.int64],
    output_tokens: npt.NDArray[np.int64],
    replica_spec: _LlmReplicaSpec,
    step_spec: _LlmStepSpec,
) -> dict[str, Any]:
    """The analytic ceilings of a replica (token_budget, kv, max_num_seqs, steps, binding, rate)."""

def _llm_policies(
    scheduler: str,
    decode_tokens: int,
    batch_formation: str | None = None,
    memory_admission: str | None = None,
    preemption: str | None = None,
) -> tuple[str, str, str]:
    """The batch-formation, memory-admission and preemption policies of the ``scheduler``
    preset, overridden by those given; raises ``InvalidArgumentError`` naming the argument
    for an unknown name or an invalid combination."""

def _llm_default_batched_tokens(gpu_memory_bytes: float) -> int:
    """vLLM's default token budget for a GPU with this much memory."""

def _llm_synthetic(
    arrivals: Any, prompt: Any, output: Any, n: int, seed: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A synthetic workload ``(arrival, prompt_tokens, output_tokens)``."""

# Mergeable accumulators (qcore.pipeline) and the thread budget.

@final
class ExactSum:
    """Exact, order-independent sum of doubles, rounded once when read."""
    def __init__(self) -> None: ...
    def update(self, values: npt.NDArray[np.float64]) -> None: ...
    def add(self, values: npt.NDArray[np.float64]) -> None: ...
    def merge(self, other: ExactSum) -> None: ...
    def finish(self) -> float: ...
    @property
    def value(self) -> float: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> ExactSum: ...
    def copy(self) -> ExactSum: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class ArrivalAccumulator:
    """The mergeable state of ``arrival_stats``: pass 1 (count, span), then ``advance(window)``
    and pass 2 (complete-window counts, exact gap moments), then ``finish``."""
    def __init__(self) -> None: ...
    @staticmethod
    def of(timestamps: npt.NDArray[np.float64], window: float) -> ArrivalAccumulator: ...
    def update(self, timestamps: npt.NDArray[np.float64]) -> None: ...
    def merge(self, other: ArrivalAccumulator) -> None: ...
    def advance(self, window: float) -> None: ...
    def finish(self, confidence: float = 0.95, min_windows: int = 8) -> dict[str, Any]: ...
    @property
    def stage(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    @property
    def window(self) -> float | None: ...
    @property
    def in_time_order(self) -> bool: ...
    def counts(self) -> npt.NDArray[np.int64]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> ArrivalAccumulator: ...
    def copy(self) -> ArrivalAccumulator: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class LittleAccumulator:
    """The mergeable state of ``littles_law``: pass 1 (span, row classes), then ``advance``
    and pass 2 (exact window sums, in-flight counts at the gauge times), then ``finish``."""
    def __init__(self) -> None: ...
    @staticmethod
    def window_pass(
        t0: float,
        t1: float,
        log_end: float,
        in_flight_times: npt.NDArray[np.float64] | None = None,
        in_flight_counts: npt.NDArray[np.float64] | None = None,
    ) -> LittleAccumulator: ...
    def update(self, start: npt.NDArray[np.float64], end: npt.NDArray[np.float64]) -> None: ...
    def merge(self, other: LittleAccumulator) -> None: ...
    def advance(
        self,
        t0: float | None = None,
        t1: float | None = None,
        in_flight_times: npt.NDArray[np.float64] | None = None,
        in_flight_counts: npt.NDArray[np.float64] | None = None,
    ) -> None: ...
    def finish(self, tolerance: float = 0.02, confidence: float = 0.95) -> dict[str, Any]: ...
    @property
    def stage(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def first(self) -> float: ...
    @property
    def last(self) -> float: ...
    @property
    def running(self) -> int: ...
    @property
    def negative(self) -> int: ...
    @property
    def window(self) -> tuple[float, float] | None: ...
    def window_sums(self) -> tuple[ExactSum, ExactSum, int]:
        """Pass 2: the exact sums of the time in the system inside the window and of the
        arrivals' response times (copies), and the arrivals."""
    def in_flight_counts(self) -> npt.NDArray[np.int64]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> LittleAccumulator: ...
    def copy(self) -> LittleAccumulator: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

def window_count_stats(counts: npt.NDArray[np.int64]) -> dict[str, Any]: ...
def arrival_grid(count: int, min: float, max: float, window: float) -> tuple[float, int]: ...
def arrival_stats_from_parts(
    count: int,
    min: float,
    max: float,
    counts: npt.NDArray[np.int64],
    gap_ss: float,
    window: float,
    confidence: float = 0.95,
    min_windows: int = 8,
) -> dict[str, Any]: ...
def set_threads(n: int | None = None) -> None: ...
def threads() -> int: ...
