"""One pipeline for every path: a plan of named statistics, each a mergeable accumulator of
the core, run pass by pass by an interchangeable executor — in memory, batched (polars
batches from files) or on Dask — the way polars runs one plan with ``collect(engine=...)``.

The accumulators are exact, so every executor gives the same result bit for bit.

Examples
--------
>>> import numpy as np, polars as pl
>>> from qcore import pipeline as pp
>>> df = pl.DataFrame({"t": np.arange(0.0, 100.0, 0.5)})
>>> plan = {"arrivals": pp.Arrivals("t", window=10.0), "counts": pp.WindowCounts("t", 25.0)}
>>> a = pp.run(plan, pp.InMemory(df))
>>> b = pp.run(plan, pp.Batched(df, batch_rows=7))
>>> a["arrivals"].as_dict() == b["arrivals"].as_dict(), b["counts"].tolist()
(True, [50, 50, 50, 50])
"""

from qcore.pipeline.executors import (
    DEFAULT_BATCH_ROWS,
    Batched,
    Dask,
    Executor,
    InMemory,
    Source,
    scan_batches,
)
from qcore.pipeline.groups import Groups, group_sketches_of, keys_of, quantile_frame
from qcore.pipeline.plan import (
    Accs,
    Arrivals,
    GroupSketches,
    InFlight,
    Little,
    Plan,
    Stat,
    WindowCounts,
    accumulate,
    column,
    run,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "Accs",
    "Arrivals",
    "Batched",
    "Dask",
    "Executor",
    "GroupSketches",
    "Groups",
    "InFlight",
    "InMemory",
    "Little",
    "Plan",
    "Source",
    "Stat",
    "WindowCounts",
    "accumulate",
    "column",
    "group_sketches_of",
    "keys_of",
    "quantile_frame",
    "run",
    "scan_batches",
]
