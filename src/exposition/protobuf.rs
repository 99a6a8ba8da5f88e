//! Store → the Prometheus protobuf exposition format
//! (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited`): a stream of `io.prometheus.client.MetricFamily`
//! messages (`proto/client/metrics.proto`), each preceded by its length as
//! a varint, as prometheus/common's `expfmt` writes `FmtProtoDelim`
//! (`protodelim.MarshalTo`). Prometheus asks for it first when native
//! histograms are enabled (2.40 and later with
//! `--enable-feature=native-histograms`; 3.x with
//! `scrape_native_histograms`).
//!
//! The page is the text page's plan ([`super::family`]) walked the same way
//! ([`super::visit_family`]), so escaping, escaping collisions and dropped
//! series are the text page's, and every series of the text page is a
//! series of this one, as Prometheus' protobuf parser (`protobufparse.go`)
//! names them:
//!
//! - A counter, gauge or untyped family is a `MetricFamily` of that type
//!   named as its samples are, `_total` and all (the parser takes the
//!   family name as the sample name, as for client_golang's counters).
//!   A counter's exemplar rides on `Counter.exemplar`.
//! - A classic histogram (summary) family whose every label set is a whole
//!   MetricPoint ([`super::points`]) with its `_count` and `_sum` is a
//!   `HISTOGRAM` (`SUMMARY`) family: one `Metric` per label set, its
//!   buckets (quantiles) by bound, `+Inf` included. The parser names the
//!   samples `x_bucket`/`x_count`/`x_sum` (`x`/`x_count`/`x_sum`) and
//!   writes the bound back as a float (`le="1.0"` for a bucket pushed as
//!   `le="1"`: Prometheus 3 normalises text pages' bounds the same way,
//!   Prometheus 2 takes the text page's as written). A bucket's exemplar
//!   rides on `Bucket.exemplar`.
//! - Any other histogram or summary family (torn points, a point without
//!   `_count`/`_sum`, which the parser would invent as zeros) is one
//!   `UNTYPED` family per metric name, `le` (`quantile`) kept as a label:
//!   no sample lost, only the type, as on the OpenMetrics page.
//! - Labels are the series' own, names escaped by the page's scheme (as
//!   they are with `allow-utf-8`: protobuf carries any string), values
//!   unescaped. `timestamp_ms` is the sample's, unless the series was
//!   pushed or `--exposition.timestamps=none`.
//!
//! Streaming: series go into a `MetricFamily` under construction as the
//! store's cursor reads them; once it holds about
//! [`RenderOptions::chunk_bytes`] at the end of a part, it is written out
//! and the family goes on in a new message of the same name, HELP and
//! TYPE (Prometheus' parser reads each message on its own, so a family
//! split over several messages gives the same series). A histogram or
//! summary family is gathered in memory, as on the OpenMetrics page.

use std::io::{self, Write};

use prost::Message;

use super::family::{Family, Member};
use super::points::{Gathered, Part, Point, by_page_name, exemplar_labels, gather, points};
use super::{
    Escaping, HistogramForm, Line, PageStats, RenderOptions, Sink, TimestampPolicy, Visited,
    visit_family,
};
use crate::model::histogram::Counts;
use crate::model::{NativeHistogram, Sample, split_key, unescape_value};
use crate::proto::client as pb;
use crate::store::{ExemplarRef, Store};

/// How a planned family goes on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// One metric name, the family's, with one value per series.
    Plain(pb::MetricType),
    /// A classic histogram, if its MetricPoints hold up.
    Histogram,
    /// A summary, if its MetricPoints hold up.
    Summary,
    /// Each metric name an `UNTYPED` family of its own.
    Members,
}

impl Shape {
    fn of(family: &Family) -> Shape {
        let single = family.members.iter().all(|m| m.name == family.name);
        match family.type_name {
            Some("histogram") => Shape::Histogram,
            Some("summary") => Shape::Summary,
            Some("counter") if single => Shape::Plain(pb::MetricType::Counter),
            Some("gauge") if single => Shape::Plain(pb::MetricType::Gauge),
            _ if single => Shape::Plain(pb::MetricType::Untyped),
            _ => Shape::Members,
        }
    }
}

