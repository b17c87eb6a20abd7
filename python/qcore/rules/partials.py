"""Rule metrics as mergeable partial results.

Every metric a rule can name is computed in one or more *passes*. A pass folds the rows of
one group into a small partial result (a :class:`~qcore.QuantileSketch`, integer counts, an
exact sum, a few order statistics), partial results of different row sets merge exactly,
and the merged result finishes the pass: either the :class:`MetricValue` or what the next
pass needs (a mean, a window, the ranks of a confidence interval). :func:`run_local` runs
the passes over one frame (``qcore.rules.evaluate``); ``qcore.rules.driver`` runs the
same passes over the partitions of a dask cluster and merges in a tree. Because each merge
is exact (integer counts, exact sums rounded once, byte-identical sketches, exact order
statistics), both give the same values to the last bit.

Per metric:

- ``latency_quantile``: a sketch (the estimate), then the exact order statistics that
  bound the distribution-free interval: the sketch brackets each rank, a second pass counts
  the values below the bracket and keeps the distinct values inside it.
- ``latency_mean``: ``n`` and the exact sum, then the exact sums of ``x − mean`` and
  ``(x − mean)²`` (the corrected two-pass variance).
- ``error_rate``, ``throughput``, ``null_fraction``, ``unaudited_fraction``: counts.
- ``arrival_rate``: count, first and last arrival; ``peak_to_mean`` and ``burstiness``
  then count arrivals on the group's window grid.
- ``littles_gap``: the Little's-law span, then the exact sums of the row terms
  (:mod:`qcore.pipeline`).
- ``latency_drift`` / ``rate_drift``: the two row sets' metrics side by side.
- ``freshness``: the newest event.
- ``cost_per_1k_tokens``, ``tokens_per_request``: exact sums (then, for the interval, the
  exact sums of the residuals); with a ``price``, the served span and the exact token sum.
- ``ttft_quantile``, ``tpot_quantile``, ``itl_quantile``: as ``latency_quantile``.
- ``token_goodput``: the served span, counts and the exact sum of the output tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

import qcore
from qcore import _qcore as _qc
from qcore._convert import as_f64
from qcore.little import _little_result
from qcore.pipeline.tasks import merge_max, merge_min
from qcore.rules import metrics as _m
from qcore.rules.metrics import MetricValue, _col
from qcore.tail import widen_for_sketch

__all__ = ["STAGED", "FSum", "GroupView", "Staged", "metric_of", "quantile_with_ci", "run_local"]

# --------------------------------------------------------------------------------------
# Building blocks


class FSum:
    """Exact sum of doubles (rounded once when read), mergeable. A NaN or infinite value
    makes the sum NaN, as a float sum would be."""

    __slots__ = ("bad", "s")

    def __init__(self) -> None:
        self.s = _qc.ExactSum()
        self.bad = False

    @classmethod
    def of(cls, x: npt.NDArray[np.float64]) -> FSum:
        out = cls()
        out.add(x)
        return out

    def add(self, x: npt.NDArray[np.float64]) -> None:
        x = np.ascontiguousarray(x, dtype=np.float64)
        fin = np.isfinite(x)
        if not fin.all():
            self.bad = True
            x = x[fin]
        self.s.add(x)

    def merged(self, other: FSum) -> FSum:
        out = FSum()
        out.s.merge(self.s)
        out.s.merge(other.s)
        out.bad = self.bad or other.bad
        return out

    @property
    def value(self) -> float:
        return math.nan if self.bad else self.s.value

    def __getstate__(self) -> tuple[bool, _qc.ExactSum]:
        return (self.bad, self.s)

    def __setstate__(self, state: tuple[bool, _qc.ExactSum]) -> None:
        self.bad, self.s = state


def _tokens(frame: pl.DataFrame, rule: Any) -> npt.NDArray[np.float64]:
    """The tokens a rule counts per row (``tokens``: prompt + output, or output)."""
    cols = _m.token_columns(rule)
    out = _col(frame, cols[0])
    for c in cols[1:]:
        out = out + _col(frame, c)
    return out


Served = tuple[int, float | None, float | None]


def served_part(frame: pl.DataFrame) -> Served:
    """(rows, first start, last end or start): the partial of the time a log's requests
    were served over."""
    if frame.height == 0:
        return (0, None, None)
    last = frame.get_column("end").max() if "end" in frame.columns else None
    s = frame.get_column("start")
    return (frame.height, float(s.min()), merge_max(None if last is None else float(last), float(s.max())))  # type: ignore[arg-type]


def merge_served(a: Served, b: Served) -> Served:
    return (a[0] + b[0], merge_min(a[1], b[1]), merge_max(a[2], b[2]))


def served_seconds(p: Served, st: State) -> float | None:
    """The seconds a fleet served the rows over: the rule's window when it has one, else
    from the first arrival to the last end (the newest event) of the rows."""
    if st["window"] is not None:
        t0, t1 = st["window"]
        return float(t1 - t0)
    if p[0] == 0 or p[1] is None or p[2] is None:
        return None
    return p[2] - p[1]


@dataclass
class GroupView:
    """The rows of one rule group that a metric may use (all of them in one frame, or the
    part of them in one partition).

    ``rows``: the group's rows inside the rule's window; ``all``: all the group's rows;
    ``ref``: the rule's reference rows (or None); ``span``: the evaluation window
    ``(t0, t1)`` (the rule's window, else the span of the rule's rows); ``window``: the
    rule's window or None; ``now``: the evaluation time.
    """

    rows: pl.DataFrame
    all: pl.DataFrame
    ref: pl.DataFrame | None
    span: tuple[float, float]
    window: tuple[float, float] | None
    now: float
    extra: dict[str, Any] = field(default_factory=dict)


State = dict[str, Any]


class Staged:
    """A metric in passes: ``part(k, view, rule, st)`` per row set, ``merge(k, a, b)``,
    then ``done(k, p, rule, st)`` returns the :class:`MetricValue`, or None when pass
    ``k + 1`` is needed (``st`` carries what it needs)."""

    def init(self, v: GroupView, rule: Any) -> State:
        """The state before pass 0 (the view's evaluation window and time)."""
        return {"span": v.span, "window": v.window, "now": v.now}

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> Any:
        raise NotImplementedError

    def merge(self, k: int, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue | None:
        raise NotImplementedError

    def local(self, v: GroupView, rule: Any) -> MetricValue:
        return run_local(self, v, rule)


def metric_of(name: str, frame: pl.DataFrame, rule: Any) -> MetricValue:
    """Metric ``name`` over all the rows of one frame (no window, no reference)."""
    return STAGED[name].local(GroupView(frame, frame, None, (0.0, 0.0), None, 0.0), rule)


def run_local(metric: Staged, v: GroupView, rule: Any) -> MetricValue:
    """All passes of ``metric`` over the rows in ``v`` (one partition)."""
    st = metric.init(v, rule)
    k = 0
    while True:
        mv = metric.done(k, metric.part(k, v, rule, st), rule, st)
        if mv is not None:
            return mv
        k += 1


# --------------------------------------------------------------------------------------
# Counting metrics


class ErrorRate(Staged):
    def part(self, k: int, v: GroupView, rule: Any, st: State) -> tuple[int, int]:
        ok, err = v.rows.select(ok=(pl.col("outcome") == "ok").sum(), err=(pl.col("outcome") == "error").sum()).row(0)
        return int(ok or 0), int(err or 0)

    def merge(self, k: int, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return a[0] + b[0], a[1] + b[1]

    def done(self, k: int, p: tuple[int, int], rule: Any, st: State) -> MetricValue:
        ok, err = p
        n = ok + err
        # low-traffic guard: below 1/threshold requests a single error decides the rule
        default_min = math.ceil(1.0 / rule.threshold) if rule.threshold and rule.threshold > 0 else 1
        need = rule.min_samples if rule.min_samples is not None else default_min
        if n == 0:
            return MetricValue(None, 0, min_n=max(need, 1))
        lo, hi = _m.wilson_interval(err, n, rule.confidence)
        return MetricValue(err / n, n, lo, hi, max(need, 1), {"errors": err})


class Throughput(Staged):
    def part(self, k: int, v: GroupView, rule: Any, st: State) -> int:
        return int(v.rows.filter(pl.col("outcome") == "ok").height)

    def merge(self, k: int, a: int, b: int) -> int:
        return a + b

    def done(self, k: int, p: int, rule: Any, st: State) -> MetricValue:
        t0, t1 = st["span"]
        dur = t1 - t0
        need = max(rule.min_samples or 1, 1)
        if dur <= 0:
            return MetricValue(None, p, min_n=need)
        return MetricValue(p / dur, p, min_n=need, extra={"duration": dur})


class NullFraction(Staged):
    def part(self, k: int, v: GroupView, rule: Any, st: State) -> tuple[int, int]:
        return v.rows.height, int(v.rows.get_column(rule.column).null_count())

    def merge(self, k: int, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return a[0] + b[0], a[1] + b[1]

    def done(self, k: int, p: tuple[int, int], rule: Any, st: State) -> MetricValue:
        n, nulls = p
        need = max(rule.min_samples or 1, 1)
        if n == 0:
            return MetricValue(None, 0, min_n=need)
        return MetricValue(nulls / n, n, min_n=need, extra={"nulls": nulls})


class Unaudited(Staged):
    def part(self, k: int, v: GroupView, rule: Any, st: State) -> tuple[int, int, list[str]]:
        cols = list(rule.columns) or ["model_version"]
        f = v.rows
        absent = [c for c in cols if c not in f.columns]
        if absent or f.height == 0:
            return f.height, 0, absent
        bad = f.select(pl.any_horizontal([pl.col(c).is_null() for c in cols]).sum()).item()
        return f.height, int(bad), absent

    def merge(self, k: int, a: tuple[int, int, list[str]], b: tuple[int, int, list[str]]) -> tuple[int, int, list[str]]:
        return a[0] + b[0], a[1] + b[1], a[2] or b[2]

    def done(self, k: int, p: tuple[int, int, list[str]], rule: Any, st: State) -> MetricValue:
        n, bad, absent = p
        need = max(rule.min_samples or 1, 1)
        if absent:
            return MetricValue(1.0 if n else None, n, min_n=need, extra={"absent_columns": absent})
        if n == 0:
            return MetricValue(None, 0, min_n=need)
        return MetricValue(bad / n, n, min_n=need, extra={"rows_without_lineage": bad})


class Freshness(Staged):
    """The newest event: the largest end time, else the largest start time."""

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> tuple[int, float | None, float | None]:
        return newest_part(v.rows)

    def merge(self, k: int, a: Any, b: Any) -> tuple[int, float | None, float | None]:
        return merge_newest(a, b)

    def done(self, k: int, p: tuple[int, float | None, float | None], rule: Any, st: State) -> MetricValue:
        newest = newest_of(p)
        if newest is None:
            return MetricValue(None, 0)
        return MetricValue(st["now"] - newest, p[0], extra={"newest_event": newest, "now": st["now"]})


def newest_part(df: pl.DataFrame) -> tuple[int, float | None, float | None]:
    """(rows, largest end, largest start) of a frame: the partial of its newest event."""
    if df.height == 0:
        return (0, None, None)
    e = df.get_column("end").max() if "end" in df.columns else None
    s = df.get_column("start").max()
    return (df.height, None if e is None else float(e), None if s is None else float(s))  # type: ignore[arg-type]


def merge_newest(a: Any, b: Any) -> tuple[int, float | None, float | None]:
    return (a[0] + b[0], merge_max(a[1], b[1]), merge_max(a[2], b[2]))


def newest_of(p: tuple[int, float | None, float | None]) -> float | None:
    """The newest event of a merged partial (as a frame's newest event is read)."""
    if p[0] == 0:
        return None
    return p[1] if p[1] is not None else p[2]


# --------------------------------------------------------------------------------------
# Latency


@dataclass
class _Bracket:
    """Pass 2 of an order statistic: values below ``lo`` counted, distinct values in
    ``[lo, hi]`` kept with their counts."""

    below: int = 0
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _bracket_part(x: npt.NDArray[np.float64], lo: float, hi: float) -> _Bracket:
    inside = x[(x >= lo) & (x <= hi)]
    vals, cnt = np.unique(inside, return_counts=True)
    return _Bracket(int(np.count_nonzero(x < lo)), vals, cnt.astype(np.int64))


def _bracket_merge(a: _Bracket, b: _Bracket) -> _Bracket:
    v = np.concatenate([a.values, b.values])
    c = np.concatenate([a.counts, b.counts])
    if v.size == 0:
        return _Bracket(a.below + b.below, v, c)
    u, inv = np.unique(v, return_inverse=True)
    return _Bracket(a.below + b.below, u, np.bincount(inv, weights=c, minlength=u.size).astype(np.int64))


def _bracket_pick(b: _Bracket, rank: int) -> tuple[str, float | None]:
    """The value of 1-based ``rank`` if the bracket holds it, else which side it lies on."""
    if rank <= b.below:
        return "below", None
    cum = np.cumsum(b.counts)
    inside = int(cum[-1]) if cum.size else 0
    if rank > b.below + inside:
        return "above", None
    i = int(np.searchsorted(cum, rank - b.below, side="left"))
    return "ok", float(b.values[i])


class LatencyQuantile(Staged):
    """The sketch's quantile estimate and the exact order statistics of the
    distribution-free interval (:func:`qcore.quantile_ci`)."""

    def values(self, v: GroupView, rule: Any, st: State) -> npt.NDArray[np.float64]:
        return _m.latency_values(v.rows, rule.include_errors)

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> Any:
        x = self.values(v, rule, st)
        if k == 0:
            sk = qcore.QuantileSketch(relative_accuracy=_m.SKETCH_ACCURACY)
            if x.size:
                sk.add(x)
            return sk
        return {r: _bracket_part(x, lo, hi) for r, (lo, hi) in st["brackets"].items()}

    def merge(self, k: int, a: Any, b: Any) -> Any:
        if k == 0:
            out = a.copy()
            out.merge(b)
            return out
        return {r: _bracket_merge(a[r], b[r]) for r in a}

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue | None:
        need = max(rule.min_samples or 0, _m.min_samples_for_quantile(rule.quantile, rule.confidence))
        if k == 0:
            n = int(p.count)
            st["n"], st["need"] = n, need
            if n == 0:
                return MetricValue(None, 0, None, None, need, {"quantile": rule.quantile})
            st["estimate"] = float(p.quantile(rule.quantile))
            r = qcore.quantile_ranks(n, rule.quantile, rule.confidence)
            st["ranks"] = (r.lower, r.upper)
            wanted = sorted({x for x in (r.lower, r.upper) if x is not None})
            if not wanted:
                return self._finish(rule, st, {})
            st["sketch"] = p
            st["brackets"] = {rk: self._bracket(p, rk, n) for rk in wanted}
            st["found"] = {}
            return None
        found: dict[int, float] = st["found"]
        retry: dict[int, tuple[float, float]] = {}
        for rk, b in p.items():
            where, val = _bracket_pick(b, rk)
            if where == "ok":
                found[rk] = val  # type: ignore[assignment]
            else:  # the bucket's bounds missed the rank (rounding of the level): widen
                lo, hi = st["brackets"][rk]
                tries = st["tries"] = st.get("tries", 0) + 1
                if tries >= 3:
                    sk = st["sketch"]
                    retry[rk] = (float(sk.min), float(sk.max))
                else:
                    w = 8.0 * (hi - lo) + 8.0 * max(abs(lo), abs(hi)) * 2.0**-52 + 5e-324
                    retry[rk] = (lo - w, hi + w)
        if retry:
            st["brackets"] = retry  # the ranks found are kept in st["found"]
            return None
        return self._finish(rule, st, found)

    @staticmethod
    def _bracket(sk: Any, rank: int, n: int) -> tuple[float, float]:
        level = 0.0 if n == 1 else (rank - 1) / (n - 1)
        lo, hi = sk.quantile_bounds(level)
        # one ulp of slack on each side: the bounds are the answering bucket's edges
        return float(np.nextafter(lo, -np.inf)), float(np.nextafter(hi, np.inf))

    @staticmethod
    def _finish(rule: Any, st: State, found: Mapping[int, float]) -> MetricValue:
        lo_r, hi_r = st["ranks"]
        lo = found.get(lo_r) if lo_r is not None else None
        hi = found.get(hi_r) if hi_r is not None else None
        lo, hi = widen_for_sketch(lo, hi, _m.SKETCH_ACCURACY, st["estimate"])
        return MetricValue(st["estimate"], st["n"], lo, hi, st["need"], {"quantile": rule.quantile})



class _Values(LatencyQuantile):
    """The passes of :class:`LatencyQuantile` over an array (``v.extra["values"]``)."""

    def values(self, v: GroupView, rule: Any, st: State) -> npt.NDArray[np.float64]:
        x: npt.NDArray[np.float64] = v.extra["values"]
        return x


_VALUES = _Values()


def quantile_with_ci(values: npt.NDArray[np.float64], q: float,
                     confidence: float) -> tuple[float | None, float | None, float | None]:
    """(estimate from a :class:`~qcore.QuantileSketch`, CI low, CI high) of the values: the
    rules' quantile metric over one array (the exact order statistics' interval widened by
    the sketch's accuracy, :func:`qcore.tail.widen_for_sketch`, so it holds the estimate);
    CI bounds None when undefined.

    >>> import numpy as np
    >>> est, lo, hi = quantile_with_ci(np.arange(1.0, 1001.0), 0.5, 0.95)
    >>> lo <= est <= hi, abs(est - 500.5) < 0.01 * 500.5
    (True, True)
    """
    x = np.ascontiguousarray(values, dtype=np.float64)
    if x.size == 0:
        return (None, None, None)
    rule = SimpleNamespace(quantile=float(q), confidence=float(confidence), min_samples=None)
    empty = pl.DataFrame()
    mv = run_local(_VALUES, GroupView(empty, empty, None, (0.0, 0.0), None, 0.0, {"values": x}), rule)
    return (mv.value, mv.ci_lo, mv.ci_hi)


class LlmQuantile(LatencyQuantile):
    """``ttft_quantile`` / ``tpot_quantile`` / ``itl_quantile``: the passes of
    :class:`LatencyQuantile` over the ``ttft`` or ``tpot`` column, or every gap of the
    ``itl`` lists."""

    def values(self, v: GroupView, rule: Any, st: State) -> npt.NDArray[np.float64]:
        return _m.llm_values(v.rows, rule.metric.split("_")[0], rule.include_errors)


class LatencyMean(Staged):
    def part(self, k: int, v: GroupView, rule: Any, st: State) -> Any:
        x = _m.latency_values(v.rows, rule.include_errors)
        if k == 0:
            return (int(x.size), FSum.of(x))
        d = x - st["mean"]
        return (FSum.of(d), FSum.of(d * d))

    def merge(self, k: int, a: Any, b: Any) -> Any:
        if k == 0:
            return (a[0] + b[0], a[1].merged(b[1]))
        return (a[0].merged(b[0]), a[1].merged(b[1]))

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue | None:
        if k == 0:
            n, s = p
            if n == 0:
                return MetricValue(None, 0, min_n=max(rule.min_samples or 1, 1))
            st["n"], st["mean"] = n, s.value / n
            if n == 1 or not math.isfinite(st["mean"]):
                return MetricValue(st["mean"], n, None, None, max(rule.min_samples or 2, 2))
            return None
        n, m = st["n"], st["mean"]
        lo, hi = _qc.mean_interval(n, m, p[0].value, p[1].value, 1.0, rule.confidence)
        return MetricValue(m, n, lo, hi, max(rule.min_samples or 2, 2))


# --------------------------------------------------------------------------------------
# Arrivals


def _merged(a: Any, b: Any) -> Any:
    """The merge of two of the core's accumulators (neither changed)."""
    out = a.copy()
    out.merge(b)
    return out


def _f64(frame: pl.DataFrame, name: str) -> npt.NDArray[np.float64]:
    """A column as the core's accumulators take it (contiguous, aligned float64)."""
    return as_f64(_col(frame, name), name)


class Arrival(Staged):
    """``arrival_rate`` (count and span), ``peak_to_mean`` and ``burstiness`` (plus the
    counts on the group's window grid): the two passes of the core's
    :class:`qcore.ArrivalAccumulator`, finished as :func:`qcore.arrival_stats` finishes
    them (the inter-arrival CV, which needs the rows in time order, is not used)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def frame(self, v: GroupView) -> pl.DataFrame:
        return v.rows

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> Any:
        acc = _qc.ArrivalAccumulator() if k == 0 else st["grid"].copy()
        acc.update(_f64(self.frame(v), "start"))
        return acc

    def merge(self, k: int, a: Any, b: Any) -> Any:
        return _merged(a, b)

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue | None:
        need = max(rule.min_samples or 2, 2)
        n = int(p.count)
        if k == 0:
            if n < 2:
                return MetricValue(None, n, min_n=need)
            if not p.max > p.min:  # all at one instant: no rate to speak of
                return MetricValue(None, n, min_n=need, extra={"duration": 0.0})
            if self.what == "arrival_rate":
                duration, nb = _qc.arrival_grid(n, p.min, p.max, float(rule.bin))
                lo, hi = _qc.garwood(n, duration, rule.confidence)
                extra = {"bin": rule.bin, "count": n, "duration": duration, "windows": nb}
                return MetricValue(_m._finite(n / duration), n, _m._finite(lo), _m._finite(hi), need, extra)
            st["grid"] = p.copy()
            st["grid"].advance(float(rule.bin))
            return None
        s = _qc.arrival_stats_from_parts(n, p.min, p.max, p.counts(), 0.0, float(rule.bin), rule.confidence, 8)
        extra = {"bin": rule.bin, "count": int(s["count"]), "duration": float(s["duration"]),
                 "windows": int(s["windows"])}
        val = s["peak_to_mean"] if self.what == "peak_to_mean" else s["index_of_dispersion"]
        return MetricValue(_m._finite(val), n, min_n=need, extra=extra)


# --------------------------------------------------------------------------------------
# Little's law


class LittlesGap(Staged):
    """Little's law over the rule's window (from all the group's rows), or over the rows'
    own span: the two passes of the core's :class:`qcore.LittleAccumulator`."""

    @staticmethod
    def _frame(v: GroupView) -> pl.DataFrame:
        f = v.all if v.window is not None else v.rows
        return f.filter(pl.col("outcome") != "incomplete").drop_nulls(["start", "end"])

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> Any:
        f = self._frame(v)
        if k == 0:
            acc = _qc.LittleAccumulator()
        else:
            t0, t1 = st["t"]
            acc = _qc.LittleAccumulator.window_pass(t0, t1, st["little"].last)
        acc.update(_f64(f, "start"), _f64(f, "end"))
        return acc

    def merge(self, k: int, a: Any, b: Any) -> Any:
        return _merged(a, b)

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue | None:
        need = max(rule.min_samples or 2, 2)
        if k == 0:
            if p.rows < 2:
                return MetricValue(None, p.rows, min_n=need)
            st["little"] = p
            w = st["window"]
            acc = p.copy()
            acc.advance(None if w is None else float(w[0]), None if w is None else float(w[1]))
            st["t"] = acc.window
            return None
        tol = rule.threshold if rule.threshold and rule.threshold > 0 else 0.02
        res = _little_result(p.finish(float(tol), 0.95))
        if st["window"] is not None and int(res.arrivals) < need:
            return MetricValue(None, int(res.arrivals), min_n=need)
        extra = {"L": res.L, "arrival_rate": res.arrival_rate, "mean_response": res.mean_response,
                 "edge_term": res.edge_term, "edge_bound": res.edge_bound, "flags": list(res.flags),
                 "t0": res.t0, "t1": res.t1}
        return MetricValue(_m._finite(res.gap), int(res.arrivals), min_n=need, extra=extra)


# --------------------------------------------------------------------------------------
# Drift: two row sets side by side


def _drift_rows(v: GroupView, rule: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(current, previous) rows of a drift rule: the last window against the one before,
    or the group against the reference rows."""
    if v.ref is not None:
        return v.rows, v.ref
    w = rule.window or (v.span[1] - v.span[0]) / 2.0
    t1 = v.span[1]
    cur = v.all.filter(pl.col("start") > t1 - w)
    prev = v.all.filter((pl.col("start") > t1 - 2 * w) & (pl.col("start") <= t1 - w))
    return cur, prev


class Drift(Staged):
    """|a / b − 1| of a latency quantile or an arrival rate over two row sets; the passes
    of both run side by side (a finished side keeps its value)."""

    def __init__(self, latency: bool) -> None:
        self.latency = latency

    def _inner(self) -> Staged:
        return LatencyQuantile() if self.latency else Arrival("arrival_rate")

    def init(self, v: GroupView, rule: Any) -> State:
        base = super().init(v, rule)
        return {**base, "sides": [{**base, "k": 0, "mv": None}, {**base, "k": 0, "mv": None}]}

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> Any:
        # each side's partial with the pass it belongs to (None once the side is done)
        rows = _drift_rows(v, rule)
        inner = self._inner()
        return [None if s["mv"] is not None else (s["k"], inner.part(s["k"], _with_rows(v, r), rule, s))
                for s, r in zip(st["sides"], rows, strict=True)]

    def merge(self, k: int, a: Any, b: Any) -> Any:
        inner = self._inner()
        return [None if x is None else (x[0], inner.merge(x[0], x[1], y[1])) for x, y in zip(a, b, strict=True)]

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue | None:
        inner = self._inner()
        for s, part in zip(st["sides"], p, strict=True):
            if s["mv"] is None:
                s["mv"] = inner.done(s["k"], part[1], rule, s)
                s["k"] += 1
        a, b = st["sides"]
        if a["mv"] is None or b["mv"] is None:
            return None
        return _drift_value(a["mv"], b["mv"])

    def local(self, v: GroupView, rule: Any) -> MetricValue:
        cur, ref = _drift_rows(v, rule)
        inner = self._inner()
        return _drift_value(inner.local(_with_rows(v, cur), rule), inner.local(_with_rows(v, ref), rule))


def _with_rows(v: GroupView, rows: pl.DataFrame) -> GroupView:
    return GroupView(rows, v.all, v.ref, v.span, v.window, v.now)


def _drift_value(a: MetricValue, b: MetricValue) -> MetricValue:
    n = min(a.n, b.n)
    need = max(a.min_n, b.min_n)
    extra = {"current": a.value, "reference": b.value, "n_current": a.n, "n_reference": b.n,
             "current_ci": [a.ci_lo, a.ci_hi], "reference_ci": [b.ci_lo, b.ci_hi]}
    if a.value is None or b.value is None or b.value == 0:
        return MetricValue(None, n, min_n=need, extra=extra)
    drift = abs(a.value / b.value - 1.0)
    # The drift is significant only when the two intervals do not overlap.
    overlap = None
    if None not in (a.ci_lo, a.ci_hi, b.ci_lo, b.ci_hi):
        overlap = not (a.ci_lo > b.ci_hi or b.ci_lo > a.ci_hi)  # type: ignore[operator]
    extra["intervals_overlap"] = overlap
    return MetricValue(drift, n, min_n=need, extra=extra)


# --------------------------------------------------------------------------------------
# Cost


class CostPer1k(Staged):
    """1000 · Σcost / Σtokens with a delta-method interval from the residuals
    ``cost − r · tokens`` (their exact sums and sums of squares: a corrected two-pass
    variance about 0, which is their mean up to rounding).

    With a ``price`` (a fleet's $/hour): 1000 · $/hour · served hours / Σtokens, the
    served time from :func:`served_seconds` (the GPUs are paid for while they serve, busy
    or not); no interval (the tokens are counted, the price is declared)."""

    @staticmethod
    def _rows(v: GroupView, rule: Any) -> pl.DataFrame:
        return v.rows.drop_nulls(([] if rule.price else ["cost"]) + _m.token_columns(rule))

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> Any:
        f = self._rows(v, rule)
        t = _tokens(f, rule)
        if rule.price:
            return (served_part(v.rows), FSum.of(t))
        c = _col(f, "cost")
        if k == 0:
            return (f.height, FSum.of(c), FSum.of(t))
        res = c - st["r"] * t
        return (FSum.of(res), FSum.of(res * res))

    def merge(self, k: int, a: Any, b: Any) -> Any:
        if isinstance(a[0], tuple):   # priced: the served span and the tokens
            return (merge_served(a[0], b[0]), a[1].merged(b[1]))
        if k == 0:
            return (a[0] + b[0], a[1].merged(b[1]), a[2].merged(b[2]))
        return (a[0].merged(b[0]), a[1].merged(b[1]))

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue | None:
        need = max(rule.min_samples or 1, 1)
        if rule.price:
            served, tok = p
            secs, tot = served_seconds(served, st), tok.value
            if secs is None or not secs > 0 or not tot > 0:
                return MetricValue(None, served[0], min_n=need)
            dollars = rule.price["dollars_per_hour"] * secs / 3600.0
            extra = {"dollars": dollars, "tokens": tot, "served_seconds": secs,
                     "gpu_hours": secs / 3600.0 * rule.price["gpus_per_replica"] * rule.price["replicas"],
                     "dollars_per_hour": rule.price["dollars_per_hour"]}
            return MetricValue(1000.0 * dollars / tot, served[0], min_n=need, extra=extra)
        if k == 0:
            n, c, t = p
            tot = t.value
            if n == 0 or not tot > 0:
                return MetricValue(None, n, min_n=need)
            r = c.value / tot
            st.update(n=n, r=r, mean_t=tot / n)
            if n == 1 or not math.isfinite(r):
                return MetricValue(1000 * r, n, None, None, need)
            return None
        n, r = st["n"], st["r"]
        # the delta-method interval of the ratio Σcost / Σtokens
        lo, hi = _qc.mean_interval(n, r, p[0].value, p[1].value, st["mean_t"], rule.confidence)
        return MetricValue(1000 * r, n, 1000 * lo, 1000 * hi, need)


class TokensPerRequest(Staged):
    def part(self, k: int, v: GroupView, rule: Any, st: State) -> tuple[int, FSum]:
        f = v.rows.drop_nulls(_m.token_columns(rule))
        return f.height, FSum.of(_tokens(f, rule))

    def merge(self, k: int, a: tuple[int, FSum], b: tuple[int, FSum]) -> tuple[int, FSum]:
        return a[0] + b[0], a[1].merged(b[1])

    def done(self, k: int, p: tuple[int, FSum], rule: Any, st: State) -> MetricValue:
        n, s = p
        need = max(rule.min_samples or 1, 1)
        if n == 0:
            return MetricValue(None, 0, min_n=need)
        return MetricValue(s.value / n, n, min_n=need)


class TokenGoodput(Staged):
    """Σ output tokens of the finished requests meeting every objective of the rule's
    ``slo`` (:func:`qcore.rules.metrics.slo_met`) over the served seconds
    (:func:`served_seconds`): vLLM's token goodput."""

    def part(self, k: int, v: GroupView, rule: Any, st: State) -> tuple[Served, int, int, FSum]:
        f = v.rows
        ok = f.filter(pl.col("outcome") == "ok")
        met = ok.filter(_m.slo_met(rule.slo))
        return (served_part(f), ok.height, met.height, FSum.of(_col(met.drop_nulls("tokens_out"), "tokens_out")))

    def merge(self, k: int, a: Any, b: Any) -> tuple[Served, int, int, FSum]:
        return (merge_served(a[0], b[0]), a[1] + b[1], a[2] + b[2], a[3].merged(b[3]))

    def done(self, k: int, p: Any, rule: Any, st: State) -> MetricValue:
        served, ok, met, tok = p
        need = max(rule.min_samples or 1, 1)
        secs = served_seconds(served, st)
        extra = {"finished": ok, "meeting_slo": met, "attainment": met / ok if ok else None,
                 "output_tokens": tok.value, "served_seconds": secs, "slo": dict(rule.slo)}
        if secs is None or not secs > 0:
            return MetricValue(None, ok, min_n=need, extra=extra)
        return MetricValue(_m._finite(tok.value / secs), ok, min_n=need, extra=extra)


#: metric name → its staged computation (``invalid_fraction`` reads the contract report)
STAGED: dict[str, Staged] = {
    "latency_quantile": LatencyQuantile(),
    "latency_mean": LatencyMean(),
    "error_rate": ErrorRate(),
    "throughput": Throughput(),
    "arrival_rate": Arrival("arrival_rate"),
    "peak_to_mean": Arrival("peak_to_mean"),
    "burstiness": Arrival("burstiness"),
    "littles_gap": LittlesGap(),
    "latency_drift": Drift(latency=True),
    "rate_drift": Drift(latency=False),
    "freshness": Freshness(),
    "null_fraction": NullFraction(),
    "unaudited_fraction": Unaudited(),
    "cost_per_1k_tokens": CostPer1k(),
    "tokens_per_request": TokensPerRequest(),
    "ttft_quantile": LlmQuantile(),
    "tpot_quantile": LlmQuantile(),
    "itl_quantile": LlmQuantile(),
    "token_goodput": TokenGoodput(),
}
