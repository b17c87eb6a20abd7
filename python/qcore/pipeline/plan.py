"""A plan: named statistics, each an accumulator of the core updated pass by pass.

A statistic says which columns it reads, how many passes it needs, and how to start,
update, merge, advance (from one pass to the next) and finish its accumulator. The
accumulators are the core's (:class:`qcore.ArrivalAccumulator`,
:class:`qcore.LittleAccumulator`, :class:`qcore.QuantileSketch`) or exact integer arrays,
so the result does not depend on how the rows are cut. :func:`run` drives the passes on
an executor (:mod:`qcore.pipeline.executors`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qcore import _qcore as _qc

if TYPE_CHECKING:
    from qcore.pipeline.executors import Executor

__all__ = ["Accs", "Arrivals", "accumulate", "GroupSketches", "InFlight", "Little", "Plan", "Stat", "WindowCounts", "column", "run"]


def _aligned(arr: Any) -> npt.NDArray[np.float64]:
    # Buffers received over the network (dask) can be unaligned; the core needs aligned,
    # contiguous float64.
    return np.require(arr, dtype=np.float64, requirements=["C", "A"])


def column(frame: Any, name: str) -> npt.NDArray[np.float64]:
    """A float64 numpy column of a polars or pandas frame (nulls become NaN)."""
    col = frame[name]
    if hasattr(col, "null_count") and hasattr(col, "fill_null"):  # polars
        if col.dtype.is_temporal():
            raise TypeError(f"column {name!r} has temporal dtype {col.dtype}; convert it to float seconds first")
        if not col.dtype.is_numeric():
            raise TypeError(f"column {name!r} must be numeric, got {col.dtype}")
        if col.null_count():
            col = col.cast(float).fill_null(float("nan"))
        return _aligned(col.to_numpy())
    try:
        arr = col.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise TypeError(f"column {name!r} must be numeric, got {col.dtype}") from None
    return _aligned(arr)


def _where(err: ValueError, where: str) -> ValueError:
    """The core's error naming the part it came from (after the index it names, if any)."""
    if not where:
        return err
    msg, n = re.subn(r"(at index \d+)", lambda m: m.group(1) + where, str(err), count=1)
    return type(err)(msg if n else f"{err}{where}")


class Stat:
    """One statistic of a plan (see the module docs)."""

    columns: tuple[str, ...] = ()
    passes = 1

    def new(self) -> Any:
        raise NotImplementedError

    def update(self, acc: Any, frame: Any, where: str) -> None:
        raise NotImplementedError

    def merge(self, acc: Any, other: Any) -> None:
        acc.merge(other)

    def advance(self, acc: Any) -> Any:
        """The empty accumulator of the next pass, from the merged one of this pass."""
        raise NotImplementedError

    def reorder(self, acc: Any) -> str | None:
        """The column to feed again in time order when the merged parts overlapped."""
        return None

    def finish(self, acc: Any) -> Any:
        return acc


Plan = Mapping[str, Stat]
Accs = dict[str, Any]


@dataclass(frozen=True)
class Arrivals(Stat):
    """:func:`qcore.arrival_stats` of ``time`` (two passes)."""

    time: str
    window: float = 1.0
    confidence: float = 0.95
    min_windows: int = 8
    passes = 2

    @property
    def columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.time,)

    def new(self) -> Any:
        return _qc.ArrivalAccumulator()

    def update(self, acc: Any, frame: Any, where: str) -> None:
        try:
            acc.update(column(frame, self.time))
        except ValueError as e:
            raise _where(e, where) from None

    def advance(self, acc: Any) -> Any:
        nxt = acc.copy()
        nxt.advance(self.window)
        return nxt

    def reorder(self, acc: Any) -> str | None:
        return None if acc.in_time_order else self.time

    def finish(self, acc: Any) -> Any:
        from qcore.arrivals import ArrivalStats

        return ArrivalStats(**acc.finish(self.confidence, self.min_windows))


@dataclass(frozen=True)
class Little(Stat):
    """:func:`qcore.littles_law` of ``start``/``end`` (two passes), with an optional gauge."""

    start: str
    end: str
    t0: float | None = None
    t1: float | None = None
    tolerance: float = 0.02
    confidence: float = 0.95
    gauge: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = field(default=None, compare=False)
    passes = 2

    @property
    def columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.start, self.end)

    def new(self) -> Any:
        return _qc.LittleAccumulator()

    def update(self, acc: Any, frame: Any, where: str) -> None:
        try:
            acc.update(column(frame, self.start), column(frame, self.end))
        except ValueError as e:
            raise _where(e, where) from None

    def advance(self, acc: Any) -> Any:
        nxt = acc.copy()
        g = self.gauge
        nxt.advance(self.t0, self.t1, None if g is None else g[0], None if g is None else g[1])
        return nxt

    def finish(self, acc: Any) -> Any:
        from qcore.little import _little_result

        return _little_result(acc.finish(self.tolerance, self.confidence))


