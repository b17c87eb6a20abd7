"""Discrete-event queue simulation for serving capacity.

Describe the traffic with an arrival process and the work with a service-time
distribution, then call :func:`simulate`::

    >>> import qcore
    >>> from qcore import sim
    >>> r = qcore.simulate(arrivals=sim.Poisson(rate=0.9), service=sim.Exponential(mean=1.0),
    ...                    servers=1, customers=200_000, warmup=10_000, seed=1)
    >>> round(r.mean_response)  # M/M/1 at utilization 0.9: 1 / (mu - lambda) = 10
    10
    >>> r.response.quantile(0.99) > r.response.quantile(0.5)
    True

Distributions (durations, in seconds): :class:`Exponential`, :class:`Deterministic`,
:class:`Gamma`, :class:`LogNormal`, :class:`Empirical` (resampling) and
:class:`Durations` (trace-driven, one per request in order).

Arrival processes: :class:`Poisson`, :class:`Renewal` (i.i.d. interarrival times from
any distribution, e.g. ``Renewal(Gamma(mean=1.0, cv=2.0))``), :class:`MMPP2` (two-state
Markov-modulated Poisson, for bursts), :class:`PiecewiseRate` (a rate schedule) and
:class:`Trace` (given timestamps).

Random numbers come from a fixed algorithm (xoshiro256++ seeded by splitmix64, with
platform-independent ``ln`` and ``exp``), so the same seed gives the same result on
every platform. Arrivals, service times, patience and start-up delays use separate
streams: changing the number of servers or the discipline does not change the traffic
or the work (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from qcore import _qcore
from qcore._convert import as_f64, as_i64, is_polars_series
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

__all__ = [
    "MMPP2",
    "ArrivalProcess",
    "Deterministic",
    "Distribution",
    "Durations",
    "Empirical",
    "Exponential",
    "Gamma",
    "LogNormal",
    "PiecewiseRate",
    "Poisson",
    "Renewal",
    "SimResult",
    "Trace",
    "simulate",
]

_STATUS = ["completed", "blocked", "timed_out", "shed", "unfinished"]


# --------------------------------------------------------------------------- distributions


class Distribution:
    """Base class of the duration distributions (service, patience, start-up delay)."""

    #: the core's name of the distribution; the core reads the fields by name
    _kind: ClassVar[str] = ""

    def _check(self) -> None:
        m, scv = _qcore._sim_check_dist(self, type(self).__name__)
        object.__setattr__(self, "_moments", (m, scv))

    @property
    def mean_value(self) -> float:
        """The mean of the distribution (seconds)."""
        return float(self._moments[0])  # type: ignore[attr-defined]

    @property
    def scv(self) -> float:
        """The squared coefficient of variation."""
        return float(self._moments[1])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Exponential(Distribution):
    """Exponential durations with the given ``mean`` (> 0).

    >>> sim.Exponential(mean=2.0).scv
    1.0
    """

    mean: float

    def __post_init__(self) -> None:
        self._check()

    _kind = "exponential"


@dataclass(frozen=True)
class Deterministic(Distribution):
    """Always ``value`` (≥ 0).

    >>> sim.Deterministic(0.5).mean_value
    0.5
    """

    value: float

    def __post_init__(self) -> None:
        self._check()

    _kind = "deterministic"


@dataclass(frozen=True)
class Gamma(Distribution):
    """Gamma durations with the given ``mean`` (> 0) and coefficient of variation ``cv``
    (≥ 0; ``cv=0`` is deterministic, ``cv=1`` exponential).

    >>> round(sim.Gamma(mean=1.0, cv=0.5).scv, 6)
    0.25
    """

    mean: float
    cv: float

    def __post_init__(self) -> None:
        self._check()

    _kind = "gamma"


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Lognormal durations with the given ``mean`` (> 0) and coefficient of variation
    ``cv`` (≥ 0).

    >>> round(sim.LogNormal(mean=0.2, cv=2.0).mean_value, 12)
    0.2
    """

    mean: float
    cv: float

    def __post_init__(self) -> None:
        self._check()

    _kind = "lognormal"


