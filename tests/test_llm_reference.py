"""The LLM engine against an independent, slow reference scheduler written here from the
semantics (vLLM V1): same tokens scheduled per request per step, same preemptions, same
emission times; and hypothesis properties (conservation, caps, prefix-cache hits equal to
an offline replay)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcore import llm

# --------------------------------------------------------------------------- reference


@dataclass
class _R:
    idx: int
    arrival: float
    prompt: int
    out: int
    hashes: list[int]
    done_tokens: int = 0  # KV-computed tokens
    generated: int = 0
    table: list[int] = field(default_factory=list)  # block ids
    first_token: float = math.nan
    finish: float = math.nan
    cached: int | None = None
    preempted: int = 0


class Reference:
    """Plain-Python engine: lists for queues, a Python list as the free queue, dicts for
    reference counts and the cache. Slow and literal."""

    def __init__(self, *, num_blocks: int, block_size: int, budget: int, max_seqs: int,
                 c0: float, c_tok: float, c_seq: float, c_ctx: float,
                 chunked: bool = True, threshold: int = 0, hash_block: int = 0) -> None:
        self.nb, self.bs, self.budget, self.max_seqs = num_blocks, block_size, budget, max_seqs
        self.coef = (c0, c_tok, c_seq, c_ctx)
        self.chunked, self.threshold, self.hb = chunked, threshold, hash_block
        self.free: list[int] = list(range(num_blocks))
        self.ref: dict[int, int] = {}
        self.cache: dict[tuple[int, int], int] = {}
        self.block_key: dict[int, tuple[int, int]] = {}
        self.steps: list[tuple[float, float, list[tuple[int, int]], list[int]]] = []

    def key(self, r: _R, j: int) -> tuple[int, int] | None:
        if not self.hb or (j + 1) * self.bs > r.prompt:
            return None
        h = j * self.bs // self.hb
        return (r.hashes[h], j) if h < len(r.hashes) else None

    def take_free(self) -> int:
        b = self.free.pop(0)
        k = self.block_key.pop(b, None)
        if k is not None and self.cache.get(k) == b:
            del self.cache[k]
        self.ref[b] = 1
        return b

    def release(self, r: _R) -> None:
        for b in reversed(r.table):
            self.ref[b] -= 1
            if self.ref[b] == 0:
                self.free.append(b)
        r.table = []

    def grow(self, r: _R, tokens: int, hits: list[int], keep_free: int = 0) -> bool:
        want = -(-tokens // self.bs) - len(r.table) - len(hits)
        want = max(want, 0)
        from_free = sum(1 for b in hits if self.ref.get(b, 0) == 0)
        if want + from_free > len(self.free) or len(self.free) - want - from_free < keep_free:
            return False
        for b in hits:
            if self.ref.get(b, 0) == 0:
                self.free.remove(b)
            self.ref[b] = self.ref.get(b, 0) + 1
            r.table.append(b)
        for _ in range(want):
            r.table.append(self.take_free())
        return True

    def _never_fits(self, r: _R) -> bool:
        return -(-(r.prompt + r.out - 1) // self.bs) > self.nb or (
            not self.chunked and r.prompt > self.budget)

    def _cap(self, n: int) -> int:
        return self.threshold if self.threshold and n > self.threshold else n

    def _running_phase(self, budget: int) -> tuple[list[tuple[_R, int]], list[int], int]:
        sched: list[tuple[_R, int]] = []
        pre: list[int] = []
        for r in list(self.running):
            if budget <= 0 or r not in self.running:
                break
            n = min(self._cap(r.prompt + r.generated - r.done_tokens), budget)
            while not self.grow(r, r.done_tokens + n, []):
                victim = self.running.pop()
                self.release(victim)
                victim.done_tokens = 0
                victim.preempted += 1
                self.waiting.insert(0, victim)
                pre.append(victim.idx)
                if victim is r:
                    return sched, pre, budget
            sched.append((r, n))
            budget -= n
        return sched, pre, budget

    def _waiting_phase(self, budget: int) -> list[tuple[_R, int]]:
        sched: list[tuple[_R, int]] = []
        while budget > 0 and len(self.running) < self.max_seqs and self.waiting:
            r = self.waiting[0]
            total = r.prompt + r.generated
            hits: list[int] = []
            if r.done_tokens == 0 and self.hb:
                for j in range((total - 1) // self.bs):
                    k = self.key(r, j)
                    if k is None or k not in self.cache:
                        break
                    hits.append(self.cache[k])
            base = r.done_tokens + len(hits) * self.bs
            n = self._cap(total - base)
            if not self.chunked and n > budget:
                break
            n = min(n, budget)
            if not self.grow(r, base + n, hits):
                break
            self.waiting.pop(0)
            if r.cached is None:
                r.cached = len(hits) * self.bs
            r.done_tokens = base
            self.running.append(r)
            sched.append((r, n))
            budget -= n
        return sched

    def _duration(self, sched: list[tuple[_R, int]]) -> float:
        c0, c_tok, c_seq, c_ctx = self.coef
        ptoks = 0
        ctx = 0
        for r, n in sched:
            is_decode = (r.generated >= 1 and n == 1
                         and r.done_tokens + 1 == r.prompt + r.generated)
            if not is_decode:
                ptoks += n
            ctx += r.done_tokens + n
        return 0.0 if not sched else c0 + c_tok * ptoks + c_seq * len(sched) + c_ctx * ctx

    def _complete(self, sched: list[tuple[_R, int]], end: float) -> None:
        for r, n in sched:
            before = r.done_tokens
            r.done_tokens += n
            if self.hb:
                for j in range(before // self.bs, min(r.done_tokens, r.prompt) // self.bs):
                    k = self.key(r, j)
                    if k is None:
                        break
                    b = r.table[j]
                    if k not in self.cache and b not in self.block_key:
                        self.cache[k] = b
                        self.block_key[b] = k
            if r.done_tokens == r.prompt + r.generated:
                r.generated += 1
                if r.generated == 1:
                    r.first_token = end
                if r.generated == r.out:
                    r.finish = end
                    self.release(r)
                    self.running.remove(r)

    def run(self, reqs: list[_R]) -> list[_R]:
        arrivals = sorted(reqs, key=lambda r: (r.arrival, r.idx))
        self.waiting: list[_R] = []
        self.running: list[_R] = []
        t = arrivals[0].arrival if arrivals else 0.0
        a = 0
        while True:
            while a < len(arrivals) and arrivals[a].arrival <= t:
                r = arrivals[a]
                a += 1
                if self._never_fits(r):
                    r.cached = -1  # rejected
                else:
                    self.waiting.append(r)
            if not self.running and not self.waiting:
                if a == len(arrivals):
                    return reqs
                t = arrivals[a].arrival
                continue
            sched, pre, budget = self._running_phase(self.budget)
            if not pre:
                sched += self._waiting_phase(budget)
            assert sched or pre, "reference: a step with nothing to do"
            end = t + self._duration(sched)
            self.steps.append((t, end, [(r.idx, n) for r, n in sched], pre))
            self._complete(sched, end)
            t = end


def _reference(case: dict, w: llm.Workload) -> Reference:
    ref = Reference(num_blocks=case["num_blocks"], block_size=case["block_size"],
                    budget=case["budget"], max_seqs=case["max_seqs"], c0=case["c0"],
                    c_tok=case["c_tok"], c_seq=case["c_seq"], c_ctx=case["c_ctx"],
                    chunked=case["chunked"], threshold=case["threshold"],
                    hash_block=w.hash_block_tokens if w.hash_ids is not None else 0)
    return ref


def _requests(w: llm.Workload) -> list[_R]:
    out = []
    for i in range(len(w)):
        hs: list[int] = []
        if w.hash_offsets is not None and w.hash_ids is not None:
            hs = [int(x) for x in w.hash_ids[w.hash_offsets[i]:w.hash_offsets[i + 1]]]
        out.append(_R(i, float(w.arrival[i]), int(w.prompt_tokens[i]), int(w.output_tokens[i]), hs))
    return out


def _replica(case: dict) -> llm.Replica:
    return llm.Replica(
        step_time=llm.Linear(c0=case["c0"], c_tok=case["c_tok"], c_seq=case["c_seq"],
                             c_ctx=case["c_ctx"]),
        num_blocks=case["num_blocks"], block_size=case["block_size"],
        max_num_batched_tokens=case["budget"], max_num_seqs=case["max_seqs"],
        chunked_prefill=case["chunked"], long_prefill_token_threshold=case["threshold"])


def _compare(case: dict, w: llm.Workload) -> llm.LlmResult:
    res = llm.simulate(w, _replica(case), trace=True)
    ref = _reference(case, w)
    reqs = ref.run(_requests(w))
    assert res.steps is not None and res.scheduled is not None and res.preempted is not None
    assert res.steps.height == len(ref.steps)
    by_step = res.scheduled.group_by("step", maintain_order=True).agg("request", "tokens")
    sched = {s: list(zip(rq, tk, strict=True)) for s, rq, tk in by_step.iter_rows()}
    pre = res.preempted.group_by("step", maintain_order=True).agg("request")
    pres = {s: list(rq) for s, rq in pre.iter_rows()}
    for k, (start, end, s_ref, p_ref) in enumerate(ref.steps):
        row = res.steps.row(k, named=True)
        assert row["start"] == pytest.approx(start, abs=1e-9), k
        assert row["end"] == pytest.approx(end, abs=1e-9), k
        assert sched.get(k, []) == s_ref, f"step {k}"
        assert pres.get(k, []) == p_ref, f"step {k}"
    df = res.requests
    for r in reqs:
        got = df.row(r.idx, named=True)
        if r.cached == -1:
            assert got["status"] == "rejected"
            continue
        assert got["status"] == "finished"
        assert got["first_token"] == pytest.approx(r.first_token, abs=1e-9)
        assert got["finish"] == pytest.approx(r.finish, abs=1e-9)
        assert got["preemptions"] == r.preempted
        assert got["cached_tokens"] == (r.cached or 0)
        assert got["output_tokens"] == r.out
    return res


# --------------------------------------------------------------------------- workloads


def _workload(seed: int, n: int, rate: float, pmax: int, omax: int, *, hashes: bool = False,
              hash_block: int = 32) -> llm.Workload:
    rng = np.random.default_rng(seed)
    arr = np.cumsum(rng.exponential(1.0 / rate, n))
    # Some simultaneous arrivals (as in the Mooncake trace).
    arr = np.round(arr, 1)
    p = rng.integers(1, pmax + 1, n)
    o = rng.integers(1, omax + 1, n)
    if not hashes:
        return llm.Workload(arr, p, o)
    bases = [list(range(100 * b, 100 * b + 20)) for b in range(3)]
    offs = [0]
    ids: list[int] = []
    nxt = 10_000
    for i in range(n):
        nh = -(-int(p[i]) // hash_block)
        base = bases[rng.integers(0, 3)]
        share = int(rng.integers(0, nh + 1))
        for j in range(nh):
            if j < share and j < len(base):
                ids.append(base[j])
            else:
                ids.append(nxt)
                nxt += 1
        offs.append(len(ids))
    return llm.Workload(arr, p, o, np.array(offs), np.array(ids), hash_block)


BASE = dict(num_blocks=40, block_size=8, budget=64, max_seqs=6, c0=0.01, c_tok=1e-4,
            c_seq=1e-3, c_ctx=1e-6, chunked=True, threshold=0)


@pytest.mark.parametrize("seed", range(6))
def test_step_by_step_with_preemption(seed: int) -> None:
    w = _workload(seed, 40, 8.0, 120, 60)
    res = _compare(BASE, w)
    if seed < 3:
        assert res.preemptions > 0  # the case exercises preemption


@pytest.mark.parametrize("seed", range(4))
def test_step_by_step_with_prefix_cache(seed: int) -> None:
    w = _workload(seed, 40, 6.0, 200, 20, hashes=True)
    res = _compare({**BASE, "num_blocks": 80}, w)
    assert int(res.replica_stats["hit_tokens"].sum()) > 0


def test_step_by_step_without_chunking_and_with_threshold() -> None:
    w = _workload(11, 40, 8.0, 60, 30)
    _compare({**BASE, "chunked": False}, w)
    _compare({**BASE, "threshold": 16}, w)


def test_rejected_requests_are_counted_not_looped_on() -> None:
    # 40 blocks of 8 tokens = 320 tokens; a 400-token prompt never fits.
    w = llm.Workload(np.array([0.0, 0.0, 0.1]), np.array([400, 10, 10]), np.array([5, 5, 5]))
    res = _compare(BASE, w)
    assert res.rejected == 1
    assert res.requests["status"].to_list() == ["rejected", "finished", "finished"]


# --------------------------------------------------------------------------- properties

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict, llm.Workload]:
    n = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 10_000))
    case = {
        **BASE,
        "num_blocks": draw(st.integers(8, 120)),
        "block_size": draw(st.sampled_from([1, 4, 8, 16])),
        "budget": draw(st.integers(1, 128)),
        "max_seqs": draw(st.integers(1, 8)),
        "chunked": draw(st.booleans()),
        "threshold": draw(st.sampled_from([0, 0, 5, 32])),
    }
    w = _workload(seed, n, draw(st.floats(0.5, 50.0)), draw(st.integers(1, 150)),
                  draw(st.integers(1, 40)), hashes=draw(st.booleans()),
                  hash_block=draw(st.sampled_from([8, 16, 32])))
    return case, w


@pytest.mark.hypothesis
@SETTINGS
@given(cases())
def test_engine_matches_reference_and_conserves(c: tuple[dict, llm.Workload]) -> None:
    case, w = c
    res = _compare(case, w)
    st_ = res.replica_stats.row(0, named=True)
    assert st_["max_blocks_used"] <= case["num_blocks"]
    assert st_["max_step_tokens"] <= case["budget"]
    assert st_["max_running"] <= case["max_seqs"]
    fin = res.requests.filter(pl.col("status") == "finished")
    assert (fin["output_tokens"].to_numpy() == w.output_tokens[fin["id"].to_numpy()]).all()
    # each request finishes exactly once: finished + rejected = all
    assert fin.height + res.rejected == len(w)
    # scheduled tokens of a step never exceed the budget
    assert res.scheduled is not None
    per_step = res.scheduled.group_by("step").agg(total=pl.col("tokens").sum())
    assert (per_step["total"] <= case["budget"]).all()
    # Little's law per replica: ∫(waiting + running) dt = Σ e2e when all finish
    area = st_["in_system_area"]
    assert area == pytest.approx(float(fin["e2e"].sum()), rel=1e-9, abs=1e-9)


@pytest.mark.hypothesis
@SETTINGS
@given(st.integers(0, 10_000), st.sampled_from([8, 16]), st.sampled_from([16, 32, 64]))
def test_prefix_hits_equal_offline_replay(seed: int, bs: int, hb: int) -> None:
    """Requests spaced so that each finishes before the next arrives, KV ample: the hit
    of each request is the longest run of its keys present among the earlier ones'."""
    n = 25
    w0 = _workload(seed, n, 1.0, 300, 5, hashes=True, hash_block=hb)
    w = llm.Workload(np.arange(n) * 1000.0, w0.prompt_tokens, w0.output_tokens,
                     w0.hash_offsets, w0.hash_ids, hb)
    rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-5), num_blocks=10_000,
                      block_size=bs)
    res = llm.simulate(w, rep)
    assert w.hash_offsets is not None and w.hash_ids is not None
    seen: set[tuple[int, int]] = set()
    expected = []
    for i in range(n):
        p = int(w.prompt_tokens[i])
        h = w.hash_ids[w.hash_offsets[i]:w.hash_offsets[i + 1]]
        keys = [(int(h[j * bs // hb]), j) for j in range(p // bs)]
        run = 0
        while run < (p - 1) // bs and keys[run] in seen:
            run += 1
        expected.append(run * bs)
        seen.update(keys)
    assert res.requests["cached_tokens"].to_list() == expected
    look = int(w.prompt_tokens.sum())
    assert res.cache_hit_rate == pytest.approx(sum(expected) / look)


@pytest.mark.hypothesis
@SETTINGS
@given(cases(), st.integers(1, 5), st.sampled_from(["round_robin", "random", "least_requests",
                                                      "least_tokens", "power_of_two", "vllm_dp",
                                                      "prefix_affinity"]),
       st.sampled_from([0.0, 0.05, 1.0]))
def test_fleet_conserves_and_obeys_little_per_replica(c: tuple[dict, llm.Workload], replicas: int,
                                                       router: str, staleness: float) -> None:
    case, w = c
    fleet = llm.Fleet(replicas=replicas, router=router, staleness=staleness, seed=7)
    res = llm.simulate(w, _replica(case), fleet, timeline_interval=0.05)
    df = res.requests
    assert (df["status"] != "unfinished").all()
    fin = df.filter(pl.col("status") == "finished")
    assert (fin["output_tokens"].to_numpy() == w.output_tokens[fin["id"].to_numpy()]).all()
    assert fin.height + res.rejected == len(w)
    for i, row in enumerate(res.replica_stats.iter_rows(named=True)):
        mine = fin.filter(pl.col("replica") == i)
        assert row["finished"] == mine.height
        assert row["max_blocks_used"] <= case["num_blocks"]
        assert row["max_step_tokens"] <= case["budget"]
        assert row["max_running"] <= case["max_seqs"]
        assert row["in_system_area"] == pytest.approx(float(mine["e2e"].sum()), rel=1e-9,
                                                      abs=1e-9)
    assert res.timeline is not None
    assert (res.timeline["kv_blocks"] <= case["num_blocks"]).all()
    assert (res.timeline["running"] <= case["max_seqs"]).all()
