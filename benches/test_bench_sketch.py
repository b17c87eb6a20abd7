"""QuantileSketch against the anchors, on the same data in one run.

Run (all figures of benches/results/sketch.md):

    pytest benches/test_bench_sketch.py --benchmark-only -s \
        --benchmark-columns=min,median,mean,rounds --benchmark-sort=name

Sizes: QCORE_BENCH_N values (default 10_000_000, lognormal(0, 1), seed 42); anchors
without a batch API (ddsketch, hdrhistogram) ingest a QCORE_BENCH_SAMPLE sample (default
200_000) through their per-value Python API and are reported per value. Each ingest
benchmark stores its throughput in ``extra_info["Mvalues_per_s"]``; serialization
benchmarks store ``bytes``; the accuracy test prints the bimodal errors.
"""

from __future__ import annotations

import base64
import os
import time

import numpy as np
import polars as pl
import pytest

import qcore
from qcore._qcore import _group_quantiles

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

N = int(os.environ.get("QCORE_BENCH_N", 10_000_000))
SAMPLE = int(os.environ.get("QCORE_BENCH_SAMPLE", 200_000))
PARTS = 100

ds = pytest.importorskip("datasketches")
fastdigest = pytest.importorskip("fastdigest")
ddsketch = pytest.importorskip("ddsketch")
hdrh = pytest.importorskip("hdrh.histogram")


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    return np.random.default_rng(42).lognormal(0.0, 1.0, N)


@pytest.fixture(scope="module")
def sample(values: np.ndarray) -> np.ndarray:
    return values[:SAMPLE].copy()


def bimodal(n: int) -> np.ndarray:
    """98.95 % fast requests around 10 ms, 1.05 % slow ones around 2 s: p99 sits at the
    top of the fast mode, 0.05 % in rank below the gap."""
    rng = np.random.default_rng(7)
    slow = rng.random(n) < 0.0105
    fast = rng.lognormal(np.log(0.010), 0.25, n)
    slow_v = rng.lognormal(np.log(2.0), 0.25, n)
    return np.where(slow, slow_v, fast)


def _rate(benchmark, n: int) -> None:
    benchmark.extra_info["values"] = n
    benchmark.extra_info["Mvalues_per_s"] = round(n / benchmark.stats.stats.min / 1e6, 2)


# ---------------------------------------------------------------------------- ingest


def test_ingest_qcore(benchmark, values):
    def run():
        sk = qcore.QuantileSketch(0.01)
        sk.add(values)
        return sk

    sk = benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    assert sk.count == N
    _rate(benchmark, N)


def test_ingest_kll(benchmark, values):
    def run():
        k = ds.kll_doubles_sketch(200)
        k.update(values)
        return k

    benchmark.pedantic(run, rounds=3, iterations=1)
    _rate(benchmark, N)


def test_ingest_req(benchmark, values):
    v32 = values.astype(np.float32)

    def run():
        r = ds.req_floats_sketch(12)
        r.update(v32)
        return r

    benchmark.pedantic(run, rounds=3, iterations=1)
    _rate(benchmark, N)


def test_ingest_fastdigest(benchmark, values):
    benchmark.pedantic(lambda: fastdigest.TDigest.from_values(values), rounds=3, iterations=1)
    _rate(benchmark, N)


def test_ingest_ddsketch_per_value(benchmark, sample):
    lst = sample.tolist()

    def run():
        d = ddsketch.DDSketch(0.01)
        for v in lst:
            d.add(v)
        return d

    benchmark.pedantic(run, rounds=3, iterations=1)
    _rate(benchmark, len(lst))


def test_ingest_hdrhistogram_per_value(benchmark, sample):
    ints = (sample * 1e6).astype(np.int64).tolist()  # microseconds

    def run():
        h = hdrh.HdrHistogram(1, 10**12, 2)
        for v in ints:
            h.record_value(v)
        return h

    benchmark.pedantic(run, rounds=3, iterations=1)
    _rate(benchmark, len(ints))


def test_baseline_numpy_sum(benchmark, values):
    benchmark.pedantic(lambda: np.sum(values), rounds=10, iterations=1)
    _rate(benchmark, N)


def test_baseline_numpy_quantile_p99(benchmark, values):
    benchmark.pedantic(lambda: np.quantile(values, 0.99, method="lower"), rounds=5, iterations=1)
    _rate(benchmark, N)


