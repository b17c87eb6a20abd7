"""LLM rules: TTFT/TPOT/ITL quantiles, token goodput and cost per 1k tokens, from request
logs with first-token columns and from simulation results, against values computed
independently with numpy; the same decisions in memory, by paths, in batches and through
``qcore check``; release gates on the TTFT/TPOT tails."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import qcore
import qcore.logs as ql
import qcore.rules as qr
from cli_helpers import qcore_cli, strict
from qcore import llm
from qcore.exceptions import InvalidArgumentError
from qcore.rules import driver as qrd
from qcore.rules.metrics import llm_log, token_times

NOW = 1_750_000_000.0


def R(**kw):
    base = {"id": "r", "version": "1", "owner": "llm"}
    base.update(kw)
    return qr.Rule(**base)


def vllm_log(n=3000, seed=0, ttft_scale=1.0, t_end=NOW):
    """A serving team's log: OpenAI/vLLM names, TTFT and e2e in milliseconds."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(t_end - 3600, t_end - 60, n))
    out = rng.integers(1, 300, n)
    ttft = rng.lognormal(np.log(0.3), 0.5, n) * ttft_scale
    e2e = ttft + (out - 1) * rng.uniform(0.01, 0.05, n)
    return pl.DataFrame({
        "created_at": t,
        "e2e_latency_ms": e2e * 1e3,
        "time_to_first_token_ms": ttft * 1e3,
        "prompt_tokens": rng.integers(10, 4000, n),
        "completion_tokens": out,
        "status": rng.choice([200] * 49 + [500], n),
        "model": rng.choice(["m1", "m2"], n),
    })


def truth(raw: pl.DataFrame) -> dict[str, np.ndarray]:
    """TTFT and TPOT (seconds) of the finished rows, by numpy alone."""
    ok = raw["status"].to_numpy() < 500
    ttft = raw["time_to_first_token_ms"].to_numpy() * 1e-3   # milliseconds to seconds
    e2e = raw["e2e_latency_ms"].to_numpy() * 1e-3
    out = raw["completion_tokens"].to_numpy()
    two = ok & (out >= 2)
    return {"ttft": ttft[ok], "tpot": (e2e[two] - ttft[two]) / (out[two] - 1)}


# --------------------------------------------------------------------------- columns


def test_openai_and_vllm_names_are_detected_with_units():
    raw = vllm_log(50)
    m = ql.detect_columns(raw.schema, sample=raw)
    assert (m.start, m.duration, m.ttft, m.tokens_in, m.tokens_out) == (
        "created_at", "e2e_latency_ms", "time_to_first_token_ms", "prompt_tokens", "completion_tokens")
    assert (m.latency_unit, m.ttft_unit) == ("ms", "ms")
    assert "TTFT in ms" in m.summary()
    f = ql.read_logs(raw).frame
    t = truth(raw)
    ok = f.filter(pl.col("outcome") == "ok")
    np.testing.assert_allclose(ok["ttft"].to_numpy(), t["ttft"], rtol=1e-12)
    np.testing.assert_allclose(ok["tpot"].drop_nulls().to_numpy(), t["tpot"], rtol=1e-9)
    # one output token: no TPOT
    assert f.filter(pl.col("tokens_out") < 2)["tpot"].null_count() == f.filter(pl.col("tokens_out") < 2).height


def test_first_token_time_on_the_start_clock_and_unit_from_values():
    raw = pl.DataFrame({"ts": [NOW, NOW + 1.0, NOW + 2.0], "end_time": [NOW + 2.0, NOW + 4.0, NOW + 2.5],
                        "first_token_time": [NOW + 0.5, NOW + 1.25, NOW + 2.25], "output_tokens": [5, 3, 1]})
    f = ql.read_logs(raw).frame
    assert f["ttft"].to_list() == [0.5, 0.25, 0.25]
    assert f["tpot"].to_list() == [1.5 / 4, 2.75 / 2, None]
    # a TTFT column without a unit in its name: a median of 100 or more is milliseconds, with a warning
    raw2 = pl.DataFrame({"ts": [0.0, 1.0, 2.0], "latency": [1.0, 2.0, 3.0], "ttft": [250.0, 400.0, 900.0]})
    m = ql.detect_columns(raw2.schema, sample=raw2)
    assert m.ttft_unit == "ms" and any("TTFT column 'ttft'" in w for w in m.warnings)
    assert ql.read_logs(raw2, mapping={"ttft_unit": "ms"}).frame["ttft"].to_list() == [0.25, 0.4, 0.9]


