"""Larger-than-memory request logs on one machine, and the mergeable partial results.

The functions here read a Parquet data set (a path, a glob or a list of paths, or a
polars ``LazyFrame``) in bounded batches through the polars streaming engine
(``LazyFrame.collect_batches``), fold each batch into a small mergeable partial result,
and report what they read (:class:`ReadReport`). Their memory is bounded by the batch, not
the data (``benches/test_bench_dask.py`` measures it).

The partial results are the same ones :mod:`qcore.dask` computes per partition on a
cluster, so a data set gives the same answer however it is cut:

- per-group quantiles: one :class:`~qcore.QuantileSketch` per key, merged exactly (the
  merged sketch has the same bytes as the sketch of the whole group);
- window counts: exact int64 counts against a common window grid, summed;
- arrival statistics: count, first and last arrival (pass 1), then the window counts
  and the squared deviations of the inter-arrival gaps over the time-sorted stream, with
  the gaps that cross a batch (or partition) boundary added when the sorted runs are
  merged in time order;
- Little's law: the row terms of :func:`qcore.littles_law` (time clipped to the window,
  response times, edge work) summed exactly; with an in-flight gauge, the logs' int64
  in-flight counts at the gauge's sample times, summed, from which the core's own
  comparison function finishes the gauge check;
- the Poisson (Garwood) interval of the arrival rate from the core's own function.

Sums of floats are kept as exact sums (the exact ``sum`` of a :class:`~qcore.QuantileSketch`,
rounded once when the result is read), so they do not depend on the order or the
grouping of the rows. The in-memory functions of :mod:`qcore` sum in fixed lanes (and
threads): their last bits can differ from the exact sums, by at most a few units in the
last place; every count, minimum, maximum and sketch, ``rate_ci``, and the gauge
comparison's counts, intervals and flags are identical.

Examples
--------
>>> import os, tempfile, numpy as np, polars as pl
>>> from qcore import outofcore
>>> d = tempfile.mkdtemp()
>>> pl.DataFrame({"t": np.arange(1000.0), "lat": np.linspace(0.1, 2.0, 1000)}).write_parquet(
...     os.path.join(d, "part-0.parquet"))
>>> r = outofcore.window_counts(os.path.join(d, "*.parquet"), "t", window=100.0, batch_rows=256)
>>> r.value.tolist()
[100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
>>> r.read.batches, r.read.rows
(4, 1000)
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

import qcore
from qcore import _qcore as _qc
from qcore._convert import as_f64
from qcore.arrivals import ArrivalStats
from qcore.exceptions import InvalidArgumentError
from qcore.little import LittleResult, _gauge_arrays, _gauge_check
from qcore.sketch import QuantileSketch, _quantile_name

__all__ = [
    "Analysis",
    "OutOfCoreResult",
    "ReadReport",
    "analyze",
    "arrival_stats",
    "group_quantiles",
    "group_sketches",
    "littles_law",
    "scan_batches",
    "window_counts",
]

DEFAULT_BATCH_ROWS = 1_000_000
_MAX_WINDOWS = 200_000_000
_ALL_LITTLE_FLAGS = ("empty_window", "running_requests", "negative_durations", "edge_effect")

# --------------------------------------------------------------------------------------
# Exact sums


class ExactSum:
    """Exact, order-independent sum of doubles, rounded once when read (mergeable,
    picklable). Backed by the exact ``sum`` of a :class:`~qcore.QuantileSketch`."""

    __slots__ = ("_sk",)

    def __init__(self) -> None:
        self._sk = QuantileSketch(relative_accuracy=0.5)

    def add(self, x: npt.NDArray[np.float64]) -> None:
        if x.size:
            self._sk.add(np.ascontiguousarray(x, dtype=np.float64))

    def merge(self, other: ExactSum) -> None:
        self._sk.merge(other._sk)

    @property
    def value(self) -> float:
        return float(self._sk.sum) if self._sk.count else 0.0

    def __getstate__(self) -> bytes:
        return bytes(self._sk.to_bytes())

    def __setstate__(self, state: bytes) -> None:
        self._sk = QuantileSketch.from_bytes(state)


# --------------------------------------------------------------------------------------
# Validation helpers


def _check_finite(x: npt.NDArray[np.float64], name: str, where: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        what = "NaN" if np.isnan(x[i]) else ("inf" if x[i] > 0 else "-inf")
        raise ValueError(f"{name} contains {what} at index {i}{where}")


def _num(v: float) -> str:
    """A float as the core's messages print it (shortest round trip, no exponent)."""
    v = float(v)
    return "NaN" if math.isnan(v) else str(np.format_float_positional(v, trim="-"))


def _check_window(window: float, name: str = "window") -> float:
    w = float(window)
    if not (math.isfinite(w) and w > 0.0):
        raise InvalidArgumentError(f"{name} must be a positive finite number of seconds, got {_num(w)}")
    return w


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not (0.0 < c < 1.0):
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {_num(c)}")
    return c


def _column(frame: Any, name: str) -> npt.NDArray[np.float64]:
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


def _aligned(arr: Any) -> npt.NDArray[np.float64]:
    # Buffers received over the network (dask) can be unaligned; the core needs aligned,
    # contiguous float64.
    return np.require(arr, dtype=np.float64, requirements=["C", "A"])