def test_baseline_polars_quantile_p99(benchmark, values):
    s = pl.Series(values)
    benchmark.pedantic(lambda: s.quantile(0.99), rounds=7, iterations=1, warmup_rounds=1)
    _rate(benchmark, N)


# -------------------------------------------------------- ingest side by side (one run)
#
# Each round runs every contender once on the same array, interleaved, so that the
# load of a shared machine hits them alike; the table gives min and median per
# contender and the ratios the targets are stated in. Nothing here asserts a time.

REAL_CSV = os.path.join(
    os.path.dirname(__file__), "..", "python", "qcore", "data", "gentd26_lora_2024-12-03.csv"
)
ROUNDS = int(os.environ.get("QCORE_BENCH_ROUNDS", 9))


@pytest.fixture(scope="module")
def real_values() -> np.ndarray:
    """The GenTD26 LoRA ``exec_time_seconds`` column (whole seconds, 5 % zeros),
    repeated to N values."""
    col = pl.read_csv(REAL_CSV, columns=["exec_time_seconds"])["exec_time_seconds"]
    base = col.drop_nulls().cast(pl.Float64).to_numpy()
    return np.resize(base, N)


def _side_by_side(benchmark, contenders: dict, rounds: int = ROUNDS) -> dict:
    times: dict[str, list[float]] = {k: [] for k in contenders}

    def one_round() -> None:
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)

    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=1)
    return {k: (min(v), float(np.median(v))) for k, v in times.items()}


def _print_table(title: str, res: dict, n: int, ref: str) -> None:
    print(f"\n{title} (n={n}, {ROUNDS} interleaved rounds)")
    print(
        "| contender | min ms | median ms | M values/s (min) | time / " + ref + " (min, median) |"
    )
    print("|---|---|---|---|---|")
    for k, (mn, med) in res.items():
        r0, r1 = res[ref]
        print(
            f"| {k} | {mn * 1e3:.2f} | {med * 1e3:.2f} | {n / mn / 1e6:.0f} | "
            f"{mn / r0:.2f}, {med / r1:.2f} |"
        )


@pytest.mark.parametrize("data", ["lognormal", "real"])
def test_ingest_side_by_side(benchmark, data, values, real_values):
    x = values if data == "lognormal" else real_values
    sk_ref = qcore.QuantileSketch(0.01)
    sk_ref.add(x)
    assert sk_ref.count == N and sk_ref.sum == float(np.sum(x, dtype=np.longdouble))

    def qc() -> None:
        qcore.QuantileSketch(0.01).add(x)

    def kll() -> None:
        ds.kll_doubles_sketch(200).update(x)

    s = pl.Series(x)
    res = _side_by_side(
        benchmark,
        {
            "qcore QuantileSketch.add": qc,
            "numpy.sum": lambda: np.sum(x),
            "datasketches KLL k=200": kll,
            "polars exact p99": lambda: s.quantile(0.99),
        },
    )
    _print_table(f"ingest, {data}", res, N, "numpy.sum")
    q = res["qcore QuantileSketch.add"][0]
    benchmark.extra_info.update(
        Mvalues_per_s=round(N / q / 1e6, 1),
        vs_numpy_sum=round(q / res["numpy.sum"][0], 2),
        kll_over_qcore=round(res["datasketches KLL k=200"][0] / q, 1),
    )


@pytest.mark.parametrize("groups", [1, 16, 10_000])
@pytest.mark.parametrize("order", ["random", "sorted"])
def test_groups_side_by_side(benchmark, groups, order, values):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, groups, N)
    x = values
    if order == "sorted":
        idx = np.argsort(codes, kind="stable")
        codes, x = codes[idx], x[idx]
    qs = np.array([0.5, 0.99, 0.999])
    gs = qcore.sketch_groups(codes, x)
    assert len(gs) == groups and sum(g.count for g in gs) == N

    res = _side_by_side(
        benchmark,
        {
            "single sketch": lambda: qcore.QuantileSketch(0.01).add(x),
            "sketch_groups": lambda: qcore.sketch_groups(codes, x),
            "group quantiles kernel": lambda: _group_quantiles(codes, x, None, qs, 0.01, None),
            "numpy.sum": lambda: np.sum(x),
        },
    )
    _print_table(f"groups={groups}, codes {order}", res, N, "single sketch")
    one = res["single sketch"][0]
    benchmark.extra_info.update(
        sketch_groups_vs_single=round(one / res["sketch_groups"][0], 2),
        group_quantiles_vs_single=round(one / res["group quantiles kernel"][0], 2),
    )


