//! One pass over (group code, value) pairs: one sketch per group.

use super::{ingest, QuantileSketch};
use crate::error::{check_finite, check_same_len};
use crate::simd::avx2_dispatch;
use crate::{QcoreError, Result};

/// Group codes must be below `max(MIN_CODE_LIMIT, len(values))`, which bounds memory by
/// the input size.
pub const MIN_CODE_LIMIT: usize = 1 << 20;

/// One sketch per group code `0..=max(codes)` (codes are non-negative integers; groups
/// without values get an empty sketch). `weights`, when given, weight each value.
///
/// Codes already in non-decreasing order are used in place; others are gathered per
/// group with a counting sort. Each group is then ingested through the same kernel as
/// [`QuantileSketch::add_slice`], large inputs split across threads by groups. On error
/// nothing is built.
pub fn sketch_groups(
    codes: &[i64],
    values: &[f64],
    weights: Option<&[f64]>,
    template: &QuantileSketch,
) -> Result<Vec<QuantileSketch>> {
    map_groups(codes, values, weights, template, Ok)
}

/// Where the runs of equal codes start: `(i, codes[i])` for each `i ≥ 1` with `codes[i] !=
/// codes[i - 1]`, in order.
type Runs = Vec<(usize, i64)>;

avx2_dispatch! {
    /// The runs of `codes` when they are non-decreasing (`None` otherwise), in one read:
    /// branch-free per chunk of 64 codes (AVX2 when available); a chunk holding a run
    /// start is read again (from L1).
    fn sorted_runs(codes: &[i64]) -> Option<Runs> => runs_chunks
}

#[inline(always)]
fn runs_chunks(codes: &[i64]) -> Option<Runs> {
    let mut runs = Vec::new();
    let mut k = 0;
    while k + 1 < codes.len() {
        let end = (k + 64).min(codes.len() - 1);
        let (a, b) = (&codes[k..end], &codes[k + 1..end + 1]);
        let (mut bad, mut new) = (0u64, 0u64);
        for (x, y) in a.iter().zip(b) {
            bad |= u64::from(x > y);
            new |= u64::from(x != y);
        }
        if bad != 0 {
            return None;
        }
        if new != 0 {
            for (j, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    runs.push((k + j + 1, *y));
                }
            }
        }
        k = end;
    }
    Some(runs)
}

/// Whether `codes` is non-decreasing.
#[cfg(test)]
fn is_sorted(codes: &[i64]) -> bool {
    sorted_runs(codes).is_some()
}

/// [`sorted_runs`], large inputs in contiguous ranges on several threads (each range but
/// the first read from one code earlier, so no run start is missed).
fn sorted_runs_par(codes: &[i64]) -> Option<Runs> {
    let parts = crate::threads::map_ranges(codes.len(), scan_threads(codes.len()), |r| {
        let a = r.start.saturating_sub(1);
        sorted_runs(&codes[a..r.end])
            .map(|v| v.into_iter().map(|(i, c)| (i + a, c)).collect::<Runs>())
    });
    let mut runs = Vec::new();
    for p in parts {
        runs.extend(p?);
    }
    Some(runs)
}

/// `starts[g]`: the first position of a code `>= g` in non-decreasing `codes` with runs
/// `runs`, for `g in 0..=n_groups` (every code below `n_groups`).
fn run_starts(codes: &[i64], runs: &[(usize, i64)], n_groups: usize) -> Vec<usize> {
    let mut starts = Vec::with_capacity(n_groups + 1);
    if let Some(&c0) = codes.first() {
        starts.resize(c0 as usize + 1, 0);
        for &(i, c) in runs {
            starts.resize(c as usize + 1, i);
        }
    }
    starts.resize(n_groups + 1, codes.len());
    starts
}

/// Threads for an ingest of `n` values: the thread budget for large inputs when
/// `parallel`, else one.
fn ingest_threads(n: usize, parallel: bool) -> usize {
    if parallel && n >= super::PARALLEL_MIN {
        crate::threads::max_threads().min(super::MAX_THREADS)
    } else {
        1
    }
}

/// Threads for a pass over `n` codes (large inputs only; within the core's budget).
fn scan_threads(n: usize) -> usize {
    crate::threads::threads_for(n, super::PARALLEL_MIN / 2, super::MAX_THREADS)
}

/// [`min_max`], large inputs in contiguous ranges on several threads.
fn min_max_par(codes: &[i64]) -> (Option<i64>, Option<i64>) {
    crate::threads::map_ranges(codes.len(), scan_threads(codes.len()), |r| {
        min_max(&codes[r])
    })
    .into_iter()
    .fold((None, None), |(a, b), (c, d)| {
        (a.into_iter().chain(c).min(), b.into_iter().chain(d).max())
    })
}

