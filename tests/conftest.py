"""Shared fixtures: the real public traces (shipped in qcore.datasets), a real Dask cluster."""

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

#: Where each shipped trace lives in the layout of the shared data directory.
SHIPPED = {
    "azure_llm_2023/AzureLLMInferenceTrace_code.csv": "azure_llm_2023_code",
    "azure_llm_2023/AzureLLMInferenceTrace_conv.csv": "azure_llm_2023_conv",
    "mooncake_fast25/conversation_trace.jsonl": "mooncake_conversation",
    "mooncake_fast25/synthetic_trace.jsonl": "mooncake_synthetic",
    "ragpulse/0_trace.jsonl": "ragpulse",
    "alibaba_gentd26/lora_request_trace.csv": "gentd26_lora",
    "alibaba_gentd26/basemodel_update_latency_anon.tar.gz": "gentd26_basemodel_update",
}


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of the real traces in the shared data layout: every file shipped in
    ``qcore.datasets`` (so tests run on a fresh machine), plus links to the other files
    of ``$QCORE_SHARED_DATA`` or ``../shared/data`` when that directory exists (a test
    needing one of those skips without it)."""
    from qcore import datasets

    root = tmp_path_factory.mktemp("traces")
    for rel, name in SHIPPED.items():
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(datasets.read_bytes(name))
    if SHARED_DATA is not None:
        for src in SHARED_DATA.rglob("*"):
            dst = root / src.relative_to(SHARED_DATA)
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src)
    return root


def shared_file(directory: Path, relative: str) -> Path:
    """``directory / relative``, skipping the test when that file is not available here."""
    p = directory / relative
    if not p.is_file():
        pytest.skip(f"{relative} is not shipped with qcore; set QCORE_SHARED_DATA to a directory holding "
                    "the public trace collection (or place it at ../shared/data) to run this test")
    return p


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
