//! Times the phases of one large push on a body file:
//! `cargo run --release --example push_phases -- body.txt [rounds]` (3
//! rounds unless given).
//!
//! Each round reads the body twice: the two steps apart (parse, then check
//! and lower, then freeing the parsed form), and in one pass
//! (`lower_text`, what the push handler runs first); then stores the
//! one-pass batch into the same group (`Store::push`). The first round
//! creates the group, the others push the same series again.

use std::time::{Instant, SystemTime};

use promgate::ingest::push::{Grouping, lower, lower_text, parse_text};
use promgate::ingest::{Limits, now_ms};
use promgate::model::SeriesLimits;
use promgate::store::{Store, StoreLimits};

fn main() {
    let path = std::env::args().nth(1).expect("a text-format file");
    let body = std::fs::read(path).unwrap();
    let rounds: usize = std::env::args()
        .nth(2)
        .map_or(3, |r| r.parse().expect("a count"));
    let limits = Limits {
        max_decoded_bytes: 1 << 30,
        series: SeriesLimits {
            max_labels: 30,
            max_name_len: 256,
            max_value_len: 4096,
            max_help_len: 4096,
            max_histogram_buckets: 320,
        },
        future_window: None,
    };
    let store = Store::new(StoreLimits {
        max_series: 5_000_000,
        max_metadata: 100_000,
    });
    let grouping = Grouping::new("big".into(), vec![]).unwrap();
    for round in 0..rounds {
        let rules = limits.rules(now_ms());
        let t = Instant::now();
        let families = parse_text(&body).unwrap();
        let parsed = t.elapsed();
        let t = Instant::now();
        let two_steps = lower(&families, &grouping, &rules, 0).unwrap();
        let lowered = t.elapsed();
        let t = Instant::now();
        drop(families);
        drop(two_steps);
        let dropped = t.elapsed();
        let t = Instant::now();
        let pushed = lower_text(&body, &grouping, &rules, 0).expect("a body as libraries write it");
        let one_pass = t.elapsed();
        let t = Instant::now();
        store
            .push(&grouping, pushed, true, SystemTime::now())
            .unwrap();
        let stored = t.elapsed();
        println!(
            "round {round}: parse {parsed:?} lower {lowered:?} drop {dropped:?} | one pass {one_pass:?} store {stored:?}"
        );
    }
}
