"""The analysis functions of the pipeline: window counts, arrival statistics, Little's
law, in-flight counts and per-group quantiles of a log of any size.

Each function builds a plan of the core's accumulators (:class:`qcore.ArrivalAccumulator`,
:class:`qcore.LittleAccumulator`, one :class:`~qcore.QuantileSketch` per group, exact
integer counts) and runs it on an executor of :mod:`qcore.pipeline`:
``pipeline.InMemory(frame)``, ``pipeline.Dask(ddf)``, or by default
``pipeline.Batched(source, batch_rows)``, which reads a Parquet data set (a path, a glob or
a list of paths, or a polars ``LazyFrame``) in bounded batches through the polars
streaming engine. The accumulators are exact, so every executor, batch size and
partitioning gives the same result, bit for bit, as the in-memory functions of
:mod:`qcore` (which are the same accumulators over one array). They report what they read
(:class:`ReadReport`); their memory is bounded by the batch, not the data
(``benches/test_bench_dask.py`` measures it).

:mod:`qcore.outofcore` is these functions under their first name, and :mod:`qcore.dask`
runs them on a dask DataFrame.

Examples
--------
>>> import os, tempfile, numpy as np, polars as pl
>>> from qcore.pipeline import analysis
>>> d = tempfile.mkdtemp()
>>> pl.DataFrame({"t": np.arange(1000.0), "lat": np.linspace(0.1, 2.0, 1000)}).write_parquet(
...     os.path.join(d, "part-0.parquet"))
>>> r = analysis.window_counts(os.path.join(d, "*.parquet"), "t", window=100.0, batch_rows=256)
>>> r.value.tolist()
[100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
>>> r.read.batches, r.read.rows
(4, 1000)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qcore import _qcore as _qc
from qcore import pipeline as _pp
from qcore._convert import as_f64
from qcore.arrivals import ArrivalStats
from qcore.little import LittleResult, _gauge_arrays
from qcore.pipeline import DEFAULT_BATCH_ROWS, Source, quantile_frame, scan_batches
from qcore.pipeline.groups import GroupSketchMap as GroupSketches
from qcore.pipeline.groups import group_sketches_of
from qcore.pipeline.groups import keys_of as _keys

__all__ = [
    "Analysis",
    "OutOfCoreResult",
    "ReadReport",
    "analyze",
    "arrival_stats",
    "group_quantiles",
    "group_sketches",
    "in_flight",
    "littles_law",
    "scan_batches",
    "window_counts",
]

__all__ += ["DEFAULT_BATCH_ROWS", "GroupSketches", "Source", "group_sketches_of", "quantile_frame"]


@dataclass(frozen=True)
class ReadReport:
    """What a batched computation read: ``rows`` and ``batches``, and the ``batch_rows``
    asked for. Peak memory is measured around a call by the caller (see
    ``benches/memory.py``): a library call never resets the process's counters."""

    rows: int
    batches: int
    batch_rows: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OutOfCoreResult:
    """A result and what it read: ``value`` and ``read`` (:class:`ReadReport`)."""

    value: Any
    read: ReadReport


def _executor(source: Source, batch_rows: int, executor: _pp.Executor | None) -> _pp.Executor:
    if executor is not None:
        return executor
    if int(batch_rows) < 1:
        raise ValueError(f"batch_rows must be ≥ 1, got {batch_rows}")
    return _pp.Batched(source, int(batch_rows))


def _run(plan: _pp.Plan, ex: _pp.Executor, batch_rows: int) -> tuple[dict[str, Any], ReadReport]:
    out = _pp.run(plan, ex)
    return out, ReadReport(rows=ex.rows, batches=ex.batches, batch_rows=int(batch_rows))


def _key_schema(ex: _pp.Executor, keys: list[str]) -> dict[str, Any]:
    import polars as pl

    if isinstance(ex, _pp.Dask):
        meta = ex.ddf._meta if hasattr(ex.ddf, "_meta") else ex.ddf.head(0)
        return dict(pl.from_pandas(meta[keys]).schema)
    if isinstance(ex, _pp.InMemory):
        f = ex.frame if isinstance(ex.frame, pl.DataFrame) else pl.from_pandas(ex.frame)
        return {k: f.schema[k] for k in keys}
    assert isinstance(ex, _pp.Batched)
    schema = _pp.executors._lazy(ex.source).collect_schema()
    return {k: schema[k] for k in keys}


