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
mod openmetrics;
mod points;
mod protobuf;
mod text;

pub use escaping::{Dropped, Escaping, escape_key};
pub use negotiate::{Format, Negotiated, negotiate};
pub use openmetrics::render as render_openmetrics;
pub use protobuf::render as render_protobuf;
pub use text::write_float;

use std::collections::HashMap;
use std::io::{self, Write};

use crate::model::{Sample, SeriesTraits};
use crate::store::{ExemplarRef, SeriesRef, Store};

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
    /// met), had two label names alike or a label name starting with `__`
    /// ([`Dropped`]).
    pub dropped: u64,
    /// Samples left off an OpenMetrics page because the format forbids
    /// their value there (a NaN or negative counter).
    pub invalid: u64,
    /// Series written with escaped names (a scheme other than
    /// [`Escaping::AllowUtf8`]).
    pub escaped: u64,
    /// Exemplars written (OpenMetrics pages, on counters and typed
    /// histograms' buckets).
    pub exemplars: u64,
    /// Exemplars left off because escaping their label names for the page
    /// broke a rule (two names alike, a `__` name, over 128 characters), or
    /// their labels hold an escaped quote (which `prometheus_client`'s
    /// parser cannot read there).
    pub exemplars_dropped: u64,
}

/// What [`visit_family`] left off or rewrote.
#[derive(Clone, Copy, Debug, Default)]
struct Visited {
    dropped: u64,
    escaped: u64,
}

impl PageStats {
    fn add(&mut self, v: Visited) {
        self.dropped += v.dropped;
        self.escaped += v.escaped;
    }
}

/// Renders every live series into `out` in the text format (0.0.4, or
/// 1.0.0 with quoted names when `opts.escaping` is
/// [`Escaping::AllowUtf8`]), in writes of about `opts.chunk_bytes` bytes
/// (the last one shorter). Does not flush `out`.
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
    let mut page = Page::new(opts);
    let mut visited = Visited::default();
    for family in family::plan(store, opts.escaping) {
        let mut sink = TextFamily {
            page: &mut page,
            out,
            family: &family,
            header_pending: true,
        };
        visit_family(&family, opts.escaping, &mut visited, &mut sink)?;
    }
    page.stats.add(visited);
    page.finish(out)
}

/// One family of a text page being written.
struct TextFamily<'a, 'o, W> {
    page: &'a mut Page<'o>,
    out: &'a mut W,
    family: &'a family::Family,
    header_pending: bool,
}

impl<W: Write> Sink for TextFamily<'_, '_, W> {
    #[inline(always)]
    fn series(&mut self, line: Line<'_>) {
        if std::mem::take(&mut self.header_pending) {
            text::write_header(
                &mut self.page.buf,
                &self.family.name,
                self.family.help.as_deref(),
                self.family.type_name,
            );
        }
        self.page.buf.extend_from_slice(line.prefix);
        self.page.sample(line.sample, line.traits);
    }

    fn part_end(&mut self) -> io::Result<()> {
        self.page.flush_if_full(self.out)
    }
}

/// A page being written: its buffer and what it held.
struct Page<'o> {
    buf: Vec<u8>,
    ts: itoa::Buffer,
    opts: &'o RenderOptions,
    stats: PageStats,
}

impl<'o> Page<'o> {
    fn new(opts: &'o RenderOptions) -> Self {
        Page {
            buf: Vec::with_capacity(opts.chunk_bytes + 4096),
            ts: itoa::Buffer::new(),
            opts,
            stats: PageStats::default(),
        }
    }

    /// Ends a series line of the text format: the value, the timestamp
    /// (milliseconds), the newline.
    #[inline(always)]
    fn sample(&mut self, sample: Sample, traits: SeriesTraits) {
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

    fn finish(self, out: &mut impl Write) -> io::Result<PageStats> {
        if !self.buf.is_empty() {
            out.write_all(&self.buf)?;
        }
        Ok(self.stats)
    }
}

/// One series of a family as a page writes it.
struct Line<'a> {
    /// The series as the page names it (escaped, or in the quoted syntax).
    pub prefix: &'a [u8],
    /// The store's canonical key.
    pub key: &'a [u8],
    /// Which of the family's members it is.
    pub member: usize,
    pub sample: Sample,
    pub traits: SeriesTraits,
    /// The series' latest exemplar, labels as the store keeps them.
    pub exemplar: Option<ExemplarRef<'a>>,
}

