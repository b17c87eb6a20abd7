//! Unit and property tests of the sketch against exact references.

use super::interop::{ExpBuckets, OtelPoint, PromHistogram};
use super::*;

/// `SplitMix64`: a tiny deterministic generator for the property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// numpy.quantile(values, q, method="lower").
fn lower_quantile(sorted: &[f64], q: f64) -> f64 {
    let k = ((sorted.len() - 1) as f64 * q).floor() as usize;
    sorted[k]
}

const QS: [f64; 9] = [0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];

fn assert_guarantee(sk: &QuantileSketch, values: &[f64], ctx: &str) {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let alpha = sk.relative_accuracy();
    let mut qs = QS.to_vec();
    for k in 0..=20 {
        qs.push(f64::from(k) / 20.0);
    }
    let est = sk.quantiles(&qs).unwrap().unwrap();
    for (&q, &e) in qs.iter().zip(&est) {
        let want = lower_quantile(&sorted, q);
        assert!(
            (e - want).abs() <= alpha * want.abs(),
            "{ctx}: q={q} estimate {e} true {want}"
        );
    }
    assert_eq!(sk.quantile(0.0).unwrap(), Some(sorted[0]));
    assert_eq!(sk.quantile(1.0).unwrap(), Some(*sorted.last().unwrap()));
}

fn datasets(rng: &mut Rng, n: usize) -> Vec<(&'static str, Vec<f64>)> {
    vec![
        ("lognormal", (0..n).map(|_| rng.normal().exp()).collect()),
        (
            "pareto",
            (0..n)
                .map(|_| (1.0 - rng.uniform()).powf(-1.0 / 1.5))
                .collect(),
        ),
        (
            "exponential",
            (0..n).map(|_| -(1.0 - rng.uniform()).ln()).collect(),
        ),
        (
            "bimodal",
            (0..n)
                .map(|_| {
                    if rng.uniform() < 0.985 {
                        0.010 + 0.002 * rng.normal().abs()
                    } else {
                        2.0 + 0.5 * rng.normal().abs()
                    }
                })
                .collect(),
        ),
        ("constant", vec![0.125; n]),
        ("mixed", (0..n).map(|_| rng.normal() * 10.0).collect()),
        (
            "with_zeros",
            (0..n)
                .map(|_| {
                    if rng.below(3) == 0 {
                        0.0
                    } else {
                        -rng.normal().exp()
                    }
                })
                .collect(),
        ),
    ]
}

#[test]
fn accuracy_matrix() {
    let mut rng = Rng(1);
    for n in [1usize, 2, 3, 10, 1000, 100_000] {
        for (name, values) in datasets(&mut rng, n) {
            let mut sk = QuantileSketch::new(0.01).unwrap();
            sk.add_slice(&values).unwrap();
            assert_guarantee(&sk, &values, &format!("{name} n={n}"));
            assert_eq!(sk.count(), n as f64);
            assert!(!sk.collapsed());
        }
    }
}

#[test]
fn accuracy_other_accuracies() {
    let mut rng = Rng(2);
    for alpha in [0.5, 0.2, 0.05, 0.001, 1e-4, 1e-5] {
        let values: Vec<f64> = (0..5000).map(|_| rng.normal().exp() - 0.3).collect();
        let mut sk = QuantileSketch::new(alpha).unwrap();
        sk.add_slice(&values).unwrap();
        assert!(sk.effective_relative_accuracy() <= alpha);
        assert_guarantee(&sk, &values, &format!("alpha={alpha}"));
    }
}

#[test]
fn sum_count_min_max_mean_are_exact() {
    let values = [0.1, 0.2, 0.3, 1e16, -1e16, -0.0];
    let mut sk = QuantileSketch::new(0.01).unwrap();
    sk.add_slice(&values).unwrap();
    // Exact sum 0.1+0.2+0.3 (as doubles) rounded once.
    let mut e = ExactSum::new();
    for v in [0.1, 0.2, 0.3] {
        e.add_f64(v);
    }
    assert_eq!(sk.sum(), e.to_f64());
    assert_eq!(sk.count(), 6.0);
    assert_eq!(sk.min(), Some(-1e16));
    assert_eq!(sk.max(), Some(1e16));
    assert!((sk.mean().unwrap() - e.to_f64() / 6.0).abs() < 1e-16);
    let empty = QuantileSketch::new(0.01).unwrap();
    assert_eq!(empty.quantile(0.5).unwrap(), None);
    assert_eq!(empty.mean(), None);
    assert_eq!(empty.min(), None);
    assert_eq!(empty.sum(), 0.0);
}

