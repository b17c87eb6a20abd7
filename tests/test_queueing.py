"""Analytic queueing models (qcore.queueing) against published values, exact references
(exact rational sums, scipy, numpy solves of the balance equations) and properties.

The arbitrary-precision (mpmath) references for 10**5 servers are in
test_queueing_mpmath.py."""

from __future__ import annotations

import dataclasses
import functools
import math
import pickle
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

import qcore
from qcore import queueing as q
from qcore.exceptions import InvalidArgumentError, UnstableSystemError

# --------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------


def erlang_b_exact(c: int, a: float) -> Fraction:
    """B(c, a) from its defining finite sum in exact rational arithmetic."""
    x = Fraction(a)
    term = Fraction(1)
    total = Fraction(1)
    for k in range(1, c + 1):
        term = term * x / k
        total += term
    return term / total


@functools.cache
def erlang_c_exact(c: int, a: float) -> Fraction:
    b = erlang_b_exact(c, a)
    rho = Fraction(a) / c
    return b / (1 - rho * (1 - b))


def balance(lam: float, mu: float, c: int, k: int) -> np.ndarray:
    """Stationary distribution of M/M/c/K from the generator matrix (numpy solve)."""
    n = k + 1
    Q = np.zeros((n, n))
    for i in range(n):
        if i < k:
            Q[i, i + 1] = lam
        if i > 0:
            Q[i, i - 1] = mu * min(i, c)
        Q[i, i] = -Q[i].sum()
    # pQ = 0 with one (redundant) balance equation replaced by the normalisation.
    A = Q.T.copy()
    A[0] = 1.0
    b = np.zeros(n)
    b[0] = 1.0
    return np.linalg.solve(A, b)


def rel(x: float, y: float) -> float:
    return 0.0 if x == y else abs(x - y) / abs(y)


# --------------------------------------------------------------------------------------
# Erlang B and C
# --------------------------------------------------------------------------------------


