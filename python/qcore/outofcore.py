"""``qcore.outofcore`` is the first name of :mod:`qcore.pipeline.analysis`: the analysis
functions of the pipeline (kept so that code using it keeps working).

>>> from qcore import outofcore
>>> from qcore.pipeline import analysis
>>> outofcore.arrival_stats is analysis.arrival_stats
True
"""

from qcore.pipeline.analysis import (
    DEFAULT_BATCH_ROWS,
    Analysis,
    GroupSketches,
    OutOfCoreResult,
    ReadReport,
    Source,
    analyze,
    arrival_stats,
    group_quantiles,
    group_sketches,
    group_sketches_of,
    in_flight,
    littles_law,
    quantile_frame,
    scan_batches,
    window_counts,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "Analysis",
    "GroupSketches",
    "OutOfCoreResult",
    "ReadReport",
    "Source",
    "analyze",
    "arrival_stats",
    "group_quantiles",
    "group_sketches",
    "group_sketches_of",
    "in_flight",
    "littles_law",
    "quantile_frame",
    "scan_batches",
    "window_counts",
]
