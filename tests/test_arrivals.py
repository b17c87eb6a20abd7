"""Arrival rates: exact counts against numpy, Poisson limits, Garwood against scipy,
change points on known piecewise-constant streams, streaming estimators, real traces."""

from __future__ import annotations

import json
import pickle

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import qcore
from qcore.exceptions import IncompatibleSketchError


# ----------------------------------------------------------------------------- references
def ref_counts(ts, w, start=None, end=None):
    ts = np.asarray(ts, dtype=np.float64)
    if start is None:
        if ts.size == 0:
            return np.zeros(0, dtype=np.int64)
        start = ts.min()
    if end is None:
        nb = (
            int(np.floor((ts.max() - start) / w)) + 1
            if ts.size and ts.max() >= start
            else 0
        )
        keep = ts >= start
    else:
        nb = int(np.ceil((end - start) / w))
        keep = (ts >= start) & (ts < end)
    k = np.floor((ts[keep] - start) / w).astype(np.int64)
    k = k[(k >= 0) & (k < nb)]
    return np.bincount(k, minlength=nb)


def ref_stats(ts, w):
    ts = np.sort(np.asarray(ts, dtype=np.float64))
    n = ts.size
    dur = ts[-1] - ts[0]
    nb = int(np.floor(dur / w))
    k = np.floor((ts - ts[0]) / w).astype(np.int64)
    c = np.bincount(k[k < nb], minlength=nb)
    g = np.diff(ts)
    return {
        "count": n,
        "duration": dur,
        "rate": n / dur,
        "peak_rate": c.max() / w,
        "peak_to_mean": c.max() / c.mean(),
        "index_of_dispersion": c.var() / c.mean(),
        "cv_interarrival": g.std() / g.mean(),
        "windows": nb,
        "counts": c,
    }


def poisson(rate, duration, seed):
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * duration)
    return np.sort(rng.uniform(0.0, duration, n))


# ----------------------------------------------------------------------------- window_counts
def test_window_counts_matches_bincount_sorted_and_unsorted():
    rng = np.random.default_rng(1)
    ts = rng.uniform(-50, 1000, 200_000)  # large enough to release the GIL
    for w in (0.37, 1.0, 60.0, 400.0):
        ref = ref_counts(ts, w)
        np.testing.assert_array_equal(qcore.window_counts(ts, w), ref)
        np.testing.assert_array_equal(qcore.window_counts(np.sort(ts), w), ref)
    for start, end in [(0.0, 500.0), (10.5, 10.6), (-100.0, 2000.0), (999.0, 1e4)]:
        ref = ref_counts(ts, 7.0, start, end)
        np.testing.assert_array_equal(qcore.window_counts(ts, 7.0, start, end), ref)
        np.testing.assert_array_equal(
            qcore.window_counts(np.sort(ts), 7.0, start, end), ref
        )
    assert qcore.window_counts(ts, 10.0).sum() == ts.size


def test_window_counts_input_types():
    ts = [0.1, 0.5, 2.2, 2.9]
    expect = [2, 0, 2]
    assert qcore.window_counts(ts, 1.0).tolist() == expect
    assert qcore.window_counts(np.array(ts, dtype=np.float32), 1.0).tolist() == expect
    assert qcore.window_counts(pl.Series(ts), 1.0).tolist() == expect
    assert qcore.window_counts(np.array([0, 1, 1, 5]), 2).tolist() == [3, 0, 1]
    assert qcore.window_counts(np.array(ts)[::2], 1.0).tolist() == [1, 0, 1]  # strided
    out = qcore.window_counts(ts, 1.0)
    assert out.dtype == np.int64


