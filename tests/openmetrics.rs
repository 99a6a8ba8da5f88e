//! OpenMetrics 1.0 pages (`Accept: application/openmetrics-text`), each
//! read by the strictest parser of the format, PyPI's `prometheus_client`
//! (`openmetrics.parser`), and compared with what was sent: the rules of
//! `exposition/openmetrics.rs`, one test each, and a property test over
//! random accepted requests (awkward values, histograms torn or whole,
//! counters NaN or negative, names that clash).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use common::*;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tower::ServiceExt;

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

/// A sample as the parser reads it: name, labels, value, timestamp (s),
/// exemplar (labels, value, timestamp).
type Parsed = (
    String,
    BTreeMap<String, String>,
    f64,
    Option<f64>,
    Option<ParsedExemplar>,
);

/// An exemplar as the parser reads it.
type ParsedExemplar = (BTreeMap<String, String>, f64, Option<f64>);

/// A family as the parser reads it: name, type, help, unit.
type ParsedFamily = (String, String, String, String);

/// A page as the parser reads it, or its error.
type ParsedPage = Result<(Vec<ParsedFamily>, Vec<Parsed>), String>;

/// A series sent: labels, value, timestamp.
type Sent = (Vec<(String, String)>, f64, i64);

/// Parses each page with `prometheus_client.openmetrics.parser` in one
/// Python process; per page its families and samples, or the parser's error.
fn parse_pages(pages: &[String]) -> Vec<ParsedPage> {
    const READ: &str = r#"
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for page in json.load(sys.stdin):
    try:
        fams, samples = [], []
        for f in text_string_to_metric_families(page):
            fams.append([f.name, f.type, f.documentation, f.unit])
            for s in f.samples:
                v = s.value
                v = "NaN" if math.isnan(v) else ("+Inf" if v == math.inf else ("-Inf" if v == -math.inf else v))
                ts = None if s.timestamp is None else float(s.timestamp)
                ex = None
                if s.exemplar is not None:
                    ets = None if s.exemplar.timestamp is None else float(s.exemplar.timestamp)
                    ex = [s.exemplar.labels, s.exemplar.value, ets]
                samples.append([s.name, s.labels, v, ts, ex])
        out.append({"ok": [fams, samples]})
    except Exception as e:
        out.append({"err": repr(e)})
print(json.dumps(out))
"#;
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", READ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(pages).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            if let Some(e) = r.get("err") {
                return Err(e.as_str().unwrap().to_string());
            }
            let ok = &r["ok"];
            let fams = ok[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let s = |i: usize| f[i].as_str().unwrap().to_string();
                    (s(0), s(1), s(2), s(3))
                })
                .collect();
            let samples = ok[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let labels = s[1]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect();
                    let value = match &s[2] {
                        serde_json::Value::String(t) => match t.as_str() {
                            "NaN" => f64::NAN,
                            "+Inf" => f64::INFINITY,
                            _ => f64::NEG_INFINITY,
                        },
                        v => v.as_f64().unwrap(),
                    };
                    let exemplar = s[4].as_array().map(|e| {
                        let labels = e[0]
                            .as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                            .collect();
                        (labels, e[1].as_f64().unwrap(), e[2].as_f64())
                    });
                    (
                        s[0].as_str().unwrap().to_string(),
                        labels,
                        value,
                        s[3].as_f64(),
                        exemplar,
                    )
                })
                .collect();
            Ok((fams, samples))
        })
        .collect()
}

fn parse_page(page: &str) -> (Vec<ParsedFamily>, Vec<Parsed>) {
    parse_pages(&[page.to_string()])
        .pop()
        .unwrap()
        .unwrap_or_else(|e| panic!("the OpenMetrics parser refused the page: {e}\n{page}"))
}

/// GETs /metrics as an OpenMetrics scraper; (Content-Type, page).
async fn scrape(app: &Router) -> (String, String) {
    let resp = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .header("accept", OPENMETRICS)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (ct, String::from_utf8(body.to_vec()).unwrap())
}

fn family<'a>(fams: &'a [ParsedFamily], name: &str) -> &'a ParsedFamily {
    fams.iter()
        .find(|f| f.0 == name)
        .unwrap_or_else(|| panic!("no family {name} in {fams:?}"))
}

