"""Overload control: congestion collapse without control and flat goodput with it,
policy mechanics (CoDel, token bucket, priorities, client throttling, adaptive limits),
metrics against their definitions, and argument errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from qcore import overload, sim

SVC = sim.Exponential(mean=0.1)  # 4 servers: capacity 40 req/s
SERVERS = 4


@pytest.fixture(scope="module")
def sweep() -> pl.DataFrame:
    pols = {
        "none": overload.NoControl(),
        "drop_tail": overload.DropTail(queue_limit=8),
        "deadline": overload.Deadline(max_wait=0.2),
        "codel": overload.CoDel(target=0.02, interval=0.2),
        "adaptive_lifo": overload.AdaptiveLIFO(target=0.02, interval=0.2),
        "client_throttle": overload.ClientThrottle(queue_limit=8),
        "gradient2": overload.Gradient2(initial_limit=8, min_limit=6, max_limit=100),
    }
    return overload.sweep(SVC, SERVERS, pols, slo=0.5, timeout=2.0,
                          loads=[0.5, 1.0, 1.5, 2.0, 3.0], customers=30_000)


def _g(t: pl.DataFrame, policy: str, load: float, col: str = "goodput_ratio") -> float:
    return float(t.filter((pl.col("policy") == policy) & (pl.col("load") == load))[col][0])


def test_sweep_shape_one_row_per_policy_and_load(sweep: pl.DataFrame) -> None:
    assert sweep.height == 7 * 5
    assert sweep.select(pl.struct("policy", "load").n_unique()).item() == 35
    assert "class" not in sweep.columns


def test_congestion_collapse_without_control(sweep: pl.DataFrame) -> None:
    # Below capacity everyone gets served within the SLO.
    assert _g(sweep, "none", 0.5) == pytest.approx(0.5, abs=0.02)
    # Past capacity the FIFO queue fills with requests that wait until their timeout:
    # the servers stay busy but nothing finishes within the SLO.
    for load in (1.5, 2.0, 3.0):
        assert _g(sweep, "none", load) < 0.02
        assert _g(sweep, "none", load, "throughput") > 0.9 * 40.0
        assert _g(sweep, "none", load, "wasted_fraction") > 0.8


@pytest.mark.parametrize("policy", ["drop_tail", "deadline", "codel", "adaptive_lifo",
                                    "client_throttle"])
def test_flat_goodput_with_control(sweep: pl.DataFrame, policy: str) -> None:
    assert _g(sweep, policy, 0.5) == pytest.approx(0.5, abs=0.03)
    for load in (1.5, 2.0, 3.0):
        assert _g(sweep, policy, load) > 0.8, (policy, load)
        assert _g(sweep, policy, load, "p99_admitted") < 1.0
        assert _g(sweep, policy, load, "wasted_fraction") < 0.01
    # Shedding grows with the overload: about 1 − 1/load of the traffic.
    assert _g(sweep, policy, 3.0, "shed_rate") + _g(sweep, policy, 3.0, "timeout_rate") > 0.6


def test_gradient2_avoids_collapse(sweep: pl.DataFrame) -> None:
    # The gradient limiter reacts to RTT inflation per sample: it keeps most of the
    # goodput, less evenly than the queue-delay rules.
    for load in (1.5, 2.0, 3.0):
        assert _g(sweep, "gradient2", load) > 0.6
        assert _g(sweep, "gradient2", load) > 20 * _g(sweep, "none", load)


def test_adaptive_lifo_beats_fifo_under_overload(sweep: pl.DataFrame) -> None:
    # Same traffic (common random numbers): newest-first service under a standing
    # queue keeps goodput near capacity where plain FIFO collapses, and at least as
    # high as CoDel serving FIFO.
    for load in (2.0, 3.0):
        assert _g(sweep, "adaptive_lifo", load) > 0.9
        assert _g(sweep, "adaptive_lifo", load) > 20 * _g(sweep, "none", load)
        assert _g(sweep, "adaptive_lifo", load) >= _g(sweep, "codel", load)


def test_adaptive_lifo_serves_newest_first_under_overload() -> None:
    # 3× overload: served newest first, admitted requests have barely waited, so CoDel
    # (which drops requests that waited > 2·target) almost never fires; the stale ones
    # are left to the client's timeout. Served oldest first, CoDel must shed them.
    kw: dict[str, Any] = {"slo": 0.5, "timeout": 2.0, "customers": 20_000}
    arr = sim.Poisson(rate=120.0)
    lifo = overload.run(arr, SVC, SERVERS, overload.AdaptiveLIFO(target=0.02, interval=0.2), **kw)
    fifo = overload.run(arr, SVC, SERVERS, overload.CoDel(target=0.02, interval=0.2), **kw)
    assert lifo["all"]["shed_rate"] < 0.02
    assert fifo["all"]["shed_rate"] > 0.6
    assert lifo["all"]["timeout_rate"] > 0.6
    assert lifo["all"]["p99_admitted"] < fifo["all"]["p99_admitted"]


def test_adaptive_lifo_is_codel_fifo_when_no_queue_persists() -> None:
    # At half load the queue never stays non-empty for 5 s: every dequeue is FIFO and
    # the run is identical to CoDel's.
    kw: dict[str, Any] = {"slo": 0.5, "timeout": 2.0, "customers": 20_000}
    arr = sim.Poisson(rate=20.0)
    lifo = overload.run(arr, SVC, SERVERS, overload.AdaptiveLIFO(target=0.005, interval=5.0), **kw)
    fifo = overload.run(arr, SVC, SERVERS, overload.CoDel(target=0.005, interval=5.0), **kw)
    assert fifo["all"]["shed"] > 0  # CoDel acts, so the order of service matters
    assert lifo == fifo


def test_queue_timeouts_are_losses_for_aimd() -> None:
    # Request 0 holds the only server for 10 s; requests 1 and 2 time out after 1 s.
    # Each timeout is a drop: 10 → 9 → 8 (max(1, min(L − 1, floor(0.9·L)))); the one
    # completion (inflight 1 < 8/2) changes nothing.
    ts = np.array([0.0, 0.1, 0.2])
    pol = overload.AIMD(initial_limit=10, timeout=1000.0)
    r = overload.run(ts, 10.0, 1, pol, slo=100.0, timeout=1.0)
    assert r["all"]["timed_out"] == 2
    assert r["final_limit"] == 8.0
    r = overload.run(ts, 10.0, 1, pol, slo=100.0)
    assert r["all"]["timed_out"] == 0
    assert r["final_limit"] == 10.0


def test_sweep_goodput_matches_counts(sweep: pl.DataFrame) -> None:
    # goodput = good / offered duration; at load 0.5 the offered duration is about
    # customers / rate.
    row = sweep.filter((pl.col("policy") == "none") & (pl.col("load") == 0.5))
    dur = row["good"][0] / row["goodput"][0]
    assert dur == pytest.approx(30_000 / 20.0, rel=0.03)


def test_metrics_match_an_independent_simulation() -> None:
    # NoControl with a timeout is the simulator's patience: same counts as qcore.simulate.
    arr = sim.Poisson(rate=50.0)
    r = overload.run(arr, SVC, SERVERS, overload.NoControl(), slo=0.5, timeout=1.0,
                     customers=10_000)["all"]
    s = sim.simulate(arrivals=arr, service=SVC, servers=SERVERS, customers=10_000,
                     patience=sim.Deterministic(1.0), seed=1, records=True)
    rec = s.records
    done = rec.filter(pl.col("status") == "completed")
    resp = (done["end"] - done["arrival"]).to_numpy()
    assert r["completed"] == done.height
    assert r["timed_out"] == rec.filter(pl.col("status") == "timed_out").height
    assert r["good"] == int(np.sum(resp <= 0.5))
    assert r["p99_admitted"] == pytest.approx(np.quantile(resp, 0.99, method="inverted_cdf"))
    svc = (done["end"] - done["start"]).to_numpy()
    wasted = svc[resp > 1.0].sum()
    assert r["wasted_work"] == pytest.approx(wasted)
    assert r["wasted_fraction"] == pytest.approx(wasted / svc.sum())


def test_codel_sheds_only_with_a_standing_queue() -> None:
    # Requests every 0.1 s, 0.09 s of work each: nobody ever waits, nothing is shed.
    ts = 0.1 * np.arange(1, 5001)
    r = overload.run(ts, 0.09, 1, overload.CoDel(target=0.005, interval=0.1), slo=1.0)
    assert r["all"]["shed"] == 0
    # 0.11 s of work: the queue grows by 0.01 s per request and never empties; after
    # the first interval (0.5 s here, several dequeues each) with a minimum sojourn
    # above 5 ms, requests that waited more than 10 ms are shed, which keeps the
    # standing queue near the slough timeout. (The first dequeue of each interval only
    # resets the minimum, as in folly.)
    r = overload.run(ts, 0.11, 1, overload.CoDel(target=0.005, interval=0.5), slo=1.0)["all"]
    assert r["shed"] > 0
    assert r["p99_admitted"] < 0.11 + 0.2
    # Without CoDel the same traffic builds a queue of minutes.
    n = overload.run(ts, 0.11, 1, overload.NoControl(), slo=1.0)["all"]
    assert n["p99_admitted"] > 40.0


def test_deadline_sheds_exactly_the_late_requests() -> None:
    r = overload.run(sim.Poisson(rate=80.0), SVC, SERVERS, overload.Deadline(max_wait=0.3),
                     slo=10.0, customers=20_000)["all"]
    # No admitted request waited more than 0.3 s: responses ≤ 0.3 + service.
    assert r["shed"] > 0
    assert r["completed"] + r["shed"] == r["arrived"]


def test_token_bucket_admits_at_most_rate_times_duration_plus_burst() -> None:
    r = overload.run(sim.Poisson(rate=100.0), SVC, SERVERS, overload.TokenBucket(rate=30.0, burst=5.0),
                     slo=10.0, customers=20_000)["all"]
    admitted = r["arrived"] - r["shed"]
    assert admitted <= 30.0 * r["duration"] + 5 + 1
    assert admitted >= 0.97 * 30.0 * r["duration"]


def test_priority_sheds_the_low_class_first() -> None:
    t = overload.sweep(SVC, SERVERS, {"prio": overload.Priority(high_limit=20, low_limit=4)},
                       slo=1.0, timeout=2.0, loads=[0.6, 2.0], customers=30_000, low_fraction=0.5)
    assert set(t["class"]) == {"all", "high", "low"}
    hi = t.filter((pl.col("class") == "high") & (pl.col("load") == 2.0))
    lo = t.filter((pl.col("class") == "low") & (pl.col("load") == 2.0))
    # High priority alone is load 1.0: it keeps most of its goodput; low absorbs the shedding.
    assert hi["shed_rate"][0] < 0.15
    assert lo["shed_rate"][0] > 0.5
    assert hi["goodput"][0] > 2 * lo["goodput"][0]
    # Low load: nobody is shed.
    lo06 = t.filter((pl.col("class") == "low") & (pl.col("load") == 0.6))
    assert lo06["shed_rate"][0] < 0.05


def test_priority_requires_classes() -> None:
    with pytest.raises(ValueError, match="classes"):
        overload.run(sim.Poisson(rate=1.0), SVC, 1, overload.Priority(4, 2), slo=1.0, customers=10)
    with pytest.raises(ValueError, match="low_limit"):
        overload.run(sim.Poisson(rate=1.0), SVC, 1, overload.Priority(2, 4), slo=1.0, customers=10,
                     classes=np.zeros(10, dtype=np.int64))
    with pytest.raises(ValueError, match="classes"):
        overload.run(sim.Poisson(rate=1.0), SVC, 1, overload.Priority(4, 2), slo=1.0, customers=10,
                     classes=np.full(10, 2))


def test_client_throttle_engages_only_under_overload() -> None:
    p = overload.ClientThrottle(queue_limit=8)
    low = overload.run(sim.Poisson(rate=10.0), SVC, SERVERS, p, slo=1.0, customers=10_000)
    high = overload.run(sim.Poisson(rate=120.0), SVC, SERVERS, p, slo=1.0, customers=30_000)
    assert low["client_throttled"] == 0
    # With K = 2 the client sends about 2 × accepts: of 120 req/s offered, about 40 are
    # accepted, so the client itself rejects roughly 1 − 2·40/120 = 1/3 of the attempts.
    frac = high["client_throttled"] / high["all"]["arrived"]
    assert 0.2 < frac < 0.45, frac


def test_adaptive_limits_report_their_final_value() -> None:
    g = overload.run(sim.Poisson(rate=120.0), SVC, SERVERS,
                     overload.Gradient2(initial_limit=50, min_limit=4, max_limit=200), slo=1.0,
                     customers=20_000)
    # Under overload the RTT gradient shrinks the limit towards queue_size / (1 − g).
    assert g["final_limit"] < 50
    a = overload.run(sim.Poisson(rate=10.0), SVC, SERVERS, overload.AIMD(initial_limit=10), slo=1.0,
                     customers=5_000)
    assert a["final_limit"] >= 10
    # AIMD with a 0.5 s response timeout backs off under 3× overload and avoids the
    # collapse of the uncontrolled queue.
    kw: dict[str, Any] = {"slo": 0.5, "timeout": 2.0, "customers": 30_000}
    aimd = overload.run(sim.Poisson(rate=120.0), SVC, SERVERS, overload.AIMD(timeout=0.5), **kw)
    none = overload.run(sim.Poisson(rate=120.0), SVC, SERVERS, overload.NoControl(), **kw)
    assert aimd["all"]["goodput"] > 0.3 * 40.0 > 10 * none["all"]["goodput"]
    n = overload.run(sim.Poisson(rate=10.0), SVC, SERVERS, overload.NoControl(), slo=1.0, customers=100)
    assert n["final_limit"] is None


def test_compare_uses_common_random_numbers() -> None:
    arr = sim.Poisson(rate=60.0)
    t = overload.compare(arr, SVC, SERVERS,
                         {"none": overload.NoControl(), "huge_queue": overload.DropTail(10**6),
                          "deadline": overload.Deadline(0.2)},
                         slo=0.5, timeout=2.0, customers=10_000)
    a = t.filter(pl.col("policy") == "none").drop("policy")
    b = t.filter(pl.col("policy") == "huge_queue").drop("policy")
    assert a.equals(b)
    assert t["arrived"].n_unique() == 1


def test_trace_arrivals_and_per_request_service() -> None:
    ts = np.cumsum(np.full(1000, 0.05))
    r = overload.run(ts, np.full(1000, 0.1), 1, overload.DropTail(queue_limit=3), slo=1.0)
    # 20 req/s into one server of 10 req/s: about half is rejected.
    assert r["all"]["arrived"] == 1000
    assert 0.45 < r["all"]["shed_rate"] < 0.55


def test_bad_arguments_name_the_argument() -> None:
    arr = sim.Poisson(rate=1.0)
    with pytest.raises(TypeError, match="policy"):
        overload.run(arr, SVC, 1, "codel", slo=1.0, customers=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slo"):
        overload.run(arr, SVC, 1, overload.NoControl(), slo=-1.0, customers=10)
    with pytest.raises(ValueError, match="timeout"):
        overload.run(arr, SVC, 1, overload.NoControl(), slo=1.0, timeout=0.0, customers=10)
    with pytest.raises(ValueError, match="servers"):
        overload.run(arr, SVC, 0, overload.NoControl(), slo=1.0, customers=10)
    with pytest.raises(ValueError, match="codel_target"):
        overload.run(arr, SVC, 1, overload.CoDel(target=0.5, interval=0.1), slo=1.0, customers=10)
    with pytest.raises(ValueError, match="backoff"):
        overload.run(arr, SVC, 1, overload.AIMD(backoff=0.2), slo=1.0, customers=10)
    with pytest.raises(ValueError, match="smoothing"):
        overload.run(arr, SVC, 1, overload.Gradient2(smoothing=0.0), slo=1.0, customers=10)
    with pytest.raises(ValueError, match="rate"):
        overload.run(arr, SVC, 1, overload.TokenBucket(rate=-1.0), slo=1.0, customers=10)
    with pytest.raises(ValueError, match="max_wait"):
        overload.run(arr, SVC, 1, overload.Deadline(max_wait=math.nan), slo=1.0, customers=10)
    with pytest.raises(ValueError, match="queue_limit"):
        overload.DropTail(queue_limit=-1)._spec()
    with pytest.raises(ValueError, match="loads"):
        overload.sweep(SVC, 1, {"n": overload.NoControl()}, slo=1.0, loads=[0.0])
    with pytest.raises(TypeError, match="policies"):
        overload.compare(arr, SVC, 1, {}, slo=1.0, customers=10)


def test_goodput_plot_is_written(tmp_path, sweep: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    from qcore import plots

    p = plots.goodput_vs_load(sweep, tmp_path / "goodput.png")
    from pathlib import Path

    data = Path(p).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    with pytest.raises(ValueError, match="png"):
        plots.goodput_vs_load(sweep, tmp_path / "goodput.jpg")
