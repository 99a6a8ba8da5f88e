//! Remote-Write 1.0 (`prometheus.WriteRequest`) → [`WriteBatch`].
//!
//! [`decode_into`] is the hot path: a zero-copy walk of the wire format
//! ([`super::wire`]) that borrows label names and values from the buffer.
//! [`decode_with_prost`] decodes with the prost-generated types and lowers the
//! result the same way; it is the reference the fast path is tested against.

use prost::Message;

use super::Error;
use super::lower::{Lowering, Rules, SeriesSummary, summarize};
use super::wire::{FIXED64, LEN, Reader, VARINT, expect, varint_exact};
use crate::model::{MetricType, RejectReason, Rejection, Sample, WriteBatch};
use crate::proto::lenient;

/// Decodes a decompressed `WriteRequest` and lowers it into the model.
///
/// A body whose framing is not a valid message fails as a whole
/// ([`Error::Protobuf`]); a series that breaks a rule — including a label
/// or exemplar string that is not UTF-8, where the framing still delimits
/// the series — is recorded in [`WriteBatch::rejected`] and the others go on.
pub fn decode(buf: &[u8], rules: &Rules) -> Result<WriteBatch, Error> {
    let mut batch = WriteBatch::default();
    decode_into(buf, rules, &mut batch)?;
    Ok(batch)
}

/// [`decode`] into `batch`, cleared first, whose buffers are reused: a
/// batch kept between requests spares each one its allocations. On error,
/// `batch` holds whatever came before the fault.
pub fn decode_into(buf: &[u8], rules: &Rules, batch: &mut WriteBatch) -> Result<(), Error> {
    let mut lowering = Lowering::new(rules, std::mem::take(batch));
    let result = decode_fields(buf, &mut lowering);
    *batch = lowering.finish();
    result
}

fn decode_fields<'a>(buf: &'a [u8], lowering: &mut Lowering<'_, 'a>) -> Result<(), Error> {
    // Only the general path needs label lists: allocated on their first use.
    let mut labels: Vec<(&str, &str)> = Vec::new();
    let mut exemplars = Exemplars::default();
    let mut histograms: Vec<&[u8]> = Vec::new();
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                let series = r.bytes()?;
                if !canonical_series(lowering, series) {
                    labels.clear();
                    exemplars.clear();
                    histograms.clear();
                    let range = *lowering.time_range();
                    let read =
                        time_series(series, &mut labels, &mut exemplars, &mut histograms, &range)?;
                    match read {
                        Ok(summary) => {
                            for h in &histograms {
                                lowering.histogram(h, false);
                            }
                            let before = lowering.recorded();
                            lowering.series(labels.iter().copied(), summary);
                            if lowering.recorded() > before {
                                exemplars.lower(lowering);
                            }
                        }
                        Err(samples) => lowering.reject(not_utf8("a label of a series"), samples),
                    }
                }
            }
            3 => {
                expect(wire, LEN)?;
                match metadata(r.bytes()?)? {
                    Some((name, metric_type, help, unit)) => {
                        lowering.metadata(name, metric_type_of(metric_type), help, unit);
                    }
                    None => lowering.reject_metadata(not_utf8("a metadata string")),
                }
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// The exemplars of one series as read: every exemplar's labels in one list.
#[derive(Default)]
struct Exemplars<'a> {
    labels: Vec<(&'a str, &'a str)>,
    /// Per exemplar: the end of its labels in `labels`, its value and timestamp.
    each: Vec<(usize, f64, i64)>,
}

impl<'a> Exemplars<'a> {
    fn clear(&mut self) {
        self.labels.clear();
        self.each.clear();
    }

    /// Hands every exemplar, in the order sent, to the series recorded last.
    fn lower(&self, lowering: &mut Lowering<'_, 'a>) {
        let mut start = 0;
        for &(end, value, timestamp) in &self.each {
            lowering.exemplar(self.labels[start..end].iter().copied(), value, timestamp);
            start = end;
        }
    }
}

