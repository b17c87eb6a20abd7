"""qcore.llm.plan: capacity plans under SLO quantiles, ceilings, sustained rate, prices."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import polars as pl
import pytest

from qcore import _json, llm, sim
from qcore.exceptions import InvalidArgumentError

REP = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000)
SLO = {"ttft_p99": 0.5, "tpot_p99": 0.05}


def _fixed(n: int, gap: float, p: int, o: int) -> llm.Workload:
    return llm.Workload.from_frame(pl.DataFrame({
        "arrival": np.arange(n) * gap, "prompt_tokens": [p] * n, "output_tokens": [o] * n}))


def _poisson(rate: float, n: int, seed: int) -> llm.Workload:
    return llm.Workload.poisson(rate=rate, n=n, prompt_tokens=500, output_tokens=50, seed=seed)


# --------------------------------------------------------------------------- ceilings


def test_ceilings_are_the_closed_forms_with_a_constant_step() -> None:
    p, o, d, budget, seqs, blocks = 300, 50, 0.02, 512, 64, 2048
    rep = llm.Replica(step_time=llm.Linear(c0=d), num_blocks=blocks,
                      max_num_batched_tokens=budget, max_num_seqs=seqs)
    c = llm.ceilings(_fixed(10, 1.0, p, o), rep)
    assert c.token_budget == pytest.approx(budget / (d * (p + o - 1)), rel=1e-12)
    assert c.kv == pytest.approx(blocks * 16 / (d * (p * o + o * o / 2)), rel=1e-12)
    assert c.max_num_seqs == pytest.approx(seqs / (d * o), rel=1e-12)
    assert c.rate == min(c.token_budget, c.kv, c.max_num_seqs)
    assert getattr(c, c.binding) == c.rate


@pytest.mark.parametrize("step_time, blocks", [
    (llm.Linear(c0=0.02, c_tok=2e-5), 4000),          # KV binds
    (llm.Linear(c0=0.02, c_tok=2e-5), 40000),         # max_num_seqs binds
    (llm.Linear(c0=0.01, c_tok=5e-6, c_ctx=1e-7), 3000),
    (llm.presets.step_time("splitwise/llama2-70b/h100-80gb/tp8"), 20000),
])
def test_overloaded_throughput_sits_at_the_ceiling(step_time: llm.StepTime, blocks: int) -> None:
    """Offered twice the binding ceiling, the engine serves at it (within 10 %), for
    step times that depend on the batch (the ceiling's step is the binding full batch)."""
    rep = llm.Replica(step_time=step_time, num_blocks=blocks)
    w = llm.Workload.poisson(rate=1.0, n=6000, prompt_tokens=500, output_tokens=100, seed=1)
    c = llm.ceilings(w, rep)
    over = llm.simulate(w.scale_rate(2 * c.rate), rep)
    assert over.request_throughput == pytest.approx(c.rate, rel=0.10)


# --------------------------------------------------------------------------- plans


def test_plan_trace_chosen_fleet_holds_in_an_independent_longer_run() -> None:
    """Planned on one trace, checked on an independent trace five times longer: the chosen
    fleet meets every objective, the next smaller one does not (or the plan said its
    interval straddles)."""
    p = llm.plan(_poisson(80.0, 4000, seed=1), SLO, REP)
    assert p.found and p.decide_on == "upper"
    chosen, smaller = p.chosen, p.smaller
    assert chosen is not None and smaller is not None
    assert chosen.meets and not smaller.meets
    assert smaller.replicas == chosen.replicas - 1
    check = _poisson(80.0, 20000, seed=777)
    for c, want in ((chosen, True), (smaller, False)):
        r = llm.simulate(check, REP, llm.Fleet(replicas=c.replicas, router="least_requests"))
        ok = all(r.quantile_ci(k.split("_")[0], 0.99)[1] <= v for k, v in SLO.items())
        if want:
            assert ok
        elif ok:   # a smaller fleet meeting in the long run: the plan must have said so
            assert "straddles" in smaller.verdicts.values()


def test_plan_candidates_intervals_and_verdicts() -> None:
    p = llm.plan(_poisson(80.0, 4000, seed=1), SLO, REP)
    for c in p.candidates:
        for name, (lo, est, hi) in c.quantiles.items():
            assert lo is not None and hi is not None and lo <= est <= hi
            limit = SLO[name]
            v = c.verdicts[name]
            assert v == ("meets" if hi <= limit else "fails" if lo > limit else "straddles")
        assert c.meets == all(c.quantiles[k][2] <= SLO[k] for k in SLO)  # type: ignore[operator]
    # the chosen fleet is the fewest replicas that meet, among those evaluated
    assert p.chosen is not None
    assert all(c.replicas >= p.chosen.replicas for c in p.candidates if c.meets)


def test_plan_synthetic_replications_common_random_numbers() -> None:
    def make(s: int) -> llm.Workload:
        return llm.Workload.synthetic(sim.Poisson(80.0), 2000, 500, 50, seed=s)

    a = llm.plan(make, SLO, REP, replications=4)
    b = llm.plan(make, SLO, REP, replications=4)
    assert a.found and _same(a, b)            # same seeds: the same plan
    assert "common random numbers" in a.method
    assert a.chosen is not None and a.chosen.runs == 4
    # the chosen fleet meets in independent replications (other seeds), the point estimate
    t = llm.replicate(make, REP, llm.Fleet(replicas=a.chosen.replicas, router="least_requests"),
                      replications=4, seed=1000)
    means = {r["metric"]: r["mean"] for r in t.iter_rows(named=True)}
    assert all(means[k] <= v for k, v in SLO.items())
    assert a.smaller is not None and not a.smaller.meets


def test_plan_upper_side_never_chooses_fewer_than_the_estimate() -> None:
    w = _poisson(80.0, 3000, seed=3)
    for slo in ({"ttft_p99": 0.2}, {"ttft_p90": 0.15, "tpot_p99": 0.045}, {"e2e_p50": 1.2}):
        up = llm.plan(w, slo, REP)
        est = llm.plan(w, slo, REP, decide_on="estimate")
        if up.chosen is not None:
            assert est.chosen is not None and est.chosen.replicas <= up.chosen.replicas


def test_plan_no_fleet_within_bounds() -> None:
    p = llm.plan(_poisson(80.0, 2000, seed=1), {"ttft_p99": 0.001}, REP, max_replicas=4)
    assert not p.found and p.chosen is None
    assert all(c.replicas <= 4 for c in p.candidates)
    assert any("no configuration" in n for n in p.notes)


def test_plan_sweep_and_pricing() -> None:
    w = _poisson(80.0, 2000, seed=1)
    rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000, gpus=2)
    p = llm.plan(w, SLO, rep, routers=["round_robin", "least_requests"],
                 max_num_seqs=[16, 256], gpu="h100-80gb")
    cfgs = {(c.config["router"], c.config["max_num_seqs"]) for c in p.candidates}
    assert cfgs == {(r, s) for r in ("round_robin", "least_requests") for s in (16, 256)}
    assert p.chosen is not None
    assert p.chosen.gpus == 2 * p.chosen.replicas
    assert p.chosen.gpus == min(c.gpus for c in p.candidates if c.meets)
    price = llm.prices().filter(pl.col("gpu") == "h100-80gb")["price_per_gpu_hour"][0]
    for c in p.candidates:
        assert c.dollars_per_hour == pytest.approx(price * c.gpus)
        # $/Mtok = $/hour / (output tokens/s · 3600) · 1e6 (LlmResult.cost_per_mtok)
        assert c.cost_per_mtok == pytest.approx(c.dollars_per_hour / (c.token_throughput * 3600)
                                                * 1e6)
        assert c.gpu_hours == pytest.approx(c.gpus * float(w.arrival[-1] - w.arrival[0]) / 3600,
                                            rel=0.05)


