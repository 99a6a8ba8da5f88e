//! The protobuf page (`Accept: application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`), decoded
//! with prost and read as Prometheus' protobuf parser (`protobufparse.go`)
//! names its samples: compared series by series, value by value, with the
//! text page of the same store (read by a small parser of its own here)
//! under each escaping scheme; split into chunks and messages; gzipped;
//! and scraped by a real Prometheus 2.42 with native histograms enabled,
//! whose query API must answer the text page's values.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use bytes::{Buf, Bytes};
use common::*;
use http_body_util::BodyExt;
use promgate::exposition::{Escaping, RenderOptions, TimestampPolicy};
use promgate::proto::client::{MetricFamily, MetricType as PbType};
use promgate::proto::{Exemplar, Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
use prost::Message;
use tower::ServiceExt;

const PROTOBUF: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

/// Prometheus 2.42's `Accept` with `--enable-feature=native-histograms`.
const PROMETHEUS_2_PROTOBUF_FIRST: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A series as a scraper names it: metric name and labels (`le` and
/// `quantile` as the number they hold, so that `1` and `1.0` are one).
type Id = (String, BTreeMap<String, String>);

/// Every series of a page: value, timestamp (ms) when the page gave one.
type Samples = BTreeMap<Id, (f64, Option<i64>)>;

fn float(s: &str) -> f64 {
    match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().unwrap_or_else(|_| panic!("not a number: {s}")),
    }
}

/// `le` and `quantile` values as numbers.
fn normalised(mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for bound in ["le", "quantile"] {
        if let Some(v) = labels.get_mut(bound) {
            *v = format!("{:?}", float(v));
        }
    }
    labels
}

/// A cursor over one line of the text format.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn bump(&mut self) -> char {
        let c = self.peek().expect("more of the line");
        self.at += c.len_utf8();
        c
    }

    /// A quoted string, escapes (`\\`, `\"`, `\n`) undone.
    fn quoted(&mut self) -> String {
        assert_eq!(self.bump(), '"');
        let mut out = String::new();
        loop {
            match self.bump() {
                '"' => return out,
                '\\' => match self.bump() {
                    'n' => out.push('\n'),
                    c => out.push(c),
                },
                c => out.push(c),
            }
        }
    }

    /// A name, bare or quoted.
    fn name(&mut self) -> String {
        if self.peek() == Some('"') {
            return self.quoted();
        }
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            self.bump();
        }
        self.s[start..self.at].to_string()
    }
}

/// Reads a text page (0.0.4, or 1.0.0 with quoted names): every sample
/// line as its series, value and timestamp. No series may appear twice.
fn parse_text(page: &str) -> Samples {
    let mut out = Samples::new();
    for line in page
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut c = Cursor { s: line, at: 0 };
        let mut name = (c.peek() != Some('{')).then(|| c.name());
        let mut labels = BTreeMap::new();
        if c.peek() == Some('{') {
            c.bump();
            while c.peek() != Some('}') {
                let n = c.name();
                if c.peek() == Some('=') {
                    c.bump();
                    labels.insert(n, c.quoted());
                } else {
                    // `{"a.b",x="y"}`: the metric name.
                    assert!(name.replace(n).is_none(), "two names: {line}");
                }
                if c.peek() == Some(',') {
                    c.bump();
                }
            }
            c.bump();
        }
        let mut fields = line[c.at..].split_whitespace();
        let value = float(fields.next().expect("a value"));
        let ts = fields.next().map(|t| t.parse().unwrap());
        let id = (name.expect("a metric name"), normalised(labels));
        assert!(out.insert(id, (value, ts)).is_none(), "twice: {line}");
    }
    out
}

/// Decodes a protobuf page, every message to the end.
fn decode(mut body: Bytes) -> Vec<MetricFamily> {
    let mut families = Vec::new();
    while body.has_remaining() {
        families.push(MetricFamily::decode_length_delimited(&mut body).expect("a MetricFamily"));
    }
    families
}

