//! The protocol-independent model: samples, metadata, the decoded batch and
//! the reasons a series can be rejected; canonical keys in [`key`]; native
//! histograms, their validation and their classic form in [`histogram`].
//!
//! Everything here is pure and synchronous: every protocol's decoder lowers
//! into these types, the store applies them, and nothing here knows about
//! HTTP or a runtime.

mod float;
pub mod histogram;
mod key;

pub use float::{
    go_float, parse_go_float, parse_go_float_str, parse_short_decimal, write_go_float,
};
pub use histogram::{HistogramError, NativeHistogram};
pub use key::{
    KeyLabels, KeyName, KeySpan, KeyWriter, KnownNames, SeriesTraits, SymbolFacts, build_key,
    build_pushed_key, build_pushed_key_escaped, escape_label_value, is_legacy_label_name,
    is_legacy_metric_name, is_text_format_float, key_name, name_in_key, name_order, parse_key,
    split_key, store_name, unescape_value, write_label_text,
};

use std::fmt;

/// The NaN bit pattern Prometheus uses as a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Is `value` the Prometheus staleness marker?
#[inline]
pub fn is_stale_marker(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// One sample: a value and its timestamp in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The sample value; may be NaN or infinite.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// The metric type carried by Remote-Write metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MetricType {
    /// No type was given.
    #[default]
    Unknown,
    /// A monotonic counter.
    Counter,
    /// A gauge.
    Gauge,
    /// A classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// An OpenMetrics gauge histogram; exposed untyped.
    GaugeHistogram,
    /// A summary (quantile series, `_sum`, `_count`).
    Summary,
    /// An OpenMetrics info metric; exposed untyped.
    Info,
    /// An OpenMetrics state set; exposed untyped.
    StateSet,
}

impl MetricType {
    /// The type word of the text format 0.0.4, or `None` where that format has
    /// no such type and the family is exposed untyped.
    pub fn text_format_name(self) -> Option<&'static str> {
        match self {
            MetricType::Counter => Some("counter"),
            MetricType::Gauge => Some("gauge"),
            MetricType::Histogram => Some("histogram"),
            MetricType::Summary => Some("summary"),
            _ => None,
        }
    }
}

/// The suffixes a family's metric names may add to the family name in the
/// text format: none (gauges, untyped, summaries' quantiles), `_total`
/// (counters named the OpenMetrics way), `_bucket` (histograms), `_count`
/// and `_sum` (histograms and summaries).
pub const FAMILY_SUFFIXES: [&str; 5] = ["", "_total", "_bucket", "_count", "_sum"];

/// The family a series of metric `name` and type `t` belongs to, for
/// metadata that comes with each series (Remote-Write 2.0): a classic
/// histogram's `_bucket`, `_count` and `_sum` and a summary's `_count` and
/// `_sum` belong to the base name; every other name is its own family (a
/// counter `x_total` is family `x_total`, as the text format names it).
pub fn family_name(name: &str, t: MetricType) -> &str {
    let suffixes: &[&str] = match t {
        MetricType::Histogram => &["_bucket", "_count", "_sum"],
        MetricType::Summary => &["_count", "_sum"],
        _ => &[],
    };
    suffixes
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|base| !base.is_empty()))
        .unwrap_or(name)
}

/// HELP, TYPE and unit of one metric family, as pushed by the sender.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// The family's type.
    pub metric_type: MetricType,
    /// The help text, unescaped.
    pub help: String,
    /// The unit, if any (kept, but the text format 0.0.4 cannot show it).
    pub unit: String,
}

