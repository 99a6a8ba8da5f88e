//! Families named like a part of another family (`x` and `x_count`, `rpc`
//! and `rpc_sum`, …): whatever was accepted, the page must read completely in
//! client_golang's text parser (promtool, and the Pushgateway, whose
//! re-exposition of the parsed page must hold every line), with every
//! accepted sample on it. Prometheus' and vmagent's parsers read the same
//! pages in `tests/scrapers.rs`.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::*;
use proptest::prelude::*;

/// The metadata types a sender can send.
const TYPES: [MetricType; 8] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Histogram,
    MetricType::Summary,
    MetricType::Unknown,
    MetricType::Gaugehistogram,
    MetricType::Info,
    MetricType::Stateset,
];

/// Every suffix a parser may read as part of another family's name.
const SUFFIXES: [&str; 8] = [
    "_bucket", "_count", "_sum", "_total", "_created", "_info", "_gsum", "_gcount",
];

/// The series a sender sends for a family `name` of type `t`: (metric name,
/// extra labels, value). Values are small integers, which every parser and
/// encoder writes alike.
/// A metric name, its labels beyond `__name__`, and a value.
type OneSeries = (String, Vec<(&'static str, &'static str)>, f64);

fn series_of(name: &str, t: MetricType) -> Vec<OneSeries> {
    let s = |suffix: &str, labels: &[(&'static str, &'static str)], v: f64| {
        (format!("{name}{suffix}"), labels.to_vec(), v)
    };
    match t {
        MetricType::Counter => vec![s("", &[], 3.0), s("_total", &[], 4.0)],
        MetricType::Histogram => vec![
            s("_bucket", &[("le", "1")], 1.0),
            s("_bucket", &[("le", "+Inf")], 2.0),
            s("_sum", &[], 5.0),
            s("_count", &[], 2.0),
        ],
        MetricType::Summary => vec![
            s("", &[("quantile", "0.5")], 1.0),
            s("", &[("quantile", "0.9")], 2.0),
            s("_sum", &[], 6.0),
            s("_count", &[], 3.0),
        ],
        MetricType::Gaugehistogram => vec![
            s("_bucket", &[("le", "+Inf")], 2.0),
            s("_gsum", &[], 7.0),
            s("_gcount", &[], 2.0),
        ],
        MetricType::Info => vec![s("_info", &[("version", "1")], 1.0)],
        MetricType::Stateset => vec![s("", &[("state", "on")], 1.0)],
        MetricType::Gauge | MetricType::Unknown => vec![s("", &[], 8.0)],
    }
}

