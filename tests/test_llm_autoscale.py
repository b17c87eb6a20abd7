"""Autoscaling an LLM fleet (qcore.llm.Autoscale): the qcore.autoscale policies on KV
usage, waiting, running, tokens/s, TTFT quantiles and composites. Every request ends
once; the count stays within its bounds; a policy that never scales is the static fleet
bit for bit; no request reaches a replica before its cold start ends or after it began
draining; a step in load scales by the HPA formula."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcore import autoscale, llm, sim
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

REP = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000,
                  price_per_hour=2.0)


def _ramp(n: int, lo: float, hi: float, seed: int = 1) -> llm.Workload:
    """Poisson arrivals whose rate rises linearly from ``lo`` to ``hi`` requests/s."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, n) / np.linspace(lo, hi, n)
    return llm.Workload.from_frame(pl.DataFrame({
        "arrival": np.cumsum(gaps),
        "prompt_tokens": rng.integers(100, 1500, n),
        "output_tokens": rng.integers(10, 300, n),
    }))


def _check_invariants(w: llm.Workload, r: llm.LlmResult, a: llm.Autoscale) -> None:
    # Conservation: every request in exactly one final status.
    counts = r.requests["status"].value_counts()
    assert int(counts["count"].sum()) == len(w)
    assert r.finished + r.rejected + r.shed + r.timed_out + r.unfinished == len(w)
    assert r.unfinished == 0
    sc = r.scaling
    assert sc is not None and r.replica_lives is not None
    active = sc["ready"] + sc["starting"]
    assert int(active.min()) >= a.min_replicas
    assert int(active.max()) <= a.max_replicas
    assert (active == sc["target"]).all()
    assert r.peak_replicas is not None and r.peak_replicas <= a.max_replicas
    # Routing only to routable replicas: each request arrived within a life of its
    # replica, after the cold start and before the drain began.
    lives = r.replica_lives.with_columns(pl.col("drain").fill_null(math.inf))
    req = r.requests.filter(pl.col("replica").is_not_null()).select("id", "arrival", "replica")
    joined = req.join(lives.with_columns(pl.col("replica").cast(pl.Int32)),
                      on="replica", how="left")
    ok = joined.filter((pl.col("ready") <= pl.col("arrival"))
                       & (pl.col("arrival") < pl.col("drain")))
    assert ok["id"].n_unique() == req.height
    # Drained replicas leave only once their requests have finished.
    left = r.replica_lives.filter(pl.col("left").is_not_null())
    for row in left.iter_rows(named=True):
        reqs = r.requests.filter((pl.col("replica") == row["replica"])
                                 & (pl.col("arrival") < row["left"]))
        if reqs.height:
            assert float(reqs["finish"].max()) <= row["left"]
    assert r.replica_seconds is not None and r.replica_seconds > 0


@pytest.mark.parametrize("router", ["round_robin", "random", "least_requests",
                                    "power_of_two", "vllm_dp", "least_tokens"])
def test_a_fixed_policy_is_the_static_fleet_bit_for_bit(router: str) -> None:
    w = _ramp(2000, 5.0, 25.0)
    f = llm.Fleet(replicas=3, router=router)
    base = llm.simulate(w, REP, f)
    a = llm.Autoscale(autoscale.Fixed(3), metric="kv", min_replicas=1, max_replicas=8)
    r = llm.simulate(w, REP, f, autoscale=a)
    assert r.requests.equals(base.requests)
    assert r.ttft.to_bytes() == base.ttft.to_bytes()
    assert r.t_end == base.t_end
    assert r.scale_events == 0
    assert r.replica_seconds == pytest.approx(3 * r.duration, rel=1e-9)
    assert r.gpu_hours == pytest.approx(base.gpu_hours, rel=1e-9)


