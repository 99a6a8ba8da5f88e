//! Applies one payload shape's rounds to a store, for instruction counts of
//! the store alone under callgrind or cachegrind.
//!
//!   store_shapes SHAPE SERIES [ROUNDS]
//!
//! Builds every request of rounds 0..=ROUNDS (default 1) of `SHAPE`
//! (bench/shapes.rs: contiguous, interleaved, sharded, churn) for `SERIES`
//! series, decodes them, then applies round 0 (which creates the series)
//! and the later rounds (updates; churn's create a tenth new) to one store,
//! printing the time of each round (wall clock, and on-CPU time, which a
//! machine shared with other builds disturbs less). Round 0 is applied by `create_round`,
//! the others by `update_round`, so one callgrind run counts both apart:
//!
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!       target/release/examples/store_shapes interleaved 100000
//!   callgrind_annotate --inclusive=yes /tmp/cg.out | grep _round
//!
//! then divide each function's inclusive count by the requests it applied.

use std::time::Instant;

use prost::Message;

use promgate::config::Config;
use promgate::ingest;
use promgate::model::WriteBatch;
use promgate::store::{Store, StoreLimits};

#[path = "../bench/shapes.rs"]
mod shapes;
use shapes::{Generator, Shape};

const PER_REQUEST: usize = 500;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: store_shapes contiguous|interleaved|sharded|churn SERIES [ROUNDS]";
    let shape = args
        .get(1)
        .and_then(|s| Shape::parse(s))
        .unwrap_or_else(|| panic!("{usage}"));
    let series: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{usage}"));
    let rounds: usize = args.get(3).map_or(1, |s| s.parse().expect("ROUNDS"));

    let rules = Config::default().decode_limits().rules(ingest::now_ms());
    let mut generator = Generator::new(shape, series, PER_REQUEST);
    let decoded: Vec<Vec<WriteBatch>> = (0..=rounds)
        .map(|round| {
            generator
                .requests(round, round, 1 + round as i64 * 15_000)
                .iter()
                .map(|req| ingest::v1::decode(&req.encode_to_vec(), &rules).unwrap())
                .collect()
        })
        .collect();
    let store = Store::new(StoreLimits {
        max_series: 100_000_000,
        max_metadata: 1000,
    });
    for (round, batches) in decoded.iter().enumerate() {
        let samples: usize = batches.iter().map(|b| b.series.len()).sum();
        let (t, cpu) = (Instant::now(), cpu_ns());
        let created = if round == 0 {
            create_round(&store, batches)
        } else {
            update_round(&store, batches)
        };
        let secs = t.elapsed().as_secs_f64();
        let cpu_secs = cpu_ns().saturating_sub(cpu) as f64 / 1e9;
        println!(
            "{} round {round}: {} requests, {samples} series ({created} created) in {:.1} ms: {:.3} M series/s; on-CPU {:.1} ms: {:.3} M series/s",
            shape.name(),
            batches.len(),
            secs * 1e3,
            samples as f64 / secs / 1e6,
            cpu_secs * 1e3,
            samples as f64 / cpu_secs / 1e6
        );
    }
    println!("live series {}", store.live_series());
}

/// Nanoseconds this thread has run on a CPU (Linux's schedstat; 0 where
/// there is none): on a machine shared with other work, the time it was
/// not waiting for one.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Applies round 0, which creates every series.
#[inline(never)]
fn create_round(store: &Store, batches: &[WriteBatch]) -> u64 {
    batches.iter().map(|b| store.apply(b).created).sum()
}

/// Applies a later round: updates (and, for churn, a tenth new series).
/// Not the same body as `create_round`, or the compiler merges the two.
#[inline(never)]
fn update_round(store: &Store, batches: &[WriteBatch]) -> u64 {
    let mut created = std::hint::black_box(0);
    for b in batches {
        created += store.apply(b).created;
    }
    created
}
