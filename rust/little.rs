//! Little's law from `(start, end)` pairs, in-flight concurrency, and the paired
//! comparison of the logs with an independent in-flight gauge.
//!
//! Conventions: a request is in the system on `[start, end)`. A NaN `end` means the
//! request was still running when the log was cut; it is taken to be in the system until
//! the end of the log (the latest finite end or start), counted and flagged. A row with
//! `end < start` (clocks disagree) is excluded from every sum, counted and flagged.
//! `start` must be finite; an infinite `end` is an error.

use crate::error::{check_finite, check_same_len, QcoreError, Result};
use crate::simd::avx2_dispatch;
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

pub(crate) fn validate(start: &[f64], end: &[f64]) -> Result<()> {
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

/// Peak concurrency in each of `n` consecutive windows `[t0 + k·width, t0 + (k+1)·width)`:
/// the maximum of the in-flight count over the window, the step function of
/// [`in_flight`] (`start ≤ t < end`) evaluated exactly, not sampled at the window edges.
/// The maximum over all windows that cover the log is [`peak_in_flight`]'s peak.
///
/// The count is highest at the window's start or just after one of the starts inside it,
/// so one sweep over the sorted starts and ends gives every window's maximum.
pub fn in_flight_peaks(
    start: &[f64],
    end: &[f64],
    t0: f64,
    width: f64,
    n: usize,
) -> Result<Vec<i64>> {
    validate(start, end)?;
    if !t0.is_finite() {
        return Err(QcoreError::invalid(
            "t0",
            format!("must be finite, got {t0}"),
        ));
    }
    if !(width.is_finite() && width > 0.0) {
        return Err(QcoreError::invalid(
            "width",
            format!("must be a positive number of seconds, got {width}"),
        ));
    }
    let (s, e) = sorted_events(start, end);
    let (mut i, mut j) = (0usize, 0usize);
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let a = t0 + k as f64 * width;
        let b = t0 + (k + 1) as f64 * width;
        // the count at the window's start: starts and ends at or before it
        while i < s.len() && s[i] <= a {
            i += 1;
        }
        while j < e.len() && e[j] <= a {
            j += 1;
        }
        let mut best = i as i64 - j as i64;
        // just after each start inside the window (ends at or before it leave first)
        while i < s.len() && s[i] < b {
            let t = s[i];
            while i < s.len() && s[i] == t {
                i += 1;
            }
            while j < e.len() && e[j] <= t {
                j += 1;
            }
            best = best.max(i as i64 - j as i64);
        }
        out.push(best);
    }
    Ok(out)
}

