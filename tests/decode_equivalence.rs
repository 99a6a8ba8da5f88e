//! The hand-written zero-copy decoder agrees with prost, the reference: the
//! same `WriteBatch` for every valid request, and the same verdict (accept or
//! refuse) for arbitrary and corrupted bytes.

use proptest::prelude::*;
use prost::Message;

use std::time::Duration;

use promgate::ingest::v1::{decode, decode_with_prost};
use promgate::ingest::{Rules, TimeRange};
use promgate::model::{RejectReason, SeriesLimits};
use promgate::proto::{
    BucketSpan, Exemplar, Histogram, Label, MetricMetadata, Sample, TimeSeries, WriteRequest,
    histogram,
};

const NAMES: &[&str] = &[
    "__name__", "job", "instance", "le", "quantile", "a", "1bad", "a:b", "é", "",
];
const VALUES: &[&str] = &[
    "",
    "up",
    "x",
    "a\"b",
    "back\\slash",
    "line\nbreak",
    "日本語",
    "+Inf",
    "0.5",
    "bad-name",
    "abc",
];

fn label() -> impl Strategy<Value = Label> {
    (prop::sample::select(NAMES), prop::sample::select(VALUES)).prop_map(|(n, v)| Label {
        name: n.to_string(),
        value: v.to_string(),
    })
}

/// An exemplar's label: any series label, or one over the 128 characters
/// an exemplar's labels may hold.
fn exemplar_label() -> impl Strategy<Value = Label> {
    prop_oneof![
        4 => label(),
        1 => Just(Label {
            name: "trace_id".into(),
            value: "é".repeat(121),
        }),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::from_bits(0x7ff0_0000_0000_0002)),
        Just(f64::INFINITY),
        Just(0.0),
    ]
}

fn series() -> impl Strategy<Value = TimeSeries> {
    (
        prop::collection::vec(label(), 0..6),
        prop::collection::vec((float(), -5i64..5_000_000_000_000), 0..4),
        // Valid when the count covers the buckets' 5 and the schema is
        // known; stamped within the time range or not.
        prop::collection::vec(
            (0u64..12, -6i32..10, float(), -5i64..5_000_000_000_000),
            0..3,
        ),
        prop::collection::vec(
            (
                prop::collection::vec(exemplar_label(), 0..4),
                float(),
                prop::sample::select(&[0i64, 7, 8][..]),
            ),
            0..3,
        ),
    )
        .prop_map(|(labels, samples, histograms, exemplars)| TimeSeries {
            labels,
            samples: samples
                .into_iter()
                .map(|(value, timestamp)| Sample { value, timestamp })
                .collect(),
            histograms: histograms
                .into_iter()
                .map(|(count, schema, sum, timestamp)| Histogram {
                    count: Some(histogram::Count::CountInt(count)),
                    sum,
                    schema,
                    positive_spans: vec![BucketSpan {
                        offset: schema,
                        length: 3,
                    }],
                    positive_deltas: vec![1, 0, 2],
                    timestamp,
                    ..Default::default()
                })
                .collect(),
            exemplars: exemplars
                .into_iter()
                .map(|(labels, value, timestamp)| Exemplar {
                    labels,
                    value,
                    timestamp,
                })
                .collect(),
        })
}

/// Label names in byte order, for label sets shaped like Prometheus' (which
/// the decoder's fast path takes): some sort before `__name__`, some are
/// invalid, one is over the tests' name-length limit.
const SORTED_NAMES: &[&str] = &[
    "A",
    "__x",
    "a",
    "a:b",
    "instance",
    "job",
    "le",
    "long_name",
    "quantile",
    "z",
    "é",
];

/// A series as Prometheus sends it: `__name__` first, then a sorted subset
/// of names, with values that are sometimes empty, escapable, not ASCII or
/// too long, and float samples only.
fn prometheus_series() -> impl Strategy<Value = TimeSeries> {
    (
        prop::sample::select(&["up", "http_requests_total", "a:b", "1bad", ""][..]),
        prop::sample::subsequence(SORTED_NAMES, 0..=SORTED_NAMES.len()),
        prop::collection::vec(prop::sample::select(VALUES), SORTED_NAMES.len()),
        prop::collection::vec((float(), 0i64..5_000_000_000_000), 0..3),
    )
        .prop_map(|(name, names, values, samples)| {
            let mut labels = vec![Label {
                name: "__name__".into(),
                value: name.into(),
            }];
            labels.extend(names.iter().zip(values).map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            }));
            TimeSeries {
                labels,
                samples: samples
                    .into_iter()
                    .map(|(value, timestamp)| Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            }
        })
}

