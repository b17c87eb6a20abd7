//! Bucket stores: bucket index → weight, with a bounded number of buckets.
//!
//! [`DenseStore`] keeps a contiguous window of at most `limit` buckets. When the data
//! spans more than `limit` indices, the buckets at one end collapse into the last bucket
//! kept. Which buckets collapse depends only on the data (the extreme index seen), never
//! on arrival order, so the state after a sequence of adds and merges equals the state of
//! one store fed the union of the data.

/// Which end collapses when the window is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collapse {
    /// Keep the `limit` highest indices; lower ones fold into the lowest bucket kept.
    Lowest,
    /// Keep the `limit` lowest indices; higher ones fold into the highest bucket kept.
    Highest,
}

/// A dense window of bucket weights.
#[derive(Clone, Debug)]
pub struct DenseStore {
    /// Index of `counts[0]`.
    offset: i32,
    counts: Vec<f64>,
    limit: usize,
    collapse: Collapse,
    collapsed: bool,
}

impl DenseStore {
    /// An empty store keeping at most `limit ≥ 1` buckets.
    pub fn new(limit: usize, collapse: Collapse) -> Self {
        DenseStore {
            offset: 0,
            counts: Vec::new(),
            limit: limit.max(1),
            collapse,
            collapsed: false,
        }
    }

    /// The bucket limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Lowest and highest non-empty index.
    pub fn range(&self) -> Option<(i32, i32)> {
        let lo = self.counts.iter().position(|&c| c != 0.0)?;
        let hi = self.counts.iter().rposition(|&c| c != 0.0)?;
        Some((self.offset + lo as i32, self.offset + hi as i32))
    }

    /// Total weight (a float sum in index order).
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// Whether every weight is an integer below 2^53 (counts are then exact).
    pub fn integral(&self) -> bool {
        self.counts
            .iter()
            .all(|&c| c == c.trunc() && c < 9_007_199_254_740_992.0)
    }

    /// The index of the bucket that absorbed collapsed weight, if any.
    pub fn collapse_bucket(&self) -> Option<i32> {
        if !self.collapsed {
            return None;
        }
        let (lo, hi) = self.range()?;
        Some(match self.collapse {
            Collapse::Lowest => lo,
            Collapse::Highest => hi,
        })
    }

    /// Whether a collapse ever happened.
    pub fn is_collapsed_flag(&self) -> bool {
        self.collapsed
    }

    /// Number of allocated slots (an upper bound on the number of buckets).
    pub fn len_hint(&self) -> usize {
        self.counts.len()
    }

    /// Mark the store collapsed (used by decoding).
    pub(crate) fn set_collapsed(&mut self, collapsed: bool) {
        self.collapsed = collapsed;
    }

