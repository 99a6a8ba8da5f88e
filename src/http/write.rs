//! `POST /api/v1/write`: negotiate, read the body within its limit, decode,
//! store, answer.

use std::cell::RefCell;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{AppState, Error};
use crate::ingest::{self, Decoder, Format};
use crate::self_metrics::{EncodingLabels, ReasonLabels};

pub(super) async fn handle(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Error> {
    let result = ingest(&app, &headers, body).await;
    if let Err(e) = &result {
        let labels = ReasonLabels { reason: e.reason() };
        app.metrics.requests_rejected.get_or_create(&labels).inc();
        tracing::debug!(reason = e.reason(), error = %e, "remote-write request rejected");
    }
    result.map(|()| StatusCode::NO_CONTENT)
}

async fn ingest(app: &AppState, headers: &HeaderMap, body: Body) -> Result<(), Error> {
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

    let limit = app.settings.max_body_bytes;
    let declared = header(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge { limit });
    }
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
            Some(_) => Error::BodyTooLarge { limit },
            None => Error::BodyRead(e.to_string()),
        })?
        .to_bytes();
    app.metrics
        .received_bytes
        .get_or_create(&EncodingLabels {
            encoding: format.encoding.as_str(),
        })
        .inc_by(body.len() as u64);

    // Decode and apply run to the end without an await, so the worker
    // thread's decoder is this request's alone meanwhile.
    DECODER.with_borrow_mut(|decoder| {
        let result = decode_and_apply(app, format, &body, decoder);
        decoder.trim();
        result
    })
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
            first,
        }),
    }
}
