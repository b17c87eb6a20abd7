"""Capacity planning: how many servers meet a latency SLO.

>>> from qcore import capacity, sim
>>> r = capacity.min_servers(arrival_rate=90.0, service=sim.Exponential(mean=0.1),
...                          slo_quantile=0.99, slo_seconds=0.5)
>>> r.servers, r.method
(11, 'analytic')

For M/M/c (Poisson arrivals, exponential service, nothing else) the answer is exact and
comes from :func:`qcore.queueing.mmc`. For any other arrival process, service
distribution, batching, waiting-room limit or patience the answer comes from
simulation: a search over the server count in which every candidate sees the same
arrivals and service times (common random numbers), so the comparison between two
counts is not blurred by sampling noise. The reported quantile carries a confidence
interval over independent replications.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qcore import sim as _sim

__all__ = ["CapacityResult", "min_servers"]


@dataclass(frozen=True, repr=False)
class CapacityResult:
    """The answer of :func:`min_servers` (frozen).

    Attributes
    ----------
    servers : int
        The smallest server count that meets the SLO.
    achieved : float
        The ``slo_quantile``-quantile of the response time at ``servers``.
    ci : tuple of float or None
        ``(lo, hi)`` confidence interval of ``achieved`` (simulation only).
    method : {"analytic", "simulation"}
    slo_quantile, slo_seconds : float
    utilization : float
        Server utilization at ``servers``.
    evaluations : tuple
        ``(servers, achieved, lo, hi)`` for every count examined, in order.
    """

    servers: int
    achieved: float
    ci: tuple[float, float] | None
    method: str
    slo_quantile: float
    slo_seconds: float
    utilization: float
    evaluations: tuple[tuple[int, float, float, float], ...]

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict.

        >>> min_servers(10.0, sim.Exponential(0.1), 0.9, 1.0).as_dict()["servers"]
        2
        """
        return {
            "servers": self.servers,
            "achieved": self.achieved,
            "ci": self.ci,
            "method": self.method,
            "slo_quantile": self.slo_quantile,
            "slo_seconds": self.slo_seconds,
            "utilization": self.utilization,
            "evaluations": list(self.evaluations),
        }

    def __repr__(self) -> str:
        ci = "" if self.ci is None else f" [{self.ci[0]:.6g}, {self.ci[1]:.6g}]"
        return (
            f"CapacityResult(servers={self.servers}, p{self.slo_quantile * 100:g}="
            f"{self.achieved:.6g}{ci} <= {self.slo_seconds:g} s, method={self.method!r}, "
            f"utilization={self.utilization:.4g})"
        )


def _check_slo(slo_quantile: float, slo_seconds: float) -> tuple[float, float]:
    if not isinstance(slo_quantile, (int, float)) or not (0.0 < slo_quantile < 1.0):
        raise ValueError(f"slo_quantile must be in (0, 1), got {slo_quantile!r}")
    if not isinstance(slo_seconds, (int, float)) or not (
        math.isfinite(slo_seconds) and slo_seconds > 0
    ):
        raise ValueError(
            f"slo_seconds must be a positive finite number, got {slo_seconds!r}"
        )
    return float(slo_quantile), float(slo_seconds)


def _analytic(
    lam: float, mean: float, q: float, slo: float, max_servers: int
) -> CapacityResult:
    from qcore import queueing

    mu = 1.0 / mean
    service_q = -math.log1p(-q) * mean
    if service_q >= slo:
        raise ValueError(
            f"slo_seconds = {slo} is not above the {q}-quantile of the service time alone "
            f"({service_q:.6g} s); no number of servers meets it"
        )
    evals: list[tuple[int, float, float, float]] = []

    def achieved(c: int) -> float:
        v = float(queueing.mmc(lam, mu, c).response_quantile(q))
        evals.append((c, v, math.nan, math.nan))
        return v

    first = math.floor(lam * mean) + 1
    c = _search(first, max_servers, lambda c: achieved(c) <= slo)
    v = next(e[1] for e in reversed(evals) if e[0] == c)
    return CapacityResult(c, v, None, "analytic", q, slo, lam * mean / c, tuple(evals))


def _search(first: int, max_servers: int, meets: Any) -> int:
    """Smallest c >= first with meets(c), assuming monotonicity: exponential search,
    then bisection."""
    if first > max_servers:
        raise ValueError(
            f"max_servers = {max_servers} is below the {first} servers the load needs"
        )
    if meets(first):
        return first
    lo, step = first, 1
    while True:
        hi = min(first + step, max_servers)
        if meets(hi):
            break
        if hi == max_servers:
            raise ValueError(
                f"no server count up to max_servers = {max_servers} meets the SLO"
            )
        lo, step = hi, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi


def min_servers(
    arrival_rate: float | None,
    service: _sim.Distribution | None,
    slo_quantile: float,
    slo_seconds: float,
    *,
    arrivals: _sim.ArrivalProcess | None = None,
    method: str = "auto",
    max_servers: int = 100_000,
    customers: int = 100_000,
    warmup: int = 10_000,
    replications: int = 5,
    seed: int = 1,
    confidence: float = 0.95,
    conservative: bool = False,
    **options: Any,
) -> CapacityResult:
    """The smallest number of servers whose ``slo_quantile``-quantile of the response
    time is at most ``slo_seconds``.

    Parameters
    ----------
    arrival_rate : float or None
        Poisson arrival rate (per second). Pass ``None`` and ``arrivals=`` for any
        other arrival process.
    service : Distribution or None
        Service-time distribution (``None`` with batching, where ``batch_service``
        sets the batch time).
    slo_quantile : float
        For example 0.99.
    slo_seconds : float
        The latency objective.
    arrivals : ArrivalProcess, optional
        Replaces ``arrival_rate`` (simulation).
    method : {"auto", "analytic", "simulation"}
        ``"auto"`` is analytic for M/M/c and simulation otherwise.
    max_servers : int
        Upper end of the search.
    customers, warmup, replications, seed, confidence
        Simulation budget per candidate count (see :func:`qcore.simulate`).
    conservative : bool
        Decide on the upper confidence bound of the simulated quantile instead of the
        estimate.
    **options
        Passed to :func:`qcore.simulate` (``max_batch_size``, ``max_batch_wait``,
        ``batch_service``, ``queue_capacity``, ``patience``, ``discipline``, ...).

    Returns
    -------
    CapacityResult

    Raises
    ------
    ValueError
        Invalid arguments; an SLO that no server count meets (for example below the
        service time's own quantile); ``method="analytic"`` for a model that is not
        M/M/c.

    Examples
    --------
    >>> r = min_servers(None, sim.Gamma(mean=0.1, cv=2.0), 0.99, 1.5,
    ...                 arrivals=sim.Renewal.from_rate(90.0, cv=1.5),
    ...                 customers=20_000, warmup=2_000, replications=3)
    >>> r.method, r.ci[0] <= r.achieved <= r.ci[1], r.achieved <= 1.5
    ('simulation', True, True)
    """
    q, slo = _check_slo(slo_quantile, slo_seconds)
    if method not in ("auto", "analytic", "simulation"):
        raise ValueError(
            f"method must be 'auto', 'analytic' or 'simulation', got {method!r}"
        )
    if (
        isinstance(max_servers, bool)
        or not isinstance(max_servers, int)
        or max_servers < 1
    ):
        raise ValueError(f"max_servers must be a positive integer, got {max_servers!r}")
    if arrivals is None:
        if arrival_rate is None:
            raise ValueError("give arrival_rate or arrivals")
        if not isinstance(arrival_rate, (int, float)) or not (
            math.isfinite(arrival_rate) and arrival_rate > 0
        ):
            raise ValueError(
                f"arrival_rate must be a positive finite number, got {arrival_rate!r}"
            )
        arrivals = _sim.Poisson(rate=float(arrival_rate))
    elif arrival_rate is not None:
        raise ValueError("give arrival_rate or arrivals, not both")
    is_mmc = (
        isinstance(arrivals, _sim.Poisson)
        and isinstance(service, _sim.Exponential)
        and not options
    )
    if method == "analytic" and not is_mmc:
        raise ValueError(
            "method='analytic' needs Poisson arrivals, exponential service and no other options"
        )
    if is_mmc and method in ("auto", "analytic"):
        assert isinstance(arrivals, _sim.Poisson) and isinstance(
            service, _sim.Exponential
        )
        return _analytic(arrivals.rate, service.mean, q, slo, max_servers)
    return _simulated(
        arrivals,
        service,
        q,
        slo,
        max_servers,
        customers,
        warmup,
        replications,
        seed,
        confidence,
        conservative,
        options,
    )


def _simulated(
    arrivals: _sim.ArrivalProcess,
    service: _sim.Distribution | None,
    q: float,
    slo: float,
    max_servers: int,
    customers: int,
    warmup: int,
    replications: int,
    seed: int,
    confidence: float,
    conservative: bool,
    options: dict[str, Any],
) -> CapacityResult:
    evals: list[tuple[int, float, float, float]] = []
    results: dict[int, Any] = {}
    checked: list[bool] = []

    def meets(c: int) -> bool:
        r = _sim.simulate(
            arrivals,
            service,
            servers=c,
            customers=customers,
            warmup=warmup,
            seed=seed,
            replications=replications,
            confidence=confidence,
            **options,
        )
        if r.completed == 0:
            raise ValueError(f"no request completed with {c} servers; raise customers")
        lo, est, hi = r.response_quantile(q)
        if replications == 1:
            est = float(r.response.quantile(q))
        evals.append((c, est, lo, hi))
        results[c] = r
        ok = (hi if conservative and replications > 1 else est) <= slo
        if not ok and r.wait.count > 0 and r.wait.quantile(q) == 0.0 and not checked:
            # Most requests no longer wait; if even unlimited servers miss the SLO, stop.
            checked.append(True)
            free = _sim.simulate(
                arrivals,
                service,
                servers=min(customers + warmup, 1_000_000),
                customers=customers,
                warmup=warmup,
                seed=seed,
                replications=1,
                **options,
            )
            floor_q = free.response.quantile(q)
            if floor_q is not None and floor_q > slo:
                raise ValueError(
                    f"slo_seconds = {slo} is below the {q}-quantile of the response time "
                    f"with unlimited servers ({floor_q:.6g} s, the service time alone); "
                    f"no number of servers meets it"
                )
        return ok

    rate = arrivals.mean_rate
    first = 1
    if service is not None and rate is not None and not options.get("batch_service"):
        first = math.floor(rate * service.mean_value) + 1
    c = _search(first, max_servers, meets)
    r = results[c]
    _, est, lo, hi = next(e for e in reversed(evals) if e[0] == c)
    ci = None if replications == 1 else (lo, hi)
    return CapacityResult(c, est, ci, "simulation", q, slo, r.utilization, tuple(evals))
