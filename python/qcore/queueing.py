"""Analytic queueing models: Erlang B and C, M/M/c, M/M/c/K, M/G/1 and G/G approximations.

All the mathematics runs in qcore's Rust core; this module converts arguments and wraps
the results in frozen objects with ``as_dict()``.

- :func:`erlang_b`, :func:`erlang_c`: loss and waiting probabilities, numerically stable
  from 1 to 10**12 servers (no factorials, no overflow), scalar or element-wise over
  arrays.
- :func:`mmc` (and :func:`mm1`): M/M/c with exact waiting- and response-time
  distributions and their quantiles; :func:`min_servers_mmc` sizes a pool for a
  response-time SLO.
- :func:`mmck`: M/M/c/K with a finite system (defined for any load).
- :func:`mg1` (and :func:`md1`): M/G/1 by Pollaczek–Khinchine (exact mean values).
- :func:`kingman` (G/G/1) and :func:`allen_cunneen` (G/G/c): two-moment
  **approximations**; their results carry ``approximation=True``.

Rates are per second and times in seconds (any consistent unit works). Invalid arguments
raise :class:`qcore.exceptions.InvalidArgumentError` (a ``ValueError``) naming the
argument; a model that needs a steady state raises
:class:`qcore.exceptions.UnstableSystemError` (also a ``ValueError``) when its
utilization is at least one.

>>> from qcore import queueing
>>> round(queueing.erlang_c(2, 1.0), 12)
0.333333333333
>>> m = queueing.mmc(arrival_rate=9.0, service_rate=1.0, servers=10)
>>> round(m.p_wait, 4), round(m.mean_response, 4)
(0.6687, 1.6687)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from qcore import _qcore
from qcore._convert import as_f64, as_i64, is_polars_series
from qcore.exceptions import InvalidArgumentError, InvalidTypeError

__all__ = [
    "MAX_SERVERS",
    "GGApproximation",
    "MG1Result",
    "MMcKResult",
    "MMcResult",
    "allen_cunneen",
    "erlang_b",
    "erlang_c",
    "kingman",
    "md1",
    "mg1",
    "min_servers_mmc",
    "mm1",
    "mmc",
    "mmck",
]

#: The largest server count the models accept.
MAX_SERVERS = 10**12

_I64 = 2**63
FloatOrArray = float | npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------
# Argument conversion
# --------------------------------------------------------------------------------------


def _real(x: Any, name: str) -> float:
    """A real scalar as a float (range checks happen in the core)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise InvalidTypeError(f"{name} must be a real number, got {type(x).__name__}")
    return float(x)


def _count(x: Any, name: str) -> int:
    """An integer count (an integral float such as ``4.0`` is accepted)."""
    if isinstance(x, bool):
        raise InvalidTypeError(f"{name} must be an integer, got bool")
    if isinstance(x, numbers.Integral):
        v = int(x)
    elif isinstance(x, numbers.Real):
        f = float(x)
        if not (math.isfinite(f) and f.is_integer()):
            raise InvalidArgumentError(f"{name} must be an integer, got {x!r}")
        v = int(f)
    else:
        raise InvalidTypeError(f"{name} must be an integer, got {type(x).__name__}")
    if not -_I64 <= v < _I64:
        raise InvalidArgumentError(f"{name} must be at most {MAX_SERVERS}, got {v}")
    return v


def _is_scalar(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, np.ndarray)


def _servers_array(x: Any) -> npt.NDArray[np.int64]:
    if is_polars_series(x):
        return as_i64(x, "servers")
    arr = np.asarray(x)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise InvalidTypeError(f"servers must be an integer array, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = ~(np.isfinite(arr) & (arr == np.round(arr)))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise InvalidArgumentError(
                f"servers contains {float(arr.ravel()[i])!r} at index {i} (must be an integer)"
            )
    if arr.size and (arr.max() >= _I64 or arr.min() < -_I64):
        raise InvalidArgumentError(f"servers contains values above {MAX_SERVERS}")
    return arr.astype(np.int64, copy=False)


