//! The protocol-independent model: canonical series keys, samples, metadata and
//! the reasons a series can be rejected.
//!
//! Everything here is pure and synchronous. A series is identified by its
//! *canonical key*: the text-format prefix `name{a="x",b="y"}` built from its
//! label set sorted by name, with empty-valued labels dropped and values
//! escaped. Escaping is injective and names cannot contain the delimiters, so
//! two label sets are equal exactly when their canonical keys are equal, and
//! rendering a series is a copy of its key plus a value.

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
    /// A native histogram sample, which the text format 0.0.4 cannot carry.
    NativeHistogram,
}

impl RejectReason {
    /// Every reason, in a stable order.
    pub const ALL: [RejectReason; 10] = [
        RejectReason::MissingMetricName,
        RejectReason::InvalidMetricName,
        RejectReason::InvalidLabelName,
        RejectReason::DuplicateLabelName,
        RejectReason::TooManyLabels,
        RejectReason::LabelNameTooLong,
        RejectReason::LabelValueTooLong,
        RejectReason::SeriesLimit,
        RejectReason::MetadataLimit,
        RejectReason::NativeHistogram,
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
            RejectReason::NativeHistogram => "native_histogram",
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
}

impl Default for SeriesLimits {
    fn default() -> Self {
        SeriesLimits {
            max_labels: 64,
            max_name_len: 256,
            max_value_len: 4096,
        }
    }
}

/// Facts about a key that the exposition needs and that are cheap to learn
/// once at ingest rather than at every scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyFlags(u8);

impl KeyFlags {
    /// The key has an `le` label whose value is not a float the text-format
    /// parser accepts; such a series cannot be part of a typed histogram.
    pub const BAD_LE: u8 = 1;
    /// The key has a `quantile` label whose value is not a float the parser
    /// accepts; such a series cannot be part of a typed summary.
    pub const BAD_QUANTILE: u8 = 2;

    /// The flags as one byte, for compact storage.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Flags from [`KeyFlags::bits`].
    pub fn from_bits(bits: u8) -> Self {
        KeyFlags(bits)
    }

    /// Does the key carry an unparsable `le` label?
    pub fn bad_le(self) -> bool {
        self.0 & Self::BAD_LE != 0
    }

    /// Does the key carry an unparsable `quantile` label?
    pub fn bad_quantile(self) -> bool {
        self.0 & Self::BAD_QUANTILE != 0
    }
}

/// Where a canonical key was written in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpan {
    /// Byte offset of the key in the buffer.
    pub start: u32,
    /// Byte length of the whole key.
    pub len: u32,
    /// Byte length of the metric name, the key's first component.
    pub name_len: u32,
    /// Facts for the exposition.
    pub flags: KeyFlags,
}

/// Which bytes may appear in names: bit 0 — first byte of a label name,
/// bit 1 — later byte of a label name; bits 2 and 3 the same for metric names
/// (which also allow `:`).
const NAME_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] = 0b1111;
        } else if b.is_ascii_digit() {
            t[c] = 0b1010;
        } else if b == b':' {
            t[c] = 0b1100;
        }
        c += 1;
    }
    t
};

#[inline]
fn is_name(s: &[u8], first: u8, rest: u8) -> bool {
    match s {
        [] => false,
        [b0, tail @ ..] => {
            NAME_BYTES[usize::from(*b0)] & first != 0
                && tail.iter().all(|&c| NAME_BYTES[usize::from(c)] & rest != 0)
        }
    }
}

/// Is `s` a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`)?
pub fn is_valid_metric_name(s: &str) -> bool {
    is_name(s.as_bytes(), 0b0100, 0b1000)
}

/// Is `s` a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`)?
pub fn is_valid_label_name(s: &str) -> bool {
    is_name(s.as_bytes(), 0b0001, 0b0010)
}

