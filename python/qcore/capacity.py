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
from qcore.exceptions import InvalidArgumentError

__all__ = ["CapacityResult", "min_servers", "relaxation_time", "run_length"]


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
        ``(servers, achieved, lo, hi)`` for every count examined, in order (``nan`` for a
        count too close to saturation to simulate to steady state in the budget).
    straddles_slo : bool
        The confidence interval of ``achieved`` contains ``slo_seconds``: the estimate
        meets the SLO but the simulation cannot tell it apart from missing it (decide
        with ``conservative=True``, or more ``replications``).
    """

    servers: int
    achieved: float
    ci: tuple[float, float] | None
    method: str
    slo_quantile: float
    slo_seconds: float
    utilization: float
    evaluations: tuple[tuple[int, float, float, float], ...]
    straddles_slo: bool = False

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
            "straddles_slo": self.straddles_slo,
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
        raise InvalidArgumentError(f"slo_quantile must be in (0, 1), got {slo_quantile!r}")
    if not isinstance(slo_seconds, (int, float)) or not (
        math.isfinite(slo_seconds) and slo_seconds > 0
    ):
        raise InvalidArgumentError(
            f"slo_seconds must be a positive finite number, got {slo_seconds!r}"
        )
    return float(slo_quantile), float(slo_seconds)


#: Relaxation times (heavy-traffic estimate) a simulated candidate's run covers, and the
#: share of them spent as warm-up.
RELAXATIONS = 30.0
WARMUP_RELAXATIONS = 5.0


def _first_stable(offered: float, max_utilization: float) -> int:
    """The fewest servers with utilization ``offered / c`` strictly below 1 and at most
    ``max_utilization``; ``offered`` within a relative 1e-9 of an integer counts as that
    integer (a mean of 0.49999999999999994 s at 5000/s offers 2500 servers' worth)."""
    slack = 1e-9 * max(1.0, offered)
    first = math.floor(offered + slack) + 1
    if max_utilization < 1.0:
        first = max(first, math.ceil(offered / max_utilization - slack))
    return max(1, first)


def _check_max_utilization(max_utilization: float) -> float:
    if isinstance(max_utilization, bool) or not isinstance(max_utilization, (int, float)) or not (
        0.0 < max_utilization <= 1.0
    ):
        raise InvalidArgumentError(f"max_utilization must be in (0, 1], got {max_utilization!r}")
    return float(max_utilization)


def relaxation_time(arrival_rate: float, mean_service: float, servers: int, arrival_scv: float = 1.0,
                    service_scv: float = 1.0) -> float:
    """Heavy-traffic relaxation time (s) of a GI/G/c queue: the time its queue takes to
    forget its start, ``((ca² + cs²) / 2) / (c μ (1 - √ρ)²)`` (Whitt's M/M/1 estimate
    scaled by the variability of Kingman's formula); ``inf`` when ``ρ >= 1``.

    >>> round(relaxation_time(9.0, 0.1, 1), 3)
    37.974
    """
    rho = arrival_rate * mean_service / servers
    if rho >= 1.0:
        return math.inf
    return ((arrival_scv + service_scv) / 2.0) / (servers / mean_service * (1.0 - math.sqrt(rho)) ** 2)


def run_length(arrival_rate: float, service: _sim.Distribution, servers: int, *, customers: int, warmup: int,
               arrival_scv: float = 1.0, max_customers: int | None = None) -> tuple[int, int] | None:
    """``(customers, warmup)`` for a simulation at ``servers`` that covers
    :data:`RELAXATIONS` relaxation times (:func:`relaxation_time`), the first
    :data:`WARMUP_RELAXATIONS` of them as warm-up, and at least the given counts; ``None``
    when that needs more than ``max_customers`` requests (too close to saturation).

    >>> run_length(9.0, sim.Exponential(0.1), 1, customers=1000, warmup=100)
    (10253, 1709)
    """
    t = relaxation_time(arrival_rate, service.mean_value, servers, arrival_scv, service.scv)
    need = arrival_rate * RELAXATIONS * t
    if not math.isfinite(need) or (max_customers is not None and need > max_customers):
        return None
    return max(customers, math.ceil(need)), max(warmup, math.ceil(arrival_rate * WARMUP_RELAXATIONS * t))


def _analytic(
    lam: float, mean: float, q: float, slo: float, max_servers: int, max_utilization: float = 1.0
) -> CapacityResult:
    from qcore import queueing

    mu = 1.0 / mean
    service_q = -math.log1p(-q) * mean
    if service_q >= slo:
        raise InvalidArgumentError(
            f"slo_seconds = {slo} is not above the {q}-quantile of the service time alone "
            f"({service_q:.6g} s); no number of servers meets it"
        )
    evals: list[tuple[int, float, float, float]] = []

    def achieved(c: int) -> float:
        v = float(queueing.mmc(lam, mu, c).response_quantile(q))
        evals.append((c, v, math.nan, math.nan))
        return v

    first = _first_stable(lam * mean, max_utilization)
    c = _search(first, max_servers, lambda c: achieved(c) <= slo)
    v = next(e[1] for e in reversed(evals) if e[0] == c)
    return CapacityResult(c, v, None, "analytic", q, slo, lam * mean / c, tuple(evals))


def _search(first: int, max_servers: int, meets: Any) -> int:
    """Smallest c >= first with meets(c), assuming monotonicity: exponential search,
    then bisection."""
    if first > max_servers:
        raise InvalidArgumentError(
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
            raise InvalidArgumentError(
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
    max_utilization: float = 1.0,
    max_customers: int = 20_000_000,
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
        Simulation budget per candidate count (see :func:`qcore.simulate`). A candidate
        runs at least ``RELAXATIONS`` heavy-traffic relaxation times of its load (see
        :func:`relaxation_time`), the first ``WARMUP_RELAXATIONS`` of them as warm-up, so a
        queue that grows slowly near saturation shows it.
    max_utilization : float
        Headroom: only server counts at or below this utilization are candidates (the
        search never offers utilization ≥ 1).
    max_customers : int
        The longest run a candidate may need; a count closer to saturation than that
        budget can verify counts as missing the SLO (``nan`` in ``evaluations``).
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
    max_utilization = _check_max_utilization(max_utilization)
    if method not in ("auto", "analytic", "simulation"):
        raise InvalidArgumentError(
            f"method must be 'auto', 'analytic' or 'simulation', got {method!r}"
        )
    if (
        isinstance(max_servers, bool)
        or not isinstance(max_servers, int)
        or max_servers < 1
    ):
        raise InvalidArgumentError(f"max_servers must be a positive integer, got {max_servers!r}")
    if arrivals is None:
        if arrival_rate is None:
            raise InvalidArgumentError("give arrival_rate or arrivals")
        if not isinstance(arrival_rate, (int, float)) or not (
            math.isfinite(arrival_rate) and arrival_rate > 0
        ):
            raise InvalidArgumentError(
                f"arrival_rate must be a positive finite number, got {arrival_rate!r}"
            )
        arrivals = _sim.Poisson(rate=float(arrival_rate))
    elif arrival_rate is not None:
        raise InvalidArgumentError("give arrival_rate or arrivals, not both")
    is_mmc = (
        isinstance(arrivals, _sim.Poisson)
        and isinstance(service, _sim.Exponential)
        and not options
    )
    if method == "analytic" and not is_mmc:
        raise InvalidArgumentError(
            "method='analytic' needs Poisson arrivals, exponential service and no other options"
        )
    if is_mmc and method in ("auto", "analytic"):
        assert isinstance(arrivals, _sim.Poisson) and isinstance(
            service, _sim.Exponential
        )
        return _analytic(arrivals.rate, service.mean, q, slo, max_servers, max_utilization)
    return _simulated(
        arrivals,
        service,
        q,
        slo,
        max_servers,
        _Budget(customers, warmup, replications, seed, confidence, max_customers),
        conservative,
        max_utilization,
        options,
    )


@dataclass(frozen=True)
class _Budget:
    customers: int
    warmup: int
    replications: int
    seed: int
    confidence: float
    max_customers: int


def _arrival_scv(arrivals: _sim.ArrivalProcess) -> float:
    """Squared CV of the interarrival times where the process defines it (1 otherwise)."""
    if isinstance(arrivals, _sim.Renewal):
        return float(arrivals.interarrival.scv)
    return 1.0


def _simulated(
    arrivals: _sim.ArrivalProcess,
    service: _sim.Distribution | None,
    q: float,
    slo: float,
    max_servers: int,
    budget: _Budget,
    conservative: bool,
    max_utilization: float,
    options: dict[str, Any],
) -> CapacityResult:
    evals: list[tuple[int, float, float, float]] = []
    results: dict[int, Any] = {}
    checked: list[bool] = []
    rate = arrivals.mean_rate
    timed = service is not None and rate is not None and not options.get("batch_service")

    def run_length_at(c: int) -> tuple[int, int] | None:
        if not timed:
            return budget.customers, budget.warmup
        assert service is not None and rate is not None
        return run_length(rate, service, c, customers=budget.customers, warmup=budget.warmup,
                          arrival_scv=_arrival_scv(arrivals), max_customers=budget.max_customers)

    def meets(c: int) -> bool:
        length = run_length_at(c)
        if length is None:     # too close to saturation to verify in the budget
            evals.append((c, math.nan, math.nan, math.nan))
            return False
        customers, warmup = length
        r = _sim.simulate(
            arrivals,
            service,
            servers=c,
            customers=customers,
            warmup=warmup,
            seed=budget.seed,
            replications=budget.replications,
            confidence=budget.confidence,
            **options,
        )
        if r.completed == 0:
            raise InvalidArgumentError(f"no request completed with {c} servers; raise customers")
        lo, est, hi = r.response_quantile(q)
        if budget.replications == 1:
            est = float(r.response.quantile(q))
        evals.append((c, est, lo, hi))
        results[c] = r
        ok = (hi if conservative and budget.replications > 1 else est) <= slo
        if not ok and r.wait.count > 0 and r.wait.quantile(q) == 0.0 and not checked:
            # Most requests no longer wait; if even unlimited servers miss the SLO, stop.
            checked.append(True)
            free = _sim.simulate(
                arrivals,
                service,
                servers=min(customers + warmup, 1_000_000),
                customers=customers,
                warmup=warmup,
                seed=budget.seed,
                replications=1,
                **options,
            )
            floor_q = free.response.quantile(q)
            if floor_q is not None and floor_q > slo:
                raise InvalidArgumentError(
                    f"slo_seconds = {slo} is below the {q}-quantile of the response time "
                    f"with unlimited servers ({floor_q:.6g} s, the service time alone); "
                    f"no number of servers meets it"
                )
        return ok

    first = 1
    if timed:
        assert service is not None and rate is not None
        first = _first_stable(rate * service.mean_value, max_utilization)
    c = _search(first, max_servers, meets)
    r = results[c]
    _, est, lo, hi = next(e for e in reversed(evals) if e[0] == c)
    ci = None if budget.replications == 1 else (lo, hi)
    straddles = ci is not None and ci[0] <= slo <= ci[1]
    return CapacityResult(c, est, ci, "simulation", q, slo, r.utilization, tuple(evals), straddles)
