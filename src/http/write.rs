//! `POST /api/v1/write`: negotiate, read the body within its limit, decode,
//! store, answer.
//!
//! Every answer to a Remote-Write 2.0 request (`proto=io.prometheus.write.v2.Request`),
//! errors included, carries the `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`
//! headers with what was written (spec 2.0, "Required Written Response
//! Headers"), as does one whose `Content-Type` names no known message but
//! whose `X-Prometheus-Remote-Write-Version` is 2.x: samples and exemplars of the series stored; no histograms, as
//! native histograms are refused until the exposition can show them.

use std::cell::RefCell;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::{AppState, Error};
use crate::ingest::{self, Decoder, Format, Protocol};
use crate::self_metrics::{EncodingLabels, ReasonLabels};

/// What a request wrote, for 2.0's response headers.
#[derive(Clone, Copy, Debug, Default)]
struct Written {
    samples: u64,
    histograms: u64,
    exemplars: u64,
}

const SAMPLES_WRITTEN: HeaderName =
    HeaderName::from_static("x-prometheus-remote-write-samples-written");
const HISTOGRAMS_WRITTEN: HeaderName =
    HeaderName::from_static("x-prometheus-remote-write-histograms-written");
const EXEMPLARS_WRITTEN: HeaderName =
    HeaderName::from_static("x-prometheus-remote-write-exemplars-written");

/// Is this VictoriaMetrics' protocol handshake (`?get_vm_proto_version=…`,
/// any non-empty value), which older vmagents send before choosing zstd?
fn vm_handshake(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .any(|(k, v)| k == "get_vm_proto_version" && !v.is_empty())
    })
}

/// The answer VictoriaMetrics gives the handshake: protocol version `1`,
/// zstd bodies accepted (`lib/protoparser/protoparserutil`).
fn vm_proto_version() -> Response {
    (StatusCode::OK, "1").into_response()
}

/// `GET /api/v1/write`: only VictoriaMetrics' handshake; anything else is
/// the wrong method.
pub(super) async fn probe(State(app): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    if vm_handshake(&uri) {
        return vm_proto_version();
    }
    not_allowed(State(app), Method::GET, headers).await
}

/// Any method but `POST` (and the handshake's `GET`): `405`, `Allow: POST`.
/// GET is routed (for the handshake), so axum's own answer would list GET
/// and HEAD: only POST writes. A 2.0 request gets the written headers (all
/// 0) as every other answer to one.
pub(super) async fn not_allowed(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let e = Error::MethodNotAllowed {
        method: method.to_string(),
        route: "/api/v1/write",
    };
    app.count_rejection(&e);
    let mut response = e.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    if is_v2(&headers) {
        written_headers(&mut response, Written::default());
    }
    response
}

/// Spec 2.0, "Required Written Response Headers": the three counts.
fn written_headers(response: &mut Response, written: Written) {
    let h = response.headers_mut();
    h.insert(SAMPLES_WRITTEN, HeaderValue::from(written.samples));
    h.insert(HISTOGRAMS_WRITTEN, HeaderValue::from(written.histograms));
    h.insert(EXEMPLARS_WRITTEN, HeaderValue::from(written.exemplars));
}

pub(super) async fn handle(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if vm_handshake(&uri) {
        return vm_proto_version();
    }
    let mut written = Written::default();
    let result = ingest(&app, &headers, body, &mut written).await;
    if let Err(e) = &result {
        let labels = ReasonLabels { reason: e.reason() };
        app.metrics.requests_rejected.get_or_create(&labels).inc();
        tracing::debug!(reason = e.reason(), error = %e, "remote-write request rejected");
    }
    let mut response = match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    };
    if is_v2(&headers) {
        written_headers(&mut response, written);
    }
    response
}

/// Is this a 2.0 request, owed the written headers? Its `Content-Type`
/// names 2.0's message, or names no known message while its
/// `X-Prometheus-Remote-Write-Version` says 2.x (spec 2.0, "Required
/// Written Response Headers": a 2.0 sender sent it, whatever its type).
fn is_v2(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match ingest::protocol_of(content_type) {
        Some(protocol) => protocol == Protocol::RemoteWrite2,
        None => headers
            .get(REMOTE_WRITE_VERSION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().starts_with("2.")),
    }
}

const REMOTE_WRITE_VERSION: HeaderName =
    HeaderName::from_static("x-prometheus-remote-write-version");

async fn ingest(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    written: &mut Written,
) -> Result<(), Error> {
    // A header that is not visible ASCII cannot name a supported value.
    let header = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(non-ASCII)"))
    };
    let format = ingest::negotiate(
        header(header::CONTENT_TYPE),
        header(header::CONTENT_ENCODING),
    )?;

    // The body is received first, within the budget of bytes in flight, so
    // that a client stalling its body holds no write slot.
    let body = super::body::read(app, headers, body).await?;
    app.metrics
        .received_bytes
        .get_or_create(&EncodingLabels {
            encoding: format.encoding.as_str(),
        })
        .inc_by(body.bytes.len() as u64);
    // Bounded like vmagent's -maxConcurrentInserts: each write being decoded
    // holds its decoded form, so their number bounds memory and CPU.
    let _slot = write_slot(app).await?;

    // Decode and apply run to the end without an await, so the worker
    // thread's decoder is this request's alone meanwhile.
    DECODER.with_borrow_mut(|decoder| {
        let result = decode_and_apply(app, format, &body.bytes, decoder, written);
        decoder.trim();
        result
    })
}

/// Waits for one of `--limits.concurrent-writes` slots, up to
/// `--limits.write-queue-duration`.
pub(super) async fn write_slot(app: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
    // Nearly always free: no timer for that case.
    if let Ok(permit) = Arc::clone(&app.writes).try_acquire_owned() {
        return Ok(permit);
    }
    let wait = app.settings.writes.max_queue_duration;
    let acquired = tokio::time::timeout(wait, Arc::clone(&app.writes).acquire_owned()).await;
    match acquired {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(Error::TooManyWrites {
            limit: app.settings.writes.max_concurrent,
            waited: wait,
        }),
    }
}

thread_local! {
    /// One decoder per worker thread, so that a request reuses the last
    /// one's buffers instead of allocating (and zeroing) its own.
    static DECODER: RefCell<Decoder> = RefCell::default();
}

fn decode_and_apply(
    app: &AppState,
    format: Format,
    body: &[u8],
    decoder: &mut Decoder,
    written: &mut Written,
) -> Result<(), Error> {
    let m = &app.metrics;
    let now = ingest::now_ms();
    let decoded = decoder
        .decode(format, body, &app.settings.decode, now)
        .map(|_| ());
    m.decoded_bytes.inc_by(decoder.decoded_bytes() as u64);
    decoded?;
    let batch = decoder.batch();
    let applied = app.store.apply(batch);
    m.record(&batch.rejected, &applied);
    *written = Written {
        samples: applied.samples,
        histograms: applied.histograms,
        exemplars: applied.exemplars,
    };

    let first = batch
        .rejected
        .first
        .clone()
        .or_else(|| applied.rejected.first.clone());
    match first {
        None => Ok(()),
        Some(first) => Err(Error::Rejected {
            stored_series: applied.series,
            rejected_series: batch.rejected.series_total() + applied.rejected.series_total(),
            rejected_samples: batch.rejected.samples_total() + applied.rejected.samples_total(),
            rejected_metadata: batch.rejected.metadata + applied.rejected.metadata,
            first,
        }),
    }
}
