//! Pages built from hostile but accepted input, scraped by the real
//! scrapers promgate exists for: Debian's Prometheus and vmagent (into
//! VictoriaMetrics). promtool alone is not enough: it accepts lines those
//! parsers refuse (a negative timestamp takes a whole target down in
//! Prometheus). Every target must stay up in both, and every series on each
//! page must arrive; what promgate refuses must be refused with a reason.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use prost::Message;
use serde_json::Value;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

type Owned = (Vec<(String, String)>, f64, i64);

fn s(labels: &[(&str, &str)], value: f64, ts: i64) -> Owned {
    let labels = labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    (labels, value, ts)
}

/// Each input kind, as a sender would push it: what promgate accepts of it
/// is what the scrapers must read.
/// An input kind: its name, its series, its metadata.
type Input = (&'static str, Vec<Owned>, Vec<(&'static str, MetricType)>);

fn inputs(t: i64) -> Vec<Input> {
    let odd = |v: &str| s(&[("__name__", "odd"), ("v", v)], 1.0, t);
    vec![
        (
            "escapes",
            [
                "nul\0",
                "cr\r",
                "tab\t",
                "ls\u{2028}",
                "q\"",
                "b\\",
                "nl\n",
                "日本",
            ]
            .into_iter()
            .map(odd)
            .collect(),
            vec![],
        ),
        ("big_label", vec![odd(&"\"\\".repeat(2048))], vec![]),
        (
            "special_values",
            [
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                5e-324,
                1e308,
            ]
            .into_iter()
            .enumerate()
            .map(|(i, v)| s(&[("__name__", "odd"), ("k", &i.to_string())], v, t))
            .collect(),
            vec![],
        ),
        (
            "nested_names",
            vec![
                s(&[("__name__", "x_bucket"), ("le", "+Inf")], 1.0, t),
                s(&[("__name__", "x_count")], 1.0, t),
                s(&[("__name__", "x_count_bucket"), ("le", "+Inf")], 1.0, t),
                s(&[("__name__", "x_count_count")], 1.0, t),
                s(&[("__name__", "rpc"), ("quantile", "0.5")], 1.0, t),
                s(&[("__name__", "rpc_sum")], 2.0, t),
                s(&[("__name__", "rpc_sum"), ("quantile", "0.5")], 4.0, t),
                s(&[("__name__", "rpc_sum_count")], 6.0, t),
            ],
            vec![
                ("x", MetricType::Histogram),
                ("x_count", MetricType::Histogram),
                ("rpc", MetricType::Summary),
                ("rpc_sum", MetricType::Summary),
            ],
        ),
        (
            // Near the end of the accepted range: 9 of the 10 minutes of
            // the default future window.
            "future_edge",
            vec![s(&[("__name__", "edge")], 1.0, t + 9 * 60 * 1000)],
            vec![],
        ),
        (
            "dunder_metric_name",
            vec![s(&[("__name__", "__odd__"), ("k", "v")], 1.0, t)],
            vec![],
        ),
        (
            // Refused: none of these may reach the page.
            "refused",
            vec![
                s(&[("__name__", "odd"), ("__tmp_shard", "1")], 1.0, t),
                s(&[("__name__", "odd"), ("__tmp_shard", "2")], 2.0, t),
                s(&[("__name__", "odd"), ("at", "negative")], 1.0, -1),
                s(&[("__name__", "odd"), ("at", "zero")], 1.0, 0),
                s(
                    &[("__name__", "odd"), ("at", "century")],
                    1.0,
                    t + 100 * 365 * 86_400_000,
                ),
            ],
            vec![],
        ),
    ]
}

fn to_request(series: &[Owned], metadata: &[(&str, MetricType)]) -> promgate::proto::WriteRequest {
    use promgate::proto::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
    WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, value, ts)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                samples: vec![Sample {
                    value: *value,
                    timestamp: *ts,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: metadata
            .iter()
            .map(|(n, t)| MetricMetadata {
                r#type: *t as i32,
                metric_family_name: n.to_string(),
                help: "h".into(),
                unit: String::new(),
            })
            .collect(),
    }
}

/// `{job: up}` from a Prometheus-compatible targets API.
async fn targets(client: &reqwest::Client, port: u16) -> Result<BTreeMap<String, String>, String> {
    let j: Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/targets"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(j["data"]["activeTargets"]
        .as_array()
        .ok_or_else(|| j.to_string())?
        .iter()
        .map(|t| {
            let job = t["labels"]["job"].as_str().unwrap_or("").to_string();
            let health = format!("{} {}", t["health"].as_str().unwrap_or(""), t["lastError"]);
            (job, health)
        })
        .collect())
}

