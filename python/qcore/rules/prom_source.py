"""Burn-rate decisions for ``[[slo]]`` declarations from a Prometheus server's metrics.

The same alerts and decisions as :func:`qcore.rules.evaluate_slos` over logs
(:func:`qcore.rules.burn.alerts_table` and :func:`qcore.rules.burn.decisions_from_table`);
only the (events, bad events) counts of each window come from metrics instead of rows.
An ``[[slo]]`` names its series in a ``[slo.prometheus]`` table:

- a latency SLO (``latency_threshold``): ``histogram = "NAME"`` (a classic histogram, the
  name without ``_bucket``) or ``native = "NAME"`` (a native histogram); the events are its
  observations, the bad ones those above the threshold;
- an error SLO: ``total = "SELECTOR"`` and ``errors = "SELECTOR"`` (counters, e.g.
  ``'http_requests_total{job="api"}'`` and ``'http_requests_total{job="api",code=~"5.."}'``);
- ``matchers`` (optional): PromQL label matchers added to a histogram's selector.

``group_by`` names labels: one decision per window pair and label value set.

Counts come from raw samples (:mod:`qcore.prom`'s increases: resets handled, no
extrapolation). A window ``(now − w, now]`` takes the increase of every pair of
consecutive samples whose later sample is in it, so it may include up to one scrape
interval of events before its start. A counter series that first appears inside the
range (a labelled counter created at its first increment, such as the first error's
``code="500"``) counts its first value as an increase from zero; the histograms' series
must exist before the range (their first sample is the baseline). When the latency threshold is not a bucket edge the
bad count is a bracket (:meth:`qcore.prom.ClassicHistogram.attainment`): the alert table
is computed at both ends, and a window pair whose alert fires at one end and not at the
other is ``insufficient_evidence`` (the buckets cannot tell), not a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from qcore import prom
from qcore.exceptions import InvalidArgumentError
from qcore.rules.burn import alerts_table, burn_windows, check_slo, decisions_from_table
from qcore.rules.model import RuleError, parse_duration

__all__ = ["PROMETHEUS_KEYS", "evaluate_slos_prometheus", "window_counts_prometheus"]

#: The keys of an ``[slo.prometheus]`` table.
PROMETHEUS_KEYS = ("histogram", "native", "matchers", "total", "errors")


def _source(spec: Mapping[str, Any]) -> dict[str, str]:
    sid = spec["id"]
    src = spec.get("prometheus")
    if not isinstance(src, Mapping):
        raise RuleError(f"slo {sid!r}: needs a [slo.prometheus] table naming its series "
                        f"(keys {list(PROMETHEUS_KEYS)}) to be evaluated from Prometheus")
    unknown = set(src) - set(PROMETHEUS_KEYS)
    if unknown:
        raise RuleError(f"slo {sid!r}: unknown prometheus key(s) {sorted(unknown)}; "
                        f"known: {list(PROMETHEUS_KEYS)}")
    if any(not isinstance(v, str) or not v for v in src.values()):
        raise RuleError(f"slo {sid!r}: prometheus values must be non-empty strings")
    hist = [k for k in ("histogram", "native") if k in src]
    if spec.get("latency_threshold") is not None:
        if len(hist) != 1 or "total" in src or "errors" in src:
            raise RuleError(f"slo {sid!r}: a latency SLO from Prometheus needs exactly one of "
                            "prometheus.histogram or prometheus.native (and no total/errors)")
    elif hist or "total" not in src or "errors" not in src:
        raise RuleError(f"slo {sid!r}: an error SLO from Prometheus needs prometheus.total and "
                        "prometheus.errors (counter selectors), and no histogram")
    return dict(src)


def _label_matchers(base: str, labels: Mapping[str, str]) -> str:
    return prom._matchers(labels, base)


def _with_labels(selector: str, labels: Mapping[str, str]) -> str:
    """``selector`` (``name`` or ``name{...}``) with equality matchers for ``labels``."""
    if not labels:
        return selector
    name, _, rest = selector.partition("{")
    inner = rest.rsplit("}", 1)[0] if rest else ""
    return name + _label_matchers(inner, labels)


def _groups(client: prom.PrometheusClient, selector: str, by: Sequence[str], start: float,
            end: float) -> list[dict[str, str]]:
    """The label value sets of ``by`` among the series of ``selector`` (a missing label is
    the empty value, as PromQL matches it)."""
    found = client.series([selector], start, end)
    if not found:
        raise InvalidArgumentError(f"no series {selector} between {start:.3f} and {end:.3f}")
    if not by:
        return [{}]
    keys = sorted({tuple(d.get(k, "") for k in by) for d in found})
    return [dict(zip(by, k, strict=True)) for k in keys]


def _in(times: np.ndarray, end: float, length: float) -> np.ndarray:
    return (times > end - length) & (times <= end)


def window_counts_prometheus(
    client: prom.PrometheusClient,
    source: Mapping[str, str],
    *,
    latency_threshold: float | None,
    lengths: Sequence[float],
    now: float,
    lookback: float,
    labels: Mapping[str, str],
) -> tuple[list[tuple[int, int, int]], dict[str, Any]]:
    """Per window ``(now − length, now]``: (events, fewest bad, most bad) from the series of
    ``source`` restricted to ``labels``; and what was read (for the evidence)."""
    start = now - max(lengths) - lookback
    out: list[tuple[int, int, int]] = []
    if latency_threshold is not None:
        base = source.get("matchers", "")
        sel = _label_matchers(base, labels)
        if "native" in source:
            name = source["native"]
            p = prom._native_pairs(client, name, start, now, sel)
            t = np.array(p.times)
            for length in lengths:
                nh = prom._native_sum(name, p, np.flatnonzero(_in(t, now, length)).tolist(),
                                      None, None)
                out.append(_bracket(nh, latency_threshold))
            info = {"native": name, "matchers": sel, "series": p.series, "resets": p.resets,
                    "first": p.first, "last": p.last}
        else:
            name = source["histogram"]
            edges, pc = prom._histogram_pairs(client, name, start, now, sel)
            for length in lengths:
                tot = pc.inc[_in(pc.times, now, length)].sum(axis=0)
                h = prom.ClassicHistogram(metric=name, edges=edges, cumulative=tot[:-1],
                                          sum=float(tot[-1]))
                out.append(_bracket(h, latency_threshold))
            info = {"histogram": name, "matchers": sel, "edges": edges.tolist(),
                    "series": pc.series, "resets": pc.resets, "first": pc.first,
                    "last": pc.last}
        return out, info
    return _counter_counts(client, source, lengths, now, start, labels)


def _target(s: prom.Series) -> tuple[str, str]:
    return s.labels.get("job", ""), s.labels.get("instance", "")


def _counter_counts(client: prom.PrometheusClient, source: Mapping[str, str],
                    lengths: Sequence[float], now: float, start: float,
                    labels: Mapping[str, str]) -> tuple[list[tuple[int, int, int]], dict[str, Any]]:
    """(events, bad, bad) per window from the total and errors counters. A series whose
    first sample comes after its target's first sample in the range was created in the
    range (client libraries create a labelled counter at its first increment): its first
    value counts, at that sample's time, as an increase from zero."""
    found: dict[str, list[prom.Series]] = {}
    for role in ("total", "errors"):
        sel = _with_labels(source[role], labels)
        found[role] = [s for s in client.samples(sel, start, now) if s.times.size]
        if role == "total" and not found[role]:
            raise prom.NoPairsError(f"no series {sel} between {start:.3f} and {now:.3f}")
    ref: dict[tuple[str, str], float] = {}
    for ss in found.values():
        for s in ss:
            ref[_target(s)] = min(ref.get(_target(s), math.inf), float(s.times[0]))
    incs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    info: dict[str, Any] = {}
    for role, ss in found.items():
        born = [s for s in ss if float(s.times[0]) > ref[_target(s)]]
        t = [s.times[:1] for s in born]
        v = [s.values[:1] for s in born]
        pairs = [s for s in ss if s.times.size >= 2]
        resets = 0
        if pairs:
            pc = prom._pairs({prom._key(s.labels, []): [(0, s)] for s in pairs}, 1,
                             f"counter {source[role]}")
            t.append(pc.times)
            v.append(pc.inc[:, 0])
            resets = pc.resets
        incs[role] = (np.concatenate(t) if t else np.empty(0),
                      np.concatenate(v) if v else np.empty(0))
        info[role] = {"selector": _with_labels(source[role], labels), "series": len(ss),
                      "created_in_range": len(born), "resets": resets}
    out: list[tuple[int, int, int]] = []
    for length in lengths:
        n_b = []
        for role in ("total", "errors"):
            times, vals = incs[role]
            x = float(vals[_in(times, now, length)].sum())
            if x != round(x):
                raise InvalidArgumentError(f"{role}: the counter increased by {x}, not a whole "
                                           "number of requests")
            n_b.append(int(round(x)))
        n, b = n_b
        if b > n:
            raise InvalidArgumentError(
                f"errors ({b}) exceed total ({n}) over the last {length:g} s: the errors "
                "selector must select a subset of the total's requests"
            )
        out.append((n, b, b))
    return out, info


