"""The engine's `distserve` and `vidur` schedulers reproduce DistServe's simulator
(`simdistserve`, backends vllm and distserve, OPT-13B on A100-80G, TP 1) and Vidur's
`vllm` replica scheduler (Llama-3-8B on one A100) request by request, on the published
runs of the simulators themselves (tests/data/llm_peers, see its SOURCE.md)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --------------------------------------------------------------------------- Vidur

def _vidur_inputs(name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (pl.read_csv(PEERS / f"workload_{name}.csv"),
            pl.read_csv(PEERS / f"vidur_vllm_{name}.csv"))


@pytest.mark.parametrize("name", ["fixed512x128_r2_n1000", "burst200"])
def test_vidur_vllm_per_request_bit_exact(name: str) -> None:
    # Vidur's clock is seconds from 0 (the first arrival): float64 equality, no tolerance.
    wl, ref = _vidur_inputs(name)
    setup = llm.presets.peer("vidur_vllm")
    w = setup.workload(wl["arrival_s"], wl["prompt_len"], wl["output_len"])
    r = setup.simulate(w).requests
    assert (r["status"] == "finished").all()
    for ours, theirs in (("first_token", "first_token_s"), ("finish", "completion_s"),
                         ("first_scheduled", "scheduled_s"), ("ttft", "ttft_s"),
                         ("e2e", "e2e_s")):
        np.testing.assert_array_equal(r[ours].to_numpy(), ref[theirs].to_numpy(), err_msg=ours)
    np.testing.assert_array_equal(r["preemptions"].to_numpy(), ref["num_restarts"].to_numpy())
    tp = ref.filter(pl.col("output_len") > 1)["tpot_s"].to_numpy()
    np.testing.assert_array_equal(r.filter(pl.col("output_tokens") > 1)["tpot"].to_numpy(), tp)


class _VidurReference:
    """Vidur's vllm replica scheduler as PEERS.md describes it, one batch at a time."""

    def __init__(self, prompt: list[int], output: list[int], num_blocks: int,
                 watermark: int, cap: int = 512, budget: int = 16384) -> None:
        n = len(prompt)
        self.pre = list(prompt)           # current prefill size (P' after a restart)
        self.total = [p + d for p, d in zip(prompt, output, strict=True)]
        self.done = [0] * n               # tokens processed
        self.held = [0] * n               # blocks held
        self.restarts = [0] * n
        self.first = [math.nan] * n
        self.finish = [math.nan] * n
        self.queue: list[int] = []        # request queue (front = index 0)
        self.running: list[int] = []      # requests holding KV between batches
        self.free = num_blocks
        self.watermark, self.cap, self.budget = watermark, cap, budget

    def prefill_phase(self) -> list[int]:
        batch: list[int] = []
        while self.queue:
            q = self.queue[0]
            need = -(-self.pre[q] // 16)
            wide = max([self.pre[i] for i in batch] + [self.pre[q]])
            if (self.free - need < self.watermark or (len(batch) + 1) * wide > self.budget
                    or len(self.running) + len(batch) == self.cap):
                break
            self.queue.pop(0)
            self.held[q] = need
            self.free -= need
            batch.append(q)
        return batch

    def restart(self, v: int) -> None:
        self.restarts[v] += 1
        self.pre[v] = self.done[v]
        self.done[v] = 0
        self.free += self.held[v]
        self.held[v] = 0
        self.queue.insert(0, v)

    def decode_phase(self) -> list[int]:
        batch: list[int] = []
        rest = sorted(self.running, key=lambda i: self.arrival[i])
        self.running = []
        while rest and len(batch) < self.cap:
            q = rest.pop(0)
            itself = False
            while self.free == 0 and not itself:
                v = rest.pop() if rest else q
                itself = v == q
                self.restart(v)
            if itself:
                break
            if self.done[q] > 16 * self.held[q]:
                self.held[q] += 1
                self.free -= 1
            batch.append(q)
        self.running = rest
        return batch

    def end(self, batch: list[int], tokens: list[int], t_end: float) -> None:
        for q, tok in zip(batch, tokens, strict=True):
            self.done[q] += tok
            if self.done[q] == self.pre[q]:
                self.done[q] += 1
                if math.isnan(self.first[q]):
                    self.first[q] = t_end
            if self.done[q] == self.total[q]:
                self.finish[q] = t_end
                self.free += self.held[q]
                self.held[q] = 0
            else:
                self.running.append(q)

    def run(self, arrival: list[float],
            step: Callable[[list[tuple[int, int, bool]]], float]) -> None:
        self.arrival = arrival
        n = len(arrival)
        t, k = 0.0, 0
        while True:
            while k < n and arrival[k] <= t:
                self.queue.append(k)
                k += 1
            batch = self.prefill_phase()
            tokens = [self.pre[q] for q in batch]
            if not batch:
                batch = self.decode_phase()
                tokens = [1] * len(batch)
            if not batch:
                if k == n:
                    return
                t = arrival[k]
                continue
            desc = [(tok, self.done[q], tok == 1 and self.done[q] > self.pre[q])
                    for q, tok in zip(batch, tokens, strict=True)]
            t_end = t + step(desc)
            self.end(batch, tokens, t_end)
            t = t_end


def _vidur_step_reference() -> Callable[[list[tuple[int, int, bool]]], float]:
    z = llm.presets._vidur_npz()

    def step(batch: list[tuple[int, int, bool]]) -> float:
        # batch: (tokens, processed before the step, is a decode)
        n = sum(b[0] for b in batch)
        r = (n + 7) // 8 * 8
        dec_ctx = [b[1] for b in batch if b[2]]
        chunks = [b[0] for b in batch if not b[2]]
        dec = pre = 0.0
        if dec_ctx:
            kv = (int(np.mean(dec_ctx)) + 63) // 64
            dec = z["decode"][len(dec_ctx), kv] * (1 + 0.1 * int(len(dec_ctx) > 1))
        if chunks:
            key = round(sum(c * c for c in chunks) ** 0.5)
            pre = z["prefill"][0, key] * (1 + 0.1 * int(len(chunks) > 1))

        def lin(op: str) -> float:
            return float(z[f"lin_{op}"][r])

        attn = (lin("attn_pre_proj") + lin("attn_post_proj") + lin("attn_rope")
                + float(z["kv_save"][n]) + dec + pre + lin("input_layernorm"))
        mlp = (lin("mlp_up_proj") + lin("mlp_down_proj") + lin("mlp_act")
               + lin("post_attention_layernorm"))
        return float((attn + mlp + lin("add")) * 32 * 1e-3)

    return step


@pytest.mark.parametrize("num_blocks", [700, 1500, 4000])
def test_vidur_vllm_restarts_match_a_reference_of_the_description(num_blocks: int) -> None:
    # Few KV blocks force restarts (preemption by recompute) on the burst: the engine's
    # vidur mode equals the description's scheduler written out above, bit for bit.
    wl, _ = _vidur_inputs("burst200")
    setup = llm.presets.peer("vidur_vllm")
    rep = dataclasses.replace(setup.replica, num_blocks=num_blocks)
    w = setup.workload(wl["arrival_s"], wl["prompt_len"], wl["output_len"])
    r = llm.simulate(w, rep).requests
    ref = _VidurReference([int(x) for x in w.prompt_tokens],
                          [int(x) for x in w.output_tokens], num_blocks,
                          watermark=int(0.01 * num_blocks))
    ref.run([float(x) for x in w.arrival], _vidur_step_reference())
    assert sum(ref.restarts) > 0
    np.testing.assert_array_equal(r["first_token"].to_numpy(), np.array(ref.first))
    np.testing.assert_array_equal(r["finish"].to_numpy(), np.array(ref.finish))
    np.testing.assert_array_equal(r["preemptions"].to_numpy(), np.array(ref.restarts))


def test_vidur_vllm_steps_are_never_mixed_and_padded() -> None:
    wl, _ = _vidur_inputs("burst200")
    setup = llm.presets.peer("vidur_vllm")
    w = setup.workload(wl["arrival_s"], wl["prompt_len"], wl["output_len"])
    r = llm.simulate(w, dataclasses.replace(setup.replica, num_blocks=1500), trace=True)
    assert r.scheduled is not None
    s = r.scheduled.group_by("step").agg(
        pl.len().alias("n"), pl.col("tokens").max().alias("wide"),
        (pl.col("tokens") == 1).all().alias("decode"),
        (pl.col("tokens") > 1).all().alias("prefill"))
    # A prefill of one token is possible in principle; here every prompt is longer.
    assert (s["decode"] | s["prefill"]).all()
    assert ((s["n"] * s["wide"]) <= 16384).all()
    assert (s["n"] <= 512).all()


# --------------------------------------------------------------------------- all modes

def _mode(mode: str, num_blocks: int) -> tuple[llm.Replica, llm.Disaggregated | None]:
    if mode == "vllm_v1":
        return llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=2e-5, c_ctx=1e-7),
                           num_blocks=num_blocks, max_num_batched_tokens=2048), None
    setup = llm.presets.peer(mode)
    rep = setup.replica
    if mode == "vidur_vllm":
        rep = dataclasses.replace(rep, num_blocks=num_blocks)
    fleet = None if setup.fleet is None else dataclasses.replace(setup.fleet, decode=rep)
    return rep, fleet