class TestErlang:
    def test_published_values(self):
        # Erlang C for 2 servers at 1 Erlang is 1/3; for 1 server it is ρ.
        assert q.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-15)
        assert q.erlang_c(1, 0.7) == pytest.approx(0.7, rel=1e-15)
        # Hand-worked: B(10, 5) = 0.018385, B(5, 2) = 4/109.
        assert round(q.erlang_b(10, 5.0), 6) == 0.018385
        assert q.erlang_b(5, 2.0) == pytest.approx(4 / 109, rel=1e-15)
        # Erlang B table at 1% grade of service: 5 lines carry 1.36 E, 10 lines 4.46 E,
        # 20 lines 12.03 E, 100 lines 84.06 E (loads rounded to 0.01 E in the table).
        for c, a in [(5, 1.36), (10, 4.46), (20, 12.03), (100, 84.06)]:
            assert round(q.erlang_b(c, a), 4) == 0.01
        assert q.erlang_b(1, 1.0) == pytest.approx(0.5, rel=1e-15)
        assert q.erlang_b(2, 1.0) == pytest.approx(0.2, rel=1e-15)
        assert q.erlang_b(3, 0.0) == 0.0
        assert q.erlang_c(3, 0.0) == 0.0

    @pytest.mark.parametrize("c", [1, 2, 5, 17, 30, 31, 40, 64, 200])
    def test_erlang_b_vs_exact_sum(self, c):
        for a in [
            1e-6,
            0.3,
            c / 2,
            c - 0.5,
            float(c),
            2.0 * c + 1,
            c + 3 * c**0.5 + 3.01,
        ]:
            assert rel(q.erlang_b(c, a), float(erlang_b_exact(c, a))) < 1e-13

    def test_erlang_c_vs_exact_grid(self):
        worst = 0.0
        for c in [1, 2, 4, 8, 16, 31, 64, 128]:
            for rho in [0.01, 0.3, 0.6, 0.85, 0.97, 0.995, 1 - 1e-9]:
                a = rho * c
                worst = max(worst, rel(q.erlang_c(c, a), float(erlang_c_exact(c, a))))
        assert worst < 1e-12

    def test_huge_load_and_server_counts(self):
        # Overload: B → 1 − c/a.
        assert q.erlang_b(10, 1e12) == pytest.approx(1 - 10 / 1e12, rel=1e-15)
        assert q.erlang_b(10**12, 1e300) == 1.0
        assert q.erlang_b(10**12, 10.0) == 0.0  # underflows, no error
        v = q.erlang_c(10**9, 10**9 - 3e5)
        assert 0.0 < v < 1.0 and math.isfinite(v)

    def test_vectorised_matches_scalar(self):
        servers = np.arange(1, 2001)
        loads = 0.9 * servers
        got = q.erlang_c(servers, loads)
        assert isinstance(got, np.ndarray) and got.shape == (2000,)
        want = np.array([q.erlang_c(int(c), float(a)) for c, a in zip(servers, loads, strict=True)])
        np.testing.assert_array_equal(got, want)
        b = q.erlang_b(servers, 50.0)
        assert np.all(np.diff(b) <= 0)

    def test_vectorised_broadcast_and_types(self):
        out = q.erlang_b(np.array([[1], [2]]), [0.5, 1.0, 2.0])
        assert out.shape == (2, 3)
        assert out[1, 1] == pytest.approx(0.2, rel=1e-15)
        # polars input, integral float servers, uint servers.
        s = pl.Series([1, 2, 3])
        np.testing.assert_allclose(q.erlang_b(s, 1.0), [0.5, 0.2, 1 / 16], rtol=1e-15)
        np.testing.assert_allclose(
            q.erlang_b(np.array([2.0, 3.0]), pl.Series([1.0, 1.0])),
            [0.2, 1 / 16],
            rtol=1e-15,
        )
        np.testing.assert_allclose(
            q.erlang_b(np.array([2, 3], dtype=np.uint8), 1.0), [0.2, 1 / 16], rtol=1e-15
        )
        assert q.erlang_b(np.int64(2), np.float32(1.0)) == pytest.approx(0.2)
        assert q.erlang_b(2.0, 1) == pytest.approx(0.2)
        assert q.erlang_b([], []).shape == (0,)
        assert np.ndim(q.erlang_b(np.array(2), 1.0)) == 0

    def test_errors(self):
        with pytest.raises(
            InvalidArgumentError, match="servers must be at least 1, got 0"
        ):
            q.erlang_b(0, 1.0)
        with pytest.raises(ValueError, match="servers must be an integer"):
            q.erlang_b(2.5, 1.0)
        with pytest.raises(TypeError, match="servers"):
            q.erlang_b(True, 1.0)
        with pytest.raises(TypeError, match="servers"):
            q.erlang_b("3", 1.0)
        with pytest.raises(ValueError, match="offered_load must be finite and >= 0"):
            q.erlang_b(3, -1.0)
        with pytest.raises(ValueError, match="offered_load must be a number, got NaN"):
            q.erlang_c(3, float("nan"))
        with pytest.raises(ValueError, match="offered_load"):
            q.erlang_b(3, math.inf)
        with pytest.raises(ValueError, match="servers must be at most"):
            q.erlang_b(10**12 + 1, 1.0)
        with pytest.raises(ValueError, match="servers must be at most"):
            q.erlang_b(10**30, 1.0)
        with pytest.raises(UnstableSystemError, match="offered_load 2 >= servers 2"):
            q.erlang_c(2, 2.0)
        with pytest.raises(ValueError):  # UnstableSystemError is a ValueError
            q.erlang_c(2, 3.0)
        # Arrays: the message names the index.
        with pytest.raises(ValueError, match="servers contains 0 at index 2"):
            q.erlang_b([1, 2, 0], 1.0)
        with pytest.raises(ValueError, match=r"servers contains 1.5 at index 1"):
            q.erlang_b([1.0, 1.5], 1.0)
        with pytest.raises(ValueError, match="offered_load contains -1 at index 1"):
            q.erlang_b([1, 2], [1.0, -1.0])
        with pytest.raises(UnstableSystemError, match="at index 1"):
            q.erlang_c([4, 4], [1.0, 4.0])
        with pytest.raises(ValueError, match="do not broadcast"):
            q.erlang_b([1, 2, 3], [1.0, 2.0])
        with pytest.raises(ValueError, match="null"):
            q.erlang_b(pl.Series([1, None]), 1.0)
        with pytest.raises(TypeError):
            q.erlang_b(["a"], 1.0)

    @pytest.mark.hypothesis
    @settings(max_examples=300, deadline=None)
    @given(
        c=st.integers(1, 3000),
        a=st.floats(0.0, 5000.0, allow_nan=False, allow_infinity=False),
    )
    def test_properties(self, c, a):
        b = q.erlang_b(c, a)
        assert 0.0 <= b <= 1.0
        # Decreasing in servers, increasing in load.
        assert q.erlang_b(c + 1, a) <= b
        assert q.erlang_b(c, a * 1.01 + 1e-9) >= b
        # The classic recursion links consecutive server counts.
        if a > 0 and b > 1e-290:
            prev = q.erlang_b(c - 1, a) if c > 1 else 1.0
            assert rel(b, a * prev / (c + a * prev)) < 1e-12
        if a < c:
            cc = q.erlang_c(c, a)
            assert b <= cc <= 1.0
            assert q.erlang_c(c + 1, a) <= cc