/// Pushes `families` (name, type) with their series and metadata to a fresh
/// promgate, and checks the page it exposes: every accepted sample is on it,
/// promtool parses it, and client_golang (through the Pushgateway) keeps
/// every line.
async fn check_families(
    client: &reqwest::Client,
    pushgateway: u16,
    job: &str,
    families: &[(String, MetricType)],
) -> String {
    let (app, _) = app(&["--exposition.timestamps", "none"]);
    let mut wanted = BTreeSet::new();
    let mut owned = Vec::new();
    for (name, t) in families {
        for (metric, labels, value) in series_of(name, *t) {
            owned.push((metric, labels, value));
        }
    }
    // Several families can produce one series (a counter `x` sends
    // `x_total`, as does a family named `x_total`): the last value wins.
    let mut latest = std::collections::BTreeMap::new();
    for (metric, labels, value) in &owned {
        latest.insert((metric.clone(), labels.clone()), *value);
    }
    let labelled: Vec<Vec<(&str, &str)>> = latest
        .keys()
        .map(|(metric, labels)| {
            let mut l = vec![("__name__", metric.as_str()), ("k", "v")];
            l.extend(labels.iter().copied());
            l
        })
        .collect();
    let samples: Vec<[(f64, i64); 1]> = latest.values().map(|v| [(*v, 1)]).collect();
    let series: Vec<Series> = labelled
        .iter()
        .zip(&samples)
        .map(|(l, s)| (&l[..], &s[..]))
        .collect();
    let metadata: Vec<(&str, MetricType, &str)> = families
        .iter()
        .map(|(name, t)| (name.as_str(), *t, "Help of a colliding family."))
        .collect();
    let (status, body) = write(&app, &request(&series, &metadata)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for ((metric, labels), value) in &latest {
        let mut l: Vec<(String, String)> = vec![("k".into(), "v".into())];
        l.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l.sort();
        wanted.insert((metric.clone(), l, value.to_string()));
    }

    let (_, page) = get(&app, "/metrics").await;
    let on_page: BTreeSet<_> = page
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(sample_key)
        .collect();
    assert_eq!(on_page, wanted, "every accepted sample, once\n{page}");
    assert_parses(&page);
    assert_pushgateway_keeps_every_line(client, pushgateway, job, &page).await;
    page
}

#[tokio::test]
async fn every_type_pair_and_suffix_reads_completely() {
    let dir = tempfile::tempdir().unwrap();
    let (_pgw, port) = spawn_pushgateway(dir.path());
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;
    for (i, a) in TYPES.iter().enumerate() {
        for (j, b) in TYPES.iter().enumerate() {
            // One base per suffix, so that the eight collisions of a pair
            // share a page without touching one another.
            let families: Vec<(String, MetricType)> = SUFFIXES
                .iter()
                .enumerate()
                .flat_map(|(n, suffix)| {
                    let base = format!("f{n}");
                    [(base.clone(), *a), (format!("{base}{suffix}"), *b)]
                })
                .collect();
            check_families(&client, port, &format!("pair_{i}_{j}"), &families).await;
        }
    }
}

#[tokio::test]
async fn the_reported_collisions_keep_the_first_family_typed() {
    let dir = tempfile::tempdir().unwrap();
    let (_pgw, port) = spawn_pushgateway(dir.path());
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;
    // prometheus/common#253: histograms `signal_info` and `signal_info_count`.
    let page = check_families(
        &client,
        port,
        "signal_info",
        &[
            ("signal_info".into(), MetricType::Histogram),
            ("signal_info_count".into(), MetricType::Histogram),
        ],
    )
    .await;
    assert!(page.contains("# TYPE signal_info histogram\n"), "{page}");
    assert!(!page.contains("# HELP signal_info_count"), "{page}");
    // Summaries `rpc` and `rpc_sum`: `rpc_sum` holds rpc's sum and
    // rpc_sum's quantiles, which client_golang would merge into one.
    let page = check_families(
        &client,
        port,
        "rpc",
        &[
            ("rpc".into(), MetricType::Summary),
            ("rpc_sum".into(), MetricType::Summary),
        ],
    )
    .await;
    assert!(!page.contains("# TYPE rpc summary"), "{page}");
    // A family with no neighbour keeps its type.
    let page = check_families(
        &client,
        port,
        "lone",
        &[("lone".into(), MetricType::Summary)],
    )
    .await;
    assert!(page.contains("# TYPE lone summary\n"), "{page}");
}

/// Names built from one base and the suffixes that parsers strip.
fn colliding_name() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(&["_count", "_sum", "_bucket", "_total"][..]),
        0..3,
    )
    .prop_map(|suffixes| format!("a{}", suffixes.concat()))
}

fn metric_type() -> impl Strategy<Value = MetricType> {
    prop::sample::select(&TYPES[..])
}

/// A random page of colliding names: each metric name with a random
/// `le`/`quantile` label (or none), some with metadata of a random type.
#[derive(Debug, Clone)]
struct Hostile {
    series: Vec<(String, Option<(&'static str, &'static str)>)>,
    metadata: Vec<(String, MetricType)>,
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let extra = prop::option::of(prop::sample::select(
        &[
            ("le", "1"),
            ("le", "+Inf"),
            ("le", "bad"),
            ("quantile", "0.5"),
            ("quantile", "high"),
        ][..],
    ));
    (
        prop::collection::vec((colliding_name(), extra), 1..10),
        prop::collection::vec((colliding_name(), metric_type()), 0..6),
    )
        .prop_map(|(series, metadata)| Hostile { series, metadata })
}

#[test]
fn random_collisions_read_completely() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_pgw, port) = spawn_pushgateway(dir.path());
    let client = reqwest::Client::new();
    rt.block_on(wait_ready(&client, port));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&hostile(), |h| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(check_hostile(&client, port, &format!("random_{n}"), &h));
            Ok(())
        })
        .unwrap();
}

async fn check_hostile(client: &reqwest::Client, port: u16, job: &str, h: &Hostile) {
    let (app, _) = app(&["--exposition.timestamps", "none"]);
    let labelled: Vec<Vec<(&str, &str)>> = h
        .series
        .iter()
        .map(|(name, extra)| {
            let mut l = vec![("__name__", name.as_str())];
            l.extend(extra.iter().copied());
            l
        })
        .collect();
    let series: Vec<Series> = labelled.iter().map(|l| (&l[..], &[(2.0, 1)][..])).collect();
    let metadata: Vec<(&str, MetricType, &str)> = h
        .metadata
        .iter()
        .map(|(n, t)| (n.as_str(), *t, "h"))
        .collect();
    let (status, body) = write(&app, &request(&series, &metadata)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let distinct: BTreeSet<_> = h.series.iter().collect();
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(sample_lines(&page).len(), distinct.len(), "{h:?}\n{page}");
    assert_parses(&page);
    assert_pushgateway_keeps_every_line(client, port, job, &page).await;
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    eventually(
        std::time::Duration::from_secs(20),
        "the Pushgateway",
        || async {
            fetch_text(client, &format!("http://127.0.0.1:{port}/-/ready"))
                .await
                .map(|_| ())
        },
    )
    .await
}
