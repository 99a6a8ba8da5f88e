//! The consistency check of one push: what the Pushgateway refuses in a body
//! that parses (client_golang's `Gatherers.Gather` over the pushed group,
//! run by the Pushgateway before it accepts a push), and what promgate
//! refuses beyond it where the Pushgateway would silently drop, rename or
//! garble what was pushed.

use std::fmt::{self, Write as _};

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::{HashSet, HashTable};

use super::{ParsedFamily, ParsedNative, ParsedSample};
use crate::ingest::Error;
use crate::model::{MetricType, NativeHistogram, name_order, parse_go_float};

/// The names the Pushgateway gives its own series in every group.
pub const PUSH_TIME_METRICS: [&str; 2] = ["push_time_seconds", "push_failure_time_seconds"];

/// Which rule of a push [`check_push`] found broken.
///
/// Each variant says what the Pushgateway 1.5.1 answers to the same body
/// pushed into an empty group (checked by `tests/push_parser.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PushRule {
    /// A sample carries a timestamp. The Pushgateway refuses every pushed
    /// timestamp ("pushed metrics must not have timestamps").
    Timestamp,
    /// A label name starts with `__`, which Prometheus reserves. The
    /// Pushgateway refuses it too ("has a label with an invalid name").
    ReservedLabelName,
    /// A family named `push_time_seconds` or `push_failure_time_seconds`.
    /// The Pushgateway answers 200 and replaces it with its own gauge, so
    /// what was pushed is lost; refused here instead.
    ReservedMetricName,
    /// A summary or histogram `x` and another family named like one of its
    /// series (`x_count`, `x_sum`, and a histogram's `x_bucket`). The
    /// Pushgateway refuses it too ("collides with previously collected").
    SuffixCollision,
    /// Two samples are the same series: the same name and label set, where
    /// the grouping labels (which the group's values replace), labels with
    /// an empty value (which Prometheus reads as absent) and the spelling of
    /// an `le` or `quantile` bound (`1` and `1.0`) do not count. The
    /// Pushgateway refuses the same for counters, gauges and untyped
    /// families; it accepts a repeated bucket, quantile, `_sum` or `_count`
    /// (exposing duplicate lines or keeping the last) and samples that differ
    /// only in empty-valued labels (exposing both).
    DuplicateSeries,
    /// The samples of one histogram or summary (one label set besides `le` or
    /// `quantile`) disagree on labels that do not count for identity: one
    /// carries a grouping label or an empty-valued label that another lacks.
    /// The Pushgateway keeps them as separate metrics: it refuses them when
    /// they then collide (grouping labels, an empty `instance`) and exposes
    /// both otherwise, each completed with an invented `_sum`, `_count` and
    /// `+Inf` bucket.
    InconsistentLabels,
    /// A sample that does not fit its histogram or summary: a histogram
    /// sample named like the family itself, a `_bucket` without `le`, an
    /// `le` on `_sum` or `_count`, a summary sample without `quantile`, a
    /// `quantile` on `_sum` or `_count`, a NaN bound, or `le` or `quantile`
    /// given twice. The Pushgateway answers 200 and drops the sample (or the
    /// label, or all but the last bound), or exposes a bare histogram sample
    /// as a bucket; refused here.
    MalformedSample,
    /// A histogram bucket or count, or a summary count, that is negative,
    /// NaN, infinite or at least 2^64. The Pushgateway answers 200 and
    /// stores Go's `uint64` conversion of it (2^64 - 1 for -1, 2^63 for NaN
    /// and +Inf); refused here. Fractional counts are accepted (the
    /// Pushgateway truncates them).
    InvalidCount,
    /// A native histogram (a pushed histogram metric with native fields)
    /// that Prometheus' `Validate` refuses, as a remote-written one is
    /// refused: spans that do not match the buckets sent, a negative
    /// count, a count that is not the buckets' total, an unknown schema,
    /// a bad zero threshold. The Pushgateway answers 200 and keeps it as
    /// sent, for a scraper to refuse; refused here.
    InvalidNativeHistogram,
    /// A series over promgate's per-series limits (labels per series, name
    /// and value lengths, `--limits.*`) or a HELP over
    /// `--limits.help-length`. The Pushgateway has no such limits; a remote
    /// write is held to the same ones.
    OverLimit,
}