@dataclass(frozen=True, eq=False)
class Empirical(Distribution):
    """Resample (uniformly, with replacement) from observed durations: a numpy array,
    a sequence or a polars Series of finite, non-negative seconds.

    >>> sim.Empirical([0.1, 0.2, 0.6]).mean_value
    0.3
    """

    samples: Any

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "samples", as_f64(self.samples, "samples", allow_scalar=False)
        )
        self._check()

    _kind = "empirical"

    def __repr__(self) -> str:
        return f"Empirical(<{len(self.samples)} samples>)"


@dataclass(frozen=True, eq=False)
class Durations(Distribution):
    """Trace-driven durations: request ``i`` takes ``values[i]`` seconds (for example
    the measured service times of the requests of a :class:`Trace`).

    >>> sim.Durations([1.0, 3.0]).mean_value
    2.0
    """

    values: Any

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "values", as_f64(self.values, "values", allow_scalar=False)
        )
        self._check()

    _kind = "sequence"

    def __repr__(self) -> str:
        return f"Durations(<{len(self.values)} values>)"


# --------------------------------------------------------------------------- arrivals


class ArrivalProcess:
    """Base class of the arrival processes."""

    #: the core's name of the process; the core reads the fields by name
    _kind: ClassVar[str] = ""

    def _check(self) -> None:
        object.__setattr__(self, "_rate", _qcore._sim_check_arrivals(self))

    @property
    def mean_rate(self) -> float | None:
        """The long-run arrival rate (per second), when it is defined."""
        return self._rate  # type: ignore[attr-defined,no-any-return]

    def _limit(self) -> int | None:
        return None


def _dist_spec(d: Any, name: str) -> Distribution:
    if not isinstance(d, Distribution):
        raise InvalidTypeError(
            f"{name} must be a qcore.sim distribution (Exponential, Deterministic, Gamma, "
            f"LogNormal, Empirical, Durations), got {type(d).__name__}"
        )
    return d


@dataclass(frozen=True)
class Poisson(ArrivalProcess):
    """Poisson arrivals at ``rate`` per second (> 0).

    >>> sim.Poisson(rate=5.0).mean_rate
    5.0
    """

    rate: float

    def __post_init__(self) -> None:
        self._check()

    _kind = "poisson"


@dataclass(frozen=True)
class Renewal(ArrivalProcess):
    """A renewal process: i.i.d. interarrival times from ``interarrival``.

    >>> sim.Renewal(sim.Gamma(mean=0.5, cv=2.0)).mean_rate
    2.0
    >>> round(sim.Renewal.from_rate(rate=2.0, cv=2.0, family="lognormal").mean_rate, 12)
    2.0
    """

    interarrival: Distribution

    @classmethod
    def from_rate(cls, rate: float, cv: float, family: str = "gamma") -> Renewal:
        """Interarrival times with mean ``1/rate`` and coefficient of variation ``cv``,
        from the ``"gamma"`` or ``"lognormal"`` family."""
        if not (isinstance(rate, (int, float)) and rate > 0 and math.isfinite(rate)):
            raise InvalidArgumentError(f"rate must be a positive finite number, got {rate!r}")
        if family == "gamma":
            return cls(Gamma(mean=1.0 / rate, cv=cv))
        if family == "lognormal":
            return cls(LogNormal(mean=1.0 / rate, cv=cv))
        raise InvalidArgumentError(f"family must be 'gamma' or 'lognormal', got {family!r}")

    _kind = "renewal"

    def __post_init__(self) -> None:
        _dist_spec(self.interarrival, "interarrival")
        self._check()

    def _limit(self) -> int | None:
        if isinstance(self.interarrival, Durations):
            return len(self.interarrival.values)
        return None


