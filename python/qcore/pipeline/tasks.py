"""Tasks: a log cut into parts (files, Parquet files in slices of whole row groups, or the
partitions of a dask DataFrame), folded one after another in this process or on a dask
scheduler, and merged in one tree.

:class:`Tasks` is the executor of the passes of :mod:`qcore.rules.driver` and of the
report on dask (:mod:`qcore.report`): both cut their sources with :func:`source_of`, read
each task's rows with :func:`read_slice` / :func:`slice_batches` in the schema of the
whole source, and merge the partial results ``split_every`` at a time, adjacent tasks
together (:func:`qcore.pipeline.executors.tree`), so the local and the dask runs give the
same result.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from qcore import logs as _logs
from qcore.exceptions import InvalidArgumentError
from qcore.pipeline.executors import tree

__all__ = ["DEFAULT_BATCH_ROWS", "DEFAULT_SPLIT_EVERY", "DEFAULT_TASK_ROWS", "FileSlice", "Progress", "Tasks",
           "combine", "distributed_client", "file_slices", "merge_max", "merge_min", "read_slice", "scan_slice",
           "sha256_of", "slice_batches", "source_of", "with_schema"]

DEFAULT_SPLIT_EVERY = 8
#: Parquet files are cut into tasks of about this many rows (whole row groups)
DEFAULT_TASK_ROWS = 4_000_000
#: The local executor reads each task in batches of at most this many rows
DEFAULT_BATCH_ROWS = 1_000_000


@dataclass(frozen=True)
class FileSlice:
    """A task's rows: a file, or the ``length`` rows of a Parquet file from ``offset``."""

    path: str
    kind: str
    offset: int | None = None  # rows, for Parquet slices
    length: int | None = None



