//! Prometheus native histograms: the model, its validation (as Prometheus
//! validates what it receives), and the classic-bucket form a text-format
//! scrape gets.
//!
//! A [`NativeHistogram`] is built only by [`NativeHistogram::from_raw`],
//! which validates a [`RawHistogram`] (the fields of a remote-write
//! `Histogram` message as they arrive, deltas and all) and decodes its bucket
//! deltas into absolute counts; `ingest` reads the wire format into a
//! [`RawHistogram`] (`NativeHistogram::decode`, in `ingest::histogram`). So
//! every value of the type is valid, and the classic form and the reduction
//! of resolution need no error paths.
//!
//! ## Buckets
//!
//! An exponential schema `s` (-4 to 8) splits each power of two into `2^s`
//! buckets: positive bucket `i` holds observations in
//! `(2^((i-1)/2^s), 2^(i/2^s)]`, negative bucket `i` the mirror image
//! `[-2^(i/2^s), -2^((i-1)/2^s))`, and the zero bucket everything in
//! `[-zero_threshold, zero_threshold]`. As in Prometheus, the zero bucket
//! takes precedence: a regular bucket only holds observations whose absolute
//! value is above the threshold. The custom-bucket schema (-53, "NHCB") has
//! positive buckets only: bucket `i` holds `(custom_values[i-1],
//! custom_values[i]]`, the first one starting at -Inf and the last one
//! (`i == custom_values.len()`) ending at +Inf.

use std::fmt;

/// The schema of histograms with custom bucket boundaries ("NHCB").
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// The lowest exponential schema: 16 powers of two per bucket.
pub const MIN_SCHEMA: i32 = -4;
/// The highest exponential schema: 256 buckets per power of two.
pub const MAX_SCHEMA: i32 = 8;
/// The highest of the schemas reserved for finer resolutions. Prometheus'
/// remote-write receiver accepts schemas 9 to 52 and reduces them to 8; so
/// does [`NativeHistogram::from_raw`].
pub const MAX_RESERVED_SCHEMA: i32 = 52;

/// A run of consecutive buckets: `offset` buckets after the end of the
/// previous span (for the first span: the index of its first bucket), then
/// `length` buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// The gap before the span (the first span: its first bucket's index).
    pub offset: i32,
    /// The number of buckets in the span.
    pub length: u32,
}

/// What the sender says about counter resets (`Histogram.ResetHint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResetHint {
    /// The sender does not know (0). Also what an unknown wire value reads as.
    #[default]
    Unknown,
    /// A counter reset happened just before this histogram (1).
    Yes,
    /// No counter reset happened (2).
    No,
    /// A gauge histogram, whose counts may go up and down (3).
    Gauge,
}

impl ResetHint {
    /// The hint of a wire value; numbers the enum does not know read as
    /// [`ResetHint::Unknown`], as an unknown hint tells nothing.
    pub fn from_wire(value: i32) -> Self {
        match value {
            1 => ResetHint::Yes,
            2 => ResetHint::No,
            3 => ResetHint::Gauge,
            _ => ResetHint::Unknown,
        }
    }

    /// The wire value of the hint.
    pub fn to_wire(self) -> i32 {
        match self {
            ResetHint::Unknown => 0,
            ResetHint::Yes => 1,
            ResetHint::No => 2,
            ResetHint::Gauge => 3,
        }
    }
}

/// One member of the `count` or `zero_count` oneof of the wire message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WireCount {
    /// `count_int` / `zero_count_int`.
    Int(u64),
    /// `count_float` / `zero_count_float`.
    Float(f64),
}

/// The fields of a remote-write `Histogram` (1.0's `prometheus.Histogram`
/// or 2.0's `io.prometheus.write.v2.Histogram`) as they arrive, before
/// validation: what the wire decoder fills and [`NativeHistogram::from_raw`]
/// checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawHistogram {
    /// The `count` oneof (fields 1, 2); which member was set decides
    /// whether the histogram is an integer or a float one.
    pub count: Option<WireCount>,
    /// Field 3.
    pub sum: f64,
    /// Field 4.
    pub schema: i32,
    /// Field 5.
    pub zero_threshold: f64,
    /// The `zero_count` oneof (fields 6, 7).
    pub zero_count: Option<WireCount>,
    /// Field 8.
    pub negative_spans: Vec<Span>,
    /// Field 9: each bucket's count as the difference from the previous one.
    pub negative_deltas: Vec<i64>,
    /// Field 10: absolute counts, for float histograms.
    pub negative_counts: Vec<f64>,
    /// Field 11.
    pub positive_spans: Vec<Span>,
    /// Field 12.
    pub positive_deltas: Vec<i64>,
    /// Field 13.
    pub positive_counts: Vec<f64>,
    /// Field 14, as sent.
    pub reset_hint: i32,
    /// Field 15, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Field 16: the custom bucket boundaries (in 1.0, outside the
    /// specification, but read by Prometheus).
    pub custom_values: Vec<f64>,
    /// Field 17 (2.0 only): when the histogram started counting, 0 if unset.
    pub start_timestamp_ms: i64,
}

/// The observation counts of a histogram, in the sender's flavour: integer
/// histograms travel as `count_int` and bucket deltas, float histograms
/// (results of aggregation, usually) as `count_float` and absolute counts.
/// Kept as sent, so that the histogram can be exposed unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum Counts {
    /// An integer histogram.
    Int {
        /// All observations (NaN ones included).
        count: u64,
        /// Observations in the zero bucket.
        zero_count: u64,
        /// Absolute bucket counts, negative buckets first, then positive.
        buckets: Box<[u64]>,
    },
    /// A float histogram.
    Float {
        /// All observations.
        count: f64,
        /// Observations in the zero bucket.
        zero_count: f64,
        /// Absolute bucket counts, negative buckets first, then positive.
        buckets: Box<[f64]>,
    },
}

impl Counts {
    fn len(&self) -> usize {
        match self {
            Counts::Int { buckets, .. } => buckets.len(),
            Counts::Float { buckets, .. } => buckets.len(),
        }
    }
}

/// The absolute counts of one side's buckets, in span order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BucketCounts<'a> {
    /// Of an integer histogram.
    Int(&'a [u64]),
    /// Of a float histogram.
    Float(&'a [f64]),
}

impl BucketCounts<'_> {
    /// The number of buckets.
    pub fn len(&self) -> usize {
        match self {
            BucketCounts::Int(b) => b.len(),
            BucketCounts::Float(b) => b.len(),
        }
    }

    /// Are there no buckets?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bucket `i`'s count as a float.
    pub fn get(&self, i: usize) -> f64 {
        match self {
            BucketCounts::Int(b) => b[i] as f64,
            BucketCounts::Float(b) => b[i],
        }
    }
}

/// A valid native histogram sample, bucket counts absolute.
///
/// Built by [`NativeHistogram::from_raw`] (or `NativeHistogram::decode`
/// from the wire), which enforce the invariants the methods rely on: a
/// supported schema, spans that describe exactly the buckets held, bucket
/// indexes in range, counts that are not negative.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeHistogram {
    schema: i32,
    reset_hint: ResetHint,
    zero_threshold: f64,
    sum: f64,
    timestamp_ms: i64,
    start_timestamp_ms: i64,
    counts: Counts,
    /// Negative spans, then positive spans.
    spans: Box<[Span]>,
    /// How many of `spans` are negative.
    negative_spans: usize,
    /// How many of the bucket counts are negative buckets.
    negative_buckets: usize,
    custom_values: Box<[f64]>,
}

/// Which side of zero a span or bucket list is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Buckets of negative observations.
    Negative,
    /// Buckets of positive observations (all buckets of custom schemas).
    Positive,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Negative => "negative",
            Side::Positive => "positive",
        })
    }
}

/// Why a histogram is refused. The checks are those of Prometheus'
/// `Histogram.Validate` and `FloatHistogram.Validate` (in that order where
/// both apply, so that a histogram draws the same first complaint), plus
/// promgate's own: the zero threshold, overflows, and custom bounds that
/// must all be finite.
#[derive(Clone, Debug, PartialEq)]
pub enum HistogramError {
    /// The protobuf framing is broken (from the wire decoder).
    Malformed(String),
    /// A schema other than -4..=52 or -53.
    InvalidSchema(i32),
    /// A zero threshold that is negative, infinite or NaN.
    InvalidZeroThreshold(f64),
    /// A span after the first with a negative offset (for custom buckets:
    /// any span with a negative offset).
    NegativeSpanOffset {
        /// The side of the span.
        side: Side,
        /// The span's position, counted from 1.
        span: usize,
        /// Its offset.
        offset: i32,
    },
    /// The span lengths do not add up to the number of buckets sent.
    SpansBucketsMismatch {
        /// The side.
        side: Side,
        /// The buckets the spans describe.
        spans_need: u64,
        /// The buckets sent.
        have: usize,
    },
    /// A bucket index beyond the 32 bits Prometheus keeps them in.
    IndexOutOfRange {
        /// The side.
        side: Side,
    },
    /// A bucket whose count (after adding up deltas) is negative.
    NegativeBucketCount {
        /// The side.
        side: Side,
        /// The bucket's position in its list, counted from 1.
        bucket: usize,
        /// Its count.
        count: f64,
    },
    /// Integer bucket deltas (or their total) overflowing 64 bits.
    CountOverflow {
        /// The side.
        side: Side,
    },
    /// A float histogram's negative count.
    NegativeCount(f64),
    /// A float histogram's negative zero-bucket count.
    NegativeZeroCount(f64),
    /// An integer histogram whose count differs from its buckets' total
    /// (with a sum that is not NaN: no NaN observations).
    CountMismatch {
        /// The buckets' total, zero bucket included.
        buckets: u64,
        /// The count field.
        count: u64,
    },
    /// An integer histogram whose count is below its buckets' total (with a
    /// NaN sum, the count may exceed it: NaN observations are in no bucket).
    CountTooSmall {
        /// The buckets' total, zero bucket included.
        buckets: u64,
        /// The count field.
        count: u64,
    },
    /// A custom bound that is NaN.
    CustomBoundNaN {
        /// Its position, counted from 1.
        index: usize,
    },
    /// A custom bound that is infinite.
    CustomBoundInfinite {
        /// Its position, counted from 1.
        index: usize,
        /// The bound.
        value: f64,
    },
    /// Custom bounds that do not strictly increase.
    CustomBoundsNotIncreasing {
        /// The position of the offending bound, counted from 1.
        index: usize,
        /// The bound before it.
        previous: f64,
        /// The offending bound.
        value: f64,
    },
    /// Spans reaching beyond the last custom bucket.
    CustomBoundsTooFew {
        /// The custom bounds sent.
        bounds: usize,
        /// The buckets the spans reach (bounds + 1 are available).
        spans_reach: u64,
    },
    /// A custom-bucket histogram with a zero-bucket count.
    CustomZeroCount,
    /// A custom-bucket histogram with a zero threshold.
    CustomZeroThreshold,
    /// A custom-bucket histogram with negative spans.
    CustomNegativeSpans,
    /// A custom-bucket histogram with negative buckets.
    CustomNegativeBuckets,
    /// An exponential histogram with custom bounds.
    ExponentialWithCustomBounds,
}

