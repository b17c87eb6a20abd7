"""The ``qcore prom`` subcommand (registered by :mod:`qcore.cli`): questions answered from a
Prometheus server's metrics (:mod:`qcore.prom`), no logs needed.

``qcore prom --prometheus URL --histogram NAME [--quantile Q]... [--slo S]...`` gives the
bucket bounds of the quantiles and the attainment brackets; ``--counter NAME`` the arrival
rate with its Garwood interval; ``--gauge NAME --histogram NAME`` Little's law;
``--preset vllm`` the per-engine vLLM summary. The range is ``--last SECONDS`` before now
or ``--start``/``--end`` (Unix seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from typing import Any

from qcore import prom

__all__ = ["add_report_args", "check_decisions", "cmd_report_prometheus", "register"]


def register(sub: Any, fmt: Any, epilog: str) -> None:
    """Add ``prom`` to the ``qcore`` parser's subparsers."""
    p = sub.add_parser(
        "prom", help="quantile bounds, SLO brackets, rates and Little's law from Prometheus",
        formatter_class=fmt, epilog=epilog,
        description=("Read classic histograms, counters and gauges from a Prometheus server over "
                     "a time range: quantiles as the bucket edges that contain them (with "
                     "Prometheus' interpolation beside), SLO attainment brackets at any "
                     "threshold, request rates with Garwood intervals, Little's law from an "
                     "in-flight gauge, or everything per vLLM engine (--preset vllm)."))
    p.add_argument("--prometheus", required=True, metavar="URL", help="server base URL")
    p.add_argument("--last", type=float, default=3600.0, metavar="SECONDS",
                   help="range: this many seconds before --end (default 3600)")
    p.add_argument("--start", type=float, help="range start, Unix seconds (default: end − last)")
    p.add_argument("--end", type=float, help="range end, Unix seconds (default: now)")
    p.add_argument("--matchers", default="", help='PromQL label matchers, e.g. \'job="api"\'')
    p.add_argument("--preset", choices=["vllm"], help="per-engine summary under vLLM's names")
    p.add_argument("--histogram", metavar="NAME",
                   help="histogram: classic (name without _bucket) or native, whichever the server has")
    p.add_argument("--quantile", type=float, action="append", metavar="Q",
                   help="quantile of --histogram; repeatable (default 0.5, 0.9, 0.99)")
    p.add_argument("--slo", type=float, action="append", metavar="SECONDS",
                   help="attainment threshold for --histogram; repeatable")
    p.add_argument("--counter", metavar="NAME", help="request counter (as exposed, ..._total)")
    p.add_argument("--gauge", metavar="NAME", help="in-flight gauge: Little's law with --histogram")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_prom)


def add_report_args(r: Any) -> None:
    """The ``--prometheus`` options of ``qcore report`` (its --bin, --html, --title and
    --format apply too)."""
    g = r.add_argument_group("from Prometheus instead of logs")
    g.add_argument("--prometheus", metavar="URL", help="read the metrics of this server")
    g.add_argument("--query", action="append", metavar="SELECTOR",
                   help="a histogram, classic or native: name or name{matchers}; repeatable")
    g.add_argument("--preset", choices=["vllm"], help="per-engine summary under vLLM's names")
    g.add_argument("--matchers", default="", help="with --preset: PromQL label matchers")
    g.add_argument("--quantile", type=float, action="append", metavar="Q",
                   help="quantile; repeatable (default 0.5, 0.9, 0.99)")
    g.add_argument("--slo", type=float, action="append", metavar="SECONDS",
                   help="attainment threshold of each --query; repeatable")
    g.add_argument("--last", type=float, default=3600.0, metavar="SECONDS",
                   help="range: this many seconds before --end (default 3600)")
    g.add_argument("--start", type=float, help="range start, Unix seconds (default: end − last)")
    g.add_argument("--end", type=float, help="range end, Unix seconds (default: now)")
    g.add_argument("--confidence", type=float, default=0.95)
    g.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")


def _plain(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: _plain(getattr(o, f.name)) for f in dataclasses.fields(o)
                if not f.name.startswith("_")}
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    return o


def _fmt(x: float) -> str:
    return "∞" if x == math.inf else ("-∞" if x == -math.inf else f"{x:.6g}")


