"""Little's law from request logs, and in-flight concurrency.

A request is in the system on ``[start, end)`` (float seconds). ``end`` may be NaN (or
null in a polars Series) for a request still running when the log was cut: it counts as in
the system until the end of the log and is flagged. Rows with ``end < start`` (clocks that
disagree) are excluded from the sums and flagged. ``start`` must be finite; an infinite
``end`` is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from qcore import _qcore as _qc
from qcore._convert import as_f64, is_polars_series
from qcore.exceptions import InvalidArgumentError

__all__ = [
    "GaugeCheck",
    "LittleResult",
    "PeakInFlight",
    "in_flight",
    "in_flight_peaks",
    "littles_law",
    "littles_law_by",
    "peak_in_flight",
]


def _end(x: Any) -> npt.NDArray[np.float64]:
    if is_polars_series(x) and x.null_count():
        x = x.cast(float).fill_null(float("nan"))
    return as_f64(x, "end")


def in_flight(start: Any, end: Any, at: Any) -> npt.NDArray[np.int64]:
    """Number of requests in the system (``start ≤ t < end``) at each time in ``at``.

    Rows with a NaN end count as in flight from their start on; rows with ``end < start``
    count nowhere.

    Raises
    ------
    ValueError
        Lengths differ, NaN in ``start`` or ``at``, infinite ``end``.

    Examples
    --------
    >>> import qcore
    >>> qcore.in_flight([0, 1, 3], [2, 4, 5], at=[0, 1, 2, 3.5, 5]).tolist()
    [1, 2, 1, 2, 0]
    """
    return _qc.in_flight(as_f64(start, "start"), _end(end), as_f64(at, "at"))


class PeakInFlight(NamedTuple):
    """Peak concurrency and the first time it is reached (``None`` without rows)."""

    peak: int
    time: float | None


def peak_in_flight(start: Any, end: Any) -> PeakInFlight:
    """Peak number of requests in the system at once, and when it is first reached.

    Same conventions as :func:`in_flight` (an end at ``t`` leaves before a start at ``t``
    enters).

    Examples
    --------
    >>> import qcore
    >>> qcore.peak_in_flight([0, 1, 3], [2, 4, 5])
    PeakInFlight(peak=2, time=1.0)
    """
    c, t = _qc.peak_in_flight(as_f64(start, "start"), _end(end))
    return PeakInFlight(int(c), t)


def in_flight_peaks(start: Any, end: Any, *, t0: float, width: float, n: int) -> npt.NDArray[np.int64]:
    """Peak concurrency in each of ``n`` windows ``[t0 + k·width, t0 + (k+1)·width)``.

    The maximum of :func:`in_flight`'s step function over each window, exact (not the
    count sampled at the window edges, which misses a burst inside a window). Over windows
    that cover the log, the largest value is :func:`peak_in_flight`'s peak. Same
    conventions as :func:`in_flight`.

    Raises
    ------
    ValueError
        Lengths differ, NaN in ``start``, infinite ``end``, a non-finite ``t0``, a
        ``width`` that is not positive, a negative ``n``.

    Examples
    --------
    >>> import qcore
    >>> qcore.in_flight_peaks([0, 1, 3], [2, 4, 5], t0=0, width=2.5, n=2).tolist()
    [2, 2]
    >>> qcore.in_flight(start=[0, 1, 3], end=[2, 4, 5], at=[0, 2.5]).tolist()   # the edges see 1, 1
    [1, 1]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidArgumentError(f"n must be a whole number of windows >= 0, got {n!r}")
    return _qc.in_flight_peaks(as_f64(start, "start"), _end(end), float(t0), float(width), int(n))


