"""Tutorial 5: overload control: goodput vs offered load, and a real traffic spike.

When requests arrive faster than the servers can serve them, an unbounded queue turns a
short overload into a long outage: every request waits behind the backlog, clients time
out, and the servers spend their time on answers nobody is waiting for. Admission
control (shedding) keeps the queue short so that the requests that are served are
served in time.

Traffic: the Azure LLM *code* trace (Patel et al., "Splitwise", ISCA 2024; CC BY 4.0;
shipped as qcore.datasets 'azure_llm_2023_code'), the burstiest of the shipped traces. The trace
has token counts but no durations, so each request's service time is modelled from its
tokens: 50 ms + 0.1 ms per context token + 20 ms per generated token (an assumption
for this tutorial; substitute your own measured service times).

Run:  python docs/tutorials/05_overload_control.py
"""

from __future__ import annotations

import math

import _common as c
import numpy as np
import polars as pl

import qcore
import qcore.rules as qr
from qcore import overload, sim

(code_csv,) = c.traces("azure_llm_2023_code")
raw = pl.read_csv(code_csv)
ts = c.azure_timestamps(code_csv)
service = (0.05 + 1e-4 * raw.get_column("ContextTokens").to_numpy()
           + 0.02 * raw.get_column("GeneratedTokens").to_numpy())
SLO, TIMEOUT = 10.0, 20.0   # a response within 10 s is good; clients give up after 20 s
rate = qcore.arrival_stats(ts).rate
servers = math.ceil(rate * service.mean() / 0.5)   # mean utilization at most 50 %
print(f"{ts.size} requests over {ts[-1]:.0f} s, mean rate {rate:.2f}/s; service mean {service.mean():.2f} s, "
      f"p99 {np.quantile(service, 0.99):.2f} s; {servers} servers -> mean utilization "
      f"{rate * service.mean() / servers:.2f}")

policies = {
    "no control": overload.NoControl(),
    "drop-tail 4/server": overload.DropTail(queue_limit=4 * servers),
    "CoDel": overload.CoDel(target=0.25, interval=2.5),
    "Gradient2 limit": overload.Gradient2(initial_limit=2 * servers, min_limit=servers, max_limit=16 * servers),
    "AIMD limit": overload.AIMD(initial_limit=2 * servers, timeout=SLO),
}
# CoDel's folly defaults (5 ms target, 100 ms interval) are for millisecond RPCs; both
# are scaled here to service times of about a second.

# ---------------------------------------------------------------------------------------
# 1. Goodput vs offered load (Poisson arrivals, the trace's service times).
#
# `overload.sweep` offers 0.5x to 3x the servers' capacity and counts the requests
# completed within the SLO per second, as a fraction of capacity (`goodput_ratio`).
# Without control goodput collapses once the load passes 1x; with shedding it stays
# near capacity for the policies that bound the queueing delay (see the table).
# ---------------------------------------------------------------------------------------
c.section("1. Goodput / capacity vs offered load")
loads = [0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0]
sweep = overload.sweep(sim.Empirical(service), servers, policies, slo=SLO, timeout=TIMEOUT,
                       loads=loads, customers=20_000, seed=5)
pivot = sweep.pivot(on="policy", index="load", values="goodput_ratio").sort("load")
with pl.Config(tbl_rows=20, tbl_cols=10, tbl_width_chars=160, float_precision=3):
    print(pivot)

# ---------------------------------------------------------------------------------------
# 2. The real spike.
#
# The busiest ten minutes of the trace, replayed with their real arrival times through
# the same servers. `overload.compare` gives every policy the same arrivals and work.
# ---------------------------------------------------------------------------------------
c.section("2. The busiest 10 minutes of the code trace")
per10 = qcore.window_counts(ts, 600.0)
k = int(per10.argmax())
sel = (ts >= k * 600.0) & (ts < (k + 1) * 600.0)
spike_ts, spike_work = ts[sel] - ts[sel][0], service[sel]
spike_rate = spike_ts.size / 600.0
peak_s = qcore.arrival_stats(spike_ts, window=1.0)
print(f"minutes {10 * k}-{10 * k + 10}: {spike_ts.size} requests ({spike_rate:.2f}/s, "
      f"{spike_rate * spike_work.mean() / servers:.2f} of capacity on average; peak second "
      f"{peak_s.peak_rate:.0f} requests)")
