//! Remote-write load generator and discarding sink for bench/run.py.
//!
//!   rw_loadgen send --url URL --series N [--per-request 500] [--connections 4] [--rounds 3] [--protocol 1|2]
//!                   [--base-ms MS]
//!   rw_loadgen sink --listen 127.0.0.1:PORT
//!
//! `send` builds every payload before the clock starts: N distinct series
//! shaped like the mock exporter's families (HTTP, node, app; 6-10 labels,
//! sorted by name as Prometheus sends them), snappy RW 1.0, `--per-request`
//! series each, a family's series together within a request as in a
//! Prometheus shard's batches. Round r carries timestamp
//! base + r×15s for every series, so each sample is new and in order, as from
//! a Prometheus shard; rounds are sent in order over `--connections`
//! keep-alive connections. It prints one JSON line: samples, seconds,
//! samples/s, p50/p99 request latency, non-2xx answers.
//!
//! `sink` answers every POST with 204 after reading the body, without
//! decoding: the HTTP ceiling of the machine, and the discard target of vmagent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promgate::proto::{Label, Sample, TimeSeries, WriteRequest, v2};
use prost::Message;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// The label set of series `i`: one of three families, 6 to 10 labels.
fn labels(i: usize) -> Vec<(&'static str, String)> {
    let cluster = format!("us-east-1-eks-0{}-prod", i % 4);
    let pod = format!("pod-{:06}", i / 40);
    match i % 3 {
        0 => vec![
            ("__name__", "http_request_duration_seconds_bucket".into()),
            ("cluster", cluster),
            ("job", "kubernetes-pods".into()),
            ("pod", pod),
            (
                "service",
                ["api-gateway", "checkout", "catalog", "search"][i % 4].into(),
            ),
            ("method", ["GET", "POST", "PUT"][i % 3].into()),
            ("route", format!("/api/v1/items/{}", (i / 7) % 50)),
            ("status", ["200", "201", "404", "500"][(i / 3) % 4].into()),
            (
                "le",
                ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "2.5", "+Inf"][(i / 12) % 8].into(),
            ),
            (
                "instance",
                format!(
                    "10.{}.{}.{}:8080",
                    (i / 65536) % 256,
                    (i / 256) % 256,
                    i % 256
                ),
            ),
        ],
        1 => vec![
            ("__name__", "node_cpu_seconds_total".into()),
            ("cluster", cluster),
            ("job", "node-exporter".into()),
            (
                "instance",
                format!(
                    "ip-10-{}-{}-{}:9100",
                    (i / 65536) % 256,
                    (i / 256) % 256,
                    i % 256
                ),
            ),
            ("cpu", format!("{}", (i / 3) % 16)),
            (
                "mode",
                ["user", "system", "idle", "iowait", "irq", "steal"][(i / 48) % 6].into(),
            ),
        ],
        _ => vec![
            ("__name__", "app_cache_requests_total".into()),
            ("cluster", cluster),
            ("job", "app".into()),
            ("pod", pod),
            ("namespace", format!("team-{}", (i / 1000) % 20)),
            (
                "cache",
                ["sessions", "products", "users"][(i / 3) % 3].into(),
            ),
            ("result", ["hit", "miss"][(i / 9) % 2].into()),
            (
                "instance",
                format!("10.1.{}.{}:9090", (i / 256) % 256, i % 256),
            ),
        ],
    }
}

/// The same request as Remote-Write 2.0, as Prometheus 3 sends it: every
/// string interned once per request, `symbols[0]` empty, each series with
/// its family's metadata (type gauge, a help text).
fn to_v2(req: &WriteRequest) -> v2::Request {
    let mut symbols = vec![String::new()];
    let mut index = std::collections::HashMap::new();
    let mut sym = |s: &str| -> u32 {
        *index.entry(s.to_string()).or_insert_with(|| {
            symbols.push(s.to_string());
            (symbols.len() - 1) as u32
        })
    };
    let help = sym("A series of the load generator.");
    let timeseries = req
        .timeseries
        .iter()
        .map(|ts| v2::TimeSeries {
            labels_refs: ts
                .labels
                .iter()
                .flat_map(|l| [sym(&l.name), sym(&l.value)])
                .collect(),
            samples: ts
                .samples
                .iter()
                .map(|s| v2::Sample {
                    value: s.value,
                    timestamp: s.timestamp,
                    start_timestamp: 0,
                })
                .collect(),
            metadata: Some(v2::Metadata {
                r#type: v2::metadata::MetricType::Gauge as i32,
                help_ref: help,
                unit_ref: 0,
            }),
            ..Default::default()
        })
        .collect();
    v2::Request {
        symbols,
        timeseries,
    }
}

