"""One plan, every executor, the same bytes.

The statistics of :mod:`qcore.pipeline` are the core's accumulators, so running a plan in
memory, over polars batches of 1, 7 or 1000 rows, or on a real two-process Dask
LocalCluster gives bit-identical accumulators (compared as their bytes) and results, equal
to the in-memory functions of :mod:`qcore` — on hypothesis-generated logs (sorted and
shuffled: the shuffled ones exercise the time-ordered second pass) and on a real trace.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import qcore
from qcore import pipeline as pp
from qcore.pipeline import analysis as oc

EXECUTORS = ["memory", "batched-1", "batched-7", "batched-1000", "dask"]


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def executor(kind: str, df: pl.DataFrame, request: pytest.FixtureRequest) -> pp.Executor:
    if kind == "memory":
        return pp.InMemory(df)
    if kind.startswith("batched-"):
        return pp.Batched(df, int(kind.split("-")[1]))
    request.getfixturevalue("dask_client")
    import dask.dataframe as dd

    return pp.Dask(dd.from_pandas(df.to_pandas(), npartitions=max(1, min(5, df.height // 3))), split_every=2)


def plan(window: float) -> dict[str, pp.Stat]:
    return {
        "arrivals": pp.Arrivals("t", window),
        "little": pp.Little("t", "end"),
        "counts": pp.WindowCounts("t", window),
        "groups": pp.GroupSketches(("model",), "lat"),
    }


def acc_bytes(accs: pp.Accs) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, a in accs.items():
        if hasattr(a, "to_bytes"):
            out[name] = a.to_bytes()
        elif hasattr(a, "sketches"):
            out[name] = {k: s.to_bytes() for k, s in a.sketches.items()}
        else:
            out[name] = a.c.tolist()
    return out


def exact(result: object) -> str:
    """A result's fields, every float as its shortest round-trip repr (NaN equal to NaN)."""
    return repr(result.as_dict())  # type: ignore[attr-defined]


def reference(df: pl.DataFrame, window: float) -> dict[str, object]:
    t, end = df["t"].to_numpy(), df["end"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    return {
        "arrivals": exact(qcore.arrival_stats(t, window=window)),
        "little": exact(qcore.littles_law(t, end)),
        "counts": qcore.window_counts(t, window).tolist(),
        "groups": qcore.group_quantiles(df, "model", "lat"),
    }


def check_all(df: pl.DataFrame, window: float, kinds: list[str], request: pytest.FixtureRequest) -> None:
    p = plan(window)
    ref = reference(df, window)
    base = None
    for kind in kinds:
        accs = pp.accumulate(p, executor(kind, df, request))
        got = acc_bytes(accs)
        if base is None:
            base = got
        assert got == base, kind
        res = {n: p[n].finish(a) for n, a in accs.items()}
        assert exact(res["arrivals"]) == ref["arrivals"], kind
        assert exact(res["little"]) == ref["little"], kind
        assert res["counts"].tolist() == ref["counts"], kind
        frame = pp.quantile_frame(res["groups"], ["model"], {"model": pl.String}, (0.5, 0.99, 0.999))
        assert_frame_equal(frame, ref["groups"])


@st.composite
def logs(draw: st.DrawFn) -> tuple[pl.DataFrame, float]:
    n = draw(st.integers(3, 60))
    gaps = draw(st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=n, max_size=n))
    t0 = draw(st.sampled_from([0.0, 1.7e9]))
    t = t0 + np.cumsum(gaps)
    if t[-1] <= t[0]:
        t[-1] = t[0] + 1.0
    lat = np.array(draw(st.lists(st.floats(0.0, 20.0, allow_nan=False), min_size=n, max_size=n)))
    end = t + lat
    kinds = draw(st.lists(st.sampled_from(["ok", "ok", "ok", "running", "skewed"]), min_size=n, max_size=n))
    end = np.where(np.array(kinds) == "running", np.nan, np.where(np.array(kinds) == "skewed", t - 0.5, end))
    models = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    df = pl.DataFrame({"t": t, "end": end, "lat": lat, "model": models})
    if draw(st.booleans()):  # shuffled: batches overlap in time
        df = df.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 2**31)))
    window = draw(st.sampled_from([0.5, 1.0, 3.7, 10.0]))
    return df, window


@pytest.mark.parametrize("kinds", [EXECUTORS[:4]])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=logs())
def test_local_executors_agree_bit_for_bit(case, kinds, request):
    df, window = case
    check_all(df, window, kinds, request)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=logs())
