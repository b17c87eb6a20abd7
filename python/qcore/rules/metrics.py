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
import numpy.typing as npt
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


def _col(frame: pl.DataFrame, name: str) -> npt.NDArray[np.float64]:
    """Column ``name`` of ``frame`` as float64 seconds/values."""
    col: npt.NDArray[np.float64] = frame.get_column(name).cast(pl.Float64).to_numpy()
    return col


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


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
