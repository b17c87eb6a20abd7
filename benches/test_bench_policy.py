"""Autoscaling replays of a day of real traffic, timed side by side with the plain
simulator on the same trace (the event loop with a fixed server count: the cost of a
replay without a policy) and ``numpy.sum`` of the timestamps (the floor: one read).

Traces (../shared/data; the benchmark skips without them):

- ``gentd26-day``: Alibaba GenTD26 LoRA serving, 2024-12-03 (24 h, 2,724 requests with
  their measured execution times; ~1 replica busy on average, bursts of 65/min).
- ``azure-conv-x24``: the Azure LLM conversation trace (1 h, 19,366 requests) laid end
  to end 24 times (24 h, 464,784 requests); service = 50 ms + 10 ms per generated token.

Run (the issue's size, 24 h):

    pytest benches/test_bench_policy.py --benchmark-only --benchmark-group-by=group \
        --benchmark-columns=min,median,max,rounds

For a quick run: QCORE_BENCH_POLICY_HOURS=2 (hours of the Azure trace replayed).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qcore import autoscale, sim

HOURS = int(os.environ.get("QCORE_BENCH_POLICY_HOURS", "24"))
ROUNDS = int(os.environ.get("QCORE_BENCH_ROUNDS", "3"))
DATA = Path(os.environ.get("QCORE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def run(benchmark, f):  # type: ignore[no-untyped-def]
    return benchmark.pedantic(f, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.fixture(scope="module")
def gentd26():  # type: ignore[no-untyped-def]
    p = DATA / "alibaba_gentd26" / "lora_request_trace.csv"
    if not p.exists():
        pytest.skip("GenTD26 trace not available")
    df = pl.read_csv(p, columns=["gmt_create", "exec_time_seconds"])
    df = df.with_columns(pl.col("gmt_create").str.to_datetime("%Y-%m-%d %H:%M:%S"))
    day = df.filter(pl.col("gmt_create").dt.date() == pl.date(2024, 12, 3))
    day = day.filter(pl.col("exec_time_seconds") > 0)
    ts = (day["gmt_create"].dt.epoch("ms") / 1000.0).to_numpy()
    return ts - ts[0], day["exec_time_seconds"].to_numpy()


@pytest.fixture(scope="module")
def azure():  # type: ignore[no-untyped-def]
    p = DATA / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    if not p.exists():
        pytest.skip("Azure LLM trace not available")
    df = pl.read_csv(p).with_columns(
        pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S%.f")
    )
    t = (df["TIMESTAMP"].dt.epoch("us") / 1e6).to_numpy()
    t = t - t[0]
    hour = 3600.0
    t = t[t < hour]
    tok = df["GeneratedTokens"].to_numpy()[: len(t)]
    ts = np.concatenate([t + k * hour for k in range(HOURS)])
    svc = np.tile(0.05 + 0.01 * tok, HOURS)
    return ts, svc


POLICIES = {
    "hpa": lambda mean: autoscale.HPA(target=0.7, max_replicas=200),
    "kpa": lambda mean: autoscale.KPA(target=1.0, max_scale=200),
    "predictive": lambda mean: autoscale.Predictive(wait_slo=5.0, max_replicas=200),
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_gentd26_day_replay(benchmark, gentd26, name):  # type: ignore[no-untyped-def]
    benchmark.group = "replay gentd26-day (24 h, 2.7k requests)"
    ts, ex = gentd26
    pol = POLICIES[name](ex.mean())
    r = run(benchmark, lambda: autoscale.replay(ts, ex, pol, slo=120.0, initial_replicas=1,
                                                startup_delay=30.0))
    assert r.totals["completed"] == len(ts)


@pytest.mark.parametrize("name", list(POLICIES))
def test_azure_day_replay(benchmark, azure, name):  # type: ignore[no-untyped-def]
    benchmark.group = f"replay azure-conv-x{HOURS} ({HOURS} h)"
    ts, svc = azure
    pol = POLICIES[name](svc.mean())
    r = run(benchmark, lambda: autoscale.replay(ts, svc, pol, slo=20.0, initial_replicas=10,
                                                startup_delay=30.0))
    assert r.totals["completed"] == len(ts)


def test_azure_day_plain_simulator(benchmark, azure):  # type: ignore[no-untyped-def]
    benchmark.group = f"replay azure-conv-x{HOURS} ({HOURS} h)"
    ts, svc = azure
    arr, s = sim.Trace(ts), sim.Durations(svc)
    r = run(benchmark, lambda: sim.simulate(arrivals=arr, service=s, servers=20,
                                            customers=len(ts), method="event"))
    assert r.completed == len(ts)


def test_azure_day_numpy_floor(benchmark, azure):  # type: ignore[no-untyped-def]
    benchmark.group = f"replay azure-conv-x{HOURS} ({HOURS} h)"
    ts, _ = azure
    run(benchmark, lambda: np.sum(ts))