def _quantile_lines(name: str, qs: dict[float, Any]) -> list[str]:
    def est(r: Any) -> str:
        if isinstance(r, prom.NativeQuantile):
            return f"estimate {_fmt(r.estimate)}"
        return f"Prometheus' interpolation {_fmt(r.prometheus)}"

    def interval(r: Any) -> str:  # a classic bucket is (lower, upper]
        left = "[" if isinstance(r, prom.NativeQuantile) else "("
        return f"{left}{_fmt(r.lower)}, {_fmt(r.upper)}]"

    return [
        f"  {name} p{100 * q:g}: in {interval(r)} (width {_fmt(r.width)}; "
        f"{est(r)}; {100 * r.confidence:g}% CI [{_fmt(r.ci[0])}, {_fmt(r.ci[1])}]; n={r.count})"
        for q, r in qs.items()
    ]


def _little_line(name: str, r: prom.MetricsLittle) -> str:
    g = r.gauge
    return (f"  Little's law {name}: L={_fmt(r.L)} vs λW={_fmt(r.lambda_w)} (gap {r.gap:+.3g}; "
            f"paired discrepancy {g.discrepancy:+.3g} in [{g.discrepancy_ci[0]:+.3g}, "
            f"{g.discrepancy_ci[1]:+.3g}]); {'holds' if r.holds else 'does not hold'} "
            f"within ±{r.tolerance:g}")


def cmd_prom(args: argparse.Namespace) -> int:
    end = time.time() if args.end is None else args.end
    start = end - args.last if args.start is None else args.start
    if not (args.preset or args.histogram or args.counter):
        raise ValueError("give --preset vllm, --histogram NAME or --counter NAME")
    if args.gauge and not args.histogram:
        raise ValueError("--gauge needs --histogram (the latency histogram for λ·W)")
    client = prom.PrometheusClient(args.prometheus, timeout=args.timeout)
    qs = args.quantile or [0.5, 0.9, 0.99]
    out: dict[str, Any] = {"prometheus": args.prometheus, "start": start, "end": end}
    lines = [f"{args.prometheus} from {start:.3f} to {end:.3f} ({end - start:g} s)"]
    if args.histogram:
        h: Any
        classic = bool(client.series([prom._selector(f"{args.histogram}_bucket", args.matchers)],
                                     start, end))
        if classic:
            h = prom.classic_histogram(client, args.histogram, start, end, matchers=args.matchers)
        elif args.gauge:
            raise ValueError(f"--gauge needs a classic histogram (_sum, _count); {args.histogram} "
                             "has no _bucket series")
        else:
            h = prom.native_histogram(client, args.histogram, start, end, matchers=args.matchers)
        qres = {q: h.quantile(q, args.confidence) for q in qs}
        att = [h.attainment(s) for s in args.slo or []]
        out["histogram"] = {"metric": h.metric, "kind": "classic" if classic else "native",
                            "count": h.count, "sum": h.sum,
                            "series": h.series, "resets": h.resets,
                            "quantiles": {str(q): _plain(r) for q, r in qres.items()},
                            "attainment": _plain(att)}
        lines.append(f"{h.metric} ({'classic' if classic else 'native'} histogram): {h.count} "
                     f"observations, {h.series} series, {h.resets} reset(s)")
        lines += _quantile_lines(h.metric, qres)
        lines += [f"  ≤ {a.threshold:g} s: in [{a.lower:.4%}, {a.upper:.4%}] (width {a.width:.4%}"
                  f"{', exact' if a.exact else f', buckets {_fmt(a.edges[0])}–{_fmt(a.edges[1])}'})"
                  for a in att]
    if args.gauge:
        lit = prom.littles_law_metrics(client, args.gauge, args.histogram, start, end,
                                       matchers=args.matchers, confidence=args.confidence)
        out["little"] = _plain(lit)
        lines.append(_little_line(args.gauge, lit))
    if args.counter:
        c = prom.counter_rate(client, args.counter, start, end, matchers=args.matchers,
                              confidence=args.confidence)
        out["counter"] = _plain(c)
        lines.append(f"{c.metric}: {c.increase} over {c.exposure:g} s = {c.rate:.6g}/s "
                     f"({100 * c.confidence:g}% CI {c.rate_ci[0]:.6g}–{c.rate_ci[1]:.6g}; "
                     f"{c.resets} reset(s))")
    if args.preset == "vllm":
        engines = prom.vllm_summary(client, start, end, matchers=args.matchers, quantiles=qs,
                                    confidence=args.confidence)
        out["engines"] = _plain(engines)
        for e in engines:
            lines.append("engine " + ", ".join(f"{k}={v}" for k, v in e.labels.items()))
            for role, res in e.latency.items():
                lines += _quantile_lines(role, dict(res))
            if e.kv_cache_usage is not None:
                lines.append(f"  KV cache usage: mean {e.kv_cache_usage[0]:.1%}, "
                             f"max {e.kv_cache_usage[1]:.1%}")
            if e.requests is not None:
                r = e.requests
                lines.append(f"  requests: {r.rate:.6g}/s ({r.rate_ci[0]:.6g}–{r.rate_ci[1]:.6g})")
            lines += [_little_line(g, m) for g, m in e.little.items()]
            lines += [f"  not available: {k}: {v}" for k, v in e.missing.items()]
    if args.format == "json":
        from qcore._json import dumps

        sys.stdout.write(dumps(out, indent=1) + "\n")
    else:
        print("\n".join(lines))
    return 0