#[tokio::test]
async fn counters_are_families_without_total_and_never_nan_or_negative() {
    let (app, _) = app(&[]);
    let req = request(
        &[
            (
                &[("__name__", "requests_total"), ("code", "200")],
                &[(7.0, 5000)],
            ),
            (
                &[("__name__", "requests_total"), ("code", "500")],
                &[(f64::NAN, 5000)],
            ),
            (
                &[("__name__", "requests_total"), ("code", "503")],
                &[(-1.0, 5000)],
            ),
            // A counter named without the suffix cannot be one here.
            (&[("__name__", "jobs_done")], &[(3.0, 5000)]),
        ],
        &[
            (
                "requests_total",
                MetricType::Counter,
                "Requests \"served\".",
            ),
            ("jobs_done", MetricType::Counter, "Jobs."),
        ],
    );
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");
    let (ct, page) = scrape(&app).await;
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
    );
    assert!(page.ends_with("# EOF\n"), "{page}");
    let (fams, samples) = parse_page(&page);
    assert_eq!(
        family(&fams, "requests").1,
        "counter",
        "the family is named without _total"
    );
    assert_eq!(family(&fams, "requests").2, "Requests \"served\".");
    assert_eq!(family(&fams, "jobs_done").1, "unknown");
    let got: Vec<_> = samples
        .iter()
        .map(|s| (s.0.as_str(), s.1.get("code").map(String::as_str), s.2, s.3))
        .collect();
    assert_eq!(
        got,
        [
            ("jobs_done", None, 3.0, Some(5.0)),
            ("requests_total", Some("200"), 7.0, Some(5.0)),
        ]
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_series_dropped_total{reason=\"openmetrics_invalid\"}"
        )
        .await,
        2.0
    );
    // The text page keeps them all.
    let (_, text) = get(&app, "/metrics").await;
    assert_eq!(sample_lines(&text).len(), 4, "{text}");
}

#[tokio::test]
async fn whole_histograms_and_summaries_are_typed_and_torn_ones_are_not() {
    let (app, _) = app(&[]);
    const T: i64 = 1_700_000_000_123;
    let b = |le: &'static str, v: f64, job: &'static str| -> Series<'static> {
        let labels: &'static [(&str, &str)] = Box::leak(Box::new([
            ("__name__", "lat_seconds_bucket"),
            ("job", job),
            ("le", le),
        ]));
        (labels, Box::leak(Box::new([(v, T)])))
    };
    let mut series: Vec<Series> = vec![
        // Job a: whole (buckets sent out of order).
        b("+Inf", 4.0, "a"),
        b("0.1", 1.0, "a"),
        b("1", 3.0, "a"),
        (
            &[("__name__", "lat_seconds_count"), ("job", "a")],
            &[(4.0, T)],
        ),
        (
            &[("__name__", "lat_seconds_sum"), ("job", "a")],
            &[(2.5, T)],
        ),
        // A summary, whole.
        (&[("__name__", "rpc"), ("quantile", "0.5")], &[(0.2, T)]),
        (&[("__name__", "rpc"), ("quantile", "0.99")], &[(0.9, T)]),
        (&[("__name__", "rpc_count")], &[(10.0, T)]),
        (&[("__name__", "rpc_sum")], &[(3.0, T)]),
    ];
    let md = [
        ("lat_seconds", MetricType::Histogram, "Latency."),
        ("rpc", MetricType::Summary, "RPCs."),
    ];
    let (status, body) = write(&app, &request(&series, &md)).await;
    assert_eq!(status, 204, "{body}");
    let (_, page) = scrape(&app).await;
    let (fams, samples) = parse_page(&page);
    assert_eq!(family(&fams, "lat_seconds").1, "histogram");
    assert_eq!(family(&fams, "rpc").1, "summary");
    // Buckets in order of le, then count and sum; timestamps in seconds.
    let lat: Vec<_> = samples
        .iter()
        .filter(|s| s.0.starts_with("lat_seconds"))
        .map(|s| (s.0.as_str(), s.1.get("le").cloned(), s.2, s.3))
        .collect();
    assert_eq!(
        lat,
        [
            (
                "lat_seconds_bucket",
                Some("0.1".into()),
                1.0,
                Some(1_700_000_000.123)
            ),
            (
                "lat_seconds_bucket",
                Some("1".into()),
                3.0,
                Some(1_700_000_000.123)
            ),
            (
                "lat_seconds_bucket",
                Some("+Inf".into()),
                4.0,
                Some(1_700_000_000.123)
            ),
            ("lat_seconds_count", None, 4.0, Some(1_700_000_000.123)),
            ("lat_seconds_sum", None, 2.5, Some(1_700_000_000.123)),
        ]
    );

    // Job b torn: its count disagrees with its +Inf bucket. The family is
    // then its three names, each unknown, every sample still there.
    series = vec![
        b("+Inf", 9.0, "b"),
        (
            &[("__name__", "lat_seconds_count"), ("job", "b")],
            &[(8.0, T)],
        ),
        (
            &[("__name__", "lat_seconds_sum"), ("job", "b")],
            &[(1.0, T)],
        ),
    ];
    let (status, body) = write(&app, &request(&series, &[])).await;
    assert_eq!(status, 204, "{body}");
    let (_, page) = scrape(&app).await;
    let (fams, samples) = parse_page(&page);
    for name in ["lat_seconds_bucket", "lat_seconds_count", "lat_seconds_sum"] {
        assert_eq!(family(&fams, name).1, "unknown", "{page}");
    }
    assert!(fams.iter().all(|f| f.0 != "lat_seconds"), "{fams:?}");
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.0.starts_with("lat_seconds"))
            .count(),
        8
    );
    assert_eq!(family(&fams, "rpc").1, "summary");
}

