//! `QuantileSketch::from_otel` on arbitrary OpenTelemetry exponential-histogram points:
//! an error or a sketch, never a panic; an imported sketch round-trips through bytes and
//! exports back to OpenTelemetry without panicking.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use qcore::sketch::{ExpBuckets, OtelPoint};
use qcore::sketch::QuantileSketch;

fn buckets(u: &mut Unstructured<'_>) -> Result<ExpBuckets> {
    let offset = u.arbitrary()?;
    let n = u.int_in_range(0..=64)?;
    let counts = (0..n)
        .map(|_| u.int_in_range(0..=1_000_000))
        .collect::<Result<_>>()?;
    Ok(ExpBuckets { offset, counts })
}

fn point(u: &mut Unstructured<'_>) -> Result<(OtelPoint, Option<f64>, Option<usize>)> {
    let p = OtelPoint {
        scale: u.int_in_range(-12..=22)?,
        zero_count: u.arbitrary()?,
        zero_threshold: u.arbitrary()?,
        positive: buckets(u)?,
        negative: buckets(u)?,
        count: u.arbitrary()?,
        sum: u.arbitrary()?,
        min: u.arbitrary()?,
        max: u.arbitrary()?,
    };
    let accuracy = u.arbitrary()?;
    let limit = u.arbitrary::<Option<u16>>()?.map(usize::from);
    Ok((p, accuracy, limit))
}

fuzz_target!(|data: &[u8]| {
    let Ok((p, accuracy, limit)) = point(&mut Unstructured::new(data)) else {
        return;
    };
    let Ok(sketch) = QuantileSketch::from_otel(&p, accuracy, limit) else {
        return;
    };
    let bytes = sketch.to_bytes();
    let again = QuantileSketch::from_bytes(&bytes).expect("an imported sketch decodes");
    assert_eq!(again, sketch);
    let _ = sketch.to_otel();
    let _ = sketch.quantiles(&[0.0, 0.5, 0.99, 1.0]);
});
