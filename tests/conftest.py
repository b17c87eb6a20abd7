"""Shared fixtures: paths to the real public traces in ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so the suite passes or fails the same
# way on every machine; `QCORE_HYPOTHESIS=explore pytest` draws new random examples.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("explore" if os.environ.get("QCORE_HYPOTHESIS") == "explore" else "repeatable")

ROOT = Path(__file__).resolve().parent.parent
_candidates = [
    Path(os.environ["QCORE_SHARED_DATA"]) if "QCORE_SHARED_DATA" in os.environ else None,
    ROOT.parent / "shared" / "data",
]
SHARED_DATA = next((p for p in _candidates if p is not None and p.is_dir()), None)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real traces; tests that need it skip when it is missing."""
    if SHARED_DATA is None:
        pytest.skip("shared/data traces not available")
    return SHARED_DATA


@pytest.fixture(scope="module")
def client():
    """A real dask.distributed cluster of two worker processes (skipped without the extra)."""
    pytest.importorskip("distributed")
    from qcore import dask as qd

    c = qd.client_from_arg("local:2")
    try:
        c.wait_for_workers(2, timeout=60)
        yield c
    finally:
        c.close()


def same_but_rounding(a, b, path=""):
    """Assert two JSON-like reports equal, except the Little's-law gap (a ratio of float
    sums added in another order), which may differ by 1e-12."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            same_but_rounding(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_but_rounding(x, y, f"{path}[{i}]")
    elif path.endswith("little_gap") and a is not None:
        assert abs(a - b) <= 1e-12, path
    else:
        assert a == b, path
