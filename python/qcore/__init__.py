"""qcore: queueing and capacity statistics for model serving.

Mergeable quantile sketches with a relative-error guarantee, arrival rates and
burstiness, Little's law checks, tail-latency confidence intervals, analytic queueing
models and a fast discrete-event simulator, over numpy arrays and polars frames.

>>> import qcore
>>> sk = qcore.QuantileSketch(relative_accuracy=0.01)
>>> sk.add([1.0, 2.0, 3.0])
>>> sk.count
3.0
"""

from qcore import arrivals as _arrivals
from qcore import autoscale, capacity, datasets, exceptions, llm, overload, queueing, sim
from qcore import little as _little
from qcore import sketch as _sketch
from qcore import tail as _tail
from qcore._qcore import (
    ArrivalAccumulator,
    ExactSum,
    LittleAccumulator,
    ReportAccumulator,
    __version__,
    set_threads,
    threads,
    window_count_stats,
)
from qcore.arrivals import *  # noqa: F401,F403
from qcore.little import *  # noqa: F401,F403
from qcore.sim import simulate  # noqa: F401
from qcore.sketch import *  # noqa: F401,F403
from qcore.tail import *  # noqa: F401,F403

__all__ = [
    "ArrivalAccumulator",
    "ExactSum",
    "LittleAccumulator",
    "ReportAccumulator",
    "set_threads",
    "threads",
    "window_count_stats",
    "__version__",
    "exceptions",
    "queueing",
    "sim",
    "capacity",
    "autoscale",
    "overload",
    "llm",
    "datasets",
    "simulate",
    *_sketch.__all__,
    *_arrivals.__all__,
    *_little.__all__,
    *_tail.__all__,
]