/// Renders every live series into `out` as a protobuf page: delimited
/// `MetricFamily` messages, in writes of about `opts.chunk_bytes` bytes
/// (the last one shorter); names as `opts.escaping` says (see
/// [`super::render`]). Does not flush `out`.
///
/// # Errors
///
/// The first error `out` returns (e.g. the client went away); rendering
/// stops there.
pub fn render(store: &Store, opts: &RenderOptions, out: &mut impl Write) -> io::Result<PageStats> {
    let mut page = Page {
        buf: Vec::with_capacity(opts.chunk_bytes + 4096),
        opts,
        stats: PageStats::default(),
        scratch: Vec::with_capacity(256),
    };
    for mut family in super::family::plan(store, opts.escaping) {
        // The family's own name, where it holds native histograms, goes
        // out first, each histogram unchanged (see `Plain::series`); the
        // family's other names (a sender's classic form of them among
        // them) follow as they would without it, in messages of the same
        // name: Prometheus reads them as one family.
        let (native, rest): (Vec<Member>, Vec<Member>) = family
            .members
            .iter()
            .cloned()
            .partition(|m| m.name == family.name && m.view.histograms() > 0);
        if !native.is_empty() {
            let own = Family {
                name: family.name.clone(),
                help: family.help.clone(),
                type_name: family.type_name,
                unit: family.unit.clone(),
                members: native,
                escapes: family.escapes,
                classic_sent: family.classic_sent,
            };
            page.plain(&own, pb::MetricType::Untyped, out)?;
            if rest.is_empty() {
                continue;
            }
            family.members = rest;
        }
        match Shape::of(&family) {
            Shape::Plain(kind) => page.plain(&family, kind, out)?,
            shape @ (Shape::Histogram | Shape::Summary) => {
                let histogram = shape == Shape::Histogram;
                let lines = page.gather(&family);
                // The parser makes up `_count` and `_sum` where a message
                // has none: a point without them is not whole here.
                let whole = points(&family, &lines, histogram).filter(|points| {
                    points
                        .iter()
                        .all(|p| p.iter().any(|&(part, _)| part == Part::Count))
                });
                match whole {
                    Some(points) => page.typed(&family, histogram, &lines, &points, out)?,
                    None => page.members(&family, lines, out)?,
                }
            }
            Shape::Members => {
                let lines = page.gather(&family);
                page.members(&family, lines, out)?;
            }
        }
    }
    if !page.buf.is_empty() {
        out.write_all(&page.buf)?;
    }
    Ok(page.stats)
}

/// A `MetricFamily` message being built: its fields before and after
/// `metric` (field 4) encoded once, its metrics as they come. Written out
/// it is byte for byte what `encode_length_delimited` makes of the whole
/// message (prost writes fields in tag order).
struct OpenFamily {
    /// `name`, `help`, `type`.
    head: Vec<u8>,
    /// The `metric` fields so far.
    metrics: Vec<u8>,
    /// `unit`.
    tail: Vec<u8>,
}

impl OpenFamily {
    /// A family named `name` as the page shows it (a name escaped for
    /// quotes, as the plan keeps `allow-utf-8` names, is unescaped here).
    fn new(name: &str, help: Option<&str>, kind: pb::MetricType, unit: Option<&str>) -> Self {
        let head = pb::MetricFamily {
            name: Some(unescape_value(name)),
            help: help.map(str::to_string),
            r#type: Some(kind as i32),
            ..Default::default()
        }
        .encode_to_vec();
        let tail = pb::MetricFamily {
            unit: unit
                .filter(|u| super::points::unit_fits(name, u))
                .map(str::to_string),
            ..Default::default()
        }
        .encode_to_vec();
        OpenFamily {
            head,
            metrics: Vec::new(),
            tail,
        }
    }

    fn push(&mut self, metric: &pb::Metric) {
        prost::encoding::message::encode(4, metric, &mut self.metrics);
    }

    /// Appends the message so far, length-delimited, to `buf` and starts
    /// the next one of the same family; nothing if it holds no metric.
    fn close_into(&mut self, buf: &mut Vec<u8>) {
        if self.metrics.is_empty() {
            return;
        }
        let len = self.head.len() + self.metrics.len() + self.tail.len();
        prost::encoding::encode_varint(len as u64, buf);
        buf.extend_from_slice(&self.head);
        buf.extend_from_slice(&self.metrics);
        buf.extend_from_slice(&self.tail);
        self.metrics.clear();
    }
}

/// A page being written: its buffer and what it held.
struct Page<'o> {
    buf: Vec<u8>,
    opts: &'o RenderOptions,
    stats: PageStats,
    /// One metric being encoded (its length goes before it).
    scratch: Vec<u8>,
}

