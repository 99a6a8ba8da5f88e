//! Writes the seed corpora of the `write_v1`, `write_v2`,
//! `push_delimited` and `push_body` fuzz targets (`fuzz/seeds/<target>/`)
//! from realistic payloads. Remote write: the request captured
//! from Prometheus 2.42 (`tests/fixtures/`), cut into small requests, and a
//! few hand-made ones with what senders rarely send but may (escapes and
//! UTF-8 in values and HELP, NaN, ±Inf, stale markers, histogram and
//! summary families, invalid series, native histograms, exemplars,
//! timestamps out of range). Each 2.0 seed is the same request as a 1.0
//! one, its strings moved into a symbols table.
//!
//! Pushes: one delimited `MetricFamily` body of every type, with awkward
//! labels and HELP, as client libraries push them; for `push_body` those
//! and text bodies (the Python client's push in `tests/fixtures/push/` and
//! a hand-made one), plain and compressed.
//!
//! An input of the remote-write targets is a mode byte, then the payload
//! (`fuzz/fuzz_targets/write.rs`): seeds come in every mode, mostly as
//! messages the target compresses (3, 4) so that the fuzzer starts from
//! bodies that decode.
//!
//! ```sh
//! cargo run --example fuzz_seeds -- fuzz/seeds
//! ```

use std::collections::HashMap;
use std::path::Path;

use promgate::proto::{
    self, BucketSpan, Exemplar, Histogram, Label, MetricMetadata, Sample, TimeSeries, WriteRequest,
    histogram, v2,
};
use prost::Message;

/// The fuzz targets' clock (`NOW_MS` in `fuzz/fuzz_targets/write.rs`):
/// seeds are stamped just before it, so that their samples are accepted.
const NOW_MS: i64 = 1_700_000_000_000;

/// Series per request cut from the captured one: small seeds mutate fast.
const SERIES_PER_SEED: usize = 6;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: fuzz_seeds <directory>, e.g. fuzz/seeds");
    let dir = Path::new(&dir);
    let mut requests = captured();
    requests.extend(hand_made());
    for target in ["write_v1", "write_v2", "push_delimited", "push_body"] {
        std::fs::create_dir_all(dir.join(target)).expect("seed directory");
    }
    let mut written = 0;
    for (i, (name, req)) in requests.iter().enumerate() {
        let v1 = req.encode_to_vec();
        let v2 = to_v2(req).encode_to_vec();
        // Every request as a message the target compresses; every third
        // also as a real snappy or zstd body and as identity.
        for (target, payload) in [("write_v1", &v1), ("write_v2", &v2)] {
            let mut modes = vec![3 + (i % 2) as u8];
            if i % 3 == 0 {
                modes.extend([0, 1, 2]);
            }
            for mode in modes {
                let body = match mode {
                    0 => snap::raw::Encoder::new().compress_vec(payload).unwrap(),
                    1 => zstd::bulk::compress(payload, 1).unwrap(),
                    _ => payload.clone(),
                };
                let mut seed = vec![mode];
                seed.extend_from_slice(&body);
                let path = dir.join(target).join(format!("{name}-mode{mode}"));
                std::fs::write(&path, seed).expect("seed written");
                written += 1;
            }
        }
    }
    let mut bodies = Vec::new();
    for (name, body) in pushes() {
        std::fs::write(dir.join("push_delimited").join(name), &body).expect("seed written");
        bodies.push((name, true, body));
        written += 1;
    }
    bodies.push((
        "python-client",
        false,
        include_bytes!("../tests/fixtures/push/python_client.txt").to_vec(),
    ));
    bodies.push(("awkward-text", false, AWKWARD_PUSH.as_bytes().to_vec()));
    // `push_body`'s mode byte: bit 0 the parser (1 delimited), then what
    // the payload is: 0 identity, 1 gzip, 2 framed snappy as sent, 3 and
    // 4 the same compressed by the target.
    for (i, (name, delimited, body)) in bodies.iter().enumerate() {
        let parser = u8::from(*delimited);
        let as_sent = [(0, body.clone()), (1, gzip(body)), (2, framed_snappy(body))];
        for (what, payload) in [as_sent[i % 3].clone(), (3 + (i % 2) as u8, body.clone())] {
            let mut seed = vec![(what << 1) | parser];
            seed.extend_from_slice(&payload);
            let path = dir
                .join("push_body")
                .join(format!("{name}-mode{}", seed[0]));
            std::fs::write(path, seed).expect("seed written");
            written += 1;
        }
    }
    println!("{written} seeds in {}", dir.display());
}

