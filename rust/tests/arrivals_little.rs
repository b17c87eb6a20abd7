//! Property tests of window counts and Little's law through the public API, on seeded
//! random inputs, against brute-force references written from the documented definitions.

mod common;

use common::XorShift;
use qcore::arrivals::window_counts;
use qcore::little::littles_law;

const CASES: u64 = 40;

/// Timestamps over `[0, span)`, sorted or not, with duplicates.
fn timestamps(r: &mut XorShift, n: usize, span: f64) -> Vec<f64> {
    let mut ts: Vec<f64> = (0..n).map(|_| r.unit() * span).collect();
    for i in 0..n / 10 {
        ts[i] = ts[n - 1 - i]; // repeats
    }
    if r.below(2) == 0 {
        ts.sort_by(f64::total_cmp);
    }
    ts
}

#[test]
fn window_counts_sum_to_the_count() {
    for seed in 1..=CASES {
        let mut r = XorShift::new(seed);
        let n = [1, 7, 100, 5000, 300_000][r.below(5)];
        let ts = timestamps(&mut r, n, 1000.0);
        let window = [0.001, 0.37, 1.0, 60.0, 5000.0][r.below(5)];
        let counts = window_counts(&ts, window, None, None).unwrap();
        assert_eq!(counts.iter().sum::<i64>(), n as i64, "seed {seed}");
        assert!(counts.iter().all(|&c| c >= 0), "seed {seed}");
        // the first window holds the smallest timestamp, the last the largest
        assert!(counts[0] > 0 && counts[counts.len() - 1] > 0, "seed {seed}");
    }
}

#[test]
fn window_counts_match_the_documented_rule() {
    // With `start` and `end`: ceil((end - start) / window) windows; the window of `t` is
    // floor((t - start) / window); timestamps outside [start, end) are not counted.
    for seed in 1..=CASES {
        let mut r = XorShift::new(seed);
        let n = [0, 1, 9, 1000, 50_000][r.below(5)];
        let ts = timestamps(&mut r, n, 1000.0);
        let window = [0.5, 3.0, 7.25, 100.0][r.below(4)];
        let start = r.unit() * 400.0 - 100.0;
        let end = start + 1.0 + r.unit() * 900.0;
        let counts = window_counts(&ts, window, Some(start), Some(end)).unwrap();
        let k = ((end - start) / window).ceil() as usize;
        assert_eq!(counts.len(), k, "seed {seed}");
        let mut want = vec![0i64; k];
        for &t in &ts {
            if t >= start && t < end {
                want[((t - start) / window).floor() as usize] += 1;
            }
        }
        assert_eq!(counts, want, "seed {seed}");
        let inside = ts.iter().filter(|&&t| t >= start && t < end).count();
        assert_eq!(counts.iter().sum::<i64>(), inside as i64, "seed {seed}");
    }
}

/// Request rows: starts over `[0, 100)`, exponential response times of mean `mean`.
fn rows(r: &mut XorShift, n: usize, mean: f64) -> (Vec<f64>, Vec<f64>) {
    (0..n)
        .map(|_| {
            let s = r.unit() * 100.0;
            (s, s + mean * r.exp1())
        })
        .unzip()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn littles_law_is_an_identity_over_the_whole_log() {
    // Over [first start, last end) every request is inside the window: L = λW exactly,
    // up to rounding.
    for seed in 1..=CASES {
        let mut r = XorShift::new(seed);
        let n = [1, 8, 13, 1000, 200_000][r.below(5)];
        let mean = 0.1 + r.unit() * 5.0;
        let (s, e) = rows(&mut r, n, mean);
        let res = littles_law(&s, &e, None, None, None, 0.02, 0.95).unwrap();
        assert_eq!(res.arrivals, n as u64, "seed {seed}");
        assert!(close(res.l, res.lambda_w, 1e-9), "seed {seed}: {res:?}");
        assert!(res.edge_term.abs() <= 1e-9 * res.l.max(1.0), "seed {seed}");
    }
}

#[test]
fn littles_law_on_random_windows_matches_brute_force() {
    for seed in 1..=CASES {
        let mut r = XorShift::new(seed);
        let n = [1, 8, 13, 1000, 200_000][r.below(5)];
        let mean = 0.1 + r.unit() * 5.0;
        let (s, e) = rows(&mut r, n, mean);
        let t0 = r.unit() * 80.0;
        let t1 = t0 + 0.5 + r.unit() * 40.0;
        let res = littles_law(&s, &e, Some(t0), Some(t1), None, 0.02, 0.95).unwrap();
        let len = t1 - t0;
        let mut area = 0.0;
        let (mut arrivals, mut resp, mut at_t0, mut at_t1, mut max_edge) =
            (0u64, 0.0, 0, 0, 0.0f64);
        for (&a, &b) in s.iter().zip(&e) {
            area += (b.min(t1) - a.max(t0)).max(0.0);
            let pre = a < t0 && b > t0;
            let inside = a >= t0 && a < t1;
            at_t0 += u64::from(pre);
            if inside {
                arrivals += 1;
                resp += b - a;
                at_t1 += u64::from(b > t1);
            }
            if pre || (inside && b > t1) {
                max_edge = max_edge.max(b - a);
            }
        }
        assert_eq!(res.arrivals, arrivals, "seed {seed}");
        assert_eq!(
            (res.in_flight_t0, res.in_flight_t1),
            (at_t0, at_t1),
            "seed {seed}"
        );
        assert!(
            close(res.l, area / len, 1e-9),
            "seed {seed}: {} vs {}",
            res.l,
            area / len
        );
        assert!(
            close(res.arrival_rate, arrivals as f64 / len, 1e-12),
            "seed {seed}"
        );
        if arrivals > 0 {
            assert!(
                close(res.mean_response, resp / arrivals as f64, 1e-9),
                "seed {seed}"
            );
        }
        // λW − L is exactly the edge term, and the bound bounds it
        assert!(
            close(res.lambda_w - res.l, res.edge_term, 1e-9),
            "seed {seed}: {} vs {}",
            res.lambda_w - res.l,
            res.edge_term
        );
        assert!(
            res.edge_term.abs() <= res.edge_bound * (1.0 + 1e-9) + 1e-12,
            "seed {seed}"
        );
        let bound = (at_t0 + at_t1) as f64 * max_edge / len;
        assert!(
            res.edge_bound <= bound * (1.0 + 1e-9) + 1e-12,
            "seed {seed}"
        );
    }
}