#[tokio::test]
async fn names_a_typed_family_claims_are_never_another_familys() {
    let (app, _) = app(&[]);
    let req = request(
        &[
            // Counter `x` claims `x`, which is also a gauge here.
            (&[("__name__", "x_total")], &[(1.0, 5000)]),
            (&[("__name__", "x")], &[(2.0, 5000)]),
            // Histogram `h` claims `h_sum`, a summary of its own here.
            (&[("__name__", "h_bucket"), ("le", "+Inf")], &[(1.0, 5000)]),
            (&[("__name__", "h_sum"), ("quantile", "1")], &[(3.0, 5000)]),
        ],
        &[
            ("x_total", MetricType::Counter, ""),
            ("x", MetricType::Gauge, ""),
            ("h", MetricType::Histogram, ""),
            ("h_sum", MetricType::Summary, ""),
        ],
    );
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");
    let (_, page) = scrape(&app).await;
    let (fams, samples) = parse_page(&page);
    assert_eq!(family(&fams, "x").1, "gauge");
    assert_eq!(family(&fams, "x_total").1, "unknown");
    assert_eq!(family(&fams, "h_bucket").1, "unknown");
    assert_eq!(family(&fams, "h_sum").1, "unknown");
    assert_eq!(samples.len(), 4, "{page}");
}

