"""Replay a real LLM trace shipped in qcore.datasets (the Azure LLM conversation or code
hour, or the Mooncake conversation hour with its prefix-cache block hashes) on an
autoscaled Llama-2-70B fleet (H100 x 8 per replica, SplitwiseSim's measured step times)
under each autoscaling policy, and print the cost-vs-SLO tables of docs/llm.md
("Autoscaling on LLM signals").

    python benches/llm_autoscale_day.py                                # Azure conversation
    python benches/llm_autoscale_day.py --trace azure_llm_2023_code
    python benches/llm_autoscale_day.py --trace mooncake_conversation  # prefix caching on
    python benches/llm_autoscale_day.py --json                         # one JSON object a policy

Every number is the output of one seeded run: rerunning prints the same table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from qcore import autoscale, datasets, llm, sim
from qcore.llm.plan import gpu_price

PRESET = "splitwise/llama2-70b/h100-80gb/tp8"
RATE_SCALE = 1.0
SLO = llm.SLO(ttft=2.0, tpot=0.2)
COLD_START = sim.LogNormal(mean=180.0, cv=0.3)   # a 70B model load: about 3 minutes
BOUNDS = {"min_replicas": 1, "max_replicas": 8}
INITIAL = 2

#: (label, policy, metric); None: a static fleet of that many replicas.
POLICIES: list[tuple[str, autoscale.ScalingPolicy | int, str | dict[str, float] | None]] = [
    ("static 2", 2, None),
    ("static 3", 3, None),
    ("HPA waiting / 4", autoscale.HPA(target=4.0), "waiting"),
    ("HPA KV / 0.6", autoscale.HPA(target=0.6), "kv"),
    ("HPA max(waiting/4, KV/0.6)", autoscale.HPA(target=1.0), {"waiting": 4.0, "kv": 0.6}),
    ("KPA running / 40", autoscale.KPA(target=40.0, target_utilization=1.0), "running"),
    ("TT TTFT p99 / 1 s", autoscale.TargetTracking(target=1.0), "ttft_p99"),
    ("TT tokens/s / 600", autoscale.TargetTracking(target=600.0), "tokens_per_s"),
    ("Predictive (3 req/s a replica)", autoscale.Predictive(service_mean=1 / 3, slo=10 / 3),
     None),
]


def replica() -> llm.Replica:
    rep = llm.Replica.from_preset("llama-2-70b", "h100-80gb", 8,
                                  step_time=llm.presets.step_time(PRESET))
    return dataclasses.replace(rep, price_per_hour=gpu_price("h100-80gb"))


def run(label: str, policy: autoscale.ScalingPolicy | int,
        metric: str | dict[str, float] | None, w: llm.Workload, rep: llm.Replica) -> dict:
    fleet = llm.Fleet(replicas=policy if isinstance(policy, int) else INITIAL,
                      router="least_requests")
    auto = None
    if not isinstance(policy, int):
        auto = llm.Autoscale(policy, metric=metric if metric is not None else "kv",
                             cold_start=COLD_START, **BOUNDS)
    r = llm.simulate(w, rep, fleet, slo=SLO, autoscale=auto)
    active = None if r.scaling is None else r.scaling["ready"] + r.scaling["starting"]
    return {
        "policy": label,
        "gpu_hours": r.gpu_hours,
        "cost": r.cost,
        "ttft_p99": r.ttft.quantile(0.99),
        "tpot_p99": r.tpot.quantile(0.99),
        "slo_attainment": r.slo_attainment(SLO),
        "replicas_mean": fleet.replicas if active is None else float(active.mean()),
        "replicas_max": fleet.replicas if active is None else int(active.max()),
        "scale_events": r.scale_events,
        "finished": r.finished,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trace", default="azure_llm_2023_conv",
                    choices=["azure_llm_2023_conv", "azure_llm_2023_code", "mooncake_conversation"])
    args = ap.parse_args(argv)
    w = llm.Workload.read(datasets.path(args.trace)).scale_rate(RATE_SCALE)
    rep = replica()
    rows = [run(label, p, m, w, rep) for label, p, m in POLICIES]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    out = sys.stdout
    out.write(f"{args.trace}: {len(w)} requests over {float(w.arrival[-1] - w.arrival[0]) / 60:.0f} min"
              f"{' with prefix-cache block hashes' if w.hash_ids is not None else ''}; "
              f"{PRESET}, ${rep.price_per_hour:.2f} per GPU-hour, "
              f"SLO TTFT <= {SLO.ttft} s and TPOT <= {SLO.tpot} s\n\n")
    out.write("| policy | GPU-hours | cost ($) | TTFT p99 (s) | TPOT p99 (s) "
              "| SLO attainment | replicas mean / max | scale events |\n")
    out.write("|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for r in rows:
        out.write(f"| {r['policy']} | {r['gpu_hours']:.1f} | {r['cost']:.0f} "
                  f"| {r['ttft_p99']:.2f} | {r['tpot_p99']:.3f} | {r['slo_attainment']:.3f} "
                  f"| {r['replicas_mean']:.2f} / {r['replicas_max']} | {r['scale_events']} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
