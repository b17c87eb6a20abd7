//! Arrival processes, generated as interarrival gaps.

use super::dist::Dist;
use super::rng::Rng;
use crate::error::{check_finite, QcoreError, Result};

/// An arrival process. The simulation clock starts at 0; gaps are drawn from the
/// arrivals stream.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrivalProcess {
    /// Poisson with the given rate.
    Poisson { rate: f64 },
    /// A renewal process with i.i.d. interarrival times.
    Renewal { interarrival: Dist },
    /// Two-state Markov-modulated Poisson process: in state i arrivals come at
    /// `rates[i]`, and the state switches to the other one at rate `switch[i]`. Starts
    /// in state 0.
    Mmpp2 { rates: [f64; 2], switch: [f64; 2] },
    /// A non-homogeneous Poisson process with rate `rates[i]` on
    /// `[times[i], times[i+1])` (the last rate holds forever; `times[0] == 0`).
    Piecewise { times: Vec<f64>, rates: Vec<f64> },
    /// Arrivals at the given sorted timestamps; the clock starts at `timestamps[0]`.
    Trace { timestamps: Vec<f64> },
}

impl ArrivalProcess {
    /// Poisson arrivals at `rate` (> 0).
    pub fn poisson(rate: f64) -> Result<Self> {
        rate_ok("rate", rate, false)?;
        Ok(ArrivalProcess::Poisson { rate })
    }

    /// Two-state MMPP.
    pub fn mmpp2(rates: [f64; 2], switch: [f64; 2]) -> Result<Self> {
        rate_ok("rates", rates[0], true)?;
        rate_ok("rates", rates[1], true)?;
        if rates[0] + rates[1] <= 0.0 {
            return Err(QcoreError::invalid("rates", "must not both be zero"));
        }
        rate_ok("switch", switch[0], false)?;
        rate_ok("switch", switch[1], false)?;
        Ok(ArrivalProcess::Mmpp2 { rates, switch })
    }

    /// Piecewise-constant rate schedule.
    pub fn piecewise(times: Vec<f64>, rates: Vec<f64>) -> Result<Self> {
        if times.is_empty() {
            return Err(QcoreError::invalid("times", "must not be empty"));
        }
        crate::error::check_same_len("times", times.len(), "rates", rates.len())?;
        check_finite("times", &times)?;
        check_finite("rates", &rates)?;
        if times[0] != 0.0 {
            return Err(QcoreError::invalid(
                "times",
                format!("must start at 0, got {}", times[0]),
            ));
        }
        if let Some(i) = times.windows(2).position(|w| w[1] <= w[0]) {
            return Err(QcoreError::invalid(
                "times",
                format!("must be strictly increasing (index {})", i + 1),
            ));
        }
        if let Some(i) = rates.iter().position(|&r| r < 0.0) {
            return Err(QcoreError::invalid(
                "rates",
                format!("contains a negative rate at index {i}"),
            ));
        }
        Ok(ArrivalProcess::Piecewise { times, rates })
    }

    /// Trace-driven arrivals (finite, non-decreasing timestamps).
    pub fn trace(timestamps: Vec<f64>) -> Result<Self> {
        if timestamps.is_empty() {
            return Err(QcoreError::invalid("timestamps", "must not be empty"));
        }
        check_finite("timestamps", &timestamps)?;
        if let Some(i) = timestamps.windows(2).position(|w| w[1] < w[0]) {
            return Err(QcoreError::invalid(
                "timestamps",
                format!("must be sorted (decreases at index {})", i + 1),
            ));
        }
        Ok(ArrivalProcess::Trace { timestamps })
    }

    /// Re-check the parameters (for values built from the enum variants directly).
    pub fn check(&self) -> Result<()> {
        match self {
            ArrivalProcess::Poisson { rate } => Self::poisson(*rate).map(|_| ()),
            ArrivalProcess::Renewal { interarrival } => {
                interarrival.check("interarrival")?;
                if interarrival.mean() <= 0.0 {
                    return Err(QcoreError::invalid(
                        "interarrival",
                        "must have a positive mean",
                    ));
                }
                Ok(())
            }
            ArrivalProcess::Mmpp2 { rates, switch } => Self::mmpp2(*rates, *switch).map(|_| ()),
            ArrivalProcess::Piecewise { times, rates } => {
                Self::piecewise(times.clone(), rates.clone()).map(|_| ())
            }
            ArrivalProcess::Trace { timestamps } => Self::trace(timestamps.clone()).map(|_| ()),
        }
    }

