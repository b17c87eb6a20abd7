"""Release and alert decisions over request logs.

Compute a value, compare it with a declared rule, log the evidence, make the next
action unambiguous.

- :class:`Rule` / :func:`load_rules`: rules in TOML (``[[rule]]`` tables) or Python.
- :func:`evaluate`: one decision per rule and group, as a polars DataFrame, each with
  a JSON evidence record (:func:`write_evidence` writes them as JSON lines).
- :func:`compare`: candidate against baseline (canary judge: pass / marginal / fail).
- :func:`burn_rate_alerts`: multiwindow, multi-burn-rate SLO alerts; :func:`evaluate_slos` turns
  ``[[slo]]`` declarations into decisions; :func:`evaluate_slos_prometheus` the same from a
  Prometheus server's histograms and counters (:mod:`qcore.rules.prom_source`).

Statuses: ``pass, warn, fail, insufficient_evidence, stale, malformed, inconsistent,
unauditable``. Actions: ``accept, warn, block, rollback, escalate``. A rule that cannot
be evaluated never passes.

Examples
--------
>>> import polars as pl, qcore.rules as qr
>>> rules = qr.parse_rules({"rule": [{"id": "fresh", "version": "1", "owner": "ops",
...                                   "metric": "freshness", "max_age": "1h"}]})
>>> log = pl.DataFrame({"ts": [0.0, 10.0], "latency": [0.2, 0.3]})
>>> qr.evaluate(log, rules, now=7200.0).select("status", "action").row(0)
('stale', 'block')
"""

from qcore.rules.burn import (
    PYRRA,
    WORKBOOK,
    BurnWindow,
    burn_rate_alerts,
    evaluate_slos,
)
from qcore.rules.compare import CompareResult, compare
from qcore.rules.engine import (
    DECISION_SCHEMA,
    EXIT_CODES,
    evaluate,
    exit_code,
    overall_action,
    write_evidence,
)
from qcore.rules.model import (
    ACTIONS,
    METRICS,
    STATUSES,
    Rule,
    RuleError,
    load_rules,
    parse_duration,
    parse_rules,
)
from qcore.rules.prom_source import evaluate_slos_prometheus

__all__ = [
    "ACTIONS",
    "DECISION_SCHEMA",
    "EXIT_CODES",
    "METRICS",
    "PYRRA",
    "STATUSES",
    "WORKBOOK",
    "BurnWindow",
    "CompareResult",
    "Rule",
    "RuleError",
    "burn_rate_alerts",
    "compare",
    "evaluate",
    "evaluate_slos",
    "evaluate_slos_prometheus",
    "exit_code",
    "load_rules",
    "overall_action",
    "parse_duration",
    "parse_rules",
    "write_evidence",
]
