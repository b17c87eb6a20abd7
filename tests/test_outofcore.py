"""Out-of-core processing of Parquet data sets: same results as in memory, bounded memory."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import qcore
from qcore._qcore import garwood as _qc_garwood
from qcore.pipeline import analysis as oc

N = 60_000
T0 = 1.7e9


def make_log(n: int = N, seed: int = 7) -> pl.DataFrame:
    """A request log: sorted arrivals, lognormal latencies with a few long requests (that
    straddle batch boundaries), running rows (null end) and skewed rows (end < start)."""
    rng = np.random.default_rng(seed)
    t = T0 + np.sort(rng.uniform(0.0, 600.0, n))
    lat = rng.lognormal(-2.0, 1.0, n)
    lat[rng.choice(n, 50, replace=False)] += rng.uniform(5.0, 60.0, 50)
    end = t + lat
    end[rng.choice(n, 20, replace=False)] = np.nan
    skew = rng.choice(n, 10, replace=False)
    end[skew] = t[skew] - 0.25
    return pl.DataFrame(
        {
            "t": t,
            "lat": lat,
            "end": pl.Series(end).fill_nan(None),
            "model": rng.choice(["llama", "mistral", "qwen"], n),
            "replica": rng.integers(0, 4, n),
        }
    )


def write_dataset(df: pl.DataFrame, d: Path, files: int = 4, row_group: int = 4_000) -> str:
    d.mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(np.array_split(np.arange(df.height), files)):
        df[int(part[0]) : int(part[-1]) + 1].write_parquet(d / f"part-{k}.parquet", row_group_size=row_group)
    return str(d / "*.parquet")


@pytest.fixture(scope="module")
def log() -> pl.DataFrame:
    return make_log()


@pytest.fixture(scope="module")
def sorted_source(log: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_dataset(log, tmp_path_factory.mktemp("sorted"))


@pytest.fixture(scope="module")
def shuffled_source(log: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_dataset(log.sample(fraction=1.0, shuffle=True, seed=3), tmp_path_factory.mktemp("shuffled"))


def end_array(df: pl.DataFrame, column: str = "end") -> np.ndarray:
    return df[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def exact_cv(ts: np.ndarray) -> float:
    """Inter-arrival CV with the sum of squares correctly rounded (math.fsum)."""
    s = np.sort(ts)
    m = (s[-1] - s[0]) / (s.size - 1)
    d = np.diff(s) - m
    return math.sqrt(math.fsum(d * d) / (s.size - 1)) / m


EXACT_STATS = ("count", "duration", "rate", "confidence", "window", "windows", "peak_rate", "peak_to_mean",
               "index_of_dispersion")


def assert_arrival_equal(got: qcore.ArrivalStats, ts: np.ndarray, window: float) -> None:
    ref = qcore.arrival_stats(ts, window=window)
    for f in EXACT_STATS:
        assert getattr(got, f) == getattr(ref, f), f
    np.testing.assert_array_equal(got.burstiness_windows, ref.burstiness_windows)
    np.testing.assert_array_equal(got.burstiness, ref.burstiness)
    # exact sum of squared gaps, correctly rounded: bit for bit against math.fsum
    assert got.cv_interarrival == exact_cv(ts)
    assert got.cv_interarrival == pytest.approx(ref.cv_interarrival, rel=1e-12)
    # the same core function from the same count and duration: bit for bit
    assert got.rate_ci == ref.rate_ci


def exact_little(s: np.ndarray, e: np.ndarray, t0: float, t1: float, log_end: float) -> dict[str, float]:
    """Little's law sums from the definitions, each summed with math.fsum."""
    ee = np.where(np.isnan(e), np.maximum(s, log_end), e)
    valid = ee >= s
    clipped = np.clip(np.minimum(ee, t1) - np.maximum(s, t0), 0.0, None)[valid]
    arr = valid & (s >= t0) & (s < t1)
    resp = (ee - s)[arr]
    pre = valid & (s < t0) & (ee > t0)
    post = arr & (ee > t1)
    edge = np.concatenate([(ee - t1)[post], -(np.minimum(ee, t1) - t0)[pre]])
    span = t1 - t0
    return {
        "L": math.fsum(clipped) / span,
        "mean_response": math.fsum(resp) / arr.sum(),
        "edge_term": math.fsum(edge) / span,
        "in_flight_t0": int(pre.sum()),
        "in_flight_t1": int(post.sum()),
        "arrivals": int(arr.sum()),
    }


