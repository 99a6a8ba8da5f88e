//! Remote-Write 1.0 (`prometheus.WriteRequest`) → [`WriteBatch`].
//!
//! [`decode_into`] is the hot path: a zero-copy walk of the wire format
//! ([`super::wire`]) that borrows label names and values from the buffer.
//! [`decode_with_prost`] decodes with the prost-generated types and lowers the
//! result the same way; it is the reference the fast path is tested against.

use prost::Message;

use super::Error;
use super::lower::{Lowering, SeriesSummary, latest};
use super::wire::{self, FIXED64, LEN, Reader, VARINT, expect};
use crate::model::{MetricType, Sample, SeriesLimits, WriteBatch};
use crate::proto::WriteRequest;

/// Decodes a decompressed `WriteRequest` and lowers it into the model.
///
/// A body that is not a valid message fails as a whole; a series that breaks a
/// rule is recorded in [`WriteBatch::rejected`] and the others go on.
pub fn decode(buf: &[u8], limits: &SeriesLimits) -> Result<WriteBatch, Error> {
    let mut batch = WriteBatch::default();
    decode_into(buf, limits, &mut batch)?;
    Ok(batch)
}

/// [`decode`] into `batch`, cleared first, whose buffers are reused: a
/// batch kept between requests spares each one its allocations. On error,
/// `batch` holds whatever came before the fault.
pub fn decode_into(buf: &[u8], limits: &SeriesLimits, batch: &mut WriteBatch) -> Result<(), Error> {
    let mut lowering = Lowering::new(limits, std::mem::take(batch));
    let result = decode_fields(buf, &mut lowering);
    *batch = lowering.finish();
    result
}

fn decode_fields<'a>(buf: &'a [u8], lowering: &mut Lowering<'_, 'a>) -> Result<(), Error> {
    // Only the general path needs a label list: allocated on its first use.
    let mut labels: Vec<(&str, &str)> = Vec::new();
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                let series = r.bytes()?;
                if !canonical_series(lowering, series) {
                    labels.clear();
                    let summary = time_series(series, &mut labels)?;
                    lowering.series(labels.iter().copied(), summary);
                }
            }
            3 => {
                expect(wire, LEN)?;
                let (name, metric_type, help, unit) = metadata(r.bytes()?)?;
                lowering.metadata(name, metric_type_of(metric_type), help, unit);
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// The reference decoder: prost, then the same lowering as [`decode`].
pub fn decode_with_prost(buf: &[u8], limits: &SeriesLimits) -> Result<WriteBatch, Error> {
    let req = WriteRequest::decode(buf).map_err(|e| Error::Protobuf(e.to_string()))?;
    Ok(lower(&req, limits))
}

/// Lowers a prost-decoded request into the model.
pub fn lower(req: &WriteRequest, limits: &SeriesLimits) -> WriteBatch {
    let mut lowering = Lowering::new(limits, WriteBatch::default());
    for ts in &req.timeseries {
        let samples = ts.samples.iter().map(|s| Sample {
            value: s.value,
            timestamp_ms: s.timestamp,
        });
        let summary = SeriesSummary {
            latest: latest(samples),
            samples: ts.samples.len() as u32,
            histograms: ts.histograms.len() as u32,
        };
        let labels = ts
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()));
        lowering.series(labels, summary);
    }
    for md in &req.metadata {
        lowering.metadata(
            &md.metric_family_name,
            metric_type_of(md.r#type),
            &md.help,
            &md.unit,
        );
    }
    lowering.finish()
}

