"""LLM serving: a replica engine with continuous batching, and a routed fleet.

An LLM replica runs one *step* (forward pass) after another; each step serves every
running request at once (a prompt chunk for those in prefill, one token for those in
decode) within a token budget, a cap on running sequences and the KV cache. The engine
follows vLLM V1's scheduler: running requests first, then waiting ones in arrival order;
chunked prefill; a KV block pool whose free blocks keep their cached prompt blocks until
evicted (least recently freed first); LIFO preemption with recompute when blocks run out;
a prefix cache keyed by the traces' block hash ids. Every deviation is a named option of
:class:`Replica`.

>>> import polars as pl
>>> from qcore import llm
>>> replica = llm.Replica(step_time=llm.Linear(c0=0.010, c_tok=1e-4), num_blocks=1000)
>>> w = llm.Workload.from_frame(pl.DataFrame(
...     {"arrival": [0.0], "prompt_tokens": [100], "output_tokens": [5]}))
>>> r = llm.simulate(w, replica)
>>> [round(x, 9) for x in r.requests.select("ttft", "e2e").row(0)]  # 1 prefill + 4 decodes
[0.02, 0.06]

Step times: :class:`Linear`, :class:`Phases` (DistServe's fitted form),
:class:`TableStepTime` (measured tables) and :class:`Roofline`; measured presets in
:mod:`qcore.llm.presets`. Workloads: :class:`Workload` (a polars frame, the Azure LLM
2023 and Mooncake traces, synthetic Poisson). A fleet: :class:`Fleet` with a router;
prefill and decode pools: :class:`Disaggregated` with a :class:`KvTransfer`. Overload
control in front of a fleet: :class:`Admission` (a prompt-token bucket, a waiting cap, a
queue-wait deadline, a predicted-TTFT bound).
Capacity decisions (:mod:`qcore.llm.plan`): :func:`plan` (the fewest replicas meeting
every SLO quantile, priced), :func:`sustained_rate`, :func:`ceilings`, :func:`prices`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from qcore import _qcore
from qcore.exceptions import InvalidArgumentError, InvalidTypeError
from qcore.llm.scaling import Autoscale
from qcore.llm.workload import Workload
from qcore.sketch import QuantileSketch

__all__ = [
    "SLO",
    "Admission",
    "Autoscale",
    "BatchFormation",
    "Fleet",
    "Linear",
    "LlmResult",
    "MemoryAdmission",
    "Disaggregated",
    "DistServeStepTime",
    "KvTransfer",
    "Phases",
    "Preemption",
    "Replica",
    "Roofline",
    "StepTime",
    "TableStepTime",
    "VidurStepTime",
    "Workload",
    "max_rate",
    "replicate",
    "simulate",
]

_DEFAULTS: dict[str, Any] = dict(_qcore._llm_defaults())
_ROUTERS = ("round_robin", "random", "least_requests", "least_tokens", "power_of_two",
            "vllm_dp", "prefix_affinity")
#: ``requests["status"]`` by the core's status code (0 finished, 1 rejected, 2 unfinished,
#: 3 shed, 4 timed out).
_STATUS = ["finished", "rejected", "unfinished", "shed", "timed_out"]

_StepSpec = tuple[
    str,
    list[float],
    "npt.NDArray[np.float64] | None",
    "npt.NDArray[np.float64] | None",
    "npt.NDArray[np.float64] | None",
    "npt.NDArray[np.float64] | None",
    int,
    Any,
]


# --------------------------------------------------------------------------- step time


class StepTime:
    """Base class of the step-time models (the duration of one step from its batch)."""

    def _spec(self) -> _StepSpec:
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def duration(self, prefill_tokens: list[int] | None = None, decode_ctx: list[int] | None = None,
                 prefill_ctx: list[int] | None = None) -> float:
        """Duration (seconds) of a step with the given prefill chunks and decodes.

        ``prefill_tokens``: tokens of each prefill chunk; ``prefill_ctx``: each chunk's
        computed tokens after the step (default: its chunk); ``decode_ctx``: each
        decode's computed tokens after the step.

        >>> from qcore import llm
        >>> llm.Linear(c0=0.01, c_tok=1e-4).duration(prefill_tokens=[100])
        0.02
        """
        pt = list(prefill_tokens or [])
        pc = list(prefill_ctx) if prefill_ctx is not None else pt
        dc = list(decode_ctx or [])
        if len(pc) != len(pt):
            raise InvalidArgumentError("prefill_ctx must have one entry per prefill chunk")
        batch = (sum(pt), float(sum(n * n for n in pt)), len(pt), len(dc), sum(dc),
                 sum(pc) + sum(dc))
        return float(_qcore._llm_step_duration(self._spec(), batch))


@dataclass(frozen=True)
class Linear(StepTime):
    """``d = c0 + c_tok·Σ prefill tokens + c_seq·(requests) + c_ctx·Σ ctx`` (seconds)."""

    c0: float
    c_tok: float = 0.0
    c_seq: float = 0.0
    c_ctx: float = 0.0

    def __post_init__(self) -> None:
        _qcore._llm_step_duration(self._spec(), (0, 0.0, 0, 0, 0, 0))

    def _spec(self) -> _StepSpec:
        return ("linear", [self.c0, self.c_tok, self.c_seq, self.c_ctx], None, None, None,
                None, 0, None)


@dataclass(frozen=True)
class Phases(StepTime):
    """DistServe's fitted form, coefficients in **milliseconds**.

    ``[prefill]·(a + b·Σn + c·Σn²) + [decode]·(a + b·Σ decode ctx + c·B_d)``, the decode
    coefficients being ``decode_small`` when ``B_d < threshold``, else ``decode_large``.
    """

    prefill: tuple[float, float, float]
    decode_small: tuple[float, float, float]
    decode_large: tuple[float, float, float]
    threshold: int = 95

    def __post_init__(self) -> None:
        _qcore._llm_step_duration(self._spec(), (0, 0.0, 0, 0, 0, 0))

    def _spec(self) -> _StepSpec:
        c = [*self.prefill, *self.decode_small, *self.decode_large]
        return ("phases", [float(x) for x in c], None, None, None, None, int(self.threshold),
                None)


@dataclass(frozen=True)
class DistServeStepTime(StepTime):
    """DistServe's simulator step time (ms coefficients, as :class:`Phases`) with its
    pipeline split and fixed overheads: ``(a + b·Σn + c·Σn²)/pp + pp + 2 + 1e-4·Σn`` for a
    prefill step, ``(a + b·Σ(ctx+1) + c·B)/pp + 2 + 1e-4·Σctx`` for a decode step. Use it
    with ``Replica(scheduler="distserve")`` to reproduce DistServe's colocated simulator.
    """

    prefill: tuple[float, float, float]
    decode_small: tuple[float, float, float]
    decode_large: tuple[float, float, float]
    threshold: int = 95
    pipeline_parallel: int = 1
    clock_ms: bool = False

    def __post_init__(self) -> None:
        _qcore._llm_step_duration(self._spec(), (0, 0.0, 0, 0, 0, 0))

    @classmethod
    def from_phases(cls, p: Phases, pipeline_parallel: int = 1,
                    clock_ms: bool = False) -> DistServeStepTime:
        """The simulator form of a :class:`Phases` fit (e.g. a ``distserve/...`` preset).

        ``clock_ms``: durations in milliseconds, for a run on DistServe's own clock
        (arrivals in ms too; :meth:`qcore.llm.presets.PeerSetup.replay` does so).
        """
        return cls(p.prefill, p.decode_small, p.decode_large, p.threshold, pipeline_parallel,
                   clock_ms)

    def _spec(self) -> _StepSpec:
        c = [*self.prefill, *self.decode_small, *self.decode_large, self.pipeline_parallel,
             1.0 if self.clock_ms else 0.0]
        return ("distserve_sim", [float(x) for x in c], None, None, None, None,
                int(self.threshold), None)


def _f64(name: str, v: Any) -> npt.NDArray[np.float64]:
    a = np.ascontiguousarray(np.asarray(v, dtype=np.float64))
    if a.ndim != 1:
        raise InvalidArgumentError(f"{name} must be one-dimensional")
    return a


@dataclass(frozen=True, eq=False)
class VidurStepTime(StepTime):
    """Vidur's execution-time predictor from its exported tables (per-layer ms).

    With ``n`` the step's tokens and ``r = ceil8(n)``: ``(attn + mlp + add[r]) ·
    num_layers · 1e-3`` seconds, ``attn = pre_proj[r] + post_proj[r] + rope[r] +
    kv_save[n] + dec + pre + input_norm[r]``, ``mlp = up_proj[r] + down_proj[r] + act[r]
    (+ post_attn_norm[r])``, summed in Vidur's order; the decode attention
    ``decode[B, ceil64(floor(mean ctx)) / 64]·(1 + 0.1·[B > 1])``, the prefill attention
    ``prefill[ctx / 64, round(sqrt(Σ n²))]·(1 + 0.1·[prefills > 1])`` (the table holds
    Vidur's prediction at the squared key). ``ops`` maps the nine op names of
    ``OPS`` to their tables. Build it with :func:`qcore.llm.presets.step_time`
    (``vidur/llama-3-8b/a100/tp1``) and use it with ``Replica(scheduler="vidur")``.
    """

    OPS = ("attn_pre_proj", "attn_post_proj", "attn_rope", "mlp_up_proj", "mlp_down_proj",
           "mlp_act", "input_layernorm", "post_attention_layernorm", "add")

    ops: dict[str, npt.NDArray[np.float64]]
    kv_save: npt.NDArray[np.float64]
    decode: npt.NDArray[np.float64]
    prefill: npt.NDArray[np.float64]
    num_layers: int = 32
    post_attn_norm: bool = True
    dec_overhead: float = 0.1
    pre_overhead: float = 0.1
    kv_gran: int = 64
    _tables: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = [k for k in self.OPS if k not in self.ops]
        if missing:
            raise InvalidArgumentError(f"ops is missing tables: {', '.join(missing)}")
        ops = [_f64(k, self.ops[k]) for k in self.OPS]
        dec = np.ascontiguousarray(np.asarray(self.decode, dtype=np.float64))
        pre = np.ascontiguousarray(np.asarray(self.prefill, dtype=np.float64))
        if dec.ndim != 2 or pre.ndim != 2:
            raise InvalidArgumentError("decode and prefill must be two-dimensional tables")
        t = _qcore._VidurTables(ops, _f64("kv_save", self.kv_save), dec, pre,
                                int(self.num_layers), bool(self.post_attn_norm),
                                float(self.dec_overhead), float(self.pre_overhead),
                                int(self.kv_gran))
        object.__setattr__(self, "_tables", t)

    def _spec(self) -> _StepSpec:
        return ("vidur", [], None, None, None, None, 0, self._tables)


@dataclass(frozen=True, eq=False)
class TableStepTime(StepTime):
    """Measured tables (seconds), linearly interpolated and extrapolated.

    ``d = prefill(Σ prefill tokens) + decode(number of decodes)``, each term present only
    when its part of the batch is not empty (SplitwiseSim's ``perf_model.csv`` form).
    """

    prefill_tokens: npt.NDArray[np.float64]
    prefill_seconds: npt.NDArray[np.float64]
    decode_batch: npt.NDArray[np.float64]
    decode_seconds: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        for name in ("prefill_tokens", "prefill_seconds", "decode_batch", "decode_seconds"):
            object.__setattr__(self, name, _f64(name, getattr(self, name)))
        _qcore._llm_step_duration(self._spec(), (0, 0.0, 0, 0, 0, 0))

    def _spec(self) -> _StepSpec:
        return ("table", [], self.prefill_tokens, self.prefill_seconds, self.decode_batch,
                self.decode_seconds, 0, None)


@dataclass(frozen=True)
class Roofline(StepTime):
    """The roofline floor of a step.

    ``max(2·params·Σn / (peak_flops·mfu), (weight_bytes + Σ ctx·kv_bytes_per_token) /
    hbm_bandwidth) + overhead``. Build it from presets with :meth:`for_model`.
    """

    params: float
    weight_bytes: float
    kv_bytes_per_token: float
    hbm_bandwidth: float
    peak_flops: float
    mfu: float = 0.5
    overhead: float = 0.0

    def __post_init__(self) -> None:
        _qcore._llm_step_duration(self._spec(), (0, 0.0, 0, 0, 0, 0))

    @classmethod
    def for_model(cls, model: str, gpu: str, tensor_parallel: int = 1, mfu: float = 0.5,
                  overhead: float = 0.0) -> Roofline:
        """The roofline of a preset model on ``tensor_parallel`` preset GPUs.

        >>> from qcore import llm
        >>> rl = llm.Roofline.for_model("llama-3-8b", "h100-80gb")
        >>> round(rl.duration(decode_ctx=[1000]) * 1e3, 2)  # ms: weights + KV read
        4.83
        """
        from qcore.llm import presets

        c = _qcore._llm_roofline(presets.model(model), presets.gpu(gpu), tensor_parallel, mfu,
                                 overhead)
        return cls(*c)

    def _spec(self) -> _StepSpec:
        return ("roofline", [self.params, self.weight_bytes, self.kv_bytes_per_token,
                             self.hbm_bandwidth, self.peak_flops, self.mfu, self.overhead],
                None, None, None, None, 0, None)


# --------------------------------------------------------------------------- configs


BatchFormation = Literal["vllm_v1", "prefill_priority_unmixed", "strict_prefill_priority"]
"""The batch-formation policies (see :class:`Replica`)."""
MemoryAdmission = Literal["free_blocks", "watermark", "unlimited"]
"""The memory-admission policies (see :class:`Replica`)."""
Preemption = Literal["recompute_lifo", "recompute_latest_arrival", "never"]
"""The preemption policies (see :class:`Replica`)."""


@dataclass(frozen=True)
class Replica:
    """One replica's engine (vLLM V1's defaults).

    Parameters
    ----------
    step_time : StepTime
        The step-time model.
    num_blocks : int
        KV capacity in blocks (see :meth:`from_preset` for memory → blocks).
    block_size : int
        Tokens per KV block.
    max_num_seqs : int
        Cap on running requests.
    max_num_batched_tokens : int
        Token budget per step.
    chunked_prefill : bool
        Whether a prompt may be split across steps.
    long_prefill_token_threshold : int
        Cap on one request's tokens per step (0: off).
    prefix_caching : bool
        Reuse cached prompt blocks (when the workload has block hashes).
    watermark : float
        Fraction of ``num_blocks`` kept free when admitting waiting requests (0 in vLLM
        V1; 0.01 in vLLM V0 and Vidur).
    scheduler : {"vllm_v1", "distserve", "vidur"}
        A preset of the three scheduling policies below: vLLM V1's (default),
        DistServe's colocated simulator's (``strict_prefill_priority``, ``unlimited``,
        ``never``) or Vidur's ``vllm`` replica scheduler's (``prefill_priority_unmixed``,
        ``watermark``, ``recompute_latest_arrival``). DistServe emits output_len + 1
        tokens: feed it ``output_tokens = output_len + 1``
        (:func:`qcore.llm.presets.peer` builds the peers' setups).
    batch_formation : {"vllm_v1", "prefill_priority_unmixed", "strict_prefill_priority"}, optional
        How a step's batch is formed (``None``: the preset's). ``vllm_v1``: running
        requests first, then waiting ones FCFS, within the token budget, chunked
        prefill, prefills and decodes mixed. ``prefill_priority_unmixed`` (Vidur): a
        prefill-only step when the head of the queue can be admitted (whole prompts,
        FCFS, padded budget ``(n + 1)·max(tokens) ≤ max_num_batched_tokens``, at most
        ``max_num_seqs`` requests holding KV), else a decode-only step over the running
        requests sorted by arrival. ``strict_prefill_priority`` (DistServe): a
        prefill-only step whenever anything waits (prompts summing to at most
        ``max_num_batched_tokens``, no sequence cap), else a decode-only step over a
        prefix of the running queue capped at ``decode_tokens`` of Σ(ctx + 1), the batch
        going back to its tail.
    memory_admission : {"free_blocks", "watermark", "unlimited"}, optional
        How KV memory admits requests (``None``: the preset's). ``free_blocks`` (vLLM
        V1): identified blocks and the prefix cache; a waiting request needs its new
        blocks with ``watermark`` of the blocks kept free. ``watermark`` (Vidur):
        counted blocks, ``ceil(tokens / block_size)`` with the ``watermark`` kept free
        to admit, and one free block for a running request to grow, even when it needs
        none; no prefix cache. ``unlimited`` (DistServe): no KV model.
    preemption : {"recompute_lifo", "recompute_latest_arrival", "never"}, optional
        Which running request restarts by recompute when one cannot grow (``None``: the
        preset's): the tail of the running queue (vLLM V1), the latest arrival (Vidur),
        or never (only with ``memory_admission="unlimited"``). The victim is one not yet
        in the step's batch, else the request itself. With an invalid combination the
        constructor raises :class:`qcore.exceptions.InvalidArgumentError` naming the
        argument.
    decode_tokens : int
        The DistServe decode-step cap.
    gpus : int
        GPUs of the replica (for cost).
    price_per_hour : float
        Price of one GPU-hour (for cost).

    Examples
    --------
    Vidur's batch formation and memory admission with vLLM V1's preemption:

    >>> from qcore import llm
    >>> st = llm.Linear(c0=0.01, c_tok=1e-5)
    >>> r = llm.Replica(step_time=st, num_blocks=2000, batch_formation="prefill_priority_unmixed",
    ...                 memory_admission="watermark", watermark=0.01)
    >>> r.policies
    ('prefill_priority_unmixed', 'watermark', 'recompute_lifo')
    >>> w = llm.Workload.poisson(rate=5.0, n=100, prompt_tokens=500, output_tokens=50, seed=1)
    >>> llm.simulate(w, r).finished
    100
    """

    step_time: StepTime
    num_blocks: int
    block_size: int = int(_DEFAULTS["block_size"])
    max_num_seqs: int = int(_DEFAULTS["max_num_seqs"])
    max_num_batched_tokens: int = int(_DEFAULTS["max_num_batched_tokens"])
    chunked_prefill: bool = bool(_DEFAULTS["chunked_prefill"])
    long_prefill_token_threshold: int = int(_DEFAULTS["long_prefill_token_threshold"])
    prefix_caching: bool = bool(_DEFAULTS["prefix_caching"])
    watermark: float = float(_DEFAULTS["watermark"])
    scheduler: str = str(_DEFAULTS["scheduler"])
    decode_tokens: int = int(_DEFAULTS["decode_tokens"])
    gpus: int = 1
    price_per_hour: float = 0.0
    batch_formation: BatchFormation | None = None
    memory_admission: MemoryAdmission | None = None
    preemption: Preemption | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.step_time, StepTime):
            raise InvalidArgumentError("step_time must be a qcore.llm step-time model")
        for name in ("num_blocks", "block_size", "max_num_seqs", "max_num_batched_tokens",
                     "decode_tokens", "gpus"):
            v = getattr(self, name)
            if (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1
                    or v > 2**32 - 1):
                raise InvalidArgumentError(
                    f"{name} must be an integer in [1, 2**32 - 1], got {v!r}")
        if not 0 <= self.long_prefill_token_threshold <= 2**32 - 1:
            raise InvalidArgumentError("long_prefill_token_threshold must be in [0, 2**32 - 1]")
        for name in ("scheduler", "batch_formation", "memory_admission", "preemption"):
            v = getattr(self, name)
            if not (isinstance(v, str) or (v is None and name != "scheduler")):
                raise InvalidTypeError(f"{name} must be a str{'' if name == 'scheduler' else ' or None'}, got {v!r}")
        # The core resolves the preset and checks the combination.
        _qcore._llm_policies(self.scheduler, int(self.decode_tokens), self.batch_formation,
                             self.memory_admission, self.preemption)
        if not (math.isfinite(self.price_per_hour) and self.price_per_hour >= 0):
            raise InvalidArgumentError("price_per_hour must be finite and >= 0")

    @classmethod
    def from_preset(cls, model: str, gpu: str, tensor_parallel: int = 1,
                    step_time: StepTime | None = None, *, gpu_memory_utilization: float = 0.9,
                    activation_reserve: float = 0.0, **overrides: Any) -> Replica:
        """A replica of a preset model on ``tensor_parallel`` preset GPUs.

        ``num_blocks`` comes from memory (``(memory·utilization − weights − reserve) /
        (block_size · kv_bytes_per_token)`` per GPU), the token budget from the GPU size
        (8192 on ≥ 70 GiB GPUs, else 2048), the step time defaults to the roofline, and
        ``price_per_hour`` is the GPU's $/GPU-hour in the price table (:func:`prices`,
        its first row of the GPU; ``price_per_hour=`` overrides it).

        >>> from qcore import llm
        >>> r = llm.Replica.from_preset("llama-3-8b", "h100-80gb")
        >>> r.num_blocks, r.max_num_batched_tokens
        (29205, 8192)
        >>> r.price_per_hour == llm.gpu_price("h100-80gb")
        True
        """
        from qcore.llm import presets
        from qcore.llm.plan import gpu_price

        m, g = presets.model(model), presets.gpu(gpu)
        bs = int(overrides.pop("block_size", _DEFAULTS["block_size"]))
        nb = _qcore._llm_num_blocks(m, g, tensor_parallel, bs, gpu_memory_utilization,
                                    activation_reserve)
        st = step_time if step_time is not None else Roofline.for_model(model, gpu,
                                                                        tensor_parallel)
        kw: dict[str, Any] = {
            "max_num_batched_tokens": _qcore._llm_default_batched_tokens(g[0]),
            "gpus": tensor_parallel,
            "price_per_hour": gpu_price(gpu),    # the price table's first row of the GPU
        }
        kw.update(overrides)
        return cls(step_time=st, num_blocks=int(overrides.pop("num_blocks", nb)),
                   block_size=bs, **{k: v for k, v in kw.items() if k != "num_blocks"})

    @property
    def policies(self) -> tuple[str, str, str]:
        """The batch-formation, memory-admission and preemption policies in use (the
        preset's, overridden by the fields given).

        >>> from qcore import llm
        >>> llm.Replica(step_time=llm.Linear(c0=0.01), num_blocks=100, scheduler="vidur").policies
        ('prefill_priority_unmixed', 'watermark', 'recompute_latest_arrival')
        """
        return _qcore._llm_policies(self.scheduler, int(self.decode_tokens),
                                    self.batch_formation, self.memory_admission,
                                    self.preemption)

    def _spec(self) -> tuple[int, int, int, int, bool, int, bool, float, str, int,
                             tuple[str | None, str | None, str | None]]:
        return (int(self.block_size), int(self.num_blocks), int(self.max_num_seqs),
                int(self.max_num_batched_tokens), bool(self.chunked_prefill),
                int(self.long_prefill_token_threshold), bool(self.prefix_caching),
                float(self.watermark), str(self.scheduler), int(self.decode_tokens),
                (self.batch_formation, self.memory_admission, self.preemption))


@dataclass(frozen=True)
class Fleet:
    """``replicas`` identical replicas behind a router.

    Routers: ``round_robin``, ``random`` (seeded), ``least_requests`` (waiting +
    running), ``least_tokens`` (outstanding prompt + output tokens), ``power_of_two``
    (two random replicas, the one with fewer requests), ``vllm_dp`` (argmin
    4·waiting + running), ``prefix_affinity`` (argmin ``prefix_weight·(prompt − cached
    prefix) + outstanding tokens``). The router sees replica load refreshed every
    ``staleness`` seconds (0: exact), plus its own assignments since the last refresh.
    """

    replicas: int = 1
    router: str = "round_robin"
    staleness: float = 0.0
    seed: int = 1
    prefix_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.router not in _ROUTERS:
            raise InvalidArgumentError(
                f"router is unknown: {self.router!r} (known: {', '.join(_ROUTERS)})")
        if not isinstance(self.replicas, (int, np.integer)) or self.replicas < 1:
            raise InvalidArgumentError(f"replicas must be an integer >= 1, got {self.replicas!r}")
        if not (math.isfinite(self.staleness) and self.staleness >= 0):
            raise InvalidArgumentError(f"staleness must be finite and >= 0, got {self.staleness}")

    def _spec(self) -> tuple[int, str, float, float, int]:
        return (int(self.replicas), self.router, float(self.prefix_weight),
                float(self.staleness), int(self.seed))


@dataclass(frozen=True)
class KvTransfer:
    """KV-cache transfer from a prefill to a decode replica.

    A request of ``P`` prompt tokens reaches the decode pool ``latency + P ·
    bytes_per_token / bandwidth`` seconds after the step that completes its prefill.
    ``bytes_per_token`` is the whole model's KV cache per token, ``2 · layers · kv_heads ·
    head_dim · dtype_bytes``; :meth:`for_model` takes it from a model preset.

    Parameters
    ----------
    bandwidth : float
        Bytes per second (``math.inf``: only the latency).
    latency : float
        Fixed seconds per transfer.
    bytes_per_token : float
        KV bytes per token.

    Examples
    --------
    >>> from qcore import llm
    >>> x = llm.KvTransfer.for_model("llama-3-8b", bandwidth=25e9, latency=1e-3)
    >>> x.bytes_per_token  # 2 · 32 layers · 8 KV heads · 128 · 2 bytes: 1000 tokens in 6.2 ms
    131072.0
    """

    bandwidth: float
    latency: float = 0.0
    bytes_per_token: float = 0.0

    def __post_init__(self) -> None:
        b = self.bandwidth
        if not isinstance(b, (int, float)) or math.isnan(b) or b <= 0:
            raise InvalidArgumentError(f"bandwidth must be > 0 (inf allowed), got {b!r}")
        for name in ("latency", "bytes_per_token"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise InvalidArgumentError(f"{name} must be finite and >= 0, got {v!r}")

    @classmethod
    def for_model(cls, model: str, bandwidth: float, latency: float = 0.0) -> KvTransfer:
        """The transfer of a model preset's KV cache (:data:`qcore.llm.presets.MODELS`)."""
        from qcore.llm import presets

        return cls(bandwidth=bandwidth, latency=latency,
                   bytes_per_token=_qcore._llm_kv_bytes_per_token(presets.model(model), 1))

    def _spec(self) -> tuple[float, float, float]:
        return (float(self.bytes_per_token), float(self.bandwidth), float(self.latency))


@dataclass(frozen=True)
class Disaggregated:
    """Prefill and decode on separate pools of replicas (DistServe's disaggregation).

    Requests arrive at the ``prefill_replicas`` in turn; at the end of the step that
    completes its prefill a request (with its first token) leaves its prefill replica and,
    after the KV ``transfer`` (``None``: none, as DistServe's simulator), joins the decode
    replica with the fewest requests. The P:D ratio ``prefill_replicas:decode_replicas``
    is the capacity knob; the GPUs used are ``(prefill_replicas + decode_replicas) ·
    tensor_parallel``. Both replicas use ``scheduler="distserve"`` (which reproduces
    DistServe's disaggregated simulator with ``transfer=None``) or ``"vllm_v1"`` (the
    default: the decode replica allocates the arriving KV cache in its own blocks). Pass
    it as ``simulate(workload, prefill_replica, Disaggregated(decode=...))``; the
    ``replica`` column of the result names the prefill replica.

    Examples
    --------
    >>> from qcore import llm
    >>> w = llm.Workload.poisson(rate=4.0, n=200, prompt_tokens=1000, output_tokens=50, seed=1)
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=5e-5), num_blocks=4000)
    >>> d = llm.Disaggregated(decode=rep, prefill_replicas=1, decode_replicas=2,
    ...                       transfer=llm.KvTransfer.for_model("llama-3-8b", bandwidth=25e9))
    >>> r = llm.simulate(w, rep, d)
    >>> r.finished, r.rejected
    (200, 0)
    """

    decode: Replica
    prefill_replicas: int = 1
    decode_replicas: int = 1
    transfer: KvTransfer | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.decode, Replica):
            raise InvalidArgumentError("decode must be a qcore.llm.Replica")
        for name in ("prefill_replicas", "decode_replicas"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1, got {v!r}")
        if self.transfer is not None and not isinstance(self.transfer, KvTransfer):
            raise InvalidArgumentError("transfer must be a qcore.llm.KvTransfer or None")


@dataclass(frozen=True)
class SLO:
    """Latency objectives (seconds); ``None`` leaves a metric unconstrained."""

    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None

    def _expr(self) -> pl.Expr:
        e = pl.col("status") == "finished"
        for name in ("ttft", "tpot", "e2e"):
            v = getattr(self, name)
            if v is not None:
                if not v > 0:
                    raise InvalidArgumentError(f"slo.{name} must be > 0, got {v}")
                e = e & (pl.col(name).fill_null(0.0) <= v)
        return e


@dataclass(frozen=True)
class Admission:
    """Admission control and shedding in front of a fleet; every field ``None`` (the
    default) admits every request and the run is exactly the run without it.

    When a request arrives (and can fit a replica at all), in order: the token bucket,
    before routing (so its decisions depend only on the arrivals and the prompt
    lengths); then, on the replica the router picks, the waiting cap and the
    predicted-TTFT bound. The queue-wait deadline applies when a replica begins a step.
    Requests turned away on arrival never join a replica (``replica`` null).

    Parameters
    ----------
    token_rate, token_burst : float, optional
        A token bucket counted in **prompt tokens** (give both): refilled at
        ``token_rate`` tokens per second up to ``token_burst`` (>= 1), full at the start.
        A request costs its prompt tokens; one that finds fewer in the bucket is shed
        (status ``shed``) and takes none.
    max_waiting : int, optional
        Shed a request when the routed replica's waiting queue already holds
        ``max_waiting`` requests (>= 1). Preempted requests return to the queue
        regardless, so only preemption can take it past the cap.
    max_wait : float, optional
        Queue-wait deadline, seconds (>= 0). When a replica begins a step, every request
        in its waiting queue that has no first token yet and arrived more than
        ``max_wait`` before is dropped (status ``timed_out``): one never scheduled, or one
        preempted before its first token, whose computed tokens are then wasted
        (``wasted_tokens``). The bound is exact for the requests that are scheduled: their
        ``queue`` is at most ``max_wait``; a timed-out request is dropped at the first
        step start past its deadline (within one step of it).
    max_predicted_ttft : float, optional
        Reject (status ``rejected``, counted in ``admission_rejected`` too) a request
        whose predicted TTFT on the routed replica exceeds this many seconds:
        ``(W + P)·d(B)/B + d(B)``, with ``W`` the tokens the replica's waiting requests
        still have to compute, ``P`` the prompt, ``B = max_num_batched_tokens`` and
        ``d(B)`` the step time of one prefill chunk of ``B`` tokens.

    Examples
    --------
    >>> from qcore import llm
    >>> w = llm.Workload.poisson(rate=40.0, n=400, prompt_tokens=2000, output_tokens=20, seed=1)
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.01, c_tok=5e-5), num_blocks=20000)
    >>> r = llm.simulate(w, rep, replicas=2, admission=llm.Admission(max_predicted_ttft=1.0))
    >>> r.admission_rejected > 0, r.ttft.quantile(0.99) < 1.5
    (True, True)
    >>> r.finished + r.rejected + r.shed + r.timed_out + r.unfinished == len(w)
    True
    """

    token_rate: float | None = None
    token_burst: float | None = None
    max_waiting: int | None = None
    max_wait: float | None = None
    max_predicted_ttft: float | None = None

    def __post_init__(self) -> None:
        for name in ("token_rate", "token_burst", "max_wait", "max_predicted_ttft"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))):
                raise InvalidTypeError(f"admission.{name} must be a number or None, got {v!r}")
        v = self.max_waiting
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
            raise InvalidTypeError(f"admission.max_waiting must be an integer or None, got {v!r}")
        _qcore._llm_admission_check(self._spec())

    @property
    def active(self) -> bool:
        """Whether any control is set."""
        return self._spec() != (None,) * 5

    def _spec(self) -> tuple[float | None, float | None, int | None, float | None, float | None]:
        def f(v: Any) -> float | None:
            return None if v is None else float(v)

        return (f(self.token_rate), f(self.token_burst),
                None if self.max_waiting is None else int(self.max_waiting),
                f(self.max_wait), f(self.max_predicted_ttft))


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class LlmResult:
    """The result of :func:`simulate`.

    ``requests`` has one row per request of the workload: ``id``, ``arrival``,
    ``replica`` (null when rejected, or shed, before it joined one), ``status``
    (``finished``; ``rejected``: it can never fit a replica, or :class:`Admission`'s
    predicted-TTFT bound turned it away; ``unfinished``: still in the system at the end;
    ``shed``: by the admission token bucket or waiting cap; ``timed_out``: by the
    admission queue-wait deadline),
    ``prompt_tokens``, ``output_tokens`` (emitted), ``first_scheduled``, ``first_token``,
    ``finish``, ``queue`` (first scheduling − arrival), ``ttft``, ``tpot`` ((e2e − ttft)
    / (O − 1), null for O = 1), ``e2e``, ``preemptions`` and ``cached_tokens`` (prefix
    hit at the first scheduling). The sketches hold vLLM's metrics (``itl``: every gap
    between consecutive tokens; AIPerf calls vLLM's TPOT "ITL") over the requests that
    have them. With :class:`Admission`: ``shed``, ``timed_out``, ``admission_rejected``
    (of ``rejected``) and ``wasted_tokens`` (tokens computed for requests then timed out).
    """

    requests: pl.DataFrame
    ttft: QuantileSketch
    tpot: QuantileSketch
    itl: QuantileSketch
    e2e: QuantileSketch
    queue: QuantileSketch
    replica_stats: pl.DataFrame
    rejected: int
    t0: float
    t_end: float
    replica: Replica
    fleet: Fleet
    steps: pl.DataFrame | None = None
    scheduled: pl.DataFrame | None = None
    preempted: pl.DataFrame | None = None
    timeline: pl.DataFrame | None = None
    shed: int = 0
    timed_out: int = 0
    admission_rejected: int = 0
    wasted_tokens: int = 0
    admission: Admission | None = None
    _slo: SLO | None = field(default=None, repr=False)
    #: With :class:`Autoscale`: one row per sample (``t``, ``ready`` routable replicas,
    #: ``starting``, ``draining``, ``target`` asked for, ``metric`` value, null when
    #: missing), after the decision taken at it.
    scaling: pl.DataFrame | None = None
    #: With :class:`Autoscale`: one row per replica life (``replica`` slot,
    #: ``requested``, ``ready``, ``drain``, ``left``; null where it did not happen).
    replica_lives: pl.DataFrame | None = None
    #: With :class:`Autoscale`: starting + ready + draining replica-seconds from the
    #: first arrival to the end of the last step (or the last arrival, if later).
    replica_seconds: float | None = None
    scale_events: int = 0
    peak_replicas: int | None = None
    autoscale: Autoscale | None = None

    @property
    def duration(self) -> float:
        """Seconds from the first arrival to the end of the last step."""
        return self.t_end - self.t0

    @property
    def finished(self) -> int:
        """Requests finished."""
        return int(self.replica_stats["finished"].sum())

    @property
    def unfinished(self) -> int:
        """Requests still in the system when the run stopped."""
        return int((self.requests["status"] == "unfinished").sum())

    @property
    def output_tokens(self) -> int:
        """Output tokens emitted."""
        return int(self.replica_stats["output_tokens"].sum())

    @property
    def token_throughput(self) -> float:
        """Output tokens per second over the run."""
        return self.output_tokens / self.duration if self.duration > 0 else math.nan

    @property
    def request_throughput(self) -> float:
        """Finished requests per second over the run."""
        return self.finished / self.duration if self.duration > 0 else math.nan

    @property
    def preemptions(self) -> int:
        """Preemptions over the run."""
        return int(self.replica_stats["preemptions"].sum())

    @property
    def token_steps(self) -> int:
        """Σ over steps of the requests scheduled (the engine's unit of work)."""
        return int(self.replica_stats["token_steps"].sum())

    @property
    def cache_hit_rate(self) -> float:
        """Prefix-cache hit tokens / tokens looked up, over all admissions (NaN if none)."""
        look = int(self.replica_stats["lookup_tokens"].sum())
        hit = int(self.replica_stats["hit_tokens"].sum())
        return hit / look if look else math.nan

    def slo_attainment(self, slo: SLO) -> float:
        """Fraction of all requests that finished and met every objective of ``slo``."""
        n = self.requests.height
        if n == 0:
            return math.nan
        return int(self.requests.select(slo._expr().sum()).item()) / n

    def goodput(self, slo: SLO) -> tuple[float, float]:
        """vLLM's goodput: ``(requests/s, output tokens/s)`` of the requests meeting ``slo``."""
        ok = self.requests.filter(slo._expr())
        d = self.duration
        if d <= 0:
            return (math.nan, math.nan)
        return (ok.height / d, float(ok["output_tokens"].sum()) / d)

    @property
    def cost_per_mtok(self) -> float:
        """Σ GPU price per hour / (output tokens per second · 3600) · 10⁶; autoscaled:
        :attr:`cost` / output tokens · 10⁶."""
        from qcore.llm.plan import cost_per_mtok, fleet_size

        if self.replica_seconds is not None:
            tokens = self.token_throughput * self.duration
            return self.cost / tokens * 1e6 if tokens > 0 else math.nan
        return cost_per_mtok(fleet_size(self.replica, self.fleet)[2], self.token_throughput)

    @property
    def gpu_hours(self) -> float:
        """GPU-hours of the run: replica-seconds (autoscaled; else replicas × duration)
        × GPUs per replica / 3600."""
        rs = (self.replica_seconds if self.replica_seconds is not None
              else self.fleet.replicas * self.duration)
        return rs * self.replica.gpus / 3600.0

    @property
    def cost(self) -> float:
        """:attr:`gpu_hours` × the replica's ``price_per_hour`` (per GPU), in $."""
        return self.gpu_hours * self.replica.price_per_hour

    def quantile_ci(self, metric: str, q: float, confidence: float = 0.95) -> Any:
        """Distribution-free ``(lo, estimate, hi)`` of the ``q``-quantile of a per-request
        metric (``ttft``, ``tpot``, ``e2e`` or ``queue``) over the requests that have it
        (:func:`qcore.quantile_ci`)."""
        from qcore.tail import quantile_ci

        if metric not in ("ttft", "tpot", "e2e", "queue"):
            raise InvalidArgumentError(
                f"metric must be ttft, tpot, e2e or queue, got {metric!r}")
        return quantile_ci(self.requests[metric].drop_nulls().to_numpy(), q, confidence)

    def summary(self) -> dict[str, Any]:
        """The headline figures as a dict (JSON-ready)."""
        out: dict[str, Any] = {
            "requests": self.requests.height,
            "finished": self.finished,
            "rejected": self.rejected,
            "shed": self.shed,
            "timed_out": self.timed_out,
            "admission_rejected": self.admission_rejected,
            "unfinished": self.unfinished,
            "wasted_tokens": self.wasted_tokens,
            "duration_s": self.duration,
            "token_throughput": self.token_throughput,
            "request_throughput": self.request_throughput,
            "preemptions": self.preemptions,
            "cache_hit_rate": None if math.isnan(self.cache_hit_rate) else self.cache_hit_rate,
            "token_steps": self.token_steps,
        }
        for name in ("ttft", "tpot", "itl", "e2e", "queue"):
            sk: QuantileSketch = getattr(self, name)
            out[name] = ({f"p{int(q * 100)}": sk.quantile(q) for q in (0.5, 0.9, 0.99)}
                         | {"mean": sk.mean} if sk.count > 0 else None)
        if self.replica.price_per_hour > 0:
            out["cost_per_mtok"] = self.cost_per_mtok
        if self._slo is not None:
            g = self.goodput(self._slo)
            out["goodput"] = {"requests_per_s": g[0], "tokens_per_s": g[1],
                              "attainment": self.slo_attainment(self._slo)}
        if self.scaling is not None:
            sc = self.scaling
            active = sc["ready"] + sc["starting"]
            out["autoscale"] = {
                "samples": sc.height,
                "scale_events": self.scale_events,
                "replicas_min": int(active.min()) if sc.height else None,
                "replicas_max": int(active.max()) if sc.height else None,
                "replicas_mean": float(active.mean()) if sc.height else None,
                "peak_replicas": self.peak_replicas,
                "replica_seconds": self.replica_seconds,
                "gpu_hours": self.gpu_hours,
                "cost": self.cost if self.replica.price_per_hour > 0 else None,
            }
        return out


