"""The one group encoder: rows → dense group codes (:class:`KeyCodes`, :func:`dense_codes`)
→ one sketch per key. The report, :func:`qcore.group_quantiles`,
:func:`qcore.littles_law_by` and the pipeline's group sketches all take their codes here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qcore.sketch import QuantileSketch, _quantile_name

__all__ = ["GroupSketchMap", "Groups", "KeyCodes", "dense_codes", "group_sketches_of", "keys_of", "quantile_frame"]

GroupSketchMap = dict[tuple[Any, ...], QuantileSketch]


def keys_of(by: str | Sequence[str]) -> list[str]:
    """The key columns of ``by`` (a name or a non-empty sequence of names)."""
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ValueError("by must name at least one column")
    return keys


class KeyCodes:
    """Dense ``int64`` codes for the distinct keys of one frame or of a stream of batches.

    A key keeps its code across batches; the keys a batch brings take the next codes (in
    sorted order for one string key, the fast path: the codes are the physical values of
    an Enum of the keys met). ``table`` holds the keys with their ``__code``.

    >>> import polars as pl
    >>> enc = KeyCodes(["k"], {"k": pl.String})
    >>> enc.encode(pl.DataFrame({"k": ["b", "a", "b"]}))[1].tolist()
    [1, 0, 1]
    >>> enc.encode(pl.DataFrame({"k": ["c", "a"]}))[1].tolist(), enc.table["k"].to_list()
    ([2, 0], ['a', 'b', 'c'])
    """

    def __init__(self, keys: Sequence[str], schema: Any) -> None:
        import polars as pl

        self.keys = tuple(keys)
        self.table = pl.DataFrame(schema={**{k: schema[k] for k in self.keys}, "__code": pl.Int64})
        #: categorical physical id -> code (see :meth:`encode_physical`)
        self.lut = np.full(0, -1, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.table.height)

    def encode(self, df: Any) -> tuple[Any, np.ndarray]:
        """``(df with a __code column, codes)``: the codes of ``df``'s rows, in its order."""
        import polars as pl

        keys, table = self.keys, self.table
        if len(keys) == 1 and df.schema[keys[0]] == pl.String and df.get_column(keys[0]).null_count() == 0:
            k = keys[0]
            known = table.get_column(k).to_list()
            seen = set(known)
            fresh = sorted(v for v in df.get_column(k).unique().to_list() if v not in seen)
            if fresh:
                add = pl.DataFrame({k: fresh, "__code": list(range(len(known), len(known) + len(fresh)))},
                                   schema=table.schema)
                self.table = table = pl.concat([table, add])
            codes = df.get_column(k).cast(pl.Enum(table.get_column(k).to_list())).to_physical().cast(pl.Int64)
            out = df.with_columns(__code=codes)
            return out, np.asarray(out.get_column("__code").to_numpy(), dtype=np.int64)
        new = df.select(keys).unique().join(table, on=list(keys), how="anti", nulls_equal=True)
        if new.height:
            new = new.sort(list(keys), nulls_last=True).with_columns(
                __code=pl.int_range(table.height, table.height + new.height, dtype=pl.Int64))
            self.table = table = pl.concat([table, new.select(table.columns)], how="vertical_relaxed")
        out = df.join(table, on=list(keys), how="left", nulls_equal=True, maintain_order="left")
        return out, np.asarray(out.get_column("__code").to_numpy(), dtype=np.int64)

    def encode_physical(self, phys: np.ndarray, values: Any) -> np.ndarray:
        """The codes of one string key read as categorical physical ids ``phys`` (no
        nulls), with ``values`` the key's values of the same rows: the codes of
        :meth:`encode` for the same keys, with one table lookup a row."""
        import polars as pl

        key = values.name
        top = int(phys.max()) + 1 if phys.size else 0
        if top > self.lut.size:
            self.lut = np.concatenate([self.lut, np.full(top - self.lut.size, -1, dtype=np.int64)])
        codes = self.lut[phys]
        if phys.size and int(codes.min()) < 0:      # ids not met before: look their values up
            miss = np.flatnonzero(codes < 0)
            ids, at = np.unique(phys[miss], return_index=True)   # each new id's first row
            names = [values[int(j)] for j in miss[at]]
            table = self.table
            known = dict(zip(table.get_column(key).cast(pl.String).to_list(), table.get_column("__code").to_list(),
                             strict=True))
            fresh = sorted({str(v) for v in names} - set(known))
            if fresh:
                add = pl.DataFrame({key: fresh, "__code": list(range(table.height, table.height + len(fresh)))},
                                   schema={key: pl.String, "__code": pl.Int64})
                self.table = pl.concat([table, add.cast(table.schema)])
                known.update(zip(fresh, add.get_column("__code").to_list(), strict=True))
            for i, v in zip(ids.tolist(), names, strict=True):
                self.lut[i] = known[str(v)]
            codes = self.lut[phys]
        return np.asarray(codes, dtype=np.int64)


