//! Remote-write load generator and discarding sink for bench/run.py.
//!
//!   rw_loadgen send --url URL --series N [--per-request 500] [--connections 4] [--rounds 3] [--protocol 1|2]
//!                   [--base-ms MS] [--shape contiguous|interleaved|sharded|churn] [--first-round R]
//!   rw_loadgen sink --listen 127.0.0.1:PORT
//!
//! `send` builds every payload before the clock starts: N distinct series
//! shaped like the mock exporter's families (HTTP, node, app; 6-10 labels,
//! sorted by name as Prometheus sends them), snappy RW 1.0, `--per-request`
//! series each, in the order `--shape` says (bench/shapes.rs): contiguous
//! (the default: a family's series together within a request),
//! interleaved (consecutive series from different families), sharded (what
//! shard 0 of 8 Prometheus shards sends of consecutive scrape pages) or churn
//! (from round 1 on, 10% of each round's series are new). `--first-round`
//! says which round since the series were created this call starts at (churn
//! picks its new series by it). Round r carries timestamp
//! base + r×15s for every series, so each sample is new and in order, as from
//! a Prometheus shard; rounds are sent in order over `--connections`
//! keep-alive connections. It prints one JSON line: samples, seconds,
//! samples/s, p50/p99 request latency, non-2xx answers, and the distinct
//! series sent since round 0 (`series_total`) and in the last round.
//!
//! `sink` answers every POST with 204 after reading the body, without
//! decoding: the HTTP ceiling of the machine, and the discard target of vmagent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promgate::proto::v2;

#[path = "../bench/shapes.rs"]
mod shapes;
use prost::Message;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// Every request of every round, encoded, before the clock starts; with the
/// number of series each carries.
fn payloads(
    generator: &mut shapes::Generator,
    first_round: usize,
    rounds: usize,
    base: i64,
    protocol: u8,
) -> Vec<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(rounds * generator.series.div_ceil(generator.per_request));
    let mut encoder = snap::raw::Encoder::new();
    for round in 0..rounds {
        let ts = base + round as i64 * 15_000;
        for req in generator.requests(first_round + round, round, ts) {
            let raw = if protocol == 2 {
                shapes::to_v2(
                    &req,
                    v2::metadata::MetricType::Gauge,
                    "A series of the load generator.",
                )
                .encode_to_vec()
            } else {
                req.encode_to_vec()
            };
            out.push((encoder.compress_vec(&raw).unwrap(), req.timeseries.len()));
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
    let shape_arg = arg(args, "--shape", "contiguous");
    let Some(shape) = shapes::Shape::parse(&shape_arg) else {
        eprintln!("unknown --shape {shape_arg}: contiguous, interleaved, sharded or churn");
        std::process::exit(2);
    };
    // The first round of this call, counted from the round that created the
    // series (churn replaces a share of the series from round 1 on).
    let first_round: usize = arg(args, "--first-round", "0").parse().unwrap();
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
    let mut generator = shapes::Generator::new(shape, series, per_request);
    let bodies = Arc::new(payloads(
        &mut generator,
        first_round,
        rounds,
        base,
        protocol,
    ));
    let per_round = bodies.len() / rounds.max(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(max_seconds);
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut samples = 0;
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
                let mut samples = 0u64;
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
                        .body(bodies[i].0.clone())
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            samples += bodies[i].1 as u64;
                        }
                        _ => failures += 1,
                    }
                    latencies.push(t.elapsed().as_secs_f64());
                }
                (latencies, failures, samples)
            }));
        }
        for w in workers {
            let (l, f, s) = w.await.unwrap();
            latencies.extend(l);
            failures += f;
            samples += s;
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
    // The distinct series sent since the first round ever, and how many the
    // last round carried: what a receiver holds, and how many of them hold
    // the last round's sample.
    let last_round = first_round + rounds.saturating_sub(1);
    let series_total = generator.series_total(last_round);
    println!(
        "{{\"requests\": {requests}, \"failures\": {failures}, \"samples\": {samples}, \"seconds\": {seconds:.4}, \"samples_per_sec\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"complete\": {}, \"shape\": \"{}\", \"series_total\": {series_total}, \"series_last_round\": {series}}}",
        samples as f64 / seconds,
        pct(0.50) * 1000.0,
        pct(0.99) * 1000.0,
        requests == bodies.len(),
        shape.name()
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
                "usage: rw_loadgen send --url URL --series N [--per-request 500] [--connections 4] [--rounds 3] [--protocol 1|2] [--shape contiguous|interleaved|sharded|churn] [--first-round R] | sink --listen ADDR"
            );
            std::process::exit(2);
        }
    }
}
