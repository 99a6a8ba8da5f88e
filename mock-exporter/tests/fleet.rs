//! mock-exporter: catalogue size, counter monotonicity, histogram and gauge
//! invariants over scrapes taken across simulated time, per-cluster
//! differences, determinism, the probe endpoint, and promtool.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use common::{get, promtool_check};
use mock_exporter::http::{MockState, router};

/// A Monday, 12:00 UTC.
const T0: i64 = 1_764_590_400;

struct Exporter {
    app: Router,
    now: Arc<AtomicI64>,
}

impl Exporter {
    fn new(seed: u64, max_clusters: usize) -> Exporter {
        let now = Arc::new(AtomicI64::new(T0));
        let clock = Arc::clone(&now);
        let state = MockState::new(
            seed,
            max_clusters,
            Arc::new(move || clock.load(Ordering::SeqCst)),
        );
        Exporter {
            app: router(state),
            now,
        }
    }

    async fn scrape_at(&self, t: i64, cluster: &str) -> String {
        self.now.store(t, Ordering::SeqCst);
        let (status, page) = get(&self.app, &format!("/metrics?cluster={cluster}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page
    }
}

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn key(&self) -> String {
        format!("{}{:?}", self.name, self.labels)
    }
    fn label(&self, k: &str) -> &str {
        self.labels.get(k).map_or("", String::as_str)
    }
}

/// Parses the text format this exporter writes (quoted, escaped label values).
fn parse(page: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("bad line {line:?}"),
        };
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(mut r) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let r2 = r.trim_start_matches(',');
                let (k, v) = r2
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad labels in {line:?}"));
                let mut value = String::new();
                let mut chars = v.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => panic!("bad escape in {line:?}"),
                        },
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated value in {line:?}"),
                    }
                };
                labels.insert(k.to_string(), value);
                r = &v[end + 1..];
            }
        }
        let value = rest.trim().split(' ').next().unwrap();
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

const FAMILIES: [&str; 19] = [
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_size_bytes_bucket",
    "http_response_size_bytes_bucket",
    "node_cpu_seconds_total",
    "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes",
    "node_disk_io_time_seconds_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_bytes_total",
    "node_filesystem_size_bytes",
    "node_filesystem_avail_bytes",
    "app_errors_total",
    "app_database_queries_duration_seconds_bucket",
    "app_database_connections_active",
    "app_cache_requests_total",
    "app_queue_size",
    "app_worker_tasks_duration_seconds_bucket",
    "app_business_transactions_total",
];

const HISTOGRAMS: [&str; 5] = [
    "http_request_duration_seconds",
    "http_request_size_bytes",
    "http_response_size_bytes",
    "app_database_queries_duration_seconds",
    "app_worker_tasks_duration_seconds",
];

fn is_cumulative(name: &str) -> bool {
    name.ends_with("_total")
        || name.ends_with("_bucket")
        || name.ends_with("_count")
        || name.ends_with("_sum")
}

