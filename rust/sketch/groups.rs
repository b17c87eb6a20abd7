//! One pass over (group code, value) pairs: one sketch per group.

use super::QuantileSketch;
use crate::error::{check_finite, check_same_len};
use crate::{QcoreError, Result};

/// Group codes must be below `max(MIN_CODE_LIMIT, len(values))`, which bounds memory by
/// the input size.
pub const MIN_CODE_LIMIT: usize = 1 << 20;

/// One sketch per group code `0..=max(codes)` (codes are non-negative integers; groups
/// without values get an empty sketch). `weights`, when given, weight each value.
///
/// The values are gathered per group with a counting sort, then each group is ingested
/// through the same hot loop as [`QuantileSketch::add_slice`]. On error nothing is built.
pub fn sketch_groups(
    codes: &[i64],
    values: &[f64],
    weights: Option<&[f64]>,
    template: &QuantileSketch,
) -> Result<Vec<QuantileSketch>> {
    let mut out = Vec::new();
    for_each_group(codes, values, weights, template, |sk| {
        out.push(sk);
        Ok(())
    })?;
    Ok(out)
}

/// Validate, gather the values per group (counting sort) and hand each group's sketch,
/// in code order, to `f`.
fn for_each_group(
    codes: &[i64],
    values: &[f64],
    weights: Option<&[f64]>,
    template: &QuantileSketch,
    mut f: impl FnMut(QuantileSketch) -> Result<()>,
) -> Result<()> {
    check_same_len("codes", codes.len(), "values", values.len())?;
    check_finite("values", values)?;
    if let Some(w) = weights {
        check_same_len("values", values.len(), "weights", w.len())?;
        check_finite("weights", w)?;
        if let Some(i) = w.iter().position(|&x| x < 0.0) {
            return Err(QcoreError::invalid(
                "weights",
                format!("must be >= 0, got {} at index {i}", w[i]),
            ));
        }
    }
    if let Some(i) = codes.iter().position(|&c| c < 0) {
        return Err(QcoreError::invalid(
            "codes",
            format!("must be non-negative, got {} at index {i}", codes[i]),
        ));
    }
    let n_groups = codes.iter().max().map_or(0, |&m| m as u64 + 1);
    let cap = MIN_CODE_LIMIT.max(values.len()) as u64;
    if n_groups > cap {
        return Err(QcoreError::invalid(
            "codes",
            format!(
                "must be below {cap} (max(2^20, len(values))), got {}",
                n_groups - 1
            ),
        ));
    }
    let n_groups = n_groups as usize;
    // Counting sort of the values by group.
    let mut starts = vec![0usize; n_groups + 1];
    for &c in codes {
        starts[c as usize + 1] += 1;
    }
    for g in 0..n_groups {
        starts[g + 1] += starts[g];
    }
    let mut fill = starts.clone();
    let mut sorted = vec![0.0f64; values.len()];
    let mut sorted_w = weights.map(|_| vec![0.0f64; values.len()]);
    for (k, &c) in codes.iter().enumerate() {
        let slot = &mut fill[c as usize];
        sorted[*slot] = values[k];
        if let (Some(sw), Some(w)) = (sorted_w.as_mut(), weights) {
            sw[*slot] = w[k];
        }
        *slot += 1;
    }
    for g in 0..n_groups {
        let mut sk = template.empty_like();
        let part = &sorted[starts[g]..starts[g + 1]];
        match sorted_w.as_ref() {
            Some(sw) => sk.add_weighted(part, &sw[starts[g]..starts[g + 1]])?,
            None => sk.add_slice(part)?,
        }
        f(sk)?;
    }
    Ok(())
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
    let mut counts = Vec::new();
    let mut table = Vec::new();
    // Each group's sketch is dropped right after use (no per-group allocation kept).
    for_each_group(codes, values, weights, template, |g| {
        counts.push(g.count());
        match g.quantiles(qs)? {
            Some(row) => table.extend(row),
            None => table.extend(std::iter::repeat_n(f64::NAN, qs.len())),
        }
        Ok(())
    })?;
    Ok((counts, table))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
