"""Tutorial 6: LLM serving: plan a fleet for a TTFT/TPOT SLO, price it, compare routers.

An LLM replica is not a server that holds one request at a time: it runs one step after
another, and each step serves every running request at once (a prompt chunk for those in
prefill, one token for those in decode), within a token budget, a cap on sequences and
the KV cache. `qcore.llm` simulates that engine (vLLM V1's scheduler) and a routed fleet
of replicas; `qcore.llm.plan` searches the fewest replicas whose every SLO quantile holds
on the upper end of its confidence interval, and prices each candidate.

Traffic:
- the Azure LLM inference trace 2023, conversation service (Patel et al., "Splitwise",
  ISCA 2024; CC BY 4.0; shipped as qcore.datasets 'azure_llm_2023_conv'): one hour,
  19,366 requests with their real arrival times and token counts;
- the Mooncake conversation trace (Qin et al., FAST 2025; Apache-2.0; shipped as
  'mooncake_conversation'), whose requests carry the hash ids of their 512-token prompt
  blocks, so the prefix cache and prefix-aware routing can be replayed.

Step times: SplitwiseSim's measured tables for Llama-2-70B on 8 GPUs (MIT; shipped as
`qcore.llm.presets`), and the roofline of Llama-3-8B on an H100 for Mooncake. Prices:
the editable table `qcore.llm.prices()` (each default with its source and date).

Run:  python docs/tutorials/06_llm_serving.py
"""

from __future__ import annotations

import dataclasses

import _common as c
import polars as pl

import qcore.rules as qr
from qcore import llm

conv_csv, mooncake_jsonl = c.traces("azure_llm_2023_conv", "mooncake_conversation")
SLO = {"ttft_p99": 1.0, "tpot_p99": 0.1}      # seconds: first token within 1 s, 100 ms a token

# ---------------------------------------------------------------------------------------
# 1. Plan a fleet for the Azure conversation hour.
#
# One replica is Llama-2-70B on 8 GPUs (tensor parallel 8) with SplitwiseSim's measured
# step times, vLLM V1 defaults and KV blocks from memory. The plan searches the replica
# count on H100s and on A100s. It starts at the analytic lower bound (offered rate /
# the per-replica ceiling), and every candidate's p99s come with the distribution-free
# interval over the trace's requests; a candidate meets an objective only when the
# upper end of that interval does (the side that protects the SLO).
# ---------------------------------------------------------------------------------------
c.section("1. The fewest GPUs for TTFT p99 <= 1 s and TPOT p99 <= 100 ms (Azure conversation)")
conv = llm.Workload.read(conv_csv)
hardware = {
    gpu: llm.Replica.from_preset("llama-2-70b", gpu, 8,
                                 step_time=llm.presets.step_time(f"splitwise/llama2-70b/{gpu}/tp8"))
    for gpu in ("h100-80gb", "a100-80gb")
}
for gpu, rep in hardware.items():
    ce = llm.ceilings(conv, rep)
    print(f"{gpu}: {rep.num_blocks} KV blocks a replica; analytic ceilings {ce.token_budget:.2f} "
          f"(token budget), {ce.kv:.2f} (KV), {ce.max_num_seqs:.2f} (max_num_seqs) requests/s; "
          f"{ce.binding} binds")
plan = llm.plan(conv, SLO, hardware, routers="least_requests")
print(f"offered {plan.offered_rate:.2f} requests/s; {plan.method}")
table = plan.table()
with pl.Config(tbl_rows=20, tbl_cols=20, tbl_width_chars=200, float_precision=3):
    print(table.select("hardware", "replicas", "gpus", "ttft_p99", "ttft_p99_lo", "ttft_p99_hi",
                       "ttft_p99_verdict", "tpot_p99", "tpot_p99_hi", "tpot_p99_verdict", "meets"))
chosen = plan.chosen
assert chosen is not None
print(f"plan: {chosen.replicas} replicas of {chosen.config['hardware']} x 8 = {chosen.gpus} GPUs "
      f"(decided on the {plan.decide_on} end of the {plan.confidence:.0%} intervals)")
for note in plan.notes:
    print(f"note: {note}")

# ---------------------------------------------------------------------------------------
# 2. Price it.
#
# $/hour is the fleet's GPUs at the price table's $/GPU-hour; $/M output tokens divides
# it by the output tokens served per hour; GPU-hours cover the hour of traffic. The plan
# picks the fewest GPUs; the cheapest per token can differ (the A100 hour is cheaper).
# The highest arrival rate the chosen fleet sustains under the same objectives
# (bisection on the same requests, faster or slower) is reported beside the fleet's
# analytic ceiling: the headroom before the SLO breaks.
# ---------------------------------------------------------------------------------------
c.section("2. Cost: $/hour, $/M output tokens, GPU-hours")
prices = llm.prices()
print(prices.select("gpu", "instance", "price_per_gpu_hour", "as_of").filter(
    pl.col("gpu").is_in(list(hardware))))
with pl.Config(tbl_rows=20, tbl_cols=20, tbl_width_chars=200, float_precision=2):
    print(table.filter(pl.col("meets")).select("hardware", "replicas", "gpus", "token_throughput",
                                                "dollars_per_hour", "cost_per_mtok", "gpu_hours"))
cheapest = min((c_ for c_ in plan.candidates if c_.meets), key=lambda c_: c_.cost_per_mtok)
print(f"fewest GPUs: {chosen.config['hardware']} at {chosen.cost_per_mtok:.1f} $/M tokens; cheapest "
      f"per token: {cheapest.replicas} x {cheapest.config['hardware']} at {cheapest.cost_per_mtok:.1f} $/M")
