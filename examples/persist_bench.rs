//! Measures `--persistence.file`: snapshot time and size (zstd against a raw
//! body), load time, the store's write latency while snapshots run against
//! without, and the real binary's time from start to ready on the snapshot.
//!
//!   persist_bench SERIES DIR [PROMGATE_BINARY]
//!
//! Builds a store of SERIES series shaped like the mock exporter's families
//! (bench/shapes.rs, contiguous), then, all in one run so the figures can
//! be set side by side:
//! - writes a snapshot with a zstd body and one with a raw body, twice each,
//!   alternating, each to a file in DIR and fsynced: wall and on-CPU time,
//!   bytes;
//! - loads the zstd one (`persist::load`: read, checksum, decode, apply);
//! - applies update requests of 500 series, paced at one every 5 ms (100k
//!   samples/s), for 8 s without a snapshot, then 8 s with snapshots
//!   written back to back on another thread at normal priority, then 8 s
//!   with that thread at nice 10 (as page renders run; snapshots do not),
//!   twice: p50, p99 and max of the time each request's apply took;
//! - with PROMGATE_BINARY, starts it on the snapshot three times and times
//!   from the start of the process to its first `200` on `/-/ready`.
//!
//! Every loop is bounded in count and time; the binary listens on 127.0.0.1.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use prost::Message;

use promgate::config::Config;
use promgate::ingest;
use promgate::model::WriteBatch;
use promgate::store::persist::{self, LoadOptions};
use promgate::store::{Store, StoreLimits};

#[path = "../bench/shapes.rs"]
mod shapes;
use shapes::{Generator, Shape};

