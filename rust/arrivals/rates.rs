//! Streaming rate estimators: exponentially time-decayed counts and an exact sliding
//! window. Both are mergeable across partitions and have a defined behaviour for
//! out-of-order timestamps.

use super::counts::scan;
use crate::error::{QcoreError, Result};

fn check_positive(name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(QcoreError::invalid(
            name,
            format!("must be a positive finite number of seconds, got {v}"),
        ));
    }
    Ok(())
}

/// Exponentially time-decayed event rate.
///
/// The state is `S = Σ_i exp(-λ (t_ref - t_i))` with `λ = ln 2 / half_life` and `t_ref`
/// the latest timestamp seen; the rate at time `t ≥ t_ref` is `λ · S · exp(-λ (t - t_ref))`,
/// an exponentially weighted count whose weights integrate to one. Because the sum is
/// commutative, out-of-order timestamps are folded in with their exact weight: the state
/// after any arrival order equals the state after the sorted order (up to rounding).
/// Merging two estimators gives the estimator of the union of their streams.
#[derive(Debug, Clone, PartialEq)]
pub struct DecayedRate {
    half_life: f64,
    lambda: f64,
    /// Latest timestamp seen (NaN while empty).
    t_ref: f64,
    /// Earliest timestamp seen (NaN while empty).
    t_first: f64,
    s: f64,
    count: u64,
}

impl DecayedRate {
    /// A new, empty estimator.
    pub fn new(half_life: f64) -> Result<Self> {
        check_positive("half_life", half_life)?;
        Ok(DecayedRate {
            half_life,
            lambda: std::f64::consts::LN_2 / half_life,
            t_ref: f64::NAN,
            t_first: f64::NAN,
            s: 0.0,
            count: 0,
        })
    }

    /// Rebuild from the values returned by [`DecayedRate::state`]; validated.
    pub fn from_state(
        half_life: f64,
        t_ref: f64,
        t_first: f64,
        s: f64,
        count: u64,
    ) -> Result<Self> {
        let mut r = DecayedRate::new(half_life)?;
        if count == 0 {
            if s != 0.0 {
                return Err(QcoreError::data(
                    "DecayedRate state: empty with a nonzero sum",
                ));
            }
            return Ok(r);
        }
        if !(t_ref.is_finite()
            && t_first.is_finite()
            && t_first <= t_ref
            && s.is_finite()
            && s > 0.0)
        {
            return Err(QcoreError::data("DecayedRate state is inconsistent"));
        }
        r.t_ref = t_ref;
        r.t_first = t_first;
        r.s = s;
        r.count = count;
        Ok(r)
    }

    /// `(half_life, t_ref, t_first, s, count)`.
    pub fn state(&self) -> (f64, f64, f64, f64, u64) {
        (self.half_life, self.t_ref, self.t_first, self.s, self.count)
    }

    /// The half-life (s).
    pub fn half_life(&self) -> f64 {
        self.half_life
    }

    /// Number of events seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Latest timestamp seen.
    pub fn last_time(&self) -> Option<f64> {
        (self.count > 0).then_some(self.t_ref)
    }

    /// Earliest timestamp seen.
    pub fn first_time(&self) -> Option<f64> {
        (self.count > 0).then_some(self.t_first)
    }

    /// Add a batch of timestamps (any order). NaN/inf is an error and leaves the state
    /// unchanged.
    pub fn update(&mut self, ts: &[f64]) -> Result<()> {
        let sc = scan("timestamps", ts)?;
        if sc.n == 0 {
            return Ok(());
        }
        let new_ref = if self.count == 0 {
            sc.max
        } else {
            self.t_ref.max(sc.max)
        };
        let carried = if self.count == 0 {
            0.0
        } else {
            self.s * (-self.lambda * (new_ref - self.t_ref)).exp()
        };
        let lam = self.lambda;
        let add: f64 = ts.iter().map(|&t| (-lam * (new_ref - t)).exp()).sum();
        self.s = carried + add;
        self.t_first = if self.count == 0 {
            sc.min
        } else {
            self.t_first.min(sc.min)
        };
        self.t_ref = new_ref;
        self.count += sc.n as u64;
        Ok(())
    }

    /// Merge `other` into `self` (same half-life required).
    pub fn merge(&mut self, other: &DecayedRate) -> Result<()> {
        if self.half_life != other.half_life {
            return Err(QcoreError::incompatible(format!(
                "DecayedRate half-lives differ ({} s vs {} s)",
                self.half_life, other.half_life
            )));
        }
        if other.count == 0 {
            return Ok(());
        }
        if self.count == 0 {
            *self = other.clone();
            return Ok(());
        }
        let t = self.t_ref.max(other.t_ref);
        self.s = self.s * (-self.lambda * (t - self.t_ref)).exp()
            + other.s * (-self.lambda * (t - other.t_ref)).exp();
        self.t_ref = t;
        self.t_first = self.t_first.min(other.t_first);
        self.count += other.count;
        Ok(())
    }

