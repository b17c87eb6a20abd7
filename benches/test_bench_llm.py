"""LLM engine throughput in token-steps per second (one request served in one step),
on the real traces and on a saturated synthetic load; one core.

Run:
    pytest benches/test_bench_llm.py --benchmark-only --benchmark-columns=min,median,rounds

Each benchmark stores ``token_steps``, ``steps``, ``requests`` and
``token_steps_per_s`` (by the median) in ``extra_info``. Traces from ../shared/data
(QCORE_SHARED_DATA overrides); they are skipped when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from qcore import llm

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("QCORE_SHARED_DATA", ROOT.parent / "shared" / "data"))
AZURE = DATA / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
MOONCAKE = DATA / "mooncake_fast25" / "conversation_trace.jsonl"


def _record(benchmark, r: llm.LlmResult) -> None:  # type: ignore[no-untyped-def]
    benchmark.extra_info["token_steps"] = r.token_steps
    benchmark.extra_info["steps"] = int(r.replica_stats["steps"].sum())
    benchmark.extra_info["requests"] = r.requests.height
    stats = benchmark.stats.stats if hasattr(benchmark.stats, "stats") else None
    if stats is not None:
        benchmark.extra_info["token_steps_per_s"] = r.token_steps / stats.median


def _llama70b() -> llm.Replica:
    st = llm.presets.step_time("splitwise/llama2-70b/h100-80gb/tp8")
    return llm.Replica.from_preset("llama-2-70b", "h100-80gb", 8, step_time=st)


@pytest.mark.parametrize("replicas", [1, 8])
def test_azure_conversation_hour(benchmark, replicas: int) -> None:  # type: ignore[no-untyped-def]
    if not AZURE.exists():
        pytest.skip("Azure trace not available")
    w = llm.Workload.azure(AZURE)
    rep = _llama70b()
    fleet = llm.Fleet(replicas=replicas, router="least_requests")
    benchmark.group = "llm-azure-conv"
    r = benchmark.pedantic(lambda: llm.simulate(w, rep, fleet), rounds=7, warmup_rounds=1)
    assert r.finished == len(w)
    _record(benchmark, r)


def test_mooncake_prefix_affinity(benchmark) -> None:  # type: ignore[no-untyped-def]
    if not MOONCAKE.exists():
        pytest.skip("Mooncake trace not available")
    w = llm.Workload.mooncake(MOONCAKE)
    rep = llm.Replica.from_preset("llama-3-8b", "h100-80gb",
                                  step_time=llm.Linear(c0=0.01, c_tok=5e-5, c_ctx=1e-8))
    fleet = llm.Fleet(replicas=4, router="prefix_affinity")
    benchmark.group = "llm-mooncake"
    r = benchmark.pedantic(lambda: llm.simulate(w, rep, fleet), rounds=5, warmup_rounds=1)
    assert r.finished + r.rejected == len(w)
    _record(benchmark, r)


def test_saturated_engine(benchmark) -> None:  # type: ignore[no-untyped-def]
    # Decode-heavy overload: the running batch stays at max_num_seqs = 256.
    w = llm.Workload.poisson(rate=50.0, n=50_000, prompt_tokens=np.arange(100, 1000),
                             output_tokens=np.arange(100, 600), seed=1)
    rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=1e-5, c_ctx=1e-8),
                      num_blocks=200_000, max_num_batched_tokens=8192)
    benchmark.group = "llm-saturated"
    r = benchmark.pedantic(lambda: llm.simulate(w, rep), rounds=5, warmup_rounds=1)
    assert r.finished == len(w)
    _record(benchmark, r)


def test_saturated_with_preemption(benchmark) -> None:  # type: ignore[no-untyped-def]
    # KV-bound overload: preemptions and recompute.
    w = llm.Workload.poisson(rate=50.0, n=20_000, prompt_tokens=np.arange(100, 1000),
                             output_tokens=np.arange(100, 600), seed=1)
    rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=1e-5, c_ctx=1e-8),
                      num_blocks=6_000, max_num_batched_tokens=8192)
    benchmark.group = "llm-saturated"
    r = benchmark.pedantic(lambda: llm.simulate(w, rep), rounds=5, warmup_rounds=1)
    assert r.preemptions > 0
    _record(benchmark, r)


# --------------------------------------------------------------------------- peer modes
#
# The published simulators' setups (qcore.llm.presets.peer) on their own workloads
# (tests/data/llm_peers) and on 10,000-request ones generated like them. The peers'
# speeds (../shared/PEERS.md, simulation loop only, same kind of machine): DistServe's
# simulator 1.0-3.3 k requests per wall second, Vidur 250-1,400. `speedup_vs_peer_best`
# divides by the top of the peer's range (its fastest figure), so it is a lower bound.

PEERS = ROOT / "tests" / "data" / "llm_peers"
PEER_BEST = {"vidur_vllm": 1400.0, "distserve_colocated": 3300.0,
             "distserve_disaggregated": 3300.0}


def _peer_workload(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    import polars as pl

    if name in ("burst200", "fixed512x128_r2_n1000"):
        wl = pl.read_csv(PEERS / f"workload_{name}.csv")
        return (wl["arrival_s"].to_numpy(), wl["prompt_len"].to_numpy(),
                wl["output_len"].to_numpy())
    rng = np.random.default_rng(1)
    n = 10_000
    if name == "fixed512x128_r2_n10000":
        # Poisson 2/s, prompt 512, output 128; arrivals on the 2^-20 s grid, first at 0.
        gaps = rng.exponential(0.5, n)
        gaps[0] = 0.0
        t = np.round(np.cumsum(gaps) * 2.0**20) / 2.0**20
        return t, np.full(n, 512), np.full(n, 128)
    # burst10000: 10,000 requests at t = 0, (prompt, output) pairs resampled from burst200.
    wl = pl.read_csv(PEERS / "workload_burst200.csv")
    k = rng.integers(0, wl.height, n)
    return (np.zeros(n), wl["prompt_len"].to_numpy()[k], wl["output_len"].to_numpy()[k])


PEER_WORKLOADS = ["burst200", "fixed512x128_r2_n1000", "burst10000", "fixed512x128_r2_n10000"]


def _engine_only(setup: llm.presets.PeerSetup, w: llm.Workload):  # type: ignore[no-untyped-def]
    """The engine call of ``llm.simulate`` alone (no result frames): the peers' figures
    are for their simulation loop only."""
    from qcore import _qcore

    rep, fleet = setup.replica, setup.fleet
    dis = None if fleet is None else (fleet.decode._spec(), fleet.decode.step_time._spec(),
                                      fleet.prefill_replicas, fleet.decode_replicas,
                                      None if fleet.transfer is None else fleet.transfer._spec())
    args = (w.arrival, w.prompt_tokens, w.output_tokens, None, None, 1, rep._spec(),
            rep.step_time._spec(), None, 0.01, False, None, None, dis)
    return lambda: _qcore._llm_simulate(*args)


@pytest.mark.parametrize("workload", PEER_WORKLOADS)
@pytest.mark.parametrize("mode", ["vidur_vllm", "distserve_colocated",
                                  "distserve_disaggregated"])
@pytest.mark.parametrize("what", ["simulate", "engine"])
def test_peer_modes(benchmark, what: str, mode: str, workload: str) -> None:  # type: ignore[no-untyped-def]
    setup = llm.presets.peer(mode)
    w = setup.workload(*_peer_workload(workload))
    benchmark.group = f"llm-peer-{workload}"
    rounds = 7 if len(w) > 1000 else 21
    run = (lambda: setup.simulate(w)) if what == "simulate" else _engine_only(setup, w)
    out = benchmark.pedantic(run, rounds=rounds, warmup_rounds=1)
    r = out if what == "simulate" else setup.simulate(w)
    assert r.finished == len(w)
    if what == "engine":
        assert (out["records"]["status"] == 0).all()
    _record(benchmark, r)
    stats = benchmark.stats.stats if hasattr(benchmark.stats, "stats") else None
    if stats is not None:
        rps = len(w) / stats.min
        benchmark.extra_info["requests_per_s"] = rps
        benchmark.extra_info["speedup_vs_peer_best"] = rps / PEER_BEST[mode]
