"""Capacity plans for an LLM fleet under TTFT/TPOT/E2E objectives, priced.

:func:`plan` finds the fewest replicas (and GPUs, given tensor parallelism) whose every
SLO quantile is within its objective, over the configurations asked for (router,
``max_num_seqs``, ``max_num_batched_tokens``, hardware); :func:`sustained_rate` is the
highest arrival rate a fleet sustains under the same objectives (DistServe's goodput, by
bisection with common random numbers); :func:`ceilings` gives the analytic throughput
ceilings of a replica (LLM-ENGINE.md §9) beside it; :func:`prices` is the editable price
table ($/GPU-hour with the source and date of every default).

Each candidate's quantiles come with confidence intervals:

- a **trace** (a :class:`~qcore.llm.Workload`) is replayed once per candidate; the
  interval of each quantile is the distribution-free order-statistic interval over the
  trace's requests, the requests viewed as a sample, as the rules compute it
  (:func:`qcore.rules.metrics.quantile_with_ci`), so :meth:`Plan.decide` agrees;
- a **synthetic workload** (a callable ``seed → Workload``) is replicated
  (:func:`qcore.llm.replicate`) with the same seeds for every candidate (common random
  numbers); the interval is the Student-t interval of the replications' quantile.

The decision is taken on the side of the interval that protects the SLO: a candidate
meets an objective only when the **upper** end of its interval is within it
(``decide_on="upper"``, the default), as a release gate would decide; ``"estimate"``
decides on the point estimate. Each objective of each candidate also gets a verdict:
``meets`` (upper end within), ``fails`` (lower end beyond), ``straddles`` (the interval
holds the objective: not proven either way), so a plan says when the next smaller fleet
is not proven to fail.

A request that never gets its first token (rejected: it can never fit a replica's KV
cache; or unfinished) counts as an infinite TTFT, TPOT and E2E: it misses every
objective.

>>> from qcore import llm
>>> rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000)
>>> w = llm.Workload.poisson(rate=80.0, n=4000, prompt_tokens=500, output_tokens=50, seed=1)
>>> p = llm.plan(w, {"ttft_p99": 0.5, "tpot_p99": 0.05}, rep)
>>> p.found, p.chosen.replicas, p.decide_on
(True, 2, 'upper')
>>> [(c.replicas, c.meets) for c in p.candidates]
[(1, False), (2, True)]
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import polars as pl

from qcore import _qcore
from qcore.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from qcore.llm import Disaggregated, Fleet, KvTransfer, LlmResult, Replica, Workload

__all__ = [
    "Candidate",
    "Ceilings",
    "Objective",
    "Plan",
    "SustainedRate",
    "ceilings",
    "cost_per_mtok",
    "fleet_size",
    "gpu_price",
    "objectives",
    "plan",
    "plan_disaggregated",
    "prices",
    "sustained_rate",
]

#: What :func:`plan` accepts as a workload: a trace, or ``seed → Workload``.
WorkloadSpec = Union["Workload", Callable[[int], "Workload"]]

_METRICS = ("ttft", "tpot", "e2e")
# A request with no value (never got a token) stands for +inf in the order statistics.
_MISSING = 1e300
_PRICE_COLUMNS = ("gpu", "provider", "price_per_gpu_hour")


# --------------------------------------------------------------------------- objectives


@dataclass(frozen=True)
class Objective:
    """One SLO quantile: ``metric`` (ttft, tpot, e2e) at ``quantile`` ≤ ``limit`` seconds.

    >>> Objective.parse("tpot_p99", 0.1)
    Objective(metric='tpot', quantile=0.99, limit=0.1)
    """

    metric: str
    quantile: float
    limit: float

    @property
    def name(self) -> str:
        """The rules' name of the quantile (``ttft_p99``)."""
        from qcore.rules.engine import _qlabel

        return f"{self.metric}_p{_qlabel(self.quantile)}"

    @classmethod
    def parse(cls, key: str, limit: float) -> Objective:
        """``"ttft_p99"``, ``"tpot_p90"``, ``"e2e_p999"`` (the rules' pNN shorthand)."""
        from qcore.rules.model import _quantile_from_shorthand

        metric, _, q = str(key).partition("_")
        quant = _quantile_from_shorthand(q) if metric in _METRICS else None
        if quant is None or not 0 < quant < 1:
            raise InvalidArgumentError(
                f"slo key {key!r} must be ttft_pNN, tpot_pNN or e2e_pNN (e.g. ttft_p99)")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not (
                math.isfinite(limit) and limit > 0):
            raise InvalidArgumentError(f"slo {key!r} must be a finite number of seconds > 0, "
                                       f"got {limit!r}")
        return cls(metric, quant, float(limit))


def objectives(slo: Mapping[str, float] | Sequence[Objective]) -> tuple[Objective, ...]:
    """The objectives of an SLO mapping (``{"ttft_p99": 1.0, "tpot_p99": 0.1}``).

    >>> [o.name for o in objectives({"ttft_p99": 1.0, "e2e_p50": 20})]
    ['ttft_p99', 'e2e_p50']
    """
    if isinstance(slo, Mapping):
        out = tuple(Objective.parse(k, v) for k, v in slo.items())
    else:
        out = tuple(slo)
        if not all(isinstance(o, Objective) for o in out):
            raise InvalidArgumentError("slo must be a mapping like {'ttft_p99': 1.0}")
    if not out:
        raise InvalidArgumentError("slo needs at least one objective (e.g. {'ttft_p99': 1.0})")
    if len({o.name for o in out}) != len(out):
        raise InvalidArgumentError("slo names an objective twice")
    return out


# --------------------------------------------------------------------------- prices