LITTLE_COUNTS = ("t0", "t1", "rows", "arrivals", "running", "negative_durations", "in_flight_t0", "in_flight_t1",
                 "tolerance", "flags", "holds", "arrival_rate", "edge_bound")


def assert_little_equal(got: qcore.LittleResult, s: np.ndarray, e: np.ndarray, t0=None, t1=None,
                        gauge=None, tolerance=0.02, confidence=0.95) -> qcore.LittleResult:
    """``got`` against :func:`qcore.littles_law` on the same rows (and gauge ``(times,
    counts)``): counts, flags and ``holds`` equal, float sums equal to an exact reference.
    The gauge comparison comes from the same core function and the same integer counts,
    so every gauge field is identical; ``gauge_gap`` = |gauge_mean − λW| / gauge_mean
    takes λW from the exact sums (the in-memory core's lane sums differ by rounding)."""
    gt, gc = (None, None) if gauge is None else gauge
    ref = qcore.littles_law(s, e, t0=t0, t1=t1, in_flight_times=gt, in_flight_counts=gc, tolerance=tolerance,
                            confidence=confidence)
    for f in LITTLE_COUNTS:
        assert getattr(got, f) == getattr(ref, f), f
    for f in ("L", "mean_response", "lambda_w", "edge_term"):
        assert getattr(got, f) == pytest.approx(getattr(ref, f), rel=1e-12, abs=1e-12), f
    ex = exact_little(s, e, ref.t0, ref.t1, float(np.nanmax(np.concatenate([s, e]))))
    for f, v in ex.items():
        assert getattr(got, f) == v, f
    if gauge is None:
        assert got.gauge is None and ref.gauge is None
        return ref
    g, rg = got.gauge, ref.gauge
    assert isinstance(g, qcore.GaugeCheck) and isinstance(rg, qcore.GaugeCheck)
    for f in dataclasses.fields(qcore.GaugeCheck):
        if f.name != "gauge_gap":
            assert getattr(g, f.name) == getattr(rg, f.name), f.name
    assert g.gauge_gap == abs(g.gauge_mean - got.lambda_w) / g.gauge_mean
    assert g.gauge_gap == pytest.approx(rg.gauge_gap, rel=1e-12, abs=1e-13)
    return ref


def make_mm1_log(n: int = 60_000, lam: float = 0.8, mu: float = 1.0, seed: int = 21) -> pl.DataFrame:
    """An M/M/1 FIFO request log (Lindley recursion): start ``s``, end ``e``."""
    rng = np.random.default_rng(seed)
    a = T0 + np.cumsum(rng.exponential(1 / lam, n))
    svc = rng.exponential(1 / mu, n)
    d = np.empty(n)
    free = -math.inf
    for i in range(n):
        free = max(a[i], free) + svc[i]
        d[i] = free
    return pl.DataFrame({"s": a, "e": d})


def mm1_gauge_cases(log: pl.DataFrame) -> dict[str, tuple[pl.DataFrame, np.ndarray, np.ndarray]]:
    """(log rows, gauge times, gauge counts): the gauge is the true system's in-flight
    count every 10 s; the logs are complete ("faithful"), miss 5 % of the rows
    ("dropped") or carry a clock 3 s ahead of the gauge's ("offset")."""
    s, e = log["s"].to_numpy(), log["e"].to_numpy()
    times = T0 + np.arange(5.0, s[-1] - T0, 10.0)
    counts = qcore.in_flight(s, e, times).astype(np.float64)
    keep = np.random.default_rng(4).random(log.height) >= 0.05
    return {
        "faithful": (log, times, counts),
        "dropped": (log.filter(pl.Series(keep)), times, counts),
        "offset": (log.with_columns(pl.col("s") + 3.0, pl.col("e") + 3.0), times, counts),
    }