impl fmt::Display for HistogramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HistogramError as E;
        match self {
            E::Malformed(e) => write!(f, "malformed protobuf Histogram: {e}"),
            E::InvalidSchema(s) => write!(
                f,
                "histogram schema {s} is invalid: it must be between {MIN_SCHEMA} and {MAX_RESERVED_SCHEMA} for exponential buckets, or {CUSTOM_BUCKETS_SCHEMA} for custom buckets"
            ),
            E::InvalidZeroThreshold(t) => write!(
                f,
                "histogram zero threshold {t} is invalid: it must be finite and not negative"
            ),
            E::NegativeSpanOffset { side, span, offset } => write!(
                f,
                "histogram {side} span number {span} has the negative offset {offset}"
            ),
            E::SpansBucketsMismatch {
                side,
                spans_need,
                have,
            } => write!(
                f,
                "histogram {side} spans need {spans_need} buckets, the message has {have}"
            ),
            E::IndexOutOfRange { side } => write!(
                f,
                "histogram {side} spans reach a bucket index beyond 32 bits"
            ),
            E::NegativeBucketCount {
                side,
                bucket,
                count,
            } => write!(
                f,
                "histogram {side} bucket number {bucket} has the negative count {count}"
            ),
            E::CountOverflow { side } => {
                write!(f, "histogram {side} bucket counts overflow 64 bits")
            }
            E::NegativeCount(c) => write!(f, "histogram count {c} is negative"),
            E::NegativeZeroCount(c) => {
                write!(f, "histogram zero bucket count {c} is negative")
            }
            E::CountMismatch { buckets, count } => write!(
                f,
                "histogram count is {count} but its buckets hold {buckets} observations (they must be equal when the sum is not NaN)"
            ),
            E::CountTooSmall { buckets, count } => write!(
                f,
                "histogram count is {count} but its buckets hold {buckets} observations (more than the count)"
            ),
            E::CustomBoundNaN { index } => {
                write!(f, "histogram custom bound number {index} is NaN")
            }
            E::CustomBoundInfinite { index, value } => write!(
                f,
                "histogram custom bound number {index} is {value}: custom bounds must be finite (+Inf is implied)"
            ),
            E::CustomBoundsNotIncreasing {
                index,
                previous,
                value,
            } => write!(
                f,
                "histogram custom bound number {index} ({value}) is not above the one before it ({previous})"
            ),
            E::CustomBoundsTooFew {
                bounds,
                spans_reach,
            } => write!(
                f,
                "histogram has {bounds} custom bounds, too few for spans reaching {spans_reach} buckets"
            ),
            E::CustomZeroCount => f.write_str("custom-bucket histogram has a zero bucket count"),
            E::CustomZeroThreshold => f.write_str("custom-bucket histogram has a zero threshold"),
            E::CustomNegativeSpans => f.write_str("custom-bucket histogram has negative spans"),
            E::CustomNegativeBuckets => f.write_str("custom-bucket histogram has negative buckets"),
            E::ExponentialWithCustomBounds => {
                f.write_str("exponential histogram has custom bounds")
            }
        }
    }
}

impl std::error::Error for HistogramError {}

/// Checks one side's spans against the number of buckets sent; returns the
/// index one past the last bucket (0 if there are none).
/// `custom`: Prometheus' custom-bucket rule, no span offset may be negative.
fn check_spans(
    spans: &[Span],
    buckets: usize,
    side: Side,
    custom: bool,
) -> Result<i64, HistogramError> {
    let (mut need, mut end, mut last_end) = (0u64, 0i64, 0i64);
    for (n, span) in spans.iter().enumerate() {
        if span.offset < 0 && (n > 0 || custom) {
            return Err(HistogramError::NegativeSpanOffset {
                side,
                span: n + 1,
                offset: span.offset,
            });
        }
        need += u64::from(span.length);
        end += i64::from(span.offset) + i64::from(span.length);
        if span.length > 0 {
            last_end = end;
        }
    }
    if need != buckets as u64 {
        return Err(HistogramError::SpansBucketsMismatch {
            side,
            spans_need: need,
            have: buckets,
        });
    }
    // Indexes are 32-bit in Prometheus; the last one must fit.
    if buckets > 0 && last_end - 1 > i64::from(i32::MAX) {
        return Err(HistogramError::IndexOutOfRange { side });
    }
    Ok(last_end)
}

/// Adds up integer deltas into absolute counts, appended to `out`; returns
/// their total.
fn decode_deltas(deltas: &[i64], side: Side, out: &mut Vec<u64>) -> Result<u64, HistogramError> {
    let (mut last, mut total) = (0i64, 0u64);
    for (i, &d) in deltas.iter().enumerate() {
        let c = last
            .checked_add(d)
            .ok_or(HistogramError::CountOverflow { side })?;
        if c < 0 {
            return Err(HistogramError::NegativeBucketCount {
                side,
                bucket: i + 1,
                count: c as f64,
            });
        }
        total = total
            .checked_add(c as u64)
            .ok_or(HistogramError::CountOverflow { side })?;
        out.push(c as u64);
        last = c;
    }
    Ok(total)
}

/// Absolute counts as the deltas the wire carries (wrapping, as Go's
/// int64 arithmetic does).
fn to_deltas(counts: &[u64]) -> Vec<i64> {
    let mut last = 0i64;
    counts
        .iter()
        .map(|&c| {
            let d = (c as i64).wrapping_sub(last);
            last = c as i64;
            d
        })
        .collect()
}

/// Checks float counts (NaN passes, as in Prometheus), appended to `out`.
fn check_float_counts(
    counts: &[f64],
    side: Side,
    out: &mut Vec<f64>,
) -> Result<(), HistogramError> {
    for (i, &c) in counts.iter().enumerate() {
        if c < 0.0 {
            return Err(HistogramError::NegativeBucketCount {
                side,
                bucket: i + 1,
                count: c,
            });
        }
        out.push(c);
    }
    Ok(())
}

/// Prometheus' custom-bound checks, with promgate's one addition: a leading
/// -Inf, which Prometheus lets through, is refused too (its bucket could
/// hold nothing, and `le="-Inf"` means nothing to a scraper).
fn check_custom_bounds(bounds: &[f64]) -> Result<(), HistogramError> {
    for (i, &b) in bounds.iter().enumerate() {
        if b.is_nan() {
            return Err(HistogramError::CustomBoundNaN { index: i + 1 });
        }
        if i > 0 && b <= bounds[i - 1] {
            return Err(HistogramError::CustomBoundsNotIncreasing {
                index: i + 1,
                previous: bounds[i - 1],
                value: b,
            });
        }
    }
    if let Some((i, &b)) = bounds.iter().enumerate().find(|(_, b)| b.is_infinite()) {
        return Err(HistogramError::CustomBoundInfinite {
            index: i + 1,
            value: b,
        });
    }
    Ok(())
}

