"""qcore.prom against a real Prometheus server scraping a prometheus_client exporter that
the test drives with known observations, a stub HTTP server for the client's error paths,
and exact references for the histogram brackets."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore
from prom_server import free_port, prometheus
from qcore import prom
from qcore.exceptions import InvalidArgumentError, PrometheusError

prometheus_client = pytest.importorskip("prometheus_client")

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
EDGES = np.array([*BUCKETS, math.inf])
QS = (0.5, 0.9, 0.95, 0.99)


def _exact_quantile(x: np.ndarray, q: float) -> float:
    """x_(⌈q·n⌉), the smallest observation with a fraction ≥ q at or under it."""
    s = np.sort(x)
    return float(s[max(1, math.ceil(q * s.size)) - 1])


def _histogram(x: np.ndarray, edges: np.ndarray = EDGES) -> prom.ClassicHistogram:
    cum = np.array([np.count_nonzero(x <= e) for e in edges], dtype=np.float64)
    return prom.ClassicHistogram(metric="h", edges=edges, cumulative=cum, sum=float(x.sum()))


# ---- brackets against exact references (no server) -------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    q=st.floats(0.001, 0.999),
    threshold=st.floats(0.0, 4.0),
)
def test_brackets_contain_the_exact_quantile_and_attainment(
    seed: int, n: int, q: float, threshold: float
) -> None:
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(-1.5, 1.0, n), 3)  # ties and values on the edges
    h = _histogram(x)
    r = h.quantile(q)
    assert r.rank == max(1, math.ceil(q * n))
    exact = _exact_quantile(x, q)
    assert r.lower < exact <= r.upper or (r.lower == 0.0 and exact == 0.0)
    assert r.ci[0] <= r.lower and r.upper <= r.ci[1]
    a = h.attainment(threshold)
    truth = np.count_nonzero(x <= threshold) / n
    assert a.lower <= truth <= a.upper
    assert a.width == pytest.approx(a.upper - a.lower)
    if threshold in BUCKETS:
        assert a.exact and a.lower == truth


def test_quantile_interval_is_the_core_ranks_read_at_the_edges() -> None:
    x = np.linspace(0.01, 3.0, 1000)
    h = _histogram(x)
    r = h.quantile(0.99, confidence=0.9)
    ranks = qcore.quantile_ranks(1000, 0.99, 0.9)
    s = np.sort(x)
    assert ranks.lower is not None and ranks.upper is not None
    assert r.ci[0] < s[ranks.lower - 1] and s[ranks.upper - 1] <= r.ci[1]
    # The rank lies beyond the last finite edge: the upper bound is open.
    assert (r.lower, r.upper) == (2.5, math.inf)
    assert r.prometheus == 2.5


def test_attainment_outside_the_edges() -> None:
    h = _histogram(np.array([0.01, 0.2, 3.0, 7.0]))
    below = h.attainment(-1.0)
    assert (below.lower, below.upper, below.exact) == (0.0, 0.0, True)
    above = h.attainment(10.0)
    assert (above.lower, above.upper, above.edges) == (0.5, 1.0, (2.5, math.inf))
    inside = h.attainment(0.3)
    assert (inside.good_lower, inside.good_upper, inside.edges) == (2, 2, (0.25, 0.5))
    assert inside.exact


def test_histogram_rejects_bad_arguments() -> None:
    h = _histogram(np.array([0.2]))
    with pytest.raises(InvalidArgumentError, match="q must be"):
        h.quantile(0.0)
    with pytest.raises(InvalidArgumentError, match="threshold"):
        h.attainment(math.nan)
    empty = _histogram(np.array([]))
    with pytest.raises(InvalidArgumentError, match="no observations"):
        empty.quantile(0.5)
    frac = prom.ClassicHistogram(
        metric="h", edges=EDGES, cumulative=np.full(EDGES.size, 1.5), sum=1.0
    )
    with pytest.raises(InvalidArgumentError, match="whole numbers"):
        frac.attainment(0.1)


# ---- counters and Little's law on synthetic samples (exact truth) ----------------------


@dataclass
class _FakeClient:
    data: dict[str, list[prom.Series]]

    def samples(self, selector: str, start: float, end: float) -> list[prom.Series]:
        return self.data.get(selector, [])


def _series(name: str, t: np.ndarray, v: np.ndarray, **labels: str) -> prom.Series:
    return prom.Series(labels={"__name__": name, **labels}, times=t, values=v)


def test_counter_reset_loses_no_counts_and_uses_the_garwood_interval() -> None:
    t = np.arange(0.0, 11.0)
    # 0, 10, ..., 50, restart, 5, 15, 25, 35, 45: 50 + 45 events.
    v = np.array([0, 10, 20, 30, 40, 50, 5, 15, 25, 35, 45], dtype=np.float64)
    other = np.arange(11.0) * 2.0  # a second series: 20 events
    fake = _FakeClient({"req_total": [_series("req_total", t, v, pod="a"),
                                      _series("req_total", t, other, pod="b")]})
    r = prom.counter_rate(fake, "req_total", 0.0, 10.0)  # type: ignore[arg-type]
    assert (r.increase, r.resets, r.series, r.exposure) == (115, 1, 2, 10.0)
    # Bit for bit arrival_stats' interval for 115 arrivals over the same 10 s.
    assert r.rate_ci == qcore.arrival_stats(np.linspace(0.0, 10.0, 115)).rate_ci


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 50), st.booleans()), min_size=1, max_size=40),
    window=st.floats(0.5, 10.0),
)
def test_histogram_increases_over_restarts(steps: list[tuple[int, bool]], window: float) -> None:
    """Random scrapes of a histogram whose process restarts (a scrape of a fresh process
    always shows fewer observations in some bucket, since it starts from zero and is
    scraped before it catches up): every observation is counted once, and the windows add
    up to the whole range."""
    rng = np.random.default_rng(len(steps))
    obs: list[float] = []
    state: list[float] = []
    rows = [np.zeros(EDGES.size + 1)]
    for k, restart in steps:
        if restart and state:
            state = []
            rows.append(np.zeros(EDGES.size + 1))  # the fresh process scraped at zero
        new = np.round(rng.lognormal(-1.5, 1.0, k), 3).tolist()
        state += new
        obs += new
        x = np.array(state)
        rows.append(np.r_[[np.count_nonzero(x <= e) for e in EDGES], x.sum() if x.size else 0.0])
    mat = np.array(rows)
    t = np.arange(mat.shape[0], dtype=np.float64)
    data = {"h_bucket": [_series("h_bucket", t, mat[:, i], le=str(e))
                         for i, e in enumerate(EDGES)],
            "h_sum": [_series("h_sum", t, mat[:, -1])]}
    fake = _FakeClient(data)
    end = float(t[-1]) if t[-1] > 0 else 1.0
    h = prom.classic_histogram(fake, "h", 0.0, end)  # type: ignore[arg-type]
    np.testing.assert_array_equal(h.cumulative, _histogram(np.array(obs)).cumulative)
    assert h.sum == pytest.approx(float(np.sum(obs)), abs=1e-9)
    wins = prom.classic_histogram_windows(fake, "h", 0.0, end, window)  # type: ignore[arg-type]
    np.testing.assert_array_equal(sum(w.cumulative for w in wins), h.cumulative)


def _bucket_series(t: np.ndarray, x_by_scrape: list[np.ndarray], edges: np.ndarray,
                   **labels: str) -> list[prom.Series]:
    cum = np.array([[np.count_nonzero(np.concatenate(x_by_scrape[: k + 1]) <= e) for e in edges]
                    for k in range(len(x_by_scrape))], dtype=np.float64)
    return [_series("h_bucket", t, cum[:, i], le="+Inf" if e == math.inf else repr(float(e)),
                    **labels) for i, e in enumerate(edges)]


def _sum_series(t: np.ndarray, x_by_scrape: list[np.ndarray], **labels: str) -> prom.Series:
    return _series("h_sum", t, np.cumsum([x.sum() for x in x_by_scrape]), **labels)


def test_histogram_merges_label_sets_and_rejects_mixed_layouts() -> None:
    rng = np.random.default_rng(3)
    xa = [np.empty(0), *(rng.lognormal(-1.5, 1.0, 20) for _ in range(5))]
    xb = [np.empty(0), *(rng.lognormal(-0.5, 1.0, 30) for _ in range(3))]
    a = _bucket_series(np.arange(6.0), xa, EDGES, pod="a")
    b = _bucket_series(np.arange(4.0) * 1.5 + 0.25, xb, EDGES, pod="b")  # other scrape times
    sums = [_sum_series(np.arange(6.0), xa, pod="a"),
            _sum_series(np.arange(4.0) * 1.5 + 0.25, xb, pod="b")]
    fake = _FakeClient({"h_bucket": a + b, "h_sum": sums})
    h = prom.classic_histogram(fake, "h", 0.0, 5.0)  # type: ignore[arg-type]
    assert h.series == 2
    truth = np.concatenate(xa + xb)
    np.testing.assert_array_equal(h.cumulative, _histogram(truth).cumulative)
    assert h.sum == pytest.approx(float(truth.sum()))
    with pytest.raises(InvalidArgumentError, match="_sum must be present"):
        prom.classic_histogram(_FakeClient({"h_bucket": a}), "h", 0.0, 5.0)  # type: ignore[arg-type]
    other = _bucket_series(np.arange(4.0), xb, np.array([0.1, 1.0, math.inf]), pod="c")
    with pytest.raises(InvalidArgumentError, match="different bucket layouts"):
        prom.classic_histogram(_FakeClient({"h_bucket": a + other}), "h", 0.0, 5.0)  # type: ignore[arg-type]


def test_littles_law_metrics_exact() -> None:
    t = np.arange(0.0, 61.0)
    count = 10.0 * t  # 10 requests a second
    total = 3.0 * t  # of 0.3 s each: λW = 3
    for gauge_value, holds in ((3.0, True), (4.0, False)):
        fake = _FakeClient({
            "lat_sum": [_series("lat_sum", t, total)],
            "lat_count": [_series("lat_count", t, count)],
            "running": [_series("running", t, np.full(t.size, gauge_value))],
        })
        r = prom.littles_law_metrics(fake, "running", "lat", 0.0, 60.0)  # type: ignore[arg-type]
        assert r.arrival_rate == pytest.approx(10.0)
        assert r.mean_response == pytest.approx(0.3)
        assert r.lambda_w == pytest.approx(3.0)
        assert r.L == gauge_value
        assert r.gap == pytest.approx((gauge_value - 3.0) / 3.0)
        assert r.gauge.discrepancy == pytest.approx((gauge_value - 3.0) / 3.0)
        assert r.holds is holds


def test_littles_law_metrics_rejects_a_fractional_gauge() -> None:
    t = np.arange(0.0, 5.0)
    fake = _FakeClient({
        "lat_sum": [_series("lat_sum", t, t)],
        "lat_count": [_series("lat_count", t, t)],
        "g": [_series("g", t, np.full(t.size, 0.5))],
    })
    with pytest.raises(InvalidArgumentError, match="gauge"):
        prom.littles_law_metrics(fake, "g", "lat", 0.0, 4.0)  # type: ignore[arg-type]


# ---- exposition files ------------------------------------------------------------------


@pytest.mark.parametrize("openmetrics", [False, True])
def test_read_exposition_histogram(tmp_path: Path, openmetrics: bool) -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest

    reg = CollectorRegistry()
    h = Histogram("lat_seconds", "latency", ["model"], buckets=BUCKETS, registry=reg)
    rng = np.random.default_rng(7)
    xa, xb = rng.lognormal(-1.5, 0.8, 300), rng.lognormal(-1.0, 0.8, 200)
    for v in xa:
        h.labels("a").observe(float(v))
    for v in xb:
        h.labels("b").observe(float(v))
    text = (om_latest if openmetrics else generate_latest)(reg).decode()
    path = tmp_path / "scrape.txt"
    path.write_text(text)
    fams = prom.read_exposition(path)
    both = prom.histogram_from_families(fams, "lat_seconds")
    assert both.series == 2
    np.testing.assert_array_equal(both.cumulative, _histogram(np.r_[xa, xb]).cumulative)
    only_a = prom.histogram_from_families(prom.read_exposition(text), "lat_seconds",
                                          match={"model": "a"})
    np.testing.assert_array_equal(only_a.cumulative, _histogram(xa).cumulative)
    assert only_a.sum == pytest.approx(float(xa.sum()))
    with pytest.raises(InvalidArgumentError, match="no histogram"):
        prom.histogram_from_families(fams, "nope")


def test_read_exposition_rejects_garbage() -> None:
    with pytest.raises(InvalidArgumentError, match="source"):
        prom.read_exposition("this is { not\nan exposition\n")


# ---- the HTTP client's error paths against a stub --------------------------------------


class _Stub(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        mode = self.path.split("/")[1]
        n = _Stub.hits[mode] = _Stub.hits.get(mode, 0) + 1
        ok = json.dumps({"status": "success",
                         "data": {"resultType": "vector", "result": []}}).encode()
        if mode == "fail":
            self._send(500, b"oops")
        elif mode == "flaky":
            self._send(503, b"") if n == 1 else self._send(200, ok)
        elif mode == "slow":
            time.sleep(1.0)
            try:
                self._send(200, ok)
            except OSError:  # the client gave up: the point of the test
                pass
        elif mode == "badjson":
            self._send(200, b"{not json")
        elif mode == "auth":
            self._send(401, b"Unauthorized")
        elif mode == "badquery":
            self._send(400, json.dumps({"status": "error", "errorType": "bad_data",
                                        "error": "parse error at char 3"}).encode())
        elif mode == "notapi":
            self._send(200, b"[1, 2]")
        else:
            self._send(200, ok)


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_client_retries_5xx_then_names_url_and_status(stub: str) -> None:
    c = prom.PrometheusClient(f"{stub}/fail", retries=2, backoff=0.01)
    with pytest.raises(PrometheusError, match="HTTP 500") as e:
        c.query("up")
    assert e.value.status == 500
    assert e.value.url.startswith(f"{stub}/fail/api/v1/query?")
    assert e.value.url in str(e.value)
    assert _Stub.hits["fail"] == 3
    flaky = prom.PrometheusClient(f"{stub}/flaky", retries=1, backoff=0.01)
    assert flaky.query("up") == {"resultType": "vector", "result": []}


def test_client_timeout(stub: str) -> None:
    c = prom.PrometheusClient(f"{stub}/slow", timeout=0.2, retries=1, backoff=0.01)
    with pytest.raises(PrometheusError, match=r"timeout of 0.2 s \(after 2 attempt") as e:
        c.query("up")
    assert e.value.status is None
    deadline = time.monotonic() + 5.0
    while _Stub.hits.get("slow", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the second request may still be arriving
    assert _Stub.hits["slow"] == 2


@pytest.mark.parametrize(
    ("mode", "pattern", "status"),
    [
        ("badjson", "not JSON", 200),
        ("auth", "authentication failed: HTTP 401", 401),
        ("badquery", "HTTP 400: bad_data: parse error at char 3", 400),
        ("notapi", "not a Prometheus API answer", 200),
    ],
)
def test_client_errors(stub: str, mode: str, pattern: str, status: int) -> None:
    c = prom.PrometheusClient(f"{stub}/{mode}", retries=3, backoff=0.01)
    with pytest.raises(PrometheusError, match=pattern) as e:
        c.query("up")
    assert e.value.status == status
    assert _Stub.hits[mode] == 1  # not retried


def test_client_unreachable_and_bad_arguments() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = prom.PrometheusClient(f"http://127.0.0.1:{port}", retries=0)
    with pytest.raises(PrometheusError, match="cannot reach"):
        c.query("up")
    with pytest.raises(InvalidArgumentError, match="url"):
        prom.PrometheusClient("localhost:9090")
    with pytest.raises(InvalidArgumentError, match="timeout"):
        prom.PrometheusClient("http://x", timeout=0)
    with pytest.raises(InvalidArgumentError, match="start and end"):
        c.samples("up", 10.0, 5.0)


# ---- a real Prometheus -----------------------------------------------------------------


class _Swappable:
    """A collector serving the current registry: swapping it simulates a process restart."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


