//! `GET /metrics`: the page is rendered — and gzipped, when the client asks —
//! on a thread of its own and streamed through a small bounded channel, so
//! memory does not grow with the page, compression never runs on the async
//! workers that serve writes, and a slow client slows only its own render
//! (which holds no lock while waiting).
//!
//! At most `--exposition.max-concurrent-scrapes` pages render at once; a
//! scrape beyond that waits up to `--exposition.max-queue-duration` for a
//! slot, then gets `503` (counted as `too_many_scrapes`). A slot is held
//! until its page is fully sent or the client goes away, so neither threads
//! nor buffers grow with the number of scrapers.
//!
//! The render thread gives way to writers: it runs at a lower scheduling
//! priority ([`RENDER_NICE`]) and yields the CPU after each chunk (~64 KiB,
//! a few hundred microseconds of work), so on a busy core a write waits for
//! at most one chunk of rendering. Where nothing else wants the CPU, the
//! yield returns at once and the scrape runs at full speed.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::Sender;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

use super::{AppState, Error};
use crate::exposition;
use crate::self_metrics::{PageLabels, ReasonLabels};

/// Chunks in flight between the renderer and the connection.
const CHANNEL_CHUNKS: usize = 2;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// The render thread's nice value: its weight against a writer at nice 0 is
/// 110:1024, so a scrape still gets about a tenth of a saturated core and is
/// never starved. Measured by bench/run.py at 100k series with a gzip scrape
/// every second, write p99 against idle: 2.3× with neither this nor the
/// yield, 1.2-1.5× with the yield alone, 1.1-1.2× with both.
const RENDER_NICE: i32 = 10;

type Chunks = Sender<Result<Bytes, io::Error>>;

/// An `io::Write` that sends what it is given as body chunks of about
/// [`CHUNK`] bytes; fails once the client has gone away.
struct ChunkWriter {
    tx: Chunks,
    buf: Vec<u8>,
    /// The runtime whose timer bounds each send.
    runtime: tokio::runtime::Handle,
    /// How long the client may take to take one chunk (`--web.write-timeout`).
    timeout: Option<Duration>,
}

impl ChunkWriter {
    /// Sends the buffer; fails once the client has gone away, or has not
    /// taken a chunk for the write timeout (a reader that stalls must not
    /// hold its render slot and thread for ever).
    fn send(&mut self) -> io::Result<()> {
        let chunk = Ok(Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK),
        )));
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "client went away");
        match self.timeout {
            None => self.tx.blocking_send(chunk).map_err(|_| gone()),
            Some(timeout) => {
                // The timer is made inside `block_on`, in the runtime's context.
                let tx = &self.tx;
                let send = async move { tokio::time::timeout(timeout, tx.send(chunk)).await };
                match self.runtime.block_on(send) {
                    Ok(sent) => sent.map_err(|_| gone()),
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the scraper stopped reading",
                    )),
                }
            }
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

/// The page's chunks, ending in an error when the render did not complete
/// (the scraper stalled past `--web.write-timeout`, or rendering failed):
/// hyper then closes the connection without the chunked body's terminator,
/// so the scraper sees a failed scrape, never a short page that parses.
struct PageStream {
    chunks: ReceiverStream<Result<Bytes, io::Error>>,
    /// Set by the render thread once the whole page was handed over.
    complete: Arc<AtomicBool>,
}

impl Stream for PageStream {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.chunks).poll_next(cx) {
            Poll::Ready(None) if !self.complete.swap(true, Ordering::Acquire) => {
                Poll::Ready(Some(Err(io::Error::other("the page was cut off"))))
            }
            other => other,
        }
    }
}

/// Gives the CPU away after each write: the renderer writes once per chunk
/// of page (~64 KiB, a few hundred microseconds of work), so on a busy core
/// a writer waits for at most one chunk of rendering.
struct Yielding<W>(W);

impl<W: Write> Write for Yielding<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.write(data)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)?;
        std::thread::yield_now();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
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
    match serve(&app, &headers).await {
        Ok(response) => response,
        Err(e) => {
            let labels = ReasonLabels { reason: e.reason() };
            app.metrics.requests_rejected.get_or_create(&labels).inc();
            tracing::debug!(reason = e.reason(), error = %e, "scrape refused");
            e.into_response()
        }
    }
}

/// Waits for a render slot, up to the configured queue duration.
pub(super) async fn slot(app: &AppState) -> Result<OwnedSemaphorePermit, Error> {
    let start = Instant::now();
    let wait = app.settings.scrapes.max_queue_duration;
    let acquired = tokio::time::timeout(wait, Arc::clone(&app.renders).acquire_owned()).await;
    match acquired {
        Ok(Ok(permit)) => Ok(permit),
        // Timed out, or (never, as the semaphore is not closed) closed.
        _ => Err(Error::TooManyScrapes {
            limit: app.settings.scrapes.max_concurrent,
            waited: start.elapsed(),
        }),
    }
}

