"""The HTML pages (``qcore report --html``, ``qcore check --html``) as someone on call
reads them: rendered by headless Chromium at 1400×900, checked from the DOM and the SVG."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import qcore.report as qrep
import qcore.rules as qr
from cli_helpers import qcore_cli, strict
from qcore.exceptions import InvalidArgumentError
from qcore.report._html import _fmt_s, _log_ticks, _num, _time_ticks, is_epoch, utc
from qcore.rules.page import decisions_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package: chromium)")

# Measures the laid-out page and writes the result into it, for --dump-dom to return.
_PROBE = """<script>
addEventListener('load', () => {
  const W = window.innerWidth;
  const svgs = [...document.querySelectorAll('svg.plot')].map(s => s.getBoundingClientRect().right);
  const out = {width: W, scroll: document.documentElement.scrollWidth,
               svg_right: Math.max(0, ...svgs),
               tables: [...document.querySelectorAll('.scroll')].map(d => d.getBoundingClientRect().right),
               hover: {}};
  // the hover values of every time chart with data, at the middle of its plot area
  for (const svg of document.querySelectorAll('svg.plot[data-unit]')) {
    if (!svg.querySelector('polyline')) continue;
    const r = svg.getBoundingClientRect(), k = r.width / svg.viewBox.baseVal.width, d = svg.dataset;
    const x = r.left + (+d.ml + +d.pw / 2) * k, y = r.top + (+d.mt + +d.ph / 2) * k;
    svg.dispatchEvent(new MouseEvent('mousemove', {clientX: x, clientY: y, bubbles: true}));
    const tip = document.querySelector('.qtip');
    out.hover[svg.getAttribute('class')] = tip && tip.style.display === 'block' ? tip.innerText : null;
    svg.dispatchEvent(new MouseEvent('mouseleave'));
  }
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def browse(page: Path, tmp: Path) -> tuple[str, dict[str, Any]]:
    """The DOM of ``page`` after Chromium laid it out at 1400×900, and the probe's numbers."""
    probed = tmp / ("probed-" + page.name)
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    assert CHROMIUM is not None
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--no-first-run", f"--user-data-dir={tmp / 'profile'}", "--window-size=1400,900",
                          "--virtual-time-budget=3000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=180, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout)
    assert m, "the page did not finish loading"
    return res.stdout, json.loads(m.group(1).replace("&quot;", '"'))


def svgs(dom: str) -> dict[str, str]:
    """The plots by class."""
    return {m.group(1): m.group(0) for m in
            re.finditer(r'<svg class="plot (plot-[\w-]+)".*?</svg>', dom, flags=re.S)}


def series_colors(svg: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in
            re.finditer(r'<polyline class="series" data-name="([^"]*)" fill="none" stroke="([^"]*)"', svg)}


def log(n: int, groups: int, seed: int = 1, epoch: bool = True, latency: bool = True) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 7200, n)) + (1.7e9 if epoch else 0.0)
    cols: dict[str, Any] = {"timestamp": t, "session": (rng.zipf(1.4, n) % groups).astype(str),
                            "status": np.where(rng.random(n) < 0.03, 500, 200)}
    if latency:
        cols["latency_s"] = rng.lognormal(-2, 1, n)
    return pl.DataFrame(cols)


# ------------------------------------------------------------------ numbers and clocks

def test_numbers_read_without_exponents_and_clocks_at_round_times():
    assert [_num(v) for v in (9.388e-05, 0.0034, 2.5, 1234.5, 0.0, None, 9.0)] == \
        ["0.0000939", "0.00340", "2.50", "1,234", "0", "–", "9"]
    assert _num(0.0500, strip=True) == "0.05" and _num(120.0) == "120"
    assert is_epoch(1.7e9) and not is_epoch(3600.0)
    ticks = _time_ticks(1.7e9, 0.0, 7200.0, True)
    assert all(re.fullmatch(r"\d\d:\d\d", s) for _, s in ticks) and 3 <= len(ticks) <= 7
    assert all((1.7e9 + x) % 900 == 0 for x, _ in ticks)  # round UTC quarter hours
    assert [s for _, s in _time_ticks(0.0, 0.0, 90.0, False)][:2] == ["0s", "15s"]
    assert utc(0.0) == "1970-01-01 00:00:00 UTC"
    # a log axis of durations ticks at round durations, in the unit each is whole in
    ticks = [s for _, s in _log_ticks(math.log10(0.5), math.log10(2e5), _fmt_s)]
    assert ticks == ["1s", "10s", "1min", "10min", "1h", "6h", "1d"]