def test_plan_hardware_mapping_priced_per_gpu() -> None:
    w = llm.Workload.poisson(rate=4.0, n=400, prompt_tokens=400, output_tokens=60, seed=2)
    reps = {g: llm.Replica.from_preset("llama-3-8b", g) for g in ("l4-24gb", "a10g-24gb")}
    p = llm.plan(w, {"ttft_p99": 2.0, "tpot_p99": 0.2}, reps, max_replicas=8)
    hw = {c.config["hardware"] for c in p.candidates}
    assert hw == {"l4-24gb", "a10g-24gb"}
    for c in p.candidates:
        assert c.dollars_per_hour == pytest.approx(
            llm.gpu_price(c.config["hardware"]) * c.gpus)


def test_plan_json_is_strict() -> None:
    p = llm.plan(_poisson(80.0, 2000, seed=1), SLO, REP)
    text = _json.dumps(p.to_dict())
    d = json.loads(text)      # no NaN or Infinity tokens
    assert d["found"] is True and d["decide_on"] == "upper"
    assert d["chosen"]["replicas"] == p.chosen.replicas  # type: ignore[union-attr]
    assert "NaN" not in text and "Infinity" not in text


def test_rejected_requests_miss_every_objective() -> None:
    # 10 blocks of 16 tokens cannot hold a 500-token prompt: every request is rejected
    rep = llm.Replica(step_time=llm.Linear(c0=0.02), num_blocks=10)
    p = llm.plan(_poisson(5.0, 500, seed=1), SLO, rep, max_replicas=3)
    assert not p.found
    assert all(c.rejected == 500 for c in p.candidates)
    assert all(math.isinf(c.quantiles["ttft_p99"][1]) for c in p.candidates)
    assert json.loads(_json.dumps(p.to_dict()))["candidates"][0]["quantiles"]["ttft_p99"][
        "estimate"] is None