impl PushRule {
    /// A short name of the rule, for logs and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            PushRule::Timestamp => "timestamp",
            PushRule::ReservedLabelName => "reserved_label_name",
            PushRule::ReservedMetricName => "reserved_metric_name",
            PushRule::SuffixCollision => "suffix_collision",
            PushRule::DuplicateSeries => "duplicate_series",
            PushRule::InconsistentLabels => "inconsistent_labels",
            PushRule::MalformedSample => "malformed_sample",
            PushRule::InvalidCount => "invalid_count",
            PushRule::InvalidNativeHistogram => "invalid_native_histogram",
            PushRule::OverLimit => "over_limit",
        }
    }
}

impl fmt::Display for PushRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks one parsed push for what the Pushgateway's consistency check
/// refuses within a single group, and for what promgate refuses beyond it
/// (see [`PushRule`]), with `job` as the only grouping label.
///
/// # Errors
///
/// [`Error::InvalidPush`] naming the first rule broken and the series.
pub fn check_push(families: &[ParsedFamily<'_>]) -> Result<(), Error> {
    check_push_grouped(families, &["job"])
}

/// [`check_push`] for a group whose grouping labels are named `grouping`
/// (`job` and those of the push URL): a pushed label of one of these names
/// is replaced by the group's value, so it does not tell series apart.
///
/// # Errors
///
/// [`Error::InvalidPush`] naming the first rule broken and the series.
pub fn check_push_grouped(families: &[ParsedFamily<'_>], grouping: &[&str]) -> Result<(), Error> {
    check_families(families, grouping).map(drop)
}

/// [`check_push_grouped`], returning per family how many histogram or
/// summary metrics it has (label sets besides the bound; 0 for other
/// types), which the lowering needs to know whether any lacks a `_sum`,
/// `_count` or `+Inf` bucket.
pub(super) fn check_families(
    families: &[ParsedFamily<'_>],
    grouping: &[&str],
) -> Result<Vec<usize>, Error> {
    // The Pushgateway looks for timestamps before anything else.
    for f in families {
        for s in &f.samples {
            if s.timestamp_ms.is_some() {
                return Err(invalid(
                    PushRule::Timestamp,
                    format!(
                        "{} has a timestamp: pushed metrics must not have timestamps",
                        Series(s)
                    ),
                ));
            }
        }
        if let Some(n) = f.natives.iter().find(|n| n.timestamp_ms.is_some()) {
            return Err(invalid(
                PushRule::Timestamp,
                format!(
                    "{} has a timestamp: pushed metrics must not have timestamps",
                    Series(&native_sample(f, n))
                ),
            ));
        }
    }
    let names: HashSet<&str, RandomState> = families.iter().map(|f| &*f.name).collect();
    for f in families {
        if PUSH_TIME_METRICS.contains(&&*f.name) {
            return Err(invalid(
                PushRule::ReservedMetricName,
                format!(
                    "metric {:?} is the push time the group keeps itself",
                    f.name
                ),
            ));
        }
        let suffixes: &[&str] = match f.metric_type {
            MetricType::Summary => &["_count", "_sum"],
            // A native histogram's classic form on a text page has these
            // series too, a gauge histogram's included.
            MetricType::Histogram | MetricType::GaugeHistogram => &["_count", "_sum", "_bucket"],
            _ => &[],
        };
        for suffix in suffixes {
            let other = format!("{}{suffix}", f.name);
            if names.contains(other.as_str()) {
                return Err(invalid(
                    PushRule::SuffixCollision,
                    format!(
                        "{} {:?} collides with metric {other:?}",
                        type_word(f.metric_type),
                        f.name
                    ),
                ));
            }
        }
    }
    let mut series = Identities::default();
    let samples: usize = families.iter().map(|f| f.samples.len()).sum();
    series.series.reserve(samples, |&(h, _)| h);
    let mut pairs = Vec::new();
    let mut metrics = Vec::with_capacity(families.len());
    for f in families {
        let kind = Kind::of(f);
        let mut metric_count = 0;
        for s in &f.samples {
            pairs.clear();
            pairs.extend(s.labels.escaped());
            if let Some((name, _)) = pairs.iter().find(|(n, _)| n.starts_with("__")) {
                return Err(invalid(
                    PushRule::ReservedLabelName,
                    format!(
                        "{} has label {name:?}: names starting with __ are reserved",
                        Series(s)
                    ),
                ));
            }
            let (role, bound) = kind.role(f, s, &pairs)?;
            if role.counts() && !(0.0..TWO_POW_64).contains(&s.value) {
                return Err(invalid(
                    PushRule::InvalidCount,
                    format!(
                        "{} is {}: a count must be at least 0 and below 2^64",
                        Series(s),
                        s.value
                    ),
                ));
            }
            metric_count += usize::from(series.add(f, s, &mut pairs, kind, bound, grouping)?);
        }
        // Native histograms: series named like the family, held to the
        // same identity rules as samples, and to Prometheus' validation.
        for n in &f.natives {
            let s = native_sample(f, n);
            let mut pairs: Vec<(&str, &str)> = s.labels.escaped().collect();
            if let Some((name, _)) = pairs.iter().find(|(n, _)| n.starts_with("__")) {
                return Err(invalid(
                    PushRule::ReservedLabelName,
                    format!(
                        "{} has label {name:?}: names starting with __ are reserved",
                        Series(&s)
                    ),
                ));
            }
            if let Err(e) = NativeHistogram::from_raw(&n.raw) {
                return Err(invalid(
                    PushRule::InvalidNativeHistogram,
                    format!("native histogram {} refused: {e}", Series(&s)),
                ));
            }
            series.add(f, &s, &mut pairs, Kind::Plain, None, grouping)?;
        }
        metrics.push(metric_count);
    }
    Ok(metrics)
}

/// A native histogram as the sample its series is: named like its family,
/// its count as value (messages and identity only).
fn native_sample<'f>(f: &'f ParsedFamily<'_>, n: &'f ParsedNative) -> ParsedSample<'f> {
    ParsedSample {
        name: std::borrow::Cow::Borrowed(&*f.name),
        labels: super::Labels::from_escaped(n.labels.as_text()),
        value: 0.0,
        timestamp_ms: n.timestamp_ms,
    }
}

/// 2^64: the counts Go can hold (as `uint64`) are below it.
pub(super) const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn invalid(rule: PushRule, detail: String) -> Error {
    Error::InvalidPush { rule, detail }
}

fn type_word(t: MetricType) -> &'static str {
    match t {
        MetricType::GaugeHistogram => "gauge histogram",
        _ => t.text_format_name().unwrap_or("untyped"),
    }
}

