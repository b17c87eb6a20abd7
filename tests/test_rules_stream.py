"""Rules evaluated by streaming files through the local executor (what ``qcore check``
does): the decision table equals the in-memory one value for value, evidence included,
at every batch size, for Parquet, CSV and NDJSON, without dask."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import qcore.rules as qr
from qcore.exceptions import InvalidArgumentError
from qcore.rules import driver as qrd

pytest.importorskip("pyarrow")

from test_rules_dask import NOW, RULES, SLOS, raw_log, single_machine  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("rules-stream")
    df = raw_log(30_000, seed=5)
    for i, idx in enumerate(np.array_split(np.arange(df.height), 3)):
        df[idx].write_parquet(d / f"part-{i}.parquet", row_group_size=4_000)
    return str(d / "*.parquet")


@pytest.mark.parametrize("batch_rows", [997, 4_000, 10**9])
def test_streamed_files_give_the_in_memory_table(files, batch_rows):
    ref, rep = single_machine(files)
    seen: list[tuple[int, int]] = []
    res = qrd.evaluate(files, RULES, slos=SLOS, now=NOW, executor="local", batch_rows=batch_rows,
                       progress=lambda done, total: seen.append((done, total)))
    assert_frame_equal(res.decisions, ref)  # every value, message and evidence record
    assert res.report.to_dict() == rep.to_dict()  # counts and example rows (global row numbers)
    assert rep.rows_excluded == 3
    # progress is monotone and ends at its total
    assert seen and [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == seen[-1][1]
    assert {"pass", "fail", "insufficient_evidence", "stale", "unauditable"} <= set(ref["status"].to_list())


def test_one_row_batches(tmp_path):
    raw = raw_log(9_000, seed=9).head(150)  # one row the contract rejects
    p = tmp_path / "log.parquet"
    raw.write_parquet(p, row_group_size=64)
    ref, rep = single_machine(str(p))
    res = qrd.evaluate(str(p), RULES, slos=SLOS, now=NOW, executor="local", batch_rows=1)
    assert_frame_equal(res.decisions, ref)
    assert res.report.to_dict() == rep.to_dict()


def test_csv_and_ndjson_stream(tmp_path):
    raw = raw_log(9_000, seed=11)
    paths = []
    for i, idx in enumerate(np.array_split(np.arange(raw.height), 3)):
        p = tmp_path / (f"part-{i}.ndjson" if i == 1 else f"part-{i}.csv")
        (raw[idx].write_ndjson if i == 1 else raw[idx].write_csv)(p)
        paths.append(str(p))
    ref, rep = single_machine(paths)
    res = qrd.evaluate(paths, RULES, slos=SLOS, now=NOW, executor="local", batch_rows=1_234)
    assert_frame_equal(res.decisions, ref)
    assert res.report.to_dict() == rep.to_dict()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 300), batch=st.integers(1, 120), seed=st.integers(0, 2**16),
       window=st.sampled_from([None, "5m", "1h"]))
def test_any_log_and_any_batch_size(tmp_path, n, batch, seed, window):
    rng = np.random.default_rng(seed)
    raw = pl.DataFrame({
        "ts": np.sort(rng.uniform(0, 3600, n)), "latency": rng.exponential(0.2, n),
        "endpoint": rng.choice(["a", "b"], n), "status": rng.choice([200, 500], n, p=[0.9, 0.1]),
    })
    p = tmp_path / f"log-{n}-{seed}.parquet"
    raw.write_parquet(p, row_group_size=max(1, n // 3))
    rules = [{**r, "window": window} if window and r["metric"] in ("p99", "p50", "arrival_rate", "littles_gap",
                                                                   "error_rate", "latency_mean", "burstiness")
             else r for r in RULES if r["metric"] not in ("cost_per_1k_tokens", "tokens_per_request",
                                                          "null_fraction", "unaudited_fraction")]
    ref, _ = single_machine(str(p), rules=rules, slos=SLOS[:1])
    res = qrd.evaluate(str(p), rules, slos=SLOS[:1], now=NOW, executor="local", batch_rows=batch)
    assert_frame_equal(res.decisions, ref)


def test_bad_executor_arguments(files):
    with pytest.raises(InvalidArgumentError, match="executor"):
        qrd.evaluate(files, RULES[:1], now=NOW, executor="threads")
    with pytest.raises(InvalidArgumentError, match="persist"):
        qrd.evaluate(files, RULES[:1], now=NOW, executor="local", persist=True)
    with pytest.raises(InvalidArgumentError, match="batch_rows"):
        qrd.evaluate(files, RULES[:1], now=NOW, executor="local", batch_rows=0)


def test_cli_check_streams_and_equals_the_in_memory_decisions(files, tmp_path):
    rules = tmp_path / "rules.toml"
    body = []
    for r in RULES[:6]:
        body.append("[[rule]]")
        for k, v in r.items():
            body.append(f"{k} = {json.dumps(v)}")
    rules.write_text("\n".join(body) + "\n")
    out = subprocess.run([sys.executable, "-m", "qcore.cli", "check", files, "--rules", str(rules), "--now", str(NOW),
                          "--format", "json"], capture_output=True, text=True, check=False)
    assert out.returncode in (0, 3, 4, 5), out.stderr
    got = json.loads(out.stdout)
    ref, _ = single_machine(files, rules=qr.parse_rules({"rule": RULES[:6]}), slos=[])
    assert [d["value"] for d in got["decisions"]] == ref["value"].to_list()
    assert [d["status"] for d in got["decisions"]] == ref["status"].to_list()


def test_streamed_files_detect_units_from_their_rows():
    # The mapping (and its units) comes from the files' first rows, as on one machine:
    # Mooncake's millisecond clock reads as 3.4 requests/s, not 0.0034.
    from qcore import datasets

    path = str(datasets.path("mooncake_conversation"))
    rule = {"id": "rate", "version": "1", "owner": "o", "metric": "arrival_rate", "threshold": 1.0}
    got = qrd.evaluate(path, [rule], now=1e12, executor="local").decisions.row(0, named=True)
    ref = qr.evaluate(read_logs_of(path), [rule], now=1e12).row(0, named=True)
    assert got["value"] == ref["value"]
    assert 3.0 < got["value"] < 4.0


def read_logs_of(path: str):
    from qcore.logs import read_logs

    return read_logs(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_without_rows_beside_others_changes_nothing(tmp_path, fmt):
    df = raw_log(5_000, seed=8)
    full, empty = tmp_path / f"full.{fmt}", tmp_path / f"empty.{fmt}"
    getattr(df, f"write_{fmt}")(full)
    getattr(df.clear(), f"write_{fmt}")(empty)
    ref, rep = single_machine([str(full), str(empty)])
    for batch_rows in (1_000, 10**9):
        res = qrd.evaluate([str(empty), str(full)], RULES, slos=SLOS, now=NOW, executor="local",
                           batch_rows=batch_rows)
        assert res.report.to_dict()["rows_total"] == rep.to_dict()["rows_total"] == 5_000
        assert res.decisions["status"].to_list() == ref["status"].to_list()
    alone = qrd.evaluate([str(empty)], RULES, now=NOW, executor="local")  # once a traceback
    assert alone.report.rows_total == 0 and alone.decisions.height > 0