def _frame(d: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame({k: np.asarray(v) for k, v in d.items()})


def _nulls(d: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame({k: np.asarray(v) for k, v in d.items()}, nan_to_null=True)


def _autoscale_spec(autoscale: Autoscale | None, fleet: Fleet | Disaggregated | None
                    ) -> tuple[Fleet | Disaggregated | None, tuple[Any, ...] | None]:
    if autoscale is None:
        return fleet, None
    if not isinstance(autoscale, Autoscale):
        raise InvalidTypeError("autoscale must be a qcore.llm.Autoscale or None")
    if isinstance(fleet, Disaggregated):
        raise InvalidArgumentError(
            "autoscale applies to a colocated Fleet, not to Disaggregated pools")
    return (Fleet() if fleet is None else fleet), autoscale._spec()


def simulate(workload: Workload, replica: Replica, fleet: Fleet | Disaggregated | None = None, *,
             replicas: int | None = None, router: str | None = None,
             slo: SLO | None = None, trace: bool = False,
             timeline_interval: float | None = None,
             relative_accuracy: float = 0.01,
             progress: Callable[[int, int], None] | None = None,
             admission: Admission | None = None,
             autoscale: Autoscale | None = None) -> LlmResult:
    """Replay ``workload`` on one replica, or on a fleet of them.

    Parameters
    ----------
    workload : Workload
        Arrivals and token counts (and optional prefix block hashes).
    replica : Replica
        The engine of each replica.
    fleet : Fleet or Disaggregated, optional
        Replicas and router, or prefill and decode pools (``replica`` is then the prefill
        replica); ``None`` runs the engine alone.
    replicas, router : optional
        Shorthand for ``fleet=Fleet(replicas=..., router=...)`` (not with ``fleet``).
    slo : SLO, optional
        Objectives reported by :meth:`LlmResult.summary` (goodput and attainment).
    trace : bool
        Record every step (``steps``: replica, start, end and the waiting requests when
        it began; ``scheduled``, ``preempted`` frames); for small runs.
    timeline_interval : float, optional
        Sample each replica's KV blocks, waiting, running and batch tokens on this grid.
    relative_accuracy : float
        Of the metric sketches.
    progress : callable, optional
        Called as ``progress(arrived, total)`` at most every 0.2 s of a run, and at its
        end (requests that have arrived so far on the simulated clock).
    admission : Admission, optional
        Admission control in front of the fleet (a colocated :class:`Fleet`; without a
        fleet the replica runs as a fleet of one, whose run is the engine alone's). Not
        with :class:`Disaggregated` pools.
    autoscale : Autoscale, optional
        Scale the colocated fleet with a :mod:`qcore.autoscale` policy on an LLM signal
        (the fleet's ``replicas`` are the initial count); the result then carries
        ``scaling`` (the replica-count timeline), ``replica_lives``,
        ``replica_seconds``, :attr:`LlmResult.gpu_hours` and :attr:`LlmResult.cost`.
        With a policy that never changes the count the run is exactly the fleet's.

    Requests whose ``prompt + output − 1`` tokens need more blocks than ``num_blocks``
    can never finish: they are rejected on arrival and counted (``rejected``).

    Examples
    --------
    >>> import polars as pl
    >>> from qcore import llm
    >>> w = llm.Workload.poisson(rate=5.0, n=200, prompt_tokens=500, output_tokens=50, seed=1)
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000)
    >>> r = llm.simulate(w, rep, llm.Fleet(replicas=2, router="least_requests"))
    >>> r.finished, r.rejected
    (200, 0)
    """
    if not isinstance(workload, Workload):
        raise InvalidArgumentError("workload must be a qcore.llm.Workload")
    if not isinstance(replica, Replica):
        raise InvalidArgumentError("replica must be a qcore.llm.Replica")
    if replicas is not None or router is not None:
        if fleet is not None:
            raise InvalidArgumentError("give fleet, or replicas and router, not both")
        fleet = Fleet(replicas=1 if replicas is None else replicas,
                      router="round_robin" if router is None else router)
    adm = None
    if admission is not None:
        if not isinstance(admission, Admission):
            raise InvalidTypeError("admission must be a qcore.llm.Admission or None")
        if isinstance(fleet, Disaggregated):
            raise InvalidArgumentError(
                "admission applies to a colocated Fleet, not to Disaggregated pools")
        if fleet is None:
            fleet = Fleet()
        adm = admission._spec()
    fleet, auto = _autoscale_spec(autoscale, fleet)
    hb = workload.hash_block_tokens or 1
    disagg = None
    if isinstance(fleet, Disaggregated):
        disagg = (fleet.decode._spec(), fleet.decode.step_time._spec(),
                  int(fleet.prefill_replicas), int(fleet.decode_replicas),
                  None if fleet.transfer is None else fleet.transfer._spec())
    raw = _qcore._llm_simulate(
        workload.arrival, workload.prompt_tokens, workload.output_tokens,
        workload.hash_offsets, workload.hash_ids, hb, replica._spec(),
        replica.step_time._spec(), fleet._spec() if isinstance(fleet, Fleet) else None,
        relative_accuracy, trace, timeline_interval, progress, disagg, adm, auto)
    rec = raw["records"]
    arrival = workload.arrival
    n = len(arrival)
    status = np.asarray(rec["status"])
    out = np.asarray(workload.output_tokens)
    ft = np.asarray(rec["first_token"])
    fin = np.asarray(rec["finish"])
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (fin - ft) / np.maximum(out - 1, 1), np.nan)
    rep_idx = np.asarray(rec["replica"])
    rep_col = pl.Series("replica", rep_idx)
    if n and rep_idx.min() < 0:   # rejected or shed before routing: no replica
        rep_col = rep_col.scatter(np.flatnonzero(rep_idx < 0), None)
    # Eagerly built (NaN times become nulls at construction): no query to run.
    df = pl.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "arrival": arrival,
        "replica": rep_col,
        "status": pl.Series(np.asarray(_STATUS, dtype=object)[status].tolist(), dtype=pl.String)
        if n else pl.Series([], dtype=pl.String),
        "prompt_tokens": workload.prompt_tokens,
        "output_tokens": np.asarray(rec["output_tokens"]).astype(np.int64),
        "first_scheduled": np.asarray(rec["first_scheduled"]),
        "first_token": ft,
        "finish": fin,
        "queue": np.asarray(rec["first_scheduled"]) - arrival,
        "ttft": ft - arrival,
        "tpot": tpot,
        "e2e": fin - arrival,
        "preemptions": np.asarray(rec["preemptions"]).astype(np.int64),
        "cached_tokens": np.asarray(rec["cached_tokens"]).astype(np.int64),
    }, nan_to_null=True)
    reps = pl.DataFrame(raw["replicas"]).with_row_index("replica")
    steps = sched = pre = None
    if raw["trace"] is not None:
        t = raw["trace"]
        steps = _frame({"replica": t["step_replica"], "start": t["step_start"],
                        "end": t["step_end"], "waiting": t["step_waiting"]}
                       ).with_row_index("step")
        sched = _frame({"step": t["sched_step"], "request": t["sched_request"],
                        "tokens": t["sched_tokens"]})
        pre = _frame({"step": t["preempt_step"], "request": t["preempt_request"]})
    tl = _frame(raw["timeline"]) if raw["timeline"] is not None else None
    qs = QuantileSketch.from_bytes
    sc = raw["scaling"]
    scaling, lives = (None, None) if sc is None else (_nulls(sc["timeline"]), _nulls(sc["lives"]))
    return LlmResult(
        requests=df, ttft=qs(raw["ttft"]), tpot=qs(raw["tpot"]), itl=qs(raw["itl"]),
        e2e=qs(raw["e2e"]), queue=qs(raw["queue"]), replica_stats=reps,
        rejected=int(raw["rejected"]), t0=float(raw["t0"]), t_end=float(raw["t_end"]),
        replica=replica,
        fleet=(fleet if isinstance(fleet, Fleet) else Fleet() if fleet is None
               else Fleet(replicas=fleet.prefill_replicas + fleet.decode_replicas)),
        steps=steps, scheduled=sched, preempted=pre, timeline=tl,
        shed=int(raw["shed"]), timed_out=int(raw["timed_out"]),
        admission_rejected=int(raw["admission_rejected"]),
        wasted_tokens=int(raw["wasted_tokens"]), admission=admission, _slo=slo,
        scaling=scaling, replica_lives=lives,
        replica_seconds=None if sc is None else float(sc["replica_seconds"]),
        scale_events=0 if sc is None else int(sc["scale_events"]),
        peak_replicas=None if sc is None else int(sc["peak_replicas"]),
        autoscale=autoscale)



