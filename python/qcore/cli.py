"""The ``qcore`` command line.

Commands: ``demo``, ``report``, ``check``, ``plan``, ``simulate``. Every command takes
``--help`` and ``--format json`` (machine output on stdout).

Exit codes
----------
0   success; for ``check``: every decision is accept or warn
1   error: unreadable input, invalid rules, a contract refused, a bad parameter
2   usage error (unknown option, missing argument)
3   ``check``: the most severe action is escalate (a human must look)
4   ``check``: some decision blocks the release (block)
5   ``check``: some decision asks for a rollback
6   ``simulate``: the system is unstable (offered load at or above the servers, nothing
    bounds the queue)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from qcore.exceptions import InvalidArgumentError

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_UNSTABLE", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNSTABLE = 6

DEMO_FILE = "gentd26_lora_2024-12-03.csv"

EXIT_CODES_HELP = """exit codes:
  0  success (check: every decision accept or warn)
  1  error (unreadable input, invalid rules, contract refused, bad parameter)
  2  usage error
  3  check: most severe action is escalate
  4  check: a decision blocks (block)
  5  check: a decision asks for rollback
  6  simulate: the system is unstable (offered load >= servers): its figures grow with the run
  7  llm plan: no fleet within the search bounds meets every objective"""

DEMO_RULES = """
# Rules the demo applies to the embedded trace slice.
[defaults]
owner = "demo"
version = "1"

[[rule]]
id = "p99-latency"
metric = "p99"
threshold = 150.0          # seconds
warn_threshold = 110.0
group_by = ["endpoint"]
severity = "critical"      # fail -> rollback

[[rule]]
id = "error-rate"
metric = "error_rate"
threshold = 0.02
group_by = ["endpoint"]

[[rule]]
id = "littles-law"
metric = "littles_gap"
threshold = 0.02

[[rule]]
id = "freshness"
metric = "freshness"
max_age = "1h"

[[rule]]
id = "lineage"
metric = "unaudited_fraction"
columns = ["model_version"]
"""


DEMO_TRAFFIC_RULES = """
# Rules the demo applies to a shipped trace without latencies (arrival times only).
[defaults]
owner = "demo"
version = "1"

[[rule]]
id = "burstiness"
metric = "burstiness"
threshold = 3.0            # index of dispersion of per-minute counts (1 for Poisson)
bin = 60

[[rule]]
id = "peak-to-mean"
metric = "peak_to_mean"
threshold = 2.0
bin = 60

