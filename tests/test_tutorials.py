"""Every tutorial in docs/tutorials runs to completion on the real traces (CI).

Each script runs in a subprocess with a timeout, with and without matplotlib, and must
end with a decision by ``qcore.rules`` whose evidence records are written as JSON lines.
The decisions each tutorial's prose explains are checked here, so a change in the
library that breaks a walkthrough fails the build. The scripts read the traces shipped in
``qcore.datasets``, so none is skipped on a fresh machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "docs" / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
TIMEOUT = 180  # seconds per script; each takes a few seconds on a 2-core machine

# Runs a script with `import matplotlib` failing, as on a machine without it.
_WITHOUT_MPL = (
    "import runpy, sys; sys.modules['matplotlib'] = None; "
    "sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _run(script: Path, out: Path, *, matplotlib: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("QCORE_SHARED_DATA", None)
    env.update(QCORE_CACHE_DIR=str(out / "cache"), QCORE_TUTORIAL_OUTPUT=str(out),
               QCORE_TUTORIAL_EVIDENCE=str(out), MPLBACKEND="Agg")
    if matplotlib:
        cmd = [sys.executable, str(script)]
    else:
        cmd = [sys.executable, "-c", _WITHOUT_MPL, str(TUTORIALS), str(script)]
    return subprocess.run(cmd, check=False, cwd=out, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def _evidence(out: Path, script: Path) -> list[dict[str, Any]]:
    path = out / f"{script.stem}.jsonl"
    assert path.is_file(), f"{script.name} wrote no evidence file"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert records, f"{script.name} wrote an empty evidence file"
    return records


def _decision(records: list[dict[str, Any]], rule: str, **group: str) -> dict[str, Any]:
    hits = [r for r in records if r["rule"]["id"] == rule and all(r["group"].get(k) == v for k, v in group.items())]
    assert len(hits) == 1, (rule, group, [(r["rule"]["id"], r["group"]) for r in records])
    return hits[0]


def test_six_tutorials_listed_in_the_index() -> None:
    assert [s.name for s in SCRIPTS] == [
        "01_arrival_rates.py", "02_littles_law.py", "03_tail_latency.py",
        "04_autoscaling.py", "05_overload_control.py", "06_llm_serving.py",
    ]
    index = (TUTORIALS / "README.md").read_text()
    for s in SCRIPTS:
        assert f"({s.name})" in index, f"{s.name} is not linked from docs/tutorials/README.md"


def _check_common(script: Path, proc: subprocess.CompletedProcess[str], out: Path) -> list[dict[str, Any]]:
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "Traceback" not in proc.stderr
    assert "Decision by qcore.rules" in proc.stdout
    assert "next action:" in proc.stdout
    records = _evidence(out, script)
    import qcore.rules as qr

    for r in records:
        assert r["kind"] == "qcore.decision"
        assert r["status"] in qr.STATUSES and r["action"] in qr.ACTIONS
        assert r["rule"]["owner"] and r["rule"]["version"]
    return records


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_tutorial_runs_without_matplotlib(script: Path, tmp_path: Path) -> None:
    proc = _run(script, tmp_path, matplotlib=False)
    _check_common(script, proc, tmp_path)
    assert "matplotlib is not installed: plots skipped" in proc.stdout
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_tutorial_runs_and_decides(script: Path, tmp_path: Path) -> None:
    mpl = _have_matplotlib()
    proc = _run(script, tmp_path, matplotlib=mpl)
    records = _check_common(script, proc, tmp_path)
    if mpl:
        assert (tmp_path / f"{script.stem}.png").is_file(), proc.stdout[-2000:]
    # The decisions the tutorial's prose explains.
    name = script.stem
    if name == "01_arrival_rates":
        assert _decision(records, "poisson-plan-valid", endpoint="code")["status"] == "fail"
        assert _decision(records, "poisson-plan-valid", endpoint="conv")["status"] == "pass"
        code = _decision(records, "plan-meets-slo", endpoint="code")
        assert code["status"] == "fail" and code["action"] == "block"
    elif name == "02_littles_law":
        gauge = {r["group"]["log"]: r for r in records if r["rule"]["id"] == "logs-match-gauge"}
        assert gauge["complete"]["status"] == "pass"
        assert gauge["5% rows lost"]["status"] == "inconsistent"
        assert gauge["5% rows lost"]["action"] == "escalate"
        assert "gauge_discrepancy" in gauge["5% rows lost"]["details"]["flags"]
        # the log-only rule cannot see the missing rows
        assert _decision(records, "littles-law-last-day")["status"] == "pass"
    elif name == "03_tail_latency":
        p999 = [r for r in records if r["rule"]["id"] == "p999-per-version"]
        short = [r for r in p999 if r["status"] == "insufficient_evidence"]
        assert short and all(r["n"] < r["min_n"] == 3688 and r["action"] == "escalate" for r in short)
        assert any(r["status"] == "pass" and r["n"] >= 3688 for r in p999)
        assert "mean of the pools' p99s" in proc.stdout
    elif name == "04_autoscaling":
        statuses = {r["group"]["endpoint"]: r["status"] for r in records}
        assert "pass" in statuses.values()
        mean_plan = next(k for k in statuses if k.startswith("fixed") and "mean" in k)
        assert statuses[mean_plan] == "fail"
        assert "decision: deploy" in proc.stdout
    elif name == "05_overload_control":
        none = _decision(records, "answered-p99", endpoint="no control")
        assert none["status"] == "fail" and none["action"] == "rollback"
        assert _decision(records, "answered-p99", endpoint="drop-tail 4/server")["status"] == "pass"
    elif name == "06_llm_serving":
        # the planned fleet passes its own rules; one replica fewer is blocked
        for rule in ("llm-ttft_p99", "llm-tpot_p99"):
            ok = _decision(records, rule, fleet="3 x 8 h100-80gb")
            assert ok["status"] == "pass" and ok["rule"]["decide_on"] == "upper"
            assert _decision(records, rule, fleet="2 x 8 h100-80gb")["action"] == "block"
        assert "plan: 3 replicas of h100-80gb x 8 = 24 GPUs" in proc.stdout
        assert "plan: 3 replicas with prefix_affinity" in proc.stdout
        assert "next action: deploy 3 x 8 h100-80gb" in proc.stdout


def test_tutorials_read_only_the_shipped_traces() -> None:
    """No tutorial reads a path outside the package: each runs on a fresh machine."""
    for script in SCRIPTS:
        text = script.read_text()
        assert "c.traces(" in text and "shared/data" not in text and "QCORE_SHARED_DATA" not in text, script.name