fn request() -> impl Strategy<Value = WriteRequest> {
    (
        prop::collection::vec(series(), 0..12),
        prop::collection::vec(
            (
                prop::sample::select(VALUES),
                -1i32..9,
                prop::sample::select(VALUES),
            ),
            0..3,
        ),
    )
        .prop_map(|(timeseries, metadata)| WriteRequest {
            timeseries,
            metadata: metadata
                .into_iter()
                .map(|(name, t, help)| MetricMetadata {
                    r#type: t,
                    metric_family_name: name.to_string(),
                    help: help.to_string(),
                    unit: "seconds".into(),
                })
                .collect(),
        })
}

/// Small limits, so that the generated requests hit them; a clock that puts
/// the generated timestamps (-5 ms to 5e12 ms) on both sides of the range.
fn rules() -> Rules {
    Rules {
        series: SeriesLimits {
            max_labels: 5,
            max_name_len: 8,
            max_value_len: 10,
            max_help_len: 9,
            max_histogram_buckets: 320,
        },
        timestamps: TimeRange::new(1_700_000_000_000, Some(Duration::from_secs(600))),
    }
}

/// Both decoders' results, comparable (f64 NaNs compare by their Debug text).
fn both(bytes: &[u8]) -> (Result<String, String>, Result<String, String>) {
    compare(bytes, decode, decode_with_prost)
}

/// A decoder of one protocol: the fast one or its prost reference.
type DecodeFn = fn(&[u8], &Rules) -> Result<promgate::model::WriteBatch, promgate::ingest::Error>;

/// What `fast` and `reference` make of `bytes`, comparable.
fn compare(
    bytes: &[u8],
    fast: DecodeFn,
    reference: DecodeFn,
) -> (Result<String, String>, Result<String, String>) {
    let run = |decode: DecodeFn| {
        decode(bytes, &rules())
            .map(|b| format!("{b:?}"))
            .map_err(|e| e.to_string())
    };
    (run(fast), run(reference))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn same_batch_for_valid_requests(req in request()) {
        let (fast, reference) = both(&req.encode_to_vec());
        prop_assert!(reference.is_ok());
        prop_assert_eq!(fast, reference);
    }

    #[test]
    fn same_batch_for_prometheus_shaped_requests(timeseries in prop::collection::vec(prometheus_series(), 0..12)) {
        let req = WriteRequest { timeseries, ..Default::default() };
        let (fast, reference) = both(&req.encode_to_vec());
        prop_assert!(reference.is_ok());
        prop_assert_eq!(fast, reference);
    }

    #[test]
    fn same_verdict_for_corrupted_requests(req in request(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let mut bytes = req.encode_to_vec();
        if bytes.is_empty() {
            return Ok(());
        }
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let (fast, reference) = both(&bytes);
        prop_assert_eq!(fast.is_ok(), reference.is_ok(), "fast {:?} reference {:?}", fast, reference);
        if let (Ok(f), Ok(r)) = (fast, reference) {
            prop_assert_eq!(f, r);
        }
    }

    #[test]
    fn same_verdict_for_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (fast, reference) = both(&bytes);
        prop_assert_eq!(fast.is_ok(), reference.is_ok(), "fast {:?} reference {:?}", fast, reference);
        if let (Ok(f), Ok(r)) = (fast, reference) {
            prop_assert_eq!(f, r);
        }
    }
}

/// A `WriteRequest` of one series whose labels are the given `Label` message
/// bodies, written by hand, and one sample.
fn one_series(labels: &[&[u8]]) -> Vec<u8> {
    let mut series = Vec::new();
    for l in labels {
        series.push(0x0a);
        series.push(l.len() as u8);
        series.extend_from_slice(l);
    }
    // Sample { value: 1.0, timestamp: 5 }
    series.extend_from_slice(&[0x12, 11, 0x09]);
    series.extend_from_slice(&1.0f64.to_le_bytes());
    series.extend_from_slice(&[0x10, 0x05]);
    let mut req = vec![0x0a, series.len() as u8];
    req.extend_from_slice(&series);
    req
}

