"""Little's law: exact sums against numpy, M/M/1 logs from a Lindley recursion checked
against an in-flight gauge sampled from the true system (complete logs pass; dropped rows,
running requests and skewed clocks are flagged), and the real Alibaba GenTD26 trace."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

import qcore


# ----------------------------------------------------------------------------- references
def mm1_log(n, lam=0.8, mu=1.0, seed=0):
    """Arrival and departure times of an M/M/1 FIFO queue (Lindley recursion)."""
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.exponential(1 / lam, n))
    s = rng.exponential(1 / mu, n)
    w = np.empty(n)
    w[0] = 0.0
    for i in range(1, n):
        w[i] = max(0.0, w[i - 1] + s[i - 1] - (a[i] - a[i - 1]))
    return a, a + w + s


def ref_in_flight(start, end, at):
    """Independent reference: count start ≤ t < end with broadcasting in chunks."""
    start = np.asarray(start)
    end = np.where(np.isnan(end), np.inf, end)
    end = np.maximum(end, start)
    out = np.empty(len(at), dtype=np.int64)
    for i in range(0, len(at), 256):
        t = np.asarray(at[i : i + 256])[:, None]
        out[i : i + 256] = ((start <= t) & (t < end)).sum(axis=1)
    return out


def ref_L(start, end, t0, t1):
    return np.clip(np.minimum(end, t1) - np.maximum(start, t0), 0, None).sum() / (
        t1 - t0
    )


@pytest.fixture(scope="module")
def mm1():
    a, d = mm1_log(100_000, seed=42)
    # gauge: the true system's in-flight count, sampled every 5 s (like a metrics scrape)
    times = np.arange(a[0] + 2.5, d.max(), 5.0)
    counts = np.searchsorted(a, times, side="right") - np.searchsorted(
        np.sort(d), times, side="right"
    )
    return a, d, times, counts.astype(np.float64)


# ----------------------------------------------------------------------------- exact pieces
def test_in_flight_matches_reference():
    rng = np.random.default_rng(1)
    s = rng.uniform(0, 100, 3000)
    e = s + rng.exponential(5, 3000)
    e[::50] = np.nan  # still running
    e[7::97] = s[7::97] - 1.0  # skewed rows count nowhere
    at = np.concatenate([rng.uniform(-5, 120, 2000), s[:100], e[1:100:3]])
    at = at[np.isfinite(at)]
    np.testing.assert_array_equal(qcore.in_flight(s, e, at), ref_in_flight(s, e, at))
    # peak concurrency by brute force at every start (the in-flight count only rises there)
    ref = ref_in_flight(s, e, s)
    peak = qcore.peak_in_flight(s, e)
    assert peak.peak == ref.max()
    assert peak.time == s[ref == ref.max()].min()
    assert qcore.peak_in_flight([], []) == (0, None)
    assert qcore.peak_in_flight([0.0, 1.0], [1.0, 2.0]) == (
        1,
        0.0,
    )  # touching: no overlap


def test_in_flight_polars_null_end_is_running():
    s = pl.Series([0.0, 1.0, 2.0])
    e = pl.Series([1.5, None, 2.5])
    assert qcore.in_flight(s, e, [1.2, 10.0]).tolist() == [2, 1]
    r = qcore.littles_law(s, e)
    assert r.running == 1 and "running_requests" in r.flags and not r.holds


def test_window_sums_and_edge_term():
    a, d = mm1_log(20_000, seed=3)
    for t0, t1 in [(1000.0, 5000.0), (a[100], a[200]), (0.0, d.max() + 10)]:
        r = qcore.littles_law(a, d, t0=t0, t1=t1)
        assert r.L == pytest.approx(ref_L(a, d, t0, t1), rel=1e-12)
        inside = (a >= t0) & (a < t1)
        assert r.arrivals == inside.sum()
        assert r.arrival_rate == pytest.approx(inside.sum() / (t1 - t0), rel=1e-14)
        assert r.mean_response == pytest.approx((d - a)[inside].mean(), rel=1e-12)
        assert r.edge_term == pytest.approx(r.lambda_w - r.L, abs=1e-9 * r.L)
        assert abs(r.edge_term) <= r.edge_bound + 1e-12
        assert r.gap == pytest.approx(abs(r.L - r.lambda_w) / r.L, rel=1e-9, abs=1e-14)
        assert r.in_flight_t0 == ((a < t0) & (d > t0)).sum()
        assert r.in_flight_t1 == (inside & (d > t1)).sum()
    # over the whole log the gap is zero by construction
    r = qcore.littles_law(a, d)
    assert r.gap < 1e-12 and r.edge_term == 0.0 and r.holds
    # a short window: the edge effect is visible and flagged
    r = qcore.littles_law(a, d, t0=a[10], t1=a[30])
    assert r.gap > 0.02 and "edge_effect" in r.flags and not r.holds


def test_mm1_complete_logs_hold(mm1):
    a, d, times, counts = mm1
    r = qcore.littles_law(a, d, in_flight_times=times, in_flight_counts=counts)
    assert r.holds, r.flags
    assert r.flags == ()
    g = r.gauge
    assert g.discrepancy == 0.0 and g.mismatch == 0.0 and g.exact_agreement == 1.0
    assert g.within_tolerance
    assert g.samples == times.size
    # analytic: L = ρ/(1−ρ) = 4 for ρ = 0.8 (autocorrelated: generous CI-safe band)
    assert r.L == pytest.approx(4.0, rel=0.15)
    assert r.arrival_rate == pytest.approx(0.8, rel=0.02)
    assert r.mean_response == pytest.approx(5.0, rel=0.15)
    assert g.gauge_mean == pytest.approx(r.L, rel=0.05)  # time average of the gauge ≈ L
    d_ = r.as_dict()
    assert d_["gauge"]["within_tolerance"] is True and d_["L"] == r.L


def test_mm1_dropped_rows_flagged(mm1):
    a, d, times, counts = mm1
    keep = np.random.default_rng(7).random(a.size) >= 0.05
    r = qcore.littles_law(
        a[keep], d[keep], in_flight_times=times, in_flight_counts=counts
    )
    assert not r.holds
    assert "gauge_discrepancy" in r.flags
    lo, hi = r.gauge.discrepancy_ci
    assert -0.07 < r.gauge.discrepancy < -0.03
    assert lo < -0.05 < hi  # the interval covers the true 5 % loss
    assert hi < -0.02
    # without the gauge the logs alone cannot see it (Little's identity holds on any subset)
    assert qcore.littles_law(a[keep], d[keep]).holds


def test_mm1_running_requests_flagged(mm1):
    a, d, times, counts = mm1
    d2 = d.copy()
    d2[-10:] = np.nan
    r = qcore.littles_law(a, d2, in_flight_times=times, in_flight_counts=counts)
    assert r.running == 10
    assert "running_requests" in r.flags and not r.holds


def test_mm1_clock_skew_flagged(mm1):
    a, d, times, counts = mm1
    rng = np.random.default_rng(11)
    # (1) one host's end clock runs 3 s behind: some rows end before they start
    host = rng.random(a.size) < 0.2
    d1 = np.where(host, d - 3.0, d)
    r = qcore.littles_law(a, d1, in_flight_times=times, in_flight_counts=counts)
    assert r.negative_durations == int((d1 < a).sum()) > 0
    assert "negative_durations" in r.flags and not r.holds
    # (2) the end clock is 0.3 s ahead of the start clock everywhere: durations inflated,
    # nothing negative; the paired comparison sees the excess in flight
    r = qcore.littles_law(a, d + 0.3, in_flight_times=times, in_flight_counts=counts)
    assert r.negative_durations == 0
    assert "gauge_discrepancy" in r.flags and r.gauge.discrepancy > 0.02
    # (3) the whole log's clock is 2 s off the gauge's: the mean barely moves, but the
    # paired counts disagree sample by sample
    r = qcore.littles_law(
        a + 2.0, d + 2.0, in_flight_times=times, in_flight_counts=counts
    )
    assert "gauge_mismatch" in r.flags and not r.holds
    assert r.gauge.mismatch > 0.1


def test_gauge_paired_inside_the_window_only(mm1):
    a, d, times, counts = mm1
    t0, t1 = a[20_000], a[60_000]
    r = qcore.littles_law(
        a, d, t0=t0, t1=t1, in_flight_times=times, in_flight_counts=counts
    )
    inside = (times >= t0) & (times <= t1)
    assert r.gauge.samples == inside.sum()
    assert r.gauge.gauge_mean == pytest.approx(counts[inside].mean(), rel=1e-12)
    assert r.gauge.within_tolerance


def test_tolerance_is_configurable(mm1):
    a, d, times, counts = mm1
    keep = np.random.default_rng(7).random(a.size) >= 0.05
    r = qcore.littles_law(
        a[keep], d[keep], in_flight_times=times, in_flight_counts=counts, tolerance=0.5
    )
    assert r.holds and r.tolerance == 0.5


def test_littles_law_errors():
    with pytest.raises(ValueError, match="end has length 1 but start has length 2"):
        qcore.littles_law([0.0, 1.0], [2.0])
    with pytest.raises(ValueError, match="start contains NaN at index 0"):
        qcore.littles_law([np.nan], [1.0])
    with pytest.raises(ValueError, match="end contains inf at index 0"):
        qcore.littles_law([0.0], [np.inf])
    with pytest.raises(ValueError, match="t1"):
        qcore.littles_law([0.0], [1.0], t0=2.0, t1=1.0)
    with pytest.raises(ValueError, match="in_flight_counts is required"):
        qcore.littles_law([0.0], [1.0], in_flight_times=[0.5])
    with pytest.raises(ValueError, match="at least 2 gauge samples"):
        qcore.littles_law([0.0], [1.0], in_flight_times=[0.5], in_flight_counts=[1.0])
    with pytest.raises(ValueError, match="in_flight_counts contains a negative value"):
        qcore.littles_law(
            [0.0], [1.0], in_flight_times=[0.5, 0.6], in_flight_counts=[1.0, -1.0]
        )
    with pytest.raises(ValueError, match="in_flight_times has 1 sample"):
        qcore.littles_law(
            [0.0],
            [1.0],
            t1=0.55,
            in_flight_times=[0.5, 0.6],
            in_flight_counts=[1.0, 1.0],
        )
    with pytest.raises(ValueError, match="start is empty"):
        qcore.littles_law([], [])
    with pytest.raises(ValueError, match="tolerance"):
        qcore.littles_law([0.0], [1.0], tolerance=-0.1)
    r = qcore.littles_law([], [], t0=0.0, t1=1.0)
    assert r.flags == ("empty_window",) and r.L == 0.0


def test_littles_law_by_matches_per_group():
    rng = np.random.default_rng(5)
    n = 5000
    s = rng.uniform(0, 1000, n)
    df = pl.DataFrame(
        {
            "s": s,
            "e": s + rng.exponential(3.0, n),
            "ep": rng.choice(["chat", "code"], n),
            "replica": rng.integers(0, 3, n),
        }
    )
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 17)
        .then(None)
        .otherwise(pl.col("e"))
        .alias("e")
    )
    out = qcore.littles_law_by(df, "s", "e", ["ep", "replica"])
    assert out.height == 6
    for row in out.iter_rows(named=True):
        part = df.filter(
            (pl.col("ep") == row["ep"]) & (pl.col("replica") == row["replica"])
        )
        r = qcore.littles_law(part["s"], part["e"])
        assert row["L"] == pytest.approx(r.L, rel=1e-12)
        assert row["lambda_w"] == pytest.approx(r.lambda_w, rel=1e-12)
        assert row["rows"] == part.height and row["holds"] == r.holds
        assert tuple(row["flags"]) == r.flags
    assert out["running"].sum() == 1
    out2 = qcore.littles_law_by(df, "s", "e", "ep", t0=100.0, t1=900.0)
    for row in out2.iter_rows(named=True):
        part = df.filter(pl.col("ep") == row["ep"])
        assert row["L"] == pytest.approx(
            qcore.littles_law(part["s"], part["e"], 100.0, 900.0).L, rel=1e-12
        )
    with pytest.raises(ValueError, match="no column"):
        qcore.littles_law_by(df, "s", "nope", "ep")


# ----------------------------------------------------------------------------- real trace
@pytest.fixture(scope="module")
def gentd(shared_data):
    df = pl.read_csv(shared_data / "alibaba_gentd26" / "lora_request_trace.csv")
    return df.with_columns(
        start=pl.col("gmt_create").str.to_datetime().dt.epoch("s").cast(pl.Float64),
    ).with_columns(end=pl.col("start") + pl.col("exec_time_seconds"))


def test_gentd26_whole_trace_succeed(gentd):
    ok = gentd.filter(pl.col("predict_status") == "SUCCEED")
    r = qcore.littles_law(ok["start"], ok["end"])
    # SOURCE.md: λ = 0.013266 /s, W = 28.91 s, λ·W = 0.3835 = L
    assert r.arrivals == 26392
    assert r.arrival_rate == pytest.approx(0.013266, abs=5e-7)
    assert r.mean_response == pytest.approx(28.91, abs=0.005)
    assert r.lambda_w == pytest.approx(0.3835, abs=5e-5)
    assert r.L == pytest.approx(r.lambda_w, rel=1e-12)
    assert r.holds


def test_gentd26_busiest_day(gentd):
    t0 = float(pl.Series(["2024-12-03 00:00:00"]).str.to_datetime().dt.epoch("s")[0])
    t1 = t0 + 86400.0
    r = qcore.littles_law(gentd["start"], gentd["end"], t0=t0, t1=t1)
    # SOURCE.md: 2,728 requests; clipped L = 0.9282 vs λW = 0.9281 (edges ≈ 0.01 %)
    assert r.arrivals == 2728
    assert r.L == pytest.approx(0.9282, abs=5e-5)
    assert r.lambda_w == pytest.approx(0.9281, abs=5e-5)
    # the bound alone certifies the window: below the default 2 % tolerance
    assert r.gap < 1e-3 and abs(r.edge_term) <= r.edge_bound < 0.02 * r.L
    assert r.holds


def test_gentd26_peak_concurrency(gentd):
    peak = qcore.peak_in_flight(gentd["start"], gentd["end"])
    assert peak.peak == 22
    # the count at the reported time is the peak
    assert qcore.in_flight(gentd["start"], gentd["end"], [peak.time]).tolist() == [22]


def test_mm1_gauge_with_timing_jitter_still_holds(mm1):
    # A real gauge samples the system a few milliseconds off the logs' clock: only the
    # requests that start or end inside that jitter disagree, far below the 2 % tolerance.
    a, d, times, _ = mm1
    rng = np.random.default_rng(13)
    jittered = times + rng.uniform(-0.005, 0.005, times.size)
    ds = np.sort(d)
    truth = (
        np.searchsorted(a, jittered, side="right")
        - np.searchsorted(ds, jittered, side="right")
    ).astype(np.float64)
    r = qcore.littles_law(a, d, in_flight_times=times, in_flight_counts=truth)
    assert r.holds, (r.flags, r.gauge)
    assert 0 < r.gauge.mismatch < 0.02
    assert r.gauge.exact_agreement > 0.95


def test_littles_law_by_with_per_replica_gauge():
    # Two replicas, each an M/M/1 queue with its own in-flight gauge; replica "b" lost
    # 5 % of its log rows. Only "b" must be flagged, by the paired gauge comparison.
    import polars as pl

    frames, gauges = [], []
    for name, seed in (("a", 1), ("b", 2)):
        a, d = mm1_log(60_000, seed=seed)
        times = np.arange(a[0] + 2.5, d.max(), 5.0)
        counts = np.searchsorted(a, times, side="right") - np.searchsorted(
            np.sort(d), times, side="right"
        )
        if name == "b":
            keep = np.random.default_rng(11).random(a.size) >= 0.05
            a, d = a[keep], d[keep]
        frames.append(pl.DataFrame({"replica": name, "s": a, "e": d}))
        gauges.append(pl.DataFrame({"replica": name, "t": times, "n": counts.astype(np.float64)}))
    log = pl.concat(frames)
    gauge = pl.concat(gauges)
    res = qcore.littles_law_by(log, "s", "e", "replica", gauge=gauge, gauge_time="t", gauge_count="n")
    res = res.sort("replica")
    ra, rb = res.row(0, named=True), res.row(1, named=True)
    assert ra["holds"] is True and ra["gauge_discrepancy"] == 0.0 and ra["gauge_within_tolerance"]
    assert rb["holds"] is False and "gauge_discrepancy" in rb["flags"]
    assert rb["gauge_ci_lo"] < -0.05 < rb["gauge_ci_hi"] < -0.02
    # the per-group values agree with single calls on each group's rows
    part = log.filter(pl.col("replica") == "b")
    gb = gauge.filter(pl.col("replica") == "b")
    single = qcore.littles_law(part["s"], part["e"], in_flight_times=gb["t"], in_flight_counts=gb["n"])
    assert rb["gauge_discrepancy"] == pytest.approx(single.gauge.discrepancy, rel=1e-12)
    assert rb["L"] == pytest.approx(single.L, rel=1e-12)
    # a group without gauge samples cannot pass silently
    res2 = qcore.littles_law_by(
        log, "s", "e", "replica", gauge=gauge.filter(pl.col("replica") == "a"),
        gauge_time="t", gauge_count="n",
    ).sort("replica")
    assert res2.row(1, named=True)["holds"] is False
    assert "gauge_missing" in res2.row(1, named=True)["flags"]
    with pytest.raises(ValueError, match="gauge has no column"):
        qcore.littles_law_by(log, "s", "e", "replica", gauge=gauge)


@pytest.mark.hypothesis
def test_gauge_compare_from_partial_counts_equals_littles_law():
    """The native gauge comparison, fed with the logs' in-flight counts summed over any cut
    of the rows, gives littles_law's gauge check and flags bit for bit (the path of
    qcore.dask and qcore.pipeline.analysis)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from qcore import _qcore

    @settings(max_examples=60, deadline=None)
    @given(
        seed=st.integers(0, 2**32 - 1),
        n=st.integers(1, 400),
        m=st.integers(2, 120),
        cuts=st.lists(st.integers(0, 400), max_size=4),
        window=st.sampled_from([None, (0.2, 0.7), (0.0, 1.0), (-0.1, 0.5)]),
        tol=st.sampled_from([0.0, 0.02, 0.3]),
        conf=st.sampled_from([0.5, 0.95]),
    )
    def check(seed, n, m, cuts, window, tol, conf):
        rng = np.random.default_rng(seed)
        s = rng.uniform(0.0, 100.0, n)
        e = s + rng.exponential(rng.uniform(0.1, 20.0), n)
        e[rng.random(n) < 0.05] = np.nan
        skew = rng.random(n) < 0.05
        e[skew] = s[skew] - 1.0
        times = rng.uniform(-10.0, 130.0, m).round(1)
        truth = qcore.in_flight(s, e, times)
        counts = np.maximum(truth + rng.integers(-1, 2, m) * (rng.random(m) < 0.3), 0).astype(np.float64)
        t0 = t1 = None
        if window is not None:
            t0, t1 = 100.0 * window[0], 100.0 * window[1]
        try:
            plain = qcore.littles_law(s, e, t0, t1, tolerance=tol, confidence=conf)
        except ValueError:
            return  # a degenerate log (one instant): no window, nothing to compare
        try:
            ref = qcore.littles_law(s, e, t0, t1, in_flight_times=times, in_flight_counts=counts,
                                    tolerance=tol, confidence=conf)
        except ValueError as err:
            # only the window's sample count can fail now, and gauge_window says so too
            with pytest.raises(ValueError) as got:
                _qcore.gauge_window(times, counts, plain.t0, plain.t1)
            assert str(got.value) == str(err)
            return
        idx = _qcore.gauge_window(times, counts, ref.t0, ref.t1)
        wt, wc = times[idx], counts[idx]
        logs = np.zeros(idx.size, dtype=np.int64)
        for p in np.split(np.arange(n), sorted(c for c in cuts if c < n)):
            logs += qcore.in_flight(s[p], e[p], wt)
        g, flags = _qcore.gauge_compare(wt, wc, logs, ref.lambda_w, tol, conf)
        got = qcore.little._gauge_check(g).as_dict()
        want = ref.gauge.as_dict()
        assert got.keys() == want.keys()
        for k, v in want.items():  # bit for bit; NaN where the reference has NaN
            np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(v), err_msg=k, strict=True)
        base = [f for f in ref.flags if not f.startswith("gauge_")]
        assert tuple(base + flags) == ref.flags

    check()


