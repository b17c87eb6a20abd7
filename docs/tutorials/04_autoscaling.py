"""Tutorial 4: capacity planning with Erlang C, then autoscalers replayed on a real day.

The day is 2024-12-03 of the Alibaba GenTD26 LoRA serving trace (alibaba/clusterdata,
cluster-trace-v2026-GenAI; shipped as qcore.datasets 'gentd26_lora'): every request of
that day with a positive execution time, replayed with its own arrival time and its own
measured execution time, one request per replica at a time. Cold starts are drawn from
the same dataset's base-model loading latencies (``basemodel_update_latency_anon``,
which its README calls the main component of a cold start).

The SLO: a request's response time (queueing + execution) within 120 s, p99.

Run:  python docs/tutorials/04_autoscaling.py
"""

from __future__ import annotations

import io
import tarfile

import _common as c
import numpy as np
import polars as pl

import qcore
import qcore.rules as qr
from qcore import autoscale, queueing, sim

trace_csv, cold_tgz = c.traces("gentd26_lora",
                                "gentd26_basemodel_update")
DAY, SLO, WAIT_SLO = "2024-12-03", 120.0, 10.0
log = c.gentd26(trace_csv)
day = log.filter((pl.col("day") == DAY) & (pl.col("outcome") != "incomplete") & (pl.col("latency") > 0))
t_first = float(day["start"].min())
# The simulator's clock starts at 0; shifting the day to start at 0 keeps the replayed
# records on the same clock as the arrivals.
arrivals = day.get_column("start").to_numpy() - t_first
work = day.get_column("latency").to_numpy()
with tarfile.open(cold_tgz) as tar:
    member = next(m for m in tar.getmembers() if m.isfile())
    fh = tar.extractfile(member)
    assert fh is not None
    cold = pl.read_csv(io.BytesIO(fh.read())).get_column("value").drop_nulls().to_numpy() / 1000.0
cold_start = sim.Empirical(cold)
print(f"{DAY}: {arrivals.size} requests, mean execution {work.mean():.1f} s, "
      f"p99 execution {np.quantile(work, 0.99):.0f} s")
print(f"cold start (base model load): median {np.median(cold):.1f} s, p90 {np.quantile(cold, 0.9):.1f} s, "
      f"from {cold.size} samples")

# ---------------------------------------------------------------------------------------
# 1. Erlang-C capacity planning.
#
# Model the replicas as M/M/c servers: Poisson arrivals at rate lambda, exponential
# service with the measured mean. The response-time SLO cannot be planned this way: an
# exponential service time with the measured mean has a p99 above 120 s on its own,
# whatever the replica count. So plan on the part capacity controls, the queueing delay: p99 of
# the wait <= 10 s. Plan once for the day's mean rate and once for its busiest hour.
# ---------------------------------------------------------------------------------------
c.section("1. Erlang-C plans (p99 wait <= 10 s)")
mu = 1.0 / work.mean()
print(f"an exponential service time with mean {work.mean():.1f} s has p99 {-np.log(0.01) / mu:.0f} s "
      f"(> the {SLO:.0f} s SLO): plan on the wait")
lam_day = arrivals.size / 86400.0
hourly = qcore.window_counts(arrivals, 3600.0, start=0.0, end=86400.0)
lam_peak = hourly.max() / 3600.0
plans = {}
for name, lam in (("mean rate", lam_day), ("peak hour", lam_peak)):
    n = queueing.min_servers_mmc(lam, mu, slo_quantile=0.99, slo_seconds=WAIT_SLO, target="wait")
    m = queueing.mmc(lam, mu, n)
    plans[name] = n
    print(f"{name:>9}: lambda {lam:.4f}/s ({lam * 3600:.0f}/h), offered load {lam / mu:.2f} -> {n} replicas "
          f"(P(wait) {m.p_wait:.3f}, p99 wait {m.wait_quantile(0.99):.1f} s, "
          f"Erlang C {queueing.erlang_c(n, lam / mu):.3f})")
print(f"hourly arrivals range from {hourly.min()} to {hourly.max()}: one fixed count is either "
      f"idle at night or short at the peak")

# ---------------------------------------------------------------------------------------
# 2. The same day replayed through autoscalers, with cold starts.
#
# `autoscale.compare` runs every policy on the same arrivals and the same work (common
# random numbers): HPA on utilization (Kubernetes defaults, target 70 %), KPA on
# concurrency (Knative defaults, 1 request per replica, scale to zero), the predictive
# policy (Holt forecast + Erlang-C provisioning for the p90 wait <= 10 s), target
# tracking on the request rate, and the two fixed Erlang-C plans as baselines.
# ---------------------------------------------------------------------------------------
c.section("2. Cost vs SLO on the real day (cold starts from the base-model load times)")
policies = {
    f"fixed {plans['mean rate']} (Erlang C, mean)": autoscale.Fixed(plans["mean rate"]),
    f"fixed {plans['peak hour']} (Erlang C, peak)": autoscale.Fixed(plans["peak hour"]),
    "HPA utilization 70%": autoscale.HPA(target=0.7),
    "KPA concurrency 1": autoscale.KPA(target=1.0),
    "predictive wait p90<=10s": autoscale.Predictive(wait_slo=WAIT_SLO, quantile=0.9),
    "target tracking rate": autoscale.TargetTracking(target=0.7 * mu),
}
common = {"slo": SLO, "initial_replicas": 2, "startup_delay": cold_start, "window": 300.0, "seed": 11}
table = autoscale.compare(arrivals, work, policies, **common).with_columns(
    replica_hours=pl.col("replica_seconds") / 3600.0)
