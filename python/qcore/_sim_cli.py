"""The ``qcore simulate`` subcommand (registered by :mod:`qcore.cli`): the simulator of
:mod:`qcore.sim` from flags or a TOML scenario.

Arrivals: Poisson at ``--rate`` (default), a renewal process (``--arrival-cv``), a
two-state MMPP (``--mmpp-rates``, ``--mmpp-switch``) or the replay of a request log or a
shipped dataset (``--trace``; ``--service trace`` then takes the log's latencies as the
service times). Service: a distribution (``--service``, ``--service-mean``,
``--service-cv``) or dynamic batching (``--batch-size``, ``--batch-wait``,
``--batch-time``). Patience (``--patience``), a finite waiting room
(``--queue-capacity``), the discipline, and independent replications with Student-t
intervals (``--replications``).

Figures are measured over the arrival window (first measured arrival to last arrival).
Exit 6 when the system is unstable (offered load at or above the servers and no
abandonment or waiting-room limit to bound the queue).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "service_dist"]

SERVICES = ("exponential", "deterministic", "gamma", "lognormal")

#: Scenario keys (TOML) and the flags' defaults; a flag left at its default takes the
#: scenario's value.
DEFAULTS: dict[str, Any] = {
    "rate": None, "arrival_cv": None, "arrival_family": "gamma", "mmpp_rates": None, "mmpp_switch": None,
    "trace": None, "service": None, "service_mean": None, "service_cv": None,
    "batch_size": None, "batch_wait": 0.0, "batch_time": None,
    "patience": None, "patience_dist": "exponential", "queue_capacity": None, "discipline": "fcfs",
    "servers": 1, "customers": None, "warmup": None, "seed": 1,
    "replications": 1, "confidence": 0.95, "threads": 1,
}

QUANTILES = (0.5, 0.9, 0.99, 0.999)


def register(sub: Any, fmt: Any, epilog: str) -> None:
    """Add ``simulate`` to the ``qcore`` parser's subparsers."""
    s = sub.add_parser(
        "simulate", help="discrete-event simulation from flags or a TOML scenario", formatter_class=fmt,
        epilog=epilog + "\n\nscenario keys: " + ", ".join(DEFAULTS),
        description=("Simulate a multi-server queue: Poisson, renewal or MMPP arrivals or the replay of a "
                     "request log (a file or a shipped dataset), a service-time distribution or dynamic "
                     "batching, patience, a finite waiting room, replications with confidence intervals. "
                     "Figures cover the arrival window (first measured to last arrival)."))
    s.add_argument("--scenario", help="TOML file with any of the keys below (flags given explicitly win)")
    a = s.add_argument_group("arrivals (Poisson at --rate unless told otherwise)")
    a.add_argument("--rate", type=float, help="arrival rate, requests/s (Poisson, or the renewal's mean rate)")
    a.add_argument("--arrival-cv", type=float, metavar="CV",
                   help="renewal arrivals: i.i.d. gaps with mean 1/rate and this coefficient of variation")
    a.add_argument("--arrival-family", choices=["gamma", "lognormal"], default="gamma",
                   help="distribution of the renewal gaps (default gamma)")
    a.add_argument("--mmpp-rates", metavar="R0,R1", help="two-state MMPP: the arrival rate in each state")
    a.add_argument("--mmpp-switch", metavar="S0,S1",
                   help="two-state MMPP: the rate of leaving each state (state i lasts 1/S_i s on average)")
    a.add_argument("--trace", metavar="LOG|DATASET",
                   help="replay the arrival times of a request log (file or glob) or of a shipped dataset "
                        "(`qcore datasets`); the clock starts at its first request")
    a.add_argument("--map", action="append", metavar="ROLE=COLUMN", help="--trace: map a column to a role")
    a.add_argument("--time-unit", choices=["s", "ms", "us", "ns"], help="--trace: unit of numeric timestamps")
    a.add_argument("--latency-unit", choices=["s", "ms", "us", "ns"], help="--trace: unit of the duration column")
    sv = s.add_argument_group("service")
    sv.add_argument("--service", choices=[*SERVICES, "trace"],
                    help="service-time distribution (default exponential); 'trace': the --trace log's latencies")
    sv.add_argument("--service-mean", type=float, help="mean service time, s (default 1)")
    sv.add_argument("--service-cv", type=float, help="coefficient of variation (gamma, lognormal)")
    sv.add_argument("--batch-size", type=int, metavar="N",
                    help="dynamic batching: a free server starts a batch when N requests wait ...")
    sv.add_argument("--batch-wait", type=float, default=0.0, metavar="S",
                    help="... or when the oldest has waited S seconds (default 0)")
    sv.add_argument("--batch-time", metavar="FIXED,PER_ITEM",
                    help="batch service time FIXED + PER_ITEM * n seconds for a batch of n (with --batch-size)")
    q = s.add_argument_group("queue")
    q.add_argument("--servers", type=int, default=1)
    q.add_argument("--patience", type=float, metavar="S",
                   help="mean patience: a request that waits longer leaves (abandonment)")
    q.add_argument("--patience-dist", choices=["exponential", "deterministic"], default="exponential")
    q.add_argument("--queue-capacity", type=int, metavar="N", help="waiting room; arrivals that find it full are blocked")
    q.add_argument("--discipline", choices=["fcfs", "lifo"], default="fcfs")
    r = s.add_argument_group("run")
    r.add_argument("--customers", type=int,
                   help="measured requests (default 200000; with --trace all of it after the warm-up)")
    r.add_argument("--warmup", type=int,
                   help="requests simulated before measuring (default: customers/20, or five relaxation times of "
                        "the queue when longer, at most customers; 0 with --trace)")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--replications", type=int, default=1, help="independent replications (intervals need >= 2)")
    r.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    r.add_argument("--threads", type=int, default=1, help="threads for the replications")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.set_defaults(func=cmd_simulate)


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------

