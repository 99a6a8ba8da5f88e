//! Decode and apply the load generator's requests to a warm store, one
//! protocol per run, for comparing Remote-Write 1.0 and 2.0 per sample:
//!
//!   rw2_phases [--protocol 1|2] [--series 100000] [--per-request 500] [--rounds 1]
//!              [--shape contiguous|interleaved|sharded|churn]
//!
//! The payloads are bench/run.py's (`rw_loadgen` builds them the same way:
//! bench/shapes.rs, snappy, 2.0 with metadata on every series as Prometheus 3
//! sends it). Round 0 creates the series in the store through the same
//! protocol; the rounds after it update them, each sample newer, through one
//! `Decoder` as the write handler does (decompress, decode, lower, then
//! `Store::apply`). Only those rounds run inside [`measured`], so that
//!
//!   valgrind --tool=callgrind --toggle-collect='rw2_phases::measured*' \
//!       target/release/examples/rw2_phases --protocol 2
//!
//! counts their instructions alone; divide by the samples printed.

use std::hint::black_box;
use std::time::Instant;

use promgate::config::Config;
use promgate::ingest::{self, Decoder, Encoding, Format, Limits, Protocol};
use promgate::proto::v2;
use promgate::store::Store;
use prost::Message;

#[path = "../bench/shapes.rs"]
mod shapes;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// The snappy bodies of one round, as rw_loadgen sends them.
fn round(generator: &mut shapes::Generator, round: usize, ts: i64, protocol: u8) -> Vec<Vec<u8>> {
    let mut encoder = snap::raw::Encoder::new();
    generator
        .requests(round, round, ts)
        .iter()
        .map(|req| {
            let raw = if protocol == 2 {
                shapes::to_v2(
                    req,
                    v2::metadata::MetricType::Gauge,
                    "A series of the load generator.",
                )
                .encode_to_vec()
            } else {
                req.encode_to_vec()
            };
            encoder.compress_vec(&raw).unwrap()
        })
        .collect()
}

/// Decodes and applies the rounds that update the series; returns the
/// samples stored. (Its body differs from the warm-up's, so that LLVM does
/// not merge the two and count the warm-up here.)
#[inline(never)]
fn measured(
    rounds: &[Vec<Vec<u8>>],
    format: Format,
    limits: &Limits,
    now_ms: i64,
    decoder: &mut Decoder,
    store: &Store,
) -> u64 {
    rounds
        .iter()
        .map(|bodies| decode_and_apply(bodies, format, limits, now_ms, decoder, store))
        .sum()
}

/// Decodes and applies every body; returns the samples stored.
#[inline(always)]
fn decode_and_apply(
    bodies: &[Vec<u8>],
    format: Format,
    limits: &Limits,
    now_ms: i64,
    decoder: &mut Decoder,
    store: &Store,
) -> u64 {
    let mut samples = 0;
    for body in bodies {
        let batch = decoder
            .decode(format, black_box(body), limits, now_ms)
            .expect("a valid body");
        samples += store.apply(batch).samples;
        decoder.trim();
    }
    samples
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let protocol: u8 = arg(&args, "--protocol", "2").parse().unwrap();
    let series: usize = arg(&args, "--series", "100000").parse().unwrap();
    let per_request: usize = arg(&args, "--per-request", "500").parse().unwrap();
    let rounds: usize = arg(&args, "--rounds", "1").parse().unwrap();
    let shape = shapes::Shape::parse(&arg(&args, "--shape", "contiguous")).expect("a shape");

    let config = Config::default();
    let limits = config.decode_limits();
    let store = Store::new(config.store_limits());
    let format = Format {
        protocol: match protocol {
            1 => Protocol::RemoteWrite1,
            _ => Protocol::RemoteWrite2,
        },
        encoding: Encoding::Snappy,
    };
    let now = ingest::now_ms();
    let base = now - 3_600_000;
    let mut generator = shapes::Generator::new(shape, series, per_request);
    let mut decoder = Decoder::default();

    // Every payload is built before the store is touched: building them
    // frees many small strings, and the allocator's first large request
    // afterwards gathers them up, which the server never pays per request.
    let created = round(&mut generator, 0, base, protocol);
    let later: Vec<Vec<Vec<u8>>> = (1..=rounds)
        .map(|r| round(&mut generator, r, base + r as i64 * 15_000, protocol))
        .collect();
    let stored = decode_and_apply(&created, format, &limits, now, &mut decoder, &store);

    let start = Instant::now();
    let samples = measured(&later, format, &limits, now, &mut decoder, &store);
    let elapsed = start.elapsed();
    let bytes: usize = later.iter().flatten().map(Vec::len).sum();
    println!(
        "protocol {protocol}: {stored} samples created, then {samples} in {rounds} round(s), \
         {bytes} snappy bytes, {:.0} ns per sample, {} series, {} metadata",
        elapsed.as_nanos() as f64 / samples as f64,
        store.live_series(),
        store.metadata_len(),
    );
}
