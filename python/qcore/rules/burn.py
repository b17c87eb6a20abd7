"""Multiwindow, multi-burn-rate SLO alerts over request logs.

Burn rate over a window ``w``: ``BR(w) = error_ratio(w) / (1 − objective)``. A window
pair alerts when ``BR(long) > k`` **and** ``BR(short) > k``; rows are OR-ed. The factor
for spending a fraction ``f`` of the error budget of an SLO period ``P`` within the long
window ``w`` is ``k = f · P / w`` (the SRE workbook; Sloth's ``getBurnRateFactor``).

Presets (``windows=``):

- ``"workbook"`` (default; also Sloth's): page 2 % in 1 h / 5 m (14.4 at 30 d),
  page 5 % in 6 h / 30 m (6), ticket 10 % in 1 d / 2 h (3), ticket 10 % in 3 d / 6 h (1).
- ``"pyrra"``: windows scaled by ``P / 28 d``; factors 14, 7, 2, 1.

For a latency SLO a request is *bad* when it failed or took longer than
``latency_threshold`` seconds; for an error SLO when it failed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from qcore.rules.engine import _as_logs
from qcore.rules.model import ACTIONS, RuleError, parse_duration

__all__ = ["PYRRA", "WORKBOOK", "BurnWindow", "burn_rate_alerts", "burn_windows", "evaluate_slos"]


@dataclass(frozen=True)
class BurnWindow:
    """One alerting row: ``severity``, ``long``/``short`` windows (s), and either the
    budget fraction ``budget`` (factor derived as ``budget · P / long``) or a fixed
    ``factor``."""

    severity: str
    long: float
    short: float
    budget: float | None = None
    factor: float | None = None

    def factor_for(self, period: float) -> float:
        if self.factor is not None:
            return self.factor
        assert self.budget is not None
        return self.budget * period / self.long


H = 3600.0
D = 86400.0
WORKBOOK = (
    BurnWindow("page", 1 * H, 5 * 60.0, budget=0.02),
    BurnWindow("page", 6 * H, 30 * 60.0, budget=0.05),
    BurnWindow("ticket", 1 * D, 2 * H, budget=0.10),
    BurnWindow("ticket", 3 * D, 6 * H, budget=0.10),
)
PYRRA = (
    BurnWindow("critical", 1 * H, 5 * 60.0, factor=14.0),
    BurnWindow("critical", 6 * H, 30 * 60.0, factor=7.0),
    BurnWindow("warning", 1 * D, 2 * H, factor=2.0),
    BurnWindow("warning", 4 * D, 6 * H, factor=1.0),
)


def burn_windows(preset: str | Sequence[BurnWindow | dict[str, Any]], period: float) -> list[BurnWindow]:
    """Resolve a preset name or a list of windows (dicts with severity/long/short/budget|factor)."""
    if isinstance(preset, str):
        if preset in ("workbook", "sloth", "google"):
            return list(WORKBOOK)
        if preset == "pyrra":
            s = period / (28 * D)
            return [BurnWindow(w.severity, w.long * s, w.short * s, factor=w.factor) for w in PYRRA]
        raise ValueError(f"windows must be 'workbook', 'sloth', 'pyrra' or a list of windows, got {preset!r}")
    out = []
    for w in preset:
        if isinstance(w, BurnWindow):
            out.append(w)
            continue
        try:
            long_ = parse_duration(w["long"], "windows: long")
            short = parse_duration(w["short"], "windows: short")
        except KeyError as e:
            raise ValueError(f"windows: each window needs long and short, missing {e}") from None
        if short >= long_:
            raise ValueError(f"windows: short window {w['short']} must be shorter than long window {w['long']}")
        if ("budget" in w) == ("factor" in w):
            raise ValueError("windows: give exactly one of budget or factor per window")
        out.append(BurnWindow(str(w.get("severity", "page")), long_, short,
                              budget=w.get("budget"), factor=w.get("factor")))
    if not out:
        raise ValueError("windows: at least one window is needed")
    return out


def burn_rate_alerts(
    frame: Any,
    *,
    objective: float,
    latency_threshold: float | None = None,
    period: Any = "30d",
    windows: str | Sequence[Any] = "workbook",
    now: float | None = None,
    min_events: int = 1,
    group_by: Sequence[str] = (),
) -> pl.DataFrame:
    """Evaluate multiwindow burn-rate alerts over a request log.

    Parameters
    ----------
    frame
        Logs, a frame or paths (see :func:`qcore.rules.evaluate`).
    objective
        The SLO target, e.g. ``0.999`` (99.9 % good).
    latency_threshold
        Seconds; when set this is a latency SLO (slow or failed requests are bad).
    period
        SLO period (``"30d"``, ``"28d"``, seconds).
    now
        End of the evaluation windows; defaults to the newest event in the log (offline
        replay), not the wall clock.
    min_events
        Low-traffic guard: a window with fewer events never fires; its row says so.

    Returns
    -------
    polars.DataFrame
        One row per (group, window pair): ``severity, long_window, short_window, factor,
        long_events, long_bad, long_burn, short_events, short_bad, short_burn,
        firing, low_traffic``.

    Examples
    --------
    >>> import polars as pl
    >>> log = pl.DataFrame({"ts": [float(i) for i in range(7200)],
    ...                     "status": [500 if i % 10 == 0 else 200 for i in range(7200)]})
    >>> a = burn_rate_alerts(log, objective=0.999)
    >>> burn, firing = a.filter(pl.col("long_window") == 3600.0).select("long_burn", "firing").row(0)
    >>> round(burn, 6), firing
    (100.0, True)
    """
    _check_alert_args(objective, latency_threshold, min_events)
    p = parse_duration(period, "period")
    ws = burn_windows(windows, p)
    logs = _as_logs(frame, None, None, "exclude", tuple(group_by))
    for k in group_by:
        if k not in logs.frame.columns:
            raise ValueError(f"group_by: column {k!r} not in the log; columns: {logs.frame.columns}")
    df = bad_frame(logs.frame, latency_threshold, group_by)
    t_end = float(now) if now is not None else float(df.get_column("start").max() or 0.0)  # type: ignore[arg-type]
    lengths = [x for w in ws for x in (w.long, w.short)]
    groups = df.partition_by(list(group_by), as_dict=True, maintain_order=True) if group_by else {(): df}
    counts = {tuple(key): [window_counts(g, t_end, length) for length in lengths] for key, g in groups.items()}
    return alerts_table(counts, objective=objective, period=p, windows=ws, min_events=min_events,
                        group_by=group_by)


def _check_alert_args(objective: float, latency_threshold: float | None, min_events: int) -> None:
    if not (0.0 < objective < 1.0):
        raise ValueError(f"objective must be in (0, 1), got {objective}")
    if latency_threshold is not None and not (latency_threshold > 0 and math.isfinite(latency_threshold)):
        raise ValueError(f"latency_threshold must be a positive number of seconds, got {latency_threshold}")
    if min_events < 1:
        raise ValueError(f"min_events must be >= 1, got {min_events}")


def bad_frame(df: pl.DataFrame, latency_threshold: float | None, group_by: Sequence[str]) -> pl.DataFrame:
    """The completed requests with a ``__bad`` column (failed, or slower than the
    threshold for a latency SLO)."""
    df = df.filter(pl.col("outcome") != "incomplete")
    if latency_threshold is not None:
        if "latency" not in df.columns:
            raise ValueError("latency_threshold given but the log has no latency column")
        bad = (pl.col("outcome") == "error") | (pl.col("latency") > latency_threshold)
    else:
        bad = pl.col("outcome") == "error"
    return df.select("start", *group_by, __bad=bad.fill_null(True))


def window_counts(g: pl.DataFrame, t_end: float, length: float) -> tuple[int, int]:
    """(events, bad events) with ``t_end − length < start ≤ t_end``: exact, mergeable."""
    sel = g.filter((pl.col("start") > t_end - length) & (pl.col("start") <= t_end))
    n = sel.height
    return n, (int(sel.get_column("__bad").sum()) if n else 0)


def alerts_table(
    counts: dict[tuple[Any, ...], list[tuple[int, int]]],
    *,
    objective: float,
    period: float,
    windows: Sequence[BurnWindow],
    min_events: int,
    group_by: Sequence[str],
) -> pl.DataFrame:
    """The alert table of :func:`burn_rate_alerts` from the (events, bad) counts of each
    group (in the order given) and window (long, short of each pair, in order)."""
    budget = 1.0 - objective
    rows = []
    for key, cnt in counts.items():
        gkey = ",".join(f"{k}={v}" for k, v in zip(group_by, key, strict=True)) if group_by else "*"
        for j, w in enumerate(windows):
            factor = w.factor_for(period)
            out: dict[str, Any] = {"group": gkey, "severity": w.severity, "long_window": w.long,
                                   "short_window": w.short, "factor": factor}
            fire = True
            low = False
            for name, (n, b) in (("long", cnt[2 * j]), ("short", cnt[2 * j + 1])):
                br = (b / n) / budget if n else None
                out[f"{name}_events"] = n
                out[f"{name}_bad"] = b
                out[f"{name}_burn"] = br
                if n < min_events:
                    low = True
                if br is None or not br > factor:
                    fire = False
            out["firing"] = fire and not low
            out["low_traffic"] = low
            rows.append(out)
    return pl.DataFrame(rows, schema={
        "group": pl.String, "severity": pl.String, "long_window": pl.Float64, "short_window": pl.Float64,
        "factor": pl.Float64, "long_events": pl.Int64, "long_bad": pl.Int64, "long_burn": pl.Float64,
        "short_events": pl.Int64, "short_bad": pl.Int64, "short_burn": pl.Float64,
        "firing": pl.Boolean, "low_traffic": pl.Boolean})


_SLO_KEYS = {"id", "version", "owner", "objective", "latency_threshold", "period", "windows", "min_events",
             "group_by", "on_page", "on_ticket", "description", "prometheus"}


def evaluate_slos(frame: Any, slos: Sequence[dict[str, Any]], *, now: float | None = None) -> pl.DataFrame:
    """Burn-rate decisions for ``[[slo]]`` declarations, in the decision table's schema.

    Each declaration: ``id``, ``version``, ``owner``, ``objective``, optional
    ``latency_threshold`` (s), ``period`` (default ``"30d"``), ``windows`` (preset name or
    a list of ``{severity, long, short, budget|factor}``), ``min_events``, ``group_by``,
    ``on_page`` (default ``rollback``) and ``on_ticket`` (default ``warn``). One decision
    per window pair and group: ``fail`` when the alert fires, ``insufficient_evidence``
    when a window has fewer than ``min_events`` events, else ``pass``. The value is
    ``min(long_burn, short_burn)`` (the alert fires when it exceeds the factor).

    Examples
    --------
    >>> import polars as pl
    >>> log = pl.DataFrame({"ts": [float(i) for i in range(7200)],
    ...                     "status": [500 if i % 10 == 0 else 200 for i in range(7200)]})
    >>> d = evaluate_slos(log, [{"id": "avail", "version": "1", "owner": "sre", "objective": 0.999}])
    >>> d.select("status", "action").row(0)
    ('fail', 'rollback')
    """
    rows: list[pl.DataFrame] = []
    for spec in slos:
        check_slo(spec)
        group_by = tuple(spec.get("group_by", ()))
        logs = _as_logs(frame, None, None, "exclude", group_by)
        try:
            table = burn_rate_alerts(logs, objective=float(spec["objective"]),
                                     latency_threshold=spec.get("latency_threshold"),
                                     period=spec.get("period", "30d"), windows=spec.get("windows", "workbook"),
                                     now=now, min_events=int(spec.get("min_events", 1)), group_by=group_by)
        except ValueError as e:
            raise RuleError(f"slo {spec['id']!r}: {e}") from None
        rows.append(decisions_from_table(table, spec, logs.fingerprint().to_dict(), now))
    from qcore.rules.engine import DECISION_SCHEMA

    return pl.concat(rows) if rows else pl.DataFrame(schema=DECISION_SCHEMA)


def check_slo(spec: Mapping[str, Any]) -> None:
    """Raise :class:`RuleError` for an invalid ``[[slo]]`` declaration."""
    sid = spec.get("id")
    if not sid:
        raise RuleError(f"an [[slo]] has no id: {dict(spec)}")
    unknown = set(spec) - _SLO_KEYS
    if unknown:
        raise RuleError(f"slo {sid!r}: unknown field(s) {sorted(unknown)}; known: {sorted(_SLO_KEYS)}")
    if "objective" not in spec:
        raise RuleError(f"slo {sid!r}: objective is required (e.g. 0.999)")
    for k in ("on_page", "on_ticket"):
        v = spec.get(k, "rollback" if k == "on_page" else "warn")
        if v not in ACTIONS:
            raise RuleError(f"slo {sid!r}: {k} must be one of {list(ACTIONS)}, got {v!r}")
    try:
        _check_alert_args(float(spec["objective"]), spec.get("latency_threshold"), int(spec.get("min_events", 1)))
        burn_windows(spec.get("windows", "workbook"), parse_duration(spec.get("period", "30d"), "period"))
    except ValueError as e:
        raise RuleError(f"slo {sid!r}: {e}") from None


def decisions_from_table(table: pl.DataFrame, spec: Mapping[str, Any], fp: dict[str, Any],
                         now: float | None) -> pl.DataFrame:
    """One decision per row of an alert table (:func:`burn_rate_alerts`) of ``spec``."""

    from qcore import _json
    from qcore.rules.engine import DECISION_SCHEMA, _qcore_version

    sid = spec["id"]
    on_page, on_ticket = spec.get("on_page", "rollback"), spec.get("on_ticket", "warn")
    version, owner = spec.get("version"), spec.get("owner")
    rows: list[dict[str, Any]] = []
    for r in table.iter_rows(named=True):
        page = r["severity"] in ("page", "critical")
        burns = [b for b in (r["long_burn"], r["short_burn"]) if b is not None]
        value = min(burns) if len(burns) == 2 else None
        if not version or not owner:
            status, msg = "unauditable", "slo has no version or no owner"
        elif r["low_traffic"]:
            status, msg = "insufficient_evidence", (f"{r['long_events']} / {r['short_events']} events in the "
                                                    f"long / short window, {spec.get('min_events', 1)} needed")
        elif r.get("undecided"):  # a metric source's bracketed counts straddle the factor
            status, msg = "insufficient_evidence", r["undecided"]
        elif r["firing"]:
            status, msg = "fail", f"burn rate {value:.3g} > {r['factor']:.3g} on both windows"
        else:
            status, msg = "pass", "not firing"
        action = {"pass": "accept", "fail": on_page if page else on_ticket,
                  "insufficient_evidence": "escalate", "unauditable": "block"}[status]
        label = f"burn_rate_{_dur(r['long_window'])}/{_dur(r['short_window'])}"
        ev = {"kind": "qcore.decision", "schema": 1, "slo": dict(spec), "group": r["group"], "metric": label,
              "value": value, "threshold": r["factor"], "status": status, "action": action, "message": msg,
              "details": r, "data": fp, "evaluated_at": now, "qcore_version": _qcore_version()}
        rows.append({"rule_id": str(sid), "rule_version": None if version is None else str(version),
                     "owner": owner, "group": r["group"], "metric": label, "value": value, "ci_lo": None,
                     "ci_hi": None, "comparison": "<=", "threshold": r["factor"],
                     "n": r["long_events"], "min_n": int(spec.get("min_events", 1)), "status": status,
                     "action": action, "response": {
                         "pass": "", "unauditable": "name the SLO's owner and version",
                         "insufficient_evidence": (
                             "put the latency threshold on a bucket edge (or use a native histogram)"
                             if r.get("undecided") and status == "insufficient_evidence"
                             else "wait for traffic in both windows before deciding"),
                     }.get(status, "page the owner; stop the rollout" if page else "open a ticket"),
                     "message": msg, "evidence": _json.dumps(ev, sort_keys=True)})
    return pl.DataFrame(rows, schema=DECISION_SCHEMA)


def _dur(s: float) -> str:
    for unit, k in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if s >= k and abs(s / k - round(s / k)) < 1e-9:
            return f"{round(s / k)}{unit}"
    return f"{s:g}s"
