"""qcore on Dask: request logs larger than one machine.

Each function takes a ``dask.dataframe.DataFrame`` (for example
``dask.dataframe.read_parquet`` of many files), computes a small mergeable partial result
per partition on the workers, and merges the partial results in a tree (``split_every``
at a time, adjacent partitions together) with the cluster the current
``dask.distributed.Client`` points at (or dask's default scheduler without one). The
partial results are those of :mod:`qcore.outofcore`, so the answers are the same however
the rows are cut into partitions:

- :func:`group_sketches` / :func:`group_quantiles`: one :class:`~qcore.QuantileSketch`
  per key and partition, merged exactly; every merged sketch has the same bytes as the
  sketch of the whole group on one machine (:func:`qcore.sketch_groups`), and the
  quantile frame equals :func:`qcore.group_quantiles`.
- :func:`window_counts`: int64 counts on one global window grid, summed; equal to
  :func:`qcore.window_counts`. A window cut by a partition boundary is counted by both
  partitions and summed exactly.
- :func:`arrival_stats`: count, first and last arrival (pass 1), then window counts and
  the inter-arrival gaps over time-sorted runs (pass 2). When the partitions are
  already in time order (each sorted, not overlapping — checked in pass 1) nothing is
  moved; otherwise the timestamp column (8 bytes a row) is shuffled into time ranges
  with ``DataFrame.sort_values``. The gap that straddles two partitions is added when
  their runs merge.
- :func:`littles_law`: each request is one row with its start and end, so a request in
  flight across a partition boundary (in time) is still whole in one partition; the
  per-row terms (time inside the window, response time, edge work) are summed exactly.
  With an in-flight gauge, the same pass counts each partition's requests in flight at
  the gauge's sample times (int64, summed), and the core function of
  :func:`qcore.littles_law` finishes the paired comparison.
- :func:`in_flight`: int64 counts at the given times, summed.

Counts, minima, maxima, window grids and sketches are exact and identical to the
single-machine results; sums of floats are exact sums rounded once, so they do not
depend on the partitioning (the in-memory core sums in lanes and can differ in the last
bits). ``rate_ci`` and the gauge comparison come from the same core functions as on one
machine, from identical counts, so they are identical too.

For the command line, :func:`client_from_arg` turns a ``--dask ADDRESS`` (or
``local:N``) argument into a client, and :func:`report_frame` computes the report's
quantities on it. :func:`summarize` (``qcore.report_distributed.summarize``) gives the
report of ``qcore report --dask``, and :func:`evaluate_rules`
(``qcore.rules.distributed.evaluate``) the decisions of ``qcore check --dask``, both equal
to the single-machine results.

Examples
--------
>>> import numpy as np, pandas as pd, dask, dask.dataframe as dd
>>> from qcore import dask as qd
>>> pdf = pd.DataFrame({"t": np.arange(100.0), "lat": np.linspace(0.1, 1.0, 100)})
>>> ddf = dd.from_pandas(pdf, npartitions=4)
>>> with dask.config.set(scheduler="sync"):
...     qd.window_counts(ddf, "t", window=25.0).tolist()
[25, 25, 25, 25]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    import dask.dataframe as dd
    from dask.base import compute as _compute
    from dask.delayed import delayed as _delayed
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("qcore.dask needs dask: pip install 'qcore[dask]'") from e

import qcore
from qcore import outofcore as _oc
from qcore._convert import as_f64
from qcore.arrivals import ArrivalStats
from qcore.little import LittleResult
from qcore.outofcore import Analysis, GroupSketches
from qcore.report_distributed import summarize
from qcore.rules.distributed import evaluate as evaluate_rules

__all__ = [
    "Analysis",
    "arrival_stats",
    "client_from_arg",
    "evaluate_rules",
    "group_quantiles",
    "group_sketches",
    "in_flight",
    "littles_law",
    "read",
    "report_frame",
    "summarize",
    "window_counts",
]

DEFAULT_SPLIT_EVERY = 8


# --------------------------------------------------------------------------------------
# Cluster and input


def client_from_arg(arg: str) -> Any:
    """A ``dask.distributed.Client`` from a command-line argument.

    ``"local:N"`` starts a local cluster of N worker processes with one thread each
    (closed with the client); ``"local"`` one worker per core; anything else is a
    scheduler address (``"tcp://10.0.0.5:8786"``, ``"10.0.0.5:8786"``). The local workers
    share the machine's cores: each one's polars thread pool gets ``cores // N`` threads
    (``POLARS_MAX_THREADS``), so N processes do not oversubscribe the cores.

    Raises ``ValueError`` for an empty argument or a bad worker count.

    Examples
    --------
    >>> client_from_arg("local:0")
    Traceback (most recent call last):
    ...
    ValueError: --dask local:N needs N ≥ 1, got 'local:0'
    """
    import os

    from distributed import Client

    a = str(arg).strip()
    if not a:
        raise ValueError("--dask needs a scheduler address or local:N")
    cores = os.cpu_count() or 1
    if a == "local" or a.startswith("local:"):
        n = cores
        if a != "local":
            try:
                n = int(a.split(":", 1)[1])
            except ValueError:
                n = 0
            if n < 1:
                raise ValueError(f"--dask local:N needs N ≥ 1, got {a!r}")
        env = {"POLARS_MAX_THREADS": str(max(1, cores // n))}
        return Client(n_workers=n, threads_per_worker=1, processes=True,  # type: ignore[no-untyped-call]
                      dashboard_address=":0", env=env)
    return Client(a if "://" in a else f"tcp://{a}")  # type: ignore[no-untyped-call]


def read(path: str | Sequence[str], columns: Sequence[str] | None = None) -> Any:
    """A dask DataFrame of Parquet, CSV or NDJSON logs (by extension; globs and lists allowed).

    Examples
    --------
    >>> read("logs.txt")
    Traceback (most recent call last):
    ...
    ValueError: path must end in .parquet, .csv, .ndjson or .jsonl, got 'logs.txt'
    """
    first = path if isinstance(path, str) else (path[0] if path else "")
    low = str(first).lower()
    cols = None if columns is None else list(columns)
    if low.endswith((".parquet", ".pq", "/")):
        return dd.read_parquet(path, columns=cols)
    if low.endswith(".csv"):
        return dd.read_csv(path, usecols=cols)
    if low.endswith((".ndjson", ".jsonl")):
        df = dd.read_json(path, lines=True)
        return df if cols is None else df[cols]
    raise ValueError(f"path must end in .parquet, .csv, .ndjson or .jsonl, got {first!r}")


def _frame(ddf: Any, columns: Sequence[str]) -> Any:
    if isinstance(ddf, dd.Series):
        ddf = ddf.to_frame()
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"ddf must be a dask DataFrame, got {type(ddf).__name__}")
    missing = [c for c in columns if c not in ddf.columns]
    if missing:
        raise ValueError(f"ddf has no column(s) {missing}; it has {list(ddf.columns)}")
    return ddf[list(dict.fromkeys(columns))]


def _partitions(ddf: Any, columns: Sequence[str]) -> list[Any]:
    return list(_frame(ddf, columns).to_delayed())


def _run(*graphs: Any) -> tuple[Any, ...]:
    """``dask.compute`` on the current client (or dask's default scheduler)."""
    out: tuple[Any, ...] = _compute(*graphs)  # type: ignore[no-untyped-call]
    return out


def _split_every(k: int) -> int:
    k = int(k)
    if k < 2:
        raise ValueError(f"split_every must be ≥ 2, got {k}")
    return k


def _combine(merge: Callable[[Any, Any], Any], *xs: Any) -> Any:
    acc = xs[0]
    for x in xs[1:]:
        acc = merge(acc, x)
    return acc


def _tree(parts: Sequence[Any], merge: Callable[[Any, Any], Any], empty: Any, split_every: int) -> Any:
    """Merge delayed partial results in a tree, adjacent ones together (order kept)."""
    level = list(parts)
    if not level:
        return _delayed(empty, pure=True)
    comb = _delayed(_combine, pure=True)
    while len(level) > 1:
        level = [comb(merge, *level[i : i + split_every]) for i in range(0, len(level), split_every)]
    return level[0]


# --------------------------------------------------------------------------------------
# Per-partition work (module level, so workers import it by reference)


def _p_span(df: Any, column: str, i: int) -> _oc.Span:
    return _oc.span_of(_oc._column(df, column), f" of partition {i}")


def _p_counts(df: Any, column: str, window: float, start: float, end: float | None) -> npt.NDArray[np.int64]:
    return qcore.window_counts(_oc._column(df, column), window, start=start, end=end)


def _p_gaps(df: Any, column: str, mean_gap: float) -> _oc.Gaps:
    ts = np.sort(_oc._column(df, column))
    return _oc.gaps_of(ts, mean_gap)


def _p_little_span(df: Any, start: str, end: str, i: int) -> _oc.LittleSpan:
    return _oc.little_span_of(_oc._column(df, start), _oc._column(df, end), f" of partition {i}")


def _p_little_sums(df: Any, start: str, end: str, t0: float, t1: float, log_end: float) -> _oc.LittleSums:
    return _oc.little_sums_of(_oc._column(df, start), _oc._column(df, end), t0, t1, log_end)


def _p_little_pass2(
    df: Any, start: str, end: str, t0: float, t1: float, log_end: float, at: npt.NDArray[np.float64] | None
) -> dict[str, Any]:
    """Pass 2 of Little's law on one partition: the sums and, with a gauge, the in-flight
    counts at the gauge times (one read of the columns)."""
    s, e = _oc._column(df, start), _oc._column(df, end)
    out: dict[str, Any] = {"sums": _oc.little_sums_of(s, e, t0, t1, log_end)}
    if at is not None:
        out["in_flight"] = qcore.in_flight(s, e, _oc._aligned(at))
    return out


def _p_in_flight(df: Any, start: str, end: str, at: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    s, e = _oc._column(df, start), _oc._column(df, end)
    return qcore.in_flight(s, e, _oc._aligned(at))


def _p_groups(
    df: Any, keys: list[str], value: str, ra: float, weights: str | None, drop_nulls: bool
) -> GroupSketches:
    return _oc.group_sketches_of(df, keys, value, ra, weights, drop_nulls)


def _p_pass1(
    df: Any,
    i: int,
    time: str | None,
    start: str | None,
    end: str | None,
    ks: list[str] | None,
    value: str | None,
    ra: float,
) -> dict[str, Any]:
    where = f" of partition {i}"
    out: dict[str, Any] = {}
    if time is not None:
        out["spans"] = [_oc.span_of(_oc._column(df, time), where)]
    if start is not None and end is not None:
        out["little"] = _oc.little_span_of(_oc._column(df, start), _oc._column(df, end), where)
    if ks is not None and value is not None:
        out["groups"] = _oc.group_sketches_of(df, ks, value, ra)
    return out


def _p_pass2(
    df: Any,
    time: str | None,
    window: float,
    lo: float,
    mean_gap: float,
    gaps: bool,
    start: str | None,
    end: str | None,
    t0: float,
    t1: float,
    log_end: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if time is not None:
        ts = _oc._column(df, time)
        out["counts"] = qcore.window_counts(ts, window, start=lo)
        if gaps:  # partitions in time order: each one is sorted (checked in pass 1)
            out["gaps"] = _oc.gaps_of(ts, mean_gap)
    if start is not None and end is not None:
        out["sums"] = _oc.little_sums_of(_oc._column(df, start), _oc._column(df, end), t0, t1, log_end)
    return out


def _merge_pass(a: dict[str, Any], b: dict[str, Any], mean_gap: float = math.nan) -> dict[str, Any]:
    """Merge two per-partition result dicts (``a`` before ``b`` in partition order)."""
    merges: dict[str, Callable[[Any, Any], Any]] = {
        "spans": lambda x, y: [*x, *y],
        "little": _oc.merge_little_spans,
        "groups": _oc.merge_group_sketches,
        "counts": _oc.add_counts,
        "gaps": functools.partial(_oc.merge_gaps, mean_gap=mean_gap),
        "sums": _oc.merge_little_sums,
        "in_flight": _add_arrays,
    }
    out = dict(a)
    for key, v in b.items():
        out[key] = merges[key](out[key], v) if key in out else v
    return out


def _add_arrays(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return a + b


def _empty_gaps() -> _oc.Gaps:
    return _oc.Gaps(0, math.inf, -math.inf, _oc.ExactSum())


def _gap_merger(mean_gap: float) -> Callable[[_oc.Gaps, _oc.Gaps], _oc.Gaps]:
    import functools

    return functools.partial(_merge_gaps, mean_gap=mean_gap)


def _merge_gaps(a: _oc.Gaps, b: _oc.Gaps, mean_gap: float) -> _oc.Gaps:
    return _oc.merge_gaps(a, b, mean_gap)


# --------------------------------------------------------------------------------------
# Graph builders (delayed), shared by the public functions and report_frame


def _spans(ddf: Any, column: str) -> list[Any]:
    f = _delayed(_p_span, pure=True)
    return [f(p, column, i) for i, p in enumerate(_partitions(ddf, [column]))]


def _counts_graph(ddf: Any, column: str, window: float, start: float, end: float | None, k: int) -> Any:
    f = _delayed(_p_counts, pure=True)
    parts = [f(p, column, window, start, end) for p in _partitions(ddf, [column])]
    return _tree(parts, _oc.add_counts, np.zeros(0, dtype=np.int64), k)


def _gaps_graph(ddf: Any, column: str, mean_gap: float, in_order: bool, k: int) -> Any:
    frame = _frame(ddf, [column])
    if not in_order:
        # Shuffle the timestamps into time ranges (dask picks the boundaries).
        frame = frame.sort_values(column)
    f = _delayed(_p_gaps, pure=True)
    parts = [f(p, column, mean_gap) for p in frame.to_delayed()]
    return _tree(parts, _gap_merger(mean_gap), _empty_gaps(), k)


def _little_span_graph(ddf: Any, start: str, end: str, k: int) -> Any:
    f = _delayed(_p_little_span, pure=True)
    parts = [f(p, start, end, i) for i, p in enumerate(_partitions(ddf, [start, end]))]
    return _tree(parts, _oc.merge_little_spans, _oc.LittleSpan(), k)


def _little_sums_graph(ddf: Any, start: str, end: str, t0: float, t1: float, log_end: float, k: int) -> Any:
    f = _delayed(_p_little_sums, pure=True)
    parts = [f(p, start, end, t0, t1, log_end) for p in _partitions(ddf, [start, end])]
    return _tree(parts, _oc.merge_little_sums, _oc.LittleSums.empty(), k)


def _groups_graph(
    ddf: Any, keys: list[str], value: str, ra: float, weights: str | None, drop_nulls: bool, k: int
) -> Any:
    cols = [*keys, value] + ([weights] if weights is not None else [])
    f = _delayed(_p_groups, pure=True)
    parts = [f(p, keys, value, float(ra), weights, bool(drop_nulls)) for p in _partitions(ddf, cols)]
    return _tree(parts, _oc.merge_group_sketches, {}, k)


def _key_schema(ddf: Any, keys: list[str]) -> dict[str, Any]:
    import polars as pl

    meta = ddf._meta if hasattr(ddf, "_meta") else ddf.head(0)
    return dict(pl.from_pandas(meta[keys]).schema)


# --------------------------------------------------------------------------------------
# Public API


def group_sketches(
    ddf: Any,
    by: str | Sequence[str],
    value: str,
    relative_accuracy: float = 0.01,
    *,
    weights: str | None = None,
    drop_nulls: bool = False,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> GroupSketches:
    """One :class:`~qcore.QuantileSketch` per distinct key, ``{key tuple: sketch}``.

    Each partition builds its groups' sketches in one Rust pass; the sketches are merged
    in a tree. Every sketch has the same bytes as :func:`qcore.sketch_groups` over the
    whole group on one machine. Nulls in ``value`` raise unless ``drop_nulls=True``;
    null keys form their own group (``None`` in the key tuple).

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"m": ["a", "b", "a"], "lat": [1.0, 2.0, 3.0]}), npartitions=2)
    >>> with dask.config.set(scheduler="sync"):
    ...     gs = group_sketches(ddf, "m", "lat")
    >>> {k: s.count for k, s in sorted(gs.items())}
    {('a',): 2.0, ('b',): 1.0}
    """
    keys = _oc._keys(by)
    (out,) = _run(
        _groups_graph(ddf, keys, value, relative_accuracy, weights, drop_nulls, _split_every(split_every))
    )
    return dict(out)


def group_quantiles(
    ddf: Any,
    by: str | Sequence[str],
    value: str,
    quantiles: Sequence[float] = (0.5, 0.99, 0.999),
    *,
    relative_accuracy: float = 0.01,
    weights: str | None = None,
    drop_nulls: bool = False,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> Any:
    """:func:`qcore.group_quantiles` over a dask DataFrame: a polars frame with the key
    columns, ``count`` and one column per quantile, sorted by key — equal to the
    single-machine frame on the same rows.

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> pdf = pd.DataFrame({"m": ["a", "b", "a", "b"], "lat": [1.0, 10.0, 3.0, 30.0]})
    >>> with dask.config.set(scheduler="sync"):
    ...     out = group_quantiles(dd.from_pandas(pdf, npartitions=2), "m", "lat", quantiles=(0.0, 1.0))
    >>> out.rows()
    [('a', 2.0, 1.0, 3.0), ('b', 2.0, 10.0, 30.0)]
    """
    keys = _oc._keys(by)
    gs = group_sketches(
        ddf, keys, value, relative_accuracy, weights=weights, drop_nulls=drop_nulls, split_every=split_every
    )
    return _oc.quantile_frame(gs, keys, _key_schema(ddf, keys), quantiles)


def window_counts(
    ddf: Any,
    column: str,
    window: float,
    start: float | None = None,
    end: float | None = None,
    *,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> npt.NDArray[np.int64]:
    """:func:`qcore.window_counts` of a timestamp column of a dask DataFrame.

    Without ``start`` a first pass finds the smallest timestamp; then every partition
    counts on that grid and the int64 counts are summed in a tree. The result equals the
    single-machine counts, also for windows that partition boundaries cut through.

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"t": [0.1, 0.5, 2.2, 2.9]}), npartitions=2)
    >>> with dask.config.set(scheduler="sync"):
    ...     window_counts(ddf, "t", 1.0).tolist()
    [2, 0, 2]
    """
    w = _oc._check_window(window)
    k = _split_every(split_every)
    if start is None:
        (span,) = _run(_tree(_spans(ddf, column), _oc.merge_spans, _oc.Span(), k))
        if span.n == 0:
            return np.zeros(0, dtype=np.int64)
        start = span.lo
    (acc,) = _run(_counts_graph(ddf, column, w, float(start), end, k))
    if end is not None:
        acc = _oc.add_counts(qcore.window_counts(np.zeros(0), w, start=start, end=end), acc)
    return np.asarray(acc, dtype=np.int64)


def arrival_stats(
    ddf: Any,
    column: str,
    window: float = 1.0,
    confidence: float = 0.95,
    min_windows: int = 8,
    *,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> ArrivalStats:
    """:func:`qcore.arrival_stats` of a timestamp column of a dask DataFrame.

    Two passes (plus a shuffle of the timestamp column by time when the partitions are
    not already in time order). ``count``, ``duration``, ``rate``, ``windows``,
    ``peak_rate``, ``peak_to_mean``, ``index_of_dispersion`` and the burstiness curve
    equal the single-machine values exactly; ``cv_interarrival`` is computed from an exact
    sum (independent of the partitioning; the in-memory core differs by rounding only)
    and ``rate_ci`` from the core's Garwood interval (identical).

    Raises ``ValueError`` as :func:`qcore.arrival_stats` does (a NaN names its partition).

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"t": np.arange(0.0, 100.0, 0.5)}), npartitions=3)
    >>> with dask.config.set(scheduler="sync"):
    ...     s = arrival_stats(ddf, "t", window=10.0)
    >>> s.count, s.windows, s.cv_interarrival
    (200, 9, 0.0)
    """
    window = _oc._check_window(window)
    confidence = _oc._check_confidence(confidence)
    k = _split_every(split_every)
    spans = list(_run(*_spans(ddf, column)))
    span = _oc._fold(spans, _oc.merge_spans, _oc.Span())
    duration, _ = _oc.arrival_grid(span, window)
    mean_gap = duration / (span.n - 1)
    counts, gaps = _run(
        _counts_graph(ddf, column, window, span.lo, None, k),
        _gaps_graph(ddf, column, mean_gap, _oc.spans_in_time_order(spans), k),
    )
    return _oc.finish_arrival_stats(span, counts, gaps, window, confidence, int(min_windows))


def littles_law(
    ddf: Any,
    start: str,
    end: str,
    t0: float | None = None,
    t1: float | None = None,
    tolerance: float = 0.02,
    confidence: float = 0.95,
    *,
    in_flight_times: Any = None,
    in_flight_counts: Any = None,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> LittleResult:
    """:func:`qcore.littles_law` over start/end columns of a dask DataFrame, optionally
    against an independent in-flight gauge.

    Pass 1 merges the rows, the first start, the end of the log and the running and
    skewed rows; pass 2 sums each row's time clipped to ``[t0, t1)``, the response times
    of the window's arrivals and the edge work, exactly. Requests in flight across a
    partition boundary are whole rows, so the edge handling is exact. Counts, window,
    flags and ``holds`` equal the single-machine result; ``L``, ``mean_response`` and
    ``edge_term`` are correctly rounded exact sums.

    With a gauge (``in_flight_times`` and ``in_flight_counts``, as in
    :func:`qcore.littles_law`: both or neither; the samples inside ``[t0, t1]`` are
    paired, at least two), pass 2 also counts each partition's requests in flight at the
    gauge times (no extra read; int64, summed in the tree), and the core function of the
    single-machine path finishes the comparison. The ``gauge`` fields, the
    ``gauge_discrepancy`` / ``gauge_mismatch`` flags and ``holds`` equal the single-machine
    result (``gauge_gap`` uses ``lambda_w`` and inherits its rounding). Each partial
    carries 8 bytes per gauge sample.

    Raises ``ValueError`` as :func:`qcore.littles_law` does, with its messages (a bad
    value in the data names its partition); bad gauge arrays are rejected before any
    data is read.

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> pdf = pd.DataFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]})
    >>> with dask.config.set(scheduler="sync"):
    ...     r = littles_law(dd.from_pandas(pdf, npartitions=2), "s", "e")
    >>> round(r.L, 3), round(r.lambda_w, 3), r.holds
    (1.4, 1.4, True)
    """
    tol, conf, gauge = _oc.check_littles_law_args(t0, t1, tolerance, confidence, in_flight_times, in_flight_counts)
    k = _split_every(split_every)
    (span,) = _run(_little_span_graph(ddf, start, end, k))
    w0, w1 = _oc.little_window(span, t0, t1)
    if gauge is None:
        (sums,) = _run(_little_sums_graph(ddf, start, end, w0, w1, span.last, k))
        return _oc.finish_littles_law(span, sums, w0, w1, tol)
    wt, wc = _oc.gauge_in_window(gauge, w0, w1)
    at = _delayed(wt, pure=True)  # one graph key shared by every partition's task
    f = _delayed(_p_little_pass2, pure=True)
    parts = [f(p, start, end, w0, w1, span.last, at) for p in _partitions(ddf, [start, end])]
    empty = {"sums": _oc.LittleSums.empty(), "in_flight": np.zeros(wt.size, dtype=np.int64)}
    (res,) = _run(_tree(parts, _merge_pass, empty, k))
    logs = np.asarray(res["in_flight"], dtype=np.int64)
    return _oc.finish_littles_law(span, res["sums"], w0, w1, tol, gauge=(wt, wc, logs), confidence=conf)


def in_flight(
    ddf: Any, start: str, end: str, at: Any, *, split_every: int = DEFAULT_SPLIT_EVERY
) -> npt.NDArray[np.int64]:
    """:func:`qcore.in_flight` over start/end columns of a dask DataFrame (int64 counts at
    each time of ``at``, summed over the partitions: exact).

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> pdf = pd.DataFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]})
    >>> with dask.config.set(scheduler="sync"):
    ...     in_flight(dd.from_pandas(pdf, npartitions=2), "s", "e", at=[0, 1, 2, 3.5, 5]).tolist()
    [1, 2, 1, 2, 0]
    """
    at_arr = as_f64(at, "at")
    _oc._check_finite(at_arr, "at", "")
    f = _delayed(_p_in_flight, pure=True)
    parts = [f(p, start, end, at_arr) for p in _partitions(ddf, [start, end])]
    (out,) = _run(_tree(parts, _add_arrays, np.zeros(at_arr.size, dtype=np.int64), _split_every(split_every)))
    return np.asarray(out, dtype=np.int64)


def report_frame(
    ddf: Any,
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
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> Analysis:
    """Per-group quantiles, window counts, arrival statistics and Little's law of chosen columns
    of a dask DataFrame, in two passes (:func:`summarize` gives the whole ``qcore report``).

    ``time`` gives ``window_counts`` (from the first arrival) and ``arrival_stats``;
    ``value`` gives ``group_quantiles`` and ``group_sketches`` (per ``by`` key, or one
    group keyed ``("all",)`` and a frame without key columns); ``start`` and ``end``
    give ``littles_law``. Pass 1 merges the spans and the sketches, pass 2 the counts,
    the inter-arrival gaps and the Little's law sums; a time shuffle is added only when
    the partitions are not in time order. Each field equals its single-machine value as
    the individual functions describe.

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> pdf = pd.DataFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]})
    >>> pdf["lat"] = pdf["e"] - pdf["s"]
    >>> with dask.config.set(scheduler="sync"):
    ...     a = report_frame(dd.from_pandas(pdf, npartitions=2), time="s", value="lat", start="s", end="e")
    >>> a.window_counts.tolist(), a.group_quantiles["count"].to_list(), a.littles_law.arrivals
    ([1, 1, 0, 1], [3.0], 3)
    """
    k = _split_every(split_every)
    if (start is None) != (end is None):
        raise ValueError("start and end must be given together")
    if time is not None:
        window = _oc._check_window(window)
        confidence = _oc._check_confidence(confidence)
    if start is not None:
        tolerance, _ = _oc.check_little_args(tolerance, confidence)
    keys = None if by is None else _oc._keys(by)
    if value is not None and keys is None:
        ddf = ddf.assign(__all="all")
    ks = None if value is None else (keys if keys is not None else ["__all"])
    cols = [c for c in [*(ks or []), value, time, start, end] if c is not None]
    parts = _partitions(ddf, cols)
    # Pass 1 (one read): spans, Little's law span, sketches.
    f1 = _delayed(_p_pass1, pure=True)
    p1 = [f1(p, i, time, start, end, ks, value, float(relative_accuracy)) for i, p in enumerate(parts)]
    (r1,) = _run(_tree(p1, _merge_pass, {}, k))
    gq = gs = wc = st = ll = None
    if ks is not None:
        gs = dict(r1.get("groups", {}))
        gq = _oc.quantile_frame(gs, ks, _key_schema(ddf, ks), quantiles)
        if keys is None:
            gq = gq.drop("__all")
    # Pass 2 (one read, plus the time shuffle when needed): counts, gaps, Little's law sums.
    spans: list[_oc.Span] = list(r1.get("spans", []))
    span = _oc._fold(spans, _oc.merge_spans, _oc.Span())
    mean_gap = math.nan
    in_order = _oc.spans_in_time_order(spans)
    if time is not None:
        duration, _ = _oc.arrival_grid(span, window)  # the single-machine errors
        mean_gap = duration / (span.n - 1)
    lspan: _oc.LittleSpan = r1.get("little", _oc.LittleSpan())
    w0 = w1 = math.nan
    if start is not None and end is not None:
        w0, w1 = _oc.little_window(lspan, None, None)
    g2: dict[str, Any] = {}
    cols2 = [c for c in [time, start, end] if c is not None]
    if cols2:
        f2 = _delayed(_p_pass2, pure=True)
        p2 = [
            f2(p, time, window, span.lo, mean_gap, in_order, start, end, w0, w1, lspan.last)
            for p in _partitions(ddf, cols2)
        ]
        g2["pass2"] = _tree(p2, functools.partial(_merge_pass, mean_gap=mean_gap), {}, k)
    if time is not None and not in_order:
        g2["gaps"] = _gaps_graph(ddf, time, mean_gap, False, k)
    (r2,) = _run(g2)
    if time is not None:
        res = r2["pass2"]
        wc = np.asarray(res.get("counts", np.zeros(0, dtype=np.int64)), dtype=np.int64)
        gaps = res["gaps"] if in_order else r2["gaps"]
        st = _oc.finish_arrival_stats(span, wc, gaps, window, confidence, 8)
    if start is not None and end is not None:
        ll = _oc.finish_littles_law(lspan, r2["pass2"]["sums"], w0, w1, tolerance)
    return Analysis(gq, gs, wc, st, ll, None)
