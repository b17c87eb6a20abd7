"""Input conversion shared by the Python layer.

Everything that reaches the Rust core goes through these helpers: Python floats and
sequences, numpy arrays of any real dtype, and polars Series become contiguous float64
(or int64) numpy arrays, zero-copy when the input already has that layout. Nulls in a
polars Series are rejected with an error naming the argument unless ``drop_nulls`` is set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from qcore.exceptions import InvalidArgumentError, InvalidTypeError

__all__ = ["as_f64", "as_i64", "is_polars_series"]


def is_polars_series(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith("polars") and type(x).__name__ == "Series"


def _from_polars(x: Any, name: str, drop_nulls: bool) -> np.ndarray:
    n_null = x.null_count()
    if n_null:
        if not drop_nulls:
            first = int(x.is_null().arg_true()[0])
            raise InvalidArgumentError(
                f"{name} contains {n_null} null value(s), the first at index {first}; "
                f"pass drop_nulls=True to ignore them"
            )
        x = x.drop_nulls()
    if x.dtype.is_temporal():
        raise InvalidTypeError(
            f"{name} has temporal dtype {x.dtype}; convert it to float seconds first "
            f"(for example series.dt.epoch('ms') / 1000)"
        )
    if not (x.dtype.is_numeric() or x.dtype == __import__("polars").Boolean):
        raise InvalidTypeError(f"{name} must be numeric, got polars dtype {x.dtype}")
    arr: np.ndarray = x.to_numpy(allow_copy=True)
    return arr


def as_f64(x: Any, name: str, *, drop_nulls: bool = False, allow_scalar: bool = True) -> npt.NDArray[np.float64]:
    """Return ``x`` as a contiguous 1-D float64 array (zero-copy when possible)."""
    if is_polars_series(x):
        arr = _from_polars(x, name, drop_nulls)
    elif isinstance(x, np.ndarray):
        arr = x
    elif isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
        if not allow_scalar:
            raise InvalidTypeError(f"{name} must be an array, got a scalar")
        return np.array([x], dtype=np.float64)
    else:
        try:
            arr = np.asarray(x)
        except Exception as e:  # pragma: no cover - numpy's own message is kept
            raise InvalidTypeError(f"{name} cannot be converted to an array: {e}") from None
    if arr.ndim == 0:
        if not allow_scalar:
            raise InvalidTypeError(f"{name} must be an array, got a scalar")
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InvalidArgumentError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    if arr.dtype.kind in "fiub":
        # C-contiguous and aligned (arrays unpickled from other processes can be unaligned);
        # zero-copy when the input already is.
        return np.require(arr, dtype=np.float64, requirements=["C", "A"])
    if arr.dtype.kind == "O" and arr.size == 0:
        return np.zeros(0, dtype=np.float64)
    if arr.dtype.kind == "M":
        raise InvalidTypeError(
            f"{name} has datetime dtype {arr.dtype}; convert it to float seconds first "
            f"(for example arr.astype('datetime64[ns]').astype('int64') / 1e9)"
        )
    try:
        return np.ascontiguousarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"{name} must be numeric, got dtype {arr.dtype}") from None


def as_i64(x: Any, name: str) -> npt.NDArray[np.int64]:
    """Return ``x`` as a contiguous 1-D int64 array; floats must be integral."""
    if is_polars_series(x):
        arr = _from_polars(x, name, False)
    else:
        arr = np.asarray(x)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InvalidArgumentError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    if arr.dtype.kind in "iub":
        return np.require(arr, dtype=np.int64, requirements=["C", "A"])
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InvalidArgumentError(f"{name} must hold integers")
        return np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    raise InvalidTypeError(f"{name} must be an integer array, got dtype {arr.dtype}")


def known_keys(d: Any, cls: Any, what: str, derived: tuple[str, ...] = ()) -> dict[str, Any]:
    """``d`` as a dict of the dataclass ``cls``'s fields (``derived`` keys dropped), or an
    error naming ``what`` and the unknown keys."""
    known = set(cls.__dataclass_fields__)
    kw = {k: v for k, v in dict(d).items() if k not in derived}
    unknown = set(kw) - known
    if unknown:
        raise InvalidArgumentError(f"{what} has unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return kw
