"""``evaluate(frame, rules)``: compute each rule's metric per group and decide."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from qcore import _json
from qcore import logs as _logs
from qcore.pipeline.tasks import executor_kind
from qcore.rules import metrics as _m
from qcore.rules.model import (
    ACTIONS,
    STATUSES,
    Rule,
    load_rules,
    parse_rules,
)

__all__ = ["DECISION_SCHEMA", "EXIT_CODES", "evaluate", "exit_code", "overall_action", "write_evidence"]

DECISION_SCHEMA = {
    "rule_id": pl.String,
    "rule_version": pl.String,
    "owner": pl.String,
    "group": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "ci_lo": pl.Float64,
    "ci_hi": pl.Float64,
    "comparison": pl.String,
    "threshold": pl.Float64,
    "n": pl.Int64,
    "min_n": pl.Int64,
    "status": pl.String,
    "action": pl.String,
    "response": pl.String,
    "message": pl.String,
    "evidence": pl.String,
}

#: actions from least to most severe (the order of the exit codes)
_SEVERITY = {"accept": 0, "warn": 1, "escalate": 2, "block": 3, "rollback": 4}
assert set(_SEVERITY) == set(ACTIONS)


def _qcore_version() -> str:
    import qcore

    return str(getattr(qcore, "__version__", "unknown"))


def _as_logs(frame: Any, mapping: Any, contract: Any, on_violation: str, keep: Sequence[str]) -> _logs.Logs:
    if isinstance(frame, _logs.Logs):
        return frame
    from qcore.llm import LlmResult

    if isinstance(frame, LlmResult):   # a simulation: its canonical log
        frame = _m.llm_log(frame)
    if isinstance(frame, (pl.DataFrame, pl.LazyFrame)):
        schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
        canonical = "start" in schema and "outcome" in schema and schema["start"] == pl.Float64 and mapping is None
        if canonical:
            df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
            rep = _logs.ContractReport(df.height, df.height, [], on_violation)
            # A frame already in qcore's canonical form carries its own outcome column.
            return _logs.Logs(df, [], _logs.ColumnMapping(start="start", status="outcome"), rep)
    return _logs.read_logs(frame, mapping=mapping, contract=contract,
                           on_violation=on_violation, keep=keep)  # type: ignore[arg-type]


def _rules(rules: Any) -> list[Rule]:
    if isinstance(rules, (str, Path)):
        return load_rules(rules)
    if isinstance(rules, Rule):
        return [rules]
    return parse_rules(rules)


def _fmt_group(keys: Mapping[str, Any]) -> str:
    if not keys:
        return "*"
    return ",".join(f"{k}={'null' if v is None else v}" for k, v in keys.items())


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


# Events newer than the evaluation time by more than this are a clock problem, not fresh data.
FUTURE_SLACK_SECONDS = 1.0


def _decide(rule: Rule, mv: _m.MetricValue, *, stale: bool, age: float | None) -> tuple[str, str]:
    """(status, message)."""
    if mv.missing:
        return "malformed", f"columns missing from the log: {mv.missing}"
    if not rule.version or not rule.owner:
        lacking = [k for k in ("version", "owner") if not getattr(rule, k)]
        return "unauditable", f"rule has no {' and no '.join(lacking)}; a decision must name both"
    if stale and rule.metric != "freshness":
        return "stale", f"newest event is {age:.0f} s old, more than max_age {rule.max_age:.0f} s"
    if mv.value is None:
        return "insufficient_evidence", f"no value: {mv.n} usable rows"
    if mv.n < mv.min_n:
        return "insufficient_evidence", f"{mv.n} samples, {mv.min_n} needed"
    if rule.metric == "freshness" and mv.value < -FUTURE_SLACK_SECONDS:
        return "inconsistent", (
            f"newest event is {-mv.value:.0f} s after the evaluation time "
            f"(clock skew, a time-zone error or a wrong evaluation time)"
        )
    if rule.decide_on == "upper":
        x = mv.ci_hi
    elif rule.decide_on == "lower":
        x = mv.ci_lo
    else:
        x = mv.value
    if x is None:
        return "insufficient_evidence", f"the {rule.decide_on} confidence bound is undefined at n={mv.n}"
    assert rule.threshold is not None
    shown = f"{rule.decide_on if rule.decide_on != 'estimate' else 'value'} {x:.6g}"
    if (rule.metric in ("latency_drift", "rate_drift") and mv.extra.get("intervals_overlap")
            and not rule.passes(x, rule.threshold)):
        # a change inside both confidence intervals is noise, not drift
        return "pass", f"{shown} {rule.comparison} {rule.threshold:g} fails but the intervals overlap (noise)"
    if not rule.passes(x, rule.threshold):
        st = rule.fail_status
        return st, f"{shown} violates {rule.comparison} {rule.threshold:g}"
    if rule.warn_threshold is not None and not rule.passes(x, rule.warn_threshold):
        return "warn", f"{shown} within {rule.threshold:g} but beyond warn {rule.warn_threshold:g}"
    return "pass", f"{shown} {rule.comparison} {rule.threshold:g}"


def evaluate(
    frame: Any,
    rules: Any,
    *,
    now: float | None = None,
    mapping: Any = None,
    contract: _logs.Contract | None = None,
    on_violation: str = "exclude",
    executor: str | None = None,
) -> pl.DataFrame:
    """Evaluate rules over a request log and return one decision per rule and group.

    Parameters
    ----------
    frame
        A :class:`qcore.logs.Logs`, a canonical frame, a raw polars DataFrame/LazyFrame
        (columns are auto-detected, see :func:`qcore.logs.detect_columns`), an LLM
        simulation's :class:`qcore.llm.LlmResult` (its
        :func:`qcore.rules.metrics.llm_log`), or paths or
        globs of Parquet/CSV/NDJSON logs (read in batches, never whole: see
        :func:`qcore.rules.driver.evaluate` with ``executor="local"``).
    rules
        A TOML path, a list of :class:`Rule` or dicts, or a parsed TOML document.
    now
        Evaluation time (epoch seconds) for freshness; defaults to the wall clock.
    executor
        ``"local"``: in this process (a frame in memory, files streamed batch by batch);
        ``"dask"``: the files' tasks, or a dask DataFrame's partitions, on the current dask
        scheduler (:func:`qcore.rules.driver.evaluate`). By default ``"dask"`` for a
        dask DataFrame, else ``"local"``. Every executor gives the same decisions.

    Returns
    -------
    polars.DataFrame
        Columns ``rule_id, rule_version, owner, group, metric, value, ci_lo, ci_hi,
        comparison, threshold, n, min_n, status, action, response, message, evidence``;
        ``evidence`` is a JSON record (rule, group, values, data fingerprint, qcore
        version) per decision — write it with :func:`write_evidence`.

    Raises
    ------
    RuleError
        An invalid rule declaration.
    ValueError
        An unknown ``executor``, or ``"dask"`` for a frame held in this process.
    qcore.logs.ContractViolationError
        ``on_violation="refuse"`` and the log violates its contract.

    Examples
    --------
    >>> import polars as pl, qcore.rules as qr
    >>> log = pl.DataFrame({"ts": [float(i) for i in range(200)],
    ...                     "latency": [0.1] * 200, "status": [200] * 199 + [500]})
    >>> d = qr.evaluate(log, [qr.Rule(id="err", version="1", owner="me",
    ...                                metric="error_rate", threshold=0.01)], now=200.0)
    >>> d.select("status", "action", "value").row(0)
    ('pass', 'accept', 0.005)
    """
    rule_list = _rules(rules)
    where = executor_kind(frame, executor)
    files = isinstance(frame, (str, os.PathLike, list, tuple))
    if where == "dask" and not files and not type(frame).__module__.startswith("dask"):
        raise ValueError("executor='dask' needs paths/globs or a dask DataFrame, not a frame in this process")
    if files or where == "dask":
        # Files stream through the local executor, one batch at a time, or run as tasks on
        # dask (the same decisions).
        from qcore.rules import driver as _d

        return _d.evaluate(frame, rule_list, now=now, mapping=mapping, contract=contract,
                           on_violation=on_violation, executor=where).decisions
    # The rows held here are one task of the same passes (:mod:`qcore.rules.driver`).
    from qcore.rules import driver as _d

    keep = list(_d.keep_columns(rule_list, ()))
    logs = frame if isinstance(frame, _logs.Logs) else _as_logs(frame, mapping, contract, on_violation, keep)
    return _d.evaluate(logs, rule_list, now=now, executor="local").decisions


def missing_columns(rule: Rule, columns: Sequence[str], mapping: _logs.ColumnMapping) -> list[str]:
    """The columns a rule needs that the log lacks (sorted; empty when it can run)."""
    cols = set(columns)
    missing = [c for c in _m.required_columns(rule.metric, rule) if c not in cols]
    missing += [k for k in rule.group_by if k not in cols]
    missing += [k for k in (rule.filter or {}) if k not in cols]
    missing += [k for k in (rule.reference or {}) if k not in cols]
    if rule.metric == "error_rate" and mapping.status is None and mapping.error is None:
        # Without a status or error column every request would count as a success:
        # an error-rate rule must not pass on that.
        missing.append("status or error")
    return sorted(set(missing))


def malformed_row(rule: Rule, missing: list[str], fp: dict[str, Any], version: str, now: float) -> dict[str, Any]:
    mv = _m.MetricValue(None, 0, missing=missing)
    msg = f"columns missing from the log: {missing}"
    if rule.metric == "itl_quantile" and "itl" in missing:
        msg += f"; {_m.ITL_NEEDS}"
    return _row(rule, {}, mv, "malformed", msg, fp, version, now, None)


def group_order(keys: Mapping[str, Any]) -> tuple[str, ...]:
    """Sort key of a group in the decision table."""
    return tuple("" if v is None else str(v) for v in keys.values())


def is_reference_group(rule: Rule, keys: Mapping[str, Any]) -> bool:
    """True for the group that is the rule's reference (it is not compared with itself)."""
    ref = rule.reference or {}
    return bool(keys) and any(k in keys for k in ref) and all(keys.get(k) == v for k, v in ref.items() if k in keys)