class _Counts:
    """Exact int64 counts on the grid from ``start``, summed (zero-padded to the longer)."""

    __slots__ = ("c", "start")

    def __init__(self, start: float | None, c: npt.NDArray[np.int64] | None = None) -> None:
        self.start = start
        self.c: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64) if c is None else c

    def add(self, b: npt.NDArray[np.int64]) -> None:
        a = self.c
        if a.size < b.size:
            a, b = b, a
        out = a.copy()
        out[: b.size] += b
        self.c = out

    def merge(self, other: _Counts) -> None:
        self.add(other.c)

    def copy(self) -> _Counts:
        return _Counts(self.start, self.c.copy())


@dataclass(frozen=True)
class WindowCounts(Stat):
    """:func:`qcore.window_counts` of ``time`` (a first pass finds ``start`` unless given)."""

    time: str
    window: float
    start: float | None = None
    end: float | None = None

    @property
    def columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.time,)

    @property
    def passes(self) -> int:  # type: ignore[override]
        return 1 if self.start is not None else 2

    def new(self) -> Any:
        return _qc.ArrivalAccumulator() if self.start is None else _Counts(self.start)

    def update(self, acc: Any, frame: Any, where: str) -> None:
        ts = column(frame, self.time)
        try:
            if not isinstance(acc, _Counts):
                acc.update(ts)
            elif acc.start is not None:
                acc.add(_qc.window_counts(ts, self.window, acc.start, self.end))
        except ValueError as e:
            raise _where(e, where) from None

    def advance(self, acc: Any) -> Any:
        return _Counts(acc.min if acc.count else None)

    def finish(self, acc: Any) -> Any:
        if self.end is not None and acc.start is not None:  # the grid's own length
            acc.add(_qc.window_counts(np.zeros(0), self.window, acc.start, self.end))
        return acc.c


@dataclass(frozen=True)
class InFlight(Stat):
    """:func:`qcore.in_flight` of ``start``/``end`` at the times ``at`` (int64, summed)."""

    start: str
    end: str
    at: npt.NDArray[np.float64] = field(compare=False)

    @property
    def columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.start, self.end)

    def new(self) -> Any:
        return _Counts(0.0, np.zeros(self.at.size, dtype=np.int64))

    def update(self, acc: Any, frame: Any, where: str) -> None:
        try:
            acc.add(_qc.in_flight(column(frame, self.start), column(frame, self.end), _aligned(self.at)))
        except ValueError as e:
            raise _where(e, where) from None

    def finish(self, acc: Any) -> Any:
        return acc.c


@dataclass(frozen=True)
class GroupSketches(Stat):
    """One :class:`~qcore.QuantileSketch` per distinct key of ``keys`` over ``value``
    (:func:`qcore.pipeline.groups.group_sketches_of` per part, merged exactly)."""

    keys: tuple[str, ...]
    value: str
    relative_accuracy: float = 0.01
    weights: str | None = None
    drop_nulls: bool = False

    @property
    def columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*self.keys, self.value) + ((self.weights,) if self.weights is not None else ())

    def new(self) -> Any:
        from qcore.pipeline.groups import Groups

        return Groups()

    def update(self, acc: Any, frame: Any, where: str) -> None:
        from qcore.pipeline.groups import group_sketches_of

        acc.merge_dict(group_sketches_of(frame, list(self.keys), self.value, self.relative_accuracy,
                                         self.weights, self.drop_nulls))

    def finish(self, acc: Any) -> Any:
        return dict(acc.sketches)


def run(plan: Plan, executor: Executor) -> dict[str, Any]:
    """Run every statistic of ``plan`` on ``executor``: one read of the data per pass for
    all the statistics still in it; each result finished from its merged accumulator."""
    merged = accumulate(plan, executor)
    return {n: plan[n].finish(merged[n]) for n in plan}


def accumulate(plan: Plan, executor: Executor) -> Accs:
    """The merged last-pass accumulator of every statistic of ``plan`` (before finishing)."""
    templates: Accs = {n: st.new() for n, st in plan.items()}
    merged: Accs = {}
    p = 0
    while templates:
        out = executor.fold(plan, templates)
        nxt: Accs = {}
        for n, acc in out.items():
            if plan[n].passes > p + 1:
                nxt[n] = plan[n].advance(acc)
            else:
                col = plan[n].reorder(acc)
                if col is not None:  # the parts overlapped in time: pass again, in time order
                    acc = executor.sorted_by(col).fold(plan, {n: templates[n]})[n]
                merged[n] = acc
        templates, p = nxt, p + 1
    return merged
