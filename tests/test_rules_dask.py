"""Rules on a dask cluster (qcore.rules.driver, ``qcore check --dask``): the decision
table equals the single-machine one value for value, evidence included."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

pytest.importorskip("pyarrow")
dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

import qcore.rules as qr
from qcore.logs import Contract, ContractViolationError, read_logs
from qcore.rules import driver as qrd
from qcore.rules import partials as qp

NOW = 7300.0


def _r(**kw):
    return {"version": "1", "owner": "sre", **kw}


RULES = [
    _r(id="p99", metric="p99", threshold=1.0, group_by=["endpoint"], confidence=0.9),
    _r(id="p999", metric="p999", threshold=5.0, group_by=["endpoint"], include_errors=True),
    _r(id="p50-last-30m", metric="p50", threshold=1.0, window="30m"),
    _r(id="mean", metric="latency_mean", threshold=1.0, group_by=["endpoint"]),
    _r(id="err", metric="error_rate", threshold=0.02, group_by=["endpoint"]),
    _r(id="throughput", metric="throughput", threshold=1.0, window="10m", decide_on="estimate"),
    _r(id="rate", metric="arrival_rate", threshold=1.0, group_by=["endpoint"], decide_on="lower"),
    _r(id="ptm", metric="peak_to_mean", threshold=3.0, bin=10.0),
    _r(id="burst", metric="burstiness", threshold=3.0, bin=10.0, group_by=["endpoint"], window="1h"),
    _r(id="little", metric="littles_gap", threshold=0.02),
    _r(id="little-20m", metric="littles_gap", threshold=0.02, window="20m", group_by=["endpoint"]),
    _r(id="ldrift", metric="latency_drift", threshold=0.5, quantile=0.9, group_by=["endpoint"]),
    _r(id="rdrift", metric="rate_drift", threshold=0.5, reference={"endpoint": "a"}, group_by=["endpoint"]),
    _r(id="ldrift-ref", metric="latency_drift", threshold=0.2, quantile=0.5, reference={"endpoint": "b"},
       group_by=["endpoint"]),
    _r(id="fresh", metric="freshness", max_age="1h", group_by=["endpoint"]),
    _r(id="nulls", metric="null_fraction", column="model_version", threshold=0.01),
    _r(id="invalid", metric="invalid_fraction", threshold=0.0001),
    _r(id="audit", metric="unaudited_fraction", threshold=0.01, group_by=["endpoint"]),
    _r(id="cost", metric="cost_per_1k_tokens", threshold=1.0, group_by=["endpoint"]),
    _r(id="tokens", metric="tokens_per_request", threshold=100.0),
    _r(id="filtered", metric="p99", threshold=1.0, filter={"endpoint": ["a", "b"]}),
    _r(id="nothing", metric="p99", threshold=1.0, filter={"endpoint": "zzz"}, group_by=["endpoint"]),
    _r(id="stale-p99", metric="p90", threshold=1.0, max_age="1m"),
    {"id": "no-owner", "version": "1", "metric": "error_rate", "threshold": 0.5},
]
SLOS = [
    {"id": "avail", "version": "1", "owner": "sre", "objective": 0.999, "group_by": ["endpoint"]},
    {"id": "latency", "version": "1", "owner": "sre", "objective": 0.99, "latency_threshold": 0.5,
     "windows": [{"severity": "page", "long": "1h", "short": "5m", "factor": 2.0}]},
]


def raw_log(n: int = 60_000, seed: int = 3) -> pl.DataFrame:
    """A synthetic request log: three endpoints, 1 % errors, latencies rounded to the
    millisecond (many ties), a few rows the data contract rejects."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 7200, n))
    lat = np.round(rng.lognormal(-2, 1, n), 3)
    lat[[11, 4_000, 50_000 % n]] = -1.0  # negative latencies: excluded by the contract
    ep = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    status = np.where(rng.random(n) < 0.01, 500, 200)
    ver = np.where(rng.random(n) < 0.002, None, "v1")
    return pl.DataFrame({
        "ts": t, "latency": lat, "endpoint": ep, "status": status, "model_version": ver,
        "tokens_in": rng.integers(1, 100, n), "tokens_out": rng.integers(1, 100, n),
        "cost": rng.random(n) * 1e-3,
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("rules-dask")
    df = raw_log()
    for i, idx in enumerate(np.array_split(np.arange(df.height), 5)):
        df[idx].write_parquet(d / f"part-{i}.parquet", row_group_size=2_500)
    return str(d / "*.parquet")


def single_machine(source, rules=RULES, slos=SLOS, contract=None):
    keep = ["endpoint", "model_version"]
    logs = read_logs(source, keep=keep, contract=contract)
    parts = [qr.evaluate(logs, rules, now=NOW)]
    if slos:
        parts.append(qr.evaluate_slos(logs, slos, now=NOW))
    return pl.concat(parts), logs.report


def without_hash(frame: pl.DataFrame) -> pl.DataFrame:
    def strip(s: str) -> str:
        d = json.loads(s)
        d["data"].pop("content_hash")
        return json.dumps(d, sort_keys=True)

    return frame.with_columns(pl.col("evidence").map_elements(strip, return_dtype=pl.String))


@pytest.mark.parametrize("task_rows", [2_500, 7_000, 10**9])
def test_files_on_a_two_process_cluster_give_the_same_table(client, files, task_rows):
    ref, rep = single_machine(files)
    res = qrd.evaluate(files, RULES, slos=SLOS, now=NOW, task_rows=task_rows)
    assert_frame_equal(res.decisions, ref)  # every value, message and evidence record
    assert res.report.to_dict() == rep.to_dict()  # counts and example rows (global row numbers)
    assert rep.rows_excluded == 3
    assert res.tasks == (25 if task_rows == 2_500 else 10 if task_rows == 7_000 else 5)
    # every kind of status appears, so the comparison covers the decision logic too
    assert {"pass", "fail", "insufficient_evidence", "stale", "unauditable"} <= set(ref["status"].to_list())
    assert set(ref["rule_id"].to_list()) == {r["id"] for r in RULES} | {"avail", "latency"}


def test_persisted_rows_give_the_same_table(client, files):
    ref, rep = single_machine(files)
    res = qrd.evaluate(files, RULES, slos=SLOS, now=NOW, task_rows=7_000, persist=True)
    assert_frame_equal(res.decisions, ref)
    assert res.report.to_dict() == rep.to_dict()
    with dask.config.set(scheduler="sync"):
        raw = raw_log(5_000, seed=4)
        ddf = dd.from_pandas(raw.to_pandas(), npartitions=3, sort=False)
        got = qrd.evaluate(ddf, RULES, slos=SLOS, now=NOW, persist=True).decisions
    assert_frame_equal(without_hash(got), without_hash(single_machine(raw)[0]))


def test_dask_dataframe_source(client):
    raw = raw_log(20_000, seed=8)
    ref, rep = single_machine(raw)
    ddf = dd.from_pandas(raw.to_pandas(), npartitions=6, sort=False)
    res = qrd.evaluate(ddf, RULES, slos=SLOS, now=NOW)
    # the content hash of a frame source is the hash of the partitions' hashes
    assert_frame_equal(without_hash(res.decisions), without_hash(ref))
    assert res.report.to_dict() == rep.to_dict()


def test_quantile_intervals_are_exact_order_statistics(client, files):
    lat = read_logs(files).frame.filter(pl.col("outcome") == "ok").get_column("latency").to_numpy()
    rule = qr.Rule(id="p99", version="1", owner="sre", metric="latency_quantile", quantile=0.99, threshold=1.0)
    res = qrd.evaluate(files, [rule], now=NOW, task_rows=2_500).decisions.row(0, named=True)
    import qcore

    ranks = qcore.quantile_ranks(lat.size, 0.99, 0.95)
    xs = np.sort(lat)
    # the exact order statistics, widened by the sketch's 1 % (so they hold its estimate)
    assert (res["ci_lo"], res["ci_hi"]) == qcore.widen_for_sketch(xs[ranks.lower - 1], xs[ranks.upper - 1], 0.01,
                                                                   res["value"])
    assert res["ci_lo"] <= res["value"] <= res["ci_hi"]


def test_a_bracket_that_misses_is_widened(monkeypatch):
    # Brackets off to one side of the rank: the next passes widen them, and the result is
    # still the exact order statistic.
    raw = raw_log(8_000, seed=2)
    ref, _ = single_machine(raw, rules=RULES[:3], slos=[])
    calls = []

    def off(sk, rank, n):
        calls.append(rank)
        lo, hi = sk.quantile_bounds(0.0 if rank < n / 2 else 1.0)
        return lo, hi

    monkeypatch.setattr(qp.LatencyQuantile, "_bracket", staticmethod(off))
    with dask.config.set(scheduler="sync"):
        res = qrd.evaluate(dd.from_pandas(raw.to_pandas(), npartitions=4, sort=False), RULES[:3], now=NOW)
    assert calls and res.passes > 3
    assert_frame_equal(without_hash(res.decisions), without_hash(ref))


def test_refuse_and_errors(client, files):
    with pytest.raises(ContractViolationError):
        qrd.evaluate(files, RULES[:2], now=NOW, on_violation="refuse")
    with pytest.raises(ContractViolationError):  # schema-level: raised before any task runs
        qrd.evaluate(files, RULES[:2], now=NOW, contract=Contract(required=("tokens_total",)))
    with pytest.raises(qr.RuleError, match="objective"):
        qrd.evaluate(files, [], slos=[{"id": "x", "version": "1", "owner": "o"}], now=NOW)
    with pytest.raises(qr.RuleError, match="metric"):
        qrd.evaluate(files, [{"id": "x", "metric": "nope", "threshold": 1}], now=NOW)
    with pytest.raises(ValueError, match="split_every"):
        qrd.evaluate(files, RULES[:1], now=NOW, split_every=1)
    with pytest.raises(TypeError, match="source"):
        qrd.evaluate(42, RULES[:1], now=NOW)
    # a missing column makes the rule malformed in both
    rule = {"id": "c", "version": "1", "owner": "o", "metric": "null_fraction", "column": "absent", "threshold": 0.1}
    res = qrd.evaluate(files, [rule], now=NOW).decisions
    assert res["status"].to_list() == ["malformed"]
    assert_frame_equal(res, single_machine(files, rules=[rule], slos=[])[0])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 400), parts=st.integers(1, 6), seed=st.integers(0, 2**16),
       window=st.sampled_from([None, "5m", "1h"]))