@settings(max_examples=12, deadline=None)
@given(mode=st.sampled_from(["vllm_v1", *llm.presets.MODES]),
       seed=st.integers(0, 10_000), rate=st.floats(0.5, 40.0),
       num_blocks=st.integers(150, 3000))
def test_every_mode_conserves_and_obeys_littles_law(mode: str, seed: int, rate: float,
                                                    num_blocks: int) -> None:
    # The properties every mode shares: each request finishes exactly once with all its
    # output tokens; blocks held stay within num_blocks and running within max_num_seqs
    # (modes with a KV model); per replica, ∫(waiting + running) dt
    # equals Σ e2e of its requests (Little's law, exactly, on the engine's own account).
    w = _random_workload(seed, rate)
    rep, fleet = _mode(mode, num_blocks)
    _check_conserves_and_little(llm.simulate(w, rep, fleet), w, rep,
                                kv_model=mode in ("vllm_v1", "vidur_vllm"),
                                pair=mode == "distserve_disaggregated")


def _random_workload(seed: int, rate: float, n: int = 150) -> llm.Workload:
    rng = np.random.default_rng(seed)
    return llm.Workload(rng.exponential(1 / rate, n).cumsum(), rng.integers(1, 1500, n),
                        rng.integers(1, 300, n))


def _check_conserves_and_little(r: llm.LlmResult, w: llm.Workload, rep: llm.Replica, *,
                                kv_model: bool, pair: bool = False) -> None:
    n = len(w)
    req = r.requests
    assert r.finished + r.rejected == n
    done = req.filter(pl.col("status") == "finished")
    assert (done["output_tokens"].to_numpy() == w.output_tokens[done["id"].to_numpy()]).all()
    assert (done["finish"] >= done["first_token"]).all()
    assert (done["first_token"] > done["arrival"]).all()
    stats = r.replica_stats
    if kv_model:
        assert (stats["max_blocks_used"] <= rep.num_blocks).all()
        assert (stats["max_running"] <= rep.max_num_seqs).all()
    assert int(stats["output_tokens"].sum()) == int(done["output_tokens"].sum())
    if pair:
        # A request spends its time on the prefill and then the decode replica: Little's
        # law holds for the pair.
        assert float(stats["in_system_area"].sum()) == pytest.approx(
            float(done["e2e"].sum()), rel=1e-9)
        return
    for i in range(stats.height):
        mine = done.filter(pl.col("replica") == i)
        assert stats.row(i, named=True)["in_system_area"] == pytest.approx(
            float(mine["e2e"].sum()), rel=1e-9)


