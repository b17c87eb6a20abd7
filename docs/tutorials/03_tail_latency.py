"""Tutorial 3: tail latency (p99, p999) with confidence intervals, on GenTD26.

The Alibaba GenTD26 LoRA serving trace (alibaba/clusterdata, cluster-trace-v2026-GenAI;
shipped as qcore.datasets 'gentd26_lora') gives each request's execution time and the
base model (``checkpoint_model_version_id``) it ran on. Tail latency is where SLOs live
and where estimates are weakest: a p999 from a thousand requests is one request's
latency, not a measurement. This tutorial puts an interval on every tail estimate,
computes how many requests a p999 needs, shows how fan-out pushes the tail into the
median, and why p99s of replicas must never be averaged.

Execution times are recorded in whole seconds, so many requests tie; the order-statistic
intervals below remain valid bounds on the quantile of that recorded distribution.

Run:  python docs/tutorials/03_tail_latency.py
"""

from __future__ import annotations

import _common as c
import numpy as np
import polars as pl

import qcore
import qcore.rules as qr

(trace_csv,) = c.traces("gentd26_lora")
log = c.gentd26(trace_csv)
ok = log.filter(pl.col("outcome") == "ok")
lat = ok.get_column("latency").to_numpy()
print(f"{ok.height} completed requests on {ok['model_version'].n_unique()} base models")

# ---------------------------------------------------------------------------------------
# 1. p99 and p999 per model version, each with a distribution-free 95 % interval.
#
# `quantile_ci` picks two order statistics whose ranks bracket the true quantile with at
# least 95 % probability, whatever the distribution. When the sample is too small for a
# bound, the bound is None: the data cannot support that claim.
# ---------------------------------------------------------------------------------------
c.section("1. p99 / p999 per model version (95% distribution-free CIs)")
top = ok.group_by("model_version").len().sort(["len", "model_version"], descending=[True, False]).head(6)
versions = top.get_column("model_version").to_list()


def fmt(ci: qcore.QuantileCI) -> str:
    lo = "  none" if ci.lo is None else f"{ci.lo:6.0f}"
    hi = "none  " if ci.hi is None else f"{ci.hi:<6.0f}"
    return f"{ci.estimate:6.1f} [{lo}, {hi}]"


print(f"{'version':>8} {'n':>6}   {'p99 [95% CI]':>22}   {'p999 [95% CI]':>22}")
for v in versions + ["(all)"]:
    x = lat if v == "(all)" else ok.filter(pl.col("model_version") == v).get_column("latency").to_numpy()
    print(f"{v:>8} {x.size:6d}   {fmt(qcore.quantile_ci(x, 0.99)):>22}   {fmt(qcore.quantile_ci(x, 0.999)):>22}")

# ---------------------------------------------------------------------------------------
# 2. The sample size a p999 needs.
#
# A two-sided distribution-free interval for the q-quantile exists only once
# q^n <= alpha/2: below that, even the largest observation is not an upper bound at
# 95 %. For p999 that is thousands of requests; for a one-sided (upper) bound slightly
# fewer. Subsamples of the real latencies show the interval closing as n grows.
# ---------------------------------------------------------------------------------------
c.section("2. How many requests a tail estimate needs")
for q in (0.99, 0.999, 0.9999):
    print(f"q = {q}: two-sided CI needs n >= {qcore.min_sample_size(q)}, "
          f"upper bound alone n >= {qcore.min_sample_size(q, two_sided=False)}")
rng = np.random.default_rng(3)
need = qcore.min_sample_size(0.999)
for n in (1000, need - 1, need, 10_000, lat.size):
    sub = lat if n == lat.size else rng.choice(lat, size=n, replace=False)
    print(f"  p999 from {n:6d} requests: {fmt(qcore.quantile_ci(sub, 0.999))}")

# ---------------------------------------------------------------------------------------
# 3. Fan-out amplification.
#
# A request that waits for n independent back-end calls is as slow as the slowest. The
# chance that at least one of them exceeds the back-end p99 is 1 - 0.99^n, and to keep
# the end-to-end p99 at the back-end's p99 level each back-end must meet its
# 0.99^(1/n) quantile. We check the formula against the real latencies: draw n
# latencies per simulated request and take the max.
# ---------------------------------------------------------------------------------------
c.section("3. Fan-out amplification (real latencies, n independent back-ends)")
p99_one = float(np.quantile(lat, 0.99))
share_above = float((lat > p99_one).mean())  # ties make this a little under 1 %
print(f"back-end p99 = {p99_one:.0f} s; share of single calls above it = {share_above:.4f}")
print(f"{'n':>4} {'P(any > p99) formula':>22} {'measured':>9} {'end-to-end p99':>15} {'needed per-back-end q':>22}")
for n in (1, 5, 10, 50, 100):
    draws = rng.choice(lat, size=(20_000, n)).max(axis=1)
    formula = 1.0 - (1.0 - share_above) ** n  # fanout_probability with the measured level
    print(f"{n:4d} {formula:22.4f} {float((draws > p99_one).mean()):9.4f} "
          f"{float(np.quantile(draws, 0.99)):15.0f} {qcore.fanout_quantile(n, 0.99):22.6f}")
