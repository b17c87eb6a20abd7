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
from dataclasses import dataclass
from typing import Any, Sequence

import polars as pl

from qcore.rules.engine import _as_logs
from qcore.rules.model import parse_duration

__all__ = ["BurnWindow", "burn_rate_alerts", "WORKBOOK", "PYRRA", "burn_windows"]


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
    if not (0.0 < objective < 1.0):
        raise ValueError(f"objective must be in (0, 1), got {objective}")
    if latency_threshold is not None and not (latency_threshold > 0 and math.isfinite(latency_threshold)):
        raise ValueError(f"latency_threshold must be a positive number of seconds, got {latency_threshold}")
    if min_events < 1:
        raise ValueError(f"min_events must be >= 1, got {min_events}")
    p = parse_duration(period, "period")
    ws = burn_windows(windows, p)
    logs = _as_logs(frame, None, None, "exclude", tuple(group_by))
    df = logs.frame.filter(pl.col("outcome") != "incomplete")
    for k in group_by:
        if k not in df.columns:
            raise ValueError(f"group_by: column {k!r} not in the log; columns: {df.columns}")
    if latency_threshold is not None:
        if "latency" not in df.columns:
            raise ValueError("latency_threshold given but the log has no latency column")
        bad = (pl.col("outcome") == "error") | (pl.col("latency") > latency_threshold)
    else:
        bad = pl.col("outcome") == "error"
    df = df.with_columns(__bad=bad.fill_null(True))
    t_end = float(now) if now is not None else float(df.get_column("start").max() or 0.0)  # type: ignore[arg-type]
    budget = 1.0 - objective
    groups = df.partition_by(list(group_by), as_dict=True, maintain_order=True) if group_by else {(): df}
    rows = []
    for key, g in groups.items():
        gkey = ",".join(f"{k}={v}" for k, v in zip(group_by, key)) if group_by else "*"
        for w in ws:
            k = w.factor_for(p)
            out: dict[str, Any] = {"group": gkey, "severity": w.severity, "long_window": w.long,
                                   "short_window": w.short, "factor": k}
            fire = True
            low = False
            for name, length in (("long", w.long), ("short", w.short)):
                sel = g.filter((pl.col("start") > t_end - length) & (pl.col("start") <= t_end))
                n = sel.height
                b = int(sel.get_column("__bad").sum()) if n else 0
                br = (b / n) / budget if n else None
                out[f"{name}_events"] = n
                out[f"{name}_bad"] = b
                out[f"{name}_burn"] = br
                if n < min_events:
                    low = True
                if br is None or not br > k:
                    fire = False
            out["firing"] = fire and not low
            out["low_traffic"] = low
            rows.append(out)
    return pl.DataFrame(rows, schema={
        "group": pl.String, "severity": pl.String, "long_window": pl.Float64, "short_window": pl.Float64,
        "factor": pl.Float64, "long_events": pl.Int64, "long_bad": pl.Int64, "long_burn": pl.Float64,
        "short_events": pl.Int64, "short_bad": pl.Int64, "short_burn": pl.Float64,
        "firing": pl.Boolean, "low_traffic": pl.Boolean})