impl Page<'_> {
    fn flush_if_full(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.buf.len() >= self.opts.chunk_bytes {
            out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// The metric's `timestamp_ms`: the sample's, unless it was pushed or
    /// the page carries none.
    fn timestamp(&self, sample: Sample, pushed: bool) -> Option<i64> {
        (self.opts.timestamps == TimestampPolicy::Original && !pushed)
            .then_some(sample.timestamp_ms)
    }

    /// The text the labels of a series are read from, as the page shows
    /// them: the key with `allow-utf-8` (names as they are), else the
    /// escaped prefix.
    fn label_text<'k>(&self, key: &'k [u8], prefix: &'k [u8]) -> &'k str {
        let text = if self.opts.escaping == Escaping::AllowUtf8 {
            key
        } else {
            prefix
        };
        // Keys are UTF-8 (`model::key` writes them as `String`s), and so
        // are the prefixes escaping makes of them.
        std::str::from_utf8(text).unwrap_or_default()
    }

    /// The labels of a series as the page shows it ([`Page::label_text`]),
    /// `bound` (`le`, `quantile`) left out when given.
    fn labels(&self, key: &[u8], prefix: &[u8], bound: Option<&str>) -> Vec<pb::LabelPair> {
        label_pairs(self.label_text(key, prefix), bound)
    }

    /// The exemplar as the page carries it, its label names escaped for
    /// the page; `None` (counted) when escaping breaks them.
    fn exemplar(&mut self, e: ExemplarRef<'_>) -> Option<pb::Exemplar> {
        let Some(labels) = exemplar_labels(e.labels, self.opts.escaping) else {
            self.stats.exemplars_dropped += 1;
            return None;
        };
        let key = if labels.is_empty() {
            "x".to_string()
        } else {
            format!("x{{{labels}}}")
        };
        self.stats.exemplars += 1;
        Some(pb::Exemplar {
            label: label_pairs(&key, None),
            value: Some(e.value),
            timestamp: e.timestamp_ms.map(timestamp),
        })
    }

    /// A counter, gauge or untyped family, written as the store's cursor
    /// reads it.
    fn plain(
        &mut self,
        family: &Family,
        kind: pb::MetricType,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let open = OpenFamily::new(
            &family.name,
            family.help.as_deref(),
            kind,
            family.unit.as_deref(),
        );
        let mut visited = Visited::default();
        let mut sink = Plain {
            page: self,
            out,
            open,
            kind,
            current: kind,
            family,
        };
        let scheme = sink.page.opts.escaping;
        visit_family(
            family,
            scheme,
            HistogramForm::Native,
            &mut visited,
            &mut sink,
        )?;
        let Plain { mut open, .. } = sink;
        open.close_into(&mut self.buf);
        self.stats.add(visited);
        self.flush_if_full(out)
    }

    /// Every series of `family`, in memory.
    fn gather(&mut self, family: &Family) -> Vec<Gathered> {
        let mut visited = Visited::default();
        let lines = gather(
            family,
            self.opts.escaping,
            HistogramForm::Native,
            &mut visited,
        );
        self.stats.add(visited);
        lines
    }

    /// A histogram or summary family whose `points` are whole: one metric
    /// per point.
    fn typed(
        &mut self,
        family: &Family,
        histogram: bool,
        lines: &[Gathered],
        points: &[Point],
        out: &mut impl Write,
    ) -> io::Result<()> {
        let (kind, bound) = if histogram {
            (pb::MetricType::Histogram, "le")
        } else {
            (pb::MetricType::Summary, "quantile")
        };
        let mut open = OpenFamily::new(
            &family.name,
            family.help.as_deref(),
            kind,
            family.unit.as_deref(),
        );
        for point in points {
            let first = &lines[point[0].1];
            let mut metric = pb::Metric {
                label: self.labels(first.key.as_bytes(), &first.prefix, Some(bound)),
                timestamp_ms: self.timestamp(first.sample, first.pushed),
                ..Default::default()
            };
            let (mut count, mut sum) = (None, None);
            let mut buckets = Vec::new();
            let mut quantiles = Vec::new();
            for &(part, i) in point {
                let g = &lines[i];
                let v = g.sample.value;
                match part {
                    // Whole points hold integral, non-negative counts.
                    Part::Count => count = Some(v as u64),
                    Part::Sum => sum = Some(v),
                    Part::Bound(b) if histogram => buckets.push(pb::Bucket {
                        cumulative_count: Some(v as u64),
                        upper_bound: Some(b),
                        exemplar: g.exemplar().and_then(|e| self.exemplar(e)),
                        ..Default::default()
                    }),
                    Part::Bound(q) => quantiles.push(pb::Quantile {
                        quantile: Some(q),
                        value: Some(v),
                    }),
                }
            }
            if histogram {
                metric.histogram = Some(pb::Histogram {
                    sample_count: count,
                    sample_sum: sum,
                    bucket: buckets,
                    ..Default::default()
                });
            } else {
                metric.summary = Some(pb::Summary {
                    sample_count: count,
                    sample_sum: sum,
                    quantile: quantiles,
                    ..Default::default()
                });
            }
            open.push(&metric);
            self.stats.series += point.len() as u64;
            if open.metrics.len() >= self.opts.chunk_bytes {
                open.close_into(&mut self.buf);
                self.flush_if_full(out)?;
            }
        }
        open.close_into(&mut self.buf);
        self.flush_if_full(out)
    }

    /// Each metric name of `family` as an `UNTYPED` family of its own,
    /// every label kept; the HELP and UNIT go with the family's own name.
    fn members(
        &mut self,
        family: &Family,
        lines: Vec<Gathered>,
        out: &mut impl Write,
    ) -> io::Result<()> {
        for (name, own, lines) in by_page_name(family, lines) {
            let mut open = OpenFamily::new(
                &name,
                family.help.as_deref().filter(|_| own),
                pb::MetricType::Untyped,
                family.unit.as_deref().filter(|_| own),
            );
            for g in lines {
                let metric = PlainMetric {
                    labels: self.label_text(g.key.as_bytes(), &g.prefix),
                    kind: pb::MetricType::Untyped,
                    value: g.sample.value,
                    exemplar: None,
                    timestamp_ms: self.timestamp(g.sample, g.pushed),
                };
                metric.encode(&mut self.scratch, &mut open.metrics);
                self.stats.series += 1;
                if open.metrics.len() >= self.opts.chunk_bytes {
                    open.close_into(&mut self.buf);
                    self.flush_if_full(out)?;
                }
            }
            open.close_into(&mut self.buf);
            self.flush_if_full(out)?;
        }
        Ok(())
    }
}

/// A counter, gauge or untyped family being written as read; a name's
/// native histograms too.
struct Plain<'a, 'o, W> {
    page: &'a mut Page<'o>,
    out: &'a mut W,
    open: OpenFamily,
    /// The type of the family's float series.
    kind: pb::MetricType,
    /// The type of the message open: `kind`, or a native histogram's.
    current: pb::MetricType,
    family: &'a Family,
}

impl<W: Write> Sink for Plain<'_, '_, W> {
    /// A float series' metric in a message of the family's type; a native
    /// histogram's (`histogram: Some`, its exemplar with it) in one of type
    /// `HISTOGRAM` or `GAUGE_HISTOGRAM`: where the type changes from one
    /// series to the next, the message open is closed and one of the new
    /// type opened (several messages of one name are one family to
    /// Prometheus).
    fn series(&mut self, line: Line<'_>) {
        let kind = line.histogram.map_or(self.kind, native_histogram_type);
        if kind != self.current {
            self.open.close_into(&mut self.page.buf);
            let f = self.family;
            self.open = OpenFamily::new(&f.name, f.help.as_deref(), kind, f.unit.as_deref());
            self.current = kind;
        }
        let page = &mut *self.page;
        if let Some(h) = line.histogram {
            let mut histogram = native_histogram(h);
            if let Some(e) = line.exemplar.and_then(|e| page.exemplar(e)) {
                histogram.exemplars.push(e);
            }
            let metric = pb::Metric {
                label: page.labels(line.key, line.prefix, None),
                histogram: Some(histogram),
                timestamp_ms: page.timestamp(line.sample, line.traits.pushed()),
                ..Default::default()
            };
            self.open.push(&metric);
            page.stats.series += 1;
            page.stats.histograms += 1;
            return;
        }
        let exemplar = match self.kind {
            pb::MetricType::Counter => line.exemplar.and_then(|e| page.exemplar(e)),
            _ => None,
        };
        let metric = PlainMetric {
            labels: page.label_text(line.key, line.prefix),
            kind: self.kind,
            value: line.sample.value,
            exemplar,
            timestamp_ms: page.timestamp(line.sample, line.traits.pushed()),
        };
        metric.encode(&mut page.scratch, &mut self.open.metrics);
        page.stats.series += 1;
    }

    fn part_end(&mut self) -> io::Result<()> {
        if self.open.metrics.len() >= self.page.opts.chunk_bytes {
            self.open.close_into(&mut self.page.buf);
        }
        self.page.flush_if_full(self.out)
    }
}

/// A counter's, gauge's or untyped series' `Metric`, encoded straight from
/// its key, with no allocation for a key without escapes: this is the
/// page's hot path (prost's structs would take a `String` per label name
/// and value). The bytes are prost's for the same message (fields in tag
/// order: labels, the value's message, `timestamp_ms`), as the tests check.
struct PlainMetric<'a> {
    /// The key (or escaped prefix) the labels are read from.
    labels: &'a str,
    kind: pb::MetricType,
    value: f64,
    /// A counter's exemplar.
    exemplar: Option<pb::Exemplar>,
    timestamp_ms: Option<i64>,
}

