//! Operational endpoints: health, readiness, promgate's own metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

pub(super) async fn healthy() -> &'static str {
    "promgate is healthy\n"
}

pub(super) async fn ready() -> &'static str {
    "promgate is ready\n"
}

pub(super) async fn self_metrics(State(app): State<AppState>) -> impl IntoResponse {
    let m = &app.metrics;
    m.live_series.set(app.store.live_series() as i64);
    m.metadata_families.set(app.store.metadata_len() as i64);
    m.push_groups.set(app.store.group_count() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}
