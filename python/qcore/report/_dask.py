"""``qcore report`` on a dask cluster: the :class:`~qcore.report.Report` of
:func:`qcore.report.summarize`, from per-task accumulators merged in a tree.

The log is cut into the tasks of :mod:`qcore.rules.driver` (one per CSV/NDJSON file,
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import polars as pl

from qcore import logs as _logs
from qcore.pipeline.groups import KeyCodes
from qcore.pipeline.tasks import (
    FileSlice,
    Tasks,
    merge_max,
    merge_min,
    read_slice,
    source_of,
    with_schema,
)
from qcore.report import _model
from qcore.report import _stream as _r

__all__ = ["summarize"]


def _frame(task: Any, schema: Mapping[str, Any]) -> pl.DataFrame:
    if isinstance(task, FileSlice):
        return read_slice(task, schema)
    return with_schema(pl.from_pandas(task).lazy(), schema)


def _normalized(task: Any, ctx: dict[str, Any]) -> pl.LazyFrame:
    raw = _frame(task, ctx["schema"]).lazy()
    lf = _logs.normalize(_r._with_class(raw, ctx["pre_cls"]), ctx["mapping"], keep=ctx["keep"])
    return lf.with_columns(ctx["post"])


def _extent(task: Any, args: tuple[Any, ...]) -> tuple[int, float | None, float | None, float | None]:
    (ctx,) = args
    row = _normalized(task, ctx).select(ctx["rows"].aggs).collect().row(0)
    return (int(row[0]), *(None if v is None else float(v) for v in row[1:4]))  # type: ignore[return-value]


def _merge_extent(a: Any, b: Any) -> Any:
    return (a[0] + b[0], merge_min(a[1], b[1]), merge_max(a[2], b[2]), merge_max(a[3], b[3]))


def _fold(task: Any, args: tuple[Any, ...]) -> tuple[_r._Fold, _r._Tally]:
    """One task's rows folded as one machine folds its batches (:func:`_r._fold_batches`)."""
    ctx, grid = args
    df = _normalized(task, ctx).collect()
    groups = _r._Groups(ctx["group_by"], False, KeyCodes(ctx["group_by"], ctx["key_schema"]), grid.keep_raw)
    tally = _r._Tally.seeded(())
    return _r._fold_batches([df], ctx["rows"], groups, grid, tally), tally


def _fold_all(tasks: list[Any], ctx: dict[str, Any], hint: tuple[int, float, float, float] | None,
              files: Sequence[Any], ex: Any, bin: float | None, exact_limit: int, confidence: float,
              little_tolerance: float, group_by: tuple[str, ...]) -> Any:
    ex.total = ex.done + len(tasks) * (1 if hint is not None else 2)
    if hint is not None:
        n_total, t0, s1, t1 = hint
        t1_bound: float | None = t1
    else:
        (ext,) = ex.run(tasks, _extent, (ctx,), _merge_extent)
        n_total, t0, t1, s1 = ext
        if not n_total or t0 is None or s1 is None:
            raise ValueError("source: the log has no rows with a valid start time")
        t1 = max(float(t1 if t1 is not None else s1), float(s1))
        t1_bound = None
    grid = _r._grid_of(n_total, t0, t1, s1, bin, exact_limit, t1_bound)
    rows = ctx["rows"]
    res = ex.run(tasks, _fold, (ctx, grid), lambda a, b: (
        _r._merge_folds(a[0], b[0]), a[1].merged(b[1], rows.contract.examples)), files)
    (accs, tally), digests = res[0], list(res[1:])
    failures = rows.m.status is not None or rows.m.error is not None
    ov, groups, t1, grid_t = _r._summaries(accs, tally.seen, grid, s1, t1_bound, bin is None, rows.has_lat, group_by,
                                           confidence, little_tolerance, failures)
    return ov, groups, tally, digests, (grid.bin, t0, t1, grid_t, grid.keep_raw)


def summarize(
    source: Any,
    *,
    group_by: Sequence[str],
    bin: float | None,
    mapping: Any,
    contract: _logs.Contract | None,
    on_violation: str,
    format: str | None,
    exact_limit: int,
    confidence: float,
    little_tolerance: float,
    title: str,
    split_every: int,
    task_rows: int,
    progress: Callable[[int, int], None] | None,
) -> _model.Report:
    """:func:`qcore.report.summarize` with ``executor="dask"`` (which checks the
    arguments and holds their defaults): on the cluster of the current
    ``dask.distributed.Client`` (or dask's default scheduler).

    ``source`` is paths or globs (Parquet, CSV, NDJSON) or a dask DataFrame of raw log
    columns. The report (table, plots, contract, fingerprint with the files' SHA-256) is
    the single-machine one, bit for bit. With a ``dask.distributed`` client,
    ``progress(tasks_done, tasks_total)`` is called as each task of each pass finishes.
    """
    k = int(split_every)
    group_by = tuple(group_by)
    schema, files, tasks, sample = source_of(source, format, task_rows)
    m = _logs.mapping_for(sample, mapping)
    pre_cls = _r._class_expr(m, schema)
    keep = [g for g in group_by if g not in _logs.CANONICAL] + (["_qcls"] if pre_cls is not None else [])
    empty = _logs.normalize(_r._with_class(pl.DataFrame(schema=schema).lazy(), pre_cls), m, keep=keep)
    norm_schema = empty.collect_schema()
    _r._check_group_by(group_by, norm_schema)
    post = _r._class_columns(norm_schema)
    con = _r._resolved_contract(contract)
    # schema-level contract failures raise here, before any task runs
    _logs.validate(empty.with_columns(post).collect(), con, mapping=m, on_violation="exclude")
    has_lat = "latency" in norm_schema
    aggs = _r._extent_aggs(con, "end" if "end" in norm_schema else "start", has_lat)
    ctx = {"schema": schema, "mapping": m, "pre_cls": pre_cls, "keep": keep, "post": post, "group_by": group_by,
           "key_schema": {k: norm_schema[k] for k in group_by}, "rows": _r._Rows(m, False, False, True, has_lat, aggs, con,
                                                                        "exclude")}
    if not tasks:
        raise ValueError("source: the log has no rows with a valid start time")

    # Parquet statistics give the extent of a large log without a read (checked by the fold;
    # a broken promise takes the read after all), as on one machine.
    hint = _r._parquet_extent(files, format, m, schema, con, bin) if files else None
    if hint is not None and hint[0] <= exact_limit:
        hint = None
    ex = Tasks("dask", k, progress)
    try:
        out = _fold_all(tasks, ctx, hint, files, ex, bin, exact_limit, confidence, little_tolerance, group_by)
    except _r._StatsMismatch:
        out = _fold_all(tasks, ctx, None, files, ex, bin, exact_limit, confidence, little_tolerance, group_by)
    ov, groups, tally, digests, (bin_, t0, t1, grid, keep_raw) = out
    rep = tally.report("exclude")
    if on_violation == "refuse" and not rep.passed:
        raise _logs.ContractViolationError(replace(rep, action=on_violation))
    rep = replace(rep, action=on_violation)
    fp = _logs.DataFingerprint.of_files(files, digests, rep.rows_valid, t0, t1).to_dict()
    return _model.Report(ov, groups, group_by, bin_, t0, t1, grid, keep_raw, fp, rep.to_dict(), m.to_dict(), title,
                     little_tolerance)