def test_itl_lists_are_detected_from_parquet_and_csv_text(tmp_path):
    raw = pl.DataFrame({"ts": [0.0, 1.0], "latency": [1.0, 2.0], "ttft": [0.2, 0.5],
                        "itls_ms": [[10.0, 20.0], [30.0]], "output_tokens": [3, 2]})
    f = ql.read_logs(raw).frame
    assert f["itl"].to_list() == [[0.01, 0.02], [0.03]]
    p = tmp_path / "log.csv"
    raw.with_columns(pl.Series("itls_ms", [json.dumps(g) for g in raw["itls_ms"].to_list()])).write_csv(p)
    assert ql.read_logs(str(p)).frame["itl"].to_list() == [[0.01, 0.02], [0.03]]


def test_contract_catches_ttft_beyond_latency_and_bad_gaps():
    raw = pl.DataFrame({"ts": [0.0, 1.0, 2.0, 3.0], "latency": [1.0, 1.0, 1.0, 1.0],
                        "ttft": [0.5, 2.0, -0.1, 0.2], "itl": [[0.1], [0.1], [0.1], [-0.3]]})
    logs = ql.read_logs(raw)
    got = {c.name: c.failed for c in logs.report.failures()}
    assert got == {"ttft_exceeds_latency": 1, "negative_ttft": 1, "invalid_itl": 1}
    assert logs.frame.height == 1


# --------------------------------------------------------------------------- quantiles vs truth


@pytest.mark.parametrize(("metric", "q"), [("ttft_p99", 0.99), ("tpot_p90", 0.9), ("ttft_p50", 0.5)])
def test_llm_quantiles_from_a_log_against_numpy(metric, q):
    raw = vllm_log(4000, seed=1)
    d = qr.evaluate(raw, [R(metric=metric, threshold=100.0)], now=NOW).row(0, named=True)
    v = truth(raw)[metric.split("_")[0]]
    exact = np.quantile(v, q, method="lower")
    assert abs(d["value"] - exact) <= 0.01 * exact
    ci = qcore.quantile_ci(v, q, confidence=0.95)
    assert (d["ci_lo"], d["ci_hi"]) == qcore.widen_for_sketch(ci.lo, ci.hi, 0.01, d["value"])
    assert d["ci_lo"] <= exact <= d["ci_hi"]
    assert d["n"] == v.size and d["status"] == "pass"
    ev = json.loads(d["evidence"])
    assert ev["rule"]["id"] == "r" and ev["rule"]["version"] == "1" and ev["data"]["rows"] == 4000
    assert ev["data"]["content_hash"] and ev["metric"] == metric.split("_")[0] + "_quantile"


def test_interval_holds_the_population_quantile_most_of_the_time():
    # TTFT ~ exponential(1): the 0.9-quantile is ln 10
    rng = np.random.default_rng(11)
    true_q = float(np.log(10.0))
    hits = 0
    for _ in range(60):
        n = 400
        ttft = rng.exponential(1.0, n)
        raw = pl.DataFrame({"ts": np.arange(n, dtype=float), "latency": ttft + 1.0, "ttft": ttft})
        d = qr.evaluate(raw, [R(metric="ttft_p90", threshold=100.0)], now=float(n)).row(0, named=True)
        hits += d["ci_lo"] <= true_q <= d["ci_hi"]
    assert hits >= 51   # 95 % intervals: at least 85 % of 60 (a binomial tail far below 1e-3)


