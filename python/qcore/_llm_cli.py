"""The ``qcore llm`` subcommands (registered by :mod:`qcore.cli`).

``qcore llm simulate TRACE_OR_SPEC --preset NAME --replicas N --router R`` replays a
trace (Azure LLM 2023 CSV, Mooncake JSON lines, or any CSV/Parquet/NDJSON with arrival,
prompt and output columns) or a synthetic spec (``poisson:RATE``) on the LLM engine.
``qcore llm plan TRACE_OR_SPEC --ttft-p99 S --tpot-p99 S ...`` finds the fewest replicas
that meet the objectives (:func:`qcore.llm.plan`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qcore import _json

__all__ = ["register"]

_MODEL_ALIASES = {"llama2-70b": "llama-2-70b", "llama2-7b": "llama-2-7b"}


def register(sub: Any, fmt: Any, epilog: str) -> None:
    """Add ``llm`` and its subcommands to the ``qcore`` parser's subparsers."""
    from qcore.llm import _ROUTERS

    llm_p = sub.add_parser("llm", help="LLM serving: replay a trace on replicas of an engine",
                           formatter_class=fmt, epilog=epilog)
    llm_sub = llm_p.add_subparsers(dest="llm_command", metavar="COMMAND")
    s = llm_sub.add_parser(
        "simulate", formatter_class=fmt, epilog=epilog,
        help="replay a trace or a synthetic workload on a fleet of LLM replicas",
        description=("Replay TRACE_OR_SPEC on --replicas replicas of an engine following vLLM "
                     "V1's scheduler (continuous batching, chunked prefill, KV blocks, prefix "
                     "cache, preemption). TRACE_OR_SPEC: a file (Azure LLM 2023 CSV, Mooncake "
                     "JSONL, or CSV/Parquet/NDJSON with arrival, prompt and output columns) or "
                     "'poisson:RATE' with --requests/--prompt-tokens/--output-tokens, or the name of a shipped "
                     "trace (`qcore datasets`, e.g. azure_llm_2023_conv)."))
    s.add_argument("trace", metavar="TRACE_OR_SPEC")
    s.add_argument("--preset", help="measured step-time preset, e.g. "
                   "splitwise/llama2-70b/h100-80gb/tp8 or distserve/opt-13b/tp1 (also sets "
                   "--model, --gpu, --tp); see --list-presets")
    s.add_argument("--list-presets", action="store_true", help="print the preset names and exit")
    s.add_argument("--model", help="model preset for memory -> KV blocks (default from --preset)")
    s.add_argument("--gpu", help="GPU preset (default from --preset)")
    s.add_argument("--tp", type=int, help="tensor-parallel GPUs a replica (default from --preset)")
    s.add_argument("--num-blocks", type=int, help="KV blocks a replica (default: from memory)")
    s.add_argument("--block-size", type=int)
    s.add_argument("--max-num-seqs", type=int)
    s.add_argument("--max-num-batched-tokens", type=int)
    s.add_argument("--scheduler", choices=["vllm_v1", "distserve"], default="vllm_v1",
                   help="scheduling policy (distserve: DistServe's colocated simulator, with "
                   "a distserve/... preset's coefficients plus its fixed overheads)")
    s.add_argument("--mode", choices=["vllm_v1", "vidur_vllm", "distserve_colocated",
                                      "distserve_disaggregated"], default="vllm_v1",
                   help="engine mode: vLLM V1 (default) or a published simulator's setup "
                   "(qcore.llm.presets.peer: Vidur's vllm scheduler on Llama-3-8B/A100, "
                   "DistServe's colocated or prefill+decode workers on OPT-13B/A100-80G); "
                   "--preset, --model, --gpu, --tp and --scheduler do not apply, "
                   "--num-blocks, --block-size, --max-num-seqs and "
                   "--max-num-batched-tokens override the setup")
    s.add_argument("--batch-formation",
                   choices=["vllm_v1", "prefill_priority_unmixed", "strict_prefill_priority"],
                   help="batch-formation policy (default: the --scheduler's or --mode's)")
    s.add_argument("--memory-admission", choices=["free_blocks", "watermark", "unlimited"],
                   help="memory-admission policy (default: the --scheduler's or --mode's)")
    s.add_argument("--preemption", choices=["recompute_lifo", "recompute_latest_arrival", "never"],
                   help="preemption policy (default: the --scheduler's or --mode's)")
    s.add_argument("--no-chunked-prefill", action="store_true")
    s.add_argument("--no-prefix-caching", action="store_true")
    s.add_argument("--replicas", type=int, default=1)
    s.add_argument("--prefill-replicas", type=int, metavar="P",
                   help="disaggregate: P prefill replicas (and --decode-replicas D) of the same replica")
    s.add_argument("--decode-replicas", type=int, metavar="D", help="disaggregate: D decode replicas")
    s.add_argument("--kv-bandwidth", type=float, metavar="GB_S",
                   help="disaggregated: KV-cache transfer bandwidth, GB/s (bytes per token from --model)")
    s.add_argument("--kv-latency", type=float, default=0.0, metavar="S",
                   help="disaggregated: fixed seconds per KV transfer (default 0)")
    s.add_argument("--router", choices=list(_ROUTERS), default="round_robin")
    s.add_argument("--staleness", type=float, default=0.0, help="router view refresh period, s")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--rate-scale", type=float, default=1.0,
                   help="scale the arrival rate by this factor (what-if)")
    s.add_argument("--requests", type=int, default=1000, help="requests of a synthetic spec")
    s.add_argument("--prompt-tokens", type=int, default=1000, help="prompt of a synthetic spec")
    s.add_argument("--output-tokens", type=int, default=200, help="output of a synthetic spec")
    s.add_argument("--slo-ttft", type=float, help="TTFT objective, s (goodput)")
    s.add_argument("--slo-tpot", type=float, help="TPOT objective, s (goodput)")
    s.add_argument("--slo-e2e", type=float, help="end-to-end objective, s (goodput)")
    a = s.add_argument_group(
        "admission control (a colocated fleet; qcore.llm.Admission)",
        "checked on arrival: the token bucket, then on the routed replica the waiting cap and "
        "the predicted-TTFT bound; the deadline when a replica begins a step")
    a.add_argument("--token-rate", type=float, metavar="TOKENS_S",
                   help="token bucket refill, prompt tokens per second (with --token-burst); "
                   "a request costs its prompt tokens, shed when the bucket holds fewer")
    a.add_argument("--token-burst", type=float, metavar="TOKENS",
                   help="token bucket capacity, prompt tokens (>= 1; full at the start)")
    a.add_argument("--max-waiting", type=int, metavar="N",
                   help="shed a request when its replica already has N requests waiting")
    a.add_argument("--max-wait", type=float, metavar="S",
                   help="queue-wait deadline: drop a waiting request without a first token "
                   "S seconds after its arrival (timed out)")
    a.add_argument("--max-predicted-ttft", type=float, metavar="S",
                   help="reject a request whose predicted TTFT on its replica exceeds S")
    g = s.add_argument_group(
        "autoscaling (a colocated fleet; qcore.llm.Autoscale)",
        "the fleet starts with --replicas; the policy samples it every --sample-interval "
        "seconds and asks for a replica count in [--min-replicas, --max-replicas]; added "
        "replicas are routable after a cold start, removed ones drain")
    g.add_argument("--autoscale", choices=list(_AUTOSCALERS),
                   help="policy: hpa (ceil(ready x metric / target)), kpa (Knative), target "
                   "(AWS target tracking), predictive (Holt forecast + M/M/c)")
    g.add_argument("--scale-metric", default="kv", metavar="METRIC",
                   help="kv (KV-cache fraction used), waiting, running, tokens_per_s (output "
                   "tokens/s): means per routable replica; ttft_p99 (or any ttft_pNN: the "
                   "fleet's TTFT quantile over --ttft-window, s); predictive ignores it "
                   "(default kv)")
    g.add_argument("--scale-target", type=float, metavar="X",
                   help="target of the metric (predictive: requests/s one replica sustains)")
    g.add_argument("--min-replicas", type=int, default=1)
    g.add_argument("--max-replicas", type=int, default=8)
    g.add_argument("--cold-start", type=float, default=120.0, metavar="SECONDS",
                   help="model-load time of an added replica: lognormal of this mean and cv "
                   "0.3 (0: none; default 120)")
    g.add_argument("--sample-interval", type=float, default=1.0, metavar="S")
    g.add_argument("--ttft-window", type=float, default=60.0, metavar="S",
                   help="window of the TTFT quantile metric, s")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.add_argument("--no-progress", action="store_true",
                   help="no progress bar (shown on a terminal for runs of 100,000+ requests)")
    s.set_defaults(func=cmd_llm_simulate)
    _register_plan(llm_sub, fmt, epilog)
    llm_p.set_defaults(func=lambda args: _usage(llm_p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _load(spec: str, args: argparse.Namespace) -> Any:
    from qcore import llm
    from qcore.exceptions import InvalidArgumentError

    if spec.startswith("poisson:"):
        try:
            rate = float(spec.split(":", 1)[1])
        except ValueError:
            raise InvalidArgumentError(f"TRACE_OR_SPEC {spec!r}: expected poisson:RATE") from None
        return llm.Workload.poisson(rate=rate, n=args.requests, prompt_tokens=args.prompt_tokens,
                                    output_tokens=args.output_tokens, seed=args.seed)
    from qcore import datasets

    if spec in datasets.names() and not Path(spec).exists():   # a shipped trace by name
        return llm.Workload.read(datasets.path(spec))
    return llm.Workload.read(spec)


def _preset_parts(name: str) -> dict[str, Any]:
    parts = name.split("/")
    out: dict[str, Any] = {}
    if parts[0] == "splitwise" and len(parts) == 4:
        out["model"] = _MODEL_ALIASES.get(parts[1], parts[1])
        out["gpu"] = parts[2].removesuffix("-pcap")
        out["tp"] = int(parts[3].removeprefix("tp"))
    elif parts[0] in ("distserve", "distserve-engine") and len(parts) == 3:
        out["model"] = parts[1]
        out["gpu"] = "a100-80gb"
        out["tp"] = int(parts[2].removeprefix("tp"))
    return out


_POLICY_FLAGS = ("batch_formation", "memory_admission", "preemption")


def _replica(args: argparse.Namespace) -> Any:
    from qcore import llm
    from qcore.exceptions import InvalidArgumentError

    st = llm.presets.step_time(args.preset) if args.preset else None
    if args.scheduler == "distserve":
        if not isinstance(st, llm.Phases):
            raise InvalidArgumentError("--scheduler distserve needs a distserve/... --preset")
        st = llm.DistServeStepTime.from_phases(st)
    guess = _preset_parts(args.preset) if args.preset else {}
    model = args.model or guess.get("model")
    gpu = args.gpu or guess.get("gpu")
    tp = args.tp or guess.get("tp") or 1
    over: dict[str, Any] = {}
    for flag, key in (("block_size", "block_size"), ("max_num_seqs", "max_num_seqs"),
                      ("max_num_batched_tokens", "max_num_batched_tokens"),
                      ("num_blocks", "num_blocks")):
        v = getattr(args, flag)
        if v is not None:
            over[key] = v
    if args.no_chunked_prefill:
        over["chunked_prefill"] = False
    if args.no_prefix_caching:
        over["prefix_caching"] = False
    if args.scheduler != "vllm_v1":
        over["scheduler"] = args.scheduler
    for k in _POLICY_FLAGS:
        if getattr(args, k) is not None:
            over[k] = getattr(args, k)
    if model and gpu:
        return llm.Replica.from_preset(model, gpu, tp, step_time=st, **over)
    if st is None:
        raise InvalidArgumentError("--preset or --model and --gpu are required")
    if "num_blocks" not in over:
        raise InvalidArgumentError("--num-blocks (or --model and --gpu) is required")
    return llm.Replica(step_time=st, **over)


def _mode(args: argparse.Namespace, w: Any) -> tuple[Any, Any, Any]:
    """``(workload, replica, fleet)`` of a --mode other than vllm_v1."""
    import dataclasses

    from qcore import llm

    setup = llm.presets.peer(args.mode)
    over = {k: getattr(args, k) for k in ("num_blocks", "block_size", "max_num_seqs",
                                          "max_num_batched_tokens", *_POLICY_FLAGS)
            if getattr(args, k) is not None}
    rep = dataclasses.replace(setup.replica, **over)
    if setup.max_tokens is not None:   # Vidur's input rule: prompt + output <= its maximum
        clip = dataclasses.replace(setup, extra_output_token=False,
                                   max_tokens=rep.max_num_batched_tokens)
        w = clip.workload(w.arrival, w.prompt_tokens, w.output_tokens)
    if setup.fleet is not None:
        fleet: Any = dataclasses.replace(setup.fleet, decode=rep)
    else:
        fleet = llm.Fleet(replicas=args.replicas, router=args.router, staleness=args.staleness,
                          seed=args.seed)
    return w, rep, fleet


def _fleet(args: argparse.Namespace, rep: Any) -> Any:
    """The colocated fleet, or the disaggregated pools of --prefill/--decode-replicas."""
    from qcore import llm
    from qcore.exceptions import InvalidArgumentError

    p, d = args.prefill_replicas, args.decode_replicas
    if p is None and d is None:
        if args.kv_bandwidth is not None:
            raise InvalidArgumentError("--kv-bandwidth needs --prefill-replicas and --decode-replicas")
        return llm.Fleet(replicas=args.replicas, router=args.router, staleness=args.staleness, seed=args.seed)
    if p is None or d is None:
        raise InvalidArgumentError("--prefill-replicas and --decode-replicas go together")
    return llm.Disaggregated(decode=rep, prefill_replicas=p, decode_replicas=d, transfer=_transfer(args))


def _transfer(args: argparse.Namespace) -> Any:
    """The KV transfer of --kv-bandwidth / --kv-latency (``None`` without a bandwidth)."""
    from qcore import llm
    from qcore.exceptions import InvalidArgumentError

    if args.kv_bandwidth is None:
        return None
    model = args.model or (_preset_parts(args.preset).get("model") if args.preset else None)
    if model is None:
        raise InvalidArgumentError("--kv-bandwidth needs --model (or a --preset that names one) "
                                   "for the KV bytes per token")
    if not args.kv_bandwidth > 0:
        raise InvalidArgumentError(f"--kv-bandwidth must be > 0 GB/s, got {args.kv_bandwidth:g}")
    return llm.KvTransfer.for_model(model, bandwidth=args.kv_bandwidth * 1e9, latency=args.kv_latency)


def _admission(args: argparse.Namespace) -> Any:
    """The :class:`qcore.llm.Admission` of the admission flags (``None`` without any)."""
    from qcore import llm

    kw = {k: getattr(args, k) for k in ("token_rate", "token_burst", "max_waiting", "max_wait",
                                        "max_predicted_ttft")}
    if all(v is None for v in kw.values()):
        return None
    return llm.Admission(**kw)


#: ``--autoscale`` choices.
_AUTOSCALERS = ("hpa", "kpa", "target", "predictive")

#: Coefficient of variation of the lognormal cold start of ``--cold-start``.
COLD_START_CV = 0.3


def _autoscale(args: argparse.Namespace, fleet: Any) -> Any:
    """The :class:`qcore.llm.Autoscale` of the autoscaling flags (``None`` without
    ``--autoscale``)."""
    from qcore import autoscale, llm, sim
    from qcore.exceptions import InvalidArgumentError

    if args.autoscale is None:
        return None
    if not isinstance(fleet, llm.Fleet):
        raise InvalidArgumentError("--autoscale applies to a colocated fleet, not to "
                                   "--prefill-replicas/--decode-replicas")
    if args.scale_target is None:
        raise InvalidArgumentError("--autoscale needs --scale-target")
    x = float(args.scale_target)
    if not (math.isfinite(x) and x > 0):
        raise InvalidArgumentError(f"--scale-target must be finite and > 0, got {x:g}")
    if not (math.isfinite(args.cold_start) and args.cold_start >= 0):
        raise InvalidArgumentError(f"--cold-start must be finite and >= 0, got {args.cold_start:g}")
    policy: autoscale.ScalingPolicy
    if args.autoscale == "hpa":
        policy = autoscale.HPA(target=x)
    elif args.autoscale == "kpa":
        # The metric's target is the target: no 70 % utilization on top.
        policy = autoscale.KPA(target=x, target_utilization=1.0)
    elif args.autoscale == "target":
        policy = autoscale.TargetTracking(target=x)
    else:
        slo = args.slo_e2e if args.slo_e2e else 10.0 / x
        policy = autoscale.Predictive(service_mean=1.0 / x, slo=slo)
    cold: Any = (sim.LogNormal(mean=args.cold_start, cv=COLD_START_CV) if args.cold_start > 0
                 else 0.0)
    return llm.Autoscale(policy, metric=args.scale_metric, min_replicas=args.min_replicas,
                         max_replicas=args.max_replicas, cold_start=cold,
                         sample_interval=args.sample_interval, ttft_window=args.ttft_window,
                         seed=args.seed)


def _autoscale_config(args: argparse.Namespace, r: Any) -> dict[str, Any]:
    """The autoscaling flags and the replica-count changes, for the summary."""
    return {"policy": args.autoscale, "metric": args.scale_metric,
            "target": args.scale_target, "min_replicas": args.min_replicas,
            "max_replicas": args.max_replicas, "cold_start_mean_s": args.cold_start,
            "cold_start_cv": COLD_START_CV if args.cold_start > 0 else 0.0,
            "sample_interval_s": args.sample_interval, "changes": _scale_changes(r)}


def _scale_changes(r: Any) -> list[dict[str, Any]]:
    """The samples at which the replica count asked for changed."""
    import polars as pl

    sc = r.scaling
    ch = sc.filter(pl.col("target") != pl.col("target").shift(1).fill_null(r.fleet.replicas))
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in ch.iter_rows(named=True)]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def cmd_llm_simulate(args: argparse.Namespace) -> int:
    """``qcore llm simulate``: run and print the summary (text or JSON)."""
    from qcore import llm

    if args.list_presets:
        names = llm.presets.step_time_names()
        if args.format == "json":
            print(json.dumps({"step_time": names, "models": list(llm.presets.MODELS),
                              "gpus": list(llm.presets.GPUS)}))
        else:
            print("step-time presets:\n  " + "\n  ".join(names))
            print("models: " + ", ".join(llm.presets.MODELS))
            print("gpus: " + ", ".join(llm.presets.GPUS))
        return 0
    w = _load(args.trace, args)
    if args.rate_scale != 1.0:
        w = w.scale_rate(args.rate_scale)
    if args.mode != "vllm_v1":
        w, rep, fleet = _mode(args, w)
    else:
        rep = _replica(args)
        fleet = _fleet(args, rep)
    adm = _admission(args)
    auto = _autoscale(args, fleet)
    slo = None
    if args.slo_ttft or args.slo_tpot or args.slo_e2e:
        slo = llm.SLO(ttft=args.slo_ttft, tpot=args.slo_tpot, e2e=args.slo_e2e)
    show = None
    if not args.no_progress and sys.stderr.isatty() and len(w) >= 100_000:
        from qcore.report._stream import _progress_printer

        bar = _progress_printer(len(w), True)
        show = lambda done, total: bar(done)  # noqa: E731
    r = llm.simulate(w, rep, fleet, slo=slo, progress=show, admission=adm, autoscale=auto)
    s = r.summary()
    if auto is not None:
        s["autoscale"] |= _autoscale_config(args, r)
    disagg = isinstance(fleet, llm.Disaggregated)
    s["config"] = {"trace": args.trace, "mode": args.mode, "preset": args.preset,
                   "replicas": (fleet.prefill_replicas + fleet.decode_replicas) if disagg else r.fleet.replicas,
                   "prefill_replicas": fleet.prefill_replicas if disagg else None,
                   "decode_replicas": fleet.decode_replicas if disagg else None,
                   "kv_transfer": (None if not disagg or fleet.transfer is None else
                                   {"bandwidth_bytes_per_s": fleet.transfer.bandwidth,
                                    "latency_s": fleet.transfer.latency,
                                    "bytes_per_token": fleet.transfer.bytes_per_token}),
                   "router": args.router, "num_blocks": rep.num_blocks,
                   "max_num_batched_tokens": rep.max_num_batched_tokens,
                   "max_num_seqs": rep.max_num_seqs, "block_size": rep.block_size,
                   "gpus_per_replica": rep.gpus,
                   "admission": None if adm is None else dataclasses.asdict(adm)}
    if args.format == "json":
        print(_json.dumps(s))
        return 0
    out = sys.stdout
    c = s["config"]
    where = (f"{c['prefill_replicas']} prefill + {c['decode_replicas']} decode replica(s)"
             + ("" if c["kv_transfer"] is None else
                f", KV transfer {c['kv_transfer']['bandwidth_bytes_per_s'] / 1e9:g} GB/s"
                f" + {c['kv_transfer']['latency_s']:g} s")
             if disagg else f"{c['replicas']} replica(s), router {c['router']}")
    out.write(f"{c['trace']}: {s['requests']} requests on {where}"
              + ("" if c["mode"] == "vllm_v1" else f", mode {c['mode']}") + "\n")
    out.write(f"  replica: {c['num_blocks']} KV blocks of {c['block_size']} tokens, budget "
              f"{c['max_num_batched_tokens']} tokens, <= {c['max_num_seqs']} sequences\n")
    out.write(f"  finished {s['finished']}, rejected {s['rejected']}, preemptions "
              f"{s['preemptions']}, prefix-cache hit rate {_fmt(s['cache_hit_rate'])}\n")
    if adm is not None:
        out.write(f"  admission: shed {s['shed']}, timed out {s['timed_out']}, rejected on "
                  f"predicted TTFT {s['admission_rejected']}, unfinished {s['unfinished']}, "
                  f"wasted {s['wasted_tokens']} tokens\n")
    out.write(f"  throughput {_fmt(s['token_throughput'])} output tokens/s, "
              f"{_fmt(s['request_throughput'])} requests/s over {_fmt(s['duration_s'])} s\n")
    out.write(f"  {'metric':<6} {'p50':>10} {'p90':>10} {'p99':>10} {'mean':>10}  (seconds)\n")
    for name in ("ttft", "tpot", "itl", "e2e", "queue"):
        q = s[name]
        if q is None:
            continue
        out.write(f"  {name:<6} {_fmt(q['p50']):>10} {_fmt(q['p90']):>10} {_fmt(q['p99']):>10} "
                  f"{_fmt(q['mean']):>10}\n")
    if "autoscale" in s:
        a = s["autoscale"]
        out.write(f"  autoscale {a['policy']} on {a['metric']} (target {_fmt(a['target'])}): "
                  f"{_fmt(a['replicas_min'])}..{_fmt(a['replicas_max'])} replicas (mean "
                  f"{_fmt(a['replicas_mean'])}), {a['scale_events']} scale events, "
                  f"{_fmt(a['replica_seconds'])} replica-seconds, {_fmt(a['gpu_hours'])} "
                  f"GPU-hours" + ("" if a["cost"] is None else f", ${_fmt(a['cost'])}") + "\n")
    if "cost_per_mtok" in s:
        out.write(f"  cost {_fmt(s['cost_per_mtok'])} $/M output tokens (at ${_fmt(rep.price_per_hour)} a "
                  "GPU-hour: qcore.llm.prices())\n")
    if "goodput" in s:
        g = s["goodput"]
        out.write(f"  goodput {_fmt(g['requests_per_s'])} requests/s, {_fmt(g['tokens_per_s'])} "
                  f"tokens/s; SLO attainment {_fmt(g['attainment'])}\n")
    return 0


# --------------------------------------------------------------------------- plan

#: ``qcore llm plan`` exits with this when no fleet within the bounds meets the SLO.
EXIT_NO_PLAN = 7

_PLAN_EXIT_CODES = """exit codes of llm plan:
  0  a fleet within the search bounds meets every objective (the plan)
  1  error (unreadable input, bad parameter)
  2  usage error
  7  no fleet within the search bounds meets every objective"""


def _csv_list(kind: Any) -> Any:
    def parse(v: str) -> list[Any]:
        out = [kind(x.strip()) for x in v.split(",") if x.strip()]
        if not out:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        return out

    return parse


def _register_plan(llm_sub: Any, fmt: Any, epilog: str) -> None:
    from qcore.llm import _ROUTERS

    p = llm_sub.add_parser(
        "plan", formatter_class=fmt, epilog=_PLAN_EXIT_CODES,
        help="the fewest replicas (GPUs) that meet TTFT/TPOT/E2E quantile objectives, priced",
        description=(
            "Search the replica count (and, when given several values, the router, "
            "max_num_seqs, max_num_batched_tokens and GPU) for the fewest GPUs whose every "
            "quantile objective holds on the upper end of its confidence interval. "
            "TRACE_OR_SPEC: a trace file or shipped trace name (replayed once per candidate; "
            "order-statistic intervals), or 'poisson:RATE' (--replications replications with "
            "common random numbers; Student-t intervals). Each candidate is priced from the "
            "GPU price table (--prices to use your own)."))
    p.add_argument("trace", metavar="TRACE_OR_SPEC")
    p.add_argument("--ttft-p99", type=float, metavar="S", help="TTFT p99 objective, seconds")
    p.add_argument("--tpot-p99", type=float, metavar="S", help="TPOT p99 objective, seconds")
    p.add_argument("--e2e-p99", type=float, metavar="S", help="end-to-end p99 objective, s")
    p.add_argument("--slo", action="append", default=[], metavar="NAME=S",
                   help="another objective, e.g. ttft_p90=0.5 (repeatable)")
    p.add_argument("--preset", help="measured step-time preset (sets --model, --gpu, --tp)")
    p.add_argument("--model", help="model preset (memory -> KV blocks)")
    p.add_argument("--gpu", type=_csv_list(str),
                   help="GPU preset(s), comma-separated to search over hardware")
    p.add_argument("--tp", type=int, help="tensor-parallel GPUs a replica")
    p.add_argument("--num-blocks", type=int, help="KV blocks a replica (default: from memory)")
    p.add_argument("--block-size", type=int)
    p.add_argument("--max-num-seqs", type=_csv_list(int), help="value(s) to search")
    p.add_argument("--max-num-batched-tokens", type=_csv_list(int), help="value(s) to search")
    p.add_argument("--no-chunked-prefill", action="store_true")
    p.add_argument("--no-prefix-caching", action="store_true")
    p.add_argument("--routers", type=_csv_list(str), default=["least_requests"],
                   help=f"router(s) to search ({', '.join(_ROUTERS)})")
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=64)
    p.add_argument("--replications", type=int, default=5, help="of a synthetic spec")
    p.add_argument("--requests", type=int, default=1000, help="requests of a synthetic spec")
    p.add_argument("--prompt-tokens", type=int, default=1000, help="prompt of a synthetic spec")
    p.add_argument("--output-tokens", type=int, default=200, help="output of a synthetic spec")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate-scale", type=float, default=1.0, help="scale the arrival rate")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--decide-on", choices=["upper", "estimate"], default="upper",
                   help="side of the interval decided on (upper protects the SLO)")
    p.add_argument("--prices", help="GPU price table (CSV: gpu, provider, price_per_gpu_hour)")
    p.add_argument("--provider", help="price-table provider (default: the first row)")
    p.add_argument("--sustained-rate", action="store_true",
                   help="also bisect the chosen fleet's highest sustained arrival rate")
    p.add_argument("--disaggregated", action="store_true",
                   help="search prefill:decode pools instead of colocated replicas (the P:D ratio "
                        "as the knob; both pools of the same replica)")
    p.add_argument("--max-prefill", type=int, default=16, help="with --disaggregated: prefill replicas at most")
    p.add_argument("--max-decode", type=int, default=32, help="with --disaggregated: decode replicas at most")
    p.add_argument("--kv-bandwidth", type=float, metavar="GB_S",
                   help="with --disaggregated: KV transfer bandwidth between the pools (needs --model)")
    p.add_argument("--kv-latency", type=float, default=0.0, metavar="S",
                   help="with --disaggregated: fixed latency of each KV transfer, seconds")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run the configurations' searches on a dask cluster (or local:N)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--progress", action="store_true",
                   help="a line on stderr per candidate (default: when stderr is a terminal)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_llm_plan)


