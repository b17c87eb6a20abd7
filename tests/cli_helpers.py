"""Running the installed ``qcore`` command in the tests, and reading its JSON strictly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def qcore_command() -> str:
    """The installed console script (beside this interpreter, else on PATH)."""
    exe = Path(sys.executable).parent / "qcore"
    if exe.exists():
        return str(exe)
    found = shutil.which("qcore")
    if found is None:  # pragma: no cover - the package is always installed for the tests
        raise RuntimeError("the qcore command is not installed")
    return found


def qcore_cli(*argv: str, timeout: float = 600) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``qcore ARGV...``."""
    r = subprocess.run([qcore_command(), *argv], capture_output=True, text=True, timeout=timeout, check=False)
    return r.returncode, r.stdout, r.stderr


def strict(text: str) -> Any:
    """``text`` parsed as strict JSON (NaN and Infinity refused)."""
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)