def _scenario(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"--scenario: {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        from qcore.exceptions import InvalidArgumentError

        raise InvalidArgumentError(f"--scenario: invalid TOML: {e}") from None


def _params(args: argparse.Namespace) -> dict[str, Any]:
    from qcore.exceptions import InvalidArgumentError

    p = {k: getattr(args, k, v) for k, v in DEFAULTS.items()}
    if args.scenario:
        sc = _scenario(args.scenario)
        unknown = set(sc) - set(DEFAULTS)
        if unknown:
            raise InvalidArgumentError(f"--scenario: unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        for k, v in sc.items():
            if p[k] == DEFAULTS[k]:
                p[k] = v
    return p


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _pair(v: Any, key: str) -> tuple[float, float]:
    """Two numbers from ``"a,b"`` (a flag) or ``[a, b]`` (a scenario)."""
    from qcore.exceptions import InvalidArgumentError

    items = [x.strip() for x in v.split(",")] if isinstance(v, str) else list(v)
    try:
        out = tuple(float(x) for x in items)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 2:
        raise InvalidArgumentError(f"{_flag(key)} takes two numbers A,B, got {v!r}")
    return out[0], out[1]


def _positive(v: Any, key: str, *, zero: bool = False) -> float:
    from qcore.exceptions import InvalidArgumentError

    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v >= 0 if zero else v > 0)
    if not ok:
        what = "a non-negative" if zero else "a positive"
        raise InvalidArgumentError(f"{_flag(key)} must be {what} number, got {v!r}")
    return float(v)


def _int(v: Any, key: str, lo: int) -> int:
    from qcore.exceptions import InvalidArgumentError

    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise InvalidArgumentError(f"{_flag(key)} must be an integer of at least {lo}, got {v!r}")
    return v


def service_dist(kind: str, mean: float, cv: float | None) -> Any:
    """The :mod:`qcore.sim` distribution of ``--service KIND --service-mean --service-cv``."""
    from qcore import sim
    from qcore.exceptions import InvalidArgumentError

    if cv is not None and kind in ("exponential", "deterministic"):
        raise InvalidArgumentError(
            f"--service-cv applies to gamma and lognormal service; {kind} service has a fixed cv "
            f"({'1' if kind == 'exponential' else '0'}); drop --service-cv or pick --service gamma")
    if kind == "exponential":
        return sim.Exponential(mean=mean)
    if kind == "deterministic":
        return sim.Deterministic(mean)
    if kind == "gamma":
        return sim.Gamma(mean=mean, cv=cv if cv is not None else 1.0)
    if kind == "lognormal":
        return sim.LogNormal(mean=mean, cv=cv if cv is not None else 1.0)
    raise InvalidArgumentError(f"--service must be exponential, deterministic, gamma or lognormal, got {kind!r}")


def _read_trace(src: str, args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """``(timestamps, latencies or None, description)`` of ``--trace`` (sorted by time)."""
    import numpy as np

    from qcore import datasets
    from qcore.cli import _mapping_args
    from qcore.exceptions import InvalidArgumentError
    from qcore.logs import read_logs

    mapping = _mapping_args(args) or {}
    is_path = any(ch in src for ch in "*?[") or os.path.exists(src)
    if not is_path and src in datasets.names():
        ds = datasets.info(src)
        mapping = {**ds.mapping, **mapping}
        path: Any = datasets.path(src)
        desc: dict[str, Any] = {"dataset": src}
    elif not is_path:
        raise InvalidArgumentError(f"--trace: {src!r} is neither a file nor a shipped dataset "
                                   f"(`qcore datasets` lists them: {', '.join(datasets.names())})")
    else:
        path, desc = src, {"file": src}
    logs = read_logs(path, mapping=mapping or None)
    frame = logs.frame.sort("start")
    if frame.height == 0:
        raise InvalidArgumentError(f"--trace: {src!r} has no valid request ({logs.report.summary()})")
    t = frame.get_column("start").to_numpy().astype(np.float64)
    lat = None
    if "latency" in frame.columns:
        col = frame.get_column("latency")
        if col.null_count() == 0:
            lat = col.to_numpy().astype(np.float64)
    desc.update({"requests": frame.height, "rows_excluded": logs.report.rows_excluded,
                 "span": float(t[-1] - t[0]), "time_unit": logs.mapping.time_unit})
    return t, lat, desc


def _arrivals(p: dict[str, Any], args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """``(arrival process, trace latencies or None, description)``."""
    from qcore import sim
    from qcore.exceptions import InvalidArgumentError

    kinds = [k for k in ("arrival_cv", "mmpp_rates", "trace") if p[k] is not None]
    if len(kinds) > 1:
        raise InvalidArgumentError(f"{' and '.join(_flag(k) for k in kinds)} are different arrival processes; "
                                   "give one")
    if p["mmpp_switch"] is not None and p["mmpp_rates"] is None:
        raise InvalidArgumentError("--mmpp-switch needs --mmpp-rates")
    if p["trace"] is not None:
        if p["rate"] is not None:
            raise InvalidArgumentError("--rate does not apply with --trace (the trace sets the arrivals)")
        t, lat, desc = _read_trace(str(p["trace"]), args)
        tr = sim.Trace(t)
        return tr, lat, {"kind": "trace", "rate": tr.mean_rate, **desc}
    if p["mmpp_rates"] is not None:
        if p["rate"] is not None:
            raise InvalidArgumentError("--rate does not apply with --mmpp-rates (the MMPP's rates set it)")
        if p["mmpp_switch"] is None:
            raise InvalidArgumentError("--mmpp-rates needs --mmpp-switch S0,S1 (the rates of leaving each state)")
        rates, switch = _pair(p["mmpp_rates"], "mmpp_rates"), _pair(p["mmpp_switch"], "mmpp_switch")
        m = sim.MMPP2(rates=rates, switch_rates=switch)
        return m, None, {"kind": "mmpp2", "rate": m.mean_rate, "rates": list(rates), "switch_rates": list(switch)}
    if p["rate"] is None:
        raise InvalidArgumentError("--rate (or rate in the scenario) is required, unless --mmpp-rates or --trace "
                                   "gives the arrivals")
    rate = _positive(p["rate"], "rate")
    if p["arrival_cv"] is not None:
        cv = _positive(p["arrival_cv"], "arrival_cv", zero=True)
        fam = str(p["arrival_family"])
        ren = sim.Renewal.from_rate(rate, cv, family=fam)
        return ren, None, {"kind": "renewal", "rate": rate, "cv": cv, "family": fam}
    return sim.Poisson(rate=rate), None, {"kind": "poisson", "rate": rate}


def _service(p: dict[str, Any], trace_latency: Any) -> tuple[Any, Any, dict[str, Any]]:
    """``(service distribution or None, batching kwargs, description)``."""
    from qcore import sim
    from qcore.exceptions import InvalidArgumentError

    batching = p["batch_size"] is not None or p["batch_time"] is not None
    if batching:
        given = [k for k in ("service", "service_mean", "service_cv") if p[k] is not None]
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise InvalidArgumentError(f"{', '.join(_flag(k) for k in given)} {verb} not apply with batching: "
                                       "--batch-time sets the service time of a batch")
        if p["batch_size"] is None or p["batch_time"] is None:
            raise InvalidArgumentError("batching needs both --batch-size N and --batch-time FIXED,PER_ITEM")
        size = _int(p["batch_size"], "batch_size", 1)
        fixed, per_item = _pair(p["batch_time"], "batch_time")
        for v, name in ((fixed, "FIXED"), (per_item, "PER_ITEM")):
            if not (math.isfinite(v) and v >= 0):
                raise InvalidArgumentError(f"--batch-time: {name} must be a non-negative number, got {v:g}")
        if fixed + per_item * size <= 0:
            raise InvalidArgumentError("--batch-time: a batch must take some time (FIXED + PER_ITEM * N > 0)")
        wait = _positive(p["batch_wait"], "batch_wait", zero=True)
        kw = {"max_batch_size": size, "max_batch_wait": wait, "batch_service": (fixed, per_item)}
        # A server's top rate is that of full batches: N / (FIXED + PER_ITEM * N).
        per_request = (fixed + per_item * size) / size
        return None, kw, {"kind": "batching", "max_batch_size": size, "max_batch_wait": wait, "fixed": fixed,
                          "per_item": per_item, "mean": per_request}
    kind = p["service"] or "exponential"
    if kind == "trace":
        if p["trace"] is None:
            raise InvalidArgumentError("--service trace needs --trace (the log whose latencies are replayed)")
        if trace_latency is None:
            raise InvalidArgumentError("--service trace: the --trace log has no latency (or end) column for every "
                                       "request; give --service and --service-mean instead")
        for k in ("service_mean", "service_cv"):
            if p[k] is not None:
                raise InvalidArgumentError(f"{_flag(k)} does not apply with --service trace")
        d = sim.Durations(trace_latency)
        return d, {}, {"kind": "trace", "mean": d.mean_value, "cv": math.sqrt(d.scv)}
    mean = _positive(p["service_mean"] if p["service_mean"] is not None else 1.0, "service_mean")
    cv = p["service_cv"]
    if cv is not None:
        cv = _positive(cv, "service_cv", zero=True)
    dist = service_dist(kind, mean, cv)
    return dist, {}, {"kind": kind, "mean": mean, "cv": math.sqrt(dist.scv)}


# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------

def _default_warmup(arrivals: Any, service: Any, servers: int, customers: int) -> int:
    """``customers / 20``, or the warm-up of :func:`qcore.capacity.run_length` (a few
    relaxation times of the queue, which grow near saturation) when longer; at most
    ``customers``."""
    from qcore import capacity, sim

    base = customers // 20
    rate = arrivals.mean_rate
    if service is None or rate is None or isinstance(service, sim.Durations) or rate * service.mean_value >= servers:
        return base
    scv = float(arrivals.interarrival.scv) if isinstance(arrivals, sim.Renewal) else 1.0
    length = capacity.run_length(rate, service, servers, customers=customers, warmup=base, arrival_scv=scv)
    return base if length is None else min(length[1], customers)


def _ci(r: Any, name: str) -> list[float] | None:
    lo, _, hi = r.intervals[name]
    return None if math.isnan(lo) else [float(lo), float(hi)]


def _quantiles(r: Any, sketch: Any, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from qcore.cli import _qname

    est: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    for q in QUANTILES:
        k = f"p{_qname(q)}"
        v = sketch.quantile(q) if sketch.count > 0 else None
        est[k] = None if v is None else float(v)
        ci[k] = None
        if r.replications > 1 and v is not None:
            try:
                lo, mid, hi = (r.response_quantile(q) if what == "response" else r.wait_quantile(q))
            except ValueError:  # a replication recorded none
                lo = mid = hi = math.nan
            if not math.isnan(lo):
                # the estimate is the statistic the interval is about: the mean of the
                # replications' quantiles (the pooled quantile can lie outside it)
                est[k], ci[k] = float(mid), [float(lo), float(hi)]
    return est, ci


def _fmt(v: Any, ci: list[float] | None = None, spec: str = ".4g", unit: str = "") -> str:
    """``v`` (``-`` when missing) with its unit, and the interval after it."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    s = format(v, spec) + unit
    return s if ci is None else f"{s} [{format(ci[0], spec)}, {format(ci[1], spec)}]"


def cmd_simulate(args: argparse.Namespace) -> int:
    import qcore
    from qcore.cli import EXIT_OK, EXIT_UNSTABLE, _emit_json
    from qcore.exceptions import InvalidArgumentError

    p = _params(args)
    arrivals, trace_latency, arr_desc = _arrivals(p, args)
    service, batch_kw, svc_desc = _service(p, trace_latency)
    servers = _int(p["servers"], "servers", 1)
    replications = _int(p["replications"], "replications", 1)
    threads = _int(p["threads"], "threads", 1)
    confidence = float(p["confidence"])
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"--confidence must be in (0, 1), got {p['confidence']!r}")
    is_trace = arr_desc["kind"] == "trace"
    customers = p["customers"]
    if customers is not None:
        customers = _int(customers, "customers", 1)
    elif not is_trace:
        customers = 200_000
    warmup = p["warmup"]
    if warmup is None:
        warmup = 0 if is_trace else _default_warmup(arrivals, service, servers, int(customers))
    warmup = _int(warmup, "warmup", 0)
    if is_trace and warmup >= arr_desc["requests"]:
        raise InvalidArgumentError(f"--warmup {warmup} leaves none of the trace's {arr_desc['requests']} requests "
                                   "to measure")
    patience = None
    if p["patience"] is not None:
        pm = _positive(p["patience"], "patience")
        patience = (qcore.sim.Exponential(mean=pm) if p["patience_dist"] == "exponential"
                    else qcore.sim.Deterministic(pm))
    qcap = None if p["queue_capacity"] is None else _int(p["queue_capacity"], "queue_capacity", 0)
    r = qcore.simulate(arrivals=arrivals, service=service, servers=servers, customers=customers,
                       warmup=warmup, seed=_int(p["seed"], "seed", 0), discipline=str(p["discipline"]),
                       queue_capacity=qcap, patience=patience, replications=replications,
                       confidence=confidence, threads=threads, **batch_kw)
    rate = arr_desc["rate"]
    offered = float(rate) * float(svc_desc["mean"]) if rate is not None else math.nan
    overloaded = bool(offered >= servers)
    bounded = patience is not None or qcap is not None
    stable = not overloaded or bounded
    resp, resp_ci = _quantiles(r, r.response, "response")
    wait, wait_ci = _quantiles(r, r.wait, "wait")
    figures = ("utilization", "throughput", "mean_in_system", "mean_in_queue", "mean_response", "mean_wait",
               "p_wait", "p_block", "p_timeout")
    out: dict[str, Any] = {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()},
        "arrivals": arr_desc, "service": svc_desc, "servers": servers, "warmup": warmup,
        "offered_load": offered, "overloaded": overloaded, "stable": stable,
        "arrived": int(r.arrived), "completed": int(r.completed), "blocked": int(r.blocked),
        "timed_out": int(r.timed_out), "unfinished": int(r.unfinished),
        **{k: float(getattr(r, k)) for k in figures},
        "window": float(r.window), "duration": float(r.duration),
        "response": resp, "wait": wait,
        "replications": int(r.replications), "confidence": confidence,
        "intervals": {k: _ci(r, k) for k in figures},
        "response_ci": resp_ci, "wait_ci": wait_ci,
    }
    if args.format == "json":
        _emit_json(out)
        return EXIT_OK if stable else EXIT_UNSTABLE
    _print_text(out, r)
    return EXIT_OK if stable else EXIT_UNSTABLE


def _describe_arrivals(a: dict[str, Any]) -> str:
    if a["kind"] == "poisson":
        return f"Poisson arrivals at {a['rate']:g}/s"
    if a["kind"] == "renewal":
        return f"renewal arrivals at {a['rate']:g}/s ({a['family']} gaps, cv {a['cv']:g})"
    if a["kind"] == "mmpp2":
        r0, r1 = a["rates"]
        return f"MMPP arrivals at {r0:g}/s and {r1:g}/s (mean {a['rate']:.4g}/s)"
    src = a.get("dataset") or a.get("file")
    return (f"the arrivals of {src} ({a['requests']:,} requests over {a['span']:.4g} s, {a['rate']:.4g}/s"
            + (f"; {a['rows_excluded']:,} row(s) excluded by the data contract" if a["rows_excluded"] else "")
            + ")")


def _describe_service(s: dict[str, Any]) -> str:
    if s["kind"] == "batching":
        return (f"batches of up to {s['max_batch_size']} (wait up to {s['max_batch_wait']:g} s) taking "
                f"{s['fixed']:g} + {s['per_item']:g} n s")
    if s["kind"] == "trace":
        return f"the trace's latencies as service (mean {s['mean']:.4g} s, cv {s['cv']:.3g})"
    cv = f", cv {s['cv']:g}" if s["kind"] in ("gamma", "lognormal") else ""
    return f"{s['kind']} service (mean {s['mean']:g} s{cv})"


def _print_text(out: dict[str, Any], r: Any) -> None:
    iv = out["intervals"]
    if out["overloaded"]:
        if out["stable"]:
            print(f"note: overloaded: offered load {out['offered_load']:.4g} >= {out['servers']} server(s); "
                  "only abandonment or blocking bounds the queue")
        else:
            print(f"WARNING: unstable: offered load {out['offered_load']:.4g} (rate x mean service) >= "
                  f"{out['servers']} server(s); the queue grows without bound and the figures below grow "
                  "with the run length")
    reps = out["replications"]
    done = "" if out["completed"] == out["arrived"] else f" ({out['completed']:,} completed)"
    print(f"simulated {out['arrived']:,} customers{done}" + (f" in {reps} replications" if reps > 1 else "")
          + f": {out['servers']} server(s), "
          f"{_describe_arrivals(out['arrivals'])}, {_describe_service(out['service'])}, seed {out['params']['seed']}"
          + (f"; {100 * out['confidence']:g}% intervals over the replications" if reps > 1 else ""))
    print(f"  utilization {_fmt(out['utilization'], iv['utilization'])}, mean in system "
          f"{_fmt(out['mean_in_system'], iv['mean_in_system'])}, throughput "
          f"{_fmt(out['throughput'], iv['throughput'], unit='/s')}, mean response "
          f"{_fmt(out['mean_response'], iv['mean_response'], unit=' s')}")
    print(f"  over the arrival window ({out['window']:.4g} s; {out['duration']:.4g} s with the drain)")
    if out["timed_out"] or out["blocked"] or out["unfinished"]:
        print(f"  timed out {out['timed_out']:,} ({_fmt(out['p_timeout'], iv['p_timeout'], '.3%')}), blocked "
              f"{out['blocked']:,} ({_fmt(out['p_block'], iv['p_block'], '.3%')}), unfinished "
              f"{out['unfinished']:,}")
    for what in ("response", "wait"):
        vals, cis = out[what], out[f"{what}_ci"]
        print(f"  {what:<9}" + "  ".join(f"{k} {_fmt(v, cis[k], unit=' s')}" for k, v in vals.items()))