def max_rate(workload: Workload, replica: Replica, slo: SLO, fleet: Fleet | None = None, *,
             attainment: float = 0.9, rel_tol: float = 0.01, max_runs: int = 40,
             accept: Callable[[LlmResult], bool] | None = None) -> float:
    """DistServe's goodput: the highest arrival rate (requests/s) at which at least
    ``attainment`` of the requests meet ``slo``.

    ``accept``, when given, replaces the attainment test: a rate is sustained when
    ``accept(result)`` is true (e.g. every SLO quantile within its objective, as
    :func:`qcore.llm.plan.sustained_rate` does with intervals).

    The workload's arrivals are scaled (:meth:`Workload.scale_rate`); the rate is
    bracketed by doubling or halving, then bisected to ``rel_tol``. Returns 0.0 when
    even a 2⁻²⁰ fraction of the workload's rate misses the objective.

    >>> from qcore import llm
    >>> w = llm.Workload.poisson(rate=1.0, n=300, prompt_tokens=500, output_tokens=50)
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000)
    >>> 5 < llm.max_rate(w, rep, llm.SLO(ttft=0.5)) < 500
    True
    """
    if not 0 < attainment <= 1:
        raise InvalidArgumentError(f"attainment must be in (0, 1], got {attainment}")
    if not 0 < rel_tol < 1:
        raise InvalidArgumentError(f"rel_tol must be in (0, 1), got {rel_tol}")
    if len(workload) < 2 or workload.arrival[-1] <= workload.arrival[0]:
        raise InvalidArgumentError("workload needs at least two distinct arrival times")
    base = (len(workload) - 1) / float(workload.arrival[-1] - workload.arrival[0])

    def ok(f: float) -> bool:
        r = simulate(workload.scale_rate(f), replica, fleet)
        return accept(r) if accept is not None else r.slo_attainment(slo) >= attainment

    return _bisect_factor(ok, rel_tol, max_runs)[0] * base