def _window(window: float) -> float:
    w = float(window)
    _qc.window_counts(np.zeros(0), w, None, None)  # the core's check and message
    return w


def _confidence(confidence: float) -> float:
    c = float(confidence)
    _qc.garwood(0, 1.0, c)  # the core's check and message
    return c


# --------------------------------------------------------------------------------------
# Public out-of-core computations


def group_sketches(
    source: Source,
    by: str | Sequence[str],
    value: str,
    relative_accuracy: float = 0.01,
    *,
    weights: str | None = None,
    drop_nulls: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    executor: _pp.Executor | None = None,
) -> OutOfCoreResult:
    """One :class:`~qcore.QuantileSketch` per key, in bounded batches.

    ``value`` is a dict ``{key tuple: sketch}``; each sketch has the same bytes as
    :func:`qcore.sketch_groups` over the whole group in memory.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"m": ["a", "b", "a"], "lat": [1.0, 2.0, 3.0]})
    >>> r = group_sketches(lf, "m", "lat", batch_rows=2)
    >>> {k: s.count for k, s in sorted(r.value.items())}
    {('a',): 2.0, ('b',): 1.0}
    """
    stat = _pp.GroupSketches(tuple(_keys(by)), value, float(relative_accuracy), weights, bool(drop_nulls))
    out, read = _run({"g": stat}, _executor(source, batch_rows, executor), batch_rows)
    return OutOfCoreResult(out["g"], read)


def group_quantiles(
    source: Source,
    by: str | Sequence[str],
    value: str,
    quantiles: Sequence[float] = (0.5, 0.99, 0.999),
    *,
    relative_accuracy: float = 0.01,
    weights: str | None = None,
    drop_nulls: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    executor: _pp.Executor | None = None,
) -> OutOfCoreResult:
    """:func:`qcore.group_quantiles` over a larger-than-memory data set.

    ``value`` is the polars frame :func:`qcore.group_quantiles` returns on the whole data
    (the same rows, counts and quantiles); ``read`` what was read.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"m": ["a", "b", "a", "b"], "lat": [1.0, 10.0, 3.0, 30.0]})
    >>> group_quantiles(lf, "m", "lat", quantiles=(0.0, 1.0), batch_rows=3).value.rows()
    [('a', 2.0, 1.0, 3.0), ('b', 2.0, 10.0, 30.0)]
    """
    keys = _keys(by)
    ex = _executor(source, batch_rows, executor)
    r = group_sketches(source, keys, value, relative_accuracy, weights=weights, drop_nulls=drop_nulls,
                       batch_rows=batch_rows, executor=ex)
    return OutOfCoreResult(quantile_frame(r.value, keys, _key_schema(ex, keys), quantiles), r.read)


def window_counts(
    source: Source,
    column: str,
    window: float,
    start: float | None = None,
    end: float | None = None,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    executor: _pp.Executor | None = None,
) -> OutOfCoreResult:
    """:func:`qcore.window_counts` of a timestamp column, in bounded batches.

    Every batch is counted on the same window grid (``start`` is the smallest timestamp
    of the data set unless given, which takes a first pass), and the int64 counts are
    summed, so ``value`` equals :func:`qcore.window_counts` over the whole column.
    Memory: one batch plus 8 bytes per window.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"t": [0.1, 0.5, 2.2, 2.9]})
    >>> window_counts(lf, "t", 1.0, batch_rows=1).value.tolist()
    [2, 0, 2]
    """
    stat = _pp.WindowCounts(column, _window(window), start, end)
    out, read = _run({"c": stat}, _executor(source, batch_rows, executor), batch_rows)
    return OutOfCoreResult(out["c"], read)