# --------------------------------------------------------------------------- sustained rate


def test_sustained_rate_below_ceiling_and_monotone_in_the_slo() -> None:
    w = _poisson(10.0, 3000, seed=1)
    lax = llm.sustained_rate(w, REP, {"ttft_p99": 2.0})
    strict = llm.sustained_rate(w, REP, {"ttft_p99": 0.2})
    assert 0 < strict.rate <= lax.rate
    assert lax.rate <= lax.ceiling * 1.05
    two = llm.sustained_rate(w, REP, {"ttft_p99": 2.0}, llm.Fleet(replicas=2,
                                                                 router="least_requests"))
    assert two.ceiling == pytest.approx(2 * lax.ceiling)
    assert lax.rate < two.rate <= two.ceiling * 1.05


def test_sustained_rate_is_max_rate_with_the_quantile_test() -> None:
    """One bisection: ``max_rate(accept=...)`` with the point-estimate test of the same
    objective gives the same rate as ``sustained_rate(decide_on='estimate')``."""
    w = _poisson(10.0, 2000, seed=4)
    s = llm.sustained_rate(w, REP, {"ttft_p99": 0.5}, decide_on="estimate")
    m = llm.max_rate(w, REP, llm.SLO(), accept=lambda r: r.quantile_ci("ttft", 0.99)[1] <= 0.5)
    assert s.rate == pytest.approx(m, rel=1e-12)


def test_sustained_rate_synthetic() -> None:
    def make(s: int) -> llm.Workload:
        return llm.Workload.synthetic(sim.Poisson(10.0), 1500, 500, 50, seed=s)

    s = llm.sustained_rate(make, REP, {"ttft_p99": 1.0}, replications=3)
    assert 0 < s.rate <= s.ceiling * 1.05 and s.runs % 3 == 0


# --------------------------------------------------------------------------- prices


def test_shipped_prices_have_source_and_date() -> None:
    t = llm.prices()
    assert set(llm.presets.GPUS) <= set(t["gpu"].to_list())
    for row in t.iter_rows(named=True):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["as_of"])
        assert row["source"].startswith("https://")
        assert row["price_per_gpu_hour"] == pytest.approx(
            float(row["instance_price_per_hour"]) / int(row["gpus_per_instance"]), rel=1e-3)


def test_prices_from_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.csv"
    f.write_text("gpu,provider,price_per_gpu_hour\nh100-80gb,mine,2.5\n")
    assert llm.gpu_price("h100-80gb", table=llm.prices(f)) == 2.5
    p = llm.plan(_poisson(80.0, 1000, seed=1), SLO, REP, gpu="h100-80gb", prices=f)
    assert all(c.dollars_per_hour == pytest.approx(2.5 * c.gpus) for c in p.candidates)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"slo": {}}, "at least one"),
    ({"slo": {"ttft": 1.0}}, "ttft_pNN"),
    ({"slo": {"itl_p99": 1.0}}, "ttft_pNN"),
    ({"slo": {"ttft_p99": -1.0}}, "ttft_p99"),
    ({"slo": {"ttft_p99": float("nan")}}, "ttft_p99"),
    ({"routers": ["nope"]}, "routers"),
    ({"routers": []}, "routers"),
    ({"min_replicas": 0}, "min_replicas"),
    ({"min_replicas": 5, "max_replicas": 2}, "max_replicas"),
    ({"max_num_seqs": [0]}, "max_num_seqs"),
    ({"max_num_batched_tokens": []}, "max_num_batched_tokens"),
    ({"decide_on": "lower"}, "decide_on"),
    ({"confidence": 1.0}, "confidence"),
    ({"gpu": "tpu-v9"}, "tpu-v9"),
    ({"replica": "h100"}, "replica"),
    ({"prices": pl.DataFrame({"gpu": ["h100-80gb"]})}, "price_per_gpu_hour"),
])
def test_plan_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"workload": _poisson(5.0, 100, seed=1), "slo": SLO,
                               "replica": REP}
    args.update(kwargs)
    if "prices" in kwargs:
        args["gpu"] = "h100-80gb"
    with pytest.raises(InvalidArgumentError, match=match):
        llm.plan(**args)  # type: ignore[arg-type]


