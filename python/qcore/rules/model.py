"""Rule declarations: the schema shared by TOML files and Python code."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = [
    "ACTIONS",
    "METRICS",
    "STATUSES",
    "Rule",
    "RuleError",
    "load_rules",
    "parse_duration",
    "parse_rules",
]

from qcore.exceptions import QcoreValueError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Every decision status, from best to worst. Only ``pass`` lets a release through.
STATUSES = ("pass", "warn", "fail", "insufficient_evidence", "stale", "malformed",
            "inconsistent", "unauditable")
#: Every action, in increasing severity.
ACTIONS = ("accept", "warn", "block", "rollback", "escalate")

#: metric name → (family, default comparison, description)
METRICS: dict[str, tuple[str, str, str]] = {
    "latency_quantile": ("latency", "<=", "latency quantile `quantile` (seconds), from a QuantileSketch, with a distribution-free CI"),
    "latency_mean": ("latency", "<=", "mean latency (seconds)"),
    "error_rate": ("quality", "<=", "errors / (ok + errors), with a Wilson CI"),
    "throughput": ("traffic", ">=", "completed requests per second over the window"),
    "arrival_rate": ("traffic", ">=", "arrivals per second over the window, with a Poisson CI"),
    "peak_to_mean": ("traffic", "<=", "peak rate at `bin` seconds over the mean rate"),
    "burstiness": ("traffic", "<=", "index of dispersion of counts at `bin` seconds (1 for Poisson)"),
    "littles_gap": ("consistency", "<=", "relative gap |L - lambda W| / L of Little's law over the window"),
    "latency_drift": ("consistency", "<=", "relative change of latency quantile `quantile` between the previous and the last window, or against `reference`"),
    "rate_drift": ("consistency", "<=", "relative change of the arrival rate between the previous and the last window, or against `reference`"),
    "freshness": ("freshness", "<=", "age of the newest event (seconds) at evaluation time"),
    "null_fraction": ("contract", "<=", "fraction of rows where `column` is null"),
    "invalid_fraction": ("contract", "<=", "fraction of input rows the data contract rejected"),
    "unaudited_fraction": ("audit", "<=", "fraction of rows without lineage (`columns`, default model_version)"),
    "cost_per_1k_tokens": ("cost", "<=", "dollars per 1000 tokens (`tokens`: tokens_in + tokens_out, or output): sum(cost) / tokens x 1000, or with `price` the fleet's GPU-hours over the window x $/GPU-hour / tokens x 1000"),
    "tokens_per_request": ("cost", "<=", "mean tokens per request (`tokens`: tokens_in + tokens_out, or output)"),
    "ttft_quantile": ("latency", "<=", "LLM time-to-first-token quantile `quantile` (seconds; `ttft` column: a log's TTFT or first-token time, or qcore.rules.metrics.llm_log of a simulation), with a distribution-free CI"),
    "tpot_quantile": ("latency", "<=", "LLM time-per-output-token quantile `quantile` (seconds; `tpot` = (latency - ttft) / (tokens_out - 1), tokens_out >= 2), with a distribution-free CI"),
    "itl_quantile": ("latency", "<=", "LLM inter-token latency quantile `quantile` (seconds) over every gap between consecutive tokens of every request, pooled (vLLM's ITL); needs per-token data: an `itl` list column, or a simulation run with trace=True"),
    "token_goodput": ("traffic", ">=", "output tokens per second of the finished requests that meet every objective of `slo` (ttft, tpot, e2e) over the window"),
}
#: the LLM quantile metrics and their shorthands (``ttft_p99``, ``tpot_p90``, ``itl_p50``)
LLM_QUANTILES = ("ttft_quantile", "tpot_quantile", "itl_quantile")
_LLM_SHORTHAND = re.compile(r"^(ttft|tpot|itl)_(p\d+(?:\.\d+)?)$")
#: the objectives a ``token_goodput`` rule may declare in ``slo``
SLO_KEYS = ("ttft", "tpot", "e2e")
#: the keys of a rule's ``price`` table (``cost_per_1k_tokens`` from GPU-hours)
PRICE_KEYS = ("gpu", "provider", "per_gpu_hour", "gpus_per_replica", "replicas")

#: status given when a rule of a family does not hold
FAIL_STATUS = {
    "latency": "fail", "quality": "fail", "traffic": "fail", "cost": "fail",
    "consistency": "inconsistent", "freshness": "stale", "contract": "malformed",
    "audit": "unauditable",
}
#: the response named in each decision (what to do about it)
RESPONSES = {
    "latency": "investigate the slow path; route, batch or scale out",
    "quality": "roll back or fix the failing path",
    "traffic": "check capacity and the traffic source",
    "consistency": "investigate: compare with the reference, check for dropped rows or clock skew",
    "freshness": "backfill or wait for fresh data; do not decide on stale data",
    "contract": "reject the data before use; fix the producer",
    "audit": "stop promotion until model version, owner and lineage are recorded",
    "cost": "route, cache, batch or downscale",
}
SEVERITY_ACTION = {
    "critical": "rollback", "page": "rollback", "high": "block", "block": "block",
    "medium": "warn", "warning": "warn", "ticket": "warn", "low": "warn", "info": "warn",
}

_SHORTHAND = re.compile(r"^(?:latency_)?p(\d+(?:\.\d+)?)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DUR_SCALE = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


class RuleError(QcoreValueError):
    """A rule declaration is invalid; the message names the rule and the field."""


def parse_duration(v: Any, name: str) -> float:
    """``300``, ``"300s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"250ms"`` → seconds."""
    if isinstance(v, bool):
        raise RuleError(f"{name} must be a duration like '5m' or a number of seconds, got {v!r}")
    if isinstance(v, (int, float)):
        x = float(v)
    elif isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise RuleError(f"{name} must be a duration like '30s', '5m', '1h', '1d', got {v!r}")
        x = float(m.group(1)) * _DUR_SCALE[m.group(2)]
    else:
        raise RuleError(f"{name} must be a duration like '5m' or a number of seconds, got {v!r}")
    if not math.isfinite(x) or x <= 0:
        raise RuleError(f"{name} must be a positive duration, got {v!r}")
    return x


