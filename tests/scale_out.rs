//! Scale-out and HA of the legacy flow, end to end with the real programs:
//! three promgate replicas, each series sent to two of them by the sharding
//! rules of `vmagent/sharding/`, read back by the receiver-scraper's own
//! config (`vmagent/receiver-scraper.yml`) into a VictoriaMetrics that
//! deduplicates.
//!
//! ```text
//! mock-exporter ─▶ Prometheus ─┬─ job legacy-a: write_relabel_configs (hashmod, keep) ─┬▶ promgate 0 ─┐
//!                              │                                                       ├▶ promgate 1 ─┼▶ receiver-scraper ─▶ victoria-metrics
//!                              └─ job legacy-b ─▶ vmagent: -remoteWrite.urlRelabelConfig ┴▶ promgate 2 ─┘     (vmagent)     (-dedup.minScrapeInterval)
//! ```
//!
//! Prometheus' own TSDB is the independent figure: every sample it scraped
//! must be in VictoriaMetrics exactly once, with its value, while one
//! replica is killed and restarted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// promgate replicas, and how many of them receive each series.
const REPLICAS: usize = 3;
const COPIES: usize = 2;

/// The sender's scrape interval: longer than a remote-write batch waits
/// (`batch_send_deadline: 1s`, vmagent's flush interval), so that no request
/// holds two samples of one series and promgate, which keeps only the latest,
/// passes every sample on.
const SCRAPE_INTERVAL_S: u64 = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sharding rules of replica `i` (a relabeling list, for vmagent's
/// `-remoteWrite.urlRelabelConfig` and Prometheus' `write_relabel_configs`).
fn rules_file(i: usize) -> PathBuf {
    root().join(format!("vmagent/sharding/replica-{i}-of-{REPLICAS}.yml"))
}

/// Starts `program` in `dir` with `env`, its output logged to `dir/name.log`.
fn spawn_env(program: &Path, args: &[String], env: &[(&str, String)], dir: &Path) -> Proc {
    let name = program.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc { child, name }
}

/// promgate replica on `port`, as the stack starts it.
fn start_promgate(port: u16, dir: &Path) -> Proc {
    spawn_env(
        Path::new(env!("CARGO_BIN_EXE_promgate")),
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        &[],
        dir,
    )
}

async fn ready(client: &reqwest::Client, url: String, what: &str) {
    eventually(Duration::from_secs(60), what, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                r => Err(format!("{r:?}")),
            }
        }
    })
    .await
}

/// The series on a promgate page (sample lines without value or timestamp).
fn page_series(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, labels, _) = sample_key(l);
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{name}{{{}}}", labels.join(","))
        })
        .collect()
}

/// The labels the receiver-scraper adds (its external labels).
const EXTERNAL: [&str; 4] = ["env", "region", "cluster", "availability_zone"];

/// A series' identity from a query result's `metric`, the receiver-scraper's
/// external labels left out, written as [`page_series`] writes it.
fn identity(metric: &Value) -> String {
    let m = metric.as_object().unwrap();
    let name = m["__name__"].as_str().unwrap();
    let mut labels: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__" && !EXTERNAL.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Raw samples of every series matching `selector` in the `window` seconds
/// up to `at` (a range-vector instant query, which both Prometheus and
/// VictoriaMetrics answer with the stored samples), keyed by [`identity`]:
/// (timestamp in ms, value). Samples within a second of either end are left
/// out, where the two engines' window bounds differ.
async fn raw_samples(
    client: &reqwest::Client,
    port: u16,
    selector: &str,
    at: f64,
    window: u64,
) -> Result<BTreeMap<String, Vec<(i64, f64)>>, String> {
    let answer: Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[
            ("query", format!("{selector}[{window}s]")),
            ("time", format!("{at:.3}")),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let result = answer["data"]["result"]
        .as_array()
        .ok_or_else(|| answer.to_string())?;
    let (lo, hi) = (
        ((at - window as f64 + 1.0) * 1000.0) as i64,
        ((at - 1.0) * 1000.0) as i64,
    );
    let mut out = BTreeMap::new();
    for s in result {
        let samples: Vec<(i64, f64)> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    (v[0].as_f64().unwrap() * 1000.0).round() as i64,
                    v[1].as_str().unwrap().parse::<f64>().unwrap(),
                )
            })
            .filter(|(t, _)| *t >= lo && *t <= hi)
            .collect();
        let prev = out.insert(identity(&s["metric"]), samples);
        assert!(prev.is_none(), "two series with one identity: {s}");
    }
    Ok(out)
}