def test_itl_quantile_pools_every_gap():
    rng = np.random.default_rng(2)
    n = 800
    gaps = [rng.exponential(0.02, int(k)).tolist() for k in rng.integers(0, 60, n)]
    status = rng.choice([200, 503], n, p=[0.95, 0.05])
    raw = pl.DataFrame({"ts": np.arange(n, dtype=float), "latency": [1.0 + sum(g) for g in gaps],
                        "ttft": np.full(n, 1.0), "itl": gaps, "status": status},
                       schema_overrides={"itl": pl.List(pl.Float64)})
    d = qr.evaluate(raw, [R(metric="itl_p99", threshold=1.0)], now=float(n)).row(0, named=True)
    pooled = np.concatenate([np.asarray(g, dtype=float) for g, s in zip(gaps, status, strict=True) if s == 200])
    exact = np.quantile(pooled, 0.99, method="lower")
    assert d["metric"] == "itl_quantile" and d["n"] == pooled.size
    assert abs(d["value"] - exact) <= 0.01 * exact
    ci = qcore.quantile_ci(pooled, 0.99, confidence=0.95)
    assert (d["ci_lo"], d["ci_hi"]) == qcore.widen_for_sketch(ci.lo, ci.hi, 0.01, d["value"])


def test_itl_without_per_token_data_is_malformed_or_refused():
    raw = vllm_log(500)
    d = qr.evaluate(raw, [R(metric="itl_p99", threshold=1.0)], now=NOW).row(0, named=True)
    assert (d["status"], d["action"]) == ("malformed", "block")
    assert "itl_quantile needs per-token data" in d["message"] and "tpot_pNN" in d["message"]
    with pytest.raises(InvalidArgumentError, match="itl_quantile"):
        qr.compare(raw, raw, metrics=["itl_p99"])
    rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-4), num_blocks=500)
    r = llm.simulate(llm.Workload.poisson(rate=5.0, n=50, prompt_tokens=50, output_tokens=5, seed=1), rep)
    assert "itl" not in llm_log(r).columns
    with pytest.raises(InvalidArgumentError, match="itl_quantile.*trace=True"):
        llm_log(r, itl=True)


# --------------------------------------------------------------------------- simulations


def _sim(num_blocks=200, replicas=2, n=300, seed=1, price=2.0, trace=True):
    rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-4), num_blocks=num_blocks,
                      price_per_hour=price, gpus=1)
    w = llm.Workload.poisson(rate=20.0, n=n, prompt_tokens=100, output_tokens=20, seed=seed)
    return llm.simulate(w, rep, replicas=replicas, trace=trace)


@pytest.mark.parametrize("num_blocks", [30, 200])   # with and without preemptions
def test_token_times_replay_the_engine(num_blocks):
    r = _sim(num_blocks=num_blocks, replicas=1)
    times = token_times(r)
    assert times is not None
    if num_blocks == 30:
        assert r.preemptions > 0
    gaps = np.concatenate([np.diff(t) for t in times])
    assert gaps.size == r.itl.count
    assert gaps.sum() == pytest.approx(r.itl.sum, rel=1e-12)
    req = r.requests
    assert [t[0] for t in times] == req["first_token"].to_list()
    assert [t[-1] for t in times] == req["finish"].to_list()
    d = qr.evaluate(r, [R(metric="itl_p90", threshold=1.0)]).row(0, named=True)
    exact = np.quantile(gaps, 0.9, method="lower")
    assert abs(d["value"] - exact) <= 0.01 * exact + 1e-12
    assert abs(d["value"] - r.itl.quantile(0.9)) <= 0.03 * exact


def test_goodput_and_cost_of_a_simulation_equal_its_result():
    r = _sim()
    slo = llm.SLO(ttft=0.1, tpot=0.03)
    rules = [R(id="gp", metric="token_goodput", threshold=1.0, slo={"ttft": "100ms", "tpot": 0.03}),
             R(id="cost", metric="cost_per_1k_tokens", threshold=1.0, tokens="output",
               price={"per_gpu_hour": 2.0, "replicas": 2}),
             R(id="cost-all", metric="cost_per_1k_tokens", threshold=1.0,
               price={"gpu": "h100-80gb", "provider": "aws", "replicas": 2, "gpus_per_replica": 4})]
    d = {row["rule_id"]: row for row in qr.evaluate(r, rules).iter_rows(named=True)}
    assert d["gp"]["value"] == pytest.approx(r.goodput(slo)[1], rel=1e-12)
    assert d["cost"]["value"] == pytest.approx(r.cost_per_mtok / 1000.0, rel=1e-12)
    tokens = float(r.requests["prompt_tokens"].sum() + r.requests["output_tokens"].sum())
    per_hour = llm.gpu_price("h100-80gb", "aws") * 4 * 2
    assert d["cost-all"]["value"] == pytest.approx(1000 * per_hour * r.duration / 3600 / tokens, rel=1e-12)
    ev = json.loads(d["cost-all"]["evidence"])
    assert ev["rule"]["price"]["per_gpu_hour"] == llm.gpu_price("h100-80gb", "aws")
    assert ev["details"]["gpu_hours"] == pytest.approx(r.duration / 3600 * 8, rel=1e-12)
    g = json.loads(d["gp"]["evidence"])["details"]
    assert g["meeting_slo"] / g["finished"] == pytest.approx(r.slo_attainment(slo) * r.requests.height / r.finished)