def test_top_groups_and_the_fold_of_the_rest():
    df = log(60_000, 3_000)
    rep = qrep.summarize(df, group_by=["session"])
    doc = rep.to_html(top=5)
    rows = re.findall(r"<tr><td class=\"l\">([^<]*)</td><td>([\d,]+)</td>", doc)
    labels = [r[0] for r in rows]
    busiest = sorted(rep.groups, key=lambda g: (-g.count, g.label))
    assert labels[:5] == [g.label for g in busiest[:5]]
    assert labels[5] == f"other ({len(rep.groups) - 5} groups)" and labels[6] == "all"
    counts = [int(r[1].replace(",", "")) for r in rows]
    assert sum(counts[:6]) == counts[6] == df.height  # the fold loses no request
    from qcore.report._html import shown_groups

    shown, other = shown_groups(rep, 5)
    assert other is not None and other.rate == sum(g.rate for g in busiest[5:])   # the core's rates, added
    assert sum(g.rate for g in shown) + other.rate == pytest.approx(rep.overall.rate, rel=1e-12)
    assert len(doc) < 300_000  # thousands of groups do not write thousands of rows
    with pytest.raises(InvalidArgumentError, match="top"):
        rep.to_html(top=0)


# ------------------------------------------------------------------ in the browser

@needs_chromium
def test_report_page_in_chromium(tmp_path):
    src = tmp_path / "log.parquet"
    df = log(40_000, 12)
    # one busy group of failures only has no latency CDF: the colours must not shift
    df = df.with_columns(pl.when(pl.col("session") == "2").then(503).otherwise(pl.col("status")).alias("status"))
    df.write_parquet(src)
    page = tmp_path / "report.html"
    code, _, err = qcore_cli("report", str(src), "-g", "session", "--html", str(page), "--top", "6")
    assert code == 0, err
    dom, probe = browse(page, tmp_path)
    # nothing wider than the window: no horizontal scroll, plots and tables inside it
    assert probe["scroll"] <= probe["width"] and probe["svg_right"] <= probe["width"]
    assert all(r <= probe["width"] for r in probe["tables"])
    plots = svgs(dom)
    assert set(plots) == {"plot-cdf", "plot-rate", "plot-latency", "plot-latency-groups", "plot-errors",
                          "plot-inflight", "plot-tokens-in", "plot-tokens-out", "plot-ttft", "plot-tpot",
                          "plot-burstiness", "plot-latency-group"}
    for name, svg in plots.items():  # every panel has data or says why not
        assert "<polyline" in svg or re.search(r'class="empty"[^>]*>[^<]{8,}<', svg), name
    # one colour per group across every plot
    seen: dict[str, str] = {}
    for svg in plots.values():
        for group, colour in series_colors(svg).items():
            assert seen.setdefault(group, colour) == colour, group
    groups = {g: c for g, c in seen.items() if g.startswith(("session=", "other ("))}
    assert len(set(groups.values())) == len(groups) >= 7   # a colour of its own for each group
    assert not set(groups.values()) & {seen[q] for q in ("p50", "p99", "p999")}  # and none a quantile's
    assert "session=2" in series_colors(plots["plot-rate"]) and "session=2" not in series_colors(plots["plot-cdf"])
    # absolute UTC dates: the header's range, the time axes' label and their ticks
    assert re.search(r"<dt>time range</dt><dd>2023-11-14 22:13:20 UTC to 2023-11-15 00:13:\d\d UTC", dom)
    for cls in ("plot-rate", "plot-latency", "plot-latency-groups", "plot-errors", "plot-inflight"):
        assert "time (UTC), from 2023-11-14 22:13" in plots[cls]
        ticks = re.findall(r'class="xtick"[^>]*>([^<]*)<', plots[cls])
        assert ticks and all(re.fullmatch(r"\d\d:\d\d", t) for t in ticks)
    assert "requests / s" in plots["plot-rate"] and "latency" in plots["plot-cdf"]
    # the arrival-rate peak marked on the plot, with its value and UTC time
    assert re.search(r'<g class="mark">.*?log peak [\d.,]+ req/s at \d\d:\d\d</text>', plots["plot-rate"])
    # a unit in every header of the table; the command and the files' hashes in the header
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", dom.split('id="summary"')[1].split("</thead>")[0])
    assert any("(req/s)" in h for h in heads) and all(re.search(r"\((ms|s|min|h|d|µs)\)", h)
                                                       for h in heads if re.match(r"p\d", h))
    assert "qcore report" in dom and "--top 6" in dom and "SHA-256" in dom
    assert "other (6 groups)" in dom
    # latency over time per group, with interval bands inside the plot
    # (every group with latencies; a group's windows are too small to bound its p99: no band)
    assert set(series_colors(plots["plot-latency-groups"])) == set(series_colors(plots["plot-cdf"]))
    assert 'class="band" data-name="p50"' in plots["plot-latency"]
    assert "(exact)" in plots["plot-inflight"]
    assert "no prompt token column" in plots["plot-tokens-in"] and "no TTFT" in plots["plot-ttft"]
    # hover values: the time in UTC, then every series' value with its unit
    tip = probe["hover"]["plot plot-latency"]
    assert tip and re.match(r"2023-11-1[45] \d\d:\d\d:\d\d UTC", tip), tip
    assert all(re.search(rf"{q}: [\d.,]+ (ms|s)\b", tip) for q in ("p50", "p99", "p999")), tip
    assert set(probe["hover"]) >= {"plot plot-rate", "plot plot-latency", "plot plot-inflight"}
    assert all(probe["hover"].values()), probe["hover"]


