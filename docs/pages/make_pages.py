"""Regenerate the report pages of the public traces and their screenshots (docs/pages/).

Runs the installed ``qcore`` command on each trace (the shipped datasets, fetched from
their public sources into the local cache on first use, or ``../shared/data``), writes the
HTML report and the decision page, and screenshots each report's first screen in headless
Chromium at 1400×900 (``NAME.png``) and its plots at 1400×2600 (``NAME-plots.png``)::

    python docs/pages/make_pages.py            # every trace
    python docs/pages/make_pages.py gentd26_lora_2024-12-03

The HTML pages are not kept in the repository (they name local cache paths); the PNGs are.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from qcore import datasets

HERE = Path(__file__).resolve().parent
RULES = HERE.parents[1] / "examples" / "rules.toml"

#: trace, group-by column (or None), and the evaluation time of the decision page
TRACES = {
    "azure_llm_2023_conv": (None, None),
    "azure_llm_2023_code": (None, None),
    "mooncake_conversation": (None, None),
    "gentd26_lora_2024-12-03": ("endpoint", 1733270512.0),
    "ragpulse": (None, None),
}


def _qcore(cwd: str, *argv: str) -> None:
    exe = Path(sys.executable).parent / "qcore"
    cmd = str(exe) if exe.exists() else "qcore"
    res = subprocess.run([cmd, *argv], capture_output=True, text=True, check=False, cwd=cwd)
    if res.returncode not in (0, 1, 2, 3, 4, 5):  # a decision's exit code is not a failure here
        raise SystemExit(f"qcore {' '.join(argv)} failed:\n{res.stderr}")


#: scrolls a copy of a page to its plots before the screenshot
_TO_PLOTS = ('<script>addEventListener("load", () => { for (const h of document.querySelectorAll("h2")) '
             'if (h.textContent === "Plots") h.scrollIntoView(); });</script></body>')


def _shot(page: Path, png: Path, chromium: str, height: int = 900) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--no-first-run", f"--user-data-dir={profile}", "--hide-scrollbars",
                        f"--window-size=1400,{height}", "--virtual-time-budget=3000", f"--screenshot={png}",
                        page.as_uri()],
                       capture_output=True, check=True, timeout=180)


def _plots_shot(page: Path, png: Path, chromium: str) -> None:
    """The plots of a report page (a copy scrolled to them), 1400 px wide."""
    scrolled = page.with_name("plots-" + page.name)
    scrolled.write_text(page.read_text(encoding="utf-8").replace("</body>", _TO_PLOTS), encoding="utf-8")
    _shot(scrolled, png, chromium, height=2600)


def main(names: list[str]) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is needed for the screenshots (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(TRACES):
            group, now = TRACES[name]
            # the trace beside the pages, so that the pages name it as a user would
            src = shutil.copy(datasets.path(name), tmp)
            src = Path(src).name
            argv = ["report", src, "--html", f"{name}.html", "--title", f"qcore report: {name}", "--no-progress"]
            if group:
                argv += ["--group-by", group]
            _qcore(tmp, *argv)
            _shot(Path(tmp) / f"{name}.html", HERE / f"{name}.png", chromium)
            _plots_shot(Path(tmp) / f"{name}.html", HERE / f"{name}-plots.png", chromium)
            if now is not None:
                shutil.copy(RULES, tmp)
                _qcore(tmp, "check", src, "--rules", RULES.name, "--now", f"{now:.0f}", "--html", f"{name}-check.html",
                       "--no-progress")
                _shot(Path(tmp) / f"{name}-check.html", HERE / f"{name}-check.png", chromium)
            print(f"docs/pages/{name}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
