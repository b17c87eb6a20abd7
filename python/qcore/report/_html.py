"""The self-contained HTML report: inline SVG plots, one small inline script (hover values), no external resource.

The page reads top to bottom as someone on call reads it: what was read (files and their
hashes, rows, the time range in UTC, the detected mapping and units, the rows the contract
excluded, the command), the per-group table with a unit in every header, then the plots.
Every group keeps one colour across the plots; the busiest ``top`` groups are shown and
the rest are folded into one ``other`` row and series.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from qcore import _json
from qcore.report._model import GroupSummary, Report, _fmt_s

__all__ = ["render_html", "svg_chart", "PAGE_CSS", "utc", "is_epoch"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f"]
#: the colour of the folded ``other`` group and of reference curves
_GREY = "#555555"

#: the style of every qcore page (the report and the decision page)
PAGE_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:24px;color:#222;max-width:1360px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3;vertical-align:bottom}td.l,th.l{text-align:left}
.scroll{max-width:100%;overflow-x:auto}
figure{display:inline-block;margin:8px;vertical-align:top;max-width:100%}svg{max-width:100%;height:auto}
figcaption{max-width:620px}
pre{font-size:11px;background:#f7f7f7;padding:8px;white-space:pre-wrap;word-break:break-all}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;overflow-wrap:anywhere}
.note{font-size:12px;color:#444}code{font-size:12px}
.s-pass,.a-accept{background:#e3f4e3}.s-warn,.a-warn{background:#fff4d6}
.s-fail,.a-block,.a-rollback{background:#fbe0e0}.a-escalate{background:#f3dcf5}
.s-insufficient_evidence,.s-stale,.s-unauditable,.s-malformed{background:#ececec}
.qtip{position:absolute;display:none;background:#fff;border:1px solid #999;padding:4px 7px;font-size:12px;
pointer-events:none;box-shadow:1px 1px 4px #0003;white-space:nowrap;z-index:10}
"""


# --------------------------------------------------------------------------------------
# clocks and numbers
# --------------------------------------------------------------------------------------

def is_epoch(t: float) -> bool:
    """Whether ``t`` reads as a Unix time (1998 to 2100) rather than a relative clock."""
    return math.isfinite(t) and 9.0e8 <= t <= 4.1e9


def utc(t: float, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """``t`` (Unix seconds) as a UTC date."""
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime(fmt)


# nice steps of a time axis, seconds
_TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
               86400, 172800, 604800, 2592000]


def _time_ticks(t0: float, lo: float, hi: float, absolute: bool, n: int = 6) -> list[tuple[float, str]]:
    """Ticks of a time axis whose values are seconds since ``t0``: at round UTC times
    (absolute clocks) or round durations (relative clocks), labelled to the step."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [(lo, utc(t0 + lo, "%H:%M:%S") if absolute else _fmt_s(lo))]
    step = next((s for s in _TIME_STEPS if span / s <= n), _TIME_STEPS[-1])
    base = t0 if absolute else 0.0
    first = math.ceil((base + lo) / step) * step
    out = []
    v = first
    while v <= base + hi + 1e-9 * step:
        x = v - base
        if absolute:
            fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%Y-%m-%d"
            if step < 86400 and span > 86400:
                fmt = "%m-%d %H:%M"
            out.append((x, utc(v, fmt)))
        else:
            out.append((x, _fmt_s(x)))
        v += step
    return out


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    out = []
    x = start
    while x <= hi + 1e-9 * step:
        out.append(x)
        x += step
    return out


def _num(x: float | None, digits: int = 3, strip: bool = False) -> str:
    """A readable number: significant digits in positional notation (no exponent between
    1e-6 and 1e15), thousands separated; ``strip`` drops trailing zeros (axis ticks)."""
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a < 1e-6:
        return f"{x:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(a)))
    out = f"{x:.{decimals}f}"
    return out.rstrip("0").rstrip(".") if strip and "." in out else out


_DUR_UNITS = [("µs", 1e-6), ("ms", 1e-3), ("s", 1.0), ("min", 60.0), ("h", 3600.0), ("d", 86400.0)]


def _duration_unit(values: Sequence[float | None]) -> tuple[str, float]:
    """One unit for a column of durations (seconds): the one its largest value reads best in."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return "s", 1.0
    big = max(finite)
    if big < 1e-3:
        return _DUR_UNITS[0]
    if big < 1:
        return _DUR_UNITS[1]
    if big < 120:
        return _DUR_UNITS[2]
    if big < 7200:
        return _DUR_UNITS[3]
    return _DUR_UNITS[4] if big < 172800 else _DUR_UNITS[5]


_RATE_UNITS = [("req/s", 1.0), ("req/min", 1 / 60), ("req/h", 1 / 3600), ("req/d", 1 / 86400)]


def _rate_unit(values: Sequence[float | None]) -> tuple[str, float]:
    """One unit for a column of rates (per second): per second unless every rate is small."""
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    big = max(finite) if finite else 1.0
    for name, scale in _RATE_UNITS:
        if big >= 0.1 * scale:
            return name, scale
    return _RATE_UNITS[-1]


# --------------------------------------------------------------------------------------
# SVG
# --------------------------------------------------------------------------------------

