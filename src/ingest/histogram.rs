//! A remote-write `Histogram` message (1.0's `prometheus.Histogram`, 2.0's
//! `io.prometheus.write.v2.Histogram`) → [`NativeHistogram`].
//!
//! [`read`] walks the wire format with the same [`Reader`] as the request
//! decoders, into a [`RawHistogram`]; the model validates it
//! ([`NativeHistogram::from_raw`]). Both messages share field numbers 1 to
//! 15; 2.0 adds `custom_values` (16) and `start_timestamp` (17). A 1.0
//! message's field 17 is skipped as unknown, but its field 16 is read as
//! custom bounds, as Prometheus' receiver reads it: Prometheus' own copy of
//! the 1.0 message (`prompb/types.proto`) carries `custom_values = 16`
//! outside the specification, for its internal conversions, so a 1.0
//! custom-bucket histogram with bounds is accepted there and here. Repeated
//! scalars are read packed or one by one, as protobuf parsers must.

use super::Error;
use super::wire::{FIXED64, LEN, Reader, VARINT, expect};
use crate::model::histogram::{HistogramError, NativeHistogram, RawHistogram, Span, WireCount};

impl NativeHistogram {
    /// Decodes and validates one `Histogram` message; `v2` reads it as 2.0's
    /// (with a start timestamp).
    ///
    /// # Errors
    ///
    /// [`HistogramError::Malformed`] for broken framing, otherwise the
    /// first validation rule broken (see [`NativeHistogram::from_raw`]).
    pub fn decode(buf: &[u8], v2: bool) -> Result<NativeHistogram, HistogramError> {
        let raw = read(buf, v2).map_err(|e| match e {
            Error::Protobuf(what) => HistogramError::Malformed(what),
            other => HistogramError::Malformed(other.to_string()),
        })?;
        NativeHistogram::from_raw(&raw)
    }
}

/// How many buckets, at most, lowering a histogram's resolution merges into
/// one: from the finest schema senders use (8) to the coarsest (-4).
pub const MOST_MERGED: usize = 1 << 12;

/// The length of the longest of a `Histogram` message's bucket lists
/// (negative and positive deltas or counts, custom bounds, each summed over
/// its fields), counted on the wire without decoding any of them: a packed
/// varint list by its bytes below 0x80, a packed double list by its length.
///
/// A message whose longest list exceeds the bucket limit times
/// [`MOST_MERGED`] cannot be brought within the limit by lowering its
/// resolution, and decoding it first would cost about 16 bytes of memory
/// per byte of the message (a run of zero deltas: one byte each on the
/// wire), so the caller refuses it on this count alone.
///
/// # Errors
///
/// [`Error::Protobuf`] when the framing is broken (the decoder then says
/// how).
pub fn longest_bucket_list(buf: &[u8]) -> Result<usize, Error> {
    // Fields 9, 10, 12, 13 and 16, in that order.
    let mut lists = [0usize; 5];
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        let list = match field {
            9 => 0,
            10 => 1,
            12 => 2,
            13 => 3,
            16 => 4,
            _ => {
                r.skip(field, wire)?;
                continue;
            }
        };
        let n = match wire {
            LEN => {
                let bytes = r.bytes()?;
                if field == 9 || field == 12 {
                    bytes.iter().filter(|&&b| b < 0x80).count()
                } else {
                    bytes.len() / 8
                }
            }
            _ => {
                r.skip(field, wire)?;
                1
            }
        };
        lists[list] = lists[list].saturating_add(n);
    }
    Ok(lists.into_iter().max().unwrap_or(0))
}

