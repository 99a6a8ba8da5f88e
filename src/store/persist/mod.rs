//! Snapshots of the store on disk (`--persistence.file`): everything that
//! gives the same `/metrics` page after a restart, written atomically and
//! read back with every byte checked before anything is applied.
//!
//! # Format, version 2
//!
//! All integers little-endian; `str` is a `u32` byte length and UTF-8 bytes.
//!
//! ```text
//! header (32 bytes)
//!   magic      8   b"PROMGATE"
//!   version    u32 2
//!   flags      u32 bit 0: the body is one zstd frame; other bits must be 0
//!   taken_at   i64 wall-clock time of the snapshot, Unix milliseconds
//!   body_len   u64 bytes of the body as stored (compressed or not)
//! body (body_len bytes; after decompression:)
//!   groups     i64 last push stamp (ms), u32 count, then per group:
//!                u32 label count, (str name, str value)* sorted by name, job included
//!                f64 push_time_seconds, f64 push_failure_time_seconds
//!                u32 age (seconds since its last push, at taken_at)
//!                u32 family count, then per family:
//!                  str name, u8 type, f64 pushed at (Unix seconds), u32 count, series*
//!   metadata   u32 count, then per family: str name, u8 type, str help, str unit, u32 age
//!   series     blocks of (u32 count > 0, series*), ended by a u32 0; only
//!              remote-written series (pushed ones are in their group)
//! trailer
//!   crc32      u32 CRC-32 (IEEE) of every byte before it, header included
//!
//! series = u32 key length, canonical key, u8 traits (`SeriesTraits`),
//!          u64 value bits, i64 timestamp (ms), u32 age (seconds since its
//!          last update, at taken_at), u8 1 if a native histogram follows
//!          (the series' latest sample; the value is its count), else 0
//! histogram = u32 schema (i32 bits), u32 reset hint (wire value),
//!          f64 zero threshold, f64 sum, i64 start timestamp (ms),
//!          count, zero count (each u8 0 integer | 1 float, u64 bits),
//!          then negative and positive: u32 n, (i32 offset, u32 length)*
//!          spans, u32 n, i64* deltas, u32 n, f64* counts (an integer
//!          histogram's deltas, a float one's counts);
//!          u32 n, f64* custom bounds. Validated when read
//!          (`NativeHistogram::from_raw`), timestamp the series'.
//! type   = 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram,
//!          5 summary, 6 info, 7 state set
//! ```
//!
//! Ages are relative to `taken_at`, a wall-clock time, so the TTL clock
//! counts the time promgate was down: an entry is loaded with its age plus
//! the time since `taken_at`, and dropped when that is past its TTL.
//!
//! **Version rule.** A change to anything above is a new version; a reader
//! refuses every version it was not written for (it never guesses), and a
//! refused file is moved aside, not overwritten. Flags a reader does not
//! know are refused the same way. Version 1 is version 2 without the byte
//! after each series record (it had no native histograms); this build
//! reads both and writes 2.
//!
//! **Consistency.** Pushed groups and their series are copied together
//! under the registry's lock, so a snapshot holds each group as one push
//! left it. Remote-written series are copied one shard at a time under its
//! read lock (the exposition's cursor), each shard as it was at one moment;
//! a write that lands during the snapshot may or may not be in it, as with
//! a scrape.
//!
//! **Loading** reads the whole file, checks magic, version, length and
//! checksum, and only then decodes, into a new store that is discarded
//! whole if anything in the body is wrong: a bad file is never half
//! loaded. Entries go in through the store's own write path, so
//! `--limits.series` and `--limits.metadata` hold for a loaded store as
//! for a written one (pushed groups first, each whole or not at all; then
//! metadata; then remote-written series).

mod format;
mod load;
mod save;

pub use load::{LoadOptions, LoadReport, load, load_bytes};
pub use save::{SaveError, SaveReport, temp_path};

use std::fmt;
use std::io;

/// Why a snapshot file was not loaded. The store starts empty instead.
#[derive(Debug)]
pub enum LoadError {
    /// The file exists but cannot be read.
    Io(io::Error),
    /// The file does not start with the magic bytes: not a snapshot.
    NotASnapshot,
    /// A version (or flags) this build does not read.
    UnsupportedVersion {
        /// The file's version.
        version: u32,
        /// The file's flags.
        flags: u32,
    },
    /// The file is shorter than its header says.
    Truncated {
        /// Bytes in the file.
        len: u64,
        /// Bytes the header announces.
        expected: u64,
    },
    /// The checksum does not match the content.
    ChecksumMismatch {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the content.
        computed: u32,
    },
    /// The content passed the checksum but does not decode (a file not
    /// written by promgate, or by a buggy one).
    Malformed(String),
}

impl LoadError {
    /// Every [`LoadError::reason`], for self-metrics created at zero.
    pub const REASONS: [&'static str; 6] = [
        "unreadable",
        "not_a_snapshot",
        "unsupported_version",
        "truncated",
        "checksum_mismatch",
        "malformed",
    ];

    /// A snake_case label value for self-metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LoadError::Io(_) => "unreadable",
            LoadError::NotASnapshot => "not_a_snapshot",
            LoadError::UnsupportedVersion { .. } => "unsupported_version",
            LoadError::Truncated { .. } => "truncated",
            LoadError::ChecksumMismatch { .. } => "checksum_mismatch",
            LoadError::Malformed(_) => "malformed",
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the file: {e}"),
            LoadError::NotASnapshot => f.write_str("not a promgate snapshot (no magic header)"),
            LoadError::UnsupportedVersion { version, flags } => write!(
                f,
                "snapshot version {version} (flags {flags:#x}) is not one this promgate reads (versions {:?}, flags {:#x})",
                format::READABLE,
                format::KNOWN_FLAGS
            ),
            LoadError::Truncated { len, expected } => {
                write!(f, "truncated: {len} bytes, the header announces {expected}")
            }
            LoadError::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: the file says {stored:#010x}, its content gives {computed:#010x}"
            ),
            LoadError::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

impl std::error::Error for LoadError {}

#[cfg(test)]
mod tests;
