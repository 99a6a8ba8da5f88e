//! The bytes of a snapshot: constants, the encoding of each field, and a
//! reader that refuses anything out of bounds (see the module docs above
//! for the layout).

use std::io::{self, Read, Write};

use super::LoadError;
use crate::model::{MetricType, Sample};

pub(super) const MAGIC: [u8; 8] = *b"PROMGATE";
pub(super) const VERSION: u32 = 1;
/// The body is one zstd frame.
pub(super) const FLAG_ZSTD: u32 = 1;
pub(super) const KNOWN_FLAGS: u32 = FLAG_ZSTD;
pub(super) const HEADER_LEN: usize = 32;
pub(super) const TRAILER_LEN: usize = 4;
/// Where `body_len` is in the header.
pub(super) const BODY_LEN_AT: usize = 24;
/// Longest string a reader accepts: far above any key or HELP the limits
/// let in (`--limits.help-length` and a key of 30 labels of the longest
/// values), low enough that a bad length cannot make it allocate much.
const MAX_STR: usize = 16 << 20;

/// The header's 32 bytes.
pub(super) fn header(flags: u32, taken_at_ms: i64, body_len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&flags.to_le_bytes());
    h[16..24].copy_from_slice(&taken_at_ms.to_le_bytes());
    h[BODY_LEN_AT..].copy_from_slice(&body_len.to_le_bytes());
    h
}

pub(super) fn type_code(t: MetricType) -> u8 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

fn type_of(code: u8) -> Option<MetricType> {
    Some(match code {
        0 => MetricType::Unknown,
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => return None,
    })
}

/// Appends fields to a buffer (the writer's side).
pub(super) trait Put {
    fn u8(&mut self, v: u8);
    fn u32(&mut self, v: u32);
    fn u64(&mut self, v: u64);
    fn str(&mut self, s: &str);
    fn series(&mut self, key: &[u8], traits: u8, sample: Sample, age: u32);
}

impl Put for Vec<u8> {
    fn u8(&mut self, v: u8) {
        self.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.extend_from_slice(s.as_bytes());
    }
    #[inline]
    fn series(&mut self, key: &[u8], traits: u8, sample: Sample, age: u32) {
        self.u32(key.len() as u32);
        self.extend_from_slice(key);
        self.push(traits);
        self.u64(sample.value.to_bits());
        self.u64(sample.timestamp_ms as u64);
        self.u32(age);
    }
}

/// Overwrites the `u32` at `at` in `buf` (a count known only afterwards).
pub(super) fn patch_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A writer that counts and checksums what passes through it.
pub(super) struct Summing<W> {
    pub(super) inner: W,
    pub(super) crc: crc32fast::Hasher,
    pub(super) len: u64,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One series record as read.
pub(super) struct SeriesRecord {
    pub(super) traits: u8,
    pub(super) sample: Sample,
    pub(super) age: u32,
}

/// Reads fields from the (decompressed) body; every failure is
/// [`LoadError::Malformed`] naming what could not be read.
pub(super) struct Reader<R> {
    inner: R,
    scratch: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub(super) fn new(inner: R) -> Self {
        Reader {
            inner,
            scratch: Vec::new(),
        }
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], LoadError> {
        let mut b = [0u8; N];
        self.inner
            .read_exact(&mut b)
            .map_err(|e| malformed(what, &e))?;
        Ok(b)
    }

    pub(super) fn u8(&mut self, what: &str) -> Result<u8, LoadError> {
        Ok(self.bytes::<1>(what)?[0])
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, LoadError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, LoadError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    pub(super) fn i64(&mut self, what: &str) -> Result<i64, LoadError> {
        Ok(i64::from_le_bytes(self.bytes(what)?))
    }

    pub(super) fn f64(&mut self, what: &str) -> Result<f64, LoadError> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    pub(super) fn metric_type(&mut self, what: &str) -> Result<MetricType, LoadError> {
        let code = self.u8(what)?;
        type_of(code)
            .ok_or_else(|| LoadError::Malformed(format!("{what}: unknown metric type {code}")))
    }

    /// A string, appended to `out`.
    pub(super) fn str_into(&mut self, what: &str, out: &mut String) -> Result<(), LoadError> {
        let len = self.u32(what)? as usize;
        if len > MAX_STR {
            return Err(LoadError::Malformed(format!(
                "{what}: a string of {len} bytes"
            )));
        }
        self.scratch.resize(len, 0);
        self.inner
            .read_exact(&mut self.scratch)
            .map_err(|e| malformed(what, &e))?;
        let s = std::str::from_utf8(&self.scratch)
            .map_err(|_| LoadError::Malformed(format!("{what}: not UTF-8")))?;
        out.push_str(s);
        Ok(())
    }

    pub(super) fn string(&mut self, what: &str) -> Result<String, LoadError> {
        let mut s = String::new();
        self.str_into(what, &mut s)?;
        Ok(s)
    }

    /// A series record, its key appended to `keys`.
    pub(super) fn series(&mut self, keys: &mut String) -> Result<SeriesRecord, LoadError> {
        self.str_into("series key", keys)?;
        let traits = self.u8("series traits")?;
        let value = self.f64("series value")?;
        let timestamp_ms = self.i64("series timestamp")?;
        let age = self.u32("series age")?;
        Ok(SeriesRecord {
            traits,
            sample: Sample {
                value,
                timestamp_ms,
            },
            age,
        })
    }

    /// Fails unless the body has been read to its end.
    pub(super) fn expect_end(mut self) -> Result<(), LoadError> {
        let mut probe = [0u8; 1];
        match self.inner.read(&mut probe) {
            Ok(0) => Ok(()),
            Ok(_) => Err(LoadError::Malformed(
                "bytes after the series section".into(),
            )),
            Err(e) => Err(malformed("the end of the body", &e)),
        }
    }
}

fn malformed(what: &str, e: &io::Error) -> LoadError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        LoadError::Malformed(format!("the body ends inside {what}"))
    } else {
        LoadError::Malformed(format!("{what}: {e}"))
    }
}
