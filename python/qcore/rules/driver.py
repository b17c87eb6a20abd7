"""The one driver of :func:`qcore.rules.evaluate`: every rule's metric in passes over
tasks, their partial results merged in a tree, then the decisions.

A task is a part of the log: rows already read and validated in this process (a frame
in memory, one task), a file, a slice of whole row groups of a Parquet file, or a
partition of a dask DataFrame. Every task reads its rows with the single-machine reader,
maps and validates them with the same mapping and data contract, and folds them into
small partial results; the driver merges them (``split_every`` at a time, adjacent tasks
together, so row order is kept) and finishes each pass:

1. **Pass 0** — the data contract (counts and example rows, with global row numbers), the
   data fingerprint (rows, time range, SHA-256 of each file computed where the file is
   read), and per rule the span of its rows, its groups and each group's newest event.
2. **Metric passes** — each rule's metric in the passes of :mod:`qcore.rules.partials`
   (sketches, counts, exact sums, then the exact order statistics of the quantile
   intervals, window counts, Little's-law sums), for every group at once. Most rules
   finish after one or two passes; the read is shared by all rules of a pass.
3. ``[[slo]]`` burn rates — the event and bad counts of each window pair, per group, in
   the first metric pass.

The tasks run one after another in this process (``executor="local"``) or on a dask
scheduler (``executor="dask"``) through :class:`qcore.pipeline.tasks.Tasks`. Every merge
is exact, so the decision table is the same, value for value, however the log is cut
(the evidence records carry the same fingerprint when the logs were read from files).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from qcore import logs as _logs
from qcore.exceptions import InvalidArgumentError
from qcore.io.contract import check_on_violation
from qcore.pipeline.tasks import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_SPLIT_EVERY,
    DEFAULT_TASK_ROWS,
    FileSlice,
    Progress,
    Tasks,
    executor_kind,
    merge_max,
    merge_min,
    read_slice,
    source_of,
    with_schema,
)
from qcore.rules import burn as _burn
from qcore.rules import engine as _e
from qcore.rules import partials as _p
from qcore.rules.metrics import MetricValue
from qcore.rules.model import Rule, parse_duration

__all__ = ["DistributedResult", "evaluate"]

_DRIFT = ("latency_drift", "rate_drift")


# --------------------------------------------------------------------------------------
# Tasks: where each one's rows come from


@dataclass(frozen=True)
class _Source:
    """What every task needs to turn its raw rows into canonical, validated rows: the raw
    schema of the whole source, the column mapping, the data contract, extra columns."""

    schema: dict[str, Any]
    mapping: _logs.ColumnMapping
    contract: _logs.Contract
    keep: tuple[str, ...]


def _canonical(raw: pl.DataFrame, src: _Source) -> tuple[pl.DataFrame, _logs.ContractReport]:
    lf = _logs.normalize(raw, src.mapping, keep=src.keep)
    return _logs.validate(lf, src.contract, mapping=src.mapping, on_violation="exclude")


def _apply_filter(df: pl.DataFrame, flt: Mapping[str, Any] | None) -> pl.DataFrame:
    if not flt:
        return df
    for k, v in flt.items():
        if k not in df.columns:
            raise KeyError(k)
        if isinstance(v, (list, tuple)):
            df = df.filter(pl.col(k).is_in(list(v)))
        else:
            df = df.filter(pl.col(k) == v)
    return df


class Selections:
    """A frame's rows per rule filter and per group key, computed once for all the rules
    that declare the same ones."""

    def __init__(self, df: pl.DataFrame) -> None:
        self.df = df
        self._sel: dict[str, pl.DataFrame] = {}
        self._parts: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], pl.DataFrame]] = {}

    @staticmethod
    def _key(flt: Mapping[str, Any] | None) -> str:
        return repr(sorted((flt or {}).items()))

    def selection(self, flt: Mapping[str, Any] | None) -> pl.DataFrame:
        k = self._key(flt)
        if k not in self._sel:
            self._sel[k] = _apply_filter(self.df, flt)
        return self._sel[k]

    def groups(self, flt: Mapping[str, Any] | None, by: Sequence[str]) -> dict[tuple[Any, ...], pl.DataFrame]:
        """The selection's rows per key of ``by`` in order of first appearance."""
        k = (self._key(flt), tuple(by))
        if k not in self._parts:
            sel = self.selection(flt)
            self._parts[k] = ({tuple(key): g for key, g in sel.partition_by(list(by), as_dict=True,
                                                                           maintain_order=True).items()}
                              if sel.height else {})
        return self._parts[k]


