//! `QuantileSketch::from_bytes` on arbitrary bytes: it returns an error or a sketch, never
//! panics; a decoded sketch re-encodes to bytes that decode to the same sketch and
//! re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcore::sketch::QuantileSketch;

fuzz_target!(|data: &[u8]| {
    let Ok(sketch) = QuantileSketch::from_bytes(data) else {
        return;
    };
    let bytes = sketch.to_bytes();
    let again = QuantileSketch::from_bytes(&bytes).expect("a re-encoded sketch decodes");
    assert_eq!(again, sketch, "decode(encode(s)) differs from s");
    assert_eq!(again.to_bytes(), bytes, "encoding is not stable");
    // the queries on a decoded sketch must not panic either
    let _ = sketch.quantiles(&[0.0, 0.5, 0.99, 1.0]);
    let _ = sketch.cdf(1.0);
});
