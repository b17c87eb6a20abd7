"""Mergeable quantile sketches with a relative-error guarantee.

:class:`QuantileSketch` answers ``quantile(q)`` for every ``q`` in [0, 1] within relative
error ``relative_accuracy`` of the exact lower order statistic
(``numpy.quantile(values, q, method="lower")``), for positive, negative and zero values,
for weighted values and after any sequence of merges. ``count``, ``sum``, ``min``,
``max`` and ``mean`` are exact. Merging is exact and order-invariant: the sketches of the
parts of a data set, merged in any order, have the same bytes as the sketch of the whole.

The buckets are those of OpenTelemetry exponential histograms and Prometheus native
histograms (base ``2**(2**-scale)``), so export and import at the sketch's scale are
lossless. ``relative_accuracy=0.01`` selects scale 6, whose relative error is 0.54 %.

The hot loops run in Rust over whole arrays with the GIL released; this module only
converts arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qcore._convert import as_f64, as_i64, is_polars_series
from qcore._qcore import _group_quantiles, _QuantileSketch, _sketch_groups
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["QuantileSketch", "sketch_groups", "group_quantiles"]

_Scalar = (float, int, np.floating, np.integer)


def _drop_null_pairs(values: Any, weights: Any) -> tuple[Any, Any]:
    """Drop the rows where either polars Series holds a null (same length required)."""
    n_v, n_w = len(values), len(weights)
    if n_v != n_w:
        raise InvalidArgumentError(f"weights has length {n_w} but values has length {n_v}")
    masks = [x.is_not_null().to_numpy() for x in (values, weights) if is_polars_series(x) and x.null_count()]
    if not masks:
        return values, weights
    keep = np.logical_and.reduce(masks)

    def take(x: Any) -> Any:
        if is_polars_series(x):
            import polars as pl

            return x.filter(pl.Series(keep))
        return np.asarray(x)[keep]

    return take(values), take(weights)


class QuantileSketch(_QuantileSketch):
    """A mergeable quantile sketch with a relative-error guarantee.

    Parameters
    ----------
    relative_accuracy : float, default 0.01
        Required relative accuracy α in (0, 1). The sketch uses the coarsest base-2
        exponential scale whose relative error ``(b-1)/(b+1)`` is at most α
        (``effective_relative_accuracy``; 0.01 → scale 6 → 0.54 %). Supported down to
        about 5.3e-6 (scale 16).
    bucket_limit : int, optional
        Maximum number of buckets per sign. Default: 4096 (64 octaves, a factor of
        1.8e19, at scale 6) and 64 octaves at finer scales (at most 2**20). When the data
        spans more, the lowest buckets collapse (see *Bounded memory*).

    Guarantee
    ---------
    For every q in [0, 1], ``quantile(q)`` is within ``effective_relative_accuracy`` (≤ α)
    of ``numpy.quantile(values, q, method="lower")`` — with weights, of the lower
    quantile of the data with each value repeated by its weight, that is the first value
    (in sorted order) whose cumulative weight exceeds ``q * (count - 1)``. It holds for
    positive, negative and zero values and after any merges. ``quantile(0)`` and
    ``quantile(1)`` are the exact min and max; estimates lie in [min, max]. Subnormal
    values (|x| < 2.2e-308) may additionally be off by one subnormal step (5e-324).

    Bounded memory
    --------------
    Each sign keeps at most ``bucket_limit`` buckets. Positive values collapse their
    lowest buckets into the lowest bucket kept (the ``bucket_limit`` indices below the
    maximum); negative values collapse their most negative ones. The collapse depends on
    the data only, so merges stay exact and order-invariant. After a collapse
    (``collapsed`` is True), every ``quantile(q)`` with ``q >= min_accurate_quantile``
    keeps the guarantee: the upper quantiles (p99, p999) are exact to α; quantiles whose
    rank falls in a collapsed bucket are not.

    Exactness
    ---------
    ``count`` (total weight), ``sum`` (Σ weight·value), ``min`` and ``max`` are exact;
    ``sum``, ``count`` and ``mean`` are computed exactly and rounded once to a float. With
    integer weights (or none) every bucket count is an exact integer (below 2**53 per
    bucket), so merges are exact and order-invariant byte for byte. With non-integer
    weights the bucket counts are float sums: merging parts in a different order may
    differ in the last bits of a bucket's weight (count and sum stay exact) and the
    quantile rank is exact up to that rounding.

    Errors
    ------
    ``ValueError`` (``qcore.exceptions.InvalidArgumentError``) for NaN/±inf values
    (naming the first bad index), negative or non-finite weights, mismatched lengths,
    nulls (unless ``drop_nulls=True``), q outside [0, 1], relative_accuracy outside
    its range. A failed call leaves the sketch unchanged.
    ``qcore.exceptions.IncompatibleSketchError`` when merging sketches with a different
    relative_accuracy or bucket_limit; ``qcore.exceptions.DeserializationError`` for bytes
    that are not a valid sketch. All are ``ValueError`` subclasses.

    Examples
    --------
    >>> import numpy as np, qcore
    >>> sk = qcore.QuantileSketch(relative_accuracy=0.01)
    >>> sk.add(np.arange(1.0, 1001.0))
    >>> sk.count, sk.sum, sk.min, sk.max
    (1000.0, 500500.0, 1.0, 1000.0)
    >>> p99 = sk.quantile(0.99)        # true lower p99: 990
    >>> abs(p99 - 990) <= 0.01 * 990
    True
    >>> sk.quantile([0.0, 1.0]).tolist()
    [1.0, 1000.0]
    >>> other = qcore.QuantileSketch(0.01)
    >>> other.add([5000.0])
    >>> sk.merge(other)
    >>> sk.max
    5000.0
    >>> qcore.QuantileSketch.from_bytes(sk.to_bytes()) == sk
    True
    >>> qcore.QuantileSketch().quantile(0.5) is None     # empty is a value
    True
    """

    def add(self, values: Any, weights: Any = None, *, drop_nulls: bool = False) -> None:
        """Add values (a float, a sequence, a numpy array of any real dtype or a polars
        Series), optionally with non-negative weights of the same length.

        Zero weights are ignored. ``drop_nulls=True`` drops polars nulls (in values or
        weights) instead of raising. Nothing is added when the call raises.

        Examples
        --------
        >>> sk = QuantileSketch()
        >>> sk.add(2.5)
        >>> sk.add([1.0, 3.0], weights=[2, 1])
        >>> sk.count, sk.sum
        (4.0, 7.5)
        """
        if weights is None:
            if type(values) is float:
                self._add_float(values)
                return
            self._add_array(as_f64(values, "values", drop_nulls=drop_nulls))
            return
        if drop_nulls:
            values, weights = _drop_null_pairs(values, weights)
        v = as_f64(values, "values")
        w = as_f64(weights, "weights")
        self._add_weighted(v, w)

    def quantile(self, q: Any) -> float | npt.NDArray[np.float64] | None:
        """Estimate of the q-quantile: a float for a scalar q, a float64 array for a
        sequence of q; ``None`` when the sketch is empty.

        Raises ``ValueError`` when a q is outside [0, 1] or NaN.

        Examples
        --------
        >>> sk = QuantileSketch()
        >>> sk.add([1.0, 2.0, 3.0, 4.0])
        >>> sk.quantile(0.0), sk.quantile(1.0)
        (1.0, 4.0)
        >>> sk.quantile([0.5, 0.75]).round(2).tolist()   # true: 2.0, 3.0 (within 0.54 %)
        [1.99, 3.0]
        """
        if isinstance(q, _Scalar) and not isinstance(q, bool):
            return self._quantile(float(q))
        return self._quantiles(as_f64(q, "q"))

    def quantile_bounds(self, q: Any) -> Any:
        """An interval ``(lo, hi)`` guaranteed to contain the exact lower q-quantile (the
        answering bucket's bounds, clamped to [min, max]; after a collapse, a collapsed
        bucket's interval extends to the minimum). ``quantile(q)`` lies inside it.

        Returns a pair of floats for a scalar q, a pair of float64 arrays for a sequence,
        ``None`` when the sketch is empty. Raises ``ValueError`` for q outside [0, 1].

        Examples
        --------
        >>> sk = QuantileSketch()
        >>> sk.add([1.0, 2.0, 3.0, 4.0, 100.0])
        >>> lo, hi = sk.quantile_bounds(0.5)      # true: 3.0
        >>> lo <= 3.0 <= hi, round(hi / lo, 4)    # one bucket: ratio 2**(1/64)
        (True, 1.0109)
        """
        scalar = isinstance(q, _Scalar) and not isinstance(q, bool)
        qs = np.array([float(q)]) if scalar else as_f64(q, "q")
        r = self._quantile_bounds(qs)
        if r is None:
            return None
        lo, hi = r
        return (float(lo[0]), float(hi[0])) if scalar else (lo, hi)

    def cdf(self, x: Any) -> float | npt.NDArray[np.float64] | None:
        """Estimated fraction of the weight at or below x (buckets are counted by their
        estimate, so the rank error is at most the weight of x's bucket); a float for a
        scalar, an array for a sequence, ``None`` when empty.

        Examples
        --------
        >>> sk = QuantileSketch()
        >>> sk.add([1.0, 2.0, 3.0, 4.0])
        >>> sk.cdf(2.5), sk.cdf(0.0), sk.cdf(10.0)
        (0.5, 0.0, 1.0)
        """
        if isinstance(x, _Scalar) and not isinstance(x, bool):
            return self._cdf(float(x))
        return self._cdfs(as_f64(x, "x"))

    def to_otel(self) -> dict[str, Any]:
        """Export as an OpenTelemetry exponential-histogram data point (a dict with
        ``scale``, ``zero_count``, ``zero_threshold``, ``positive``/``negative``
        ``{"offset", "bucket_counts"}``, ``count``, ``sum``, ``min``, ``max``).

        Lossless: the buckets are the sketch's own. Raises ``ValueError`` when the sketch
        holds non-integer weights (OpenTelemetry counts are integers).

        Examples
        --------
        >>> sk = QuantileSketch()
        >>> sk.add([1.0, 1.5])
        >>> dp = sk.to_otel()
        >>> dp["scale"], dp["positive"]["offset"], dp["count"]
        (6, -1, 2)
        """
        return dict(self._to_otel())

    @classmethod
    def from_otel(
        cls,
        dp: Mapping[str, Any],
        relative_accuracy: float | None = None,
        bucket_limit: int | None = None,
    ) -> QuantileSketch:
        """Import an OpenTelemetry exponential-histogram data point (snake_case or OTLP
        JSON camelCase keys).

        With ``relative_accuracy=None`` the sketch keeps the point's own scale (capped at
        16) and its ``relative_accuracy`` is that scale's error ``(b-1)/(b+1)``: every
        bucket is kept, nothing is lost. With a ``relative_accuracy`` the point is merged
        down exactly to that accuracy's scale (so the result merges with
        ``QuantileSketch(relative_accuracy)`` sketches); a point at a coarser scale than
        required raises ``ValueError``. Zero-bucket values become exact zeros (absolute
        error ≤ ``zero_threshold``); missing min/max are replaced by the outer bucket
        bounds, a missing sum by the bucket estimates. ``count`` must equal the bucket
        total.

        Examples
        --------
        >>> dp = {"scale": 0, "zero_count": 1, "positive": {"offset": 0, "bucket_counts": [1, 2]},
        ...       "count": 4, "sum": 9.0, "min": 0.0, "max": 4.0}
        >>> sk = QuantileSketch.from_otel(dp)
        >>> sk.scale, sk.count, sk.quantile(1.0)
        (0, 4.0, 4.0)
        """
        g = _getter(dp)
        pos = g("positive") or {}
        neg = g("negative") or {}
        pg, ng = _getter(pos), _getter(neg)
        # proto3 JSON omits fields at their zero value and writes 64-bit integers as strings
        return cls._from_otel(
            _proto_int(g("scale"), "scale"),
            _proto_int(g("zero_count", "zeroCount"), "zero_count"),
            _proto_float(g("zero_threshold", "zeroThreshold"), "zero_threshold"),
            _proto_int(pg("offset"), "positive.offset"),
            [_proto_int(c, "positive.bucket_counts") for c in (pg("bucket_counts", "bucketCounts") or [])],
            _proto_int(ng("offset"), "negative.offset"),
            [_proto_int(c, "negative.bucket_counts") for c in (ng("bucket_counts", "bucketCounts") or [])],
            _proto_int(g("count"), "count"),
            _opt_float(g("sum")),
            _opt_float(g("min")),
            _opt_float(g("max")),
            relative_accuracy,
            bucket_limit,
        )

    def to_prometheus(self) -> dict[str, Any]:
        """Export as a Prometheus native histogram (a dict with ``schema``,
        ``zero_threshold``, ``zero_count``, ``count``, ``sum``, ``positive_spans`` /
        ``negative_spans`` as ``(offset, length)`` pairs and ``positive_deltas`` /
        ``negative_deltas``).

        Lossless for scales in [-4, 8] (relative_accuracy ≥ 0.00136); finer sketches are
        exported at schema 8 (relative error 0.135 %). Raises ``ValueError`` for
        non-integer weights.

        Examples
        --------
        >>> sk = QuantileSketch(relative_accuracy=0.34)      # scale 0: buckets (2^(i-1), 2^i]
        >>> sk.add([1.0, 2.0, 3.0, 4.0])
        >>> h = sk.to_prometheus()
        >>> h["schema"], h["positive_spans"], h["positive_deltas"]
        (0, [(0, 3)], [1, 0, 1])
        """
        return dict(self._to_prometheus())

    @classmethod
    def from_prometheus(
        cls,
        h: Mapping[str, Any],
        relative_accuracy: float | None = None,
        bucket_limit: int | None = None,
    ) -> QuantileSketch:
        """Import a Prometheus native histogram with integer counts (schema in [-4, 8]);
        spans may be ``(offset, length)`` pairs or ``{"offset", "length"}`` dicts. See
        :meth:`from_otel` for the accuracy rules. Prometheus carries no min/max: the outer
        bucket bounds are used.

        Examples
        --------
        >>> h = {"schema": 0, "zero_threshold": 0.0, "zero_count": 0, "count": 4, "sum": 10.0,
        ...      "positive_spans": [(0, 3)], "positive_deltas": [1, 0, 1]}
        >>> QuantileSketch.from_prometheus(h).count
        4.0
        """
        g = _getter(h)
        return cls._from_prometheus(
            int(g("schema")),
            float(g("zero_threshold", "zeroThreshold") or 0.0),
            int(g("zero_count", "zeroCount") or 0),
            int(g("count")),
            float(g("sum") or 0.0),
            _spans(g("positive_spans", "positiveSpans") or []),
            [int(d) for d in (g("positive_deltas", "positiveDeltas") or [])],
            _spans(g("negative_spans", "negativeSpans") or []),
            [int(d) for d in (g("negative_deltas", "negativeDeltas") or [])],
            relative_accuracy,
            bucket_limit,
        )


def _proto_int(v: Any, name: str) -> int:
    """A proto3 JSON integer field: absent or null is 0; 64-bit values may be decimal
    strings."""
    if v is None:
        return 0
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
        return int(v)
    raise InvalidArgumentError(f"{name} must be an integer (or a decimal string), got {v!r}")


def _proto_float(v: Any, name: str) -> float:
    """A proto3 JSON double field: absent or null is 0; numbers or numeric strings."""
    if v is None:
        return 0.0
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {v!r}") from None


def _getter(d: Mapping[str, Any]) -> Any:
    if not isinstance(d, Mapping):
        raise InvalidTypeError(f"expected a mapping, got {type(d).__name__}")

    def get(*names: str) -> Any:
        for n in names:
            if n in d:
                return d[n]
        return None

    return get


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _spans(spans: Iterable[Any]) -> list[tuple[int, int]]:
    out = []
    for s in spans:
        if isinstance(s, Mapping):
            out.append((int(s.get("offset", 0)), int(s["length"])))
        else:
            o, n = s
            out.append((int(o), int(n)))
    return out


def sketch_groups(
    codes: Any,
    values: Any,
    relative_accuracy: float = 0.01,
    *,
    weights: Any = None,
    bucket_limit: int | None = None,
) -> list[QuantileSketch]:
    """One sketch per group code, built in one Rust pass.

    Parameters
    ----------
    codes : array-like of non-negative int
        Group code of each value; the result has ``max(codes) + 1`` sketches (groups
        without values get an empty sketch). Codes must be below
        ``max(2**20, len(values))``.
    values : array-like of float
        Values (numpy array of any real dtype, sequence or polars Series; no nulls).
    relative_accuracy, bucket_limit
        As for :class:`QuantileSketch`.
    weights : array-like of float, optional
        Non-negative weights, same length.

    Raises ``ValueError`` for negative codes, mismatched lengths, NaN/±inf values or bad
    weights (naming the argument and the first bad index).

    Examples
    --------
    >>> gs = sketch_groups([0, 1, 0, 1], [1.0, 10.0, 3.0, 30.0])
    >>> [g.max for g in gs]
    [3.0, 30.0]
    """
    c = as_i64(codes, "codes")
    v = as_f64(values, "values")
    w = None if weights is None else as_f64(weights, "weights")
    return _sketch_groups(QuantileSketch, c, v, w, float(relative_accuracy), bucket_limit)


def _quantile_name(q: float) -> str:
    return "p" + format(q * 100, ".10g").replace(".", "")


def group_quantiles(
    frame: Any,
    by: str | Sequence[str],
    value: str,
    quantiles: Sequence[float] = (0.5, 0.99, 0.999),
    *,
    relative_accuracy: float = 0.01,
    weights: str | None = None,
    drop_nulls: bool = False,
) -> Any:
    """Per-group quantiles of a polars frame: one row per distinct key, with the key
    columns, ``count`` and one column per quantile (``p50``, ``p99``, ``p999``, ...).

    Keys are encoded by polars (nulls form their own group), then one Rust pass builds
    every group's sketch and its quantiles (no Python loop over groups). Rows are sorted
    by key.
    Each quantile carries the sketch's guarantee (relative error ≤ relative_accuracy).

    Parameters
    ----------
    frame : polars.DataFrame or polars.LazyFrame
    by : str or list of str
        Key columns.
    value : str
        Numeric value column (nulls raise unless ``drop_nulls=True``).
    quantiles : sequence of float in [0, 1]
    relative_accuracy : float
    weights : str, optional
        Column of non-negative weights.
    drop_nulls : bool
        Drop rows whose value (or weight) is null instead of raising.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["a", "b", "a", "b"], "latency": [1.0, 10.0, 3.0, 30.0]})
    >>> out = group_quantiles(df, "model", "latency", quantiles=(0.0, 1.0))
    >>> out.columns
    ['model', 'count', 'p0', 'p100']
    >>> out.rows()
    [('a', 2.0, 1.0, 3.0), ('b', 2.0, 10.0, 30.0)]
    """
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        raise InvalidTypeError(f"frame must be a polars DataFrame or LazyFrame, got {type(frame).__name__}")
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise InvalidArgumentError("by must name at least one column")
    needed = [*keys, value] + ([weights] if weights is not None else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InvalidArgumentError(f"frame has no column(s) {missing}; it has {frame.columns}")
    qs = [float(q) for q in quantiles]
    for q in qs:
        if not (0.0 <= q <= 1.0):
            raise InvalidArgumentError(f"quantiles must be in [0, 1], got {q}")
    df = frame.select(needed)
    if drop_nulls:
        df = df.drop_nulls(subset=[value] + ([weights] if weights is not None else []))
    # dense codes for the distinct keys, in their sorted order (nulls last)
    from qcore.pipeline.groups import dense_codes

    df, codes, key_frame = dense_codes(df, keys)
    w = None if weights is None else as_f64(df[weights], "weights")
    counts, table = _group_quantiles(
        as_i64(codes, "codes"),
        as_f64(df[value], value),
        w,
        np.asarray(qs, dtype=np.float64),
        float(relative_accuracy),
        None,
    )
    n = key_frame.height
    cols = {"count": counts[:n]}
    for j, q in enumerate(qs):
        cols[_quantile_name(q)] = table[:n, j]
    return key_frame.with_columns([pl.Series(k, v) for k, v in cols.items()])
