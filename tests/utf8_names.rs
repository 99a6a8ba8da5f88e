//! Metric and label names outside the legacy character set, end to end:
//! accepted over Remote-Write 1.0 and 2.0, and on `/metrics` in the form
//! each scraper negotiates (`escaping_schemes.md`, `content_negotiation.md`
//! in prometheus/docs). Every page is read back by a strict parser of its
//! format — promtool for escaped pages, PyPI's `prometheus_client` (whose
//! parser reads the quoted syntax) for `allow-utf-8` pages — and compared
//! with what was sent; real scrapers (Prometheus 2.42, vmagent into
//! VictoriaMetrics) store the escaped names.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use common::*;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The `Accept` headers real scrapers send.
const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const PROMETHEUS_2_PROTOBUF_FIRST: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const VMAGENT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
const PROMETHEUS_3_UNDERSCORES: &str = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=underscores;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

/// Prometheus 3 with `scrape_protocols: [PrometheusText1.0.0, PrometheusText0.0.4]`.
const PROMETHEUS_3_TEXT: &str =
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A series as the test sends it and as a parser reads it back.
type Owned = (String, BTreeMap<String, String>, f64);

fn owned(name: &str, labels: &[(&str, &str)], value: f64) -> Owned {
    let labels = labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    (name.to_string(), labels, value)
}

/// GETs /metrics with `accept`; (Content-Type, page).
async fn scrape(app: &Router, accept: Option<&str>) -> (String, String) {
    let mut req = Request::get("/metrics");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (ct, String::from_utf8(bytes.to_vec()).unwrap())
}

/// GETs /metrics as protobuf with `accept`; (Content-Type, every sample of
/// a counter, gauge or untyped family as (name, labels, value), sorted).
async fn scrape_protobuf(app: &Router, accept: &str) -> (String, Vec<Owned>) {
    use promgate::proto::client::MetricFamily;
    use prost::Message;
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
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let mut bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let mut samples = Vec::new();
    while !bytes.is_empty() {
        let family = MetricFamily::decode_length_delimited(&mut bytes).unwrap();
        for m in &family.metric {
            let labels = m
                .label
                .iter()
                .map(|l| (l.name().to_string(), l.value().to_string()))
                .collect();
            let value = m
                .gauge
                .as_ref()
                .map(|g| g.value())
                .or(m.counter.as_ref().map(|c| c.value()))
                .or(m.untyped.as_ref().map(|u| u.value()))
                .expect("a counter, gauge or untyped metric");
            samples.push((family.name().to_string(), labels, value));
        }
    }
    (ct, sorted(samples))
}

/// The page as `prometheus_client`'s text parser reads it: every sample as
/// (name, labels, value), sorted; the families' (name, type, help).
fn python_parse(page: &str) -> (Vec<Owned>, Vec<(String, String, String)>) {
    parse_with(page, "prometheus_client.parser")
}

/// The page as `prometheus_client`'s OpenMetrics parser (the strict one)
/// reads it.
pub fn openmetrics_parse(page: &str) -> (Vec<Owned>, Vec<(String, String, String)>) {
    parse_with(page, "prometheus_client.openmetrics.parser")
}

fn parse_with(page: &str, module: &str) -> (Vec<Owned>, Vec<(String, String, String)>) {
    let read = format!(
        r#"
import json, sys
from {module} import text_string_to_metric_families
out = {{"samples": [], "families": []}}
for f in text_string_to_metric_families(sys.stdin.read()):
    out["families"].append([f.name, f.type, f.documentation])
    for s in f.samples:
        out["samples"].append([s.name, s.labels, s.value])
print(json.dumps(out))
"#
    );
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", &read])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{module} could not parse the page: {}\n--- page ---\n{page}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut samples: Vec<Owned> = json["samples"]
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
            (
                s[0].as_str().unwrap().to_string(),
                labels,
                s[2].as_f64().unwrap(),
            )
        })
        .collect();
    samples.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let families = json["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |i: usize| f[i].as_str().unwrap().to_string();
            (s(0), s(1), s(2))
        })
        .collect();
    (samples, families)
}