# --------------------------------------------------------------------------- policies

_POLICIES = {"vidur_vllm": ("prefill_priority_unmixed", "watermark", "recompute_latest_arrival"),
             "distserve_colocated": ("strict_prefill_priority", "unlimited", "never"),
             "distserve_disaggregated": ("strict_prefill_priority", "unlimited", "never")}


def _explicit(rep: llm.Replica, policies: tuple[str, str, str]) -> llm.Replica:
    b, m, p = policies
    return dataclasses.replace(rep, scheduler="vllm_v1", batch_formation=b,  # type: ignore[arg-type]
                               memory_admission=m, preemption=p)


@pytest.mark.parametrize("name", ["fixed512x128_r2_n1000", "burst200"])
@pytest.mark.parametrize("mode", llm.presets.MODES)
def test_a_mode_equals_its_policies_set_explicitly(mode: str, name: str) -> None:
    setup = llm.presets.peer(mode)
    wl = pl.read_csv(PEERS / f"workload_{name}.csv")
    w = setup.workload(wl["arrival_s"].to_numpy(), wl["prompt_len"].to_numpy(),
                       wl["output_len"].to_numpy())
    rep = setup.replica
    assert rep.policies == _POLICIES[mode]
    mine = _explicit(rep, _POLICIES[mode])
    assert mine.policies == rep.policies
    fleet = None if setup.fleet is None else dataclasses.replace(setup.fleet, decode=mine)
    a = llm.simulate(w, rep, setup.fleet)
    b = llm.simulate(w, mine, fleet)
    assert a.requests.equals(b.requests)    # bit-identical, NaN/null included
    assert a.replica_stats.equals(b.replica_stats)


