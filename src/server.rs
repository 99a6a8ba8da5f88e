//! Start-up, background tasks and the shutdown order.
//!
//! [`run`] owns the process's life: it builds the state, binds, starts the
//! background tasks, serves until SIGINT or SIGTERM, then stops in order:
//! stop accepting and let in-flight requests (and streaming pages) finish,
//! for at most `--web.shutdown-timeout`, then stop the background tasks,
//! then (with `--persistence.file`) write a last snapshot, and exit.
//!
//! With `--persistence.file`, the snapshot is loaded before the listener is
//! bound, so nothing is served from a half-loaded store; a file that cannot
//! be loaded is moved aside and promgate starts empty (never a crash loop).
//! Snapshots are written on a thread of their own, one at a time, every
//! `--persistence.interval`; a failed one is logged with its cause and
//! counted, and promgate keeps serving.
//!
//! Connections are served by hyper's HTTP/1 server directly rather than
//! `axum::serve`, which cannot bound how long a client may take to send its
//! headers: a connection that has not sent a complete request head within
//! `--web.read-header-timeout` (idle keep-alive connections included) is
//! closed, so stalled or idle clients cannot hold every file descriptor;
//! and at most `--web.max-connections` are open at once (beyond, the loop
//! stops accepting until one closes), so their number bounds the memory
//! connections take.
//!
//! With a `tls_server_config` in `--web.config.file`, the listener speaks
//! TLS only: each accepted connection's handshake runs in the connection's
//! own task (so a slow client never holds up the accept loop), within the
//! same `--web.read-header-timeout`, using the rustls configuration of the
//! web config in force when the connection arrived (certificates and client
//! CAs reloaded from disk apply to new connections). Access control itself
//! is the HTTP layer's (`http::router`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::Config;
use crate::http::{AppState, router};
use crate::self_metrics::{ReasonLabels, ResultLabels, SelfMetrics};
use crate::store::{Store, persist};
use crate::web_config::WebConfigHandle;

/// The sweep period when series never expire: names emptied by stale
/// markers are still removed, and nothing else is due.
const IDLE_SWEEP: Duration = Duration::from_secs(15);

/// Serves `config` until a shutdown signal, then stops in order.
///
/// # Errors
///
/// The web config is invalid (kind `InvalidInput`), the listen address
/// cannot be bound, or the server fails while serving.
pub async fn run(config: &Config) -> io::Result<()> {
    let mut state =
        AppState::load(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let persistence = match config.persistence_file() {
        Some(path) => {
            let store = restore(config, path, &state.metrics).await;
            if let Some(store) = store {
                state.store = Arc::new(store);
            }
            Some(Persistence {
                path: path.to_path_buf(),
                store: Arc::clone(&state.store),
                metrics: Arc::clone(&state.metrics),
                one_at_a_time: Arc::default(),
            })
        }
        None => None,
    };
    let listener = TcpListener::bind(config.listen_address).await?;
    let address = listener.local_addr().unwrap_or(config.listen_address);
    log_start(config, address, state.web_config.as_deref());
    let sweeper = spawn_sweeper(&state, config.ttl());
    let snapshots = persistence.as_ref().and_then(|p| {
        let interval = config.persistence_interval()?;
        let p = p.clone();
        Some(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                p.snapshot("interval").await;
            }
        }))
    });
    let watcher = state.web_config.as_ref().map(|web| {
        let interval = Some(config.web_config_reload_interval).filter(|d| !d.is_zero());
        web.spawn_watcher(interval)
    });
    // Whether the listener speaks TLS is fixed here; the certificates and
    // policies are taken from the config in force at each handshake.
    let tls = state
        .web_config
        .as_ref()
        .filter(|web| web.current().tls.is_some())
        .map(|web| Tls {
            web: Arc::clone(web),
            metrics: Arc::clone(&state.metrics),
        });

    let signalled = Arc::new(tokio::sync::Notify::new());
    let signal = {
        let signalled = Arc::clone(&signalled);
        async move {
            shutdown_signal().await;
            signalled.notify_one();
        }
    };
    let limits = ConnectionLimits {
        max_connections: config.max_connections as usize,
        read_header_timeout: Some(config.read_header_timeout).filter(|d| !d.is_zero()),
        write_timeout: Some(config.write_timeout).filter(|d| !d.is_zero()),
    };
    let metrics = Arc::clone(&state.metrics);
    let served = serve(listener, router(state), metrics, limits, tls, signal);
    // A client that stalls (half a request, a page it never reads) must not
    // keep the process alive for ever once it was told to stop.
    let grace = config.shutdown_timeout;
    let deadline = async {
        signalled.notified().await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        () = served => Ok(()),
        () = deadline => {
            tracing::warn!(
                timeout = %humantime::format_duration(grace),
                "connections still open after the shutdown timeout; closing them"
            );
            Ok(())
        }
    };
    // Requests have finished (or been cut off): nothing writes to the store now.
    sweeper.abort();
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    if let Some(snapshots) = snapshots {
        snapshots.abort();
    }
    if let Some(p) = persistence {
        // Waits for a periodic snapshot still being written, then writes
        // the store as the last request left it.
        p.snapshot("shutdown").await;
    }
    result
}

