"""Where request logs come from: paths and globs, file formats, the lazy scan of the raw
rows (with the shipped dataset it came from), and the fingerprint of what was read."""

from __future__ import annotations

import glob as _glob
import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from qcore.exceptions import InvalidArgumentError, QcoreValueError


class LogReadError(QcoreValueError):
    """A log file cannot be read (empty, not the format it claims, unreadable); the
    message names the file."""



def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand local paths and globs (``logs/*.parquet``, ``**``) into a sorted file list.

    Raises ``FileNotFoundError`` naming the pattern when nothing matches.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        s = os.fspath(p)
        if any(ch in s for ch in "*?["):
            hits = sorted(_glob.glob(s, recursive=True))
            if not hits:
                raise FileNotFoundError(f"paths: no file matches {s!r}")
            out.extend(Path(h) for h in hits if os.path.isfile(h))
        elif os.path.isdir(s):
            hits = sorted(
                h for ext in ("parquet", "csv", "ndjson", "jsonl", "json")
                for h in _glob.glob(os.path.join(s, f"*.{ext}"))
            )
            if not hits:
                raise FileNotFoundError(f"paths: directory {s!r} holds no .parquet/.csv/.ndjson/.jsonl file")
            out.extend(Path(h) for h in hits)
        elif os.path.isfile(s):
            out.append(Path(s))
        else:
            raise FileNotFoundError(f"paths: {s!r} does not exist")
    if not out:
        raise FileNotFoundError("paths: no input file given")
    seen: dict[Path, Path] = {}
    for f in out:
        key = f.resolve()
        if key in seen:
            raise InvalidArgumentError(
                f"paths: {f} is given twice (also as {seen[key]}); each file would be counted twice")
        seen[key] = f
    return out


def format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        f = fmt.lower()
        if f in ("jsonl", "json"):
            f = "ndjson"
        if f not in ("parquet", "csv", "ndjson"):
            raise InvalidArgumentError(f"format must be 'parquet', 'csv' or 'ndjson', got {fmt!r}")
        return f
    suf = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() in (".gz", ".zst") else path.suffix.lower()
    if suf.endswith((".parquet", ".pq")):
        return "parquet"
    if suf.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if suf.endswith((".ndjson", ".jsonl", ".json")):
        return "ndjson"
    raise InvalidArgumentError(
        f"cannot tell the format of {str(path)!r} from its extension; pass format='parquet', 'csv' or 'ndjson'"
    )


def scan_raw(paths: Any, *, format: str | None = None) -> tuple[pl.LazyFrame, list[Path]]:
    """Scan files (paths and globs) into one LazyFrame with the source's own columns."""
    files = expand_paths(paths)
    frames = []
    schemas: list[dict[str, Any]] = []
    for f in files:
        kind = format_of(f, format)
        try:
            empty = f.stat().st_size == 0
        except OSError as e:
            raise LogReadError(f"{f}: cannot be read: {e.strerror or e}") from None
        if empty:
            word = {"csv": "CSV", "ndjson": "NDJSON", "parquet": "Parquet file"}[kind]
            raise LogReadError(f"{f}: cannot be read as {kind}: empty {word} (0 bytes)")
        if kind == "parquet":
            lf = pl.scan_parquet(f)
        elif kind == "csv":
            lf = pl.scan_csv(f, infer_schema_length=10_000,
                             separator="\t" if f.suffix.lower() == ".tsv" else ",")
        else:
            lf = pl.scan_ndjson(f, infer_schema_length=10_000)
        try:
            schemas.append(dict(lf.collect_schema()))
        except pl.exceptions.PolarsError as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LogReadError(f"{f}: cannot be read as {kind}: {msg}") from None
        frames.append(lf)
    if len(frames) == 1:
        _mark_dataset(frames[0], files[0])
        return frames[0], files
    # A nested column (lists, structs) whose type differs between files cannot be
    # concatenated; no role reads nested values, so it is left out.
    nested = {c for sc in schemas for c, t in sc.items() if t.is_nested()}
    clash = sorted(c for c in nested if len({str(sc[c]) for sc in schemas if c in sc}) > 1)
    if clash:
        frames = [lf.drop([c for c in clash if c in sc]) for lf, sc in zip(frames, schemas, strict=True)]
    out = pl.concat(frames, how="diagonal_relaxed")
    if len({frozenset(sc) for sc in schemas}) > 1:   # the mapping's columns must be in every file
        setattr(out, _COLUMNS_ATTR, [(f, frozenset(sc)) for f, sc in zip(files, schemas, strict=True)])
    return out, files


_DATASET_ATTR = "_qcore_dataset"
_RECOGNISED: dict[tuple[str, int, float], str | None] = {}


def _mark_dataset(lf: pl.LazyFrame, path: Path) -> None:
    """Tag a scan of a shipped dataset's file (same name and SHA-256 as the original)
    so that :func:`mapping_for` reads it with the dataset's mapping (Mooncake's
    millisecond clock, Azure's column names)."""
    from qcore import datasets

    try:
        st = path.stat()
    except OSError:
        return
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _RECOGNISED:
        name = None
        for n in datasets.names():
            d = datasets.info(n)
            if d.mapping and path.name in (d.original, Path(d.file).name) and sha256_file(path) == d.sha256:
                name = n
                break
        _RECOGNISED[key] = name
    if _RECOGNISED[key] is not None:
        setattr(lf, _DATASET_ATTR, _RECOGNISED[key])


_COLUMNS_ATTR = "_qcore_columns"


def _dataset_of(raw: Any) -> str | None:
    v = getattr(raw, _DATASET_ATTR, None)
    return v if isinstance(v, str) else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return str(v)


# --------------------------------------------------------------------------------------
# fingerprints
# --------------------------------------------------------------------------------------

@dataclass
class DataFingerprint:
    """What a decision was computed from: enough to find and verify the same data.

    ``content_hash`` is the SHA-256 of the source files' SHA-256 digests (in order) when
    the data came from files, otherwise of the canonical columns' names and values
    (numbers as little-endian float64, text as its UTF-8 bytes and their lengths).
    """

    sources: list[dict[str, Any]]
    rows: int
    time_min: float | None
    time_max: float | None
    content_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_files(cls, files: Sequence[Path | str], digests: Sequence[str], rows: int, time_min: float | None,
                 time_max: float | None) -> DataFingerprint:
        """The fingerprint of data read from ``files`` whose SHA-256 are ``digests`` (in
        order): their paths, sizes and digests, and the SHA-256 of the digests in turn.
        Every path that reads files (in one go, in batches or as tasks) builds it here.

        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "log.csv"
        >>> _ = p.write_text("ts,latency\\n1,0.5\\n")
        >>> fp = DataFingerprint.of_files([p], [sha256_file(Path(p))], 1, 1.0, 1.0)
        >>> fp.sources[0]["bytes"], len(fp.content_hash)
        (17, 64)
        """
        h = hashlib.sha256()
        srcs = []
        for p, d in zip(files, digests, strict=True):
            srcs.append({"path": str(p), "bytes": os.path.getsize(p), "sha256": d})
            h.update(d.encode())
        return cls(srcs, rows, time_min, time_max, h.hexdigest())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(frame: pl.DataFrame, sources: Sequence[Path] = ()) -> DataFingerprint:
    """Fingerprint a canonical frame and (optionally) the files it was read from."""
    tmin = tmax = None
    if "start" in frame.columns and frame.height:
        tmin = frame.get_column("start").min()
        tmax_col = "end" if "end" in frame.columns else "start"
        tmax = frame.get_column(tmax_col).max()
    t0 = float(tmin) if tmin is not None else None  # type: ignore[arg-type]
    t1 = float(tmax) if tmax is not None else None  # type: ignore[arg-type]
    if sources:
        return DataFingerprint.of_files(sources, [sha256_file(Path(p)) for p in sources], frame.height, t0, t1)
    h = hashlib.sha256()
    for name in sorted(frame.columns):
        s = frame.get_column(name)
        h.update(name.encode())
        if s.dtype.is_numeric():
            h.update(s.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype("<f8").tobytes())
        elif s.dtype.is_nested():   # per-token lists
            h.update(json.dumps(s.to_list()).encode())
        else:   # the UTF-8 bytes of the values, and their lengths (a null's is 2^32 - 1)
            st = s.cast(pl.String)
            h.update(st.str.len_bytes().fill_null(2**32 - 1).cast(pl.UInt32).to_numpy().astype("<u4").tobytes())
            h.update((st.str.join("").item() or "").encode())
    return DataFingerprint([], frame.height, t0, t1, h.hexdigest())
