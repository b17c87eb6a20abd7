"""Peak resident memory of a block of code, for the benchmarks (not part of the library:
on Linux it resets the process's peak-RSS counter, which a library must never do).

>>> import numpy as np
>>> with peak_memory() as m:
...     x = np.ones(6_000_000)       # 48 MB, fresh pages
>>> m.peak_increase_bytes >= 40_000_000 or m.method == "ru_maxrss"
True
"""

from __future__ import annotations

import re
import resource
import sys


def _proc_status() -> dict[str, int] | None:
    try:
        with open("/proc/self/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for key in ("VmRSS", "VmHWM"):
        m = re.search(key + r":\s+(\d+)\s*kB", text)
        if m is None:
            return None
        out[key] = int(m.group(1)) * 1024
    return out


def _maxrss() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


class peak_memory:
    """Context manager: ``baseline`` (resident bytes at entry), ``peak`` and
    ``peak_increase_bytes``. ``method`` is ``"vmhwm"`` (Linux: the peak is reset at entry,
    exact for the block) or ``"ru_maxrss"`` (elsewhere: the process's peak so far, an
    upper bound)."""

    def __init__(self) -> None:
        self.method = "ru_maxrss"
        self.baseline = 0
        self.peak = 0

    def __enter__(self) -> peak_memory:
        st = _proc_status()
        if st is None:
            self.baseline = _maxrss()
            return self
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
            self.method = "vmhwm"
        except OSError:
            self.method = "ru_maxrss"
        self.baseline = st["VmRSS"]
        return self

    def __exit__(self, *exc: object) -> None:
        st = _proc_status()
        if self.method == "vmhwm" and st is not None:
            self.peak = max(st["VmHWM"], self.baseline)
        else:
            self.peak = max(_maxrss(), self.baseline)

    @property
    def peak_increase_bytes(self) -> int:
        return self.peak - self.baseline
