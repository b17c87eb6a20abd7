"""qcore's exceptions. All subclass :class:`ValueError`.

- :class:`QcoreValueError`: base class.
- :class:`InvalidArgumentError`: an argument is outside its domain; the message names it.
- :class:`InvalidTypeError`: an argument of the wrong type; also a :class:`TypeError`
  (``except TypeError`` and ``except ValueError`` both catch it).
- :class:`IncompatibleSketchError`: two accumulators cannot be merged.
- :class:`DeserializationError`: bytes that do not decode to a valid value.
- :class:`UnstableSystemError`: a queueing model has no steady state (utilization >= 1).
- :class:`PrometheusError`: a Prometheus server's API failed or answered something else
  than an API answer (:mod:`qcore.prom`); ``url`` and ``status`` (the HTTP status, or
  ``None``) say which request and how.
"""

from qcore._qcore import (
    DeserializationError,
    IncompatibleSketchError,
    InvalidArgumentError,
    InvalidTypeError,
    QcoreValueError,
    UnstableSystemError,
)


class PrometheusError(QcoreValueError):
    """A request to a Prometheus server failed; the message names the URL and status."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        where = f"{url}" if status is None else f"{url} (HTTP {status})"
        super().__init__(f"{message} [{where}]")
        self.url = url
        self.status = status


__all__ = [
    "QcoreValueError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "IncompatibleSketchError",
    "DeserializationError",
    "UnstableSystemError",
    "PrometheusError",
]