def _bracket(h: prom.ClassicHistogram | prom.NativeHistogram, threshold: float
             ) -> tuple[int, int, int]:
    n = h.count
    if n == 0:
        return 0, 0, 0
    a = h.attainment(threshold)
    return n, n - a.good_upper, n - a.good_lower


def evaluate_slos_prometheus(
    client: prom.PrometheusClient,
    slos: Sequence[Mapping[str, Any]],
    *,
    now: float,
    lookback: float = 300.0,
) -> pl.DataFrame:
    """Burn-rate decisions (the decision table's schema) for ``[[slo]]`` declarations with
    a ``[slo.prometheus]`` table, at evaluation time ``now`` (Unix seconds). ``lookback``
    (s) reaches before the longest window for the sample that starts its first pair (at
    least one scrape interval)."""
    from qcore.rules.engine import DECISION_SCHEMA

    rows: list[pl.DataFrame] = []
    for spec in slos:
        check_slo(spec)
        src = _source(spec)
        sid = spec["id"]
        try:
            rows.append(_evaluate_one(client, spec, src, now, lookback))
        except InvalidArgumentError as e:
            raise RuleError(f"slo {sid!r}: {e}") from None
    return pl.concat(rows) if rows else pl.DataFrame(schema=DECISION_SCHEMA)