/// Histogram and gauge invariants of one scrape.
fn check_invariants(samples: &[Sample]) {
    let by_key: HashMap<String, &Sample> = samples.iter().map(|s| (s.key(), s)).collect();
    for h in HISTOGRAMS {
        let mut groups: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.name == format!("{h}_bucket")) {
            let mut labels = s.labels.clone();
            labels.remove("le");
            groups.entry(format!("{labels:?}")).or_default().push(s);
        }
        assert!(!groups.is_empty(), "{h} has no buckets");
        for (labels, mut buckets) in groups {
            buckets.sort_by(|a, b| {
                a.label("le")
                    .parse::<f64>()
                    .unwrap()
                    .total_cmp(&b.label("le").parse::<f64>().unwrap())
            });
            for pair in buckets.windows(2) {
                assert!(
                    pair[0].value <= pair[1].value,
                    "{h}{labels}: buckets not cumulative"
                );
            }
            let inf = buckets.last().unwrap();
            assert_eq!(inf.label("le"), "+Inf");
            let key = |suffix: &str| {
                let mut s = (*inf).clone();
                s.name = format!("{h}{suffix}");
                s.labels.remove("le");
                s.key()
            };
            let count = by_key[&key("_count")].value;
            let sum = by_key[&key("_sum")].value;
            assert_eq!(inf.value, count, "{h}{labels}: +Inf bucket != _count");
            assert!(sum >= 0.0, "{h}{labels}: negative sum");
            if count > 0.0 {
                // _sum agrees with the buckets: every observation lies above the
                // last empty bucket's bound and below the first full one's.
                let le = |b: &Sample| b.label("le").parse::<f64>().unwrap();
                let lower = buckets
                    .iter()
                    .take_while(|b| b.value == 0.0)
                    .last()
                    .map_or(0.0, |b| le(b));
                let upper = buckets
                    .iter()
                    .find(|b| b.value == count)
                    .map_or(f64::INFINITY, |b| le(b));
                let mean = sum / count;
                assert!(
                    mean >= lower && mean <= upper,
                    "{h}{labels}: mean {mean} outside [{lower}, {upper}]"
                );
            } else {
                assert_eq!(sum, 0.0, "{h}{labels}: sum without observations");
            }
        }
    }
    for s in samples {
        assert!(
            s.value >= 0.0 && s.value.is_finite(),
            "negative or non-finite {s:?}"
        );
        let twin = |name: &str| {
            let mut t = s.clone();
            t.name = name.to_string();
            by_key[&t.key()].value
        };
        match s.name.as_str() {
            "node_memory_MemAvailable_bytes" => {
                assert!(s.value <= twin("node_memory_MemTotal_bytes"), "{s:?}")
            }
            "node_filesystem_avail_bytes" => {
                assert!(s.value <= twin("node_filesystem_size_bytes"), "{s:?}")
            }
            "app_database_connections_active" => {
                assert!(s.value <= twin("app_database_connections_max"), "{s:?}")
            }
            "node_cpu_utilization_ratio" => assert!(s.value <= 1.0, "{s:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn catalogue_has_340_series_and_every_family() {
    let e = Exporter::new(1, 16);
    e.scrape_at(T0, "us-east-1-eks-01-prod").await;
    let samples = parse(&e.scrape_at(T0 + 60, "us-east-1-eks-01-prod").await);
    assert!(samples.len() >= 340, "only {} series", samples.len());
    for f in FAMILIES {
        assert!(samples.iter().any(|s| s.name == f), "{f} missing");
    }
    let mut keys: Vec<String> = samples.iter().map(Sample::key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), samples.len(), "duplicated series");
}

#[tokio::test]
async fn counters_rise_and_invariants_hold_over_two_simulated_hours() {
    let e = Exporter::new(7, 16);
    let mut previous: Option<HashMap<String, f64>> = None;
    let mut grew = 0;
    // Scrapes every 5 minutes for two hours: long enough to cross incidents.
    for k in 0..25 {
        let samples = parse(&e.scrape_at(T0 + k * 300, "eu-west-1-eks-01-prod").await);
        check_invariants(&samples);
        let now: HashMap<String, f64> = samples
            .iter()
            .filter(|s| is_cumulative(&s.name))
            .map(|s| (s.key(), s.value))
            .collect();
        if let Some(prev) = &previous {
            for (key, v) in &now {
                assert!(*v >= prev[key], "{key} went down: {} -> {v}", prev[key]);
                if *v > prev[key] {
                    grew += 1;
                }
            }
        }
        previous = Some(now);
    }
    assert!(grew > 1000, "counters barely moved ({grew} increases)");
}

#[tokio::test]
async fn an_incident_shows_in_the_metrics() {
    // Find an error burst with the generator's own schedule, then look at it.
    let cluster = "us-east-1-eks-02-prod";
    let seed = 3;
    let t = (T0..T0 + 3 * 86_400)
        .step_by(60)
        .find(|&t| {
            mock_exporter::sim::incident_at(seed, cluster, t)
                .is_some_and(|i| i.kind == mock_exporter::sim::IncidentKind::ErrorBurst)
                && mock_exporter::sim::incident_at(seed, cluster, t + 120).is_some()
        })
        .expect("an error burst within three days");
    let e = Exporter::new(seed, 16);
    let errors = |samples: &[Sample]| -> f64 {
        samples
            .iter()
            .filter(|s| s.name == "http_requests_total" && s.label("status").starts_with('5'))
            .map(|s| s.value)
            .sum()
    };
    let before = parse(&e.scrape_at(t - 3000, cluster).await);
    let calm_start = parse(&e.scrape_at(t - 2880, cluster).await);
    let calm = errors(&calm_start) - errors(&before);
    let burst_start = parse(&e.scrape_at(t, cluster).await);
    let burst_end = parse(&e.scrape_at(t + 120, cluster).await);
    let burst = errors(&burst_end) - errors(&burst_start);
    assert!(
        burst > 5.0 * calm.max(1.0),
        "5xx in two minutes: calm {calm}, burst {burst}"
    );
}

#[tokio::test]
async fn clusters_differ_and_prod_carries_more_than_dev() {
    let e = Exporter::new(1, 16);
    let total = |samples: &[Sample]| -> f64 {
        samples
            .iter()
            .filter(|s| s.name == "http_requests_total")
            .map(|s| s.value)
            .sum()
    };
    e.scrape_at(T0, "us-east-1-eks-01-prod").await;
    e.scrape_at(T0, "ap-southeast-1-eks-01-dev").await;
    e.scrape_at(T0, "us-east-1-eks-02-prod").await;
    let prod = parse(&e.scrape_at(T0 + 600, "us-east-1-eks-01-prod").await);
    let dev = parse(&e.scrape_at(T0 + 600, "ap-southeast-1-eks-01-dev").await);
    let prod2 = parse(&e.scrape_at(T0 + 600, "us-east-1-eks-02-prod").await);
    assert!(
        total(&prod) > 3.0 * total(&dev),
        "prod {} vs dev {}",
        total(&prod),
        total(&dev)
    );
    assert_ne!(
        total(&prod),
        total(&prod2),
        "two prod clusters drew the same line"
    );
    let nodes = |s: &[Sample]| {
        s.iter()
            .find(|s| s.name == "node_memory_MemTotal_bytes")
            .unwrap()
            .label("node")
            .to_string()
    };
    assert_ne!(nodes(&prod), nodes(&dev));
}

#[tokio::test]
async fn the_same_seed_and_clock_give_the_same_values() {
    let sorted = |page: String| {
        let mut lines: Vec<String> = page.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let a = Exporter::new(99, 16);
    let b = Exporter::new(99, 16);
    let c = Exporter::new(100, 16);
    // Different scrape schedules, same clock at the end.
    a.scrape_at(T0 + 100, "x").await;
    let pa = sorted(a.scrape_at(T0 + 900, "x").await);
    let pb = sorted(b.scrape_at(T0 + 900, "x").await);
    let pc = sorted(c.scrape_at(T0 + 900, "x").await);
    assert_eq!(pa, pb);
    assert_ne!(pa, pc);
}

#[tokio::test]
async fn clusters_are_bounded_and_names_checked() {
    let e = Exporter::new(1, 2);
    e.scrape_at(T0, "a").await;
    e.scrape_at(T0, "b").await;
    e.scrape_at(T0, "a").await;
    let (status, body) = get(&e.app, "/metrics?cluster=c").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body.contains("limit of 2 distinct clusters") && body.contains("serving: a, b"),
        "{body}"
    );
    let (status, body) = get(&e.app, "/metrics?cluster=bad%20name").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Without the parameter: the default cluster (here the bound is already reached).
    let e = Exporter::new(1, 2);
    assert_eq!(get(&e.app, "/metrics").await.0, StatusCode::OK);
}

#[tokio::test]
async fn probe_answers_after_the_regions_round_trip() {
    let e = Exporter::new(1, 2);
    for (from, to) in [
        ("us-east-1", "ap-southeast-1"),
        ("eu-west-1", "us-east-1"),
        ("ap-northeast-1", "ap-northeast-1"),
    ] {
        let (low, high) = mock_exporter::probe::delay_range(from, to).unwrap();
        let start = Instant::now();
        let (status, body) = get(&e.app, &format!("/probe/{from}/{to}")).await;
        let took = start.elapsed();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(took >= low, "{from}->{to} took {took:?}, less than {low:?}");
        // The upper bound gets slack for a loaded machine; the delay itself is reported exactly.
        assert!(
            took < high + Duration::from_millis(500),
            "{from}->{to} took {took:?}"
        );
        let ms: f64 = body
            .split(": ")
            .nth(1)
            .unwrap()
            .trim_end_matches(" ms\n")
            .parse()
            .unwrap();
        assert!(
            ms >= low.as_secs_f64() * 1000.0 - 0.05 && ms <= high.as_secs_f64() * 1000.0 + 0.05,
            "{body}"
        );
    }
    let (status, body) = get(&e.app, "/probe/us-east-1/mars-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.contains("us-east-1, eu-west-1, ap-southeast-1, ap-northeast-1"),
        "{body}"
    );
}

#[tokio::test]
async fn promtool_finds_no_problem_with_our_names() {
    let e = Exporter::new(1, 2);
    e.scrape_at(T0, "x").await;
    let page = e.scrape_at(T0 + 30, "x").await;
    let (code, text) = promtool_check(&page);
    assert!(!text.contains("error while linting"), "{text}");
    // The node_exporter names the SPEC requires are camelCase, as node_exporter's
    // own are; every other name must be clean.
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !l.starts_with("node_memory_MemTotal_bytes ")
                && !l.starts_with("node_memory_MemAvailable_bytes ")
        })
        .collect();
    assert!(findings.is_empty(), "lint findings: {findings:?}");
    assert!(code == 0 || code == 3, "exit {code}: {text}");
}

