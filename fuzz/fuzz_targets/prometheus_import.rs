//! `QuantileSketch::from_prometheus` on arbitrary native histograms (spans and deltas):
//! an error or a sketch, never a panic; an imported sketch round-trips through bytes and
//! exports back to Prometheus without panicking.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use qcore::sketch::PromHistogram;
use qcore::sketch::QuantileSketch;

type Spans = (Vec<(i32, u32)>, Vec<i64>);

fn spans(u: &mut Unstructured<'_>) -> Result<Spans> {
    let n = u.int_in_range(0..=8)?;
    let mut spans = Vec::with_capacity(n);
    for _ in 0..n {
        spans.push((u.arbitrary()?, u.int_in_range(0..=32)?));
    }
    let m = u.int_in_range(0..=128)?;
    let deltas = (0..m)
        .map(|_| u.int_in_range(-1_000_000..=1_000_000))
        .collect::<Result<_>>()?;
    Ok((spans, deltas))
}

fn histogram(u: &mut Unstructured<'_>) -> Result<(PromHistogram, Option<f64>, Option<usize>)> {
    let schema = u.int_in_range(-6..=10)?;
    let zero_threshold = u.arbitrary()?;
    let zero_count = u.arbitrary()?;
    let count = u.arbitrary()?;
    let sum = u.arbitrary()?;
    let (positive_spans, positive_deltas) = spans(u)?;
    let (negative_spans, negative_deltas) = spans(u)?;
    let h = PromHistogram {
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive_spans,
        positive_deltas,
        negative_spans,
        negative_deltas,
    };
    let accuracy = u.arbitrary()?;
    let limit = u.arbitrary::<Option<u16>>()?.map(usize::from);
    Ok((h, accuracy, limit))
}

fuzz_target!(|data: &[u8]| {
    let Ok((h, accuracy, limit)) = histogram(&mut Unstructured::new(data)) else {
        return;
    };
    let Ok(sketch) = QuantileSketch::from_prometheus(&h, accuracy, limit) else {
        return;
    };
    let bytes = sketch.to_bytes();
    let again = QuantileSketch::from_bytes(&bytes).expect("an imported sketch decodes");
    assert_eq!(again, sketch);
    let _ = sketch.to_prometheus();
    let _ = sketch.quantiles(&[0.0, 0.5, 0.99, 1.0]);
});
