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
        for var in [
            "VM_PORT",
            "VMALERT_PORT",
            "ALERTMANAGER_PORT",
            "LEGACY_PROMETHEUS_PORT",
            "BLACKBOX_PORT",
            "MOCK_EXPORTER_PORT",
            "PROMGATE_PORT",
            "PORT_RECEIVER_SCRAPER",
        ] {
            env.push((var.into(), free_port().to_string()));
        }
        for (c, _, _) in CLUSTERS {
            env.push((
                format!("PORT_{}", c.to_uppercase().replace('-', "_")),
                free_port().to_string(),
            ));
        }
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
        if status.lines().filter(|l| l.starts_with("running")).count() == 14 {
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
    // The script alone, not its group: its trap must stop the services.
    assert!(
        Command::new("kill")
            .args(["-TERM", &up.leader.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(up.wait_timeout(Duration::from_secs(60)), Some(0));
    for pid in recorded {
        let alive = Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "process {pid} survived the stop");
    }
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

#[tokio::test(flavor = "multi_thread")]
async fn local_stack_end_to_end() {
    let stack = Stack::up();
    let vm = stack.port("VM_PORT");
    let client = reqwest::Client::new();

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

    // An alert provoked on purpose: stop the dev cluster's vmagent.
    let (ok, out) = stack.script(&["stop", "vmagent-ap-southeast-1-eks-01-dev"]);
    assert!(ok, "{out}");
    let vmalert = stack.port("VMALERT_PORT");
    let is_down_alert = |a: &Value| {
        a["name"] == "VmagentDown" && a["labels"]["target_cluster"] == "ap-southeast-1-eks-01-dev"
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