spike = overload.compare(spike_ts, sim.Durations(spike_work), servers, policies, slo=SLO, timeout=TIMEOUT)
with pl.Config(tbl_rows=20, tbl_cols=12, tbl_width_chars=170, float_precision=3):
    print(spike.select("policy", "arrived", "good", "shed", "timed_out", "goodput", "shed_rate",
                       "timeout_rate", "p99_admitted", "wasted_fraction"))
best = spike.sort("goodput", descending=True).row(0, named=True)
print(f"most goodput on the spike: {best['policy']} ({best['good']} good responses of {best['arrived']})")

# ---------------------------------------------------------------------------------------
# 3. Per-request logs of the spike, for the alert decision.
#
# The simulator's per-request records give the log each configuration would have
# written: without control (clients time out after 20 s) and with the bounded queue
# (drop-tail, which the plain simulator expresses as a waiting-room limit). Timed-out
# and rejected requests are errors; the others have their response time.
# ---------------------------------------------------------------------------------------
c.section("3. Per-request logs of the spike")
configs = {"no control": {}, "drop-tail 4/server": {"queue_capacity": 4 * servers}}
frames = []
for name, extra in configs.items():
    res = qcore.simulate(sim.Trace(spike_ts), sim.Durations(spike_work), servers=servers,
                         patience=TIMEOUT, records=True, seed=5, **extra)
    rec = res.records
    ok = rec["status"].cast(pl.String) == "completed"
    print(f"{name:>20}: completed {int(ok.sum())}, timed out {res.timed_out}, rejected {res.blocked}")
    frames.append(pl.DataFrame({
        "start": rec["arrival"], "latency": rec["response"],
        "outcome": np.where(ok.to_numpy(), "ok", "error"), "endpoint": [name] * rec.height,
    }))
logs = pl.concat(frames)

# ---------------------------------------------------------------------------------------
# 4. The alert decision.
#
# Declared rules: the p99 of answered requests within the SLO (a rollback-grade rule:
# severity critical), and the error rate (timeouts + rejections) at most 20 %, with a
# warning above 5 %.
# ---------------------------------------------------------------------------------------
c.section("4. Decision by qcore.rules")
rules = qr.parse_rules({
    "defaults": {"owner": "llm-gateway", "version": "1"},
    "rule": [
        {"id": "answered-p99", "metric": "p99", "threshold": SLO, "group_by": ["endpoint"],
         "severity": "critical"},
        {"id": "error-rate", "metric": "error_rate", "threshold": 0.20, "warn_threshold": 0.05,
         "group_by": ["endpoint"]},
    ],
})
decisions = qr.evaluate(logs, rules, now=float(logs["start"].max()))
c.show_decisions(decisions, evidence_of=0)
c.log_evidence(decisions, "05_overload_control")
by_cfg = {g.replace("endpoint=", ""): a for g, a in
          decisions.group_by("group").agg(pl.col("action")).select("group", "action").rows()}
severity = {a: i for i, a in enumerate(qr.ACTIONS)}
for cfg, acts in sorted(by_cfg.items()):
    print(f"{cfg}: {max(acts, key=lambda a: severity[a])}")
uncontrolled = max(by_cfg["no control"], key=lambda a: severity[a])
shed_cfg = "drop-tail 4/server"
shedding = max(by_cfg[shed_cfg], key=lambda a: severity[a])
if uncontrolled != "accept":
    print(f"next action: {uncontrolled} the uncontrolled configuration; put admission control in front of "
          f"the queue ('{best['policy']}' served the most requests within the SLO on this spike).")
    if shedding != "accept":
        err = decisions.filter((pl.col("rule_id") == "error-rate")
                               & (pl.col("group") == f"endpoint={shed_cfg}"))["value"][0]
        print(f"next action: {shedding} on '{shed_cfg}' as well: it answers in time but rejects "
              f"{100 * err:.0f} % of the spike; add servers (re-run tutorial 4's replay with these "
              f"arrivals) until the error rate is within the rule.")
else:
    print("next action: none; this spike stays within the SLO without admission control.")

# ---------------------------------------------------------------------------------------
# Plot (only with matplotlib): goodput vs offered load.
# ---------------------------------------------------------------------------------------
plt = c.pyplot()
if plt is None:
    c.no_plot_note()
else:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in policies:
        part = sweep.filter(pl.col("policy") == name).sort("load")
        ax.plot(part["load"], part["goodput_ratio"], marker="o", label=name)
    ax.set_xlabel("offered load / capacity"); ax.set_ylabel("goodput / capacity")
    ax.set_title("Goodput vs offered load (code-trace service times)"); ax.legend()
    c.save(fig, "05_overload_control.png")
