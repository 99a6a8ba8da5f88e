//! A zero-copy reader of `prometheus.WriteRequest`, the hot path's decoder.
//!
//! prost decodes every label into two owned `String`s; this reader walks the
//! protobuf wire format once and hands out label names and values as slices
//! of the decompressed buffer, so a request costs no allocation beyond the
//! model's key arena. `v1::decode_with_prost` is kept as the reference, and a
//! property test proves both produce the same `WriteBatch` on any input.
//!
//! Wire rules followed (as prost does): unknown fields are skipped (groups
//! included), a known field with the wrong wire type is an error, strings must
//! be UTF-8, scalar fields take their last value, lengths and varints are
//! bounds-checked.

use super::Error;

/// Wire type of varint fields.
pub const VARINT: u8 = 0;
/// Wire type of 64-bit fixed-width fields.
pub const FIXED64: u8 = 1;
/// Wire type of length-delimited fields.
pub const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// Groups nest at most this deep before the input is refused, as in prost.
const MAX_DEPTH: u32 = 100;

fn malformed(what: &str) -> Error {
    Error::Protobuf(what.to_string())
}

/// The value of the varint that is all of `bytes`, when `bytes` is one
/// varint of one to eight bytes (every byte but the last with the
/// continuation bit); `None` otherwise, for [`Reader::varint`] to decide.
///
/// For a field that runs to the end of its message, such as a sample's
/// timestamp: a millisecond timestamp takes six bytes, where the loop of
/// [`Reader::varint`] costs a call and a step per byte.
#[inline(always)]
pub fn varint_exact(bytes: &[u8]) -> Option<u64> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    let n = bytes.len();
    // The bytes, little-endian, in one word. Two loads that overlap put the
    // same byte twice in the same place, which OR leaves as it is.
    let word = match n {
        1 => u64::from(bytes[0]),
        2..=3 => {
            let head = u16::from_le_bytes([bytes[0], bytes[1]]);
            let tail = u16::from_le_bytes([bytes[n - 2], bytes[n - 1]]);
            u64::from(head) | (u64::from(tail) << (8 * (n - 2)))
        }
        4..=8 => {
            let head = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            let tail = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
            u64::from(head) | (u64::from(tail) << (8 * (n - 4)))
        }
        _ => return None,
    };
    let continued = (ONES << 7) & ((1u64 << (8 * (n - 1))) - 1);
    if word & (ONES << 7) != continued {
        return None;
    }
    // Gather the seven-bit groups: pairs of bytes, then of 14-bit groups,
    // then of 28-bit groups.
    let x = word & (ONES * 0x7f);
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    Some((x & 0x0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4))
}

/// A cursor over one protobuf message.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of the message encoded in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Are there more fields?
    #[inline]
    pub fn has_more(&self) -> bool {
        !self.buf.is_empty()
    }

    /// What is left to read.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Reads a base-128 varint.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<u64, Error> {
        // One-byte fast path: tags, small lengths. Inlined at every call site;
        // the loop stays out of line so that it does not stop the inlining.
        if let Some(&b) = self.buf.first()
            && b < 0x80
        {
            self.buf = &self.buf[1..];
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(i) else {
                return Err(malformed("truncated varint"));
            };
            if i == 9 && b > 1 {
                return Err(malformed("varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    /// Reads a field key: (field number, wire type).
    #[inline(always)]
    pub fn key(&mut self) -> Result<(u32, u8), Error> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(malformed("field key out of range"));
        }
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(malformed("field number 0"));
        }
        Ok((field, (key & 7) as u8))
    }

    /// Reads a length-delimited payload.
    #[inline(always)]
    pub fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = self.varint()?;
        if len > self.buf.len() as u64 {
            return Err(malformed("length-delimited field runs past the end"));
        }
        let (head, tail) = self.buf.split_at(len as usize);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a UTF-8 string.
    #[inline(always)]
    pub fn str(&mut self) -> Result<&'a str, Error> {
        to_str(self.bytes()?)
    }

    /// Reads a little-endian fixed 64-bit value.
    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, Error> {
        let Some((head, tail)) = self.buf.split_first_chunk::<8>() else {
            return Err(malformed("truncated fixed64"));
        };
        self.buf = tail;
        Ok(u64::from_le_bytes(*head))
    }

    /// Skips the value of a field of wire type `wire` (an unknown field).
    pub fn skip(&mut self, field: u32, wire: u8) -> Result<(), Error> {
        self.skip_at(field, wire, 0)
    }

    fn skip_at(&mut self, field: u32, wire: u8, depth: u32) -> Result<(), Error> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                if self.buf.len() < 4 {
                    return Err(malformed("truncated fixed32"));
                }
                self.buf = &self.buf[4..];
                Ok(())
            }
            START_GROUP => {
                if depth >= MAX_DEPTH {
                    return Err(malformed("groups nested too deep"));
                }
                loop {
                    let (f, w) = self.key()?;
                    if w == END_GROUP {
                        return if f == field {
                            Ok(())
                        } else {
                            Err(malformed("unexpected end group"))
                        };
                    }
                    self.skip_at(f, w, depth + 1)?;
                }
            }
            END_GROUP => Err(malformed("unexpected end group")),
            _ => Err(malformed("invalid wire type")),
        }
    }
}