def test_any_log_and_any_cut(n, parts, seed, window):
    rng = np.random.default_rng(seed)
    raw = pl.DataFrame({
        "ts": np.sort(rng.uniform(0, 3600, n)), "latency": rng.exponential(0.2, n),
        "endpoint": rng.choice(["a", "b"], n), "status": rng.choice([200, 500], n, p=[0.9, 0.1]),
    })
    rules = [{**r, "window": window} if window and r["metric"] in ("p99", "p50", "arrival_rate", "littles_gap",
                                                                   "error_rate", "latency_mean", "burstiness")
             else r for r in RULES if r["metric"] not in ("cost_per_1k_tokens", "tokens_per_request",
                                                          "null_fraction", "unaudited_fraction")]
    ref, _ = single_machine(raw, rules=rules, slos=SLOS[:1])
    ddf = dd.from_pandas(raw.to_pandas(), npartitions=max(1, min(parts, max(n, 1))), sort=False)
    with dask.config.set(scheduler="sync"):
        res = qrd.evaluate(ddf, rules, slos=SLOS[:1], now=NOW)
    assert_frame_equal(without_hash(res.decisions), without_hash(ref))


def test_csv_and_ndjson_files(client, tmp_path):
    # Files of other formats are one task each; a list of paths works as a glob does.
    raw = raw_log(9_000, seed=11)
    paths = []
    for i, idx in enumerate(np.array_split(np.arange(raw.height), 3)):
        part = raw[idx]
        if i == 1:
            p = tmp_path / f"part-{i}.ndjson"
            part.write_ndjson(p)
        else:
            p = tmp_path / f"part-{i}.csv"
            part.write_csv(p)
        paths.append(str(p))
    ref, rep = single_machine(paths)
    res = qrd.evaluate(paths, RULES, slos=SLOS, now=NOW)
    assert res.tasks == 3
    assert_frame_equal(res.decisions, ref)
    assert res.report.to_dict() == rep.to_dict()
    with pytest.raises(FileNotFoundError, match="no input file"):
        qrd.evaluate([], RULES[:1], now=NOW)


