"""Metric values for rules, computed through qcore's Rust-backed primitives.

Each function takes a canonical log frame (see :mod:`qcore.logs`) for one group and
returns a :class:`MetricValue`. The heavy work (quantiles, order-statistic intervals,
arrival statistics, Little's law) runs in the Rust core over whole arrays; this module
only selects columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from qcore import _qcore as _qc
from qcore.exceptions import InvalidArgumentError

__all__ = [
    "MetricValue",
    "llm_log",
    "llm_quantile",
    "min_samples_for_quantile",
    "slo_met",
    "token_times",
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
        return (["start"] if rule.price else ["cost"]) + token_columns(rule)
    if m == "tokens_per_request":
        return token_columns(rule)
    if m in ("ttft_quantile", "tpot_quantile", "itl_quantile"):
        return ["start", m.split("_")[0], "outcome"]
    if m == "token_goodput":
        return ["start", "outcome", "tokens_out"] + [SLO_COLUMN[k] for k in rule.slo]
    return []


def token_columns(rule: Any) -> list[str]:
    """The token columns a rule's ``tokens`` counts: ``all`` (prompt and output) or ``output``."""
    return ["tokens_out"] if getattr(rule, "tokens", "all") == "output" else ["tokens_in", "tokens_out"]


#: the canonical column each objective of a ``token_goodput`` rule's ``slo`` bounds
SLO_COLUMN = {"ttft": "ttft", "tpot": "tpot", "e2e": "latency"}

#: why a log without per-token data cannot give ``itl_quantile`` (decisions and errors say it)
ITL_NEEDS = ("itl_quantile needs per-token data: an `itl` list column of each request's gaps between "
             "consecutive tokens (vLLM benchmark's `itls`), or qcore.rules.metrics.llm_log of a simulation "
             "run with trace=True; a per-request log knows only each request's mean gap, its TPOT "
             "(use tpot_pNN)")


