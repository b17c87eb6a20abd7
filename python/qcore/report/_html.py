"""The self-contained HTML report: inline SVG plots, no script, no external resource."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from qcore import _json
from qcore.report._model import Report, _fmt_s

__all__ = ["render_html", "svg_chart"]

# --------------------------------------------------------------------------------------
# HTML and SVG
# --------------------------------------------------------------------------------------

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


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


def _finite_series(series: list[tuple[str, np.ndarray, np.ndarray]],
                   logx: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The finite points of each series (positive x, as log10, when ``logx``); empty
    series dropped."""
    clean = []
    for name, x0, y0 in series:
        x = np.asarray(x0, dtype=np.float64)
        y = np.asarray(y0, dtype=np.float64)
        ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if logx else True)
        x, y = x[ok], y[ok]
        if x.size:
            clean.append((name, np.log10(x) if logx else x, y))
    return clean


def _x_ticks(x_lo: float, x_hi: float, logx: bool,
             xfmt: Callable[[float], str] | None) -> list[tuple[float, str]]:
    """Tick positions (in plot units: log10 for ``logx``) and their labels."""
    fmt = xfmt or (lambda v: f"{v:g}")
    if not logx:
        return [(v, fmt(v)) for v in _ticks(x_lo, x_hi, 5)]
    xt = [float(v) for v in range(math.floor(x_lo), math.ceil(x_hi) + 1) if x_lo - 1e-9 <= v <= x_hi + 1e-9]
    if len(xt) < 2:
        xt = _ticks(x_lo, x_hi, 4)
    return [(v, fmt(10 ** v)) for v in xt]