pub(crate) fn check_unit(name: &str, v: f64, closed_low: bool) -> Result<()> {
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

pub(crate) fn check_tolerance(tolerance: f64) -> Result<()> {
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(QcoreError::invalid(
            "tolerance",
            format!("must be a finite number ≥ 0, got {tolerance}"),
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
/// time inside `[t0, t1]` is paired with the gauge's value; the mean difference relative to the gauge mean
/// gets a Student t interval from the paired differences (widened by the lag-1
/// autocorrelation factor `√((1+ρ)/(1−ρ))`), and the mean absolute difference an upper
/// bound. The logs pass when the interval lies within ±`tolerance` and the upper bound is
/// at most `tolerance`. The comparison is [`gauge_compare`] on the samples
/// [`gauge_window`] selects, with the flags of [`gauge_flags`]; callers that count the
/// logs' in-flight requests per partition of the rows call those directly.
pub fn littles_law(
    start: &[f64],
    end: &[f64],
    t0: Option<f64>,
    t1: Option<f64>,
    gauge: Option<(&[f64], &[f64])>,
    tolerance: f64,
    confidence: f64,
) -> Result<LittleResult> {
    check_same_len("start", start.len(), "end", end.len())?;
    check_tolerance(tolerance)?;
    check_unit("confidence", confidence, false)?;
    // `t0`, `t1` and the gauge are checked by `advance`, before the second pass.
    let mut acc = crate::accum::LittleAccumulator::new();
    acc.update(start, end)?;
    acc.advance(t0, t1, gauge)?;
    acc.update_valid(start, end)?;
    acc.finish(tolerance, confidence)
}

/// Log span and row classes from one pass (8 lanes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SpanAcc {
    pub(crate) rows: u64,
    pub(crate) first: f64,
    pub(crate) last: f64,
    pub(crate) running: u64,
    pub(crate) negative: u64,
    /// A non-finite start or an infinite end was seen.
    pub(crate) bad: bool,
}

impl SpanAcc {
    pub(crate) fn empty() -> Self {
        SpanAcc {
            rows: 0,
            first: f64::INFINITY,
            last: f64::NEG_INFINITY,
            running: 0,
            negative: 0,
            bad: false,
        }
    }

    pub(crate) fn merge(a: Self, b: Self) -> Self {
        SpanAcc {
            // (saturating: decoded states can hold any count)
            rows: a.rows.saturating_add(b.rows),
            first: a.first.min(b.first),
            last: a.last.max(b.last),
            running: a.running.saturating_add(b.running),
            negative: a.negative.saturating_add(b.negative),
            bad: a.bad || b.bad,
        }
    }
}

#[inline(always)]
fn span_pass_impl(start: &[f64], end: &[f64]) -> SpanAcc {
    const L: usize = 8;
    let mut first = [f64::INFINITY; L];
    let mut last = [f64::NEG_INFINITY; L];
    let mut running = [0u64; L];
    let mut negative = [0u64; L];
    let mut bad = [false; L];
    let n = start.len().min(end.len());
    let body = n / L * L;
    let mut i = 0;
    while i < body {
        let (s8, e8) = (&start[i..i + L], &end[i..i + L]);
        for j in 0..L {
            let (s, e) = (s8[j], e8[j]);
            bad[j] |= !s.is_finite() || e.is_infinite();
            first[j] = if s < first[j] { s } else { first[j] };
            let run = e.is_nan();
            let neg = e < s;
            running[j] += u64::from(run);
            negative[j] += u64::from(neg);
            let top = if run || neg { s } else { e };
            let top = if s > top { s } else { top };
            last[j] = if top > last[j] { top } else { last[j] };
        }
        i += L;
    }
    let mut acc = SpanAcc::empty();
    let mut is_bad = bad.iter().any(|&b| b);
    for j in 0..L {
        acc.first = acc.first.min(first[j]);
        acc.last = acc.last.max(last[j]);
        acc.running += running[j];
        acc.negative += negative[j];
    }
    for k in body..n {
        let (s, e) = (start[k], end[k]);
        is_bad |= !s.is_finite() || e.is_infinite();
        acc.first = acc.first.min(s);
        acc.last = acc.last.max(s);
        if e.is_nan() {
            acc.running += 1;
        } else if e < s {
            acc.negative += 1;
        } else {
            acc.last = acc.last.max(e);
        }
    }
    acc.bad = is_bad;
    acc.rows = n as u64;
    acc
}

avx2_dispatch! {
    pub(crate) fn span_pass(start: &[f64], end: &[f64]) -> SpanAcc => span_pass_impl
}

/// One row's contribution, branch-free so that the lane loop vectorises. Running rows (NaN
/// end) stay until the end of the log; skewed rows (end < start) weigh nothing.
/// Returns (clipped, `e_in`, pre, arrival, response·arrival, `e_out`, out, edge response).
#[inline(always)]
pub(crate) fn row(s: f64, e: f64, t0: f64, t1: f64, log_end: f64) -> [f64; 8] {
    let le = if log_end > s { log_end } else { s };
    let ee = if e.is_nan() { le } else { e };
    let valid = ee >= s;
    let v = if valid { 1.0 } else { 0.0 };
    let lo = if s > t0 { s } else { t0 };
    let hi = if ee < t1 { ee } else { t1 };
    let d = hi - lo;
    let clipped = if d > 0.0 { d } else { 0.0 } * v;
    let pre = if valid && s < t0 && ee > t0 { 1.0 } else { 0.0 };
    let hi0 = if hi > t0 { hi } else { t0 };
    let arr = if valid && s >= t0 && s < t1 { 1.0 } else { 0.0 };
    let r = (ee - s) * v;
    let out = if arr > 0.0 && ee > t1 { 1.0 } else { 0.0 };
    [
        clipped,
        (hi0 - t0) * pre,
        pre,
        arr,
        r * arr,
        (ee - t1) * out,
        out,
        r * (pre + out),
    ]
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

/// Checks the gauge arrays of [`littles_law`]: equal lengths, finite values, no negative
/// count, at least two samples.
pub fn check_gauge(times: &[f64], counts: &[f64]) -> Result<()> {
    check_same_len(
        "in_flight_times",
        times.len(),
        "in_flight_counts",
        counts.len(),
    )?;
    check_finite("in_flight_times", times)?;
    check_finite("in_flight_counts", counts)?;
    if let Some(i) = counts.iter().position(|&v| v < 0.0) {
        return Err(QcoreError::invalid(
            "in_flight_counts",
            format!("contains a negative value at index {i}"),
        ));
    }
    if times.len() < 2 {
        return Err(QcoreError::invalid(
            "in_flight_times",
            format!("needs at least 2 gauge samples, got {}", times.len()),
        ));
    }
    Ok(())
}

/// Indices (in the given order) of the gauge samples inside the window `[t0, t1]` (closed
/// at both ends; `None` leaves a side open), as [`littles_law`] pairs them. An error names
/// `in_flight_times` when fewer than two samples remain (or `t0`/`t1` when NaN).
pub fn gauge_window(times: &[f64], t0: Option<f64>, t1: Option<f64>) -> Result<Vec<usize>> {
    for (name, v) in [("t0", t0), ("t1", t1)] {
        if let Some(v) = v.filter(|v| v.is_nan()) {
            return Err(QcoreError::invalid(
                name,
                format!("must not be NaN, got {v}"),
            ));
        }
    }
    let (lo, hi) = (t0.unwrap_or(f64::NEG_INFINITY), t1.unwrap_or(f64::INFINITY));
    let idx: Vec<usize> = times
        .iter()
        .enumerate()
        .filter(|(_, &t)| t >= lo && t <= hi)
        .map(|(k, _)| k)
        .collect();
    if idx.len() < 2 {
        return Err(QcoreError::invalid(
            "in_flight_times",
            format!(
                "has {} sample(s) inside the window [{lo}, {hi}]; at least 2 are needed",
                idx.len()
            ),
        ));
    }
    Ok(idx)
}

/// The gauge flags [`littles_law`] raises for a comparison: [`FLAG_GAUGE_DISCREPANCY`]
/// when `discrepancy_ci` is not inside ±`tolerance`, [`FLAG_GAUGE_MISMATCH`] when
/// `mismatch_upper` exceeds it (or is NaN).
pub fn gauge_flags(g: &GaugeCheck, tolerance: f64) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if !g.within_tolerance {
        let lo_hi = g.discrepancy_ci;
        if !(lo_hi.0 >= -tolerance && lo_hi.1 <= tolerance) {
            flags.push(FLAG_GAUGE_DISCREPANCY);
        }
        if g.mismatch_upper.is_nan() || g.mismatch_upper > tolerance {
            flags.push(FLAG_GAUGE_MISMATCH);
        }
    }
    flags
}

/// The paired gauge comparison of [`littles_law`] from the logs' in-flight counts at the
/// gauge's sample times: `logs[k]` is the number of requests in the system at `times[k]`
/// (as [`in_flight`] counts it), `counts[k]` the gauge's value there. The samples are the
/// ones to pair (those inside the window: see [`gauge_window`]); `lambda_w` is the
/// window's `λW`, used for `gauge_gap` only.
///
/// The counts are integers, so they can be computed per partition of the rows and summed
/// exactly; the result is then bit for bit that of [`littles_law`] on all the rows.
pub fn gauge_compare(
    logs: &[i64],
    times: &[f64],
    counts: &[f64],
    tolerance: f64,
    confidence: f64,
    lambda_w: f64,
) -> Result<GaugeCheck> {
    check_tolerance(tolerance)?;
    check_unit("confidence", confidence, false)?;
    check_gauge(times, counts)?;
    check_same_len("in_flight_times", times.len(), "logs_counts", logs.len())?;
    if let Some(i) = logs.iter().position(|&v| v < 0) {
        return Err(QcoreError::invalid(
            "logs_counts",
            format!("contains a negative value at index {i}"),
        ));
    }
    if !(lambda_w.is_finite() && lambda_w >= 0.0) {
        return Err(QcoreError::invalid(
            "lambda_w",
            format!("must be a finite number ≥ 0, got {lambda_w}"),
        ));
    }
    Ok(gauge_core(
        logs, times, counts, tolerance, confidence, lambda_w,
    ))
}

/// [`gauge_compare`] on validated arguments.
pub(crate) fn gauge_core(
    logs: &[i64],
    times: &[f64],
    counts: &[f64],
    tolerance: f64,
    confidence: f64,
    lambda_w: f64,
) -> GaugeCheck {
    // Pair in gauge time order (the autocorrelation is along time).
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| times[a].total_cmp(&times[b]));
    let m = times.len();
    let mut d = Vec::with_capacity(m);
    let mut ad = Vec::with_capacity(m);
    let mut logs_sum = 0.0;
    let mut exact = 0usize;
    for &k in &order {
        let n = logs[k] as f64;
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
    fn lanes_and_threads_match_scalar_reference() {
        let n = 1_300_003;
        let mut x = 0.77_f64;
        let mut rnd = || {
            x = (x * 8121.0 + 0.28411).fract();
            x
        };
        let mut s = Vec::with_capacity(n);
        let mut e = Vec::with_capacity(n);
        for i in 0..n {
            let a = rnd() * 1e4;
            s.push(a);
            e.push(if i % 1000 == 7 {
                f64::NAN
            } else if i % 777 == 3 {
                a - 1.0
            } else {
                a + 20.0 * rnd()
            });
        }
        let (t0, t1) = (2000.0, 7000.0);
        let r = littles_law(&s, &e, Some(t0), Some(t1), None, 0.02, 0.95).unwrap();
        let log_end = s
            .iter()
            .zip(&e)
            .map(|(&a, &b)| if b.is_nan() || b < a { a } else { b })
            .fold(f64::MIN, f64::max);
        let (mut clipped, mut arr, mut resp, mut ein, mut eout) = (0.0, 0u64, 0.0, 0.0, 0.0);
        for (&a, &b) in s.iter().zip(&e) {
            let b = if b.is_nan() { log_end } else { b };
            if b < a {
                continue;
            }
            clipped += (b.min(t1) - a.max(t0)).max(0.0);
            if a < t0 && b > t0 {
                ein += b.min(t1) - t0;
            }
            if a >= t0 && a < t1 {
                arr += 1;
                resp += b - a;
                if b > t1 {
                    eout += b - t1;
                }
            }
        }
        let span = t1 - t0;
        assert!((r.l - clipped / span).abs() < 1e-10 * r.l);
        assert_eq!(r.arrivals, arr);
        assert!((r.mean_response - resp / arr as f64).abs() < 1e-10);
        assert!((r.edge_term - (eout - ein) / span).abs() < 1e-9);
        assert_eq!(r.running, e.iter().filter(|v| v.is_nan()).count() as u64);
        assert!(r.negative_durations > 0);
        // a bad value in the second half is reported at its global index
        let mut s2 = s.clone();
        s2[n - 5] = f64::NAN;
        let err = littles_law(&s2, &e, None, None, None, 0.02, 0.95).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("start contains NaN at index {}", n - 5)
        );
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

    /// A log with a NaN end, a skewed row and long requests, cut into pieces.
    fn pieces_log() -> (Vec<f64>, Vec<f64>) {
        let mut x = 0.31_f64;
        let mut rnd = || {
            x = (x * 7919.0 + 0.1234).fract();
            x
        };
        let n = 3000;
        let mut s: Vec<f64> = (0..n).map(|_| rnd() * 600.0).collect();
        s.sort_unstable_by(f64::total_cmp);
        let e: Vec<f64> = s
            .iter()
            .enumerate()
            .map(|(i, &a)| match i % 500 {
                7 => f64::NAN,
                9 => a - 0.5,
                11 => a + 40.0,
                _ => a - (1.0 - rnd()).ln() * 0.8,
            })
            .collect();
        (s, e)
    }

    #[test]
    fn gauge_compare_from_summed_partial_counts_is_bit_identical() {
        let (s, e) = pieces_log();
        let times: Vec<f64> = (0..700).map(|i| -30.0 + f64::from(i) * 0.97).collect();
        let truth: Vec<f64> = in_flight(&s, &e, &times)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect();
        // a faithful gauge, one that misses a tenth of the load, one with noise
        let low: Vec<f64> = truth.iter().map(|&v| (v * 0.9).floor()).collect();
        let noisy: Vec<f64> = truth
            .iter()
            .enumerate()
            .map(|(k, &v)| (v + [0.0, 1.0, -1.0][k % 3]).max(0.0))
            .collect();
        for (gauge, t0, t1) in [
            (&truth, None, None),
            (&low, Some(100.0), Some(450.5)),
            (&noisy, None, Some(300.0)),
        ] {
            let r = littles_law(&s, &e, t0, t1, Some((&times, gauge)), 0.02, 0.9).unwrap();
            let idx = gauge_window(&times, Some(r.t0), Some(r.t1)).unwrap();
            assert!(idx.len() < times.len());
            let wt: Vec<f64> = idx.iter().map(|&k| times[k]).collect();
            let wc: Vec<f64> = idx.iter().map(|&k| gauge[k]).collect();
            // the logs' counts from three pieces of the rows, summed
            let mut logs = vec![0i64; wt.len()];
            for r in [0..1000, 1000..1001, 1001..s.len()] {
                let part = in_flight(&s[r.clone()], &e[r], &wt).unwrap();
                for (a, b) in logs.iter_mut().zip(part) {
                    *a += b;
                }
            }
            let g = gauge_compare(&logs, &wt, &wc, 0.02, 0.9, r.lambda_w).unwrap();
            assert_eq!(Some(&g), r.gauge.as_ref());
            let n_base = r.flags.len() - gauge_flags(&g, 0.02).len();
            assert_eq!(&r.flags[n_base..], gauge_flags(&g, 0.02).as_slice());
        }
        let r = littles_law(&s, &e, None, None, Some((&times, &low)), 0.02, 0.95).unwrap();
        assert!(r.flags.contains(&FLAG_GAUGE_DISCREPANCY));
        let r = littles_law(&s, &e, None, None, Some((&times, &truth)), 0.02, 0.95).unwrap();
        assert_eq!(r.gauge.unwrap().exact_agreement, 1.0);
    }

    #[test]
    fn gauge_flags_by_hand() {
        let mut g = GaugeCheck {
            samples: 10,
            gauge_mean: 5.0,
            logs_mean: 5.0,
            discrepancy: 0.0,
            discrepancy_ci: (-0.01, 0.01),
            mismatch: 0.0,
            mismatch_upper: 0.01,
            autocorrelation: 0.0,
            gauge_gap: 0.0,
            exact_agreement: 1.0,
            within_tolerance: true,
        };
        assert!(gauge_flags(&g, 0.02).is_empty());
        g.within_tolerance = false;
        g.discrepancy_ci = (-0.05, -0.03);
        assert_eq!(gauge_flags(&g, 0.02), vec![FLAG_GAUGE_DISCREPANCY]);
        g.mismatch_upper = 0.03;
        assert_eq!(
            gauge_flags(&g, 0.02),
            vec![FLAG_GAUGE_DISCREPANCY, FLAG_GAUGE_MISMATCH]
        );
        g.discrepancy_ci = (-0.01, 0.01);
        g.mismatch_upper = f64::NAN;
        assert_eq!(gauge_flags(&g, 0.02), vec![FLAG_GAUGE_MISMATCH]);
    }

    #[test]
    fn gauge_errors_name_the_argument() {
        let msg = |r: Result<GaugeCheck>| r.unwrap_err().to_string();
        let t = [0.0, 1.0, 2.0];
        let c = [1.0, 2.0, 1.0];
        let l = [1, 2, 1];
        assert!(gauge_compare(&l, &t, &c, 0.02, 0.95, 1.0).is_ok());
        assert_eq!(
            msg(gauge_compare(&l, &t, &[1.0, 2.0], 0.02, 0.95, 1.0)),
            "in_flight_counts has length 2 but in_flight_times has length 3"
        );
        assert_eq!(
            msg(gauge_compare(
                &l,
                &t,
                &[1.0, f64::NAN, 1.0],
                0.02,
                0.95,
                1.0
            )),
            "in_flight_counts contains NaN at index 1"
        );
        assert_eq!(
            msg(gauge_compare(&l, &t, &[1.0, 2.0, -1.0], 0.02, 0.95, 1.0)),
            "in_flight_counts contains a negative value at index 2"
        );
        assert_eq!(
            msg(gauge_compare(&l[..1], &t[..1], &c[..1], 0.02, 0.95, 1.0)),
            "in_flight_times needs at least 2 gauge samples, got 1"
        );
        assert_eq!(
            msg(gauge_compare(&l[..2], &t, &c, 0.02, 0.95, 1.0)),
            "logs_counts has length 2 but in_flight_times has length 3"
        );
        assert_eq!(
            msg(gauge_compare(&[1, -2, 1], &t, &c, 0.02, 0.95, 1.0)),
            "logs_counts contains a negative value at index 1"
        );
        assert!(msg(gauge_compare(&l, &t, &c, -0.1, 0.95, 1.0)).starts_with("tolerance"));
        assert!(msg(gauge_compare(&l, &t, &c, 0.02, 1.0, 1.0)).starts_with("confidence"));
        assert!(msg(gauge_compare(&l, &t, &c, 0.02, 0.95, f64::NAN)).starts_with("lambda_w"));
        assert_eq!(gauge_window(&t, None, None).unwrap(), vec![0, 1, 2]);
        assert_eq!(
            gauge_window(&t, Some(f64::NAN), None)
                .unwrap_err()
                .to_string(),
            "t0 must not be NaN, got NaN"
        );
        assert_eq!(gauge_window(&t, Some(0.5), Some(2.0)).unwrap(), vec![1, 2]);
        assert_eq!(
            gauge_window(&t, Some(0.5), Some(1.5))
                .unwrap_err()
                .to_string(),
            "in_flight_times has 1 sample(s) inside the window [0.5, 1.5]; at least 2 are needed"
        );
        // the same message from littles_law
        let err = littles_law(
            &[0.0],
            &[3.0],
            Some(0.5),
            Some(1.5),
            Some((&t, &c)),
            0.02,
            0.95,
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "in_flight_times has 1 sample(s) inside the window [0.5, 1.5]; at least 2 are needed"
        );
    }

    /// Random rows: some running (NaN end), some skewed (end < start), some of zero length.
    fn random_rows(r: &mut crate::sim::rng::Rng, n: usize) -> (Vec<f64>, Vec<f64>) {
        (0..n)
            .map(|_| {
                let s = r.uniform() * 100.0;
                let e = match r.index(10) {
                    0 => f64::NAN,
                    1 => s - r.uniform(),
                    2 => s,
                    _ => s + r.uniform() * 20.0,
                };
                (s, e)
            })
            .unzip()
    }

    #[test]
    fn avx2_and_portable_builds_agree() {
        // On an AVX2 machine the dispatched kernels run the AVX2 build and the `_impl`
        // calls from this (portable) test the portable one; the results must match bit
        // for bit (compared through `{:?}`, which prints every f64 exactly).
        let mut r = crate::sim::rng::Rng::new(19);
        for n in [0, 1, 3, 7, 8, 9, 31, 64, 257, 1000, 4099] {
            for _ in 0..4 {
                let (mut s, e) = random_rows(&mut r, n);
                if n > 2 && r.index(4) == 0 {
                    s[r.index(n)] = f64::INFINITY;
                }
                assert_eq!(
                    format!("{:?}", span_pass(&s, &e)),
                    format!("{:?}", span_pass_impl(&s, &e))
                );
            }
        }
    }
}