/// A text push with what a page must escape, and a histogram.
const AWKWARD_PUSH: &str = "# HELP job_duration_seconds Took \\\\ long\\nreally.
# TYPE job_duration_seconds gauge
job_duration_seconds{stage=\"a\\\"b\\\\c\\nd\",city=\"Hà Nội 🚀\"} 3.14
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le=\"0.5\"} 1
rpc_seconds_bucket{le=\"+Inf\"} 2
rpc_seconds_sum 0.7
rpc_seconds_count 2
batch_last_success NaN
";

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, body).expect("gzip compresses");
    gz.finish().expect("gzip compresses")
}

fn framed_snappy(body: &[u8]) -> Vec<u8> {
    let mut sz = snap::write::FrameEncoder::new(Vec::new());
    std::io::Write::write_all(&mut sz, body).expect("snappy compresses");
    sz.into_inner().expect("snappy compresses")
}

/// Delimited `MetricFamily` bodies, as client libraries push them.
fn pushes() -> Vec<(&'static str, Vec<u8>)> {
    use proto::client::{
        Bucket, Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary,
        Untyped,
    };
    let label = |n: &str, v: &str| LabelPair {
        name: Some(n.into()),
        value: Some(v.into()),
    };
    let family = |name: &str, help: &str, t: MetricType, metric: Vec<Metric>| MetricFamily {
        name: Some(name.into()),
        help: Some(help.into()),
        r#type: Some(t as i32),
        metric,
        ..Default::default()
    };
    let gauge = family(
        "queue_depth",
        "Items \\ waiting\nin \"queue\".",
        MetricType::Gauge,
        vec![
            Metric {
                label: vec![label("queue", "a\"b\\c\nd"), label("city", "Hà Nội 🚀")],
                gauge: Some(Gauge { value: Some(3.5) }),
                ..Default::default()
            },
            Metric {
                label: vec![label("queue", "nan")],
                gauge: Some(Gauge {
                    value: Some(f64::NAN),
                }),
                ..Default::default()
            },
        ],
    );
    let counter = family(
        "jobs_total",
        "Jobs run.",
        MetricType::Counter,
        vec![Metric {
            counter: Some(Counter {
                value: Some(1e21),
                ..Default::default()
            }),
            ..Default::default()
        }],
    );
    let histogram = family(
        "batch_seconds",
        "Batch duration.",
        MetricType::Histogram,
        vec![Metric {
            histogram: Some(proto::client::Histogram {
                sample_count: Some(4),
                sample_sum: Some(2.5),
                bucket: [(0.5, 1), (1.0, 3), (f64::INFINITY, 4)]
                    .into_iter()
                    .map(|(le, n)| Bucket {
                        upper_bound: Some(le),
                        cumulative_count: Some(n),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
    );
    let summary = family(
        "rpc_seconds",
        "",
        MetricType::Summary,
        vec![Metric {
            summary: Some(Summary {
                sample_count: Some(9),
                sample_sum: Some(0.75),
                quantile: [(0.5, 0.01), (0.99, f64::INFINITY)]
                    .into_iter()
                    .map(|(q, v)| Quantile {
                        quantile: Some(q),
                        value: Some(v),
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
    );
    let untyped = family(
        "last_run_timestamp",
        "  leading blanks",
        MetricType::Untyped,
        vec![Metric {
            label: vec![label("instance", "")],
            untyped: Some(Untyped { value: Some(-0.0) }),
            timestamp_ms: Some(1_700_000_000_000),
            ..Default::default()
        }],
    );
    // Native histograms as client_golang pushes them: integer (zero and
    // negative buckets), float, and with classic buckets beside; a gauge
    // histogram.
    let span = |offset: i32, length: u32| proto::client::BucketSpan {
        offset: Some(offset),
        length: Some(length),
    };
    let native = proto::client::Histogram {
        sample_count: Some(9),
        sample_sum: Some(1.5),
        schema: Some(3),
        zero_threshold: Some(2.938735877055719e-39),
        zero_count: Some(1),
        negative_span: vec![span(-2, 1)],
        negative_delta: vec![2],
        positive_span: vec![span(0, 2), span(1, 1)],
        positive_delta: vec![3, -2, 1],
        ..Default::default()
    };
    let histogram_metric = |h: proto::client::Histogram, labels: Vec<LabelPair>| Metric {
        label: labels,
        histogram: Some(h),
        ..Default::default()
    };
    let natives = family(
        "request_seconds",
        "Request latency.",
        MetricType::Histogram,
        vec![
            histogram_metric(native.clone(), vec![label("path", "/a")]),
            histogram_metric(
                proto::client::Histogram {
                    sample_count: None,
                    sample_count_float: Some(2.5),
                    zero_count: None,
                    zero_count_float: Some(0.5),
                    negative_span: vec![],
                    negative_delta: vec![],
                    positive_span: vec![span(1, 1)],
                    positive_delta: vec![],
                    positive_count: vec![2.0],
                    ..native.clone()
                },
                vec![label("path", "/b")],
            ),
            histogram_metric(
                proto::client::Histogram {
                    bucket: vec![Bucket {
                        upper_bound: Some(1.0),
                        cumulative_count: Some(6),
                        ..Default::default()
                    }],
                    ..native.clone()
                },
                vec![label("path", "/c")],
            ),
        ],
    );
    let gauge_histogram = family(
        "queue_bytes",
        "Queued sizes.",
        MetricType::GaugeHistogram,
        vec![histogram_metric(native, vec![])],
    );
    let delimited = |families: &[&MetricFamily]| {
        let mut out = Vec::new();
        for f in families {
            f.encode_length_delimited(&mut out).expect("a Vec takes it");
        }
        out
    };
    vec![
        ("gauge", delimited(&[&gauge])),
        ("counter-histogram", delimited(&[&counter, &histogram])),
        ("summary-untyped", delimited(&[&summary, &untyped])),
        (
            "all",
            delimited(&[&gauge, &counter, &histogram, &summary, &untyped]),
        ),
        ("native", delimited(&[&natives, &gauge_histogram])),
    ]
}

/// The request captured from Prometheus 2.42, cut into requests of a few
/// series each (the first with its metadata), restamped before `NOW_MS`.
fn captured() -> Vec<(String, WriteRequest)> {
    let body = include_bytes!("../tests/fixtures/prometheus-2.42-self-scrape.snappy");
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("the fixture is snappy");
    let req = WriteRequest::decode(raw.as_slice()).expect("the fixture is a WriteRequest");
    let newest = req
        .timeseries
        .iter()
        .flat_map(|t| &t.samples)
        .map(|s| s.timestamp)
        .max()
        .unwrap_or(NOW_MS);
    let mut out = Vec::new();
    for (i, chunk) in req
        .timeseries
        .chunks(SERIES_PER_SEED)
        .step_by(4)
        .take(6)
        .enumerate()
    {
        let mut timeseries = chunk.to_vec();
        for s in timeseries.iter_mut().flat_map(|t| &mut t.samples) {
            s.timestamp = NOW_MS - 1000 - (newest - s.timestamp);
        }
        // The metadata of these series' families only.
        let metadata = req
            .metadata
            .iter()
            .filter(|m| {
                timeseries.iter().any(|t| {
                    t.labels
                        .iter()
                        .any(|l| l.name == "__name__" && l.value.starts_with(&m.metric_family_name))
                })
            })
            .cloned()
            .collect();
        out.push((
            format!("capture-{i:02}"),
            WriteRequest {
                timeseries,
                metadata,
            },
        ));
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

fn series(pairs: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
    TimeSeries {
        labels: labels(pairs),
        samples: samples
            .iter()
            .map(|&(value, timestamp)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

fn metadata(name: &str, t: proto::metric_metadata::MetricType, help: &str) -> MetricMetadata {
    MetricMetadata {
        r#type: t as i32,
        metric_family_name: name.into(),
        help: help.into(),
        unit: String::new(),
    }
}

/// Requests shaped after what the tests call hostile input.
fn hand_made() -> Vec<(String, WriteRequest)> {
    use proto::metric_metadata::MetricType as T;
    let t = NOW_MS - 5000;
    let stale = f64::from_bits(promgate::model::STALE_NAN_BITS);
    let awkward = WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "awkward_values"),
                    ("path", "/a\"b\\c\nd"),
                    ("city", "Hà Nội 東京 🚀"),
                    ("empty", ""),
                ],
                &[(f64::NAN, t), (f64::INFINITY, t + 1)],
            ),
            series(
                &[("__name__", "awkward_values"), ("path", "}, =\t#")],
                &[(f64::NEG_INFINITY, t), (-0.0, t), (5e-324, t)],
            ),
            series(
                &[("__name__", "gone"), ("job", "x")],
                &[(1.0, t), (stale, t + 10)],
            ),
            series(&[("__name__", "up"), ("job", "x")], &[(1.0, t), (0.0, t)]),
        ],
        metadata: vec![
            metadata(
                "awkward_values",
                T::Gauge,
                "a \\ backslash\nand \"quotes\" ✓",
            ),
            metadata("up", T::Gauge, "  leading blanks"),
        ],
    };
    let families = WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "rpc_seconds_bucket"), ("le", "0.5")],
                &[(3.0, t)],
            ),
            series(
                &[("__name__", "rpc_seconds_bucket"), ("le", "+Inf")],
                &[(4.0, t)],
            ),
            series(&[("__name__", "rpc_seconds_sum")], &[(1.25, t)]),
            series(&[("__name__", "rpc_seconds_count")], &[(4.0, t)]),
            series(
                &[("__name__", "gc_seconds"), ("quantile", "0.99")],
                &[(0.002, t)],
            ),
            series(&[("__name__", "gc_seconds_count")], &[(17.0, t)]),
            series(&[("__name__", "requests_total")], &[(1e21, t)]),
            series(&[("__name__", "rpc_seconds")], &[(9.0, t)]),
        ],
        metadata: vec![
            metadata("rpc_seconds", T::Histogram, "RPC latency."),
            metadata("gc_seconds", T::Summary, "GC pauses."),
            metadata("requests", T::Counter, "Requests."),
        ],
    };
    let invalid = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "1bad")], &[(1.0, t)]),
            series(&[("job", "no_name")], &[(1.0, t)]),
            series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(1.0, t)]),
            series(&[("__name__", "reserved"), ("__tmp", "x")], &[(1.0, t)]),
            series(&[("__name__", "old")], &[(1.0, 0), (2.0, -5)]),
            series(&[("__name__", "future")], &[(1.0, NOW_MS + 3_600_000)]),
            series(&[("__name__", "empty_series")], &[]),
            TimeSeries {
                labels: labels(&[("__name__", "native")]),
                samples: vec![Sample {
                    value: 2.0,
                    timestamp: t,
                }],
                histograms: vec![Histogram {
                    count: Some(histogram::Count::CountInt(3)),
                    sum: 1.5,
                    schema: 3,
                    positive_spans: vec![BucketSpan {
                        offset: 0,
                        length: 2,
                    }],
                    positive_deltas: vec![1, 1],
                    timestamp: t,
                    ..Default::default()
                }],
                exemplars: vec![Exemplar {
                    labels: labels(&[("trace_id", "abc")]),
                    value: 0.3,
                    timestamp: t,
                }],
            },
            series(&[("__name__", "kept"), ("job", "x")], &[(7.0, t)]),
        ],
        metadata: vec![metadata("bad-family", T::Counter, "x")],
    };
    vec![
        ("awkward".into(), awkward),
        ("families".into(), families),
        ("invalid".into(), invalid),
    ]
}

