//! The README's bad-input table, row by row. Each test sends one hostile
//! input (through the router, or to the real binary where the connection
//! itself is the input) to a promgate already holding one series, and
//! checks what the row says: the status, the one-line reason in the body,
//! the exact increase of the counters it names (and no other rejection
//! counter moving), what of the request was kept (the whole page after),
//! and a good write served right after. `the_readme_table_names_these_tests`
//! keeps the table and this file in step.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use common::pki::{Ca, HttpsClient, bcrypt, https_client, sha256_hex, write_leaf};
use common::*;
use http_body_util::BodyExt;
use prost::Message;
use tower::ServiceExt;

const UP: &[(&str, &str)] = &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")];
/// The series every gate holds before the hostile input arrives.
const SEED: &str = "up{instance=\"a:9100\",job=\"node\"} 1 1000";
/// What the good write after each row stores.
const SERVED: &str = "up{instance=\"a:9100\",job=\"node\"} 2 9000000";
/// A valid series sent beside a bad one, where the row says it is kept.
const GOOD: &[(&str, &str)] = &[("__name__", "good")];
const GOOD_LINE: &str = "good 7 5000";

const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// The families in which every change must be one the row names: a row
/// counted under a second reason, or twice, fails.
const WATCHED: [&str; 7] = [
    "promgate_requests_rejected_total",
    "promgate_series_rejected_total",
    "promgate_samples_rejected_total",
    "promgate_samples_out_of_order_total",
    "promgate_series_stale_removed_total",
    "promgate_tls_handshake_errors_total",
    "promgate_connections_closed_total",
];

fn requests(reason: &str) -> String {
    format!("promgate_requests_rejected_total{{reason=\"{reason}\"}}")
}
fn series(reason: &str) -> String {
    format!("promgate_series_rejected_total{{reason=\"{reason}\"}}")
}
fn connections(reason: &str) -> String {
    format!("promgate_connections_closed_total{{reason=\"{reason}\"}}")
}
fn samples(reason: &str) -> String {
    format!("promgate_samples_rejected_total{{reason=\"{reason}\"}}")
}

/// Every series of a self-metrics page and its value.
fn parse_counters(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// One answer: status, headers (lowercase names), raw body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request: method, path, headers, body.
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Sent without the gate's credentials.
    anonymous: bool,
}

impl Req {
    fn anonymous(mut self) -> Req {
        self.anonymous = true;
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Req {
        self.headers.push((name, value.to_string()));
        self
    }

    /// The request for a router (credentials are the gate's to add).
    fn http(self) -> Request<Body> {
        let mut r = Request::builder().method(self.method).uri(&self.path);
        for (k, v) in &self.headers {
            r = r.header(*k, v);
        }
        r.body(Body::from(self.body)).unwrap()
    }
}

fn post(headers: &[(&'static str, &str)], body: Vec<u8>) -> Req {
    Req {
        method: "POST",
        path: "/api/v1/write".into(),
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body,
        anonymous: false,
    }
}

/// A snappy Remote-Write 1.0 request with Prometheus' headers.
fn write1(series: &[Series], metadata: &[(&str, MetricType, &str)]) -> Req {
    post(PROMETHEUS_HEADERS, snappy(&request(series, metadata)))
}

/// A snappy Remote-Write 2.0 request.
fn write2(req: &promgate::proto::v2::Request) -> Req {
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    post(
        &[("content-type", V2), ("content-encoding", "snappy")],
        body,
    )
}

fn push(method: &'static str, path: &str, headers: &[(&'static str, &str)], body: &[u8]) -> Req {
    Req {
        method,
        path: path.into(),
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.to_vec(),
        anonymous: false,
    }
}

/// What a row promises.
struct Expect<'a> {
    status: u16,
    /// In the body's one line; empty: the body is empty.
    says: &'a str,
    /// Counters and their increase.
    counts: Vec<(String, f64)>,
    /// Every sample line of the page afterwards, in any order; a value of
    /// `*` matches any value (push times).
    page: Vec<String>,
}

fn lines(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| s.to_string()).collect()
}

/// How the gate is reached.
enum Via {
    Router(Router),
    Binary {
        _proc: Proc,
        addr: SocketAddr,
        client: reqwest::Client,
    },
    Tls {
        _proc: Proc,
        addr: SocketAddr,
        client: HttpsClient,
        /// The CA of the server's certificate.
        server_ca: String,
    },
}

/// A promgate holding [`SEED`].
struct Gate {
    via: Via,
    /// Credentials for the gate's own reads and good writes.
    auth: Option<String>,
    /// The web config and the files it names.
    _dir: Option<tempfile::TempDir>,
}

impl Gate {
    async fn router(flags: &[&str]) -> Gate {
        let (app, _) = app(flags);
        Gate::seeded(Via::Router(app), None).await
    }

    async fn binary(flags: &[&str]) -> Gate {
        let (proc, addr) = spawn_promgate(flags);
        // No idle connections kept: they would meet the header timeout.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Gate::seeded(
            Via::Binary {
                _proc: proc,
                addr,
                client,
            },
            None,
        )
        .await
    }

    /// A router behind the web config `yaml`, reached with `auth`.
    async fn router_with_web_config(yaml: &str, auth: &str) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        let (app, _) = app(&["--web.config.file", path.to_str().unwrap()]);
        let mut gate = Gate::seeded(Via::Router(app), Some(auth.to_string())).await;
        gate._dir = Some(dir);
        gate
    }

    /// The binary serving TLS that requires a client certificate signed by
    /// `client_ca`; the gate's own client presents `client`.
    async fn tls(client_ca: &Ca, client: &common::pki::Leaf) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("server CA");
        write_leaf(dir.path(), "server", &ca.server());
        std::fs::write(dir.path().join("client-ca.crt"), &client_ca.pem).unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n",
        )
        .unwrap();
        let (proc, addr) = spawn_promgate(&["--web.config.file", path.to_str().unwrap()]);
        let via = Via::Tls {
            _proc: proc,
            addr,
            client: https_client(&ca.pem, Some(client)),
            server_ca: ca.pem.clone(),
        };
        let mut gate = Gate::seeded(via, None).await;
        gate._dir = Some(dir);
        gate
    }

    async fn seeded(via: Via, auth: Option<String>) -> Gate {
        let gate = Gate {
            via,
            auth,
            _dir: None,
        };
        let a = gate.send(write1(&[(UP, &[(1.0, 1000)])], &[])).await;
        assert_eq!(a.status, 204, "seed: {}", String::from_utf8_lossy(&a.body));
        gate
    }

    fn addr(&self) -> SocketAddr {
        match &self.via {
            Via::Router(_) => panic!("a router has no address"),
            Via::Binary { addr, .. } | Via::Tls { addr, .. } => *addr,
        }
    }

    async fn send(&self, mut req: Req) -> Answer {
        if let Some(auth) = &self.auth
            && !req.anonymous
            && !req.headers.iter().any(|(k, _)| *k == "authorization")
        {
            req.headers.push(("authorization", auth.clone()));
        }
        match &self.via {
            Via::Router(app) => {
                let resp = app.clone().oneshot(req.http()).await.unwrap();
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                Answer {
                    status,
                    headers,
                    body: body.to_vec(),
                }
            }
            Via::Binary { addr, client, .. } => {
                let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
                let mut r = client
                    .request(method, format!("http://{addr}{}", req.path))
                    .body(req.body);
                for (k, v) in &req.headers {
                    r = r.header(*k, v);
                }
                let resp = r.send().await.unwrap();
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = resp.bytes().await.unwrap().to_vec();
                Answer {
                    status,
                    headers,
                    body,
                }
            }
            Via::Tls { addr, client, .. } => {
                let headers: Vec<(&str, &str)> =
                    req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (status, body) = client
                    .send(*addr, req.method, &req.path, None, &headers, req.body)
                    .await
                    .unwrap();
                Answer {
                    status,
                    headers: Vec::new(),
                    body: body.into_bytes(),
                }
            }
        }
    }

    async fn get(&self, path: &str) -> String {
        let a = self.send(push("GET", path, &[], b"")).await;
        assert_eq!(a.status, 200, "GET {path}");
        String::from_utf8(a.body).unwrap()
    }

    async fn counters(&self) -> BTreeMap<String, f64> {
        parse_counters(&self.get("/-/metrics").await)
    }

    /// The sample lines of `/metrics`.
    async fn page(&self) -> Vec<String> {
        self.get("/metrics")
            .await
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    }

    /// The page is exactly `want` (any order; a value `*` matches any).
    async fn assert_page(&self, want: &[String]) {
        // (series, value and timestamp): a series ends at its last `}`
        // (label values may hold spaces), or at the first space.
        let split = |l: &str| {
            let end = match l.rfind('}') {
                Some(i) => i + 1,
                None => l.find(' ').unwrap_or(l.len()),
            };
            (l[..end].to_string(), l[end..].trim().to_string())
        };
        let got: BTreeMap<String, String> = self.page().await.iter().map(|l| split(l)).collect();
        let want: BTreeMap<String, String> = want.iter().map(|l| split(l)).collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "the series on the page"
        );
        for (series, value) in &want {
            if value != "*" {
                assert_eq!(&got[series], value, "{series}");
            }
        }
    }

    /// The counters named moved by exactly their increase since `before`,
    /// and no other counter of [`WATCHED`] moved. Waits (up to 10 s) for
    /// counts made after the answer (a failed handshake is counted once the
    /// server has given up on it).
    async fn assert_counted(&self, before: &BTreeMap<String, f64>, counts: &[(String, f64)]) {
        let want: BTreeMap<String, f64> = counts.iter().cloned().collect();
        let start = Instant::now();
        loop {
            let after = self.counters().await;
            let moved: BTreeMap<String, f64> = after
                .iter()
                .filter(|(k, _)| {
                    let family = k.split('{').next().unwrap_or(k);
                    want.contains_key(*k) || WATCHED.contains(&family)
                })
                .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, d)| *d != 0.0)
                .collect();
            if moved == want || start.elapsed() > Duration::from_secs(10) {
                assert_eq!(moved, want, "counters moved");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A good write right after is stored.
    async fn assert_serving(&self) {
        let a = self.send(write1(&[(UP, &[(2.0, 9_000_000)])], &[])).await;
        assert_eq!(
            a.status,
            204,
            "the write after: {}",
            String::from_utf8_lossy(&a.body)
        );
        let page = self.page().await;
        assert!(page.iter().any(|l| l == SERVED), "{page:?}");
    }

    /// Sends `req` and checks everything the row promises.
    async fn check(&self, req: Req, expect: Expect<'_>) -> Answer {
        let before = self.counters().await;
        let what = format!("{} {}", req.method, req.path);
        let answer = self.send(req).await;
        assert_answer(&what, answer.status, &answer.body, &expect);
        self.assert_counted(&before, &expect.counts).await;
        self.assert_page(&expect.page).await;
        self.assert_serving().await;
        answer
    }
}

