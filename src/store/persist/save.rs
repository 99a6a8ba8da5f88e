//! Writing a snapshot: copied from the store one lock at a time, encoded
//! and written with no lock held, then put in place atomically.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::format::{self, Put, Summing};
use crate::store::Store;

/// zstd level of the body. Level 1 is the fastest of the regular levels;
/// at a million series it makes the file ~10× smaller than the raw body
/// in about the time the raw body takes to reach the disk (README,
/// Performance).
const ZSTD_LEVEL: i32 = 1;

/// Is the body compressed? (The format reads both; this is what is
/// written.)
const COMPRESS: bool = true;

/// What a snapshot held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Series written (remote-written and pushed).
    pub series: usize,
    /// Pushed groups written.
    pub groups: usize,
    /// Metadata families written.
    pub metadata: usize,
    /// Bytes of the file.
    pub bytes: u64,
}

/// Why a snapshot was not put in place: the step that failed and the OS's
/// reason. The last good file is unchanged (unless only the final fsync of
/// the directory failed: then the new file is in place but may not survive
/// a power cut).
#[derive(Debug)]
pub struct SaveError {
    /// What was being done: `create`, `write`, `fsync`, `rename`, `fsync directory`.
    pub step: &'static str,
    /// The file or directory it was done to.
    pub path: PathBuf,
    /// Why it failed.
    pub source: io::Error,
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.step,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The temporary file a snapshot of `path` is written to before it is
/// renamed over `path`: `<path>.tmp`, in the same directory (a rename is
/// atomic only within one file system).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

impl Store {
    /// Writes a snapshot to `path` atomically: into [`temp_path`], fsync,
    /// rename over `path`, fsync of the directory. Blocking (file I/O and
    /// the encoding of every series): call it from a thread of its own.
    /// Writers are held up by one shard's copy at a time, pushes for the
    /// copy of the registry.
    ///
    /// # Errors
    ///
    /// A [`SaveError`] naming the step that failed; the temporary file is
    /// removed and `path` is left as it was.
    pub fn save_snapshot(&self, path: &Path) -> Result<SaveReport, SaveError> {
        let tmp = temp_path(path);
        let fail = |step: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| SaveError { step, path, source }
        };
        let written = (|| {
            // Whatever is in the way that is not a directory goes first, and
            // the file is created new: a symlink left at `.tmp` is never
            // followed (O_EXCL), and a FIFO never blocks the open.
            if fs::symlink_metadata(&tmp).is_ok_and(|m| !m.is_dir()) {
                fs::remove_file(&tmp).map_err(fail("create", &tmp))?;
            }
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(fail("create", &tmp))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let mut report = self
                .write_snapshot(&mut out, SystemTime::now(), COMPRESS)
                .map_err(fail("write", &tmp))?;
            let file = out
                .into_inner()
                .map_err(|e| fail("write", &tmp)(e.into_error()))?;
            file.sync_all().map_err(fail("fsync", &tmp))?;
            report.bytes = file.metadata().map_err(fail("write", &tmp))?.len();
            Ok(report)
        })();
        let report = match written.and_then(|report| {
            fs::rename(&tmp, path).map_err(fail("rename", &tmp))?;
            Ok(report)
        }) {
            Ok(report) => report,
            Err(e) => {
                // Not a directory: one in the way is not ours to remove.
                if fs::symlink_metadata(&tmp).is_ok_and(|m| !m.is_dir()) {
                    let _ = fs::remove_file(&tmp);
                }
                return Err(e);
            }
        };
        // The rename is durable once the directory entry is.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail("fsync directory", dir))?;
        Ok(report)
    }