    /// The long-run arrival rate, if defined.
    pub fn mean_rate(&self) -> Option<f64> {
        match self {
            ArrivalProcess::Poisson { rate } => Some(*rate),
            ArrivalProcess::Renewal { interarrival } => {
                let m = interarrival.mean();
                (m > 0.0).then(|| 1.0 / m)
            }
            ArrivalProcess::Mmpp2 { rates, switch } => {
                // Stationary probability of state 0 is switch[1] / (switch[0] + switch[1]).
                let p0 = switch[1] / (switch[0] + switch[1]);
                Some(p0 * rates[0] + (1.0 - p0) * rates[1])
            }
            ArrivalProcess::Piecewise { rates, .. } => rates.last().copied(),
            ArrivalProcess::Trace { timestamps } => {
                let n = timestamps.len();
                let (first, last) = (timestamps.first()?, timestamps.last()?);
                let span = last - first;
                (n > 1 && span > 0.0).then(|| (n - 1) as f64 / span)
            }
        }
    }

    /// How many arrivals the process can produce (`None`: unlimited).
    pub fn limit(&self) -> Option<usize> {
        match self {
            ArrivalProcess::Trace { timestamps } => Some(timestamps.len()),
            ArrivalProcess::Renewal { interarrival } => interarrival.limit(),
            _ => None,
        }
    }

    /// The clock offset: simulation time 0 corresponds to this absolute time.
    pub fn origin(&self) -> f64 {
        match self {
            ArrivalProcess::Trace { timestamps } => timestamps.first().copied().unwrap_or(0.0),
            _ => 0.0,
        }
    }
}

fn rate_ok(name: &str, r: f64, zero_ok: bool) -> Result<()> {
    if !r.is_finite() || r < 0.0 || (!zero_ok && r == 0.0) {
        let what = if zero_ok { "non-negative" } else { "positive" };
        return Err(QcoreError::invalid(
            name,
            format!("must be a {what} finite rate, got {r}"),
        ));
    }
    Ok(())
}

/// The running state of an arrival process.
#[derive(Clone, Debug)]
pub struct ArrivalGen<'a> {
    proc: &'a ArrivalProcess,
    rng: Rng,
    i: usize,
    // MMPP: current state and time left in it. Piecewise: segment and absolute time.
    state: usize,
    left: f64,
    t: f64,
}

impl<'a> ArrivalGen<'a> {
    pub fn new(proc: &'a ArrivalProcess, rng: Rng) -> Self {
        let mut g = ArrivalGen {
            proc,
            rng,
            i: 0,
            state: 0,
            left: 0.0,
            t: 0.0,
        };
        if let ArrivalProcess::Mmpp2 { switch, .. } = proc {
            g.left = g.rng.exp1() / switch[0];
        }
        g
    }

    /// Poisson arrivals with exponential service: fill `gaps` and `service` together
    /// (interleaved generators, same values as separate fills). `None` for other
    /// processes.
    pub fn fill_poisson_exp(
        &mut self,
        gaps: &mut [f64],
        srng: &mut Rng,
        service: &Dist,
        svc: &mut [f64],
    ) -> Option<usize> {
        match (self.proc, service) {
            (ArrivalProcess::Poisson { rate }, Dist::Exponential { mean }) => {
                self.rng.fill_exp_pair(1.0 / rate, gaps, srng, *mean, svc);
                self.i += gaps.len();
                Some(gaps.len())
            }
            _ => None,
        }
    }

    /// Fill `out` with the next gaps; returns how many the process produced (fewer than
    /// `out.len()` only when it ran out).
    pub fn fill_gaps(&mut self, out: &mut [f64]) -> usize {
        if let ArrivalProcess::Poisson { rate } = self.proc {
            self.rng.fill_exp(1.0 / rate, out);
            self.i += out.len();
            return out.len();
        }
        for (j, x) in out.iter_mut().enumerate() {
            match self.next_gap() {
                Some(g) => *x = g,
                None => return j,
            }
        }
        out.len()
    }

