"""qcore.dask on a real dask.distributed LocalCluster (2 worker processes): the results
equal the single-machine ones, byte for byte for sketches and counts."""

from __future__ import annotations

import itertools
import os

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("pyarrow")
dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import qcore
from qcore import dask as qd
from qcore.pipeline import analysis as oc
from test_outofcore import (
    T0,
    N,
    assert_arrival_equal,
    assert_little_equal,
    assert_same_gauge_errors,
    check_gauge_case,
    end_array,
    make_log,
    make_mm1_log,
    mm1_gauge_cases,
    write_dataset,
)


@pytest.fixture(scope="module")
def log() -> pl.DataFrame:
    return make_log()


@pytest.fixture(scope="module")
def pdf(log):
    return log.to_pandas()


@pytest.fixture(scope="module")
def frames(pdf, client):
    """The same rows cut three ways: 7 time-ordered partitions, 5 partitions of shuffled
    rows (not in time order: forces the time shuffle), and one partition."""
    shuffled = pdf.sample(frac=1.0, random_state=5).reset_index(drop=True)
    return {
        "time_ordered": dd.from_pandas(pdf, npartitions=7, sort=False),
        "shuffled": dd.from_pandas(shuffled, npartitions=5, sort=False),
        "single": dd.from_pandas(pdf, npartitions=1, sort=False),
    }


def test_cluster_has_two_worker_processes(client):
    pids = client.run(os.getpid)
    assert len(pids) == 2
    assert os.getpid() not in pids.values() and len(set(pids.values())) == 2
    # a second client on the same scheduler, by address
    other = qd.client_from_arg(client.scheduler.address)
    try:
        assert len(other.scheduler_info(n_workers=-1)["workers"]) == 2
    finally:
        other.close()


def test_partition_boundaries_cut_windows_and_requests(frames, pdf):
    parts = [p.compute() for p in frames["time_ordered"].to_delayed()]
    assert len(parts) == 7
    cut_window = cut_request = 0
    for a, b in itertools.pairwise(parts):
        last, first = a["t"].max(), b["t"].min()
        cut_window += int(np.floor(last - T0) == np.floor(first - T0))
        cut_request += int((a["end"] > first).sum())
    assert cut_window >= 3  # 1-s windows with rows in two partitions
    assert cut_request >= 6  # requests in flight across a boundary


@pytest.mark.parametrize("cut", ["time_ordered", "shuffled", "single"])
def test_group_sketches_same_bytes(cut, frames, log):
    gs = qd.group_sketches(frames[cut], ["model", "replica"], "lat", split_every=2)
    ref_frame = log.with_columns((pl.struct("model", "replica").rank("dense").cast(pl.Int64) - 1).alias("code"))
    keys = ref_frame.select("model", "replica", "code").unique("code").sort("code").rows()
    ref = qcore.sketch_groups(ref_frame["code"], ref_frame["lat"])
    assert len(gs) == len(keys) == 12
    for (m, r, code) in keys:
        assert gs[(m, r)].to_bytes() == ref[code].to_bytes()
    out = qd.group_quantiles(frames[cut], ["model", "replica"], "lat", quantiles=(0.0, 0.5, 0.99, 0.999, 1.0))
    assert_frame_equal(out, qcore.group_quantiles(log, ["model", "replica"], "lat",
                                                  quantiles=(0.0, 0.5, 0.99, 0.999, 1.0)))


@pytest.mark.parametrize("cut", ["time_ordered", "shuffled"])
def test_window_counts_same_counts(cut, frames, log):
    ts = log["t"].to_numpy()
    for window, start, end in [(1.0, None, None), (0.37, None, None), (10.0, T0 + 50.0, None),
                               (5.0, T0 - 20.0, T0 + 700.0), (3.0, T0 + 100.0, T0 + 200.0)]:
        got = qd.window_counts(frames[cut], "t", window, start=start, end=end, split_every=3)
        np.testing.assert_array_equal(got, qcore.window_counts(ts, window, start=start, end=end))