@needs_chromium
def test_llm_page_has_token_ttft_and_tpot_panels_with_hover_values(tmp_path):
    rng = np.random.default_rng(8)
    n = 20_000
    lat = rng.lognormal(1.0, 0.6, n)
    df = pl.DataFrame({"timestamp": np.sort(rng.uniform(1.7e9, 1.7e9 + 3600, n)), "latency_s": lat,
                       "ttft_s": lat * 0.1, "prompt_tokens": rng.integers(10, 4000, n),
                       "completion_tokens": rng.integers(2, 900, n), "model": rng.choice(["a", "b"], n)})
    page = tmp_path / "llm.html"
    rep = qrep.summarize(df, group_by=["model"], exact_limit=0, batch_rows=5_000)   # streamed: in-flight bounds
    rep.to_html(page)
    dom, probe = browse(page, tmp_path)
    plots = svgs(dom)
    for cls in ("plot-tokens-in", "plot-tokens-out", "plot-ttft", "plot-tpot"):
        assert "<polyline" in plots[cls], cls
    assert set(series_colors(plots["plot-tokens-out"])) == {"model=a", "model=b"}
    assert "(bounds)" in plots["plot-inflight"] and 'class="band"' in plots["plot-inflight"]
    assert re.search(r"p99: [\d.,]+ (ms|s)\b", probe["hover"]["plot plot-tpot"]), probe["hover"]
    assert re.search(r"model=a: [\d,]+ tokens/s", probe["hover"]["plot plot-tokens-in"]), probe["hover"]
    assert probe["scroll"] <= probe["width"]