/// The samples of decoded families as Prometheus' protobuf parser names
/// them: the family name for counters, gauges and untyped; `_bucket` (one
/// per bucket, `+Inf` from the count when the last bucket is not `+Inf`),
/// `_count` and `_sum` for histograms; the name with `quantile`, `_count`
/// and `_sum` for summaries. No series may appear twice.
fn samples_of(families: &[MetricFamily]) -> Samples {
    let mut out = Samples::new();
    for f in families {
        let name = f.name();
        for m in &f.metric {
            let labels: BTreeMap<String, String> = m
                .label
                .iter()
                .map(|l| (l.name().to_string(), l.value().to_string()))
                .collect();
            let mut put = |suffix: &str, bound: Option<(&str, f64)>, v: f64| {
                let mut labels = labels.clone();
                if let Some((label, b)) = bound {
                    assert!(labels.insert(label.into(), format!("{b:?}")).is_none());
                }
                let id = (format!("{name}{suffix}"), normalised(labels));
                assert!(
                    out.insert(id.clone(), (v, m.timestamp_ms)).is_none(),
                    "twice: {id:?}"
                );
            };
            match f.r#type() {
                PbType::Counter => put("", None, m.counter.as_ref().unwrap().value()),
                PbType::Gauge => put("", None, m.gauge.as_ref().unwrap().value()),
                PbType::Untyped => put("", None, m.untyped.as_ref().unwrap().value()),
                PbType::Summary => {
                    let s = m.summary.as_ref().unwrap();
                    for q in &s.quantile {
                        put("", Some(("quantile", q.quantile())), q.value());
                    }
                    put("_count", None, s.sample_count() as f64);
                    put("_sum", None, s.sample_sum());
                }
                PbType::Histogram => {
                    let h = m.histogram.as_ref().unwrap();
                    for b in &h.bucket {
                        let v = b.cumulative_count() as f64;
                        put("_bucket", Some(("le", b.upper_bound())), v);
                    }
                    if h.bucket
                        .last()
                        .is_none_or(|b| b.upper_bound() != f64::INFINITY)
                    {
                        let count = h.sample_count() as f64;
                        put("_bucket", Some(("le", f64::INFINITY)), count);
                    }
                    put("_count", None, h.sample_count() as f64);
                    put("_sum", None, h.sample_sum());
                }
                PbType::GaugeHistogram => panic!("no gauge histogram was sent"),
            }
        }
    }
    out
}

/// Asserts two pages hold the same series with the same values (NaN
/// equal to NaN) and timestamps.
fn assert_same(text: &Samples, protobuf: &Samples, what: &str) {
    let only_text: Vec<&Id> = text.keys().filter(|k| !protobuf.contains_key(k)).collect();
    let only_pb: Vec<&Id> = protobuf.keys().filter(|k| !text.contains_key(k)).collect();
    assert!(
        only_text.is_empty() && only_pb.is_empty(),
        "{what}: only on the text page {only_text:?}; only on the protobuf page {only_pb:?}"
    );
    for (id, &(v, ts)) in text {
        let (pv, pts) = protobuf[id];
        assert!(
            (v == pv || (v.is_nan() && pv.is_nan())) && ts == pts,
            "{what}: {id:?}: text {v} {ts:?}, protobuf {pv} {pts:?}"
        );
    }
}

