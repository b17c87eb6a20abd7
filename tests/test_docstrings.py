"""Every docstring example of the package runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import qcore
from qcore import sim

OPTIONAL = {"qcore.dask": "dask", "qcore.rules.driver": "dask", "qcore.plots": "matplotlib"}
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(qcore.__path__, "qcore.") if not m.name.startswith("qcore._")
)


def test_every_module_is_listed():
    assert {"qcore.sketch", "qcore.rules.engine", "qcore.rules.driver", "qcore.rules.distributed", "qcore.pipeline.analysis", "qcore.outofcore", "qcore.dask"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, extraglobs={"qcore": qcore, "sim": sim}, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples of {name} failed"