#[test]
fn negative_zero_is_canonical() {
    let mut a = QuantileSketch::new(0.01).unwrap();
    a.add_slice(&[-0.0, -0.0]).unwrap();
    let mut b = QuantileSketch::new(0.01).unwrap();
    b.add_slice(&[0.0, 0.0]).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(a.min().unwrap().to_bits(), 0.0f64.to_bits());
    assert_eq!(
        a.quantile(1.0).unwrap().unwrap().to_bits(),
        0.0f64.to_bits()
    );
}

fn random_values(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| match rng.below(6) {
            0 => 0.0,
            1 => -rng.normal().exp() * 1e3,
            2 => (rng.below(1000) as f64) / 8.0,
            3 => rng.normal().exp().powi(8),
            4 => -((rng.below(50) + 1) as f64),
            _ => rng.uniform() * 1e-6,
        })
        .collect()
}

#[test]
fn merge_of_parts_equals_whole_in_any_order() {
    let mut rng = Rng(3);
    for trial in 0..200 {
        let n = rng.below(300) as usize;
        let values = random_values(&mut rng, n);
        let limit = if trial % 3 == 0 {
            Some(1 + rng.below(60) as usize)
        } else {
            None
        };
        let mut whole = QuantileSketch::with_limit(0.01, limit).unwrap();
        whole.add_slice(&values).unwrap();
        // Random split into up to 5 parts, merged in a random order, some via bytes.
        let k = 1 + rng.below(5) as usize;
        let mut parts: Vec<QuantileSketch> = (0..k).map(|_| whole.empty_like()).collect();
        for &v in &values {
            let p = rng.below(k as u64) as usize;
            parts[p].add(v).unwrap();
        }
        let mut order: Vec<usize> = (0..k).collect();
        for i in (1..k).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut acc = whole.empty_like();
        for &i in &order {
            let p = QuantileSketch::from_bytes(&parts[i].to_bytes()).unwrap();
            acc.merge(&p).unwrap();
        }
        assert_eq!(acc.to_bytes(), whole.to_bytes(), "trial {trial}");
        assert_eq!(acc, whole);
        if limit.is_none() && n > 0 {
            assert_guarantee(&acc, &values, &format!("trial {trial}"));
        }
    }
}

#[test]
fn weighted_equals_repeated() {
    let mut rng = Rng(4);
    for _ in 0..100 {
        let n = 1 + rng.below(100) as usize;
        let values = random_values(&mut rng, n);
        let weights: Vec<f64> = (0..n).map(|_| rng.below(4) as f64).collect();
        if weights.iter().all(|&w| w == 0.0) {
            continue;
        }
        let mut a = QuantileSketch::new(0.01).unwrap();
        a.add_weighted(&values, &weights).unwrap();
        let mut rep = Vec::new();
        for (&v, &w) in values.iter().zip(&weights) {
            for _ in 0..w as usize {
                rep.push(v);
            }
        }
        let mut b = QuantileSketch::new(0.01).unwrap();
        b.add_slice(&rep).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_guarantee(&a, &rep, "weighted");
    }
}

#[test]
fn fractional_weights_keep_exact_count_and_sum() {
    let mut sk = QuantileSketch::new(0.01).unwrap();
    sk.add_weighted(&[1.0, 3.0], &[0.1, 0.2]).unwrap();
    let mut c = ExactSum::new();
    c.add_f64(0.1);
    c.add_f64(0.2);
    assert_eq!(sk.count(), c.to_f64());
    let mut s = ExactSum::new();
    s.add_product(1.0, 0.1);
    s.add_product(3.0, 0.2);
    assert_eq!(sk.sum(), s.to_f64());
    assert!(!sk.integral_counts());
    let back = QuantileSketch::from_bytes(&sk.to_bytes()).unwrap();
    assert_eq!(back, sk);
    assert!(sk.to_otel().is_err());
}

#[test]
fn validation_leaves_the_sketch_unchanged() {
    let mut sk = QuantileSketch::new(0.01).unwrap();
    sk.add_slice(&[1.0, 2.0]).unwrap();
    let before = sk.to_bytes();
    let e = sk.add_slice(&[3.0, f64::NAN, 4.0]).unwrap_err();
    assert_eq!(e.to_string(), "values contains NaN at index 1");
    assert!(sk.add_slice(&[f64::INFINITY]).is_err());
    let e = sk.add_weighted(&[1.0, 2.0], &[1.0, -1.0]).unwrap_err();
    assert!(e.to_string().starts_with("weights must be >= 0"), "{e}");
    assert!(sk.add_weighted(&[1.0], &[1.0, 2.0]).is_err());
    assert!(sk.add_weighted(&[1.0], &[f64::NAN]).is_err());
    assert!(sk.add_weighted(&[1.0], &[1e301]).is_err());
    assert_eq!(sk.to_bytes(), before);
    for q in [-0.1, 1.1, f64::NAN] {
        let e = sk.quantile(q).unwrap_err();
        assert!(matches!(e, QcoreError::InvalidArgument { ref name, .. } if name == "q"));
    }
    assert!(sk.cdf(f64::NAN).is_err());
    for ra in [0.0, 1.0, -0.5, f64::NAN, 1e-9] {
        let e = QuantileSketch::new(ra).unwrap_err();
        assert!(
            matches!(e, QcoreError::InvalidArgument { ref name, .. } if name == "relative_accuracy")
        );
    }
    assert!(QuantileSketch::with_limit(0.01, Some(0)).is_err());
    let other = QuantileSketch::new(0.02).unwrap();
    assert!(matches!(
        sk.merge(&other),
        Err(QcoreError::IncompatibleMerge { .. })
    ));
    let other = QuantileSketch::with_limit(0.01, Some(100)).unwrap();
    assert!(matches!(
        sk.merge(&other),
        Err(QcoreError::IncompatibleMerge { .. })
    ));
    assert_eq!(sk.to_bytes(), before);
}

