"""``qcore report`` on a dask cluster: the :class:`~qcore.report.Report` of
:func:`qcore.report.summarize`, from per-task accumulators merged in a tree.

The log is cut into the tasks of :mod:`qcore.rules.distributed` (one per CSV/NDJSON file,
Parquet files in slices of whole row groups). The extent of the log (first and last valid
start, last valid end) comes from the Parquet statistics of a large log, as on one
machine, or else from a first pass merging each task's extent. The main pass maps and
validates each task's rows with the same mapping and contract as the single-machine path
and folds them into the report's per-group accumulators (sketches, window counts of
starts and ends, outcome counts, Little's-law sums, and the raw columns when the log is
small enough for exact intervals); it also checks the extent the statistics promised (a
broken promise takes the first pass after all). The accumulators of one group merge
exactly (Little's-law sums included: exact sums of the core), so the report equals the
single-machine one to the last bit.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from qcore import logs as _logs
from qcore.report import _model
from qcore.report import _stream as _r
from qcore.rules import distributed as _d

__all__ = ["summarize"]


def _frame(task: Any, schema: Mapping[str, Any]) -> pl.DataFrame:
    if isinstance(task, _d._FileSlice):
        return _d._read_slice(task, schema)
    return _d._with_schema(pl.from_pandas(task).lazy(), schema)


def _normalized(task: Any, ctx: dict[str, Any]) -> pl.LazyFrame:
    raw = _frame(task, ctx["schema"]).lazy()
    lf = _logs.normalize(_r._with_class(raw, ctx["pre_cls"]), ctx["mapping"], keep=ctx["keep"])
    return lf.with_columns(ctx["post"])


def _extent(task: Any, args: tuple[Any, ...]) -> tuple[int, float | None, float | None, float | None]:
    (ctx,) = args
    row = _normalized(task, ctx).select(ctx["aggs"]).collect().row(0)
    return (int(row[0]), *(None if v is None else float(v) for v in row[1:4]))  # type: ignore[return-value]


def _merge_extent(a: Any, b: Any) -> Any:
    from qcore.rules.partials import _pmax, _pmin

    return (a[0] + b[0], _pmin(a[1], b[1]), _pmax(a[2], b[2]), _pmax(a[3], b[3]))


def _fold(task: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    ctx, grid = args
    df = _normalized(task, ctx).collect()
    seen = df.select(ctx["aggs"][1:]).row(0)  # the extent the rows promise (checked on the driver)
    valid, rep = _logs.validate(df, ctx["contract"], mapping=ctx["mapping"], on_violation="exclude")
    for c in rep.checks:
        for ex in c.examples:  # example rows show the log's columns only
            for k in _r._ENGINE_COLS:
                ex.pop(k, None)
    valid = valid.filter(pl.col("start").is_finite())
    group_by = ctx["group_by"]
    t0, t1, win_end, end_lim, bin_, n_windows, n_end, keep_raw, index_limit, edge = grid
    accs: dict[tuple[Any, ...], _r._Acc] = {}
    if valid.height:
        has_lat = "latency" in valid.columns
        if group_by:
            keytab = pl.DataFrame(schema={**{k: valid.schema[k] for k in group_by}, "__code": pl.Int64})
            valid, keytab = _r._encode(valid, tuple(group_by), keytab)
            codes = valid.get_column("__code").to_numpy()
            keys = [tuple(row[k] for k in group_by) for row in keytab.sort("__code").iter_rows(named=True)]
        else:
            codes = np.zeros(valid.height, dtype=np.int64)
            keys = [()]
        lst = [_r._Acc(dict(zip(group_by, key, strict=True)), n_windows, keep_raw, n_end) for key in keys]
        b = _r._Batch(valid, has_lat, codes)
        if not group_by and keep_raw:
            _r._update(lst[0], b, None, t0, t1, win_end, end_lim, bin_)
        else:
            _r._update_groups(lst, b, t0, t1, win_end, end_lim, bin_, n_windows, n_end, edge, index_limit)
        accs = dict(zip(keys, lst, strict=True))
    return {"accs": accs, "report": rep, "seen": _r._extend((math.inf, -math.inf, -math.inf), *seen)}


def _merge_fold(a: dict[str, Any], b: dict[str, Any], examples: int) -> dict[str, Any]:
    accs = {k: copy.deepcopy(v) for k, v in a["accs"].items()}
    for k, v in b["accs"].items():
        if k in accs:
            _r._merge_into(accs[k], v)
        else:
            accs[k] = v
    sa, sb = a["seen"], b["seen"]
    return {"accs": accs, "report": _d._merge_reports(a["report"], b["report"], examples),
            "seen": (min(sa[0], sb[0]), max(sa[1], sb[1]), max(sa[2], sb[2]))}


def _fold_all(tasks: list[Any], ctx: dict[str, Any], hint: tuple[int, float, float, float] | None,
              files: Sequence[Any], k: int, bin: float | None, exact_limit: int, confidence: float,
              little_tolerance: float, has_lat: bool, group_by: tuple[str, ...]) -> Any:
    if hint is not None:
        n_total, t0, s1, t1 = hint
        t1_bound: float | None = t1
    else:
        (ext,) = _d._Executor("dask", k).run(tasks, _extent, (ctx,), _merge_extent)
        n_total, t0, t1, s1 = ext
        if not n_total or t0 is None or s1 is None:
            raise ValueError("source: the log has no rows with a valid start time")
        t1 = max(float(t1 if t1 is not None else s1), float(s1))
        t1_bound = None
    span = max(t1 - t0, 1e-9)
    bin_ = float(bin) if bin is not None else _r._nice_bin(span)
    win_end, n_windows, end_lim, n_end, grid = _r._windows(t0, t1, s1, bin_)
    keep_raw = n_total <= exact_limit
    index_limit = 2.0**63 if keep_raw else (2.0**31 if 3 * (n_end + 1) < 2**31 else 2.0**63)
    edge = s1 if t1_bound is not None else None
    grid_args = (t0, t1, win_end, end_lim, bin_, n_windows, n_end, keep_raw, index_limit, edge)
    examples = ctx["contract"].examples
    res = _d._Executor("dask", k).run(tasks, _fold, (ctx, grid_args), lambda a, b: _merge_fold(a, b, examples),
                                      files)
    folded, digests = res[0], list(res[1:])
    acc_list = sorted(folded["accs"].values(),
                      key=lambda a: tuple("" if v is None else str(v) for v in a.key.values()))
    if t1_bound is not None:
        every = acc_list if acc_list else [_r._Acc({}, n_windows, keep_raw, n_end)]
        t1, end_lim, n_end, grid = _r._settle_extent(every, folded["seen"], t0, t1_bound, s1, bin_, bin is None,
                                                      has_lat, n_windows)
    if group_by:
        groups = [_r._finish(a, t0, t1, s1, bin_, confidence, little_tolerance, grid) for a in acc_list]
        overall = _r._Acc({}, n_windows, keep_raw, n_end)
        for a in acc_list:
            _r._merge_into(overall, a)
    else:
        groups = []
        overall = acc_list[0] if acc_list else _r._Acc({}, n_windows, keep_raw, n_end)
    ov = _r._finish(overall, t0, t1, s1, bin_, confidence, little_tolerance, grid)
    return ov, groups, folded["report"], digests, (bin_, t0, t1, grid, keep_raw)


def summarize(
    source: Any,
    *,
    group_by: Sequence[str] = (),
    bin: float | None = None,
    mapping: Any = None,
    contract: _logs.Contract | None = None,
    on_violation: str = "exclude",
    format: str | None = None,
    exact_limit: int = 2_000_000,
    confidence: float = 0.95,
    little_tolerance: float = 0.02,
    title: str = "qcore report",
    split_every: int = _d.DEFAULT_SPLIT_EVERY,
    task_rows: int = _d.DEFAULT_TASK_ROWS,
) -> _model.Report:
    """:func:`qcore.report.summarize` on the cluster of the current
    ``dask.distributed.Client`` (or dask's default scheduler).

    ``source`` is paths or globs (Parquet, CSV, NDJSON) or a dask DataFrame of raw log
    columns; the other parameters are those of :func:`qcore.report.summarize`. The report
    (table, plots, contract, fingerprint with the files' SHA-256) is the single-machine
    one, bit for bit.

    Raises
    ------
    qcore.logs.ColumnDetectionError, qcore.logs.ContractViolationError, ValueError
        As :func:`qcore.report.summarize`.

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> pdf = pd.DataFrame({"ts": [0.0, 1.0, 2.5, 4.0], "latency": [0.2, 0.4, 0.1, 0.3]})
    >>> with dask.config.set(scheduler="sync"):
    ...     rep = summarize(dd.from_pandas(pdf, npartitions=2), bin=1.0)
    >>> rep.overall.count, rep.overall.counts.tolist()
    (4, [1, 1, 1, 0, 1])
    """
    if bin is not None and not (bin > 0 and math.isfinite(bin)):
        raise ValueError(f"bin must be a positive number of seconds, got {bin}")
    if on_violation not in ("exclude", "refuse"):
        raise ValueError(f"on_violation must be 'exclude' or 'refuse', got {on_violation!r}")
    k = int(split_every)
    if k < 2:
        raise ValueError(f"split_every must be ≥ 2, got {split_every}")
    group_by = tuple(group_by)
    schema, files, tasks, sample = _d._source_of(source, format, task_rows)
    m = _logs._mapping_for(sample, mapping)
    pre_cls = _r._class_expr(m, schema)
    keep = [g for g in group_by if g not in _logs.CANONICAL] + (["_qcls"] if pre_cls is not None else [])
    empty = _logs.normalize(_r._with_class(pl.DataFrame(schema=schema).lazy(), pre_cls), m, keep=keep)
    norm_schema = empty.collect_schema()
    _r._check_group_by(group_by, norm_schema)
    post = _r._class_columns(norm_schema)
    con = contract or _logs.Contract()
    if con.max_time is None:  # one evaluation time for the whole run
        con = replace(con, max_time=con.resolved_max_time())
    # schema-level contract failures raise here, before any task runs
    _logs.validate(empty.with_columns(post).collect(), con, mapping=m, on_violation="exclude")
    has_lat = "latency" in norm_schema
    endcol = "end" if "end" in norm_schema else "start"
    aggs = _r._extent_aggs(con, endcol, has_lat)
    ctx = {"schema": schema, "mapping": m, "pre_cls": pre_cls, "keep": keep, "post": post, "aggs": aggs,
           "contract": con, "group_by": list(group_by)}
    if not tasks:
        raise ValueError("source: the log has no rows with a valid start time")

    # Parquet statistics give the extent of a large log without a read (checked by the fold;
    # a broken promise takes the read after all), as on one machine.
    hint = _r._parquet_extent(files, format, m, schema, con, bin) if files else None
    if hint is not None and hint[0] <= exact_limit:
        hint = None
    try:
        out = _fold_all(tasks, ctx, hint, files, k, bin, exact_limit, confidence, little_tolerance, has_lat,
                        group_by)
    except _r._StatsMismatch:
        out = _fold_all(tasks, ctx, None, files, k, bin, exact_limit, confidence, little_tolerance, has_lat,
                        group_by)
    ov, groups, rep, digests, (bin_, t0, t1, grid, keep_raw) = out
    if on_violation == "refuse" and not rep.passed:
        raise _logs.ContractViolationError(replace(rep, action=on_violation))
    rep = replace(rep, action=on_violation)
    h = hashlib.sha256()
    srcs = []
    for p, d in zip(files, digests, strict=True):
        srcs.append({"path": str(p), "bytes": p.stat().st_size, "sha256": d})
        h.update(d.encode())
    fp = _logs.DataFingerprint(srcs, rep.rows_valid, t0, t1, h.hexdigest()).to_dict()
    if not (m.status is not None or m.error is not None):
        for gs in [*groups, ov]:  # the log says nothing about failures
            gs.error_rate = None
    return _model.Report(ov, groups, group_by, bin_, t0, t1, grid, keep_raw, fp, rep.to_dict(), m.to_dict(), title,
                     little_tolerance)
