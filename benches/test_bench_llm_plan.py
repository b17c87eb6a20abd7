"""A full capacity plan over an hour of trace, and the AIConfigurator side by side.

Run:
    pytest benches/test_bench_llm_plan.py --benchmark-only -p no:cacheprovider \\
        --benchmark-timer=time.process_time --benchmark-columns=min,median,max,rounds

``test_plan_*``: ``qcore.llm.plan`` end to end (the replica search, one replay of the
hour per candidate, intervals, prices) on the Azure LLM 2023 conversation hour (shipped
in ``qcore.datasets``); ``extra_info`` holds the candidates evaluated, the simulations
and the plan. ``test_peer_aiconfigurator`` runs ``benches/llm_peer_aiconfigurator.py``
(skipped without aiconfigurator: set ``AICONFIGURATOR`` to its executable).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qcore import datasets, llm

HERE = Path(__file__).resolve().parent
SLO = {"ttft_p99": 1.0, "tpot_p99": 0.1}


def _h100() -> llm.Replica:
    st = llm.presets.step_time("splitwise/llama2-70b/h100-80gb/tp8")
    return llm.Replica.from_preset("llama-2-70b", "h100-80gb", 8, step_time=st)


def _record(benchmark, p: llm.Plan) -> None:  # type: ignore[no-untyped-def]
    assert p.chosen is not None
    benchmark.extra_info["candidates"] = len(p.candidates)
    benchmark.extra_info["simulations"] = sum(c.runs for c in p.candidates)
    benchmark.extra_info["plan"] = f"{p.chosen.replicas} x {p.chosen.config}"
    benchmark.extra_info["gpus"] = p.chosen.gpus


def test_plan_azure_conversation_hour(benchmark) -> None:  # type: ignore[no-untyped-def]
    w = llm.Workload.read(datasets.path("azure_llm_2023_conv"))
    rep = _h100()
    benchmark.group = "llm-plan"
    p = benchmark.pedantic(lambda: llm.plan(w, SLO, rep, gpu="h100-80gb"), rounds=5,
                           warmup_rounds=1)
    assert p.chosen is not None and p.chosen.replicas == 3
    _record(benchmark, p)


def test_plan_azure_hour_sweep(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Routers × max_num_seqs × hardware: 2 × 2 × 2 configurations, each searched."""
    w = llm.Workload.read(datasets.path("azure_llm_2023_conv"))
    hw = {g: llm.Replica.from_preset("llama-2-70b", g, 8, step_time=llm.presets.step_time(
        f"splitwise/llama2-70b/{g}/tp8")) for g in ("h100-80gb", "a100-80gb")}
    benchmark.group = "llm-plan"
    p = benchmark.pedantic(lambda: llm.plan(w, SLO, hw, routers=["least_requests", "least_tokens"],
                                            max_num_seqs=[128, 256]), rounds=3, warmup_rounds=0)
    _record(benchmark, p)


def test_peer_aiconfigurator() -> None:
    sys.path.insert(0, str(HERE))
    import llm_peer_aiconfigurator as peer

    if peer.aiconfigurator() is None:
        pytest.skip("aiconfigurator is not installed (set AICONFIGURATOR to its executable)")
    assert peer.main() == 0
