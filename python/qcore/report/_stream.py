"""The report's computation: the log read in batches into per-group accumulators, then
finished into :class:`~qcore.report.Report`."""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from qcore import _qcore as _qc
from qcore import logs as _logs
from qcore.io.contract import check_on_violation
from qcore.io.mapping import failed_expr
from qcore.pipeline.executors import read_ahead
from qcore.pipeline.groups import KeyCodes
from qcore.pipeline.tasks import executor_kind
from qcore.report._model import QUANTILES, GroupSummary, Report
from qcore.tail import widen_for_sketch

__all__ = ["summarize"]


def _nice_bin(span: float, target: int = 500) -> float:
    if not (span > 0 and math.isfinite(span)):
        return 1.0
    raw = span / target
    steps = [0.001, 0.01, 0.1, 1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
             7200, 21600, 43200, 86400]
    for s in steps:
        if s >= raw:
            return float(s)
    return 86400.0 * math.ceil(raw / 86400.0)


class _FileHasher:
    """SHA-256 of the source files, computed in a background thread."""

    def __init__(self, files: Sequence[Path]) -> None:
        import threading

        self.files = list(files)
        self._out: list[str] = []
        self._err: BaseException | None = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        try:
            for p in self.files:
                self._out.append(_logs.sha256_file(p))
        except BaseException as e:  # noqa: BLE001  # pragma: no cover - reported by result()
            self._err = e

    def result(self) -> list[str]:
        self._t.join()
        if self._err is not None:
            raise self._err
        return self._out



class _Acc:
    """One group of a fold: its key, its row ``code`` in the fold's core accumulator
    (:class:`qcore.ReportAccumulator`: the counts, window tables and Little's-law sums),
    its sketch of the ok latencies, its series over time and, for small logs, its raw
    columns (for the exact statistics)."""

    def __init__(self, key: dict[str, Any], code: int, keep_raw: bool) -> None:
        import qcore

        self.key = key
        self.code = code
        self.sketch = qcore.QuantileSketch(relative_accuracy=0.01)
        self.keep_raw = keep_raw
        self.raw_start: list[np.ndarray] = []
        self.raw_end: list[np.ndarray] = []
        self.raw_ok_lat: list[np.ndarray] = []
        self.raw_done_start: list[np.ndarray] = []
        #: the group's own series over time (``None`` once the log has too many groups)
        self.timeline: _Timeline | None = _Timeline()


@dataclass
class _Fold:
    """A part of the log folded: the core's state of every group (``core``, group
    ``a.code`` for each ``a`` in ``accs``), the groups by key, and the log's timeline."""

    core: Any
    accs: dict[tuple[Any, ...], _Acc]
    timeline: _Timeline


#: plot windows of the timelines at most
_TIMELINE_POINTS = 60
#: groups with timelines of their own at most (more: the whole log's only)
GROUP_TIMELINES_MAX = 64
#: the per-window sketches of a timeline: the ok requests' latency, TTFT and TPOT
_MEASURES = ("latency", "ttft", "tpot")
#: the per-window token sums of a timeline (requests arriving in the window)
_TOKENS = ("tokens_in", "tokens_out")


class _Timeline:
    """Mergeable series over the plot windows (``k`` report windows each: the report's
    window index of the start divided by ``k``): per window, one sketch of each measure of
    the ok requests arriving in it (latency, and TTFT / TPOT when the log has them), and
    the input and output tokens of the requests arriving in it (whole tokens, exact sums).

    The log's timeline also records whether a part of the log had more groups than
    :data:`GROUP_TIMELINES_MAX` (``dropped``), so that every executor keeps the groups'
    timelines in the same cases."""

    def __init__(self) -> None:
        self.sketches: dict[str, dict[int, Any]] = {m: {} for m in _MEASURES}
        self.tokens: dict[str, dict[int, int]] = {t: {} for t in _TOKENS}
        self.dropped = False
        #: ``(t0, width, n, confidence)`` of the plot windows, once the report is finished
        self.frame: tuple[float, float, int, float] | None = None

    def add_sketches(self, measure: str, sketches: Iterable[tuple[int, Any]]) -> None:
        own = self.sketches[measure]
        for j, sk in sketches:
            if j in own:
                own[j].merge(sk)
            else:
                own[j] = sk

    def add_tokens(self, kind: str, sums: Iterable[tuple[int, int]]) -> None:
        own = self.tokens[kind]
        for j, v in sums:
            own[j] = own.get(j, 0) + v

    def merge(self, other: _Timeline) -> None:
        for m, sks in other.sketches.items():
            self.add_sketches(m, ((j, copy.deepcopy(sk)) for j, sk in sks.items()))
        for kind, sums in other.tokens.items():
            self.add_tokens(kind, sums.items())
        self.dropped = self.dropped or other.dropped
        self.frame = self.frame or other.frame

    def rows(self, measure: str, t0: float, width: float, confidence: float) -> list[dict[str, Any]]:
        """One row a plot window with values: its start and end, requests, and p50/p99/p999
        with their distribution-free intervals from the window's sketch (``None`` where the
        window has too few requests for the interval at ``confidence``)."""
        import qcore

        out = []
        for j in sorted(self.sketches[measure]):
            sk = self.sketches[measure][j]
            row: dict[str, Any] = {"start": t0 + j * width, "end": t0 + (j + 1) * width, "count": int(sk.count)}
            for q in QUANTILES:
                tag = f"p{q * 100:g}".replace(".", "")
                ci = qcore.sketch_quantile_ci(sk, q, confidence=confidence)
                row[tag] = float(sk.quantile(q))
                row[tag + "_lo"], row[tag + "_hi"] = _nan_none(ci.lo), _nan_none(ci.hi)
            out.append(row)
        return out

    def token_rows(self, t0: float, width: float, n: int) -> list[dict[str, Any]]:
        """Every plot window's tokens in and out (``[]`` when the log has no token column)."""
        if not any(self.tokens.values()):
            return []
        out = []
        for j in range(n):
            row: dict[str, Any] = {"start": t0 + j * width, "end": t0 + (j + 1) * width}
            for kind in _TOKENS:
                if self.tokens[kind]:
                    v = self.tokens[kind].get(j, 0)
                    row[kind], row[kind + "_per_s"] = v, v / width
            out.append(row)
        return out

    def over_time(self) -> dict[str, list[dict[str, Any]]]:
        """The rows of every series on the report's plot windows (see :attr:`frame`)."""
        assert self.frame is not None
        t0, width, n, confidence = self.frame
        return {**{m: self.rows(m, t0, width, confidence) for m in _MEASURES},
                "tokens": self.token_rows(t0, width, n)}


def _in_flight_rows(gs: GroupSummary, t0: float, k: int, bin_: float) -> list[dict[str, Any]]:
    """The peak in flight per plot window (``k`` in-flight windows each: the largest of
    their peaks, exact when theirs are, else its bounds)."""
    lo, hi = gs.inflight_peak_lo, gs.inflight_peak_hi
    if not lo.size:
        return []
    pad = (-lo.size) % k
    lo_k = np.concatenate([lo, np.zeros(pad, dtype=np.int64)]).reshape(-1, k).max(axis=1)
    hi_k = np.concatenate([hi, np.zeros(pad, dtype=np.int64)]).reshape(-1, k).max(axis=1)
    return [{"start": t0 + j * k * bin_, "end": t0 + (j + 1) * k * bin_, "peak_lo": int(a), "peak_hi": int(b)}
            for j, (a, b) in enumerate(zip(lo_k, hi_k, strict=True))]


