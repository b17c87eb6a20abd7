"""Rules: declarations, statuses and actions, evidence, burn-rate alerts, error-rate gates."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import polars as pl
import pytest

import qcore
import qcore.rules as qr
from qcore.rules.model import RuleError

NOW = 1_750_000_000.0


def _log(n: int = 2000, err: float = 0.01, seed: int = 0, t_end: float = NOW, versions=("v1",)) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(t_end - 3600, t_end - 60, n))
    return pl.DataFrame({
        "ts": ts,
        "latency": rng.lognormal(-2, 0.5, n),
        "status": np.where(rng.random(n) < err, 500, 200),
        "endpoint": rng.choice(["/a", "/b"], n),
        "model_version": rng.choice(list(versions), n),
    })


def R(**kw):
    base = {"id": "r", "version": "1", "owner": "team"}
    base.update(kw)
    return qr.Rule(**base)


# ---------------------------------------------------------------- declarations


def test_toml_rules_round_trip(tmp_path):
    p = tmp_path / "rules.toml"
    p.write_text("""
[defaults]
owner = "serving"
version = "7"

[[rule]]
id = "p99"
metric = "p99"
threshold = 2.5
group_by = ["endpoint"]
severity = "critical"

[[rule]]
id = "errors"
metric = "error_rate"
threshold = 0.01
warn_threshold = 0.005
window = "1h"
""")
    rules = qr.load_rules(p)
    assert [r.id for r in rules] == ["p99", "errors"]
    assert rules[0].metric == "latency_quantile" and rules[0].quantile == 0.99
    assert rules[0].on_fail == "rollback" and rules[0].owner == "serving" and rules[0].version == "7"
    assert rules[1].window == 3600.0 and rules[1].comparison == "<="
    assert qr.Rule.from_dict(rules[0].to_dict()) == rules[0]


@pytest.mark.parametrize("metric,q", [("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("latency_p99.9", 0.999),
                                      ("p9999", 0.9999)])
def test_quantile_shorthands(metric, q):
    assert R(metric=metric, threshold=1.0).quantile == pytest.approx(q)


@pytest.mark.parametrize("kw,match", [
    ({"metric": "p42x", "threshold": 1.0}, "unknown metric"),
    ({"metric": "error_rate"}, "threshold is required"),
    ({"metric": "error_rate", "threshold": 0.1, "comparison": "=="}, "comparison"),
    ({"metric": "error_rate", "threshold": float("nan")}, "finite"),
    ({"metric": "error_rate", "threshold": 0.1, "warn_threshold": 0.2}, "warn_threshold"),
    ({"metric": "error_rate", "threshold": 0.1, "on_fail": "panic"}, "on_fail"),
    ({"metric": "error_rate", "threshold": 0.1, "window": "soon"}, "window"),
    ({"metric": "error_rate", "threshold": 0.1, "confidence": 1.5}, "confidence"),
    ({"metric": "latency_quantile", "threshold": 1.0}, "quantile"),
    ({"metric": "latency_quantile", "threshold": 1.0, "quantile": 1.0}, "quantile"),
    ({"metric": "null_fraction"}, "column"),
    ({"metric": "error_rate", "threshold": 0.1, "severity": "meh"}, "severity"),
])
def test_invalid_rules_named(kw, match):
    with pytest.raises(RuleError, match=match):
        R(**kw)


def test_rule_file_errors(tmp_path):
    with pytest.raises(RuleError, match="invalid TOML"):
        qr.load_rules("[[rule]]\nid = \n")
    with pytest.raises(RuleError, match="unknown field"):
        qr.parse_rules({"rule": [{"id": "a", "metric": "error_rate", "threshold": 0.1, "treshold": 2}]})
    with pytest.raises(RuleError, match="declared twice"):
        qr.parse_rules([{"id": "a", "metric": "error_rate", "threshold": 0.1}] * 2)
    with pytest.raises(RuleError, match="no rules"):
        qr.parse_rules({"defaults": {}})
    with pytest.raises(FileNotFoundError):
        qr.load_rules(tmp_path / "missing.toml")


def test_parse_duration():
    assert [qr.parse_duration(v, "x") for v in ("250ms", "30s", "5m", "1h", "1d", "1w", 12)] == \
        [0.25, 30.0, 300.0, 3600.0, 86400.0, 604800.0, 12.0]
    for bad in ("-1s", "0", "fast", True, None):
        with pytest.raises(RuleError):
            qr.parse_duration(bad, "x")


# ---------------------------------------------------------------- error rate against truth


def test_error_rate_value_and_wilson_ci_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    log = _log(3000, err=0.03, seed=3)
    d = qr.evaluate(log, [R(metric="error_rate", threshold=0.05, confidence=0.9)], now=NOW)
    k = int((log["status"] == 500).sum())
    row = d.row(0, named=True)
    assert row["value"] == k / 3000 and row["n"] == 3000
    ci = stats.binomtest(k, 3000).proportion_ci(confidence_level=0.9, method="wilson")
    assert row["ci_lo"] == pytest.approx(ci.low, rel=1e-9) and row["ci_hi"] == pytest.approx(ci.high, rel=1e-9)
    assert row["status"] == "pass" and row["action"] == "accept"


def test_error_rate_fail_warn_and_grouping():
    log = _log(4000, err=0.0, seed=1).with_columns(
        status=pl.when((pl.col("endpoint") == "/b") & (pl.int_range(pl.len()) % 10 == 0)).then(500).otherwise(200))
    rules = [R(metric="error_rate", threshold=0.05, warn_threshold=0.001, group_by=["endpoint"], on_fail="rollback")]
    d = qr.evaluate(log, rules, now=NOW)
    got = {r["group"]: (r["status"], r["action"]) for r in d.iter_rows(named=True)}
    assert got == {"endpoint=/a": ("pass", "accept"), "endpoint=/b": ("fail", "rollback")}
    assert qr.overall_action(d) == "rollback" and qr.exit_code(d) == 5
    # a rate between the warn and the hard threshold warns
    d2 = qr.evaluate(_log(4000, err=0.01, seed=2), [R(metric="error_rate", threshold=0.05, warn_threshold=0.001)],
                     now=NOW)
    assert d2["status"][0] == "warn" and d2["action"][0] == "warn" and qr.exit_code(d2) == 0


def test_decide_on_upper_bound_is_conservative():
    log = _log(400, err=0.0, seed=5).with_columns(status=pl.when(pl.int_range(pl.len()) < 3).then(500).otherwise(200))
    est = qr.evaluate(log, [R(metric="error_rate", threshold=0.01)], now=NOW).row(0, named=True)
    up = qr.evaluate(log, [R(metric="error_rate", threshold=0.01, decide_on="upper")], now=NOW).row(0, named=True)
    assert est["status"] == "pass" and up["status"] == "fail" and up["ci_hi"] > 0.01


def test_low_traffic_is_insufficient_evidence():
    d = qr.evaluate(_log(40, err=0.0), [R(metric="error_rate", threshold=0.01)], now=NOW)
    r = d.row(0, named=True)
    assert r["status"] == "insufficient_evidence" and r["action"] == "escalate" and r["min_n"] == 100
    d = qr.evaluate(_log(40, err=0.0), [R(metric="error_rate", threshold=0.01, min_samples=10)], now=NOW)
    assert d["status"][0] == "pass"


# ---------------------------------------------------------------- the five failure questions


def test_stale_data_blocks():
    log = _log(500, t_end=NOW - 7200)
    d = qr.evaluate(log, [R(id="fresh", metric="freshness", max_age="1h"),
                          R(id="err", metric="error_rate", threshold=0.5, max_age="1h")], now=NOW)
    st = dict(zip(d["rule_id"], d["status"], strict=True))
    assert st == {"fresh": "stale", "err": "stale"}
    assert set(d["action"]) == {"block"}
    age = d.filter(pl.col("rule_id") == "fresh")["value"][0]
    assert age == pytest.approx(NOW - float(log["ts"].max() + log["latency"].to_numpy()[-1]), abs=1e-6)
    fresh = qr.evaluate(_log(500), [R(id="fresh", metric="freshness", max_age="1h")], now=NOW)
    assert fresh["status"][0] == "pass"


def test_missing_column_is_malformed_not_pass():
    log = _log(500).drop("model_version")
    d = qr.evaluate(log, [R(metric="error_rate", threshold=0.1, group_by=["model_version"])], now=NOW)
    assert d.row(0, named=True)["status"] == "malformed" and d["action"][0] == "block"
    arrivals_only = pl.DataFrame({"ts": np.arange(1000.0)})
    d = qr.evaluate(arrivals_only, [R(metric="error_rate", threshold=0.1)], now=NOW)
    # no status or error column: an error-rate rule cannot be evaluated and must not pass
    assert d["status"][0] == "malformed" and d["action"][0] == "block"
    assert "status or error" in d["message"][0]
    d = qr.evaluate(arrivals_only, [R(metric="cost_per_1k_tokens", threshold=1.0)], now=NOW)
    assert d["status"][0] == "malformed" and "cost" in d["message"][0]


def test_wrong_types_and_clock_skew_are_malformed():
    log = _log(300)
    lat = log["latency"].cast(pl.String).to_list()
    lat[5] = "fast"
    lat[6] = "n/a"
    ts = log["ts"].to_list()
    ts[10] = NOW + 30 * 86400      # clock skewed a month ahead
    bad = log.with_columns(latency=pl.Series(lat), ts=pl.Series(ts))
    rule = R(id="contract", metric="invalid_fraction", threshold=0.0)
    from qcore.logs import Contract, read_logs

    logs = read_logs(bad, contract=Contract(max_time=NOW + 3600))
    d = qr.evaluate(logs, [rule], now=NOW)
    r = d.row(0, named=True)
    assert r["status"] == "malformed" and r["value"] == pytest.approx(3 / 300)
    details = json.loads(r["evidence"])["details"]["failed_checks"]
    assert details == {"bad_type_latency": 2, "time_range": 1}
    # the same log, clean, passes
    ok = qr.evaluate(read_logs(log, contract=Contract(max_time=NOW + 3600)), [rule], now=NOW)
    assert ok["status"][0] == "pass"


def test_nulls_give_malformed_and_unauditable():
    log = _log(400)
    mv = log["model_version"].to_list()
    for i in range(0, 400, 8):
        mv[i] = None
    log = log.with_columns(model_version=pl.Series(mv, dtype=pl.String))
    d = qr.evaluate(log, [R(id="nulls", metric="null_fraction", column="model_version", threshold=0.01),
                          R(id="lineage", metric="unaudited_fraction")], now=NOW)
    st = dict(zip(d["rule_id"], zip(d["status"], d["value"], strict=True), strict=True))
    assert st["nulls"] == ("malformed", pytest.approx(50 / 400))
    assert st["lineage"] == ("unauditable", pytest.approx(50 / 400))
    assert qr.overall_action(d) == "block"
    # no model version column at all: nothing is auditable
    d = qr.evaluate(log.drop("model_version"), [R(id="lineage", metric="unaudited_fraction")], now=NOW)
    assert d["status"][0] == "unauditable" and d["value"][0] == 1.0


def test_rule_without_owner_or_version_is_unauditable():
    d = qr.evaluate(_log(500), [qr.Rule(id="anon", metric="error_rate", threshold=0.5)], now=NOW)
    r = d.row(0, named=True)
    assert r["status"] == "unauditable" and r["action"] == "block" and "owner" in r["message"]


def test_costly_requests_fail_with_route_response():
    rng = np.random.default_rng(7)
    n = 500
    log = _log(n).with_columns(tokens_in=pl.Series(rng.integers(100, 1000, n)),
                               tokens_out=pl.Series(rng.integers(10, 100, n)),
                               cost=pl.Series(rng.uniform(0.001, 0.003, n)))
    truth = log["cost"].sum() / (log["tokens_in"].sum() + log["tokens_out"].sum()) * 1000
    d = qr.evaluate(log, [R(metric="cost_per_1k_tokens", threshold=truth * 0.9)], now=NOW)
    r = d.row(0, named=True)
    assert r["value"] == pytest.approx(truth, rel=1e-12)
    assert r["status"] == "fail" and "route, cache, batch or downscale" in r["response"]
    assert r["ci_lo"] < truth < r["ci_hi"]


def test_filters_and_unknown_filter_column():
    log = _log(3000, err=0.0).with_columns(
        status=pl.when(pl.col("endpoint") == "/b").then(500).otherwise(200))
    d = qr.evaluate(log, [R(metric="error_rate", threshold=0.01, filter={"endpoint": "/a"})], now=NOW)
    assert d["status"][0] == "pass"
    d = qr.evaluate(log, [R(metric="error_rate", threshold=0.01, filter={"region": "eu"})], now=NOW)
    assert d["status"][0] == "malformed"


# ---------------------------------------------------------------- evidence


def test_evidence_records_replay(tmp_path):
    log = _log(1500, err=0.02, seed=11)
    rules = [R(id="err", version="4", owner="sre", metric="error_rate", threshold=0.05, group_by=["endpoint"])]
    d = qr.evaluate(log, rules, now=NOW)
    path = tmp_path / "ev" / "evidence.jsonl"
    assert qr.write_evidence(d, path) == 2
    qr.write_evidence(d, path)
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    rec = json.loads(lines[0])
    assert rec["rule"]["id"] == "err" and rec["rule"]["version"] == "4" and rec["rule"]["owner"] == "sre"
    assert rec["qcore_version"] == qcore.__version__
    assert rec["data"]["rows"] == 1500 and len(rec["data"]["content_hash"]) == 64
    assert rec["data"]["time_min"] == pytest.approx(log["ts"].min())
    assert rec["status"] in qr.STATUSES and rec["action"] in qr.ACTIONS
    # replay: the rule in the record, on the same data, gives the same decision
    again = qr.evaluate(log, [qr.Rule.from_dict(rec["rule"])], now=rec["evaluated_at"])
    first = again.filter(pl.col("group") == d["group"][0]).row(0, named=True)
    assert first["value"] == rec["value"] and first["status"] == rec["status"]
    assert json.loads(first["evidence"])["data"]["content_hash"] == rec["data"]["content_hash"]


# ---------------------------------------------------------------- burn rate


def test_workbook_factors():
    w = qr.burn_rate_alerts(_log(100), objective=0.999, period="30d")
    assert w["factor"].to_list() == pytest.approx([14.4, 6.0, 3.0, 1.0])
    assert w["long_window"].to_list() == [3600.0, 21600.0, 86400.0, 259200.0]
    assert w["short_window"].to_list() == [300.0, 1800.0, 7200.0, 21600.0]
    p = qr.burn_rate_alerts(_log(100), objective=0.999, period="28d", windows="pyrra")
    assert p["factor"].to_list() == [14.0, 7.0, 2.0, 1.0]
    assert p["long_window"].to_list() == pytest.approx([3600.0, 21600.0, 86400.0, 345600.0])


def test_burn_rates_against_numpy_reference():
    rng = np.random.default_rng(4)
    n = 200_000
    t = np.sort(rng.uniform(0, 4 * 86400, n))
    # errors concentrate in the last 40 minutes
    p_err = np.where(t > t.max() - 2400, 0.2, 0.0005)
    bad = rng.random(n) < p_err
    lat = rng.exponential(0.2, n)
    log = pl.DataFrame({"ts": t, "latency": lat, "status": np.where(bad, 500, 200)})
    a = qr.burn_rate_alerts(log, objective=0.999)
    t_end = t.max()
    for row in a.iter_rows(named=True):
        for side in ("long", "short"):
            w = row[f"{side}_window"]
            m = (t > t_end - w) & (t <= t_end)
            assert row[f"{side}_events"] == m.sum()
            assert row[f"{side}_burn"] == pytest.approx(bad[m].mean() / 0.001, rel=1e-9)
    page = a.filter(pl.col("long_window") == 3600.0).row(0, named=True)
    assert page["firing"]          # 40 of 60 minutes at 20% errors: burn ~130 > 14.4 on both windows
    slow_ticket = a.filter(pl.col("long_window") == 3 * 86400.0).row(0, named=True)
    assert slow_ticket["long_burn"] > 1 and slow_ticket["firing"]
    # latency SLO: slow requests are bad too
    lat_alerts = qr.burn_rate_alerts(log, objective=0.99, latency_threshold=0.5)
    r = lat_alerts.row(0, named=True)
    m = (t > t_end - 3600) & (t <= t_end)
    assert r["long_bad"] == int((bad[m] | (lat[m] > 0.5)).sum())


def test_burn_rate_low_traffic_guard_and_errors():
    log = pl.DataFrame({"ts": [0.0, 10.0, 20.0], "status": [500, 500, 500]})
    a = qr.burn_rate_alerts(log, objective=0.999, min_events=10)
    assert not a["firing"].any() and a["low_traffic"].all()
    assert qr.burn_rate_alerts(log, objective=0.999)["firing"].all()
    with pytest.raises(ValueError, match="objective"):
        qr.burn_rate_alerts(log, objective=1.0)
    with pytest.raises(ValueError, match="latency"):
        qr.burn_rate_alerts(log, objective=0.9, latency_threshold=0.5)
    with pytest.raises(ValueError, match="windows"):
        qr.burn_rate_alerts(log, objective=0.9, windows="nope")
    custom = qr.burn_rate_alerts(log, objective=0.9, windows=[{"severity": "page", "long": "1h", "short": "5m",
                                                                "budget": 0.02}], period="30d")
    assert custom["factor"][0] == pytest.approx(14.4)


# ---------------------------------------------------------------- compare: error rate


def _rate_log(n: int, k: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    st = np.full(n, 200)
    st[rng.choice(n, k, replace=False)] = 500
    return pl.DataFrame({"ts": np.arange(float(n)), "status": st})


def test_compare_error_rate_regression_and_noise():
    base = _rate_log(20_000, 100, 1)               # 0.5 %
    same = _rate_log(20_000, 110, 2)               # 0.55 %: noise
    worse = _rate_log(20_000, 400, 3)              # 2 %
    ok = qr.compare(same, base, metrics=["error_rate"])
    assert ok.verdict == "pass" and ok.action == "accept" and ok.score == 100.0
    row = ok.table.row(0, named=True)
    assert row["diff_lo"] < 0 < row["diff_hi"] and row["classification"] == "Pass"
    bad = qr.compare(worse, base, metrics=["error_rate"])
    assert bad.verdict == "fail" and bad.action == "rollback" and bad.table["classification"][0] == "High"
    assert bad.evidence["candidate"]["rows"] == 20_000 and bad.evidence["qcore_version"] == qcore.__version__
    # improvement is not a failure when only increases matter
    better = qr.compare(base, worse, metrics=["error_rate"])
    assert better.verdict == "pass"
    assert qr.compare(base, worse, metrics=["error_rate"], direction="either").verdict == "fail"


def test_compare_too_little_data_fails_not_passes():
    r = qr.compare(_rate_log(10, 0, 1), _rate_log(10, 0, 2), metrics=["error_rate"])
    assert r.table["classification"][0] == "Nodata" and r.verdict == "fail"


def test_compare_difference_interval_coverage():
    # the Agresti–Caffo interval of p_a − p_b covers the truth at about the nominal level
    rng = np.random.default_rng(9)
    pa, pb, n = 0.02, 0.01, 3000
    cover = 0
    trials = 300
    for _ in range(trials):
        ka, kb = rng.binomial(n, pa), rng.binomial(n, pb)
        r = qr.compare(_rate_log(n, ka, 1), _rate_log(n, kb, 2), metrics=["error_rate"], confidence=0.9)
        row = r.table.row(0, named=True)
        cover += row["diff_lo"] <= pa - pb <= row["diff_hi"]
    assert abs(cover / trials - 0.9) < 0.06


def test_compare_parameter_errors():
    a = _rate_log(100, 1, 1)
    for kw, match in [({"confidence": 1.0}, "confidence"), ({"tolerance": -1}, "tolerance"),
                      ({"direction": "up"}, "direction"), ({"metrics": ["p42x"]}, "unknown metric"),
                      ({"metrics": []}, "metrics"), ({"pass_score": 50, "marginal_score": 80}, "marginal")]:
        with pytest.raises(ValueError, match=match):
            qr.compare(a, a, **kw)


def test_statuses_and_actions_constants():
    assert qr.STATUSES == ("pass", "warn", "fail", "insufficient_evidence", "stale", "malformed",
                           "inconsistent", "unauditable")
    assert qr.ACTIONS == ("accept", "warn", "block", "rollback", "escalate")
    assert qr.EXIT_CODES["block"] == 4 and qr.EXIT_CODES["rollback"] == 5 and qr.EXIT_CODES["accept"] == 0
    assert not math.isnan(time.time())


# ---------------------------------------------------------------- [[slo]] decisions


def _burning(n_bad_last_hour: bool) -> pl.DataFrame:
    t = np.arange(0.0, 4 * 86400.0, 5.0)
    bad = (t > t.max() - 3600) & (np.arange(t.size) % 10 == 0) if n_bad_last_hour else np.zeros(t.size, bool)
    return pl.DataFrame({"ts": t, "status": np.where(bad, 500, 200), "endpoint": np.where(t % 10 == 0, "/a", "/b")})


def test_evaluate_slos_decisions():
    spec = {"id": "avail", "version": "2", "owner": "sre", "objective": 0.999}
    d = qr.evaluate_slos(_burning(True), [spec])
    assert d.columns == list(qr.DECISION_SCHEMA)
    page = d.filter(pl.col("metric") == "burn_rate_1h/5m").row(0, named=True)
    # last hour: 10 % errors → burn 100 > 14.4 on both the 1 h and the 5 m window
    assert page["status"] == "fail" and page["action"] == "rollback"
    assert page["value"] == pytest.approx(100.0, rel=1e-6) and page["threshold"] == pytest.approx(14.4)
    ev = json.loads(page["evidence"])
    assert ev["slo"]["id"] == "avail" and ev["data"]["rows"] == _burning(True).height
    quiet = qr.evaluate_slos(_burning(False), [spec])
    assert set(quiet["status"]) == {"pass"} and qr.exit_code(quiet) == 0
    # ticket rows warn; per-group evaluation; stale windows are insufficient evidence
    g = qr.evaluate_slos(_burning(True), [{**spec, "group_by": ["endpoint"]}])
    assert set(g["group"]) == {"endpoint=/a", "endpoint=/b"}
    late = qr.evaluate_slos(_burning(True), [{**spec, "min_events": 5}], now=10 * 86400.0)
    assert set(late["status"]) == {"insufficient_evidence"}
    anon = qr.evaluate_slos(_burning(False), [{"id": "x", "objective": 0.99}])
    assert set(anon["status"]) == {"unauditable"}


@pytest.mark.parametrize("spec,match", [
    ({"objective": 0.9}, "no id"),
    ({"id": "a"}, "objective"),
    ({"id": "a", "objective": 0.9, "objectiv": 1}, "unknown field"),
    ({"id": "a", "objective": 2.0}, "objective"),
    ({"id": "a", "objective": 0.9, "on_page": "panic"}, "on_page"),
])
def test_evaluate_slos_errors(spec, match):
    with pytest.raises(RuleError, match=match):
        qr.evaluate_slos(_burning(False), [spec])


# ---------------------------------------------------------------- properties

from hypothesis import given, settings
from hypothesis import strategies as hst


@pytest.mark.hypothesis
@settings(max_examples=60, deadline=None)
@given(n=hst.integers(0, 300), k=hst.integers(0, 300), thr=hst.floats(0.001, 0.5),
       min_samples=hst.one_of(hst.none(), hst.integers(0, 400)), stale=hst.booleans(), owner=hst.booleans())
def test_property_never_passes_without_evidence(n, k, thr, min_samples, stale, owner):
    k = min(k, n)
    # the newest event is at NOW - 1 for every n (a single row included)
    log = pl.DataFrame({"ts": np.linspace(NOW - 1, NOW - 600, n)[::-1] if n else np.zeros(0),
                        "status": [500] * k + [200] * (n - k)}, schema={"ts": pl.Float64, "status": pl.Int64})
    rule = qr.Rule(id="e", version="1", owner="o" if owner else None, metric="error_rate", threshold=thr,
                   min_samples=min_samples, max_age=60.0)
    now = NOW + (3600 if stale else 0)
    d = qr.evaluate(log, [rule], now=now) if n else None
    if d is None:
        return
    r = d.row(0, named=True)
    assert r["action"] == rule.action_for(r["status"])
    if r["status"] == "pass":
        assert owner and not stale and r["n"] >= r["min_n"] and r["value"] <= thr
    if not owner:
        assert r["status"] == "unauditable"
    elif stale:
        assert r["status"] == "stale"
    elif r["n"] < r["min_n"]:
        assert r["status"] == "insufficient_evidence"
    else:
        assert r["status"] == ("pass" if k / n <= thr else "fail")


@pytest.mark.hypothesis
@settings(max_examples=40, deadline=None)
@given(hst.lists(hst.tuples(hst.one_of(hst.none(), hst.floats(-10, 2e4), hst.just(float("nan"))),
                            hst.one_of(hst.none(), hst.floats(-5, 50), hst.sampled_from([float("nan"), float("inf")]))),
                 min_size=1, max_size=60))
def test_property_contract_accounts_for_every_row(rows):
    from qcore.logs import Contract, read_logs

    raw = pl.DataFrame({"ts": [r[0] for r in rows], "latency": [r[1] for r in rows]},
                       schema={"ts": pl.Float64, "latency": pl.Float64})
    logs = read_logs(raw, contract=Contract(max_time=1e4))
    rep = logs.report
    assert rep.rows_total == len(rows) and rep.rows_valid == logs.height
    assert rep.rows_valid + rep.rows_excluded == len(rows)
    f = logs.frame
    if f.height:
        lat = f["latency"].to_numpy()
        st = f["start"].to_numpy()
        assert np.all(np.isfinite(lat)) and np.all(lat >= 0) and np.all((st >= 0) & (st <= 1e4))
    # every excluded row is counted by at least one check
    assert rep.rows_excluded <= sum(c.failed for c in rep.checks if c.failed > 0)


def test_events_after_the_evaluation_time_are_inconsistent_not_fresh():
    # Newest event an hour after `now`: clock skew or a wrong evaluation time, never "fresh".
    log = _log(500, t_end=NOW + 3600)
    d = qr.evaluate(log, [R(id="fresh", metric="freshness", max_age="1h")], now=NOW)
    row = d.row(0, named=True)
    assert row["status"] == "inconsistent" and row["action"] == "escalate"
    assert "after the evaluation time" in row["message"]
