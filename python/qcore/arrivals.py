"""Arrival rates and burstiness from request timestamps.

All functions take timestamps as float seconds (a sequence, any real numpy array or a
polars Series) and run in the Rust core over the whole array, with the GIL released on
large input. Timestamps need not be sorted; when an answer needs order (inter-arrival
times, change points) the core sorts a copy. NaN or infinite timestamps raise
``ValueError`` naming the first bad index; polars nulls raise too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qcore import _qcore as _qc
from qcore._convert import as_f64
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

__all__ = [
    "ArrivalStats",
    "DecayedRate",
    "RateChanges",
    "SlidingRate",
    "arrival_stats",
    "arrival_stats_by",
    "burstiness_curve",
    "rate_changes",
    "window_counts",
]


def _ts(x: Any, name: str = "timestamps") -> npt.NDArray[np.float64]:
    return as_f64(x, name, allow_scalar=True)


def window_counts(
    timestamps: Any,
    window: float,
    start: float | None = None,
    end: float | None = None,
) -> npt.NDArray[np.int64]:
    """Exact number of timestamps in each window ``[start + k·window, start + (k+1)·window)``.

    Parameters
    ----------
    timestamps : array-like of float
        Arrival times in seconds, in any order.
    window : float
        Window length in seconds (> 0).
    start : float, optional
        Start of the first window; defaults to the smallest timestamp.
    end : float, optional
        End of the last window (clipped there); defaults to just past the window holding
        the largest timestamp. Timestamps outside ``[start, end)`` are ignored.

    Returns
    -------
    numpy.ndarray of int64
        One count per window, empty windows included. Empty input gives an empty array
        unless both ``start`` and ``end`` are given (then all zeros).

    Raises
    ------
    ValueError
        NaN/inf timestamps, a non-positive window, ``end < start``, or more than 2·10⁸
        windows.

    Notes
    -----
    The window of ``t`` is ``floor((t - start) / window)`` in float64 arithmetic, so the
    result equals ``numpy.bincount`` of that index. Sorted input is detected and counted by
    binary search of window boundaries; unsorted input by one direct pass (no sort).

    Examples
    --------
    >>> import qcore
    >>> qcore.window_counts([0.1, 0.5, 2.2, 2.9], window=1.0).tolist()
    [2, 0, 2]
    """
    return _qc.window_counts(_ts(timestamps), float(window), start, end)


@dataclass(frozen=True)
class ArrivalStats:
    """Summary of an arrival stream (see :func:`arrival_stats`)."""

    count: int
    duration: float
    rate: float
    rate_ci: tuple[float, float]
    confidence: float
    window: float
    windows: int
    peak_rate: float
    peak_to_mean: float
    cv_interarrival: float
    index_of_dispersion: float
    burstiness_windows: npt.NDArray[np.float64] = dataclasses.field(repr=False)
    burstiness: npt.NDArray[np.float64] = dataclasses.field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (arrays as lists)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["burstiness_windows"] = self.burstiness_windows.tolist()
        d["burstiness"] = self.burstiness.tolist()
        return d


def arrival_stats(
    timestamps: Any,
    window: float = 1.0,
    confidence: float = 0.95,
    min_windows: int = 8,
) -> ArrivalStats:
    """Rate, burstiness and peak statistics of an arrival stream.

    Parameters
    ----------
    timestamps : array-like of float
        Arrival times in seconds, any order; at least two distinct times.
    window : float
        Window (s) for the peak rate and the index of dispersion.
    confidence : float
        Level of the rate's confidence interval.
    min_windows : int
        The burstiness curve stops when fewer complete windows than this remain.

    Returns
    -------
    ArrivalStats
        ``count``; ``duration`` (last − first); ``rate`` = count / duration with
        ``rate_ci``, the exact Garwood Poisson interval; ``peak_rate`` (largest window
        count / window); ``peak_to_mean`` (largest / mean window count);
        ``cv_interarrival`` (population std / mean of the gaps); ``index_of_dispersion``
        (population variance / mean of window counts, 1 for Poisson); and the burstiness
        curve: ``burstiness`` is the index of dispersion at ``burstiness_windows`` =
        window·2^k (adjacent windows merged). Window statistics use the ``windows``
        complete windows starting at the first arrival; with none they are NaN.

    Raises
    ------
    ValueError
        NaN/inf timestamps, fewer than two distinct times, window ≤ 0, confidence outside
        (0, 1).

    Examples
    --------
    >>> import numpy as np, qcore
    >>> ts = np.cumsum(np.random.default_rng(1).exponential(0.5, 100_000))
    >>> s = qcore.arrival_stats(ts, window=10.0)
    >>> round(s.rate, 1), round(s.cv_interarrival, 1), round(s.index_of_dispersion, 1)
    (2.0, 1.0, 1.0)
    """
    d = _qc.arrival_stats(
        _ts(timestamps), float(window), float(confidence), int(min_windows)
    )
    d["rate_ci"] = tuple(d["rate_ci"])
    return ArrivalStats(**d)


def burstiness_curve(
    timestamps: Any, windows: Sequence[float] | npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Index of dispersion of window counts at each window size in ``windows``.

    Each size is counted directly over complete windows starting at the first arrival. A
    Poisson stream gives 1 at every size; bursty or drifting traffic grows with the size.
    Sizes with no complete window give NaN.

    Examples
    --------
    >>> import numpy as np, qcore
    >>> ts = np.cumsum(np.random.default_rng(2).exponential(1.0, 50_000))
    >>> np.round(qcore.burstiness_curve(ts, [1.0, 10.0, 100.0]), 0).tolist()
    [1.0, 1.0, 1.0]
    """
    return _qc.burstiness_curve(_ts(timestamps), as_f64(windows, "windows"))


