//! `GET /metrics`: the page is rendered — and gzipped, when the client asks —
//! on a blocking thread and streamed through a small bounded channel, so
//! memory does not grow with the page, compression never runs on the async
//! workers that serve writes, and a slow client slows only its own render
//! (which holds no lock while waiting).

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
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
    tokio::task::spawn_blocking(move || {
        if gzip {
            // Level 1: most of the size reduction for a fraction of the CPU of
            // the default level; scrape throughput matters more here.
            let writer = ChunkWriter {
                tx,
                buf: Vec::with_capacity(GZIP_CHUNK),
            };
            let mut gz = GzEncoder::new(writer, Compression::fast());
            let complete = exposition::render(&store, &opts, |chunk| gz.write_all(&chunk).is_ok());
            if complete && let Ok(mut writer) = gz.finish() {
                let _ = writer.flush();
            }
        } else {
            // A failed send means the client went away: stop rendering.
            exposition::render(&store, &opts, |chunk| {
                tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
            });
        }
    });
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
}
