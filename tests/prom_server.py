"""Test helpers: a real Prometheus server on loopback, and an exporter of native histograms.

``prometheus_client`` (0.26) has no native-histogram metric type, and its only native
exposition is OpenMetrics 2.0 text, which Prometheus 2.x cannot parse: Prometheus (≥ 2.40,
``--enable-feature=native-histograms``) scrapes native histograms only from the protobuf
exposition (``application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
encoding=delimited``). :class:`NativeExporter` writes that format by hand (the few fields
of ``io.prometheus.client.MetricFamily`` it needs, from Prometheus' ``metrics.proto``), and
serves native histograms and counters that a test drives with known observations.
"""

from __future__ import annotations

import math
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from qcore import prom
from qcore.exceptions import PrometheusError

PROTOBUF = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- protobuf encoding (proto2 wire format) --------------------------------------------


def _varint(n: int) -> bytes:
    assert n >= 0
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _key(fieldno: int, wire: int) -> bytes:
    return _varint(fieldno << 3 | wire)


def _uint(fieldno: int, v: int) -> bytes:
    return _key(fieldno, 0) + _varint(v)


def _sint(fieldno: int, v: int) -> bytes:
    return _key(fieldno, 0) + _varint(_zigzag(v))


def _double(fieldno: int, v: float) -> bytes:
    return _key(fieldno, 1) + struct.pack("<d", v)


def _bytes(fieldno: int, b: bytes) -> bytes:
    return _key(fieldno, 2) + _varint(len(b)) + b


def _spans_deltas(b: dict[int, int]) -> tuple[list[tuple[int, int]], list[int]]:
    spans: list[tuple[int, int]] = []
    deltas: list[int] = []
    prev: int | None = None
    prev_c = 0
    for i in sorted(b):
        if prev is not None and i == prev + 1:
            spans[-1] = (spans[-1][0], spans[-1][1] + 1)
        else:
            spans.append((i if prev is None else i - prev - 1, 1))
        deltas.append(b[i] - prev_c)
        prev, prev_c = i, b[i]
    return spans, deltas


def bucket_index(v: float, schema: int) -> int:
    """The Prometheus bucket index of v > 0 at ``schema``: ``b^(i−1) < v ≤ b^i``,
    ``b = 2^(2^−schema)`` (Go's client uses frexp and a bound table; the corrections here
    make the float computation agree at the boundaries)."""
    f = 2.0**schema
    i = math.ceil(math.log2(v) * f)
    while 2.0 ** (i / f) < v:
        i += 1
    while 2.0 ** ((i - 1) / f) >= v:
        i -= 1
    return i


@dataclass
class NativeHist:
    """A native histogram's state, as a client library keeps it."""

    schema: int
    zero_threshold: float = 2.0**-128
    zero_count: int = 0
    positive: dict[int, int] = field(default_factory=dict)
    negative: dict[int, int] = field(default_factory=dict)
    count: int = 0
    sum: float = 0.0

    def observe(self, v: float) -> None:
        self.count += 1
        self.sum += v
        if abs(v) <= self.zero_threshold:
            self.zero_count += 1
            return
        side = self.positive if v > 0 else self.negative
        i = bucket_index(abs(v), self.schema)
        side[i] = side.get(i, 0) + 1

    def encode(self) -> bytes:
        out = _uint(1, self.count) + _double(2, self.sum) + _sint(5, self.schema)
        out += _double(6, self.zero_threshold) + _uint(7, self.zero_count)
        for fspan, fdelta, side in ((9, 10, self.negative), (12, 13, self.positive)):
            spans, deltas = _spans_deltas(side)
            for o, n in spans:
                out += _bytes(fspan, _sint(1, o) + _uint(2, n))
            for d in deltas:
                out += _sint(fdelta, d)
        return out


def _labels(labels: dict[str, str]) -> bytes:
    return b"".join(_bytes(1, _bytes(1, k.encode()) + _bytes(2, v.encode()))
                    for k, v in sorted(labels.items()))


def _family(name: str, kind: int, metrics: list[bytes]) -> bytes:
    body = _bytes(1, name.encode()) + _bytes(2, b"test metric") + _uint(3, kind)
    body += b"".join(_bytes(4, m) for m in metrics)
    return _varint(len(body)) + body


class NativeExporter:
    """Native histograms and counters over the protobuf exposition on a loopback port.

    ``hist(name, labels)`` / ``counter(name, labels)`` return the state to drive (create
    every series before the first scrape, as client libraries do for known labels);
    ``restart()`` drops all state (a process restart). ``scrapes`` counts the scrapes.
    """

    def __init__(self, schema: int = 3) -> None:
        self.schema = schema
        self.lock = threading.Lock()
        self.hists: dict[tuple[str, tuple[tuple[str, str], ...]], NativeHist] = {}
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = exporter.encode()
                self.send_response(200)
                self.send_header("Content-Type", PROTOBUF)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hist(self, name: str, schema: int | None = None, **labels: str) -> NativeHist:
        key = (name, tuple(sorted(labels.items())))
        with self.lock:
            if key not in self.hists:
                self.hists[key] = NativeHist(self.schema if schema is None else schema)
            return self.hists[key]

    def observe(self, name: str, values: Sequence[float], **labels: str) -> None:
        h = self.hist(name, **labels)
        with self.lock:
            for v in values:
                h.observe(float(v))

    def restart(self) -> None:
        with self.lock:
            for h in self.hists.values():
                h.zero_count, h.count, h.sum = 0, 0, 0.0
                h.positive.clear()
                h.negative.clear()

    def encode(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            names = sorted({n for n, _ in self.hists})
            out = b""
            for name in names:
                ms = [_labels(dict(k)) + _bytes(7, h.encode())
                      for (n, k), h in sorted(self.hists.items()) if n == name]
                out += _family(name, 4, ms)  # HISTOGRAM
            return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ---- the server ------------------------------------------------------------------------


@dataclass
class Server:
    client: prom.PrometheusClient
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def prometheus(tmp: Path, targets: Sequence[str], *, native: bool = False,
               interval: str = "1s") -> Iterator[Server]:
    """A Prometheus server on a loopback port with a temporary data directory, scraping
    ``targets`` (host:port, one job ``qcore``) every ``interval``."""
    binary = shutil.which("prometheus")
    if binary is None:
        import pytest

        pytest.skip("the prometheus server binary is not installed (apt-get install prometheus)")
    assert binary is not None
    port = free_port()
    tl = ", ".join(f"'{t}'" for t in targets)
    (tmp / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n"
        "scrape_configs:\n  - job_name: qcore\n    static_configs:\n"
        f"      - targets: [{tl}]\n"
    )
    log_path = tmp / "prometheus.log"
    log = log_path.open("w")
    args = [binary, f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    if native:
        args.append("--enable-feature=native-histograms")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    try:
        client = prom.PrometheusClient(f"http://127.0.0.1:{port}", timeout=5.0)
        deadline = time.monotonic() + 30.0
        while True:
            try:
                client.query("up")
                break
            except PrometheusError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("Prometheus did not start: " + log_path.read_text()) from None
                time.sleep(0.2)
        yield Server(client, proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")
