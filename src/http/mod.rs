//! The HTTP surface: `router(state)` builds every route; the server only
//! binds and serves, and tests drive the same router with `oneshot`.
//!
//! This is the only module that knows about statuses: the layers below
//! return their own errors, and [`Error`] maps each to its answer.
//!
//! With `--web.config.file`, `router` puts the access control layer
//! (`auth.rs`) over every route and the fallback.

mod auth;
mod body;
mod error;
mod exposition;
mod ops;
mod push;
mod write;

pub use error::Error;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use tokio::sync::Semaphore;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

use crate::config::Config;
use crate::exposition::RenderOptions;
use crate::ingest;
use crate::self_metrics::{Features, ReasonLabels, RequestLabels, RouteLabels, SelfMetrics};
use crate::store::Store;
use crate::web_config::{self, WebConfigHandle};

/// How many requests of a kind run at once, and how long one beyond waits.
#[derive(Clone, Copy, Debug)]
pub struct ConcurrencyLimits {
    /// Requests served at once.
    pub max_concurrent: usize,
    /// How long a request beyond waits for a slot before it is refused.
    pub max_queue_duration: Duration,
}

/// Settings the handlers read, fixed at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Largest request body before decompression, in bytes.
    pub max_body_bytes: usize,
    /// Request-body bytes held at once by writes and pushes (`--limits.body-bytes-in-flight`).
    pub body_bytes_budget: usize,
    /// Decoder limits.
    pub decode: ingest::Limits,
    /// Exposition options.
    pub render: RenderOptions,
    /// Bounds on concurrent scrapes.
    pub scrapes: ConcurrencyLimits,
    /// Bounds on concurrent remote-write requests.
    pub writes: ConcurrencyLimits,
    /// How long a request body may take to arrive (`None`: no bound).
    pub read_timeout: Option<Duration>,
    /// How long a scraper may take to take each chunk of a page.
    pub write_timeout: Option<Duration>,
    /// How long a pushed group lives without a push (`None`: until deleted).
    pub push_ttl: Option<Duration>,
    /// When promgate started (the status API shows it).
    pub started: std::time::SystemTime,
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
    /// One permit per page that may render at once.
    renders: Arc<Semaphore>,
    /// One permit per remote-write request that may be served at once.
    writes: Arc<Semaphore>,
    /// One permit per request-body byte that may be held at once, taken as
    /// bodies arrive and given back when they have been applied.
    body_bytes: Arc<Semaphore>,
    /// One permit: pushes are parsed one at a time (a parsed push takes up
    /// to ~25 times its body in memory; the Pushgateway, too, applies one
    /// push at a time).
    pushes: Arc<Semaphore>,
    /// `--web.config.file`, when set: every route and the fallback are
    /// behind its access control.
    pub web_config: Option<Arc<WebConfigHandle>>,
}

impl AppState {
    /// A fresh state configured from `config`, with `--web.config.file`
    /// loaded when set.
    ///
    /// # Errors
    ///
    /// The web config (or a file it names) cannot be read or is invalid.
    pub fn load(config: &Config) -> Result<Self, web_config::Error> {
        let mut state = AppState::new(config);
        if let Some(path) = config.web_config_file() {
            state.web_config = Some(WebConfigHandle::load(path, Arc::clone(&state.metrics))?);
        }
        Ok(state)
    }

    /// A fresh, empty state configured from `config`, leaving
    /// `--web.config.file` aside: [`AppState::load`] reads it.
    pub fn new(config: &Config) -> Self {
        let settings = Settings {
            max_body_bytes: config.max_body_bytes,
            body_bytes_budget: config.body_bytes_budget(),
            decode: config.decode_limits(),
            render: config.render_options(),
            scrapes: ConcurrencyLimits {
                max_concurrent: config.max_concurrent_scrapes,
                max_queue_duration: config.max_scrape_queue_duration,
            },
            writes: ConcurrencyLimits {
                max_concurrent: config.max_concurrent_writes,
                max_queue_duration: config.write_queue_duration,
            },
            read_timeout: Some(config.read_timeout).filter(|d| !d.is_zero()),
            write_timeout: Some(config.write_timeout).filter(|d| !d.is_zero()),
            push_ttl: config.push_ttl(),
            started: std::time::SystemTime::now(),
        };
        let metrics = SelfMetrics::new(Features {
            persistence: config.persistence_file().is_some(),
            web_config: config.web_config_file().is_some(),
        });
        // Every reason starts at zero, so `rate()` and alerts see the series
        // before the first rejection happens.
        for reason in Error::REASONS {
            metrics
                .requests_rejected
                .get_or_create(&ReasonLabels { reason })
                .inc_by(0);
        }
        AppState {
            store: Arc::new(Store::new(config.store_limits())),
            metrics: Arc::new(metrics),
            renders: Arc::new(Semaphore::new(settings.scrapes.max_concurrent)),
            writes: Arc::new(Semaphore::new(settings.writes.max_concurrent)),
            body_bytes: Arc::new(Semaphore::new(settings.body_bytes_budget)),
            pushes: Arc::new(Semaphore::new(1)),
            settings: Arc::new(settings),
            web_config: None,
        }
    }
}

