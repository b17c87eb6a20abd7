"""Autoscaling policies replayed on real or synthetic traffic.

A user hands over a day of arrivals (timestamps from logs, or a :mod:`qcore.sim`
arrival process) and a service-time model, picks a policy, and gets a per-window
timeline and run totals: which settings keep p99 under the SLO at the lowest replica
cost? The policy runs inside the simulator's event loop: it samples the state every
``sample_interval`` seconds (1 s, like Knative's stats reporting) and decides every
period; added replicas serve only after ``startup_delay`` (a number or any
:mod:`qcore.sim` distribution), removed busy replicas drain their work first.

Policies:

- :class:`HPA`: Kubernetes HorizontalPodAutoscaler (``ceil(current × metric / target)``,
  10 % tolerance, 15 s sync, stabilization windows, Pods/Percent rate policies);
- :class:`KPA`: Knative Pod Autoscaler (stable/panic windows, panic threshold,
  target utilization, rate limits, scale to zero with a grace period, activator);
- :class:`TargetTracking`: AWS target tracking on a rate or latency metric;
- :class:`Predictive`: Holt forecast of the next period's arrival rate, provisioned with
  the smallest M/M/c (Erlang C) replica count whose p99 meets the SLO;
- :class:`Fixed`: a constant replica count (the baseline).

>>> import numpy as np
>>> from qcore import autoscale, sim
>>> arr = sim.PiecewiseRate(times=[0.0, 600.0], rates=[2.0, 8.0])
>>> r = autoscale.replay(arr, sim.Exponential(mean=1.0), autoscale.HPA(target=0.5),
...                      initial_replicas=4, customers=8_000, slo=5.0)
>>> int(r.timeline["desired"][-1]) >= 14
True
>>> sorted(r.totals)[:3]
['arrived', 'completed', 'dropped']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from qcore import _qcore
from qcore.exceptions import InvalidArgumentError, InvalidTypeError
from qcore.overload import (
    OverloadPolicy,
    _arrivals,
    _classes,
    _customers,
    _duration,
    _nonneg_int,
    _optional_duration,
    _positive,
)

__all__ = [
    "HPA",
    "KPA",
    "Fixed",
    "Predictive",
    "ReplayResult",
    "ScalingPolicy",
    "TargetTracking",
    "compare",
    "replay",
]

_Spec = tuple[str, dict[str, float], dict[str, str]]


class ScalingPolicy:
    """Base class of the autoscaling policies."""

    def _spec(self, service_mean: float, slo: float) -> _Spec:
        raise NotImplementedError  # pragma: no cover - every subclass defines it


def _policies_str(ps: Sequence[tuple[str, float, float]], name: str) -> str:
    out = []
    for p in ps:
        if not (isinstance(p, (tuple, list)) and len(p) == 3):
            raise InvalidArgumentError(f"{name} entries must be (kind, value, period_seconds), got {p!r}")
        kind, value, period = p
        out.append(f"{kind}:{float(value)!r}:{float(period)!r}")
    return ",".join(out)


@dataclass(frozen=True)
class HPA(ScalingPolicy):
    """Kubernetes HPA (autoscaling/v2) with the documented defaults.

    ``metric`` is ``"utilization"`` (busy / ready replicas; ``target`` in (0, 1]),
    ``"in_flight"`` (requests waiting or in service per ready replica) or
    ``"request_rate"`` (arrivals per second per ready replica). Rate policies are
    ``(kind, value, period_seconds)`` with kind ``"pods"`` or ``"percent"``; select is
    ``"Max"``, ``"Min"`` or ``"Disabled"``.

    >>> HPA(target=0.6).down_stabilization
    300.0
    """

    metric: str = "utilization"
    target: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 100
    sync_period: float = 15.0
    metric_window: float = 15.0
    up_stabilization: float = 0.0
    down_stabilization: float = 300.0
    up_tolerance: float = 0.1
    down_tolerance: float = 0.1
    up_policies: Sequence[tuple[str, float, float]] = (("percent", 100.0, 15.0), ("pods", 4.0, 15.0))
    down_policies: Sequence[tuple[str, float, float]] = (("percent", 100.0, 15.0),)
    up_select: str = "Max"
    down_select: str = "Max"

    def _spec(self, service_mean: float, slo: float) -> _Spec:
        nums = {
            "target": float(self.target),
            "min_replicas": float(_nonneg_int(self.min_replicas, "min_replicas")),
            "max_replicas": float(_nonneg_int(self.max_replicas, "max_replicas")),
            "sync_period": float(self.sync_period),
            "metric_window": float(self.metric_window),
            "up_stabilization": float(self.up_stabilization),
            "down_stabilization": float(self.down_stabilization),
            "up_tolerance": float(self.up_tolerance),
            "down_tolerance": float(self.down_tolerance),
        }
        strs = {
            "metric": str(self.metric),
            "up_policies": _policies_str(self.up_policies, "up_policies"),
            "down_policies": _policies_str(self.down_policies, "down_policies"),
            "up_select": str(self.up_select),
            "down_select": str(self.down_select),
        }
        return ("hpa", nums, strs)


@dataclass(frozen=True)
class KPA(ScalingPolicy):
    """Knative Pod Autoscaler with the ``config-autoscaler`` defaults.

    ``target`` is the per-replica concurrency (``metric="concurrency"``, default 100) or
    requests per second (``metric="rps"``, default 200), multiplied by
    ``target_utilization`` (0.7). ``max_scale=0`` means unlimited; ``min_scale=0``
    allows scaling to zero (after ``scale_to_zero_grace`` seconds).

    >>> KPA(target=1.0).stable_window
    60.0
    """

    metric: str = "concurrency"
    target: float | None = None
    target_utilization: float = 0.7
    stable_window: float = 60.0
    panic_window_fraction: float = 0.1
    panic_threshold: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    tick: float = 2.0
    scale_to_zero_grace: float = 30.0
    scale_down_delay: float = 0.0
    min_scale: int = 0
    max_scale: int = 0

    def _spec(self, service_mean: float, slo: float) -> _Spec:
        nums = {
            "target_utilization": float(self.target_utilization),
            "stable_window": float(self.stable_window),
            "panic_window_fraction": float(self.panic_window_fraction),
            "panic_threshold": float(self.panic_threshold),
            "max_scale_up_rate": float(self.max_scale_up_rate),
            "max_scale_down_rate": float(self.max_scale_down_rate),
            "tick": float(self.tick),
            "scale_to_zero_grace": float(self.scale_to_zero_grace),
            "scale_down_delay": float(self.scale_down_delay),
            "min_scale": float(_nonneg_int(self.min_scale, "min_scale")),
            "max_scale": float(_nonneg_int(self.max_scale, "max_scale")),
        }
        if self.target is not None:
            nums["target"] = float(self.target)
        return ("kpa", nums, {"metric": str(self.metric)})


@dataclass(frozen=True)
class TargetTracking(ScalingPolicy):
    """AWS target tracking: one datapoint per ``period`` (60 s); scale out to
    ``ceil(current × metric / target)`` after ``out_points`` (3) datapoints above the
    target; scale in after ``in_points`` (15) datapoints below it by more than
    ``scale_in_margin`` (10 %); cooldowns of 300 s.

    ``metric`` is ``"rate"`` (arrivals per second per replica) or ``"latency"`` (the
    mean response time of the period's completions, or its ``quantile``).

    >>> TargetTracking(target=5.0).scale_in_cooldown
    300.0
    """

    target: float
    metric: str = "rate"
    quantile: float | None = None
    period: float = 60.0
    out_points: int = 3
    in_points: int = 15
    scale_in_margin: float = 0.1
    scale_out_cooldown: float = 300.0
    scale_in_cooldown: float = 300.0
    disable_scale_in: bool = False
    min_replicas: int = 1
    max_replicas: int = 100

    def _spec(self, service_mean: float, slo: float) -> _Spec:
        nums = {
            "target": float(self.target),
            "period": float(self.period),
            "out_points": float(_nonneg_int(self.out_points, "out_points")),
            "in_points": float(_nonneg_int(self.in_points, "in_points")),
            "scale_in_margin": float(self.scale_in_margin),
            "scale_out_cooldown": float(self.scale_out_cooldown),
            "scale_in_cooldown": float(self.scale_in_cooldown),
            "disable_scale_in": 1.0 if self.disable_scale_in else 0.0,
            "min_replicas": float(_nonneg_int(self.min_replicas, "min_replicas")),
            "max_replicas": float(_nonneg_int(self.max_replicas, "max_replicas")),
        }
        if self.quantile is not None:
            nums["quantile"] = float(self.quantile)
        return ("target_tracking", nums, {"metric": str(self.metric)})


@dataclass(frozen=True)
class Predictive(ScalingPolicy):
    """Forecast the arrival rate ``lead`` periods ahead (Holt's level + trend smoothing
    with ``alpha``, ``beta``), add the waiting requests as demand to drain within a
    period, and provision the smallest replica count whose M/M/c response-time
    ``quantile`` meets the SLO. ``service_mean`` and ``slo`` default to the service
    distribution's mean and the replay's SLO. With ``wait_slo`` the policy provisions
    for the waiting-time quantile instead (for long requests, whose service-time tail
    alone exceeds any useful response-time SLO). Scale-downs take the max
    recommendation over ``down_window`` seconds.

    >>> Predictive().quantile
    0.99
    """

    service_mean: float | None = None
    slo: float | None = None
    wait_slo: float | None = None
    quantile: float = 0.99
    period: float = 15.0
    alpha: float = 0.5
    beta: float = 0.2
    lead: float = 1.0
    headroom: float = 1.0
    down_window: float = 300.0
    min_replicas: int = 1
    max_replicas: int = 100

    def _spec(self, service_mean: float, slo: float) -> _Spec:
        nums = {
            "service_mean": float(self.service_mean if self.service_mean is not None else service_mean),
            "slo": float(self._slo(slo)),
            "on_wait": 1.0 if self.wait_slo is not None else 0.0,
            "quantile": float(self.quantile),
            "period": float(self.period),
            "alpha": float(self.alpha),
            "beta": float(self.beta),
            "lead": float(self.lead),
            "headroom": float(self.headroom),
            "down_window": float(self.down_window),
            "min_replicas": float(_nonneg_int(self.min_replicas, "min_replicas")),
            "max_replicas": float(_nonneg_int(self.max_replicas, "max_replicas")),
        }
        return ("predictive", nums, {})

    def _slo(self, slo: float) -> float:
        if self.wait_slo is not None:
            return float(self.wait_slo)
        return float(self.slo if self.slo is not None else slo)

    def provision(self, rate: float, service_mean: float, slo: float) -> int:
        """The replica count this policy asks for at a steady ``rate``.

        >>> Predictive().provision(10.0, service_mean=1.0, slo=6.0)
        12
        """
        sm = self.service_mean if self.service_mean is not None else service_mean
        return int(_qcore._policy_provision(float(rate), float(sm), self._slo(slo), float(self.quantile),
                                            self.wait_slo is not None,
                                            _nonneg_int(self.min_replicas, "min_replicas"),
                                            _nonneg_int(self.max_replicas, "max_replicas")))


@dataclass(frozen=True)
class Fixed(ScalingPolicy):
    """A constant replica count.

    >>> Fixed(3).replicas
    3
    """

    replicas: int

    def _spec(self, service_mean: float, slo: float) -> _Spec:
        return ("fixed", {"replicas": float(_nonneg_int(self.replicas, "replicas"))}, {})


@dataclass
class ReplayResult:
    """The outcome of :func:`replay`.

    ``timeline`` has one row per window: ``start`` (absolute time of the window's
    start), ``arrivals``, ``completed``, ``good`` (completed within the SLO),
    ``dropped`` (blocked, timed out or shed), ``p99`` (the window's response-time
    quantile over requests that arrived in it; named after ``quantile``, e.g. ``p99.9``), ``desired`` (replicas asked for at the
    end of the window), ``ready``, ``starting``, ``queue`` (time averages), ``queue_max``,
    ``busy``. ``totals``: ``replica_seconds`` (cost), ``mean_replicas``,
    ``slo_attainment`` (completed within the SLO over arrived), ``p50``, ``p99``,
    ``p999``, ``scale_events``, ``arrived``, ``completed``, ``dropped``, ``shed``,
    ``duration``. ``events``: every change of the replica count asked for.
    """

    policy: str
    timeline: pl.DataFrame
    totals: dict[str, Any]
    events: pl.DataFrame = field(repr=False)
    #: Name of the timeline's latency-quantile column (``"p99"`` for quantile 0.99).
    latency_column: str = "p99"


def _policy(p: Any, name: str = "policy") -> ScalingPolicy:
    if not isinstance(p, ScalingPolicy):
        raise InvalidTypeError(f"{name} must be a qcore.autoscale policy, got {type(p).__name__}")
    return p


def replay(
    arrivals: Any,
    service: Any,
    policy: ScalingPolicy,
    *,
    slo: float,
    initial_replicas: int = 1,
    startup_delay: Any = None,
    customers: int | None = None,
    patience: Any = None,
    queue_capacity: int | None = None,
    admission: OverloadPolicy | None = None,
    classes: Any = None,
    quantile: float = 0.99,
    window: float = 60.0,
    sample_interval: float = 1.0,
    seed: int = 1,
    replication: int = 0,
) -> ReplayResult:
    """Replay traffic through an autoscaling policy in the simulator.

    Parameters
    ----------
    arrivals : qcore.sim arrival process, or sorted timestamps in seconds (numpy,
        sequence or polars Series)
    service : qcore.sim distribution, a number, or per-request service times (e.g. the
        measured execution times of the trace's requests)
    policy : :class:`HPA`, :class:`KPA`, :class:`TargetTracking`, :class:`Predictive`
        or :class:`Fixed`
    slo : response-time objective (seconds) for SLO attainment
    initial_replicas : replicas ready at the start
    startup_delay : cold start of added replicas: seconds, or a qcore.sim distribution
    customers : requests to simulate (default: the whole trace)
    patience : requests waiting longer leave (seconds or a distribution)
    queue_capacity : waiting room (requests beyond it are blocked)
    admission : an optional :mod:`qcore.overload` policy in front of the queue
    classes : per-request priority classes (for ``admission=Priority(...)``)
    quantile : latency quantile reported per window
    window : timeline window in seconds
    sample_interval : the policy's metric sampling interval in seconds
    seed, replication : random streams (same seed: same traffic and work)

    Raises
    ------
    ValueError, TypeError
        On invalid arguments or policy settings; the message names the argument.

    Examples
    --------
    >>> from qcore import autoscale, sim
    >>> r = autoscale.replay(sim.Poisson(rate=4.0), sim.Exponential(mean=1.0),
    ...                      autoscale.Fixed(6), initial_replicas=6, customers=2_000, slo=5.0)
    >>> r.totals["mean_replicas"]
    6.0
    """
    pol = _policy(policy)
    arr = _arrivals(arrivals)
    svc = _duration(service, "service", per_request=True)
    n = _customers(arr, customers)
    init = _nonneg_int(initial_replicas, "initial_replicas")
    slo = _positive(slo, "slo")
    if not 0.0 < float(quantile) < 1.0:
        raise InvalidArgumentError(f"quantile must be in (0, 1), got {quantile}")
    window = _positive(window, "window")
    sample_interval = _positive(sample_interval, "sample_interval")
    startup = _optional_duration(startup_delay, "startup_delay")
    pat = _optional_duration(patience, "patience")
    qc = None if queue_capacity is None else _nonneg_int(queue_capacity, "queue_capacity")
    cl = _classes(classes, n)
    adm = None
    disc = "fcfs"
    if admission is not None:
        if not isinstance(admission, OverloadPolicy):
            raise InvalidTypeError(
                f"admission must be a qcore.overload policy, got {type(admission).__name__}"
            )
        adm = admission._spec()
        disc = admission.discipline
    if init == 0 and not isinstance(pol, KPA):
        raise InvalidArgumentError("initial_replicas must be at least 1 unless the policy is KPA")
    spec = pol._spec(svc.mean_value, slo)
    d = _qcore._policy_replay(
        arr, svc, init, n, int(seed), startup, pat, qc, disc, spec, adm, cl,
        sample_interval, window, slo, float(quantile), int(replication),
    )
    col = f"p{float(quantile) * 100:g}"
    tl = pl.DataFrame(d["timeline"]).rename({"latency_q": col})
    ev = pl.DataFrame(d["events"])
    return ReplayResult(policy=type(pol).__name__, timeline=tl, totals=dict(d["totals"]), events=ev,
                        latency_column=col)


def compare(
    arrivals: Any,
    service: Any,
    policies: Mapping[str, ScalingPolicy],
    *,
    slo: float,
    **kwargs: Any,
) -> pl.DataFrame:
    """Replay several policies on the same arrivals and service times (common random
    numbers) and return one row per policy: ``replica_seconds``, ``mean_replicas``,
    ``slo_attainment``, ``p50``, ``p99``, ``p999``, ``scale_events``, ``dropped``,
    ``arrived``, ``completed``. Keyword arguments go to :func:`replay`.

    Examples
    --------
    >>> from qcore import autoscale, sim
    >>> t = autoscale.compare(sim.Poisson(rate=4.0), sim.Exponential(mean=1.0),
    ...                       {"fixed": autoscale.Fixed(8), "hpa": autoscale.HPA(target=0.6)},
    ...                       slo=5.0, initial_replicas=8, customers=3_000)
    >>> t["policy"].to_list()
    ['fixed', 'hpa']
    """
    if not isinstance(policies, Mapping) or not policies:
        raise InvalidTypeError("policies must be a non-empty mapping of name -> policy")
    rows = []
    for name, p in policies.items():
        r = replay(arrivals, service, _policy(p, f"policies[{name!r}]"), slo=slo, **kwargs)
        t = r.totals
        rows.append({
            "policy": str(name),
            "replica_seconds": t["replica_seconds"],
            "mean_replicas": t["mean_replicas"],
            "slo_attainment": t["slo_attainment"],
            "p50": t["p50"],
            "p99": t["p99"],
            "p999": t["p999"],
            "scale_events": t["scale_events"],
            "dropped": t["dropped"],
            "arrived": t["arrived"],
            "completed": t["completed"],
        })
    return pl.DataFrame(rows)
