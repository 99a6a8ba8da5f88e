//! Native histograms received by remote write, as the real programs read
//! them back: a vmagent scraping promgate's text page into
//! VictoriaMetrics (the classic form, every `le` checked against the
//! cumulative counts computed here from the buckets sent, with and without
//! `--exposition.native-histogram-max-buckets`); the classic form's text
//! and OpenMetrics pages in promtool and `prometheus_client`'s strict
//! OpenMetrics parser; and the native form on the protobuf page, scraped
//! by a Prometheus 2.42 with `--enable-feature=native-histograms` and
//! compared with a second one that received the same histograms by remote
//! write. Custom-bucket histograms (schema -53) are left out of the last:
//! Prometheus 2.42 predates them (its receiver and its TSDB know only
//! exponential schemas), so it cannot be the reference for them.
//!
//! The expected classic form is computed in this file from the buckets
//! sent, not by promgate's model: bucket `i` of schema `s` ends at
//! `2^(i·2^-s)`, every populated bucket contributes both its edges, the
//! zero bucket its threshold, and the cumulative count at an edge is that
//! of every bucket (and the zero bucket) lying wholly at or below it.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::native::{Sent, count_of, sent, to_request};
use common::*;
use promgate::proto::histogram::{Count, ZeroCount};
use promgate::proto::{BucketSpan, Histogram, WriteRequest};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The upper bound of bucket `i` of exponential schema `schema`.
fn bound(schema: i32, i: i32) -> f64 {
    2f64.powf(f64::from(i) / 2f64.powi(schema))
}

/// The bucket indexes `spans` describe, in order.
fn indexes(spans: &[BucketSpan]) -> Vec<i32> {
    let mut out = Vec::new();
    let mut next = 0;
    for (n, s) in spans.iter().enumerate() {
        next = if n == 0 { s.offset } else { next + s.offset };
        for _ in 0..s.length {
            out.push(next);
            next += 1;
        }
    }
    out
}

/// Absolute bucket counts of one side (deltas added up, or float counts).
fn absolute(deltas: &[i64], counts: &[f64], float: bool) -> Vec<f64> {
    if float {
        return counts.to_vec();
    }
    let mut last = 0i64;
    deltas
        .iter()
        .map(|d| {
            last += d;
            last as f64
        })
        .collect()
}

/// The classic form `h` must have: `(le, cumulative count)` ascending,
/// `+Inf` (the count) last. Computed from the buckets sent, independently
/// of promgate's model.
fn expected_classic(h: &Histogram) -> Vec<(f64, f64)> {
    let float = matches!(h.count, Some(Count::CountFloat(_)));
    let neg = absolute(&h.negative_deltas, &h.negative_counts, float);
    let pos = absolute(&h.positive_deltas, &h.positive_counts, float);
    let mut out = Vec::new();
    if h.schema == -53 {
        let buckets: Vec<(i32, f64)> = indexes(&h.positive_spans).into_iter().zip(pos).collect();
        for (k, &le) in h.custom_values.iter().enumerate() {
            let cumulative = buckets
                .iter()
                .filter(|(i, _)| *i as usize <= k)
                .map(|(_, c)| c)
                .sum();
            out.push((le, cumulative));
        }
    } else {
        let zt = h.zero_threshold;
        let zero = match h.zero_count {
            Some(ZeroCount::ZeroCountInt(z)) => z as f64,
            Some(ZeroCount::ZeroCountFloat(z)) => z,
            None => 0.0,
        };
        // Every edge, and each bucket's count at its upper end (negative
        // bucket i holds [-2^(i/2^s), -2^((i-1)/2^s))).
        let mut edges = vec![zt];
        let mut at_end = vec![(zt, zero)];
        for (i, c) in indexes(&h.negative_spans).into_iter().zip(neg) {
            let (lower, upper) = (bound(h.schema, i - 1), bound(h.schema, i));
            assert!(lower >= zt, "a bucket straddling the zero threshold");
            edges.extend([-upper, -lower]);
            at_end.push((-lower, c));
        }
        for (i, c) in indexes(&h.positive_spans).into_iter().zip(pos) {
            let (lower, upper) = (bound(h.schema, i - 1), bound(h.schema, i));
            assert!(lower >= zt, "a bucket straddling the zero threshold");
            edges.extend([lower, upper]);
            at_end.push((upper, c));
        }
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        for le in edges {
            let cumulative = at_end
                .iter()
                .filter(|(end, _)| *end <= le)
                .map(|(_, c)| c)
                .sum();
            out.push((le, cumulative));
        }
    }
    out.push((f64::INFINITY, count_of(h)));
    out
}