@dataclass(eq=False)
class _Held:
    """A task of rows already read, mapped and validated in this process (a
    :class:`qcore.logs.Logs`), with its selections kept for every pass."""

    frame: pl.DataFrame
    report: _logs.ContractReport
    cache: Selections | None = None


def _rows(task: Any, src: _Source) -> tuple[Selections, _logs.ContractReport]:
    """A task's validated rows (with their selections) and its contract report."""
    if isinstance(task, _Held):
        if task.cache is None:
            task.cache = Selections(task.frame)
        return task.cache, task.report
    df, rep = _load(task, src)
    return Selections(df), rep


def _load(task: Any, src: _Source) -> tuple[pl.DataFrame, _logs.ContractReport]:
    if isinstance(task, tuple):  # rows already read and validated (``persist=True``)
        return task
    if isinstance(task, FileSlice):
        raw = read_slice(task, src.schema)
    elif isinstance(task, pl.DataFrame):  # raw rows of a batch, in the source's schema
        raw = task
    else:  # a pandas partition of a dask DataFrame
        raw = with_schema(pl.from_pandas(task).lazy(), src.schema)
    return _canonical(raw, src)


# --------------------------------------------------------------------------------------
# Pass 0: contract, fingerprint, spans, groups, newest events


@dataclass
class _Pass0:
    report: _logs.ContractReport
    empty: pl.DataFrame
    rows: int
    tmin: float | None
    tmax: float | None
    content: list[str]  # per-task content digests (a dask DataFrame source)
    newest_all: tuple[int, float | None, float | None]
    # per rule index: (rows of the rule's selection, first start, last start, {key: newest partial})
    rules: dict[int, tuple[int, float | None, float | None, dict[tuple[Any, ...], Any]]]
    slo_end: float | None = None
    # the first metric pass of the rules that need nothing from pass 0 (see _early)
    metric: dict[Any, Any] = field(default_factory=dict)


def _content_digest(df: pl.DataFrame) -> str:
    return _logs.fingerprint(df).content_hash


def _pass0(task: Any, args: tuple[Any, ...]) -> _Pass0:
    src, rules, hash_rows, slo, early, slos = args
    cache, rep = _rows(task, src)
    df = cache.df
    per: dict[int, tuple[int, float | None, float | None, dict[tuple[Any, ...], Any]]] = {}
    for i, rule in enumerate(rules):
        if _e.missing_columns(rule, df.columns, src.mapping):
            continue
        sel = cache.selection(rule.filter)
        s = sel.get_column("start")
        lo = None if sel.height == 0 else float(s.min())  # type: ignore[arg-type]
        hi = None if sel.height == 0 else float(s.max())  # type: ignore[arg-type]
        groups: dict[tuple[Any, ...], Any] = {}
        if rule.group_by:
            groups = {key: _p.newest_part(g) for key, g in cache.groups(rule.filter, rule.group_by).items()}
        per[i] = (sel.height, lo, hi, groups)
    metric: dict[Any, Any] = {}
    for i, st in early.items():
        rule = rules[i]
        if i not in per:
            continue
        sel = cache.selection(rule.filter)
        parts = cache.groups(rule.filter, rule.group_by) if rule.group_by else {(): sel}
        for key, g in parts.items():
            view = _p.GroupView(g, g, None, (0.0, 0.0), None, 0.0)
            metric[(i, key)] = _staged(rule).part(0, view, rule, st)
            metric[("rows", i, key)] = g.height
    for j, sp in enumerate(slos):
        metric[("slo", j)] = sp.counts(df)
    ts = df.get_column("start") if df.height else None
    tcol = "end" if "end" in df.columns else "start"
    slo_end = None
    if slo and df.height:
        v = df.filter(pl.col("outcome") != "incomplete").get_column("start").max()
        slo_end = None if v is None else float(v)  # type: ignore[arg-type]
    return _Pass0(
        report=rep,
        empty=df.head(0),
        rows=df.height,
        tmin=None if ts is None else float(ts.min()),  # type: ignore[arg-type]
        tmax=None if ts is None else merge_max(df.get_column(tcol).max()),  # type: ignore[arg-type]
        content=[_content_digest(df)] if hash_rows else [],
        newest_all=_p.newest_part(df),
        rules=per,
        slo_end=slo_end,
        metric=metric,
    )