/// The rejection of a series or metadata entry holding `what` that is not UTF-8.
fn not_utf8(what: &str) -> Rejection {
    Rejection {
        reason: RejectReason::InvalidUtf8,
        detail: format!("{what} is not valid UTF-8"),
    }
}

/// The reference decoder: prost (with strings read as bytes, see
/// [`crate::proto::lenient`]), then the same lowering as [`decode`].
pub fn decode_with_prost(buf: &[u8], rules: &Rules) -> Result<WriteBatch, Error> {
    let req = lenient::WriteRequest::decode(buf).map_err(|e| Error::Protobuf(e.to_string()))?;
    Ok(lower(&req, rules))
}

/// Lowers a prost-decoded request into the model.
fn lower(req: &lenient::WriteRequest, rules: &Rules) -> WriteBatch {
    let mut lowering = Lowering::new(rules, WriteBatch::default());
    for ts in &req.timeseries {
        let samples = ts.samples.iter().map(|s| Sample {
            value: s.value,
            timestamp_ms: s.timestamp,
        });
        let mut summary = summarize(samples, &rules.timestamps);
        summary.histograms = ts.histograms.len() as u32;
        let labels: Option<Vec<(&str, &str)>> = ts
            .labels
            .iter()
            .map(|l| Some((utf8(&l.name)?, utf8(&l.value)?)))
            .collect();
        let exemplars_utf8 = ts
            .exemplars
            .iter()
            .flat_map(|e| &e.labels)
            .all(|l| utf8(&l.name).is_some() && utf8(&l.value).is_some());
        match labels {
            Some(labels) if exemplars_utf8 => {
                for h in &ts.histograms {
                    lowering.histogram(&h.encode_to_vec(), false);
                }
                let before = lowering.recorded();
                lowering.series(labels.into_iter(), summary);
                if lowering.recorded() > before {
                    for e in &ts.exemplars {
                        let labels = e
                            .labels
                            .iter()
                            .filter_map(|l| utf8(&l.name).zip(utf8(&l.value)));
                        lowering.exemplar(labels, e.value, e.timestamp);
                    }
                }
            }
            _ => lowering.reject(
                not_utf8("a label of a series"),
                (ts.samples.len() + ts.histograms.len()) as u64,
            ),
        }
    }
    for md in &req.metadata {
        let strings = (utf8(&md.metric_family_name), utf8(&md.help), utf8(&md.unit));
        match strings {
            (Some(name), Some(help), Some(unit)) => {
                lowering.metadata(name, metric_type_of(md.r#type), help, unit);
            }
            _ => lowering.reject_metadata(not_utf8("a metadata string")),
        }
    }
    lowering.finish()
}

/// `bytes` as a `str`, if they are UTF-8.
#[inline]
pub(super) fn utf8(bytes: &[u8]) -> Option<&str> {
    super::wire::to_str(bytes).ok()
}

/// The fast path for a `TimeSeries` in the form Prometheus sends:
/// labels in canonical form in the common layout, then float samples.
/// Writes the key straight from the wire, with no label list; `false`
/// (and nothing recorded) for anything else, which [`Lowering::series`]
/// then handles.
#[inline]
fn canonical_series<'a>(lowering: &mut Lowering<'_, 'a>, buf: &'a [u8]) -> bool {
    let range = lowering.time_range();
    let mut key = lowering.key_writer();
    let mut s = SeriesSummary::default();
    // Every field here is a label (tag 0x0a) or a sample (tag 0x12) of
    // under 128 bytes: a one-byte tag and a one-byte length.
    let mut rest = buf;
    while let [tag, len, tail @ ..] = rest {
        let Some((field, after)) = tail.split_at_checked(usize::from(*len)) else {
            key.abandon();
            return false;
        };
        let ok = match (*tag, *len < 0x80) {
            (0x0a, true) => common_label_layout(field)
                .is_some_and(|(name, value)| key.label_spanned(&field[1..], name, value)),
            // A sample outside the time range takes the general path,
            // which counts it.
            (0x12, true) => match sample(field, false) {
                Ok(sample) if range.contains(sample.timestamp_ms) => {
                    s.add(sample);
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if !ok {
            key.abandon();
            return false;
        }
        rest = after;
    }
    if !rest.is_empty() {
        key.abandon();
        return false;
    }
    let Some(latest) = s.latest else {
        key.abandon();
        return false;
    };
    let Some(span) = key.finish() else {
        return false;
    };
    lowering.push(span, latest, s.samples);
    true
}

/// The model's type for Remote-Write 1.0's `MetricMetadata.MetricType`.
pub(super) fn metric_type_of(wire: i32) -> MetricType {
    match wire {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

/// Reads one `TimeSeries`: its labels into `labels`, the rest summarised.
///
/// The outer `Err` is a framing fault that fails the request; the inner
/// `Err` says that a label or exemplar string is not UTF-8, with the number
/// of samples the series carried, so that only this series is rejected.
fn time_series<'a>(
    buf: &'a [u8],
    labels: &mut Vec<(&'a str, &'a str)>,
    exemplars: &mut Exemplars<'a>,
    histograms: &mut Vec<&'a [u8]>,
    range: &super::lower::TimeRange,
) -> Result<Result<SeriesSummary, u64>, Error> {
    let mut s = SeriesSummary::default();
    let (mut utf8_ok, mut samples) = (true, 0u64);
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                match label(r.bytes()?)? {
                    Some(l) => labels.push(l),
                    None => utf8_ok = false,
                }
            }
            2 => {
                expect(wire, LEN)?;
                s.add_checked(sample(r.bytes()?, false)?, range);
                samples += 1;
            }
            3 => {
                expect(wire, LEN)?;
                let (value, timestamp) = exemplar(r.bytes()?, &mut exemplars.labels, &mut utf8_ok)?;
                exemplars
                    .each
                    .push((exemplars.labels.len(), value, timestamp));
            }
            4 => {
                expect(wire, LEN)?;
                let message = r.bytes()?;
                histogram(message, false)?;
                histograms.push(message);
                s.histograms += 1;
                samples += 1;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(if utf8_ok { Ok(s) } else { Err(samples) })
}

/// A `Label` in the layout every encoder writes, `0x0a len name 0x12 len
/// value`, with both shorter than 128 bytes (one-byte lengths): its raw name
/// and value. `None` for any other layout, including an empty (omitted) value.
#[inline(always)]
fn common_label_layout(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    if let [0x0a, n, rest @ ..] = buf
        && *n < 0x80
        && let Some((name, rest)) = rest.split_at_checked(usize::from(*n))
        && let [0x12, v, value @ ..] = rest
        && *v < 0x80
        && usize::from(*v) == value.len()
    {
        return Some((name, value));
    }
    None
}

/// Reads one `Label`: `None` when its name or value is not UTF-8.
fn label(buf: &[u8]) -> Result<Option<(&str, &str)>, Error> {
    if let Some((name, value)) = common_label_layout(buf) {
        return Ok(utf8(name).zip(utf8(value)));
    }
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                name = r.bytes()?;
            }
            2 => {
                expect(wire, LEN)?;
                value = r.bytes()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(utf8(name).zip(utf8(value)))
}

/// Reads a `Sample`, field by field as prost would decode it;
/// `start_timestamp` for 2.0's, which adds field 3 (a varint, read past).
#[inline]
pub(super) fn sample(buf: &[u8], start_timestamp: bool) -> Result<Sample, Error> {
    // The layout every encoder writes: the value (tag 0x09, eight bytes),
    // then the timestamp (tag 0x10, a varint) to the end.
    if let [0x09, value @ ..] = buf
        && let Some((value, [0x10, timestamp @ ..])) = value.split_first_chunk::<8>()
    {
        let mut r = Reader::new(timestamp);
        if let Some(t) =
            varint_exact(timestamp).or_else(|| r.varint().ok().filter(|_| !r.has_more()))
        {
            return Ok(Sample {
                value: f64::from_le_bytes(*value),
                timestamp_ms: t as i64,
            });
        }
    }
    let mut s = Sample {
        value: 0.0,
        timestamp_ms: 0,
    };
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, FIXED64)?;
                s.value = f64::from_bits(r.fixed64()?);
            }
            2 => {
                expect(wire, VARINT)?;
                s.timestamp_ms = r.varint()? as i64;
            }
            // A known field of 2.0: its wire type is checked, as prost
            // checks it, before it is read past.
            3 if start_timestamp => {
                expect(wire, VARINT)?;
                r.varint()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(s)
}

/// Reads an `Exemplar`, field by field as prost would decode it: its
/// labels appended to `labels`, its value and timestamp returned;
/// `utf8_ok` cleared when one of its label strings is not UTF-8.
fn exemplar<'a>(
    buf: &'a [u8],
    labels: &mut Vec<(&'a str, &'a str)>,
    utf8_ok: &mut bool,
) -> Result<(f64, i64), Error> {
    let (mut value, mut timestamp) = (0.0, 0);
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                match label(r.bytes()?)? {
                    Some(l) => labels.push(l),
                    None => *utf8_ok = false,
                }
            }
            2 => {
                expect(wire, FIXED64)?;
                value = f64::from_bits(r.fixed64()?);
            }
            3 => {
                expect(wire, VARINT)?;
                timestamp = r.varint()? as i64;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((value, timestamp))
}

/// Validates a native `Histogram`, field by field as prost would decode it;
/// `v2` for 2.0's, which adds fields 16 (`custom_values`) and 17
/// (`start_timestamp`, rc.4).
pub(super) fn histogram(buf: &[u8], v2: bool) -> Result<(), Error> {
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 | 4 | 6 | 14 | 15 => {
                expect(wire, VARINT)?;
                r.varint()?;
            }
            2 | 3 | 5 | 7 => {
                expect(wire, FIXED64)?;
                r.fixed64()?;
            }
            8 | 11 => {
                expect(wire, LEN)?;
                bucket_span(r.bytes()?)?;
            }
            // Repeated sint64 deltas: packed or one by one.
            9 | 12 => match wire {
                VARINT => {
                    r.varint()?;
                }
                LEN => {
                    let mut packed = Reader::new(r.bytes()?);
                    while packed.has_more() {
                        packed.varint()?;
                    }
                }
                _ => {
                    return Err(Error::Protobuf(
                        "invalid wire type for a known field".into(),
                    ));
                }
            },
            // Repeated double counts (and 2.0's custom bucket bounds):
            // packed or one by one.
            10 | 13 => doubles(&mut r, wire)?,
            16 if v2 => doubles(&mut r, wire)?,
            17 if v2 => {
                expect(wire, VARINT)?;
                r.varint()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// Reads a repeated double field's element, packed or not.
fn doubles(r: &mut Reader<'_>, wire: u8) -> Result<(), Error> {
    match wire {
        FIXED64 => {
            r.fixed64()?;
        }
        LEN => {
            if r.bytes()?.len() % 8 != 0 {
                return Err(Error::Protobuf("packed doubles of a partial length".into()));
            }
        }
        _ => {
            return Err(Error::Protobuf(
                "invalid wire type for a known field".into(),
            ));
        }
    }
    Ok(())
}

fn bucket_span(buf: &[u8]) -> Result<(), Error> {
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 | 2 => {
                expect(wire, VARINT)?;
                r.varint()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// A `MetricMetadata`'s family name, type, help and unit.
type MetadataFields<'a> = (&'a str, i32, &'a str, &'a str);

/// Reads one `MetricMetadata`: `None` when one of its strings is not UTF-8.
fn metadata(buf: &[u8]) -> Result<Option<MetadataFields<'_>>, Error> {
    let (mut name, mut metric_type, mut help, mut unit): (&[u8], _, &[u8], &[u8]) =
        (b"", 0, b"", b"");
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, VARINT)?;
                metric_type = r.varint()? as i32;
            }
            2 => {
                expect(wire, LEN)?;
                name = r.bytes()?;
            }
            4 => {
                expect(wire, LEN)?;
                help = r.bytes()?;
            }
            5 => {
                expect(wire, LEN)?;
                unit = r.bytes()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(match (utf8(name), utf8(help), utf8(unit)) {
        (Some(name), Some(help), Some(unit)) => Some((name, metric_type, help, unit)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExemplarRejectReason;
    use crate::proto::{Exemplar, Label, Sample as PbSample, TimeSeries, WriteRequest};

    fn rules() -> Rules {
        crate::config::Config::default()
            .decode_limits()
            .rules(crate::ingest::now_ms())
    }

    fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(value, timestamp)| PbSample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_canonical_series_take_the_fast_path() {
        let rules = rules();
        let fast = |labels: &[(&str, &str)]| {
            let bytes = series(labels, &[(1.0, 5)]).encode_to_vec();
            let mut lowering = Lowering::new(&rules, WriteBatch::default());
            let taken = canonical_series(&mut lowering, &bytes);
            (taken, lowering.finish())
        };
        let (taken, batch) = fast(&[("__name__", "up"), ("instance", "a:1"), ("job", "x")]);
        assert!(taken);
        assert_eq!(batch.key(&batch.series[0]), r#"up{instance="a:1",job="x"}"#);
        assert!(fast(&[("__name__", "up")]).0);
        for other in [
            &[("job", "x"), ("__name__", "up")][..],
            &[("__name__", "up"), ("job", "x"), ("instance", "a")],
            &[("__name__", "up"), ("job", "x"), ("job", "y")],
            &[("__name__", "up"), ("job", "")],
            &[("__name__", "up"), ("job", "a\"b")],
            &[("__name__", "up"), ("job", "é")],
            &[("__name__", "1up")],
        ] {
            let (taken, batch) = fast(other);
            assert!(!taken, "{other:?}");
            assert!(
                batch.keys.is_empty() && batch.series.is_empty(),
                "{other:?}"
            );
        }
    }

    fn exemplar(labels: &[(&str, &str)], value: f64, timestamp: i64) -> Exemplar {
        Exemplar {
            labels: series(labels, &[]).labels,
            value,
            timestamp,
        }
    }

    /// Both decoders' batch of `req`, checked equal: (kept exemplar as
    /// (labels, value, timestamp), exemplars counted, exemplars refused).
    type Kept = Option<(String, f64, i64)>;
    fn exemplars_of(req: &WriteRequest) -> Vec<(Kept, u32)> {
        let bytes = req.encode_to_vec();
        let fast = decode(&bytes, &rules()).unwrap();
        let reference = decode_with_prost(&bytes, &rules()).unwrap();
        let view = |b: &WriteBatch| -> Vec<(Kept, u32)> {
            b.series
                .iter()
                .map(|u| {
                    let kept = b
                        .exemplar(u)
                        .map(|(e, l)| (l.to_string(), e.value, e.timestamp_ms));
                    (kept, u.exemplars)
                })
                .collect()
        };
        assert_eq!(view(&fast), view(&reference));
        assert_eq!(fast.rejected.exemplars, reference.rejected.exemplars);
        view(&fast)
    }

    #[test]
    fn the_latest_exemplar_is_kept_as_openmetrics_label_text() {
        let mut ts = series(&[("__name__", "req_total"), ("job", "x")], &[(1.0, 5)]);
        ts.exemplars = vec![
            exemplar(&[("trace_id", "old")], 1.0, 3),
            // Sorted by name, values escaped, a UTF-8 name quoted.
            exemplar(
                &[
                    ("trace_id", "a\\b\"c\nd"),
                    ("service.name", "api"),
                    ("span_id", "é"),
                ],
                2.5,
                4,
            ),
            exemplar(&[("trace_id", "older")], 3.0, 2),
        ];
        let plain = series(&[("__name__", "up")], &[(1.0, 5)]);
        let req = WriteRequest {
            timeseries: vec![ts, plain],
            ..Default::default()
        };
        let got = exemplars_of(&req);
        assert_eq!(
            got,
            [
                (
                    Some((
                        r#""service.name"="api",span_id="é",trace_id="a\\b\"c\nd""#.to_string(),
                        2.5,
                        4
                    )),
                    3
                ),
                (None, 0)
            ]
        );
    }

    #[test]
    fn equal_timestamps_keep_the_later_and_no_timestamp_is_zero() {
        let mut ts = series(&[("__name__", "m")], &[(1.0, 5)]);
        ts.exemplars = vec![exemplar(&[("a", "1")], 1.0, 0), exemplar(&[], 2.0, 0)];
        let req = WriteRequest {
            timeseries: vec![ts],
            ..Default::default()
        };
        assert_eq!(exemplars_of(&req), [(Some((String::new(), 2.0, 0)), 2)]);
    }

    #[test]
    fn an_exemplar_over_128_characters_is_refused_and_its_series_kept() {
        // 128 characters of names and values, in more bytes: kept.
        let at_limit = "é".repeat(127);
        let over = "x".repeat(128);
        let mut ts = series(&[("__name__", "m")], &[(1.0, 5)]);
        ts.exemplars = vec![
            exemplar(&[("t", &at_limit)], 1.0, 1),
            exemplar(&[("t", &over)], 2.0, 2),
            exemplar(&[("", "x")], 3.0, 3),
            exemplar(&[("a", "1"), ("a", "2")], 4.0, 4),
        ];
        let req = WriteRequest {
            timeseries: vec![ts],
            ..Default::default()
        };
        let bytes = req.encode_to_vec();
        let batch = decode(&bytes, &rules()).unwrap();
        assert_eq!(
            exemplars_of(&req),
            [(Some((format!(r#"t="{at_limit}""#), 1.0, 1)), 1)]
        );
        assert_eq!(
            batch.rejected.exemplars,
            [
                (ExemplarRejectReason::LabelsTooLong, 1),
                (ExemplarRejectReason::InvalidLabels, 2)
            ]
        );
        assert!(batch.rejected.first.is_none());
        assert_eq!(batch.series.len(), 1);
    }

    #[test]
    fn exemplars_of_a_refused_series_are_neither_counted_nor_kept() {
        let mut ts = series(&[("job", "x")], &[(1.0, 5)]);
        ts.exemplars = vec![exemplar(&[("t", "x".repeat(200).as_str())], 1.0, 1)];
        let req = WriteRequest {
            timeseries: vec![ts],
            ..Default::default()
        };
        let batch = decode(&req.encode_to_vec(), &rules()).unwrap();
        assert!(batch.series.is_empty() && batch.exemplars.is_empty());
        assert!(batch.rejected.exemplars.is_empty());
    }

    #[test]
    fn latest_sample_wins_and_later_wins_ties() {
        let req = WriteRequest {
            timeseries: vec![series(
                &[("__name__", "m")],
                &[(1.0, 10), (3.0, 30), (2.0, 20), (4.0, 30)],
            )],
            ..Default::default()
        };
        let batch = decode(&req.encode_to_vec(), &rules()).unwrap();
        assert_eq!(batch.series.len(), 1);
        assert_eq!(
            batch.series[0].latest,
            Sample {
                value: 4.0,
                timestamp_ms: 30
            }
        );
        assert_eq!(batch.series[0].samples, 4);
    }

    #[test]
    fn invalid_series_are_counted_and_valid_ones_kept() {
        let req = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "ok")], &[(1.0, 1)]),
                series(&[("__name__", "m"), ("", "x")], &[(1.0, 1), (2.0, 2)]),
                series(&[("job", "x")], &[(1.0, 1)]),
            ],
            ..Default::default()
        };
        let batch = decode(&req.encode_to_vec(), &rules()).unwrap();
        assert_eq!(batch.series.len(), 1);
        assert_eq!(batch.key(&batch.series[0]), "ok");
        assert_eq!(batch.rejected.series_total(), 2);
        assert_eq!(batch.rejected.samples_total(), 3);
        assert_eq!(
            batch.rejected.first.unwrap().reason,
            crate::model::RejectReason::InvalidLabelName
        );
    }
}
