//! Native histograms pushed in delimited protobuf (as client_golang pushes
//! them), against the real Pushgateway 1.5.1 and through the router: the
//! same pushes to both, their protobuf pages, text pages and query APIs
//! compared; replacement and deletion; refusals; the bucket limit; a real
//! Prometheus 2.42 scraping both.
//!
//! What the Pushgateway 1.5.1 does, as these tests observe it: it answers
//! 200 to every native histogram (valid or not, gauge histograms too),
//! keeps the message as sent and serves it whole on its protobuf page
//! (native fields and the classic buckets pushed beside them in one
//! `Histogram`); its text page shows only the classic buckets pushed (a
//! native-only histogram as its integer count in a `+Inf` bucket, `_count`
//! and `_sum`, so a float histogram's count as 0) and stops at a gauge
//! histogram; its query API lists a native histogram's `count` and `sum`
//! with `buckets` empty.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use promgate::proto::client::{
    Bucket, BucketSpan, Histogram, LabelPair, Metric, MetricFamily, MetricType as PbType,
};
use prost::Message;

const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const ACCEPT_PROTOBUF: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan {
        offset: Some(offset),
        length: Some(length),
    }
}

/// Request latencies as client_golang records them: schema 3, its default
/// zero threshold (2^-128), three observations in the zero bucket, a few
/// negative ones in two spans, positive ones in three spans with gaps.
fn int_native() -> Histogram {
    Histogram {
        sample_count: Some(3 + 4 + 54),
        sample_sum: Some(0.8125),
        schema: Some(3),
        zero_threshold: Some(2.938735877055719e-39),
        zero_count: Some(3),
        negative_span: vec![span(-8, 2), span(5, 1)],
        negative_delta: vec![1, 1, -1],
        positive_span: vec![span(-60, 4), span(3, 2), span(10, 3)],
        positive_delta: vec![5, 7, 8, -11, -5, -3, 1, -2, 1],
        ..Default::default()
    }
}

/// A float histogram (absolute, fractional counts), schema 0.
fn float_native() -> Histogram {
    Histogram {
        sample_count_float: Some(0.5 + 0.5 + 1.5 + 2.25 + 0.75 + 0.25),
        sample_sum: Some(3.5),
        schema: Some(0),
        zero_threshold: Some(0.001),
        zero_count_float: Some(0.5),
        negative_span: vec![span(0, 1)],
        negative_count: vec![0.5],
        positive_span: vec![span(-2, 2), span(1, 2)],
        positive_count: vec![1.5, 2.25, 0.75, 0.25],
        ..Default::default()
    }
}

/// Both forms, as client_golang sends a histogram configured with classic
/// buckets and a native schema: observations 0.3, 0.7, 0.9, 1.5, 3.
fn both_forms() -> Histogram {
    let bucket = |upper_bound: f64, count: u64| Bucket {
        cumulative_count: Some(count),
        upper_bound: Some(upper_bound),
        ..Default::default()
    };
    Histogram {
        sample_count: Some(5),
        sample_sum: Some(6.4),
        bucket: vec![bucket(0.5, 1), bucket(1.0, 3), bucket(2.0, 4)],
        schema: Some(0),
        zero_threshold: Some(2.938735877055719e-39),
        zero_count: Some(0),
        // Buckets (0.25, 0.5], (0.5, 1], (1, 2], (2, 4]: indexes -1..=2.
        positive_span: vec![span(-1, 4)],
        positive_delta: vec![1, 1, -1, 0],
        ..Default::default()
    }
}

/// A gauge histogram (sizes of the jobs in a queue now), zero threshold 0.
fn gauge_native() -> Histogram {
    Histogram {
        sample_count: Some(1 + 3 + 6 + 2),
        sample_sum: Some(41.5),
        schema: Some(2),
        zero_threshold: Some(0.0),
        zero_count: Some(1),
        positive_span: vec![span(4, 3)],
        positive_delta: vec![3, 3, -4],
        ..Default::default()
    }
}

fn family(
    name: &str,
    t: PbType,
    help: &str,
    metrics: Vec<(&[(&str, &str)], Histogram)>,
) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        help: Some(help.into()),
        r#type: Some(t as i32),
        metric: metrics
            .into_iter()
            .map(|(labels, h)| Metric {
                label: labels
                    .iter()
                    .map(|(n, v)| LabelPair {
                        name: Some(n.to_string()),
                        value: Some(v.to_string()),
                    })
                    .collect(),
                histogram: Some(h),
                ..Default::default()
            })
            .collect(),
        unit: None,
    }
}

fn delimited(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        f.encode_length_delimited(&mut out).unwrap();
    }
    out
}

/// The histograms pushed to group `job="pn"` (no gauge histogram: the
/// Pushgateway's text page stops at one).
fn pushed() -> Vec<MetricFamily> {
    vec![
        family(
            "pn_latency_seconds",
            PbType::Histogram,
            "Latency.",
            vec![
                (&[("path", "/a")], int_native()),
                (&[("path", "/b")], float_native()),
            ],
        ),
        family(
            "pn_both_seconds",
            PbType::Histogram,
            "Both forms.",
            vec![(&[], both_forms())],
        ),
    ]
}