def check_gauge_case(case: str, got: qcore.LittleResult, rows: pl.DataFrame, times, counts, **kw) -> None:
    """``got`` equals the in-memory result, and the case is judged as it must be."""
    ref = assert_little_equal(got, rows["s"].to_numpy(), end_array(rows, "e"), gauge=(times, counts), **kw)
    if case == "faithful":
        assert got.holds and got.flags == () and got.gauge.exact_agreement == 1.0
    elif case == "dropped":
        assert not got.holds and "gauge_discrepancy" in got.flags and got.gauge.discrepancy_ci[1] < -0.02
    else:
        assert not got.holds and "gauge_mismatch" in got.flags and got.gauge.mismatch > 0.1
    assert got.flags == ref.flags and got.holds == ref.holds


def bad_gauge_inputs(times: np.ndarray, counts: np.ndarray) -> list[dict]:
    """Keyword arguments of littles_law with one bad gauge argument each."""
    nan_t, inf_c, neg_c = times.copy(), counts.copy(), counts.copy()
    nan_t[3] = np.nan
    inf_c[5] = np.inf
    neg_c[7] = -1.0
    null_c = pl.Series(counts).scatter(2, None)
    return [
        {"in_flight_times": times},
        {"in_flight_counts": counts},
        {"in_flight_times": times, "in_flight_counts": counts[:-1]},
        {"in_flight_times": nan_t, "in_flight_counts": counts},
        {"in_flight_times": times, "in_flight_counts": inf_c},
        {"in_flight_times": times, "in_flight_counts": neg_c},
        {"in_flight_times": times[:1], "in_flight_counts": counts[:1]},
        {"in_flight_times": times, "in_flight_counts": null_c},
        {"in_flight_times": ["a", "b"], "in_flight_counts": [1.0, 2.0]},
        {"in_flight_times": times, "in_flight_counts": counts, "tolerance": -0.5},
        {"in_flight_times": times, "in_flight_counts": counts, "confidence": 1.0},
        {"in_flight_times": times, "in_flight_counts": counts, "t0": math.inf},
        # fewer than two samples inside the window
        {"in_flight_times": times, "in_flight_counts": counts, "t0": T0 + 100.0, "t1": T0 + 108.0},
        {"in_flight_times": times, "in_flight_counts": counts, "t0": T0 - 100.0, "t1": T0 + 1.0},
    ]


def assert_same_gauge_errors(run, rows: pl.DataFrame, times: np.ndarray, counts: np.ndarray) -> None:
    """``run(**kw)`` raises the error of :func:`qcore.littles_law` with the same arguments."""
    s, e = rows["s"].to_numpy(), end_array(rows, "e")
    for kw in bad_gauge_inputs(times, counts):
        with pytest.raises((ValueError, TypeError)) as ref:
            qcore.littles_law(s, e, **kw)
        with pytest.raises((ValueError, TypeError)) as got:
            run(**kw)
        assert type(got.value) is type(ref.value), kw.keys()
        assert str(got.value) == str(ref.value), kw.keys()


# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["sorted", "shuffled"])
def test_group_quantiles_and_sketch_bytes(which, log, request):
    src = request.getfixturevalue(f"{which}_source")
    r = oc.group_quantiles(src, ["model", "replica"], "lat", quantiles=(0.5, 0.9, 0.99, 0.999), batch_rows=5_000)
    ref = qcore.group_quantiles(log, ["model", "replica"], "lat", quantiles=(0.5, 0.9, 0.99, 0.999))
    assert_frame_equal(r.value, ref)
    gs = oc.group_sketches(src, "model", "lat", batch_rows=7_777).value
    assert sorted(gs) == [("llama",), ("mistral",), ("qwen",)]
    for (m,), sk in gs.items():
        whole = qcore.QuantileSketch(0.01)
        whole.add(log.filter(pl.col("model") == m)["lat"])
        assert sk.to_bytes() == whole.to_bytes()
    assert r.read.rows == N and r.read.batches >= N // 5_000