/// The text format's created timestamps (`prometheus_client` writes a
/// gauge `x_created` beside each counter, histogram and summary `x`; a
/// Prometheus scraping OpenMetrics forwards `x_created` series with `x`'s
/// metadata) are the `_created` samples of `x` on an OpenMetrics page,
/// which keeps `x` typed: each with its MetricPoint, the earlier line
/// first, one of no MetricPoint on its own in a counter. Where one cannot
/// go with its MetricPoint (a histogram's at another time), the two
/// families are written apart, nothing lost.
#[tokio::test]
async fn created_families_are_the_created_samples_of_their_family() {
    let (app, _) = app(&[]);
    let req = request(
        &[
            (
                &[("__name__", "requests_total"), ("code", "200")],
                &[(7.0, 5000)],
            ),
            (
                &[("__name__", "requests_created"), ("code", "200")],
                &[(1.7e9, 5000)],
            ),
            (
                &[("__name__", "requests_total"), ("code", "500")],
                &[(3.0, 6000)],
            ),
            (
                &[("__name__", "requests_created"), ("code", "500")],
                &[(1.6e9, 4000)],
            ),
            (
                &[("__name__", "requests_created"), ("code", "404")],
                &[(1.5e9, 5000)],
            ),
            (&[("__name__", "lat_bucket"), ("le", "1")], &[(1.0, 5000)]),
            (
                &[("__name__", "lat_bucket"), ("le", "+Inf")],
                &[(2.0, 5000)],
            ),
            (&[("__name__", "lat_count")], &[(2.0, 5000)]),
            (&[("__name__", "lat_sum")], &[(0.5, 5000)]),
            (&[("__name__", "lat_created")], &[(1.7e9, 5000)]),
            (&[("__name__", "rpc"), ("quantile", "0.5")], &[(1.0, 5000)]),
            (&[("__name__", "rpc_count")], &[(1.0, 5000)]),
            (&[("__name__", "rpc_sum")], &[(2.0, 5000)]),
            (&[("__name__", "rpc_created")], &[(1.6e9, 5000)]),
            (
                &[("__name__", "late_bucket"), ("le", "+Inf")],
                &[(1.0, 5000)],
            ),
            (&[("__name__", "late_count")], &[(1.0, 5000)]),
            (&[("__name__", "late_sum")], &[(1.0, 5000)]),
            (&[("__name__", "late_created")], &[(9.0, 6000)]),
        ],
        &[
            ("requests_total", MetricType::Counter, "Requests."),
            ("requests_created", MetricType::Gauge, "Created."),
            ("lat", MetricType::Histogram, "Latency."),
            ("lat_created", MetricType::Gauge, "Created."),
            ("rpc", MetricType::Summary, "RPCs."),
            ("late", MetricType::Histogram, "Late."),
            ("late_created", MetricType::Gauge, "Created."),
        ],
    );
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");
    let (_, page) = scrape(&app).await;
    let (fams, samples) = parse_page(&page);
    assert_eq!(family(&fams, "requests").1, "counter", "{page}");
    assert_eq!(family(&fams, "requests").2, "Requests.");
    assert_eq!(family(&fams, "lat").1, "histogram", "{page}");
    assert_eq!(family(&fams, "rpc").1, "summary", "{page}");
    for folded in ["requests_created", "lat_created", "rpc_created"] {
        assert!(fams.iter().all(|f| f.0 != folded), "{folded}: {page}");
    }
    // At another time than its MetricPoint: apart, the histogram untyped.
    assert_eq!(family(&fams, "late_bucket").1, "unknown", "{page}");
    assert_eq!(family(&fams, "late_created").1, "gauge", "{page}");
    assert_eq!(samples.len(), 18, "every series sent: {page}");
    let line = |name: &str, code: Option<&str>| {
        samples
            .iter()
            .position(|s| s.0 == name && s.1.get("code").map(String::as_str) == code)
            .unwrap_or_else(|| panic!("no {name} {code:?}: {page}"))
    };
    let created = &samples[line("requests_created", Some("500"))];
    assert_eq!((created.2, created.3), (1.6e9, Some(4.0)));
    // Each with its MetricPoint, the earlier line first.
    assert_eq!(
        line("requests_total", Some("200")) + 1,
        line("requests_created", Some("200"))
    );
    assert_eq!(
        line("requests_created", Some("500")) + 1,
        line("requests_total", Some("500"))
    );
    assert_eq!(line("lat_sum", None) + 1, line("lat_created", None));
    assert_eq!(line("rpc_sum", None) + 1, line("rpc_created", None));
    let alone = &samples[line("requests_created", Some("404"))];
    assert_eq!((alone.2, alone.3), (1.5e9, Some(5.0)));
}

/// What the reviewer pushed from `prometheus_client`'s text output: a
/// counter and a histogram, each with its `_created` gauge, typed on the
/// OpenMetrics page; a `_created` line that would have a timestamp in a
/// MetricPoint whose other lines have none (pushed and remote-written
/// alike) is written apart, the counter then untyped.
#[tokio::test]
async fn pushed_created_gauges_keep_their_family_typed() {
    let (app, _) = app(&[]);
    let text = "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 3\n\
        # HELP jobs_created Jobs.\n# TYPE jobs_created gauge\njobs_created 1.7e+09\n\
        # HELP took Took.\n# TYPE took histogram\ntook_bucket{le=\"1\"} 1\n\
        took_bucket{le=\"+Inf\"} 1\ntook_count 1\ntook_sum 0.5\n\
        # HELP took_created Took.\n# TYPE took_created gauge\ntook_created 1.7e+09\n";
    let (status, body) = send(&app, "PUT", "/metrics/job/batch", &[], text.into()).await;
    assert_eq!(status, 200, "{body}");
    let text = "# TYPE mixed_created gauge\nmixed_created 1.6e+09\n";
    let group = "/metrics/job/batch/instance/i1";
    let (status, body) = send(&app, "PUT", group, &[], text.into()).await;
    assert_eq!(status, 200, "{body}");
    let req = request(
        &[(
            &[
                ("__name__", "mixed_total"),
                ("instance", "i1"),
                ("job", "batch"),
            ],
            &[(1.0, 5000)],
        )],
        &[("mixed_total", MetricType::Counter, "")],
    );
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");
    let (_, page) = scrape(&app).await;
    let (fams, samples) = parse_page(&page);
    assert_eq!(family(&fams, "jobs").1, "counter", "{page}");
    assert_eq!(family(&fams, "took").1, "histogram", "{page}");
    assert!(
        fams.iter()
            .all(|f| f.0 != "jobs_created" && f.0 != "took_created")
    );
    assert!(
        samples
            .iter()
            .any(|s| s.0 == "jobs_created" && s.2 == 1.7e9),
        "{page}"
    );
    assert_eq!(family(&fams, "mixed_created").1, "gauge", "{page}");
    assert_eq!(family(&fams, "mixed_total").1, "unknown", "{page}");
    // The pushes' 7 and 1 lines, each group's push_time_seconds and
    // push_failure_time_seconds, and the remote-written counter.
    assert_eq!(samples.len(), 13, "{page}");
}

