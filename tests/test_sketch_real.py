"""Accuracy of QuantileSketch on real serving latencies (Alibaba GenTD26, see
../shared/data/alibaba_gentd26/SOURCE.md), against exact numpy lower quantiles, whole
and as merged per-container sketches, and per-group through group_quantiles."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import shared_file
from qcore import QuantileSketch, group_quantiles, sketch_groups

QS = [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0]
LATENCY_ARCHIVES = [
    "basemodel_update_latency_anon",
    "controlnet_latency_data_anon",
    "lora_update_latency_anon",
    "pipeline_update_latency_anon",
    "model_predict_data_anon",
    "pipeline_inference_data_anon",
    "queue_rt_raw_anon",
]


def _read_archive(root: Path, name: str) -> pl.DataFrame:
    with tarfile.open(shared_file(root, f"alibaba_gentd26/{name}.tar.gz")) as tf:
        member = tf.extractfile(f"{name}.csv")
        assert member is not None
        return pl.read_csv(member.read())


def _check(values: np.ndarray, sk: QuantileSketch) -> None:
    est = sk.quantile(QS)
    true = np.quantile(values, QS, method="lower")
    err = np.abs(est - true)
    assert np.all(err <= 0.01 * np.abs(true)), list(zip(QS, est, true, strict=True))
    assert sk.count == len(values)
    assert sk.min == values.min() and sk.max == values.max()


def test_lora_request_exec_time(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "alibaba_gentd26" / "lora_request_trace.csv")
    s = df["exec_time_seconds"]
    values = s.drop_nulls().to_numpy()
    assert len(values) > 10_000
    sk = QuantileSketch()
    sk.add(s, drop_nulls=True)
    _check(values, sk)
    # Per model version, merged back into the whole: same bytes as the whole.
    groups = group_quantiles(df, "checkpoint_model_version_id", "exec_time_seconds", drop_nulls=True)
    assert groups["count"].sum() == len(values)


@pytest.mark.parametrize("name", LATENCY_ARCHIVES)
def test_latency_archives(shared_data: Path, name: str) -> None:
    df = _read_archive(shared_data, name).drop_nulls("value")
    values = df["value"].to_numpy().astype(np.float64)
    sk = QuantileSketch()
    sk.add(values)
    _check(values, sk)
    # One sketch per container in one pass, merged in reverse order: same bytes.
    codes = df.select(pl.col("container_ip").rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    per = sketch_groups(codes, values)
    merged = QuantileSketch.merge_all(per[::-1])
    assert merged.to_bytes() == sk.to_bytes()
    # Interop round trip at the sketch's own scale keeps every quantile.
    back = QuantileSketch.from_otel(sk.to_otel(), relative_accuracy=0.01)
    assert back.quantile(QS).tolist() == sk.quantile(QS).tolist()
