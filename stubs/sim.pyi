# Native functions of the simulator (qcore.sim, qcore.simulate, qcore.capacity).
from typing import Any

import numpy as np
import numpy.typing as npt

_DistSpec = tuple[str, float, float, npt.NDArray[np.float64] | None]
_ArrivalSpec = tuple[
    str,
    float,
    float,
    float,
    float,
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
    _DistSpec | None,
]

def _sim_check_dist(spec: _DistSpec, name: str) -> tuple[float, float]:
    """Validate a distribution spec; returns ``(mean, squared cv)``."""

def _sim_check_arrivals(spec: _ArrivalSpec) -> float | None:
    """Validate an arrival spec; returns the long-run rate (or None)."""

def _sim_mean_ci(values: npt.NDArray[np.float64], confidence: float) -> tuple[float, float, float]:
    """``(lo, mean, hi)`` Student-t confidence interval of the mean of ``values``."""

def _sim_run(
    arrivals: _ArrivalSpec,
    service: _DistSpec | None,
    servers: int,
    customers: int,
    warmup: int,
    seed: int,
    discipline: str,
    queue_capacity: int | None,
    patience: _DistSpec | None,
    batching: tuple[int, float, float, float, npt.NDArray[np.float64] | None] | None,
    schedule: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]] | None,
    startup_delay: _DistSpec | None,
    records: bool,
    relative_accuracy: float,
    replications: int,
    method: str,
    threads: int,
) -> list[dict[str, Any]]:
    """Run ``replications`` independent replications; one dict of statistics (sketches
    as bytes, optional records as numpy arrays) per replication."""