def _evaluate_one(client: prom.PrometheusClient, spec: Mapping[str, Any], src: Mapping[str, str],
                  now: float, lookback: float) -> pl.DataFrame:
    objective = float(spec["objective"])
    thr = spec.get("latency_threshold")
    period = parse_duration(spec.get("period", "30d"), "period")
    ws = burn_windows(spec.get("windows", "workbook"), period)
    lengths = [x for w in ws for x in (w.long, w.short)]
    group_by = tuple(spec.get("group_by", ()))
    min_events = int(spec.get("min_events", 1))
    start = now - max(lengths) - lookback
    if thr is not None:
        name = src.get("histogram") or src["native"]
        probe = (f"{name}_count" if "histogram" in src else name) + _label_matchers(
            src.get("matchers", ""), {})
    else:
        probe = src["total"]
    lo_counts: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
    hi_counts: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
    read: list[dict[str, Any]] = []
    for labels in _groups(client, probe, group_by, start, now):
        try:
            cnt, info = window_counts_prometheus(
                client, src, latency_threshold=thr, lengths=lengths, now=now,
                lookback=lookback, labels=labels)
        except prom.NoPairsError as e:  # a label set without two samples: no events yet
            cnt, info = [(0, 0, 0)] * len(lengths), {"no_increase": str(e)}
        key = tuple(labels.get(k, "") for k in group_by)
        lo_counts[key] = [(n, b_lo) for n, b_lo, _ in cnt]
        hi_counts[key] = [(n, b_hi) for n, _, b_hi in cnt]
        read.append({"labels": labels, **info})
    kw: dict[str, Any] = {"objective": objective, "period": period, "windows": ws,
                          "min_events": min_events, "group_by": group_by}
    hi = alerts_table(hi_counts, **kw)
    lo = alerts_table(lo_counts, **kw)
    table = hi.with_columns(
        long_bad_lower=lo.get_column("long_bad"), short_bad_lower=lo.get_column("short_bad"),
        long_burn_lower=lo.get_column("long_burn"), short_burn_lower=lo.get_column("short_burn"),
        undecided=pl.when(hi.get_column("firing") != lo.get_column("firing"))
        .then(pl.format("the buckets cannot tell: {} to {} bad of {} in the long window, "
                        "{} to {} of {} in the short; the alert fires at the upper count only",
                        lo.get_column("long_bad"), hi.get_column("long_bad"),
                        hi.get_column("long_events"), lo.get_column("short_bad"),
                        hi.get_column("short_bad"), hi.get_column("short_events")))
        .otherwise(None),
    )
    fp = {"source": "prometheus", "url": client.url, "now": now, "series": read}
    return decisions_from_table(table, spec, fp, now)