def _finite_series(series: list[tuple[str, np.ndarray, np.ndarray]], logx: bool,
                   logy: bool = False) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The finite points of each series (positive values as log10 on a log axis); empty
    series dropped. A NaN ``y`` at a finite ``x`` stays, as a break in the line (a window
    without a value)."""
    clean = []
    for name, x0, y0 in series:
        x = np.asarray(x0, dtype=np.float64)
        y = np.asarray(y0, dtype=np.float64)
        good = np.isfinite(x) & np.isfinite(y) & ((x > 0) if logx else True) & ((y > 0) if logy else True)
        if not good.any():
            continue
        keep = good | (np.isnan(y) & np.isfinite(x) & ((x > 0) if logx else True))
        x, y = x[keep], y[keep]
        with np.errstate(invalid="ignore"):
            clean.append((name, np.log10(x) if logx else x, np.log10(y) if logy else y))
    return clean


#: round durations (seconds) for a log axis of durations
_LOG_DURATIONS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0,
                  7 * 86400.0, 30 * 86400.0, 365 * 86400.0]


def _round_duration(v: float) -> str:
    """A round duration in the largest unit it is a whole number of (``60`` → ``1min``)."""
    for name, unit in reversed(_DUR_UNITS):
        k = v / unit
        if k >= 1 - 1e-9 and abs(k - round(k)) < 1e-9 * k:
            return f"{round(k):d}{name}"
    return _fmt_s(v)


def _log_ticks(lo: float, hi: float, fmt: Callable[[float], str]) -> list[tuple[float, str]]:
    """Ticks between ``lo`` and ``hi`` (log10 units): at round durations when ``fmt`` is
    the duration format, else at the powers of ten."""
    if fmt is _fmt_s:
        t = [math.log10(v) for v in _LOG_DURATIONS if lo - 1e-9 <= math.log10(v) <= hi + 1e-9]
        if len(t) >= 2:
            return [(v, _round_duration(10 ** v)) for v in t]
    t = [float(v) for v in range(math.floor(lo), math.ceil(hi) + 1) if lo - 1e-9 <= v <= hi + 1e-9]
    if len(t) < 2:
        t = _ticks(lo, hi, 4)
    return [(v, fmt(10 ** v)) for v in t]


def _lines(clean: list[tuple[str, np.ndarray, np.ndarray]], sx: Callable[[Any], Any], sy: Callable[[Any], Any], *,
           step: bool, colors: Mapping[str, str], dashed: Sequence[str],
           legend: tuple[float, float, float] | None, values: bool = False) -> list[str]:
    """The series as polylines (thinned to 1,500 points, extremes kept), and the legend
    at ``legend = (x, top, bottom)`` beside the plot; with ``values``, each polyline
    carries its points' values (``data-x``, ``data-y``) for the hover script."""
    parts = []
    for i, (name, x, y) in enumerate(clean):
        if x.size > 1500:  # thin for size; keep the extremes of each bucket
            idx = np.unique(np.concatenate([np.linspace(0, x.size - 1, 1500).astype(np.int64),
                                            [int(np.nanargmax(y)), int(np.nanargmin(y))]]))
            x, y = x[idx], y[idx]
        col = colors.get(name, _COLORS[i % len(_COLORS)])
        dash = ' stroke-dasharray="5,3"' if name in dashed else ""
        # the values for the hover script on the series' first polyline (NaN in the gaps)
        data = (f' data-x="{",".join(f"{v:.7g}" for v in x)}" data-y="{",".join(f"{v:.4g}" for v in y)}"'
                if values else "")
        # one polyline a run of values (a NaN breaks the line)
        breaks = np.flatnonzero(np.isnan(y))
        for run in np.split(np.arange(x.size), breaks):
            run = run[~np.isnan(y[run])]
            if not run.size:
                continue
            px: np.ndarray = np.asarray(sx(x[run]), dtype=np.float64)
            py: np.ndarray = np.asarray(sy(y[run]), dtype=np.float64)
            if step and px.size > 1:
                px, py = np.repeat(px, 2)[1:], np.repeat(py, 2)[:-1]
            pts = " ".join(f"{u:.1f},{v:.1f}" for u, v in zip(px, py, strict=True))
            parts.append(f'<polyline class="series" data-name="{html.escape(name)}" fill="none" stroke="{col}" '
                         f'stroke-width="1.4"{dash}{data} points="{pts}"/>')
            if px.size == 1:   # a lone value between gaps: a dot, so that it shows
                parts.append(f'<circle cx="{px[0]:.1f}" cy="{py[0]:.1f}" r="2" fill="{col}"/>')
            data = ""
        if legend is not None and legend[1] + 10 + 14 * i <= legend[2]:
            lx, ly = legend[0], legend[1] + 10 + 14 * i
            parts.append(f'<rect class="key" x="{lx}" y="{ly - 8}" width="10" height="10" fill="{col}"/>'
                         f'<text x="{lx + 14}" y="{ly + 1}" font-size="10">{html.escape(name[:22])}</text>')
    return parts


#: a named series: x and y values
Series = tuple[str, np.ndarray, np.ndarray]
#: a shaded interval per window: name, window starts, window ends, lower and upper bounds
Band = tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _bands(bands: Sequence[Band], sx: Callable[[Any], Any], sy: Callable[[Any], Any],
           box: tuple[float, float, float, float], colors: Mapping[str, str], logx: bool, logy: bool,
           clip: str) -> str:
    """The bands as rectangles in a group clipped to the plot area (``clip``: the page-unique
    id of the clip path)."""
    ml, mt, pw, ph = box
    out = [f'<clipPath id="{clip}"><rect x="{ml}" y="{mt}" width="{pw}" height="{ph}"/></clipPath>'
           f'<g class="bands" clip-path="url(#{clip})">']
    for i, (name, x0, x1, lo, hi) in enumerate(bands):
        col = colors.get(name, _COLORS[i % len(_COLORS)])
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.asarray(sx(np.log10(x0) if logx else x0), dtype=np.float64)
            b = np.asarray(sx(np.log10(x1) if logx else x1), dtype=np.float64)
            top = np.asarray(sy(np.log10(hi) if logy else hi), dtype=np.float64)
            bot = np.asarray(sy(np.log10(lo) if logy else lo), dtype=np.float64)
        for u, v, t, d in zip(a, b, top, bot, strict=True):
            if not all(math.isfinite(z) for z in (u, v, t, d)) or d < t:
                continue
            t, d = max(t, mt - 1.0), min(d, mt + ph + 1.0)
            out.append(f'<rect class="band" data-name="{html.escape(name)}" x="{u:.1f}" y="{t:.1f}" '
                       f'width="{max(v - u, 0.5):.1f}" height="{d - t:.1f}" fill="{col}" fill-opacity="0.14"/>')
    out.append("</g>")
    return "".join(out)


