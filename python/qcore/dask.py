"""qcore on Dask: request logs larger than one machine.

Each function takes a ``dask.dataframe.DataFrame`` (for example
``dask.dataframe.read_parquet`` of many files), computes a small mergeable partial result
per partition on the workers, and merges the partial results in a tree (``split_every``
at a time, adjacent partitions together) with the cluster the current
``dask.distributed.Client`` points at (or dask's default scheduler without one). They are
the functions of :mod:`qcore.pipeline.analysis` run by the pipeline's Dask executor
(:class:`qcore.pipeline.Dask`): the same plan of the core's accumulators, so the answers
are the same, bit for bit, however the rows are cut into partitions:

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
  their runs merge (each partition's run is sorted on the worker).
- :func:`littles_law`: each request is one row with its start and end, so a request in
  flight across a partition boundary (in time) is still whole in one partition; the
  per-row terms (time inside the window, response time, edge work) are summed exactly.
  With an in-flight gauge, the same pass counts each partition's requests in flight at
  the gauge's sample times (int64, summed), and the core function of
  :func:`qcore.littles_law` finishes the paired comparison.
- :func:`in_flight`: int64 counts at the given times, summed.

Counts, minima, maxima, window grids and sketches are exact; sums of floats are exact
sums rounded once, in the core's in-memory functions too, so every result equals the
single-machine one bit for bit.

For the command line, :func:`client_from_arg` turns a ``--dask ADDRESS`` (or
``local:N``) argument into a client, and :func:`report_frame` computes the report's
quantities on it. :func:`summarize` (``qcore.report_distributed.summarize``) gives the
report of ``qcore report --dask``, and :func:`evaluate_rules`
(``qcore.rules.driver.evaluate``) the decisions of ``qcore check --dask``, both equal
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

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    import dask.dataframe as dd
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("qcore.dask needs dask: pip install 'qcore[dask]'") from e

from qcore import pipeline as _pp
from qcore.arrivals import ArrivalStats
from qcore.little import LittleResult
from qcore.pipeline import analysis as _oc
from qcore.pipeline.analysis import Analysis, GroupSketches
from qcore.report_distributed import summarize
from qcore.rules.driver import evaluate as evaluate_rules

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


def _ex(ddf: Any, split_every: int) -> _pp.Dask:
    return _pp.Dask(ddf, int(split_every))


# --------------------------------------------------------------------------------------
# Public API (qcore.pipeline.analysis's functions on the Dask executor)


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
    r = _oc.group_sketches(None, by, value, relative_accuracy, weights=weights, drop_nulls=drop_nulls,
                           executor=_ex(ddf, split_every))
    out: GroupSketches = r.value
    return out


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
    ...     group_quantiles(dd.from_pandas(pdf, npartitions=2), "m", "lat", quantiles=(0.0, 1.0)).rows()
    [('a', 2.0, 1.0, 3.0), ('b', 2.0, 10.0, 30.0)]
    """
    return _oc.group_quantiles(None, by, value, quantiles, relative_accuracy=relative_accuracy, weights=weights,
                               drop_nulls=drop_nulls, executor=_ex(ddf, split_every)).value


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
    out: npt.NDArray[np.int64] = _oc.window_counts(None, column, window, start, end,
                                                   executor=_ex(ddf, split_every)).value
    return out


def arrival_stats(
    ddf: Any,
    column: str,
    window: float = 1.0,
    confidence: float = 0.95,
    min_windows: int = 8,
    *,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> ArrivalStats:
    """:func:`qcore.arrival_stats` of a timestamp column of a dask DataFrame, bit for bit.

    Two passes, plus a shuffle of the timestamp column by time (``sort_values``) when the
    partitions overlap in time.

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
    out: ArrivalStats = _oc.arrival_stats(None, column, window, confidence, min_windows,
                                          executor=_ex(ddf, split_every)).value
    return out


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
    against an independent in-flight gauge, bit for bit.

    Pass 1 merges the rows, the first start, the end of the log and the running and
    skewed rows; pass 2 sums each row's terms exactly and counts each partition's
    requests in flight at the gauge times (int64). Requests in flight across a partition
    boundary are whole rows, so the edge handling is exact. Bad gauge arrays are rejected
    before any data is read.

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]}), npartitions=2)
    >>> with dask.config.set(scheduler="sync"):
    ...     r = littles_law(ddf, "s", "e")
    >>> round(r.L, 3), round(r.lambda_w, 3), r.holds
    (1.4, 1.4, True)
    """
    out: LittleResult = _oc.littles_law(None, start, end, t0, t1, tolerance, confidence,
                                        in_flight_times=in_flight_times, in_flight_counts=in_flight_counts,
                                        executor=_ex(ddf, split_every)).value
    return out


def in_flight(
    ddf: Any, start: str, end: str, at: Any, *, split_every: int = DEFAULT_SPLIT_EVERY
) -> npt.NDArray[np.int64]:
    """:func:`qcore.in_flight` over start/end columns of a dask DataFrame (int64 counts at
    each time of ``at``, summed over the partitions: exact).

    Examples
    --------
    >>> import pandas as pd, dask, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"s": [0.0, 1.0, 3.0], "e": [2.0, 4.0, 5.0]}), npartitions=2)
    >>> with dask.config.set(scheduler="sync"):
    ...     in_flight(ddf, "s", "e", at=[0, 1, 2, 3.5, 5]).tolist()
    [1, 2, 1, 2, 0]
    """
    out: npt.NDArray[np.int64] = _oc.in_flight(None, start, end, at, executor=_ex(ddf, split_every)).value
    return out


def report_frame(ddf: Any, *, split_every: int = DEFAULT_SPLIT_EVERY, **kw: Any) -> Analysis:
    """Per-group quantiles, window counts, arrival statistics and Little's law of chosen columns
    of a dask DataFrame: :func:`qcore.pipeline.analysis.analyze` on the Dask executor, with
    its keywords (``time``, ``value``, ``by``, ``start``, ``end``, ``window``, ``quantiles``,
    ``relative_accuracy``, ``confidence``, ``tolerance``) and their defaults
    (:func:`summarize` gives the whole ``qcore report``).

    ``time`` gives ``window_counts`` (from the first arrival) and ``arrival_stats``;
    ``value`` gives ``group_quantiles`` and ``group_sketches`` (per ``by`` key, or one
    group keyed ``("all",)`` and a frame without key columns); ``start`` and ``end``
    give ``littles_law``.

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
    if "executor" in kw or "batch_rows" in kw:
        raise TypeError("report_frame runs on the Dask executor; executor and batch_rows do not apply")
    return dataclasses.replace(_oc.analyze(None, executor=_ex(ddf, split_every), **kw), read=None)
