"""Tutorial 1: arrival rates and burstiness on the Azure LLM inference traces.

Two real traces from the same day of Azure LLM serving (Patel et al., "Splitwise",
ISCA 2024; CC BY 4.0; shipped as qcore.datasets 'azure_llm_2023_code' and '..._conv'): the *code* assistant
and the *conversation* service, about one hour each. The question a capacity planner
asks first is "how fast do requests arrive?", and the second, more important one is
"how bursty is that?". A mean rate is one number; a provisioning decision needs the
shape of the traffic around it.

Run:  python docs/tutorials/01_arrival_rates.py
"""

from __future__ import annotations

import _common as c
import numpy as np
import polars as pl

import qcore
import qcore.rules as qr
from qcore import capacity, sim

code_csv, conv_csv = c.traces("azure_llm_2023_code",
                               "azure_llm_2023_conv")
traces = {"code": c.azure_timestamps(code_csv), "conv": c.azure_timestamps(conv_csv)}

# ---------------------------------------------------------------------------------------
# 1. Rates with confidence intervals.
#
# `arrival_stats` returns the mean rate (count / duration) with an exact Poisson
# (Garwood) interval, plus window statistics at the window we ask for (1 s here): the
# peak rate, the peak-to-mean ratio, the coefficient of variation of the gaps between
# arrivals (1 for a Poisson process) and the index of dispersion of the per-window
# counts (variance / mean; 1 for Poisson, larger when arrivals cluster).
# ---------------------------------------------------------------------------------------
c.section("1. Rates with 95% confidence intervals (1 s windows)")
stats = {k: qcore.arrival_stats(ts, window=1.0) for k, ts in traces.items()}
for k, s in stats.items():
    lo, hi = s.rate_ci
    print(f"{k:>4}: {s.count:6d} requests in {s.duration:7.1f} s  rate {s.rate:.3f}/s "
          f"[{lo:.3f}, {hi:.3f}]  peak {s.peak_rate:.0f}/s  peak/mean {s.peak_to_mean:.2f}  "
          f"CV(gaps) {s.cv_interarrival:.2f}  dispersion {s.index_of_dispersion:.2f}")
# The Poisson interval is the right interval only if arrivals are independent. A check
# that does not assume it: treat each complete minute's count as one observation
# (batch means) and take a normal interval over the minutes. When the two disagree, the
# arrivals are correlated and the Poisson interval is too narrow.
for k, ts in traces.items():
    per_min = qcore.window_counts(ts, 60.0)[: int(stats[k].duration // 60)] / 60.0
    half = 1.96 * per_min.std(ddof=1) / np.sqrt(per_min.size)
    lo, hi = stats[k].rate_ci
    print(f"{k:>4}: rate CI half-width, Poisson {0.5 * (hi - lo):.3f}/s; batch means over "
          f"{per_min.size} minutes {half:.3f}/s ({half / (0.5 * (hi - lo)):.1f}x wider)")

# ---------------------------------------------------------------------------------------
# 2. Burstiness curves: the index of dispersion as the window grows.
#
# For Poisson traffic the curve is flat at 1 at every window. A curve that grows with
# the window means correlated arrivals: bursts that last longer than the window, or a
# rate that drifts. The window at which it grows tells you which timescale a buffer or
# an autoscaler must absorb.
# ---------------------------------------------------------------------------------------
c.section("2. Burstiness curves (index of dispersion of counts vs window)")
windows = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0])
curves = {k: qcore.burstiness_curve(ts, windows) for k, ts in traces.items()}
# Control: a Poisson stream with the same count and span as the conversation trace.
rng = np.random.default_rng(2023)
span = stats["conv"].duration
poisson = np.sort(rng.uniform(0.0, span, stats["conv"].count))
curves["poisson"] = qcore.burstiness_curve(poisson, windows)
print("window_s " + " ".join(f"{w:>7.0f}" for w in windows))
for k, cv in curves.items():
    print(f"{k:>8} " + " ".join(f"{v:7.1f}" for v in cv))