async fn serve(app: &AppState, headers: &HeaderMap) -> Result<Response, Error> {
    let permit = slot(app).await?;
    let store = Arc::clone(&app.store);
    let mut opts = app.settings.render;
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let page_format = exposition::negotiate(accept, opts.escaping);
    opts.escaping = page_format.escaping;
    let metrics = Arc::clone(&app.metrics);
    metrics
        .exposition_pages
        .get_or_create(&PageLabels {
            format: page_format.format.as_str(),
            escaping: page_format.escaping.as_str(),
        })
        .inc();
    let gzip = accepts_gzip(headers);
    let format = page_format.format;
    let render = move |mut out: &mut dyn Write| {
        // One dynamic call per ~64 KiB written: nothing to measure.
        let stats = match format {
            exposition::Format::Protobuf => exposition::render_protobuf(&store, &opts, &mut out),
            f if f.is_openmetrics() => exposition::render_openmetrics(&store, &opts, &mut out),
            _ => exposition::render(&store, &opts, &mut out),
        }?;
        metrics.exposition_exemplars.inc_by(stats.exemplars);
        metrics
            .exposition_exemplars_dropped
            .inc_by(stats.exemplars_dropped);
        for (reason, n) in [
            ("escaping_collision", stats.dropped),
            ("openmetrics_invalid", stats.invalid),
            ("native_histogram_le_label", stats.histograms_dropped),
            ("native_histogram_classic_sent", stats.histograms_hidden),
        ] {
            if n > 0 {
                metrics
                    .exposition_series_dropped
                    .get_or_create(&ReasonLabels { reason })
                    .inc_by(n);
            }
        }
        metrics.exposition_series_escaped.inc_by(stats.escaped);
        metrics
            .exposition_native_histograms
            .inc_by(stats.histograms);
        Ok(())
    };
    let body = stream(app, permit, gzip, render)?;
    let mut response = ([(header::CONTENT_TYPE, page_format.content_type())], body).into_response();
    let h = response.headers_mut();
    // The page depends on both: a cache must key it on them.
    h.insert(
        header::VARY,
        HeaderValue::from_static("accept, accept-encoding"),
    );
    if gzip {
        // Set here, so the router's compression layer leaves the body alone.
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// A response body of what `render` writes (gzipped when `gzip`), written
/// on a thread of its own at [`RENDER_NICE`] and streamed through the
/// bounded channel, the render slot `permit` held until the body is sent
/// or the client has gone away. The body ends in an error, not a short
/// page, unless `render` returns `Ok` (see [`PageStream`]); `503` when no
/// thread can be started.
pub(super) fn stream(
    app: &AppState,
    permit: OwnedSemaphorePermit,
    gzip: bool,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
) -> Result<Body, Error> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(CHANNEL_CHUNKS);
    let runtime = tokio::runtime::Handle::current();
    let timeout = app.settings.write_timeout;
    let complete = Arc::new(AtomicBool::new(false));
    let page = PageStream {
        chunks: ReceiverStream::new(rx),
        complete: Arc::clone(&complete),
    };
    let render = move || {
        // Released when the page is sent or the client has gone away.
        let _permit = permit;
        lower_priority();
        // The stream ends when the last sender goes: this one outlives the
        // writer's, so that `complete` is set before the end is seen.
        let last = tx.clone();
        let out = ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            runtime,
            timeout,
        };
        let rendered = if gzip {
            // Level 1: most of the size reduction for a fraction of the CPU of
            // the default level; scrape throughput matters more here.
            let mut gz = Yielding(GzEncoder::new(out, Compression::fast()));
            render(&mut gz).and_then(|()| gz.0.finish()?.flush())
        } else {
            let mut out = Yielding(out);
            render(&mut out).and_then(|()| out.flush())
        };
        if rendered.is_ok() {
            complete.store(true, Ordering::Release);
        }
        drop(last);
    };
    // A thread per scrape rather than the blocking pool: a thread's priority
    // can be lowered but not raised back without privileges, so a pool
    // thread would stay low for whatever blocking task it ran next. The
    // slot bounds how many there are.
    let spawned = std::thread::Builder::new()
        .name("promgate-render".into())
        .spawn(render);
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the render thread");
        return Err(Error::RenderUnavailable);
    }
    Ok(Body::from_stream(page))
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
