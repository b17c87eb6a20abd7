"""Overload control (admission and shedding) replayed in the simulator.

Each policy is a small frozen object; :func:`run` measures one policy on one arrival
process, :func:`compare` several policies on the same arrival and service samples
(common random numbers), and :func:`sweep` runs the classic experiment: offered load
swept from 0.5× to 3× capacity, one row per (policy, load).

Metrics (per policy, and per priority class when ``classes`` is given):

- ``goodput``: completions within the SLO per second of offered traffic;
- ``shed_rate``: fraction rejected on arrival or shed from the queue;
- ``timeout_rate``: fraction that left the queue after the client's timeout;
- ``p99_admitted``: p99 response time of the requests that completed;
- ``wasted_fraction``: share of the service time spent on requests that completed
  after the client's timeout (the client had already given up).

The client's ``timeout`` is modelled as patience: a request still waiting at its
timeout leaves the queue.

>>> from qcore import overload, sim
>>> t = overload.sweep(service=sim.Exponential(mean=0.1), servers=4,
...                    policies={"none": overload.NoControl(), "codel": overload.AdaptiveLIFO()},
...                    loads=[0.5, 3.0], slo=0.5, timeout=2.0, customers=20_000)
>>> t.shape
(4, 14)
>>> g = dict(zip(zip(t["policy"], t["load"]), t["goodput_ratio"]))
>>> g[("none", 3.0)] < 0.1 < 0.8 < g[("codel", 3.0)]
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from qcore import _qcore, sim
from qcore._convert import as_f64, as_i64
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

__all__ = [
    "AIMD",
    "AdaptiveLIFO",
    "ClientThrottle",
    "CoDel",
    "Deadline",
    "DropTail",
    "Gradient2",
    "NoControl",
    "OverloadPolicy",
    "Priority",
    "TokenBucket",
    "compare",
    "run",
    "sweep",
]

_Spec = tuple[str, dict[str, float], dict[str, str]]


class OverloadPolicy:
    """Base class of the overload-control policies."""

    #: Queue discipline the policy needs.
    discipline: str = "fcfs"

    def _spec(self) -> _Spec:
        raise NotImplementedError  # pragma: no cover - every subclass defines it


@dataclass(frozen=True)
class NoControl(OverloadPolicy):
    """No admission control: an unlimited FCFS queue (the congestion-collapse baseline)."""

    def _spec(self) -> _Spec:
        return ("none", {}, {})


@dataclass(frozen=True)
class DropTail(OverloadPolicy):
    """Reject arrivals while ``queue_limit`` requests wait (a bounded FIFO queue)."""

    queue_limit: int

    def _spec(self) -> _Spec:
        return ("drop_tail", {"queue_limit": float(_nonneg_int(self.queue_limit, "queue_limit"))},
                {"arrival": "drop_tail"})


@dataclass(frozen=True)
class Deadline(OverloadPolicy):
    """Deadline shedding: a request that waited longer than ``max_wait`` seconds is
    dropped when it reaches the head of the queue instead of being served."""

    max_wait: float

    def _spec(self) -> _Spec:
        return ("deadline", {"max_wait": float(self.max_wait)}, {"dequeue": "deadline"})


@dataclass(frozen=True)
class CoDel(OverloadPolicy):
    """CoDel for RPC queues as in folly (``target`` 5 ms, ``interval`` 100 ms): when the
    minimum queueing delay over an interval exceeded ``target``, requests that waited
    more than ``2 × target`` are dropped at dequeue."""

    target: float = 0.005
    interval: float = 0.1

    def _spec(self) -> _Spec:
        return ("codel", {"codel_target": float(self.target), "codel_interval": float(self.interval)},
                {"dequeue": "codel"})


@dataclass(frozen=True)
class AdaptiveLIFO(OverloadPolicy):
    """CoDel with adaptive LIFO ("Fail at Scale"): the queue is served oldest first while
    it is healthy and newest first once it has not been empty for ``interval`` seconds,
    back to oldest first as soon as it drains; CoDel (``target``, ``interval``) sheds
    the requests that waited too long. A queue that never stays busy for ``interval`` is
    served exactly as :class:`CoDel` serves it."""

    target: float = 0.005
    interval: float = 0.1

    def _spec(self) -> _Spec:
        return ("adaptive_lifo",
                {"codel_target": float(self.target), "codel_interval": float(self.interval),
                 "adaptive_lifo": 1.0},
                {"dequeue": "codel"})


@dataclass(frozen=True)
class TokenBucket(OverloadPolicy):
    """Token bucket: ``rate`` tokens per second, ``burst`` tokens at most (full at the
    start); an arrival without a token is rejected."""

    rate: float
    burst: float = 1.0

    def _spec(self) -> _Spec:
        return ("token_bucket", {"rate": float(self.rate), "burst": float(self.burst)},
                {"arrival": "token_bucket"})


@dataclass(frozen=True)
class AIMD(OverloadPolicy):
    """Netflix AIMD concurrency limit on requests in the system (defaults: initial 10,
    backoff 0.9, timeout 5 s): +1 per sample while at least half the limit is used,
    ``max(1, min(L − 1, floor(L·backoff)))`` on a loss or a response slower than
    ``timeout``. A loss is an admitted request that leaves the queue at the client's
    ``timeout`` (concurrency-limits' ``onDropped``); the limit's own rejections are not
    samples."""

    initial_limit: float = 10.0
    backoff: float = 0.9
    timeout: float = 5.0
    max_limit: float = 1000.0

    def _spec(self) -> _Spec:
        return ("aimd", {"initial_limit": float(self.initial_limit), "backoff": float(self.backoff),
                         "timeout": float(self.timeout), "max_limit": float(self.max_limit)},
                {"arrival": "aimd"})


@dataclass(frozen=True)
class Gradient2(OverloadPolicy):
    """Netflix Gradient2 concurrency limit (defaults: initial 20, min 20, max 200,
    smoothing 0.2, queue size 4, long window 600 samples). A request that times out in
    the queue is a sample of its time in the system, as concurrency-limits'
    ``onDropped`` feeds it."""

    initial_limit: float = 20.0
    min_limit: float = 20.0
    max_limit: float = 200.0
    smoothing: float = 0.2
    queue_size: float = 4.0
    long_window: float = 600.0

    def _spec(self) -> _Spec:
        return ("gradient2", {"initial_limit": float(self.initial_limit),
                              "min_limit": float(self.min_limit), "max_limit": float(self.max_limit),
                              "smoothing": float(self.smoothing), "queue_size": float(self.queue_size),
                              "long_window": float(self.long_window)},
                {"arrival": "gradient2"})


@dataclass(frozen=True)
class ClientThrottle(OverloadPolicy):
    """Google SRE client-side adaptive throttling in front of a bounded backend queue:
    the client rejects locally with probability
    ``max(0, (requests − k·accepts) / (requests + 1))`` over the last ``window``
    seconds (``k`` = 2); the backend rejects while ``queue_limit`` requests wait."""

    queue_limit: int
    k: float = 2.0
    window: float = 120.0

    def _spec(self) -> _Spec:
        return ("client_throttle",
                {"client_throttle": 1.0, "k": float(self.k), "throttle_window": float(self.window),
                 "queue_limit": float(_nonneg_int(self.queue_limit, "queue_limit"))},
                {"arrival": "drop_tail"})


@dataclass(frozen=True)
class Priority(OverloadPolicy):
    """Two priority classes (``classes``: 0 high, 1 low per request): low-priority
    arrivals are rejected once ``low_limit`` requests wait, high-priority ones once
    ``high_limit`` wait (``low_limit ≤ high_limit``), so the low class is shed first."""

    high_limit: int
    low_limit: int

    def _spec(self) -> _Spec:
        return ("priority", {"high_limit": float(_nonneg_int(self.high_limit, "high_limit")),
                             "low_limit": float(_nonneg_int(self.low_limit, "low_limit"))},
                {"arrival": "priority"})


# --------------------------------------------------------------------------- helpers


def _nonneg_int(x: Any, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an integer, got {type(x).__name__}")
    if x < 0:
        raise InvalidArgumentError(f"{name} must be non-negative, got {x}")
    return int(x)


def _arrivals(arrivals: Any) -> sim.ArrivalProcess:
    if isinstance(arrivals, sim.ArrivalProcess):
        return arrivals
    if isinstance(arrivals, (int, float)):
        raise InvalidTypeError(
            "arrivals must be a qcore.sim arrival process or an array of timestamps, "
            f"got {type(arrivals).__name__}"
        )
    return sim.Trace(arrivals)


def _duration(x: Any, name: str, *, per_request: bool) -> sim.Distribution:
    if isinstance(x, sim.Distribution):
        return x
    if isinstance(x, bool):
        raise InvalidTypeError(f"{name} must be a number of seconds or a qcore.sim distribution")
    if isinstance(x, (int, float, np.integer, np.floating)):
        return sim.Deterministic(float(x))
    if per_request:
        return sim.Durations(as_f64(x, name, allow_scalar=False))
    raise InvalidTypeError(
        f"{name} must be a number of seconds or a qcore.sim distribution, got {type(x).__name__}"
    )


def _optional_duration(x: Any, name: str) -> sim.Distribution | None:
    if x is None:
        return None
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isinf(x):
        return None
    return _duration(x, name, per_request=False)


def _customers(arrivals: sim.ArrivalProcess, customers: Any) -> int:
    limit = arrivals._limit()
    if customers is None:
        if limit is None:
            raise InvalidArgumentError(
                "customers is required when arrivals is not a finite trace "
                "(how many requests to simulate)"
            )
        return int(limit)
    if isinstance(customers, bool) or not isinstance(customers, (int, np.integer)):
        raise InvalidTypeError(f"customers must be an integer, got {type(customers).__name__}")
    if customers < 1:
        raise InvalidArgumentError(f"customers must be at least 1, got {customers}")
    return int(customers) if limit is None else min(int(customers), int(limit))


def _classes(classes: Any, n: int) -> npt.NDArray[np.uint8] | None:
    if classes is None:
        return None
    c = as_i64(classes, "classes")
    if len(c) < n:
        raise InvalidArgumentError(f"classes holds {len(c)} values but {n} requests are simulated")
    if len(c) and (c.min() < 0 or c.max() > 1):
        raise InvalidArgumentError("classes must hold 0 (high priority) or 1 (low priority)")
    return np.ascontiguousarray(c, dtype=np.uint8)


def _policy(p: Any, name: str = "policy") -> OverloadPolicy:
    if not isinstance(p, OverloadPolicy):
        raise InvalidTypeError(f"{name} must be a qcore.overload policy, got {type(p).__name__}")
    return p


def _positive(x: Any, name: str, *, inf_ok: bool = False) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"{name} must be a number, got {type(x).__name__}") from None
    if not (v > 0) or (math.isinf(v) and not inf_ok):
        raise InvalidArgumentError(f"{name} must be a positive{' ' if inf_ok else ' finite '}number, got {x}")
    return v


# --------------------------------------------------------------------------- runs


def run(
    arrivals: Any,
    service: Any,
    servers: int,
    policy: OverloadPolicy,
    *,
    slo: float,
    timeout: float = math.inf,
    customers: int | None = None,
    classes: Any = None,
    seed: int = 1,
    replication: int = 0,
) -> dict[str, Any]:
    """Run one overload-control policy and measure it.

    Parameters
    ----------
    arrivals : qcore.sim arrival process, or timestamps (array, sequence, polars Series)
    service : qcore.sim distribution, a number (deterministic) or per-request durations
    servers : fixed number of servers (≥ 1)
    policy : an :class:`OverloadPolicy`
    slo : response-time objective in seconds (decides goodput)
    timeout : the client's timeout in seconds (``inf``: none)
    customers : requests to simulate (default: the whole trace)
    classes : per-request priority class, 0 high / 1 low (needed by :class:`Priority`;
        with it the result also has ``high`` and ``low`` metrics)
    seed, replication : random streams (the same seed gives the same traffic and work)

    Returns
    -------
    dict with ``all`` (metrics dict), optionally ``high`` and ``low``,
    ``client_throttled`` and ``final_limit`` (adaptive limits).

    Raises
    ------
    ValueError, TypeError
        On invalid arguments; the message names the argument.

    Examples
    --------
    >>> from qcore import overload, sim
    >>> r = overload.run(sim.Poisson(rate=5.0), sim.Exponential(mean=0.1), 1,
    ...                  overload.DropTail(queue_limit=10), slo=1.0, customers=5_000)
    >>> 0.0 <= r["all"]["shed_rate"] < 0.01
    True
    """
    arr = _arrivals(arrivals)
    svc = _duration(service, "service", per_request=True)
    pol = _policy(policy)
    n = _customers(arr, customers)
    servers = _nonneg_int(servers, "servers")
    if servers < 1:
        raise InvalidArgumentError("servers must be at least 1")
    slo = _positive(slo, "slo")
    timeout = _positive(timeout, "timeout", inf_ok=True)
    cl = _classes(classes, n)
    kind, nums, strs = pol._spec()
    if kind == "priority" and cl is None:
        raise InvalidArgumentError("classes is required by the Priority policy (0 high, 1 low per request)")
    patience = None if math.isinf(timeout) else _optional_duration(timeout, "timeout")
    out: dict[str, Any] = _qcore._policy_overload(
        arr, svc, servers, n, int(seed), patience, None, pol.discipline,
        (kind, nums, strs), cl, slo, timeout, int(replication),
    )
    return out


_METRICS = ["arrived", "completed", "good", "shed", "timed_out", "goodput", "throughput",
            "shed_rate", "timeout_rate", "p99_admitted", "wasted_work", "wasted_fraction"]


def _rows(name: str, r: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for cls in ("all", "high", "low"):
        if cls in r:
            m = r[cls]
            rows.append({"policy": name, "class": cls, **{k: m[k] for k in _METRICS}})
    return rows


def compare(
    arrivals: Any,
    service: Any,
    servers: int,
    policies: Mapping[str, OverloadPolicy],
    *,
    slo: float,
    timeout: float = math.inf,
    customers: int | None = None,
    classes: Any = None,
    seed: int = 1,
    replication: int = 0,
) -> pl.DataFrame:
    """Run several policies on the same arrivals and service times (common random
    numbers) and return one table: a row per policy (and per class with ``classes``).

    Examples
    --------
    >>> from qcore import overload, sim
    >>> t = overload.compare(sim.Poisson(rate=60.0), sim.Exponential(mean=0.1), 4,
    ...                      {"none": overload.NoControl(), "deadline": overload.Deadline(0.2)},
    ...                      slo=0.5, timeout=2.0, customers=20_000)
    >>> t["policy"].to_list()
    ['none', 'deadline']
    """
    if not isinstance(policies, Mapping) or not policies:
        raise InvalidTypeError("policies must be a non-empty mapping of name -> policy")
    rows: list[dict[str, Any]] = []
    for name, p in policies.items():
        r = run(arrivals, service, servers, _policy(p, f"policies[{name!r}]"), slo=slo,
                timeout=timeout, customers=customers, classes=classes, seed=seed,
                replication=replication)
        rows.extend(_rows(str(name), r))
    return pl.DataFrame(rows)


def sweep(
    service: Any,
    servers: int,
    policies: Mapping[str, OverloadPolicy],
    *,
    slo: float,
    timeout: float = math.inf,
    loads: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0),
    customers: int = 50_000,
    low_fraction: float | None = None,
    seed: int = 1,
) -> pl.DataFrame:
    """The classic overload experiment: Poisson traffic at each offered ``load`` (a
    multiple of capacity ``servers / mean service``), one row per (policy, load).

    ``goodput_ratio`` is goodput over capacity: it collapses without control as the load
    passes 1 and stays flat with a good policy. With ``low_fraction``, that share of the
    requests (chosen by a seeded draw, the same for every policy) is low priority and
    rows are per class too.

    Examples
    --------
    >>> from qcore import overload, sim
    >>> t = overload.sweep(sim.Exponential(mean=0.1), 4, {"drop": overload.DropTail(8)},
    ...                    slo=0.5, loads=[0.5, 2.0], customers=5_000)
    >>> t["load"].to_list()
    [0.5, 2.0]
    """
    svc = _duration(service, "service", per_request=False)
    servers = _nonneg_int(servers, "servers")
    if servers < 1:
        raise InvalidArgumentError("servers must be at least 1")
    capacity = servers / svc.mean_value
    ls = as_f64(loads, "loads")
    if len(ls) == 0 or not np.all(np.isfinite(ls)) or np.any(ls <= 0):
        raise InvalidArgumentError("loads must be non-empty, finite and positive")
    classes = None
    if low_fraction is not None:
        f = float(low_fraction)
        if not 0.0 <= f <= 1.0:
            raise InvalidArgumentError(f"low_fraction must be in [0, 1], got {low_fraction}")
        rng = np.random.default_rng(seed)
        classes = (rng.random(customers) < f).astype(np.uint8)
    rows: list[dict[str, Any]] = []
    for load in ls:
        arr = sim.Poisson(rate=float(load) * capacity)
        for name, p in policies.items():
            r = run(arr, svc, servers, _policy(p, f"policies[{name!r}]"), slo=slo, timeout=timeout,
                    customers=customers, classes=classes, seed=seed)
            for row in _rows(str(name), r):
                row["load"] = float(load)
                row["arrival_rate"] = float(load) * capacity
                row["goodput_ratio"] = row["goodput"] / capacity
                rows.append(row)
    cols = ["policy", "class", "load", "arrival_rate", "goodput", "goodput_ratio", "throughput",
            "shed_rate", "timeout_rate", "p99_admitted", "wasted_fraction", "wasted_work",
            "arrived", "completed", "good"]
    df = pl.DataFrame(rows).select(cols)
    if low_fraction is None:
        df = df.drop("class")
    return df
