"""The one JSON encoder of the package: strict JSON (RFC 8259) for the CLI, the report and
the evidence records. NaN and infinities become ``null``; numpy arrays and scalars, paths,
sets, tuples and objects with ``to_dict`` become their JSON forms."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def jsonable(o: Any) -> Any:
    """``o`` as plain JSON values (non-finite floats as ``None``), recursively."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if o is None or isinstance(o, (str, bool, int)):
        return o
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in (sorted(o, key=str) if isinstance(o, (set, frozenset)) else o)]
    if hasattr(o, "tolist"):                   # numpy arrays and scalars
        return jsonable(o.tolist())
    if hasattr(o, "item"):
        return jsonable(o.item())
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return jsonable(o.to_dict())
    return str(o)


def dumps(o: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``o`` (``json.dumps`` keywords such as ``indent`` pass through).

    >>> dumps({"p99": float("nan"), "n": 3})
    '{"p99": null, "n": 3}'
    """
    return json.dumps(jsonable(o), allow_nan=False, **kwargs)
