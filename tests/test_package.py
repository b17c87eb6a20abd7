"""Package-level contract: version, exports, typing artefacts."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import qcore
import qcore._qcore as native

PKG = Path(qcore.__file__).resolve().parent
ROOT = Path(__file__).resolve().parent.parent


def test_version_matches_cargo() -> None:
    cargo = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', cargo, re.M)
    assert m is not None
    assert qcore.__version__ == m.group(1)


def test_all_names_resolve() -> None:
    for name in qcore.__all__:
        assert hasattr(qcore, name), name
    assert len(set(qcore.__all__)) == len(qcore.__all__)


def test_design_contract_names() -> None:
    # The public names in DESIGN.md that users' pipelines rely on.
    for name in [
        "QuantileSketch",
        "sketch_groups",
        "window_counts",
        "arrival_stats",
        "DecayedRate",
        "littles_law",
        "in_flight",
        "quantile_ci",
        "simulate",
    ]:
        assert name in qcore.__all__, name
    for name in ["erlang_b", "erlang_c", "mmc", "mmck", "mg1"]:
        assert callable(getattr(qcore.queueing, name)), name
    for name in ["Poisson", "Exponential", "Deterministic", "Gamma", "LogNormal", "Empirical"]:
        assert hasattr(qcore.sim, name), name


def test_typing_artefacts_present() -> None:
    assert (PKG / "py.typed").exists()
    stub = PKG / "_qcore.pyi"
    assert stub.exists()
    tree = ast.parse(stub.read_text())
    declared = {
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef))
    } | {
        t.id
        for n in tree.body
        if isinstance(n, (ast.Assign, ast.AnnAssign))
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Name)
    }
    public = {n for n in dir(native) if not n.startswith("_")}
    missing = sorted(public - declared)
    assert not missing, f"names in qcore._qcore without a stub: {missing}"


def test_exceptions_are_value_errors() -> None:
    for name in qcore.exceptions.__all__:
        assert issubclass(getattr(qcore.exceptions, name), ValueError)


def test_stub_matches_the_compiled_extension() -> None:
    # mypy's stubtest compares python/qcore/_qcore.pyi with the compiled module: every
    # function, class, method and signature must agree.
    import subprocess
    import sys

    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "qcore._qcore",
         "--allowlist", str(ROOT / ".stubtest-allowlist")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