/// The minimum and maximum code in one pass (AVX2 when available).
fn min_max(codes: &[i64]) -> (Option<i64>, Option<i64>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { min_max_avx2(codes) };
    }
    min_max_lanes(codes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_max_avx2(codes: &[i64]) -> (Option<i64>, Option<i64>) {
    min_max_lanes(codes)
}

#[inline(always)]
fn min_max_lanes(codes: &[i64]) -> (Option<i64>, Option<i64>) {
    if codes.is_empty() {
        return (None, None);
    }
    let mut lo = [i64::MAX; 8];
    let mut hi = [i64::MIN; 8];
    let chunks = codes.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            lo[k] = if c[k] < lo[k] { c[k] } else { lo[k] };
            hi[k] = if c[k] > hi[k] { c[k] } else { hi[k] };
        }
    }
    let (mut a, mut b) = (i64::MAX, i64::MIN);
    for &c in lo.iter().chain(rest) {
        a = a.min(c);
    }
    for &c in hi.iter().chain(rest) {
        b = b.max(c);
    }
    (Some(a), Some(b))
}

/// An output array the parts of [`counting_sort`] write at disjoint slots.
#[derive(Clone, Copy)]
struct SharedOut(*mut f64);
// SAFETY: the parts write disjoint slots only (see `counting_sort`) and the array outlives
// the threads (scoped).
unsafe impl Send for SharedOut {}
// SAFETY: as above; no slot is read while the parts run.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Write slot `k`.
    ///
    /// # Safety
    ///
    /// `k` is inside the array and no other thread touches slot `k` meanwhile.
    unsafe fn write(&self, k: usize, v: f64) {
        // SAFETY: the caller's contract.
        unsafe { *self.0.add(k) = v };
    }
}

/// An array of `len` f64 that the scatter of [`counting_sort`] fills, every slot written
/// once before any is read. Large ones are aligned to 2 MiB and, on Linux, advised as
/// huge pages: the scatter into thousands of groups then touches a few dozen pages, not
/// one 4 KiB page per group and round (TLB misses) nor a page fault per 4 KiB.
struct Gathered {
    ptr: std::ptr::NonNull<f64>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: the buffer is owned (like a Vec<f64>).
unsafe impl Send for Gathered {}
// SAFETY: shared access reads only (after the scatter).
unsafe impl Sync for Gathered {}

/// Arrays from this size are aligned for huge pages.
const HUGE_MIN: usize = 8 << 20;
const HUGE_PAGE: usize = 2 << 20;

#[cfg(target_os = "linux")]
extern "C" {
    fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: std::ffi::c_int)
        -> std::ffi::c_int;
}

impl Gathered {
    /// Uninitialised storage for `len` values.
    fn new(len: usize) -> Self {
        let bytes = len.max(1) * std::mem::size_of::<f64>();
        let align = if bytes >= HUGE_MIN {
            HUGE_PAGE
        } else {
            std::mem::align_of::<f64>()
        };
        let layout = std::alloc::Layout::from_size_align(bytes.next_multiple_of(align), align)
            .expect("gather buffer layout");
        // SAFETY: the layout has a nonzero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(block) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        // The layout's alignment is at least f64's.
        let ptr = block.cast::<f64>();
        #[cfg(target_os = "linux")]
        if align == HUGE_PAGE {
            // MADV_HUGEPAGE; a hint only (an error leaves ordinary pages).
            // SAFETY: the range is this allocation, aligned to the page size.
            unsafe { madvise(raw.cast(), layout.size(), 14) };
        }
        Gathered { ptr, len, layout }
    }

    /// The values, once every slot has been written.
    ///
    /// # Safety
    ///
    /// Every slot `0..len` has been written.
    unsafe fn as_slice(&self) -> &[f64] {
        // SAFETY: initialised (the caller's contract), owned, `len` values.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Gathered {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
    }
}