#[test]
fn same_batch_for_label_encodings_off_the_common_layout() {
    let name: &[u8] = b"\x0a\x08__name__\x12\x02up";
    let cases: [(&str, &[u8]); 6] = [
        ("common layout", b"\x0a\x03job\x12\x01x"),
        ("length as a two-byte varint", b"\x0a\x03job\x12\x81\x00x"),
        ("value before name", b"\x12\x01x\x0a\x03job"),
        ("name repeated, last wins", b"\x0a\x01a\x0a\x03job\x12\x01x"),
        ("empty value omitted", b"\x0a\x03job"),
        (
            "unknown field after the value",
            b"\x0a\x03job\x12\x01x\x18\x01",
        ),
    ];
    for (what, label) in cases {
        let (fast, reference) = both(&one_series(&[name, label]));
        assert!(reference.is_ok(), "{what}: {reference:?}");
        assert_eq!(fast, reference, "{what}");
    }
    // A label that is not UTF-8 rejects its series, not the request, in
    // both decoders, on the common layout and off it.
    for label in [&b"\x0a\x01\xff\x12\x01x"[..], b"\x12\x01\xff\x0a\x01x"] {
        let mut req = one_series(&[name, label]);
        req.extend_from_slice(&one_series(&[name]));
        let (fast, reference) = both(&req);
        assert!(fast.is_ok(), "{fast:?}");
        assert_eq!(fast, reference);
        let batch = decode(&req, &rules()).unwrap();
        assert_eq!(batch.series.len(), 1, "the good series is kept");
        let first = batch.rejected.first.clone().unwrap();
        assert_eq!(first.reason, RejectReason::InvalidUtf8);
        assert_eq!(batch.rejected.samples_total(), 1);
    }
}

mod v2 {
    //! The same for Remote-Write 2.0: the zero-copy decoder of
    //! `io.prometheus.write.v2.Request` against prost.

    use super::*;
    use promgate::ingest::v2::{decode, decode_with_prost};
    use promgate::proto::v2::lenient::{
        Exemplar, Histogram, Metadata, Request, Sample, TimeSeries, histogram,
    };

    /// Symbols: names and values, the empty string, one that is not UTF-8.
    const SYMBOLS: &[&[u8]] = &[
        b"",
        b"__name__",
        b"up",
        b"job",
        b"x",
        b"le",
        b"+Inf",
        b"quantile",
        b"0.5",
        b"instance",
        b"a:1",
        b"1bad",
        b"a\"b",
        b"\xff\xfe",
        b"help text",
        b"seconds",
        b"__tmp",
        // With `__name__`, `job` or `le` as its name: over the 128
        // characters an exemplar's labels may hold.
        b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ];

    fn refs(max: u32) -> impl Strategy<Value = Vec<u32>> {
        prop_oneof![
            // Pairs in range, mostly.
            prop::collection::vec((1u32..max, 1u32..max), 0..5)
                .prop_map(|pairs| pairs.into_iter().flat_map(|(a, b)| [a, b]).collect()),
            // Anything: odd lengths, out of range.
            prop::collection::vec(0u32..max + 3, 0..6),
        ]
    }

    fn series(max: u32) -> impl Strategy<Value = TimeSeries> {
        (
            refs(max),
            prop::collection::vec((float(), -5i64..5_000_000_000_000, any::<i64>()), 0..3),
            prop::collection::vec(
                (
                    any::<u64>(),
                    -4i32..9,
                    any::<i64>(),
                    -5i64..5_000_000_000_000,
                ),
                0..2,
            ),
            prop::collection::vec(
                (refs(max), float(), prop::sample::select(&[0i64, 7, 8][..])),
                0..3,
            ),
            prop::option::of((0i32..9, 0u32..max + 1, 0u32..max + 1)),
            any::<i64>(),
        )
            .prop_map(
                |(labels_refs, samples, histograms, exemplars, md, created)| TimeSeries {
                    labels_refs,
                    samples: samples
                        .into_iter()
                        .map(|(value, timestamp, start_timestamp)| Sample {
                            value,
                            timestamp,
                            start_timestamp,
                        })
                        .collect(),
                    histograms: histograms
                        .into_iter()
                        .map(|(count, schema, start_timestamp, timestamp)| Histogram {
                            count: Some(histogram::Count::CountInt(count)),
                            schema,
                            custom_values: vec![0.5, 1.0],
                            start_timestamp,
                            timestamp,
                            ..Default::default()
                        })
                        .collect(),
                    exemplars: exemplars
                        .into_iter()
                        .map(|(labels_refs, value, timestamp)| Exemplar {
                            labels_refs,
                            value,
                            timestamp,
                        })
                        .collect(),
                    metadata: md.map(|(t, help_ref, unit_ref)| Metadata {
                        r#type: t,
                        help_ref,
                        unit_ref,
                    }),
                    created_timestamp: created,
                },
            )
    }