@dataclass(frozen=True)
class MMPP2(ArrivalProcess):
    """Two-state Markov-modulated Poisson process: in state ``i`` requests arrive at
    ``rates[i]``; the state switches to the other one at rate ``switch_rates[i]`` (so
    state ``i`` lasts ``1/switch_rates[i]`` seconds on average). Starts in state 0.

    >>> round(sim.MMPP2(rates=(1.0, 9.0), switch_rates=(0.1, 0.3)).mean_rate, 12)
    3.0
    """

    rates: tuple[float, float]
    switch_rates: tuple[float, float]

    def __post_init__(self) -> None:
        for name in ("rates", "switch_rates"):
            v = tuple(float(x) for x in getattr(self, name))
            if len(v) != 2:
                raise InvalidArgumentError(f"{name} must hold two values, got {len(v)}")
            object.__setattr__(self, name, v)
        self._check()

    _kind = "mmpp2"


@dataclass(frozen=True, eq=False)
class PiecewiseRate(ArrivalProcess):
    """Poisson arrivals whose rate is ``rates[i]`` from ``times[i]`` until
    ``times[i+1]`` (seconds; ``times[0]`` must be 0, the last rate holds forever; a
    final rate of 0 ends the arrivals).

    >>> p = sim.PiecewiseRate(times=[0, 60, 120], rates=[10.0, 50.0, 10.0])
    """

    times: Any
    rates: Any

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "times", as_f64(self.times, "times", allow_scalar=False)
        )
        object.__setattr__(
            self, "rates", as_f64(self.rates, "rates", allow_scalar=False)
        )
        self._check()

    _kind = "piecewise"

    def __repr__(self) -> str:
        return f"PiecewiseRate(<{len(self.times)} segments>)"


@dataclass(frozen=True, eq=False)
class Trace(ArrivalProcess):
    """Arrivals at the given sorted timestamps (float seconds; numpy, sequence or
    polars Series). The simulation clock starts at the first timestamp; per-request
    records report the original timestamps.

    >>> sim.Trace([10.0, 10.5, 11.0]).mean_rate
    2.0
    """

    timestamps: Any

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "timestamps",
            as_f64(self.timestamps, "timestamps", allow_scalar=False),
        )
        self._check()

    _kind = "trace"

    def _limit(self) -> int | None:
        return len(self.timestamps)

    def __repr__(self) -> str:
        return f"Trace(<{len(self.timestamps)} arrivals>)"


# --------------------------------------------------------------------------- results


def _sketch_cls() -> Any:
    import qcore

    return qcore.QuantileSketch


