"""``qcore report`` on a large generated Parquet log against polars' exact per-group quantiles.

Size: ``QCORE_BENCH_REPORT_ROWS`` (default 100 million rows, the issue's size), written once
as Parquet files of 10 million rows into ``QCORE_BENCH_DIR`` (default a directory under the
system temp dir). Run::

    pytest benches/test_bench_report.py --benchmark-only --benchmark-columns=min,mean,max,rounds

Both sides compute p50/p99/p999 of the successful requests' latency per endpoint. qcore's
run is the whole report (data contract, sketches, window counts, Little's law, in-flight
concurrency) in bounded batches; polars' is ``group_by().agg(quantile(..., "lower"))`` on
the same files. Peak memory, wall and CPU time (user + system) of each, measured in a fresh
process, go into extra_info.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

ROWS = int(os.environ.get("QCORE_BENCH_REPORT_ROWS", "100000000"))
CHUNK = 10_000_000
QS = (0.5, 0.99, 0.999)
ENDPOINTS = ["/v1/chat", "/v1/completions", "/v1/embeddings", "/v1/images", "/v1/audio", "/v1/rerank",
             "/v1/moderation", "/v1/tools"]


def _data_dir() -> Path:
    base = Path(os.environ.get("QCORE_BENCH_DIR", Path(tempfile.gettempdir()) / "qcore_bench_report"))
    d = base / f"rows_{ROWS}"
    done = d / "DONE"
    if done.exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261128)
    t = 1.7e9
    left = ROWS
    i = 0
    while left > 0:
        n = min(CHUNK, left)
        gaps = rng.exponential(1 / 2000.0, n)          # 2000 requests/s
        ts = t + np.cumsum(gaps)
        t = float(ts[-1])
        ep = rng.integers(0, len(ENDPOINTS), n)
        lat = rng.lognormal(-2.5, 0.8, n) * (1.0 + ep * 0.25)
        status = np.where(rng.random(n) < 0.01, 503, 200).astype(np.int16)
        pl.DataFrame({
            "timestamp": ts,
            "latency_ms": lat * 1000.0,
            "status": status,
            "endpoint": pl.Series(np.array(ENDPOINTS)[ep]),
        }).write_parquet(d / f"part-{i:03d}.parquet", row_group_size=1_000_000)
        left -= n
        i += 1
    done.write_text(str(ROWS))
    return d


@pytest.fixture(scope="module")
def logs() -> str:
    return str(_data_dir() / "*.parquet")


def qcore_report(glob: str) -> pl.DataFrame:
    from qcore.report import summarize

    rep = summarize(glob, group_by=["endpoint"], progress=False)
    return rep.table()


def qcore_sketches_only(glob: str) -> pl.DataFrame:
    """Just the per-endpoint quantiles, streamed through ``qcore.sketch_groups`` (public API)."""
    import qcore

    lf = pl.scan_parquet(glob).filter(pl.col("status") < 500).select(
        code=pl.col("endpoint").cast(pl.Enum(sorted(ENDPOINTS))).to_physical().cast(pl.Int64),
        latency=pl.col("latency_ms") / 1000.0)
    acc = [qcore.QuantileSketch() for _ in ENDPOINTS]
    for b in lf.collect_batches(chunk_size=4_000_000):
        for i, sk in enumerate(qcore.sketch_groups(b["code"].to_numpy(), b["latency"].to_numpy())):
            acc[i].merge(sk)
    return pl.DataFrame({"endpoint": sorted(ENDPOINTS), **{f"q{q}": [a.quantile(q) for a in acc] for q in QS}})


def polars_exact(glob: str) -> pl.DataFrame:
    return (pl.scan_parquet(glob).filter(pl.col("status") < 500)
            .group_by("endpoint")
            .agg([(pl.col("latency_ms") / 1000.0).quantile(q, "lower").alias(f"q{q}") for q in QS])
            .sort("endpoint").collect())


def _fresh_process(fn: str, glob: str) -> dict[str, float]:
    """Peak RSS (MiB), wall and CPU time (user + system, all threads) of one run in a new process."""
    code = (f"import resource, sys, time; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_bench_report as b; t = time.perf_counter(); b.{fn}({glob!r}); "
            "w = time.perf_counter() - t; r = resource.getrusage(resource.RUSAGE_SELF); "
            "print(r.ru_maxrss, w, r.ru_utime + r.ru_stime)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return {"peak_rss_mib": int(rss) / 1024.0, "fresh_wall_s": float(wall), "fresh_cpu_s": float(cpu)}


def test_results_agree(logs):
    q = qcore_report(logs).filter(pl.col("group") != "all").sort("group")
    p = polars_exact(logs)
    s = qcore_sketches_only(logs)
    for qq, tag in zip(QS, ("p50", "p99", "p999"), strict=True):
        exact = p[f"q{qq}"].to_numpy()
        for est in (q[tag].to_numpy(), s[f"q{qq}"].to_numpy()):
            assert np.all(np.abs(est - exact) <= 0.01 * exact * (1 + 1e-9))


@pytest.mark.benchmark(group="report")
def test_qcore_report(benchmark, logs):
    benchmark.extra_info["rows"] = ROWS
    benchmark.extra_info.update(_fresh_process("qcore_report", logs))
    benchmark.pedantic(qcore_report, args=(logs,), rounds=3 if ROWS <= 20_000_000 else 1, iterations=1)


@pytest.mark.benchmark(group="report")
def test_qcore_sketches_only(benchmark, logs):
    benchmark.extra_info["rows"] = ROWS
    benchmark.extra_info.update(_fresh_process("qcore_sketches_only", logs))
    benchmark.pedantic(qcore_sketches_only, args=(logs,), rounds=3 if ROWS <= 20_000_000 else 1, iterations=1)


@pytest.mark.benchmark(group="report")
def test_polars_exact_group_quantiles(benchmark, logs):
    benchmark.extra_info["rows"] = ROWS
    benchmark.extra_info.update(_fresh_process("polars_exact", logs))
    benchmark.pedantic(polars_exact, args=(logs,), rounds=3 if ROWS <= 20_000_000 else 1, iterations=1)


def test_record(logs, tmp_path):
    # keep the environment in the benchmark JSON readable without pytest-benchmark
    (tmp_path / "env.json").write_text(json.dumps({"rows": ROWS, "files": logs}))
