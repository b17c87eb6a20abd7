"""Property tests of QuantileSketch: the relative-error guarantee on arbitrary finite
data (weighted or not), merge of parts == whole (same bytes), byte round trips, and a
decoder that never crashes on arbitrary or mutated input."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcore import QuantileSketch
from qcore.exceptions import DeserializationError

pytestmark = pytest.mark.hypothesis

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
values_st = hnp.arrays(np.float64, st.integers(1, 200), elements=finite)
alphas = st.sampled_from([0.01, 0.05, 0.001, 0.3])
qs_st = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10)


def weighted_lower(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The lower quantile with weights: the first sorted value whose cumulative weight
    exceeds q * (W - 1) (numpy's method="lower" when weights are repeat counts); q = 0
    and q = 1 are the min and max."""
    keep = weights > 0
    v, w = values[keep], weights[keep]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    if q == 0.0:
        return float(v[0])
    if q == 1.0:  # quantile(0) and quantile(1) are the exact min and max
        return float(v[-1])
    cum = np.cumsum(w)
    rank = (cum[-1] - 1.0) * q
    k = min(int(np.searchsorted(cum, rank, side="right")), len(v) - 1)
    return float(v[k])


def check(sk: QuantileSketch, truth: float, est: float, slack: float = 0.0) -> None:
    assert abs(est - truth) <= sk.relative_accuracy * abs(truth) + slack, (est, truth)


@SETTINGS
@given(values=values_st, alpha=alphas, qs=qs_st, limit=st.sampled_from([None, 1 << 20]))
def test_guarantee_arbitrary_finite(values: np.ndarray, alpha: float, qs: list[float], limit) -> None:
    # With 2^20 buckets every double fits (no collapse) for alpha >= 0.01; with the default
    # limit the data may collapse and the guarantee holds for q >= min_accurate_quantile.
    sk = QuantileSketch(alpha, bucket_limit=limit)
    sk.add(values)
    if limit is not None and alpha >= 0.01:
        assert not sk.collapsed
    est = sk.quantile(qs + [0.0, 1.0])
    truth = np.quantile(values, qs + [0.0, 1.0], method="lower")
    for q, e, t in zip(qs + [0.0, 1.0], est, truth, strict=True):
        if q >= sk.min_accurate_quantile or q in (0.0, 1.0):
            check(sk, t, e)
        assert values.min() <= e <= values.max()
    assert est[-2] == values.min() and est[-1] == values.max()
    assert sk.count == len(values)


@SETTINGS
@given(values=values_st, qs=qs_st, limit=st.sampled_from([None, 16, 1 << 20]))
def test_quantile_bounds_contain_the_truth(values: np.ndarray, qs: list[float], limit) -> None:
    # Holds for every q, also after a collapse (the interval then widens).
    sk = QuantileSketch(0.01, bucket_limit=limit)
    sk.add(values)
    lo, hi = sk.quantile_bounds(qs)
    est = sk.quantile(qs)
    truth = np.quantile(values, qs, method="lower")
    assert np.all((lo <= truth) & (truth <= hi)), (lo, truth, hi)
    assert np.all((lo <= est) & (est <= hi))


@SETTINGS
@given(
    values=hnp.arrays(
        np.float64, st.integers(1, 100), elements=st.floats(allow_nan=False, allow_infinity=False)
    ),
    qs=qs_st,
)
def test_guarantee_with_subnormals(values: np.ndarray, qs: list[float]) -> None:
    # Subnormals may additionally be off by one subnormal step (documented).
    sk = QuantileSketch(bucket_limit=1 << 20)
    sk.add(values)
    for q in qs:
        check(sk, float(np.quantile(values, q, method="lower")), sk.quantile(q), slack=5e-324)


@SETTINGS
@given(
    data=st.lists(st.tuples(finite, st.integers(0, 5)), min_size=1, max_size=100),
    qs=qs_st,
)
def test_guarantee_integer_weights(data: list[tuple[float, int]], qs: list[float]) -> None:
    values = np.array([v for v, _ in data])
    weights = np.array([w for _, w in data], dtype=float)
    assume(weights.sum() > 0)
    sk = QuantileSketch(bucket_limit=1 << 20)
    sk.add(values, weights=weights)
    rep = np.repeat(values, weights.astype(int))
    ref = QuantileSketch(bucket_limit=1 << 20)
    ref.add(rep)
    assert sk.to_bytes() == ref.to_bytes()
    for q in qs:
        check(sk, float(np.quantile(rep, q, method="lower")), sk.quantile(q))


