"""``qcore.report`` streaming path on Parquet files: the extent read from the Parquet
statistics, the contract flag computed in the scan, the group codes and the read-ahead give
the same report as the plain pass over the data (and as the exact, in-memory run). The
executors' equivalence on these logs is in test_report_equivalence.py."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from qcore.report import _stream as R
from qcore.report import summarize
from report_bits import report_bits


def plain_pass(source, **kw):
    """The report without the Parquet statistics' shortcut, with summarize's defaults."""
    import inspect

    sig = inspect.signature(summarize).parameters
    args = {k: p.default for k, p in sig.items()
            if p.default is not inspect.Parameter.empty and k not in ("executor", "split_every", "task_rows")}
    return R._summarize(source, use_stats=False, **{**args, **kw})


def _write_log(d, n_files: int = 3, n: int = 4000, seed: int = 0, *, faults: bool = True,
               late_key: bool = False, zero_last: bool = False) -> str:
    rng = np.random.default_rng(seed)
    t = 1.7e9
    for i in range(n_files):
        ts = t + np.cumsum(rng.exponential(0.05, n))
        t = float(ts[-1])
        ep = rng.choice(["/a", "/b", "/c"], n, p=[0.5, 0.3, 0.2]).astype(object)
        lat = rng.lognormal(-2.0, 0.8, n) * 1000.0
        st = np.where(rng.random(n) < 0.03, 503, 200)
        lat_l: list[float | None] = lat.tolist()
        st_l: list[int | None] = st.tolist()
        if faults and i == 1:              # violations in one file only
            for j in rng.integers(0, n, 5):
                lat_l[j] = -3.0
            for j in rng.integers(0, n, 4):
                st_l[j] = None
        if late_key and i == n_files - 1:  # a key the first rows never show, and null keys
            ep[n // 2:] = "/late"
            ep[-7:] = None
        if zero_last and i == n_files - 1:
            ts[-1] = ts[-2] + 3600.0        # the last request starts long after the others
            lat_l[-1] = 0.0                 # and takes no time: its start is the last end
        pl.DataFrame({"timestamp": ts, "latency_ms": pl.Series(lat_l, dtype=pl.Float64),
                      "status": pl.Series(st_l, dtype=pl.Int64),
                      "endpoint": pl.Series(ep.tolist(), dtype=pl.String)}).write_parquet(
            d / f"part-{i}.parquet", row_group_size=1000)
    return str(d / "*.parquet")


def _assert_same(a: R.Report, b: R.Report) -> None:
    """Everything the two reports say is equal, to the last bit (:func:`report_bits`)."""
    assert report_bits(a) == report_bits(b)


def _spy_extent(monkeypatch) -> list:
    got: list = []
    real = R._parquet_extent

    def spy(*a, **k):
        out = real(*a, **k)
        got.append(out)
        return out

    monkeypatch.setattr(R, "_parquet_extent", spy)
    return got


@pytest.mark.parametrize("group_by", [["endpoint"], [], ["endpoint", "status"]])
def test_statistics_path_equals_the_plain_pass(tmp_path, monkeypatch, group_by):
    glob = _write_log(tmp_path)
    kw = {"group_by": group_by, "exact_limit": 0, "batch_rows": 1500, "progress": False}
    plain = plain_pass(glob, **kw)
    got = _spy_extent(monkeypatch)
    fast = summarize(glob, **kw)
    assert got and got[0] is not None                # the footers were used, no pass
    assert got[0][1] == plain.t0 and got[0][3] >= plain.t1
    _assert_same(plain, fast)
    assert fast.contract["rows_excluded"] > 0
    assert fast.fingerprint == plain.fingerprint


def test_streaming_parquet_equals_exact_in_memory(tmp_path):
    glob = _write_log(tmp_path, seed=2)
    exact = summarize(glob, group_by=["endpoint"], progress=False)
    stream = summarize(glob, group_by=["endpoint"], exact_limit=0, batch_rows=1000, progress=False)
    assert exact.exact and not stream.exact
    assert (exact.t0, exact.t1, exact.bin) == (stream.t0, stream.t1, stream.bin)
    for a, b in zip(exact.groups, stream.groups, strict=True):
        assert a.label == b.label and a.count == b.count and a.errors == b.errors
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_array_equal(a.inflight, b.inflight)
        assert a.sketch.to_bytes() == b.sketch.to_bytes()
        assert a.little == b.little
    assert ({c["name"]: c["failed"] for c in exact.contract["checks"]}
            == {c["name"]: c["failed"] for c in stream.contract["checks"]})


def test_zero_latency_request_at_the_end(tmp_path, monkeypatch):
    # t1 is then the last start itself: that request is no arrival of [t0, t1)
    glob = _write_log(tmp_path, seed=4, faults=False, zero_last=True)
    kw = {"group_by": ["endpoint"], "exact_limit": 0, "batch_rows": 900, "progress": False}
    plain = plain_pass(glob, **kw)
    got = _spy_extent(monkeypatch)
    fast = summarize(glob, **kw)
    assert got[0] is not None and got[0][3] > plain.t1 == got[0][2]
    _assert_same(plain, fast)
    exact = summarize(glob, group_by=["endpoint"], progress=False)
    for a, b in zip(exact.groups, fast.groups, strict=True):
        assert a.little == b.little


@pytest.mark.parametrize("lie", ["t0", "s1", "bound"])
def test_statistics_that_lie_fall_back_to_the_pass(tmp_path, monkeypatch, lie):
    glob = _write_log(tmp_path, seed=5)
    kw = {"group_by": ["endpoint"], "exact_limit": 0, "batch_rows": 1500, "progress": False}
    plain = plain_pass(glob, **kw)
    real = R._parquet_extent

    def wrong(*a, **k):
        n, t0, s1, bound = real(*a, **k)
        if lie == "t0":
            return n, t0 - 0.5, s1, bound
        if lie == "s1":
            return n, t0, s1 - 0.5, bound
        return n, t0, s1, s1          # claims no request ends after the last start

    monkeypatch.setattr(R, "_parquet_extent", wrong)
    _assert_same(plain, summarize(glob, **kw))


def test_no_statistics_for_text_times_or_a_skewed_clock(tmp_path):
    d = tmp_path
    n = 3000
    ts = 1.7e9 + np.arange(n, dtype=float)
    pl.DataFrame({"timestamp": ts, "latency_ms": np.full(n, 5.0)}).write_parquet(d / "ok.parquet")
    schema = dict(pl.scan_parquet(d / "ok.parquet").collect_schema())
    from qcore import logs as L

    m = L.detect_columns(schema)
    c = L.Contract(max_time=2.0e9)
    got = R._parquet_extent([d / "ok.parquet"], None, m, schema, c, None)
    assert got is not None and got[0] == n and got[1] == ts[0] and got[2] == ts[-1]
    assert math.isclose(got[3], ts[-1] + 0.005, rel_tol=1e-15)
    # a start beyond the contract's range: the pass must find the extent of the kept rows
    skew = ts.copy()
    skew[5] = 4.0e9
    pl.DataFrame({"timestamp": skew, "latency_ms": np.full(n, 5.0)}).write_parquet(d / "skew.parquet")
    assert R._parquet_extent([d / "skew.parquet"], None, m, schema, c, None) is None
    # times as text: not numeric statistics
    pl.DataFrame({"timestamp": [str(v) for v in ts], "latency_ms": np.full(n, 5.0)}).write_parquet(d / "txt.parquet")
    s2 = dict(pl.scan_parquet(d / "txt.parquet").collect_schema())
    assert R._parquet_extent([d / "txt.parquet"], None, L.detect_columns(s2), s2, c, None) is None
    rep = summarize(str(d / "skew.parquet"), exact_limit=0, batch_rows=500, progress=False)
    assert rep.contract["rows_excluded"] == 1 and rep.t1 - rep.t0 < 2 * n


def test_refused_log_stops_the_reader(tmp_path):
    import threading

    from qcore.logs import ContractViolationError

    glob = _write_log(tmp_path, seed=6)               # file 1 breaks the contract
    with pytest.raises(ContractViolationError, match="contract violated"):
        summarize(glob, group_by=["endpoint"], exact_limit=0, batch_rows=500, on_violation="refuse",
                  progress=False)
    assert not [t for t in threading.enumerate() if t.name == "qcore-report-read" and t.is_alive()]
