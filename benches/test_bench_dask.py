"""Scale-out and out-of-core: the same job on 1 and 2 Dask worker processes, and the
out-of-core path's time and peak memory, side by side with the floors in one run.

Run (default size: 20 M requests in 8 Parquet files, about 0.64 GB in memory):

    pytest benches/test_bench_dask.py --benchmark-only --benchmark-group-by=group \
        --benchmark-columns=min,median,max,rounds

Smaller size for a quick run: QCORE_BENCH_DASK_ROWS=2000000.

The job is ``qcore.dask.report_frame`` (per-model quantiles of the latency, window counts
and arrival statistics of the arrivals, Little's law from start/end) over
``dask.dataframe.read_parquet``; its result is checked against the single-machine
result before it is timed. Anchors in the same run:

- ``dask sum`` — ``ddf[cols].sum().compute()`` on the same cluster: one read of the same
  columns through Dask, the floor for any job on it;
- ``qcore in memory`` — ``polars.read_parquet`` then the single-machine qcore calls;
- ``polars read`` — ``polars.read_parquet`` of the columns alone (the read floor).

Peak resident memory (``extra_info``) is measured around one run of each single-process
path with ``benches/peak_memory.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import qcore
from peak_memory import peak_memory
from qcore.pipeline import analysis as oc

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")
from qcore import dask as qd

ROWS = int(os.environ.get("QCORE_BENCH_DASK_ROWS", "20000000"))
FILES = 8
SPAN = 86_400.0
ROUNDS = int(os.environ.get("QCORE_BENCH_ROUNDS", "3"))
BATCH = 500_000
LABEL = f"{ROWS / 1e6:g}M requests"
COLS = ["t", "end", "lat", "model"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    d: Path = tmp_path_factory.mktemp("dask-bench")
    rng = np.random.default_rng(20261128)
    t = np.sort(rng.uniform(0.0, SPAN, ROWS))
    lat = rng.lognormal(-2.0, 1.0, ROWS)
    model = rng.integers(0, 8, ROWS)
    for k, idx in enumerate(np.array_split(np.arange(ROWS), FILES)):
        pl.DataFrame({"t": t[idx], "end": t[idx] + lat[idx], "lat": lat[idx], "model": model[idx]}).write_parquet(
            d / f"part-{k}.parquet", row_group_size=1_000_000
        )
    return str(d / "*.parquet")


@pytest.fixture(scope="module")
def reference(dataset: str) -> dict:
    df = pl.read_parquet(dataset)
    return in_memory(df)


def in_memory(df: pl.DataFrame) -> dict:
    return {
        "gq": qcore.group_quantiles(df, "model", "lat"),
        "wc": qcore.window_counts(df["t"], 1.0),
        "st": qcore.arrival_stats(df["t"], 1.0),
        "ll": qcore.littles_law(df["t"], df["end"]),
    }


def run(benchmark, f, warmup: int = 1, client=None):
    """Timed rounds; with a client, each round starts once the scheduler has released every
    key of the previous one (a resubmitted graph would otherwise reuse results still held)."""
    setup = None if client is None else (lambda: settle(client))
    return benchmark.pedantic(f, rounds=ROUNDS, iterations=1, warmup_rounds=warmup, setup=setup)


def settle(client, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
        time.sleep(0.01)


def check(a: oc.Analysis, ref: dict) -> None:
    assert a.group_quantiles.equals(ref["gq"])
    assert np.array_equal(a.window_counts, ref["wc"])
    assert a.arrival_stats.count == ref["st"].count and a.arrival_stats.peak_rate == ref["st"].peak_rate
    assert a.littles_law.arrivals == ref["ll"].arrivals
    assert abs(a.littles_law.L - ref["ll"].L) <= 1e-12 * ref["ll"].L


def job(ddf) -> oc.Analysis:
    return qd.report_frame(ddf, time="t", value="lat", by="model", start="t", end="end")


@pytest.mark.parametrize("workers", [1, 2])
def test_dask_report_frame(benchmark, dataset, reference, workers):
    benchmark.group = f"dask report_frame, {LABEL}"
    benchmark.name = f"qcore.dask {workers} worker{'s' if workers > 1 else ''}"
    client = qd.client_from_arg(f"local:{workers}")
    try:
        ddf = dd.read_parquet(dataset, columns=COLS)
        check(job(ddf), reference)  # also the warm-up round
        run(benchmark, lambda: job(ddf), warmup=0, client=client)
        benchmark.extra_info["partitions"] = ddf.npartitions
    finally:
        client.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_dask_sum_floor(benchmark, dataset, workers):
    benchmark.group = f"dask report_frame, {LABEL}"
    benchmark.name = f"anchor: dask sum of the columns, {workers} worker{'s' if workers > 1 else ''}"
    client = qd.client_from_arg(f"local:{workers}")
    try:
        ddf = dd.read_parquet(dataset, columns=COLS)
        run(benchmark, lambda: ddf[["t", "end", "lat"]].sum().compute(), client=client)
    finally:
        client.close()


def test_out_of_core(benchmark, dataset, reference):
    benchmark.group = f"one machine, {LABEL}"
    benchmark.name = f"qcore.pipeline.analysis.analyze (batch_rows={BATCH:,})"

    def f() -> oc.Analysis:
        return oc.analyze(dataset, time="t", value="lat", by="model", start="t", end="end", batch_rows=BATCH)

    with peak_memory() as m:
        a = f()  # also the warm-up round
    check(a, reference)
    assert a.read is not None
    benchmark.extra_info["peak_increase_MB"] = round(m.peak_increase_bytes / 1e6, 1)
    benchmark.extra_info["memory_method"] = m.method
    run(benchmark, f, warmup=0)


def test_in_memory_anchor(benchmark, dataset):
    benchmark.group = f"one machine, {LABEL}"
    benchmark.name = "anchor: polars.read_parquet + qcore in memory"
    with peak_memory() as m:
        in_memory(pl.read_parquet(dataset, columns=COLS))
    benchmark.extra_info["peak_increase_MB"] = round(m.peak_increase_bytes / 1e6, 1)
    run(benchmark, lambda: in_memory(pl.read_parquet(dataset, columns=COLS)))


def test_read_floor(benchmark, dataset):
    benchmark.group = f"one machine, {LABEL}"
    benchmark.name = "anchor: polars.read_parquet of the columns"
    run(benchmark, lambda: pl.read_parquet(dataset, columns=COLS))
