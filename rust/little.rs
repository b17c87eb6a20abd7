//! Little's law from `(start, end)` pairs, in-flight concurrency, and the paired
//! comparison of the logs with an independent in-flight gauge.
//!
//! Conventions: a request is in the system on `[start, end)`. A NaN `end` means the
//! request was still running when the log was cut; it is taken to be in the system until
//! the end of the log (the latest finite end or start), counted and flagged. A row with
//! `end < start` (clocks disagree) is excluded from every sum, counted and flagged.
//! `start` must be finite; an infinite `end` is an error.

use crate::error::{check_finite, check_same_len, QcoreError, Result};
use crate::special::student_t_quantile;

/// Flag: some rows have no end time (still running).
pub const FLAG_RUNNING: &str = "running_requests";
/// Flag: some rows end before they start (skewed clocks).
pub const FLAG_NEGATIVE: &str = "negative_durations";
/// Flag: the relative gap |L − λW| / L exceeds the tolerance (window too short).
pub const FLAG_EDGE: &str = "edge_effect";
/// Flag: the mean paired difference between logs and gauge is not within the tolerance.
pub const FLAG_GAUGE_DISCREPANCY: &str = "gauge_discrepancy";
/// Flag: the mean absolute paired difference between logs and gauge exceeds the tolerance.
pub const FLAG_GAUGE_MISMATCH: &str = "gauge_mismatch";
/// Flag: there are no arrivals in the window or L is zero; nothing to check.
pub const FLAG_EMPTY: &str = "empty_window";

/// The paired comparison of the logs' in-flight count with a gauge at the gauge's times.
#[derive(Debug, Clone, PartialEq)]
pub struct GaugeCheck {
    /// Number of gauge samples.
    pub samples: usize,
    /// Time average of the gauge samples.
    pub gauge_mean: f64,
    /// Average of the logs' in-flight count at the gauge's sample times.
    pub logs_mean: f64,
    /// `mean(logs − gauge) / gauge_mean`: negative when the logs miss requests.
    pub discrepancy: f64,
    /// Confidence interval of `discrepancy`.
    pub discrepancy_ci: (f64, f64),
    /// `mean |logs − gauge| / gauge_mean`.
    pub mismatch: f64,
    /// Upper confidence bound of `mismatch`.
    pub mismatch_upper: f64,
    /// Lag-1 autocorrelation of the paired differences used to widen the intervals.
    pub autocorrelation: f64,
    /// `|gauge_mean − λW| / gauge_mean`, for information (not paired).
    pub gauge_gap: f64,
    /// Fraction of samples at which logs and gauge agree exactly.
    pub exact_agreement: f64,
    /// `discrepancy_ci` lies inside ±tolerance and `mismatch_upper` ≤ tolerance.
    pub within_tolerance: bool,
}

/// Result of [`littles_law`].
#[derive(Debug, Clone, PartialEq)]
pub struct LittleResult {
    /// Observation window start.
    pub t0: f64,
    /// Observation window end.
    pub t1: f64,
    /// Exact time-average number in system over the window.
    pub l: f64,
    /// Arrivals in `[t0, t1)` divided by `t1 − t0`.
    pub arrival_rate: f64,
    /// Mean response time of the requests that arrived in the window.
    pub mean_response: f64,
    /// `arrival_rate · mean_response`.
    pub lambda_w: f64,
    /// `|L − λW| / L` (NaN when L = 0).
    pub gap: f64,
    /// `λW − L` exactly: work past `t1` of window arrivals minus work inside the window of
    /// requests already present at `t0`, divided by the window length.
    pub edge_term: f64,
    /// An upper bound on `|edge_term|`: (requests in flight at t0 + window arrivals in
    /// flight at t1) · (largest response time) / window length.
    pub edge_bound: f64,
    /// Requests in flight at `t0`.
    pub in_flight_t0: u64,
    /// Window arrivals still in flight at `t1`.
    pub in_flight_t1: u64,
    /// Rows given.
    pub rows: u64,
    /// Arrivals in the window (valid rows).
    pub arrivals: u64,
    /// Rows with no end time.
    pub running: u64,
    /// Rows with `end < start`.
    pub negative_durations: u64,
    /// Gauge comparison, when a gauge was given.
    pub gauge: Option<GaugeCheck>,
    /// Tolerance used.
    pub tolerance: f64,
    /// Data-quality flags (empty when the logs pass).
    pub flags: Vec<&'static str>,
}

impl LittleResult {
    /// True when no flag is raised.
    pub fn holds(&self) -> bool {
        self.flags.is_empty()
    }
}