def _window_sketches(pairs: np.ndarray, values: np.ndarray, n_pairs: int) -> list[tuple[int, Any]]:
    """``(pair, sketch)`` for every pair index present: one sketch of each pair's values
    (a dense pass when the batch is large against the pairs, else over the pairs met)."""
    import qcore

    if pairs.size >= n_pairs:
        return [(j, sk) for j, sk in enumerate(qcore.sketch_groups(pairs, values, 0.01)) if sk.count > 0]
    met, inv = np.unique(pairs, return_inverse=True)
    return [(int(met[i]), sk) for i, sk in enumerate(qcore.sketch_groups(inv.astype(np.int64), values, 0.01))]


def _window_tokens(pairs: np.ndarray, tokens: np.ndarray, n_pairs: int) -> list[tuple[int, int]]:
    """``(pair, tokens)`` for every pair index present: whole tokens summed exactly (the
    float sums of whole numbers below 2**53 are exact)."""
    sums = np.bincount(pairs, weights=np.rint(tokens), minlength=n_pairs)
    seen = np.bincount(pairs, minlength=n_pairs) > 0
    return [(int(j), int(sums[j])) for j in np.flatnonzero(seen)]


def _spill(log: _Timeline, accs: Iterable[_Acc]) -> None:
    """The groups' timelines merged into the log's and dropped (the log has more groups
    than :data:`GROUP_TIMELINES_MAX`): from here on the rows go to the log's only."""
    log.dropped = True
    for a in accs:
        if a.timeline is not None:
            _latency_into_sketch(a)
            log.merge(a.timeline)
            a.timeline = None


def _latency_into_sketch(a: _Acc) -> None:
    """The group's latency windows merged into its sketch (the batch kernel sketches the
    latencies by window while the group has its timeline: the group's sketch is their
    merge, exact)."""
    assert a.timeline is not None
    for sk in a.timeline.sketches["latency"].values():
        a.sketch.merge(sk)


def _window_targets(owners: Sequence[_Timeline], n_plot: int) -> list[Any]:
    """The latency sketch of every owner's every plot window, in the batch kernel's order
    (owner by owner, window by window); the empty ones are dropped after the call."""
    import qcore

    out = []
    for tl in owners:
        own = tl.sketches["latency"]
        for j in range(n_plot):
            if j not in own:
                own[j] = qcore.QuantileSketch(relative_accuracy=0.01)
            out.append(own[j])
    return out


def _drop_empty(owners: Sequence[_Timeline]) -> None:
    for tl in owners:
        own = tl.sketches["latency"]
        for j in [j for j, sk in own.items() if sk.count == 0]:
            del own[j]


def _window_owners(log: _Timeline, accs: list[_Acc], grouped: bool) -> list[_Timeline]:
    """Whose timelines the batch's latencies go to by window, straight from the batch
    kernel: the log's without groups, each group's while the log has at most
    :data:`GROUP_TIMELINES_MAX` (past it, the groups' are spilled into the log's, and the
    kernel sketches by group again)."""
    if not grouped:
        return [log]
    if not log.dropped and len(accs) > GROUP_TIMELINES_MAX:
        _spill(log, accs)
    if log.dropped:
        return []
    return [a.timeline for a in accs if a.timeline is not None]


