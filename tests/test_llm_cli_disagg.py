"""``qcore llm simulate --prefill-replicas P --decode-replicas D [--kv-bandwidth GB/s]``:
the disaggregated pools of qcore.llm from the command line, the same run as the API."""

from __future__ import annotations

import json

import pytest

from qcore import llm
from qcore.cli import EXIT_ERROR, EXIT_OK, main

SPEC = "poisson:3"
COMMON = ["--requests", "400", "--prompt-tokens", "800", "--output-tokens", "60",
          "--preset", "splitwise/llama2-70b/h100-80gb/tp8", "--no-progress", "--format", "json"]


def _run(capsys, *argv: str) -> dict:
    code = main(["llm", "simulate", SPEC, *COMMON, *argv])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    return json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))


def test_disaggregated_pools_equal_the_api_run(capsys):
    d = _run(capsys, "--prefill-replicas", "2", "--decode-replicas", "1", "--kv-bandwidth", "25",
             "--kv-latency", "0.002")
    c = d["config"]
    assert (c["prefill_replicas"], c["decode_replicas"], c["replicas"]) == (2, 1, 3)
    x = llm.KvTransfer.for_model("llama-2-70b", bandwidth=25e9, latency=0.002)
    assert c["kv_transfer"] == {"bandwidth_bytes_per_s": 25e9, "latency_s": 0.002,
                                "bytes_per_token": x.bytes_per_token}
    # the same run through the API
    w = llm.Workload.poisson(rate=3.0, n=400, prompt_tokens=800, output_tokens=60, seed=1)
    rep = llm.Replica.from_preset("llama-2-70b", "h100-80gb", 8,
                                  step_time=llm.presets.step_time("splitwise/llama2-70b/h100-80gb/tp8"))
    r = llm.simulate(w, rep, llm.Disaggregated(decode=rep, prefill_replicas=2, decode_replicas=1, transfer=x))
    s = r.summary()
    assert d["finished"] == s["finished"] == 400
    assert d["ttft"]["p99"] == s["ttft"]["p99"] and d["tpot"]["p99"] == s["tpot"]["p99"]


def test_a_slower_link_only_delays(capsys):
    fast = _run(capsys, "--prefill-replicas", "1", "--decode-replicas", "1")
    slow = _run(capsys, "--prefill-replicas", "1", "--decode-replicas", "1", "--kv-bandwidth", "1")
    assert fast["config"]["kv_transfer"] is None
    assert slow["finished"] == fast["finished"]
    assert slow["e2e"]["mean"] > fast["e2e"]["mean"]
    assert slow["ttft"]["p50"] == fast["ttft"]["p50"]  # the first token comes from the prefill pool


@pytest.mark.parametrize("argv", [
    ["--prefill-replicas", "2"],
    ["--kv-bandwidth", "10"],
    ["--prefill-replicas", "1", "--decode-replicas", "1", "--kv-bandwidth", "0"],
    ["--prefill-replicas", "0", "--decode-replicas", "1"],
])
def test_bad_disaggregation_flags_are_one_line_errors(argv, capsys):
    code = main(["llm", "simulate", SPEC, *COMMON, *argv])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert err.count("\n") == 1 and "Traceback" not in err, err
