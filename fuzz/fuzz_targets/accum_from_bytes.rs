//! The accumulators' decoders (`ExactSum`, `ArrivalAccumulator`, `LittleAccumulator`,
//! `ReportAccumulator`) on arbitrary bytes: each returns an error or a value, never
//! panics; a decoded value re-encodes to bytes that decode to the same value; finishing and
//! merging a decoded value with itself do not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcore::accum::{ArrivalAccumulator, ExactSum, LittleAccumulator, ReportAccumulator};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = ExactSum::from_bytes(data) {
        let again = ExactSum::from_bytes(&s.to_bytes()).expect("a re-encoded sum decodes");
        assert_eq!(again, s);
    }
    if let Ok(a) = ArrivalAccumulator::from_bytes(data) {
        let bytes = a.to_bytes();
        let again = ArrivalAccumulator::from_bytes(&bytes).expect("re-encoded arrivals decode");
        assert_eq!(again.to_bytes(), bytes);
        let _ = a.finish(0.95, 8);
        let mut m = a.clone();
        let _ = m.merge(&a);
    }
    if let Ok(l) = LittleAccumulator::from_bytes(data) {
        let bytes = l.to_bytes();
        let again = LittleAccumulator::from_bytes(&bytes).expect("re-encoded Little decodes");
        assert_eq!(again.to_bytes(), bytes);
        let _ = l.finish(0.02, 0.95);
        let mut m = l.clone();
        let _ = m.merge(&l);
    }
    if let Ok(r) = ReportAccumulator::from_bytes(data) {
        let bytes = r.to_bytes();
        let again = ReportAccumulator::from_bytes(&bytes).expect("re-encoded report decodes");
        assert_eq!(again, r);
        assert_eq!(again.to_bytes(), bytes);
        // (a few bytes can describe an empty accumulator on a grid of up to 2e8 windows;
        // its total holds one group's tables, so only small grids are totalled here)
        let w = r.grid();
        if w.n_windows + w.n_end <= 1 << 16 {
            let _ = r.total();
        }
        for k in 0..r.n_groups().min(4) {
            let _ = r.finish_group(k, w.t1, 0.95, 0.02);
        }
        let mut m = r.clone();
        let _ = m.merge(&r, None);
    }
});
