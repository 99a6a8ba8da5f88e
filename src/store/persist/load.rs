//! Reading a snapshot back: every byte checked first, then decoded into a
//! new store through its own write path.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::LoadError;
use super::format::{self, Reader};
use crate::ingest::push::{Grouping, PushedFamily};
use crate::model::{KeySpan, Metadata, RejectReason, SeriesTraits, SeriesUpdate, WriteBatch};
use crate::store::groups::RestoredGroup;
use crate::store::{ApplyOutcome, CLOCK_START, Store, StoreLimits};

/// Remote-written series applied per request-sized batch.
const BATCH: usize = 4096;

/// How a snapshot is loaded.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// The limits of the new store.
    pub limits: StoreLimits,
    /// `--series.ttl`: remote-written series (and metadata of families
    /// with none left) older than this, downtime included, are dropped.
    pub series_ttl: Option<Duration>,
    /// `--push.ttl`: groups not pushed to for longer are dropped.
    pub push_ttl: Option<Duration>,
    /// The wall-clock time of the load, against which ages count.
    pub now: SystemTime,
}

/// What a load did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Live series in the loaded store (pushed ones included).
    pub series: usize,
    /// Pushed groups loaded.
    pub groups: usize,
    /// Metadata families loaded.
    pub metadata: usize,
    /// Series left out because their TTL (or their group's) had passed.
    pub expired_series: usize,
    /// Groups left out because `--push.ttl` had passed.
    pub expired_groups: usize,
    /// Series left out by `--limits.series` (a group's count whole).
    pub over_limit_series: usize,
    /// Metadata left out by `--limits.metadata`.
    pub over_limit_metadata: usize,
    /// When the snapshot was taken, Unix milliseconds.
    pub taken_at_ms: i64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// Loads the snapshot at `path` into a new store; `Ok(None)` when there is