/// Reads one `Histogram` message's fields, unvalidated. Scalars take their
/// last value, a oneof its last member, repeated fields accumulate.
///
/// # Errors
///
/// [`Error::Protobuf`] when the framing is broken or a known field has the
/// wrong wire type.
pub fn read(buf: &[u8], v2: bool) -> Result<RawHistogram, Error> {
    let mut h = RawHistogram::default();
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => h.count = Some(WireCount::Int(varint(&mut r, wire)?)),
            2 => h.count = Some(WireCount::Float(double(&mut r, wire)?)),
            3 => h.sum = double(&mut r, wire)?,
            4 => h.schema = zigzag32(varint(&mut r, wire)?),
            5 => h.zero_threshold = double(&mut r, wire)?,
            6 => h.zero_count = Some(WireCount::Int(varint(&mut r, wire)?)),
            7 => h.zero_count = Some(WireCount::Float(double(&mut r, wire)?)),
            8 => h.negative_spans.push(span(&mut r, wire)?),
            9 => sint64s(&mut r, wire, &mut h.negative_deltas)?,
            10 => doubles(&mut r, wire, &mut h.negative_counts)?,
            11 => h.positive_spans.push(span(&mut r, wire)?),
            12 => sint64s(&mut r, wire, &mut h.positive_deltas)?,
            13 => doubles(&mut r, wire, &mut h.positive_counts)?,
            // An enum: int32 on the wire, so truncated as protobuf does.
            14 => h.reset_hint = varint(&mut r, wire)? as i32,
            15 => h.timestamp_ms = varint(&mut r, wire)? as i64,
            16 => doubles(&mut r, wire, &mut h.custom_values)?,
            17 if v2 => h.start_timestamp_ms = varint(&mut r, wire)? as i64,
            _ => r.skip(field, wire)?,
        }
    }
    Ok(h)
}

fn wrong_wire_type() -> Error {
    Error::Protobuf("invalid wire type for a known field".into())
}

fn varint(r: &mut Reader<'_>, wire: u8) -> Result<u64, Error> {
    expect(wire, VARINT)?;
    r.varint()
}

fn double(r: &mut Reader<'_>, wire: u8) -> Result<f64, Error> {
    expect(wire, FIXED64)?;
    Ok(f64::from_bits(r.fixed64()?))
}

