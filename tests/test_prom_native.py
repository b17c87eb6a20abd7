"""Native histograms: a real Prometheus (``--enable-feature=native-histograms``) scraping a
protobuf exporter (tests/prom_server.py) that the test drives with known observations,
read through ``qcore.prom.native_histogram`` into ``QuantileSketch`` by its importer."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore
from prom_server import NativeExporter, bucket_index, prometheus, wait_until
from qcore import prom
from qcore.exceptions import InvalidArgumentError

QS = (0.01, 0.25, 0.5, 0.9, 0.99, 0.999)


def _exact(x: np.ndarray, q: float) -> float:
    s = np.sort(x)
    return float(s[max(1, math.ceil(q * s.size)) - 1])


def _buckets(x: np.ndarray, schema: int) -> tuple[dict[int, int], dict[int, int], int]:
    pos: dict[int, int] = {}
    neg: dict[int, int] = {}
    zero = 0
    for v in x.tolist():
        if abs(v) <= 2.0**-128:
            zero += 1
            continue
        side = pos if v > 0 else neg
        i = bucket_index(abs(v), schema)
        side[i] = side.get(i, 0) + 1
    return pos, neg, zero


# ---- the JSON reader (no server) -------------------------------------------------------


def _json(buckets: list[list[object]], count: int, total: float = 1.0) -> dict[str, object]:
    return {"count": str(count), "sum": str(total), "buckets": buckets}


def test_sample_reader_finds_schema_and_indices() -> None:
    b = 2.0 ** (2.0**-3)
    s = prom._native_sample(_json([
        [1, "-4", repr(-4 / b), "2"],
        [3, "-1e-3", "1e-3", "1"],
        [0, repr(1 / b), "1", "3"],
        [0, "1", repr(b), "4"],
    ], 10), "h")
    assert (s.schema, s.zero_threshold, s.zero_count) == (3, 1e-3, 1)
    assert dict(s.positive) == {0: 3, 1: 4}
    assert dict(s.negative) == {16: 2}  # |−4| = 2^(16/8)


def test_sample_reader_refuses_custom_and_float_buckets() -> None:
    with pytest.raises(InvalidArgumentError, match="not a bucket of an exponential schema"):
        prom._native_sample(_json([[0, "0.1", "0.25", "3"]], 3), "h")
    with pytest.raises(InvalidArgumentError, match="not a whole number"):
        prom._native_sample(_json([[0, "0.5", "1", "2.5"]], 2), "h")
    with pytest.raises(InvalidArgumentError, match="malformed"):
        prom._native_sample({"count": "1"}, "h")


def test_increase_merges_schemas_and_counts_a_reset() -> None:
    a = prom._NativeSample(3, 0.0, 0, {1: 2, 2: 1}, {}, 3, 1.0)
    b = prom._NativeSample(2, 0.0, 0, {1: 3, 2: 4}, {}, 7, 3.0)  # coarser, grew
    d, reset = prom._native_increase(a, b)
    # schema 3 buckets 1, 2 (OTel 0, 1) are schema 2 bucket 1 (OTel 0)
    assert not reset and d.schema == 2 and d.positive == {2: 4} and d.count == 4
    c = prom._NativeSample(2, 0.0, 0, {1: 1}, {}, 1, 0.5)  # a fresh process
    d, reset = prom._native_increase(b, c)
    assert reset and d.positive == {1: 1} and d.count == 1


# ---- a real Prometheus -----------------------------------------------------------------


@dataclass
class _Native:
    client: prom.PrometheusClient
    start: float
    end: float
    a: np.ndarray  # observations of series a (schema 3), across a restart
    b: np.ndarray  # series b (schema 1)


def _count(c: prom.PrometheusClient, sel: str) -> float:
    r = c.query(f"histogram_count({sel})")["result"]
    return float(r[0]["value"][1]) if r else -1.0


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Native]:
    ex = NativeExporter(schema=3)
    ex.hist("lat_seconds", pod="a")
    ex.hist("lat_seconds", schema=1, pod="b")
    try:
        with prometheus(tmp_path_factory.mktemp("native"), [f"127.0.0.1:{ex.port}"],
                        native=True) as srv:
            c = srv.client
            start = time.time() - 1.0
            wait_until(lambda: _count(c, 'lat_seconds{pod="a"}') == 0.0, "the zero baseline")
            rng = np.random.default_rng(17)
            # zeros, negatives (a clock step), ties, values on bucket boundaries
            a1 = np.r_[rng.lognormal(-1.5, 1.0, 500), [0.0, 0.0, -0.25, 0.5, 1.0, 2.0 ** 0.125],
                       np.full(20, 0.3)]
            ex.observe("lat_seconds", a1.tolist(), pod="a")
            b1 = rng.lognormal(0.0, 0.5, 300)
            ex.observe("lat_seconds", b1.tolist(), pod="b")
            wait_until(lambda: _count(c, 'lat_seconds{pod="a"}') == a1.size, "a1 scraped")
            ex.restart()  # fewer observations after the restart: a visible reset
            a2 = rng.lognormal(-1.0, 1.0, 200)
            ex.observe("lat_seconds", a2.tolist(), pod="a")
            wait_until(lambda: _count(c, 'lat_seconds{pod="a"}') == a2.size, "a2 scraped")
            time.sleep(1.2)  # one more scrape of the final state
            yield _Native(c, start, time.time(), np.r_[a1, a2], b1)
    finally:
        ex.close()


def test_live_native_histogram_is_lossless(native: _Native) -> None:
    s = native
    h = prom.native_histogram(s.client, "lat_seconds", s.start, s.end, matchers='pod="a"')
    assert (h.schema, h.count, h.resets, h.series) == (3, s.a.size, 1, 1)
    assert h.sum == pytest.approx(float(s.a.sum()), rel=1e-12)
    pos, neg, zero = _buckets(s.a, 3)
    assert dict(h.positive) == pos and dict(h.negative) == neg and h.zero_count == zero
    sk = h.sketch()
    assert sk.scale == 3 and sk.count == s.a.size
    # every bucket kept: the sketch exports the same histogram back
    back = sk.to_prometheus()
    want = h.to_prometheus()
    for k in ("schema", "zero_count", "count", "positive_spans", "positive_deltas",
              "negative_spans", "negative_deltas"):
        assert back[k] == want[k], k


def test_live_native_quantile_bounds_contain_the_exact_quantiles(native: _Native) -> None:
    s = native
    h = prom.native_histogram(s.client, "lat_seconds", s.start, s.end, matchers='pod="a"')
    sk = h.sketch()
    for q in QS:
        r = h.quantile(q)
        exact = _exact(s.a, q)
        assert r.lower <= exact <= r.upper, (q, r, exact)
        assert r.lower <= r.estimate <= r.upper
        assert r.ci[0] <= r.lower and r.upper <= r.ci[1]
        # the sketch's own (lower) quantile definition, straight from the importer
        lo, hi = sk.quantile_bounds(q)
        assert lo <= float(np.quantile(s.a, q, method="lower")) <= hi
        if exact > 0:  # one bucket of schema 3 (or less, clamped at min/max)
            assert r.upper / r.lower <= 2.0 ** 0.125 * (1 + 1e-12)


def test_live_native_merges_series_at_the_coarsest_schema(native: _Native) -> None:
    s = native
    h = prom.native_histogram(s.client, "lat_seconds", s.start, s.end)
    both = np.r_[s.a, s.b]
    assert (h.schema, h.count, h.series) == (1, both.size, 2)
    pos, neg, zero = _buckets(both, 1)
    assert dict(h.positive) == pos and dict(h.negative) == neg and h.zero_count == zero
    for q in QS:
        r = h.quantile(q)
        assert r.lower <= _exact(both, q) <= r.upper
    assert h.sketch().count == both.size


def test_live_native_errors(native: _Native) -> None:
    s = native
    with pytest.raises(InvalidArgumentError, match="no series"):
        prom.native_histogram(s.client, "absent_seconds", s.start, s.end)
    with pytest.raises(InvalidArgumentError, match="float samples"):
        prom.native_histogram(s.client, "up", s.start, s.end)
    assert isinstance(prom.native_histogram(s.client, "lat_seconds", s.start, s.end).sketch(),
                      qcore.QuantileSketch)


def test_live_native_attainment_brackets_contain_the_truth(native: _Native) -> None:
    s = native
    h = prom.native_histogram(s.client, "lat_seconds", s.start, s.end, matchers='pod="a"')
    b = 2.0 ** 0.125
    for thr in (-1.0, -0.25, 0.0, 1e-40, 0.05, 0.2, 0.3, 0.5, 1.0, b, 3.0, 100.0):
        a = h.attainment(thr)
        truth = int(np.count_nonzero(s.a <= thr))
        assert a.good_lower <= truth <= a.good_upper, (thr, a, truth)
        assert a.width <= 0.2
    # on a bucket boundary the bracket is exact
    for thr in (0.5, 1.0, 2.0 ** -3):
        a = h.attainment(thr)
        assert a.exact and a.good_lower == np.count_nonzero(s.a <= thr)


def test_live_native_windows_add_up(native: _Native) -> None:
    s = native
    whole = prom.native_histogram(s.client, "lat_seconds", s.start, s.end)
    wins = prom.native_histogram_windows(s.client, "lat_seconds", s.start, s.end, 1.5)
    assert len(wins) == math.ceil((s.end - s.start) / 1.5)
    assert sum(w.count for w in wins) == whole.count
    assert sum(w.zero_count for w in wins) == whole.zero_count
    merged: dict[int, int] = {}
    for w in wins:
        k = 0 if w.schema is None else w.schema - 1
        for i, c in w.positive.items():
            j = ((i - 1) >> k) + 1
            merged[j] = merged.get(j, 0) + c
    assert merged == dict(whole.positive)


def test_live_report_reads_a_native_histogram(native: _Native, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from qcore.cli import main

    s = native
    html_path = tmp_path / "native.html"
    assert main(["report", "--prometheus", s.client.url, "--start", repr(s.start), "--end",
                 repr(s.end), "--query", 'lat_seconds{pod="a"}', "--slo", "0.5", "--bin", "2",
                 "--html", str(html_path), "--format", "json"]) == 0
    (h,) = json.loads(capsys.readouterr().out)["histograms"]
    assert (h["kind"], h["schema"], h["count"], h["resets"]) == ("native", 3, s.a.size, 1)
    for q, r in h["quantiles"].items():
        assert r["lower"] <= _exact(s.a, float(q)) <= r["upper"]
    (a,) = h["attainment"]
    assert a["exact"] and a["lower"] == np.count_nonzero(s.a <= 0.5) / s.a.size
    assert sum(w["count"] for w in h["windows"]) == s.a.size
    assert "(native histogram)" in html_path.read_text()


# ---- properties against exact references (no server) -----------------------------------


def _native_of(x: np.ndarray, schema: int) -> prom.NativeHistogram:
    pos, neg, zero = _buckets(x, schema)
    return prom.NativeHistogram(metric="h", schema=schema, zero_threshold=2.0**-128,
                                zero_count=zero, positive=pos, negative=neg, count=x.size,
                                sum=float(x.sum()))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), schema=st.integers(-2, 8),
       q=st.floats(0.001, 0.999), threshold=st.floats(-2.0, 4.0))
def test_bounds_and_brackets_contain_the_truth(seed: int, n: int, schema: int, q: float,
                                               threshold: float) -> None:
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(-1.0, 1.0, n), 3)  # ties and round values
    x[rng.random(n) < 0.1] *= -1.0
    x[rng.random(n) < 0.05] = 0.0
    h = _native_of(x, schema)
    r = h.quantile(q)
    assert r.rank == max(1, math.ceil(q * n))
    assert r.lower <= _exact(x, q) <= r.upper
    assert r.ci[0] <= r.lower and r.upper <= r.ci[1]
    a = h.attainment(threshold)
    truth = int(np.count_nonzero(x <= threshold))
    assert a.good_lower <= truth <= a.good_upper
    assert a.width == pytest.approx((a.good_upper - a.good_lower) / n)


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 40), st.booleans(), st.integers(1, 3)),
                      min_size=1, max_size=25))
def test_increases_over_restarts_and_schema_changes(steps: list[tuple[int, bool, int]]) -> None:
    """Random scrapes of a histogram whose process restarts (scraped at zero first) and whose
    schema falls (a bucket limit): every observation is counted once, at the coarsest
    schema."""
    rng = np.random.default_rng(len(steps))
    state: list[float] = []
    obs: list[float] = []
    samples = [prom._NativeSample(3, 2.0**-128, 0, {}, {}, 0, 0.0)]
    schema = 3
    for k, restart, drop in steps:
        if restart and state:
            state = []
            samples.append(prom._NativeSample(schema, 2.0**-128, 0, {}, {}, 0, 0.0))
        if drop == 1 and schema > 0:
            schema -= 1
        new = rng.lognormal(-1.0, 1.0, k).tolist()
        state += new
        obs += new
        pos, neg, zero = _buckets(np.array(state), schema)
        samples.append(prom._NativeSample(schema, 2.0**-128, zero, pos, neg, len(state),
                                          float(sum(state))))
    acc = None
    for a, b in zip(samples[:-1], samples[1:], strict=True):
        d, _ = prom._native_increase(a, b)
        acc = prom._add_delta(acc, d)
    assert acc is not None
    pos, neg, zero = _buckets(np.array(obs), schema)
    assert acc.schema == schema and acc.count == len(obs)
    assert {i: c for i, c in acc.positive.items() if c} == pos and acc.zero_count == zero


def test_live_prom_cli_reads_a_native_histogram(native: _Native,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from qcore.cli import main

    s = native
    base = ["prom", "--prometheus", s.client.url, "--start", repr(s.start), "--end", repr(s.end),
            "--histogram", "lat_seconds", "--matchers", 'pod="a"', "--quantile", "0.99"]
    assert main([*base, "--slo", "0.3", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)["histogram"]
    assert (out["kind"], out["count"]) == ("native", s.a.size)
    r = out["quantiles"]["0.99"]
    assert r["lower"] <= _exact(s.a, 0.99) <= r["upper"]
    assert main(base) == 0
    assert "lat_seconds (native histogram): 726 observations" in capsys.readouterr().out
    assert main([*base, "--gauge", "up"]) == 1
    assert "--gauge needs a classic histogram" in capsys.readouterr().err