def prices(source: str | os.PathLike[str] | pl.DataFrame | None = None) -> pl.DataFrame:
    """The GPU price table: one row per (``gpu`` preset, ``provider``) with
    ``price_per_gpu_hour`` ($), and for the shipped defaults the instance, its price,
    the date of the figure (``as_of``) and its ``source``.

    ``source``: a CSV file or a frame with at least ``gpu``, ``provider`` and
    ``price_per_gpu_hour``; ``None`` is the table shipped in
    ``qcore/data/llm/gpu_prices.csv`` (edit a copy for your own prices).

    >>> t = prices()
    >>> t.filter(t["gpu"] == "h100-80gb").select("provider", "price_per_gpu_hour", "as_of").row(0)
    ('aws', 12.29, '2023-07-27')
    """
    if source is None:
        text = resources.files("qcore").joinpath("data/llm/gpu_prices.csv").read_text(
            encoding="utf-8")
        rows = list(csv.DictReader(text.splitlines()))
        df = pl.DataFrame(rows)
    elif isinstance(source, pl.DataFrame):
        df = source
    else:
        df = pl.read_csv(os.fspath(source), infer_schema_length=0)
    missing = [c for c in _PRICE_COLUMNS if c not in df.columns]
    if missing:
        raise InvalidArgumentError(f"prices lacks the column(s) {missing} (needs gpu, provider, "
                                   "price_per_gpu_hour)")
    try:
        df = df.with_columns(pl.col("price_per_gpu_hour").cast(pl.Float64))
    except pl.exceptions.PolarsError:
        raise InvalidArgumentError("prices: price_per_gpu_hour must be numbers") from None
    bad = df.filter(~(pl.col("price_per_gpu_hour").is_finite() & (pl.col("price_per_gpu_hour") >= 0)))
    if bad.height:
        raise InvalidArgumentError(f"prices: price_per_gpu_hour must be finite and >= 0 "
                                   f"({bad['gpu'][0]!r})")
    return df


def gpu_price(gpu: str, provider: str | None = None,
              table: pl.DataFrame | None = None) -> float:
    """$/GPU-hour of a GPU preset in the price table (the first row of ``provider``, or
    the first row of the GPU).

    >>> gpu_price("l4-24gb")
    0.8048
    """
    t = prices() if table is None else prices(table)
    sel = t.filter(pl.col("gpu") == gpu)
    if provider is not None:
        sel = sel.filter(pl.col("provider") == provider)
    if sel.height == 0:
        known = sorted(set(t["gpu"].to_list()))
        raise InvalidArgumentError(
            f"gpu {gpu!r} has no price{'' if provider is None else f' from {provider!r}'} in "
            f"the price table (priced: {', '.join(known)}); pass prices= with a row for it")
    return float(sel["price_per_gpu_hour"][0])


# --------------------------------------------------------------------------- ceilings


@dataclass(frozen=True)
class Ceilings:
    """Analytic request-rate ceilings of **one** replica on a workload's token mix
    (LLM-ENGINE.md §9), requests/s, each from a steady full step:

    - ``token_budget`` (Li–Dai–Peng): ``budget / (d · E[P + O − 1])``, ``d`` the step
      time of a full budget of the workload's prefill/decode mix;
    - ``kv`` (Nie–Si–Zhou): ``M / (d · E[P·O + O²/2])``, ``M`` the KV tokens, ``d`` the
      step time with the cache full of decodes;
    - ``max_num_seqs``: ``S / (d · E[O])``, ``d`` the step time of ``S`` decodes.

    ``binding`` names the lowest; ``rate`` is it. With a constant step time these are
    the closed forms of the engine's saturation tests. A fleet of R replicas has R times
    the rate at best (a perfect router).
    """

    token_budget: float
    kv: float
    max_num_seqs: float
    step_time: dict[str, float]
    binding: str
    rate: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


