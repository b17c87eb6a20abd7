"""Format version 1 compatibility: the committed byte fixtures must decode forever, to
the same state as a sketch built today from the same data, with the same bytes.

The fixtures ``tests/data/sketch_v1_n{0,1,10,1000}.bin`` were written by format
version 1 from :func:`fixture_values` (a closed-form formula, independent of any random
generator) with ``QuantileSketch(relative_accuracy=0.01)``. Never regenerate them: a
change that breaks this test breaks every stored sketch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from qcore import QuantileSketch
from qcore.exceptions import InvalidArgumentError

DATA = Path(__file__).parent / "data"


def fixture_values(n: int) -> np.ndarray:
    """Mixed-sign, zero-including, heavy-tailed values from a closed form."""
    out = []
    for k in range(n):
        if k % 11 == 5:
            out.append(0.0)
            continue
        v = math.exp(3.0 * math.sin(k * 0.7)) * (1.0 + (k % 13) / 13.0)
        out.append(-v if k % 7 == 3 else v)
    return np.array(out, dtype=np.float64)


@pytest.mark.parametrize("n", [0, 1, 10, 1000])
def test_v1_fixture_decodes_to_the_same_sketch(n: int) -> None:
    data = (DATA / f"sketch_v1_n{n}.bin").read_bytes()
    assert data[:4] == b"QCSK" and data[4] == 1
    stored = QuantileSketch.from_bytes(data)
    values = fixture_values(n)
    fresh = QuantileSketch(relative_accuracy=0.01)
    fresh.add(values)
    assert stored == fresh
    assert fresh.to_bytes() == data
    assert stored.count == n
    if n:
        assert stored.min == values.min() and stored.max == values.max()
        assert stored.sum == math.fsum(values)
        qs = [0.0, 0.5, 0.9, 0.99, 1.0]
        true = np.quantile(values, qs, method="lower")
        assert np.all(np.abs(stored.quantile(qs) - true) <= 0.01 * np.abs(true))
    else:
        assert stored.quantile(0.5) is None


def test_v1_fixture_sizes_are_compact() -> None:
    assert (DATA / "sketch_v1_n0.bin").stat().st_size < 32
    assert (DATA / "sketch_v1_n1000.bin").stat().st_size < 1200


def test_from_otel_follows_proto3_json_defaults():
    # OTLP/JSON (proto3 JSON mapping) omits every field at its zero value ("scale": 0,
    # "zeroCount": 0, "offset": 0) and writes 64-bit integers as decimal strings.
    full = {"scale": 0, "zero_count": 0, "zero_threshold": 0.0,
            "positive": {"offset": 0, "bucket_counts": [1, 2]},
            "negative": {"offset": 0, "bucket_counts": []}, "count": 3, "sum": 7.0, "min": 1.5, "max": 3.5}
    proto3 = {"count": "3", "sum": 7.0, "min": 1.5, "max": 3.5, "positive": {"bucketCounts": ["1", "2"]}}
    a = QuantileSketch.from_otel(full)
    b = QuantileSketch.from_otel(proto3)
    assert b.scale == 0 and b.to_bytes() == a.to_bytes()
    sk = QuantileSketch(0.01)
    sk.add([0.5, 1.0, 2.0, 3.0, 4.5])
    o = sk.to_otel()
    camel = {"count": str(o["count"]), "sum": o["sum"], "min": o["min"], "max": o["max"], "scale": o["scale"],
             "positive": {"offset": o["positive"]["offset"],
                          "bucketCounts": [str(c) for c in o["positive"]["bucket_counts"]]}}
    assert QuantileSketch.from_otel(camel, relative_accuracy=0.01).to_bytes() == sk.to_bytes()
    empty = QuantileSketch.from_otel({})          # every field at its default: an empty point
    assert empty.count == 0
    with pytest.raises(InvalidArgumentError, match="positive.bucket_counts must be an integer"):
        QuantileSketch.from_otel({"count": "1", "positive": {"bucketCounts": ["one"]}})
    with pytest.raises(InvalidArgumentError, match="count must be an integer"):
        QuantileSketch.from_otel({"count": 1.5})