/// The same request in Remote-Write 2.0: strings in a symbols table
/// (`""` first), each series with its family's metadata, exemplars and
/// histograms carried over.
fn to_v2(req: &WriteRequest) -> v2::Request {
    let mut table = Symbols::default();
    table.get("");
    let metadata: HashMap<&str, &MetricMetadata> = req
        .metadata
        .iter()
        .map(|m| (m.metric_family_name.as_str(), m))
        .collect();
    let timeseries = req
        .timeseries
        .iter()
        .map(|t| {
            let labels_refs = t
                .labels
                .iter()
                .flat_map(|l| [table.get(&l.name), table.get(&l.value)])
                .collect();
            let name = t
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .map_or("", |l| l.value.as_str());
            let family = ["_bucket", "_count", "_sum", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|n| metadata.contains_key(n)))
                .unwrap_or(name);
            let md = metadata.get(family).map(|m| v2::Metadata {
                r#type: m.r#type,
                help_ref: table.get(&m.help),
                unit_ref: table.get(&m.unit),
            });
            v2::TimeSeries {
                labels_refs,
                samples: t
                    .samples
                    .iter()
                    .map(|s| v2::Sample {
                        value: s.value,
                        timestamp: s.timestamp,
                        start_timestamp: 0,
                    })
                    .collect(),
                histograms: t
                    .histograms
                    .iter()
                    .map(|h| v2::Histogram {
                        count: Some(v2::histogram::Count::CountInt(3)),
                        sum: h.sum,
                        schema: h.schema,
                        positive_spans: vec![v2::BucketSpan {
                            offset: 0,
                            length: 2,
                        }],
                        positive_deltas: h.positive_deltas.clone(),
                        timestamp: h.timestamp,
                        ..Default::default()
                    })
                    .collect(),
                exemplars: t
                    .exemplars
                    .iter()
                    .map(|e| v2::Exemplar {
                        labels_refs: e
                            .labels
                            .iter()
                            .flat_map(|l| [table.get(&l.name), table.get(&l.value)])
                            .collect(),
                        value: e.value,
                        timestamp: e.timestamp,
                    })
                    .collect(),
                metadata: md,
                created_timestamp: 0,
            }
        })
        .collect();
    v2::Request {
        symbols: table.list,
        timeseries,
    }
}

/// A symbols table being built: each string once, in order of first use.
#[derive(Default)]
struct Symbols {
    list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Symbols {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}
