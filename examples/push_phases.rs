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
        let (t, f) = (Instant::now(), minor_faults());
        let pushed = lower_text(&body, &grouping, &rules, 0).expect("a body as libraries write it");
        let (one_pass, one_pass_faults) = (t.elapsed(), minor_faults() - f);
        let (t, f) = (Instant::now(), minor_faults());
        store
            .push(&grouping, pushed, true, SystemTime::now())
            .unwrap();
        let (stored, stored_faults) = (t.elapsed(), minor_faults() - f);
        println!(
            "round {round}: parse {parsed:?} lower {lowered:?} drop {dropped:?} | \
             one pass {one_pass:?} ({one_pass_faults} faults) store {stored:?} ({stored_faults} faults)"
        );
    }
}

/// The process's minor page faults so far (`/proc/self/stat`, field 10):
/// fresh memory touched costs one per page, a part of a first push's time.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis, which may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}