fn check_end(end: &[f64]) -> Result<()> {
    if let Some(i) = end.iter().position(|v| v.is_infinite()) {
        return Err(QcoreError::invalid(
            "end",
            format!(
                "contains {} at index {i} (use NaN for a request still running)",
                if end[i] > 0.0 { "inf" } else { "-inf" }
            ),
        ));
    }
    Ok(())
}

fn validate(start: &[f64], end: &[f64]) -> Result<()> {
    check_same_len("start", start.len(), "end", end.len())?;
    check_finite("start", start)?;
    check_end(end)
}

/// Sorted starts and sorted effective ends (NaN → +inf; end < start → start, so the row
/// contributes nothing).
fn sorted_events(start: &[f64], end: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut s = start.to_vec();
    let mut e: Vec<f64> = start
        .iter()
        .zip(end)
        .map(|(&a, &b)| {
            if b.is_nan() {
                f64::INFINITY
            } else if b < a {
                a
            } else {
                b
            }
        })
        .collect();
    s.sort_unstable_by(f64::total_cmp);
    e.sort_unstable_by(f64::total_cmp);
    (s, e)
}

fn count_at(s: &[f64], e: &[f64], t: f64) -> i64 {
    s.partition_point(|&x| x <= t) as i64 - e.partition_point(|&x| x <= t) as i64
}

/// Number of requests in the system (`start ≤ t < end`) at each time in `at`.
///
/// Rows with a NaN end count as in flight from their start on; rows with `end < start`
/// count nowhere. NaN in `at` or `start`, or an infinite `end`, is an error.
pub fn in_flight(start: &[f64], end: &[f64], at: &[f64]) -> Result<Vec<i64>> {
    validate(start, end)?;
    check_finite("at", at)?;
    let (s, e) = sorted_events(start, end);
    Ok(at.iter().map(|&t| count_at(&s, &e, t)).collect())
}

/// Peak concurrency and the first time it is reached (`None` time when there are no
/// rows). Same conventions as [`in_flight`].
pub fn peak_in_flight(start: &[f64], end: &[f64]) -> Result<(i64, Option<f64>)> {
    validate(start, end)?;
    let (s, e) = sorted_events(start, end);
    let (mut i, mut j) = (0usize, 0usize);
    let mut cur = 0i64;
    let mut best = 0i64;
    let mut when = None;
    while i < s.len() {
        // Ends at or before the next start leave first (half-open intervals).
        if j < e.len() && e[j] <= s[i] {
            cur -= 1;
            j += 1;
        } else {
            let t = s[i];
            // all starts at the same time enter together
            while i < s.len() && s[i] == t {
                cur += 1;
                i += 1;
            }
            if cur > best {
                best = cur;
                when = Some(t);
            }
        }
    }
    Ok((best, when))
}

fn check_unit(name: &str, v: f64, closed_low: bool) -> Result<()> {
    let ok = v.is_finite() && v < 1.0 && (v > 0.0 || (closed_low && v == 0.0));
    if !ok {
        return Err(QcoreError::invalid(
            name,
            format!(
                "must be in {}0, 1), got {v}",
                if closed_low { "[" } else { "(" }
            ),
        ));
    }
    Ok(())
}