def test_a_step_in_waiting_scales_by_the_hpa_formula() -> None:
    # Two replicas that run one request at a time in 1000 s steps: 20 requests at t = 0
    # leave 9 waiting on each. At the HPA's first sync (t = 15 s) it asks for
    # ceil(current × metric / target) = ceil(2 × 9 / 2) = 9 (rate limit lifted).
    w = llm.Workload(arrival=np.zeros(20), prompt_tokens=np.full(20, 10),
                     output_tokens=np.full(20, 2))
    rep = llm.Replica(step_time=llm.Linear(c0=1000.0, c_tok=0.0), num_blocks=1000,
                      max_num_seqs=1)
    hpa = autoscale.HPA(target=2.0, up_policies=(("pods", 100.0, 15.0),))
    a = llm.Autoscale(hpa, metric="waiting", max_replicas=16, cold_start=30.0)
    r = llm.simulate(w, rep, llm.Fleet(replicas=2), autoscale=a)
    sc = r.scaling
    assert sc is not None
    before = sc.filter(pl.col("t") < 15.0)
    assert (before["target"] == 2).all()
    at = sc.filter(pl.col("t") == 15.0).row(0, named=True)
    assert at["metric"] == 9.0
    assert (at["target"], at["ready"], at["starting"]) == (math.ceil(2 * 9 / 2), 2, 7)
    # The cold start: not routable at 44 s, routable at 45 s.
    assert sc.filter(pl.col("t") == 44.0)["ready"].item() == 2
    assert sc.filter(pl.col("t") == 45.0)["ready"].item() == 9
    assert r.finished == 20


@pytest.mark.parametrize("policy", [
    autoscale.HPA(target=0.4, down_stabilization=60.0),
    autoscale.KPA(target=0.5, stable_window=30.0),
    autoscale.TargetTracking(target=0.4, period=15.0, scale_in_cooldown=60.0,
                             scale_out_cooldown=30.0),
    autoscale.Predictive(service_mean=0.25, slo=5.0, down_window=30.0),
])
def test_policies_scale_up_and_down_on_kv_within_bounds(policy: autoscale.ScalingPolicy) -> None:
    # Load rises, then falls (the workload reversed in time).
    up = _ramp(2500, 2.0, 30.0, seed=3)
    arr = np.asarray(up.arrival)
    down_arr = arr[-1] + np.cumsum(np.diff(arr[::-1], prepend=arr[-1]) * -1.0)
    w = llm.Workload(arrival=np.concatenate([arr, down_arr + 1.0]),
                     prompt_tokens=np.concatenate([up.prompt_tokens, up.prompt_tokens]),
                     output_tokens=np.concatenate([up.output_tokens, up.output_tokens]))
    a = llm.Autoscale(policy, metric="kv", min_replicas=1, max_replicas=5,
                      cold_start=sim.LogNormal(mean=20.0, cv=0.3), seed=4)
    r = llm.simulate(w, REP, llm.Fleet(replicas=1, router="least_requests"), autoscale=a)
    _check_invariants(w, r, a)
    assert r.scale_events >= 2
    assert int(r.scaling["target"].max()) > 1
    # Load falls: replicas drained, and the count ends below its peak.
    assert r.replica_lives is not None and r.replica_lives["drain"].drop_nulls().len() >= 1
    assert int(r.scaling["target"][-1]) < int(r.scaling["target"].max())


@pytest.mark.parametrize("metric", ["waiting", "running", "tokens_per_s", "ttft_p99",
                                    "ttft_p50", {"waiting": 4.0, "kv": 0.5}])
def test_every_metric_drives_the_hpa(metric: str | dict[str, float]) -> None:
    w = _ramp(2500, 2.0, 40.0, seed=5)
    target = {"waiting": 2.0, "running": 20.0, "tokens_per_s": 300.0, "ttft_p99": 0.5,
              "ttft_p50": 0.2}.get(metric, 1.0) if isinstance(metric, str) else 1.0
    a = llm.Autoscale(autoscale.HPA(target=target), metric=metric, max_replicas=6,
                      cold_start=10.0)
    r = llm.simulate(w, REP, llm.Fleet(replicas=1), autoscale=a)
    _check_invariants(w, r, a)
    assert int(r.scaling["target"].max()) > 1
    s = r.summary()["autoscale"]
    assert s["replicas_max"] <= 6
    assert s["cost"] == pytest.approx(r.gpu_hours * 2.0)