/// A metric: family (or sample) name and labels without job and instance.
type Key = (String, Vec<(String, String)>);

/// The histogram metrics of a group on a protobuf page.
type Histograms = BTreeMap<Key, Seen>;

/// A histogram metric of a protobuf page, its messages of one name and
/// label set merged (promgate writes a native histogram and the classic
/// buckets pushed beside it as two messages of one family; the Pushgateway
/// as one): what a scraper reads.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    types: Vec<i32>,
    schema: Option<i32>,
    zero_threshold: Option<f64>,
    zero_count: f64,
    negative_span: Vec<(i32, u32)>,
    positive_span: Vec<(i32, u32)>,
    negative_delta: Vec<i64>,
    positive_delta: Vec<i64>,
    negative_count: Vec<f64>,
    positive_count: Vec<f64>,
    /// Classic buckets, a `+Inf` one holding the count left out (implied).
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// Decodes a delimited protobuf page.
fn decode_page(mut bytes: &[u8]) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(MetricFamily::decode_length_delimited(&mut bytes).expect("a delimited page"));
    }
    out
}

/// Each histogram metric of group `job` on a protobuf page, by family name
/// and labels (without `job` and `instance`).
fn histograms(page: &[MetricFamily], job: &str) -> Histograms {
    let mut out: BTreeMap<_, Seen> = BTreeMap::new();
    for f in page {
        for m in &f.metric {
            let Some(h) = &m.histogram else { continue };
            let labels: Vec<(String, String)> = m
                .label
                .iter()
                .map(|l| (l.name().to_string(), l.value().to_string()))
                .collect();
            if !labels.contains(&("job".into(), job.into())) {
                continue;
            }
            assert!(labels.iter().any(|(n, _)| n == "instance"), "{labels:?}");
            let mut labels: Vec<_> = labels
                .into_iter()
                .filter(|(n, _)| n != "job" && n != "instance")
                .collect();
            labels.sort();
            let seen = out.entry((f.name().to_string(), labels)).or_default();
            seen.types.push(f.r#type.unwrap_or(0));
            let count = match h.sample_count_float {
                Some(c) if c > 0.0 => c,
                _ => h.sample_count() as f64,
            };
            seen.count = count;
            seen.sum = h.sample_sum();
            for b in &h.bucket {
                let c = match b.cumulative_count_float {
                    Some(c) if c > 0.0 => c,
                    _ => b.cumulative_count() as f64,
                };
                if b.upper_bound() != f64::INFINITY || c != count {
                    seen.buckets.push((b.upper_bound(), c));
                }
            }
            // A span of length 0 is client_golang's (and promgate's) mark
            // of a native histogram without buckets.
            if h.schema.is_some() {
                let spans = |s: &[BucketSpan]| -> Vec<(i32, u32)> {
                    s.iter()
                        .filter(|s| s.length() > 0)
                        .map(|s| (s.offset(), s.length()))
                        .collect()
                };
                seen.schema = h.schema;
                seen.zero_threshold = h.zero_threshold;
                seen.zero_count = match h.zero_count_float {
                    Some(c) if c > 0.0 => c,
                    _ => h.zero_count() as f64,
                };
                seen.negative_span = spans(&h.negative_span);
                seen.positive_span = spans(&h.positive_span);
                seen.negative_delta = h.negative_delta.clone();
                seen.positive_delta = h.positive_delta.clone();
                seen.negative_count = h.negative_count.clone();
                seen.positive_count = h.positive_count.clone();
            }
        }
    }
    for seen in out.values_mut() {
        seen.types.dedup();
    }
    out
}

/// The Pushgateway on a free port, and a client.
struct Gateway {
    _proc: Proc,
    _dir: tempfile::TempDir,
    port: u16,
    client: reqwest::Client,
}

impl Gateway {
    async fn start() -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let (proc, port) = spawn_pushgateway(dir.path());
        let client = reqwest::Client::new();
        pushgateway_ready(&client, port).await;
        Gateway {
            _proc: proc,
            _dir: dir,
            port,
            client,
        }
    }

    async fn push(&self, method: &str, path: &str, body: Vec<u8>) -> u16 {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .client
            .request(method, format!("http://127.0.0.1:{}{path}", self.port))
            .header("content-type", PROTOBUF)
            .body(body)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }

    async fn push_text(&self, method: &str, path: &str, body: &str) -> u16 {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .client
            .request(method, format!("http://127.0.0.1:{}{path}", self.port))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }

    async fn get(&self, path: &str, accept: &str) -> Vec<u8> {
        let resp = self
            .client
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        resp.bytes().await.unwrap().to_vec()
    }
}

async fn push(app: &Router, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, String) {
    send(app, method, path, &[("content-type", PROTOBUF)], body).await
}

async fn get_accept(app: &Router, path: &str, accept: &str) -> Vec<u8> {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::get(path)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

/// The group's sample lines of a text page as (name, sorted labels without
/// job and instance) → value.
fn text_rows(page: &str, job: &str) -> BTreeMap<Key, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&format!("job=\"{job}\"")))
        .map(|l| {
            let (name, labels, value) = sample_key(l);
            let labels = labels
                .into_iter()
                .filter(|(n, _)| n != "job" && n != "instance")
                .collect();
            ((name, labels), value.parse::<f64>().unwrap())
        })
        .filter(|((name, _), _)| !name.starts_with("push_"))
        .collect()
}

