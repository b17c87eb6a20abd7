"""Every error a user can cause is a qcore.exceptions class, with readable numbers."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import qcore
from qcore import capacity, logs, sim
from qcore.exceptions import InvalidArgumentError, InvalidTypeError, QcoreValueError

PKG = Path(qcore.__file__).parent
#: Modules swept to qcore.exceptions (the others have their own owners and sweeps).
SWEPT = ["_convert", "arrivals", "autoscale", "capacity", "little", "logs", "overload", "plots", "queueing",
         "sim", "sketch", "tail", "_sim_cli"]


def test_invalid_type_error_is_both_a_type_error_and_a_qcore_error():
    assert issubclass(InvalidTypeError, TypeError)
    assert issubclass(InvalidTypeError, InvalidArgumentError)
    assert issubclass(InvalidTypeError, QcoreValueError) and issubclass(InvalidTypeError, ValueError)
    assert InvalidTypeError.__module__ == "qcore.exceptions"


@pytest.mark.parametrize("module", SWEPT)
def test_no_bare_value_or_type_error_is_raised(module):
    tree = ast.parse((PKG / f"{module}.py").read_text())
    bare = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
            and isinstance(n.exc.func, ast.Name) and n.exc.func.id in ("ValueError", "TypeError")]
    assert bare == [], f"{module}.py raises a bare ValueError/TypeError at lines {bare}"


@pytest.mark.parametrize("call, cls", [
    (lambda: qcore.simulate(arrivals=3.0), InvalidTypeError),                      # Python layer
    (lambda: qcore.simulate(sim.Poisson(1.0), sim.Exponential(1.0), servers=1.5), InvalidTypeError),
    (lambda: qcore.simulate(sim.Poisson(1.0), sim.Exponential(1.0), seed=2**64), InvalidArgumentError),
    (lambda: sim.Exponential(mean=-1.0), InvalidArgumentError),                     # the core
    (lambda: sim.MMPP2(rates=(1.0,), switch_rates=(1.0, 1.0)), InvalidArgumentError),
    (lambda: qcore.QuantileSketch.merge_all([1]), InvalidTypeError),                 # the bindings
    (lambda: qcore.simulate(sim.Poisson(1.0), sim.Exponential(1.0), method="quick"), InvalidArgumentError),
    (lambda: capacity.min_servers(1.0, sim.Exponential(0.1), 1.5, 1.0), InvalidArgumentError),
    (lambda: logs.ColumnMapping(start="t", time_unit="fortnights"), InvalidArgumentError),
    (lambda: sim.Renewal.from_rate(1.0, 1.0, family="weibull"), InvalidArgumentError),
])
def test_user_errors_raise_qcore_exceptions(call, cls):
    with pytest.raises(cls) as info:
        call()
    assert type(info.value).__module__ == "qcore.exceptions"


def test_tiny_and_huge_numbers_in_messages_are_short():
    t = np.sort(np.random.default_rng(0).uniform(0, 3600, 100))
    with pytest.raises(InvalidArgumentError) as info:
        qcore.arrival_stats(t, window=1e-300)
    msg = str(info.value)
    assert "1e-300 s" in msg and len(msg) < 120, msg
    with pytest.raises(InvalidArgumentError) as info:
        sim.Exponential(mean=1e300 * 1e10)
    assert len(str(info.value)) < 120
