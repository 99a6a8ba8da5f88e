//! Bodies pushed to the Pushgateway API (`PUT`/`POST /metrics/job/…`), read
//! as strictly as the Pushgateway reads them.
//!
//! A push is the text format 0.0.4 ([`parse_text`]) or delimited protobuf
//! `io.prometheus.client.MetricFamily` messages ([`parse_delimited`]); both
//! give the same [`ParsedFamily`] list. The Pushgateway then runs
//! client_golang's consistency check over the pushed group before it
//! answers; [`check_push`] is that check for one push on its own (what
//! depends on other groups is the caller's).
//!
//! The reference is the Debian Pushgateway 1.5.1 (client_golang 1.14,
//! common's `expfmt`), and `tests/push_parser.rs` holds promgate to it: the
//! same verdict for every body of a corpus and of generated mutations, and,
//! for what both accept, the same samples.
//!
//! # Deliberate differences
//!
//! promgate refuses (400) a few bodies the Pushgateway accepts (200), where
//! the Pushgateway would silently drop, rename or garble what was pushed, or
//! break its own page:
//!
//! - text: a HELP that is not UTF-8 (promgate's help is text); a sample of a
//!   `gauge_histogram` family (Go's parser loses its own error, and the
//!   Pushgateway's page then stops at that family);
//! - protobuf: see [`parse_delimited`] (a body ending in or right after a
//!   length prefix, invalid UTF-8, mismatched wire types, a family sent
//!   twice, names outside the legacy character set, unknown types, gauge
//!   histograms without native buckets or with classic ones, `le` labels on
//!   histograms), and native histograms that Prometheus' validation
//!   refuses ([`PushRule::InvalidNativeHistogram`]);
//! - both: the [`PushRule`]s `ReservedMetricName`, `MalformedSample` and
//!   `InvalidCount`, `InconsistentLabels` where the Pushgateway would keep
//!   two metrics, and `DuplicateSeries` for repeated histogram or summary
//!   samples and for series that differ only in empty-valued labels.
//!
//! And promgate accepts what the Pushgateway refuses only where the
//! Pushgateway compares the push with its own metrics (`go_*`, `process_*`,
//! `pushgateway_*`: a pushed `go_goroutines` must be a gauge there), which
//! promgate does not serve on the same page, and with other groups (the
//! caller's check).
//!
//! # Native histograms
//!
//! A protobuf push may carry native histograms (a histogram or gauge
//! histogram metric with any native field: schema, zero threshold or count,
//! spans, deltas, counts), as client_golang sends them. The Pushgateway
//! 1.5.1 keeps the message as sent, validates nothing, and shows it whole
//! on its protobuf page; its text page shows only the classic buckets
//! pushed beside (a native-only one as its integer count in a `+Inf`
//! bucket, so a float histogram's as 0), and stops at a gauge histogram.
//! promgate keeps the same: each is a [`ParsedNative`], validated as a
//! remote-written one (a bad one refuses the push, rule
//! [`PushRule::InvalidNativeHistogram`]), held to
//! `--limits.native-histogram-buckets` as one (a lower resolution, or the
//! push refused), and stored as a native histogram series named like its
//! family, beside the classic series of the buckets pushed with it, if any
//! (kept too, as the Pushgateway keeps both: a text page shows those, as
//! the Pushgateway's does, and hides the native one's classic form; a
//! protobuf page carries both). Shown on every page as a remote-written
//! one is.
//!
//! # What the Pushgateway exposes
//!
//! Not this module's business, but what the lowering of a push must decide:
//! the Pushgateway writes every histogram metric with its buckets in the
//! order pushed, then a `+Inf` bucket (the count) if none was pushed, then
//! `_sum` and `_count` (0 when not pushed); every summary metric with its
//! quantiles, `_sum` and `_count` (0 when not pushed); `le` and `quantile`
//! re-written by Go's float formatting (`1.0` → `1`, `1000000` → `1e+06`);
//! counts truncated to integers; `job` (and every grouping label) replaced by
//! the group's value, and `instance=""` added where missing.

mod check;
mod delimited;
mod fast;
mod lower;
mod scan;
mod text;

pub use check::{PUSH_TIME_METRICS, PushRule, check_push, check_push_grouped};
pub use delimited::parse_delimited;
pub use lower::{
    DELIMITED_PROTOBUF, Grouping, PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, PUSH_TIME,
    PUSH_TIME_HELP, PushBatch, PushEncoding, PushedFamily, decompress, is_delimited_protobuf,
    lower,
};
pub use text::{lower_text, parse_text};

use std::borrow::Cow;

use crate::model::MetricType;
use crate::model::histogram::RawHistogram;

/// One metric family of a pushed body, as the Go parser groups it. Names
/// and labels of a text body are slices of that body (`'a`); a protobuf
/// body's are owned.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedFamily<'a> {
    /// The family's name: for a histogram or summary, without `_bucket`,
    /// `_sum` or `_count`.
    pub name: Cow<'a, str>,
    /// The HELP text, unescaped.
    pub help: Option<String>,
    /// The family's type: [`MetricType::Unknown`] for untyped, else
    /// `Counter`, `Gauge`, `Histogram` or `Summary`.
    pub metric_type: MetricType,
    /// The family's samples, in body order.
    pub samples: Vec<ParsedSample<'a>>,
    /// The metrics of a histogram or gauge histogram family that carried
    /// native buckets (protobuf only: the text format has none), in body
    /// order. A metric with classic buckets too has its classic samples in
    /// `samples` as well.
    pub natives: Vec<ParsedNative>,
}