impl NativeHistogram {
    /// Validates `raw` as Prometheus validates a received histogram and
    /// decodes its deltas into absolute counts.
    ///
    /// Whether it is an integer or a float histogram is decided, as in
    /// Prometheus, by the `count` oneof: `count_float` makes a float
    /// histogram (read from the `*_counts` fields and `zero_count_float`),
    /// anything else an integer one (read from the `*_deltas` fields and
    /// `zero_count_int`); the fields of the other flavour are ignored.
    /// Schemas 9 to 52 are reduced to 8, as Prometheus' receiver does.
    ///
    /// # Errors
    ///
    /// The first rule broken, as a [`HistogramError`].
    pub fn from_raw(raw: &RawHistogram) -> Result<NativeHistogram, HistogramError> {
        use HistogramError as E;
        let float_count = match raw.count {
            Some(WireCount::Float(c)) => Some(c),
            _ => None,
        };
        let float = float_count.is_some();
        let (neg_len, pos_len) = if float {
            (raw.negative_counts.len(), raw.positive_counts.len())
        } else {
            (raw.negative_deltas.len(), raw.positive_deltas.len())
        };
        let (int_zero, float_zero) = match raw.zero_count {
            Some(WireCount::Int(z)) => (z, 0.0),
            Some(WireCount::Float(z)) => (0, z),
            None => (0, 0.0),
        };
        let zero_is_set = if float {
            float_zero != 0.0
        } else {
            int_zero != 0
        };
        let custom = raw.schema == CUSTOM_BUCKETS_SCHEMA;
        if custom {
            check_custom_bounds(&raw.custom_values)?;
            let end = check_spans(&raw.positive_spans, pos_len, Side::Positive, true)?;
            if end > raw.custom_values.len() as i64 + 1 {
                return Err(E::CustomBoundsTooFew {
                    bounds: raw.custom_values.len(),
                    spans_reach: end as u64,
                });
            }
            if zero_is_set {
                return Err(E::CustomZeroCount);
            }
            if raw.zero_threshold != 0.0 {
                return Err(E::CustomZeroThreshold);
            }
            if !raw.negative_spans.is_empty() {
                return Err(E::CustomNegativeSpans);
            }
            if neg_len > 0 {
                return Err(E::CustomNegativeBuckets);
            }
        } else if (MIN_SCHEMA..=MAX_RESERVED_SCHEMA).contains(&raw.schema) {
            if !(raw.zero_threshold >= 0.0 && raw.zero_threshold.is_finite()) {
                return Err(E::InvalidZeroThreshold(raw.zero_threshold));
            }
            check_spans(&raw.positive_spans, pos_len, Side::Positive, false)?;
            check_spans(&raw.negative_spans, neg_len, Side::Negative, false)?;
        } else {
            return Err(E::InvalidSchema(raw.schema));
        }

        let counts = if let Some(count) = float_count {
            let mut buckets = Vec::with_capacity(neg_len + pos_len);
            check_float_counts(&raw.negative_counts, Side::Negative, &mut buckets)?;
            if float_zero < 0.0 {
                return Err(E::NegativeZeroCount(float_zero));
            }
            if !custom && !raw.custom_values.is_empty() {
                return Err(E::ExponentialWithCustomBounds);
            }
            if count < 0.0 {
                return Err(E::NegativeCount(count));
            }
            check_float_counts(&raw.positive_counts, Side::Positive, &mut buckets)?;
            Counts::Float {
                count,
                zero_count: float_zero,
                buckets: buckets.into_boxed_slice(),
            }
        } else {
            let mut buckets = Vec::with_capacity(neg_len + pos_len);
            let negative = decode_deltas(&raw.negative_deltas, Side::Negative, &mut buckets)?;
            if !custom && !raw.custom_values.is_empty() {
                return Err(E::ExponentialWithCustomBounds);
            }
            let positive = decode_deltas(&raw.positive_deltas, Side::Positive, &mut buckets)?;
            let count = match raw.count {
                Some(WireCount::Int(c)) => c,
                _ => 0,
            };
            let total = negative
                .checked_add(positive)
                .and_then(|t| t.checked_add(int_zero))
                .ok_or(E::CountOverflow {
                    side: Side::Positive,
                })?;
            if raw.sum.is_nan() {
                if total > count {
                    return Err(E::CountTooSmall {
                        buckets: total,
                        count,
                    });
                }
            } else if total != count {
                return Err(E::CountMismatch {
                    buckets: total,
                    count,
                });
            }
            Counts::Int {
                count,
                zero_count: int_zero,
                buckets: buckets.into_boxed_slice(),
            }
        };

        let mut spans = Vec::with_capacity(raw.negative_spans.len() + raw.positive_spans.len());
        spans.extend_from_slice(&raw.negative_spans);
        spans.extend_from_slice(&raw.positive_spans);
        let h = NativeHistogram {
            schema: raw.schema,
            reset_hint: ResetHint::from_wire(raw.reset_hint),
            // `-0` is not negative, and is the threshold `0`: held as `0`,
            // so that no page writes `le="-0"`.
            zero_threshold: raw.zero_threshold + 0.0,
            sum: raw.sum,
            timestamp_ms: raw.timestamp_ms,
            start_timestamp_ms: raw.start_timestamp_ms,
            counts,
            spans: spans.into_boxed_slice(),
            negative_spans: raw.negative_spans.len(),
            negative_buckets: neg_len,
            custom_values: raw.custom_values.clone().into_boxed_slice(),
        };
        Ok(if h.schema > MAX_SCHEMA {
            h.coarsen((h.schema - MAX_SCHEMA) as u32)
        } else {
            h
        })
    }

    /// The schema: -4 to 8, or [`CUSTOM_BUCKETS_SCHEMA`].
    pub fn schema(&self) -> i32 {
        self.schema
    }

    /// Does it use custom bucket boundaries (schema -53)?
    pub fn is_custom(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Was it sent as a float histogram (`count_float`, absolute counts)
    /// rather than an integer one (`count_int`, deltas)?
    pub fn is_float(&self) -> bool {
        matches!(self.counts, Counts::Float { .. })
    }

    /// Is it a gauge histogram (reset hint `GAUGE`)?
    pub fn is_gauge(&self) -> bool {
        self.reset_hint == ResetHint::Gauge
    }

    /// The counts, in the sender's flavour.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The number of observations (`_count`; +Inf bucket of the classic form).
    pub fn count(&self) -> f64 {
        match self.counts {
            Counts::Int { count, .. } => count as f64,
            Counts::Float { count, .. } => count,
        }
    }

    /// The observations in the zero bucket.
    pub fn zero_count(&self) -> f64 {
        match self.counts {
            Counts::Int { zero_count, .. } => zero_count as f64,
            Counts::Float { zero_count, .. } => zero_count,
        }
    }

    /// The sum of the observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The zero bucket's threshold (0 for custom buckets).
    pub fn zero_threshold(&self) -> f64 {
        self.zero_threshold
    }

    /// The sender's counter-reset hint.
    pub fn reset_hint(&self) -> ResetHint {
        self.reset_hint
    }

    /// The sample's timestamp, milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    /// When the histogram started counting (2.0's `start_timestamp`),
    /// milliseconds since the epoch; 0 if the sender did not say.
    pub fn start_timestamp_ms(&self) -> i64 {
        self.start_timestamp_ms
    }

    /// The custom bucket boundaries (empty for exponential schemas).
    pub fn custom_values(&self) -> &[f64] {
        &self.custom_values
    }

    /// The spans of the negative buckets.
    pub fn negative_spans(&self) -> &[Span] {
        &self.spans[..self.negative_spans]
    }

    /// The spans of the positive buckets.
    pub fn positive_spans(&self) -> &[Span] {
        &self.spans[self.negative_spans..]
    }

    /// The absolute counts of the negative buckets, in span order.
    pub fn negative_buckets(&self) -> BucketCounts<'_> {
        let n = self.negative_buckets;
        match &self.counts {
            Counts::Int { buckets, .. } => BucketCounts::Int(&buckets[..n]),
            Counts::Float { buckets, .. } => BucketCounts::Float(&buckets[..n]),
        }
    }

