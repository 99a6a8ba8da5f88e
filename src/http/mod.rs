//! The HTTP surface: `router(state)` builds every route; the binary only binds
//! and serves, and tests drive the same router with `oneshot`.

mod exposition;
mod ops;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

use crate::config::Config;
use crate::decode::DecodeLimits;
use crate::exposition::RenderOptions;
use crate::self_metrics::{RequestLabels, RouteLabels, SelfMetrics};
use crate::store::Store;

/// Settings the handlers read, fixed at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Largest request body before decompression.
    pub max_body_bytes: usize,
    /// Decoder limits.
    pub decode: DecodeLimits,
    /// Exposition options.
    pub render: RenderOptions,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The series store.
    pub store: Arc<Store>,
    /// promgate's own metrics.
    pub metrics: Arc<SelfMetrics>,
    /// Limits and options.
    pub settings: Arc<Settings>,
}

impl AppState {
    /// A fresh, empty state configured from `config`.
    pub fn new(config: &Config) -> Self {
        AppState {
            store: Arc::new(Store::new(config.store_limits())),
            metrics: Arc::new(SelfMetrics::new()),
            settings: Arc::new(Settings {
                max_body_bytes: config.max_body_bytes,
                decode: config.decode_limits(),
                render: RenderOptions {
                    timestamps: config.timestamp_policy(),
                    ..RenderOptions::default()
                },
            }),
        }
    }
}

/// The routes promgate serves; also the values of the `route` label.
const ROUTES: [&str; 5] = [
    "/api/v1/write",
    "/metrics",
    "/-/metrics",
    "/-/healthy",
    "/-/ready",
];

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(ROUTES[0], post(write::handle))
        .route(ROUTES[1], get(exposition::handle))
        .route(ROUTES[2], get(ops::self_metrics))
        .route(ROUTES[3], get(ops::healthy))
        .route(ROUTES[4], get(ops::ready))
        .route_layer(middleware::from_fn_with_state(state.metrics.clone(), track))
        .fallback(not_found)
        // Compresses the small answers (/-/metrics, errors) when asked;
        // /metrics compresses on its own render thread and sets
        // Content-Encoding, which this layer then leaves alone.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(state)
}

/// Counts every routed request by route and status, and times it.
async fn track(
    State(metrics): State<Arc<SelfMetrics>>,
    path: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let route = path
        .and_then(|p| ROUTES.iter().find(|r| **r == p.as_str()).copied())
        .unwrap_or("other");
    let start = Instant::now();
    let response = next.run(req).await;
    let labels = RequestLabels {
        route,
        code: response.status().as_u16(),
    };
    metrics.http_requests.get_or_create(&labels).inc();
    metrics
        .http_duration
        .get_or_create(&RouteLabels { route })
        .observe(start.elapsed().as_secs_f64());
    response
}

async fn not_found(State(state): State<AppState>) -> impl IntoResponse {
    let labels = RequestLabels {
        route: "other",
        code: 404,
    };
    state.metrics.http_requests.get_or_create(&labels).inc();
    (
        StatusCode::NOT_FOUND,
        "not found: promgate serves POST /api/v1/write, GET /metrics, /-/metrics, /-/healthy, /-/ready\n",
    )
}

/// Removes expired series every so often, whether or not anyone scrapes.
pub fn spawn_sweeper(state: &AppState, ttl: Duration) -> tokio::task::JoinHandle<()> {
    let store = Arc::clone(&state.store);
    let metrics = Arc::clone(&state.metrics);
    // Sweeping a tenth of the TTL apart bounds how long an expired series lingers.
    let period = (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(15));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = Arc::clone(&store);
            match tokio::task::spawn_blocking(move || store.sweep(ttl)).await {
                Ok(removed) => {
                    metrics.series_expired.inc_by(removed as u64);
                }
                Err(e) => tracing::error!(error = %e, "series sweep failed"),
            };
        }
    })
}
