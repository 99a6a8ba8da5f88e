//! End to end with the real programs promgate lives with, from Debian's
//! packages, all on 127.0.0.1: Prometheus remote-writing into promgate, and
//! vmagent scraping promgate into VictoriaMetrics.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// What the scrape target serves to Prometheus: typed families, escaped
/// labels and special values.
const TARGET_PAGE: &str = r#"# HELP legacy_queue_depth Jobs waiting in the legacy queue.
# TYPE legacy_queue_depth gauge
legacy_queue_depth{queue="billing"} 17
legacy_queue_depth{queue="mail \"bulk\""} 0.25
legacy_queue_depth{queue="C:\\spool"} -3e-05
# HELP legacy_jobs_total Jobs processed.
# TYPE legacy_jobs_total counter
legacy_jobs_total{result="ok"} 1027
legacy_jobs_total{result="failed"} 3
# HELP legacy_latency_seconds Job latency.
# TYPE legacy_latency_seconds histogram
legacy_latency_seconds_bucket{le="0.5"} 4
legacy_latency_seconds_bucket{le="1"} 9
legacy_latency_seconds_bucket{le="+Inf"} 10
legacy_latency_seconds_sum 6.5
legacy_latency_seconds_count 10
legacy_ratio +Inf
"#;

async fn serve_target() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let app = axum::Router::new().route("/metrics", get(|| async { TARGET_PAGE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, task)
}

/// The sample lines of a promgate page as (series, value, timestamp in ms).
fn values(page: &str) -> Vec<(String, String, i64)> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.rsplitn(3, ' ');
            let ts = parts.next().unwrap().parse().unwrap();
            let value = parts.next().unwrap().to_string();
            (parts.next().unwrap().to_string(), value, ts)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_remote_writes_into_promgate() {
    let prometheus = tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let (promgate, addr) = spawn_promgate(&[]);
    let (target, target_task) = serve_target().await;
    let prom_port = free_port();
    let config = format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: legacy
    static_configs:
      - targets: ['{target}']
remote_write:
  - url: http://{addr}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
    metadata_config:
      send_interval: 1s
"#
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let _prom = spawn(
        &prometheus,
        &[
            "--config.file=prometheus.yml".into(),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--storage.tsdb.path=data".into(),
        ],
        dir.path(),
    );

    let client = reqwest::Client::new();
    let metrics = format!("http://{addr}/metrics");
    // Wait until the samples and the metadata have both arrived.
    let page = eventually(
        Duration::from_secs(90),
        "Prometheus samples and metadata on promgate",
        || {
            let client = client.clone();
            let url = metrics.clone();
            async move {
                let page = fetch_text(&client, &url).await?;
                let ready = page.contains("legacy_ratio{")
                    && page.contains("# TYPE legacy_latency_seconds histogram");
                if ready { Ok(page) } else { Err(page) }
            }
        },
    )
    .await;

    // Every series Prometheus holds for the job is on promgate with the value
    // Prometheus reports at the sample's own timestamp (values such as
    // scrape_duration_seconds change every scrape, so compare like with like).
    let exposed = values(&page);
    let legacy: Vec<&(String, String, i64)> = exposed
        .iter()
        .filter(|(k, _, _)| k.contains("job=\"legacy\""))
        .collect();
    assert!(legacy.len() >= 11, "{page}");
    let mut instants: Vec<i64> = legacy.iter().map(|(_, _, ts)| *ts).collect();
    instants.sort_unstable();
    instants.dedup();
    let mut compared = 0;
    for ts in instants {
        let answer: Value = client
            .get(format!("http://127.0.0.1:{prom_port}/api/v1/query"))
            .query(&[
                ("query", "{job=\"legacy\"}".to_string()),
                ("time", format!("{}.{:03}", ts / 1000, ts % 1000)),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for series in answer["data"]["result"].as_array().unwrap() {
            let labels = series["metric"].as_object().unwrap();
            let name = labels["__name__"].as_str().unwrap();
            let matches = |key: &str| {
                key.split('{').next() == Some(name)
                    && labels
                        .iter()
                        .filter(|(k, _)| *k != "__name__")
                        .all(|(k, v)| {
                            let v = v
                                .as_str()
                                .unwrap()
                                .replace('\\', "\\\\")
                                .replace('"', "\\\"");
                            key.contains(&format!("{k}=\"{v}\""))
                        })
            };
            let Some((key, got, _)) = legacy.iter().find(|(key, _, t)| *t == ts && matches(key))
            else {
                continue;
            };
            let value = series["value"][1].as_str().unwrap();
            let same = got == value || got.parse::<f64>().ok() == value.parse::<f64>().ok();
            assert!(same, "{key} at {ts}: promgate {got}, Prometheus {value}");
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        legacy.len(),
        "every legacy series compared:\n{page}"
    );
    assert!(page.contains(r#"legacy_queue_depth{instance=""#), "{page}");
    assert!(page.contains(r#"queue="mail \"bulk\"""#), "{page}");
    assert!(page.contains(r#"queue="C:\\spool""#), "{page}");
    assert!(
        page.contains("# HELP legacy_jobs_total Jobs processed."),
        "{page}"
    );
    assert_parses(&page);
    drop(promgate);
    target_task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn vmagent_scrapes_promgate_into_victoria_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (promgate, addr) = spawn_promgate(&[]);

    // A legacy system pushes one series with its own job and instance.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ts = now_ms - 5_000;
    let req = request(
        &[(
            &[
                ("__name__", "legacy_temperature_celsius"),
                ("job", "boiler-room"),
                ("instance", "10.1.2.3:9100"),
            ],
            &[(41.75, ts)],
        )],
        &[],
    );
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(snappy(&req))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let (_vm, vm_port) = spawn_victoria_metrics(dir.path());
    let scrape = format!(
        r#"scrape_configs:
  - job_name: promgate
    scrape_interval: 1s
    honor_labels: true
    honor_timestamps: true
    static_configs:
      - targets: ['{addr}']
"#
    );
    let (_agent, _) = spawn_vmagent(dir.path(), &scrape, vm_port);

    let export =
        format!("http://127.0.0.1:{vm_port}/api/v1/export?match[]=legacy_temperature_celsius");
    let line: Value = eventually(
        Duration::from_secs(90),
        "the series in VictoriaMetrics",
        || {
            let client = client.clone();
            let url = export.clone();
            async move {
                let text = fetch_text(&client, &url).await?;
                let first = text.lines().next().ok_or("no series yet")?;
                serde_json::from_str(first).map_err(|e| e.to_string())
            }
        },
    )
    .await;
    let metric = &line["metric"];
    assert_eq!(
        metric["job"], "boiler-room",
        "honor_labels keeps the pushed job: {line}"
    );
    assert_eq!(metric["instance"], "10.1.2.3:9100", "{line}");
    assert_eq!(line["values"][0].as_f64(), Some(41.75), "{line}");
    assert_eq!(
        line["timestamps"][0].as_i64(),
        Some(ts),
        "honor_timestamps keeps the pushed time: {line}"
    );
    drop(promgate);
}

#[tokio::test(flavor = "multi_thread")]
async fn vmagent_scrapes_mock_exporter_and_dashboard_queries_return_data() {
    let dir = tempfile::tempdir().unwrap();
    let (_exporter, addr) = spawn_mock_exporter(&["--seed", "5"]);
    let (_vm, vm_port) = spawn_victoria_metrics(dir.path());
    let scrape = format!(
        r#"scrape_configs:
  - job_name: mock-exporter
    scrape_interval: 1s
    params:
      cluster: [us-east-1-eks-01-prod]
    static_configs:
      - targets: ['{addr}']
"#
    );
    let (_agent, _) = spawn_vmagent(dir.path(), &scrape, vm_port);
    let client = reqwest::Client::new();

    let by_service = eventually(Duration::from_secs(90), "request rate by service", || {
        let client = client.clone();
        async move {
            let r = query(
                &client,
                vm_port,
                "sum(rate(http_requests_total[1m])) by (service)",
            )
            .await?;
            if r.len() == 3 {
                Ok(r)
            } else {
                Err(format!("{r:?}"))
            }
        }
    })
    .await;
    for series in &by_service {
        let rate: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
        assert!(rate > 0.0, "{series}");
    }
    let p95 = eventually(Duration::from_secs(60), "latency p95", || {
        let client = client.clone();
        async move {
            let q = "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))";
            let r = query(&client, vm_port, q).await?;
            let v: f64 = r.first().and_then(|s| s["value"][1].as_str()?.parse().ok()).ok_or(format!("{r:?}"))?;
            if v.is_finite() && v > 0.0 { Ok(v) } else { Err(format!("{r:?}")) }
        }
    })
    .await;
    assert!(p95 < 10.0, "p95 of {p95}s is not a plausible web latency");
}

/// Debian's vmagent as a remote-write sender (1.0, snappy): the target's
/// page lands in promgate with the same values.
#[tokio::test(flavor = "multi_thread")]
async fn vmagent_remote_writes_into_promgate() {
    let dir = tempfile::tempdir().unwrap();
    let (_promgate, addr) = spawn_promgate(&[]);
    let (target, target_task) = serve_target().await;
    let config = format!(
        "scrape_configs:\n  - job_name: legacy\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.path().join("scrape.yml"), config).unwrap();
    let _agent = spawn(
        &tool("vmagent"),
        &[
            format!("-httpListenAddr=127.0.0.1:{}", free_port()),
            "-promscrape.config=scrape.yml".into(),
            format!("-remoteWrite.url=http://{addr}/api/v1/write"),
            "-remoteWrite.tmpDataPath=vmagent-queue".into(),
            "-remoteWrite.flushInterval=200ms".into(),
        ],
        dir.path(),
    );
    let client = reqwest::Client::new();
    // Every sample of the target's page, by name, labels and value.
    let page = eventually(
        Duration::from_secs(60),
        "vmagent's samples on promgate",
        || {
            let client = client.clone();
            let url = format!("http://{addr}/metrics");
            async move {
                let page = fetch_text(&client, &url).await?;
                match TARGET_PAGE
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .find(|line| !landed(line, &page))
                {
                    None => Ok(page),
                    Some(missing) => Err(format!("{missing} missing from\n{page}")),
                }
            }
        },
    )
    .await;
    assert_parses(&page);
    target_task.abort();
}

/// Is the target's sample `line` on promgate's `page` (under `job="legacy"`),
/// with the same value? vmagent's own float parser is not exact (it reads
/// `-3e-05` as `-0.000030000000000000004`), so values agree to 1e-12.
fn landed(line: &str, page: &str) -> bool {
    let (series, value) = line.rsplit_once(' ').unwrap();
    let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
    page.lines().any(|l| {
        let Some((key, rest)) = l.rsplit_once('}').map(|(k, r)| (k, r.trim())) else {
            return false;
        };
        let got = rest.split(' ').next().unwrap_or("");
        key.starts_with(&format!("{name}{{"))
            && labels
                .trim_end_matches('}')
                .split(',')
                .filter(|p| !p.is_empty())
                .all(|p| key.contains(p))
            && key.contains("job=\"legacy\"")
            && match (got.parse::<f64>(), value.parse::<f64>()) {
                (Ok(a), Ok(b)) => a == b || ((a - b) / b).abs() < 1e-12,
                _ => false,
            }
    })
}