def _load_array(x: Any, name: str) -> npt.NDArray[np.float64]:
    if is_polars_series(x):
        return as_f64(x, name)
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
        raise InvalidTypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _erlang(
    servers: Any,
    offered_load: Any,
    scalar: Callable[[int, float], float],
    array: Callable[
        [npt.NDArray[np.int64], npt.NDArray[np.float64]], npt.NDArray[np.float64]
    ],
) -> FloatOrArray:
    if _is_scalar(servers) and _is_scalar(offered_load):
        return scalar(_count(servers, "servers"), _real(offered_load, "offered_load"))
    s = _servers_array(servers)
    a = _load_array(offered_load, "offered_load")
    try:
        s, a = np.broadcast_arrays(s, a)
    except ValueError:
        raise InvalidArgumentError(
            f"servers (shape {s.shape}) and offered_load (shape {a.shape}) do not broadcast"
        ) from None
    shape = s.shape
    out = array(np.ascontiguousarray(s.ravel()), np.ascontiguousarray(a.ravel()))
    return out.reshape(shape)


def _map(
    x: Any,
    name: str,
    scalar: Callable[[float], float],
    array: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
) -> FloatOrArray:
    """Apply a core function to a scalar (-> float) or to an array of any shape."""
    if _is_scalar(x):
        return scalar(_real(x, name))
    if is_polars_series(x):
        return array(as_f64(x, name))
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
        raise InvalidTypeError(
            f"{name} must be a real number or a numeric array, got dtype {arr.dtype}"
        )
    flat = np.ascontiguousarray(arr.ravel(), dtype=np.float64)
    return array(flat).reshape(arr.shape)


# --------------------------------------------------------------------------------------
# Erlang B and C
# --------------------------------------------------------------------------------------


@overload
def erlang_b(servers: int, offered_load: float) -> float: ...
@overload
def erlang_b(
    servers: npt.ArrayLike, offered_load: npt.ArrayLike
) -> npt.NDArray[np.float64]: ...
def erlang_b(servers: Any, offered_load: Any) -> FloatOrArray:
    """Erlang B: the probability that an arrival is lost in M/M/c/c (no waiting room).

    ``B(c, a) = (a^c / c!) / Σ_{k≤c} a^k / k!`` for ``c`` servers and an offered load of
    ``a = λ/μ`` Erlangs. Evaluated without factorials or powers: scaled series away
    from the mode, and Temme's uniform asymptotic expansion near it for 1,000 servers or
    more, so each value costs at most about a thousand steps and usually far fewer. The
    logarithm of ``B`` is exact to a few ulps, so the relative error is about
    ``1e-15 * max(1, |ln B|)`` (better than 1e-12 even where ``B`` is near 1e-300) from
    1 to 10**12 servers and any finite load; values below about 1e-308 underflow to 0.

    Parameters
    ----------
    servers : int or array_like of int
        Number of servers, ``1 <= servers <= 10**12``.
    offered_load : float or array_like
        Offered load in Erlangs (``arrival_rate / service_rate``), finite and ``>= 0``.
        Any load is allowed (the loss system is always stable).

    Returns
    -------
    float, or a numpy array with the broadcast shape of the arguments.

    Raises
    ------
    InvalidArgumentError (ValueError)
        ``servers`` not an integer or out of range; ``offered_load`` negative or not
        finite (the message names the argument and, for arrays, the index).

    Examples
    --------
    >>> from qcore.queueing import erlang_b
    >>> round(erlang_b(10, 5.0), 6)
    0.018385
    >>> erlang_b([1, 2, 3], 1.0).round(4)
    array([0.5   , 0.2   , 0.0625])
    """
    return _erlang(servers, offered_load, _qcore.erlang_b, _qcore.erlang_b_array)


@overload
def erlang_c(servers: int, offered_load: float) -> float: ...
@overload
def erlang_c(
    servers: npt.ArrayLike, offered_load: npt.ArrayLike
) -> npt.NDArray[np.float64]: ...
def erlang_c(servers: Any, offered_load: Any) -> FloatOrArray:
    """Erlang C: the probability that an arrival waits in M/M/c.

    ``C(c, a) = B / (1 − ρ (1 − B))`` with ``B = erlang_b(c, a)`` and ``ρ = a / c < 1``;
    always ``C >= B``. Stable from 1 to 10**12 servers.

    Parameters
    ----------
    servers : int or array_like of int
        Number of servers, ``1 <= servers <= 10**12``.
    offered_load : float or array_like
        Offered load in Erlangs, ``0 <= offered_load < servers``.

    Returns
    -------
    float, or a numpy array with the broadcast shape of the arguments.

    Raises
    ------
    InvalidArgumentError (ValueError)
        As :func:`erlang_b`.
    UnstableSystemError (ValueError)
        ``offered_load >= servers`` (no steady state); for arrays the message names
        the first such index.

    Examples
    --------
    >>> from qcore.queueing import erlang_c
    >>> round(erlang_c(2, 1.0), 12)
    0.333333333333
    >>> float(erlang_c(100_000, 99_000.0)) > 0
    True
    """
    return _erlang(servers, offered_load, _qcore.erlang_c, _qcore.erlang_c_array)


