//! Bulk ingest for instruction counts (`valgrind --tool=callgrind`) and quick timings.
//!
//! ```sh
//! cargo build --release --example sketch_ingest
//! valgrind --tool=callgrind target/release/examples/sketch_ingest lognormal 1000000 1
//! target/release/examples/sketch_ingest real 10000000 20 python/qcore/data/gentd26_lora_2024-12-03.csv
//! ```
//!
//! Data: `lognormal` (μ = 0, σ = 1), or `real` (the `exec_time_seconds` column of a CSV,
//! repeated to the requested length). Prints the best time per ingest of all values into
//! a fresh sketch, and the sum (so the work cannot be optimised away). With `SKETCH_GROUPS=g`
//! in the environment: `sketch_groups` over `g` equal groups (sorted codes) instead. With
//! `SKETCH_KERNEL=k` (and `SKETCH_GROUPS=g`, default 3): the report's batch kernel
//! (`batch_stats_windows`) over `n` rows in time order, random group codes, 1 % errors, the
//! values as latencies, sketched by group and plot window (600 windows, `k` per plot
//! window; `k = 0`: by group only).

use qcore::sketch::QuantileSketch;
use std::time::Instant;

fn lognormal(n: usize) -> Vec<f64> {
    let mut s = 42u64;
    let mut next = || {
        s = s.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next().max(1e-300), next());
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()).exp()
        })
        .collect()
}

fn real(n: usize, path: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).expect("read the CSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = header
        .iter()
        .position(|&h| h == "exec_time_seconds")
        .expect("exec_time_seconds column");
    let base: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(col).and_then(|x| x.parse().ok()))
        .collect();
    base.iter().copied().cycle().take(n).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map_or("lognormal", String::as_str);
    let n: usize = args
        .get(2)
        .and_then(|x| x.parse().ok())
        .unwrap_or(1_000_000);
    let reps: usize = args.get(3).and_then(|x| x.parse().ok()).unwrap_or(1);
    let values = match kind {
        "real" => real(
            n,
            args.get(4).map_or(
                "python/qcore/data/gentd26_lora_2024-12-03.csv",
                String::as_str,
            ),
        ),
        _ => lognormal(n),
    };
    let groups: i64 = std::env::var("SKETCH_GROUPS")
        .ok()
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    if let Some(k) = std::env::var("SKETCH_KERNEL")
        .ok()
        .and_then(|k| k.parse::<usize>().ok())
    {
        kernel(&values, groups.max(1) as usize, k, reps);
        return;
    }
    if groups > 0 {
        // SKETCH_GROUPS=g: sketch_groups over sorted codes, g groups of equal size.
        let mut codes: Vec<i64> = (0..n as i64).map(|k| k * groups / n as i64).collect();
        if std::env::var("SKETCH_CODES").is_ok_and(|c| c == "random") {
            // SKETCH_CODES=random: the same group sizes in a fixed pseudo-random order.
            let mut s = 7u64;
            for k in (1..n).rev() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                codes.swap(k, (s >> 33) as usize % (k + 1));
            }
        }
        let template = QuantileSketch::new(0.01).expect("sketch");
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            let gs =
                qcore::sketch::sketch_groups(&codes, &values, None, &template).expect("groups");
            best = best.min(t.elapsed().as_secs_f64());
            assert_eq!(gs.len() as i64, groups);
        }
        println!("{kind} n={n} groups={groups}: best {:.3} ms", best * 1e3);
        return;
    }
    let mut best = f64::INFINITY;
    let mut sum = 0.0;
    for _ in 0..reps {
        let mut sk = QuantileSketch::new(0.01).expect("sketch");
        let t = Instant::now();
        sk.add_slice(&values).expect("finite values");
        best = best.min(t.elapsed().as_secs_f64());
        sum += sk.sum();
    }
    println!(
        "{kind} n={n}: best {:.3} ms, {:.0} M values/s (sum {sum:.6e})",
        best * 1e3,
        n as f64 / best / 1e6
    );
}

/// The report's batch kernel on `values` as the latencies of `values.len()` rows.
fn kernel(values: &[f64], groups: usize, k: usize, reps: usize) {
    let n = values.len();
    let mut s = 11u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    let n_windows = 600usize;
    let start: Vec<f64> = (0..n)
        .map(|i| i as f64 * n_windows as f64 / n as f64)
        .collect();
    let codes: Vec<i64> = (0..n).map(|_| (next() % groups as u64) as i64).collect();
    let cls: Vec<i8> = (0..n).map(|_| i8::from(next() % 100 == 0)).collect();
    let end: Vec<f64> = start.iter().zip(values).map(|(s, l)| s + l).collect();
    let w = qcore::arrivals::Windows {
        t0: 0.0,
        t1: n_windows as f64 + 100.0,
        bin: 1.0,
        n_windows,
        n_end: n_windows + 101,
        index_limit: 2f64.powi(31),
        edge: None,
    };
    let template = QuantileSketch::new(0.01).expect("sketch");
    // Best time with the sketches and without them (counts only); on one core
    // (`taskset -c 0`) the difference is the sketch thread's time.
    let mut best = [f64::INFINITY; 2];
    for _ in 0..reps {
        for (b, tpl) in best.iter_mut().zip([Some(&template), None]) {
            let t = Instant::now();
            let r = qcore::arrivals::batch_stats_windows(
                &codes,
                &start,
                &cls,
                Some(&end),
                Some(values),
                groups,
                w,
                tpl,
                (k > 0).then_some(k),
            )
            .expect("kernel");
            *b = b.min(t.elapsed().as_secs_f64());
            assert_eq!(r.sketches.is_empty(), tpl.is_none());
        }
    }
    println!(
        "kernel n={n} groups={groups} k={k}: best {:.3} ms, {:.1} ns/row; without sketches \
         {:.3} ms; difference {:.1} ns/row",
        best[0] * 1e3,
        best[0] * 1e9 / n as f64,
        best[1] * 1e3,
        (best[0] - best[1]) * 1e9 / n as f64
    );
}