def dense_codes(df: Any, keys: Sequence[str]) -> tuple[Any, np.ndarray, Any]:
    """``(df with __code, codes, key table)`` for one frame, the codes in the sorted order
    of the keys (nulls last): code ``i`` is row ``i`` of the key table.

    >>> import polars as pl
    >>> _, codes, table = dense_codes(pl.DataFrame({"k": ["b", None, "a", "b"]}), ["k"])
    >>> codes.tolist(), table["k"].to_list()
    ([1, 2, 0, 1], ['a', 'b', None])
    """
    enc = KeyCodes(keys, df.schema)
    enc.encode(df.select(keys).unique().sort(list(keys), nulls_last=True))
    out, codes = enc.encode(df)
    return out, codes, enc.table.sort("__code").drop("__code")


def group_sketches_of(
    frame: Any,
    keys: list[str],
    value: str,
    relative_accuracy: float,
    weights: str | None = None,
    drop_nulls: bool = False,
) -> GroupSketchMap:
    """One sketch per distinct key of a polars (or pandas) frame, built in one pass."""
    import polars as pl

    import qcore

    if not isinstance(frame, pl.DataFrame):
        frame = pl.from_pandas(frame)
    needed = [*keys, value] + ([weights] if weights is not None else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}; it has {frame.columns}")
    df = frame.select(needed)
    if drop_nulls:
        df = df.drop_nulls(subset=[value] + ([weights] if weights is not None else []))
    if df.height == 0:
        return {}
    if keys:
        df, codes, table = dense_codes(df, keys)
        key_rows = table.rows()
    else:  # one group of every row
        codes, key_rows = np.zeros(df.height, dtype=np.int64), [()]
    w = df[weights] if weights is not None else None
    sketches = qcore.sketch_groups(codes, df[value], relative_accuracy, weights=w)
    return {tuple(k): sk for k, sk in zip(key_rows, sketches, strict=True)}


class Groups:
    """Mergeable ``{key tuple: sketch}`` (each sketch merged exactly)."""

    __slots__ = ("sketches",)

    def __init__(self, sketches: GroupSketchMap | None = None) -> None:
        self.sketches: GroupSketchMap = {} if sketches is None else sketches

    def merge_dict(self, other: GroupSketchMap) -> None:
        for k, sk in other.items():
            mine = self.sketches.get(k)
            self.sketches[k] = sk if mine is None else QuantileSketch.merge_all([mine, sk])

    def merge(self, other: Groups) -> None:
        self.merge_dict(other.sketches)

    def copy(self) -> Groups:
        return Groups({k: s.copy() for k, s in self.sketches.items()})


def quantile_frame(
    groups: GroupSketchMap, keys: list[str], key_schema: dict[str, Any], quantiles: Sequence[float]
) -> Any:
    """The frame :func:`qcore.group_quantiles` returns, from merged group sketches."""
    import polars as pl

    qs = [float(q) for q in quantiles]
    for q in qs:
        if not (0.0 <= q <= 1.0):
            raise ValueError(f"quantiles must be in [0, 1], got {q}")
    items = list(groups.items())
    n = len(items)
    cols: dict[str, Any] = {}
    for j, k in enumerate(keys):
        cols[k] = pl.Series(k, [key[j] for key, _ in items], dtype=key_schema.get(k))
    table = np.full((n, len(qs)), np.nan)
    for i, (_, sk) in enumerate(items):
        r = sk.quantile(qs)
        if r is not None:
            table[i] = r
    cols["count"] = pl.Series("count", np.array([sk.count for _, sk in items], dtype=np.float64))
    for j, q in enumerate(qs):
        cols[_quantile_name(q)] = pl.Series(_quantile_name(q), table[:, j])
    out = pl.DataFrame(cols)
    return out.sort(keys, nulls_last=True) if keys else out