# --------------------------------------------------------------------------------------
# Partial results (shared with qcore.dask)


@dataclass
class Span:
    """Count, smallest and largest value, and sortedness of one run of timestamps."""

    n: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    sorted: bool = True


def span_of(ts: npt.NDArray[np.float64], where: str = "") -> Span:
    _check_finite(ts, "timestamps", where)
    if ts.size == 0:
        return Span()
    return Span(int(ts.size), float(ts.min()), float(ts.max()), bool(ts.size < 2 or (ts[1:] >= ts[:-1]).all()))


def merge_spans(a: Span, b: Span) -> Span:
    return Span(a.n + b.n, min(a.lo, b.lo), max(a.hi, b.hi), a.sorted and b.sorted)


def spans_in_time_order(spans: Sequence[Span]) -> bool:
    """Whether the non-empty runs are each sorted and do not overlap, in the given order."""
    prev = -math.inf
    for s in spans:
        if s.n == 0:
            continue
        if not s.sorted or s.lo < prev:
            return False
        prev = s.hi
    return True


def add_counts(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Sum of two window-count arrays on the same grid (the shorter is zero-padded)."""
    if a.size < b.size:
        a, b = b, a
    out: npt.NDArray[np.int64] = a.copy()
    out[: b.size] += b
    return out


@dataclass
class Gaps:
    """Inter-arrival gaps of a time-sorted run: count, first and last time, and the exact
    sum of ``(gap - mean_gap)**2`` over the gaps inside the run."""

    n: int
    first: float
    last: float
    ss: ExactSum


def gaps_of(sorted_ts: npt.NDArray[np.float64], mean_gap: float) -> Gaps:
    ss = ExactSum()
    if sorted_ts.size == 0:
        return Gaps(0, math.inf, -math.inf, ss)
    d = np.diff(sorted_ts) - mean_gap
    ss.add(d * d)
    return Gaps(int(sorted_ts.size), float(sorted_ts[0]), float(sorted_ts[-1]), ss)


def merge_gaps(a: Gaps, b: Gaps, mean_gap: float) -> Gaps:
    """Merge two runs where every time of ``a`` is ≤ every time of ``b`` (associative)."""
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    if b.first < a.last:
        raise RuntimeError(f"time-sorted runs overlap ({b.first} < {a.last}); they must be merged in time order")
    ss = ExactSum()
    ss.merge(a.ss)
    ss.merge(b.ss)
    d = (b.first - a.last) - mean_gap
    ss.add(np.array([d * d]))
    return Gaps(a.n + b.n, a.first, b.last, ss)


def _count_moments(c: npt.NDArray[np.int64]) -> tuple[float, float, float]:
    # (max, mean, population variance), summed left to right as the core does.
    if c.size == 0:
        return math.nan, math.nan, math.nan
    n = float(c.size)
    mean = float(int(c.sum())) / n
    d = c.astype(np.float64) - mean
    var = float(np.cumsum(d * d)[-1]) / n
    return float(int(c.max())), mean, var


def _dyadic(base: npt.NDArray[np.int64], window: float, min_windows: int) -> tuple[list[float], list[float]]:
    ws: list[float] = []
    ds: list[float] = []
    cur = base
    w = window
    while cur.size >= max(min_windows, 2):
        _, mean, var = _count_moments(cur)
        ws.append(w)
        ds.append(var / mean if mean > 0.0 else math.nan)
        half = cur.size // 2
        cur = cur[: 2 * half].reshape(half, 2).sum(axis=1)
        w *= 2.0
    return ws, ds


def garwood(k: int, exposure: float, confidence: float) -> tuple[float, float]:
    """Exact (Garwood) Poisson interval of a rate: ``k`` events over ``exposure``.

    The core's function behind :func:`qcore.arrival_stats`'s ``rate_ci``, so the interval
    is the same bit for bit. ``k`` must be an integer ≥ 0, ``exposure`` positive and
    finite, ``confidence`` in (0, 1) (else ``ValueError`` or ``TypeError`` naming it).
    """
    lo, hi = _qc.garwood(k, float(exposure), float(confidence))
    return lo, hi


def arrival_grid(span: Span, window: float) -> tuple[float, int]:
    """(duration, number of complete windows) of :func:`qcore.arrival_stats`, or its error."""
    if span.n < 2 or not span.hi > span.lo:
        raise ValueError(
            f"timestamps needs at least two arrivals at distinct times, got {span.n} value(s) spanning "
            f"{0.0 if span.n == 0 else span.hi - span.lo} s"
        )
    duration = span.hi - span.lo
    nb = math.floor(duration / window)
    if nb >= _MAX_WINDOWS:
        raise ValueError(f"window is too small: {duration} s / {window} s exceeds {_MAX_WINDOWS} windows")
    return duration, int(nb)


def finish_arrival_stats(
    span: Span,
    counts: npt.NDArray[np.int64],
    gaps: Gaps,
    window: float,
    confidence: float,
    min_windows: int,
) -> ArrivalStats:
    """Assemble :class:`~qcore.ArrivalStats` from merged partial results."""
    duration, nb = arrival_grid(span, window)
    n = span.n
    base = np.zeros(nb, dtype=np.int64)
    k = min(nb, counts.size)
    base[:k] = counts[:k]
    mx, mean, var = _count_moments(base)
    bw, b = _dyadic(base, window, min_windows)
    m = duration / (n - 1)
    cv = math.sqrt(gaps.ss.value / (n - 1)) / m
    return ArrivalStats(
        count=n,
        duration=duration,
        rate=n / duration,
        rate_ci=garwood(n, duration, confidence),
        confidence=confidence,
        window=window,
        windows=nb,
        peak_rate=mx / window,
        peak_to_mean=mx / mean,
        cv_interarrival=cv,
        index_of_dispersion=var / mean if mean > 0.0 else math.nan,
        burstiness_windows=np.array(bw, dtype=np.float64),
        burstiness=np.array(b, dtype=np.float64),
    )


@dataclass
class LittleSpan:
    """Pass 1 of Little's law: rows, first start, end of the log, running and skewed rows."""

    rows: int = 0
    first: float = math.inf
    last: float = -math.inf
    running: int = 0
    negative: int = 0


def _check_little_rows(s: npt.NDArray[np.float64], e: npt.NDArray[np.float64], where: str) -> None:
    _check_finite(s, "start", where)
    inf = np.isinf(e)
    if inf.any():
        i = int(np.argmax(inf))
        raise ValueError(
            f"end contains {'inf' if e[i] > 0 else '-inf'} at index {i}{where} (use NaN for a request still running)"
        )


def little_span_of(s: npt.NDArray[np.float64], e: npt.NDArray[np.float64], where: str = "") -> LittleSpan:
    _check_little_rows(s, e, where)
    if s.size == 0:
        return LittleSpan()
    run = np.isnan(e)
    neg = e < s
    top = np.where(run | neg, s, np.fmax(s, e))
    return LittleSpan(int(s.size), float(s.min()), float(top.max()), int(run.sum()), int(neg.sum()))


def merge_little_spans(a: LittleSpan, b: LittleSpan) -> LittleSpan:
    return LittleSpan(
        a.rows + b.rows, min(a.first, b.first), max(a.last, b.last), a.running + b.running, a.negative + b.negative
    )


@dataclass
class LittleSums:
    """Pass 2 of Little's law over the window ``[t0, t1)``: exact sums of the row terms."""

    clipped: ExactSum
    resp: ExactSum
    edge: ExactSum
    arrivals: int = 0
    n_t0: int = 0
    n_t1: int = 0
    max_resp: float = 0.0

    @classmethod
    def empty(cls) -> LittleSums:
        return cls(ExactSum(), ExactSum(), ExactSum())


def little_sums_of(
    s: npt.NDArray[np.float64], e: npt.NDArray[np.float64], t0: float, t1: float, log_end: float
) -> LittleSums:
    """The row terms of :func:`qcore.littles_law` (see ``rust/little.rs``), summed exactly."""
    out = LittleSums.empty()
    if s.size == 0:
        return out
    ee = np.where(np.isnan(e), np.where(log_end > s, log_end, s), e)
    valid = ee >= s
    lo = np.where(s > t0, s, t0)
    hi = np.where(ee < t1, ee, t1)
    d = hi - lo
    out.clipped.add(d[valid & (d > 0.0)])
    pre = valid & (s < t0) & (ee > t0)
    arr = valid & (s >= t0) & (s < t1)
    post = arr & (ee > t1)
    r = ee - s
    out.resp.add(r[arr])
    hi0 = np.where(hi > t0, hi, t0)
    out.edge.add((ee - t1)[post])
    out.edge.add(-(hi0 - t0)[pre])
    out.arrivals = int(arr.sum())
    out.n_t0 = int(pre.sum())
    out.n_t1 = int(post.sum())
    edge_rows = r[pre | post]
    out.max_resp = max(0.0, float(edge_rows.max())) if edge_rows.size else 0.0
    return out


def merge_little_sums(a: LittleSums, b: LittleSums) -> LittleSums:
    out = LittleSums.empty()
    for name in ("clipped", "resp", "edge"):
        acc = getattr(out, name)
        acc.merge(getattr(a, name))
        acc.merge(getattr(b, name))
    out.arrivals = a.arrivals + b.arrivals
    out.n_t0 = a.n_t0 + b.n_t0
    out.n_t1 = a.n_t1 + b.n_t1
    out.max_resp = max(a.max_resp, b.max_resp)
    return out


def little_window(span: LittleSpan, t0: float | None, t1: float | None) -> tuple[float, float]:
    """The window ``[t0, t1)`` :func:`qcore.littles_law` uses, or its error."""
    for name, v in (("t0", t0), ("t1", t1)):
        if v is not None and not math.isfinite(float(v)):
            raise InvalidArgumentError(f"{name} must be finite, got {_num(v)}")
    if t0 is None:
        if span.rows == 0:
            raise InvalidArgumentError("start is empty; give t0 and t1 to describe an empty window")
        t0 = span.first
    if t1 is None:
        if span.rows == 0:
            raise InvalidArgumentError("start is empty; give t1 as well")
        t1 = span.last
    t0, t1 = float(t0), float(t1)
    if t1 <= t0:
        raise InvalidArgumentError(f"t1 ({_num(t1)}) must be after t0 ({_num(t0)})")
    return t0, t1


def check_little_args(tolerance: float, confidence: float) -> tuple[float, float]:
    tol = float(tolerance)
    if not (math.isfinite(tol) and tol >= 0.0):
        raise InvalidArgumentError(f"tolerance must be a finite number ≥ 0, got {_num(tol)}")
    return tol, _check_confidence(confidence)


GaugeArrays = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def check_littles_law_args(
    t0: float | None,
    t1: float | None,
    tolerance: float,
    confidence: float,
    in_flight_times: Any = None,
    in_flight_counts: Any = None,
) -> tuple[float, float, GaugeArrays | None]:
    """The argument checks of :func:`qcore.littles_law` that need no rows, in its order and
    with its messages: ``(tolerance, confidence, gauge)``, the gauge as float64 arrays
    (``None`` without one). The window's own checks follow in :func:`little_window` and
    :func:`gauge_in_window`."""
    gauge = _gauge_arrays(in_flight_times, in_flight_counts)
    tol, conf = check_little_args(tolerance, confidence)
    for name, v in (("t0", t0), ("t1", t1)):
        if v is not None and not math.isfinite(float(v)):
            raise InvalidArgumentError(f"{name} must be finite, got {_num(v)}")
    if gauge is not None:
        _qc.gauge_window(*gauge)  # lengths, finite, no negative count, at least two samples
    return tol, conf, gauge


def gauge_in_window(gauge: GaugeArrays, t0: float, t1: float) -> GaugeArrays:
    """The gauge samples :func:`qcore.littles_law` pairs with the logs: those with
    ``t0 ≤ time ≤ t1``, in their given order (fewer than two: its error)."""
    times, counts = gauge
    idx = _qc.gauge_window(times, counts, float(t0), float(t1))
    return np.ascontiguousarray(times[idx]), np.ascontiguousarray(counts[idx])


def finish_littles_law(
    span: LittleSpan,
    sums: LittleSums,
    t0: float,
    t1: float,
    tolerance: float,
    *,
    gauge: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]] | None = None,
    confidence: float = 0.95,
) -> LittleResult:
    """Assemble :class:`~qcore.LittleResult` from merged partial results.

    ``gauge``: ``(times, counts, logs_counts)``, the gauge samples inside the window (see
    :func:`gauge_in_window`) and the logs' in-flight counts at those times summed over the
    partitions (exact int64). The comparison and its flags then come from the same core
    function as in :func:`qcore.littles_law`, at level ``confidence``.
    """
    width = t1 - t0
    arrivals = sums.arrivals
    L = sums.clipped.value / width
    arrival_rate = arrivals / width
    mean_response = sums.resp.value / arrivals if arrivals > 0 else math.nan
    lambda_w = arrival_rate * mean_response if arrivals > 0 else 0.0
    gap = abs(L - lambda_w) / L if L > 0.0 else math.nan
    flags = []
    if arrivals == 0 or L <= 0.0:
        flags.append("empty_window")
    if span.running > 0:
        flags.append("running_requests")
    if span.negative > 0:
        flags.append("negative_durations")
    if gap > tolerance:
        flags.append("edge_effect")
    gc = None
    if gauge is not None:
        times, counts, logs = gauge
        g, gflags = _qc.gauge_compare(
            _aligned(times),
            _aligned(counts),
            np.require(logs, dtype=np.int64, requirements=["C", "A"]),
            lambda_w,
            float(tolerance),
            float(confidence),
        )
        gc = _gauge_check(g)
        flags.extend(gflags)
    return LittleResult(
        t0=t0,
        t1=t1,
        L=L,
        arrival_rate=arrival_rate,
        mean_response=mean_response,
        lambda_w=lambda_w,
        gap=gap,
        edge_term=sums.edge.value / width,
        edge_bound=(sums.n_t0 + sums.n_t1) * sums.max_resp / width,
        in_flight_t0=sums.n_t0,
        in_flight_t1=sums.n_t1,
        rows=span.rows,
        arrivals=arrivals,
        running=span.running,
        negative_durations=span.negative,
        tolerance=tolerance,
        flags=tuple(flags),
        holds=not flags,
        gauge=gc,
    )