    /// Decayed rate at time `at` (default: the latest timestamp). `at` before the latest
    /// timestamp is an error (later events are already folded in). With `debias`, the
    /// estimate is divided by `1 - exp(-λ (at - first))`, which makes it unbiased for a
    /// constant-rate Poisson stream that started at the first timestamp. `None` while
    /// empty (and, when debiasing, at the first timestamp itself).
    pub fn rate(&self, at: Option<f64>, debias: bool) -> Result<Option<f64>> {
        if self.count == 0 {
            return Ok(None);
        }
        let at = at.unwrap_or(self.t_ref);
        if !at.is_finite() {
            return Err(QcoreError::invalid(
                "at",
                format!("must be finite, got {at}"),
            ));
        }
        if at < self.t_ref {
            return Err(QcoreError::invalid(
                "at",
                format!(
                    "({at}) is before the latest timestamp seen ({}); the estimator cannot \
                     look back",
                    self.t_ref
                ),
            ));
        }
        let r = self.lambda * self.s * (-self.lambda * (at - self.t_ref)).exp();
        if debias {
            let f = -(-self.lambda * (at - self.t_first)).exp_m1();
            if f <= 0.0 {
                return Ok(None);
            }
            return Ok(Some(r / f));
        }
        Ok(Some(r))
    }
}

/// Exact event rate over a sliding horizon: the number of events in `(t - horizon, t]`
/// divided by `horizon`.
///
/// Keeps the timestamps inside the horizon of the latest one (memory ∝ events per
/// horizon). Out-of-order timestamps still inside the horizon are inserted in order;
/// those at or before `latest - horizon` can no longer affect any answer and are dropped
/// (counted in `dropped_late`). Merging gives the estimator of the union of the streams.
#[derive(Debug, Clone, PartialEq)]
pub struct SlidingRate {
    horizon: f64,
    buf: Vec<f64>,
    head: usize,
    count: u64,
    dropped_late: u64,
}

impl SlidingRate {
    /// A new, empty estimator.
    pub fn new(horizon: f64) -> Result<Self> {
        check_positive("horizon", horizon)?;
        Ok(SlidingRate {
            horizon,
            buf: Vec::new(),
            head: 0,
            count: 0,
            dropped_late: 0,
        })
    }

    /// Rebuild from [`SlidingRate::state`]; validated.
    pub fn from_state(horizon: f64, window: &[f64], count: u64, dropped_late: u64) -> Result<Self> {
        let mut r = SlidingRate::new(horizon)?;
        let sc = scan("state", window)
            .map_err(|_| QcoreError::data("SlidingRate state has non-finite times"))?;
        if !sc.sorted || (window.len() as u64) > count {
            return Err(QcoreError::data("SlidingRate state is inconsistent"));
        }
        if sc.n > 0 && sc.min <= sc.max - horizon {
            return Err(QcoreError::data(
                "SlidingRate state holds times outside the horizon",
            ));
        }
        r.buf = window.to_vec();
        r.count = count;
        r.dropped_late = dropped_late;
        Ok(r)
    }

    /// `(horizon, timestamps in the window, count, dropped_late)`.
    pub fn state(&self) -> (f64, &[f64], u64, u64) {
        (self.horizon, self.live(), self.count, self.dropped_late)
    }

    fn live(&self) -> &[f64] {
        &self.buf[self.head..]
    }

    /// The horizon (s).
    pub fn horizon(&self) -> f64 {
        self.horizon
    }

    /// Events seen (including dropped late ones).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Late events dropped because they were already outside the horizon.
    pub fn dropped_late(&self) -> u64 {
        self.dropped_late
    }

    /// Latest timestamp seen.
    pub fn last_time(&self) -> Option<f64> {
        self.live().last().copied()
    }

