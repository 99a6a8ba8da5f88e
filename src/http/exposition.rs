//! `GET /metrics`: the page is rendered on a blocking thread and streamed
//! through a small bounded channel, so memory does not grow with the page and
//! a slow client slows only its own render (which holds no lock while waiting).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use crate::exposition::{self, CONTENT_TYPE};

/// Chunks in flight between the renderer and the connection.
const CHANNEL_CHUNKS: usize = 2;

pub(super) async fn handle(State(app): State<AppState>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(CHANNEL_CHUNKS);
    let store = Arc::clone(&app.store);
    let opts = app.settings.render;
    tokio::task::spawn_blocking(move || {
        // A failed send means the client went away: stop rendering.
        exposition::render(&store, &opts, |chunk| {
            tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
        });
    });
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}