@needs_chromium
def test_pages_say_why_a_panel_is_empty_and_read_a_relative_clock(tmp_path):
    df = log(5_000, 1, epoch=False, latency=False).drop("status")
    page = tmp_path / "nolat.html"
    qrep.summarize(df).to_html(page)
    dom, probe = browse(page, tmp_path)
    plots = svgs(dom)
    assert "no latency: the log has no duration or end column" in plots["plot-cdf"]
    assert "no latency: the log has no duration or end column" in plots["plot-latency"]
    assert "in-flight needs a latency or end column" in plots["plot-inflight"]
    assert "<polyline" in plots["plot-rate"] and "time since the first request" in plots["plot-rate"]
    assert "the log has no status or error column" in plots["plot-errors"]
    assert "on the log&#x27;s own clock" in dom or "on the log's own clock" in dom
    assert probe["scroll"] <= probe["width"]


@needs_chromium
def test_decision_page_matches_the_json_decisions(tmp_path):
    src = tmp_path / "log.csv"
    log(20_000, 4, seed=3).write_csv(src)
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[defaults]\nowner = "sre"\nversion = "2"\n'
        '[[rule]]\nid = "p99"\nmetric = "p99"\nthreshold = 0.5\ngroup_by = ["session"]\n'
        '[[rule]]\nid = "errors"\nmetric = "error_rate"\nthreshold = 0.02\n'
        '[[rule]]\nid = "rate"\nmetric = "arrival_rate"\nthreshold = 100.0\n')
    page = tmp_path / "check.html"
    code, out, err = qcore_cli("check", str(src), "--rules", str(rules), "--now", "1700007300", "--html", str(page),
                               "--format", "json")
    doc = strict(out)
    assert code == doc["exit_code"] and doc["html"] == str(page), err
    dom, probe = browse(page, tmp_path)
    assert probe["scroll"] <= probe["width"]
    rows = re.findall(r'<tr class="decision" data-rule="([^"]*)">(.*?)</tr>', dom, flags=re.S)
    assert len(rows) == len(doc["decisions"]) > 3
    for (rule, cells), d in zip(rows, doc["decisions"], strict=True):
        tds = re.findall(r"<td[^>]*>(.*?)</td>", cells, flags=re.S)
        assert rule == tds[0] == d["rule_id"] and tds[3] == d["group"]
        assert tds[9] == d["status"] and tds[10] == d["action"]  # colour-coded cells
        assert f'class="l s-{d["status"]}"' in cells and f'class="l a-{d["action"]}"' in cells
        assert re.search(r'href="#ev-\d+"', tds[12])
    assert f'id="overall">{doc["overall_action"]}<' in dom
    # every evidence record is in the page, in full
    records = re.findall(r'<pre id="ev-\d+">(.*?)</pre>', dom, flags=re.S)
    assert len(records) == len(rows)
    first = json.loads(records[0].replace("&quot;", '"'))
    assert first["rule"]["id"] == doc["decisions"][0]["rule_id"]


def test_decision_page_from_python_and_its_errors(tmp_path):
    df = log(3_000, 2, seed=4)
    d = qr.evaluate(df, [{"id": "e", "version": "1", "owner": "sre", "metric": "error_rate", "threshold": 0.5}],
                    now=1.7e9 + 7300)
    out = tmp_path / "d.html"
    html = decisions_html(d, out, command="python job.py")
    assert out.read_text(encoding="utf-8") == html and "python job.py" in html and "2023-11-14" in html
    with pytest.raises(InvalidArgumentError, match="decision table"):
        decisions_html(pl.DataFrame({"x": [1]}))


def test_the_readme_links_the_pages_of_every_trace_the_script_makes():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\(docs/pages/([\w.-]+\.png)\)", readme)
    script = (root / "docs" / "pages" / "make_pages.py").read_text(encoding="utf-8")
    traces = re.findall(r'^    "([\w.-]+)": \(', script, flags=re.M)
    assert len(traces) == 5 and {f"{t}.png" for t in traces} <= set(linked)
    for name in linked:
        assert (root / "docs" / "pages" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
