//! The whole topology run by the local runner (`scripts/stack`): data from
//! every cluster, the legacy push flow, every dashboard query and every
//! documented query answered, an alert provoked and resolved; and the
//! foreground runner stopping everything it started. Every process a test
//! starts is stopped when the test ends, passing or failing.

mod common;
mod stack;

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use stack::*;

/// The cluster label the receiver-scraper gives the legacy push flow.
const LEGACY_CLUSTER: &str = "us-east-1-eks-01-prod-legacy";

/// The local runner's stack, stopped (`scripts/stack down`) when dropped.
struct Stack {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Stack {
    /// `scripts/stack up --detach`: returns once every service is healthy.
    fn up() -> Stack {
        let stack = Stack::configured();
        let (ok, out) = stack.script(&["up", "--detach"]);
        assert!(ok, "scripts/stack up failed: {out}");
        stack
    }

    /// A state directory and free ports for every service, nothing started.
    fn configured() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        // This package's promgate and the workspace's mock-exporter, built
        // side by side (mock_exporter_bin says how when it is missing).
        let bin_dir = mock_exporter_bin().parent().unwrap().to_path_buf();
        assert_eq!(
            bin_dir,
            Path::new(env!("CARGO_BIN_EXE_promgate")).parent().unwrap()
        );
        let mut env: Vec<(String, String)> = vec![
            ("STACK_DIR".into(), dir.path().display().to_string()),
            ("BIN_DIR".into(), bin_dir.display().to_string()),
            ("SCRAPE_INTERVAL".into(), "2s".into()),
            ("SCRAPE_TIMEOUT".into(), "2s".into()),
            ("EVALUATION_INTERVAL".into(), "5s".into()),
        ];
        let vars = [
            "VM_PORT",
            "VMALERT_PORT",
            "ALERTMANAGER_PORT",
            "LEGACY_PROMETHEUS_PORT",
            "BLACKBOX_PORT",
            "MOCK_EXPORTER_PORT",
            "PROMGATE_PORT",
            "PROMGATE_2_PORT",
            "PORT_RECEIVER_SCRAPER",
        ]
        .map(String::from)
        .into_iter()
        .chain(
            CLUSTERS
                .iter()
                .map(|(c, _, _)| format!("PORT_{}", c.to_uppercase().replace('-', "_"))),
        );
        // Every listener is held until all are chosen: ports picked one by
        // one and released at once can repeat (a stack run once found its
        // promgate and one vmagent given the same port).
        let held: Vec<(String, std::net::TcpListener)> = vars
            .map(|var| (var, std::net::TcpListener::bind("127.0.0.1:0").unwrap()))
            .collect();
        for (var, listener) in &held {
            let port = listener.local_addr().unwrap().port();
            env.push((var.clone(), port.to_string()));
        }
        drop(held);
        Stack { dir, env }
    }

    fn script(&self, args: &[&str]) -> (bool, String) {
        run(Command::new(root().join("scripts/stack"))
            .args(args)
            .envs(self.env.iter().cloned()))
    }

    fn port(&self, var: &str) -> u16 {
        self.env
            .iter()
            .find(|(k, _)| k == var)
            .unwrap()
            .1
            .parse()
            .unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let (_, out) = self.script(&["down"]);
        if std::thread::panicking() {
            eprintln!("stack down: {out}; logs in {}", self.dir.path().display());
            for log in std::fs::read_dir(self.dir.path().join("logs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                eprintln!("--- {}: {:?}", log.path().display(), tail);
            }
        }
    }
}

/// A command running as the leader of a process group of its own, so that
/// everything it starts (scripts/stack's services inherit the group) can be
/// stopped together. Dropping it, on success or panic, sends the group
/// SIGTERM, waits up to 15 s for it to empty, then sends SIGKILL, and reaps
/// the leader.
struct ProcessGroup {
    leader: Child,
}

impl ProcessGroup {
    fn spawn(cmd: &mut Command) -> ProcessGroup {
        let leader = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        ProcessGroup { leader }
    }