    /// The absolute counts of the positive buckets, in span order.
    pub fn positive_buckets(&self) -> BucketCounts<'_> {
        let n = self.negative_buckets;
        match &self.counts {
            Counts::Int { buckets, .. } => BucketCounts::Int(&buckets[n..]),
            Counts::Float { buckets, .. } => BucketCounts::Float(&buckets[n..]),
        }
    }

    /// The number of buckets the spans hold, negative and positive (the
    /// zero bucket not counted): what [`NativeHistogram::reduce_to`] caps.
    /// Buckets inside a span count even when empty.
    pub fn bucket_count(&self) -> usize {
        self.counts.len()
    }

    /// The histogram in wire form again: integer counts as deltas, float
    /// counts as they are, every field as [`NativeHistogram::from_raw`]
    /// reads it, so that the histogram can be sent or exposed unchanged
    /// (`from_raw(&h.to_raw())` is `h`).
    ///
    /// Integer counts travel as 64-bit signed deltas, as in Prometheus: a
    /// bucket above `i64::MAX`, which only merging buckets can make, does
    /// not survive the trip.
    pub fn to_raw(&self) -> RawHistogram {
        let n = self.negative_buckets;
        let mut raw = RawHistogram {
            sum: self.sum,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            negative_spans: self.negative_spans().to_vec(),
            positive_spans: self.positive_spans().to_vec(),
            reset_hint: self.reset_hint.to_wire(),
            timestamp_ms: self.timestamp_ms,
            custom_values: self.custom_values.to_vec(),
            start_timestamp_ms: self.start_timestamp_ms,
            ..RawHistogram::default()
        };
        match &self.counts {
            Counts::Int {
                count,
                zero_count,
                buckets,
            } => {
                raw.count = Some(WireCount::Int(*count));
                raw.zero_count = Some(WireCount::Int(*zero_count));
                raw.negative_deltas = to_deltas(&buckets[..n]);
                raw.positive_deltas = to_deltas(&buckets[n..]);
            }
            Counts::Float {
                count,
                zero_count,
                buckets,
            } => {
                raw.count = Some(WireCount::Float(*count));
                raw.zero_count = Some(WireCount::Float(*zero_count));
                raw.negative_counts = buckets[..n].to_vec();
                raw.positive_counts = buckets[n..].to_vec();
            }
        }
        raw
    }

    /// The upper bound of bucket `index` of this histogram's schema, as
    /// Prometheus' `getBound` computes it (see [`exponential_bound`]); for
    /// custom buckets `custom_values[index]`, +Inf for the last bucket and
    /// -Inf below the first.
    pub fn upper_bound(&self, index: i32) -> f64 {
        if self.is_custom() {
            match usize::try_from(index) {
                Ok(i) if i < self.custom_values.len() => self.custom_values[i],
                Ok(_) => f64::INFINITY,
                Err(_) => f64::NEG_INFINITY,
            }
        } else {
            exponential_bound(self.schema, index)
        }
    }

    /// The classic-histogram form: `(le, cumulative count)` pairs,
    /// ascending by `le`, without the `+Inf` bucket (whose count is
    /// [`NativeHistogram::count`], NaN observations included, and which
    /// the caller adds).
    ///
    /// Custom-bucket histograms map one to one: an entry for every custom
    /// bound, populated or not, as Prometheus converts them back to classic
    /// histograms.
    ///
    /// Exponential histograms give, in ascending order: the negative
    /// buckets (most negative first), the zero bucket (`le` =
    /// zero_threshold, so `le="0"` when the threshold is 0; always
    /// emitted), then the positive buckets. Every bucket the spans hold
    /// contributes both its boundaries, so a classic `histogram_quantile`
    /// interpolates within the native bucket and not across a gap; empty
    /// buckets between spans are not emitted (there can be millions), which
    /// loses nothing: no observation lies in a gap, so the cumulative count
    /// at every emitted boundary is exact. Boundaries are exactly
    /// Prometheus' (see [`exponential_bound`]). The last entry's cumulative
    /// count is the total of all buckets (zero bucket included); it falls
    /// short of `count` only by NaN observations and by the counts of
    /// buckets whose upper bound is +Inf (the bucket of ±Inf observations),
    /// which have no finite `le`.
    ///
    /// **Negative boundaries.** A negative bucket is closed at its far end
    /// and open towards zero, `[-upper, -lower)`, the mirror of the
    /// positive `(lower, upper]`. So the cumulative count at a negative
    /// `le` is the number of observations *strictly below* `le`: an
    /// observation exactly at `-lower` belongs to the next bucket towards
    /// zero and is counted from the next entry on. A classic histogram
    /// means "≤ le"; the two differ only by observations exactly on a
    /// negative boundary. At `le` = zero_threshold and above, the count is
    /// "≤ le", as usual.
    ///
    /// **The zero bucket's edges.** Regular buckets only hold observations
    /// whose absolute value is above the threshold. So a positive bucket
    /// straddling the threshold emits no lower boundary (the zero bucket's
    /// entry is there), a negative one ends at `le = -zero_threshold`
    /// instead of its own upper edge, and a bucket lying wholly within the
    /// threshold (possible on the wire, never produced by Prometheus) is
    /// counted at `le = zero_threshold`.
    pub fn classic_buckets(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        self.classic_buckets_into(&mut out);
        out
    }

    /// [`NativeHistogram::classic_buckets`] into `out` (cleared first), to
    /// reuse its buffer from one histogram to the next.
    pub fn classic_buckets_into(&self, out: &mut Vec<(f64, f64)>) {
        out.clear();
        if self.is_custom() {
            let positive = self.positive_buckets();
            let mut buckets = Indexes::new(self.positive_spans()).enumerate().peekable();
            let mut cumulative = 0.0;
            for (i, &le) in self.custom_values.iter().enumerate() {
                while let Some(&(n, idx)) = buckets.peek()
                    && i64::from(idx) <= i as i64
                {
                    cumulative += positive.get(n);
                    buckets.next();
                }
                out.push((le, cumulative));
            }
            return;
        }
        let zt = self.zero_threshold;
        let mut acc = Classic {
            out,
            cumulative: 0.0,
        };
        let negative = self.negative_buckets();
        let mut indexes: Vec<(usize, i32)> =
            Indexes::new(self.negative_spans()).enumerate().collect();
        indexes.reverse();
        for (n, idx) in indexes {
            let (lower, upper) = (
                self.upper_bound(idx.saturating_sub(1)),
                self.upper_bound(idx),
            );
            if upper <= zt {
                acc.cumulative += negative.get(n);
                continue;
            }
            acc.lower_edge(-upper);
            acc.cumulative += negative.get(n);
            // -0.0 when a zero threshold of 0 clamps it: the zero bucket's
            // entry at 0 follows and holds the same count.
            let edge = -lower.max(zt);
            if edge < 0.0 {
                acc.upper_edge(edge);
            }
        }
        acc.cumulative += self.zero_count();
        acc.upper_edge(zt);
        let positive = self.positive_buckets();
        for (n, idx) in Indexes::new(self.positive_spans()).enumerate() {
            acc.lower_edge(self.upper_bound(idx.saturating_sub(1)));
            acc.cumulative += positive.get(n);
            acc.upper_edge(self.upper_bound(idx));
        }
    }

    /// [`NativeHistogram::classic_buckets`] of the histogram reduced (as by
    /// [`NativeHistogram::reduce_to`], one schema step at a time) until it
    /// has at most `max_entries` entries, or can be reduced no further.
    pub fn classic_buckets_capped(&self, max_entries: usize) -> Vec<(f64, f64)> {
        let mut out = self.classic_buckets();
        let mut h = std::borrow::Cow::Borrowed(self);
        if out.len() > max_entries
            && let Some(folded) = self.fold_zero_range()
        {
            h = std::borrow::Cow::Owned(folded);
        }
        while out.len() > max_entries && h.can_reduce() {
            h = std::borrow::Cow::Owned(h.halve());
            h.classic_buckets_into(&mut out);
        }
        out
    }

    /// The histogram at lower resolution, with at most `max_buckets`
    /// buckets ([`NativeHistogram::bucket_count`]) if it can get there.
    ///
    /// Exponential schemas go down one step at a time, each step merging
    /// pairs of neighbouring buckets (bucket `i` goes to `((i - 1) >> 1) +
    /// 1`, on both sides, as Prometheus' `reduceResolution` does: the
    /// coarse bucket's upper bound is the upper bound of the second fine
    /// bucket), stopping at schema -4. Custom-bucket histograms merge
    /// buckets `2j` and `2j + 1` into bucket `j`, keeping every other bound
    /// (the 2nd, 4th, ...), until no bound is left. The zero bucket, count
    /// and sum are unchanged, and the coarse boundaries being a subset of
    /// the fine ones, the cumulative count at each is exactly what it was.
    pub fn reduce_to(&self, max_buckets: usize) -> NativeHistogram {
        let mut h = self.clone();
        if h.bucket_count() > max_buckets
            && let Some(folded) = h.fold_zero_range()
        {
            h = folded;
        }
        while h.bucket_count() > max_buckets && h.can_reduce() {
            h = h.halve();
        }
        h
    }

    /// The histogram within `max` buckets and `max` custom bounds: itself,
    /// or reduced one step at a time as [`NativeHistogram::reduce_to`]
    /// reduces (cumulative counts exact at the bounds left); `None` when
    /// even the lowest resolution (schema -4) has more than `max` buckets.
    /// Bounds what a histogram costs the store and a page: a span of half
    /// a million buckets is a few bytes of compressed request.
    pub fn limit_buckets(&self, max: usize) -> Option<std::borrow::Cow<'_, NativeHistogram>> {
        let over = |h: &NativeHistogram| h.bucket_count() > max || h.custom_values.len() > max;
        let mut h = std::borrow::Cow::Borrowed(self);
        if over(&h)
            && let Some(folded) = self.fold_zero_range()
        {
            h = std::borrow::Cow::Owned(folded);
        }
        while over(&h) {
            if !h.can_reduce() {
                return None;
            }
            h = std::borrow::Cow::Owned(h.halve());
        }
        Some(h)
    }

    /// The histogram with its buckets that lie wholly within the zero
    /// bucket's range (upper bound at most the zero threshold: possible on
    /// the wire, never made by Prometheus) added to the zero bucket, where
    /// the classic form counts them already (at `le` = the threshold); so
    /// that lowering the resolution cannot merge them into a bucket
    /// beyond it. `None` when there is none.
    fn fold_zero_range(&self) -> Option<NativeHistogram> {
        let zt = self.zero_threshold;
        if self.is_custom() || zt <= 0.0 {
            return None;
        }
        // Bounds grow with the index: the buckets inside are each side's first.
        let inside = |spans: &[Span]| {
            Indexes::new(spans)
                .take_while(|&i| self.upper_bound(i) <= zt)
                .count()
        };
        let (neg, pos) = (inside(self.negative_spans()), inside(self.positive_spans()));
        if neg + pos == 0 {
            return None;
        }
        let mut spans = Vec::with_capacity(self.spans.len());
        let (counts, (negative_spans, negative_buckets)) = match &self.counts {
            Counts::Int {
                count,
                zero_count,
                buckets,
            } => {
                let (moved, kept, ends) = self.skip_buckets(buckets, (neg, pos), &mut spans);
                let counts = Counts::Int {
                    count: *count,
                    zero_count: zero_count + moved,
                    buckets: kept,
                };
                (counts, ends)
            }
            Counts::Float {
                count,
                zero_count,
                buckets,
            } => {
                let (moved, kept, ends) = self.skip_buckets(buckets, (neg, pos), &mut spans);
                let counts = Counts::Float {
                    count: *count,
                    zero_count: zero_count + moved,
                    buckets: kept,
                };
                (counts, ends)
            }
        };
        Some(NativeHistogram {
            counts,
            spans: spans.into_boxed_slice(),
            negative_spans,
            negative_buckets,
            custom_values: self.custom_values.clone(),
            ..*self
        })
    }

    /// Both sides' `buckets` (negative first) less the first `skip.0`
    /// negative and `skip.1` positive ones, their spans appended to
    /// `spans`: the skipped buckets' total, the counts kept, and where the
    /// negative side ends in the new spans and counts. Generic over integer
    /// and float counts, so that both kinds of histogram share it.
    fn skip_buckets<T: Copy + std::ops::AddAssign + std::iter::Sum<T>>(
        &self,
        buckets: &[T],
        skip: (usize, usize),
        spans: &mut Vec<Span>,
    ) -> (T, Box<[T]>, (usize, usize)) {
        let n = self.negative_buckets;
        let skipped = buckets[..skip.0]
            .iter()
            .chain(&buckets[n..n + skip.1])
            .copied()
            .sum();
        let mut out = Vec::with_capacity(buckets.len());
        let negative = Indexes::new(self.negative_spans())
            .zip(buckets[..n].iter().copied())
            .skip(skip.0)
            .map(|(i, c)| (i64::from(i), c));
        rebuild(negative, spans, &mut out);
        let ends = (spans.len(), out.len());
        let positive = Indexes::new(self.positive_spans())
            .zip(buckets[n..].iter().copied())
            .skip(skip.1)
            .map(|(i, c)| (i64::from(i), c));
        rebuild(positive, spans, &mut out);
        (skipped, out.into_boxed_slice(), ends)
    }

    fn can_reduce(&self) -> bool {
        if self.is_custom() {
            !self.custom_values.is_empty()
        } else {
            self.schema > MIN_SCHEMA
        }
    }

    /// One step of [`NativeHistogram::reduce_to`].
    fn halve(&self) -> NativeHistogram {
        if self.is_custom() {
            let mut h = self.remap(|i| i >> 1);
            h.custom_values = self
                .custom_values
                .iter()
                .skip(1)
                .step_by(2)
                .copied()
                .collect();
            h
        } else {
            self.coarsen(1)
        }
    }

    /// The exponential histogram `delta` schemas lower.
    fn coarsen(&self, delta: u32) -> NativeHistogram {
        let mut h = self.remap(|i| ((i - 1) >> delta) + 1);
        h.schema = self.schema - delta as i32;
        h
    }

    /// The histogram with each bucket index `i` moved to `to(i)` (a
    /// monotonic map), buckets landing on the same index added up.
    /// Both sides' `buckets` (negative first) mapped by `to`, their spans
    /// appended to `spans`: the new counts, and where the negative side ends
    /// in the new spans and counts.
    fn remap_buckets<T: Copy + std::ops::AddAssign>(
        &self,
        buckets: &[T],
        to: impl Fn(i64) -> i64 + Copy,
        spans: &mut Vec<Span>,
    ) -> (Box<[T]>, (usize, usize)) {
        let n = self.negative_buckets;
        let mut out = Vec::with_capacity(buckets.len());
        merge(self.negative_spans(), &buckets[..n], to, spans, &mut out);
        let ends = (spans.len(), out.len());
        merge(self.positive_spans(), &buckets[n..], to, spans, &mut out);
        (out.into_boxed_slice(), ends)
    }

    fn remap(&self, to: impl Fn(i64) -> i64 + Copy) -> NativeHistogram {
        let mut spans = Vec::with_capacity(self.spans.len());
        let (counts, (negative_spans, negative_buckets)) = match &self.counts {
            Counts::Int {
                count,
                zero_count,
                buckets,
            } => {
                let (buckets, ends) = self.remap_buckets(buckets, to, &mut spans);
                let counts = Counts::Int {
                    count: *count,
                    zero_count: *zero_count,
                    buckets,
                };
                (counts, ends)
            }
            Counts::Float {
                count,
                zero_count,
                buckets,
            } => {
                let (buckets, ends) = self.remap_buckets(buckets, to, &mut spans);
                let counts = Counts::Float {
                    count: *count,
                    zero_count: *zero_count,
                    buckets,
                };
                (counts, ends)
            }
        };
        NativeHistogram {
            counts,
            spans: spans.into_boxed_slice(),
            negative_spans,
            negative_buckets,
            custom_values: self.custom_values.clone(),
            ..*self
        }
    }
}