/// Two bounds written by different formatters: equal but maybe in the
/// last digit.
fn same_le(a: f64, b: f64) -> bool {
    a == b || (a.is_finite() && b.is_finite() && (a - b).abs() <= 1e-12 * a.abs().max(b.abs()))
}

fn parse_le(le: &str) -> f64 {
    match le {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => le
            .parse()
            .unwrap_or_else(|_| panic!("le={le:?} is no number")),
    }
}

/// Checks a classic form read back (`got`, ascending) against `want`:
/// the same bounds (to 1e-12 relative) with exactly the same counts.
fn compare_classic(got: &[(f64, f64)], want: &[(f64, f64)]) -> Result<(), String> {
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| same_le(g.0, w.0) && g.1 == w.1);
    if same {
        Ok(())
    } else {
        Err(format!("got {got:?}\nwant {want:?}"))
    }
}

/// POSTs `req` to `url` as Prometheus does; asserts it is stored.
async fn remote_write(client: &reqwest::Client, url: &str, req: &WriteRequest) {
    let resp = client
        .post(url)
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(snappy(req))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 204, "{url}: {}", resp.text().await.unwrap());
}

/// A histogram's classic form as VictoriaMetrics holds it for the series
/// with `labels`: its `_bucket` series by `le` (ascending),
/// `_count` and `_sum`. Fails when any of them is missing, or when a
/// series carries other labels.
async fn classic_in_vm(
    client: &reqwest::Client,
    vm_port: u16,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(Vec<(f64, f64)>, f64, f64), String> {
    let mut parts = Vec::new();
    for suffix in ["_bucket", "_count", "_sum"] {
        let promql = format!("{name}{suffix}");
        let result = query(client, vm_port, &promql).await?;
        let mut got = Vec::new();
        for r in &result {
            let mut metric: BTreeMap<String, String> =
                serde_json::from_value(r["metric"].clone()).map_err(|e| e.to_string())?;
            metric.remove("__name__");
            let le = metric.remove("le");
            if &metric != labels || le.is_some() != (suffix == "_bucket") {
                return Err(format!("{promql}: unexpected series {}", r["metric"]));
            }
            let value: f64 = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{promql}: bad value {r}"))?;
            got.push((le.as_deref().map_or(0.0, parse_le), value));
        }
        got.sort_by(|a, b| a.0.total_cmp(&b.0));
        parts.push(got);
    }
    let one = |v: &[(f64, f64)], what: &str| match v {
        [(_, x)] => Ok(*x),
        _ => Err(format!("{name}{what}: {v:?}")),
    };
    let count = one(&parts[1], "_count")?;
    let sum = one(&parts[2], "_sum")?;
    if parts[0].is_empty() {
        return Err(format!("no {name}_bucket yet"));
    }
    Ok((parts.remove(0), count, sum))
}

/// A promgate started with `flags` holding the native histograms sent at
/// `t`, scraped every second by a vmagent that writes to a
/// VictoriaMetrics: the processes, and VictoriaMetrics' port.
async fn scraped_into_vm(
    dir: &std::path::Path,
    client: &reqwest::Client,
    flags: &[&str],
    sent: &[Sent],
) -> (Vec<Proc>, u16) {
    let (gate, addr) = spawn_promgate(flags);
    remote_write(
        client,
        &format!("http://{addr}/api/v1/write"),
        &to_request(sent),
    )
    .await;
    let (vm, vm_port) = spawn_victoria_metrics(dir);
    let (agent, _) = spawn_vmagent(dir, &gate_scrape_config(addr), vm_port);
    (vec![agent, vm, gate], vm_port)
}

/// vmagent scrapes promgate's text page of the native histograms into
/// VictoriaMetrics: every `_bucket` (by `le`), `_count` and `_sum` series
/// there equals the classic form computed from the buckets sent, labelled
/// as sent.
#[tokio::test(flavor = "multi_thread")]
async fn vmagent_stores_the_classic_form_computed_from_the_buckets_sent() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let sent = sent(now_ms());
    let (_procs, vm_port) = scraped_into_vm(dir.path(), &client, &[], &sent).await;
    for s in &sent {
        let want = expected_classic(&s.histogram);
        let labels = s.escaped_labels();
        eventually(
            Duration::from_secs(60),
            &format!("{} in VictoriaMetrics as computed", s.name),
            || async {
                let (buckets, count, sum) =
                    classic_in_vm(&client, vm_port, s.name, &labels).await?;
                compare_classic(&buckets, &want)?;
                if count != count_of(&s.histogram) || sum != s.histogram.sum {
                    return Err(format!("_count {count}, _sum {sum}"));
                }
                Ok(())
            },
        )
        .await;
    }
}