/// Little's law over the window `[t0, t1)` (defaults: first start, end of the log).
///
/// `L` is the exact time average of the in-flight count over the window, i.e. the sum of
/// the row intervals clipped to the window divided by its length (the integral a sweep of
/// the in-flight count computes, without sorting). `λ` counts arrivals with
/// `t0 ≤ start < t1`, `W` is their mean response. `λW − L` is exactly the edge term, which
/// is reported with a bound. Over the whole span of a log the gap is zero by
/// construction, so logs alone cannot reveal missing rows: pass a gauge for that.
///
/// With a gauge (`gauge = Some((times, counts))`), the logs' in-flight count at each gauge
/// time is paired with the gauge's value; the mean difference relative to the gauge mean
/// gets a Student t interval from the paired differences (widened by the lag-1
/// autocorrelation factor `√((1+ρ)/(1−ρ))`), and the mean absolute difference an upper
/// bound. The logs pass when the interval lies within ±`tolerance` and the upper bound is
/// at most `tolerance`.
pub fn littles_law(
    start: &[f64],
    end: &[f64],
    t0: Option<f64>,
    t1: Option<f64>,
    gauge: Option<(&[f64], &[f64])>,
    tolerance: f64,
    confidence: f64,
) -> Result<LittleResult> {
    validate(start, end)?;
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(QcoreError::invalid(
            "tolerance",
            format!("must be a finite number ≥ 0, got {tolerance}"),
        ));
    }
    check_unit("confidence", confidence, false)?;
    for (name, v) in [("t0", t0), ("t1", t1)] {
        if let Some(v) = v {
            if !v.is_finite() {
                return Err(QcoreError::invalid(
                    name,
                    format!("must be finite, got {v}"),
                ));
            }
        }
    }
    if let Some((gt, gc)) = gauge {
        check_same_len("in_flight_times", gt.len(), "in_flight_counts", gc.len())?;
        check_finite("in_flight_times", gt)?;
        check_finite("in_flight_counts", gc)?;
        if let Some(i) = gc.iter().position(|&v| v < 0.0) {
            return Err(QcoreError::invalid(
                "in_flight_counts",
                format!("contains a negative value at index {i}"),
            ));
        }
        if gt.len() < 2 {
            return Err(QcoreError::invalid(
                "in_flight_times",
                format!("needs at least 2 gauge samples, got {}", gt.len()),
            ));
        }
    }
    // One pass: log span, running and skewed rows.
    let mut first = f64::INFINITY;
    let mut log_end = f64::NEG_INFINITY;
    let mut running = 0u64;
    let mut negative = 0u64;
    for (&s, &e) in start.iter().zip(end) {
        first = first.min(s);
        log_end = log_end.max(s);
        if e.is_nan() {
            running += 1;
        } else if e < s {
            negative += 1;
        } else {
            log_end = log_end.max(e);
        }
    }
    let t0 = match t0 {
        Some(v) => v,
        None if start.is_empty() => {
            return Err(QcoreError::invalid(
                "start",
                "is empty; give t0 and t1 to describe an empty window",
            ))
        }
        None => first,
    };
    let t1 = match t1 {
        Some(v) => v,
        None if start.is_empty() => {
            return Err(QcoreError::invalid("start", "is empty; give t1 as well"))
        }
        None => log_end,
    };
    if t1 <= t0 {
        return Err(QcoreError::invalid(
            "t1",
            format!("({t1}) must be after t0 ({t0})"),
        ));
    }
    let span = t1 - t0;
    let mut clipped = 0.0f64;
    let mut resp_sum = 0.0f64;
    let mut arrivals = 0u64;
    let mut e_in = 0.0f64;
    let mut e_out = 0.0f64;
    let mut n_t0 = 0u64;
    let mut n_t1 = 0u64;
    let mut max_resp = 0.0f64;
    for (&s, &e) in start.iter().zip(end) {
        let e = if e.is_nan() {
            log_end.max(s)
        } else if e < s {
            continue;
        } else {
            e
        };
        let lo = s.max(t0);
        let hi = e.min(t1);
        if hi > lo {
            clipped += hi - lo;
        }
        if s < t0 && e > t0 {
            e_in += hi.max(t0) - t0;
            n_t0 += 1;
            max_resp = max_resp.max(e - s);
        }
        if s >= t0 && s < t1 {
            arrivals += 1;
            resp_sum += e - s;
            if e > t1 {
                e_out += e - t1;
                n_t1 += 1;
                max_resp = max_resp.max(e - s);
            }
        }
    }
    let l = clipped / span;
    let arrival_rate = arrivals as f64 / span;
    let mean_response = if arrivals > 0 {
        resp_sum / arrivals as f64
    } else {
        f64::NAN
    };
    let lambda_w = if arrivals > 0 {
        arrival_rate * mean_response
    } else {
        0.0
    };
    let gap = if l > 0.0 {
        (l - lambda_w).abs() / l
    } else {
        f64::NAN
    };
    let edge_term = (e_out - e_in) / span;
    let edge_bound = (n_t0 + n_t1) as f64 * max_resp / span;

    let mut flags = Vec::new();
    if arrivals == 0 || l <= 0.0 {
        flags.push(FLAG_EMPTY);
    }
    if running > 0 {
        flags.push(FLAG_RUNNING);
    }
    if negative > 0 {
        flags.push(FLAG_NEGATIVE);
    }
    if gap > tolerance {
        flags.push(FLAG_EDGE);
    }

    let gauge = match gauge {
        None => None,
        Some((gt, gc)) => {
            let g = gauge_check(start, end, gt, gc, tolerance, confidence, lambda_w);
            if !g.within_tolerance {
                let lo_hi = g.discrepancy_ci;
                if !(lo_hi.0 >= -tolerance && lo_hi.1 <= tolerance) {
                    flags.push(FLAG_GAUGE_DISCREPANCY);
                }
                if g.mismatch_upper.is_nan() || g.mismatch_upper > tolerance {
                    flags.push(FLAG_GAUGE_MISMATCH);
                }
            }
            Some(g)
        }
    };

    Ok(LittleResult {
        t0,
        t1,
        l,
        arrival_rate,
        mean_response,
        lambda_w,
        gap,
        edge_term,
        edge_bound,
        in_flight_t0: n_t0,
        in_flight_t1: n_t1,
        rows: start.len() as u64,
        arrivals,
        running,
        negative_durations: negative,
        gauge,
        tolerance,
        flags,
    })
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
    (m, v.sqrt())
}

