"""Burn-rate decisions from a real Prometheus (``qcore.rules.prom_source`` and ``qcore check
--prometheus``): the same decisions as the log path over the same requests, a bracket that
straddles the factor left undecided, native and classic histograms agreeing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore.rules as qr
from prom_server import NativeExporter, free_port, prometheus, wait_until
from qcore import prom
from qcore.rules.model import RuleError
from qcore.rules.prom_source import evaluate_slos_prometheus

prometheus_client = pytest.importorskip("prometheus_client")

BUCKETS = (0.1, 0.25, 0.5, 1.0)
WINDOWS = [{"severity": "page", "long": "40s", "short": "3s", "factor": 2.0},
           {"severity": "ticket", "long": "40s", "short": "20s", "factor": 1.0}]
BASE = {"owner": "sre", "version": "1", "objective": 0.9, "windows": WINDOWS,
        "group_by": ["endpoint"]}
LATENCY = {**BASE, "id": "latency", "latency_threshold": 0.5,
           "prometheus": {"histogram": "api_latency_seconds"}}
NATIVE = {**BASE, "id": "latency", "latency_threshold": 0.5,
          "prometheus": {"native": "api_native_seconds"}}
ERRORS = {**BASE, "id": "errors",
          "prometheus": {"total": "api_requests_total", "errors": 'api_requests_total{code="500"}'}}
# 0.4 s lies inside the (0.25, 0.5] bucket: the bad count is a bracket
BRACKET = {**BASE, "id": "latency-400ms", "latency_threshold": 0.4,
           "windows": [{"severity": "page", "long": "40s", "short": "3s", "factor": 6.0}],
           "prometheus": {"histogram": "api_latency_seconds"}}

RULES_TOML = """
[defaults]
owner = "sre"
version = "1"

[[slo]]
id = "latency"
objective = 0.9
latency_threshold = 0.5
group_by = ["endpoint"]
windows = [{severity = "page", long = "40s", short = "3s", factor = 2.0},
           {severity = "ticket", long = "40s", short = "20s", factor = 1.0}]
prometheus = {histogram = "api_latency_seconds"}

[[slo]]
id = "errors"
objective = 0.9
group_by = ["endpoint"]
windows = [{severity = "page", long = "40s", short = "3s", factor = 2.0},
           {severity = "ticket", long = "40s", short = "20s", factor = 1.0}]