fn sorted(mut v: Vec<Owned>) -> Vec<Owned> {
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

/// What the sender sends: OpenTelemetry-style names, spaces, a leading
/// digit, a quote, non-ASCII, beside a legacy series.
fn sent() -> Vec<Owned> {
    vec![
        owned(
            "http.server.request.duration",
            &[("service.name", "api"), ("http.route", "/a\"b")],
            1.5,
        ),
        owned("resource cpu usage", &[("host", "h1")], 2.0),
        owned("2xx.count", &[], 3.0),
        owned("temp", &[("città", "Zürich"), ("job", "w")], 4.0),
        owned("up", &[("job", "w")], 1.0),
    ]
}

/// The same series as escaped by `underscores`, written out by hand from
/// the spec's rule.
fn sent_as_underscores() -> Vec<Owned> {
    vec![
        owned(
            "http_server_request_duration",
            &[("service_name", "api"), ("http_route", "/a\"b")],
            1.5,
        ),
        owned("resource_cpu_usage", &[("host", "h1")], 2.0),
        owned("_xx_count", &[], 3.0),
        owned("temp", &[("citt_", "Zürich"), ("job", "w")], 4.0),
        owned("up", &[("job", "w")], 1.0),
    ]
}

fn to_request(series: &[Owned], ts: i64) -> promgate::proto::WriteRequest {
    use promgate::proto::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
    WriteRequest {
        timeseries: series
            .iter()
            .map(|(name, labels, value)| {
                let mut l = vec![Label {
                    name: "__name__".into(),
                    value: name.clone(),
                }];
                l.extend(labels.iter().map(|(n, v)| Label {
                    name: n.clone(),
                    value: v.clone(),
                }));
                TimeSeries {
                    labels: l,
                    samples: vec![Sample {
                        value: *value,
                        timestamp: ts,
                    }],
                    ..Default::default()
                }
            })
            .collect(),
        metadata: vec![MetricMetadata {
            r#type: MetricType::Gauge as i32,
            metric_family_name: "http.server.request.duration".into(),
            help: "Duration of HTTP server requests.".into(),
            unit: String::new(),
        }],
    }
}

/// Parses an escaped page with promtool (it must pass) and reads its
/// samples as (name, labels, value).
fn promtool_read(page: &str) -> Vec<Owned> {
    assert_parses(page);
    sorted(
        page.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (name, labels, value) = sample_key(l);
                let labels = labels
                    .into_iter()
                    .map(|(n, v)| (n, promgate::model::unescape_value(&v)))
                    .collect();
                (name, labels, value.parse().unwrap())
            })
            .collect(),
    )
}

