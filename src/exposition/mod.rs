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

mod escaping;
mod family;
mod negotiate;
mod text;

pub use escaping::{Dropped, Escaping, escape_key};
pub use negotiate::{Format, Negotiated, negotiate};
pub use text::write_float;

use std::collections::HashMap;
use std::io::{self, Write};

use crate::model::SeriesTraits;
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
    /// How names outside the legacy character set are written ([`escaping`]).
    pub escaping: Escaping,
}

/// The content type of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a page held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Series lines written.
    pub series: u64,
    /// Series left off because their escaped form was another series' (the
    /// first kept: a series whose names needed no escaping, else the first
    /// met) or had two label names alike ([`Dropped::LabelCollision`]).
    pub dropped: u64,
}

/// Renders every live series into `out`, in writes of about
/// `opts.chunk_bytes` bytes (the last one shorter). Does not flush `out`.
///
/// Names outside the legacy set are written as `opts.escaping` says. Where
/// a family's escaped series could collide (a family with such a series, on
/// a page that escapes), its series without them are written first and an
/// escaped series equal to one already written is left off, counted in
/// [`PageStats::dropped`]: the page never holds one series twice.
///
/// # Errors
///
/// The first error `out` returns (e.g. the client went away); rendering
/// stops there.
pub fn render(store: &Store, opts: &RenderOptions, out: &mut impl Write) -> io::Result<PageStats> {
    let mut page = Page {
        buf: Vec::with_capacity(opts.chunk_bytes + 4096),
        ts: itoa::Buffer::new(),
        opts,
        stats: PageStats::default(),
    };
    for family in family::plan(store, opts.escaping) {
        let mut header_pending = true;
        if family.escapes {
            page.escaped_family(&family, &mut header_pending, out)?;
            continue;
        }
        for metric in &family.members {
            let mut parts = metric.view.parts();
            while parts.visit_next(|s: SeriesRef<'_>| {
                page.header(&family, &mut header_pending);
                if opts.escaping == Escaping::AllowUtf8 && s.key.first() == Some(&b'"') {
                    // Keys are UTF-8: `model::key` writes them as `String`s.
                    let key = std::str::from_utf8(s.key).unwrap_or_default();
                    let _ = escaping::write_key(&mut page.buf, key, Escaping::AllowUtf8);
                } else {
                    page.buf.extend_from_slice(s.key);
                }
                page.sample(s.sample, s.traits);
            }) {
                page.flush_if_full(out)?;
            }
        }
    }
    if !page.buf.is_empty() {
        out.write_all(&page.buf)?;
    }
    Ok(page.stats)
}

/// A page being written: its buffer and what it held.
struct Page<'o> {
    buf: Vec<u8>,
    ts: itoa::Buffer,
    opts: &'o RenderOptions,
    stats: PageStats,
}

impl Page<'_> {
    /// Writes the family's HELP and TYPE before its first series.
    fn header(&mut self, family: &family::Family, pending: &mut bool) {
        if std::mem::take(pending) {
            text::write_header(
                &mut self.buf,
                &family.name,
                family.help.as_deref(),
                family.type_name,
            );
        }
    }

    /// Ends a series line: the value, the timestamp, the newline.
    fn sample(&mut self, sample: crate::model::Sample, traits: SeriesTraits) {
        let buf = &mut self.buf;
        buf.push(b' ');
        write_float(buf, sample.value);
        // Pushed series carry no timestamp, as on the Pushgateway's
        // page: the scraper stamps them, so they never look stale.
        if self.opts.timestamps == TimestampPolicy::Original && !traits.pushed() {
            buf.push(b' ');
            buf.extend_from_slice(self.ts.format(sample.timestamp_ms).as_bytes());
        }
        buf.push(b'\n');
        self.stats.series += 1;
    }

    fn flush_if_full(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.buf.len() >= self.opts.chunk_bytes {
            out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// A family some of whose series are escaped: their lines are made
    /// first (bounded by the number of such series), then the others are
    /// written as they are, each taking the place of an escaped line equal
    /// to it, then the escaped lines left.
    fn escaped_family(
        &mut self,
        family: &family::Family,
        header_pending: &mut bool,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let scheme = self.opts.escaping;
        let mut escaped: Vec<(Vec<u8>, crate::model::Sample, SeriesTraits)> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut dropped = 0;
        for metric in &family.members {
            let mut parts = metric.view.parts();
            while parts.visit_next(|s: SeriesRef<'_>| {
                if !s.traits.utf8() {
                    return;
                }
                let mut line = Vec::with_capacity(s.key.len() + 16);
                let key = std::str::from_utf8(s.key).unwrap_or_default();
                if escaping::write_key(&mut line, key, scheme).is_err() {
                    dropped += 1;
                    return;
                }
                if index.contains_key(&line) {
                    dropped += 1;
                    return;
                }
                index.insert(line.clone(), escaped.len());
                escaped.push((line, s.sample, s.traits));
            }) {}
        }
        let mut taken = vec![false; escaped.len()];
        for metric in &family.members {
            let mut parts = metric.view.parts();
            while parts.visit_next(|s: SeriesRef<'_>| {
                if s.traits.utf8() {
                    return;
                }
                if let Some(&i) = index.get(s.key)
                    && !std::mem::replace(&mut taken[i], true)
                {
                    dropped += 1;
                }
                self.header(family, header_pending);
                self.buf.extend_from_slice(s.key);
                self.sample(s.sample, s.traits);
            }) {
                self.flush_if_full(out)?;
            }
        }
        for ((line, sample, traits), taken) in escaped.into_iter().zip(taken) {
            if taken {
                continue;
            }
            self.header(family, header_pending);
            self.buf.extend_from_slice(&line);
            self.sample(sample, traits);
            self.flush_if_full(out)?;
        }
        self.stats.dropped += dropped;
        Ok(())
    }
}