def arrival_stats(
    source: Source,
    column: str,
    window: float = 1.0,
    confidence: float = 0.95,
    min_windows: int = 8,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    executor: _pp.Executor | None = None,
) -> OutOfCoreResult:
    """:func:`qcore.arrival_stats` of a timestamp column, in bounded batches.

    Pass 1 finds the count and the first and last arrival; pass 2 counts the complete
    windows and sums the squared deviations of the inter-arrival gaps exactly over
    time-sorted runs (each batch sorted on its own; the gap between two batches is added
    when one ends before the next begins). When batches overlap in time, the timestamps
    are range-partitioned by time into temporary files of about ``batch_rows`` rows and
    each range is sorted in memory (an external sort; disk: 8 bytes per row).

    ``value`` equals :func:`qcore.arrival_stats` on the whole column, bit for bit.

    Raises ``ValueError`` as :func:`qcore.arrival_stats` does (naming the batch of a NaN).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> lf = pl.LazyFrame({"t": np.arange(0.0, 100.0, 0.5)})
    >>> r = arrival_stats(lf, "t", window=10.0, batch_rows=64)
    >>> r.value.count, r.value.rate, r.value.cv_interarrival
    (200, 2.0100502512562812, 0.0)
    """
    stat = _pp.Arrivals(column, _window(window), _confidence(confidence), int(min_windows))
    out, read = _run({"a": stat}, _executor(source, batch_rows, executor), batch_rows)
    return OutOfCoreResult(out["a"], read)


def littles_law(
    source: Source,
    start: str,
    end: str,
    t0: float | None = None,
    t1: float | None = None,
    tolerance: float = 0.02,
    confidence: float = 0.95,
    *,
    in_flight_times: Any = None,
    in_flight_counts: Any = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    executor: _pp.Executor | None = None,
) -> OutOfCoreResult:
    """:func:`qcore.littles_law` over start/end columns, in two batched passes, optionally
    against an independent in-flight gauge.

    Pass 1 finds the window and the end of the log; pass 2 sums each row's time inside
    the window, its response time and its edge work exactly, and (with a gauge:
    ``in_flight_times`` and ``in_flight_counts``, both or neither) counts the logs'
    requests in flight at the gauge times inside ``[t0, t1]`` (exact int64). A request is
    one row, so batch boundaries never cut a request. ``value`` equals
    :func:`qcore.littles_law` on the whole columns, bit for bit.

    Raises ``ValueError`` as :func:`qcore.littles_law` does, with its messages (a bad
    value in the data names its batch).

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]})
    >>> r = littles_law(lf, "s", "e", batch_rows=2).value
    >>> round(r.L, 3), round(r.lambda_w, 3), r.holds
    (1.4, 1.4, True)
    >>> r = littles_law(lf, "s", "e", in_flight_times=[0.5, 1.5, 3.5, 4.5],
    ...                 in_flight_counts=[1, 2, 2, 1], batch_rows=2).value
    >>> r.gauge.samples, r.gauge.exact_agreement, r.holds
    (4, 1.0, True)
    """
    stat = _little_stat(start, end, t0, t1, tolerance, confidence, in_flight_times, in_flight_counts)
    out, read = _run({"l": stat}, _executor(source, batch_rows, executor), batch_rows)
    return OutOfCoreResult(out["l"], read)


def _little_stat(start: str, end: str, t0: float | None, t1: float | None, tolerance: float, confidence: float,
                 in_flight_times: Any = None, in_flight_counts: Any = None) -> _pp.Little:
    """The plan entry of Little's law, its arguments checked before any row is read."""
    gauge = _gauge_arrays(in_flight_times, in_flight_counts)
    tol, conf = float(tolerance), float(confidence)
    _qc.LittleAccumulator.window_pass(0.0, 1.0, 1.0).finish(tol, conf)  # the core's checks
    if gauge is not None:
        _qc.gauge_window(*gauge)  # lengths, finite, no negative count, at least two samples
    return _pp.Little(start, end, None if t0 is None else float(t0), None if t1 is None else float(t1), tol, conf,
                      gauge)


