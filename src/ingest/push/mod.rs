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
//!   twice, names outside the legacy character set, gauge histograms and
//!   unknown types, `le` labels on histograms, native-only histograms);
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
mod lower;
mod text;

pub use check::{PUSH_TIME_METRICS, PushRule, check_push, check_push_grouped};
pub use delimited::parse_delimited;
pub use lower::{
    DELIMITED_PROTOBUF, Grouping, PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, PUSH_TIME,
    PUSH_TIME_HELP, PushBatch, PushEncoding, PushedFamily, decompress, is_delimited_protobuf,
    lower,
};
pub use text::parse_text;

use crate::model::MetricType;

/// One metric family of a pushed body, as the Go parser groups it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedFamily {
    /// The family's name: for a histogram or summary, without `_bucket`,
    /// `_sum` or `_count`.
    pub name: String,
    /// The HELP text, unescaped.
    pub help: Option<String>,
    /// The family's type: [`MetricType::Unknown`] for untyped, else
    /// `Counter`, `Gauge`, `Histogram` or `Summary`.
    pub metric_type: MetricType,
    /// The family's samples, in body order.
    pub samples: Vec<ParsedSample>,
}

/// One sample line (text) or one flattened sample (protobuf).
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    /// The full sample name: the family name, or family + `_bucket`,
    /// `_sum` or `_count` for histograms and summaries.
    pub name: String,
    /// The labels as written (unescaped), in body order, never `__name__`;
    /// `le` and `quantile` are kept as ordinary labels with their value text.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds, when one was given.
    pub timestamp_ms: Option<i64>,
}
