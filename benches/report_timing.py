"""Wall and CPU time of ``qcore report`` on one large Parquet log, each run in a fresh
process, and the CPU time of the report's batch kernel (``ReportAccumulator.update``) alone.

Run: ``python benches/report_timing.py [rows] [runs]`` (default 20,000,000 rows, 3 runs).
The log is ``check_memory.make_log``'s (three endpoints, 1 % errors, lognormal latencies).
To compare two builds, run the script under each (for example with ``PYTHONPATH``
pointing at the other build's ``python/`` directory), interleaving the runs on a loaded
machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_memory import make_log  # noqa: E402


def report_once(log: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one ``qcore report``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qcore.cli", "report", str(log), "--group-by", "endpoint",
                    "--format", "json", "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def kernel_cpu(n: int = 10_000_000, rounds: int = 7) -> float:
    """Minimum CPU seconds of one ``ReportAccumulator.update`` call on ``n`` rows, 3 groups
    (counts and Little's-law sums, no sketches)."""
    from qcore import _qcore

    rng = np.random.default_rng(1)
    start = np.cumsum(rng.exponential(1e-3, n))
    lat = rng.lognormal(-3, 1, n)
    end = start + lat
    codes = rng.integers(0, 3, n).astype(np.int64)
    cls = np.where(rng.random(n) < 0.01, 1, 0).astype(np.int8)
    t0, t1, bin_ = float(start[0]), float(end.max()), 60.0
    nw, ne = int((start[-1] - t0) // bin_) + 1, int((t1 - t0) // bin_) + 2
    best = np.inf
    for _ in range(rounds):
        c0 = time.process_time()
        _qcore.ReportAccumulator(t0, t1, bin_, nw, ne, 2.0**31).update(codes, start, cls, end, lat, 3)
        best = min(best, time.process_time() - c0)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "log.parquet"
        make_log(log, n)
        for i in range(runs):
            wall, cpu = report_once(log)
            print(f"qcore report, {n:,} rows, run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU "
                  f"(load {os.getloadavg()[0]:.1f})")
    print(f"ReportAccumulator.update, 10,000,000 rows, 3 groups: {kernel_cpu() * 1e3:.1f} ms CPU (min of 7)")


if __name__ == "__main__":
    main()