    /// Encodes a snapshot taken at `taken_at` into `out` (the format of the
    /// module docs), its body one zstd frame when `compress` (what
    /// [`Store::save_snapshot`] writes) or raw; `bytes` in the report stays 0.
    ///
    /// # Errors
    ///
    /// What `out` returns.
    pub fn write_snapshot<W: Write + Seek>(
        &self,
        mut out: W,
        taken_at: SystemTime,
        compress: bool,
    ) -> io::Result<SaveReport> {
        let taken_at_ms = taken_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let flags = if compress { format::FLAG_ZSTD } else { 0 };
        let start = out.stream_position()?;
        out.write_all(&format::header(flags, taken_at_ms, 0))?;
        let body = Summing {
            inner: &mut out,
            crc: crc32fast::Hasher::new(),
            len: 0,
        };
        let (report, body) = if compress {
            let mut z = zstd::Encoder::new(body, ZSTD_LEVEL)?;
            let report = self.write_body(&mut z)?;
            (report, z.finish()?)
        } else {
            let mut body = body;
            let report = self.write_body(&mut body)?;
            (report, body)
        };
        let (body_len, body_crc) = (body.len, body.crc);
        // The checksum covers the header as finally written, then the body.
        let header = format::header(flags, taken_at_ms, body_len);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.combine(&body_crc);
        out.write_all(&crc.finalize().to_le_bytes())?;
        let end = out.stream_position()?;
        out.seek(SeekFrom::Start(start))?;
        out.write_all(&header)?;
        out.seek(SeekFrom::Start(end))?;
        out.flush()?;
        Ok(report)
    }

    /// The body's three sections, each copied under its lock into `buf`
    /// and written to `out` after the lock is released.
    fn write_body(&self, out: &mut impl Write) -> io::Result<SaveReport> {
        let mut report = SaveReport::default();
        let now = self.now();
        let age = |touched: u32| now.saturating_sub(touched);
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);

        // Pushed groups and their series, as one push or delete left them:
        // pushes hold the registry's lock while they change their series.
        {
            let reg = self.groups.lock();
            buf.u64(reg.last_stamp_ms as u64);
            buf.u32(reg.groups.len() as u32);
            for g in reg.groups.values() {
                let labels = g.grouping.labels();
                buf.u32(labels.len() as u32);
                for (name, value) in labels {
                    buf.str(name);
                    buf.str(value);
                }
                buf.u64(g.push_time.to_bits());
                buf.u64(g.push_failure_time.to_bits());
                buf.u32(age(g.touched));
                buf.u32(g.families.len() as u32);
                for (name, f) in &g.families {
                    buf.str(name);
                    buf.u8(format::type_code(f.metric_type));
                    buf.u64(f.pushed_at.to_bits());
                    let count_at = buf.len();
                    buf.u32(0);
                    let mut count = 0;
                    for key in f.keys.iter() {
                        // A key a stale marker removed is no longer live:
                        // it is left out, as the query API leaves it out.
                        let found = self.find(key, |e, extras| {
                            buf.series(e.key(), e.traits().bits(), e.sample(), age(g.touched));
                            buf.histogram(extras.histogram(e));
                        });
                        count += u32::from(found.is_some());
                    }
                    format::patch_u32(&mut buf, count_at, count);
                    report.series += count as usize;
                }
            }
            report.groups = reg.groups.len();
        }
        out.write_all(&buf)?;
        buf.clear();

        // Metadata: small, one DashMap shard lock at a time.
        let metadata: Vec<_> = self
            .metadata
            .iter()
            .map(|r| (r.key().clone(), r.value().0.clone(), r.value().1))
            .collect();
        buf.u32(metadata.len() as u32);
        for (name, md, touched) in &metadata {
            buf.str(name);
            buf.u8(format::type_code(md.metric_type));
            buf.str(&md.help);
            buf.str(&md.unit);
            buf.u32(age(*touched));
        }
        report.metadata = metadata.len();
        out.write_all(&buf)?;

        // Remote-written series, one shard's copy at a time.
        for metric in self.metrics() {
            let mut parts = metric.parts();
            loop {
                buf.clear();
                buf.u32(0);
                let mut count = 0u32;
                let more = parts.visit_next_entries(|e, extras| {
                    let traits = e.traits();
                    if !traits.pushed() {
                        buf.series(e.key(), traits.bits(), e.sample(), age(e.touched()));
                        buf.histogram(extras.histogram(e));
                        count += 1;
                    }
                });
                if !more {
                    break;
                }
                if count > 0 {
                    format::patch_u32(&mut buf, 0, count);
                    out.write_all(&buf)?;
                    report.series += count as usize;
                }
            }
        }
        out.write_all(&0u32.to_le_bytes())?;
        Ok(report)
    }
}