@pytest.mark.parametrize("which", ["sorted", "shuffled"])
def test_window_counts(which, log, request):
    src = request.getfixturevalue(f"{which}_source")
    ts = log["t"].to_numpy()
    for window, start, end in [(1.0, None, None), (7.3, None, None), (10.0, T0 + 50.0, None),
                               (5.0, T0 - 20.0, T0 + 700.0), (3.0, T0 + 100.0, T0 + 200.0)]:
        got = oc.window_counts(src, "t", window, start=start, end=end, batch_rows=4_999).value
        np.testing.assert_array_equal(got, qcore.window_counts(ts, window, start=start, end=end))
        assert got.dtype == np.int64


@pytest.mark.parametrize("which", ["sorted", "shuffled"])
def test_arrival_stats(which, log, request):
    src = request.getfixturevalue(f"{which}_source")
    ts = log["t"].to_numpy()
    for window in (1.0, 13.0):
        r = oc.arrival_stats(src, "t", window=window, batch_rows=6_000)
        assert_arrival_equal(r.value, ts, window)
    # The external (range-partitioned) sort keeps memory per range near batch_rows.
    r = oc.arrival_stats(src, "t", window=1.0, batch_rows=1_000)
    assert_arrival_equal(r.value, ts, 1.0)


@pytest.mark.parametrize("which", ["sorted", "shuffled"])
def test_littles_law(which, log, request):
    src = request.getfixturevalue(f"{which}_source")
    s, e = log["t"].to_numpy(), end_array(log)
    r = oc.littles_law(src, "t", "end", batch_rows=5_000).value
    assert_little_equal(r, s, e)
    assert set(r.flags) == {"running_requests", "negative_durations"}
    # a window that cuts through requests at both ends
    r = oc.littles_law(src, "t", "end", t0=T0 + 100.0, t1=T0 + 160.5, batch_rows=3_333).value
    assert r.in_flight_t0 > 0 and r.in_flight_t1 > 0 and r.edge_term != 0.0
    assert_little_equal(r, s, e, t0=T0 + 100.0, t1=T0 + 160.5)


def test_results_do_not_depend_on_batch_size(sorted_source, shuffled_source):
    ref = oc.analyze(sorted_source, time="t", value="lat", by="model", start="t", end="end", batch_rows=60_000)
    for src, br in [(sorted_source, 1_111), (shuffled_source, 4_096), (shuffled_source, 60_000)]:
        a = oc.analyze(src, time="t", value="lat", by="model", start="t", end="end", batch_rows=br)
        assert_frame_equal(a.group_quantiles, ref.group_quantiles)
        assert {k: s.to_bytes() for k, s in a.group_sketches.items()} == {
            k: s.to_bytes() for k, s in ref.group_sketches.items()
        }
        np.testing.assert_array_equal(a.window_counts, ref.window_counts)
        assert a.arrival_stats.as_dict() == ref.arrival_stats.as_dict()
        assert a.littles_law == ref.littles_law


def test_analyze_matches_single_functions(log, sorted_source):
    a = oc.analyze(sorted_source, time="t", value="lat", start="t", end="end", window=2.0, batch_rows=8_000)
    np.testing.assert_array_equal(a.window_counts, qcore.window_counts(log["t"], 2.0))
    assert_arrival_equal(a.arrival_stats, log["t"].to_numpy(), 2.0)
    assert_little_equal(a.littles_law, log["t"].to_numpy(), end_array(log))
    whole = qcore.QuantileSketch(0.01)
    whole.add(log["lat"])
    assert a.group_sketches[("all",)].to_bytes() == whole.to_bytes()
    assert a.group_quantiles.columns == ["count", "p50", "p99", "p999"]
    assert a.read is not None and a.read.rows == N
    d = json.loads(json.dumps(a.as_dict()))
    assert d["window_counts"] == a.window_counts.tolist() and d["littles_law"]["arrivals"] == a.littles_law.arrivals
    assert bytes.fromhex(d["group_sketches"][0]["sketch"]) == whole.to_bytes()
    assert d["read"]["rows"] == N and d["group_quantiles"][0]["count"] == N