SMALL_CALLS = int(os.environ.get("QCORE_BENCH_SMALL_CALLS", 20_000))


@pytest.mark.parametrize("batch", [1, 10, 1000])
def test_small_batches_side_by_side(benchmark, batch, values):
    """Per call of ``add`` with `batch` values (a numpy array; a float for 1) against
    ddsketch's ``add`` and datasketches KLL's ``update`` called once per value."""
    calls = max(SMALL_CALLS // batch, 20) if batch > 1 else SMALL_CALLS
    arrays = [values[k * batch : (k + 1) * batch].copy() for k in range(calls)]
    floats = values[:calls].tolist()
    per_value = values[: calls * batch].tolist()

    def qc() -> None:
        sk = qcore.QuantileSketch(0.01)
        if batch == 1:
            for v in floats:
                sk.add(v)
        else:
            for a in arrays:
                sk.add(a)

    def qc_raw() -> None:
        # The extension entry points, without the Python-side conversion of `add`.
        sk = qcore.QuantileSketch(0.01)
        if batch == 1:
            for v in floats:
                sk._add_float(v)
        else:
            for a in arrays:
                sk._add_array(a)

    def dd() -> None:
        d = ddsketch.DDSketch(0.01)
        for v in per_value:
            d.add(v)

    def kll() -> None:
        k = ds.kll_doubles_sketch(200)
        for v in per_value:
            k.update(v)

    res = _side_by_side(
        benchmark,
        {
            "qcore add (per call)": qc,
            "qcore _add_array / _add_float (per call)": qc_raw,
            "ddsketch add (per value)": dd,
            "datasketches KLL update (per value)": kll,
        },
        rounds=5,
    )
    n = calls * batch
    print(f"\nsmall batches: {batch} values per qcore call, {calls} calls")
    print("| contender | ns per qcore call (min) | ns per value (min) |")
    print("|---|---|---|")
    for k, (mn, _) in res.items():
        print(f"| {k} | {mn / calls * 1e9:.0f} | {mn / n * 1e9:.1f} |")
    benchmark.extra_info["ns_per_call"] = round(res["qcore add (per call)"][0] / calls * 1e9, 1)


# ----------------------------------------------------------------------------- merge


@pytest.fixture(scope="module")
def parts(values):
    out = []
    for p in np.array_split(values, PARTS):
        sk = qcore.QuantileSketch(0.01)
        sk.add(p)
        out.append(sk)
    return out


def test_merge_100_qcore(benchmark, parts, values):
    merged = benchmark(qcore.QuantileSketch.merge_all, parts)
    whole = qcore.QuantileSketch(0.01)
    whole.add(values)
    assert merged.to_bytes() == whole.to_bytes()
    benchmark.extra_info["sketches"] = PARTS
    benchmark.extra_info["ms_total"] = round(benchmark.stats.stats.min * 1e3, 4)


def test_merge_100_kll(benchmark, values):
    ks = []
    for p in np.array_split(values, PARTS):
        k = ds.kll_doubles_sketch(200)
        k.update(p)
        ks.append(k)

    def run():
        acc = ds.kll_doubles_sketch(200)
        for k in ks:
            acc.merge(k)
        return acc

    benchmark(run)
    benchmark.extra_info["ms_total"] = round(benchmark.stats.stats.min * 1e3, 4)


def test_merge_100_fastdigest(benchmark, values):
    ts = [fastdigest.TDigest.from_values(p) for p in np.array_split(values, PARTS)]

    def run():
        acc = ts[0].copy()
        for t in ts[1:]:
            acc.merge_inplace(t)
        return acc

    benchmark(run)
    benchmark.extra_info["ms_total"] = round(benchmark.stats.stats.min * 1e3, 4)


# ------------------------------------------------------------------------- serialize


@pytest.fixture(scope="module")
def full(values):
    sk = qcore.QuantileSketch(0.01)
    sk.add(values)
    return sk


def test_serialize_qcore(benchmark, full):
    data = benchmark(full.to_bytes)
    benchmark.extra_info["bytes"] = len(data)


def test_deserialize_qcore(benchmark, full):
    data = full.to_bytes()
    back = benchmark(qcore.QuantileSketch.from_bytes, data)
    assert back == full
    benchmark.extra_info["bytes"] = len(data)


def _hdr_lowest_equivalent(ints: np.ndarray) -> np.ndarray:
    """HdrHistogram's lowest equivalent value at 2 significant digits (256 sub-buckets:
    values below 256 are exact, larger ones keep their top 8 bits)."""
    msb = np.frexp(ints.astype(np.float64))[1] - 1  # exact for integers < 2^53
    shift = np.maximum(msb - 7, 0)
    return (ints >> shift) << shift


def _hdr_from_array(ints: np.ndarray):
    h = hdrh.HdrHistogram(1, 10**12, 2)
    uniq, cnt = np.unique(_hdr_lowest_equivalent(ints), return_counts=True)
    for v, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
        h.record_value(v, c)
    return h


def test_serialize_hdrhistogram(benchmark, values, sample):
    # All values (microseconds) recorded through their lowest equivalent values, which is
    # the same histogram as recording each value (checked on the sample).
    small = np.maximum((sample * 1e6).astype(np.int64), 1)
    per_value = hdrh.HdrHistogram(1, 10**12, 2)
    for v in small.tolist():
        per_value.record_value(v)
    assert _hdr_from_array(small).encode() == per_value.encode()
    h = _hdr_from_array(np.maximum((values * 1e6).astype(np.int64), 1))
    assert h.get_total_count() == N
    enc = benchmark(h.encode)
    benchmark.extra_info["bytes"] = len(base64.b64decode(enc))


def test_serialize_kll(benchmark, values):
    k = ds.kll_doubles_sketch(200)
    k.update(values)
    data = benchmark(k.serialize)
    benchmark.extra_info["bytes"] = len(data)


def test_serialize_fastdigest(benchmark, values):
    t = fastdigest.TDigest.from_values(values)
    data = benchmark(t.to_bytes)
    benchmark.extra_info["bytes"] = len(data)


# -------------------------------------------------------------------------- quantile


def test_quantile_qcore(benchmark, full):
    benchmark(full.quantile, 0.99)


def test_quantiles3_qcore(benchmark, full):
    benchmark(full.quantile, [0.5, 0.99, 0.999])


def test_quantile_kll(benchmark, values):
    k = ds.kll_doubles_sketch(200)
    k.update(values)
    benchmark(k.get_quantile, 0.99)


def test_quantile_fastdigest(benchmark, values):
    t = fastdigest.TDigest.from_values(values)
    benchmark(t.quantile, 0.99)


# -------------------------------------------------------------------------- accuracy


def test_accuracy_bimodal():
    """p99/p999 relative errors on the bimodal workload (not timed)."""
    x = bimodal(N)
    qs = [0.5, 0.99, 0.999]
    true = np.quantile(x, qs, method="lower")
    sk = qcore.QuantileSketch(0.01)
    sk.add(x)
    kll = ds.kll_doubles_sketch(200)
    kll.update(x)
    req = ds.req_floats_sketch(12)
    req.update(x.astype(np.float32))
    td = fastdigest.TDigest.from_values(x)
    s = x[:SAMPLE]
    strue = np.quantile(s, qs, method="lower")
    dd = ddsketch.DDSketch(0.01)
    for v in s.tolist():
        dd.add(v)
    h = hdrh.HdrHistogram(1, 10**12, 2)
    for v in np.maximum((s * 1e6).astype(np.int64), 1).tolist():
        h.record_value(v)
    rows = {
        "qcore": (sk.quantile(qs), true),
        "kll k=200": (np.array([kll.get_quantile(q) for q in qs]), true),
        "req k=12": (np.array([req.get_quantile(q) for q in qs]), true),
        "fastdigest": (np.array([td.quantile(q) for q in qs]), true),
        f"ddsketch (sample {SAMPLE})": (np.array([dd.get_quantile_value(q) for q in qs]), strue),
        f"hdrhistogram 2 digits (sample {SAMPLE})": (
            np.array([h.get_value_at_percentile(q * 100) / 1e6 for q in qs]),
            strue,
        ),
    }
    print(f"\nbimodal n={N}: true p50/p99/p999 = {true}")
    print("| sketch | p50 rel. error | p99 rel. error | p999 rel. error |")
    print("|---|---|---|---|")
    for name, (est, t) in rows.items():
        rel = np.abs(est - t) / np.abs(t)
        print(f"| {name} | " + " | ".join(f"{r:.2%}" for r in rel) + " |")
    rel = np.abs(sk.quantile(qs) - true) / true
    assert np.all(rel <= sk.effective_relative_accuracy)
