"""Helpers shared by the tutorials: the traces they read, how to read them, how to print
a decision. Each tutorial imports this module from its own directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent


def traces(*names: str) -> list[Path]:
    """Paths of the shipped traces a tutorial reads (see :mod:`qcore.datasets`), each the
    original file byte for byte."""
    from qcore import datasets

    return [datasets.path(n) for n in names]


def pyplot() -> Any:
    """matplotlib.pyplot with a file backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save(fig: Any, name: str) -> None:
    """Save a figure as a PNG next to the tutorials (or in ``$QCORE_TUTORIAL_OUTPUT``)."""
    out = Path(os.environ.get("QCORE_TUTORIAL_OUTPUT", HERE))
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"plot written: {path.name}")


def no_plot_note() -> None:
    print("(matplotlib is not installed: plots skipped)")


def section(title: str) -> None:
    print()
    print(title)
    print("-" * len(title))


def azure_timestamps(path: Path) -> np.ndarray:
    """Arrival times (s since the first request) of an Azure LLM inference trace CSV."""
    df = pl.read_csv(path, columns=["TIMESTAMP"])
    t = df.select(
        pl.col("TIMESTAMP").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f").dt.epoch("us")
    ).to_series().to_numpy().astype(np.float64) / 1e6
    return t - t[0]


def gentd26(path: Path) -> pl.DataFrame:
    """The GenTD26 request trace as a canonical request log.

    ``start`` = gmt_create (epoch seconds; the trace has no time zone, so its clock is read as UTC), ``latency`` = exec_time_seconds,
    ``end`` = start + latency, ``outcome`` = ok (SUCCEED) / error (FAILED) / incomplete
    (PENDING, PROCESSING), ``model_version`` = checkpoint_model_version_id,
    ``endpoint`` = predict_type, plus ``day`` (YYYY-MM-DD).
    """
    raw = pl.read_csv(path)
    start = pl.col("gmt_create").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S").dt.epoch("us").cast(
        pl.Float64) / 1e6
    out = raw.select(
        start=start,
        latency=pl.col("exec_time_seconds").cast(pl.Float64),
        outcome=pl.when(pl.col("predict_status") == "SUCCEED").then(pl.lit("ok"))
        .when(pl.col("predict_status") == "FAILED").then(pl.lit("error"))
        .otherwise(pl.lit("incomplete")),
        model_version=pl.col("checkpoint_model_version_id"),
        endpoint=pl.col("predict_type"),
        day=pl.col("gmt_create").str.slice(0, 10),
    ).with_columns(end=pl.col("start") + pl.col("latency"))
    return out.sort("start")


def show_decisions(decisions: pl.DataFrame, evidence_of: int | None = 0) -> None:
    """Print the decision table and one evidence record in full."""
    with pl.Config(tbl_rows=40, tbl_cols=12, fmt_str_lengths=60, tbl_width_chars=160):
        print(decisions.select("rule_id", "group", "metric", "value", "ci_lo", "ci_hi",
                               "comparison", "threshold", "n", "status", "action"))
    for msg in decisions.select("rule_id", "group", "message").rows():
        print(f"  {msg[0]} [{msg[1]}]: {msg[2]}")
    if evidence_of is not None and decisions.height:
        ev = json.loads(decisions.get_column("evidence")[evidence_of])
        ev.pop("data", None)  # the data fingerprint is long; it is in the JSON line
        print("evidence record (rule, value, CI, threshold, status, action):")
        print(json.dumps(ev, indent=2, sort_keys=True, default=str))


def log_evidence(decisions: pl.DataFrame, name: str) -> Path:
    """Append the decisions' evidence records as JSON lines (one file per tutorial)."""
    import tempfile

    import qcore.rules as qr

    out = Path(os.environ.get("QCORE_TUTORIAL_EVIDENCE", Path(tempfile.gettempdir()) / "qcore-tutorials"))
    path = out / f"{name}.jsonl"
    n = qr.write_evidence(decisions, path, append=False)
    print(f"{n} evidence record(s) written to {path}")
    return path
