"""Named presets: model shapes, GPUs and measured step times.

Model and GPU presets live in the core (``MODELS``, ``GPUS``). Measured step times ship
in ``qcore/data/llm/`` with their licences (see ``ATTRIBUTION.md`` there):

- ``splitwise/<model>/<hardware>/tp<N>``: SplitwiseSim's ``perf_model.csv`` (MIT;
  Patel et al., ISCA 2024) as a :class:`~qcore.llm.TableStepTime`: prefill time
  against the batch's prompt tokens, decode-step time against batch size, means of the
  repetitions.
- ``distserve/<model>/tp<N>`` (fitted on vLLM) and ``distserve-engine/<model>/tp<N>``
  (fitted on DistServe's engine): DistServe's A100-80G coefficients (Apache-2.0; Zhong
  et al., OSDI 2024) as a :class:`~qcore.llm.Phases`.
- ``vidur/llama-3-8b/a100/tp1``: the exported tables of Vidur's execution-time predictor
  (MIT; Agrawal et al., MLSys 2024) as a :class:`~qcore.llm.VidurStepTime`.

The published simulators' setups, as engine modes (:func:`peer`, :data:`MODES`):
``vidur_vllm`` (Vidur's ``vllm`` replica scheduler, Llama-3-8B on one A100),
``distserve_colocated`` and ``distserve_disaggregated`` (DistServe's ``simdistserve``,
backends ``vllm`` and ``distserve``, OPT-13B on A100-80G). On the published runs of
these simulators the engine reproduces every request's times exactly.

>>> from qcore.llm import presets
>>> setup = presets.peer("vidur_vllm")
>>> setup.replica.scheduler, setup.replica.num_blocks, setup.replica.max_num_seqs
('vidur', 29696, 512)

>>> from qcore.llm import presets
>>> st = presets.step_time("splitwise/llama2-70b/h100-80gb/tp8")
>>> round(st.duration(decode_ctx=[600]) * 1e3, 1)   # ms, decode step at batch 1
29.7
>>> "distserve/opt-13b/tp1" in presets.step_time_names()
True
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import polars as pl

from qcore import _qcore
from qcore.exceptions import InvalidArgumentError
from qcore.llm import (
    Disaggregated,
    DistServeStepTime,
    LlmResult,
    Phases,
    Replica,
    StepTime,
    TableStepTime,
    VidurStepTime,
    Workload,
    simulate,
)
from qcore.llm.plan import gpu_price

__all__ = ["GPUS", "MODES", "MODELS", "PeerSetup", "gpu", "kv_capacity_tokens", "model",
           "peer", "step_time", "step_time_names"]

_M, _G = _qcore._llm_presets()
MODELS: dict[str, tuple[float, int, int, int, float]] = dict(_M)
"""name → (params, layers, kv_heads, head_dim, dtype_bytes)."""
GPUS: dict[str, tuple[float, float, float]] = dict(_G)
"""name → (memory_bytes, hbm_bandwidth, peak_flops); prices are in :func:`qcore.llm.prices`."""


def model(name: str) -> tuple[float, int, int, int, float]:
    """A model preset (``InvalidArgumentError`` naming the known ones if unknown)."""
    try:
        return MODELS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"model is an unknown preset {name!r} (known: {', '.join(MODELS)})") from None


def gpu(name: str) -> tuple[float, float, float]:
    """A GPU preset."""
    try:
        return GPUS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"gpu is an unknown preset {name!r} (known: {', '.join(GPUS)})") from None


def _data(name: str) -> str:
    return resources.files("qcore").joinpath(f"data/llm/{name}").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _splitwise() -> dict[str, TableStepTime]:
    pre: dict[tuple[str, str, str], dict[float, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    dec: dict[tuple[str, str, str], dict[float, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    for row in csv.DictReader(_data("splitwise_perf_model.csv").splitlines()):
        if row["token_size"] != "128":
            continue
        key = (row["model"], row["hardware"], row["tensor_parallel"])
        p, b = int(row["prompt_size"]), int(row["batch_size"])
        pre[key][float(p * b)].append(float(row["prompt_time"]) * 1e-3)
        if p == 512:
            dec[key][float(b)].append(float(row["token_time"]) * 1e-3)
    out: dict[str, TableStepTime] = {}
    for key in sorted(pre):
        px = sorted(pre[key])
        dx = sorted(dec[key])
        out[f"splitwise/{key[0]}/{key[1]}/tp{key[2]}"] = TableStepTime(
            prefill_tokens=np.array(px),
            prefill_seconds=np.array([np.mean(pre[key][x]) for x in px]),
            decode_batch=np.array(dx),
            decode_seconds=np.array([np.mean(dec[key][x]) for x in dx]))
    return out


@lru_cache(maxsize=1)
def _distserve() -> dict[str, Phases]:
    out: dict[str, Phases] = {}
    for prefix, fname in (("distserve", "distserve_a100-80g.vllm.json"),
                          ("distserve-engine", "distserve_a100-80g.distserve.json")):
        data = json.loads(_data(fname))
        for mname, by_tp in data.items():
            short = mname.split("/")[-1]
            for tp, c in by_tp.items():
                out[f"{prefix}/{short}/tp{tp}"] = Phases(
                    prefill=tuple(c["prefill"]), decode_small=tuple(c["decoding_smallbs"]),
                    decode_large=tuple(c["decoding_largebs"]),
                    threshold=int(c["decoding_large_small_bs_threshold"]))
    return out


_VIDUR = "vidur/llama-3-8b/a100/tp1"


@lru_cache(maxsize=1)
def _vidur_npz() -> dict[str, Any]:
    raw = resources.files("qcore").joinpath(
        "data/llm/vidur_llama3_8b_a100_tp1.npz").read_bytes()
    with np.load(io.BytesIO(raw)) as z:
        return {k: z[k] for k in z.files}


@lru_cache(maxsize=1)
def _vidur() -> VidurStepTime:
    z = _vidur_npz()
    return VidurStepTime(
        ops={k: z[f"lin_{k}"] for k in VidurStepTime.OPS}, kv_save=z["kv_save"],
        decode=z["decode"], prefill=z["prefill"], num_layers=int(z["num_layers"]),
        post_attn_norm=bool(z["post_attn_norm"]), dec_overhead=float(z["dec_overhead_frac"]),
        pre_overhead=float(z["pre_overhead_frac"]), kv_gran=int(z["kv_gran"]))


def step_time_names() -> list[str]:
    """Names of the measured step-time presets."""
    return sorted([*_splitwise(), *_distserve(), _VIDUR])


def step_time(name: str) -> StepTime:
    """A measured step-time preset by name (see :func:`step_time_names`)."""
    if name == _VIDUR:
        return _vidur()
    table: dict[str, StepTime] = {**_splitwise(), **_distserve()}
    try:
        return table[name]
    except KeyError:
        raise InvalidArgumentError(
            f"step_time is an unknown preset {name!r} (known: {', '.join(sorted(table))})"
        ) from None


MODES = ("vidur_vllm", "distserve_colocated", "distserve_disaggregated")
"""The published simulators' setups that :func:`peer` builds."""


