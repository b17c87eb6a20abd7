"""Shared fixtures: paths to the real public traces in ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