GroupSketches = dict[tuple[Any, ...], QuantileSketch]


def _keys(by: str | Sequence[str]) -> list[str]:
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ValueError("by must name at least one column")
    return keys


def group_sketches_of(
    frame: Any,
    keys: list[str],
    value: str,
    relative_accuracy: float,
    weights: str | None = None,
    drop_nulls: bool = False,
) -> GroupSketches:
    """One sketch per distinct key of a polars (or pandas) frame, built in one pass."""
    import polars as pl

    if not isinstance(frame, pl.DataFrame):
        frame = pl.from_pandas(frame)
    needed = [*keys, value] + ([weights] if weights is not None else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}; it has {frame.columns}")
    df = frame.select(needed)
    if drop_nulls:
        df = df.drop_nulls(subset=[value] + ([weights] if weights is not None else []))
    if df.height == 0:
        return {}
    # Group codes by hashing (one group_by), scattered back to the rows.
    groups = df.select(keys).with_row_index("__row").group_by(keys).agg(pl.col("__row")).with_row_index("__code")
    rows = groups.select("__row", "__code").explode("__row")
    codes = np.empty(df.height, dtype=np.int64)
    codes[rows["__row"].to_numpy()] = rows["__code"].to_numpy()
    key_rows = groups.select(keys).rows()
    w = df[weights] if weights is not None else None
    sketches = qcore.sketch_groups(codes, df[value], relative_accuracy, weights=w)
    return {tuple(k): sk for k, sk in zip(key_rows, sketches, strict=True)}


