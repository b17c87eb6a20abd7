"""Metric values for rules, computed through qcore's Rust-backed primitives.

Each function takes a canonical log frame (see :mod:`qcore.logs`) for one group and
returns a :class:`MetricValue`. The heavy work (quantiles, order-statistic intervals,
arrival statistics, Little's law) runs in the Rust core over whole arrays; this module
only selects columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "MetricValue",
    "min_samples_for_quantile",
    "quantile_with_ci",
    "required_columns",
    "wilson_interval",
]


@dataclass
class MetricValue:
    value: float | None
    n: int
    ci_lo: float | None = None
    ci_hi: float | None = None
    min_n: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)   # columns needed but absent


def required_columns(metric: str, rule: Any) -> list[str]:
    m = metric
    if m in ("latency_quantile", "latency_mean", "latency_drift"):
        return ["start", "latency", "outcome"]
    if m == "error_rate":
        return ["outcome"]
    if m in ("throughput", "arrival_rate", "peak_to_mean", "burstiness", "rate_drift", "freshness"):
        return ["start"]
    if m == "littles_gap":
        return ["start", "end"]
    if m == "null_fraction":
        return [rule.column]
    if m == "unaudited_fraction":
        return []
    if m == "cost_per_1k_tokens":
        return ["cost", "tokens_in", "tokens_out"]
    if m == "tokens_per_request":
        return ["tokens_in", "tokens_out"]
    return []


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (closed form)."""
    if n <= 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def min_samples_for_quantile(q: float, confidence: float) -> int:
    """Smallest n at which a distribution-free two-sided CI for the q-quantile exists."""
    import qcore

    return int(qcore.min_sample_size(q, confidence=confidence))


def quantile_with_ci(values: np.ndarray, q: float, confidence: float) -> tuple[float | None, float | None, float | None]:
    """(estimate from a QuantileSketch, CI low, CI high) — CI bounds None when undefined."""
    import qcore

    if values.size == 0:
        return (None, None, None)
    sk = qcore.QuantileSketch(relative_accuracy=0.01)
    sk.add(values)
    est = float(sk.quantile(q))  # type: ignore[arg-type]
    lo = hi = None
    try:
        ci = qcore.quantile_ci(values, q, confidence=confidence)
        lo = float(ci.lo) if ci.lo is not None and math.isfinite(ci.lo) else None
        hi = float(ci.hi) if ci.hi is not None and math.isfinite(ci.hi) else None
    except ValueError:
        pass
    return (est, lo, hi)


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame.get_column(name).cast(pl.Float64).to_numpy()


def latency_values(frame: pl.DataFrame, include_errors: bool) -> np.ndarray:
    if include_errors:
        sel = frame.filter(pl.col("outcome") != "incomplete")
    else:
        sel = frame.filter(pl.col("outcome") == "ok")
    return _col(sel.drop_nulls("latency"), "latency")


def latency_quantile(frame: pl.DataFrame, rule: Any) -> MetricValue:
    vals = latency_values(frame, rule.include_errors)
    need = max(rule.min_samples or 0, min_samples_for_quantile(rule.quantile, rule.confidence))
    est, lo, hi = quantile_with_ci(vals, rule.quantile, rule.confidence)
    return MetricValue(est, int(vals.size), lo, hi, need, {"quantile": rule.quantile})


def latency_mean(frame: pl.DataFrame, rule: Any) -> MetricValue:
    vals = latency_values(frame, rule.include_errors)
    if vals.size == 0:
        return MetricValue(None, 0, min_n=max(rule.min_samples or 1, 1))
    m = float(vals.mean())
    lo = hi = None
    if vals.size > 1:
        z = NormalDist().inv_cdf(0.5 + rule.confidence / 2.0)
        se = float(vals.std(ddof=1)) / math.sqrt(vals.size)
        lo, hi = m - z * se, m + z * se
    return MetricValue(m, int(vals.size), lo, hi, max(rule.min_samples or 2, 2))


def error_rate(frame: pl.DataFrame, rule: Any) -> MetricValue:
    counts = frame.select(
        ok=(pl.col("outcome") == "ok").sum(), err=(pl.col("outcome") == "error").sum()
    ).row(0)
    ok, err = int(counts[0] or 0), int(counts[1] or 0)
    n = ok + err
    # low-traffic guard: below 1/threshold requests a single error decides the rule
    default_min = math.ceil(1.0 / rule.threshold) if rule.threshold and rule.threshold > 0 else 1
    need = rule.min_samples if rule.min_samples is not None else default_min
    if n == 0:
        return MetricValue(None, 0, min_n=max(need, 1))
    lo, hi = wilson_interval(err, n, rule.confidence)
    return MetricValue(err / n, n, lo, hi, max(need, 1), {"errors": err})


def _window_bounds(frame: pl.DataFrame) -> tuple[float, float] | None:
    if frame.height == 0:
        return None
    t0 = frame.get_column("start").min()
    t1 = frame.get_column("start").max()
    return float(t0), float(t1)  # type: ignore[arg-type]


