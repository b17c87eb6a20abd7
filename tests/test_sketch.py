"""QuantileSketch: the Python boundary (dtypes, polars, errors, pickling) and accuracy
against exact numpy lower order statistics."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import polars as pl
import pytest

import qcore
from qcore import QuantileSketch, group_quantiles, sketch_groups
from qcore.exceptions import DeserializationError, IncompatibleSketchError

QS = [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0]


def lower(values: np.ndarray, q) -> np.ndarray:
    return np.quantile(values, q, method="lower")


def assert_guarantee(sk: QuantileSketch, values: np.ndarray, qs=QS) -> None:
    est = sk.quantile(qs)
    true = lower(values, qs)
    err = np.abs(est - true)
    bound = sk.relative_accuracy * np.abs(true)
    bad = err > bound
    assert not bad.any(), f"q={np.asarray(qs)[bad]} est={est[bad]} true={true[bad]}"
    assert sk.quantile(0.0) == values.min()
    assert sk.quantile(1.0) == values.max()


def _datasets(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    n_hi = rng.binomial(n, 0.015)
    bimodal = np.concatenate([rng.normal(0.010, 0.001, n - n_hi), rng.normal(2.0, 0.3, n_hi)])
    rng.shuffle(bimodal)
    return {
        "lognormal": rng.lognormal(0.0, 1.0, n),
        "pareto": rng.pareto(1.5, n) + 1.0,
        "exponential": rng.exponential(1.0, n),
        "bimodal": np.abs(bimodal),
        "constant": np.full(n, 0.125),
        "mixed_sign": rng.normal(0.0, 10.0, n),
    }


@pytest.mark.parametrize("n", [1, 2, 10, 1_000_000])
def test_accuracy_matrix(n: int) -> None:
    rng = np.random.default_rng(n)
    for name, values in _datasets(rng, n).items():
        sk = QuantileSketch(0.01)
        sk.add(values)
        assert sk.count == n, name
        assert_guarantee(sk, values)
        assert not sk.collapsed


@pytest.mark.parametrize("alpha", [0.001, 0.02, 0.05, 0.2])
def test_accuracy_other_alphas(alpha: float) -> None:
    values = np.random.default_rng(7).lognormal(-3, 2, 20_000)
    sk = QuantileSketch(alpha)
    sk.add(values)
    assert sk.effective_relative_accuracy <= alpha
    assert_guarantee(sk, values, np.linspace(0, 1, 101))


def test_default_mapping_is_otel_scale_6() -> None:
    sk = QuantileSketch()
    assert sk.relative_accuracy == 0.01
    assert sk.scale == 6
    assert sk.effective_relative_accuracy == pytest.approx((2 ** (1 / 64) - 1) / (2 ** (1 / 64) + 1))
    assert sk.bucket_limit == 4096
    assert QuantileSketch(0.02).scale == 5


def test_exact_summaries() -> None:
    values = np.array([0.1, 0.2, 0.3, 1e16, -1e16, 2.5])
    sk = QuantileSketch()
    sk.add(values)
    assert sk.count == 6
    # Exact sum, rounded once (the float sum loses the small terms).
    assert sk.sum == 0.1 + 0.2 + 0.3 + 2.5 == 3.1
    assert np.sum(values) != sk.sum
    assert sk.min == -1e16 and sk.max == 1e16
    assert sk.mean == pytest.approx(3.1 / 6, rel=1e-15)


def test_empty_is_a_value() -> None:
    sk = QuantileSketch()
    assert sk.quantile(0.5) is None
    assert sk.quantile([0.5, 0.9]) is None
    assert sk.cdf(1.0) is None
    assert sk.min is None and sk.max is None and sk.mean is None
    assert sk.count == 0 and sk.sum == 0
    assert not sk
    sk.add([])
    assert sk.count == 0


@pytest.mark.parametrize(
    "dtype", [np.float64, np.float32, np.int64, np.int32, np.int8, np.uint16, np.uint64]
)
def test_dtypes(dtype) -> None:
    values = np.arange(1, 200).astype(dtype)
    sk = QuantileSketch()
    sk.add(values)
    ref = QuantileSketch()
    ref.add(values.astype(np.float64))
    assert sk == ref
    assert sk.sum == float(np.sum(values.astype(np.float64)))


def test_float32_values_are_exact_as_floats() -> None:
    v = np.array([0.1, 0.7], dtype=np.float32)
    sk = QuantileSketch()
    sk.add(v)
    assert sk.min == float(v[0]) and sk.max == float(v[1])


def test_inputs_python_and_noncontiguous() -> None:
    a = QuantileSketch()
    a.add(1.5)
    a.add(2)
    a.add([3.0, 4.0])
    a.add((5.0,))
    a.add(np.float32(6.0))
    b = QuantileSketch()
    b.add(np.array([1.5, 2, 3, 4, 5, 6]))
    assert a == b
    strided = np.arange(20.0)[::2]
    c = QuantileSketch()
    c.add(strided)
    d = QuantileSketch()
    d.add(np.ascontiguousarray(strided))
    assert c == d


def test_polars_series() -> None:
    s = pl.Series("lat", [1.0, 2.0, None, 4.0])
    sk = QuantileSketch()
    with pytest.raises(ValueError, match="values contains 1 null value.*index 2.*drop_nulls"):
        sk.add(s)
    assert sk.count == 0
    sk.add(s, drop_nulls=True)
    assert sk.count == 3 and sk.max == 4.0
    ints = QuantileSketch()
    ints.add(pl.Series([1, 2, 3], dtype=pl.Int32))
    assert ints.sum == 6
    with pytest.raises(TypeError, match="values must be numeric"):
        QuantileSketch().add(pl.Series(["a"]))


def test_weights() -> None:
    sk = QuantileSketch()
    sk.add([1.0, 2.0, 3.0], weights=[1, 0, 3])
    rep = QuantileSketch()
    rep.add([1.0, 3.0, 3.0, 3.0])
    assert sk == rep
    assert sk.to_bytes() == rep.to_bytes()
    # Zero weights are ignored entirely (also for min/max).
    assert sk.count == 4 and sk.sum == 10.0
    # Weighted polars input with nulls in either column.
    v = pl.Series([1.0, None, 3.0, 4.0])
    w = pl.Series([1.0, 2.0, None, 1.0])
    with pytest.raises(ValueError, match="null"):
        QuantileSketch().add(v, weights=w)
    dropped = QuantileSketch()
    dropped.add(v, weights=w, drop_nulls=True)
    assert dropped.count == 2 and dropped.sum == 5.0


def test_fractional_weights_exact_count_and_sum() -> None:
    sk = QuantileSketch()
    sk.add([1.0, 3.0], weights=[0.1, 0.2])
    assert sk.count == 0.1 + 0.2 or sk.count == pytest.approx(0.3, rel=1e-16)
    from fractions import Fraction

    exact = Fraction(1.0) * Fraction(0.1) + Fraction(3.0) * Fraction(0.2)
    assert sk.sum == float(exact)
    assert QuantileSketch.from_bytes(sk.to_bytes()) == sk
    with pytest.raises(ValueError, match="non-integer"):
        sk.to_otel()


@pytest.mark.parametrize(
    "bad, match",
    [
        ([1.0, np.nan, 3.0], "values contains NaN at index 1"),
        ([1.0, 2.0, np.inf], "values contains inf at index 2"),
        ([-np.inf], "values contains -inf at index 0"),
    ],
)
def test_bad_values_leave_sketch_unchanged(bad, match) -> None:
    sk = QuantileSketch()
    sk.add([1.0, 2.0])
    before = sk.to_bytes()
    with pytest.raises(ValueError, match=match):
        sk.add(np.array(bad))
    assert sk.to_bytes() == before
    with pytest.raises(ValueError, match=match):
        sk.add(np.array(bad), weights=np.ones(len(bad)))
    assert sk.to_bytes() == before


def test_rejections() -> None:
    sk = QuantileSketch()
    sk.add([1.0, 2.0])
    before = sk.to_bytes()
    with pytest.raises(ValueError, match=r"weights must be >= 0, got -1 at index 1"):
        sk.add([1.0, 2.0], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="weights contains NaN at index 0"):
        sk.add([1.0], weights=[np.nan])
    with pytest.raises(ValueError, match="weights has length 1 but values has length 2"):
        sk.add([1.0, 2.0], weights=[1.0])
    with pytest.raises(ValueError, match="must be 1-D"):
        sk.add(np.ones((2, 2)))
    with pytest.raises(TypeError, match="must be numeric"):
        sk.add(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="total weight would exceed 1e300"):
        sk.add([1.0], weights=[1e301])
    huge = QuantileSketch()
    huge.add([1.0], weights=[9e299])
    with pytest.raises(ValueError, match="total weight would exceed 1e300"):
        huge.merge(huge.copy())
    assert sk.to_bytes() == before
    for q in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
            sk.quantile(q)
    with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
        sk.quantile([0.5, 2.0])
    with pytest.raises(ValueError, match="x contains NaN"):
        sk.cdf(float("nan"))
    for ra in (0.0, 1.0, -0.1, float("nan"), 1e-9):
        with pytest.raises(ValueError, match="relative_accuracy"):
            QuantileSketch(ra)
    with pytest.raises(ValueError, match="bucket_limit"):
        QuantileSketch(0.01, bucket_limit=0)
    with pytest.raises(OverflowError):
        QuantileSketch(0.01, bucket_limit=-1)
    with pytest.raises(IncompatibleSketchError, match="relative_accuracy"):
        sk.merge(QuantileSketch(0.02))
    with pytest.raises(IncompatibleSketchError, match="bucket_limit"):
        sk.merge(QuantileSketch(0.01, bucket_limit=100))
    assert issubclass(IncompatibleSketchError, ValueError)
    with pytest.raises(TypeError, match="other must be a QuantileSketch"):
        sk.merge([1.0])
    assert sk.to_bytes() == before


def test_merge_and_merge_all() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 2, 10_000) * rng.choice([-1, 0, 1], 10_000)
    whole = QuantileSketch()
    whole.add(values)
    parts = np.array_split(values, 7)
    sketches = []
    for p in parts:
        s = QuantileSketch()
        s.add(p)
        sketches.append(s)
    merged = QuantileSketch.merge_all(reversed(sketches))
    assert merged == whole
    assert merged.to_bytes() == whole.to_bytes()
    assert isinstance(merged, QuantileSketch)
    acc = QuantileSketch()
    for s in sketches[::2] + sketches[1::2]:
        acc.merge(s)
    assert acc.to_bytes() == whole.to_bytes()
    # The argument is unchanged; self-merge doubles.
    one = sketches[0].to_bytes()
    acc.merge(sketches[0])
    assert sketches[0].to_bytes() == one
    twice = sketches[1].copy()
    twice.merge(twice)
    assert twice.count == 2 * sketches[1].count
    with pytest.raises(ValueError, match="at least one"):
        QuantileSketch.merge_all([])
    with pytest.raises(TypeError, match=r"sketches\[1\] must be a QuantileSketch"):
        QuantileSketch.merge_all([sketches[0], 3])


def test_bytes_pickle_copy_repr() -> None:
    sk = QuantileSketch()
    sk.add(np.random.default_rng(1).exponential(1.0, 1000))
    data = sk.to_bytes()
    assert data[:4] == b"QCSK" and data[4] == 1
    back = QuantileSketch.from_bytes(data)
    assert back == sk and type(back) is QuantileSketch
    p = pickle.loads(pickle.dumps(sk))
    assert p == sk and type(p) is QuantileSketch
    c = copy.deepcopy(sk)
    c.add(5.0)
    assert c != sk and c.count == sk.count + 1
    assert sk != 3
    r = repr(sk)
    assert r.startswith("QuantileSketch(relative_accuracy=0.01, count=1000") and "p99=" in r
    assert repr(QuantileSketch()) == "QuantileSketch(relative_accuracy=0.01, count=0)"


def test_from_bytes_rejects_garbage() -> None:
    sk = QuantileSketch()
    sk.add([1.0, 2.0])
    data = sk.to_bytes()
    for bad in (b"", b"QCSK", data[:-1], data + b"\0", b"x" * 40, data[:4] + b"\x02" + data[5:]):
        with pytest.raises(DeserializationError):
            QuantileSketch.from_bytes(bad)
    with pytest.raises(ValueError, match="unsupported format version 2"):
        QuantileSketch.from_bytes(data[:4] + b"\x02" + data[5:])


def test_negative_zero_canonical() -> None:
    a = QuantileSketch()
    a.add([-0.0, 1.0])
    b = QuantileSketch()
    b.add([0.0, 1.0])
    assert a.to_bytes() == b.to_bytes()
    assert np.signbit(a.min) == False  # noqa: E712


def test_collapse_keeps_upper_quantiles() -> None:
    rng = np.random.default_rng(5)
    values = 10 ** rng.uniform(-12, 6, 100_000)
    sk = QuantileSketch(0.01, bucket_limit=640)
    sk.add(values)
    assert sk.collapsed
    q0 = sk.min_accurate_quantile
    assert 0.8 < q0 < 0.86
    qs = [q0, 0.9, 0.99, 0.999, 0.9999, 1.0]
    est = sk.quantile(qs)
    true = lower(values, qs)
    assert np.all(np.abs(est - true) <= 0.01 * true)
    # Order-invariant even when collapsing.
    other = QuantileSketch(0.01, bucket_limit=640)
    for part in np.array_split(np.sort(values), 10)[::-1]:
        o = QuantileSketch(0.01, bucket_limit=640)
        o.add(part)
        other.merge(o)
    assert other.to_bytes() == sk.to_bytes()
    assert not QuantileSketch().collapsed and QuantileSketch().min_accurate_quantile == 0.0


def test_quantile_bounds() -> None:
    values = np.random.default_rng(8).lognormal(0, 2, 50_000)
    sk = QuantileSketch()
    sk.add(values)
    qs = [0.0, 0.1, 0.5, 0.99, 0.999, 1.0]
    lo, hi = sk.quantile_bounds(qs)
    truth = lower(values, qs)
    assert np.all((lo <= truth) & (truth <= hi))
    assert lo[0] == hi[0] == values.min() and lo[-1] == hi[-1] == values.max()
    inner = slice(1, -1)
    assert np.all(hi[inner] / lo[inner] <= 2 ** (1 / 64) * (1 + 1e-12))
    b = sk.quantile_bounds(0.99)
    assert isinstance(b, tuple) and isinstance(b[0], float)
    assert QuantileSketch().quantile_bounds(0.5) is None
    with pytest.raises(ValueError, match="q must be in"):
        sk.quantile_bounds(2.0)
    # After a collapse the collapsed bucket's interval reaches down to the minimum.
    c = QuantileSketch(bucket_limit=16)
    c.add(values)
    lo, hi = c.quantile_bounds([0.01, 0.999])
    assert lo[0] == values.min() and lo[0] <= lower(values, 0.01) <= hi[0]


def test_cdf() -> None:
    values = np.random.default_rng(2).lognormal(0, 1, 10_000)
    sk = QuantileSketch()
    sk.add(values)
    xs = np.array([0.1, 0.5, 1.0, 3.0])
    c = sk.cdf(xs)
    lo = np.searchsorted(np.sort(values), xs / 1.011, side="right") / len(values)
    hi = np.searchsorted(np.sort(values), xs * 1.011, side="right") / len(values)
    assert np.all((c >= lo) & (c <= hi))
    assert isinstance(sk.cdf(1.0), float)


def test_otel_round_trip_and_hand_example() -> None:
    sk = QuantileSketch(relative_accuracy=0.34)  # scale 0
    assert sk.scale == 0
    sk.add([1.0, 2.0, 3.0, 4.0, 0.0, -1.5])
    dp = sk.to_otel()
    assert dp == {
        "scale": 0,
        "zero_count": 1,
        "zero_threshold": 0.0,
        "positive": {"offset": -1, "bucket_counts": [1, 1, 2]},
        "negative": {"offset": 0, "bucket_counts": [1]},
        "count": 6,
        "sum": 8.5,
        "min": -1.5,
        "max": 4.0,
    }
    back = QuantileSketch.from_otel(dp)
    assert back.quantile(QS).tolist() == sk.quantile(QS).tolist()
    camel = {
        "scale": 0,
        "zeroCount": 1,
        "positive": {"offset": -1, "bucketCounts": ["1", "1", "2"]},
        "negative": {"offset": 0, "bucketCounts": [1]},
        "count": "6",
        "sum": 8.5,
        "min": -1.5,
        "max": 4.0,
    }
    assert QuantileSketch.from_otel(camel).to_bytes() == back.to_bytes()
    h = sk.to_prometheus()
    assert h["schema"] == 0
    assert h["positive_spans"] == [(0, 3)] and h["positive_deltas"] == [1, 0, 1]
    assert h["negative_spans"] == [(1, 1)] and h["negative_deltas"] == [1]
    hb = QuantileSketch.from_prometheus(h)
    assert hb.count == 6 and hb.sum == 8.5


def test_otel_default_scale_round_trip() -> None:
    values = np.random.default_rng(4).lognormal(-4, 1.5, 5000)
    sk = QuantileSketch()
    sk.add(values)
    dp = sk.to_otel()
    assert dp["scale"] == 6
    back = QuantileSketch.from_otel(dp, relative_accuracy=0.01)
    # Lossless: same buckets, count, min, max; the sum travels as a rounded double.
    assert back.to_otel() == dp
    assert back.quantile(np.linspace(0, 1, 201)).tolist() == sk.quantile(np.linspace(0, 1, 201)).tolist()
    assert back.sum == sk.sum
    own = QuantileSketch.from_otel(dp)
    assert own.relative_accuracy == pytest.approx(0.005415, abs=1e-6)
    assert_guarantee(own, values)
    coarse = QuantileSketch.from_otel(dp, relative_accuracy=0.05)
    assert coarse.scale == 3
    assert_guarantee(coarse, values)
    with pytest.raises(ValueError, match="needs scale 9 but the histogram has scale 6"):
        QuantileSketch.from_otel(dp, relative_accuracy=0.001)
    prom = QuantileSketch.from_prometheus(sk.to_prometheus(), relative_accuracy=0.01)
    assert prom.quantile([0.5, 0.99]).tolist() == pytest.approx(sk.quantile([0.5, 0.99]).tolist(), rel=0.011)


def test_interop_rejections() -> None:
    bad_count = {"scale": 3, "positive": {"offset": 0, "bucket_counts": [1, 2]}, "count": 4, "sum": 1.0}
    with pytest.raises(ValueError, match="count is 4 but the buckets hold 3"):
        QuantileSketch.from_otel(bad_count)
    with pytest.raises(ValueError, match="scale must be in"):
        QuantileSketch.from_otel({"scale": 30, "count": 0})
    with pytest.raises(ValueError, match="negative count"):
        QuantileSketch.from_prometheus(
            {"schema": 0, "count": 1, "sum": 1.0, "positive_spans": [(0, 2)], "positive_deltas": [1, -2]}
        )
    with pytest.raises(ValueError, match="schema must be in"):
        QuantileSketch.from_prometheus({"schema": -53, "count": 0, "sum": 0.0})
    with pytest.raises(TypeError, match="mapping"):
        QuantileSketch.from_otel([1, 2])


def test_sketch_groups() -> None:
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 5, 10_000)
    values = rng.lognormal(0, 1, 10_000)
    groups = sketch_groups(codes, values)
    assert len(groups) == 5
    for g in range(5):
        ref = QuantileSketch()
        ref.add(values[codes == g])
        assert groups[g] == ref
        assert isinstance(groups[g], QuantileSketch)
    w = rng.integers(0, 3, 10_000).astype(float)
    gw = sketch_groups(codes, values, weights=w)
    assert gw[2].count == w[codes == 2].sum()
    empty = sketch_groups([0, 3], [1.0, 2.0])
    assert empty[1].count == 0 and empty[3].count == 1
    with pytest.raises(ValueError, match="codes must be non-negative, got -1 at index 1"):
        sketch_groups([0, -1], [1.0, 2.0])
    with pytest.raises(ValueError, match="values has length 1 but codes has length 2"):
        sketch_groups([0, 1], [1.0])
    with pytest.raises(ValueError, match="codes must hold integers"):
        sketch_groups([0.5], [1.0])
    with pytest.raises(ValueError, match="codes must be below"):
        sketch_groups([1 << 40], [1.0])
    with pytest.raises(ValueError, match="values contains NaN at index 0"):
        sketch_groups([0], [np.nan])


def test_group_quantiles() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    df = pl.DataFrame(
        {
            "model": rng.choice(["llama", "mistral", None], n),
            "region": rng.choice(["eu", "us"], n),
            "latency": rng.lognormal(-2, 1, n),
        }
    )
    out = group_quantiles(df, ["model", "region"], "latency")
    assert out.columns == ["model", "region", "count", "p50", "p99", "p999"]
    assert out.height == 6
    for row in out.iter_rows(named=True):
        sel = df.filter(
            (pl.col("model").eq_missing(row["model"])) & (pl.col("region") == row["region"])
        )["latency"].to_numpy()
        assert row["count"] == len(sel)
        for q, name in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")]:
            t = lower(sel, q)
            assert abs(row[name] - t) <= 0.01 * t
    lazy = group_quantiles(df.lazy(), "region", "latency", quantiles=(0.5,))
    assert lazy.columns == ["region", "count", "p50"]
    with_nulls = df.with_columns(pl.when(pl.col("region") == "eu").then(None).otherwise(pl.col("latency")).alias("latency"))
    with pytest.raises(ValueError, match="null"):
        group_quantiles(with_nulls, "region", "latency")
    dropped = group_quantiles(with_nulls, "region", "latency", drop_nulls=True)
    assert dropped["region"].to_list() == ["us"]
    with pytest.raises(ValueError, match="no column"):
        group_quantiles(df, "nope", "latency")
    with pytest.raises(ValueError, match="quantiles must be in"):
        group_quantiles(df, "region", "latency", quantiles=(1.5,))


def test_exports() -> None:
    for name in ("QuantileSketch", "sketch_groups", "group_quantiles"):
        assert name in qcore.__all__
        assert getattr(qcore, name) is getattr(qcore.sketch, name)


@pytest.mark.parametrize(
    "alpha, scale, error",
    # The OpenTelemetry ideal-scale table (ANCHORS.md §5.3): scale, relative error.
    [(0.0055, 6, 0.00542), (0.011, 5, 0.01083), (0.022, 4, 0.02166), (0.044, 3, 0.04329), (0.087, 2, 0.08643)],
)
def test_otel_scale_table(alpha: float, scale: int, error: float) -> None:
    sk = QuantileSketch(alpha)
    assert sk.scale == scale
    assert sk.effective_relative_accuracy == pytest.approx(error, abs=5e-6)
    assert sk.to_otel()["scale"] == scale


def test_prometheus_schema8_max_float_index() -> None:
    # "Schema 8 puts MaxFloat64 at index 262144" (Prometheus native histograms spec).
    sk = QuantileSketch(0.002)
    assert sk.scale == 8
    sk.add(np.finfo(np.float64).max)
    h = sk.to_prometheus()
    assert h["schema"] == 8 and h["positive_spans"] == [(262144, 1)] and h["positive_deltas"] == [1]
    # OpenTelemetry index of the same bucket is one lower.
    assert sk.to_otel()["positive"]["offset"] == 262143
    # Upper bounds are inclusive: 2.0 is in Prometheus bucket 256 at schema 8 ((2^(255/256), 2]).
    two = QuantileSketch(0.002)
    two.add(2.0)
    assert two.to_prometheus()["positive_spans"] == [(256, 1)]