# --------------------------------------------------------------------------------------
# Result objects
# --------------------------------------------------------------------------------------


class _AsDict:
    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        """The public fields as a plain ``dict`` (JSON-friendly scalars)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)  # type: ignore[arg-type]
            if not f.name.startswith("_")
        }


@dataclass(frozen=True, slots=True)
class MMcResult(_AsDict):
    """A solved M/M/c queue (build it with :func:`mmc` or :func:`mm1`); frozen.

    Attributes
    ----------
    arrival_rate, service_rate, servers
        The model: Poisson arrivals at ``λ``, ``c`` exponential servers at rate ``μ``.
    offered_load
        ``a = λ/μ`` Erlangs, the mean number of busy servers.
    utilization
        ``ρ = λ / (c μ)``.
    p_wait
        Erlang C, the probability that an arrival waits.
    mean_wait, mean_response
        Mean time in queue and in system (seconds).
    L, Lq
        Mean number in system and in queue.
    throughput
        Completions per second (``λ`` in steady state).
    model, approximation
        ``"M/M/c"``; ``False`` (the values are exact).

    The wait is 0 with probability ``1 − C``, otherwise exponential with rate
    ``cμ − λ``; the response time adds an independent exponential service. The methods
    evaluate these exact distributions (including the case ``cμ − λ = μ``) and invert
    them numerically to a relative tolerance of 1e-15. Each method takes a float
    (returns a float) or an array of any shape (returns a numpy array of that shape).
    """

    arrival_rate: float
    service_rate: float
    servers: int
    offered_load: float
    utilization: float
    p_wait: float
    mean_wait: float
    mean_response: float
    L: float
    Lq: float
    throughput: float
    model: str = "M/M/c"
    approximation: bool = False
    _inner: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def _from_inner(cls, inner: Any) -> MMcResult:
        return cls(
            arrival_rate=inner.arrival_rate,
            service_rate=inner.service_rate,
            servers=inner.servers,
            offered_load=inner.offered_load,
            utilization=inner.utilization,
            p_wait=inner.p_wait,
            mean_wait=inner.mean_wait,
            mean_response=inner.mean_response,
            L=inner.L,
            Lq=inner.Lq,
            throughput=inner.throughput,
            _inner=inner,
        )

    def __reduce__(self) -> tuple[Any, tuple[float, float, int]]:
        return (mmc, (self.arrival_rate, self.service_rate, self.servers))

    def response_quantile(self, q: Any) -> FloatOrArray:
        """The ``q``-quantile of the response time (wait + service), in seconds.

        ``q`` in ``[0, 1]`` (a float or an array); ``q = 1`` gives ``inf``.
        ``response_cdf(response_quantile(q)) == q`` to about 1e-15.

        Raises InvalidArgumentError (ValueError) for ``q`` outside ``[0, 1]`` or NaN.

        >>> from qcore.queueing import mm1
        >>> round(mm1(0.9, 1.0).response_quantile(0.99), 6)  # Exp(0.1): ln(100)/0.1
        46.051702
        """
        return _map(
            q, "q", self._inner.response_quantile, self._inner.response_quantile_array
        )

    def wait_quantile(self, q: Any) -> FloatOrArray:
        """The ``q``-quantile of the time in queue: 0 when ``q <= 1 − p_wait``.

        >>> from qcore.queueing import mmc
        >>> mmc(1.0, 1.0, 2).wait_quantile(0.5)
        0.0
        """
        return _map(q, "q", self._inner.wait_quantile, self._inner.wait_quantile_array)

    def response_cdf(self, t: Any) -> FloatOrArray:
        """``P(response time <= t)`` (0 for ``t < 0``).

        >>> from qcore.queueing import mm1
        >>> round(mm1(0.5, 1.0).response_cdf(2.0), 6)  # 1 - exp(-0.5 * 2)
        0.632121
        """
        return _map(t, "t", self._inner.response_cdf, self._inner.response_cdf_array)

    def wait_cdf(self, t: Any) -> FloatOrArray:
        """``P(time in queue <= t)``; equals ``1 − p_wait`` at ``t = 0``.

        >>> from qcore.queueing import mm1
        >>> round(mm1(0.5, 1.0).wait_cdf(0.0), 6)
        0.5
        """
        return _map(t, "t", self._inner.wait_cdf, self._inner.wait_cdf_array)

    def response_sf(self, t: float) -> float:
        """``P(response time > t)``, accurate far in the tail (no ``1 − cdf`` cancellation)."""
        return float(self._inner.response_sf(_real(t, "t")))

    def wait_sf(self, t: float) -> float:
        """``P(time in queue > t) = p_wait · exp(−(cμ − λ) t)`` for ``t >= 0``."""
        return float(self._inner.wait_sf(_real(t, "t")))

    def response_pdf(self, t: float) -> float:
        """The density of the response time at ``t``."""
        return float(self._inner.response_pdf(_real(t, "t")))


@dataclass(frozen=True, slots=True)
class MMcKResult(_AsDict):
    """A solved M/M/c/K queue (build it with :func:`mmck`); frozen.

    Attributes
    ----------
    arrival_rate, service_rate, servers, capacity
        The model; ``capacity`` (K) counts requests in service plus waiting.
    offered_load
        ``λ/μ`` Erlangs (offered, before blocking).
    p_block
        Probability that an arrival is blocked (finds ``K`` present).
    p_wait
        Probability that an *admitted* arrival waits.
    L, Lq
        Mean number in system and waiting.
    mean_response, mean_wait
        Mean time in system and in queue of *admitted* requests.
    throughput
        Admitted requests per second, ``λ (1 − p_block)``.
    utilization
        Mean fraction of busy servers, ``throughput / (c μ)``.
    model, approximation
        ``"M/M/c/K"``; ``False``.
    """

    arrival_rate: float
    service_rate: float
    servers: int
    capacity: int
    offered_load: float
    p_block: float
    p_wait: float
    L: float
    Lq: float
    mean_response: float
    mean_wait: float
    throughput: float
    utilization: float
    model: str = "M/M/c/K"
    approximation: bool = False
    _inner: Any = field(default=None, repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, tuple[float, float, int, int]]:
        return (
            mmck,
            (self.arrival_rate, self.service_rate, self.servers, self.capacity),
        )

    def state_probabilities(self) -> npt.NDArray[np.float64]:
        """The stationary distribution ``p_0 .. p_K`` of the number in system.

        Raises InvalidArgumentError (ValueError) when ``capacity > 10**8``.

        >>> from qcore.queueing import mmck
        >>> mmck(1.0, 1.0, 1, 2).state_probabilities().round(6)
        array([0.333333, 0.333333, 0.333333])
        """
        return self._inner.state_probabilities()  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class MG1Result(_AsDict):
    """Exact M/G/1 mean values by Pollaczek–Khinchine (see :func:`mg1`); frozen.

    Attributes
    ----------
    arrival_rate, service_mean, service_scv
        The model: Poisson arrivals, general service with this mean and squared
        coefficient of variation.
    utilization, p_wait
        ``ρ = λ E[S]``; the probability of waiting (``ρ``, exact for M/G/1).
    mean_wait, mean_response, L, Lq, throughput
        Mean values (seconds, counts, per second).
    model, approximation
        ``"M/G/1"`` or ``"M/D/1"``; ``False``.
    """

    arrival_rate: float
    service_mean: float
    service_scv: float
    utilization: float
    p_wait: float
    mean_wait: float
    mean_response: float
    L: float
    Lq: float
    throughput: float
    model: str = "M/G/1"
    approximation: bool = False


@dataclass(frozen=True, slots=True)
class GGApproximation(_AsDict):
    """An **approximate** G/G/1 or G/G/c result (:func:`kingman`, :func:`allen_cunneen`).

    ``approximation`` is always ``True`` and ``method`` names the formula. The mean
    values are two-moment approximations (exact only for Poisson arrivals with
    exponential service); ``p_wait`` is ``ρ`` (Kingman) or Erlang C (Allen–Cunneen),
    also approximate. Frozen.
    """

    method: str
    arrival_rate: float
    service_mean: float
    servers: int
    arrival_scv: float
    service_scv: float
    utilization: float
    p_wait: float
    mean_wait: float
    mean_response: float
    L: float
    Lq: float
    throughput: float
    model: str = "G/G/c"
    approximation: bool = True


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


def mmc(arrival_rate: float, service_rate: float, servers: int) -> MMcResult:
    """Solve the M/M/c queue (Poisson arrivals, ``c`` exponential servers, FCFS).

    Parameters
    ----------
    arrival_rate : float
        ``λ`` arrivals per second, finite and ``>= 0``.
    service_rate : float
        ``μ`` completions per second per server, finite and ``> 0``.
    servers : int
        ``c``, ``1 <= c <= 10**12``.

    Returns
    -------
    MMcResult
        ``.utilization .p_wait .mean_wait .mean_response .L .Lq .throughput`` and the
        exact distributions: ``.response_quantile(q) .wait_quantile(q)
        .response_cdf(t) .wait_cdf(t)``.

    Raises
    ------
    InvalidArgumentError (ValueError)
        A rate negative, zero (``service_rate``) or not finite; ``servers`` not an
        integer in range.
    UnstableSystemError (ValueError)
        ``λ >= c μ``.

    Examples
    --------
    >>> from qcore.queueing import mmc
    >>> m = mmc(arrival_rate=1.0, service_rate=1.0, servers=2)
    >>> round(m.p_wait, 12), round(m.mean_response, 12)
    (0.333333333333, 1.333333333333)
    >>> round(m.response_quantile(0.99), 6)
    5.665961
    """
    inner = _qcore.MMcModel(
        _real(arrival_rate, "arrival_rate"),
        _real(service_rate, "service_rate"),
        _count(servers, "servers"),
    )
    return MMcResult._from_inner(inner)


def mm1(arrival_rate: float, service_rate: float) -> MMcResult:
    """Solve M/M/1: :func:`mmc` with one server.

    >>> from qcore.queueing import mm1
    >>> round(mm1(0.9, 1.0).mean_response, 12)  # 1 / (μ − λ) = 10 / μ at ρ = 0.9
    10.0
    """
    return mmc(arrival_rate, service_rate, 1)


def mmck(
    arrival_rate: float, service_rate: float, servers: int, capacity: int
) -> MMcKResult:
    """Solve M/M/c/K: M/M/c with at most ``capacity`` requests in the system.

    The system is finite, so every load is allowed (including ``λ >= c μ``); arrivals
    that find ``capacity`` requests present are blocked. ``capacity == servers`` is the
    Erlang loss system (``p_block == erlang_b(servers, λ/μ)``). Stable for capacities up
    to 2**53 (log-space sums).

    Parameters
    ----------
    arrival_rate : float
        Offered ``λ``, finite and ``>= 0``.
    service_rate : float
        ``μ`` per server, finite and ``> 0``.
    servers : int
        ``c``, ``1 <= c <= 10**12``.
    capacity : int
        ``K >= servers``: the most requests in service plus waiting.

    Returns
    -------
    MMcKResult
        ``.p_block .p_wait .L .Lq .mean_response .mean_wait .throughput .utilization``.

    Raises
    ------
    InvalidArgumentError (ValueError)
        Invalid rates or counts, ``capacity < servers``.

    Examples
    --------
    >>> from qcore.queueing import mmck
    >>> m = mmck(arrival_rate=2.0, service_rate=1.0, servers=1, capacity=3)
    >>> round(m.p_block, 6)  # 2**3 / (1 + 2 + 4 + 8)
    0.533333
    """
    inner = _qcore.MMcKModel(
        _real(arrival_rate, "arrival_rate"),
        _real(service_rate, "service_rate"),
        _count(servers, "servers"),
        _count(capacity, "capacity"),
    )
    return MMcKResult(
        arrival_rate=float(arrival_rate),
        service_rate=float(service_rate),
        servers=int(servers),
        capacity=int(capacity),
        offered_load=inner.offered_load,
        p_block=inner.p_block,
        p_wait=inner.p_wait,
        L=inner.L,
        Lq=inner.Lq,
        mean_response=inner.mean_response,
        mean_wait=inner.mean_wait,
        throughput=inner.throughput,
        utilization=inner.utilization,
        _inner=inner,
    )


_Means = tuple[float, float, float, float, float, float, float]


def _mg1_result(lam: float, es: float, scv: float, t: _Means, model: str) -> MG1Result:
    utilization, p_wait, mean_wait, mean_response, L, Lq, throughput = t
    return MG1Result(
        arrival_rate=lam,
        service_mean=es,
        service_scv=scv,
        utilization=utilization,
        p_wait=p_wait,
        mean_wait=mean_wait,
        mean_response=mean_response,
        L=L,
        Lq=Lq,
        throughput=throughput,
        model=model,
    )


def _gg_result(
    method: str,
    lam: float,
    es: float,
    c: int,
    ca: float,
    cs: float,
    t: _Means,
    model: str,
) -> GGApproximation:
    utilization, p_wait, mean_wait, mean_response, L, Lq, throughput = t
    return GGApproximation(
        method=method,
        arrival_rate=lam,
        service_mean=es,
        servers=c,
        arrival_scv=ca,
        service_scv=cs,
        utilization=utilization,
        p_wait=p_wait,
        mean_wait=mean_wait,
        mean_response=mean_response,
        L=L,
        Lq=Lq,
        throughput=throughput,
        model=model,
    )


def mg1(arrival_rate: float, service_mean: float, service_scv: float) -> MG1Result:
    """Solve M/G/1 by the Pollaczek–Khinchine formula (exact mean values).

    ``W_q = ρ E[S] (1 + c_s²) / (2 (1 − ρ))`` with ``ρ = λ E[S]`` and ``c_s²`` the
    squared coefficient of variation of the service time (1 for exponential, 0 for
    deterministic).

    Parameters
    ----------
    arrival_rate : float
        ``λ``, finite and ``>= 0``.
    service_mean : float
        ``E[S]`` seconds, finite and ``> 0``.
    service_scv : float
        ``Var S / E[S]²``, finite and ``>= 0``.

    Raises
    ------
    InvalidArgumentError (ValueError)
        An argument negative or not finite (``service_mean`` must be positive).
    UnstableSystemError (ValueError)
        ``ρ >= 1``.

    Examples
    --------
    >>> from qcore.queueing import mg1
    >>> r = mg1(arrival_rate=0.5, service_mean=1.0, service_scv=1.0)  # = M/M/1
    >>> r.mean_wait, r.mean_response
    (1.0, 2.0)
    """
    lam = _real(arrival_rate, "arrival_rate")
    es = _real(service_mean, "service_mean")
    scv = _real(service_scv, "service_scv")
    t = _qcore.mg1(lam, es, scv)
    return _mg1_result(lam, es, scv, t, "M/G/1")


def md1(arrival_rate: float, service_time: float) -> MG1Result:
    """Solve M/D/1 (deterministic service): :func:`mg1` with ``service_scv = 0``.

    The mean wait is ``ρ / (2 μ (1 − ρ))``, half of M/M/1's.

    >>> from qcore.queueing import md1
    >>> round(md1(arrival_rate=0.8, service_time=1.0).mean_wait, 12)
    2.0
    """
    lam = _real(arrival_rate, "arrival_rate")
    d = _real(service_time, "service_time")
    t = _qcore.md1(lam, d)
    return _mg1_result(lam, d, 0.0, t, "M/D/1")


def kingman(
    arrival_rate: float,
    service_mean: float,
    arrival_scv: float,
    service_scv: float,
) -> GGApproximation:
    """Kingman's **approximation** of the G/G/1 mean wait (heavy-traffic formula).

    ``W_q ≈ ρ / (1 − ρ) · (c_a² + c_s²) / 2 · E[S]``: exact for M/M/1 and for M/G/1
    (``c_a² = 1``), an approximation otherwise, best as ``ρ → 1``. The result has
    ``approximation=True``.

    Parameters
    ----------
    arrival_rate : float
        ``λ``, finite and ``>= 0``.
    service_mean : float
        ``E[S]``, finite and ``> 0``.
    arrival_scv, service_scv : float
        Squared coefficients of variation of the interarrival and service times
        (``>= 0``).

    Raises
    ------
    InvalidArgumentError (ValueError)
        An argument negative or not finite.
    UnstableSystemError (ValueError)
        ``ρ >= 1``.

    Examples
    --------
    >>> from qcore.queueing import kingman
    >>> r = kingman(0.9, 1.0, arrival_scv=0.5, service_scv=0.5)
    >>> round(r.mean_wait, 12), r.approximation
    (4.5, True)
    """
    lam = _real(arrival_rate, "arrival_rate")
    es = _real(service_mean, "service_mean")
    ca = _real(arrival_scv, "arrival_scv")
    cs = _real(service_scv, "service_scv")
    t = _qcore.kingman(lam, es, ca, cs)
    return _gg_result("kingman", lam, es, 1, ca, cs, t, "G/G/1")


def allen_cunneen(
    arrival_rate: float,
    service_mean: float,
    servers: int,
    arrival_scv: float,
    service_scv: float,
) -> GGApproximation:
    """The Allen–Cunneen **approximation** of the G/G/c mean wait.

    ``W_q ≈ C(c, a) / (c μ − λ) · (c_a² + c_s²) / 2``: the exact M/M/c wait (Erlang C)
    scaled by the mean of the two squared coefficients of variation. Exact for M/M/c,
    equal to :func:`kingman` for one server. The result has ``approximation=True`` and
    ``p_wait`` is the Erlang C value.

    Parameters
    ----------
    arrival_rate : float
        ``λ``, finite and ``>= 0``.
    service_mean : float
        ``E[S] = 1/μ``, finite and ``> 0``.
    servers : int
        ``c``, ``1 <= c <= 10**12``.
    arrival_scv, service_scv : float
        Squared coefficients of variation (``>= 0``).

    Raises
    ------
    InvalidArgumentError (ValueError)
        An argument out of range.
    UnstableSystemError (ValueError)
        ``λ E[S] >= c``.

    Examples
    --------
    >>> from qcore.queueing import allen_cunneen, mmc
    >>> r = allen_cunneen(7.0, 1.0, 8, arrival_scv=1.0, service_scv=1.0)
    >>> abs(r.mean_wait - mmc(7.0, 1.0, 8).mean_wait) < 1e-12
    True
    """
    lam = _real(arrival_rate, "arrival_rate")
    es = _real(service_mean, "service_mean")
    c = _count(servers, "servers")
    ca = _real(arrival_scv, "arrival_scv")
    cs = _real(service_scv, "service_scv")
    t = _qcore.allen_cunneen(lam, es, c, ca, cs)
    return _gg_result("allen_cunneen", lam, es, c, ca, cs, t, "G/G/c")


def min_servers_mmc(
    arrival_rate: float,
    service_rate: float,
    slo_quantile: float,
    slo_seconds: float,
    *,
    target: Literal["response", "wait"] = "response",
) -> int:
    """The fewest M/M/c servers whose response-time quantile meets an SLO.

    Returns the smallest ``c`` with
    ``mmc(arrival_rate, service_rate, c).response_quantile(slo_quantile) <= slo_seconds``
    (or ``wait_quantile`` with ``target="wait"``). The quantile decreases with ``c``, so
    an exponential search followed by bisection over stable ``c`` finds it with
    ``O(log c)`` model evaluations.

    Parameters
    ----------
    arrival_rate : float
        ``λ`` requests per second, finite and ``>= 0``.
    service_rate : float
        ``μ`` per server, finite and ``> 0``.
    slo_quantile : float
        The SLO's quantile level, in ``(0, 1)`` (e.g. 0.99 for p99).
    slo_seconds : float
        The SLO bound in seconds, finite and ``>= 0``.
    target : {"response", "wait"}
        Constrain the time in system (default) or the time in queue.

    Raises
    ------
    InvalidArgumentError (ValueError)
        Invalid arguments; with ``target="response"``, an SLO at or below the
        service-time quantile ``−ln(1 − q)/μ`` (no number of servers can meet it; the
        message names ``slo_seconds``).

    Examples
    --------
    >>> from qcore.queueing import min_servers_mmc, mmc
    >>> c = min_servers_mmc(100.0, 1.0, slo_quantile=0.99, slo_seconds=5.0)
    >>> c
    103
    >>> mmc(100.0, 1.0, c).response_quantile(0.99) <= 5.0 < mmc(100.0, 1.0, c - 1).response_quantile(0.99)
    True
    """
    if target not in ("response", "wait"):
        raise InvalidArgumentError(
            f"target must be 'response' or 'wait', got {target!r}"
        )
    return int(
        _qcore.min_servers_mmc(
            _real(arrival_rate, "arrival_rate"),
            _real(service_rate, "service_rate"),
            _real(slo_quantile, "slo_quantile"),
            _real(slo_seconds, "slo_seconds"),
            target,
        )
    )
