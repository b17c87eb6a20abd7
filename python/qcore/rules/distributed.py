"""``qcore.rules.distributed`` is the first name of :mod:`qcore.rules.driver`, the one
driver of :func:`qcore.rules.evaluate` (kept so that code using it keeps working).

>>> from qcore.rules import distributed, driver
>>> distributed.evaluate is driver.evaluate
True
"""

from qcore.rules.driver import DistributedResult, evaluate, tasks_of

__all__ = ["DistributedResult", "evaluate", "tasks_of"]
