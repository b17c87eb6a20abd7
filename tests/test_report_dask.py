"""``qcore report`` on a dask cluster (qcore.report_distributed): its sources, errors,
broken Parquet promises and progress. That it gives the single-machine report to the last
bit, on files cut into any tasks and on any dask DataFrame, is in test_report_equivalence.py."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

pytest.importorskip("pyarrow")
dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from qcore.logs import ColumnDetectionError, ContractViolationError
from qcore.report import summarize
from qcore.report_distributed import summarize as summarize_dask


def raw_log(n: int, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(0, 1800, n))
    lat = rng.lognormal(-2, 0.7, n)
    lat[[17, n // 2]] = -1.0  # two contract violations
    return pl.DataFrame({"timestamp": ts, "latency_s": lat, "endpoint": rng.choice(["/a", "/b", "/c"], n),
                         "status": np.where(rng.random(n) < 0.02, 500, 200)})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("report-dask")
    df = raw_log(30_000)
    for i, idx in enumerate(np.array_split(np.arange(df.height), 3)):
        df[idx].write_parquet(d / f"p{i}.parquet", row_group_size=2_500)
    return str(d / "*.parquet")


def test_dask_dataframe_source_and_default_bin(client):
    raw = raw_log(12_000, seed=9)
    a = summarize(raw, group_by=["endpoint"])
    b = summarize_dask(dd.from_pandas(raw.to_pandas(), npartitions=5, sort=False), group_by=["endpoint"])
    da, db = json.loads(a.to_json()), json.loads(b.to_json())
    da.pop("data"), db.pop("data")  # a frame in memory is fingerprinted by its content
    assert da == db
    assert a.bin == b.bin
    assert [g.little for g in [*a.groups, a.overall]] == [g.little for g in [*b.groups, b.overall]]


def test_errors(client, files):
    with pytest.raises(ColumnDetectionError, match="nope"):
        summarize_dask(files, group_by=["nope"])
    with pytest.raises(ContractViolationError):
        summarize_dask(files, on_violation="refuse")
    with pytest.raises(ValueError, match="bin"):
        summarize_dask(files, bin=0.0)
    with pytest.raises(TypeError, match="source"):
        summarize_dask(42)


@pytest.mark.parametrize("lie", [None, "t0", "s1", "bound"])
def test_parquet_statistics_and_their_broken_promises(client, tmp_path, monkeypatch, lie):
    # Large logs take their extent from the Parquet statistics on both paths; statistics
    # that promise what the rows do not hold fall back to a read of the extent.
    from qcore.report import _stream as R
    from test_report_stream import _assert_same, _write_log, plain_pass

    glob = _write_log(tmp_path, seed=5, late_key=True, zero_last=True)
    kw = {"group_by": ["endpoint"], "exact_limit": 0}
    ref = plain_pass(glob, batch_rows=1500, progress=False, **kw)
    real = R._parquet_extent
    calls = []

    def stats(*a, **k):
        n, t0, s1, bound = real(*a, **k)
        calls.append(lie)
        if lie == "t0":
            return n, t0 - 0.5, s1, bound
        if lie == "s1":
            return n, t0, s1 - 0.5, bound
        if lie == "bound":
            return n, t0, s1, s1  # claims no request ends after the last start
        return n, t0, s1, bound

    monkeypatch.setattr(R, "_parquet_extent", stats)
    got = summarize_dask(glob, task_rows=2_000, **kw)
    assert calls == [lie]
    _assert_same(ref, got)
    assert json.loads(got.to_json())["contract"] == json.loads(summarize(glob, progress=False, **kw).to_json())["contract"]


@pytest.mark.parametrize("exact_limit", [2_000_000, 1_000])  # extent read / Parquet statistics
def test_progress_on_the_cluster_counts_every_task(client, files, exact_limit):
    seen: list[tuple[int, int]] = []
    a = summarize_dask(files, bin=30.0, exact_limit=exact_limit, task_rows=2_500)
    b = summarize_dask(files, bin=30.0, exact_limit=exact_limit, task_rows=2_500,
                       progress=lambda d, t: seen.append((d, t)))
    assert a.to_json() == b.to_json()
    assert [d for d, _ in seen] == list(range(1, len(seen) + 1))
    assert seen[-1][0] == seen[-1][1] and len(seen) % 12 == 0  # 12 tasks a pass, one or two passes


def test_summarize_takes_the_executor(client, files):
    """``summarize(executor="dask")`` is the cluster's report, the default for a dask
    DataFrame; bad executors and dask-only arguments are clear errors."""
    from report_bits import report_bits

    local = summarize(files, group_by=["endpoint"], executor="local")
    on_dask = summarize(files, group_by=["endpoint"], executor="dask", task_rows=4_000, split_every=3)
    assert report_bits(on_dask) == report_bits(local) == report_bits(summarize(files, group_by=["endpoint"]))
    raw = raw_log(6_000, seed=3)
    ddf = dd.from_pandas(raw.to_pandas(), npartitions=3, sort=False)
    by_default = summarize(ddf, group_by=["endpoint"])          # a dask DataFrame runs on dask
    assert report_bits(by_default) == report_bits(summarize_dask(ddf, group_by=["endpoint"]))
    seen: list[tuple[int, int]] = []
    summarize(files, executor="dask", progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    with pytest.raises(ValueError, match="executor must be 'local' or 'dask'"):
        summarize(files, executor="cluster")
    with pytest.raises(ValueError, match="split_every and task_rows apply to executor='dask'"):
        summarize(files, task_rows=10)
    with pytest.raises(ValueError, match="a callable applies to executor='dask'"):
        summarize(files, progress=print)