def merge_group_sketches(a: GroupSketches, b: GroupSketches) -> GroupSketches:
    out = dict(a)
    for k, sk in b.items():
        if k in out:
            merged = QuantileSketch.merge_all([out[k], sk])
            out[k] = merged
        else:
            out[k] = sk
    return out


def quantile_frame(
    groups: GroupSketches, keys: list[str], key_schema: dict[str, Any], quantiles: Sequence[float]
) -> Any:
    """The frame :func:`qcore.group_quantiles` returns, from merged group sketches."""
    import polars as pl

    qs = [float(q) for q in quantiles]
    for q in qs:
        if not (0.0 <= q <= 1.0):
            raise ValueError(f"quantiles must be in [0, 1], got {q}")
    items = list(groups.items())
    n = len(items)
    cols: dict[str, Any] = {}
    for j, k in enumerate(keys):
        cols[k] = pl.Series(k, [key[j] for key, _ in items], dtype=key_schema.get(k))
    table = np.full((n, len(qs)), np.nan)
    for i, (_, sk) in enumerate(items):
        r = sk.quantile(qs)
        if r is not None:
            table[i] = r
    cols["count"] = pl.Series("count", np.array([sk.count for _, sk in items], dtype=np.float64))
    for j, q in enumerate(qs):
        cols[_quantile_name(q)] = pl.Series(_quantile_name(q), table[:, j])
    return pl.DataFrame(cols).sort(keys, nulls_last=True)


