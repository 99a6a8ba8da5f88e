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
    let receive = receive(app, body, limit, declared);
    match app.settings.read_timeout {
        None => receive.await,
        Some(after) => tokio::time::timeout(after, receive)
            .await
            .map_err(|_| Error::BodyTimeout { after })?,
    }
}

async fn receive(
    app: &AppState,
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<ReceivedBody, Error> {
    // A declared length (already checked against the limit) sizes the
    // first allocation when it is small; a larger body grows as it arrives,
    // so a client that declares much and sends little holds little.
    let first = declared.map_or(MIN_CAPACITY, |n| (n as usize).min(MIN_CAPACITY));
    // hyper ends a body at its declared length: no need to grow past it.
    let most = declared.map_or(limit, |n| n as usize);
    // Each frame is copied into one buffer and dropped at once: a frame is
    // a slice of hyper's read buffer and would keep all of it alive, so a
    // client sending a byte at a time would hold a thousand times what it
    // sent. The budget is taken for the buffer's capacity, which is what
    // the body costs.
    let mut buf: Vec<u8> = Vec::new();
    let mut budget: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::BodyRead(e.to_string()))?;
        // Trailers carry nothing a write needs.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let needed = buf.len() + data.len();
        if needed > limit {
            return Err(Error::BodyTooLarge { limit });
        }
        if needed > buf.capacity() {
            // Doubling, within the declared length or the body limit: a
            // body of n bytes is copied about twice and holds at most 2n.
            let grown = needed
                .max(2 * buf.capacity())
                .max(first)
                .min(most)
                .max(needed);
            let share = take_budget(app, grown - buf.capacity(), limit).await?;
            match &mut budget {
                Some(held) => held.merge(share),
                None => budget = Some(share),
            }
            buf.reserve_exact(grown - buf.len());
        }
        buf.extend_from_slice(&data);
    }
    Ok(ReceivedBody {
        bytes: Bytes::from(buf),
        _budget: budget,
    })
}

/// The first allocation for a body: most remote-write bodies are a few
/// KiB to a few hundred KiB.
const MIN_CAPACITY: usize = 16 * 1024;

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