/// `bytes` as a UTF-8 string.
#[inline(always)]
pub fn to_str(bytes: &[u8]) -> Result<&str, Error> {
    // Label names and values are nearly always short ASCII, where the general
    // validator's per-call setup costs more than the check itself (decode
    // benchmark: 17% of the server's profile went to validation).
    if is_ascii(bytes) {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| malformed("string is not valid UTF-8"))
}

/// `<[u8]>::is_ascii`, inlined for the short strings of labels: ORs eight
/// bytes at a time and checks the high bits once.
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    if bytes.len() > 64 {
        return bytes.is_ascii();
    }
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc |= u64::from_le_bytes(w.try_into().expect("8 bytes"));
    }
    for &b in words.remainder() {
        acc |= u64::from(b);
    }
    acc & 0x8080_8080_8080_8080 == 0
}

/// Checks that a known field arrived with its declared wire type.
#[inline]
pub fn expect(wire: u8, want: u8) -> Result<(), Error> {
    if wire == want {
        Ok(())
    } else {
        Err(malformed("invalid wire type for a known field"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut r = Reader::new(&[
            0x96, 0x01, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        assert_eq!(r.varint().unwrap(), 150);
        assert_eq!(r.varint().unwrap(), 127);
        assert_eq!(r.varint().unwrap(), u64::MAX);
        assert!(!r.has_more());
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
    }

    #[test]
    fn an_exact_varint_reads_as_the_reader_reads_it() {
        let mut values: Vec<u64> = (0..64).map(|b| 1u64 << b).collect();
        values.extend(values.clone().iter().map(|v| v - 1));
        values.extend([1_796_031_508_613, 0x7f, 0x80, 0x3fff, 0x4000, u64::MAX]);
        for v in values {
            let mut bytes = Vec::new();
            let mut rest = v;
            while rest >= 0x80 {
                bytes.push((rest as u8) | 0x80);
                rest >>= 7;
            }
            bytes.push(rest as u8);
            let expected = (bytes.len() <= 8).then_some(v);
            assert_eq!(varint_exact(&bytes), expected, "{v} {bytes:02x?}");
            // Anything after the varint, or a byte cut from its end, is not
            // one varint of those bytes.
            let mut longer = bytes.clone();
            longer.push(0x01);
            assert_eq!(varint_exact(&longer), None, "{v} then a byte");
            assert_eq!(varint_exact(&bytes[..bytes.len() - 1]), None, "{v} cut");
        }
        assert_eq!(varint_exact(&[]), None);
    }

    #[test]
    fn varints_of_every_length_round_trip() {
        let encode = |mut v: u64| {
            let mut out = Vec::new();
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
            out
        };
        for bits in 0..64 {
            for v in [1u64 << bits, (1u64 << bits) - 1, (1u64 << bits) | 1] {
                let mut bytes = encode(v);
                let len = bytes.len();
                for tail in [0usize, 9] {
                    bytes.resize(len + tail, 0xff);
                    let mut r = Reader::new(&bytes);
                    assert_eq!(r.varint().unwrap(), v, "{v} tail {tail}");
                    assert_eq!(r.buf.len(), tail);
                }
            }
        }
    }

    #[test]
    fn lengths_are_bounds_checked() {
        assert!(Reader::new(&[0x05, b'a', b'b']).bytes().is_err());
        assert_eq!(Reader::new(&[0x02, b'a', b'b']).str().unwrap(), "ab");
        assert!(Reader::new(&[0x01, 0xff]).str().is_err());
    }

    #[test]
    fn ascii_check_agrees_with_std_at_every_length_and_position() {
        for len in 0..80 {
            let plain = vec![b'a'; len];
            assert!(is_ascii(&plain));
            for at in 0..len {
                let mut v = plain.clone();
                v[at] = 0x80;
                assert!(!is_ascii(&v), "{len} {at}");
            }
        }
    }

    #[test]
    fn groups_are_skipped_to_their_end() {
        // field 9 start group, field 1 varint 5, field 9 end group, then field 2 varint 7
        let mut r = Reader::new(&[0x4b, 0x08, 0x05, 0x4c, 0x10, 0x07]);
        let (f, w) = r.key().unwrap();
        r.skip(f, w).unwrap();
        assert_eq!(r.key().unwrap(), (2, VARINT));
        assert_eq!(r.varint().unwrap(), 7);
        // Mismatched end group.
        let mut r = Reader::new(&[0x4b, 0x54]);
        let (f, w) = r.key().unwrap();
        assert!(r.skip(f, w).is_err());
    }
}