def _merge_pass0(a: _Pass0, b: _Pass0, examples: int, rule_list: Sequence[Rule], early: Mapping[int, _Plan],
                 slos: Sequence[_SloPlan]) -> _Pass0:
    rules: dict[int, Any] = {}
    for i in a.rules.keys() | b.rules.keys():
        if i not in a.rules or i not in b.rules:
            rules[i] = a.rules.get(i) or b.rules[i]
            continue
        na, la, ha, ga = a.rules[i]
        nb, lb, hb, gb = b.rules[i]
        g = dict(ga)
        for k, v in gb.items():
            g[k] = _p.merge_newest(g[k], v) if k in g else v
        rules[i] = (na + nb, merge_min(la, lb), merge_max(ha, hb), g)
    return _Pass0(
        report=a.report.then(b.report, examples),
        empty=a.empty,
        rows=a.rows + b.rows,
        tmin=merge_min(a.tmin, b.tmin),
        tmax=merge_max(a.tmax, b.tmax),
        content=a.content + b.content,
        newest_all=_p.merge_newest(a.newest_all, b.newest_all),
        rules=rules,
        slo_end=merge_max(a.slo_end, b.slo_end),
        metric=_merge_metric(a.metric, b.metric, rule_list, early, slos),
    )


# --------------------------------------------------------------------------------------
# Metric passes


@dataclass
class _Plan:
    """What one rule needs in a metric pass: its window and each pending group's state."""

    window: tuple[float, float] | None
    span: tuple[float, float]
    pending: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    done: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    rows: dict[tuple[Any, ...], int] = field(default_factory=dict)  # rows of each group in the window
    k: int = 0


def _rule_views(cache: Selections, rule: Rule, plan: _Plan, now: float) -> dict[tuple[Any, ...], _p.GroupView]:
    sel = cache.selection(rule.filter)
    ref = _apply_filter(sel, rule.reference) if rule.reference else None
    parts = cache.groups(rule.filter, rule.group_by) if rule.group_by else {(): sel}
    out = {}
    for key in plan.pending:
        g_all = parts.get(key)
        if g_all is None:  # not in this partition: its reference rows may still be
            g_all = sel.head(0) if key != () else sel
        g = g_all
        if plan.window is not None and rule.metric not in _DRIFT:
            g = g.filter(pl.col("start") >= plan.window[0])
        out[key] = _p.GroupView(g, g_all, ref, plan.span, plan.window, now)
    return out


def _metric_pass(task: Any, args: tuple[Any, ...]) -> dict[Any, Any]:
    src, rules, plans, now, slos = args
    cache, _ = _rows(task, src)
    df = cache.df
    out: dict[Any, Any] = {}
    for i, plan in plans.items():
        rule = rules[i]
        staged = _staged(rule)
        for key, view in _rule_views(cache, rule, plan, now).items():
            out[(i, key)] = staged.part(plan.k, view, rule, plan.pending[key])
            if plan.k == 0:
                out[("rows", i, key)] = view.rows.height
    for j, sp in enumerate(slos):
        out[("slo", j)] = sp.counts(df)
    return out


def _merge_metric(a: dict[Any, Any], b: dict[Any, Any], rules: Sequence[Rule], plans: Mapping[int, _Plan],
                  slos: Sequence[_SloPlan]) -> dict[Any, Any]:
    out = dict(a)
    for key, v in b.items():
        if key not in out:
            out[key] = v
        elif key[0] == "slo":
            out[key] = slos[key[1]].merge(out[key], v)
        elif key[0] == "rows":
            out[key] = out[key] + v
        else:
            i = key[0]
            out[key] = _staged(rules[i]).merge(plans[i].k, out[key], v)
    return out


class _RowCount(_p.Staged):
    """``invalid_fraction`` reads the merged contract report; its groups only count rows."""

    def part(self, k: int, v: _p.GroupView, rule: Any, st: dict[str, Any]) -> int:
        return v.rows.height

    def merge(self, k: int, a: int, b: int) -> int:
        return a + b

    def done(self, k: int, p: int, rule: Any, st: dict[str, Any]) -> MetricValue:
        return MetricValue(None, p)