#[test]
fn collapse_keeps_upper_quantiles() {
    let mut rng = Rng(5);
    // 1e-12 .. 1e6: about 60 octaves; a limit of 640 buckets keeps 10 octaves.
    let values: Vec<f64> = (0..50_000)
        .map(|_| 10f64.powf(rng.uniform() * 18.0 - 12.0))
        .collect();
    let mut sk = QuantileSketch::with_limit(0.01, Some(640)).unwrap();
    sk.add_slice(&values).unwrap();
    assert!(sk.collapsed());
    // The top 10 of about 59.8 octaves keep full resolution.
    let q0 = sk.min_accurate_quantile();
    assert!(q0 > 0.8 && q0 < 0.86, "{q0}");
    let mut sorted = values.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for q in [q0, 0.9, 0.99, 0.999, 0.9999] {
        let want = lower_quantile(&sorted, q);
        let e = sk.quantile(q).unwrap().unwrap();
        assert!((e - want).abs() <= 0.01 * want, "q {q}: {e} vs {want}");
    }
    // Lower quantiles are not guaranteed (and are indeed off here).
    let low = sk.quantile(0.01).unwrap().unwrap();
    assert!((low - lower_quantile(&sorted, 0.01)).abs() > 0.01 * lower_quantile(&sorted, 0.01));
    // Negative data collapses its most negative values: upper quantiles still hold.
    let neg: Vec<f64> = values.iter().map(|v| -v).collect();
    let mut sn = QuantileSketch::with_limit(0.01, Some(640)).unwrap();
    sn.add_slice(&neg).unwrap();
    let mut sorted = neg.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q0 = sn.min_accurate_quantile();
    for q in [q0, 0.9, 0.99, 0.999] {
        let want = lower_quantile(&sorted, q);
        let e = sn.quantile(q).unwrap().unwrap();
        assert!(
            (e - want).abs() <= 0.01 * want.abs(),
            "q {q}: {e} vs {want}"
        );
    }
}

#[test]
fn cdf_is_consistent_with_quantile() {
    let mut rng = Rng(6);
    let values: Vec<f64> = (0..10_000).map(|_| rng.normal().exp()).collect();
    let mut sk = QuantileSketch::new(0.01).unwrap();
    sk.add_slice(&values).unwrap();
    let mut sorted = values.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for x in [0.1, 0.5, 1.0, 2.0, 10.0] {
        let true_cdf = sorted.partition_point(|&v| v <= x) as f64 / sorted.len() as f64;
        let lo = sorted.partition_point(|&v| v <= x / 1.011) as f64 / sorted.len() as f64;
        let hi = sorted.partition_point(|&v| v <= x * 1.011) as f64 / sorted.len() as f64;
        let c = sk.cdf(x).unwrap().unwrap();
        assert!(
            c >= lo - 1e-12 && c <= hi + 1e-12,
            "x {x}: {c} vs {true_cdf}"
        );
    }
    assert_eq!(sk.cdf(1e9).unwrap(), Some(1.0));
    assert_eq!(sk.cdf(-1.0).unwrap(), Some(0.0));
}

#[test]
fn bytes_round_trip_and_compactness() {
    let mut rng = Rng(7);
    let values: Vec<f64> = (0..100_000).map(|_| (rng.normal() - 6.0).exp()).collect();
    let mut sk = QuantileSketch::new(0.01).unwrap();
    sk.add_slice(&values).unwrap();
    let b = sk.to_bytes();
    let back = QuantileSketch::from_bytes(&b).unwrap();
    assert_eq!(back, sk);
    assert_eq!(back.to_bytes(), b);
    // About 8.5 octaves * 64 buckets, ~2 bytes each.
    assert!(b.len() < 1500, "{} bytes", b.len());
    let e = QuantileSketch::new(0.01).unwrap();
    let eb = e.to_bytes();
    assert_eq!(QuantileSketch::from_bytes(&eb).unwrap(), e);
}