/// Gather values (and weights) by group: a counting sort, each half of a large input
/// counted and scattered by its own thread (stores into disjoint slots).
#[allow(clippy::type_complexity)]
fn counting_sort(
    codes: &[i64],
    values: &[f64],
    weights: Option<&[f64]>,
    n_groups: usize,
    parallel: bool,
) -> (Vec<usize>, Gathered, Option<Gathered>) {
    let threads = ingest_threads(values.len(), parallel);
    let chunk = codes.len().div_ceil(threads).max(1);
    let count = |part: &[i64]| {
        let mut c = vec![0usize; n_groups];
        for &g in part {
            c[g as usize] += 1;
        }
        c
    };
    let counts: Vec<Vec<usize>> = if threads > 1 {
        std::thread::scope(|scope| {
            let hs: Vec<_> = codes
                .chunks(chunk)
                .map(|p| scope.spawn(move || count(p)))
                .collect();
            hs.into_iter().map(|h| crate::threads::join(h)).collect()
        })
    } else {
        vec![count(codes)]
    };
    let mut starts = vec![0usize; n_groups + 1];
    for c in &counts {
        for (g, &k) in c.iter().enumerate() {
            starts[g + 1] += k;
        }
    }
    for g in 0..n_groups {
        starts[g + 1] += starts[g];
    }
    // Each part's first slot per group: the group's start plus the earlier parts' counts.
    let mut fills = Vec::with_capacity(counts.len());
    let mut next = starts[..n_groups].to_vec();
    for c in &counts {
        fills.push(next.clone());
        for (n, &k) in next.iter_mut().zip(c) {
            *n += k;
        }
    }
    let out_v = Gathered::new(values.len());
    let out_w = weights.map(|_| Gathered::new(values.len()));
    let dst_v = SharedOut(out_v.ptr.as_ptr());
    let dst_w = out_w.as_ref().map(|w| SharedOut(w.ptr.as_ptr()));
    let scatter = |k0: usize, part: &[i64], mut fill: Vec<usize>| {
        for (j, &g) in part.iter().enumerate() {
            let slot = &mut fill[g as usize];
            assert!(*slot < values.len());
            // SAFETY: the slot is inside the outputs (asserted); every slot is written by
            // exactly one part (each part's fill ranges are its own counts within each
            // group, disjoint from every other part's), and the outputs are not read
            // until every part has finished.
            unsafe {
                dst_v.write(*slot, values[k0 + j]);
                if let (Some(ow), Some(w)) = (&dst_w, weights) {
                    ow.write(*slot, w[k0 + j]);
                }
            }
            *slot += 1;
        }
    };
    if threads > 1 {
        std::thread::scope(|scope| {
            let scatter = &scatter;
            let hs: Vec<_> = codes
                .chunks(chunk)
                .zip(fills)
                .enumerate()
                .map(|(t, (p, f))| scope.spawn(move || scatter(t * chunk, p, f)))
                .collect();
            for h in hs {
                crate::threads::join(h);
            }
        });
    } else if let Some(f) = fills.pop() {
        scatter(0, codes, f);
    }
    // Every slot is written once: the parts' fill ranges cover `0..len` (the counts add up
    // to the input's length).
    debug_assert_eq!(starts[n_groups], values.len());
    (starts, out_v, out_w)
}

/// Most values gathered per round of [`chunked_groups`] (8 MiB).
const CHUNK: usize = 1 << 20;
/// [`chunked_groups`] serves at most `CHUNK / CHUNK_PER_GROUP` groups.
const CHUNK_PER_GROUP: usize = 4096;

/// Codes in any order, at most [`ingest::MAX_GROUPS`] groups, fused scales: one read of
/// the codes and values into one tally per group ([`ingest::tally_groups`]), large inputs
/// split across threads whose parts are added to each group's sketch in order. `None`
/// when a value is NaN, infinite or subnormal (the caller takes the general path).
fn fused_groups(
    codes: &[i64],
    values: &[f64],
    n_groups: usize,
    template: &QuantileSketch,
    parallel: bool,
) -> Option<Vec<QuantileSketch>> {
    let threads = ingest_threads(values.len(), parallel);
    let mapping = template.mapping();
    let parts = crate::threads::map_ranges(values.len(), threads, |r| {
        let mut scratch = ingest::take(template.scale());
        let out = ingest::tally_groups(
            &codes[r.clone()],
            &values[r],
            n_groups,
            &mut scratch,
            mapping,
        );
        ingest::give(scratch);
        out
    });
    let mut sks: Vec<QuantileSketch> = (0..n_groups).map(|_| template.empty_like()).collect();
    for part in parts {
        for (sk, p) in sks.iter_mut().zip(part?) {
            sk.add_group_part(&p);
        }
    }
    Some(sks)
}