[[rule]]
id = "freshness"
metric = "freshness"
max_age = "1h"
"""

DEMO_DATASET = "gentd26_lora_2024-12-03"


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _mapping_args(args: argparse.Namespace) -> dict[str, Any] | None:
    m: dict[str, Any] = {}
    for item in getattr(args, "map", None) or []:
        if "=" not in item:
            raise InvalidArgumentError(f"--map expects ROLE=COLUMN, got {item!r}")
        k, v = item.split("=", 1)
        m[k.strip()] = v.strip()
    if getattr(args, "latency_unit", None):
        m["latency_unit"] = args.latency_unit
    if getattr(args, "time_unit", None):
        m["time_unit"] = args.time_unit
    return m or None


def _emit_json(obj: Any) -> None:
    from qcore._json import dumps

    sys.stdout.write(dumps(obj, indent=1))
    sys.stdout.write("\n")


def _print_frame(df: Any, cols: Sequence[str]) -> None:
    import polars as pl

    with pl.Config(tbl_rows=200, tbl_cols=20, fmt_str_lengths=60, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, tbl_width_chars=200, float_precision=4):
        print(df.select([c for c in cols if c in df.columns]))


def _add_common_log_args(p: argparse.ArgumentParser, *, or_prometheus: bool = False) -> None:
    if or_prometheus:
        p.add_argument("logs", nargs="*",
                       help="log files or globs (Parquet, CSV, NDJSON); or --prometheus URL")
    else:
        p.add_argument("logs", nargs="+", help="log files or globs (Parquet, CSV, NDJSON)")
    p.add_argument("--map", action="append", metavar="ROLE=COLUMN",
                   help="map a column to a role (start, end, duration, status, error, endpoint, "
                        "model_version, tokens_in, tokens_out, cost, ttft, first_token, itl) or set a unit "
                        "(ttft_unit=ms, itl_unit=ms); repeatable")
    p.add_argument("--latency-unit", choices=["s", "ms", "us", "ns"], help="unit of the duration column")
    p.add_argument("--time-unit", choices=["s", "ms", "us", "ns"], help="unit of numeric timestamps")
    p.add_argument("--input-format", choices=["parquet", "csv", "ndjson"], help="override the file format")
    p.add_argument("--refuse", action="store_true",
                   help="refuse the whole input on any contract violation (default: exclude the rows and report them)")
    p.add_argument("--max-latency", type=float, help="contract: latencies above this many seconds are violations")


def _contract(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    """The data contract from a rules file's [contract] table and the flags. With
    ``--now`` the plausible time range ends at that evaluation time (plus the tolerance)."""
    from qcore.logs import Contract

    d = dict(base or {})
    if getattr(args, "max_latency", None) is not None:
        d["max_latency"] = args.max_latency
    now = getattr(args, "now", None)
    if now is not None and "max_time" not in d:
        d["max_time"] = float(now) + float(d.get("future_tolerance", Contract.future_tolerance))
    return Contract.from_dict(d) if d else None


# --------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    import qcore
    import qcore.rules as qr
    from qcore import datasets
    from qcore.logs import read_logs
    from qcore.report import summarize

    out: dict[str, Any] = {}
    # 1. sketches on a generated latency sample, against exact quantiles
    rng = np.random.default_rng(args.seed)
    sample = rng.lognormal(mean=-3.0, sigma=1.0, size=args.samples)
    sk = qcore.QuantileSketch(relative_accuracy=0.01)
    sk.add(sample)
    gen = []
    for q in (0.5, 0.99, 0.999):
        est = float(sk.quantile(q))  # type: ignore[arg-type]
        exact = float(np.quantile(sample, q, method="lower"))
        gen.append({"q": q, "sketch": est, "exact": exact, "relative_error": abs(est - exact) / exact,
                    "bound": sk.relative_accuracy})
    out["generated"] = {"distribution": "lognormal(mu=-3, sigma=1) seconds", "n": args.samples,
                        "seed": args.seed, "quantiles": gen}
    # 2. a shipped real trace (by default the embedded one-day slice)
    ds = datasets.info(args.dataset)
    path = datasets.path(ds.name)
    logs = read_logs(path, mapping=ds.mapping or None)
    frame = logs.frame
    timed = "end" in frame.columns     # the trace has latencies (else arrivals only)
    group_by = ["endpoint"] if "endpoint" in frame.columns else []
    rep = summarize(logs, group_by=group_by, bin=60.0, title=f"qcore demo: {ds.description.split(':')[0]}")
    out["trace"] = {"dataset": ds.name, "file": str(path), "rows": logs.height, "licence": ds.licence,
                    "citation": ds.citation, "summary": rep.table().to_dicts()}
    ov = rep.overall
    st = qcore.arrival_stats(frame.get_column("start").to_numpy(), window=60.0)
    ll = None
    if timed:
        ok = frame.filter(frame.get_column("outcome") != "incomplete")
        ll = qcore.littles_law(ok.get_column("start").to_numpy(), ok.get_column("end").to_numpy())
    newest = float(frame.get_column("end" if timed else "start").max())  # type: ignore[arg-type]
    decisions = qr.evaluate(logs, qr.load_rules(DEMO_RULES if timed else DEMO_TRAFFIC_RULES), now=newest + 60.0)
    out["decisions"] = decisions.drop("evidence").to_dicts()
    out["overall_action"] = qr.overall_action(decisions)
    if args.html:
        rep.to_html(args.html, command=_command_line())
        out["html"] = str(args.html)
    if args.format == "json":
        out["arrivals"] = {k: _get(st, k) for k in ("count", "duration", "rate", "rate_ci", "peak_rate",
                                                     "peak_to_mean", "cv_interarrival", "index_of_dispersion")}
        out["littles_law"] = None if ll is None else {k: _get(ll, k) for k in ("L", "arrival_rate",
                                                                                 "mean_response", "gap")}
        _emit_json(out)
        return EXIT_OK
    print("qcore demo")
    print("==========")
    print(f"\n1. QuantileSketch (relative accuracy {sk.relative_accuracy:g}) over {args.samples:,} generated "
          f"lognormal latencies (seed {args.seed}):")
    for g in gen:
        print(f"   p{_qname(g['q']):<5} sketch {g['sketch'] * 1e3:9.3f} ms   exact {g['exact'] * 1e3:9.3f} ms   "
              f"error {100 * g['relative_error']:.3f}%  (bound {100 * g['bound']:g}%)")
    print(f"\n2. Real trace: {ds.name} ({logs.height:,} requests; {ds.description.split(':')[0]})")
    print(f"   licence: {ds.licence}; please cite: {ds.citation}")
    print(f"   (source and terms: `qcore datasets info {ds.name}`)")
    print("\n   Per request type:" if group_by else "\n   Summary:")
    for line in rep.to_text().splitlines():
        print("   " + line)
    per, unit = (1.0, "s") if _get(st, "rate") >= 1.0 else (3600.0, "h")
    lo, hi = _get(st, "rate_ci")
    print(f"\n   Arrivals: {_get(st, 'count')} requests in {_get(st, 'duration') / 3600:.1f} h, rate "
          f"{_get(st, 'rate') * per:.1f}/{unit} (95% CI {lo * per:.1f}–{hi * per:.1f}), "
          f"peak-to-mean {_get(st, 'peak_to_mean'):.1f} per minute, index of dispersion "
          f"{_get(st, 'index_of_dispersion'):.2f}, inter-arrival CV {_get(st, 'cv_interarrival'):.2f}")
    if ll is not None:
        print(f"   Little's law: L = {_get(ll, 'L'):.4f} in flight on average, lambda*W = "
              f"{_get(ll, 'arrival_rate'):.5f}/s x {_get(ll, 'mean_response'):.2f} s = "
              f"{_get(ll, 'arrival_rate') * _get(ll, 'mean_response'):.4f}; gap {100 * _get(ll, 'gap'):.3f}%; "
              f"peak concurrency {ov.peak_concurrency:.0f}")
    else:
        print("   Little's law: the trace has no latencies (arrival times and tokens only)")
    print(f"\n3. Rules (qcore check) on the {'slice' if ds.name == DEMO_DATASET else 'trace'}:")
    _print_frame(decisions, ["rule_id", "group", "metric", "value", "threshold", "n", "status", "action"])
    print(f"   overall action: {qr.overall_action(decisions)}")
    if args.html:
        print(f"\n   HTML report written to {args.html}")
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from qcore import datasets

    if args.action == "list":
        rows = [datasets.info(n) for n in datasets.names()]
        if args.format == "json":
            _emit_json([d.to_dict() for d in rows])
            return EXIT_OK
        width = max(len(d.name) for d in rows)
        for d in rows:
            print(f"{d.name:<{width}}  {d.rows:>6,} rows  {d.licence:<12}  {d.description.split(':')[0]}")
        return EXIT_OK
    if args.name is None:
        raise InvalidArgumentError(f"datasets {args.action}: name the dataset; shipped: {', '.join(datasets.names())}")
    d = datasets.info(args.name)
    if args.action == "path":
        p = datasets.path(d.name)
        _emit_json({"name": d.name, "path": str(p)}) if args.format == "json" else print(p)
    elif args.action == "licence":
        print(datasets.licence_text(d.name), end="")
    elif args.format == "json":
        _emit_json(d.to_dict())
    else:
        for k, v in d.to_dict().items():
            print(f"{k:<12} {v}")
    return EXIT_OK


def _qname(q: float) -> str:
    return f"{q * 100:.10g}".replace(".", "")


def _get(obj: Any, key: str) -> Any:
    v = obj[key] if isinstance(obj, dict) else getattr(obj, key)
    if isinstance(v, tuple):
        return list(v)
    return v


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    usage = _source_usage(args) or (f"--top must be at least 1, got {args.top}" if args.top < 1 else None)
    if usage:
        print(f"qcore report: error: {usage}", file=sys.stderr)
        return EXIT_USAGE
    if args.prometheus:
        from qcore._prom_cli import cmd_report_prometheus

        return cmd_report_prometheus(args)
    if args.query or args.preset:
        print("qcore report: error: --query and --preset read a Prometheus server: give --prometheus URL",
              file=sys.stderr)
        return EXIT_USAGE
    kw: dict[str, Any] = {
        "group_by": args.group_by or [], "bin": args.bin, "mapping": _mapping_args(args),
        "contract": _contract(args), "on_violation": "refuse" if args.refuse else "exclude",
        "format": args.input_format, "title": args.title or "qcore report"}
    from qcore.report import summarize

    if getattr(args, "dask", None):
        from qcore import dask as qd

        client = qd.client_from_arg(args.dask)
        try:
            rep = summarize(args.logs, executor="dask",
                            progress=_task_progress(not args.no_progress if args.no_progress else None), **kw)
        finally:
            client.close()
    else:
        rep = summarize(args.logs, batch_rows=args.batch_rows,
                        progress=(not args.no_progress) if args.no_progress else None, **kw)
    if args.html:
        rep.to_html(args.html, top=args.top, command=_command_line())
    if args.format == "json":
        d = rep.to_dict()
        if args.html:
            d["html"] = str(args.html)
        _emit_json(d)
    else:
        print(rep.to_text())
        if args.html:
            print(f"\nHTML report: {args.html}")
    kept, total = int(rep.contract.get("rows_valid", 1)), int(rep.contract.get("rows_total", 0))
    if kept == 0:   # every row broke the contract: nothing above describes the traffic
        print(f"qcore report: error: all {total:,} rows broke the data contract (see the contract checks); "
              "nothing was summarised", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


# --------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------

def _command_line() -> str:
    """The command line that is running, as a shell would read it (for the HTML pages)."""
    import shlex

    return " ".join(["qcore", *(shlex.quote(a) for a in sys.argv[1:])])


def _task_progress(enabled: bool | None) -> Any:
    """A progress callback ``(done, total)`` printing a bar on stderr (by default when
    stderr is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    t_start = time.monotonic()

    def show(done: int, total: int) -> None:
        frac = min(1.0, done / total) if total else 1.0
        sys.stderr.write(f"\r[{'#' * int(30 * frac):<30}] {done}/{total} tasks  {time.monotonic() - t_start:.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _source_usage(args: argparse.Namespace) -> str | None:
    """The usage error of a command that reads logs or a Prometheus server, if any."""
    if getattr(args, "prometheus", None):
        if args.logs:
            return "give log files or --prometheus URL, not both"
        if getattr(args, "dask", None):
            return "--dask reads log files; it does not apply to --prometheus"
        return None
    return None if args.logs else "give log files (or --prometheus URL)"


def cmd_check(args: argparse.Namespace) -> int:

    import qcore.rules as qr
    from qcore.rules.model import load_config

    usage = _source_usage(args)
    if usage:
        print(f"qcore check: error: {usage}", file=sys.stderr)
        return EXIT_USAGE
    cfg = load_config(args.rules) if Path(args.rules).exists() else None
    if cfg is None:
        raise FileNotFoundError(f"--rules: {args.rules!r} does not exist")
    slos = [{**{k: v for k, v in cfg.get("defaults", {}).items() if k in ("owner", "version")}, **s}
            for s in cfg.get("slo", [])]
    if args.prometheus:
        from qcore._prom_cli import check_decisions

        decisions, source = check_decisions(args, cfg, slos)
        return _check_output(args, decisions, None, source)
    rules = qr.parse_rules(cfg) if (cfg.get("rule") or cfg.get("rules") or not slos) else []
    mapping = dict(cfg.get("mapping", {}))
    cli_map = _mapping_args(args)
    if cli_map:
        mapping.update(cli_map)
    now = args.now if args.now is not None else time.time()
    contract = _contract(args, cfg.get("contract"))
    on_violation: Literal["exclude", "refuse"] = "refuse" if args.refuse else "exclude"
    if args.persist and not getattr(args, "dask", None):
        raise ValueError("--persist needs --dask")
    from qcore.rules import driver as qrd

    kw: dict[str, Any] = {"slos": slos, "now": now, "mapping": mapping or None, "contract": contract,
                          "on_violation": on_violation, "format": args.input_format}
    if getattr(args, "dask", None):
        from qcore import dask as qd

        client = qd.client_from_arg(args.dask)
        try:
            res = qrd.evaluate(args.logs, rules, persist=args.persist,
                               progress=_task_progress(not args.no_progress if args.no_progress else None), **kw)
        finally:
            client.close()
    else:
        # One task after another in this process, in batches: memory holds one batch.
        show = _task_progress(not args.no_progress if args.no_progress else None)
        res = qrd.evaluate(args.logs, rules, executor="local", progress=show, **kw)
    decisions, report = res.decisions, res.report
    return _check_output(args, decisions, report, None)


def _check_output(args: argparse.Namespace, decisions: Any, report: Any,
                  source: dict[str, Any] | None) -> int:
    """Write the evidence, print the decisions (text or JSON) and return the exit code;
    ``report`` is the logs' contract report, ``source`` what was read from Prometheus."""
    import qcore.rules as qr

    if args.evidence:
        qr.write_evidence(decisions, args.evidence)
    if args.html:
        from qcore.rules.page import decisions_html

        decisions_html(decisions, args.html, contract=report, command=_command_line())
    code = qr.exit_code(decisions)
    if args.format == "json":
        doc = {"overall_action": qr.overall_action(decisions), "exit_code": code,
               "contract": report.to_dict() if report is not None else None,
               "decisions": [{**{k: v for k, v in d.items() if k != "evidence"}}
                             for d in decisions.to_dicts()],
               "evidence": str(args.evidence) if args.evidence else None}
        if args.html:
            doc["html"] = str(args.html)
        if source is not None:
            doc["source"] = source
        _emit_json(doc)
    else:
        if source is not None:
            print(f"source: Prometheus {source['url']} at {source['now']:.3f}")
        if report is not None and not report.passed:
            print(report.summary())
        _print_frame(decisions, ["rule_id", "rule_version", "group", "metric", "value", "ci_lo", "ci_hi",
                                 "threshold", "n", "status", "action"])
        bad = decisions.filter(decisions.get_column("status") != "pass")
        for r in bad.iter_rows(named=True):
            print(f"- {r['rule_id']} [{r['group']}]: {r['status']} -> {r['action']}: {r['message']}"
                  + (f" ({r['response']})" if r["response"] else ""))
        print(f"overall action: {qr.overall_action(decisions)} (exit {code})")
        if args.evidence:
            print(f"evidence: {decisions.height} record(s) appended to {args.evidence}")
        if args.html:
            print(f"HTML page: {args.html}")
    return code


# --------------------------------------------------------------------------------------
# plan and simulate
# --------------------------------------------------------------------------------------

def _service_dist(kind: str, mean: float, cv: float | None) -> Any:
    from qcore._sim_cli import service_dist

    return service_dist(kind, mean, cv)


def cmd_plan(args: argparse.Namespace) -> int:
    import qcore

    for name in ("rate", "service_mean", "slo"):
        v = getattr(args, name)
        if not (v > 0 and math.isfinite(v)):
            raise InvalidArgumentError(f"--{name.replace('_', '-')} must be a positive number, got {v}")
    cv = args.service_cv
    dist = _service_dist(args.service, args.service_mean, cv)
    res = qcore.capacity.min_servers(
        args.rate, dist, args.quantile, args.slo, method=args.method, customers=args.customers,
        warmup=max(1, args.customers // 10), seed=args.seed, max_servers=args.max_servers,
        max_utilization=args.max_utilization, conservative=args.conservative,
    )
    d = res.as_dict()
    out: dict[str, Any] = {"arrival_rate": args.rate, "service": args.service, "service_mean": args.service_mean,
                           "service_cv": cv, **d}
    if args.simulate:
        # As long a run as the search's at this count (relaxation times), another seed.
        length = qcore.capacity.run_length(args.rate, dist, int(res.servers), customers=args.customers,
                                           warmup=max(1, args.customers // 10))
        customers, warmup = length if length is not None else (args.customers, max(1, args.customers // 10))
        r = qcore.simulate(arrivals=qcore.sim.Poisson(rate=args.rate), service=dist, servers=int(res.servers),
                           customers=customers, warmup=warmup, seed=args.seed + 1)
        got = float(r.response.quantile(args.quantile))
        out["simulated"] = {"servers": int(res.servers), "customers": customers, "warmup": warmup,
                            "response_quantile": got,
                            "utilization": float(r.utilization), "meets_slo": got <= args.slo}
    if args.format == "json":
        _emit_json(out)
    else:
        q = _qname(args.quantile)
        print(f"arrival rate {args.rate:g}/s, {args.service} service with mean {args.service_mean:g} s"
              + (f" (cv {cv:g})" if cv is not None else "") + f"; SLO p{q} <= {args.slo:g} s")
        ci = f" [{res.ci[0]:.4g}, {res.ci[1]:.4g}]" if res.ci else ""
        print(f"  servers needed: {res.servers}  (p{q} = {res.achieved:.4g} s{ci}, utilization "
              f"{res.utilization:.3f}, method {res.method})")
        if res.straddles_slo:
            print(f"  note: the interval of p{q} contains the SLO: the estimate meets it, but the simulation "
                  "cannot tell it from missing it (--conservative decides on the upper bound)")
        if "simulated" in out:
            s_ = out["simulated"]
            print(f"  check by simulation with {s_['servers']} servers: p{q} = {s_['response_quantile']:.4g} s, "
                  f"utilization {s_['utilization']:.3f}: {'meets' if s_['meets_slo'] else 'MISSES'} the SLO")
    return EXIT_OK


# --------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="qcore", formatter_class=fmt,
        description="Queueing and capacity statistics for model serving, from request logs.",
        epilog="Start with `qcore demo`.\n\n" + EXIT_CODES_HELP)
    p.add_argument("--version", action="version", version=f"qcore {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="the main job on an embedded real trace slice", formatter_class=fmt,
                       description="Sketches over a generated latency sample (against exact quantiles), then "
                                   "quantiles, rates, Little's law and rule decisions over an embedded slice of "
                                   "the Alibaba GenTD26 LoRA serving trace.", epilog=EXIT_CODES_HELP)
    d.add_argument("--samples", type=int, default=1_000_000, help="size of the generated sample (default 1e6)")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--html", help="also write the HTML report here")
    d.add_argument("--format", choices=["text", "json"], default="text")
    d.add_argument("--dataset", default=DEMO_DATASET, metavar="NAME",
                   help=f"the shipped trace of part 2 (default {DEMO_DATASET}; `qcore datasets` lists them)")
    d.set_defaults(func=cmd_demo)

    ds = sub.add_parser("datasets", help="the real traces shipped with qcore", formatter_class=fmt,
                        description="List the shipped traces, show one's source, licence and citation, or "
                                    "write it as its original file (for `qcore report`).", epilog=EXIT_CODES_HELP)
    ds.add_argument("action", nargs="?", choices=["list", "info", "path", "licence"], default="list")
    ds.add_argument("name", nargs="?", help="the dataset (for info, path, licence)")
    ds.add_argument("--format", choices=["text", "json"], default="text")
    ds.set_defaults(func=cmd_datasets)

    r = sub.add_parser("report", help="per-group summary table and HTML report", formatter_class=fmt,
                       description="Per group: count, rate, burstiness, p50/p99/p999 with CIs, error rate, "
                                   "Little's law check and peak concurrency; optional HTML report with plots. "
                                   "With --prometheus URL instead of logs: quantile bounds and SLO brackets of "
                                   "histograms (--query) or per vLLM engine (--preset vllm), over the range "
                                   "and per --bin window.",
                       epilog=EXIT_CODES_HELP)
    _add_common_log_args(r, or_prometheus=True)
    from qcore._prom_cli import add_report_args as add_prometheus_report_args

    add_prometheus_report_args(r)
    r.add_argument("--group-by", "-g", action="append", metavar="COLUMN", help="group key; repeatable")
    r.add_argument("--bin", type=float, help="window (s) for arrival counts and burstiness (default: from span); "
                                             "with --prometheus: of the per-window tails (default: range / 30)")
    r.add_argument("--html", help="write the self-contained HTML report here")
    r.add_argument("--top", type=int, default=20, metavar="N",
                   help="with --html: the N busiest groups, the rest folded into 'other' (default 20)")
    r.add_argument("--title", help="report title")
    r.add_argument("--batch-rows", type=int, default=1_000_000, help="rows per batch (bounds memory)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--format", choices=["text", "json"], default="text")
    r.add_argument("--dask", metavar="SCHEDULER",
                   help="run on a dask cluster: a scheduler address (tcp://host:8786) or local:N for a "
                        "local cluster of N worker processes (needs the dask extra); the same report")
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("check", help="evaluate rules; exit code for CI", formatter_class=fmt,
                       description="Evaluate the rules in a TOML file over the logs, print the decisions, append "
                                   "the evidence (JSON lines) and exit non-zero on escalate, block or rollback. "
                                   "With --prometheus URL instead of logs: the [[slo]] burn-rate declarations "
                                   "from the server's histograms and counters.",
                       epilog=EXIT_CODES_HELP)
    _add_common_log_args(c, or_prometheus=True)
    c.add_argument("--prometheus", metavar="URL",
                   help="evaluate the [[slo]] declarations from this Prometheus server's metrics "
                        "(each with a [slo.prometheus] table) instead of log files")
    c.add_argument("--lookback", type=float, default=300.0, metavar="SECONDS",
                   help="with --prometheus: reach this far before the longest window for its "
                        "first sample (default 300; at least one scrape interval)")
    c.add_argument("--timeout", type=float, default=10.0,
                   help="with --prometheus: seconds per HTTP request")
    c.add_argument("--rules", required=True,
                   help="rules TOML file ([[rule]] and [[slo]] tables, optional [defaults], [contract], [mapping])")
    c.add_argument("--evidence", help="append one JSON evidence record per decision to this file")
    c.add_argument("--html", help="also write the decisions as a self-contained HTML page here")
    c.add_argument("--now", type=float, help="evaluation time, epoch seconds (default: now); for replays")
    c.add_argument("--format", choices=["text", "json"], default="text")
    c.add_argument("--dask", metavar="SCHEDULER",
                   help="run on a dask cluster: a scheduler address (tcp://host:8786) or local:N for a "
                        "local cluster of N worker processes (needs the dask extra); same decisions")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.add_argument("--persist", action="store_true",
                   help="with --dask: keep the validated rows in the workers' memory between passes "
                        "(one read of the files instead of two or three; the cluster must hold them)")
    c.set_defaults(func=cmd_check)

    pl_ = sub.add_parser("plan", help="replicas needed for a rate and service time under an SLO",
                         formatter_class=fmt, epilog=EXIT_CODES_HELP,
                         description="Smallest number of servers whose response-time quantile meets the SLO, "
                                     "for Poisson arrivals: exact M/M/c for exponential service, a simulation "
                                     "search otherwise; --simulate checks the answer with an independent run.")
    pl_.add_argument("--rate", type=float, required=True, help="arrival rate, requests/s")
    pl_.add_argument("--service-mean", type=float, required=True, help="mean service time, s")
    pl_.add_argument("--service", default="exponential", choices=["exponential", "deterministic", "gamma", "lognormal"])
    pl_.add_argument("--service-cv", type=float, help="coefficient of variation of service time")
    pl_.add_argument("--slo", type=float, required=True, help="response-time SLO, s")
    pl_.add_argument("--quantile", type=float, default=0.99, help="SLO quantile (default 0.99)")
    pl_.add_argument("--method", choices=["auto", "analytic", "simulation"], default="auto",
                     help="auto: analytic M/M/c for exponential service, simulation otherwise")
    pl_.add_argument("--max-servers", type=int, default=100_000)
    pl_.add_argument("--max-utilization", type=float, default=1.0,
                     help="headroom: only server counts at or below this utilization (default 1: any stable count)")
    pl_.add_argument("--conservative", action="store_true",
                     help="decide on the upper confidence bound of the simulated quantile")
    pl_.add_argument("--simulate", action="store_true", help="also check the answer with an independent simulation")
    pl_.add_argument("--customers", type=int, default=100_000, help="simulated requests per run")
    pl_.add_argument("--seed", type=int, default=1)
    pl_.add_argument("--format", choices=["text", "json"], default="text")
    pl_.set_defaults(func=cmd_plan)

    from qcore._sim_cli import register as register_sim

    register_sim(sub, fmt, EXIT_CODES_HELP)

    from qcore._llm_cli import register as register_llm

    register_llm(sub, fmt, EXIT_CODES_HELP)

    from qcore._prom_cli import register as register_prom

    register_prom(sub, fmt, EXIT_CODES_HELP)
    return p


def _version() -> str:
    try:
        from qcore import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - the extension is missing
        return "unknown"


def _polars_error() -> type[Exception]:
    """polars' base exception (a data problem: a user error, reported in one line)."""
    import polars as pl

    return pl.exceptions.PolarsError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except BrokenPipeError:  # output piped into head and closed: not an error
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:  # pragma: no cover
            pass
        return EXIT_OK
    except (ValueError, TypeError, FileNotFoundError, KeyError, OSError, _polars_error()) as e:
        msg = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
        if isinstance(e, _polars_error()):   # polars adds the expression on more lines
            msg = (msg.strip().splitlines() or [type(e).__name__])[0]
        if getattr(args, "format", "text") == "json":
            _emit_json({"error": type(e).__name__, "message": msg})
        print(f"qcore {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
