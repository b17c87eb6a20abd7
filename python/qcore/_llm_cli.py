"""The ``qcore llm`` subcommands (registered by :mod:`qcore.cli`).

``qcore llm simulate TRACE_OR_SPEC --preset NAME --replicas N --router R`` replays a
trace (Azure LLM 2023 CSV, Mooncake JSON lines, or any CSV/Parquet/NDJSON with arrival,
prompt and output columns) or a synthetic spec (``poisson:RATE``) on the LLM engine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

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
    s.add_argument("--no-chunked-prefill", action="store_true")
    s.add_argument("--no-prefix-caching", action="store_true")
    s.add_argument("--replicas", type=int, default=1)
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
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.add_argument("--no-progress", action="store_true",
                   help="no progress bar (shown on a terminal for runs of 100,000+ requests)")
    s.set_defaults(func=cmd_llm_simulate)
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
                                          "max_num_batched_tokens")
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
        fleet = llm.Fleet(replicas=args.replicas, router=args.router,
                          staleness=args.staleness, seed=args.seed)
    slo = None
    if args.slo_ttft or args.slo_tpot or args.slo_e2e:
        slo = llm.SLO(ttft=args.slo_ttft, tpot=args.slo_tpot, e2e=args.slo_e2e)
    show = None
    if not args.no_progress and sys.stderr.isatty() and len(w) >= 100_000:
        from qcore.report import _progress_printer

        bar = _progress_printer(len(w), True)
        show = lambda done, total: bar(done)  # noqa: E731
    r = llm.simulate(w, rep, fleet, slo=slo, progress=show)
    s = r.summary()
    s["config"] = {"trace": args.trace, "mode": args.mode, "preset": args.preset,
                   "replicas": r.fleet.replicas,
                   "router": args.router, "num_blocks": rep.num_blocks,
                   "max_num_batched_tokens": rep.max_num_batched_tokens,
                   "max_num_seqs": rep.max_num_seqs, "block_size": rep.block_size,
                   "gpus_per_replica": rep.gpus}
    if args.format == "json":
        print(json.dumps(s, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x))
        return 0
    out = sys.stdout
    c = s["config"]
    out.write(f"{c['trace']}: {s['requests']} requests on {c['replicas']} replica(s), "
              f"router {c['router']}" + ("" if c["mode"] == "vllm_v1" else f", mode {c['mode']}")
              + "\n")
    out.write(f"  replica: {c['num_blocks']} KV blocks of {c['block_size']} tokens, budget "
              f"{c['max_num_batched_tokens']} tokens, <= {c['max_num_seqs']} sequences\n")
    out.write(f"  finished {s['finished']}, rejected {s['rejected']}, preemptions "
              f"{s['preemptions']}, prefix-cache hit rate {_fmt(s['cache_hit_rate'])}\n")
    out.write(f"  throughput {_fmt(s['token_throughput'])} output tokens/s, "
              f"{_fmt(s['request_throughput'])} requests/s over {_fmt(s['duration_s'])} s\n")
    out.write(f"  {'metric':<6} {'p50':>10} {'p90':>10} {'p99':>10} {'mean':>10}  (seconds)\n")
    for name in ("ttft", "tpot", "itl", "e2e", "queue"):
        q = s[name]
        if q is None:
            continue
        out.write(f"  {name:<6} {_fmt(q['p50']):>10} {_fmt(q['p90']):>10} {_fmt(q['p99']):>10} "
                  f"{_fmt(q['mean']):>10}\n")
    if "cost_per_mtok" in s:
        out.write(f"  cost {_fmt(s['cost_per_mtok'])} $/M output tokens (indicative GPU prices)\n")
    if "goodput" in s:
        g = s["goodput"]
        out.write(f"  goodput {_fmt(g['requests_per_s'])} requests/s, {_fmt(g['tokens_per_s'])} "
                  f"tokens/s; SLO attainment {_fmt(g['attainment'])}\n")
    return 0