def test_gauge_native_errors():
    from qcore import _qcore

    t, c, lc = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 1.0]), np.array([1, 2, 1])
    for args, msg in [
        ((t, c[:2], lc, 1.0), "in_flight_counts has length 2 but in_flight_times has length 3"),
        ((t, c, lc[:2], 1.0), "logs_counts has length 2 but in_flight_times has length 3"),
        ((t, c, np.array([1, -1, 0]), 1.0), "logs_counts contains a negative value at index 1"),
        ((t, np.array([1.0, -2.0, 0.0]), lc, 1.0), "in_flight_counts contains a negative value at index 1"),
        ((t[:1], c[:1], lc[:1], 1.0), "in_flight_times needs at least 2 gauge samples, got 1"),
        ((t, c, lc, float("nan")), "lambda_w must be a finite number ≥ 0, got NaN"),
        ((t, c, lc, 1.0, -1.0), "tolerance must be a finite number ≥ 0, got -1"),
        ((t, c, lc, 1.0, 0.02, 1.5), "confidence must be in (0, 1), got 1.5"),
    ]:
        with pytest.raises(qcore.exceptions.InvalidArgumentError, match=re.escape(msg)):
            _qcore.gauge_compare(*args)
    with pytest.raises(ValueError, match=re.escape("in_flight_times contains NaN at index 1")):
        _qcore.gauge_window(np.array([0.0, np.nan]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match=re.escape("t0 must not be NaN")):
        _qcore.gauge_window(t, c, float("nan"), 1.0)
    with pytest.raises(ValueError, match=re.escape("has 1 sample(s) inside the window [0.5, 1.5]")):
        _qcore.gauge_window(t, c, 0.5, 1.5)
    assert _qcore.gauge_window(t, c).tolist() == [0, 1, 2]
    assert _qcore.gauge_window(t, c, None, 1.0).tolist() == [0, 1]