/// GETs /metrics; (Content-Type, Content-Encoding, body).
async fn fetch(app: &Router, accept: &str, gzip: bool) -> (String, Option<String>, Bytes) {
    let mut req = Request::get("/metrics").header("accept", accept);
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (ct, ce) = (header("content-type").unwrap(), header("content-encoding"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (ct, ce, body)
}

fn label(n: &str, v: &str) -> Label {
    Label {
        name: n.into(),
        value: v.into(),
    }
}

/// The store every test starts from, as a Remote-Write request stamped
/// `now`: counters (one with an exemplar, one NaN), gauges (a value with
/// every escape), an untyped series, a whole classic histogram, a summary,
/// a histogram whose buckets decrease, a histogram point with no `_count`
/// and `_sum`, UTF-8 names, and two names that underscores escape alike.
fn request(now: i64) -> WriteRequest {
    let series = |labels: &[(&str, &str)], value: f64| TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: vec![Sample {
            value,
            timestamp: now,
        }],
        ..Default::default()
    };
    let md = |name: &str, t: MetricType, help: &str| MetricMetadata {
        r#type: t as i32,
        metric_family_name: name.into(),
        help: help.into(),
        unit: String::new(),
    };
    let mut timeseries = vec![
        series(&[("__name__", "requests_total"), ("code", "200")], 10.0),
        series(&[("__name__", "requests_total"), ("code", "500")], 2.0),
        series(&[("__name__", "weird_total")], f64::NAN),
        series(&[("__name__", "temperature"), ("room", "a\"b\\c\nd")], 21.5),
        series(&[("__name__", "temperature"), ("room", "b")], -3.25),
        series(&[("__name__", "mystery")], 1e-300),
        series(
            &[
                ("__name__", "http.server.duration"),
                ("service.name", "api"),
            ],
            0.25,
        ),
        series(&[("__name__", "a.b")], 1.0),
        series(&[("__name__", "a_b")], 2.0),
        series(&[("__name__", "rpc_seconds"), ("quantile", "0.5")], 0.2),
        series(&[("__name__", "rpc_seconds"), ("quantile", "0.99")], 0.9),
        series(&[("__name__", "rpc_seconds_count")], 10.0),
        series(&[("__name__", "rpc_seconds_sum")], 3.0),
        series(&[("__name__", "broken_bucket"), ("le", "1")], 5.0),
        series(&[("__name__", "broken_bucket"), ("le", "+Inf")], 3.0),
        series(&[("__name__", "broken_count")], 3.0),
        series(&[("__name__", "broken_sum")], 1.0),
        series(&[("__name__", "half_bucket"), ("le", "+Inf")], 2.0),
    ];
    for (path, buckets, sum) in [("/a", [1.0, 3.0, 4.0], 2.5), ("/b", [0.0; 3], 0.0)] {
        for (le, v) in ["0.1", "1", "+Inf"].into_iter().zip(buckets) {
            timeseries.push(series(
                &[
                    ("__name__", "latency_seconds_bucket"),
                    ("path", path),
                    ("le", le),
                ],
                v,
            ));
        }
        let count = [("__name__", "latency_seconds_count"), ("path", path)];
        timeseries.push(series(&count, buckets[2]));
        let total = [("__name__", "latency_seconds_sum"), ("path", path)];
        timeseries.push(series(&total, sum));
    }
    timeseries[0].exemplars = vec![Exemplar {
        labels: vec![label("trace_id", "abc")],
        value: 0.5,
        timestamp: now - 10,
    }];
    // A bucket's exemplar: `latency_seconds_bucket{path="/a",le="1"}`.
    let bucket = timeseries
        .iter_mut()
        .find(|s| {
            s.labels.iter().any(|l| l.value == "latency_seconds_bucket")
                && s.labels.iter().any(|l| l.value == "/a")
                && s.labels.iter().any(|l| l.name == "le" && l.value == "1")
        })
        .unwrap();
    bucket.exemplars = vec![Exemplar {
        labels: vec![label("trace_id", "def")],
        value: 0.7,
        timestamp: now - 20,
    }];
    WriteRequest {
        timeseries,
        metadata: vec![
            md("requests_total", MetricType::Counter, "Requests."),
            md("weird_total", MetricType::Counter, ""),
            md("temperature", MetricType::Gauge, "Temperature."),
            md("http.server.duration", MetricType::Gauge, "Duration."),
            md("latency_seconds", MetricType::Histogram, "Latency."),
            md("rpc_seconds", MetricType::Summary, "RPCs."),
            md("broken", MetricType::Histogram, "Torn."),
            md("half", MetricType::Histogram, ""),
        ],
    }
}

/// What is pushed beside it (series with no timestamp on the page).
const PUSHED: &str =
    "# TYPE pushed_gauge gauge\npushed_gauge 7\n# TYPE jobs_total counter\njobs_total 3\n";

async fn filled(args: &[&str], now: i64) -> (Router, promgate::http::AppState) {
    let (app, state) = app(args);
    let (status, body) = write(&app, &request(now)).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = send(&app, "PUT", "/metrics/job/batch", &[], PUSHED.into()).await;
    assert!(status.is_success(), "{status} {body}");
    (app, state)
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

#[tokio::test]
async fn the_protobuf_page_holds_the_text_pages_series_under_every_scheme() {
    let now = promgate::ingest::now_ms();
    let (app, _) = filled(&[], now).await;
    for scheme in ["underscores", "dots", "values", "allow-utf-8"] {
        let (_, _, text) = fetch(
            &app,
            &format!("text/plain;version=1.0.0;escaping={scheme}"),
            false,
        )
        .await;
        let (ct, _, body) = fetch(&app, &format!("{PROTOBUF};escaping={scheme}"), false).await;
        assert_eq!(
            ct,
            format!(
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping={scheme}"
            )
        );
        let text = parse_text(std::str::from_utf8(&text).unwrap());
        let families = decode(body);
        assert_same(&text, &samples_of(&families), scheme);
        // 18 series of names, 10 of the histogram; `a.b` left off once
        // escaped to `a_b` by underscores; the 2 pushed and their group's
        // `push_time_seconds` and `push_failure_time_seconds`.
        let expected = if scheme == "underscores" { 31 } else { 32 };
        assert_eq!(text.len(), expected, "{scheme}");
    }
}

#[tokio::test]
async fn families_are_typed_and_labelled_as_sent() {
    let now = promgate::ingest::now_ms();
    let (app, _) = filled(&[], now).await;
    let (_, _, body) = fetch(&app, PROMETHEUS_2_PROTOBUF_FIRST, false).await;
    let families = decode(body);
    let types: BTreeMap<&str, PbType> = families.iter().map(|f| (f.name(), f.r#type())).collect();
    let expected = BTreeMap::from([
        // A counter is named as its samples, `_total` and all.
        ("requests_total", PbType::Counter),
        ("weird_total", PbType::Counter),
        ("jobs_total", PbType::Counter),
        ("temperature", PbType::Gauge),
        ("pushed_gauge", PbType::Gauge),
        ("push_time_seconds", PbType::Gauge),
        ("push_failure_time_seconds", PbType::Gauge),
        ("http_server_duration", PbType::Gauge),
        ("mystery", PbType::Untyped),
        ("a_b", PbType::Untyped),
        ("latency_seconds", PbType::Histogram),
        ("rpc_seconds", PbType::Summary),
        // Torn: each name on its own, untyped, its `le` kept.
        ("broken_bucket", PbType::Untyped),
        ("broken_count", PbType::Untyped),
        ("broken_sum", PbType::Untyped),
        // No `_count` and `_sum`, which the parser would make up as 0.
        ("half_bucket", PbType::Untyped),
    ]);
    assert_eq!(types, expected);
    assert_eq!(families.len(), expected.len(), "one message per family");

    let requests = family(&families, "requests_total");
    assert_eq!(requests.help(), "Requests.");
    let ok = requests
        .metric
        .iter()
        .find(|m| m.label[0].value() == "200")
        .unwrap();
    assert_eq!(ok.label.len(), 1);
    assert_eq!(ok.timestamp_ms, Some(now));
    let counter = ok.counter.as_ref().unwrap();
    assert_eq!(counter.value(), 10.0);
    let exemplar = counter.exemplar.as_ref().expect("the exemplar sent");
    assert_eq!(
        (
            exemplar.label[0].name(),
            exemplar.label[0].value(),
            exemplar.value()
        ),
        ("trace_id", "abc", 0.5)
    );
    let ts = exemplar.timestamp.unwrap();
    assert_eq!(
        ts.seconds() * 1000 + i64::from(ts.nanos()) / 1_000_000,
        now - 10
    );
    assert!(
        family(&families, "weird_total").metric[0]
            .counter
            .as_ref()
            .unwrap()
            .value()
            .is_nan()
    );

    // Label values unescaped.
    let rooms: Vec<&str> = family(&families, "temperature")
        .metric
        .iter()
        .map(|m| m.label[0].value())
        .collect();
    assert!(rooms.contains(&"a\"b\\c\nd"), "{rooms:?}");

    // Pushed series carry no timestamp.
    let pushed = &family(&families, "pushed_gauge").metric[0];
    assert_eq!(pushed.timestamp_ms, None);
    assert_eq!(pushed.gauge.as_ref().unwrap().value(), 7.0);

    // The histogram: one metric per label set, buckets by bound.
    let latency = family(&families, "latency_seconds");
    assert_eq!(latency.help(), "Latency.");
    let a = latency
        .metric
        .iter()
        .find(|m| m.label.iter().any(|l| l.value() == "/a"))
        .unwrap();
    assert_eq!(a.label.len(), 1, "no le among the labels");
    let h = a.histogram.as_ref().unwrap();
    let buckets: Vec<(f64, u64)> = h
        .bucket
        .iter()
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .collect();
    assert_eq!(buckets, vec![(0.1, 1), (1.0, 3), (f64::INFINITY, 4)]);
    let exemplars: Vec<Option<(&str, f64)>> = h
        .bucket
        .iter()
        .map(|b| {
            let e = b.exemplar.as_ref()?;
            Some((e.label[0].value(), e.value()))
        })
        .collect();
    assert_eq!(exemplars, vec![None, Some(("def", 0.7)), None]);
    assert_eq!((h.sample_count(), h.sample_sum()), (4, 2.5));
    assert_eq!(h.schema, None, "a classic histogram");

    let rpc = family(&families, "rpc_seconds").metric[0]
        .summary
        .clone()
        .unwrap();
    let quantiles: Vec<(f64, f64)> = rpc
        .quantile
        .iter()
        .map(|q| (q.quantile(), q.value()))
        .collect();
    assert_eq!(quantiles, vec![(0.5, 0.2), (0.99, 0.9)]);
    assert_eq!((rpc.sample_count(), rpc.sample_sum()), (10, 3.0));

    let broken = family(&families, "broken_bucket");
    assert_eq!(broken.help(), "", "HELP stays with the family's own name");
    assert_eq!(broken.metric.len(), 2);
    assert!(broken.metric.iter().all(|m| m.label[0].name() == "le"));

    // allow-utf-8: the names as sent.
    let (_, _, body) = fetch(&app, &format!("{PROTOBUF};escaping=allow-utf-8"), false).await;
    let families = decode(body);
    let duration = family(&families, "http.server.duration");
    assert_eq!(duration.r#type(), PbType::Gauge);
    assert_eq!(duration.help(), "Duration.");
    assert_eq!(duration.metric[0].label[0].name(), "service.name");
    assert_eq!(family(&families, "a.b").metric.len(), 1);
    assert_eq!(family(&families, "a_b").metric.len(), 1);

    // The page is counted by format and scheme, as are the exemplar and
    // the series escaping dropped.
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_pages_total{format=\"protobuf\",escaping=\"underscores\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        self_metric(&app, "promgate_exposition_exemplars_total").await,
        4.0
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_series_dropped_total{reason=\"escaping_collision\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn without_timestamps_no_metric_carries_one() {
    let now = promgate::ingest::now_ms();
    let (app, _) = filled(&["--exposition.timestamps", "none"], now).await;
    let (_, _, body) = fetch(&app, PROTOBUF, false).await;
    let families = decode(body);
    let metrics: Vec<_> = families.iter().flat_map(|f| &f.metric).collect();
    assert!(metrics.len() > 15, "{}", metrics.len());
    assert!(metrics.iter().all(|m| m.timestamp_ms.is_none()));
}

/// Writes as they come, to see the chunks.
#[derive(Default)]
struct Writes(Vec<Vec<u8>>);

impl std::io::Write for Writes {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.push(data.to_vec());
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_family_bigger_than_a_chunk_goes_out_in_several_messages() {
    let now = promgate::ingest::now_ms();
    let (app, state) = filled(&[], now).await;
    let is: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    let many: Vec<[(&str, &str); 2]> = is
        .iter()
        .map(|i| [("__name__", "many"), ("i", i)])
        .collect();
    let sample = [(1.5, now)];
    let series: Vec<Series> = many.iter().map(|l| (&l[..], &sample[..])).collect();
    let (status, body) = write(&app, &common::request(&series, &[])).await;
    assert_eq!(status, 204, "{body}");

    let render = |chunk_bytes| {
        let opts = RenderOptions {
            timestamps: TimestampPolicy::Original,
            chunk_bytes,
            escaping: Escaping::Underscores,
            native_histogram_max_buckets: 0,
        };
        let mut out = Writes::default();
        let stats = promgate::exposition::render_protobuf(&state.store, &opts, &mut out).unwrap();
        (out.0, stats)
    };
    let (whole, stats) = render(16 << 20);
    assert_eq!(whole.len(), 1, "one write when the page fits a chunk");
    assert_eq!(stats.series, 2031);
    let (chunks, small_stats) = render(4096);
    assert_eq!(small_stats, stats);
    assert!(chunks.len() > 5, "{} writes", chunks.len());
    // Every write but the last is a full chunk, and none is a page.
    let (last, full) = chunks.split_last().unwrap();
    assert!(full.iter().all(|c| c.len() >= 4096), "a short write");
    assert!(last.len() < 4096 * 2);
    assert!(chunks.iter().all(|c| c.len() < whole[0].len() / 2));

    let pieces = decode(Bytes::from(chunks.concat()));
    let many_messages = pieces.iter().filter(|f| f.name() == "many").count();
    assert!(many_messages > 1, "the family is split");
    assert!(
        pieces
            .iter()
            .filter(|f| f.name() == "many")
            .all(|f| f.r#type() == PbType::Untyped)
    );
    let one = decode(Bytes::from(whole.concat()));
    assert_same(&samples_of(&one), &samples_of(&pieces), "chunked");
    let (_, _, text) = fetch(&app, "text/plain;version=0.0.4", false).await;
    let text = parse_text(std::str::from_utf8(&text).unwrap());
    assert_same(&text, &samples_of(&pieces), "chunked against text");
}

#[tokio::test]
async fn a_gzipped_protobuf_page_is_the_same_page() {
    let now = promgate::ingest::now_ms();
    let (app, _) = filled(&[], now).await;
    let (_, encoding, plain) = fetch(&app, PROTOBUF, false).await;
    assert_eq!(encoding, None);
    let (ct, encoding, gzipped) = fetch(&app, PROTOBUF, true).await;
    assert!(ct.starts_with("application/vnd.google.protobuf;"), "{ct}");
    assert_eq!(encoding.as_deref(), Some("gzip"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.to_vec());
}

/// Prometheus' instant-query answer for `promql`: each series' labels
/// (with `__name__`) and value.
async fn prometheus_query(
    client: &reqwest::Client,
    port: u16,
    promql: &str,
) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
    let answer: serde_json::Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let result = answer["data"]["result"]
        .as_array()
        .ok_or_else(|| answer.to_string())?;
    Ok(result
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (labels, float(r["value"][1].as_str().unwrap()))
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_with_native_histograms_reads_the_protobuf_page() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (_gate, addr) = spawn_promgate(&[]);
    let now = promgate::ingest::now_ms();
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .body(snappy(&request(now)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    // A family bigger than a chunk (64 KiB), so several messages.
    let is: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    let many: Vec<[(&str, &str); 2]> = is
        .iter()
        .map(|i| [("__name__", "many"), ("i", i)])
        .collect();
    let sample = [(0.5, now)];
    let series: Vec<Series> = many.iter().map(|l| (&l[..], &sample[..])).collect();
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .body(snappy(&common::request(&series, &[])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let resp = client
        .put(format!("http://{addr}/metrics/job/batch"))
        .body(PUSHED)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    let (_prom, port) = spawn_prometheus_scraping(
        dir.path(),
        addr,
        &[
            "--enable-feature=native-histograms",
            "--enable-feature=exemplar-storage",
        ],
    );

    // What the scraper asked for: protobuf pages.
    let counted = "promgate_exposition_pages_total{format=\"protobuf\",escaping=\"underscores\"} ";
    eventually(
        Duration::from_secs(60),
        "a protobuf page scraped",
        || async {
            let page = fetch_text(&client, &format!("http://{addr}/-/metrics")).await?;
            let n: f64 = page
                .lines()
                .find_map(|l| l.strip_prefix(counted))
                .ok_or_else(|| page.clone())?
                .parse()
                .unwrap();
            if n >= 1.0 { Ok(()) } else { Err(page) }
        },
    )
    .await;

    // The text page (what a text scraper would store), against what
    // Prometheus stored from the protobuf pages: every series, every value.
    let text = client
        .get(format!("http://{addr}/metrics"))
        .header("accept", "text/plain;version=0.0.4")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let text: BTreeMap<Id, f64> = parse_text(&text)
        .into_iter()
        .map(|((name, labels), (v, _))| {
            // Prometheus drops empty labels.
            let labels = labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            ((name, labels), v)
        })
        .collect();
    let page = client
        .get(format!("http://{addr}/metrics"))
        .header("accept", PROMETHEUS_2_PROTOBUF_FIRST)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let split = decode(page).iter().filter(|f| f.name() == "many").count();
    assert!(split > 1, "{split} message(s) for the big family");
    let mut names: Vec<&str> = text.keys().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    assert!(text.len() > 3000);
    let promql = format!("{{__name__=~\"{}\"}}", names.join("|"));
    let target = addr.to_string();
    let stored = eventually(
        Duration::from_secs(60),
        "every series in Prometheus",
        || async {
            let stored: BTreeMap<Id, f64> = prometheus_query(&client, port, &promql)
                .await?
                .into_iter()
                .map(|(mut labels, v)| {
                    let name = labels.remove("__name__").unwrap();
                    // What the scrape added.
                    if labels.get("instance") == Some(&target) {
                        labels.remove("instance");
                    }
                    if labels.get("job").map(String::as_str) == Some("gate") {
                        labels.remove("job");
                    }
                    ((name, normalised(labels)), v)
                })
                .collect();
            if stored.len() == text.len() {
                Ok(stored)
            } else {
                Err(format!("{stored:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        text.keys().collect::<Vec<_>>()
    );
    for (id, v) in &text {
        let got = stored[id];
        assert!(
            *v == got || (v.is_nan() && got.is_nan()),
            "{id:?}: text {v}, Prometheus {got}"
        );
    }
    // The typed histogram was read as one (its buckets named by float).
    let buckets = prometheus_query(&client, port, "latency_seconds_bucket{path=\"/a\"}")
        .await
        .unwrap();
    let mut les: Vec<String> = buckets.into_iter().map(|(l, _)| l["le"].clone()).collect();
    les.sort();
    assert_eq!(les, ["+Inf", "0.1", "1.0"]);

    // The counter's and the bucket's exemplars came through the protobuf
    // page.
    eventually(Duration::from_secs(30), "the exemplars", || async {
        let secs = now / 1000;
        let answer: serde_json::Value = client
            .get(format!("http://127.0.0.1:{port}/api/v1/query_exemplars"))
            .query(&[
                (
                    "query",
                    "{__name__=~\"requests_total|latency_seconds_bucket\"}".to_string(),
                ),
                ("start", (secs - 600).to_string()),
                ("end", (secs + 600).to_string()),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let found: Vec<(String, String)> = answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
            .map(|e| (e["labels"]["trace_id"].to_string(), e["value"].to_string()))
            .collect();
        let want = |id: &str, v: &str| found.contains(&(format!("\"{id}\""), format!("\"{v}\"")));
        if want("abc", "0.5") && want("def", "0.7") {
            Ok(())
        } else {
            Err(answer.to_string())
        }
    })
    .await;
}

/// A series sent: labels, one sample.
type Sent = (Vec<(String, String)>, [(f64, i64); 1]);

/// Random stores (names that join families or not, torn and whole
/// histograms and summaries, NaN, negative and infinite values, awkward
/// label values, a UTF-8 label name), each rendered as text and as
/// protobuf under each scheme in small chunks: the same series and values,
/// and the same counts.
#[test]
fn any_accepted_request_gives_the_text_pages_series_in_protobuf() {
    use promgate::exposition::{render, render_protobuf};
    use promgate::ingest::{Decoder, Encoding, Format, Protocol};
    use promgate::store::Store;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    const NOW_MS: i64 = 1_700_000_000_000;
    let names = [
        "up", "c_total", "c", "h_bucket", "h_count", "h_sum", "h", "s", "s_count", "s_sum",
        "g.dotted", "g_dotted",
    ];
    let types = [
        ("c_total", MetricType::Counter),
        ("c", MetricType::Gauge),
        ("h", MetricType::Histogram),
        ("s", MetricType::Summary),
        ("up", MetricType::Counter),
        ("g.dotted", MetricType::Gauge),
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
    let schemes = [
        Escaping::Underscores,
        Escaping::Dots,
        Escaping::Values,
        Escaping::AllowUtf8,
    ];
    let mut runner = TestRunner::deterministic();
    let mut typed: BTreeMap<PbType, usize> = BTreeMap::new();
    for round in 0..200 {
        let (series, md) = strategy.new_tree(&mut runner).unwrap().current();
        let mut owned: Vec<Sent> = Vec::new();
        for (name, labels, value, ts) in series {
            let mut l = vec![("__name__".to_string(), names[name].to_string())];
            for (n, v) in labels {
                if !l.iter().any(|(k, _)| k == n) {
                    l.push((n.to_string(), v.to_string()));
                }
            }
            owned.push((l, [(value, NOW_MS - 1000 * ts)]));
        }
        // Every other round, a whole histogram point and a whole summary
        // point beside the random series (which may tear them or not).
        let mut md = md;
        if round % 2 == 0 {
            // Few random series beside them, so that some stay whole.
            owned.truncate(3);
            let whole = |name: &str, extra: Option<(&str, &str)>, v: f64| {
                let mut l = vec![
                    ("__name__".to_string(), name.to_string()),
                    ("job".to_string(), "w".to_string()),
                ];
                l.extend(extra.map(|(n, v)| (n.to_string(), v.to_string())));
                (l, [(v, NOW_MS)])
            };
            owned.extend([
                whole("h_bucket", Some(("le", "0.5")), 1.0),
                whole("h_bucket", Some(("le", "1")), 3.0),
                whole("h_bucket", Some(("le", "+Inf")), 4.0),
                whole("h_count", None, 4.0),
                whole("h_sum", None, 2.25),
                whole("s", Some(("quantile", "0.5")), 0.125),
                whole("s_count", None, 7.0),
                whole("s_sum", None, 1.5),
            ]);
            md.extend([2, 3]);
        }
        let borrowed: Vec<Vec<(&str, &str)>> = owned
            .iter()
            .map(|(l, _)| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
            .collect();
        let req_series: Vec<Series> = borrowed
            .iter()
            .zip(&owned)
            .map(|(l, (_, s))| (&l[..], &s[..]))
            .collect();
        let metadata: Vec<(&str, MetricType, &str)> = md
            .iter()
            .map(|&i| (types[i].0, types[i].1, "help"))
            .collect();
        let body = snappy(&common::request(&req_series, &metadata));
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
        let opts = RenderOptions {
            timestamps: TimestampPolicy::Original,
            chunk_bytes: 64,
            escaping: schemes[round % schemes.len()],
            native_histogram_max_buckets: 0,
        };
        let mut text = Vec::new();
        let text_stats = render(&store, &opts, &mut text).unwrap();
        let mut page = Vec::new();
        let stats = render_protobuf(&store, &opts, &mut page).unwrap();
        let page = Bytes::from(page);
        let text = String::from_utf8(text).unwrap();
        let what = format!("round {round}, {:?}:\n{text}", opts.escaping);
        assert_same(
            &parse_text(&text),
            &samples_of(&decode(page.clone())),
            &what,
        );
        assert_eq!(
            (stats.series, stats.dropped, stats.escaped),
            (text_stats.series, text_stats.dropped, text_stats.escaped),
            "{what}"
        );
        for f in decode(page) {
            *typed.entry(f.r#type()).or_insert(0) += 1;
        }
    }
    // The rounds met every shape.
    for t in [
        PbType::Counter,
        PbType::Gauge,
        PbType::Untyped,
        PbType::Histogram,
        PbType::Summary,
    ] {
        assert!(typed.get(&t).is_some_and(|&n| n >= 10), "{typed:?}");
    }
}
