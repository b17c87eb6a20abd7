"""The one definition of "the same report" for the report's tests: everything a report
says, as exact values (floats bit for bit, sketches as bytes)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def report_bits(rep: Any, *, fingerprint: bool = True) -> tuple[Any, ...]:
    """``Report.to_json()`` (without the data fingerprint when ``fingerprint`` is false:
    a frame has no files to hash), the text, and per group the sketch bytes, window counts
    (all and failed), in-flight curve and peaks, series over time, Little's law, quantiles,
    burstiness, rates and peak; and the in-flight grid."""
    doc = json.loads(rep.to_json())
    if not fingerprint:
        doc.pop("data")
    groups = [(g.label, g.sketch.to_bytes(), g.counts.tobytes(), g.error_counts.tobytes(),
               np.asarray(g.inflight).tobytes(), g.inflight_peak_lo.tobytes(), g.inflight_peak_hi.tobytes(),
               json.dumps(g.over_time),
               json.dumps(g.little), json.dumps(sorted(g.quantiles.items())), json.dumps(g.burstiness),
               g.rate, g.rate_ci, g.cv_interarrival, g.peak_concurrency, g.peak_exact)
              for g in [*rep.groups, rep.overall]]
    return json.dumps(doc, sort_keys=True), rep.to_text(), groups, rep.grid.tobytes()
