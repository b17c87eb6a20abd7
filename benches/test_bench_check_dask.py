"""``qcore check`` rules on one machine and on 1 and 2 Dask worker processes, same data.

Run (default size: 20 M requests in 8 Parquet files of 1 M-row row groups):

    pytest benches/test_bench_check_dask.py --benchmark-only --benchmark-group-by=group \
        --benchmark-columns=min,median,max,rounds

Smaller size for a quick run: QCORE_BENCH_DASK_ROWS=2000000.

The rules: p99 and mean latency per model, error rate per model, arrival rate per model,
burstiness over the last hour, Little's law over the last 30 minutes, freshness, and a
multiwindow burn-rate SLO. Every timed job is first checked against the single-machine
decision table (equal value for value, evidence included); that check is also the warm-up.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("distributed")
import qcore.rules as qr
from qcore import dask as qd
from qcore.logs import read_logs
from qcore.rules import driver as qrd
from test_bench_dask import settle

ROWS = int(os.environ.get("QCORE_BENCH_DASK_ROWS", "20000000"))
FILES = 8
SPAN = 86_400.0
ROUNDS = int(os.environ.get("QCORE_BENCH_ROUNDS", "3"))
LABEL = f"{ROWS / 1e6:g}M requests"
NOW = SPAN + 60.0


def _r(**kw):
    return {"version": "1", "owner": "sre", **kw}


RULES = [
    _r(id="p99", metric="p99", threshold=2.0, group_by=["model"]),
    _r(id="mean", metric="latency_mean", threshold=0.5, group_by=["model"]),
    _r(id="err", metric="error_rate", threshold=0.01, group_by=["model"]),
    _r(id="rate", metric="arrival_rate", threshold=10.0, group_by=["model"], decide_on="lower"),
    _r(id="burst", metric="burstiness", threshold=2.0, bin=10.0, window="1h"),
    _r(id="little", metric="littles_gap", threshold=0.02, window="30m"),
    _r(id="fresh", metric="freshness", max_age="10m"),
]
SLOS = [{"id": "avail", "version": "1", "owner": "sre", "objective": 0.999}]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    d: Path = tmp_path_factory.mktemp("check-bench")
    rng = np.random.default_rng(20261128)
    t = np.sort(rng.uniform(0.0, SPAN, ROWS))
    lat = rng.lognormal(-2.0, 1.0, ROWS)
    model = rng.integers(0, 8, ROWS)
    status = np.where(rng.random(ROWS) < 0.005, 500, 200)
    for k, idx in enumerate(np.array_split(np.arange(ROWS), FILES)):
        pl.DataFrame({"ts": t[idx], "latency": lat[idx], "model": model[idx], "status": status[idx]}).write_parquet(
            d / f"part-{k}.parquet", row_group_size=1_000_000
        )
    return str(d / "*.parquet")


def single_machine(path: str) -> pl.DataFrame:
    logs = read_logs(path, keep=["model"])
    return pl.concat([qr.evaluate(logs, RULES, now=NOW), qr.evaluate_slos(logs, SLOS, now=NOW)])


@pytest.fixture(scope="module")
def reference(dataset: str) -> pl.DataFrame:
    return single_machine(dataset)


def run(benchmark, f, warmup: int = 0, client=None):
    setup = None if client is None else (lambda: settle(client))
    return benchmark.pedantic(f, rounds=ROUNDS, iterations=1, warmup_rounds=warmup, setup=setup)


def test_single_machine(benchmark, dataset, reference):
    benchmark.group = f"qcore check rules, {LABEL}"
    benchmark.name = "one machine: read_logs + evaluate + evaluate_slos"
    run(benchmark, lambda: single_machine(dataset))


@pytest.mark.parametrize("workers,polars_threads,persist", [(1, None, False), (2, None, False), (1, 1, False),
                                                            (2, None, True)])
def test_dask(benchmark, dataset, reference, workers, polars_threads, persist):
    """``local:N`` as the command line starts it (each worker's polars pool gets cores // N
    threads), one worker limited to one polars thread (the per-worker scaling), and
    ``persist=True`` (the validated rows stay in the workers' memory between passes)."""
    benchmark.group = f"qcore check rules, {LABEL}"
    name = f"qcore.rules.driver, {workers} worker{'s' if workers > 1 else ''}"
    if polars_threads is None:
        client = qd.client_from_arg(f"local:{workers}")
    else:
        from distributed import Client

        name += f", {polars_threads} polars thread"
        client = Client(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                        env={"POLARS_MAX_THREADS": str(polars_threads)})
    if persist:
        name += ", persist"
    benchmark.name = name
    try:
        def job() -> pl.DataFrame:
            return qrd.evaluate(dataset, RULES, slos=SLOS, now=NOW, persist=persist).decisions

        assert_frame_equal(job(), reference)  # also the warm-up round
        run(benchmark, job, client=client)
        res = qrd.evaluate(dataset, RULES, slos=SLOS, now=NOW)
        benchmark.extra_info["tasks"] = res.tasks
        benchmark.extra_info["passes"] = res.passes
        benchmark.extra_info["polars_threads"] = client.run(lambda: __import__("polars").thread_pool_size())
    finally:
        client.close()


# --------------------------------------------------------------------------------------
# qcore report: one machine vs 1 and 2 workers


def test_report_single_machine(benchmark, dataset):
    from qcore.report import summarize

    benchmark.group = f"qcore report, {LABEL}"
    benchmark.name = "one machine: qcore.report.summarize"
    run(benchmark, lambda: summarize(dataset, group_by=["model"], progress=False))


@pytest.mark.parametrize("workers", [1, 2])
def test_report_dask(benchmark, dataset, workers):
    from qcore.report import summarize
    from qcore.report_distributed import summarize as summarize_dask

    benchmark.group = f"qcore report, {LABEL}"
    benchmark.name = f"qcore.report_distributed, {workers} worker{'s' if workers > 1 else ''}"
    ref = summarize(dataset, group_by=["model"], progress=False)
    client = qd.client_from_arg(f"local:{workers}")
    try:
        def job():
            return summarize_dask(dataset, group_by=["model"])

        rep = job()  # also the warm-up round
        assert rep.to_text() == ref.to_text()
        assert [g.sketch.to_bytes() for g in rep.groups] == [g.sketch.to_bytes() for g in ref.groups]
        run(benchmark, job, client=client)
    finally:
        client.close()
