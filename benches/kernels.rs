//! Benchmarks of the Rust kernels (divan): `cargo bench --bench kernels`.
//! Figures, command and machine are recorded in BENCHMARKS.md.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use qcore::arrivals::window_counts;
use qcore::little::littles_law;
use qcore::llm::{run_engine, ReplicaConfig, RunOptions, StepTime, Workload};
use qcore::sim::{run, ArrivalProcess, Dist, Method, SimConfig};
use qcore::sketch::QuantileSketch;

fn main() {
    divan::main();
}

/// A seeded xorshift64* stream of uniforms in `[0, 1)`.
fn uniforms(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// Log-normal-like latencies (`exp` of a sum of uniforms), seconds.
fn latencies(seed: u64, n: usize) -> Vec<f64> {
    let u = uniforms(seed, 2 * n);
    u.chunks_exact(2)
        .map(|p| (3.0 * (p[0] + p[1]) - 6.0).exp())
        .collect()
}

fn sketch_of(values: &[f64]) -> QuantileSketch {
    let mut s = QuantileSketch::new(0.01).unwrap();
    s.add_slice(values).unwrap();
    s
}

const N: usize = 1_000_000;

mod sketch {
    use super::{black_box, latencies, sketch_of, Bencher, ItemsCount, QuantileSketch, N};

    /// `add_slice` of 10⁶ latencies into an empty sketch (α = 0.01).
    #[divan::bench(sample_count = 20)]
    fn add(bencher: Bencher) {
        let v = latencies(1, N);
        bencher
            .counter(ItemsCount::new(N))
            .bench(|| sketch_of(black_box(&v)));
    }

    /// Merge of two sketches of 10⁶ values each.
    #[divan::bench]
    fn merge(bencher: Bencher) {
        let (a, b) = (sketch_of(&latencies(1, N)), sketch_of(&latencies(2, N)));
        bencher
            .with_inputs(|| a.clone())
            .bench_local_refs(|m| m.merge(black_box(&b)).unwrap());
    }

    /// Five quantiles of a sketch of 10⁶ values.
    #[divan::bench]
    fn quantiles(bencher: Bencher) {
        let s = sketch_of(&latencies(1, N));
        let qs = [0.5, 0.9, 0.99, 0.999, 0.9999];
        bencher.bench(|| black_box(&s).quantiles(black_box(&qs)).unwrap());
    }

    /// `to_bytes` of a sketch of 10⁶ values.
    #[divan::bench]
    fn encode(bencher: Bencher) {
        let s = sketch_of(&latencies(1, N));
        bencher.bench(|| black_box(&s).to_bytes());
    }

    /// `from_bytes` of a sketch of 10⁶ values.
    #[divan::bench]
    fn decode(bencher: Bencher) {
        let bytes = sketch_of(&latencies(1, N)).to_bytes();
        bencher.bench(|| QuantileSketch::from_bytes(black_box(&bytes)).unwrap());
    }
}

mod arrivals {
    use super::{black_box, uniforms, window_counts, Bencher, ItemsCount, N};

    /// Counts per 1 s window of 10⁶ timestamps over an hour, sorted or not.
    #[divan::bench(args = [true, false], sample_count = 30)]
    fn window_counts_1s(bencher: Bencher, sorted: bool) {
        let mut ts: Vec<f64> = uniforms(3, N).iter().map(|u| u * 3600.0).collect();
        if sorted {
            ts.sort_by(f64::total_cmp);
        }
        bencher
            .counter(ItemsCount::new(N))
            .bench(|| window_counts(black_box(&ts), 1.0, None, None).unwrap());
    }
}

mod report {
    use super::{black_box, latencies, uniforms, Bencher, ItemsCount, QuantileSketch, N};
    use qcore::arrivals::{batch_stats_windows, Windows};

    /// The report's batch kernel on 10⁶ rows in time order (3 groups, 1 % errors, 1,000
    /// windows of 1 s): counts only, the ok latencies sketched by group, and by group and
    /// plot window (17 windows each, 59 plot windows: 177 sketches).
    #[divan::bench(args = ["counts", "by group", "by plot window"], sample_count = 20)]
    fn batch_stats(bencher: Bencher, sketches: &str) {
        let u = uniforms(6, N);
        let start: Vec<f64> = (0..N).map(|i| i as f64 * 1000.0 / N as f64).collect();
        let codes: Vec<i64> = u.iter().map(|x| (x * 3.0) as i64).collect();
        let cls: Vec<i8> = u
            .iter()
            .map(|x| i8::from((x * 300.0).fract() < 0.01))
            .collect();
        let lat = latencies(7, N);
        let end: Vec<f64> = start.iter().zip(&lat).map(|(s, l)| s + l).collect();
        let w = Windows {
            t0: 0.0,
            t1: 1100.0,
            bin: 1.0,
            n_windows: 1000,
            n_end: 1101,
            index_limit: 2f64.powi(31),
            edge: None,
        };
        let t = QuantileSketch::new(0.01).unwrap();
        let (template, k) = match sketches {
            "counts" => (None, None),
            "by group" => (Some(&t), None),
            _ => (Some(&t), Some(17)),
        };
        bencher.counter(ItemsCount::new(N)).bench(|| {
            batch_stats_windows(
                black_box(&codes),
                &start,
                &cls,
                Some(&end),
                Some(&lat),
                3,
                w,
                template,
                k,
            )
            .unwrap()
        });
    }
}

mod little {
    use super::{black_box, littles_law, uniforms, Bencher, ItemsCount, N};

    /// Little's law over a window of 10⁶ request rows (exponential response times).
    #[divan::bench(sample_count = 30)]
    fn littles_law_window(bencher: Bencher) {
        let u = uniforms(4, 2 * N);
        let start: Vec<f64> = u[..N].iter().map(|x| x * 3600.0).collect();
        let end: Vec<f64> = start
            .iter()
            .zip(&u[N..])
            .map(|(s, x)| s - 0.5 * (1.0 - x).ln())
            .collect();
        bencher.counter(ItemsCount::new(N)).bench(|| {
            littles_law(
                black_box(&start),
                black_box(&end),
                Some(600.0),
                Some(3000.0),
                None,
                0.02,
                0.95,
            )
            .unwrap()
        });
    }
}

mod sim {
    use super::{black_box, run, ArrivalProcess, Bencher, Dist, ItemsCount, Method, SimConfig};

    /// M/M/16 at ρ = 0.9, 10⁵ customers, on the fast path and on the event loop.
    #[divan::bench(args = ["fast", "event"], sample_count = 20)]
    fn mmc_16(bencher: Bencher, method: &str) {
        let method = if method == "fast" {
            Method::Fast
        } else {
            Method::Event
        };
        let customers = 100_000;
        let cfg = SimConfig::new(
            ArrivalProcess::poisson(14.4).unwrap(),
            Some(Dist::exponential(1.0).unwrap()),
            16,
            customers,
        );
        bencher
            .counter(ItemsCount::new(customers))
            .bench(|| run(black_box(&cfg), 0, method).unwrap());
    }
}

mod llm {
    use super::{
        black_box, run_engine, uniforms, Bencher, ItemsCount, ReplicaConfig, RunOptions, StepTime,
        Workload,
    };

    /// One replica's engine step loop: 2,000 requests (Poisson arrivals at 4 /s, prompts
    /// of 64–1,024 tokens, 16–256 output tokens) through continuous batching with chunked
    /// prefill, a 4,096-block KV pool and the prefix cache, a linear step-time model.
    #[divan::bench(sample_count = 20)]
    fn engine_2000_requests(bencher: Bencher) {
        let n = 2000;
        let u = uniforms(5, 3 * n);
        let mut t = 0.0;
        let arrivals: Vec<f64> = u[..n]
            .iter()
            .map(|x| {
                t -= (1.0 - x).ln() / 4.0;
                t
            })
            .collect();
        let prompts: Vec<u32> = u[n..2 * n]
            .iter()
            .map(|x| 64 + (x * 960.0) as u32)
            .collect();
        let outputs: Vec<u32> = u[2 * n..].iter().map(|x| 16 + (x * 240.0) as u32).collect();
        let tokens: u64 = outputs.iter().map(|&o| u64::from(o)).sum();
        let w = Workload::new(arrivals, prompts, outputs).unwrap();
        let st = StepTime::Linear {
            c0: 0.01,
            c_tok: 1e-4,
            c_seq: 1e-4,
            c_ctx: 1e-7,
        };
        let cfg = ReplicaConfig::new(4096, st);
        let opts = RunOptions::default();
        bencher
            .counter(ItemsCount::new(tokens))
            .bench(|| run_engine(black_box(&w), &cfg, &opts).unwrap());
    }
}
