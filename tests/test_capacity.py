"""Capacity planning against exact M/M/c answers and simulation."""

from __future__ import annotations

import dataclasses
import math

import pytest
from scipy import optimize

import qcore
from qcore import capacity, sim
from qcore.exceptions import InvalidArgumentError


def erlang_c(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def response_sf(t: float, lam: float, mu: float, c: int) -> float:
    pw = erlang_c(c, lam / mu)
    theta = c * mu - lam
    if abs(theta - mu) < 1e-12:
        cond = math.exp(-mu * t) * (1.0 + mu * t)
    else:
        cond = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1.0 - pw) * math.exp(-mu * t) + pw * cond


def brute_force(lam: float, mean: float, q: float, slo: float) -> int:
    mu = 1.0 / mean
    c = int(lam * mean) + 1
    while response_sf(slo, lam, mu, c) > 1.0 - q:
        c += 1
    return c


@pytest.mark.parametrize(
    "lam,mean,q,slo",
    [
        (90.0, 0.1, 0.99, 0.5),
        (0.5, 1.0, 0.9, 5.0),
        (1000.0, 0.05, 0.999, 0.4),
        (7.0, 1.0, 0.95, 3.2),
        (20_000.0, 0.01, 0.99, 0.05),
    ],
)
def test_analytic_matches_brute_force(lam, mean, q, slo) -> None:
    r = capacity.min_servers(lam, sim.Exponential(mean), q, slo)
    assert r.method == "analytic" and r.ci is None
    want = brute_force(lam, mean, q, slo)
    assert r.servers == want
    assert r.achieved <= slo
    # One fewer server misses the SLO.
    if want - 1 > lam * mean:
        tq = optimize.brentq(
            lambda t: response_sf(t, lam, 1 / mean, want - 1) - (1 - q), 0, 1e6
        )
        assert tq > slo
    assert r.utilization == pytest.approx(lam * mean / r.servers)


def test_simulation_agrees_with_analytic_for_mmc() -> None:
    a = capacity.min_servers(40.0, sim.Exponential(0.1), 0.99, 0.6)
    s = capacity.min_servers(
        40.0,
        sim.Exponential(0.1),
        0.99,
        0.6,
        method="simulation",
        customers=60_000,
        warmup=5_000,
        replications=4,
        seed=2,
    )
    assert s.method == "simulation"
    assert abs(s.servers - a.servers) <= 1
    lo, hi = s.ci
    assert lo <= s.achieved <= hi


def test_simulated_answer_is_minimal_under_common_random_numbers() -> None:
    kw = {"customers": 40_000, "warmup": 4_000, "replications": 4, "seed": 5}
    arr = sim.Renewal.from_rate(50.0, cv=2.0)
    svc = sim.LogNormal(mean=0.1, cv=1.2)
    r = capacity.min_servers(None, svc, 0.99, 0.8, arrivals=arr, **kw)
    assert r.achieved <= 0.8
    tried = {c: est for c, est, _, _ in r.evaluations}
    assert r.servers - 1 in tried and tried[r.servers - 1] > 0.8
    # Re-simulating the chosen count with the same seed reproduces the estimate.
    again = qcore.simulate(arr, svc, servers=r.servers, **kw)
    assert again.response_quantile(0.99)[1] == pytest.approx(r.achieved, rel=1e-12)


def test_conservative_never_picks_fewer() -> None:
    kw = {
        "customers": 20_000,
        "warmup": 2_000,
        "replications": 4,
        "seed": 1,
        "method": "simulation",
    }
    est = capacity.min_servers(30.0, sim.Gamma(mean=0.1, cv=1.5), 0.99, 0.9, **kw)
    cons = capacity.min_servers(
        30.0, sim.Gamma(mean=0.1, cv=1.5), 0.99, 0.9, conservative=True, **kw
    )
    assert cons.servers >= est.servers
    assert cons.ci[1] <= 0.9


def test_batching_capacity() -> None:
    r = capacity.min_servers(
        400.0,
        None,
        0.99,
        0.1,
        customers=20_000,
        warmup=2_000,
        replications=3,
        max_batch_size=16,
        max_batch_wait=0.01,
        batch_service=(0.02, 0.002),
    )
    assert r.method == "simulation" and r.achieved <= 0.1
    # Each server handles at most 16 / (0.02 + 0.032) = 308 requests/s: 400/s needs 2+.
    assert r.servers >= 2