/// `sint32`: zigzag over the low 32 bits, as protobuf truncates.
fn zigzag32(v: u64) -> i32 {
    let n = v as u32;
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

fn zigzag64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// A `BucketSpan` message.
fn span(r: &mut Reader<'_>, wire: u8) -> Result<Span, Error> {
    expect(wire, LEN)?;
    let mut s = Span::default();
    let mut m = Reader::new(r.bytes()?);
    while m.has_more() {
        let (field, wire) = m.key()?;
        match field {
            1 => s.offset = zigzag32(varint(&mut m, wire)?),
            2 => s.length = varint(&mut m, wire)? as u32,
            _ => m.skip(field, wire)?,
        }
    }
    Ok(s)
}

/// One element, or a packed run, of a `repeated sint64`.
fn sint64s(r: &mut Reader<'_>, wire: u8, out: &mut Vec<i64>) -> Result<(), Error> {
    match wire {
        VARINT => out.push(zigzag64(r.varint()?)),
        LEN => {
            let mut packed = Reader::new(r.bytes()?);
            while packed.has_more() {
                out.push(zigzag64(packed.varint()?));
            }
        }
        _ => return Err(wrong_wire_type()),
    }
    Ok(())
}

/// One element, or a packed run, of a `repeated double`.
fn doubles(r: &mut Reader<'_>, wire: u8, out: &mut Vec<f64>) -> Result<(), Error> {
    match wire {
        FIXED64 => out.push(f64::from_bits(r.fixed64()?)),
        LEN => {
            let bytes = r.bytes()?;
            if bytes.len() % 8 != 0 {
                return Err(Error::Protobuf("packed doubles of a partial length".into()));
            }
            out.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))),
            );
        }
        _ => return Err(wrong_wire_type()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;
    use crate::model::histogram::{BucketCounts, ResetHint};
    use crate::proto;

    fn spans1(s: &[(i32, u32)]) -> Vec<proto::BucketSpan> {
        s.iter()
            .map(|&(offset, length)| proto::BucketSpan { offset, length })
            .collect()
    }

    fn spans2(s: &[(i32, u32)]) -> Vec<proto::v2::BucketSpan> {
        s.iter()
            .map(|&(offset, length)| proto::v2::BucketSpan { offset, length })
            .collect()
    }

    fn spans(s: &[(i32, u32)]) -> Vec<Span> {
        s.iter()
            .map(|&(offset, length)| Span { offset, length })
            .collect()
    }

    /// Every bucket list is counted on the wire, packed or element by
    /// element, summed over its fields; the longest is the answer.
    #[test]
    fn the_longest_bucket_list_is_counted_on_the_wire() {
        let msg = proto::v2::Histogram {
            // 300 needs two bytes, -70 (zigzag 139) two: five deltas.
            negative_deltas: vec![1, 300, -70, 0, 2],
            positive_deltas: vec![1, 2, 3],
            custom_values: vec![0.5; 7],
            ..proto::v2::Histogram::default()
        };
        let bytes = msg.encode_to_vec();
        assert_eq!(longest_bucket_list(&bytes), Ok(7));
        // The same positive counts as floats, packed in two fields and then
        // one by one (wire type 1).
        let mut split = bytes.clone();
        for doubles in [&[1.0f64, 2.0][..], &[3.0, 4.0, 5.0]] {
            split.push(13 << 3 | 2);
            split.push((8 * doubles.len()) as u8);
            for d in doubles {
                split.extend_from_slice(&d.to_le_bytes());
            }
        }
        for d in [6.0f64, 7.0, 8.0] {
            split.push(13 << 3 | 1);
            split.extend_from_slice(&d.to_le_bytes());
        }
        assert_eq!(longest_bucket_list(&split), Ok(8));
        assert!(longest_bucket_list(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_1_0_integer_histogram_encoded_by_prost() {
        use proto::histogram::{Count, ZeroCount};
        let msg = proto::Histogram {
            count: Some(Count::CountInt(16)),
            sum: -3.25,
            schema: -2,
            zero_threshold: 0.001,
            zero_count: Some(ZeroCount::ZeroCountInt(2)),
            negative_spans: spans1(&[(-3, 2)]),
            negative_deltas: vec![1, 2],
            positive_spans: spans1(&[(-1, 2), (3, 1)]),
            positive_deltas: vec![5, -1, -3],
            reset_hint: proto::histogram::ResetHint::Gauge as i32,
            timestamp: -1234,
            ..proto::Histogram::default()
        };
        let h = NativeHistogram::decode(&msg.encode_to_vec(), false).unwrap();
        assert_eq!(h.schema(), -2);
        assert!(!h.is_float() && h.is_gauge());
        assert_eq!(h.reset_hint(), ResetHint::Gauge);
        assert_eq!((h.count(), h.sum(), h.zero_count()), (16.0, -3.25, 2.0));
        assert_eq!(h.zero_threshold(), 0.001);
        assert_eq!(h.timestamp_ms(), -1234);
        assert_eq!(h.negative_spans(), spans(&[(-3, 2)]));
        assert_eq!(h.negative_buckets(), BucketCounts::Int(&[1, 3]));
        assert_eq!(h.positive_spans(), spans(&[(-1, 2), (3, 1)]));
        assert_eq!(h.positive_buckets(), BucketCounts::Int(&[5, 4, 1]));
        assert!(h.custom_values().is_empty());
    }

    #[test]
    fn a_2_0_float_histogram_with_custom_buckets_encoded_by_prost() {
        use proto::v2::histogram::{Count, ZeroCount};
        let msg = proto::v2::Histogram {
            count: Some(Count::CountFloat(7.5)),
            sum: 12.0,
            schema: -53,
            zero_count: Some(ZeroCount::ZeroCountFloat(0.0)),
            positive_spans: spans2(&[(0, 2), (1, 1)]),
            positive_counts: vec![1.5, 4.0, 2.0],
            custom_values: vec![0.1, 0.5, 1.0],
            reset_hint: proto::v2::histogram::ResetHint::No as i32,
            timestamp: 1_700_000_000_123,
            start_timestamp: 1_699_999_000_000,
            ..proto::v2::Histogram::default()
        };
        let bytes = msg.encode_to_vec();
        let h = NativeHistogram::decode(&bytes, true).unwrap();
        assert!(h.is_float() && h.is_custom());
        assert_eq!(h.reset_hint(), ResetHint::No);
        assert_eq!(h.custom_values(), [0.1, 0.5, 1.0]);
        assert_eq!(h.positive_buckets(), BucketCounts::Float(&[1.5, 4.0, 2.0]));
        assert_eq!(h.start_timestamp_ms(), 1_699_999_000_000);
        assert_eq!(h.timestamp_ms(), 1_700_000_000_123);
        assert_eq!(h.classic_buckets(), [(0.1, 1.5), (0.5, 5.5), (1.0, 5.5)]);
        // Read as 1.0, field 17 is unknown; field 16 is read, as
        // Prometheus' receiver reads it.
        let v1 = NativeHistogram::decode(&bytes, false).unwrap();
        assert_eq!(v1.start_timestamp_ms(), 0);
        assert_eq!(v1.custom_values(), [0.1, 0.5, 1.0]);
        // Without field 16, the spans reach past the (no) custom bounds.
        let mut no_bounds = msg.clone();
        no_bounds.custom_values.clear();
        assert!(matches!(
            NativeHistogram::decode(&no_bounds.encode_to_vec(), false),
            Err(HistogramError::CustomBoundsTooFew { bounds: 0, .. })
        ));
    }

    /// The 2.0 message of a raw histogram.
    fn message_of(raw: &RawHistogram) -> proto::v2::Histogram {
        use proto::v2::histogram::{Count, ZeroCount};
        let spans = |s: &[Span]| {
            s.iter()
                .map(|s| proto::v2::BucketSpan {
                    offset: s.offset,
                    length: s.length,
                })
                .collect()
        };
        proto::v2::Histogram {
            count: raw.count.map(|c| match c {
                WireCount::Int(c) => Count::CountInt(c),
                WireCount::Float(c) => Count::CountFloat(c),
            }),
            zero_count: raw.zero_count.map(|c| match c {
                WireCount::Int(c) => ZeroCount::ZeroCountInt(c),
                WireCount::Float(c) => ZeroCount::ZeroCountFloat(c),
            }),
            sum: raw.sum,
            schema: raw.schema,
            zero_threshold: raw.zero_threshold,
            negative_spans: spans(&raw.negative_spans),
            negative_deltas: raw.negative_deltas.clone(),
            negative_counts: raw.negative_counts.clone(),
            positive_spans: spans(&raw.positive_spans),
            positive_deltas: raw.positive_deltas.clone(),
            positive_counts: raw.positive_counts.clone(),
            reset_hint: raw.reset_hint,
            timestamp: raw.timestamp_ms,
            custom_values: raw.custom_values.clone(),
            start_timestamp: raw.start_timestamp_ms,
        }
    }

    #[test]
    fn a_histogram_survives_the_trip_through_its_wire_form() {
        let bytes = [
            message_of(&RawHistogram {
                count: Some(WireCount::Int(12)),
                sum: 7.0,
                schema: 3,
                zero_threshold: 2f64.powi(-128),
                zero_count: Some(WireCount::Int(2)),
                negative_spans: spans(&[(-5, 2), (3, 1)]),
                negative_deltas: vec![1, 0, 2],
                positive_spans: spans(&[(7, 1)]),
                positive_deltas: vec![5],
                reset_hint: 2,
                timestamp_ms: 99,
                ..RawHistogram::default()
            }),
            message_of(&RawHistogram {
                count: Some(WireCount::Float(3.0)),
                schema: -53,
                positive_spans: spans(&[(1, 1)]),
                positive_counts: vec![3.0],
                custom_values: vec![-1.0, 1.0],
                start_timestamp_ms: 5,
                ..RawHistogram::default()
            }),
        ]
        .map(|m| m.encode_to_vec());
        for b in bytes {
            let h = NativeHistogram::decode(&b, true).unwrap();
            let again = message_of(&h.to_raw()).encode_to_vec();
            assert_eq!(NativeHistogram::decode(&again, true).unwrap(), h);
        }
    }

    /// A field key.
    fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
        prost::encoding::encode_varint(u64::from(field << 3 | u32::from(wire)), out);
    }

    #[test]
    fn unpacked_repeated_fields_read_as_packed_ones() {
        use proto::histogram::Count;
        let msg = proto::Histogram {
            count: Some(Count::CountInt(5)),
            positive_spans: spans1(&[(0, 3)]),
            positive_deltas: vec![1, 1, 0],
            ..proto::Histogram::default()
        };
        let packed = msg.encode_to_vec();
        // The same, deltas one by one (sint64: zigzag 1 → 2, 0 → 0), split
        // around another field.
        let mut unpacked = Vec::new();
        key(&mut unpacked, 1, VARINT);
        prost::encoding::encode_varint(5, &mut unpacked);
        for d in [2u64, 2] {
            key(&mut unpacked, 12, VARINT);
            prost::encoding::encode_varint(d, &mut unpacked);
        }
        key(&mut unpacked, 11, LEN);
        unpacked.extend_from_slice(&[4, 0x08, 0x00, 0x10, 0x03]);
        key(&mut unpacked, 12, VARINT);
        unpacked.push(0);
        assert_eq!(
            NativeHistogram::decode(&unpacked, false).unwrap(),
            NativeHistogram::decode(&packed, false).unwrap()
        );
        // Unpacked doubles: float counts and custom bounds.
        let mut floats = Vec::new();
        key(&mut floats, 2, FIXED64);
        floats.extend_from_slice(&3.0f64.to_le_bytes());
        key(&mut floats, 4, VARINT);
        floats.push(105); // sint32 -53
        key(&mut floats, 11, LEN);
        floats.extend_from_slice(&[2, 0x10, 0x02]);
        for v in [1.0f64, 2.0] {
            key(&mut floats, 13, FIXED64);
            floats.extend_from_slice(&v.to_le_bytes());
        }
        key(&mut floats, 16, FIXED64);
        floats.extend_from_slice(&0.5f64.to_le_bytes());
        let h = NativeHistogram::decode(&floats, true).unwrap();
        assert_eq!(h.custom_values(), [0.5]);
        assert_eq!(h.positive_buckets(), BucketCounts::Float(&[1.0, 2.0]));
    }

    #[test]
    fn the_last_member_of_a_oneof_wins() {
        let mut bytes = Vec::new();
        key(&mut bytes, 1, VARINT);
        bytes.push(5);
        key(&mut bytes, 2, FIXED64);
        bytes.extend_from_slice(&0.0f64.to_le_bytes());
        let h = NativeHistogram::decode(&bytes, false).unwrap();
        assert!(h.is_float());
        assert_eq!(h.count(), 0.0);
    }

    #[test]
    fn broken_framing_is_malformed() {
        for bytes in [
            &[0x08][..],                         // truncated varint
            &[0x11, 0, 0][..],                   // truncated double
            &[0x09, 0, 0, 0, 0, 0, 0, 0, 0][..], // count_int as fixed64
            &[0x62, 0x03, 0x02][..],             // packed deltas running past the end
            &[0x6a, 0x03, 0, 0, 0][..],          // packed doubles of 3 bytes
            &[0x5d, 0, 0, 0, 0][..],             // a span as fixed32
        ] {
            let err = NativeHistogram::decode(bytes, true).unwrap_err();
            assert!(
                matches!(err, HistogramError::Malformed(_)),
                "{bytes:?}: {err:?}"
            );
            assert!(
                err.to_string()
                    .starts_with("malformed protobuf Histogram: ")
            );
        }
        // Unknown fields are skipped.
        let h = NativeHistogram::decode(&[0xa0, 0x06, 0x01], true).unwrap();
        assert_eq!(h.count(), 0.0);
    }

    /// The raw form prost's decoding of a 2.0 message gives.
    fn raw_of(m: &proto::v2::Histogram, v2: bool) -> RawHistogram {
        use proto::v2::histogram::{Count, ZeroCount};
        let span = |s: &proto::v2::BucketSpan| Span {
            offset: s.offset,
            length: s.length,
        };
        RawHistogram {
            count: m.count.map(|c| match c {
                Count::CountInt(c) => WireCount::Int(c),
                Count::CountFloat(c) => WireCount::Float(c),
            }),
            sum: m.sum,
            schema: m.schema,
            zero_threshold: m.zero_threshold,
            zero_count: m.zero_count.map(|c| match c {
                ZeroCount::ZeroCountInt(c) => WireCount::Int(c),
                ZeroCount::ZeroCountFloat(c) => WireCount::Float(c),
            }),
            negative_spans: m.negative_spans.iter().map(span).collect(),
            negative_deltas: m.negative_deltas.clone(),
            negative_counts: m.negative_counts.clone(),
            positive_spans: m.positive_spans.iter().map(span).collect(),
            positive_deltas: m.positive_deltas.clone(),
            positive_counts: m.positive_counts.clone(),
            reset_hint: m.reset_hint,
            timestamp_ms: m.timestamp,
            custom_values: m.custom_values.clone(),
            start_timestamp_ms: if v2 { m.start_timestamp } else { 0 },
        }
    }

    fn message() -> impl Strategy<Value = proto::v2::Histogram> {
        use proto::v2::histogram::{Count, ZeroCount};
        let spans = || {
            prop::collection::vec(
                (any::<i32>(), any::<u32>())
                    .prop_map(|(offset, length)| proto::v2::BucketSpan { offset, length }),
                0..4,
            )
        };
        let count = prop_oneof![
            Just(None),
            any::<u64>().prop_map(|c| Some(Count::CountInt(c))),
            any::<f64>().prop_map(|c| Some(Count::CountFloat(c))),
        ];
        let zero_count = prop_oneof![
            Just(None),
            any::<u64>().prop_map(|c| Some(ZeroCount::ZeroCountInt(c))),
            any::<f64>().prop_map(|c| Some(ZeroCount::ZeroCountFloat(c))),
        ];
        let deltas = || prop::collection::vec(any::<i64>(), 0..5);
        let doubles = || prop::collection::vec(any::<f64>(), 0..5);
        (
            (count, zero_count, any::<f64>(), any::<i32>(), any::<f64>()),
            (spans(), deltas(), doubles(), spans(), deltas(), doubles()),
            (any::<i32>(), any::<i64>(), doubles(), any::<i64>()),
        )
            .prop_map(|(a, b, c)| proto::v2::Histogram {
                count: a.0,
                zero_count: a.1,
                sum: a.2,
                schema: a.3,
                zero_threshold: a.4,
                negative_spans: b.0,
                negative_deltas: b.1,
                negative_counts: b.2,
                positive_spans: b.3,
                positive_deltas: b.4,
                positive_counts: b.5,
                reset_hint: c.0,
                timestamp: c.1,
                custom_values: c.2,
                start_timestamp: c.3,
            })
    }

    /// The debug form, so that NaNs compare equal.
    fn bits(raw: &RawHistogram) -> String {
        format!("{raw:?}")
    }

    proptest! {
        /// The reader reads what prost reads, field for field (prost
        /// writes no field at its default, -0.0 included, so the message
        /// read back is the judge, not the one written).
        #[test]
        fn reads_every_field_as_prost_does(m in message(), v2 in any::<bool>()) {
            let bytes = m.encode_to_vec();
            let judge = proto::v2::Histogram::decode(bytes.as_slice()).unwrap();
            let raw = read(&bytes, v2).unwrap();
            prop_assert_eq!(bits(&raw), bits(&raw_of(&judge, v2)));
        }
    }
}
