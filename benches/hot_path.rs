//! Micro-benchmarks of the three hot stages, each in isolation:
//! decode (bytes → model), store upsert (existing and new series), render.
//!
//! `cargo bench --bench hot_path`; throughput is per sample (decode, upsert)
//! or per series (render).
//!
//! The `shape decode` and `shape store` groups take their 500-series
//! requests from the load generator's payload shapes (bench/shapes.rs:
//! contiguous, interleaved, sharded, churn), so a change to the decoder or
//! the store shows its effect on each shape in isolation:
//! `cargo bench --bench hot_path -- shape`. `shape create` times the
//! requests of each shape's first round, which create its series.
//!
//! The `decode+apply` group runs the same 100k series through Remote-Write
//! 1.0 and 2.0 (the load generator's requests, 2.0 with metadata on every
//! series), each request decoded and applied to a store holding them.
//!
//! The `push parse` group reads one realistic 100k-series push (1,000
//! families: counters, gauges, histograms, summaries, with HELP and TYPE) in
//! the text format, checks it, and reads the same families as delimited
//! protobuf; the `push apply` group lowers it, pushes it into an empty
//! store (a group's first push) and into a store holding the group (the
//! same series pushed again, as a job does every run), and runs parse,
//! lower and store together: `cargo bench --bench hot_path -- push`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use std::hint::black_box;
use std::time::{Duration, Instant};

use promgate::config::Config;
use promgate::exposition::render;
use promgate::ingest::{self, Decoder, Encoding, Format, Protocol, Rules};
use promgate::model::WriteBatch;
use promgate::proto::{Label, Sample, TimeSeries, WriteRequest, v2};
use promgate::store::{Store, StoreLimits};

#[path = "../bench/shapes.rs"]
mod shapes;
use shapes::{Generator, Shape};

const SERIES_PER_REQUEST: usize = 500;

/// A request like the ones Prometheus sends: 500 series, 8 labels each, sorted.
fn request(first: usize, ts: i64) -> WriteRequest {
    let services = ["api-gateway", "checkout", "catalog", "search", "payments"];
    let timeseries = (first..first + SERIES_PER_REQUEST)
        .map(|i| {
            let labels = [
                (
                    "__name__",
                    "http_request_duration_seconds_bucket".to_string(),
                ),
                ("cluster", format!("us-east-1-eks-0{}-prod", i % 3)),
                (
                    "instance",
                    format!("10.0.{}.{}:8080", (i / 250) % 250, i % 250),
                ),
                ("job", "kubernetes-pods".to_string()),
                (
                    "le",
                    ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"][i % 8].to_string(),
                ),
                ("method", ["GET", "POST"][i % 2].to_string()),
                ("route", format!("/api/v1/items/{}", i / 16)),
                ("service", services[i % 5].to_string()),
            ];
            TimeSeries {
                labels: labels
                    .into_iter()
                    .map(|(n, v)| Label {
                        name: n.to_string(),
                        value: v,
                    })
                    .collect(),
                samples: vec![Sample {
                    value: i as f64 * 0.5,
                    timestamp: ts,
                }],
                ..Default::default()
            }
        })
        .collect();
    WriteRequest {
        timeseries,
        ..Default::default()
    }
}

