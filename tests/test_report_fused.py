"""The report's accumulator (:class:`qcore.ReportAccumulator`, the one-pass batch kernel)
against the separate calls (numpy references, ``littles_law_grouped`` and ``sketch_groups``),
and its merge, encoding and finish."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _tables(acc: _qcore.ReportAccumulator) -> dict[str, Any]:
    """Every group's tables, concatenated in code order (the kernel's row-major layout)."""
    gs = [acc.group(k) for k in range(acc.n_groups)]
    out: dict[str, Any] = {k: np.concatenate([np.asarray(g[k]) for g in gs]) if gs else np.zeros(0, np.int64)
                           for k in ("outcomes", "windows", "errors", "done_starts", "ends")}
    for k in ("smin", "smax", "arrivals", "at_edge"):
        out[k] = np.array([g[k] for g in gs])
    out["clipped"] = [g["clipped"] for g in gs]
    out["resp"] = [g["resp"] for g in gs]
    return out


def _acc(t0: float, t1: float, bin_: float, nw: int, ne: int, edge: float | None = None,
         lim: float = LIM32) -> _qcore.ReportAccumulator:
    return _qcore.ReportAccumulator(t0, t1, bin_, nw, ne, lim, edge)


def _call(b: dict[str, np.ndarray], G: int, t0: float, t1: float, bin_: float, nw: int, ne: int,
          edge: float | None = None, sketches: list | None = None,
          acc: _qcore.ReportAccumulator | None = None) -> dict[str, Any]:
    acc = acc if acc is not None else _acc(t0, t1, bin_, nw, ne, edge)
    acc.update(b["codes"], b["start"], b["cls"], b["end"], b["lat"], G, sketches, 0.01)
    return _tables(acc)


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
    empty = {"codes": np.empty(0, np.int64), "start": e, "cls": np.empty(0, np.int8), "end": e, "lat": e}
    r = _call(empty, 2, 0.0, 10.0, 1.0, 10, 10, None, acc)
    assert r["outcomes"].sum() == 0 and r["windows"].sum() == 0 and r["ends"].sum() == 0
    assert np.all(r["smin"] == np.inf) and np.all(r["smax"] == -np.inf)
    assert all(sk.count == 0 for sk in acc)
    # without latency: counts only, no Little's-law sums
    acc2 = _acc(0.0, 10.0, 1.0, 10, 10)
    acc2.update(np.array([0, 0, 1]), np.array([0.5, 2.5, 9.9]), np.array([0, 1, 2], np.int8), None, None, 2)
    r = _tables(acc2)
    assert r["outcomes"].tolist() == [1, 1, 0, 0, 0, 1]
    assert r["windows"].reshape(2, 10)[0].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert r["done_starts"].sum() == 0 and not acc2.group(0)["latency"]


def test_index_is_the_scans_cast() -> None:
    # beyond the 32-bit range the scan's non-strict cast gives null, filled with 0
    s = np.array([1e12, -3.0, 2.5, 9.99])
    for lim, want in ((LIM32, [2, 0, 1, 0, 0, 0, 0, 0, 0, 1]), (2.0**63, [1, 0, 1, 0, 0, 0, 0, 0, 0, 2])):
        acc = _acc(0.0, 10.0, 1.0, 10, 10, lim=lim)
        acc.update(np.zeros(4, np.int64), s, np.zeros(4, np.int8), None, None, 1)
        assert acc.group(0)["windows"].tolist() == want


def test_bad_input_names_the_argument_and_changes_nothing() -> None:
    b = _batch(2_000, 2, seed=5)
    acc = [qcore.QuantileSketch(relative_accuracy=0.01) for _ in range(2)]
    for sk in acc:
        sk.add(np.array([1.0, 2.0]))
    state = _acc(0.0, 100.0, 10.0, 10, 12)
    _call(b, 2, 0.0, 100.0, 10.0, 10, 12, None, acc, state)
    before = [sk.to_bytes() for sk in acc]
    seen = state.to_bytes()

    def fold(b: dict[str, np.ndarray], G: int = 2, sketches: list | None = None) -> None:
        state.update(b["codes"], b["start"], b["cls"], b["end"], b["lat"], G, acc if sketches is None else sketches,
                     0.01)

    bad = dict(b)
    bad["start"] = b["start"].copy()
    bad["start"][17] = np.nan
    with pytest.raises(ValueError, match="start contains NaN at index 17"):
        fold(bad)
    bad = dict(b)
    bad["codes"] = b["codes"].copy()
    bad["codes"][3] = 2
    with pytest.raises(ValueError, match="codes"):
        fold(bad)
    bad = dict(b)
    bad["cls"] = b["cls"].copy()
    bad["cls"][0] = 5
    with pytest.raises(ValueError, match="cls"):
        fold(bad)
    with pytest.raises(ValueError, match="end"):
        fold({**b, "end": b["end"][:-1]})
    with pytest.raises(ValueError, match="sketches"):
        fold(b, sketches=acc[:1])
    with pytest.raises(TypeError, match=r"sketches\[1\]"):
        fold(b, sketches=[acc[0], "x"])
    with pytest.raises(ValueError, match="n_groups"):
        fold(b, G=1, sketches=acc[:1])   # fewer groups than it holds
    assert [sk.to_bytes() for sk in acc] == before
    assert state.to_bytes() == seen
    # the grid is checked when the accumulator is made
    with pytest.raises(ValueError, match="t1"):
        _acc(5.0, 5.0, 10.0, 10, 12)
    with pytest.raises(ValueError, match="bin"):
        _acc(0.0, 100.0, 0.0, 10, 12)
    with pytest.raises(ValueError, match="n_windows"):
        _acc(0.0, 100.0, 1.0, 0, 12)
    with pytest.raises(ValueError, match="t0"):
        _acc(np.nan, 100.0, 1.0, 10, 12)


def _folded(parts: list[dict[str, np.ndarray]], G: int, edge: float | None = None) -> _qcore.ReportAccumulator:
    acc = _acc(0.0, 100.0, 7.5, 14, 16, edge)
    for b in parts:
        acc.update(b["codes"], b["start"], b["cls"], b["end"], b["lat"], G)
    return acc


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 400), G=st.integers(1, 6), cuts=st.lists(st.integers(0, 400), max_size=4),
       seed=st.integers(0, 2**16))
def test_any_cut_and_any_merge_order_gives_the_same_state(n: int, G: int, cuts: list[int], seed: int) -> None:
    """Batches folded one after another, or folded apart and merged in any order (with their
    group codes permuted and mapped back), give the same bytes as one fold."""
    b = _batch(n, G, seed)
    edge = float(b["start"][n // 2]) if n else None
    whole = _folded([b], G, edge)
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    parts = [{k: v[a:z] for k, v in b.items()} for a, z in zip(bounds, bounds[1:], strict=False)] or [b]
    assert _folded(parts, G, edge).to_bytes() == whole.to_bytes()
    rng = np.random.default_rng(seed)
    merged = _acc(0.0, 100.0, 7.5, 14, 16, edge)
    merged.grow(G)
    for p in reversed(parts):
        perm = rng.permutation(G)              # part-local codes: local j is global perm[j]
        inv = np.argsort(perm)
        local = {**p, "codes": inv[p["codes"]].astype(np.int64)}
        merged.merge(_folded([local], G, edge), perm.astype(np.int64))
    assert merged.to_bytes() == whole.to_bytes()
    assert merged == whole
    again = _qcore.ReportAccumulator.from_bytes(whole.to_bytes())
    assert again == whole and pickle.loads(pickle.dumps(whole)) == whole
    # every group merged into one is the fold of the rows under one code
    one = _folded([{**b, "codes": np.zeros(n, np.int64)}], 1, edge)
    assert whole.total() == one


def test_finish_group_is_arrival_stats_and_littles_law() -> None:
    b = _batch(20_000, 3, seed=9)
    b["cls"][:] = 0
    acc = _folded([b], 3)
    s1 = float(b["start"].max())
    for g in range(3):
        f = acc.finish_group(g, s1, 0.9, 0.02)
        mine = b["codes"] == g
        tables = acc.group(g)
        want = _qcore.arrival_stats_from_parts(int(mine.sum()), 0.0, s1, tables["windows"], np.nan, 7.5, 0.9)
        assert f["rate"] == (want["rate"], want["rate_ci"])
        assert f["stats"]["index_of_dispersion"] == want["index_of_dispersion"]
        done = mine & np.isfinite(b["lat"]) & np.isfinite(b["end"])
        ref = _qcore.littles_law_grouped(np.zeros(int(done.sum()), np.int64), b["start"][done], b["end"][done], 1,
                                         0.0, 100.0, 0.02)[0]
        assert f["little"]["L"] == ref["L"]
        assert f["little"]["mean_response"] == ref["mean_response"]
        inf = np.cumsum(tables["done_starts"]) - np.cumsum(tables["ends"])
        assert f["in_flight"].tolist() == inf.tolist() == f["peak_lo"].tolist()
        assert f["peak_hi"].tolist() == (np.concatenate([[0], inf[:-1]]) + tables["done_starts"]).tolist()


def test_settle_cuts_the_end_windows_or_refuses() -> None:
    b = _batch(5_000, 2, seed=3)
    acc = _folded([b], 2, edge=float(b["start"][100]))
    before = acc.to_bytes()
    assert not acc.settle(50.0, 3, True)          # rows were counted past 3 end windows
    assert acc.to_bytes() == before
    ends = max(int(np.flatnonzero(acc.group(g)["ends"] + acc.group(g)["done_starts"]).max()) for g in range(2))
    assert acc.settle(99.0, ends + 1, True)
    assert acc.grid[1] == 99.0 and acc.grid[4] == ends + 1
    assert acc.group(0)["ends"].size == ends + 1
    with pytest.raises(ValueError, match="n_end"):
        acc.settle(99.0, 99, False)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), flip=st.integers(0, 10_000))
def test_from_bytes_never_panics(data: bytes, flip: int) -> None:
    good = bytearray(_folded([_batch(50, 2, seed=1)], 2).to_bytes())
    good[flip % len(good)] ^= 0xFF
    for blob in (data, bytes(good), bytes(good[: flip % len(good)])):
        try:
            _qcore.ReportAccumulator.from_bytes(blob)
        except ValueError:
            pass