#[test]
fn decoder_rejects_hostile_bytes_without_panicking() {
    let mut rng = Rng(8);
    let mut seeds = Vec::new();
    for n in [0usize, 1, 5, 300] {
        let mut sk = QuantileSketch::with_limit(0.01, Some(64)).unwrap();
        sk.add_slice(&random_values(&mut rng, n)).unwrap();
        seeds.push(sk.to_bytes());
        let mut w = QuantileSketch::new(0.05).unwrap();
        w.add_weighted(&random_values(&mut rng, n), &vec![0.5; n])
            .unwrap();
        seeds.push(w.to_bytes());
    }
    let mut ok = 0;
    for it in 0..200_000 {
        let seed = &seeds[it % seeds.len()];
        let mut b = seed.clone();
        match rng.below(5) {
            0 => {
                // flip bytes
                for _ in 0..=rng.below(4) {
                    if !b.is_empty() {
                        let i = rng.below(b.len() as u64) as usize;
                        b[i] ^= 1 << rng.below(8);
                    }
                }
            }
            1 => b.truncate(rng.below(b.len() as u64 + 1) as usize),
            2 => {
                let i = rng.below(b.len() as u64 + 1) as usize;
                b.insert(i, rng.next() as u8);
            }
            3 => {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next() as u8;
            }
            _ => {
                let n = rng.below(64) as usize;
                b = (0..n).map(|_| rng.next() as u8).collect();
                if rng.below(2) == 0 && b.len() > 6 {
                    b[..4].copy_from_slice(format::MAGIC);
                    b[4] = 1;
                }
            }
        }
        if let Ok(sk) = QuantileSketch::from_bytes(&b) {
            ok += 1;
            // A decoded sketch is fully usable and re-encodes canonically.
            let _ = sk.quantiles(&[0.0, 0.5, 0.99, 1.0]).unwrap();
            let _ = sk.cdf(1.0).unwrap();
            let re = sk.to_bytes();
            assert_eq!(QuantileSketch::from_bytes(&re).unwrap(), sk);
            let mut m = sk.clone();
            if m.merge(&sk).is_ok() {
                assert_eq!(m.count(), 2.0 * sk.count());
            }
        }
    }
    assert!(ok > 0);
    // Version and magic errors are typed.
    let mut b = seeds[0].clone();
    b[4] = 2;
    assert!(matches!(
        QuantileSketch::from_bytes(&b),
        Err(QcoreError::UnsupportedVersion {
            expected: 1,
            found: 2
        })
    ));
    assert!(matches!(
        QuantileSketch::from_bytes(b"nope"),
        Err(QcoreError::InvalidData { .. })
    ));
}

#[test]
fn otel_hand_example() {
    // Scale 0: bucket i is (2^i, 2^(i+1)]. 1 → -1, 2 → 0, 3 and 4 → 1, -1.5 → |1.5| → 0.
    let mut sk = QuantileSketch::with_scale(0, None).unwrap();
    sk.add_slice(&[1.0, 2.0, 3.0, 4.0, 0.0, -1.5]).unwrap();
    let p = sk.to_otel().unwrap();
    assert_eq!(p.scale, 0);
    assert_eq!(
        p.positive,
        ExpBuckets {
            offset: -1,
            counts: vec![1, 1, 2]
        }
    );
    assert_eq!(
        p.negative,
        ExpBuckets {
            offset: 0,
            counts: vec![1]
        }
    );
    assert_eq!((p.zero_count, p.count, p.sum), (1, 6, Some(8.5)));
    assert_eq!((p.min, p.max), (Some(-1.5), Some(4.0)));
    let back = QuantileSketch::from_otel(&p, None, None).unwrap();
    assert_eq!(back.to_bytes(), sk.to_bytes());
    // Prometheus indices are shifted by one: (2^(i-1), 2^i].
    let h = sk.to_prometheus().unwrap();
    assert_eq!(h.positive_spans, vec![(0, 3)]);
    assert_eq!(h.positive_deltas, vec![1, 0, 1]);
    assert_eq!(h.negative_spans, vec![(1, 1)]);
    assert_eq!(h.negative_deltas, vec![1]);
    let back = QuantileSketch::from_prometheus(&h, None, None).unwrap();
    assert_eq!(back.quantile(0.5).unwrap(), sk.quantile(0.5).unwrap());
    assert_eq!(back.count(), 6.0);
}

