"""Per-group request-log summaries and a self-contained HTML report.

:func:`summarize` reads a log (paths, globs or a polars frame) in batches and keeps one
mergeable accumulator per group: a :class:`qcore.QuantileSketch` of latencies, exact
arrival counts per window (of starts and of ends, whose running difference is the
in-flight count at every window boundary) and the Little's-law sums.
Memory is bounded by the batch size and the number of groups, not by the log. When the
log is small enough (``exact_limit`` rows) the raw columns are also kept, which adds
distribution-free confidence intervals for the quantiles, exact arrival statistics and
the exact peak concurrency.

:meth:`Report.to_html` writes one HTML file with inline SVG plots (latency CDF on a log
axis, arrival rate over time, in-flight concurrency over time, burstiness curve): no
script, no external resource.

Examples
--------
>>> import numpy as np, polars as pl
>>> from qcore.report import summarize
>>> rng = np.random.default_rng(1)
>>> t = np.sort(rng.uniform(0, 600, 3000))
>>> log = pl.DataFrame({"ts": t, "latency": rng.lognormal(-2, 0.5, 3000),
...                     "endpoint": rng.choice(["a", "b"], 3000)})
>>> rep = summarize(log, group_by=["endpoint"])
>>> [g.label for g in rep.groups], rep.overall.count
(['endpoint=a', 'endpoint=b'], 3000)
"""

from __future__ import annotations

from qcore.report._html import svg_chart
from qcore.report._model import QUANTILES, GroupSummary, Report
from qcore.report._stream import summarize

__all__ = ["QUANTILES", "GroupSummary", "Report", "summarize", "svg_chart"]
