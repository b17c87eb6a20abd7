"""Globs over files whose schemas differ: read correctly when only unused columns differ,
one clear error (exit 1) when a file lacks a column the mapping reads; empty files."""

from __future__ import annotations

import polars as pl
import pytest

import qcore.logs as ql
from cli_helpers import qcore_cli, strict

RULES = '[[rule]]\nid = "e"\nmetric = "error_rate"\nthreshold = 0.5\n'


def test_unused_columns_of_different_types_or_sets_are_read_whole(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"timestamp": 1.0, "latency": 0.5, "x": 1}\n'
                                      '{"timestamp": 2.0, "latency": 0.5, "x": 2}\n')
    (tmp_path / "b.jsonl").write_text('{"timestamp": 3.0, "latency": 0.25, "x": "text"}\n')
    (tmp_path / "c.jsonl").write_text('{"timestamp": 4.0, "latency": 0.25, "x": true, "y": [1]}\n')
    (tmp_path / "d.jsonl").write_text('{"timestamp": 5.0, "latency": 0.25, "x": {"a": 1}, "y": 3}\n')
    logs = ql.read_logs(str(tmp_path / "*.jsonl"))
    assert logs.height == 5 and logs.report.passed
    code, out, err = qcore_cli("report", str(tmp_path / "*.jsonl"), "--format", "json", "--no-progress")
    assert code == 0, err
    assert strict(out)["groups"][0]["count"] == 5


def test_a_file_lacking_a_column_the_mapping_reads_is_one_clear_error(tmp_path):
    pl.DataFrame({"ts": [1.0, 2.0], "latency": [0.5, 0.5]}).write_csv(tmp_path / "a.csv")
    pl.DataFrame({"ts": [3.0, 4.0], "latency_ms": [500.0, 250.0]}).write_csv(tmp_path / "b.csv")
    with pytest.raises(ql.LogReadError, match=r"b\.csv: has no column 'latency' \(the duration\) that .*a\.csv has"):
        ql.read_logs(str(tmp_path / "*.csv"))
    rules = tmp_path / "r.toml"
    rules.write_text(RULES)
    for argv in (["report", "--no-progress"], ["check", "--rules", str(rules)]):
        code, out, err = qcore_cli(argv[0], str(tmp_path / "*.csv"), *argv[1:])
        assert code == 1 and "Traceback" not in err, err
        (line,) = err.strip().splitlines()
        assert "has no column 'latency'" in line and "would lose rows" in line
        code, out, err = qcore_cli(argv[0], str(tmp_path / "*.csv"), *argv[1:], "--format", "json")
        assert code == 1 and strict(out)["error"] == "LogReadError"
    # Only an unused column missing from one file: read whole.
    pl.DataFrame({"ts": [3.0, 4.0], "latency": [0.5, 0.25], "extra": ["a", "b"]}).write_csv(tmp_path / "b.csv")
    assert ql.read_logs(str(tmp_path / "*.csv")).height == 4
    # A role missing in one file only (status): refused too, the rows would be invalid.
    pl.DataFrame({"ts": [5.0], "latency": [0.5], "status": [200]}).write_csv(tmp_path / "c.csv")
    with pytest.raises(ql.LogReadError, match="has no column 'status'"):
        ql.read_logs(str(tmp_path / "*.csv"))
    # An explicit ColumnMapping is checked as well.
    with pytest.raises(ql.LogReadError, match="has no column 'status'"):
        ql.read_logs(str(tmp_path / "*.csv"), mapping=ql.ColumnMapping(start="ts", duration="latency",
                                                                     status="status"))


@pytest.mark.parametrize("name, kind, word", [("e.csv", "csv", "CSV"), ("e.jsonl", "ndjson", "NDJSON"),
                                              ("e.parquet", "parquet", "Parquet file")])
def test_empty_files_are_one_clear_line(tmp_path, name, kind, word):
    f = tmp_path / name
    f.write_bytes(b"")
    rules = tmp_path / "r.toml"
    rules.write_text(RULES)
    for argv in (["report", str(f), "--no-progress"], ["check", str(f), "--rules", str(rules)]):
        code, _, err = qcore_cli(*argv)
        assert code == 1
        assert err.strip() == f"qcore {argv[0]}: error: {f}: cannot be read as {kind}: empty {word} (0 bytes)"


def test_a_role_column_holding_lists_or_structs_is_one_clear_line(tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text(RULES)
    for value, kind in (("[1, 2]", "lists"), ('{"a": 1}', "structs")):
        f = tmp_path / "nested.jsonl"
        f.write_text(f'{{"ts": {value}, "latency": 0.5}}\n')
        with pytest.raises(ql.ColumnDetectionError, match=f"column 'ts' \\(the start\\) holds {kind}"):
            ql.read_logs(f)
        for argv in (["report", str(f), "--no-progress"], ["check", str(f), "--rules", str(rules)]):
            code, _, err = qcore_cli(*argv)
            assert code == 1 and "Traceback" not in err
            (line,) = err.strip().splitlines()
            assert f"holds {kind}, not single values" in line and "_qcls" not in line
