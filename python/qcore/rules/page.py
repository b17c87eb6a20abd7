"""The decision page: a rule decision table as one self-contained HTML file (what
``qcore check --html`` writes), in the report's style.

Each row gives the rule (id, version, owner), the group, the metric's value with its
interval, the comparison with the threshold, the sample size, the status and the action,
colour-coded; each row links to its evidence record, shown in full below the table.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from qcore.rules.engine import overall_action

__all__ = ["decisions_html"]


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        from qcore.report._html import _num

        return _num(v, 4, strip=True)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def decisions_html(decisions: pl.DataFrame, path: str | Path | None = None, *, title: str = "qcore check",
                   contract: Any = None, command: str | None = None) -> str:
    """The decision table as a self-contained HTML page; written to ``path`` when given.

    ``contract`` is the logs' :class:`qcore.logs.ContractReport` (or its dict), shown in
    the header with the data fingerprint of the first evidence record; ``command`` is the
    command line shown there.

    >>> import qcore.rules as qr, polars as pl
    >>> log = pl.DataFrame({"ts": [float(i) for i in range(200)], "latency": [0.1] * 200})
    >>> d = qr.evaluate(log, [{"id": "p99", "version": "1", "owner": "sre", "metric": "p99",
    ...                        "threshold": 1.0}], now=300.0)
    >>> page = decisions_html(d)
    >>> 'id="decisions"' in page and "accept" in page
    True
    """
    from qcore.report._html import header, page

    if not isinstance(decisions, pl.DataFrame) or "status" not in decisions.columns:
        from qcore.exceptions import InvalidArgumentError

        raise InvalidArgumentError("decisions must be the decision table of qcore.rules.evaluate")
    rows = decisions.to_dicts()
    records = [json.loads(r["evidence"]) if r.get("evidence") else None for r in rows]
    data = next((rec.get("data") for rec in records if rec and rec.get("data")), None) or {}
    c = contract.to_dict() if hasattr(contract, "to_dict") else (contract or {})
    action = overall_action(decisions)
    head = ["rule", "version", "owner", "group", "metric", "value [interval]", "comparison", "threshold", "n",
            "status", "action", "message", "evidence"]
    body = []
    for i, r in enumerate(rows):
        value = _cell(r["value"])
        if r.get("ci_lo") is not None or r.get("ci_hi") is not None:
            value += f" [{_cell(r.get('ci_lo'))}, {_cell(r.get('ci_hi'))}]"
        msg = r.get("message") or ""
        if r.get("response"):
            msg += f" ({r['response']})"
        ev = f'<a href="#ev-{i}">record</a>' if records[i] is not None else "–"
        cells = [r["rule_id"], r["rule_version"], r["owner"], r["group"], r["metric"], value,
                 r.get("comparison") or "", _cell(r.get("threshold")),
                 f"{_cell(r.get('n'))} (min {_cell(r.get('min_n'))})"]
        tds = "".join(f'<td class="l">{html.escape(_cell(v))}</td>' for v in cells[:5])
        tds += "".join(f"<td>{html.escape(str(v))}</td>" for v in cells[5:])
        tds += (f'<td class="l s-{html.escape(str(r["status"]))}">{html.escape(str(r["status"]))}</td>'
                f'<td class="l a-{html.escape(str(r["action"]))}">{html.escape(str(r["action"]))}</td>'
                f'<td class="l">{html.escape(msg)}</td><td class="l">{ev}</td>')
        body.append(f'<tr class="decision" data-rule="{html.escape(str(r["rule_id"]))}">{tds}</tr>')
    ths = "".join(f'<th class="l">{html.escape(h)}</th>' for h in head)
    evidence = "".join(
        # the id inside the <details>: following a row's link opens its record
        f'<details class="evidence"><summary>{html.escape(str(rows[i]["rule_id"]))} '
        f'[{html.escape(str(rows[i]["group"]))}]</summary><pre id="ev-{i}">{html.escape(json.dumps(rec, indent=1))}'
        "</pre></details>" for i, rec in enumerate(records) if rec is not None)
    t0 = data.get("time_min")
    t1 = data.get("time_max")
    top = header(title, fingerprint=data, t0=t0, t1=t1, mapping_lines=[], contract=c, command=command,
                 extra=[("overall action", f'<span class="a-{html.escape(action)}" id="overall">'
                                           f"{html.escape(action)}</span> over {len(rows):,} decisions")])
    doc = page(title, top + f'\n<h2>Decisions</h2>\n<div class="scroll"><table id="decisions"><thead><tr>{ths}'
                             f'</tr></thead><tbody>{"".join(body)}</tbody></table></div>\n'
                             f"<h2>Evidence records</h2>\n{evidence or '<p>none</p>'}")
    if path is not None:
        Path(path).write_text(doc, encoding="utf-8")
    return doc
