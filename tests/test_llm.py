"""qcore.llm: the exact limits of the engine, the fleet, presets, workloads and bad input."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import polars as pl
import pytest

from qcore import llm
from qcore.exceptions import InvalidArgumentError, QcoreValueError


def _rep(**kw: object) -> llm.Replica:
    base: dict[str, object] = dict(step_time=llm.Linear(c0=0.01, c_tok=1e-5), num_blocks=2000)
    base.update(kw)
    return llm.Replica(**base)  # type: ignore[arg-type]


def _fixed(n: int, gap: float, p: int, o: int) -> llm.Workload:
    return llm.Workload(np.arange(n) * gap, np.full(n, p), np.full(n, o))


# --------------------------------------------------------------------------- §9 limits


@pytest.mark.parametrize("prompt,budget", [(1, 2048), (5000, 2048), (4096, 4096), (333, 100)])
def test_one_request_alone(prompt: int, budget: int) -> None:
    st = llm.Linear(c0=0.004, c_tok=2e-5, c_seq=3e-4, c_ctx=1e-7)
    out = 9
    rep = _rep(step_time=st, max_num_batched_tokens=budget, num_blocks=10_000)
    r = llm.simulate(llm.Workload(np.array([2.0]), np.array([prompt]), np.array([out])), rep)
    ttft, done = 0.0, 0
    while done < prompt:
        n = min(budget, prompt - done)
        done += n
        ttft += st.duration(prefill_tokens=[n], prefill_ctx=[done])
    e2e = ttft + sum(st.duration(decode_ctx=[prompt + g]) for g in range(1, out))
    row = r.requests.row(0, named=True)
    assert row["ttft"] == pytest.approx(ttft, rel=1e-12)
    assert row["e2e"] == pytest.approx(e2e, rel=1e-12)
    assert row["tpot"] == pytest.approx((e2e - ttft) / (out - 1), rel=1e-12)
    assert row["queue"] == 0.0
    assert r.itl.count == out - 1


def test_one_request_decode_batch_of_one_is_constant_with_a_table() -> None:
    st = llm.presets.step_time("splitwise/llama2-70b/h100-80gb/tp8")
    rep = _rep(step_time=st, num_blocks=10_000, max_num_batched_tokens=8192)
    r = llm.simulate(llm.Workload(np.array([0.0]), np.array([1000]), np.array([11])), rep)
    d1 = st.duration(decode_ctx=[1])
    row = r.requests.row(0, named=True)
    assert row["ttft"] == pytest.approx(st.duration(prefill_tokens=[1000]))
    assert row["e2e"] == pytest.approx(row["ttft"] + 10 * d1)


def test_no_preemption_every_request_emits_its_tokens() -> None:
    w = llm.Workload.poisson(rate=20.0, n=500, prompt_tokens=np.arange(1, 800),
                             output_tokens=np.arange(1, 300), seed=3)
    r = llm.simulate(w, _rep(num_blocks=100_000))
    assert r.preemptions == 0
    assert (r.requests["status"] == "finished").all()
    assert (r.requests["output_tokens"].to_numpy() == w.output_tokens).all()
    assert r.output_tokens == int(w.output_tokens.sum())


def test_little_law_per_replica_from_the_timeline() -> None:
    # Sampled waiting + running (state accounting) against arrival rate × mean e2e.
    w = llm.Workload.poisson(rate=30.0, n=3000, prompt_tokens=np.arange(50, 600),
                             output_tokens=np.arange(10, 200), seed=5)
    r = llm.simulate(w, _rep(num_blocks=3000, max_num_batched_tokens=1024),
                     llm.Fleet(replicas=3, router="least_requests"), timeline_interval=0.01)
    assert r.timeline is not None
    span = r.t_end - r.t0
    for i in range(3):
        tl = r.timeline.filter(pl.col("replica") == i)
        mine = r.requests.filter(pl.col("replica") == i)
        lam = mine.height / span
        mean_in_system = float((tl["waiting"] + tl["running"]).mean())  # type: ignore[arg-type]
        assert mean_in_system == pytest.approx(lam * float(mine["e2e"].mean()), rel=0.02)  # type: ignore[arg-type]
        exact = r.replica_stats.row(i, named=True)["in_system_area"]
        assert exact == pytest.approx(float(mine["e2e"].sum()), rel=1e-9)


def test_throughput_ceiling() -> None:
    # Constant step time, ample KV and sequences: the token budget binds. A request needs
    # P + O - 1 budget tokens (its prompt, then one per decode after the first token), so
    # the ceiling is budget / (d · (P + O - 1)) requests per second.
    p, o, budget, d = 300, 50, 512, 0.02
    ceiling = budget / (d * (p + o - 1))
    rep = _rep(step_time=llm.Linear(c0=d), num_blocks=100_000, max_num_batched_tokens=budget,
               max_num_seqs=1024)
    over = llm.simulate(_fixed(4000, 1.0 / (1.3 * ceiling), p, o), rep)
    assert over.request_throughput == pytest.approx(ceiling, rel=0.03)
    # Past the ceiling the queue grows without bound: the wait grows along the run.
    q = over.requests["queue"].to_numpy()
    assert q[-200:].mean() > 10 * q[:200].mean()
    under = llm.simulate(_fixed(4000, 1.0 / (0.8 * ceiling), p, o), rep)
    uq = under.requests["queue"].to_numpy()
    assert uq.max() < 20 * d


def test_kv_bound_ceiling() -> None:
    # Large budget, many sequences, a small KV cache: memory binds. A request holds about
    # P + O/2 tokens over O steps (g = P·O + O²/2 token-steps), so the ceiling is
    # M / (d · g) requests per second (Nie-Si-Zhou).
    p, o, d, bs = 64, 256, 0.01, 16
    blocks = 2048
    m = blocks * bs
    g = p * o + o * o / 2
    ceiling = m / (d * g)
    rep = _rep(step_time=llm.Linear(c0=d), num_blocks=blocks, block_size=bs,
               max_num_batched_tokens=16384, max_num_seqs=4096)
    over = llm.simulate(_fixed(6000, 1.0 / (1.5 * ceiling), p, o), rep)
    assert over.request_throughput == pytest.approx(ceiling, rel=0.10)


# --------------------------------------------------------------------------- fleet


ROUTERS = ["round_robin", "random", "least_requests", "least_tokens", "power_of_two",
           "vllm_dp", "prefix_affinity"]


@pytest.mark.parametrize("router", ROUTERS)
def test_one_replica_fleet_equals_the_engine_alone(router: str) -> None:
    w = llm.Workload.poisson(rate=40.0, n=400, prompt_tokens=np.arange(1, 600),
                             output_tokens=np.arange(1, 100), seed=2)
    rep = _rep(num_blocks=200, max_num_batched_tokens=256)
    a = llm.simulate(w, rep, trace=True, timeline_interval=0.5)
    b = llm.simulate(w, rep, llm.Fleet(replicas=1, router=router, staleness=0.3), trace=True,
                     timeline_interval=0.5)
    assert a.preemptions > 0
    assert a.requests.equals(b.requests)
    assert a.replica_stats.equals(b.replica_stats)
    assert a.steps is not None and b.steps is not None and a.steps.equals(b.steps)
    assert a.timeline is not None and b.timeline is not None and a.timeline.equals(b.timeline)
    assert a.ttft.to_bytes() == b.ttft.to_bytes() and a.itl.to_bytes() == b.itl.to_bytes()


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("staleness", [0.0, 1.0])
def test_fleet_conserves(router: str, staleness: float) -> None:
    w = llm.Workload.poisson(rate=60.0, n=1200, prompt_tokens=np.arange(1, 600),
                             output_tokens=np.arange(1, 100), seed=4)
    r = llm.simulate(w, _rep(num_blocks=400, max_num_batched_tokens=512),
                     llm.Fleet(replicas=4, router=router, staleness=staleness))
    assert (r.requests["status"] == "finished").all()
    counts = r.requests.group_by("replica").len().sort("replica")["len"].to_list()
    assert sum(counts) == 1200 and len(counts) == 4
    if router == "round_robin":
        assert counts == [300] * 4


def test_balancing_routers_beat_round_robin_on_skewed_work() -> None:
    # Every 4th request is long: round robin sends all of them to one replica.
    n = 800
    p = np.where(np.arange(n) % 4 == 0, 3000, 50)
    o = np.where(np.arange(n) % 4 == 0, 400, 20)
    w = llm.Workload(np.arange(n) * 0.05, p, o)
    rep = _rep(num_blocks=5000, max_num_batched_tokens=1024)
    rr = llm.simulate(w, rep, llm.Fleet(replicas=4, router="round_robin"))
    lt = llm.simulate(w, rep, llm.Fleet(replicas=4, router="least_tokens"))
    assert lt.e2e.quantile(0.99) < rr.e2e.quantile(0.99)


def test_prefix_affinity_raises_the_hit_rate() -> None:
    # 16 families of prompts sharing a 6-block prefix each; each replica's cache holds
    # about 5 prompts, so spreading every family over every replica loses most hits.
    rng = np.random.default_rng(0)
    n = 400
    fam = rng.integers(0, 16, n)
    offs, ids = [0], []
    nxt = 1000
    for f in fam:
        ids += [int(f) * 10 + j for j in range(6)] + [nxt]
        nxt += 1
        offs.append(len(ids))
    w = llm.Workload(np.arange(n) * 0.05, np.full(n, 7 * 64), np.full(n, 10), np.array(offs),
                     np.array(ids), 64)
    rep = _rep(num_blocks=150)
    rr = llm.simulate(w, rep, llm.Fleet(replicas=4, router="round_robin"))
    pa = llm.simulate(w, rep, llm.Fleet(replicas=4, router="prefix_affinity"))
    assert pa.cache_hit_rate > rr.cache_hit_rate + 0.2


# --------------------------------------------------------------------------- results


def test_goodput_and_cost() -> None:
    w = _fixed(100, 0.5, 200, 21)
    rep = _rep(price_per_hour=2.0, gpus=4)
    r = llm.simulate(w, rep, llm.Fleet(replicas=2), slo=llm.SLO(ttft=1.0))
    req_s, tok_s = r.goodput(llm.SLO(ttft=1.0))
    assert req_s == pytest.approx(100 / r.duration)
    assert tok_s == pytest.approx(100 * 21 / r.duration)
    assert r.goodput(llm.SLO(tpot=1e-6)) == (0.0, 0.0)
    assert r.slo_attainment(llm.SLO(e2e=1e9)) == 1.0
    assert r.cost_per_mtok == pytest.approx(2.0 * 4 * 2 / (r.token_throughput * 3600) * 1e6)
    s = r.summary()
    assert s["goodput"]["attainment"] == 1.0 and s["finished"] == 100
    assert math.isnan(r.cache_hit_rate)


def test_memory_to_blocks_presets() -> None:
    r = llm.Replica.from_preset("llama-3-8b", "h100-80gb")
    assert 28_000 <= r.num_blocks <= 30_000
    assert r.max_num_batched_tokens == 8192
    small = llm.Replica.from_preset("llama-3-8b", "l4-24gb")
    assert small.max_num_batched_tokens == 2048 and small.num_blocks < r.num_blocks
    tp = llm.Replica.from_preset("llama-2-70b", "a100-80gb", tensor_parallel=4, max_num_seqs=64)
    assert tp.gpus == 4 and tp.max_num_seqs == 64
    assert llm.presets.kv_capacity_tokens("opt-13b", 1) == 66144


def test_every_step_time_preset_loads() -> None:
    names = llm.presets.step_time_names()
    assert len(names) == 12 + 7 * 2 + 1  # splitwise, distserve (two fits), vidur
    for name in names:
        st = llm.presets.step_time(name)
        d1 = st.duration(decode_ctx=[100])
        d64 = st.duration(decode_ctx=[100] * 64)
        assert 0 < d1 <= d64 < 1.0
        assert st.duration(prefill_tokens=[2048]) > st.duration(prefill_tokens=[128]) > 0


def test_phases_preset_is_distserve_in_ms() -> None:
    st = llm.presets.step_time("distserve/opt-13b/tp1")
    assert isinstance(st, llm.Phases)
    a, b, c = st.prefill
    assert st.duration(prefill_tokens=[512]) == pytest.approx((a + b * 512 + c * 512**2) / 1e3)
    a, b, c = st.decode_small
    assert st.duration(decode_ctx=[300, 400]) == pytest.approx((a + b * 700 + c * 2) / 1e3)


# --------------------------------------------------------------------------- workloads


def test_workload_from_frame_detects_columns_and_sorts() -> None:
    df = pl.DataFrame({"timestamp": [2000, 1000, 1000], "ContextTokens": [5, 6, 7],
                       "GeneratedTokens": [1, 2, 3]})
    w = llm.Workload.from_frame(df, mapping={"time_unit": "ms"})
    assert w.arrival.tolist() == [0.0, 0.0, 1.0]
    assert w.prompt_tokens.tolist() == [6, 7, 5]


def test_real_traces(shared_data) -> None:  # type: ignore[no-untyped-def]
    az = llm.Workload.azure(shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv")
    assert len(az) == 19366 and az.arrival[-1] == pytest.approx(3501.72, abs=0.01)
    assert az.prompt_tokens.mean() == pytest.approx(1155, abs=1)
    mc = llm.Workload.mooncake(shared_data / "mooncake_fast25" / "conversation_trace.jsonl")
    assert len(mc) == 12031 and mc.hash_block_tokens == 512
    rag = llm.Workload.ragpulse(shared_data / "ragpulse" / "0_trace.jsonl")
    read = llm.Workload.read(shared_data / "ragpulse" / "0_trace.jsonl")
    assert np.array_equal(read.arrival, rag.arrival)
    assert llm.Workload.read(
        shared_data / "mooncake_fast25" / "synthetic_trace.jsonl").hash_block_tokens == 512
    assert len(llm.Workload.read(
        shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv")) == 8819
    assert len(rag) == 7106 and rag.hash_ids is None
    assert rag.arrival[-1] == pytest.approx(604_603, abs=1)
    assert rag.prompt_tokens.mean() == pytest.approx(2944, abs=1)
    head = mc.head(2000)
    # A fast replica (each request done before the next few arrive): the engine's hit
    # rate is that of an LRU cache of its capacity replayed offline on the hash ids.
    rep = llm.Replica.from_preset("llama-3-8b", "h100-80gb",
                                  step_time=llm.Linear(c0=0.001, c_tok=1e-7))
    r = llm.simulate(head, rep)
    assert r.finished == 2000 and r.preemptions == 0
    cap = rep.num_blocks * rep.block_size // 512
    lru: OrderedDict[int, None] = OrderedDict()
    hit = look = 0
    assert head.hash_offsets is not None and head.hash_ids is not None
    for i in range(len(head)):
        h = head.hash_ids[head.hash_offsets[i]:head.hash_offsets[i + 1]].tolist()
        p = int(head.prompt_tokens[i])
        run = 0
        while run < len(h) and (run + 1) * 512 <= p - 1 and h[run] in lru:
            run += 1
        hit += run * 512
        look += p
        for x in h:
            lru[x] = None
            lru.move_to_end(x)
        while len(lru) > cap:
            lru.popitem(last=False)
    assert r.cache_hit_rate == pytest.approx(hit / look, abs=0.01)
    # Prefix-aware routing keeps more of the reuse than round robin on a fleet.
    pa = llm.simulate(head, rep, llm.Fleet(replicas=4, router="prefix_affinity"))
    rr = llm.simulate(head, rep, llm.Fleet(replicas=4, router="round_robin"))
    assert pa.cache_hit_rate > rr.cache_hit_rate


# --------------------------------------------------------------------------- bad input


def test_bad_input_names_the_argument() -> None:
    ok = np.array([1, 2])
    with pytest.raises(InvalidArgumentError, match="prompt_tokens must be >= 1"):
        llm.Workload(np.array([0.0, 1.0]), np.array([1, 0]), ok)
    with pytest.raises(InvalidArgumentError, match="output_tokens must be >= 1"):
        llm.Workload(np.array([0.0, 1.0]), ok, np.array([-3, 1]))
    with pytest.raises(InvalidArgumentError, match="arrival contains nan"):
        llm.Workload(np.array([0.0, np.nan]), ok, ok)
    with pytest.raises(InvalidArgumentError, match="non-decreasing"):
        llm.Workload(np.array([1.0, 0.0]), ok, ok)
    with pytest.raises(InvalidArgumentError, match="prompt_tokens contains NaN"):
        llm.Workload(np.array([0.0, 1.0]), np.array([1.0, np.nan]), ok)
    with pytest.raises(InvalidArgumentError, match="step_time.c0"):
        llm.Linear(c0=-1.0)
    with pytest.raises(InvalidArgumentError, match="num_blocks"):
        _rep(num_blocks=0)
    with pytest.raises(InvalidArgumentError, match="router"):
        llm.Fleet(router="fastest")
    with pytest.raises(InvalidArgumentError, match="unknown preset"):
        llm.presets.step_time("splitwise/gpt-5")
    with pytest.raises(InvalidArgumentError, match="model is an unknown preset"):
        llm.Replica.from_preset("gpt-9", "h100-80gb")
    with pytest.raises(InvalidArgumentError, match="gpu is an unknown preset"):
        llm.Replica.from_preset("llama-3-8b", "tpu")
    with pytest.raises(InvalidArgumentError, match="no room for the KV cache"):
        llm.Replica.from_preset("llama-3-70b", "l4-24gb")
    with pytest.raises(InvalidArgumentError, match="strictly increasing"):
        llm.TableStepTime(np.array([1.0, 1.0]), np.array([0.1, 0.2]), np.array([1.0, 2.0]),
                          np.array([0.1, 0.2]))
    with pytest.raises(QcoreValueError):
        llm.Workload.from_frame(pl.DataFrame({"ts": [0.0], "x": [1]}))


def test_a_kv_too_small_for_any_prompt_rejects_and_counts() -> None:
    # 4 blocks of 16 tokens hold 64: every request of 100 tokens is rejected at arrival,
    # and the run still ends.
    w = _fixed(50, 0.1, 100, 5)
    r = llm.simulate(w, _rep(num_blocks=4))
    assert r.rejected == 50 and r.finished == 0
    assert r.requests["replica"].null_count() == 50
    assert (r.requests["status"] == "rejected").all()


# --------------------------------------------------------------------------- saturation


def _mid_rate(times: np.ndarray) -> float:
    """Events per second over the middle 60 % of the events (no start-up, no drain)."""
    t = np.sort(times)
    a, b = int(0.2 * t.size), int(0.8 * t.size)
    return (b - a) / float(t[b] - t[a])


@pytest.mark.slow
def test_knee_sits_at_the_ceiling_on_real_traces(shared_data) -> None:  # type: ignore[no-untyped-def]
    """Below the ceiling throughput follows the offered load; above it, it stays at the
    ceiling: the token-budget ceiling (Li-Dai-Peng) on Azure conversation, the KV-bound
    ceiling (Nie-Si-Zhou) on Mooncake. Constant step time d, so both are closed forms."""
    d = 0.03
    az = llm.Workload.azure(shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv")
    budget = 8192
    tok = llm.Replica(step_time=llm.Linear(c0=d), num_blocks=10**6,
                      max_num_batched_tokens=budget, max_num_seqs=100_000)
    ceiling_tok = budget / (d * float(np.mean(az.prompt_tokens + az.output_tokens - 1)))
    mc = llm.Workload.mooncake(shared_data / "mooncake_fast25" / "conversation_trace.jsonl")
    p, o = mc.prompt_tokens.astype(float), mc.output_tokens.astype(float)
    blocks = 20_000
    kv = llm.Replica(step_time=llm.Linear(c0=d), num_blocks=blocks,
                     max_num_batched_tokens=262_144, max_num_seqs=100_000, prefix_caching=False)
    ceiling_kv = blocks * 16 / (d * float(np.mean(p * o + o * o / 2)))
    for w, rep, ceiling in ((az, tok, ceiling_tok), (mc, kv, ceiling_kv)):
        base = len(w) / float(w.arrival[-1])
        for f in (0.7, 0.85, 1.2, 1.6):
            ws = w.scale_rate(f * ceiling / base)
            r = llm.simulate(ws, rep)
            thr = _mid_rate(r.requests["finish"].drop_nulls().to_numpy())
            if f < 1:
                assert thr == pytest.approx(_mid_rate(ws.arrival), rel=0.05), (ceiling, f)
                assert thr < ceiling
            else:
                assert thr == pytest.approx(ceiling, rel=0.10), (ceiling, f)


# --------------------------------------------------------------------------- synthetic, max rate


def test_synthetic_workloads_use_the_simulator_processes() -> None:
    from qcore import sim

    a = llm.Workload.synthetic(sim.Poisson(rate=50.0), 20_000, sim.LogNormal(mean=800, cv=1.0),
                               sim.Gamma(mean=100, cv=0.5), seed=3)
    b = llm.Workload.synthetic(sim.Poisson(rate=50.0), 20_000, sim.LogNormal(mean=800, cv=1.0),
                               sim.Gamma(mean=100, cv=0.5), seed=3)
    assert np.array_equal(a.arrival, b.arrival) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert a.arrival[0] == 0.0
    assert len(a) / a.arrival[-1] == pytest.approx(50.0, rel=0.03)
    assert a.prompt_tokens.mean() == pytest.approx(800, rel=0.05)
    assert a.output_tokens.mean() == pytest.approx(100, rel=0.02)
    assert a.prompt_tokens.min() >= 1
    bursty = llm.Workload.synthetic(sim.Renewal(sim.Gamma(mean=0.02, cv=3.0)), 20_000, 100, 10)
    gaps = np.diff(bursty.arrival)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.1)
    assert (bursty.prompt_tokens == 100).all()
    with pytest.raises(InvalidArgumentError, match="prompt_tokens must be >= 1"):
        llm.Workload.synthetic(sim.Poisson(rate=1.0), 10, 0, 5)


def test_max_rate_is_the_largest_rate_meeting_the_slo() -> None:
    w = llm.Workload.poisson(rate=1.0, n=1500, prompt_tokens=np.arange(100, 900),
                             output_tokens=np.arange(10, 100), seed=2)
    rep = _rep(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=20_000)
    slo = llm.SLO(ttft=0.3, tpot=0.05)
    rate = llm.max_rate(w, rep, slo, attainment=0.9, rel_tol=0.005)
    base = (len(w) - 1) / float(w.arrival[-1] - w.arrival[0])
    at = llm.simulate(w.scale_rate(rate / base), rep).slo_attainment(slo)
    above = llm.simulate(w.scale_rate(rate * 1.02 / base), rep).slo_attainment(slo)
    assert at >= 0.9 > above
    two = llm.max_rate(w, rep, slo, llm.Fleet(replicas=2, router="least_requests"))
    assert two > 1.8 * rate


def test_replications_give_intervals_that_cover_the_long_run() -> None:
    from qcore import sim

    rep = _rep(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=20_000)

    def make(seed: int) -> llm.Workload:
        return llm.Workload.synthetic(sim.Poisson(8.0), 2000, sim.LogNormal(mean=400, cv=1.0),
                                      sim.Gamma(mean=60, cv=0.5), seed=seed)

    t = llm.replicate(make, rep, replications=8, slo=llm.SLO(ttft=0.5))
    row = t.filter(pl.col("metric") == "request_throughput").row(0, named=True)
    assert row["lo"] <= row["mean"] <= row["hi"]
    assert row["lo"] < 8.0 * 1.05 and row["hi"] > 8.0 * 0.9
    assert len(row["values"]) == 8 and len(set(row["values"])) == 8
    assert set(t["metric"]) >= {"ttft_p99", "tpot_p50", "slo_attainment"}
    with pytest.raises(InvalidArgumentError, match="replications"):
        llm.replicate(make, rep, replications=1)


def test_progress_is_reported_to_the_end() -> None:
    w = _fixed(3000, 0.01, 100, 20)
    calls: list[tuple[int, int]] = []
    r = llm.simulate(w, _rep(), llm.Fleet(replicas=2), progress=lambda d, t: calls.append((d, t)))
    assert r.finished == 3000
    assert calls and calls[-1] == (3000, 3000)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:], strict=False))
    calls.clear()
    llm.simulate(w, _rep(), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (3000, 3000)


def test_design_shorthand_and_quantile_ci() -> None:
    import qcore

    w = llm.Workload.poisson(rate=20.0, n=2000, prompt_tokens=np.arange(50, 500),
                             output_tokens=np.arange(5, 50), seed=9)
    rep = qcore.llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-5), num_blocks=5000)
    a = qcore.llm.simulate(w, replica=rep, replicas=2, router="least_requests")
    b = llm.simulate(w, rep, llm.Fleet(replicas=2, router="least_requests"))
    assert a.requests.equals(b.requests)
    lo, est, hi = a.quantile_ci("ttft", 0.99)
    assert lo is not None and hi is not None and lo <= est <= hi
    assert est == pytest.approx(float(np.quantile(a.requests["ttft"].to_numpy(), 0.99)))
    with pytest.raises(InvalidArgumentError, match="not both"):
        llm.simulate(w, rep, llm.Fleet(), replicas=2)
    with pytest.raises(InvalidArgumentError, match="metric"):
        a.quantile_ci("itl", 0.5)