# --------------------------------------------------------------------------------------
# M/M/c
# --------------------------------------------------------------------------------------


def mmc_response_cdf_quad(lam: float, mu: float, c: int, t: float) -> float:
    """P(T <= t) by numerical convolution of the wait and the service (scipy.quad)."""
    C = float(erlang_c_exact(c, lam / mu))
    theta = c * mu - lam
    inner, _ = integrate.quad(
        lambda w: theta * math.exp(-theta * w) * (-math.expm1(-mu * (t - w))),
        0.0,
        t,
        epsabs=0,
        epsrel=1e-13,
        limit=200,
    )
    return (1 - C) * (-math.expm1(-mu * t)) + C * inner


MMC_CASES = [
    (0.9, 1.0, 1),
    (1.0, 1.0, 2),  # cμ − λ = μ (degenerate hypoexponential)
    (3.0, 2.0, 2),  # θ = 1 < μ
    (7.2, 1.0, 8),
    (15.2, 1.0, 16),
    (57.6, 1.0, 64),
    (0.5, 4.0, 3),  # θ > μ
    (950.0, 1.0, 1000),
]


class TestMMc:
    def test_mm1_rho_09(self):
        for mu in [1.0, 2.0, 0.01]:
            m = q.mm1(0.9 * mu, mu)
            assert m.mean_response == pytest.approx(10 / mu, rel=1e-14)
            assert m.mean_wait == pytest.approx(9 / mu, rel=1e-14)
            assert m.L == pytest.approx(9.0, rel=1e-14)
            assert m.Lq == pytest.approx(8.1, rel=1e-14)
            assert m.utilization == pytest.approx(0.9, rel=1e-15)
            assert m.p_wait == pytest.approx(0.9, rel=1e-14)
            assert m.throughput == 0.9 * mu
        # M/M/1 response time is exponential with rate μ − λ (scipy reference).
        m = q.mm1(0.9, 1.0)
        for p in [1e-9, 0.01, 0.5, 0.9, 0.99, 0.999999]:
            assert rel(m.response_quantile(p), stats.expon(scale=10.0).ppf(p)) < 1e-12

    @pytest.mark.parametrize("lam,mu,c", MMC_CASES)
    def test_textbook_formulas(self, lam, mu, c):
        m = q.mmc(lam, mu, c)
        C = float(erlang_c_exact(c, lam / mu))
        rho = lam / (c * mu)
        assert rel(m.p_wait, C) < 1e-12
        assert rel(m.Lq, C * rho / (1 - rho)) < 1e-12
        assert rel(m.mean_wait, C / (c * mu - lam)) < 1e-12
        assert rel(m.mean_response, m.mean_wait + 1 / mu) < 1e-15
        assert rel(m.L, lam * m.mean_response) < 1e-12  # Little's law
        assert rel(m.Lq, lam * m.mean_wait) < 1e-12
        assert rel(m.utilization, rho) < 1e-15

    @pytest.mark.parametrize("lam,mu,c", MMC_CASES)
    def test_response_cdf_vs_numerical_integration(self, lam, mu, c):
        m = q.mmc(lam, mu, c)
        for t in np.array([0.01, 0.3, 1.0, 3.0, 10.0]) * m.mean_response:
            assert abs(m.response_cdf(t) - mmc_response_cdf_quad(lam, mu, c, t)) < 1e-11

    @pytest.mark.parametrize("lam,mu,c", MMC_CASES)
    def test_response_quantile_vs_root_of_integral(self, lam, mu, c):
        m = q.mmc(lam, mu, c)
        for p in [0.05, 0.5, 0.9, 0.99]:
            ref = optimize.brentq(
                lambda t, p=p: mmc_response_cdf_quad(lam, mu, c, t) - p,
                0.0,
                100 * m.mean_response,
                xtol=1e-300,
                rtol=1e-15,
            )
            assert rel(m.response_quantile(p), ref) < 1e-9

    @pytest.mark.parametrize("lam,mu,c", MMC_CASES)
    def test_quantile_roundtrip(self, lam, mu, c):
        m = q.mmc(lam, mu, c)
        ps = np.array(
            [1e-12, 1e-6, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1 - 1e-9]
        )
        ts = m.response_quantile(ps)
        assert isinstance(ts, np.ndarray) and ts.shape == ps.shape
        assert np.all(np.diff(ts) > 0)
        cdf = m.response_cdf(ts)
        np.testing.assert_allclose(cdf, ps, rtol=1e-9, atol=0)
        for p, t in zip(ps, ts, strict=True):
            assert m.response_quantile(float(p)) == t
            if p > 0.5:
                assert rel(m.response_sf(float(t)), 1 - p) < 1e-9
        # Waiting time: closed form, atom at 0 of mass 1 − C.
        w = m.wait_quantile(ps)
        assert np.all(w[ps < (1 - m.p_wait) * (1 - 1e-12)] == 0.0)
        assert np.all(
            w[ps <= 1 - m.p_wait] < 1e-12 * m.mean_response
        )  # the atom's edge
        pos = w > 0
        np.testing.assert_allclose(m.wait_cdf(w[pos]), ps[pos], rtol=1e-9)
        assert m.wait_cdf(0.0) == pytest.approx(1 - m.p_wait, rel=1e-14)
        assert m.response_quantile(0.0) == 0.0
        assert m.response_quantile(1.0) == math.inf
        assert m.wait_quantile(1.0) == math.inf

    def test_degenerate_case_is_erlang2(self):
        # λ = 1, μ = 1, c = 2: θ = cμ − λ = μ, so waiting customers' response is Gamma(2, 1/μ).
        m = q.mmc(1.0, 1.0, 2)
        C = 1 / 3
        for t in [1e-6, 0.1, 1.0, 2.5, 10.0, 50.0]:
            want = (1 - C) * stats.expon.cdf(t) + C * stats.gamma(2).cdf(t)
            assert abs(m.response_cdf(t) - want) < 1e-14
            want_sf = (1 - C) * stats.expon.sf(t) + C * stats.gamma(2).sf(t)
            assert rel(m.response_sf(t), want_sf) < 1e-12
            want_pdf = (1 - C) * stats.expon.pdf(t) + C * stats.gamma(2).pdf(t)
            assert rel(m.response_pdf(t), want_pdf) < 1e-12
        # Nearly degenerate on either side stays continuous.
        lo = q.mmc(1.0 - 1e-9, 1.0, 2).response_quantile(0.99)
        hi = q.mmc(1.0 + 1e-9, 1.0, 2).response_quantile(0.99)
        mid = m.response_quantile(0.99)
        assert abs(lo - mid) < 1e-7 and abs(hi - mid) < 1e-7

    def test_quantile_monte_carlo_sanity(self):
        # An independent sample of W_q + S from the stated distribution.
        rng = np.random.default_rng(7)
        m = q.mmc(7.2, 1.0, 8)
        n = 400_000
        waits = np.where(
            rng.random(n) < m.p_wait, rng.exponential(1 / (8 - 7.2), n), 0.0
        )
        resp = waits + rng.exponential(1.0, n)
        for p in [0.5, 0.9, 0.99]:
            assert m.response_quantile(p) == pytest.approx(
                np.quantile(resp, p), rel=0.02
            )

    @pytest.mark.hypothesis
    @settings(max_examples=200, deadline=None)
    @given(
        c=st.integers(1, 500),
        rho=st.floats(0.0, 0.9999),
        mu=st.floats(1e-3, 1e3),
        p=st.floats(1e-9, 1 - 1e-9),
    )
    def test_roundtrip_property(self, c, rho, mu, p):
        m = q.mmc(rho * c * mu, mu, c)
        t = m.response_quantile(p)
        assert t > 0 and math.isfinite(t)
        assert abs(m.response_cdf(t) - p) <= 1e-9 * min(p, 1 - p) + 1e-15
        # The response quantile is at least the service-time quantile.
        assert t >= -math.log1p(-p) / mu * (1 - 1e-12)
        w = m.wait_quantile(p)
        assert 0 <= w <= t

    def test_array_shapes_and_polars(self):
        m = q.mmc(7.2, 1.0, 8)
        grid = np.array([[0.1, 0.5], [0.9, 0.99]])
        assert m.response_quantile(grid).shape == (2, 2)
        assert m.wait_cdf(grid).shape == (2, 2)
        s = m.response_quantile(pl.Series([0.5, 0.99]))
        assert isinstance(s, np.ndarray)
        assert s[1] == m.response_quantile(0.99)
        assert isinstance(m.response_quantile(np.float64(0.5)), float)
        assert m.response_cdf(-1.0) == 0.0
        assert m.response_cdf(math.inf) == 1.0

    def test_errors(self):
        with pytest.raises(UnstableSystemError, match="utilization .* >= 1"):
            q.mmc(2.0, 1.0, 2)
        with pytest.raises(UnstableSystemError):
            q.mm1(1.0, 1.0)
        with pytest.raises(ValueError, match="arrival_rate must be finite and >= 0"):
            q.mmc(-1.0, 1.0, 2)
        with pytest.raises(ValueError, match="service_rate must be finite and > 0"):
            q.mmc(1.0, 0.0, 2)
        with pytest.raises(ValueError, match="service_rate"):
            q.mmc(1.0, math.nan, 2)
        with pytest.raises(ValueError, match="servers must be at least 1"):
            q.mmc(1.0, 1.0, 0)
        with pytest.raises(ValueError, match="servers must be an integer"):
            q.mmc(1.0, 1.0, 2.5)
        with pytest.raises(TypeError, match="arrival_rate"):
            q.mmc("1", 1.0, 2)
        m = q.mmc(1.0, 1.0, 2)
        with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
            m.response_quantile(1.5)
        with pytest.raises(ValueError, match="q"):
            m.wait_quantile(-0.1)
        with pytest.raises(ValueError, match="q contains 2 at index 1"):
            m.response_quantile([0.5, 2.0])
        with pytest.raises(ValueError, match="t must be a number, got NaN"):
            m.response_cdf(math.nan)
        with pytest.raises(ValueError, match="t contains NaN at index 0"):
            m.wait_cdf([math.nan])

    def test_zero_arrivals(self):
        m = q.mmc(0.0, 2.0, 3)
        assert m.p_wait == 0.0 and m.L == 0.0 and m.mean_wait == 0.0
        assert m.mean_response == 0.5
        assert rel(m.response_quantile(0.5), math.log(2) / 2) < 1e-14


