//! Shared test helpers: request builders, the in-process router, the real
//! promgate binary, and the real peers (Prometheus, vmagent, VictoriaMetrics).
#![allow(dead_code)]

pub mod native;
pub mod pki;
pub mod v2;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use prost::Message;
use tower::ServiceExt;

use promgate::config::Config;
use promgate::http::{AppState, router};
use promgate::proto::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};

pub use promgate::proto::metric_metadata::MetricType;

/// A label set as (name, value) pairs; also used for HTTP headers.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// One series: labels and (value, timestamp) samples.
pub type Series<'a> = (Labels<'a>, &'a [(f64, i64)]);

/// Builds a WriteRequest from series and (family, type, help) metadata.
pub fn request(series: &[Series], metadata: &[(&str, MetricType, &str)]) -> WriteRequest {
    WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(value, timestamp)| Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        metadata: metadata
            .iter()
            .map(|(name, t, help)| MetricMetadata {
                r#type: *t as i32,
                metric_family_name: name.to_string(),
                help: help.to_string(),
                unit: String::new(),
            })
            .collect(),
    }
}

/// The protobuf encoding of `req`, snappy block-compressed.
pub fn snappy(req: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

/// A fresh in-process app configured by promgate flags (a
/// `--web.config.file` among them is loaded, and must be valid).
pub fn app(args: &[&str]) -> (Router, AppState) {
    let config = Config::try_parse_from(std::iter::once("promgate").chain(args.iter().copied()))
        .expect("valid flags");
    let state = AppState::load(&config).expect("valid web config");
    (router(state.clone()), state)
}

/// Sends `method path` with `headers` and `body` through the router; returns
/// status and body text.
pub async fn send(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// POSTs `body` to /api/v1/write with the given headers; returns status and body text.
pub async fn post(app: &Router, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, String) {
    send(app, "POST", "/api/v1/write", headers, body).await
}

/// POSTs a snappy remote-write request with the standard headers.
pub async fn write(app: &Router, req: &WriteRequest) -> (StatusCode, String) {
    post(app, PROMETHEUS_HEADERS, snappy(req)).await
}

/// The headers Prometheus sends with remote-write 1.0.
pub const PROMETHEUS_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

/// GETs `path`; returns status and body text.
pub async fn get(app: &Router, path: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8(bytes.to_vec()).expect("UTF-8 page"),
    )
}

/// The sample lines of a page (no comments), for order-insensitive comparison.
pub fn sample_lines(page: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = page.lines().filter(|l| !l.starts_with('#')).collect();
    lines.sort_unstable();
    lines
}

/// The value of `promgate_<name>` with exactly `labels` (e.g. `{reason="x"}`) on /-/metrics.
pub async fn self_metric(app: &Router, series: &str) -> f64 {
    let (_, page) = get(app, "/-/metrics").await;
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not on /-/metrics:\n{page}"))
        .parse()
        .unwrap()
}

/// The path of a program the tests need; fails loudly when it is missing.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed: run ./scripts/test, which installs the Debian packages the tests need"
    );
}

/// A child process killed (and reaped) when dropped, so every test stops what it starts.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` with `args`, its output going to a log file in `dir`.
pub fn spawn(program: &PathBuf, args: &[String], dir: &std::path::Path) -> Proc {
    let name = program.file_name().unwrap().to_string_lossy().into_owned();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc { child, name }
}