def test_plan_bad_workloads() -> None:
    with pytest.raises(InvalidArgumentError, match="workload"):
        llm.plan("trace.csv", SLO, REP)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="replications"):
        llm.plan(lambda s: _poisson(5.0, 100, s), SLO, REP, replications=1)
    with pytest.raises(InvalidArgumentError, match="workload"):
        llm.plan(lambda s: None, SLO, REP)  # type: ignore[arg-type, return-value]
    with pytest.raises(InvalidArgumentError, match="distinct arrival"):
        llm.sustained_rate(_fixed(1, 1.0, 10, 5), REP, SLO)


# --------------------------------------------------------------------------- command line


def _trace_file(tmp_path, rate: float = 80.0, n: int = 2000):  # type: ignore[no-untyped-def]
    w = _poisson(rate, n, seed=1)
    f = tmp_path / "t.csv"
    pl.DataFrame({"arrival": w.arrival, "prompt_tokens": w.prompt_tokens,
                  "output_tokens": w.output_tokens}).write_csv(f)
    return f


def test_cli_plan_json_strict_and_exit_0(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from qcore.cli import EXIT_OK, main

    f = _trace_file(tmp_path)
    rc = main(["llm", "plan", str(f), "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
               "--ttft-p99", "2", "--tpot-p99", "0.2", "--slo", "e2e_p50=60",
               "--routers", "least_requests,round_robin", "--sustained-rate",
               "--format", "json"])
    assert rc == EXIT_OK
    text = capsys.readouterr().out
    d = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert d["found"] and d["chosen"]["gpus"] == 8 * d["chosen"]["replicas"]
    assert {o["name"] for o in d["objectives"]} == {"ttft_p99", "tpot_p99", "e2e_p50"}
    assert {c["config"]["router"] for c in d["candidates"]} == {"least_requests", "round_robin"}
    assert d["chosen"]["dollars_per_hour"] == pytest.approx(
        llm.gpu_price("h100-80gb") * d["chosen"]["gpus"])
    assert d["sustained_rate"]["rate"] > 0 and d["ceilings"]["binding"]


def test_cli_plan_text_and_exit_7_without_a_plan(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from qcore._llm_cli import EXIT_NO_PLAN
    from qcore.cli import main

    f = _trace_file(tmp_path)
    rc = main(["llm", "plan", str(f), "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
               "--ttft-p99", "0.001", "--max-replicas", "3", "--progress"])
    assert rc == EXIT_NO_PLAN == 7
    cap = capsys.readouterr()
    assert "plan: none within the search bounds" in cap.out
    assert "replicas=3: misses" in cap.err            # progress on stderr


def test_cli_plan_synthetic_spec(capsys) -> None:  # type: ignore[no-untyped-def]
    from qcore.cli import EXIT_OK, main

    rc = main(["llm", "plan", "poisson:6", "--model", "llama-3-8b", "--gpu", "a10g-24gb,l4-24gb",
               "--requests", "300", "--prompt-tokens", "400", "--output-tokens", "50",
               "--replications", "3", "--ttft-p99", "2", "--tpot-p99", "0.2",
               "--max-replicas", "8"])
    assert rc == EXIT_OK
    text = capsys.readouterr().out
    assert "3 replications with common random numbers" in text
    assert "hardware=a10g-24gb" in text and "hardware=l4-24gb" in text
    assert "plan: " in text and "upper end (protects the SLO)" in text


@pytest.mark.parametrize("argv, match", [
    (["poisson:5", "--preset", "distserve/opt-13b/tp1", "--num-blocks", "1000"], "objective"),
    (["poisson:x", "--ttft-p99", "1", "--preset", "distserve/opt-13b/tp1", "--num-blocks", "9"],
     "poisson:RATE"),
    (["poisson:5", "--slo", "ttft_p99", "--preset", "distserve/opt-13b/tp1"], "NAME=SECONDS"),
    (["poisson:5", "--slo", "foo_p99=1", "--preset", "distserve/opt-13b/tp1",
      "--num-blocks", "1000"], "ttft_pNN"),
    (["poisson:5", "--ttft-p99", "1", "--model", "llama-3-8b", "--gpu", "h100-80gb",
      "--routers", "nope"], "router"),
    (["poisson:5", "--ttft-p99", "1", "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
      "--gpu", "l4-24gb"], "l4-24gb"),
    (["poisson:5", "--ttft-p99", "1", "--model", "llama-3-8b", "--gpu", "h100-80gb",
      "--prices", "/nonexistent/prices.csv"], "prices"),
])
def test_cli_plan_bad_input_exit_1(argv: list[str], match: str, capsys) -> None:  # type: ignore[no-untyped-def]
    from qcore.cli import EXIT_ERROR, main

    assert main(["llm", "plan", *argv]) == EXIT_ERROR
    assert re.search(match, capsys.readouterr().err)


# --------------------------------------------------------------------------- dask


def test_plan_on_dask_equals_the_local_plan(client) -> None:  # type: ignore[no-untyped-def]
    """A sweep's configurations searched on a two-process cluster give the same plan, to
    the last bit, as the local run; the searches ran on the workers."""
    distributed = pytest.importorskip("distributed")

    def make(s: int) -> llm.Workload:
        return llm.Workload.synthetic(sim.Poisson(80.0), 1500, 500, 50, seed=s)

    kw = {"routers": ["round_robin", "least_requests", "power_of_two"],
          "max_num_seqs": [32, 256], "replications": 3}
    local = llm.plan(make, SLO, REP, **kw)  # type: ignore[arg-type]
    with distributed.get_task_stream(client) as ts:
        remote = llm.plan(make, SLO, REP, client=client, **kw)  # type: ignore[arg-type]
    assert _same(remote, local)
    assert remote.found and len(remote.candidates) >= 6
    workers = {t["worker"] for t in ts.data if t["key"].startswith("_search")}
    assert len([t for t in ts.data if t["key"].startswith("_search")]) == 6
    assert len(workers) == 2
    trace = _poisson(80.0, 2000, seed=1)
    assert _same(llm.plan(trace, SLO, REP, routers=["round_robin", "least_tokens"], client=client),
                 llm.plan(trace, SLO, REP, routers=["round_robin", "least_tokens"]))


def _same(a: llm.Plan, b: llm.Plan) -> bool:
    """Equal plans: their strict JSON (floats in shortest round-trip form, NaN as null)."""
    return _json.dumps(a.to_dict()) == _json.dumps(b.to_dict())


def test_cli_plan_dask(client, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from qcore.cli import EXIT_OK, main

    f = _trace_file(tmp_path)
    args = ["llm", "plan", str(f), "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
            "--ttft-p99", "2", "--routers", "round_robin,least_requests", "--format", "json"]
    assert main(args) == EXIT_OK
    here = json.loads(capsys.readouterr().out)
    assert main([*args, "--dask", client.scheduler.address]) == EXIT_OK
    there = json.loads(capsys.readouterr().out)
    assert there == here
    assert client.status == "running"      # the command closed its own client only


# --------------------------------------------------------------------------- rules


def test_llm_rule_shorthands() -> None:
    import qcore.rules as qr

    r = qr.Rule(id="a", version="1", owner="o", metric="ttft_p99", threshold=1.0)
    assert (r.metric, r.quantile, r.family, r.comparison) == ("ttft_quantile", 0.99, "latency",
                                                               "<=")
    assert qr.Rule(id="b", metric="tpot_p999", threshold=0.1).quantile == 0.999
    assert qr.Rule(id="c", metric="tpot_quantile", quantile=0.9, threshold=0.1).quantile == 0.9
    with pytest.raises(qr.RuleError, match="quantile"):
        qr.Rule(id="d", metric="ttft_p99", quantile=0.5, threshold=1.0)
    with pytest.raises(qr.RuleError, match="needs quantile"):
        qr.Rule(id="e", metric="ttft_quantile", threshold=1.0)
    with pytest.raises(qr.RuleError, match="unknown metric"):
        qr.Rule(id="f", metric="queue_p99", threshold=1.0)
    # itl_pNN: the inter-token latency quantile (every gap between consecutive tokens)
    assert (qr.Rule(id="g", metric="itl_p99", threshold=1.0).metric,
            qr.Rule(id="g", metric="itl_p99", threshold=1.0).quantile) == ("itl_quantile", 0.99)


def test_plan_ends_in_rule_decisions_that_agree_with_it() -> None:
    """The plan's objectives as rules, evaluated on the chosen fleet's run: the same
    values and intervals as the plan's candidate, pass/accept, with an evidence record."""
    import qcore.rules as qr
    from qcore.rules.metrics import llm_log

    w = _poisson(80.0, 4000, seed=1)
    slo = {**SLO, "e2e_p90": 3.0}
    p = llm.plan(w, slo, REP)
    d = p.decide(w, REP, owner="capacity", version="1", now=0.0)
    assert d["rule_id"].to_list() == ["llm-ttft_p99", "llm-tpot_p99", "llm-e2e_p90"]
    assert d["status"].to_list() == ["pass"] * 3 and qr.exit_code(d) == 0
    assert p.chosen is not None
    for row in d.iter_rows(named=True):
        lo, est, hi = p.chosen.quantiles[row["rule_id"].removeprefix("llm-")]
        assert (row["ci_lo"], row["value"], row["ci_hi"]) == (lo, est, hi)
        ev = json.loads(row["evidence"])
        assert ev["rule"]["decide_on"] == "upper" and ev["n"] > 0 and ev["data"]["rows"] == 4000
    # the next smaller fleet fails a rule on the same log
    assert p.smaller is not None
    small = llm.simulate(w, REP, llm.Fleet(replicas=p.smaller.replicas, router="least_requests"))
    ds = qr.evaluate(llm_log(small), p.rules(owner="capacity", version="1"), now=0.0)
    assert "fail" in ds["status"].to_list() and qr.overall_action(ds) == "block"


def test_llm_log_outcomes_and_tpot_of_one_token_outputs() -> None:
    import qcore.rules as qr
    from qcore.rules.metrics import llm_log

    w = llm.Workload.from_frame(pl.DataFrame({"arrival": [0.0, 0.1, 0.2],
                                              "prompt_tokens": [10, 10, 5000],
                                              "output_tokens": [1, 5, 5]}))
    r = llm.simulate(w, llm.Replica(step_time=llm.Linear(c0=0.01), num_blocks=100))
    log = llm_log(r)
    assert log["outcome"].to_list() == ["ok", "ok", "error"]      # 5000 tokens never fit
    assert log["tpot"].null_count() == 2                          # O = 1, and rejected
    d = qr.evaluate(log, [qr.Rule(id="t", version="1", owner="o", metric="tpot_p50",
                                  threshold=1.0, min_samples=1)], now=0.0)
    assert d["n"][0] == 1


@pytest.mark.parametrize("rate, slo, start", [
    (80.0, SLO, 1), (150.0, SLO, 1), (150.0, {"ttft_p90": 0.08}, 1), (60.0, {"e2e_p50": 1.3}, 2),
    (300.0, {"ttft_p99": 0.3}, 1), (60.0, {"e2e_p99": 1.25}, 1), (60.0, {"e2e_p50": 1.1}, 1),
])
def test_search_finds_the_smallest_meeting_fleet_of_a_brute_force_scan(
        rate: float, slo: dict[str, float], start: int) -> None:
    """Against every fleet size evaluated one by one: the plan's choice is the smallest
    size that meets (meeting is monotone in replicas here; the scan checks that too)."""
    w = _poisson(rate, 2000, seed=5)
    p = llm.plan(w, slo, REP, min_replicas=start, max_replicas=8)
    scan = [llm.plan(w, slo, REP, min_replicas=r, max_replicas=r).found for r in range(start, 9)]
    assert scan == sorted(scan)                       # monotone: False ... False True ... True
    first = next((start + i for i, ok in enumerate(scan) if ok), None)
    assert (p.chosen.replicas if p.chosen else None) == first
    assert first is not None or slo == {"e2e_p50": 1.1}   # that one is out of reach (<= 8)
    evaluated = {c.replicas for c in p.candidates}
    assert len(evaluated) < len(scan) or len(scan) <= 2   # the search evaluates fewer sizes