    /// Iterate non-empty buckets in increasing index order without allocating.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (i32, f64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c != 0.0)
            .map(move |(k, &c)| (self.offset + k as i32, c))
    }

    #[inline(always)]
    pub fn add_one(&mut self, index: i32, w: f64) {
        let k = index.wrapping_sub(self.offset) as u32 as usize;
        if k < self.counts.len() {
            self.counts[k] += w;
        } else {
            self.add_slow(index, w);
        }
    }

    #[cold]
    #[inline(never)]
    fn add_slow(&mut self, index: i32, w: f64) {
        let Some((lo, hi)) = self.range() else {
            // Empty: start a window around the index with a little slack.
            let len = self.limit.min(128);
            let start = i64::from(index) - (len / 2) as i64;
            self.reshape(Self::clamp_start(start, len), len);
            self.add_one(index, w);
            return;
        };
        // The span of the non-empty buckets never exceeds `limit` (invariant). A value
        // beyond the collapsing end folds into the end bucket without reshaping.
        let limit = self.limit as i64;
        let end = i64::from(self.offset) + self.counts.len() as i64 - 1;
        match self.collapse {
            Collapse::Lowest => {
                let floor = i64::from(hi) - limit + 1;
                if i64::from(index) < floor && floor >= i64::from(self.offset) && floor <= end {
                    self.collapsed = true;
                    self.counts[(floor - i64::from(self.offset)) as usize] += w;
                    return;
                }
            }
            Collapse::Highest => {
                let ceil = i64::from(lo) + limit - 1;
                if i64::from(index) > ceil && ceil >= i64::from(self.offset) && ceil <= end {
                    self.collapsed = true;
                    self.counts[(ceil - i64::from(self.offset)) as usize] += w;
                    return;
                }
            }
        }
        let new_lo = i64::from(lo.min(index));
        let new_hi = i64::from(hi.max(index));
        let span = (new_hi - new_lo + 1) as usize;
        if span <= self.limit {
            // Grow with slack on the side that grew, never beyond `limit` slots.
            let want = (self.counts.len() * 2).max(span).min(self.limit);
            let extra = (want - span) as i64;
            let start = if index < lo { new_lo - extra } else { new_lo };
            let start = Self::clamp_start(start, want).min(new_lo as i32);
            self.reshape(start, want);
            self.add_one(index, w);
            return;
        }
        self.collapsed = true;
        let start = match self.collapse {
            Collapse::Lowest => (new_hi - limit + 1) as i32,
            Collapse::Highest => new_lo as i32,
        };
        self.reshape_folding(start, self.limit);
        let top = i64::from(start) + limit - 1;
        let k = (i64::from(index).clamp(i64::from(start), top) - i64::from(start)) as usize;
        self.counts[k] += w;
    }

    /// A window start such that `[start, start + len)` stays inside the i32 range.
    fn clamp_start(start: i64, len: usize) -> i32 {
        let max_start = i64::from(i32::MAX) - len as i64 + 1;
        start.clamp(i64::from(i32::MIN), max_start) as i32
    }

    /// Move the window to `[start, start + len)`; every non-empty bucket must fit.
    fn reshape(&mut self, start: i32, len: usize) {
        let mut counts = vec![0.0; len];
        for (i, c) in self.iter() {
            let k = (i64::from(i) - i64::from(start)) as usize;
            counts[k] = c;
        }
        self.counts = counts;
        self.offset = start;
    }

    /// Move the window to `[start, start + len)`, folding buckets outside it into the
    /// nearest end according to the collapse direction.
    fn reshape_folding(&mut self, start: i32, len: usize) {
        let mut counts = vec![0.0; len];
        let end = i64::from(start) + len as i64 - 1;
        for (i, c) in self.iter() {
            let k = (i64::from(i).clamp(i64::from(start), end) - i64::from(start)) as usize;
            counts[k] += c;
        }
        self.counts = counts;
        self.offset = start;
    }

    /// Widen the window to the union of its range and `[lo, hi]` when that fits in the
    /// limit (`Ok`), else leave it and return the union's `(low, high)` (`Err`: the caller
    /// collapses).
    fn cover(&mut self, lo: i32, hi: i32) -> std::result::Result<(), (i64, i64)> {
        let (cur_lo, cur_hi) = self.range().unwrap_or((lo, hi));
        let new_lo = i64::from(cur_lo.min(lo));
        let new_hi = i64::from(cur_hi.max(hi));
        let span = (new_hi - new_lo + 1) as usize;
        if span > self.limit {
            return Err((new_lo, new_hi));
        }
        let end = i64::from(self.offset) + self.counts.len() as i64 - 1;
        if self.counts.is_empty() || new_lo < i64::from(self.offset) || new_hi > end {
            self.reshape(Self::clamp_start(new_lo, span), span);
        }
        Ok(())
    }

    /// Make the window cover a batch whose indices lie in `[lo, hi]`, collapsing if the
    /// union spans more than the limit. Returns the window offset and its slots: every
    /// index `i` of the batch then belongs in slot `max(i - offset, 0)` (indices below a
    /// collapsed floor fold into slot 0). Only for [`Collapse::Lowest`] stores.
    pub fn prepare_batch(&mut self, lo: i32, hi: i32) -> (i32, &mut [f64]) {
        debug_assert_eq!(self.collapse, Collapse::Lowest);
        if let Err((_, new_hi)) = self.cover(lo, hi) {
            self.collapsed = true;
            let floor = (new_hi - self.limit as i64 + 1) as i32;
            self.reshape_folding(floor, self.limit);
        }
        (self.offset, &mut self.counts)
    }

    /// Widen the window once to cover indices `lo..=hi` of a coming batch, when that
    /// needs no collapse (otherwise [`DenseStore::add_one`] collapses as it goes). Only the
    /// window changes, not the state.
    pub fn reserve(&mut self, lo: i32, hi: i32) {
        let _ = self.cover(lo, hi); // too wide: left to `add_one`, which collapses
    }

    /// Add integer counts: `counts[k]` to bucket `lo + k`. The same state as adding each
    /// index one by one (the window covers, or collapses to, the union of the ranges).
    pub fn add_counts(&mut self, lo: i32, counts: &[u64]) {
        // (bucket counts of the fused kernels: below 2^52, converted four at a time)
        let (Some(first), Some(last)) = (
            counts.iter().position(|&c| c != 0),
            counts.iter().rposition(|&c| c != 0),
        ) else {
            return;
        };
        let (b_lo, b_hi) = (lo + first as i32, lo + last as i32);
        let counts = &counts[first..=last];
        if self.counts.is_empty()
            && counts.len() <= self.limit
            && Self::clamp_start(i64::from(b_lo), counts.len()) == b_lo
        {
            // A window of exactly these buckets, written once (what `cover` and the adds
            // below give an empty store: zeros plus each count).
            self.counts = counts_to_f64(counts).collect();
            self.offset = b_lo;
            return;
        }
        let cover = self.cover(b_lo, b_hi);
        if cover.is_ok() {
            let base = (b_lo - self.offset) as usize;
            for (d, c) in self.counts[base..base + counts.len()]
                .iter_mut()
                .zip(counts_to_f64(counts))
            {
                *d += c;
            }
            return;
        }
        let Err((new_lo, new_hi)) = cover else { return };
        self.collapsed = true;
        let start = match self.collapse {
            Collapse::Lowest => (new_hi - self.limit as i64 + 1) as i32,
            Collapse::Highest => new_lo as i32,
        };
        self.reshape_folding(start, self.limit);
        let top = i64::from(start) + self.limit as i64 - 1;
        for (k, &c) in counts.iter().enumerate() {
            if c != 0 {
                let i = (i64::from(b_lo) + k as i64).clamp(i64::from(start), top);
                self.counts[(i - i64::from(start)) as usize] += c as f64;
            }
        }
    }

    /// Merge `other` into `self`. Exact for integral weights.
    pub fn merge_from(&mut self, other: &DenseStore) {
        let Some((olo, ohi)) = other.range() else {
            return;
        };
        self.collapsed |= other.collapsed;
        // Fast path: other's range fits inside our window without any collapse change.
        let end = i64::from(self.offset) + self.counts.len() as i64 - 1;
        let fits = !self.counts.is_empty()
            && i64::from(olo) >= i64::from(self.offset)
            && i64::from(ohi) <= end;
        if fits {
            let src = &other.counts[(olo - other.offset) as usize..=(ohi - other.offset) as usize];
            let dst_start = (olo - self.offset) as usize;
            for (d, s) in self.counts[dst_start..dst_start + src.len()]
                .iter_mut()
                .zip(src)
            {
                *d += *s;
            }
            return;
        }
        // Grow once to the union (or collapse), then add.
        match other.collapse {
            Collapse::Lowest => {
                // Add the highest bucket first so a collapse is decided once.
                self.add_one(ohi, other.counts[(ohi - other.offset) as usize]);
                for (i, c) in other.iter().rev().skip(1) {
                    self.add_one(i, c);
                }
            }
            Collapse::Highest => {
                self.add_one(olo, other.counts[(olo - other.offset) as usize]);
                for (i, c) in other.iter().skip(1) {
                    self.add_one(i, c);
                }
            }
        }
    }

    /// Replace the contents with the given ascending buckets (decoding). The caller has
    /// checked that the indices are strictly increasing, the span fits in `limit` and the
    /// weights are positive and finite.
    pub(crate) fn set_buckets(&mut self, buckets: &[(i32, f64)]) {
        self.counts.clear();
        if let (Some(&(lo, _)), Some(&(hi, _))) = (buckets.first(), buckets.last()) {
            let len = (i64::from(hi) - i64::from(lo) + 1) as usize;
            self.offset = lo;
            self.counts.resize(len, 0.0);
            for &(i, c) in buckets {
                self.counts[(i - lo) as usize] = c;
            }
        } else {
            self.offset = 0;
        }
    }
}