#[tokio::test]
async fn every_scraper_gets_the_names_it_negotiated() {
    let (app, _) = app(&[]);
    let (status, body) = write(&app, &to_request(&sent(), 5000)).await;
    assert_eq!(status, 204, "{body}");

    // No escaping named: underscores, as text 0.0.4, read by promtool.
    for accept in [None, Some("*/*"), Some(VMAGENT)] {
        let (ct, page) = scrape(&app, accept).await;
        assert_eq!(ct, TEXT_004, "{accept:?}");
        assert_eq!(
            promtool_read(&page),
            sorted(sent_as_underscores()),
            "{accept:?}"
        );
        assert!(
            page.contains(
                "# HELP http_server_request_duration Duration of HTTP server requests.\n\
                 # TYPE http_server_request_duration gauge\n"
            ),
            "{page}"
        );
    }

    // Prometheus 2 and Prometheus 3 configured for underscores ask for
    // OpenMetrics first: the same names, on a page the strict OpenMetrics
    // parser reads.
    for (accept, ct_want) in [
        (
            PROMETHEUS_2,
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
        ),
        (
            PROMETHEUS_3_UNDERSCORES,
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
        ),
    ] {
        let (ct, page) = scrape(&app, Some(accept)).await;
        assert_eq!(ct, ct_want);
        let (samples, families) = openmetrics_parse(&page);
        assert_eq!(samples, sorted(sent_as_underscores()), "{page}");
        assert!(families.contains(&(
            "http_server_request_duration".into(),
            "gauge".into(),
            "Duration of HTTP server requests.".into()
        )));
    }

    // Prometheus 2 with native histograms asks for protobuf first: the
    // same names, in the MetricFamily messages prost reads back.
    let (ct, samples) = scrape_protobuf(&app, PROMETHEUS_2_PROTOBUF_FIRST).await;
    assert_eq!(
        ct,
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores"
    );
    assert_eq!(samples, sorted(sent_as_underscores()));

    // Prometheus 3 (UTF-8 names allowed), OpenMetrics: quoted names, read
    // back to exactly what was sent.
    let (ct, page) = scrape(&app, Some(PROMETHEUS_3)).await;
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    );
    let (samples, _) = openmetrics_parse(&page);
    assert_eq!(samples, sorted(sent()), "{page}");

    // The same in the text format (OpenMetrics refused): the quoted
    // syntax, read back by prometheus_client, HELP and TYPE too.
    let (ct, page) = scrape(&app, Some(PROMETHEUS_3_TEXT)).await;
    assert_eq!(
        ct,
        "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    );
    let (samples, families) = python_parse(&page);
    assert_eq!(samples, sorted(sent()), "{page}");
    assert!(
        families.contains(&(
            "http.server.request.duration".into(),
            "gauge".into(),
            "Duration of HTTP server requests.".into()
        )),
        "{families:?}"
    );
    assert!(
        page.contains(
            r#"{"http.server.request.duration","http.route"="/a\"b","service.name"="api"} 1.5 5000"#
        ),
        "{page}"
    );

    // The other two schemes, by their rules.
    let (ct, page) = scrape(&app, Some("text/plain;version=1.0.0;escaping=values")).await;
    assert_eq!(
        ct,
        "text/plain; version=1.0.0; charset=utf-8; escaping=values"
    );
    let values = promtool_read(&page);
    assert!(
        values.contains(&owned(
            "U__resource_20_cpu_20_usage",
            &[("host", "h1")],
            2.0
        )),
        "{values:?}"
    );
    assert!(
        values.contains(&owned("U___32_xx_2e_count", &[], 3.0)),
        "{values:?}"
    );
    let (_, page) = scrape(&app, Some("text/plain;version=1.0.0;escaping=dots")).await;
    let dots = promtool_read(&page);
    assert!(
        dots.contains(&owned(
            "http_dot_server_dot_request_dot_duration",
            &[("service_dot_name", "api"), ("http_dot_route", "/a\"b")],
            1.5
        )),
        "{dots:?}"
    );

    // Escaped series are counted: 4 of the 5 on each of the 8 escaped pages.
    assert_eq!(
        self_metric(&app, "promgate_exposition_series_escaped_total").await,
        32.0
    );
    // Pages are counted by format and escaping.
    let pages = |f: &str, e: &str| {
        format!("promgate_exposition_pages_total{{format=\"{f}\",escaping=\"{e}\"}}")
    };
    assert_eq!(
        self_metric(&app, &pages("text-0.0.4", "underscores")).await,
        3.0
    );
    assert_eq!(
        self_metric(&app, &pages("openmetrics-1.0.0", "underscores")).await,
        2.0
    );
    assert_eq!(
        self_metric(&app, &pages("protobuf", "underscores")).await,
        1.0
    );
    assert_eq!(
        self_metric(&app, &pages("text-1.0.0", "allow-utf-8")).await,
        1.0
    );
}