fn lag1(x: &[f64], m: f64) -> f64 {
    let den: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    if den <= 0.0 {
        return 0.0;
    }
    let num: f64 = x.windows(2).map(|p| (p[0] - m) * (p[1] - m)).sum();
    (num / den).clamp(0.0, 0.95)
}

fn gauge_check(
    start: &[f64],
    end: &[f64],
    times: &[f64],
    counts: &[f64],
    tolerance: f64,
    confidence: f64,
    lambda_w: f64,
) -> GaugeCheck {
    let (s, e) = sorted_events(start, end);
    // Pair in gauge time order (the autocorrelation is along time).
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| times[a].total_cmp(&times[b]));
    let m = times.len();
    let mut d = Vec::with_capacity(m);
    let mut ad = Vec::with_capacity(m);
    let mut logs_sum = 0.0;
    let mut exact = 0usize;
    for &k in &order {
        let n = count_at(&s, &e, times[k]) as f64;
        logs_sum += n;
        let diff = n - counts[k];
        if diff == 0.0 {
            exact += 1;
        }
        d.push(diff);
        ad.push(diff.abs());
    }
    let gauge_mean = counts.iter().sum::<f64>() / m as f64;
    let logs_mean = logs_sum / m as f64;
    let tq = student_t_quantile(0.5 + 0.5 * confidence, (m - 1) as f64);
    let t1q = student_t_quantile(confidence, (m - 1) as f64);
    let (md, sd) = mean_sd(&d);
    let rho = lag1(&d, md);
    let infl = ((1.0 + rho) / (1.0 - rho)).sqrt();
    let se = sd / (m as f64).sqrt() * infl;
    let (mad, sad) = mean_sd(&ad);
    let rho_a = lag1(&ad, mad);
    let se_a = sad / (m as f64).sqrt() * ((1.0 + rho_a) / (1.0 - rho_a)).sqrt();
    let denom = if gauge_mean > 0.0 {
        gauge_mean
    } else {
        f64::NAN
    };
    let (discrepancy, ci, mismatch, mismatch_upper) = if gauge_mean > 0.0 {
        (
            md / denom,
            ((md - tq * se) / denom, (md + tq * se) / denom),
            mad / denom,
            (mad + t1q * se_a) / denom,
        )
    } else if logs_sum == 0.0 {
        // Both idle throughout: they agree.
        (0.0, (0.0, 0.0), 0.0, 0.0)
    } else {
        (
            f64::INFINITY,
            (f64::INFINITY, f64::INFINITY),
            f64::INFINITY,
            f64::INFINITY,
        )
    };
    let within = ci.0 >= -tolerance && ci.1 <= tolerance && mismatch_upper <= tolerance;
    GaugeCheck {
        samples: m,
        gauge_mean,
        logs_mean,
        discrepancy,
        discrepancy_ci: ci,
        mismatch,
        mismatch_upper,
        autocorrelation: rho,
        gauge_gap: if gauge_mean > 0.0 {
            (gauge_mean - lambda_w).abs() / gauge_mean
        } else {
            f64::NAN
        },
        exact_agreement: exact as f64 / m as f64,
        within_tolerance: within,
    }
}

