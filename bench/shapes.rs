//! The load generator's series and payload shapes, shared by
//! examples/rw_loadgen.rs and benches/hot_path.rs (each includes this file
//! with `#[path]`), so the criterion benches measure the very requests
//! bench/run.py sends.
//!
//! A series is named by an id; `labels(id)` is its label set, one of
//! `FAMILIES` families (family of id = id mod `FAMILIES`). A shape says which
//! ids a round carries and in which order:
//!
//! - contiguous: ids 0..N in requests of `per_request`, each request sorted by
//!   metric name (a run of each family per request);
//! - interleaved: ids 0..N in order, so consecutive series of a request come
//!   from different families (series i is of family i mod F);
//! - sharded: what shard 0 of `SHARDS` Prometheus remote-write shards sends:
//!   the ids whose label-set hash falls on shard 0, taken from consecutive
//!   scrape pages of `PAGE` series (each page in exposition order, family by
//!   family) in page order, `per_request` per request;
//! - churn: contiguous, but from round 1 on `CHURN_PERCENT`% of the slots
//!   carry a series never sent before (new label values), the rest updates.
#![allow(dead_code)]

use std::collections::HashMap;

use promgate::proto::{Label, Sample, TimeSeries, WriteRequest, v2};

/// How many families `labels` knows.
pub const FAMILIES: usize = 3;
/// Remote-write shards of the sender, for `Shape::Sharded`.
pub const SHARDS: u64 = 8;
/// Series per scrape page, for `Shape::Sharded`: shard 0 gets about
/// PAGE / SHARDS of each page, about PAGE / SHARDS / FAMILIES per family.
pub const PAGE: usize = 600;
/// Share of each churn round's series that are new.
pub const CHURN_PERCENT: usize = 10;

const NAMES: [&str; FAMILIES] = [
    "http_request_duration_seconds_bucket",
    "node_cpu_seconds_total",
    "app_cache_requests_total",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Contiguous,
    Interleaved,
    Sharded,
    Churn,
}

impl Shape {
    pub const ALL: [Shape; 4] = [
        Shape::Contiguous,
        Shape::Interleaved,
        Shape::Sharded,
        Shape::Churn,
    ];

    pub fn parse(s: &str) -> Option<Shape> {
        Some(match s {
            "contiguous" => Shape::Contiguous,
            "interleaved" => Shape::Interleaved,
            "sharded" => Shape::Sharded,
            "churn" => Shape::Churn,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Contiguous => "contiguous",
            Shape::Interleaved => "interleaved",
            Shape::Sharded => "sharded",
            Shape::Churn => "churn",
        }
    }
}

/// The metric name of series `id`.
pub fn family_name(id: usize) -> &'static str {
    NAMES[id % FAMILIES]
}