#[tokio::test]
async fn remote_write_2_carries_utf8_names_and_their_metadata() {
    use common::v2::{Builder, write2};
    use promgate::proto::v2::metadata::MetricType as V2Type;
    let (app, _) = app(&[]);
    let req = Builder::new()
        .series(
            &[
                ("__name__", "http.server.active_requests"),
                ("service.name", "api"),
            ],
            &[(7.0, 5000)],
            Some((V2Type::Gauge, "In flight.")),
        )
        .build();
    let answer = write2(&app, &req).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(answer.written, Some((1, 0, 0)));
    let (_, page) = scrape(&app, Some(PROMETHEUS_3_TEXT)).await;
    let (samples, families) = python_parse(&page);
    assert_eq!(
        samples,
        vec![owned(
            "http.server.active_requests",
            &[("service.name", "api")],
            7.0
        )]
    );
    assert_eq!(
        families,
        vec![(
            "http.server.active_requests".into(),
            "gauge".into(),
            "In flight.".into()
        )]
    );
    let (_, page) = scrape(&app, None).await;
    assert_eq!(
        promtool_read(&page),
        vec![owned(
            "http_server_active_requests",
            &[("service_name", "api")],
            7.0
        )]
    );
}

#[tokio::test]
async fn names_escaping_alike_are_one_family_with_no_series_twice() {
    let (app, _) = app(&[]);
    let req = request(
        &[
            (&[("__name__", "a_b"), ("x", "1")], &[(1.0, 5000)]),
            (&[("__name__", "a.b"), ("x", "1")], &[(2.0, 5000)]),
            (&[("__name__", "a.b"), ("x", "2")], &[(3.0, 5000)]),
            // Two label names escaping alike: kept apart only by allow-utf-8.
            (
                &[("__name__", "m"), ("k.1", "p"), ("k_1", "q")],
                &[(4.0, 5000)],
            ),
            (&[("__name__", "m"), ("k_1", "r")], &[(5.0, 5000)]),
        ],
        &[
            ("a_b", MetricType::Gauge, "the legacy one"),
            ("a.b", MetricType::Counter, "the dotted one"),
        ],
    );
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 204, "{body}");

    let (_, page) = scrape(&app, None).await;
    // The name that needed no escaping wins the family and the series.
    assert_eq!(
        promtool_read(&page),
        sorted(vec![
            owned("a_b", &[("x", "1")], 1.0),
            owned("a_b", &[("x", "2")], 3.0),
            owned("m", &[("k_1", "r")], 5.0),
        ])
    );
    assert_eq!(page.matches("# TYPE a_b ").count(), 1, "{page}");
    assert!(
        page.contains("# HELP a_b the legacy one\n# TYPE a_b gauge\n"),
        "{page}"
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_series_dropped_total{reason=\"escaping_collision\"}"
        )
        .await,
        2.0
    );

    // allow-utf-8 keeps all five, in two families of their own.
    let (_, page) = scrape(&app, Some(PROMETHEUS_3_TEXT)).await;
    let (samples, families) = python_parse(&page);
    assert_eq!(samples.len(), 5, "{page}");
    assert!(families.contains(&("a.b".into(), "counter".into(), "the dotted one".into())));
    assert!(families.contains(&("a_b".into(), "gauge".into(), "the legacy one".into())));
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Prometheus 2.42 and vmagent 1.79 scrape promgate (their own Accept
/// headers: no escaping named) and store the escaped names with the values
/// sent.
#[tokio::test(flavor = "multi_thread")]
async fn real_scrapers_store_the_escaped_names() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (_gate, addr) = spawn_promgate(&[]);
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .body(snappy(&to_request(&sent(), now_ms())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let (_prom, prom_port) = spawn_prometheus_scraping(dir.path(), addr, &[]);
    let config = gate_scrape_config(addr);
    let (_vm, vm_port) = spawn_victoria_metrics(dir.path());
    let (_agent, _) = spawn_vmagent(dir.path(), &config, vm_port);
    for (store, port) in [("Prometheus", prom_port), ("VictoriaMetrics", vm_port)] {
        for (name, labels, value) in sent_as_underscores() {
            let selector = labels
                .iter()
                .map(|(n, v)| format!("{n}={v:?}"))
                .collect::<Vec<_>>()
                .join(",");
            let promql = format!("{name}{{{selector}}}");
            eventually(
                Duration::from_secs(60),
                &format!("{promql} in {store}"),
                || async {
                    let result = query(&client, port, &promql).await?;
                    let got: Vec<f64> = result
                        .iter()
                        .filter_map(|r| r["value"][1].as_str()?.parse().ok())
                        .collect();
                    if got == [value] {
                        Ok(())
                    } else {
                        Err(format!("{result:?}"))
                    }
                },
            )
            .await;
        }
    }
}

/// The headers above are the ones the real scrapers send: Debian's
/// Prometheus 2.42 (and with native histograms enabled) and vmagent 1.79,
/// pointed at a listener that records what they ask for.
#[tokio::test(flavor = "multi_thread")]
async fn the_accept_headers_tested_are_the_real_scrapers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let server = tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let _ = tx.send((header("user-agent"), header("accept")));
                let body = "up 1\n";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    let config = format!(
        "scrape_configs:\n  - job_name: probe\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let mut procs = Vec::new();
    for (sub, feature) in [
        ("p2", None),
        ("p2nh", Some("--enable-feature=native-histograms")),
    ] {
        let d = dir.path().join(sub);
        std::fs::create_dir(&d).unwrap();
        std::fs::copy(dir.path().join("prometheus.yml"), d.join("prometheus.yml")).unwrap();
        let mut args = vec![
            "--config.file=prometheus.yml".to_string(),
            "--storage.tsdb.path=data".to_string(),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
        ];
        args.extend(feature.map(str::to_string));
        procs.push(spawn(&tool("prometheus"), &args, &d));
    }
    let (_vm, vm_port) = spawn_victoria_metrics(dir.path());
    let (_agent, _) = spawn_vmagent(dir.path(), &config, vm_port);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 3 {
        let got = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("scrapes seen so far: {seen:?}"))
            .unwrap();
        let (agent, accept) = got;
        let who = if agent.starts_with("vm_promscrape") || agent.contains("vmagent") {
            "vmagent".to_string()
        } else {
            format!("prometheus {accept:.30}")
        };
        seen.insert(who, accept);
    }
    server.abort();
    let accepts: Vec<&String> = seen.values().collect();
    assert!(accepts.contains(&&PROMETHEUS_2.to_string()), "{seen:#?}");
    assert!(
        accepts.contains(&&PROMETHEUS_2_PROTOBUF_FIRST.to_string()),
        "{seen:#?}"
    );
    assert_eq!(seen.get("vmagent"), Some(&VMAGENT.to_string()), "{seen:#?}");
}

/// `--exposition.default-escaping allow-utf-8`: a scraper that names no
/// scheme (vmagent's header) gets the quoted syntax, labelled 1.0.0; one
/// that names a scheme still gets it; the answer varies by `Accept`.
#[tokio::test]
async fn the_default_escaping_applies_only_where_no_scheme_is_named() {
    let (app, _) = app(&["--exposition.default-escaping", "allow-utf-8"]);
    let (status, body) = write(&app, &to_request(&sent(), 5000)).await;
    assert_eq!(status, 204, "{body}");
    let (ct, page) = scrape(&app, Some(VMAGENT)).await;
    assert_eq!(
        ct,
        "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    );
    let (samples, _) = python_parse(&page);
    assert_eq!(samples, sorted(sent()), "{page}");
    let (ct, page) = scrape(&app, Some("text/plain;version=1.0.0;escaping=underscores")).await;
    assert_eq!(
        ct,
        "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"
    );
    assert_eq!(promtool_read(&page), sorted(sent_as_underscores()));
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.headers()["vary"], "accept, accept-encoding");
}