/// A sample written as `name{a="x",…}` for messages.
struct Series<'s>(&'s ParsedSample<'s>);

impl fmt::Display for Series<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)?;
        if !self.0.labels.is_empty() {
            f.write_char('{')?;
            for (i, (n, v)) in self.0.labels.escaped().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write!(f, "{n}={:?}", super::unescape(v))?;
            }
            f.write_char('}')?;
        }
        Ok(())
    }
}

/// Whether a family's samples are parts of histograms or summaries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Histogram,
    Summary,
}

/// What a sample is within its family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    Bucket,
    Quantile,
    Sum,
    HistogramCount,
    SummaryCount,
}

impl Role {
    fn counts(self) -> bool {
        matches!(
            self,
            Role::Bucket | Role::HistogramCount | Role::SummaryCount
        )
    }

    /// The label that is the bound of this sample, if it has one.
    fn bound(self) -> Option<&'static str> {
        match self {
            Role::Bucket => Some("le"),
            Role::Quantile => Some("quantile"),
            _ => None,
        }
    }
}

impl Kind {
    fn of(f: &ParsedFamily<'_>) -> Kind {
        match f.metric_type {
            MetricType::Histogram => Kind::Histogram,
            MetricType::Summary => Kind::Summary,
            _ => Kind::Plain,
        }
    }