fn snappy(req: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn rules() -> Rules {
    Config::default().decode_limits().rules(ingest::now_ms())
}

fn populated(series: usize) -> Store {
    let store = Store::new(StoreLimits {
        max_series: 10_000_000,
        max_metadata: 1000,
    });
    for first in (0..series).step_by(SERIES_PER_REQUEST) {
        let raw = request(first, 1).encode_to_vec();
        store.apply(&ingest::v1::decode(&raw, &rules()).unwrap());
    }
    store
}

fn benches(c: &mut Criterion) {
    let body = snappy(&request(0, 1));
    let limits = Config::default().decode_limits();
    let format = Format {
        protocol: Protocol::RemoteWrite1,
        encoding: Encoding::Snappy,
    };
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(SERIES_PER_REQUEST as u64));
    // The write handler's path: one decoder whose buffers live on.
    let mut decoder = Decoder::default();
    g.bench_function("snappy+protobuf+model, 500 series", |b| {
        b.iter(|| {
            decoder
                .decode(format, black_box(&body), &limits, ingest::now_ms())
                .is_ok()
        })
    });
    // The same 500 series as Remote-Write 2.0, metadata with every series.
    let body_v2 = snap::raw::Encoder::new()
        .compress_vec(
            &shapes::to_v2(
                &request(0, 1),
                v2::metadata::MetricType::Histogram,
                "Request latency.",
            )
            .encode_to_vec(),
        )
        .unwrap();
    let format_v2 = Format {
        protocol: Protocol::RemoteWrite2,
        encoding: Encoding::Snappy,
    };
    g.bench_function("remote-write 2.0: snappy+protobuf+model, 500 series", |b| {
        b.iter(|| {
            decoder
                .decode(format_v2, black_box(&body_v2), &limits, ingest::now_ms())
                .is_ok()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(SERIES_PER_REQUEST as u64));
    let store = populated(100_000);
    let raw = request(50_000, 2).encode_to_vec();
    let batch = ingest::v1::decode(&raw, &rules()).unwrap();
    g.bench_function("upsert existing, 500 of 100k series", |b| {
        b.iter(|| store.apply(black_box(&batch)))
    });
    // Every request in turn, as a sender's shard sends them: the working set
    // is the whole store, so this one shows the cache misses the one above
    // (the same 500 series every time) hides.
    let round: Vec<_> = (0..100_000)
        .step_by(SERIES_PER_REQUEST)
        .map(|first| {
            let raw = request(first, 3).encode_to_vec();
            ingest::v1::decode(&raw, &rules()).unwrap()
        })
        .collect();
    let mut next = 0;
    g.bench_function("upsert existing, each 500 of 100k series in turn", |b| {
        b.iter(|| {
            next = (next + 1) % round.len();
            store.apply(black_box(&round[next]))
        })
    });
    g.bench_function("upsert new, 500 series", |b| {
        b.iter_batched(
            || Store::new(Config::default().store_limits()),
            |fresh| {
                fresh.apply(black_box(&batch));
                fresh
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("render");
    g.throughput(Throughput::Elements(100_000));
    g.sample_size(20);
    let opts = Config::default().render_options();
    g.bench_function("100k series page", |b| {
        b.iter(|| {
            let mut page = std::io::sink();
            render(&store, &opts, &mut page).unwrap();
        })
    });
    g.bench_function("100k series protobuf page", |b| {
        b.iter(|| {
            let mut page = std::io::sink();
            promgate::exposition::render_protobuf(&store, &opts, &mut page).unwrap();
        })
    });
    g.finish();
}

/// Series of the store the shape benches update, as bench/run.py's 100k run.
const SHAPE_SERIES: usize = 100_000;
/// Churn rounds applied before the store is built afresh (each round brings
/// SHAPE_SERIES / 10 new series; the store stays near SHAPE_SERIES).
const CHURN_ROUNDS: usize = 3;

/// Round `round` of a shape, each request decoded as the write handler does.
fn decoded_round(generator: &mut Generator, round: usize) -> Vec<WriteBatch> {
    generator
        .requests(round, round, 1 + round as i64 * 15_000)
        .iter()
        .map(|req| ingest::v1::decode(&req.encode_to_vec(), &rules()).unwrap())
        .collect()
}

fn shape_store(created: &[WriteBatch]) -> Store {
    let store = Store::new(StoreLimits {
        max_series: 10_000_000,
        max_metadata: 1000,
    });
    for batch in created {
        store.apply(batch);
    }
    store
}

fn shape_benches(c: &mut Criterion) {
    let limits = Config::default().decode_limits();
    let format = Format {
        protocol: Protocol::RemoteWrite1,
        encoding: Encoding::Snappy,
    };
    let mut g = c.benchmark_group("shape decode");
    g.throughput(Throughput::Elements(SERIES_PER_REQUEST as u64));
    let mut decoder = Decoder::default();
    for shape in Shape::ALL {
        // A request from the middle of the second round (for churn, 10% of
        // its series new).
        let mut generator = Generator::new(shape, SHAPE_SERIES, SERIES_PER_REQUEST);
        let requests = generator.requests(1, 1, 15_001);
        let body = snappy(&requests[requests.len() / 2]);
        g.bench_function(
            format!("{}: snappy+protobuf+model, 500 series", shape.name()),
            |b| {
                b.iter(|| {
                    decoder
                        .decode(format, black_box(&body), &limits, ingest::now_ms())
                        .is_ok()
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("shape store");
    g.throughput(Throughput::Elements(SERIES_PER_REQUEST as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    for shape in Shape::ALL {
        // The store holds the shape's 100k series (round 0); each iteration
        // applies the next request of the following rounds, in send order,
        // as a sender's shard sends them. Churn's rounds create 10% new
        // series each; after CHURN_ROUNDS the store is built afresh (not
        // timed) so that its new series stay new.
        let mut generator = Generator::new(shape, SHAPE_SERIES, SERIES_PER_REQUEST);
        let created = decoded_round(&mut generator, 0);
        let rounds: Vec<WriteBatch> = (1..=if shape == Shape::Churn {
            CHURN_ROUNDS
        } else {
            1
        })
            .flat_map(|round| decoded_round(&mut generator, round))
            .collect();
        let mut store = shape_store(&created);
        let mut next = 0;
        g.bench_function(
            format!("{}: upsert each 500 of 100k series in turn", shape.name()),
            |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        if next == rounds.len() {
                            next = 0;
                            if shape == Shape::Churn {
                                store = shape_store(&created);
                            }
                        }
                        let t = Instant::now();
                        black_box(store.apply(black_box(&rounds[next])));
                        timed += t.elapsed();
                        next += 1;
                    }
                    timed
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("shape create");
    g.throughput(Throughput::Elements(SERIES_PER_REQUEST as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    for shape in Shape::ALL {
        // Each iteration applies the next request of the shape's first
        // round, which creates 500 series, to a store that grows to the
        // shape's 100k series; then an empty store (not timed) starts over.
        let mut generator = Generator::new(shape, SHAPE_SERIES, SERIES_PER_REQUEST);
        let created = decoded_round(&mut generator, 0);
        let mut store = shape_store(&[]);
        let mut next = 0;
        g.bench_function(
            format!("{}: create each 500 of 100k series in turn", shape.name()),
            |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        if next == created.len() {
                            next = 0;
                            store = shape_store(&[]);
                        }
                        let t = Instant::now();
                        black_box(store.apply(black_box(&created[next])));
                        timed += t.elapsed();
                        next += 1;
                    }
                    timed
                })
            },
        );
    }
    g.finish();
}

/// The snappy bodies of round `round` of the contiguous shape, as
/// rw_loadgen sends them in `protocol` (2.0: metadata with every series, as
/// Prometheus 3 sends it).
fn loadgen_round(generator: &mut Generator, round: usize, protocol: Protocol) -> Vec<Vec<u8>> {
    generator
        .requests(round, round, 1 + round as i64 * 15_000)
        .iter()
        .map(|req| match protocol {
            Protocol::RemoteWrite1 => snappy(req),
            Protocol::RemoteWrite2 => snap::raw::Encoder::new()
                .compress_vec(
                    &shapes::to_v2(
                        req,
                        v2::metadata::MetricType::Gauge,
                        "A series of the load generator.",
                    )
                    .encode_to_vec(),
                )
                .unwrap(),
        })
        .collect()
}

/// Remote-Write 1.0 against 2.0 on the same 100k series (bench/run.py's
/// contiguous shape), the write handler's work after the body is read:
/// each iteration decodes the next request of round 1 with one `Decoder`
/// and applies it to a store holding the series (round 0, written through
/// the same protocol). `cargo bench --bench hot_path -- 'decode+apply'`.
fn protocol_benches(c: &mut Criterion) {
    let limits = Config::default().decode_limits();
    let mut g = c.benchmark_group("decode+apply");
    g.throughput(Throughput::Elements(SERIES_PER_REQUEST as u64));
    g.sample_size(30);
    for (protocol, name) in [
        (Protocol::RemoteWrite1, "remote-write 1.0"),
        (Protocol::RemoteWrite2, "remote-write 2.0"),
    ] {
        let format = Format {
            protocol,
            encoding: Encoding::Snappy,
        };
        let mut generator = Generator::new(Shape::Contiguous, SHAPE_SERIES, SERIES_PER_REQUEST);
        let created = loadgen_round(&mut generator, 0, protocol);
        let bodies = loadgen_round(&mut generator, 1, protocol);
        let store = Store::new(Config::default().store_limits());
        let mut decoder = Decoder::default();
        let now = ingest::now_ms();
        for body in &created {
            store.apply(decoder.decode(format, body, &limits, now).unwrap());
        }
        let mut next = 0;
        g.bench_function(format!("{name}: each 500 of 100k series in turn"), |b| {
            b.iter(|| {
                next = (next + 1) % bodies.len();
                let batch = decoder
                    .decode(format, black_box(&bodies[next]), &limits, now)
                    .unwrap();
                black_box(store.apply(batch))
            })
        });
    }
    g.finish();
}

/// Series of the push the `push parse` benches read.
const PUSH_SERIES: usize = 100_000;

/// A push of PUSH_SERIES series in 1,000 families of 100 series each, as a
/// batch job's client library writes it: per ten families six counters, two
/// gauges, a histogram (five label sets of eighteen buckets, `_sum` and
/// `_count`) and a summary (twenty label sets of three quantiles, `_sum` and
/// `_count`); three labels on every series besides `le` and `quantile`.
fn push_body() -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let buckets = [
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
        "10", "25", "50", "100", "250", "+Inf",
    ];
    for f in 0..PUSH_SERIES / 100 {
        let labels = |i: usize| {
            format!(
                "service=\"svc-{}\",instance=\"10.0.{}.{}:9100\",path=\"/api/v1/items/{}\"",
                f % 17,
                i / 50,
                i % 50,
                i
            )
        };
        match f % 10 {
            0..=7 => {
                let (name, t) = if f % 10 < 6 {
                    (format!("batch_records_{f}_total"), "counter")
                } else {
                    (format!("batch_queue_depth_{f}"), "gauge")
                };
                writeln!(out, "# HELP {name} Records handled by stage {f}.").unwrap();
                writeln!(out, "# TYPE {name} {t}").unwrap();
                for i in 0..100 {
                    writeln!(out, "{name}{{{}}} {}", labels(i), i as f64 * 1.5).unwrap();
                }
            }
            8 => {
                let name = format!("batch_duration_seconds_{f}");
                writeln!(out, "# HELP {name} Duration of stage {f}.").unwrap();
                writeln!(out, "# TYPE {name} histogram").unwrap();
                for i in 0..5 {
                    for (k, le) in buckets.iter().enumerate() {
                        writeln!(out, "{name}_bucket{{{},le=\"{le}\"}} {}", labels(i), k * 3)
                            .unwrap();
                    }
                    writeln!(out, "{name}_sum{{{}}} 12.75", labels(i)).unwrap();
                    writeln!(out, "{name}_count{{{}}} 33", labels(i)).unwrap();
                }
            }
            _ => {
                let name = format!("batch_row_latency_seconds_{f}");
                writeln!(out, "# HELP {name} Per-row latency of stage {f}.").unwrap();
                writeln!(out, "# TYPE {name} summary").unwrap();
                for i in 0..20 {
                    for q in ["0.5", "0.9", "0.99"] {
                        writeln!(out, "{name}{{{},quantile=\"{q}\"}} 0.0{i}", labels(i)).unwrap();
                    }
                    writeln!(out, "{name}_sum{{{}}} 4.5", labels(i)).unwrap();
                    writeln!(out, "{name}_count{{{}}} 1000", labels(i)).unwrap();
                }
            }
        }
    }
    out
}

/// The families of `body` as delimited protobuf, as client_golang pushes them.
fn push_delimited(body: &str) -> Vec<u8> {
    use promgate::proto::client;
    let mut out = Vec::new();
    for f in ingest::parse_text(body.as_bytes()).unwrap() {
        let metric = f
            .samples
            .iter()
            .map(|s| client::Metric {
                label: s
                    .labels
                    .iter()
                    .map(|(n, v)| client::LabelPair {
                        name: Some(n.to_string()),
                        value: Some(v.into_owned()),
                    })
                    .collect(),
                gauge: Some(client::Gauge {
                    value: Some(s.value),
                }),
                ..Default::default()
            })
            .collect();
        client::MetricFamily {
            name: Some(f.name.into_owned()),
            help: f.help,
            r#type: Some(client::MetricType::Gauge as i32),
            metric,
            unit: None,
        }
        .encode_length_delimited(&mut out)
        .unwrap();
    }
    out
}

fn push_benches(c: &mut Criterion) {
    let body = push_body();
    let families = ingest::parse_text(body.as_bytes()).unwrap();
    let series: usize = families.iter().map(|f| f.samples.len()).sum();
    assert_eq!((families.len(), series), (PUSH_SERIES / 100, PUSH_SERIES));
    ingest::check_push(&families).unwrap();
    let mut g = c.benchmark_group("push parse");
    g.throughput(Throughput::Elements(PUSH_SERIES as u64));
    g.sample_size(20);
    g.bench_function("parse_text, 100k series in 1,000 families", |b| {
        b.iter(|| ingest::parse_text(black_box(body.as_bytes())).unwrap())
    });
    g.bench_function("check_push, 100k series in 1,000 families", |b| {
        b.iter(|| ingest::check_push(black_box(&families)).unwrap())
    });
    // The same samples as gauges, each sample a metric of its own.
    let delimited = push_delimited(&body);
    g.bench_function("parse_delimited, 100k gauges in 1,000 families", |b| {
        b.iter(|| ingest::parse_delimited(black_box(&delimited)).unwrap())
    });
    g.finish();

    // The phases after parsing, on the same push: lowering into keys,
    // then the store's push into an empty store (a group's first push:
    // every series and its ownership created) and into a store that holds
    // the group (a job pushing the same series every run: values updated
    // in place), and the three together as the push handler runs them.
    let grouping = ingest::push::Grouping::new("batch".into(), vec![]).unwrap();
    let rules = Config::default().decode_limits().rules(ingest::now_ms());
    let lowered = || ingest::push::lower(&families, &grouping, &rules, 0).unwrap();
    let limits = StoreLimits {
        max_series: 10_000_000,
        max_metadata: 100_000,
    };
    let now = std::time::SystemTime::now();
    let mut g = c.benchmark_group("push apply");
    g.throughput(Throughput::Elements(PUSH_SERIES as u64));
    g.sample_size(10);
    g.bench_function("lower, 100k series in 1,000 families", |b| {
        b.iter(|| ingest::push::lower(black_box(&families), &grouping, &rules, 0).unwrap())
    });
    g.bench_function("store push, first push of the group", |b| {
        b.iter_batched(
            || (Store::new(limits), lowered()),
            |(store, pushed)| {
                store.push(&grouping, pushed, true, now).unwrap();
                store
            },
            BatchSize::PerIteration,
        )
    });
    let store = Store::new(limits);
    store.push(&grouping, lowered(), true, now).unwrap();
    g.bench_function("store push, the same series again", |b| {
        b.iter_batched(
            lowered,
            |pushed| store.push(&grouping, pushed, true, now).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("parse, lower and store, the same series again", |b| {
        b.iter(|| {
            let families = ingest::parse_text(black_box(body.as_bytes())).unwrap();
            let pushed = ingest::push::lower(&families, &grouping, &rules, 0).unwrap();
            store.push(&grouping, pushed, true, now).unwrap()
        })
    });
    g.finish();
}

criterion_group!(
    hot_path,
    benches,
    shape_benches,
    protocol_benches,
    push_benches
);
criterion_main!(hot_path);