# --------------------------------------------------------------------------------------
# M/M/c/K
# --------------------------------------------------------------------------------------

MMCK_CASES = [
    (0.5, 1.0, 1, 1),
    (0.9, 1.0, 1, 10),
    (2.0, 1.0, 1, 3),
    (5.0, 1.0, 4, 12),
    (8.0, 2.0, 4, 4),
    (4.0, 1.0, 4, 60),  # ρ = 1 exactly
    (30.0, 1.0, 8, 40),  # ρ > 1
    (1.0, 10.0, 2, 30),
    (60.0, 1.0, 64, 200),
    (3.0, 1.0, 3, 3),
]


class TestMMcK:
    @pytest.mark.parametrize("lam,mu,c,k", MMCK_CASES)
    def test_against_balance_equations(self, lam, mu, c, k):
        m = q.mmck(lam, mu, c, k)
        p = balance(lam, mu, c, k)
        n = np.arange(k + 1)
        L = float(n @ p)
        Lq = float(np.maximum(n - c, 0) @ p)
        thr = lam * (1 - p[k])
        busy = float(np.minimum(n, c) @ p)
        assert m.p_block == pytest.approx(p[k], rel=1e-10)
        assert m.L == pytest.approx(L, rel=1e-10)
        assert m.Lq == pytest.approx(Lq, rel=1e-10, abs=1e-14)
        assert m.throughput == pytest.approx(thr, rel=1e-10)
        assert m.mean_response == pytest.approx(L / thr, rel=1e-10)
        assert m.mean_wait == pytest.approx(Lq / thr, rel=1e-10, abs=1e-14)
        assert m.utilization == pytest.approx(busy / c, rel=1e-10)
        assert m.p_wait == pytest.approx(
            p[c:k].sum() / (1 - p[k]), rel=1e-10, abs=1e-14
        )
        np.testing.assert_allclose(m.state_probabilities(), p, rtol=1e-9, atol=1e-15)

    def test_loss_system_equals_erlang_b(self):
        for c, a in [(1, 0.5), (10, 5.0), (50, 80.0), (1000, 990.0)]:
            m = q.mmck(a, 1.0, c, c)
            assert rel(m.p_block, q.erlang_b(c, a)) < 1e-13
            assert m.Lq == 0.0 and m.p_wait == 0.0

    def test_large_capacity_tends_to_mmc(self):
        for lam, c in [(0.9, 1), (7.2, 8), (57.6, 64)]:
            inf = q.mmc(lam, 1.0, c)
            m = q.mmck(lam, 1.0, c, 2**45)
            assert m.p_block < 1e-300
            for f in ["L", "Lq", "mean_response", "mean_wait", "p_wait", "utilization"]:
                assert rel(getattr(m, f), getattr(inf, f)) < 1e-12, f

    def test_overload_and_huge_capacity(self):
        # ρ ≥ 1 is allowed: the finite system always has a steady state.
        m = q.mmck(20.0, 1.0, 10, 2**50)
        assert m.p_block == pytest.approx(0.5, rel=1e-9)
        assert m.throughput == pytest.approx(10.0, rel=1e-9)
        assert m.utilization == pytest.approx(1.0, rel=1e-9)
        assert math.isfinite(m.L) and m.L > 0.99 * 2**50
        m = q.mmck(1.0, 1.0, 1, 10**6)  # ρ = 1: uniform over 0..K
        assert m.p_block == pytest.approx(1 / (10**6 + 1), rel=1e-9)
        assert m.L == pytest.approx(10**6 / 2, rel=1e-9)

    @pytest.mark.hypothesis
    @settings(max_examples=60, deadline=None)
    @given(
        c=st.integers(1, 20),
        extra=st.integers(0, 60),
        rho=st.floats(0.01, 3.0),
    )
    def test_balance_property(self, c, extra, rho):
        k = c + extra
        lam = rho * c
        m = q.mmck(lam, 1.0, c, k)
        p = balance(lam, 1.0, c, k)
        assert m.p_block == pytest.approx(p[k], rel=1e-8)
        assert m.L == pytest.approx(float(np.arange(k + 1) @ p), rel=1e-8)
        # More room never blocks more (to rounding: far past the load the two differ by
        # less than an ulp).
        assert q.mmck(lam, 1.0, c, k + 1).p_block <= m.p_block * (1.0 + 4 * np.finfo(float).eps)

    def test_errors(self):
        with pytest.raises(
            ValueError, match=r"capacity must be >= servers \(3\), got 2"
        ):
            q.mmck(1.0, 1.0, 3, 2)
        with pytest.raises(ValueError, match="capacity must be an integer"):
            q.mmck(1.0, 1.0, 3, 4.5)
        with pytest.raises(ValueError, match="arrival_rate"):
            q.mmck(-1.0, 1.0, 1, 2)
        with pytest.raises(ValueError, match="too large to list every state"):
            q.mmck(1.0, 1.0, 1, 10**9).state_probabilities()
        m = q.mmck(0.0, 1.0, 2, 4)
        assert m.p_block == 0.0 and m.L == 0.0 and m.throughput == 0.0
        assert list(m.state_probabilities()) == [1.0, 0.0, 0.0, 0.0, 0.0]