    /// The special label of the family (`le` or `quantile`).
    fn special(self) -> Option<&'static str> {
        match self {
            Kind::Plain => None,
            Kind::Histogram => Some("le"),
            Kind::Summary => Some("quantile"),
        }
    }

    /// The sample's role, or why it does not fit the family; and its
    /// bound (`le` or `quantile`) as a number when it has one.
    fn role(
        self,
        f: &ParsedFamily<'_>,
        s: &ParsedSample<'_>,
        pairs: &[(&str, &str)],
    ) -> Result<(Role, Option<f64>), Error> {
        let Some(special) = self.special() else {
            return Ok((Role::Plain, None));
        };
        let suffix = s.name.strip_prefix(&*f.name).unwrap_or(&s.name);
        let role = match (self, suffix) {
            (Kind::Histogram, "_bucket") => Role::Bucket,
            (Kind::Summary, "") => Role::Quantile,
            (_, "_sum") => Role::Sum,
            (Kind::Histogram, "_count") => Role::HistogramCount,
            (Kind::Summary, "_count") => Role::SummaryCount,
            _ if self == Kind::Histogram => {
                return Err(malformed(
                    s,
                    format!(
                        "a histogram's samples are named {0}_bucket, {0}_sum and {0}_count",
                        f.name
                    ),
                ));
            }
            _ => {
                return Err(malformed(
                    s,
                    format!(
                        "a summary's samples are named {0}, {0}_sum and {0}_count",
                        f.name
                    ),
                ));
            }
        };
        let mut bounds = pairs.iter().filter(|&&(n, _)| n == special);
        let bound = bounds.next();
        if bounds.next().is_some() {
            return Err(malformed(s, format!("label {special:?} is given twice")));
        }
        match (role.bound(), bound) {
            (Some(_), None) => Err(malformed(s, format!("it has no {special:?} label"))),
            (None, Some(_)) => Err(malformed(
                s,
                format!("{special:?} belongs on the {} samples only", role_of(self)),
            )),
            // A value with an escape is no number either way.
            (Some(_), Some((_, v))) => match parse_go_float(v.as_bytes()) {
                Some(b) if !b.is_nan() => Ok((role, Some(b))),
                _ => Err(malformed(
                    s,
                    format!("{special:?} must be a number, not {:?}", super::unescape(v)),
                )),
            },
            _ => Ok((role, None)),
        }
    }
}

fn role_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Histogram => "_bucket",
        _ => "quantile",
    }
}

fn malformed(s: &ParsedSample<'_>, why: String) -> Error {
    invalid(
        PushRule::MalformedSample,
        format!("{} does not fit its family: {why}", Series(s)),
    )
}

