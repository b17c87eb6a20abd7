"""The simulator against exact queueing results, and its boundary behaviour."""

from __future__ import annotations

import dataclasses
import doctest
import math

import numpy as np
import polars as pl
import pytest
from scipy import optimize, stats

import qcore
from qcore import sim

# ----------------------------------------------------------------------------- references


def erlang_c(c: int, a: float) -> float:
    """P(wait) in M/M/c with offered load a (Erlang B recursion, then C)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc_response_sf(t: float, lam: float, mu: float, c: int) -> float:
    pw = erlang_c(c, lam / mu)
    theta = c * mu - lam
    if abs(theta - mu) < 1e-12:
        cond = math.exp(-mu * t) * (1.0 + mu * t)
    else:
        cond = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1.0 - pw) * math.exp(-mu * t) + pw * cond


def mmc_response_quantile(q: float, lam: float, mu: float, c: int) -> float:
    return optimize.brentq(
        lambda t: mmc_response_sf(t, lam, mu, c) - (1.0 - q), 0.0, 1e4, xtol=1e-12
    )


def mmck_block(lam: float, mu: float, c: int, k: int) -> float:
    """Blocking probability of M/M/c/K (K = servers + waiting room) in log space."""
    a = lam / mu
    logp = []
    for n in range(k + 1):
        if n <= c:
            logp.append(n * math.log(a) - math.lgamma(n + 1))
        else:
            logp.append(n * math.log(a) - math.lgamma(c + 1) - (n - c) * math.log(c))
    m = max(logp)
    w = np.exp(np.array(logp) - m)
    return float(w[-1] / w.sum())


def within(ci: tuple[float, float, float], truth: float, slack: float = 0.0) -> bool:
    lo, _, hi = ci
    return lo - slack <= truth <= hi + slack


# ----------------------------------------------------------------------------- M/M/c


@pytest.mark.parametrize("c", [1, 2, 8, 64])
@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
def test_mmc_matches_analytic(c: int, rho: float) -> None:
    mu = 1.0
    lam = rho * c * mu
    # Long enough runs for the heavy-traffic single server (relaxation ~ 1/(1-sqrt rho)^2).
    customers = 400_000 if rho == 0.95 else 120_000
    r = qcore.simulate(
        sim.Poisson(rate=lam),
        sim.Exponential(mean=1.0 / mu),
        servers=c,
        customers=customers,
        warmup=customers // 10,
        seed=11,
        replications=10,
        confidence=0.999,
        relative_accuracy=0.002,
        threads=2,
    )
    assert r.fast_path
    pw = erlang_c(c, lam / mu)
    mean_resp = pw / (c * mu - lam) + 1.0 / mu
    p99 = mmc_response_quantile(0.99, lam, mu, c)
    # P(wait) can be ~1e-7 (c = 64, rho = 0.5), where the replications see no waits at
    # all and the interval collapses: allow the binomial resolution of the whole run.
    n = r.completed
    assert within(r.intervals["p_wait"], pw, slack=3 * math.sqrt(pw / n) + 1 / n), (
        r.intervals["p_wait"],
        pw,
    )
    assert within(r.intervals["mean_response"], mean_resp), (
        r.intervals["mean_response"],
        mean_resp,
    )
    # The sketch quantile is within its relative accuracy of the sample quantile.
    assert within(r.response_quantile(0.99), p99, slack=0.002 * p99), (
        r.response_quantile(0.99),
        p99,
    )
    assert within(r.intervals["utilization"], rho)
    # The CIs are tight enough to mean something.
    lo, _est, hi = r.intervals["mean_response"]
    assert hi - lo < 0.25 * mean_resp


def test_mm1_published_value() -> None:
    # M/M/1 at rho = 0.9 has mean response 10/mu.
    r = qcore.simulate(
        sim.Poisson(0.9),
        sim.Exponential(1.0),
        customers=1_000_000,
        warmup=10_000,
        seed=1,
        replications=4,
        confidence=0.999,
    )
    assert within(r.intervals["mean_response"], 10.0)


@pytest.mark.parametrize(
    "c,room,rho", [(1, 4, 0.8), (2, 3, 0.9), (4, 6, 1.2), (8, 0, 0.7)]
)
def test_mmck_blocking(c: int, room: int, rho: float) -> None:
    lam = rho * c
    r = qcore.simulate(
        sim.Poisson(lam),
        sim.Exponential(1.0),
        servers=c,
        customers=100_000,
        warmup=5_000,
        queue_capacity=room,
        seed=5,
        replications=8,
        confidence=0.999,
    )
    pb = mmck_block(lam, 1.0, c, c + room)
    assert within(r.intervals["p_block"], pb), (r.intervals["p_block"], pb)
    assert r.arrived == r.completed + r.blocked
    assert not r.fast_path


@pytest.mark.parametrize(
    "service",
    [
        sim.Deterministic(1.0),
        sim.Gamma(mean=1.0, cv=2.0),
        sim.LogNormal(mean=1.0, cv=1.5),
        sim.Gamma(mean=1.0, cv=0.5),
    ],
    ids=["M/D/1", "M/G/1 gamma cv2", "M/G/1 lognormal", "M/G/1 gamma cv0.5"],
)
def test_mg1_pollaczek_khinchine(service: sim.Distribution) -> None:
    lam = 0.7
    es = service.mean_value
    wq = lam * es * es * (1.0 + service.scv) / (2.0 * (1.0 - lam * es))
    r = qcore.simulate(
        sim.Poisson(lam),
        service,
        customers=200_000,
        warmup=10_000,
        seed=3,
        replications=10,
        confidence=0.999,
    )
    assert within(r.intervals["mean_wait"], wq), (r.intervals["mean_wait"], wq)


def test_littles_law_on_simulated_output() -> None:
    # Event loop: the time average is swept event by event, independently of W.
    r = qcore.simulate(
        sim.Poisson(3.4),
        sim.Gamma(mean=1.0, cv=1.3),
        servers=4,
        customers=100_000,
        seed=2,
        method="event",
        records=True,
    )
    lam = r.arrived / r.duration
    assert r.mean_in_system == pytest.approx(lam * r.mean_response, rel=2e-3)
    assert r.mean_in_queue == pytest.approx(lam * r.mean_wait, rel=5e-3)
    # The project's Little's law check on the per-request log agrees with the sweep
    # over the same window: first to last arrival.
    rec = r.records
    check = qcore.littles_law(rec["arrival"], rec["end"], t1=float(rec["arrival"].max()))
    assert check.holds
    assert check.L == pytest.approx(r.mean_in_system, rel=1e-9)


def test_littles_law_with_blocking_and_timeouts() -> None:
    r = qcore.simulate(
        sim.Poisson(2.5),
        sim.Exponential(1.0),
        servers=2,
        customers=100_000,
        seed=4,
        queue_capacity=10,
        patience=sim.Exponential(4.0),
        records=True,
    )
    rec = r.records
    admitted = rec.filter(pl.col("status") != "blocked")
    lam = admitted.height / r.duration
    mean_sojourn = float((admitted["end"] - admitted["arrival"]).mean())
    assert r.mean_in_system == pytest.approx(lam * mean_sojourn, rel=2e-3)
    assert r.arrived == r.completed + r.blocked + r.timed_out
    assert r.blocked > 0 and r.timed_out > 0


# ----------------------------------------------------------------------------- fast path


@pytest.mark.parametrize(
    "arrivals,service,c",
    [
        (sim.Poisson(0.9), sim.Exponential(1.0), 1),
        (sim.Poisson(14.4), sim.Exponential(1.0), 16),
        (
            sim.MMPP2(rates=(2.0, 9.0), switch_rates=(0.1, 0.2)),
            sim.Gamma(mean=1.0, cv=1.5),
            8,
        ),
        (
            sim.Renewal.from_rate(3.0, cv=2.0, family="lognormal"),
            sim.LogNormal(mean=0.9, cv=1.0),
            3,
        ),
        (sim.Poisson(5.0), sim.Empirical([0.1, 0.5, 0.9, 2.0]), 4),
    ],
)
def test_fast_path_equals_event_loop(arrivals, service, c) -> None:
    kw = {
        "servers": c,
        "customers": 30_000,
        "warmup": 3_000,
        "seed": 9,
        "records": True,
    }
    f = qcore.simulate(arrivals, service, method="fast", **kw)
    e = qcore.simulate(arrivals, service, method="event", **kw)
    assert f.fast_path and not e.fast_path
    fd, ed = f.as_dict(), e.as_dict()
    for k in ("arrived", "completed", "blocked", "timed_out"):
        assert fd[k] == ed[k]
    for k in (
        "mean_response",
        "mean_wait",
        "p_wait",
        "utilization",
        "mean_in_system",
        "mean_in_queue",
        "throughput",
        "duration",
    ):
        assert fd[k] == pytest.approx(ed[k], rel=1e-9, abs=1e-12), k
    for col in ("arrival", "start", "end"):
        np.testing.assert_allclose(
            f.records[col].to_numpy(), e.records[col].to_numpy(), rtol=1e-12, atol=1e-9
        )
    assert f.response.count == e.response.count


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_result_different_seed_differs() -> None:
    kw = {
        "servers": 3,
        "customers": 20_000,
        "patience": sim.Exponential(5.0),
        "queue_capacity": 20,
    }
    a = qcore.simulate(sim.Poisson(3.3), sim.Gamma(mean=1.0, cv=1.2), seed=7, **kw)
    b = qcore.simulate(sim.Poisson(3.3), sim.Gamma(mean=1.0, cv=1.2), seed=7, **kw)
    c = qcore.simulate(sim.Poisson(3.3), sim.Gamma(mean=1.0, cv=1.2), seed=8, **kw)
    assert repr(a.as_dict()) == repr(b.as_dict())
    assert a.response.to_bytes() == b.response.to_bytes()
    assert a.mean_response != c.mean_response
    # Replications are independent streams; threads do not change them.
    r1 = qcore.simulate(
        sim.Poisson(3.3), sim.Gamma(mean=1.0, cv=1.2), seed=7, replications=3, **kw
    )
    r2 = qcore.simulate(
        sim.Poisson(3.3),
        sim.Gamma(mean=1.0, cv=1.2),
        seed=7,
        replications=3,
        threads=2,
        **kw,
    )
    assert r1.per_replication.equals(r2.per_replication)
    assert r1.per_replication["mean_response"].n_unique() == 3
    assert r1.per_replication["mean_response"][0] == pytest.approx(
        a.mean_response, rel=0, abs=0
    )


def test_reference_values_are_stable() -> None:
    # Fixed algorithm: these numbers must not change across platforms or releases.
    r = qcore.simulate(
        sim.Poisson(0.5), sim.Exponential(1.0), customers=5, seed=42, records=True
    )
    arrivals = r.records["arrival"].to_numpy()
    again = qcore.simulate(
        sim.Poisson(0.5), sim.Exponential(1.0), customers=5, seed=42, records=True
    )
    assert np.array_equal(arrivals, again.records["arrival"].to_numpy())
    assert np.all(np.diff(arrivals) > 0)


def test_common_random_numbers_across_server_counts() -> None:
    kw = {"customers": 5_000, "seed": 3, "records": True}
    a = qcore.simulate(sim.Poisson(1.8), sim.Exponential(1.0), servers=2, **kw)
    b = qcore.simulate(sim.Poisson(1.8), sim.Exponential(1.0), servers=3, **kw)
    np.testing.assert_array_equal(
        a.records["arrival"].to_numpy(), b.records["arrival"].to_numpy()
    )
    sa = (a.records["end"] - a.records["start"]).to_numpy()
    sb = (b.records["end"] - b.records["start"]).to_numpy()
    np.testing.assert_allclose(sa, sb, rtol=1e-9)
    # Sample-path monotonicity under common random numbers.
    assert np.all(b.records["wait"].to_numpy() <= a.records["wait"].to_numpy() + 1e-9)


# ----------------------------------------------------------------------------- features


def test_patience_exact_on_records() -> None:
    r = qcore.simulate(
        sim.Poisson(2.0),
        sim.Exponential(1.0),
        servers=1,
        customers=20_000,
        patience=0.5,
        records=True,
        seed=1,
    )
    rec = r.records
    gone = rec.filter(pl.col("status") == "timed_out")
    assert gone.height == r.timed_out > 0
    np.testing.assert_allclose(
        (gone["end"] - gone["arrival"]).to_numpy(), 0.5, rtol=1e-12
    )
    assert gone["start"].is_nan().all()
    served = rec.filter(pl.col("status") == "completed")
    assert (served["wait"] <= 0.5 + 1e-12).all()


def test_lifo_same_mean_longer_tail() -> None:
    kw = {
        "servers": 1,
        "customers": 300_000,
        "warmup": 10_000,
        "seed": 2,
        "replications": 4,
        "confidence": 0.999,
    }
    f = qcore.simulate(sim.Poisson(0.8), sim.Exponential(1.0), discipline="fcfs", **kw)
    l = qcore.simulate(sim.Poisson(0.8), sim.Exponential(1.0), discipline="lifo", **kw)
    assert within(l.intervals["mean_response"], 5.0)
    assert l.response.quantile(0.999) > 1.5 * f.response.quantile(0.999)
    assert l.response.quantile(0.5) < f.response.quantile(0.5)


def test_batching_forms_of_batch_service_agree() -> None:
    kw = {
        "servers": 2,
        "customers": 20_000,
        "seed": 5,
        "max_batch_size": 8,
        "max_batch_wait": 0.02,
        "records": True,
    }
    lin = qcore.simulate(sim.Poisson(150.0), batch_service=(0.01, 0.004), **kw)
    tab = qcore.simulate(
        sim.Poisson(150.0), batch_service=[0.01 + 0.004 * n for n in range(1, 9)], **kw
    )
    fun = qcore.simulate(
        sim.Poisson(150.0), batch_service=lambda n: 0.01 + 0.004 * n, **kw
    )
    assert lin.mean_response == pytest.approx(tab.mean_response, rel=1e-12)
    assert lin.mean_response == pytest.approx(fun.mean_response, rel=1e-12)
    rec = lin.records
    # No request waits longer than max_batch_wait while a server is idle, and batches
    # never exceed max_batch_size: group by start time and server-busy periods.
    sizes = rec.group_by(["start", "end"]).len()["len"]
    assert sizes.max() <= 8
    svc = (rec["end"] - rec["start"]).to_numpy()
    sizes_by_row = rec.join(rec.group_by(["start", "end"]).len(), on=["start", "end"])[
        "len"
    ].to_numpy()
    np.testing.assert_allclose(svc, 0.01 + 0.004 * sizes_by_row, rtol=1e-9)


def test_batching_timer_starts_partial_batches() -> None:
    # One request per second, max wait 0.25 s, batch time 0.2 s: every request waits
    # exactly 0.25 s and is served alone.
    r = qcore.simulate(
        sim.Renewal(sim.Deterministic(1.0)),
        servers=1,
        customers=100,
        max_batch_size=4,
        max_batch_wait=0.25,
        batch_service=(0.1, 0.1),
    )
    assert r.mean_wait == pytest.approx(0.25)
    assert r.mean_response == pytest.approx(0.45)


def test_server_schedule_startup_and_draining() -> None:
    sched = [(0.0, 1), (100.0, 4), (300.0, 2)]
    r = qcore.simulate(
        sim.Poisson(2.5),
        sim.Exponential(1.0),
        servers=1,
        customers=1_500,
        server_schedule=sched,
        startup_delay=20.0,
        records=True,
        seed=3,
    )
    rec = r.records
    # Before the added servers are ready (t < 120) only one request is in service at a time.
    starts, ends = rec["start"].to_numpy(), rec["end"].to_numpy()

    def busy_at(t: float) -> int:
        return int(np.sum((starts <= t) & (ends > t)))

    assert max(busy_at(t) for t in np.arange(0.0, 120.0, 0.05)) <= 1
    assert max(busy_at(t) for t in np.arange(120.0, 300.0, 0.05)) >= 3
    # After 300 s the count drops to 2: in-flight work drains, then at most 2 serve.
    drain_end = max(ends[(starts < 300.0) & (ends > 300.0)], default=300.0)
    assert (
        max(busy_at(t) for t in np.arange(drain_end + 1e-9, drain_end + 200.0, 0.05))
        <= 2
    )
    assert r.completed == r.arrived
    # Same result from a polars frame.
    r2 = qcore.simulate(
        sim.Poisson(2.5),
        sim.Exponential(1.0),
        servers=1,
        customers=1_500,
        server_schedule=pl.DataFrame({"t": [0.0, 100.0, 300.0], "n": [1, 4, 2]}),
        startup_delay=20.0,
        seed=3,
    )
    assert r2.mean_response == r.mean_response


def test_schedule_to_zero_leaves_unfinished() -> None:
    r = qcore.simulate(
        sim.Poisson(1.0),
        sim.Exponential(0.5),
        servers=1,
        customers=200,
        server_schedule=[(50.0, 0)],
        seed=1,
    )
    assert r.unfinished > 0
    assert r.arrived == r.completed + r.unfinished


def test_trace_arrivals_and_durations() -> None:
    ts = np.array([1000.0, 1000.5, 1001.0, 1001.2, 1005.0])
    d = np.array([1.0, 0.2, 0.3, 0.1, 0.4])
    r = qcore.simulate(sim.Trace(ts), sim.Durations(d), servers=1, records=True)
    rec = r.records
    np.testing.assert_array_equal(rec["arrival"].to_numpy(), ts)
    np.testing.assert_allclose(
        rec["start"].to_numpy(), [1000.0, 1001.0, 1001.2, 1001.5, 1005.0]
    )
    np.testing.assert_allclose((rec["end"] - rec["start"]).to_numpy(), d)
    assert r.arrived == 5
    # A numpy array as service means trace durations; a polars Series works too.
    r2 = qcore.simulate(sim.Trace(pl.Series(ts)), pl.Series(d))
    assert r2.mean_response == pytest.approx(r.mean_response)


def test_trace_from_real_log(shared_data) -> None:
    files = sorted(shared_data.glob("azure_llm_2023/*.csv"))
    if not files:
        pytest.skip("azure_llm_2023 CSV not available")
    df = pl.read_csv(files[0], n_rows=20_000, try_parse_dates=True)
    tcol = next(c for c in df.columns if "time" in c.lower())
    col = df[tcol]
    ts = (col.dt.epoch("us") / 1e6) if col.dtype.is_temporal() else col.cast(pl.Float64)
    ts = ts.sort()
    r = qcore.simulate(sim.Trace(ts), sim.Exponential(0.05), servers=4, records=True)
    assert r.arrived == len(ts)
    np.testing.assert_allclose(r.records["arrival"].to_numpy(), ts.to_numpy())
    assert r.completed == r.arrived


def test_arrival_processes_rates() -> None:
    cases = [
        (sim.MMPP2(rates=(1.0, 9.0), switch_rates=(0.05, 0.15)), 3.0),
        (sim.Renewal(sim.Gamma(mean=0.25, cv=3.0)), 4.0),
        (sim.Renewal.from_rate(2.0, cv=0.3), 2.0),
    ]
    for proc, rate in cases:
        assert proc.mean_rate == pytest.approx(rate)
        r = qcore.simulate(
            proc, sim.Exponential(0.01), servers=4, customers=200_000, seed=1
        )
        assert r.arrived / r.duration == pytest.approx(rate, rel=0.03)
    p = sim.PiecewiseRate(times=[0.0, 100.0, 200.0], rates=[5.0, 20.0, 5.0])
    r = qcore.simulate(
        p, sim.Exponential(0.01), servers=2, customers=3_000, records=True, seed=2
    )
    arr = r.records["arrival"].to_numpy()
    n1 = np.sum(arr < 100.0)
    n2 = np.sum((arr >= 100.0) & (arr < 200.0))
    assert abs(n1 - 500) < 5 * math.sqrt(500)
    assert abs(n2 - 2000) < 5 * math.sqrt(2000)
    # A schedule ending at rate 0 ends the arrivals early.
    r = qcore.simulate(
        sim.PiecewiseRate([0.0, 10.0], [2.0, 0.0]),
        sim.Exponential(0.1),
        customers=10_000,
    )
    assert r.arrived < 60


def test_service_samplers_match_scipy() -> None:
    # Response = service when servers are ample; compare with the exact distributions.
    for d, ref in [
        (sim.Gamma(mean=2.0, cv=0.5), stats.gamma(a=4.0, scale=0.5)),
        (
            sim.LogNormal(mean=1.0, cv=1.0),
            stats.lognorm(
                s=math.sqrt(math.log(2.0)), scale=math.exp(-0.5 * math.log(2.0))
            ),
        ),
        (sim.Exponential(0.3), stats.expon(scale=0.3)),
    ]:
        r = qcore.simulate(
            sim.Poisson(1.0), d, servers=64, customers=50_000, records=True, seed=4
        )
        x = r.records["response"].to_numpy()
        assert stats.kstest(x, ref.cdf).pvalue > 1e-3


# ----------------------------------------------------------------------------- result object


def test_result_object() -> None:
    r = qcore.simulate(
        sim.Poisson(0.5), sim.Exponential(1.0), customers=2_000, replications=3
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.arrived = 0  # type: ignore[misc]
    d = r.as_dict()
    assert d["arrived"] == 6_000 and d["replications"] == 3
    assert set(d["intervals"]) >= {"mean_response", "p_wait", "throughput"}
    assert "SimResult(" in repr(r) and "mean_response=" in repr(r)
    assert isinstance(r.response, qcore.QuantileSketch) and r.response.count == 6_000
    assert isinstance(r.per_replication, pl.DataFrame) and r.per_replication.height == 3
    lo, q, hi = r.wait_quantile(0.9)
    assert lo <= q <= hi
    assert r.records is None


def test_docstring_examples() -> None:
    from qcore import capacity

    for mod in (sim, capacity):
        res = doctest.testmod(
            mod, extraglobs={"qcore": qcore, "sim": sim}, optionflags=doctest.ELLIPSIS
        )
        assert res.failed == 0 and res.attempted > 0


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: sim.Exponential(mean=-1.0), "mean"),
        (lambda: sim.Exponential(mean=float("nan")), "mean"),
        (lambda: sim.Gamma(mean=1.0, cv=-1.0), "cv"),
        (lambda: sim.Deterministic(-2.0), "value"),
        (lambda: sim.Empirical([]), "samples"),
        (lambda: sim.Empirical([1.0, float("nan")]), "samples"),
        (lambda: sim.Durations([1.0, -1.0]), "Durations"),
        (lambda: sim.Poisson(rate=0.0), "rate"),
        (lambda: sim.MMPP2(rates=(1.0, -1.0), switch_rates=(1.0, 1.0)), "rates"),
        (lambda: sim.MMPP2(rates=(1.0, 1.0, 1.0), switch_rates=(1.0, 1.0)), "rates"),
        (lambda: sim.PiecewiseRate(times=[1.0, 2.0], rates=[1.0, 1.0]), "times"),
        (lambda: sim.PiecewiseRate(times=[0.0, 2.0], rates=[1.0]), "rates"),
        (lambda: sim.Trace([3.0, 2.0]), "timestamps"),
        (lambda: sim.Trace([0.0, float("inf")]), "timestamps"),
        (lambda: sim.Renewal.from_rate(1.0, 1.0, family="weibull"), "family"),
    ],
)
def test_bad_specs_raise(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


P, E = sim.Poisson(1.0), sim.Exponential(0.5)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"servers": 0}, ValueError, "servers"),
        ({"servers": -1}, ValueError, "servers"),
        ({"servers": 1.5}, TypeError, "servers"),
        ({"customers": 0}, ValueError, "customers"),
        ({"warmup": -1}, ValueError, "warmup"),
        ({"seed": -1}, ValueError, "seed"),
        ({"discipline": "random"}, ValueError, "discipline"),
        ({"method": "magic"}, ValueError, "method"),
        ({"method": "fast", "patience": 1.0}, ValueError, "method"),
        ({"method": "fast", "discipline": "lifo"}, ValueError, "method"),
        ({"patience": -1.0}, ValueError, "patience"),
        ({"patience": "soon"}, TypeError, "patience"),
        ({"max_batch_size": 4}, ValueError, "batch_service"),
        ({"max_batch_size": 4, "batch_service": (0.1, 0.1)}, ValueError, "service"),
        ({"replications": 0}, ValueError, "replications"),
        ({"confidence": 1.5}, ValueError, "confidence"),
        ({"relative_accuracy": 0.0}, ValueError, "relative_accuracy"),
        ({"server_schedule": [(5.0, 2), (1.0, 3)]}, ValueError, "server_schedule"),
        ({"server_schedule": [(1.0, -2)]}, ValueError, "server_schedule"),
        ({"server_schedule": [(1.0,)]}, ValueError, "server_schedule"),
    ],
)
def test_bad_simulate_arguments(kwargs, exc, match) -> None:
    with pytest.raises(exc, match=match):
        qcore.simulate(P, E, **{"customers": 100, **kwargs})


def test_bad_types_and_lengths() -> None:
    with pytest.raises(TypeError, match="arrivals"):
        qcore.simulate(1.0, E)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="service"):
        qcore.simulate(P, "exp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="service"):
        qcore.simulate(P, customers=10)
    with pytest.raises(ValueError, match="service"):
        qcore.simulate(P, sim.Durations([1.0, 2.0]), customers=10)
    with pytest.raises(ValueError, match="warmup"):
        qcore.simulate(sim.Trace([0.0, 1.0]), E, warmup=5)
    with pytest.raises(ValueError, match="batch_service"):
        qcore.simulate(P, customers=10, max_batch_size=4, batch_service=[0.1, 0.2])
    with pytest.raises(ValueError, match="max_batch_wait"):
        qcore.simulate(
            P,
            customers=10,
            max_batch_size=2,
            max_batch_wait=-1.0,
            batch_service=(0.1, 0.1),
        )
    with pytest.raises(ValueError, match="null"):
        sim.Trace(pl.Series([0.0, None, 2.0]))
    # Every error is a ValueError subclass from qcore.exceptions or a plain one.
    with pytest.raises(qcore.exceptions.QcoreValueError):
        sim.Exponential(mean=0.0)


@pytest.mark.parametrize("c", [1, 5])
def test_fast_path_equals_event_loop_without_records(c: int) -> None:
    # The fused single-server blocks run only without records: compare the aggregates.
    kw = {"servers": c, "customers": 50_000, "warmup": 1_500, "seed": 4}
    f = qcore.simulate(sim.Poisson(0.85 * c), sim.Exponential(1.0), method="fast", **kw)
    e = qcore.simulate(
        sim.Poisson(0.85 * c), sim.Exponential(1.0), method="event", **kw
    )
    for k in (
        "mean_response",
        "mean_wait",
        "p_wait",
        "utilization",
        "mean_in_system",
        "mean_in_queue",
        "throughput",
        "duration",
    ):
        assert getattr(f, k) == pytest.approx(getattr(e, k), rel=1e-9), k
    assert f.response.count == e.response.count == 50_000
    for q in (0.5, 0.99, 0.999):
        assert f.response.quantile(q) == pytest.approx(e.response.quantile(q), rel=0.03)


def test_renewal_needs_positive_mean() -> None:
    with pytest.raises(ValueError, match="interarrival"):
        sim.Renewal(sim.Deterministic(0.0))


def test_event_loop_records_share_the_trace_clock() -> None:
    # Regression: with trace arrivals that do not start at 0, the general event loop
    # (forced here by `patience`) must report start/end on the same clock as `arrival`,
    # exactly as the fast path does.
    import numpy as np

    from qcore import sim as _sim

    ts = np.array([100.0, 101.0, 102.5, 103.0])
    durations = np.array([2.0, 2.0, 2.0, 2.0])
    fast = qcore.simulate(_sim.Trace(ts), _sim.Durations(durations), servers=1, records=True)
    event = qcore.simulate(
        _sim.Trace(ts), _sim.Durations(durations), servers=1, records=True, patience=1e9
    )
    for col in ("arrival", "start", "end", "wait", "response"):
        np.testing.assert_allclose(
            event.records[col].to_numpy(), fast.records[col].to_numpy(), rtol=0, atol=1e-9
        )
    timed = qcore.simulate(
        _sim.Trace(ts), _sim.Durations(durations), servers=1, records=True, patience=2.5
    ).records
    last = timed.row(3, named=True)
    assert last["status"] == "timed_out"
    assert last["end"] == pytest.approx(105.5)
    assert last["response"] == pytest.approx(2.5)
    assert (timed["wait"].drop_nans().to_numpy() >= 0).all()
