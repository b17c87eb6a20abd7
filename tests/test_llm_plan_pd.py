"""qcore.llm.plan_disaggregated: the fewest GPUs in prefill and decode pools (the P:D
ratio as the capacity knob), checked against an exhaustive grid and a longer run."""

from __future__ import annotations

import itertools
import math

import pytest

from qcore import llm
from qcore.exceptions import InvalidArgumentError
from qcore.llm.plan import _evaluate, cost_per_mtok, fleet_size, objectives

REP = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=5e-5, c_ctx=2e-7), num_blocks=4000, price_per_hour=2.0)
SLO = {"ttft_p90": 0.3, "tpot_p90": 0.02}


def workload(n: int = 1500, seed: int = 2, rate: float = 24.0) -> llm.Workload:
    return llm.Workload.poisson(rate=rate, n=n, prompt_tokens=800, output_tokens=120, seed=seed)


def test_the_choice_is_the_cheapest_meeting_pools_of_the_whole_grid():
    w = workload()
    p = llm.plan_disaggregated(w, SLO, REP, max_prefill=3, max_decode=4)
    assert p.found and p.disaggregation is not None
    objs = objectives(SLO)
    grid = {}
    for pp, dd in itertools.product(range(1, 4), range(1, 5)):
        pools = llm.Disaggregated(decode=REP, prefill_replicas=pp, decode_replicas=dd)
        grid[(pp, dd)] = _evaluate(w, REP, pools, objs, 5, 1, 0.95, "upper", {})
    meeting = [k for k, c in grid.items() if c.meets]
    best = min(grid[k].gpus for k in meeting)
    c = p.chosen.config
    assert p.chosen.gpus == best and (c["prefill_replicas"], c["decode_replicas"]) in meeting
    # every candidate the search evaluated is the grid's evaluation of the same pools
    for cand in p.candidates:
        g = grid[(cand.config["prefill_replicas"], cand.config["decode_replicas"])]
        assert cand.quantiles == g.quantiles and cand.meets == g.meets
    # both knobs matter on this workload: one prefill replica misses TTFT with any decode pool
    assert not any(grid[(1, d)].meets for d in range(1, 5))
    assert grid[(1, 4)].verdicts["ttft_p90"] == "fails"


def test_the_chosen_pools_hold_in_a_longer_independent_run():
    p = llm.plan_disaggregated(workload(), SLO, REP, max_prefill=4, max_decode=6)
    c = p.chosen.config
    long = workload(n=6000, seed=11)
    objs = objectives(SLO)
    pools = llm.Disaggregated(decode=REP, prefill_replicas=c["prefill_replicas"],
                              decode_replicas=c["decode_replicas"])
    assert _evaluate(long, REP, pools, objs, 5, 1, 0.95, "estimate", {}).meets
    fewer = [(c["prefill_replicas"] - 1, c["decode_replicas"]), (c["prefill_replicas"], c["decode_replicas"] - 1)]
    for pp, dd in fewer:
        if pp < 1 or dd < 1:
            continue
        small = llm.Disaggregated(decode=REP, prefill_replicas=pp, decode_replicas=dd)
        cand = _evaluate(long, REP, small, objs, 5, 1, 0.95, "upper", {})
        assert not cand.meets  # fails, or straddles and is rejected on the upper side


def test_prices_gpus_and_the_rerun_of_the_chosen_pools():
    w = workload(n=800)
    dec = llm.Replica(step_time=REP.step_time, num_blocks=4000, gpus=2, price_per_hour=1.0)
    p = llm.plan_disaggregated(w, SLO, REP, dec, max_prefill=3, max_decode=3)
    ch = p.chosen
    pp, dd = ch.config["prefill_replicas"], ch.config["decode_replicas"]
    assert ch.gpus == pp * 1 + dd * 2 and ch.dollars_per_hour == pytest.approx(pp * 2.0 + dd * 2 * 1.0)
    assert ch.cost_per_mtok == pytest.approx(cost_per_mtok(ch.dollars_per_hour, ch.token_throughput))
    r = p.simulation(w, REP)
    assert r.finished == len(w) and r.fleet.replicas == pp + dd
    assert r.token_throughput == ch.token_throughput
    # a GPU preset prices both pools from the table
    h = llm.plan_disaggregated(w, SLO, REP, dec, max_prefill=3, max_decode=3, gpu="h100-80gb")
    per_gpu = llm.gpu_price("h100-80gb")
    assert h.chosen.dollars_per_hour == pytest.approx(h.chosen.gpus * per_gpu)


def test_fleet_size_and_cost_are_the_results_own():
    w = workload(n=400)
    r = llm.simulate(w, REP, llm.Fleet(replicas=3))
    n, gpus, price = fleet_size(REP, llm.Fleet(replicas=3))
    assert (n, gpus, price) == (3, 3, 6.0)
    assert r.cost_per_mtok == cost_per_mtok(price, r.token_throughput)
    assert math.isnan(cost_per_mtok(5.0, 0.0))


def test_no_pools_within_bounds_and_bad_arguments():
    w = workload(n=600, rate=200.0)
    p = llm.plan_disaggregated(w, SLO, REP, max_prefill=2, max_decode=2)
    assert not p.found and "no prefill:decode pools" in p.notes[0]
    with pytest.raises(InvalidArgumentError, match="decode"):
        llm.plan_disaggregated(w, SLO, REP, "not a replica")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"max_prefill \(2\) must be >= min_prefill \(3\)"):
        llm.plan_disaggregated(w, SLO, REP, min_prefill=3, max_prefill=2)
    with pytest.raises(InvalidArgumentError, match="transfer"):
        llm.plan_disaggregated(w, SLO, REP, transfer=1.0)  # type: ignore[arg-type]


def test_the_command_line_plans_pools(tmp_path):
    from cli_helpers import qcore_cli, strict

    argv = ["llm", "plan", "poisson:20", "--preset", "splitwise/llama2-70b/h100-80gb/tp8", "--ttft-p99", "1",
            "--tpot-p99", "0.1", "--disaggregated", "--max-prefill", "4", "--max-decode", "6", "--requests", "400",
            "--prompt-tokens", "1500", "--output-tokens", "200", "--no-progress"]
    code, out, err = qcore_cli(*argv, "--format", "json")
    doc = strict(out)
    assert code == 0 and doc["found"], err
    cfg = doc["chosen"]["config"]
    assert doc["chosen"]["gpus"] == 8 * (cfg["prefill_replicas"] + cfg["decode_replicas"])
    assert all("prefill_replicas" in c["config"] for c in doc["candidates"])
    code, out, _ = qcore_cli(*argv[:-7], "--max-prefill", "1", "--max-decode", "1", "--requests", "400",
                             "--prompt-tokens", "1500", "--output-tokens", "200", "--no-progress", "--format", "json")
    assert code == 7 and not strict(out)["found"]  # no pools within the bounds
    code, _, err = qcore_cli(*argv, "--routers", "round_robin")
    assert code == 1 and "--routers does not apply to --disaggregated" in err and "Traceback" not in err
