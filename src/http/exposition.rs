//! `GET /metrics`: the page is rendered — and gzipped, when the client asks —
//! on a thread of its own and streamed through a small bounded channel, so
//! memory does not grow with the page, compression never runs on the async
//! workers that serve writes, and a slow client slows only its own render
//! (which holds no lock while waiting).
//!
//! The render thread gives way to writers: it runs at a lower scheduling
//! priority ([`RENDER_NICE`]) and yields the CPU after each chunk (~64 KiB,
//! a few hundred microseconds of work), so on a busy core a write waits for
//! at most one chunk of rendering. Where nothing else wants the CPU, the
//! yield returns at once and the scrape runs at full speed.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::mpsc::Sender;
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use crate::exposition::{self, CONTENT_TYPE};

/// Chunks in flight between the renderer and the connection.
const CHANNEL_CHUNKS: usize = 2;

/// Compressed bytes gathered before a chunk is sent.
const GZIP_CHUNK: usize = 64 * 1024;

/// The render thread's nice value: its weight against a writer at nice 0 is
/// 110:1024, so a scrape still gets about a tenth of a saturated core and is
/// never starved. Measured by bench/run.py at 100k series with a gzip scrape
/// every second, write p99 against idle: 2.3× with neither this nor the
/// yield, 1.2-1.5× with the yield alone, 1.1-1.2× with both.
const RENDER_NICE: i32 = 10;

type Chunks = Sender<Result<Bytes, Infallible>>;

/// An `io::Write` that sends what the gzip encoder writes as body chunks;
/// fails once the client has gone away.
struct ChunkWriter {
    tx: Chunks,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= GZIP_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

/// Does the client accept gzip (and not with `q=0`)?
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused =
                parts.any(|p| p.replace(' ', "").starts_with("q=0") && !p.contains("q=0."));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

pub(super) async fn handle(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(CHANNEL_CHUNKS);
    let store = Arc::clone(&app.store);
    let opts = app.settings.render;
    let gzip = accepts_gzip(&headers);
    let render = move || {
        lower_priority();
        if gzip {
            // Level 1: most of the size reduction for a fraction of the CPU of
            // the default level; scrape throughput matters more here.
            let writer = ChunkWriter {
                tx,
                buf: Vec::with_capacity(GZIP_CHUNK),
            };
            let mut gz = GzEncoder::new(writer, Compression::fast());
            let complete = exposition::render(&store, &opts, |chunk| {
                let sent = gz.write_all(&chunk).is_ok();
                std::thread::yield_now();
                sent
            });
            if complete && let Ok(mut writer) = gz.finish() {
                let _ = writer.flush();
            }
        } else {
            // A failed send means the client went away: stop rendering.
            exposition::render(&store, &opts, |chunk| {
                let sent = tx.blocking_send(Ok(Bytes::from(chunk))).is_ok();
                std::thread::yield_now();
                sent
            });
        }
    };
    // A thread per scrape rather than the blocking pool: a thread's priority
    // can be lowered but not raised back without privileges, so a pool
    // thread would stay low for whatever blocking task it ran next.
    let spawned = std::thread::Builder::new()
        .name("promgate-render".into())
        .spawn(render);
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the render thread");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot start the render thread: {e}\n"),
        )
            .into_response();
    }
    let mut response = (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        // Set here, so the router's compression layer leaves the body alone.
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Lowers the calling thread's scheduling priority to [`RENDER_NICE`].
/// Best effort: where it fails, rendering runs at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take and return plain integers and
        // touch no memory of ours. On Linux, PRIO_PROCESS with a thread id
        // sets the priority of that thread only.
        let rc = unsafe {
            libc::setpriority(
                libc::PRIO_PROCESS,
                libc::gettid() as libc::id_t,
                RENDER_NICE,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the render thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding_negotiation() {
        assert!(accepts("gzip"));
        assert!(accepts("deflate, gzip;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzip;q=0"));
        assert!(accepts("gzip;q=0.1"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn lower_priority_lowers_only_the_calling_thread() {
        // SAFETY: as in lower_priority; getpriority only returns an integer.
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let before = nice();
        let render = std::thread::spawn(move || {
            lower_priority();
            nice()
        })
        .join()
        .unwrap();
        // Unprivileged, a thread already nicer than RENDER_NICE stays as it is.
        assert_eq!(render, RENDER_NICE.max(before));
        assert_eq!(nice(), before, "the caller's own priority is unchanged");
    }
}
