"""Tutorial 2: Little's law on the Alibaba GenTD26 request log.

The Alibaba GenTD26 LoRA serving trace (text-to-image requests; alibaba/clusterdata,
cluster-trace-v2026-GenAI; shipped as qcore.datasets 'gentd26_lora') records, for
every request, its creation time and its execution time. That is enough to know how
many requests were in the system at every instant, and Little's law ties the three
numbers a dashboard shows together: L (mean number in the system) = lambda (arrival
rate) x W (mean time in the system). When the three come from different pipelines and
do not agree, one of them is wrong.

Run:  python docs/tutorials/02_littles_law.py
"""

from __future__ import annotations

import json

import _common as c
import numpy as np
import polars as pl

import qcore
import qcore.rules as qr

(trace_csv,) = c.traces("gentd26_lora")
log = c.gentd26(trace_csv)
# Each request is in the system from its creation until its execution ends. Pending and
# still-processing rows have no execution time; they are left out here.
done = log.filter(pl.col("outcome") == "ok")
start = done.get_column("start").to_numpy()
end = done.get_column("end").to_numpy()
print(f"{log.height} rows, {done.height} completed; "
      f"{log['day'].min()} to {log['day'].max()} ({log['day'].n_unique()} days)")

# ---------------------------------------------------------------------------------------
# 1. The whole log. L is the exact time average of the in-flight count (the sum of the
# request intervals divided by the window), lambda the arrivals per second, W their mean
# time in the system. Over the log's own span every interval lies inside the window, so
# L = lambda W holds as an identity: the gap is zero up to rounding.
# ---------------------------------------------------------------------------------------
c.section("1. L vs lambda x W over the whole log")
whole = qcore.littles_law(start, end)
print(f"lambda = {whole.arrival_rate:.6f}/s  W = {whole.mean_response:.2f} s  "
      f"lambda*W = {whole.lambda_w:.4f}  L = {whole.L:.4f}  gap = {whole.gap:.2e}  holds = {whole.holds}")
peak = qcore.peak_in_flight(start, end)
print(f"peak in flight: {peak.peak} requests at t = {peak.time:.0f} "
      f"({pl.from_epoch(pl.Series([int(peak.time)]), time_unit='s')[0]}, trace clock)")

