"""``qcore.report``: per-group summaries against numpy truth, streaming = exact, HTML in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcore.report import summarize


def _log(n: int = 6000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(1000.0, 4600.0, n))
    ep = rng.choice(["/chat", "/embed", "/image"], n, p=[0.6, 0.3, 0.1])
    lat = rng.lognormal(-1.5, 0.7, n) * np.where(ep == "/image", 4.0, 1.0)
    status = np.where(rng.random(n) < np.where(ep == "/embed", 0.05, 0.005), 500, 200)
    return pl.DataFrame({"ts": t, "latency": lat, "status": status, "endpoint": ep})


def _peak_bruteforce(s: np.ndarray, e: np.ndarray) -> int:
    # concurrency just after each start: starts <= t < ends
    return int(max(((s <= t) & (t < e)).sum() for t in s))


def test_summary_matches_numpy_truth():
    log = _log()
    rep = summarize(log, group_by=["endpoint"], bin=60.0)
    assert [g.label for g in rep.groups] == ["endpoint=/chat", "endpoint=/embed", "endpoint=/image"]
    assert rep.exact
    t = log["ts"].to_numpy()
    lat = log["latency"].to_numpy()
    st = log["status"].to_numpy()
    ep = log["endpoint"].to_numpy()
    for g in rep.groups:
        m = ep == g.key["endpoint"]
        ok = m & (st == 200)
        assert g.count == m.sum() and g.errors == (m & (st == 500)).sum()
        assert g.error_rate == pytest.approx((st[m] == 500).mean())
        for q in (0.5, 0.99, 0.999):
            est, lo, hi = g.quantiles[q]
            exact = np.quantile(lat[ok], q, method="lower")
            assert abs(est - exact) <= 0.01 * exact * (1 + 1e-9)
            if lo is not None:
                assert lo <= exact
            if hi is not None:
                assert exact <= hi
        # counts per 60 s window, from t0 of the whole log
        edges = rep.t0 + 60.0 * np.arange(g.counts.size + 1)
        np.testing.assert_array_equal(g.counts, np.histogram(t[m], bins=edges)[0])
        # in flight at every window edge t: start < t <= end
        s_, e_ = t[m], (t + lat)[m]
        want = [((s_ < x) & (x <= e_)).sum() for x in rep.grid]
        np.testing.assert_array_equal(g.inflight, want)
        # exact peak concurrency
        assert g.peak_concurrency == _peak_bruteforce(t[m & (st != -1)], (t + lat)[m])
        # Little's law over [t0, t1] of the whole log: every interval lies inside, so L = sum(W)/T
        T = rep.t1 - rep.t0
        assert g.little["L"] == pytest.approx(lat[m].sum() / T, rel=1e-9)
        assert g.little["arrival_rate"] == pytest.approx(m.sum() / T, rel=1e-12)
        assert g.little["gap"] < 1e-9 and g.little["holds"]
        # rates over the log's span (first to last start), so the groups' rates add up
        assert g.rate == pytest.approx(m.sum() / (t.max() - t.min()), rel=1e-12)
        # window statistics over the complete windows of the log's span, population variance
        c = g.counts[: int(np.floor((t.max() - t.min()) / 60.0))].astype(float)
        assert g.dispersion == pytest.approx(c.var() / c.mean(), rel=1e-12)
        assert g.peak_to_mean == pytest.approx(c.max() / c.mean(), rel=1e-12)
    assert sum(g.rate for g in rep.groups) == pytest.approx(rep.overall.rate, rel=1e-12)
    assert rep.overall.count == log.height
    # the whole log's statistics are arrival_stats' at the report's window
    import qcore

    a = qcore.arrival_stats(t, window=60.0)
    # (one definition in the core: equal to the last bit)
    assert rep.overall.rate == a.rate and rep.overall.rate_ci == tuple(a.rate_ci)
    assert rep.overall.dispersion == a.index_of_dispersion
    assert rep.overall.peak_to_mean == a.peak_to_mean
    # the text table names every group and an "all" row
    txt = rep.to_text()
    for lab in ("endpoint=/chat", "endpoint=/embed", "endpoint=/image", "all"):
        assert lab in txt


def test_streaming_equals_exact_where_it_must():
    log = _log(20_000, seed=3)
    exact = summarize(log, group_by=["endpoint"], bin=30.0)
    stream = summarize(log, group_by=["endpoint"], bin=30.0, batch_rows=1_500, exact_limit=0)
    assert not stream.exact and exact.exact
    for a, b in zip(exact.groups, stream.groups, strict=True):
        assert a.label == b.label and a.count == b.count and a.errors == b.errors
        np.testing.assert_array_equal(a.counts, b.counts)
        assert a.sketch.to_bytes() == b.sketch.to_bytes()         # merges are exact
        for q in (0.5, 0.99, 0.999):
            assert a.quantiles[q][0] == b.quantiles[q][0]
        assert a.little == b.little                               # exact sums
        np.testing.assert_array_equal(a.inflight, b.inflight)
        assert b.peak_concurrency <= a.peak_concurrency and not b.peak_exact   # window edges only
        assert b.rate == pytest.approx(a.rate, rel=1e-12)       # n / (last start - first start)
    # the whole log's in-flight curve on the grid is the same; its peak there is a lower bound
    np.testing.assert_allclose(exact.overall.inflight, stream.overall.inflight)
    assert stream.overall.peak_concurrency <= exact.overall.peak_concurrency
    assert exact.overall.peak_exact and not stream.overall.peak_exact
    assert stream.to_html().count("<polyline") >= 4


def test_contract_violations_are_reported_in_summary():
    log = _log(500).with_columns(latency=pl.when(pl.int_range(pl.len()) < 7).then(-1.0).otherwise(pl.col("latency")))
    rep = summarize(log, batch_rows=100)
    assert rep.overall.count == 493
    assert rep.contract["rows_excluded"] == 7
    assert {c["name"]: c["failed"] for c in rep.contract["checks"]}["negative_latency"] == 7
    assert "negative_latency=7" in rep.to_text()


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="group_by"):
        summarize(_log(50), group_by=["region"])
    csv = tmp_path / "log.csv"
    pl.DataFrame({"ts": [0.0, 1.0, 2.0], "latency": [0.1, 0.2, 0.3], "status": [200, 500, 200]}).write_csv(csv)
    with pytest.raises(ValueError, match="group_by") as err:
        summarize(str(csv), group_by=["region"])
    assert "_q" not in str(err.value)          # the engine's own columns are not the user's
    with pytest.raises(ValueError, match="bin"):
        summarize(_log(50), bin=0.0)
    with pytest.raises(ValueError, match="no rows"):
        summarize(pl.DataFrame({"ts": [], "latency": []}, schema={"ts": pl.Float64, "latency": pl.Float64}))


def test_arrival_only_log_has_rates_but_no_latency():
    rng = np.random.default_rng(2)
    log = pl.DataFrame({"ts": np.sort(rng.uniform(0, 1000, 3000))})
    rep = summarize(log, bin=10.0)
    g = rep.overall
    assert g.count == 3000 and g.little is None and g.quantiles[0.99] == (None, None, None)
    assert g.dispersion == pytest.approx(1.0, abs=0.35)            # Poisson
    html = rep.to_html()
    assert "no latency: the log has no duration or end column" in html  # latency plots say why they are empty


def test_real_trace_gentd26(shared_data):
    path = shared_data / "alibaba_gentd26" / "lora_request_trace.csv"
    rep = summarize(path, group_by=["endpoint"], bin=60.0)
    by = {g.key["endpoint"]: g for g in rep.groups}
    # exact quantiles of the successful requests, straight from the CSV
    raw = pl.read_csv(path).filter(pl.col("predict_status") == "SUCCEED")
    for ep in ("TXT_2_IMG", "IMG_2_IMG", "INPAINTING"):
        v = raw.filter(pl.col("predict_type") == ep)["exec_time_seconds"].to_numpy()
        assert by[ep].ok == v.size
        for q in (0.5, 0.99, 0.999):
            exact = np.quantile(v, q, method="lower")
            assert abs(by[ep].quantiles[q][0] - exact) <= 0.01 * exact * (1 + 1e-9)
            lo, hi = by[ep].quantiles[q][1:]
            assert lo is None or lo <= exact
            assert hi is None or exact <= hi
    # SOURCE.md: TXT_2_IMG p50 23 s and p99 105 s
    assert by["TXT_2_IMG"].quantiles[0.5][0] == pytest.approx(23, rel=0.01)
    assert by["TXT_2_IMG"].quantiles[0.99][0] == pytest.approx(105, rel=0.01)
    ov = rep.overall
    assert ov.count == 26_823 and ov.ok == 26_392 and ov.errors == 398 and ov.incomplete == 33
    # SOURCE.md: the maximum number of requests in the system at once was 22
    assert ov.peak_concurrency == 22
    # per-minute counts: peak 65 requests in one minute (bins from the first arrival)
    assert ov.counts.max() == 65


# ------------------------------------------------------------------ HTML


def _html(tmp_path):
    rep = summarize(_log(4000, seed=5), group_by=["endpoint"], bin=60.0, title="test <report>")
    path = tmp_path / "report.html"
    doc = rep.to_html(path)
    return path, doc


def test_html_is_self_contained(tmp_path):
    path, doc = _html(tmp_path)
    assert path.read_text() == doc
    # one inline script, the hover values', and nothing else executable or fetched
    from qcore.report._html import HOVER_JS

    assert re.findall(r"<script[^>]*>", doc, flags=re.I) == ["<script>"] and f"<script>{HOVER_JS}</script>" in doc
    assert not re.search(r"\b(fetch|XMLHttpRequest|import\(|eval)\b", HOVER_JS)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", doc)      # nothing fetched
    for cls in ("plot-cdf", "plot-rate", "plot-inflight", "plot-burstiness"):
        assert f"plot {cls}" in doc
    assert doc.count("<polyline") >= 4 * 3
    assert "test &lt;report&gt;" in doc                                      # escaped title
    assert 'id="summary"' in doc and "endpoint=/embed" in doc


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="chromium not installed (Debian package: chromium)")
def test_html_in_headless_chromium(tmp_path):
    path, _ = _html(tmp_path)
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    res = subprocess.run(base + ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom",
                                 path.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    # the browser parsed the plots as SVG with their series: eleven panels, and one chart
    # of latency over time per group
    assert len(re.findall(r'<svg class="plot plot-', dom)) == 11 + len(re.findall(r'plot-latency-group"', dom))
    assert len(re.findall(r'plot-latency-group"', dom)) == 3
    assert len(re.findall(r"<polyline", dom)) >= 12
    # no console message and no page error
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console
    shot = tmp_path / "shot.png"
    res = subprocess.run(base + [f"--screenshot={shot}", "--window-size=1400,1800", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and shot.exists()
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000     # a rendered page, not a blank one


def test_two_keys_with_nulls_stream_like_exact():
    log = _log(9000, seed=8)
    rng = np.random.default_rng(0)
    ver = rng.choice(np.array(["v1", "v2", None], dtype=object), log.height).tolist()
    log = log.with_columns(model_version=pl.Series(ver, dtype=pl.String))
    a = summarize(log, group_by=["endpoint", "model_version"], bin=30.0)
    b = summarize(log, group_by=["endpoint", "model_version"], bin=30.0, batch_rows=1000, exact_limit=0)
    assert len(a.groups) == len(b.groups) == 9
    ep = log["endpoint"].to_numpy()
    for ga, gb in zip(a.groups, b.groups, strict=True):
        assert ga.key == gb.key and ga.count == gb.count and ga.errors == gb.errors
        want = ((ep == ga.key["endpoint"]) & np.array([v == ga.key["model_version"] for v in ver])).sum()
        assert ga.count == want
        np.testing.assert_array_equal(ga.counts, gb.counts)
        assert ga.sketch.to_bytes() == gb.sketch.to_bytes()
    assert "model_version=None" in a.to_text() or "model_version=null" in a.to_text()


def test_progress_bar_on_stderr(capsys):
    summarize(_log(5000, seed=9), batch_rows=1000, exact_limit=0, progress=True)
    err = capsys.readouterr().err
    assert "100.0%" in err and "5,000/5,000 rows" in err
    summarize(_log(5000, seed=9), batch_rows=1000, exact_limit=0, progress=False)
    assert capsys.readouterr().err == ""


def test_skewed_clock_does_not_stretch_the_windows():
    log = _log(3000, seed=4)
    ts = log["ts"].to_list()
    ts[7] = 4.0e9                        # year 2096: outside the contract's plausible range
    bad = log.with_columns(ts=pl.Series(ts))
    rep = summarize(bad, bin=60.0)
    assert rep.contract["rows_excluded"] == 1
    assert rep.t1 - rep.t0 < 4000 and rep.overall.counts.size <= 70


@pytest.mark.parametrize("exact_limit", [2_000_000, 0])
def test_window_ends_that_round_past_an_edge(exact_limit):
    # t0 + 2·bin rounds above the second window edge for this start: the end windows take
    # the count every batch gets (a mismatch raised before)
    t0 = 510.7793537330521
    assert ((t0 + 20.0) - t0) / 10.0 > 2.0
    log = pl.DataFrame({"ts": [t0, t0 + 3.0, t0 + 9.5], "latency": [0.145, 0.5, 12.0], "status": [200, 200, 500]})
    rep = summarize(log, bin=10.0, exact_limit=exact_limit)
    assert rep.overall.count == 3 and int(rep.overall.counts.sum()) == 3
    assert rep.grid.size == rep.overall.inflight.size
    # in flight at t0 + 10: only the request that ends at t0 + 21.5
    assert rep.overall.inflight[0] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.001, 1e4, allow_nan=False), min_size=1, max_size=400), st.integers(0, 3))
def test_every_quantile_estimate_lies_in_its_own_interval(lat, dup):
    # GenTD26's integer latencies used to give "p50 22.998 [23, 23]": the sketch's estimate
    # outside the exact order statistics' interval. The interval now holds it.
    import qcore.rules as qr

    x = np.repeat(np.round(np.asarray(lat), dup), 2) if dup else np.asarray(lat)
    log = pl.DataFrame({"ts": np.arange(x.size, dtype=np.float64), "latency": x})
    rep = summarize(log, bin=10.0, progress=False)
    for q, (est, lo, hi) in rep.overall.quantiles.items():
        assert est is not None, q
        assert (lo is None or lo <= est) and (hi is None or est <= hi), (q, est, lo, hi)
    rule = qr.Rule(id="p", version="1", owner="o", metric="p50", threshold=1e9)
    d = qr.evaluate(log, [rule], now=float(x.size) + 10.0).row(0, named=True)
    if d["value"] is not None:
        assert (d["ci_lo"] is None or d["ci_lo"] <= d["value"]) and (d["ci_hi"] is None or d["value"] <= d["ci_hi"])


@pytest.mark.parametrize("n", [5_000, 200_000, 1_500_000])
def test_poisson_dispersion_is_one_at_every_size_and_path(n):
    # One definition (complete windows, population variance over mean): the in-memory and
    # the streaming paths agree exactly, and a Poisson log reads ≈ 1 within sampling error.
    rng = np.random.default_rng(n)
    t = np.cumsum(rng.exponential(1 / 200.0, n))
    log = pl.DataFrame({"ts": t, "latency": rng.exponential(0.05, n)})
    exact = summarize(log, exact_limit=10**9)
    stream = summarize(log, exact_limit=0, batch_rows=max(1, n // 7))
    assert exact.exact and not stream.exact
    for b in (exact.bin, exact.bin * 4):
        r = summarize(log, bin=b, exact_limit=0, batch_rows=max(1, n // 3))
        k = int(np.floor((t.max() - t.min()) / b))
        se = np.sqrt(2.0 / (k - 1))  # the index of dispersion of k Poisson counts: sd ≈ sqrt(2/(k-1))
        assert abs(r.overall.dispersion - 1.0) < 4 * se
    assert exact.overall.dispersion == stream.overall.dispersion
    assert exact.overall.peak_to_mean == stream.overall.peak_to_mean
    assert exact.overall.rate == stream.overall.rate
    k = int(np.floor((t.max() - t.min()) / exact.bin))
    assert abs(exact.overall.dispersion - 1.0) < 4 * np.sqrt(2.0 / (k - 1))


@pytest.mark.parametrize("window", [1.0, 10.0, 60.0])
def test_arrival_stats_report_and_rules_agree_exactly(window):
    # One definition of the rate, the peak-to-mean and the index of dispersion (the
    # core's), whether asked of arrival_stats, of the report or of a rule.
    import qcore
    import qcore.rules as qr

    rng = np.random.default_rng(int(window))
    n = 20_000
    t = np.cumsum(rng.exponential(1 / 50.0, n)) + 1e5
    log = pl.DataFrame({"ts": t, "latency": rng.exponential(0.05, n)})
    a = qcore.arrival_stats(t, window=window)
    rep = summarize(log, bin=window)
    rules = [{"id": m, "version": "1", "owner": "o", "metric": m, "threshold": 1e9, "bin": window}
             for m in ("burstiness", "peak_to_mean")]
    rules.append({"id": "arrival_rate", "version": "1", "owner": "o", "metric": "arrival_rate", "threshold": 1.0})
    d = dict(zip(*qr.evaluate(log, rules, now=float(t.max()) + 1).select("rule_id", "value").to_dict().values(),
                 strict=True))
    assert rep.overall.dispersion == a.index_of_dispersion == d["burstiness"]
    assert rep.overall.peak_to_mean == a.peak_to_mean == d["peak_to_mean"]
    assert rep.overall.rate == a.rate == d["arrival_rate"]
    assert [w for w, _ in rep.overall.burstiness if w >= window][:3] == list(a.burstiness_windows[:3])
