"""The bulk ingest (one fused pass) against the per-value path, on random inputs with
zeros of both signs, negatives, subnormals and extremes, over many batch sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore
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


@st.composite
def ranged(draw: st.DrawFn) -> np.ndarray:
    """Positive values (zeros of both signs among them) whose biased exponents span
    `width` octaves from `lo`, at sizes around the block and lane boundaries; sometimes
    one or all of them negated."""
    n = draw(st.sampled_from([64, 65, 2047, 2048, 2049, 6150, 32_767, 32_768, 32_769]))
    lo, width = draw(
        st.sampled_from(
            [(1023, 0), (1020, 6), (900, 63), (900, 64), (1, 63), (1983, 63), (1984, 62), (2046, 0)]
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    e = rng.integers(lo, lo + width + 1, n, dtype=np.uint64)
    e[::97] = lo
    e[1::97] = lo + width
    f = rng.integers(0, 2**52, n, dtype=np.uint64)
    f[rng.random(n) < 0.1] = 0
    x = ((e << np.uint64(52)) | f).view(np.float64)
    zeros = rng.random(n) < draw(st.sampled_from([0.0, 0.1]))
    x[zeros] = rng.choice(np.array([0.0, -0.0]), int(zeros.sum()))
    sign = draw(st.sampled_from(["positive", "one negative", "negative"]))
    if sign == "one negative":
        x[int(rng.integers(0, n))] *= -1.0
    elif sign == "negative":
        x = -x
    return x


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(ranged(), min_size=1, max_size=3), accuracy=st.sampled_from([0.05, 0.01, 0.002])
)
def test_bulk_add_sum_paths_equal_value_by_value(parts: list[np.ndarray], accuracy: float) -> None:
    bulk = QuantileSketch(accuracy)
    one = QuantileSketch(accuracy)
    for x in parts:
        bulk.add(x)
        for v in x.tolist():
            one.add(v)
        assert bulk.to_bytes() == one.to_bytes()
        assert bulk.sum == one.sum and bulk.zero_count == one.zero_count


@pytest.mark.parametrize("n", [2**20 - 1, 2**20, 2**20 + 2049])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bulk_add_split_across_threads_equals_short_batches(n: int, threads: int) -> None:
    x = np.random.default_rng(n).lognormal(0.0, 1.0, n)
    x[::11] = 0.0
    try:
        qcore.set_threads(threads)
        bulk = QuantileSketch()
        bulk.add(x)
    finally:
        qcore.set_threads(None)
    short = QuantileSketch()
    for k in range(0, n, 63):  # below the fused kernel's batch size: the per-value path
        short.add(x[k : k + 63])
    assert bulk.to_bytes() == short.to_bytes()
    assert bulk.sum == short.sum
