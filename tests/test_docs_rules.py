"""docs/rules.md: every example parses and runs through `qcore check`; every field and
metric of the rules schema is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import qcore.logs as ql
from cli_helpers import qcore_cli, strict
from qcore.rules import burn, model

DOC = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
NOW = 1_750_000_000.0


def examples() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    n = 6000
    t = np.sort(rng.uniform(NOW - 7200, NOW - 60, n))
    df = pl.DataFrame({
        "ts": t,
        "latency": rng.lognormal(np.log(0.2), 0.6, n),
        "status": rng.choice([200] * 99 + [503], n),
        "route": rng.choice(["/chat", "/embed"], n),
        "model_version": rng.choice(["v1", "v2"], n),
        "tokens_in": rng.integers(10, 2000, n),
        "tokens_out": rng.integers(1, 500, n),
        "cost": rng.uniform(0, 0.01, n),
    })
    # an LLM serving log also carries the first token (a fraction of the latency, in ms)
    df = df.with_columns(time_to_first_token_ms=pl.col("latency") * rng.uniform(0.05, 0.5, n) * 1e3)
    path = tmp_path_factory.mktemp("rules_doc") / "log.parquet"
    df.write_parquet(path)
    return path


def test_the_page_has_examples():
    assert len(examples()) >= 5


@pytest.mark.parametrize("i", range(len(examples())))
def test_every_example_parses_and_runs(i, log, tmp_path):
    text = examples()[i]
    f = tmp_path / "rules.toml"
    f.write_text(text)
    cfg = model.load_config(f)
    if cfg.get("rule"):
        rules = model.parse_rules(cfg)
        assert rules
    defaults = {k: v for k, v in cfg.get("defaults", {}).items() if k in ("owner", "version")}
    for spec in cfg.get("slo", []):
        burn.check_slo({**defaults, **spec})
    if "contract" in cfg:
        ql.Contract.from_dict(cfg["contract"])
    if "mapping" in cfg:
        ql.ColumnMapping.from_dict(cfg["mapping"])
    code, out, err = qcore_cli("check", str(log), "--rules", str(f), "--now", str(NOW), "--format", "json")
    assert "Traceback" not in err, err
    assert code in (0, 3, 4, 5), (code, err)
    d = strict(out)
    assert d["decisions"], text
    # Every rule of the example met the columns it needs in a realistic log.
    assert not [x for x in d["decisions"] if "columns missing" in (x.get("message") or "")], d["decisions"]


def _documented(names: set[str]) -> set[str]:
    text = DOC.read_text()
    return {n for n in names if f"`{n}`" not in text}


def test_every_field_and_metric_is_documented():
    assert _documented({f.name for f in dataclasses.fields(model.Rule)}) == set()
    assert _documented(set(model.METRICS)) == set()
    assert _documented(set(burn._SLO_KEYS)) == set()
    assert _documented({f.name for f in dataclasses.fields(ql.Contract)} - {"row_checks"}) == set()
    assert _documented({f.name for f in dataclasses.fields(ql.ColumnMapping)} - {"detected", "warnings"}) == set()
    assert _documented(set(model.STATUSES) | set(model.ACTIONS)) == set()
    assert _documented(set(model.SEVERITY_ACTION)) == set()