/// Snapshots of the store to `--persistence.file`.
#[derive(Clone)]
struct Persistence {
    path: std::path::PathBuf,
    store: Arc<Store>,
    metrics: Arc<SelfMetrics>,
    /// Held while a snapshot is written: two would share the temporary file.
    one_at_a_time: Arc<std::sync::Mutex<()>>,
}

impl Persistence {
    /// Writes a snapshot on a thread of its own (file I/O and the encoding
    /// of every series never run on the runtime's threads), counts and logs
    /// the outcome; `why` goes into the log.
    async fn snapshot(&self, why: &'static str) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (store, path, lock) = (
            Arc::clone(&self.store),
            self.path.clone(),
            Arc::clone(&self.one_at_a_time),
        );
        // Unlike a page render, a snapshot runs at normal priority: at nice
        // 10 it is preempted while it holds a shard's read lock, and the
        // writers of that shard wait longer (examples/persist_bench.rs;
        // README, Performance).
        let spawned = std::thread::Builder::new()
            .name("promgate-snapshot".into())
            .spawn(move || {
                let _one = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let start = std::time::Instant::now();
                let saved = store.save_snapshot(&path);
                let _ = tx.send((saved, start.elapsed()));
            });
        let outcome = match spawned {
            Ok(_) => rx
                .await
                .map_err(|_| "the snapshot thread panicked".to_string()),
            Err(e) => Err(format!("cannot start the snapshot thread: {e}")),
        };
        let m = &self.metrics;
        let result = |result| ResultLabels { result };
        match outcome {
            Ok((Ok(report), took)) => {
                m.persistence_snapshots
                    .get_or_create(&result("success"))
                    .inc();
                m.persistence_snapshot_duration.observe(took.as_secs_f64());
                m.persistence_snapshot_bytes.set(report.bytes as i64);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                m.persistence_last_success.set(now as i64);
                macro_rules! written {
                    ($level:expr) => {
                        tracing::event!(
                            $level,
                            file = %self.path.display(),
                            why,
                            series = report.series,
                            groups = report.groups,
                            bytes = report.bytes,
                            took = ?took,
                            "snapshot written"
                        )
                    };
                }
                // Every interval at debug; the one at shutdown, which the
                // next start loads, at info.
                if why == "shutdown" {
                    written!(tracing::Level::INFO);
                } else {
                    written!(tracing::Level::DEBUG);
                }
            }
            Ok((Err(e), took)) => {
                m.persistence_snapshots
                    .get_or_create(&result("failure"))
                    .inc();
                m.persistence_snapshot_duration.observe(took.as_secs_f64());
                tracing::error!(why, error = %e, "snapshot failed; the last good file is kept");
            }
            Err(e) => {
                m.persistence_snapshots
                    .get_or_create(&result("failure"))
                    .inc();
                tracing::error!(why, file = %self.path.display(), error = %e, "snapshot failed; the last good file is kept");
            }
        }
    }
}

