"""Simulator throughput (customers per second), side by side with SimPy, Ciw and the
vectorised numpy Lindley recursion, on the same M/M/1 and M/M/16 models (rho = 0.9).

Run:
    pytest benches/test_bench_sim.py --benchmark-only --benchmark-columns=min,median,rounds

Sizes: QCORE_BENCH_SIM_CUSTOMERS (qcore and numpy, default 2_000_000) and
QCORE_BENCH_SIM_BASELINE (SimPy and Ciw, default 20_000). Customers per second =
customers / median time; each benchmark stores it in ``extra_info``.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

import qcore
from qcore import sim

N = int(os.environ.get("QCORE_BENCH_SIM_CUSTOMERS", "2000000"))
NB = int(os.environ.get("QCORE_BENCH_SIM_BASELINE", "20000"))
MODELS = {"mm1": (1, 0.9), "mm16": (16, 0.9 * 16)}  # servers, arrival rate (mu = 1)


def _rate(benchmark, n: int) -> None:
    benchmark.extra_info["customers"] = n
    stats = benchmark.stats.stats if hasattr(benchmark.stats, "stats") else None
    if stats is not None:
        benchmark.extra_info["customers_per_s"] = n / stats.median


@pytest.mark.parametrize("model", list(MODELS))
def test_qcore_fast_path(benchmark, model: str) -> None:
    c, lam = MODELS[model]
    benchmark.group = f"sim-{model}"
    r = benchmark.pedantic(
        lambda: qcore.simulate(
            sim.Poisson(lam), sim.Exponential(1.0), servers=c, customers=N, seed=1
        ),
        rounds=9,
        iterations=1,
        warmup_rounds=1,
    )
    assert r.completed == N and r.fast_path
    _rate(benchmark, N)


def _numpy_lindley(lam: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.exponential(1.0 / lam, n)
    s = rng.exponential(1.0, n)
    x = np.empty(n)
    x[0] = 0.0
    np.subtract(s[:-1], a[1:], out=x[1:])
    c = np.cumsum(x)
    return c - np.minimum.accumulate(np.minimum(c, 0.0))  # exact Lindley waits


def test_numpy_lindley_mm1(benchmark) -> None:
    benchmark.group = "sim-mm1"
    w = benchmark.pedantic(
        lambda: _numpy_lindley(0.9, N, 1), rounds=9, iterations=1, warmup_rounds=1
    )
    assert w.shape == (N,) and w.min() >= 0.0
    _rate(benchmark, N)


def _simpy(c: int, lam: float, n: int, seed: int) -> list[float]:
    import simpy

    rnd = random.Random(seed)
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=c)
    waits: list[float] = []

    def customer(env):
        t = env.now
        with res.request() as req:
            yield req
            waits.append(env.now - t)
            yield env.timeout(rnd.expovariate(1.0))

    def source(env):
        for _ in range(n):
            yield env.timeout(rnd.expovariate(lam))
            env.process(customer(env))

    env.process(source(env))
    env.run()
    return waits


@pytest.mark.parametrize("model", list(MODELS))
def test_simpy(benchmark, model: str) -> None:
    pytest.importorskip("simpy")
    c, lam = MODELS[model]
    benchmark.group = f"sim-{model}"
    w = benchmark.pedantic(lambda: _simpy(c, lam, NB, 1), rounds=3, iterations=1)
    assert len(w) == NB
    _rate(benchmark, NB)


def _ciw(c: int, lam: float, n: int, seed: int) -> int:
    import ciw

    ciw.seed(seed)
    net = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=lam)],
        service_distributions=[ciw.dists.Exponential(rate=1.0)],
        number_of_servers=[c],
    )
    q = ciw.Simulation(net)
    q.simulate_until_max_customers(n, method="Finish")
    return len(q.get_all_records())


@pytest.mark.parametrize("model", list(MODELS))
def test_ciw(benchmark, model: str) -> None:
    pytest.importorskip("ciw")
    c, lam = MODELS[model]
    benchmark.group = f"sim-{model}"
    done = benchmark.pedantic(lambda: _ciw(c, lam, NB, 1), rounds=3, iterations=1)
    assert done >= NB
    _rate(benchmark, NB)


@pytest.mark.parametrize("model", list(MODELS))
def test_qcore_event_loop_same_model(benchmark, model: str) -> None:
    c, lam = MODELS[model]
    benchmark.group = f"sim-{model}"
    r = benchmark.pedantic(
        lambda: qcore.simulate(
            sim.Poisson(lam),
            sim.Exponential(1.0),
            servers=c,
            customers=N,
            seed=1,
            method="event",
        ),
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert r.completed == N and not r.fast_path
    _rate(benchmark, N)


def test_qcore_event_loop_general(benchmark) -> None:
    """Timeouts, finite waiting room and a time-varying server count with start-up delay."""
    benchmark.group = "sim-general"
    sched = [
        (t, 16 if (t // 5000) % 2 == 0 else 20)
        for t in np.arange(0.0, N / 14.4, 2500.0)
    ]
    r = benchmark.pedantic(
        lambda: qcore.simulate(
            sim.Poisson(14.4),
            sim.Exponential(1.0),
            servers=16,
            customers=N,
            seed=1,
            patience=sim.Exponential(20.0),
            queue_capacity=200,
            server_schedule=sched,
            startup_delay=30.0,
        ),
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert r.arrived == N and r.timed_out > 0
    _rate(benchmark, N)


def test_qcore_event_loop_batching(benchmark) -> None:
    """Dynamic batching (max 16, max wait 5 ms) on 4 servers with timeouts."""
    benchmark.group = "sim-general"
    r = benchmark.pedantic(
        lambda: qcore.simulate(
            sim.Poisson(1000.0),
            servers=4,
            customers=N,
            seed=1,
            max_batch_size=16,
            max_batch_wait=0.005,
            batch_service=(0.02, 0.002),
            patience=0.5,
        ),
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert r.arrived == N
    _rate(benchmark, N)
