//! The simulator against queueing theory: M/M/c replications estimate the probability of
//! waiting and the mean wait, and the Erlang-C values (written out here from the textbook
//! formula, and as `queueing` computes them) lie inside the replications' 99.9% intervals.
//! The intervals are also checked to be narrow, so the comparison has power.

use qcore::queueing::{erlang_c, MMc};
use qcore::sim::{run_replications, ArrivalProcess, Dist, Method, SimConfig};

/// Erlang C from its textbook form:
/// `C = (aᶜ/c! · c/(c−a)) / (Σ_{k<c} aᵏ/k! + aᶜ/c! · c/(c−a))`.
fn erlang_c_textbook(c: u32, a: f64) -> f64 {
    let mut term = 1.0; // a^k / k!
    let mut head = 0.0;
    for k in 0..c {
        head += term;
        term *= a / f64::from(k + 1);
    }
    let tail = term * f64::from(c) / (f64::from(c) - a);
    tail / (head + tail)
}

/// Mean and half-width of a 99.9% Student-t interval (`t_quantile` for `n − 1` degrees).
fn interval(xs: &[f64], t_quantile: f64) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, t_quantile * (var / n).sqrt())
}

#[test]
fn erlang_c_matches_the_textbook_formula() {
    for (c, a) in [(1u32, 0.5), (2, 1.5), (4, 3.0), (16, 14.4), (50, 45.0)] {
        let want = erlang_c_textbook(c, a);
        let got = erlang_c(i64::from(c), a).unwrap();
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "c {c} a {a}: {got} vs {want}"
        );
    }
}

#[test]
fn mmc_simulation_agrees_with_erlang_c() {
    const REPS: u64 = 20;
    const T_999_19: f64 = 3.883; // Student t, 0.9995 quantile, 19 degrees of freedom
    for (c, lambda) in [(1u32, 0.6), (4, 3.0), (16, 13.6)] {
        let mu = 1.0;
        let mut cfg = SimConfig::new(
            ArrivalProcess::poisson(lambda).unwrap(),
            Some(Dist::exponential(1.0 / mu).unwrap()),
            c as usize,
            100_000,
        );
        cfg.warmup = 20_000;
        cfg.seed = 19;
        let runs = run_replications(&cfg, REPS, Method::Auto, 1).unwrap();
        let p_wait: Vec<f64> = runs.iter().map(qcore::sim::RunStats::p_wait).collect();
        let wait: Vec<f64> = runs.iter().map(qcore::sim::RunStats::mean_wait).collect();
        let (p, hp) = interval(&p_wait, T_999_19);
        let (w, hw) = interval(&wait, T_999_19);
        let theory = MMc::new(lambda, mu, i64::from(c)).unwrap();
        let want_p = erlang_c_textbook(c, lambda / mu);
        assert!((theory.p_wait - want_p).abs() < 1e-12);
        assert!(
            (p - want_p).abs() <= hp,
            "c {c}: P(wait) {p} ± {hp} vs Erlang C {want_p}"
        );
        assert!(
            (w - theory.mean_wait).abs() <= hw,
            "c {c}: mean wait {w} ± {hw} vs {}",
            theory.mean_wait
        );
        // intervals narrow enough that a wrong model would be caught
        assert!(hp < 0.02 && hw < 0.1 * theory.mean_wait, "c {c}: {hp} {hw}");
        // Little's law on each run's measurement window: L = λW up to the edge term
        for s in &runs {
            let l = s.mean_in_system();
            let lw = s.throughput() * s.mean_response();
            assert!((l - lw).abs() < 0.05 * l, "c {c}: L {l} vs λW {lw}");
        }
    }
}