/// With `--exposition.native-histogram-max-buckets 6`, the `le` bounds
/// VictoriaMetrics gets through vmagent are fewer than the uncapped
/// classic form's (computed from the buckets sent), each with the exact
/// cumulative count there: the uncapped one at that bound, or, at a coarse
/// bound no populated bucket ends at, the uncapped one at the greatest
/// bound below it (no observation lies between); `_count` and `_sum`
/// unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn a_capped_classic_form_has_the_exact_count_at_every_bound() {
    const CAP: &str = "6";
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let sent = sent(now_ms());
    let flags = ["--exposition.native-histogram-max-buckets", CAP];
    let (_procs, vm_port) = scraped_into_vm(dir.path(), &client, &flags, &sent).await;
    let (mut wrong, mut capped_forms) = (Vec::new(), Vec::new());
    for s in &sent {
        let full = expected_classic(&s.histogram);
        let labels = s.escaped_labels();
        let (reduced, count, sum) = eventually(
            Duration::from_secs(60),
            &format!("{} in VictoriaMetrics", s.name),
            || classic_in_vm(&client, vm_port, s.name, &labels),
        )
        .await;
        if reduced.len() >= full.len() {
            wrong.push(format!(
                "{}: the cap of {CAP} left all {} bounds",
                s.name,
                full.len()
            ));
        }
        for &(le, c) in &reduced {
            match full.iter().find(|(b, _)| same_le(*b, le)) {
                Some(&(_, uncapped)) if uncapped == c => {}
                Some(&(_, uncapped)) => wrong.push(format!(
                    "{}: le={le} has {c} capped, {uncapped} uncapped",
                    s.name
                )),
                None => {
                    // A coarse bound no populated fine bucket ends at: it
                    // lies between populated buckets (coarse bounds are
                    // fine ones), where the count is the uncapped count at
                    // the greatest bound below it.
                    let below = full.iter().take_while(|(b, _)| *b < le).last();
                    let count_there = below.map_or(0.0, |b| b.1);
                    if count_there != c {
                        wrong.push(format!(
                            "{}: le={le} has {c} capped, {count_there} below it uncapped ({below:?})",
                            s.name
                        ));
                    }
                }
            }
        }
        if (count, sum) != (count_of(&s.histogram), s.histogram.sum) {
            wrong.push(format!("{}: capped _count {count}, _sum {sum}", s.name));
        }
        capped_forms.push(format!("{}: {reduced:?}", s.name));
    }
    assert!(
        wrong.is_empty(),
        "the capped classic forms (--exposition.native-histogram-max-buckets {CAP}) break the promise:\n{}\n--- capped forms in VictoriaMetrics ---\n{}",
        wrong.join("\n"),
        capped_forms.join("\n")
    );
}