/// The status, and a body that is empty or exactly one line of printable
/// UTF-8 holding `says`, at most 1 KiB.
fn assert_answer(what: &str, status: u16, body: &[u8], expect: &Expect<'_>) {
    let text = std::str::from_utf8(body)
        .unwrap_or_else(|_| panic!("{what}: the body is not UTF-8: {body:?}"));
    assert_eq!(status, expect.status, "{what}: {text}");
    if expect.says.is_empty() {
        assert_eq!(text, "", "{what}");
        return;
    }
    let line = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("{what}: not one line: {text:?}"));
    assert!(
        !line.chars().any(char::is_control),
        "{what}: a control character in {line:?}"
    );
    assert!(
        line.contains(expect.says),
        "{what}: {:?} not in {line:?}",
        expect.says
    );
    assert!(line.len() <= 1024, "{what}: {} bytes", line.len());
}

/// The rows of the Remote-Write 1.0 rules: a bad series beside [`GOOD`],
/// which is stored; 400 with the first error; the request counted as
/// `invalid_series` and the series under `reason`.
async fn one_bad_series(flags: &[&str], labels: Labels<'_>, says: &str, reason: &str) {
    let gate = Gate::router(flags).await;
    gate.check(
        write1(&[(labels, &[(1.0, 5000)]), (GOOD, &[(7.0, 5000)])], &[]),
        Expect {
            status: 400,
            says,
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series(reason), 1.0),
                (samples(reason), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

// ---------------------------------------------------------------------------
// Negotiation, sizes, compression, framing (Remote-Write 1.0 and 2.0)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_path() {
    let gate = Gate::router(&[]).await;
    gate.check(
        push("GET", "/api/v1/writ", &[], b""),
        Expect {
            status: 404,
            says: "not found: promgate serves POST /api/v1/write",
            counts: vec![(requests("not_found"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

/// Every route answers a method it does not serve with 405, `Allow`, a
/// reason and a count (remote write: GET is only VictoriaMetrics' probe).
#[tokio::test]
async fn wrong_method() {
    for (method, path, route, says) in [
        (
            "GET",
            "/api/v1/write",
            "/api/v1/write",
            "method not allowed: GET /api/v1/write; POST remote-write requests to it",
        ),
        (
            "PUT",
            "/api/v1/write",
            "/api/v1/write",
            "method not allowed: PUT /api/v1/write; POST remote-write requests to it",
        ),
        (
            "PATCH",
            "/metrics/job/batch",
            "/metrics/job/{*grouping}",
            "method not allowed: PATCH /metrics/job/{*grouping}; the Allow header lists the methods it takes",
        ),
        (
            "POST",
            "/metrics",
            "/metrics",
            "method not allowed: POST /metrics; the Allow header lists the methods it takes",
        ),
    ] {
        let gate = Gate::router(&[]).await;
        let a = gate
            .check(
                push(method, path, &[], b"x 1\n"),
                Expect {
                    status: 405,
                    says,
                    counts: vec![
                        (requests("method_not_allowed"), 1.0),
                        (
                            format!(
                                "promgate_http_requests_total{{route=\"{route}\",code=\"405\"}}"
                            ),
                            1.0,
                        ),
                    ],
                    page: lines(&[SEED]),
                },
            )
            .await;
        let allow = a.header("allow").unwrap_or_default();
        assert!(
            !allow.is_empty() && !allow.contains(method),
            "{method} {path}: Allow {allow:?}"
        );
        // Remote write takes POST only, whichever method was refused.
        if path == "/api/v1/write" {
            assert_eq!(allow, "POST", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn json_content_type() {
    let gate = Gate::router(&[]).await;
    gate.check(
        post(
            &[("content-type", "application/json")],
            b"{\"up\":1}".to_vec(),
        ),
        Expect {
            status: 415,
            says: "unsupported Content-Type \"application/json\"",
            counts: vec![(requests("unsupported_media_type"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn png_content_type() {
    let gate = Gate::router(&[]).await;
    gate.check(
        post(
            &[("content-type", "image/png")],
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
        ),
        Expect {
            status: 415,
            says: "unsupported Content-Type \"image/png\"",
            counts: vec![(requests("unsupported_media_type"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_proto_parameter() {
    let gate = Gate::router(&[]).await;
    let body = snappy(&request(&[(GOOD, &[(7.0, 5000)])], &[]));
    gate.check(
        post(
            &[(
                "content-type",
                "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            )],
            body,
        ),
        Expect {
            status: 415,
            says: "unsupported remote-write message \"io.prometheus.write.v3.Request\"",
            counts: vec![(requests("unsupported_protocol"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn unsupported_content_encoding() {
    let body = snappy(&request(&[(GOOD, &[(7.0, 5000)])], &[]));
    for encoding in ["gzip", "br", "deflate", "snappy, zstd"] {
        let gate = Gate::router(&[]).await;
        gate.check(
            post(&[("content-encoding", encoding)], body.clone()),
            Expect {
                status: 415,
                says: &format!("unsupported Content-Encoding {encoding:?}"),
                counts: vec![(requests("unsupported_encoding"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    }
}

/// A request sent over a raw connection; the status line and body of the
/// answer (which is `Content-Length`-delimited: promgate's errors are).
fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before taking the whole body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_raw(&out)
}

fn parse_raw(out: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(out);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, body.to_string())
}

/// The real binary, because what matters is what arrives on the wire: a
/// declared `Content-Length` over the cap is refused before any of the body
/// is read.
#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_cap_with_content_length() {
    let gate = Gate::binary(&["--limits.request-body-bytes", "1000"]).await;
    let before = gate.counters().await;
    let body = snappy(&request(&[(GOOD, &[(7.0, 5000)])], &[]));
    let mut padded = body.clone();
    padded.resize(2000, 0);
    let head = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        padded.len()
    );
    let addr = gate.addr();
    let (status, text) = tokio::task::spawn_blocking(move || raw_exchange(addr, &head, &padded))
        .await
        .unwrap();
    let expect = Expect {
        status: 413,
        says: "request body is larger than the limit of 1000 bytes",
        counts: vec![(requests("body_too_large"), 1.0)],
        page: lines(&[SEED]),
    };
    assert_answer("declared 2000 bytes", status, text.as_bytes(), &expect);
    gate.assert_counted(&before, &expect.counts).await;
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// Chunked: no length is declared, so the body is cut off once it passes
/// the cap.
#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_cap_without_content_length() {
    let gate = Gate::binary(&["--limits.request-body-bytes", "1000"]).await;
    let before = gate.counters().await;
    let mut chunked = Vec::new();
    for _ in 0..4 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[0u8; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: identity\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let addr = gate.addr();
    let (status, text) = tokio::task::spawn_blocking(move || raw_exchange(addr, head, &chunked))
        .await
        .unwrap();
    let expect = Expect {
        status: 413,
        says: "request body is larger than the limit of 1000 bytes",
        counts: vec![(requests("body_too_large"), 1.0)],
        page: lines(&[SEED]),
    };
    assert_answer("2048 bytes chunked", status, text.as_bytes(), &expect);
    gate.assert_counted(&before, &expect.counts).await;
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

#[tokio::test]
async fn snappy_header_claiming_more_than_the_cap() {
    let gate = Gate::router(&[]).await;
    // Six bytes whose varint preamble declares 1 GiB.
    gate.check(
        post(PROMETHEUS_HEADERS, vec![0x80, 0x80, 0x80, 0x80, 0x04, 0x00]),
        Expect {
            status: 413,
            says: "decompressed body would be 1073741824 bytes, more than the limit of 67108864 bytes",
            counts: vec![(requests("decoded_body_too_large"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn zstd_inflating_past_the_cap() {
    let zeros = vec![0u8; 100_000];
    // A frame that declares its size, and one that does not (streamed).
    let declared = zstd::encode_all(&zeros[..], 3).unwrap();
    let mut streamed = Vec::new();
    {
        let mut enc = zstd::stream::Encoder::new(&mut streamed, 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(&zeros).unwrap();
        enc.finish().unwrap();
    }
    for (body, says) in [
        (
            declared,
            "decompressed body would be 100000 bytes, more than the limit of 1000 bytes",
        ),
        (
            streamed,
            "decompressed body is larger than the limit of 1000 bytes",
        ),
    ] {
        let gate = Gate::router(&["--limits.decoded-body-bytes", "1000"]).await;
        assert!(body.len() < 100, "{} bytes", body.len());
        gate.check(
            post(&[("content-encoding", "zstd")], body),
            Expect {
                status: 413,
                says,
                counts: vec![(requests("decoded_body_too_large"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn corrupt_snappy() {
    let good = snappy(&request(&[(GOOD, &[(7.0, 5000)])], &[]));
    for body in [
        b"\xff\xfe not snappy at all".to_vec(),
        good[..good.len() - 3].to_vec(),
    ] {
        let gate = Gate::router(&[]).await;
        gate.check(
            post(PROMETHEUS_HEADERS, body),
            Expect {
                status: 400,
                says: "malformed snappy body",
                counts: vec![(requests("malformed_compression"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn corrupt_zstd() {
    let good = zstd::encode_all(
        &request(&[(GOOD, &[(7.0, 5000)])], &[]).encode_to_vec()[..],
        3,
    )
    .unwrap();
    for body in [
        b"\x28\xb5\x2f\xfd garbage after the magic".to_vec(),
        good[..good.len() - 4].to_vec(),
    ] {
        let gate = Gate::router(&[]).await;
        gate.check(
            post(&[("content-encoding", "zstd")], body),
            Expect {
                status: 400,
                says: "malformed zstd body",
                counts: vec![(requests("malformed_compression"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn truncated_protobuf() {
    let whole = request(&[(GOOD, &[(7.0, 5000)])], &[]).encode_to_vec();
    for cut in [1, 5, whole.len() - 1] {
        let gate = Gate::router(&[]).await;
        gate.check(
            post(&[("content-encoding", "identity")], whole[..cut].to_vec()),
            Expect {
                status: 400,
                says: "malformed protobuf WriteRequest",
                counts: vec![(requests("malformed_protobuf"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn garbage_protobuf() {
    for body in [
        b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec(),
        b"\x0f\x0f\x0f\x0f".to_vec(),
        b"\x0a\x03\x0a\x01\x00".to_vec(),
    ] {
        let gate = Gate::router(&[]).await;
        gate.check(
            post(&[("content-encoding", "identity")], body),
            Expect {
                status: 400,
                says: "malformed protobuf WriteRequest",
                counts: vec![(requests("malformed_protobuf"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_body_of_the_other_protocol() {
    let gate = Gate::router(&[]).await;
    // A 2.0 body labelled 1.0: it would decode to an empty 1.0 request.
    let v2 = promgate::proto::v2::Request {
        symbols: vec![String::new(), "__name__".into(), "good".into()],
        timeseries: vec![promgate::proto::v2::TimeSeries {
            labels_refs: vec![1, 2],
            samples: vec![promgate::proto::v2::Sample {
                value: 7.0,
                timestamp: 5000,
                start_timestamp: 0,
            }],
            ..Default::default()
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&v2.encode_to_vec())
        .unwrap();
    gate.check(
        post(PROMETHEUS_HEADERS, body),
        Expect {
            status: 415,
            says: "send it with Content-Type application/x-protobuf;proto=io.prometheus.write.v2.Request",
            counts: vec![(requests("schema_mismatch"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

// ---------------------------------------------------------------------------
// Series, labels, samples and metadata (Remote-Write 1.0)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_metric_name() {
    one_bad_series(
        &[],
        &[("job", "x")],
        "first error: series has no __name__ label",
        "missing_metric_name",
    )
    .await;
}

#[tokio::test]
async fn empty_metric_name() {
    // An empty value is an absent label.
    one_bad_series(
        &[],
        &[("__name__", ""), ("job", "x")],
        "first error: series has no __name__ label",
        "missing_metric_name",
    )
    .await;
}

#[tokio::test]
async fn invalid_metric_name() {
    // Any non-empty UTF-8 name is a metric name; metadata can still name
    // an empty family.
    let gate = Gate::router(&[]).await;
    gate.check(
        write1(
            &[(GOOD, &[(7.0, 5000)])],
            &[("", MetricType::Gauge, "no name")],
        ),
        Expect {
            status: 400,
            says: "stored 1 series, rejected 0 series (0 samples) and 1 metadata entry; first error: metric family name of 0 bytes in metadata: empty or over the limit of 4096",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("invalid_metric_name"), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

#[tokio::test]
async fn invalid_label_name() {
    one_bad_series(
        &[],
        &[("__name__", "m"), ("", "x")],
        "first error: empty label name",
        "invalid_label_name",
    )
    .await;
}

#[tokio::test]
async fn utf8_metric_and_label_names() {
    // Dots, spaces, a leading digit, non-ASCII, a quote: all stored, and
    // escaped to underscores for a scraper that names no escaping.
    let gate = Gate::router(&[]).await;
    gate.check(
        write1(
            &[
                (
                    &[
                        ("__name__", "http.server.duration"),
                        ("service.name", "api"),
                    ],
                    &[(1.0, 5000)],
                ),
                (&[("__name__", "resource cpu usage")], &[(2.0, 5000)]),
                (&[("__name__", "1é\"")], &[(3.0, 5000)]),
            ],
            &[],
        ),
        Expect {
            status: 204,
            says: "",
            counts: vec![],
            page: lines(&[
                SEED,
                "___ 3 5000",
                "http_server_duration{service_name=\"api\"} 1 5000",
                "resource_cpu_usage 2 5000",
            ]),
        },
    )
    .await;
}

#[tokio::test]
async fn duplicate_label_names() {
    one_bad_series(
        &[],
        &[("__name__", "m"), ("a", "x"), ("a", "y")],
        "stored 1 series, rejected 1 series (1 samples); first error: duplicate label name \"a\"",
        "duplicate_label_name",
    )
    .await;
}

#[tokio::test]
async fn reserved_label_name() {
    one_bad_series(
        &[],
        &[("__name__", "m"), ("__tmp_shard", "1")],
        "first error: label name \"__tmp_shard\" is reserved",
        "reserved_label_name",
    )
    .await;
}

#[tokio::test]
async fn too_many_labels() {
    one_bad_series(
        &["--limits.labels-per-series", "3"],
        &[("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")],
        "first error: series has 4 labels, more than the limit of 3",
        "too_many_labels",
    )
    .await;
}

#[tokio::test]
async fn label_name_too_long() {
    one_bad_series(
        &["--limits.label-name-length", "8"],
        &[("__name__", "m"), ("abcdefghi", "1")],
        "first error: label name of 9 bytes is longer than the limit of 8",
        "label_name_too_long",
    )
    .await;
}

#[tokio::test]
async fn label_value_too_long() {
    one_bad_series(
        &["--limits.label-value-length", "8"],
        &[("__name__", "m"), ("a", "123456789")],
        "first error: value of label \"a\" has 9 bytes, more than the limit of 8",
        "label_value_too_long",
    )
    .await;
}

/// A reason quotes what was wrong, but no more than a line of it: a
/// 100 kB name, in a remote write or a push, is cut short.
#[tokio::test]
async fn a_huge_name_in_a_reason() {
    let huge = "a".repeat(100_000);
    one_bad_series(
        &[],
        &[("__name__", "m"), (&huge, "x"), (&huge, "y")],
        "first error: duplicate label name \"aaaaaaaa",
        "duplicate_label_name",
    )
    .await;
    let gate = Gate::router(&[]).await;
    gate.check(
        push(
            "PUT",
            "/metrics/job/batch",
            &[],
            format!("x {huge}\n").as_bytes(),
        ),
        Expect {
            status: 400,
            says: "text format parsing error in line 1: expected float as value, got \"aaaaaaaa",
            counts: vec![(requests("malformed_text"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

/// A label that is not UTF-8 rejects its series only, and the reason names
/// the fault without echoing the bytes.
#[tokio::test]
async fn invalid_utf8_in_a_label() {
    use promgate::proto::lenient::{Label, Sample, TimeSeries, WriteRequest};
    let gate = Gate::router(&[]).await;
    let one = |name: &[u8], value: &[u8], v: f64| TimeSeries {
        labels: vec![
            Label {
                name: b"__name__".to_vec(),
                value: name.to_vec(),
            },
            Label {
                name: b"room".to_vec(),
                value: value.to_vec(),
            },
        ],
        samples: vec![Sample {
            value: v,
            timestamp: 5000,
        }],
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![
            one(b"temp", b"bad\xff\xfe\x00", 1.0),
            one(b"te\xc3mp", b"hall", 2.0),
            one(b"good", b"kitchen", 7.0),
        ],
        metadata: Vec::new(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let a = gate
        .check(
            post(PROMETHEUS_HEADERS, body),
            Expect {
                status: 400,
                says: "stored 1 series, rejected 2 series (2 samples); first error: a label of a series is not valid UTF-8",
                counts: vec![
                    (requests("invalid_series"), 1.0),
                    (series("invalid_utf8"), 2.0),
                    (samples("invalid_utf8"), 2.0),
                ],
                page: lines(&[SEED, "good{room=\"kitchen\"} 7 5000"]),
            },
        )
        .await;
    let text = String::from_utf8(a.body).unwrap();
    assert!(
        !text.contains("bad") && !text.contains('\u{fffd}'),
        "{text}"
    );
}

#[tokio::test]
async fn help_text_not_utf8() {
    use promgate::proto::lenient::{MetricMetadata, WriteRequest};
    let gate = Gate::router(&[]).await;
    let req = WriteRequest {
        timeseries: Vec::new(),
        metadata: vec![MetricMetadata {
            r#type: MetricType::Gauge as i32,
            metric_family_name: b"up".to_vec(),
            help: b"not \xc3 UTF-8".to_vec(),
            unit: Vec::new(),
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    gate.check(
        post(PROMETHEUS_HEADERS, body),
        Expect {
            status: 400,
            says: "stored 0 series, rejected 0 series (0 samples) and 1 metadata entry; first error: a metadata string is not valid UTF-8",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("invalid_utf8"), 1.0),
            ],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn help_text_too_long() {
    let gate = Gate::router(&["--limits.help-length", "100"]).await;
    let long = "h".repeat(101);
    gate.check(
        write1(
            &[(GOOD, &[(7.0, 5000)])],
            &[("good", MetricType::Gauge, &long)],
        ),
        Expect {
            status: 400,
            says: "first error: HELP of family \"good\" has 101 bytes, more than the limit of 100",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("metadata_too_long"), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

#[tokio::test]
async fn timestamp_far_in_the_future() {
    let gate = Gate::router(&["--limits.future-time-window", "1m"]).await;
    let now = promgate::ingest::now_ms();
    let bad = [("__name__", "m")];
    // One series wholly in the future, one with a good and a bad sample.
    gate.check(
        write1(
            &[
                (&bad, &[(1.0, now + 3_600_000)]),
                (GOOD, &[(7.0, 5000), (8.0, i64::MAX)]),
            ],
            &[],
        ),
        Expect {
            status: 400,
            says: "ms is more than 60000 ms ahead of promgate's clock (--limits.future-time-window 1m)",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("timestamp_too_far_in_future"), 1.0),
                (samples("timestamp_too_far_in_future"), 2.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

#[tokio::test]
async fn timestamp_negative_or_zero() {
    let gate = Gate::router(&[]).await;
    gate.check(
        write1(
            &[
                (&[("__name__", "m")], &[(1.0, -1)]),
                (&[("__name__", "n")], &[(1.0, 0)]),
                (GOOD, &[(7.0, 5000), (9.0, i64::MIN)]),
            ],
            &[],
        ),
        Expect {
            status: 400,
            says: "stored 1 series, rejected 2 series (3 samples); first error: sample timestamp -1 ms is not after the Unix epoch",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("timestamp_not_after_epoch"), 2.0),
                (samples("timestamp_not_after_epoch"), 3.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

#[tokio::test]
async fn sample_older_than_the_stored_one() {
    let gate = Gate::router(&[]).await;
    gate.check(
        write1(&[(UP, &[(5.0, 500), (6.0, 999)])], &[]),
        Expect {
            status: 204,
            says: "",
            counts: vec![("promgate_samples_out_of_order_total".into(), 2.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn stale_marker() {
    let gate = Gate::router(&[]).await;
    let stale = f64::from_bits(promgate::model::STALE_NAN_BITS);
    // A stale marker older than the stored sample is an old sample.
    gate.check(
        write1(&[(UP, &[(stale, 999)])], &[]),
        Expect {
            status: 204,
            says: "",
            counts: vec![("promgate_samples_out_of_order_total".into(), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
    gate.check(
        write1(&[(UP, &[(stale, 9_000_001)])], &[]),
        Expect {
            status: 204,
            says: "",
            counts: vec![("promgate_series_stale_removed_total".into(), 1.0)],
            page: vec![],
        },
    )
    .await;
}

#[tokio::test]
async fn nan_and_infinities() {
    let gate = Gate::router(&[]).await;
    gate.check(
        write1(
            &[
                (&[("__name__", "v"), ("k", "nan")], &[(f64::NAN, 5000)]),
                (&[("__name__", "v"), ("k", "pos")], &[(f64::INFINITY, 5000)]),
                (
                    &[("__name__", "v"), ("k", "neg")],
                    &[(f64::NEG_INFINITY, 5000)],
                ),
                (&[("__name__", "v"), ("k", "sub")], &[(5e-324, 5000)]),
            ],
            &[],
        ),
        Expect {
            status: 204,
            says: "",
            counts: vec![],
            page: lines(&[
                SEED,
                "v{k=\"nan\"} NaN 5000",
                "v{k=\"pos\"} +Inf 5000",
                "v{k=\"neg\"} -Inf 5000",
                "v{k=\"sub\"} 5e-324 5000",
            ]),
        },
    )
    .await;
}

/// Quotes, backslashes and line breaks in label values and HELP are
/// escaped on the page, which promtool then reads.
#[tokio::test]
async fn quotes_backslashes_and_newlines() {
    let gate = Gate::router(&[]).await;
    let tricky = "a \"quoted\" C:\\path\nnext line";
    gate.check(
        write1(
            &[(&[("__name__", "esc"), ("v", tricky)], &[(1.0, 5000)])],
            &[("esc", MetricType::Gauge, tricky)],
        ),
        Expect {
            status: 204,
            says: "",
            counts: vec![],
            page: lines(&[
                SEED,
                "esc{v=\"a \\\"quoted\\\" C:\\\\path\\nnext line\"} 1 5000",
            ]),
        },
    )
    .await;
    let page = gate.get("/metrics").await;
    assert!(
        page.contains("# HELP esc a \"quoted\" C:\\\\path\\nnext line\n"),
        "{page}"
    );
    assert_parses(&page);
}

/// Remote write carries metadata as it changes: the last TYPE sent wins.
#[tokio::test]
async fn conflicting_type_for_one_family() {
    let gate = Gate::router(&[]).await;
    gate.check(
        write1(
            &[(GOOD, &[(7.0, 5000)])],
            &[
                ("good", MetricType::Counter, "first"),
                ("good", MetricType::Gauge, "second"),
            ],
        ),
        Expect {
            status: 204,
            says: "",
            counts: vec![],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
    let page = gate.get("/metrics").await;
    assert!(
        page.contains("# HELP good second\n# TYPE good gauge\ngood 7 5000\n"),
        "{page}"
    );
}

#[tokio::test]
async fn new_series_beyond_the_cap() {
    let gate = Gate::router(&["--limits.series", "1"]).await;
    gate.check(
        write1(&[(GOOD, &[(7.0, 5000)]), (UP, &[(3.0, 3000)])], &[]),
        Expect {
            status: 400,
            says: "stored 1 series, rejected 1 series (1 samples); first error: new series good would exceed the limit of 1 live series",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("series_limit"), 1.0),
                (samples("series_limit"), 1.0),
            ],
            page: lines(&["up{instance=\"a:9100\",job=\"node\"} 3 3000"]),
        },
    )
    .await;
}

#[tokio::test]
async fn metadata_beyond_the_cap() {
    let gate = Gate::router(&["--limits.metadata", "1"]).await;
    gate.check(
        write1(
            &[(GOOD, &[(7.0, 5000)])],
            &[
                ("up", MetricType::Gauge, "kept"),
                ("good", MetricType::Gauge, "over the cap"),
            ],
        ),
        Expect {
            status: 400,
            says: "stored 1 series, rejected 0 series (0 samples) and 1 metadata entry",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("metadata_limit"), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

#[tokio::test]
async fn invalid_native_histogram() {
    use promgate::proto::{Histogram, Label, TimeSeries, WriteRequest};
    let gate = Gate::router(&[]).await;
    let mut req = request(&[(GOOD, &[(7.0, 5000)])], &[]);
    req.timeseries.push(TimeSeries {
        labels: vec![Label {
            name: "__name__".into(),
            value: "latency".into(),
        }],
        // Schema 100: neither exponential (-4..=52) nor custom (-53).
        histograms: vec![Histogram {
            timestamp: 5000,
            schema: 100,
            ..Default::default()
        }],
        ..Default::default()
    });
    let _: &WriteRequest = &req;
    gate.check(
        post(PROMETHEUS_HEADERS, snappy(&req)),
        Expect {
            status: 400,
            says: "stored 1 series, rejected 1 series (1 samples); first error: native histogram refused: ",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("invalid_native_histogram"), 1.0),
                (samples("invalid_native_histogram"), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

#[tokio::test]
async fn native_histogram_over_the_bucket_limit() {
    use promgate::proto::{BucketSpan, Histogram, Label, TimeSeries, histogram};
    let gate = Gate::router(&["--limits.native-histogram-buckets", "4"]).await;
    let mut req = request(&[(GOOD, &[(7.0, 5000)])], &[]);
    // Eight buckets at schema -4, the lowest: no coarser one holds them
    // in four.
    req.timeseries.push(TimeSeries {
        labels: vec![Label {
            name: "__name__".into(),
            value: "latency".into(),
        }],
        histograms: vec![Histogram {
            count: Some(histogram::Count::CountInt(8)),
            sum: 1.0,
            schema: -4,
            positive_spans: vec![BucketSpan {
                offset: 0,
                length: 8,
            }],
            positive_deltas: vec![1, 0, 0, 0, 0, 0, 0, 0],
            timestamp: 5000,
            ..Default::default()
        }],
        ..Default::default()
    });
    gate.check(
        post(PROMETHEUS_HEADERS, snappy(&req)),
        Expect {
            status: 400,
            says: "stored 1 series, rejected 1 series (1 samples); first error: native histogram of 8 buckets refused: more than --limits.native-histogram-buckets 4 even at the lowest resolution",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("native_histogram_bucket_limit"), 1.0),
                (samples("native_histogram_bucket_limit"), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

// ---------------------------------------------------------------------------
// Remote-Write 2.0
// ---------------------------------------------------------------------------

fn v2_series(labels_refs: Vec<u32>, value: f64) -> promgate::proto::v2::TimeSeries {
    promgate::proto::v2::TimeSeries {
        labels_refs,
        samples: vec![promgate::proto::v2::Sample {
            value,
            timestamp: 5000,
            start_timestamp: 0,
        }],
        ..Default::default()
    }
}

/// Symbols: "", "__name__", "good", then `extra`; series `good` first.
fn v2_request(
    extra: &[&str],
    more: Vec<promgate::proto::v2::TimeSeries>,
) -> promgate::proto::v2::Request {
    let mut symbols: Vec<String> = ["", "__name__", "good"].map(String::from).to_vec();
    symbols.extend(extra.iter().map(|s| s.to_string()));
    let mut timeseries = vec![v2_series(vec![1, 2], 7.0)];
    timeseries.extend(more);
    promgate::proto::v2::Request {
        symbols,
        timeseries,
    }
}

#[tokio::test]
async fn v2_symbols_not_starting_with_the_empty_string() {
    let gate = Gate::router(&[]).await;
    let mut req = v2_request(&[], vec![]);
    req.symbols[0] = "x".into();
    let a = gate
        .check(
            write2(&req),
            Expect {
                status: 400,
                says: "invalid remote-write 2.0 request: symbols[0] must be the empty string",
                counts: vec![(requests("invalid_request"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    assert_eq!(
        a.header("x-prometheus-remote-write-samples-written"),
        Some("0")
    );
}

#[tokio::test]
async fn v2_symbol_reference_out_of_range() {
    let gate = Gate::router(&[]).await;
    let req = v2_request(&["m"], vec![v2_series(vec![1, 99], 1.0)]);
    let a = gate
        .check(
            write2(&req),
            Expect {
                status: 400,
                says: "stored 1 series, rejected 1 series (1 samples); first error: symbol reference 99 is out of range (4 symbols)",
                counts: vec![
                    (requests("invalid_series"), 1.0),
                    (series("invalid_symbol_reference"), 1.0),
                    (samples("invalid_symbol_reference"), 1.0),
                ],
                page: lines(&[SEED, GOOD_LINE]),
            },
        )
        .await;
    assert_eq!(
        a.header("x-prometheus-remote-write-samples-written"),
        Some("1")
    );
}

#[tokio::test]
async fn v2_odd_labels_refs() {
    let gate = Gate::router(&[]).await;
    let req = v2_request(&["m"], vec![v2_series(vec![1, 3, 1], 1.0)]);
    gate.check(
        write2(&req),
        Expect {
            status: 400,
            says: "first error: labels_refs of a series has an odd length (3)",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("invalid_symbol_reference"), 1.0),
                (samples("invalid_symbol_reference"), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

#[tokio::test]
async fn v2_series_without_samples() {
    let gate = Gate::router(&[]).await;
    let mut empty = v2_series(vec![1, 3], 1.0);
    empty.samples.clear();
    let req = v2_request(&["m"], vec![empty]);
    gate.check(
        write2(&req),
        Expect {
            status: 400,
            says: "first error: a series has neither samples nor histograms",
            counts: vec![
                (requests("invalid_series"), 1.0),
                (series("empty_series"), 1.0),
            ],
            page: lines(&[SEED, GOOD_LINE]),
        },
    )
    .await;
}

/// A symbol that is not UTF-8 rejects the series that use it; the reason
/// names the symbol's index, not its bytes.
#[tokio::test]
async fn v2_symbol_not_utf8() {
    let gate = Gate::router(&[]).await;
    let req = v2_request(&["PLACEHOLDER"], vec![v2_series(vec![1, 3], 1.0)]);
    let mut body = req.encode_to_vec();
    let at = body.windows(11).position(|w| w == b"PLACEHOLDER").unwrap();
    body[at..at + 11].copy_from_slice(b"bad\xff\xfe\x00bytes");
    let body = snap::raw::Encoder::new().compress_vec(&body).unwrap();
    let a = gate
        .check(
            post(
                &[("content-type", V2), ("content-encoding", "snappy")],
                body,
            ),
            Expect {
                status: 400,
                says: "first error: symbol 3 is not valid UTF-8",
                counts: vec![
                    (requests("invalid_series"), 1.0),
                    (series("invalid_utf8"), 1.0),
                    (samples("invalid_utf8"), 1.0),
                ],
                page: lines(&[SEED, GOOD_LINE]),
            },
        )
        .await;
    let text = String::from_utf8(a.body).unwrap();
    assert!(!text.contains("bad"), "{text}");
}

#[tokio::test]
async fn v2_garbage_protobuf() {
    let gate = Gate::router(&[]).await;
    gate.check(
        post(
            &[("content-type", V2), ("content-encoding", "identity")],
            b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec(),
        ),
        Expect {
            status: 400,
            says: "malformed protobuf io.prometheus.write.v2.Request",
            counts: vec![(requests("malformed_protobuf"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

// ---------------------------------------------------------------------------
// The push API
// ---------------------------------------------------------------------------

/// The page lines of a group `{job="<job>"}` that holds nothing but its
/// push times.
fn group_times(job: &str) -> [String; 2] {
    [
        format!("push_failure_time_seconds{{instance=\"\",job=\"{job}\"}} *"),
        format!("push_time_seconds{{instance=\"\",job=\"{job}\"}} *"),
    ]
}

#[tokio::test]
async fn push_malformed_text() {
    let gate = Gate::router(&[]).await;
    gate.check(
        push("PUT", "/metrics/job/batch", &[], b"ok 1\nbad{ 1\n"),
        Expect {
            status: 400,
            says: "text format parsing error in line 2:",
            counts: vec![(requests("malformed_text"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

/// Two TYPE lines for one family in one body.
#[tokio::test]
async fn push_conflicting_type_in_one_body() {
    let gate = Gate::router(&[]).await;
    gate.check(
        push(
            "PUT",
            "/metrics/job/batch",
            &[],
            b"# TYPE x counter\nx 1\n# TYPE x gauge\n",
        ),
        Expect {
            status: 400,
            says: "text format parsing error in line 3: second TYPE line for metric name \"x\", or TYPE reported after samples",
            counts: vec![(requests("malformed_text"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn push_with_timestamps() {
    let gate = Gate::router(&[]).await;
    let mut page = lines(&[SEED]);
    page.extend(group_times("batch"));
    gate.check(
        push("PUT", "/metrics/job/batch", &[], b"ok 1\nx 1 123\n"),
        Expect {
            status: 400,
            says: "pushed metrics are invalid or inconsistent: x has a timestamp: pushed metrics must not have timestamps",
            counts: vec![(requests("invalid_push"), 1.0)],
            page,
        },
    )
    .await;
}

/// A delimited protobuf push of a valid gauge and a native histogram
/// whose spans promise more buckets than it has.
#[tokio::test]
async fn push_invalid_native_histogram() {
    use promgate::proto::client::{
        BucketSpan, Gauge, Histogram, Metric, MetricFamily, MetricType as PbType,
    };
    let gauge = MetricFamily {
        name: Some("ok".into()),
        r#type: Some(PbType::Gauge as i32),
        metric: vec![Metric {
            gauge: Some(Gauge { value: Some(1.0) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let histogram = MetricFamily {
        name: Some("h".into()),
        r#type: Some(PbType::Histogram as i32),
        metric: vec![Metric {
            histogram: Some(Histogram {
                sample_count: Some(3),
                sample_sum: Some(1.0),
                schema: Some(0),
                zero_threshold: Some(1e-128),
                zero_count: Some(0),
                positive_span: vec![BucketSpan {
                    offset: Some(0),
                    length: Some(2),
                }],
                positive_delta: vec![3],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut body = Vec::new();
    gauge.encode_length_delimited(&mut body).unwrap();
    histogram.encode_length_delimited(&mut body).unwrap();
    let gate = Gate::router(&[]).await;
    let mut page = lines(&[SEED]);
    page.extend(group_times("batch"));
    gate.check(
        push(
            "PUT",
            "/metrics/job/batch",
            &[(
                "content-type",
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
            )],
            &body,
        ),
        Expect {
            status: 400,
            says: "pushed metrics are invalid or inconsistent: native histogram h refused: histogram positive spans need 2 buckets, the message has 1",
            counts: vec![(requests("invalid_push"), 1.0)],
            page,
        },
    )
    .await;
}

/// One family pushed as two types by two groups.
#[tokio::test]
async fn push_inconsistent_with_another_group() {
    let gate = Gate::router(&[]).await;
    let first = gate
        .send(push(
            "PUT",
            "/metrics/job/a",
            &[],
            b"# TYPE temperature gauge\ntemperature 20\n",
        ))
        .await;
    assert_eq!(first.status, 200);
    let mut page = lines(&[SEED, "temperature{instance=\"\",job=\"a\"} 20"]);
    page.extend(group_times("a"));
    page.extend(group_times("b"));
    gate.check(
        push(
            "PUT",
            "/metrics/job/b",
            &[],
            b"# TYPE temperature counter\ntemperature 3\n",
        ),
        Expect {
            status: 400,
            says: "pushed metrics are inconsistent with existing metrics: family \"temperature\" is pushed as counter but group {job=\"a\"} holds it as gauge",
            counts: vec![(requests("inconsistent_push"), 1.0)],
            page,
        },
    )
    .await;
}

#[tokio::test]
async fn push_bad_path() {
    for (path, says) in [
        (
            "/metrics/job/batch/odd",
            "invalid push path: odd number of components in label string \"/odd\"",
        ),
        (
            "/metrics/job@base64/!!!",
            "invalid push path: invalid base64",
        ),
        ("/metrics/job/batch/1bad/x", "invalid push path:"),
        ("/metrics/job/batch/__x/y", "invalid push path:"),
        // Grouping labels are in every series of the group: 29 of them,
        // with job, __name__ and instance, make 32 (the default limit is 30).
        (
            &*format!(
                "/metrics/job/batch{}",
                (0..29).map(|i| format!("/k{i}/v")).collect::<String>()
            ),
            "more than --limits.labels-per-series 30",
        ),
        (
            &*format!("/metrics/job/batch/k/{}", "v".repeat(4097)),
            "longer than --limits.label-value-length 4096",
        ),
    ] {
        let gate = Gate::router(&[]).await;
        gate.check(
            push("PUT", path, &[], b"x 1\n"),
            Expect {
                status: 400,
                says,
                counts: vec![(requests("invalid_push_path"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    }
}

#[tokio::test]
async fn push_unsupported_encoding() {
    let gate = Gate::router(&[]).await;
    gate.check(
        push(
            "PUT",
            "/metrics/job/batch",
            &[("content-encoding", "zstd")],
            b"x 1\n",
        ),
        Expect {
            status: 415,
            says: "unsupported Content-Encoding \"zstd\" for a push: expected gzip, snappy or identity",
            counts: vec![(requests("unsupported_push_encoding"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

/// A small gzip body that inflates past the cap (the cap of a push's text
/// is the request body limit).
#[tokio::test]
async fn push_decompressing_past_the_cap() {
    let gate = Gate::router(&["--limits.request-body-bytes", "10000"]).await;
    let text = "x 1\n".repeat(100_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(text.as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    assert!(body.len() < 10_000);
    gate.check(
        push(
            "PUT",
            "/metrics/job/batch",
            &[("content-encoding", "gzip")],
            &body,
        ),
        Expect {
            status: 413,
            says: "decompressed body is larger than the limit of 10000 bytes",
            counts: vec![(requests("decoded_body_too_large"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn push_malformed_protobuf() {
    let gate = Gate::router(&[]).await;
    gate.check(
        push(
            "PUT",
            "/metrics/job/batch",
            &[(
                "content-type",
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
            )],
            b"\x05\x0a\x03abc\xff",
        ),
        Expect {
            status: 400,
            says: "invalid delimited protobuf MetricFamily body",
            counts: vec![(requests("malformed_protobuf"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

#[tokio::test]
async fn push_beyond_the_series_cap() {
    let gate = Gate::router(&["--limits.series", "3"]).await;
    // The refusal is recorded as the group's failure: its two push times
    // fit.
    let mut page = lines(&[SEED]);
    page.extend(group_times("batch"));
    gate.check(
        push("PUT", "/metrics/job/batch", &[], b"a 1\nb 2\nc 3\n"),
        Expect {
            status: 400,
            says: "pushed metrics are inconsistent with existing metrics: the push would add 5 series (2 of them the new group's push times) to",
            counts: vec![(requests("push_series_limit"), 1.0)],
            page,
        },
    )
    .await;
}

// ---------------------------------------------------------------------------
// Load and slow clients
// ---------------------------------------------------------------------------

/// A scrape beyond `--exposition.max-concurrent-scrapes` waits
/// `--exposition.max-queue-duration`, then gets 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_beyond_the_concurrency_bound() {
    let gate = Gate::router(&[
        "--exposition.max-concurrent-scrapes",
        "1",
        "--exposition.max-queue-duration",
        "100ms",
    ])
    .await;
    // A page of ~3 MB: more than the render channel holds, so the first
    // scrape keeps its slot while its client reads nothing.
    let hosts: Vec<String> = (0..3000)
        .map(|i| format!("{i:04}{}", "x".repeat(1000)))
        .collect();
    let labels: Vec<[(&str, &str); 2]> = hosts
        .iter()
        .map(|h| [("__name__", "big"), ("host", h.as_str())])
        .collect();
    let series: Vec<Series> = labels
        .iter()
        .map(|l| (&l[..], &[(1.0, 5000)][..]))
        .collect();
    assert_eq!(gate.send(write1(&series, &[])).await.status, 204);
    let Via::Router(app) = &gate.via else {
        unreachable!()
    };
    let before = gate.counters().await;
    let held = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(held.status(), 200);
    let expect = Expect {
        status: 503,
        says: "too many concurrent scrapes: 1 pages were being rendered for all of ",
        counts: vec![(requests("too_many_scrapes"), 1.0)],
        page: std::iter::once(SEED.to_string())
            .chain(hosts.iter().map(|h| format!("big{{host=\"{h}\"}} 1 5000")))
            .collect(),
    };
    let a = gate.send(push("GET", "/metrics", &[], b"")).await;
    assert_answer("GET /metrics", a.status, &a.body, &expect);
    gate.assert_counted(&before, &expect.counts).await;
    // The client goes away: its render stops and frees the slot.
    drop(held);
    eventually(Duration::from_secs(10), "the render slot freed", || async {
        match gate.send(push("GET", "/metrics", &[], b"")).await.status {
            200 => Ok(()),
            s => Err(s.to_string()),
        }
    })
    .await;
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// A write beyond `--limits.concurrent-writes` waits
/// `--limits.write-queue-duration`, then gets 503, which Prometheus (without
/// `retry_on_http_429`) and vmagent both retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beyond_the_concurrency_bound() {
    let gate = Gate::router(&[
        "--limits.concurrent-writes",
        "1",
        "--limits.write-queue-duration",
        "1ms",
    ])
    .await;
    let Via::Router(app) = &gate.via else {
        unreachable!()
    };
    // A slot is held while a body is decoded and applied: 20,000 series take
    // far longer than 1 ms, so of 8 such writes sent at once on two threads,
    // those that find the slot taken are refused.
    let hosts: Vec<String> = (0..20_000).map(|i| format!("h{i}")).collect();
    let labels: Vec<[(&str, &str); 2]> = hosts
        .iter()
        .map(|h| [("__name__", "busy"), ("host", h.as_str())])
        .collect();
    let series: Vec<Series> = labels
        .iter()
        .map(|l| (&l[..], &[(3.0, 5000)][..]))
        .collect();
    let body = snappy(&request(&series, &[]));
    let expect = Expect {
        status: 503,
        says: "too many concurrent writes: 1 requests were being served for all of 1ms; retry later",
        counts: Vec::new(),
        page: std::iter::once(SEED.to_string())
            .chain(hosts.iter().map(|h| format!("busy{{host=\"{h}\"}} 3 5000")))
            .collect(),
    };
    let before = gate.counters().await;
    let mut refused = 0;
    for _round in 0..20 {
        let sent: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn(
                    app.clone()
                        .oneshot(post(PROMETHEUS_HEADERS, body.clone()).http()),
                )
            })
            .collect();
        for answer in sent {
            let answer = answer.await.unwrap().unwrap();
            let status = answer.status().as_u16();
            let text = answer.into_body().collect().await.unwrap().to_bytes();
            if status != 204 {
                assert_answer("a write beyond the bound", status, &text, &expect);
                refused += 1;
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "no write of 20 rounds of 8 was refused");
    gate.assert_counted(
        &before,
        &[(requests("too_many_writes"), f64::from(refused))],
    )
    .await;
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// A body arriving while others hold all of `--limits.body-bytes-in-flight`
/// waits `--limits.write-queue-duration` for budget, then gets 503; the
/// budget comes back when the bodies holding it have been applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_bytes_beyond_the_budget() {
    let gate = Gate::router(&[
        "--limits.request-body-bytes",
        "1000",
        "--limits.body-bytes-in-flight",
        "1000",
        "--limits.write-queue-duration",
        "200ms",
    ])
    .await;
    let Via::Router(app) = &gate.via else {
        unreachable!()
    };
    // An uncompressed request of one series whose label value makes it
    // about `size` bytes.
    let sized = |name: &str, size: usize| {
        let value = "v".repeat(size - 40);
        let labels = [("__name__", name), ("pad", value.as_str())];
        request(&[(&labels[..], &[(1.0, 5000)])], &[]).encode_to_vec()
    };
    let held_body = sized("held", 700);
    let late_body = sized("late", 400);
    assert!((700..800).contains(&held_body.len()) && (400..500).contains(&late_body.len()));
    // The held request's whole body has arrived, but not its end.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    tx.send(Ok(held_body.clone().into())).await.unwrap();
    let held = Request::post("/api/v1/write")
        .header("content-encoding", "identity")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap();
    let held = tokio::spawn(app.clone().oneshot(held));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let expect = Expect {
        status: 503,
        says: "too many request bytes in flight: other bodies held the budget of 1000 bytes for all of 200ms; retry later",
        counts: vec![(requests("too_many_body_bytes"), 1.0)],
        page: vec![
            SEED.to_string(),
            format!("held{{pad=\"{}\"}} 1 5000", "v".repeat(660)),
        ],
    };
    let before = gate.counters().await;
    let a = gate
        .send(post(&[("content-encoding", "identity")], late_body))
        .await;
    assert_answer("a body beyond the budget", a.status, &a.body, &expect);
    gate.assert_counted(&before, &expect.counts).await;
    // The held body ends, is applied, and gives its budget back.
    drop(tx);
    assert_eq!(held.await.unwrap().unwrap().status(), 204);
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// Reads one answer from a kept-alive connection: its status.
fn answer_kept_alive(s: &mut TcpStream) -> u16 {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

/// A connection beyond `--web.max-connections` is not accepted until
/// another closes: it waits, unanswered, in the kernel's accept queue;
/// then it is served.
#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit() {
    let gate = Gate::binary(&["--web.max-connections", "3"]).await;
    let before = gate.counters().await;
    let addr = gate.addr();
    let (waited, then) = tokio::task::spawn_blocking(move || {
        // Three kept-alive connections, each answered once, take every place.
        let mut open: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                assert_eq!(answer_kept_alive(&mut s), 200);
                s
            })
            .collect();
        let mut fourth = TcpStream::connect(addr).unwrap();
        fourth
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        fourth
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 64];
        let waited = match fourth.read(&mut buf) {
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            Ok(_) => false,
        };
        // One closes: the fourth is accepted and answered.
        drop(open.remove(0));
        let then = until_closed(fourth);
        drop(open);
        (waited, then)
    })
    .await
    .unwrap();
    assert!(
        waited,
        "the fourth connection was answered while three were open"
    );
    let expect = Expect {
        status: 200,
        says: "",
        counts: Vec::new(),
        page: lines(&[SEED]),
    };
    let (status, _) = parse_raw(&then);
    assert_eq!(status, expect.status, "{}", String::from_utf8_lossy(&then));
    // The loop found every place taken at least once the third was
    // accepted (more often when the gate's own connections, closing, or the
    // others still held places at other moments).
    let after = gate.counters().await;
    let reached = |c: &BTreeMap<String, f64>| c["promgate_connections_limit_reached_total"];
    let reached = reached(&after) - reached(&before);
    assert!(reached >= 1.0, "reached {reached} times");
    assert_eq!(after["promgate_connections_max"], 3.0);
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// Waits until the server closes `s`; what it sent before closing.
fn until_closed(mut s: TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Half a request head, and a kept-alive connection that sends no next
/// request: both closed after `--web.read-header-timeout`, without an
/// answer (there is no request to answer), each counted.
#[tokio::test(flavor = "multi_thread")]
async fn slow_request_head() {
    let gate = Gate::binary(&["--web.read-header-timeout", "1s"]).await;
    let before = gate.counters().await;
    let addr = gate.addr();
    let (half, idle) = tokio::task::spawn_blocking(move || {
        let mut half = TcpStream::connect(addr).unwrap();
        half.write_all(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        (until_closed(half), until_closed(idle))
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&half), "");
    assert!(
        idle.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&idle)
    );
    gate.assert_counted(
        &before,
        &[
            (connections("header_timeout"), 1.0),
            (connections("idle_timeout"), 1.0),
        ],
    )
    .await;
    gate.assert_page(&lines(&[SEED])).await;
    gate.assert_serving().await;
}

/// A client that reads nothing of its answer (here a 3 MB page) for
/// `--web.write-timeout`: the connection is closed, freeing its place and
/// its render slot, and what the client did receive does not end with the
/// chunked body's terminator, so it cannot pass for a complete page.
#[tokio::test(flavor = "multi_thread")]
async fn client_that_stops_reading() {
    let gate = Gate::binary(&["--web.write-timeout", "1s"]).await;
    let hosts: Vec<String> = (0..3000)
        .map(|i| format!("{i:04}{}", "x".repeat(1000)))
        .collect();
    let labels: Vec<[(&str, &str); 2]> = hosts
        .iter()
        .map(|h| [("__name__", "big"), ("host", h.as_str())])
        .collect();
    let series: Vec<Series> = labels
        .iter()
        .map(|l| (&l[..], &[(1.0, 5000)][..]))
        .collect();
    assert_eq!(gate.send(write1(&series, &[])).await.status, 204);
    let before = gate.counters().await;
    // A small receive buffer, so the page does not fit in the socket.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket
        .connect(gate.addr())
        .await
        .unwrap()
        .into_std()
        .unwrap();
    stalled.set_nonblocking(false).unwrap();
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let expect = Expect {
        status: 200,
        says: "",
        counts: vec![(connections("write_timeout"), 1.0)],
        page: std::iter::once(SEED.to_string())
            .chain(hosts.iter().map(|h| format!("big{{host=\"{h}\"}} 1 5000")))
            .collect(),
    };
    // Counted once the server has given up on the connection, which the
    // client has not read from.
    gate.assert_counted(&before, &expect.counts).await;
    let received = until_closed(stalled);
    let (status, _) = parse_raw(&received);
    assert_eq!(status, expect.status);
    assert!(
        !received.ends_with(b"\r\n0\r\n\r\n"),
        "a cut-off page ended like a complete one"
    );
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// A head the HTTP parser refuses (two different `Content-Length`s) is
/// answered by hyper before promgate sees a request: 400, empty body.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_request_head() {
    let gate = Gate::binary(&[]).await;
    let before = gate.counters().await;
    let addr = gate.addr();
    let (status, text) = tokio::task::spawn_blocking(move || {
        raw_exchange(
            addr,
            "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"xy",
        )
    })
    .await
    .unwrap();
    let expect = Expect {
        status: 400,
        says: "",
        counts: vec![(connections("malformed_head"), 1.0)],
        page: lines(&[SEED]),
    };
    assert_answer("two Content-Lengths", status, text.as_bytes(), &expect);
    gate.assert_counted(&before, &expect.counts).await;
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// A body that does not arrive within `--web.read-timeout`: 408.
#[tokio::test(flavor = "multi_thread")]
async fn slow_request_body() {
    let gate = Gate::binary(&["--web.read-timeout", "1s"]).await;
    let before = gate.counters().await;
    let addr = gate.addr();
    let (status, text) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: 1000\r\n\r\nten bytes."
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse_raw(&out)
    })
    .await
    .unwrap();
    let expect = Expect {
        status: 408,
        says: "request body not received within 1s",
        counts: vec![(requests("body_timeout"), 1.0)],
        page: lines(&[SEED]),
    };
    assert_answer("10 of 1000 bytes", status, text.as_bytes(), &expect);
    gate.assert_counted(&before, &expect.counts).await;
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

/// A client that closes its side before the body it declared is complete.
#[tokio::test(flavor = "multi_thread")]
async fn body_cut_short() {
    let gate = Gate::binary(&[]).await;
    let before = gate.counters().await;
    let addr = gate.addr();
    let (status, text) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: 1000\r\n\r\nten bytes."
        )
        .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse_raw(&out)
    })
    .await
    .unwrap();
    let expect = Expect {
        status: 400,
        says: "could not read request body: ",
        counts: vec![(requests("body_read"), 1.0)],
        page: lines(&[SEED]),
    };
    assert_answer(
        "10 of 1000 bytes, then EOF",
        status,
        text.as_bytes(),
        &expect,
    );
    gate.assert_counted(&before, &expect.counts).await;
    gate.assert_page(&expect.page).await;
    gate.assert_serving().await;
}

// ---------------------------------------------------------------------------
// Credentials and certificates
// ---------------------------------------------------------------------------

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

const TOKEN: &str = "9f8e7d6c5b4a3928-legacy-app";

/// Users `alice` (any role) and `scraper` (read only), and a token.
async fn guarded() -> Gate {
    let yaml = format!(
        "basic_auth_users:\n  alice: {}\n  scraper: {}\nauthorization_tokens:\n  legacy: {}\nroles:\n  scraper: [read]\n",
        bcrypt("wonderland"),
        bcrypt("scrape-me"),
        sha256_hex(TOKEN)
    );
    Gate::router_with_web_config(&yaml, &basic("alice", "wonderland")).await
}

/// A write with `authorization` (none when `None`) is refused with 401
/// and both challenges.
async fn refused_credentials(authorization: Option<&str>) {
    let gate = guarded().await;
    let mut req = write1(&[(GOOD, &[(7.0, 5000)])], &[]).anonymous();
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let a = gate
        .check(
            req,
            Expect {
                status: 401,
                says: "unauthorized: missing or invalid credentials",
                counts: vec![(requests("unauthorized"), 1.0)],
                page: lines(&[SEED]),
            },
        )
        .await;
    let challenges: Vec<&str> = a
        .headers
        .iter()
        .filter(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        challenges,
        ["Basic realm=\"promgate\"", "Bearer realm=\"promgate\""]
    );
}

#[tokio::test]
async fn missing_credentials() {
    refused_credentials(None).await;
}

#[tokio::test]
async fn wrong_password() {
    refused_credentials(Some(&basic("alice", "looking-glass"))).await;
}

#[tokio::test]
async fn unknown_user() {
    refused_credentials(Some(&basic("mallory", "wonderland"))).await;
}

#[tokio::test]
async fn unknown_bearer_token() {
    refused_credentials(Some("Bearer not-the-token")).await;
}

#[tokio::test]
async fn credentials_without_the_role() {
    let gate = guarded().await;
    gate.check(
        write1(&[(GOOD, &[(7.0, 5000)])], &[])
            .header("authorization", &basic("scraper", "scrape-me")),
        Expect {
            status: 403,
            says: "forbidden: these credentials do not have the write role",
            counts: vec![(requests("forbidden"), 1.0)],
            page: lines(&[SEED]),
        },
    )
    .await;
}

/// What a refused TLS client presents.
enum Presents {
    NoCertificate,
    UntrustedCertificate,
    PlainHttp,
}

/// A connection whose TLS handshake fails gets no HTTP answer at all; the
/// failure is counted and the next client is served.
async fn refused_handshake(presents: Presents) {
    let client_ca = Ca::new("client CA");
    let gate = Gate::tls(&client_ca, &client_ca.client("prometheus")).await;
    let Via::Tls { server_ca, .. } = &gate.via else {
        unreachable!()
    };
    let before = gate.counters().await;
    let addr = gate.addr();
    let rogue = Ca::new("rogue CA").client("prometheus");
    let client = match presents {
        Presents::NoCertificate => Some(https_client(server_ca, None)),
        Presents::UntrustedCertificate => Some(https_client(server_ca, Some(&rogue))),
        Presents::PlainHttp => None,
    };
    match client {
        Some(c) => {
            let got = c.get(addr, "/-/healthy", None).await;
            assert!(got.is_err(), "served: {got:?}");
        }
        None => {
            let got = tokio::task::spawn_blocking(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                out
            })
            .await
            .unwrap();
            assert!(
                !got.starts_with(b"HTTP/"),
                "{:?}",
                String::from_utf8_lossy(&got)
            );
        }
    }
    gate.assert_counted(
        &before,
        &[("promgate_tls_handshake_errors_total".into(), 1.0)],
    )
    .await;
    gate.assert_page(&lines(&[SEED])).await;
    gate.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_client_certificate() {
    refused_handshake(Presents::NoCertificate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_client_certificate() {
    refused_handshake(Presents::UntrustedCertificate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_on_the_tls_port() {
    refused_handshake(Presents::PlainHttp).await;
}

// ---------------------------------------------------------------------------
// The tables and this file agree
// ---------------------------------------------------------------------------

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The rows of the first table under `heading` (cells trimmed, header and
/// separator left out).
fn table<'a>(doc: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} missing"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

/// Every function of `source` by name, with its text.
fn functions(source: &str) -> BTreeMap<&str, &str> {
    let mut out = BTreeMap::new();
    for (at, _) in source.match_indices("fn ") {
        let rest = &source[at + 3..];
        let Some(end) = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')) else {
            continue;
        };
        let body_end = rest.find("\n}\n").map_or(rest.len(), |e| e + 3);
        out.insert(&rest[..end], &rest[..body_end]);
    }
    out
}

/// The test functions of `source` (under `#[test]` or `#[tokio::test…]`).
fn tests(source: &str) -> Vec<&str> {
    let lines: Vec<&str> = source.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with("#[test]") || w[0].starts_with("#[tokio::test"))
        .filter_map(|w| {
            let rest = w[1].split("fn ").nth(1)?;
            rest.split('(').next()
        })
        .collect()
}

/// The counters a row's *counted in* cell names: (family, reason or "").
fn counted(cell: &str) -> Vec<(&str, &str)> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| *t != "—")
        .map(|t| match t.split_once('{') {
            Some((family, reason)) => (family, reason.trim_end_matches('}')),
            None => (t, ""),
        })
        .collect()
}

/// The README's Errors table and this file hold each other: every row
/// names a test here, whose code (with the helpers it calls) checks the
/// row's status and counters; every test here is some row's; and every
/// reason promgate counts has a row.
#[test]
fn the_readme_table_names_these_tests() {
    let readme = read("README.md");
    let source = read("tests/bad_input.rs");
    let fns = functions(&source);
    let tests = tests(&source);
    let rows = table(&readme, "\n## Errors\n");
    assert!(rows.len() > 50, "{} rows", rows.len());
    let reasons: BTreeMap<&str, Vec<&str>> = [
        ("requests_rejected", promgate::http::Error::REASONS.to_vec()),
        (
            "series_rejected",
            promgate::model::RejectReason::ALL
                .map(|r| r.as_str())
                .to_vec(),
        ),
        (
            "samples_rejected",
            promgate::model::RejectReason::ALL
                .map(|r| r.as_str())
                .to_vec(),
        ),
        (
            "connections_closed",
            promgate::self_metrics::SelfMetrics::CONNECTION_CLOSE_REASONS.to_vec(),
        ),
        ("samples_out_of_order", vec![""]),
        ("series_stale_removed", vec![""]),
        ("tls_handshake_errors", vec![""]),
        ("connections_limit_reached", vec![""]),
    ]
    .into();
    let mut named = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for row in &rows {
        assert_eq!(row.len(), 7, "{row:?}");
        let test = row[6].trim_matches('`');
        assert!(
            tests.contains(&test),
            "no test {test:?} in tests/bad_input.rs"
        );
        named.push(test);
        // The test's code and that of the helpers it calls.
        let own = fns[test];
        let code: String = std::iter::once(own)
            .chain(
                fns.iter()
                    .filter(|(name, _)| **name != test && own.contains(&format!("{name}(")))
                    .map(|(_, body)| *body),
            )
            .collect();
        let status = row[1].split_whitespace().next().unwrap();
        if status.parse::<u16>().is_ok() {
            assert!(
                code.contains(&format!("status: {status}")),
                "{test} does not check status {status}"
            );
        }
        for (family, reason) in counted(row[3]) {
            let known = reasons
                .get(family)
                .unwrap_or_else(|| panic!("{test}: unknown counter {family}"));
            assert!(
                known.contains(&reason),
                "{test}: no reason {family}{{{reason}}}"
            );
            let checked = if reason.is_empty() {
                format!("promgate_{family}_total")
            } else {
                format!("\"{reason}\"")
            };
            assert!(
                code.contains(&checked),
                "{test} does not check {family}{{{reason}}}"
            );
            covered.insert((family, reason));
        }
    }
    for test in tests.iter().filter(|t| !t.starts_with("the_")) {
        assert!(
            named.contains(test),
            "{test} is in no row of the README table"
        );
    }
    // Samples are refused with their series: the series' reason is the row.
    for (family, all) in reasons.iter().filter(|(f, _)| **f != "samples_rejected") {
        for reason in all {
            // No input provokes it: the OS refuses a thread.
            if *reason == "render_unavailable" {
                continue;
            }
            assert!(
                covered.contains(&(*family, *reason)),
                "no row counts {family}{{{reason}}}"
            );
        }
    }
}

/// ARCHITECTURE.md's error → status table names real reasons, each with
/// the status the README's rows (and their tests) give it.
#[test]
fn the_architecture_table_agrees_with_the_readme() {
    let readme = read("README.md");
    let rows = table(&readme, "\n## Errors\n");
    let architecture = read("ARCHITECTURE.md");
    for row in table(&architecture, "### Error → status") {
        let status = &row[1][..3];
        for reason in row[2].split('`').skip(1).step_by(2) {
            assert!(
                promgate::http::Error::REASONS.contains(&reason),
                "ARCHITECTURE.md names {reason:?}, which is no reason"
            );
            if reason == "render_unavailable" {
                continue;
            }
            let statuses: Vec<&str> = rows
                .iter()
                .filter(|r| {
                    counted(r[3]).iter().any(|(f, x)| {
                        *x == reason && (*f == "requests_rejected" || *f == "series_rejected")
                    })
                })
                .map(|r| &r[1][..3])
                .collect();
            assert!(
                !statuses.is_empty() && statuses.iter().all(|s| s == &status),
                "{reason}: {status} in ARCHITECTURE.md, {statuses:?} in the README"
            );
        }
    }
}