def slo_met(slo: Any) -> pl.Expr:
    """True on the rows of a canonical log that count for goodput: finished (``ok``) and
    within every objective of ``slo`` (seconds: ``ttft``, ``tpot``, ``e2e``). A request of
    one output token has no TPOT and meets a TPOT objective; a row without the value an
    objective bounds (no TTFT, no latency) does not meet it."""
    e = pl.col("outcome") == "ok"
    for k, v in slo.items():
        c = pl.col(SLO_COLUMN[k])
        no_tpot = (pl.col("tokens_out") < 2) if k == "tpot" else pl.lit(False)
        e = e & ((c.is_null() & no_tpot) | (c <= float(v))).fill_null(False)
    return e


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (the core's
    :func:`qcore._qcore.wilson_interval`; ``(0, 1)`` when ``n`` is 0).

    >>> lo, hi = wilson_interval(1, 200, 0.95)
    >>> round(lo, 6), round(hi, 6)
    (0.000883, 0.027774)
    """
    return _qc.wilson_interval(int(k), max(int(n), 0), float(confidence))


def min_samples_for_quantile(q: float, confidence: float) -> int:
    """Smallest n at which a distribution-free two-sided CI for the q-quantile exists."""
    import qcore

    return int(qcore.min_sample_size(q, confidence=confidence))


#: The relative accuracy of the rules' latency sketches.
SKETCH_ACCURACY = 0.01


def quantile_with_ci(values: np.ndarray, q: float, confidence: float) -> tuple[float | None, float | None, float | None]:
    """(estimate, CI low, CI high) of ``values``: the rules' quantile metric over one array
    (:func:`qcore.rules.partials.quantile_with_ci`)."""
    from qcore.rules.partials import quantile_with_ci as of_values

    return of_values(values, q, confidence)


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


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- LLM metrics


def llm_values(frame: pl.DataFrame, column: str, include_errors: bool) -> np.ndarray:
    """The ``ttft``, ``tpot`` or ``itl`` values of a canonical log's rows (as
    :func:`latency_values` selects rows; rows without a value, such as one-token outputs
    for TPOT, are left out). For ``itl`` every gap of every selected request, pooled.

    Raises
    ------
    qcore.exceptions.InvalidArgumentError
        ``itl`` of a log without per-token data (:data:`ITL_NEEDS`).
    """
    if include_errors:
        sel = frame.filter(pl.col("outcome") != "incomplete")
    else:
        sel = frame.filter(pl.col("outcome") == "ok")
    if column == "itl":
        if "itl" not in frame.columns:
            raise InvalidArgumentError(ITL_NEEDS)
        gaps = sel.select(pl.col("itl").explode().cast(pl.Float64)).drop_nulls()
        return _col(gaps, "itl")
    return _col(sel.drop_nulls(column), column)


def llm_quantile(frame: pl.DataFrame, rule: Any) -> MetricValue:
    """``ttft_quantile`` / ``tpot_quantile`` / ``itl_quantile`` of a canonical log: the
    quantile of the column with its distribution-free interval (the rules' metric,
    :func:`qcore.rules.partials.metric_of`)."""
    from qcore.rules.partials import metric_of

    return metric_of(rule.metric, frame, rule)


def token_times(result: Any) -> list[npt.NDArray[np.float64]] | None:
    """The times at which each request of a traced simulation (``simulate(...,
    trace=True)``) emitted its tokens, replayed from the step trace: a request emits a
    token at the end of each step after which its computed tokens reach its prompt plus
    the tokens it emitted (LLM-ENGINE §3). ``None`` when the trace cannot say it exactly:
    no trace, a prefix-cache hit after a preemption (the trace does not record it), or a
    replay that does not give back every request's first-token time, finish time and
    token count and the run's gap count (a disaggregated fleet's hand-over)."""
    sched, steps, pre = result.scheduled, result.steps, result.preempted
    if sched is None or steps is None:
        return None
    req: pl.DataFrame = result.requests
    if int(result.replica_stats["hit_tokens"].sum()) != int(req["cached_tokens"].sum()):
        return None
    ends = steps.sort("step")["end"].to_numpy()
    prompt = req["prompt_tokens"].to_numpy().astype(np.int64)
    cached = req["cached_tokens"].to_numpy().astype(np.int64)
    preempted_at: dict[int, list[int]] = {}
    if pre is not None:
        for st, rq in pre.select("step", "request").iter_rows():
            preempted_at.setdefault(int(rq), []).append(int(st))
    s = sched.select(pl.col("request").cast(pl.Int64), pl.col("step").cast(pl.Int64),
                     pl.col("tokens").cast(pl.Int64)).sort(["request", "step"], maintain_order=True)
    out: list[npt.NDArray[np.float64]] = [np.zeros(0) for _ in range(req.height)]
    for (rq,), g in s.group_by(["request"], maintain_order=True):
        r = int(rq)
        st, tok = g["step"].to_numpy(), g["tokens"].to_numpy()
        if r not in preempted_at:   # computed = hit + Σ tokens; every step from the prompt's last emits
            emit = cached[r] + np.cumsum(tok) >= prompt[r]
            out[r] = ends[st[emit]]
            continue
        cuts = sorted(preempted_at[r])
        times: list[float] = []
        computed, ci = int(cached[r]), 0
        for a, n in zip(st.tolist(), tok.tolist(), strict=True):
            while ci < len(cuts) and cuts[ci] <= a:
                computed, ci = 0, ci + 1
            computed += n
            if computed == prompt[r] + len(times):
                times.append(float(ends[a]))
        out[r] = np.asarray(times)
    # the replay must give back the engine's own records
    count = np.array([t.size for t in out], dtype=np.int64)
    if not np.array_equal(count, req["output_tokens"].to_numpy()):
        return None
    first = np.array([t[0] if t.size else np.nan for t in out])
    last = np.array([t[-1] if t.size else np.nan for t in out])
    fin = req["status"].to_numpy() == "finished"
    ft = req["first_token"].cast(pl.Float64).to_numpy()
    fn = req["finish"].cast(pl.Float64).to_numpy()
    has = count > 0
    if not (np.array_equal(first[has], ft[has]) and np.array_equal(last[fin], fn[fin])):
        return None
    if int(np.maximum(count - 1, 0).sum()) != int(result.itl.count):
        return None
    return out


def llm_log(result: Any, *, itl: bool | None = None) -> pl.DataFrame:
    """A canonical request log of an LLM simulation (:class:`qcore.llm.LlmResult`), for
    :func:`qcore.rules.evaluate`: ``start`` (arrival), ``end`` (finish), ``latency``
    (e2e), ``outcome`` (``ok`` finished, ``error`` rejected, ``incomplete`` unfinished),
    ``ttft``, ``tpot``, ``tokens_in``, ``tokens_out``, ``replica``, and ``itl`` (each
    request's gaps between consecutive tokens, from :func:`token_times`) when the run was
    traced.

    ``itl``: ``None`` adds the column when the trace gives it exactly, ``True`` requires
    it (:class:`qcore.exceptions.InvalidArgumentError` naming ``itl_quantile``
    otherwise), ``False`` leaves it out.

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
    times = token_times(result) if itl is not False else None
    if itl is True and times is None:
        why = ("the run was not traced (simulate(..., trace=True))" if result.scheduled is None
               else "its step trace does not give every token's time exactly")
        raise InvalidArgumentError(f"llm_log(result, itl=True): {why}; {ITL_NEEDS}")
    req: pl.DataFrame = result.requests
    out = req.select(
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
    if times is not None:
        gaps = [np.diff(t).tolist() for t in times]
        out = out.with_columns(pl.Series("itl", gaps, dtype=pl.List(pl.Float64)))
    return out