# ---------------------------------------------------------------------------------------
# 2. One day. In a window, requests that straddle its edges make L and lambda W differ;
# `edge_term` is that difference exactly and `edge_bound` bounds it from the log alone.
# A small bound means the window is long enough for lambda W to stand in for L.
# ---------------------------------------------------------------------------------------
c.section("2. The busiest day")
per_day = done.group_by("day").len().sort("len", descending=True)
busiest = per_day.row(0)[0]
t0 = float(done.filter(pl.col("day") == busiest)["start"].min() // 86400 * 86400)
t1 = t0 + 86400.0
day = qcore.littles_law(start, end, t0=t0, t1=t1)
print(f"{busiest}: {day.arrivals} arrivals  lambda*W = {day.lambda_w:.4f}  L = {day.L:.4f}  "
      f"gap = {day.gap:.2e}  edge term {day.edge_term:+.2e} (bound {day.edge_bound:.2e})  flags {day.flags}")
by_type = qcore.littles_law_by(done.filter((pl.col("start") >= t0) & (pl.col("start") < t1)),
                               "start", "end", "endpoint")
print(by_type.select("endpoint", "arrivals", "L", "arrival_rate", "mean_response", "lambda_w", "gap", "holds")
      .sort("endpoint"))

# ---------------------------------------------------------------------------------------
# 3. A log with rows missing.
#
# Take the same day and lose 5 % of its rows at random, as a lossy log shipper would.
# L, lambda and W all shrink or stay put together, and Little's law still holds on what
# is left: the log alone cannot tell. What catches it is an independent measurement of
# L: an in-flight gauge (the server's own "requests in progress" metric, scraped every
# 60 s). GenTD26's monitoring samples cover other dates than its request log, so here
# the gauge is the true system's in-flight count sampled from the complete log; in
# production it is the metric your servers export.
# ---------------------------------------------------------------------------------------
c.section("3. The same check on a log with 5 % of the rows missing")
gauge_t = np.arange(t0, t1, 60.0)
gauge_n = qcore.in_flight(start, end, gauge_t).astype(np.float64)
rng = np.random.default_rng(8)
keep = rng.random(start.size) >= 0.05
logs = {"complete": (start, end), "5% rows lost": (start[keep], end[keep])}
results = {}
for name, (s, e) in logs.items():
    alone = qcore.littles_law(s, e, t0=t0, t1=t1)
    r = qcore.littles_law(s, e, t0=t0, t1=t1, in_flight_times=gauge_t, in_flight_counts=gauge_n)
    results[name] = r
    g = r.gauge
    lo, hi = g.discrepancy_ci
    print(f"{name:>13}: log alone: gap {alone.gap:.2e} holds={alone.holds} | against the gauge: "
          f"logs mean {g.logs_mean:.3f} vs gauge {g.gauge_mean:.3f}, discrepancy {g.discrepancy:+.3f} "
          f"[{lo:+.3f}, {hi:+.3f}], flags {r.flags}")

# ---------------------------------------------------------------------------------------
# 4. The decision.
#
# First, the rules engine over each log: a `littles_gap` rule on the last day of the
# log. It passes on both, because the check runs on the log alone. Then the gauge
# comparison, judged by a rule declared the same way: the logs' in-flight count must
# stay within 2 % of the gauge (with 95 % confidence). A violation is an
# `inconsistent` decision and its action is to escalate: do not trust any rate, latency
# or concurrency figure from this log until the missing rows are found.
# ---------------------------------------------------------------------------------------
c.section("4. Decision by qcore.rules")
rules = qr.parse_rules({
    "defaults": {"owner": "observability", "version": "1"},
    "rule": [{"id": "littles-law-last-day", "metric": "littles_gap", "threshold": 0.02, "window": "1d"}],
})
day_rows = {"complete": done, "5% rows lost": done.filter(pl.Series(keep))}
for name, frame in day_rows.items():
    frame = frame.filter(pl.col("start") < t1)
    d = qr.evaluate(frame.select("start", "end", "latency", "outcome"), rules, now=t1)
    print(f"log-only rule on the {name} log:")
    c.show_decisions(d, evidence_of=None)

gauge_rule = qr.Rule(id="logs-match-gauge", version="1", owner="observability", metric="littles_gap",
                     threshold=0.02, description="|mean(logs in-flight - gauge)| / mean(gauge), CI bound")
decisions = []
for name, r in results.items():
    g = r.gauge
    # the conservative end of the interval: the bound farthest from zero
    worst = max(abs(g.discrepancy_ci[0]), abs(g.discrepancy_ci[1]))
    status = "pass" if gauge_rule.passes(worst, gauge_rule.threshold) else gauge_rule.fail_status
    action = gauge_rule.action_for(status)
    evidence = {"kind": "qcore.decision", "rule": gauge_rule.to_dict(), "group": {"log": name},
                "value": worst, "threshold": gauge_rule.threshold, "status": status, "action": action,
                "details": r.as_dict()}
    decisions.append(evidence)
    print(f"gauge rule on the {name} log: value {worst:.4f} (rule: {gauge_rule.comparison} "
          f"{gauge_rule.threshold}) -> {status}, action {action}")
print("evidence record (5% rows lost):")
print(json.dumps(decisions[-1], indent=2, sort_keys=True, default=str))
path = c.log_evidence(d, "02_littles_law")  # the last log-only decision
with open(path, "a", encoding="utf-8") as f:  # and the gauge decisions, one JSON line each
    f.writelines(json.dumps(ev, sort_keys=True, default=str) + "\n" for ev in decisions)
final = decisions[-1]["action"]
print(f"decision for the damaged log: {final}")
print("next action: " + ("escalate to the log pipeline owner; reconcile row counts per hour "
                         "against the server's request counter and backfill before any capacity "
                         "or latency decision uses this log."
                         if final != "accept" else "none; the log agrees with the gauge."))

# ---------------------------------------------------------------------------------------
# Plot (only with matplotlib): the logs' in-flight count vs the gauge over the day.
# ---------------------------------------------------------------------------------------
plt = c.pyplot()
if plt is None:
    c.no_plot_note()
else:
    fig, ax = plt.subplots(figsize=(10, 3.5))
    hours = (gauge_t - t0) / 3600.0
    ax.step(hours, gauge_n, where="post", label="gauge (true in-flight)", lw=1.2)
    ax.step(hours, qcore.in_flight(start[keep], end[keep], gauge_t), where="post",
            label="from the log with 5% rows lost", lw=0.8)
    ax.set_xlabel(f"hours since {busiest} 00:00 (trace clock)"); ax.set_ylabel("requests in system")
    ax.set_title("GenTD26: in-flight requests, log vs gauge"); ax.legend()
    c.save(fig, "02_littles_law.png")
