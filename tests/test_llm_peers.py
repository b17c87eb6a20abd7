"""The engine's `distserve` scheduler reproduces DistServe's colocated simulator
(`simdistserve`, backend vllm, OPT-13B on A100-80G, TP 1) request by request, on the
published runs of the simulator itself (tests/data/llm_peers, see its SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qcore import llm

PEERS = Path(__file__).resolve().parent / "data" / "llm_peers"


@pytest.mark.parametrize("name", ["fixed512x128_r2_n1000", "burst200"])
def test_distserve_colocated_per_request(name: str) -> None:
    peers = PEERS
    wl = pl.read_csv(peers / f"workload_{name}.csv")
    ref = pl.read_csv(peers / f"distserve_colocated_{name}.csv")
    # DistServe emits output_len + 1 tokens (the first at the prefill's end).
    w = llm.Workload(wl["arrival_s"].to_numpy(), wl["prompt_len"].to_numpy(),
                     wl["output_len"].to_numpy() + 1)
    st = llm.DistServeStepTime.from_phases(
        llm.presets.step_time("distserve/opt-13b/tp1"))  # type: ignore[arg-type]
    kv = llm.presets.kv_capacity_tokens("opt-13b", 1)  # DistServe's prefill token cap
    rep = llm.Replica(step_time=st, num_blocks=1, scheduler="distserve",
                      max_num_batched_tokens=kv)
    r = llm.simulate(w, rep).requests
    assert (r["status"] == "finished").all()
    # DistServe's clock is milliseconds from the first arrival.
    t0 = float(wl["arrival_s"][0])
    for ours, theirs in (("first_token", "first_token_ms"), ("finish", "completion_ms"),
                         ("first_scheduled", "prefill_start_ms")):
        got = (r[ours].to_numpy() - t0) * 1e3
        np.testing.assert_allclose(got, ref[theirs].to_numpy(), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("name", ["fixed512x128_r2_n1000", "burst200"])
def test_distserve_disaggregated_per_request(name: str) -> None:
    peers = PEERS
    wl = pl.read_csv(peers / f"workload_{name}.csv")
    ref = pl.read_csv(peers / f"distserve_disagg_{name}.csv")
    w = llm.Workload(wl["arrival_s"].to_numpy(), wl["prompt_len"].to_numpy(),
                     wl["output_len"].to_numpy() + 1)
    st = llm.DistServeStepTime.from_phases(
        llm.presets.step_time("distserve-engine/opt-13b/tp1"))  # type: ignore[arg-type]
    kv = llm.presets.kv_capacity_tokens("opt-13b", 1)
    rep = llm.Replica(step_time=st, num_blocks=1, scheduler="distserve",
                      max_num_batched_tokens=kv)
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep)).requests
    assert (r["status"] == "finished").all()
    t0 = float(wl["arrival_s"][0])
    for ours, theirs in (("first_token", "first_token_ms"), ("finish", "completion_ms"),
                         ("first_scheduled", "prefill_start_ms")):
        got = (r[ours].to_numpy() - t0) * 1e3
        np.testing.assert_allclose(got, ref[theirs].to_numpy(), rtol=1e-9, atol=1e-6)