def _goodput_truth(raw: pl.DataFrame, ttft_max: float, tpot_max: float) -> float:
    ttft = raw["ttft"].to_numpy()
    lat = raw["latency"].to_numpy()
    out = raw["output_tokens"].to_numpy()
    ok = raw["status"].to_numpy() == 200
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(out >= 2, (lat - ttft) / np.maximum(out - 1, 1), np.nan)
    meet = ok & (ttft <= ttft_max) & ((out < 2) | (tpot <= tpot_max))
    t = raw["ts"].to_numpy()
    span = float((t + lat).max() - t.min())
    return float(out[meet].sum()) / span


@pytest.mark.hypothesis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 120), seed=st.integers(0, 2**16), ttft_max=st.floats(0.05, 2.0),
       tpot_max=st.floats(0.005, 0.2))
def test_token_goodput_property(n, seed, ttft_max, tpot_max):
    rng = np.random.default_rng(seed)
    out = rng.integers(1, 50, n)
    ttft = rng.exponential(0.5, n)
    raw = pl.DataFrame({"ts": np.sort(rng.uniform(0, 100, n)), "ttft": ttft,
                        "latency": ttft + (out - 1) * rng.exponential(0.05, n),
                        "output_tokens": out, "status": rng.choice([200, 500], n, p=[0.9, 0.1])})
    rule = R(metric="token_goodput", threshold=0.0, slo={"ttft": ttft_max, "tpot": tpot_max})
    d = qr.evaluate(raw, [rule], now=200.0).row(0, named=True)
    expect = _goodput_truth(raw, ttft_max, tpot_max) if n > 1 or raw["latency"][0] > 0 else None
    if expect is None:
        assert d["value"] is None
    else:
        assert d["value"] == pytest.approx(expect, rel=1e-12, abs=1e-300)


def test_cost_from_a_log_with_a_gpu_price():
    raw = vllm_log(1000, seed=3)
    rule = R(metric="cost_per_1k_tokens", threshold=1.0, price={"per_gpu_hour": 3.5, "replicas": 4})
    d = qr.evaluate(raw, [rule], now=NOW).row(0, named=True)
    t = raw["created_at"].to_numpy()
    end = t + raw["e2e_latency_ms"].to_numpy() / 1e3
    tokens = float(raw["prompt_tokens"].sum() + raw["completion_tokens"].sum())
    assert d["value"] == pytest.approx(1000 * 3.5 * 4 * (end.max() - t.min()) / 3600 / tokens, rel=1e-12)
    # a window: the GPUs are paid for the window
    d = qr.evaluate(raw, [R(metric="cost_per_1k_tokens", threshold=1.0, window="10m", tokens="output",
                            price={"per_gpu_hour": 3.5, "replicas": 4})], now=NOW).row(0, named=True)
    last = t.max()
    sel = t >= last - 600
    assert d["value"] == pytest.approx(1000 * 14.0 * 600 / 3600 / raw["completion_tokens"].to_numpy()[sel].sum(),
                                       rel=1e-12)