def test_dask_cluster_agrees_bit_for_bit(case, request):
    df, window = case
    check_all(df, window, ["memory", "dask"], request)


def test_real_trace_on_every_executor(shared_data, request):
    """Azure LLM inference trace (CC BY 4.0, Patel et al., ISCA 2024): arrival times with a
    context-token "latency" and a synthetic end (token count as milliseconds)."""
    path = shared_data / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    df = pl.read_csv(path).select(
        (pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S%.f").dt.epoch("us") / 1e6).alias("t"),
        pl.col("ContextTokens").cast(pl.Float64).alias("lat"),
    )
    df = df.with_columns(end=pl.col("t") + pl.col("lat") / 1000.0,
                         model=pl.when(pl.col("lat") > 1000).then(pl.lit("long")).otherwise(pl.lit("short")))
    check_all(df.head(2000), 1.0, ["memory", "batched-1", "batched-7", "batched-1000", "dask"], request)
    check_all(df, 1.0, ["memory", "batched-1000", "dask"], request)
    check_all(df.sample(fraction=1.0, shuffle=True, seed=1), 5.0, ["memory", "batched-1000"], request)


def poisson(n: int, rate: float, seed: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))


@pytest.mark.parametrize("n", [5_000, 50_000, 500_000])
@pytest.mark.parametrize("window", [0.5, 2.0, 10.0])
def test_poisson_dispersion_is_one(n, window):
    """Counts of a Poisson stream in k complete windows: var/mean has mean 1 and standard
    deviation √(2/(k−1)) (chi-square); 5 standard deviations leave a chance below 1e-6 of a
    false failure per case. Every executor gives the same value."""
    ts = poisson(n, 20.0, n + int(window * 10))
    s = qcore.arrival_stats(ts, window=window)
    k = s.windows
    assert k >= 20
    assert abs(s.index_of_dispersion - 1.0) < 5.0 * math.sqrt(2.0 / (k - 1)), (k, s.index_of_dispersion)
    # the exported definition gives the same number from the complete-window counts
    counts = qcore.window_counts(ts, window)[:k]
    w = qcore.window_count_stats(counts)
    assert w["index_of_dispersion"] == s.index_of_dispersion
    assert w["peak_to_mean"] == s.peak_to_mean
    df = pl.DataFrame({"t": ts})
    b = oc.arrival_stats(df, "t", window=window, batch_rows=max(1, n // 7)).value
    assert exact(b) == exact(s)


def test_accumulators_pickle_as_bytes():
    ts = poisson(1000, 1.0, 3)
    a = qcore.ArrivalAccumulator.of(ts, 2.0)
    b = pickle.loads(pickle.dumps(a))
    assert b.to_bytes() == a.to_bytes() and repr(b.finish()) == repr(a.finish())
    lit = qcore.LittleAccumulator()
    lit.update(ts, ts + 1.0)
    assert pickle.loads(pickle.dumps(lit)).to_bytes() == lit.to_bytes()
    e = qcore.ExactSum()
    e.update(np.array([1e300, 1.0, -1e300]))
    assert pickle.loads(pickle.dumps(e)).value == 1.0
    for cls in (qcore.ArrivalAccumulator, qcore.LittleAccumulator, qcore.ExactSum):
        with pytest.raises(qcore.exceptions.DeserializationError):
            cls.from_bytes(b"QA\x09\x01")
        with pytest.raises(ValueError):
            cls.from_bytes(a.to_bytes()[:-1] if cls is qcore.ArrivalAccumulator else b"")


def test_accumulator_errors_name_the_argument():
    a = qcore.ArrivalAccumulator()
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="timestamps contains NaN at index 1"):
        a.update(np.array([0.0, np.nan]))
    a.update(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="window must be a positive finite"):
        a.advance(0.0)
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="pass"):
        a.finish()
    b = a.copy()
    b.advance(1.0)
    with pytest.raises(qcore.exceptions.IncompatibleSketchError):
        a.merge(b)
    lit = qcore.LittleAccumulator()
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="end contains inf"):
        lit.update(np.array([0.0]), np.array([np.inf]))
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="start is empty"):
        lit.advance()
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="counts contains a negative"):
        qcore.window_count_stats(np.array([1, -2], dtype=np.int64))