/// One sample as a Python parser reads it: name, labels, value, timestamp (ms).
type PySample = (String, BTreeMap<String, String>, f64, Option<i64>);

/// Parses `text` with `prometheus_client`'s text-format parser and `om`
/// with its strict OpenMetrics parser; the samples of each, or the
/// OpenMetrics parser's error.
fn python_read(text: &str, om: &str) -> (Vec<PySample>, Result<Vec<PySample>, String>) {
    const READ: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as text_parse
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
pages = json.load(sys.stdin)
def read(parse, page):
    out = []
    for f in parse(page):
        for s in f.samples:
            ts = None if s.timestamp is None else int(round(float(s.timestamp) * 1000))
            out.append([s.name, s.labels, repr(float(s.value)), ts])
    return out
result = {"text": read(text_parse, pages[0])}
try:
    result["om"] = read(om_parse, pages[1])
except Exception as e:
    result["om_error"] = repr(e)
print(json.dumps(result))
"#;
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", READ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(&[text, om]).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = |v: &serde_json::Value| -> Vec<PySample> {
        let mut s: Vec<PySample> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap().to_string(),
                    serde_json::from_value(s[1].clone()).unwrap(),
                    s[2].as_str().unwrap().parse().unwrap(),
                    s[3].as_i64(),
                )
            })
            .collect();
        s.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        s
    };
    let om = match json.get("om") {
        Some(v) => Ok(samples(v)),
        None => Err(json["om_error"].to_string()),
    };
    (samples(&json["text"]), om)
}

/// A sample with its `le` label as a number, so that two encoders'
/// spellings of one bound compare equal.
type Key = (
    String,
    BTreeMap<String, String>,
    Option<u64>,
    u64,
    Option<i64>,
);

fn key(s: &PySample) -> Key {
    let mut labels = s.1.clone();
    let le = labels.remove("le").map(|le| parse_le(&le).to_bits());
    (s.0.clone(), labels, le, s.2.to_bits(), s.3)
}

/// The in-process app holding the native histograms sent at `t`.
async fn app_with_histograms(t: i64) -> axum::Router {
    let (app, _) = app(&[]);
    let (status, body) = write(&app, &to_request(&sent(t))).await;
    assert_eq!(status, 204, "{body}");
    app
}

/// The text page of the native histograms passes `promtool check metrics`:
/// it parses, and client_golang's linter finds nothing to say but that the
/// gauge histogram's lines have no HELP (the text format has no gauge
/// histogram type: its lines are untyped, each its own family, and
/// promgate writes no HELP for them).
#[tokio::test]
async fn the_text_page_passes_promtool_check_metrics() {
    let app = app_with_histograms(now_ms()).await;
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, 200);
    let (code, lint) = promtool_check(&text);
    let allowed: Vec<String> = ["_bucket", "_count", "_sum"]
        .iter()
        .map(|suffix| format!("queue_job_size_bytes{suffix} no help text"))
        .collect();
    let findings: Vec<&str> = lint
        .lines()
        .filter(|l| !l.is_empty() && !allowed.iter().any(|a| a == l))
        .collect();
    assert!(
        (code == 0 || code == 3) && findings.is_empty(),
        "promtool check metrics (exit {code}): {lint}\n--- page ---\n{text}"
    );
}