/// [`littles_law`] for each group of rows: `codes[i]` in `0..n_groups` names the group of
/// row `i`. Each group uses its own default window unless `t0`/`t1` are given.
pub fn littles_law_grouped(
    codes: &[i64],
    start: &[f64],
    end: &[f64],
    n_groups: usize,
    t0: Option<f64>,
    t1: Option<f64>,
    tolerance: f64,
) -> Result<Vec<Result<LittleResult>>> {
    check_same_len("start", start.len(), "codes", codes.len())?;
    validate(start, end)?;
    if let Some(i) = codes
        .iter()
        .position(|&c| c < 0 || c as u64 >= n_groups as u64)
    {
        return Err(QcoreError::invalid(
            "codes",
            format!("value {} at index {i} is outside 0..{n_groups}", codes[i]),
        ));
    }
    let mut sizes = vec![0usize; n_groups + 1];
    for &c in codes {
        sizes[c as usize + 1] += 1;
    }
    for g in 0..n_groups {
        sizes[g + 1] += sizes[g];
    }
    let mut pos = sizes.clone();
    let mut s = vec![0.0; start.len()];
    let mut e = vec![0.0; start.len()];
    for ((&c, &a), &b) in codes.iter().zip(start).zip(end) {
        let p = &mut pos[c as usize];
        s[*p] = a;
        e[*p] = b;
        *p += 1;
    }
    Ok((0..n_groups)
        .map(|g| {
            let r = sizes[g]..sizes[g + 1];
            littles_law(&s[r.clone()], &e[r], t0, t1, None, tolerance, 0.95)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_log_by_hand() {
        // [0,2), [1,4), [3,5): L over [0,5) = (2+3+2)/5
        let s = [0.0, 1.0, 3.0];
        let e = [2.0, 4.0, 5.0];
        let r = littles_law(&s, &e, None, None, None, 0.02, 0.95).unwrap();
        assert!((r.l - 7.0 / 5.0).abs() < 1e-15);
        assert!((r.lambda_w - r.l).abs() < 1e-15);
        assert!(r.holds());
        // window [1, 4): clipped 1 + 3 + 1 = 5 → L = 5/3; arrivals 1,3 with W = (3+2)/2
        let r = littles_law(&s, &e, Some(1.0), Some(4.0), None, 0.02, 0.95).unwrap();
        assert!((r.l - 5.0 / 3.0).abs() < 1e-15);
        assert_eq!(r.arrivals, 2);
        assert!((r.lambda_w - 5.0 / 3.0).abs() < 1e-15);
        // e_in = 1 (row 0 from 1 to 2); e_out = 1 (row 2 past 4) → edge term 0
        assert!(r.edge_term.abs() < 1e-15);
        assert_eq!((r.in_flight_t0, r.in_flight_t1), (1, 1));
        assert_eq!(
            in_flight(&s, &e, &[0.0, 1.0, 2.0, 3.5, 5.0]).unwrap(),
            vec![1, 2, 1, 2, 0]
        );
        assert_eq!(peak_in_flight(&s, &e).unwrap(), (2, Some(1.0)));
        // touching intervals do not overlap
        assert_eq!(
            peak_in_flight(&[0.0, 1.0], &[1.0, 2.0]).unwrap(),
            (1, Some(0.0))
        );
    }

    #[test]
    fn flags() {
        let r = littles_law(&[0.0, 1.0], &[2.0, f64::NAN], None, None, None, 0.02, 0.95).unwrap();
        assert_eq!(r.flags, vec![FLAG_RUNNING]);
        assert_eq!(r.running, 1);
        let r = littles_law(&[0.0, 1.0], &[2.0, 0.5], None, None, None, 0.02, 0.95).unwrap();
        assert_eq!(r.flags, vec![FLAG_NEGATIVE]);
        assert!(littles_law(&[0.0], &[f64::INFINITY], None, None, None, 0.02, 0.95).is_err());
        assert!(littles_law(&[f64::NAN], &[1.0], None, None, None, 0.02, 0.95).is_err());
        assert!(littles_law(&[0.0], &[1.0, 2.0], None, None, None, 0.02, 0.95).is_err());
        assert!(littles_law(&[0.0], &[1.0], Some(1.0), Some(0.0), None, 0.02, 0.95).is_err());
    }

    #[test]
    fn gauge_agrees_with_itself() {
        let s = [0.0, 1.0, 3.0, 3.5];
        let e = [2.0, 4.0, 5.0, 6.0];
        let t: Vec<f64> = (0..60).map(|i| f64::from(i) * 0.1).collect();
        let g: Vec<f64> = in_flight(&s, &e, &t)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect();
        let r = littles_law(&s, &e, None, None, Some((&t, &g)), 0.02, 0.95).unwrap();
        let gc = r.gauge.clone().unwrap();
        assert_eq!(gc.discrepancy, 0.0);
        assert_eq!(gc.exact_agreement, 1.0);
        assert!(r.holds(), "{:?}", r.flags);
        // drop a row from the logs: flagged
        let r = littles_law(&s[..3], &e[..3], None, None, Some((&t, &g)), 0.02, 0.95).unwrap();
        assert!(r.flags.contains(&FLAG_GAUGE_DISCREPANCY));
    }
}
