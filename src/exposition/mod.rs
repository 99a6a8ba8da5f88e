//! Store → the Prometheus text format 0.0.4, written into a caller-owned
//! writer.
//!
//! The page is planned once per scrape from the metric names and metadata
//! ([`family`]), then each family is written part by part through the
//! store's cursor ([`crate::store::Parts`]): a part's read lock is held only
//! while its series are copied into a buffer, and the buffer goes to the
//! writer between parts, never under a lock, in chunks of about
//! [`RenderOptions::chunk_bytes`].
//!
//! Invariants: every page parses with `promtool check metrics`, whatever was
//! accepted (family rules in [`family`]); a family's HELP and TYPE are written
//! only together with its first series, so a family with no live series never
//! appears (tested with `--series.ttl 0`, where no sweep removes empty names
//! for a while).

mod family;
mod text;

pub use text::write_float;

use std::io::{self, Write};

use crate::store::{SeriesRef, Store};

/// Whether exposed samples carry the timestamps they were pushed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimestampPolicy {
    /// Each sample carries the timestamp it was pushed with (milliseconds).
    Original,
    /// No timestamps: the scraper stamps samples with its scrape time.
    None,
}

/// How a page is rendered.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    /// Timestamp policy.
    pub timestamps: TimestampPolicy,
    /// The buffer goes to the writer once it holds this many bytes.
    pub chunk_bytes: usize,
}

/// The content type of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every live series into `out`, in writes of about
/// `opts.chunk_bytes` bytes (the last one shorter). Does not flush `out`.
///
/// # Errors
///
/// The first error `out` returns (e.g. the client went away); rendering
/// stops there.
pub fn render(store: &Store, opts: &RenderOptions, out: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(opts.chunk_bytes + 4096);
    let mut ts = itoa::Buffer::new();
    for family in family::plan(store) {
        let mut header_pending = true;
        for metric in &family.members {
            let mut parts = metric.parts();
            while parts.visit_next(|s: SeriesRef<'_>| {
                if header_pending {
                    header_pending = false;
                    text::write_header(
                        &mut buf,
                        &family.name,
                        family.help.as_deref(),
                        family.type_name,
                    );
                }
                buf.extend_from_slice(s.key);
                buf.push(b' ');
                write_float(&mut buf, s.sample.value);
                // Pushed series carry no timestamp, as on the Pushgateway's
                // page: the scraper stamps them, so they never look stale.
                if opts.timestamps == TimestampPolicy::Original && !s.traits.pushed() {
                    buf.push(b' ');
                    buf.extend_from_slice(ts.format(s.sample.timestamp_ms).as_bytes());
                }
                buf.push(b'\n');
            }) {
                if buf.len() >= opts.chunk_bytes {
                    out.write_all(&buf)?;
                    buf.clear();
                }
            }
        }
    }
    if !buf.is_empty() {
        out.write_all(&buf)?;
    }
    Ok(())
}
