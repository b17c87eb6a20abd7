"""Request logs in: reading, column mapping and the data contract (the API of :mod:`qcore.io`,
under its first name).

Request logs come as Parquet, CSV or NDJSON files (local paths or globs). They are read
with polars *scans*, so large files stream; :func:`scan_logs` returns a
:class:`polars.LazyFrame` with the canonical columns below, and :func:`read_logs` adds the
data contract, which reports every violation with counts and example rows and either
excludes those rows or refuses the whole input. Nothing is dropped silently.

Canonical columns (present when the source has them):

============== ========= ==========================================================
``start``      Float64   request start (arrival) time, seconds
``end``        Float64   request end time, seconds (``start + latency``)
``latency``    Float64   time in system, seconds
``outcome``    String    ``"ok"``, ``"error"`` or ``"incomplete"`` (still running,
                         pending); ``"ok"`` for every row when the log has no status
``endpoint``   String    endpoint, route or request type
``model_version`` String model or deployment version
``tokens_in``  Float64   input (prompt) tokens
``tokens_out`` Float64   output (generated) tokens
``cost``       Float64   cost of the request, in the log's currency
``ttft``       Float64   LLM time to first token, seconds: the log's TTFT column, else
                         its first-token time − ``start``
``tpot``       Float64   LLM time per output token, seconds: (``latency`` − ``ttft``) /
                         (``tokens_out`` − 1) for ``tokens_out`` ≥ 2, else null
``itl``        List      LLM inter-token gaps of the request, seconds (a list column of
                         per-token data: vLLM benchmark's ``itls``); absent otherwise
============== ========= ==========================================================

LLM request logs name the first token in many ways: ``ttft``, ``time_to_first_token``
(``_ms``, ``_seconds`` ...) and ``first_token_latency`` are durations (unit from the name,
else from the values as for latency); ``first_token_time``, ``first_token_ts`` or
``first_token_at`` are times on the ``start`` clock. ``output_tokens`` /
``completion_tokens`` / ``num_output_tokens`` are the output tokens and ``prompt_tokens``
/ ``input_tokens`` the prompt's (OpenAI's and vLLM's names).

Examples
--------
>>> import polars as pl, qcore.logs as ql
>>> raw = pl.DataFrame({"ts": [0.0, 1.0, 2.0], "latency_ms": [120.0, 80.0, 95.0],
...                     "status": [200, 200, 503]})
>>> m = ql.detect_columns(raw.schema)
>>> (m.start, m.duration, m.latency_unit, m.status)
('ts', 'latency_ms', 'ms', 'status')
>>> ql.normalize(raw, m).select("latency", "outcome").collect().rows()
[(0.12, 'ok'), (0.08, 'ok'), (0.095, 'error')]
"""


from __future__ import annotations

from qcore.io import *  # noqa: F403
from qcore.io import __all__ as _io_all

# the reader's helpers that the report, the rules and the CLI share (not public API)
from qcore.io.contract import row_rules as row_rules
from qcore.io.mapping import UNITS as UNITS
from qcore.io.mapping import mapping_for as mapping_for
from qcore.io.sources import format_of as format_of
from qcore.io.sources import sha256_file as sha256_file

__all__ = list(_io_all)
