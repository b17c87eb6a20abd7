"""``qcore simulate --replications``: every quantile estimate lies inside its own
interval (both come from the replications' quantiles)."""

from __future__ import annotations

import pytest

from test_cli_simulate import run, strict


@pytest.mark.parametrize("argv", [
    ["--trace", "azure_llm_2023_code", "--service", "lognormal", "--service-mean", "2", "--service-cv", "1.5",
     "--servers", "12", "--replications", "5"],
    ["--rate", "8", "--service", "exponential", "--service-mean", "1", "--servers", "10", "--customers", "20000",
     "--replications", "4"],
])
def test_estimates_lie_inside_their_intervals(argv):
    code, out, err = run("simulate", *argv, "--format", "json")
    assert code == 0, err
    d = strict(out)
    n = 0
    for what in ("response", "wait"):
        for k, v in d[what].items():
            ci = d[f"{what}_ci"][k]
            if v is None or ci is None:
                continue
            assert ci[0] <= v <= ci[1], (what, k, v, ci)
            n += 1
    assert n >= 6
