"""Analytic queueing models: qcore side by side with scipy/numpy references.

Run:  pytest benches/test_bench_queueing.py --benchmark-only --benchmark-group-by=group
Sizes: QCORE_BENCH_QUEUEING_N (default 100_000 servers in the Erlang C sweep).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from scipy import optimize, stats

from qcore import queueing as q

N = int(os.environ.get("QCORE_BENCH_QUEUEING_N", "100000"))
SERVERS = np.arange(1, N + 1, dtype=np.int64)


def scipy_erlang_c(c, a):
    """Erlang C from scipy's Poisson pmf/cdf: B = pmf(c)/cdf(c), C = B/(1 − ρ(1 − B))."""
    b = stats.poisson.pmf(c, a) / stats.poisson.cdf(c, a)
    rho = a / c
    return b / (1 - rho * (1 - b))


def python_erlang_c(c: int, a: float) -> float:
    """The textbook recursion B_k = a B_{k−1}/(k + a B_{k−1}) in a Python loop."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho * (1 - b))


# ---- Erlang C over servers 1..N at ρ = 0.9 ------------------------------------------


@pytest.mark.parametrize("rho", [0.5, 0.9, 0.99])
@pytest.mark.benchmark(group="erlang_c sweep 1..N servers")
def test_erlang_c_sweep_qcore(benchmark, rho):
    out = benchmark(q.erlang_c, SERVERS, rho * SERVERS.astype(np.float64))
    assert out.shape == (N,)


@pytest.mark.parametrize("rho", [0.5, 0.9, 0.99])
@pytest.mark.benchmark(group="erlang_c sweep 1..N servers")
def test_erlang_c_sweep_scipy(benchmark, rho):
    out = benchmark(scipy_erlang_c, SERVERS, rho * SERVERS.astype(np.float64))
    assert out.shape == (N,)


# ---- One Erlang C at 100,000 servers ---------------------------------------------------

C_BIG = 100_000


@pytest.mark.benchmark(group="erlang_c one call, c=100000, rho=0.99")
def test_erlang_c_single_qcore(benchmark):
    v = benchmark(q.erlang_c, C_BIG, 0.99 * C_BIG)
    assert 0 < v < 1


@pytest.mark.benchmark(group="erlang_c one call, c=100000, rho=0.99")
def test_erlang_c_single_scipy(benchmark):
    v = benchmark(scipy_erlang_c, C_BIG, 0.99 * C_BIG)
    assert 0 < v < 1


@pytest.mark.benchmark(group="erlang_c one call, c=100000, rho=0.99")
def test_erlang_c_single_python_recursion(benchmark):
    v = benchmark(python_erlang_c, C_BIG, 0.99 * C_BIG)
    assert 0 < v < 1


# ---- M/M/c response-time p99 -----------------------------------------------------------

LAM, MU, C = 57.6, 1.0, 64


def scipy_mmc_p99() -> float:
    """Closed-form M/M/c response CDF in numpy, inverted with scipy's brentq."""
    a = LAM / MU
    cw = scipy_erlang_c(C, a)
    theta = C * MU - LAM

    def cdf(t: float) -> float:
        hypo = 1 - (theta * math.exp(-MU * t) - MU * math.exp(-theta * t)) / (
            theta - MU
        )
        return (1 - cw) * (1 - math.exp(-MU * t)) + cw * hypo

    return optimize.brentq(lambda t: cdf(t) - 0.99, 0.0, 1e3, xtol=1e-12, rtol=1e-12)


@pytest.mark.benchmark(group="mmc build + response p99 (c=64, rho=0.9)")
def test_mmc_p99_qcore(benchmark):
    v = benchmark(lambda: q.mmc(LAM, MU, C).response_quantile(0.99))
    assert v == pytest.approx(scipy_mmc_p99(), rel=1e-9)


@pytest.mark.benchmark(group="mmc build + response p99 (c=64, rho=0.9)")
def test_mmc_p99_scipy(benchmark):
    benchmark(scipy_mmc_p99)


QS = np.linspace(0.001, 0.999, 10_000)


@pytest.mark.benchmark(group="mmc response quantiles, 10k levels")
def test_mmc_quantile_array_qcore(benchmark):
    m = q.mmc(LAM, MU, C)
    out = benchmark(m.response_quantile, QS)
    assert out.shape == QS.shape


# ---- Capacity search -----------------------------------------------------------------


def scipy_min_servers(lam: float, mu: float, p: float, slo: float) -> int:
    """Linear scan from the smallest stable count with the scipy-based p-quantile."""
    c = math.floor(lam / mu) + 1
    while True:
        a = lam / mu
        cw = scipy_erlang_c(c, a)
        theta = c * mu - lam
        t = slo
        if theta == mu:  # cμ − λ = μ: the sum of two Exp(μ) is Erlang-2
            hypo_sf = (1 + mu * t) * math.exp(-mu * t)
        else:
            hypo_sf = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (
                theta - mu
            )
        sf = (1 - cw) * math.exp(-mu * t) + cw * hypo_sf
        if sf <= 1 - p:
            return c
        c += 1


@pytest.mark.benchmark(group="min servers for p99 <= 4.7 s (lambda=10000/s, mu=1/s)")
def test_min_servers_qcore(benchmark):
    c = benchmark(q.min_servers_mmc, 10_000.0, 1.0, 0.99, 4.7)
    assert c == scipy_min_servers(10_000.0, 1.0, 0.99, 4.7)


@pytest.mark.benchmark(group="min servers for p99 <= 4.7 s (lambda=10000/s, mu=1/s)")
def test_min_servers_scipy_scan(benchmark):
    benchmark(scipy_min_servers, 10_000.0, 1.0, 0.99, 4.7)
