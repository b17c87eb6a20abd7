"""Erlang B and C against 40-digit references (mpmath), up to 100,000 servers and where
the values are far below double precision's range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qcore import queueing as q

mpmath = pytest.importorskip("mpmath")


def erlang_b_ref(c: int, a: float):
    """B(c, a) = a^c e^-a / Γ(c + 1, a), evaluated in log space with 40 digits."""
    with mpmath.workdps(40):
        a = mpmath.mpf(a)
        try:
            upper = mpmath.gammainc(c + 1, a)
        except mpmath.libmp.NoConvergence:
            # mpmath's Γ(s, x) can fail to converge for x well above s (overload). There
            # the defining sum Σ_{k≤c} a^k/k! is dominated by its last terms: add them in
            # 40 digits relative to a^c/c!, from k = c down, until they are negligible.
            total, term, k = mpmath.mpf(1), mpmath.mpf(1), c
            while k > 0 and term > total * mpmath.mpf("1e-45"):
                term = term * k / a
                total += term
                k -= 1
            return 1 / total
        return mpmath.exp(c * mpmath.log(a) - a - mpmath.log(upper))


def erlang_c_ref(c: int, a: float):
    with mpmath.workdps(40):
        b = erlang_b_ref(c, a)
        rho = mpmath.mpf(a) / c
        return b / (1 - rho * (1 - b))


def rel(x: float, y) -> float:
    return float(abs(mpmath.mpf(x) - y) / y)


def tolerance(ref) -> float:
    # B = exp(ln B): an absolute error of a few ulps in ln B is a relative error of
    # about 1e-16 * |ln B| in B (B ≈ 1e-236 at 10**5 servers and ρ = 0.9).
    return 6e-15 * max(4.0, abs(float(mpmath.log(ref))))


@pytest.mark.parametrize("c", [1, 2, 3, 10, 30, 31, 100, 1000, 10_000, 100_000])
@pytest.mark.parametrize(
    "rho", [1e-3, 0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0, 1.2, 5.0]
)
def test_erlang_b(c, rho):
    a = rho * c
    ref = erlang_b_ref(c, a)
    got = q.erlang_b(c, a)
    if ref < mpmath.mpf("1e-307"):
        # Below double precision's normal range the value underflows (never errors).
        assert got < 1e-300
    else:
        assert rel(got, ref) < tolerance(ref), (c, rho, got, ref)


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.99999, 1 - 1e-12])
def test_erlang_c_100k_servers(rho):
    c = 100_000
    a = rho * c
    got = q.erlang_c(c, a)
    ref = erlang_c_ref(c, a)
    assert math.isfinite(got) and 0.0 <= got <= 1.0
    if ref < mpmath.mpf("1e-307"):
        assert got < 1e-300
    else:
        assert rel(got, ref) < tolerance(ref), (rho, got, ref)


def test_erlang_c_grid():
    worst = 0.0
    for c in [1, 2, 4, 8, 16, 64, 256, 1024, 4096, 65_536]:
        for rho in [0.01, 0.3, 0.6, 0.85, 0.97, 0.995, 0.99999]:
            a = rho * c
            ref = erlang_c_ref(c, a)
            if ref < mpmath.mpf("1e-300"):
                continue
            worst = max(worst, rel(q.erlang_c(c, a), ref) / tolerance(ref))
    assert worst < 1.0


def test_vectorised_over_one_to_100k_servers():
    # A sample of the 1..100,000 sweep at ρ = 0.95 against the reference.
    servers = np.unique(np.geomspace(1, 100_000, 60).astype(np.int64))
    got = q.erlang_c(servers, 0.95 * servers)
    for c, g in zip(servers, got, strict=True):
        ref = erlang_c_ref(int(c), 0.95 * float(c))
        assert rel(float(g), ref) < tolerance(ref), c


def test_random_points():
    rng = np.random.default_rng(11)
    for _ in range(200):
        c = int(10 ** rng.uniform(0, 5))
        a = c * 10 ** rng.uniform(-2, 0.3)
        ref = erlang_b_ref(c, a)
        if ref > mpmath.mpf("1e-300"):
            assert rel(q.erlang_b(c, a), ref) < tolerance(ref), (c, a)


@pytest.mark.parametrize("c", [200_000, 523_449, 1_000_000])
@pytest.mark.parametrize("sigmas", [-3.0, 0.0, 1.0, 2.3, 3.5, 6.0])
def test_erlang_b_long_series(c, sigmas):
    # Loads within a few standard deviations of the server count need the most terms
    # (thousands): any bias per term would accumulate here.
    a = c - sigmas * math.sqrt(c)
    ref = erlang_b_ref(c, a)
    assert rel(q.erlang_b(c, a), ref) < tolerance(ref), (c, a)


def test_mmc_100k_servers():
    m = q.mmc(99_000.0, 1.0, 100_000)
    assert rel(m.p_wait, erlang_c_ref(100_000, 99_000.0)) < 1e-12
    assert 0 < m.p_wait < 1
    # p99.9 of the response time is at least the service-time p99.9.
    assert m.response_quantile(0.999) > -math.log(1e-3)
    assert abs(m.response_cdf(m.response_quantile(0.999)) - 0.999) < 1e-12
