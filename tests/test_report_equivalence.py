"""One report whatever the executor: in memory, batched at any batch size (one row
included), on a real two-process Dask cluster and on any dask DataFrame give the same
report to the last bit (:func:`report_bits`), on random logs and on logs of every shape —
``Report.to_json()``, every group's sketch bytes, window counts (all and failed), in-flight curve
and peaks, the series over time (latency, TTFT, TPOT, tokens), burstiness and Little's-law
values (exact sums of the core, merged exactly)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcore.report import summarize
from report_bits import report_bits


def _log(n: int, seed: int) -> pl.DataFrame:
    """Groups, errors, incomplete rows (no status), missing latencies and two rows that
    break the contract (negative latency)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(1.7e9, 1.7e9 + 900.0, n))
    lat = rng.lognormal(-2.0, 0.8, n).tolist()
    status = np.where(rng.random(n) < 0.05, 503, 200).tolist()
    for j in rng.integers(0, n, 20):
        lat[j] = None
    for j in rng.integers(0, n, 6):
        status[j] = None
    lat[3] = lat[n // 2] = -1.0
    ttft = [None if v is None else max(v, 0.0) * 0.3 for v in lat]
    return pl.DataFrame({"timestamp": ts, "latency_s": pl.Series(lat, dtype=pl.Float64),
                         "status": pl.Series(status, dtype=pl.Int64),
                         "endpoint": rng.choice(["/a", "/b", "/c"], n, p=[0.6, 0.3, 0.1]),
                         "ttft_s": pl.Series(ttft, dtype=pl.Float64),
                         "prompt_tokens": rng.integers(1, 4000, n), "completion_tokens": rng.integers(1, 800, n)})


def _bits(rep: Any) -> tuple[Any, ...]:
    return report_bits(rep)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("equivalence")
    df = _log(1_500, seed=11)
    for i, idx in enumerate(np.array_split(np.arange(df.height), 3)):
        df[idx].write_parquet(d / f"part-{i}.parquet", row_group_size=200)
    return str(d / "*.parquet")


EXECUTORS = ["batched-1", "batched-7", "batched-1000", "batched-default", "dask"]


@pytest.mark.parametrize("exact_limit", [2_000_000, 0])   # raw columns kept / the batch kernel alone
@pytest.mark.parametrize("group_by", [("endpoint",), ()])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_executor_gives_the_in_memory_report(request, files, executor, group_by, exact_limit):
    kw: dict[str, Any] = {"group_by": group_by, "exact_limit": exact_limit, "progress": False}
    memory = summarize(files, **kw)                      # 1,500 rows: one batch, in memory
    if executor == "dask":
        pytest.importorskip("pyarrow")
        request.getfixturevalue("client")                # a real two-process LocalCluster
        from qcore.report_distributed import summarize as summarize_dask

        kw.pop("progress")
        other = summarize_dask(files, task_rows=200, **kw)
    else:
        rows = executor.removeprefix("batched-")
        other = summarize(files, **kw) if rows == "default" else summarize(files, batch_rows=int(rows), **kw)
    assert memory.contract["rows_excluded"] >= 2 and memory.exact == (exact_limit > 0)
    assert any(g.little is not None for g in memory.groups or [memory.overall])
    assert all(memory.overall.over_time[k] for k in ("latency", "ttft", "tpot", "tokens", "in_flight"))
    assert _bits(other) == _bits(memory)


_row = st.tuples(st.floats(0.0, 120.0), st.sampled_from(["x", "y", "z"]), st.sampled_from([200, 500, None]),
                 st.one_of(st.none(), st.floats(0.0, 30.0), st.just(-1.0)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row, min_size=1, max_size=40), batch_rows=st.sampled_from([1, 2, 7, 1000]),
       group=st.booleans(), exact=st.booleans())
def test_any_small_log_in_memory_equals_batched(rows, batch_rows, group, exact):
    ts, ep, status, lat = zip(*rows, strict=True)
    log = pl.DataFrame({"timestamp": pl.Series(ts, dtype=pl.Float64), "endpoint": list(ep),
                        "status": pl.Series(status, dtype=pl.Int64), "latency_s": pl.Series(lat, dtype=pl.Float64)})
    kw: dict[str, Any] = {"group_by": ["endpoint"] if group else [], "exact_limit": 10**6 if exact else 0,
                          "progress": False}

    def run(**extra: Any) -> Any:
        try:
            return _bits(summarize(log, **kw, **extra))
        except ValueError as e:     # a log without a valid window fails the same way on every path
            return type(e), str(e)

    assert run(batch_rows=batch_rows) == run()


def test_failed_requests_per_window_are_the_exact_counts(files):
    log = pl.concat([pl.read_parquet(f) for f in sorted(__import__("glob").glob(files))])
    rep = summarize(files, group_by=["endpoint"], bin=60.0, progress=False)
    valid = log.filter(pl.col("latency_s").is_null() | (pl.col("latency_s") >= 0))
    for g in rep.groups:
        rows = valid.filter((pl.col("endpoint") == g.key["endpoint"]) & (pl.col("status") >= 500))
        w = np.floor((rows["timestamp"].to_numpy() - rep.t0) / rep.bin).astype(np.int64)
        truth = np.bincount(np.minimum(w, g.counts.size - 1), minlength=g.counts.size)
        assert np.array_equal(g.error_counts, truth) and g.error_counts.sum() == g.errors
        assert (g.error_counts <= g.counts).all()
    assert np.array_equal(rep.overall.error_counts, sum(g.error_counts for g in rep.groups))


def test_latency_over_time_is_the_sketch_of_each_windows_ok_latencies(files):
    import glob

    import qcore

    log = pl.concat([pl.read_parquet(f) for f in sorted(glob.glob(files))])
    rep = summarize(files, bin=10.0, progress=False)
    rows = rep.overall.latency_over_time
    assert rows and len(rows) <= 60 and sum(r["count"] for r in rows) == rep.overall.sketch.count
    ok = log.filter((pl.col("status") < 500) & pl.col("latency_s").is_not_null() & (pl.col("latency_s") >= 0))
    t = ok["timestamp"].to_numpy()
    for r in rows:
        sel = ok.filter((t >= r["start"]) & (t < r["end"]))["latency_s"].to_numpy()
        truth = qcore.QuantileSketch(relative_accuracy=0.01)
        truth.add(sel)
        assert r["count"] == sel.size
        assert (r["p50"], r["p99"], r["p999"]) == tuple(float(truth.quantile(q)) for q in (0.5, 0.99, 0.999))


# ------------------------------------------------------------------ logs of every shape

def _on(executor: str, request: pytest.FixtureRequest, src: str, **kw: Any) -> Any:
    """The report of ``src`` on one executor."""
    if executor == "dask":
        pytest.importorskip("pyarrow")
        request.getfixturevalue("client")                # a real two-process LocalCluster
        from qcore.report_distributed import summarize as summarize_dask

        return summarize_dask(src, task_rows=150, **kw)
    rows = executor.removeprefix("batched-")
    extra = {} if rows == "default" else {"batch_rows": int(rows)}
    return summarize(src, progress=False, **kw, **extra)


@pytest.mark.parametrize("exact_limit", [2_000_000, 0])
@pytest.mark.parametrize("shape", ["late and null keys", "zero latency last", "two keys"])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_logs_of_every_shape_on_every_executor(request, tmp_path, shape, executor, exact_limit):
    """Keys the first rows never show and null keys; a last request that starts an hour
    after the others and takes no time (its start is the last end); two group keys."""
    from test_report_stream import _write_log

    src = _write_log(tmp_path, n=300, seed=3, faults=False, late_key=shape == "late and null keys",
                     zero_last=shape == "zero latency last")
    kw: dict[str, Any] = {"group_by": ["endpoint", "status"] if shape == "two keys" else ["endpoint"],
                          "exact_limit": exact_limit}
    memory = summarize(src, progress=False, **kw)
    assert report_bits(_on(executor, request, src, **kw)) == report_bits(memory)
    raw = pl.read_parquet(src)
    if shape == "late and null keys":
        assert {"endpoint=/late", "endpoint=None"} <= {g.label for g in memory.groups}
        for g in memory.groups:
            key = g.key["endpoint"]
            assert g.count == raw.filter(pl.col("endpoint").is_null() if key is None
                                         else pl.col("endpoint") == key).height
    assert sum(g.count for g in memory.groups) == memory.overall.count == raw.height


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 300), parts=st.integers(1, 5), seed=st.integers(0, 2**16),
       group=st.booleans(), exact=st.booleans())
def test_any_dask_dataframe_cut_into_any_partitions(n, parts, seed, group, exact):
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    from qcore.report_distributed import summarize as summarize_dask

    rng = np.random.default_rng(seed)
    raw = pl.DataFrame({"timestamp": np.sort(rng.uniform(0, 600, n)), "latency_s": rng.exponential(0.3, n),
                        "endpoint": rng.choice(["/a", "/b"], n), "status": rng.choice([200, 500], n, p=[0.9, 0.1])})
    kw: dict[str, Any] = {"group_by": ["endpoint"] if group else [], "exact_limit": 10**6 if exact else 0}
    a = summarize(raw, bin=10.0, **kw)
    with dask.config.set(scheduler="sync"):
        b = summarize_dask(dd.from_pandas(raw.to_pandas(), npartitions=min(parts, n), sort=False), bin=10.0, **kw)
    assert report_bits(b, fingerprint=False) == report_bits(a, fingerprint=False)