class _Metrics:
    """The test exporter's metrics, and the same under vLLM's names for engine 0."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.hist = Histogram("req_latency_seconds", "latency", buckets=BUCKETS,
                              registry=registry)
        self.counter = Counter("req", "requests", registry=registry)
        self.gauge = Gauge("inflight", "requests in flight", registry=registry)
        lab = ("model_name", "engine")
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "ttft", lab,
                              buckets=BUCKETS, registry=registry).labels("m", "0")
        self.success = Counter("vllm:request_success", "ok", [*lab, "finished_reason"],
                               registry=registry).labels("m", "0", "stop")
        self.running = Gauge("vllm:num_requests_running", "running", lab,
                             registry=registry).labels("m", "0")
        self.kv = Gauge("vllm:kv_cache_usage_perc", "kv", lab, registry=registry).labels("m", "0")

    def observe(self, x: np.ndarray, in_flight: int) -> None:
        self.gauge.set(in_flight)
        self.running.set(in_flight)
        self.kv.set(0.5)
        for v in x:
            self.hist.observe(float(v))
            self.ttft.observe(float(v))
        self.counter.inc(x.size)
        self.success.inc(x.size)


@dataclass
class _Scenario:
    client: prom.PrometheusClient
    start: float
    end: float
    observations: np.ndarray
    requests: int
    final_state: np.ndarray  # the restarted process' observations (its exported state)


def _wait_for(client: prom.PrometheusClient, value: float, after: float) -> None:
    """Until Prometheus holds a req_total sample equal to value scraped after ``after``."""
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        v = client.query("req_total")["result"]
        ts = client.query("timestamp(req_total)")["result"]
        if v and ts and float(v[0]["value"][1]) == value and float(ts[0]["value"][1]) > after:
            return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus did not scrape req_total == {value} within 30 s")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Scenario]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server binary is not installed (apt-get install prometheus)")
    from prometheus_client import CollectorRegistry, start_http_server

    outer = CollectorRegistry()
    reg_a = CollectorRegistry()
    swap = _Swappable(reg_a)
    outer.register(swap)  # type: ignore[arg-type]
    exp_port = free_port()
    server, thread = start_http_server(exp_port, addr="127.0.0.1", registry=outer)
    metrics = _Metrics(reg_a)

    tmp = tmp_path_factory.mktemp("prometheus")
    start = time.time() - 1.0
    try:
        with prometheus(tmp, [f"127.0.0.1:{exp_port}"]) as srv:
            client = srv.client
            _wait_for(client, 0.0, start)  # the zero baseline is scraped

            rng = np.random.default_rng(2026)
            x1 = rng.lognormal(-1.5, 0.8, 400)
            metrics.observe(x1, 3)
            t = time.time()
            _wait_for(client, 400.0, t)
            # Restart: a fresh process. Its first observations land in the lowest bucket, so
            # that bucket's count grows across the reset while _count falls.
            reg_b = CollectorRegistry()
            metrics = _Metrics(reg_b)
            swap.registry = reg_b
            x2 = np.r_[rng.uniform(0.01, 0.05, 60), rng.lognormal(-1.5, 0.8, 90)]
            metrics.observe(x2, 5)
            t = time.time()
            _wait_for(client, 150.0, t)
            x3 = rng.lognormal(-1.0, 0.8, 250)
            metrics.observe(x3, 5)
            t = time.time()
            _wait_for(client, 400.0, t)
            end = time.time()
            yield _Scenario(client, start, end, np.r_[x1, x2, x3], 800, np.r_[x2, x3])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_live_histogram_over_a_reset(scenario: _Scenario) -> None:
    s = scenario
    h = prom.classic_histogram(s.client, "req_latency_seconds", s.start, s.end)
    x = s.observations
    assert h.resets == 1 and h.series == 1
    np.testing.assert_array_equal(h.cumulative, _histogram(x).cumulative)
    assert h.sum == pytest.approx(float(x.sum()), rel=1e-12)
    for q in QS:
        r = h.quantile(q)
        exact = _exact_quantile(x, q)
        assert r.lower < exact <= r.upper
        assert r.lower <= r.prometheus <= r.upper
    for thr in (0.03, 0.1, 0.2, 0.3, 0.7, 2.0, 5.0):
        a = h.attainment(thr)
        truth = np.count_nonzero(x <= thr) / x.size
        assert a.lower <= truth <= a.upper
        assert a.exact == (thr in BUCKETS)


def test_live_lowest_bucket_reset_is_caught(scenario: _Scenario) -> None:
    """Per-series increase() on le="0.05" alone misses the reset (its count grows across
    it); the histogram-wide rule counts every observation."""
    s = scenario
    b = s.client.samples('req_latency_seconds_bucket{le="0.05"}', s.start, s.end)
    assert len(b) == 1
    v = b[0].values
    d = np.diff(v)
    per_series = float(np.where(d < 0, v[1:], d).sum())
    truth = float(np.count_nonzero(s.observations <= 0.05))
    assert per_series < truth
    h = prom.classic_histogram(s.client, "req_latency_seconds", s.start, s.end)
    assert h.cumulative[0] == truth


def test_live_windows_add_up(scenario: _Scenario) -> None:
    s = scenario
    whole = prom.classic_histogram(s.client, "req_latency_seconds", s.start, s.end)
    wins = prom.classic_histogram_windows(s.client, "req_latency_seconds", s.start, s.end, 2.0)
    assert len(wins) == math.ceil((s.end - s.start) / 2.0)
    np.testing.assert_array_equal(sum(w.cumulative for w in wins), whole.cumulative)


def test_live_interpolation_matches_histogram_quantile(scenario: _Scenario) -> None:
    """prometheus_quantile is PromQL's histogram_quantile on the same buckets: compared on
    the restarted process' cumulative buckets at the end."""
    s = scenario
    res = s.client.query("req_latency_seconds_bucket", time=s.end)["result"]
    pairs = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in res)
    h = prom.ClassicHistogram(
        metric="req_latency_seconds", edges=np.array([p[0] for p in pairs]),
        cumulative=np.array([p[1] for p in pairs]), sum=0.0,
    )
    np.testing.assert_array_equal(h.cumulative, _histogram(s.final_state).cumulative)
    for q in QS:
        ref = s.client.query(f"histogram_quantile({q}, req_latency_seconds_bucket)",
                             time=s.end)["result"]
        assert h.prometheus_quantile(q) == pytest.approx(float(ref[0]["value"][1]), rel=1e-12)