# ---------------------------------------------------------------------------------------
# 3. Peak-to-mean at several windows: the peak a provisioning plan must cover depends
# on how long a burst may be queued. At 1 s nothing can be smoothed; at 60 s a queue
# (or a slow autoscaler) absorbs the short bursts but not the long ones.
# ---------------------------------------------------------------------------------------
c.section("3. Peak-to-mean ratio by window")
for w in (1.0, 10.0, 60.0):
    row = []
    for k, ts in traces.items():
        counts = qcore.window_counts(ts, w)[: int(stats[k].duration // w)]  # complete windows
        row.append(f"{k} {counts.max() / counts.mean():5.2f} (peak {counts.max()} in {w:.0f} s)")
    print(f"window {w:4.0f} s: " + "   ".join(row))

# ---------------------------------------------------------------------------------------
# 4. Change points: where does the rate shift?
#
# `rate_changes` fits a piecewise-constant Poisson rate by exact penalised likelihood
# (PELT). With 60 s bins it finds the slow shifts of the hour; at its default (finer)
# bins the code trace's on/off bursts each become segments of their own.
# ---------------------------------------------------------------------------------------
c.section("4. Rate change points (60 s bins)")
changes = {}
for k, ts in traces.items():
    r = qcore.rate_changes(ts, bins=max(2, int(stats[k].duration // 60)))
    changes[k] = r
    segs = ", ".join(f"[{a:5.0f}, {b:5.0f}) s: {rate:5.2f}/s"
                     for a, b, rate in zip(r.boundaries[:-1], r.boundaries[1:], r.rates, strict=True))
    print(f"{k:>4}: {len(r.times)} change(s): {segs}")
fine = qcore.rate_changes(traces["code"])
print(f"code at its default {fine.resolution:.2f} s bins: {len(fine.times)} change points "
      f"(the on/off bursts themselves)")

# ---------------------------------------------------------------------------------------
# 5. Why a Poisson assumption under-provisions bursty traffic.
#
# Suppose each request holds a server for 1 s on average (exponential service times;
# an assumption for this illustration, since the trace has no durations) and the SLO
# is "p99 response time <= 6 s" (above the p99 of the service time alone, printed below). Capacity planning with the mean rate and a Poisson
# model (Erlang C) gives a server count. We then replay each *real* arrival stream
# through that many servers in the simulator and measure the p99 it actually gets.
# ---------------------------------------------------------------------------------------
c.section("5. Poisson plan vs the real arrivals (service ~ Exp(1 s), SLO p99 <= 6 s)")
SERVICE_MEAN, SLO = 1.0, 6.0
print(f"p99 of the service time alone: {-np.log(0.01) * SERVICE_MEAN:.2f} s")
logs = []
for k, ts in traces.items():
    plan = capacity.min_servers(arrival_rate=stats[k].rate, service=sim.Exponential(mean=SERVICE_MEAN),
                                slo_quantile=0.99, slo_seconds=SLO)
    res = qcore.simulate(sim.Trace(ts), sim.Exponential(mean=SERVICE_MEAN), servers=plan.servers,
                         seed=7, records=True)
    p99 = float(res.response.quantile(0.99))
    control = qcore.simulate(sim.Poisson(rate=stats[k].rate), sim.Exponential(mean=SERVICE_MEAN),
                             servers=plan.servers, customers=stats[k].count, seed=7)
    print(f"{k:>4}: Erlang-C plan {plan.servers} servers (predicted p99 {plan.achieved:.2f} s, "
          f"utilization {plan.utilization:.2f}); Poisson arrivals at the same rate: p99 "
          f"{float(control.response.quantile(0.99)):.2f} s; the real arrivals: p99 {p99:.2f} s, "
          f"mean wait {res.mean_wait:.2f} s")
    rec = res.records
    # the simulated per-request records form a request log (start, latency, outcome)
    logs.append(pl.DataFrame({"start": rec.get_column("arrival"), "latency": rec.get_column("response"),
                              "outcome": ["ok"] * rec.height, "endpoint": [k] * rec.height}))
# Reading: with a Poisson stream the plan holds by construction. The conversation
# trace is close to Poisson at short windows, and its drift over the hour is what
# strains the plan; the code trace's bursts pile far more requests into a few seconds
# than a Poisson stream of the same mean ever does, so the same plan leaves a queue
# that the mean rate does not predict. Provision from the burstiness (peaks at the
# window your queue or autoscaler can absorb), not from the mean.

# ---------------------------------------------------------------------------------------
# 6. The alert decision.
#
# Declared rules (they would live in a TOML file next to the service): the per-second
# index of dispersion must stay below 2 (near-Poisson traffic, for which the Erlang-C
# plan is valid), and the p99 replayed through the plan must meet the SLO.
# ---------------------------------------------------------------------------------------
c.section("6. Decision by qcore.rules")
rules = qr.parse_rules({
    "defaults": {"owner": "capacity-planning", "version": "1"},
    "rule": [
        {"id": "poisson-plan-valid", "metric": "burstiness", "bin": "1s", "threshold": 2.0,
         "group_by": ["endpoint"], "on_fail": "escalate",
         "description": "Erlang-C plans assume near-Poisson arrivals"},
        {"id": "plan-meets-slo", "metric": "p99", "threshold": SLO, "group_by": ["endpoint"]},
    ],
})
log = pl.concat(logs)
decisions = qr.evaluate(log, rules, now=float(log["start"].max()))
c.show_decisions(decisions, evidence_of=0)
c.log_evidence(decisions, "01_arrival_rates")
action = qr.overall_action(decisions)
bad = decisions.filter(pl.col("status") != "pass").select("rule_id", "group").rows()
print(f"overall action: {action}")
if bad:
    print("next action: re-plan " + ", ".join(sorted({g for _, g in bad}))
          + " from the measured peaks (window counts at the queue's timescale) or with the "
            "simulator on the real arrivals, not from the mean rate; see tutorial 4.")
else:
    print("next action: none; the Poisson plan holds for every endpoint.")

# ---------------------------------------------------------------------------------------
# Plots (only when matplotlib is installed).
# ---------------------------------------------------------------------------------------
plt = c.pyplot()
if plt is None:
    c.no_plot_note()
else:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, ts in traces.items():
        counts = qcore.window_counts(ts, 10.0)
        axes[0].plot(np.arange(counts.size) * 10.0 / 60.0, counts / 10.0, label=k, lw=0.8)
    axes[0].set_xlabel("minutes"); axes[0].set_ylabel("requests/s (10 s windows)")
    axes[0].set_title("Arrival rate"); axes[0].legend()
    for k, cv in curves.items():
        axes[1].loglog(windows, cv, marker="o", label=k)
    axes[1].axhline(1.0, color="grey", lw=0.5)
    axes[1].set_xlabel("window (s)"); axes[1].set_ylabel("index of dispersion")
    axes[1].set_title("Burstiness curve"); axes[1].legend()
    c.save(fig, "01_arrival_rates.png")