@dataclass(frozen=True)
class GaugeCheck:
    """Paired comparison of the logs' in-flight count with an in-flight gauge.

    ``discrepancy`` = mean(logs − gauge) / mean(gauge) at the gauge's sample times (negative
    when the logs miss requests) with ``discrepancy_ci``; ``mismatch`` = mean |logs − gauge| /
    mean(gauge) with its upper bound ``mismatch_upper`` (catches clock offsets, which move
    the in-flight count both ways). ``within_tolerance``: the interval lies within
    ±tolerance and the upper bound is at most the tolerance.
    """

    samples: int
    gauge_mean: float
    logs_mean: float
    discrepancy: float
    discrepancy_ci: tuple[float, float]
    mismatch: float
    mismatch_upper: float
    autocorrelation: float
    gauge_gap: float
    exact_agreement: float
    within_tolerance: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LittleResult:
    """Result of :func:`littles_law`. ``holds`` is true when ``flags`` is empty."""

    t0: float
    t1: float
    L: float
    arrival_rate: float
    mean_response: float
    lambda_w: float
    gap: float
    edge_term: float
    edge_bound: float
    in_flight_t0: int
    in_flight_t1: int
    rows: int
    arrivals: int
    running: int
    negative_durations: int
    tolerance: float
    flags: tuple[str, ...]
    holds: bool
    gauge: GaugeCheck | None

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["flags"] = list(self.flags)
        d["gauge"] = None if self.gauge is None else self.gauge.as_dict()
        return d


def _gauge_check(g: dict[str, Any]) -> GaugeCheck:
    g = dict(g)
    g["discrepancy_ci"] = tuple(g["discrepancy_ci"])
    return GaugeCheck(**g)


def _little_result(d: dict[str, Any]) -> LittleResult:
    g = d.pop("gauge")
    d["flags"] = tuple(d["flags"])
    return LittleResult(gauge=None if g is None else _gauge_check(g), **d)


