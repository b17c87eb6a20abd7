"""The bulk ingest (one fused pass) against the per-value path, on random inputs with
zeros of both signs, negatives, subnormals and extremes, over many batch sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcore import QuantileSketch, sketch_groups

SPECIAL = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.0,
    1.0,
    0.5,
]


@st.composite
def batches(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.sampled_from([1, 2, 255, 256, 257, 2047, 2048, 2049, 5000, 40_000]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sigma = draw(st.sampled_from([0.1, 1.0, 30.0]))
    x = rng.lognormal(0.0, sigma, n)
    x[rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] *= -1.0
    specials = np.array(SPECIAL if draw(st.booleans()) else SPECIAL[:2] + SPECIAL[4:])
    mask = rng.random(n) < draw(st.sampled_from([0.0, 0.05, 0.5]))
    x[mask] = rng.choice(specials, int(mask.sum()))
    return x


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(batches(), min_size=1, max_size=3),
    accuracy=st.sampled_from([0.3, 0.05, 0.01, 0.002]),
    limit=st.sampled_from([None, 1, 40, 500]),
)
def test_bulk_add_equals_value_by_value(
    parts: list[np.ndarray], accuracy: float, limit: int | None
) -> None:
    bulk = QuantileSketch(accuracy, bucket_limit=limit)
    one = QuantileSketch(accuracy, bucket_limit=limit)
    for x in parts:
        bulk.add(x)
        for v in x.tolist():
            one.add(v)
        assert bulk.to_bytes() == one.to_bytes()
        assert bulk.sum == one.sum and bulk.zero_count == one.zero_count


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n", [300, 5000])
def test_bulk_add_rejects_non_finite_and_adds_nothing(bad: float, n: int) -> None:
    x = np.random.default_rng(1).lognormal(0.0, 1.0, n)
    x[::7] = 0.0
    x[n // 2] = bad
    sk = QuantileSketch()
    sk.add(x[: n // 2])
    before = sk.to_bytes()
    with pytest.raises(ValueError, match=f"values contains .* at index {n // 2}"):
        sk.add(x)
    assert sk.to_bytes() == before
    with pytest.raises(ValueError, match=f"at index {n // 2}"):
        sketch_groups(np.zeros(n, dtype=np.int64), x)