/// no file (a first start).
///
/// # Errors
///
/// A [`LoadError`] when the file cannot be read or is not a whole,
/// well-formed snapshot of a version this build reads. Nothing is loaded
/// then.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Option<(Store, LoadReport)>, LoadError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    // Opening a FIFO would wait for a writer, and a device (a link to
    // /dev/zero) never ends: only a regular file is read.
    if !meta.is_file() {
        return Err(LoadError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut file = std::fs::File::open(path).map_err(LoadError::Io)?;
    // A file that is not a snapshot, or not of the size its header says, is
    // known by its header: the rest of it (however large) is not read.
    let mut bytes = Vec::with_capacity(format::HEADER_LEN);
    (&mut file)
        .take(format::HEADER_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(LoadError::Io)?;
    if bytes.len() == format::HEADER_LEN {
        check_header(&bytes, meta.len())?;
    } else {
        // Shorter than a header: `verify` below says why.
        return load_bytes(&bytes, opts).map(Some);
    }
    // Fallible: a file too large for memory is refused, never an abort
    // (which would be a crash loop on every start).
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    bytes
        .try_reserve_exact(len.saturating_sub(bytes.len()))
        .map_err(|e| LoadError::Io(io::Error::new(io::ErrorKind::OutOfMemory, e.to_string())))?;
    file.read_to_end(&mut bytes).map_err(LoadError::Io)?;
    load_bytes(&bytes, opts).map(Some)
}

/// The checks of [`verify`] that a header and the file's length settle.
fn check_header(header: &[u8], file_len: u64) -> Result<(), LoadError> {
    let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    let dword = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    if header[..format::MAGIC.len()] != format::MAGIC {
        return Err(LoadError::NotASnapshot);
    }
    let (version, flags) = (word(8), word(12));
    if !format::READABLE.contains(&version) || flags & !format::KNOWN_FLAGS != 0 {
        return Err(LoadError::UnsupportedVersion { version, flags });
    }
    let expected = (format::HEADER_LEN as u64)
        .saturating_add(dword(format::BODY_LEN_AT))
        .saturating_add(format::TRAILER_LEN as u64);
    match file_len.cmp(&expected) {
        std::cmp::Ordering::Less => Err(LoadError::Truncated {
            len: file_len,
            expected,
        }),
        std::cmp::Ordering::Greater => Err(LoadError::Malformed(format!(
            "{} bytes after the checksum",
            file_len - expected
        ))),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Checks the framing of `file` (magic, version, length, checksum) and
/// returns the stored body and the header's version, flags and time.
fn verify(file: &[u8]) -> Result<(&[u8], u32, u32, i64), LoadError> {
    let word = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().expect("4 bytes"));
    let dword = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().expect("8 bytes"));
    let magic = format::MAGIC.len();
    if file.len() < magic {
        if format::MAGIC.starts_with(file) {
            return Err(LoadError::Truncated {
                len: file.len() as u64,
                expected: (format::HEADER_LEN + format::TRAILER_LEN) as u64,
            });
        }
        return Err(LoadError::NotASnapshot);
    }
    if file[..magic] != format::MAGIC {
        return Err(LoadError::NotASnapshot);
    }
    let truncated = |expected: usize| LoadError::Truncated {
        len: file.len() as u64,
        expected: expected as u64,
    };
    if file.len() < 16 {
        return Err(truncated(format::HEADER_LEN + format::TRAILER_LEN));
    }
    let (version, flags) = (word(8), word(12));
    if !format::READABLE.contains(&version) || flags & !format::KNOWN_FLAGS != 0 {
        return Err(LoadError::UnsupportedVersion { version, flags });
    }
    if file.len() < format::HEADER_LEN {
        return Err(truncated(format::HEADER_LEN + format::TRAILER_LEN));
    }
    let taken_at_ms = dword(16) as i64;
    let body_len = dword(format::BODY_LEN_AT);
    let expected = (format::HEADER_LEN as u64)
        .saturating_add(body_len)
        .saturating_add(format::TRAILER_LEN as u64);
    if (file.len() as u64) < expected {
        return Err(LoadError::Truncated {
            len: file.len() as u64,
            expected,
        });
    }
    if file.len() as u64 > expected {
        return Err(LoadError::Malformed(format!(
            "{} bytes after the checksum",
            file.len() as u64 - expected
        )));
    }
    let end = file.len() - format::TRAILER_LEN;
    let stored = word(end);
    let computed = crc32fast::hash(&file[..end]);
    if stored != computed {
        return Err(LoadError::ChecksumMismatch { stored, computed });
    }
    Ok((&file[format::HEADER_LEN..end], version, flags, taken_at_ms))
}

/// [`load`] from the file's bytes.
///
/// # Errors
///
/// As [`load`].
pub fn load_bytes(file: &[u8], opts: &LoadOptions) -> Result<(Store, LoadReport), LoadError> {
    let (body, version, flags, taken_at_ms) = verify(file)?;
    let store = Store::new(opts.limits);
    let mut report = LoadReport {
        taken_at_ms,
        bytes: file.len() as u64,
        ..LoadReport::default()
    };
    let reader: Box<dyn Read + '_> = if flags & format::FLAG_ZSTD != 0 {
        let z = zstd::Decoder::with_buffer(body)
            .map_err(|e| LoadError::Malformed(format!("zstd: {e}")))?;
        Box::new(io::BufReader::with_capacity(1 << 16, z))
    } else {
        Box::new(body)
    };
    let mut loader = Loader {
        store: &store,
        reader: Reader::new(reader, version),
        report: &mut report,
        now: store.now(),
        downtime: downtime(opts.now, taken_at_ms),
        series_ttl: opts.series_ttl.map(secs),
        push_ttl: opts.push_ttl.map(secs),
    };
    loader.groups()?;
    loader.metadata()?;
    loader.series()?;
    loader.reader.expect_end()?;
    // Metadata past the TTL stays only while its family has live series:
    // the sweep's own rule, run once now.
    store.sweep(opts.series_ttl);
    report.series = store.live_series();
    report.metadata = store.metadata_len();
    report.groups = store.group_count();
    Ok((store, report))
}

fn secs(d: Duration) -> u32 {
    d.as_secs().min(u64::from(u32::MAX)) as u32
}

/// Whole seconds from `taken_at_ms` to `now`; 0 if the clock went back.
fn downtime(now: SystemTime, taken_at_ms: i64) -> u32 {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    (now_ms.saturating_sub(taken_at_ms).max(0) / 1000).min(i64::from(u32::MAX)) as u32
}

struct Loader<'a, R> {
    store: &'a Store,
    reader: Reader<R>,
    report: &'a mut LoadReport,
    /// The new store's clock.
    now: u32,
    /// Seconds between the snapshot and now, added to every age.
    downtime: u32,
    series_ttl: Option<u32>,
    push_ttl: Option<u32>,
}

