# Native functions of qcore._qcore for the autoscaling and overload-control policies
# (rust/python/policy.rs). The documented public API is qcore.autoscale and qcore.overload.

from typing import Any

import numpy as np
import numpy.typing as npt

# (kind, a, b, values) as built by qcore.sim distributions' _spec().
_DistSpec = tuple[str, float, float, npt.NDArray[np.float64] | None]
# (kind, a, b, c, d, x, y, dist) as built by qcore.sim arrival processes' _spec().
_ArrivalSpec = tuple[
    str, float, float, float, float,
    npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None, _DistSpec | None,
]
# (kind, numeric parameters, string parameters).
_PolicySpec = tuple[str, dict[str, float], dict[str, str]]

def _policy_replay(
    arrivals: _ArrivalSpec,
    service: _DistSpec,
    initial_replicas: int,
    customers: int,
    seed: int,
    startup_delay: _DistSpec | None,
    patience: _DistSpec | None,
    queue_capacity: int | None,
    discipline: str,
    policy: _PolicySpec,
    admission: _PolicySpec | None,
    classes: npt.NDArray[np.uint8] | None,
    sample_interval: float,
    window: float,
    slo: float,
    quantile: float,
    replication: int,
) -> dict[str, Any]:
    """Replay through an autoscaling policy (kind 'hpa', 'kpa', 'target_tracking',
    'predictive' or 'fixed'); a dict with 'timeline' (dict of numpy columns), 'totals'
    (dict) and 'events' (dict of numpy columns t/from/to)."""

def _policy_overload(
    arrivals: _ArrivalSpec,
    service: _DistSpec,
    servers: int,
    customers: int,
    seed: int,
    patience: _DistSpec | None,
    queue_capacity: int | None,
    discipline: str,
    admission: _PolicySpec | None,
    classes: npt.NDArray[np.uint8] | None,
    slo: float,
    timeout: float,
    replication: int,
) -> dict[str, Any]:
    """One overload-control run; a dict with 'all' (metrics dict), 'high'/'low' (with
    classes), 'client_throttled' (int) and 'final_limit' (float or None)."""

def _policy_provision(
    rate: float,
    service_mean: float,
    slo: float,
    quantile: float,
    on_wait: bool,
    min_replicas: int,
    max_replicas: int,
) -> int:
    """Smallest M/M/c replica count whose response (or wait) quantile meets the SLO."""
