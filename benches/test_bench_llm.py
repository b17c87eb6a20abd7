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