def test_rule_declarations_of_the_new_fields_are_checked():
    with pytest.raises(qr.RuleError, match="token_goodput needs slo"):
        R(metric="token_goodput", threshold=1.0)
    with pytest.raises(qr.RuleError, match="slo has unknown key"):
        R(metric="token_goodput", threshold=1.0, slo={"ttf": 1.0})
    with pytest.raises(qr.RuleError, match="slo is only read by metric token_goodput"):
        R(metric="p99", threshold=1.0, slo={"ttft": 1.0})
    with pytest.raises(qr.RuleError, match="price needs replicas"):
        R(metric="cost_per_1k_tokens", threshold=1.0, price={"per_gpu_hour": 2.0})
    with pytest.raises(qr.RuleError, match="price needs per_gpu_hour"):
        R(metric="cost_per_1k_tokens", threshold=1.0, price={"replicas": 2})
    with pytest.raises(qr.RuleError, match="no price"):
        R(metric="cost_per_1k_tokens", threshold=1.0, price={"gpu": "h100-80gb", "provider": "nowhere", "replicas": 1})
    with pytest.raises(qr.RuleError, match="tokens must be"):
        R(metric="tokens_per_request", threshold=1.0, tokens="input")
    r = R(metric="itl_p999", threshold=0.1)
    assert (r.metric, r.quantile) == ("itl_quantile", 0.999)
    again = qr.Rule.from_dict(R(metric="cost_per_1k_tokens", threshold=1.0,
                                price={"gpu": "l4-24gb", "replicas": 3}).to_dict())
    assert again.price is not None and again.price["dollars_per_hour"] == pytest.approx(3 * llm.gpu_price("l4-24gb"))


# --------------------------------------------------------------------------- one decision, every path

RULES = [
    {"id": "ttft-p99", "version": "1", "owner": "llm", "metric": "ttft_p99", "threshold": 1.0},
    {"id": "tpot-p90", "version": "1", "owner": "llm", "metric": "tpot_p90", "threshold": 0.05,
     "group_by": ["model"]},
    {"id": "itl-p99", "version": "1", "owner": "llm", "metric": "itl_p99", "threshold": 0.1},
    {"id": "goodput", "version": "1", "owner": "llm", "metric": "token_goodput", "threshold": 1.0,
     "slo": {"ttft": "1s", "tpot": "40ms"}},
    {"id": "cost", "version": "1", "owner": "llm", "metric": "cost_per_1k_tokens", "threshold": 1.0,
     "price": {"gpu": "h100-80gb", "replicas": 2}, "window": "30m"},
]


@pytest.fixture(scope="module")
def llm_files(tmp_path_factory) -> str:
    pytest.importorskip("pyarrow")
    d = tmp_path_factory.mktemp("llm-rules")
    df = vllm_log(9000, seed=7)
    rng = np.random.default_rng(8)
    df = df.with_columns(pl.Series("itls", [rng.exponential(0.02, int(k)).tolist()
                                            for k in np.maximum(df["completion_tokens"].to_numpy() - 1, 0)],
                                   dtype=pl.List(pl.Float64)))
    for i, idx in enumerate(np.array_split(np.arange(df.height), 3)):
        df[idx].write_parquet(d / f"part-{i}.parquet", row_group_size=1_000)
    return str(d / "*.parquet")


@pytest.mark.parametrize("batch_rows", [777, 10**9])
def test_same_decisions_in_memory_by_paths_and_in_batches(llm_files, batch_rows):
    logs = ql.read_logs(llm_files, keep=["model"])
    ref = qr.evaluate(logs, RULES, now=NOW)
    assert set(ref["status"].to_list()) <= {"pass", "fail"}
    assert ref.filter(pl.col("rule_id") == "itl-p99")["n"].item() > 0
    res = qrd.evaluate(llm_files, RULES, now=NOW, executor="local", batch_rows=batch_rows)
    assert_frame_equal(res.decisions, ref)          # every value and evidence record
    assert_frame_equal(qr.evaluate(llm_files, RULES, now=NOW), ref)
    # the rows as one in-memory frame: the same values (the fingerprint names no files)
    raw = pl.concat([pl.read_parquet(p) for p in sorted(ql.expand_paths(llm_files))])
    mem = qr.evaluate(raw, RULES, now=NOW)
    assert_frame_equal(mem.drop("evidence"), ref.drop("evidence"))