def status_of(rule: Rule, mv: _m.MetricValue, newest: float | None, now: float) -> tuple[str, str]:
    """(status, message) of a metric value, given the group's newest event."""
    age = (now - newest) if newest is not None else None
    stale = rule.max_age is not None and age is not None and age > rule.max_age
    if rule.metric == "freshness" and newest is None:
        return "stale", "no event at all"
    return _decide(rule, mv, stale=stale, age=age)


def _row(rule: Rule, keys: Mapping[str, Any], mv: _m.MetricValue, status: str, msg: str,
         fp: dict[str, Any], version: str, now: float, span: tuple[float, float] | None) -> dict[str, Any]:
    assert status in STATUSES
    action = rule.action_for(status)
    ev = {
        "kind": "qcore.decision",
        "schema": 1,
        "rule": rule.to_dict(),
        "group": {k: (None if v is None else str(v)) for k, v in keys.items()},
        "metric": rule.metric,
        "value": _num(mv.value),
        "ci": [_num(mv.ci_lo), _num(mv.ci_hi)],
        "confidence": rule.confidence,
        "n": mv.n,
        "min_n": mv.min_n,
        "threshold": rule.threshold,
        "comparison": rule.comparison,
        "status": status,
        "action": action,
        "message": msg,
        "details": mv.extra,
        "window": list(span) if span else None,
        "data": fp,
        "evaluated_at": now,
        "qcore_version": version,
    }
    return {
        "rule_id": rule.id,
        "rule_version": rule.version,
        "owner": rule.owner,
        "group": _fmt_group(keys),
        "metric": rule.metric if rule.quantile is None or rule.metric != "latency_quantile"
        else f"latency_p{_qlabel(rule.quantile)}",
        "value": _num(mv.value),
        "ci_lo": _num(mv.ci_lo),
        "ci_hi": _num(mv.ci_hi),
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "n": mv.n,
        "min_n": mv.min_n,
        "status": status,
        "action": action,
        "response": _response(rule, status),
        "message": msg,
        "evidence": _json.dumps(ev, sort_keys=True),
    }