impl<R: Read> Loader<'_, R> {
    /// An entry's age now, and whether it is past `ttl` by the sweep's
    /// rule (`age > ttl`).
    fn age(&self, age: u32, ttl: Option<u32>) -> (u32, bool) {
        let age = age.saturating_add(self.downtime);
        (age, ttl.is_some_and(|ttl| age > ttl))
    }

    /// The store-clock second of an update `age` seconds ago.
    fn touched(&self, age: u32) -> u32 {
        self.now - age.min(CLOCK_START)
    }

    fn count_rejections(&mut self, out: &ApplyOutcome) {
        for &(reason, n) in &out.rejected.series {
            match reason {
                RejectReason::SeriesLimit => self.report.over_limit_series += n as usize,
                RejectReason::MetadataLimit => self.report.over_limit_metadata += n as usize,
                _ => {}
            }
        }
    }

    fn groups(&mut self) -> Result<(), LoadError> {
        let r = &mut self.reader;
        let last_stamp_ms = r.i64("the last push stamp")?;
        let count = r.u32("the group count")?;
        for _ in 0..count {
            let r = &mut self.reader;
            let labels = r.u32("a group's label count")?;
            let mut job = None;
            let mut others = Vec::new();
            for _ in 0..labels {
                let name = r.string("a grouping label name")?;
                let value = r.string("a grouping label value")?;
                if name == "job" {
                    job = Some(value);
                } else {
                    others.push((name, value));
                }
            }
            let push_time = r.f64("a push time")?;
            let push_failure_time = r.f64("a push failure time")?;
            let age = r.u32("a group's age")?;
            let families = r.u32("a group's family count")?;
            let mut batch = WriteBatch::default();
            // A count is only trusted as far as the entries that follow it:
            // a huge one must fail as "the body ends", not abort on allocation.
            let mut restored = Vec::with_capacity((families as usize).min(1024));
            for _ in 0..families {
                let name = r.string("a pushed family name")?;
                let metric_type = r.metric_type("a pushed family type")?;
                let pushed_at = r.f64("a family's push time")?;
                let n = r.u32("a pushed family's series count")?;
                let start = batch.series.len();
                for _ in 0..n {
                    push_series(r, &mut batch)?;
                }
                let family = PushedFamily {
                    name,
                    metric_type,
                    series: start..batch.series.len(),
                };
                restored.push((family, pushed_at));
            }
            let grouping = Grouping::new(job.unwrap_or_default(), others)
                .map_err(|e| LoadError::Malformed(format!("a grouping key: {e}")))?;
            let (age, expired) = self.age(age, self.push_ttl);
            if expired {
                self.report.expired_groups += 1;
                self.report.expired_series += batch.series.len();
                continue;
            }
            let n = batch.series.len();
            let group = RestoredGroup {
                grouping,
                push_time,
                push_failure_time,
                families: restored,
                batch,
            };
            if !self
                .store
                .restore_group(group, self.touched(age))
                .map_err(LoadError::Malformed)?
            {
                self.report.over_limit_series += n;
            }
        }
        let mut reg = self.store.groups.lock();
        reg.last_stamp_ms = reg.last_stamp_ms.max(last_stamp_ms);
        Ok(())
    }

    fn metadata(&mut self) -> Result<(), LoadError> {
        let count = self.reader.u32("the metadata count")?;
        let mut out = ApplyOutcome::default();
        for _ in 0..count {
            let r = &mut self.reader;
            let name = r.string("a metadata family name")?;
            let metric_type = r.metric_type("a metadata type")?;
            let help = r.string("a HELP text")?;
            let unit = r.string("a unit")?;
            let age = r.u32("a metadata age")?;
            // Metadata past the TTL is kept here: the sweep after the load
            // keeps it while its family has live series, as it does always.
            let (age, _) = self.age(age, None);
            let md = Metadata {
                metric_type,
                help,
                unit,
            };
            self.store
                .apply_metadata(&name, &md, self.touched(age), &mut out);
        }
        self.count_rejections(&out);
        Ok(())
    }

    fn series(&mut self) -> Result<(), LoadError> {
        // Series are applied in batches of one age each, so that each gets
        // its own TTL clock through the ordinary write path.
        let mut by_age: HashMap<u32, WriteBatch> = HashMap::new();
        let mut key = String::new();
        loop {
            let count = self.reader.u32("a series block's count")?;
            if count == 0 {
                break;
            }
            for _ in 0..count {
                key.clear();
                let record = self.reader.series(&mut key)?;
                if record.traits & SeriesTraits::PUSHED != 0 {
                    return Err(LoadError::Malformed(format!(
                        "pushed series {key} outside its group"
                    )));
                }
                let (age, expired) = self.age(record.age, self.series_ttl);
                if expired {
                    self.report.expired_series += 1;
                    continue;
                }
                let batch = by_age.entry(age).or_default();
                add_series(batch, &key, record.traits, record.sample, record.histogram)?;
                if batch.series.len() >= BATCH {
                    let out = self.store.apply_at(batch, self.touched(age));
                    self.count_rejections(&out);
                    batch.clear();
                }
            }
        }
        for (age, batch) in by_age {
            let out = self.store.apply_at(&batch, self.touched(age));
            self.count_rejections(&out);
        }
        Ok(())
    }
}

