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

from qcore.tail import widen_for_sketch

__all__ = [
    "MetricValue",
    "llm_log",
    "llm_quantile",
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
    if m in ("ttft_quantile", "tpot_quantile"):
        return ["start", m.split("_")[0], "outcome"]
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


#: The relative accuracy of the rules' latency sketches.
SKETCH_ACCURACY = 0.01


def quantile_with_ci(values: np.ndarray, q: float, confidence: float) -> tuple[float | None, float | None, float | None]:
    """(estimate from a QuantileSketch, CI low, CI high): the exact order statistics'
    interval widened by the sketch's accuracy (:func:`qcore.tail.widen_for_sketch`), so it
    holds the estimate; CI bounds None when undefined."""
    import qcore

    if values.size == 0:
        return (None, None, None)
    sk = qcore.QuantileSketch(relative_accuracy=SKETCH_ACCURACY)
    sk.add(values)
    est = float(sk.quantile(q))  # type: ignore[arg-type]
    lo = hi = None
    try:
        ci = qcore.quantile_ci(values, q, confidence=confidence)
        lo = float(ci.lo) if ci.lo is not None and math.isfinite(ci.lo) else None
        hi = float(ci.hi) if ci.hi is not None and math.isfinite(ci.hi) else None
    except ValueError:
        pass
    lo, hi = widen_for_sketch(lo, hi, SKETCH_ACCURACY, est)
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


# --------------------------------------------------------------------------- LLM metrics


def llm_values(frame: pl.DataFrame, column: str, include_errors: bool) -> np.ndarray:
    """The ``ttft`` or ``tpot`` values of a canonical log's rows (as :func:`latency_values`
    selects rows; rows without a value, such as one-token outputs for TPOT, are left out)."""
    if include_errors:
        sel = frame.filter(pl.col("outcome") != "incomplete")
    else:
        sel = frame.filter(pl.col("outcome") == "ok")
    return _col(sel.drop_nulls(column), column)


def llm_quantile(frame: pl.DataFrame, rule: Any) -> MetricValue:
    """``ttft_quantile`` / ``tpot_quantile``: the quantile of the column with its
    distribution-free interval, as :func:`latency_quantile` does for latency."""
    vals = llm_values(frame, rule.metric.split("_")[0], rule.include_errors)
    need = max(rule.min_samples or 0, min_samples_for_quantile(rule.quantile, rule.confidence))
    est, lo, hi = quantile_with_ci(vals, rule.quantile, rule.confidence)
    return MetricValue(est, int(vals.size), lo, hi, need, {"quantile": rule.quantile})


def llm_log(result: Any) -> pl.DataFrame:
    """A canonical request log of an LLM simulation (:class:`qcore.llm.LlmResult`), for
    :func:`qcore.rules.evaluate`: ``start`` (arrival), ``end`` (finish), ``latency``
    (e2e), ``outcome`` (``ok`` finished, ``error`` rejected, ``incomplete`` unfinished),
    ``ttft``, ``tpot``, ``tokens_in``, ``tokens_out``, ``replica``.

    >>> import polars as pl
    >>> from qcore import llm
    >>> from qcore.rules import evaluate
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=1e-4), num_blocks=1000)
    >>> r = llm.simulate(llm.Workload.poisson(rate=5.0, n=400, prompt_tokens=100,
    ...                                       output_tokens=20, seed=1), rep)
    >>> d = evaluate(llm_log(r), [{"id": "ttft", "version": "1", "owner": "serving",
    ...                            "metric": "ttft_p99", "threshold": 1.0}])
    >>> d.select("metric", "status", "action").row(0)
    ('ttft_quantile', 'pass', 'accept')
    """
    req: pl.DataFrame = result.requests
    return req.select(
        pl.col("arrival").cast(pl.Float64).alias("start"),
        pl.col("finish").cast(pl.Float64).alias("end"),
        pl.col("e2e").cast(pl.Float64).alias("latency"),
        pl.col("status").replace_strict({"finished": "ok", "rejected": "error",
                                         "unfinished": "incomplete"}).alias("outcome"),
        pl.col("ttft").cast(pl.Float64),
        pl.col("tpot").cast(pl.Float64),
        pl.col("prompt_tokens").alias("tokens_in"),
        pl.col("output_tokens").alias("tokens_out"),
        pl.col("replica"),
    )