def test_the_default_is_vllm_v1_and_equals_its_policies_set_explicitly() -> None:
    rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=2e-5, c_ctx=1e-7), num_blocks=400)
    assert rep.policies == ("vllm_v1", "free_blocks", "recompute_lifo")
    w = _random_workload(3, 20.0, 300)
    a = llm.simulate(w, rep)
    assert a.preemptions > 0
    b = llm.simulate(w, _explicit(rep, rep.policies))
    assert a.requests.equals(b.requests)


_VALID = [(b, m, p)
          for b in ("vllm_v1", "prefill_priority_unmixed", "strict_prefill_priority")
          for m in ("free_blocks", "watermark", "unlimited")
          for p in ("recompute_lifo", "recompute_latest_arrival", "never")
          if p != "never" or m == "unlimited"]


@settings(max_examples=40, deadline=None)
@given(policies=st.sampled_from(_VALID), seed=st.integers(0, 10_000),
       rate=st.floats(0.5, 40.0), num_blocks=st.integers(150, 3000),
       replicas=st.integers(1, 3), watermark=st.sampled_from([0.0, 0.01]),
       chunked=st.booleans())
def test_every_policy_combination_conserves_and_obeys_littles_law(
        policies: tuple[str, str, str], seed: int, rate: float, num_blocks: int, replicas: int,
        watermark: float, chunked: bool) -> None:
    w = _random_workload(seed, rate)
    rep = _explicit(llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=2e-5, c_ctx=1e-7),
                                num_blocks=num_blocks, max_num_batched_tokens=2048,
                                watermark=watermark, chunked_prefill=chunked), policies)
    r = llm.simulate(w, rep, llm.Fleet(replicas=replicas, router="least_requests"))
    _check_conserves_and_little(r, w, rep, kv_model=policies[1] != "unlimited")
    if policies[1] == "unlimited":
        assert r.preemptions == 0


@settings(max_examples=10, deadline=None)
@given(policies=st.sampled_from([c for c in _VALID if c[0] != "prefill_priority_unmixed"]),
       seed=st.integers(0, 10_000), rate=st.floats(0.5, 40.0),
       num_blocks=st.integers(150, 3000))
def test_disaggregated_policy_combinations_conserve(policies: tuple[str, str, str], seed: int,
                                                    rate: float, num_blocks: int) -> None:
    w = _random_workload(seed, rate)
    rep = _explicit(llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=2e-5, c_ctx=1e-7),
                                num_blocks=num_blocks, max_num_batched_tokens=2048), policies)
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep))
    _check_conserves_and_little(r, w, rep, kv_model=policies[1] != "unlimited", pair=True)


_UNMIXED = [c for c in _VALID if c[0] != "vllm_v1"]


def _burst_workload(seed: int, rate: float, n: int, burst: int) -> llm.Workload:
    # Poisson arrivals, the first `burst` of them all at the first arrival (ties), and
    # short outputs mixed in (requests that finish at their prefill, or soon after).
    rng = np.random.default_rng(seed)
    t = rng.exponential(1 / rate, n).cumsum()
    t[:burst] = t[0]
    out = np.where(rng.random(n) < 0.1, rng.integers(1, 4, n), rng.integers(1, 300, n))
    return llm.Workload(t, rng.integers(1, 1500, n), out)