/// The text page holds each native histogram's classic form as computed
/// from the buckets sent (read by `prometheus_client`'s text parser); the
/// OpenMetrics page reads in `prometheus_client`'s strict OpenMetrics
/// parser, with the same samples as the text page.
#[tokio::test]
async fn the_openmetrics_page_reads_in_the_strict_parser_with_the_text_pages_samples() {
    let t = now_ms();
    let sent = sent(t);
    let app = app_with_histograms(t).await;
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, 200);
    let (status, om) = send(&app, "GET", "/metrics", &[("accept", OPENMETRICS)], vec![]).await;
    assert_eq!(status, 200);
    let (text_samples, om_samples) = python_read(&text, &om);
    let om_samples =
        om_samples.unwrap_or_else(|e| panic!("the OpenMetrics parser refused the page: {e}\n{om}"));

    // The text page: each histogram's classic form, as computed.
    for s in &sent {
        let labels = s.escaped_labels();
        let of = |suffix: &str| -> Vec<&PySample> {
            text_samples
                .iter()
                .filter(|x| x.0 == format!("{}{suffix}", s.name))
                .collect()
        };
        let mut buckets = Vec::new();
        for b in of("_bucket") {
            let mut l = b.1.clone();
            let le = l.remove("le").expect("a _bucket without le");
            assert_eq!(l, labels, "{b:?}");
            assert_eq!(b.3, Some(t), "{b:?}");
            buckets.push((parse_le(&le), b.2));
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Err(e) = compare_classic(&buckets, &expected_classic(&s.histogram)) {
            panic!("{}_bucket on the text page: {e}\n{text}", s.name);
        }
        for (suffix, want) in [
            ("_count", count_of(&s.histogram)),
            ("_sum", s.histogram.sum),
        ] {
            let got: Vec<_> = of(suffix).iter().map(|x| (&x.1, x.2, x.3)).collect();
            assert_eq!(got, [(&labels, want, Some(t))], "{}{suffix}", s.name);
        }
    }

    // The OpenMetrics page: the same samples.
    let text_keys: Vec<Key> = text_samples.iter().map(key).collect();
    let mut om_keys: Vec<Key> = om_samples.iter().map(key).collect();
    let mut sorted_text = text_keys.clone();
    sorted_text.sort();
    om_keys.sort();
    assert_eq!(
        om_keys, sorted_text,
        "the OpenMetrics page's samples differ from the text page's\n--- text ---\n{text}\n--- OpenMetrics ---\n{om}"
    );
}

/// An instant query's answer from the Prometheus on `port`: each series'
/// labels and value, or why there is none yet.
async fn instant(
    client: &reqwest::Client,
    port: u16,
    promql: &str,
) -> Result<BTreeMap<BTreeMap<String, String>, f64>, String> {
    let mut out = BTreeMap::new();
    for r in query(client, port, promql).await? {
        let labels: BTreeMap<String, String> =
            serde_json::from_value(r["metric"].clone()).map_err(|e| e.to_string())?;
        let value = match r["value"][1].as_str() {
            Some("NaN") => f64::NAN,
            Some("+Inf") => f64::INFINITY,
            Some("-Inf") => f64::NEG_INFINITY,
            Some(v) => v.parse().map_err(|_| format!("{promql}: {r}"))?,
            None => return Err(format!("{promql}: {r}")),
        };
        out.insert(labels, value);
    }
    Ok(out)
}

/// Equal values: exactly, or within `rel` (relative), NaN equal to NaN.
fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// The histograms Prometheus 2.42 can take: the exponential ones.
fn exponential(t: i64) -> Vec<Sent> {
    sent(t)
        .into_iter()
        .filter(|s| s.histogram.schema != -53)
        .collect()
}

/// The same histograms with each label name as promgate's protobuf page
/// writes it for a scraper naming no escaping (`service.name` as
/// `service_name`), for the Prometheus that receives them directly.
fn escaped(sent: Vec<Sent>) -> Vec<Sent> {
    sent.into_iter()
        .map(|mut s| {
            for l in &mut s.labels {
                if l.0 == "service.name" {
                    l.0 = "service_name";
                }
            }
            s
        })
        .collect()
}

/// Prometheus A scrapes promgate's protobuf page; Prometheus B receives the
/// same native histograms by remote write: `histogram_count`,
/// `histogram_sum`, `histogram_fraction(0, 1, …)` and the 0.5 and 0.99
/// quantiles of every series agree.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scraping_the_protobuf_page_holds_the_histograms_sent() {
    scraped_equals_received(&[]).await;
}