#[test]
fn otel_scale6_example_and_downscale() {
    // 1.0 at scale 6 is the upper bound of bucket -1; 1.5 → ceil(64·log2 1.5) − 1 = 37.
    let mut sk = QuantileSketch::new(0.01).unwrap();
    sk.add_slice(&[1.0, 1.5, 1.5, 1000.0]).unwrap();
    let p = sk.to_otel().unwrap();
    assert_eq!(p.scale, 6);
    assert_eq!(p.positive.offset, -1);
    assert_eq!(p.positive.counts[0], 1);
    assert_eq!(p.positive.counts[38], 2);
    // 1000 → ceil(64·log2(1000)) − 1 = 637.
    assert_eq!(p.positive.offset + p.positive.counts.len() as i32 - 1, 637);
    // Import at relative_accuracy 0.02 (scale 5) merges pairs exactly.
    let coarse = QuantileSketch::from_otel(&p, Some(0.02), None).unwrap();
    let mut direct = QuantileSketch::new(0.02).unwrap();
    direct.add_slice(&[1.0, 1.5, 1.5, 1000.0]).unwrap();
    assert_eq!(coarse.to_bytes(), direct.to_bytes());
    // A finer accuracy than the point's scale is rejected.
    assert!(QuantileSketch::from_otel(&p, Some(0.001), None).is_err());
    // Prometheus export of a scale-9 sketch happens at schema 8.
    let mut fine = QuantileSketch::new(0.001).unwrap();
    fine.add_slice(&[1.0, 1.5, 1000.0]).unwrap();
    assert_eq!(fine.scale(), 9);
    let h = fine.to_prometheus().unwrap();
    assert_eq!(h.schema, 8);
    let back = QuantileSketch::from_prometheus(&h, None, None).unwrap();
    let mut at8 = QuantileSketch::with_scale(8, Some(fine.bucket_limit())).unwrap();
    at8.add_slice(&[1.0, 1.5, 1000.0]).unwrap();
    // Prometheus carries no min/max: buckets, count and sum match.
    assert_eq!(back.positive_buckets(), at8.positive_buckets());
    assert_eq!((back.count(), back.sum()), (at8.count(), at8.sum()));
    assert_eq!(back.scale(), 8);
}

#[test]
fn interop_rejections() {
    let p = OtelPoint {
        scale: 3,
        zero_count: 0,
        zero_threshold: 0.0,
        positive: ExpBuckets {
            offset: 0,
            counts: vec![1, 2],
        },
        negative: ExpBuckets::default(),
        count: 4,
        sum: Some(3.0),
        min: None,
        max: None,
    };
    let e = QuantileSketch::from_otel(&p, None, None).unwrap_err();
    assert!(
        e.to_string().contains("count is 4 but the buckets hold 3"),
        "{e}"
    );
    let mut q = p.clone();
    q.count = 3;
    let sk = QuantileSketch::from_otel(&q, None, None).unwrap();
    assert_eq!(sk.scale(), 3);
    assert_eq!(sk.min(), Some(1.0)); // lower bound of bucket 0 at any scale
    q.positive.offset = i32::MAX - 1;
    assert!(QuantileSketch::from_otel(&q, None, None).is_err());
    q.scale = 21;
    assert!(QuantileSketch::from_otel(&q, None, None).is_err());
    let h = PromHistogram {
        schema: 0,
        zero_threshold: 0.0,
        zero_count: 0,
        count: 1,
        sum: 1.0,
        positive_spans: vec![(0, 2)],
        positive_deltas: vec![1, -2],
        negative_spans: vec![],
        negative_deltas: vec![],
    };
    assert!(QuantileSketch::from_prometheus(&h, None, None).is_err());
    let mut h2 = h.clone();
    h2.positive_deltas = vec![1];
    assert!(QuantileSketch::from_prometheus(&h2, None, None).is_err());
    let mut h3 = h.clone();
    h3.schema = -53;
    assert!(QuantileSketch::from_prometheus(&h3, None, None).is_err());
}

#[test]
fn otel_round_trip_random() {
    let mut rng = Rng(9);
    for _ in 0..50 {
        let values = random_values(&mut rng, 200);
        let mut sk = QuantileSketch::new(0.01).unwrap();
        sk.add_slice(&values).unwrap();
        let back = QuantileSketch::from_otel(&sk.to_otel().unwrap(), Some(0.01), None).unwrap();
        // Sum passes through a double: equal after rounding.
        assert_eq!(back.quantiles(&QS).unwrap(), sk.quantiles(&QS).unwrap());
        assert_eq!(back.positive_buckets(), sk.positive_buckets());
        assert_eq!(back.negative_buckets(), sk.negative_buckets());
        assert_eq!(back.sum(), sk.sum());
        let hp = QuantileSketch::from_prometheus(&sk.to_prometheus().unwrap(), Some(0.01), None)
            .unwrap();
        assert_eq!(hp.positive_buckets(), sk.positive_buckets());
        assert_eq!(hp.negative_buckets(), sk.negative_buckets());
    }
}