@dataclass(frozen=True, repr=False)
class SimResult:
    """The outcome of :func:`simulate` (frozen).

    Statistics cover the measured requests (after the warm-up). Time averages,
    throughput and utilization cover the arrival window, from the first measured arrival
    to the last arrival (the drain after it, long with heavy-tailed service, would dilute
    them); :attr:`duration` also counts the drain. With several replications, counts are totals, the other scalars are
    means over replications, and :attr:`intervals` holds their confidence intervals.

    Attributes
    ----------
    response, wait : QuantileSketch
        Response times of completed requests and waits of requests that started
        service (merged over replications).
    arrived, completed, blocked, timed_out, shed, unfinished : int
        Requests that arrived; completed service; found the waiting room full; left
        after waiting longer than their patience; were shed by an admission policy; were
        still in the system when the run stopped (no server left).
    utilization : float
        Busy server time over ready server time, over the arrival window.
    mean_in_system, mean_in_queue : float
        Time-average number of requests in the system and waiting, over the arrival
        window.
    throughput : float
        Departures per second over the arrival window.
    mean_response, mean_wait, p_wait : float
        Mean response time, mean wait, and the fraction of served requests that waited.
    p_block, p_timeout : float
        ``blocked / arrived`` and ``timed_out / arrived``.
    window : float
        Length of the arrival window, first measured arrival to last arrival (mean over
        replications).
    duration : float
        From the first measured arrival to the moment the system emptied after the last
        arrival (or the run stopped): the arrival window and the drain (mean over
        replications).
    replications : int
    confidence : float
    intervals : dict
        ``name -> (lo, estimate, hi)`` Student-t intervals over replications for
        ``mean_response``, ``mean_wait``, ``p_wait``, ``p_block``, ``p_timeout``,
        ``utilization``, ``mean_in_system``, ``mean_in_queue`` and ``throughput``
        (NaN bounds with one replication).
    per_replication : polars.DataFrame
        One row per replication with the scalar statistics.
    records : polars.DataFrame or None
        Per-request records when ``records=True``: ``replication, id, arrival, start,
        end, wait, response, status``.
    fast_path : bool
        Whether the customer recursion (rather than the event loop) ran.
    """

    response: Any
    wait: Any
    arrived: int
    completed: int
    blocked: int
    timed_out: int
    shed: int
    unfinished: int
    utilization: float
    mean_in_system: float
    mean_in_queue: float
    throughput: float
    mean_response: float
    mean_wait: float
    p_wait: float
    p_block: float
    p_timeout: float
    window: float
    duration: float
    replications: int
    confidence: float
    intervals: dict[str, tuple[float, float, float]]
    per_replication: Any
    records: Any
    fast_path: bool
    _response_reps: tuple[Any, ...] = field(default=(), compare=False)
    _wait_reps: tuple[Any, ...] = field(default=(), compare=False)

    _SCALARS = (
        "arrived",
        "completed",
        "blocked",
        "timed_out",
        "shed",
        "unfinished",
        "utilization",
        "mean_in_system",
        "mean_in_queue",
        "throughput",
        "mean_response",
        "mean_wait",
        "p_wait",
        "p_block",
        "p_timeout",
        "window",
        "duration",
        "replications",
        "confidence",
        "fast_path",
    )

    def response_quantile(self, q: float) -> tuple[float, float, float]:
        """``(lo, estimate, hi)`` for the ``q``-quantile of the response time: the mean
        of the replications' sketch quantiles with its Student-t interval (NaN bounds
        with one replication).

        >>> r = qcore.simulate(sim.Poisson(0.5), sim.Exponential(1.0), customers=20_000,
        ...                    replications=4)
        >>> lo, p99, hi = r.response_quantile(0.99)
        >>> lo < p99 < hi
        True
        """
        return self._quantile_ci(self._response_reps, q, "response")

    def wait_quantile(self, q: float) -> tuple[float, float, float]:
        """Like :meth:`response_quantile`, for the wait."""
        return self._quantile_ci(self._wait_reps, q, "wait")

    def _quantile_ci(
        self, reps: Sequence[Any], q: float, what: str
    ) -> tuple[float, float, float]:
        vals = []
        for sk in reps:
            v = sk.quantile(q)
            if v is None:
                raise InvalidArgumentError(f"a replication recorded no {what} times; no quantile")
            vals.append(v)
        return _mean_ci(vals, self.confidence)

    def as_dict(self) -> dict[str, Any]:
        """The scalar statistics and intervals as a plain dict (sketches and frames
        left out).

        >>> qcore.simulate(sim.Poisson(0.5), sim.Exponential(1.0), customers=1000).as_dict()["arrived"]
        1000
        """
        d = {k: getattr(self, k) for k in self._SCALARS}
        d["intervals"] = dict(self.intervals)
        return d

    def __repr__(self) -> str:
        def ci(name: str) -> str:
            lo, est, hi = self.intervals[name]
            if math.isnan(lo):
                return f"{est:.6g}"
            return f"{est:.6g} [{lo:.6g}, {hi:.6g}]"

        p99 = self.response.quantile(0.99) if self.response.count > 0 else None
        p99s = "None" if p99 is None else f"{p99:.6g}"
        return (
            f"SimResult(replications={self.replications}, arrived={self.arrived}, "
            f"completed={self.completed}, blocked={self.blocked}, timed_out={self.timed_out}, "
            f"shed={self.shed}, mean_response={ci('mean_response')}, p99_response={p99s}, "
            f"utilization={ci('utilization')}, mean_in_system={ci('mean_in_system')}, "
            f"throughput={ci('throughput')})"
        )


