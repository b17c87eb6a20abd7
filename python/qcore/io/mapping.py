"""The column mapping: a log's columns matched to qcore's roles and units
(:func:`detect_columns`), and the canonical columns (:func:`normalize`, :func:`scan_logs`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from qcore._convert import known_keys
from qcore.exceptions import InvalidArgumentError, QcoreValueError
from qcore.io.sources import _COLUMNS_ATTR, LogReadError, _dataset_of, scan_raw

CANONICAL = (
    "start",
    "end",
    "latency",
    "outcome",
    "endpoint",
    "model_version",
    "tokens_in",
    "tokens_out",
    "cost",
    "ttft",
    "tpot",
    "itl",
)

UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
_UNIT_ALIASES = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "msec": "ms", "millis": "ms", "milliseconds": "ms",
    "usec": "us", "micros": "us", "microseconds": "us",
    "nsec": "ns", "nanos": "ns", "nanoseconds": "ns",
    "m": "min", "minutes": "min", "hours": "h",
}


#: What a contract violation does: leave the rows out (and report them), or raise.
OnViolation = Literal["exclude", "refuse"]


class ColumnDetectionError(QcoreValueError):
    """The columns of a log could not be mapped; the message lists the columns found."""


_CANDIDATES: dict[str, tuple[str, ...]] = {
    "start": (
        "start", "start_time", "start_ts", "started_at", "timestamp", "ts", "time",
        "arrival", "arrival_time", "request_time", "created_at", "gmt_create",
        "created", "time_stamp", "event_time",
    ),
    "end": ("end", "end_time", "end_ts", "ended_at", "finish_time", "finished_at",
            "completed_at", "completion_time", "done_at"),
    "duration": (
        "latency", "latency_s", "latency_sec", "latency_seconds", "latency_ms",
        "latency_us", "latency_ns", "duration", "duration_s", "duration_seconds",
        "duration_ms", "duration_us", "response_time", "response_time_ms",
        "exec_time", "exec_time_seconds", "exec_time_ms", "elapsed", "elapsed_ms",
        "elapsed_s", "rt", "rt_ms", "e2e", "e2e_latency", "e2e_latency_s", "e2e_latency_ms",
        "e2el", "e2el_ms", "request_latency", "request_latency_s", "request_latency_ms",
    ),
    "status": ("status", "status_code", "http_status", "predict_status",
               "response_code", "code", "outcome", "result", "state"),
    "error": ("error", "is_error", "failed", "err", "is_failure"),
    "endpoint": ("endpoint", "route", "path", "api", "operation", "predict_type",
                 "request_type", "method", "task", "task_type"),
    "model_version": ("model_version", "version", "model_version_id", "model",
                      "model_id", "checkpoint_model_version_id", "deployment",
                      "revision"),
    "tokens_in": ("tokens_in", "input_tokens", "prompt_tokens", "input_length",
                  "context_tokens", "contexttokens", "num_input_tokens"),
    "tokens_out": ("tokens_out", "output_tokens", "completion_tokens",
                   "output_length", "generated_tokens", "generatedtokens",
                   "num_output_tokens"),
    "cost": ("cost", "cost_usd", "price", "cost_dollars"),
    "ttft": ("ttft", "ttft_s", "ttft_sec", "ttft_seconds", "ttft_ms", "ttft_us", "ttft_ns",
             "time_to_first_token", "time_to_first_token_s", "time_to_first_token_seconds",
             "time_to_first_token_ms", "time_to_first_token_us", "first_token_latency",
             "first_token_latency_s", "first_token_latency_ms", "ttfts", "ttft_time"),
    "first_token": ("first_token_time", "first_token_ts", "first_token_at", "first_token_timestamp",
                    "first_token", "time_of_first_token"),
    "itl": ("itl", "itls", "itl_s", "itl_ms", "itls_ms", "inter_token_latencies",
            "inter_token_latencies_ms", "token_gaps", "inter_token_latency"),
}

_OK_STATUS = ("ok", "succeed", "succeeded", "success", "successful", "completed",
              "complete", "done", "finished", "true")
_ERROR_STATUS = ("error", "err", "failed", "fail", "failure", "timeout", "timed_out",
                 "cancelled", "canceled", "aborted", "rejected", "exception", "false")


def _unit_from_name(name: str) -> str | None:
    low = name.lower()
    for suffix in ("_ms", "_us", "_ns", "_seconds", "_sec", "_s", "_millis", "_micros",
                   "_nanos", "_msec", "_usec"):
        if low.endswith(suffix):
            u = suffix[1:]
            return _UNIT_ALIASES.get(u, u)
    return None


def _norm_unit(unit: str, name: str) -> str:
    u = _UNIT_ALIASES.get(unit, unit)
    if u not in UNITS:
        raise InvalidArgumentError(
            f"{name} must be one of {sorted(UNITS)} (or an alias such as 'seconds'), got {unit!r}"
        )
    return u


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column plays which role, and in which units.

    Any role may be ``None`` (absent). ``start`` is required, and so is one of
    ``end`` or ``duration`` for latency metrics. Numeric times are in ``time_unit``
    (seconds by default); string times are parsed as ISO-8601 datetimes (naive values
    are taken as UTC) or numbers; temporal dtypes are converted to epoch seconds.

    Examples
    --------
    >>> ColumnMapping(start="t", duration="lat", latency_unit="ms").latency_unit
    'ms'
    """

    start: str | None = None
    end: str | None = None
    duration: str | None = None
    status: str | None = None
    error: str | None = None
    endpoint: str | None = None
    model_version: str | None = None
    tokens_in: str | None = None
    tokens_out: str | None = None
    cost: str | None = None
    ttft: str | None = None
    first_token: str | None = None
    itl: str | None = None
    time_unit: str = "s"
    latency_unit: str = "s"
    ttft_unit: str = "s"
    itl_unit: str = "s"
    error_status_min: int = 500
    ok_values: tuple[str, ...] = _OK_STATUS
    error_values: tuple[str, ...] = _ERROR_STATUS
    #: How each mapped role and unit was decided, ``(key, how)``: ``"given"`` (an
    #: override), ``"name"`` (the column's name), ``"dataset <name>"`` (a shipped
    #: dataset recognised by its bytes), ``"values: ..."`` (evidence in the values) or
    #: ``"default"``. Filled by :func:`detect_columns`; not part of equality.
    detected: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    #: What the detection could not decide for sure (an ambiguous unit), one sentence
    #: each, with the flag that settles it.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_unit", _norm_unit(self.time_unit, "time_unit"))
        object.__setattr__(self, "latency_unit", _norm_unit(self.latency_unit, "latency_unit"))
        object.__setattr__(self, "ttft_unit", _norm_unit(self.ttft_unit, "ttft_unit"))
        object.__setattr__(self, "itl_unit", _norm_unit(self.itl_unit, "itl_unit"))
        object.__setattr__(self, "detected", tuple((str(k), str(v)) for k, v in dict(self.detected).items()))
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))

    def roles(self) -> dict[str, str]:
        """Role → source column for the roles that are mapped."""
        out = {}
        for role in _ROLES:
            v = getattr(self, role)
            if v is not None:
                out[role] = v
        return out

    def summary(self) -> str:
        """One line: which column plays which role, the units, and how the units were
        decided (for the top of a report).

        >>> ColumnMapping(start="ts", duration="lat", latency_unit="ms").summary()
        'columns: start=ts, duration=lat; times in s, latencies in ms'
        """
        how = dict(self.detected)
        cols = ", ".join(f"{k}={v}" for k, v in self.roles().items())

        def unit(key: str) -> str:
            u = getattr(self, key)
            src = how.get(key, "")
            return f"{u} ({src})" if src and src not in ("default", "given", "name") else u

        units = f"times in {unit('time_unit')}"
        if self.duration is not None:
            units += f", latencies in {unit('latency_unit')}"
        if self.ttft is not None:
            units += f", TTFT in {unit('ttft_unit')}"
        if self.itl is not None:
            units += f", inter-token gaps in {unit('itl_unit')}"
        return f"columns: {cols}; {units}"

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain data; ``detected`` as a dict, plus ``summary``."""
        d = asdict(self)
        d["ok_values"] = list(self.ok_values)
        d["error_values"] = list(self.error_values)
        d["detected"] = dict(self.detected)
        d["warnings"] = list(self.warnings)
        d["summary"] = self.summary()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnMapping:
        kw = known_keys(d, cls, "mapping", derived=("summary",))   # (to_dict adds the summary)
        for k in ("ok_values", "error_values"):
            if k in kw:
                kw[k] = tuple(str(v).lower() for v in kw[k])
        return cls(**kw)


#: The roles a log column can play, in the order they are matched.
_ROLES = ("start", "end", "duration", "status", "error", "endpoint",
          "model_version", "tokens_in", "tokens_out", "cost", "ttft", "first_token", "itl")


def _match_role(role: str, lower: Mapping[str, str], used: set[str],
                dtypes: Mapping[str, Any]) -> str | None:
    """The first unused column whose lower-cased name is a candidate for ``role``
    (a Boolean column is never a status code); marks it used."""
    for cand in _CANDIDATES[role]:
        col = lower.get(cand)
        if col is None or col in used:
            continue
        if role == "status" and dtypes and dtypes.get(col) == pl.Boolean:
            continue
        used.add(col)
        return col
    return None


def detect_columns(
    schema: Mapping[str, Any] | Sequence[str], overrides: Mapping[str, Any] | None = None,
    *, sample: pl.DataFrame | pl.LazyFrame | None = None, dataset: str | None = None,
) -> ColumnMapping:
    """Map the columns of a log to qcore's roles by name, and decide the units.

    Matching is case-insensitive on the names in the table above (for example
    ``gmt_create`` → start, ``exec_time_seconds`` → duration, ``latency_ms`` → duration
    in milliseconds). ``overrides`` (role → column, plus ``time_unit`` / ``latency_unit``
    etc.) take precedence.

    Units: an override wins; else, with a ``sample`` of the log's rows, the values
    decide where the evidence is strong: numeric timestamps of epoch magnitude are
    seconds, milliseconds, microseconds or nanoseconds by their size (over a unit in
    the name, with a warning); integer timestamps of a clock starting near 0 that are
    mostly whole thousands are a one-second clock written in milliseconds (Mooncake's);
    a duration column without a unit in its name whose median is 100 or more is read
    as milliseconds (10⁶: microseconds, 10⁹: nanoseconds), with a warning; so is a TTFT
    column (``ttft_unit``; also when its values would exceed their latency as seconds), and
    per-token gaps (``itl_unit``) from a median gap of 1. Else the
    name's unit, else seconds; a relative clock whose unit nothing decides gets a
    warning naming ``--time-unit``. :attr:`ColumnMapping.detected` says how each role
    and unit was decided and :attr:`ColumnMapping.warnings` what stays ambiguous.
    ``dataset`` names the shipped dataset whose mapping ``overrides`` holds.

    Raises
    ------
    ColumnDetectionError
        When no start/timestamp column is found, or an override names a missing column;
        the message lists the columns found.

    Examples
    --------
    >>> raw = pl.DataFrame({"ts": [1.7e12, 1.7e12 + 250.0], "latency": [230.0, 410.0]})
    >>> m = detect_columns(raw.schema, sample=raw)
    >>> m.time_unit, m.latency_unit, dict(m.detected)["time_unit"]
    ('ms', 'ms', 'values: epoch milliseconds (2023-11-14)')
    """
    names = list(schema.keys()) if isinstance(schema, Mapping) else list(schema)
    dtypes = dict(schema) if isinstance(schema, Mapping) else {}
    lower = {n.lower(): n for n in names}
    overrides = dict(overrides or {})
    ds_map: dict[str, Any] = {}
    if dataset is not None:
        from qcore import datasets

        ds_map = dict(datasets.info(dataset).mapping)

    def given(key: str) -> str:
        return f"dataset {dataset}" if key in ds_map and ds_map[key] == overrides.get(key) else "given"

    found: dict[str, Any] = {}
    for key, col in overrides.items():
        if key in _ROLES and col is not None and col not in names:
            raise ColumnDetectionError(
                f"mapping names column {col!r} for {key!r}, but the log has columns {names}"
            )
    used: set[str] = {v for k, v in overrides.items() if k in _ROLES and v}
    detected: dict[str, str] = {}
    for role in _ROLES:
        col = overrides[role] if role in overrides else _match_role(role, lower, used, dtypes)
        if col is not None or role in overrides:
            found[role] = col
            if col is not None:
                detected[role] = given(role) if role in overrides else "name"
    if found.get("start") is None:
        raise ColumnDetectionError(
            "could not find a start/timestamp column; columns found: "
            f"{names}. Name it with --map start=COLUMN (or mapping={{'start': 'COLUMN'}})"
        )
    warnings = _detect_units(found, overrides, sample, dtypes, dataset, given, detected)
    found.update({k: v for k, v in overrides.items() if k not in _ROLES})
    found["detected"] = detected
    found["warnings"] = tuple(warnings)
    try:
        return ColumnMapping.from_dict(found)
    except ValueError as e:
        raise ColumnDetectionError(str(e)) from None


def _detect_units(found: dict[str, Any], overrides: Mapping[str, Any], sample: Any, dtypes: Mapping[str, Any],
                  dataset: str | None, given: Any, detected: dict[str, str]) -> list[str]:
    """Decide ``time_unit`` and ``latency_unit`` into ``found`` (how into ``detected``);
    returns the warnings."""
    values = _sample_columns(sample, [c for c in (found.get(r) for r in ("start", "duration", "ttft", "itl")) if c])
    warnings: list[str] = []
    for unit_key, role in (("time_unit", "start"), ("latency_unit", "duration"), ("ttft_unit", "ttft"),
                           ("itl_unit", "itl")):
        col = found.get(role)
        if unit_key in overrides:
            detected[unit_key] = given(unit_key)
            continue
        if col is None:
            continue
        if dataset is not None:   # the dataset's mapping knows its units (seconds unless it says)
            detected[unit_key] = f"dataset {dataset}"
            continue
        evidence = _time_unit_evidence if role == "start" else _latency_unit_evidence
        unit, how, warn = evidence(values.get(col), col, _unit_from_name(col), dtypes.get(col),
                                   **({"what": role} if role != "start" else {}))
        if role == "ttft" and unit is None and how == "default":
            unit, how, warn = _ttft_against_latency(sample, found, col)
        if unit is not None:
            found[unit_key] = unit
        detected[unit_key] = how
        if warn:
            warnings.append(warn)
    return warnings


def _ttft_against_latency(sample: Any, found: Mapping[str, Any], col: str) -> tuple[str | None, str, str | None]:
    """The unit of a TTFT column that neither its name nor its scale decides, from the
    rows' latencies: the first token comes before the last, so TTFT values that mostly
    exceed the latency in seconds but fit inside it in milliseconds are milliseconds
    (a fast model's TTFT in ms: a median under 100)."""
    dur = found.get("duration")
    if sample is None or dur is None:
        return None, "default", None
    scale = UNITS[found.get("latency_unit", "s")]
    try:
        head = sample.select(pl.col(col).cast(pl.Float64, strict=False).alias("t"),
                             (pl.col(dur).cast(pl.Float64, strict=False) * scale).alias("l")).head(SAMPLE_ROWS)
        df = (head.collect() if isinstance(head, pl.LazyFrame) else head).drop_nulls()
    except (pl.exceptions.PolarsError, OSError):
        return None, "default", None
    t, lat = df.get_column("t").to_numpy(), df.get_column("l").to_numpy()
    ok = np.isfinite(t) & np.isfinite(lat) & (lat > 0)
    t, lat = t[ok], lat[ok]
    if t.size < 3:
        return None, "default", None
    beyond_s = float(np.mean(t > lat))
    beyond_ms = float(np.mean(t * 1e-3 > lat))
    if beyond_s < 0.5 or beyond_ms > 0.01:
        return None, "default", None
    how = f"values: {beyond_s:.0%} of the TTFTs exceed their latency if seconds, none if milliseconds"
    warn = (f"TTFT column {col!r} has no unit in its name; {beyond_s:.0%} of its values exceed the request's "
            "latency read as seconds: read as milliseconds; pass --map ttft_unit=s if it is seconds")
    return "ms", how, warn


#: Rows of the log the unit detection looks at.
SAMPLE_ROWS = 10_000


def _sample_columns(sample: pl.DataFrame | pl.LazyFrame | None, cols: list[str]) -> dict[str, Any]:
    """The first :data:`SAMPLE_ROWS` values of ``cols`` as float arrays (NaN where a value is
    not a number), or nothing when the rows cannot be read (the reading reports it)."""
    if sample is None or not cols:
        return {}
    try:
        head = sample.select([pl.col(c) for c in cols]).head(SAMPLE_ROWS)
        df = head.collect() if isinstance(head, pl.LazyFrame) else head
    except (pl.exceptions.PolarsError, OSError):
        return {}
    out: dict[str, Any] = {}
    for c in cols:
        col = df.get_column(c)
        if isinstance(col.dtype, (pl.List, pl.Array)):   # per-token values: all of them
            col = col.explode()
        if col.dtype.is_temporal() or col.dtype == pl.Boolean:
            continue
        if col.dtype == pl.String:
            col = col.str.strip_chars().cast(pl.Float64, strict=False)
            if col.null_count() > col.len() // 2:   # mostly not numbers: datetimes or text
                continue
        elif not col.dtype.is_numeric():
            continue
        arr = col.cast(pl.Float64, strict=False).drop_nulls().to_numpy()
        out[c] = arr[np.isfinite(arr)]
    return out


_TIME_WORD = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
#: Medians of epoch timestamps (1979 to 2128) in each unit.
_EPOCH = (("s", 3e8, 5e9), ("ms", 3e11, 5e12), ("us", 3e14, 5e15), ("ns", 3e17, 5e18))


def _span_text(seconds: float) -> str:
    """A duration for a sentence: ``3.65 min``, ``40.9 d``, ``219 ms``."""
    a = abs(seconds)
    for unit, size in (("d", 86_400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if a >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _time_unit_evidence(values: Any, col: str, name_unit: str | None,
                        dtype: Any) -> tuple[str | None, str, str | None]:
    """``(unit or None to keep the default, how it was decided, warning or None)`` for
    the timestamps ``values`` of column ``col``."""
    if dtype is not None and dtype.is_temporal():
        return None, "datetime values", None
    fallback = (name_unit, "name", None) if name_unit else (None, "default", None)
    if values is None or len(values) < 2:
        return fallback
    med = float(np.median(np.abs(values)))
    for unit, lo, hi in _EPOCH:
        if lo <= med < hi:
            day = time.strftime("%Y-%m-%d", time.gmtime(med * UNITS[unit]))
            how = f"values: epoch {_TIME_WORD[unit]} ({day})"
            if name_unit == unit:
                return unit, "name", None
            warn = None
            if name_unit is not None:
                warn = (f"column {col!r} is named for {_TIME_WORD[name_unit]} but holds epoch {_TIME_WORD[unit]} "
                        f"({day}); read as {_TIME_WORD[unit]} (pass --time-unit {name_unit} to insist)")
            return unit, how, warn
    if name_unit:
        return fallback
    ints = values[values == np.round(values)]
    nz = ints[ints != 0]
    if len(ints) == len(values) and len(nz) >= 10:
        for unit, k in (("ns", 1e9), ("us", 1e6), ("ms", 1e3)):
            frac = float(np.mean(np.mod(nz, k) == 0))
            if frac >= 0.5:
                return unit, (f"values: {frac:.0%} of the timestamps are whole multiples of {k:g}, a "
                              f"one-second clock written in {_TIME_WORD[unit]}"), None
    span = float(np.max(values) - np.min(values))
    if len(values) < 3 or span <= 0:
        return fallback
    rate = (len(values) - 1) / span
    more = "" if len(values) < SAMPLE_ROWS else "the first "
    warn = (f"the time unit of {col!r} is ambiguous (a clock starting at {float(np.min(values)):g}, not an epoch): "
            f"read as seconds, {more}{len(values):,} rows span {_span_text(span)} ({rate:.3g}/s); if it counts "
            f"milliseconds ({_span_text(span * 1e-3)}, {rate * 1e3:.3g}/s) pass --time-unit ms "
            "(mapping time_unit='ms')")
    return None, "default", warn


#: Per duration role: (the median from which values without a unit in the column's name
#: are milliseconds, the words of a warning, the flag that insists on seconds). A latency
#: or a TTFT of 100 s or more is not plausible; nor is a gap of a second or more between
#: two tokens of one stream.
_DURATION_EVIDENCE = {
    "duration": (100.0, "latency column", "--latency-unit s"),
    "ttft": (100.0, "TTFT column", "--map ttft_unit=s"),
    "itl": (1.0, "inter-token gap column", "--map itl_unit=s"),
}


def _latency_unit_evidence(values: Any, col: str, name_unit: str | None,
                           dtype: Any, what: str = "duration") -> tuple[str | None, str, str | None]:
    """Like :func:`_time_unit_evidence`, for the durations of column ``col`` (the role
    ``what``: ``duration``, ``ttft`` or ``itl``, see :data:`_DURATION_EVIDENCE`)."""
    if dtype is not None and dtype.is_temporal():
        return None, "duration values", None
    if name_unit:
        return name_unit, "name", None
    if values is None or len(values) == 0:
        return None, "default", None
    ms_from, words, flag = _DURATION_EVIDENCE[what]
    med = float(np.median(values))
    unit = "ns" if med >= 1e7 * ms_from else "us" if med >= 1e4 * ms_from else "ms" if med >= ms_from else None
    if unit is None:
        return None, "default", None
    how = f"values: median {med:.4g}, {_span_text(med)} if seconds"
    warn = (f"{words} {col!r} has no unit in its name and a median of {med:.4g}: read as {_TIME_WORD[unit]} "
            f"({_span_text(med * UNITS[unit])}), not seconds ({_span_text(med)}); pass {flag} if it "
            "is seconds")
    return unit, how, warn


def _check_columns(raw: Any, m: ColumnMapping) -> None:
    """Refuse files that lack a column the mapping reads while other files have it: their
    rows would lose that role (null start times, latencies or status) without a word."""
    per_file: list[tuple[Path, frozenset[str]]] | None = getattr(raw, _COLUMNS_ATTR, None)
    if not per_file:
        return
    for role, col in m.roles().items():
        lacking = [f for f, cols in per_file if col not in cols]
        if not lacking:
            continue
        having = next(f for f, cols in per_file if col in cols)
        bad_cols = sorted(next(cols for f, cols in per_file if f == lacking[0]))
        more = f" (and {len(lacking) - 1} more file(s))" if len(lacking) > 1 else ""
        raise LogReadError(
            f"{lacking[0]}{more}: has no column {col!r} (the {role}) that {having} has; its columns are "
            f"{bad_cols}. Files of different schemas would lose rows: read them separately, or make their "
            "columns agree")


def _time_expr(col: str, dtype: Any, unit: str) -> pl.Expr:
    c = pl.col(col)
    scale = UNITS[unit]
    if dtype is not None and dtype.is_temporal():
        if dtype == pl.Date:
            return c.cast(pl.Datetime("us")).dt.timestamp("us").cast(pl.Float64) / 1e6
        if isinstance(dtype, pl.Duration) or dtype == pl.Duration:
            return c.dt.total_microseconds().cast(pl.Float64) / 1e6
        return c.dt.timestamp("us").cast(pl.Float64) / 1e6
    if dtype == pl.String:
        num = c.str.strip_chars().cast(pl.Float64, strict=False) * scale
        dt = c.str.to_datetime(strict=False, time_zone="UTC").dt.timestamp("us").cast(pl.Float64) / 1e6
        return pl.coalesce(num, dt)
    return c.cast(pl.Float64, strict=False) * scale


def _num_expr(col: str, dtype: Any, scale: float = 1.0) -> pl.Expr:
    c = pl.col(col)
    if dtype is not None and (isinstance(dtype, pl.Duration) or dtype == pl.Duration):
        return c.dt.total_microseconds().cast(pl.Float64) / 1e6
    if dtype == pl.String:
        c = c.str.strip_chars()
    e = c.cast(pl.Float64, strict=False)
    return e * scale if scale != 1.0 else e


def failed_expr(m: ColumnMapping, schema: Mapping[str, Any]) -> pl.Expr | None:
    """Whether a request failed, from a numeric or boolean error column (non-zero or true)
    or a numeric status column (at least ``error_status_min``); null where the column is.
    ``None`` when the column is text (or there is none): :func:`normalize` reads those
    through their strings."""
    if m.error is not None:
        dt = schema.get(m.error)
        c = pl.col(m.error)
        if dt == pl.Boolean:
            return c
        return c != 0 if dt is not None and dt.is_numeric() else None
    if m.status is not None:
        dt = schema.get(m.status)
        if dt is not None and dt.is_numeric():
            return pl.col(m.status).cast(pl.Int64, strict=False) >= m.error_status_min
    return None


def _outcome_expr(m: ColumnMapping, schema: Mapping[str, Any]) -> pl.Expr:
    failed = failed_expr(m, schema)
    if failed is not None:
        return (pl.when(failed.is_null()).then(pl.lit(None, pl.String)).when(failed).then(pl.lit("error"))
                .otherwise(pl.lit("ok")))
    if m.error is not None:   # text: the error words, "1", "yes", "y"
        s = pl.col(m.error).cast(pl.String).str.to_lowercase().str.strip_chars()
        err = s.is_in(list(m.error_values) + ["1", "yes", "y"])
        return pl.when(err.is_null()).then(pl.lit(None, pl.String)).when(err).then(pl.lit("error")).otherwise(pl.lit("ok"))
    if m.status is not None:  # text: status codes, else the ok and error words
        s = pl.col(m.status).cast(pl.String).str.to_lowercase().str.strip_chars()
        code = s.cast(pl.Int64, strict=False)
        return (
            pl.when(s.is_null()).then(pl.lit(None, pl.String))
            .when(code.is_not_null() & (code >= m.error_status_min)).then(pl.lit("error"))
            .when(code.is_not_null()).then(pl.lit("ok"))
            .when(s.is_in(list(m.ok_values))).then(pl.lit("ok"))
            .when(s.is_in(list(m.error_values))).then(pl.lit("error"))
            .otherwise(pl.lit("incomplete"))
        )
    return pl.lit("ok")


_RAW_PREFIX = "__raw_"


def _is_text(schema: Mapping[str, Any], col: str) -> bool:
    """Only a text column can hold a value of the wrong type (kept as ``__raw_<role>``)."""
    dt = schema.get(col)
    return dt is not None and not (dt.is_numeric() or dt.is_temporal() or dt == pl.Boolean)


def _canonical_exprs(m: ColumnMapping, start_col: str, schema: Mapping[str, Any]) -> list[pl.Expr]:
    """The canonical columns of ``normalize`` (plus the raw text of time/number roles)."""
    exprs = [_time_expr(start_col, schema.get(start_col), m.time_unit).alias("start")]
    timed: list[tuple[str, str, pl.Expr]] = []
    if m.duration is not None:
        lat = _num_expr(m.duration, schema.get(m.duration), UNITS[m.latency_unit])
        timed.append(("duration", m.duration, lat.alias("latency")))
    elif m.end is not None:
        timed.append(("end", m.end, _time_expr(m.end, schema.get(m.end), m.time_unit).alias("end")))
    raw_roles: list[tuple[str, str]] = [("start", start_col)]
    for role, col, expr in timed:
        exprs.append(expr)
        raw_roles.append((role, col))
    exprs.append(_outcome_expr(m, schema).alias("outcome"))
    for role in ("endpoint", "model_version"):
        col = getattr(m, role)
        if col is not None:
            exprs.append(pl.col(col).cast(pl.String).alias(role))
    for role in ("tokens_in", "tokens_out", "cost"):
        col = getattr(m, role)
        if col is not None:
            exprs.append(_num_expr(col, schema.get(col)).alias(role))
            raw_roles.append((role, col))
    if m.ttft is not None:
        exprs.append(_num_expr(m.ttft, schema.get(m.ttft), UNITS[m.ttft_unit]).alias("ttft"))
        raw_roles.append(("ttft", m.ttft))
    elif m.first_token is not None:
        ft = _time_expr(m.first_token, schema.get(m.first_token), m.time_unit)
        exprs.append((ft - exprs[0]).alias("ttft"))
        raw_roles.append(("first_token", m.first_token))
    if m.itl is not None:
        exprs.append(_gaps_expr(m.itl, schema.get(m.itl), UNITS[m.itl_unit]).alias("itl"))
    exprs += [pl.col(col).alias(_RAW_PREFIX + role) for role, col in raw_roles if _is_text(schema, col)]
    return exprs


def _gaps_expr(col: str, dtype: Any, scale: float) -> pl.Expr:
    """A list column of per-token gaps as ``List(Float64)`` seconds (a JSON text of a list,
    as CSV files hold it, is parsed)."""
    c = pl.col(col)
    if dtype == pl.String:
        c = c.str.json_decode(pl.List(pl.Float64))
    return c.cast(pl.List(pl.Float64), strict=False) * scale if scale != 1.0 else c.cast(pl.List(pl.Float64), strict=False)


def _tpot_expr() -> pl.Expr:
    """vLLM's TPOT, ``(latency − ttft) / (tokens_out − 1)`` for two output tokens or more
    (null otherwise): the one definition, used by every reader."""
    n = pl.col("tokens_out")
    return (pl.when(n >= 2).then((pl.col("latency") - pl.col("ttft")) / (n - 1.0))
            .otherwise(pl.lit(None, pl.Float64)))


def normalize(frame: pl.LazyFrame | pl.DataFrame, mapping: ColumnMapping | None = None,
              *, keep: Sequence[str] = ()) -> pl.LazyFrame:
    """Turn a raw log frame into the canonical columns (lazily).

    Besides the canonical columns, ``__raw_<role>`` columns keep the source values of
    time/number roles read from *text* columns, so that the contract can tell an
    unparsable value (wrong type) from a missing one. ``keep`` names extra source columns to carry through (group keys).
    """
    lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    schema = dict(lf.collect_schema())
    m = mapping or detect_columns(schema, sample=lf)
    for role, col in m.roles().items():
        if col not in schema:
            raise ColumnDetectionError(
                f"mapping names column {col!r} for {role!r}, but the log has columns {list(schema)}"
            )
    if m.start is None:
        raise ColumnDetectionError(f"no start column mapped; columns found: {list(schema)}")
    for role, col in m.roles().items():
        dt = schema[col]
        if role == "itl" and isinstance(dt, (pl.List, pl.Array)) and not dt.inner.is_nested():
            continue   # per-token gaps: a list of numbers a request
        if dt.is_nested() or dt == pl.Object:
            kind = "structs" if isinstance(dt, pl.Struct) else "lists"
            raise ColumnDetectionError(
                f"column {col!r} (the {role}) holds {kind}, not single values; map another column with "
                f"--map {role}=COLUMN (columns: {[c for c in schema if c != '_qcls']})")
    exprs = _canonical_exprs(m, m.start, schema)
    # extra columns (group keys); absent ones are left to the caller to report
    exprs += [pl.col(k) for k in keep if k in schema and k not in CANONICAL]
    out = lf.select(exprs)
    if m.duration is not None:
        out = out.with_columns(end=pl.col("start") + pl.col("latency"))
    elif m.end is not None:
        out = out.with_columns(latency=pl.col("end") - pl.col("start"))
    names = out.collect_schema().names()
    if "ttft" in names and "latency" in names and "tokens_out" in names:
        out = out.with_columns(tpot=_tpot_expr())
    return out


def scan_logs(paths: Any, *, mapping: ColumnMapping | Mapping[str, Any] | None = None,
              format: str | None = None, keep: Sequence[str] = ()) -> pl.LazyFrame:
    """Scan log files (paths/globs; Parquet, CSV, NDJSON) into canonical columns.

    Examples
    --------
    >>> lf = scan_logs("requests/*.parquet")            # doctest: +SKIP
    >>> lf.select("latency").collect()                    # doctest: +SKIP
    """
    raw, _ = scan_raw(paths, format=format)
    return normalize(raw, mapping_for(raw, mapping), keep=keep)


def mapping_for(raw: pl.LazyFrame | pl.DataFrame, mapping: Any) -> ColumnMapping:
    """The mapping of ``raw``: ``mapping`` itself when it is a :class:`ColumnMapping`,
    else detected (names, and units from the first rows) with ``mapping`` as overrides;
    a shipped dataset's file (recognised by :func:`scan_raw`) brings its own mapping."""
    if isinstance(mapping, ColumnMapping):
        _check_columns(raw, mapping)
        return mapping
    schema = raw.collect_schema() if isinstance(raw, pl.LazyFrame) else raw.schema
    overrides = dict(mapping or {})
    dataset = _dataset_of(raw)
    if dataset is not None:
        from qcore import datasets

        overrides = {**datasets.info(dataset).mapping, **overrides}
    m = detect_columns(dict(schema), overrides, sample=raw, dataset=dataset)
    _check_columns(raw, m)
    return m
