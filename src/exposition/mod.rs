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

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use crate::model::{NativeHistogram, Sample, SeriesTraits};
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
    /// Most `le` buckets (`+Inf` aside) of a native histogram's classic
    /// form on text and OpenMetrics pages, reached by lowering its
    /// resolution (`NativeHistogram::classic_buckets_capped`); 0 for all.
    pub native_histogram_max_buckets: usize,
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
    /// Native histograms shown (in their classic form on text and
    /// OpenMetrics pages; their `_bucket`, `_count` and `_sum` lines are
    /// counted in `series`).
    pub histograms: u64,
    /// Native histograms left off a text or OpenMetrics page: their labels
    /// hold an `le`, which their classic form's buckets need.
    pub histograms_dropped: u64,
    /// Native histograms left off a text or OpenMetrics page because their
    /// sender wrote their classic form too (`_bucket`, `_count` or `_sum`
    /// series of their label set, as Prometheus does with
    /// `always_scrape_classic_histograms` and client_golang pushes with
    /// both kinds of buckets): the page shows the sender's, never two of
    /// one series.
    pub histograms_hidden: u64,
}

/// What [`visit_family`] left off or rewrote.
#[derive(Clone, Copy, Debug, Default)]
struct Visited {
    dropped: u64,
    escaped: u64,
    histograms: u64,
    histograms_dropped: u64,
    histograms_hidden: u64,
}

impl PageStats {
    fn add(&mut self, v: Visited) {
        self.dropped += v.dropped;
        self.escaped += v.escaped;
        self.histograms += v.histograms;
        self.histograms_dropped += v.histograms_dropped;
        self.histograms_hidden += v.histograms_hidden;
    }
}

/// How a page shows a native histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HistogramForm {
    /// As it is, in [`Line::histogram`] (the protobuf page).
    Native,
    /// As a classic histogram: `_bucket` lines at the native buckets'
    /// boundaries (at most this many, 0 for all, `+Inf` aside), `_count`
    /// and `_sum` (the text formats).
    Classic(usize),
    /// Not at all where the family's sender wrote a histogram's classic
    /// form itself (a `_count` or `_sum` series, or `_bucket` series,
    /// of its label set), else as [`HistogramForm::Classic`] with this
    /// many buckets (see [`ClassicSent`]).
    Hidden(usize),
}

impl HistogramForm {
    /// The classic form on a text page of `family`, hidden where its
    /// sender wrote one ([`family::Family::classic_sent`]).
    fn classic(family: &family::Family, opts: &RenderOptions) -> Self {
        if family.classic_sent {
            HistogramForm::Hidden(opts.native_histogram_max_buckets)
        } else {
            HistogramForm::Classic(opts.native_histogram_max_buckets)
        }
    }
}

/// The label sets of a family's float `_bucket` (less `le`), `_count` and
/// `_sum` series beside its native histograms, where
/// [`family::Family::classic_sent`]: a native histogram of one of these
/// label sets is hidden (its sender wrote its classic form), and any other
/// is shown in its classic form, which clashes with no line. So a family
/// where some histograms came with classic buckets and some without (two
/// pushed groups, two senders) loses none on a text page. Gathered before
/// the family is walked, one shard lock at a time as every read. A family
/// whose names or labels escape (where two label sets may be one on the
/// page) hides all its native histograms instead, as it always did.
struct ClassicSent(HashSet<String>);

impl ClassicSent {
    fn gather(family: &family::Family, form: HistogramForm) -> Option<ClassicSent> {
        if !matches!(form, HistogramForm::Hidden(_)) || family.escapes {
            return None;
        }
        let natives: Vec<&str> = family
            .members
            .iter()
            .filter(|m| m.view.histograms() > 0)
            .map(|m| &*m.name)
            .collect();
        let mut sets = HashSet::new();
        for m in &family.members {
            let name = &*m.name;
            let classic = natives.iter().any(|n| {
                name.strip_prefix(n)
                    .is_some_and(|s| matches!(s, "_bucket" | "_count" | "_sum"))
            });
            if !classic {
                continue;
            }
            let mut parts = m.view.parts();
            while parts.visit_next(|s: SeriesRef<'_>| {
                if s.histogram.is_none() {
                    sets.insert(label_set(s.key));
                }
            }) {}
        }
        Some(ClassicSent(sets))
    }

    /// The form of the native histogram of series `key`.
    fn form(this: &Option<ClassicSent>, form: HistogramForm, key: &[u8]) -> HistogramForm {
        match (this, form) {
            (Some(sent), HistogramForm::Hidden(max)) if !sent.0.contains(&label_set(key)) => {
                HistogramForm::Classic(max)
            }
            _ => form,
        }
    }
}