/// Would the text-format parser (Go's `strconv.ParseFloat` without `p`, `P`
/// or `_`) accept `s` as a float? Used for `le` and `quantile` values.
pub fn is_text_format_float(s: &str) -> bool {
    // Fast path for what histograms carry: short digit strings with at most
    // one point (too short to overflow), or +Inf.
    let b = s.as_bytes();
    if s == "+Inf"
        || (b.len() <= 16
            && b.iter().any(u8::is_ascii_digit)
            && b.iter().all(|&c| c.is_ascii_digit() || c == b'.')
            && b.iter().filter(|&&c| c == b'.').count() <= 1)
    {
        return true;
    }
    if s.is_empty() || s.bytes().any(|c| matches!(c, b'p' | b'P' | b'_')) {
        return false;
    }
    match s.parse::<f64>() {
        // Go reports a range error for finite literals that overflow, such as 1e400.
        Ok(v) if v.is_infinite() => {
            let t = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
            t == "inf" || t == "infinity"
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Appends `value` escaped for a label value (`\\`, `\"`, `\n`) to `out`.
#[inline]
pub fn escape_label_value(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    // Most values are short and need no escaping: eight bytes at a time beats
    // setting up SIMD for them; longer ones go to memchr.
    if bytes.len() < 32 && !has_escapable(bytes) {
        out.push_str(value);
        return;
    }
    escape_slow(out, value);
}

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGHS: u64 = ONES << 7;

/// The high bit of each byte of `word` that is a `\\`, `"` or newline
/// (a byte equals `c` exactly when `byte ^ c` is zero), and possibly of the
/// bytes after it: only for testing against zero.
#[inline(always)]
fn escapable_bytes(word: u64) -> u64 {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    has_zero(word ^ (ONES * u64::from(b'\\')))
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\n')))
}

/// Is `test` non-zero for any eight-byte word of `bytes` (the last one
/// padded with zero bytes)?
#[inline(always)]
fn any_word(bytes: &[u8], test: impl Fn(u64) -> u64) -> bool {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        if test(u64::from_le_bytes(w.try_into().expect("8 bytes"))) != 0 {
            return true;
        }
    }
    // Built in a register: a copy into a stack array stalls the load after it.
    let last = words
        .remainder()
        .iter()
        .rev()
        .fold(0u64, |w, &b| (w << 8) | u64::from(b));
    test(last) != 0
}

/// Does `bytes` hold a `\\`, `"` or newline? Eight bytes per step; zero
/// padding never matches, as none of the three is a zero byte.
#[inline]
fn has_escapable(bytes: &[u8]) -> bool {
    any_word(bytes, escapable_bytes)
}

/// Is `bytes` ASCII with nothing to escape, a value a key takes as it is?
#[inline]
fn is_plain_value(bytes: &[u8]) -> bool {
    !any_word(bytes, |w| escapable_bytes(w) | (w & HIGHS))
}

#[inline(never)]
fn escape_slow(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for i in memchr::memchr3_iter(b'\\', b'"', b'\n', bytes) {
        out.push_str(&value[start..i]);
        out.push_str(match bytes[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// Builds the canonical key of a label set into `out` and returns where it is.
///
/// `scratch` is reused between calls to avoid an allocation per series. On
/// error, `out` is left as it was. A label set with several faults is
/// rejected for one of them: duplicates and the label count first, then the
/// metric name, then the other labels in order.
pub fn build_key<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: &SeriesLimits,
    scratch: &mut Vec<(&'a str, &'a str)>,
    out: &mut String,
) -> Result<KeySpan, Rejection> {
    let reject = |reason, detail: String| Err(Rejection { reason, detail });
    scratch.clear();
    scratch.extend(labels.into_iter().filter(|(_, v)| !v.is_empty()));
    // Prometheus sends label sets sorted by name; then this one check also
    // proves the names distinct.
    if !scratch.is_sorted_by(|a, b| a.0 < b.0) {
        scratch.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = scratch.windows(2).find(|w| w[0].0 == w[1].0) {
            return reject(
                RejectReason::DuplicateLabelName,
                format!("duplicate label name {:?}", w[0].0),
            );
        }
    }
    if scratch.len() > limits.max_labels {
        return reject(
            RejectReason::TooManyLabels,
            format!(
                "series has {} labels, more than the limit of {}",
                scratch.len(),
                limits.max_labels
            ),
        );
    }
    let Some(&(_, name)) = scratch.iter().find(|(n, _)| *n == "__name__") else {
        return reject(
            RejectReason::MissingMetricName,
            "series has no __name__ label".to_string(),
        );
    };
    check_lengths("__name__", name, limits)?;
    if !is_valid_metric_name(name) {
        return reject(
            RejectReason::InvalidMetricName,
            format!("invalid metric name {name:?}"),
        );
    }

    let start = out.len();
    out.reserve(
        name.len()
            + 2
            + scratch
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>(),
    );
    out.push_str(name);
    let mut flags = 0;
    let mut open = false;
    for &(n, v) in scratch.iter() {
        if n == "__name__" {
            continue;
        }
        let valid = check_lengths(n, v, limits).and_then(|()| {
            if is_valid_label_name(n) {
                Ok(())
            } else {
                Err(Rejection {
                    reason: RejectReason::InvalidLabelName,
                    detail: format!("invalid label name {n:?}"),
                })
            }
        });
        if let Err(rejection) = valid {
            out.truncate(start);
            return Err(rejection);
        }
        out.push(if open { ',' } else { '{' });
        open = true;
        out.push_str(n);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
        match n {
            "le" if !is_text_format_float(v) => flags |= KeyFlags::BAD_LE,
            "quantile" if !is_text_format_float(v) => flags |= KeyFlags::BAD_QUANTILE,
            _ => {}
        }
    }
    if open {
        out.push('}');
    }
    Ok(KeySpan {
        start: start as u32,
        len: (out.len() - start) as u32,
        name_len: name.len() as u32,
        flags: KeyFlags(flags),
    })
}

/// Checks one label against the length limits.
#[inline]
fn check_lengths(n: &str, v: &str, limits: &SeriesLimits) -> Result<(), Rejection> {
    if n.len() > limits.max_name_len {
        return Err(Rejection {
            reason: RejectReason::LabelNameTooLong,
            detail: format!(
                "label name of {} bytes is longer than the limit of {}",
                n.len(),
                limits.max_name_len
            ),
        });
    }
    if v.len() > limits.max_value_len {
        return Err(Rejection {
            reason: RejectReason::LabelValueTooLong,
            detail: format!(
                "value of label {n:?} has {} bytes, more than the limit of {}",
                v.len(),
                limits.max_value_len
            ),
        });
    }
    Ok(())
}

/// Writes a canonical key label by label, straight from the wire, for label
/// sets already in canonical form — the form Prometheus sends: `__name__`
/// first, the other names strictly increasing, every value non-empty, ASCII
/// and with nothing to escape, all within the limits.
///
/// [`KeyWriter::label`] returns `false` for anything else; the caller then
/// [`abandon`](KeyWriter::abandon)s the writer and takes [`build_key`], which
/// handles (or rejects) every label set. On the inputs the writer accepts
/// both produce the same key; a property test holds them to it.
pub struct KeyWriter<'o, 'a> {
    out: &'o mut String,
    limits: &'o SeriesLimits,
    start: usize,
    name_len: usize,
    labels: usize,
    previous: &'a [u8],
    flags: u8,
}

impl<'o, 'a> KeyWriter<'o, 'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'o mut String, limits: &'o SeriesLimits) -> Self {
        let start = out.len();
        KeyWriter {
            out,
            limits,
            start,
            name_len: 0,
            labels: 0,
            previous: b"",
            flags: 0,
        }
    }

    /// Appends one label; `false` if the label set is not in canonical form.
    #[inline]
    pub fn label(&mut self, name: &'a [u8], value: &'a [u8]) -> bool {
        let limits = self.limits;
        if name.len() > limits.max_name_len
            || value.is_empty()
            || value.len() > limits.max_value_len
        {
            return false;
        }
        self.labels += 1;
        if self.labels == 1 {
            if name != b"__name__" || !is_name(value, 0b0100, 0b1000) {
                return false;
            }
            // A valid metric name is ASCII.
            self.out.push_str(str_of(value));
            self.name_len = value.len();
            self.previous = name;
            return true;
        }
        if !sorts_after(name, self.previous)
            || !is_name(name, 0b0001, 0b0010)
            || !is_plain_value(value)
        {
            return false;
        }
        self.previous = name;
        let (name, value) = (str_of(name), str_of(value));
        self.out.push(if self.labels == 2 { '{' } else { ',' });
        self.out.push_str(name);
        self.out.push_str("=\"");
        self.out.push_str(value);
        self.out.push('"');
        match name {
            "le" if !is_text_format_float(value) => self.flags |= KeyFlags::BAD_LE,
            "quantile" if !is_text_format_float(value) => self.flags |= KeyFlags::BAD_QUANTILE,
            _ => {}
        }
        true
    }

    /// The key written; `None` (and `out` as it was) if the label set was
    /// empty or has more labels than the limit.
    pub fn finish(self) -> Option<KeySpan> {
        if self.labels == 0 || self.labels > self.limits.max_labels {
            self.abandon();
            return None;
        }
        if self.labels > 1 {
            self.out.push('}');
        }
        Some(KeySpan {
            start: self.start as u32,
            len: (self.out.len() - self.start) as u32,
            name_len: self.name_len as u32,
            flags: KeyFlags(self.flags),
        })
    }

    /// Leaves `out` as it was before this writer.
    pub fn abandon(self) {
        self.out.truncate(self.start);
    }
}

/// Does `name` sort strictly after `previous`? Neighbouring label names
/// nearly always differ in their first byte: decided there, without a call
/// to `memcmp`.
#[inline(always)]
fn sorts_after(name: &[u8], previous: &[u8]) -> bool {
    match (name.first(), previous.first()) {
        (Some(a), Some(b)) if a != b => a > b,
        _ => name > previous,
    }
}

/// `bytes`, checked ASCII by the caller, as a `str`.
#[inline(always)]
fn str_of(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: callers pass only bytes they checked to be ASCII (names by the
    // name table, values by `is_plain_value`), and ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
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
}

/// Counts of what a request could not store, and the first reason why.
#[derive(Clone, Debug, Default)]
pub struct Rejections {
    /// Rejected series (and metadata entries) per reason.
    pub series: Vec<(RejectReason, u64)>,
    /// Rejected samples per reason.
    pub samples: Vec<(RejectReason, u64)>,
    /// The first rejection, for the response body.
    pub first: Option<Rejection>,
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

    /// Total rejected series.
    pub fn series_total(&self) -> u64 {
        self.series.iter().map(|(_, n)| n).sum()
    }

    /// Total rejected samples.
    pub fn samples_total(&self) -> u64 {
        self.samples.iter().map(|(_, n)| n).sum()
    }

    /// Is there nothing rejected?
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

fn bump(counts: &mut Vec<(RejectReason, u64)>, reason: RejectReason, n: u64) {
    match counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, c)) => *c += n,
        None => counts.push((reason, n)),
    }
}

/// A decoded request in the model: valid series updates with their keys in
/// one arena, metadata, and what was rejected on the way.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    /// Arena holding every canonical key of `series`.
    pub keys: String,
    /// Valid series, in request order.
    pub series: Vec<SeriesUpdate>,
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
        self.metadata.clear();
        self.rejected = Rejections::default();
    }

    /// The canonical key of `update`.
    pub fn key(&self, update: &SeriesUpdate) -> &str {
        let s = update.key.start as usize;
        &self.keys[s..s + update.key.len as usize]
    }

    /// The metric name of `update`.
    pub fn name(&self, update: &SeriesUpdate) -> &str {
        let s = update.key.start as usize;
        &self.keys[s..s + update.key.name_len as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(labels: &[(&str, &str)]) -> Result<String, RejectReason> {
        let mut out = String::new();
        let mut scratch = Vec::new();
        build_key(
            labels.iter().copied(),
            &SeriesLimits::default(),
            &mut scratch,
            &mut out,
        )
        .map(|span| {
            assert_eq!(span.len as usize, out.len());
            out
        })
        .map_err(|r| r.reason)
    }

    #[test]
    fn key_is_sorted_and_drops_empty_values() {
        let a = key(&[("b", "2"), ("__name__", "m"), ("a", "1"), ("z", "")]).unwrap();
        let b = key(&[("a", "1"), ("__name__", "m"), ("b", "2")]).unwrap();
        assert_eq!(a, r#"m{a="1",b="2"}"#);
        assert_eq!(a, b);
        assert_eq!(key(&[("__name__", "up")]).unwrap(), "up");
    }

    #[test]
    fn key_escapes_values() {
        let k = key(&[("__name__", "m"), ("p", "a\\b\"c\nd é")]).unwrap();
        assert_eq!(k, r#"m{p="a\\b\"c\nd é"}"#);
    }

    #[test]
    fn key_rejections() {
        use RejectReason::*;
        assert_eq!(key(&[("job", "x")]), Err(MissingMetricName));
        assert_eq!(key(&[("__name__", "")]), Err(MissingMetricName));
        assert_eq!(key(&[("__name__", "1up")]), Err(InvalidMetricName));
        assert_eq!(key(&[("__name__", "up-1")]), Err(InvalidMetricName));
        assert_eq!(
            key(&[("__name__", "up"), ("a:b", "x")]),
            Err(InvalidLabelName)
        );
        assert_eq!(
            key(&[("__name__", "up"), ("é", "x")]),
            Err(InvalidLabelName)
        );
        assert_eq!(
            key(&[("__name__", "up"), ("a", "x"), ("a", "y")]),
            Err(DuplicateLabelName)
        );
        assert_eq!(
            key(&[("__name__", "up"), ("__name__", "up")]),
            Err(DuplicateLabelName)
        );
        let long = "v".repeat(5000);
        assert_eq!(
            key(&[("__name__", "up"), ("a", &long)]),
            Err(LabelValueTooLong)
        );
        let long_name = "n".repeat(300);
        assert_eq!(
            key(&[("__name__", "up"), (&long_name, "x")]),
            Err(LabelNameTooLong)
        );
        let many: Vec<(String, &str)> = (0..70).map(|i| (format!("l{i}"), "x")).collect();
        let mut labels: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        labels.push(("__name__", "up"));
        assert_eq!(key(&labels), Err(TooManyLabels));
    }

    #[test]
    fn key_flags_track_unparsable_le_and_quantile() {
        let mut out = String::new();
        let mut scratch = Vec::new();
        let l = SeriesLimits::default();
        let good = build_key(
            [("__name__", "h_bucket"), ("le", "+Inf")],
            &l,
            &mut scratch,
            &mut out,
        );
        assert_eq!(good.unwrap().flags, KeyFlags::default());
        let bad = build_key(
            [("__name__", "h_bucket"), ("le", "0x1p3")],
            &l,
            &mut scratch,
            &mut out,
        );
        assert!(bad.unwrap().flags.bad_le());
        let bad = build_key(
            [("__name__", "s"), ("quantile", "high")],
            &l,
            &mut scratch,
            &mut out,
        );
        assert!(bad.unwrap().flags.bad_quantile());
    }

    #[test]
    fn text_format_floats_follow_go() {
        for ok in ["1", "0.5", "+Inf", "-Inf", "inf", "NaN", "1e3", ".5", "5."] {
            assert!(is_text_format_float(ok), "{ok}");
        }
        for bad in ["", "abc", "1e400", "0x1p3", "1_000", "1,5", ".", "1.2.3"] {
            assert!(!is_text_format_float(bad), "{bad}");
        }
        assert!(is_text_format_float(&"9".repeat(300)));
        assert!(!is_text_format_float(&"9".repeat(400)), "overflows");
    }

    #[test]
    fn escapable_bytes_are_found_at_every_position() {
        for len in 0..40 {
            let plain = "a".repeat(len);
            assert!(!has_escapable(plain.as_bytes()), "{len}");
            for at in 0..len {
                for c in ['\\', '"', '\n'] {
                    let mut v = plain.clone().into_bytes();
                    v[at] = c as u8;
                    assert!(has_escapable(&v), "{len} {at} {c:?}");
                }
            }
        }
        // Neighbours of the three, and bytes with the high bit, are plain.
        assert!(!has_escapable("[]#!\x0b\t é日本".as_bytes()));
    }

    #[test]
    fn name_rules() {
        for ok in ["a", "_", "A_1", "__name__", "z9"] {
            assert!(is_valid_label_name(ok), "{ok}");
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "é", "a.b"] {
            assert!(!is_valid_label_name(bad), "{bad}");
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
        assert!(is_valid_metric_name(":a:b"));
        assert!(!is_valid_label_name(":a"));
        assert!(!is_valid_label_name("a:b"));
    }

    #[test]
    fn stale_marker_is_only_the_special_nan() {
        assert!(is_stale_marker(f64::from_bits(STALE_NAN_BITS)));
        assert!(!is_stale_marker(f64::NAN));
        assert!(!is_stale_marker(1.0));
    }
}