#[test]
fn subnormals_and_extremes() {
    let values = [f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 5e-324, -5e-324, 1.0];
    let mut sk = QuantileSketch::new(0.01).unwrap();
    sk.add_slice(&values).unwrap();
    assert_eq!(sk.sum(), 1.0 + f64::MIN_POSITIVE);
    assert_eq!(sk.quantile(1.0).unwrap(), Some(f64::MAX));
    assert_eq!(sk.quantile(0.0).unwrap(), Some(-f64::MAX));
    let q = sk.quantiles(&[0.2, 0.5, 0.8]).unwrap().unwrap();
    assert!(q.iter().all(|v| v.is_finite()));
    let back = QuantileSketch::from_bytes(&sk.to_bytes()).unwrap();
    assert_eq!(back, sk);
    let mut big = QuantileSketch::new(0.01).unwrap();
    big.add_slice(&[f64::MAX, f64::MAX]).unwrap();
    assert_eq!(big.sum(), f64::INFINITY);
    assert_eq!(big.mean(), Some(f64::MAX));
}

#[test]
fn bulk_fast_path_equals_value_by_value() {
    let mut rng = Rng(10);
    for (n, spread) in [(256usize, 1.0), (5000, 3.0), (20_000, 40.0)] {
        let values: Vec<f64> = (0..n).map(|_| (rng.normal() * spread).exp()).collect();
        for limit in [None, Some(100)] {
            let mut bulk = QuantileSketch::with_limit(0.01, limit).unwrap();
            bulk.add_slice(&values).unwrap();
            let mut one = QuantileSketch::with_limit(0.01, limit).unwrap();
            for &v in &values {
                one.add(v).unwrap();
            }
            assert_eq!(bulk.to_bytes(), one.to_bytes(), "n {n} spread {spread}");
        }
    }
}

#[test]
fn threaded_bulk_path_equals_parts() {
    let mut rng = Rng(12);
    let values: Vec<f64> = (0..1_500_000).map(|_| (rng.normal() * 2.0).exp()).collect();
    for limit in [None, Some(200)] {
        let mut bulk = QuantileSketch::with_limit(0.01, limit).unwrap();
        bulk.add_slice(&values).unwrap();
        // Parts below the threading threshold, in reverse order.
        let mut acc = bulk.empty_like();
        for part in values.chunks(100_000).rev() {
            let mut p = bulk.empty_like();
            p.add_slice(part).unwrap();
            acc.merge(&p).unwrap();
        }
        let mut one = bulk.empty_like();
        for &v in &values[..1000] {
            one.add(v).unwrap();
        }
        let mut head = bulk.empty_like();
        head.add_slice(&values[..1000]).unwrap();
        assert_eq!(one.to_bytes(), head.to_bytes());
        assert_eq!(acc.to_bytes(), bulk.to_bytes());
    }
}

#[test]
fn quantile_bounds_contain_the_truth() {
    let mut rng = Rng(13);
    for trial in 0..300 {
        let n = 1 + rng.below(400) as usize;
        let values = random_values(&mut rng, n);
        let limit = if trial % 2 == 0 {
            Some(1 + rng.below(40) as usize)
        } else {
            None
        };
        let mut sk = QuantileSketch::with_limit(0.01, limit).unwrap();
        sk.add_slice(&values).unwrap();
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let qs: Vec<f64> = (0..=50).map(|k| f64::from(k) / 50.0).chain(QS).collect();
        let b = sk.quantile_bounds(&qs).unwrap().unwrap();
        let e = sk.quantiles(&qs).unwrap().unwrap();
        for ((&q, &(lo, hi)), &est) in qs.iter().zip(&b).zip(&e) {
            let t = lower_quantile(&sorted, q);
            assert!(
                lo <= t && t <= hi,
                "trial {trial} q {q}: {t} not in [{lo}, {hi}]"
            );
            assert!(lo <= est && est <= hi);
            if !sk.collapsed() {
                // Without collapse the interval is one bucket: relative width ≤ b - 1.
                assert!(
                    hi - lo <= 0.0109 * t.abs() * 1.0001 + 1e-300,
                    "{lo} {hi} {t}"
                );
            }
        }
    }
}