/// The fast path for a `TimeSeries` in the form Prometheus sends:
/// labels in canonical form in the common layout, then float samples.
/// Writes the key straight from the wire, with no label list; `false`
/// (and nothing recorded) for anything else, which [`Lowering::series`]
/// then handles.
#[inline]
fn canonical_series<'a>(lowering: &mut Lowering<'_, 'a>, buf: &'a [u8]) -> bool {
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
            (0x0a, true) => {
                common_label_layout(field).is_some_and(|(name, value)| key.label(name, value))
            }
            (0x12, true) => match sample(field) {
                Ok(sample) => {
                    s.add(sample);
                    true
                }
                Err(_) => false,
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
fn metric_type_of(wire: i32) -> MetricType {
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
fn time_series<'a>(
    buf: &'a [u8],
    labels: &mut Vec<(&'a str, &'a str)>,
) -> Result<SeriesSummary, Error> {
    let mut s = SeriesSummary::default();
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                labels.push(label(r.bytes()?)?);
            }
            2 => {
                expect(wire, LEN)?;
                s.add(sample(r.bytes()?)?);
            }
            3 => {
                expect(wire, LEN)?;
                exemplar(r.bytes()?)?;
            }
            4 => {
                expect(wire, LEN)?;
                histogram(r.bytes()?)?;
                s.histograms += 1;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(s)
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

fn label(buf: &[u8]) -> Result<(&str, &str), Error> {
    if let Some((name, value)) = common_label_layout(buf) {
        return Ok((wire::to_str(name)?, wire::to_str(value)?));
    }
    let (mut name, mut value) = ("", "");
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                name = r.str()?;
            }
            2 => {
                expect(wire, LEN)?;
                value = r.str()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((name, value))
}

#[inline]
fn sample(buf: &[u8]) -> Result<Sample, Error> {
    // The layout every encoder writes: the value (tag 0x09, eight bytes),
    // then the timestamp (tag 0x10, a varint) to the end.
    if let [0x09, value @ ..] = buf
        && let Some((value, [0x10, timestamp @ ..])) = value.split_first_chunk::<8>()
    {
        let mut r = Reader::new(timestamp);
        if let Ok(t) = r.varint()
            && !r.has_more()
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
            _ => r.skip(field, wire)?,
        }
    }
    Ok(s)
}

/// Validates an `Exemplar` (unused, but a malformed one fails the request as in prost).
fn exemplar(buf: &[u8]) -> Result<(), Error> {
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                label(r.bytes()?)?;
            }
            2 => {
                expect(wire, FIXED64)?;
                r.fixed64()?;
            }
            3 => {
                expect(wire, VARINT)?;
                r.varint()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// Validates a native `Histogram`, field by field as prost would decode it.
fn histogram(buf: &[u8]) -> Result<(), Error> {
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
            // Repeated double counts: packed or one by one.
            10 | 13 => match wire {
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
            },
            _ => r.skip(field, wire)?,
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

fn metadata(buf: &[u8]) -> Result<(&str, i32, &str, &str), Error> {
    let (mut name, mut metric_type, mut help, mut unit) = ("", 0, "", "");
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
                name = r.str()?;
            }
            4 => {
                expect(wire, LEN)?;
                help = r.str()?;
            }
            5 => {
                expect(wire, LEN)?;
                unit = r.str()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((name, metric_type, help, unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Label, Sample as PbSample, TimeSeries};

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
        let limits = crate::config::Config::default().series_limits();
        let fast = |labels: &[(&str, &str)]| {
            let bytes = series(labels, &[(1.0, 5)]).encode_to_vec();
            let mut lowering = Lowering::new(&limits, WriteBatch::default());
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

    #[test]
    fn latest_sample_wins_and_later_wins_ties() {
        let req = WriteRequest {
            timeseries: vec![series(
                &[("__name__", "m")],
                &[(1.0, 10), (3.0, 30), (2.0, 20), (4.0, 30)],
            )],
            ..Default::default()
        };
        let batch = decode(
            &req.encode_to_vec(),
            &crate::config::Config::default().series_limits(),
        )
        .unwrap();
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
                series(&[("__name__", "bad-name")], &[(1.0, 1), (2.0, 2)]),
                series(&[("job", "x")], &[(1.0, 1)]),
            ],
            ..Default::default()
        };
        let batch = decode(
            &req.encode_to_vec(),
            &crate::config::Config::default().series_limits(),
        )
        .unwrap();
        assert_eq!(batch.series.len(), 1);
        assert_eq!(batch.key(&batch.series[0]), "ok");
        assert_eq!(batch.rejected.series_total(), 2);
        assert_eq!(batch.rejected.samples_total(), 3);
        assert_eq!(
            batch.rejected.first.unwrap().reason,
            crate::model::RejectReason::InvalidMetricName
        );
    }
}
