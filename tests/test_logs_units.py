"""Units never silently wrong: time and latency units decided from the values where the
evidence is strong, warnings where it is not, the shipped traces read in their units."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

import qcore.logs as ql
from cli_helpers import qcore_cli, strict
from qcore import datasets


def _log(t: np.ndarray, lat: np.ndarray | None = None, name: str = "ts", lat_name: str = "latency") -> pl.DataFrame:
    cols: dict[str, Any] = {name: t}
    if lat is not None:
        cols[lat_name] = lat
    return pl.DataFrame(cols)


EPOCH_S = 1.7e9 + np.sort(np.random.default_rng(0).uniform(0, 3600, 500))


@pytest.mark.parametrize("unit, scale", [("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)])
def test_epoch_timestamps_are_read_in_the_unit_their_magnitude_says(unit, scale):
    logs = ql.read_logs(_log(EPOCH_S * scale))
    assert logs.mapping.time_unit == unit
    np.testing.assert_allclose(logs.frame.get_column("start").to_numpy(), EPOCH_S, rtol=1e-12)
    how = dict(logs.mapping.detected)["time_unit"]
    assert how.startswith("values: epoch") and "2023-11-14" in how
    assert logs.mapping.warnings == ()
    assert logs.report.passed


def test_a_unit_in_the_name_that_the_epoch_magnitude_contradicts_is_overruled_with_a_warning():
    logs = ql.read_logs(_log(EPOCH_S, name="ts_ms"), mapping={"start": "ts_ms"})
    assert logs.mapping.time_unit == "s"
    (w,) = logs.mapping.warnings
    assert "'ts_ms' is named for milliseconds but holds epoch seconds" in w and "--time-unit ms" in w
    # A name and magnitude that agree: no warning.
    logs = ql.read_logs(_log(EPOCH_S * 1e3, name="ts_ms"), mapping={"start": "ts_ms"})
    assert logs.mapping.time_unit == "ms" and logs.mapping.warnings == ()
    # An explicit unit wins over everything.
    m = ql.detect_columns({"ts": pl.Float64}, {"time_unit": "us"}, sample=_log(EPOCH_S * 1e3))
    assert m.time_unit == "us" and dict(m.detected)["time_unit"] == "given"


def test_a_relative_clock_is_ambiguous_and_says_so():
    # Seconds from the start of a run (RAGPulse-like): read as seconds, with a warning
    # that gives both readings and the flag.
    t = np.cumsum(np.random.default_rng(1).integers(1, 200, 300)).astype(float)
    logs = ql.read_logs(_log(t))
    assert logs.mapping.time_unit == "s" and dict(logs.mapping.detected)["time_unit"] == "default"
    (w,) = logs.mapping.warnings
    assert "ambiguous" in w and "--time-unit ms" in w and "read as seconds" in w


def test_whole_thousands_are_a_one_second_clock_written_in_milliseconds():
    # Mooncake's conversation trace: integer milliseconds, mostly whole seconds.
    df = datasets.load("mooncake_conversation").select("timestamp", "input_length")
    logs = ql.read_logs(df)
    assert logs.mapping.time_unit == "ms"
    assert "whole multiples of 1000" in dict(logs.mapping.detected)["time_unit"]
    span = logs.frame.get_column("start").max() - logs.frame.get_column("start").min()
    assert 3000 < span < 4000  # about an hour, not 40.9 days


def test_qcore_report_of_the_mooncake_trace_gives_its_rate_per_second(tmp_path):
    # The shipped file is recognised by its bytes (its mapping says milliseconds); a
    # copy under another name is read in milliseconds from its values.
    path = datasets.path("mooncake_conversation")
    copy = tmp_path / "kimi.jsonl"
    copy.write_bytes(path.read_bytes())
    for f, how in ((path, "dataset mooncake_conversation"), (copy, "values: 71% of the timestamps")):
        code, out, err = qcore_cli("report", str(f), "--format", "json", "--no-progress")
        assert code == 0, err
        d = strict(out)
        assert d["groups"][0]["count"] == 12031
        assert d["groups"][0]["rate"] == pytest.approx(3.4, rel=0.01)  # not 0.0034/s
        assert d["mapping"]["time_unit"] == "ms" and d["mapping"]["detected"]["time_unit"].startswith(how)
        assert "times in ms" in d["mapping"]["summary"]
    # The synthetic trace has no such pattern: the file is known by its bytes.
    code, out, err = qcore_cli("report", str(datasets.path("mooncake_synthetic")), "--format", "json", "--no-progress")
    assert code == 0, err
    assert strict(out)["groups"][0]["rate"] == pytest.approx(3.9, rel=0.02)


def test_a_latency_column_holding_milliseconds_is_detected_from_its_scale(tmp_path):
    rng = np.random.default_rng(2)
    lat_ms = rng.lognormal(np.log(219.0), 0.5, 2000)
    t = np.sort(rng.uniform(1.7e9, 1.7e9 + 3600, 2000))
    logs = ql.read_logs(_log(t, lat_ms))
    assert logs.mapping.latency_unit == "ms"
    (w,) = logs.mapping.warnings
    assert "'latency' has no unit in its name" in w and "--latency-unit s" in w and " min)" in w
    p50 = float(np.median(logs.frame.get_column("latency").to_numpy()))
    assert p50 == pytest.approx(0.219, rel=0.05)   # not 3.65 min
    # Seconds stay seconds, with no warning.
    logs = ql.read_logs(_log(t, lat_ms / 1e3))
    assert logs.mapping.latency_unit == "s" and logs.mapping.warnings == ()
    # The report: p50 in milliseconds and a peak concurrency near lambda*W, not 571.
    f = tmp_path / "ms.csv"
    _log(t, lat_ms).write_csv(f)
    code, out, err = qcore_cli("report", str(f), "--format", "json", "--no-progress")
    assert code == 0, err
    d = strict(out)
    assert d["mapping"]["latency_unit"] == "ms" and d["mapping"]["warnings"]
    g = d["groups"][0]
    assert g["peak_concurrency"] < 10


def test_epoch_milliseconds_read_as_seconds_get_a_hint(tmp_path):
    t = EPOCH_S * 1e3
    logs = ql.read_logs(_log(t), mapping={"time_unit": "s"})
    assert logs.height == 0
    (check,) = [c for c in logs.report.failures() if c.name == "time_range"]
    assert check.hint is not None and "--time-unit ms" in check.hint
    assert "--time-unit ms" in logs.report.summary()
    assert check.to_dict()["hint"] == check.hint
    assert ql.time_unit_hint(pl.DataFrame({"start": t})) == check.hint
    assert ql.time_unit_hint(EPOCH_S) is None       # in range already: nothing to say
    rules = tmp_path / "r.toml"
    rules.write_text('[[rule]]\nid = "e"\nmetric = "error_rate"\nthreshold = 0.1\n')
    f = tmp_path / "ms.csv"
    _log(t).write_csv(f)
    code, out, err = qcore_cli("check", str(f), "--rules", str(rules), "--time-unit", "s")
    assert "pass --time-unit ms" in out + err and "Traceback" not in err


def test_the_detected_mapping_is_data():
    m = ql.read_logs(_log(EPOCH_S * 1e3, np.full(500, 250.0))).mapping
    d = m.to_dict()
    assert d["detected"] == {"start": "name", "duration": "name",
                             "time_unit": "values: epoch milliseconds (2023-11-14)",
                             "latency_unit": "values: median 250, 4.17 min if seconds"}
    assert d["summary"] == m.summary() and d["warnings"] == list(m.warnings)
    back = ql.ColumnMapping.from_dict(d)
    assert back == m and back.detected == m.detected and back.warnings == m.warnings
    assert m.summary().startswith("columns: start=ts, duration=latency; times in ms (values: epoch")