def _mean_ci(values: Sequence[float], confidence: float) -> tuple[float, float, float]:
    lo, m, hi = _qcore._sim_mean_ci(
        np.asarray(values, dtype=np.float64), float(confidence)
    )
    return (float(lo), float(m), float(hi))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _build_result(runs: list[dict[str, Any]], confidence: float) -> SimResult:
    import polars as pl

    QS = _sketch_cls()
    resp = [QS.from_bytes(r["response"]) for r in runs]
    wait = [QS.from_bytes(r["wait"]) for r in runs]
    for r in runs:
        r["p_block"] = _ratio(r["blocked"], r["arrived"])
        r["p_timeout"] = _ratio(r["timed_out"], r["arrived"])
    names = [
        "mean_response",
        "mean_wait",
        "p_wait",
        "p_block",
        "p_timeout",
        "utilization",
        "mean_in_system",
        "mean_in_queue",
        "throughput",
    ]
    intervals = {n: _mean_ci([r[n] for r in runs], confidence) for n in names}
    counts = ["arrived", "completed", "blocked", "timed_out", "shed", "unfinished"]
    cols = counts + names + ["window", "duration", "server_time"]
    per_rep = pl.DataFrame(
        {
            "replication": list(range(len(runs))),
            **{c: [r[c] for r in runs] for c in cols},
        }
    )
    records = None
    if runs[0]["records"] is not None:
        frames = []
        for k, r in enumerate(runs):
            rec = r["records"]
            n = len(rec["id"])
            frames.append(
                pl.DataFrame(
                    {
                        "replication": np.full(n, k, dtype=np.int64),
                        "id": rec["id"],
                        "arrival": rec["arrival"],
                        "start": rec["start"],
                        "end": rec["end"],
                        "wait": rec["start"] - rec["arrival"],
                        "response": rec["end"] - rec["arrival"],
                        "status": pl.Series(
                            np.asarray(_STATUS)[rec["status"]], dtype=pl.Enum(_STATUS)
                        ),
                    }
                )
            )
        records = pl.concat(frames)
    return SimResult(
        response=QS.merge_all(resp),
        wait=QS.merge_all(wait),
        arrived=sum(r["arrived"] for r in runs),
        completed=sum(r["completed"] for r in runs),
        blocked=sum(r["blocked"] for r in runs),
        timed_out=sum(r["timed_out"] for r in runs),
        shed=sum(r["shed"] for r in runs),
        unfinished=sum(r["unfinished"] for r in runs),
        utilization=intervals["utilization"][1],
        mean_in_system=intervals["mean_in_system"][1],
        mean_in_queue=intervals["mean_in_queue"][1],
        throughput=intervals["throughput"][1],
        mean_response=intervals["mean_response"][1],
        mean_wait=intervals["mean_wait"][1],
        p_wait=intervals["p_wait"][1],
        p_block=intervals["p_block"][1],
        p_timeout=intervals["p_timeout"][1],
        window=float(np.mean([r["window"] for r in runs])),
        duration=float(np.mean([r["duration"] for r in runs])),
        replications=len(runs),
        confidence=confidence,
        intervals=intervals,
        per_replication=per_rep,
        records=records,
        fast_path=bool(runs[0]["fast_path"]),
        _response_reps=tuple(resp),
        _wait_reps=tuple(wait),
    )


# --------------------------------------------------------------------------- simulate

BatchService = (
    tuple[float, float] | Sequence[float] | npt.ArrayLike | Callable[[int], float]
)


def _as_duration(x: Any, name: str) -> Distribution | None:
    if x is None:
        return None
    if isinstance(x, Distribution):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        if not (math.isfinite(x) and x >= 0):
            raise InvalidArgumentError(f"{name} must be a non-negative finite number, got {x!r}")
        return Deterministic(float(x))
    raise InvalidTypeError(
        f"{name} must be a number or a qcore.sim distribution, got {type(x).__name__}"
    )