fn payloads(
    series: usize,
    per_request: usize,
    rounds: usize,
    base: i64,
    protocol: u8,
) -> Vec<Vec<u8>> {
    let all: Vec<Vec<Label>> = (0..series)
        .map(|i| {
            let mut labels = labels(i);
            // Prometheus keeps label sets sorted by name and sends them so.
            labels.sort_unstable_by_key(|&(n, _)| n);
            labels
                .into_iter()
                .map(|(n, v)| Label {
                    name: n.into(),
                    value: v,
                })
                .collect()
        })
        .collect();
    let mut all = all;
    // A Prometheus shard batches samples in scrape order, where a family's
    // series are together: each request holds a run of each family.
    let name = |labels: &[Label]| {
        labels
            .iter()
            .find(|l| l.name == "__name__")
            .unwrap()
            .value
            .clone()
    };
    for request in all.chunks_mut(per_request) {
        request.sort_by_cached_key(|labels| name(labels));
    }
    let mut out = Vec::with_capacity(rounds * series.div_ceil(per_request));
    let mut encoder = snap::raw::Encoder::new();
    for round in 0..rounds {
        let ts = base + round as i64 * 15_000;
        for chunk in all.chunks(per_request) {
            let req = WriteRequest {
                timeseries: chunk
                    .iter()
                    .enumerate()
                    .map(|(j, l)| TimeSeries {
                        labels: l.clone(),
                        samples: vec![Sample {
                            value: (round * 1000 + j) as f64 * 0.25,
                            timestamp: ts,
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let raw = if protocol == 2 {
                to_v2(&req).encode_to_vec()
            } else {
                req.encode_to_vec()
            };
            out.push(encoder.compress_vec(&raw).unwrap());
        }
    }
    out
}

async fn send(args: &[String]) {
    let url = arg(args, "--url", "http://127.0.0.1:9091/api/v1/write");
    let series: usize = arg(args, "--series", "100000").parse().unwrap();
    let per_request: usize = arg(args, "--per-request", "500").parse().unwrap();
    let connections: usize = arg(args, "--connections", "4").parse().unwrap();
    let rounds: usize = arg(args, "--rounds", "3").parse().unwrap();
    let max_seconds: f64 = arg(args, "--max-seconds", "120").parse().unwrap();
    let protocol: u8 = arg(args, "--protocol", "1").parse().unwrap();
    let (content_type, version) = match protocol {
        2 => (
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "2.0.0",
        ),
        _ => ("application/x-protobuf", "0.1.0"),
    };

    // By default the last round lands near now, so peers with a lookback
    // window (Prometheus' /federate) still see it. A caller that sends a
    // warm-up round first passes the base so the two calls' timestamps follow
    // on from each other.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base: i64 = arg(
        args,
        "--base-ms",
        &(now - rounds as i64 * 15_000).to_string(),
    )
    .parse()
    .unwrap();
    let bodies = Arc::new(payloads(series, per_request, rounds, base, protocol));
    let per_round = series.div_ceil(per_request);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(max_seconds);
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    // Round by round, as a Prometheus shard sends: a series' next sample is
    // never in flight before its previous one was answered.
    for round in 0..rounds {
        let next = Arc::new(AtomicUsize::new(round * per_round));
        let end = (round + 1) * per_round;
        let mut workers = Vec::new();
        for _ in 0..connections {
            let (bodies, client, next, url) =
                (bodies.clone(), client.clone(), next.clone(), url.clone());
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end || Instant::now() > deadline {
                        break;
                    }
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .header("Content-Type", content_type)
                        .header("Content-Encoding", "snappy")
                        .header("X-Prometheus-Remote-Write-Version", version)
                        .body(bodies[i].clone())
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        _ => failures += 1,
                    }
                    latencies.push(t.elapsed().as_secs_f64());
                }
                (latencies, failures)
            }));
        }
        for w in workers {
            let (l, f) = w.await.unwrap();
            latencies.extend(l);
            failures += f;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let requests = latencies.len();
    let samples = (requests as u64 - failures) * per_request as u64;
    println!(
        "{{\"requests\": {requests}, \"failures\": {failures}, \"samples\": {samples}, \"seconds\": {seconds:.4}, \"samples_per_sec\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"complete\": {}}}",
        samples as f64 / seconds,
        pct(0.50) * 1000.0,
        pct(0.99) * 1000.0,
        requests == bodies.len()
    );
}

async fn sink(args: &[String]) {
    use axum::routing::post;
    let listen = arg(args, "--listen", "127.0.0.1:9999");
    let app = axum::Router::new().route(
        "/{*path}",
        post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body.len());
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    eprintln!("sink listening address={}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // One thread: the load generator runs pinned to a single core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("send") => rt.block_on(send(&args)),
        Some("sink") => rt.block_on(sink(&args)),
        _ => {
            eprintln!(
                "usage: rw_loadgen send --url URL --series N [--per-request 500] [--connections 4] [--rounds 3] [--protocol 1|2] | sink --listen ADDR"
            );
            std::process::exit(2);
        }
    }
}