/// The same timestamps, and values equal to the 12 significant digits
/// VictoriaMetrics' query API prints.
fn same_samples(a: Option<&Vec<(i64, f64)>>, b: Option<&Vec<(i64, f64)>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|((ta, va), (tb, vb))| {
                    ta == tb && (va - vb).abs() <= 1e-11 * va.abs().max(vb.abs())
                })
        }
        _ => false,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn sharded_replicas_deliver_every_sample_once_through_a_replica_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let client = reqwest::Client::new();

    // VictoriaMetrics with the stack's deduplication.
    let vm_port = free_port();
    let _vm = spawn_env(
        &tool("victoria-metrics"),
        &[
            format!("-httpListenAddr=127.0.0.1:{vm_port}"),
            "-storageDataPath=vm-data".into(),
            "-retentionPeriod=1d".into(),
            "-search.latencyOffset=0s".into(),
            "-search.disableCache".into(),
            "-dedup.minScrapeInterval=1ms".into(),
            "-loggerLevel=WARN".into(),
        ],
        &[],
        &d.join("vm"),
    );
    let (_exporter, exporter) = spawn_mock_exporter(&[]);

    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let mut replicas: Vec<Option<Proc>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| Some(start_promgate(*p, &d.join(format!("promgate-{i}")))))
        .collect();

    // The receiver-scraper: the stack's own config, every replica a target.
    let scraper_port = free_port();
    let targets = ports
        .iter()
        .map(|p| format!("'127.0.0.1:{p}'"))
        .collect::<Vec<_>>()
        .join(",");
    let _scraper = spawn_env(
        &tool("vmagent"),
        &[
            format!("-httpListenAddr=127.0.0.1:{scraper_port}"),
            format!(
                "-promscrape.config={}",
                root().join("vmagent/receiver-scraper.yml").display()
            ),
            format!("-remoteWrite.url=http://127.0.0.1:{vm_port}/api/v1/write"),
            "-remoteWrite.tmpDataPath=queue".into(),
            "-remoteWrite.flushInterval=200ms".into(),
            "-loggerLevel=WARN".into(),
        ],
        &[
            ("SCRAPE_INTERVAL", "1s".into()),
            ("SCRAPE_TIMEOUT", "1s".into()),
            ("PROMGATE_TARGETS", targets),
            ("SELF_ADDR", format!("127.0.0.1:{scraper_port}")),
        ],
        &d.join("receiver-scraper"),
    );

    // The sharding tier for job legacy-b: Debian's vmagent 1.79, one URL and
    // one relabeling file per replica.
    let tier_port = free_port();
    let mut tier_args = vec![
        format!("-httpListenAddr=127.0.0.1:{tier_port}"),
        "-remoteWrite.tmpDataPath=queue".into(),
        "-remoteWrite.flushInterval=200ms".into(),
        "-loggerLevel=WARN".into(),
    ];
    for (i, p) in ports.iter().enumerate() {
        tier_args.push(format!(
            "-remoteWrite.url=http://127.0.0.1:{p}/api/v1/write"
        ));
        tier_args.push(format!(
            "-remoteWrite.urlRelabelConfig={}",
            rules_file(i).display()
        ));
    }
    let _tier = spawn_env(&tool("vmagent"), &tier_args, &[], &d.join("tier"));

    // The sender: Prometheus scrapes two jobs; legacy-a goes straight to the
    // replicas through write_relabel_configs (the same rules), legacy-b
    // through the vmagent tier.
    let indent = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .map(|l| format!("      {l}\n"))
            .collect()
    };
    let queue = "    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n";
    let mut config = format!(
        "global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: 2s\nscrape_configs:\n"
    );
    for job in ["legacy-a", "legacy-b"] {
        config += &format!(
            "  - job_name: {job}\n    params:\n      cluster: [{job}]\n    static_configs:\n      - targets: ['{exporter}']\n"
        );
    }
    config += "remote_write:\n";
    for (i, p) in ports.iter().enumerate() {
        config += &format!(
            "  - url: http://127.0.0.1:{p}/api/v1/write\n{queue}    write_relabel_configs:\n      - source_labels: [job]\n        regex: legacy-a\n        action: keep\n{}",
            indent(&std::fs::read_to_string(rules_file(i)).unwrap())
        );
    }
    config += &format!(
        "  - url: http://127.0.0.1:{tier_port}/api/v1/write\n{queue}    write_relabel_configs:\n      - source_labels: [job]\n        regex: legacy-b\n        action: keep\n"
    );
    let prom_dir = d.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(prom_dir.join("prometheus.yml"), &config).unwrap();
    let prom_port = free_port();
    let _prometheus = spawn_env(
        &tool("prometheus"),
        &[
            "--config.file=prometheus.yml".into(),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--storage.tsdb.path=data".into(),
            "--log.level=warn".into(),
        ],
        &[],
        &prom_dir,
    );
    for (i, p) in ports.iter().enumerate() {
        ready(
            &client,
            format!("http://127.0.0.1:{p}/-/ready"),
            &format!("promgate {i}"),
        )
        .await;
    }
    ready(
        &client,
        format!("http://127.0.0.1:{prom_port}/-/ready"),
        "Prometheus",
    )
    .await;

    // Every series Prometheus holds for the two jobs is on exactly COPIES of
    // the pages, and VictoriaMetrics holds each once.
    const SELECTOR: &str = r#"{job=~"legacy-a|legacy-b"}"#;
    let series_of = |port: u16| {
        let client = client.clone();
        async move {
            let r = raw_samples(&client, port, SELECTOR, now(), 30).await?;
            Ok::<BTreeSet<String>, String>(r.into_keys().collect())
        }
    };
    let pages = |client: reqwest::Client, ports: Vec<u16>| async move {
        let mut pages = Vec::new();
        for p in ports {
            let page = fetch_text(&client, &format!("http://127.0.0.1:{p}/metrics")).await?;
            pages.push(page_series(&page));
        }
        Ok::<Vec<BTreeSet<String>>, String>(pages)
    };
    let (sent, before) = eventually(
        Duration::from_secs(120),
        "every series on two replicas and once in VictoriaMetrics",
        || {
            let (client, ports) = (client.clone(), ports.clone());
            let (prom, vm) = (series_of(prom_port), series_of(vm_port));
            async move {
                let sent = prom.await?;
                let pages = pages(client, ports).await?;
                let stored = vm.await?;
                let union: BTreeSet<String> = pages.iter().flatten().cloned().collect();
                let copies = |s: &String| pages.iter().filter(|p| p.contains(s)).count();
                let wrong: Vec<(&String, usize)> = union
                    .iter()
                    .map(|s| (s, copies(s)))
                    .filter(|(_, c)| *c != COPIES)
                    .take(5)
                    .collect();
                let state = format!(
                    "Prometheus {} series, pages {:?}, union {}, VictoriaMetrics {}, not on {COPIES} pages: {wrong:?}",
                    sent.len(),
                    pages.iter().map(BTreeSet::len).collect::<Vec<_>>(),
                    union.len(),
                    stored.len()
                );
                // 363 series per job from the exporter, plus Prometheus' up
                // and scrape_* series.
                if sent.len() > 2 * 363 && union == sent && stored == sent && wrong.is_empty() {
                    Ok((sent, pages))
                } else {
                    Err(state)
                }
            }
        },
    )
    .await;
    eprintln!(
        "{} series sent; replicas hold {:?}",
        sent.len(),
        before.iter().map(BTreeSet::len).collect::<Vec<_>>()
    );
    // Sharding spread the series: no replica holds them all (how evenly
    // depends on the hash of the exporter's address, chosen at run time).
    for (i, page) in before.iter().enumerate() {
        assert!(
            page.len() < sent.len(),
            "replica {i} holds {} of {}",
            page.len(),
            sent.len()
        );
        // Whole families: every bucket's histogram has its _count and _sum
        // on the same page.
        for s in page.iter().filter(|s| s.contains("_bucket{")) {
            let base = s.replacen("_bucket{", "{", 1);
            let without_le: String = {
                let (name, labels) = base.split_once('{').unwrap();
                let labels: Vec<&str> = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.starts_with("le="))
                    .collect();
                format!("{name}{{{}}}", labels.join(","))
            };
            for suffix in ["_count", "_sum"] {
                let (name, labels) = without_le.split_once('{').unwrap();
                let other = format!("{name}{suffix}{{{labels}");
                assert!(page.contains(&other), "replica {i} has {s} but not {other}");
            }
        }
        // Both senders reached this replica.
        for job in ["job=legacy-a", "job=legacy-b"] {
            assert!(
                page.iter().any(|s| s.contains(job)),
                "replica {i} has nothing of {job}"
            );
        }
    }

    // A window of normal running, then replica 1 killed (SIGKILL) mid-run,
    // down for five sender scrapes, restarted on its port.
    let start = now();
    tokio::time::sleep(Duration::from_secs(2 * SCRAPE_INTERVAL_S)).await;
    drop(replicas[1].take());
    let (killed, killed_at) = (Instant::now(), now());
    tokio::time::sleep(Duration::from_secs(5 * SCRAPE_INTERVAL_S)).await;
    replicas[1] = Some(start_promgate(ports[1], &d.join("promgate-1b")));
    let (restarted, restarted_at) = (Instant::now(), now());
    // It rejoins: its page holds again exactly the series it held before.
    let port = ports[1];
    let expected = before[1].clone();
    eventually(
        Duration::from_secs(120),
        "the restarted replica to hold its series again",
        || {
            let (client, expected) = (client.clone(), expected.clone());
            async move {
                let page = fetch_text(&client, &format!("http://127.0.0.1:{port}/metrics")).await?;
                let now = page_series(&page);
                if now == expected {
                    Ok(())
                } else {
                    Err(format!("{} of {} series", now.len(), expected.len()))
                }
            }
        },
    )
    .await;
    eprintln!(
        "replica 1 down for {:?}, whole again {:?} after its restart",
        restarted - killed,
        restarted.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2 * SCRAPE_INTERVAL_S)).await;

    // Every sample Prometheus scraped over the whole window (before, during
    // and after the outage) is in VictoriaMetrics exactly once, with its
    // value: no series missing, no sample missing, none doubled.
    let end = now() - 2.0;
    let window = (end - start).ceil() as u64;
    let (expected, figures) = eventually(
        Duration::from_secs(60),
        "VictoriaMetrics to hold every sample Prometheus scraped, once",
        || {
            let client = client.clone();
            async move {
                let want = raw_samples(&client, prom_port, SELECTOR, end, window).await?;
                let got = raw_samples(&client, vm_port, SELECTOR, end, window).await?;
                let samples: usize = want.values().map(Vec::len).sum();
                let stored: usize = got.values().map(Vec::len).sum();
                let differing: Vec<&String> = want
                    .keys()
                    .chain(got.keys())
                    .filter(|k| !same_samples(want.get(*k), got.get(*k)))
                    .take(3)
                    .collect();
                let figures = format!(
                    "{} series and {samples} samples in Prometheus over {window}s, {} series and {stored} samples in VictoriaMetrics",
                    want.len(),
                    got.len()
                );
                if differing.is_empty() {
                    Ok((want, figures))
                } else {
                    let k = differing[0];
                    Err(format!(
                        "{figures}; first differing series {k}: Prometheus {:?}, VictoriaMetrics {:?}",
                        want.get(k),
                        got.get(k)
                    ))
                }
            }
        },
    )
    .await;
    eprintln!("{figures}");
    // The window held the outage: every series has samples from before the
    // kill, from while the replica was down, and from after its restart.
    let ms = |t: f64| (t * 1000.0) as i64;
    for (series, samples) in &expected {
        for (what, lo, hi) in [
            ("before the kill", i64::MIN, ms(killed_at)),
            ("during the outage", ms(killed_at), ms(restarted_at)),
            ("after the restart", ms(restarted_at), i64::MAX),
        ] {
            assert!(
                samples.iter().any(|(t, _)| *t > lo && *t < hi),
                "{series}: no sample {what}: {samples:?}"
            );
        }
    }
}