def _quantile_from_shorthand(metric: str) -> float | None:
    m = _SHORTHAND.match(metric)
    if not m:
        return None
    digits = m.group(1)
    if "." in digits:
        return float(digits) / 100.0
    # p50 -> 0.5, p99 -> 0.99, p999 -> 0.999, p9999 -> 0.9999
    return float("0." + digits) if len(digits) > 2 else float(digits) / 100.0


@dataclass(frozen=True)
class Rule:
    """One declared check: compute ``metric``, compare it with ``threshold``, decide.

    The rule passes when ``value <comparison> threshold`` holds (``comparison`` is one of
    ``<=``, ``<``, ``>=``, ``>``). With ``warn_threshold`` set, a value that passes the
    hard threshold but not the warn threshold gives ``warn``. A rule that cannot be
    evaluated never passes: too few samples → ``insufficient_evidence``, data older than
    ``max_age`` → ``stale``, missing columns → ``malformed``, missing ``version`` or
    ``owner`` → ``unauditable``.

    ``decide_on`` picks what is compared: the point ``estimate`` (default), or the
    ``upper``/``lower`` end of the confidence interval (conservative gates).

    Examples
    --------
    >>> r = Rule(id="p99-latency", version="3", owner="serving", metric="p99",
    ...          threshold=2.0, group_by=("endpoint",))
    >>> r.quantile, r.comparison, r.action_for("fail")
    (0.99, '<=', 'block')
    """

    id: str
    metric: str
    threshold: float | None = None
    version: str | None = None
    owner: str | None = None
    comparison: str | None = None
    warn_threshold: float | None = None
    quantile: float | None = None
    group_by: tuple[str, ...] = ()
    window: float | None = None
    bin: float = 60.0
    min_samples: int | None = None
    confidence: float = 0.95
    decide_on: str = "estimate"
    max_age: float | None = None
    column: str | None = None
    columns: tuple[str, ...] = ()
    reference: Mapping[str, Any] | None = None
    include_errors: bool = False
    severity: str | None = None
    on_fail: str | None = None
    on_warn: str = "warn"
    on_insufficient: str = "escalate"
    on_stale: str = "block"
    on_malformed: str = "block"
    on_inconsistent: str = "escalate"
    on_unauditable: str = "block"
    response: str | None = None
    description: str = ""
    filter: Mapping[str, Any] | None = None
    slo: Mapping[str, Any] | None = None
    price: Mapping[str, Any] | None = None
    tokens: str = "all"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise RuleError(f"rule id must be a non-empty string, got {self.id!r}")
        who = f"rule {self.id!r}"
        self._init_metric(who)
        self._init_thresholds(who)
        self._init_shape(who)
        self._init_llm(who)
        self._init_actions(who)

    def _init_llm(self, who: str) -> None:
        """``slo`` (token goodput), ``price`` (cost from GPU-hours) and ``tokens``."""
        set_ = object.__setattr__
        if self.tokens not in ("all", "output"):
            raise RuleError(f"{who}: tokens must be 'all' (tokens_in + tokens_out) or 'output', got {self.tokens!r}")
        if self.slo is not None:
            if not isinstance(self.slo, Mapping):
                raise RuleError(f"{who}: slo must be a table like {{ ttft = '1s', tpot = '50ms' }}, got {self.slo!r}")
            unknown = set(self.slo) - set(SLO_KEYS)
            if unknown:
                raise RuleError(f"{who}: slo has unknown key(s) {sorted(unknown)}; known: {list(SLO_KEYS)}")
            set_(self, "slo", {k: parse_duration(self.slo[k], f"{who}: slo.{k}") for k in SLO_KEYS if k in self.slo})
        if self.metric == "token_goodput" and not self.slo:
            raise RuleError(f"{who}: metric token_goodput needs slo with at least one of {list(SLO_KEYS)} "
                            "(e.g. slo = { ttft = '1s', tpot = '50ms' })")
        if self.slo is not None and self.metric != "token_goodput":
            raise RuleError(f"{who}: slo is only read by metric token_goodput, not {self.metric!r}")
        if self.price is not None:
            if self.metric != "cost_per_1k_tokens":
                raise RuleError(f"{who}: price is only read by metric cost_per_1k_tokens, not {self.metric!r}")
            set_(self, "price", _resolve_price(self.price, who))

    def _init_metric(self, who: str) -> None:
        """Metric, quantile (from pNN shorthands), version and comparison."""
        set_ = object.__setattr__
        if not isinstance(self.metric, str):
            raise RuleError(f"{who}: metric must be a string, got {self.metric!r}")
        q = _quantile_from_shorthand(self.metric)
        if q is not None:
            if self.quantile is not None and abs(self.quantile - q) > 1e-12:
                raise RuleError(f"{who}: metric {self.metric!r} says quantile {q} but quantile = {self.quantile}")
            set_(self, "metric", "latency_quantile")
            set_(self, "quantile", q)
        llm = _LLM_SHORTHAND.match(self.metric)
        if llm:
            q = _quantile_from_shorthand(llm.group(2))
            if self.quantile is not None and q is not None and abs(self.quantile - q) > 1e-12:
                raise RuleError(f"{who}: metric {self.metric!r} says quantile {q} but quantile = {self.quantile}")
            set_(self, "metric", f"{llm.group(1)}_quantile")
            set_(self, "quantile", q)
        if self.metric not in METRICS:
            raise RuleError(f"{who}: unknown metric {self.metric!r}; known: {sorted(METRICS)} or pNN shorthands (p50, p99, p999)")
        if self.metric in ("latency_quantile", "latency_drift", *LLM_QUANTILES):
            if self.quantile is None and self.metric != "latency_drift":
                raise RuleError(f"{who}: metric {self.metric} needs quantile (e.g. 0.99) or use 'p99'")
            if self.quantile is None:
                set_(self, "quantile", 0.5)
            if not (0.0 < float(self.quantile) < 1.0):  # type: ignore[arg-type]
                raise RuleError(f"{who}: quantile must be in (0, 1), got {self.quantile}")
        if self.version is not None:
            set_(self, "version", str(self.version))
        if self.comparison is None:
            set_(self, "comparison", METRICS[self.metric][1])
        if self.comparison not in ("<=", "<", ">=", ">"):
            raise RuleError(f"{who}: comparison must be one of <=, <, >=, >, got {self.comparison!r}")
        if self.metric == "null_fraction" and not self.column:
            raise RuleError(f"{who}: metric null_fraction needs column")

    def _init_thresholds(self, who: str) -> None:
        """``max_age``, the default threshold of the data-quality metrics, warn side."""
        set_ = object.__setattr__
        if self.max_age is not None:
            set_(self, "max_age", parse_duration(self.max_age, f"{who}: max_age"))
        if self.threshold is None:
            if self.metric in ("freshness",) and self.max_age is not None:
                set_(self, "threshold", float(self.max_age))
            elif self.metric in ("invalid_fraction", "unaudited_fraction", "null_fraction"):
                set_(self, "threshold", 0.0)
            else:
                raise RuleError(f"{who}: threshold is required for metric {self.metric!r}")
        for k in ("threshold", "warn_threshold"):
            v = getattr(self, k)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise RuleError(f"{who}: {k} must be a finite number, got {v!r}")
            set_(self, k, float(v))
        if self.warn_threshold is not None and self.threshold is not None:
            lower_is_better = self.comparison in ("<=", "<")
            if (lower_is_better and self.warn_threshold > self.threshold) or (
                not lower_is_better and self.warn_threshold < self.threshold):
                raise RuleError(f"{who}: warn_threshold {self.warn_threshold} must be on the passing side of threshold {self.threshold}")

    def _init_shape(self, who: str) -> None:
        """Grouping, columns, window and bin, sample and confidence settings."""
        set_ = object.__setattr__
        for k in ("group_by", "columns"):
            v = getattr(self, k)
            set_(self, k, (v,) if isinstance(v, str) else tuple(v))
        if self.window is not None:
            set_(self, "window", parse_duration(self.window, f"{who}: window"))
        set_(self, "bin", parse_duration(self.bin, f"{who}: bin"))
        ms = self.min_samples
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms < 0):
            raise RuleError(f"{who}: min_samples must be a non-negative integer, got {ms!r}")
        if not (0.5 <= self.confidence < 1.0):
            raise RuleError(f"{who}: confidence must be in [0.5, 1), got {self.confidence}")
        if self.decide_on not in ("estimate", "upper", "lower"):
            raise RuleError(f"{who}: decide_on must be 'estimate', 'upper' or 'lower', got {self.decide_on!r}")
        for k in ("reference", "filter"):
            v = getattr(self, k)
            if v is not None and not isinstance(v, Mapping):
                raise RuleError(f"{who}: {k} must be a table of column = value, got {v!r}")

    def _init_actions(self, who: str) -> None:
        """Severity, the action of each status, and the response of the metric's family."""
        set_ = object.__setattr__
        if self.severity is not None and self.severity not in SEVERITY_ACTION:
            raise RuleError(f"{who}: severity must be one of {sorted(SEVERITY_ACTION)}, got {self.severity!r}")
        if self.on_fail is None:
            set_(self, "on_fail", SEVERITY_ACTION.get(self.severity or "", "block"))
        for k in ("on_fail", "on_warn", "on_insufficient", "on_stale", "on_malformed",
                  "on_inconsistent", "on_unauditable"):
            if getattr(self, k) not in ACTIONS:
                raise RuleError(f"{who}: {k} must be one of {list(ACTIONS)}, got {getattr(self, k)!r}")
        if self.response is None:
            set_(self, "response", RESPONSES[METRICS[self.metric][0]])

    @property
    def family(self) -> str:
        return METRICS[self.metric][0]

    @property
    def fail_status(self) -> str:
        return FAIL_STATUS[self.family]

    def action_for(self, status: str) -> str:
        """The action a decision with ``status`` takes under this rule."""
        return {
            "pass": "accept",
            "warn": self.on_warn,
            "fail": self.on_fail,
            "insufficient_evidence": self.on_insufficient,
            "stale": self.on_stale,
            "malformed": self.on_malformed,
            "inconsistent": self.on_inconsistent,
            "unauditable": self.on_unauditable,
        }[status]  # type: ignore[return-value]

    def passes(self, value: float, threshold: float) -> bool:
        c = self.comparison
        if c == "<=":
            return value <= threshold
        if c == "<":
            return value < threshold
        if c == ">=":
            return value >= threshold
        return value > threshold

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["group_by"] = list(self.group_by)
        d["columns"] = list(self.columns)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        known = {f.name for f in fields(cls)}
        rid = d.get("id", "<no id>")
        unknown = set(d) - known
        if unknown:
            raise RuleError(f"rule {rid!r}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        if "id" not in d:
            raise RuleError(f"a rule has no id: {dict(d)}")
        if "metric" not in d:
            raise RuleError(f"rule {rid!r}: metric is required")
        try:
            return cls(**dict(d))
        except TypeError as e:
            raise RuleError(f"rule {rid!r}: {e}") from None


def _resolve_price(price: Any, who: str) -> dict[str, Any]:
    """A rule's ``price`` table with ``per_gpu_hour`` resolved (from the GPU preset's row
    of :func:`qcore.llm.prices` when only ``gpu`` is given) and ``dollars_per_hour`` (the
    fleet's: per GPU-hour × GPUs per replica × replicas)."""
    if not isinstance(price, Mapping):
        raise RuleError(f"{who}: price must be a table like {{ gpu = 'h100-80gb', replicas = 8 }}, got {price!r}")
    unknown = set(price) - set(PRICE_KEYS) - {"dollars_per_hour"}
    if unknown:
        raise RuleError(f"{who}: price has unknown key(s) {sorted(unknown)}; known: {list(PRICE_KEYS)}")
    out = {k: price[k] for k in PRICE_KEYS if k in price}
    for k in ("gpus_per_replica", "replicas"):
        v = out.get(k, 1 if k == "gpus_per_replica" else None)
        if v is None:
            raise RuleError(f"{who}: price needs replicas (the replicas serving the log)")
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RuleError(f"{who}: price.{k} must be an integer >= 1, got {v!r}")
        out[k] = v
    if "per_gpu_hour" in out:
        v = out["per_gpu_hour"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise RuleError(f"{who}: price.per_gpu_hour must be a finite number >= 0, got {v!r}")
        out["per_gpu_hour"] = float(v)
    elif "gpu" in out:
        from qcore.llm import gpu_price

        try:
            out["per_gpu_hour"] = gpu_price(str(out["gpu"]), None if out.get("provider") is None else str(out["provider"]))
        except ValueError as e:
            raise RuleError(f"{who}: price: {e}") from None
    else:
        raise RuleError(f"{who}: price needs per_gpu_hour ($ per GPU-hour) or gpu (a preset of the price table)")
    out["dollars_per_hour"] = out["per_gpu_hour"] * out["gpus_per_replica"] * out["replicas"]
    return out


def parse_rules(data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Sequence[Rule]) -> list[Rule]:
    """Rules from a parsed TOML document (``[[rule]]`` tables), a list of dicts or Rules.

    Top-level ``[defaults]`` keys (e.g. ``owner``, ``version``, ``max_age``) apply to
    every rule that does not set them.
    """
    defaults: dict[str, Any] = {}
    if isinstance(data, Mapping):
        defaults = dict(data.get("defaults", {}))
        unknown = set(data) - {"rule", "rules", "defaults", "contract", "mapping", "slo"}
        if unknown:
            raise RuleError(f"rules file has unknown top-level key(s) {sorted(unknown)}; expected [[rule]], "
                            "[[slo]], [defaults], [contract], [mapping]")
        items = list(data.get("rule", [])) + list(data.get("rules", []))
    else:
        items = list(data)
    out: list[Rule] = []
    seen: set[str] = set()
    for it in items:
        if isinstance(it, Rule):
            r = it
        elif isinstance(it, Mapping):
            r = Rule.from_dict({**defaults, **it})
        else:
            raise RuleError(f"a rule must be a table/dict or a Rule, got {type(it).__name__}")
        key = f"{r.id}@{r.version}"
        if key in seen:
            raise RuleError(f"rule {r.id!r} version {r.version!r} is declared twice")
        seen.add(key)
        out.append(r)
    if not out:
        raise RuleError("no rules declared (expected [[rule]] tables)")
    return out


def load_rules(source: str | Path) -> list[Rule]:
    """Load rules from a TOML file path (or TOML text containing ``[[rule]]``).

    Example file::

        [defaults]
        owner = "serving-team"
        version = "1"

        [[rule]]
        id = "p99-latency"
        metric = "p99"
        threshold = 2.5          # seconds
        group_by = ["endpoint"]
        severity = "critical"    # fail -> rollback

    Raises
    ------
    RuleError
        Invalid TOML or an invalid rule; the message names the rule and field.
    """
    text: str
    p = Path(source) if not (isinstance(source, str) and "\n" in source) else None
    if p is not None and p.exists():
        text = p.read_text()
    elif isinstance(source, str) and ("[[rule" in source or "\n" in source):
        text = source
    else:
        raise FileNotFoundError(f"rules: {str(source)!r} does not exist")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"rules: invalid TOML: {e}") from None
    return parse_rules(data)


def load_config(source: str | Path) -> dict[str, Any]:
    """The whole parsed rules document (rules plus optional [contract] and [mapping])."""
    p = Path(source)
    try:
        return tomllib.loads(p.read_text() if p.exists() else str(source))
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"rules: invalid TOML: {e}") from None


