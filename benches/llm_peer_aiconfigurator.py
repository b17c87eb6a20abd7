"""Side by side: NVIDIA AIConfigurator's ``recommend`` and ``qcore.llm.plan`` on one setting.

Setting: Llama-3.1-70B (bf16) on H100 SXM GPUs, vLLM, requests of 1,155 prompt and 211
output tokens (the means of the Azure LLM 2023 conversation hour) arriving at 5.53
requests/s (that hour's mean rate), TTFT ≤ 1 s and TPOT ≤ 100 ms.

AIConfigurator estimates step latencies from its measured per-operation performance
database and searches parallelism and batch size for the fewest GPUs that serve the
target rate within the SLA at steady state (mean TTFT/TPOT at a static batch).
``qcore.llm.plan`` simulates the vLLM V1 scheduler step by step under Poisson arrivals and
searches the replica count for every p99 (or p50) within its objective, on the upper end
of its confidence interval. To separate the two models, qcore runs with three step-time
inputs: a linear step time fitted to AIConfigurator's own ``estimate`` of the decode step
at batch 1 and 64 and of the prefill of 1 and 64 prompts (so only the fleet model
differs), the roofline of the preset, and SplitwiseSim's
measured Llama-2-70B tables (same layer shapes; measured in 2023).

AIConfigurator lives in its own environment (its dependencies stay out of qcore's):

    python -m venv /tmp/venv-aic && /tmp/venv-aic/bin/pip install aiconfigurator
    AICONFIGURATOR=/tmp/venv-aic/bin/aiconfigurator python benches/llm_peer_aiconfigurator.py

Without it (``AICONFIGURATOR`` unset and no ``aiconfigurator`` on the PATH) the script
says so and exits 0. It prints the Markdown of benches/results/llm_peer_aiconfigurator.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

ISL, OSL, RATE = 1155, 211, 5.53
TTFT_MS, TPOT_MS = 1000, 100
MODEL = "meta-llama/Meta-Llama-3.1-70B"
SYSTEM = "h100_sxm"


def aiconfigurator() -> str | None:
    """The aiconfigurator executable, or None."""
    exe = os.environ.get("AICONFIGURATOR") or shutil.which("aiconfigurator")
    return exe if exe and os.path.exists(exe) else None


def _run(exe: str, args: list[str]) -> tuple[str, float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    t = time.perf_counter()
    p = subprocess.run([exe, "cli", args[0], "--no-color", *args[1:]], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"aiconfigurator {' '.join(args)} failed:\n{p.stdout[-2000:]}"
                           f"\n{p.stderr[-2000:]}")
    return p.stdout + p.stderr, wall


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    if not m:
        raise RuntimeError(f"no {pattern!r} in aiconfigurator's output")
    return float(m.group(1).replace(",", ""))


def estimate(exe: str, tp: int, bs: int, mode: str) -> dict[str, float]:
    """AIConfigurator's ``estimate``: ``static_gen`` gives the decode step (TPOT) at batch
    ``bs``, ``static_ctx`` the prefill of ``bs`` prompts (TTFT)."""
    out, wall = _run(exe, ["estimate", "--model-path", MODEL, "--system", SYSTEM, "--backend",
                           "vllm", "--isl", str(ISL), "--osl", str(OSL), "--tp-size", str(tp),
                           "--batch-size", str(bs), "--estimate-mode", mode])
    key = "TPOT" if mode == "static_gen" else "TTFT"
    return {"ms": _num(key + r":\s+([\d.,]+) ms", out), "wall_s": wall}


def recommend(exe: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        out, wall = _run(exe, ["recommend", "--model", MODEL, "--system", SYSTEM, "--backend",
                               "vllm", "--isl", str(ISL), "--osl", str(OSL), "--ttft",
                               str(TTFT_MS), "--tpot", str(TPOT_MS), "--target-request-rate",
                               str(RATE), "--save-dir", d])
    agg = int(_num(r"(?<!dis)agg GPUs needed:\D*(\d+)", out))
    disagg = int(_num(r"disagg GPUs needed:\D*(\d+)", out))
    top: list[str] = []
    section = ""
    for line in out.splitlines():
        if "Top Configurations" in line:
            section = line.strip().split()[0]
        elif section == "agg" and not top and re.match(r"\|\s+1\s+\|", line):
            top = [c.strip() for c in line.strip().strip("|").split("|")]
    version = re.search(r"Loading AIConfigurator version: (\S+)", out)
    db = re.search(r"Perf-DB version: (\S+)", out)
    return {"agg_gpus": agg, "disagg_gpus": disagg, "agg_top": top, "wall_s": wall,
            "version": version.group(1) if version else "?", "perf_db": db.group(1) if db else "?"}


def fitted_linear(est: dict[tuple[int, str, int], dict[str, float]], tp: int) -> Any:
    """``Linear`` through AIConfigurator's decode step at batch 1 and 64 (``c0``,
    ``c_seq``) and the slope of its prefill time from 1 to 64 prompts (``c_tok``)."""
    from qcore import llm

    g1, g64 = est[(tp, "static_gen", 1)]["ms"], est[(tp, "static_gen", 64)]["ms"]
    x1, x64 = est[(tp, "static_ctx", 1)]["ms"], est[(tp, "static_ctx", 64)]["ms"]
    c_seq = (g64 - g1) / 63 * 1e-3
    return llm.Linear(c0=g1 * 1e-3 - c_seq, c_tok=(x64 - x1) / (63 * ISL) * 1e-3, c_seq=c_seq)


def qcore_plans(step_times: dict[str, dict[int, Any]]) -> list[dict[str, Any]]:
    """qcore's plan per step-time input and tensor-parallel degree, p99 and p50 objectives."""
    from qcore import llm

    def make(s: int) -> llm.Workload:
        return llm.Workload.poisson(rate=RATE, n=6000, prompt_tokens=ISL, output_tokens=OSL,
                                    seed=s)

    out = []
    for name, by_tp in step_times.items():
        for tp, st in by_tp.items():
            rep = llm.Replica.from_preset("llama-3-70b", "h100-80gb", tp, step_time=st)
            for q in ("p99", "p50"):
                slo = {f"ttft_{q}": TTFT_MS / 1e3, f"tpot_{q}": TPOT_MS / 1e3}
                t = time.perf_counter()
                p = llm.plan(make, slo, rep, replications=5, gpu="h100-80gb")
                wall = time.perf_counter() - t
                c = p.chosen
                out.append({"step_time": name, "tp": tp, "objective": q, "wall_s": wall,
                            "runs": sum(x.runs for x in p.candidates),
                            "replicas": c.replicas if c else None,
                            "gpus": c.gpus if c else None,
                            "ttft": c.quantiles[f"ttft_{q}"] if c else None,
                            "tpot": c.quantiles[f"tpot_{q}"] if c else None,
                            "cost_per_mtok": c.cost_per_mtok if c else None,
                            "ceiling": p.ceilings.rate if p.ceilings else None})
    return out


