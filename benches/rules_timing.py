"""Time ``qcore.rules.evaluate`` on a log held in memory: ten rules (grouped quantiles,
a windowed quantile, error rate, Little's law, freshness, arrival rate, burstiness,
mean latency, latency drift, throughput) over a generated log of N rows, best of R runs.

    python benches/rules_timing.py [N] [R]

Prints the best wall time and a SHA-256 of the decision table (evidence included), so two
builds can be checked to decide the same.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np
import polars as pl

import qcore.rules as qr

RULES = {"defaults": {"owner": "o", "version": "1"}, "rule": [
    {"id": "p99", "metric": "p99", "threshold": 1.0, "group_by": ["endpoint"]},
    {"id": "p50w", "metric": "p50", "threshold": 1.0, "window": "10m", "group_by": ["model"]},
    {"id": "err", "metric": "error_rate", "threshold": 0.02, "group_by": ["endpoint"]},
    {"id": "lg", "metric": "littles_gap", "threshold": 0.02},
    {"id": "fr", "metric": "freshness", "max_age": "1h"},
    {"id": "rate", "metric": "arrival_rate", "threshold": 1e9, "comparison": "<=", "group_by": ["endpoint"]},
    {"id": "burst", "metric": "burstiness", "threshold": 10, "bin": 1.0},
    {"id": "mean", "metric": "latency_mean", "threshold": 1.0, "group_by": ["model"]},
    {"id": "drift", "metric": "latency_drift", "threshold": 0.5, "window": "10m"},
    {"id": "tp", "metric": "throughput", "threshold": 1.0, "comparison": ">=", "group_by": ["endpoint"]},
]}


def log(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    return pl.DataFrame({"ts": np.sort(rng.uniform(0, 3600, n)), "latency": rng.lognormal(-2, 0.6, n),
                         "status": np.where(rng.random(n) < 0.01, 500, 200),
                         "endpoint": rng.choice(["a", "b", "c", "d"], n), "model": rng.choice(["m1", "m2"], n)})


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    df, rules = log(n), qr.parse_rules(RULES)
    best, d = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        d = qr.evaluate(df, rules, now=3700.0)
        best = min(best, time.perf_counter() - t)
    assert d is not None
    print(f"{n:,} rows, {len(rules)} rules: best of {reps} {best:.3f} s; "
          f"table {hashlib.sha256(d.write_csv().encode()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