/// A key's labels without `le`, written `n="v",…` (names as the key writes
/// them, values escaped), to compare the label sets of a native histogram
/// and of classic series.
fn label_set(key: &[u8]) -> String {
    let mut out = String::new();
    let Some((_, labels)) = std::str::from_utf8(key)
        .ok()
        .and_then(crate::model::split_key)
    else {
        return out;
    };
    for (name, value) in labels {
        if !name.quoted && name.text == "le" {
            continue;
        }
        if name.quoted {
            out.push('"');
            out.push_str(name.text);
            out.push('"');
        } else {
            out.push_str(name.text);
        }
        out.push_str("=\"");
        out.push_str(value);
        out.push_str("\",");
    }
    out
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
        let form = HistogramForm::classic(&family, opts);
        visit_family(&family, opts.escaping, form, &mut visited, &mut sink)?;
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
#[derive(Clone, Copy)]
struct Line<'a> {
    /// The series as the page names it (escaped, or in the quoted syntax).
    pub prefix: &'a [u8],
    /// The store's canonical key (for a line of a native histogram's
    /// classic form, with the suffix and `le` added as in `prefix`).
    pub key: &'a [u8],
    /// Which of the family's members it is.
    pub member: usize,
    /// What a native histogram's classic form added to the member's name
    /// (`_bucket`, `_count`, `_sum`); empty for every other line.
    pub suffix: &'static str,
    pub sample: Sample,
    pub traits: SeriesTraits,
    /// The series' latest exemplar, labels as the store keeps them (on a
    /// classic form, only on the bucket holding the exemplar's value).
    pub exemplar: Option<ExemplarRef<'a>>,
    /// The series' native histogram, when the page shows it natively.
    pub histogram: Option<&'a NativeHistogram>,
}

/// Buffers for writing native histograms' classic forms.
#[derive(Default)]
struct ClassicScratch {
    buckets: Vec<(f64, f64)>,
    prefix: Vec<u8>,
    key: Vec<u8>,
    le: Vec<u8>,
}

/// Hands `sink` the native histogram `h` of the series `line` stands for:
/// as it is, or in `form`'s classic form: its `_bucket` lines (each
/// native boundary's cumulative count, then `le="+Inf"` with the count),
/// `_count` and `_sum`, all with the histogram's timestamp. A native
/// histogram whose labels hold an `le` already cannot have a classic form:
/// left off, counted in `visited.histograms_dropped`.
#[cold]
#[inline(never)]
fn emit(
    sink: &mut impl Sink,
    line: Line<'_>,
    h: &NativeHistogram,
    form: HistogramForm,
    scratch: &mut ClassicScratch,
    visited: &mut Visited,
) {
    let max = match form {
        HistogramForm::Classic(max) => max,
        HistogramForm::Hidden(_) => {
            visited.histograms_hidden += 1;
            return;
        }
        HistogramForm::Native => {
            sink.series(Line {
                histogram: Some(h),
                ..line
            });
            return;
        }
    };
    if line.traits.bits() & SeriesTraits::HAS_LE != 0 {
        visited.histograms_dropped += 1;
        return;
    }
    visited.histograms += 1;
    let max = if max == 0 { usize::MAX } else { max };
    scratch.buckets = h.classic_buckets_capped(max);
    scratch.buckets.push((f64::INFINITY, h.count()));
    let mut exemplar = line.exemplar;
    let t = line.sample.timestamp_ms;
    for &(le, cumulative) in &scratch.buckets {
        scratch.le.clear();
        write_float(&mut scratch.le, le);
        suffixed(&mut scratch.prefix, line.prefix, "_bucket", &scratch.le);
        suffixed(&mut scratch.key, line.key, "_bucket", &scratch.le);
        sink.series(Line {
            prefix: &scratch.prefix,
            key: &scratch.key,
            suffix: "_bucket",
            sample: Sample {
                value: cumulative,
                timestamp_ms: t,
            },
            exemplar: exemplar.take_if(|e| e.value <= le),
            ..line
        });
    }
    for (suffix, value) in [("_count", h.count()), ("_sum", h.sum())] {
        suffixed(&mut scratch.prefix, line.prefix, suffix, &[]);
        suffixed(&mut scratch.key, line.key, suffix, &[]);
        sink.series(Line {
            prefix: &scratch.prefix,
            key: &scratch.key,
            suffix,
            sample: Sample {
                value,
                timestamp_ms: t,
            },
            exemplar: None,
            ..line
        });
    }
}