def main() -> int:
    exe = aiconfigurator()
    if exe is None:
        print("aiconfigurator is not installed (set AICONFIGURATOR or put it on the PATH): "
              "nothing to compare")
        return 0
    from qcore import llm

    est = {(tp, mode, bs): estimate(exe, tp, bs, mode) for tp in (4, 8)
           for mode in ("static_gen", "static_ctx") for bs in (1, 64)}
    rec = recommend(exe)
    fitted = {tp: fitted_linear(est, tp) for tp in (4, 8)}
    step_times = {
        "fitted to AIConfigurator's estimate": fitted,
        "roofline (llama-3-70b preset)": {tp: llm.Roofline.for_model("llama-3-70b", "h100-80gb", tp)
                                          for tp in (4, 8)},
        "SplitwiseSim measured (Llama-2-70B)": {
            tp: llm.presets.step_time(f"splitwise/llama2-70b/h100-80gb/tp{tp}") for tp in (4, 8)},
    }
    plans = qcore_plans(step_times)
    import qcore

    print(f"aiconfigurator {rec['version']} (perf DB vLLM {rec['perf_db']}); qcore "
          f"{qcore.__version__}; python {sys.version.split()[0]}\n")
    print("AIConfigurator `estimate` (vLLM, ISL 1155 / OSL 211): `static_gen` is the decode "
          "step (TPOT) at the batch, `static_ctx` the prefill of that many prompts (TTFT):\n")
    print("| TP | mode | batch | ms | wall (s) |\n|---|---|---|---|---|")
    for (tp, mode, bs), e in est.items():
        print(f"| {tp} | {mode} | {bs} | {e['ms']:.2f} | {e['wall_s']:.1f} |")
    print("\nThe same steps in qcore's step-time inputs (ms): decode step at batch 1 and 64 "
          "(context 1,260), prefill of one 1,155-token prompt:\n")
    print("| step time | TP | decode b=1 | decode b=64 | prefill 1,155 |\n|---|---|---|---|---|")
    for name, by_tp in step_times.items():
        for tp, st in by_tp.items():
            print(f"| {name} | {tp} | {st.duration(decode_ctx=[1260]) * 1e3:.2f} | "
                  f"{st.duration(decode_ctx=[1260] * 64) * 1e3:.2f} | "
                  f"{st.duration(prefill_tokens=[ISL]) * 1e3:.1f} |")
    print(f"\nAIConfigurator `recommend` at {RATE} requests/s, TTFT ≤ {TTFT_MS} ms, TPOT ≤ "
          f"{TPOT_MS} ms: **{rec['agg_gpus']} GPUs aggregated** (top: {' / '.join(rec['agg_top'][1:])}), "
          f"{rec['disagg_gpus']} GPUs disaggregated; wall {rec['wall_s']:.1f} s.\n")
    print("qcore `plan` (Poisson 5.53 /s, 6,000 requests, 5 replications with common random "
          "numbers, upper end of the 95 % interval):\n")
    print("| step time | TP | objectives | replicas | GPUs | TTFT [interval] (s) | TPOT [interval] (s) "
          "| ceiling a replica (req/s) | runs | wall (s) |\n|---|---|---|---|---|---|---|---|---|---|")

    def ci(v: Any) -> str:
        return "-" if v is None else f"{v[1]:.3f} [{v[0]:.3f}, {v[2]:.3f}]"

    for r in plans:
        print(f"| {r['step_time']} | {r['tp']} | {r['objective']} | {r['replicas']} | {r['gpus']} | "
              f"{ci(r['ttft'])} | {ci(r['tpot'])} | {r['ceiling']:.2f} | {r['runs']} | "
              f"{r['wall_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