/// The per-value definition: each value's bucket from [`ExpMapping::index_positive`],
/// added one at a time to the stores; the sum through [`ExactSum::add_f64`].
fn reference_add(sk: &mut QuantileSketch, values: &[f64]) {
    let mapping = sk.mapping().clone();
    let (lo, hi) = (
        values.iter().fold(sk.min, |a, &b| a.min(b)),
        values.iter().fold(sk.max, |a, &b| a.max(b)),
    );
    let (pos, neg, zero, count, sum) = sk.parts_mut();
    let mut zeros = 0u64;
    for &v in values {
        sum.add_f64(v);
        if v > 0.0 {
            pos.add_one(mapping.index_positive(v), 1.0);
        } else if v < 0.0 {
            neg.add_one(mapping.index_positive(-v), 1.0);
        } else {
            zeros += 1;
        }
    }
    *zero += zeros as f64;
    count.add_u64(values.len() as u64);
    count.normalize();
    sum.normalize();
    sk.set_min_max(lo, hi);
}

/// Values mixing every class the kernel separates: zeros of both signs, negatives,
/// repeated values, powers of two (bucket boundaries), wide and narrow magnitudes and,
/// when asked, subnormals.
fn mixed_values(rng: &mut Rng, n: usize, subnormals: bool) -> Vec<f64> {
    let spread = [0.5, 3.0, 60.0][rng.below(3) as usize];
    let neg_share = [0.0, 0.0, 0.3, 1.0][rng.below(4) as usize];
    (0..n)
        .map(|_| {
            let r = rng.below(100);
            let v = if r < 8 {
                0.0
            } else if r < 10 {
                -0.0
            } else if r < 14 {
                2f64.powi(rng.below(80) as i32 - 40)
            } else if r < 20 {
                [1.0, 0.25, 3.5, 1e-3][rng.below(4) as usize]
            } else if r < 22 {
                [f64::MAX, f64::MIN_POSITIVE, 1e300, 1e-300][rng.below(4) as usize]
            } else if subnormals && r < 24 {
                f64::from_bits(1 + rng.below(1 << 52))
            } else {
                (rng.normal() * spread).exp()
            };
            if rng.uniform() < neg_share {
                -v
            } else {
                v
            }
        })
        .collect()
}

fn assert_same(a: &QuantileSketch, b: &QuantileSketch, ctx: &str) {
    assert_eq!(a.to_bytes(), b.to_bytes(), "{ctx}");
    assert_eq!(a, b, "{ctx}");
    assert_eq!(a.sum().to_bits(), b.sum().to_bits(), "{ctx}");
    assert_eq!(a.zero_count(), b.zero_count(), "{ctx}");
    assert_eq!(
        a.min().map(f64::to_bits),
        b.min().map(f64::to_bits),
        "{ctx}"
    );
    assert_eq!(
        a.max().map(f64::to_bits),
        b.max().map(f64::to_bits),
        "{ctx}"
    );
}

#[test]
fn fused_ingest_equals_the_per_value_definition() {
    let mut rng = Rng(2026);
    let sizes = [
        1usize, 2, 3, 5, 63, 64, 65, 255, 256, 257, 1000, 2047, 2048, 2049, 2051, 4099, 10_000,
        33_333,
    ];
    for trial in 0..120 {
        let scale = [1, 2, 3, 4, 5, 6, 6, 6, 7, 8, -3, 0, 9, 12][rng.below(14) as usize];
        let limit = [None, None, Some(1), Some(37), Some(300)][rng.below(5) as usize];
        let mut fast = QuantileSketch::with_scale(scale, limit).unwrap();
        let mut slow = fast.clone();
        let subnormals = rng.below(5) == 0;
        for batch in 0..3 {
            let n = sizes[rng.below(sizes.len() as u64) as usize];
            let values = mixed_values(&mut rng, n, subnormals);
            fast.add_slice(&values).unwrap();
            reference_add(&mut slow, &values);
            let ctx = format!("trial {trial} batch {batch} scale {scale} limit {limit:?} n {n}");
            assert_same(&fast, &slow, &ctx);
        }
    }
}

#[test]
fn fused_ingest_leaves_no_trace_on_error_and_reuses_clean_scratch() {
    let mut rng = Rng(77);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN] {
        for n in [300usize, 2048, 5000] {
            let mut values = mixed_values(&mut rng, n, false);
            let at = rng.below(n as u64) as usize;
            values[at] = bad;
            let mut sk = QuantileSketch::new(0.01).unwrap();
            sk.add_slice(&values[..at]).unwrap();
            let before = sk.to_bytes();
            let err = sk.add_slice(&values).unwrap_err();
            assert_eq!(
                err.to_string(),
                check_finite("values", &values).unwrap_err().to_string()
            );
            assert_eq!(sk.to_bytes(), before);
            // The next batch on the same thread sees a clean scratch.
            let good = mixed_values(&mut rng, n, false);
            sk.add_slice(&good).unwrap();
            let mut want = QuantileSketch::new(0.01).unwrap();
            reference_add(&mut want, &values[..at]);
            reference_add(&mut want, &good);
            assert_same(&sk, &want, &format!("bad {bad} n {n}"));
        }
    }
}

