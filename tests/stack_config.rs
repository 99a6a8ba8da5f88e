//! The stack's static files, each checked by the real tool that will read
//! it: the vmagent configs, the legacy Prometheus config, the vmalert rules
//! and their unit tests, the Grafana dashboards, every expression as
//! MetricsQL, the compose file and vmauth's config. Nothing is left running;
//! the whole topology at work is stack_e2e.rs.

mod common;
mod stack;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;
use stack::*;

/// The environment the shared vmagent configs expand, with placeholder addresses.
fn vmagent_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("SCRAPE_INTERVAL", "15s"),
        ("SCRAPE_TIMEOUT", "10s"),
        ("SELF_ADDR", "127.0.0.1:8430"),
        ("MOCK_EXPORTER_ADDR", "127.0.0.1:2112"),
        ("BLACKBOX_ADDR", "127.0.0.1:9115"),
        ("PROMGATE_TARGETS", "'127.0.0.1:9091','127.0.0.1:9092'"),
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
    // Every port of the README's table that compose runs is published.
    for (name, port, target) in [
        ("prometheus-legacy", "9090", 9090),
        ("vmauth", "8427", 8427),
        ("vmalert", "8880", 8880),
        ("alertmanager", "9093", 9093),
        ("promgate-1", "9091", 9091),
        ("promgate-2", "9092", 9091),
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
    for name in ["vminsert-2", "vmselect-2", "vmstorage-2"] {
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

/// The panels of every dashboard tile the grid: rows are full, nothing is
/// left empty beside a short panel or under a narrow one (their areas add up
/// to the whole rectangle, and no two overlap: checked above).
#[test]
fn dashboards_have_no_layout_holes() {
    for d in dashboards() {
        let panels = d["panels"].as_array().unwrap();
        let grid = |p: &Value, k: &str| p["gridPos"][k].as_i64().unwrap();
        let bottom = panels
            .iter()
            .map(|p| grid(p, "y") + grid(p, "h"))
            .max()
            .unwrap();
        let area: i64 = panels.iter().map(|p| grid(p, "w") * grid(p, "h")).sum();
        assert_eq!(area, 24 * bottom, "{}: holes in the grid", d["title"]);
    }
}

/// Grafana's heatmap format reads cumulative `le` buckets and subtracts
/// neighbours: a heatmap over VictoriaMetrics' `vmrange` buckets (which are
/// not cumulative) draws wrong cells. Every heatmap query must end in `le`
/// buckets: a `sum by (le)` or `prometheus_buckets()`.
#[test]
fn heatmaps_are_over_le_buckets() {
    let mut heatmaps = 0;
    for d in dashboards() {
        for p in d["panels"].as_array().unwrap() {
            if p["type"] != "heatmap" {
                continue;
            }
            heatmaps += 1;
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                let le = expr.starts_with("prometheus_buckets(")
                    || (expr.starts_with("sum by (le) (") && !expr.contains("vmrange"));
                assert!(le, "{}: heatmap over non-`le` buckets: {expr}", p["title"]);
                assert_eq!(t["format"], "heatmap", "{}", p["title"]);
                assert_eq!(t["legendFormat"], "{{le}}", "{}", p["title"]);
            }
        }
    }
    assert!(heatmaps >= 2);
}

/// A table fed by several queries is one table only with a merge (or join)
/// transformation; without it Grafana shows one frame per query behind a
/// selector.
#[test]
fn multi_query_tables_are_merged() {
    for d in dashboards() {
        for p in d["panels"].as_array().unwrap() {
            if p["type"] != "table" || p["targets"].as_array().unwrap().len() < 2 {
                continue;
            }
            let merged = p["transformations"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["id"] == "merge" || t["id"] == "joinByField");
            assert!(merged, "{}: several queries, no merge", p["title"]);
        }
    }
    // The RED dashboard opens on production, not on the first env in sort order.
    let red = dashboards()
        .into_iter()
        .find(|d| d["uid"] == "promgate-red")
        .unwrap();
    let env = red["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "env")
        .unwrap()
        .clone();
    assert_eq!(env["current"]["value"], "prod");
}

/// The `vmagent_*` selectors of `expr` (dashboards, rules, docs).
fn vmagent_selectors(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("vmagent_") {
        let name_end = rest[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(rest.len(), |e| i + e);
        let selector = if rest[name_end..].starts_with('{') {
            let close = rest[name_end..].find('}').unwrap() + name_end;
            &rest[i..=close]
        } else {
            &rest[i..name_end]
        };
        out.push(selector.to_string());
        rest = &rest[name_end..];
    }
    out
}

/// Each agent's own figures come from its self-scrape (`job="vmagent"`).
/// The fleet job once brought a second copy of every agent's metrics under
/// the watcher's cluster, doubling ingestion by env and region and filing
/// other agents' remote-write latency and errors under the watcher. Every
/// `vmagent_*` selector of the dashboards, the rules and the docs is pinned
/// to the self-scrape, and the fleet job keeps only `up`.
#[test]
fn vmagent_figures_come_from_each_agents_own_scrape() {
    let mut exprs: Vec<(String, String)> = dashboard_exprs();
    for f in files("rules", "yml") {
        let text = std::fs::read_to_string(&f).unwrap();
        let code: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        exprs.push((f.display().to_string(), code.join("\n")));
    }
    exprs.push((
        "docs/queries.md".into(),
        std::fs::read_to_string(root().join("docs/queries.md")).unwrap(),
    ));
    let mut seen = 0;
    for (where_, expr) in &exprs {
        for s in vmagent_selectors(expr) {
            seen += 1;
            assert!(
                s.contains(r#"job="vmagent""#),
                "{where_}: {s} is not pinned to job=\"vmagent\""
            );
        }
    }
    assert!(seen >= 8, "{seen}");

    let fleet = std::fs::read_to_string(root().join("vmagent/us-east-1-eks-01-prod.yml")).unwrap();
    let job = &fleet[fleet.find("job_name: vmagent-fleet").unwrap()..];
    assert!(
        job.contains("metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: up\n        action: keep"),
        "the fleet job must keep only up: {job}"
    );
    // Each watched agent's series carry that agent's env, region and cluster
    // (target labels win over the watcher's external_labels).
    let mut watched: Vec<(&str, &str, &str)> = CLUSTERS.to_vec();
    watched.push(("us-east-1-eks-01-prod-legacy", "prod", "us-east-1"));
    for (cluster, env, region) in watched {
        let var = if cluster.ends_with("-legacy") {
            "RECEIVER_SCRAPER".to_string()
        } else {
            cluster.to_uppercase().replace('-', "_")
        };
        let at = job
            .find(&format!("%{{VMAGENT_{var}_ADDR}}"))
            .unwrap_or_else(|| panic!("{cluster} not watched"));
        let labels = job[at..].lines().nth(1).unwrap();
        for l in [
            format!("env: {env},"),
            format!("region: {region},"),
            format!("cluster: {cluster},"),
        ] {
            assert!(labels.contains(&l), "{cluster}: {labels} lacks {l}");
        }
    }
}

/// `scripts/stack --help` and the README document every command the script
/// takes, and the header names no file the repository lacks.
#[test]
fn stack_script_documents_its_commands() {
    let script = std::fs::read_to_string(root().join("scripts/stack")).unwrap();
    let body = &script[script.rfind("case \"${1:-}\" in").unwrap()..];
    let commands: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_once(')').map(|(c, _)| c))
        .filter(|c| c.chars().all(|ch| ch.is_ascii_lowercase()))
        .collect();
    assert!(commands.len() >= 6, "{commands:?}");
    let (ok, help) = run(Command::new(root().join("scripts/stack")).arg("--help"));
    assert!(ok, "{help}");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for c in &commands {
        let line = format!("scripts/stack {c}");
        assert!(help.contains(&line), "--help lacks {line:?}: {help}");
        assert!(readme.contains(&line), "README lacks {line:?}");
    }
    for word in help.split_whitespace() {
        let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if word.ends_with(".md") {
            assert!(
                root().join(word).exists(),
                "--help names {word}, which is not in the repository"
            );
        }
    }
}

/// One HTTP exchange with `port`: the status line of the answer.
fn http_status(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or("").to_string()
}

/// What compose/vmauth.yml says about a vmselect that is down, checked on the
/// pinned vmauth (1.79): with one of two backends down it does not skip it,
/// so about every second query fails with 502. If this starts to fail
/// because no query fails, vmauth skips dead backends now: update the
/// comment.
#[test]
fn vmauth_with_one_backend_down_fails_half_the_queries() {
    use std::io::{BufRead, BufReader, Write};
    // The live backend: answers 200 to every request.
    let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in live.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let dead_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vmauth.yml");
    std::fs::write(
        &config,
        format!(
            "users:\n  - username: monitoring\n    password: secret\n    url_prefix:\n      - http://127.0.0.1:{live_port}/a\n      - http://127.0.0.1:{dead_port}/b\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _vmauth = Proc {
        child: Command::new(tool("vmauth"))
            .arg(format!("-auth.config={}", config.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        name: "vmauth".into(),
    };
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "vmauth did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // monitoring:secret
    let request = "GET /api/v1/query?query=up HTTP/1.1\r\nHost: x\r\nAuthorization: Basic bW9uaXRvcmluZzpzZWNyZXQ=\r\nConnection: close\r\n\r\n";
    let statuses: Vec<String> = (0..10).map(|_| http_status(port, request)).collect();
    let ok = statuses.iter().filter(|s| s.contains(" 200 ")).count();
    let bad = statuses.iter().filter(|s| s.contains(" 502 ")).count();
    assert!(ok >= 3 && bad >= 3 && ok + bad == 10, "{statuses:?}");
}

/// The legacy flow's replicas: compose runs promgate-1 and promgate-2, the
/// legacy Prometheus writes to each exactly once, the receiver-scraper reads
/// both (its `promgate` and `promgate-self` jobs), and the store deduplicates
/// (vmselect and vmstorage in compose, the single node in scripts/stack), so
/// a series both replicas hold is stored once.
#[test]
fn every_promgate_replica_is_written_scraped_and_deduplicated() {
    let (ok, json) = run(Command::new(compose_bin())
        .arg("-f")
        .arg(root().join("compose/docker-compose.yml"))
        .args(["config", "--format", "json"]));
    assert!(ok, "{json}");
    let config: Value = serde_json::from_str(&json).unwrap();
    let services = config["services"].as_object().unwrap();
    let mut replicas: Vec<&String> = services
        .iter()
        .filter(|(_, s)| s["build"]["target"] == "promgate")
        .map(|(name, _)| name)
        .collect();
    replicas.sort();
    assert_eq!(replicas, ["promgate-1", "promgate-2"]);
    let addresses: Vec<String> = replicas.iter().map(|r| format!("{r}:9091")).collect();

    // Written: one remote_write entry per replica, none twice.
    let legacy = std::fs::read_to_string(root().join("compose/prometheus-legacy.yml")).unwrap();
    let urls: Vec<&str> = legacy
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- url: "))
        .collect();
    let expected: Vec<String> = addresses
        .iter()
        .map(|a| format!("http://{a}/api/v1/write"))
        .collect();
    assert_eq!(urls, expected, "legacy Prometheus' remote_write");
    // scripts/stack rewrites every replica's address in that file.
    let script = std::fs::read_to_string(root().join("scripts/stack")).unwrap();
    for a in &addresses {
        assert!(
            script.contains(&format!("s/{a}/")),
            "scripts/stack does not rewrite {a}"
        );
    }

    // Scraped: both jobs of the receiver-scraper list every replica, as
    // compose's and scripts/stack's PROMGATE_TARGETS expand.
    let scraper = std::fs::read_to_string(root().join("vmagent/receiver-scraper.yml")).unwrap();
    assert_eq!(
        scraper.matches("- targets: [%{PROMGATE_TARGETS}]").count(),
        2,
        "{scraper}"
    );
    let vmagent = services["vmagent-receiver-scraper"]["environment"]["PROMGATE_TARGETS"]
        .as_str()
        .unwrap();
    let listed: Vec<String> = addresses.iter().map(|a| format!("'{a}'")).collect();
    assert_eq!(vmagent, listed.join(","));
    assert!(
        script.contains(
            r#"PROMGATE_TARGETS="'127.0.0.1:$PROMGATE_PORT','127.0.0.1:$PROMGATE_2_PORT'""#
        ),
        "scripts/stack's PROMGATE_TARGETS"
    );

    // Deduplicated: identical (timestamp, value) pairs of the two replicas'
    // copies merge at query time (vmselect) and in storage (vmstorage).
    for name in ["vmselect-1", "vmselect-2", "vmstorage-1", "vmstorage-2"] {
        let cmd = services[name]["command"].to_string();
        assert!(
            cmd.contains("-dedup.minScrapeInterval=1ms"),
            "{name}: {cmd}"
        );
    }
    assert!(
        script.contains("-dedup.minScrapeInterval=1ms"),
        "scripts/stack's victoria-metrics does not deduplicate"
    );
}

/// vmagent accepts each sharding rules file as `-remoteWrite.urlRelabelConfig`
/// (tests/scale_out.rs runs them, with Prometheus too).
#[test]
fn vmagent_accepts_the_sharding_rules() {
    let dir = tempfile::tempdir().unwrap();
    // vmagent 1.79's -dryRun wants a scrape config too.
    let scrape = dir.path().join("scrape.yml");
    std::fs::write(&scrape, "scrape_configs: []\n").unwrap();
    let check = |rules: &[std::path::PathBuf]| {
        let mut cmd = Command::new(tool("vmagent"));
        cmd.arg("-dryRun")
            .arg(format!("-promscrape.config={}", scrape.display()));
        for (i, r) in rules.iter().enumerate() {
            cmd.arg(format!(
                "-remoteWrite.url=http://127.0.0.1:{}/api/v1/write",
                1 + i
            ))
            .arg(format!("-remoteWrite.urlRelabelConfig={}", r.display()));
        }
        run(&mut cmd)
    };
    let rules = files("vmagent/sharding", "yml");
    assert_eq!(rules.len(), 3, "{rules:?}");
    let (ok, out) = check(&rules);
    assert!(ok, "{out}");
    // The check can fail: an unknown action is refused.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "- action: shard\n").unwrap();
    let (ok, _) = check(&[bad]);
    assert!(!ok, "vmagent -dryRun accepted an unknown relabeling action");
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, every
/// character but letters, digits, `-` and `_` dropped; a repeated heading
/// gets `-1`, `-2`, … after the first.
fn heading_anchors(markdown: &str) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    prose_lines(markdown)
        .filter_map(|l| {
            l.trim_start_matches('#')
                .strip_prefix(' ')
                .filter(|_| l.starts_with('#'))
        })
        .map(|title| {
            let slug: String = title
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            let n = seen.entry(slug.clone()).or_default();
            *n += 1;
            if *n == 1 {
                slug
            } else {
                format!("{slug}-{}", *n - 1)
            }
        })
        .collect()
}

/// The lines outside code fences (a `# comment` in a shell block is no heading).
fn prose_lines(markdown: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    markdown.lines().filter(move |l| {
        if l.starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// Every `](target)` of a Markdown text's prose, code fences skipped.
fn link_targets(markdown: &str) -> Vec<String> {
    prose_lines(markdown)
        .collect::<Vec<_>>()
        .join("\n")
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target.to_string()))
        .collect()
}

/// The READMEs' links lead somewhere: each `](#anchor)` to a heading of the
/// same file, each relative `](path)` to a file of the repository. A
/// section renamed or moved without its links fails here, not for a reader.
#[test]
fn readme_links_resolve() {
    for file in ["README.md", "README.vi.md", "ARCHITECTURE.md"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let anchors = heading_anchors(&text);
        let targets = link_targets(&text);
        assert!(
            file != "README.md" || targets.iter().filter(|t| t.starts_with('#')).count() >= 10,
            "README.md's in-page links were not found: {targets:?}"
        );
        for target in targets {
            if let Some(anchor) = target.strip_prefix('#') {
                assert!(
                    anchors.iter().any(|a| a == anchor),
                    "{file} links to #{anchor}, which no heading of it has"
                );
            } else if !target.contains("://") {
                let path = target.split('#').next().unwrap();
                assert!(
                    root().join(path).exists(),
                    "{file} links to {path}, which is not in the repository"
                );
            }
        }
    }
}

#[test]
fn heading_anchors_follow_github() {
    let text = "# A b\n```sh\n# not a heading\n```\n## Access control and TLS\n### `/-/metrics` (self)\n# A b\n";
    assert_eq!(
        heading_anchors(text),
        ["a-b", "access-control-and-tls", "-metrics-self", "a-b-1"]
    );
}