[slo.prometheus]
total = "api_requests_total"
errors = 'api_requests_total{code="500"}'
"""

# (endpoint, latency, code) per phase
PHASE1 = ([("a", 0.1, "200")] * 40 + [("b", 0.8, "500")] * 20 + [("b", 0.1, "200")] * 10
          + [("b", 0.3, "200")] * 10)
PHASE2 = [("a", 0.1, "200")] * 40 + [("b", 0.1, "200")] * 40


@dataclass
class _Burst:
    client: prom.PrometheusClient
    now1: float  # just after the burst was scraped
    now2: float  # after the recovery was scraped, the burst out of the short windows
    t1: float  # the scrape that first saw the burst
    t2: float  # the scrape that first saw the recovery


def _first_time(c: prom.PrometheusClient, sel: str, value: float, start: float,
                end: float) -> float:
    (s,) = c.samples(sel, start, end)
    return float(s.times[np.flatnonzero(s.values >= value)[0]])


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Burst]:
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

    reg = CollectorRegistry()
    hist = Histogram("api_latency_seconds", "latency", ["endpoint"], buckets=BUCKETS, registry=reg)
    reqs = Counter("api_requests", "requests", ["endpoint", "code"], registry=reg)
    # the same requests, each label set created at its first increment
    lazy = Counter("api_lazy", "requests", ["endpoint", "code"], registry=reg)
    for ep in "ab":  # every series exists from the first scrape, at zero
        hist.labels(ep)
        lazy.labels(ep, "200")
        for code in ("200", "500"):
            reqs.labels(ep, code)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    ex = NativeExporter(schema=3)
    for ep in "ab":
        ex.hist("api_native_seconds", endpoint=ep)

    def observe(phase: list[tuple[str, float, str]]) -> None:
        for ep, lat, code in phase:
            hist.labels(ep).observe(lat)
            reqs.labels(ep, code).inc()
            lazy.labels(ep, code).inc()
            ex.observe("api_native_seconds", [lat], endpoint=ep)

    def count(sel: str) -> float:
        r = c.query(sel)["result"]
        return float(r[0]["value"][1]) if r else -1.0

    try:
        with prometheus(tmp_path_factory.mktemp("burn"),
                        [f"127.0.0.1:{port}", f"127.0.0.1:{ex.port}"], native=True) as srv:
            c = srv.client
            start = time.time()
            both = ('api_latency_seconds_count{endpoint="b"}',
                    'histogram_count(api_native_seconds{endpoint="b"})')
            wait_until(lambda: all(count(q) == 0.0 for q in both), "the zero baselines")
            time.sleep(1.2)  # a second zero scrape: every series has a pair before the burst
            observe(PHASE1)
            wait_until(lambda: all(count(q) == 40.0 for q in both), "the burst scraped")
            time.sleep(0.3)
            now1 = time.time()
            time.sleep(3.5)  # the burst leaves the 3 s windows
            observe(PHASE2)
            wait_until(lambda: all(count(q) == 80.0 for q in both), "the recovery scraped")
            time.sleep(1.2)
            now2 = time.time()
            sel = 'api_latency_seconds_count{endpoint="b"}'
            t1 = _first_time(c, sel, 40.0, start, now2)
            t2 = _first_time(c, sel, 80.0, start, now2)
            assert now1 - 3.0 < t1 <= now1 < now2 - 3.0 and now2 - 3.0 < t2 <= now2
            yield _Burst(c, now1, now2, t1, t2)
    finally:
        ex.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _log(b: _Burst) -> pl.DataFrame:
    """The same requests as a log, each at the time of the scrape that counted it."""
    rows = [(b.t1, *r) for r in PHASE1] + [(b.t2, *r) for r in PHASE2]
    return pl.DataFrame({"ts": [r[0] for r in rows], "endpoint": [r[1] for r in rows],
                         "latency": [r[2] for r in rows], "status": [int(r[3]) for r in rows]})


COLS = ["rule_id", "rule_version", "owner", "group", "metric", "value", "threshold", "n",
        "min_n", "status", "action", "response", "message"]


def _without_prometheus(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "prometheus"}


@pytest.mark.parametrize("when", ["now1", "now2"])
def test_live_decisions_equal_the_log_path(burst: _Burst, when: str) -> None:
    now = getattr(burst, when)
    got = evaluate_slos_prometheus(burst.client, [LATENCY, ERRORS], now=now)
    log = _log(burst)
    # the latency SLO over logs counts failed requests as bad too: compare it on a log
    # without failures, the error SLO on the log with them
    lat_log = log.with_columns(status=pl.lit(200))
    want = pl.concat([qr.evaluate_slos(lat_log, [_without_prometheus(LATENCY)], now=now),
                      qr.evaluate_slos(log, [_without_prometheus(ERRORS)], now=now)])
    assert got.select(COLS).to_dicts() == want.select(COLS).to_dicts()
    status = {(r["rule_id"], r["group"], r["metric"]): r["status"] for r in got.to_dicts()}
    page, ticket = "burn_rate_40s/3s", "burn_rate_40s/20s"
    for slo in ("latency", "errors"):
        assert status[(slo, "endpoint=a", page)] == "pass"
        assert status[(slo, "endpoint=b", page)] == ("fail" if when == "now1" else "pass")
        assert status[(slo, "endpoint=b", ticket)] == "fail"
    assert qr.exit_code(got) == (5 if when == "now1" else 0)
    ev = json.loads(got.row(0, named=True)["evidence"])
    assert ev["data"]["source"] == "prometheus" and ev["data"]["series"]


def test_live_burn_counts(burst: _Burst) -> None:
    got = evaluate_slos_prometheus(burst.client, [LATENCY], now=burst.now1)
    row = got.filter(pl.col("group") == "endpoint=b").row(0, named=True)
    d = json.loads(row["evidence"])["details"]
    assert (d["long_events"], d["long_bad"], d["short_events"], d["short_bad"]) == (40, 20, 40, 20)
    assert (d["long_bad_lower"], d["undecided"]) == (20, None)  # 0.5 is a bucket edge: exact
    assert row["value"] == pytest.approx((20 / 40) / 0.1)


def test_live_native_histogram_gives_the_same_decisions(burst: _Burst) -> None:
    for now in (burst.now1, burst.now2):
        classic = evaluate_slos_prometheus(burst.client, [LATENCY], now=now)
        native = evaluate_slos_prometheus(burst.client, [NATIVE], now=now)
        assert native.select(COLS).to_dicts() == classic.select(COLS).to_dicts()


def test_live_counter_created_in_the_range_counts_from_zero(burst: _Burst) -> None:
    """api_lazy_total{code="500"} appears at the burst, with its first value 20 for b."""
    lazy = {**ERRORS, "prometheus": {"total": "api_lazy_total",
                                     "errors": 'api_lazy_total{code="500"}'}}
    for now in (burst.now1, burst.now2):
        want = evaluate_slos_prometheus(burst.client, [ERRORS], now=now)
        got = evaluate_slos_prometheus(burst.client, [lazy], now=now)
        assert got.select(COLS).to_dicts() == want.select(COLS).to_dicts()
    ev = json.loads(got.filter(pl.col("group") == "endpoint=b").row(0, named=True)["evidence"])
    (b,) = [s for s in ev["data"]["series"] if s["labels"] == {"endpoint": "b"}]
    # the code="500" series, in both selectors
    assert b["errors"]["created_in_range"] == 1 == b["total"]["created_in_range"]
    assert (b["errors"]["series"], b["total"]["series"]) == (1, 2)


def test_live_bracket_that_straddles_the_factor_is_undecided(burst: _Burst) -> None:
    got = evaluate_slos_prometheus(burst.client, [BRACKET], now=burst.now1)
    b = got.filter(pl.col("group") == "endpoint=b").row(0, named=True)
    d = json.loads(b["evidence"])["details"]
    # 20 requests at 0.8 s are surely bad, 10 at 0.3 s may be (the 0.25-0.5 bucket): burn
    # 5 to 7.5 against a factor of 6
    assert (d["long_bad_lower"], d["long_bad"], d["long_events"]) == (20, 30, 40)
    assert (b["status"], b["action"]) == ("insufficient_evidence", "escalate")
    assert "the buckets cannot tell" in b["message"] and "bucket edge" in b["response"]
    # the truth (0.3 ≤ 0.4: 20 bad, burn 5) lies in the bracket; the log path decides it
    log = _log(burst).with_columns(status=pl.lit(200))
    truth = qr.evaluate_slos(log, [_without_prometheus(BRACKET)], now=burst.now1)
    assert truth.filter(pl.col("group") == "endpoint=b")["status"].to_list() == ["pass"]
    a = got.filter(pl.col("group") == "endpoint=a").row(0, named=True)
    assert a["status"] == "pass"  # no observation in the threshold's bucket: exact


def test_live_source_errors(burst: _Burst) -> None:
    c = burst.client
    with pytest.raises(RuleError, match="no series"):
        evaluate_slos_prometheus(c, [{**LATENCY, "prometheus": {"histogram": "absent"}}],
                                 now=burst.now1)
    with pytest.raises(RuleError, match="needs a \\[slo.prometheus\\] table"):
        evaluate_slos_prometheus(c, [_without_prometheus(LATENCY)], now=burst.now1)
    with pytest.raises(RuleError, match="exactly one of"):
        evaluate_slos_prometheus(
            c, [{**LATENCY, "prometheus": {"histogram": "h", "native": "n"}}], now=burst.now1)
    with pytest.raises(RuleError, match="needs prometheus.total and prometheus.errors"):
        evaluate_slos_prometheus(c, [{**ERRORS, "prometheus": {"total": "x"}}], now=burst.now1)
    with pytest.raises(RuleError, match="unknown prometheus key"):
        evaluate_slos_prometheus(c, [{**ERRORS, "prometheus": {"totals": "x"}}], now=burst.now1)
    with pytest.raises(RuleError, match="exceed total"):
        evaluate_slos_prometheus(c, [{**ERRORS, "prometheus": {
            "total": 'api_requests_total{code="500"}', "errors": "api_requests_total"}}],
            now=burst.now1)


def _strict(text: str) -> Any:
    def no_constant(c: str) -> Any:
        raise ValueError(f"not strict JSON: {c}")

    return json.loads(text, parse_constant=no_constant)


def test_live_check_cli(burst: _Burst, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qcore.cli import main

    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_TOML)
    base = ["check", "--prometheus", burst.client.url, "--rules", str(rules)]
    evidence = tmp_path / "ev.jsonl"
    assert main([*base, "--now", repr(burst.now1), "--format", "json",
                 "--evidence", str(evidence)]) == 5
    doc = _strict(capsys.readouterr().out)
    assert (doc["overall_action"], doc["exit_code"], doc["contract"]) == ("rollback", 5, None)
    assert doc["source"]["url"] == burst.client.url and doc["source"]["slos"] == ["latency", "errors"]
    assert len(doc["decisions"]) == 8 == len(evidence.read_text().splitlines())
    assert main([*base, "--now", repr(burst.now2)]) == 0
    text = capsys.readouterr().out
    assert "source: Prometheus" in text and "overall action: warn (exit 0)" in text
    assert "errors [endpoint=b]: fail -> warn" in text


def test_check_cli_usage_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qcore.cli import main

    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_TOML)
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["check", "--rules", str(rules)]) == 2
    assert "give log files (or --prometheus URL)" in capsys.readouterr().err
    assert main(["check", "x.csv", "--prometheus", url, "--rules", str(rules)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["check", "--prometheus", url, "--rules", str(rules), "--now", "1e9"]) == 1
    assert "cannot reach the server" in capsys.readouterr().err
    mixed = tmp_path / "mixed.toml"
    mixed.write_text(RULES_TOML + '\n[[rule]]\nid = "p99"\nmetric = "p99"\nthreshold = 1.0\n')
    assert main(["check", "--prometheus", url, "--rules", str(mixed), "--format", "json"]) == 1
    out = _strict(capsys.readouterr().out)
    assert "[[rule]] tables need request logs" in out["message"]


# ---- the window counts against the log path on synthetic scrapes (no server) -----------


class _Fake:
    """series() and samples() over stored series, for equality matchers only."""

    def __init__(self, series: list[prom.Series]) -> None:
        self.data = series
        self.url = "http://fake"

    def _match(self, selector: str) -> list[prom.Series]:
        import re

        name, _, rest = selector.partition("{")
        want = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        return [s for s in self.data if s.labels["__name__"] == name
                and all(s.labels.get(k, "") == v for k, v in want.items())]

    def series(self, match: list[str], start: float, end: float) -> list[dict[str, str]]:
        return [dict(s.labels) for m in match for s in self._match(m)]

    def samples(self, selector: str, start: float, end: float) -> list[prom.Series]:
        out = []
        for s in self._match(selector):
            keep = (s.times >= start) & (s.times <= end)
            out.append(prom.Series(labels=s.labels, times=s.times[keep], values=s.values[keep]))
        return [s for s in out if s.times.size]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), now_at=st.floats(0.3, 1.0))
def test_window_counts_equal_the_log_path(seed: int, now_at: float) -> None:
    rng = np.random.default_rng(seed)
    edges = [*BUCKETS, float("inf")]
    times = np.cumsum(rng.uniform(0.5, 2.0, 40))
    series: list[prom.Series] = []
    rows: list[tuple[float, str, float]] = []
    for ep in "ab":
        lat: list[float] = []
        cum = []
        for k, t in enumerate(times):
            if k:  # the first scrape is the baseline
                new = rng.lognormal(-1.0, 1.0, int(rng.integers(0, 8))).tolist()
                lat += new
                rows += [(float(t), ep, v) for v in new]
            x = np.array(lat)
            cum.append([np.count_nonzero(x <= e) for e in edges] + [float(x.sum())])
        mat = np.array(cum, dtype=np.float64)
        for i, e in enumerate(edges):
            series.append(prom.Series(
                labels={"__name__": "h_bucket", "endpoint": ep, "le": "+Inf" if e == float("inf")
                        else repr(e)}, times=times, values=mat[:, i]))
        series.append(prom.Series(labels={"__name__": "h_sum", "endpoint": ep}, times=times,
                                  values=mat[:, -1]))
        series.append(prom.Series(labels={"__name__": "h_count", "endpoint": ep}, times=times,
                                  values=mat[:, -2]))
    # endpoint c appears at the last scrape only: no increase yet
    for e in edges:
        series.append(prom.Series(labels={"__name__": "h_bucket", "endpoint": "c",
                                          "le": "+Inf" if e == float("inf") else repr(e)},
                                  times=times[-1:], values=np.array([3.0])))
    series.append(prom.Series(labels={"__name__": "h_sum", "endpoint": "c"}, times=times[-1:],
                              values=np.array([1.0])))
    series.append(prom.Series(labels={"__name__": "h_count", "endpoint": "c"},
                              times=times[-1:], values=np.array([3.0])))
    now = float(times[0] + now_at * (times[-1] - times[0]))
    spec = {**BASE, "id": "lat", "latency_threshold": 0.25, "min_events": 5,
            "windows": [{"severity": "page", "long": "30s", "short": "5s", "factor": 2.0}],
            "prometheus": {"histogram": "h"}}
    got = evaluate_slos_prometheus(_Fake(series), [spec], now=now)  # type: ignore[arg-type]
    log = pl.DataFrame({"ts": [r[0] for r in rows], "endpoint": [r[1] for r in rows],
                        "latency": [r[2] for r in rows], "status": [200] * len(rows)})
    want = qr.evaluate_slos(log.filter(pl.col("ts") <= now), [_without_prometheus(spec)],
                            now=now)
    ab = got.filter(pl.col("group") != "endpoint=c")
    assert ab.select(COLS).to_dicts() == want.select(COLS).to_dicts()
    (c,) = got.filter(pl.col("group") == "endpoint=c").to_dicts()
    assert c["status"] == "insufficient_evidence" and c["n"] == 0