def test_progress_on_the_cluster_counts_every_task_and_changes_nothing(client, files):
    seen: list[tuple[int, int]] = []
    ref = qrd.evaluate(files, RULES, slos=SLOS, now=NOW, task_rows=7_000)
    res = qrd.evaluate(files, RULES, slos=SLOS, now=NOW, task_rows=7_000, progress=lambda d, t: seen.append((d, t)))
    assert_frame_equal(res.decisions, ref.decisions)
    done = [d for d, _ in seen]
    assert done == list(range(1, len(seen) + 1))  # one call per finished task, in order
    assert len(seen) == res.tasks * res.passes and seen[-1][0] == seen[-1][1]
    assert all(d <= t for d, t in seen)


def test_evaluate_takes_the_executor(client, files):
    """``rules.evaluate(executor=...)``: files give one table on every executor, a dask
    DataFrame runs on dask by default, a frame in this process cannot go to dask."""
    streamed = qr.evaluate(files, RULES, now=NOW)
    on_dask = qr.evaluate(files, RULES, now=NOW, executor="dask")
    assert_frame_equal(on_dask, streamed)
    assert_frame_equal(qr.evaluate(files, RULES, now=NOW, executor="local"), streamed)
    assert_frame_equal(streamed, qrd.evaluate(files, RULES, now=NOW).decisions)
    raw = raw_log(8_000, seed=6)
    ddf = dd.from_pandas(raw.to_pandas(), npartitions=3, sort=False)
    assert_frame_equal(qr.evaluate(ddf, RULES, now=NOW), qrd.evaluate(ddf, RULES, now=NOW).decisions)
    with pytest.raises(ValueError, match="needs paths/globs or a dask DataFrame"):
        qr.evaluate(raw, RULES, now=NOW, executor="dask")
    with pytest.raises(ValueError, match="executor must be 'local' or 'dask'"):
        qr.evaluate(files, RULES, now=NOW, executor="threads")