#[test]
fn fused_ingest_threaded_equals_the_per_value_definition() {
    let mut rng = Rng(31);
    let values = mixed_values(&mut rng, (1 << 20) + 12_345, false);
    for limit in [None, Some(50)] {
        let mut fast = QuantileSketch::with_limit(0.01, limit).unwrap();
        fast.add_slice(&values).unwrap();
        let mut slow = fast.empty_like();
        reference_add(&mut slow, &values);
        assert_same(&fast, &slow, &format!("limit {limit:?}"));
    }
}

/// Values for the kernel's sum paths: positive (with zeros of both signs when asked),
/// with biased exponents in `lo..=lo + width` (both ends present), or the same negated.
fn ranged_values(rng: &mut Rng, n: usize, lo: i32, width: i32, zeros: bool) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let r = rng.below(100);
            if zeros && r < 10 {
                return if r < 5 { 0.0 } else { -0.0 };
            }
            let e = match k % 97 {
                0 => lo,
                1 => lo + width,
                _ => lo + rng.below(width as u64 + 1) as i32,
            };
            let f = if r < 15 { 0 } else { rng.next() >> 12 };
            f64::from_bits(((e as u64) << 52) | f)
        })
        .collect()
}

#[test]
fn fused_sum_paths_and_table_growth_equal_the_per_value_definition() {
    let mut rng = Rng(4242);
    let sizes = [
        64usize, 100, 2047, 2048, 2049, 4096, 6150, 32_767, 32_768, 32_769,
    ];
    // Exponent ranges around the 64-octave limit of the vector sum, near its highest
    // start (1983), at the top of the range and near the subnormals.
    let ranges = [
        (1023, 0),
        (1020, 5),
        (900, 62),
        (900, 63),
        (900, 64),
        (900, 65),
        (1, 63),
        (1, 64),
        (1982, 63),
        (1983, 63),
        (1984, 62),
        (1985, 61),
        (2046, 0),
        (1960, 86),
    ];
    for trial in 0..60 {
        let scale = 1 + rng.below(8) as i32;
        let limit = [None, None, Some(40)][rng.below(3) as usize];
        let mut fast = QuantileSketch::with_scale(scale, limit).unwrap();
        let mut slow = fast.clone();
        for batch in 0..4 {
            let n = sizes[rng.below(sizes.len() as u64) as usize];
            let (lo, width) = ranges[rng.below(ranges.len() as u64) as usize];
            let zeros = rng.below(2) == 0;
            let mut values = ranged_values(&mut rng, n, lo, width, zeros);
            match rng.below(4) {
                0 => values.iter_mut().for_each(|v| *v = -*v),
                1 => {
                    // One negative value in one block turns that block to the scalar sums.
                    let at = rng.below(n as u64) as usize;
                    values[at] = -values[at];
                }
                _ => {}
            }
            fast.add_slice(&values).unwrap();
            reference_add(&mut slow, &values);
            let ctx =
                format!("trial {trial} batch {batch} scale {scale} lo {lo} width {width} n {n}");
            assert_same(&fast, &slow, &ctx);
        }
    }
}

#[test]
fn fused_kernel_rejects_non_finite_values_in_positive_blocks() {
    let mut rng = Rng(99);
    for bad in [f64::NAN, f64::INFINITY, -f64::NAN, f64::NEG_INFINITY] {
        for n in [64usize, 2049, 40_000] {
            let mut values = ranged_values(&mut rng, n, 1020, 6, true);
            let at = rng.below(n as u64) as usize;
            values[at] = bad;
            let mut sk = QuantileSketch::new(0.01).unwrap();
            assert!(sk.add_slice(&values).is_err(), "{bad} n {n}");
            assert_eq!(sk.to_bytes(), QuantileSketch::new(0.01).unwrap().to_bytes());
            // A subnormal in a positive block: accepted, taken value by value.
            values[at] = f64::from_bits(1 + rng.below(1 << 52));
            sk.add_slice(&values).unwrap();
            let mut want = QuantileSketch::new(0.01).unwrap();
            reference_add(&mut want, &values);
            assert_same(&sk, &want, &format!("subnormal n {n}"));
        }
    }
}

#[test]
fn fused_ingest_threaded_positive_equals_the_per_value_definition() {
    let mut rng = Rng(5);
    for n in [(1usize << 20) - 1, 1 << 20, (1 << 20) + 2049] {
        let values = ranged_values(&mut rng, n, 1015, 14, true);
        let mut fast = QuantileSketch::new(0.01).unwrap();
        fast.add_slice(&values).unwrap();
        let mut slow = fast.empty_like();
        reference_add(&mut slow, &values);
        assert_same(&fast, &slow, &format!("n {n}"));
    }
}
