"""The data contract: row and schema rules over the canonical columns, their counts and
example rows, and the rows they keep (:func:`validate`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from qcore._convert import known_keys
from qcore.exceptions import InvalidArgumentError, QcoreValueError
from qcore.io.mapping import (
    _RAW_PREFIX,
    _TIME_WORD,
    SAMPLE_ROWS,
    UNITS,
    ColumnMapping,
    OnViolation,
)
from qcore.io.sources import _jsonable


class ContractViolationError(QcoreValueError):
    """A log violates its data contract and the caller asked to refuse it.

    ``.report`` holds the :class:`ContractReport` with counts and example rows.
    """

    def __init__(self, report: ContractReport) -> None:
        self.report = report
        super().__init__(report.summary())


@dataclass(frozen=True)
class Contract:
    """The data contract of a request log.

    Row rules (each counted separately, with example rows):

    - ``null_start`` / ``null_latency``: the value is missing;
    - ``bad_type_<role>``: the source value is present but is not a number/time
      (a wrong type, e.g. ``"fast"`` in a latency column);
    - ``nonfinite_start`` / ``nonfinite_latency``: NaN or infinite values;
    - ``negative_latency``: latency < 0, i.e. end < start;
    - ``time_range``: start outside ``[min_time, max_time]`` (``max_time`` defaults to
      now + ``future_tolerance`` seconds, which catches clocks skewed into the future);
    - ``max_latency``: latency above ``max_latency`` seconds (when set);
    - ``negative_<role>``: negative tokens or cost;
    - ``nonfinite_ttft`` / ``negative_ttft`` / ``bad_type_ttft``: an LLM TTFT that is
      NaN, negative or not a number; ``ttft_exceeds_latency``: a first token after the
      request's end (a unit or clock error); ``invalid_itl``: a negative or non-finite
      inter-token gap;
    - ``null_<role>`` for each role in ``not_null`` (e.g. ``model_version``).

    - any ``row_checks``: ``name -> polars expression``, True on a valid row, over the
      canonical columns (e.g. ``{"tokens_cap": pl.col("tokens_out") <= 4096}``).

    Schema rules: ``required`` roles must be mapped.
    """

    required: tuple[str, ...] = ("start",)
    require_latency: bool = False
    not_null: tuple[str, ...] = ()
    min_time: float = 0.0
    max_time: float | None = None
    future_tolerance: float = 86_400.0
    max_latency: float | None = None
    examples: int = 5
    row_checks: Mapping[str, pl.Expr] = field(default_factory=dict)

    def resolved_max_time(self) -> float:
        return self.max_time if self.max_time is not None else time.time() + self.future_tolerance

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Contract:
        kw = known_keys(d, cls, "contract")
        for k in ("required", "not_null"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)


@dataclass
class ContractCheck:
    """One contract rule: how many rows broke it, and up to ``Contract.examples`` of them."""

    name: str
    column: str | None
    failed: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    level: Literal["schema", "row"] = "row"
    #: What would fix it, when the values say (e.g. ``--time-unit ms`` for epoch
    #: milliseconds read as seconds).
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "column": self.column, "failed": self.failed,
                "level": self.level, "examples": self.examples, "hint": self.hint}


@dataclass
class ContractReport:
    """Outcome of :func:`validate`: row counts and the failing checks."""

    rows_total: int
    rows_valid: int
    checks: list[ContractCheck]
    action: str  # "exclude" or "refuse"

    @property
    def passed(self) -> bool:
        return all(c.failed == 0 for c in self.checks)

    @property
    def rows_excluded(self) -> int:
        return self.rows_total - self.rows_valid

    def failures(self) -> list[ContractCheck]:
        return [c for c in self.checks if c.failed]

    def summary(self) -> str:
        if self.passed:
            return f"contract: {self.rows_total} rows, all valid"
        parts = [f"{c.name}: {c.failed}" + (f" (column {c.column!r})" if c.column else "")
                 for c in self.failures()]
        ex = ""
        for c in self.failures():
            if c.examples:
                ex = f"; example for {c.name}: {c.examples[0]}"
                break
        hints = "".join(f"; {c.hint}" for c in self.failures() if c.hint)
        return (f"contract violated: {self.rows_total} rows, {self.rows_total - self.rows_valid} "
                f"invalid — " + ", ".join(parts) + ex + hints)

    def then(self, other: ContractReport, examples: int) -> ContractReport:
        """The report of this part of a log followed by ``other``: counts added, checks
        matched by name, ``other``'s example rows numbered after this part's rows, at most
        ``examples`` examples a check (neither report changes). Every path that reads a
        log in parts merges their reports with it.

        >>> a = ContractReport(3, 2, [ContractCheck("nan", "t", 1, [{"row": 1}])], "exclude")
        >>> b = ContractReport(2, 1, [ContractCheck("nan", "t", 1, [{"row": 0}])], "exclude")
        >>> m = a.then(b, examples=5)
        >>> m.rows_total, m.rows_valid, m.checks[0].failed, m.checks[0].examples
        (5, 3, 2, [{'row': 1}, {'row': 3}])
        """
        out = {c.name: replace(c, examples=[dict(e) for e in c.examples]) for c in self.checks}
        for c in other.checks:
            ex = [{**e, "row": e["row"] + self.rows_total} if "row" in e else dict(e) for e in c.examples]
            prev = out.get(c.name)
            out[c.name] = (replace(c, examples=ex[:examples]) if prev is None else
                           replace(prev, failed=prev.failed + c.failed, examples=(prev.examples + ex)[:examples]))
        return ContractReport(self.rows_total + other.rows_total, self.rows_valid + other.rows_valid,
                              list(out.values()), self.action)

    def to_dict(self) -> dict[str, Any]:
        return {"rows_total": self.rows_total, "rows_valid": self.rows_valid,
                "rows_excluded": self.rows_excluded, "passed": self.passed,
                "action": self.action, "checks": [c.to_dict() for c in self.checks]}


def _llm_row_rules(has: set[str], src: Mapping[str, str]) -> list[tuple[str, str | None, pl.Expr]]:
    """The contract's row rules on an LLM log's ``ttft`` and ``itl`` columns."""
    rules: list[tuple[str, str | None, pl.Expr]] = []
    if "ttft" in has:
        ttft_src = src.get("ttft") or src.get("first_token")
        raw = _RAW_PREFIX + ("ttft" if src.get("ttft") else "first_token")
        if raw in has:
            rules.append(("bad_type_ttft", ttft_src, pl.col(raw).is_not_null() & pl.col("ttft").is_null()))
        rules.append(("nonfinite_ttft", ttft_src, pl.col("ttft").is_not_null() & ~pl.col("ttft").is_finite()))
        rules.append(("negative_ttft", ttft_src, pl.col("ttft").is_finite() & (pl.col("ttft") < 0)))
        if "latency" in has:
            # the first token comes before the last: a TTFT beyond the latency is a unit or clock error
            rules.append(("ttft_exceeds_latency", ttft_src, pl.col("ttft").is_finite() & pl.col("latency").is_finite()
                          & (pl.col("ttft") > pl.col("latency") * (1.0 + 1e-9) + 1e-9)))
    if "itl" in has:
        rules.append(("invalid_itl", src.get("itl"),
                      pl.col("itl").list.eval(~pl.element().is_finite() | (pl.element() < 0)).list.any()))
    return rules


def row_rules(schema: Mapping[str, Any], contract: Contract, mapping: ColumnMapping | None) -> list[tuple[str, str | None, pl.Expr]]:
    """(name, source column, expression that is True on a *violating* row)."""
    src = mapping.roles() if mapping else {}
    rules: list[tuple[str, str | None, pl.Expr]] = []
    has = set(schema)
    rs = _RAW_PREFIX + "start"
    if rs in has:
        rules.append(("null_start", src.get("start"), pl.col(rs).is_null()))
        rules.append(("bad_type_start", src.get("start"), pl.col(rs).is_not_null() & pl.col("start").is_null()))
    else:
        rules.append(("null_start", src.get("start"), pl.col("start").is_null()))
    lmax = contract.resolved_max_time()
    rules.append(("nonfinite_start", src.get("start"), pl.col("start").is_not_null() & ~pl.col("start").is_finite()))
    rules.append(("time_range", src.get("start"),
                  pl.col("start").is_finite()
                  & ((pl.col("start") < contract.min_time) | (pl.col("start") > lmax))))
    if "latency" in has:
        lat_src = src.get("duration") or src.get("end")
        raw = _RAW_PREFIX + "duration" if _RAW_PREFIX + "duration" in has else _RAW_PREFIX + "end"
        if raw in has:
            rules.append(("null_latency", lat_src, pl.col(raw).is_null() & (pl.col("outcome") != "incomplete")))
            rules.append(("bad_type_latency", lat_src, pl.col(raw).is_not_null() & pl.col("latency").is_null()))
        else:
            rules.append(("null_latency", lat_src, pl.col("latency").is_null() & (pl.col("outcome") != "incomplete")))
        fin = pl.col("latency").is_not_null() & ~pl.col("latency").is_finite()
        rules.append(("nonfinite_latency", lat_src, fin))
        rules.append(("negative_latency", lat_src, pl.col("latency").is_finite() & (pl.col("latency") < 0)))
        if contract.max_latency is not None:
            rules.append(("max_latency", lat_src, pl.col("latency").is_finite() & (pl.col("latency") > contract.max_latency)))
    if "outcome" in has and (src.get("status") or src.get("error")):
        rules.append(("null_status", src.get("status") or src.get("error"), pl.col("outcome").is_null()))
    for role in ("tokens_in", "tokens_out", "cost"):
        if role in has:
            raw = _RAW_PREFIX + role
            if raw in has:
                rules.append((f"bad_type_{role}", src.get(role), pl.col(raw).is_not_null() & pl.col(role).is_null()))
            rules.append((f"negative_{role}", src.get(role), pl.col(role) < 0))
    rules += _llm_row_rules(has, src)
    for role in contract.not_null:
        if role in has and not any(r[0] == f"null_{role}" for r in rules):
            rules.append((f"null_{role}", src.get(role), pl.col(role).is_null()))
    for name, expr in contract.row_checks.items():   # user rules: True on a *valid* row
        rules.append((name, None, ~expr))
    return rules


def check_on_violation(on_violation: Any) -> OnViolation:
    """``on_violation`` itself when it is ``"exclude"`` or ``"refuse"``; else an error
    naming it (every reader, the report and the rules check it here).

    >>> check_on_violation("refuse")
    'refuse'
    """
    if on_violation not in ("exclude", "refuse"):
        raise InvalidArgumentError(f"on_violation must be 'exclude' or 'refuse', got {on_violation!r}")
    out: OnViolation = on_violation
    return out


def validate(
    frame: pl.LazyFrame | pl.DataFrame,
    contract: Contract | None = None,
    *,
    mapping: ColumnMapping | None = None,
    on_violation: OnViolation = "exclude",
) -> tuple[pl.DataFrame, ContractReport]:
    """Check a canonical frame (from :func:`normalize`) against a :class:`Contract`.

    Returns the valid rows (canonical columns, the ``__raw_*`` helpers dropped) and a
    :class:`ContractReport`. With ``on_violation="refuse"`` any violation raises
    :class:`ContractViolationError` instead; with ``"exclude"`` the violating rows are
    left out and reported (never silently).

    Examples
    --------
    >>> import polars as pl
    >>> from qcore.io import normalize
    >>> raw = pl.DataFrame({"ts": [1.0, 2.0, 3.0], "latency": [0.1, -0.2, None]})
    >>> ok, rep = validate(normalize(raw))
    >>> ok.height, {c.name: c.failed for c in rep.failures()}
    (1, {'null_latency': 1, 'negative_latency': 1})
    """
    check_on_violation(on_violation)
    contract = contract or Contract()
    lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    schema = dict(lf.collect_schema())
    checks: list[ContractCheck] = []
    roles_present = {"start": "start" in schema, "latency": "latency" in schema}
    for role in contract.required:
        present = role in schema or roles_present.get(role, False)
        if not present:
            checks.append(ContractCheck(f"missing_{role}", role, -1, level="schema"))
    if contract.require_latency and "latency" not in schema:
        checks.append(ContractCheck("missing_latency", "latency", -1, level="schema"))
    for role in contract.not_null:
        if role not in schema:
            checks.append(ContractCheck(f"missing_{role}", role, -1, level="schema"))
    rules = row_rules(schema, contract, mapping)
    df = frame if isinstance(frame, pl.DataFrame) else lf.collect()
    n = df.height
    # one boolean column per rule (no copy of the data), then a single filter if needed
    fl = df.select([e.fill_null(False).alias(f"__bad_{name}") for name, _, e in rules]) if rules else None
    counts = fl.sum().row(0) if fl is not None and n else tuple(0 for _ in rules)
    visible = list(df.columns)
    bad_any = None
    for (name, col, _), cnt in zip(rules, counts, strict=True):
        ex: list[dict[str, Any]] = []
        if cnt:
            assert fl is not None
            mask = fl.get_column(f"__bad_{name}")
            bad_any = mask if bad_any is None else (bad_any | mask)
            sub = (df.with_row_index("row").filter(mask).select(["row", *visible]).head(contract.examples))
            for r in sub.iter_rows(named=True):
                ex.append({("source_" + k.removeprefix(_RAW_PREFIX)) if k.startswith(_RAW_PREFIX) else k:
                           _jsonable(v) for k, v in r.items()})
        hint = None
        if name == "time_range" and cnt and "start" in df.columns and fl is not None:
            hint = time_unit_hint(df.get_column("start").filter(fl.get_column("__bad_time_range")).to_numpy(),
                                  contract, mapping)
        if name == "ttft_exceeds_latency" and cnt and fl is not None:
            hint = _ttft_unit_hint(df.filter(fl.get_column("__bad_ttft_exceeds_latency")), mapping)
        checks.append(ContractCheck(name, col, int(cnt or 0), ex, hint=hint))
    valid = df.filter(~bad_any) if bad_any is not None else df
    valid = valid.drop([c for c in valid.columns if c.startswith("__")])
    schema_fail = any(c.level == "schema" for c in checks)
    report = ContractReport(n, 0 if schema_fail else valid.height, checks, on_violation)
    if (not report.passed) and (on_violation == "refuse" or schema_fail):
        raise ContractViolationError(report)
    if schema_fail:
        valid = valid.head(0)
    return valid, report


def _ttft_unit_hint(bad: pl.DataFrame, mapping: ColumnMapping | None) -> str | None:
    """A sentence naming the ``ttft_unit`` under which every TTFT beyond its latency would
    fit inside it (a TTFT column in milliseconds read as seconds), or ``None``."""
    if mapping is None or mapping.ttft is None:
        return None
    t, lat = bad.get_column("ttft").to_numpy(), bad.get_column("latency").to_numpy()
    read = UNITS[mapping.ttft_unit]
    for unit in ("ms", "us", "ns"):
        if UNITS[unit] < read and bool(np.all(t * (UNITS[unit] / read) <= lat)):
            return (f"the TTFTs look like {_TIME_WORD[unit]} read as {_TIME_WORD.get(mapping.ttft_unit, mapping.ttft_unit)}: "
                    f"pass --map ttft_unit={unit} (mapping ttft_unit='{unit}')")
    return None


def time_unit_hint(starts: Any, contract: Contract | None = None,
                   mapping: ColumnMapping | None = None) -> str | None:
    """A sentence naming the ``--time-unit`` under which start times (in seconds, as
    read) outside the contract's time range would fall inside it, or ``None``.
    ``starts`` is an array of start times or a canonical frame (its first rows).

    >>> print(time_unit_hint([1.7e12, 1.7e12 + 5.0]))
    the start times look like epoch milliseconds read as seconds: pass --time-unit ms (mapping time_unit='ms')
    """
    contract = contract or Contract()
    if isinstance(starts, (pl.DataFrame, pl.LazyFrame)):   # a canonical frame: its first start times
        head = starts.select(pl.col("start").cast(pl.Float64, strict=False)).head(SAMPLE_ROWS)
        try:
            starts = (head.collect() if isinstance(head, pl.LazyFrame) else head).get_column("start").to_numpy()
        except (pl.exceptions.PolarsError, OSError):
            return None
    arr = np.asarray(starts, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return None
    med = float(np.median(arr))
    read = mapping.time_unit if mapping is not None else "s"
    lo, hi = contract.min_time, contract.resolved_max_time()
    for unit in ("s", "ms", "us", "ns"):
        if unit == read:
            continue
        v = med * UNITS[unit] / UNITS[read]
        if lo <= v <= hi and (unit == "s" or v >= 3e8):   # an epoch time in range
            return (f"the start times look like epoch {_TIME_WORD[unit]} read as {_TIME_WORD.get(read, read)}: "
                    f"pass --time-unit {unit} (mapping time_unit='{unit}')")
    return None
