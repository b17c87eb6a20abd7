"""The core's intervals of proportions and means (rust/intervals.rs) against independent
formulas, scipy and coverage by simulation; and the rules and the canary judge reading them."""

from __future__ import annotations

import math
import re
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore.rules as qr
from qcore import _qcore as qc
from qcore.rules.metrics import wilson_interval


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _wilson_ref(k: int, n: int, c: float) -> tuple[float, float]:
    z, p = _z(c), k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 200), (7, 10), (500, 1000), (3, 100_000), (10**6, 10**6)])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.999])
def test_wilson_is_the_closed_form(k, n, confidence):
    lo, hi = qc.wilson_interval(k, n, confidence)
    rlo, rhi = _wilson_ref(k, n, confidence)
    assert lo == pytest.approx(rlo, rel=1e-12, abs=1e-15)
    assert hi == pytest.approx(rhi, rel=1e-12, abs=1e-15)
    assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)
    assert wilson_interval(k, n, confidence) == (lo, hi)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 10**9), frac=st.floats(0, 1), c=st.floats(0.01, 0.999))
def test_wilson_holds_the_estimate_and_nests(n, frac, c):
    k = min(n, int(frac * n))
    lo, hi = qc.wilson_interval(k, n, c)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    lo2, hi2 = qc.wilson_interval(k, n, min(0.9995, c + 0.0005))
    assert lo2 <= lo and hi <= hi2
    mlo, mhi = qc.wilson_interval(n - k, n, c)  # symmetric under k -> n - k
    assert mlo == pytest.approx(1 - hi, abs=1e-12) and mhi == pytest.approx(1 - lo, abs=1e-12)


def test_wilson_covers_by_simulation():
    rng = np.random.default_rng(5)
    n, p, reps = 400, 0.02, 4000
    ks = rng.binomial(n, p, reps)
    cover = np.mean([lo <= p <= hi for lo, hi in (qc.wilson_interval(int(k), n, 0.95) for k in ks)])
    # Wilson's coverage at n p = 8 is close to nominal; 4,000 runs give a standard error of 0.35 %
    assert 0.93 < cover < 0.97, cover


@pytest.mark.parametrize("k,n", [(0, 5), (1, 200), (50, 100), (99, 100), (100, 100)])
def test_clopper_pearson_is_scipy_beta(k, n):
    stats = pytest.importorskip("scipy.stats")
    lo, hi = qc.clopper_pearson_interval(k, n, 0.95)
    assert lo == (0.0 if k == 0 else pytest.approx(stats.beta.ppf(0.025, k, n - k + 1), rel=1e-10))
    assert hi == (1.0 if k == n else pytest.approx(stats.beta.ppf(0.975, k + 1, n - k), rel=1e-10))


def test_proportion_difference_is_agresti_caffo():
    for ka, na, kb, nb in [(0, 10, 0, 10), (5, 1000, 1, 1000), (30, 40, 2, 50)]:
        pa, pb = (ka + 1) / (na + 2), (kb + 1) / (nb + 2)
        se = math.sqrt(pa * (1 - pa) / (na + 2) + pb * (1 - pb) / (nb + 2))
        lo, hi = qc.proportion_difference_interval(ka, na, kb, nb, 0.98)
        assert lo == pytest.approx(pa - pb - _z(0.98) * se, rel=1e-12, abs=1e-15)
        assert hi == pytest.approx(pa - pb + _z(0.98) * se, rel=1e-12, abs=1e-15)


def test_mean_interval_is_the_t_free_normal_interval():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 1, 1000)
    m = float(np.mean(x))
    r = x - m
    lo, hi = qc.mean_interval(x.size, m, math.fsum(r), math.fsum(r * r), 1.0, 0.9)
    se = float(np.std(x, ddof=1)) / math.sqrt(x.size)
    assert lo == pytest.approx(m - _z(0.9) * se, rel=1e-12)
    assert hi == pytest.approx(m + _z(0.9) * se, rel=1e-12)


@pytest.mark.parametrize("call,msg", [
    (lambda: qc.wilson_interval(3, 2, 0.95), "k must be at most n (2), got 3"),
    (lambda: qc.wilson_interval(1, 2, 1.0), "confidence must be in (0, 1), got 1"),
    (lambda: qc.clopper_pearson_interval(0, 0, 0.95), "n must be positive"),
    (lambda: qc.proportion_difference_interval(1, 1, 0, 0, 0.95), "nb must be positive"),
    (lambda: qc.proportion_difference_interval(2, 1, 0, 1, 0.95), "ka must be at most na (1), got 2"),
    (lambda: qc.mean_interval(1, 0.0, 0.0, 0.0, 1.0, 0.95), "n must be at least 2, got 1"),
    (lambda: qc.mean_interval(3, 0.0, 0.0, 0.0, float("nan"), 0.95), "scale must be a positive finite number, got NaN"),
])
def test_errors_name_the_argument(call, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        call()


def test_rules_read_the_core_intervals():
    rng = np.random.default_rng(9)
    n = 5000
    lat = rng.lognormal(-2, 0.5, n)
    status = np.where(rng.random(n) < 0.01, 500, 200)
    log = pl.DataFrame({"ts": np.arange(n, dtype=float), "latency": lat, "status": status})
    rules = [qr.Rule(id="e", version="1", owner="o", metric="error_rate", threshold=0.05),
             qr.Rule(id="m", version="1", owner="o", metric="latency_mean", threshold=10.0)]
    d = qr.evaluate(log, rules, now=float(n)).rows_by_key("rule_id", named=True)
    err = int((status == 500).sum())
    assert (d["e"][0]["ci_lo"], d["e"][0]["ci_hi"]) == qc.wilson_interval(err, n, 0.95)
    m = d["m"][0]
    x = lat[status == 200]  # the mean latency of the ok requests
    assert m["n"] == x.size and m["value"] == pytest.approx(float(np.mean(x)), rel=1e-14)
    se = float(np.std(x, ddof=1)) / math.sqrt(x.size)
    assert m["ci_lo"] == pytest.approx(m["value"] - _z(0.95) * se, rel=1e-12)
    assert m["ci_hi"] == pytest.approx(m["value"] + _z(0.95) * se, rel=1e-12)