/// The bucket cap is for the classic form only: a Prometheus scraping the
/// protobuf page of a promgate started with
/// `--exposition.native-histogram-max-buckets 2` still holds the native
/// histograms as sent (the same comparison as above).
#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_cap_leaves_the_protobuf_pages_histograms_unchanged() {
    scraped_equals_received(&["--exposition.native-histogram-max-buckets", "2"]).await;
}

/// Prometheus A scrapes a promgate started with `flags` holding the
/// exponential histograms sent; Prometheus B receives them by remote
/// write; the functions of every series agree in both.
async fn scraped_equals_received(flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let t = now_ms();
    let (_gate, addr) = spawn_promgate(flags);
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(snappy(&to_request(&exponential(t))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());

    let a_dir = dir.path().join("a");
    let b_dir = dir.path().join("b");
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    std::fs::write(a_dir.join("prometheus.yml"), gate_scrape_config(addr)).unwrap();
    std::fs::write(b_dir.join("prometheus.yml"), "scrape_configs: []\n").unwrap();
    let (a_port, b_port) = (free_port(), free_port());
    let prometheus = |port: u16, extra: &[&str], dir: &std::path::Path| {
        let mut args = vec![
            "--config.file=prometheus.yml".to_string(),
            "--storage.tsdb.path=data".into(),
            "--enable-feature=native-histograms".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        spawn(&tool("prometheus"), &args, dir)
    };
    let _a = prometheus(a_port, &[], &a_dir);
    let _b = prometheus(b_port, &["--web.enable-remote-write-receiver"], &b_dir);

    // B, once it listens, receives the histograms directly.
    let direct = snappy(&to_request(&escaped(exponential(t))));
    eventually(
        Duration::from_secs(60),
        "Prometheus B to take the remote write",
        || async {
            let resp = client
                .post(format!("http://127.0.0.1:{b_port}/api/v1/write"))
                .header("content-encoding", "snappy")
                .header("content-type", "application/x-protobuf")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .body(direct.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            match resp.status().as_u16() {
                204 | 200 => Ok(()),
                s => Err(format!("{s}: {}", resp.text().await.unwrap_or_default())),
            }
        },
    )
    .await;

    // B's answers first, for every series and function.
    const FUNCTIONS: [(&str, f64); 5] = [
        ("histogram_count({})", 0.0),
        ("histogram_sum({})", 0.0),
        ("histogram_fraction(0, 1, {})", 0.0),
        ("histogram_quantile(0.5, {})", 1e-9),
        ("histogram_quantile(0.99, {})", 1e-9),
    ];
    let mut expected = Vec::new();
    for s in exponential(t) {
        for (f, rel) in FUNCTIONS {
            let promql = f.replace("{}", s.name);
            let want = eventually(
                Duration::from_secs(30),
                &format!("{promql} in Prometheus B"),
                || async {
                    let r = instant(&client, b_port, &promql).await?;
                    if r.len() == 1 {
                        Ok(r)
                    } else {
                        Err(format!("{r:?}"))
                    }
                },
            )
            .await;
            // B holds what was sent: its count and sum as sent.
            let sent_value = match f {
                "histogram_count({})" => Some(common::native::count_of(&s.histogram)),
                "histogram_sum({})" => Some(s.histogram.sum),
                _ => None,
            };
            if let Some(v) = sent_value {
                assert_eq!(
                    want.values().collect::<Vec<_>>(),
                    [&v],
                    "{promql} in Prometheus B"
                );
            }
            expected.push((promql, rel, want));
        }
    }
    for (promql, rel, want) in &expected {
        eventually(
            Duration::from_secs(60),
            &format!("{promql} in Prometheus A equal to B's {want:?}"),
            || async {
                let got = instant(&client, a_port, promql).await?;
                let same = got.len() == want.len()
                    && got
                        .iter()
                        .zip(want)
                        .all(|((gl, gv), (wl, wv))| gl == wl && close(*gv, *wv, *rel));
                if same {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            },
        )
        .await;
    }
}