def _gauge_arrays(
    in_flight_times: Any, in_flight_counts: Any
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """The gauge arrays of :func:`littles_law` as float64 (both or neither), or ``None``."""
    if (in_flight_times is None) != (in_flight_counts is None):
        missing = "in_flight_counts" if in_flight_counts is None else "in_flight_times"
        raise InvalidArgumentError(f"{missing} is required when the other gauge array is given")
    if in_flight_times is None:
        return None
    return as_f64(in_flight_times, "in_flight_times"), as_f64(in_flight_counts, "in_flight_counts")


def littles_law(
    start: Any,
    end: Any,
    t0: float | None = None,
    t1: float | None = None,
    in_flight_times: Any = None,
    in_flight_counts: Any = None,
    tolerance: float = 0.02,
    confidence: float = 0.95,
) -> LittleResult:
    """Check Little's law ``L = λW`` on a request log, optionally against an in-flight gauge.

    Parameters
    ----------
    start, end : array-like of float
        Arrival and departure time of each request (s). NaN end: still running.
    t0, t1 : float, optional
        Observation window; defaults: the first start and the end of the log (the latest
        end or start).
    in_flight_times, in_flight_counts : array-like of float, optional
        Samples of an independent in-flight gauge (for example the server's metric): its
        sample times and values. Both or neither. Samples outside ``[t0, t1]`` are ignored;
        at least two must remain.
    tolerance : float
        Relative tolerance for the gap and the gauge comparison (default 2 %).
    confidence : float
        Level of the gauge comparison's intervals.

    Returns
    -------
    LittleResult
        ``L``: the exact time average of the in-flight count over the window (the sum of
        the request intervals clipped to the window, divided by its length).
        ``arrival_rate``: arrivals in ``[t0, t1)`` / window length. ``mean_response``: mean
        response of those arrivals. ``gap`` = |L − λW| / L. ``edge_term`` = λW − L exactly
        (work past ``t1`` of window arrivals minus work inside the window of requests
        present at ``t0``) and ``edge_bound`` ≥ |edge_term|: if ``edge_bound / L`` is small,
        the window is long enough for λW to stand for L. Over the whole log the gap is zero
        by construction, so missing rows show only against a gauge: ``gauge`` pairs the
        logs' in-flight count with the gauge at the gauge's own sample times (see
        :class:`GaugeCheck`).

        ``flags`` lists the problems found: ``running_requests`` (NaN ends),
        ``negative_durations`` (end < start: skewed clocks), ``edge_effect`` (gap above
        tolerance), ``gauge_discrepancy`` (the paired mean difference is not within
        ±tolerance: rows missing or extra, or a clock offset between start and end),
        ``gauge_mismatch`` (the mean absolute paired difference exceeds the tolerance: for
        example the logs' clock is offset from the gauge's), ``empty_window``.

    Raises
    ------
    ValueError
        Lengths differ, NaN start, infinite end, ``t1 ≤ t0``, only one of the gauge arrays,
        fewer than two gauge samples, negative gauge values.

    Examples
    --------
    >>> import qcore
    >>> r = qcore.littles_law([0.0, 1.0, 3.0], [2.0, 4.0, 5.0])
    >>> round(r.L, 3), round(r.lambda_w, 3), r.holds
    (1.4, 1.4, True)
    """
    s = as_f64(start, "start")
    e = _end(end)
    gauge = _gauge_arrays(in_flight_times, in_flight_counts)
    gt, gc = (None, None) if gauge is None else gauge
    d = _qc.littles_law(
        s,
        e,
        None if t0 is None else float(t0),
        None if t1 is None else float(t1),
        gt,
        gc,
        float(tolerance),
        float(confidence),
    )
    return _little_result(d)


def littles_law_by(
    df: Any,
    start: str,
    end: str,
    by: str | Sequence[str],
    t0: float | None = None,
    t1: float | None = None,
    tolerance: float = 0.02,
    gauge: Any = None,
    gauge_time: str = "time",
    gauge_count: str = "in_flight",
    confidence: float = 0.95,
) -> Any:
    """Per-group :func:`littles_law` over a polars DataFrame (one pass in the core).

    Parameters
    ----------
    df : polars.DataFrame
        The request log.
    start, end : str
        Columns of arrival and departure times (float seconds; null end = still running).
    by : str or list of str
        Group keys (for example endpoint, model version, replica).
    t0, t1 : float, optional
        A common window; by default each group uses its own span.
    gauge : polars.DataFrame, optional
        Samples of an independent in-flight gauge per group (for example the server's
        in-flight metric per replica): the key columns ``by``, a sample-time column
        ``gauge_time`` and a value column ``gauge_count``. Each group's log is compared
        with its own gauge, paired at the gauge's sample times, as in :func:`littles_law`;
        a group with rows but fewer than two gauge samples in its window is flagged
        ``gauge_missing``.
    confidence : float
        Level of the gauge comparison's intervals.

    Returns
    -------
    polars.DataFrame
        One row per group: the keys, ``rows, arrivals, L, arrival_rate, mean_response,
        lambda_w, gap, edge_term, edge_bound, running, negative_durations, holds, flags``
        (flags as a list of strings) and ``error`` (why a group could not be evaluated,
        otherwise null). With a gauge, also ``gauge_samples, gauge_discrepancy,
        gauge_ci_lo, gauge_ci_hi, gauge_mismatch, gauge_within_tolerance``; the gauge's
        flags are added to ``flags`` and ``holds`` requires them to be absent.

    Examples
    --------
    >>> import polars as pl, qcore
    >>> df = pl.DataFrame({"s": [0.0, 1.0, 0.0], "e": [2.0, 3.0, 1.0], "r": ["a", "a", "b"]})
    >>> qcore.littles_law_by(df, "s", "e", "r").select("r", "L", "holds").sort("r").rows()
    [('a', 1.3333333333333333, True), ('b', 1.0, True)]
    """
    import polars as pl

    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [start, end, *keys] if c not in df.columns]
    if missing:
        raise InvalidArgumentError(f"df has no column(s) {missing}")
    from qcore.pipeline.groups import dense_codes

    _, codes, groups = dense_codes(df.select(keys), keys)
    n_groups = groups.height
    out = _qc.littles_law_grouped(
        np.ascontiguousarray(codes, dtype=np.int64),
        as_f64(df.get_column(start), start),
        _end(df.get_column(end)),
        n_groups,
        None if t0 is None else float(t0),
        None if t1 is None else float(t1),
        float(tolerance),
    )
    cols = [
        "rows",
        "arrivals",
        "L",
        "arrival_rate",
        "mean_response",
        "lambda_w",
        "gap",
        "edge_term",
        "edge_bound",
        "running",
        "negative_durations",
        "holds",
    ]
    data: dict[str, list[Any]] = {c: [] for c in [*cols, "flags", "error"]}
    for d in out:
        err = d.get("error")
        for c in cols:
            data[c].append(None if err else d[c])
        data["flags"].append(None if err else list(d["flags"]))
        data["error"].append(err)
    res = pl.DataFrame(
        data,
        schema={
            "rows": pl.Int64,
            "arrivals": pl.Int64,
            "L": pl.Float64,
            "arrival_rate": pl.Float64,
            "mean_response": pl.Float64,
            "lambda_w": pl.Float64,
            "gap": pl.Float64,
            "edge_term": pl.Float64,
            "edge_bound": pl.Float64,
            "running": pl.Int64,
            "negative_durations": pl.Int64,
            "holds": pl.Boolean,
            "flags": pl.List(pl.String),
            "error": pl.String,
        },
    )
    res = pl.concat([groups.select(keys), res], how="horizontal")
    if gauge is None:
        return res
    return _with_gauge(df, res, keys, start, end, t0, t1, tolerance, confidence,
                       gauge, gauge_time, gauge_count)


