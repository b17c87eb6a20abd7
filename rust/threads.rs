//! The one thread budget of the core.
//!
//! Every parallel path of the crate asks [`max_threads`] how many threads it may use.
//! The budget is, in order: the value given to [`set_max_threads`]; else the environment
//! variable `QCORE_MAX_THREADS` (read once, on first use; a positive integer); else the
//! machine's available parallelism. A process that runs several workers on one machine
//! (Dask workers, a pool of processes) sets it to its share of the cores.
//!
//! Results never depend on the budget: every parallel reduction in the core is exact
//! (integer counts, exact sums, mergeable sketches), so only the speed changes. A panic
//! in a worker thread is resumed in the calling thread ([`join`]), so it reaches the
//! caller (the Python layer turns it into an exception); no worker's part is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::error::{QcoreError, Result};

/// The environment variable that sets the budget.
pub const ENV_VAR: &str = "QCORE_MAX_THREADS";

/// The value of [`set_max_threads`]; 0 when unset.
static OVERRIDE: AtomicUsize = AtomicUsize::new(0);
/// The parsed environment variable (read once).
static FROM_ENV: OnceLock<Result<Option<usize>>> = OnceLock::new();

fn parse_env(v: Option<&str>) -> Result<Option<usize>> {
    let Some(v) = v else { return Ok(None) };
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(QcoreError::invalid(
            ENV_VAR,
            format!("must be a positive integer, got {v:?}"),
        )),
    }
}

fn from_env() -> &'static Result<Option<usize>> {
    FROM_ENV.get_or_init(|| parse_env(std::env::var(ENV_VAR).ok().as_deref()))
}

fn machine() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The budget, or an error naming `QCORE_MAX_THREADS` when it is set to something other
/// than a positive integer (and no [`set_max_threads`] value overrides it).
pub fn configured_threads() -> Result<usize> {
    let o = OVERRIDE.load(Ordering::Relaxed);
    if o > 0 {
        return Ok(o);
    }
    match from_env() {
        Ok(Some(n)) => Ok(*n),
        Ok(None) => Ok(machine()),
        Err(e) => Err(e.clone()),
    }
}

/// The budget every parallel path uses (the machine's parallelism when the environment
/// variable is malformed; [`configured_threads`] reports that error).
pub fn max_threads() -> usize {
    configured_threads().unwrap_or_else(|_| machine())
}

/// Set the budget for the whole process (`None`: back to the environment variable or the
/// machine). `Some(0)` is an error naming `threads`.
pub fn set_max_threads(n: Option<usize>) -> Result<()> {
    match n {
        Some(0) => Err(QcoreError::invalid("threads", "must be at least 1, got 0")),
        Some(n) => {
            OVERRIDE.store(n, Ordering::Relaxed);
            Ok(())
        }
        None => {
            OVERRIDE.store(0, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Threads for `n` items when each thread should get at least `min_per_thread` of them,
/// within the budget and at most `cap`; at least 1.
pub fn threads_for(n: usize, min_per_thread: usize, cap: usize) -> usize {
    (n / min_per_thread.max(1))
        .min(max_threads())
        .min(cap)
        .max(1)
}

/// Join a scoped thread, resuming its panic in the caller.
pub fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// `f` over contiguous ranges covering `0..n` on `threads` threads (the first range on the
/// calling thread), results in range order; one range when `threads ≤ 1` or `n == 0`.
pub fn map_ranges<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    if threads <= 1 || n < 2 {
        return vec![f(0..n)];
    }
    let chunk = n.div_ceil(threads);
    let ranges: Vec<_> = (0..n)
        .step_by(chunk)
        .map(|a| a..(a + chunk).min(n))
        .collect();
    let f = &f;
    std::thread::scope(|sc| {
        let handles: Vec<_> = ranges[1..]
            .iter()
            .cloned()
            .map(|r| sc.spawn(move || f(r)))
            .collect();
        let mut out = vec![f(ranges[0].clone())];
        out.extend(handles.into_iter().map(join));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(parse_env(None).unwrap(), None);
        assert_eq!(parse_env(Some(" 3 ")).unwrap(), Some(3));
        for bad in ["0", "-1", "x", ""] {
            let e = parse_env(Some(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with("QCORE_MAX_THREADS must be a positive integer"),
                "{e}"
            );
        }
    }

    #[test]
    fn ranges_cover_in_order() {
        for threads in [1, 2, 3, 8] {
            let parts = map_ranges(10, threads, std::iter::Iterator::collect::<Vec<_>>);
            let flat: Vec<usize> = parts.into_iter().flatten().collect();
            assert_eq!(flat, (0..10).collect::<Vec<_>>());
        }
        assert_eq!(map_ranges(0, 4, |r| r.len()), vec![0]);
    }

    #[test]
    fn worker_panic_reaches_the_caller() {
        let r = std::panic::catch_unwind(|| {
            map_ranges(100, 4, |r| {
                assert!(r.start == 0, "worker {} failed", r.start);
                r.len()
            })
        });
        assert!(r.is_err());
    }

    #[test]
    fn zero_threads_rejected() {
        assert!(set_max_threads(Some(0)).is_err());
        assert!(threads_for(10, 100, 8) == 1);
    }
}
