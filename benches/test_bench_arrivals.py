"""Arrival counts, arrival statistics and Little's law, side by side with the best plain
numpy and polars implementations of the same computation, in one run.

Run (sizes of the issue: 100 M timestamps, 10 M requests):

    pytest benches/test_bench_arrivals.py --benchmark-only --benchmark-group-by=group \
        --benchmark-columns=min,median,max,rounds

Smaller sizes for a quick run: QCORE_BENCH_ARRIVALS_N=10000000 QCORE_BENCH_LITTLE_N=1000000.
Every competitor is checked once against qcore's answer before it is timed, so the
comparison is between identical computations. ``numpy.sum`` of the same array is the
floor (one read of the input).
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest

import qcore

N_TS = int(os.environ.get("QCORE_BENCH_ARRIVALS_N", "100000000"))
N_REQ = int(os.environ.get("QCORE_BENCH_LITTLE_N", "10000000"))
SPAN = 86_400.0  # one day of traffic
WINDOW = 1.0
ROUNDS = int(os.environ.get("QCORE_BENCH_ROUNDS", "3"))
TS = f"{N_TS / 1e6:g}M timestamps"
REQ = f"{N_REQ / 1e6:g}M requests"


def run(benchmark, f):
    return benchmark.pedantic(f, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.fixture(scope="module")
def sorted_ts():
    rng = np.random.default_rng(20261128)
    return np.sort(rng.uniform(0.0, SPAN, N_TS))


@pytest.fixture(scope="module")
def unsorted_ts(sorted_ts):
    rng = np.random.default_rng(1)
    out = sorted_ts.copy()
    rng.shuffle(out)
    return out


# ----------------------------------------------------------------------------- competitors
def np_counts_bincount(ts):
    start = ts.min()
    nb = int(np.floor((ts.max() - start) / WINDOW)) + 1
    return np.bincount(np.floor((ts - start) / WINDOW).astype(np.int64), minlength=nb)


def np_counts_searchsorted(ts):
    # sorted input only: window edges located by binary search
    start = ts[0]
    nb = int(np.floor((ts[-1] - start) / WINDOW)) + 1
    edges = start + WINDOW * np.arange(nb + 1)
    return np.diff(np.searchsorted(ts, edges, side="left"))


def pl_counts_floor(df):
    # window index per row, counted by a (multi-threaded) group_by; empty windows are absent
    start = df["t"].min()
    return (
        df.lazy()
        .select(((pl.col("t") - start) / WINDOW).floor().cast(pl.Int64).alias("k"))
        .group_by("k")
        .len()
        .collect()
    )


def pl_counts_dynamic(df_dt):
    # sorted input only: group_by_dynamic on a Datetime column (µs), 1 s windows
    return (
        df_dt.lazy()
        .group_by_dynamic("dt", every="1s", closed="left", label="left")
        .agg(pl.len())
        .collect()
    )


def np_stats(ts, need_sort):
    x = np.sort(ts) if need_sort else ts
    n = x.size
    dur = x[-1] - x[0]
    nb = int(np.floor(dur / WINDOW))
    k = np.floor((x - x[0]) / WINDOW).astype(np.int64)
    c = np.bincount(k[k < nb], minlength=nb)
    mean = c.mean()
    g = np.diff(x)
    return {
        "rate": n / dur,
        "peak_to_mean": c.max() / mean,
        "index_of_dispersion": c.var() / mean,
        "cv": g.std() / g.mean(),
    }


def pl_stats(df, need_sort):
    lf = df.lazy()
    if need_sort:
        lf = lf.sort("t")
    first = pl.col("t").first()
    dur = pl.col("t").last() - first
    base = lf.select(
        n=pl.len(),
        dur=dur,
        cv=pl.col("t").diff().std(ddof=0) / pl.col("t").diff().mean(),
    ).collect()
    n, d = base["n"][0], base["dur"][0]
    nb = int(np.floor(d / WINDOW))
    counts = (
        lf.select(((pl.col("t") - first) / WINDOW).floor().cast(pl.Int64).alias("k"))
        .filter(pl.col("k") < nb)
        .group_by("k")
        .len()
        .select(
            mx=pl.col("len").max(),
            s=pl.col("len").sum(),
            s2=(pl.col("len").cast(pl.Float64) ** 2).sum(),
        )
        .collect()
    )
    mean = counts["s"][0] / nb
    var = counts["s2"][0] / nb - mean * mean  # includes the empty windows
    return {
        "rate": n / d,
        "peak_to_mean": counts["mx"][0] / mean,
        "index_of_dispersion": var / mean,
        "cv": base["cv"][0],
    }


# ----------------------------------------------------------------------------- window counts
@pytest.mark.benchmark(group=f"window_counts sorted ({TS})")
class TestWindowCountsSorted:
    def test_floor_numpy_sum(self, benchmark, sorted_ts):
        run(benchmark, lambda: np.sum(sorted_ts))

    def test_qcore(self, benchmark, sorted_ts):
        out = run(benchmark, lambda: qcore.window_counts(sorted_ts, WINDOW))
        assert out.sum() == sorted_ts.size

    def test_numpy_bincount(self, benchmark, sorted_ts):
        ref = qcore.window_counts(sorted_ts, WINDOW)
        out = run(benchmark, lambda: np_counts_bincount(sorted_ts))
        np.testing.assert_array_equal(out, ref)

    def test_numpy_searchsorted(self, benchmark, sorted_ts):
        ref = qcore.window_counts(sorted_ts, WINDOW)
        out = run(benchmark, lambda: np_counts_searchsorted(sorted_ts))
        # searchsorted on edges start + k·w may put a value sitting on an edge
        # differently from floor((t - start)/w); identical totals, near-identical counts
        assert out.sum() == ref.sum() and np.abs(out - ref).sum() <= 2 * 10

    def test_polars_floor_group_by(self, benchmark, sorted_ts):
        df = pl.DataFrame({"t": sorted_ts})
        ref = qcore.window_counts(sorted_ts, WINDOW)
        out = run(benchmark, lambda: pl_counts_floor(df))
        assert out["len"].sum() == ref.sum() and out.height == np.count_nonzero(ref)

    def test_polars_group_by_dynamic(self, benchmark, sorted_ts):
        df = pl.DataFrame(
            {
                "dt": pl.Series((sorted_ts * 1e6).astype(np.int64)).cast(
                    pl.Datetime("us")
                )
            }
        )
        out = run(benchmark, lambda: pl_counts_dynamic(df))
        assert out["len"].sum() == sorted_ts.size
        ref = qcore.window_counts(
            sorted_ts, WINDOW, start=0.0
        )  # polars windows start at 0 s
        assert out.height == np.count_nonzero(ref)


@pytest.mark.benchmark(group=f"window_counts unsorted ({TS})")
class TestWindowCountsUnsorted:
    def test_floor_numpy_sum(self, benchmark, unsorted_ts):
        run(benchmark, lambda: np.sum(unsorted_ts))

    def test_qcore(self, benchmark, unsorted_ts):
        out = run(benchmark, lambda: qcore.window_counts(unsorted_ts, WINDOW))
        assert out.sum() == unsorted_ts.size

    def test_numpy_bincount(self, benchmark, unsorted_ts):
        ref = qcore.window_counts(unsorted_ts, WINDOW)
        out = run(benchmark, lambda: np_counts_bincount(unsorted_ts))
        np.testing.assert_array_equal(out, ref)

    def test_polars_floor_group_by(self, benchmark, unsorted_ts):
        df = pl.DataFrame({"t": unsorted_ts})
        ref = qcore.window_counts(unsorted_ts, WINDOW)
        out = run(benchmark, lambda: pl_counts_floor(df))
        assert out["len"].sum() == ref.sum() and out.height == np.count_nonzero(ref)


# ----------------------------------------------------------------------------- arrival stats
def _check_stats(got, s):
    assert got["rate"] == pytest.approx(s.rate, rel=1e-9)
    assert got["peak_to_mean"] == pytest.approx(s.peak_to_mean, rel=1e-9)
    assert got["index_of_dispersion"] == pytest.approx(s.index_of_dispersion, rel=1e-6)
    assert got["cv"] == pytest.approx(s.cv_interarrival, rel=1e-6)


@pytest.mark.benchmark(group=f"arrival_stats sorted ({TS})")
class TestArrivalStatsSorted:
    def test_qcore(self, benchmark, sorted_ts):
        s = run(benchmark, lambda: qcore.arrival_stats(sorted_ts, WINDOW))
        assert s.count == sorted_ts.size

    def test_numpy(self, benchmark, sorted_ts):
        s = qcore.arrival_stats(sorted_ts, WINDOW)
        _check_stats(run(benchmark, lambda: np_stats(sorted_ts, need_sort=False)), s)

    def test_polars(self, benchmark, sorted_ts):
        df = pl.DataFrame({"t": sorted_ts})
        s = qcore.arrival_stats(sorted_ts, WINDOW)
        _check_stats(run(benchmark, lambda: pl_stats(df, need_sort=False)), s)


@pytest.mark.benchmark(group=f"arrival_stats unsorted ({TS})")
class TestArrivalStatsUnsorted:
    def test_qcore(self, benchmark, unsorted_ts):
        s = run(benchmark, lambda: qcore.arrival_stats(unsorted_ts, WINDOW))
        assert s.count == unsorted_ts.size

    def test_numpy(self, benchmark, unsorted_ts):
        s = qcore.arrival_stats(unsorted_ts, WINDOW)
        _check_stats(run(benchmark, lambda: np_stats(unsorted_ts, need_sort=True)), s)

    def test_polars(self, benchmark, unsorted_ts):
        df = pl.DataFrame({"t": unsorted_ts})
        s = qcore.arrival_stats(unsorted_ts, WINDOW)
        _check_stats(run(benchmark, lambda: pl_stats(df, need_sort=True)), s)


# ----------------------------------------------------------------------------- Little's law
@pytest.fixture(scope="module")
def requests():
    rng = np.random.default_rng(7)
    start = np.sort(rng.uniform(0.0, SPAN, N_REQ))
    end = start + rng.lognormal(0.0, 1.0, N_REQ)
    return start, end


T0, T1 = 3_600.0, SPAN - 3_600.0


def np_little(start, end):
    clipped = np.clip(np.minimum(end, T1) - np.maximum(start, T0), 0.0, None).sum()
    inside = (start >= T0) & (start < T1)
    n = np.count_nonzero(inside)
    w = (end - start)[inside].mean()
    span = T1 - T0
    return {"L": clipped / span, "lambda_w": n / span * w}


def pl_little(df):
    span = T1 - T0
    inside = (pl.col("s") >= T0) & (pl.col("s") < T1)
    out = (
        df.lazy()
        .select(
            clipped=(
                pl.min_horizontal(pl.col("e"), pl.lit(T1))
                - pl.max_horizontal(pl.col("s"), pl.lit(T0))
            )
            .clip(lower_bound=0.0)
            .sum(),
            n=inside.sum(),
            w=(pl.col("e") - pl.col("s")).filter(inside).mean(),
        )
        .collect()
    )
    return {"L": out["clipped"][0] / span, "lambda_w": out["n"][0] / span * out["w"][0]}


@pytest.mark.benchmark(group=f"littles_law ({REQ})")
class TestLittlesLaw:
    def test_floor_numpy_sum(self, benchmark, requests):
        s, e = requests
        run(benchmark, lambda: (np.sum(s), np.sum(e)))

    def test_qcore(self, benchmark, requests):
        s, e = requests
        r = run(benchmark, lambda: qcore.littles_law(s, e, t0=T0, t1=T1))
        assert r.arrivals > 0

    def test_numpy(self, benchmark, requests):
        s, e = requests
        r = qcore.littles_law(s, e, t0=T0, t1=T1)
        got = run(benchmark, lambda: np_little(s, e))
        assert got["L"] == pytest.approx(r.L, rel=1e-9)
        assert got["lambda_w"] == pytest.approx(r.lambda_w, rel=1e-9)

    def test_polars(self, benchmark, requests):
        s, e = requests
        df = pl.DataFrame({"s": s, "e": e})
        r = qcore.littles_law(s, e, t0=T0, t1=T1)
        got = run(benchmark, lambda: pl_little(df))
        assert got["L"] == pytest.approx(r.L, rel=1e-9)
        assert got["lambda_w"] == pytest.approx(r.lambda_w, rel=1e-9)