def _int(x: Any, name: str, lo: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an integer, got {type(x).__name__}")
    v = int(x)
    if v < lo:
        raise InvalidArgumentError(f"{name} must be at least {lo}, got {v}")
    return v


def _batching(
    max_batch_size: int, max_batch_wait: float, batch_service: BatchService | None
) -> dict[str, Any] | None:
    """The batching of :func:`simulate` as the core reads it (named fields)."""
    max_batch_size = _int(max_batch_size, "max_batch_size", 1)
    if batch_service is None:
        if max_batch_size > 1:
            raise InvalidArgumentError("batch_service is required when max_batch_size > 1")
        return None
    max_batch_wait = float(max_batch_wait)
    if callable(batch_service):
        table = np.array(
            [float(batch_service(n)) for n in range(1, max_batch_size + 1)]
        )
    elif isinstance(batch_service, tuple) and len(batch_service) == 2:
        fixed, per_item = (float(v) for v in batch_service)
        return {"max_size": max_batch_size, "max_wait": max_batch_wait, "fixed": fixed,
                "per_item": per_item, "table": None}
    else:
        table = as_f64(batch_service, "batch_service", allow_scalar=False)
    return {"max_size": max_batch_size, "max_wait": max_batch_wait, "fixed": 0.0, "per_item": 0.0,
            "table": table}


def _schedule(s: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]] | None:
    if s is None:
        return None
    if type(s).__module__.startswith("polars") and type(s).__name__ == "DataFrame":
        if s.width != 2:
            raise InvalidArgumentError("server_schedule must have two columns: time, servers")
        times, counts = s.to_series(0), s.to_series(1)
    else:
        pairs = list(s)
        if any(len(p) != 2 for p in pairs):
            raise InvalidArgumentError(
                "server_schedule must be a sequence of (time, servers) pairs"
            )
        times = [p[0] for p in pairs]
        counts = [p[1] for p in pairs]
    return (
        as_f64(times, "server_schedule", allow_scalar=False),
        as_i64(counts, "server_schedule"),
    )