# --------------------------------------------------------------------------------------
# M/G/1 and approximations
# --------------------------------------------------------------------------------------


class TestMG1AndApproximations:
    def test_md1_mean_wait(self):
        for rho in [0.1, 0.5, 0.9, 0.99]:
            mu = 2.0
            r = q.md1(rho * mu, 1 / mu)
            assert r.mean_wait == pytest.approx(rho / (2 * mu * (1 - rho)), rel=1e-14)
            assert r.model == "M/D/1" and r.approximation is False
            assert r.service_scv == 0.0

    def test_mg1_exponential_equals_mm1(self):
        for lam in [0.1, 0.5, 0.9]:
            r = q.mg1(lam, 1.0, 1.0)
            m = q.mm1(lam, 1.0)
            for f in ["mean_wait", "mean_response", "L", "Lq", "utilization", "p_wait"]:
                assert getattr(r, f) == pytest.approx(getattr(m, f), rel=1e-13), f

    def test_pollaczek_khinchine(self):
        lam, es, scv = 0.6, 1.2, 2.5
        r = q.mg1(lam, es, scv)
        rho = lam * es
        es2 = es**2 * (1 + scv)
        assert r.mean_wait == pytest.approx(lam * es2 / (2 * (1 - rho)), rel=1e-14)
        assert r.L == pytest.approx(lam * r.mean_response, rel=1e-14)
        assert r.Lq == pytest.approx(lam * r.mean_wait, rel=1e-14)

    def test_kingman_and_allen_cunneen(self):
        k = q.kingman(0.9, 1.0, 0.5, 0.5)
        assert k.approximation is True and k.method == "kingman" and k.model == "G/G/1"
        assert k.mean_wait == pytest.approx(0.9 / 0.1 * 0.5 * 1.0, rel=1e-14)
        # Poisson arrivals: Kingman coincides with Pollaczek–Khinchine.
        assert q.kingman(0.5, 1.5, 1.0, 0.3).mean_wait == pytest.approx(
            q.mg1(0.5, 1.5, 0.3).mean_wait, rel=1e-14
        )
        for lam, c in [(1.0, 2), (7.2, 8), (57.6, 64)]:
            ac = q.allen_cunneen(lam, 1.0, c, 1.0, 1.0)
            m = q.mmc(lam, 1.0, c)
            assert ac.approximation is True and ac.method == "allen_cunneen"
            assert ac.mean_wait == pytest.approx(m.mean_wait, rel=1e-13)
            assert ac.p_wait == pytest.approx(m.p_wait, rel=1e-13)
            half = q.allen_cunneen(lam, 1.0, c, 0.5, 0.5)
            assert half.mean_wait == pytest.approx(0.5 * m.mean_wait, rel=1e-13)
        assert q.allen_cunneen(0.7, 1.2, 1, 2.0, 0.5).mean_wait == pytest.approx(
            q.kingman(0.7, 1.2, 2.0, 0.5).mean_wait, rel=1e-14
        )

    def test_errors(self):
        with pytest.raises(UnstableSystemError):
            q.mg1(1.0, 1.0, 1.0)
        with pytest.raises(UnstableSystemError):
            q.kingman(2.0, 0.5, 1.0, 1.0)
        with pytest.raises(UnstableSystemError):
            q.allen_cunneen(4.0, 1.0, 4, 1.0, 1.0)
        with pytest.raises(ValueError, match="service_scv must be finite and >= 0"):
            q.mg1(0.5, 1.0, -0.1)
        with pytest.raises(ValueError, match="service_mean must be finite and > 0"):
            q.mg1(0.5, 0.0, 1.0)
        with pytest.raises(ValueError, match="arrival_scv"):
            q.kingman(0.5, 1.0, math.nan, 1.0)
        with pytest.raises(ValueError, match="service_time"):
            q.md1(0.5, -1.0)
        with pytest.raises(ValueError, match="servers"):
            q.allen_cunneen(0.5, 1.0, 0, 1.0, 1.0)


