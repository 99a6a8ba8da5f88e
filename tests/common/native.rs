//! Native histograms as a service and a rule evaluator send them by
//! remote write (1.0), shared by the tests that check what real scrapers
//! make of them.

use std::collections::BTreeMap;

use promgate::proto::histogram::{Count, ResetHint, ZeroCount};
use promgate::proto::{BucketSpan, Histogram, Label, MetricMetadata, TimeSeries, WriteRequest};

use super::MetricType;

/// One native histogram series as sent: its metric name, its other labels,
/// the histogram and its family's type.
pub struct Sent {
    pub name: &'static str,
    pub labels: Vec<(&'static str, &'static str)>,
    pub histogram: Histogram,
    pub metric_type: MetricType,
}

impl Sent {
    /// The labels a scraper negotiating no escaping stores (`service.name`
    /// as `service_name`, promgate's default escaping), without the name.
    pub fn escaped_labels(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .map(|(n, v)| (n.replace('.', "_"), v.to_string()))
            .collect()
    }
}

pub fn spans(s: &[(i32, u32)]) -> Vec<BucketSpan> {
    s.iter()
        .map(|&(offset, length)| BucketSpan { offset, length })
        .collect()
}

/// Absolute counts as the deltas an integer histogram carries.
pub fn deltas(counts: &[u64]) -> Vec<i64> {
    let mut last = 0i64;
    counts
        .iter()
        .map(|&c| {
            let d = c as i64 - last;
            last = c as i64;
            d
        })
        .collect()
}

/// The native histograms sent, stamped `t`: what an instrumented service
/// and a rule evaluator produce.
pub fn sent(t: i64) -> Vec<Sent> {
    // Request latencies as client_golang records them: schema 3, its
    // default zero threshold (2^-128), buckets from 5 ms to 34 ms in three
    // spans with gaps (and an empty bucket inside a span), a few negative
    // observations (clock steps) in two spans, three in the zero bucket.
    let latency_pos = [5, 12, 20, 9, 4, 1, 2, 0, 1];
    let latency_neg = [1, 2, 1];
    let latency = Histogram {
        count: Some(Count::CountInt(3 + 54 + 4)),
        sum: 0.8125,
        schema: 3,
        zero_threshold: 2.938735877055719e-39,
        zero_count: Some(ZeroCount::ZeroCountInt(3)),
        negative_spans: spans(&[(-8, 2), (5, 1)]),
        negative_deltas: deltas(&latency_neg),
        positive_spans: spans(&[(-60, 4), (3, 2), (10, 3)]),
        positive_deltas: deltas(&latency_pos),
        reset_hint: ResetHint::No as i32,
        timestamp: t,
        ..Default::default()
    };
    // An aggregate (a recording rule's output): a float histogram, counts
    // absolute and not integral.
    let aggregate = Histogram {
        count: Some(Count::CountFloat(0.5 + 1.5 + 2.25 + 0.75 + 0.25 + 0.5)),
        sum: 3.5,
        schema: 0,
        zero_threshold: 0.001,
        zero_count: Some(ZeroCount::ZeroCountFloat(0.5)),
        negative_spans: spans(&[(0, 1)]),
        negative_counts: vec![0.5],
        positive_spans: spans(&[(-2, 2), (1, 2)]),
        positive_counts: vec![1.5, 2.25, 0.75, 0.25],
        timestamp: t,
        ..Default::default()
    };
    // Custom buckets (schema -53): the classic default bounds, the +Inf
    // bucket populated.
    let custom = Histogram {
        count: Some(Count::CountInt(2 + 5 + 8 + 3 + 1 + 1 + 1)),
        sum: 4.25,
        schema: -53,
        positive_spans: spans(&[(0, 3), (2, 4), (2, 1)]),
        positive_deltas: deltas(&[2, 5, 8, 3, 1, 0, 1, 1]),
        custom_values: vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
        timestamp: t,
        ..Default::default()
    };
    // A gauge histogram (sizes of the jobs in a queue now), zero threshold
    // 0: its zero bucket at le="0".
    let gauge = Histogram {
        count: Some(Count::CountInt(1 + 3 + 6 + 2 + 1 + 1)),
        sum: 41.5,
        schema: 2,
        zero_threshold: 0.0,
        zero_count: Some(ZeroCount::ZeroCountInt(1)),
        positive_spans: spans(&[(4, 3), (2, 2)]),
        positive_deltas: deltas(&[3, 6, 2, 1, 1]),
        reset_hint: ResetHint::Gauge as i32,
        timestamp: t,
        ..Default::default()
    };
    vec![
        Sent {
            name: "http_server_request_duration_seconds",
            labels: vec![
                ("job", "checkout"),
                ("instance", "10.0.0.7:8080"),
                ("service.name", "checkout-api"),
                ("method", "GET"),
            ],
            histogram: latency,
            metric_type: MetricType::Histogram,
        },
        Sent {
            name: "batch_wait_seconds",
            labels: vec![
                ("job", "rules"),
                ("instance", "10.0.0.3:9090"),
                ("service.name", "orders"),
            ],
            histogram: aggregate,
            metric_type: MetricType::Histogram,
        },
        Sent {
            name: "rpc_duration_seconds",
            labels: vec![
                ("job", "rpc"),
                ("instance", "10.0.0.8:9090"),
                ("service.name", "billing"),
            ],
            histogram: custom,
            metric_type: MetricType::Histogram,
        },
        Sent {
            name: "queue_job_size_bytes",
            labels: vec![
                ("job", "worker"),
                ("instance", "10.0.0.9:9100"),
                ("service.name", "jobs"),
            ],
            histogram: gauge,
            metric_type: MetricType::Gaugehistogram,
        },
    ]
}

/// The remote-write 1.0 request carrying `sent`, with each family's metadata.
pub fn to_request(sent: &[Sent]) -> WriteRequest {
    let label = |n: &str, v: &str| Label {
        name: n.into(),
        value: v.into(),
    };
    WriteRequest {
        timeseries: sent
            .iter()
            .map(|s| TimeSeries {
                labels: std::iter::once(label("__name__", s.name))
                    .chain(s.labels.iter().map(|(n, v)| label(n, v)))
                    .collect(),
                histograms: vec![s.histogram.clone()],
                ..Default::default()
            })
            .collect(),
        metadata: sent
            .iter()
            .map(|s| MetricMetadata {
                r#type: s.metric_type as i32,
                metric_family_name: s.name.into(),
                help: format!("{} (a native histogram).", s.name),
                unit: String::new(),
            })
            .collect(),
    }
}

/// The count of a histogram as sent.
pub fn count_of(h: &Histogram) -> f64 {
    match h.count {
        Some(Count::CountInt(c)) => c as f64,
        Some(Count::CountFloat(c)) => c,
        None => 0.0,
    }
}