def svg_chart(series: list[tuple[str, np.ndarray, np.ndarray]], *, title: str, xlabel: str, ylabel: str,
              logx: bool = False, xfmt: Callable[[float], str] | None = None, width: int = 640,
              height: int = 300, step: bool = False, css_class: str = "plot", logy: bool = False,
              yfmt: Callable[[float], str] | None = None, colors: Mapping[str, str] | None = None,
              xticks: Callable[[float, float], list[tuple[float, str]]] | None = None,
              empty: str = "no data", dashed: Sequence[str] = (),
              bands: Sequence[Band] = (), hover: Mapping[str, str] | None = None,
              marks: Sequence[tuple[float, float, str]] = ()) -> str:
    """A line chart as an inline ``<svg>`` element.

    ``colors`` maps series names to colours (so a group keeps its colour across charts);
    the legend sits beside the plot, never over it. ``xticks(lo, hi)`` gives the x ticks
    as ``(position, label)``; ``empty`` is the reason shown when no series has a point.
    ``bands`` are shaded intervals, one rectangle a window (``(name, x0, x1, lo, hi)``;
    none where a bound is NaN), in the series' colour, clipped to the plot.
    The axes' scales are written on the ``<svg>`` (``data-*``) for the page's hover
    script; ``hover`` adds attributes (the x origin and the units of the values).
    ``marks`` are labelled points ``(x, y, label)`` (the arrival-rate peak, say).

    >>> doc = svg_chart([("a", np.array([0.0, 1.0]), np.array([1.0, 2.0]))], title="t",
    ...                 xlabel="x (s)", ylabel="y")
    >>> doc.startswith('<svg class="plot"') and "polyline" in doc
    True
    """
    clean = _finite_series(series, logx, logy)
    legend = len(clean) > 1
    W, H, ml, mr, mt, mb = width, height, 64, (150 if legend else 16), 28, 44
    pw, ph = W - ml - mr, H - mt - mb
    parts = [(f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
              f'viewBox="0 0 {W} {H}" role="img" aria-label="{html.escape(title)}">'),
             f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    if not clean:
        # a short panel that says why it is empty
        parts[0] = parts[0].replace(f'height="{H}" viewBox="0 0 {W} {H}"', f'height="72" viewBox="0 0 {W} 72"')
        parts.append(f'<rect x="{ml}" y="26" width="{W - ml - 16}" height="40" fill="#fafafa" stroke="#ddd"/>'
                     f'<text class="empty" x="{W / 2}" y="50" text-anchor="middle" font-size="12">'
                     f'{html.escape(empty)}</text></svg>')
        return "".join(parts)
    xs_all = [x for _, x, _ in clean]
    ys_all = [y for _, _, y in clean]
    x_lo = float(min(a.min() for a in xs_all))
    x_hi = float(max(a.max() for a in xs_all))
    y_lo = float(min(np.nanmin(a) for a in ys_all))
    y_hi = float(max(np.nanmax(a) for a in ys_all))
    if not logy:
        y_lo = min(0.0, y_lo)
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    y_hi += 0.05 * (y_hi - y_lo)

    def sx(v: np.ndarray | float) -> Any:
        return ml + (np.asarray(v) - x_lo) / (x_hi - x_lo) * pw

    def sy(v: np.ndarray | float) -> Any:
        return mt + ph - (np.asarray(v) - y_lo) / (y_hi - y_lo) * ph

    scale = {"xlo": x_lo, "xhi": x_hi, "ml": ml, "mt": mt, "pw": pw, "ph": ph, "step": int(step),
             **(hover or {})}
    parts[0] = parts[0][:-1] + "".join(f' data-{k}="{html.escape(str(v))}"' for k, v in scale.items()) + ">"
    parts.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    if bands:
        clip = "clip-" + hashlib.sha256(f"{css_class}\0{title}".encode()).hexdigest()[:12]
        parts.append(_bands(bands, sx, sy, (ml, mt, pw, ph), colors or {}, logx, logy, clip))
    fmt = xfmt or (lambda v: f"{v:g}")
    if xticks is not None:
        xt = xticks(x_lo, x_hi)
    elif logx:
        xt = _log_ticks(x_lo, x_hi, fmt)
    else:
        xt = [(v, fmt(v)) for v in _ticks(x_lo, x_hi, 5)]
    for v, s in xt:
        tx = float(sx(v))
        parts.append(f'<line x1="{tx:.1f}" y1="{mt + ph}" x2="{tx:.1f}" y2="{mt + ph + 4}" stroke="#555"/>'
                     f'<text class="xtick" x="{tx:.1f}" y="{mt + ph + 16}" text-anchor="middle" font-size="10">'
                     f'{html.escape(s)}</text>')
    yf = yfmt or (lambda v: _num(v, strip=True))
    yt = _log_ticks(y_lo, y_hi, yf) if logy else [(v, yf(v)) for v in _ticks(y_lo, y_hi, 4)]
    for v, s in yt:
        ty = float(sy(v))
        parts.append(f'<line x1="{ml - 4}" y1="{ty:.1f}" x2="{ml + pw}" y2="{ty:.1f}" stroke="#eee"/>'
                     f'<text x="{ml - 6}" y="{ty + 3:.1f}" text-anchor="end" font-size="10">{html.escape(s)}</text>')
    parts.append(f'<text class="xlabel" x="{ml + pw / 2}" y="{H - 6}" text-anchor="middle" font-size="11">'
                 f'{html.escape(xlabel)}</text>')
    parts.append(f'<text class="ylabel" transform="translate(14,{mt + ph / 2}) rotate(-90)" text-anchor="middle" '
                 f'font-size="11">{html.escape(ylabel)}</text>')
    parts += _lines(clean, sx, sy, step=step, colors=colors or {}, dashed=dashed,
                    legend=(ml + pw + 10, mt, mt + ph) if legend else None, values=hover is not None and not logx)
    for mx, my, label in marks:
        px, py = float(sx(math.log10(mx) if logx else mx)), float(sy(math.log10(my) if logy else my))
        anchor = "end" if px > ml + pw * 0.7 else "start"
        dx = -6 if anchor == "end" else 6
        parts.append(f'<g class="mark"><path d="M{px:.1f},{py - 3:.1f} l-5,-8 h10 z" fill="#000"/>'
                     f'<text x="{px + dx:.1f}" y="{max(py - 6, mt + 10):.1f}" text-anchor="{anchor}" '
                     f'font-size="10" font-weight="bold">{html.escape(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------
# groups shown
# --------------------------------------------------------------------------------------

def _other(rest: list[GroupSummary], span: float) -> GroupSummary:
    """The groups past the top ``N`` folded into one: counts and the core's rates add
    (every group's rate is over the log's span), the sketches merge; intervals, burstiness and Little's
    law are not defined for the fold and stay empty."""
    import qcore

    count = sum(g.count for g in rest)
    ok = sum(g.ok for g in rest)
    errors = sum(g.errors for g in rest)
    sketch = None
    sketches = [g.sketch for g in rest if g.sketch is not None]
    if sketches:
        sketch = qcore.QuantileSketch(relative_accuracy=sketches[0].relative_accuracy)
        for s in sketches:
            sketch.merge(s)
    quantiles: dict[float, tuple[float | None, float | None, float | None]] = {}
    for q in (rest[0].quantiles if rest else {}):
        v = sketch.quantile(q) if sketch is not None and sketch.count > 0 else None
        quantiles[q] = (None if v is None else float(np.asarray(v)), None, None)
    counts = np.sum([g.counts for g in rest if g.counts.size], axis=0) if any(g.counts.size for g in rest) \
        else np.zeros(0)
    errs = np.sum([g.error_counts for g in rest if g.error_counts.size], axis=0) \
        if any(g.error_counts.size for g in rest) else np.zeros(0, dtype=np.int64)
    has_err = any(g.error_rate is not None for g in rest)
    over_time: dict[str, list[dict[str, Any]]] = {}
    timeline = None
    if rest and all(g.timeline is not None for g in rest):   # the windows' sketches merge, tokens add
        timeline = copy.deepcopy(rest[0].timeline)
        for g in rest[1:]:
            timeline.merge(g.timeline)
        over_time = timeline.over_time()
    return GroupSummary(
        label=f"other ({len(rest)} groups)", key={}, count=count, ok=ok, errors=errors,
        incomplete=sum(g.incomplete for g in rest), duration=span,
        rate=(sum(g.rate for g in rest if g.rate is not None) if any(g.rate is not None for g in rest) else None),
        rate_ci=None, peak_to_mean=None, dispersion=None,
        cv_interarrival=None, quantiles=quantiles,
        error_rate=(errors / (ok + errors) if has_err and ok + errors else None), little=None,
        peak_concurrency=None, peak_exact=False, sketch=sketch, counts=np.asarray(counts),
        inflight=np.zeros(0), burstiness=[], error_counts=np.asarray(errs),
        over_time=over_time, timeline=timeline)


def shown_groups(rep: Report, top: int) -> tuple[list[GroupSummary], GroupSummary | None]:
    """The ``top`` busiest groups (by requests, ties by label) and the fold of the rest."""
    groups = sorted(rep.groups, key=lambda g: (-g.count, g.label))
    if top < 1 or len(groups) <= top:
        return groups, None
    return groups[:top], _other(groups[top:], rep.t1 - rep.t0)


# --------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------

def _coarsen(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` summed ``k`` consecutive entries at a time (the last sum may hold fewer)."""
    if k == 1 or a.size == 0:
        return np.asarray(a)
    pad = (-a.size) % k
    out: np.ndarray = np.concatenate([a, np.zeros(pad, dtype=a.dtype)]).reshape(-1, k).sum(axis=1)
    return out


def _time_axis(rep: Report) -> tuple[str, Callable[[float, float], list[tuple[float, str]]]]:
    absolute = is_epoch(rep.t0)
    label = f"time (UTC), from {utc(rep.t0, '%Y-%m-%d %H:%M')}" if absolute else "time since the first request"
    return label, lambda lo, hi: _time_ticks(rep.t0, lo, hi, absolute)


def _error_series(show: list[GroupSummary], k: int, bin_: float) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Failed / arrived (%) per group, the windows summed ``k`` at a time (at most 120
    points a series); windows without arrivals left out."""
    out = []
    for g in show:
        if g.error_rate is None or not g.error_counts.size:
            continue
        n, e = _coarsen(g.counts, k), _coarsen(g.error_counts, k)
        x = (np.arange(n.size) + 0.5) * k * bin_
        ok = n > 0
        out.append((g.label, x[ok], 100.0 * e[ok] / n[ok]))
    return out


_Q = ("p50", "p99", "p999")
#: the quantiles' own colours, none of a group's
_Q_COLORS = {"p50": "#4d4d4d", "p99": "#b8860b", "p999": "#800000"}
def _band_note() -> str:
    import qcore

    return ("Shaded: each quantile's 95 % distribution-free interval in its window; a window without a band "
            f"for a quantile holds too few requests to bound it (p99 needs at least {qcore.min_sample_size(0.99):,}, "
            f"p999 {qcore.min_sample_size(0.999):,}).")


def _quantile_lines(rows: list[dict[str, Any]], t0: float, names: Sequence[str], scale: float,
                    label: Callable[[str], str] = lambda q: q) -> tuple[list[Series], list[Band]]:
    """Lines through the windows' midpoints and one band a window, for the quantiles
    ``names`` of the over-time ``rows`` (values divided by ``scale``)."""
    if not rows:
        return [], []
    width = rows[0]["end"] - rows[0]["start"]
    starts = [r["start"] for r in rows]
    # a window without requests between two with them breaks the lines (a NaN point)
    filled: list[dict[str, Any]] = []
    for r, nxt in zip(rows, [*starts[1:], None], strict=True):
        filled.append(r)
        if nxt is not None and nxt - r["end"] > width / 2:
            filled.append({"start": r["end"], "end": r["end"] + width,
                           **{k: None for k in r if k not in ("start", "end", "count")}})
    rows = filled
    mid = np.array([(r["start"] + r["end"]) / 2 - t0 for r in rows])
    x0 = np.array([r["start"] - t0 for r in rows])
    x1 = np.array([r["end"] - t0 for r in rows])
    lines, bands = [], []
    for q in names:
        def col(key: str) -> np.ndarray:
            return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=np.float64) / scale
        lines.append((label(q), mid, col(q)))
        bands.append((label(q), x0, x1, col(q + "_lo"), col(q + "_hi")))
    return lines, bands


def _per_group_rows(show: list[GroupSummary], rep: Report, key: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """``(label, rows)`` of the series ``key`` of every shown group with timelines, else of the whole log."""
    own = [(g.label, g.over_time.get(key, [])) for g in show if g.over_time]
    return own if own and rep.group_by else [("all", rep.overall.over_time.get(key, []))]


def _timeline_reason(rep: Report) -> str | None:
    """Why the groups have no timelines of their own (``None`` when they have)."""
    from qcore.report._stream import GROUP_TIMELINES_MAX

    if not rep.group_by or any(g.over_time for g in rep.groups):
        return None
    return (f"latency over time per group is kept for up to {GROUP_TIMELINES_MAX} groups; this grouping has "
            f"{len(rep.groups):,} (the whole log's is shown)")


def _in_flight_chart(rep: Report, show: list[GroupSummary], cols: Mapping[str, str], tlabel: str,
                     tticks: Callable[[float, float], list[tuple[float, str]]], has_latency: bool) -> tuple[str, str]:
    """The peak in flight per in-flight window: exact from the raw columns, a step line
    per group; else the whole log's bounds from the window counts (the groups' bounds are
    in the JSON), a line at the lower bound and a band up to the upper."""
    bin_ = rep.bin
    groups = [g for g in show if g.inflight_peak_hi.size and g.inflight_peak_hi.any() and g.peak_exact]
    if not groups and rep.overall.inflight_peak_hi.size and rep.overall.inflight_peak_hi.any():
        groups = [rep.overall]
    exact = all(g.peak_exact for g in groups)
    series: list[Series] = []
    bands: list[Band] = []
    for g in groups:
        n = g.inflight_peak_lo.size
        x = np.arange(n + 1, dtype=np.float64) * bin_
        label = g.label if rep.group_by and g is not rep.overall else "all"
        series.append((label, x, np.append(g.inflight_peak_lo, g.inflight_peak_lo[-1]).astype(np.float64)))
        if not g.peak_exact:
            bands.append((label, x[:-1], x[1:], g.inflight_peak_lo.astype(np.float64),
                          g.inflight_peak_hi.astype(np.float64)))
    how = "" if not groups else " (exact)" if exact else " (bounds)"
    chart = svg_chart(series, title=f"Peak requests in flight per {_fmt_s(bin_)} window{how}", xlabel=tlabel,
                      ylabel="requests in flight", step=True, css_class="plot plot-inflight", colors=cols,
                      xticks=tticks, width=620, bands=bands, hover=_hover(rep, "requests"),
                      empty=("no end times: in-flight needs a latency or end column" if not has_latency
                             else "no request in flight"))
    caption = ("The largest number of requests in flight at any instant of each window (the step function of "
               "qcore.in_flight_peaks over the raw start and end times)." if exact else
               "The log is read in batches without keeping its rows, so each window's peak is bounded by the "
               "window counts: the line is the count just before the window's end (a value it takes), the "
               "shaded band reaches the count before its start plus the requests starting in it. Raise "
               "--exact-limit above the log's rows for the exact peaks; each group's bounds are in the JSON "
               "(over_time.groups).")
    return chart, caption


def _hover(rep: Report, unit: str) -> dict[str, str]:
    """The hover attributes of a time chart: the absolute start of its x axis and the values' unit."""
    return {"t0": repr(rep.t0) if is_epoch(rep.t0) else "", "unit": unit}


def _plots(rep: Report, show: list[GroupSummary], colors: Mapping[str, str]) -> list[tuple[str, str]]:
    has_latency = any(g.sketch is not None and g.sketch.count > 0 for g in [rep.overall, *show])
    cdf_series = []
    qs = np.concatenate([np.linspace(0.0, 0.99, 199), [0.995, 0.999, 0.9995, 0.9999, 1.0]])
    for g in show:
        if g.sketch is not None and g.sketch.count > 0:
            cdf_series.append((g.label, np.asarray(g.sketch.quantile(list(qs)), dtype=np.float64), qs))
    bin_ = rep.bin
    tlabel, tticks = _time_axis(rep)
    rate_series: list[Series] = []
    peak = ""
    for g in show:
        c = g.counts
        if c.size:
            rate_series.append((g.label, ((np.arange(c.size) + 0.5) * bin_).astype(np.float64), c / bin_))
    oc = rep.overall.counts
    marks: list[tuple[float, float, str]] = []
    if oc.size and oc.max() > 0:
        k = int(np.argmax(oc))
        when = utc(rep.t0 + k * bin_, "%Y-%m-%d %H:%M:%S UTC") if is_epoch(rep.t0) else \
            f"{_fmt_s(k * bin_)} after the first request"
        peak = (f"Peak (▼): {_num(oc[k] / bin_)} req/s over the whole log, in the window from {when}"
                + ("; the lines are the groups'." if rep.group_by else "."))
        # the mark sits on the highest line at the whole log's peak window
        top = max((float(s[2][min(k, s[2].size - 1)]) for s in rate_series), default=oc[k] / bin_)
        marks.append(((k + 0.5) * bin_, top, ("log peak " if rep.group_by else "peak ") + f"{_num(oc[k] / bin_)} req/s"
                      + (utc(rep.t0 + k * bin_, " at %H:%M") if is_epoch(rep.t0) else "")))
    burst_series: list[Series] = []
    for g in show:
        if g.burstiness:
            burst_series.append((g.label, np.array([p[0] for p in g.burstiness]),
                                 np.array([p[1] for p in g.burstiness])))
    if burst_series:
        wall = np.array(sorted({float(v) for _, x, _ in burst_series for v in x}))
        burst_series.append(("Poisson", wall, np.ones_like(wall)))
    k = max(1, math.ceil(rep.overall.counts.size / 120))
    err_series = _error_series(show, k, bin_)
    ov = rep.overall
    lot = ov.over_time.get("latency", [])
    width = (lot[0]["end"] - lot[0]["start"]) if lot else bin_
    cols = {**colors, "Poisson": _GREY, "all": colors.get("all", _COLORS[0]), **_Q_COLORS}
    no_latency = ("no latency: the log has no duration or end column" if not has_latency
                  else "no finished request with a latency")
    charts: list[tuple[str, str]] = [
        (svg_chart(cdf_series, title="Latency CDF (log axis)", xlabel="latency", ylabel="fraction of requests ≤ x",
                   logx=True, xfmt=_fmt_s, css_class="plot plot-cdf", colors=cols, empty=no_latency, width=620,
                   yfmt=lambda v: f"{v:g}"), ""),
        (svg_chart(rate_series, title=f"Arrival rate per {_fmt_s(bin_)} window", xlabel=tlabel,
                   ylabel="requests / s", step=True, css_class="plot plot-rate", colors=cols, xticks=tticks,
                   empty="no arrivals", width=620, hover=_hover(rep, "req/s"), marks=marks), peak)]
    # latency over time: the whole log's quantiles, then p99 per group
    unit, scale = _duration_unit([r["p999"] for r in lot])
    lines, bands = _quantile_lines(lot, rep.t0, _Q, scale)
    charts.append((svg_chart(lines, title=f"Latency of the whole log per {_fmt_s(width)} window", xlabel=tlabel,
                             ylabel=f"latency ({unit})", css_class="plot plot-latency", colors=cols,
                             xticks=tticks, width=620, empty=no_latency, bands=bands, hover=_hover(rep, unit)),
                   "p50, p99 and p999 of the successful requests arriving in each window (QuantileSketch, "
                   "1 % relative error). " + _band_note()))
    if rep.group_by:
        per = [(label, rows) for label, rows in _per_group_rows(show, rep, "latency") if label != "all"]
        unit_g, scale_g = _duration_unit([r["p99"] for _, rows in per for r in rows])
        glines: list[Series] = []
        gbands: list[Band] = []
        for label, rows in per:
            def named(_q: str, lb: str = label) -> str:
                return lb
            ln, bd = _quantile_lines(rows, rep.t0, ("p99",), scale_g, label=named)
            glines += ln
            gbands += bd
        reason = _timeline_reason(rep) or no_latency
        charts.append((svg_chart(glines, title=f"p99 latency per group per {_fmt_s(width)} window", xlabel=tlabel,
                                 ylabel=f"p99 latency ({unit_g})", css_class="plot plot-latency-groups",
                                 colors=cols, xticks=tticks, width=620, empty=reason, bands=gbands,
                                 hover=_hover(rep, unit_g)),
                       "Each group's p99 in each window, in the group's colour; p50, p99 and p999 of each group "
                       "are below the plots. " + _band_note()))
    charts.append((svg_chart(err_series, title=f"Failed requests per {_fmt_s(k * bin_)} window (%)", xlabel=tlabel,
                             ylabel="failed / arrived (%)", step=True, css_class="plot plot-errors", colors=cols,
                             xticks=tticks, width=620, hover=_hover(rep, "%"),
                             empty="no failures recorded: the log has no status or error column"
                             if rep.overall.error_rate is None else "no request arrived"),
                   "By the window the request arrived in; failures are errors and error statuses."))
    charts.append(_in_flight_chart(rep, show, cols, tlabel, tticks, has_latency))
    charts += _llm_charts(rep, show, cols, tlabel, tticks, width)
    charts.append((svg_chart(burst_series, title="Burstiness: index of dispersion by window (log–log)",
                             xlabel="window", ylabel="variance / mean of counts", logx=True, logy=True, xfmt=_fmt_s,
                             css_class="plot plot-burstiness", colors=cols, dashed=("Poisson",),
                             empty="too few windows for a burstiness curve", yfmt=lambda v: f"{v:g}", width=620),
                   "Poisson arrivals stay at 1 (dashed) at every window; a rising curve is burstiness at that scale."))
    return charts


def _group_latency(rep: Report, show: list[GroupSummary]) -> str:
    """p50, p99 and p999 over time of each shown group, one small chart a group, folded."""
    per = [g for g in show if g.over_time.get("latency")]
    if not rep.group_by or not per:
        return ""
    tlabel, tticks = _time_axis(rep)
    figs = []
    for g in per:
        rows = g.over_time["latency"]
        unit, scale = _duration_unit([r["p999"] for r in rows])
        lines, bands = _quantile_lines(rows, rep.t0, _Q, scale)
        figs.append("<figure>" + svg_chart(lines, title=g.label, xlabel=tlabel, ylabel=f"latency ({unit})",
                                           css_class="plot plot-latency-group", colors=_Q_COLORS, xticks=tticks,
                                           width=620, height=240, bands=bands, hover=_hover(rep, unit))
                    + "</figure>")
    return ('<details class="group-latency"><summary>Latency over time of each group (p50, p99, p999)</summary>'
            + "".join(figs) + f'<p class="note">{html.escape(_band_note())}</p></details>')


def _llm_charts(rep: Report, show: list[GroupSummary], cols: Mapping[str, str], tlabel: str,
                tticks: Callable[[float, float], list[tuple[float, str]]], width: float) -> list[tuple[str, str]]:
    """Tokens in and out per second per group, and the whole log's TTFT and TPOT over time."""
    out = []
    mapping = rep.mapping or {}
    for kind, what in (("tokens_in", "Input (prompt) tokens"), ("tokens_out", "Output (generated) tokens")):
        series: list[Series] = []
        for label, rows in _per_group_rows(show, rep, "tokens"):
            if rows and kind in rows[0]:
                x = np.array([(r["start"] + r["end"]) / 2 - rep.t0 for r in rows])
                series.append((label, x, np.array([r[kind + "_per_s"] for r in rows], dtype=np.float64)))
        out.append((svg_chart(series, title=f"{what} per second, per {_fmt_s(width)} window", xlabel=tlabel,
                              ylabel="tokens / s", step=True, css_class=f"plot plot-{kind.replace('_', '-')}",
                              colors=cols, xticks=tticks, width=620, hover=_hover(rep, "tokens/s"),
                              empty=f"no {kind.replace('_', ' ')}: the log has no "
                                    f"{'prompt' if kind == 'tokens_in' else 'output'} token column"
                                    f" (mapped as {kind})" if mapping.get(kind) is None else "no tokens"),
                    "The tokens of the requests arriving in each window, per second of the window."))
    for key, what, need in (("ttft", "Time to first token", "a TTFT or first-token time column"),
                            ("tpot", "Time per output token", "TTFT and output tokens (and a latency)")):
        rows = rep.overall.over_time.get(key, [])
        unit, scale = _duration_unit([r["p999"] for r in rows])
        lines, bands = _quantile_lines(rows, rep.t0, _Q, scale)
        out.append((svg_chart(lines, title=f"{what} of the whole log per {_fmt_s(width)} window", xlabel=tlabel,
                              ylabel=f"{key.upper()} ({unit})", css_class=f"plot plot-{key}", colors=cols,
                              xticks=tticks, width=620, bands=bands, hover=_hover(rep, unit),
                              empty=f"no {key.upper()}: it needs {need}"),
                    f"p50, p99 and p999 of the {key.upper()} of the successful requests arriving in each window. "
                    + _band_note()))
    return out


def _table(rep: Report, rows: list[GroupSummary]) -> tuple[str, list[str]]:
    """The per-group table (a unit in every header, one unit per column) and its notes."""
    qs = sorted({q for g in rows for q in g.quantiles})
    lat_unit = {q: _duration_unit([v for g in rows for v in g.quantiles.get(q, (None, None, None))]) for q in qs}
    r_unit, r_scale = _rate_unit([g.rate for g in rows])
    head = ["group", "requests", f"rate ({r_unit}) [95% CI]", "burst (variance / mean)"]
    head += [f"p{q * 100:g} ({lat_unit[q][0]})" + (" [95% CI]" if rep.exact else "") for q in qs]
    head += ["errors (%)", "Little's law |L − λW| / L", "peak in flight"]
    body = []
    approx = False
    for g in rows:
        cells = [f'<td class="l">{html.escape(g.label)}</td>', f"<td>{g.count:,}</td>"]
        rate = _num(None if g.rate is None else g.rate / r_scale)
        if g.rate_ci is not None:
            rate += f" [{_num(g.rate_ci[0] / r_scale)}, {_num(g.rate_ci[1] / r_scale)}]"
        cells.append(f"<td>{html.escape(rate)}</td>")
        cells.append(f"<td>{html.escape(_num(g.dispersion))}</td>")
        for q in qs:
            est, lo, hi = g.quantiles.get(q, (None, None, None))
            scale = lat_unit[q][1]
            s = _num(None if est is None else est / scale)
            if est is not None and (lo is not None or hi is not None):
                s += f" [{_num(None if lo is None else lo / scale)}, {_num(None if hi is None else hi / scale)}]"
            cells.append(f"<td>{html.escape(s)}</td>")
        cells.append(f"<td>{'–' if g.error_rate is None else html.escape(_num(100 * g.error_rate))}</td>")
        if g.little:
            mark = "holds" if g.little["holds"] else "GAP"
            cells.append(f"<td>{100 * g.little['gap']:.2f} % ({mark})</td>")
        else:
            cells.append("<td>–</td>")
        pk = _num(g.peak_concurrency)
        if g.peak_concurrency is not None and not g.peak_exact:
            pk += " ~"
            approx = True
        cells.append(f"<td>{html.escape(pk)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    ths = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>' for i, h in enumerate(head))
    notes = ["Rates are over the whole log's span, so the groups' rates add up to the log's; the "
             "interval is the exact (Garwood) Poisson interval of the count.",
             "burst: the index of dispersion of the counts per "
             f"{_fmt_s(rep.bin)} window (1 for Poisson arrivals, above 1 bursty).",
             "Quantiles come from a QuantileSketch (1 % relative error)"
             + ("; [lo, hi] is the distribution-free 95 % confidence interval of the population quantile, "
                "from the exact order statistics." if rep.exact else
                "; this log was summarised in one streaming pass, without per-quantile intervals."),
             f"Little's law: the gap between the mean number in the system L and λW; it holds when the gap "
             f"is at most {100 * rep.little_tolerance:g} %."]
    if any(v is None for g in rows for (e, lo, hi) in g.quantiles.values() if e is not None
           for v in ((lo, hi) if rep.exact else ())):
        notes.append("–  in an interval: the sample is too small to bound that side at 95 % (a p99.9 needs "
                     "thousands of requests).")
    if approx:
        notes.append("~: the peak is the largest in-flight count at a window edge (a lower bound of the true "
                     "peak); without ~ it is the exact peak over every arrival and departure.")
    if any(g.label.startswith("other (") for g in rows):
        notes.append("other: the groups past the busiest shown, folded into one (counts, rates and the "
                     "merged sketch; no intervals).")
    table = (f'<div class="scroll"><table id="summary"><thead><tr>{ths}</tr></thead>'
             f'<tbody>{"".join(body)}</tbody></table></div>')
    return table, notes


def _sources(fp: Mapping[str, Any]) -> str:
    srcs = fp.get("sources") or []
    if not srcs:
        return "<p>a frame in memory (content hash <code>" + html.escape(str(fp.get("content_hash", "")))[:16] \
            + "</code>)</p>"
    rows = "".join(
        f'<tr><td class="l">{html.escape(str(s.get("path")))}</td><td>{int(s.get("bytes", 0)):,}</td>'
        f'<td class="l"><code title="{html.escape(str(s.get("sha256")))}">{html.escape(str(s.get("sha256"))[:16])}'
        f"…</code></td></tr>" for s in srcs[:50])
    more = f"<p class=note>and {len(srcs) - 50} more files</p>" if len(srcs) > 50 else ""
    return (f'<div class="scroll"><table id="sources"><thead><tr><th class="l">file</th><th>bytes</th>'
            f'<th class="l">SHA-256</th></tr></thead><tbody>{rows}</tbody></table></div>{more}')


def _contract(c: Mapping[str, Any]) -> str:
    if not c:
        return ""
    failed = [k for k in c.get("checks", []) if k.get("failed")]
    head = (f"<p>{int(c.get('rows_total', 0)):,} rows read, {int(c.get('rows_valid', 0)):,} kept, "
            f"{int(c.get('rows_excluded', 0)):,} excluded by the data contract.</p>")
    if not failed:
        return head
    items = []
    for k in failed:
        ex = [e for e in (k.get("examples") or []) if isinstance(e, Mapping)]
        field = str(k["name"]).split("_", 1)[-1]  # null_start → start: the value the check read
        shown = [f"row {e.get('row')}" + (f" ({k.get('column')} = {_json.dumps(e[field])})" if field in e else "")
                 for e in ex[:3]]
        hint = f" — {html.escape(str(k['hint']))}" if k.get("hint") else ""
        exs = html.escape("; ".join(shown))
        items.append(f"<li><code>{html.escape(str(k['name']))}</code> on <code>{html.escape(str(k.get('column')))}"
                     f"</code>: {int(k['failed']):,} rows{hint}{', e.g. ' + exs if exs else ''}</li>")
    return head + '<ul id="contract">' + "".join(items) + "</ul>"


def header(title: str, *, fingerprint: Mapping[str, Any], t0: float | None, t1: float | None,
           mapping_lines: Sequence[str], contract: Mapping[str, Any], command: str | None,
           extra: Sequence[tuple[str, str]] = ()) -> str:
    """The top of a qcore page: what was read, when, how it was mapped, what was excluded,
    and which qcore and command made the page (``extra``: more ``(term, html)`` pairs)."""
    import qcore

    meta: list[tuple[str, str]] = []
    if t0 is not None and t1 is not None and math.isfinite(t0) and math.isfinite(t1):
        if is_epoch(t0):
            meta.append(("time range", f"{html.escape(utc(t0))} to {html.escape(utc(t1))} "
                                       f"({html.escape(_fmt_s(t1 - t0))})"))
        else:
            meta.append(("time range", f"{html.escape(_fmt_s(t0))} to {html.escape(_fmt_s(t1))} on the log's "
                                       f"own clock (not Unix times; {html.escape(_fmt_s(t1 - t0))})"))
    meta.append(("rows", f"{int(fingerprint.get('rows', 0)):,} valid"))
    meta += list(extra)
    if mapping_lines:
        meta.append(("columns and units", "<br>".join(html.escape(x) for x in mapping_lines)))
    meta.append(("made by", f"qcore {html.escape(str(qcore.__version__))} on "
                            f"{html.escape(utc(_dt.datetime.now(tz=_dt.timezone.utc).timestamp()))}"
                 + (f": <code>{html.escape(command)}</code>" if command else "")))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    return (f"<h1>{html.escape(title)}</h1>\n<dl class=\"meta\" id=\"meta\">{dl}</dl>\n<h2>Sources</h2>\n"
            f"{_sources(fingerprint)}\n<h2>Data contract</h2>\n{_contract(contract)}")


#: hover values on the time charts: a guide line at the pointer and each series' value
#: there (the window's value for step charts, the nearest point for lines), with the
#: time in UTC
HOVER_JS = """
(()=>{const tip=document.createElement('div');tip.className='qtip';document.body.appendChild(tip);
const esc=s=>s.replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const fmt=v=>Math.abs(v)>=100?Math.round(v).toLocaleString('en-US'):(+v.toPrecision(3)).toString();
for(const svg of document.querySelectorAll('svg.plot[data-unit]')){
 const d=svg.dataset,ml=+d.ml,mt=+d.mt,pw=+d.pw,ph=+d.ph,step=d.step==='1';
 const lines=[...svg.querySelectorAll('polyline.series[data-x]')].map(p=>({name:p.dataset.name,
  col:p.getAttribute('stroke'),x:p.dataset.x.split(',').map(Number),y:p.dataset.y.split(',').map(Number)}));
 if(!lines.length)continue;
 const g=document.createElementNS('http://www.w3.org/2000/svg','line');
 g.setAttribute('y1',mt);g.setAttribute('y2',mt+ph);g.setAttribute('stroke','#888');g.style.display='none';
 svg.appendChild(g);
 const hide=()=>{tip.style.display='none';g.style.display='none';};
 svg.addEventListener('mousemove',e=>{const r=svg.getBoundingClientRect();
  const px=(e.clientX-r.left)*svg.viewBox.baseVal.width/r.width;
  if(px<ml||px>ml+pw){hide();return;}
  g.setAttribute('x1',px);g.setAttribute('x2',px);g.style.display='';
  const xv=+d.xlo+(px-ml)/pw*(d.xhi-d.xlo);const rows=[];
  for(const l of lines){let i=0;
   if(step){while(i+1<l.x.length&&l.x[i+1]<=xv)i++;}
   else{for(let j=1;j<l.x.length;j++)if(Math.abs(l.x[j]-xv)<Math.abs(l.x[i]-xv))i=j;}
   rows.push('<span style="color:'+l.col+'">&#9632;</span> '+esc(l.name)+': '
    +(isNaN(l.y[i])?'–':fmt(l.y[i])+' '+esc(d.unit)));}
  const head=d.t0?new Date((+d.t0+xv)*1000).toISOString().replace('T',' ').slice(0,19)+' UTC'
   :fmt(xv)+' s after the first request';
  tip.innerHTML='<b>'+head+'</b><br>'+rows.join('<br>');tip.style.display='block';
  tip.style.left=(e.pageX+14)+'px';tip.style.top=(e.pageY+12)+'px';});
 svg.addEventListener('mouseleave',hide);}})();
"""


def page(title: str, body: str) -> str:
    """A whole self-contained page (with the hover script when a chart takes it)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{PAGE_CSS}</style></head><body>
{body}
{f"<script>{HOVER_JS}</script>" if 'data-unit="' in body else ""}
</body></html>
"""


def render_html(rep: Report, *, top: int = 20, command: str | None = None) -> str:
    """The report as one self-contained page (see the module's notes): the table shows
    the ``top`` busiest groups and the rest folded into ``other``; the plots the nine
    busiest and the rest folded."""
    show, other = shown_groups(rep, top)
    rows = [*show, *([other] if other is not None else []), rep.overall]
    ranked = sorted(rep.groups, key=lambda g: (-g.count, g.label))
    k = min(len(show), 9)
    plotted = ranked[:k] if ranked else [rep.overall]
    if len(ranked) > k:
        plotted.append(_other(ranked[k:], rep.t1 - rep.t0))
    colors = {g.label: (_GREY if g.label.startswith("other (") else _COLORS[i % len(_COLORS)])
              for i, g in enumerate(plotted)}
    table, notes = _table(rep, rows)
    plots = "\n".join(f"<figure>{p}" + (f'<figcaption class="note">{html.escape(c)}</figcaption>' if c else "")
                      + "</figure>" for p, c0 in _plots(rep, plotted, colors)
                      for c in [c0 if 'class="empty"' not in p else ""]) + _group_latency(rep, plotted)
    grouped = ", ".join(rep.group_by) or "nothing"
    extra = [("grouped by", html.escape(grouped) + (f" ({len(rep.groups):,} groups; the busiest {len(show)} shown)"
                                                    if other is not None else ""))]
    meta = html.escape(_json.dumps({"data": rep.fingerprint, "contract": rep.contract, "mapping": rep.mapping},
                                   indent=1))
    body = (header(rep.title, fingerprint=rep.fingerprint, t0=rep.t0, t1=rep.t1, mapping_lines=rep.mapping_lines(),
                   contract=rep.contract, command=command, extra=extra)
            + f"\n<h2>Per group</h2>\n{table}\n<ul class=\"note\">"
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
            + f"\n<h2>Plots</h2>\n{plots}\n"
            + f'<details><summary>Fingerprint, contract and mapping (JSON)</summary><pre id="fingerprint">{meta}'
              "</pre></details>")
    return page(rep.title, body)