@pytest.mark.parametrize("cut", ["time_ordered", "shuffled", "single"])
def test_arrival_stats(cut, frames, log):
    ts = log["t"].to_numpy()
    for window in (1.0, 13.0):
        got = qd.arrival_stats(frames[cut], "t", window=window, split_every=2)
        assert_arrival_equal(got, ts, window)


@pytest.mark.parametrize("cut", ["time_ordered", "shuffled", "single"])
def test_littles_law(cut, frames, log):
    s, e = log["t"].to_numpy(), end_array(log)
    got = qd.littles_law(frames[cut], "t", "end")
    assert_little_equal(got, s, e)
    t0, t1 = T0 + 100.0, T0 + 160.5
    got = qd.littles_law(frames[cut], "t", "end", t0=t0, t1=t1, split_every=2)
    assert got.in_flight_t0 > 0 and got.in_flight_t1 > 0
    assert_little_equal(got, s, e, t0=t0, t1=t1)


def test_in_flight(frames, log):
    at = T0 + np.linspace(-5.0, 700.0, 301)
    ref = qcore.in_flight(log["t"], end_array(log), at)
    for f in frames.values():
        np.testing.assert_array_equal(qd.in_flight(f, "t", "end", at), ref)


def test_every_partitioning_gives_identical_results(frames):
    """The distributed results do not depend on how the rows are cut, to the last bit."""
    got = [qd.report_frame(f, time="t", value="lat", by="model", start="t", end="end") for f in frames.values()]
    ref = got[0]
    for a in got[1:]:
        assert_frame_equal(a.group_quantiles, ref.group_quantiles)
        assert {k: s.to_bytes() for k, s in a.group_sketches.items()} == {
            k: s.to_bytes() for k, s in ref.group_sketches.items()
        }
        np.testing.assert_array_equal(a.window_counts, ref.window_counts)
        assert a.arrival_stats.as_dict() == ref.arrival_stats.as_dict()
        assert a.littles_law == ref.littles_law


def test_report_frame_matches_single_machine_and_out_of_core(frames, log, tmp_path):
    a = qd.report_frame(frames["shuffled"], time="t", value="lat", start="t", end="end", window=2.0)
    np.testing.assert_array_equal(a.window_counts, qcore.window_counts(log["t"], 2.0))
    assert_arrival_equal(a.arrival_stats, log["t"].to_numpy(), 2.0)
    assert_little_equal(a.littles_law, log["t"].to_numpy(), end_array(log))
    whole = qcore.QuantileSketch(0.01)
    whole.add(log["lat"])
    assert a.group_sketches[("all",)].to_bytes() == whole.to_bytes()
    src = write_dataset(log, tmp_path / "ds", files=3)
    b = oc.analyze(src, time="t", value="lat", start="t", end="end", window=2.0, batch_rows=9_000)
    assert_frame_equal(a.group_quantiles, b.group_quantiles)
    assert a.arrival_stats.as_dict() == b.arrival_stats.as_dict()
    assert a.littles_law == b.littles_law


def test_read_parquet_files(log, tmp_path, client):
    src = write_dataset(log, tmp_path / "pq", files=5, row_group=3_000)
    ddf = qd.read(src)
    assert ddf.npartitions >= 5
    out = qd.group_quantiles(ddf, "model", "lat")
    assert_frame_equal(out, qcore.group_quantiles(log, "model", "lat"))
    assert_little_equal(qd.littles_law(ddf, "t", "end"), log["t"].to_numpy(), end_array(log))
    csv = tmp_path / "log.csv"
    log.select("t", "lat").write_csv(csv)
    np.testing.assert_array_equal(qd.window_counts(qd.read(str(csv)), "t", 1.0), qcore.window_counts(log["t"], 1.0))


