"""``qcore simulate`` through the installed command: figures over the arrival window,
trace replay, renewal and MMPP arrivals, batching, patience and replications."""

from __future__ import annotations

import math
import subprocess
from typing import Any

import numpy as np
import polars as pl
import pytest

import qcore
from cli_helpers import qcore_command, strict
from qcore import sim


def run(*argv: str) -> tuple[int, str, str]:
    r = subprocess.run([qcore_command(), *argv], capture_output=True, text=True, timeout=600, check=False)
    return r.returncode, r.stdout, r.stderr


# ------------------------------------------------------------------ the arrival window

ISSUE = ["--rate", "5000", "--servers", "2600", "--service", "lognormal", "--service-cv", "2",
         "--service-mean", "0.5"]


def test_throughput_and_utilization_cover_the_arrival_window_not_the_drain():
    # The issue's example printed throughput 2111/s and utilization 0.41: the window
    # included the drain after the last arrival (long with lognormal cv 2 service).
    code, out, err = run("simulate", *ISSUE, "--format", "json")
    assert code == 0, err
    d = strict(out)
    rho = 5000 * 0.5 / 2600
    assert d["stable"] is True and d["offered_load"] == pytest.approx(2500.0)
    assert d["duration"] > 1.3 * d["window"]  # the drain is long ...
    assert d["throughput"] == pytest.approx(5000.0, rel=0.02)  # ... and left out
    assert d["utilization"] == pytest.approx(rho, rel=0.03)
    # Text output says the same.
    code, out, _ = run("simulate", *ISSUE)
    assert code == 0
    line = next(x for x in out.splitlines() if "utilization" in x)
    assert float(line.split("utilization ")[1].split(",")[0]) == pytest.approx(rho, rel=0.03)


def test_window_figures_match_the_analytic_values_within_their_intervals():
    # Replications: Student-t intervals that must hold the exact values (Poisson
    # arrivals at 5000/s; offered utilization 2500/2600 on any service distribution).
    # The warm-up covers 20 s: the heavy tail fills the servers slowly from empty.
    r = qcore.simulate(sim.Poisson(5000.0), sim.LogNormal(mean=0.5, cv=2.0), servers=2600,
                       customers=200_000, warmup=100_000, replications=6, seed=7)
    lo, _, hi = r.intervals["throughput"]
    assert lo <= 5000.0 <= hi and hi - lo < 0.02 * 5000
    lo, _, hi = r.intervals["utilization"]
    assert lo <= 2500 / 2600 <= hi and hi - lo < 0.05
    # Little's law with the offered rate on the window's mean number in system.
    lo, _, hi = r.intervals["mean_in_system"]
    assert lo * 0.98 <= 5000 * r.mean_response <= hi * 1.02
    # Same figures on the event loop (the general path).
    e = qcore.simulate(sim.Poisson(5000.0), sim.LogNormal(mean=0.5, cv=2.0), servers=2600,
                       customers=50_000, warmup=10_000, method="event")
    f = qcore.simulate(sim.Poisson(5000.0), sim.LogNormal(mean=0.5, cv=2.0), servers=2600,
                       customers=50_000, warmup=10_000, method="fast")
    for k in ("throughput", "utilization", "mean_in_system", "mean_in_queue", "window", "duration"):
        assert getattr(e, k) == pytest.approx(getattr(f, k), rel=1e-9), k


def test_an_overloaded_queue_reports_its_capacity_as_throughput():
    # Twice the capacity: the window's departures are one per mean service time.
    code, out, _ = run("simulate", "--rate", "1", "--servers", "1", "--service-mean", "2", "--customers",
                       "20000", "--format", "json")
    assert code == 6
    d = strict(out)
    assert d["throughput"] == pytest.approx(0.5, rel=0.03)
    assert d["utilization"] > 0.999
    assert math.isfinite(d["window"])


# ------------------------------------------------------------------ breadth: the Python API's reach

def sim_json(*argv: str, expect: int = 0) -> Any:
    code, out, err = run("simulate", *argv, "--format", "json")
    assert code == expect, (argv, code, err)
    assert "Traceback" not in err
    return strict(out)


def within(ci: list[float] | None, value: float, slack: float = 0.0) -> bool:
    assert ci is not None
    lo, hi = ci
    return lo - slack <= value <= hi + slack


def test_renewal_arrivals_match_the_exact_gi_m_1_queue():
    # Gamma gaps (cv 0.5: shape 4) at 0.8/s, exponential service at mu = 1. GI/M/1: the
    # arrival finds the server busy with probability sigma, the root in (0, 1) of
    # sigma = A*(mu (1 - sigma)), A*(s) = (1 + s theta)^-k; mean response 1/(mu(1-sigma)).
    k, theta, mu = 4.0, 1.25 / 4.0, 1.0
    sigma = 0.5
    for _ in range(200):
        sigma = (1.0 + mu * (1.0 - sigma) * theta) ** -k
    exact = 1.0 / (mu * (1.0 - sigma))
    d = sim_json("--rate", "0.8", "--arrival-cv", "0.5", "--customers", "100000", "--replications", "8")
    assert d["arrivals"] == {"kind": "renewal", "rate": 0.8, "cv": 0.5, "family": "gamma"}
    assert within(d["intervals"]["mean_response"], exact)
    assert within(d["intervals"]["p_wait"], sigma)
    assert within(d["intervals"]["throughput"], 0.8)