/// A port that was free a moment ago, for peers that cannot report the port
/// they bound (Prometheus, vmagent, VictoriaMetrics).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scrape config of one job, `gate`: `target` every second, with
/// `honor_labels` (as the receiver-scraper scrapes promgate).
pub fn gate_scrape_config(target: SocketAddr) -> String {
    format!(
        "scrape_configs:\n  - job_name: gate\n    scrape_interval: 1s\n    honor_labels: true\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
}

/// Debian's Prometheus in `dir` (its config, `prometheus.yml`, and its
/// data, `prometheus-data/`) scraping `target` as [`gate_scrape_config`]
/// says, with `extra` flags, on a free port; and that port.
pub fn spawn_prometheus_scraping(
    dir: &std::path::Path,
    target: SocketAddr,
    extra: &[&str],
) -> (Proc, u16) {
    std::fs::write(dir.join("prometheus.yml"), gate_scrape_config(target)).unwrap();
    let port = free_port();
    let mut args = vec![
        "--config.file=prometheus.yml".to_string(),
        "--storage.tsdb.path=prometheus-data".into(),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    (spawn(&tool("prometheus"), &args, dir), port)
}

/// Starts the real promgate binary on 127.0.0.1 with a port chosen by the
/// kernel, and returns it with the address it logged.
pub fn spawn_promgate(extra: &[&str]) -> (Proc, SocketAddr) {
    spawn_logging_server(
        env!("CARGO_BIN_EXE_promgate"),
        extra,
        &[],
        "promgate listening",
    )
}

/// [`spawn_promgate`] with environment variables `env` added to the test's.
pub fn spawn_promgate_env(extra: &[&str], env: &[(&str, &str)]) -> (Proc, SocketAddr) {
    spawn_logging_server(
        env!("CARGO_BIN_EXE_promgate"),
        extra,
        env,
        "promgate listening",
    )
}

/// Starts the real mock-exporter binary on 127.0.0.1 with a kernel-chosen port.
pub fn spawn_mock_exporter(extra: &[&str]) -> (Proc, SocketAddr) {
    let program = mock_exporter_bin();
    spawn_logging_server(
        program.to_str().unwrap(),
        extra,
        &[],
        "mock-exporter listening",
    )
}

/// The mock-exporter binary, built beside promgate's in the same target
/// directory and profile.
///
/// It belongs to the workspace's other package, so Cargo gives promgate's
/// tests no `CARGO_BIN_EXE_mock-exporter`, and `cargo test -p promgate` does
/// not build it. `./scripts/test` (`--workspace`) and a plain `cargo test` or
/// `cargo nextest run` at the root (both crates are default members) build
/// every binary before running any test. Fails with the command to run when
/// the binary is missing or older than its sources, rather than testing a
/// stale exporter.
pub fn mock_exporter_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_promgate"))
        .with_file_name(format!("mock-exporter{}", std::env::consts::EXE_SUFFIX));
    let build = "run `cargo build -p mock-exporter` (with the same profile as these tests), \
                 or run the tests of the whole workspace (`./scripts/test`, `cargo test --workspace`)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {build}", bin.display()));
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mock-exporter");
    let mut dirs = vec![crate_dir.join("src")];
    let mut newest = std::fs::metadata(crate_dir.join("Cargo.toml"))
        .and_then(|m| m.modified())
        .unwrap();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                newest = newest.max(meta.modified().unwrap());
            }
        }
    }
    assert!(
        built >= newest,
        "{} is older than mock-exporter/src: {build}",
        bin.display()
    );
    bin
}

/// Starts one of our binaries on `127.0.0.1:0` and reads the address it
/// bound from its `marker` log line.
fn spawn_logging_server(
    program: &str,
    extra: &[&str],
    env: &[(&str, &str)],
    marker: &'static str,
) -> (Proc, SocketAddr) {
    let mut child = Command::new(program)
        .envs(env.iter().copied())
        .args(["--web.listen-address", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let stderr = child.stderr.take().unwrap();
    // Read the log on a thread, so that a server that never logs its address
    // fails the test after a timeout instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("address=").nth(1)
                && line.contains(marker)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(rest.split_whitespace().next().unwrap().to_string());
            }
            // Keep draining, so that the server never blocks on a full pipe.
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a.parse().unwrap(),
        Err(_) => {
            let _ = child.kill();
            panic!("{program} did not log its listening address within 30s");
        }
    };
    let name = PathBuf::from(program)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (Proc { child, name }, addr)
}

/// A single-node VictoriaMetrics on a free port, storing under `dir`, with
/// fresh samples visible to queries at once.
pub fn spawn_victoria_metrics(dir: &std::path::Path) -> (Proc, u16) {
    let port = free_port();
    let vm = spawn(
        &tool("victoria-metrics"),
        &[
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-storageDataPath=vm-data".into(),
            "-retentionPeriod=1d".into(),
            "-search.latencyOffset=0s".into(),
            "-search.disableCache".into(),
        ],
        dir,
    );
    (vm, port)
}

/// A vmagent on a free port scraping with `scrape_config` (YAML) and writing
/// to the VictoriaMetrics on `vm_port`.
pub fn spawn_vmagent(dir: &std::path::Path, scrape_config: &str, vm_port: u16) -> (Proc, u16) {
    std::fs::write(dir.join("scrape.yml"), scrape_config).unwrap();
    let port = free_port();
    let agent = spawn(
        &tool("vmagent"),
        &[
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-promscrape.config=scrape.yml".into(),
            format!("-remoteWrite.url=http://127.0.0.1:{vm_port}/api/v1/write"),
            "-remoteWrite.tmpDataPath=vmagent-queue".into(),
            "-remoteWrite.flushInterval=200ms".into(),
        ],
        dir,
    );
    (agent, port)
}

