"""Peak resident memory of ``qcore check`` against ``qcore report`` on one large Parquet
log: both stream their files, so check must stay within 1.5x of report.

Run: ``python benches/check_memory.py [rows]`` (default 20,000,000). Each command runs in
its own process; the figure is that process's peak RSS (``ru_maxrss`` of the child).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

RULES = """
[defaults]
owner = "sre"
version = "1"

[[rule]]
id = "p99"
metric = "p99"
threshold = 1.0
group_by = ["endpoint"]

[[rule]]
id = "err"
metric = "error_rate"
threshold = 0.02

[[rule]]
id = "rate"
metric = "arrival_rate"
threshold = 1.0

[[rule]]
id = "little"
metric = "littles_gap"
threshold = 0.05
"""


# the log read whole into memory, then the rules: what check did before it streamed
IN_MEMORY = """
import sys
import qcore.rules as qr
from qcore.logs import read_logs
logs = read_logs(sys.argv[1], keep=["endpoint"])
qr.evaluate(logs, sys.argv[2], now=1e9)
"""


def make_log(path: Path, n: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1e-3, n))
    pl.DataFrame({
        "ts": t, "latency": rng.lognormal(-3, 1, n),
        "status": np.where(rng.random(n) < 0.01, 500, 200).astype(np.int32),
        "endpoint": rng.choice(["a", "b", "c"], n),
    }).write_parquet(path, row_group_size=1_000_000)


def peak_rss(argv: list[str]) -> tuple[float, float, int]:
    """(peak RSS in bytes of the child, wall seconds, exit code)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3, 4, 5):
        raise SystemExit(f"{argv}: exit {code}: {p.stderr.read().decode() if p.stderr else ''}")
    return ru.ru_maxrss * 1024.0, wall, code


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "log.parquet"
        make_log(log, n)
        rules = Path(d) / "rules.toml"
        rules.write_text(RULES)
        py = [sys.executable, "-m", "qcore.cli"]
        rep = peak_rss([*py, "report", str(log), "--format", "json", "--no-progress"])
        chk = peak_rss([*py, "check", str(log), "--rules", str(rules), "--now", "1e9", "--format", "json",
                        "--no-progress"])
        whole = peak_rss([sys.executable, "-c", IN_MEMORY, str(log), str(rules)])
    print(f"rows: {n:,}  ({os.cpu_count()} cores)")
    print(f"qcore report: peak RSS {rep[0] / 1e9:.2f} GB, {rep[1]:.1f} s")
    print(f"qcore check:  peak RSS {chk[0] / 1e9:.2f} GB, {chk[1]:.1f} s")
    print(f"read_logs + rules.evaluate (whole log in memory): peak RSS {whole[0] / 1e9:.2f} GB, {whole[1]:.1f} s")
    print(f"check / report: {chk[0] / rep[0]:.2f}x")


if __name__ == "__main__":
    main()
