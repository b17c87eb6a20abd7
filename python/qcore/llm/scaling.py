"""Autoscaling an LLM fleet: :class:`Autoscale`, given to :func:`qcore.llm.simulate`.

The policies are those of :mod:`qcore.autoscale` (HPA, KPA, target tracking, predictive,
fixed), with their decision code unchanged; what they read is the fleet's LLM signal
(see :class:`Autoscale`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qcore import sim
from qcore.autoscale import HPA, KPA, Fixed, Predictive, ScalingPolicy, TargetTracking
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["METRICS", "Autoscale"]

#: The fleet signals a policy can scale on (``ttft_pNN`` takes any NN in (0, 100)).
METRICS = ("kv", "waiting", "running", "tokens_per_s", "ttft_p99")


def _default_cold_start() -> sim.Distribution:
    return sim.LogNormal(mean=120.0, cv=0.3)


@dataclass(frozen=True)
class Autoscale:
    """An autoscaled fleet: the :class:`qcore.llm.Fleet`'s ``replicas`` at the first
    arrival, then as many as ``policy`` asks for, within ``[min_replicas,
    max_replicas]``.

    Every ``sample_interval`` seconds the fleet's state is sampled and handed to the
    policy, which decides at its own period (HPA 15 s, KPA 2 s, target tracking 60 s,
    predictive 15 s). ``metric`` is what HPA, KPA and target tracking scale on (their
    own ``metric`` field is replaced by it), per routable replica (ready, not draining):

    - ``"kv"``: mean fraction of KV-cache blocks in use (target e.g. 0.7);
    - ``"waiting"`` / ``"running"``: mean waiting / running requests;
    - ``"tokens_per_s"``: output tokens per second over the sampling interval, per
      routable replica;
    - ``"ttft_pNN"`` (``"ttft_p99"``, ``"ttft_p95"``, ...): the NN-th percentile of the
      TTFT of the first tokens of the last ``ttft_window`` seconds, fleet-wide (in
      seconds; missing while no first token was emitted);
    - a mapping ``{metric: threshold, ...}``: KEDA's composite ``max_i(m_i /
      threshold_i)``; the policy's ``target`` is then a ratio (1.0: every metric at or
      below its threshold).

    HPA computes ``ceil(ready × value / target)`` (with its tolerance, stabilization and
    rate policies); KPA reads the total ``value × ready`` against ``target ×
    target_utilization`` (give ``KPA(target=...)``); target tracking tracks the mean
    value over its period; :class:`qcore.autoscale.Predictive` ignores ``metric`` and
    provisions from its forecast of the arrival rate, reading ``service_mean`` as the
    replica-seconds one request takes (1 / a replica's sustained request rate) and
    ``slo`` as the response-time objective of that M/M/c model (give both).
    ``min_replicas`` and ``max_replicas`` replace the policy's own bounds.

    A scale-up adds replicas that take ``cold_start`` seconds (a number or a
    :mod:`qcore.sim` distribution, drawn per replica with ``seed``; the default is a
    lognormal of mean 120 s and cv 0.3: a model load) before the router may pick them. A
    scale-down first cancels replicas still starting, then drains routable ones (the
    fewest waiting + running requests first): no new requests go to them, they finish
    what they hold, then leave. Replica-seconds (starting, ready and draining) are what
    the fleet costs.

    >>> from qcore import autoscale, llm
    >>> a = llm.Autoscale(autoscale.HPA(target=0.7), metric="kv", max_replicas=4)
    >>> a.sample_interval, a.min_replicas
    (1.0, 1)
    """

    policy: ScalingPolicy
    metric: str | Mapping[str, float] = "kv"
    min_replicas: int = 1
    max_replicas: int = 8
    cold_start: float | sim.Distribution = field(default_factory=_default_cold_start)
    sample_interval: float = 1.0
    ttft_window: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.policy, ScalingPolicy):
            raise InvalidTypeError(
                "policy must be a qcore.autoscale policy (HPA, KPA, TargetTracking, "
                f"Predictive or Fixed), got {type(self.policy).__name__}")
        for name in ("min_replicas", "max_replicas", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InvalidArgumentError(f"{name} must be a non-negative integer, got {v!r}")
        if self.min_replicas < 1:
            raise InvalidArgumentError(
                f"min_replicas must be at least 1 (requests need a routable replica), "
                f"got {self.min_replicas}")
        if self.max_replicas < self.min_replicas:
            raise InvalidArgumentError(
                f"max_replicas ({self.max_replicas}) must be at least min_replicas "
                f"({self.min_replicas})")
        for name in ("sample_interval", "ttft_window"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                    math.isfinite(v) and v > 0):
                raise InvalidArgumentError(f"{name} must be a finite number of seconds > 0, "
                                           f"got {v!r}")
        if isinstance(self.metric, Mapping):
            if not self.metric:
                raise InvalidArgumentError("metric: a composite needs at least one metric")
        elif not isinstance(self.metric, str):
            raise InvalidTypeError("metric must be a metric name or a mapping of "
                                   "metric names to thresholds")
        if isinstance(self.policy, KPA) and self.policy.target is None:
            raise InvalidArgumentError(
                "KPA(target=...) is required on an LLM fleet (the target of the metric)")

    def _cold(self) -> sim.Distribution:
        c = self.cold_start
        if isinstance(c, sim.Distribution):
            return c
        if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)):
            raise InvalidTypeError("cold_start must be a number of seconds or a qcore.sim "
                                   f"distribution, got {type(c).__name__}")
        return sim.Deterministic(float(c))

    def _spec(self) -> tuple[Any, ...]:
        p = self.policy
        kind, nums, strs = p._spec(math.nan, math.nan)
        nums = dict(nums)
        strs = dict(strs)
        lo, hi = float(self.min_replicas), float(self.max_replicas)
        if isinstance(p, (HPA, TargetTracking)):
            strs["metric"] = "external"
            nums["min_replicas"], nums["max_replicas"] = lo, hi
        elif isinstance(p, KPA):
            strs["metric"] = "external"
            nums["min_scale"], nums["max_scale"] = lo, hi
        elif isinstance(p, Predictive):
            if p.service_mean is None or (p.slo is None and p.wait_slo is None):
                raise InvalidArgumentError(
                    "Predictive(service_mean=..., slo=...) is required on an LLM fleet "
                    "(service_mean: the replica-seconds one request takes)")
            nums["min_replicas"], nums["max_replicas"] = lo, hi
        elif isinstance(p, Fixed):
            if not self.min_replicas <= p.replicas <= self.max_replicas:
                raise InvalidArgumentError(
                    f"Fixed({p.replicas}) is outside [min_replicas, max_replicas] = "
                    f"[{self.min_replicas}, {self.max_replicas}]")
        if isinstance(self.metric, Mapping):
            terms = [(str(k), float(v)) for k, v in self.metric.items()]
            composite = True
        else:
            terms = [(str(self.metric), 1.0)]
            composite = False
        return ((kind, nums, strs), terms, composite, int(self.min_replicas),
                int(self.max_replicas), self._cold(), float(self.sample_interval),
                float(self.ttft_window), int(self.seed))
