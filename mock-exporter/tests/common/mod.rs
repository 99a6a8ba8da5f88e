//! Shared test helpers: the in-process router, the real mock-exporter binary,
//! and promtool as the judge of the page.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// GETs `path`; returns status and body text.
pub async fn get(app: &Router, path: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8(bytes.to_vec()).expect("UTF-8 page"),
    )
}

/// The path of a program the tests need; fails loudly when it is missing.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed: run ./scripts/test, which installs the Debian packages the tests need"
    );
}

/// Runs `promtool check metrics` on `page`; returns (exit code, stderr).
/// Exit 0 is clean, 3 means lint findings only, 1 means the page did not parse.
pub fn promtool_check(page: &str) -> (i32, String) {
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

/// A child process killed (and reaped) when dropped, so every test stops what it starts.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real mock-exporter binary on `127.0.0.1:0` and reads the
/// address the kernel chose from its `mock-exporter listening` log line.
pub fn spawn_mock_exporter(extra: &[&str]) -> (Proc, SocketAddr) {
    let program = env!("CARGO_BIN_EXE_mock-exporter");
    let mut child = Command::new(program)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let stderr = child.stderr.take().unwrap();
    // Read the log on a thread, so that an exporter that never logs its
    // address fails the test after a timeout instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("address=").nth(1)
                && line.contains("mock-exporter listening")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(rest.split_whitespace().next().unwrap().to_string());
            }
            // Keep draining, so that the exporter never blocks on a full pipe.
        }
    });
    let proc = Proc { child };
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{program} did not log its listening address within 30s"));
    (proc, addr.parse().unwrap())
}