/// Reads one pushed series into `batch`.
fn push_series<R: Read>(r: &mut Reader<R>, batch: &mut WriteBatch) -> Result<(), LoadError> {
    let mut key = String::new();
    let record = r.series(&mut key)?;
    add_series(batch, &key, record.traits, record.sample, record.histogram)
}

/// Appends a series with canonical key `key` to `batch`, its latest
/// sample `sample` or the native histogram `histogram` (whose count
/// `sample` holds).
fn add_series(
    batch: &mut WriteBatch,
    key: &str,
    traits: u8,
    sample: crate::model::Sample,
    histogram: Option<crate::model::NativeHistogram>,
) -> Result<(), LoadError> {
    let Some((name, _)) = crate::model::split_key(key) else {
        return Err(LoadError::Malformed(format!(
            "series key {key:?} has no name"
        )));
    };
    let name_len = name.text.len() as u32;
    if name_len == 0 {
        return Err(LoadError::Malformed(format!(
            "series key {key:?} has no name"
        )));
    }
    let start = batch.keys.len() as u32;
    batch.keys.push_str(key);
    batch.series.push(SeriesUpdate {
        key: KeySpan {
            start,
            len: key.len() as u32,
            name_len,
            traits: SeriesTraits::from_bits(traits),
        },
        latest: sample,
        samples: 1,
        exemplars: 0,
        exemplar: crate::model::NO_EXEMPLAR,
        histogram: crate::model::NO_HISTOGRAM,
    });
    if let Some(h) = histogram {
        let update = batch.series.last_mut().expect("just pushed");
        update.histogram = batch.histograms.len() as u32;
        batch.histograms.push(crate::model::BatchHistogram {
            written: 1,
            latest: Some(h),
        });
    }
    Ok(())
}
