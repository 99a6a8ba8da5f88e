//! The push API against its reference and its real clients: the same
//! sequence of pushes to Debian's Pushgateway and to promgate, statuses and
//! pages compared; Python's `prometheus_client` pushing and deleting; pushed
//! series reaching VictoriaMetrics through a vmagent beside remote-written
//! ones; `promgate push`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::time::Duration;

use common::*;
use promgate::ingest::push::parse_text;
use promgate::model::MetricType;

/// One request of a sequence.
struct Step {
    method: &'static str,
    path: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
    /// Why the step is there.
    what: &'static str,
}

fn step(method: &'static str, path: &'static str, body: &str, what: &'static str) -> Step {
    Step {
        method,
        path,
        body: body.as_bytes().to_vec(),
        headers: vec![],
        what,
    }
}

async fn send(client: &reqwest::Client, base: &str, s: &Step) -> (u16, String) {
    let method = reqwest::Method::from_bytes(s.method.as_bytes()).unwrap();
    let mut req = client
        .request(method, format!("{base}{}", s.path))
        .body(s.body.clone());
    for (k, v) in &s.headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// A page reduced to what both servers must agree on: every sample (name,
/// sorted labels, value; the two push-time gauges only as zero or not), the
/// TYPE and HELP of every family that has them. The Pushgateway's own
/// families (`go_`, `process_`, `pushgateway_`) are left out.
/// Sample name, sorted labels, value.
type SampleKey = (String, Vec<(String, String)>, String);

#[derive(Debug, PartialEq)]
struct Page {
    samples: BTreeSet<SampleKey>,
    types: BTreeMap<String, MetricType>,
    help: BTreeMap<String, String>,
}

fn reduce(page: &str) -> Page {
    let families =
        parse_text(page.as_bytes()).unwrap_or_else(|e| panic!("page does not parse: {e}\n{page}"));
    let mut out = Page {
        samples: BTreeSet::new(),
        types: BTreeMap::new(),
        help: BTreeMap::new(),
    };
    for f in families {
        if ["go_", "process_", "pushgateway_"]
            .iter()
            .any(|p| f.name.starts_with(p))
        {
            continue;
        }
        if f.metric_type != MetricType::Unknown {
            out.types.insert(f.name.to_string(), f.metric_type);
        }
        if let Some(h) = &f.help {
            out.help.insert(f.name.to_string(), h.clone());
        }
        for s in f.samples {
            // An empty value is an absent label to every scraper; only an
            // empty `instance` tells one (honor_labels) not to add its own.
            let mut labels: Vec<(String, String)> = s
                .labels
                .to_vec()
                .into_iter()
                .filter(|(n, v)| !v.is_empty() || n == "instance")
                .collect();
            labels.sort();
            let value = if s.name == "push_time_seconds" || s.name == "push_failure_time_seconds" {
                (if s.value == 0.0 { "zero" } else { "set" }).to_string()
            } else {
                format!("{:?}", s.value)
            };
            out.samples.insert((s.name.into_owned(), labels, value));
        }
    }
    out
}

const HISTOGRAM: &str = r#"# HELP rpc_seconds RPC latency, with "quotes" and a \\ backslash.\nand a newline
# TYPE rpc_seconds histogram
rpc_seconds_bucket{method="get",le="0.1"} 3
rpc_seconds_bucket{method="get",le="1"} 7
rpc_seconds_bucket{method="get",le="+Inf"} 9
rpc_seconds_sum{method="get"} 4.5
rpc_seconds_count{method="get"} 9
# TYPE queue_seconds summary
queue_seconds{quantile="0.5"} 0.25
queue_seconds{quantile="0.99"} 1.5
queue_seconds_sum 30
queue_seconds_count 100
escaped{path="C:\\dir",quote="say \"hi\"",nl="a\nb"} 1
"#;

/// A counter and a histogram (buckets without +Inf) as delimited protobuf,
/// as client_golang's `push` package sends them.
fn protobuf_body() -> Vec<u8> {
    use promgate::proto::client::{
        Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType as T,
    };
    use prost::Message;
    let label = |n: &str, v: &str| LabelPair {
        name: Some(n.into()),
        value: Some(v.into()),
    };
    let families = [
        MetricFamily {
            name: Some("proto_requests_total".into()),
            help: Some("Requests.".into()),
            r#type: Some(T::Counter as i32),
            metric: vec![Metric {
                label: vec![label("code", "200")],
                counter: Some(Counter {
                    value: Some(17.0),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        MetricFamily {
            name: Some("proto_seconds".into()),
            help: Some("Durations.".into()),
            r#type: Some(T::Histogram as i32),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(5),
                    sample_sum: Some(2.5),
                    bucket: vec![
                        Bucket {
                            upper_bound: Some(0.5),
                            cumulative_count: Some(3),
                            ..Default::default()
                        },
                        Bucket {
                            upper_bound: Some(1.0),
                            cumulative_count: Some(4),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
    ];
    let mut out = Vec::new();
    for f in families {
        f.encode_length_delimited(&mut out).unwrap();
    }
    out
}

fn steps() -> Vec<Step> {
    let mut gzipped = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzipped
        .write_all(b"# TYPE zipped gauge\nzipped 42\n")
        .unwrap();
    let gzipped = gzipped.finish().unwrap();
    vec![
        step(
            "PUT",
            "/metrics/job/batch",
            "# TYPE jobs_done counter\n# HELP jobs_done Jobs done.\njobs_done{kind=\"a\"} 3\njobs_done{kind=\"b\"} 4\n\
             # TYPE temperature gauge\ntemperature -1.5e-3\nuntyped_thing 7\n",
            "a PUT with a counter, a gauge and an untyped family",
        ),
        step(
            "POST",
            "/metrics/job/batch",
            "# TYPE temperature gauge\ntemperature{room=\"x\"} 20\n",
            "a POST replaces only the families it carries",
        ),
        step(
            "PUT",
            "/metrics/job/batch/instance/host-1",
            HISTOGRAM,
            "a histogram, a summary and escapes, grouped by instance",
        ),
        step(
            "PUT",
            "/metrics/job/batch/zone/eu",
            "jobs_done{kind=\"c\",zone=\"us\",job=\"other\"} 1\n",
            "grouping labels override the body's (type counter from the first group: untyped here)",
        ),
        step(
            "PUT",
            "/metrics/job@base64/L3Zhci90bXA/path@base64/=/name/%CE%A0%CF%81%CE%BF",
            "base64_pushed 1\n",
            "a base64 job with a slash, an empty base64 value, percent-encoded UTF-8",
        ),
        step(
            "PUT",
            "/metrics/job/other",
            "# TYPE temperature counter\ntemperature 1\n",
            "a type conflict with another group is refused and recorded",
        ),
        step(
            "PUT",
            "/metrics/job/batch",
            "jobs_done{kind=\"a\",instance=\"host-1\"} 1\nrpc_seconds_sum{method=\"get\"} 1\n",
            "a series another group holds is refused",
        ),
        step(
            "PUT",
            "/metrics/job/batch",
            "this is { not the text format\n",
            "a body that does not parse is refused, not recorded",
        ),
        step(
            "PUT",
            "/metrics/job/stamped",
            "stamped 1 1700000000000\n",
            "timestamps are refused and recorded",
        ),
        step(
            "PUT",
            "/metrics/job/dup",
            "dup{a=\"1\"} 1\ndup{a=\"1\"} 2\n",
            "two samples of one series are refused",
        ),
        step(
            "PUT",
            "/metrics/job/j/a",
            "x 1\n",
            "an odd number of path components",
        ),
        step(
            "PUT",
            "/metrics/job/j/__a/b",
            "x 1\n",
            "a reserved label name in the path",
        ),
        Step {
            method: "PUT",
            path: "/metrics/job/zipped",
            body: gzipped,
            headers: vec![("Content-Encoding", "gzip")],
            what: "a gzip body",
        },
        Step {
            method: "PUT",
            path: "/metrics/job/proto",
            body: protobuf_body(),
            headers: vec![(
                "Content-Type",
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
            )],
            what: "a delimited protobuf body with a counter and a histogram",
        },
        step(
            "PUT",
            "/metrics/job/partial",
            "# TYPE partial_seconds histogram\npartial_seconds_bucket{le=\"1.0\"} 2\npartial_seconds_bucket{le=\"1e3\"} 3.7\n\
             # TYPE partial_q summary\npartial_q{quantile=\"0.50\"} 1\n",
            "a histogram without +Inf, _sum and _count, a summary without _sum and _count",
        ),
        step(
            "POST",
            "/metrics/job/batch",
            "",
            "an empty POST only updates the push time",
        ),
        step(
            "PUT",
            "/metrics/job/batch/zone/eu",
            "",
            "an empty PUT empties the group",
        ),
        step(
            "DELETE",
            "/metrics/job/batch/instance/host-1",
            "",
            "a DELETE removes the group",
        ),
        step(
            "DELETE",
            "/metrics/job/never-pushed",
            "",
            "deleting a group that does not exist is not an error",
        ),
        step(
            "PUT",
            "/metrics/job/hh",
            "# TYPE hx histogram\nhx_bucket{le=\"1\"} 1\nhx_bucket{le=\"+Inf\"} 1\nhx_sum 1\nhx_count 1\n",
            "a histogram, to be replaced by a family named like its count",
        ),
        step(
            "PUT",
            "/metrics/job/hh",
            "# TYPE hx_count gauge\nhx_count{z=\"1\"} 5\n",
            "a PUT of a gauge named like the histogram's count it replaces",
        ),
        step(
            "PUT",
            "/metrics/job/ss",
            "# HELP sm A summary.\n# TYPE sm summary\nsm{quantile=\"0.5\"} 1\nsm_sum 2\nsm_count 3\n",
            "a summary, to be replaced by a counter named like its sum",
        ),
        step(
            "PUT",
            "/metrics/job/ss",
            "# HELP sm_sum Its own help.\n# TYPE sm_sum counter\nsm_sum 7\n",
            "a PUT of a counter with its own HELP named like the summary's sum it replaces",
        ),
        step(
            "DELETE",
            "/metrics/job/hh",
            "",
            "a DELETE of the group holding the gauge",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_pushes_give_the_pushgateways_statuses_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let (_pgw, pgw_port) = spawn_pushgateway(dir.path());
    let (_pg, pg_addr) = spawn_promgate(&[]);
    let client = reqwest::Client::new();
    let pgw = format!("http://127.0.0.1:{pgw_port}");
    let pg = format!("http://{pg_addr}");
    eventually(Duration::from_secs(20), "the Pushgateway to start", || {
        let client = client.clone();
        let url = format!("{pgw}/-/ready");
        async move { fetch_text(&client, &url).await.map(|_| ()) }
    })
    .await;

    for s in steps() {
        let (want, want_body) = send(&client, &pgw, &s).await;
        let (got, got_body) = send(&client, &pg, &s).await;
        assert_eq!(
            got, want,
            "{}: promgate answered {got} ({got_body:?}), the Pushgateway {want} ({want_body:?})",
            s.what
        );
        if got >= 400 {
            assert!(
                got_body.trim().lines().count() == 1,
                "{}: not a one-line reason: {got_body:?}",
                s.what
            );
        }
        let theirs = reduce(
            &fetch_text(&client, &format!("{pgw}/metrics"))
                .await
                .unwrap(),
        );
        let ours = reduce(&fetch_text(&client, &format!("{pg}/metrics")).await.unwrap());
        let missing: Vec<_> = theirs.samples.difference(&ours.samples).collect();
        let extra: Vec<_> = ours.samples.difference(&theirs.samples).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: pages differ\nonly on the Pushgateway: {missing:#?}\nonly on promgate: {extra:#?}",
            s.what
        );
        assert_eq!(ours.types, theirs.types, "{}: TYPE lines differ", s.what);
        assert_eq!(ours.help, theirs.help, "{}: HELP lines differ", s.what);
    }
}

/// Runs a Python program with the real `prometheus_client` against `base`.
fn python(program: &str) -> (bool, String) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(program)
        .output()
        .expect("python3");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_client_pushes_adds_and_deletes() {
    let (_pg, addr) = spawn_promgate(&[]);
    let client = reqwest::Client::new();
    let page = || {
        let client = client.clone();
        async move {
            reduce(
                &fetch_text(&client, &format!("http://{addr}/metrics"))
                    .await
                    .unwrap(),
            )
        }
    };
    let program = |body: &str| {
        format!(
            "from prometheus_client import CollectorRegistry, Gauge, Counter, Histogram\n\
             from prometheus_client import push_to_gateway, pushadd_to_gateway, delete_from_gateway\n\
             r = CollectorRegistry()\n\
             key = {{'instance': 'host/1', 'empty': ''}}\n\
             {body}\n"
        )
    };
    let (ok, err) = python(&program(&format!(
        "g = Gauge('last_success_unixtime', 'Last success.', registry=r); g.set(1234.5)\n\
         h = Histogram('run_seconds', 'Run time.', registry=r, buckets=(1, 10)); h.observe(3)\n\
         push_to_gateway('{addr}', job='backup', registry=r, grouping_key=key)"
    )));
    assert!(ok, "push_to_gateway failed: {err}");
    let p = page().await;
    let labels = |extra: &[(&str, &str)]| {
        let mut l: Vec<(String, String)> =
            [("empty", ""), ("instance", "host/1"), ("job", "backup")]
                .iter()
                .chain(extra)
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .filter(|(_, v)| !v.is_empty())
                .collect();
        l.sort();
        l
    };
    let has = |p: &Page, name: &str, extra: &[(&str, &str)], value: &str| {
        p.samples
            .contains(&(name.to_string(), labels(extra), value.to_string()))
    };
    assert!(has(&p, "last_success_unixtime", &[], "1234.5"), "{p:#?}");
    assert!(
        has(&p, "run_seconds_bucket", &[("le", "10")], "1.0"),
        "{p:#?}"
    );
    assert!(has(&p, "run_seconds_count", &[], "1.0"), "{p:#?}");
    assert_eq!(p.types.get("run_seconds"), Some(&MetricType::Histogram));
    assert_eq!(
        p.help.get("last_success_unixtime").map(String::as_str),
        Some("Last success.")
    );

    // pushadd replaces only the families it carries.
    let (ok, err) = python(&program(&format!(
        "c = Counter('files', 'Files.', registry=r); c.inc(7)\n\
         pushadd_to_gateway('{addr}', job='backup', registry=r, grouping_key=key)"
    )));
    assert!(ok, "pushadd_to_gateway failed: {err}");
    let p = page().await;
    assert!(has(&p, "files_total", &[], "7.0"), "{p:#?}");
    assert!(has(&p, "last_success_unixtime", &[], "1234.5"), "{p:#?}");

    let (ok, err) = python(&program(&format!(
        "delete_from_gateway('{addr}', job='backup', grouping_key=key)"
    )));
    assert!(ok, "delete_from_gateway failed: {err}");
    let p = page().await;
    assert!(p.samples.is_empty(), "{p:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pushed_series_reach_victoria_metrics_beside_remote_written_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_pg, addr) = spawn_promgate(&[]);
    let (_vm, vm_port) = spawn_victoria_metrics(dir.path());
    let scrape = format!(
        "scrape_configs:\n  - job_name: promgate\n    honor_labels: true\n    scrape_interval: 1s\n    \
         static_configs:\n      - targets: ['{addr}']\n"
    );
    let (_agent, _) = spawn_vmagent(dir.path(), &scrape, vm_port);
    let client = reqwest::Client::new();
    let resp = client
        .put(format!("http://{addr}/metrics/job/nightly/region/eu"))
        .body("# TYPE backup_bytes gauge\nbackup_bytes{disk=\"a\"} 123\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let series: Series = (
        &[("__name__", "backup_bytes"), ("disk", "b"), ("job", "rw")],
        &[(456.0, now_ms())],
    );
    let req = request(&[series], &[]);
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .body(snappy(&req))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let result = eventually(
        Duration::from_secs(60),
        "both series in VictoriaMetrics",
        || {
            let client = client.clone();
            async move {
                let r = query(&client, vm_port, "backup_bytes").await?;
                if r.len() == 2 {
                    Ok(r)
                } else {
                    Err(format!("{r:?}"))
                }
            }
        },
    )
    .await;
    let mut seen: Vec<(serde_json::Value, String)> = result
        .iter()
        .map(|s| {
            (
                s["metric"].clone(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort_by_key(|(_, v)| v.clone());
    // The pushed series keeps its grouping labels and gets no instance (its
    // `instance=""` kept vmagent from adding promgate's address).
    assert_eq!(
        seen[0].0,
        serde_json::json!({"__name__": "backup_bytes", "disk": "a", "job": "nightly", "region": "eu"})
    );
    assert_eq!(seen[0].1, "123");
    assert_eq!(seen[1].0["job"], "rw");
    assert_eq!(seen[1].1, "456");
    let t = query(&client, vm_port, "push_time_seconds{job=\"nightly\"}")
        .await
        .unwrap();
    assert_eq!(t.len(), 1, "{t:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn promgate_push_sends_text_stamped_now() {
    let (_pg, addr) = spawn_promgate(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.prom");
    std::fs::write(
        &file,
        "# HELP deploys_total Deploys.\n# TYPE deploys_total counter\ndeploys_total{app=\"api\"} 5\nold 1 1700000000000\n",
    )
    .unwrap();
    let before = now_ms();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_promgate"))
        .args(["push", "--url", &format!("http://{addr}/api/v1/write")])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = now_ms();
    let client = reqwest::Client::new();
    let page = fetch_text(&client, &format!("http://{addr}/metrics"))
        .await
        .unwrap();
    let line = page
        .lines()
        .find(|l| l.starts_with("deploys_total{"))
        .unwrap_or_else(|| panic!("{page}"));
    let ts: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (before..=after).contains(&ts),
        "{line} not stamped between {before} and {after}"
    );
    assert!(page.contains("old 1 1700000000000\n"), "{page}");
    assert!(page.contains("# TYPE deploys_total counter\n"), "{page}");

    // A receiver that refuses: the answer is the exit status and message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_promgate"))
        .args(["push", "--url", &format!("http://{addr}/nowhere"), "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));

    // Pointed at the push API by mistake: the refusal and what to do.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_promgate"))
        .args(["push", "--url", &format!("http://{addr}/metrics/job/x")])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("400") && stderr.contains("send to /api/v1/write"),
        "{stderr}"
    );
    // https is refused up front, by name, and nothing is sent.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_promgate"))
        .args(["push", "--url", &format!("https://{addr}/api/v1/write")])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("plain http:// only"), "{stderr}");
}

fn now_ms() -> i64 {
    promgate::ingest::now_ms()
}

/// The Pushgateway README's `curl` examples, run as written (host and port
/// replaced), each against an empty promgate and an empty Pushgateway:
/// the same answers and pages.
#[tokio::test(flavor = "multi_thread")]
async fn the_pushgateway_readme_curl_examples_work_unchanged() {
    let examples = [
        r#"echo "some_metric 3.14" | curl -s -o /dev/null -w '%{http_code}' --data-binary @- http://HOST/metrics/job/some_job"#,
        "cat <<EOF | curl -s -o /dev/null -w '%{http_code}' --data-binary @- http://HOST/metrics/job/some_job/instance/some_instance\n\
         # TYPE some_metric counter\n\
         some_metric{label=\"val1\"} 42\n\
         # TYPE another_metric gauge\n\
         # HELP another_metric Just an example.\n\
         another_metric 2398.283\n\
         EOF",
        r#"echo 'some_metric{foo="bar"} 3.14' | curl -s -o /dev/null -w '%{http_code}' --data-binary @- http://HOST/metrics/job/directory_cleaner/path@base64/$(printf %s /var/tmp | base64 | tr '+/' '-_' | tr -d '=')"#,
        r#"echo "some_metric 3.14" | gzip | curl -s -o /dev/null -w '%{http_code}' -H 'Content-Encoding: gzip' --data-binary @- http://HOST/metrics/job/some_job"#,
    ];
    let dir = tempfile::tempdir().unwrap();
    let (_pgw, pgw_port) = spawn_pushgateway(dir.path());
    let (_pg, pg_addr) = spawn_promgate(&[]);
    let client = reqwest::Client::new();
    let pgw = format!("127.0.0.1:{pgw_port}");
    let pg = pg_addr.to_string();
    eventually(Duration::from_secs(20), "the Pushgateway to start", || {
        let client = client.clone();
        let url = format!("http://{pgw}/-/ready");
        async move { fetch_text(&client, &url).await.map(|_| ()) }
    })
    .await;
    for example in examples {
        let mut pages = Vec::new();
        for host in [&pgw, &pg] {
            let wipe = client
                .put(format!("http://{host}/api/v1/admin/wipe"))
                .send()
                .await
                .unwrap();
            // The Pushgateway serves the admin API only with a flag; delete
            // what the examples push instead.
            if !wipe.status().is_success() {
                for path in [
                    "job/some_job",
                    "job/some_job/instance/some_instance",
                    "job/directory_cleaner/path@base64/L3Zhci90bXA",
                ] {
                    client
                        .delete(format!("http://{host}/metrics/{path}"))
                        .send()
                        .await
                        .unwrap();
                }
            }
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(example.replace("HOST", host))
                .output()
                .unwrap();
            let code = String::from_utf8_lossy(&out.stdout).into_owned();
            let page = reduce(
                &fetch_text(&client, &format!("http://{host}/metrics"))
                    .await
                    .unwrap(),
            );
            pages.push((code, page));
        }
        assert_eq!(pages[1].0, "200", "{example}");
        assert_eq!(pages[0], pages[1], "{example}");
    }
}