#[tokio::test]
async fn a_unit_is_written_where_the_family_name_ends_in_it() {
    use common::v2::{Builder, write2};
    use promgate::proto::v2::metadata::MetricType as V2Type;
    let (app, _) = app(&[]);
    let mut b = Builder::new();
    let with_unit = |b: &mut Builder, name: &str| {
        let md = b.metadata(V2Type::Gauge, "Temperature.", "celsius");
        let refs = b.refs(&[("__name__", name)]);
        promgate::proto::v2::TimeSeries {
            labels_refs: refs,
            samples: vec![common::v2::sample(21.5, 5000)],
            metadata: Some(md),
            ..Default::default()
        }
    };
    let a = with_unit(&mut b, "room_temperature_celsius");
    let c = with_unit(&mut b, "room_temperature");
    let req = b.raw(a).raw(c).build();
    let answer = write2(&app, &req).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    let (_, page) = scrape(&app).await;
    let (fams, _) = parse_page(&page);
    assert_eq!(family(&fams, "room_temperature_celsius").3, "celsius");
    // The spec forbids a unit the name does not end in: left out.
    assert_eq!(family(&fams, "room_temperature").3, "");
    assert!(
        page.contains("# UNIT room_temperature_celsius celsius\n"),
        "{page}"
    );
}

/// Random requests, each page parsed: every page the strict parser takes,
/// holding every series sent (torn histograms untyped, NaN or negative
/// counter samples left off and counted), with values and timestamps.
#[test]
fn any_accepted_request_renders_a_page_the_parser_reads_back() {
    use promgate::exposition::{Escaping, RenderOptions, TimestampPolicy, render_openmetrics};
    use promgate::ingest::{Decoder, Encoding, Format, Protocol};
    use promgate::store::Store;
    const NOW_MS: i64 = 1_700_000_000_000;
    let names = [
        "up",
        "c_total",
        "c",
        "h_bucket",
        "h_count",
        "h_sum",
        "h",
        "s",
        "s_count",
        "s_sum",
        "g.dotted",
        "h_created",
        "c_created",
        "s_created",
    ];
    let types = [
        ("c_total", MetricType::Counter),
        ("c", MetricType::Gauge),
        ("h", MetricType::Histogram),
        ("s", MetricType::Summary),
        ("up", MetricType::Counter),
        ("c_created", MetricType::Gauge),
    ];
    let label = prop_oneof![
        Just(("job", "a")),
        Just(("job", "b")),
        Just(("le", "1")),
        Just(("le", "+Inf")),
        Just(("le", "0.5")),
        Just(("quantile", "0.5")),
        Just(("quantile", "1")),
        Just(("path", "\"q\\\n")),
        Just(("service.name", "x")),
    ];
    let value = prop_oneof![
        (0u32..5).prop_map(f64::from),
        Just(f64::NAN),
        Just(-1.0),
        Just(2.5),
        Just(f64::INFINITY),
    ];
    let series = (
        0..names.len(),
        proptest::collection::vec(label, 0..3),
        value,
        0i64..3,
    );
    let strategy = (
        proptest::collection::vec(series, 1..25),
        proptest::collection::vec(0..types.len(), 0..5),
    );
    let config = promgate::config::Config::default();
    let limits = config.decode_limits();
    let opts = RenderOptions {
        timestamps: TimestampPolicy::Original,
        chunk_bytes: 1024,
        escaping: Escaping::Underscores,
        native_histogram_max_buckets: 0,
    };
    let mut runner = TestRunner::deterministic();
    let mut pages = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..200 {
        let (series, md) = strategy.new_tree(&mut runner).unwrap().current();
        let mut owned: Vec<Sent> = Vec::new();
        for (name, labels, value, ts) in series {
            let mut l = vec![("__name__".to_string(), names[name].to_string())];
            for (n, v) in labels {
                if !l.iter().any(|(k, _)| k == n) {
                    l.push((n.to_string(), v.to_string()));
                }
            }
            owned.push((l, value, NOW_MS - 1000 * ts));
        }
        type Borrowed<'a> = (Vec<(&'a str, &'a str)>, [(f64, i64); 1]);
        let req_series: Vec<Borrowed> = owned
            .iter()
            .map(|(l, v, t)| {
                (
                    l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
                    [(*v, *t)],
                )
            })
            .collect();
        let req_series: Vec<Series> = req_series.iter().map(|(l, s)| (&l[..], &s[..])).collect();
        let metadata: Vec<(&str, MetricType, &str)> = md
            .iter()
            .map(|&i| (types[i].0, types[i].1, "help"))
            .collect();
        let body = snappy(&request(&req_series, &metadata));
        let store = Store::new(config.store_limits());
        let format = Format {
            protocol: Protocol::RemoteWrite1,
            encoding: Encoding::Snappy,
        };
        let batch = Decoder::default()
            .decode(format, &body, &limits, NOW_MS)
            .expect("decodes")
            .clone();
        store.apply(&batch);
        let mut page = Vec::new();
        let stats = render_openmetrics(&store, &opts, &mut page).unwrap();
        expected.push((store.live_series() as u64, stats));
        pages.push(String::from_utf8(page).unwrap());
    }
    for (i, parsed) in parse_pages(&pages).into_iter().enumerate() {
        let (_, samples) =
            parsed.unwrap_or_else(|e| panic!("the parser refused a page: {e}\n{}", pages[i]));
        let (live, stats) = expected[i];
        assert_eq!(
            samples.len() as u64 + stats.dropped + stats.invalid,
            live,
            "every series on the page or counted:\n{}",
            pages[i]
        );
        assert_eq!(samples.len() as u64, stats.series, "{}", pages[i]);
    }
}

