"""Fuzz the installed ``qcore`` command: random small logs and parameters through
``report``, ``check``, ``plan`` and ``simulate`` with ``--format json``. Never a
traceback; always strict JSON on stdout, and for an error exit 1 with one line on
stderr; otherwise one of the documented exit codes."""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import qcore_command, strict

NOW = 1_750_000_000.0
RULES = """
[defaults]
owner = "fuzz"
version = "1"

[[rule]]
id = "p99"
metric = "p99"
threshold = 1.0

[[rule]]
id = "errors"
metric = "error_rate"
threshold = 0.1

[[rule]]
id = "fresh"
metric = "freshness"
max_age = "1d"

[[slo]]
id = "avail"
objective = 0.99
"""

#: Exit codes each command documents.
CODES = {"report": {0, 1}, "check": {0, 1, 3, 4, 5}, "plan": {0, 1}, "simulate": {0, 1, 6}}

FUZZ = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def run_json(command: str, *argv: str) -> tuple[int, Any]:
    r = subprocess.run([qcore_command(), command, *argv, "--format", "json"], capture_output=True, text=True,
                       timeout=180, check=False)
    where = f"qcore {command} {' '.join(argv)}\nstderr: {r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr, where
    assert r.returncode in CODES[command], (r.returncode, where)
    doc = strict(r.stdout)
    if r.returncode == 1:
        assert doc.get("error") and doc.get("message"), where
        lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"qcore {command}: error: "), where
    return r.returncode, doc


# ------------------------------------------------------------------ random logs

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -1.0, 1e-300, 1e300, 5e-324, 1.7e9, 1.7e12, 1.7e15, 1.7e18, 2.0**63]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(float),
)
CELLS = st.one_of(NUMBERS, st.sampled_from(["", "fast", "null", "NaN", "2024-01-01T00:00:00", "1e999", "-0"]),
                  st.none(), st.booleans(), st.lists(st.integers(0, 9), max_size=2),
                  st.fixed_dictionaries({"a": st.integers(0, 9)}))


def _cell_csv(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else {math.inf: "inf", -math.inf: "-inf"}.get(v, "nan")
    return str(v).replace(",", ";")


def _cell_json(v: Any) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return json.dumps(str(v))
    return json.dumps(v)


@st.composite
def logs(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["csv", "jsonl"]))
    shape = draw(st.sampled_from(["empty", "header", "rows"]))
    n = {"empty": 0, "header": 0, "rows": draw(st.integers(1, 40))}[shape]
    base = draw(st.sampled_from([NOW - 3600.0, 0.0, NOW * 1e3]))
    typed = draw(st.booleans())   # plausible rows (sorted or not), else anything at all
    rows = []
    for _ in range(n):
        if typed:
            rows.append({"ts": base + draw(st.floats(0, 3600)), "latency": draw(st.floats(0, 100)),
                         "status": draw(st.sampled_from([200, 200, 503, "ok", "failed", None]))})
        else:
            rows.append({"ts": draw(CELLS), "latency": draw(CELLS), "status": draw(CELLS)})
    return {"kind": kind, "shape": shape, "rows": rows, "twice": draw(st.booleans()) and shape == "rows"}


def write_log(d: dict[str, Any], folder: Path) -> list[str]:
    f = folder / f"log.{d['kind']}"
    if d["shape"] == "empty":
        f.write_bytes(b"")
    elif d["kind"] == "csv":
        lines = ["ts,latency,status"] + [",".join(_cell_csv(r[k]) for k in ("ts", "latency", "status"))
                                         for r in d["rows"]]
        f.write_text("\n".join(lines) + "\n")
    else:
        f.write_text("".join("{" + ", ".join(f'"{k}": {_cell_json(r[k])}' for k in ("ts", "latency", "status"))
                             + "}\n" for r in d["rows"]) if d["rows"] else "{}\n")
    return [str(f), str(f)] if d["twice"] else [str(f)]


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    p = tmp_path_factory.mktemp("fuzz") / "rules.toml"
    p.write_text(RULES)
    return str(p)


@FUZZ
@given(logs())
def test_report_never_tracebacks(d: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_log(d, Path(tmp))
        code, doc = run_json("report", *files, "--no-progress")
        if d["twice"]:
            assert code == 1 and "given twice" in doc["message"]


@FUZZ
@given(logs())
def test_check_never_tracebacks(rules_file: str, d: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_log(d, Path(tmp))
        code, doc = run_json("check", *files, "--rules", rules_file, "--now", str(NOW))
        if code != 1:
            assert doc["decisions"] and doc["overall_action"]


# ------------------------------------------------------------------ random parameters

PARAMS = st.one_of(st.sampled_from(["0", "-1", "nan", "inf", "1e-300", "1e300", "5e-324", "0.5", "1", "3",
                                    "100", "2500.5"]),
                   st.floats(min_value=1e-3, max_value=1e3).map(repr))


@FUZZ
@given(rate=PARAMS, mean=PARAMS, slo=PARAMS, service=st.sampled_from(["exponential", "gamma", "deterministic"]),
       q=st.sampled_from(["0.5", "0.99", "0", "1", "nan"]))
def test_plan_never_tracebacks(rate: str, mean: str, slo: str, service: str, q: str) -> None:
    run_json("plan", "--rate", rate, "--service-mean", mean, "--slo", slo, "--service", service,
             "--quantile", q, "--customers", "2000", "--max-servers", "2000")


@FUZZ
@given(rate=PARAMS, mean=PARAMS, servers=st.sampled_from(["0", "1", "3", "-2", "100"]),
       customers=st.sampled_from(["1", "2", "500", "0"]),
       extra=st.sampled_from([[], ["--arrival-cv", "2"], ["--arrival-cv", "0"], ["--patience", "0.5"],
                              ["--queue-capacity", "0"], ["--replications", "2"], ["--service", "lognormal",
                                                                                 "--service-cv", "3"],
                              ["--discipline", "lifo"], ["--warmup", "5"]]))
def test_simulate_never_tracebacks(rate: str, mean: str, servers: str, customers: str, extra: list[str]) -> None:
    run_json("simulate", "--rate", rate, "--service-mean", mean, "--servers", servers, "--customers", customers,
             *extra)


@FUZZ
@given(logs())
def test_simulate_replays_any_log(d: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_log(d, Path(tmp))
        run_json("simulate", "--trace", files[0], "--service", "trace", "--servers", "2")