/// Why a series (or a metadata entry) was not stored.
///
/// Each reason is a label value of `promgate_series_rejected_total` and
/// `promgate_samples_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The label set has no `__name__` (or an empty one).
    MissingMetricName,
    /// `__name__` does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    InvalidMetricName,
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`.
    InvalidLabelName,
    /// The same label name appears twice.
    DuplicateLabelName,
    /// More labels than `--limits.labels-per-series`.
    TooManyLabels,
    /// A label name longer than `--limits.label-name-length`.
    LabelNameTooLong,
    /// A label value longer than `--limits.label-value-length`.
    LabelValueTooLong,
    /// A new series beyond `--limits.series`.
    SeriesLimit,
    /// New metadata beyond `--limits.metadata`.
    MetadataLimit,
    /// A native histogram that breaks a rule Prometheus holds native
    /// histograms to (`HistogramError`: spans that do not match the
    /// buckets, negative counts, a count below its buckets' sum, an
    /// unsupported schema, ...).
    InvalidNativeHistogram,
    /// A native histogram with more buckets (or custom bounds) than
    /// `--limits.native-histogram-buckets` even at the lowest resolution.
    NativeHistogramBucketLimit,
    /// A label name starting with `__` (other than `__name__`): scrapers
    /// drop such labels (vmagent after relabeling), so series differing only
    /// in them would merge downstream; Remote-Write 2.0 reserves them.
    ReservedLabelName,
    /// A label name or value, or a metadata string, that is not valid UTF-8.
    InvalidUtf8,
    /// A sample stamped further ahead of promgate's clock than
    /// `--limits.future-time-window`.
    TimestampTooFarInFuture,
    /// Metadata whose HELP text or unit is longer than `--limits.help-length`:
    /// a scraper reads each line of the page into a bounded buffer (vmagent:
    /// 256 KiB), so one huge HELP line would fail the whole page.
    MetadataTooLong,
    /// A Remote-Write 2.0 reference into the symbols table that is out of
    /// range, or a `labels_refs` list of odd length.
    InvalidSymbolReference,
    /// A Remote-Write 2.0 series with neither samples nor histograms.
    EmptySeries,
    /// A sample stamped at or before the Unix epoch (0 or negative): the
    /// text format's scrapers cannot read it (Prometheus' parser takes
    /// unsigned timestamps only) or drop it.
    TimestampNotAfterEpoch,
}

impl RejectReason {
    /// Every reason, in a stable order.
    pub const ALL: [RejectReason; 18] = [
        RejectReason::MissingMetricName,
        RejectReason::InvalidMetricName,
        RejectReason::InvalidLabelName,
        RejectReason::DuplicateLabelName,
        RejectReason::TooManyLabels,
        RejectReason::LabelNameTooLong,
        RejectReason::LabelValueTooLong,
        RejectReason::SeriesLimit,
        RejectReason::MetadataLimit,
        RejectReason::InvalidNativeHistogram,
        RejectReason::NativeHistogramBucketLimit,
        RejectReason::ReservedLabelName,
        RejectReason::InvalidUtf8,
        RejectReason::TimestampTooFarInFuture,
        RejectReason::TimestampNotAfterEpoch,
        RejectReason::InvalidSymbolReference,
        RejectReason::EmptySeries,
        RejectReason::MetadataTooLong,
    ];

    /// The snake_case label value used in self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::MissingMetricName => "missing_metric_name",
            RejectReason::InvalidMetricName => "invalid_metric_name",
            RejectReason::InvalidLabelName => "invalid_label_name",
            RejectReason::DuplicateLabelName => "duplicate_label_name",
            RejectReason::TooManyLabels => "too_many_labels",
            RejectReason::LabelNameTooLong => "label_name_too_long",
            RejectReason::LabelValueTooLong => "label_value_too_long",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::MetadataLimit => "metadata_limit",
            RejectReason::InvalidNativeHistogram => "invalid_native_histogram",
            RejectReason::NativeHistogramBucketLimit => "native_histogram_bucket_limit",
            RejectReason::ReservedLabelName => "reserved_label_name",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::TimestampTooFarInFuture => "timestamp_too_far_in_future",
            RejectReason::TimestampNotAfterEpoch => "timestamp_not_after_epoch",
            RejectReason::InvalidSymbolReference => "invalid_symbol_reference",
            RejectReason::EmptySeries => "empty_series",
            RejectReason::MetadataTooLong => "metadata_too_long",
        }
    }
}

/// A rejection with the detail a sender needs to find the offending series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The class of the problem.
    pub reason: RejectReason,
    /// One line naming the offending name or limit.
    pub detail: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Per-series limits applied while building canonical keys.
#[derive(Clone, Copy, Debug)]
pub struct SeriesLimits {
    /// Maximum number of labels (including `__name__`) after dropping empty values.
    pub max_labels: usize,
    /// Maximum label name length in bytes.
    pub max_name_len: usize,
    /// Maximum label value length in bytes.
    pub max_value_len: usize,
    /// Maximum length of a family's HELP text (and unit) in bytes.
    pub max_help_len: usize,
    /// Most buckets, and most custom bounds, a native histogram keeps
    /// ([`NativeHistogram::limit_buckets`]); 0 for no limit.
    pub max_histogram_buckets: usize,
}

/// One valid series of a request, reduced to the sample that decides its state.
#[derive(Clone, Copy, Debug)]
pub struct SeriesUpdate {
    /// Where the canonical key is in [`WriteBatch::keys`].
    pub key: KeySpan,
    /// The sample with the greatest timestamp (the last one among equals).
    pub latest: Sample,
    /// How many float samples the request carried for this series.
    pub samples: u32,
    /// How many valid exemplars came with them (Remote-Write 2.0 counts
    /// them as written when the series is).
    pub exemplars: u32,
    /// The latest of those exemplars: its index in [`WriteBatch::exemplars`],
    /// or [`NO_EXEMPLAR`]. An index rather than the exemplar itself, so
    /// that the series that carry none (nearly all) stay as small as before
    /// for the store's walk over the batch.
    pub exemplar: u32,
    /// The native histograms of the series: an index in
    /// [`WriteBatch::histograms`], or [`NO_HISTOGRAM`] for a series that
    /// carried none (nearly all: the struct stays 40 bytes either way).
    pub histogram: u32,
}

/// [`SeriesUpdate::histogram`] of a series that carried no native histogram.
pub const NO_HISTOGRAM: u32 = u32::MAX;

/// The native histograms one series of a request carried.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchHistogram {
    /// How many valid histograms within the time range it carried: all
    /// are written, as floats superseded by a later sample are.
    pub written: u32,
    /// The one that decides the series' state: the latest (the last among
    /// equal timestamps), unless a float sample of the series is later
    /// still (`None`; the series then holds that float). Its timestamp is
    /// the [`SeriesUpdate::latest`] one.
    pub latest: Option<NativeHistogram>,
}

/// [`SeriesUpdate::exemplar`] of a series that carried no valid exemplar.
pub const NO_EXEMPLAR: u32 = u32::MAX;

/// The most label characters an exemplar may carry: OpenMetrics 1.0,
/// "Exemplars": "The combined length of the label names and values of an
/// Exemplar's LabelSet MUST NOT exceed 128 UTF-8 characters." Counted in
/// characters (code points), not bytes, and without the quotes, `=` and
/// `,` of the text, as Prometheus' `exemplar.ExemplarMaxLabelSetLength`.
pub const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

/// The exemplar a series update keeps: the one with the greatest timestamp
/// (the later among equals) of those the request carried that passed the
/// rules ([`ExemplarRejectReason`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// Where its label text is in [`WriteBatch::keys`]: OpenMetrics label
    /// text without braces (`trace_id="abc",span_id="x"`), names sorted as
    /// Prometheus sorts them, values escaped as in keys, a name outside the
    /// legacy set quoted (`"service.name"="api"`); empty for no labels.
    pub labels: TextSpan,
    /// The exemplar's value.
    pub value: f64,
    /// Milliseconds since the epoch; `0` is "no timestamp", as Prometheus'
    /// receiver reads it (`HasTs: timestamp != 0`).
    pub timestamp_ms: i64,
}

/// A run of text in [`WriteBatch::keys`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TextSpan {
    /// Byte offset in the arena.
    pub start: u32,
    /// Byte length.
    pub len: u32,
}

/// Why an exemplar was not kept. Its series and samples are stored all the
/// same and the request is not failed for it, as Prometheus' receiver only
/// logs a refused exemplar; it is not counted as written.
///
/// Each reason is a label value of `promgate_exemplars_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExemplarRejectReason {
    /// Label names and values of more than [`EXEMPLAR_MAX_LABEL_CHARS`]
    /// characters in all (OpenMetrics 1.0, "Exemplars").
    LabelsTooLong,
    /// An empty label name, or a name twice: not an OpenMetrics label set
    /// ("Label names MUST be unique within a LabelSet"), so no page could
    /// show it.
    InvalidLabels,
    /// A timestamp (other than 0, "none") outside the range samples are
    /// accepted in: at or before the epoch, or further ahead than
    /// `--limits.future-time-window`. As for samples: one exemplar from a
    /// bad clock would otherwise stay shown over every correct one.
    TimestampOutOfRange,
}

