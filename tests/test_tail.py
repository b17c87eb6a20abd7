"""Tail-latency statistics against scipy's binomial and beta distributions, numpy's
quantile, closed forms, and coverage by simulation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import qcore


def ref_ranks(n, q, confidence):
    """Independent reference from scipy.stats.binom (1-based ranks, None when missing)."""
    a = (1 - confidence) / 2
    k = np.arange(0, n + 1)
    cdf = stats.binom.cdf(k, n, q)
    low = k[cdf <= a]
    lower = int(low.max()) + 1 if low.size else None
    up = k[:n][cdf[:n] >= 1 - a]
    upper = int(up.min()) + 1 if up.size else None
    f_hi = 1.0 if upper is None else stats.binom.cdf(upper - 1, n, q)
    f_lo = 0.0 if lower is None else stats.binom.cdf(lower - 1, n, q)
    return lower, upper, f_hi - f_lo


@pytest.mark.parametrize(
    "n,q,confidence",
    [
        (10, 0.5, 0.95),
        (100, 0.9, 0.95),
        (1000, 0.99, 0.95),
        (1000, 0.99, 0.99),
        (5000, 0.999, 0.9),
        (367, 0.99, 0.95),
        (368, 0.99, 0.95),
        (20, 0.05, 0.8),
        (1, 0.5, 0.5),
    ],
)
def test_ranks_match_scipy_binomial(n, q, confidence):
    r = qcore.quantile_ranks(n, q, confidence)
    lower, upper, cov = ref_ranks(n, q, confidence)
    assert (r.lower, r.upper) == (lower, upper)
    assert r.coverage == pytest.approx(cov, abs=1e-12)
    if lower is not None and upper is not None:
        assert r.coverage >= confidence


def test_quantile_ci_matches_order_statistics():
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 1, 20_001)
    for q in (0.5, 0.9, 0.99, 0.999):
        lo, est, hi = qcore.quantile_ci(x, q)
        lower, upper, _ = ref_ranks(x.size, q, 0.95)
        xs = np.sort(x)
        assert lo == xs[lower - 1] and hi == xs[upper - 1]
        assert est == pytest.approx(np.quantile(x, q), rel=1e-15)
        assert lo <= est <= hi
    ci = qcore.quantile_ci(pl.Series(x[:100]), 0.5)
    assert isinstance(ci, qcore.QuantileCI) and ci.lo is not None


def test_quantile_ci_small_samples_have_no_bound():
    lo, est, hi = qcore.quantile_ci([1.0, 2.0, 3.0], 0.99)
    assert lo is not None and hi is None
    assert est == pytest.approx(np.quantile([1.0, 2.0, 3.0], 0.99))
    lo, est, hi = qcore.quantile_ci([5.0], 0.5)
    assert (lo, est, hi) == (None, 5.0, None)


def test_quantile_ci_coverage_by_simulation():
    # exponential(1): true p90 = ln 10. 400 samples of n = 300: coverage ≥ 95 % nominal,
    # so misses ~ Binomial(400, ≤ 0.05): at most 35 misses with overwhelming probability.
    rng = np.random.default_rng(12)
    true = np.log(10.0)
    miss = 0
    for _ in range(400):
        lo, _, hi = qcore.quantile_ci(rng.exponential(1.0, 300), 0.9)
        miss += not (lo <= true <= hi)
    assert miss <= 35


@pytest.mark.hypothesis
@settings(max_examples=100, deadline=None)
@given(
    x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
    q=st.floats(0.01, 0.99),
)
def test_quantile_ci_property(x, q):
    lo, est, hi = qcore.quantile_ci(x, q)
    assert est == pytest.approx(np.quantile(x, q), rel=1e-12, abs=1e-9)
    lower, upper, _ = ref_ranks(len(x), q, 0.95)
    xs = np.sort(x)
    assert lo == (None if lower is None else xs[lower - 1])
    assert hi == (None if upper is None else xs[upper - 1])


def test_quantile_ci_errors():
    with pytest.raises(ValueError, match="values is empty"):
        qcore.quantile_ci([], 0.5)
    with pytest.raises(ValueError, match="values contains NaN at index 1"):
        qcore.quantile_ci([1.0, np.nan], 0.5)
    with pytest.raises(ValueError, match="q must be in"):
        qcore.quantile_ci([1.0], 1.0)
    with pytest.raises(ValueError, match="confidence must be in"):
        qcore.quantile_ci([1.0], 0.5, confidence=0.0)
    with pytest.raises(ValueError, match="n must be"):
        qcore.quantile_ranks(-1, 0.5)


def test_min_sample_size():
    assert qcore.min_sample_size(0.99) == 368
    assert qcore.min_sample_size(0.99, two_sided=False) == 299
    for q in (0.9, 0.99, 0.999, 0.9999):
        for conf in (0.9, 0.95, 0.99):
            n = qcore.min_sample_size(q, conf)
            a = (1 - conf) / 2
            # closed form: the smallest n with q^n ≤ α/2 (and (1−q)^n ≤ α/2)
            assert q**n <= a < q ** (n - 1) or (1 - q) ** (n - 1) > a
            if q >= 0.99:
                r_ok = qcore.quantile_ranks(n, q, conf)
                r_short = qcore.quantile_ranks(n - 1, q, conf)
                assert r_ok.upper is not None and r_short.upper is None
    with pytest.raises(ValueError, match="q must be in"):
        qcore.min_sample_size(1.5)


def test_fanout():
    for n in (1, 2, 10, 100, 1000):
        for q in (0.9, 0.99, 0.999):
            p = qcore.fanout_probability(n, q)
            assert p == pytest.approx(1 - q**n, rel=1e-12)
            qb = qcore.fanout_quantile(n, q)
            assert qb == pytest.approx(q ** (1 / n), rel=1e-14)
            # inverse: back-ends at qb give the end-to-end q
            assert qcore.fanout_probability(n, qb) == pytest.approx(1 - q, rel=1e-9)
    # simulated: max of n back-end latencies exceeds the back-end p99 with prob 1 − 0.99^n
    rng = np.random.default_rng(1)
    lat = rng.exponential(1.0, (20_000, 20))
    p99 = np.log(100.0)
    emp = np.mean(lat.max(axis=1) > p99)
    assert abs(emp - qcore.fanout_probability(20, 0.99)) < 5 * np.sqrt(
        0.18 * 0.82 / 20_000
    )
    with pytest.raises(ValueError, match="n must be"):
        qcore.fanout_probability(0, 0.9)
    with pytest.raises(ValueError, match="q must be"):
        qcore.fanout_quantile(3, 0.0)


def test_slo_attainment_matches_clopper_pearson():
    rng = np.random.default_rng(2)
    lat = rng.lognormal(-1, 0.8, 10_000)
    r = qcore.slo_attainment(lat, slo=1.0, target=0.99)
    good = int((lat <= 1.0).sum())
    assert r.count == 10_000 and r.good == good
    assert r.attainment == good / 10_000
    lo = stats.beta.ppf(0.025, good, 10_000 - good + 1)
    hi = stats.beta.ppf(0.975, good + 1, 10_000 - good)
    assert r.attainment_ci == pytest.approx((lo, hi), rel=1e-10)
    assert r.budget_consumed == pytest.approx((1 - good / 10_000) / 0.01, rel=1e-12)
    assert r.budget_remaining == pytest.approx(1 - r.budget_consumed, rel=1e-12)
    assert r.met == (r.attainment >= 0.99)
    assert r.violated_confidently == (hi < 0.99)
    all_good = qcore.slo_attainment([0.1, 0.2], slo=1.0, target=0.5)
    assert all_good.attainment_ci[1] == 1.0 and all_good.budget_consumed == 0.0
    none_good = qcore.slo_attainment([2.0, 3.0], slo=1.0, target=0.5)
    assert none_good.attainment_ci[0] == 0.0 and none_good.budget_consumed == 2.0
    assert none_good.as_dict()["good"] == 0
    with pytest.raises(ValueError, match="latencies is empty"):
        qcore.slo_attainment([], 1.0)
    with pytest.raises(ValueError, match="latencies contains NaN"):
        qcore.slo_attainment([np.nan], 1.0)
    with pytest.raises(ValueError, match="target must be in"):
        qcore.slo_attainment([1.0], 1.0, target=1.0)
    with pytest.raises(ValueError, match="slo must not be NaN"):
        qcore.slo_attainment([1.0], float("nan"))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_sketch_quantile_ci_brackets_exact_interval(sign):
    rng = np.random.default_rng(21)
    x = sign * rng.lognormal(0, 1.5, 20_000)
    sk = qcore.QuantileSketch(relative_accuracy=0.01)
    sk.add(x)
    alpha = sk.relative_accuracy
    for q in (0.5, 0.9, 0.99, 0.999):
        lo, est, hi = qcore.sketch_quantile_ci(sk, q)
        elo, _, ehi = qcore.quantile_ci(x, q)
        # the sketch's interval contains the exact order-statistic interval ...
        assert lo <= elo and ehi <= hi, (q, lo, elo, ehi, hi)
        # ... and is only wider by the sketch's relative accuracy
        assert abs(lo - elo) <= 3 * alpha * abs(elo) and abs(
            hi - ehi
        ) <= 3 * alpha * abs(ehi)
        assert est == sk.quantile(q)
    # too few values for a p999 upper bound
    small = qcore.QuantileSketch(relative_accuracy=0.01)
    small.add(x[:100])
    lo, est, hi = qcore.sketch_quantile_ci(small, 0.999)
    assert hi is None and lo is not None
    with pytest.raises(ValueError, match="sketch is empty"):
        qcore.sketch_quantile_ci(qcore.QuantileSketch(relative_accuracy=0.01), 0.5)