#[tokio::test]
async fn openmetrics_is_served_to_scrapers_that_ask() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let e = Exporter::new(1, 2);
    let req = Request::get("/metrics")
        .header(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .body(Body::empty())
        .unwrap();
    let resp = e.app.clone().oneshot(req).await.unwrap();
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_reference_matches_a_real_scrape() {
    // The reference lives in the workspace's docs/, one level up.
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/metrics/reference.md"
    ))
    .unwrap();
    // The first table: | `family` | type | labels | unit | meaning |
    let documented: BTreeMap<String, (String, Vec<String>)> = doc
        .split("\n## ")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let mut labels: Vec<String> = cells[3]
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            labels.sort();
            (
                cells[1].trim_matches('`').to_string(),
                (cells[2].to_string(), labels),
            )
        })
        .collect();

    let e = Exporter::new(1, 2);
    let page = e.scrape_at(T0, "x").await;
    let mut served: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in page.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        served.insert(name.to_string(), (kind.to_string(), Vec::new()));
    }
    for s in parse(&page) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                s.name
                    .strip_suffix(suffix)
                    .filter(|base| served.get(*base).is_some_and(|f| f.0 == "histogram"))
            })
            .unwrap_or(&s.name)
            .to_string();
        let labels = &mut served
            .get_mut(&family)
            .unwrap_or_else(|| panic!("{} has no TYPE", s.name))
            .1;
        for k in s.labels.keys().filter(|k| *k != "le") {
            if !labels.contains(k) {
                labels.push(k.clone());
                labels.sort();
            }
        }
    }
    assert_eq!(
        documented, served,
        "docs/metrics/reference.md differs from the exporter"
    );
}