rep = hardware[chosen.config["hardware"]]
fleet = llm.Fleet(replicas=chosen.replicas, router="least_requests")
headroom = llm.sustained_rate(conv, rep, SLO, fleet, rel_tol=0.03)
print(f"the plan sustains {headroom.rate:.2f} requests/s under the SLO "
      f"({headroom.rate / plan.offered_rate:.2f}x the trace); analytic ceiling "
      f"{headroom.ceiling:.2f} requests/s ({headroom.ceilings.binding} binds)")

# ---------------------------------------------------------------------------------------
# 3. Routers with prefix caching (Mooncake).
#
# Mooncake's conversation requests share prompt prefixes (the same 512-token hash ids).
# A replica keeps computed prompt blocks in its KV cache; a router that sends a request
# where its prefix is cached (prefix_affinity) saves that prefill. The first 2,000
# requests (about 11 minutes), Llama-3-8B on one H100 a replica (roofline step time),
# TTFT p99 <= 5 s: the plan searches replicas for each router.
# ---------------------------------------------------------------------------------------
c.section("3. Routers with prefix caching on Mooncake: replicas for TTFT p99 <= 5 s")
mooncake = llm.Workload.read(mooncake_jsonl).head(2000)
small = llm.Replica.from_preset("llama-3-8b", "h100-80gb")
routers = ["round_robin", "least_requests", "prefix_affinity"]
mplan = llm.plan(mooncake, {"ttft_p99": 5.0}, small, routers=routers, gpu="h100-80gb",
                 min_replicas=2, max_replicas=6)
fewest = {r: min((c_.replicas for c_ in mplan.candidates if c_.config["router"] == r and c_.meets),
                 default=None) for r in routers}
for r in routers:
    print(f"{r:>16}: {fewest[r]} replicas")
assert mplan.chosen is not None
size = mplan.chosen.replicas
rows = []
for r in routers:
    res = llm.simulate(mooncake, small, llm.Fleet(replicas=size, router=r))
    lo, est, hi = res.quantile_ci("ttft", 0.99)
    rows.append({"router": r, "replicas": size, "cache_hit_rate": res.cache_hit_rate,
                 "ttft_p99": est, "ttft_p99_lo": lo, "ttft_p99_hi": hi,
                 "preemptions": res.preemptions})
routed = pl.DataFrame(rows)
with pl.Config(tbl_cols=10, tbl_width_chars=160, float_precision=3):
    print(routed)
print(f"plan: {size} replicas with {mplan.chosen.config['router']}")

# ---------------------------------------------------------------------------------------
# 4. The decision.
#
# The plan's objectives become rules (`plan.rules`: ttft_p99 and tpot_p99, decided on
# the upper end of the interval, as the plan decided), evaluated on the request logs of
# the chosen fleet and of one replica fewer, replayed on the Azure hour.
# ---------------------------------------------------------------------------------------
c.section("4. Decision by qcore.rules")
rules = [dataclasses.replace(r, group_by=("fleet",))
         for r in plan.rules(owner="llm-capacity", version="1")]
logs = []
for n in (chosen.replicas, chosen.replicas - 1):
    res = llm.simulate(conv, rep, llm.Fleet(replicas=n, router="least_requests"))
    logs.append(qr.metrics.llm_log(res).with_columns(
        fleet=pl.lit(f"{n} x 8 {chosen.config['hardware']}")))
decisions = qr.evaluate(pl.concat(logs), rules, now=float(conv.arrival[-1]))
c.show_decisions(decisions, evidence_of=0)
c.log_evidence(decisions, "06_llm_serving")
by_fleet = {g.replace("fleet=", ""): qr.overall_action(decisions.filter(pl.col("group") == g))
            for g in decisions["group"].unique(maintain_order=True)}
for fl, action in by_fleet.items():
    print(f"{fl}: {action}")
hw = chosen.config["hardware"]
name, fewer = f"{chosen.replicas} x 8 {hw}", f"{chosen.replicas - 1} x 8 {hw}"
if by_fleet[name] == "accept":
    print(f"next action: deploy {name} ({chosen.gpus} GPUs, {chosen.dollars_per_hour:.0f} $/h, "
          f"{chosen.cost_per_mtok:.1f} $/M output tokens) behind least_requests; one replica "
          f"fewer gets {by_fleet[fewer]}.")
else:
    print(f"next action: {by_fleet[name]}: the planned fleet does not pass its own rules; re-plan.")

# ---------------------------------------------------------------------------------------
# Plot (only with matplotlib): Mooncake TTFT p99 against replicas, per router.
# ---------------------------------------------------------------------------------------
plt = c.pyplot()
if plt is None:
    c.no_plot_note()
else:
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in routers:
        pts = sorted((c_.replicas, c_.quantiles["ttft_p99"]) for c_ in mplan.candidates
                     if c_.config["router"] == r)
        xs = [p[0] for p in pts]
        est = [p[1][1] for p in pts]
        err = [[p[1][1] - (p[1][0] or p[1][1]) for p in pts], [(p[1][2] or p[1][1]) - p[1][1] for p in pts]]
        ax.errorbar(xs, est, yerr=err, marker="o", capsize=3, label=r)
    ax.axhline(5.0, color="grey", linestyle="--", label="objective")
    ax.set_xticks(range(mplan.bounds[0], mplan.bounds[1] + 1))
    ax.set_yscale("log"); ax.set_xlabel("replicas (1 H100 each)"); ax.set_ylabel("TTFT p99 (s)")
    ax.set_title("Mooncake conversation: TTFT p99 by router (95 % intervals)"); ax.legend()
    c.save(fig, "06_llm_serving.png")