def test_window_counts_empty_and_errors():
    assert qcore.window_counts([], 1.0).tolist() == []
    assert qcore.window_counts([], 1.0, start=0.0, end=3.0).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="timestamps contains NaN at index 2"):
        qcore.window_counts([1.0, 2.0, np.nan], 1.0)
    with pytest.raises(ValueError, match="timestamps contains inf at index 0"):
        qcore.window_counts([np.inf], 1.0)
    with pytest.raises(ValueError, match="window must be a positive"):
        qcore.window_counts([1.0], 0.0)
    with pytest.raises(ValueError, match="window must be a positive"):
        qcore.window_counts([1.0], float("nan"))
    with pytest.raises(ValueError, match="end"):
        qcore.window_counts([1.0], 1.0, start=5.0, end=1.0)
    with pytest.raises(ValueError, match="window is too small"):
        qcore.window_counts([0.0, 1e9], 1e-6)
    with pytest.raises(ValueError, match="null"):
        qcore.window_counts(pl.Series([1.0, None]), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        qcore.window_counts(np.zeros((2, 2)), 1.0)


@pytest.mark.hypothesis
@settings(max_examples=200, deadline=None)
@given(
    ts=st.lists(st.floats(-1e4, 1e4, allow_nan=False), max_size=300),
    w=st.floats(1e-2, 1e3),
    sort=st.booleans(),
)
def test_window_counts_property(ts, w, sort):
    arr = np.array(ts, dtype=np.float64)
    if sort:
        arr = np.sort(arr)
    np.testing.assert_array_equal(qcore.window_counts(arr, w), ref_counts(arr, w))
    if arr.size:
        s, e = float(arr.min()) + w / 3, float(arr.max()) + w
        np.testing.assert_array_equal(
            qcore.window_counts(arr, w, s, e), ref_counts(arr, w, s, e)
        )


# ----------------------------------------------------------------------------- arrival_stats
def test_arrival_stats_matches_numpy_reference():
    rng = np.random.default_rng(7)
    ts = rng.uniform(0, 3600, 50_000) ** 1.1  # non-stationary, unsorted
    for w in (1.0, 13.0, 60.0):
        s = qcore.arrival_stats(ts, window=w)
        ref = ref_stats(ts, w)
        for k in ("count", "windows"):
            assert getattr(s, k) == ref[k]
        for k in (
            "duration",
            "rate",
            "peak_rate",
            "peak_to_mean",
            "index_of_dispersion",
            "cv_interarrival",
        ):
            assert getattr(s, k) == pytest.approx(ref[k], rel=1e-10), k
        # burstiness curve: dyadic merges of the base windows
        c = ref["counts"]
        for wk, dk in zip(s.burstiness_windows, s.burstiness, strict=True):
            m = round(wk / w)
            agg = c[: (c.size // m) * m].reshape(-1, m).sum(axis=1)
            assert dk == pytest.approx(agg.var() / agg.mean(), rel=1e-10)
            assert agg.size >= 8
        assert s.burstiness_windows[0] == w
    d = s.as_dict()
    assert set(d) >= {
        "rate",
        "rate_ci",
        "peak_rate",
        "peak_to_mean",
        "cv_interarrival",
        "index_of_dispersion",
        "count",
        "duration",
        "burstiness",
    }
    assert "ArrivalStats(count=50000" in repr(s)
    with pytest.raises(AttributeError):
        s.rate = 1.0  # frozen


def test_arrival_stats_poisson_limits():
    rate = 20.0
    ts = poisson(rate, 20_000.0, seed=11)
    rng = np.random.default_rng(0)
    s = qcore.arrival_stats(
        rng.permutation(ts), window=1.0
    )  # unsorted input is sorted in Rust
    n = ts.size
    assert s.rate_ci[0] < rate < s.rate_ci[1]
    # CV of exponential gaps → 1 (sd of the estimate ≈ 1/√n); dispersion → 1 (sd ≈ √(2/m))
    assert abs(s.cv_interarrival - 1.0) < 6 / np.sqrt(n)
    assert abs(s.index_of_dispersion - 1.0) < 6 * np.sqrt(2 / s.windows)
    # the burstiness curve of a Poisson stream is flat at 1
    for wk, dk in zip(s.burstiness_windows, s.burstiness, strict=True):
        m = s.duration // wk
        assert abs(dk - 1.0) < 6 * np.sqrt(2 / m) + 1e-9, (wk, dk)
    assert len(s.burstiness) >= 10
    # peak: for Poisson(20) counts over 20 000 windows, the max is far below 2× the mean
    assert 1.2 < s.peak_to_mean < 2.5


def test_arrival_stats_bursty_curve_grows():
    # On/off modulated Poisson: 100 s at rate 50, 100 s at rate 1, repeated.
    rng = np.random.default_rng(5)
    parts = []
    for k in range(50):
        r = 50.0 if k % 2 == 0 else 1.0
        parts.append(rng.uniform(100 * k, 100 * (k + 1), rng.poisson(r * 100)))
    ts = np.concatenate(parts)
    s = qcore.arrival_stats(ts, window=1.0)
    # Square-wave rate μ ± σ with half-period T: for w ≤ T the counts have
    # IoD = 1 + σ² w (1 − 2w / 3T) / μ (windows straddling a switch average the two rates).
    mu, sigma, T = 25.5, 24.5, 100.0
    b = dict(zip(s.burstiness_windows, s.burstiness, strict=True))
    for w in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0):
        assert b[w] == pytest.approx(
            1 + sigma**2 * w * (1 - 2 * w / (3 * T)) / mu, rel=0.1
        ), w
    assert max(s.burstiness) > 30 * s.burstiness[0]


@pytest.mark.parametrize("k", [0, 1, 2, 10, 137, 5000, 10**6])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_garwood_matches_scipy_chi2(k, confidence):
    exposure = 3.7
    a = 1 - confidence
    lo_ref = 0.0 if k == 0 else stats.chi2.ppf(a / 2, 2 * k) / 2 / exposure
    hi_ref = stats.chi2.ppf(1 - a / 2, 2 * k + 2) / 2 / exposure
    # k events over `exposure` seconds: place them regularly so duration = exposure.
    if k >= 2:
        ts = np.linspace(0.0, exposure, k)
        s = qcore.arrival_stats(ts, window=1.0, confidence=confidence)
        assert s.rate_ci[0] == pytest.approx(lo_ref, rel=1e-11)
        assert s.rate_ci[1] == pytest.approx(hi_ref, rel=1e-11)
        assert s.confidence == confidence
    else:
        with pytest.raises(ValueError, match="at least two arrivals"):
            qcore.arrival_stats(np.zeros(k), window=1.0)


def test_arrival_stats_errors():
    with pytest.raises(ValueError, match="at least two arrivals"):
        qcore.arrival_stats([1.0, 1.0])
    with pytest.raises(ValueError, match="timestamps contains NaN at index 1"):
        qcore.arrival_stats([1.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="confidence"):
        qcore.arrival_stats([1.0, 2.0], confidence=1.0)
    s = qcore.arrival_stats([0.0, 0.5], window=10.0)  # no complete window
    assert s.windows == 0 and np.isnan(s.peak_rate) and np.isnan(s.index_of_dispersion)


def test_burstiness_curve_direct():
    ts = poisson(5.0, 5000.0, seed=3)
    ws = [0.5, 3.0, 17.0]
    out = qcore.burstiness_curve(ts, ws)
    for w, d in zip(ws, out, strict=True):
        c = ref_stats(ts, w)["counts"]
        assert d == pytest.approx(c.var() / c.mean(), rel=1e-10)
    with pytest.raises(ValueError, match="window"):
        qcore.burstiness_curve(ts, [0.0])


def test_arrival_stats_by_matches_per_group():
    rng = np.random.default_rng(9)
    df = pl.DataFrame(
        {
            "t": rng.uniform(0, 1000, 3000),
            "ep": rng.choice(["a", "b", "c"], 3000),
            "ver": rng.choice([1, 2], 3000),
        }
    ).vstack(pl.DataFrame({"t": [5.0], "ep": ["d"], "ver": [1]}))
    out = qcore.arrival_stats_by(df, "t", ["ep", "ver"], window=10.0)
    assert out.height == 7
    for row in out.iter_rows(named=True):
        part = df.filter((pl.col("ep") == row["ep"]) & (pl.col("ver") == row["ver"]))[
            "t"
        ]
        if row["ep"] == "d":
            assert row["rate"] is None
            continue
        s = qcore.arrival_stats(part, window=10.0)
        assert row["count"] == s.count
        assert row["rate"] == s.rate and row["rate_lo"] == s.rate_ci[0]
        assert row["index_of_dispersion"] == s.index_of_dispersion
    with pytest.raises(ValueError, match="no column"):
        qcore.arrival_stats_by(df, "nope", "ep")


# ----------------------------------------------------------------------------- change points
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rate_changes_finds_known_change_points(seed):
    rng = np.random.default_rng(seed)
    edges = [0.0, 300.0, 700.0, 1000.0]
    rates = [2.0, 8.0, 3.0]
    ts = np.concatenate(
        [
            rng.uniform(a, b, rng.poisson(r * (b - a)))
            for a, b, r in zip(edges[:-1], edges[1:], rates, strict=True)
        ]
    )
    r = qcore.rate_changes(rng.permutation(ts))
    assert r.times.size == 2, r
    np.testing.assert_allclose(r.times, [300.0, 700.0], atol=3 * r.resolution + 2.0)
    np.testing.assert_allclose(r.rates, rates, rtol=0.15)
    np.testing.assert_allclose(r.rates_before, rates[:2], rtol=0.15)
    np.testing.assert_allclose(r.rates_after, rates[1:], rtol=0.15)
    assert r.counts.sum() == ts.size
    assert r.boundaries[0] == ts.min() and r.boundaries[-1] == ts.max()


@pytest.mark.parametrize("seed", range(5))
def test_rate_changes_quiet_on_homogeneous_poisson(seed):
    ts = poisson(5.0, 2000.0, seed=100 + seed)
    r = qcore.rate_changes(ts)
    assert r.times.size == 0
    assert r.rates[0] == pytest.approx(ts.size / (ts.max() - ts.min()))


def test_rate_changes_errors():
    with pytest.raises(ValueError, match="at least two"):
        qcore.rate_changes([1.0])
    with pytest.raises(ValueError, match="bins"):
        qcore.rate_changes([1.0, 2.0], bins=1)
    with pytest.raises(ValueError, match="penalty"):
        qcore.rate_changes([1.0, 2.0], penalty=-1.0)
    assert set(qcore.rate_changes([0.0, 1.0, 2.0]).as_dict()) == {
        "times",
        "boundaries",
        "rates",
        "counts",
        "resolution",
        "penalty",
    }


# ----------------------------------------------------------------------------- DecayedRate
def decayed_ref(ts, half_life, at):
    lam = np.log(2) / half_life
    return lam * np.exp(-lam * (at - np.asarray(ts))).sum()


def test_decayed_rate_order_independent_and_exact():
    rng = np.random.default_rng(2)
    ts = np.sort(rng.uniform(0, 1000, 20_000))
    a = qcore.DecayedRate(half_life=30.0)
    a.update(ts)
    b = qcore.DecayedRate(half_life=30.0)
    shuffled = rng.permutation(ts)
    for chunk in np.array_split(shuffled, 17):  # out of order across and within batches
        b.update(chunk)
    ref = decayed_ref(ts, 30.0, 1000.0)
    assert a.rate(1000.0) == pytest.approx(ref, rel=1e-12)
    assert b.rate(1000.0) == pytest.approx(ref, rel=1e-12)
    assert a.count == b.count == ts.size
    assert b.last_time == ts.max() and b.first_time == ts.min()


def test_decayed_rate_tracks_poisson_rate_and_debias():
    ts = poisson(10.0, 5000.0, seed=4)
    r = qcore.DecayedRate(half_life=200.0)
    r.update(ts)
    lam = np.log(2) / 200.0
    sd = np.sqrt(10.0 * lam / 2)  # sd of the decayed count estimate at stationarity
    assert abs(r.rate() - 10.0) < 5 * sd
    # early on the raw estimate is biased low; debias removes it
    early = qcore.DecayedRate(half_life=200.0)
    early.update(ts[ts < 50.0])
    at = 50.0
    raw = early.rate(at)
    deb = early.rate(at, debias=True)
    assert raw == pytest.approx(deb * -np.expm1(-lam * (at - ts[0])), rel=1e-12)
    assert abs(deb - 10.0) < 2.0 < abs(raw - 10.0)


def test_decayed_rate_merge_pickle_errors():
    rng = np.random.default_rng(3)
    ts = rng.uniform(0, 100, 5000)
    p, q, whole = (qcore.DecayedRate(5.0) for _ in range(3))
    p.update(ts[:1234])
    q.update(ts[1234:])
    whole.update(ts)
    q_before = q.rate(200.0)
    p.merge(q)
    assert p.rate(200.0) == pytest.approx(whole.rate(200.0), rel=1e-12)
    assert q.rate(200.0) == q_before  # argument unchanged
    assert p.count == 5000
    p2 = pickle.loads(pickle.dumps(p))
    assert p2.rate(300.0) == p.rate(300.0) and p2.count == p.count
    s = p.copy()
    s.merge(s)
    assert s.count == 2 * p.count
    empty = qcore.DecayedRate(5.0)
    assert empty.rate() is None and empty.last_time is None
    e2 = pickle.loads(pickle.dumps(empty))
    assert e2.count == 0
    empty.merge(p)
    assert empty.rate(200.0) == p.rate(200.0)
    with pytest.raises(IncompatibleSketchError):
        p.merge(qcore.DecayedRate(6.0))
    assert issubclass(IncompatibleSketchError, ValueError)
    before = (p.count, p.rate(200.0))
    with pytest.raises(ValueError, match="timestamps contains NaN at index 1"):
        p.update([150.0, np.nan])
    assert (p.count, p.rate(200.0)) == before  # failed call changes nothing
    with pytest.raises(ValueError, match="at .* is before the latest"):
        p.rate(1.0)
    with pytest.raises(ValueError, match="half_life"):
        qcore.DecayedRate(0.0)
    with pytest.raises(TypeError):
        p.merge(qcore.SlidingRate(1.0))
    assert "DecayedRate(half_life=5.0" in repr(p)


# ----------------------------------------------------------------------------- SlidingRate
def test_sliding_rate_matches_brute_force():
    rng = np.random.default_rng(8)
    h = 10.0
    s = qcore.SlidingRate(horizon=h)
    seen: list[float] = []
    latest = -np.inf
    for step in range(40):
        base = step * 3.0
        batch = base + rng.uniform(
            -15, 5, rng.integers(0, 30)
        )  # some late, some very late
        late = int(np.sum(batch <= latest - h))
        dropped_before = s.dropped_late
        s.update(batch)
        assert s.dropped_late - dropped_before == late
        seen.extend(batch.tolist())
        if len(seen):
            latest = max(seen)
            arr = np.array(seen)
            for at in (latest, latest + 2.5, latest + 50):
                ref = np.sum((arr > at - h) & (arr <= at)) / h
                assert s.rate(at) == pytest.approx(ref, abs=1e-15)
    assert s.count == len(seen)


def test_sliding_rate_merge_and_pickle():
    rng = np.random.default_rng(9)
    ts = rng.uniform(0, 100, 1000)
    a, b, whole = (qcore.SlidingRate(7.0) for _ in range(3))
    a.update(ts[::2])
    b.update(ts[1::2])
    whole.update(ts)
    a.merge(b)
    assert a.rate() == whole.rate() and a.rate(103.0) == whole.rate(103.0)
    assert a.count == 1000
    c = pickle.loads(pickle.dumps(a))
    assert c.rate(101.0) == a.rate(101.0) and c.count == a.count
    with pytest.raises(IncompatibleSketchError):
        a.merge(qcore.SlidingRate(8.0))
    assert qcore.SlidingRate(1.0).rate() is None
    with pytest.raises(ValueError, match="horizon"):
        qcore.SlidingRate(-1.0)


# ----------------------------------------------------------------------------- real traces
def _azure(shared_data, name):
    df = pl.read_csv(
        shared_data / "azure_llm_2023" / f"AzureLLMInferenceTrace_{name}.csv"
    )
    return (
        df["TIMESTAMP"].str.to_datetime().dt.epoch("us").cast(pl.Float64) / 1e6
    ).to_numpy()


def _mooncake(shared_data, name):
    path = shared_data / "mooncake_fast25" / f"{name}_trace.jsonl"
    with open(path) as f:
        return (
            np.array([json.loads(line)["timestamp"] for line in f], dtype=np.float64)
            / 1000.0
        )


def test_azure_traces_match_source_facts(shared_data):
    code = _azure(shared_data, "code")
    conv = _azure(shared_data, "conv")
    c1 = qcore.arrival_stats(code, window=1.0)
    v1 = qcore.arrival_stats(conv, window=1.0)
    # SOURCE.md: rate, IAT CV, per-second peak-to-mean and dispersion
    assert c1.count == 8819 and v1.count == 19366
    assert c1.rate == pytest.approx(2.567, abs=5e-4)
    assert v1.rate == pytest.approx(5.530, abs=5e-4)
    assert c1.cv_interarrival == pytest.approx(13.15, abs=0.01)
    assert v1.cv_interarrival == pytest.approx(1.094, abs=0.001)
    assert c1.index_of_dispersion == pytest.approx(13.2, abs=0.05)
    assert v1.index_of_dispersion == pytest.approx(1.39, abs=0.005)
    assert c1.peak_to_mean == pytest.approx(26.1, abs=0.05)
    assert c1.peak_rate == 67 and v1.peak_rate == 16
    c60 = qcore.arrival_stats(code, window=60.0)
    v60 = qcore.arrival_stats(conv, window=60.0)
    assert c60.index_of_dispersion == pytest.approx(164, abs=0.5)
    assert v60.index_of_dispersion == pytest.approx(16.1, abs=0.05)
    assert c60.peak_rate * 60 == pytest.approx(
        632
    ) and v60.peak_rate * 60 == pytest.approx(507)
    # bursty code trace: the burstiness curve climbs far above 1
    assert c1.burstiness[-1] > 50


def test_mooncake_synthetic_looks_poisson_real_is_bursty(shared_data):
    syn = _mooncake(shared_data, "synthetic")
    real = _mooncake(shared_data, "conversation")
    s = qcore.arrival_stats(syn, window=1.0)
    r = qcore.arrival_stats(real, window=1.0)
    assert s.count == 3993 and r.count == 12031
    assert s.rate == pytest.approx(3.907, abs=1e-3) and r.rate == pytest.approx(
        3.401, abs=1e-3
    )
    assert s.cv_interarrival == pytest.approx(1.011, abs=1e-3)
    assert s.index_of_dispersion == pytest.approx(1.09, abs=0.005)
    assert r.index_of_dispersion == pytest.approx(7.90, abs=0.005)
    # synthetic: flat burstiness curve near 1 at every scale (CI-safe bands)
    for w, d in zip(s.burstiness_windows, s.burstiness, strict=True):
        m = s.duration // w
        assert abs(d - 1.0) < 4 * np.sqrt(2 / m), (w, d)
    # real: well above 1 at every scale (timestamps are quantized to ≈3 s)
    assert min(r.burstiness) > 2.0
    # the synthetic control shows no rate change; the real trace shows at least one
    assert qcore.rate_changes(syn).times.size == 0
    assert qcore.rate_changes(real, bins=360).times.size >= 1