@SETTINGS
@given(
    data=st.lists(st.tuples(finite, st.integers(1, 40).map(lambda k: k / 8)), min_size=1, max_size=100),
    qs=qs_st,
)
def test_guarantee_fractional_weights(data: list[tuple[float, float]], qs: list[float]) -> None:
    # Dyadic weights keep every float sum exact, so the rank is exact too.
    values = np.array([v for v, _ in data])
    weights = np.array([w for _, w in data])
    sk = QuantileSketch(bucket_limit=1 << 20)
    sk.add(values, weights=weights)
    assert sk.count == weights.sum()
    for q in qs:
        check(sk, weighted_lower(values, weights, q), sk.quantile(q))


@SETTINGS
@given(
    values=values_st,
    cuts=st.lists(st.integers(0, 200), max_size=5),
    order=st.randoms(use_true_random=False),
    limit=st.sampled_from([None, 8, 64]),
)
def test_merge_of_parts_equals_whole(values, cuts, order, limit) -> None:
    whole = QuantileSketch(0.01, bucket_limit=limit)
    whole.add(values)
    bounds = sorted({min(c, len(values)) for c in cuts} | {0, len(values)})
    parts = []
    for a, b in itertools.pairwise(bounds):
        p = QuantileSketch(0.01, bucket_limit=limit)
        p.add(values[a:b])
        parts.append(p)
    order.shuffle(parts)
    merged = QuantileSketch(0.01, bucket_limit=limit)
    for p in parts:
        merged.merge(QuantileSketch.from_bytes(p.to_bytes()))
    assert merged.to_bytes() == whole.to_bytes()
    assert merged == whole
    if parts:
        assert QuantileSketch.merge_all(parts).to_bytes() == whole.to_bytes()


@SETTINGS
@given(values=values_st, weights=st.none() | st.just("frac"))
def test_round_trip(values: np.ndarray, weights) -> None:
    sk = QuantileSketch(0.02)
    if weights is None:
        sk.add(values)
    else:
        sk.add(values, weights=np.linspace(0.1, 3.3, len(values)))
    data = sk.to_bytes()
    back = QuantileSketch.from_bytes(data)
    assert back == sk and back.to_bytes() == data
    assert pickle.loads(pickle.dumps(back)) == sk
    assert back.sum == sk.sum and back.count == sk.count


def _seed_bytes() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for n in (0, 1, 10, 300):
        sk = QuantileSketch(0.01, bucket_limit=64)
        sk.add(rng.lognormal(0, 3, n) * rng.choice([-1, 0, 1], n))
        out.append(sk.to_bytes())
        w = QuantileSketch(0.05)
        w.add(rng.normal(size=n), weights=rng.uniform(0.1, 2, n))
        out.append(w.to_bytes())
    return out


SEEDS = _seed_bytes()


def _decode_or_reject(data: bytes) -> None:
    try:
        sk = QuantileSketch.from_bytes(data)
    except DeserializationError:
        return
    # A decoded sketch is usable and canonical.
    sk.quantile([0.0, 0.5, 1.0])
    sk.cdf(0.0)
    assert QuantileSketch.from_bytes(sk.to_bytes()) == sk


@settings(max_examples=1000, deadline=None)
@given(data=st.binary(max_size=200))
def test_from_bytes_arbitrary(data: bytes) -> None:
    _decode_or_reject(data)
    _decode_or_reject(b"QCSK\x01" + data)


@settings(max_examples=1000, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("sid")), max_size=6),
    cut=st.none() | st.integers(0, 10_000),
)
def test_from_bytes_mutated(seed: bytes, edits, cut) -> None:
    b = bytearray(seed)
    for pos, val, op in edits:
        if op == "s" and b:
            b[pos % len(b)] = val
        elif op == "i":
            b.insert(pos % (len(b) + 1), val)
        elif op == "d" and b:
            del b[pos % len(b)]
    if cut is not None:
        b = b[: cut % (len(b) + 1)]
    _decode_or_reject(bytes(b))