impl ExemplarRejectReason {
    /// Every reason, in a stable order.
    pub const ALL: [ExemplarRejectReason; 3] = [
        ExemplarRejectReason::LabelsTooLong,
        ExemplarRejectReason::InvalidLabels,
        ExemplarRejectReason::TimestampOutOfRange,
    ];

    /// The snake_case label value used in self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ExemplarRejectReason::LabelsTooLong => "exemplar_labels_too_long",
            ExemplarRejectReason::InvalidLabels => "invalid_exemplar_labels",
            ExemplarRejectReason::TimestampOutOfRange => "exemplar_timestamp_out_of_range",
        }
    }
}

/// Counts of what a request could not store, and the first reason why.
#[derive(Clone, Debug, Default)]
pub struct Rejections {
    /// Rejected series and metadata entries per reason.
    pub series: Vec<(RejectReason, u64)>,
    /// How many of `series` are metadata entries.
    pub metadata: u64,
    /// Rejected samples per reason.
    pub samples: Vec<(RejectReason, u64)>,
    /// The first rejection, for the response body.
    pub first: Option<Rejection>,
    /// Exemplars not kept, per reason (their series were stored; these
    /// never fail a request, so they have no place in `first`).
    pub exemplars: Vec<(ExemplarRejectReason, u64)>,
}