def _same_run(a: llm.LlmResult, b: llm.LlmResult) -> None:
    assert a.requests.equals(b.requests)    # bit-identical, NaN/null included
    assert a.replica_stats.equals(b.replica_stats)
    for m in ("ttft", "tpot", "itl", "e2e", "queue"):
        x, y = getattr(a, m), getattr(b, m)
        assert (x.count, x.sum, x.min, x.max) == (y.count, y.sum, y.min, y.max), m
        qs = [0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0]
        assert [x.quantile(q) for q in qs] == [y.quantile(q) for q in qs], m
    assert a.t_end == b.t_end
    if a.timeline is not None:
        assert b.timeline is not None and a.timeline.equals(b.timeline)


@settings(max_examples=200, deadline=None)
@given(policies=st.sampled_from(_UNMIXED), seed=st.integers(0, 10_000),
       rate=st.floats(0.5, 80.0), num_blocks=st.integers(120, 3000),
       burst=st.integers(0, 120), watermark=st.sampled_from([0.0, 0.01]),
       max_seqs=st.sampled_from([8, 64, 256]), disaggregated=st.booleans(),
       decode_tokens=st.sampled_from([2_000, 50_000]))
def test_lazy_decode_steps_equal_the_eager_ones(
        policies: tuple[str, str, str], seed: int, rate: float, num_blocks: int, burst: int,
        watermark: float, max_seqs: int, disaggregated: bool, decode_tokens: int) -> None:
    # With the unmixed formations and counted (or no) blocks, decode-only steps over every
    # running request run lazily (O(1) plus their finishes). A run with a step trace lists
    # every scheduled request, so it runs every step eagerly, request by request: the two
    # must agree on every request, counter, sketch and timeline sample.
    w = _burst_workload(seed, rate, 200, burst)
    rep = _explicit(llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=2e-5, c_ctx=1e-7),
                                num_blocks=num_blocks, max_num_batched_tokens=2048,
                                max_num_seqs=max_seqs, watermark=watermark), policies)
    if policies[0] == "strict_prefill_priority":
        rep = dataclasses.replace(rep, decode_tokens=decode_tokens)
    fleet = (llm.Disaggregated(decode=rep)
             if disaggregated and policies[0] == "strict_prefill_priority" else None)
    lazy = llm.simulate(w, rep, fleet, timeline_interval=0.05)
    eager = llm.simulate(w, rep, fleet, timeline_interval=0.05, trace=True)
    _same_run(lazy, eager)


@pytest.mark.parametrize("name", ["fixed512x128_r2_n1000", "burst200"])
@pytest.mark.parametrize("mode", llm.presets.MODES)
def test_every_peer_mode_runs_lazily_as_eagerly(mode: str, name: str) -> None:
    setup = llm.presets.peer(mode)
    wl = pl.read_csv(PEERS / f"workload_{name}.csv")
    w = setup.workload(wl["arrival_s"].to_numpy(), wl["prompt_len"].to_numpy(),
                       wl["output_len"].to_numpy())
    _same_run(setup.simulate(w, timeline_interval=0.5),
              setup.simulate(w, timeline_interval=0.5, trace=True))


def test_invalid_policies_name_the_argument() -> None:
    from qcore.exceptions import InvalidArgumentError, InvalidTypeError

    st_ = llm.Linear(c0=0.01)
    with pytest.raises(InvalidArgumentError, match="^preemption never needs memory_admission "
                       "unlimited"):
        llm.Replica(step_time=st_, num_blocks=100, preemption="never")
    with pytest.raises(InvalidArgumentError, match="^preemption never needs"):
        llm.Replica(step_time=st_, num_blocks=100, scheduler="distserve",
                    memory_admission="watermark")
    for field, bad in [("batch_formation", "fcfs"), ("memory_admission", "paged"),
                       ("preemption", "swap"), ("scheduler", "sarathi")]:
        with pytest.raises(InvalidArgumentError, match=f"^{field} is unknown"):
            llm.Replica(step_time=st_, num_blocks=100, **{field: bad})  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="^preemption must be a str"):
        llm.Replica(step_time=st_, num_blocks=100, preemption=3)  # type: ignore[arg-type]
    rep = llm.Replica(step_time=st_, num_blocks=100, batch_formation="prefill_priority_unmixed")
    w = llm.Workload(np.array([0.0]), np.array([10]), np.array([2]))
    with pytest.raises(InvalidArgumentError, match="^prefill must use the vllm_v1 or "
                       "strict_prefill_priority batch formation"):
        llm.simulate(w, rep, llm.Disaggregated(decode=llm.Replica(step_time=st_, num_blocks=100)))


