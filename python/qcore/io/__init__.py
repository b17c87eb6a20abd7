"""Request logs in: where they come from (:mod:`qcore.io.sources`), how their columns map to
qcore's roles and units (:mod:`qcore.io.mapping`), the data contract
(:mod:`qcore.io.contract`), and the one call that does all three (:func:`read_logs`).

:mod:`qcore.logs` is the same API under its first name.
"""

from __future__ import annotations

from qcore.io.contract import (
    Contract,
    ContractCheck,
    ContractReport,
    ContractViolationError,
    time_unit_hint,
    validate,
)
from qcore.io.mapping import (
    CANONICAL,
    SAMPLE_ROWS,
    ColumnDetectionError,
    ColumnMapping,
    OnViolation,
    detect_columns,
    normalize,
    scan_logs,
)
from qcore.io.read import Logs, read_logs
from qcore.io.sources import DataFingerprint, LogReadError, expand_paths, fingerprint, scan_raw

__all__ = [
    "CANONICAL",
    "SAMPLE_ROWS",
    "ColumnDetectionError",
    "ColumnMapping",
    "Contract",
    "ContractCheck",
    "ContractReport",
    "ContractViolationError",
    "DataFingerprint",
    "LogReadError",
    "Logs",
    "OnViolation",
    "detect_columns",
    "expand_paths",
    "fingerprint",
    "normalize",
    "read_logs",
    "scan_logs",
    "scan_raw",
    "time_unit_hint",
    "validate",
]
