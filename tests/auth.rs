//! Access control (`--web.config.file`): the auth matrix on the router,
//! every route behind it, roles, headers, the verdict cache, reloads; then
//! the real binary for TLS, mTLS, reloads over time and start-up errors.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::pki::{Ca, HttpsClient, bcrypt, https_client, replace_file, sha256_hex, write_leaf};
use common::*;
use promgate::http::{AppState, routes};

const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0-legacy";

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The config most tests use: two users, one token, headers. Hashes are
/// written unquoted, as exporter-toolkit's docs write them.
fn users_yaml() -> String {
    format!(
        "basic_auth_users:\n  alice: {}\n  scraper: {}\nauthorization_tokens:\n  legacy: {}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    X-Frame-Options: deny\n",
        bcrypt("wonderland"),
        bcrypt("scrape-me"),
        sha256_hex(TOKEN)
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    app: Router,
    state: AppState,
}

fn fixture(yaml: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    let (app, state) = app(&["--web.config.file", path.to_str().unwrap()]);
    Fixture {
        _dir: dir,
        path,
        app,
        state,
    }
}

/// Sends one request; returns status, headers and body text.
async fn call(
    app: &Router,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    if !body.is_empty() {
        for (k, v) in PROMETHEUS_HEADERS {
            req = req.header(*k, *v);
        }
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A self-metric read with credentials.
async fn metric(app: &Router, series: &str) -> f64 {
    let (status, _, page) = call(
        app,
        Method::GET,
        "/-/metrics",
        Some(&basic("alice", "wonderland")),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not on /-/metrics:\n{page}"))
        .parse()
        .unwrap()
}

fn one_series(name: &str) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    snappy(&request(&[(&[("__name__", name)], &[(1.0, now)])], &[]))
}

fn challenges(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_route_and_method_needs_credentials() {
    let f = fixture(&users_yaml());
    // Every route the router serves, path parameters filled in, every
    // method, and paths it does not serve: none answers before the
    // credentials are checked (not even 404 or 405, which would tell
    // which routes exist).
    let mut paths: Vec<String> = routes()
        .iter()
        .map(|r| {
            r.split('/')
                .map(|seg| {
                    if seg.starts_with("{*") {
                        "a/b".to_string()
                    } else if seg.starts_with('{') {
                        "x".to_string()
                    } else {
                        seg.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    paths.extend(
        [
            "/",
            "/nope",
            "/metrics/job/x",
            "/api/v1/status/config",
            "/-/reload",
        ]
        .map(String::from),
    );
    assert!(paths.len() >= 10, "{paths:?}");
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ];
    let mut refused = 0;
    for path in &paths {
        for method in &methods {
            for auth in [None, Some(basic("alice", "wrong")), Some(bearer("wrong"))] {
                let (status, headers, body) =
                    call(&f.app, method.clone(), path, auth.as_deref(), vec![]).await;
                assert_eq!(status, 401, "{method} {path} with {auth:?}: {body}");
                assert_eq!(
                    challenges(&headers),
                    ["Basic realm=\"promgate\"", "Bearer realm=\"promgate\""],
                    "{method} {path}"
                );
                refused += 1;
            }
        }
    }
    // With credentials, the same walk reaches the routes: the list is
    // the router's.
    for path in routes() {
        let (status, _, body) = call(
            &f.app,
            Method::GET,
            path,
            Some(&basic("alice", "wonderland")),
            vec![],
        )
        .await;
        assert!(
            status != 401 && status != 404,
            "GET {path}: {status} {body}"
        );
    }
    let (status, _, _) = call(
        &f.app,
        Method::GET,
        "/-/healthy",
        Some(&bearer(TOKEN)),
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &f.app,
            "promgate_requests_rejected_total{reason=\"unauthorized\"}"
        )
        .await,
        refused as f64
    );
}

#[tokio::test]
async fn the_auth_matrix_on_remote_write() {
    let f = fixture(&users_yaml());
    let cases: [(&str, Option<String>, u16); 9] = [
        ("no credentials", None, 401),
        ("wrong password", Some(basic("alice", "wonder")), 401),
        ("unknown user", Some(basic("mallory", "wonderland")), 401),
        ("empty password", Some(basic("alice", "")), 401),
        ("not base64", Some("Basic !!!".to_string()), 401),
        (
            "another scheme",
            Some("Digest username=alice".to_string()),
            401,
        ),
        ("wrong token", Some(bearer("0f1e2d3c")), 401),
        ("right password", Some(basic("alice", "wonderland")), 204),
        ("right token", Some(bearer(TOKEN)), 204),
    ];
    for (i, (what, auth, want)) in cases.iter().enumerate() {
        let name = format!("sent_by_case_{i}");
        let (status, headers, body) = call(
            &f.app,
            Method::POST,
            "/api/v1/write",
            auth.as_deref(),
            one_series(&name),
        )
        .await;
        assert_eq!(status.as_u16(), *want, "{what}: {body}");
        if *want == 401 {
            assert_eq!(body, "unauthorized: missing or invalid credentials\n");
            assert_eq!(challenges(&headers).len(), 2, "{what}");
        }
    }
    // Only the authenticated writes reached the store.
    let (_, _, page) = call(
        &f.app,
        Method::GET,
        "/metrics",
        Some(&basic("scraper", "scrape-me")),
        vec![],
    )
    .await;
    let stored: Vec<&str> = page
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(stored.len(), 2, "{page}");
    assert!(page.contains("sent_by_case_7 ") && page.contains("sent_by_case_8 "));
    assert_eq!(
        metric(
            &f.app,
            "promgate_requests_rejected_total{reason=\"unauthorized\"}"
        )
        .await,
        7.0
    );
    assert_eq!(
        metric(
            &f.app,
            "promgate_http_requests_total{route=\"/api/v1/write\",code=\"401\"}"
        )
        .await,
        7.0
    );
}

#[tokio::test]
async fn roles_keep_scrapers_from_writing_and_writers_from_reading() {
    let yaml = users_yaml() + "roles:\n  scraper: [read]\n  legacy: [write]\n";
    let f = fixture(&yaml);
    let scraper = basic("scraper", "scrape-me");
    let writer = bearer(TOKEN);
    let write = |auth: String| {
        let app = f.app.clone();
        async move {
            call(
                &app,
                Method::POST,
                "/api/v1/write",
                Some(&auth),
                one_series("x"),
            )
            .await
        }
    };
    let (status, _, body) = write(scraper.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        "forbidden: these credentials do not have the write role\n"
    );
    assert_eq!(write(writer.clone()).await.0, 204);
    let read = |auth: String| {
        let app = f.app.clone();
        async move {
            call(&app, Method::GET, "/metrics", Some(&auth), vec![])
                .await
                .0
        }
    };
    assert_eq!(read(scraper).await, 200);
    assert_eq!(read(writer).await, 403);
    // A name with no roles entry may do both.
    assert_eq!(write(basic("alice", "wonderland")).await.0, 204);
    assert_eq!(
        metric(
            &f.app,
            "promgate_requests_rejected_total{reason=\"forbidden\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn configured_headers_are_on_every_answer() {
    let f = fixture(&users_yaml());
    for auth in [None, Some(basic("alice", "wonderland"))] {
        for path in ["/-/healthy", "/nope"] {
            let (_, headers, _) = call(&f.app, Method::GET, path, auth.as_deref(), vec![]).await;
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(headers["x-frame-options"], "deny", "{path}");
        }
    }
}

#[tokio::test]
async fn tls_only_and_empty_configs_ask_for_no_credentials() {
    let f = fixture("http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n");
    let (status, headers, _) = call(&f.app, Method::GET, "/-/healthy", None, vec![]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-frame-options"], "sameorigin");
    let f = fixture("");
    let (status, _, _) = call(&f.app, Method::POST, "/api/v1/write", None, one_series("a")).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn a_sender_pays_one_bcrypt_run_not_one_per_request() {
    let f = fixture(&users_yaml());
    let runs = "promgate_auth_bcrypt_runs_total";
    // The first read of the metric itself authenticates alice: one run.
    assert_eq!(metric(&f.app, runs).await, 1.0);
    // A burst of a new sender's first requests, all at once, then more.
    let scraper = basic("scraper", "scrape-me");
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let app = f.app.clone();
            let auth = scraper.clone();
            tokio::spawn(async move {
                call(&app, Method::GET, "/-/healthy", Some(&auth), vec![])
                    .await
                    .0
            })
        })
        .collect();
    for task in burst {
        assert_eq!(task.await.unwrap(), 200);
    }
    for _ in 0..100 {
        let (status, _, _) = call(
            &f.app,
            Method::POST,
            "/api/v1/write",
            Some(&scraper),
            one_series("cached"),
        )
        .await;
        assert_eq!(status, 204);
    }
    assert_eq!(metric(&f.app, runs).await, 2.0);
    // A stale password repeated is one run too; bearer tokens need none.
    for _ in 0..10 {
        call(
            &f.app,
            Method::GET,
            "/-/ready",
            Some(&basic("scraper", "old")),
            vec![],
        )
        .await;
        call(
            &f.app,
            Method::GET,
            "/-/ready",
            Some(&bearer(TOKEN)),
            vec![],
        )
        .await;
    }
    assert_eq!(metric(&f.app, runs).await, 3.0);
}

#[tokio::test]
async fn a_reload_applies_a_good_file_and_a_broken_one_keeps_the_last_good() {
    let f = fixture(&users_yaml());
    let web = f.state.web_config.clone().unwrap();
    let reloads =
        |result: &str| format!("promgate_web_config_reloads_total{{result=\"{result}\"}}");
    assert_eq!(metric(&f.app, &reloads("success")).await, 0.0);
    assert_eq!(metric(&f.app, &reloads("failure")).await, 0.0);
    assert!(web.reload_if_changed().is_none(), "nothing changed yet");

    // alice's password changes.
    let new = format!(
        "basic_auth_users:\n  alice: {}\n",
        bcrypt("through-the-looking-glass")
    );
    replace_file(&f.path, &new);
    web.reload_if_changed().unwrap().unwrap();
    let alice_new = basic("alice", "through-the-looking-glass");
    let status = |auth: Option<String>| {
        let app = f.app.clone();
        async move {
            call(&app, Method::GET, "/-/healthy", auth.as_deref(), vec![])
                .await
                .0
        }
    };
    assert_eq!(status(Some(alice_new.clone())).await, 200);
    assert_eq!(status(Some(basic("alice", "wonderland"))).await, 401);
    assert_eq!(status(Some(bearer(TOKEN))).await, 401, "the token is gone");

    // A broken file (a bad hash, an unknown key, a truncated one, an empty
    // one: valid at start, but a reload must not turn access control off)
    // is refused, once per change, and the last good config stays in force.
    for broken in [
        "basic_auth_users:\n  alice: x\n",
        "basic_auth_userz: {}\n",
        "basic_auth_users:\n  alice: [\n",
        "",
    ] {
        replace_file(&f.path, broken);
        let e = web.reload_if_changed().unwrap().unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(web.reload_if_changed().is_none(), "counted once per change");
        assert_eq!(status(None).await, 401, "{broken:?} opened the door");
        assert_eq!(status(Some(alice_new.clone())).await, 200, "{broken:?}");
    }
    let page_auth = Some(alice_new.as_str());
    let (_, _, page) = call(&f.app, Method::GET, "/-/metrics", page_auth, vec![]).await;
    for line in [
        "promgate_web_config_reloads_total{result=\"success\"} 1",
        "promgate_web_config_reloads_total{result=\"failure\"} 4",
        "promgate_web_config_last_reload_successful 0",
    ] {
        assert!(page.lines().any(|l| l == line), "{line}\n{page}");
    }
}

#[tokio::test]
async fn hashes_made_by_htpasswd_are_accepted() {
    // The README's recipe, run for real: Apache's htpasswd writes `$2y$`
    // bcrypt hashes, as exporter-toolkit's docs make them.
    let out = std::process::Command::new(tool("htpasswd"))
        .args(["-nbBC", "10", "ops", "correct horse battery staple"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let hash = line.trim().strip_prefix("ops:").unwrap();
    assert!(hash.starts_with("$2y$10$"), "{hash}");
    let f = fixture(&format!("basic_auth_users:\n  ops: {hash}\n"));
    let ok = basic("ops", "correct horse battery staple");
    let (status, _, _) = call(&f.app, Method::GET, "/-/ready", Some(&ok), vec![]).await;
    assert_eq!(status, 200);
    let wrong = basic("ops", "correct horse battery");
    let (status, _, _) = call(&f.app, Method::GET, "/-/ready", Some(&wrong), vec![]).await;
    assert_eq!(status, 401);
}

// ---- The real binary: TLS, mTLS, reloads over time, start-up errors ----

/// Writes a TLS config (and the files it names) into `dir`; returns its path.
fn tls_config(
    dir: &std::path::Path,
    ca: &Ca,
    client_auth: Option<(&str, &str)>,
    extra: &str,
) -> PathBuf {
    write_leaf(dir, "server", &ca.server());
    let mut yaml =
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n".to_string();
    if let Some((policy, client_ca_pem)) = client_auth {
        std::fs::write(dir.join("client-ca.crt"), client_ca_pem).unwrap();
        yaml += &format!("  client_auth_type: {policy}\n  client_ca_file: client-ca.crt\n");
    }
    yaml += extra;
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn healthy(
    client: &HttpsClient,
    addr: SocketAddr,
    auth: Option<&str>,
) -> Result<u16, String> {
    client
        .get(addr, "/-/healthy", auth)
        .await
        .map(|(code, _)| code)
}

/// Whether plain HTTP gets an answer from `addr`.
async fn plain_http_answers(addr: SocketAddr) -> bool {
    reqwest::Client::new()
        .get(format!("http://{addr}/-/healthy"))
        .send()
        .await
        .is_ok()
}

/// Polls `check` every 100 ms until it returns `Ok(true)`; panics after 10 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> Result<bool, String>) {
    let start = std::time::Instant::now();
    loop {
        let got = check().await;
        if got == Ok(true) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}; last: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of a self-metric line (`name{labels}`) read over HTTPS.
async fn https_metric(
    client: &HttpsClient,
    addr: SocketAddr,
    auth: Option<&str>,
    series: &str,
) -> Result<String, String> {
    let (_, page) = client.get(addr, "/-/metrics", auth).await?;
    page.lines()
        .find_map(|l| Some(l.strip_prefix(series)?.strip_prefix(' ')?.to_string()))
        .ok_or(page)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_https_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let path = tls_config(dir.path(), &ca, None, "  min_version: TLS12\n");
    let (_promgate, addr) = spawn_promgate(&["--web.config.file", path.to_str().unwrap()]);
    let client = https_client(&ca.pem, None);
    assert_eq!(healthy(&client, addr, None).await, Ok(200));
    // A client that does not trust the CA, and plain HTTP, get nothing.
    let other = Ca::new("other CA");
    assert!(
        healthy(&https_client(&other.pem, None), addr, None)
            .await
            .is_err()
    );
    assert!(!plain_http_answers(addr).await);
    until("two handshake errors counted", async || {
        let n = https_metric(&client, addr, None, "promgate_tls_handshake_errors_total").await?;
        Ok(n == "2")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_with_each_client_auth_type() {
    let ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let trusted = client_ca.client("vmagent");
    let untrusted = Ca::new("rogue CA").client("vmagent");
    // (policy, no certificate, trusted certificate, untrusted certificate)
    let cases = [
        ("RequireAndVerifyClientCert", false, true, false),
        ("VerifyClientCertIfGiven", true, true, false),
        ("RequireAnyClientCert", false, true, true),
        ("RequestClientCert", true, true, true),
        ("NoClientCert", true, true, true),
    ];
    for (policy, none_ok, trusted_ok, untrusted_ok) in cases {
        let dir = tempfile::tempdir().unwrap();
        let client_auth = (policy != "NoClientCert").then_some((policy, client_ca.pem.as_str()));
        let path = tls_config(dir.path(), &ca, client_auth, "");
        let (_promgate, addr) = spawn_promgate(&["--web.config.file", path.to_str().unwrap()]);
        for (what, leaf, want) in [
            ("no certificate", None, none_ok),
            ("a trusted certificate", Some(&trusted), trusted_ok),
            ("an untrusted certificate", Some(&untrusted), untrusted_ok),
        ] {
            let got = healthy(&https_client(&ca.pem, leaf), addr, None).await;
            assert_eq!(got.is_ok(), want, "{policy} with {what}: {got:?}");
            if let Ok(code) = got {
                assert_eq!(code, 200);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_reloads_users_and_certificates_and_keeps_the_last_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("first CA");
    let users = |password: &str| format!("basic_auth_users:\n  alice: {}\n", bcrypt(password));
    let path = tls_config(dir.path(), &ca, None, &users("one"));
    let (_promgate, addr) = spawn_promgate(&[
        "--web.config.file",
        path.to_str().unwrap(),
        "--web.config.reload-interval",
        "100ms",
    ]);
    let client = https_client(&ca.pem, None);
    let two = basic("alice", "two");
    assert_eq!(
        healthy(&client, addr, Some(&basic("alice", "one"))).await,
        Ok(200)
    );
    assert_eq!(healthy(&client, addr, None).await, Ok(401));

    // A new password, then a broken file.
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let good = format!("{tls}{}", users("two"));
    replace_file(&path, &good);
    until("the new password", async || {
        Ok(healthy(&client, addr, Some(&two)).await? == 200)
    })
    .await;
    replace_file(&path, &format!("{good}unknown_key: 1\n"));
    until("the failed reload counted", async || {
        let series = "promgate_web_config_reloads_total{result=\"failure\"}";
        Ok(https_metric(&client, addr, Some(&two), series).await? == "1")
    })
    .await;
    assert_eq!(
        healthy(&client, addr, None).await,
        Ok(401),
        "still enforced"
    );
    assert_eq!(healthy(&client, addr, Some(&two)).await, Ok(200));

    // The certificate is rotated to one from another CA: new connections
    // get it, with the same users.
    replace_file(&path, &good);
    let ca2 = Ca::new("second CA");
    write_leaf(dir.path(), "server", &ca2.server());
    let client2 = https_client(&ca2.pem, None);
    until("the rotated certificate", async || {
        Ok(healthy(&client2, addr, Some(&two)).await? == 200)
    })
    .await;
    assert!(healthy(&client, addr, None).await.is_err());

    // Turning TLS off is not something a reload may do.
    replace_file(&path, &users("two"));
    until("the refused reload counted", async || {
        let series = "promgate_web_config_last_reload_successful";
        Ok(https_metric(&client2, addr, Some(&two), series).await? == "0")
    })
    .await;
    assert!(!plain_http_answers(addr).await);
    assert_eq!(healthy(&client2, addr, Some(&two)).await, Ok(200));
}

#[test]
fn a_broken_file_at_start_is_a_one_line_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    write_leaf(dir.path(), "server", &Ca::new("CA").server());
    let cases = [
        (
            "unknown key",
            "basic_auth_user:\n  alice: x\n",
            "unknown field",
        ),
        (
            "not bcrypt",
            "basic_auth_users:\n  alice: plain-password\n",
            "not a bcrypt hash",
        ),
        (
            "a bcrypt cost past 14",
            "basic_auth_users:\n  legacy: '$2b$31$abYJYYXc//lyeyPOSJuV5eFG6/aHcN5M.hOKwxu9R1g6BKP0qpwei'\n",
            "has bcrypt cost 31, above the 14 promgate accepts",
        ),
        (
            "a bcrypt cost below 4",
            "basic_auth_users:\n  u: '$2y$03$abYJYYXc//lyeyPOSJuV5eFG6/aHcN5M.hOKwxu9R1g6BKP0qpwei'\n",
            "has bcrypt cost 3, below 4",
        ),
        (
            "missing certificate",
            "tls_server_config:\n  cert_file: absent.crt\n  key_file: absent.key\n",
            "absent.crt",
        ),
        (
            "an unsupported suite",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n",
            "not supported by rustls",
        ),
    ];
    for (what, yaml, needle) in cases {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_promgate"))
            .args(["--web.listen-address", "127.0.0.1:0", "--web.config.file"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{what}: started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: {stderr}");
        assert!(lines[0].contains("cannot start"), "{what}: {stderr}");
        assert!(lines[0].contains(needle), "{what}: {stderr}");
        assert!(!lines[0].contains("plain-password"), "{what}: {stderr}");
    }
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_promgate"))
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            "/nonexistent/web.yml",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

/// The web-config metrics are on `/-/metrics` only with a
/// `--web.config.file` (an empty one is none), so that an alert on a
/// failed reload cannot fire where there is no file to reload.
#[tokio::test]
async fn web_config_metrics_show_only_with_a_web_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yml");
    std::fs::write(
        &file,
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for (args, shown) in [
        (vec![], false),
        (vec!["--web.config.file="], false),
        (vec!["--web.config.file", file], true),
    ] {
        let (app, _) = app(&args);
        let (status, page) = get(&app, "/-/metrics").await;
        assert_eq!(status, 200);
        for name in [
            "promgate_web_config_last_reload_successful",
            "promgate_auth_bcrypt_runs_total",
            "promgate_tls_handshake_errors_total",
        ] {
            assert_eq!(page.contains(name), shown, "{args:?} {name}: {page}");
        }
    }
}