def test_read_report(sorted_source):
    r = oc.window_counts(sorted_source, "t", 1.0, batch_rows=10_000)
    m = r.read
    assert m.rows == N and m.batches == 6 and m.batch_rows == 10_000
    assert m.as_dict() == {"rows": N, "batches": 6, "batch_rows": 10_000}


def test_library_calls_leave_process_state_alone(sorted_source, monkeypatch):
    # A library call must not reset the host process's peak-memory counter (nor write
    # anything under /proc): measuring memory is the caller's business.
    import builtins

    opened: list[str] = []
    real_open = builtins.open

    def spy(file, mode="r", *args, **kwargs):
        opened.append(f"{file}:{mode}")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    oc.analyze(sorted_source, time="t", value="lat", start="t", end="end", batch_rows=20_000)
    oc.window_counts(sorted_source, "t", 1.0, batch_rows=20_000)
    assert not [f for f in opened if f.startswith("/proc") and not f.endswith(":r")], opened


_PEAK_SCRIPT = """
import re, sys, polars as pl, qcore
from qcore.pipeline import analysis as oc

def status(key):   # a fresh interpreter: its peak so far is the peak of this run
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024

src, mode = sys.argv[1], sys.argv[2]
base = status("VmRSS")
if mode == "batched":
    r = oc.littles_law(src, "t", "end", batch_rows=50_000)
    rows, arrivals = r.read.rows, r.value.arrivals
else:
    whole = pl.read_parquet(src)
    rows, arrivals = whole.height, qcore.littles_law(whole["t"], whole["end"]).arrivals
print(status("VmHWM") - base, rows, arrivals)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_memory_is_bounded_by_the_batch_not_the_data(tmp_path):
    # 3 million rows × 3 float columns = 72 MB in memory. Each measurement runs in a fresh
    # interpreter so that neither reuses the other's heap.
    import subprocess

    n = 3_000_000
    rng = np.random.default_rng(11)
    t = np.sort(rng.uniform(0.0, 3600.0, n))
    lat = rng.exponential(0.1, n)
    src = write_dataset(pl.DataFrame({"t": t, "lat": lat, "end": t + lat}), tmp_path / "big", files=6,
                        row_group=50_000)
    out = {}
    for mode in ("batched", "in_memory"):
        p = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, src, mode], capture_output=True, text=True,
                           check=True)
        peak, rows, arrivals = (int(v) for v in p.stdout.split())
        assert rows == n and arrivals == n
        out[mode] = peak
    assert 0 < out["batched"] < out["in_memory"]
    assert out["in_memory"] > 3 * 8 * n  # the frame itself was resident


def test_exact_sum_is_order_independent_and_picklable():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1e6, 10_000) * 10.0 ** rng.integers(-8, 8, 10_000)
    a, b = qcore.ExactSum(), qcore.ExactSum()
    a.add(x[:3000])
    b.add(x[3000:])
    c = pickle.loads(pickle.dumps(b))
    c.merge(a)
    assert c.value == math.fsum(x)
    r = qcore.ExactSum()
    r.add(x[::-1])
    assert r.value == math.fsum(x)
    assert qcore.ExactSum().value == 0.0


def test_errors(tmp_path, sorted_source, log):
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        oc.window_counts(sorted_source, "nope", 1.0)
    with pytest.raises(ValueError, match="window must be a positive"):
        oc.arrival_stats(sorted_source, "t", window=0.0)
    with pytest.raises(ValueError, match="confidence"):
        oc.arrival_stats(sorted_source, "t", confidence=1.0)
    with pytest.raises(ValueError, match="batch_rows"):
        oc.window_counts(sorted_source, "t", 1.0, batch_rows=0)
    with pytest.raises(TypeError, match="source must be"):
        oc.window_counts(42, "t", 1.0)
    bad = log.with_columns(pl.when(pl.int_range(pl.len()) == 12_345).then(float("nan")).otherwise(pl.col("t"))
                           .alias("t"))
    src = write_dataset(bad, tmp_path / "bad", files=2)
    with pytest.raises(ValueError, match="timestamps contains NaN at index 12345 of batch 0"):
        oc.arrival_stats(src, "t", batch_rows=30_000)
    one = write_dataset(pl.DataFrame({"t": [1.0, 1.0]}), tmp_path / "one", files=1)
    with pytest.raises(ValueError, match="at least two arrivals at distinct times"):
        oc.arrival_stats(one, "t")
    with pytest.raises(ValueError, match="t1"):
        oc.littles_law(sorted_source, "t", "end", t0=T0 + 10, t1=T0 + 10)
    with pytest.raises(ValueError, match="quantiles must be in"):
        oc.group_quantiles(sorted_source, "model", "lat", quantiles=(1.5,))
    with pytest.raises(ValueError, match="start and end"):
        oc.analyze(sorted_source, start="t")
    with pytest.raises(ValueError, match="tolerance"):
        oc.analyze(sorted_source, start="t", end="end", tolerance=-1.0)
    a = oc.analyze(sorted_source, time="t", start="t", end="end", confidence=0.9, tolerance=0.5)
    assert a.arrival_stats.confidence == 0.9 and a.littles_law.tolerance == 0.5
    assert a.arrival_stats.rate_ci == qcore.arrival_stats(log["t"], confidence=0.9).rate_ci


def test_real_trace_arrivals(shared_data, tmp_path):
    """Azure LLM inference trace (CC BY 4.0, Patel et al., ISCA 2024)."""
    path = shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    df = pl.read_csv(path).select(
        (pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S%.f").dt.epoch("us") / 1e6).alias("t"),
        pl.col("ContextTokens").cast(pl.Float64).alias("tokens"),
    )
    src = write_dataset(df, tmp_path / "azure", files=3, row_group=1_000)
    ts = df["t"].to_numpy()
    r = oc.arrival_stats(src, "t", window=1.0, batch_rows=2_000)
    assert_arrival_equal(r.value, ts, 1.0)
    a = oc.analyze(src, value="tokens", batch_rows=2_000)
    whole = qcore.QuantileSketch(0.01)
    whole.add(df["tokens"])
    assert a.group_sketches[("all",)].to_bytes() == whole.to_bytes()


def test_group_quantiles_null_keys_weights_and_null_values(tmp_path):
    rng = np.random.default_rng(1)
    n = 5_000
    df = pl.DataFrame(
        {"k": pl.Series(rng.choice(["a", "b", None], n)), "v": rng.exponential(1.0, n),
         "w": rng.integers(0, 5, n).astype(float)}
    ).with_columns(pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise(pl.col("v")).alias("v"))
    src = write_dataset(df, tmp_path / "nulls", files=2, row_group=700)
    ref = qcore.group_quantiles(df, "k", "v", weights="w", drop_nulls=True)
    assert ref["k"].null_count() == 1
    assert_frame_equal(oc.group_quantiles(src, "k", "v", weights="w", drop_nulls=True, batch_rows=999).value, ref)
    with pytest.raises(ValueError, match="null"):
        oc.group_quantiles(src, "k", "v", batch_rows=999)


@pytest.mark.hypothesis
def test_in_flight(log, shuffled_source):
    at = T0 + np.linspace(-5.0, 700.0, 301)
    got = oc.in_flight(shuffled_source, "t", "end", at, batch_rows=4_321).value
    np.testing.assert_array_equal(got, qcore.in_flight(log["t"], end_array(log), at))
    with pytest.raises(ValueError, match="at contains NaN"):
        oc.in_flight(shuffled_source, "t", "end", [1.0, float("nan")])


# --------------------------------------------------------------------------------------
# Little's law against an in-flight gauge, and the Garwood interval from the core


@pytest.fixture(scope="module")
def mm1_sources(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each gauge case's log as a Parquet data set, in time order and shuffled."""
    cases = mm1_gauge_cases(make_mm1_log())
    out = {}
    for name, (rows, times, counts) in cases.items():
        d = tmp_path_factory.mktemp(f"mm1_{name}")
        out[name] = {
            "rows": rows,
            "times": times,
            "counts": counts,
            "sorted": write_dataset(rows, d / "sorted", files=3, row_group=5_000),
            "shuffled": write_dataset(rows.sample(fraction=1.0, shuffle=True, seed=8), d / "shuffled", files=4),
        }
    return out