# --------------------------------------------------------------------------------------
# Capacity helper
# --------------------------------------------------------------------------------------


class TestMinServers:
    @pytest.mark.parametrize(
        "lam,mu,p,slo",
        [
            (10.0, 1.0, 0.99, 6.0),
            (100.0, 1.0, 0.99, 5.0),
            (0.5, 1.0, 0.9, 2.5),
            (5000.0, 2.0, 0.999, 4.0),
        ],
    )
    def test_matches_brute_force(self, lam, mu, p, slo):
        c = q.min_servers_mmc(lam, mu, p, slo)
        assert isinstance(c, int)
        assert q.mmc(lam, mu, c).response_quantile(p) <= slo
        if c - 1 > lam / mu:
            assert q.mmc(lam, mu, c - 1).response_quantile(p) > slo
        # Brute force from the smallest stable count.
        first = math.floor(lam / mu) + 1
        brute = next(
            k
            for k in range(first, first + 10_000)
            if q.mmc(lam, mu, k).response_quantile(p) <= slo
        )
        assert c == brute

    def test_wait_target(self):
        c = q.min_servers_mmc(100.0, 1.0, 0.95, 0.0, target="wait")
        assert q.mmc(100.0, 1.0, c).p_wait <= 0.05 < q.mmc(100.0, 1.0, c - 1).p_wait
        c = q.min_servers_mmc(100.0, 1.0, 0.99, 0.05, target="wait")
        assert q.mmc(100.0, 1.0, c).wait_quantile(0.99) <= 0.05
        assert q.mmc(100.0, 1.0, c - 1).wait_quantile(0.99) > 0.05

    def test_errors(self):
        # The p99 of an Exp(1) service alone is 4.6 s: a 4 s SLO is unreachable.
        with pytest.raises(ValueError, match="slo_seconds .* no number of servers"):
            q.min_servers_mmc(1.0, 1.0, 0.99, 4.0)
        with pytest.raises(ValueError, match=r"slo_quantile must be in \(0, 1\)"):
            q.min_servers_mmc(1.0, 1.0, 1.0, 10.0)
        with pytest.raises(ValueError, match="target must be 'response' or 'wait'"):
            q.min_servers_mmc(1.0, 1.0, 0.9, 10.0, target="p99")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="slo_seconds"):
            q.min_servers_mmc(1.0, 1.0, 0.9, -1.0)
        assert q.min_servers_mmc(0.0, 1.0, 0.9, 3.0) == 1