/// The series seen so far, and for histograms and summaries each metric's
/// labels as written: canonical keys appended to one arena and found by
/// hash, so that checking a push allocates nothing per sample.
///
/// A key is the name, then per label (sorted by name, then value) `0xfe`,
/// the name, `0xff`, the value; neither byte occurs in UTF-8, so the key is
/// injective. A bound (`le`, `quantile`) is keyed by its number: `0xfd` and
/// the eight bytes of the float (zero and NaN made canonical), so `1` and
/// `1.0` are one bucket.
#[derive(Default)]
struct Identities {
    hasher: RandomState,
    arena: Vec<u8>,
    /// Series: (hash, key span in the arena).
    series: HashTable<(u64, Span)>,
    /// Histogram and summary metrics: (hash, key span, labels as written).
    metrics: HashTable<(u64, Span, Span)>,
    /// Reused between samples: the keys being built.
    key: Vec<u8>,
    metric: Vec<u8>,
    written: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl Identities {
    /// Adds sample `s` of family `f`, its labels `pairs` (name, value as
    /// written: escaping is injective, so values compare as written) and
    /// its bound's number if it has one. `true` when it is the first
    /// sample of a histogram or summary metric.
    fn add(
        &mut self,
        f: &ParsedFamily<'_>,
        s: &ParsedSample<'_>,
        pairs: &mut [(&str, &str)],
        kind: Kind,
        bound: Option<f64>,
        grouping: &[&str],
    ) -> Result<bool, Error> {
        let special = kind.special();
        let counts = |&(n, v): &(&str, &str)| !v.is_empty() && !grouping.contains(&n);
        // Names are distinct but for a repeated bound, which role() refused.
        if !pairs.is_sorted_by(|a, b| name_order(a.0, b.0).is_le()) {
            pairs.sort_unstable_by(|a, b| name_order(a.0, b.0));
        }

        // The series: its name and counted labels, a bound by its number.
        self.key.clear();
        self.key.extend_from_slice(s.name.as_bytes());
        for label in pairs.iter() {
            if !counts(label) {
                continue;
            }
            let &(n, v) = label;
            push_label(&mut self.key, n);
            match special.filter(|&sp| sp == n) {
                Some(_) => {
                    let bound = bound.unwrap_or(f64::NAN);
                    let bound = if bound.is_nan() {
                        f64::NAN
                    } else {
                        bound + 0.0
                    };
                    self.key.push(0xfd);
                    self.key.extend_from_slice(&bound.to_bits().to_le_bytes());
                }
                None => self.key.extend_from_slice(v.as_bytes()),
            }
        }
        let hash = self.hasher.hash_one(&self.key[..]);
        let arena = &self.arena;
        let key = &self.key;
        if self
            .series
            .find(hash, |&(h, span)| {
                h == hash && arena[span.start..span.end] == key[..]
            })
            .is_some()
        {
            return Err(invalid(
                PushRule::DuplicateSeries,
                format!(
                    "{} is pushed twice (labels with empty values and grouping labels do not tell series apart)",
                    Series(s)
                ),
            ));
        }
        let span = keep(&mut self.arena, &self.key);
        self.series.insert_unique(hash, (hash, span), |&(h, _)| h);
        let Some(special) = special else {
            return Ok(false);
        };

        // The metric this sample belongs to: the family and its counted
        // labels besides the bound; and the same labels as written.
        self.metric.clear();
        self.written.clear();
        self.metric.extend_from_slice(f.name.as_bytes());
        for label in pairs.iter() {
            let &(n, v) = label;
            if n == special {
                continue;
            }
            if counts(label) {
                push_label(&mut self.metric, n);
                self.metric.extend_from_slice(v.as_bytes());
            }
            push_label(&mut self.written, n);
            self.written.extend_from_slice(v.as_bytes());
        }
        let hash = self.hasher.hash_one(&self.metric[..]);
        let arena = &self.arena;
        let metric = &self.metric;
        let found = self.metrics.find(hash, |&(h, span, _)| {
            h == hash && arena[span.start..span.end] == metric[..]
        });
        match found {
            Some(&(_, _, first)) if arena[first.start..first.end] != self.written[..] => {
                Err(invalid(
                    PushRule::InconsistentLabels,
                    format!(
                        "{} and another sample of the same {} disagree on grouping or empty-valued labels",
                        Series(s),
                        type_word(f.metric_type)
                    ),
                ))
            }
            Some(_) => Ok(false),
            None => {
                let metric = keep(&mut self.arena, &self.metric);
                let written = keep(&mut self.arena, &self.written);
                self.metrics
                    .insert_unique(hash, (hash, metric, written), |&(h, _, _)| h);
                Ok(true)
            }
        }
    }
}

/// Appends a key to the arena; where it lies there.
fn keep(arena: &mut Vec<u8>, key: &[u8]) -> Span {
    let start = arena.len();
    arena.extend_from_slice(key);
    Span {
        start,
        end: arena.len(),
    }
}

/// Appends a label's separator and name to a key.
fn push_label(key: &mut Vec<u8>, name: &str) {
    key.push(0xfe);
    key.extend_from_slice(name.as_bytes());
    key.push(0xff);
}

#[cfg(test)]
mod tests {
    //! What the Pushgateway 1.5.1 answers to each body is in the comment of
    //! its case; `tests/push_parser.rs` checks these against the real one.

    use super::*;
    use crate::ingest::parse_text;

    fn check(body: &str) -> Result<(), Error> {
        check_push(&parse_text(body.as_bytes()).unwrap_or_else(|e| panic!("{body:?}: {e}")))
    }

    #[track_caller]
    fn accepted(body: &str) {
        if let Err(e) = check(body) {
            panic!("{body:?} refused: {e}");
        }
    }

    #[track_caller]
    fn refused(body: &str, rule: PushRule) {
        match check(body) {
            Err(Error::InvalidPush { rule: r, detail }) => {
                assert_eq!(r, rule, "{body:?}: {detail}");
                assert!(!detail.contains('\n'), "{detail:?}");
            }
            other => panic!("{body:?}: expected {rule}, got {other:?}"),
        }
    }