/// The latest exemplar of a counter's series and of a histogram's buckets
/// is on the OpenMetrics page, as sent; a gauge's is not (the format allows
/// none there), and the text page has none.
#[tokio::test]
async fn exemplars_ride_on_counters_and_histogram_buckets() {
    use promgate::proto::{Exemplar, Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
    let label = |n: &str, v: &str| Label {
        name: n.into(),
        value: v.into(),
    };
    let series = |labels: Vec<Label>, value: f64, exemplars: Vec<Exemplar>| TimeSeries {
        labels,
        samples: vec![Sample {
            value,
            timestamp: 1_700_000_000_500,
        }],
        exemplars,
        ..Default::default()
    };
    let exemplar = |trace: &str, value: f64, ts: i64| Exemplar {
        labels: vec![label("trace_id", trace), label("service.name", "api")],
        value,
        timestamp: ts,
    };
    let bucket = |le: &str, v: f64, ex: Vec<Exemplar>| {
        series(
            vec![label("__name__", "lat_bucket"), label("le", le)],
            v,
            ex,
        )
    };
    let md = |name: &str, t: MetricType| MetricMetadata {
        r#type: t as i32,
        metric_family_name: name.into(),
        help: String::new(),
        unit: String::new(),
    };
    let req = WriteRequest {
        timeseries: vec![
            series(
                vec![label("__name__", "req_total")],
                5.0,
                // The latest of two is kept.
                vec![
                    exemplar("old", 1.0, 1_700_000_000_000),
                    exemplar("new", 2.0, 1_700_000_000_250),
                ],
            ),
            bucket("0.5", 1.0, vec![exemplar("b1", 0.3, 0)]),
            bucket("+Inf", 2.0, vec![]),
            series(vec![label("__name__", "lat_count")], 2.0, vec![]),
            series(vec![label("__name__", "lat_sum")], 0.9, vec![]),
            series(
                vec![label("__name__", "temp")],
                20.0,
                vec![exemplar("g", 1.0, 0)],
            ),
        ],
        metadata: vec![
            md("req_total", MetricType::Counter),
            md("lat", MetricType::Histogram),
        ],
    };
    let (app, _) = app(&[]);
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");
    for (accept, names) in [
        (OPENMETRICS, ("service_name", "trace_id")),
        (
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
            ("service.name", "trace_id"),
        ),
    ] {
        let resp = app
            .clone()
            .oneshot(
                Request::get("/metrics")
                    .header("accept", accept)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8(bytes.to_vec()).unwrap();
        let (fams, samples) = parse_page(&page);
        assert_eq!(family(&fams, "lat").1, "histogram", "{page}");
        let exemplars: BTreeMap<&str, &ParsedExemplar> = samples
            .iter()
            .filter_map(|s| Some((s.0.as_str(), s.4.as_ref()?)))
            .collect();
        let ex = |trace: &str, value: f64, ts: Option<f64>| -> ParsedExemplar {
            let labels = [(names.0, "api"), (names.1, trace)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (labels, value, ts)
        };
        assert_eq!(
            exemplars.get("req_total").copied(),
            Some(&ex("new", 2.0, Some(1_700_000_000.25))),
            "{page}"
        );
        assert_eq!(
            exemplars.get("lat_bucket").copied(),
            Some(&ex("b1", 0.3, None)),
            "{page}"
        );
        assert_eq!(exemplars.len(), 2, "a gauge carries none: {page}");
    }
    let (_, text) = get(&app, "/metrics").await;
    assert!(!text.contains(" # {"), "{text}");
    assert_eq!(
        self_metric(&app, "promgate_exposition_exemplars_total").await,
        4.0
    );
}

/// `_sum` is counter-like in OpenMetrics (never negative): a histogram or
/// summary with a negative sum is exposed untyped, the page still parses.
#[tokio::test]
async fn a_negative_sum_leaves_its_histogram_or_summary_untyped() {
    let (app, _) = app(&[]);
    let req = request(
        &[
            (&[("__name__", "h_bucket"), ("le", "+Inf")], &[(1.0, 5000)]),
            (&[("__name__", "h_count")], &[(1.0, 5000)]),
            (&[("__name__", "h_sum")], &[(-1.0, 5000)]),
            (&[("__name__", "s"), ("quantile", "0.5")], &[(1.0, 5000)]),
            (&[("__name__", "s_count")], &[(1.0, 5000)]),
            (&[("__name__", "s_sum")], &[(f64::NEG_INFINITY, 5000)]),
        ],
        &[
            ("h", MetricType::Histogram, ""),
            ("s", MetricType::Summary, ""),
        ],
    );
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");
    let (_, page) = scrape(&app).await;
    let (fams, samples) = parse_page(&page);
    assert!(fams.iter().all(|f| f.1 == "unknown"), "{fams:?}");
    assert_eq!(samples.len(), 6);
}

/// Exemplars a strict parser cannot read (an escaped quote in their labels)
/// and exemplars stamped outside the range samples are accepted in are left
/// out, counted; their series and samples are all there, the page parses.
#[tokio::test]
async fn exemplars_no_page_could_show_are_left_out_and_counted() {
    use promgate::proto::{Exemplar, Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
    let now = promgate::ingest::now_ms();
    let label = |n: &str, v: &str| Label {
        name: n.into(),
        value: v.into(),
    };
    let series = |name: &str, exemplars: Vec<Exemplar>| TimeSeries {
        labels: vec![label("__name__", name)],
        samples: vec![Sample {
            value: 1.0,
            timestamp: now,
        }],
        exemplars,
        ..Default::default()
    };
    let exemplar = |trace: &str, ts: i64| Exemplar {
        labels: vec![label("trace_id", trace)],
        value: 1.0,
        timestamp: ts,
    };
    let md = |name: &str| MetricMetadata {
        r#type: MetricType::Counter as i32,
        metric_family_name: name.into(),
        help: String::new(),
        unit: String::new(),
    };
    let req = WriteRequest {
        timeseries: vec![
            series("quoted_total", vec![exemplar("a\"b", now)]),
            // A clock 30 days ahead, then a good one: the good one is shown.
            series(
                "clock_total",
                vec![
                    exemplar("bad", now + 30 * 86_400_000),
                    exemplar("good", now),
                ],
            ),
            series("before_total", vec![exemplar("negative", -5)]),
        ],
        metadata: vec![md("quoted_total"), md("clock_total"), md("before_total")],
    };
    let (app, _) = app(&[]);
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        self_metric(
            &app,
            "promgate_exemplars_rejected_total{reason=\"exemplar_timestamp_out_of_range\"}"
        )
        .await,
        2.0
    );
    let (_, page) = scrape(&app).await;
    let (_, samples) = parse_page(&page);
    assert_eq!(samples.len(), 3, "{page}");
    let shown: Vec<(&str, &str)> = samples
        .iter()
        .filter_map(|s| Some((s.0.as_str(), s.4.as_ref()?.0.get("trace_id")?.as_str())))
        .collect();
    assert_eq!(shown, [("clock_total", "good")], "{page}");
    assert_eq!(
        self_metric(&app, "promgate_exposition_exemplars_dropped_total").await,
        1.0
    );
}

/// Debian's Prometheus 2.42 with exemplar storage scrapes promgate's
/// OpenMetrics page (its default `Accept` asks for it) and stores the
/// exemplar that was remote-written, labels and value as sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_stores_the_exemplars_it_scrapes() {
    use promgate::proto::{Exemplar, Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (_gate, addr) = spawn_promgate(&[]);
    let now = promgate::ingest::now_ms();
    let label = |n: &str, v: &str| Label {
        name: n.into(),
        value: v.into(),
    };
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("__name__", "orders_total"), label("shop", "eu")],
            samples: vec![Sample {
                value: 42.0,
                timestamp: now,
            }],
            exemplars: vec![Exemplar {
                labels: vec![label("trace_id", "4bf92f3577b34da6")],
                value: 1.5,
                timestamp: now,
            }],
            ..Default::default()
        }],
        metadata: vec![MetricMetadata {
            r#type: MetricType::Counter as i32,
            metric_family_name: "orders_total".into(),
            help: "Orders.".into(),
            unit: String::new(),
        }],
    };
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .body(snappy(&req))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let (_prom, port) =
        spawn_prometheus_scraping(dir.path(), addr, &["--enable-feature=exemplar-storage"]);
    eventually(
        Duration::from_secs(60),
        "the exemplar in Prometheus",
        || async {
            let secs = now / 1000;
            let answer: serde_json::Value = client
                .get(format!("http://127.0.0.1:{port}/api/v1/query_exemplars"))
                .query(&[
                    ("query", "orders_total".to_string()),
                    ("start", (secs - 600).to_string()),
                    ("end", (secs + 600).to_string()),
                ])
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let found = answer["data"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
                .any(|e| e["labels"]["trace_id"] == "4bf92f3577b34da6" && e["value"] == "1.5");
            if found {
                Ok(())
            } else {
                Err(answer.to_string())
            }
        },
    )
    .await;
}