def test_result_object() -> None:
    r = capacity.min_servers(10.0, sim.Exponential(0.1), 0.9, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.servers = 1  # type: ignore[misc]
    d = r.as_dict()
    assert d["servers"] == r.servers and d["method"] == "analytic"
    assert "CapacityResult(servers=" in repr(r)


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((10.0, sim.Exponential(0.1), 1.5, 1.0), {}, "slo_quantile"),
        ((10.0, sim.Exponential(0.1), 0.9, -1.0), {}, "slo_seconds"),
        ((-1.0, sim.Exponential(0.1), 0.9, 1.0), {}, "arrival_rate"),
        ((None, sim.Exponential(0.1), 0.9, 1.0), {}, "arrival_rate or arrivals"),
        (
            (1.0, sim.Exponential(0.1), 0.9, 1.0),
            {"arrivals": sim.Poisson(1.0)},
            "not both",
        ),
        ((10.0, sim.Exponential(0.1), 0.99, 0.2), {}, "service time alone"),
        (
            (10.0, sim.Gamma(mean=0.1, cv=1.0), 0.9, 1.0),
            {"method": "analytic"},
            "analytic",
        ),
        ((10.0, sim.Exponential(0.1), 0.9, 1.0), {"method": "guess"}, "method"),
        ((10.0, sim.Exponential(0.1), 0.9, 1.0), {"max_servers": 0}, "max_servers"),
        ((1000.0, sim.Exponential(0.1), 0.9, 1.0), {"max_servers": 50}, "max_servers"),
    ],
)
def test_bad_input(args, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        capacity.min_servers(*args, **kwargs)


def test_unreachable_slo_in_simulation() -> None:
    with pytest.raises(ValueError, match="service time alone"):
        capacity.min_servers(
            5.0,
            sim.Deterministic(1.0),
            0.99,
            0.9,
            customers=5_000,
            warmup=500,
            replications=2,
        )
    with pytest.raises(ValueError, match="unlimited servers"):
        capacity.min_servers(
            5.0,
            sim.Gamma(mean=0.2, cv=2.0),
            0.99,
            1.0,
            customers=5_000,
            warmup=500,
            replications=2,
        )


def test_first_candidate_is_stable_even_when_the_mean_rounds_down():
    from qcore.capacity import _first_stable

    # LogNormal(mean=0.5).mean_value is 0.49999999999999994: 200/s offers 100 servers' worth
    assert sim.LogNormal(mean=0.5, cv=2.0).mean_value < 0.5
    assert _first_stable(200 * sim.LogNormal(mean=0.5, cv=2.0).mean_value, 1.0) == 101
    assert _first_stable(5000 * 0.49999999999999994, 1.0) == 2501
    assert _first_stable(2.5, 1.0) == 3 and _first_stable(0.2, 1.0) == 1
    assert _first_stable(100.0, 0.9) == 112 and _first_stable(90.0, 0.9) == 100


def test_plan_never_offers_a_saturated_count():
    r = capacity.min_servers(200.0, sim.LogNormal(mean=0.5, cv=2.0), 0.99, 5.0)
    assert min(e[0] for e in r.evaluations) >= 101       # 100 servers is utilization 1
    assert r.servers > 100 and 200 * 0.5 / r.servers < 1.0
    assert r.achieved <= 5.0
    assert r.straddles_slo == (r.ci is not None and r.ci[0] <= 5.0 <= r.ci[1])


def test_max_utilization_headroom():
    r = capacity.min_servers(200.0, sim.LogNormal(mean=0.5, cv=2.0), 0.99, 5.0, max_utilization=0.9)
    assert r.evaluations[0][0] == 112 and 100.0 / r.servers <= 0.9
    a = capacity.min_servers(200.0, sim.Exponential(mean=0.5), 0.99, 5.0, max_utilization=0.8)
    assert a.method == "analytic" and a.servers >= 125 and a.evaluations[0][0] == 125
    free = capacity.min_servers(200.0, sim.Exponential(mean=0.5), 0.99, 5.0)
    assert free.servers < 125   # the headroom, not the SLO, set the answer above
    for bad in (0.0, 1.5, -1.0, float("nan"), True):
        with pytest.raises(InvalidArgumentError, match="max_utilization"):
            capacity.min_servers(200.0, sim.Exponential(mean=0.5), 0.99, 5.0, max_utilization=bad)


def test_relaxation_time_matches_the_mm1_estimate():
    # Whitt's M/M/1 relaxation time 1 / (mu (1 - sqrt(rho))^2); infinite at saturation
    for rho in (0.5, 0.9, 0.99):
        assert capacity.relaxation_time(rho, 1.0, 1) == pytest.approx(1.0 / (1.0 - rho ** 0.5) ** 2)
    assert capacity.relaxation_time(1.0, 1.0, 1) == float("inf")
    # more variable service relaxes more slowly, in proportion to (ca^2 + cs^2) / 2
    assert capacity.relaxation_time(0.9, 1.0, 1, 1.0, 4.0) == pytest.approx(
        2.5 * capacity.relaxation_time(0.9, 1.0, 1))