def check_decisions(args: argparse.Namespace, cfg: dict[str, Any],
                    slos: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    """``qcore check --prometheus``: the burn-rate decisions of the rules file's ``[[slo]]``
    declarations from the server's metrics, and what was read (for the output)."""
    from qcore.rules.model import RuleError
    from qcore.rules.prom_source import evaluate_slos_prometheus

    if cfg.get("rule") or cfg.get("rules"):
        raise RuleError("rules: [[rule]] tables need request logs; with --prometheus only [[slo]] "
                        "declarations (each with a [slo.prometheus] table) are evaluated")
    if not slos:
        raise RuleError("rules: no [[slo]] declaration to evaluate from Prometheus")
    if not (math.isfinite(args.lookback) and args.lookback > 0):
        raise ValueError(f"--lookback must be a positive number of seconds, got {args.lookback}")
    now = time.time() if args.now is None else float(args.now)
    client = prom.PrometheusClient(args.prometheus, timeout=args.timeout)
    decisions = evaluate_slos_prometheus(client, slos, now=now, lookback=args.lookback)
    return decisions, {"url": client.url, "now": now, "slos": [s["id"] for s in slos]}


# ---- qcore report --prometheus ------------------------------------------------------------


def _parse_selector(sel: str) -> tuple[str, str]:
    """``name{matchers}`` → (name without a ``_bucket`` suffix, matchers)."""
    name, brace, rest = sel.strip().partition("{")
    name = name.strip()
    if not name:
        raise ValueError(f"--query: {sel!r} has no metric name")
    if brace and not rest.rstrip().endswith("}"):
        raise ValueError(f"--query: {sel!r} has an unclosed label matcher")
    if name.endswith("_bucket"):
        name = name[: -len("_bucket")]
    return name, ("{" + rest) if brace else ""


def _bounds(r: Any) -> list[float]:
    return [r.lower, r.upper]


def _bracket(h: Any, threshold: float) -> list[float] | None:
    if not h.count:
        return None
    a = h.attainment(threshold)
    return [a.lower, a.upper]


def _histogram_doc(client: prom.PrometheusClient, sel: str, start: float, end: float,
                   qs: list[float], slos: list[float], window: float,
                   confidence: float) -> dict[str, Any]:
    """One histogram (classic or native, whichever the server has) over the range and per
    window: quantile bounds, attainment brackets."""
    name, matchers = _parse_selector(sel)
    classic = bool(client.series([f"{name}_bucket{matchers}"], start, end))
    h: Any
    if classic:
        h = prom.classic_histogram(client, name, start, end, matchers=matchers)
        wins: list[Any] = prom.classic_histogram_windows(client, name, start, end, window,
                                                         matchers=matchers)
    else:
        h = prom.native_histogram(client, name, start, end, matchers=matchers)
        wins = prom.native_histogram_windows(client, name, start, end, window, matchers=matchers)
    if h.count == 0:
        raise ValueError(f"--query: {sel} has no observations between {start:.3f} and {end:.3f}")
    doc: dict[str, Any] = {
        "query": sel, "metric": name, "matchers": matchers,
        "kind": "classic" if classic else "native", "count": h.count, "sum": h.sum,
        "mean": h.sum / h.count, "series": h.series, "resets": h.resets, "first": h.first,
        "last": h.last,
        "quantiles": {str(q): _plain(h.quantile(q, confidence)) for q in qs},
        "attainment": [_plain(h.attainment(s)) for s in slos],
        "window": window,
        "windows": [{"start": w.start, "end": w.end, "count": w.count,
                     "quantiles": {str(q): _bounds(w.quantile(q, confidence)) if w.count else None
                                   for q in qs},
                     "attainment": {str(s): _bracket(w, s) for s in slos}}
                    for w in wins],
    }
    if classic:
        doc["edges"] = h.edges.tolist()
    else:
        doc["schema"] = h.schema
    return doc


def _vllm_doc(client: prom.PrometheusClient, start: float, end: float, matchers: str,
              qs: list[float], window: float, confidence: float) -> list[dict[str, Any]]:
    out = []
    for e in prom.vllm_summary(client, start, end, matchers=matchers, quantiles=qs,
                               confidence=confidence):
        d = _plain(e)
        d["latency"] = {role: {str(q): _plain(r) for q, r in res.items()}
                        for role, res in e.latency.items()}
        sel = prom._matchers(dict(e.labels), matchers)
        d["windows"] = {}
        for role in ("ttft", "tpot"):
            if role in e.latency:
                wins = prom.classic_histogram_windows(client, e.names[role], start, end, window,
                                                      matchers=sel)
                d["windows"][role] = [
                    {"start": w.start, "end": w.end, "count": w.count,
                     "quantiles": {str(q): _bounds(w.quantile(q, confidence)) if w.count else None
                                   for q in qs}} for w in wins]
        out.append(d)
    return out


def _report_lines(doc: dict[str, Any]) -> list[str]:
    lines = [f"{doc['title']}: {doc['prometheus']} from {doc['start']:.3f} to {doc['end']:.3f} "
             f"({doc['end'] - doc['start']:g} s; windows of {doc['window']:g} s)"]
    for h in doc["histograms"]:
        lines.append(f"{h['query']} ({h['kind']} histogram): {h['count']} observations, "
                     f"mean {_fmt(h['mean'])} s, {h['series']} series, {h['resets']} reset(s)")
        for q, r in h["quantiles"].items():
            est = (f"Prometheus' interpolation {_fmt(r['prometheus'])}" if "prometheus" in r
                   else f"estimate {_fmt(r['estimate'])}")
            left = "(" if h["kind"] == "classic" else "["
            lines.append(f"  p{100 * float(q):g}: in {left}{_fmt(r['lower'])}, {_fmt(r['upper'])}] "
                         f"(width {_fmt(r['width'])}; {est}; {100 * r['confidence']:g}% CI "
                         f"[{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}])")
        for a in h["attainment"]:
            lines.append(f"  ≤ {a['threshold']:g} s: in [{a['lower']:.4%}, {a['upper']:.4%}] "
                         f"(width {a['width']:.4%}{', exact' if a['exact'] else ''})")
        busy = [w for w in h["windows"] if w["count"]]
        if busy and h["quantiles"]:
            qk = max(h["quantiles"], key=float)
            worst = max(busy, key=lambda w: w["quantiles"][qk][0])
            lines.append(f"  worst window for p{100 * float(qk):g}: from {worst['start']:.3f}, in "
                         f"[{_fmt(worst['quantiles'][qk][0])}, {_fmt(worst['quantiles'][qk][1])}] "
                         f"({worst['count']} observations; {len(busy)} of {len(h['windows'])} "
                         "windows with observations)")
    for e in doc.get("engines", []):
        lines.append("engine " + ", ".join(f"{k}={v}" for k, v in e["labels"].items()))
        for role, res in e["latency"].items():
            for q, r in res.items():
                lines.append(f"  {role} p{100 * float(q):g}: in ({_fmt(r['lower'])}, "
                             f"{_fmt(r['upper'])}] (Prometheus' interpolation "
                             f"{_fmt(r['prometheus'])}; n={r['count']})")
        if e["kv_cache_usage"] is not None:
            lines.append(f"  KV cache usage: mean {e['kv_cache_usage'][0]:.1%}, "
                         f"max {e['kv_cache_usage'][1]:.1%}")
        if e["requests"] is not None:
            r = e["requests"]
            lines.append(f"  requests: {r['rate']:.6g}/s ({r['rate_ci'][0]:.6g}–{r['rate_ci'][1]:.6g})")
        for g, m in e["little"].items():
            lines.append(f"  Little's law {g}: L={_fmt(m['L'])} vs λW={_fmt(m['lambda_w'])}: "
                         f"{'holds' if m['holds'] else 'does not hold'} within ±{m['tolerance']:g}")
        lines += [f"  not available: {k}: {v}" for k, v in e["missing"].items()]
    return lines


def _time_unit(span: float) -> tuple[str, float]:
    """The x axis' unit for a range of ``span`` seconds."""
    if span <= 600.0:
        return "seconds", 1.0
    return ("minutes", 60.0) if span <= 36_000.0 else ("hours", 3600.0)


def _window_series(wins: list[dict[str, Any]], qs: list[str], t0: float, scale: float
                   ) -> list[tuple[str, Any, Any]]:
    import numpy as np

    out = []
    for q in qs:
        busy = [w for w in wins if w["quantiles"].get(q)]
        if not busy:
            continue
        x = np.array([(w["start"] - t0) / scale for w in busy])
        for side, k in (("upper", 1), ("lower", 0)):
            out.append((f"p{100 * float(q):g} {side}", x,
                        np.array([w["quantiles"][q][k] for w in busy], dtype=float)))
    return out


def _td(v: Any) -> str:
    import html

    if isinstance(v, float):
        s = "∞" if v == math.inf else "-∞" if v == -math.inf else f"{v:.4g}"
    else:
        s = "-" if v is None else str(v)
    return f"<td>{html.escape(s)}</td>"


def _table(cls: str, head: list[str], rows: list[list[Any]]) -> str:
    import html

    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(_td(v) for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>'


def _quantile_rows(res: dict[str, Any]) -> list[list[Any]]:
    return [[f"p{100 * float(q):g}", r["lower"], r["upper"], r["width"],
             r.get("prometheus", r.get("estimate")), r["ci"][0], r["ci"][1], r["count"]]
            for q, r in res.items()]


_QHEAD = ["quantile", "lower (s)", "upper (s)", "width (s)", "interpolation / estimate",
          "CI lower", "CI upper", "n"]


def _render_html(doc: dict[str, Any]) -> str:
    import html

    import qcore
    from qcore._json import dumps
    from qcore.report import svg_chart

    t0 = doc["start"]
    unit, scale = _time_unit(doc["end"] - t0)
    parts = []
    for i, h in enumerate(doc["histograms"]):
        parts.append(f'<section class="histogram" id="histogram-{i}"><h2>{html.escape(h["query"])}'
                     f' <small>({h["kind"]} histogram)</small></h2>')
        parts.append(f"<p>{h['count']:,} observations, mean {_fmt(h['mean'])} s, {h['series']} "
                     f"series, {h['resets']} counter reset(s). The true quantile lies between "
                     "lower and upper (its bucket); the interval is the distribution-free CI of "
                     "the population quantile.</p>")
        parts.append(_table("quantiles", _QHEAD, _quantile_rows(h["quantiles"])))
        if h["attainment"]:
            parts.append(_table("attainment", ["threshold (s)", "lower", "upper", "width", "exact"],
                                [[a["threshold"], a["lower"], a["upper"], a["width"],
                                  "yes" if a["exact"] else "no"] for a in h["attainment"]]))
        parts.append("<figure>" + svg_chart(
            _window_series(h["windows"], list(h["quantiles"]), t0, scale),
            title=f"Quantile bounds per {h['window']:g} s window", xlabel=f"{unit} since start",
            ylabel="seconds", step=True, width=1000, css_class="plot plot-quantiles") + "</figure>")
        parts.append("</section>")
    for i, e in enumerate(doc.get("engines", [])):
        label = ", ".join(f"{k}={v}" for k, v in e["labels"].items())
        parts.append(f'<section class="engine" id="engine-{i}"><h2>vLLM engine '
                     f"{html.escape(label)}</h2>")
        for role, res in e["latency"].items():
            parts.append(f"<h3>{html.escape(role)} ({html.escape(e['names'][role])})</h3>")
            parts.append(_table("quantiles", _QHEAD, _quantile_rows(res)))
        facts = []
        if e["kv_cache_usage"] is not None:
            facts.append(f"KV cache usage: mean {e['kv_cache_usage'][0]:.1%}, max "
                         f"{e['kv_cache_usage'][1]:.1%}")
        if e["requests"] is not None:
            r = e["requests"]
            facts.append(f"requests: {r['rate']:.4g}/s ({100 * r['confidence']:g}% CI "
                         f"{r['rate_ci'][0]:.4g}–{r['rate_ci'][1]:.4g})")
        for g, m in e["little"].items():
            facts.append(f"Little's law ({g}): L = {_fmt(m['L'])} vs λW = {_fmt(m['lambda_w'])}, "
                         f"{'holds' if m['holds'] else 'does not hold'} within ±{m['tolerance']:g}")
        facts += [f"not available: {k}: {v}" for k, v in e["missing"].items()]
        parts.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>")
        for role, wins in e["windows"].items():
            parts.append("<figure>" + svg_chart(
                _window_series(wins, list(e["latency"][role]), t0, scale),
                title=f"{role}: quantile bounds per {doc['window']:g} s window",
                xlabel=f"{unit} since start", ylabel="seconds", step=True, width=1000,
                css_class=f"plot plot-{role}") + "</figure>")
        parts.append("</section>")
    meta = html.escape(dumps(doc, indent=1))
    title = html.escape(doc["title"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,-apple-system,sans-serif;margin:24px;color:#222;max-width:1360px}}
table{{border-collapse:collapse;font-size:12px;margin:8px 0}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#f3f3f3}}
figure{{margin:8px 0}}svg{{max-width:100%;height:auto}}
pre{{font-size:11px;background:#f7f7f7;padding:8px;max-height:300px;overflow:auto}}
</style></head><body>
<h1>{title}</h1>
<p>From the metrics of {html.escape(doc["prometheus"])}, {doc["end"] - doc["start"]:g} s ending at
Unix time {doc["end"]:.3f}; windows of {doc["window"]:g} s. Counter increases from raw samples
(resets handled, no extrapolation).</p>
{"".join(parts)}
<h2>Data</h2>
<pre id="data">{meta}</pre>
<p>qcore {html.escape(str(qcore.__version__))}</p>
</body></html>
"""


def cmd_report_prometheus(args: argparse.Namespace) -> int:
    """``qcore report --prometheus URL --query SELECTOR... | --preset vllm``."""
    from pathlib import Path

    if not (args.query or args.preset):
        raise ValueError("--prometheus needs --query SELECTOR (repeatable) or --preset vllm")
    if args.group_by:
        raise ValueError("--group-by applies to logs; select Prometheus series with --query "
                         "'name{label=\"value\"}' or --matchers")
    end = time.time() if args.end is None else args.end
    start = end - args.last if args.start is None else args.start
    if not (math.isfinite(start) and math.isfinite(end) and end > start):
        raise ValueError(f"the range must have end > start, got {start}, {end}")
    window = args.bin if args.bin is not None else (end - start) / 30.0
    qs = args.quantile or [0.5, 0.9, 0.99]
    client = prom.PrometheusClient(args.prometheus, timeout=args.timeout)
    doc: dict[str, Any] = {"title": args.title or "qcore report (Prometheus)",
                           "prometheus": client.url, "start": start, "end": end,
                           "window": window, "histograms": []}
    for sel in args.query or []:
        doc["histograms"].append(_histogram_doc(client, sel, start, end, qs, args.slo or [],
                                                window, args.confidence))
    if args.preset == "vllm":
        doc["engines"] = _vllm_doc(client, start, end, args.matchers, qs, window,
                                   args.confidence)
    if args.html:
        Path(args.html).write_text(_render_html(doc), encoding="utf-8")
    if args.format == "json":
        from qcore._json import dumps

        sys.stdout.write(dumps({**doc, "html": str(args.html) if args.html else None},
                               indent=1) + "\n")
    else:
        print("\n".join(_report_lines(doc)))
        if args.html:
            print(f"\nHTML report: {args.html}")
    return 0