@dataclass(frozen=True)
class _PoissonSpec:
    """``poisson:RATE`` as a synthetic workload: seed → Workload (picklable)."""

    rate: float
    n: int
    prompt_tokens: int
    output_tokens: int

    def __call__(self, seed: int) -> Any:
        from qcore import llm

        return llm.Workload.poisson(rate=self.rate, n=self.n, prompt_tokens=self.prompt_tokens,
                                    output_tokens=self.output_tokens, seed=seed)


def _plan_slo(args: argparse.Namespace) -> dict[str, float]:
    from qcore.exceptions import InvalidArgumentError

    slo: dict[str, float] = {}
    for key, v in (("ttft_p99", args.ttft_p99), ("tpot_p99", args.tpot_p99),
                   ("e2e_p99", args.e2e_p99)):
        if v is not None:
            slo[key] = v
    for item in args.slo:
        name, sep, val = item.partition("=")
        try:
            slo[name.strip()] = float(val)
        except ValueError:
            raise InvalidArgumentError(f"--slo {item!r}: expected NAME=SECONDS") from None
        if not sep:
            raise InvalidArgumentError(f"--slo {item!r}: expected NAME=SECONDS")
    if not slo:
        raise InvalidArgumentError("give at least one objective: --ttft-p99, --tpot-p99, "
                                   "--e2e-p99 or --slo NAME=S")
    return slo