def test_mmpp_arrivals_keep_their_mean_rate_and_queue_more_than_poisson():
    d = sim_json("--mmpp-rates", "1,9", "--mmpp-switch", "0.1,0.3", "--servers", "4", "--customers", "100000",
                 "--replications", "6")
    assert d["arrivals"]["kind"] == "mmpp2" and d["arrivals"]["rate"] == pytest.approx(3.0)
    assert within(d["intervals"]["throughput"], 3.0)
    assert within(d["intervals"]["utilization"], 0.75)
    # The same mean rate as Poisson arrivals: M/M/4 at 3/s has mean response 1.5094 s
    # (Erlang C); the bursts make it many times longer.
    assert d["intervals"]["mean_response"][0] > 3 * 1.5094


def test_batching_forms_full_batches_on_deterministic_arrivals():
    # One arrival a second (renewal with cv 0), batches of 4 taking 0.1 + 0.1 n: every
    # batch is full, the k-th request of a batch waits 3 - k seconds (mean 1.5), and
    # the response adds the 0.5 s batch.
    d = sim_json("--rate", "1", "--arrival-cv", "0", "--batch-size", "4", "--batch-wait", "100",
                 "--batch-time", "0.1,0.1", "--customers", "400", "--warmup", "0")
    assert d["service"]["kind"] == "batching" and d["completed"] == 400
    assert d["mean_wait"] == pytest.approx(1.5, abs=1e-9)
    assert d["mean_response"] == pytest.approx(2.0, abs=1e-9)
    # Offered load: 1/s against full batches at 4 per 0.5 s.
    assert d["offered_load"] == pytest.approx(0.125)
    code, _, err = run("simulate", "--rate", "1", "--batch-size", "4", "--batch-time", "0.1,0.1",
                       "--service-mean", "2")
    assert code == 1 and err.strip() == ("qcore simulate: error: --service-mean does not apply with batching: "
                                         "--batch-time sets the service time of a batch")


def _mm1_abandon(lam: float, mu: float, gamma: float) -> float:
    """P(abandon) of M/M/1+M: birth lam, death mu + (n - 1) gamma from state n >= 1."""
    p = [1.0]
    for n in range(1, 400):
        p.append(p[-1] * lam / (mu + (n - 1) * gamma))
    total = sum(p)
    throughput = mu * (1.0 - p[0] / total)
    return 1.0 - throughput / lam


def test_patience_matches_the_exact_abandonment_probability():
    exact = _mm1_abandon(2.0, 1.0, 1.0)  # an overloaded server whose queue patience bounds
    d = sim_json("--rate", "2", "--patience", "1", "--customers", "100000", "--replications", "6")
    assert d["overloaded"] is True and d["stable"] is True  # exit 0: abandonment bounds the queue
    assert within(d["intervals"]["p_timeout"], exact)
    assert d["timed_out"] > 0 and d["unfinished"] == 0
    code, out, _ = run("simulate", "--rate", "2", "--patience", "1", "--customers", "20000")
    assert code == 0 and out.startswith("note: overloaded: offered load 2 >= 1 server(s)")
    assert "timed out" in out


def test_a_finite_waiting_room_matches_erlang_blocking():
    # M/M/1/K with K = 1 + 4 places: P(block) = (1 - rho) rho^K / (1 - rho^(K+1)).
    rho, k = 0.8, 5
    exact = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    d = sim_json("--rate", "0.8", "--queue-capacity", "4", "--customers", "100000", "--replications", "6")
    assert within(d["intervals"]["p_block"], exact)


def test_trace_replay_of_a_log_file_is_exact(tmp_path):
    # A log with irregular arrivals and its latencies replayed as service on one server:
    # Lindley's recursion gives every wait exactly.
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.exponential(1.0, 500)) + 1.7e9
    s = rng.exponential(0.8, 500)
    log = tmp_path / "log.csv"
    pl.DataFrame({"timestamp": t, "latency": s}).sample(fraction=1.0, shuffle=True, seed=1).write_csv(log)
    w = np.zeros(500)
    for i in range(1, 500):
        w[i] = max(0.0, w[i - 1] + s[i - 1] - (t[i] - t[i - 1]))
    d = sim_json("--trace", str(log), "--service", "trace")
    assert d["arrivals"]["kind"] == "trace" and d["arrivals"]["requests"] == 500
    assert d["arrived"] == d["completed"] == 500
    assert d["mean_wait"] == pytest.approx(float(w.mean()), rel=1e-9)
    assert d["mean_response"] == pytest.approx(float((w + s).mean()), rel=1e-9)
    assert d["arrivals"]["rate"] == pytest.approx(499 / (t[-1] - t[0]))
    # Without --service trace, a distribution serves the trace's arrivals.
    d = sim_json("--trace", str(log), "--service-mean", "0.5", "--servers", "2")
    assert d["service"]["kind"] == "exponential" and d["arrived"] == 500
    # A trace without latencies cannot replay them.
    bare = tmp_path / "bare.csv"
    pl.DataFrame({"timestamp": t}).write_csv(bare)
    code, _, err = run("simulate", "--trace", str(bare), "--service", "trace")
    assert code == 1 and "has no latency" in err and "Traceback" not in err


