//! Reading a request body within `--limits.request-body-bytes`,
//! `--limits.body-bytes-in-flight` and `--web.read-timeout`, shared by every
//! endpoint that takes one.
//!
//! The budget of bytes in flight, not the write slots, bounds what is being
//! received: a body takes budget as its bytes arrive, so a client that
//! sends headers and then stalls holds a connection (bounded by
//! `--web.max-connections`) but neither budget nor a write slot, and
//! writers that send their bodies keep being served.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;

use super::{AppState, Error};

/// A whole request body and its share of `--limits.body-bytes-in-flight`,
/// given back when this is dropped: hold it until the body's decoded form
/// has been applied.
pub(super) struct ReceivedBody {
    /// The body, as sent (still compressed).
    pub bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// The whole body, refused before reading when `Content-Length` declares
/// more than `--limits.request-body-bytes` (`413`), and cut off when more
/// arrives (`413`), when it does not arrive within `--web.read-timeout`
/// (`408`), or when the budget of bytes in flight stays spent for
/// `--limits.write-queue-duration` (`503`).
pub(super) async fn read(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<ReceivedBody, Error> {
    let limit = app.settings.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge { limit });
    }
    let receive = receive(app, body, limit);
    match app.settings.read_timeout {
        None => receive.await,
        Some(after) => tokio::time::timeout(after, receive)
            .await
            .map_err(|_| Error::BodyTimeout { after })?,
    }
}

async fn receive(app: &AppState, mut body: Body, limit: usize) -> Result<ReceivedBody, Error> {
    let mut parts: Vec<Bytes> = Vec::new();
    let mut len = 0;
    let mut budget: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::BodyRead(e.to_string()))?;
        // Trailers carry nothing a write needs.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        len += data.len();
        if len > limit {
            return Err(Error::BodyTooLarge { limit });
        }
        let share = take_budget(app, data.len(), limit).await?;
        match &mut budget {
            Some(held) => held.merge(share),
            None => budget = Some(share),
        }
        parts.push(data);
    }
    let bytes = if parts.len() <= 1 {
        parts.pop().unwrap_or_default()
    } else {
        let mut whole = BytesMut::with_capacity(len);
        for part in parts {
            whole.extend_from_slice(&part);
        }
        whole.freeze()
    };
    Ok(ReceivedBody {
        bytes,
        _budget: budget,
    })
}

/// `n` bytes of `--limits.body-bytes-in-flight`, waiting for them up to
/// `--limits.write-queue-duration`.
async fn take_budget(
    app: &AppState,
    n: usize,
    limit: usize,
) -> Result<OwnedSemaphorePermit, Error> {
    // A frame past u32::MAX bytes is past any limit a semaphore can count.
    let n = u32::try_from(n).map_err(|_| Error::BodyTooLarge { limit })?;
    // Nearly always there: no timer for that case.
    if let Ok(share) = Arc::clone(&app.body_bytes).try_acquire_many_owned(n) {
        return Ok(share);
    }
    let wait = app.settings.writes.max_queue_duration;
    let taken = tokio::time::timeout(wait, Arc::clone(&app.body_bytes).acquire_many_owned(n)).await;
    match taken {
        Ok(Ok(share)) => Ok(share),
        _ => Err(Error::TooManyBodyBytes {
            budget: app.settings.body_bytes_budget,
            waited: wait,
        }),
    }
}