def ceilings(workload: Workload, replica: Replica) -> Ceilings:
    """The analytic ceilings of ``replica`` on ``workload``'s mean token counts.

    >>> from qcore import llm
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.02), num_blocks=4000,
    ...                   max_num_batched_tokens=2048)
    >>> w = llm.Workload.poisson(rate=1.0, n=100, prompt_tokens=500, output_tokens=50)
    >>> round(ceilings(w, rep).token_budget, 2)   # 2048 / (0.02 · 549)
    186.52
    """
    from qcore.llm import Replica, Workload

    if not isinstance(workload, Workload) or len(workload) == 0:
        raise InvalidArgumentError("workload must be a non-empty qcore.llm.Workload")
    if not isinstance(replica, Replica):
        raise InvalidArgumentError("replica must be a qcore.llm.Replica")
    c = _qcore._llm_ceilings(workload.prompt_tokens.astype(np.int64), workload.output_tokens.astype(np.int64),
                             replica._spec(), replica.step_time._spec())
    return Ceilings(c["token_budget"], c["kv"], c["max_num_seqs"],
                    dict(zip(("token_budget", "kv", "max_num_seqs"), c["steps"], strict=True)), c["binding"],
                    c["rate"])


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    """One evaluated fleet: its configuration, each objective's quantile with its interval
    and verdict, and its cost.

    ``quantiles``: name → ``(lo, estimate, hi)`` seconds (``inf`` when requests never got
    a token; ``None`` bounds when the sample is too small for them). ``verdicts``: name →
    ``meets`` / ``straddles`` / ``fails``. ``meets``: every objective met on the plan's
    ``decide_on`` side. ``cost_per_mtok``: $ per million output tokens;
    ``gpu_hours``: GPUs × the workload's span of arrivals (the hours of traffic served; the
    mean over replications); ``dollars_per_hour``: the fleet's price.
    """

    config: dict[str, Any]
    replicas: int
    gpus: int
    quantiles: dict[str, tuple[float | None, float, float | None]]
    verdicts: dict[str, str]
    meets: bool
    token_throughput: float
    request_throughput: float
    rejected: int
    dollars_per_hour: float
    cost_per_mtok: float
    gpu_hours: float
    runs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite figures become ``null`` through :mod:`qcore._json`)."""
        d = dataclasses.asdict(self)
        d["quantiles"] = {k: {"lo": v[0], "estimate": v[1], "hi": v[2]}
                          for k, v in self.quantiles.items()}
        return d


def _verdict(ci: tuple[float | None, float, float | None], limit: float, decide_on: str
             ) -> tuple[str, bool]:
    lo, est, hi = ci
    if hi is not None and hi <= limit:
        v = "meets"
    elif lo is not None and lo > limit:
        v = "fails"
    else:
        v = "straddles"
    ok = (hi is not None and hi <= limit) if decide_on == "upper" else est <= limit
    return v, ok


def _trace_ci(res: LlmResult, multi: np.ndarray, o: Objective, confidence: float
              ) -> tuple[float | None, float, float | None]:
    """The quantile and its interval as the rules compute them
    (:func:`qcore.rules.metrics.quantile_with_ci`: the sketch's estimate in the exact
    order statistics' interval, widened by the sketch's accuracy), so a plan and a rule
    on the same run agree. With requests that never got a value (rejected, unfinished)
    those count as +inf: the exact order statistics (:func:`qcore.quantile_ci`) then."""
    from qcore.rules.metrics import quantile_with_ci
    from qcore.tail import quantile_ci

    col = res.requests[o.metric].fill_null(_MISSING).to_numpy().astype(np.float64)
    if o.metric == "tpot":      # defined for O > 1 only; a missing one counts as a miss
        col = col[multi]
    col = np.where(np.isfinite(col), col, _MISSING)
    if col.size == 0:
        return (None, math.nan, None)
    if not (col >= _MISSING).any():
        e, lo, hi = quantile_with_ci(col, o.quantile, confidence)
        return (lo, math.nan if e is None else float(e), hi)
    lo, est, hi = quantile_ci(col, o.quantile, confidence)

    def back(x: float | None) -> float | None:
        return None if x is None else (math.inf if x >= _MISSING / 10 else float(x))

    b = back(est)
    return (back(lo), math.nan if b is None else b, back(hi))


def fleet_size(replica: Replica, fleet: Fleet | Disaggregated) -> tuple[int, int, float]:
    """``(replicas, GPUs, $ per hour)`` of a fleet of ``replica`` (a :class:`Fleet`) or of
    disaggregated pools (``replica`` the prefill replica, ``fleet.decode`` the decode one).

    >>> from qcore import llm
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.01), num_blocks=100, gpus=2, price_per_hour=3.0)
    >>> fleet_size(rep, llm.Disaggregated(decode=rep, prefill_replicas=1, decode_replicas=3))
    (4, 8, 24.0)
    """
    from qcore.llm import Disaggregated

    if isinstance(fleet, Disaggregated):
        p, d, dec = fleet.prefill_replicas, fleet.decode_replicas, fleet.decode
        return (p + d, p * replica.gpus + d * dec.gpus,
                p * replica.gpus * replica.price_per_hour + d * dec.gpus * dec.price_per_hour)
    return (fleet.replicas, fleet.replicas * replica.gpus,
            fleet.replicas * replica.gpus * replica.price_per_hour)


def cost_per_mtok(dollars_per_hour: float, tokens_per_s: float) -> float:
    """$ per million output tokens of a fleet costing ``dollars_per_hour`` that serves
    ``tokens_per_s`` (NaN without throughput)."""
    return dollars_per_hour / (tokens_per_s * 3600.0) * 1e6 if tokens_per_s > 0 else math.nan


def _evaluate(workload: WorkloadSpec, replica: Replica, fleet: Fleet | Disaggregated,
              objs: tuple[Objective, ...], replications: int, seed: int, confidence: float,
              decide_on: str, config: dict[str, Any]) -> Candidate:
    """One candidate: a trace replay (order-statistic intervals) or replications with
    common random numbers (Student-t intervals)."""
    from qcore.llm import Workload, replicate, simulate

    n_rep, gpus, price = fleet_size(replica, fleet)
    qs: dict[str, tuple[float | None, float, float | None]] = {}
    if isinstance(workload, Workload):
        res = simulate(workload, replica, fleet)
        multi = workload.output_tokens > 1
        for o in objs:
            qs[o.name] = _trace_ci(res, multi, o, confidence)
        tput, rtput, rej, runs = (res.token_throughput, res.request_throughput, res.rejected, 1)
        cost = cost_per_mtok(price, tput) if price > 0 else math.nan
        hours = gpus * float(workload.arrival[-1] - workload.arrival[0]) / 3600.0
    else:
        quants = tuple(sorted({o.quantile for o in objs}))
        t = replicate(workload, replica, fleet, replications=replications, seed=seed,
                      confidence=confidence, quantiles=quants)
        rows = {r["metric"]: r for r in t.iter_rows(named=True)}
        for o in objs:
            r = rows[o.name]
            vals = np.asarray(r["values"], dtype=np.float64)
            if np.isnan(vals).any():     # a replication where no request got a token
                qs[o.name] = (math.inf, math.inf, math.inf)
            else:
                qs[o.name] = (float(r["lo"]), float(r["mean"]), float(r["hi"]))
        rej = int(sum(rows["rejected"]["values"]))
        if rej:                          # rejected requests miss every objective
            qs = {k: (math.inf, math.inf, math.inf) for k in qs}
        tput = float(rows["token_throughput"]["mean"])
        rtput = float(rows["request_throughput"]["mean"])
        vals = np.asarray(rows["token_throughput"]["values"], dtype=np.float64)
        cost = (float(np.mean([cost_per_mtok(price, v) for v in vals])) if price > 0 else math.nan)
        dur = [float(w.arrival[-1] - w.arrival[0]) if len(w) else 0.0
               for w in (workload(seed + i) for i in range(replications))]
        hours = gpus * float(np.mean(dur)) / 3600.0
        runs = replications
    verdicts: dict[str, str] = {}
    ok_all = True
    for o in objs:
        v, ok = _verdict(qs[o.name], o.limit, decide_on)
        verdicts[o.name] = v
        ok_all = ok_all and ok
    return Candidate(config=dict(config, replicas=n_rep), replicas=n_rep,
                     gpus=gpus, quantiles=qs, verdicts=verdicts,
                     meets=ok_all, token_throughput=tput, request_throughput=rtput,
                     rejected=rej, dollars_per_hour=price, cost_per_mtok=cost,
                     gpu_hours=hours, runs=runs)


def _rate_of(w: Workload) -> float:
    if len(w) < 2 or w.arrival[-1] <= w.arrival[0]:
        return math.nan
    return (len(w) - 1) / float(w.arrival[-1] - w.arrival[0])


@dataclass(frozen=True)
class _Task:
    """One configuration's replica search (a picklable unit of work for Dask)."""

    workload: Any
    replica: Replica
    fleet: Fleet
    objs: tuple[Objective, ...]
    replications: int
    seed: int
    confidence: float
    decide_on: str
    config: dict[str, Any]
    lo: int
    hi: int


