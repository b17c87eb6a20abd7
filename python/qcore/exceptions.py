"""qcore's exceptions. All subclass :class:`ValueError`.

- :class:`QcoreValueError`: base class.
- :class:`InvalidArgumentError`: an argument is outside its domain; the message names it.
- :class:`IncompatibleSketchError`: two accumulators cannot be merged.
- :class:`DeserializationError`: bytes that do not decode to a valid value.
- :class:`UnstableSystemError`: a queueing model has no steady state (utilization >= 1).
"""

from qcore._qcore import (
    DeserializationError,
    IncompatibleSketchError,
    InvalidArgumentError,
    QcoreValueError,
    UnstableSystemError,
)

__all__ = [
    "QcoreValueError",
    "InvalidArgumentError",
    "IncompatibleSketchError",
    "DeserializationError",
    "UnstableSystemError",
]