impl PlainMetric<'_> {
    /// Appends the metric as field 4 of a `MetricFamily` to `out`, built in
    /// `scratch` (cleared first).
    fn encode(self, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
        use prost::encoding::{encode_varint, encoded_len_varint};
        let m = scratch;
        m.clear();
        if let Some((_, labels)) = split_key(self.labels) {
            for (name, value) in labels {
                let name: std::borrow::Cow<'_, str> = if name.quoted && name.text.contains('\\') {
                    name.chars().collect::<String>().into()
                } else {
                    name.text.into()
                };
                let value: std::borrow::Cow<'_, str> = if value.contains('\\') {
                    unescape_value(value).into()
                } else {
                    value.into()
                };
                let (n, v) = (name.len() as u64, value.len() as u64);
                let pair = 2 + encoded_len_varint(n) as u64 + n + encoded_len_varint(v) as u64 + v;
                // Metric.label (1), LabelPair.name (1), LabelPair.value (2).
                m.push(0x0a);
                encode_varint(pair, m);
                m.push(0x0a);
                encode_varint(n, m);
                m.extend_from_slice(name.as_bytes());
                m.push(0x12);
                encode_varint(v, m);
                m.extend_from_slice(value.as_bytes());
            }
        }
        let field = match self.kind {
            pb::MetricType::Counter => 3,
            pb::MetricType::Gauge => 2,
            _ => 5,
        };
        match self.exemplar {
            Some(exemplar) => {
                let counter = pb::Counter {
                    value: Some(self.value),
                    exemplar: Some(exemplar),
                    ..Default::default()
                };
                prost::encoding::message::encode(field, &counter, m);
            }
            None => {
                // Counter, Gauge and Untyped alike: `double value = 1`.
                m.extend_from_slice(&[(field << 3 | 2) as u8, 9, 0x09]);
                m.extend_from_slice(&self.value.to_le_bytes());
            }
        }
        if let Some(ts) = self.timestamp_ms {
            m.push(0x30);
            encode_varint(ts as u64, m);
        }
        out.push(0x22);
        encode_varint(m.len() as u64, out);
        out.extend_from_slice(m);
    }
}