def test_same_decisions_on_dask(llm_files):
    dask = pytest.importorskip("dask")
    ref = qr.evaluate(ql.read_logs(llm_files, keep=["model"]), RULES, now=NOW)
    with dask.config.set(scheduler="sync"):
        res = qrd.evaluate(llm_files, RULES, now=NOW, task_rows=1_000)
    assert res.tasks > 3
    assert_frame_equal(res.decisions, ref)


def _check(*argv: str) -> tuple[int, str, str]:
    return qcore_cli("check", *argv)


def test_cli_check_on_an_llm_log(llm_files, tmp_path):
    body = []
    for r in RULES:
        body.append("[[rule]]")
        for k, v in r.items():
            if isinstance(v, dict):
                v = "{ " + ", ".join(f"{a} = {json.dumps(b)}" for a, b in v.items()) + " }"
            else:
                v = json.dumps(v)
            body.append(f"{k} = {v}")
    rules = tmp_path / "rules.toml"
    rules.write_text("\n".join(body) + "\n")
    code, out, err = _check(llm_files, "--rules", str(rules), "--now", str(NOW), "--format", "json")
    ref = qr.evaluate(ql.read_logs(llm_files, keep=["model"]), RULES, now=NOW)
    assert code == qr.exit_code(ref), err
    got = strict(out)
    assert [d["value"] for d in got["decisions"]] == ref["value"].to_list()
    assert [d["metric"] for d in got["decisions"]] == ref["metric"].to_list()

    # a passing gate exits 0; a critical TTFT failure rolls back (5); ITL without
    # per-token data blocks (4), its message saying why
    ok = tmp_path / "ok.toml"
    ok.write_text('[[rule]]\nid = "t"\nversion = "1"\nowner = "llm"\nmetric = "ttft_p50"\nthreshold = 100.0\n')
    assert _check(llm_files, "--rules", str(ok), "--now", str(NOW), "--format", "json")[0] == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "t"\nversion = "1"\nowner = "llm"\nmetric = "ttft_p99"\nthreshold = 0.01\n'
                   'severity = "critical"\n')
    assert _check(llm_files, "--rules", str(bad), "--now", str(NOW), "--format", "json")[0] == 5
    plain = tmp_path / "plain.parquet"
    vllm_log(500).write_parquet(plain)
    itl = tmp_path / "itl.toml"
    itl.write_text('[[rule]]\nid = "i"\nversion = "1"\nowner = "llm"\nmetric = "itl_p99"\nthreshold = 1.0\n')
    code, out, err = _check(str(plain), "--rules", str(itl), "--now", str(NOW), "--format", "json")
    assert code == 4, err
    dec = strict(out)["decisions"][0]
    assert dec["status"] == "malformed" and "per-token data" in dec["message"]


# --------------------------------------------------------------------------- release gates


def test_compare_gates_ttft_and_tpot_tails():
    base = vllm_log(4000, seed=20)
    same = vllm_log(4000, seed=21)
    slow = vllm_log(4000, seed=22, ttft_scale=2.0)
    res = qr.compare(same, base, metrics=["ttft_p99", "tpot_p99"], critical=("ttft_p99",))
    assert res.verdict == "pass", res.table
    res = qr.compare(slow, base, metrics=["ttft_p99", "tpot_p99"], critical=("ttft_p99",))
    row = res.table.filter(pl.col("metric") == "ttft_p99").row(0, named=True)
    assert row["classification"] == "High" and res.verdict == "fail" and res.action == "rollback"
    # the difference's interval is the two sides' intervals combined on the protective side
    rule = R(metric="ttft_p99", threshold=0.0, confidence=0.98)
    a = qr.evaluate(slow, [rule], now=NOW).row(0, named=True)
    b = qr.evaluate(base, [rule], now=NOW).row(0, named=True)
    assert row["diff_lo"] == pytest.approx(a["ci_lo"] - b["ci_hi"])
    assert row["diff_hi"] == pytest.approx(a["ci_hi"] - b["ci_lo"])
    tb, ts = truth(base)["ttft"], truth(slow)["ttft"]
    true_diff = np.quantile(ts, 0.99, method="lower") - np.quantile(tb, 0.99, method="lower")
    assert row["diff_lo"] <= true_diff <= row["diff_hi"]
    # too few requests: no data, never a pass
    res = qr.compare(slow.head(20), base.head(20), metrics=["ttft_p99"])
    assert res.table["classification"].to_list() == ["Nodata"] and res.verdict == "fail"


