"""The one group encoder of the pipeline: rows → group codes → one sketch per key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qcore.sketch import QuantileSketch, _quantile_name

__all__ = ["GroupSketchMap", "Groups", "group_sketches_of", "keys_of", "quantile_frame"]

GroupSketchMap = dict[tuple[Any, ...], QuantileSketch]


def keys_of(by: str | Sequence[str]) -> list[str]:
    """The key columns of ``by`` (a name or a non-empty sequence of names)."""
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ValueError("by must name at least one column")
    return keys


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
    # Group codes by hashing (one group_by), scattered back to the rows.
    groups = df.select(keys).with_row_index("__row").group_by(keys).agg(pl.col("__row")).with_row_index("__code")
    rows = groups.select("__row", "__code").explode("__row")
    codes = np.empty(df.height, dtype=np.int64)
    codes[rows["__row"].to_numpy()] = rows["__code"].to_numpy()
    key_rows = groups.select(keys).rows()
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
    return pl.DataFrame(cols).sort(keys, nulls_last=True)