/// Loads the snapshot at `path` on a blocking thread, counting and logging
/// the outcome: the loaded store, or `None` to start empty (no file yet, or
/// a file that failed to load, which is moved aside to
/// `<path>.corrupt-<Unix seconds>` (see [`aside_path`]) so the next snapshot cannot overwrite
/// it and the next start does not trip on it again).
async fn restore(config: &Config, path: &std::path::Path, metrics: &SelfMetrics) -> Option<Store> {
    // A temporary file left by a snapshot cut short (kill -9, power cut)
    // is an unfinished write, never the snapshot: the file itself is. So is
    // anything else there but a directory (a symlink, a FIFO): never ours.
    let tmp = persist::temp_path(path);
    if std::fs::symlink_metadata(&tmp).is_ok_and(|m| !m.is_dir()) {
        match std::fs::remove_file(&tmp) {
            Ok(()) => tracing::info!(file = %tmp.display(), "removed an unfinished snapshot"),
            Err(e) => {
                tracing::warn!(file = %tmp.display(), error = %e, "cannot remove an unfinished snapshot")
            }
        }
    }
    let opts = persist::LoadOptions {
        limits: config.store_limits(),
        series_ttl: config.ttl(),
        push_ttl: config.push_ttl(),
        now: std::time::SystemTime::now(),
    };
    let start = std::time::Instant::now();
    let file = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || persist::load(&file, &opts))
        .await
        .unwrap_or_else(|e| {
            Err(persist::LoadError::Malformed(format!(
                "the load panicked: {e}"
            )))
        });
    let took = start.elapsed();
    metrics.persistence_load_duration.set(took.as_secs_f64());
    match loaded {
        Ok(None) => {
            tracing::info!(file = %path.display(), "no snapshot to load; starting empty");
            None
        }
        Ok(Some((store, report))) => {
            metrics.persistence_series_loaded.set(report.series as i64);
            metrics.persistence_groups_loaded.set(report.groups as i64);
            let dropped = |reason| ReasonLabels { reason };
            metrics
                .persistence_load_series_dropped
                .get_or_create(&dropped("expired"))
                .inc_by(report.expired_series as u64);
            metrics
                .persistence_load_series_dropped
                .get_or_create(&dropped("series_limit"))
                .inc_by(report.over_limit_series as u64);
            let age = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
                .saturating_sub(report.taken_at_ms)
                .max(0);
            tracing::info!(
                file = %path.display(),
                series = report.series,
                groups = report.groups,
                metadata = report.metadata,
                expired_series = report.expired_series,
                expired_groups = report.expired_groups,
                over_limit_series = report.over_limit_series,
                over_limit_metadata = report.over_limit_metadata,
                snapshot_age = %humantime::format_duration(Duration::from_secs(age as u64 / 1000)),
                bytes = report.bytes,
                took = ?took,
                "snapshot loaded"
            );
            Some(store)
        }
        Err(e) => {
            metrics
                .persistence_load_failures
                .get_or_create(&ReasonLabels { reason: e.reason() })
                .inc();
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = aside_path(path, secs);
            match std::fs::rename(path, &aside) {
                Ok(()) => tracing::error!(
                    file = %path.display(),
                    moved_to = %aside.display(),
                    reason = e.reason(),
                    error = %e,
                    "cannot load the snapshot; moved it aside and starting empty"
                ),
                Err(move_error) => tracing::error!(
                    file = %path.display(),
                    reason = e.reason(),
                    error = %e,
                    move_error = %move_error,
                    "cannot load the snapshot nor move it aside; starting empty"
                ),
            }
            None
        }
    }
}

/// Where a snapshot that failed to load goes: `<path>.corrupt-<secs>`, or
/// with `-1`, `-2`, … appended when that name is taken, so that bad files
/// of restarts within one second are all kept (a name is never reused).
fn aside_path(path: &std::path::Path, secs: u64) -> std::path::PathBuf {
    let with = |suffix: String| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let first = with(format!(".corrupt-{secs}"));
    let taken = |p: &std::path::Path| std::fs::symlink_metadata(p).is_ok();
    if !taken(&first) {
        return first;
    }
    (1u32..)
        .map(|n| with(format!(".corrupt-{secs}-{n}")))
        .find(|p| !taken(p))
        .expect("some suffix is free")
}

/// TLS on the listener: each connection's handshake uses the rustls
/// configuration of the web config in force when it arrives, so reloaded
/// certificates and client CAs apply to new connections.
struct Tls {
    web: Arc<WebConfigHandle>,
    metrics: Arc<SelfMetrics>,
}

