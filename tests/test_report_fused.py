"""The report's one-pass batch kernel against the separate calls (numpy references,
``littles_law_grouped`` and ``sketch_groups``)."""

from __future__ import annotations

import numpy as np
import pytest

import qcore
from qcore import _qcore

LIM32 = 2.0**31


def _batch(n: int, G: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = np.sort(rng.uniform(-5.0, 105.0, n))        # some starts outside [t0, t1)
    lat = rng.lognormal(-1.0, 1.0, n)
    lat[rng.random(n) < 0.05] = np.nan                  # no latency
    end = start + lat
    end[rng.random(n) < 0.02] = -1.0                    # negative duration
    cls = rng.choice(np.array([0, 1, 2], dtype=np.int8), n, p=[0.8, 0.15, 0.05])
    codes = rng.integers(0, G, n).astype(np.int64)
    return {"codes": codes, "start": start, "cls": cls, "end": end, "lat": lat}


def _idx(t: np.ndarray, t0: float, bin_: float, n: int, lim: float = LIM32) -> np.ndarray:
    """The scan's index: a non-strict truncating integer cast, null filled with 0, clipped."""
    v = (t - t0) / bin_
    ok = np.isfinite(v) & (v < lim) & (v > -lim - 1)
    i = np.where(ok, np.trunc(np.where(ok, v, 0.0)), 0.0).astype(np.int64)
    return np.clip(i, 0, n - 1)


def _reference(b: dict[str, np.ndarray], G: int, t0: float, t1: float, bin_: float, nw: int, ne: int,
               edge: float | None) -> dict[str, np.ndarray]:
    c, s, k, e, lat = b["codes"], b["start"], b["cls"], b["end"], b["lat"]
    out: dict[str, np.ndarray] = {}
    out["outcomes"] = np.bincount(c * 3 + k, minlength=3 * G)
    out["windows"] = np.bincount(c * nw + _idx(s, t0, bin_, nw), minlength=G * nw)
    out["smin"] = np.array([s[c == g].min() if (c == g).any() else np.inf for g in range(G)])
    out["smax"] = np.array([s[c == g].max() if (c == g).any() else -np.inf for g in range(G)])
    done = (k < 2) & np.isfinite(lat) & np.isfinite(e)
    cd = c[done]
    out["done_starts"] = np.bincount(cd * ne + _idx(s[done], t0, bin_, ne), minlength=G * ne)
    out["ends"] = np.bincount(cd * ne + _idx(e[done], t0, bin_, ne), minlength=G * ne)
    out["at_edge"] = (np.bincount(cd[s[done] == edge], minlength=G) if edge is not None
                      else np.zeros(G, dtype=np.int64))
    ll = _qcore.littles_law_grouped(cd, s[done], e[done], G, t0, t1, 0.02)
    out["L"] = np.array([r["L"] for r in ll])
    out["arrivals"] = np.array([r["arrivals"] for r in ll])
    out["mean_response"] = np.array([r["mean_response"] if r["mean_response"] is not None else np.nan
                                     for r in ll])
    return out


def _call(b: dict[str, np.ndarray], G: int, t0: float, t1: float, bin_: float, nw: int, ne: int,
          edge: float | None = None, sketches: list | None = None) -> dict[str, np.ndarray]:
    return _qcore.report_batch_stats(b["codes"], b["start"], b["cls"], b["end"], b["lat"], G, t0, t1, bin_,
                                     nw, ne, LIM32, edge, sketches, 0.01)


@pytest.mark.parametrize("n,G", [(5_000, 4), (200_000, 7), (3_000, 1)])
def test_matches_separate_calls(n: int, G: int) -> None:
    b = _batch(n, G, seed=n + G)
    t0, t1, bin_, nw, ne = 0.0, 100.0, 7.5, 14, 16
    edge = float(b["start"][n // 2])
    ref = _reference(b, G, t0, t1, bin_, nw, ne, edge)
    acc = [qcore.QuantileSketch(relative_accuracy=0.01) for _ in range(G)]
    r = _call(b, G, t0, t1, bin_, nw, ne, edge, acc)
    for key in ("outcomes", "windows", "smin", "smax", "done_starts", "ends", "at_edge"):
        np.testing.assert_array_equal(r[key], ref[key], err_msg=key)
    np.testing.assert_array_equal(r["arrivals"], ref["arrivals"])
    # the exact sums of littles_law's accumulator: L and the mean response to the last bit
    clipped = np.array([s.value for s in r["clipped"]])
    resp = np.array([s.value for s in r["resp"]])
    np.testing.assert_array_equal(clipped / (t1 - t0), ref["L"])
    with np.errstate(invalid="ignore"):
        mr = resp / r["arrivals"]
    np.testing.assert_array_equal(mr, ref["mean_response"])
    # the sketches: byte for byte those of sketch_groups over the ok, finite latencies
    m = (b["cls"] == 0) & np.isfinite(b["lat"])
    sep = qcore.sketch_groups(b["codes"][m], b["lat"][m], 0.01)
    for g in range(G):
        want = qcore.QuantileSketch(relative_accuracy=0.01)
        if g < len(sep) and sep[g].count > 0:
            want.merge(sep[g])
        assert acc[g].to_bytes() == want.to_bytes()
        assert acc[g].count == int(((b["codes"] == g) & m).sum())


def test_merges_into_existing_sketches() -> None:
    b1, b2 = _batch(4_000, 3, seed=1), _batch(6_000, 3, seed=2)
    acc = [qcore.QuantileSketch(relative_accuracy=0.01) for _ in range(3)]
    _call(b1, 3, 0.0, 100.0, 10.0, 10, 12, None, acc)
    _call(b2, 3, 0.0, 100.0, 10.0, 10, 12, None, acc)
    for g in range(3):
        vals = np.concatenate([x["lat"][(x["codes"] == g) & (x["cls"] == 0) & np.isfinite(x["lat"])]
                               for x in (b1, b2)])
        whole = qcore.QuantileSketch(relative_accuracy=0.01)
        whole.add(vals)
        assert acc[g].to_bytes() == whole.to_bytes()


def test_empty_batch_and_no_latency() -> None:
    e = np.empty(0)
    acc = [qcore.QuantileSketch(relative_accuracy=0.01) for _ in range(2)]
    r = _qcore.report_batch_stats(np.empty(0, np.int64), e, np.empty(0, np.int8), e, e, 2, 0.0, 10.0, 1.0,
                                  10, 10, LIM32, None, acc, 0.01)
    assert r["outcomes"].sum() == 0 and r["windows"].sum() == 0 and r["ends"].sum() == 0
    assert np.all(r["smin"] == np.inf) and np.all(r["smax"] == -np.inf)
    assert all(sk.count == 0 for sk in acc)
    # without latency: counts only, no Little's-law sums
    r = _qcore.report_batch_stats(np.array([0, 0, 1]), np.array([0.5, 2.5, 9.9]), np.array([0, 1, 2], np.int8),
                                  None, None, 2, 0.0, 10.0, 1.0, 10, 10, LIM32)
    assert r["outcomes"].tolist() == [1, 1, 0, 0, 0, 1]
    assert r["windows"].reshape(2, 10)[0].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert r["done_starts"].size == 0


def test_index_is_the_scans_cast() -> None:
    # beyond the 32-bit range the scan's non-strict cast gives null, filled with 0
    s = np.array([1e12, -3.0, 2.5, 9.99])
    r = _qcore.report_batch_stats(np.zeros(4, np.int64), s, np.zeros(4, np.int8), None, None, 1,
                                  0.0, 10.0, 1.0, 10, 10, LIM32)
    assert r["windows"].tolist() == [2, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    r = _qcore.report_batch_stats(np.zeros(4, np.int64), s, np.zeros(4, np.int8), None, None, 1,
                                  0.0, 10.0, 1.0, 10, 10, 2.0**63)
    assert r["windows"].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0, 2]


def test_bad_input_names_the_argument_and_changes_nothing() -> None:
    b = _batch(2_000, 2, seed=5)
    acc = [qcore.QuantileSketch(relative_accuracy=0.01) for _ in range(2)]
    for sk in acc:
        sk.add(np.array([1.0, 2.0]))
    before = [sk.to_bytes() for sk in acc]
    bad = dict(b)
    bad["start"] = b["start"].copy()
    bad["start"][17] = np.nan
    with pytest.raises(ValueError, match="start contains NaN at index 17"):
        _call(bad, 2, 0.0, 100.0, 10.0, 10, 12, None, acc)
    bad = dict(b)
    bad["codes"] = b["codes"].copy()
    bad["codes"][3] = 2
    with pytest.raises(ValueError, match="codes"):
        _call(bad, 2, 0.0, 100.0, 10.0, 10, 12, None, acc)
    bad = dict(b)
    bad["cls"] = b["cls"].copy()
    bad["cls"][0] = 5
    with pytest.raises(ValueError, match="cls"):
        _call(bad, 2, 0.0, 100.0, 10.0, 10, 12, None, acc)
    with pytest.raises(ValueError, match="end"):
        _call({**b, "end": b["end"][:-1]}, 2, 0.0, 100.0, 10.0, 10, 12, None, acc)
    with pytest.raises(ValueError, match="t1"):
        _call(b, 2, 5.0, 5.0, 10.0, 10, 12, None, acc)
    with pytest.raises(ValueError, match="bin"):
        _call(b, 2, 0.0, 100.0, 0.0, 10, 12, None, acc)
    with pytest.raises(ValueError, match="sketches"):
        _call(b, 2, 0.0, 100.0, 10.0, 10, 12, None, acc[:1])
    with pytest.raises(TypeError, match=r"sketches\[1\]"):
        _call(b, 2, 0.0, 100.0, 10.0, 10, 12, None, [acc[0], "x"])
    assert [sk.to_bytes() for sk in acc] == before