def test_thread_budget(monkeypatch):
    before = qcore.threads()
    assert before >= 1
    ts = poisson(2_000_000, 1.0, 9)
    s, e = ts, ts + 0.5
    try:
        qcore.set_threads(1)
        assert qcore.threads() == 1
        a1, l1 = qcore.arrival_stats(ts).as_dict(), qcore.littles_law(s, e)
        qcore.set_threads(4)
        a4, l4 = qcore.arrival_stats(ts).as_dict(), qcore.littles_law(s, e)
    finally:
        qcore.set_threads(None)
    assert qcore.threads() == before
    assert a1 == a4 and exact(l1) == exact(l4)  # the budget changes the speed only
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="threads must be at least 1"):
        qcore.set_threads(0)


def test_thread_budget_from_the_environment(tmp_path):
    import subprocess
    import sys

    code = "import qcore; print(qcore.threads())"
    out = subprocess.run([sys.executable, "-c", code], env={"QCORE_MAX_THREADS": "3", "PATH": ""},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"
    bad = subprocess.run([sys.executable, "-c", code], env={"QCORE_MAX_THREADS": "zero", "PATH": ""},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "QCORE_MAX_THREADS must be a positive integer" in bad.stderr


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 3_000), max_size=6), seed=st.integers(0, 3))
def test_accumulator_parts_merge_to_the_whole_for_any_cut(cuts, seed):
    """Cutting the rows anywhere and merging the parts' accumulators (in any order for
    Little's law; in time order for the gaps) gives the bytes of one accumulator over all
    rows, and the in-memory results."""
    rng = np.random.default_rng(seed)
    s = 1.7e9 + np.sort(rng.uniform(0.0, 600.0, 3_000))
    e = s + rng.lognormal(-2.0, 1.0, s.size)
    e[rng.choice(s.size, 20, replace=False)] = np.nan
    e[rng.choice(s.size, 10, replace=False)] -= 5.0
    bounds = [0, *sorted(cuts), s.size]
    pieces = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    times = 1.7e9 + np.arange(5.0, 600.0, 10.0)
    counts = qcore.in_flight(s, e, times).astype(np.float64)

    def fold(new, update, advance, order):
        p1 = new()
        for p in pieces:
            part = new()
            update(part, p)
            p1.merge(part)
        advance(p1)
        acc = p1.copy()
        for p in order(pieces):
            part = p1.copy()
            update(part, p)
            acc.merge(part)
        return acc

    arr = fold(qcore.ArrivalAccumulator, lambda a, p: a.update(s[p]), lambda a: a.advance(1.0), lambda x: x)
    assert arr.to_bytes() == qcore.ArrivalAccumulator.of(s, 1.0).to_bytes()
    assert exact(qcore.ArrivalStats(**arr.finish())) == exact(qcore.arrival_stats(s))
    lit = fold(qcore.LittleAccumulator, lambda a, p: a.update(s[p], e[p]),
               lambda a: a.advance(1.7e9 + 50.0, 1.7e9 + 400.0, times, counts), lambda x: x[::-1])
    ref = qcore.littles_law(s, e, 1.7e9 + 50.0, 1.7e9 + 400.0, in_flight_times=times, in_flight_counts=counts,
                            confidence=0.9)
    assert exact(qcore.little._little_result(lit.finish(0.02, 0.9))) == exact(ref)


def test_overlapping_runs_are_flagged_and_fed_again_in_time_order():
    a = qcore.ArrivalAccumulator()
    a.update(np.array([0.0, 1.0, 2.0, 1.5, 3.0]))
    a.advance(1.0)
    x, y = a.copy(), a.copy()
    x.update(np.array([0.0, 1.0, 2.0]))
    y.update(np.array([1.5, 3.0]))
    x.merge(y)
    assert not x.in_time_order
    with pytest.raises(qcore.exceptions.InvalidArgumentError, match="overlap in time"):
        x.finish()
    # touching runs are in time order, whichever comes first
    b = qcore.ArrivalAccumulator()
    b.update(np.array([0.0, 2.0, 2.0, 3.0]))
    b.advance(1.0)
    u, v = b.copy(), b.copy()
    u.update(np.array([2.0, 3.0]))
    v.update(np.array([0.0, 2.0]))
    u.merge(v)
    assert u.in_time_order and u.to_bytes() == qcore.ArrivalAccumulator.of(np.array([0.0, 2.0, 2.0, 3.0]), 1.0).to_bytes()
    # the batched executor sorts overlapping batches externally: same result
    ts = poisson(5_000, 3.0, 1)
    df = pl.DataFrame({"t": ts}).sample(fraction=1.0, shuffle=True, seed=2)
    got = oc.arrival_stats(df, "t", window=1.0, batch_rows=333).value
    assert exact(got) == exact(qcore.arrival_stats(ts))