fn row(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_string(), labels)
}

#[tokio::test(flavor = "multi_thread")]
async fn native_histograms_pushed_to_both_are_the_same_on_their_protobuf_pages() {
    let gw = Gateway::start().await;
    let (app, _) = app(&[]);
    let body = delimited(&pushed());
    assert_eq!(gw.push("PUT", "/metrics/job/pn", body.clone()).await, 200);
    let (status, answer) = push(&app, "PUT", "/metrics/job/pn", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Protobuf pages: every native field, count and sum, and the classic
    // buckets pushed beside the native ones.
    let theirs = histograms(
        &decode_page(&gw.get("/metrics", ACCEPT_PROTOBUF).await),
        "pn",
    );
    let ours = histograms(
        &decode_page(&get_accept(&app, "/metrics", ACCEPT_PROTOBUF).await),
        "pn",
    );
    assert_eq!(theirs.len(), 3, "{theirs:#?}");
    assert_eq!(ours, theirs);
    let latency = &ours[&row("pn_latency_seconds", &[("path", "/a")])];
    assert_eq!(
        (
            latency.schema,
            latency.zero_count,
            latency.count,
            latency.sum
        ),
        (Some(3), 3.0, 61.0, 0.8125)
    );
    assert_eq!(latency.negative_delta, [1, 1, -1]);
    let float = &ours[&row("pn_latency_seconds", &[("path", "/b")])];
    assert_eq!((float.count, float.zero_count), (5.75, 0.5));
    assert_eq!(float.positive_count, [1.5, 2.25, 0.75, 0.25]);
    let both = &ours[&row("pn_both_seconds", &[])];
    assert_eq!(both.buckets, [(0.5, 1.0), (1.0, 3.0), (2.0, 4.0)]);
    assert_eq!(both.positive_delta, [1, 1, -1, 0]);

    // Text pages, where the Pushgateway renders them: the classic buckets
    // pushed beside native ones are the same lines on both; of a
    // native-only histogram, the Pushgateway shows the integer count
    // (`+Inf`, `_count`) and `_sum`, which promgate's classic form holds
    // too, beside a bucket per native bucket.
    let theirs = text_rows(
        &String::from_utf8(gw.get("/metrics", "text/plain").await).unwrap(),
        "pn",
    );
    let ours_text = get(&app, "/metrics").await.1;
    assert_parses(&ours_text);
    let ours = text_rows(&ours_text, "pn");
    let both: Vec<_> = theirs
        .iter()
        .filter(|((n, _), _)| n.starts_with("pn_both"))
        .collect();
    assert_eq!(
        both,
        ours.iter()
            .filter(|((n, _), _)| n.starts_with("pn_both"))
            .collect::<Vec<_>>()
    );
    assert_eq!(both.len(), 3 + 1 + 2, "{both:?}");
    for ((name, labels), value) in &theirs {
        if labels.contains(&("path".into(), "/b".into())) {
            // The Pushgateway's count of a float histogram is its unset
            // integer count: 0 where promgate shows 5.75.
            if !name.ends_with("_sum") {
                assert_eq!(*value, 0.0, "{name}");
                let ours = ours[&(name.clone(), labels.clone())];
                assert_eq!(ours, 5.75, "{name}");
                continue;
            }
        }
        assert_eq!(
            ours.get(&(name.clone(), labels.clone())),
            Some(value),
            "{name}{labels:?}"
        );
    }
    let buckets = |rows: &BTreeMap<_, f64>| {
        rows.keys()
            .filter(|(n, l): &&Key| {
                n == "pn_latency_seconds_bucket" && l.contains(&("path".into(), "/a".into()))
            })
            .count()
    };
    assert_eq!(buckets(&theirs), 1, "the Pushgateway's +Inf bucket");
    assert!(buckets(&ours) > 12, "promgate's classic form: {ours:?}");

    // The query API: a native histogram's count and sum, buckets empty
    // (the classic ones where they were pushed).
    let json = |bytes: Vec<u8>| -> serde_json::Value { serde_json::from_slice(&bytes).unwrap() };
    let theirs = json(gw.get("/api/v1/metrics", "application/json").await);
    let ours = json(get_accept(&app, "/api/v1/metrics", "application/json").await);
    let metrics = |v: &serde_json::Value, family: &str| -> Vec<serde_json::Value> {
        let group = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["labels"]["job"] == "pn")
            .unwrap_or_else(|| panic!("{v}"));
        let mut m = group[family]["metrics"].as_array().unwrap().clone();
        m.sort_by_key(|m| m["labels"].to_string());
        m
    };
    let theirs_latency = metrics(&theirs, "pn_latency_seconds");
    let ours_latency = metrics(&ours, "pn_latency_seconds");
    assert_eq!(ours_latency[0], theirs_latency[0]);
    assert_eq!(
        ours_latency[0]["buckets"],
        serde_json::json!({}),
        "{ours_latency:?}"
    );
    assert_eq!(ours_latency[0]["count"], "61");
    // The float histogram: the Pushgateway lists its unset integer count.
    assert_eq!(theirs_latency[1]["count"], "0");
    assert_eq!(ours_latency[1]["count"], "5.75");
    assert_eq!(ours_latency[1]["sum"], theirs_latency[1]["sum"]);
    let theirs_both = metrics(&theirs, "pn_both_seconds");
    let ours_both = metrics(&ours, "pn_both_seconds");
    for field in ["count", "sum", "labels"] {
        assert_eq!(ours_both[0][field], theirs_both[0][field], "{field}");
    }
    for (le, count) in theirs_both[0]["buckets"].as_object().unwrap() {
        assert_eq!(&ours_both[0]["buckets"][le], count, "{le}");
    }
    for family in ["pn_latency_seconds", "pn_both_seconds"] {
        let group = |v: &serde_json::Value| {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["labels"]["job"] == "pn")
                .unwrap()[family]["type"]
                .clone()
        };
        assert_eq!(group(&ours), "HISTOGRAM");
        assert_eq!(group(&ours), group(&theirs));
    }

    // A gauge histogram, in a group of its own: the same on both protobuf
    // pages (the Pushgateway's text page now stops at it).
    let gauge = delimited(&[family(
        "pn_queue_bytes",
        PbType::GaugeHistogram,
        "Queued job sizes.",
        vec![(&[], gauge_native())],
    )]);
    assert_eq!(gw.push("PUT", "/metrics/job/pg", gauge.clone()).await, 200);
    let (status, answer) = push(&app, "PUT", "/metrics/job/pg", gauge).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let theirs = histograms(
        &decode_page(&gw.get("/metrics", ACCEPT_PROTOBUF).await),
        "pg",
    );
    let ours = histograms(
        &decode_page(&get_accept(&app, "/metrics", ACCEPT_PROTOBUF).await),
        "pg",
    );
    assert_eq!(ours, theirs);
    assert_eq!(
        ours[&row("pn_queue_bytes", &[])].types,
        [PbType::GaugeHistogram as i32]
    );
    // promgate's text page goes on past it, its classic form typed as a
    // remote-written gauge histogram's is.
    let page = get(&app, "/metrics").await.1;
    assert_parses(&page);
    assert!(
        page.contains("pn_queue_bytes_count{instance=\"\",job=\"pg\"} 12\n"),
        "{page}"
    );
    assert!(
        page.contains("push_time_seconds{instance=\"\",job=\"pg\"}"),
        "{page}"
    );
}