@dataclass(frozen=True)
class RateChanges:
    """Piecewise-constant rate fit (see :func:`rate_changes`)."""

    times: npt.NDArray[np.float64]
    boundaries: npt.NDArray[np.float64]
    rates: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    resolution: float
    penalty: float

    @property
    def rates_before(self) -> npt.NDArray[np.float64]:
        """Rate before each change time."""
        return self.rates[:-1]

    @property
    def rates_after(self) -> npt.NDArray[np.float64]:
        """Rate after each change time."""
        return self.rates[1:]

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (arrays as lists)."""
        return {
            "times": self.times.tolist(),
            "boundaries": self.boundaries.tolist(),
            "rates": self.rates.tolist(),
            "counts": self.counts.tolist(),
            "resolution": self.resolution,
            "penalty": self.penalty,
        }


def rate_changes(
    timestamps: Any,
    bins: int | None = None,
    penalty: float | None = None,
    min_bins: int = 1,
) -> RateChanges:
    """Times at which the arrival rate shifts, with the rates before and after.

    The span of the arrivals is cut into ``bins`` equal bins (default
    ``clamp(n/4, 16, 4096)``); the piecewise-constant Poisson model that maximises the
    likelihood minus ``penalty`` per change (default ``2 ln n``) is found exactly by PELT.
    Change times are bin edges, so ``resolution`` (the bin width) is their precision.
    Segments hold at least ``min_bins`` bins.

    Raises
    ------
    ValueError
        NaN/inf timestamps, fewer than two distinct times, bins < 2, negative penalty.

    Examples
    --------
    >>> import numpy as np, qcore
    >>> rng = np.random.default_rng(3)
    >>> ts = np.concatenate([rng.uniform(0, 500, 1000), rng.uniform(500, 1000, 5000)])
    >>> r = qcore.rate_changes(ts)
    >>> np.round(r.times, -1).tolist(), np.round(r.rates, 0).tolist()
    ([500.0], [2.0, 10.0])
    """
    d = _qc.rate_changes(_ts(timestamps), bins, penalty, int(min_bins))
    return RateChanges(**d)


class DecayedRate:
    """Streaming arrival rate with exponential time decay (mergeable, picklable).

    The estimate at time ``t`` is ``λ Σ exp(-λ (t - t_i))`` with ``λ = ln 2 / half_life``: an
    exponentially weighted count of past arrivals whose weights integrate to one, so a
    constant rate r reads r once the stream is much older than the half-life.

    Out-of-order timestamps get their exact weight, so the state after any arrival order
    equals the state after sorted order (up to rounding), and ``merge`` of two estimators
    equals the estimator of the union of their streams. Querying ``rate(at)`` before the
    latest timestamp seen raises ``ValueError``. A failed ``update`` (NaN in the batch)
    leaves the estimator unchanged.

    Examples
    --------
    >>> import numpy as np, qcore
    >>> ts = np.cumsum(np.random.default_rng(4).exponential(0.1, 100_000))
    >>> r = qcore.DecayedRate(half_life=60.0)
    >>> r.update(ts[:50_000]); r.update(ts[50_000:])
    >>> abs(r.rate() - 10.0) < 1.0
    True
    """

    __slots__ = ("_inner",)

    def __init__(self, half_life: float) -> None:
        self._inner = _qc._DecayedRate(float(half_life))

    @classmethod
    def _from_inner(cls, inner: Any) -> DecayedRate:
        obj = cls.__new__(cls)
        obj._inner = inner
        return obj

    @classmethod
    def _from_state(cls, state: tuple[float, float, float, float, int]) -> DecayedRate:
        return cls._from_inner(_qc._DecayedRate.from_state(*state))

    def __reduce__(self) -> tuple[Any, ...]:
        return (DecayedRate._from_state, (self._inner.state(),))

    def update(self, timestamps: Any) -> None:
        """Add a batch of arrival times (any order)."""
        self._inner.update(_ts(timestamps))

    def merge(self, other: DecayedRate) -> None:
        """Fold ``other`` into this estimator (same half-life, else ``IncompatibleSketchError``)."""
        if not isinstance(other, DecayedRate):
            raise InvalidTypeError(f"other must be a DecayedRate, got {type(other).__name__}")
        self._inner.merge(other._inner.copy() if other is self else other._inner)

    def rate(self, at: float | None = None, debias: bool = False) -> float | None:
        """Decayed rate (1/s) at ``at`` (default: the latest timestamp); ``None`` while empty.

        With ``debias=True`` the estimate is divided by ``1 - exp(-λ (at - first))``, which
        removes the warm-up bias for a stream that started at the first timestamp.
        """
        return self._inner.rate(None if at is None else float(at), bool(debias))

    def copy(self) -> DecayedRate:
        """An independent copy."""
        return DecayedRate._from_inner(self._inner.copy())

    @property
    def half_life(self) -> float:
        return float(self._inner.half_life)

    @property
    def count(self) -> int:
        """Arrivals seen."""
        return int(self._inner.count)

    @property
    def last_time(self) -> float | None:
        return self._inner.last_time

    @property
    def first_time(self) -> float | None:
        return self._inner.first_time

    def __repr__(self) -> str:
        return (
            f"DecayedRate(half_life={self.half_life}, count={self.count}, "
            f"rate={self.rate()})"
        )


class SlidingRate:
    """Exact arrival rate over a sliding horizon: arrivals in ``(t - horizon, t]`` / horizon.

    Keeps the timestamps within the horizon of the latest one. Late timestamps still inside
    the horizon are inserted in order; older ones can no longer change any answer and are
    dropped (``dropped_late`` counts them). Mergeable (same horizon) and picklable.

    Examples
    --------
    >>> import qcore
    >>> s = qcore.SlidingRate(horizon=10.0)
    >>> s.update([1.0, 5.0, 12.0])
    >>> s.rate()
    0.2
    """

    __slots__ = ("_inner",)

    def __init__(self, horizon: float) -> None:
        self._inner = _qc._SlidingRate(float(horizon))

    @classmethod
    def _from_inner(cls, inner: Any) -> SlidingRate:
        obj = cls.__new__(cls)
        obj._inner = inner
        return obj

    @classmethod
    def _from_state(
        cls, horizon: float, window: Any, count: int, dropped: int
    ) -> SlidingRate:
        return cls._from_inner(
            _qc._SlidingRate.from_state(
                float(horizon), as_f64(window, "window"), int(count), int(dropped)
            )
        )

    def __reduce__(self) -> tuple[Any, ...]:
        h, w, c, d = self._inner.state()
        return (SlidingRate._from_state, (h, w.tolist(), c, d))

    def update(self, timestamps: Any) -> None:
        """Add a batch of arrival times (any order)."""
        self._inner.update(_ts(timestamps))

    def merge(self, other: SlidingRate) -> None:
        """Fold ``other`` into this estimator (same horizon, else ``IncompatibleSketchError``)."""
        if not isinstance(other, SlidingRate):
            raise InvalidTypeError(f"other must be a SlidingRate, got {type(other).__name__}")
        self._inner.merge(other._inner.copy() if other is self else other._inner)

    def rate(self, at: float | None = None) -> float | None:
        """Rate (1/s) over ``(at - horizon, at]``; ``at`` defaults to the latest timestamp and may
        not be earlier. ``None`` while empty."""
        return self._inner.rate(None if at is None else float(at))

    def copy(self) -> SlidingRate:
        return SlidingRate._from_inner(self._inner.copy())

    @property
    def horizon(self) -> float:
        return float(self._inner.horizon)

    @property
    def count(self) -> int:
        return int(self._inner.count)

    @property
    def dropped_late(self) -> int:
        return int(self._inner.dropped_late)

    @property
    def last_time(self) -> float | None:
        return self._inner.last_time

    def __repr__(self) -> str:
        return f"SlidingRate(horizon={self.horizon}, count={self.count}, rate={self.rate()})"


_SCALAR_STATS = (
    "count",
    "duration",
    "rate",
    "rate_lo",
    "rate_hi",
    "peak_rate",
    "peak_to_mean",
    "cv_interarrival",
    "index_of_dispersion",
    "windows",
)


def arrival_stats_by(
    df: Any,
    time: str,
    by: str | Sequence[str],
    window: float = 1.0,
    confidence: float = 0.95,
) -> Any:
    """Per-group :func:`arrival_stats` over a polars DataFrame.

    Parameters
    ----------
    df : polars.DataFrame
        The request log.
    time : str
        Column of arrival times (float seconds; nulls are an error).
    by : str or list of str
        Group keys (for example endpoint, model version, replica).

    Returns
    -------
    polars.DataFrame
        One row per group with the keys and ``count, duration, rate, rate_lo, rate_hi,
        peak_rate, peak_to_mean, cv_interarrival, index_of_dispersion, windows``. Groups
        with fewer than two distinct times get nulls.

    Examples
    --------
    >>> import polars as pl, qcore
    >>> df = pl.DataFrame({"t": [0.0, 1.0, 2.0, 0.0, 4.0], "ep": ["a", "a", "a", "b", "b"]})
    >>> qcore.arrival_stats_by(df, "t", "ep").select("ep", "count", "rate").sort("ep").rows()
    [('a', 3, 1.5), ('b', 2, 0.5)]
    """
    import polars as pl

    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [time, *keys] if c not in df.columns]
    if missing:
        raise InvalidArgumentError(f"df has no column(s) {missing}")
    rows = []
    for key, part in df.select([*keys, time]).group_by(keys, maintain_order=True):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        try:
            s = arrival_stats(
                part.get_column(time), window=window, confidence=confidence
            )
        except ValueError as e:
            if "at least two arrivals" not in str(e):
                raise
            row.update({k: None for k in _SCALAR_STATS})
        else:
            row.update(
                count=s.count,
                duration=s.duration,
                rate=s.rate,
                rate_lo=s.rate_ci[0],
                rate_hi=s.rate_ci[1],
                peak_rate=s.peak_rate,
                peak_to_mean=s.peak_to_mean,
                cv_interarrival=s.cv_interarrival,
                index_of_dispersion=s.index_of_dispersion,
                windows=s.windows,
            )
        rows.append(row)
    schema = {k: df.schema[k] for k in keys}
    schema.update(
        {
            "count": pl.Int64,
            "duration": pl.Float64,
            "rate": pl.Float64,
            "rate_lo": pl.Float64,
            "rate_hi": pl.Float64,
            "peak_rate": pl.Float64,
            "peak_to_mean": pl.Float64,
            "cv_interarrival": pl.Float64,
            "index_of_dispersion": pl.Float64,
            "windows": pl.Int64,
        }
    )
    return pl.DataFrame(rows, schema=schema)