@dataclass(frozen=True)
class PeerSetup:
    """A published simulator's setup as a configuration of the engine.

    ``replica`` (and ``fleet``, the decode side of a disaggregated setup) reproduce the
    simulator; :meth:`workload` turns the simulator's inputs into the engine's, with the
    peer's own input rules (Vidur clips token counts to at least 1 and shortens prompts
    so that prompt + output ≤ its 16,384 tokens; DistServe runs ``output_len`` decode
    iterations after the first token, so a request emits ``output_len + 1`` tokens).
    """

    mode: str
    replica: Replica
    fleet: Disaggregated | None = None
    extra_output_token: bool = False
    max_tokens: int | None = None
    clock_ms: bool = False

    def workload(self, arrival: Any, prompt_len: Any, output_len: Any) -> Workload:
        """The engine workload of the peer's inputs (arrival s, prompt_len, output_len)."""
        p = np.asarray(prompt_len, dtype=np.int64)
        d = np.asarray(output_len, dtype=np.int64)
        if self.extra_output_token:
            d = d + 1
        if self.max_tokens is not None:
            p, d = np.maximum(p, 1), np.clip(d, 1, self.max_tokens - 1)
            p = np.minimum(p, self.max_tokens - d)
        return Workload(np.asarray(arrival, dtype=np.float64), p, d)

    def simulate(self, workload: Workload, **kwargs: Any) -> LlmResult:
        """:func:`qcore.llm.simulate` of ``workload`` on this setup."""
        return simulate(workload, self.replica, self.fleet, **kwargs)

    def replay(self, arrival: Any, prompt_len: Any, output_len: Any) -> pl.DataFrame:
        """The peer's run of its inputs, per request in the peer's own columns and clock.

        Vidur (seconds): ``arrival_s, scheduled_s, first_token_s, completion_s,
        num_restarts``. DistServe (milliseconds, its clock: ``w_0 = 0``, ``w_i = w_{i-1}
        + (t_i - t_{i-1})·1000``, steps of the fit's milliseconds): ``arrival_ms,
        prefill_start_ms, first_token_ms, completion_ms``. Equal in float64 to the
        simulators' own outputs on their published runs.
        """
        w = self.workload(arrival, prompt_len, output_len)
        if not self.clock_ms:
            r = self.simulate(w).requests
            return r.select(pl.col("id").alias("req_id"), pl.col("arrival").alias("arrival_s"),
                            pl.col("first_scheduled").alias("scheduled_s"),
                            pl.col("first_token").alias("first_token_s"),
                            pl.col("finish").alias("completion_s"),
                            pl.col("preemptions").alias("num_restarts"))
        t = np.asarray(w.arrival, dtype=np.float64)
        ms = np.cumsum(np.concatenate([[0.0], np.diff(t) * 1000.0])) if t.size else t
        st = self.replica.step_time
        assert isinstance(st, DistServeStepTime)
        rep = dataclasses.replace(self.replica,
                                  step_time=dataclasses.replace(st, clock_ms=True))
        fleet = None if self.fleet is None else dataclasses.replace(self.fleet, decode=rep)
        wm = Workload(ms, w.prompt_tokens, w.output_tokens)
        r = simulate(wm, rep, fleet).requests
        return r.select(pl.col("id").alias("req_id"), pl.col("arrival").alias("arrival_ms"),
                        pl.col("first_scheduled").alias("prefill_start_ms"),
                        pl.col("first_token").alias("first_token_ms"),
                        pl.col("finish").alias("completion_ms"))