def test_errors(frames, pdf, client):
    f = frames["time_ordered"]
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        qd.window_counts(f, "nope", 1.0)
    with pytest.raises(ValueError, match="window must be a positive"):
        qd.arrival_stats(f, "t", window=-1.0)
    with pytest.raises(ValueError, match="split_every"):
        qd.littles_law(f, "t", "end", split_every=1)
    with pytest.raises(TypeError, match="dask DataFrame"):
        qd.window_counts(pdf, "t", 1.0)
    bad = pdf.copy()
    bad.loc[N - 3, "t"] = np.nan
    with pytest.raises(ValueError, match=r"timestamps contains NaN at index \d+ of partition 2"):
        qd.arrival_stats(dd.from_pandas(bad, npartitions=3, sort=False), "t")
    bad = pdf.copy()
    bad.loc[10, "end"] = np.inf
    with pytest.raises(ValueError, match="end contains inf at index 10 of partition 0"):
        qd.littles_law(dd.from_pandas(bad, npartitions=3, sort=False), "t", "end")
    tiny = dd.from_pandas(pdf.iloc[:1], npartitions=1)
    with pytest.raises(ValueError, match="at least two arrivals"):
        qd.arrival_stats(tiny, "t")
    with pytest.raises(ValueError, match="local:N needs N"):
        qd.client_from_arg("local:x")
    with pytest.raises(ValueError, match="scheduler address"):
        qd.client_from_arg("  ")
    with pytest.raises(ValueError, match="start and end"):
        qd.report_frame(f, start="t")
    with pytest.raises(TypeError, match="must be numeric"):
        qd.window_counts(f, "model", 1.0)