/// Accepts connections on `listener` and serves `app` on each until
/// `shutdown` resolves; then stops accepting, lets every connection finish
/// its request in flight, and returns once all are closed.
async fn serve(
    listener: TcpListener,
    app: Router,
    metrics: Arc<SelfMetrics>,
    limits: ConnectionLimits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let ConnectionLimits {
        max_connections,
        read_header_timeout,
        write_timeout,
    } = limits;
    // One permit per connection: at the limit the loop stops accepting and
    // new connections wait in the kernel's accept queue, as behind
    // Prometheus' --web.max-connections (Go's netutil.LimitListener).
    let slots = Arc::new(Semaphore::new(max_connections));
    metrics.connections_max.set(max_connections as i64);
    // Dropping `stop_rx` tells every connection to finish (each waits on
    // `stop_tx.closed()`); each connection holds a clone of `closed_rx`, so
    // `closed_tx.closed()` resolves once the last one has gone.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    let (closed_tx, closed_rx) = watch::channel(());
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics.connections_limit_reached.inc();
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = stop_tx.closed() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait a little
                    // rather than spin, and keep the connections served.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_tx.closed() => break,
        };
        let _ = stream.set_nodelay(true);
        // A client that stops reading (a page, or answers to pipelined
        // requests) leaves hyper waiting to write for ever: after
        // --web.write-timeout without progress the write fails and the
        // connection closes, freeing its place.
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(write_timeout);
        let stream = Box::pin(stream);
        // Whether a request head arrived on this connection: a header
        // timeout after one is an idle keep-alive connection, not a slow
        // client.
        metrics.connections_open.inc();
        let conn = Connection {
            metrics: Arc::clone(&metrics),
            served: Arc::new(AtomicBool::new(false)),
            _slot: slot,
        };
        let served = Arc::clone(&conn.served);
        // The peer's address goes with each request, for the access log of
        // refused requests.
        let service = app
            .clone()
            .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                served.store(true, Ordering::Relaxed);
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let stop_tx = stop_tx.clone();
        let closed_rx = closed_rx.clone();
        let acceptor = tls.as_ref().map(|t| {
            let config = t.web.current();
            let tls = config
                .tls
                .as_ref()
                .expect("TLS cannot be turned off by a reload");
            (
                TlsAcceptor::from(Arc::clone(&tls.server_config)),
                Arc::clone(&t.metrics),
            )
        });
        tokio::spawn(async move {
            match acceptor {
                None => {
                    serve_connection(stream, service, &conn, read_header_timeout, &stop_tx).await;
                }
                Some((acceptor, metrics)) => {
                    // A client must finish its handshake as it must send its
                    // headers: within --web.read-header-timeout.
                    let handshake = acceptor.accept(stream);
                    let bounded = async {
                        match read_header_timeout {
                            Some(limit) => tokio::time::timeout(limit, handshake)
                                .await
                                .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut))),
                            None => handshake.await,
                        }
                    };
                    let stream = tokio::select! {
                        done = bounded => done,
                        () = stop_tx.closed() => Err(io::Error::from(io::ErrorKind::Interrupted)),
                    };
                    match stream {
                        Ok(stream) => {
                            serve_connection(stream, service, &conn, read_header_timeout, &stop_tx)
                                .await;
                        }
                        Err(e) => {
                            metrics.tls_handshake_errors.inc();
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                        }
                    }
                }
            }
            drop(closed_rx);
        });
    }
    drop(listener);
    drop(closed_rx);
    closed_tx.closed().await;
}

/// Bounds on the connections [`serve`] takes.
#[derive(Clone, Copy, Debug)]
struct ConnectionLimits {
    /// `--web.max-connections`.
    max_connections: usize,
    /// `--web.read-header-timeout` (`None`: no bound); TLS handshakes too.
    read_header_timeout: Option<Duration>,
    /// `--web.write-timeout`: how long a write may wait for the client to
    /// read (`None`: no bound).
    write_timeout: Option<Duration>,
}

