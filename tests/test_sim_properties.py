"""Property tests of the simulator: conservation, consistency, fast path == event loop."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore
from qcore import sim

pytestmark = pytest.mark.hypothesis

dists = st.one_of(
    st.floats(0.05, 3.0).map(lambda m: sim.Exponential(mean=m)),
    st.floats(0.0, 3.0).map(sim.Deterministic),
    st.tuples(st.floats(0.05, 3.0), st.floats(0.0, 3.0)).map(
        lambda t: sim.Gamma(mean=t[0], cv=t[1])
    ),
    st.tuples(st.floats(0.05, 3.0), st.floats(0.0, 2.0)).map(
        lambda t: sim.LogNormal(mean=t[0], cv=t[1])
    ),
    st.lists(st.floats(0.0, 5.0), min_size=1, max_size=8).map(sim.Empirical),
)
arrivals = st.one_of(
    st.floats(0.1, 20.0).map(sim.Poisson),
    st.tuples(
        st.floats(0.0, 10.0),
        st.floats(0.1, 10.0),
        st.floats(0.01, 2.0),
        st.floats(0.01, 2.0),
    ).map(lambda t: sim.MMPP2(rates=(t[0], t[1]), switch_rates=(t[2], t[3]))),
    dists.filter(lambda d: d.mean_value > 0).map(sim.Renewal),
)


@settings(max_examples=60, deadline=None)
@given(
    arr=arrivals,
    svc=dists,
    servers=st.integers(1, 6),
    customers=st.integers(1, 1500),
    warmup=st.integers(0, 300),
    room=st.one_of(st.none(), st.integers(0, 10)),
    patience=st.one_of(st.none(), st.floats(0.0, 5.0)),
    lifo=st.booleans(),
    seed=st.integers(0, 2**64 - 1),
)
def test_conservation_and_record_consistency(
    arr, svc, servers, customers, warmup, room, patience, lifo, seed
) -> None:
    r = qcore.simulate(
        arr,
        svc,
        servers=servers,
        customers=customers,
        warmup=warmup,
        seed=seed,
        queue_capacity=room,
        patience=patience,
        discipline="lifo" if lifo else "fcfs",
        records=True,
    )
    assert r.arrived == customers
    assert r.arrived == r.completed + r.blocked + r.timed_out + r.shed + r.unfinished
    assert r.unfinished == 0
    assert r.response.count == r.completed
    if r.duration > 0:
        assert -1e-9 <= r.utilization <= 1 + 1e-9
        assert r.mean_in_queue <= r.mean_in_system + 1e-9
    rec = r.records
    assert rec.height == customers
    done = rec.filter(pl.col("status") == "completed")
    assert (done["start"] >= done["arrival"] - 1e-9).all()
    assert (done["end"] >= done["start"] - 1e-9).all()
    if patience is not None:
        assert (done["wait"] <= patience + 1e-9).all()
    if room is None and patience is None:
        assert r.blocked == 0 and r.timed_out == 0
    # In-service concurrency never exceeds the servers (sweep over starts/ends).
    if done.height:
        # (Back-to-back services may differ by rounding at the hand-over instant.)
        t = np.concatenate([done["start"].to_numpy() + 1e-9, done["end"].to_numpy()])
        d = np.concatenate([np.ones(done.height), -np.ones(done.height)])
        order = np.lexsort((d, t))  # ends before starts at equal times
        assert np.max(np.cumsum(d[order])) <= servers


@settings(max_examples=40, deadline=None)
@given(
    arr=arrivals,
    svc=dists,
    servers=st.integers(1, 20),
    customers=st.integers(1, 3000),
    warmup=st.integers(0, 2500),
    seed=st.integers(0, 2**64 - 1),
)
def test_fast_path_equals_event_loop(
    arr, svc, servers, customers, warmup, seed
) -> None:
    kw = {
        "servers": servers,
        "customers": customers,
        "warmup": warmup,
        "seed": seed,
        "records": True,
    }
    f = qcore.simulate(arr, svc, method="fast", **kw)
    e = qcore.simulate(arr, svc, method="event", **kw)
    assert f.completed == e.completed == customers
    for k in (
        "mean_response",
        "mean_wait",
        "mean_in_system",
        "mean_in_queue",
        "utilization",
        "duration",
    ):
        a, b = getattr(f, k), getattr(e, k)
        assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a)), k
    for col in ("start", "end"):
        np.testing.assert_allclose(
            f.records[col].to_numpy(), e.records[col].to_numpy(), rtol=1e-12, atol=1e-9
        )


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(1, 8),
    wait=st.floats(0.0, 0.5),
    fixed=st.floats(0.0, 0.2),
    per=st.floats(0.0, 0.05),
    rate=st.floats(1.0, 200.0),
    servers=st.integers(1, 4),
    seed=st.integers(0, 2**32),
)
def test_batching_invariants(size, wait, fixed, per, rate, servers, seed) -> None:
    r = qcore.simulate(
        sim.Poisson(rate),
        servers=servers,
        customers=800,
        seed=seed,
        records=True,
        max_batch_size=size,
        max_batch_wait=wait,
        batch_service=(fixed, per),
    )
    rec = r.records
    assert r.completed == 800
    batches = rec.group_by(["start", "end"]).len()
    assert batches["len"].max() <= size
    # Batch duration = fixed + per_item * n.
    j = rec.join(batches, on=["start", "end"])
    np.testing.assert_allclose(
        (j["end"] - j["start"]).to_numpy(),
        fixed + per * j["len"].to_numpy(),
        rtol=1e-9,
        atol=1e-12,
    )


def test_an_arrival_window_below_the_clock_resolution_runs_on_the_event_loop():
    """Found by the property above: two arrivals 1e-200 s apart, each about a second in
    the system. The fast path's window sums (the whole run's minus what follows the last
    arrival) cancel to zero there; the replication runs on the event loop instead."""
    kw = {"servers": 1, "customers": 2, "warmup": 0, "seed": 0}
    arr = sim.Renewal(sim.Deterministic(2.2250738585e-313))
    f = qcore.simulate(arr, sim.Exponential(mean=1.0), method="fast", **kw)
    e = qcore.simulate(arr, sim.Exponential(mean=1.0), method="event", **kw)
    assert not f.fast_path and f.mean_in_system == e.mean_in_system == 1.0
