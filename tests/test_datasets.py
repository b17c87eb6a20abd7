"""qcore.datasets: the shipped traces are the original files byte for byte, with their
licences and citations, and read as the original files read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from conftest import SHARED_DATA, SHIPPED
from qcore import datasets
from qcore.exceptions import InvalidArgumentError
from qcore.logs import read_logs


def test_every_dataset_has_its_licence_citation_and_rows(tmp_path: Path) -> None:
    assert datasets.names() == sorted(datasets.names()) and len(datasets.names()) == 8
    for name in datasets.names():
        d = datasets.info(name)
        assert d.name == name and d.citation and d.source and d.description
        text = datasets.licence_text(name)
        assert d.file.split("/")[-1] in text, f"{d.licence_file} does not name {d.file}"
        data = datasets.read_bytes(name)
        assert hashlib.sha256(data).hexdigest() == d.sha256
        assert datasets.load(name).height == d.rows
        p = datasets.path(name, tmp_path)
        assert p.read_bytes() == data
        assert datasets.path(name, tmp_path) == p   # reused, not rewritten


@pytest.mark.skipif(SHARED_DATA is None, reason="no shared data directory to compare with")
def test_shipped_bytes_equal_the_shared_originals() -> None:
    assert SHARED_DATA is not None
    for rel, name in SHIPPED.items():
        original = SHARED_DATA / rel
        if original.is_file():
            assert datasets.read_bytes(name) == original.read_bytes(), rel


def test_licences_named_as_the_sources_state() -> None:
    assert datasets.info("azure_llm_2023_conv").licence == "CC-BY-4.0"
    assert "Creative Commons" in datasets.licence_text("azure_llm_2023_conv")
    assert datasets.info("mooncake_conversation").licence == "Apache-2.0"
    assert "Apache License" in datasets.licence_text("mooncake_conversation")
    assert datasets.info("ragpulse").licence == "MIT"
    assert "Permission is hereby granted" in datasets.licence_text("ragpulse")
    assert "research" in datasets.info("gentd26_lora").licence


def test_mappings_give_canonical_logs(tmp_path: Path) -> None:
    for name in ("azure_llm_2023_code", "mooncake_conversation", "gentd26_lora_2024-12-03"):
        d = datasets.info(name)
        logs = read_logs(datasets.path(name, tmp_path), mapping=d.mapping or None)
        assert logs.height == d.rows
        start = logs.frame.get_column("start")
        assert start.null_count() == 0 and start.min() is not None
    conv = read_logs(datasets.path("mooncake_conversation", tmp_path),
                     mapping=datasets.info("mooncake_conversation").mapping)
    raw = datasets.load("mooncake_conversation")
    assert conv.frame.get_column("tokens_in").to_list() == raw.get_column("input_length").cast(pl.Float64).to_list()
    span = conv.frame.get_column("start").max() - conv.frame.get_column("start").min()   # type: ignore[operator]
    assert span == pytest.approx(3537.0)


def test_unknown_dataset_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown dataset 'azure'.*azure_llm_2023_code"):
        datasets.info("azure")
    with pytest.raises(InvalidArgumentError, match="name"):
        datasets.load("")