/// Series per job stored between an hour before and after `t` (the series
/// API, so that a sample stamped ahead counts too), not counting the
/// scrapers' own `up` and `scrape_*` series.
async fn series_per_job(
    client: &reqwest::Client,
    port: u16,
    t: i64,
) -> Result<BTreeMap<String, u64>, String> {
    let j: Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/series"))
        .query(&[
            (
                "match[]",
                r#"{__name__!~"up|scrape_.+", job=~"in_.+"}"#.to_string(),
            ),
            ("start", ((t - 3_600_000) / 1000).to_string()),
            ("end", ((t + 3_600_000) / 1000).to_string()),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let mut per_job = BTreeMap::new();
    for series in j["data"].as_array().ok_or_else(|| j.to_string())? {
        let job = series["job"].as_str().unwrap_or("").to_string();
        *per_job.entry(job).or_insert(0) += 1;
    }
    Ok(per_job)
}

#[tokio::test(flavor = "multi_thread")]
async fn real_scrapers_read_every_page_completely() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let t = now_ms();
    let mut promgates = Vec::new();
    let mut expected = BTreeMap::new();
    let mut jobs = String::new();
    for (name, series, metadata) in inputs(t) {
        let (proc, addr) = spawn_promgate(&[]);
        let resp = client
            .post(format!("http://{addr}/api/v1/write"))
            .header("content-encoding", "snappy")
            .body(snappy_bytes(
                &to_request(&series, &metadata).encode_to_vec(),
            ))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        let page = fetch_text(&client, &format!("http://{addr}/metrics"))
            .await
            .unwrap();
        let lines = page.lines().filter(|l| !l.starts_with('#')).count() as u64;
        if name == "refused" {
            assert_eq!(status, 400, "{body}");
            assert!(
                body.contains("stored 0 series, rejected 5 series"),
                "{body}"
            );
            assert_eq!(lines, 0, "refused series reached the page:\n{page}");
            let metrics = fetch_text(&client, &format!("http://{addr}/-/metrics"))
                .await
                .unwrap();
            for (reason, n) in [
                ("reserved_label_name", 2),
                ("timestamp_not_after_epoch", 2),
                ("timestamp_too_far_in_future", 1),
            ] {
                let line = format!("promgate_samples_rejected_total{{reason=\"{reason}\"}} {n}");
                assert!(
                    metrics.lines().any(|l| l == line),
                    "no {line:?} in\n{metrics}"
                );
            }
            continue;
        }
        assert_eq!(status, 204, "{name}: {body}");
        assert_parses(&page);
        expected.insert(format!("in_{name}"), lines);
        jobs += &format!(
            "  - job_name: in_{name}\n    scrape_interval: 1s\n    honor_labels: true\n    honor_timestamps: true\n    static_configs: [{{targets: ['{addr}']}}]\n"
        );
        promgates.push(proc);
    }
    let config = format!("scrape_configs:\n{jobs}");
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let prom_port = free_port();
    let _prom = spawn(
        &tool("prometheus"),
        &[
            "--config.file=prometheus.yml".into(),
            "--storage.tsdb.path=prom-data".into(),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        dir.path(),
    );
    let (_vm, vm_port) = spawn_victoria_metrics(dir.path());
    let (_agent, agent_port) = spawn_vmagent(dir.path(), &config, vm_port);

    for (scraper, port) in [("Prometheus", prom_port), ("vmagent", agent_port)] {
        let up = eventually(
            Duration::from_secs(60),
            &format!("{scraper} to scrape every target"),
            || async {
                let t = targets(&client, port).await?;
                let all_scraped =
                    t.len() == expected.len() && t.values().all(|h| !h.starts_with("unknown"));
                if all_scraped {
                    Ok(t)
                } else {
                    Err(format!("{t:?}"))
                }
            },
        )
        .await;
        for (job, health) in &up {
            assert!(
                health.starts_with("up"),
                "{scraper} marked {job} down: {health}"
            );
        }
    }
    // Every series of every page arrives.
    for (store, port) in [("Prometheus", prom_port), ("VictoriaMetrics", vm_port)] {
        eventually(
            Duration::from_secs(60),
            &format!("every series in {store}"),
            || async {
                let got = series_per_job(&client, port, t).await?;
                let mut want = expected.clone();
                if store == "VictoriaMetrics" {
                    // VictoriaMetrics drops plain NaN samples as it stores
                    // them (its encoding cannot hold them; only staleness
                    // markers are kept): Prometheus stores that series,
                    // VictoriaMetrics does not.
                    *want.get_mut("in_special_values").unwrap() -= 1;
                }
                if got == want {
                    Ok(())
                } else {
                    Err(format!("got {got:?}, want {want:?}"))
                }
            },
        )
        .await;
    }
}

fn snappy_bytes(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}