_ROW_COUNT = _RowCount()


def _staged(rule: Rule) -> _p.Staged:
    return _ROW_COUNT if rule.metric == "invalid_fraction" else _p.STAGED[rule.metric]


# --------------------------------------------------------------------------------------
# SLO burn rates


@dataclass
class _SloPlan:
    """The counts behind one ``[[slo]]``: events and bad events per group and window."""

    group_by: tuple[str, ...]
    lengths: tuple[float, ...]
    t_end: float
    latency_threshold: float | None
    period: float
    windows: tuple[_burn.BurnWindow, ...]

    def counts(self, df: pl.DataFrame) -> dict[tuple[Any, ...], list[tuple[int, int]]]:
        d = _burn.bad_frame(df, self.latency_threshold, self.group_by)
        out: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
        groups = d.partition_by(list(self.group_by), as_dict=True, maintain_order=True) if self.group_by else {(): d}
        for key, g in groups.items():
            out[tuple(key)] = [_burn.window_counts(g, self.t_end, w) for w in self.lengths]
        return out

    @staticmethod
    def merge(a: dict[tuple[Any, ...], Any], b: dict[tuple[Any, ...], Any]) -> dict[tuple[Any, ...], Any]:
        out = dict(a)
        for k, v in b.items():
            out[k] = [(x[0] + y[0], x[1] + y[1]) for x, y in zip(out[k], v, strict=True)] if k in out else v
        return out


# --------------------------------------------------------------------------------------
# Driver


@dataclass
class DistributedResult:
    """Decisions (the schema of :func:`qcore.rules.evaluate`), the merged data-contract
    report and the data fingerprint."""

    decisions: pl.DataFrame
    report: _logs.ContractReport
    fingerprint: dict[str, Any]
    tasks: int
    passes: int


@dataclass
class _Run:
    """The state of a distributed evaluation between metric passes."""

    rule_list: list[Rule]
    plans: dict[int, _Plan]
    order: dict[int, list[tuple[tuple[Any, ...], dict[str, Any]]]]
    rows_by_rule: dict[int, list[Any]]
    p0: _Pass0
    report: _logs.ContractReport
    fp: dict[str, Any]
    version: str
    now_t: float

    def advance(self, merged: Mapping[Any, Any], which: Sequence[int]) -> None:
        """Finish a metric pass of the rules ``which`` from its merged partial results."""
        p0, now_t = self.p0, self.now_t
        for i in which:
            plan, rule = self.plans[i], self.rule_list[i]
            staged = _staged(rule)
            if plan.k == 0:
                plan.rows = {key: int(merged.get(("rows", i, key), 0)) for key in plan.pending}
            for key in list(plan.pending):
                p = merged.get((i, key))
                if p is None:  # no partition held the group's rows (an empty selection)
                    view = _p.GroupView(p0.empty, p0.empty, None, plan.span, plan.window, now_t)
                    p = staged.part(plan.k, view, rule, plan.pending[key])
                mv = staged.done(plan.k, p, rule, plan.pending[key])
                if mv is not None:
                    plan.done[key] = mv
                    del plan.pending[key]
            plan.k += 1
            if not plan.pending:
                del self.plans[i]
                self.rows_by_rule[i] = _rule_rows(i, rule, self.order[i], plan, p0, self.report, self.fp,
                                                  self.version, now_t)