impl Rejections {
    /// Records one rejected series carrying `samples` samples.
    pub fn add(&mut self, rejection: Rejection, samples: u64) {
        bump(&mut self.series, rejection.reason, 1);
        if samples > 0 {
            bump(&mut self.samples, rejection.reason, samples);
        }
        if self.first.is_none() {
            self.first = Some(rejection);
        }
    }

    /// Records `samples` rejected samples of a series that was otherwise
    /// stored (so the series itself is not counted as rejected).
    pub fn add_samples(&mut self, rejection: Rejection, samples: u64) {
        bump(&mut self.samples, rejection.reason, samples);
        if self.first.is_none() {
            self.first = Some(rejection);
        }
    }

    /// Records one rejected metadata entry (HELP/TYPE/unit of a family).
    pub fn add_metadata(&mut self, rejection: Rejection) {
        self.metadata += 1;
        self.add(rejection, 0);
    }

    /// Total rejected series (metadata entries not included).
    pub fn series_total(&self) -> u64 {
        self.series.iter().map(|(_, n)| n).sum::<u64>() - self.metadata
    }

    /// Total rejected samples.
    pub fn samples_total(&self) -> u64 {
        self.samples.iter().map(|(_, n)| n).sum()
    }

    /// Records one exemplar not kept.
    pub fn add_exemplar(&mut self, reason: ExemplarRejectReason) {
        bump(&mut self.exemplars, reason, 1);
    }
}

fn bump<R: PartialEq>(counts: &mut Vec<(R, u64)>, reason: R, n: u64) {
    match counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, c)) => *c += n,
        None => counts.push((reason, n)),
    }
}

/// A decoded request in the model: valid series updates with their keys in
/// one arena, metadata, and what was rejected on the way.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    /// Arena holding every canonical key of `series`, and the label text
    /// of `exemplars`.
    pub keys: String,
    /// Valid series, in request order.
    pub series: Vec<SeriesUpdate>,
    /// The exemplar each series keeps, for the few that carry one
    /// ([`SeriesUpdate::exemplar`]).
    pub exemplars: Vec<Exemplar>,
    /// The native histograms of the few series that carry them
    /// ([`SeriesUpdate::histogram`]).
    pub histograms: Vec<BatchHistogram>,
    /// Metadata entries by family name.
    pub metadata: Vec<(String, Metadata)>,
    /// What the decoder rejected.
    pub rejected: Rejections,
}

impl WriteBatch {
    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.series.clear();
        self.exemplars.clear();
        self.histograms.clear();
        self.metadata.clear();
        self.rejected = Rejections::default();
    }

    /// The canonical key of `update`.
    pub fn key(&self, update: &SeriesUpdate) -> &str {
        let s = update.key.start as usize;
        &self.keys[s..s + update.key.len as usize]
    }

    /// The exemplar `update` keeps, with its label text.
    pub fn exemplar(&self, update: &SeriesUpdate) -> Option<(&Exemplar, &str)> {
        let e = self.exemplars.get(update.exemplar as usize)?;
        Some((e, self.text(e.labels)))
    }

    /// The native histograms `update` carried.
    pub fn histogram(&self, update: &SeriesUpdate) -> Option<&BatchHistogram> {
        self.histograms.get(update.histogram as usize)
    }

    /// The text of `span` in the arena.
    pub fn text(&self, span: TextSpan) -> &str {
        let s = span.start as usize;
        &self.keys[s..s + span.len as usize]
    }

    /// Bytes held by the batch's large buffers (arena, series and exemplar lists).
    pub fn capacity_bytes(&self) -> usize {
        self.keys.capacity()
            + self.series.capacity() * std::mem::size_of::<SeriesUpdate>()
            + self.exemplars.capacity() * std::mem::size_of::<Exemplar>()
    }

    /// The metric name of `update`.
    pub fn name(&self, update: &SeriesUpdate) -> &str {
        key_name(self.key(update), update.key.name_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_only_the_special_nan() {
        assert!(is_stale_marker(f64::from_bits(STALE_NAN_BITS)));
        assert!(!is_stale_marker(f64::NAN));
        assert!(!is_stale_marker(1.0));
    }
}
