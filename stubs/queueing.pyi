# Native functions and classes of qcore._qcore for the analytic queueing models
# (rust/python/queueing.rs). The documented public API is qcore.queueing.

import numpy as np
import numpy.typing as npt

def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B loss probability (servers in 1..=10**12, load finite >= 0)."""

def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C waiting probability; UnstableSystemError when offered_load >= servers."""

def erlang_b_array(
    servers: npt.NDArray[np.int64], offered_load: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Element-wise Erlang B over two contiguous 1-D arrays of the same length."""

def erlang_c_array(
    servers: npt.NDArray[np.int64], offered_load: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Element-wise Erlang C over two contiguous 1-D arrays of the same length."""

def mg1(
    arrival_rate: float, service_mean: float, service_scv: float
) -> tuple[float, float, float, float, float, float, float]:
    """Pollaczek–Khinchine M/G/1: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def md1(
    arrival_rate: float, service_time: float
) -> tuple[float, float, float, float, float, float, float]:
    """M/D/1: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def kingman(
    arrival_rate: float, service_mean: float, arrival_scv: float, service_scv: float
) -> tuple[float, float, float, float, float, float, float]:
    """Kingman G/G/1 approximation: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def allen_cunneen(
    arrival_rate: float,
    service_mean: float,
    servers: int,
    arrival_scv: float,
    service_scv: float,
) -> tuple[float, float, float, float, float, float, float]:
    """Allen–Cunneen G/G/c approximation: (utilization, p_wait, mean_wait, mean_response, L, Lq, throughput)."""

def min_servers_mmc(
    arrival_rate: float,
    service_rate: float,
    slo_quantile: float,
    slo_seconds: float,
    target: str,
) -> int:
    """Smallest M/M/c server count meeting a response ('response') or wait ('wait') quantile SLO."""

class MMcModel:
    """A solved M/M/c queue (wrapped by qcore.queueing.MMcResult)."""

    def __new__(cls, arrival_rate: float, service_rate: float, servers: int) -> MMcModel: ...
    @property
    def arrival_rate(self) -> float: ...
    @property
    def service_rate(self) -> float: ...
    @property
    def servers(self) -> int: ...
    @property
    def offered_load(self) -> float: ...
    @property
    def utilization(self) -> float: ...
    @property
    def p_wait(self) -> float: ...
    @property
    def mean_wait(self) -> float: ...
    @property
    def mean_response(self) -> float: ...
    @property
    def L(self) -> float: ...
    @property
    def Lq(self) -> float: ...
    @property
    def throughput(self) -> float: ...
    def response_quantile(self, q: float) -> float: ...
    def wait_quantile(self, q: float) -> float: ...
    def response_cdf(self, t: float) -> float: ...
    def wait_cdf(self, t: float) -> float: ...
    def response_sf(self, t: float) -> float: ...
    def wait_sf(self, t: float) -> float: ...
    def response_pdf(self, t: float) -> float: ...
    def response_quantile_array(self, q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def wait_quantile_array(self, q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def response_cdf_array(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
    def wait_cdf_array(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

class MMcKModel:
    """A solved M/M/c/K queue (wrapped by qcore.queueing.MMcKResult)."""

    def __new__(
        cls, arrival_rate: float, service_rate: float, servers: int, capacity: int
    ) -> MMcKModel: ...
    @property
    def offered_load(self) -> float: ...
    @property
    def p_block(self) -> float: ...
    @property
    def p_wait(self) -> float: ...
    @property
    def L(self) -> float: ...
    @property
    def Lq(self) -> float: ...
    @property
    def mean_response(self) -> float: ...
    @property
    def mean_wait(self) -> float: ...
    @property
    def throughput(self) -> float: ...
    @property
    def utilization(self) -> float: ...
    def state_probabilities(self) -> npt.NDArray[np.float64]: ...
