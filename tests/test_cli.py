"""The ``qcore`` command line: help, demo, report, check (exit codes on injected faults), plan, simulate."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qcore import cli

NOW = 1_750_000_000.0

RULES = """
[defaults]
owner = "serving"
version = "3"

[[rule]]
id = "p99-latency"
metric = "p99"
threshold = 1.0
group_by = ["model_version"]
severity = "critical"

[[rule]]
id = "error-rate"
metric = "error_rate"
threshold = 0.02

[[rule]]
id = "freshness"
metric = "freshness"
max_age = "15m"
on_stale = "block"

[[rule]]
id = "contract"
metric = "invalid_fraction"
threshold = 0.0

[contract]
max_latency = 60.0
"""


def run(*argv: str) -> tuple[int, str, str]:
    """Run the real entry point in a subprocess (exit codes included)."""
    r = subprocess.run([sys.executable, "-m", "qcore.cli", *argv], capture_output=True, text=True, timeout=300,
                       check=False)
    return r.returncode, r.stdout, r.stderr


def make_log(path: Path, *, n: int = 6000, slow_version: bool = False, t_end: float = NOW,
             drop: float = 0.0, nulls: bool = False, wrong_types: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(t_end - 3600, t_end - 30, n))
    ver = rng.choice(["v1", "v2"], n)
    lat = rng.lognormal(-2.0, 0.5, n)
    if slow_version:
        lat = np.where(ver == "v2", lat * 12.0, lat)
    df = pl.DataFrame({"timestamp": t, "latency_ms": lat * 1000.0, "status": np.where(rng.random(n) < 0.005, 500, 200),
                       "model_version": ver})
    if drop:
        df = df.filter(pl.Series(rng.random(n) >= drop))
    if nulls:
        df = df.with_columns(latency_ms=pl.when(pl.int_range(pl.len()) % 50 == 0).then(None).otherwise(pl.col("latency_ms")))
    if wrong_types:
        df = df.with_columns(latency_ms=pl.col("latency_ms").cast(pl.String))
        df = df.with_columns(latency_ms=pl.when(pl.int_range(pl.len()) % 100 == 0).then(pl.lit("slow"))
                             .otherwise(pl.col("latency_ms")))
    if path.suffix == ".parquet":
        df.write_parquet(path)
    else:
        df.write_csv(path)
    return path


@pytest.fixture()
def rules(tmp_path):
    p = tmp_path / "rules.toml"
    p.write_text(RULES)
    return p


# ------------------------------------------------------------------ help and usage


@pytest.mark.parametrize("cmd", [[], ["demo"], ["report"], ["check"], ["plan"], ["simulate"]])
def test_help_everywhere(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes" in out and "usage: qcore" in out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["check", "x.csv"])        # --rules missing
    assert e.value.code == 2
    assert cli.main([]) == 2


def test_entry_point_declared():
    from qcore.rules.model import tomllib

    root = Path(__file__).resolve().parent.parent
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["qcore"] == "qcore.cli:main"


# ------------------------------------------------------------------ demo


def test_demo_text():
    code, out, err = run("demo", "--samples", "200000")
    assert code == 0, err
    assert "QuantileSketch" in out and "p99" in out and "p999" in out
    assert "Real trace: gentd26_lora_2024-12-03 (2,728 requests" in out
    assert "licence: research/study use; please cite: Lin et al." in out and "qcore datasets info" in out
    assert "Little's law" in out and "overall action" in out
    for ep in ("TXT_2_IMG", "IMG_2_IMG", "INPAINTING"):
        assert ep in out


def test_demo_json_and_html(tmp_path):
    html = tmp_path / "demo.html"
    code, out, err = run("demo", "--samples", "100000", "--format", "json", "--html", str(html))
    assert code == 0, err
    d = json.loads(out)
    for g in d["generated"]["quantiles"]:
        assert g["relative_error"] <= g["bound"]
    assert d["trace"]["rows"] == 2728
    # the slice is one whole day: Little's law over its own span is an identity
    assert d["littles_law"]["gap"] < 1e-9
    ids = {x["rule_id"] for x in d["decisions"]}
    assert ids == {"p99-latency", "error-rate", "littles-law", "freshness", "lineage"}
    assert all(x["status"] != "malformed" for x in d["decisions"])
    assert html.exists() and "<svg" in html.read_text()


def test_demo_data_shipped_with_attribution():
    data = Path(cli.__file__).resolve().parent / "data"
    csv = data / cli.DEMO_FILE
    text = (data / "ATTRIBUTION.md").read_text()
    import hashlib

    assert hashlib.sha256(csv.read_bytes()).hexdigest() in text
    assert "alibaba/clusterdata" in text and "SoCC" in text
    assert csv.read_text().count("\n") == 2729


# ------------------------------------------------------------------ report


def test_report_text_json_html(tmp_path):
    log = make_log(tmp_path / "log.parquet")
    code, out, err = run("report", str(log), "--group-by", "model_version", "--html", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "model_version=v1" in out and "model_version=v2" in out and "p99" in out
    code, out, err = run("report", str(log), "-g", "model_version", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert [g["group"] for g in d["groups"]] == ["model_version=v1", "model_version=v2", "all"]
    assert d["groups"][-1]["count"] == 6000
    # latency CDF, arrivals, latency over time (whole log, p99 per group), failures, in flight,
    # tokens in and out, TTFT, TPOT, burstiness; then one latency-over-time chart per group
    assert (tmp_path / "r.html").read_text().count("<svg") == 11 + 2


def test_report_column_error_lists_columns(tmp_path):
    p = tmp_path / "weird.csv"
    pl.DataFrame({"foo": [1.0], "bar": [2.0]}).write_csv(p)
    code, _out, err = run("report", str(p))
    assert code == 1 and "columns found" in err and "foo" in err
    code, _out, err = run("report", str(p), "--map", "start=foo", "--map", "duration=bar", "--format", "json")
    assert code == 0, err


def test_report_missing_file_exit_1(tmp_path):
    code, _out, err = run("report", str(tmp_path / "none.parquet"))
    assert code == 1 and "does not exist" in err


# ------------------------------------------------------------------ check: injected faults


def test_check_clean_logs_pass(tmp_path, rules):
    log = make_log(tmp_path / "ok.parquet")
    ev = tmp_path / "evidence.jsonl"
    code, out, err = run("check", str(log), "--rules", str(rules), "--now", str(NOW), "--evidence", str(ev))
    assert code == 0, out + err
    assert "overall action: accept" in out
    recs = [json.loads(x) for x in ev.read_text().splitlines()]
    assert len(recs) == 5 and all(r["status"] == "pass" for r in recs)
    assert recs[0]["data"]["sources"][0]["path"].endswith("ok.parquet")


def test_check_slow_model_version_rolls_back(tmp_path, rules):
    log = make_log(tmp_path / "slow.parquet", slow_version=True)
    code, out, err = run("check", str(log), "--rules", str(rules), "--now", str(NOW), "--format", "json")
    assert code == 5, out + err
    d = json.loads(out)
    p99 = {x["group"]: x for x in d["decisions"] if x["rule_id"] == "p99-latency"}
    assert p99["model_version=v1"]["status"] == "pass"
    assert p99["model_version=v2"]["status"] == "fail" and p99["model_version=v2"]["action"] == "rollback"
    assert d["overall_action"] == "rollback" and d["exit_code"] == 5


def test_check_stale_data_blocks(tmp_path, rules):
    log = make_log(tmp_path / "stale.parquet", t_end=NOW - 4 * 3600)
    code, out, err = run("check", str(log), "--rules", str(rules), "--now", str(NOW))
    assert code == 4, out + err
    assert "stale" in out and "overall action: block" in out


def test_check_nulls_and_wrong_types_are_malformed(tmp_path, rules):
    for kw in ({"nulls": True}, {"wrong_types": True}):
        log = make_log(tmp_path / "bad.csv", **kw)
        code, out, err = run("check", str(log), "--rules", str(rules), "--now", str(NOW), "--format", "json")
        assert code == 4, out + err
        d = json.loads(out)
        c = next(x for x in d["decisions"] if x["rule_id"] == "contract")
        assert c["status"] == "malformed" and c["value"] == pytest.approx(120 / 6000 if kw.get("nulls") else 60 / 6000)
        assert d["contract"]["rows_excluded"] > 0
    # refusing the input instead of excluding rows is an error exit with the counts
    code, out, err = run("check", str(log), "--rules", str(rules), "--now", str(NOW), "--refuse")
    assert code == 1 and "bad_type_latency: 60" in err


def test_check_dropped_rows_detected_as_rate_drift(tmp_path):
    # the last half hour lost 60% of its rows (a collector outage)
    rng = np.random.default_rng(8)
    n = 8000
    t = np.sort(rng.uniform(NOW - 3600, NOW, n))
    keep = (t < NOW - 1800) | (rng.random(n) > 0.6)
    df = pl.DataFrame({"ts": t[keep], "latency": rng.exponential(0.1, keep.sum()), "status": 200})
    p = tmp_path / "drop.parquet"
    df.write_parquet(p)
    r = tmp_path / "drift.toml"
    r.write_text('[[rule]]\nid = "rate"\nversion = "1"\nowner = "sre"\nmetric = "rate_drift"\n'
                 'window = "30m"\nthreshold = 0.25\nbin = "1m"\n')
    code, out, err = run("check", str(p), "--rules", str(r), "--now", str(NOW), "--format", "json")
    d = json.loads(out)
    assert d["decisions"][0]["status"] == "inconsistent" and code == 3, out + err
    # the complete log is consistent
    pl.DataFrame({"ts": t, "latency": rng.exponential(0.1, n), "status": 200}).write_parquet(p)
    code, out, err = run("check", str(p), "--rules", str(r), "--now", str(NOW), "--format", "json")
    assert code == 0 and json.loads(out)["decisions"][0]["status"] == "pass"


def test_check_clock_skew_is_malformed(tmp_path, rules):
    log = make_log(tmp_path / "skew.parquet")
    df = pl.read_parquet(log).with_columns(
        timestamp=pl.when(pl.int_range(pl.len()) % 500 == 0).then(pl.col("timestamp") + 30 * 86400)
        .otherwise(pl.col("timestamp")))
    df.write_parquet(log)
    code, out, _err = run("check", str(log), "--rules", str(rules), "--now", str(NOW), "--format", "json")
    d = json.loads(out)
    c = next(x for x in d["decisions"] if x["rule_id"] == "contract")
    # timestamps a month in the future are outside the plausible range (now + 1 day)
    assert c["status"] == "malformed" and code == 4
    assert {x["name"]: x["failed"] for x in d["contract"]["checks"]}["time_range"] == 12


def test_check_invalid_rules_exit_1(tmp_path):
    log = make_log(tmp_path / "ok.parquet", n=100)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\nmetric = "p99"\n')
    code, _out, err = run("check", str(log), "--rules", str(bad))
    assert code == 1 and "threshold is required" in err
    code, _out, err = run("check", str(log), "--rules", str(tmp_path / "none.toml"))
    assert code == 1 and "does not exist" in err


# ------------------------------------------------------------------ plan / simulate


def test_plan_mmc_matches_queueing_model():
    import qcore

    code, out, err = run("plan", "--rate", "90", "--service-mean", "0.1", "--slo", "0.5", "--quantile", "0.99",
                         "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    c = d["servers"]
    assert d["method"] == "analytic"
    assert qcore.queueing.mmc(90.0, 10.0, c).response_quantile(0.99) <= 0.5
    assert qcore.queueing.mmc(90.0, 10.0, c - 1).response_quantile(0.99) > 0.5 if c - 1 > 9 else True


def test_plan_text_and_bad_input():
    code, out, err = run("plan", "--rate", "90", "--service-mean", "0.1", "--slo", "0.5")
    assert code == 0 and "servers needed" in out
    code, out, err = run("plan", "--rate", "-1", "--service-mean", "0.1", "--slo", "0.5")
    assert code == 1 and "--rate" in err


def test_simulate_flags_and_scenario(tmp_path):
    code, out, err = run("simulate", "--rate", "0.8", "--customers", "200000", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    # M/M/1 at rho = 0.8: utilization 0.8, mean response 1/(mu - lambda) = 5
    assert d["utilization"] == pytest.approx(0.8, abs=0.02)
    assert d["mean_response"] == pytest.approx(5.0, rel=0.1)
    sc = tmp_path / "s.toml"
    sc.write_text("rate = 1.6\nservers = 2\ncustomers = 100000\nseed = 3\n")
    code, out, err = run("simulate", "--scenario", str(sc), "--format", "json")
    assert code == 0, err
    d2 = json.loads(out)
    assert d2["params"]["servers"] == 2 and d2["utilization"] == pytest.approx(0.8, abs=0.02)
    sc.write_text("rate = 1.6\nservrs = 2\n")
    code, out, err = run("simulate", "--scenario", str(sc))
    assert code == 1 and "servrs" in err
    code, out, err = run("simulate")
    assert code == 1 and "--rate" in err
    assert time.time() > 0


def test_check_slo_burn_rate(tmp_path):
    rng = np.random.default_rng(12)
    t = np.sort(rng.uniform(NOW - 2 * 86400, NOW, 100_000))
    bad = (t > NOW - 1800) & (rng.random(t.size) < 0.2)
    p = tmp_path / "slo.parquet"
    pl.DataFrame({"ts": t, "latency": 0.05, "status": np.where(bad, 500, 200)}).write_parquet(p)
    r = tmp_path / "slo.toml"
    r.write_text('[defaults]\nowner = "sre"\nversion = "1"\n\n[[slo]]\nid = "availability"\nobjective = 0.999\n')
    code, out, err = run("check", str(p), "--rules", str(r), "--now", str(NOW), "--format", "json")
    assert code == 5, out + err
    d = json.loads(out)
    st = {x["metric"]: x["status"] for x in d["decisions"]}
    assert st["burn_rate_1h/5m"] == "fail" and st["burn_rate_6h/30m"] == "fail"


def test_report_on_a_dask_cluster_matches_single_machine(tmp_path, capsys):
    # `qcore report --dask local:2` on a real two-process local cluster gives the report of
    # `qcore report`: the same table (quantiles with their intervals, rates, burstiness,
    # error rates, Little's law, peak concurrency), contract report and fingerprint.
    pytest.importorskip("distributed")
    import json as _json

    from qcore.cli import main as _main

    rng = np.random.default_rng(5)
    n = 40_000
    ts = np.sort(rng.uniform(0, 1800, n))
    lat = rng.lognormal(-2, 0.7, n)
    lat[17] = -1.0  # one contract violation (negative latency)
    ep = rng.choice(["/a", "/b"], n)
    st = np.where(rng.random(n) < 0.02, 500, 200)
    for i in range(4):
        sl = slice(i * n // 4, (i + 1) * n // 4)
        pl.DataFrame({"timestamp": ts[sl], "latency_s": lat[sl], "endpoint": ep[sl], "status": st[sl]}).write_parquet(
            tmp_path / f"p{i}.parquet", row_group_size=4_000)
    logs = str(tmp_path / "*.parquet")
    outs = []
    for extra in ([], ["--dask", "local:2", "--html", str(tmp_path / "r.html")]):
        code = _main(["report", logs, "-g", "endpoint", "--bin", "60", "--format", "json", *extra])
        assert code == 0
        outs.append(_json.loads(capsys.readouterr().out))
    single, dist = outs
    assert dist.pop("html").endswith("r.html") and (tmp_path / "r.html").stat().st_size > 10_000
    assert single == dist          # the single-machine report, bit for bit
    assert single["contract"]["rows_excluded"] == 1 and single["exact"]
    assert [g["count"] for g in single["groups"]] == [int((ep == "/a").sum()) - (ep[17] == "/a"),
                                                     int((ep == "/b").sum()) - (ep[17] == "/b"), n - 1]
    assert main_refuses(tmp_path) == 1


def main_refuses(tmp_path):
    from qcore.cli import main as _main

    return _main(["report", str(tmp_path / "*.parquet"), "--dask", "local:1", "--refuse"])


def test_check_on_a_dask_cluster_matches_single_machine(tmp_path):
    # `qcore check --dask local:2` on a real two-process local cluster: the same decisions,
    # contract report, evidence records (file hashes included) and exit code.
    pytest.importorskip("distributed")
    rng = np.random.default_rng(21)
    n = 30_000
    t = np.sort(rng.uniform(NOW - 7200, NOW - 60, n))
    lat = np.round(rng.lognormal(-2, 0.8, n), 3)
    lat[5] = -1.0  # one row the contract excludes
    ep = rng.choice(["/chat", "/embed"], n)
    st = np.where(rng.random(n) < 0.015, 500, 200)
    for i in range(3):
        sl = slice(i * n // 3, (i + 1) * n // 3)
        pl.DataFrame({"ts": t[sl], "latency_ms": lat[sl] * 1000, "endpoint": ep[sl], "status": st[sl]}).write_parquet(
            tmp_path / f"p{i}.parquet", row_group_size=2_000)
    r = tmp_path / "rules.toml"
    r.write_text(
        '[defaults]\nowner = "sre"\nversion = "2"\n\n'
        '[[rule]]\nid = "p99"\nmetric = "p99"\nthreshold = 0.5\ngroup_by = ["endpoint"]\n\n'
        '[[rule]]\nid = "err"\nmetric = "error_rate"\nthreshold = 0.01\ngroup_by = ["endpoint"]\n\n'
        '[[rule]]\nid = "little"\nmetric = "littles_gap"\nthreshold = 0.02\nwindow = "30m"\n\n'
        '[[rule]]\nid = "fresh"\nmetric = "freshness"\nmax_age = "10m"\n\n'
        '[[slo]]\nid = "avail"\nobjective = 0.99\n')
    logs = str(tmp_path / "*.parquet")
    common = ["check", logs, "--rules", str(r), "--now", str(NOW), "--format", "json"]
    code1, out1, err1 = run(*common, "--evidence", str(tmp_path / "e1.jsonl"))
    code2, out2, err2 = run(*common, "--evidence", str(tmp_path / "e2.jsonl"), "--dask", "local:2")
    assert code1 == code2 == 4, err1 + err2  # the error-rate rule blocks
    d1, d2 = json.loads(out1), json.loads(out2)
    assert d2["evidence"].endswith("e2.jsonl")
    d1.pop("evidence"), d2.pop("evidence")
    assert d1 == d2
    assert d1["contract"]["rows_excluded"] == 1
    assert (tmp_path / "e1.jsonl").read_text() == (tmp_path / "e2.jsonl").read_text()
    code3, out3, err3 = run(*common, "--dask", "local:2", "--persist")
    d3 = json.loads(out3)
    d3.pop("evidence")
    assert code3 == 4 and d3 == d1, err3
    code, out, err = run("check", logs, "--rules", str(r), "--now", str(NOW), "--refuse", "--dask", "local:1")
    assert code == 1 and "contract" in err.lower()
    code, out, err = run(*common, "--persist")
    assert code == 1 and "--persist needs --dask" in err


def test_datasets_command_lists_describes_and_writes(tmp_path, monkeypatch, capsys):
    from qcore import datasets

    monkeypatch.setenv("QCORE_CACHE_DIR", str(tmp_path))
    assert cli.main(["datasets", "--format", "json"]) == cli.EXIT_OK
    listed = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in listed] == datasets.names()
    assert cli.main(["datasets", "path", "azure_llm_2023_conv"]) == cli.EXIT_OK
    p = Path(capsys.readouterr().out.strip())
    assert p.is_relative_to(tmp_path) and p.read_bytes() == datasets.read_bytes("azure_llm_2023_conv")
    assert cli.main(["datasets", "licence", "ragpulse"]) == cli.EXIT_OK
    assert "MIT License" in capsys.readouterr().out
    assert cli.main(["datasets", "info", "nope"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "unknown dataset 'nope'" in err and "Traceback" not in err
    assert cli.main(["datasets", "info"]) == cli.EXIT_ERROR
    assert "name the dataset" in capsys.readouterr().err


def test_demo_on_a_trace_without_latencies(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QCORE_CACHE_DIR", str(tmp_path))
    assert cli.main(["demo", "--samples", "2000", "--dataset", "azure_llm_2023_code", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["trace"]["dataset"] == "azure_llm_2023_code" and d["trace"]["rows"] == 8819
    assert d["trace"]["licence"] == "CC-BY-4.0" and d["littles_law"] is None
    burst = next(x for x in d["decisions"] if x["rule_id"] == "burstiness")
    assert burst["status"] == "fail" and burst["value"] > 100     # the code trace is very bursty
    assert d["arrivals"]["count"] == 8819


def _strict_json(text: str):
    """Parse with a strict parser: NaN, Infinity and -Infinity are not JSON."""
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_every_command_prints_strict_json(tmp_path):
    log = make_log(tmp_path / "log.parquet", n=800)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    runs = {
        "demo": ["demo", "--samples", "2000"],
        "datasets": ["datasets"],
        "dataset info": ["datasets", "info", "ragpulse"],
        "report": ["report", str(log)],
        "check": ["check", str(log), "--rules", str(rules), "--now", str(NOW)],
        "plan (simulated, NaN-prone)": ["plan", "--rate", "50", "--service-mean", "0.5", "--service", "lognormal",
                                        "--service-cv", "2", "--slo", "5"],
        "plan": ["plan", "--rate", "40", "--service-mean", "0.5", "--slo", "2.5"],
        "simulate": ["simulate", "--rate", "0.9", "--servers", "1", "--service-mean", "1", "--customers", "20000"],
        "error": ["report", str(tmp_path / "missing.parquet")],
    }
    for name, argv in runs.items():
        code, out, err = run(*argv, "--format", "json")
        assert "Traceback" not in err, (name, err)
        doc = _strict_json(out)
        assert doc, name
        if name == "error":
            assert code == cli.EXIT_ERROR and doc["error"] and doc["message"]
        else:
            assert code in (0, 3, 4, 5), (name, code, err)


def test_simulate_flags_an_unstable_system_and_refuses_a_meaningless_cv():
    code, out, err = run("simulate", "--rate", "1", "--servers", "1", "--service-mean", "2", "--customers", "20000",
                         "--format", "json")
    assert code == cli.EXIT_UNSTABLE == 6, err
    d = json.loads(out)
    assert d["stable"] is False and d["offered_load"] == 2.0
    code, out, _ = run("simulate", "--rate", "1", "--servers", "1", "--service-mean", "2", "--customers", "20000")
    assert code == 6 and out.startswith("WARNING: unstable: offered load 2")
    code, out, _ = run("simulate", "--rate", "0.5", "--servers", "1", "--service-mean", "1", "--customers", "20000",
                       "--format", "json")
    assert code == 0 and json.loads(out)["stable"] is True
    code, _, err = run("simulate", "--rate", "0.5", "--service-mean", "1", "--service-cv", "2")
    assert code == cli.EXIT_ERROR and "--service-cv applies to gamma and lognormal" in err
    assert "Traceback" not in err
    code, _, err = run("plan", "--rate", "5", "--service-mean", "0.1", "--slo", "1", "--service", "deterministic",
                       "--service-cv", "0.5")
    assert code == cli.EXIT_ERROR and "deterministic service has a fixed cv" in err


def test_unreadable_logs_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    for argv in (["report", str(empty)], ["check", str(empty), "--rules", str(rules)]):
        code, out, err = run(*argv)
        assert code == cli.EXIT_ERROR and "Traceback" not in err, err
        assert err.strip().startswith(f"qcore {argv[0]}: error: {empty}: cannot be read as csv: empty CSV")
        code, out, _ = run(*argv, "--format", "json")
        assert code == 1 and _strict_json(out)["error"] == "LogReadError"


def test_a_glob_whose_nested_column_changes_type(tmp_path):
    # Mooncake-like files whose hash_ids are lists in one file and a string in the other:
    # no role reads the column, so the files are read without it.
    (tmp_path / "a.jsonl").write_text('{"timestamp": 1.0, "latency": 0.5, "hash_ids": [1, 2]}\n'
                                      '{"timestamp": 2.0, "latency": 0.5, "hash_ids": [3]}\n')
    (tmp_path / "b.jsonl").write_text('{"timestamp": 3.0, "latency": 0.25, "hash_ids": {"x": 1}}\n')
    code, out, err = run("report", str(tmp_path / "*.jsonl"), "--format", "json")
    assert code == 0 and "Traceback" not in err, err
    assert _strict_json(out)["groups"][0]["count"] == 3


def test_report_fails_when_every_row_breaks_the_contract_and_refuses_a_file_twice(tmp_path):
    bad = tmp_path / "bad.csv"
    pl.DataFrame({"ts": [1.0, 2.0, 3.0], "latency": [-1.0, -2.0, -3.0]}).write_csv(bad)
    code, out, err = run("report", str(bad))
    assert code == cli.EXIT_ERROR and "all 3 rows broke the data contract" in err and "Traceback" not in err
    code, out, _ = run("report", str(bad), "--format", "json")
    assert code == cli.EXIT_ERROR and _strict_json(out)["contract"]["rows_valid"] == 0
    good = make_log(tmp_path / "log.parquet", n=200)
    code, _, err = run("report", str(good), str(tmp_path / "*.parquet"))
    assert code == cli.EXIT_ERROR and "is given twice" in err and "counted twice" in err