def _plan_replicas(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The replica (or {gpu: replica}) and the GPU to price a single replica with."""
    from qcore import llm
    from qcore.exceptions import InvalidArgumentError

    guess = _preset_parts(args.preset) if args.preset else {}
    model = args.model or guess.get("model")
    gpus = args.gpu or ([guess["gpu"]] if "gpu" in guess else [])
    tp = args.tp or guess.get("tp") or 1
    over: dict[str, Any] = {}
    for key in ("block_size", "num_blocks"):
        if getattr(args, key) is not None:
            over[key] = getattr(args, key)
    if args.no_chunked_prefill:
        over["chunked_prefill"] = False
    if args.no_prefix_caching:
        over["prefix_caching"] = False

    def step_time(gpu: str | None) -> Any:
        if not args.preset:
            return None
        parts = args.preset.split("/")
        if gpu is None or guess.get("gpu") == gpu:
            return llm.presets.step_time(args.preset)
        if parts[0] == "splitwise" and len(parts) == 4:
            name = f"splitwise/{parts[1]}/{gpu}/{parts[3]}"
            if name in llm.presets.step_time_names():
                return llm.presets.step_time(name)
        raise InvalidArgumentError(f"--gpu {gpu}: no measured step time like {args.preset!r} "
                                   "for it (omit --preset for the roofline)")

    if model and gpus:
        reps = {g: llm.Replica.from_preset(model, g, tp, step_time=step_time(g), **over)
                for g in gpus}
        if len(reps) == 1:
            (g, rep), = reps.items()
            return rep, g
        return reps, None
    st = step_time(None)
    if st is None:
        raise InvalidArgumentError("--preset or --model and --gpu are required")
    if "num_blocks" not in over:
        raise InvalidArgumentError("--num-blocks (or --model and --gpu) is required")
    return llm.Replica(step_time=st, **over), None


def cmd_llm_plan(args: argparse.Namespace) -> int:
    """``qcore llm plan``: search, print the plan (text or strict JSON), exit 0 or 7."""
    from qcore import _json, llm
    from qcore.exceptions import InvalidArgumentError

    slo = _plan_slo(args)
    workload: Any
    if args.trace.startswith("poisson:"):
        try:
            rate = float(args.trace.split(":", 1)[1])
        except ValueError:
            raise InvalidArgumentError(
                f"TRACE_OR_SPEC {args.trace!r}: expected poisson:RATE") from None
        if not (math.isfinite(rate) and rate > 0):
            raise InvalidArgumentError(f"TRACE_OR_SPEC {args.trace!r}: RATE must be > 0")
        workload = _PoissonSpec(rate * args.rate_scale, args.requests, args.prompt_tokens,
                                args.output_tokens)
    else:
        workload = _load(args.trace, args)
        if args.rate_scale != 1.0:
            workload = workload.scale_rate(args.rate_scale)
    replica, gpu = _plan_replicas(args)
    show = None
    if args.progress or (not args.no_progress and sys.stderr.isatty()):
        def show(line: str) -> None:
            sys.stderr.write(f"qcore llm plan: {line}\n")
            sys.stderr.flush()

    client = None
    if args.dask:
        from qcore import dask as qd

        client = qd.client_from_arg(args.dask)
    try:
        if args.disaggregated:
            p = _plan_pools(args, workload, slo, replica, gpu, show)
        else:
            p = llm.plan(workload, slo, replica, routers=args.routers,
                         max_num_seqs=args.max_num_seqs,
                         max_num_batched_tokens=args.max_num_batched_tokens,
                         min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                         replications=args.replications, seed=args.seed,
                         confidence=args.confidence, decide_on=args.decide_on, gpu=gpu,
                         provider=args.provider, prices=args.prices, client=client, progress=show)
    finally:
        if client is not None:
            client.close()
    out = p.to_dict()
    out["config"] = {"trace": args.trace, "preset": args.preset, "model": args.model,
                     "gpu": args.gpu, "tp": args.tp}
    sus = None
    if args.sustained_rate and p.chosen is not None and not args.disaggregated:
        cfg = p.chosen.config
        base = replica[cfg["hardware"]] if isinstance(replica, dict) else replica
        base = dataclasses.replace(base, max_num_seqs=cfg["max_num_seqs"],
                                   max_num_batched_tokens=cfg["max_num_batched_tokens"])
        sus = llm.sustained_rate(workload, base, slo,
                                 llm.Fleet(replicas=p.chosen.replicas, router=cfg["router"]),
                                 replications=args.replications, seed=args.seed,
                                 confidence=args.confidence, decide_on=args.decide_on)
        out["sustained_rate"] = sus.to_dict()
    if args.format == "json":
        sys.stdout.write(_json.dumps(out, indent=1) + "\n")
    else:
        _print_plan(p, sus, args.trace)
    return 0 if p.found else EXIT_NO_PLAN


def _plan_pools(args: argparse.Namespace, workload: Any, slo: dict[str, float], replica: Any,
                gpu: str | None, show: Any) -> Any:
    """``llm plan --disaggregated``: the fewest GPUs in prefill and decode pools."""
    from qcore import llm
    from qcore.exceptions import InvalidArgumentError

    if isinstance(replica, dict):
        raise InvalidArgumentError("--disaggregated takes one --gpu")
    for flag, v in (("--routers", args.routers != ["least_requests"]), ("--max-num-seqs", args.max_num_seqs),
                    ("--max-num-batched-tokens", args.max_num_batched_tokens), ("--dask", args.dask),
                    ("--sustained-rate", args.sustained_rate)):
        if v:
            raise InvalidArgumentError(f"{flag} does not apply to --disaggregated")
    return llm.plan_disaggregated(workload, slo, replica, transfer=_transfer(args),
                                  max_prefill=args.max_prefill, max_decode=args.max_decode,
                                  replications=args.replications, seed=args.seed, confidence=args.confidence,
                                  decide_on=args.decide_on, gpu=gpu, provider=args.provider, prices=args.prices,
                                  progress=show)


def _ci_text(ci: Any) -> str:
    lo, est, hi = ci
    return f"{_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}]"


def _print_plan(p: Any, rate: Any, trace: str) -> None:
    out = sys.stdout
    objs = ", ".join(f"{o.name} <= {o.limit:g} s" for o in p.objectives)
    out.write(f"{trace}: plan for {objs}\n")
    out.write(f"  {p.method}; {p.confidence:g} intervals, decided on the {p.decide_on} "
              f"{'end (protects the SLO)' if p.decide_on == 'upper' else 'point'}\n")
    out.write(f"  offered rate {_fmt(p.offered_rate)} requests/s; replicas searched in "
              f"[{p.bounds[0]}, {p.bounds[1]}]\n")
    names = [o.name for o in p.objectives]
    head = ["config", "replicas", "gpus", *names, "meets", "$/h", "$/Mtok", "GPU-h"]
    rows = []
    for c in p.candidates:
        cfg = " ".join(f"{k}={v}" for k, v in c.config.items()
                       if k not in ("replicas", "gpus_per_replica", "gpus_per_prefill", "gpus_per_decode"))
        rows.append([cfg, str(c.replicas), str(c.gpus),
                     *[f"{_ci_text(c.quantiles[n])} {c.verdicts[n]}" for n in names],
                     ("yes" if c.meets else "no") + (" *" if c is p.chosen else ""),
                     _fmt(c.dollars_per_hour), _fmt(c.cost_per_mtok), _fmt(c.gpu_hours)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    out.write("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + "\n")
    for r in rows:
        out.write("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + "\n")
    if p.chosen is not None:
        c = p.chosen
        out.write(f"  plan: {c.replicas} replica(s), {c.gpus} GPU(s) "
                  f"({' '.join(f'{k}={v}' for k, v in c.config.items() if k != 'replicas')}); "
                  f"{_fmt(c.dollars_per_hour)} $/h, {_fmt(c.cost_per_mtok)} $/M output tokens\n")
    else:
        out.write("  plan: none within the search bounds\n")
    if p.ceilings is not None:
        ce = p.ceilings
        out.write(f"  analytic ceilings a replica (requests/s): token budget "
                  f"{_fmt(ce.token_budget)}, KV {_fmt(ce.kv)}, max_num_seqs "
                  f"{_fmt(ce.max_num_seqs)}; {ce.binding} binds\n")
    if rate is not None:
        out.write(f"  sustained rate of the plan: {_fmt(rate.rate)} requests/s under the "
                  f"objectives (analytic ceiling {_fmt(rate.ceiling)})\n")
    for n in p.notes:
        out.write(f"  note: {n}\n")
