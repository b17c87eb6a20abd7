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

__all__ = ["register"]


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
    p.add_argument("--histogram", metavar="NAME", help="classic histogram (name without _bucket)")
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


def _quantile_lines(name: str, qs: dict[float, prom.HistogramQuantile]) -> list[str]:
    return [
        f"  {name} p{100 * q:g}: in ({_fmt(r.lower)}, {_fmt(r.upper)}] (width {_fmt(r.width)}; "
        f"Prometheus' interpolation {_fmt(r.prometheus)}; {100 * r.confidence:g}% CI "
        f"[{_fmt(r.ci[0])}, {_fmt(r.ci[1])}]; n={r.count})"
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
        h = prom.classic_histogram(client, args.histogram, start, end, matchers=args.matchers)
        qres = {q: h.quantile(q, args.confidence) for q in qs}
        att = [h.attainment(s) for s in args.slo or []]
        out["histogram"] = {"metric": h.metric, "count": h.count, "sum": h.sum,
                            "series": h.series, "resets": h.resets,
                            "quantiles": {str(q): _plain(r) for q, r in qres.items()},
                            "attainment": _plain(att)}
        lines.append(f"{h.metric}: {h.count} observations, {h.series} series, {h.resets} reset(s)")
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
