//! `POST /api/v1/write`: negotiate, read the body within its limit, decode,
//! store, answer.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use std::cell::RefCell;

use super::AppState;
use crate::decode::{self, Encoding};
use crate::error::Error;
use crate::model::{SeriesUpdate, WriteBatch};
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
    let encoding = decode::negotiate(
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
    let m = &app.metrics;
    m.received_bytes
        .get_or_create(&EncodingLabels {
            encoding: encoding.as_str(),
        })
        .inc_by(body.len() as u64);

    // Decode and apply run to the end without an await, so the worker
    // thread's scratch buffers are this request's alone meanwhile.
    SCRATCH.with_borrow_mut(|scratch| {
        let result = decode_and_apply(app, encoding, &body, scratch);
        scratch.trim();
        result
    })
}

thread_local! {
    /// The decompressed body and the decoded batch, kept per worker thread
    /// so that a request reuses the last one's buffers instead of allocating
    /// (and, for the body, zeroing) its own.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

#[derive(Default)]
struct Scratch {
    raw: Vec<u8>,
    batch: WriteBatch,
}

impl Scratch {
    /// Buffers larger than this are dropped after the request, so that one
    /// huge body does not pin its memory to a worker thread.
    const KEEP_BYTES: usize = 4 << 20;

    fn trim(&mut self) {
        if self.raw.capacity() > Self::KEEP_BYTES {
            self.raw = Vec::new();
        }
        if self.batch.keys.capacity() > Self::KEEP_BYTES
            || self.batch.series.capacity() * std::mem::size_of::<SeriesUpdate>() > Self::KEEP_BYTES
        {
            self.batch = WriteBatch::default();
        }
    }
}

fn decode_and_apply(
    app: &AppState,
    encoding: Encoding,
    body: &[u8],
    scratch: &mut Scratch,
) -> Result<(), Error> {
    let m = &app.metrics;
    let limits = &app.settings.decode;
    let Scratch { raw, batch } = scratch;
    let raw =
        decode::decompress_into(encoding, body, limits.max_decoded_bytes, raw)?.bytes(body, raw);
    m.decoded_bytes.inc_by(raw.len() as u64);
    decode::v1::decode_into(raw, &limits.series, batch)?;
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