@pytest.mark.parametrize("case", ["faithful", "dropped", "offset"])
def test_littles_law_with_gauge_equals_in_memory(case, mm1_sources):
    c = mm1_sources[case]
    # one batch, several batches in time order, several batches of shuffled rows
    for which, br in [("sorted", 100_000), ("sorted", 7_777), ("shuffled", 5_000)]:
        r = oc.littles_law(c[which], "s", "e", in_flight_times=c["times"], in_flight_counts=c["counts"],
                           batch_rows=br)
        check_gauge_case(case, r.value, c["rows"], c["times"], c["counts"])
    # gauge arrays as polars Series and lists are accepted as in memory
    r = oc.littles_law(c["sorted"], "s", "e", in_flight_times=pl.Series(c["times"]),
                       in_flight_counts=c["counts"].tolist(), batch_rows=20_000)
    check_gauge_case(case, r.value, c["rows"], c["times"], c["counts"])


def test_gauge_pairs_the_samples_inside_the_closed_window(mm1_sources):
    c = mm1_sources["faithful"]
    s, e = c["rows"]["s"].to_numpy(), c["rows"]["e"].to_numpy()
    t0, t1 = T0 + 1000.0, T0 + 20_000.5
    # samples exactly at t0 and t1 count; appended out of time order (paired in time order)
    times = np.concatenate([c["times"], [t1, t0]])
    counts = np.concatenate([c["counts"], qcore.in_flight(s, e, [t1, t0]).astype(np.float64) + 1.0])
    for tol, conf in [(0.02, 0.95), (0.001, 0.8)]:
        r = oc.littles_law(c["shuffled"], "s", "e", t0=t0, t1=t1, tolerance=tol, confidence=conf,
                           in_flight_times=times, in_flight_counts=counts, batch_rows=9_000).value
        ref = assert_little_equal(r, s, e, t0=t0, t1=t1, gauge=(times, counts), tolerance=tol, confidence=conf)
        inside = (times >= t0) & (times <= t1)
        assert r.gauge.samples == inside.sum() == ref.gauge.samples
        m = r.gauge.samples
        assert r.gauge.exact_agreement == (m - 2) / m  # the two boundary samples read one too many
        assert r.gauge.discrepancy == pytest.approx(-2.0 / m / r.gauge.gauge_mean, rel=1e-9)


