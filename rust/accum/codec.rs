//! Byte-level helpers of the sketch format: LEB128 varints, zigzag, a bounds-checked
//! reader. Every read checks the remaining length, so hostile input can only produce an
//! error, never a panic or an allocation larger than the input justifies.

use crate::{QcoreError, Result};

/// Append an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag-encode a signed integer.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Start reading `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn truncated(&self, what: &str) -> QcoreError {
        QcoreError::data(format!(
            "truncated input: {what} needs more bytes at offset {} of {}",
            self.pos,
            self.data.len()
        ))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.truncated("a byte"))?;
        self.pos += 1;
        Ok(b)
    }

    /// `N` raw bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.remaining() < N {
            return Err(self.truncated("a fixed-size field"));
        }
        let mut a = [0u8; N];
        a.copy_from_slice(&self.data[self.pos..self.pos + N]);
        self.pos += N;
        Ok(a)
    }

    /// A little-endian f64.
    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array::<8>()?))
    }

    /// An unsigned LEB128 varint of at most 10 bytes, rejecting overlong encodings.
    pub fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for k in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if k == 9 && b > 1 {
                return Err(QcoreError::data("varint overflows 64 bits"));
            }
            v |= bits << (7 * k);
            if b & 0x80 == 0 {
                if k > 0 && b == 0 {
                    return Err(QcoreError::data("varint is not in canonical form"));
                }
                return Ok(v);
            }
        }
        Err(QcoreError::data("varint longer than 10 bytes"))
    }

    /// A zigzag varint.
    pub fn zigzag(&mut self) -> Result<i64> {
        Ok(unzigzag(self.varint()?))
    }

    /// A length that must not exceed `max` nor what `min_bytes_each` per item allows
    /// in the remaining input.
    pub fn length(&mut self, what: &str, max: u64, min_bytes_each: usize) -> Result<usize> {
        let n = self.varint()?;
        let by_bytes = (self.remaining() / min_bytes_each.max(1)) as u64;
        if n > max || n > by_bytes {
            return Err(QcoreError::data(format!(
                "{what} length {n} exceeds what the input can hold"
            )));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn hostile_varints() {
        assert!(Reader::new(&[0x80; 11]).varint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
        assert!(Reader::new(&[0x80, 0x00]).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[]).u8().is_err());
        let mut r = Reader::new(&[100, 1, 2]);
        assert!(r.length("x", 1000, 1).is_err());
    }
}