def keep_columns(rule_list: Sequence[Rule], slo_specs: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The source columns the rules and SLOs read beyond the canonical ones, sorted."""
    keep: set[str] = set()
    for r in rule_list:
        keep.update(r.group_by, r.filter or {}, r.reference or {}, r.columns)
        if r.column:
            keep.add(r.column)
    for s in slo_specs:
        keep.update(s.get("group_by", ()))
    return tuple(k for k in sorted(keep) if k not in _logs.CANONICAL)


def _rule_plan(i: int, rule: Rule, p0: _Pass0,
               now_t: float) -> tuple[_Plan, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    """Rule ``i``'s plan (window, span, the pass-0 state of each group to evaluate) and its
    groups in decision order (reference groups left out)."""
    n_sel, lo, hi, gnew = p0.rules.get(i, (0, None, None, {}))
    span_all = (float(lo), float(hi)) if n_sel and lo is not None and hi is not None else None
    window = (span_all[1] - rule.window, span_all[1]) if rule.window is not None and span_all else None
    span = window if window is not None else (span_all or (0.0, 0.0))
    if rule.group_by and n_sel:
        groups = sorted(((dict(zip(rule.group_by, key, strict=True)), key) for key in gnew),
                        key=lambda kv: _e.group_order(kv[0]))
    else:
        groups = [({}, ())]
    plan = _Plan(window, span)
    lst = []
    for keys, key in groups:
        if rule.reference and _e.is_reference_group(rule, keys):
            continue
        lst.append((key, keys))
        view = _p.GroupView(p0.empty, p0.empty, None, span, window, now_t)
        plan.pending[key] = _staged(rule).init(view, rule)
    return plan, lst


def _check_run_args(on_violation: str, split_every: int, executor: str, persist: bool, batch_rows: int) -> int:
    check_on_violation(on_violation)
    k = int(split_every)
    if k < 2:
        raise InvalidArgumentError(f"split_every must be ≥ 2, got {split_every}")
    if persist and executor != "dask":
        raise InvalidArgumentError("persist needs executor='dask'")
    if int(batch_rows) < 1:
        raise InvalidArgumentError(f"batch_rows must be ≥ 1, got {batch_rows}")
    return k


def _tasks(source: Any, format: str | None, task_rows: int, mapping: Any, con: _logs.Contract,
           keep: tuple[str, ...], executor: str) -> tuple[_Source, list[Path], list[Any]]:
    """What every task needs, the source's files and its tasks. Schema-level contract
    failures raise here, before any task runs."""
    if isinstance(source, _logs.Logs):  # rows read and validated in this process: one task
        if executor != "local":
            raise InvalidArgumentError("rows held in this process are evaluated with executor='local'")
        return (_Source(dict(source.frame.schema), source.mapping, con, keep), [],
                [_Held(source.frame, source.report)])
    schema, files, tasks, sample = source_of(source, format, task_rows)
    src = _Source(schema, _logs.mapping_for(sample, mapping), con, keep)
    _canonical(pl.DataFrame(schema=schema), src)
    if not tasks:
        raise ValueError("source holds no data")
    return src, files, tasks


def evaluate(
    source: Any,
    rules: Any,
    *,
    slos: Sequence[Mapping[str, Any]] = (),
    now: float | None = None,
    mapping: Any = None,
    contract: _logs.Contract | None = None,
    on_violation: str = "exclude",
    format: str | None = None,
    split_every: int = DEFAULT_SPLIT_EVERY,
    task_rows: int = DEFAULT_TASK_ROWS,
    persist: bool = False,
    executor: str | None = "dask",
    progress: Progress | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> DistributedResult:
    """:func:`qcore.rules.evaluate` (and :func:`qcore.rules.evaluate_slos` for ``slos``)
    over tasks: on the cluster of the current ``dask.distributed.Client`` (or dask's
    default scheduler), or one after another in this process.

    Parameters
    ----------
    source
        Paths or globs of Parquet/CSV/NDJSON logs (read as :func:`qcore.logs.read_logs`
        reads them; Parquet files are cut into tasks of about ``task_rows`` rows), or a
        ``dask.dataframe.DataFrame`` of raw log columns, or a :class:`qcore.logs.Logs`
        held in this process (one task; ``executor="local"``).
    rules, now, mapping, contract, on_violation
        As :func:`qcore.rules.evaluate`.
    slos
        ``[[slo]]`` declarations, as :func:`qcore.rules.evaluate_slos`; their decisions
        follow the rules' in the table.
    persist
        Keep each task's validated rows in the workers' memory between passes (one read
        instead of two or three; the cluster must hold the rows). By default every pass
        reads its files again and memory holds one task's rows per worker thread.
    executor
        ``"dask"`` (the default) runs the tasks on dask's current scheduler; ``"local"``
        reads and folds them one after another in this process, without dask, holding one
        task's rows at a time (what ``qcore check`` does on files); ``None``: ``"dask"`` for
        a dask DataFrame, else ``"local"``. The decisions are the same.
    progress
        Called as ``progress(tasks_done, tasks_total)`` after each task of each pass
        (with ``executor="dask"``, when a ``dask.distributed`` client is current).
    batch_rows
        With ``executor="local"``: the rows read at a time (memory holds about one batch's
        rows and the partial results).

    Returns
    -------
    DistributedResult
        ``decisions`` equal to the single-machine table on the same rows, value for value;
        ``report`` the merged contract report; ``fingerprint`` the data fingerprint.

    Raises
    ------
    RuleError, qcore.logs.ContractViolationError
        As the single-machine functions.

    Examples
    --------
    >>> import dask, polars as pl, qcore.rules as qr
    >>> from qcore.rules import driver as qrd
    >>> import pandas as pd, dask.dataframe as dd
    >>> pdf = pd.DataFrame({"ts": [float(i) for i in range(200)], "latency": [0.1] * 200,
    ...                     "status": [200] * 199 + [500]})
    >>> rule = qr.Rule(id="err", version="1", owner="me", metric="error_rate", threshold=0.01)
    >>> with dask.config.set(scheduler="sync"):
    ...     r = qrd.evaluate(dd.from_pandas(pdf, npartitions=3), [rule], now=200.0)
    >>> r.decisions.select("status", "action", "value").row(0)
    ('pass', 'accept', 0.005)
    """
    executor = executor_kind(source, executor)
    k = _check_run_args(on_violation, split_every, executor, persist, batch_rows)
    rule_list = _e._rules(rules) if rules else []
    slo_specs = [dict(s) for s in slos]
    for s in slo_specs:
        _burn.check_slo(s)
    keep_t = keep_columns(rule_list, slo_specs)
    con = contract or _logs.Contract()

    held = isinstance(source, _logs.Logs)
    src, files, tasks = _tasks(source, format, task_rows, mapping, con, keep_t, executor)

    if persist:
        import dask
        from dask.delayed import delayed

        load = delayed(_load, pure=True)
        tasks = list(dask.persist(*[load(t, src) for t in tasks]))  # type: ignore[attr-defined, no-untyped-call]

    ex = Tasks(executor, k, progress, src.schema if executor == "local" else None, int(batch_rows))
    examples = con.examples
    now_t = float(time.time() if now is None else now)
    # Rules without a window (and not drift) need nothing from pass 0 for their first
    # metric pass: it runs in the same read. So do the SLO counts when `now` is given.
    early = {i: _staged(r).init(_p.GroupView(pl.DataFrame(), pl.DataFrame(), None, (0.0, 0.0), None, now_t), r)
             for i, r in enumerate(rule_list) if r.window is None and r.metric not in _DRIFT}
    early_plans = {i: _Plan(None, (0.0, 0.0)) for i in early}
    slo_plans = _slo_plans(slo_specs, now, None) if now is not None else []
    # pass 0, at most two metric passes (a latency quantile's bracket), and the SLO counts
    ex.total = len(tasks) * (1 + (2 if rule_list else 0))
    res = ex.run(tasks, _pass0, (src, rule_list, not files and not held, bool(slo_specs), early, slo_plans),
                 lambda a, b: _merge_pass0(a, b, examples, rule_list, early_plans, slo_plans), files)
    p0: _Pass0 = res[0]
    digests: list[str] = list(res[1:])
    if held:
        report, fp = p0.report, source.fingerprint().to_dict()
    else:
        report = replace(p0.report, action=on_violation)
        if not report.passed and on_violation == "refuse":
            raise _logs.ContractViolationError(report)
        fp = _fingerprint(p0, files, digests)
    version = _e._qcore_version()
    columns = p0.empty.columns

    # Plans: every rule's groups, windows and pass-0 state.
    rows_by_rule: dict[int, list[Any]] = {}
    plans: dict[int, _Plan] = {}
    order: dict[int, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {}
    for i, rule in enumerate(rule_list):
        missing = _e.missing_columns(rule, columns, src.mapping)
        if missing:
            rows_by_rule[i] = [_e.malformed_row(rule, missing, fp, version, now_t)]
            continue
        plan, order[i] = _rule_plan(i, rule, p0, now_t)
        if plan.pending:
            plans[i] = plan

    run = _Run(rule_list, plans, order, rows_by_rule, p0, report, fp, version, now_t)
    advance = run.advance
    advance(p0.metric, [i for i in early if i in plans])
    slo_counts: list[Any] = [p0.metric.get(("slo", j), {}) for j in range(len(slo_plans))]
    if slo_specs and now is None:
        slo_plans = _slo_plans(slo_specs, now, p0)
    passes = 1
    while plans or (slo_plans and not slo_counts):
        ex.total = max(ex.total, ex.done + len(tasks))
        (merged,) = ex.run(tasks, _metric_pass, (src, rule_list, plans, now_t, slo_plans if not slo_counts else []),
                           lambda a, b: _merge_metric(a, b, rule_list, plans, slo_plans))
        passes += 1
        if slo_plans and not slo_counts:
            slo_counts = [merged.get(("slo", j), {}) for j in range(len(slo_plans))]
        advance(merged, list(plans))
    # a rule whose groups were all the reference has no rows
    out_rows = [r for i in range(len(rule_list)) for r in rows_by_rule.get(i, [])]
    decisions = pl.DataFrame(out_rows, schema=_e.DECISION_SCHEMA)
    if slo_specs:
        decisions = pl.concat([decisions, _slo_decisions(slo_specs, slo_plans, slo_counts, fp, now)])
    return DistributedResult(decisions, report, fp, len(tasks), passes)


def _rule_rows(i: int, rule: Rule, groups: list[tuple[tuple[Any, ...], dict[str, Any]]], plan: _Plan,
               p0: _Pass0, report: _logs.ContractReport, fp: dict[str, Any], version: str,
               now: float) -> list[dict[str, Any]]:
    out = []
    gnew = p0.rules.get(i, (0, None, None, {}))[3]
    for key, keys in groups:
        mv = plan.done[key]
        if rule.metric == "invalid_fraction":
            tot = report.rows_total
            mv = MetricValue(report.rows_excluded / tot if tot else None, tot,
                                extra={"failed_checks": {c.name: c.failed for c in report.failures()}})
        if rule.group_by:
            newest = _p.newest_of(gnew[key]) if key in gnew else None
        else:
            newest = _p.newest_of(p0.newest_all)
        status, msg = _e.status_of(rule, mv, newest, now)
        has_rows = plan.rows.get(key, 0) > 0
        out.append(_e._row(rule, keys, mv, status, msg, fp, version, now, plan.span if has_rows else None))
    return out


def _fingerprint(p0: _Pass0, files: Sequence[Path], digests: Sequence[str]) -> dict[str, Any]:
    if files:
        return _logs.DataFingerprint.of_files(files, digests, p0.rows, p0.tmin, p0.tmax).to_dict()
    h = hashlib.sha256()  # a dask DataFrame: the digests of its partitions' rows, in turn
    for d in p0.content:
        h.update(d.encode())
    return _logs.DataFingerprint([], p0.rows, p0.tmin, p0.tmax, h.hexdigest()).to_dict()


def _slo_plans(specs: Sequence[Mapping[str, Any]], now: float | None, p0: _Pass0 | None) -> list[_SloPlan]:
    out = []
    t_end = float(now) if now is not None else float((p0.slo_end if p0 is not None else None) or 0.0)
    for s in specs:
        period = parse_duration(s.get("period", "30d"), "period")
        ws = tuple(_burn.burn_windows(s.get("windows", "workbook"), period))
        lengths = tuple(x for w in ws for x in (w.long, w.short))
        out.append(_SloPlan(tuple(s.get("group_by", ())), lengths, t_end, s.get("latency_threshold"), period, ws))
    return out


def _slo_decisions(specs: Sequence[Mapping[str, Any]], plans: Sequence[_SloPlan], counts: Sequence[Any],
                   fp: dict[str, Any], now: float | None) -> pl.DataFrame:
    parts = []
    for spec, plan, cnt in zip(specs, plans, counts, strict=True):
        table = _burn.alerts_table(cnt, objective=float(spec["objective"]), period=plan.period,
                                   windows=plan.windows, min_events=int(spec.get("min_events", 1)),
                                   group_by=plan.group_by)
        parts.append(_burn.decisions_from_table(table, spec, fp, now))
    return pl.concat(parts) if parts else pl.DataFrame(schema=_e.DECISION_SCHEMA)