    /// Sends `signal` (`-TERM`, `-0`…) to every process of the group; false
    /// once the group is empty.
    fn signal_group(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.leader.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The leader's exit code, waiting at most `timeout` for it.
    fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.leader.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                start.elapsed() < timeout,
                "{} still running after {timeout:?}",
                self.leader.id()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.signal_group("-TERM") {
            let start = Instant::now();
            // Reap the leader as it exits: an unreaped leader still counts as
            // a member and keeps the group alive.
            while start.elapsed() < Duration::from_secs(15) {
                let _ = self.leader.try_wait();
                if !self.signal_group("-0") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            self.signal_group("-KILL");
        }
        let _ = self.leader.wait();
    }
}

/// `scripts/stack up` in the foreground stops everything it started when
/// told to stop, as the README promises for Ctrl-C. The test sends SIGTERM,
/// which the same trap handles: a process started from a non-interactive
/// shell (as CI runs tests) inherits SIGINT ignored, and bash cannot trap an
/// ignored signal.
#[test]
fn foreground_stack_stops_everything_it_started() {
    let stack = Stack::configured();
    // Declared after `stack`, so dropped before it: the group goes first,
    // then `scripts/stack down` sweeps whatever the pid files still name.
    let mut up = ProcessGroup::spawn(
        Command::new(root().join("scripts/stack"))
            .arg("up")
            .envs(stack.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let pids = stack.dir.path().join("pids");
    let start = Instant::now();
    // Up when the last agent's pid file exists and every service answers.
    loop {
        let (_, status) = stack.script(&["status"]);
        if status.lines().filter(|l| l.starts_with("running")).count() == 15 {
            break;
        }
        assert!(
            up.leader.try_wait().unwrap().is_none(),
            "scripts/stack up exited early: {status}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "stack did not come up: {status}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let recorded: Vec<String> = std::fs::read_dir(&pids)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    // `wipe` refuses while the stack runs.
    let (ok, out) = stack.script(&["wipe"]);
    assert!(!ok && pids.is_dir(), "{out}");
    // The script alone, not its group: its trap must stop the services.
    let stopping = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &up.leader.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(up.wait_timeout(Duration::from_secs(60)), Some(0));
    // Everything stops together, the store last (a figure, not a check: the
    // machine's load decides it; 28 s one service after the other before).
    eprintln!("the foreground stack stopped in {:?}", stopping.elapsed());
    for pid in recorded {
        let alive = Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "process {pid} survived the stop");
    }
    // Once stopped, `wipe` removes the state directory.
    let (ok, out) = stack.script(&["wipe"]);
    assert!(ok && !stack.dir.path().exists(), "{out}");
}

/// PromQL blocks of the README and docs/ (```promql fences).
fn documented_queries() -> Vec<(String, String)> {
    let mut docs = vec![root().join("README.md")];
    if root().join("docs").is_dir() {
        docs.extend(files("docs", "md"));
    }
    let mut out = Vec::new();
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let mut in_block = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_block = line.trim_start() == "```promql";
                continue;
            }
            if in_block && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
                out.push((
                    doc.file_name().unwrap().to_string_lossy().into_owned(),
                    substitute(line.trim()),
                ));
            }
        }
    }
    out
}

async fn vmalert_alerts(client: &reqwest::Client, port: u16) -> Result<Vec<Value>, String> {
    let v: Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/alerts"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(v["data"]["alerts"].as_array().cloned().unwrap_or_default())
}

/// The queries of the panel titled `title`, template variables untouched.
fn panel_exprs(title: &str) -> Vec<String> {
    let panel = dashboards()
        .into_iter()
        .flat_map(|d| d["panels"].as_array().unwrap().clone())
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect()
}

/// `label → value` of an instant query's result.
async fn by_label(
    client: &reqwest::Client,
    vm: u16,
    expr: &str,
    label: &str,
) -> Result<Vec<(String, f64)>, String> {
    Ok(query(client, vm, expr)
        .await?
        .iter()
        .map(|s| {
            (
                s["metric"][label].as_str().unwrap_or("").to_string(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect())
}

/// The sum of every sample of `name` (a counter, or a histogram's
/// `_count`) on an agent's own /metrics page.
async fn agent_sum(client: &reqwest::Client, port: u16, name: &str) -> Result<f64, String> {
    let page = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    Ok(page
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The lowest and highest latency an agent's own remote-write histogram has
/// seen: the bounds of its lowest and highest non-empty `vmrange` bucket.
async fn agent_latency_range(client: &reqwest::Client, port: u16) -> Result<(f64, f64), String> {
    let page = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for l in page.lines() {
        let Some(rest) = l.strip_prefix("vmagent_remotewrite_duration_seconds_bucket{") else {
            continue;
        };
        let range = rest
            .split("vmrange=\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        let count: f64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        if let (Some(range), true) = (range, count > 0.0) {
            let (a, b) = range.split_once("...").unwrap();
            lo = lo.min(a.parse().unwrap());
            hi = hi.max(b.parse().unwrap());
        }
    }
    if hi > 0.0 {
        Ok((lo, hi))
    } else {
        Err(format!("no remote-write latency on :{port}"))
    }
}

/// Every agent: (cluster, env, its port variable).
fn agents() -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = CLUSTERS
        .iter()
        .map(|(c, e, _)| {
            (
                c.to_string(),
                e.to_string(),
                format!("PORT_{}", c.to_uppercase().replace('-', "_")),
            )
        })
        .collect();
    v.push((
        LEGACY_CLUSTER.into(),
        "prod".into(),
        "PORT_RECEIVER_SCRAPER".into(),
    ));
    v
}

/// Whether `a` and `b` agree within `tolerance` (a fraction of the larger).
fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs())
}

/// "Ingestion rate by environment", computed from its dashboard query, against
/// two independent figures: the agents' own counters, read from their
/// /metrics pages over a window and summed per environment, and
/// VictoriaMetrics' count of rows it inserted (which also holds vmalert's
/// writes, a few rows per second). The fleet job once doubled prod's figure.
async fn check_ingestion_by_env(
    stack: &Stack,
    client: &reqwest::Client,
    vm: u16,
) -> Result<String, String> {
    const ROWS: &str = "vmagent_remotewrite_rows_pushed_after_relabel_total";
    let window = Duration::from_secs(20);
    let mut before = Vec::new();
    for (_, _, port) in agents() {
        before.push(agent_sum(client, stack.port(&port), ROWS).await?);
    }
    tokio::time::sleep(window).await;
    let mut own: std::collections::BTreeMap<String, f64> = Default::default();
    for ((_, env, port), b) in agents().into_iter().zip(before) {
        let a = agent_sum(client, stack.port(&port), ROWS).await?;
        *own.entry(env).or_default() += (a - b) / window.as_secs_f64();
    }
    let expr = &panel_exprs("Ingestion rate by environment")[0];
    let panel: std::collections::BTreeMap<String, f64> = by_label(client, vm, expr, "env")
        .await?
        .into_iter()
        .collect();
    let inserted = by_label(
        client,
        vm,
        r#"sum(rate(vm_rows_inserted_total{job="vminsert"}[5m]))"#,
        "",
    )
    .await?
    .first()
    .map(|(_, v)| *v)
    .unwrap_or(0.0);
    let total: f64 = panel.values().sum();
    let figures = format!(
        "panel {panel:?} (total {total:.0}/s), agents' own {own:?}, vm_rows_inserted {inserted:.0}/s"
    );
    let keys_match = panel.keys().eq(own.keys());
    // 15 %: the panel is a 5-minute rate, the agents' figure a 20-second one.
    let per_env = keys_match && panel.iter().all(|(env, v)| close(*v, own[env], 0.15));
    // vmalert's rows make VictoriaMetrics' figure a little higher, never lower.
    let against_storage = total <= inserted * 1.05 && total >= inserted * 0.85;
    if per_env && against_storage {
        Ok(figures)
    } else {
        Err(figures)
    }
}

/// The Stack dashboard's remote-write latency for each cluster (`$cluster`
/// set to it) against that agent's own /metrics: the requests per second
/// under the panel's quantiles match the agent's own count, and the p99 lies
/// within the latencies the agent has seen. The fleet job once filed every
/// agent's requests under the watcher's cluster.
async fn check_remote_write_latency(
    stack: &Stack,
    client: &reqwest::Client,
    vm: u16,
) -> Result<String, String> {
    let exprs = panel_exprs("Remote-write latency");
    let p99 = exprs
        .iter()
        .find(|e| e.starts_with("histogram_quantile(0.99, "))
        .unwrap();
    // histogram_quantile(0.99, INNER): INNER is the bucket rates the quantile reads.
    let inner = &p99["histogram_quantile(0.99, ".len()..p99.len() - 1];
    let window = Duration::from_secs(30);
    const COUNT: &str = "vmagent_remotewrite_duration_seconds_count";
    let mut before = Vec::new();
    for (_, _, port) in agents() {
        before.push(agent_sum(client, stack.port(&port), COUNT).await?);
    }
    tokio::time::sleep(window).await;
    let mut figures = Vec::new();
    let mut ok = true;
    for ((cluster, _, port), b) in agents().into_iter().zip(before) {
        let port = stack.port(&port);
        let own = (agent_sum(client, port, COUNT).await? - b) / window.as_secs_f64();
        let set = |e: &str| e.replace("$cluster", &cluster);
        let panel_rate = by_label(client, vm, &format!("sum({})", set(inner)), "")
            .await?
            .first()
            .map_or(0.0, |(_, v)| *v);
        let quantile = by_label(client, vm, &set(p99), "")
            .await?
            .first()
            .map_or(f64::NAN, |(_, v)| *v);
        let (lo, hi) = agent_latency_range(client, port).await?;
        // 35 %: about one request a second, counted over 30 s on one side
        // and 5 minutes on the other.
        let agrees = close(panel_rate, own, 0.35) && quantile >= lo && quantile <= hi;
        ok &= agrees;
        figures.push(format!(
            "{cluster}: panel {panel_rate:.2} req/s p99 {quantile:.4}s, own {own:.2} req/s in [{lo:.4}, {hi:.4}]s{}",
            if agrees { "" } else { " MISMATCH" }
        ));
    }
    let figures = figures.join("\n");
    if ok { Ok(figures) } else { Err(figures) }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_stack_end_to_end() {
    let stack = Stack::up();
    let vm = stack.port("VM_PORT");
    let client = reqwest::Client::new();

    // A second `up` refuses before building anything (BIN_DIR empty would
    // otherwise run cargo, which says "building").
    let (ok, out) = run(Command::new(root().join("scripts/stack"))
        .args(["up", "--detach"])
        .envs(stack.env.iter().cloned())
        .env("BIN_DIR", ""));
    assert!(
        !ok && out.contains("already running") && !out.contains("building"),
        "{out}"
    );

    // Data from all six clusters, with their labels.
    eventually(
        Duration::from_secs(120),
        "mock-exporter data from every cluster",
        || {
            let client = client.clone();
            async move {
                let r = query(
                    &client,
                    vm,
                    r#"count by (env, region, cluster) (http_requests_total)"#,
                )
                .await?;
                let missing: Vec<&str> = CLUSTERS
                    .iter()
                    .filter(|(c, e, reg)| {
                        !r.iter().any(|s| {
                            s["metric"]["cluster"] == *c
                                && s["metric"]["env"] == *e
                                && s["metric"]["region"] == *reg
                        })
                    })
                    .map(|(c, _, _)| *c)
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?}"))
                }
            }
        },
    )
    .await;

    // The legacy flow: legacy Prometheus → promgate → receiver-scraper, with
    // the pushed job kept and the legacy cluster's labels added.
    eventually(Duration::from_secs(120), "legacy flow data", || {
        let client = client.clone();
        async move {
            let q = format!(r#"up{{job="legacy-prometheus", env="prod", region="us-east-1", cluster="{LEGACY_CLUSTER}"}}"#);
            let r = query(&client, vm, &q).await?;
            let q2 = format!(r#"http_requests_total{{job="legacy-app", cluster="{LEGACY_CLUSTER}"}}"#);
            let r2 = query(&client, vm, &q2).await?;
            if !r.is_empty() && !r2.is_empty() { Ok(()) } else { Err(format!("{r:?} {r2:?}")) }
        }
    })
    .await;

    // Both promgate replicas hold every legacy series (the legacy Prometheus
    // writes to each) and the receiver-scraper reads both, yet each series is
    // stored once: VictoriaMetrics counts as many legacy-app series as the
    // legacy Prometheus itself holds and each replica's page shows, not twice
    // as many.
    let replicas = [stack.port("PROMGATE_PORT"), stack.port("PROMGATE_2_PORT")];
    let legacy_prometheus = stack.port("LEGACY_PROMETHEUS_PORT");
    let figures = eventually(
        Duration::from_secs(120),
        "each legacy series stored once from two replicas",
        || {
            let client = client.clone();
            async move {
                let mut held = Vec::new();
                for port in replicas {
                    let page =
                        fetch_text(&client, &format!("http://127.0.0.1:{port}/metrics")).await?;
                    // job="legacy-app" itself, not scrape_job="legacy-app" of
                    // Prometheus' own target metrics.
                    held.push(
                        page.lines()
                            .filter(|l| {
                                !l.starts_with('#')
                                    && (l.contains(r#"{job="legacy-app""#)
                                        || l.contains(r#",job="legacy-app""#))
                            })
                            .count() as f64,
                    );
                }
                let count = |port: u16, q: String| {
                    let client = client.clone();
                    async move {
                        Ok::<f64, String>(
                            by_label(&client, port, &q, "")
                                .await?
                                .first()
                                .map_or(0.0, |v| v.1),
                        )
                    }
                };
                let own = count(legacy_prometheus, r#"count({job="legacy-app"})"#.into()).await?;
                let stored = count(
                    vm,
                    format!(r#"count({{job="legacy-app", cluster="{LEGACY_CLUSTER}"}})"#),
                )
                .await?;
                let scraped = count(vm, r#"count(up{job="promgate"} == 1)"#.into()).await?;
                let figures = format!(
                    "legacy Prometheus holds {own} legacy-app series, the replicas {held:?}, VictoriaMetrics {stored}; replicas scraped {scraped}"
                );
                if own > 300.0 && held == [own, own] && stored == own && scraped == 2.0 {
                    Ok(figures)
                } else {
                    Err(figures)
                }
            }
        },
    )
    .await;
    eprintln!("legacy flow: {figures}");

    // Blackbox probes carry their source and target regions.
    let probes = query(&client, vm, r#"probe_duration_seconds{job="blackbox"}"#)
        .await
        .unwrap();
    let pairs: HashSet<(String, String)> = probes
        .iter()
        .map(|s| {
            (
                s["metric"]["source_region"].as_str().unwrap().to_string(),
                s["metric"]["target_region"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pairs.len(),
        12,
        "every ordered pair of the four regions: {pairs:?}"
    );

    // Every dashboard panel and every documented query returns data.
    let mut exprs = dashboard_exprs();
    exprs.extend(documented_queries());
    assert!(exprs.len() > 30, "{}", exprs.len());
    eventually(
        Duration::from_secs(120),
        "every dashboard and documented query to return data",
        || {
            let client = client.clone();
            let exprs = exprs.clone();
            async move {
                let mut empty = Vec::new();
                for (where_, expr) in &exprs {
                    if query(&client, vm, expr).await?.is_empty() {
                        empty.push(format!("{where_}: {expr}"));
                    }
                }
                if empty.is_empty() {
                    Ok(())
                } else {
                    Err(empty.join("\n"))
                }
            }
        },
    )
    .await;

    // Heatmaps are over `le` buckets, as Grafana's heatmap format reads them.
    for title in ["Latency distribution", "Probe duration distribution"] {
        for expr in panel_exprs(title) {
            let r = query(&client, vm, &substitute(&expr)).await.unwrap();
            assert!(
                !r.is_empty()
                    && r.iter()
                        .all(|s| s["metric"]["le"].is_string()
                            && s["metric"].get("vmrange").is_none()),
                "{title}: not `le` buckets: {r:?}"
            );
        }
    }

    // "Cluster status" merges its two queries into one table: both answer
    // one row per cluster, for the same clusters, every agent's included.
    let rows = |r: Vec<Value>| -> Vec<String> {
        let mut v: Vec<String> = r
            .iter()
            .map(|s| s["metric"]["cluster"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let status = panel_exprs("Cluster status");
    let up_rows = rows(query(&client, vm, &status[0]).await.unwrap());
    let all_rows = rows(query(&client, vm, &status[1]).await.unwrap());
    assert_eq!(
        up_rows, all_rows,
        "Cluster status: the two queries do not merge row by row"
    );
    assert_eq!(up_rows.len(), 7, "{up_rows:?}");

    // The panels' figures against independent ones.
    let figures = eventually(
        Duration::from_secs(120),
        "ingestion by environment to match the agents' own figures",
        || check_ingestion_by_env(&stack, &client, vm),
    )
    .await;
    eprintln!("ingestion by environment: {figures}");
    let figures = eventually(
        Duration::from_secs(120),
        "remote-write latency per cluster to match each agent's own",
        || check_remote_write_latency(&stack, &client, vm),
    )
    .await;
    eprintln!("remote-write latency per cluster:\n{figures}");

    // An alert provoked on purpose: stop the dev cluster's vmagent. The
    // alert names the stopped agent's cluster (Alertmanager groups by it).
    let (ok, out) = stack.script(&["stop", "vmagent-ap-southeast-1-eks-01-dev"]);
    assert!(ok, "{out}");
    // `status` names the stopped service, and every other one as running.
    let (_, status) = stack.script(&["status"]);
    assert!(
        status.lines().any(|l| l
            .split_whitespace()
            .eq(["stopped", "vmagent-ap-southeast-1-eks-01-dev"])),
        "{status}"
    );
    assert_eq!(
        status
            .lines()
            .filter(|l| l.starts_with("running  "))
            .count(),
        14,
        "{status}"
    );
    // A service alive but not answering (promgate-2 frozen with SIGSTOP) is
    // `unhealthy`, not `running`; thawed, it is running again.
    let pid = std::fs::read_to_string(stack.dir.path().join("pids/promgate-2")).unwrap();
    let signal = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, pid.trim()])
                .status()
                .unwrap()
                .success()
        )
    };
    let state_of = |name: &str| -> String {
        let (_, status) = stack.script(&["status"]);
        status
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("missing")
            .to_string()
    };
    signal("-STOP");
    let frozen = state_of("promgate-2");
    signal("-CONT");
    assert_eq!(frozen, "unhealthy");
    assert_eq!(state_of("promgate-2"), "running");
    let vmalert = stack.port("VMALERT_PORT");
    let is_down_alert = |a: &Value| {
        a["name"] == "VmagentDown"
            && a["labels"]["cluster"] == "ap-southeast-1-eks-01-dev"
            && a["labels"]["env"] == "dev"
            && a["labels"]["region"] == "ap-southeast-1"
    };
    eventually(Duration::from_secs(180), "VmagentDown to fire", || {
        let client = client.clone();
        async move {
            let alerts = vmalert_alerts(&client, vmalert).await?;
            if alerts
                .iter()
                .any(|a| is_down_alert(a) && a["state"] == "firing")
            {
                Ok(())
            } else {
                Err(format!("{alerts:?}"))
            }
        }
    })
    .await;
    // vmalert wrote the alert state back to VictoriaMetrics for Grafana.
    eventually(
        Duration::from_secs(60),
        "ALERTS series in VictoriaMetrics",
        || {
            let client = client.clone();
            async move {
                let r = query(
                    &client,
                    vm,
                    r#"ALERTS{alertname="VmagentDown", alertstate="firing"}"#,
                )
                .await?;
                if r.is_empty() {
                    Err("no ALERTS".into())
                } else {
                    Ok(())
                }
            }
        },
    )
    .await;
    // No other agent is said to be down: the watcher names no one else.
    let alerts = vmalert_alerts(&client, vmalert).await.unwrap();
    let others: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["name"] == "VmagentDown" && !is_down_alert(a))
        .collect();
    assert!(others.is_empty(), "{others:?}");
    // The dead agent drops out of "Active vmagents" and "Clusters reporting".
    for title in ["Active vmagents", "Clusters reporting"] {
        let expr = panel_exprs(title).remove(0);
        eventually(
            Duration::from_secs(90),
            &format!("{title} to say 6"),
            || {
                let client = client.clone();
                let expr = expr.clone();
                async move {
                    let r = by_label(&client, vm, &expr, "").await?;
                    if r.len() == 1 && r[0].1 == 6.0 {
                        Ok(())
                    } else {
                        Err(format!("{r:?}"))
                    }
                }
            },
        )
        .await;
    }
    let (ok, out) = stack.script(&["start", "vmagent-ap-southeast-1-eks-01-dev"]);
    assert!(ok, "{out}");
    eventually(Duration::from_secs(120), "VmagentDown to resolve", || {
        let client = client.clone();
        async move {
            let alerts = vmalert_alerts(&client, vmalert).await?;
            if alerts.iter().any(is_down_alert) {
                Err(format!("{alerts:?}"))
            } else {
                Ok(())
            }
        }
    })
    .await;
}