def test_compare_two_simulations():
    a = _sim(replicas=2, seed=3)
    b = _sim(replicas=2, seed=4)
    res = qr.compare(a, b, metrics=["ttft_p90", "tpot_p90", "itl_p90"], tolerance=0.25)
    assert set(res.table["metric"].to_list()) == {"ttft_p90", "tpot_p90", "itl_p90"}
    assert res.evidence["metrics"][2]["n_candidate"] == a.itl.count
    one = _sim(replicas=1, seed=3)
    res = qr.compare(one, a, metrics=["ttft_p90"])
    assert res.table["classification"].to_list() == ["High"]


def test_prefix_cache_runs_replay_or_refuse():
    from qcore import datasets

    w = llm.Workload.mooncake(datasets.path("mooncake_conversation")).head(300)
    # no preemption: every prefix hit is a first scheduling's, the replay is exact
    big = llm.simulate(w, llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-5), num_blocks=200_000), trace=True)
    assert big.preemptions == 0 and big.cache_hit_rate > 0
    times = token_times(big)
    assert times is not None and sum(max(t.size - 1, 0) for t in times) == big.itl.count
    # preemptions with a prefix cache: the trace does not record the hit of a re-admission
    small = llm.simulate(w, llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-5), num_blocks=3000), trace=True)
    assert small.preemptions > 0
    assert token_times(small) is None and "itl" not in llm_log(small).columns
    with pytest.raises(InvalidArgumentError, match="does not give every token's time exactly.*itl_quantile"):
        llm_log(small, itl=True)


def test_a_fast_ttft_in_ms_is_told_by_the_latency():
    # median TTFT 40 (ms): the scale alone reads seconds, but 40 s would come after the end
    raw = pl.DataFrame({"ts": np.arange(6.0), "latency": [1.0, 2.0, 1.5, 0.9, 3.0, 2.2],
                        "ttft": [40.0, 35.0, 52.0, 28.0, 44.0, 39.0]})
    m = ql.detect_columns(raw.schema, sample=raw)
    assert m.ttft_unit == "ms" and "exceed their latency" in dict(m.detected)["ttft_unit"]
    assert any("--map ttft_unit=s" in w for w in m.warnings)
    # TTFTs in seconds that fit inside their latency stay seconds
    raw2 = raw.with_columns(pl.col("ttft") * 1e-3)
    assert ql.detect_columns(raw2.schema, sample=raw2).ttft_unit == "s"


@pytest.mark.hypothesis
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 200), batch=st.integers(1, 90), seed=st.integers(0, 2**16),
       window=st.sampled_from([None, "10m"]))
def test_any_llm_log_and_any_batch_size(tmp_path, n, batch, seed, window):
    pytest.importorskip("pyarrow")
    raw = vllm_log(n, seed=seed)
    rng = np.random.default_rng(seed)
    raw = raw.with_columns(pl.Series("itls", [rng.exponential(0.02, int(k)).tolist()
                                              for k in np.maximum(raw["completion_tokens"].to_numpy() - 1, 0)],
                                     dtype=pl.List(pl.Float64)))
    p = tmp_path / f"llm-{n}-{seed}.parquet"
    raw.write_parquet(p, row_group_size=max(1, n // 3))
    rules = [{**r, "window": window} if window else r for r in RULES]
    ref = qr.evaluate(ql.read_logs(str(p), keep=["model"]), rules, now=NOW)
    res = qrd.evaluate(str(p), rules, now=NOW, executor="local", batch_rows=batch)
    assert_frame_equal(res.decisions, ref)


def test_ttft_beyond_latency_names_the_unit_that_fits():
    raw = pl.DataFrame({"ts": np.arange(4.0), "latency": [1.0, 2.0, 1.5, 3.0], "ttft_s": [40.0, 35.0, 0.2, 0.3]})
    rep = ql.read_logs(raw).report
    check = next(c for c in rep.failures() if c.name == "ttft_exceeds_latency")
    assert check.failed == 2 and check.hint is not None and "--map ttft_unit=ms" in check.hint
    assert "--map ttft_unit=ms" in rep.summary()