def _owned(task: _Task) -> _Task:
    """The task with its arrays copied into memory of their own: arrays that arrive from
    another process (dask) may be views into a receive buffer, which the core refuses."""
    from qcore.llm import TableStepTime, Workload

    w = task.workload
    if isinstance(w, Workload):
        def cp(a: Any) -> Any:
            return None if a is None else np.array(a, copy=True)

        w = Workload(cp(w.arrival), cp(w.prompt_tokens), cp(w.output_tokens),
                     cp(w.hash_offsets), cp(w.hash_ids), w.hash_block_tokens)
    rep = task.replica
    st = rep.step_time
    if isinstance(st, TableStepTime):
        rep = dataclasses.replace(rep, step_time=TableStepTime(
            *(np.array(getattr(st, k), copy=True) for k in
              ("prefill_tokens", "prefill_seconds", "decode_batch", "decode_seconds"))))
    return dataclasses.replace(task, workload=w, replica=rep)


def _search(task: _Task, progress: Callable[[str], None] | None = None) -> list[Candidate]:
    """The smallest replica count in ``[lo, hi]`` that meets, assuming more replicas
    never hurt: start at the analytic lower bound, gallop up, then bisect. Returns the
    candidates evaluated, by replica count."""
    from qcore.llm import Workload

    task = _owned(task)
    w0 = task.workload if isinstance(task.workload, Workload) else task.workload(task.seed)
    start = task.lo
    try:
        c = ceilings(w0, task.replica)
        rate = _rate_of(w0)
        if math.isfinite(rate) and c.rate > 0:
            start = max(task.lo, min(task.hi, math.ceil(rate / c.rate)))
    except InvalidArgumentError:
        pass
    seen: dict[int, Candidate] = {}

    def ev(r: int) -> bool:
        if r not in seen:
            fl = dataclasses.replace(task.fleet, replicas=r)
            seen[r] = _evaluate(task.workload, task.replica, fl, task.objs, task.replications,
                                task.seed, task.confidence, task.decide_on, task.config)
            if progress is not None:
                cand = seen[r]
                progress(f"{_label(task.config)} replicas={r}: "
                         f"{'meets' if cand.meets else 'misses'} "
                         + ", ".join(f"{k} {_fmt_ci(v)}" for k, v in cand.quantiles.items()))
        return seen[r].meets

    _smallest(ev, task.lo, task.hi, start)
    return [seen[k] for k in sorted(seen)]


def _label(config: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items() if k != "replicas")