    fn request() -> impl Strategy<Value = Request> {
        (
            prop::sample::subsequence(&SYMBOLS[1..], 0..SYMBOLS.len() - 1),
            any::<bool>(),
        )
            .prop_flat_map(|(rest, empty_first)| {
                let mut symbols: Vec<Vec<u8>> = Vec::new();
                if empty_first {
                    symbols.push(Vec::new());
                }
                symbols.extend(rest.iter().map(|s| s.to_vec()));
                let max = symbols.len().max(2) as u32;
                (Just(symbols), prop::collection::vec(series(max), 0..8))
            })
            .prop_map(|(symbols, timeseries)| Request {
                symbols,
                timeseries,
            })
    }

    fn both(bytes: &[u8]) -> (Result<String, String>, Result<String, String>) {
        compare(bytes, decode, decode_with_prost)
    }

    /// A varint as protobuf writes it.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A length-delimited field.
    fn field(tag: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    /// A request of `symbols` and one series whose `labels_refs` field (or
    /// fields) are `refs` as written, with one sample in the time range.
    fn with_refs(symbols: &[String], refs: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for s in symbols {
            field(0x22, s.as_bytes(), &mut out);
        }
        let mut sample = vec![0x09];
        sample.extend_from_slice(&1.5f64.to_le_bytes());
        sample.push(0x10);
        varint(1_700_000_000_000, &mut sample);
        let mut series = refs.to_vec();
        field(0x12, &sample, &mut series);
        field(0x2a, &series, &mut out);
        out
    }

    /// References packed in one field.
    fn packed(refs: &[u64]) -> Vec<u8> {
        let mut list = Vec::new();
        for &r in refs {
            varint(r, &mut list);
        }
        let mut out = Vec::new();
        field(0x0a, &list, &mut out);
        out
    }

    /// References unpacked, a field each.
    fn unpacked(refs: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        for &r in refs {
            out.push(0x08);
            varint(r, &mut out);
        }
        out
    }

    /// `labels_refs` however a sender writes it (packed in one field, split
    /// over several, unpacked, mixed; references of one, two and three
    /// bytes): the fast path, which reads one packed field straight from
    /// the body, and prost, which merges them all, make the same batch.
    #[test]
    fn same_batch_for_every_encoding_of_labels_refs() {
        // 20,000 symbols, so that references past 16,383 take three bytes.
        let mut symbols = vec![String::new(), "__name__".into(), "up".into()];
        symbols.extend((3..20_000).map(|i| format!("n{i}")));
        let cases: [(&str, Vec<u8>); 7] = [
            ("one packed field", packed(&[1, 2, 3, 4])),
            (
                "two packed fields",
                [packed(&[1, 2]), packed(&[3, 4])].concat(),
            ),
            ("unpacked", unpacked(&[1, 2, 3, 4])),
            (
                "packed, then unpacked",
                [packed(&[1, 2]), unpacked(&[3, 4])].concat(),
            ),
            (
                "unpacked, then packed",
                [unpacked(&[1, 2]), packed(&[3, 4])].concat(),
            ),
            ("two-byte references", packed(&[1, 2, 300, 16_383])),
            ("three-byte references", packed(&[1, 2, 16_384, 19_999])),
        ];
        for (what, refs) in cases {
            let (fast, reference) = both(&with_refs(&symbols, &refs));
            assert_eq!(fast, reference, "{what}");
            let batch = fast.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                batch.contains("keys: \"up{n")
                    && batch.contains("rejected: Rejections { series: []"),
                "{what}: {batch}"
            );
        }
        // A list cut inside a varint, a varint past 32 bits (prost truncates
        // it), and one over ten bytes: the same verdict, and the same batch
        // where both take it.
        let mut cut = packed(&[1, 2, 3]);
        cut.push(0x0a);
        cut.push(1);
        cut.push(0x80);
        let wide = packed(&[1, 2, 3, (1 << 32) | 4]);
        let mut long = vec![0x0a, 11, 1, 2];
        long.extend_from_slice(&[0xff; 9]);
        for (what, refs, valid) in [
            ("cut", cut, false),
            ("wide", wide, true),
            ("long", long, false),
        ] {
            let (fast, reference) = both(&with_refs(&symbols, &refs));
            assert_eq!(fast.is_ok(), valid, "{what}: {fast:?}");
            assert_eq!(reference.is_ok(), valid, "{what}: {reference:?}");
            if valid {
                assert_eq!(fast, reference, "{what}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn same_batch_for_valid_requests(req in request()) {
            let (fast, reference) = both(&req.encode_to_vec());
            prop_assert_eq!(fast, reference);
        }

        #[test]
        fn same_verdict_for_corrupted_requests(req in request(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
            let mut bytes = req.encode_to_vec();
            if bytes.is_empty() {
                return Ok(());
            }
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let (fast, reference) = both(&bytes);
            prop_assert_eq!(fast.is_ok(), reference.is_ok(), "fast {:?} reference {:?}", fast, reference);
            if let (Ok(f), Ok(r)) = (fast, reference) {
                prop_assert_eq!(f, r);
            }
        }

        #[test]
        fn same_verdict_for_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let (fast, reference) = both(&bytes);
            prop_assert_eq!(fast.is_ok(), reference.is_ok(), "fast {:?} reference {:?}", fast, reference);
            if let (Ok(f), Ok(r)) = (fast, reference) {
                prop_assert_eq!(f, r);
            }
        }
    }
}

/// Pushed text: the keys `lower` writes (values copied as the body escapes
/// them, the label order planned once per run of samples with the same
/// label names) are `build_pushed_key`'s for the same labels unescaped and
/// the grouping labels, and a push over a limit is refused for the same
/// reason; label sets written with blanks and a trailing comma too.
mod pushed {
    use super::*;
    use promgate::ingest::push::{Grouping, check_push_grouped, lower, parse_text};
    use promgate::model::build_pushed_key;

    const PUSH_NAMES: &[&str] = &["a", "b", "instance", "job", "zone", "le", "x"];
    const PUSH_VALUES: &[&str] = &[
        "",
        "v",
        "a\"b",
        "back\\slash",
        "line\nbreak",
        "日本語",
        "0.5",
        "longer than ten",
    ];

    fn escaped(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    type Labels = Vec<(&'static str, &'static str)>;

    fn labels() -> impl Strategy<Value = Labels> {
        prop::collection::vec(
            (
                prop::sample::select(PUSH_NAMES),
                prop::sample::select(PUSH_VALUES),
            ),
            0..6,
        )
        .prop_map(|mut l| {
            let mut seen = Vec::new();
            l.retain(|(n, _)| {
                let new = !seen.contains(n);
                seen.push(*n);
                new
            });
            l
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn lowered_keys_are_the_general_writers(
            samples in prop::collection::vec(labels(), 1..8),
            grouping in prop::collection::vec(
                (prop::sample::select(&["instance", "zone", "x"][..]), prop::sample::select(&["g", "a\"b", "日本"][..])),
                0..3,
            ),
            blanks in any::<bool>(),
            small in any::<bool>(),
        ) {
            let mut body = String::new();
            for labels in &samples {
                body.push('m');
                if !labels.is_empty() || blanks {
                    body.push('{');
                    for (n, v) in labels {
                        if blanks {
                            body.push_str(&format!(" {n} = \"{}\" ,", escaped(v)));
                        } else {
                            body.push_str(&format!("{n}=\"{}\",", escaped(v)));
                        }
                    }
                    if !blanks && !labels.is_empty() {
                        body.pop();
                    }
                    body.push('}');
                }
                body.push_str(" 1\n");
            }
            let families = parse_text(body.as_bytes()).unwrap();
            let grouping = Grouping::new(
                "j".into(),
                grouping.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            )
            .unwrap();
            let names: Vec<&str> = grouping.labels().iter().map(|(n, _)| n.as_str()).collect();
            if check_push_grouped(&families, &names).is_err() {
                return Ok(());
            }
            let rules = if small {
                rules()
            } else {
                promgate::ingest::Limits {
                    max_decoded_bytes: 1 << 20,
                    series: promgate::config::Config::default().series_limits(),
                    future_window: None,
                }
                .rules(0)
            };
            let mut expected = promgate::model::WriteBatch::default();
            let mut keys = Ok(Vec::new());
            for labels in &samples {
                let all = std::iter::once(("__name__", "m"))
                    .chain(labels.iter().copied().filter(|(n, _)| !names.contains(n)))
                    .chain(grouping.labels().iter().map(|(n, v)| (n.as_str(), v.as_str())));
                match build_pushed_key(all, &rules.series, &mut Vec::new(), &mut expected.keys) {
                    Ok(span) => {
                        if let Ok(k) = &mut keys {
                            k.push((expected.keys[span.start as usize..][..span.len as usize].to_string(), span.traits));
                        }
                    }
                    Err(r) => {
                        keys = Err(r.to_string());
                        break;
                    }
                }
            }
            let lowered = lower(&families, &grouping, &rules, 0).map(|p| {
                p.batch
                    .series
                    .iter()
                    .map(|u| (p.batch.key(u).to_string(), u.key.traits))
                    .collect::<Vec<_>>()
            });
            match (lowered, keys) {
                (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs),
                (Err(e), Err(r)) => prop_assert!(e.to_string().contains(&r), "{} vs {}", e, r),
                (ours, theirs) => prop_assert!(false, "lower {:?}, general {:?}", ours, theirs),
            }
        }
    }
}
