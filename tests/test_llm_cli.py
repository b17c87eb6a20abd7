"""`qcore llm simulate`: text and JSON output, presets, exit codes."""

from __future__ import annotations

import json

import polars as pl
import pytest

from qcore.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main


def test_simulate_a_frame_file_as_json(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "t.csv"
    pl.DataFrame({"arrival": [0.0, 0.5, 1.0], "prompt_tokens": [100, 200, 300],
                  "output_tokens": [5, 6, 7]}).write_csv(f)
    rc = main(["llm", "simulate", str(f), "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
               "--replicas", "2", "--router", "least_tokens", "--slo-ttft", "10",
               "--format", "json"])
    assert rc == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["finished"] == 3 and out["rejected"] == 0
    assert out["config"]["replicas"] == 2 and out["config"]["num_blocks"] > 10_000
    assert out["goodput"]["attainment"] == 1.0
    assert out["ttft"]["p50"] > 0


def test_simulate_a_synthetic_spec_as_text(capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["llm", "simulate", "poisson:4", "--model", "llama-3-8b", "--gpu", "a100-80gb",
               "--requests", "200", "--prompt-tokens", "500", "--output-tokens", "20"])
    assert rc == EXIT_OK
    text = capsys.readouterr().out
    assert "200 requests on 1 replica(s)" in text and "finished 200" in text
    assert "ttft" in text and "$/M output tokens" in text


def test_real_traces_from_the_command_line(shared_data, capsys) -> None:  # type: ignore[no-untyped-def]
    mc = shared_data / "mooncake_fast25" / "synthetic_trace.jsonl"
    rc = main(["llm", "simulate", str(mc), "--model", "llama-3-8b", "--gpu", "h100-80gb",
               "--replicas", "4", "--router", "prefix_affinity", "--format", "json"])
    assert rc == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] == 3993 and out["cache_hit_rate"] > 0


def test_distserve_scheduler_from_the_command_line(capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["llm", "simulate", "poisson:2", "--preset", "distserve/opt-13b/tp1",
               "--scheduler", "distserve", "--requests", "100", "--prompt-tokens", "512",
               "--output-tokens", "129", "--max-num-batched-tokens", "66144", "--format", "json"])
    assert rc == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["finished"] == 100 and out["preemptions"] == 0
    assert main(["llm", "simulate", "poisson:2", "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
                 "--scheduler", "distserve"]) == EXIT_ERROR


def test_list_presets(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["llm", "simulate", "-", "--list-presets", "--format", "json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert "distserve/opt-13b/tp1" in out["step_time"] and "h100-80gb" in out["gpus"]


@pytest.mark.parametrize("argv", [
    ["llm", "simulate", "missing.csv", "--preset", "distserve/opt-13b/tp1"],
    ["llm", "simulate", "poisson:1", "--preset", "no/such/preset"],
    ["llm", "simulate", "poisson:x", "--preset", "distserve/opt-13b/tp1"],
    ["llm", "simulate", "poisson:1", "--model", "llama-3-70b", "--gpu", "l4-24gb"],
    ["llm", "simulate", "poisson:1"],
])
def test_errors_exit_1(argv, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(argv) == EXIT_ERROR
    assert "error" in capsys.readouterr().err


def test_usage_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["llm"]) == EXIT_USAGE
    with pytest.raises(SystemExit) as e:
        main(["llm", "simulate", "poisson:1", "--router", "fastest"])
    assert e.value.code == 2


def test_a_shipped_trace_by_name(tmp_path, monkeypatch):
    from qcore import cli, datasets

    monkeypatch.setenv("QCORE_CACHE_DIR", str(tmp_path))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["llm", "simulate", "azure_llm_2023_code", "--preset", "splitwise/llama2-70b/h100-80gb/tp8",
                         "--replicas", "2", "--no-progress", "--format", "json"])
    assert code == 0
    d = json.loads(buf.getvalue())
    n = datasets.info("azure_llm_2023_code").rows
    assert d["requests"] == n and d["finished"] == n and d["rejected"] == 0