/// The histogram series of `name` on promgate's protobuf page, by labels
/// (without job and instance): native (`true`) or classic.
async fn on_protobuf_page(app: &Router, job: &str) -> Histograms {
    histograms(
        &decode_page(&get_accept(app, "/metrics", ACCEPT_PROTOBUF).await),
        job,
    )
}

#[tokio::test]
async fn put_replaces_a_native_histogram_with_a_float_or_classic_one_and_back() {
    let (app, state) = app(&[]);
    let native = || {
        delimited(&[family(
            "rt_seconds",
            PbType::Histogram,
            "RT.",
            vec![(&[], int_native())],
        )])
    };
    let (s, b) = push(&app, "PUT", "/metrics/job/r", native()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let page = on_protobuf_page(&app, "r").await;
    assert_eq!(page[&row("rt_seconds", &[])].schema, Some(3));
    assert_eq!(
        state.store.live_series(),
        1 + 2,
        "the histogram and the push times"
    );

    // A gauge of the same name replaces it (PUT replaces the group).
    let (s, b) = send(
        &app,
        "PUT",
        "/metrics/job/r",
        &[],
        b"# TYPE rt_seconds gauge\nrt_seconds 7\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let text = get(&app, "/metrics").await.1;
    assert!(
        text.contains("\nrt_seconds{instance=\"\",job=\"r\"} 7\n"),
        "{text}"
    );
    assert!(!text.contains("rt_seconds_bucket"), "{text}");
    assert!(on_protobuf_page(&app, "r").await.is_empty());

    // Back to native, then a classic histogram in its place.
    let (s, b) = push(&app, "PUT", "/metrics/job/r", native()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!get(&app, "/metrics").await.1.contains("rt_seconds{"));
    assert_eq!(
        on_protobuf_page(&app, "r").await[&row("rt_seconds", &[])].count,
        61.0
    );
    let (s, b) = send(
        &app,
        "PUT",
        "/metrics/job/r",
        &[],
        b"# TYPE rt_seconds histogram\nrt_seconds_bucket{le=\"1\"} 2\nrt_seconds_bucket{le=\"+Inf\"} 3\nrt_seconds_sum 1.5\nrt_seconds_count 3\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let page = on_protobuf_page(&app, "r").await;
    let classic = &page[&row("rt_seconds", &[])];
    assert_eq!((classic.schema, classic.count), (None, 3.0), "{classic:?}");
    assert_eq!(classic.buckets, [(1.0, 2.0)]);
    let text = get(&app, "/metrics").await.1;
    assert_eq!(
        text_rows(&text, "r").len(),
        4,
        "only the classic lines pushed:\n{text}"
    );
    assert_eq!(state.store.live_series(), 4 + 2);

    // And back: the classic series leave with the PUT.
    let (s, b) = push(&app, "PUT", "/metrics/job/r", native()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let page = on_protobuf_page(&app, "r").await;
    let back = &page[&row("rt_seconds", &[])];
    assert_eq!((back.schema, back.buckets.len()), (Some(3), 0), "{back:?}");
    assert_eq!(state.store.live_series(), 1 + 2);
}

#[tokio::test]
async fn post_replaces_only_the_families_it_carries_and_delete_removes_the_group() {
    let (app, state) = app(&[]);
    let (s, b) = push(
        &app,
        "PUT",
        "/metrics/job/d/instance/i",
        delimited(&pushed()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let page = get(&app, "/metrics").await.1;
    // Grouping labels applied.
    assert!(
        page.contains("pn_latency_seconds_count{instance=\"i\",job=\"d\",path=\"/a\"} 61\n"),
        "{page}"
    );
    // A POST of another family keeps the histograms.
    let (s, b) = send(
        &app,
        "POST",
        "/metrics/job/d/instance/i",
        &[],
        b"other 1\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let natives = |page: &Histograms| page.values().filter(|s| s.schema.is_some()).count();
    let json = get(&app, "/api/v1/metrics").await.1;
    assert!(json.contains("\"pn_latency_seconds\""), "{json}");
    let page = histograms(
        &decode_page(&get_accept(&app, "/metrics", ACCEPT_PROTOBUF).await),
        "d",
    );
    assert_eq!(natives(&page), 3);
    // A POST of one of them replaces that family only.
    let one = delimited(&[family(
        "pn_latency_seconds",
        PbType::Histogram,
        "Latency.",
        vec![(&[("path", "/c")], int_native())],
    )]);
    let (s, b) = push(&app, "POST", "/metrics/job/d/instance/i", one).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let page = histograms(
        &decode_page(&get_accept(&app, "/metrics", ACCEPT_PROTOBUF).await),
        "d",
    );
    let keys: Vec<_> = page.keys().cloned().collect();
    assert_eq!(
        keys,
        [
            row("pn_both_seconds", &[]),
            row("pn_latency_seconds", &[("path", "/c")])
        ]
    );
    // DELETE: nothing of the group left, on any page.
    let (s, _) = send(&app, "DELETE", "/metrics/job/d/instance/i", &[], Vec::new()).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(
        decode_page(&get_accept(&app, "/metrics", ACCEPT_PROTOBUF).await).is_empty(),
        "an empty page"
    );
    assert_eq!(get(&app, "/metrics").await.1, "");
    assert_eq!(state.store.live_series(), 0);
}

#[tokio::test]
async fn an_invalid_native_histogram_refuses_the_whole_push() {
    let (app, state) = app(&[]);
    // A group holding a gauge, to see that nothing of it changes.
    let (s, _) = send(&app, "PUT", "/metrics/job/bad", &[], b"kept 1\n".to_vec()).await;
    assert_eq!(s, StatusCode::OK);
    let before = get(&app, "/metrics").await.1;
    let valid = family(
        "fine_seconds",
        PbType::Histogram,
        "",
        vec![(&[], int_native())],
    );
    for (h, why) in [
        (
            // Three spans of 9 buckets, 8 deltas.
            Histogram {
                positive_delta: vec![5, 7, 8, -11, -5, -3, 1, -2],
                ..int_native()
            },
            "positive spans need 9 buckets, the message has 8",
        ),
        (
            // The second positive bucket's count: 5 - 7 = -2.
            Histogram {
                positive_delta: vec![5, -7, 8, -11, -5, -3, 1, -2, 1],
                ..int_native()
            },
            "negative",
        ),
        (
            Histogram {
                schema: Some(-5),
                ..int_native()
            },
            "schema -5",
        ),
    ] {
        let body = delimited(&[
            valid.clone(),
            family(
                "bad_seconds",
                PbType::Histogram,
                "",
                vec![(&[("a", "b")], h)],
            ),
        ]);
        let (s, reason) = push(&app, "PUT", "/metrics/job/bad", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{reason}");
        assert_eq!(reason.lines().count(), 1, "{reason}");
        assert!(
            reason.contains("native histogram bad_seconds{a=\"b\"} refused")
                && reason.contains(why),
            "{reason}"
        );
        // Nothing of it stored: the group as it was, but its failure time.
        let page = get(&app, "/metrics").await.1;
        let unchanged = |p: &str| {
            p.lines()
                .filter(|l| !l.starts_with("push_failure_time_seconds"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(unchanged(&page), unchanged(&before));
        assert!(!page.contains("push_failure_time_seconds{instance=\"\",job=\"bad\"} 0\n"));
    }
    assert_eq!(state.store.live_series(), 1 + 2);
    assert_eq!(
        self_metric(
            &app,
            "promgate_requests_rejected_total{reason=\"invalid_push\"}"
        )
        .await,
        3.0
    );
}

#[tokio::test]
async fn a_native_histogram_over_the_bucket_limit_is_stored_coarser_or_refused() {
    let (app, _) = app(&["--limits.native-histogram-buckets", "6"]);
    // 3 negative + 9 positive buckets at schema 3: 12, over 6.
    let body = delimited(&[family(
        "wide_seconds",
        PbType::Histogram,
        "",
        vec![(&[], int_native())],
    )]);
    let (s, b) = push(&app, "PUT", "/metrics/job/w", body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let page = on_protobuf_page(&app, "w").await;
    let h = &page[&row("wide_seconds", &[])];
    let buckets: usize = h
        .negative_span
        .iter()
        .chain(&h.positive_span)
        .map(|s| s.1 as usize)
        .sum();
    assert!(buckets <= 6 && h.schema < Some(3), "{h:?}");
    assert_eq!((h.count, h.sum, h.zero_count), (61.0, 0.8125, 3.0));
    // The counts kept: the deltas add up to the same total.
    let total: i64 = [&h.negative_delta, &h.positive_delta]
        .iter()
        .map(|d| {
            d.iter()
                .scan(0, |c, x| {
                    *c += x;
                    Some(*c)
                })
                .sum::<i64>()
        })
        .sum();
    assert_eq!(total + 3, 61);

    // Even the lowest resolution holds more than one bucket: refused.
    let (app, state) = common::app(&["--limits.native-histogram-buckets", "1"]);
    let body = delimited(&[family(
        "wide_seconds",
        PbType::Histogram,
        "",
        vec![(&[], int_native())],
    )]);
    let (s, reason) = push(&app, "PUT", "/metrics/job/w", body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{reason}");
    assert!(
        reason.contains(
            "more than --limits.native-histogram-buckets 1 even at the lowest resolution"
        ),
        "{reason}"
    );
    assert!(!get(&app, "/metrics").await.1.contains("wide_seconds"));
    assert_eq!(state.store.live_series(), 2, "the group's push times only");
}

#[tokio::test]
async fn type_conflicts_and_collisions_with_other_groups_are_refused() {
    let (app, _) = app(&[]);
    let native = |name: &str| {
        delimited(&[family(
            name,
            PbType::Histogram,
            "",
            vec![(&[], int_native())],
        )])
    };
    let (s, b) = push(&app, "PUT", "/metrics/job/a", native("h_seconds")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Another group: the same family as a gauge, a family named like its
    // classic form's series, the same family as a gauge histogram.
    for body in [
        b"# TYPE h_seconds gauge\nh_seconds 1\n".to_vec(),
        b"# TYPE h_seconds_count gauge\nh_seconds_count 1\n".to_vec(),
    ] {
        let (s, reason) = send(&app, "PUT", "/metrics/job/b", &[], body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{reason}");
    }
    let gauge = delimited(&[family(
        "h_seconds",
        PbType::GaugeHistogram,
        "",
        vec![(&[], gauge_native())],
    )]);
    let (s, reason) = push(&app, "PUT", "/metrics/job/b", gauge).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{reason}");
    assert!(
        reason.contains(
            "family \"h_seconds\" is pushed as gauge histogram but group {job=\"a\"} holds it as histogram"
        ),
        "{reason}"
    );
    // A gauge histogram, and a family named like its classic form's
    // series in another group, either way round.
    let queue = delimited(&[family(
        "q_bytes",
        PbType::GaugeHistogram,
        "",
        vec![(&[], gauge_native())],
    )]);
    let (s, b) = push(&app, "PUT", "/metrics/job/c", queue.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, reason) = send(
        &app,
        "PUT",
        "/metrics/job/b",
        &[],
        b"q_bytes_sum 1\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{reason}");
    send(&app, "DELETE", "/metrics/job/c", &[], Vec::new()).await;
    let (s, b) = send(
        &app,
        "PUT",
        "/metrics/job/c",
        &[],
        b"q_bytes_bucket{x=\"1\"} 1\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, reason) = push(&app, "PUT", "/metrics/job/b", queue).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{reason}");
    // The same histogram in another group is another series: taken.
    let (s, b) = push(&app, "PUT", "/metrics/job/b", native("h_seconds")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(on_protobuf_page(&app, "b").await.len(), 1);
    assert_eq!(on_protobuf_page(&app, "a").await.len(), 1);
}

#[tokio::test]
async fn a_pushed_native_histogram_leaves_with_its_group_at_push_ttl() {
    let (_gate, addr) = spawn_promgate(&["--push.ttl", "1s"]);
    let client = reqwest::Client::new();
    let body = delimited(&[family(
        "ttl_seconds",
        PbType::Histogram,
        "",
        vec![(&[], int_native())],
    )]);
    let resp = client
        .put(format!("http://{addr}/metrics/job/t"))
        .header("content-type", PROTOBUF)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    eventually(Duration::from_secs(30), "the group to expire", || async {
        let page = client
            .get(format!("http://{addr}/metrics"))
            .header("accept", ACCEPT_PROTOBUF)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        let left = decode_page(&page);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    let metrics = fetch_text(&client, &format!("http://{addr}/-/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains("promgate_push_groups_expired_total 1\n"),
        "{metrics}"
    );
}

/// An instant query's answer: each series' labels (without `instance`, the
/// scrape target's there) and value.
async fn instant(
    client: &reqwest::Client,
    port: u16,
    promql: &str,
) -> Result<BTreeMap<BTreeMap<String, String>, String>, String> {
    let mut out = BTreeMap::new();
    for r in query(client, port, promql).await? {
        let mut labels: BTreeMap<String, String> =
            serde_json::from_value(r["metric"].clone()).map_err(|e| e.to_string())?;
        labels.remove("instance");
        let value = r["value"][1]
            .as_str()
            .ok_or_else(|| format!("{promql}: {r}"))?
            .to_string();
        out.insert(labels, value);
    }
    Ok(out)
}

/// Prometheus 2.42 with native histograms scraping the protobuf pages of
/// promgate and of the Pushgateway, after the same pushes: the same native
/// histograms, as PromQL reads them. Of a histogram pushed with classic
/// buckets too, each keeps the native one; from promgate's page (one
/// message of the native histogram, one of the classic buckets) it keeps
/// the classic series as well, which from the Pushgateway's (one message
/// of both) it drops, as 2.42 parses a message with native buckets as a
/// native histogram only.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scraping_both_holds_the_same_native_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (_gate, addr) = spawn_promgate(&[]);
    let gw = Gateway::start().await;
    let groups = [
        ("/metrics/job/pn", delimited(&pushed())),
        (
            "/metrics/job/pg",
            delimited(&[family(
                "pn_queue_bytes",
                PbType::GaugeHistogram,
                "Queued job sizes.",
                vec![(&[], gauge_native())],
            )]),
        ),
    ];
    for (path, body) in &groups {
        assert_eq!(gw.push("PUT", path, body.clone()).await, 200);
        let resp = client
            .put(format!("http://{addr}{path}"))
            .header("content-type", PROTOBUF)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let prometheus = |name: &str, target: String| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("prometheus.yml"),
            format!(
                "scrape_configs:\n  - job_name: push\n    scrape_interval: 1s\n    honor_labels: true\n    static_configs: [{{targets: ['{target}']}}]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let p = spawn(
            &tool("prometheus"),
            &[
                "--config.file=prometheus.yml".to_string(),
                "--storage.tsdb.path=data".into(),
                "--enable-feature=native-histograms".into(),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ],
            &d,
        );
        (p, port)
    };
    let (_a, ours) = prometheus("a", addr.to_string());
    let (_b, theirs) = prometheus("b", format!("127.0.0.1:{}", gw.port));

    let queries = [
        "histogram_count({__name__=~\"pn_(latency_seconds|both_seconds|queue_bytes)\"})",
        "histogram_sum({__name__=~\"pn_(latency_seconds|both_seconds|queue_bytes)\"})",
        "histogram_quantile(0.5, {__name__=~\"pn_(latency_seconds|both_seconds|queue_bytes)\"})",
        "histogram_fraction(0, 1, {__name__=~\"pn_(latency_seconds|both_seconds|queue_bytes)\"})",
    ];
    for promql in queries {
        let want = eventually(
            Duration::from_secs(60),
            &format!("{promql} from the Pushgateway's page"),
            || async {
                let r = instant(&client, theirs, promql).await?;
                if r.len() == 4 {
                    Ok(r)
                } else {
                    Err(format!("{r:?}"))
                }
            },
        )
        .await;
        eventually(
            Duration::from_secs(60),
            &format!("{promql} from promgate's page, equal to {want:?}"),
            || async {
                let got = instant(&client, ours, promql).await?;
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            },
        )
        .await;
    }
    // The counts as pushed (the float histogram's too).
    let counts = instant(&client, ours, queries[0]).await.unwrap();
    let mut values: Vec<&str> = counts.values().map(String::as_str).collect();
    values.sort_unstable();
    assert_eq!(values, ["12", "5", "5.75", "61"], "{counts:?}");

    // The classic buckets pushed beside native ones.
    let classic = "count({__name__=~\"pn_both_seconds_(bucket|count|sum)\"})";
    eventually(
        Duration::from_secs(60),
        "the classic series from promgate's page",
        || async {
            let r = instant(&client, ours, classic).await?;
            match r.values().next().map(String::as_str) {
                // Four buckets (`+Inf` too), `_count`, `_sum`.
                Some("6") => Ok(()),
                _ => Err(format!("{r:?}")),
            }
        },
    )
    .await;
    let from_pushgateway = instant(&client, theirs, classic).await.unwrap();
    assert!(from_pushgateway.is_empty(), "{from_pushgateway:?}");
}

/// The real binary with `--persistence.file`: a graceful restart keeps the
/// pushed native histograms, every page and the query API as they were.
#[tokio::test(flavor = "multi_thread")]
async fn pushed_native_histograms_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot");
    let start = || spawn_promgate(&["--persistence.file", file.to_str().unwrap()]);
    let stop = |mut p: Proc| {
        let pid = p.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        assert_eq!(p.child.wait().unwrap().code(), Some(0));
    };
    let client = reqwest::Client::new();
    let pages = |addr: std::net::SocketAddr| {
        let client = client.clone();
        async move {
            let get = |path: &'static str, accept: &'static str| {
                let client = client.clone();
                async move {
                    client
                        .get(format!("http://{addr}{path}"))
                        .header("accept", accept)
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap()
                        .to_vec()
                }
            };
            let text = String::from_utf8(get("/metrics", "text/plain").await).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            let protobuf = histograms(&decode_page(&get("/metrics", ACCEPT_PROTOBUF).await), "pn");
            let api: serde_json::Value =
                serde_json::from_slice(&get("/api/v1/metrics", "application/json").await).unwrap();
            (
                lines,
                protobuf,
                api["data"][0]["pn_latency_seconds"].clone(),
            )
        }
    };
    let (gate, addr) = start();
    let resp = client
        .put(format!("http://{addr}/metrics/job/pn"))
        .header("content-type", PROTOBUF)
        .body(delimited(&pushed()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let before = pages(addr).await;
    assert_eq!(before.1.len(), 3);
    stop(gate);
    let (gate, addr) = start();
    let after = pages(addr).await;
    assert_eq!(after, before);
    stop(gate);
}

/// The staleness marker's bit pattern, pushed in protobuf (a push has no
/// notion of staleness; only a protobuf body can carry the bits): a gauge
/// with it and a native histogram whose sum is it are stored as ordinary
/// NaNs, shown as `NaN` on the text page as the Pushgateway shows them, and
/// never served as the marker on the protobuf page, where a scraper would
/// take the series for stale at every scrape.
#[tokio::test]
async fn a_pushed_staleness_marker_is_an_ordinary_nan() {
    let (app, _) = app(&[]);
    let stale = f64::from_bits(promgate::model::STALE_NAN_BITS);
    let mut h = int_native();
    h.sample_sum = Some(stale);
    let gauge = MetricFamily {
        name: Some("st_gauge".into()),
        help: Some("G.".into()),
        r#type: Some(PbType::Gauge as i32),
        metric: vec![Metric {
            gauge: Some(promgate::proto::client::Gauge { value: Some(stale) }),
            ..Default::default()
        }],
        unit: None,
    };
    let body = delimited(&[
        gauge,
        family("st_seconds", PbType::Histogram, "H.", vec![(&[], h)]),
    ]);
    let (s, b) = push(&app, "PUT", "/metrics/job/st", body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let text = get(&app, "/metrics").await.1;
    assert!(
        text.contains("st_gauge{instance=\"\",job=\"st\"} NaN"),
        "{text}"
    );
    assert!(
        text.contains("st_seconds_sum{instance=\"\",job=\"st\"} NaN"),
        "{text}"
    );
    let page = decode_page(&get_accept(&app, "/metrics", ACCEPT_PROTOBUF).await);
    let values: Vec<f64> = page
        .iter()
        .filter(|f| f.name().starts_with("st_"))
        .flat_map(|f| &f.metric)
        .filter_map(|m| {
            m.gauge
                .as_ref()
                .and_then(|g| g.value)
                .or(m.histogram.as_ref().and_then(|h| h.sample_sum))
        })
        .collect();
    assert_eq!(values.len(), 2, "{page:?}");
    for v in values {
        assert!(v.is_nan() && !promgate::model::is_stale_marker(v), "{v:?}");
    }
}

/// `GET /api/v1/metrics` writes values as the Pushgateway's does, in Go's
/// shortest formatting (`1.2345675e+06`, `1e-07`, a tie at 17 digits to
/// the even one), where the page writes its own: compared byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn the_query_api_writes_values_as_the_pushgateway_does() {
    let gw = Gateway::start().await;
    let (app, _) = app(&[]);
    let body = "# TYPE v gauge\n\
        v{k=\"a\"} 1234567.5\nv{k=\"b\"} 1e-7\nv{k=\"c\"} 1e21\nv{k=\"d\"} 0.1\n\
        v{k=\"e\"} 123456\nv{k=\"f\"} -2.5e-05\nv{k=\"g\"} 1796031508.61328125\n\
        v{k=\"h\"} NaN\nv{k=\"i\"} +Inf\nv{k=\"j\"} 0.30000000000000004\n\
        # TYPE s summary\ns{quantile=\"0.99\"} 3.5e6\ns_sum 7e-5\ns_count 2\n\
        # TYPE h histogram\nh_bucket{le=\"1e-05\"} 1\nh_bucket{le=\"+Inf\"} 3\nh_sum 12345678.25\nh_count 3\n";
    assert_eq!(gw.push_text("PUT", "/metrics/job/v", body).await, 200);
    let (status, answer) = send(&app, "PUT", "/metrics/job/v", &[], body.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let json = |bytes: Vec<u8>| -> serde_json::Value { serde_json::from_slice(&bytes).unwrap() };
    let theirs = json(gw.get("/api/v1/metrics", "application/json").await);
    let ours = json(get_accept(&app, "/api/v1/metrics", "application/json").await);
    let metrics = |v: &serde_json::Value, family: &str| -> Vec<serde_json::Value> {
        let group = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["labels"]["job"] == "v")
            .unwrap_or_else(|| panic!("{v}"));
        let mut m = group[family]["metrics"].as_array().unwrap().clone();
        m.sort_by_key(|m| m["labels"].to_string());
        m
    };
    for family in ["v", "s", "h"] {
        let (ours, theirs) = (metrics(&ours, family), metrics(&theirs, family));
        assert_eq!(ours.len(), if family == "v" { 10 } else { 1 });
        assert_eq!(ours, theirs, "{family}");
    }
    assert_eq!(metrics(&ours, "v")[0]["value"], "1.2345675e+06");
}