    /// The gap from the previous arrival (from 0 for the first), or `None` when the
    /// process has no more arrivals.
    #[inline]
    pub fn next_gap(&mut self) -> Option<f64> {
        let i = self.i;
        self.i += 1;
        match self.proc {
            ArrivalProcess::Poisson { rate } => Some((1.0 / rate) * self.rng.exp1()),
            ArrivalProcess::Renewal { interarrival } => {
                if interarrival.limit().is_some_and(|n| i >= n) {
                    return None;
                }
                Some(interarrival.sample(&mut self.rng, i))
            }
            ArrivalProcess::Mmpp2 { rates, switch } => {
                let mut gap = 0.0;
                loop {
                    let r = rates[self.state];
                    let e = if r > 0.0 {
                        self.rng.exp1() / r
                    } else {
                        f64::INFINITY
                    };
                    if e < self.left {
                        self.left -= e;
                        return Some(gap + e);
                    }
                    // Memorylessness: the unused part of `e` is discarded.
                    gap += self.left;
                    self.state ^= 1;
                    self.left = self.rng.exp1() / switch[self.state];
                }
            }
            ArrivalProcess::Piecewise { times, rates } => {
                let mut e = self.rng.exp1();
                let start = self.t;
                loop {
                    let k = self.state;
                    let r = rates[k];
                    let end = times.get(k + 1).copied().unwrap_or(f64::INFINITY);
                    let avail = if r > 0.0 { r * (end - self.t) } else { 0.0 };
                    if e < avail {
                        self.t += e / r;
                        if self.t >= end {
                            self.t = end;
                        }
                        return Some(self.t - start);
                    }
                    if end.is_infinite() {
                        return None;
                    }
                    e -= avail;
                    self.t = end;
                    self.state += 1;
                }
            }
            ArrivalProcess::Trace { timestamps } => {
                if i >= timestamps.len() {
                    None
                } else if i == 0 {
                    Some(0.0)
                } else {
                    Some(timestamps[i] - timestamps[i - 1])
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::Stream;

    fn gaps(p: &ArrivalProcess, n: usize) -> Vec<f64> {
        let mut g = ArrivalGen::new(p, Rng::stream(9, 0, Stream::Arrivals));
        (0..n).map_while(|_| g.next_gap()).collect()
    }

    #[test]
    fn poisson_and_mmpp_rates() {
        let g = gaps(&ArrivalProcess::poisson(2.0).unwrap(), 200_000);
        let rate = g.len() as f64 / g.iter().sum::<f64>();
        assert!((rate / 2.0 - 1.0).abs() < 0.01, "{rate}");
        let p = ArrivalProcess::mmpp2([1.0, 9.0], [0.1, 0.3]).unwrap();
        let g = gaps(&p, 400_000);
        let rate = g.len() as f64 / g.iter().sum::<f64>();
        let want = p.mean_rate().unwrap(); // 0.75 · 1 + 0.25 · 9 = 3
        assert!((want - 3.0).abs() < 1e-12);
        assert!((rate / want - 1.0).abs() < 0.03, "{rate}");
        // Bursty: interarrival CV above 1.
        let m = g.iter().sum::<f64>() / g.len() as f64;
        let v = g.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / g.len() as f64;
        assert!(v.sqrt() / m > 1.1);
    }

    #[test]
    fn piecewise_counts_per_segment() {
        let p = ArrivalProcess::piecewise(vec![0.0, 100.0, 200.0], vec![5.0, 0.0, 1.0]).unwrap();
        let g = gaps(&p, 2000);
        let mut t = 0.0;
        let (mut a, mut b, mut c) = (0, 0, 0);
        for x in g {
            t += x;
            if t < 100.0 {
                a += 1;
            } else if t < 200.0 {
                b += 1;
            } else if t < 1200.0 {
                c += 1;
            }
        }
        assert_eq!(b, 0);
        assert!((f64::from(a) - 500.0).abs() < 5.0 * 500f64.sqrt(), "{a}");
        assert!((f64::from(c) - 1000.0).abs() < 5.0 * 1000f64.sqrt(), "{c}");
        // A schedule that ends at rate 0 runs out.
        let p = ArrivalProcess::piecewise(vec![0.0, 10.0], vec![1.0, 0.0]).unwrap();
        let n = gaps(&p, 1000).len();
        assert!(n < 40, "{n}");
    }

    #[test]
    fn trace_and_validation() {
        let p = ArrivalProcess::trace(vec![5.0, 5.5, 7.0]).unwrap();
        assert_eq!(gaps(&p, 10), vec![0.0, 0.5, 1.5]);
        assert!(ArrivalProcess::trace(vec![2.0, 1.0]).is_err());
        assert!(ArrivalProcess::trace(vec![]).is_err());
        assert!(ArrivalProcess::poisson(0.0).is_err());
        assert!(ArrivalProcess::mmpp2([0.0, 0.0], [1.0, 1.0]).is_err());
        assert!(ArrivalProcess::piecewise(vec![1.0], vec![1.0]).is_err());
        assert!(ArrivalProcess::piecewise(vec![0.0, 0.0], vec![1.0, 1.0]).is_err());
        assert!(ArrivalProcess::piecewise(vec![0.0], vec![1.0, 2.0]).is_err());
    }
}
