//! Laws of the accumulators: splitting and merging in any grouping gives the same bytes
//! as one pass, the encodings round-trip, and bad bytes are errors.

use super::*;
use crate::arrivals::arrival_stats;
use crate::arrivals::window_count_stats;
use crate::little::littles_law;

fn rng(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unif(state: &mut u64) -> f64 {
    (rng(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// A Poisson stream of `n` arrivals at rate 1 from `t0`.
fn poisson(n: usize, t0: f64, seed: u64) -> Vec<f64> {
    let mut st = seed;
    let mut t = t0;
    (0..n)
        .map(|_| {
            t += -(1.0 - unif(&mut st)).ln();
            t
        })
        .collect()
}

/// Cut `0..n` at random points.
fn cuts(n: usize, parts: usize, seed: u64) -> Vec<std::ops::Range<usize>> {
    let mut st = seed;
    let mut c: Vec<usize> = (0..parts.saturating_sub(1))
        .map(|_| (rng(&mut st) % (n as u64 + 1)) as usize)
        .collect();
    c.push(0);
    c.push(n);
    c.sort_unstable();
    c.windows(2).map(|w| w[0]..w[1]).collect()
}

fn arrivals_in_parts(
    ts: &[f64],
    window: f64,
    parts: &[std::ops::Range<usize>],
) -> ArrivalAccumulator {
    let mut p1 = ArrivalAccumulator::new();
    for r in parts {
        let mut a = ArrivalAccumulator::new();
        a.update(&ts[r.clone()]).unwrap();
        p1.merge(&a).unwrap();
    }
    p1.advance(window).unwrap();
    let template = p1.clone();
    let mut pieces: Vec<ArrivalAccumulator> = parts
        .iter()
        .map(|r| {
            let mut a = template.clone();
            a.update(&ts[r.clone()]).unwrap();
            a
        })
        .collect();
    // Tree merge, adjacent pairs.
    while pieces.len() > 1 {
        pieces = pieces
            .chunks(2)
            .map(|c| {
                let mut a = c[0].clone();
                if let Some(b) = c.get(1) {
                    a.merge(b).unwrap();
                }
                a
            })
            .collect();
    }
    pieces.pop().unwrap_or(template)
}

#[test]
fn arrival_parts_equal_one_pass() {
    for seed in 1..20u64 {
        let ts = poisson(500 + seed as usize * 37, 1.7e9, seed);
        let whole = ArrivalAccumulator::of(&ts, 2.5).unwrap();
        for parts in [1, 2, 7, 50] {
            let acc = arrivals_in_parts(&ts, 2.5, &cuts(ts.len(), parts, seed * 31 + parts as u64));
            assert_eq!(
                acc.to_bytes(),
                whole.to_bytes(),
                "seed {seed} parts {parts}"
            );
        }
        let s = whole.finish(0.95, 8).unwrap();
        assert_eq!(s, arrival_stats(&ts, 2.5, 0.95, 8).unwrap());
    }
}

#[test]
fn arrival_merge_is_associative_and_order_free_when_disjoint() {
    let ts = poisson(3000, 0.0, 5);
    let parts = cuts(ts.len(), 3, 9);
    let mut p1 = ArrivalAccumulator::new();
    p1.update(&ts).unwrap();
    p1.advance(1.0).unwrap();
    let piece = |r: &std::ops::Range<usize>| {
        let mut a = p1.clone();
        a.update(&ts[r.clone()]).unwrap();
        a
    };
    let (a, b, c) = (piece(&parts[0]), piece(&parts[1]), piece(&parts[2]));
    let mut ab_c = a.clone();
    ab_c.merge(&b).unwrap();
    ab_c.merge(&c).unwrap();
    let mut bc = b.clone();
    bc.merge(&c).unwrap();
    let mut a_bc = a.clone();
    a_bc.merge(&bc).unwrap();
    assert_eq!(ab_c.to_bytes(), a_bc.to_bytes());
    // later part first, adjacent: still one run
    let mut ba = b.clone();
    ba.merge(&a).unwrap();
    ba.merge(&c).unwrap();
    assert_eq!(ba.to_bytes(), ab_c.to_bytes());
    // a and c first leave a hole that b overlaps: flagged, never a wrong gap sum
    let mut ac = a.clone();
    ac.merge(&c).unwrap();
    ac.merge(&b).unwrap();
    if !parts[1].is_empty() {
        assert!(!ac.in_time_order());
        assert!(ac.finish(0.95, 8).is_err());
    }
}

#[test]
fn unsorted_input_matches_sorted() {
    let ts = poisson(5000, 10.0, 3);
    let mut shuffled = ts.clone();
    let mut st = 17u64;
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, (rng(&mut st) % (i as u64 + 1)) as usize);
    }
    let a = ArrivalAccumulator::of(&ts, 3.0).unwrap();
    let b = ArrivalAccumulator::of(&shuffled, 3.0).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
}

#[test]
fn arrival_passes_are_checked() {
    let ts = poisson(100, 0.0, 2);
    let mut p1 = ArrivalAccumulator::new();
    p1.update(&ts[..50]).unwrap();
    let mut p2 = p1.clone();
    p2.advance(1.0).unwrap();
    assert!(p1.merge(&p2).is_err());
    assert!(p2.advance(1.0).is_err());
    assert!(p1.finish(0.95, 8).is_err());
    // rows outside pass 1's range, and a missing part
    assert!(p2.update(&ts[60..]).is_err());
    p2.update(&ts[..10]).unwrap();
    assert!(p2
        .finish(0.95, 8)
        .unwrap_err()
        .to_string()
        .contains("pass 2 saw 10 of the 50"));
    assert!(p1.update(&[1.0, f64::NAN]).is_err());
    assert_eq!(p1.count(), 50);
    assert!(ArrivalAccumulator::new().advance(1.0).is_err());
}

#[test]
fn poisson_dispersion_near_one() {
    // Complete windows of a Poisson stream: var/mean ≈ 1 with sd ≈ √(2/k) for k windows.
    for (n, w) in [(20_000, 1.0), (50_000, 10.0), (200_000, 2.0)] {
        let ts = poisson(n, 0.0, n as u64);
        let s = arrival_stats(&ts, w, 0.95, 8).unwrap();
        let k = s.windows as f64;
        let tol = 5.0 * (2.0 / k).sqrt();
        assert!(
            (s.index_of_dispersion - 1.0).abs() < tol,
            "{n} {w}: {}",
            s.index_of_dispersion
        );
    }
}

#[test]
fn window_count_stats_definition() {
    let w = window_count_stats(&[2, 4, 6]).unwrap();
    assert_eq!(w.mean, 4.0);
    assert_eq!(w.variance, 8.0 / 3.0);
    assert_eq!(w.index_of_dispersion, 2.0 / 3.0);
    assert_eq!(w.peak_to_mean, 1.5);
    assert!(window_count_stats(&[])
        .unwrap()
        .index_of_dispersion
        .is_nan());
    assert!(window_count_stats(&[1, -1]).is_err());
}

fn little_rows(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut st = seed;
    let s = poisson(n, 100.0, seed);
    let e = s
        .iter()
        .map(|&a| {
            let u = unif(&mut st);
            if u < 0.01 {
                f64::NAN
            } else if u < 0.02 {
                a - 1.0
            } else {
                a + 3.0 * unif(&mut st)
            }
        })
        .collect();
    let _ = rng(&mut st);
    (s, e)
}

#[test]
fn little_parts_equal_one_pass() {
    for seed in 1..12u64 {
        let (s, e) = little_rows(400 + 50 * seed as usize, seed);
        let gt: Vec<f64> = (0..40).map(|k| 100.0 + 10.0 * f64::from(k)).collect();
        let gc: Vec<f64> = gt.iter().map(|_| 3.0).collect();
        for window in [None, Some((150.0, 300.0))] {
            let (t0, t1) = window.map_or((None, None), |(a, b)| (Some(a), Some(b)));
            let whole = {
                let mut a = LittleAccumulator::new();
                a.update(&s, &e).unwrap();
                a.advance(t0, t1, Some((&gt, &gc))).unwrap();
                a.update(&s, &e).unwrap();
                a
            };
            for parts in [2, 5, 40] {
                let ranges = cuts(s.len(), parts, seed + parts as u64);
                let mut p1 = LittleAccumulator::new();
                for r in &ranges {
                    let mut a = LittleAccumulator::new();
                    a.update(&s[r.clone()], &e[r.clone()]).unwrap();
                    p1.merge(&a).unwrap();
                }
                p1.advance(t0, t1, Some((&gt, &gc))).unwrap();
                let mut acc = p1.clone();
                for r in ranges.iter().rev() {
                    let mut a = p1.clone();
                    a.update(&s[r.clone()], &e[r.clone()]).unwrap();
                    acc.merge(&a).unwrap();
                }
                assert_eq!(acc.to_bytes(), whole.to_bytes());
            }
            let r = whole.finish(0.02, 0.9).unwrap();
            let direct = littles_law(&s, &e, t0, t1, Some((&gt, &gc)), 0.02, 0.9).unwrap();
            assert_eq!(r, direct);
        }
    }
}

#[test]
fn little_exact_by_hand() {
    let s = [0.0, 1.0, 3.0];
    let e = [2.0, 4.0, 5.0];
    let r = littles_law(&s, &e, None, None, None, 0.02, 0.95).unwrap();
    assert_eq!(r.l, 7.0 / 5.0);
    assert!(r.gap < 1e-15);
    let mut a = LittleAccumulator::new();
    a.update(&s, &e).unwrap();
    assert!(a.finish(0.02, 0.95).is_err());
    let mut b = a.clone();
    b.advance(None, None, None).unwrap();
    assert!(a.merge(&b).is_err());
    let other = LittleAccumulator::window_pass(0.0, 4.0, 5.0, None).unwrap();
    assert!(b.merge(&other).is_err());
    assert!(LittleAccumulator::window_pass(1.0, 1.0, 5.0, None).is_err());
    assert!(a.update(&[1.0], &[f64::INFINITY]).is_err());
    assert_eq!(a.rows(), 3);
}

#[test]
fn encodings_round_trip() {
    let ts = poisson(300, 5.0, 8);
    let mut a = ArrivalAccumulator::new();
    a.update(&ts).unwrap();
    let mut values = vec![a.to_bytes()];
    a.advance(4.0).unwrap();
    values.push(a.to_bytes());
    a.update(&ts).unwrap();
    values.push(a.to_bytes());
    for v in &values {
        assert_eq!(&ArrivalAccumulator::from_bytes(v).unwrap().to_bytes(), v);
    }
    let (s, e) = little_rows(200, 4);
    let mut l = LittleAccumulator::new();
    l.update(&s, &e).unwrap();
    let mut lv = vec![l.to_bytes()];
    l.advance(None, None, Some((&[120.0, 150.0, 200.0], &[1.0, 2.0, 3.0])))
        .unwrap();
    l.update(&s, &e).unwrap();
    lv.push(l.to_bytes());
    for v in &lv {
        assert_eq!(&LittleAccumulator::from_bytes(v).unwrap().to_bytes(), v);
    }
    let mut x = ExactSum::new();
    x.update(&[1e300, -1e300, 0.1, 3.0]).unwrap();
    assert_eq!(ExactSum::from_bytes(&x.to_bytes()).unwrap(), x);
    assert_eq!(x.to_f64(), 3.1);
}

#[test]
fn bad_bytes_are_errors() {
    let ts = poisson(300, 5.0, 8);
    let mut a = ArrivalAccumulator::new();
    a.update(&ts).unwrap();
    a.advance(4.0).unwrap();
    a.update(&ts).unwrap();
    let (s, e) = little_rows(200, 4);
    let mut l = LittleAccumulator::new();
    l.update(&s, &e).unwrap();
    l.advance(None, None, None).unwrap();
    l.update(&s, &e).unwrap();
    let mut x = ExactSum::new();
    x.update(&ts).unwrap();
    let good = [a.to_bytes(), l.to_bytes(), x.to_bytes()];
    let decode = |k: usize, b: &[u8]| -> bool {
        match k {
            0 => ArrivalAccumulator::from_bytes(b).is_ok(),
            1 => LittleAccumulator::from_bytes(b).is_ok(),
            _ => ExactSum::from_bytes(b).is_ok(),
        }
    };
    let mut st = 99u64;
    for (k, g) in good.iter().enumerate() {
        // every truncation, a trailing byte, the wrong kind, a future version
        for cut in 0..g.len() {
            assert!(!decode(k, &g[..cut]), "kind {k} truncated at {cut}");
        }
        let mut long = g.clone();
        long.push(0);
        assert!(!decode(k, &long));
        assert!(!decode((k + 1) % 3, g));
        let mut v = g.clone();
        v[3] = 2;
        assert!(!decode(k, &v));
        // random corruption never panics
        for _ in 0..2000 {
            let mut c = g.clone();
            let i = (rng(&mut st) % c.len() as u64) as usize;
            c[i] ^= 1 << (rng(&mut st) % 8);
            let _ = decode(k, &c);
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_budget() {
    let ts = poisson(600_000, 0.0, 21);
    let (s, e) = little_rows(600_000, 22);
    crate::threads::set_max_threads(Some(1)).unwrap();
    let a1 = ArrivalAccumulator::of(&ts, 1.0).unwrap().to_bytes();
    let l1 = littles_law(&s, &e, None, None, None, 0.02, 0.95).unwrap();
    crate::threads::set_max_threads(Some(4)).unwrap();
    let a4 = ArrivalAccumulator::of(&ts, 1.0).unwrap().to_bytes();
    let l4 = littles_law(&s, &e, None, None, None, 0.02, 0.95).unwrap();
    crate::threads::set_max_threads(None).unwrap();
    assert_eq!(a1, a4);
    assert_eq!(l1, l4);
}

#[test]
#[ignore = "timing, run by hand with --release"]
fn timing_of_the_exact_passes() {
    let ts = poisson(10_000_000, 0.0, 1);
    let m = (ts[ts.len() - 1] - ts[0]) / (ts.len() - 1) as f64;
    let t = std::time::Instant::now();
    let mut f = 0.0;
    for i in 0..ts.len() - 1 {
        let d = ts[i + 1] - ts[i] - m;
        f += d * d;
    }
    let plain = t.elapsed();
    let t = std::time::Instant::now();
    let mut x = FixedSum::new(m * m);
    x.add_all(ts.windows(2).map(|w| {
        let d = w[1] - w[0] - m;
        d * d
    }));
    let fixed = t.elapsed();
    let t = std::time::Instant::now();
    let a = ArrivalAccumulator::of(&ts, 1000.0).unwrap();
    let of = t.elapsed();
    let e: Vec<f64> = ts.iter().map(|v| v + 1.0).collect();
    let t = std::time::Instant::now();
    let l = littles_law(&ts, &e, Some(10.0), Some(9e6), None, 0.02, 0.95).unwrap();
    let little = t.elapsed();
    println!(
        "plain {plain:?} fixed {fixed:?} of {of:?} little {little:?} ({f} {} {} {})",
        x.finish().to_f64(),
        a.count(),
        l.l
    );
}

/// A report batch of `n` rows in `groups` groups: starts over `[-5, 105)`, lognormal-ish
/// latencies, a few incomplete and failed rows.
#[allow(clippy::type_complexity)]
fn report_rows(
    n: usize,
    groups: usize,
    seed: u64,
) -> (Vec<i64>, Vec<f64>, Vec<i8>, Vec<f64>, Vec<f64>) {
    let mut st = seed;
    let mut start: Vec<f64> = (0..n).map(|_| -5.0 + 110.0 * unif(&mut st)).collect();
    start.sort_by(f64::total_cmp);
    let lat: Vec<f64> = (0..n).map(|_| (2.0 * unif(&mut st) - 1.5).exp()).collect();
    let end: Vec<f64> = start.iter().zip(&lat).map(|(s, l)| s + l).collect();
    let cls: Vec<i8> = (0..n)
        .map(|_| (rng(&mut st) % 10).saturating_sub(7) as i8)
        .collect();
    let codes: Vec<i64> = (0..n)
        .map(|_| (rng(&mut st) % groups as u64) as i64)
        .collect();
    (codes, start, cls, end, lat)
}

fn report_grid(edge: Option<f64>) -> crate::arrivals::Windows {
    crate::arrivals::Windows {
        t0: 0.0,
        t1: 100.0,
        bin: 7.5,
        n_windows: 14,
        n_end: 16,
        index_limit: 2f64.powi(31),
        edge,
    }
}

#[test]
fn report_parts_and_merges_equal_one_pass() {
    for (n, groups, seed) in [
        (0usize, 1usize, 1u64),
        (1, 2, 2),
        (5_000, 4, 3),
        (20_000, 9, 4),
    ] {
        let (codes, start, cls, end, lat) = report_rows(n, groups, seed);
        let edge = start.get(n / 2).copied();
        let mut whole = ReportAccumulator::new(report_grid(edge)).unwrap();
        whole
            .update(
                &codes,
                &start,
                &cls,
                Some(&end),
                Some(&lat),
                groups,
                None,
                None,
            )
            .unwrap();
        for parts in [2, 5] {
            let mut folded = ReportAccumulator::new(report_grid(edge)).unwrap();
            let mut merged = ReportAccumulator::new(report_grid(edge)).unwrap();
            for r in cuts(n, parts, seed + parts as u64) {
                let (c, s, k, e, l) = (
                    &codes[r.clone()],
                    &start[r.clone()],
                    &cls[r.clone()],
                    &end[r.clone()],
                    &lat[r],
                );
                folded
                    .update(c, s, k, Some(e), Some(l), groups, None, None)
                    .unwrap();
                // the part on its own, with its codes reversed, mapped back when merged
                let local: Vec<i64> = c.iter().map(|&v| groups as i64 - 1 - v).collect();
                let map: Vec<i64> = (0..groups as i64).rev().collect();
                let mut part = ReportAccumulator::new(report_grid(edge)).unwrap();
                part.update(&local, s, k, Some(e), Some(l), groups, None, None)
                    .unwrap();
                merged.merge(&part, Some(&map)).unwrap();
            }
            assert_eq!(folded.to_bytes(), whole.to_bytes(), "n {n}, {parts} parts");
            assert_eq!(merged, whole, "n {n}, {parts} merged parts");
        }
        let back = ReportAccumulator::from_bytes(&whole.to_bytes()).unwrap();
        assert_eq!(back, whole);
        // the total is the fold of every row under one code
        let mut one = ReportAccumulator::new(report_grid(edge)).unwrap();
        let zeros = vec![0i64; n];
        one.update(&zeros, &start, &cls, Some(&end), Some(&lat), 1, None, None)
            .unwrap();
        assert_eq!(whole.total(), one);
    }
}

#[test]
fn report_finish_is_the_cores_statistics() {
    let (codes, start, cls, end, lat) = report_rows(30_000, 3, 7);
    let mut acc = ReportAccumulator::new(report_grid(None)).unwrap();
    acc.update(&codes, &start, &cls, Some(&end), Some(&lat), 3, None, None)
        .unwrap();
    let s1 = start.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for k in 0..3 {
        let f = acc.finish_group(k, s1, 0.95, 0.02).unwrap();
        let g = acc.group(k).unwrap();
        let n = g.outcomes.iter().sum::<i64>() as u64;
        let st = crate::arrivals::ArrivalStats::from_parts(
            n,
            0.0,
            s1,
            g.windows,
            f64::NAN,
            7.5,
            0.95,
            8,
        )
        .unwrap();
        assert_eq!(f.rate, Some((st.rate, st.rate_ci)));
        assert_eq!(f.n, n);
        // Little's law of the group's completed rows over [t0, t1)
        let (mut s, mut e) = (Vec::new(), Vec::new());
        for i in 0..codes.len() {
            if codes[i] == k as i64 && cls[i] < 2 {
                s.push(start[i]);
                e.push(end[i]);
            }
        }
        let ll = littles_law(&s, &e, Some(0.0), Some(100.0), None, 0.02, 0.95).unwrap();
        let little = f.little.unwrap();
        assert_eq!(little.l, ll.l);
        assert_eq!(little.mean_response, ll.mean_response);
        let mut run = 0i64;
        for (j, v) in f.in_flight.iter().enumerate() {
            run += g.done_starts[j] - g.ends[j];
            assert_eq!(*v, run);
        }
    }
    assert!(acc.finish_group(3, s1, 0.95, 0.02).is_err());
    assert!(acc.finish_group(0, s1, 1.5, 0.02).is_err());
}

#[test]
fn report_bad_input_changes_nothing_and_bad_bytes_are_errors() {
    let (codes, start, cls, end, lat) = report_rows(1_000, 2, 9);
    let mut acc = ReportAccumulator::new(report_grid(None)).unwrap();
    acc.update(&codes, &start, &cls, Some(&end), Some(&lat), 2, None, None)
        .unwrap();
    let before = acc.clone();
    let mut bad = start.clone();
    bad[3] = f64::NAN;
    assert!(acc
        .update(&codes, &bad, &cls, Some(&end), Some(&lat), 2, None, None)
        .is_err());
    assert!(acc
        .update(&codes, &start, &cls, Some(&end), Some(&lat), 1, None, None)
        .is_err());
    let other = ReportAccumulator::new(crate::arrivals::Windows {
        bin: 5.0,
        ..report_grid(None)
    })
    .unwrap();
    assert!(acc.merge(&other, None).is_err());
    assert!(acc.merge(&before.clone(), Some(&[0])).is_err());
    assert!(!acc.clone().settle(50.0, 2, false).unwrap());
    assert_eq!(acc, before);
    let bytes = acc.to_bytes();
    for cut in 0..bytes.len() {
        assert!(ReportAccumulator::from_bytes(&bytes[..cut]).is_err());
    }
    let mut flipped = bytes.clone();
    for (i, &orig) in bytes.iter().enumerate() {
        flipped[i] = orig ^ 0x5a;
        let _ = ReportAccumulator::from_bytes(&flipped);
        flipped[i] = orig;
    }
}
