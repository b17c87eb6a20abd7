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

>>> from qcore.llm import presets
>>> st = presets.step_time("splitwise/llama2-70b/h100-80gb/tp8")
>>> round(st.duration(decode_ctx=[600]) * 1e3, 1)   # ms, decode step at batch 1
29.7
>>> "distserve/opt-13b/tp1" in presets.step_time_names()
True
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from functools import lru_cache
from importlib import resources

import numpy as np

from qcore import _qcore
from qcore.exceptions import InvalidArgumentError
from qcore.llm import Phases, StepTime, TableStepTime

__all__ = ["GPUS", "MODELS", "gpu", "kv_capacity_tokens", "model", "step_time",
           "step_time_names"]

_M, _G = _qcore._llm_presets()
MODELS: dict[str, tuple[float, int, int, int, float]] = dict(_M)
"""name → (params, layers, kv_heads, head_dim, dtype_bytes)."""
GPUS: dict[str, tuple[float, float, float, float]] = dict(_G)
"""name → (memory_bytes, hbm_bandwidth, peak_flops, price_per_hour); prices indicative."""


def model(name: str) -> tuple[float, int, int, int, float]:
    """A model preset (``InvalidArgumentError`` naming the known ones if unknown)."""
    try:
        return MODELS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"model is an unknown preset {name!r} (known: {', '.join(MODELS)})") from None


def gpu(name: str) -> tuple[float, float, float, float]:
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


def step_time_names() -> list[str]:
    """Names of the measured step-time presets."""
    return sorted([*_splitwise(), *_distserve()])


def step_time(name: str) -> StepTime:
    """A measured step-time preset by name (see :func:`step_time_names`)."""
    table: dict[str, StepTime] = {**_splitwise(), **_distserve()}
    try:
        return table[name]
    except KeyError:
        raise InvalidArgumentError(
            f"step_time is an unknown preset {name!r} (known: {', '.join(sorted(table))})"
        ) from None


def kv_capacity_tokens(model_name: str, tensor_parallel: int, pipeline_parallel: int = 1) -> int:
    """DistServe's measured KV capacity (tokens) of an OPT model on A100-80G GPUs."""
    for row in csv.DictReader(_data("distserve_max_num_tokens.csv").splitlines()):
        if (row["model"].split("/")[-1] == model_name and int(row["tp"]) == tensor_parallel
                and int(row["pp"]) == pipeline_parallel):
            return int(row["max_num_tokens"])
    raise InvalidArgumentError(
        f"model has no DistServe KV capacity for {model_name!r} at tp={tensor_parallel}, "
        f"pp={pipeline_parallel}")