    fn absorb_sorted(&mut self, batch: &[f64]) {
        let live = self.live();
        let latest = match (live.last(), batch.last()) {
            (Some(&a), Some(&b)) => a.max(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => return,
        };
        let cut = latest - self.horizon;
        let old_last = live.last().copied();
        let merged: Vec<f64> = if live
            .last()
            .is_none_or(|&l| batch.first().is_none_or(|&f| f >= l))
        {
            let mut v = Vec::with_capacity(live.len() + batch.len());
            v.extend_from_slice(live);
            v.extend_from_slice(batch);
            v
        } else {
            let mut v = Vec::with_capacity(live.len() + batch.len());
            let (mut i, mut j) = (0, 0);
            while i < live.len() && j < batch.len() {
                if live[i] <= batch[j] {
                    v.push(live[i]);
                    i += 1;
                } else {
                    v.push(batch[j]);
                    j += 1;
                }
            }
            v.extend_from_slice(&live[i..]);
            v.extend_from_slice(&batch[j..]);
            v
        };
        let keep_from = merged.partition_point(|&t| t <= cut);
        // Late events: those already outside the horizon of the latest time seen before
        // this batch. Others that fall out of the horizon now are simply expired.
        let batch_dropped = match old_last {
            Some(l) => batch.partition_point(|&t| t <= l - self.horizon) as u64,
            None => 0,
        };
        self.dropped_late += batch_dropped;
        self.buf = merged;
        self.head = keep_from;
        if self.head > 4096 && self.head * 2 > self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    /// Add a batch of timestamps (any order). NaN/inf is an error and leaves the state
    /// unchanged.
    pub fn update(&mut self, ts: &[f64]) -> Result<()> {
        let sc = scan("timestamps", ts)?;
        if sc.n == 0 {
            return Ok(());
        }
        self.count += sc.n as u64;
        if sc.sorted {
            self.absorb_sorted(ts);
        } else {
            let mut batch = ts.to_vec();
            batch.sort_unstable_by(f64::total_cmp);
            self.absorb_sorted(&batch);
        }
        Ok(())
    }

    /// Merge `other` into `self` (same horizon required).
    pub fn merge(&mut self, other: &SlidingRate) -> Result<()> {
        if self.horizon != other.horizon {
            return Err(QcoreError::incompatible(format!(
                "SlidingRate horizons differ ({} s vs {} s)",
                self.horizon, other.horizon
            )));
        }
        let before_drop = self.dropped_late;
        self.absorb_sorted(other.live());
        // Events of `other` that expire on merging are expirations, not late drops.
        self.dropped_late = before_drop + other.dropped_late;
        self.count += other.count;
        Ok(())
    }

    /// Events in `(at - horizon, at]` divided by the horizon; `at` defaults to the latest
    /// timestamp and may not be earlier than it (error). `None` while empty.
    pub fn rate(&self, at: Option<f64>) -> Result<Option<f64>> {
        let Some(last) = self.last_time() else {
            return Ok(None);
        };
        let at = at.unwrap_or(last);
        if !at.is_finite() {
            return Err(QcoreError::invalid(
                "at",
                format!("must be finite, got {at}"),
            ));
        }
        if at < last {
            return Err(QcoreError::invalid(
                "at",
                format!("({at}) is before the latest timestamp seen ({last})"),
            ));
        }
        let live = self.live();
        let from = live.partition_point(|&t| t <= at - self.horizon);
        Ok(Some((live.len() - from) as f64 / self.horizon))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decayed_order_independent_and_mergeable() {
        let ts: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.37 % 97.0).collect();
        let mut sorted = ts.clone();
        sorted.sort_by(f64::total_cmp);
        let mut a = DecayedRate::new(10.0).unwrap();
        a.update(&ts).unwrap();
        let mut b = DecayedRate::new(10.0).unwrap();
        for c in sorted.chunks(37) {
            b.update(c).unwrap();
        }
        let (ra, rb) = (
            a.rate(Some(100.0), false).unwrap().unwrap(),
            b.rate(Some(100.0), false).unwrap().unwrap(),
        );
        assert!((ra - rb).abs() < 1e-12 * ra);
        // direct formula
        let lam = std::f64::consts::LN_2 / 10.0;
        let direct: f64 = ts.iter().map(|t| lam * (-lam * (100.0 - t)).exp()).sum();
        assert!((ra - direct).abs() < 1e-12 * direct);
        let mut p = DecayedRate::new(10.0).unwrap();
        let mut q = DecayedRate::new(10.0).unwrap();
        p.update(&ts[..400]).unwrap();
        q.update(&ts[400..]).unwrap();
        p.merge(&q).unwrap();
        assert!((p.rate(Some(100.0), false).unwrap().unwrap() - ra).abs() < 1e-12 * ra);
        assert_eq!(p.count(), 1000);
        assert!(p.merge(&DecayedRate::new(5.0).unwrap()).is_err());
        let before = a.clone();
        assert!(a.update(&[1.0, f64::NAN]).is_err());
        assert_eq!(a, before);
        assert!(a.rate(Some(0.0), false).is_err());
    }

    #[test]
    fn sliding_exact() {
        let mut s = SlidingRate::new(10.0).unwrap();
        s.update(&[1.0, 5.0, 12.0]).unwrap();
        assert_eq!(s.rate(None).unwrap(), Some(0.2)); // (2, 12] holds 5, 12
        s.update(&[3.0, 1.5]).unwrap(); // 3 is inside (2, 12], 1.5 is late
        assert_eq!(s.rate(None).unwrap(), Some(0.3));
        assert_eq!(s.dropped_late(), 1);
        assert_eq!(s.rate(Some(20.0)).unwrap(), Some(0.1));
        let mut o = SlidingRate::new(10.0).unwrap();
        o.update(&[11.0, 13.0]).unwrap();
        s.merge(&o).unwrap();
        assert_eq!(s.rate(None).unwrap(), Some(0.4)); // (3, 13]: 5, 11, 12, 13
        assert_eq!(s.count(), 7);
    }
}