def test_real_trace(shared_data, client):
    """Azure LLM inference trace (CC BY 4.0, Patel et al., ISCA 2024), in 4 partitions."""
    path = shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv"
    df = pl.read_csv(path).select(
        (pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S%.f").dt.epoch("us") / 1e6).alias("t"),
        pl.col("ContextTokens").cast(pl.Float64).alias("tokens"),
        pl.col("GeneratedTokens").cast(pl.Float64).alias("gen"),
    )
    ddf = dd.from_pandas(df.to_pandas(), npartitions=4, sort=False)
    assert_arrival_equal(qd.arrival_stats(ddf, "t", window=1.0), df["t"].to_numpy(), 1.0)
    np.testing.assert_array_equal(qd.window_counts(ddf, "t", 0.5), qcore.window_counts(df["t"], 0.5))
    gs = qd.group_sketches(ddf.assign(k=1), "k", "tokens")
    whole = qcore.QuantileSketch(0.01)
    whole.add(df["tokens"])
    assert gs[(1,)].to_bytes() == whole.to_bytes()


def test_group_quantiles_null_keys_weights_and_null_values(client):
    rng = np.random.default_rng(1)
    n = 5_000
    df = pl.DataFrame(
        {"k": pl.Series(rng.choice(["a", "b", None], n)), "v": rng.exponential(1.0, n),
         "w": rng.integers(0, 5, n).astype(float)}
    ).with_columns(pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise(pl.col("v")).alias("v"))
    ddf = dd.from_pandas(df.to_pandas(), npartitions=4, sort=False)
    ref = qcore.group_quantiles(df, "k", "v", weights="w", drop_nulls=True)
    assert ref["k"].null_count() == 1
    assert_frame_equal(qd.group_quantiles(ddf, "k", "v", weights="w", drop_nulls=True), ref)
    with pytest.raises(ValueError, match="null"):
        qd.group_quantiles(ddf, "k", "v")


# --------------------------------------------------------------------------------------
# Little's law against an in-flight gauge


@pytest.fixture(scope="module")
def mm1_cases(client) -> dict:
    """Each gauge case's rows cut three ways: one partition, 6 time-ordered partitions,
    5 partitions of shuffled rows."""
    out = {}
    for name, (rows, times, counts) in mm1_gauge_cases(make_mm1_log()).items():
        pdf = rows.to_pandas()
        shuffled = pdf.sample(frac=1.0, random_state=11).reset_index(drop=True)
        out[name] = {
            "rows": rows,
            "times": times,
            "counts": counts,
            "frames": {
                "single": dd.from_pandas(pdf, npartitions=1, sort=False),
                "time_ordered": dd.from_pandas(pdf, npartitions=6, sort=False),
                "shuffled": dd.from_pandas(shuffled, npartitions=5, sort=False),
            },
        }
    return out


@pytest.mark.parametrize("case", ["faithful", "dropped", "offset"])
@pytest.mark.parametrize("cut", ["single", "time_ordered", "shuffled"])
def test_littles_law_with_gauge_equals_single_machine(case, cut, mm1_cases):
    c = mm1_cases[case]
    got = qd.littles_law(c["frames"][cut], "s", "e", in_flight_times=c["times"], in_flight_counts=c["counts"],
                         split_every=2)
    check_gauge_case(case, got, c["rows"], c["times"], c["counts"])


def test_gauge_in_a_window_with_partitions_cut_through_requests(mm1_cases):
    c = mm1_cases["dropped"]
    s, e = c["rows"]["s"].to_numpy(), c["rows"]["e"].to_numpy()
    t0, t1 = float(s[2_500]) + 1e-3, float(s[40_000]) + 1e-3  # requests in flight at both ends
    times = np.concatenate([c["times"], [t1, t0]])  # boundary samples count, out of time order
    counts = np.concatenate([c["counts"], [3.0, 4.0]])
    f = c["frames"]["time_ordered"]
    parts = [p.compute() for p in f.to_delayed()]
    assert sum(int((a["e"] > b["s"].min()).sum()) for a, b in itertools.pairwise(parts)) >= 3
    for cut in ("time_ordered", "shuffled"):
        got = qd.littles_law(c["frames"][cut], "s", "e", t0=t0, t1=t1, tolerance=0.03, confidence=0.9,
                             in_flight_times=pl.Series(times), in_flight_counts=counts.tolist(), split_every=3)
        ref = assert_little_equal(got, s, e, t0=t0, t1=t1, gauge=(times, counts), tolerance=0.03, confidence=0.9)
        assert got.gauge.samples == ((times >= t0) & (times <= t1)).sum() == ref.gauge.samples
        assert "gauge_discrepancy" in got.flags and got.in_flight_t0 > 0 and got.in_flight_t1 > 0


@pytest.mark.parametrize("cut", ["time_ordered", "shuffled", "single"])
def test_gauge_on_a_log_with_running_and_skewed_rows(cut, frames, log):
    s, e = log["t"].to_numpy(), end_array(log)
    times = T0 + np.linspace(-3.0, 650.0, 400)
    counts = np.maximum(qcore.in_flight(s, e, times) + np.tile([0, 1, -1, 0], 100), 0).astype(np.float64)
    got = qd.littles_law(frames[cut], "t", "end", in_flight_times=times, in_flight_counts=counts)
    assert_little_equal(got, s, e, gauge=(times, counts))
    assert {"running_requests", "negative_durations"} <= set(got.flags)


def test_gauge_errors_are_those_of_the_single_machine_function(mm1_cases):
    c = mm1_cases["faithful"]
    assert_same_gauge_errors(
        lambda **kw: qd.littles_law(c["frames"]["time_ordered"], "s", "e", **kw),
        c["rows"], c["times"], c["counts"],
    )


def test_gauge_adds_no_read(mm1_cases, monkeypatch):
    """With a gauge, pass 2 is still one task per partition (the gauge's counts come from
    the same read as the sums)."""
    import dask.base

    c = mm1_cases["faithful"]
    f = c["frames"]["time_ordered"]
    seen = []
    real = dask.base.compute

    def spy(*graphs, **kw):
        seen.append(graphs)
        return real(*graphs, **kw)

    monkeypatch.setattr(dask.base, "compute", spy)
    qd.littles_law(f, "s", "e", in_flight_times=c["times"], in_flight_counts=c["counts"])
    assert len(seen) == 2  # pass 1 and pass 2
    graph = dict(seen[1][0].__dask_graph__())
    partition_tasks = [k for k in graph if isinstance(k, tuple)]  # the reads of the partitions
    assert len(partition_tasks) == f.npartitions
    assert sum("_dask_part" in str(k) for k in graph) == f.npartitions