def _update_timelines(log: _Timeline, accs: list[_Acc], b: _Batch, g: _Grid, grouped: bool,
                      latency_done: bool) -> None:
    """The batch's rows into each group's timeline while the log has at most
    :data:`GROUP_TIMELINES_MAX` groups (the log's windows are then their merge, made when
    the report is finished), else into the log's; the latencies only when the batch
    kernel has not sketched them by window already (``latency_done``)."""
    if not any(v is not None for v in (b.ttft, b.tpot, b.tokens_in, b.tokens_out)) and (latency_done or not b.has_lat):
        return
    n_plot = -(-g.n_windows // g.plot_k)
    w = _qc.report_window_indices(np.ascontiguousarray(b.start), g.t0, g.bin, g.n_windows,
                                  g.index_limit) // g.plot_k
    per_group = grouped and not log.dropped
    assert b.codes is not None
    codes = np.ascontiguousarray(b.codes, dtype=np.int64)
    ok = b.cls == 0
    for name, vals in (("latency", b.lat if b.has_lat and not latency_done else None), ("ttft", b.ttft),
                       ("tpot", b.tpot),
                       *((t, getattr(b, t)) for t in _TOKENS)):
        if vals is None:
            continue
        keep = np.isfinite(vals) & (ok if name in _MEASURES else True)
        if not keep.any():
            continue
        wk, vk = w[keep], np.ascontiguousarray(vals[keep], dtype=np.float64)
        if not per_group:
            if name in _MEASURES:
                log.add_sketches(name, _window_sketches(wk, vk, n_plot))
            else:
                log.add_tokens(name, _window_tokens(wk, vk, n_plot))
            continue
        pairs, n_pairs = codes[keep] * n_plot + wk, len(accs) * n_plot
        found = _window_sketches(pairs, vk, n_pairs) if name in _MEASURES else _window_tokens(pairs, vk, n_pairs)
        for pair, v in found:
            tl = accs[pair // n_plot].timeline
            assert tl is not None
            if name in _MEASURES:
                tl.add_sketches(name, [(pair % n_plot, v)])
            else:
                tl.add_tokens(name, [(pair % n_plot, v)])


# --------------------------------------------------------------------------------------
# computation
# --------------------------------------------------------------------------------------

def _progress_printer(total: int, enabled: bool) -> Callable[[int], None]:
    if not enabled or total <= 0:
        return lambda done: None
    t_start = time.monotonic()

    def show(done: int) -> None:
        frac = min(1.0, done / total)
        bar = "#" * int(30 * frac)
        el = time.monotonic() - t_start
        sys.stderr.write(f"\r[{bar:<30}] {100 * frac:5.1f}%  {done:,}/{total:,} rows  {el:.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def summarize(
    source: Any,
    *,
    group_by: Sequence[str] = (),
    bin: float | None = None,
    mapping: Any = None,
    contract: _logs.Contract | None = None,
    on_violation: _logs.OnViolation = "exclude",
    format: str | None = None,
    batch_rows: int = 1_000_000,
    exact_limit: int = 2_000_000,
    confidence: float = 0.95,
    little_tolerance: float = 0.02,
    progress: bool | Callable[[int, int], None] | None = None,
    title: str = "qcore report",
    executor: str | None = None,
    split_every: int | None = None,
    task_rows: int | None = None,
) -> Report:
    """Summarize a request log per group.

    Parameters
    ----------
    source
        Paths/globs (Parquet, CSV, NDJSON), a polars DataFrame/LazyFrame (raw or
        canonical), or a :class:`qcore.logs.Logs`.
    group_by
        Columns to group by (canonical names such as ``endpoint`` or source columns).
    bin
        Window (s) for arrival counts and burstiness; chosen from the span by default.
    exact_limit
        Up to this many rows the raw columns are kept for exact CIs and statistics.
    progress
        Print a progress bar on stderr (default: when stderr is a terminal and the log
        has more than one batch). On dask, a callable ``progress(tasks_done,
        tasks_total)`` is called as each task finishes (with a ``dask.distributed`` client).
    executor
        Where the rows are folded: ``"local"`` (in this process, batch by batch) or
        ``"dask"`` (the tasks of the files, or the partitions of a dask DataFrame, on the
        current dask scheduler, merged in a tree of ``split_every``; Parquet files are cut
        into tasks of about ``task_rows`` rows). By default ``"dask"`` for a dask
        DataFrame, else ``"local"``. Every executor gives the same report, bit for bit.

    Raises
    ------
    ValueError
        An unknown ``executor``, or ``split_every``/``task_rows`` without ``"dask"``.
    qcore.logs.ColumnDetectionError
        Columns could not be mapped (the message lists them).
    qcore.logs.ContractViolationError
        ``on_violation="refuse"`` and the log breaks its contract.

    Notes
    -----
    Logs larger than ``exact_limit`` are read once, in batches of ``batch_rows`` (one
    batch read ahead on another thread). For Parquet files with numeric times, the
    first/last start and a bound on the last end come from the files' statistics
    instead of a first pass; every value they promise is checked against the rows read,
    and the summary is recomputed with a first pass if one does not hold. The result is
    the same either way, to the last bit: every sum is exact, so neither the batches nor
    the statistics' shortcut change a result.

    Examples
    --------
    >>> import polars as pl
    >>> log = pl.DataFrame({"ts": [0.0, 1.0, 2.5, 4.0], "latency": [0.2, 0.4, 0.1, 0.3]})
    >>> rep = summarize(log, bin=1.0)
    >>> rep.overall.count, rep.overall.counts.tolist()
    (4, [1, 1, 1, 0, 1])
    """
    if bin is not None and not (bin > 0 and math.isfinite(bin)):
        raise ValueError(f"bin must be a positive number of seconds, got {bin}")
    check_on_violation(on_violation)
    kw: dict[str, Any] = {
        "group_by": group_by, "bin": bin, "mapping": mapping, "contract": contract, "on_violation": on_violation,
        "format": format, "exact_limit": exact_limit, "confidence": confidence,
        "little_tolerance": little_tolerance, "title": title}
    if executor_kind(source, executor) == "dask":
        from qcore.pipeline.tasks import DEFAULT_SPLIT_EVERY, DEFAULT_TASK_ROWS
        from qcore.report import _dask

        k = DEFAULT_SPLIT_EVERY if split_every is None else int(split_every)
        if k < 2:
            raise ValueError(f"split_every must be ≥ 2, got {split_every}")
        return _dask.summarize(source, **kw, split_every=k,
                               task_rows=DEFAULT_TASK_ROWS if task_rows is None else task_rows,
                               progress=progress if callable(progress) else None)
    if split_every is not None or task_rows is not None:
        raise ValueError("split_every and task_rows apply to executor='dask'")
    if callable(progress):
        raise ValueError("progress: a callable applies to executor='dask'; use True or False")
    kw.update(batch_rows=batch_rows, progress=progress)
    try:
        return _summarize(source, use_stats=True, **kw)
    except _StatsMismatch:
        return _summarize(source, use_stats=False, **kw)


class _StatsMismatch(Exception):
    """The data broke a promise of its Parquet statistics (the run is redone with a pass)."""


@dataclass
class _Input:
    """A log source opened for the report: its mapping, the canonical lazy frame, and
    what the report needs to know of where the rows come from."""

    m: _logs.ColumnMapping
    lf: pl.LazyFrame
    files: list[Path]
    pre_validated: bool                  # rows already kept by a contract (or canonical input)
    canonical_in: bool                   # a frame already in canonical columns
    pre_cls: pl.Expr | None              # the outcome class straight from a numeric column
    extra_keep: list[str]                # source columns carried through (group keys, _qcls)
    raw_schema: dict[str, Any] | None    # the files' raw schema (Parquet statistics)


def _open_input(source: Any, mapping: Any, format: str | None, group_by: tuple[str, ...]) -> _Input:
    extra_keep = [k for k in group_by if k not in _logs.CANONICAL]
    if isinstance(source, _logs.Logs):
        return _Input(source.mapping, source.frame.lazy(), list(source.sources), True, False, None,
                      extra_keep, None)
    if isinstance(source, (pl.DataFrame, pl.LazyFrame)):
        schema = source.collect_schema() if isinstance(source, pl.LazyFrame) else source.schema
        if "start" in schema and "outcome" in schema and schema["start"] == pl.Float64 and mapping is None:
            return _Input(_logs.ColumnMapping(start="start"), source.lazy(), [], True, True, None, extra_keep, None)
        m = _logs.mapping_for(source, mapping)
        return _Input(m, _logs.normalize(source, m, keep=extra_keep), [], False, False, None, extra_keep, None)
    raw, files = _logs.scan_raw(source, format=format)
    m = _logs.mapping_for(raw, mapping)
    raw_schema = dict(raw.collect_schema())
    # the outcome class straight from a numeric status/error column (no string compare)
    pre_cls = _class_expr(m, raw_schema)
    if pre_cls is not None:
        extra_keep = [*extra_keep, "_qcls"]
    lf = _logs.normalize(_with_class(raw, pre_cls), m, keep=extra_keep)
    return _Input(m, lf, files, False, False, pre_cls, extra_keep, raw_schema)


def _first_extent(inp: _Input, aggs: list[pl.Expr], contract: _logs.Contract | None, bin: float | None,
                  exact_limit: int, format: str | None,
                  use_stats: bool) -> tuple[int, float, float, float, float | None]:
    """``(rows, t0, t1, s1, t1_bound)``: from the Parquet statistics when they can promise
    it (``t1_bound`` set; large logs only), else from a streaming pass over the log."""
    hint = None
    if use_stats and contract is not None and inp.files and inp.raw_schema is not None:
        hint = _parquet_extent(inp.files, format, inp.m, inp.raw_schema, contract, bin)
    if hint is not None and hint[0] <= exact_limit:
        hint = None                    # small enough to keep raw: take the plain pass
    t1_bound: float | None = None
    if hint is not None:
        n_total, t0, s1, t1_bound = hint
        t1: Any = t1_bound
    else:
        n_total, t0, t1, s1 = inp.lf.select(aggs).collect(engine="streaming").row(0)[:4]
    if not n_total or t0 is None:
        raise ValueError("source: the log has no rows with a valid start time")
    t1 = max(float(t1 if t1 is not None else s1), float(s1))
    return int(n_total), float(t0), t1, float(s1), t1_bound


def _fast_columns(inp: _Input, schema: Any, group_by: tuple[str, ...], batch_rows: int,
                  contract: _logs.Contract | None, on_violation: str,
                  post: list[pl.Expr]) -> tuple[bool, bool, dict[str, _logs.ContractCheck]]:
    """The engine columns of the streaming path appended to ``post`` (categorical group
    codes, one "breaks the contract" flag): ``(cat_key, quick_contract, seed checks)``."""
    cat_key = len(group_by) == 1 and schema[group_by[0]] in (pl.String, pl.Categorical)
    if cat_key:
        # the key values of the first rows name an Enum (cheaper than a Categorical);
        # a batch with a value outside it (null code) takes the general encoding
        k0 = group_by[0]
        seen_keys = inp.lf.select(pl.col(k0).head(min(batch_rows, 1_000_000)).unique()).collect()
        cats = sorted({str(v) for v in seen_keys.get_column(k0).to_list() if v is not None})
        code = pl.col(k0).cast(pl.Enum(cats), strict=False) if cats else pl.col(k0).cast(pl.Categorical)
        post.append(code.to_physical().alias("_qcat"))
    if inp.pre_validated or contract is None:
        return cat_key, False, {}
    quick_contract, seed = _contract_seed(inp.lf, contract, inp.m, on_violation)
    if not quick_contract:
        return cat_key, False, {}
    rules = _logs.row_rules(dict(schema), contract, inp.m)
    flag = pl.any_horizontal([e.fill_null(False) for _, _, e in rules]) if rules else pl.lit(False)
    post.append(flag.alias("_qbad"))
    return cat_key, True, {c.name: c for c in seed}


@dataclass
class _Tally:
    """The contract report of the rows read so far (rows read and kept, the checks), and
    the extent met (t0, t1, s1) while the batches are read."""

    rep: _logs.ContractReport
    seen: tuple[float, float, float] = (math.inf, -math.inf, -math.inf)

    @classmethod
    def seeded(cls, checks: Iterable[_logs.ContractCheck]) -> _Tally:
        """No rows yet; ``checks`` listed in the report even when nothing breaks them."""
        return cls(_logs.ContractReport(0, 0, list(checks), "exclude"))

    @property
    def rows_valid(self) -> int:
        return self.rep.rows_valid

    def count_valid(self, n: int) -> None:
        """``n`` more rows read, all kept."""
        self.rep.rows_total += n
        self.rep.rows_valid += n

    def add(self, rep: _logs.ContractReport, limit: int) -> None:
        """The report of the next rows (example rows show the log's columns only)."""
        for c in rep.checks:
            for ex in c.examples:
                for k in _ENGINE_COLS:
                    ex.pop(k, None)
        self.rep = self.rep.then(rep, limit)

    def report(self, action: _logs.OnViolation) -> _logs.ContractReport:
        return replace(self.rep, action=action)

    def merged(self, other: _Tally, limit: int) -> _Tally:
        """This part's tally followed by ``other``'s (its example rows renumbered)."""
        return _Tally(self.rep.then(other.rep, limit), _extend(self.seen, *other.seen))


@dataclass(frozen=True)
class _Rows:
    """How the rows of a batch are kept: the mapping and the contract, with its shortcuts
    (rows already validated; a scan flag saying that no rule fails; ``stats``: the extent
    comes from Parquet statistics, so each batch's own extent is recorded)."""

    m: _logs.ColumnMapping
    pre_validated: bool
    quick_contract: bool
    stats: bool
    has_lat: bool
    aggs: list[pl.Expr]
    contract: _logs.Contract | None
    on_violation: _logs.OnViolation


def _valid_rows(batch: pl.DataFrame, tally: _Tally, rows: _Rows) -> pl.DataFrame:
    """The rows of ``batch`` the contract keeps, with a finite start."""
    if rows.pre_validated or (rows.quick_contract and not batch.get_column("_qbad").any()):
        # every rule holds on every row (finite starts included, unless pre-validated)
        tally.count_valid(batch.height)
        if rows.pre_validated:
            return batch.filter(pl.col("start").is_finite())
        if rows.stats and rows.has_lat:   # all rows count for the extent
            tally.seen = _extend(tally.seen, None, batch.get_column("end").max(), None)   # finite or null here
        return batch
    if rows.stats:   # the extent as the pass would have measured it
        bt0, bt1, bs1 = batch.select(rows.aggs[1:]).row(0)
        tally.seen = _extend(tally.seen, bt0, bt1, bs1)
    con = rows.contract or _logs.Contract()
    valid, rep = _logs.validate(batch, con, mapping=rows.m, on_violation=rows.on_violation)
    tally.add(rep, con.examples)
    return valid.filter(pl.col("start").is_finite())


@dataclass
class _Groups:
    """Dense group codes of the batches (the one encoder, :class:`qcore.pipeline.KeyCodes`)
    and one accumulator per group, in code order."""

    group_by: tuple[str, ...]
    cat_key: bool
    codes: KeyCodes
    keep_raw: bool
    accs: list[_Acc] = field(default_factory=list)

    def encode(self, valid: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray | None]:
        codes = None
        if self.cat_key and valid.get_column("_qcat").null_count() == 0:
            codes = self.codes.encode_physical(valid.get_column("_qcat").to_numpy(), valid.get_column(self.group_by[0]))
        elif self.group_by:
            valid, codes = self.codes.encode(valid)
        if self.group_by:
            fresh = self.codes.table.filter(pl.col("__code") >= len(self.accs)).sort("__code")
            for row in fresh.iter_rows(named=True):
                key = {k: row[k] for k in self.group_by}
                self.accs.append(_Acc(key, len(self.accs), self.keep_raw))
        return valid, codes


def _batches_of(inp: _Input, lf: pl.LazyFrame, post: list[pl.Expr], n_total: int, batch_rows: int,
                format: str | None) -> Any:
    if n_total <= batch_rows:
        return [lf.collect()]
    if len(inp.files) > 1:
        # one file at a time, so the reader's read-ahead never spans the whole input
        batches = _file_batches(inp.files, format, inp.m, inp.extra_keep, post, batch_rows, lf, inp.pre_cls)
    else:
        batches = lf.collect_batches(chunk_size=batch_rows)
    return read_ahead(batches)


def _fingerprint_of(inp: _Input, lf: pl.LazyFrame, hasher: _FileHasher, rows_valid: int, t0: float,
                    t1: float) -> dict[str, Any]:
    if inp.files:
        fp = _logs.DataFingerprint.of_files(inp.files, hasher.result(), rows_valid, t0, t1).to_dict()
    else:  # data in memory: hash its canonical columns
        mem = lf.drop([c for c in lf.collect_schema() if c.startswith("_q")]).collect()
        fp = _logs.fingerprint(mem).to_dict()
    fp["rows"] = rows_valid
    fp["time_min"], fp["time_max"] = t0, t1
    return fp


def _resolved_contract(contract: _logs.Contract | None) -> _logs.Contract:
    """The contract with one evaluation time (``max_time``) for the whole run."""
    contract = contract or _logs.Contract()
    if contract.max_time is None:
        contract = dataclasses.replace(contract, max_time=contract.resolved_max_time())
    return contract


def _summarize(
    source: Any,
    *,
    group_by: Sequence[str],
    bin: float | None,
    mapping: Any,
    contract: _logs.Contract | None,
    on_violation: _logs.OnViolation,
    format: str | None,
    batch_rows: int,
    exact_limit: int,
    confidence: float,
    little_tolerance: float,
    progress: bool | None,
    title: str,
    use_stats: bool,
) -> Report:
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    group_by = tuple(group_by)
    inp = _open_input(source, mapping, format, group_by)
    schema = inp.lf.collect_schema()
    _check_group_by(group_by, schema)
    has_lat = "latency" in schema
    # outcome class for the batches: 0 ok, 1 error, 2 incomplete (computed by the engine)
    post = _class_columns(schema)
    # hash the source files on another core while the log is read (hashlib drops the GIL)
    hasher = _FileHasher(inp.files)
    # the extent of the rows the contract will keep (a skewed clock must not stretch the windows)
    contract = None if inp.pre_validated else _resolved_contract(contract)
    aggs = _extent_aggs(contract, "end" if "end" in schema else "start", has_lat)
    # Parquet statistics usually give the extent without a pass over the data: the pass
    # below then checks every value they promise (and falls back to the pass if one fails)
    n_total, t0, t1, s1, t1_bound = _first_extent(inp, aggs, contract, bin, exact_limit, format, use_stats)
    grid = _grid_of(n_total, t0, t1, s1, bin, exact_limit, t1_bound)
    # Streaming: the engine computes per-row work in parallel inside the scan (window
    # indices, one "breaks the contract" flag, categorical group codes), so a batch that
    # keeps its contract goes straight to the counting; only a batch holding a violation
    # is validated rule by rule (counts and example rows exactly as before).
    cat_key, quick_contract, checks = (_fast_columns(inp, schema, group_by, batch_rows, contract, on_violation, post)
                                       if not grid.keep_raw else (False, False, {}))
    rows = _Rows(inp.m, inp.pre_validated, quick_contract, t1_bound is not None, has_lat, aggs, contract,
                 on_violation)
    lf = inp.lf.with_columns(post)
    groups = _Groups(group_by, cat_key, KeyCodes(group_by, schema), grid.keep_raw)
    tally = _Tally.seeded(checks.values())
    show = _progress_printer(n_total, progress if progress is not None else
                             (sys.stderr.isatty() and n_total > batch_rows))
    batches = _batches_of(inp, lf, post, n_total, batch_rows, format)
    try:
        accs = _fold_batches(batches, rows, groups, grid, tally, show)
    finally:   # stop the read-ahead thread even when a batch raises
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    failures = inp.canonical_in or inp.m.status is not None or inp.m.error is not None
    ov, out, t1, grid_t = _summaries(accs, tally.seen, grid, s1, t1_bound, bin is None, has_lat, group_by,
                                     confidence, little_tolerance, failures)
    contract_rep = tally.report(on_violation)
    fp = _fingerprint_of(inp, lf, hasher, tally.rows_valid, t0, t1)
    return Report(ov, out, group_by, grid.bin, t0, t1, grid_t, grid.keep_raw, fp, contract_rep.to_dict(),
                  inp.m.to_dict(), title, little_tolerance)


# --------------------------------------------------------------------------------------
# the one driver: batches (one machine) or tasks (dask) folded, merged, finished
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Grid:
    """The windows every part of the log is folded on (see :func:`_windows`)."""

    t0: float
    t1: float
    bin: float
    n_windows: int
    n_end: int
    grid: np.ndarray
    keep_raw: bool
    index_limit: float
    edge: float | None
    #: report windows per plot window of the latency timeline
    plot_k: int = 1


def _grid_of(n_total: int, t0: float, t1: float, s1: float, bin: float | None, exact_limit: int,
             t1_bound: float | None) -> _Grid:
    bin_ = float(bin) if bin is not None else _nice_bin(max(t1 - t0, 1e-9))
    n_windows, n_end, grid = _windows(t0, t1, s1, bin_)
    keep_raw = n_total <= exact_limit
    # window indices trunc((t - t0) / bin) are computed by the core's one-pass batch
    # kernel (a counted row has t >= t0, where truncation is the floor); an index that
    # does not fit 32 bits counts as 0, as a non-strict cast to Int32 would
    index_limit = 2.0**31 if not keep_raw and 3 * (n_end + 1) < 2**31 else 2.0**63
    return _Grid(t0, t1, bin_, n_windows, n_end, grid, keep_raw, index_limit,
                 s1 if t1_bound is not None else None, max(1, math.ceil(n_windows / _TIMELINE_POINTS)))


def _core_of(g: _Grid) -> Any:
    """An empty core accumulator on the fold's windows."""
    return _qc.ReportAccumulator(g.t0, g.t1, g.bin, g.n_windows, g.n_end, g.index_limit, g.edge)


def _fold_batches(batches: Iterable[pl.DataFrame], rows: _Rows, groups: _Groups, g: _Grid, tally: _Tally,
                  show: Callable[[int], None] = lambda done: None) -> _Fold:
    """Fold batches into the core's accumulator and one group record per key (the whole
    log's under ``()`` without ``group_by``): the rows the contract keeps, counted by the
    core's batch kernel (one call per chunk of a batch, so its columns pass without a copy)."""
    core = _core_of(g)
    overall = _Acc({}, 0, g.keep_raw)
    timeline = _Timeline()
    done = 0
    for batch in batches:
        done += batch.height
        valid = _valid_rows(batch, tally, rows)
        if valid.height:
            valid, codes = groups.encode(valid)
            accs = groups.accs if groups.group_by else [overall]
            if not groups.group_by:   # the whole log as one group
                codes = np.zeros(valid.height, dtype=np.int64)
            for part, pc in _chunks(valid, codes, rows.has_lat):
                _update_groups(core, accs, _Batch(part, rows.has_lat, pc), g, timeline, bool(groups.group_by))
        show(done)
    by_key = {tuple(a.key.values()): a for a in groups.accs} if groups.group_by else {(): overall}
    core.grow(len(by_key))
    return _Fold(core, by_key, timeline)


def _merge_folds(a: _Fold, b: _Fold) -> _Fold:
    """Two parts of the log merged (exactly): the core's states with ``b``'s groups mapped
    onto ``a``'s by key (new keys appended), the groups' sketches, raw columns and
    timelines, and the log's timeline."""
    out = copy.deepcopy(a)
    log, other = out.timeline, b.timeline
    if log.dropped != other.dropped:
        # one part kept its groups' timelines, the other had too many groups: spill them
        _spill(log, out.accs.values())
        _spill(other, b.accs.values())
    codes = []
    for k, v in sorted(b.accs.items(), key=lambda kv: kv[1].code):
        if k in out.accs:
            _merge_into(out.accs[k], v)
        else:
            v = copy.deepcopy(v)
            v.code = len(out.accs)
            out.accs[k] = v
        codes.append(out.accs[k].code)
    out.core.merge(b.core, np.asarray(codes, dtype=np.int64))
    log.merge(other)
    return out


def _window_latencies_into_sketches(timeline: _Timeline | None, acc_list: list[_Acc], grouped: bool) -> None:
    """Each group's latency windows merged into its sketch (without groups, the log's into
    the one accumulator's): the batch kernel sketched them by window."""
    if timeline is None or timeline.dropped:
        return
    for a in acc_list:
        if grouped and a.timeline is not None:
            _latency_into_sketch(a)
        elif not grouped:
            for sk in timeline.sketches["latency"].values():
                a.sketch.merge(sk)


def _summaries(fold: _Fold, seen: tuple[float, float, float], g: _Grid, s1: float,
               t1_bound: float | None, auto_bin: bool, has_lat: bool, group_by: tuple[str, ...], confidence: float,
               tol: float, failures: bool) -> tuple[GroupSummary, list[GroupSummary], float, np.ndarray]:
    """``(overall, groups, t1, grid)`` from the merged accumulators: the extent the
    Parquet statistics promised checked and settled first; the whole log is the merge of
    its groups (every accumulator merges exactly); no error rates when the log says
    nothing about ``failures``."""
    core = fold.core
    timeline: _Timeline | None = fold.timeline
    acc_list = sorted(fold.accs.values(), key=lambda a: tuple("" if v is None else str(v) for v in a.key.values()))
    t0, t1, grid = g.t0, g.t1, g.grid
    if t1_bound is not None:
        t1, grid = _settle_extent(core, seen, t0, t1_bound, s1, g.bin, auto_bin, has_lat, g.n_windows)
    _window_latencies_into_sketches(timeline, acc_list, bool(group_by))
    out = [_finish(core, a, t0, t1, s1, g.bin, confidence, tol) for a in acc_list] if group_by else []
    if group_by and timeline is not None and not timeline.dropped:
        # the log's windows are the merge of its groups' (sketches merge exactly)
        timeline = _Timeline()
        for a in acc_list:
            if a.timeline is not None:
                timeline.merge(a.timeline)
    if group_by or not acc_list:
        overall = _Acc({}, 0, g.keep_raw)
        overall.timeline = None
        for a in acc_list:
            _merge_into(overall, a)
        ov_core = core.total()
    else:
        overall, ov_core = acc_list[0], core
    ov = _finish(ov_core, overall, t0, t1, s1, g.bin, confidence, tol)
    for gs in [*out, ov] if not failures else []:
        gs.error_rate = None
    frame = (t0, g.plot_k * g.bin, -(-g.n_windows // g.plot_k), confidence)
    own = bool(group_by) and timeline is not None and not timeline.dropped and len(out) <= GROUP_TIMELINES_MAX
    for gs, a in zip(out, acc_list, strict=True) if own else ():
        if a.timeline is not None:
            a.timeline.frame = frame
            gs.timeline, gs.over_time = a.timeline, a.timeline.over_time()
    if timeline is not None:
        timeline.frame = frame
        ov.timeline, ov.over_time = timeline, timeline.over_time()
    for gs in [*out, ov]:
        if gs.over_time:
            gs.over_time["in_flight"] = _in_flight_rows(gs, t0, g.plot_k, g.bin)
    return ov, out, t1, grid


def _check_group_by(group_by: Sequence[str], schema: Any) -> None:
    for k in group_by:
        if k not in schema:
            raise _logs.ColumnDetectionError(
                f"group_by: column {k!r} not in the log; columns found: {[c for c in schema if not c.startswith(('__', '_q'))]}")


def _class_columns(schema: Any) -> list[pl.Expr]:
    """The outcome class for the batches (0 ok, 1 error, 2 incomplete), unless the scan
    already computed it from a numeric status column."""
    if "_qcls" in schema:
        return []
    return [pl.when(pl.col("outcome") == "ok").then(pl.lit(0, pl.Int8))
            .when(pl.col("outcome") == "error").then(pl.lit(1, pl.Int8))
            .otherwise(pl.lit(2, pl.Int8)).alias("_qcls")]


def _extent_aggs(contract: _logs.Contract | None, endcol: str, has_lat: bool) -> list[pl.Expr]:
    """(rows, first and last start, last end) of the rows a contract will keep: a skewed
    clock must not stretch the windows (``None``: rows already validated)."""
    ok_start = pl.col("start").is_finite()
    if contract is not None:
        ok_start = ok_start & (pl.col("start") >= contract.min_time) & (pl.col("start") <= contract.resolved_max_time())
    ok_end = ok_start & pl.col(endcol).is_finite()
    if has_lat:
        ok_end = ok_end & (pl.col("latency") >= 0)
    return [pl.len().alias("n"),
            pl.col("start").filter(ok_start).min().alias("t0"),
            pl.col(endcol).filter(ok_end).max().alias("t1"),
            pl.col("start").filter(ok_start).max().alias("s1")]


def _windows(t0: float, t1: float, s1: float, bin_: float) -> tuple[int, int, np.ndarray]:
    """``(n_windows, n_end, grid)``: windows ``[t0 + k*bin, t0 + (k+1)*bin)`` covering
    every start (the primitive decides the count, so every batch gets arrays of the same
    length), and the end windows, which reach past the last end (in-flight is known at
    their right edges)."""
    import qcore

    k_start = math.floor((s1 - t0) / bin_) + 1
    win_end = t0 + k_start * bin_
    n_windows = int(np.asarray(qcore.window_counts(np.array([t0]), bin_, start=t0, end=win_end)).size)
    k_end = math.floor((t1 - t0) / bin_) + 1
    end_lim = t0 + k_end * bin_
    n_end = max(n_windows, int(np.asarray(qcore.window_counts(np.array([t0]), bin_, start=t0, end=end_lim)).size))
    end_lim = t0 + n_end * bin_
    # the count the batches will get for this end (t0 + n·bin can round past the n-th edge)
    n_end = int(np.asarray(qcore.window_counts(np.array([t0]), bin_, start=t0, end=end_lim)).size)
    grid = t0 + bin_ * np.arange(1, n_end + 1)
    return n_windows, n_end, grid


def _row_group_minmax(rg: Any, idx: Mapping[str, int], need: Sequence[str]) -> list[tuple[float, float]] | None:
    """Finite ``(min, max)`` of each ``need`` column of one row group, or ``None``."""
    mm = []
    for c in need:
        st = rg.column(idx[c]).statistics
        if st is None or not st.has_min_max:
            return None
        a, b = float(st.min), float(st.max)
        if not (math.isfinite(a) and math.isfinite(b)):
            return None
        mm.append((a, b))
    return mm


def _footer_extent(pq: Any, files: Sequence[Path], fmt: str | None,
                   need: Sequence[str]) -> tuple[int, float, float, float] | None:
    """``(rows, lo, hi, top)`` over the Parquet footers: the rows, the min/max of the first
    ``need`` column and the max of the second; ``None`` when a footer cannot tell."""
    rows = 0
    lo, hi, top = math.inf, -math.inf, -math.inf
    try:
        for f in files:
            if _logs.format_of(Path(f), fmt) != "parquet":
                return None
            md = pq.read_metadata(f)
            idx = {md.schema.column(i).path: i for i in range(md.num_columns)}
            if any(c not in idx for c in need):
                return None
            rows += md.num_rows
            for r in range(md.num_row_groups):
                rg = md.row_group(r)
                if rg.num_rows == 0:
                    continue
                mm = _row_group_minmax(rg, idx, need)
                if mm is None:
                    return None
                lo, hi = min(lo, mm[0][0]), max(hi, mm[0][1])
                if len(mm) > 1:
                    top = max(top, mm[1][1])
    except (OSError, ValueError, TypeError, AttributeError, NotImplementedError):
        return None     # unreadable footer or statistics of another type: take the pass
    if not rows or not math.isfinite(lo):
        return None
    return rows, lo, hi, top


def _parquet_extent(files: Sequence[Path], fmt: str | None, m: _logs.ColumnMapping, schema: dict[str, Any],
                    contract: _logs.Contract, bin: float | None) -> tuple[int, float, float, float] | None:
    """``(rows, t0, s1, t1_bound)`` from the Parquet footers, or ``None`` when they cannot
    promise what the pass over the data would find.

    ``t0``/``s1`` are the first/last start and ``t1_bound`` bounds the last end from above;
    the window width must follow from them alone. The caller checks every promise on the
    data it reads."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - optional (test and dask extras): take the pass
        return None

    def numeric(col: str | None) -> bool:
        dt = schema.get(col) if col is not None else None
        return dt is not None and (dt.is_integer() or dt.is_float())

    if not numeric(m.start):
        return None
    other = m.duration if m.duration is not None else m.end
    if other is not None and not numeric(other):
        return None
    need = [c for c in (m.start, other) if c is not None]
    found = _footer_extent(pq, files, fmt, need)
    if found is None:
        return None
    rows, lo, hi, top = found
    scale = _logs.UNITS[m.time_unit]
    t0, s1 = lo * scale, hi * scale        # the values normalize() computes from them
    if not (contract.min_time <= t0 and s1 <= contract.resolved_max_time()):
        return None                        # rows outside the plausible range: let the pass decide
    if m.duration is not None:
        bound = max(s1, s1 + top * _logs.UNITS[m.latency_unit])
    elif m.end is not None:
        bound = max(s1, top * scale)
    else:
        bound = s1
    if not math.isfinite(bound):
        return None
    if bin is None and _nice_bin(max(s1 - t0, 1e-9)) != _nice_bin(max(bound - t0, 1e-9)):
        return None
    return rows, t0, s1, bound


def _extend(seen: tuple[float, float, float], t0: Any, t1: Any, s1: Any) -> tuple[float, float, float]:
    a, b, c = seen
    return (a if t0 is None else min(a, float(t0)), b if t1 is None else max(b, float(t1)),
            c if s1 is None else max(c, float(s1)))


def _settle_extent(core: Any, seen: tuple[float, float, float], t0: float, bound: float, s1: float,
                   bin_: float, auto_bin: bool, has_lat: bool, n_windows: int) -> tuple[float, np.ndarray]:
    """Check the statistics' promises against the rows read, then fit the end windows and
    Little's law to the real last end ``t1`` (they were computed up to ``bound >= t1``)."""
    first, last = core.start_range()
    lo, hi = min(seen[0], first), max(seen[2], last)
    last_end = seen[1]
    if lo != t0 or hi != s1 or last_end > bound:
        raise _StatsMismatch
    t1 = max(last_end, s1) if math.isfinite(last_end) else s1
    if (auto_bin and _nice_bin(max(t1 - t0, 1e-9)) != bin_) or t1 <= t0:
        raise _StatsMismatch
    nw, n_end, grid = _windows(t0, t1, s1, bin_)
    if nw != n_windows:
        raise _StatsMismatch
    # every interval lies inside [t0, t1] when the bound was not t1, so the clipped time and
    # the response times are those of [t0, t1); a start at t1 itself (zero latency) is no
    # arrival of [t0, t1)
    if not core.settle(t1, n_end, has_lat and bound != t1 and t1 == s1):
        raise _StatsMismatch
    return t1, grid


def _file_batches(files: Sequence[Path], fmt: str | None, m: _logs.ColumnMapping, keep: Sequence[str],
                  post: list[pl.Expr], batch_rows: int, whole: pl.LazyFrame, pre_cls: pl.Expr | None = None) -> Any:
    lfs = []
    cols = whole.collect_schema()
    try:
        for f in files:
            raw, _ = _logs.scan_raw(f, format=fmt)
            one = _logs.normalize(_with_class(raw, pre_cls), m, keep=keep).with_columns(post)
            if one.collect_schema() != cols:
                raise _logs.ColumnDetectionError("schemas differ between files")
            lfs.append(one)
    except (_logs.ColumnDetectionError, pl.exceptions.PolarsError):
        yield from whole.collect_batches(chunk_size=batch_rows)
        return
    for one in lfs:
        yield from one.collect_batches(chunk_size=batch_rows)


def _merge_into(dst: _Acc, src: _Acc) -> None:
    """A group's sketch, raw columns and timeline merged (its counts are the core's)."""
    dst.sketch.merge(src.sketch)
    for k in ("raw_start", "raw_end", "raw_ok_lat", "raw_done_start"):
        getattr(dst, k).extend(getattr(src, k))
    if dst.timeline is not None and src.timeline is not None:
        dst.timeline.merge(src.timeline)
    else:
        dst.timeline = None


_ENGINE_COLS = ("_qcat", "_qbad")


def _contract_seed(lf: pl.LazyFrame, contract: Any, m: _logs.ColumnMapping,
                   on_violation: str) -> tuple[bool, list[_logs.ContractCheck]]:
    """The contract's checks with zero failures, when only row rules apply (no schema rule).

    ``(False, [])`` sends every batch through :func:`qcore.logs.validate`."""
    try:
        _, rep = _logs.validate(lf.head(0).collect(), contract, mapping=m,
                                on_violation=on_violation)  # type: ignore[arg-type]
    except _logs.ContractViolationError:
        return False, []
    if any(c.level == "schema" or c.failed for c in rep.checks):
        return False, []
    return True, list(rep.checks)


def _class_expr(m: _logs.ColumnMapping, schema: dict[str, Any]) -> pl.Expr | None:
    """The outcome class (0 ok, 1 error, 2 incomplete or unknown) straight from a numeric or
    boolean status/error column (the one rule, :func:`qcore.io.mapping.failed_expr`, that
    :func:`qcore.logs.normalize`'s ``outcome`` reads too) without going through its
    strings. ``None`` for text columns."""
    if m.error is None and m.status is None:
        return pl.lit(0, pl.Int8)
    failed = failed_expr(m, schema)
    if failed is None:
        return None
    return pl.when(failed.is_null()).then(pl.lit(2, pl.Int8)).when(failed).then(pl.lit(1, pl.Int8)).otherwise(
        pl.lit(0, pl.Int8))


def _with_class(raw: pl.LazyFrame, cls: pl.Expr | None) -> pl.LazyFrame:
    return raw if cls is None else raw.with_columns(cls.alias("_qcls"))


def _chunks(df: pl.DataFrame, codes: np.ndarray | None, has_lat: bool) -> Any:
    """``(rows, codes)`` per chunk of ``df`` when the columns the kernel reads share their
    chunk boundaries (each chunk then reaches numpy without a copy), else the whole frame."""
    cols = ["start", "_qcls", *(("latency", "end") if has_lat else ())]
    lens = [df.get_column(c).chunk_lengths() for c in cols]
    if len(lens[0]) < 2 or any(x != lens[0] for x in lens[1:]):
        yield df, codes
        return
    off = 0
    for n in lens[0]:
        if n:
            yield df.slice(off, n), (None if codes is None else codes[off:off + n])
        off += n


class _Batch:
    """The columns of one validated batch as numpy arrays (no per-row Python)."""

    def __init__(self, df: pl.DataFrame, has_lat: bool, codes: np.ndarray | None) -> None:
        self.n = df.height
        self.start = df.get_column("start").cast(pl.Float64).to_numpy()
        if "_qcls" in df.columns:
            self.cls = df.get_column("_qcls").to_numpy()
        else:
            oc = df.get_column("outcome")
            self.cls = np.where((oc == "ok").fill_null(False).to_numpy(), 0,
                                np.where((oc == "error").fill_null(False).to_numpy(), 1, 2)).astype(np.int8)
        self.codes = codes
        self.has_lat = has_lat
        if has_lat:
            self.lat = df.get_column("latency").cast(pl.Float64).to_numpy()
            self.end = df.get_column("end").cast(pl.Float64).to_numpy()
        # the LLM columns of the timelines, when the log has them
        self.ttft, self.tpot, self.tokens_in, self.tokens_out = (
            df.get_column(c).cast(pl.Float64).fill_null(math.nan).to_numpy() if c in df.columns else None
            for c in ("ttft", "tpot", "tokens_in", "tokens_out"))


def _update_groups(core: Any, accs: list[_Acc], b: _Batch, g: _Grid, timeline: _Timeline | None = None,
                   grouped: bool = False) -> None:
    """Fold a batch into the core's accumulator with one pass (GIL released): outcome,
    window and Little's-law sums per group, and the ok latencies merged into each group's
    sketch (built on a second core next to the counting)."""
    assert b.codes is not None
    G = len(accs)
    codes = np.ascontiguousarray(b.codes, dtype=np.int64)
    # the ok latencies: sketched by plot window into the timelines (each group's sketch is
    # their merge) while they are kept, else into each group's sketch
    if timeline is not None and grouped and not timeline.dropped and len(accs) > GROUP_TIMELINES_MAX:
        _spill(timeline, accs)   # (a log without latencies too: its tokens)
    owners = _window_owners(timeline, accs, grouped) if timeline is not None and b.has_lat else []
    n_plot = -(-g.n_windows // g.plot_k)
    targets = (_window_targets(owners, n_plot) if owners else [a.sketch for a in accs]) if b.has_lat else None
    try:
        core.update(
            codes, np.ascontiguousarray(b.start, dtype=np.float64), np.ascontiguousarray(b.cls, dtype=np.int8),
            np.ascontiguousarray(b.end) if b.has_lat else None, np.ascontiguousarray(b.lat) if b.has_lat else None,
            G, targets, 0.01, g.plot_k if owners else None)
    finally:
        _drop_empty(owners)
    if timeline is not None:   # latency, TTFT, TPOT and tokens by plot window (the counted windows)
        _update_timelines(timeline, accs, b, g, grouped, latency_done=bool(owners))
    if g.keep_raw:   # small logs: each group's raw columns, in row order, for exact statistics
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(G + 1))
        lat_ok = (b.cls == 0) & np.isfinite(b.lat) if b.has_lat else None
        done = (b.cls < 2) & np.isfinite(b.lat) & np.isfinite(b.end) if b.has_lat else None
        for k, a in enumerate(accs):
            rows = order[bounds[k]:bounds[k + 1]]
            if rows.size:
                a.raw_start.append(b.start[rows])
            if lat_ok is not None and done is not None and rows.size:
                if lat_ok[rows].any():
                    a.raw_ok_lat.append(b.lat[rows[lat_ok[rows]]])
                if done[rows].any():
                    a.raw_done_start.append(b.start[rows[done[rows]]])
                    a.raw_end.append(b.end[rows[done[rows]]])


def _burst(starts: np.ndarray | None, dyadic: list[tuple[float, float]], bin_: float) -> list[tuple[float, float]]:
    """Index of dispersion by window: from the raw timestamps when kept (windows below
    ``bin`` too), else the core's dyadic curve of the complete-window counts."""
    import qcore

    if starts is not None and starts.size >= 2:
        span = float(starts.max() - starts.min())
        ws = [bin_ * 2 ** k for k in range(-6, 40) if bin_ * 2 ** k * 8 <= span]
        if ws:
            vals = np.asarray(qcore.burstiness_curve(starts, ws), dtype=np.float64)
            return [(w, float(v)) for w, v in zip(ws, vals, strict=True) if math.isfinite(v)]
    return dyadic


def _finish(core: Any, acc: _Acc, t0: float, t1: float, s1: float, bin_: float, confidence: float,
            tol: float) -> GroupSummary:
    """One group's summary: the core finishes its counts (rates over the log's span
    ``[t0, s1]``, so the groups' rates add up to the log's; the window statistics of the
    complete windows of that span, as :func:`qcore.arrival_stats`; Little's law over
    ``[t0, t1)``; in flight at the window edges); the quantiles come from its sketch, and
    small logs' exact statistics from the raw columns."""
    import qcore

    label = ",".join(f"{k}={v}" for k, v in acc.key.items()) if acc.key else "all"
    tables = core.group(acc.code)
    f = core.finish_group(acc.code, s1, confidence, tol)
    quantiles: dict[float, tuple[float | None, float | None, float | None]] = {}
    lat_all = np.concatenate(acc.raw_ok_lat) if acc.keep_raw and acc.raw_ok_lat else None
    for q in QUANTILES:
        if acc.sketch.count == 0:
            quantiles[q] = (None, None, None)
            continue
        est = float(acc.sketch.quantile(q))  # type: ignore[arg-type]
        lo = hi = None
        if lat_all is not None and lat_all.size:
            # The distribution-free interval of the exact order statistics, widened by the
            # sketch's relative accuracy: it then holds the sketch's estimate as well.
            ci = qcore.quantile_ci(lat_all, q, confidence=confidence)
            lo, hi = widen_for_sketch(_nan_none(ci.lo), _nan_none(ci.hi), acc.sketch.relative_accuracy, est)
        else:
            ci = qcore.sketch_quantile_ci(acc.sketch, q, confidence=confidence)
            lo, hi = _nan_none(ci.lo), _nan_none(ci.hi)
        quantiles[q] = (est, lo, hi)
    rate = rate_ci = p2m = disp = cv = None
    dyadic: list[tuple[float, float]] = []
    if f["rate"] is not None:
        rate, (a, b) = f["rate"]
        rate_ci = (float(a), float(b))
    st = f["stats"]
    if st is not None:
        p2m, disp = _nan_none(st["peak_to_mean"]), _nan_none(st["index_of_dispersion"])
        dyadic = [(float(w), float(v)) for w, v in zip(st["burstiness_windows"], st["burstiness"], strict=True)
                  if math.isfinite(v)]
    starts = np.concatenate(acc.raw_start) if acc.keep_raw and acc.raw_start else None
    if starts is not None and starts.size >= 2 and starts.max() > starts.min():
        cv = _nan_none(qcore.arrival_stats(starts, window=bin_, confidence=confidence).cv_interarrival)
    inflight = f["in_flight"].astype(np.float64)
    peak_lo, peak_hi = f["peak_lo"], f["peak_hi"]
    peak = None
    exact_peak = False
    # the peak in flight of each window: exact from the raw columns, else bounded by the
    # counts (the core's bounds; none without end times)
    if tables["latency"]:
        if acc.keep_raw and acc.raw_done_start:
            s = np.concatenate(acc.raw_done_start)
            e = np.concatenate(acc.raw_end)
            if s.size:
                peak = float(qcore.peak_in_flight(s, e).peak)
                exact_peak = True
                peak_lo = peak_hi = qcore.in_flight_peaks(s, e, t0=t0, width=bin_, n=inflight.size)
        elif inflight.any():
            peak = float(inflight.max())     # at window boundaries only: a lower bound
    n_done = f["ok"] + f["errors"]
    return GroupSummary(
        label, acc.key, f["n"], f["ok"], f["errors"], f["incomplete"], t1 - t0, rate, rate_ci, p2m, disp, cv,
        quantiles, f["errors"] / n_done if n_done else None, f["little"], peak, exact_peak,
        acc.sketch, tables["windows"], inflight, _burst(starts, dyadic, bin_), tables["errors"],
        inflight_peak_lo=np.asarray(peak_lo, dtype=np.int64), inflight_peak_hi=np.asarray(peak_hi, dtype=np.int64))


def _nan_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