/// The routes promgate serves; also the values of the `route` label.
const ROUTES: [&str; 10] = [
    "/api/v1/write",
    "/metrics",
    "/-/metrics",
    "/-/healthy",
    "/-/ready",
    "/metrics/job/{*grouping}",
    "/metrics/job@base64/{*grouping}",
    "/api/v1/metrics",
    "/api/v1/status",
    "/api/v1/admin/wipe",
];

/// Every route `router()` serves (as axum writes them, `{param}` for a
/// path parameter), for the test that walks them all.
pub fn routes() -> &'static [&'static str] {
    &ROUTES
}

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route(
            ROUTES[0],
            post(write::handle)
                .get(write::probe)
                .fallback(write::not_allowed),
        )
        .route(ROUTES[1], get(exposition::handle))
        .route(ROUTES[2], get(ops::self_metrics))
        .route(ROUTES[3], get(ops::healthy))
        .route(ROUTES[4], get(ops::ready))
        .route(
            ROUTES[5],
            put(push::push).post(push::push).delete(push::delete),
        )
        .route(
            ROUTES[6],
            put(push::push).post(push::push).delete(push::delete),
        )
        .route(ROUTES[7], get(push::metrics_api))
        .route(ROUTES[8], get(push::status_api))
        .route(ROUTES[9], put(push::wipe))
        // Before the tracking layer, so that 405s are tracked by route too.
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.metrics.clone(), track))
        .fallback(not_found);
    // Access control over every route above and the fallback: nothing is
    // reachable without passing it (tests/auth.rs walks every route).
    let router = match &state.web_config {
        Some(web) => {
            let guard = auth::Guard {
                web: Arc::clone(web),
                metrics: Arc::clone(&state.metrics),
                log_budget: Arc::new(auth::LogBudget::new()),
            };
            router.layer(middleware::from_fn_with_state(guard, auth::guard))
        }
        None => router,
    };
    router
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
    let route = route_label(path.as_ref());
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

/// The `route` label of a request: its matched route, or `other`.
fn route_label(path: Option<&MatchedPath>) -> &'static str {
    path.and_then(|p| ROUTES.iter().find(|r| **r == p.as_str()).copied())
        .unwrap_or("other")
}

/// A method a route does not serve: counted and answered with a reason
/// (axum adds the `Allow` header).
async fn method_not_allowed(
    State(state): State<AppState>,
    method: axum::http::Method,
    path: Option<MatchedPath>,
) -> Error {
    let e = Error::MethodNotAllowed {
        method: method.to_string(),
        route: route_label(path.as_ref()),
    };
    state.count_rejection(&e);
    e
}

impl AppState {
    /// Counts a refused request under its reason.
    pub(crate) fn count_rejection(&self, e: &Error) {
        let labels = ReasonLabels { reason: e.reason() };
        self.metrics.requests_rejected.get_or_create(&labels).inc();
    }
}

/// Any other path: counted under `route="other"` (never by raw URI, so a
/// client cannot grow the label space).
async fn not_found(State(state): State<AppState>) -> Error {
    let labels = RequestLabels {
        route: "other",
        code: 404,
    };
    state.metrics.http_requests.get_or_create(&labels).inc();
    let e = Error::NotFound;
    let reason = ReasonLabels { reason: e.reason() };
    state.metrics.requests_rejected.get_or_create(&reason).inc();
    e
}
