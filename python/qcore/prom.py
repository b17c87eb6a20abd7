"""Read Prometheus metrics: classic histograms, counters and gauges, from a server or a file.

For teams with metrics and no per-request logs. The numbers answer the same questions as
the log readers, with what the metrics can support:

- :func:`classic_histogram` / :func:`classic_histogram_windows`: the increase of a classic
  histogram (``_bucket{le}``, ``_sum``, ``_count``) over a time range or per window, merged
  across series. :meth:`ClassicHistogram.quantile` gives the bucket edges that contain the
  true quantile (a guarantee, not an estimate), Prometheus' ``histogram_quantile``
  interpolation for comparison, and the distribution-free confidence interval of
  :func:`qcore.quantile_ranks` read at the bucket edges. :meth:`ClassicHistogram.attainment`
  brackets the fraction of requests at or under **any** threshold.
- :func:`native_histogram` / :func:`native_histogram_windows`: the increase of a native
  histogram (Prometheus ≥ 2.40 with ``--enable-feature=native-histograms``), merged across
  series at their coarsest schema; :meth:`NativeHistogram.sketch` imports it into
  :class:`qcore.QuantileSketch` through :meth:`~qcore.QuantileSketch.from_prometheus`,
  every bucket kept; :meth:`NativeHistogram.quantile` and
  :meth:`NativeHistogram.attainment` give the bounds and brackets as for classic ones.
- :func:`counter_rate`: the arrival rate from a request counter with the exact (Garwood)
  Poisson interval of the increase, the core's function behind
  :func:`qcore.arrival_stats`'s ``rate_ci``.
- :func:`littles_law_metrics`: an in-flight gauge against ``λ·W`` from a latency
  histogram's ``_sum`` and ``_count``, with the paired comparison of
  :func:`qcore.littles_law`'s gauge check.
- :data:`VLLM`: vLLM's metric names.
- :class:`PrometheusClient`: ``/api/v1/query``, ``/api/v1/query_range``, ``/api/v1/series``,
  ``/api/v1/label/<name>/values`` over :mod:`urllib`, with a timeout, retries on 5xx and timeouts, and
  :class:`~qcore.exceptions.PrometheusError` naming the URL and the HTTP status.
- :func:`read_exposition`: the text exposition format or OpenMetrics (an offline file or a
  scrape snapshot) through ``prometheus_client``'s parsers, and
  :func:`histogram_from_families` for the cumulative histogram in it.

>>> import numpy as np
>>> from qcore.prom import ClassicHistogram
>>> h = ClassicHistogram("lat", edges=np.array([0.1, 0.5, np.inf]),
...                      cumulative=np.array([60.0, 90.0, 100.0]), sum=20.0)
>>> q = h.quantile(0.9)
>>> q.lower, q.upper, round(q.prometheus, 3)
(0.1, 0.5, 0.5)
>>> a = h.attainment(0.3)
>>> a.lower, a.upper, round(a.width, 2)
(0.6, 0.9, 0.3)

Counter increases (all of this module)
--------------------------------------
The increase of a counter between two raw samples is their difference, or the later value
when it is smaller (a reset: the counter restarted from zero), as Prometheus' ``increase()``
counts it, **without extrapolation**: the increase runs from the first to the last raw
sample inside the range, so counts before the first sample (the baseline) are not in it.
A histogram's buckets, ``_sum`` and ``_count`` are reset together: one decreasing bucket
marks a reset of the whole histogram of that label set (Prometheus' per-series rule would
miss the reset on buckets whose new value exceeds their old one, and lose their counts). A
restart after which every bucket grew past its old value cannot be told from the samples
(by Prometheus or anyone). Per-window increases give each pair of consecutive samples to
the window of the later sample, so the windows' increases add up to the range's: nothing
is lost at window edges (``increase(x[w])`` drops the pairs across edges and extrapolates
instead).

Requires the ``prom`` extra (``prometheus_client``) for :func:`read_exposition` only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time as _time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qcore import _qcore as _qc
from qcore.exceptions import InvalidArgumentError, PrometheusError
from qcore.little import GaugeCheck, _gauge_check
from qcore.sketch import QuantileSketch
from qcore.tail import quantile_ranks

__all__ = [
    "VLLM",
    "VLLM_LITTLE",
    "AttainmentBracket",
    "ClassicHistogram",
    "CounterRate",
    "HistogramQuantile",
    "MetricsLittle",
    "NativeHistogram",
    "NativeQuantile",
    "NoPairsError",
    "PrometheusClient",
    "Series",
    "classic_histogram",
    "classic_histogram_windows",
    "counter_rate",
    "histogram_from_families",
    "littles_law_metrics",
    "native_histogram",
    "native_histogram_windows",
    "read_exposition",
    "VllmEngine",
    "vllm_summary",
]

_F64 = npt.NDArray[np.float64]

#: vLLM's Prometheus metric names, by role. Checked against vLLM's
#: ``vllm/v1/metrics/loggers.py`` (``PrometheusStatLogger``, the 0.10 series, where
#: ``vllm:gpu_cache_usage_perc`` is deprecated for ``vllm:kv_cache_usage_perc``). Counters
#: are named as exposed (``prometheus_client`` appends ``_total``). ``tpot`` lists
#: ``vllm:inter_token_latency_seconds`` (the name in later releases) before
#: ``vllm:time_per_output_token_seconds`` (older releases; 0.10 exports only this one):
#: use the first one the server has. Every series carries ``model_name`` and ``engine``
#: labels (one engine per data-parallel rank): select or group by them for a per-engine view.
#: :func:`vllm_summary` reads them per engine, and falls back on each name with ``:``
#: replaced by ``_``: ``prometheus_client``'s OpenMetrics exposition escapes the colon in
#: sample names (seen with ``prometheus_client`` 0.26 scraped by Prometheus 2.42, which
#: asks for OpenMetrics).
VLLM: Mapping[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "tpot": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "e2e": ("vllm:e2e_request_latency_seconds",),
    "queue": ("vllm:request_queue_time_seconds",),
    "inference": ("vllm:request_inference_time_seconds",),
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc",),
    "prompt_tokens": ("vllm:prompt_tokens_total",),
    "generation_tokens": ("vllm:generation_tokens_total",),
    "requests": ("vllm:request_success_total",),
}


# ---- HTTP client ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Series:
    """One time series: its labels (``__name__`` included when the server sends it) and its
    raw samples (times in Unix seconds, ascending)."""

    labels: Mapping[str, str]
    times: _F64
    values: _F64


class PrometheusClient:
    """A client for a Prometheus server's HTTP API.

    ``url`` is the server's base URL (``http://host:9090``; a path prefix is kept).
    ``timeout`` (seconds) bounds each request; a 5xx answer or a timeout is retried
    ``retries`` times, ``backoff`` seconds apart (doubling). Every failure raises
    :class:`~qcore.exceptions.PrometheusError` with the URL and, for HTTP errors, the
    status: an auth failure (401/403), another HTTP error (with Prometheus' own error text
    when it sent one), an unreachable server, a timeout, a body that is not JSON or not a
    Prometheus API answer, or an answer with ``"status": "error"``. ``headers`` are sent
    with every request (``bearer_token`` adds ``Authorization: Bearer …``).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"url must be an http(s) URL, got {url!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise InvalidArgumentError(f"timeout must be a positive number of seconds, got {timeout}")
        if int(retries) != retries or retries < 0:
            raise InvalidArgumentError(f"retries must be an integer ≥ 0, got {retries}")
        if not (math.isfinite(backoff) and backoff >= 0):
            raise InvalidArgumentError(f"backoff must be a number ≥ 0, got {backoff}")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.headers = dict(headers or {})
        if bearer_token is not None:
            self.headers["Authorization"] = f"Bearer {bearer_token}"

    def get(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        """GET ``path`` (``/api/v1/...``) and return the answer's ``data``."""
        full = f"{self.url}{path}?{urllib.parse.urlencode(list(params))}"
        delay = self.backoff
        attempt = 0
        while True:
            try:
                return self._once(full)
            except _Retryable as e:
                if attempt >= self.retries:
                    raise PrometheusError(
                        f"{e.message} (after {attempt + 1} attempt(s))", url=full, status=e.status
                    ) from None
            attempt += 1
            _time.sleep(delay)
            delay *= 2.0

    def _once(self, full: str) -> Any:
        req = urllib.request.Request(full, headers={"Accept": "application/json", **self.headers})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status = int(resp.status)
                body = resp.read()
        except urllib.error.HTTPError as e:
            status = int(e.code)
            detail = _error_text(e.read())
            if status in (401, 403):
                raise PrometheusError(
                    f"authentication failed: HTTP {status}{detail}", url=full, status=status
                ) from None
            if status >= 500:
                raise _Retryable(f"server error: HTTP {status}{detail}", status) from None
            raise PrometheusError(f"HTTP {status}{detail}", url=full, status=status) from None
        except TimeoutError:
            raise _Retryable(f"no answer within the timeout of {self.timeout} s", None) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _Retryable(
                    f"no answer within the timeout of {self.timeout} s", None
                ) from None
            raise PrometheusError(f"cannot reach the server: {e.reason}", url=full) from None
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise PrometheusError(
                f"the answer (HTTP {status}) is not JSON: {e}", url=full, status=status
            ) from None
        if not isinstance(doc, dict) or "status" not in doc:
            raise PrometheusError(
                f"the answer (HTTP {status}) is not a Prometheus API answer", url=full,
                status=status,
            )
        if doc["status"] != "success":
            raise PrometheusError(
                f"query failed: {doc.get('errorType', '?')}: {doc.get('error', '?')}",
                url=full, status=status,
            )
        if "data" not in doc:
            raise PrometheusError("the answer has no 'data'", url=full, status=status)
        return doc["data"]

    def query(self, query: str, time: float | None = None) -> dict[str, Any]:
        """``/api/v1/query``: ``{"resultType": ..., "result": ...}`` as the server sends it."""
        params = [("query", query)]
        if time is not None:
            params.append(("time", _ts(time, "time")))
        return _data(self.get("/api/v1/query", params), self.url)

    def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """``/api/v1/query_range``: one :class:`Series` per result series."""
        if not (math.isfinite(step) and step > 0):
            raise InvalidArgumentError(f"step must be a positive number of seconds, got {step}")
        _check_range(start, end)
        data = _data(
            self.get(
                "/api/v1/query_range",
                [("query", query), ("start", _ts(start, "start")), ("end", _ts(end, "end")),
                 ("step", repr(float(step)))],
            ),
            self.url,
        )
        return _matrix(data, self.url)

    def series(
        self, match: Sequence[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        """``/api/v1/series``: the label sets of the series matching any selector."""
        if isinstance(match, str) or not match:
            raise InvalidArgumentError("match must be a non-empty sequence of series selectors")
        params = [("match[]", m) for m in match]
        if start is not None:
            params.append(("start", _ts(start, "start")))
        if end is not None:
            params.append(("end", _ts(end, "end")))
        data = self.get("/api/v1/series", params)
        if not isinstance(data, list):
            raise PrometheusError("the series answer is not a list", url=self.url)
        return [dict(d) for d in data]

    def label_values(
        self, label: str, match: Sequence[str] = (), start: float | None = None,
        end: float | None = None,
    ) -> list[str]:
        """``/api/v1/label/<label>/values``: the values of ``label`` (on the series matching
        any selector of ``match``, when given)."""
        if not isinstance(label, str) or not label:
            raise InvalidArgumentError("label must be a non-empty label name")
        params = [("match[]", m) for m in match]
        if start is not None:
            params.append(("start", _ts(start, "start")))
        if end is not None:
            params.append(("end", _ts(end, "end")))
        data = self.get(f"/api/v1/label/{urllib.parse.quote(label, safe='')}/values", params)
        if not isinstance(data, list):
            raise PrometheusError("the label values answer is not a list", url=self.url)
        return [str(v) for v in data]

    def samples(self, selector: str, start: float, end: float) -> list[Series]:
        """The raw samples of the series matching ``selector`` with ``start ≤ t ≤ end`` (a
        range-vector query ``selector[end − start]`` evaluated at ``end``)."""
        _check_range(start, end)
        ms = max(1, math.ceil((end - start) * 1000.0))
        data = self.query(f"{selector}[{ms}ms]", time=end)
        return _matrix(data, self.url)


class NoPairsError(InvalidArgumentError):
    """No series of a selector has two samples in the range (it has none, or one each):
    there is no increase to take."""


class _Retryable(Exception):
    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if isinstance(doc, dict) and "error" in doc:
        return f": {doc.get('errorType', 'error')}: {doc['error']}"
    return ""


def _ts(t: float, name: str) -> str:
    if not math.isfinite(t):
        raise InvalidArgumentError(f"{name} must be a finite Unix time in seconds, got {t}")
    return repr(float(t))


def _check_range(start: float, end: float) -> None:
    if not (math.isfinite(start) and math.isfinite(end) and end > start):
        raise InvalidArgumentError(
            f"start and end must be finite Unix times with end > start, got {start}, {end}"
        )


def _data(data: Any, url: str) -> dict[str, Any]:
    if not isinstance(data, dict) or "resultType" not in data or "result" not in data:
        raise PrometheusError("the query answer has no resultType/result", url=url)
    return data


def _matrix(data: dict[str, Any], url: str) -> list[Series]:
    if data["resultType"] != "matrix":
        raise PrometheusError(f"expected a matrix result, got {data['resultType']!r}", url=url)
    out = []
    try:
        for s in data["result"]:
            vals = s["values"]
            t = np.array([float(v[0]) for v in vals], dtype=np.float64)
            x = np.array([float(v[1]) for v in vals], dtype=np.float64)
            out.append(Series(labels=dict(s["metric"]), times=t, values=x))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise PrometheusError(f"malformed matrix result: {e!r}", url=url) from None
    return out


# ---- increases -------------------------------------------------------------------------


def _increments(values: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], int]:
    """Per-pair increases of counter columns ``values[k, j]`` (rows in time order), reset
    jointly: a row where any column decreases counts its own values. (increments, resets)."""
    d = np.diff(values, axis=0)
    reset = (d < 0).any(axis=1)
    d[reset] = values[1:][reset]
    return d, int(reset.sum())


def _key(labels: Mapping[str, str], drop: Iterable[str]) -> tuple[tuple[str, str], ...]:
    skip = {"__name__", *drop}
    return tuple(sorted((k, v) for k, v in labels.items() if k not in skip))


def _selector(metric: str, matchers: str) -> str:
    if not isinstance(metric, str) or not metric:
        raise InvalidArgumentError("metric must be a non-empty metric name")
    m = matchers.strip()
    if m and not (m.startswith("{") and m.endswith("}")):
        m = "{" + m + "}"
    # Metric names with ':' (vLLM's) are valid PromQL names; quote-free selector.
    return f"{metric}{m}"


@dataclass(frozen=True)
class _Pairs:
    """Per-pair increases of one or more aligned columns, merged across label sets."""

    times: _F64  # time of the later sample of each pair (ascending, one row per time)
    spans: _F64  # duration of each pair (max across label sets at that time)
    inc: _F64  # (pairs, columns) increases summed across label sets
    series: int
    resets: int
    first: float
    last: float


def _pairs(groups: Mapping[Any, list[tuple[int, Series]]], ncols: int, what: str) -> _Pairs:
    """Align each label set's columns on common sample times, take joint-reset increases,
    and sum across label sets by the later sample's time."""
    rows: dict[float, np.ndarray] = {}
    spans: dict[float, float] = {}
    resets = 0
    first, last = math.inf, -math.inf
    for key, cols in groups.items():
        if sorted(c for c, _ in cols) != list(range(ncols)):
            raise InvalidArgumentError(
                f"{what}: the series with labels {dict(key)} lack some of the columns "
                "(every bucket and _sum must be present at the same scrapes)"
            )
        common = None
        for _, s in cols:
            common = s.times if common is None else np.intersect1d(common, s.times)
        assert common is not None
        if common.size < 2:
            continue
        mat = np.empty((common.size, ncols))
        for c, s in cols:
            mat[:, c] = s.values[np.searchsorted(s.times, common)]
        if not np.isfinite(mat).all():
            raise InvalidArgumentError(f"{what}: non-finite sample values for labels {dict(key)}")
        inc, r = _increments(mat)
        resets += r
        first, last = min(first, float(common[0])), max(last, float(common[-1]))
        dt = np.diff(common)
        for t, row, span in zip(common[1:].tolist(), inc, dt.tolist(), strict=True):
            if t in rows:
                rows[t] = rows[t] + row
                spans[t] = max(spans[t], span)
            else:
                rows[t] = row.copy()
                spans[t] = span
    if not rows:
        raise NoPairsError(f"{what}: no series with at least two samples in the range")
    ts = sorted(rows)
    return _Pairs(
        times=np.array(ts, dtype=np.float64),
        spans=np.array([spans[t] for t in ts], dtype=np.float64),
        inc=np.stack([rows[t] for t in ts]),
        series=len(groups),
        resets=resets,
        first=first,
        last=last,
    )


# ---- classic histograms -------------------------------------------------------------------


@dataclass(frozen=True)
class HistogramQuantile:
    """The q-quantile of a classic histogram.

    The true quantile (the order statistic ``x_(rank)``, ``rank = max(1, ⌈q·count⌉)``: the
    smallest observation with at least a fraction q at or under it) lies in
    ``(lower, upper]``, the edges of its bucket: a guarantee for the observations counted.
    ``width = upper − lower``. ``prometheus`` is ``histogram_quantile``'s linear
    interpolation inside that bucket (an estimate, for comparison; the upper edge of the
    last finite bucket when the rank is in ``+Inf``). ``ci`` is the distribution-free
    ``confidence`` interval of the population quantile (:func:`qcore.quantile_ranks`' ranks
    read at the bucket edges: the lower edge of the lower rank's bucket, the upper edge of
    the upper rank's); an open side is ``-inf``/``inf``.
    """

    q: float
    count: int
    rank: int
    lower: float
    upper: float
    width: float
    prometheus: float
    ci: tuple[float, float]
    confidence: float


@dataclass(frozen=True)
class AttainmentBracket:
    """The fraction of observations at or under ``threshold``: in ``[lower, upper]``.

    ``edges`` are the bucket edges around the threshold (``lower`` counts the observations
    at or under the first, ``upper`` those at or under the second); ``exact`` when the
    threshold is a bucket edge (``lower == upper``). ``width = upper − lower`` is the
    fraction of observations whose side of the threshold the buckets cannot tell.
    """

    threshold: float
    count: int
    good_lower: int
    good_upper: int
    lower: float
    upper: float
    width: float
    edges: tuple[float, float]
    exact: bool


@dataclass(frozen=True, eq=False)
class ClassicHistogram:
    """The observations a classic histogram counted over ``[start, end]``.

    ``edges``: the ``le`` upper edges ascending, the last ``inf``; ``cumulative[i]``: the
    number of observations ≤ ``edges[i]`` (``cumulative[-1] == count``). ``lower``: the
    smallest value an observation can take (the first bucket's lower edge; Prometheus
    assumes 0). ``sum``: the increase of ``_sum``. ``series``: label sets merged;
    ``resets``: counter resets seen; ``first``/``last``: the first and last sample times
    (the increase runs between them; both ``None`` for a snapshot).
    """

    metric: str
    edges: _F64
    cumulative: _F64
    sum: float
    lower: float = 0.0
    series: int = 1
    resets: int = 0
    first: float | None = None
    last: float | None = None
    start: float | None = None
    end: float | None = None

    @property
    def count(self) -> int:
        return int(self.cumulative[-1]) if self.cumulative.size else 0

    @property
    def mean(self) -> float | None:
        """``sum / count`` (``None`` when empty)."""
        return self.sum / self.count if self.count else None

    def _counts(self) -> npt.NDArray[np.int64]:
        c = self.cumulative
        if not np.all(c == np.round(c)) or (c < 0).any():
            raise InvalidArgumentError(
                f"{self.metric}: bucket increases are not whole numbers ≥ 0 ({c.tolist()}): "
                "raw counter samples are needed (not rate() or extrapolated increase())"
            )
        if (np.diff(c) < 0).any():
            raise InvalidArgumentError(
                f"{self.metric}: cumulative bucket counts decrease along le ({c.tolist()})"
            )
        return c.astype(np.int64)

    def _bucket(self, counts: npt.NDArray[np.int64], rank: int) -> tuple[float, float]:
        i = int(np.searchsorted(counts, rank, side="left"))
        lo = min(self.lower, float(self.edges[0])) if i == 0 else float(self.edges[i - 1])
        return lo, float(self.edges[i])

    def quantile(self, q: float, confidence: float = 0.95) -> HistogramQuantile:
        """The q-quantile's bucket, Prometheus' estimate and the interval (see
        :class:`HistogramQuantile`); ``InvalidArgumentError`` when empty or q ∉ (0, 1)."""
        if not (0.0 < q < 1.0):
            raise InvalidArgumentError(f"q must be in (0, 1), got {q}")
        counts = self._counts()
        n = int(counts[-1])
        if n == 0:
            raise InvalidArgumentError(f"{self.metric}: no observations in the range")
        rank = max(1, math.ceil(q * n))
        lo, hi = self._bucket(counts, rank)
        r = quantile_ranks(n, q, confidence)
        ci_lo = self._bucket(counts, r.lower)[0] if r.lower is not None else -math.inf
        ci_hi = self._bucket(counts, r.upper)[1] if r.upper is not None else math.inf
        return HistogramQuantile(
            q=q, count=n, rank=rank, lower=lo, upper=hi, width=hi - lo,
            prometheus=self.prometheus_quantile(q), ci=(ci_lo, ci_hi), confidence=confidence,
        )

    def prometheus_quantile(self, q: float) -> float:
        """What PromQL's ``histogram_quantile(q, ...)`` returns for these buckets (linear
        interpolation in the rank's bucket, the first bucket starting at 0; NaN when
        empty)."""
        if not (0.0 <= q <= 1.0):
            raise InvalidArgumentError(f"q must be in [0, 1], got {q}")
        c = self.cumulative
        n = float(c[-1])
        if n == 0 or c.size < 2:
            return math.nan
        rank = q * n
        b = int(np.searchsorted(c[:-1], rank, side="left"))
        if b == c.size - 1:
            return float(self.edges[-2])
        if b == 0 and self.edges[0] <= 0:
            return float(self.edges[0])
        start, end, cnt = 0.0, float(self.edges[b]), float(c[b])
        if b > 0:
            start = float(self.edges[b - 1])
            cnt -= float(c[b - 1])
            rank -= float(c[b - 1])
        return start + (end - start) * (rank / cnt)

    def attainment(self, threshold: float) -> AttainmentBracket:
        """Bracket the fraction of observations ≤ ``threshold`` (any value, not only an
        edge): see :class:`AttainmentBracket`."""
        if not math.isfinite(threshold):
            raise InvalidArgumentError(f"threshold must be finite, got {threshold}")
        counts = self._counts()
        n = int(counts[-1])
        if n == 0:
            raise InvalidArgumentError(f"{self.metric}: no observations in the range")
        e = self.edges
        first_lo = min(self.lower, float(e[0]))
        if threshold < first_lo:
            g_lo = g_hi = 0
            edges = (-math.inf, first_lo)
        else:
            i = int(np.searchsorted(e, threshold, side="right")) - 1  # largest edge ≤ threshold
            j = int(np.searchsorted(e, threshold, side="left"))  # smallest edge ≥ threshold
            g_lo = int(counts[i]) if i >= 0 else 0
            g_hi = int(counts[j])
            edges = (float(e[i]) if i >= 0 else first_lo, float(e[j]))
        return AttainmentBracket(
            threshold=threshold, count=n, good_lower=g_lo, good_upper=g_hi,
            lower=g_lo / n, upper=g_hi / n, width=(g_hi - g_lo) / n, edges=edges,
            exact=g_lo == g_hi,
        )


def _histogram_pairs(
    client: PrometheusClient, metric: str, start: float, end: float, matchers: str
) -> tuple[_F64, _Pairs]:
    buckets = client.samples(_selector(f"{metric}_bucket", matchers), start, end)
    sums = client.samples(_selector(f"{metric}_sum", matchers), start, end)
    if not buckets:
        raise NoPairsError(f"metric: no series {metric}_bucket{matchers} between {start} and {end}")
    layouts: dict[Any, set[float]] = {}
    for s in buckets:
        if "le" not in s.labels:
            raise InvalidArgumentError(f"metric: {metric}_bucket series without an le label")
        layouts.setdefault(_key(s.labels, ["le"]), set()).add(float(s.labels["le"]))
    edge_sets = {tuple(sorted(v)) for v in layouts.values()}
    if len(edge_sets) != 1:
        raise InvalidArgumentError(
            f"metric: the series of {metric} have different bucket layouts "
            f"({sorted(edge_sets)}); select series with the same buckets"
        )
    edges = np.array(next(iter(edge_sets)), dtype=np.float64)
    if edges[-1] != math.inf:
        raise InvalidArgumentError(f"metric: {metric} has no le=\"+Inf\" bucket")
    col = {float(v): i for i, v in enumerate(edges)}
    groups: dict[Any, list[tuple[int, Series]]] = {}
    for s in buckets:
        groups.setdefault(_key(s.labels, ["le"]), []).append((col[float(s.labels["le"])], s))
    for s in sums:
        k = _key(s.labels, [])
        if k in groups:
            groups[k].append((edges.size, s))
    return edges, _pairs(groups, edges.size + 1, f"metric {metric}")


def classic_histogram(
    client: PrometheusClient,
    metric: str,
    start: float,
    end: float,
    *,
    matchers: str = "",
    lower: float = 0.0,
) -> ClassicHistogram:
    """The increase of the classic histogram ``metric`` (the name without ``_bucket``) over
    ``[start, end]``, summed across the series ``matchers`` selects (PromQL label matchers,
    ``'job="api"'``; all series by default). See the module's notes on increases."""
    edges, p = _histogram_pairs(client, metric, start, end, matchers)
    tot = p.inc.sum(axis=0)
    return ClassicHistogram(
        metric=metric, edges=edges, cumulative=tot[:-1], sum=float(tot[-1]), lower=lower,
        series=p.series, resets=p.resets, first=p.first, last=p.last, start=start, end=end,
    )


def _nwindows(start: float, end: float, window: float) -> int:
    if not (math.isfinite(window) and window > 0):
        raise InvalidArgumentError(f"window must be a positive number of seconds, got {window}")
    _check_range(start, end)
    nwin = math.ceil((end - start) / window)
    if nwin > 100_000:
        raise InvalidArgumentError(f"window is too small: {end - start} s / {window} s windows")
    return nwin


def classic_histogram_windows(
    client: PrometheusClient,
    metric: str,
    start: float,
    end: float,
    window: float,
    *,
    matchers: str = "",
    lower: float = 0.0,
) -> list[ClassicHistogram]:
    """:func:`classic_histogram` per window ``[start + k·window, start + (k+1)·window)``
    (each pair of consecutive samples in the window of its later sample; the windows add
    up to :func:`classic_histogram` of the whole range)."""
    nwin = _nwindows(start, end, window)
    edges, p = _histogram_pairs(client, metric, start, end, matchers)
    k = np.minimum(np.floor((p.times - start) / window).astype(np.int64), nwin - 1)
    out = []
    for w in range(nwin):
        sel = k == w
        tot = p.inc[sel].sum(axis=0) if sel.any() else np.zeros(edges.size + 1)
        out.append(ClassicHistogram(
            metric=metric, edges=edges, cumulative=tot[:-1], sum=float(tot[-1]), lower=lower,
            series=p.series, resets=p.resets,
            first=float(p.times[sel][0] - p.spans[sel][0]) if sel.any() else None,
            last=float(p.times[sel][-1]) if sel.any() else None,
            start=start + w * window, end=min(end, start + (w + 1) * window),
        ))
    return out


# ---- native histograms --------------------------------------------------------------------


@dataclass(frozen=True)
class _NativeSample:
    """One native-histogram sample: buckets by Prometheus index at ``schema``."""

    schema: int | None  # None: no exponential bucket (only the zero bucket has counts)
    zero_threshold: float
    zero_count: int
    positive: Mapping[int, int]
    negative: Mapping[int, int]
    count: int
    sum: float


def _native_index(lo: float, hi: float, what: str) -> tuple[int, int]:
    """(schema, Prometheus index) of the exponential bucket with boundaries ``|lo| < |hi|``
    (the magnitudes of a positive bucket ``(lo, hi]`` or of a negative one ``[-hi, -lo)``)."""
    if not (0.0 < lo < hi and math.isfinite(hi)):
        raise InvalidArgumentError(f"{what}: bucket ({lo}, {hi}] is not exponential")
    width = math.log2(math.log2(hi / lo))  # = −schema
    schema = round(-width)
    idx = round(math.log2(hi) * 2.0**schema)
    if (abs(width + schema) > 1e-6 or not -4 <= schema <= 8
            or not math.isclose(2.0 ** (idx * 2.0**-schema), hi, rel_tol=1e-9)
            or not math.isclose(2.0 ** ((idx - 1) * 2.0**-schema), lo, rel_tol=1e-9)):
        raise InvalidArgumentError(
            f"{what}: bucket ({lo}, {hi}] is not a bucket of an exponential schema in [-4, 8] "
            "(custom-bucket native histograms are not read)"
        )
    return schema, idx


def _whole(v: Any, what: str) -> int:
    x = float(v)
    if not (math.isfinite(x) and x >= 0 and x == round(x)):
        raise InvalidArgumentError(
            f"{what}: count {v!r} is not a whole number ≥ 0 (a float histogram, e.g. from "
            "rate() or a recording rule, is not a count of observations)"
        )
    return int(x)


def _native_sample(h: Mapping[str, Any], what: str) -> _NativeSample:
    """A native histogram as the query API's JSON writes it (``count``, ``sum``, ``buckets``
    of ``[boundary_rule, lower, upper, count]``, empty buckets omitted)."""
    try:
        count = _whole(h["count"], what)
        total = float(h["sum"])
        buckets = h.get("buckets") or []
        schema: int | None = None
        zt, zc = 0.0, 0
        pos: dict[int, int] = {}
        neg: dict[int, int] = {}
        for _rule, lo_s, hi_s, c_s in buckets:
            lo, hi, c = float(lo_s), float(hi_s), _whole(c_s, what)
            if lo <= 0.0 <= hi:  # the zero bucket [-zt, zt]
                zt, zc = hi, zc + c
                continue
            s, i = _native_index(lo, hi, what) if lo > 0 else _native_index(-hi, -lo, what)
            if schema is not None and s != schema:
                raise InvalidArgumentError(f"{what}: buckets of schemas {schema} and {s} in one sample")
            schema = s
            side = pos if lo > 0 else neg
            side[i] = side.get(i, 0) + c
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, InvalidArgumentError):
            raise
        raise InvalidArgumentError(f"{what}: malformed native histogram {h!r}: {e!r}") from None
    return _NativeSample(schema, zt, zc, pos, neg, count, total)


def _reduce(b: Mapping[int, int], d: int) -> dict[int, int]:
    """Buckets (Prometheus indices) ``d`` schemas coarser: OpenTelemetry index ``i − 1``
    becomes ``(i − 1) >> d`` (exact: neighbouring buckets merge)."""
    if d == 0:
        return dict(b)
    out: dict[int, int] = {}
    for i, c in b.items():
        j = ((i - 1) >> d) + 1
        out[j] = out.get(j, 0) + c
    return out


@dataclass(frozen=True)
class _NativeDelta:
    schema: int | None
    zero_threshold: float
    zero_count: int
    positive: dict[int, int]
    negative: dict[int, int]
    count: int
    sum: float


def _at(s: _NativeSample, schema: int | None) -> tuple[dict[int, int], dict[int, int]]:
    d = 0 if schema is None or s.schema is None else s.schema - schema
    return _reduce(s.positive, d), _reduce(s.negative, d)


def _coarsest(*schemas: int | None) -> int | None:
    known = [s for s in schemas if s is not None]
    return min(known) if known else None


def _native_increase(a: _NativeSample, b: _NativeSample) -> tuple[_NativeDelta, bool]:
    """The increase from sample ``a`` to the later ``b`` at their coarser schema, and
    whether it is a reset (the count, the zero bucket or any bucket decreased, or the zero
    bucket widened: then the increase is ``b`` itself, as Prometheus counts it)."""
    schema = _coarsest(a.schema, b.schema)
    (pa, na), (pb, nb) = _at(a, schema), _at(b, schema)
    reset = (b.count < a.count or b.zero_count < a.zero_count
             or b.zero_threshold > a.zero_threshold > 0.0 and a.zero_count > 0
             or any(pb.get(i, 0) < c for i, c in pa.items())
             or any(nb.get(i, 0) < c for i, c in na.items()))
    if reset:
        return _NativeDelta(schema, b.zero_threshold, b.zero_count, pb, nb, b.count, b.sum), True
    dp = {i: c - pa.get(i, 0) for i, c in pb.items() if c - pa.get(i, 0) > 0}
    dn = {i: c - na.get(i, 0) for i, c in nb.items() if c - na.get(i, 0) > 0}
    return _NativeDelta(schema, max(a.zero_threshold, b.zero_threshold),
                        b.zero_count - a.zero_count, dp, dn, b.count - a.count,
                        b.sum - a.sum), False


def _add_delta(acc: _NativeDelta | None, d: _NativeDelta) -> _NativeDelta:
    if acc is None:
        return d
    schema = _coarsest(acc.schema, d.schema)

    def red(x: _NativeDelta) -> tuple[dict[int, int], dict[int, int]]:
        k = 0 if schema is None or x.schema is None else x.schema - schema
        return _reduce(x.positive, k), _reduce(x.negative, k)

    (pa, na), (pb, nb) = red(acc), red(d)
    for i, c in pb.items():
        pa[i] = pa.get(i, 0) + c
    for i, c in nb.items():
        na[i] = na.get(i, 0) + c
    return _NativeDelta(schema, max(acc.zero_threshold, d.zero_threshold),
                        acc.zero_count + d.zero_count, pa, na, acc.count + d.count,
                        acc.sum + d.sum)


def _spans_deltas(b: Mapping[int, int]) -> tuple[list[tuple[int, int]], list[int]]:
    """Prometheus spans (first offset absolute, later ones gaps) and deltas of buckets."""
    spans: list[tuple[int, int]] = []
    deltas: list[int] = []
    prev_i: int | None = None
    prev_c = 0
    for i in sorted(k for k, c in b.items() if c > 0):
        if prev_i is not None and i == prev_i + 1:
            o, n = spans[-1]
            spans[-1] = (o, n + 1)
        else:
            spans.append((i if prev_i is None else i - prev_i - 1, 1))
        deltas.append(b[i] - prev_c)
        prev_i, prev_c = i, b[i]
    return spans, deltas


@dataclass(frozen=True)
class NativeQuantile:
    """The q-quantile of a native histogram: the true order statistic ``x_(rank)``
    (``rank = max(1, ⌈q·count⌉)``, as :class:`HistogramQuantile`) lies in
    ``[lower, upper]``, its bucket's bounds (:meth:`qcore.QuantileSketch.quantile_bounds`
    of the imported sketch); ``estimate`` is the sketch's estimate; ``ci`` the
    distribution-free ``confidence`` interval of the population quantile
    (:func:`qcore.quantile_ranks`' ranks read at the buckets' bounds)."""

    q: float
    count: int
    rank: int
    lower: float
    upper: float
    width: float
    estimate: float
    ci: tuple[float, float]
    confidence: float


@dataclass(frozen=True, eq=False)
class NativeHistogram:
    """The observations a native histogram counted over ``[start, end]`` (the increase,
    merged across series at the coarsest schema seen; see the module's notes).

    ``positive``/``negative``: counts by Prometheus bucket index at ``schema`` (bucket
    ``i`` holds ``(b^(i−1), b^i]``, ``b = 2^(2^−schema)``; negative buckets mirror it);
    ``zero_count`` the zero bucket ``[−zero_threshold, zero_threshold]``. ``schema`` is
    ``None`` when only the zero bucket has observations. :meth:`to_prometheus` is the
    histogram in :meth:`qcore.QuantileSketch.from_prometheus`' form, and :meth:`sketch`
    the sketch it imports into (every bucket kept: lossless).
    """

    metric: str
    schema: int | None
    zero_threshold: float
    zero_count: int
    positive: Mapping[int, int]
    negative: Mapping[int, int]
    count: int
    sum: float
    series: int = 1
    resets: int = 0
    first: float | None = None
    last: float | None = None
    start: float | None = None
    end: float | None = None

    def to_prometheus(self) -> dict[str, Any]:
        """``schema``, ``zero_threshold``, ``zero_count``, ``count``, ``sum``,
        ``positive_spans``/``positive_deltas``, ``negative_spans``/``negative_deltas``."""
        ps, pd = _spans_deltas(self.positive)
        ns, nd = _spans_deltas(self.negative)
        return {"schema": 8 if self.schema is None else self.schema,
                "zero_threshold": self.zero_threshold, "zero_count": self.zero_count,
                "count": self.count, "sum": self.sum, "positive_spans": ps,
                "positive_deltas": pd, "negative_spans": ns, "negative_deltas": nd}

    def _top_bucket(self) -> tuple[float, float]:
        """The bounds of the highest non-empty bucket: the sketch takes the outer bucket
        edges for its min and max (Prometheus carries neither) and answers the largest
        observation with its max; the guarantee is the whole bucket."""
        widen = 8.0 * np.finfo(np.float64).eps  # as the sketch's bounds: exp2 rounding
        f = 2.0 ** -(self.schema or 0)
        if self.positive:
            i = max(self.positive)
            return 2.0 ** ((i - 1) * f) * (1 - widen), 2.0 ** (i * f) * (1 + widen)
        if self.zero_count:
            return -self.zero_threshold, self.zero_threshold
        i = min(self.negative)
        return -(2.0 ** (i * f)) * (1 + widen), -(2.0 ** ((i - 1) * f)) * (1 - widen)

    def _bounds(self) -> list[tuple[float, float, int]]:
        """Every non-empty bucket as (lowest value, highest value, count), in value
        order (a positive bucket is ``(lo, hi]``, a negative one ``[lo, hi)``)."""
        f = 2.0 ** -(self.schema or 0)
        out = [(-(2.0 ** (i * f)), -(2.0 ** ((i - 1) * f)), c)
               for i, c in sorted(self.negative.items(), reverse=True) if c]
        if self.zero_count:
            out.append((-self.zero_threshold, self.zero_threshold, self.zero_count))
        out += [(2.0 ** ((i - 1) * f), 2.0 ** (i * f), c)
                for i, c in sorted(self.positive.items()) if c]
        return out

    def attainment(self, threshold: float) -> AttainmentBracket:
        """Bracket the fraction of observations ≤ ``threshold``: the buckets below it
        count as good, those above as bad, the one around it (at most one: buckets do not
        overlap) either way; ``edges`` are that bucket's (``(threshold, threshold)`` when
        no non-empty bucket straddles it, and the bracket is exact)."""
        if not math.isfinite(threshold):
            raise InvalidArgumentError(f"threshold must be finite, got {threshold}")
        if self.count == 0:
            raise InvalidArgumentError(f"{self.metric}: no observations in the range")
        good = unsure = 0
        edges = (threshold, threshold)
        for lo, hi, c in self._bounds():
            if hi <= threshold:
                good += c  # all of (lo, hi] (or [lo, hi) for a negative bucket) is ≤ threshold
            elif lo < threshold or (lo == threshold and lo < 0):  # [lo, …) holds lo itself
                unsure += c
                edges = (lo, hi)
        n = self.count
        return AttainmentBracket(
            threshold=threshold, count=n, good_lower=good, good_upper=good + unsure,
            lower=good / n, upper=(good + unsure) / n, width=unsure / n, edges=edges,
            exact=unsure == 0,
        )

    def sketch(self) -> QuantileSketch:
        """The :class:`qcore.QuantileSketch` of these buckets, at their own scale."""
        return QuantileSketch.from_prometheus(self.to_prometheus())

    def quantile(self, q: float, confidence: float = 0.95) -> NativeQuantile:
        """The q-quantile's bucket bounds, the sketch's estimate and the interval (see
        :class:`NativeQuantile`); ``InvalidArgumentError`` when empty or q ∉ (0, 1)."""
        if not (0.0 < q < 1.0):
            raise InvalidArgumentError(f"q must be in (0, 1), got {q}")
        n = self.count
        if n == 0:
            raise InvalidArgumentError(f"{self.metric}: no observations in the range")
        sk = self.sketch()
        rank = max(1, math.ceil(q * n))

        def at(k: int) -> tuple[float, float]:
            if k >= n:
                return self._top_bucket()
            # the sketch's q answers the order statistic in the first bucket whose
            # cumulative count exceeds q·(n − 1): aim between k − 1 and k
            b = sk.quantile_bounds((k - 0.5) / (n - 1))
            assert b is not None
            return float(b[0]), float(b[1])

        lo, hi = at(rank)
        est = sk.quantile(1.0 if rank >= n else (rank - 0.5) / (n - 1))
        r = quantile_ranks(n, q, confidence)
        ci_lo = at(r.lower)[0] if r.lower is not None else -math.inf
        ci_hi = at(r.upper)[1] if r.upper is not None else math.inf
        return NativeQuantile(q=q, count=n, rank=rank, lower=lo, upper=hi, width=hi - lo,
                              estimate=float(est) if est is not None else math.nan,
                              ci=(ci_lo, ci_hi), confidence=confidence)


def _native_series(data: dict[str, Any], url: str) -> list[tuple[Mapping[str, str], _F64, list[Any]]]:
    if data["resultType"] != "matrix":
        raise PrometheusError(f"expected a matrix result, got {data['resultType']!r}", url=url)
    out: list[tuple[Mapping[str, str], _F64, list[Any]]] = []
    try:
        for s in data["result"]:
            hs = s.get("histograms") or []
            if s.get("values"):
                raise InvalidArgumentError(
                    f"metric: {dict(s['metric'])} has float samples, not native histograms "
                    "(a classic histogram? read it with classic_histogram)"
                )
            out.append((dict(s["metric"]), np.array([float(h[0]) for h in hs], dtype=np.float64),
                        [h[1] for h in hs]))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        if isinstance(e, InvalidArgumentError):
            raise
        raise PrometheusError(f"malformed matrix result: {e!r}", url=url) from None
    return out


@dataclass(frozen=True)
class _NativePairs:
    """Per-pair increases of a native histogram's series: ``deltas[k]`` between two
    consecutive samples of one series, at the time ``times[k]`` of the later one."""

    times: list[float]
    deltas: list[_NativeDelta]
    series: int
    resets: int
    first: float
    last: float


def _native_pairs(
    client: PrometheusClient, metric: str, start: float, end: float, matchers: str
) -> _NativePairs:
    _check_range(start, end)
    ms = max(1, math.ceil((end - start) * 1000.0))
    data = client.query(f"{_selector(metric, matchers)}[{ms}ms]", time=end)
    found = _native_series(data, client.url)
    if not found:
        raise NoPairsError(f"metric: no series {metric}{matchers} between {start} and {end}")
    times: list[float] = []
    deltas: list[_NativeDelta] = []
    resets = 0
    first, last = math.inf, -math.inf
    for labels, ts, hs in found:
        what = f"metric {metric} {dict(labels)}"
        samples = [_native_sample(h, what) for h in hs]
        if len(samples) < 2:
            continue
        first, last = min(first, float(ts[0])), max(last, float(ts[-1]))
        for t, a, b in zip(ts[1:].tolist(), samples[:-1], samples[1:], strict=True):
            d, r = _native_increase(a, b)
            resets += int(r)
            times.append(t)
            deltas.append(d)
    if not deltas:
        raise NoPairsError(f"metric {metric}: no series with at least two samples in the range")
    return _NativePairs(times, deltas, len(found), resets, first, last)


def _native_sum(
    metric: str, p: _NativePairs, keep: Iterable[int], start: float | None, end: float | None
) -> NativeHistogram:
    acc: _NativeDelta | None = None
    ts: list[float] = []
    for k in keep:
        acc = _add_delta(acc, p.deltas[k])
        ts.append(p.times[k])
    if acc is None:
        acc = _NativeDelta(None, 0.0, 0, {}, {}, 0, 0.0)
    return NativeHistogram(
        metric=metric, schema=acc.schema, zero_threshold=acc.zero_threshold,
        zero_count=acc.zero_count, positive=acc.positive, negative=acc.negative,
        count=acc.count, sum=acc.sum, series=p.series, resets=p.resets,
        first=min(ts) if ts else None, last=max(ts) if ts else None, start=start, end=end,
    )


def native_histogram(
    client: PrometheusClient,
    metric: str,
    start: float,
    end: float,
    *,
    matchers: str = "",
) -> NativeHistogram:
    """The increase of the native histogram ``metric`` over ``[start, end]`` (raw samples,
    resets handled as for counters, no extrapolation), summed across the series
    ``matchers`` selects. Prometheus ≥ 2.40 stores native histograms when started with
    ``--enable-feature=native-histograms`` and the target exposes them (protobuf
    exposition)."""
    p = _native_pairs(client, metric, start, end, matchers)
    h = _native_sum(metric, p, range(len(p.deltas)), start, end)
    return dataclasses.replace(h, first=p.first, last=p.last)


def native_histogram_windows(
    client: PrometheusClient,
    metric: str,
    start: float,
    end: float,
    window: float,
    *,
    matchers: str = "",
) -> list[NativeHistogram]:
    """:func:`native_histogram` per window ``[start + k·window, start + (k+1)·window)``, as
    :func:`classic_histogram_windows` (the windows add up to the whole range)."""
    nwin = _nwindows(start, end, window)
    p = _native_pairs(client, metric, start, end, matchers)
    k = np.minimum(np.floor((np.array(p.times) - start) / window).astype(np.int64), nwin - 1)
    return [_native_sum(metric, p, np.flatnonzero(k == w).tolist(), start + w * window,
                        min(end, start + (w + 1) * window)) for w in range(nwin)]


# ---- counters and gauges ------------------------------------------------------------------


@dataclass(frozen=True)
class CounterRate:
    """The arrival rate from a counter: ``increase`` events between the first and the last
    sample (``exposure = last − first`` seconds), ``rate = increase / exposure`` and the
    exact Garwood ``confidence`` interval ``rate_ci`` (as :func:`qcore.arrival_stats`)."""

    metric: str
    increase: int
    exposure: float
    rate: float
    rate_ci: tuple[float, float]
    confidence: float
    series: int
    resets: int
    first: float
    last: float


def counter_rate(
    client: PrometheusClient,
    metric: str,
    start: float,
    end: float,
    *,
    matchers: str = "",
    confidence: float = 0.95,
) -> CounterRate:
    """The rate of the counter ``metric`` (as exposed, ``..._total``) over ``[start, end]``,
    summed across the series ``matchers`` selects. The increase must be a whole number (a
    count of events)."""
    series = client.samples(_selector(metric, matchers), start, end)
    if not series:
        raise InvalidArgumentError(f"metric: no series {metric}{matchers} between {start} and {end}")
    groups = {_key(s.labels, []): [(0, s)] for s in series}
    p = _pairs(groups, 1, f"metric {metric}")
    inc = float(p.inc.sum())
    if inc != round(inc):
        raise InvalidArgumentError(f"metric: {metric} increased by {inc}, not a whole number of events")
    exposure = p.last - p.first
    k = int(round(inc))
    lo, hi = _qc.garwood(k, exposure, float(confidence))
    return CounterRate(
        metric=metric, increase=k, exposure=exposure, rate=k / exposure, rate_ci=(lo, hi),
        confidence=confidence, series=p.series, resets=p.resets, first=p.first, last=p.last,
    )


@dataclass(frozen=True)
class MetricsLittle:
    """Little's law from metrics alone: an in-flight gauge ``L`` against ``λ·W``.

    ``arrival_rate`` = the latency histogram's ``_count`` increase over the span
    ``[first, last]``; ``mean_response`` = ``_sum`` increase / ``_count`` increase;
    ``lambda_w`` = their product (the ``_sum`` increase per second); ``L`` = the mean of the
    gauge at the pairs' later sample times (summed across the gauge's series); ``gap`` =
    ``(L − λW) / λW``. ``gauge`` is :func:`qcore.littles_law`'s paired comparison with the
    gauge in the place of the logs' count and each scrape interval's ``λW`` (its ``_sum``
    increase over its length) in the place of the gauge: ``discrepancy`` = mean(gauge −
    λW_k) / mean(λW_k) with its interval, ``mismatch`` and ``within_tolerance``. ``holds``:
    the comparison is within tolerance.
    """

    L: float
    arrival_rate: float
    mean_response: float
    lambda_w: float
    gap: float
    samples: int
    first: float
    last: float
    tolerance: float
    gauge: GaugeCheck
    holds: bool


def littles_law_metrics(
    client: PrometheusClient,
    gauge: str,
    histogram: str,
    start: float,
    end: float,
    *,
    matchers: str = "",
    tolerance: float = 0.05,
    confidence: float = 0.95,
) -> MetricsLittle:
    """Compare the in-flight gauge ``gauge`` with ``λ·W`` from the latency histogram
    ``histogram``'s ``_sum`` and ``_count`` (same scrape target, so the samples share their
    times) over ``[start, end]``. The gauge must hold whole numbers (a count of requests)."""
    hs = client.samples(_selector(f"{histogram}_sum", matchers), start, end)
    hc = client.samples(_selector(f"{histogram}_count", matchers), start, end)
    if not hs or not hc:
        raise InvalidArgumentError(f"histogram: no {histogram}_sum/_count series in the range")
    groups: dict[Any, list[tuple[int, Series]]] = {}
    for c, ss in ((0, hs), (1, hc)):
        for s in ss:
            groups.setdefault(_key(s.labels, []), []).append((c, s))
    p = _pairs(groups, 2, f"histogram {histogram}")
    gs = client.samples(_selector(gauge, matchers), start, end)
    if not gs:
        raise InvalidArgumentError(f"gauge: no series {gauge}{matchers} in the range")
    g_at: dict[float, float] = {}
    g_n: dict[float, int] = {}
    for s in gs:
        for t, v in zip(s.times.tolist(), s.values.tolist(), strict=True):
            g_at[t] = g_at.get(t, 0.0) + v
            g_n[t] = g_n.get(t, 0) + 1
    keep = [i for i, t in enumerate(p.times.tolist()) if g_n.get(t) == len(gs)]
    if len(keep) < 2:
        raise InvalidArgumentError(
            f"gauge: {gauge} has fewer than two samples at the times of {histogram}'s samples "
            "(both must come from the same scrapes)"
        )
    times = p.times[keep]
    lw_k = p.inc[keep, 0] / p.spans[keep]
    gv = np.array([g_at[t] for t in times.tolist()], dtype=np.float64)
    if not np.all(gv == np.round(gv)) or (gv < 0).any():
        raise InvalidArgumentError(f"gauge: {gauge} is not a count of requests (whole numbers ≥ 0)")
    span = p.last - p.first
    total_sum, total_count = float(p.inc[:, 0].sum()), float(p.inc[:, 1].sum())
    lam = total_count / span
    w = total_sum / total_count if total_count > 0 else math.nan
    lw = total_sum / span
    g, _flags = _qc.gauge_compare(
        times, lw_k, gv.astype(np.int64), float(lw), float(tolerance), float(confidence)
    )
    check = _gauge_check(g)
    L = float(gv.mean())
    return MetricsLittle(
        L=L, arrival_rate=lam, mean_response=w, lambda_w=lw,
        gap=(L - lw) / lw if lw > 0 else math.nan, samples=len(keep), first=p.first,
        last=p.last, tolerance=tolerance, gauge=check, holds=check.within_tolerance,
    )


# ---- exposition files ---------------------------------------------------------------------


def read_exposition(source: str | Path, *, openmetrics: bool | None = None) -> list[Any]:
    """Parse a text exposition (Prometheus text format or OpenMetrics) into
    ``prometheus_client`` metric families. ``source`` is a path or the text itself (a
    ``str`` containing a newline). OpenMetrics is chosen when ``openmetrics`` is true, or,
    when ``None``, when the text ends with ``# EOF``. Parse errors raise
    :class:`~qcore.exceptions.InvalidArgumentError`."""
    try:
        from prometheus_client.openmetrics.parser import (
            text_string_to_metric_families as om_parse,
        )
        from prometheus_client.parser import text_string_to_metric_families as text_parse
    except ImportError as e:  # pragma: no cover - the extra is installed in tests
        raise ImportError("read_exposition needs prometheus_client (pip install qcore[prom])") from e
    if isinstance(source, Path) or "\n" not in source:
        text = Path(source).read_text(encoding="utf-8")
    else:
        text = source
    om = text.rstrip().endswith("# EOF") if openmetrics is None else openmetrics
    parse: Any = om_parse if om else text_parse
    try:
        return list(parse(text))
    except ValueError as e:
        raise InvalidArgumentError(f"source: not a valid exposition: {e}") from None


def histogram_from_families(
    families: Iterable[Any], name: str, *, match: Mapping[str, str] | None = None,
    lower: float = 0.0,
) -> ClassicHistogram:
    """The cumulative classic histogram ``name`` in a snapshot (:func:`read_exposition`),
    summed across the label sets that contain ``match`` (counts since each process started:
    a snapshot has no time range)."""
    want = dict(match or {})
    fam = next((f for f in families if f.name == name), None)
    if fam is None or fam.type != "histogram":
        raise InvalidArgumentError(f"name: no histogram family {name!r} in the exposition")
    per: dict[Any, dict[float, float]] = {}
    sums: dict[Any, float] = {}
    for s in fam.samples:
        if any(s.labels.get(k) != v for k, v in want.items()):
            continue
        if s.name == f"{name}_bucket":
            per.setdefault(_key(s.labels, ["le"]), {})[float(s.labels["le"])] = float(s.value)
        elif s.name == f"{name}_sum":
            sums[_key(s.labels, [])] = float(s.value)
    if not per:
        raise InvalidArgumentError(f"match: no series of {name!r} with labels {want}")
    layouts = {tuple(sorted(b)) for b in per.values()}
    if len(layouts) != 1:
        raise InvalidArgumentError(f"name: the series of {name!r} have different bucket layouts")
    edges = np.array(next(iter(layouts)), dtype=np.float64)
    if edges[-1] != math.inf:
        raise InvalidArgumentError(f"name: {name!r} has no le=\"+Inf\" bucket")
    cum = np.array([sum(b[e] for b in per.values()) for e in edges.tolist()], dtype=np.float64)
    return ClassicHistogram(
        metric=name, edges=edges, cumulative=cum, sum=float(sum(sums.values())), lower=lower,
        series=len(per),
    )


# ---- vLLM ---------------------------------------------------------------------------------

#: The Little's-law pairs of :func:`vllm_summary`: (gauge role, latency-histogram role).
#: The waiting queue against the time spent WAITING, the running batch against the time
#: spent RUNNING.
VLLM_LITTLE = (("waiting", "queue"), ("running", "inference"))


@dataclass(frozen=True)
class VllmEngine:
    """:func:`vllm_summary` for one engine (one ``model_name``/``engine`` label set).

    ``names``: the metric name used for each role found (see :data:`VLLM`).
    ``latency[role][q]``: :class:`HistogramQuantile` of ``ttft``, ``tpot``, ``e2e``,
    ``queue`` over the range. ``kv_cache_usage``: (mean, max) of the gauge's samples.
    ``requests``: :class:`CounterRate` of ``vllm:request_success_total`` (every finish
    reason). ``little[gauge role]``: :class:`MetricsLittle` (see :data:`VLLM_LITTLE`).
    ``missing``: what could not be computed, and why (metric absent, no observations).
    """

    labels: Mapping[str, str]
    names: Mapping[str, str]
    latency: Mapping[str, Mapping[float, HistogramQuantile]]
    kv_cache_usage: tuple[float, float] | None
    requests: CounterRate | None
    little: Mapping[str, MetricsLittle]
    missing: Mapping[str, str]


def _matchers(labels: Mapping[str, str], extra: str) -> str:
    esc = [f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
           for k, v in sorted(labels.items())]
    e = extra.strip().strip("{}").strip()
    return "{" + ",".join([*esc, *([e] if e else [])]) + "}"


def vllm_summary(
    client: PrometheusClient,
    start: float,
    end: float,
    *,
    matchers: str = "",
    quantiles: Sequence[float] = (0.5, 0.9, 0.99),
    confidence: float = 0.95,
    tolerance: float = 0.05,
) -> list[VllmEngine]:
    """TTFT/TPOT/e2e/queue tails with their bucket bounds, KV-cache pressure, the request
    rate and the Little's-law checks of :data:`VLLM_LITTLE`, per vLLM engine, over
    ``[start, end]``. Engines are the ``model_name``/``engine`` label sets of
    ``vllm:num_requests_running`` (``matchers`` narrows them, ``'job="vllm"'``). A role's
    first name in :data:`VLLM` with series is used; what is absent is in ``missing``."""
    for q in quantiles:
        if not (0.0 < q < 1.0):
            raise InvalidArgumentError(f"quantiles must be in (0, 1), got {q}")
    base = _matchers({}, matchers)
    running = VLLM["running"][0]
    found = client.series([f"{running}{base}", f"{running.replace(':', '_')}{base}"], start, end)
    engines: list[tuple[tuple[str, str], ...]] = sorted(
        {tuple(sorted((k, d[k]) for k in ("model_name", "engine") if k in d)) for d in found}
    )
    if not engines:
        raise InvalidArgumentError(
            f"matchers: no {running} series{'' if base == '{}' else ' ' + base} "
            f"between {start} and {end}: not a vLLM target?"
        )
    return [
        _vllm_engine(client, dict(eng), start, end, matchers, quantiles, confidence, tolerance)
        for eng in engines
    ]


def _vllm_names(
    client: PrometheusClient, sel: str, start: float, end: float
) -> tuple[dict[str, str], dict[str, str]]:
    names: dict[str, str] = {}
    missing: dict[str, str] = {}
    for role, names_ in VLLM.items():
        hist = role in ("ttft", "tpot", "e2e", "queue", "inference")
        cands = [m for n in names_ for m in (n, n.replace(":", "_"))]
        for n in cands:
            if client.series([f"{n}_count{sel}" if hist else f"{n}{sel}"], start, end):
                names[role] = n
                break
        else:
            missing[role] = f"no series {' or '.join(cands)}"
    return names, missing


def _vllm_engine(
    client: PrometheusClient,
    lab: dict[str, str],
    start: float,
    end: float,
    matchers: str,
    quantiles: Sequence[float],
    confidence: float,
    tolerance: float,
) -> VllmEngine:
    sel = _matchers(lab, matchers)
    names, missing = _vllm_names(client, sel, start, end)
    latency: dict[str, dict[float, HistogramQuantile]] = {}
    for role in ("ttft", "tpot", "e2e", "queue"):
        if role in names:
            try:
                h = classic_histogram(client, names[role], start, end, matchers=sel)
                latency[role] = {q: h.quantile(q, confidence) for q in quantiles}
            except InvalidArgumentError as e:
                missing[role] = str(e)
    kv = None
    if "kv_cache_usage" in names:
        got = client.samples(f"{names['kv_cache_usage']}{sel}", start, end)
        vals = np.concatenate([s.values for s in got]) if got else np.empty(0)
        if vals.size:
            kv = (float(vals.mean()), float(vals.max()))
    requests = None
    if "requests" in names:
        try:
            requests = counter_rate(client, names["requests"], start, end, matchers=sel,
                                    confidence=confidence)
        except InvalidArgumentError as e:
            missing["requests"] = str(e)
    little: dict[str, MetricsLittle] = {}
    for g, hrole in VLLM_LITTLE:
        if g not in names or hrole not in names:
            missing[f"little_{g}"] = f"needs {g} and {hrole}"
            continue
        try:
            little[g] = littles_law_metrics(
                client, names[g], names[hrole], start, end, matchers=sel,
                tolerance=tolerance, confidence=confidence,
            )
        except InvalidArgumentError as e:
            missing[f"little_{g}"] = str(e)
    return VllmEngine(labels=lab, names=names, latency=latency, kv_cache_usage=kv,
                      requests=requests, little=little, missing=missing)