def _response(rule: Rule, status: str) -> str:
    """What to do next: the rule's own response for a violation, the generic one otherwise."""
    from qcore.rules.model import RESPONSES

    if status == "pass":
        return ""
    return {
        "insufficient_evidence": "collect more data before deciding (a longer window or more traffic)",
        "stale": RESPONSES["freshness"],
        "malformed": RESPONSES["contract"],
        "unauditable": RESPONSES["audit"],
    }.get(status, rule.response or "")


def _qlabel(q: float) -> str:
    s = f"{q * 100:.10g}"
    return s.replace(".", "")


def overall_action(decisions: pl.DataFrame) -> str:
    """The most severe action among the decisions (``accept`` when there are none)."""
    if decisions.height == 0:
        return "accept"
    actions: list[str] = decisions.get_column("action").to_list()
    return max(actions, key=lambda a: _SEVERITY[a])


#: process exit code per most severe action (1 and 2 are the CLI's own errors)
EXIT_CODES = {"accept": 0, "warn": 0, "escalate": 3, "block": 4, "rollback": 5}


def exit_code(decisions: pl.DataFrame) -> int:
    """Exit code for the most severe action: 0 accept/warn, 3 escalate, 4 block, 5 rollback."""
    return EXIT_CODES[overall_action(decisions)]


def write_evidence(decisions: pl.DataFrame, path: str | Path, *, append: bool = True) -> int:
    """Write one JSON line per decision (the ``evidence`` column); returns the count."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a" if append else "w", encoding="utf-8") as f:
        for line in decisions.get_column("evidence").to_list():
            f.write(line)
            f.write("\n")
    return decisions.height