# --------------------------------------------------------------------------------------
# Memory measurement


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


class _ReadCounter:
    """Counts the rows and batches a computation reads (a ``with`` block)."""

    def __init__(self) -> None:
        self.rows = 0
        self.batches = 0

    def __enter__(self) -> _ReadCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def report(self, batch_rows: int) -> ReadReport:
        return ReadReport(rows=self.rows, batches=self.batches, batch_rows=batch_rows)


@dataclass(frozen=True)
class OutOfCoreResult:
    """A result and what it read: ``value`` and ``read`` (:class:`ReadReport`)."""

    value: Any
    read: ReadReport


# --------------------------------------------------------------------------------------
# Batched scans


Source = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], Any]


def _lazy(source: Source) -> Any:
    import polars as pl

    if isinstance(source, pl.LazyFrame):
        return source
    if isinstance(source, pl.DataFrame):
        return source.lazy()
    if isinstance(source, (str, os.PathLike)):
        return pl.scan_parquet(os.fspath(source))
    if isinstance(source, Sequence):
        return pl.scan_parquet([os.fspath(p) for p in source])
    raise TypeError(
        f"source must be a Parquet path, glob, list of paths or a polars LazyFrame, got {type(source).__name__}"
    )


def scan_batches(source: Source, columns: Sequence[str], batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[Any]:
    """Polars DataFrames of at most ``batch_rows`` rows of ``columns``, in file order,
    read by the polars streaming engine.

    Raises ``ValueError`` when a column is missing or ``batch_rows < 1``.

    >>> import polars as pl
    >>> lf = pl.LazyFrame({"t": [0.0, 1.0, 2.0]})
    >>> [b.height for b in scan_batches(lf, ["t"], batch_rows=2)]
    [2, 1]
    """
    if int(batch_rows) < 1:
        raise ValueError(f"batch_rows must be ≥ 1, got {batch_rows}")
    lf = _lazy(source)
    names = lf.collect_schema().names()
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"source has no column(s) {missing}; it has {names}")
    for batch in lf.select(list(columns)).collect_batches(chunk_size=int(batch_rows), maintain_order=True):
        if batch.height > batch_rows:  # the engine may hand over larger chunks: cut them
            for off in range(0, batch.height, batch_rows):
                yield batch.slice(off, batch_rows)
        elif batch.height:
            yield batch


class _Reader:
    """Reads batches, counting rows and batches into a ``_ReadCounter``."""

    def __init__(self, source: Source, mem: _ReadCounter, batch_rows: int) -> None:
        self.source = source
        self.mem = mem
        self.batch_rows = int(batch_rows)
        self.first_pass = True

    def batches(self, columns: Sequence[str]) -> Iterator[Any]:
        for b in scan_batches(self.source, columns, self.batch_rows):
            if self.first_pass:
                self.mem.rows += b.height
                self.mem.batches += 1
            yield b
        self.first_pass = False


def _where(i: int) -> str:
    return f" of batch {i}"


def _fold(items: Iterable[Any], merge: Callable[[Any, Any], Any], empty: Any) -> Any:
    acc = empty
    for x in items:
        acc = merge(acc, x)
    return acc


# --------------------------------------------------------------------------------------
# Public out-of-core computations