def throughput(frame: pl.DataFrame, rule: Any, span: tuple[float, float]) -> MetricValue:
    done = frame.filter(pl.col("outcome") == "ok").height
    dur = span[1] - span[0]
    need = max(rule.min_samples or 1, 1)
    if dur <= 0:
        return MetricValue(None, done, min_n=need)
    return MetricValue(done / dur, done, min_n=need, extra={"duration": dur})


def arrival(frame: pl.DataFrame, rule: Any, what: str) -> MetricValue:
    import qcore

    ts = _col(frame, "start")
    need = max(rule.min_samples or 2, 2)
    if ts.size < 2:
        return MetricValue(None, int(ts.size), min_n=need)
    st = qcore.arrival_stats(ts, window=rule.bin, confidence=rule.confidence)
    extra = {"bin": rule.bin, "count": int(st.count), "duration": float(st.duration),
             "windows": int(st.windows)}
    if what == "arrival_rate":
        lo, hi = st.rate_ci
        return MetricValue(_finite(st.rate), int(ts.size), _finite(lo), _finite(hi), need, extra)
    if what == "peak_to_mean":
        return MetricValue(_finite(st.peak_to_mean), int(ts.size), min_n=need, extra=extra)
    return MetricValue(_finite(st.index_of_dispersion), int(ts.size), min_n=need, extra=extra)


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def littles_gap(frame: pl.DataFrame, rule: Any, window: tuple[float, float] | None = None) -> MetricValue:
    """Little's law over ``window`` (default: the rows' own span, where the gap is an
    identity and only data-quality flags can fail) from all rows of ``frame``."""
    import qcore

    sel = frame.filter(pl.col("outcome") != "incomplete").drop_nulls(["start", "end"])
    need = max(rule.min_samples or 2, 2)
    if sel.height < 2:
        return MetricValue(None, sel.height, min_n=need)
    t0, t1 = window if window is not None else (None, None)
    res = qcore.littles_law(_col(sel, "start"), _col(sel, "end"), t0=t0, t1=t1,
                            tolerance=rule.threshold if rule.threshold and rule.threshold > 0 else 0.02)
    if window is not None:
        need = max(need, 2)
        n_in = int(res.arrivals)
        if n_in < need:
            return MetricValue(None, n_in, min_n=need)
    extra = {"L": res.L, "arrival_rate": res.arrival_rate, "mean_response": res.mean_response,
             "edge_term": res.edge_term, "edge_bound": res.edge_bound, "flags": list(res.flags),
             "t0": res.t0, "t1": res.t1}
    return MetricValue(_finite(res.gap), int(res.arrivals), min_n=need, extra=extra)


def null_fraction(frame: pl.DataFrame, rule: Any) -> MetricValue:
    n = frame.height
    if n == 0:
        return MetricValue(None, 0, min_n=max(rule.min_samples or 1, 1))
    k = frame.get_column(rule.column).null_count()
    return MetricValue(k / n, n, min_n=max(rule.min_samples or 1, 1), extra={"nulls": k})


def unaudited_fraction(frame: pl.DataFrame, rule: Any) -> MetricValue:
    cols = list(rule.columns) or ["model_version"]
    n = frame.height
    need = max(rule.min_samples or 1, 1)
    absent = [c for c in cols if c not in frame.columns]
    if absent:
        return MetricValue(1.0 if n else None, n, min_n=need, extra={"absent_columns": absent})
    if n == 0:
        return MetricValue(None, 0, min_n=need)
    k = frame.select(pl.any_horizontal([pl.col(c).is_null() for c in cols]).sum()).item()
    return MetricValue(int(k) / n, n, min_n=need, extra={"rows_without_lineage": int(k)})


def cost_per_1k_tokens(frame: pl.DataFrame, rule: Any) -> MetricValue:
    sel = frame.drop_nulls(["cost", "tokens_in", "tokens_out"])
    n = sel.height
    need = max(rule.min_samples or 1, 1)
    c = _col(sel, "cost")
    t = _col(sel, "tokens_in") + _col(sel, "tokens_out")
    tot = float(t.sum())
    if n == 0 or tot <= 0:
        return MetricValue(None, n, min_n=need)
    r = float(c.sum()) / tot
    lo = hi = None
    if n > 1:
        # delta-method interval for a ratio of sums
        z = NormalDist().inv_cdf(0.5 + rule.confidence / 2.0)
        resid = c - r * t
        se = math.sqrt(float(resid.var(ddof=1)) / n) / float(t.mean())
        lo, hi = 1000 * (r - z * se), 1000 * (r + z * se)
    return MetricValue(1000 * r, n, lo, hi, need)


def tokens_per_request(frame: pl.DataFrame, rule: Any) -> MetricValue:
    sel = frame.drop_nulls(["tokens_in", "tokens_out"])
    n = sel.height
    need = max(rule.min_samples or 1, 1)
    if n == 0:
        return MetricValue(None, 0, min_n=need)
    t = _col(sel, "tokens_in") + _col(sel, "tokens_out")
    return MetricValue(float(t.mean()), n, min_n=need)
