"""The report's result: per-group summaries, the report, and its text and JSON forms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from qcore import _json

__all__ = ["QUANTILES", "GroupSummary", "Report"]

QUANTILES = (0.5, 0.99, 0.999)


@dataclass
class GroupSummary:
    """Summary of one group (or of the whole log, ``label == "all"``)."""

    label: str
    key: dict[str, Any]
    count: int
    ok: int
    errors: int
    incomplete: int
    duration: float
    rate: float | None
    rate_ci: tuple[float, float] | None
    peak_to_mean: float | None
    dispersion: float | None
    cv_interarrival: float | None
    quantiles: dict[float, tuple[float | None, float | None, float | None]]
    error_rate: float | None
    little: dict[str, Any] | None
    peak_concurrency: float | None
    peak_exact: bool
    sketch: Any = field(repr=False, default=None)
    counts: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    inflight: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    burstiness: list[tuple[float, float]] = field(default_factory=list)
    #: starts of the failed requests per window (the windows of ``counts``)
    error_counts: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: the peak in flight of each in-flight window (the windows of ``inflight``): equal
    #: bounds when exact (``peak_exact``), else at least ``lo`` and at most ``hi``
    inflight_peak_lo: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))
    inflight_peak_hi: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: series per plot window (the whole log's, and a group's when the log has at most
    #: ``GROUP_TIMELINES_MAX`` groups): ``latency``, ``ttft``, ``tpot`` (start, end,
    #: count, p50, p99, p999 with their intervals) and ``tokens`` (tokens in
    #: and out of the requests arriving in each window, and per second) and ``in_flight``
    #: (the peak in flight of each plot window, ``peak_lo`` and ``peak_hi``)
    over_time: dict[str, list[dict[str, Any]]] = field(repr=False, default_factory=dict)
    #: the mergeable per-window sketches and sums behind ``over_time``
    timeline: Any = field(repr=False, default=None)

    @property
    def latency_over_time(self) -> list[dict[str, Any]]:
        """Per plot window with latencies: start, end, count, p50, p99, p999 (and their
        intervals) of the ok requests arriving in it (``over_time["latency"]``)."""
        return self.over_time.get("latency", [])

    def row(self) -> dict[str, Any]:
        r: dict[str, Any] = {"group": self.label, "count": self.count, "rate": self.rate,
                             "peak_to_mean": self.peak_to_mean, "dispersion": self.dispersion}
        for q, (est, lo, hi) in self.quantiles.items():
            tag = "p" + f"{q * 100:.10g}".replace(".", "")
            r[tag] = est
            r[tag + "_lo"] = lo
            r[tag + "_hi"] = hi
        r["error_rate"] = self.error_rate
        r["little_gap"] = self.little["gap"] if self.little else None
        r["little_holds"] = self.little["holds"] if self.little else None
        r["peak_concurrency"] = self.peak_concurrency
        return r


@dataclass
class Report:
    """Result of :func:`summarize`; print it, render it (:meth:`to_html`) or export it."""

    overall: GroupSummary
    groups: list[GroupSummary]
    group_by: tuple[str, ...]
    bin: float
    t0: float
    t1: float
    grid: np.ndarray
    exact: bool
    fingerprint: dict[str, Any]
    contract: dict[str, Any]
    mapping: dict[str, Any]
    title: str = "qcore report"
    little_tolerance: float = 0.02

    def table(self) -> pl.DataFrame:
        """One row per group (and a final ``all`` row) as a polars DataFrame."""
        rows = [g.row() for g in self.groups] + [self.overall.row()]
        return pl.DataFrame(rows, infer_schema_length=None)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "group_by": list(self.group_by), "bin": self.bin,
                "t0": self.t0, "t1": self.t1, "exact": self.exact, "groups": self.table().to_dicts(),
                "latency_over_time": self.overall.latency_over_time,
                "over_time": {"all": self.overall.over_time,
                              "groups": {g.label: g.over_time for g in self.groups if g.over_time}},
                "data": self.fingerprint, "contract": self.contract, "mapping": self.mapping}

    def to_json(self) -> str:
        return _json.dumps(self.to_dict(), indent=1)

    def to_text(self) -> str:
        """A readable fixed-width table (what ``qcore report`` prints)."""
        head = ["group", "count", "rate/s", "burst", "p50", "p99", "p999", "err%", "little", "peak"]
        lines = []
        for g in [*self.groups, self.overall]:
            def q(x: float, g: GroupSummary = g) -> str:
                est, lo, hi = g.quantiles.get(x, (None, None, None))
                if est is None:
                    return "-"
                unit = _unit_for(est)
                s = _fmt_u(est, unit)
                if lo is not None or hi is not None:
                    s += f" [{_fmt_u(lo, unit, False)},{_fmt_u(hi, unit, False)}]"
                return s
            lit = "-"
            if g.little:
                lit = f"{'ok' if g.little['holds'] else 'GAP'} {g.little['gap'] * 100:.2f}%"
            lines.append([
                g.label[:40], f"{g.count}", _fmt(g.rate), _fmt(g.dispersion), q(0.5), q(0.99), q(0.999),
                "-" if g.error_rate is None else f"{100 * g.error_rate:.2f}", lit,
                _fmt(g.peak_concurrency) + ("" if g.peak_exact or g.peak_concurrency is None else "~"),
            ])
        widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(head)]
        out = [*self.mapping_lines(), ""] if self.mapping_lines() else []
        out.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        out.append("  ".join("-" * w for w in widths))
        for r in lines:
            out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        c = self.contract
        notes = [f"{self.overall.count} rows over {_fmt_s(self.t1 - self.t0)}; burst = index of dispersion of "
                 f"counts per {_fmt_s(self.bin)}; quantiles from QuantileSketch (1% relative error)"
                 + (", [95% CI]" if self.exact else "")]
        if c and c.get("rows_excluded"):
            notes.append(f"contract: {c['rows_excluded']} of {c['rows_total']} rows excluded: "
                         + ", ".join(f"{k['name']}={k['failed']}" for k in c["checks"] if k["failed"]))
        return "\n".join(out + [""] + notes)

    def mapping_lines(self) -> list[str]:
        """The detected column mapping and units, and what stayed ambiguous (the first
        lines of the text report)."""
        m = self.mapping or {}
        out = [str(m["summary"])] if m.get("summary") else []
        out += [f"warning: {w}" for w in m.get("warnings", [])]
        return out

    def to_html(self, path: str | Path | None = None, *, top: int = 20, command: str | None = None) -> str:
        """Render the self-contained HTML report; write it to ``path`` when given.

        ``top`` groups (by requests) are shown, the rest folded into one ``other`` row;
        ``command`` is the command line shown in the page's header.

        >>> import numpy as np, qcore.report as qrep
        >>> import polars as pl
        >>> rep = qrep.summarize(pl.DataFrame({"ts": np.arange(100.0), "latency": np.full(100, 0.2)}))
        >>> "<svg" in rep.to_html()
        True
        """
        from qcore.report._html import render_html

        if not (isinstance(top, int) and top >= 1):
            from qcore.exceptions import InvalidArgumentError

            raise InvalidArgumentError(f"top must be an integer >= 1, got {top!r}")
        doc = render_html(self, top=top, command=command)
        if path is not None:
            Path(path).write_text(doc, encoding="utf-8")
        return doc


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.3g}"


_UNIT_SCALE = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def _unit_for(x: float) -> str:
    a = abs(x)
    if a < 1e-3:
        return "us"
    if a < 1:
        return "ms"
    if a < 120:
        return "s"
    if a < 7200:
        return "min"
    return "h" if a < 172800 else "d"


def _fmt_u(x: float | None, unit: str, suffix: bool = True) -> str:
    """``x`` seconds in ``unit`` (one unit per table cell, so intervals read easily)."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x / _UNIT_SCALE[unit]:.3g}" + (unit if suffix else "")


def _fmt_s(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    a = abs(x)
    if a == 0:
        return "0s"
    if a < 1e-3:
        return f"{x * 1e6:.3g}us"
    if a < 1:
        return f"{x * 1e3:.3g}ms"
    if a < 120:
        return f"{x:.3g}s"
    if a < 7200:
        return f"{x / 60:.3g}min"
    if a < 172800:
        return f"{x / 3600:.3g}h"
    return f"{x / 86400:.3g}d"


