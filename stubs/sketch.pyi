from typing import Any, Iterable, Optional, TypeVar

import numpy as np
import numpy.typing as npt

_S = TypeVar("_S", bound="_QuantileSketch")

class _QuantileSketch:
    """Native state of a mergeable quantile sketch with a relative-error guarantee.

    Subclassed by ``qcore.QuantileSketch``, which converts inputs; see its docstring.
    """

    def __new__(cls: type[_S], relative_accuracy: float = 0.01, bucket_limit: Optional[int] = None) -> _S: ...
    def _add_array(self, values: npt.NDArray[np.float64]) -> None:
        """Add a contiguous float64 array (validated first; nothing is added on error)."""
    def _add_weighted(self, values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> None:
        """Add values with non-negative weights (both contiguous float64, same length)."""
    def _add_float(self, v: float) -> None: ...
    def _quantile(self, q: float) -> Optional[float]: ...
    def _quantiles(self, qs: npt.NDArray[np.float64]) -> Optional[npt.NDArray[np.float64]]: ...
    def _quantile_bounds(
        self, qs: npt.NDArray[np.float64]
    ) -> Optional[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
        """(lo, hi) arrays bracketing the exact lower quantiles, or None when empty."""
    def _cdf(self, x: float) -> Optional[float]: ...
    def _cdfs(self, xs: npt.NDArray[np.float64]) -> Optional[npt.NDArray[np.float64]]: ...
    @property
    def count(self) -> float:
        """Total weight (the number of values when unweighted), exact."""
    @property
    def sum(self) -> float:
        """Exact weighted sum, rounded once."""
    @property
    def min(self) -> Optional[float]:
        """Exact minimum, or None when empty."""
    @property
    def max(self) -> Optional[float]:
        """Exact maximum, or None when empty."""
    @property
    def mean(self) -> Optional[float]:
        """Exact weighted mean (rounded), or None when empty."""
    @property
    def relative_accuracy(self) -> float:
        """The requested relative accuracy (merges require it to match)."""
    @property
    def effective_relative_accuracy(self) -> float:
        """The relative error guaranteed by the mapping, (b-1)/(b+1) <= relative_accuracy."""
    @property
    def scale(self) -> int:
        """The base-2 exponential scale (OpenTelemetry scale, Prometheus schema)."""
    @property
    def bucket_limit(self) -> int:
        """Maximum number of buckets per sign."""
    @property
    def collapsed(self) -> bool:
        """Whether the lowest buckets collapsed (the data spanned more than bucket_limit)."""
    @property
    def min_accurate_quantile(self) -> float:
        """Every quantile(q) with q >= this value keeps the guarantee (0.0 unless collapsed)."""
    @property
    def zero_count(self) -> float:
        """Weight of exact zeros."""
    @property
    def num_buckets(self) -> int:
        """Number of non-empty buckets (both signs; zeros excluded)."""
    def is_empty(self) -> bool: ...
    def __bool__(self) -> bool: ...
    def merge(self, other: _QuantileSketch) -> None:
        """Merge ``other`` into this sketch in place (IncompatibleSketchError if the
        relative_accuracy or bucket_limit differ)."""
    @classmethod
    def merge_all(cls: type[_S], sketches: Iterable[_QuantileSketch]) -> _S:
        """A new sketch merging all ``sketches`` (at least one)."""
    def to_bytes(self) -> bytes:
        """Versioned binary encoding (magic ``QCSK``, format version 1)."""
    @classmethod
    def from_bytes(cls: type[_S], data: bytes) -> _S:
        """Decode ``to_bytes`` output; DeserializationError (a ValueError) otherwise."""
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...
    def copy(self: _S) -> _S: ...
    def __copy__(self: _S) -> _S: ...
    def __deepcopy__(self: _S, memo: Any) -> _S: ...
    def __eq__(self, other: object) -> bool: ...
    def _to_otel(self) -> dict[str, Any]: ...
    @classmethod
    def _from_otel(
        cls: type[_S],
        scale: int,
        zero_count: int,
        zero_threshold: float,
        pos_offset: int,
        pos_counts: list[int],
        neg_offset: int,
        neg_counts: list[int],
        count: int,
        sum: Optional[float],
        min: Optional[float],
        max: Optional[float],
        relative_accuracy: Optional[float],
        bucket_limit: Optional[int],
    ) -> _S: ...
    def _to_prometheus(self) -> dict[str, Any]: ...
    @classmethod
    def _from_prometheus(
        cls: type[_S],
        schema: int,
        zero_threshold: float,
        zero_count: int,
        count: int,
        sum: float,
        positive_spans: list[tuple[int, int]],
        positive_deltas: list[int],
        negative_spans: list[tuple[int, int]],
        negative_deltas: list[int],
        relative_accuracy: Optional[float],
        bucket_limit: Optional[int],
    ) -> _S: ...

def _sketch_groups(
    cls: type[_S],
    codes: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    weights: Optional[npt.NDArray[np.float64]],
    relative_accuracy: float,
    bucket_limit: Optional[int],
) -> list[_S]:
    """One sketch per group code (instances of ``cls``), built in one pass."""

def _group_quantiles(
    codes: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    weights: Optional[npt.NDArray[np.float64]],
    qs: npt.NDArray[np.float64],
    relative_accuracy: float,
    bucket_limit: Optional[int],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-group total weight and a ``groups x len(qs)`` quantile table (NaN for empty
    groups), in one pass."""
