"""Admission and shedding in front of an LLM fleet (qcore.llm.Admission): the default is
the run without it; every request ends in exactly one status; each control does what it
says, checked against an independent reference or an exact bound; on a real Azure trace
an overloaded fleet keeps its TTFT tail bounded with shedding and collapses without."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcore import cli, llm
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

REP = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=5e-5), num_blocks=20_000,
                  max_num_batched_tokens=2048)


def _workload(n: int, rate: float, pmax: int, omax: int, seed: int) -> llm.Workload:
    rng = np.random.default_rng(seed)
    return llm.Workload.from_frame(pl.DataFrame({
        "arrival": np.cumsum(rng.exponential(1.0 / rate, n)),
        "prompt_tokens": rng.integers(1, pmax + 1, n),
        "output_tokens": rng.integers(1, omax + 1, n),
    }))


def _counts(r: llm.LlmResult) -> dict[str, int]:
    s = r.requests["status"]
    return {k: int((s == k).sum()) for k in ("finished", "rejected", "unfinished", "shed",
                                              "timed_out")}


def _check_accounting(r: llm.LlmResult, n: int) -> None:
    c = _counts(r)
    assert (c["finished"], c["rejected"], c["shed"], c["timed_out"], c["unfinished"]) == (
        r.finished, r.rejected, r.shed, r.timed_out, r.unfinished)
    assert r.finished + r.rejected + r.shed + r.timed_out + r.unfinished == n
    assert 0 <= r.admission_rejected <= r.rejected
    req = r.requests
    shed = req.filter(pl.col("status") == "shed")
    assert shed["replica"].is_null().all() and shed["first_scheduled"].is_null().all()
    # A timed-out request never got a first token.
    assert req.filter(pl.col("status") == "timed_out")["first_token"].is_null().all()
    if r.scheduled is not None:
        # Wasted tokens: every token computed for a request that was then dropped.
        dropped = req.filter(pl.col("status").is_in(["timed_out", "shed", "rejected"]))["id"]
        spent = r.scheduled.filter(pl.col("request").is_in(dropped.implode()))["tokens"].sum()
        assert r.wasted_tokens == int(spent)


def test_default_admission_is_the_run_without_it() -> None:
    w = _workload(600, 30.0, 3000, 200, seed=2)
    for fleet in (llm.Fleet(replicas=3, router="power_of_two"), None):
        a = llm.simulate(w, REP, fleet, trace=True, timeline_interval=0.5)
        b = llm.simulate(w, REP, fleet, trace=True, timeline_interval=0.5,
                         admission=llm.Admission())
        assert a.requests.equals(b.requests)
        assert a.replica_stats.equals(b.replica_stats)
        for f in ("steps", "scheduled", "preempted", "timeline"):
            assert getattr(a, f).equals(getattr(b, f)), f
        for m in ("ttft", "tpot", "itl", "e2e", "queue"):
            assert getattr(a, m).to_bytes() == getattr(b, m).to_bytes(), m
        assert a.summary() == b.summary()
        assert (b.shed, b.timed_out, b.admission_rejected, b.wasted_tokens) == (0, 0, 0, 0)
    assert not llm.Admission().active and llm.Admission(max_wait=0.0).active


def _bucket_reference(arrival: np.ndarray, prompt: np.ndarray, rate: float,
                      burst: float) -> list[bool]:
    """Which requests a prompt-token bucket sheds, one request at a time in plain Python:
    full at the start, refilled continuously, a request takes its prompt or nothing."""
    level, last, shed = burst, float(arrival[0]), []
    for a, p in zip(arrival.tolist(), prompt.tolist(), strict=True):
        level = min(burst, level + rate * max(0.0, a - last))
        last = a
        if level >= p:
            level -= p
            shed.append(False)
        else:
            shed.append(True)
    return shed


def test_token_bucket_sheds_on_prompt_tokens_as_the_reference_does() -> None:
    w = _workload(3000, 40.0, 2000, 50, seed=5)
    rate, burst = 15_000.0, 6000.0
    for router in ("random", "least_tokens"):
        r = llm.simulate(w, REP, llm.Fleet(replicas=2, router=router),
                         admission=llm.Admission(token_rate=rate, token_burst=burst))
        got = (r.requests["status"] == "shed").to_list()
        assert got == _bucket_reference(w.arrival, w.prompt_tokens, rate, burst)
        assert 300 < r.shed < 2700
        _check_accounting(r, len(w))
    # A burst no run can drain admits everything.
    r = llm.simulate(w, REP, replicas=2, admission=llm.Admission(token_rate=1.0,
                                                                  token_burst=1e15))
    assert r.shed == 0 and r.finished == len(w)


def test_max_waiting_caps_every_replicas_queue() -> None:
    # Overloaded, KV ample (no preemption can push a request back): the waiting queue a
    # step starts with never exceeds the cap.
    w = _workload(2000, 200.0, 1500, 40, seed=7)
    rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=5e-5), num_blocks=10**6,
                      max_num_seqs=8)
    for cap in (1, 4):
        r = llm.simulate(w, rep, llm.Fleet(replicas=2, router="least_requests"), trace=True,
                         admission=llm.Admission(max_waiting=cap))
        assert r.preemptions == 0 and r.shed > 0
        assert r.steps is not None and int(r.steps["waiting"].max()) <= cap
        _check_accounting(r, len(w))


def test_max_wait_bounds_the_queue_exactly() -> None:
    # KV-tight and overloaded: requests are dropped before and after a first scheduling.
    w = _workload(1500, 120.0, 1500, 300, seed=6)
    rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-5), num_blocks=400,
                      max_num_batched_tokens=1024)
    wasted = 0
    for max_wait in (0.0, 0.5, 2.0):
        r = llm.simulate(w, rep, replicas=2, trace=True,
                         admission=llm.Admission(max_wait=max_wait))
        assert r.timed_out > 0
        # The deadline is applied at the start of the step that schedules a request, so
        # every request scheduled at all waited at most max_wait (no step slack).
        q = r.requests["queue"].drop_nulls()
        assert (q <= max_wait).all()
        fin = r.requests.filter(pl.col("status") == "finished")
        assert ((fin["first_scheduled"] - fin["arrival"]) <= max_wait).all()
        _check_accounting(r, len(w))
        wasted += r.wasted_tokens
    assert wasted > 0   # some were preempted before their first token, then dropped


def test_predicted_ttft_bound_cuts_the_ttft_tail_under_overload() -> None:
    w = _workload(3000, 60.0, 2000, 50, seed=8)
    fleet = llm.Fleet(replicas=2, router="least_tokens")
    none = llm.simulate(w, REP, fleet)
    r = llm.simulate(w, REP, fleet, admission=llm.Admission(max_predicted_ttft=1.0))
    assert r.admission_rejected > 0 and r.admission_rejected == r.rejected
    p99 = float(r.ttft.quantile(0.99))
    assert float(none.ttft.quantile(0.99)) > 10.0 > 2.0 > p99
    _check_accounting(r, len(w))
    # Goodput is the results' own: more requests per second meet the SLO with the bound.
    slo = llm.SLO(ttft=1.5)
    assert r.goodput(slo)[0] > 2 * none.goodput(slo)[0]


_SETTINGS = settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@st.composite
def _configs(draw: st.DrawFn) -> tuple[llm.Workload, llm.Replica, llm.Fleet, llm.Admission]:
    w = _workload(draw(st.integers(1, 150)), draw(st.sampled_from([5.0, 50.0, 400.0])),
                  draw(st.integers(1, 3000)), draw(st.integers(1, 200)),
                  seed=draw(st.integers(0, 10**6)))
    rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=2e-5),
                      num_blocks=draw(st.integers(20, 2000)),
                      max_num_batched_tokens=draw(st.sampled_from([256, 2048])),
                      max_num_seqs=draw(st.integers(1, 64)))
    fleet = llm.Fleet(replicas=draw(st.integers(1, 3)),
                      router=draw(st.sampled_from(["round_robin", "random", "least_tokens",
                                                   "power_of_two"])))
    bucket = draw(st.booleans())
    adm = llm.Admission(
        token_rate=draw(st.floats(100.0, 1e5)) if bucket else None,
        token_burst=draw(st.floats(1.0, 1e5)) if bucket else None,
        max_waiting=draw(st.none() | st.integers(1, 20)),
        max_wait=draw(st.none() | st.floats(0.0, 5.0)),
        max_predicted_ttft=draw(st.none() | st.floats(0.01, 5.0)))
    return w, rep, fleet, adm


@pytest.mark.hypothesis
@_SETTINGS
@given(_configs())
def test_every_request_ends_in_one_status(c: tuple[llm.Workload, llm.Replica, llm.Fleet,
                                                   llm.Admission]) -> None:
    w, rep, fleet, adm = c
    r = llm.simulate(w, rep, fleet, trace=True, admission=adm)
    _check_accounting(r, len(w))
    if adm.max_wait is not None:
        assert (r.requests["queue"].drop_nulls() <= adm.max_wait).all()
    if adm.token_rate is not None:
        # The bucket sees the requests that can fit a replica (the others are rejected
        # first): it sheds exactly the reference's, and the waiting cap may shed more.
        fits = -(-(w.prompt_tokens + w.output_tokens - 1) // rep.block_size) <= rep.num_blocks
        ids = np.flatnonzero(fits)
        ref = _bucket_reference(w.arrival[ids], w.prompt_tokens[ids], adm.token_rate,
                                float(adm.token_burst or 0)) if len(ids) else []
        by_bucket = set(ids[np.asarray(ref, dtype=bool)].tolist()) if len(ids) else set()
        shed = set(r.requests.filter(pl.col("status") == "shed")["id"].to_list())
        assert by_bucket <= shed
        if adm.max_waiting is None:
            assert by_bucket == shed


@pytest.mark.parametrize(("kw", "name"), [
    ({"token_rate": 1.0}, "admission.token_burst"),
    ({"token_burst": 10.0}, "admission.token_rate"),
    ({"token_rate": 0.0, "token_burst": 10.0}, "admission.token_rate"),
    ({"token_rate": 1.0, "token_burst": 0.5}, "admission.token_burst"),
    ({"max_waiting": 0}, "admission.max_waiting"),
    ({"max_waiting": -3}, "admission.max_waiting"),
    ({"max_waiting": 2**40}, "admission.max_waiting"),
    ({"max_wait": -1.0}, "admission.max_wait"),
    ({"max_wait": float("nan")}, "admission.max_wait"),
    ({"max_predicted_ttft": 0.0}, "admission.max_predicted_ttft"),
    ({"max_predicted_ttft": float("inf")}, "admission.max_predicted_ttft"),
])
def test_bad_values_name_the_field(kw: dict[str, float], name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        llm.Admission(**kw)  # type: ignore[arg-type]


def test_bad_types_and_combinations_are_refused() -> None:
    with pytest.raises(InvalidTypeError, match="admission.max_wait"):
        llm.Admission(max_wait="1")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="admission.max_waiting"):
        llm.Admission(max_waiting=1.5)  # type: ignore[arg-type]
    w = _workload(10, 5.0, 100, 10, seed=1)
    with pytest.raises(InvalidTypeError, match="admission"):
        llm.simulate(w, REP, admission={"max_wait": 1.0})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="Disaggregated"):
        llm.simulate(w, REP, llm.Disaggregated(decode=REP), admission=llm.Admission(max_wait=1))


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


_BASE = ["llm", "simulate", "poisson:40", "--requests", "1500", "--prompt-tokens", "2000",
         "--output-tokens", "50", "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
         "--replicas", "1", "--no-progress"]


def test_cli_admission_flags_json_and_text() -> None:
    code, out, _ = _cli([*_BASE, "--format", "json"])
    assert code == 0
    none = json.loads(out)
    assert (none["shed"], none["timed_out"], none["admission_rejected"]) == (0, 0, 0)
    assert none["config"]["admission"] is None
    flags = ["--token-rate", "60000", "--token-burst", "20000", "--max-waiting", "64",
             "--max-wait", "5", "--max-predicted-ttft", "3", "--slo-ttft", "3"]
    code, out, _ = _cli([*_BASE, *flags, "--format", "json"])
    assert code == 0
    d = json.loads(out)
    assert d["config"]["admission"] == {"token_rate": 60000.0, "token_burst": 20000.0,
                                        "max_waiting": 64, "max_wait": 5.0,
                                        "max_predicted_ttft": 3.0}
    assert d["shed"] > 0
    assert (d["finished"] + d["rejected"] + d["shed"] + d["timed_out"] + d["unfinished"]
            == d["requests"] == 1500)
    assert d["ttft"]["p99"] < none["ttft"]["p99"]
    assert d["goodput"]["requests_per_s"] > 0
    code, out, _ = _cli([*_BASE, *flags])
    assert code == 0
    line = next(x for x in out.splitlines() if x.strip().startswith("admission:"))
    assert f"shed {d['shed']}," in line and f"timed out {d['timed_out']}," in line
    assert f"wasted {d['wasted_tokens']} tokens" in line


@pytest.mark.parametrize(("flags", "name"), [
    (["--token-rate", "100"], "admission.token_burst"),
    (["--max-waiting", "0"], "admission.max_waiting"),
    (["--max-wait", "-1"], "admission.max_wait"),
    (["--max-predicted-ttft", "nan"], "admission.max_predicted_ttft"),
    (["--max-wait", "1", "--prefill-replicas", "1", "--decode-replicas", "1"], "Disaggregated"),
])
def test_cli_bad_admission_value_is_one_line_exit_1(flags: list[str], name: str) -> None:
    code, out, err = _cli([*_BASE, *flags])
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and name in err and "Traceback" not in err


def test_shedding_keeps_the_ttft_tail_bounded_on_azure(shared_data) -> None:  # type: ignore[no-untyped-def]
    """Azure LLM 2023 code trace at 4x its rate on two Llama-2-70B/H100 replicas: without
    control the queue grows for the whole run and the TTFT p99 with it; with a waiting
    cap and the predicted-TTFT bound the p99 stays within a few seconds."""
    az = llm.Workload.azure(shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv")
    w = az.scale_rate(4.0)
    rep = llm.Replica.from_preset("llama-2-70b", "h100-80gb", 8,
                                  step_time=llm.presets.step_time(
                                      "splitwise/llama2-70b/h100-80gb/tp8"))
    fleet = llm.Fleet(replicas=2, router="least_tokens")
    none = llm.simulate(w, rep, fleet)
    adm = llm.Admission(max_waiting=32, max_predicted_ttft=2.0)
    r = llm.simulate(w, rep, fleet, admission=adm)
    _check_accounting(r, len(w))
    p99_none, p99 = float(none.ttft.quantile(0.99)), float(r.ttft.quantile(0.99))
    assert p99_none > 10 * p99
    assert p99 < 3.0
    assert r.shed + r.admission_rejected > 0
    slo = llm.SLO(ttft=3.0)
    assert r.goodput(slo)[0] > none.goodput(slo)[0]