/// Appends the spans and counts of one side with its indexes mapped by `to`.
fn merge<T: Copy + std::ops::AddAssign>(
    spans: &[Span],
    counts: &[T],
    to: impl Fn(i64) -> i64,
    out_spans: &mut Vec<Span>,
    out_counts: &mut Vec<T>,
) {
    let buckets = Indexes::new(spans)
        .zip(counts)
        .map(|(idx, &c)| (to(i64::from(idx)), c));
    rebuild(buckets, out_spans, out_counts);
}

/// Appends one side's `(index, count)` buckets (indexes not decreasing;
/// equal ones added up) as spans and counts.
fn rebuild<T: Copy + std::ops::AddAssign>(
    buckets: impl Iterator<Item = (i64, T)>,
    out_spans: &mut Vec<Span>,
    out_counts: &mut Vec<T>,
) {
    let mut last = None;
    for (target, count) in buckets {
        match last {
            Some(l) if l == target => {
                *out_counts.last_mut().expect("a bucket was pushed") += count;
            }
            Some(l) => {
                // Merging never moves a bucket further from its neighbour:
                // the gap fits in an i32 as the original one did.
                let gap = (target - l - 1) as i32;
                if gap == 0 {
                    out_spans.last_mut().expect("a span was pushed").length += 1;
                } else {
                    out_spans.push(Span {
                        offset: gap,
                        length: 1,
                    });
                }
                out_counts.push(count);
            }
            None => {
                out_spans.push(Span {
                    offset: target as i32,
                    length: 1,
                });
                out_counts.push(count);
            }
        }
        last = Some(target);
    }
}

/// The bucket indexes a list of (validated) spans describes, in order.
struct Indexes<'a> {
    spans: std::slice::Iter<'a, Span>,
    next: i64,
    left: u32,
}

impl<'a> Indexes<'a> {
    fn new(spans: &'a [Span]) -> Self {
        Indexes {
            spans: spans.iter(),
            next: 0,
            left: 0,
        }
    }
}

impl Iterator for Indexes<'_> {
    type Item = i32;

    fn next(&mut self) -> Option<i32> {
        while self.left == 0 {
            let span = self.spans.next()?;
            self.next += i64::from(span.offset);
            self.left = span.length;
        }
        let idx = self.next as i32;
        self.next += 1;
        self.left -= 1;
        Some(idx)
    }
}

/// The classic entries being built: each `le` strictly above the last.
struct Classic<'a> {
    out: &'a mut Vec<(f64, f64)>,
    cumulative: f64,
}

impl Classic<'_> {
    /// A bucket's lower boundary: nothing new below it, so an entry only
    /// if it is finite and above the last one.
    fn lower_edge(&mut self, le: f64) {
        if le.is_finite() && self.out.last().is_none_or(|&(last, _)| le > last) {
            self.out.push((le, self.cumulative));
        }
    }

    /// A bucket's upper boundary, its count added: a new entry, or, when
    /// the boundary is not above the last entry (a bucket within the zero
    /// bucket, or bounds that underflow to the same value), the count
    /// folded into the last entry. A bound of +Inf gets no entry; one of
    /// -Inf neither, its count carried to the next entry.
    fn upper_edge(&mut self, le: f64) {
        if !le.is_finite() {
            return;
        }
        match self.out.last_mut() {
            Some(last) if le <= last.0 => last.1 = self.cumulative,
            _ => self.out.push((le, self.cumulative)),
        }
    }
}