def test_composite_is_the_max_of_the_ratios() -> None:
    w = _ramp(1500, 2.0, 30.0, seed=6)
    kw = dict(cold_start=10.0, max_replicas=4)
    pol = autoscale.Fixed(2)
    comp = llm.simulate(w, REP, llm.Fleet(replicas=2), autoscale=llm.Autoscale(
        pol, metric={"waiting": 4.0, "kv": 0.5}, **kw)).scaling
    wt = llm.simulate(w, REP, llm.Fleet(replicas=2), autoscale=llm.Autoscale(
        pol, metric="waiting", **kw)).scaling
    kv = llm.simulate(w, REP, llm.Fleet(replicas=2), autoscale=llm.Autoscale(
        pol, metric="kv", **kw)).scaling
    assert comp is not None and wt is not None and kv is not None
    want = np.maximum(wt["metric"].to_numpy() / 4.0, kv["metric"].to_numpy() / 0.5)
    np.testing.assert_allclose(comp["metric"].to_numpy(), want, rtol=1e-12)


def test_bad_configurations_are_named() -> None:
    with pytest.raises(InvalidArgumentError, match="min_replicas"):
        llm.Autoscale(autoscale.HPA(), min_replicas=0)
    with pytest.raises(InvalidArgumentError, match="max_replicas"):
        llm.Autoscale(autoscale.HPA(), min_replicas=3, max_replicas=2)
    with pytest.raises(InvalidTypeError):
        llm.Autoscale("hpa")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="KPA"):
        llm.Autoscale(autoscale.KPA())
    w = _ramp(50, 1.0, 2.0)
    with pytest.raises(InvalidArgumentError, match="metric"):
        llm.simulate(w, REP, llm.Fleet(), autoscale=llm.Autoscale(autoscale.HPA(), metric="gpu"))
    with pytest.raises(InvalidArgumentError, match="Predictive"):
        llm.simulate(w, REP, llm.Fleet(), autoscale=llm.Autoscale(autoscale.Predictive()))
    with pytest.raises(InvalidArgumentError, match="replicas"):
        llm.simulate(w, REP, llm.Fleet(replicas=9),
                     autoscale=llm.Autoscale(autoscale.HPA(), max_replicas=4))
    with pytest.raises(InvalidArgumentError, match="Disaggregated"):
        llm.simulate(w, REP, llm.Disaggregated(decode=REP),
                     autoscale=llm.Autoscale(autoscale.HPA()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 300),
    rate=st.floats(0.5, 40.0),
    initial=st.integers(1, 3),
    lo=st.integers(1, 2),
    hi=st.integers(3, 6),
    kind=st.sampled_from(["hpa", "kpa", "target", "predictive"]),
    metric=st.sampled_from(["kv", "waiting", "running", "tokens_per_s", "ttft_p90"]),
    cold=st.floats(0.0, 60.0),
    dt=st.sampled_from([0.5, 1.0, 2.0]),
    router=st.sampled_from(["round_robin", "least_requests", "random", "power_of_two"]),
    seed=st.integers(0, 1000),
)
def test_property_random_small_fleets(n: int, rate: float, initial: int, lo: int, hi: int,
                                      kind: str, metric: str, cold: float, dt: float,
                                      router: str, seed: int) -> None:
    initial = min(max(initial, lo), hi)
    rng = np.random.default_rng(seed)
    w = llm.Workload(arrival=np.cumsum(rng.exponential(1.0 / rate, n)),
                     prompt_tokens=rng.integers(1, 3000, n),
                     output_tokens=rng.integers(1, 400, n))
    rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=3e-5), num_blocks=300,
                      max_num_seqs=16)
    policy: autoscale.ScalingPolicy = {
        "hpa": autoscale.HPA(target=0.5, down_stabilization=20.0),
        "kpa": autoscale.KPA(target=0.5, stable_window=10.0),
        "target": autoscale.TargetTracking(target=0.5, period=5.0, scale_in_cooldown=10.0,
                                           scale_out_cooldown=5.0, in_points=3),
        "predictive": autoscale.Predictive(service_mean=0.3, slo=3.0, period=5.0,
                                           down_window=10.0),
    }[kind]
    a = llm.Autoscale(policy, metric=metric, min_replicas=lo, max_replicas=hi,
                      cold_start=sim.LogNormal(mean=cold, cv=0.5) if cold > 0 else 0.0,
                      sample_interval=dt, ttft_window=10.0, seed=seed)
    r = llm.simulate(w, rep, llm.Fleet(replicas=initial, router=router, seed=seed),
                     autoscale=a)
    assert r.finished + r.rejected + r.shed + r.timed_out + r.unfinished == n
    assert r.scaling is not None and r.replica_seconds is not None
    if r.scaling.height:   # runs shorter than one sampling interval take no sample
        _check_invariants(w, r, a)


