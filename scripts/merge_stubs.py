"""Assemble python/qcore/_qcore.pyi from per-area stub fragments (one-off helper)."""
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
frags = sorted((root / "stubs").glob("*.pyi"))
imports: dict[str, set[str]] = {}
plain: set[str] = set()
bodies = []
for f in frags:
    lines = f.read_text().splitlines()
    body = []
    for line in lines:
        m = re.match(r"^from (\S+) import (.+)$", line)
        if m and "(" not in line:
            imports.setdefault(m.group(1), set()).update(x.strip() for x in m.group(2).split(","))
            continue
        if re.match(r"^import \S+", line):
            plain.add(line)
            continue
        body.append(line)
    text = "\n".join(body).strip("\n")
    # drop a leading module docstring of a fragment
    text = re.sub(r'^"""(.|\n)*?"""\n', "", text).strip("\n")
    bodies.append(f"# ---- {f.stem} " + "-" * (70 - len(f.stem)) + "\n\n" + text)
head = ['"""Type stubs for the native extension ``qcore._qcore``.', "", "Users import the public API from ``qcore``; these names are private building", 'blocks wrapped by the Python layer."""', ""]
future = imports.pop("__future__", None)
if future:
    head.append("from __future__ import " + ", ".join(sorted(future)))
for mod in sorted(imports):
    head.append(f"from {mod} import " + ", ".join(sorted(imports[mod])))
head += sorted(plain)
head += ["", "__version__: str", "",
         "class QcoreValueError(ValueError): ...",
         "class InvalidArgumentError(QcoreValueError): ...",
         "class IncompatibleSketchError(QcoreValueError): ...",
         "class DeserializationError(QcoreValueError): ...",
         "class UnstableSystemError(QcoreValueError): ...", ""]
out = "\n".join(head) + "\n" + "\n\n".join(bodies) + "\n"
(root / "python" / "qcore" / "_qcore.pyi").write_text(out)
print(f"wrote {len(out)} bytes from {len(frags)} fragments", file=sys.stderr)