with pl.Config(tbl_rows=20, tbl_cols=10, tbl_width_chars=160, float_precision=3):
    print(table.select("policy", "replica_hours", "mean_replicas", "slo_attainment", "p50", "p99", "p999",
                       "scale_events"))

# ---------------------------------------------------------------------------------------
# 3. Per-request evidence.
#
# A release gate decides on request logs, not on a summary. Each policy's scaling
# decisions (its event list) are replayed as a server schedule in the simulator with
# per-request records; the records are the log the policy would have produced. The
# p99 of the schedule replay is printed next to the policy run's p99 as a check.
# ---------------------------------------------------------------------------------------
c.section("3. Per-request logs from each policy's schedule")
frames = []
for name, policy in policies.items():
    run = autoscale.replay(arrivals, work, policy, **common)
    schedule = list(zip(run.events["t"].to_list(), run.events["to"].to_list(), strict=True))
    res = qcore.simulate(sim.Trace(arrivals), sim.Durations(work), servers=common["initial_replicas"],
                         server_schedule=schedule or None, startup_delay=cold_start, seed=common["seed"],
                         records=True)
    rec = res.records
    print(f"{name:>28}: policy run p99 {run.totals['p99']:6.1f} s, attainment {run.totals['slo_attainment']:.4f}"
          f" | schedule replay p99 {float(np.quantile(rec['response'].to_numpy(), 0.99)):6.1f} s, "
          f"attainment {float((rec['response'] <= SLO).mean()):.4f}")
    frames.append(pl.DataFrame({
        "start": rec["arrival"] + t_first, "latency": rec["response"],
        "outcome": np.where(rec["status"].cast(pl.String).to_numpy() == "completed", "ok", "error"),
        "endpoint": [name] * rec.height,
    }))
logs = pl.concat(frames)

# ---------------------------------------------------------------------------------------
# 4. The decision.
#
# Declared rule: p99 response <= 120 s per policy (the "endpoint" column names the
# policy here). The policy to deploy is the cheapest one whose decision is `pass`.
# ---------------------------------------------------------------------------------------
c.section("4. Decision by qcore.rules")
rules = qr.parse_rules({
    "defaults": {"owner": "image-serving", "version": "1"},
    "rule": [{"id": "p99-response", "metric": "p99", "threshold": SLO, "group_by": ["endpoint"],
              "description": "p99 response time (queue + execution) within the SLO"}],
})
decisions = qr.evaluate(logs, rules, now=float(logs["start"].max()))
c.show_decisions(decisions, evidence_of=None)
c.log_evidence(decisions, "04_autoscaling")
passing = decisions.filter(pl.col("status") == "pass").get_column("group").str.replace("endpoint=", "").to_list()
ranked = table.filter(pl.col("policy").is_in(passing)).sort("replica_seconds")
if ranked.height:
    best = ranked.row(0, named=True)
    idx = decisions["group"].to_list().index(f"endpoint={best['policy']}")
    print("evidence record of the chosen policy:")
    c.show_decisions(decisions[idx:idx + 1], evidence_of=0)
    cheapest = table.sort("replica_seconds").row(0, named=True)
    print(f"decision: deploy '{best['policy']}' ({best['replica_hours']:.1f} replica-hours, "
          f"p99 {best['p99']:.0f} s, attainment {best['slo_attainment']:.4f}).")
    if cheapest["policy"] != best["policy"]:
        row = decisions.filter(pl.col("group") == f"endpoint={cheapest['policy']}").row(0, named=True)
        noise = row["ci_lo"] is not None and row["ci_hi"] is not None and row["ci_lo"] <= SLO <= row["ci_hi"]
        print(f"next action: roll out '{best['policy']}'. The cheapest policy, '{cheapest['policy']}' "
              f"({cheapest['replica_hours']:.1f} replica-hours), is {row['status']} with p99 "
              f"{row['value']:.1f} s [{row['ci_lo']:.0f}, {row['ci_hi']:.0f}]"
              + ("; its interval contains the SLO, so the miss is within noise: replay more days before "
                 "switching to it for the savings." if noise else
                 "; tune it (more headroom or a lower target) and re-run this replay."))
    else:
        print(f"next action: roll out '{best['policy']}'.")
else:
    print("decision: no policy meets the gate; next action: escalate - raise the replica floor or "
          "relax the SLO, and re-run this replay.")

# ---------------------------------------------------------------------------------------
# Plot (only with matplotlib): replicas over the day for two policies, with arrivals.
# ---------------------------------------------------------------------------------------
plt = c.pyplot()
if plt is None:
    c.no_plot_note()
else:
    fig, ax = plt.subplots(figsize=(10, 4))
    for name in ("HPA utilization 70%", "KPA concurrency 1", "predictive wait p90<=10s"):
        tl = autoscale.replay(arrivals, work, policies[name], **common).timeline
        ax.step((tl["start"].to_numpy() - tl["start"][0]) / 3600.0, tl["ready"], where="post", label=name)
    ax2 = ax.twinx()
    counts = qcore.window_counts(arrivals, 300.0, start=0.0, end=86400.0)
    ax2.bar(np.arange(counts.size) * 300.0 / 3600.0, counts, width=300.0 / 3600.0, align="edge",
            color="grey", alpha=0.3)
    ax2.set_ylabel("arrivals per 5 min")
    ax.set_xlabel(f"hours since the first request of {DAY}"); ax.set_ylabel("ready replicas")
    ax.set_title("GenTD26: replicas under three autoscalers"); ax.legend(loc="upper left")
    c.save(fig, "04_autoscaling.png")
