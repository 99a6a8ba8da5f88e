//! `--persistence.file` on the real binary: a restart gives the same page
//! and groups; the TTL counts the downtime; `kill -9` between and during
//! snapshots never leaves a file that fails to load; bad files are moved
//! aside and promgate starts empty; a snapshot that cannot be written keeps
//! promgate serving and the last good file as it was.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// promgate on `file`, with `extra` flags.
fn start(file: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args = vec!["--persistence.file", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    spawn_promgate(&args)
}

/// SIGTERM, and the exit code 0 the contract asks for.
fn stop(mut p: Proc) {
    let pid = p.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(p.child.wait().unwrap().code(), Some(0));
}

/// `kill -9`: no shutdown, no last snapshot.
fn kill(mut p: Proc) {
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

async fn remote_write(client: &reqwest::Client, addr: SocketAddr, series: &[Series<'_>]) {
    remote_write_with(client, addr, series, &[]).await;
}

async fn remote_write_with(
    client: &reqwest::Client,
    addr: SocketAddr,
    series: &[Series<'_>],
    metadata: &[(&str, MetricType, &str)],
) {
    let mut req = client.post(url(addr, "/api/v1/write"));
    for (k, v) in PROMETHEUS_HEADERS {
        req = req.header(*k, *v);
    }
    let resp = req
        .body(snappy(&request(series, metadata)))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 204, "{}", resp.text().await.unwrap());
}

/// `method path` with a text body; the status and the answer.
async fn push(
    client: &reqwest::Client,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = client
        .request(method, url(addr, path))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn page(client: &reqwest::Client, addr: SocketAddr, path: &str) -> String {
    fetch_text(client, &url(addr, path)).await.unwrap()
}

/// The value of a line of `/-/metrics` starting with `series ` (e.g.
/// `promgate_live_series` or `name{reason="x"}`).
async fn metric(client: &reqwest::Client, addr: SocketAddr, series: &str) -> f64 {
    let page = page(client, addr, "/-/metrics").await;
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not on /-/metrics:\n{page}"))
        .parse()
        .unwrap()
}

/// Every line of a page, sorted (a name's series come in hash order, and
/// families in the order of the name map, neither part of the contract).
fn lines(page: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = page.lines().collect();
    lines.sort_unstable();
    lines
}

/// Files in `dir` whose names start with `prefix`.
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
}

const HISTOGRAM: &str = "# HELP backup_duration_seconds How long the backup took.
# TYPE backup_duration_seconds histogram
backup_duration_seconds_bucket{le=\"10\"} 1
backup_duration_seconds_bucket{le=\"60\"} 3
backup_duration_seconds_bucket{le=\"+Inf\"} 4
backup_duration_seconds_sum 150.5
backup_duration_seconds_count 4
# HELP backup_last_success_timestamp_seconds When the \"backup\" last worked.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds{target=\"a\\nb\"} 1.7e+09
";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_gives_the_same_page_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promgate.snapshot");
    let client = reqwest::Client::new();
    let flags = ["--persistence.interval", "1h", "--series.ttl", "1h"];
    let (p, addr) = start(&file, &flags);
    let t = now_ms();
    remote_write_with(
        &client,
        addr,
        &[
            (
                &[("__name__", "http_requests_total"), ("code", "200")],
                &[(1027.0, t)],
            ),
            (
                &[("__name__", "http_requests_total"), ("code", "500")],
                &[(3.0, t)],
            ),
            (
                &[("__name__", "latency_seconds_bucket"), ("le", "0.5")],
                &[(7.0, t)],
            ),
            (
                &[("__name__", "latency_seconds_bucket"), ("le", "+Inf")],
                &[(9.0, t)],
            ),
            (&[("__name__", "latency_seconds_sum")], &[(2.25, t)]),
            (&[("__name__", "latency_seconds_count")], &[(9.0, t)]),
            (
                &[
                    ("__name__", "odd"),
                    ("path", "C:\\dir \"q\"\nnext"),
                    ("city", "Zürich"),
                ],
                &[(f64::NAN, t - 1000)],
            ),
            (
                &[("__name__", "temperature")],
                &[(-0.0, t), (f64::NEG_INFINITY, t + 1)],
            ),
        ],
        &[
            (
                "http_requests_total",
                MetricType::Counter,
                "Requests by code.",
            ),
            (
                "latency_seconds",
                MetricType::Histogram,
                "Latency, \"quoted\" \\ help.",
            ),
            ("temperature", MetricType::Gauge, "Temperature."),
        ],
    )
    .await;
    for (method, path, body) in [
        ("PUT", "/metrics/job/backup/instance/db1", HISTOGRAM),
        // A base64 grouping value with a slash, and a second family by POST.
        (
            "PUT",
            "/metrics/job/nightly/path@base64/L3Zhci9saWI=",
            HISTOGRAM,
        ),
        (
            "POST",
            "/metrics/job/nightly/path@base64/L3Zhci9saWI=",
            "# TYPE extra counter\nextra 5\n",
        ),
    ] {
        let (status, answer) = push(&client, addr, method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
    }
    // A refused push leaves a failure time to persist too.
    let (status, _) = push(&client, addr, "PUT", "/metrics/job/broken", "extra 1\n").await;
    assert_eq!(status, 400);
    let before = page(&client, addr, "/metrics").await;
    let groups_before: serde_json::Value =
        serde_json::from_str(&page(&client, addr, "/api/v1/metrics").await).unwrap();
    assert_eq!(
        groups_before["data"].as_array().map(Vec::len),
        Some(3),
        "{groups_before}"
    );
    assert!(before.contains("odd{city=\"Zürich\""), "{before}");
    assert!(
        before.contains("# TYPE backup_duration_seconds histogram"),
        "{before}"
    );
    stop(p);
    assert!(file.is_file(), "no snapshot at shutdown");

    let (p, addr) = start(&file, &flags);
    let after = page(&client, addr, "/metrics").await;
    assert_eq!(
        lines(&after),
        lines(&before),
        "the page changed across the restart"
    );
    let groups_after: serde_json::Value =
        serde_json::from_str(&page(&client, addr, "/api/v1/metrics").await).unwrap();
    assert_eq!(groups_after, groups_before);
    let live = metric(&client, addr, "promgate_live_series").await;
    assert_eq!(
        metric(&client, addr, "promgate_persistence_series_loaded").await,
        live
    );
    assert_eq!(
        metric(&client, addr, "promgate_persistence_groups_loaded").await,
        3.0
    );

    // The restored groups behave as before: a type conflict is refused, a
    // PUT replaces the group, a DELETE removes it.
    let (status, answer) = push(
        &client,
        addr,
        "PUT",
        "/metrics/job/other",
        "# TYPE backup_duration_seconds gauge\nbackup_duration_seconds 1\n",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = push(
        &client,
        addr,
        "PUT",
        "/metrics/job/backup/instance/db1",
        "# TYPE extra counter\nextra 1\n",
    )
    .await;
    assert_eq!(status, 200);
    let now = page(&client, addr, "/metrics").await;
    assert!(
        !now.contains("backup_duration_seconds_count{instance=\"db1\""),
        "{now}"
    );
    assert!(
        now.contains("extra{instance=\"db1\",job=\"backup\"} 1"),
        "{now}"
    );
    assert!(
        now.contains(
            "backup_duration_seconds_count{instance=\"\",job=\"nightly\",path=\"/var/lib\"} 4"
        ),
        "{now}"
    );
    let (status, _) = push(
        &client,
        addr,
        "DELETE",
        "/metrics/job/nightly/path@base64/L3Zhci9saWI=",
        "",
    )
    .await;
    assert_eq!(status, 202);
    let now = page(&client, addr, "/metrics").await;
    assert!(!now.contains("nightly"), "{now}");
    stop(p);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ttl_counts_the_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap");
    let client = reqwest::Client::new();
    let flags = ["--series.ttl", "6s", "--persistence.interval", "1h"];
    let (p, addr) = start(&file, &flags);
    remote_write(
        &client,
        addr,
        &[(&[("__name__", "old")], &[(1.0, now_ms())])],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    remote_write(
        &client,
        addr,
        &[(&[("__name__", "fresh")], &[(1.0, now_ms())])],
    )
    .await;
    let page_before = page(&client, addr, "/metrics").await;
    assert!(
        page_before.contains("old ") && page_before.contains("fresh "),
        "{page_before}"
    );
    stop(p);
    // Down for 4 s: `old` (4 s at the snapshot) is past its 6 s, `fresh`
    // (0 s) is not.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (p, addr) = start(&file, &flags);
    let loaded = page(&client, addr, "/metrics").await;
    assert!(!loaded.contains("old "), "{loaded}");
    assert!(loaded.contains("fresh "), "{loaded}");
    assert_eq!(
        metric(
            &client,
            addr,
            "promgate_persistence_load_series_dropped_total{reason=\"expired\"}"
        )
        .await,
        1.0
    );
    // And `fresh` keeps what is left of its TTL: it goes without a write.
    eventually(Duration::from_secs(15), "fresh to expire", || async {
        let page = page(&client, addr, "/metrics").await;
        if page.contains("fresh ") {
            Err(page)
        } else {
            Ok(())
        }
    })
    .await;
    stop(p);
}

/// The series `name{i="0".."n"}`, valued `value`, written `per` a request.
async fn write_many(client: &reqwest::Client, addr: SocketAddr, name: &str, n: usize, value: f64) {
    let values: Vec<String> = (0..n)
        .map(|i| format!("{i:07}-{}", "x".repeat(40)))
        .collect();
    let t = now_ms();
    for chunk in values.chunks(10_000) {
        let labels: Vec<[(&str, &str); 3]> = chunk
            .iter()
            .map(|v| [("__name__", name), ("i", v.as_str()), ("job", "load")])
            .collect();
        let samples = [(value, t)];
        let series: Vec<Series> = labels.iter().map(|l| (&l[..], &samples[..])).collect();
        remote_write(client, addr, &series).await;
    }
}

async fn wait_for_snapshots(client: &reqwest::Client, addr: SocketAddr, at_least: f64) {
    let series = "promgate_persistence_snapshots_total{result=\"success\"}";
    eventually(Duration::from_secs(60), "a snapshot", || async {
        let n = metric(client, addr, series).await;
        if n >= at_least {
            Ok(())
        } else {
            Err(n.to_string())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_between_snapshots_loses_only_what_came_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap");
    let client = reqwest::Client::new();
    let flags = ["--persistence.interval", "1s"];
    let (p, addr) = start(&file, &flags);
    write_many(&client, addr, "before", 1000, 1.0).await;
    // Two more snapshots: the second began after the write.
    let done = metric(
        &client,
        addr,
        "promgate_persistence_snapshots_total{result=\"success\"}",
    )
    .await;
    wait_for_snapshots(&client, addr, done + 2.0).await;
    write_many(&client, addr, "after", 1000, 2.0).await;
    kill(p);
    let (p, addr) = start(&file, &flags);
    let page = page(&client, addr, "/metrics").await;
    let before = page.lines().filter(|l| l.starts_with("before{")).count();
    let after = page.lines().filter(|l| l.starts_with("after{")).count();
    assert_eq!(before, 1000, "series of the last snapshot were lost");
    // What came after may or may not have made it into a snapshot.
    assert!(after <= 1000);
    assert_eq!(
        metric(&client, addr, "promgate_live_series").await,
        (before + after) as f64
    );
    stop(p);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_snapshot_leaves_a_file_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap");
    let tmp = dir.path().join("snap.tmp");
    let client = reqwest::Client::new();
    const SERIES: usize = 150_000;
    let flags = ["--persistence.interval", "1s"];
    let (p, addr) = start(&file, &flags);
    write_many(&client, addr, "big", SERIES, 1.0).await;
    let done = metric(
        &client,
        addr,
        "promgate_persistence_snapshots_total{result=\"success\"}",
    )
    .await;
    wait_for_snapshots(&client, addr, done + 2.0).await;
    let mut p = Some(p);
    // Killed at several moments of a snapshot being written: as soon as its
    // temporary file appears, and later into it.
    for delay_ms in [0u64, 20, 80, 200, 400] {
        let start_wait = Instant::now();
        while !tmp.exists() {
            assert!(
                start_wait.elapsed() < Duration::from_secs(60),
                "no snapshot began"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill(p.take().unwrap());
        let (next, addr) = start(&file, &flags);
        for reason in promgate::store::persist::LoadError::REASONS {
            let series = format!("promgate_persistence_load_failures_total{{reason=\"{reason}\"}}");
            assert_eq!(
                metric(&client, addr, &series).await,
                0.0,
                "{reason} after a kill {delay_ms} ms in"
            );
        }
        assert_eq!(
            metric(&client, addr, "promgate_persistence_series_loaded").await,
            SERIES as f64,
            "killed {delay_ms} ms into a snapshot"
        );
        assert!(files(dir.path(), "snap.corrupt").is_empty());
        p = Some(next);
    }
    stop(p.take().unwrap());
}

/// A valid snapshot of one series, made by promgate itself.
async fn valid_snapshot(dir: &Path) -> Vec<u8> {
    let file = dir.join("valid");
    let client = reqwest::Client::new();
    let (p, addr) = start(&file, &[]);
    remote_write(
        &client,
        addr,
        &[(&[("__name__", "kept")], &[(1.0, now_ms())])],
    )
    .await;
    stop(p);
    std::fs::read(&file).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_file_is_moved_aside_and_promgate_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let valid = valid_snapshot(dir.path()).await;
    let mut wrong_version = valid.clone();
    wrong_version[8] = 9;
    let mut flipped = valid.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 1;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated", valid[..valid.len() / 2].to_vec(), "truncated"),
        (
            "garbage",
            b"\x89PNG\r\n\x1a\n not a snapshot at all".to_vec(),
            "not_a_snapshot",
        ),
        ("wrong-version", wrong_version, "unsupported_version"),
        ("bad-checksum", flipped, "checksum_mismatch"),
    ];
    let client = reqwest::Client::new();
    for (name, bytes, reason) in cases {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("snap");
        std::fs::write(&file, &bytes).unwrap();
        let (p, addr) = start(&file, &[]);
        let ready = client.get(url(addr, "/-/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{name}");
        assert_eq!(
            page(&client, addr, "/metrics").await,
            "",
            "{name}: not empty"
        );
        let series = format!("promgate_persistence_load_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&client, addr, &series).await, 1.0, "{name}");
        assert!(!file.exists(), "{name}: the bad file is still in place");
        let aside = files(&sub, "snap.corrupt-");
        assert_eq!(aside.len(), 1, "{name}: {aside:?}");
        assert_eq!(
            std::fs::read(&aside[0]).unwrap(),
            bytes,
            "{name}: moved, not changed"
        );
        // It serves and persists as usual.
        remote_write(
            &client,
            addr,
            &[(&[("__name__", "new")], &[(1.0, now_ms())])],
        )
        .await;
        stop(p);
        let (p, addr) = start(&file, &[]);
        assert!(
            page(&client, addr, "/metrics").await.starts_with("new "),
            "{name}"
        );
        stop(p);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_that_cannot_be_written_keeps_the_last_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap");
    let client = reqwest::Client::new();
    let (p, addr) = start(&file, &["--persistence.interval", "1s"]);
    remote_write(
        &client,
        addr,
        &[(&[("__name__", "first")], &[(1.0, now_ms())])],
    )
    .await;
    let done = metric(
        &client,
        addr,
        "promgate_persistence_snapshots_total{result=\"success\"}",
    )
    .await;
    wait_for_snapshots(&client, addr, done + 2.0).await;
    let good = std::fs::read(&file).unwrap();
    // Root writes through any mode bits: the temporary file's path taken by
    // a directory makes every write fail instead.
    let tmp = dir.path().join("snap.tmp");
    let failures = "promgate_persistence_snapshots_total{result=\"failure\"}";
    std::fs::create_dir(&tmp).unwrap();
    remote_write(
        &client,
        addr,
        &[(&[("__name__", "second")], &[(2.0, now_ms())])],
    )
    .await;
    eventually(Duration::from_secs(30), "two failed snapshots", || async {
        let n = metric(&client, addr, failures).await;
        if n >= 2.0 { Ok(()) } else { Err(n.to_string()) }
    })
    .await;
    // Still serving and taking writes; the last good file untouched.
    remote_write(
        &client,
        addr,
        &[(&[("__name__", "third")], &[(3.0, now_ms())])],
    )
    .await;
    let now = page(&client, addr, "/metrics").await;
    assert!(now.contains("second ") && now.contains("third "), "{now}");
    assert_eq!(std::fs::read(&file).unwrap(), good);
    assert!(tmp.is_dir());
    // The directory gone, the next snapshot succeeds.
    std::fs::remove_dir(&tmp).unwrap();
    let done = metric(
        &client,
        addr,
        "promgate_persistence_snapshots_total{result=\"success\"}",
    )
    .await;
    wait_for_snapshots(&client, addr, done + 1.0).await;
    assert_ne!(std::fs::read(&file).unwrap(), good);
    stop(p);

    // The directory of the file replaced by a regular file: the shutdown
    // snapshot fails (logged), and promgate still exits 0.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let file = sub.join("snap");
    let (p, addr) = start(&file, &["--persistence.interval", "0"]);
    remote_write(
        &client,
        addr,
        &[(&[("__name__", "lost")], &[(1.0, now_ms())])],
    )
    .await;
    std::fs::remove_dir(&sub).unwrap();
    std::fs::write(&sub, b"not a directory").unwrap();
    stop(p);
    assert_eq!(std::fs::read(&sub).unwrap(), b"not a directory");
}

/// The persistence metrics are on `/-/metrics` only with
/// `--persistence.file` (an empty one is none): an alert on a snapshot's
/// age must not fire on a promgate that persists nothing.
#[tokio::test]
async fn persistence_metrics_show_only_with_a_snapshot_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap");
    let file = file.to_str().unwrap();
    for (args, shown) in [
        (vec![], false),
        (vec!["--persistence.file="], false),
        (vec!["--persistence.file", file], true),
    ] {
        let (app, _) = app(&args);
        let (status, page) = get(&app, "/-/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(
            page.contains("promgate_persistence_last_success_timestamp_seconds"),
            shown,
            "{args:?}: {page}"
        );
        assert!(page.contains("promgate_live_series"), "{page}");
    }
}
