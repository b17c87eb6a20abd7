"""Real public serving traces shipped with qcore, with their licences and citations.

Each dataset is a file of a public trace, stored compressed (xz) inside the package and
read back byte for byte (its SHA-256 is checked against the original's). Nothing is
downloaded.

=============================  ======================================================
name                           what it is
=============================  ======================================================
``azure_llm_2023_code``        Azure LLM inference trace 2023, code assistant (8,819
                               requests, 57 min; arrival time and token counts)
``azure_llm_2023_conv``        the same, conversation service (19,366 requests)
``mooncake_conversation``      Mooncake FAST'25 conversation trace (Kimi; 12,031
                               requests, ms arrivals, tokens, 512-token prefix hashes)
``mooncake_synthetic``         Mooncake's synthetic trace (Poisson arrivals; a control)
``ragpulse``                   RAGPulse RAG serving trace (7,106 requests over a week)
``gentd26_lora``               Alibaba GenTD26 LoRA serving trace (26,823 requests with
                               execution times and outcomes; research/study use)
``gentd26_lora_2024-12-03``    one day of it (2,728 requests; the demo's slice)
``gentd26_basemodel_update``   GenTD26 base-model loading latencies (cold starts), the
                               repository's ``.tar.gz`` as it is
=============================  ======================================================

Examples
--------
>>> from qcore import datasets
>>> "azure_llm_2023_conv" in datasets.names()
True
>>> df = datasets.load("azure_llm_2023_code")
>>> df.columns, df.height
(['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'], 8819)
>>> datasets.info("azure_llm_2023_code").licence
'CC-BY-4.0'
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcore.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["Dataset", "info", "licence_text", "load", "names", "path", "read_bytes"]

_DATA = Path(__file__).resolve().parent / "data"

_AZURE_CITE = ('Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting", '
               "ISCA 2024")
_AZURE_SRC = ("github.com/Azure/AzurePublicDataset, data/AzureLLMInferenceTrace_{}.csv "
              "(commit b469a113cedca53ddc3bdea71a143dc4b7d8700c)")
_MOONCAKE_CITE = ('Qin et al., "Mooncake: Trading More Storage for Less Computation — A KVCache-centric '
                  'Architecture for Serving LLM Chatbot", USENIX FAST 2025')
_MOONCAKE_SRC = ("github.com/kvcache-ai/Mooncake, FAST25-release/traces/{}_trace.jsonl "
                 "(commit 3b5a594133958449a1feaf1c9e0fc1b553e34a28)")
_GENTD_CITE = ('Lin et al., "Understanding Diffusion Model Serving in Production: A Top-Down Analysis of '
               'Workload, Scheduling, and Resource Efficiency", ACM SoCC 2025')
_GENTD_SRC = ("github.com/alibaba/clusterdata, cluster-trace-v2026-GenAI/{} "
              "(commit 7a6c496e4f4b6ce6150be8f881cb051bf2abff42)")
_GENTD_TERMS = "research/study use"  # the terms of the source's README (no licence file)
_AZURE_MAP = {"start": "TIMESTAMP", "tokens_in": "ContextTokens", "tokens_out": "GeneratedTokens"}
_MOONCAKE_MAP = {"start": "timestamp", "time_unit": "ms", "tokens_in": "input_length",
                 "tokens_out": "output_length"}


@dataclass(frozen=True)
class Dataset:
    """One shipped trace file: where it came from, its licence and how to read it.

    ``mapping`` is the column mapping for :func:`qcore.logs.read_logs` (roles such as
    ``start``, ``tokens_in``), empty when the names are detected as they are.
    """

    name: str
    file: str                 # the file inside the package (``data/...``)
    original: str             # the file name in the source repository
    format: str               # csv, ndjson or tar.gz (one CSV inside)
    rows: int
    sha256: str               # of the original (decompressed) bytes
    description: str
    licence: str              # SPDX identifier, or the source's terms
    licence_file: str         # inside the package's data directory
    citation: str
    source: str
    mapping: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


_REGISTRY: dict[str, Dataset] = {d.name: d for d in (
    Dataset("azure_llm_2023_code", "traces/azure_llm_2023_code.csv.xz", "AzureLLMInferenceTrace_code.csv", "csv",
            8819, "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
            "Azure LLM inference trace 2023, code assistant: arrival time, context and generated tokens "
            "of each request over 57 minutes (no latencies)",
            "CC-BY-4.0", "traces/ATTRIBUTION.md", _AZURE_CITE, _AZURE_SRC.format("code"), _AZURE_MAP),
    Dataset("azure_llm_2023_conv", "traces/azure_llm_2023_conv.csv.xz", "AzureLLMInferenceTrace_conv.csv", "csv",
            19366, "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
            "Azure LLM inference trace 2023, conversation service: arrival time, context and generated "
            "tokens of each request over 58 minutes (no latencies)",
            "CC-BY-4.0", "traces/ATTRIBUTION.md", _AZURE_CITE, _AZURE_SRC.format("conv"), _AZURE_MAP),
    Dataset("mooncake_conversation", "traces/mooncake_conversation.jsonl.xz", "conversation_trace.jsonl",
            "ndjson", 12031, "b8cbb061a85206d729d91cdc2981f43c9e0d99209dce588d3af5f7934408b9df",
            "Mooncake (Kimi) conversation trace: arrival (ms), input/output tokens and 512-token prefix "
            "block hash ids of each request over one hour (no latencies)",
            "Apache-2.0", "traces/LICENSE.mooncake", _MOONCAKE_CITE, _MOONCAKE_SRC.format("conversation"),
            _MOONCAKE_MAP),
    Dataset("mooncake_synthetic", "traces/mooncake_synthetic.jsonl.xz", "synthetic_trace.jsonl", "ndjson",
            3993, "bd070915a98fc0ed264d7cfef2ce746002eb3076a695ec31ba2674c0111ec131",
            "Mooncake synthetic trace: Poisson arrivals (ms) with public-dataset token lengths; a known-"
            "Poisson control, not real traffic",
            "Apache-2.0", "traces/LICENSE.mooncake", _MOONCAKE_CITE, _MOONCAKE_SRC.format("synthetic"),
            _MOONCAKE_MAP),
    Dataset("ragpulse", "traces/ragpulse_0.jsonl.xz", "0_trace.jsonl", "ndjson", 7106,
            "cd371571bef3320907147f8901729e37f412aafb067ec8eb153e2828e1801e65",
            "RAGPulse university Q&A RAG serving trace: submission time (s, as JSON strings), input/output "
            "tokens, component hash ids and session of each request over a week (no latencies)",
            "MIT", "traces/LICENSE.ragpulse", "RAGPulse technical report, arXiv:2511.12979",
            "github.com/flashserve/RAGPulse, data/0_trace.jsonl (commit 3672232d45d749fdcf45dbc38cc77e5264af4a32)",
            {"start": "timestamp", "tokens_in": "input_length", "tokens_out": "output_length"}),
    Dataset("gentd26_lora", "traces/gentd26_lora_request_trace.csv.xz", "lora_request_trace.csv", "csv",
            26823, "263fb88f1095f62d360cf89ded8cfc24fa2c5d111c1b16e7aaa9ccbfc4b37d78",
            "Alibaba GenTD26 Stable Diffusion / LoRA serving trace: creation time, execution time, outcome, "
            "request type and model of each request over 9 days",
            _GENTD_TERMS, "traces/ATTRIBUTION.md", _GENTD_CITE, _GENTD_SRC.format("lora_request_trace.csv")),
    Dataset("gentd26_lora_2024-12-03", "gentd26_lora_2024-12-03.csv", "lora_request_trace.csv (one day)", "csv",
            2728, "a08fd7f5945f102095e1a48fd0c7d06cca205f55868c1701a04e170620db1c04",
            "One day (2024-12-03) of the GenTD26 LoRA trace: the demo's embedded slice",
            _GENTD_TERMS, "ATTRIBUTION.md", _GENTD_CITE, _GENTD_SRC.format("lora_request_trace.csv")),
    Dataset("gentd26_basemodel_update", "traces/gentd26_basemodel_update_latency_anon.tar.gz",
            "basemodel_update_latency_anon.tar.gz", "tar.gz", 7531,
            "4a0cfd5537dc0e7e19340cc8cfc49c26d6aef0ffd85f3ed68db1f4e157811e9d",
            "GenTD26 base-model loading latency (ms) per container and time: the main part of a cold start",
            _GENTD_TERMS, "traces/ATTRIBUTION.md", _GENTD_CITE,
            _GENTD_SRC.format("basemodel_update_latency_anon.tar.gz")),
)}


def names() -> list[str]:
    """The names of the shipped datasets, sorted."""
    return sorted(_REGISTRY)


def info(name: str) -> Dataset:
    """The description, licence, citation and source of dataset ``name``.

    Raises
    ------
    qcore.exceptions.InvalidArgumentError
        ``name`` is not a shipped dataset (the message lists them).
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InvalidArgumentError(f"name: unknown dataset {name!r}; shipped: {', '.join(names())}") from None


