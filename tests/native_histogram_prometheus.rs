//! Native histograms unchanged on the protobuf page: a Prometheus 2.42
//! with `--enable-feature=native-histograms` (protobuf first in its
//! `Accept`) scraping promgate holds the same native histograms as a
//! second Prometheus that received them directly by remote write.
//!
//! Custom-bucket histograms (schema -53) are not among them: Prometheus
//! 2.42 predates them (its remote-write receiver and its TSDB know only
//! exponential schemas), so it cannot be the reference for them.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::native::{Sent, sent, to_request};
use common::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
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
    std::fs::write(
        a_dir.join("prometheus.yml"),
        format!(
            "scrape_configs:\n  - job_name: gate\n    scrape_interval: 1s\n    honor_labels: true\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
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