/// The upper bound of bucket `index` in exponential `schema` (-4..=8), as
/// Prometheus' `getBound` computes it (to within a few ulps: see `FRACS`).
///
/// For schemas below 0 it is `2^(index << -schema)`, exactly; from 0 up,
/// `frac * 2^exp` with `exp = (index >> schema) + 1` and `frac` read from
/// `FRACS`. The bucket that would end at
/// 2^1024 ends at `f64::MAX` instead, as in Prometheus, leaving the bucket
/// above it (upper bound +Inf) for observations of ±Inf.
///
/// # Panics
///
/// If `schema` is not an exponential one, -4 to 8.
pub fn exponential_bound(schema: i32, index: i32) -> f64 {
    assert!(
        (MIN_SCHEMA..=MAX_SCHEMA).contains(&schema),
        "schema {schema} has no exponential bounds"
    );
    if schema < 0 {
        let exp = i64::from(index) << -schema;
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let frac = FRACS[((index & ((1 << schema) - 1)) << (MAX_SCHEMA - schema)) as usize];
    let exp = i64::from(index >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// 2^`e` for `e` in the normal range, exactly.
fn pow2(e: i64) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `frac * 2^exp` for `frac` in [0.5, 1], rounded once, as Go's
/// `math.Ldexp`: overflow gives +Inf, results below the normal range are
/// rounded to the nearest subnormal (or 0).
fn ldexp(frac: f64, exp: i64) -> f64 {
    if exp > 1023 {
        // frac * 2^1023 is exact; the second product rounds (or overflows).
        let rest = exp - 1023;
        return if rest > 1023 {
            f64::INFINITY
        } else {
            frac * pow2(1023) * pow2(rest)
        };
    }
    if exp < -1022 {
        // Below 2^-1082 even frac = 1 rounds to 0; above, scale into the
        // normal range exactly, then round once on the way down.
        if exp < -1082 {
            return 0.0;
        }
        return frac * pow2(exp + 60) * pow2(-60);
    }
    frac * pow2(exp)
}

/// `2^(k/256) / 2` for k in 0..256: the bucket boundaries within one power
/// of two at schema 8, scaled into [0.5, 1). Schema `s` uses every
/// `2^(8-s)`-th entry, so each schema's boundaries are exactly a subset of
/// the next finer one's (merging buckets stays exact). Computed with the
/// platform's `exp2`, within an ulp or so of the exact value; Prometheus
/// keeps a table of its own (`exponentialBounds`) whose entries are up to
/// four ulps off, so an `le` written here may differ from the one
/// Prometheus would print for the same bucket in its last digits.
static FRACS: std::sync::LazyLock<[f64; 256]> =
    std::sync::LazyLock::new(|| std::array::from_fn(|k| (k as f64 / 256.0).exp2() * 0.5));

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans from `(offset, length)` pairs.
    fn spans(s: &[(i32, u32)]) -> Vec<Span> {
        s.iter()
            .map(|&(offset, length)| Span { offset, length })
            .collect()
    }

    /// A valid integer histogram from absolute counts; count is their total.
    fn int_raw(
        schema: i32,
        zero_threshold: f64,
        zero_count: u64,
        negative: (&[(i32, u32)], &[u64]),
        positive: (&[(i32, u32)], &[u64]),
    ) -> RawHistogram {
        let total = zero_count + negative.1.iter().sum::<u64>() + positive.1.iter().sum::<u64>();
        RawHistogram {
            count: Some(WireCount::Int(total)),
            sum: 42.5,
            schema,
            zero_threshold,
            zero_count: Some(WireCount::Int(zero_count)),
            negative_spans: spans(negative.0),
            negative_deltas: to_deltas(negative.1),
            positive_spans: spans(positive.0),
            positive_deltas: to_deltas(positive.1),
            timestamp_ms: 1_700_000_000_000,
            ..RawHistogram::default()
        }
    }

    fn custom_raw(bounds: &[f64], positive: (&[(i32, u32)], &[u64])) -> RawHistogram {
        RawHistogram {
            custom_values: bounds.to_vec(),
            ..int_raw(CUSTOM_BUCKETS_SCHEMA, 0.0, 0, (&[], &[]), positive)
        }
    }

    fn valid(raw: &RawHistogram) -> NativeHistogram {
        NativeHistogram::from_raw(raw).unwrap_or_else(|e| panic!("{e}: {raw:?}"))
    }

    /// The independent judge of exponential bounds: 2^(index / 2^schema).
    fn naive_bound(schema: i32, index: i32) -> f64 {
        2f64.powf(f64::from(index) / 2f64.powi(schema))
    }

    fn ulps_apart(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn bounds_of_negative_schemas_and_schema_0_are_exact_powers_of_two() {
        for schema in -4..=0 {
            let step = 1i32 << -schema;
            for index in -60..=60 {
                let want = 2f64.powi(index * step);
                if want.is_finite() && want > 0.0 && (index * step) < 1024 {
                    assert_eq!(exponential_bound(schema, index), want, "{schema} {index}");
                }
            }
        }
        assert_eq!(exponential_bound(0, 3), 8.0);
        assert_eq!(exponential_bound(0, 0), 1.0);
        assert_eq!(exponential_bound(0, -1), 0.5);
        assert_eq!(exponential_bound(-4, 1), 65536.0);
        assert_eq!(exponential_bound(-4, -1), 1.0 / 65536.0);
        assert_eq!(exponential_bound(-1, 3), 64.0);
        // The smallest subnormal and below it.
        assert_eq!(exponential_bound(0, -1074), f64::from_bits(1));
        assert_eq!(exponential_bound(0, -1075), 0.0);
    }

    #[test]
    fn the_bucket_below_2_to_the_1024_ends_at_f64_max_and_the_next_at_inf() {
        assert_eq!(exponential_bound(0, 1023), 2f64.powi(1023));
        for (schema, last) in [(-4, 64), (-1, 512), (0, 1024), (3, 8192), (8, 262_144)] {
            assert_eq!(exponential_bound(schema, last), f64::MAX, "{schema}");
            assert_eq!(
                exponential_bound(schema, last + 1),
                f64::INFINITY,
                "{schema}"
            );
            assert!(exponential_bound(schema, last - 1) < f64::MAX, "{schema}");
        }
    }

    #[test]
    fn bounds_are_within_a_few_ulps_of_what_prometheus_prints() {
        // What Prometheus prints for these bounds (getBound, then
        // strconv.FormatFloat(v, 'g', -1, 64)); its own table is up to four
        // ulps off the exact values, ours about one. Powers of two, f64::MAX
        // and +Inf are exact in both.
        let cases = [
            (3, 1, 1.0905077326652577),
            (3, 2, 1.189207115002721),
            (3, 4, std::f64::consts::SQRT_2),
            (3, 7, 1.8340080864093422),
            (3, 8, 2.0),
            (3, -1, 0.9170040432046711),
            (3, 12, 2.82842712474619),
            (8, 1, 1.0027112750502025),
            (8, 128, std::f64::consts::SQRT_2),
            (8, 256, 2.0),
            (8, 255, 1.9945921121709396),
            (8, -255, 0.5013556375251013),
            // Printed in Prometheus' own tests (model/histogram/
            // histogram_test.go, generic_test.go, web/api/v1/
            // json_codec_test.go).
            (3, 3, 1.2968395546510096),
            (3, 5, 1.5422108254079407),
            (2, -1, 0.8408964152537144),
            (2, 1, 1.189207115002721),
            (2, 3, 1.6817928305074288),
            (2, 5, 2.378414230005442),
            (2, 7, 3.3635856610148576),
        ];
        for (schema, index, want) in cases {
            let got = exponential_bound(schema, index);
            assert!(
                ulps_apart(got, want) <= 5,
                "{schema} {index}: {got} vs {want}"
            );
        }
        for (schema, index, want) in [
            (3, 8, 2.0),
            (8, 256, 2.0),
            (0, 3, 8.0),
            (2, 4096, f64::MAX),
            (2, 4097, f64::INFINITY),
            (-1, -1, 0.25),
            (-1, 513, f64::INFINITY),
        ] {
            assert_eq!(exponential_bound(schema, index), want, "{schema} {index}");
        }
    }

    #[test]
    fn bounds_agree_with_powf_within_a_few_ulps_and_nest_across_schemas() {
        for schema in MIN_SCHEMA..=MAX_SCHEMA {
            let mut previous = 0.0;
            for index in -3000..=3000 {
                let b = exponential_bound(schema, index);
                // Strictly, except where subnormals round alike, or overflow.
                assert!(b >= previous, "{schema} {index}: bounds must increase");
                if previous.is_normal() && b.is_finite() {
                    assert!(b > previous, "{schema} {index}: bounds must increase");
                }
                previous = b;
                let naive = naive_bound(schema, index);
                if naive.is_normal() && naive < f64::MAX {
                    assert!(
                        ulps_apart(b, naive) <= 6,
                        "{schema} {index}: {b} vs {naive}"
                    );
                }
                // Each boundary of a schema is one of the next finer schema.
                if schema < MAX_SCHEMA {
                    assert_eq!(
                        b,
                        exponential_bound(schema + 1, index * 2),
                        "{schema} {index}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_table_is_within_a_few_ulps_of_the_exact_values() {
        for (k, &f) in FRACS.iter().enumerate() {
            let exact = 2f64.powf(k as f64 / 256.0) / 2.0;
            assert!(ulps_apart(f, exact) <= 5, "{k}: {f} vs {exact}");
            assert!((0.5..1.0).contains(&f));
        }
    }

    #[test]
    fn decoding_deltas_gives_absolute_counts() {
        let raw = int_raw(
            0,
            0.0,
            1,
            (&[(-2, 1)], &[4]),
            (&[(0, 3), (2, 1)], &[1, 3, 2, 7]),
        );
        assert_eq!(raw.positive_deltas, [1, 2, -1, 5]);
        let h = valid(&raw);
        assert_eq!(h.positive_buckets(), BucketCounts::Int(&[1, 3, 2, 7]));
        assert_eq!(h.negative_buckets(), BucketCounts::Int(&[4]));
        assert_eq!(h.positive_spans(), spans(&[(0, 3), (2, 1)]));
        assert_eq!(h.negative_spans(), spans(&[(-2, 1)]));
        assert_eq!((h.count(), h.zero_count(), h.sum()), (18.0, 1.0, 42.5));
        assert_eq!(h.bucket_count(), 5);
        assert!(!h.is_float() && !h.is_custom() && !h.is_gauge());
        assert_eq!(h.timestamp_ms(), 1_700_000_000_000);
    }

    /// Each validation rule, with the error it draws.
    #[test]
    fn each_rule_broken_is_refused_with_its_reason() {
        use HistogramError as E;
        let base = || int_raw(0, 0.001, 1, (&[(0, 2)], &[1, 2]), (&[(0, 2)], &[3, 4]));
        let float = || RawHistogram {
            count: Some(WireCount::Float(11.0)),
            zero_count: Some(WireCount::Float(1.0)),
            negative_counts: vec![1.0, 2.0],
            positive_counts: vec![3.0, 4.0],
            negative_deltas: vec![],
            positive_deltas: vec![],
            ..base()
        };
        let custom = || custom_raw(&[1.0, 2.0, 3.0], (&[(0, 2), (1, 1)], &[1, 2, 3]));
        valid(&base());
        valid(&float());
        valid(&custom());
        type Case = (&'static str, RawHistogram, fn(&HistogramError) -> bool);
        let cases: Vec<Case> = vec![
            (
                "schema -5",
                RawHistogram {
                    schema: -5,
                    ..base()
                },
                |e| matches!(e, E::InvalidSchema(-5)),
            ),
            (
                "schema 53",
                RawHistogram {
                    schema: 53,
                    ..base()
                },
                |e| matches!(e, E::InvalidSchema(53)),
            ),
            (
                "schema -52",
                RawHistogram {
                    schema: -52,
                    ..base()
                },
                |e| matches!(e, E::InvalidSchema(-52)),
            ),
            (
                "negative zero threshold",
                RawHistogram {
                    zero_threshold: -1.0,
                    ..base()
                },
                |e| matches!(e, E::InvalidZeroThreshold(_)),
            ),
            (
                "NaN zero threshold",
                RawHistogram {
                    zero_threshold: f64::NAN,
                    ..base()
                },
                |e| matches!(e, E::InvalidZeroThreshold(_)),
            ),
            (
                "infinite zero threshold",
                RawHistogram {
                    zero_threshold: f64::INFINITY,
                    ..base()
                },
                |e| matches!(e, E::InvalidZeroThreshold(_)),
            ),
            (
                "negative offset after the first span",
                RawHistogram {
                    positive_spans: spans(&[(0, 1), (-1, 1)]),
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::NegativeSpanOffset {
                            side: Side::Positive,
                            span: 2,
                            offset: -1
                        }
                    )
                },
            ),
            (
                "spans need more buckets",
                RawHistogram {
                    positive_spans: spans(&[(0, 3)]),
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::SpansBucketsMismatch {
                            side: Side::Positive,
                            spans_need: 3,
                            have: 2
                        }
                    )
                },
            ),
            (
                "spans need fewer buckets",
                RawHistogram {
                    negative_spans: spans(&[(0, 1)]),
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::SpansBucketsMismatch {
                            side: Side::Negative,
                            spans_need: 1,
                            have: 2
                        }
                    )
                },
            ),
            (
                "index beyond 32 bits",
                RawHistogram {
                    positive_spans: spans(&[(i32::MAX, 1), (0, 1)]),
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::IndexOutOfRange {
                            side: Side::Positive
                        }
                    )
                },
            ),
            (
                "deltas going negative",
                RawHistogram {
                    positive_deltas: vec![3, -4],
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::NegativeBucketCount {
                            side: Side::Positive,
                            bucket: 2,
                            ..
                        }
                    )
                },
            ),
            (
                "deltas overflowing",
                RawHistogram {
                    negative_deltas: vec![i64::MAX, 1],
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::CountOverflow {
                            side: Side::Negative
                        }
                    )
                },
            ),
            (
                "count above the buckets",
                RawHistogram {
                    count: Some(WireCount::Int(12)),
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::CountMismatch {
                            buckets: 11,
                            count: 12
                        }
                    )
                },
            ),
            (
                "count below the buckets",
                RawHistogram {
                    count: Some(WireCount::Int(10)),
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::CountMismatch {
                            buckets: 11,
                            count: 10
                        }
                    )
                },
            ),
            (
                "count below the buckets, NaN sum",
                RawHistogram {
                    count: Some(WireCount::Int(10)),
                    sum: f64::NAN,
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::CountTooSmall {
                            buckets: 11,
                            count: 10
                        }
                    )
                },
            ),
            (
                "no count at all",
                RawHistogram {
                    count: None,
                    ..base()
                },
                |e| {
                    matches!(
                        e,
                        E::CountMismatch {
                            buckets: 11,
                            count: 0
                        }
                    )
                },
            ),
            (
                "exponential with custom bounds",
                RawHistogram {
                    custom_values: vec![1.0],
                    ..base()
                },
                |e| matches!(e, E::ExponentialWithCustomBounds),
            ),
            (
                "negative float bucket",
                RawHistogram {
                    positive_counts: vec![3.0, -4.0],
                    ..float()
                },
                |e| {
                    matches!(
                        e,
                        E::NegativeBucketCount {
                            side: Side::Positive,
                            bucket: 2,
                            ..
                        }
                    )
                },
            ),
            (
                "negative float count",
                RawHistogram {
                    count: Some(WireCount::Float(-1.0)),
                    ..float()
                },
                |e| matches!(e, E::NegativeCount(_)),
            ),
            (
                "negative float zero count",
                RawHistogram {
                    zero_count: Some(WireCount::Float(-1.0)),
                    ..float()
                },
                |e| matches!(e, E::NegativeZeroCount(_)),
            ),
            (
                "custom bound NaN",
                RawHistogram {
                    custom_values: vec![1.0, f64::NAN, 3.0],
                    ..custom()
                },
                |e| matches!(e, E::CustomBoundNaN { index: 2 }),
            ),
            (
                "custom bounds decreasing",
                RawHistogram {
                    custom_values: vec![1.0, 3.0, 2.0],
                    ..custom()
                },
                |e| matches!(e, E::CustomBoundsNotIncreasing { index: 3, .. }),
            ),
            (
                "custom bounds repeated",
                RawHistogram {
                    custom_values: vec![1.0, 1.0, 2.0],
                    ..custom()
                },
                |e| matches!(e, E::CustomBoundsNotIncreasing { index: 2, .. }),
            ),
            (
                "custom bound +Inf",
                RawHistogram {
                    custom_values: vec![1.0, 2.0, f64::INFINITY],
                    ..custom()
                },
                |e| matches!(e, E::CustomBoundInfinite { index: 3, .. }),
            ),
            (
                "custom bound -Inf",
                RawHistogram {
                    custom_values: vec![f64::NEG_INFINITY, 2.0, 3.0],
                    ..custom()
                },
                |e| matches!(e, E::CustomBoundInfinite { index: 1, .. }),
            ),
            (
                "custom spans beyond the bounds",
                RawHistogram {
                    custom_values: vec![1.0, 2.0],
                    ..custom()
                },
                |e| {
                    matches!(
                        e,
                        E::CustomBoundsTooFew {
                            bounds: 2,
                            spans_reach: 4
                        }
                    )
                },
            ),
            (
                "custom negative first offset",
                RawHistogram {
                    positive_spans: spans(&[(-1, 2), (1, 1)]),
                    ..custom()
                },
                |e| matches!(e, E::NegativeSpanOffset { span: 1, .. }),
            ),
            (
                "custom zero count",
                RawHistogram {
                    zero_count: Some(WireCount::Int(1)),
                    count: Some(WireCount::Int(7)),
                    ..custom()
                },
                |e| matches!(e, E::CustomZeroCount),
            ),
            (
                "custom zero threshold",
                RawHistogram {
                    zero_threshold: 0.5,
                    ..custom()
                },
                |e| matches!(e, E::CustomZeroThreshold),
            ),
            (
                "custom negative spans",
                RawHistogram {
                    negative_spans: spans(&[(0, 0)]),
                    ..custom()
                },
                |e| matches!(e, E::CustomNegativeSpans),
            ),
            (
                "custom negative buckets",
                RawHistogram {
                    negative_deltas: vec![1],
                    ..custom()
                },
                |e| matches!(e, E::CustomNegativeBuckets),
            ),
        ];
        for (what, raw, want) in cases {
            let err = NativeHistogram::from_raw(&raw).expect_err(what);
            assert!(want(&err), "{what}: got {err:?}");
            let line = err.to_string();
            assert!(!line.is_empty() && !line.contains('\n'), "{what}: {line:?}");
        }
    }

    #[test]
    fn float_histograms_are_not_held_to_their_count_and_nan_counts_pass() {
        // Prometheus checks no total for float histograms (aggregation
        // rounds), nor NaN counts (NaN is not below 0).
        let raw = RawHistogram {
            count: Some(WireCount::Float(3.5)),
            positive_spans: spans(&[(0, 2)]),
            positive_counts: vec![10.0, f64::NAN],
            ..RawHistogram::default()
        };
        let h = valid(&raw);
        assert!(h.is_float());
        assert_eq!(h.count(), 3.5);
    }

    #[test]
    fn a_nan_sum_lets_the_count_exceed_the_buckets() {
        let raw = RawHistogram {
            count: Some(WireCount::Int(9)),
            sum: f64::NAN,
            ..int_raw(0, 0.0, 0, (&[], &[]), (&[(0, 1)], &[4]))
        };
        let h = valid(&raw);
        // The NaN observations are in no bucket: the classic form's last
        // entry has the buckets' 4, the caller's +Inf bucket the count, 9.
        assert_eq!(h.classic_buckets().last(), Some(&(1.0, 4.0)));
        assert_eq!(h.count(), 9.0);
    }

    #[test]
    fn the_counts_oneof_decides_the_flavour_and_the_other_fields_are_ignored() {
        // An integer histogram carrying float counts: they are ignored, as
        // Prometheus' ToIntHistogram ignores them.
        let raw = RawHistogram {
            positive_counts: vec![1.0, 2.0, 3.0],
            zero_count: Some(WireCount::Float(5.0)),
            ..int_raw(0, 0.0, 0, (&[], &[]), (&[(0, 1)], &[4]))
        };
        let h = valid(&raw);
        assert_eq!(h.positive_buckets(), BucketCounts::Int(&[4]));
        assert_eq!(h.zero_count(), 0.0);
    }

    #[test]
    fn reset_hints_read_from_the_wire() {
        for (wire, hint) in [
            (0, ResetHint::Unknown),
            (1, ResetHint::Yes),
            (2, ResetHint::No),
            (3, ResetHint::Gauge),
            (4, ResetHint::Unknown),
            (-1, ResetHint::Unknown),
        ] {
            assert_eq!(ResetHint::from_wire(wire), hint);
            let raw = RawHistogram {
                reset_hint: wire,
                ..int_raw(0, 0.0, 0, (&[], &[]), (&[], &[]))
            };
            assert_eq!(valid(&raw).reset_hint(), hint);
            assert_eq!(valid(&raw).is_gauge(), wire == 3);
        }
    }

    #[test]
    fn classic_form_of_positive_buckets_with_a_gap() {
        // Buckets 0, 1 and 4 of schema 0: (0.5, 1], (1, 2], (8, 16].
        let h = valid(&int_raw(
            0,
            0.0,
            2,
            (&[], &[]),
            (&[(0, 2), (2, 1)], &[1, 3, 5]),
        ));
        assert_eq!(
            h.classic_buckets(),
            [
                (0.0, 2.0),
                (0.5, 2.0),
                (1.0, 3.0),
                (2.0, 6.0),
                (8.0, 6.0),
                (16.0, 11.0)
            ]
        );
        assert_eq!(h.count(), 11.0);
    }

    /// A zero threshold of `-0` is the threshold `0` (no page writes
    /// `le="-0"`).
    #[test]
    fn a_negative_zero_threshold_is_zero() {
        let raw = RawHistogram {
            zero_threshold: -0.0,
            count: Some(WireCount::Int(0)),
            ..RawHistogram::default()
        };
        let h = NativeHistogram::from_raw(&raw).unwrap();
        assert_eq!(h.zero_threshold().to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn classic_form_orders_negative_zero_and_positive_buckets() {
        // Schema 0, threshold 0.25. Negative buckets -1 and 0 hold
        // [-0.5, -0.25) and [-1, -0.5); positive bucket 1 holds (1, 2].
        let h = valid(&int_raw(
            0,
            0.25,
            3,
            (&[(-1, 2)], &[4, 1]),
            (&[(1, 1)], &[2]),
        ));
        let classic = h.classic_buckets();
        assert_eq!(
            classic,
            [
                (-1.0, 0.0),
                (-0.5, 1.0),
                (-0.25, 5.0),
                (0.25, 8.0),
                (1.0, 8.0),
                (2.0, 10.0)
            ]
        );
        assert_eq!(classic.last().unwrap().1, h.count());
    }

    #[test]
    fn the_zero_bucket_is_at_le_0_when_its_threshold_is_0() {
        let h = valid(&int_raw(1, 0.0, 0, (&[(0, 1)], &[2]), (&[(0, 1)], &[3])));
        // Schema 1: bucket 0 is (2^-0.5, 1].
        let half_root = exponential_bound(1, -1);
        assert_eq!(
            h.classic_buckets(),
            [
                (-1.0, 0.0),
                (-half_root, 2.0),
                (0.0, 2.0),
                (half_root, 2.0),
                (1.0, 5.0)
            ]
        );
    }

    #[test]
    fn buckets_straddling_or_within_the_zero_threshold() {
        // Threshold 0.3 is no boundary of schema 0. Positive bucket -1,
        // (0.25, 0.5], straddles it: no lower edge. Positive bucket -2,
        // (0.125, 0.25], is within it: counted at le=0.3. Negative bucket
        // -1, [-0.5, -0.25), ends at -0.3.
        let h = valid(&int_raw(
            0,
            0.3,
            1,
            (&[(-1, 1)], &[2]),
            (&[(-2, 2)], &[4, 8]),
        ));
        assert_eq!(
            h.classic_buckets(),
            [(-0.5, 0.0), (-0.3, 2.0), (0.3, 7.0), (0.5, 15.0)]
        );
    }

    #[test]
    fn the_bucket_of_infinities_has_no_finite_le() {
        // Schema 0 bucket 1024 ends at f64::MAX, bucket 1025 at +Inf.
        let h = valid(&int_raw(0, 0.0, 0, (&[], &[]), (&[(1024, 2)], &[1, 2])));
        let classic = h.classic_buckets();
        assert_eq!(classic.last(), Some(&(f64::MAX, 1.0)));
        assert_eq!(h.count(), 3.0);
    }

    #[test]
    fn custom_buckets_map_one_to_one_onto_their_bounds() {
        // Buckets 1, 2 and 4 (the +Inf one) of bounds 1, 2, 5, 10.
        let h = valid(&custom_raw(
            &[1.0, 2.0, 5.0, 10.0],
            (&[(1, 2), (1, 1)], &[3, 4, 2]),
        ));
        assert_eq!(
            h.classic_buckets(),
            [(1.0, 0.0), (2.0, 3.0), (5.0, 7.0), (10.0, 7.0)]
        );
        assert_eq!(h.count(), 9.0);
        assert_eq!(h.upper_bound(4), f64::INFINITY);
        assert_eq!(h.upper_bound(-1), f64::NEG_INFINITY);
        // A 1.0 custom histogram (no bounds): only the +Inf bucket.
        let h = valid(&custom_raw(&[], (&[(0, 1)], &[6])));
        assert!(h.classic_buckets().is_empty());
    }

    #[test]
    fn reducing_merges_pairs_of_buckets_as_prometheus_does() {
        // Schema 1 buckets -1..=3 go to ((i - 1) >> 1) + 1: 0, 0, 1, 1, 2.
        let h = valid(&int_raw(
            1,
            0.0,
            0,
            (&[(-1, 2)], &[1, 2]),
            (&[(-1, 5)], &[1, 2, 3, 4, 5]),
        ));
        let r = h.reduce_to(4);
        assert_eq!(r.schema(), 0);
        assert_eq!(r.positive_spans(), spans(&[(0, 3)]));
        assert_eq!(r.positive_buckets(), BucketCounts::Int(&[3, 7, 5]));
        assert_eq!(r.negative_spans(), spans(&[(0, 1)]));
        assert_eq!(r.negative_buckets(), BucketCounts::Int(&[3]));
        // Gaps close up as buckets merge: (1, 2] and (16, 32], buckets 1
        // and 5 at schema 0, are 1 and 3 at -1, 1 and 2 at -2, and both in
        // bucket 1, (1, 256], at -3.
        let h = valid(&int_raw(
            0,
            0.0,
            0,
            (&[], &[]),
            (&[(1, 1), (3, 1)], &[1, 1]),
        ));
        let r = h.reduce_to(1);
        assert_eq!(r.schema(), -3);
        assert_eq!(r.positive_spans(), spans(&[(1, 1)]));
        assert_eq!(r.positive_buckets(), BucketCounts::Int(&[2]));
        assert_eq!(r.classic_buckets(), [(0.0, 0.0), (1.0, 0.0), (256.0, 2.0)]);
        // Nothing to do.
        assert_eq!(h.reduce_to(2), h);
        // As far as it goes.
        assert_eq!(h.reduce_to(0).schema(), MIN_SCHEMA);
    }

    #[test]
    fn reducing_custom_buckets_keeps_every_other_bound() {
        let h = valid(&custom_raw(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            (&[(0, 6)], &[1, 2, 3, 4, 5, 6]),
        ));
        let r = h.reduce_to(3);
        assert_eq!(r.custom_values(), [2.0, 4.0]);
        assert_eq!(r.positive_spans(), spans(&[(0, 3)]));
        assert_eq!(r.positive_buckets(), BucketCounts::Int(&[3, 7, 11]));
        assert_eq!(r.classic_buckets(), [(2.0, 3.0), (4.0, 10.0)]);
        let r = h.reduce_to(0);
        assert!(r.custom_values().is_empty());
        assert_eq!(r.positive_buckets(), BucketCounts::Int(&[21]));
    }

    #[test]
    fn reserved_schemas_are_reduced_to_8() {
        let h = valid(&int_raw(
            10,
            0.0,
            0,
            (&[], &[]),
            (&[(0, 5)], &[1, 1, 1, 1, 1]),
        ));
        assert_eq!(h.schema(), 8);
        // Schema 10 buckets 0..=4 go to ((i - 1) >> 2) + 1: 0, 1, 1, 1, 1.
        assert_eq!(h.positive_buckets(), BucketCounts::Int(&[1, 4]));
    }

    #[test]
    fn capping_the_classic_form() {
        let h = valid(&int_raw(3, 0.0, 0, (&[], &[]), (&[(0, 16)], &[1; 16])));
        assert_eq!(h.classic_buckets().len(), 18);
        // Schema 2 has 9 buckets (0 and the pairs 1-2, ..., 15-16 of
        // schema 3), 11 entries with the zero bucket and the lower edge;
        // schema 1 has 5 buckets, 7 entries.
        let capped = h.classic_buckets_capped(10);
        assert_eq!(capped.len(), 7);
        assert_eq!(capped.last(), Some(&(4.0, 16.0)));
        assert_eq!(h.classic_buckets_capped(100), h.classic_buckets());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Spans and counts of one side: a first index, then runs of
        /// buckets separated by gaps.
        fn side(first: std::ops::Range<i32>) -> impl Strategy<Value = (Vec<Span>, Vec<u64>)> {
            (first, prop::collection::vec((0i32..4, 0u32..4), 0..5)).prop_flat_map(
                |(first, runs)| {
                    let spans: Vec<Span> = runs
                        .iter()
                        .enumerate()
                        .map(|(i, &(gap, length))| Span {
                            offset: if i == 0 { first } else { gap },
                            length,
                        })
                        .collect();
                    let n = spans.iter().map(|s| s.length as usize).sum::<usize>();
                    (Just(spans), prop::collection::vec(0u64..50, n))
                },
            )
        }

        fn exponential() -> impl Strategy<Value = RawHistogram> {
            (
                MIN_SCHEMA..=MAX_SCHEMA,
                any::<bool>(),
                0u64..20,
                any::<bool>(),
            )
                .prop_flat_map(|(schema, threshold_one, zero_count, float)| {
                    // A threshold of 1 is a boundary of every schema: the
                    // buckets start above it, at index 1.
                    let first = if threshold_one { 1..40 } else { -40..40 };
                    (side(first.clone()), side(first)).prop_map(move |(neg, pos)| {
                        let zt = if threshold_one { 1.0 } else { 0.0 };
                        let mut raw = int_raw(schema, zt, zero_count, (&[], &neg.1), (&[], &pos.1));
                        raw.negative_spans = neg.0;
                        raw.positive_spans = pos.0;
                        if float {
                            to_float(&mut raw, &neg.1, &pos.1);
                        }
                        raw
                    })
                })
        }

        fn to_float(raw: &mut RawHistogram, neg: &[u64], pos: &[u64]) {
            if let (Some(WireCount::Int(c)), Some(WireCount::Int(z))) = (raw.count, raw.zero_count)
            {
                raw.count = Some(WireCount::Float(c as f64));
                raw.zero_count = Some(WireCount::Float(z as f64));
            }
            raw.negative_counts = neg.iter().map(|&c| c as f64).collect();
            raw.positive_counts = pos.iter().map(|&c| c as f64).collect();
        }

        fn custom() -> impl Strategy<Value = RawHistogram> {
            prop::collection::vec((1u32..5, any::<bool>()), 0..12).prop_flat_map(|steps| {
                let mut bound = -3.0;
                let bounds: Vec<f64> = steps
                    .iter()
                    .map(|&(step, _)| {
                        bound += f64::from(step) * 0.5;
                        bound
                    })
                    .collect();
                // Buckets 0..=len, each in or out of the spans.
                (
                    Just(bounds),
                    prop::collection::vec(any::<bool>(), steps.len() + 1),
                )
                    .prop_flat_map(|(bounds, present)| {
                        let mut spans: Vec<Span> = Vec::new();
                        let mut gap = 0;
                        for &p in &present {
                            match (p, gap) {
                                (true, 0) if !spans.is_empty() => {
                                    spans.last_mut().unwrap().length += 1
                                }
                                (true, _) => {
                                    spans.push(Span {
                                        offset: gap,
                                        length: 1,
                                    });
                                    gap = 0;
                                }
                                (false, _) => gap += 1,
                            }
                        }
                        let n = present.iter().filter(|&&p| p).count();
                        (
                            Just(bounds),
                            Just(spans),
                            prop::collection::vec(0u64..50, n),
                        )
                    })
                    .prop_map(|(bounds, spans, counts)| {
                        let mut raw = custom_raw(&bounds, (&[], &counts));
                        raw.positive_spans = spans;
                        raw
                    })
            })
        }

        /// The cumulative count at `le` by a classic form: that of the
        /// last entry at or below `le` (nothing lies between entries).
        fn cumulative_at(classic: &[(f64, f64)], le: f64) -> f64 {
            classic
                .iter()
                .take_while(|&&(b, _)| b <= le)
                .last()
                .map_or(0.0, |&(_, c)| c)
        }

        fn check(raw: &RawHistogram, max: usize) -> Result<(), TestCaseError> {
            let h =
                NativeHistogram::from_raw(raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let classic = h.classic_buckets();
            prop_assert!(
                classic
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{:?}",
                classic
            );
            // No NaN sum, no bucket of infinities: the last entry has all
            // the observations but those of a custom histogram's +Inf bucket.
            let positive = h.positive_buckets();
            let in_inf_bucket: f64 = Indexes::new(h.positive_spans())
                .enumerate()
                .filter(|&(_, idx)| h.is_custom() && idx as usize == h.custom_values().len())
                .map(|(n, _)| positive.get(n))
                .sum();
            prop_assert_eq!(
                classic.last().map_or(0.0, |e| e.1),
                h.count() - in_inf_bucket
            );
            let r = h.reduce_to(max);
            prop_assert!(
                r.bucket_count() <= max || !r.can_reduce(),
                "{} buckets at schema {}",
                r.bucket_count(),
                r.schema()
            );
            prop_assert!(r.bucket_count() <= h.bucket_count());
            prop_assert_eq!(r.count(), h.count());
            prop_assert_eq!(r.zero_count(), h.zero_count());
            prop_assert_eq!(r.sum().to_bits(), h.sum().to_bits());
            prop_assert_eq!(r.is_float(), h.is_float());
            prop_assert_eq!(r.zero_threshold(), h.zero_threshold());
            for (le, c) in r.classic_buckets() {
                prop_assert_eq!(c, cumulative_at(&classic, le), "at le={} ({:?})", le, r);
            }
            // A reduced histogram is a valid one.
            prop_assert_eq!(NativeHistogram::from_raw(&r.to_raw()), Ok(r));
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn reducing_exponential_histograms_keeps_cumulative_counts(raw in exponential(), max in 0usize..24) {
                check(&raw, max)?;
            }

            #[test]
            fn reducing_custom_histograms_keeps_cumulative_counts(raw in custom(), max in 0usize..14) {
                check(&raw, max)?;
            }
        }
    }
}