impl PartialEq for DenseStore {
    fn eq(&self, other: &Self) -> bool {
        self.limit == other.limit
            && self.collapse == other.collapse
            && self.collapsed == other.collapsed
            && self.iter().eq(other.iter())
    }
}

/// `counts` as f64, exactly (`c as f64`); counts below 2^52 (every tally of the fused
/// kernels) through the bits of `2^52 + c` minus `2^52`, which vectorises.
fn counts_to_f64(counts: &[u64]) -> impl Iterator<Item = f64> + '_ {
    const TWO52: u64 = 1 << 52;
    let small = counts.iter().fold(0u64, |a, &c| a | c) < TWO52;
    counts.iter().map(move |&c| {
        if small {
            f64::from_bits(c | 0x4330_0000_0000_0000) - 4_503_599_627_370_496.0
        } else {
            c as f64
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(indices: &[i32], limit: usize, collapse: Collapse) -> (Vec<(i32, f64)>, bool) {
        let lo = *indices.iter().min().unwrap();
        let hi = *indices.iter().max().unwrap();
        let span = (hi - lo + 1) as usize;
        let collapsed = span > limit;
        let mut map = std::collections::BTreeMap::new();
        for &i in indices {
            let j = if collapsed {
                match collapse {
                    Collapse::Lowest => i.max(hi - limit as i32 + 1),
                    Collapse::Highest => i.min(lo + limit as i32 - 1),
                }
            } else {
                i
            };
            *map.entry(j).or_insert(0.0) += 1.0;
        }
        (map.into_iter().collect(), collapsed)
    }

    fn rng(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    #[test]
    fn matches_reference_in_any_order_and_split() {
        let mut s = 7u64;
        for trial in 0..400 {
            let limit = 1 + (rng(&mut s) % 40) as usize;
            let spread = 1 + (rng(&mut s) % 120) as i32;
            let n = 1 + (rng(&mut s) % 200) as usize;
            let base = (rng(&mut s) % 1000) as i32 - 500;
            let idx: Vec<i32> = (0..n)
                .map(|_| base + (rng(&mut s) % spread as u64) as i32)
                .collect();
            for collapse in [Collapse::Lowest, Collapse::Highest] {
                let (want, collapsed) = reference(&idx, limit, collapse);
                let mut a = DenseStore::new(limit, collapse);
                for &i in &idx {
                    a.add_one(i, 1.0);
                }
                assert_eq!(a.iter().collect::<Vec<_>>(), want, "trial {trial}");
                assert_eq!(a.is_collapsed_flag(), collapsed);
                // Split into parts, merge in reverse.
                let cut = (rng(&mut s) as usize) % (n + 1);
                let mut p = DenseStore::new(limit, collapse);
                let mut q = DenseStore::new(limit, collapse);
                for &i in idx[..cut].iter().rev() {
                    p.add_one(i, 1.0);
                }
                for &i in &idx[cut..] {
                    q.add_one(i, 1.0);
                }
                q.merge_from(&p);
                assert_eq!(q, a, "trial {trial} cut {cut}");
            }
        }
    }

    #[test]
    fn collapse_keeps_top_buckets() {
        let mut st = DenseStore::new(4, Collapse::Lowest);
        for i in 0..10 {
            st.add_one(i, 1.0);
        }
        assert!(st.is_collapsed_flag());
        assert_eq!(
            st.iter().collect::<Vec<_>>(),
            vec![(6, 7.0), (7, 1.0), (8, 1.0), (9, 1.0)]
        );
        assert_eq!(st.collapse_bucket(), Some(6));
        let mut st = DenseStore::new(4, Collapse::Highest);
        for i in 0..10 {
            st.add_one(i, 1.0);
        }
        assert_eq!(
            st.iter().collect::<Vec<_>>(),
            vec![(0, 1.0), (1, 1.0), (2, 1.0), (3, 7.0)]
        );
    }

    #[test]
    fn extreme_indices_do_not_overflow() {
        let mut st = DenseStore::new(8, Collapse::Lowest);
        st.add_one(i32::MAX - 1, 1.0);
        st.add_one(i32::MIN + 1, 1.0);
        st.add_one(0, 1.0);
        // The two low indices fold into the floor, i32::MAX - 8.
        assert_eq!(
            st.iter().collect::<Vec<_>>(),
            vec![(i32::MAX - 8, 2.0), (i32::MAX - 1, 1.0)]
        );
    }
}
