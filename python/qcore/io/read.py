"""One call: request logs read, mapped, validated and fingerprinted (:func:`read_logs`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from qcore.io.contract import Contract, ContractReport, validate
from qcore.io.mapping import ColumnMapping, OnViolation, mapping_for, normalize
from qcore.io.sources import DataFingerprint, fingerprint, scan_raw

__all__ = ["Logs", "read_logs"]


@dataclass
class Logs:
    """A validated request log: canonical frame, its sources, mapping and contract report."""

    frame: pl.DataFrame
    sources: list[Path]
    mapping: ColumnMapping
    report: ContractReport
    extra: tuple[str, ...] = ()

    @property
    def height(self) -> int:
        return self.frame.height

    def fingerprint(self) -> DataFingerprint:
        return fingerprint(self.frame, self.sources)

    def with_frame(self, frame: pl.DataFrame) -> Logs:
        return replace(self, frame=frame)


def read_logs(
    paths: Any,
    *,
    mapping: ColumnMapping | Mapping[str, Any] | None = None,
    contract: Contract | None = None,
    on_violation: OnViolation = "exclude",
    format: str | None = None,
    keep: Sequence[str] = (),
) -> Logs:
    """Read, map and validate request logs from paths/globs, or from a polars frame.

    Examples
    --------
    >>> import polars as pl
    >>> logs = read_logs(pl.DataFrame({"ts": [1.0, 2.0], "latency_ms": [5.0, 7.0]}))
    >>> logs.frame.get_column("latency").to_list(), logs.report.passed
    ([0.005, 0.007], True)
    """
    if isinstance(paths, (pl.DataFrame, pl.LazyFrame)):
        raw, files = paths, []  # type: ignore[var-annotated]
    else:
        raw, files = scan_raw(paths, format=format)
    m = mapping_for(raw, mapping)
    lf = normalize(raw, m, keep=keep)
    valid, report = validate(lf, contract, mapping=m, on_violation=on_violation)
    return Logs(valid, files, m, report, tuple(keep))