    #[test]
    fn realistic_pushes_pass() {
        accepted("");
        accepted(concat!(
            "# HELP job_duration_seconds Duration of the batch job.\n",
            "# TYPE job_duration_seconds histogram\n",
            "job_duration_seconds_bucket{stage=\"load\",le=\"0.5\"} 1.0\n",
            "job_duration_seconds_bucket{stage=\"load\",le=\"1.0\"} 3.0\n",
            "job_duration_seconds_bucket{stage=\"load\",le=\"+Inf\"} 4.0\n",
            "job_duration_seconds_count{stage=\"load\"} 4.0\n",
            "job_duration_seconds_sum{stage=\"load\"} 5.5\n",
            "job_duration_seconds_bucket{stage=\"save\",le=\"0.5\"} 0.0\n",
            "job_duration_seconds_bucket{stage=\"save\",le=\"+Inf\"} 0.0\n",
            "# TYPE rows summary\n",
            "rows{quantile=\"0.5\"} 10\n",
            "rows{quantile=\"0.99\"} 20\n",
            "rows_sum 100\n",
            "rows_count 7\n",
            "# TYPE rows_created gauge\n",
            "rows_created 1.7e9\n",
            "last_success_timestamp_seconds{job=\"x\",instance=\"a\"} 1.7e9\n",
            "records{table=\"a\"} 1\n",
            "records{table=\"b\"} 2\n",
        ));
        // Counts may be fractional (the Pushgateway truncates them) and the
        // buckets need not be cumulative nor end in +Inf (it adds one).
        accepted("# TYPE h histogram\nh_bucket{le=\"2\"} 5\nh_bucket{le=\"1\"} 7.5\nh_count 1.7\n");
        // An `instance` other than empty is a label like any other.
        accepted("a{instance=\"i\"} 1\na 2\n");
    }

    #[test]
    fn timestamps_are_refused() {
        // 400: pushed metrics must not have timestamps.
        refused("a 1 123\n", PushRule::Timestamp);
        refused("a 1\nb 2 -5\n", PushRule::Timestamp);
    }

    #[test]
    fn reserved_label_names() {
        // 400: has a label with an invalid name.
        refused("a{__x=\"y\"} 1\n", PushRule::ReservedLabelName);
        refused("a{b=\"c\",__=\"y\"} 1\n", PushRule::ReservedLabelName);
    }

    #[test]
    fn push_time_metrics() {
        // 200, and the Pushgateway keeps its own push_time_seconds instead.
        refused("push_time_seconds 5\n", PushRule::ReservedMetricName);
        refused(
            "# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds{a=\"b\"} 5\n",
            PushRule::ReservedMetricName,
        );
        accepted("push_time_seconds_total 5\n");
    }

    #[test]
    fn suffix_collisions() {
        // 400: collides with previously collected metric.
        refused(
            "x_count 1\n# TYPE x summary\nx{quantile=\"0.5\"} 1\n",
            PushRule::SuffixCollision,
        );
        refused(
            "x_sum 1\n# TYPE x histogram\nx_bucket{le=\"1\"} 1\n",
            PushRule::SuffixCollision,
        );
        refused(
            "x_bucket 1\n# TYPE x histogram\nx_sum 1\n",
            PushRule::SuffixCollision,
        );
        // 200: a summary has no buckets, a counter no suffixes.
        accepted("x_bucket 1\n# TYPE x summary\nx{quantile=\"0.5\"} 1\n");
        accepted("# TYPE x counter\nx_count 1\nx 2\n");
    }

