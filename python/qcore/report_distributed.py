"""``qcore report`` on a dask cluster: :func:`summarize` (kept under this name), which is
:func:`qcore.report.summarize` with ``executor="dask"``."""

from __future__ import annotations

from typing import Any

from qcore.report import Report
from qcore.report import summarize as _summarize

__all__ = ["summarize"]


def summarize(source: Any, **kw: Any) -> Report:
    """``qcore.report.summarize(source, executor="dask", **kw)``: the report on the
    cluster of the current ``dask.distributed.Client`` (or dask's default scheduler).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> pdf = pd.DataFrame({"ts": [0.0, 1.0, 2.5, 4.0], "latency": [0.2, 0.4, 0.1, 0.3]})
    >>> with dask.config.set(scheduler="sync"):
    ...     rep = summarize(dd.from_pandas(pdf, npartitions=2), bin=1.0)
    >>> rep.overall.count, rep.overall.counts.tolist()
    (4, [1, 1, 1, 0, 1])
    """
    return _summarize(source, executor="dask", **kw)