const PER_REQUEST: usize = 500;
const LIMITS: StoreLimits = StoreLimits {
    max_series: 100_000_000,
    max_metadata: 100_000,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: persist_bench SERIES DIR [PROMGATE_BINARY]";
    let series: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{usage}"));
    let dir = Path::new(args.get(2).unwrap_or_else(|| panic!("{usage}")));
    let binary = args.get(3);

    let rules = Config::default().decode_limits().rules(ingest::now_ms());
    let mut generator = Generator::new(Shape::Contiguous, series, PER_REQUEST);
    let now_ms = ingest::now_ms();
    let decode = |generator: &mut Generator, round: usize| -> Vec<WriteBatch> {
        generator
            .requests(round, round, now_ms - 60_000 + round as i64 * 15_000)
            .iter()
            .map(|req| ingest::v1::decode(&req.encode_to_vec(), &rules).unwrap())
            .collect()
    };
    let create = decode(&mut generator, 0);
    let updates = decode(&mut generator, 1);
    let store = Store::new(LIMITS);
    for b in &create {
        store.apply(b);
    }
    drop(create);
    let key_bytes: usize = updates.iter().map(|b| b.keys.len()).sum();
    println!(
        "store: {} series, keys average {} bytes",
        store.live_series(),
        key_bytes / series.max(1)
    );

    // Snapshot time and size, zstd against raw.
    for rep in 0..2 {
        for compress in [true, false] {
            let path = dir.join(if compress { "snap.zst" } else { "snap.raw" });
            let (t, cpu) = (Instant::now(), cpu_ns());
            let file = File::create(&path).unwrap();
            let mut out = BufWriter::with_capacity(1 << 20, file);
            store
                .write_snapshot(&mut out, SystemTime::now(), compress)
                .unwrap();
            let file = out.into_inner().unwrap();
            file.sync_all().unwrap();
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_ns().saturating_sub(cpu) as f64 / 1e9;
            let bytes = file.metadata().unwrap().len();
            println!(
                "snapshot rep {rep} {}: {:.2} s wall, {:.2} s on-CPU, {:.1} MiB ({:.0} bytes/series)",
                if compress { "zstd" } else { "raw " },
                secs,
                cpu,
                bytes as f64 / (1 << 20) as f64,
                bytes as f64 / series as f64
            );
        }
    }
    let snap = dir.join("snap");
    let t = Instant::now();
    let report = store.save_snapshot(&snap).unwrap();
    println!(
        "save_snapshot (atomic, the binary's path): {:.2} s, {} series, {} bytes",
        t.elapsed().as_secs_f64(),
        report.series,
        report.bytes
    );
    let t = Instant::now();
    let opts = LoadOptions {
        limits: LIMITS,
        series_ttl: None,
        push_ttl: None,
        now: SystemTime::now(),
    };
    let (loaded, report) = persist::load(&snap, &opts).unwrap().unwrap();
    println!(
        "load: {:.2} s, {} series",
        t.elapsed().as_secs_f64(),
        report.series
    );
    drop(loaded);

    // Write latency with and without snapshots running.
    for rep in 0..2 {
        for (snapshots, nice) in [(false, false), (true, false), (true, true)] {
            let stop = AtomicBool::new(false);
            let (latencies, taken) = std::thread::scope(|scope| {
                let snapshotter = scope.spawn(|| {
                    // What the binary does not do, to show why: a snapshot
                    // at nice 10 is preempted while it holds a shard lock.
                    #[cfg(target_os = "linux")]
                    if nice {
                        // SAFETY: plain integers in and out, no memory of ours.
                        unsafe {
                            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10)
                        };
                    }
                    let mut taken = 0;
                    while snapshots && !stop.load(Ordering::Relaxed) {
                        if std::env::var_os("SCAN_ONLY").is_some() {
                            let mut n = 0usize;
                            for m in store.metrics() {
                                let mut parts = m.parts();
                                while parts.visit_next(|r| n += r.key.len()) {}
                            }
                            std::hint::black_box(n);
                        } else {
                            store.save_snapshot(&snap).unwrap();
                        }
                        taken += 1;
                    }
                    taken
                });
                let latencies = paced_writes(&store, &updates, Duration::from_secs(8));
                stop.store(true, Ordering::Relaxed);
                (latencies, snapshotter.join().unwrap())
            });
            let (p50, p99, max) = percentiles(latencies.clone());
            println!(
                "writes rep {rep} {}: {} requests, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                if snapshots {
                    format!(
                        "with snapshots ({taken} taken{})",
                        if nice { ", nice 10" } else { "" }
                    )
                } else {
                    "without snapshots".to_string()
                },
                latencies.len(),
                p50,
                p99,
                max
            );
        }
    }

    if let Some(binary) = binary {
        for rep in 0..3 {
            let secs = start_to_ready(binary, &snap);
            println!("start to ready on {series} persisted series, rep {rep}: {secs:.2} s");
        }
    }
}

/// Applies `updates` in a loop, one every 5 ms, for `length`; each apply's
/// time in milliseconds.
fn paced_writes(store: &Store, updates: &[WriteBatch], length: Duration) -> Vec<f64> {
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut next = start;
    for b in updates.iter().cycle() {
        if start.elapsed() > length {
            break;
        }
        let t = Instant::now();
        store.apply(b);
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        next += Duration::from_millis(5);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    latencies
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99), at(1.0))
}

/// Starts `binary` on `snapshot` and times until `/-/ready` answers 200.
fn start_to_ready(binary: &str, snapshot: &Path) -> f64 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let mut child = std::process::Command::new(binary)
        .args([
            "--web.listen-address",
            &address,
            "--persistence.file",
            snapshot.to_str().unwrap(),
            "--persistence.interval",
            "0",
            "--limits.series",
            "100000000",
            "--log.level",
            "warn",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = None;
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(mut s) = std::net::TcpStream::connect(&address) {
            let _ = write!(
                s,
                "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                ready = Some(start.elapsed().as_secs_f64());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL: the shutdown snapshot would rewrite the file being measured.
    let _ = child.kill();
    let _ = child.wait();
    ready.expect("ready within 120 s")
}

/// Nanoseconds this thread has run on a CPU (Linux's schedstat).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