# --------------------------------------------------------------------------- CLI

def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from qcore.cli import main

    rc = main(argv)
    return rc, capsys.readouterr().out


@pytest.mark.parametrize("policy,metric,target", [
    ("hpa", "waiting", "2"), ("kpa", "running", "8"), ("target", "ttft_p99", "0.5"),
    ("predictive", "kv", "2"), ("hpa", "tokens_per_s", "400"), ("hpa", "kv", "0.3"),
])
def test_cli_autoscale_json_is_strict_and_bounded(policy: str, metric: str, target: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    rc, out = _cli(["llm", "simulate", "poisson:12", "--model", "llama-3-8b", "--gpu",
                    "a100-80gb", "--requests", "3000", "--prompt-tokens", "1500",
                    "--output-tokens", "200", "--router", "least_requests",
                    "--autoscale", policy, "--scale-metric", metric, "--scale-target", target,
                    "--min-replicas", "1", "--max-replicas", "4", "--cold-start", "30",
                    "--format", "json"], capsys)
    assert rc == 0
    s = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    a = s["autoscale"]
    assert a["policy"] == policy and a["metric"] == metric
    assert 1 <= a["replicas_min"] <= a["replicas_max"] <= 4
    assert a["cold_start_cv"] == 0.3
    assert len(a["changes"]) == a["scale_events"]
    assert a["gpu_hours"] > 0 and s["finished"] == 3000


def test_cli_autoscale_text_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _cli(["llm", "simulate", "poisson:12", "--model", "llama-3-8b", "--gpu",
                    "a100-80gb", "--requests", "2000", "--autoscale", "hpa", "--scale-metric",
                    "waiting", "--scale-target", "2", "--max-replicas", "3"], capsys)
    assert rc == 0
    assert "autoscale hpa on waiting (target 2)" in out and "GPU-hours" in out
    for bad in (["--autoscale", "hpa"], ["--autoscale", "hpa", "--scale-target", "-1"],
                ["--autoscale", "hpa", "--scale-target", "1", "--scale-metric", "gpu"],
                ["--autoscale", "hpa", "--scale-target", "1", "--min-replicas", "0"],
                ["--autoscale", "hpa", "--scale-target", "1", "--prefill-replicas", "1",
                 "--decode-replicas", "1"]):
        rc, _ = _cli(["llm", "simulate", "poisson:2", "--model", "llama-3-8b", "--gpu",
                      "a100-80gb", "--requests", "50", *bad], capsys)
        assert rc == 1, bad
