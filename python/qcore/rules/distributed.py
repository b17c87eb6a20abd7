"""``qcore.rules.distributed`` is the first name of :mod:`qcore.rules.driver`, the one
driver of :func:`qcore.rules.evaluate` (kept so that code using it keeps working).

>>> from qcore.rules import distributed, driver
>>> distributed.evaluate is driver.evaluate
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qcore.pipeline.tasks import source_of
from qcore.rules.driver import DistributedResult, evaluate

__all__ = ["DistributedResult", "evaluate", "tasks_of"]


def tasks_of(source: Any, format: str | None, task_rows: int) -> tuple[dict[str, Any], list[Path], list[Any]]:
    """(raw schema of the whole source, its files, the tasks): :func:`qcore.pipeline.tasks.source_of`
    without the sample rows."""
    schema, files, tasks, _ = source_of(source, format, task_rows)
    return schema, files, tasks
