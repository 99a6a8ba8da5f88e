//! Reading a request body within `--limits.request-body-bytes` and
//! `--web.read-timeout`, shared by every endpoint that takes one.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{AppState, Error};

/// The whole body, refused before reading when `Content-Length` declares
/// more than the limit, and cut off when more arrives or it arrives too
/// slowly.
pub(super) async fn read(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Error> {
    let limit = app.settings.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge { limit });
    }
    let collect = Limited::new(body, limit).collect();
    let collected = match app.settings.read_timeout {
        None => collect.await,
        Some(after) => tokio::time::timeout(after, collect)
            .await
            .map_err(|_| Error::BodyTimeout { after })?,
    };
    Ok(collected
        .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
            Some(_) => Error::BodyTooLarge { limit },
            None => Error::BodyRead(e.to_string()),
        })?
        .to_bytes())
}