def test_trace_replay_of_a_shipped_dataset_uses_its_units():
    # Mooncake's timestamps are milliseconds: 12,031 requests in about an hour (3.4/s).
    d = sim_json("--trace", "mooncake_conversation", "--servers", "8", "--service-mean", "1")
    a = d["arrivals"]
    assert a["dataset"] == "mooncake_conversation" and a["requests"] == 12031
    assert a["rate"] == pytest.approx(3.4, rel=0.02) and a["time_unit"] == "ms"
    assert d["throughput"] == pytest.approx(a["rate"], rel=0.02)
    code, _, err = run("simulate", "--trace", "no_such_trace")
    assert code == 1 and "neither a file nor a shipped dataset" in err


def test_replications_give_intervals_in_text_and_json_and_scenarios_reach_every_key(tmp_path):
    d = sim_json("--rate", "0.5", "--customers", "20000")
    assert d["replications"] == 1 and d["intervals"]["mean_response"] is None
    assert d["response_ci"]["p99"] is None
    d = sim_json("--rate", "0.5", "--customers", "20000", "--replications", "5", "--threads", "2")
    lo, hi = d["intervals"]["mean_response"]
    assert lo < d["mean_response"] < hi and within(d["intervals"]["mean_response"], 2.0)  # M/M/1: 1/(1-0.5)
    lo, hi = d["response_ci"]["p99"]
    assert lo < d["response"]["p99"] < hi
    # M/M/1 response is exponential with rate mu - lambda: p99 = ln(100) / 0.5.
    assert within(d["response_ci"]["p99"], math.log(100) / 0.5, slack=0.02 * 9.21)
    code, out, _ = run("simulate", "--rate", "0.5", "--customers", "20000", "--replications", "5")
    assert code == 0 and "in 5 replications" in out and "95% intervals" in out
    sc = tmp_path / "s.toml"
    sc.write_text('mmpp_rates = [1.0, 9.0]\nmmpp_switch = [0.1, 0.3]\nservers = 4\ncustomers = 20000\n'
                  'patience = 5.0\nreplications = 2\n')
    d = sim_json("--scenario", str(sc))
    assert d["arrivals"]["kind"] == "mmpp2" and d["servers"] == 4 and d["replications"] == 2
    assert d["timed_out"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--rate", "1", "--arrival-cv", "1", "--mmpp-rates", "1,2"], "different arrival processes"),
    (["--mmpp-rates", "1,2"], "--mmpp-rates needs --mmpp-switch"),
    (["--mmpp-rates", "1", "--mmpp-switch", "1,1"], "--mmpp-rates takes two numbers"),
    (["--rate", "-1"], "--rate must be a positive number"),
    (["--rate", "1", "--batch-size", "4"], "batching needs both"),
    (["--rate", "1", "--service", "trace"], "--service trace needs --trace"),
    (["--rate", "1", "--replications", "0"], "--replications must be an integer of at least 1"),
    (["--rate", "1", "--confidence", "1.5"], "--confidence must be in (0, 1)"),
    (["--rate", "1", "--patience", "0"], "--patience must be a positive number"),
])
def test_bad_flags_are_one_line_errors(argv, message):
    code, out, err = run("simulate", *argv)
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, _ = run("simulate", *argv, "--format", "json")
    assert code == 1 and message in strict(out)["message"]


def test_the_default_warm_up_covers_the_relaxation_time():
    # Near saturation the queue takes long to forget its empty start: the default
    # warm-up grows to five relaxation times (capacity.run_length), at most customers.
    from qcore import capacity

    d = sim_json("--rate", "0.95", "--customers", "20000")
    want = capacity.run_length(0.95, sim.Exponential(1.0), 1, customers=20000, warmup=1000)
    assert want is not None and d["warmup"] == min(want[1], 20000) > 1000
    d = sim_json("--rate", "0.5", "--customers", "20000")
    assert d["warmup"] == 1000   # customers / 20 when that is longer
    d = sim_json("--rate", "0.5", "--customers", "20000", "--warmup", "7")
    assert d["warmup"] == 7