/// What the accept loop knows of one connection; dropped when it closes.
struct Connection {
    metrics: Arc<SelfMetrics>,
    /// Set when a request head arrives.
    served: Arc<AtomicBool>,
    /// Its place among `--web.max-connections`.
    _slot: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

impl Connection {
    /// Counts a connection hyper closed on the client's fault.
    fn closed_with(&self, e: &hyper::Error) {
        let reason = if e.is_timeout() {
            if self.served.load(Ordering::Relaxed) {
                "idle_timeout"
            } else {
                "header_timeout"
            }
        } else if e.is_parse() || e.is_parse_too_large() {
            "malformed_head"
        } else if std::error::Error::source(e)
            .and_then(|cause| cause.downcast_ref::<io::Error>())
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            // Only writes are timed at this level (`TimeoutStream`).
            "write_timeout"
        } else {
            return;
        };
        self.metrics
            .connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}

/// Serves one connection (plain or TLS) until it closes; once `stop_tx`
/// is closed, finishes the request in flight and closes.
async fn serve_connection<I, S>(
    io: I,
    service: S,
    conn_info: &Connection,
    read_header_timeout: Option<Duration>,
    stop_tx: &watch::Sender<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(read_header_timeout);
    let service = TowerToHyperService::new(service);
    let mut conn = pin!(http1.serve_connection(TokioIo::new(io), service));
    let mut stopping = pin!(stop_tx.closed());
    let mut finishing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    conn_info.closed_with(&e);
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                break;
            }
            () = &mut stopping, if !finishing => {
                // Finish the request in flight, then close.
                finishing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

fn log_start(config: &Config, address: SocketAddr, web: Option<&WebConfigHandle>) {
    if let Some(web) = web {
        tracing::info!(
            file = %web.path().display(),
            config = %web.current().summary(),
            "web config loaded"
        );
    }
    let scheme = match web {
        Some(web) if web.current().tls.is_some() => "https",
        _ => "http",
    };
    tracing::info!(
        address = %address,
        scheme,
        ttl = %humantime::format_duration(config.series_ttl),
        // As the flag spells it (`original`), not as Rust names the variant.
        timestamps = clap::ValueEnum::to_possible_value(&config.timestamps)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
        version = env!("CARGO_PKG_VERSION"),
        "promgate listening"
    );
}

/// The period of the sweep: a tenth of the TTL bounds how long an expired
/// series lingers, within 100 ms and 15 s.
fn sweep_period(ttl: Option<Duration>) -> Duration {
    ttl.map_or(IDLE_SWEEP, |ttl| {
        (ttl / 10).clamp(Duration::from_millis(100), IDLE_SWEEP)
    })
}

/// Removes expired series and pushed groups (`state.settings.push_ttl`)
/// every so often, whether or not anyone scrapes, and the names that have
/// no series left whatever the TTL.
pub fn spawn_sweeper(state: &AppState, ttl: Option<Duration>) -> JoinHandle<()> {
    let store: Arc<Store> = Arc::clone(&state.store);
    let metrics = Arc::clone(&state.metrics);
    let push_ttl = state.settings.push_ttl;
    let period = sweep_period(ttl).min(sweep_period(push_ttl));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = Arc::clone(&store);
            let swept = tokio::task::spawn_blocking(move || {
                (store.sweep_groups(push_ttl), store.sweep(ttl))
            });
            match swept.await {
                Ok((groups, removed)) => {
                    metrics.groups_expired.inc_by(groups as u64);
                    metrics.series_expired.inc_by(removed as u64);
                }
                Err(e) => tracing::error!(error = %e, "series sweep failed"),
            }
        }
    })
}

/// Resolves on the first SIGINT or SIGTERM; the server then stops accepting
/// and finishes the requests in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_snapshots_moved_aside_within_one_second_keep_distinct_names() {
        let dir = std::env::temp_dir().join(format!("promgate-aside-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("snap");
        let mut names = Vec::new();
        for body in ["first", "second", "third"] {
            std::fs::write(&file, body).unwrap();
            let aside = aside_path(&file, 1_795_970_295);
            std::fs::rename(&file, &aside).unwrap();
            names.push(aside);
        }
        let kept: Vec<String> = names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(kept, ["first", "second", "third"]);
        assert!(
            names[0]
                .to_string_lossy()
                .ends_with("snap.corrupt-1795970295")
        );
        assert!(
            names[2]
                .to_string_lossy()
                .ends_with("snap.corrupt-1795970295-2")
        );
    }

    #[test]
    fn sweeps_a_tenth_of_the_ttl_apart_within_bounds() {
        assert_eq!(
            sweep_period(Some(Duration::from_secs(60))),
            Duration::from_secs(6)
        );
        assert_eq!(
            sweep_period(Some(Duration::from_secs(1))),
            Duration::from_millis(100)
        );
        assert_eq!(sweep_period(Some(Duration::from_secs(3600))), IDLE_SWEEP);
        assert_eq!(sweep_period(None), IDLE_SWEEP);
    }
}
