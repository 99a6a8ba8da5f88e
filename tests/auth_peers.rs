//! Access control with the real programs (Debian's packages), all on
//! 127.0.0.1 over TLS with certificates the tests make: a real Prometheus
//! remote-writing with basic auth, with a bearer token, with a wrong
//! password and with none; a real vmagent scraping with a client
//! certificate and a password into a real VictoriaMetrics, and without.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::Value;

use common::pki::{Ca, HttpsClient, bcrypt, https_client, sha256_hex, write_leaf};
use common::*;

const TOKEN: &str = "5d41402abc4b2a76b9719d911017c592-sender";

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// promgate's page (or its self-metrics) over HTTPS with credentials.
async fn page(
    client: &HttpsClient,
    addr: SocketAddr,
    path: &str,
    auth: &str,
) -> Result<String, String> {
    match client.get(addr, path, Some(auth)).await? {
        (200, page) => Ok(page),
        (code, body) => Err(format!("{code}: {body}")),
    }
}

fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not on the page:\n{page}"))
        .parse()
        .unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_remote_writes_over_tls_with_basic_auth_and_a_bearer_token() {
    let prometheus = tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("promgate CA");
    write_leaf(dir.path(), "server", &ca.server());
    std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {}\n  reader: {}\nauthorization_tokens:\n  legacy: {}\nroles:\n  reader: [read]\n",
            bcrypt("remote-write-secret"),
            bcrypt("read-only"),
            sha256_hex(TOKEN)
        ),
    )
    .unwrap();
    let (promgate, addr) = spawn_promgate(&["--web.config.file", path_str(&web)]);

    // One Prometheus, four remote-write queues to the same promgate, each
    // marking its samples with a `via` label: a password, a bearer token,
    // a wrong password, no credentials at all. Every queue trusts the CA.
    let prom_port = free_port();
    let ca_file = path_str(&dir.path().join("ca.crt")).to_string();
    let queue = |via: &str, auth: &str| {
        format!(
            r#"  - url: https://{addr}/api/v1/write
    name: {via}
    tls_config:
      ca_file: {ca_file}
{auth}    queue_config:
      batch_send_deadline: 1s
      max_backoff: 1s
    write_relabel_configs:
      - target_label: via
        replacement: {via}
"#
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{prom_port}']\nremote_write:\n{}{}{}{}",
        queue(
            "password",
            "    basic_auth:\n      username: prometheus\n      password: remote-write-secret\n"
        ),
        queue(
            "token",
            &format!("    authorization:\n      credentials: {TOKEN}\n")
        ),
        queue(
            "wrong",
            "    basic_auth:\n      username: prometheus\n      password: guessed\n"
        ),
        queue("anonymous", ""),
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

    let client = https_client(&ca.pem, None);
    let reader = basic("reader", "read-only");
    let exposed = eventually(
        Duration::from_secs(90),
        "samples sent with a password and with a token",
        || {
            let client = client.clone();
            let reader = reader.clone();
            async move {
                let page = page(&client, addr, "/metrics", &reader).await?;
                let both = page.contains(r#"via="password""#) && page.contains(r#"via="token""#);
                if both { Ok(page) } else { Err(page) }
            }
        },
    )
    .await;
    assert!(exposed.contains(r#"up{instance="127.0.0.1:"#), "{exposed}");

    // The other two queues were refused, counted, and stored nothing. Wait
    // until both have been refused at least once more than the first read.
    let self_metrics = eventually(
        Duration::from_secs(30),
        "remote writes refused with 401",
        || {
            let client = client.clone();
            let reader = reader.clone();
            async move {
                let page = page(&client, addr, "/-/metrics", &reader).await?;
                let refused = metric(
                    &page,
                    r#"promgate_http_requests_total{route="/api/v1/write",code="401"}"#,
                );
                if refused >= 4.0 { Ok(page) } else { Err(page) }
            }
        },
    )
    .await;
    assert!(
        metric(
            &self_metrics,
            r#"promgate_requests_rejected_total{reason="unauthorized"}"#
        ) >= 4.0
    );
    let now = page(&client, addr, "/metrics", &reader).await.unwrap();
    for via in ["wrong", "anonymous"] {
        assert!(
            !now.contains(&format!("via=\"{via}\"")),
            "{via} samples arrived:\n{now}"
        );
    }
    // The read-only user may not write.
    let (code, body) = client
        .send(
            addr,
            "POST",
            "/api/v1/write",
            Some(&reader),
            PROMETHEUS_HEADERS,
            snappy(&request(&[(&[("__name__", "x")], &[(1.0, 1)])], &[])),
        )
        .await
        .unwrap();
    assert_eq!(code, 403, "{body}");
    assert_parses(&now);
    drop(promgate);
}

#[tokio::test(flavor = "multi_thread")]
async fn vmagent_scrapes_over_mtls_with_a_password_and_is_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("promgate CA");
    let client_ca = Ca::new("scrapers CA");
    write_leaf(dir.path(), "server", &ca.server());
    std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("client-ca.crt"), &client_ca.pem).unwrap();
    let (vmagent_cert, vmagent_key) =
        write_leaf(dir.path(), "vmagent", &client_ca.client("vmagent"));
    let (rogue_cert, rogue_key) =
        write_leaf(dir.path(), "rogue", &Ca::new("rogue CA").client("vmagent"));
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\nbasic_auth_users:\n  vmagent: {}\n  writer: {}\nroles:\n  vmagent: [read]\n  writer: [write]\n",
            bcrypt("scrape-secret"),
            bcrypt("write-secret"),
        ),
    )
    .unwrap();
    let (promgate, addr) = spawn_promgate(&["--web.config.file", path_str(&web)]);

    // A legacy system pushes one series (over mTLS, as the writer).
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 5_000;
    let writer = https_client(&ca.pem, Some(&client_ca.client("legacy")));
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
    let (code, body) = writer
        .send(
            addr,
            "POST",
            "/api/v1/write",
            Some(&basic("writer", "write-secret")),
            PROMETHEUS_HEADERS,
            snappy(&req),
        )
        .await
        .unwrap();
    assert_eq!(code, 204, "{body}");

    // Three scrape jobs: the right certificate and password; the right
    // certificate and no password; a certificate from another CA with the
    // right password.
    let ca_file = path_str(&dir.path().join("ca.crt")).to_string();
    let job = |name: &str, cert: &Path, key: &Path, auth: &str| {
        format!(
            r#"  - job_name: {name}
    scheme: https
    scrape_interval: 1s
    honor_labels: true
    honor_timestamps: true
    tls_config:
      ca_file: {ca_file}
      cert_file: {}
      key_file: {}
{auth}    static_configs:
      - targets: ['{addr}']
        labels:
          scrape_job: {name}
"#,
            path_str(cert),
            path_str(key)
        )
    };
    let password = "    basic_auth:\n      username: vmagent\n      password: scrape-secret\n";
    let scrape = format!(
        "scrape_configs:\n{}{}{}",
        job("promgate", &vmagent_cert, &vmagent_key, password),
        job("promgate-no-password", &vmagent_cert, &vmagent_key, ""),
        job("promgate-rogue-cert", &rogue_cert, &rogue_key, password),
    );
    let (_vm, vm_port) = spawn_victoria_metrics(dir.path());
    let (_agent, _) = spawn_vmagent(dir.path(), &scrape, vm_port);

    let http = reqwest::Client::new();
    let export =
        format!("http://127.0.0.1:{vm_port}/api/v1/export?match[]=legacy_temperature_celsius");
    let line: Value = eventually(
        Duration::from_secs(90),
        "the series in VictoriaMetrics",
        || {
            let http = http.clone();
            let url = export.clone();
            async move {
                let text = fetch_text(&http, &url).await?;
                let first = text.lines().next().ok_or("no series yet")?;
                serde_json::from_str(first).map_err(|e| e.to_string())
            }
        },
    )
    .await;
    assert_eq!(line["metric"]["job"], "boiler-room", "{line}");
    assert_eq!(line["metric"]["scrape_job"], "promgate", "{line}");
    assert_eq!(line["values"][0].as_f64(), Some(41.75), "{line}");

    // vmagent reports each target's health as `up`: 1 for the scrape with
    // credentials, 0 for the two without.
    let ups = eventually(Duration::from_secs(60), "up for the three jobs", || {
        let http = http.clone();
        async move {
            let r = query(&http, vm_port, "max by (job) (max_over_time(up[1m]))").await?;
            let ups: Vec<(String, String)> = r
                .iter()
                .map(|s| {
                    (
                        s["metric"]["job"].as_str().unwrap_or("").to_string(),
                        s["value"][1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            if ups.len() == 3 {
                Ok(ups)
            } else {
                Err(format!("{ups:?}"))
            }
        }
    })
    .await;
    let mut ups = ups;
    ups.sort();
    assert_eq!(
        ups,
        [
            ("promgate".to_string(), "1".to_string()),
            ("promgate-no-password".to_string(), "0".to_string()),
            ("promgate-rogue-cert".to_string(), "0".to_string()),
        ]
    );
    // Only the job with credentials stored samples.
    let stored = query(
        &http,
        vm_port,
        "count by (scrape_job) (legacy_temperature_celsius)",
    )
    .await
    .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    drop(promgate);
}