def test_cli_mode_runs_the_peer_setup(capsys) -> None:  # type: ignore[no-untyped-def]
    from qcore.cli import EXIT_OK, main

    path = PEERS / "workload_burst200.csv"
    _, ref = _vidur_inputs("burst200")
    rc = main(["llm", "simulate", str(path), "--mode", "vidur_vllm", "--format", "json"])
    assert rc == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["finished"] == 200 and out["config"]["mode"] == "vidur_vllm"
    assert out["duration_s"] == float(ref["completion_s"].max())
    rc = main(["llm", "simulate", str(path), "--mode", "distserve_disaggregated",
               "--format", "json"])
    assert rc == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["finished"] == 200 and out["config"]["replicas"] == 2


def test_cli_policy_flags_override_the_mode(capsys) -> None:  # type: ignore[no-untyped-def]
    from qcore.cli import EXIT_ERROR, EXIT_OK, main

    path = str(PEERS / "workload_burst200.csv")
    # Vidur's running queue is sorted by arrival: LIFO picks the same victims.
    rc = main(["llm", "simulate", path, "--mode", "vidur_vllm", "--num-blocks", "2000",
               "--preemption", "recompute_lifo", "--format", "json"])
    assert rc == EXIT_OK
    lifo = json.loads(capsys.readouterr().out)
    rc = main(["llm", "simulate", path, "--mode", "vidur_vllm", "--num-blocks", "2000",
               "--format", "json"])
    assert rc == EXIT_OK
    latest = json.loads(capsys.readouterr().out)
    assert lifo["preemptions"] == latest["preemptions"] > 0
    assert lifo["duration_s"] == latest["duration_s"]
    rc = main(["llm", "simulate", path, "--mode", "vidur_vllm", "--memory-admission",
               "unlimited", "--format", "json"])
    assert rc == EXIT_OK
    assert json.loads(capsys.readouterr().out)["preemptions"] == 0
    rc = main(["llm", "simulate", path, "--mode", "vidur_vllm", "--preemption", "never"])
    assert rc == EXIT_ERROR
    assert "preemption never needs memory_admission unlimited" in capsys.readouterr().err


def test_vidur_vllm_rejects_what_it_can_never_admit() -> None:
    # 100 blocks of 16 tokens, watermark 1 block: a 1,600-token prompt needs all 100 and
    # can never be admitted (Vidur would wait for it forever); a prompt + output above the
    # padded budget can never be recomputed in one step. Both are rejected and counted;
    # the others are served.
    setup = llm.presets.peer("vidur_vllm")
    rep = dataclasses.replace(setup.replica, num_blocks=100, max_num_batched_tokens=2000)
    w = llm.Workload(np.array([0.0, 0.0, 0.1, 0.2]), np.array([100, 1600, 1990, 50]),
                     np.array([20, 5, 20, 30]))
    r = llm.simulate(w, rep).requests
    assert r["status"].to_list() == ["finished", "rejected", "rejected", "finished"]
    assert llm.simulate(w, rep).rejected == 2


_REF = {"vidur_vllm": "vidur_vllm", "distserve_colocated": "distserve_colocated",
        "distserve_disaggregated": "distserve_disagg"}


@pytest.mark.parametrize("name", ["fixed512x128_r2_n1000", "burst200"])
@pytest.mark.parametrize("mode", list(_REF))
def test_every_peer_replay_is_bit_exact(mode: str, name: str) -> None:
    # On the peer's own clock (Vidur: seconds; DistServe: milliseconds, its running sum
    # of arrivals), every request's times equal the peer's output in float64.
    wl = pl.read_csv(PEERS / f"workload_{name}.csv")
    ref = pl.read_csv(PEERS / f"{_REF[mode]}_{name}.csv")
    got = llm.presets.peer(mode).replay(wl["arrival_s"], wl["prompt_len"], wl["output_len"])
    cols = [c for c in got.columns if c in ref.columns]
    assert len(cols) == len(got.columns) >= 5
    for c in cols:
        np.testing.assert_array_equal(got[c].to_numpy(), ref[c].to_numpy(), err_msg=c)