def _group_sketches(rd: _Reader, keys: list[str], value: str, relative_accuracy: float, weights: str | None,
                    drop_nulls: bool) -> GroupSketches:
    cols = [*keys, value] + ([weights] if weights is not None else [])
    acc: GroupSketches = {}
    for b in rd.batches(cols):
        acc = merge_group_sketches(acc, group_sketches_of(b, keys, value, relative_accuracy, weights, drop_nulls))
    return acc


def group_sketches(
    source: Source,
    by: str | Sequence[str],
    value: str,
    relative_accuracy: float = 0.01,
    *,
    weights: str | None = None,
    drop_nulls: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
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
    keys = _keys(by)
    with _ReadCounter() as mem:
        rd = _Reader(source, mem, batch_rows)
        acc = _group_sketches(rd, keys, value, relative_accuracy, weights, drop_nulls)
    return OutOfCoreResult(acc, mem.report(int(batch_rows)))


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
    lf = _lazy(source)
    schema = lf.collect_schema()
    with _ReadCounter() as mem:
        rd = _Reader(lf, mem, batch_rows)
        acc = _group_sketches(rd, keys, value, relative_accuracy, weights, drop_nulls)
        frame = quantile_frame(acc, keys, {k: schema[k] for k in keys}, quantiles)
    return OutOfCoreResult(frame, mem.report(int(batch_rows)))


def _scan_span(rd: _Reader, column: str) -> tuple[Span, bool]:
    spans = [span_of(_column(b, column), _where(i)) for i, b in enumerate(rd.batches([column]))]
    return _fold(spans, merge_spans, Span()), spans_in_time_order(spans)


def _window_counts(rd: _Reader, column: str, window: float, start: float | None, end: float | None) -> Any:
    w = _check_window(window)
    if start is None:
        sp, _ = _scan_span(rd, column)
        if sp.n == 0:
            return np.zeros(0, dtype=np.int64)
        start = sp.lo
    acc = np.zeros(0, dtype=np.int64)
    for b in rd.batches([column]):
        acc = add_counts(acc, qcore.window_counts(_column(b, column), w, start=start, end=end))
    if end is not None:
        full = qcore.window_counts(np.zeros(0), w, start=start, end=end)  # the grid's length
        acc = add_counts(full, acc)
    return acc


def window_counts(
    source: Source,
    column: str,
    window: float,
    start: float | None = None,
    end: float | None = None,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
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
    with _ReadCounter() as mem:
        rd = _Reader(source, mem, batch_rows)
        acc = _window_counts(rd, column, window, start, end)
    return OutOfCoreResult(acc, mem.report(int(batch_rows)))


def _sorted_gaps_external(rd: _Reader, column: str, span: Span, mean_gap: float, budget: int) -> Gaps:
    """Inter-arrival gaps of an unsorted column in bounded memory: the timestamps are
    range-partitioned by time into spill files of about ``budget`` rows each (split points
    from a histogram of the column), then each range is sorted in memory."""
    nbins = 4096
    w = (span.hi - span.lo) / nbins
    hist = np.zeros(0, dtype=np.int64)
    for b in rd.batches([column]):
        hist = add_counts(hist, qcore.window_counts(_column(b, column), w, start=span.lo))
    cum = np.cumsum(hist)
    edges: list[float] = []
    taken = 0
    for i, c in enumerate(cum[:-1]):
        if c - taken >= budget:
            edges.append(span.lo + (i + 1) * w)
            taken = int(c)
    # Bucket of t: the number of edges ≤ t (any monotone cut of the time line works).
    edge_arr = np.array(edges, dtype=np.float64)
    tmp = tempfile.mkdtemp(prefix="qcore-ooc-")
    try:
        paths = [os.path.join(tmp, f"range-{k}.f64") for k in range(edge_arr.size + 1)]
        for b in rd.batches([column]):
            ts = _column(b, column)
            bucket = np.searchsorted(edge_arr, ts, side="right")
            order = np.argsort(bucket, kind="stable")
            cuts = np.searchsorted(bucket[order], np.arange(edge_arr.size + 2))
            for k in range(edge_arr.size + 1):
                if cuts[k + 1] > cuts[k]:
                    with open(paths[k], "ab") as f:  # one file per range, appended per batch
                        ts[order[cuts[k] : cuts[k + 1]]].tofile(f)
        acc = Gaps(0, math.inf, -math.inf, ExactSum())
        for p in paths:
            if not os.path.exists(p):
                continue
            part = np.fromfile(p, dtype=np.float64)
            part.sort()
            acc = merge_gaps(acc, gaps_of(part, mean_gap), mean_gap)
            del part
            os.remove(p)
        return acc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _arrival_stats(rd: _Reader, column: str, window: float, confidence: float, min_windows: int) -> ArrivalStats:
    window = _check_window(window)
    confidence = _check_confidence(confidence)
    span, in_order = _scan_span(rd, column)
    duration, _ = arrival_grid(span, window)
    mean_gap = duration / (span.n - 1)
    counts = np.zeros(0, dtype=np.int64)
    gaps = Gaps(0, math.inf, -math.inf, ExactSum())
    for b in rd.batches([column]):
        ts = _column(b, column)
        counts = add_counts(counts, qcore.window_counts(ts, window, start=span.lo))
        if in_order:
            gaps = merge_gaps(gaps, gaps_of(ts, mean_gap), mean_gap)
    if not in_order:
        gaps = _sorted_gaps_external(rd, column, span, mean_gap, max(rd.batch_rows, 1))
    return finish_arrival_stats(span, counts, gaps, window, confidence, int(min_windows))


def arrival_stats(
    source: Source,
    column: str,
    window: float = 1.0,
    confidence: float = 0.95,
    min_windows: int = 8,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> OutOfCoreResult:
    """:func:`qcore.arrival_stats` of a timestamp column, in bounded batches.

    Pass 1 finds the count and the first and last arrival; pass 2 counts windows and,
    when the batches come in time order (the usual case for logs), the inter-arrival
    gaps, carrying the last time of each batch into the next. Otherwise the timestamps
    are range-partitioned by time into temporary files of about ``batch_rows`` rows and
    each range is sorted in memory (an external sort; disk: 8 bytes per row).

    ``value`` equals :func:`qcore.arrival_stats` on the whole column: ``count``,
    ``duration``, ``rate``, ``windows``, ``peak_rate``, ``peak_to_mean``,
    ``index_of_dispersion`` and the burstiness curve exactly; ``cv_interarrival`` from an
    exact sum (the in-memory core's lane sums differ by rounding only); ``rate_ci`` from
    the core's Garwood interval, identical bit for bit.

    Raises ``ValueError`` as :func:`qcore.arrival_stats` does (naming the batch of a NaN).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> lf = pl.LazyFrame({"t": np.arange(0.0, 100.0, 0.5)})
    >>> r = arrival_stats(lf, "t", window=10.0, batch_rows=64)
    >>> r.value.count, r.value.rate, r.value.cv_interarrival
    (200, 2.0100502512562812, 0.0)
    """
    with _ReadCounter() as mem:
        rd = _Reader(source, mem, batch_rows)
        st = _arrival_stats(rd, column, window, confidence, min_windows)
    return OutOfCoreResult(st, mem.report(int(batch_rows)))


def _littles_law(rd: _Reader, start: str, end: str, t0: float | None, t1: float | None, tolerance: float,
                 confidence: float, gauge: GaugeArrays | None = None) -> LittleResult:
    tol, conf = check_little_args(tolerance, confidence)
    span = LittleSpan()
    for i, b in enumerate(rd.batches([start, end])):
        span = merge_little_spans(span, little_span_of(_column(b, start), _column(b, end), _where(i)))
    w0, w1 = little_window(span, t0, t1)
    wg = None if gauge is None else gauge_in_window(gauge, w0, w1)
    logs = None if wg is None else np.zeros(wg[0].size, dtype=np.int64)
    sums = LittleSums.empty()
    for b in rd.batches([start, end]):
        s, e = _column(b, start), _column(b, end)
        sums = merge_little_sums(sums, little_sums_of(s, e, w0, w1, span.last))
        if wg is not None and logs is not None:
            logs += qcore.in_flight(s, e, wg[0])
    g = None if wg is None or logs is None else (wg[0], wg[1], logs)
    return finish_littles_law(span, sums, w0, w1, tol, gauge=g, confidence=conf)


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
) -> OutOfCoreResult:
    """:func:`qcore.littles_law` over start/end columns, in two batched passes, optionally
    against an independent in-flight gauge.

    Pass 1 finds the window and the end of the log; pass 2 sums each row's time inside
    the window, its response time and its edge work exactly. A request is one row, so
    batch boundaries never cut a request. Counts (``rows``, ``arrivals``,
    ``in_flight_t0``/``t1``, ``running``, ``negative_durations``), the window and the flags
    equal the in-memory result; ``L``, ``mean_response``, ``edge_term`` are correctly
    rounded exact sums (the in-memory core differs by rounding only).

    With a gauge (``in_flight_times`` and ``in_flight_counts``, as in
    :func:`qcore.littles_law`: both or neither, the samples inside ``[t0, t1]`` are
    paired, at least two), pass 2 also counts the logs' requests in flight at the gauge
    times (exact int64, summed over the batches), and the core function of the in-memory
    path finishes the comparison: the ``gauge`` fields, the ``gauge_discrepancy`` /
    ``gauge_mismatch`` flags and ``holds`` equal :func:`qcore.littles_law`'s (``gauge_gap``
    uses ``lambda_w``, so it inherits its rounding). Memory: 16 bytes per gauge sample more.

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
    tol, conf, gauge = check_littles_law_args(t0, t1, tolerance, confidence, in_flight_times, in_flight_counts)
    with _ReadCounter() as mem:
        rd = _Reader(source, mem, batch_rows)
        res = _littles_law(rd, start, end, t0, t1, tol, conf, gauge)
    return OutOfCoreResult(res, mem.report(int(batch_rows)))


def in_flight(
    source: Source, start: str, end: str, at: Any, *, batch_rows: int = DEFAULT_BATCH_ROWS
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
    _check_finite(at_arr, "at", "")
    with _ReadCounter() as mem:
        rd = _Reader(source, mem, batch_rows)
        acc = np.zeros(at_arr.size, dtype=np.int64)
        for b in rd.batches([start, end]):
            acc += qcore.in_flight(_column(b, start), _column(b, end), at_arr)
    return OutOfCoreResult(acc, mem.report(int(batch_rows)))


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


def _analyze_pass1(rd: _Reader, cols: list[str], ks: list[str] | None, value: str | None, time: str | None,
                   little_cols: tuple[str, str] | None,
                   relative_accuracy: float) -> tuple[GroupSketches, list[Span], LittleSpan]:
    """The first pass of :func:`analyze`: per-group sketches, time spans, Little spans."""
    gs_acc: GroupSketches = {}
    spans: list[Span] = []
    lspan = LittleSpan()
    for i, b in enumerate(rd.batches(cols)):
        if ks is not None and value is not None:
            gs_acc = merge_group_sketches(gs_acc, group_sketches_of(b, ks, value, relative_accuracy))
        if time is not None:
            spans.append(span_of(_column(b, time), _where(i)))
        if little_cols is not None:
            s, e = little_cols
            lspan = merge_little_spans(lspan, little_span_of(_column(b, s), _column(b, e), _where(i)))
    return gs_acc, spans, lspan


def _analyze_pass2(rd: _Reader, time: str | None, little_cols: tuple[str, str] | None, span: Span,
                   window: float, mean_gap: float, in_order: bool,
                   little_win: tuple[float, float, float]) -> tuple[npt.NDArray[np.int64], Gaps, LittleSums]:
    """The second pass of :func:`analyze`: window counts, gaps (time-ordered batches) and
    Little's-law sums over the window ``little_win`` = (w0, w1, last start)."""
    counts = np.zeros(0, dtype=np.int64)
    gaps = Gaps(0, math.inf, -math.inf, ExactSum())
    sums = LittleSums.empty()
    pass2 = [c for c in (time, *(little_cols or ())) if c is not None]
    if not pass2:
        return counts, gaps, sums
    w0, w1, last = little_win
    for b in rd.batches(list(dict.fromkeys(pass2))):
        if time is not None:
            ts = _column(b, time)
            counts = add_counts(counts, qcore.window_counts(ts, window, start=span.lo))
            if in_order:
                gaps = merge_gaps(gaps, gaps_of(ts, mean_gap), mean_gap)
        if little_cols is not None:
            s, e = little_cols
            sums = merge_little_sums(sums, little_sums_of(_column(b, s), _column(b, e), w0, w1, last))
    return counts, gaps, sums


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
) -> Analysis:
    """Everything at once over a larger-than-memory data set, with what it read.

    ``confidence`` is the level of the arrival rate's interval, ``tolerance`` that of
    Little's law (as in :func:`qcore.arrival_stats` and :func:`qcore.littles_law`).

    ``time`` gives window counts and arrival statistics; ``value`` (with ``by``, else one
    group) per-group quantiles; ``start`` and ``end`` Little's law.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]})
    >>> a = analyze(lf.with_columns(lat=pl.col("e") - pl.col("s")), time="s", value="lat",
    ...             start="s", end="e", batch_rows=2)
    >>> a.window_counts.tolist(), a.group_quantiles["count"].to_list(), a.littles_law.arrivals
    ([1, 1, 0, 1], [3.0], 3)
    """
    import polars as pl

    lf = _lazy(source)
    keys = None if by is None else _keys(by)
    if value is not None and keys is None:
        lf = lf.with_columns(pl.lit("all").alias("__all"))
    schema = lf.collect_schema()
    if (start is None) != (end is None):
        raise ValueError("start and end must be given together")
    if time is not None:
        window = _check_window(window)
        confidence = _check_confidence(confidence)
    if start is not None:
        tolerance, _ = check_little_args(tolerance, confidence)
    ks = None if value is None else (keys if keys is not None else ["__all"])
    cols = list(dict.fromkeys(c for c in [*(ks or []), value, time, start, end] if c is not None))
    gq = gs = wc = st = ll = None
    little_cols = (start, end) if start is not None and end is not None else None
    with _ReadCounter() as mem:
        rd = _Reader(lf, mem, batch_rows)
        # Pass 1: sketches, spans.
        gs_acc, spans, lspan = _analyze_pass1(rd, cols, ks, value, time, little_cols, relative_accuracy)
        if ks is not None:
            gs = gs_acc
            gq = quantile_frame(gs, ks, {k: schema[k] for k in ks}, quantiles)
            if keys is None:
                gq = gq.drop("__all")
        # Pass 2: window counts, gaps (time-ordered batches), Little's law sums.
        span = _fold(spans, merge_spans, Span())
        in_order = spans_in_time_order(spans)
        mean_gap = math.nan
        if time is not None:
            arrival_grid(span, window)  # the single-machine errors, before pass 2
            mean_gap = (span.hi - span.lo) / (span.n - 1)
        w0, w1 = little_window(lspan, None, None) if little_cols is not None else (0.0, 0.0)
        counts, gaps, sums = _analyze_pass2(rd, time, little_cols, span, window, mean_gap, in_order,
                                            (w0, w1, lspan.last))
        if time is not None:
            if not in_order:
                gaps = _sorted_gaps_external(rd, time, span, mean_gap, max(rd.batch_rows, 1))
            wc = counts
            st = finish_arrival_stats(span, counts, gaps, window, confidence, 8)
        if little_cols is not None:
            ll = finish_littles_law(lspan, sums, w0, w1, tolerance)
    return Analysis(gq, gs, wc, st, ll, mem.report(int(batch_rows)))
