"""LLM workloads: arrivals, prompt and output token counts, optional prefix block hashes.

>>> import polars as pl
>>> from qcore.llm import Workload
>>> w = Workload.from_frame(pl.DataFrame({"ts": [0.0, 0.5], "input_tokens": [10, 20],
...                                       "output_tokens": [3, 4]}))
>>> len(w), w.prompt_tokens.tolist()
(2, [10, 20])
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from qcore.exceptions import InvalidArgumentError

__all__ = ["Workload"]

_HASH_NAMES = ("hash_ids", "block_hashes", "hashes", "prefix_hashes")


def _tokens(name: str, v: Any) -> npt.NDArray[np.int64]:
    a = np.asarray(v)
    if a.ndim != 1:
        raise InvalidArgumentError(f"{name} must be one-dimensional")
    if a.dtype.kind == "f":
        if np.isnan(a).any():
            raise InvalidArgumentError(f"{name} contains NaN at index {int(np.argmax(np.isnan(a)))}")
        if (a != np.round(a)).any():
            raise InvalidArgumentError(f"{name} must hold whole token counts")
    elif a.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{name} must be integers, got dtype {a.dtype}")
    out = np.ascontiguousarray(a, dtype=np.int64)
    bad = np.flatnonzero(out < 1)
    if bad.size:
        raise InvalidArgumentError(
            f"{name} must be >= 1 (got {int(out[bad[0]])} at index {int(bad[0])})")
    return out


@dataclass(frozen=True, eq=False)
class Workload:
    """Requests in arrival order.

    ``arrival`` in seconds (non-decreasing, finite), ``prompt_tokens`` and
    ``output_tokens`` ≥ 1. Optional prefix hashes: request ``i`` has
    ``hash_ids[hash_offsets[i]:hash_offsets[i+1]]``, one id per ``hash_block_tokens``
    prompt tokens (chained ids, as in the Mooncake trace).
    """

    arrival: npt.NDArray[np.float64]
    prompt_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]
    hash_offsets: npt.NDArray[np.int64] | None = None
    hash_ids: npt.NDArray[np.int64] | None = None
    hash_block_tokens: int = 0

    def __post_init__(self) -> None:
        a = np.ascontiguousarray(np.asarray(self.arrival, dtype=np.float64))
        if a.ndim != 1:
            raise InvalidArgumentError("arrival must be one-dimensional")
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise InvalidArgumentError(
                f"arrival contains {a[bad[0]]} at index {int(bad[0])}")
        object.__setattr__(self, "arrival", a)
        object.__setattr__(self, "prompt_tokens", _tokens("prompt_tokens", self.prompt_tokens))
        object.__setattr__(self, "output_tokens", _tokens("output_tokens", self.output_tokens))
        n = a.size
        if self.prompt_tokens.size != n or self.output_tokens.size != n:
            raise InvalidArgumentError(
                "arrival, prompt_tokens and output_tokens must have the same length")
        if n > 1 and (np.diff(a) < 0).any():
            raise InvalidArgumentError("arrival must be non-decreasing (sort the requests)")
        if (self.hash_offsets is None) != (self.hash_ids is None):
            raise InvalidArgumentError("hash_offsets and hash_ids go together")
        if self.hash_offsets is not None and self.hash_ids is not None:
            off = np.ascontiguousarray(self.hash_offsets, dtype=np.int64)
            ids = np.ascontiguousarray(self.hash_ids, dtype=np.int64)
            if off.size != n + 1 or off[0] != 0 or off[-1] != ids.size or (np.diff(off) < 0).any():
                raise InvalidArgumentError(
                    "hash_offsets must have len(requests) + 1 non-decreasing entries from 0 "
                    "to len(hash_ids)")
            if self.hash_block_tokens < 1:
                raise InvalidArgumentError("hash_block_tokens must be >= 1 with hashes")
            object.__setattr__(self, "hash_offsets", off)
            object.__setattr__(self, "hash_ids", ids)

    def __len__(self) -> int:
        return int(self.arrival.size)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_frame(cls, frame: pl.DataFrame | pl.LazyFrame, *,
                   mapping: Mapping[str, Any] | None = None,
                   hash_block_tokens: int = 512) -> Workload:
        """A workload from a frame with arrival, prompt and output columns.

        Columns are detected by name as :func:`qcore.logs.detect_columns` does (for
        example ``timestamp``/``arrival``/``ts``, ``input_tokens``/``ContextTokens``/
        ``input_length``, ``output_tokens``/``GeneratedTokens``/``output_length``;
        time units from suffixes such as ``_ms``); ``mapping`` overrides them
        (``{"start": ..., "tokens_in": ..., "tokens_out": ..., "time_unit": "ms"}``).
        A list column ``hash_ids`` (or ``block_hashes``) gives prefix hashes of
        ``hash_block_tokens`` tokens each. Rows are sorted by arrival (stable) and times
        are shifted so that the first arrival is at 0.
        """
        from qcore import logs

        lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
        schema = lf.collect_schema()
        m = logs.detect_columns(schema, mapping)
        if m.tokens_in is None or m.tokens_out is None:
            raise InvalidArgumentError(
                "frame needs prompt and output token columns; columns found: "
                f"{list(schema.names())} (name them with mapping={{'tokens_in': ..., "
                "'tokens_out': ...}})")
        hcol = next((c for c in schema.names() if c.lower() in _HASH_NAMES), None)
        norm = logs.normalize(lf, m)
        cols = ["start", "tokens_in", "tokens_out"]
        df = norm.select(cols).collect()
        if hcol is not None:
            df = df.with_columns(lf.select(pl.col(hcol)).collect().to_series().alias("_h"))
        df = df.with_row_index("_i").sort("start", "_i", maintain_order=True)
        start = df["start"].to_numpy()
        if start.size and np.isnan(start).any():
            i = int(np.argmax(np.isnan(start)))
            raise InvalidArgumentError(f"arrival contains NaN at index {i} (unparsed time?)")
        t0 = float(start[0]) if start.size else 0.0
        off = ids = None
        if hcol is not None:
            lens = df["_h"].list.len().fill_null(0).to_numpy().astype(np.int64)
            off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            ids = df["_h"].explode().drop_nulls().cast(pl.Int64).to_numpy()
        return cls(arrival=start - t0, prompt_tokens=df["tokens_in"].to_numpy(),
                   output_tokens=df["tokens_out"].to_numpy(), hash_offsets=off, hash_ids=ids,
                   hash_block_tokens=hash_block_tokens if hcol is not None else 0)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Workload:
        """A workload from a file, recognising the public traces.

        Azure LLM 2023 CSVs (``TIMESTAMP, ContextTokens, GeneratedTokens``), Mooncake JSON
        lines (ms ``timestamp``, ``hash_ids``), RAGPulse JSON lines and the published
        simulators' workload CSVs (``arrival_s, prompt_len, output_len``, times kept as
        given) are read as such;
        any other CSV, Parquet or NDJSON file goes through :meth:`from_frame`.
        """
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no such trace: {p}")
        suffix = p.suffix.lower()
        if suffix in (".jsonl", ".ndjson", ".json"):
            first = pl.read_ndjson(p, n_rows=1)
            cols = set(first.columns)
            if {"timestamp", "input_length", "output_length"} <= cols:
                if "session_id" in cols or first.schema.get("hash_ids") == pl.Struct:
                    return cls.ragpulse(p)
                if first.schema.get("timestamp") == pl.String:
                    return cls.ragpulse(p)
                return cls.mooncake(p)
            return cls.from_frame(pl.read_ndjson(p))
        if suffix == ".parquet":
            return cls.from_frame(pl.read_parquet(p))
        cols = set(pl.read_csv(p, n_rows=1).columns)
        if {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} <= cols:
            return cls.azure(p)
        if {"arrival_s", "prompt_len", "output_len"} <= cols:
            # The published LLM simulators' workload files (arrival in s, as given).
            df = pl.read_csv(p, columns=["arrival_s", "prompt_len", "output_len"])
            return cls(arrival=df["arrival_s"].cast(pl.Float64).to_numpy(),
                       prompt_tokens=df["prompt_len"].to_numpy(),
                       output_tokens=df["output_len"].to_numpy())
        return cls.from_frame(pl.read_csv(p))

    @classmethod
    def azure(cls, path: str | os.PathLike[str]) -> Workload:
        """The Azure LLM inference trace 2023 (``TIMESTAMP, ContextTokens, GeneratedTokens``)."""
        raw = pl.read_csv(os.fspath(path)).with_columns(
            pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us"))
        return cls.from_frame(raw, mapping={"start": "TIMESTAMP", "tokens_in": "ContextTokens",
                                            "tokens_out": "GeneratedTokens"})

    @classmethod
    def mooncake(cls, path: str | os.PathLike[str]) -> Workload:
        """A Mooncake FAST'25 trace (JSON lines: ms ``timestamp``, ``input_length``,
        ``output_length``, 512-token ``hash_ids``)."""
        raw = pl.read_ndjson(os.fspath(path))
        return cls.from_frame(raw, mapping={"start": "timestamp", "tokens_in": "input_length",
                                            "tokens_out": "output_length", "time_unit": "ms"},
                              hash_block_tokens=512)

    @classmethod
    def ragpulse(cls, path: str | os.PathLike[str]) -> Workload:
        """The RAGPulse trace (JSON lines: ``timestamp`` in seconds as a string,
        ``input_length``, ``output_length``). Its per-component hash ids have no token
        lengths in the trace file, so no prefix hashes are attached."""
        raw = pl.read_ndjson(os.fspath(path)).drop("hash_ids", strict=False)
        return cls.from_frame(raw, mapping={"start": "timestamp", "tokens_in": "input_length",
                                            "tokens_out": "output_length"})

    @classmethod
    def poisson(cls, rate: float, n: int, prompt_tokens: int | npt.ArrayLike,
                output_tokens: int | npt.ArrayLike, seed: int = 1) -> Workload:
        """``n`` Poisson arrivals at ``rate`` per second. Token counts: an int (fixed) or
        an array resampled uniformly (e.g. a trace's column)."""
        if not (math.isfinite(rate) and rate > 0):
            raise InvalidArgumentError(f"rate must be finite and > 0, got {rate}")
        if n < 0:
            raise InvalidArgumentError(f"n must be >= 0, got {n}")
        rng = np.random.default_rng(seed)
        t = np.cumsum(rng.exponential(1.0 / rate, size=n))
        if n:
            t -= t[0]

        def draw(name: str, v: int | npt.ArrayLike) -> npt.NDArray[np.int64]:
            if isinstance(v, (int, np.integer)):
                return np.full(n, int(v), dtype=np.int64)
            pool = _tokens(name, v)
            if pool.size == 0:
                raise InvalidArgumentError(f"{name} is empty")
            return pool[rng.integers(0, pool.size, size=n)]

        return cls(arrival=t, prompt_tokens=draw("prompt_tokens", prompt_tokens),
                   output_tokens=draw("output_tokens", output_tokens))

    @classmethod
    def synthetic(cls, arrivals: Any, n: int, prompt_tokens: Any, output_tokens: Any,
                  seed: int = 1) -> Workload:
        """``n`` synthetic requests from :mod:`qcore.sim`'s processes and distributions.

        ``arrivals``: any :class:`qcore.sim.ArrivalProcess` (``Poisson``, ``Renewal`` with
        a gamma gap for burstiness, ``MMPP2``, ``PiecewiseRate``); the first arrival is at
        0. ``prompt_tokens`` / ``output_tokens``: an int (fixed) or a
        :class:`qcore.sim.Distribution` (``LogNormal``, ``Gamma``, ``Empirical`` to
        resample a trace's column, ...), rounded to integers ≥ 1. The same seed gives
        the same workload on every platform (the simulator's RNG).

        >>> from qcore import llm, sim
        >>> w = llm.Workload.synthetic(sim.Renewal(sim.Gamma(mean=0.1, cv=2.0)), n=1000,
        ...                            prompt_tokens=sim.LogNormal(mean=1000, cv=1.0),
        ...                            output_tokens=200, seed=7)
        >>> len(w), int(w.output_tokens[0])
        (1000, 200)
        """
        from qcore import _qcore, sim

        def spec(v: Any, name: str) -> Any:
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                if v < 1:
                    raise InvalidArgumentError(f"{name} must be >= 1, got {v}")
                return sim.Deterministic(float(v))
            if isinstance(v, sim.Distribution):
                return v
            raise InvalidArgumentError(
                f"{name} must be an int or a qcore.sim distribution, got {type(v).__name__}")

        if not isinstance(arrivals, sim.ArrivalProcess):
            raise InvalidArgumentError("arrivals must be a qcore.sim arrival process")
        if n < 0:
            raise InvalidArgumentError(f"n must be >= 0, got {n}")
        a, p, o = _qcore._llm_synthetic(arrivals, spec(prompt_tokens, "prompt_tokens"),
                                        spec(output_tokens, "output_tokens"), int(n), int(seed))
        return cls(arrival=a, prompt_tokens=p, output_tokens=o)

    def scale_rate(self, factor: float) -> Workload:
        """The same requests arriving ``factor`` times faster (times divided by it)."""
        if not (math.isfinite(factor) and factor > 0):
            raise InvalidArgumentError(f"factor must be finite and > 0, got {factor}")
        return Workload(self.arrival / factor, self.prompt_tokens, self.output_tokens,
                        self.hash_offsets, self.hash_ids, self.hash_block_tokens)

    def head(self, n: int) -> Workload:
        """The first ``n`` requests."""
        off = ids = None
        if self.hash_offsets is not None and self.hash_ids is not None:
            off = self.hash_offsets[: n + 1]
            ids = self.hash_ids[: int(off[-1])]
        return Workload(self.arrival[:n], self.prompt_tokens[:n], self.output_tokens[:n],
                        off, ids, self.hash_block_tokens)