def in_flight(
    source: Source, start: str, end: str, at: Any, *, batch_rows: int = DEFAULT_BATCH_ROWS,
    executor: _pp.Executor | None = None,
) -> OutOfCoreResult:
    """:func:`qcore.in_flight` over start/end columns, in bounded batches (int64 counts at
    each time of ``at``, summed over the batches: exact).

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]})
    >>> in_flight(lf, "s", "e", at=[0, 1, 2, 3.5, 5], batch_rows=2).value.tolist()
    [1, 2, 1, 2, 0]
    """
    at_arr = as_f64(at, "at")
    _qc.in_flight(np.zeros(0), np.zeros(0), at_arr)  # the core's check of `at`
    out, read = _run({"f": _pp.InFlight(start, end, at_arr)}, _executor(source, batch_rows, executor), batch_rows)
    return OutOfCoreResult(out["f"], read)


@dataclass(frozen=True)
class Analysis:
    """Results of :func:`analyze` (and of :func:`qcore.dask.report_frame`): each field is
    ``None`` unless its columns were given. ``read`` is set by the out-of-core path."""

    group_quantiles: Any = None
    group_sketches: GroupSketches | None = None
    window_counts: npt.NDArray[np.int64] | None = None
    arrival_stats: ArrivalStats | None = None
    littles_law: LittleResult | None = None
    read: ReadReport | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (sketches as their ``to_bytes()`` in hex, frames as row dicts)."""
        return {
            "group_quantiles": None if self.group_quantiles is None else self.group_quantiles.to_dicts(),
            "group_sketches": None
            if self.group_sketches is None
            else [{"key": list(k), "sketch": s.to_bytes().hex()} for k, s in self.group_sketches.items()],
            "window_counts": None if self.window_counts is None else self.window_counts.tolist(),
            "arrival_stats": None if self.arrival_stats is None else self.arrival_stats.as_dict(),
            "littles_law": None if self.littles_law is None else self.littles_law.as_dict(),
            "read": None if self.read is None else self.read.as_dict(),
        }


def analyze(
    source: Source,
    *,
    time: str | None = None,
    value: str | None = None,
    by: str | Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    window: float = 1.0,
    quantiles: Sequence[float] = (0.5, 0.99, 0.999),
    relative_accuracy: float = 0.01,
    confidence: float = 0.95,
    tolerance: float = 0.02,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    executor: _pp.Executor | None = None,
) -> Analysis:
    """Everything at once over a larger-than-memory data set, with what it read: one plan,
    one read of the data per pass for all the statistics.

    ``time`` gives window counts and arrival statistics; ``value`` per-group quantiles
    (per ``by`` key, or one group of every row: keyed ``("all",)`` in ``group_sketches``,
    a frame without key columns); ``start`` and ``end`` Little's law. ``confidence`` is the
    level of the arrival rate's interval, ``tolerance`` that of Little's law.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]})
    >>> a = analyze(lf.with_columns(lat=pl.col("e") - pl.col("s")), time="s", value="lat",
    ...             start="s", end="e", batch_rows=2)
    >>> a.window_counts.tolist(), a.group_quantiles["count"].to_list(), a.littles_law.arrivals
    ([1, 1, 0, 1], [3.0], 3)
    """
    if (start is None) != (end is None):
        raise ValueError("start and end must be given together")
    keys = [] if by is None else _keys(by)
    ex = _executor(source, batch_rows, executor)
    plan: dict[str, _pp.Stat] = {}
    if value is not None:
        plan["g"] = _pp.GroupSketches(tuple(keys), value, float(relative_accuracy))
    if time is not None:
        w = _window(window)
        plan["c"] = _pp.WindowCounts(time, w)
        plan["a"] = _pp.Arrivals(time, w, _confidence(confidence), 8)
    if start is not None and end is not None:
        plan["l"] = _little_stat(start, end, None, None, tolerance, confidence)
    out, read = _run(plan, ex, batch_rows)
    gq = gs = None
    if value is not None:
        gs = out["g"]
        gq = quantile_frame(gs, keys, _key_schema(ex, keys), quantiles)
        if not keys:  # one group of every row
            gs = {("all",): gs[()]} if gs else {}
    return Analysis(gq, gs, out.get("c"), out.get("a"), out.get("l"), read)