    #[test]
    fn duplicate_series() {
        // 400: was collected before with the same name and label values.
        refused("a 1\na 2\n", PushRule::DuplicateSeries);
        refused("a{x=\"1\"} 1\na{x=\"1\"} 2\n", PushRule::DuplicateSeries);
        refused(
            "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n",
            PushRule::DuplicateSeries,
        );
        // The group's job replaces the pushed one; a missing instance is "".
        refused("a{job=\"x\"} 1\na 2\n", PushRule::DuplicateSeries);
        refused(
            "a{job=\"x\"} 1\na{job=\"y\"} 2\n",
            PushRule::DuplicateSeries,
        );
        refused("a{instance=\"\"} 1\na 2\n", PushRule::DuplicateSeries);
        // 200 there (it exposes both), refused here: an empty value is absent.
        refused("a{x=\"\"} 1\na 2\n", PushRule::DuplicateSeries);
        // 200 there with duplicate lines or the last value kept; refused here.
        refused(
            "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"1.0\"} 7\n",
            PushRule::DuplicateSeries,
        );
        refused(
            "# TYPE h histogram\nh_sum 1\nh_sum 2\n",
            PushRule::DuplicateSeries,
        );
        refused(
            "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.50\"} 2\n",
            PushRule::DuplicateSeries,
        );
        // Other grouping labels count only when named.
        let two = parse_text(b"a{instance=\"x\"} 1\na 2\n").unwrap();
        assert!(check_push(&two).is_ok());
        assert!(matches!(
            check_push_grouped(&two, &["job", "instance"]),
            Err(Error::InvalidPush {
                rule: PushRule::DuplicateSeries,
                ..
            })
        ));
    }

    #[test]
    fn one_metric_one_label_set() {
        // 400: the two become one metric once the job is replaced.
        refused(
            "# TYPE h histogram\nh_bucket{le=\"1\",job=\"a\"} 1\nh_sum{job=\"b\"} 2\n",
            PushRule::InconsistentLabels,
        );
        refused(
            "# TYPE h histogram\nh_sum{instance=\"\"} 1\nh_count 2\n",
            PushRule::InconsistentLabels,
        );
        // 200 there as two metrics, each completed with invented samples.
        refused(
            "# TYPE s summary\ns{quantile=\"0.5\",a=\"\"} 1\ns_sum 2\n",
            PushRule::InconsistentLabels,
        );
        accepted("# TYPE s summary\ns{quantile=\"0.5\",a=\"x\"} 1\ns_sum{a=\"x\"} 2\ns_sum 3\n");
    }

    #[test]
    fn malformed_histogram_and_summary_samples() {
        // Each is 200 at the Pushgateway, which drops or rewrites the sample.
        for body in [
            "# TYPE h histogram\nh{le=\"1\"} 5\n",
            "# TYPE h histogram\nh 5\n",
            "# TYPE h histogram\nh_bucket 1\n",
            "# TYPE h histogram\nh_sum{le=\"1\"} 1\n",
            "# TYPE h histogram\nh_count{le=\"1\"} 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 5\n",
            "# TYPE h histogram\nh_bucket{le=\"NaN\"} 1\n",
            "# TYPE s summary\ns 1\n",
            "# TYPE s summary\ns{quantile=\"NaN\"} 1\n",
            "# TYPE s summary\ns_sum{quantile=\"0.5\"} 1\n",
            "# TYPE s summary\ns{quantile=\"0.5\",quantile=\"0.9\"} 1\n",
        ] {
            refused(body, PushRule::MalformedSample);
        }
        // -Inf is a bound like any other.
        accepted("# TYPE h histogram\nh_bucket{le=\"-Inf\"} 1\n");
    }

    #[test]
    fn counts_must_fit_uint64() {
        // 200 there, exposing 2^64-1, 2^63, 2^63, 2^63.
        for v in ["-1", "NaN", "+Inf", "1e30", "18446744073709551616"] {
            refused(
                &format!("# TYPE h histogram\nh_count {v}\n"),
                PushRule::InvalidCount,
            );
        }
        refused(
            "# TYPE h histogram\nh_bucket{le=\"1\"} -2\n",
            PushRule::InvalidCount,
        );
        refused("# TYPE s summary\ns_count -1\n", PushRule::InvalidCount);
        // Sums and quantile values are any float.
        accepted("# TYPE s summary\ns{quantile=\"0.5\"} -1\ns_sum NaN\n");
        accepted("# TYPE h histogram\nh_count 18446744073709549568\n");
    }

    #[test]
    fn messages_are_one_line() {
        let e = check("a{b=\"x\\ny\"} 1\na{b=\"x\\ny\"} 2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "pushed metrics are invalid or inconsistent: a{b=\"x\\ny\"} is pushed twice \
             (labels with empty values and grouping labels do not tell series apart)"
        );
    }
}