def test_live_counter_reset_loses_no_counts(scenario: _Scenario) -> None:
    s = scenario
    r = prom.counter_rate(s.client, "req_total", s.start, s.end)
    assert (r.increase, r.resets) == (s.requests, 1)
    assert r.rate == pytest.approx(s.requests / (r.last - r.first))
    assert r.rate_ci[0] < r.rate < r.rate_ci[1]
    series = s.client.series(["req_total"], s.start, s.end)
    assert [d["job"] for d in series] == ["qcore"]
    assert "qcore" in s.client.label_values("job", ["req_total"], s.start, s.end)


def test_live_littles_law_from_metrics(scenario: _Scenario) -> None:
    s = scenario
    r = prom.littles_law_metrics(s.client, "inflight", "req_latency_seconds", s.start, s.end)
    span = r.last - r.first
    assert r.arrival_rate * span == pytest.approx(s.requests)
    assert r.lambda_w * span == pytest.approx(float(s.observations.sum()))
    assert 3.0 <= r.L <= 5.0
    assert r.gauge.samples == r.samples
    assert not r.holds  # a bursty toy workload with a made-up gauge


def test_live_query_range_and_errors(scenario: _Scenario) -> None:
    s = scenario
    rng = s.client.query_range("inflight", s.start + 1.0, s.end, 1.0)
    assert len(rng) == 1 and rng[0].values.size >= 2
    assert set(rng[0].values.tolist()) <= {0.0, 3.0, 5.0}  # the values the gauge was set to
    assert (np.diff(rng[0].values) >= 0).all() and (np.diff(rng[0].times) == 1.0).all()
    with pytest.raises(PrometheusError, match="HTTP 400: bad_data") as e:
        s.client.query("sum(")
    assert e.value.status == 400
    with pytest.raises(InvalidArgumentError, match="no series"):
        prom.counter_rate(s.client, "absent_total", s.start, s.end)