/// One pushed metric's native histogram, as sent: validated by
/// [`check_push`] (`NativeHistogram::from_raw`, as a remote-written one),
/// stored as a native histogram series named like its family.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedNative {
    /// The metric's labels, as for its samples.
    pub labels: Labels<'static>,
    /// The histogram's fields, unvalidated: counts integer or float as
    /// Prometheus' protobuf parser tells them, the reset hint `Gauge` in a
    /// gauge histogram family, no timestamp (the metric's is apart).
    pub raw: RawHistogram,
    /// The metric's timestamp, when one was given (refused by the check).
    pub timestamp_ms: Option<i64>,
}

/// One sample line (text) or one flattened sample (protobuf).
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample<'a> {
    /// The full sample name: the family name, or family + `_bucket`,
    /// `_sum` or `_count` for histograms and summaries.
    pub name: Cow<'a, str>,
    /// The labels as written, in body order, never `__name__`; `le` and
    /// `quantile` are kept as ordinary labels with their value text.
    pub labels: Labels<'a>,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds, when one was given.
    pub timestamp_ms: Option<i64>,
}

/// A sample's labels as the text format writes them between `{` and `}`,
/// normalised: `name="value"` pairs joined by `,`, no blanks, no trailing
/// comma, in body order, values escaped (`\\`, `\"`, `\n`, the only escapes
/// the format has).
///
/// Those are also the escapes of a canonical key
/// ([`escape_label_value`](crate::model::escape_label_value)), so the
/// lowering copies a value as written, and a text body's labels need no
/// allocation: most bodies are already in this form, and their labels are
/// a slice of the body. Two label lists are equal exactly when their texts
/// are (escaping is injective).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels<'a>(Cow<'a, str>);

impl<'a> Labels<'a> {
    /// Labels from `(name, value)` pairs, values unescaped: each value is
    /// escaped. Names must be label names (`[a-zA-Z_][a-zA-Z0-9_]*`): a
    /// name with `=` or `"` would not read back.
    pub fn from_pairs<'p>(pairs: impl IntoIterator<Item = (&'p str, &'p str)>) -> Labels<'static> {
        let mut out = Labels(Cow::Owned(String::new()));
        for (n, v) in pairs {
            out.push(n, v);
        }
        out
    }

    /// Labels already in the normalised form (the text parser's slice of a
    /// body it has checked).
    pub(crate) fn from_escaped(text: &'a str) -> Self {
        Labels(Cow::Borrowed(text))
    }

    /// [`Labels::from_escaped`], owned.
    pub(crate) fn from_escaped_owned(text: String) -> Self {
        Labels(Cow::Owned(text))
    }

    /// Appends a label (value unescaped).
    pub fn push(&mut self, name: &str, value: &str) {
        let out = self.0.to_mut();
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        crate::model::escape_label_value(out, value);
        out.push('"');
    }

    /// The normalised text, `a="x",b="y"`.
    pub fn as_text(&self) -> &str {
        &self.0
    }

    /// Has the sample no labels?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.escaped().count()
    }

    /// The labels as `(name, value as written)`: values still escaped, as
    /// a canonical key writes them.
    pub fn escaped(&self) -> Escaped<'_> {
        Escaped(&self.0)
    }

    /// The labels as `(name, value)`, values unescaped (borrowed unless
    /// they had an escape).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.escaped().map(|(n, v)| (n, unescape(v)))
    }

    /// The value of label `name`, unescaped.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.escaped()
            .find(|&(n, _)| n == name)
            .map(|(_, v)| unescape(v))
    }

    /// The labels as owned `(name, value)` pairs, values unescaped.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.into_owned()))
            .collect()
    }

    /// The same labels, owning their text.
    pub fn into_owned(self) -> Labels<'static> {
        Labels(Cow::Owned(self.0.into_owned()))
    }
}

/// The iterator of [`Labels::escaped`].
pub struct Escaped<'l>(&'l str);

impl<'l> Iterator for Escaped<'l> {
    type Item = (&'l str, &'l str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let text = self.0;
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return None;
        }
        // `name="`, then the value up to its closing, unescaped quote.
        // Names and values are short: plain loops beat setting up memchr.
        let eq = bytes.iter().position(|&c| c == b'=')?;
        let start = eq + 2;
        let mut end = start;
        loop {
            match bytes.get(end)? {
                b'"' => break,
                b'\\' => end += 2,
                _ => end += 1,
            }
        }
        let item = (&text[..eq], &text[start..end]);
        self.0 = &text[(end + 2).min(bytes.len())..];
        Some(item)
    }
}

/// A label value as written (`\\`, `\"`, `\n` escapes) unescaped.
pub fn unescape(escaped: &str) -> Cow<'_, str> {
    if !escaped.contains('\\') {
        return Cow::Borrowed(escaped);
    }
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
