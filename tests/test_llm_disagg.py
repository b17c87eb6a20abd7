"""Disaggregated prefill and decode pools with KV transfer (``qcore.llm.Disaggregated``)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from qcore import llm
from qcore.exceptions import InvalidArgumentError

BPT = llm.KvTransfer.for_model("llama-3-8b", bandwidth=1.0).bytes_per_token


def _time(x: llm.KvTransfer, prompt: int) -> float:
    """The transfer time the engine must apply (the definition, independently)."""
    return x.latency + prompt * x.bytes_per_token / x.bandwidth


def _workload(n: int = 300, rate: float = 6.0, seed: int = 3) -> llm.Workload:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / rate, size=n))
    return llm.Workload.from_frame(pl.DataFrame({
        "arrival": t - t[0],
        "prompt_tokens": rng.integers(20, 1500, size=n),
        "output_tokens": rng.integers(1, 120, size=n),
    }))


def _replica(scheduler: str, c0: float = 0.01, c_tok: float = 4e-5,
             num_blocks: int = 3000) -> llm.Replica:
    return llm.Replica(step_time=llm.Linear(c0=c0, c_tok=c_tok, c_seq=1e-4),
                       num_blocks=num_blocks, scheduler=scheduler,
                       max_num_batched_tokens=2048)


def test_bytes_per_token_from_the_model_shape() -> None:
    # Llama 3 8B: 32 layers, 8 KV heads of 128, bf16: 2·32·8·128·2 bytes.
    assert BPT == 2 * 32 * 8 * 128 * 2
    x = llm.KvTransfer.for_model("llama-2-70b", bandwidth=50e9, latency=2e-3)
    assert x.bytes_per_token == 2 * 80 * 8 * 128 * 2


@pytest.mark.parametrize("scheduler", ["vllm_v1", "distserve"])
@pytest.mark.parametrize("pd", [(1, 1), (1, 3), (2, 2)])
def test_conservation(scheduler: str, pd: tuple[int, int]) -> None:
    w = _workload()
    rep = _replica(scheduler)
    x = llm.KvTransfer.for_model("llama-3-8b", bandwidth=10e9, latency=5e-3)
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep, prefill_replicas=pd[0],
                                                decode_replicas=pd[1], transfer=x))
    q = r.requests
    assert q.height == len(w.arrival)
    assert r.finished + r.rejected == len(w.arrival)  # every request ends (the run drains)
    done = q.filter(pl.col("status") == "finished")
    assert (done["output_tokens"] == pl.Series(w.output_tokens)[done["id"]]).all()
    assert r.output_tokens == int(done["output_tokens"].sum())
    # Arrivals only at prefill replicas, finishes split over both pools.
    rs = r.replica_stats
    assert int(rs["arrived"][: pd[0]].sum()) == len(w.arrival) - r.rejected
    assert int(rs["arrived"][pd[0]:].sum()) == 0
    assert int(rs["finished"].sum()) == r.finished
    assert (q["ttft"] <= q["e2e"]).all()


@pytest.mark.parametrize("scheduler", ["vllm_v1", "distserve"])
def test_infinite_bandwidth_zero_latency_is_no_transfer(scheduler: str) -> None:
    w = _workload()
    rep = _replica(scheduler)
    base = llm.simulate(w, rep, llm.Disaggregated(decode=rep, prefill_replicas=2,
                                                   decode_replicas=3))
    x = llm.KvTransfer(bandwidth=math.inf, latency=0.0, bytes_per_token=BPT)
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep, prefill_replicas=2,
                                                decode_replicas=3, transfer=x))
    assert r.requests.equals(base.requests)
    assert r.replica_stats.equals(base.replica_stats)


@pytest.mark.parametrize("scheduler", ["vllm_v1", "distserve"])
def test_transfer_delays_the_first_decode_token_by_the_transfer_time(scheduler: str) -> None:
    # Constant step time and a replica per request in each pool: every request is alone
    # on its prefill and decode replica, so the transfer shifts its decode tokens exactly.
    w = _workload(n=60)
    c = 0.02
    rep = llm.Replica(step_time=llm.Linear(c0=c), num_blocks=3000, scheduler=scheduler,
                      max_num_batched_tokens=2048)
    pools = {"prefill_replicas": len(w.arrival), "decode_replicas": len(w.arrival)}
    x = llm.KvTransfer.for_model("llama-3-70b", bandwidth=5e9, latency=0.003)
    base = llm.simulate(w, rep, llm.Disaggregated(decode=rep, **pools)).requests
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep, transfer=x, **pools)).requests
    assert (r["status"] == "finished").all()
    np.testing.assert_array_equal(r["first_token"], base["first_token"])
    p = r["prompt_tokens"].to_numpy()
    o = r["output_tokens"].to_numpy()
    dt = np.array([_time(x, int(v)) for v in p])
    dt[o == 1] = 0.0  # a one-token request ends with its prefill
    np.testing.assert_allclose(r["finish"] - base["finish"], dt, rtol=0, atol=1e-12)
    # The second token comes one transfer and one step after the first.
    many = o > 1
    np.testing.assert_allclose((r["finish"] - r["first_token"]).to_numpy()[many],
                               dt[many] + (o[many] - 1) * c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scheduler", ["vllm_v1", "distserve"])
def test_ample_pools_reach_the_analytic_split(scheduler: str) -> None:
    # TTFT → the prefill-only step of the prompt; TPOT → the decode-only step of one token.
    n, prompt = 80, 600
    w = llm.Workload.poisson(rate=20.0, n=n, prompt_tokens=prompt, output_tokens=40, seed=5)
    st = llm.Linear(c0=0.015, c_tok=5e-5, c_seq=2e-4)
    rep = llm.Replica(step_time=st, num_blocks=3000, scheduler=scheduler,
                      max_num_batched_tokens=2048)
    x = llm.KvTransfer(bandwidth=math.inf, latency=0.0, bytes_per_token=BPT)
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep, prefill_replicas=n,
                                                decode_replicas=n, transfer=x))
    prefill_only = 0.015 + 5e-5 * prompt + 2e-4
    decode_only = 0.015 + 2e-4
    np.testing.assert_allclose(r.requests["ttft"], prefill_only, rtol=1e-12)
    np.testing.assert_allclose(r.requests["tpot"], decode_only, rtol=1e-12)
    # A colocated replica serving the same load interleaves the phases: slower tokens.
    colo = llm.simulate(w, rep)
    assert colo.requests["tpot"].mean() > 1.5 * decode_only  # type: ignore[operator]


def test_prefill_pool_is_md1() -> None:
    # DistServe's prefill-pool model: Poisson arrivals, a fixed prompt, one prefill replica
    # serving one request per step in D seconds: mean queueing delay ρD / (2(1 − ρ)).
    lam, d, n = 7.0, 0.1, 40000
    rho = lam * d
    w = llm.Workload.poisson(rate=lam, n=n, prompt_tokens=512, output_tokens=8, seed=11)
    pre = llm.Replica(step_time=llm.Linear(c0=d), num_blocks=1000, scheduler="distserve",
                      max_num_batched_tokens=512)
    dec = llm.Replica(step_time=llm.Linear(c0=0.01), num_blocks=1000, scheduler="distserve")
    r = llm.simulate(w, pre, llm.Disaggregated(decode=dec, decode_replicas=2))
    q = r.requests["queue"].to_numpy()[2000:]  # past the warm-up
    # The step starts the moment a request is first scheduled: TTFT = queue + D.
    np.testing.assert_allclose(r.requests["ttft"] - r.requests["queue"], d, atol=1e-9)
    batches = q[: len(q) // 40 * 40].reshape(40, -1).mean(axis=1)
    half = stats.t.ppf(0.995, 39) * batches.std(ddof=1) / math.sqrt(40)
    expect = rho * d / (2 * (1 - rho))
    assert abs(batches.mean() - expect) < half, (batches.mean(), expect, half)
    assert half < 0.1 * expect  # the interval is informative


def test_bad_transfer_is_named() -> None:
    with pytest.raises(InvalidArgumentError, match="bandwidth"):
        llm.KvTransfer(bandwidth=0.0)
    with pytest.raises(InvalidArgumentError, match="latency"):
        llm.KvTransfer(bandwidth=1e9, latency=-1.0)
    with pytest.raises(InvalidArgumentError, match="bytes_per_token"):
        llm.KvTransfer(bandwidth=1e9, bytes_per_token=math.nan)
    rep = _replica("vllm_v1")
    with pytest.raises(InvalidArgumentError, match="transfer"):
        llm.Disaggregated(decode=rep, transfer=1e9)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="model"):
        llm.KvTransfer.for_model("no-such-model", bandwidth=1e9)


def test_tight_decode_kv_preempts_and_still_conserves() -> None:
    # vLLM V1 decode replicas with little KV: arriving caches preempt (recompute there).
    w = _workload(n=200, rate=20.0)
    pre = _replica("vllm_v1")
    dec = _replica("vllm_v1", num_blocks=400)
    x = llm.KvTransfer.for_model("llama-3-8b", bandwidth=10e9, latency=1e-3)
    r = llm.simulate(w, pre, llm.Disaggregated(decode=dec, decode_replicas=2, transfer=x))
    rs = r.replica_stats
    assert int(rs["preemptions"][1:].sum()) > 0
    assert int(rs["max_blocks_used"][1:].max()) <= 400
    assert r.finished + r.rejected == len(w.arrival)
    assert r.rejected == int(((w.prompt_tokens + w.output_tokens - 1 + dec.block_size - 1)
                                    // dec.block_size > 400).sum())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), p=st.integers(1, 3), d=st.integers(1, 3),
       bw=st.sampled_from([1e8, 1e9, 1e10, math.inf]), lat=st.sampled_from([0.0, 1e-3, 0.05]),
       sched=st.sampled_from(["vllm_v1", "distserve"]), seed=st.integers(0, 10_000))
def test_property_every_request_ends_and_waits_for_its_transfer(
        n: int, p: int, d: int, bw: float, lat: float, sched: str, seed: int) -> None:
    w = _workload(n=n, rate=15.0, seed=seed)
    rep = _replica(sched, num_blocks=600)
    x = llm.KvTransfer(bandwidth=bw, latency=lat, bytes_per_token=BPT)
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep, prefill_replicas=p,
                                                decode_replicas=d, transfer=x))
    q = r.requests
    assert r.finished + r.rejected == n
    done = q.filter((pl.col("status") == "finished") & (pl.col("output_tokens") > 1))
    dt = np.array([_time(x, int(v)) for v in done["prompt_tokens"]])
    # The second token comes after the transfer and at least one decode step (c0 ≥ 0.01).
    assert (done["finish"].to_numpy() - done["first_token"].to_numpy() >= dt + 0.01 - 1e-12).all()