def _fmt_ci(ci: tuple[float | None, float, float | None]) -> str:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    return f"{f(ci[1])} [{f(ci[0])}, {f(ci[2])}]"


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """The result of :func:`plan`.

    ``chosen``: the fewest GPUs (then the lowest $/hour, then the first configuration
    given) among the candidates that meet every objective, ``None`` when none does within
    the bounds. ``candidates``: every fleet evaluated, by configuration then replicas.
    ``smaller``: the chosen configuration with one replica fewer (when evaluated), whose
    verdicts say whether it fails or only straddles an objective. ``decide_on``: the side
    of the interval decided on (``upper``: protects the SLO). ``ceilings``: the analytic
    per-replica ceilings of the chosen configuration; ``notes``: plain-language caveats.
    """

    objectives: tuple[Objective, ...]
    decide_on: str
    confidence: float
    method: str
    candidates: list[Candidate]
    chosen: Candidate | None
    smaller: Candidate | None
    ceilings: Ceilings | None
    offered_rate: float
    bounds: tuple[int, int]
    notes: list[str] = field(default_factory=list)
    #: for a plan over prefill:decode pools (:func:`plan_disaggregated`): the decode
    #: replica and the KV transfer, with the chosen counts in ``chosen.config``
    disaggregation: Disaggregated | None = None

    @property
    def found(self) -> bool:
        """Whether a candidate meets every objective within the bounds."""
        return self.chosen is not None

    def table(self) -> pl.DataFrame:
        """One row per candidate: configuration, GPUs, each quantile (estimate, lo, hi,
        verdict), meets, throughput, $/hour, $/Mtok and GPU-hours."""
        rows = []
        for c in self.candidates:
            row: dict[str, Any] = dict(c.config)
            row["gpus"] = c.gpus
            for k, (lo, est, hi) in c.quantiles.items():
                row[k] = est
                row[f"{k}_lo"] = lo
                row[f"{k}_hi"] = hi
                row[f"{k}_verdict"] = c.verdicts[k]
            row.update(meets=c.meets, chosen=c is self.chosen,
                       token_throughput=c.token_throughput, rejected=c.rejected,
                       dollars_per_hour=c.dollars_per_hour, cost_per_mtok=c.cost_per_mtok,
                       gpu_hours=c.gpu_hours)
            rows.append(row)
        return pl.DataFrame(rows, infer_schema_length=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (use :func:`qcore._json.dumps` for strict JSON)."""
        return {
            "found": self.found,
            "objectives": [{"name": o.name, "metric": o.metric, "quantile": o.quantile,
                            "limit": o.limit} for o in self.objectives],
            "decide_on": self.decide_on,
            "confidence": self.confidence,
            "method": self.method,
            "bounds": {"min_replicas": self.bounds[0], "max_replicas": self.bounds[1]},
            "offered_rate": self.offered_rate,
            "chosen": None if self.chosen is None else self.chosen.to_dict(),
            "smaller": None if self.smaller is None else self.smaller.to_dict(),
            "ceilings": None if self.ceilings is None else self.ceilings.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "notes": list(self.notes),
        }

    def rules(self, *, owner: str, version: str) -> list[Any]:
        """The plan's objectives as :class:`qcore.rules.Rule` s (``llm-ttft_p99`` ...,
        decided on the plan's side: ``decide_on="upper"`` for an upper-side plan)."""
        from qcore.rules import Rule

        side = "upper" if self.decide_on == "upper" else "estimate"
        out = []
        for o in self.objectives:
            metric = o.name if o.metric != "e2e" else o.name.removeprefix("e2e_")
            out.append(Rule(id=f"llm-{o.name}", version=version, owner=owner, metric=metric,
                            threshold=o.limit, confidence=self.confidence, decide_on=side,
                            description=f"capacity plan objective {o.name} <= {o.limit:g} s"))
        return out

    def decide(self, workload: WorkloadSpec, replica: Replica | Mapping[str, Replica], *,
               owner: str, version: str, seed: int = 1, now: float | None = None
               ) -> pl.DataFrame:
        """Run the chosen fleet on ``workload`` and evaluate :meth:`rules` on its request
        log (:func:`qcore.rules.metrics.llm_log`): one decision per objective, each with
        its JSON evidence record (:func:`qcore.rules.write_evidence` writes them)."""
        from qcore.rules import evaluate
        from qcore.rules.metrics import llm_log

        r = self.simulation(workload, replica, seed=seed)
        return evaluate(llm_log(r), self.rules(owner=owner, version=version), now=now)

    def simulation(self, workload: WorkloadSpec, replica: Replica | Mapping[str, Replica],
                   seed: int = 1) -> LlmResult:
        """Re-run the chosen fleet on ``workload`` (for its evidence: rules, timelines).

        ``replica`` as given to :func:`plan`; a synthetic workload runs with ``seed``.
        """
        from qcore.llm import Fleet, Workload, simulate

        if self.chosen is None:
            raise InvalidArgumentError("the plan found no fleet: nothing to simulate")
        cfg = self.chosen.config
        rep = _base(replica, cfg.get("hardware"))
        over = {k: cfg[k] for k in ("max_num_seqs", "max_num_batched_tokens") if k in cfg}
        rep = dataclasses.replace(rep, **over) if over else rep
        w = workload if isinstance(workload, Workload) else workload(seed)
        if self.disaggregation is not None:
            pools = dataclasses.replace(self.disaggregation, prefill_replicas=cfg["prefill_replicas"],
                                        decode_replicas=cfg["decode_replicas"])
            return simulate(w, rep, pools)
        return simulate(w, rep, Fleet(replicas=self.chosen.replicas, router=cfg["router"]))


def _base(replica: Replica | Mapping[str, Replica], hw: Any) -> Replica:
    if isinstance(replica, Mapping):
        return replica[hw]
    return replica


def _ints(name: str, v: Iterable[int] | int | None) -> list[int | None]:
    if v is None:
        return [None]
    vals = [v] if isinstance(v, (int, np.integer)) else list(v)
    if not vals:
        raise InvalidArgumentError(f"{name} must not be empty")
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
            raise InvalidArgumentError(f"{name} must hold integers >= 1, got {x!r}")
    return [int(x) for x in vals]


def plan(workload: WorkloadSpec, slo: Mapping[str, float] | Sequence[Objective],
         replica: Replica | Mapping[str, Replica], *,
         routers: Sequence[str] | str = "least_requests",
         max_num_seqs: Iterable[int] | int | None = None,
         max_num_batched_tokens: Iterable[int] | int | None = None,
         min_replicas: int = 1, max_replicas: int = 64,
         replications: int = 5, seed: int = 1, confidence: float = 0.95,
         decide_on: str = "upper", gpu: str | None = None, provider: str | None = None,
         prices: pl.DataFrame | str | os.PathLike[str] | None = None,
         staleness: float = 0.0, client: Any = None,
         progress: Callable[[str], None] | None = None) -> Plan:
    """The fewest replicas (and GPUs) that meet every SLO quantile, priced.

    Parameters
    ----------
    workload : Workload or callable
        A trace (replayed once per candidate; order-statistic intervals over its
        requests), or ``seed → Workload`` for a synthetic workload (``replications``
        replications with seeds ``seed, seed + 1, ...``, the same for every candidate:
        common random numbers; Student-t intervals).
    slo : mapping
        ``{"ttft_p99": s, "tpot_p99": s, "e2e_p99": s}`` (any ``pNN``; at least one).
    replica : Replica or mapping
        The engine of a replica; a mapping ``{gpu preset: Replica}`` searches over
        hardware too (each priced from its GPU's row in the price table).
    routers, max_num_seqs, max_num_batched_tokens : optional
        The configurations to search (one value or several; default: the replica's).
    min_replicas, max_replicas : int
        Search bounds on replicas a configuration.
    confidence : float
        Of the intervals. ``decide_on``: ``"upper"`` (default: a fleet meets an objective
        only when the upper end of its interval does; the side that protects the SLO) or
        ``"estimate"``.
    gpu, provider, prices :
        Pricing of a single replica: the GPU preset its ``gpus`` are (``$/GPU-hour`` from
        ``prices``, default the shipped table); without ``gpu`` the replica's own
        ``price_per_hour`` is used.
    client : dask.distributed.Client, optional
        Run the configurations' searches in parallel on the cluster (the same results
        as without).
    progress : callable, optional
        Called with a line for each candidate evaluated.

    Each configuration's search assumes that more replicas never hurt: it starts at the
    analytic lower bound (offered rate / :func:`ceilings`), doubles its step until a fleet
    meets, and bisects; ``max_replicas`` caps it. The fleet chosen has the fewest GPUs,
    then the lowest $/hour.

    Raises
    ------
    InvalidArgumentError
        Bad objectives, bounds, routers, knobs or prices (naming the argument).
    """
    from qcore.llm import Fleet

    objs = objectives(slo)
    _check_knobs(decide_on, confidence, min_replicas, max_replicas)
    w0, method = _check_workload(workload, replications, seed)
    rlist = _check_routers(routers)
    hw = _hardware(replica, gpu, provider, None if prices is None else _prices_table(prices))
    seqs = _ints("max_num_seqs", max_num_seqs)
    budgets = _ints("max_num_batched_tokens", max_num_batched_tokens)
    tasks: list[_Task] = []
    for (name, base), router, s, b in itertools.product(hw.items(), rlist, seqs, budgets):
        over = {k: v for k, v in (("max_num_seqs", s), ("max_num_batched_tokens", b))
                if v is not None}
        rep = dataclasses.replace(base, **over) if over else base
        cfg: dict[str, Any] = {} if name is None else {"hardware": name}
        cfg.update(router=router, max_num_seqs=rep.max_num_seqs,
                   max_num_batched_tokens=rep.max_num_batched_tokens,
                   gpus_per_replica=rep.gpus)
        tasks.append(_Task(workload, rep, Fleet(router=router, staleness=staleness, seed=seed),
                           objs, replications, seed, confidence, decide_on, cfg,
                           int(min_replicas), int(max_replicas)))
    if client is not None:
        results: list[list[Candidate]] = client.gather(client.map(_search, tasks, pure=False))
        if progress is not None:
            for c in (c for res in results for c in res):
                progress(f"{_label(c.config)} replicas={c.replicas}: "
                         f"{'meets' if c.meets else 'misses'}")
    else:
        results = [_search(t, progress) for t in tasks]
    return _conclude(objs, decide_on, confidence, method, tasks, results, w0,
                     (int(min_replicas), int(max_replicas)))


def _check_knobs(decide_on: str, confidence: float, min_replicas: int,
                 max_replicas: int, names: tuple[str, str] = ("min_replicas", "max_replicas")) -> None:
    if decide_on not in ("upper", "estimate"):
        raise InvalidArgumentError(f"decide_on must be 'upper' or 'estimate', got {decide_on!r}")
    if not 0.5 <= confidence < 1:
        raise InvalidArgumentError(f"confidence must be in [0.5, 1), got {confidence}")
    for name, v in zip(names, (min_replicas, max_replicas), strict=True):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InvalidArgumentError(f"{name} must be an integer >= 1, got {v!r}")
    if max_replicas < min_replicas:
        raise InvalidArgumentError(
            f"{names[1]} ({max_replicas}) must be >= {names[0]} ({min_replicas})")


def _check_workload(workload: Any, replications: int, seed: int) -> tuple[Workload, str]:
    from qcore.llm import Workload

    if isinstance(workload, Workload):
        if len(workload) == 0:
            raise InvalidArgumentError("workload has no requests")
        return workload, ("trace replay; distribution-free order-statistic intervals over its "
                          "requests")
    if not callable(workload):
        raise InvalidArgumentError("workload must be a qcore.llm.Workload or seed -> Workload")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 2:
        raise InvalidArgumentError(f"replications must be an integer >= 2, got {replications!r}")
    w0 = workload(seed)
    if not isinstance(w0, Workload):
        raise InvalidArgumentError("workload(seed) must return a qcore.llm.Workload")
    return w0, (f"{replications} replications with common random numbers (seeds "
                f"{seed}..{seed + replications - 1}); Student-t intervals")


def _check_routers(routers: Sequence[str] | str) -> list[str]:
    from qcore.llm import _ROUTERS

    rlist = [routers] if isinstance(routers, str) else list(routers)
    if not rlist:
        raise InvalidArgumentError("routers must not be empty")
    for r in rlist:
        if r not in _ROUTERS:
            raise InvalidArgumentError(
                f"routers: unknown router {r!r} (known: {', '.join(_ROUTERS)})")
    return rlist


def _hardware(replica: Any, gpu: str | None, provider: str | None,
              table: pl.DataFrame | None) -> dict[Any, Replica]:
    """Hardware name (or None) → the priced replica."""
    from qcore.llm import Replica

    if isinstance(replica, Mapping):
        if not replica:
            raise InvalidArgumentError("replica must not be an empty mapping")
        hw: dict[Any, Replica] = {}
        for name, rep in replica.items():
            if not isinstance(rep, Replica):
                raise InvalidArgumentError(f"replica[{name!r}] must be a qcore.llm.Replica")
            hw[name] = dataclasses.replace(
                rep, price_per_hour=gpu_price(str(name), provider, table))
        return hw
    if not isinstance(replica, Replica):
        raise InvalidArgumentError("replica must be a qcore.llm.Replica or {gpu: Replica}")
    if gpu is not None:
        replica = dataclasses.replace(replica,
                                      price_per_hour=gpu_price(gpu, provider, table))
    return {gpu: replica}


def _conclude(objs: tuple[Objective, ...], decide_on: str, confidence: float, method: str,
              tasks: list[_Task], results: list[list[Candidate]], w0: Workload,
              bounds: tuple[int, int]) -> Plan:
    """The choice among the candidates, the next smaller fleet and the notes."""
    cands = [c for res in results for c in res]
    ok = [c for c in cands if c.meets]
    order = {id(c): i for i, c in enumerate(cands)}
    chosen = min(ok, key=lambda c: (c.gpus, c.dollars_per_hour, order[id(c)])) if ok else None
    smaller = None
    notes: list[str] = []
    ceil = None
    if chosen is not None:
        ti = next(i for i, res in enumerate(results) if any(c is chosen for c in res))
        smaller = next((c for c in results[ti] if c.replicas == chosen.replicas - 1), None)
        try:
            ceil = ceilings(w0, tasks[ti].replica)
        except InvalidArgumentError:
            ceil = None
        if smaller is not None:
            st = [k for k, v in smaller.verdicts.items() if v == "straddles"]
            fl = [k for k, v in smaller.verdicts.items() if v == "fails"]
            if fl:
                notes.append(f"{smaller.replicas} replica(s) fail {', '.join(fl)} (the lower "
                             "end of the interval is beyond the objective)")
            elif st:
                notes.append(f"{smaller.replicas} replica(s): the interval of "
                             f"{', '.join(st)} straddles the objective; not proven to fail, "
                             f"rejected on the {decide_on} side")
        elif chosen.replicas == bounds[0]:
            notes.append(f"the chosen fleet is at min_replicas ({bounds[0]})")
    else:
        notes.append(f"no configuration meets every objective with at most {bounds[1]} "
                     "replicas")
    if any(c.rejected for c in cands):
        notes.append("some candidates reject requests that can never fit a replica's KV "
                     "cache; they count as misses")
    return Plan(objs, decide_on, confidence, method, cands, chosen, smaller, ceil,
                _rate_of(w0), bounds, notes)


def _prices_table(p: pl.DataFrame | str | os.PathLike[str]) -> pl.DataFrame:
    return prices(p)


# --------------------------------------------------------------------------- prefill:decode


def plan_disaggregated(workload: WorkloadSpec, slo: Mapping[str, float] | Sequence[Objective],
                       prefill: Replica, decode: Replica | None = None, *,
                       transfer: KvTransfer | None = None,
                       min_prefill: int = 1, max_prefill: int = 16,
                       min_decode: int = 1, max_decode: int = 32,
                       replications: int = 5, seed: int = 1, confidence: float = 0.95,
                       decide_on: str = "upper", gpu: str | None = None, provider: str | None = None,
                       prices: pl.DataFrame | str | os.PathLike[str] | None = None,
                       progress: Callable[[str], None] | None = None) -> Plan:
    """The fewest GPUs in disaggregated prefill and decode pools that meet every SLO
    quantile: the P:D ratio as the capacity knob (:class:`qcore.llm.Disaggregated`).

    For each prefill pool size ``P`` from ``min_prefill`` up, the fewest decode replicas
    ``D`` that meet (assuming more decode replicas never hurt: gallop, then bisect); the
    search stops at the first ``P`` whose prefill GPUs alone reach the best total found.
    Candidates, intervals, the decision side and prices are those of :func:`plan`
    (``gpu`` prices both pools; without it each replica's ``price_per_hour``).
    ``decode`` defaults to ``prefill``; ``transfer`` is the KV transfer between the pools.
    ``chosen.config`` holds ``prefill_replicas`` and ``decode_replicas``;
    :meth:`Plan.simulation` re-runs the chosen pools.

    >>> from qcore import llm
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=5e-5), num_blocks=4000)
    >>> w = llm.Workload.poisson(rate=20.0, n=1000, prompt_tokens=800, output_tokens=100, seed=2)
    >>> p = plan_disaggregated(w, {"ttft_p90": 0.3, "tpot_p90": 0.03}, rep, max_prefill=4, max_decode=8)
    >>> c = p.chosen.config     # one prefill replica cannot keep TTFT: two, and one decode
    >>> c["prefill_replicas"], c["decode_replicas"], p.chosen.gpus
    (2, 1, 3)
    """
    from qcore.llm import Disaggregated, KvTransfer, Replica

    objs = objectives(slo)
    _check_knobs(decide_on, confidence, min_prefill, max_prefill, ("min_prefill", "max_prefill"))
    _check_knobs(decide_on, confidence, min_decode, max_decode, ("min_decode", "max_decode"))
    w0, method = _check_workload(workload, replications, seed)
    decode = prefill if decode is None else decode
    if not isinstance(decode, Replica):
        raise InvalidArgumentError("decode must be a qcore.llm.Replica")
    if transfer is not None and not isinstance(transfer, KvTransfer):
        raise InvalidArgumentError("transfer must be a qcore.llm.KvTransfer or None")
    table = None if prices is None else _prices_table(prices)
    (pre,) = _hardware(prefill, gpu, provider, table).values()
    (dec,) = _hardware(decode, gpu, provider, table).values()
    template = Disaggregated(decode=dec, transfer=transfer)
    cands: list[Candidate] = []
    seen: dict[tuple[int, int], Candidate] = {}

    def ev(p: int, d: int) -> Candidate:
        if (p, d) not in seen:
            pools = dataclasses.replace(template, prefill_replicas=p, decode_replicas=d)
            cfg = {"prefill_replicas": p, "decode_replicas": d, "gpus_per_prefill": pre.gpus,
                   "gpus_per_decode": dec.gpus}
            c = _evaluate(workload, pre, pools, objs, replications, seed, confidence, decide_on, cfg)
            seen[(p, d)] = c
            cands.append(c)
            if progress is not None:
                progress(f"prefill={p} decode={d}: {'meets' if c.meets else 'misses'} "
                         + ", ".join(f"{k} {_fmt_ci(v)}" for k, v in c.quantiles.items()))
        return seen[(p, d)]

    best: Candidate | None = None
    for p in range(min_prefill, max_prefill + 1):
        if best is not None and p * pre.gpus + min_decode * dec.gpus > best.gpus:
            break  # no decode pool brings this prefill pool down to the best GPUs
        d = _fewest_decode(functools.partial(lambda p, d: ev(p, d).meets, p), min_decode, max_decode)
        if d is not None:
            c = seen[(p, d)]
            if best is None or (c.gpus, c.dollars_per_hour) < (best.gpus, best.dollars_per_hour):
                best = c
    notes: list[str] = []
    smaller = None
    if best is None:
        notes.append(f"no prefill:decode pools meet every objective with at most {max_prefill} prefill and "
                     f"{max_decode} decode replicas")
    else:
        bp, bd = best.config["prefill_replicas"], best.config["decode_replicas"]
        smaller = seen.get((bp, bd - 1))
        st = [] if smaller is None else [k for k, v in smaller.verdicts.items() if v == "straddles"]
        if smaller is not None and st and "fails" not in smaller.verdicts.values():
            notes.append(f"{bp}:{bd - 1}: the interval of {', '.join(st)} straddles the objective; not "
                         f"proven to fail, rejected on the {decide_on} side")
    if any(c.rejected for c in cands):
        notes.append("some candidates reject requests that can never fit a replica's KV cache; they count "
                     "as misses")
    return Plan(objs, decide_on, confidence, method, cands, best, smaller, None, _rate_of(w0),
                (min_prefill + min_decode, max_prefill + max_decode), notes, template)


def _smallest(meets: Callable[[int], bool], lo: int, hi: int, start: int) -> int | None:
    """The smallest ``n`` in ``[lo, hi]`` with ``meets(n)``, assuming more never hurts, or
    None: try ``start`` (and ``start - 1``, the usual case of a tight bound), gallop up
    from a failing ``start``, then bisect."""
    bad, good = lo - 1, None     # largest known failing, smallest known meeting
    if meets(start):
        good = start
        if start > lo and not meets(start - 1):
            bad = start - 1
    else:
        bad, step = start, 1
        while good is None:
            nxt = min(hi, bad + step)
            if nxt == bad:
                break
            if meets(nxt):
                good = nxt
            else:
                bad = nxt
            step *= 2
    if good is not None:
        while good - bad > 1:
            mid = (bad + good) // 2
            if mid < lo:
                break
            if meets(mid):
                good = mid
            else:
                bad = mid
    return good


def _fewest_decode(meets: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The fewest decode replicas in ``[lo, hi]`` that meet, or None when even ``hi``
    does not (a prefill pool too small for any decode pool)."""
    return _smallest(meets, lo, hi, lo) if meets(hi) else None


# --------------------------------------------------------------------------- sustained rate


@dataclass(frozen=True)
class SustainedRate:
    """The result of :func:`sustained_rate`: ``rate`` (requests/s) is the highest arrival
    rate found at which every objective is met on the ``decide_on`` side; ``ceiling``
    (requests/s) is the fleet's analytic ceiling (replicas × the binding per-replica
    ceiling of :func:`ceilings`) and ``ceilings`` the per-replica detail; ``runs`` the
    simulations made (each of ``replications`` runs for a synthetic workload)."""

    rate: float
    ceiling: float
    ceilings: Ceilings
    replicas: int
    runs: int
    decide_on: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = dataclasses.asdict(self)
        d["ceilings"] = self.ceilings.to_dict()
        return d


def sustained_rate(workload: WorkloadSpec, replica: Replica,
                   slo: Mapping[str, float] | Sequence[Objective], fleet: Fleet | None = None,
                   *, replications: int = 5, seed: int = 1, confidence: float = 0.95,
                   decide_on: str = "upper", rel_tol: float = 0.01,
                   max_runs: int = 40) -> SustainedRate:
    """The highest arrival rate a fleet sustains with every SLO quantile within its
    objective (DistServe's goodput with quantile objectives), by bisection on a rate
    factor applied to the same requests (common random numbers: every rate sees the
    same requests, or the same replications, only faster or slower), with the analytic
    ceiling beside it.

    >>> from qcore import llm
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000)
    >>> w = llm.Workload.poisson(rate=10.0, n=1000, prompt_tokens=500, output_tokens=50)
    >>> s = llm.sustained_rate(w, rep, {"ttft_p99": 0.5})
    >>> 0 < s.rate < s.ceiling
    True
    """
    from qcore.llm import Fleet, Workload, _bisect_factor

    objs = objectives(slo)
    if decide_on not in ("upper", "estimate"):
        raise InvalidArgumentError(f"decide_on must be 'upper' or 'estimate', got {decide_on!r}")
    if not 0 < rel_tol < 1:
        raise InvalidArgumentError(f"rel_tol must be in (0, 1), got {rel_tol}")
    fl = fleet if fleet is not None else Fleet()
    if isinstance(workload, Workload):
        ws: list[Workload] = [workload]
    elif callable(workload):
        ws = [workload(seed + i) for i in range(replications)]
    else:
        raise InvalidArgumentError("workload must be a qcore.llm.Workload or seed -> Workload")
    base = float(np.mean([_rate_of(w) for w in ws]))
    if not math.isfinite(base):
        raise InvalidArgumentError("workload needs at least two distinct arrival times")

    def ok(f: float) -> bool:
        scaled = [w.scale_rate(f) for w in ws]
        spec: WorkloadSpec = (scaled[0] if isinstance(workload, Workload)
                              else _Scaled(tuple(scaled), seed))
        c = _evaluate(spec, replica, fl, objs, len(ws), seed, confidence, decide_on, {})
        return c.meets

    f, runs = _bisect_factor(ok, rel_tol, max_runs)
    ceil = ceilings(ws[0], replica)
    return SustainedRate(f * base, ceil.rate * fl.replicas, ceil, fl.replicas,
                         runs * len(ws), decide_on)


@dataclass(frozen=True)
class _Scaled:
    """Replications already drawn: seed → its workload (for the rate bisection)."""

    ws: tuple[Workload, ...]
    seed: int

    def __call__(self, s: int) -> Workload:
        return self.ws[s - self.seed]