def with_schema(lf: pl.LazyFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """The rows in the schema of the whole source (as the single-machine reader
    concatenates files: missing columns null, types relaxed to the common one)."""
    empty = pl.DataFrame(schema=dict(schema)).lazy()
    return pl.concat([empty, lf], how="diagonal_relaxed").select(list(schema)).collect()


def scan_slice(sl: FileSlice) -> pl.LazyFrame:
    if sl.kind == "parquet":
        lf = pl.scan_parquet(sl.path)
        if sl.offset is not None:
            lf = lf.slice(sl.offset, sl.length)
    elif sl.kind == "csv":
        lf = pl.scan_csv(sl.path, infer_schema_length=10_000,
                         separator="\t" if sl.path.lower().endswith(".tsv") else ",")
    else:
        lf = pl.scan_ndjson(sl.path, infer_schema_length=10_000)
    return lf


def read_slice(sl: FileSlice, schema: Mapping[str, Any]) -> pl.DataFrame:
    return with_schema(scan_slice(sl), schema)


def slice_batches(sl: FileSlice, schema: Mapping[str, Any], batch_rows: int) -> Any:
    """The raw rows of a file slice in batches of at most ``batch_rows`` rows, each in the
    schema of the whole source, read by polars' streaming engine."""
    empty = True
    for b in scan_slice(sl).collect_batches(chunk_size=batch_rows, maintain_order=True):
        for off in range(0, b.height, batch_rows):
            empty = False
            yield with_schema(b.slice(off, batch_rows).lazy(), schema)
    if empty:  # a file of no rows is one empty batch (its task still gives a partial result)
        yield with_schema(pl.DataFrame(schema=dict(schema)).lazy(), schema)



def file_slices(paths: Sequence[Path], fmt: str | None, task_rows: int) -> list[FileSlice]:
    """One task per CSV/NDJSON file; Parquet files in slices of whole row groups of about
    ``task_rows`` rows."""
    out: list[FileSlice] = []
    for p in paths:
        kind = _logs.format_of(p, fmt)
        if kind != "parquet":
            out.append(FileSlice(str(p), kind))
            continue
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        md = pq.ParquetFile(str(p)).metadata
        start = acc = 0
        for i in range(md.num_row_groups):
            acc += md.row_group(i).num_rows
            if acc - start >= task_rows:
                out.append(FileSlice(str(p), kind, start, acc - start))
                start = acc
        if acc > start or md.num_row_groups == 0:
            out.append(FileSlice(str(p), kind, start, acc - start))
    return out



def source_of(source: Any, format: str | None,
               task_rows: int) -> tuple[dict[str, Any], list[Path], list[Any], pl.LazyFrame | pl.DataFrame]:
    """(raw schema of the whole source, its files, the tasks) and the raw rows the column mapping is detected from (the files
    as one lazy frame, so a shipped dataset is recognised and units come from the first
    rows, as on one machine; the first rows of a dask DataFrame)."""
    if isinstance(source, (str, os.PathLike, list, tuple)):
        raw, files = _logs.scan_raw(source, format=format)
        return dict(raw.collect_schema()), files, list(file_slices(files, format, int(task_rows))), raw
    import dask.dataframe as dd

    if not isinstance(source, dd.DataFrame):
        raise TypeError(f"source must be paths or a dask DataFrame, got {type(source).__name__}")
    schema = dict(pl.from_pandas(source._meta).schema)
    head = with_schema(pl.from_pandas(source.head(_logs.SAMPLE_ROWS, npartitions=-1)).lazy(), schema)
    return schema, [], list(source.to_delayed()), head  # type: ignore[no-untyped-call]



def executor_kind(source: Any, executor: str | None) -> str:
    """The executor of ``report.summarize`` and ``rules.evaluate``: ``"local"`` or
    ``"dask"`` (by default ``"dask"`` for a dask DataFrame, else ``"local"``).

    >>> executor_kind("logs/*.parquet", None), executor_kind("x", "dask")
    ('local', 'dask')
    """
    if executor is None:
        return "dask" if type(source).__module__.startswith("dask.") else "local"
    if executor not in ("local", "dask"):
        raise InvalidArgumentError(f"executor must be 'local' or 'dask', got {executor!r}")
    return executor


def merge_max(*vals: float | None) -> float | None:
    """The largest of partial results' values, as polars reduces a column (nulls and NaN
    left out unless nothing else is left): how the parts' newest times and extents merge.

    >>> merge_max(None, 2.0, float("nan"), 1.0), merge_max(None, None)
    (2.0, None)
    """
    v = pl.Series(list(vals), dtype=pl.Float64).max()
    return None if v is None else float(v)  # type: ignore[arg-type]


def merge_min(*vals: float | None) -> float | None:
    """The smallest of partial results' values, as :func:`merge_max`."""
    v = pl.Series(list(vals), dtype=pl.Float64).min()
    return None if v is None else float(v)  # type: ignore[arg-type]


def combine(merge: Callable[[Any, Any], Any], *xs: Any) -> Any:
    """``xs`` merged left to right."""
    acc = xs[0]
    for x in xs[1:]:
        acc = merge(acc, x)
    return acc


def sha256_of(path: str) -> str:
    """The SHA-256 of a file (read where the task runs)."""
    return _logs.sha256_file(Path(path))


Progress = Callable[[int, int], None]


def distributed_client() -> Any:
    """The current ``dask.distributed`` client, or None (dask's local schedulers)."""
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - distributed is installed with dask's extra
        return None
    try:
        return get_client()
    except ValueError:
        return None


@dataclass
class Tasks:
    """How a pass runs: ``"local"`` reads and folds one task after another in this process
    (memory holds one task's rows), ``"dask"`` runs the tasks on the current dask scheduler.
    Both merge the tasks' partial results in the same tree (``split_every`` at a time), so
    they give the same result."""

    kind: str
    split_every: int
    progress: Progress | None = None
    schema: Mapping[str, Any] | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    done: int = 0
    total: int = 0

    def _parts(self, task: Any) -> Any:
        if isinstance(task, FileSlice) and self.schema is not None:
            yield from slice_batches(task, self.schema, self.batch_rows)
        else:
            yield task

    def run(self, tasks: list[Any], f: Callable[..., Any], args: tuple[Any, ...],
            merge: Callable[[Any, Any], Any], files: Sequence[Path] = ()) -> tuple[Any, ...]:
        """(the merged result of ``f`` over ``tasks``, then the SHA-256 of each of ``files``)."""
        if self.kind == "local":
            level: list[Any] = []
            for t in tasks:
                level.extend(f(part, args) for part in self._parts(t))
                self.done += 1
                if self.progress is not None:
                    self.progress(self.done, self.total)
            k = self.split_every
            while len(level) > 1:
                level = [combine(merge, *level[i:i + k]) for i in range(0, len(level), k)]
            return (level[0], *[sha256_of(str(p)) for p in files])
        from dask.base import compute
        from dask.delayed import delayed

        fd = delayed(f, pure=True)
        shared = delayed(args, traverse=False)  # one object in the graph, not walked per task
        parts: list[Any] = [fd(t, shared) for t in tasks]
        client = distributed_client() if self.progress is not None else None
        if client is not None:
            # The tasks first, counted as they finish; then the same merge tree over them.
            from distributed import as_completed

            futures = client.compute(parts)
            for _ in as_completed(futures):  # type: ignore[no-untyped-call]
                self.done += 1
                self.progress(self.done, self.total)  # type: ignore[misc]
            # (a lone future is wrapped: dask computes futures only as arguments of a task)
            parts = futures if len(futures) > 1 else [delayed(combine, pure=True)(merge, futures[0])]
        hashes = [delayed(sha256_of, pure=True)(str(p)) for p in files]
        out: tuple[Any, ...] = compute(tree(parts, functools.partial(combine, merge), self.split_every), *hashes)  # type: ignore[no-untyped-call]
        return out
