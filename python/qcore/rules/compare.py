"""Release gate: candidate against baseline, in the manner of automated canary analysis.

Each metric is classified ``High`` / ``Low`` / ``Pass`` / ``Nodata`` from a confidence
interval of the difference (candidate − baseline), following Netflix Kayenta's judge:
the metric is High only when the whole interval lies above ``tolerance × |estimated
difference|`` (so noise is not called a regression) *and* the candidate/baseline ratio
exceeds ``allowed_increase``. The score is ``Pass / (Pass + High + Low) × 100`` over the
metrics with data; a High on a ``critical`` metric sets it to 0; if half or more of the
metrics have no data the comparison fails. Verdict: score ≥ ``pass_score`` → pass,
≥ ``marginal_score`` → marginal, else fail (actions accept, escalate, rollback).

Intervals: latency quantiles (and the LLM quantiles ``ttft_pNN``, ``tpot_pNN``,
``itl_pNN``, through the same code) use distribution-free order-statistic intervals from the
Rust core (``qcore.quantile_ci``) on each side, combined conservatively
(``[cand_lo − base_hi, cand_hi − base_lo]``); error rates a normal interval of the
difference of two proportions; cost per 1k tokens a delta-method interval of each ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from qcore import _json
from qcore import _qcore as _qc
from qcore.exceptions import InvalidArgumentError
from qcore.rules import metrics as _m
from qcore.rules.engine import _as_logs, _qcore_version
from qcore.rules.model import _LLM_SHORTHAND, Rule, _quantile_from_shorthand
from qcore.rules.partials import metric_of

__all__ = ["CompareResult", "compare"]


@dataclass
class CompareResult:
    """Outcome of :func:`compare`: ``verdict`` (pass / marginal / fail), ``score``,
    ``action`` and a per-metric ``table`` (polars DataFrame)."""

    verdict: str
    score: float
    action: str
    table: pl.DataFrame
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "score": self.score, "action": self.action,
                "metrics": self.table.to_dicts(), "evidence": self.evidence}

    def to_json(self) -> str:
        return _json.dumps(self.to_dict())


_ACTION = {"pass": "accept", "marginal": "escalate", "fail": "rollback"}


def _classify(diff: float, lo: float | None, hi: float | None, ratio: float | None,
              tolerance: float, allowed_increase: float, allowed_decrease: float,
              direction: str) -> str:
    if lo is None or hi is None:
        return "Nodata"
    delta = tolerance * abs(diff)
    if direction in ("increase", "either") and lo > delta and lo > 0 and (ratio is None or ratio > allowed_increase):
        return "High"
    if direction in ("decrease", "either") and hi < -delta and hi < 0 and (ratio is None or ratio < 1.0 / allowed_decrease if allowed_decrease > 0 else True):
        return "Low"
    return "Pass"


def _latency(cand: pl.DataFrame, base: pl.DataFrame, q: float, conf: float, min_samples: int | None,
             metric: str = "latency_quantile") -> dict[str, Any]:
    """A quantile of both sides with their distribution-free intervals: latency, or an LLM
    quantile (``ttft_quantile``, ``tpot_quantile``, ``itl_quantile``)."""
    rule = Rule(id="_", metric=metric, quantile=q, threshold=0.0, confidence=conf,
                min_samples=min_samples)
    if metric != "latency_quantile":
        col = metric.split("_")[0]
        lacking = [side for side, f in (("candidate", cand), ("baseline", base)) if col not in f.columns]
        if lacking and col == "itl":
            raise InvalidArgumentError(f"metrics: the {' and the '.join(lacking)} log(s) have no itl column; "
                                       f"{_m.ITL_NEEDS}")
        if lacking:
            return {"candidate": None, "baseline": None, "n_candidate": 0, "n_baseline": 0, "diff": None,
                    "diff_lo": None, "diff_hi": None, "ratio": None,
                    "nodata_reason": f"no {col} column in the {' and the '.join(lacking)} log(s)"}
    a, b = metric_of(metric, cand, rule), metric_of(metric, base, rule)
    out: dict[str, Any] = {"candidate": a.value, "baseline": b.value, "n_candidate": a.n, "n_baseline": b.n}
    if a.n < a.min_n or b.n < b.min_n or None in (a.value, b.value, a.ci_lo, a.ci_hi, b.ci_lo, b.ci_hi):
        out.update(diff=None, diff_lo=None, diff_hi=None, ratio=None, nodata_reason=f"need {a.min_n} samples per side")
        return out
    out["diff"] = a.value - b.value  # type: ignore[operator]
    out["diff_lo"] = a.ci_lo - b.ci_hi  # type: ignore[operator]
    out["diff_hi"] = a.ci_hi - b.ci_lo  # type: ignore[operator]
    out["ratio"] = a.value / b.value if b.value else None  # type: ignore[operator]
    return out


def _error_rate(cand: pl.DataFrame, base: pl.DataFrame, conf: float, min_samples: int | None) -> dict[str, Any]:
    def counts(df: pl.DataFrame) -> tuple[int, int]:
        ok, err = df.select(ok=(pl.col("outcome") == "ok").sum(), err=(pl.col("outcome") == "error").sum()).row(0)
        return int(err or 0), int((ok or 0) + (err or 0))

    ka, na = counts(cand)
    kb, nb = counts(base)
    need = min_samples if min_samples is not None else 30
    out: dict[str, Any] = {"candidate": ka / na if na else None, "baseline": kb / nb if nb else None,
                           "n_candidate": na, "n_baseline": nb}
    if na < need or nb < need:
        out.update(diff=None, diff_lo=None, diff_hi=None, ratio=None, nodata_reason=f"need {need} requests per side")
        return out
    pa, pb = ka / na, kb / nb
    out["diff"] = pa - pb
    # the Agresti–Caffo interval of the difference (the core's), well behaved at zero counts
    out["diff_lo"], out["diff_hi"] = _qc.proportion_difference_interval(ka, na, kb, nb, conf)
    out["ratio"] = pa / pb if pb > 0 else (None if pa == 0 else math.inf)
    return out


def _cost(cand: pl.DataFrame, base: pl.DataFrame, conf: float, min_samples: int | None) -> dict[str, Any]:
    rule = Rule(id="_", metric="cost_per_1k_tokens", threshold=0.0, confidence=conf, min_samples=min_samples)
    if not all(c in cand.columns and c in base.columns for c in ("cost", "tokens_in", "tokens_out")):
        return {"candidate": None, "baseline": None, "n_candidate": 0, "n_baseline": 0, "diff": None,
                "diff_lo": None, "diff_hi": None, "ratio": None, "nodata_reason": "no cost/tokens columns"}
    a = metric_of("cost_per_1k_tokens", cand, rule)
    b = metric_of("cost_per_1k_tokens", base, rule)
    out: dict[str, Any] = {"candidate": a.value, "baseline": b.value, "n_candidate": a.n, "n_baseline": b.n}
    if None in (a.value, b.value, a.ci_lo, b.ci_lo) or a.n < a.min_n or b.n < b.min_n:
        out.update(diff=None, diff_lo=None, diff_hi=None, ratio=None, nodata_reason="no cost data")
        return out
    # Two independent normal intervals at the same level: the difference's half-width is
    # the root of the sum of the squared half-widths.
    half = math.hypot((a.ci_hi - a.ci_lo) / 2, (b.ci_hi - b.ci_lo) / 2)  # type: ignore[operator]
    d = a.value - b.value  # type: ignore[operator]
    out.update(diff=d, diff_lo=d - half, diff_hi=d + half,
               ratio=a.value / b.value if b.value else None)  # type: ignore[operator]
    return out


def compare(
    candidate: Any,
    baseline: Any,
    *,
    metrics: Sequence[str] = ("p50", "p99", "error_rate"),
    confidence: float = 0.98,
    tolerance: float = 0.25,
    allowed_increase: float = 1.0,
    allowed_decrease: float = 1.0,
    direction: str = "increase",
    critical: Sequence[str] = ("error_rate",),
    pass_score: float = 95.0,
    marginal_score: float = 75.0,
    min_samples: int | None = None,
    mapping: Any = None,
) -> CompareResult:
    """Compare a candidate's request log with a baseline's (release gate).

    Parameters
    ----------
    candidate, baseline
        Logs, frames or paths, as for :func:`qcore.rules.evaluate`.
    metrics
        ``pNN`` latency quantiles, the LLM quantiles ``ttft_pNN``, ``tpot_pNN`` and
        ``itl_pNN`` (the columns of :func:`qcore.rules.metrics.llm_log` or of an LLM
        request log; ``itl`` needs per-token data, else
        :class:`qcore.exceptions.InvalidArgumentError`), ``error_rate``,
        ``cost_per_1k_tokens``.
    confidence
        Confidence of each interval (Kayenta uses 0.98).
    tolerance
        The interval must clear ``tolerance × |difference|`` (Kayenta's 0.25 × HL).
    allowed_increase
        Minimum candidate/baseline ratio for a High (1.0: any significant increase).
    direction
        ``increase`` (higher is worse: latency, errors, cost), ``decrease`` or ``either``.

    Examples
    --------
    >>> import numpy as np, polars as pl, qcore.rules as qr
    >>> rng = np.random.default_rng(0)
    >>> def log(scale):
    ...     return pl.DataFrame({"ts": np.arange(4000.0), "latency": rng.exponential(scale, 4000),
    ...                          "status": [200] * 4000})
    >>> qr.compare(log(1.0), log(1.0), metrics=["p50", "p99"]).verdict
    'pass'
    >>> qr.compare(log(2.0), log(1.0), metrics=["p50", "p99"]).verdict
    'fail'
    """
    if not (0.5 <= confidence < 1.0):
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if direction not in ("increase", "decrease", "either"):
        raise ValueError(f"direction must be 'increase', 'decrease' or 'either', got {direction!r}")
    if not (0 <= marginal_score <= pass_score <= 100):
        raise ValueError(f"need 0 <= marginal_score <= pass_score <= 100, got {marginal_score}, {pass_score}")
    if not metrics:
        raise ValueError("metrics must name at least one metric")
    cand = _as_logs(candidate, mapping, None, "exclude", ())
    base = _as_logs(baseline, mapping, None, "exclude", ())
    rows = []
    for name in metrics:
        q = _quantile_from_shorthand(name)
        llm = _LLM_SHORTHAND.match(name)
        if q is not None:
            r = _latency(cand.frame, base.frame, q, confidence, min_samples)
        elif llm:
            r = _latency(cand.frame, base.frame, _quantile_from_shorthand(llm.group(2)) or 0.5, confidence,
                         min_samples, f"{llm.group(1)}_quantile")
        elif name == "error_rate":
            r = _error_rate(cand.frame, base.frame, confidence, min_samples)
        elif name == "cost_per_1k_tokens":
            r = _cost(cand.frame, base.frame, confidence, min_samples)
        else:
            raise ValueError(f"metrics: unknown metric {name!r}; use pNN, ttft_pNN, tpot_pNN, itl_pNN, error_rate "
                             "or cost_per_1k_tokens")
        cls = _classify(r["diff"] if r["diff"] is not None else 0.0, r["diff_lo"], r["diff_hi"], r["ratio"],
                        tolerance, allowed_increase, allowed_decrease, direction)
        rows.append({"metric": name, "baseline": r["baseline"], "candidate": r["candidate"],
                     "diff": r["diff"], "diff_lo": r["diff_lo"], "diff_hi": r["diff_hi"],
                     "ratio": r["ratio"] if r["ratio"] is None or math.isfinite(r["ratio"]) else None,
                     "n_baseline": r["n_baseline"], "n_candidate": r["n_candidate"],
                     "classification": cls, "critical": name in critical})
    table = pl.DataFrame(rows, schema={"metric": pl.String, "baseline": pl.Float64, "candidate": pl.Float64,
                                       "diff": pl.Float64, "diff_lo": pl.Float64, "diff_hi": pl.Float64,
                                       "ratio": pl.Float64, "n_baseline": pl.Int64, "n_candidate": pl.Int64,
                                       "classification": pl.String, "critical": pl.Boolean})
    classes = [r["classification"] for r in rows]
    nodata = classes.count("Nodata")
    scored = [c for c in classes if c != "Nodata"]
    if nodata * 2 >= len(classes):
        score = 0.0
    else:
        score = 100.0 * scored.count("Pass") / len(scored)
    if any(r["critical"] and r["classification"] in ("High", "Low") for r in rows):
        score = 0.0
    verdict = "pass" if score >= pass_score else ("marginal" if score >= marginal_score else "fail")
    ev = {"kind": "qcore.compare", "schema": 1, "verdict": verdict, "score": score,
          "params": {"metrics": list(metrics), "confidence": confidence, "tolerance": tolerance,
                     "allowed_increase": allowed_increase, "direction": direction,
                     "critical": list(critical), "pass_score": pass_score, "marginal_score": marginal_score},
          "candidate": cand.fingerprint().to_dict(), "baseline": base.fingerprint().to_dict(),
          "qcore_version": _qcore_version(), "metrics": rows}
    return CompareResult(verdict, score, _ACTION[verdict], table, ev)