/// The labels of canonical key (or escaped prefix) `key`: names unquoted
/// and unescaped, values unescaped, `skip` left out.
fn label_pairs(key: &str, skip: Option<&str>) -> Vec<pb::LabelPair> {
    let Some((_, labels)) = split_key(key) else {
        return Vec::new();
    };
    labels
        .filter(|(name, _)| name.quoted || Some(name.text) != skip)
        .map(|(name, value)| pb::LabelPair {
            name: Some(name.chars().collect()),
            value: Some(unescape_value(value)),
        })
        .collect()
}

/// Milliseconds since the epoch as a protobuf `Timestamp`.
fn timestamp(ms: i64) -> pb::Timestamp {
    pb::Timestamp {
        seconds: Some(ms.div_euclid(1000)),
        nanos: Some((ms.rem_euclid(1000) * 1_000_000) as i32),
    }
}

/// A native histogram as the protobuf format's `Histogram` (the fields of
/// `io.prometheus.client.Histogram` that client_golang fills), for a
/// `HISTOGRAM` family, or `GAUGE_HISTOGRAM` when [`NativeHistogram::is_gauge`].
///
/// - Exponential schemas: `schema`, `zero_threshold`, the spans, and the
///   counts in the sender's flavour: an integer histogram's
///   `sample_count`, `zero_count` and bucket deltas (`*_delta`), a float
///   histogram's `sample_count_float`, `zero_count_float` and absolute
///   counts (`*_count`). A float histogram with no observation at all goes
///   as an integer one: Prometheus tells float from integer by
///   `sample_count_float > 0 || zero_count_float > 0`, and would read its
///   spans against missing deltas.
/// - Prometheus' parser (`isNativeHistogram` in `protobufparse.go`) takes
///   a histogram with no span, a zero threshold of 0 and no integer zero
///   count for a classic one, so such a histogram gets a no-op span
///   (offset 0, length 0), as client_golang adds one (Prometheus 2.47 and
///   later). Prometheus 2.40 to 2.46 (2.42 among them) decide by the
///   deltas instead (native if there are any, or a zero count or
///   threshold): there a histogram with no bucket and threshold 0, and a
///   float histogram with threshold 0, read as classic histograms (their
///   `_count`, `_sum` and `+Inf` bucket).
/// - Custom buckets (schema -53) have no field in the client model, and
///   Prometheus 2.42 predates them: they go as a classic histogram, a
///   `Bucket{upper_bound, cumulative_count}` per custom bound
///   ([`NativeHistogram::classic_buckets`]; `cumulative_count_float` for
///   a float histogram, which Prometheus reads from 2.45 on), `+Inf` left
///   to the count as client_golang leaves it; no schema, so every version
///   reads them as `x_bucket`/`x_count`/`x_sum`.
///
/// The sample's timestamp and exemplars are the metric's, not set here.
pub(super) fn native_histogram(h: &NativeHistogram) -> pb::Histogram {
    let mut out = pb::Histogram {
        sample_sum: Some(h.sum()),
        ..Default::default()
    };
    // A float histogram without observations, as Prometheus would read it.
    let empty_float = matches!(h.counts(), Counts::Float { count, zero_count, buckets }
        if *count == 0.0 && *zero_count == 0.0 && buckets.iter().all(|&b| b == 0.0));
    let float = h.is_float() && !empty_float;
    if h.is_custom() {
        for (le, cumulative) in h.classic_buckets() {
            let mut bucket = pb::Bucket {
                upper_bound: Some(le),
                ..Default::default()
            };
            if float {
                bucket.cumulative_count_float = Some(cumulative);
            } else {
                bucket.cumulative_count = Some(cumulative as u64);
            }
            out.bucket.push(bucket);
        }
        if float {
            out.sample_count_float = Some(h.count());
        } else {
            out.sample_count = Some(h.count() as u64);
        }
        return out;
    }
    out.schema = Some(h.schema());
    out.zero_threshold = Some(h.zero_threshold());
    let spans = |spans: &[crate::model::histogram::Span]| -> Vec<pb::BucketSpan> {
        spans
            .iter()
            .map(|s| pb::BucketSpan {
                offset: Some(s.offset),
                length: Some(s.length),
            })
            .collect()
    };
    out.negative_span = spans(h.negative_spans());
    out.positive_span = spans(h.positive_spans());
    match h.counts() {
        Counts::Float {
            count,
            zero_count,
            buckets,
        } if float => {
            out.sample_count_float = Some(*count);
            out.zero_count_float = Some(*zero_count);
            let n = h.negative_buckets().len();
            out.negative_count = buckets[..n].to_vec();
            out.positive_count = buckets[n..].to_vec();
        }
        counts => {
            let raw = h.to_raw();
            let (count, zero_count) = match counts {
                Counts::Int {
                    count, zero_count, ..
                } => (*count, *zero_count),
                // An empty float histogram: every count is 0.
                Counts::Float { .. } => (0, 0),
            };
            out.sample_count = Some(count);
            out.zero_count = Some(zero_count);
            out.negative_delta = if h.is_float() {
                vec![0; raw.negative_counts.len()]
            } else {
                raw.negative_deltas
            };
            out.positive_delta = if h.is_float() {
                vec![0; raw.positive_counts.len()]
            } else {
                raw.positive_deltas
            };
        }
    }
    let native = !out.negative_span.is_empty()
        || !out.positive_span.is_empty()
        || h.zero_threshold() > 0.0
        || out.zero_count.unwrap_or(0) > 0;
    if !native {
        out.positive_span.push(pb::BucketSpan {
            offset: Some(0),
            length: Some(0),
        });
    }
    out
}