def simulate(
    arrivals: ArrivalProcess,
    service: Distribution | None = None,
    servers: int = 1,
    customers: int | None = None,
    warmup: int = 0,
    seed: int = 1,
    *,
    discipline: str = "fcfs",
    queue_capacity: int | None = None,
    patience: Distribution | float | None = None,
    max_batch_size: int = 1,
    max_batch_wait: float = 0.0,
    batch_service: BatchService | None = None,
    server_schedule: Any = None,
    startup_delay: Distribution | float | None = None,
    records: bool = False,
    replications: int = 1,
    confidence: float = 0.95,
    relative_accuracy: float = 0.01,
    method: str = "auto",
    threads: int = 1,
) -> SimResult:
    """Simulate a multi-server queue and return a :class:`SimResult`.

    Parameters
    ----------
    arrivals : ArrivalProcess
        :class:`Poisson`, :class:`Renewal`, :class:`MMPP2`, :class:`PiecewiseRate` or
        :class:`Trace`.
    service : Distribution, optional
        Per-request service time; a :class:`Durations` gives trace-driven times.
        Omit it with batching (``batch_service`` sets the batch time).
    servers : int
        Servers at time 0 (0 is allowed with a ``server_schedule``).
    customers : int, optional
        Measured requests after the warm-up (default: all of a trace, else 100 000).
        A :class:`Trace` or a rate schedule ending at 0 may supply fewer.
    warmup : int
        Requests simulated before measurement starts (excluded from all statistics).
    seed : int
        Seed of the fixed RNG (0 ≤ seed < 2**64).
    discipline : {"fcfs", "lifo"}
        Order in which waiting requests are served.
    queue_capacity : int, optional
        Waiting room (requests not in service); an arrival that finds it full is
        blocked. ``None``: unlimited.
    patience : Distribution or float, optional
        A request that waits longer than its patience leaves (timed out).
    max_batch_size, max_batch_wait, batch_service
        Dynamic batching: a free server starts a batch of up to ``max_batch_size``
        requests as soon as that many wait, or when the oldest waiting request has
        waited ``max_batch_wait`` seconds. ``batch_service`` is the batch's service
        time: ``(fixed, per_item)`` for ``fixed + per_item * n``, a table whose
        ``n-1``-th entry is the time of a batch of ``n``, or a callable ``f(n)``
        (evaluated once per batch size).
    server_schedule : sequence of (time, servers) pairs, or a two-column polars frame
        Changes of the server count (times on the simulation clock, which starts at
        0, or at the first timestamp of a trace). Added servers serve after
        ``startup_delay``; removed servers finish the work they hold.
    startup_delay : Distribution or float, optional
        Start-up delay of servers added by the schedule.
    records : bool
        Return per-request records as a polars DataFrame (``SimResult.records``).
    replications : int
        Independent replications (separate random streams of the same seed); the
        intervals in :attr:`SimResult.intervals` are Student-t intervals over them.
    confidence : float
        Confidence level of the intervals.
    relative_accuracy : float
        Relative accuracy of the response and wait sketches.
    method : {"auto", "fast", "event"}
        ``"auto"`` runs the customer recursion (Lindley / Kiefer–Wolfowitz) for plain
        FCFS queues without waiting-room limit, patience, batching or schedule, and the
        general event loop otherwise; both give the same results for the same seed.
        A replication whose arrival window is far below the resolution of its departure
        clock (the recursion's window sums would cancel) runs on the event loop, and
        says so (``fast_path`` False).
    threads : int
        Threads used for the replications.

    Returns
    -------
    SimResult

    Raises
    ------
    ValueError
        An argument out of its domain (the message names it), a trace too short for
        ``warmup`` / ``customers``, or ``method="fast"`` for a configuration that needs
        the event loop.
    TypeError
        An argument of the wrong type.

    Examples
    --------
    >>> r = qcore.simulate(sim.Poisson(rate=7.2), sim.Exponential(mean=1.0), servers=8,
    ...                    customers=50_000, warmup=5_000, replications=4, seed=3)
    >>> lo, est, hi = r.intervals["p_wait"]   # Erlang C(8, 7.2) = 0.658
    >>> lo < est < hi
    True
    >>> b = qcore.simulate(sim.Poisson(rate=50.0), servers=1, customers=10_000,
    ...                    max_batch_size=8, max_batch_wait=0.01, batch_service=(0.02, 0.005))
    >>> b.completed
    10000
    """
    if not isinstance(arrivals, ArrivalProcess):
        raise InvalidTypeError(
            f"arrivals must be a qcore.sim arrival process (Poisson, Renewal, MMPP2, "
            f"PiecewiseRate, Trace), got {type(arrivals).__name__}"
        )
    if service is not None and not isinstance(service, Distribution):
        if isinstance(service, np.ndarray) or is_polars_series(service):
            service = Durations(service)
        else:
            _dist_spec(service, "service")
    servers = _int(servers, "servers", 0)
    warmup = _int(warmup, "warmup", 0)
    if customers is None:
        limit = arrivals._limit()
        customers = max(limit - warmup, 1) if limit is not None else 100_000
    customers = _int(customers, "customers", 1)
    seed = _int(seed, "seed", 0)
    if seed >= 2**64:
        raise InvalidArgumentError(f"seed must be below 2**64, got {seed}")
    replications = _int(replications, "replications", 1)
    threads = _int(threads, "threads", 1)
    if queue_capacity is not None:
        queue_capacity = _int(queue_capacity, "queue_capacity", 0)
    if not isinstance(confidence, (int, float)) or not (0.0 < confidence < 1.0):
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}")
    pat = _as_duration(patience, "patience")
    sd = _as_duration(startup_delay, "startup_delay")
    runs = _qcore._sim_run(
        arrivals,
        service,
        servers,
        customers,
        warmup,
        seed,
        discipline,
        queue_capacity,
        pat,
        _batching(max_batch_size, max_batch_wait, batch_service),
        _schedule(server_schedule),
        sd,
        bool(records),
        float(relative_accuracy),
        replications,
        method,
        threads,
    )
    return _build_result(runs, float(confidence))