/// What a renderer does with what [`visit_family`] hands it.
trait Sink {
    /// One series. Infallible: it only goes into the page's buffer.
    fn series(&mut self, line: Line<'_>);
    /// A part of the store was read and its lock released: a place to
    /// write out.
    fn part_end(&mut self) -> io::Result<()>;
}

/// Hands `sink` every series of `family` as a page escaped by `scheme`
/// shows it: keys in the legacy character set as they are; a quoted metric
/// name moved into the braces for [`Escaping::AllowUtf8`]; names escaped
/// for the other schemes, where the family's series without escaped names
/// come first, and an escaped series that equals one already handed over
/// (or breaks a label rule, [`Dropped`]) is left out; both counted in
/// `visited`. Stops at the first error `part_end` returns.
fn visit_family(
    family: &family::Family,
    scheme: Escaping,
    visited: &mut Visited,
    sink: &mut impl Sink,
) -> io::Result<()> {
    if !family.escapes {
        let mut quoted = Vec::new();
        for (member, metric) in family.members.iter().enumerate() {
            let mut parts = metric.view.parts();
            while parts.visit_next(|s: SeriesRef<'_>| {
                let prefix = if scheme == Escaping::AllowUtf8 && s.key.first() == Some(&b'"') {
                    quoted.clear();
                    // Keys are UTF-8: `model::key` writes them as `String`s.
                    let key = std::str::from_utf8(s.key).unwrap_or_default();
                    let _ = escaping::write_key(&mut quoted, key, Escaping::AllowUtf8);
                    &quoted[..]
                } else {
                    s.key
                };
                sink.series(Line {
                    prefix,
                    key: s.key,
                    member,
                    sample: s.sample,
                    traits: s.traits,
                    exemplar: s.exemplar,
                });
            }) {
                sink.part_end()?;
            }
        }
        return Ok(());
    }
    // Escaped lines are made first (bounded by the number of such series),
    // then the others go out as they are, each taking the place of an
    // escaped line equal to it, then the escaped lines left.
    struct Escaped {
        prefix: Vec<u8>,
        key: Box<[u8]>,
        member: usize,
        sample: Sample,
        traits: SeriesTraits,
        exemplar: Option<(Box<str>, f64, Option<i64>)>,
    }
    let mut escaped: Vec<Escaped> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for (member, metric) in family.members.iter().enumerate() {
        let mut parts = metric.view.parts();
        while parts.visit_next(|s: SeriesRef<'_>| {
            if !s.traits.utf8() {
                return;
            }
            let mut prefix = Vec::with_capacity(s.key.len() + 16);
            let key = std::str::from_utf8(s.key).unwrap_or_default();
            if escaping::write_key(&mut prefix, key, scheme).is_err() || index.contains_key(&prefix)
            {
                visited.dropped += 1;
                return;
            }
            index.insert(prefix.clone(), escaped.len());
            escaped.push(Escaped {
                prefix,
                key: s.key.into(),
                member,
                sample: s.sample,
                traits: s.traits,
                exemplar: s
                    .exemplar
                    .map(|e| (e.labels.into(), e.value, e.timestamp_ms)),
            });
        }) {}
    }
    let mut taken = vec![false; escaped.len()];
    for (member, metric) in family.members.iter().enumerate() {
        let mut parts = metric.view.parts();
        while parts.visit_next(|s: SeriesRef<'_>| {
            if s.traits.utf8() {
                return;
            }
            if let Some(&i) = index.get(s.key)
                && !std::mem::replace(&mut taken[i], true)
            {
                visited.dropped += 1;
            }
            sink.series(Line {
                prefix: s.key,
                key: s.key,
                member,
                sample: s.sample,
                traits: s.traits,
                exemplar: s.exemplar,
            });
        }) {
            sink.part_end()?;
        }
    }
    for (e, taken) in escaped.iter().zip(taken) {
        if taken {
            continue;
        }
        visited.escaped += 1;
        sink.series(Line {
            prefix: &e.prefix,
            key: &e.key,
            member: e.member,
            sample: e.sample,
            traits: e.traits,
            exemplar: e.exemplar.as_ref().map(|(labels, value, ts)| ExemplarRef {
                labels,
                value: *value,
                timestamp_ms: *ts,
            }),
        });
        sink.part_end()?;
    }
    Ok(())
}
