"""Reading request logs: formats, globs, column mapping, the data contract, fingerprints."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore.logs as ql


def _raw(n: int = 50, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "timestamp": np.sort(rng.uniform(1.7e9, 1.7e9 + 3600, n)),
        "latency_ms": rng.lognormal(4, 0.5, n),
        "status": rng.choice([200, 200, 200, 503], n),
        "route": rng.choice(["/a", "/b"], n),
        "model_version": rng.choice(["v1", "v2"], n),
        "prompt_tokens": rng.integers(1, 500, n),
        "completion_tokens": rng.integers(1, 200, n),
        "cost": rng.uniform(0, 0.01, n),
    })


# ---------------------------------------------------------------- mapping


def test_detect_columns_common_names_and_units():
    m = ql.detect_columns(_raw().schema)
    assert (m.start, m.duration, m.status, m.endpoint, m.model_version) == (
        "timestamp", "latency_ms", "status", "route", "model_version")
    assert (m.tokens_in, m.tokens_out, m.cost) == ("prompt_tokens", "completion_tokens", "cost")
    assert m.latency_unit == "ms" and m.time_unit == "s"


def test_detect_columns_failure_lists_columns():
    with pytest.raises(ql.ColumnDetectionError, match=r"columns found: \['foo', 'bar'\]"):
        ql.detect_columns(["foo", "bar"])
    assert issubclass(ql.ColumnDetectionError, ValueError)


def test_override_naming_missing_column_is_clear():
    with pytest.raises(ql.ColumnDetectionError, match="'nope'.*columns"):
        ql.detect_columns(["t", "lat"], {"start": "nope"})


def test_bad_unit_named():
    with pytest.raises(ValueError, match="latency_unit"):
        ql.ColumnMapping(start="t", latency_unit="fortnights")


def test_normalize_units_and_outcomes():
    raw = pl.DataFrame({"t": [0.0, 1000.0, 2000.0, 3000.0], "lat": [100.0, 250.0, 5.0, 7.0],
                        "status": ["SUCCEED", "FAILED", "PENDING", "ok"]})
    m = ql.ColumnMapping(start="t", duration="lat", status="status", time_unit="ms", latency_unit="ms")
    out = ql.normalize(raw, m).collect()
    np.testing.assert_allclose(out["start"].to_numpy(), [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(out["latency"].to_numpy(), [0.1, 0.25, 0.005, 0.007])
    np.testing.assert_allclose(out["end"].to_numpy(), out["start"].to_numpy() + out["latency"].to_numpy())
    assert out["outcome"].to_list() == ["ok", "error", "incomplete", "ok"]


def test_normalize_from_start_end_datetimes_and_http_codes():
    raw = pl.DataFrame({
        "start_time": ["2024-01-01 00:00:00", "2024-01-01 00:00:01.5"],
        "end_time": ["2024-01-01 00:00:00.250", "2024-01-01 00:00:03"],
        "http_status": [200, 500],
    })
    out = ql.normalize(raw).collect()
    np.testing.assert_allclose(out["latency"].to_numpy(), [0.25, 1.5])
    assert out["start"][0] == pytest.approx(1704067200.0)
    assert out["outcome"].to_list() == ["ok", "error"]


def test_boolean_error_column():
    raw = pl.DataFrame({"ts": [1.0, 2.0, 3.0], "error": [False, True, None]})
    out = ql.normalize(raw).collect()
    assert out["outcome"].to_list() == ["ok", "error", None]


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson"])
def test_formats_and_globs_agree(tmp_path, fmt):
    raw = _raw(60)
    parts = [raw.slice(0, 25), raw.slice(25, 35)]
    for i, p in enumerate(parts):
        path = tmp_path / f"part{i}.{fmt if fmt != 'ndjson' else 'jsonl'}"
        getattr(p, {"parquet": "write_parquet", "csv": "write_csv", "ndjson": "write_ndjson"}[fmt])(path)
    logs = ql.read_logs(str(tmp_path / "part*"))
    ref = ql.read_logs(raw)
    assert len(logs.sources) == 2
    assert logs.height == 60
    np.testing.assert_allclose(logs.frame["latency"].to_numpy(), ref.frame["latency"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(logs.frame["start"].to_numpy(), ref.frame["start"].to_numpy(), rtol=1e-15)
    assert logs.frame["outcome"].to_list() == ref.frame["outcome"].to_list()
    # a directory works as well
    assert ql.read_logs(tmp_path).height == 60


def test_missing_path_and_unknown_extension(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches"):
        ql.read_logs(str(tmp_path / "*.parquet"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ql.read_logs(str(tmp_path / "nope.csv"))
    p = tmp_path / "log.txt"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="format"):
        ql.read_logs(p)
    assert ql.read_logs(p, format="csv", mapping={"start": "a"}).height == 1


def test_scan_logs_is_lazy(tmp_path):
    _raw(10).write_parquet(tmp_path / "x.parquet")
    lf = ql.scan_logs(tmp_path / "x.parquet")
    assert isinstance(lf, pl.LazyFrame)
    assert {"start", "latency", "end", "outcome", "endpoint"} <= set(lf.collect_schema())


# ---------------------------------------------------------------- contract


def _faulty() -> pl.DataFrame:
    now = time.time()
    return pl.DataFrame({
        "ts": [now - 100, now - 90, None, now + 10 * 86400, now - 50, now - 40, now - 30],
        "latency": ["0.1", "fast", "0.2", "0.3", "-0.5", None, "inf"],
        "status": [200, 200, 200, 200, 200, 200, 200],
    })


def test_contract_counts_every_violation_with_examples():
    ok, rep = ql.validate(ql.normalize(_faulty()), ql.Contract(max_time=time.time() + 3600))
    counts = {c.name: c.failed for c in rep.checks}
    assert counts["bad_type_latency"] == 1          # "fast"
    assert counts["null_start"] == 1
    assert counts["time_range"] == 1                # clock 10 days in the future
    assert counts["negative_latency"] == 1
    assert counts["null_latency"] == 1
    assert counts["nonfinite_latency"] == 1
    assert rep.rows_total == 7 and rep.rows_valid == 1 and ok.height == 1
    ex = next(c for c in rep.checks if c.name == "bad_type_latency").examples
    assert ex and ex[0]["source_duration"] == "fast" and ex[0]["row"] == 1
    assert not rep.passed and "bad_type_latency: 1" in rep.summary()
    assert not any(c.startswith("__") for c in ok.columns)


def test_contract_refuse_raises_with_report():
    with pytest.raises(ql.ContractViolationError) as ei:
        ql.read_logs(_faulty(), on_violation="refuse")
    assert isinstance(ei.value, ValueError)
    assert ei.value.report.rows_excluded == 6
    assert "negative_latency" in str(ei.value)


def test_contract_schema_missing_required_role():
    raw = pl.DataFrame({"ts": [1.0, 2.0]})
    with pytest.raises(ql.ContractViolationError, match="missing_latency"):
        ql.read_logs(raw, contract=ql.Contract(require_latency=True))
    with pytest.raises(ql.ContractViolationError, match="missing_model_version"):
        ql.read_logs(raw, contract=ql.Contract(not_null=("model_version",)))


def test_contract_clean_log_passes_and_keeps_all_rows():
    logs = ql.read_logs(_raw(200))
    assert logs.report.passed and logs.height == 200 and logs.report.rows_excluded == 0


def test_on_violation_validated():
    with pytest.raises(ValueError, match="on_violation"):
        ql.validate(ql.normalize(_raw(5)), on_violation="ignore")  # type: ignore[arg-type]


def test_contract_from_dict_rejects_unknown():
    with pytest.raises(ValueError, match="unknown key"):
        ql.Contract.from_dict({"max_lat": 3})


# ---------------------------------------------------------------- fingerprints


def test_fingerprint_tracks_content(tmp_path):
    raw = _raw(30)
    a = ql.read_logs(raw).fingerprint()
    b = ql.read_logs(raw).fingerprint()
    c = ql.read_logs(raw.with_columns(pl.col("latency_ms") * 1.0001)).fingerprint()
    assert a.content_hash == b.content_hash != c.content_hash
    assert a.rows == 30 and a.time_min == pytest.approx(raw["timestamp"].min())
    p = tmp_path / "x.csv"
    raw.write_csv(p)
    f = ql.read_logs(p).fingerprint()
    import hashlib

    assert f.sources[0]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert f.sources[0]["bytes"] == p.stat().st_size


# ---------------------------------------------------------------- real traces


def test_alibaba_gentd26_trace(shared_data):
    path = shared_data / "alibaba_gentd26" / "lora_request_trace.csv"
    logs = ql.read_logs(path)
    m = logs.mapping
    assert (m.start, m.duration, m.status, m.endpoint, m.model_version) == (
        "gmt_create", "exec_time_seconds", "predict_status", "predict_type", "checkpoint_model_version_id")
    # figures from SOURCE.md: 26,823 rows; SUCCEED 26,392, FAILED 398, PENDING 30 + PROCESSING 3
    assert logs.height == 26_823 and logs.report.passed
    vc = dict(logs.frame.group_by("outcome").len().iter_rows())
    assert vc == {"ok": 26_392, "error": 398, "incomplete": 33}
    span = logs.frame["start"].max() - logs.frame["start"].min()
    assert span == pytest.approx(1_989_367.0)


def test_arrival_only_traces(shared_data):
    az = ql.read_logs(shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv")
    assert az.height == 19_366 and "latency" not in az.frame.columns
    assert az.mapping.tokens_in == "ContextTokens"
    span = az.frame["start"].max() - az.frame["start"].min()
    assert span == pytest.approx(3501.7, abs=0.1)
    rp = ql.read_logs(shared_data / "ragpulse" / "0_trace.jsonl")   # timestamps are JSON strings
    assert rp.height == 7_106 and rp.frame["start"].min() == 0 and rp.frame["start"].max() == 604_603
    mc = ql.read_logs(shared_data / "mooncake_fast25" / "conversation_trace.jsonl", mapping={"time_unit": "ms"})
    assert mc.height == 12_031 and mc.frame["start"].max() == pytest.approx(3536.999)


def test_user_row_checks_are_counted():
    raw = pl.DataFrame({"ts": [1.0, 2.0, 3.0, 4.0], "latency": [0.1, 0.2, 9.0, 0.3],
                        "output_tokens": [10, 5000, 20, 30], "input_tokens": [1, 1, 1, 1]})
    c = ql.Contract(row_checks={"tokens_cap": pl.col("tokens_out") <= 4096, "fast": pl.col("latency") < 5})
    logs = ql.read_logs(raw, contract=c)
    got = {k.name: k.failed for k in logs.report.checks if k.name in ("tokens_cap", "fast")}
    assert got == {"tokens_cap": 1, "fast": 1} and logs.height == 2
    assert logs.report.failures()[0].examples[0]["row"] in (1, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["0.1", "fast", None, "-0.5", "inf", "2"]), min_size=1, max_size=60),
       st.lists(st.integers(0, 60), max_size=6), st.integers(1, 4))
def test_reports_of_consecutive_parts_merge_into_the_whole_logs(lat, cuts, examples):
    # ContractReport.then is the one merge rule of every path that reads a log in parts
    raw = pl.DataFrame({"ts": [float(i) for i in range(len(lat))], "latency": lat})
    con = ql.Contract(examples=examples)
    m = ql.detect_columns(raw.columns)
    _, whole = ql.validate(ql.normalize(raw, m), con, mapping=m)
    bounds = sorted({0, len(lat), *(c for c in cuts if c < len(lat))})
    merged = None
    for a, b in zip(bounds, bounds[1:], strict=False):
        _, rep = ql.validate(ql.normalize(raw.slice(a, b - a), m), con, mapping=m)
        merged = rep if merged is None else merged.then(rep, examples)
    assert merged is not None
    assert merged.to_dict() == whole.to_dict()


def test_fingerprint_of_text_tells_values_nulls_and_empty_strings_apart():
    base = pl.DataFrame({"start": [0.0, 1.0, 2.0], "endpoint": ["a", "", None]})
    fp = ql.fingerprint(base).content_hash
    for other in (["a", None, ""], ["a", "", "x"], ["", "a", None], ["a", "", "null"]):
        assert ql.fingerprint(base.with_columns(endpoint=pl.Series(other))).content_hash != fp, other
    # the same values however they are laid out in memory (chunks, categorical, a slice)
    chunked = pl.concat([base.head(1), base.tail(2)], rechunk=False)
    assert chunked.n_chunks() == 2 and ql.fingerprint(chunked).content_hash == fp
    cat = base.with_columns(pl.col("endpoint").cast(pl.Categorical))
    assert ql.fingerprint(cat).content_hash == fp
    longer = pl.DataFrame({"start": [9.0, 0.0, 1.0, 2.0], "endpoint": ["zz", "a", "", None]})
    assert ql.fingerprint(longer.slice(1)).content_hash == fp
    # "ab" + "" and "a" + "b": the lengths tell them apart
    x = pl.DataFrame({"start": [0.0, 1.0], "endpoint": ["ab", ""]})
    y = pl.DataFrame({"start": [0.0, 1.0], "endpoint": ["a", "b"]})
    assert ql.fingerprint(x).content_hash != ql.fingerprint(y).content_hash