/// Codes in any order, few groups: gather a chunk of the input at a time into one reused
/// buffer (counting sort within the chunk) and add each group's part of it to that
/// group's sketch; large inputs split across threads, whose sketches are merged (the
/// state depends on the data only, not on how it was split).
fn chunked_groups(
    codes: &[i64],
    values: &[f64],
    n_groups: usize,
    template: &QuantileSketch,
    parallel: bool,
) -> Result<Vec<QuantileSketch>> {
    // About CHUNK_PER_GROUP values per group and round, at least 512 KiB (L2-resident).
    let chunk = (n_groups * CHUNK_PER_GROUP).clamp(1 << 16, CHUNK);
    let build = |codes: &[i64], values: &[f64]| -> Result<Vec<QuantileSketch>> {
        let mut sks: Vec<QuantileSketch> = (0..n_groups).map(|_| template.empty_like()).collect();
        let mut buf = vec![0.0f64; chunk.min(values.len())];
        let mut starts = vec![0usize; n_groups + 1];
        for (c, v) in codes.chunks(chunk).zip(values.chunks(chunk)) {
            starts.fill(0);
            for &g in c {
                starts[g as usize + 1] += 1;
            }
            for g in 0..n_groups {
                starts[g + 1] += starts[g];
            }
            let mut fill = starts[..n_groups].to_vec();
            for (&g, &x) in c.iter().zip(v) {
                let slot = &mut fill[g as usize];
                buf[*slot] = x;
                *slot += 1;
            }
            for (g, sk) in sks.iter_mut().enumerate() {
                sk.add_slice_with(&buf[starts[g]..starts[g + 1]], false)?;
            }
        }
        Ok(sks)
    };
    let threads = ingest_threads(values.len(), parallel);
    if threads == 1 {
        return build(codes, values);
    }
    let part = values.len().div_ceil(threads);
    let parts: Vec<Result<Vec<QuantileSketch>>> = std::thread::scope(|scope| {
        let build = &build;
        let hs: Vec<_> = codes
            .chunks(part)
            .zip(values.chunks(part))
            .map(|(c, v)| scope.spawn(move || build(c, v)))
            .collect();
        hs.into_iter().map(|h| crate::threads::join(h)).collect()
    });
    let mut parts = parts.into_iter();
    let mut out = parts.next().expect("one part")?;
    for p in parts {
        for (a, b) in out.iter_mut().zip(&p?) {
            a.merge(b)?;
        }
    }
    Ok(out)
}

/// Validate, find each group's values (in place when the codes are sorted, else by a
/// counting sort), build each group's sketch and map it with `f`; the results in code
/// order.
fn map_groups<T: Send>(
    codes: &[i64],
    values: &[f64],
    weights: Option<&[f64]>,
    template: &QuantileSketch,
    f: impl Fn(QuantileSketch) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    check_same_len("codes", codes.len(), "values", values.len())?;
    if let Some(w) = weights {
        check_finite("values", values)?;
        check_same_len("values", values.len(), "weights", w.len())?;
        check_finite("weights", w)?;
        if let Some(i) = w.iter().position(|&x| x < 0.0) {
            return Err(QcoreError::invalid(
                "weights",
                format!("must be >= 0, got {} at index {i}", w[i]),
            ));
        }
    }
    // Unweighted values are checked by the kernel itself (one read); an error names the
    // index in `values` (see below).
    let runs = sorted_runs_par(codes);
    let (min_code, max_code) = if runs.is_some() {
        (codes.first().copied(), codes.last().copied())
    } else {
        min_max_par(codes)
    };
    if min_code.is_some_and(|m| m < 0) {
        if weights.is_none() {
            check_finite("values", values)?;
        }
        let i = codes.iter().position(|&c| c < 0).unwrap_or(0);
        return Err(QcoreError::invalid(
            "codes",
            format!("must be non-negative, got {} at index {i}", codes[i]),
        ));
    }
    let n_groups = max_code.map_or(0, |m| m as u64 + 1);
    let cap = MIN_CODE_LIMIT.max(values.len()) as u64;
    if n_groups > cap {
        if weights.is_none() {
            check_finite("values", values)?;
        }
        return Err(QcoreError::invalid(
            "codes",
            format!(
                "must be below {cap} (max(2^20, len(values))), got {}",
                n_groups - 1
            ),
        ));
    }
    let n_groups = n_groups as usize;
    map_valid(
        codes,
        values,
        weights,
        n_groups,
        runs.as_deref(),
        template,
        true,
        f,
    )
}

