//! The bytes of a snapshot: constants, the encoding of each field, and a
//! reader that refuses anything out of bounds (see the module docs above
//! for the layout).

use std::io::{self, Read, Write};

use super::LoadError;
use crate::model::histogram::{RawHistogram, Span, WireCount};
use crate::model::{MetricType, NativeHistogram, Sample};

pub(super) const MAGIC: [u8; 8] = *b"PROMGATE";
/// The version written.
pub(super) const VERSION: u32 = 2;
/// The versions read: 1 is 2 without native histograms (no byte after a
/// series record).
pub(super) const READABLE: [u32; 2] = [1, 2];
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
    fn histogram(&mut self, h: Option<&NativeHistogram>);
}

/// Writes a wire count: its kind (0 integer, 1 float), then its bits.
fn put_count(out: &mut Vec<u8>, c: Option<WireCount>) {
    match c {
        Some(WireCount::Float(f)) => {
            out.u8(1);
            out.u64(f.to_bits());
        }
        Some(WireCount::Int(i)) => {
            out.u8(0);
            out.u64(i);
        }
        None => {
            out.u8(0);
            out.u64(0);
        }
    }
}

fn put_spans(out: &mut Vec<u8>, spans: &[Span]) {
    out.u32(spans.len() as u32);
    for s in spans {
        out.u32(s.offset as u32);
        out.u32(s.length);
    }
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
    /// After a series record (version 2): 0, or 1 and the native histogram
    /// that is the series' latest sample (its timestamp the record's).
    fn histogram(&mut self, h: Option<&NativeHistogram>) {
        let Some(h) = h else {
            self.push(0);
            return;
        };
        self.push(1);
        let raw = h.to_raw();
        self.u32(raw.schema as u32);
        self.u32(raw.reset_hint as u32);
        self.u64(raw.zero_threshold.to_bits());
        self.u64(raw.sum.to_bits());
        self.u64(raw.start_timestamp_ms as u64);
        put_count(self, raw.count);
        put_count(self, raw.zero_count);
        for (spans, deltas, counts) in [
            (
                &raw.negative_spans,
                &raw.negative_deltas,
                &raw.negative_counts,
            ),
            (
                &raw.positive_spans,
                &raw.positive_deltas,
                &raw.positive_counts,
            ),
        ] {
            put_spans(self, spans);
            self.u32(deltas.len() as u32);
            for &d in deltas {
                self.u64(d as u64);
            }
            self.u32(counts.len() as u32);
            for &c in counts {
                self.u64(c.to_bits());
            }
        }
        self.u32(raw.custom_values.len() as u32);
        for &v in &raw.custom_values {
            self.u64(v.to_bits());
        }
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
    /// The native histogram that is its latest sample (version 2).
    pub(super) histogram: Option<NativeHistogram>,
}

/// Reads fields from the (decompressed) body; every failure is
/// [`LoadError::Malformed`] naming what could not be read.
pub(super) struct Reader<R> {
    inner: R,
    scratch: Vec<u8>,
    /// The file's version, one of [`READABLE`].
    version: u32,
}

impl<R: Read> Reader<R> {
    pub(super) fn new(inner: R, version: u32) -> Self {
        Reader {
            inner,
            scratch: Vec::new(),
            version,
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
        let histogram = if self.version >= 2 {
            self.histogram(timestamp_ms)?
        } else {
            None
        };
        Ok(SeriesRecord {
            traits,
            sample: Sample {
                value,
                timestamp_ms,
            },
            age,
            histogram,
        })
    }

    /// A count as [`Put::histogram`] writes it.
    fn count(&mut self, what: &str) -> Result<WireCount, LoadError> {
        let kind = self.u8(what)?;
        let bits = self.u64(what)?;
        match kind {
            0 => Ok(WireCount::Int(bits)),
            1 => Ok(WireCount::Float(f64::from_bits(bits))),
            k => Err(LoadError::Malformed(format!("{what}: count kind {k}"))),
        }
    }

    /// A list's length: only trusted as far as the entries that follow it,
    /// so what is reserved for it is bounded.
    fn list<T>(&mut self, what: &str) -> Result<(u32, Vec<T>), LoadError> {
        let n = self.u32(what)?;
        Ok((n, Vec::with_capacity((n as usize).min(1024))))
    }

    fn spans(&mut self) -> Result<Vec<Span>, LoadError> {
        let (n, mut out) = self.list("a histogram's span count")?;
        for _ in 0..n {
            out.push(Span {
                offset: self.u32("a span offset")? as i32,
                length: self.u32("a span length")?,
            });
        }
        Ok(out)
    }

    /// After a series record (version 2): its native histogram, if any,
    /// stamped `timestamp_ms`, validated as one received.
    fn histogram(&mut self, timestamp_ms: i64) -> Result<Option<NativeHistogram>, LoadError> {
        match self.u8("a series' histogram flag")? {
            0 => return Ok(None),
            1 => {}
            f => {
                return Err(LoadError::Malformed(format!(
                    "a series' histogram flag {f}"
                )));
            }
        }
        let mut raw = RawHistogram {
            schema: self.u32("a histogram schema")? as i32,
            reset_hint: self.u32("a histogram reset hint")? as i32,
            zero_threshold: self.f64("a histogram zero threshold")?,
            sum: self.f64("a histogram sum")?,
            start_timestamp_ms: self.i64("a histogram start")?,
            count: Some(self.count("a histogram count")?),
            zero_count: Some(self.count("a histogram zero count")?),
            timestamp_ms,
            ..RawHistogram::default()
        };
        for negative in [true, false] {
            let spans = self.spans()?;
            let (n, mut deltas) = self.list("a histogram's delta count")?;
            for _ in 0..n {
                deltas.push(self.i64("a bucket delta")?);
            }
            let (n, mut counts) = self.list("a histogram's bucket count")?;
            for _ in 0..n {
                counts.push(self.f64("a bucket count")?);
            }
            if negative {
                (raw.negative_spans, raw.negative_deltas, raw.negative_counts) =
                    (spans, deltas, counts);
            } else {
                (raw.positive_spans, raw.positive_deltas, raw.positive_counts) =
                    (spans, deltas, counts);
            }
        }
        let (n, mut custom) = self.list("a histogram's custom bound count")?;
        for _ in 0..n {
            custom.push(self.f64("a custom bound")?);
        }
        raw.custom_values = custom;
        NativeHistogram::from_raw(&raw)
            .map(Some)
            .map_err(|e| LoadError::Malformed(format!("a native histogram: {e}")))
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