/// GETs `url` over a real connection; the body text, or the error as text.
pub async fn fetch_text(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    resp.text().await.map_err(|e| e.to_string())
}

/// GETs `url` with `query` parameters over a real connection; the JSON
/// answer, or the error as text.
pub async fn fetch_json(
    client: &reqwest::Client,
    url: &str,
    query: &[(&str, &str)],
) -> Result<serde_json::Value, String> {
    let resp = client.get(url).query(query).send().await;
    let resp = resp.map_err(|e| e.to_string())?;
    resp.json().await.map_err(|e| e.to_string())
}

/// Runs an instant PromQL query against VictoriaMetrics (or Prometheus,
/// the same API); the `result` array.
pub async fn query(
    client: &reqwest::Client,
    vm_port: u16,
    promql: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let url = format!("http://127.0.0.1:{vm_port}/api/v1/query");
    let answer = fetch_json(client, &url, &[("query", promql)]).await?;
    answer["data"]["result"]
        .as_array()
        .cloned()
        .ok_or_else(|| answer.to_string())
}

/// Polls `check` every 250 ms until it returns `Some`, or panics after `timeout`
/// with `what` and the last state.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last state: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Runs `promtool check metrics` on `page`; returns (exit code, stderr).
/// Exit 0 is clean, 3 means lint findings only, 1 means the page did not parse.
pub fn promtool_check(page: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
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
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

/// Asserts that promtool parses `page` (lint findings on foreign names are allowed).
pub fn assert_parses(page: &str) {
    let (code, text) = promtool_check(page);
    assert!(
        code == 0 || (code == 3 && !text.contains("error while linting")),
        "promtool could not parse the page (exit {code}): {text}\n--- page ---\n{page}"
    );
}

/// A Pushgateway (client_golang's text parser and consistency checks, the
/// reference of the push API) on a free port, without persistence.
pub fn spawn_pushgateway(dir: &std::path::Path) -> (Proc, u16) {
    let port = free_port();
    let pgw = spawn(
        &tool("prometheus-pushgateway"),
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--persistence.file=".into(),
        ],
        dir,
    );
    (pgw, port)
}

/// Waits until the Pushgateway on `port` answers `/-/ready`.
pub async fn pushgateway_ready(client: &reqwest::Client, port: u16) {
    eventually(Duration::from_secs(20), "the Pushgateway", || async {
        let resp = client
            .get(format!("http://127.0.0.1:{port}/-/ready"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(format!("/-/ready answered {s}")),
        }
    })
    .await
}

/// A sample line as (name, sorted labels, value text), for comparing pages
/// written by different encoders. Labels must not contain `,` or `"` in values.
pub fn sample_key(line: &str) -> (String, Vec<(String, String)>, String) {
    let (series, rest) = match line.find('{') {
        Some(_) => {
            let end = line.rfind('}').unwrap();
            (&line[..end + 1], &line[end + 1..])
        }
        None => line.split_at(line.find(' ').unwrap()),
    };
    let value = rest.split_whitespace().next().unwrap().to_string();
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let mut labels: Vec<(String, String)> = labels
        .trim_end_matches('}')
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect();
    labels.sort();
    (name.to_string(), labels, value)
}

/// Pushes `page` (no timestamps) to the Pushgateway on `port` as group
/// `job="<job>"`, then checks that every sample line of `page` is in what the
/// Pushgateway exposes after parsing it with client_golang: a line that
/// parser merged into another, dropped or misread is missing there.
pub async fn assert_pushgateway_keeps_every_line(
    client: &reqwest::Client,
    port: u16,
    job: &str,
    page: &str,
) {
    let url = format!("http://127.0.0.1:{port}/metrics/job/{job}");
    let resp = client
        .put(&url)
        .body(page.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(
        status, 200,
        "the Pushgateway refused the page: {body}\n--- page ---\n{page}"
    );
    let exposed = fetch_text(client, &format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    let ours: std::collections::HashSet<_> = exposed
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&format!("job=\"{job}\"")))
        .map(|l| {
            let (name, labels, value) = sample_key(l);
            let labels = labels
                .into_iter()
                .filter(|(k, _)| k != "job" && k != "instance")
                .collect::<Vec<_>>();
            (name, labels, value)
        })
        .collect();
    for line in page
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(
            ours.contains(&sample_key(line)),
            "client_golang lost {line:?}\n--- page ---\n{page}\n--- as the Pushgateway read it ---\n{exposed}"
        );
    }
    client.delete(&url).send().await.unwrap();
}