def test_live_vllm_summary(scenario: _Scenario) -> None:
    s = scenario
    (eng,) = prom.vllm_summary(s.client, s.start, s.end, matchers='job="qcore"')
    assert dict(eng.labels) == {"model_name": "m", "engine": "0"}
    # prometheus_client's OpenMetrics output writes vllm_… for vllm:…
    assert eng.names["ttft"] in ("vllm:time_to_first_token_seconds",
                                 "vllm_time_to_first_token_seconds")
    for q, r in eng.latency["ttft"].items():
        assert r.lower < _exact_quantile(s.observations, q) <= r.upper
    assert eng.requests is not None and eng.requests.increase == s.requests
    assert eng.kv_cache_usage is not None and eng.kv_cache_usage[1] == 0.5
    # Absent metrics are reported, not raised.
    assert "tpot" in eng.missing and "little_running" in eng.missing
    assert eng.little == {}
    with pytest.raises(InvalidArgumentError, match="not a vLLM target"):
        prom.vllm_summary(s.client, s.start, s.end, matchers='job="other"')


def test_live_cli(scenario: _Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    from qcore.cli import main

    s = scenario
    base = ["prom", "--prometheus", s.client.url, "--start", repr(s.start), "--end", repr(s.end)]
    assert main([*base, "--histogram", "req_latency_seconds", "--quantile", "0.99",
                 "--slo", "0.3", "--counter", "req_total", "--gauge", "inflight",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["histogram"]["quantiles"]["0.99"]
    assert r["lower"] < _exact_quantile(s.observations, 0.99) <= r["upper"]
    (a,) = out["histogram"]["attainment"]
    assert a["lower"] <= np.count_nonzero(s.observations <= 0.3) / 800 <= a["upper"]
    assert out["counter"]["increase"] == 800
    assert out["little"]["gauge"]["samples"] >= 2
    assert main([*base, "--preset", "vllm"]) == 0
    text = capsys.readouterr().out
    assert "engine engine=0, model_name=m" in text and "not available: tpot" in text


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from qcore.cli import main

    port = free_port()
    assert main(["prom", "--prometheus", f"http://127.0.0.1:{port}", "--counter", "x"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the server" in err and f"127.0.0.1:{port}" in err
    assert main(["prom", "--prometheus", f"http://127.0.0.1:{port}"]) == 1
    assert "give --preset vllm" in capsys.readouterr().err


def _strict_json(text: str) -> Any:
    def no_constant(c: str) -> Any:
        raise ValueError(f"not strict JSON: {c}")

    return json.loads(text, parse_constant=no_constant)


def test_live_report_cli(scenario: _Scenario, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    from qcore.cli import main

    s = scenario
    html_path = tmp_path / "prom.html"
    base = ["report", "--prometheus", s.client.url, "--start", repr(s.start), "--end", repr(s.end)]
    assert main([*base, "--query", 'req_latency_seconds{job="qcore"}', "--slo", "0.3",
                 "--quantile", "0.5", "--quantile", "0.99", "--bin", "2", "--preset", "vllm",
                 "--html", str(html_path), "--format", "json"]) == 0
    doc = _strict_json(capsys.readouterr().out)
    (h,) = doc["histograms"]
    x = s.observations
    assert (h["kind"], h["count"], h["resets"]) == ("classic", x.size, 1)
    for q in ("0.5", "0.99"):
        r = h["quantiles"][q]
        assert r["lower"] < _exact_quantile(x, float(q)) <= r["upper"]
    (a,) = h["attainment"]
    assert a["lower"] <= np.count_nonzero(x <= 0.3) / x.size <= a["upper"]
    assert sum(w["count"] for w in h["windows"]) == x.size
    assert len(h["windows"]) == math.ceil((s.end - s.start) / 2.0)
    (eng,) = doc["engines"]
    assert sum(w["count"] for w in eng["windows"]["ttft"]) == x.size
    assert doc["html"] == str(html_path)
    page = html_path.read_text()
    assert page.count('<svg class="plot plot-') == 2 and 'id="data"' in page
    assert main([*base, "--query", "req_latency_seconds", "--slo", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "req_latency_seconds (classic histogram): 800 observations" in text
    assert "worst window for p99" in text


def test_report_cli_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from qcore.cli import main

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["report", "--query", "x"]) == 2
    assert "give log files (or --prometheus URL)" in capsys.readouterr().err
    assert main(["report", "x.csv", "--query", "x"]) == 2
    assert "give --prometheus URL" in capsys.readouterr().err
    assert main(["report", "--prometheus", url]) == 1
    assert "--query SELECTOR" in capsys.readouterr().err
    assert main(["report", "--prometheus", url, "--query", "x{a=\"b\""]) == 1
    assert "unclosed" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="chromium not installed (Debian package: chromium)")
def test_live_report_html_in_headless_chromium(scenario: _Scenario, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from qcore.cli import main

    s = scenario
    path = tmp_path / "prom.html"
    assert main(["report", "--prometheus", s.client.url, "--start", repr(s.start), "--end",
                 repr(s.end), "--query", "req_latency_seconds", "--slo", "0.3", "--bin", "2",
                 "--preset", "vllm", "--title", "fleet <metrics>", "--html", str(path)]) == 0
    capsys.readouterr()
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe is not None
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    res = subprocess.run([*base, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000",
                          "--window-size=1400,900", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert len(re.findall(r'<svg class="plot plot-', dom)) == 2
    assert len(re.findall(r"<polyline", dom)) >= 4  # upper and lower bounds of each quantile
    assert "fleet &lt;metrics&gt;" in dom and 'class="quantiles"' in dom
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console
    shot = tmp_path / "shot.png"
    res = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1400,900", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and shot.exists()
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1400, 900)