def peer(mode: str) -> PeerSetup:
    """The setup of a published simulator (one of :data:`MODES`).

    - ``vidur_vllm``: Vidur (microsoft/vidur @ 7d47513), ``vllm`` replica scheduler,
      Llama-3-8B on one A100, TP 1: ``batch_size_cap`` 512, ``max_tokens_in_batch``
      16,384 (padded), block size 16, 29,696 blocks, watermark 1 % (296 blocks), the
      ``vidur/llama-3-8b/a100/tp1`` step time.
    - ``distserve_colocated``: DistServe's ``simdistserve`` (LLMServe/DistServe @
      82831f1), backend ``vllm``: OPT-13B, TP 1, PP 1, prefill cap 66,144 tokens, the
      ``distserve/opt-13b/tp1`` fit with the simulator's overheads.
    - ``distserve_disaggregated``: backend ``distserve``, one prefill and one decode
      worker, the ``distserve-engine/opt-13b/tp1`` fit.
    """
    if mode == "vidur_vllm":
        z = _vidur_npz()
        nb = float(z["num_blocks"])
        rep = Replica(step_time=_vidur(), num_blocks=int(nb), block_size=int(z["block_size"]),
                      max_num_seqs=int(z["batch_size_cap"]),
                      max_num_batched_tokens=int(z["max_tokens_in_batch"]),
                      chunked_prefill=False, prefix_caching=False, watermark=0.01,
                      scheduler="vidur", price_per_hour=gpu_price("a100-80gb"))
        return PeerSetup(mode, rep, max_tokens=int(z["max_tokens_in_batch"]))
    if mode in ("distserve_colocated", "distserve_disaggregated"):
        colo = mode == "distserve_colocated"
        fit = step_time("distserve/opt-13b/tp1" if colo else "distserve-engine/opt-13b/tp1")
        assert isinstance(fit, Phases)
        rep = Replica(step_time=DistServeStepTime.from_phases(fit), num_blocks=1,
                      scheduler="distserve", prefix_caching=False,
                      max_num_batched_tokens=kv_capacity_tokens("opt-13b", 1),
                      price_per_hour=gpu_price("a100-80gb"))
        return PeerSetup(mode, rep, None if colo else Disaggregated(decode=rep),
                         extra_output_token=True, clock_ms=True)
    raise InvalidArgumentError(f"mode is unknown: {mode!r} ({', '.join(MODES)})")


def kv_capacity_tokens(model_name: str, tensor_parallel: int, pipeline_parallel: int = 1) -> int:
    """DistServe's measured KV capacity (tokens) of an OPT model on A100-80G GPUs."""
    for row in csv.DictReader(_data("distserve_max_num_tokens.csv").splitlines()):
        if (row["model"].split("/")[-1] == model_name and int(row["tp"]) == tensor_parallel
                and int(row["pp"]) == pipeline_parallel):
            return int(row["max_num_tokens"])
    raise InvalidArgumentError(
        f"model has no DistServe KV capacity for {model_name!r} at tp={tensor_parallel}, "
        f"pp={pipeline_parallel}")