def _with_gauge(
    df: Any,
    res: Any,
    keys: list[str],
    start: str,
    end: str,
    t0: float | None,
    t1: float | None,
    tolerance: float,
    confidence: float,
    gauge: Any,
    gauge_time: str,
    gauge_count: str,
) -> Any:
    """Add the per-group paired gauge comparison to a :func:`littles_law_by` result."""
    import polars as pl

    missing = [c for c in [*keys, gauge_time, gauge_count] if c not in gauge.columns]
    if missing:
        raise InvalidArgumentError(f"gauge has no column(s) {missing}")
    log_parts = df.partition_by(keys, as_dict=True, maintain_order=True)
    gauge_parts = gauge.partition_by(keys, as_dict=True, maintain_order=True)
    extra: dict[str, list[Any]] = {
        "gauge_samples": [], "gauge_discrepancy": [], "gauge_ci_lo": [], "gauge_ci_hi": [],
        "gauge_mismatch": [], "gauge_within_tolerance": [],
    }
    flags_out: list[Any] = []
    holds_out: list[Any] = []
    for row in res.iter_rows(named=True):
        key = tuple(row[k] for k in keys)
        flags = row["flags"]
        holds = row["holds"]
        g = None
        if row["error"] is None:
            part = log_parts.get(key)
            gpart = gauge_parts.get(key)
            if part is not None and gpart is not None:
                try:
                    g = littles_law(
                        part.get_column(start), part.get_column(end), t0=t0, t1=t1,
                        in_flight_times=gpart.get_column(gauge_time),
                        in_flight_counts=gpart.get_column(gauge_count),
                        tolerance=tolerance, confidence=confidence,
                    )
                except ValueError:
                    g = None
            if g is None or g.gauge is None:
                flags = [*flags, "gauge_missing"]
                holds = False
            else:
                flags = sorted(set(flags) | set(g.flags))
                holds = bool(holds and g.holds)
        gc = None if g is None else g.gauge
        extra["gauge_samples"].append(None if gc is None else gc.samples)
        extra["gauge_discrepancy"].append(None if gc is None else gc.discrepancy)
        extra["gauge_ci_lo"].append(None if gc is None else gc.discrepancy_ci[0])
        extra["gauge_ci_hi"].append(None if gc is None else gc.discrepancy_ci[1])
        extra["gauge_mismatch"].append(None if gc is None else gc.mismatch)
        extra["gauge_within_tolerance"].append(None if gc is None else gc.within_tolerance)
        flags_out.append(flags)
        holds_out.append(holds)
    return res.with_columns(
        pl.Series("flags", flags_out, dtype=pl.List(pl.String)),
        pl.Series("holds", holds_out, dtype=pl.Boolean),
    ).hstack(pl.DataFrame(extra, schema={
        "gauge_samples": pl.Int64, "gauge_discrepancy": pl.Float64, "gauge_ci_lo": pl.Float64,
        "gauge_ci_hi": pl.Float64, "gauge_mismatch": pl.Float64,
        "gauge_within_tolerance": pl.Boolean,
    }))