def svg_chart(series: list[tuple[str, np.ndarray, np.ndarray]], *, title: str, xlabel: str, ylabel: str,
              logx: bool = False, xfmt: Callable[[float], str] | None = None, width: int = 640,
              height: int = 300, step: bool = False, css_class: str = "plot") -> str:
    """A line chart as an inline ``<svg>`` element (no script)."""
    W, H, ml, mr, mt, mb = width, height, 64, 16, 28, 44
    pw, ph = W - ml - mr, H - mt - mb
    clean = _finite_series(series, logx)
    xs_all = [x for _, x, _ in clean]
    ys_all = [y for _, _, y in clean]
    parts = [(f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
              f'viewBox="0 0 {W} {H}" role="img" aria-label="{html.escape(title)}">'),
             f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    if not clean:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" font-size="12">no data</text></svg>')
        return "".join(parts)
    x_lo = float(min(a.min() for a in xs_all))
    x_hi = float(max(a.max() for a in xs_all))
    y_lo = min(0.0, float(min(a.min() for a in ys_all)))
    y_hi = float(max(a.max() for a in ys_all))
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    y_hi *= 1.05

    def sx(v: np.ndarray | float) -> Any:
        return ml + (np.asarray(v) - x_lo) / (x_hi - x_lo) * pw

    def sy(v: np.ndarray | float) -> Any:
        return mt + ph - (np.asarray(v) - y_lo) / (y_hi - y_lo) * ph

    parts.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for v, s in _x_ticks(x_lo, x_hi, logx, xfmt):
        tx = float(sx(v))
        parts.append(f'<line x1="{tx:.1f}" y1="{mt + ph}" x2="{tx:.1f}" y2="{mt + ph + 4}" stroke="#555"/>'
                     f'<text x="{tx:.1f}" y="{mt + ph + 16}" text-anchor="middle" font-size="10">{html.escape(s)}</text>')
    for v in _ticks(y_lo, y_hi, 4):
        ty = float(sy(v))
        parts.append(f'<line x1="{ml - 4}" y1="{ty:.1f}" x2="{ml + pw}" y2="{ty:.1f}" stroke="#eee"/>'
                     f'<text x="{ml - 6}" y="{ty + 3:.1f}" text-anchor="end" font-size="10">{v:g}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{H - 6}" text-anchor="middle" font-size="11">{html.escape(xlabel)}</text>')
    parts.append(f'<text transform="translate(14,{mt + ph / 2}) rotate(-90)" text-anchor="middle" '
                 f'font-size="11">{html.escape(ylabel)}</text>')
    for i, (name, x, y) in enumerate(clean):
        if x.size > 1500:  # thin for size; keep the extremes of each bucket
            idx = np.unique(np.concatenate([np.linspace(0, x.size - 1, 1500).astype(np.int64),
                                            [int(np.argmax(y)), int(np.argmin(y))]]))
            x, y = x[idx], y[idx]
        px: np.ndarray = np.asarray(sx(x), dtype=np.float64)
        py: np.ndarray = np.asarray(sy(y), dtype=np.float64)
        if step and px.size > 1:
            pxs = np.repeat(px, 2)[1:]
            pys = np.repeat(py, 2)[:-1]
            px, py = pxs, pys
        pts = " ".join(f"{u:.1f},{v:.1f}" for u, v in zip(px, py, strict=True))
        col = _COLORS[i % len(_COLORS)]
        parts.append(f'<polyline class="series" data-name="{html.escape(name)}" fill="none" stroke="{col}" '
                     f'stroke-width="1.4" points="{pts}"/>')
        if len(clean) > 1:
            ly = mt + 12 + 14 * i
            parts.append(f'<rect x="{ml + pw - 150}" y="{ly - 8}" width="10" height="10" fill="{col}"/>'
                         f'<text x="{ml + pw - 136}" y="{ly + 1}" font-size="10">{html.escape(name[:24])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _plots(rep: Report) -> list[str]:
    show = rep.groups[:8] if rep.groups else [rep.overall]
    cdf_series = []
    qs = np.concatenate([np.linspace(0.0, 0.99, 199), [0.995, 0.999, 0.9995, 0.9999, 1.0]])
    for g in show:
        if g.sketch is not None and g.sketch.count > 0:
            x = np.asarray(g.sketch.quantile(list(qs)), dtype=np.float64)
            cdf_series.append((g.label, x, qs))
    bin_ = rep.bin
    rate_series: list[tuple[str, np.ndarray, np.ndarray]] = []
    for g in show:
        c = g.counts
        if c.size:
            xh = ((np.arange(c.size) + 0.5) * bin_ / 3600.0).astype(np.float64)
            rate_series.append((g.label, xh, c / bin_))
    inflight_series: list[tuple[str, np.ndarray, np.ndarray]] = []
    for g in show:
        if g.inflight.size and g.inflight.any():
            inflight_series.append((g.label, (rep.grid - rep.t0) / 3600.0, g.inflight))
    if not inflight_series and rep.overall.inflight.any():  # streaming: the whole log only
        inflight_series.append(("all", (rep.grid - rep.t0) / 3600.0, rep.overall.inflight))
    burst_series: list[tuple[str, np.ndarray, np.ndarray]] = []
    for g in show:
        if g.burstiness:
            ws = np.array([p[0] for p in g.burstiness])
            ds = np.array([p[1] for p in g.burstiness])
            burst_series.append((g.label, ws, ds))
    if burst_series:
        wall = np.array(sorted({float(v) for _, x, _ in burst_series for v in x}))
        burst_series.append(("Poisson", wall, np.ones_like(wall)))
    return [
        svg_chart(cdf_series, title="Latency CDF (log axis)", xlabel="latency", ylabel="fraction <= x",
                  logx=True, xfmt=_fmt_s, css_class="plot plot-cdf"),
        svg_chart(rate_series, title=f"Arrival rate over time (per {_fmt_s(bin_)} window)",
                  xlabel="hours since first request", ylabel="requests / s", step=True, css_class="plot plot-rate"),
        svg_chart(inflight_series, title=f"In-flight concurrency (at {_fmt_s(bin_)} window edges)",
                  xlabel="hours since first request",
                  ylabel="requests in flight", css_class="plot plot-inflight"),
        svg_chart(burst_series, title="Burstiness curve (index of dispersion by window)", xlabel="window",
                  ylabel="variance / mean of counts", logx=True, xfmt=_fmt_s, css_class="plot plot-burstiness"),
    ]


def render_html(rep: Report) -> str:
    tbl = rep.table()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in tbl.columns)
    body = []
    for r in tbl.iter_rows():
        cells = []
        for v in r:
            if isinstance(v, float):
                s = f"{v:.4g}" if math.isfinite(v) else "-"
            elif v is None:
                s = "-"
            else:
                s = str(v)
            cells.append(f"<td>{html.escape(s)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    plots = "\n".join(f'<figure>{p}</figure>' for p in _plots(rep))
    meta = html.escape(_json.dumps({"data": rep.fingerprint, "contract": rep.contract, "mapping": rep.mapping},
                                   indent=1))
    import qcore

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(rep.title)}</title>
<style>
body{{font-family:system-ui,-apple-system,sans-serif;margin:24px;color:#222}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
th{{background:#f3f3f3}}figure{{display:inline-block;margin:8px}}pre{{font-size:11px;background:#f7f7f7;padding:8px}}
</style></head><body>
<h1>{html.escape(rep.title)}</h1>
<p>{rep.overall.count:,} requests from {html.escape(_fmt_s(0))} to {html.escape(_fmt_s(rep.t1 - rep.t0))}
(span), grouped by {html.escape(", ".join(rep.group_by) or "nothing")}; windows of {html.escape(_fmt_s(rep.bin))}.
Quantiles from a QuantileSketch (relative error 1%){"; intervals are distribution-free 95% CIs" if rep.exact else ""}.
Little's law holds when |L − λW| / L ≤ {rep.little_tolerance:g}.</p>
<p id="mapping">{"<br>".join(html.escape(x) for x in rep.mapping_lines())}</p>
<h2>Per group</h2>
<table id="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<h2>Plots</h2>
{plots}
<h2>Data</h2>
<pre id="fingerprint">{meta}</pre>
<p>qcore {html.escape(str(qcore.__version__))}</p>
</body></html>
"""