/// The family type of a native histogram's metric family.
pub(super) fn native_histogram_type(h: &NativeHistogram) -> pb::MetricType {
    if h.is_gauge() {
        pb::MetricType::GaugeHistogram
    } else {
        pb::MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::histogram::{RawHistogram, ResetHint, Span, WireCount};

    fn span(offset: i32, length: u32) -> Span {
        Span { offset, length }
    }

    fn valid(raw: RawHistogram) -> NativeHistogram {
        NativeHistogram::from_raw(&raw).expect("a valid histogram")
    }

    /// Through the wire: what a decoder of the page gets.
    fn wire(h: &NativeHistogram) -> pb::Histogram {
        let bytes = native_histogram(h).encode_to_vec();
        pb::Histogram::decode(bytes.as_slice()).unwrap()
    }

    /// Prometheus' reading of a native protobuf `Histogram`
    /// (`protobufparse.go`): float when `sample_count_float` or
    /// `zero_count_float` is above 0, else integer with deltas.
    fn as_prometheus_reads(p: &pb::Histogram, reset_hint: i32, ts: i64) -> RawHistogram {
        let spans = |s: &[pb::BucketSpan]| -> Vec<Span> {
            s.iter()
                .map(|s| span(s.offset(), s.length()))
                .filter(|s| s.length > 0 || s.offset != 0)
                .collect()
        };
        let float = p.sample_count_float() > 0.0 || p.zero_count_float() > 0.0;
        let mut raw = RawHistogram {
            sum: p.sample_sum(),
            schema: p.schema(),
            zero_threshold: p.zero_threshold(),
            negative_spans: spans(&p.negative_span),
            positive_spans: spans(&p.positive_span),
            reset_hint,
            timestamp_ms: ts,
            ..RawHistogram::default()
        };
        if float {
            raw.count = Some(WireCount::Float(p.sample_count_float()));
            raw.zero_count = Some(WireCount::Float(p.zero_count_float()));
            raw.negative_counts = p.negative_count.clone();
            raw.positive_counts = p.positive_count.clone();
        } else {
            raw.count = Some(WireCount::Int(p.sample_count()));
            raw.zero_count = Some(WireCount::Int(p.zero_count()));
            raw.negative_deltas = p.negative_delta.clone();
            raw.positive_deltas = p.positive_delta.clone();
        }
        raw
    }

    /// `isNativeHistogram` of Prometheus 3 (`protobufparse.go`).
    fn prometheus3_native(p: &pb::Histogram) -> bool {
        !p.positive_span.is_empty()
            || !p.negative_span.is_empty()
            || p.zero_threshold() > 0.0
            || p.zero_count() > 0
    }

    fn integer() -> RawHistogram {
        RawHistogram {
            count: Some(WireCount::Int(10)),
            sum: 12.5,
            schema: 1,
            zero_threshold: 0.001,
            zero_count: Some(WireCount::Int(2)),
            negative_spans: vec![span(-2, 1)],
            negative_deltas: vec![1],
            positive_spans: vec![span(0, 2), span(3, 1)],
            positive_deltas: vec![3, -2, 2],
            timestamp_ms: 1_700_000_000_123,
            ..RawHistogram::default()
        }
    }

    #[test]
    fn an_integer_histogram_goes_as_deltas_and_reads_back_the_same() {
        let h = valid(integer());
        let p = wire(&h);
        let raw = h.to_raw();
        assert_eq!(p.schema, Some(1));
        assert_eq!(p.zero_threshold, Some(0.001));
        assert_eq!(p.sample_count, Some(10));
        assert_eq!(p.zero_count, Some(2));
        assert_eq!(p.sample_sum, Some(12.5));
        assert_eq!(p.sample_count_float, None);
        assert_eq!(p.negative_delta, raw.negative_deltas);
        assert_eq!(p.positive_delta, vec![3, -2, 2]);
        assert_eq!(p.positive_span.len(), 2);
        assert!(p.bucket.is_empty() && p.positive_count.is_empty());
        assert!(prometheus3_native(&p));
        let back = as_prometheus_reads(&p, raw.reset_hint, raw.timestamp_ms);
        assert_eq!(back, raw);
        assert_eq!(NativeHistogram::from_raw(&back).unwrap(), h);
        assert_eq!(native_histogram_type(&h), pb::MetricType::Histogram);
    }

    #[test]
    fn a_float_histogram_goes_as_absolute_counts_and_reads_back_the_same() {
        let h = valid(RawHistogram {
            count: Some(WireCount::Float(7.5)),
            sum: -3.0,
            schema: 0,
            zero_threshold: 0.0,
            zero_count: Some(WireCount::Float(0.5)),
            negative_spans: vec![span(1, 2)],
            negative_counts: vec![1.0, 2.5],
            positive_spans: vec![span(4, 1)],
            positive_counts: vec![3.5],
            reset_hint: ResetHint::Gauge.to_wire(),
            timestamp_ms: 5,
            ..RawHistogram::default()
        });
        let p = wire(&h);
        assert_eq!(p.sample_count_float, Some(7.5));
        assert_eq!(p.zero_count_float, Some(0.5));
        assert_eq!(p.negative_count, vec![1.0, 2.5]);
        assert_eq!(p.positive_count, vec![3.5]);
        assert!(p.negative_delta.is_empty() && p.sample_count.is_none());
        assert!(prometheus3_native(&p));
        let raw = h.to_raw();
        let back = as_prometheus_reads(&p, raw.reset_hint, raw.timestamp_ms);
        assert_eq!(back, raw);
        assert_eq!(NativeHistogram::from_raw(&back).unwrap(), h);
        assert_eq!(native_histogram_type(&h), pb::MetricType::GaugeHistogram);
    }

    #[test]
    fn an_empty_histogram_gets_the_no_op_span_only_when_nothing_else_marks_it() {
        // No bucket, threshold 0, zero count 0: Prometheus would read a
        // classic histogram without the span.
        let empty = valid(RawHistogram {
            count: Some(WireCount::Int(0)),
            schema: 3,
            zero_count: Some(WireCount::Int(0)),
            ..RawHistogram::default()
        });
        let p = wire(&empty);
        assert_eq!(
            p.positive_span,
            vec![pb::BucketSpan {
                offset: Some(0),
                length: Some(0)
            }]
        );
        assert!(p.negative_span.is_empty());
        assert!(prometheus3_native(&p));
        let back = as_prometheus_reads(&p, 0, 0);
        assert_eq!(NativeHistogram::from_raw(&back).unwrap(), empty);
        // A zero threshold marks it already: no span added.
        let with_threshold = valid(RawHistogram {
            zero_threshold: 1e-9,
            ..empty.to_raw()
        });
        let p = wire(&with_threshold);
        assert!(p.positive_span.is_empty() && prometheus3_native(&p));
        // A float histogram's zero count is no mark (the parser reads the
        // integer one): a float histogram with only a zero bucket gets it.
        let zero_only = valid(RawHistogram {
            count: Some(WireCount::Float(2.0)),
            zero_count: Some(WireCount::Float(2.0)),
            ..RawHistogram::default()
        });
        let p = wire(&zero_only);
        assert_eq!(p.positive_span.len(), 1);
        assert_eq!(p.zero_count_float, Some(2.0));
        let back = as_prometheus_reads(&p, 0, 0);
        assert_eq!(NativeHistogram::from_raw(&back).unwrap(), zero_only);
    }

    #[test]
    fn an_empty_float_histogram_goes_as_an_integer_one() {
        let h = valid(RawHistogram {
            count: Some(WireCount::Float(0.0)),
            zero_count: Some(WireCount::Float(0.0)),
            schema: 2,
            positive_spans: vec![span(1, 2)],
            positive_counts: vec![0.0, 0.0],
            ..RawHistogram::default()
        });
        let p = wire(&h);
        // Prometheus would read it as an integer histogram: the deltas
        // must be there for its spans.
        assert_eq!(p.sample_count, Some(0));
        assert_eq!(p.positive_delta, vec![0, 0]);
        assert!(p.positive_count.is_empty() && p.sample_count_float.is_none());
        let back = NativeHistogram::from_raw(&as_prometheus_reads(&p, 0, 0)).unwrap();
        assert_eq!(back.count(), 0.0);
        assert_eq!(back.positive_spans(), h.positive_spans());
        assert_eq!(back.classic_buckets(), h.classic_buckets());
    }

    #[test]
    fn custom_buckets_go_as_classic_buckets() {
        let h = valid(RawHistogram {
            count: Some(WireCount::Int(6)),
            sum: 9.0,
            schema: crate::model::histogram::CUSTOM_BUCKETS_SCHEMA,
            zero_count: Some(WireCount::Int(0)),
            custom_values: vec![0.5, 1.0, 4.0],
            positive_spans: vec![span(0, 2), span(1, 1)],
            positive_deltas: vec![1, 2, -1],
            ..RawHistogram::default()
        });
        let p = wire(&h);
        assert_eq!(p.schema, None, "read as a classic histogram");
        assert!(!prometheus3_native(&p));
        let buckets: Vec<(f64, f64)> = p
            .bucket
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count() as f64))
            .collect();
        // Observations: 1 at or below 0.5, 3 in (0.5, 1], none in (1, 4],
        // 2 above 4 (the +Inf bucket is the count).
        assert_eq!(buckets, vec![(0.5, 1.0), (1.0, 4.0), (4.0, 4.0)]);
        assert_eq!(buckets, h.classic_buckets());
        assert_eq!((p.sample_count(), p.sample_sum()), (6, 9.0));
        // A float one: the float fields.
        let f = valid(RawHistogram {
            count: Some(WireCount::Float(1.5)),
            zero_count: Some(WireCount::Float(0.0)),
            positive_deltas: vec![],
            positive_counts: vec![0.5, 1.0, 0.0],
            ..h.to_raw()
        });
        let p = wire(&f);
        assert_eq!(p.sample_count_float, Some(1.5));
        let cumulative: Vec<f64> = p
            .bucket
            .iter()
            .map(|b| b.cumulative_count_float())
            .collect();
        assert_eq!(cumulative, vec![0.5, 1.5, 1.5]);
    }

    /// The direct encoding of a plain metric is prost's, byte for byte.
    #[test]
    fn plain_metrics_encode_as_prost_does() {
        let keys = [
            "up",
            "x{a=\"1\",b=\"\"}",
            "x{a=\"q\\\"\\\\\\n\",\"b.c\"=\"ü\"}",
            "\"a.b\"{\"c\\\"d\"=\"e\"}",
        ];
        let exemplar = pb::Exemplar {
            label: label_pairs("x{trace_id=\"abc\"}", None),
            value: Some(0.5),
            timestamp: Some(timestamp(1_700_000_000_123)),
        };
        for key in keys {
            for kind in [
                pb::MetricType::Counter,
                pb::MetricType::Gauge,
                pb::MetricType::Untyped,
            ] {
                for ts in [None, Some(0), Some(-5), Some(1_700_000_000_123)] {
                    for ex in [None, Some(exemplar.clone())] {
                        if ex.is_some() && kind != pb::MetricType::Counter {
                            continue;
                        }
                        let value = Some(-2.5);
                        let mut expected = pb::Metric {
                            label: label_pairs(key, None),
                            timestamp_ms: ts,
                            ..Default::default()
                        };
                        match kind {
                            pb::MetricType::Counter => {
                                expected.counter = Some(pb::Counter {
                                    value,
                                    exemplar: ex.clone(),
                                    ..Default::default()
                                })
                            }
                            pb::MetricType::Gauge => expected.gauge = Some(pb::Gauge { value }),
                            _ => expected.untyped = Some(pb::Untyped { value }),
                        }
                        let mut want = Vec::new();
                        prost::encoding::message::encode(4, &expected, &mut want);
                        let mut got = Vec::new();
                        PlainMetric {
                            labels: key,
                            kind,
                            value: -2.5,
                            exemplar: ex,
                            timestamp_ms: ts,
                        }
                        .encode(&mut Vec::new(), &mut got);
                        assert_eq!(got, want, "{key} {kind:?} {ts:?}");
                    }
                }
            }
        }
        let labels = label_pairs(keys[2], None);
        assert_eq!(
            (labels[0].value(), labels[1].name(), labels[1].value()),
            ("q\"\\\n", "b.c", "ü")
        );
        assert_eq!(label_pairs(keys[3], None)[0].name(), "c\"d");
    }

    /// A family written in pieces is, piece by piece, what prost makes of
    /// the whole message.
    #[test]
    fn an_open_family_writes_what_encode_length_delimited_writes() {
        let metric = |v: f64| pb::Metric {
            label: label_pairs("x{a=\"1\",\"b.c\"=\"q\\\"\\\\\"}", None),
            gauge: Some(pb::Gauge { value: Some(v) }),
            timestamp_ms: Some(-1),
            ..Default::default()
        };
        let mut open = OpenFamily::new(
            "x_seconds",
            Some("help"),
            pb::MetricType::Gauge,
            Some("seconds"),
        );
        let mut buf = Vec::new();
        open.close_into(&mut buf);
        assert!(buf.is_empty(), "no metric, no message");
        open.push(&metric(1.0));
        open.push(&metric(2.0));
        open.close_into(&mut buf);
        open.push(&metric(3.0));
        open.close_into(&mut buf);
        let family = |metric: Vec<pb::Metric>| pb::MetricFamily {
            name: Some("x_seconds".into()),
            help: Some("help".into()),
            r#type: Some(pb::MetricType::Gauge as i32),
            metric,
            unit: Some("seconds".into()),
        };
        let mut expected = family(vec![metric(1.0), metric(2.0)]).encode_length_delimited_to_vec();
        expected.extend(family(vec![metric(3.0)]).encode_length_delimited_to_vec());
        assert_eq!(buf, expected);
        let labels = &metric(0.0).label;
        assert_eq!(
            (labels[1].name(), labels[1].value()),
            ("b.c", "q\"\\"),
            "names and values unescaped"
        );
        // A unit the name does not end in is left off, as on OpenMetrics pages.
        let open = OpenFamily::new("x", None, pb::MetricType::Gauge, Some("seconds"));
        assert!(open.tail.is_empty());
        assert_eq!(
            timestamp(-1),
            pb::Timestamp {
                seconds: Some(-1),
                nanos: Some(999_000_000)
            }
        );
    }
}