/// The reviewer's path, end to end with the real programs: PyPI's
/// `prometheus_client` pushes a counter and a histogram (with the
/// `_created` gauges its text output adds) to promgate; Debian's
/// Prometheus 2.42 scrapes promgate's OpenMetrics page and keeps both
/// typed, and the created timestamps the client wrote.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_keeps_a_python_clients_families_typed() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (_gate, addr) = spawn_promgate(&[]);
    let script = "import sys\n\
        from prometheus_client import CollectorRegistry, Counter, Histogram, push_to_gateway, generate_latest\n\
        r = CollectorRegistry()\n\
        Counter('jobs', 'Jobs done.', registry=r).inc(3)\n\
        Histogram('took_seconds', 'Took.', buckets=[1], registry=r).observe(0.5)\n\
        push_to_gateway(sys.argv[1], job='batch', registry=r)\n\
        sys.stdout.write(generate_latest(r).decode())\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, &addr.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = String::from_utf8(out.stdout).unwrap();
    // What the client wrote: a `_created` gauge beside each family.
    let created = |name: &str| -> f64 {
        pushed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {pushed}"))
            .parse()
            .unwrap()
    };
    let (jobs_created, took_created) = (created("jobs_created"), created("took_seconds_created"));
    let (_prom, port) = spawn_prometheus_scraping(dir.path(), addr, &[]);
    let metadata = format!("http://127.0.0.1:{port}/api/v1/targets/metadata");
    for (metric, want) in [("jobs", "counter"), ("took_seconds", "histogram")] {
        eventually(
            Duration::from_secs(60),
            &format!("{metric}'s type in Prometheus"),
            || async {
                let answer = fetch_json(&client, &metadata, &[("metric", metric)]).await?;
                match answer["data"][0]["type"].as_str() {
                    Some(t) if t == want => Ok(()),
                    _ => Err(answer.to_string()),
                }
            },
        )
        .await;
    }
    for (series, want) in [
        ("jobs_created", jobs_created),
        ("took_seconds_created", took_created),
    ] {
        let answer = eventually(Duration::from_secs(30), series, || async {
            let result = query(&client, port, series).await?;
            match result.first().and_then(|r| r["value"][1].as_str()) {
                Some(v) => Ok(v.parse::<f64>().unwrap()),
                None => Err(format!("{result:?}")),
            }
        })
        .await;
        assert_eq!(answer, want, "{series}");
    }
}