# --------------------------------------------------------------------------------------
# Result objects
# --------------------------------------------------------------------------------------


class TestResults:
    def test_frozen_repr_as_dict_pickle(self):
        results = [
            q.mmc(7.2, 1.0, 8),
            q.mmck(5.0, 1.0, 4, 12),
            q.mg1(0.5, 1.0, 2.0),
            q.md1(0.5, 1.0),
            q.kingman(0.5, 1.0, 2.0, 0.5),
            q.allen_cunneen(7.2, 1.0, 8, 2.0, 0.5),
        ]
        for r in results:
            with pytest.raises(dataclasses.FrozenInstanceError):
                r.mean_wait = 0.0  # type: ignore[misc]
            text = repr(r)
            assert (
                type(r).__name__ in text
                and "mean_wait=" in text
                and "_inner" not in text
            )
            d = r.as_dict()
            assert d["mean_wait"] == r.mean_wait and "approximation" in d
            assert not any(k.startswith("_") for k in d)
            r2 = pickle.loads(pickle.dumps(r))
            assert r2 == r and repr(r2) == text
        m = pickle.loads(pickle.dumps(results[0]))
        assert m.response_quantile(0.99) == results[0].response_quantile(0.99)
        assert results[0].as_dict()["L"] == results[0].L
        assert results[4].approximation and not results[2].approximation

    def test_public_names(self):
        assert qcore.queueing is q
        for name in q.__all__:
            assert hasattr(q, name)
            obj = getattr(q, name)
            if callable(obj) and not isinstance(obj, type):
                assert ">>>" in (obj.__doc__ or ""), name
