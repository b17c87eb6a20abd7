"""Tail-latency statistics: distribution-free quantile confidence intervals (from raw
samples and from a QuantileSketch), minimum sample sizes, fan-out amplification, SLO
attainment and error-budget consumption."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from qcore import _qcore as _qc
from qcore._convert import as_f64
from qcore.exceptions import InvalidArgumentError

__all__ = [
    "QuantileCI",
    "QuantileRanks",
    "SLOAttainment",
    "fanout_probability",
    "fanout_quantile",
    "min_sample_size",
    "quantile_ci",
    "quantile_ranks",
    "sketch_quantile_ci",
    "slo_attainment",
    "widen_for_sketch",
]


class QuantileCI(NamedTuple):
    """``(lo, estimate, hi)``; a bound is ``None`` when the sample is too small for it."""

    lo: float | None
    estimate: float
    hi: float | None


@dataclass(frozen=True)
class QuantileRanks:
    """1-based order-statistic ranks ``[x_(lower), x_(upper)]`` of the interval and its exact
    coverage ``P(lower ≤ B < upper)``, ``B ~ Binomial(n, q)``."""

    n: int
    lower: int | None
    upper: int | None
    coverage: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def quantile_ranks(n: int, q: float, confidence: float = 0.95) -> QuantileRanks:
    """Ranks of the distribution-free confidence interval for the q-quantile of ``n`` values.

    ``lower − 1`` is the largest k with ``P(B ≤ k) ≤ α/2`` and ``upper − 1`` the smallest k
    with ``P(B ≤ k) ≥ 1 − α/2``, where ``B ~ Binomial(n, q)``.

    Examples
    --------
    >>> import qcore
    >>> r = qcore.quantile_ranks(10, 0.5)
    >>> r.lower, r.upper, round(r.coverage, 4)
    (2, 9, 0.9785)
    """
    if int(n) != n or n < 0:
        raise InvalidArgumentError(f"n must be a non-negative integer, got {n}")
    return QuantileRanks(**_qc.quantile_ranks(int(n), float(q), float(confidence)))


def quantile_ci(values: Any, q: float, confidence: float = 0.95) -> QuantileCI:
    """Distribution-free confidence interval for the q-quantile, from order statistics.

    The bounds are order statistics ``x_(l) ≤ x_(u)`` chosen from the binomial distribution
    of the number of values below the true quantile (see :func:`quantile_ranks`); the
    coverage is at least ``confidence`` for any continuous distribution. The estimate is
    ``numpy.quantile(values, q)`` (linear interpolation). Runs in O(n) by selection.

    Returns
    -------
    QuantileCI
        ``(lo, estimate, hi)``; ``lo``/``hi`` are ``None`` when the sample is too small for
        that bound (see :func:`min_sample_size`).

    Raises
    ------
    ValueError
        Empty input, NaN/inf values, q or confidence outside (0, 1).

    Examples
    --------
    >>> import numpy as np, qcore
    >>> x = np.random.default_rng(0).exponential(1.0, 10_000)
    >>> lo, est, hi = qcore.quantile_ci(x, 0.99)
    >>> lo < est < hi
    True
    """
    lo, est, hi, _ = _qc.quantile_ci(
        as_f64(values, "values"), float(q), float(confidence)
    )
    return QuantileCI(lo, est, hi)


def sketch_quantile_ci(sketch: Any, q: float, confidence: float = 0.95) -> QuantileCI:
    """Confidence interval for the q-quantile from a :class:`qcore.QuantileSketch`.

    The order-statistic ranks of :func:`quantile_ranks` (for ``n = floor(sketch.count)``)
    are read from the sketch at the levels ``(rank − 1) / (n − 1)``, and each bound is
    widened by the sketch's relative accuracy α (a returned value x̂ is within α·|x| of the
    true order statistic x, so x lies in ``[x̂ − α|x̂|/(1−α), x̂ + α|x̂|/(1−α)]``).

    Returns
    -------
    QuantileCI
        ``(lo, estimate, hi)`` with ``estimate = sketch.quantile(q)`` inside ``[lo, hi]``;
        a bound is ``None`` when the sketch holds too few values for it.

    Raises
    ------
    ValueError
        Empty sketch, q or confidence outside (0, 1).

    Examples
    --------
    >>> import numpy as np, qcore
    >>> sk = qcore.QuantileSketch(relative_accuracy=0.01)
    >>> sk.add(np.random.default_rng(0).exponential(1.0, 10_000))
    >>> lo, est, hi = qcore.sketch_quantile_ci(sk, 0.99)
    >>> lo < est < hi
    True
    """
    count = float(sketch.count)
    if count < 1:
        raise InvalidArgumentError("sketch is empty")
    lo_level, hi_level, _ = _qc.sketch_ci_levels(count, float(q), float(confidence))
    alpha = float(sketch.relative_accuracy)
    widen = alpha / (1.0 - alpha)
    est = float(sketch.quantile(float(q)))
    lo = hi = None
    if lo_level is not None:
        x = float(sketch.quantile(lo_level))
        lo = x - widen * abs(x)
    if hi_level is not None:
        x = float(sketch.quantile(hi_level))
        hi = x + widen * abs(x)
    # the estimate's own rank can lie outside the interval's (a p99 of a few values):
    # widen to hold it (coverage only rises)
    lo, hi = widen_for_sketch(lo, hi, 0.0, est)
    return QuantileCI(lo, est, hi)


def widen_for_sketch(lo: float | None, hi: float | None, relative_accuracy: float,
                     estimate: float | None = None) -> tuple[float | None, float | None]:
    """An interval ``[lo, hi]`` of the exact order statistics widened by a sketch's relative
    accuracy α (``lo − α|lo|``, ``hi + α|hi|``), and further to hold ``estimate`` where
    the estimate's order statistic lies outside the interval's ranks (a p99 of a few
    values). Widening only raises the coverage, so the interval stays valid; report and
    rules pair a sketch's estimate with an exact interval through this, so the estimate
    never falls outside its own interval (the core's ``tail::widen_for_sketch``).

    Raises ``ValueError`` naming ``relative_accuracy`` outside [0, 1), or a NaN bound.

    >>> widen_for_sketch(22.0, 23.0, 0.01)
    (21.78, 23.23)
    >>> widen_for_sketch(2.0, None, 0.01, estimate=1.0)
    (1.0, None)
    """
    return _qc.widen_for_sketch(_opt(lo), _opt(hi), float(relative_accuracy), _opt(estimate))


def _opt(x: float | None) -> float | None:
    return None if x is None else float(x)


def min_sample_size(q: float, confidence: float = 0.95, two_sided: bool = True) -> int:
    """Smallest sample at which a distribution-free interval for the q-quantile exists.

    Two-sided needs ``qⁿ ≤ α/2`` (an upper bound exists) and ``(1 − q)ⁿ ≤ α/2``; one-sided
    (an upper bound only) needs ``qⁿ ≤ α``. Below it, a p99 or p999 estimate is not
    evidence of anything at that confidence.

    Examples
    --------
    >>> import qcore
    >>> qcore.min_sample_size(0.99), qcore.min_sample_size(0.99, two_sided=False)
    (368, 299)
    >>> qcore.min_sample_size(0.999)
    3688
    """
    return int(_qc.min_sample_size(float(q), float(confidence), bool(two_sided)))


def fanout_probability(n: float, q: float) -> float:
    """Probability that a request fanned out to ``n`` independent back-ends waits for at least
    one back-end latency above their q-quantile: ``1 − qⁿ``.

    Examples
    --------
    >>> import qcore
    >>> round(qcore.fanout_probability(100, 0.99), 3)
    0.634
    """
    return float(_qc.fanout_probability(float(n), float(q)))


def fanout_quantile(n: float, q: float) -> float:
    """The per-back-end quantile level a fan-out of ``n`` needs so that the end-to-end
    q-quantile meets the same SLO: ``q^(1/n)``.

    Examples
    --------
    >>> import qcore
    >>> round(qcore.fanout_quantile(100, 0.99), 6)   # p99 over 100 back-ends: each at p99.99
    0.9999
    """
    return float(_qc.fanout_quantile(float(n), float(q)))


@dataclass(frozen=True)
class SLOAttainment:
    """Result of :func:`slo_attainment`."""

    count: int
    good: int
    attainment: float
    attainment_ci: tuple[float, float]
    target: float
    budget_consumed: float
    budget_remaining: float
    met: bool
    met_confidently: bool
    violated_confidently: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def slo_attainment(
    latencies: Any, slo: float, target: float = 0.99, confidence: float = 0.95
) -> SLOAttainment:
    """Share of requests meeting a latency SLO, and the error budget it consumes.

    Parameters
    ----------
    latencies : array-like of float
        Latency of each request (any unit, the same as ``slo``).
    slo : float
        Latency objective; a request is good when its latency is ≤ ``slo``.
    target : float
        Required share of good requests (for example 0.99).
    confidence : float
        Level of the Clopper–Pearson interval of the attainment.

    Returns
    -------
    SLOAttainment
        ``attainment`` = good / count with ``attainment_ci``; ``budget_consumed`` =
        (1 − attainment) / (1 − target) (above 1: overspent) and ``budget_remaining``;
        ``met`` (attainment ≥ target), ``met_confidently`` (the whole interval ≥ target),
        ``violated_confidently`` (the whole interval < target).

    Raises
    ------
    ValueError
        Empty input, NaN latencies, NaN slo, target or confidence outside (0, 1).

    Examples
    --------
    >>> import qcore
    >>> r = qcore.slo_attainment([0.1, 0.2, 0.3, 1.5], slo=1.0, target=0.9)
    >>> r.attainment, round(r.budget_consumed, 2)
    (0.75, 2.5)
    """
    if isinstance(slo, float) and math.isnan(slo):
        raise InvalidArgumentError("slo must not be NaN")
    d = _qc.slo_attainment(
        as_f64(latencies, "latencies"), float(slo), float(target), float(confidence)
    )
    d["attainment_ci"] = tuple(d["attainment_ci"])
    return SLOAttainment(**d)