def read_bytes(name: str) -> bytes:
    """The original file's bytes (decompressed, checked against the original SHA-256)."""
    d = info(name)
    raw = (_DATA / d.file).read_bytes()
    data = lzma.decompress(raw) if d.file.endswith(".xz") else raw
    if hashlib.sha256(data).hexdigest() != d.sha256:  # pragma: no cover - a damaged installation
        raise OSError(f"the packaged file of dataset {name!r} is damaged (SHA-256 differs); reinstall qcore")
    return data


def path(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """A file holding the original bytes, under its original name, for tools that read
    paths (``qcore report``, :func:`qcore.logs.read_logs`).

    The file is written once into ``directory`` (default ``$QCORE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/qcore/datasets``, else ``~/.cache/qcore/datasets``) in a
    sub-directory named after its hash, and reused while its bytes are intact.
    """
    d = info(name)
    if d.format == "csv" and not d.file.endswith(".xz"):
        return _DATA / d.file    # shipped uncompressed: read in place
    base = Path(directory) if directory is not None else _cache_dir()
    out = base / d.sha256[:16] / d.original
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == d.sha256:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(read_bytes(name))
    tmp.replace(out)             # atomic: a reader never sees half a file
    return out


def _cache_dir() -> Path:
    env = os.environ.get("QCORE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "qcore" / "datasets"


def load(name: str) -> pl.DataFrame:
    """Dataset ``name`` as a polars DataFrame of its original columns.

    CSV and JSON-lines files are parsed as they are (Azure's ``TIMESTAMP`` stays a
    string; :func:`qcore.logs.read_logs` with :attr:`Dataset.mapping` gives canonical
    columns); the ``.tar.gz`` dataset gives the CSV inside it.

    Examples
    --------
    >>> from qcore import datasets
    >>> datasets.load("mooncake_conversation").columns
    ['timestamp', 'input_length', 'output_length', 'hash_ids']
    """
    import polars as pl

    d = info(name)
    data = read_bytes(name)
    if d.format == "csv":
        return pl.read_csv(io.BytesIO(data), infer_schema_length=None)
    if d.format == "ndjson":
        return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        member = next(m for m in tf.getmembers() if m.isfile() and m.name.endswith(".csv"))
        fh = tf.extractfile(member)
        assert fh is not None
        return pl.read_csv(io.BytesIO(fh.read()), infer_schema_length=None)


def licence_text(name: str) -> str:
    """The licence or terms file that covers dataset ``name`` (with its attribution)."""
    return (_DATA / info(name).licence_file).read_text(encoding="utf-8")