def test_gauge_on_a_log_with_running_and_skewed_rows(log, sorted_source, shuffled_source):
    s, e = log["t"].to_numpy(), end_array(log)
    times = T0 + np.linspace(-3.0, 650.0, 400)
    counts = np.maximum(qcore.in_flight(s, e, times) + np.tile([0, 1, -1, 0], 100), 0).astype(np.float64)
    for src, br in [(sorted_source, 60_000), (sorted_source, 4_444), (shuffled_source, 6_000)]:
        r = oc.littles_law(src, "t", "end", in_flight_times=times, in_flight_counts=counts, batch_rows=br).value
        assert_little_equal(r, s, e, gauge=(times, counts))
        assert {"running_requests", "negative_durations"} <= set(r.flags)


def test_gauge_errors_are_those_of_the_in_memory_function(mm1_sources):
    c = mm1_sources["faithful"]
    assert_same_gauge_errors(
        lambda **kw: oc.littles_law(c["sorted"], "s", "e", batch_rows=30_000, **kw),
        c["rows"], c["times"], c["counts"],
    )


@pytest.mark.parametrize("k", [0, 1, 2, 17, 5_000, 10**7])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.999])
def test_garwood_is_the_core_interval(k, confidence):
    stats = pytest.importorskip("scipy.stats")
    exposure = 12.5
    lo, hi = _qc_garwood(k, exposure, confidence)
    a = 1.0 - confidence
    assert lo == (0.0 if k == 0 else pytest.approx(stats.chi2.ppf(a / 2, 2 * k) / 2 / exposure, rel=1e-10))
    assert hi == pytest.approx(stats.chi2.ppf(1 - a / 2, 2 * k + 2) / 2 / exposure, rel=1e-10)
    if 2 <= k <= 5_000:  # k arrivals spread over `exposure` seconds: the in-memory rate_ci, bit for bit
        ts = np.linspace(0.0, exposure, k)
        assert qcore.arrival_stats(ts, confidence=confidence).rate_ci == (lo, hi)