/// The label set of series `id`: one of three families, 6 to 10 labels,
/// sorted by name as Prometheus sends them. Distinct for every id below 2^24.
pub fn labels(i: usize) -> Vec<Label> {
    let cluster = format!("us-east-1-eks-0{}-prod", i % 4);
    let pod = format!("pod-{:06}", i / 40);
    let mut labels: Vec<(&'static str, String)> = match i % FAMILIES {
        0 => vec![
            ("__name__", NAMES[0].into()),
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
            ("__name__", NAMES[1].into()),
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
            ("__name__", NAMES[2].into()),
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
    };
    // Prometheus keeps label sets sorted by name and sends them so.
    labels.sort_unstable_by_key(|&(n, _)| n);
    labels
        .into_iter()
        .map(|(n, v)| Label {
            name: n.into(),
            value: v,
        })
        .collect()
}

/// FNV-1a over the label pairs: the sender's shard of a series.
fn label_hash(labels: &[Label]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in labels {
        for b in l
            .name
            .bytes()
            .chain([0xff])
            .chain(l.value.bytes())
            .chain([0xff])
        {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// How many times slot `s` has been replaced by a new series up to and
/// including round `round`: slot s churns in the rounds r >= 1 with
/// (s + r) % (100 / CHURN_PERCENT) == 0, so each round replaces one slot in ten.
fn churn_generation(s: usize, round: usize) -> usize {
    let period = 100 / CHURN_PERCENT;
    let first = match (period - s % period) % period {
        0 => period,
        k => k,
    };
    if round < first {
        0
    } else {
        (round - first) / period + 1
    }
}

/// The ids of `series` series a shape sends, and in which order, round by
/// round; label sets are built once per id.
pub struct Generator {
    pub shape: Shape,
    pub series: usize,
    pub per_request: usize,
    /// The sharded shape's ids, in send order (the same every round).
    sharded: Vec<usize>,
    cache: HashMap<usize, Vec<Label>>,
}

impl Generator {
    pub fn new(shape: Shape, series: usize, per_request: usize) -> Generator {
        let mut sharded = Vec::new();
        if shape == Shape::Sharded {
            // Candidates in page order; the ones on shard 0, bounded.
            let mut id = 0;
            while sharded.len() < series && id < 1 << 24 {
                if label_hash(&labels(id)).is_multiple_of(SHARDS) {
                    sharded.push(id);
                }
                id += 1;
            }
            // A page is exposed family by family (then in id order).
            sharded.sort_by_key(|&id| (id / PAGE, family_name(id), id));
        }
        Generator {
            shape,
            series,
            per_request,
            sharded,
            cache: HashMap::new(),
        }
    }

    /// The ids round `round` (counted from the first round ever sent, which
    /// creates the series) carries, in send order, `per_request` per request.
    pub fn round_ids(&self, round: usize) -> Vec<usize> {
        let n = self.series;
        let mut ids: Vec<usize> = match self.shape {
            Shape::Contiguous | Shape::Interleaved => (0..n).collect(),
            Shape::Sharded => self.sharded.clone(),
            Shape::Churn => (0..n).map(|s| s + n * churn_generation(s, round)).collect(),
        };
        if matches!(self.shape, Shape::Contiguous | Shape::Churn) {
            // A Prometheus shard batches samples in scrape order, where a
            // family's series are together: each request holds a run of each
            // family (a stable sort, so in id order within a family).
            for request in ids.chunks_mut(self.per_request) {
                request.sort_by_key(|&id| family_name(id));
            }
        }
        ids
    }

    /// How many distinct series rounds 0..=`last_round` carried.
    pub fn series_total(&self, last_round: usize) -> usize {
        match self.shape {
            Shape::Churn => (0..self.series)
                .map(|s| churn_generation(s, last_round) + 1)
                .sum(),
            _ => self.series,
        }
    }

    /// The requests of round `round`, each series with one sample at `ts`;
    /// `value_round` seeds the values (the loadgen's round within its call).
    pub fn requests(&mut self, round: usize, value_round: usize, ts: i64) -> Vec<WriteRequest> {
        let ids = self.round_ids(round);
        let mut out = Vec::with_capacity(ids.len().div_ceil(self.per_request));
        for chunk in ids.chunks(self.per_request) {
            let timeseries = chunk
                .iter()
                .enumerate()
                .map(|(j, &id)| TimeSeries {
                    labels: self.cache.entry(id).or_insert_with(|| labels(id)).clone(),
                    samples: vec![Sample {
                        value: (value_round * 1000 + j) as f64 * 0.25,
                        timestamp: ts,
                    }],
                    ..Default::default()
                })
                .collect();
            out.push(WriteRequest {
                timeseries,
                ..Default::default()
            });
        }
        if self.shape == Shape::Churn {
            // Only the current round's series come back.
            let live: std::collections::HashSet<usize> = ids.into_iter().collect();
            self.cache.retain(|id, _| live.contains(id));
        }
        out
    }
}

/// The same request as Remote-Write 2.0, as Prometheus 3 sends it: every
/// string interned once per request, `symbols[0]` empty, each series with
/// metadata of `metric_type` and `help`.
pub fn to_v2(req: &WriteRequest, metric_type: v2::metadata::MetricType, help: &str) -> v2::Request {
    let mut symbols = vec![String::new()];
    let mut index = HashMap::new();
    let mut sym = |s: &str| -> u32 {
        *index.entry(s.to_string()).or_insert_with(|| {
            symbols.push(s.to_string());
            (symbols.len() - 1) as u32
        })
    };
    let help = sym(help);
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
                r#type: metric_type as i32,
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
