"""Optional matplotlib plots of autoscaling timelines and overload sweeps, saved as PNG.

matplotlib is an optional dependency; the functions raise ``ImportError`` with a hint
when it is missing.

>>> from qcore import autoscale, plots, sim
>>> r = autoscale.replay(sim.Poisson(rate=4.0), sim.Exponential(mean=1.0),
...                      autoscale.HPA(target=0.6), initial_replicas=4, customers=2_000, slo=5.0)
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "timeline.png")
>>> plots.timeline(r, path)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import polars as pl

from qcore.exceptions import InvalidArgumentError

__all__ = ["goodput_vs_load", "timeline", "timelines"]


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "qcore.plots needs matplotlib (pip install matplotlib)"
        ) from e
    return plt


def _path(path: Any) -> str:
    p = str(os.fspath(path))
    if not p.lower().endswith(".png"):
        raise InvalidArgumentError(f"path must end with .png, got {p!r}")
    return p


def timelines(results: Mapping[str, Any], path: Any, *, slo: float | None = None,
              title: str | None = None) -> str:
    """Plot the timelines of several :class:`qcore.autoscale.ReplayResult` (one line per
    policy): arrivals per second, ready replicas, and the window latency quantile, and
    save them as a PNG. Returns the path.
    """
    plt = _plt()
    p = _path(path)
    if not results:
        raise InvalidArgumentError("results must hold at least one replay")
    fig, ax = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    first = next(iter(results.values()))
    tl0: pl.DataFrame = first.timeline
    t0 = float(tl0["start"][0])
    width = float(tl0["start"][1] - tl0["start"][0]) if tl0.height > 1 else 1.0
    hours = ((tl0["start"] - t0) / 3600.0).to_numpy()
    ax[0].plot(hours, (tl0["arrivals"] / width).to_numpy(), color="black", lw=0.8)
    ax[0].set_ylabel("arrivals / s")
    for name, r in results.items():
        tl = r.timeline
        h = ((tl["start"] - t0) / 3600.0).to_numpy()
        ax[1].step(h, tl["ready"].to_numpy(), where="post", lw=0.9, label=name)
        ax[2].plot(h, tl[r.latency_column].to_numpy(), lw=0.8, label=name)
    ax[1].set_ylabel("ready replicas")
    ax[1].legend(loc="upper left", fontsize=8)
    ax[2].set_ylabel(f"window {first.latency_column} (s)")
    ax[2].set_yscale("log")
    if slo is not None:
        ax[2].axhline(slo, color="red", ls="--", lw=0.8, label="SLO")
    ax[2].set_xlabel("hours")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def timeline(result: Any, path: Any, *, slo: float | None = None) -> str:
    """Plot one replay's timeline (see :func:`timelines`) and save it as a PNG."""
    return timelines({result.policy: result}, path, slo=slo)


def goodput_vs_load(table: pl.DataFrame, path: Any, *, title: str | None = None) -> str:
    """Plot ``goodput_ratio`` against ``load`` per policy from
    :func:`qcore.overload.sweep` and save it as a PNG. Returns the path."""
    plt = _plt()
    p = _path(path)
    need = {"policy", "load", "goodput_ratio"}
    if not need <= set(table.columns):
        raise InvalidArgumentError(f"table must have the columns {sorted(need)}")
    if "class" in table.columns:
        table = table.filter(pl.col("class") == "all")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (name,), g in table.group_by(["policy"], maintain_order=True):
        g = g.sort("load")
        ax.plot(g["load"].to_numpy(), g["goodput_ratio"].to_numpy(), marker="o", label=str(name))
    ax.plot([0, 1, table["load"].max()], [0, 1, 1], color="grey", ls=":", lw=0.8, label="ideal")
    ax.set_xlabel("offered load (× capacity)")
    ax.set_ylabel("goodput / capacity")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
