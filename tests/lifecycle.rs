//! The real binary: TTL expiry by the background sweep, graceful shutdown on
//! SIGTERM with a request in flight, and the self-metrics page.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn push(addr: std::net::SocketAddr, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn series_expire_in_the_background_without_scrapes() {
    let (_p, addr) = spawn_promgate(&["--series.ttl", "1s"]);
    let body = snappy(&request(
        &[(&[("__name__", "short_lived")], &[(1.0, 1)])],
        &[],
    ));
    assert!(push(addr, &body).starts_with("HTTP/1.1 204"));
    assert!(http_get(addr, "/-/metrics").contains("promgate_live_series 1\n"));
    // No /metrics scrape happens: only the sweeper can bring the count down.
    let start = Instant::now();
    loop {
        let page = http_get(addr, "/-/metrics");
        if page.contains("promgate_live_series 0\n") {
            assert!(page.contains("promgate_series_expired_total 1\n"), "{page}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "series never expired:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = http_get(addr, "/metrics");
    assert!(!page.contains("short_lived"), "{page}");
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_zero() {
    let (mut p, addr) = spawn_promgate(&[]);
    let body = snappy(&request(
        &[(&[("__name__", "last_words")], &[(1.0, 1)])],
        &[],
    ));
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = p.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused once shutdown has begun.
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after SIGTERM"
    );
    s.write_all(&body[body.len() / 2..]).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let status = p.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn self_metrics_page_is_valid_and_names_every_family() {
    let (_p, addr) = spawn_promgate(&[]);
    // Labelled families are shown once they have a child: make one of each.
    let good = snappy(&request(&[(&[("__name__", "m")], &[(1.0, 1)])], &[]));
    assert!(push(addr, &good).starts_with("HTTP/1.1 204"));
    assert!(push(addr, b"garbage").starts_with("HTTP/1.1 400"));
    let page = http_get(addr, "/-/metrics");
    let body = page.split("\r\n\r\n").nth(1).unwrap();
    for family in [
        "promgate_http_requests counter",
        "promgate_http_request_duration_seconds histogram",
        "promgate_requests_rejected counter",
        "promgate_samples_received counter",
        "promgate_series_received counter",
        "promgate_samples_rejected counter",
        "promgate_series_rejected counter",
        "promgate_live_series gauge",
        "promgate_series_expired counter",
        "promgate_received_bytes counter",
    ] {
        assert!(
            body.contains(&format!("# TYPE {family}\n")),
            "{family} missing:\n{page}"
        );
    }
    // Every rejection reason is exposed from the start, at zero.
    assert!(
        body.contains("promgate_series_rejected_total{reason=\"series_limit\"} 0\n"),
        "{body}"
    );
    assert!(body.contains("# EOF"));
}

/// Every flag can come from its `PROMGATE_…` variable, and `--log.format
/// json` writes one JSON object per line.
#[test]
fn environment_variables_and_json_logs() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_promgate"))
        .env("PROMGATE_WEB_LISTEN_ADDRESS", "127.0.0.1:0")
        .env("PROMGATE_LOG_FORMAT", "json")
        .env("PROMGATE_EXPOSITION_TIMESTAMPS", "none")
        .env("PROMGATE_LIMITS_SERIES", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut p = Proc {
        child,
        name: "promgate".into(),
    };
    let first = std::io::BufReader::new(stderr)
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let log: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert_eq!(log["fields"]["message"], "promgate listening", "{first}");
    // The policy the environment set, as `--exposition.timestamps` spells it.
    assert_eq!(log["fields"]["timestamps"], "none", "{first}");
    let addr: std::net::SocketAddr = log["fields"]["address"].as_str().unwrap().parse().unwrap();

    let body = snappy(&request(
        &[
            (&[("__name__", "one")], &[(1.0, 1234)]),
            (&[("__name__", "two")], &[(2.0, 1234)]),
        ],
        &[],
    ));
    let answer = push(addr, &body);
    // PROMGATE_LIMITS_SERIES=1: the second series is refused.
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("limit of 1 live series"), "{answer}");
    let page = http_get(addr, "/metrics");
    // PROMGATE_EXPOSITION_TIMESTAMPS=none: no timestamp on the sample.
    assert!(page.contains("\none 1\n"), "{page}");
    assert!(!page.contains("1234"), "{page}");
    assert!(
        Command::new("kill")
            .args(["-TERM", &p.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(p.child.wait().unwrap().code(), Some(0));
}

/// The log lines of a promgate started with exactly `env` (and a free
/// port, JSON logs at debug), up to and including "promgate listening";
/// the process is stopped.
fn start_up_log(env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let (mut p, entries) = json_debug_promgate(env);
    let mut log = Vec::new();
    for entry in entries {
        let listening = entry["fields"]["message"] == "promgate listening";
        log.push(entry);
        if listening {
            break;
        }
    }
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    log
}

/// A promgate started with exactly `env`, a free port and JSON logs at
/// debug; and its log entries as they come (they end when it stops).
fn json_debug_promgate(
    env: &[(&str, &str)],
) -> (Proc, impl Iterator<Item = serde_json::Value> + use<>) {
    use std::io::BufRead;
    let child = Command::new(env!("CARGO_BIN_EXE_promgate"))
        .env_clear()
        .envs(env.iter().copied())
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .args(["--log.level", "debug"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut p = Proc {
        child,
        name: "promgate".into(),
    };
    let entries = std::io::BufReader::new(p.child.stderr.take().unwrap())
        .lines()
        .map(|line| {
            let line = line.unwrap();
            serde_json::from_str::<serde_json::Value>(&line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
        });
    (p, entries)
}

/// glibc malloc's thresholds are set at start-up, and left to the operator
/// when the environment sets glibc malloc parameters (the README's
/// troubleshooting entry on RSS).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn malloc_thresholds_are_set_unless_the_environment_sets_them() {
    let said = |log: &[serde_json::Value], message: &str| {
        log.iter()
            .find(|e| e["fields"]["message"] == message)
            .map(|e| e["fields"].clone())
    };
    let tuned = "glibc malloc thresholds set";
    let left = "glibc malloc settings from the environment, left as they are";

    let log = start_up_log(&[]);
    let fields = said(&log, tuned).unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(fields["mmap_threshold"], 32 << 20, "{fields}");
    assert_eq!(fields["trim_threshold"], 64 << 20, "{fields}");
    assert_eq!(fields["top_pad"], 64 << 20, "{fields}");
    assert!(said(&log, left).is_none(), "{log:?}");

    for env in [
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=4194304"),
        ("MALLOC_TRIM_THRESHOLD_", "4194304"),
        ("MALLOC_ARENA_MAX", "2"),
    ] {
        let log = start_up_log(&[env]);
        assert!(said(&log, left).is_some(), "{env:?}: {log:?}");
        assert!(said(&log, tuned).is_none(), "{env:?}: {log:?}");
    }
    // Tunables of something else than malloc are not a malloc choice.
    let log = start_up_log(&[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")]);
    assert!(said(&log, tuned).is_some(), "{log:?}");
}

/// The arena heaps of promgate's threads are writable whole from their
/// creation (the top pad), not grown an `mprotect` per page as they fill:
/// after a push of 20k series, no heap in `/proc/<pid>/maps` has its
/// writable start followed by the unwritable rest of its 64 MiB
/// reservation, as one does when the environment leaves glibc's pad at
/// its default.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
#[test]
fn thread_heaps_are_writable_whole_from_their_creation() {
    const HEAP: u64 = 64 << 20;
    // Each heap glibc gave a thread that it has only partly made writable.
    let partly_writable = |env: &[(&str, &str)]| -> Vec<String> {
        let (p, addr) = spawn_promgate_env(&[], env);
        let body: String = (0..20_000)
            .map(|i| format!("heap_test{{series=\"{i}\"}} {i}\n"))
            .collect();
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "PUT /metrics/job/heaps HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", p.child.id())).unwrap();
        // (start, end, permissions) of the anonymous mappings.
        let anonymous: Vec<(u64, u64, String)> = maps
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (start, end) = f[0].split_once('-')?;
                let start = u64::from_str_radix(start, 16).ok()?;
                let end = u64::from_str_radix(end, 16).ok()?;
                (f.len() == 5).then(|| (start, end, f[1].to_string()))
            })
            .collect();
        anonymous
            .windows(2)
            .filter(|w| {
                let ((start, end, perms), (next_start, next_end, next_perms)) = (&w[0], &w[1]);
                start % HEAP == 0
                    && perms == "rw-p"
                    && next_start == end
                    && next_perms == "---p"
                    && *next_end == start + HEAP
            })
            .map(|w| format!("{:x}-{:x}", w[0].0, w[0].1))
            .collect()
    };
    assert_eq!(partly_writable(&[]), Vec::<String>::new());
    // The check finds them where glibc grows heaps a page at a time.
    assert!(!partly_writable(&[("MALLOC_TOP_PAD_", "131072")]).is_empty());
}

/// Metadata arrives in requests of its own, once a minute by default in
/// Prometheus; with a TTL shorter than that, HELP and TYPE must stay while
/// the family's series are updated, and go once they expire.
#[test]
fn metadata_lives_as_long_as_its_series() {
    let (_p, addr) = spawn_promgate(&["--series.ttl", "1s"]);
    let metadata = snappy(&request(
        &[],
        &[
            ("req_total", MetricType::Counter, "Requests."),
            ("lat", MetricType::Histogram, "Latency."),
        ],
    ));
    assert!(push(addr, &metadata).starts_with("HTTP/1.1 204"));
    // Samples every 250 ms for 2.5 s, twice the TTL past the metadata.
    for i in 1..=10 {
        let t = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let v = f64::from(i);
        let body = snappy(&request(
            &[
                (&[("__name__", "req_total")], &[(v, t)]),
                (&[("__name__", "lat_bucket"), ("le", "+Inf")], &[(v, t)]),
                (&[("__name__", "lat_count")], &[(v, t)]),
                (&[("__name__", "lat_sum")], &[(v, t)]),
            ],
            &[],
        ));
        assert!(push(addr, &body).starts_with("HTTP/1.1 204"));
        let page = http_get(addr, "/metrics");
        assert!(
            page.contains("# TYPE req_total counter\n") && page.contains("# TYPE lat histogram\n"),
            "after {} ms:\n{page}",
            i * 250
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Then no more samples: series and metadata leave together.
    let start = Instant::now();
    loop {
        let page = http_get(addr, "/-/metrics");
        if page.contains("promgate_live_series 0\n")
            && page.contains("promgate_metadata_families 0\n")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never expired:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client that stalls mid-request must not keep promgate alive after
/// SIGTERM: past `--web.shutdown-timeout` it exits anyway, with 0.
#[test]
fn a_stalled_client_cannot_hold_shutdown_past_its_timeout() {
    let (mut p, addr) = spawn_promgate(&["--web.shutdown-timeout", "1s"]);
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: 1000\r\n\r\nhalf"
    )
    .unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &p.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM with a 1 s shutdown timeout"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "it did wait for the request"
    );
    drop(s);
}

/// Whether the server closed `s` within `within` (a read returns end of
/// stream or an error rather than timing out).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or a 400 before the close is fine; keep reading.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Slow or idle clients cannot hold connections (and so file descriptors)
/// for ever: a request head must arrive within --web.read-header-timeout,
/// idle keep-alive connections included.
#[test]
fn idle_and_stalled_connections_are_closed() {
    let (_p, addr) = spawn_promgate(&["--web.read-header-timeout", "1s"]);
    let mut idle = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    write!(half, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut kept = TcpStream::connect(addr).unwrap();
    write!(kept, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = [0u8; 64];
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = kept.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    for (what, s) in [
        ("idle", &mut idle),
        ("half a head", &mut half),
        ("kept alive", &mut kept),
    ] {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "{what}: still open"
        );
    }
    // And the server still serves.
    assert!(http_get(addr, "/-/healthy").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_body_that_never_finishes_gets_408() {
    let (_p, addr) = spawn_promgate(&["--web.read-timeout", "1s"]);
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: 1000\r\n\r\nten bytes."
    )
    .unwrap();
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("request body not received within 1s"),
        "{answer}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    let metrics = http_get(addr, "/-/metrics");
    assert!(
        metrics.contains("promgate_requests_rejected_total{reason=\"body_timeout\"} 1"),
        "{metrics}"
    );
}

/// A scraper that stops reading holds its render slot only until
/// --web.write-timeout: then the page is cut off and another scrape gets in.
#[test]
fn a_scraper_that_stops_reading_loses_its_slot() {
    let (_p, addr) = spawn_promgate(&[
        "--web.write-timeout",
        "1s",
        "--exposition.max-concurrent-scrapes",
        "1",
        "--exposition.max-queue-duration",
        "100ms",
    ]);
    // A page of ~12 MB: more than the channel and both sockets' buffers hold.
    let hosts: Vec<String> = (0..60_000)
        .map(|i| format!("host-{i:06}-{}", "x".repeat(100)))
        .collect();
    for chunk in hosts.chunks(5000) {
        let labels: Vec<[(&str, &str); 2]> = chunk
            .iter()
            .map(|h| [("__name__", "node_load1"), ("instance", h.as_str())])
            .collect();
        let series: Vec<Series> = labels.iter().map(|l| (&l[..], &[(0.5, 10)][..])).collect();
        assert!(push(addr, &snappy(&request(&series, &[]))).starts_with("HTTP/1.1 204"));
    }
    let live = http_get(addr, "/-/metrics");
    assert!(live.contains("promgate_live_series 60000\n"), "{live}");
    let mut stalled = TcpStream::connect(addr).unwrap();
    write!(stalled, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = http_get(addr, "/metrics");
    assert!(
        second.starts_with("HTTP/1.1 503"),
        "the slot is taken: {} ({} bytes)",
        second.lines().next().unwrap_or(""),
        second.len()
    );
    let start = Instant::now();
    loop {
        let answer = http_get(addr, "/metrics");
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the stalled scraper kept the slot: {}",
            answer.lines().next().unwrap_or("")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stalled);
}

/// Clients that send a request head and then stall their bodies hold
/// connections, not write slots: with more of them than there are slots,
/// writers that send their bodies are still served at once (a write slot
/// is taken once the body has arrived).
#[test]
fn stalled_bodies_hold_no_write_slot() {
    let (_p, addr) = spawn_promgate(&[
        "--limits.concurrent-writes",
        "1",
        "--limits.write-queue-duration",
        "1s",
        "--web.read-timeout",
        "60s",
    ]);
    let stalled: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(
                s,
                "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: 1000\r\n\r\nten bytes."
            )
            .unwrap();
            s
        })
        .collect();
    // Connections are accepted in order: by the time a request sent after
    // the stalled ones is answered, theirs have been accepted too.
    assert!(http_get(addr, "/-/healthy").starts_with("HTTP/1.1 200"));
    for i in 0..5 {
        let labels = [("__name__", "written"), ("writer", &*i.to_string())];
        let body = snappy(&request(&[(&labels, &[(1.0, 5000)])], &[]));
        let answer = push(addr, &body);
        assert!(answer.starts_with("HTTP/1.1 204"), "write {i}: {answer}");
    }
    let page = http_get(addr, "/metrics");
    for i in 0..5 {
        let line = format!("written{{writer=\"{i}\"}} 1 5000");
        assert!(page.contains(&line), "{line} not in {page}");
    }
    let metrics = http_get(addr, "/-/metrics");
    assert!(
        metrics.contains("promgate_requests_rejected_total{reason=\"too_many_writes\"} 0"),
        "{metrics}"
    );
    drop(stalled);
}

/// The README's troubleshooting promise: a rejected write is logged at
/// debug level, with the reason its counter has.
#[test]
fn a_rejected_write_is_logged_at_debug_level_with_its_reason() {
    let (mut p, mut entries) = json_debug_promgate(&[]);
    let addr: std::net::SocketAddr = entries
        .find(|e| e["fields"]["message"] == "promgate listening")
        .expect("a listening line")["fields"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let answer = push(addr, b"not snappy at all");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // Stopped before the rest is read: the log then ends, whatever it holds.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let rejected: Vec<serde_json::Value> = entries
        .filter(|e| e["fields"]["message"] == "remote-write request rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["level"], "DEBUG", "{rejected:?}");
    assert_eq!(
        rejected[0]["fields"]["reason"], "malformed_compression",
        "{rejected:?}"
    );
}