print(f"qcore.fanout_probability(100, 0.99) = {qcore.fanout_probability(100, 0.99):.4f}: at 100 back-ends "
      f"most requests see at least one back-end's tail.")

# ---------------------------------------------------------------------------------------
# 4. Never average p99s across replicas: merge the sketches.
#
# Each base model is served by its own pool of replicas, and each pool reports its p99.
# The mean of those p99s is not the p99 of the traffic: it weighs the smallest
# pool like the largest, and it averages tails, which do not add. Each pool should
# ship a QuantileSketch instead; merging sketches is exact up to the sketch's 1 %
# relative accuracy.
# ---------------------------------------------------------------------------------------
c.section("4. p99 of all traffic: averaged per-pool p99s vs merged sketches")
codes = ok.get_column("model_version").cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
pools = [s for s in qcore.sketch_groups(codes, lat, relative_accuracy=0.01) if s.count > 0]
pool_p99 = np.array([float(s.quantile(0.99)) for s in pools])
weights = np.array([s.count for s in pools])
merged = qcore.QuantileSketch.merge_all(pools)
exact = float(np.quantile(lat, 0.99))
print(f"{len(pools)} pools, {int(weights.min())} to {int(weights.max())} requests each")
print(f"mean of the pools' p99s           : {pool_p99.mean():7.1f} s")
print(f"request-weighted mean of the p99s : {float(np.average(pool_p99, weights=weights)):7.1f} s")
print(f"p99 of the merged sketch          : {float(merged.quantile(0.99)):7.1f} s")
print(f"exact p99 of all requests (numpy) : {exact:7.1f} s")
ci = qcore.sketch_quantile_ci(merged, 0.99)
print(f"merged sketch p99 with its 95% CI : {ci.estimate:.1f} s [{ci.lo:.1f}, {ci.hi:.1f}]")

# ---------------------------------------------------------------------------------------
# 5. The release decision.
#
# Declared rules, per model version: p99 <= 120 s and p999 <= 300 s, decided on the
# upper end of the 95 % interval (a conservative gate: pass only if the data show it).
# A version with too few requests for a p999 gets `insufficient_evidence`, whose
# action is to escalate; it never passes by default.
# ---------------------------------------------------------------------------------------
c.section("5. Decision by qcore.rules (top 6 model versions)")
rules = qr.parse_rules({
    "defaults": {"owner": "image-serving", "version": "2"},
    "rule": [
        {"id": "p99-per-version", "metric": "p99", "threshold": 120.0, "decide_on": "upper",
         "group_by": ["model_version"]},
        {"id": "p999-per-version", "metric": "p999", "threshold": 300.0, "decide_on": "upper",
         "group_by": ["model_version"]},
    ],
})
frame = log.filter(pl.col("model_version").is_in(versions)).select(
    "start", "end", "latency", "outcome", "model_version")
decisions = qr.evaluate(frame, rules, now=float(frame["start"].max()))
c.show_decisions(decisions, evidence_of=decisions["status"].to_list().index("insufficient_evidence")
                 if "insufficient_evidence" in decisions["status"].to_list() else 0)
c.log_evidence(decisions, "03_tail_latency")
action = qr.overall_action(decisions)
print(f"overall action: {action}")
short = decisions.filter(pl.col("status") == "insufficient_evidence")
failed = decisions.filter(pl.col("status") == "fail")
if failed.height:
    print("next action: block the release for " + ", ".join(failed["group"].to_list())
          + "; investigate the slow path of those versions.")
if short.height:
    print("next action: escalate " + ", ".join(short["group"].unique(maintain_order=True).to_list())
          + f": collect at least {short['min_n'].max()} requests per version (or decide on p99 only) "
            "before a p999 gate can pass.")
if not failed.height and not short.height:
    print("next action: release; every version meets both gates.")

# ---------------------------------------------------------------------------------------
# Plot (only with matplotlib): the p999 interval narrowing with the sample size.
# ---------------------------------------------------------------------------------------
plt = c.pyplot()
if plt is None:
    c.no_plot_note()
else:
    ns = np.unique(np.geomspace(need, lat.size, 12).astype(int))
    cis = [qcore.quantile_ci(rng.choice(lat, size=n, replace=False), 0.999) for n in ns]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(ns, [ci_.lo for ci_ in cis], [ci_.hi for ci_ in cis], alpha=0.3, label="95% CI")
    ax.plot(ns, [ci_.estimate for ci_ in cis], marker="o", label="p999 estimate")
    ax.set_xscale("log"); ax.set_xlabel("requests in the sample"); ax.set_ylabel("seconds")
    ax.set_title("GenTD26 p999: interval vs sample size"); ax.legend()
    c.save(fig, "03_tail_latency.png")