def test_garwood_errors():
    from qcore import _qcore

    for k, exposure, confidence, exc, msg in [
        (-1, 1.0, 0.95, ValueError, "k must be an integer in [0, 2^64), got -1"),
        (np.int64(-3), 1.0, 0.95, ValueError, "k must be an integer in [0, 2^64), got -3"),
        (2**64, 1.0, 0.95, ValueError, "k must be an integer in [0, 2^64), got 18446744073709551616"),
        (2.5, 1.0, 0.95, TypeError, "k must be an integer, got 2.5"),
        ("3", 1.0, 0.95, TypeError, "k must be an integer, got '3'"),
        (3, 0.0, 0.95, ValueError, "exposure must be a positive finite number, got 0"),
        (3, float("inf"), 0.95, ValueError, "exposure must be a positive finite number, got inf"),
        (3, float("nan"), 0.95, ValueError, "exposure must be a positive finite number, got NaN"),
        (3, 1.0, 1.0, ValueError, "confidence must be in (0, 1), got 1"),
        (3, 1.0, 0.0, ValueError, "confidence must be in (0, 1), got 0"),
    ]:
        with pytest.raises(exc, match=re.escape(msg)):
            _qc_garwood(k, exposure, confidence)
    assert _qcore.garwood(np.int64(4), 2.0) == _qcore.garwood(4, 2.0, 0.95)
    assert _qc_garwood(2**64 - 1, 1.0, 0.95)[0] == pytest.approx(2.0**64, rel=1e-6)


def _unaligned(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` at an odd address, as an array unpickled from a worker's message can be."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1)
    out[:] = a
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


def test_arrays_at_unaligned_addresses_give_what_aligned_ones_give():
    # (arrays unpickled from a worker's message can be unaligned; the core takes aligned ones)
    rng = np.random.default_rng(4)
    ts = np.sort(rng.uniform(0.0, 600.0, 5_000))
    want = qcore.arrival_stats(ts, window=10.0)
    got = qcore.arrival_stats(_unaligned(ts), window=10.0)
    for f in dataclasses.fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        assert np.array_equal(a, b, equal_nan=True) if isinstance(a, np.ndarray) else (a == b or a != a == b != b), f
    ends = ts + rng.exponential(1.0, ts.size)
    assert qcore.littles_law(_unaligned(ts), _unaligned(ends)) == qcore.littles_law(ts, ends)
    with pytest.raises(ValueError, match="aligned"):  # the core's own check names the argument
        qcore.ArrivalAccumulator().update(_unaligned(ts))


def test_outofcore_is_the_pipelines_analysis_under_its_first_name():
    from qcore import outofcore
    from qcore.pipeline import analysis

    for name in outofcore.__all__:
        assert getattr(outofcore, name) is getattr(analysis, name)