/// The grouped ingest of [`sketch_groups`] and of the report's batch kernel
/// (`arrivals::batch_stats_windows`): one sketch per code `0..n_groups` of the pairs
/// `(codes[i], values[i])`, every code in `0..n_groups` (the caller validates them).
/// `parallel`: whether large inputs may use the thread budget (a caller already running
/// next to other work passes `false`). The sketches do not depend on the path taken.
pub(crate) fn ingest_groups(
    codes: &[i64],
    values: &[f64],
    n_groups: usize,
    template: &QuantileSketch,
    parallel: bool,
) -> Result<Vec<QuantileSketch>> {
    let runs = if parallel {
        sorted_runs_par(codes)
    } else {
        sorted_runs(codes)
    };
    map_valid(
        codes,
        values,
        None,
        n_groups,
        runs.as_deref(),
        template,
        parallel,
        Ok,
    )
}

/// [`map_groups`] past the validation: codes in `0..n_groups`; `runs` their runs when they
/// are non-decreasing ([`sorted_runs`]).
#[allow(clippy::too_many_arguments)]
fn map_valid<T: Send>(
    codes: &[i64],
    values: &[f64],
    weights: Option<&[f64]>,
    n_groups: usize,
    runs: Option<&[(usize, i64)]>,
    template: &QuantileSketch,
    parallel: bool,
    f: impl Fn(QuantileSketch) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let sorted = runs.is_some();
    if !sorted
        && weights.is_none()
        && n_groups <= ingest::MAX_GROUPS
        && ingest::fused_scale(template.scale())
    {
        if let Some(sks) = fused_groups(codes, values, n_groups, template, parallel) {
            return sks.into_iter().map(&f).collect();
        }
    }
    if !sorted && weights.is_none() && n_groups * CHUNK_PER_GROUP <= CHUNK {
        let out = chunked_groups(codes, values, n_groups, template, parallel)
            .and_then(|sks| sks.into_iter().map(&f).collect::<Result<Vec<T>>>());
        return match out {
            Err(e) => {
                check_finite("values", values)?;
                Err(e)
            }
            r => r,
        };
    }
    let gathered;
    let gathered_w;
    let (starts, data, wdata) = if let Some(runs) = runs {
        (run_starts(codes, runs, n_groups), values, weights)
    } else {
        let (starts, sorted_v, sorted_w) =
            counting_sort(codes, values, weights, n_groups, parallel);
        gathered = sorted_v;
        gathered_w = sorted_w;
        // SAFETY: the counting sort wrote every slot of both.
        unsafe {
            (
                starts,
                gathered.as_slice(),
                gathered_w.as_ref().map(|w| w.as_slice()),
            )
        }
    };
    let run = |g: usize, threaded: bool| -> Result<T> {
        let mut sk = template.empty_like();
        let (a, b) = (starts[g], starts[g + 1]);
        match wdata {
            Some(w) => sk.add_weighted(&data[a..b], &w[a..b])?,
            None => sk.add_slice_with(&data[a..b], threaded)?,
        }
        f(sk)
    };
    let threads = if n_groups > 1 {
        ingest_threads(values.len(), parallel)
    } else {
        1
    };
    let out = if threads == 1 {
        (0..n_groups).map(|g| run(g, parallel)).collect()
    } else {
        run_split(n_groups, &starts, threads, &run)
    };
    match out {
        Err(e) if weights.is_none() => {
            check_finite("values", values)?;
            Err(e)
        }
        r => r,
    }
}