/// Writes into `out` the series `series` (a page's prefix or a canonical
/// key: `name`, `name{labels}`, `"name"{labels}` or `{"name",labels}`)
/// with `suffix` added to its metric name and, unless `le` is empty, an
/// `le` label of that value added last.
fn suffixed(out: &mut Vec<u8>, series: &[u8], suffix: &str, le: &[u8]) {
    out.clear();
    // Where the metric name ends: before its closing quote when quoted
    // (a quoted name escapes `"` and `\\`, so the first unescaped `"`).
    let quoted_end = |from: usize| {
        let mut i = from;
        while i < series.len() {
            match series[i] {
                b'\\' => i += 2,
                b'"' => return i,
                _ => i += 1,
            }
        }
        series.len()
    };
    let name_end = match series.first() {
        Some(b'{') if series.get(1) == Some(&b'"') => quoted_end(2),
        Some(b'"') => quoted_end(1),
        _ => series
            .iter()
            .position(|&c| c == b'{')
            .unwrap_or(series.len()),
    };
    out.extend_from_slice(&series[..name_end]);
    out.extend_from_slice(suffix.as_bytes());
    let rest = &series[name_end..];
    if le.is_empty() {
        out.extend_from_slice(rest);
        return;
    }
    match rest.strip_suffix(b"}") {
        // `{"name"}`, `"name"{}`: the name's quote, then labels if any.
        Some(open) => {
            out.extend_from_slice(open);
            if !matches!(open.last(), Some(b'{')) {
                out.push(b',');
            }
        }
        // `name` or `"name"` without labels.
        None => {
            out.extend_from_slice(rest);
            out.push(b'{');
        }
    }
    out.extend_from_slice(b"le=\"");
    out.extend_from_slice(le);
    out.extend_from_slice(b"\"}");
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
/// `visited`. Native histograms in `form` (see [`emit`]). Stops at the
/// first error `part_end` returns.
fn visit_family(
    family: &family::Family,
    scheme: Escaping,
    form: HistogramForm,
    visited: &mut Visited,
    sink: &mut impl Sink,
) -> io::Result<()> {
    let mut scratch = ClassicScratch::default();
    let sent = ClassicSent::gather(family, form);
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
                // Made in each arm: a line built once and passed to the
                // (not inlined) `emit` would be built in memory for every
                // series, 24 instructions each on a legacy page.
                let line = || Line {
                    prefix,
                    key: s.key,
                    member,
                    suffix: "",
                    sample: s.sample,
                    traits: s.traits,
                    exemplar: s.exemplar,
                    histogram: None,
                };
                match s.histogram {
                    None => sink.series(line()),
                    Some(h) => {
                        let form = ClassicSent::form(&sent, form, s.key);
                        emit(sink, line(), h, form, &mut scratch, visited)
                    }
                }
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
        histogram: Option<Box<NativeHistogram>>,
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
                histogram: s.histogram.map(|h| Box::new(h.clone())),
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
            let line = || Line {
                prefix: s.key,
                key: s.key,
                member,
                suffix: "",
                sample: s.sample,
                traits: s.traits,
                exemplar: s.exemplar,
                histogram: None,
            };
            match s.histogram {
                None => sink.series(line()),
                Some(h) => {
                    let form = ClassicSent::form(&sent, form, s.key);
                    emit(sink, line(), h, form, &mut scratch, visited)
                }
            }
        }) {
            sink.part_end()?;
        }
    }
    for (e, taken) in escaped.iter().zip(taken) {
        if taken {
            continue;
        }
        visited.escaped += 1;
        let line = Line {
            prefix: &e.prefix,
            key: &e.key,
            member: e.member,
            suffix: "",
            sample: e.sample,
            traits: e.traits,
            exemplar: e.exemplar.as_ref().map(|(labels, value, ts)| ExemplarRef {
                labels,
                value: *value,
                timestamp_ms: *ts,
            }),
            histogram: None,
        };
        match e.histogram.as_deref() {
            None => sink.series(line),
            Some(h) => {
                let form = ClassicSent::form(&sent, form, &e.key);
                emit(sink, line, h, form, &mut scratch, visited)
            }
        }
        sink.part_end()?;
    }
    Ok(())
}
