"""The report's series over time against independent truth: the exact peak in flight of
each window (a slow sweep of the step function), its bounds when the log is read in
batches, the latency / TTFT / TPOT sketches of each plot window per group (independent
sketches of the same rows), their intervals, and the tokens per window (polars sums)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qcore
from qcore import logs as qlogs
from qcore.exceptions import InvalidArgumentError
from qcore.report import summarize
from qcore.report._html import _other
from qcore.report._stream import GROUP_TIMELINES_MAX


def _slow_peaks(start: np.ndarray, end: np.ndarray, t0: float, width: float, n: int) -> list[int]:
    """Each window's peak from the definition: the in-flight count (start <= t < end) at
    the window's start and at every start inside it, the largest of them."""
    out = []
    for k in range(n):
        a, b = t0 + k * width, t0 + (k + 1) * width
        at = np.concatenate([[a], start[(start >= a) & (start < b)]])
        out.append(int(qcore.in_flight(start, end, at=at).max()))
    return out


_times = st.lists(st.tuples(st.floats(0.0, 50.0), st.one_of(st.floats(0.0, 20.0), st.just(np.nan))),
                  min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(rows=_times, width=st.sampled_from([0.5, 1.0, 3.0, 7.25]), t0=st.sampled_from([-2.0, 0.0, 10.0]))
def test_in_flight_peaks_are_the_step_functions_maximum(rows, width, t0):
    start = np.array([r[0] for r in rows])
    end = start + np.array([r[1] for r in rows])      # NaN: still running
    n = int(np.ceil((75.0 - t0) / width))
    got = qcore.in_flight_peaks(start, end, t0=t0, width=width, n=n)
    assert got.tolist() == _slow_peaks(start, end, t0, width, n)
    # windows covering the log reach the log's peak, and no edge sample exceeds them
    if t0 <= start.min():
        assert got.max() == qcore.peak_in_flight(start, end).peak
    edges = qcore.in_flight(start, end, at=t0 + width * np.arange(n))
    assert (edges <= got).all()


def test_in_flight_peaks_catch_a_burst_between_the_edges_and_refuse_bad_windows():
    start = np.array([0.2, 0.3, 0.4, 1.5])
    end = np.array([0.6, 0.7, 0.8, 1.6])
    assert qcore.in_flight_peaks(start, end, t0=0.0, width=1.0, n=2).tolist() == [3, 1]
    assert qcore.in_flight(start, end, at=[0.0, 1.0]).tolist() == [0, 0]   # the edges see nothing
    for kw, name in (({"width": 0.0}, "width"), ({"width": float("nan")}, "width"), ({"t0": float("inf")}, "t0"),
                     ({"n": -1}, "n")):
        args: dict[str, Any] = {"t0": 0.0, "width": 1.0, "n": 2, **kw}
        with pytest.raises(InvalidArgumentError, match=name):
            qcore.in_flight_peaks(start, end, **args)


def _llm_log(n: int, groups: int, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(1.7e9, 1.7e9 + 1800.0, n))
    lat = rng.lognormal(0.5, 0.7, n)
    out = rng.integers(1, 600, n)
    return pl.DataFrame({"timestamp": t, "latency_s": lat, "ttft_s": lat * rng.uniform(0.05, 0.4, n),
                         "prompt_tokens": rng.integers(1, 3000, n), "completion_tokens": out,
                         "status": np.where(rng.random(n) < 0.04, 500, 200),
                         "model": rng.choice([f"m{i}" for i in range(groups)], n)})


@pytest.fixture(scope="module")
def llm() -> tuple[pl.DataFrame, Any, Any]:
    df = _llm_log(30_000, 4)
    exact = summarize(df, group_by=["model"], progress=False)
    batched = summarize(df, group_by=["model"], progress=False, exact_limit=0, batch_rows=4_000)
    return df, exact, batched


def _canonical(df: pl.DataFrame) -> pl.DataFrame:
    """The log's rows in canonical columns, through the one normalisation of qcore.logs."""
    return qlogs.normalize(df, qlogs.detect_columns(df.schema, sample=df), keep=["model"]).collect()


def test_exact_peaks_in_flight_and_the_bounds_of_a_batched_read(llm):
    df, exact, batched = llm
    can = _canonical(df).filter(pl.col("outcome") != "incomplete")
    for ge, gb in zip([*exact.groups, exact.overall], [*batched.groups, batched.overall], strict=True):
        rows = can if not ge.key else can.filter(pl.col("model") == ge.key["model"])
        s, e = rows["start"].to_numpy(), rows["end"].to_numpy()
        n = ge.inflight.size
        assert ge.peak_exact and ge.inflight_peak_lo.tolist() == _slow_peaks(s, e, exact.t0, exact.bin, n)
        assert np.array_equal(ge.inflight_peak_lo, ge.inflight_peak_hi)
        assert ge.inflight_peak_lo.max() == ge.peak_concurrency
        # read in batches without the rows: bounds around the exact peaks, the lower one a value taken
        assert not gb.peak_exact
        assert (gb.inflight_peak_lo <= ge.inflight_peak_lo).all() and (ge.inflight_peak_lo <= gb.inflight_peak_hi).all()
        assert np.array_equal(gb.inflight_peak_lo, gb.inflight.astype(np.int64))
        assert (gb.inflight_peak_hi > gb.inflight_peak_lo).any()
        # per plot window: the largest of its windows' peaks
        rows_pw = ge.over_time["in_flight"]
        k = round((rows_pw[0]["end"] - rows_pw[0]["start"]) / exact.bin)
        assert [r["peak_lo"] for r in rows_pw] == [int(ge.inflight_peak_lo[j:j + k].max())
                                                 for j in range(0, n, k)]


def _truth(values: np.ndarray) -> Any:
    sk = qcore.QuantileSketch(relative_accuracy=0.01)
    sk.add(values)
    return sk


@pytest.mark.parametrize("measure", ["latency", "ttft", "tpot"])
def test_each_groups_quantiles_per_window_are_the_sketch_of_its_rows(llm, measure):
    df, exact, batched = llm
    can = _canonical(df).filter(pl.col("outcome") == "ok")
    for g in [*exact.groups, exact.overall]:
        rows = can if not g.key else can.filter(pl.col("model") == g.key["model"])
        series = g.over_time[measure]
        assert series and series == ([b for b in batched.groups if b.label == g.label][0].over_time[measure]
                                     if g.key else batched.overall.over_time[measure])
        vals = rows.filter(pl.col(measure).is_finite())
        assert sum(r["count"] for r in series) == vals.height
        t = vals["start"].to_numpy()
        for r in series:
            truth = _truth(vals.filter((t >= r["start"]) & (t < r["end"]))[measure].to_numpy())
            assert r["count"] == truth.count
            for q in (0.5, 0.99, 0.999):
                tag = f"p{q * 100:g}".replace(".", "")
                ci = qcore.sketch_quantile_ci(truth, q)
                assert (r[tag], r[tag + "_lo"], r[tag + "_hi"]) == (float(truth.quantile(q)), ci.lo, ci.hi)


def test_tokens_per_window_are_the_sums_of_the_arriving_requests(llm):
    df, exact, _ = llm
    width = exact.overall.over_time["tokens"][0]["end"] - exact.overall.over_time["tokens"][0]["start"]
    k = round(width / exact.bin)
    w = (np.floor((df["timestamp"].to_numpy() - exact.t0) / exact.bin).astype(np.int64) // k)
    truth = df.with_columns(w=pl.Series(w)).group_by("model", "w").agg(pl.col("prompt_tokens").sum(),
                                                                       pl.col("completion_tokens").sum())
    for g in exact.groups:
        rows = g.over_time["tokens"]
        mine = truth.filter(pl.col("model") == g.key["model"])
        for j, r in enumerate(rows):
            hit = mine.filter(pl.col("w") == j)
            want_in = int(hit["prompt_tokens"].sum()) if hit.height else 0
            want_out = int(hit["completion_tokens"].sum()) if hit.height else 0
            assert (r["tokens_in"], r["tokens_out"]) == (want_in, want_out)
            assert r["tokens_in_per_s"] == want_in / width
    assert sum(r["tokens_out"] for r in exact.overall.over_time["tokens"]) == int(df["completion_tokens"].sum())


def test_the_fold_of_the_rest_merges_their_windows(llm):
    _, exact, _ = llm
    rest = sorted(exact.groups, key=lambda g: (-g.count, g.label))[1:]
    other = _other(rest, exact.t1 - exact.t0)
    tl = copy.deepcopy(rest[0].timeline)
    for g in rest[1:]:
        tl.merge(g.timeline)
    assert other.over_time == tl.over_time() and other.over_time["latency"]
    assert sum(r["count"] for r in other.over_time["latency"]) == sum(g.sketch.count for g in rest)


def test_too_many_groups_keep_the_whole_logs_series_only_on_every_path(monkeypatch):
    from qcore.report import _stream as R

    df = _llm_log(4_000, GROUP_TIMELINES_MAX + 6, seed=9)
    seen: list[Any] = []
    real = R._summaries

    def spy(accs: Any, *a: Any, **k: Any) -> Any:
        seen.append(accs)
        return real(accs, *a, **k)

    monkeypatch.setattr(R, "_summaries", spy)
    for kw in ({}, {"exact_limit": 0, "batch_rows": 300}):
        rep = summarize(df, group_by=["model"], progress=False, **kw)
        assert len(rep.groups) > GROUP_TIMELINES_MAX
        assert not any(g.over_time for g in rep.groups) and rep.overall.over_time["latency"]
        assert f"kept for up to {GROUP_TIMELINES_MAX} groups" in rep.to_html()
        # without latencies too (tokens only): the groups' series are dropped the same way,
        # while the log is read (no group keeps per-window state past the limit)
        bare = summarize(df.drop("latency_s", "ttft_s"), group_by=["model"], progress=False, **kw)
        fold = seen[-1]
        assert fold.timeline.dropped and all(g.timeline is None for g in fold.accs.values())
        assert not any(g.over_time for g in bare.groups) and bare.overall.over_time["tokens"]
        assert sum(r["tokens_out"] for r in bare.overall.over_time["tokens"]) == int(df["completion_tokens"].sum())
    few = summarize(df.filter(pl.col("model").is_in(["m0", "m1"])), group_by=["model"], progress=False,
                    exact_limit=0, batch_rows=300)
    assert all(g.over_time["latency"] for g in few.groups)


def _growing(tmp: Any) -> str:
    """A log whose first half has 2 groups and second half more than GROUP_TIMELINES_MAX:
    parts of it keep their groups' timelines and others spill them into the log's."""
    df = _llm_log(6_000, 2, seed=12)
    late = np.arange(df.height) >= df.height // 2
    rng = np.random.default_rng(3)
    many = np.array([f"m{i}" for i in rng.integers(0, GROUP_TIMELINES_MAX + 20, df.height)])
    df = df.with_columns(model=pl.Series(np.where(late, many, df["model"].to_numpy())))
    for i, idx in enumerate(np.array_split(np.arange(df.height), 4)):
        df[idx].write_parquet(tmp / f"part-{i}.parquet", row_group_size=500)
    return str(tmp / "*.parquet")


@pytest.mark.parametrize("executor", ["batched", "dask"])
def test_the_logs_series_are_the_same_when_groups_spill_midway(request, tmp_path, executor):
    src = _growing(tmp_path)
    kw: dict[str, Any] = {"group_by": ["model"], "exact_limit": 0}
    memory = summarize(src, progress=False, **kw)
    if executor == "dask":
        request.getfixturevalue("client")
        from qcore.report_distributed import summarize as summarize_dask

        other = summarize_dask(src, task_rows=500, **kw)
    else:
        other = summarize(src, progress=False, batch_rows=700, **kw)
    assert len(memory.groups) > GROUP_TIMELINES_MAX and not any(g.over_time for g in other.groups)
    assert other.overall.over_time == memory.overall.over_time
    assert sum(r["count"] for r in memory.overall.over_time["latency"]) == memory.overall.sketch.count
    for m in ("latency", "ttft", "tpot"):
        assert {j: sk.to_bytes() for j, sk in other.overall.timeline.sketches[m].items()} == \
            {j: sk.to_bytes() for j, sk in memory.overall.timeline.sketches[m].items()}


def test_a_log_without_end_times_has_no_in_flight_series():
    df = _llm_log(2_000, 2).drop("latency_s", "ttft_s")
    for kw in ({}, {"exact_limit": 0, "batch_rows": 300}):
        rep = summarize(df, group_by=["model"], progress=False, **kw)
        for g in [*rep.groups, rep.overall]:
            assert g.inflight_peak_lo.size == g.inflight_peak_hi.size == 0
            assert g.over_time["in_flight"] == [] and g.over_time["tokens"]
