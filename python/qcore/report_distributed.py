"""``qcore report`` on a dask cluster: :func:`summarize` (kept under this name; the code
lives in :mod:`qcore.report`'s ``_dask`` module)."""

from __future__ import annotations

from qcore.report._dask import summarize

__all__ = ["summarize"]