/// Groups holding at least `1/threads` of the values are ingested one after another with
/// a threaded kernel; the others are split into `threads` runs of consecutive groups of
/// about equal size, one per thread.
fn run_split<T: Send>(
    n_groups: usize,
    starts: &[usize],
    threads: usize,
    run: &(impl Fn(usize, bool) -> Result<T> + Sync),
) -> Result<Vec<T>> {
    let total = starts[n_groups];
    let len = |g: usize| starts[g + 1] - starts[g];
    let big = |g: usize| len(g) * threads >= total;
    let mut out: Vec<Option<T>> = (0..n_groups).map(|_| None).collect();
    for g in (0..n_groups).filter(|&g| big(g)) {
        out[g] = Some(run(g, true)?);
    }
    let small_total: usize = (0..n_groups).filter(|&g| !big(g)).map(len).sum();
    let mut cuts = vec![0usize];
    let mut acc = 0usize;
    for g in 0..n_groups {
        if !big(g) {
            acc += len(g);
        }
        if acc * threads >= small_total * cuts.len() && cuts.len() < threads {
            cuts.push(g + 1);
        }
    }
    cuts.push(n_groups);
    let ranges: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    let parts: Vec<Result<Vec<(usize, T)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&(a, b)| {
                scope.spawn(move || {
                    (a..b)
                        .filter(|&g| !big(g))
                        .map(|g| run(g, false).map(|t| (g, t)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| crate::threads::join(h))
            .collect()
    });
    for part in parts {
        for (g, t) in part? {
            out[g] = Some(t);
        }
    }
    Ok(out
        .into_iter()
        .map(|t| t.expect("every group is built"))
        .collect())
}

/// Per-group total weight and quantile estimates (row-major `groups × qs`, NaN for
/// groups without values), without keeping the sketches.
pub fn group_quantiles(
    codes: &[i64],
    values: &[f64],
    weights: Option<&[f64]>,
    template: &QuantileSketch,
    qs: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    // Validate q before any work.
    template.quantiles(qs)?;
    // Each group's sketch is dropped right after use (no per-group sketch kept).
    let rows = map_groups(codes, values, weights, template, |g| {
        let row = g.quantiles(qs)?;
        Ok((g.count(), row))
    })?;
    let mut counts = Vec::with_capacity(rows.len());
    let mut table = Vec::with_capacity(rows.len() * qs.len());
    for (c, row) in rows {
        counts.push(c);
        match row {
            Some(row) => table.extend(row),
            None => table.extend(std::iter::repeat_n(f64::NAN, qs.len())),
        }
    }
    Ok((counts, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_groups_equal_separate_sketches() {
        let mut st = 21u64;
        let mut next = move || {
            st = st.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = st;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^ (z >> 31)
        };
        let specials = [
            0.0,
            -0.0,
            1.0,
            0.5,
            -2.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            -1e300,
        ];
        for trial in 0..42u64 {
            let scale = [1, 3, 6, 6, 8, 9][(trial % 6) as usize];
            let limit = [None, Some(20)][(trial / 6 % 2) as usize];
            let (scale, limit) = match trial {
                40 => (6, Some(20)),
                41 => (6, None),
                _ => (scale, limit),
            };
            let t = QuantileSketch::with_scale(scale, limit).unwrap();
            let groups = [1u64, 2, 5, 16, 31, 32, 33][(next() % 7) as usize];
            let groups = if trial >= 40 { 16 } else { groups };
            // The last trials split the input across threads.
            let n = if trial >= 40 {
                (1 << 20) + 77
            } else {
                [64usize, 2047, 2049, 6000, 40_000][(next() % 5) as usize]
            };
            let subnormal = trial % 9 == 4;
            // Codes skip the middle group sometimes (a group without values).
            let mut codes: Vec<i64> = (0..n)
                .map(|_| {
                    let g = (next() % groups) as i64;
                    if trial % 3 == 0 && g == groups as i64 / 2 && groups > 1 {
                        0
                    } else {
                        g
                    }
                })
                .collect();
            codes[n - 1] = groups as i64 - 1;
            if n > 1 && codes[0] <= codes[n - 1] {
                codes[0] = codes[n - 1];
                codes[1] = 0;
            }
            let values: Vec<f64> = (0..n)
                .map(|k| match next() % 20 {
                    0 => specials[(next() % 8) as usize],
                    1 if subnormal && k % 7 == 0 => f64::from_bits(1 + next() % 1000),
                    2 => -((next() % 1000) as f64),
                    _ => ((next() % 4000) as f64 * 1e-3).exp(),
                })
                .collect();
            let mut want: Vec<QuantileSketch> = (0..groups).map(|_| t.empty_like()).collect();
            for (&c, &v) in codes.iter().zip(&values) {
                want[c as usize].add(v).unwrap();
            }
            let got = sketch_groups(&codes, &values, None, &t).unwrap();
            assert_eq!(got.len(), want.len());
            for (g, (a, b)) in got.iter().zip(&want).enumerate() {
                let ctx = format!("trial {trial} n {n} groups {groups} group {g}");
                assert_eq!(a.to_bytes(), b.to_bytes(), "{ctx}");
                assert_eq!(a, b, "{ctx}");
                assert_eq!(a.sum().to_bits(), b.sum().to_bits(), "{ctx}");
            }
            let mut bad = values.clone();
            let at = (next() % n as u64) as usize;
            bad[at] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][(trial % 3) as usize];
            let e = sketch_groups(&codes, &bad, None, &t)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("at index {at}")), "{e}");
        }
    }

    #[test]
    fn fused_groups_track_extremes_across_blocks() {
        // Later blocks move some groups' minimum or maximum (a trend, then a dip), a group
        // first appears in the last block, and zeros of both signs open a group.
        let t = QuantileSketch::new(0.01).unwrap();
        let n = 20_000usize;
        let codes: Vec<i64> = (0..n)
            .map(|k| {
                if k + 100 >= n && k % 7 == 0 {
                    5
                } else {
                    (k % 5) as i64
                }
            })
            .collect();
        let values: Vec<f64> = (0..n)
            .map(|k| match k {
                0 => -0.0,
                1 => 0.0,
                _ if k % 3 == 0 => 1.0 + k as f64 * 1e-3,
                _ if k > 15_000 => 1e-3 / k as f64,
                _ => 2.0,
            })
            .collect();
        let mut want: Vec<QuantileSketch> = (0..6).map(|_| t.empty_like()).collect();
        for (&c, &v) in codes.iter().zip(&values) {
            want[c as usize].add(v).unwrap();
        }
        let got = sketch_groups(&codes, &values, None, &t).unwrap();
        for (g, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bytes(), b.to_bytes(), "group {g}");
            assert_eq!(a, b, "group {g}");
        }
    }

    #[test]
    fn parallel_code_scans_see_every_pair() {
        let n = (1usize << 21) + 5;
        let codes: Vec<i64> = (0..n as i64).map(|k| k / 3).collect();
        let definition = |c: &[i64]| -> Runs {
            (1..c.len())
                .filter(|&i| c[i] != c[i - 1])
                .map(|i| (i, c[i]))
                .collect()
        };
        assert_eq!(sorted_runs_par(&codes), Some(definition(&codes)));
        assert_eq!(sorted_runs(&codes), Some(definition(&codes)));
        assert_eq!(min_max_par(&codes), (Some(0), Some(codes[n - 1])));
        // An inversion at every place a range boundary can fall (2 to 8 threads).
        for threads in 2..=8usize {
            let chunk = n.div_ceil(threads);
            for at in [chunk - 1, chunk, chunk + 1] {
                // A run start there (few runs: most chunks hold none).
                let c: Vec<i64> = (0..n)
                    .map(|k| i64::from(k >= at) + 2 * i64::from(k >= at + 70_000))
                    .collect();
                assert_eq!(
                    sorted_runs_par(&c),
                    Some(vec![(at, 1), (at + 70_000, 3)]),
                    "{threads} {at}"
                );
                let mut c = codes.clone();
                c[at] = c[at - 1] - 1;
                assert!(sorted_runs_par(&c).is_none(), "{threads} {at}");
                assert!(!is_sorted(&c), "{threads} {at}");
                c[at] = -7;
                c[at + 1] = 1 << 40;
                assert_eq!(min_max_par(&c), min_max(&c), "{threads} {at}");
                assert_eq!(min_max_par(&c), (Some(-7), Some(1 << 40)));
            }
        }
    }

    #[test]
    fn groups_equal_separate_sketches() {
        let codes = [0i64, 2, 0, 1, 2, 2];
        let values = [1.0, 5.0, 2.0, -3.0, 0.0, 7.5];
        let t = QuantileSketch::new(0.01).unwrap();
        let gs = sketch_groups(&codes, &values, None, &t).unwrap();
        assert_eq!(gs.len(), 3);
        let mut want = t.empty_like();
        want.add_slice(&[5.0, 0.0, 7.5]).unwrap();
        assert_eq!(gs[2], want);
        assert_eq!(gs[1].count(), 1.0);
        let gw = sketch_groups(&codes, &values, Some(&[1.0, 2.0, 1.0, 1.0, 1.0, 1.0]), &t).unwrap();
        assert_eq!(gw[2].count(), 4.0);
    }

    #[test]
    fn quantile_table() {
        let t = QuantileSketch::new(0.01).unwrap();
        let (c, tab) =
            group_quantiles(&[0, 2, 0], &[1.0, 5.0, 3.0], None, &t, &[0.0, 1.0]).unwrap();
        assert_eq!(c, vec![2.0, 0.0, 1.0]);
        assert_eq!(&tab[..2], &[1.0, 3.0]);
        assert!(tab[2].is_nan() && tab[3].is_nan());
        assert_eq!(&tab[4..], &[5.0, 5.0]);
        assert!(group_quantiles(&[0], &[1.0], None, &t, &[1.5]).is_err());
    }

    #[test]
    fn sorted_unsorted_and_threaded_groups_equal_separate_sketches() {
        let mut st = 9u64;
        let mut next = move || {
            st = st.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = st;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^ (z >> 31)
        };
        let t = QuantileSketch::new(0.01).unwrap();
        for (n, groups) in [
            (5000usize, 1i64),
            (5000, 16),
            (30_000, 10_000),
            ((1 << 20) + 77, 1),
            ((1 << 20) + 77, 16),
            ((1 << 20) + 77, 10_000),
        ] {
            // One group holds half the values (ingested with the threaded kernel).
            let mut codes: Vec<i64> = (0..n)
                .map(|_| {
                    if next() % 2 == 0 {
                        0
                    } else {
                        (next() % groups as u64) as i64
                    }
                })
                .collect();
            let values: Vec<f64> = (0..n)
                .map(|_| match next() % 10 {
                    0 => 0.0,
                    1 => -((next() % 1000) as f64),
                    _ => (next() % 100_000) as f64 * 1e-3,
                })
                .collect();
            let mut want: Vec<QuantileSketch> = (0..groups).map(|_| t.empty_like()).collect();
            for (&c, &v) in codes.iter().zip(&values) {
                want[c as usize].add(v).unwrap();
            }
            let got = sketch_groups(&codes, &values, None, &t).unwrap();
            assert_eq!(got.len(), want.len());
            for (g, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    a.to_bytes(),
                    b.to_bytes(),
                    "n {n} groups {groups} group {g}"
                );
            }
            // The same pairs with sorted codes.
            let mut pairs: Vec<(i64, f64)> =
                codes.iter().copied().zip(values.iter().copied()).collect();
            pairs.sort_by_key(|p| p.0);
            codes = pairs.iter().map(|p| p.0).collect();
            let sorted_values: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let got = sketch_groups(&codes, &sorted_values, None, &t).unwrap();
            for (g, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    a.to_bytes(),
                    b.to_bytes(),
                    "sorted: n {n} groups {groups} group {g}"
                );
            }
            let (counts, table) =
                group_quantiles(&codes, &sorted_values, None, &t, &[0.5, 0.99]).unwrap();
            for (g, b) in want.iter().enumerate() {
                assert_eq!(counts[g], b.count());
                let q = b
                    .quantiles(&[0.5, 0.99])
                    .unwrap()
                    .unwrap_or(vec![f64::NAN; 2]);
                assert_eq!(table[2 * g].to_bits(), q[0].to_bits());
                assert_eq!(table[2 * g + 1].to_bits(), q[1].to_bits());
            }
        }
    }

    #[test]
    fn nan_is_reported_at_its_index_in_values() {
        let t = QuantileSketch::new(0.01).unwrap();
        let n = 3000;
        let mut values = vec![1.0; n];
        values[2500] = f64::NAN;
        for codes in [
            vec![0i64; n],
            (0..n as i64).map(|k| k % 3).collect(),
            (0..n as i64).rev().collect(),
        ] {
            let e = sketch_groups(&codes, &values, None, &t).unwrap_err();
            assert_eq!(e.to_string(), "values contains NaN at index 2500");
        }
        let e = sketch_groups(&[0, -1], &[1.0, f64::NAN], None, &t).unwrap_err();
        assert_eq!(e.to_string(), "values contains NaN at index 1");
    }

    #[test]
    fn rejections() {
        let t = QuantileSketch::new(0.01).unwrap();
        let e = sketch_groups(&[0, -1], &[1.0, 2.0], None, &t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "codes must be non-negative, got -1 at index 1"
        );
        assert!(sketch_groups(&[0], &[1.0, 2.0], None, &t).is_err());
        assert!(sketch_groups(&[0, 1 << 40], &[1.0, 2.0], None, &t).is_err());
        let e = sketch_groups(&[0, 0], &[1.0, f64::NAN], None, &t).unwrap_err();
        assert_eq!(e.to_string(), "values contains NaN at index 1");
        assert!(sketch_groups(&[], &[], None, &t).unwrap().is_empty());
    }

    #[test]
    fn avx2_and_portable_order_checks_agree() {
        let mut r = crate::sim::rng::Rng::new(19);
        for n in [0, 1, 2, 3, 4095, 4096, 4097, 10_000] {
            let mut codes: Vec<i64> = (0..n).map(|_| r.index(5) as i64).collect();
            codes.sort_unstable();
            assert!(is_sorted(&codes));
            assert_eq!(sorted_runs(&codes), runs_chunks(&codes), "n {n}");
            let starts = run_starts(&codes, &sorted_runs(&codes).unwrap(), 7);
            assert_eq!(starts.len(), 8);
            for (g, &st) in starts.iter().enumerate() {
                assert_eq!(st, codes.partition_point(|&c| c < g as i64), "n {n} g {g}");
            }
            if n > 1 {
                let i = r.index(n - 1);
                codes.swap(i, n - 1);
                codes[i] = 9;
            }
            assert_eq!(sorted_runs(&codes), runs_chunks(&codes), "n {n}");
        }
    }
}
