"""``qcore simulate`` through the installed command: figures over the arrival window,
trace replay, renewal and MMPP arrivals, batching, patience and replications."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import qcore
from qcore import sim


def qcore_command() -> str:
    """The installed console script (beside this interpreter, else on PATH)."""
    exe = Path(sys.executable).parent / "qcore"
    if exe.exists():
        return str(exe)
    found = shutil.which("qcore")
    if found is None:  # pragma: no cover - the package is always installed for the tests
        pytest.skip("the qcore command is not installed")
    return found


def run(*argv: str) -> tuple[int, str, str]:
    r = subprocess.run([qcore_command(), *argv], capture_output=True, text=True, timeout=600, check=False)
    return r.returncode, r.stdout, r.stderr


def strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------ the arrival window

ISSUE = ["--rate", "5000", "--servers", "2600", "--service", "lognormal", "--service-cv", "2",
         "--service-mean", "0.5"]


def test_throughput_and_utilization_cover_the_arrival_window_not_the_drain():
    # The issue's example printed throughput 2111/s and utilization 0.41: the window
    # included the drain after the last arrival (long with lognormal cv 2 service).
    code, out, err = run("simulate", *ISSUE, "--format", "json")
    assert code == 0, err
    d = strict(out)
    rho = 5000 * 0.5 / 2600
    assert d["stable"] is True and d["offered_load"] == pytest.approx(2500.0)
    assert d["duration"] > 1.3 * d["window"]  # the drain is long ...
    assert d["throughput"] == pytest.approx(5000.0, rel=0.02)  # ... and left out
    assert d["utilization"] == pytest.approx(rho, rel=0.03)
    # Text output says the same.
    code, out, _ = run("simulate", *ISSUE)
    assert code == 0
    line = next(x for x in out.splitlines() if "utilization" in x)
    assert float(line.split("utilization ")[1].split(",")[0]) == pytest.approx(rho, rel=0.03)


def test_window_figures_match_the_analytic_values_within_their_intervals():
    # Replications: Student-t intervals that must hold the exact values (Poisson
    # arrivals at 5000/s; offered utilization 2500/2600 on any service distribution).
    # The warm-up covers 20 s: the heavy tail fills the servers slowly from empty.
    r = qcore.simulate(sim.Poisson(5000.0), sim.LogNormal(mean=0.5, cv=2.0), servers=2600,
                       customers=200_000, warmup=100_000, replications=6, seed=7)
    lo, _, hi = r.intervals["throughput"]
    assert lo <= 5000.0 <= hi and hi - lo < 0.02 * 5000
    lo, _, hi = r.intervals["utilization"]
    assert lo <= 2500 / 2600 <= hi and hi - lo < 0.05
    # Little's law with the offered rate on the window's mean number in system.
    lo, _, hi = r.intervals["mean_in_system"]
    assert lo * 0.98 <= 5000 * r.mean_response <= hi * 1.02
    # Same figures on the event loop (the general path).
    e = qcore.simulate(sim.Poisson(5000.0), sim.LogNormal(mean=0.5, cv=2.0), servers=2600,
                       customers=50_000, warmup=10_000, method="event")
    f = qcore.simulate(sim.Poisson(5000.0), sim.LogNormal(mean=0.5, cv=2.0), servers=2600,
                       customers=50_000, warmup=10_000, method="fast")
    for k in ("throughput", "utilization", "mean_in_system", "mean_in_queue", "window", "duration"):
        assert getattr(e, k) == pytest.approx(getattr(f, k), rel=1e-9), k


def test_an_overloaded_queue_reports_its_capacity_as_throughput():
    # Twice the capacity: the window's departures are one per mean service time.
    code, out, _ = run("simulate", "--rate", "1", "--servers", "1", "--service-mean", "2", "--customers",
                       "20000", "--format", "json")
    assert code == 6
    d = strict(out)
    assert d["throughput"] == pytest.approx(0.5, rel=0.03)
    assert d["utilization"] > 0.999
    assert math.isfinite(d["window"])