def _bisect_factor(ok: Callable[[float], bool], rel_tol: float,
                   max_runs: int) -> tuple[float, int]:
    """The largest rate factor ``f`` with ``ok(f)`` (assumed to hold below a threshold):
    bracketed from 1 by doubling or halving (down to 2⁻²⁰), then bisected until the
    bracket is within ``rel_tol`` of its low end or ``max_runs`` calls were made. Returns
    ``(factor, calls)``; factor 0.0 when no factor down to 2⁻²⁰ is ok."""
    runs = 0

    def test(f: float) -> bool:
        nonlocal runs
        runs += 1
        return ok(f)

    lo, hi = 0.0, 1.0
    if test(1.0):
        lo = 1.0
        hi = 2.0
        while test(hi) and runs < max_runs:
            lo, hi = hi, hi * 2
    else:
        while hi > 2.0**-20 and runs < max_runs:
            hi /= 2
            if test(hi):
                lo, hi = hi, hi * 2
                break
        if lo == 0.0:
            return 0.0, runs
    while hi - lo > rel_tol * lo and runs < max_runs:
        mid = 0.5 * (lo + hi)
        if test(mid):
            lo = mid
        else:
            hi = mid
    return lo, runs


def replicate(make_workload: Callable[[int], Workload], replica: Replica,
              fleet: Fleet | Disaggregated | None = None, *, replications: int = 5, seed: int = 1,
              slo: SLO | None = None, confidence: float = 0.95,
              quantiles: tuple[float, ...] = (0.5, 0.99)) -> pl.DataFrame:
    """Independent replications of a synthetic workload, with confidence intervals.

    ``make_workload(seed)`` builds replication ``i``'s workload with seed ``seed + i``
    (e.g. ``lambda s: Workload.synthetic(sim.Poisson(10.0), 5000, 1000, 200, seed=s)``).
    Returns one row per metric: ``metric``, ``mean``, ``lo``, ``hi`` (Student-t interval
    of the mean over replications, the simulator's) and the per-replication ``values``.
    Metrics: TTFT/TPOT/E2E at each of ``quantiles`` (named as the rules name them:
    ``ttft_p50``, ``tpot_p99``, ``e2e_p999``), token and request throughput, preemptions,
    rejected requests, ``cost_per_mtok`` when the replica has a price, and the SLO
    attainment when ``slo`` is given. Every replication with the same ``seed`` sees the
    same requests, so two configurations replicated with the same seeds are compared
    with common random numbers.

    >>> from qcore import llm, sim
    >>> rep = llm.Replica(step_time=llm.Linear(c0=0.02, c_tok=2e-5), num_blocks=4000)
    >>> t = llm.replicate(lambda s: llm.Workload.synthetic(sim.Poisson(5.0), 300, 500, 50,
    ...                   seed=s), rep, replications=4)
    >>> row = t.filter(t["metric"] == "ttft_p99").row(0, named=True)
    >>> row["lo"] <= row["mean"] <= row["hi"]
    True
    """
    from qcore.rules.engine import _qlabel

    if replications < 2:
        raise InvalidArgumentError(f"replications must be >= 2, got {replications}")
    if not quantiles or not all(0 < q < 1 for q in quantiles):
        raise InvalidArgumentError(f"quantiles must be in (0, 1), got {quantiles!r}")
    values: dict[str, list[float]] = {}
    for i in range(replications):
        r = simulate(make_workload(seed + i), replica, fleet)
        row: dict[str, float] = {}
        for name in ("ttft", "tpot", "e2e"):
            sk: QuantileSketch = getattr(r, name)
            for q in quantiles:
                v = sk.quantile(q) if sk.count else None
                row[f"{name}_p{_qlabel(q)}"] = float(v) if isinstance(v, float) else math.nan
        row["token_throughput"] = r.token_throughput
        row["request_throughput"] = r.request_throughput
        row["preemptions"] = float(r.preemptions)
        row["rejected"] = float(r.rejected)
        if replica.price_per_hour > 0:
            row["cost_per_mtok"] = r.cost_per_mtok
        if slo is not None:
            row["slo_attainment"] = r.slo_attainment(slo)
        for k, v in row.items():
            values.setdefault(k, []).append(v)
    rows = []
    for k, vs in values.items():
        arr = np.asarray(vs, dtype=np.float64)
        if np.isnan(arr).any():
            lo = mean = hi = math.nan
        else:
            lo, mean, hi = _qcore._sim_mean_ci(arr, confidence)
        rows.append({"metric": k, "mean": mean, "lo": lo, "hi": hi, "values": vs})
    return pl.DataFrame(rows)


from qcore.llm import presets  # noqa: E402  (needs the classes above)

__all__ += ["presets"]
from qcore.llm.plan import (  # noqa: E402
    Candidate,
    Ceilings,
    Objective,
    Plan,
    SustainedRate,
    ceilings,
    gpu_price,
    plan,
    plan_disaggregated,
    prices,
    sustained_rate,
)

__all__ += ["Candidate", "Ceilings", "Objective", "Plan", "SustainedRate", "ceilings",
            "gpu_price", "plan", "plan_disaggregated", "prices", "sustained_rate"]
