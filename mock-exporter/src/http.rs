//! The mock exporter's HTTP surface: `/metrics?cluster=`, `/probe/{from}/{to}`,
//! `/-/healthy`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::RngExt;
use serde::Deserialize;

use crate::cluster::{self, Profile};
use crate::probe;
use crate::sim::Simulation;
use crate::text::openmetrics_to_text;

/// A source of unix seconds; tests inject a fixed one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })
}

/// Shared state: the seed, the clock and one simulation per cluster.
pub struct MockState {
    seed: u64,
    start: i64,
    max_clusters: usize,
    clock: Clock,
    clusters: Mutex<HashMap<String, Arc<Mutex<Simulation>>>>,
}

impl MockState {
    /// A new exporter state; every cluster's simulation starts at the clock's
    /// current second.
    pub fn new(seed: u64, max_clusters: usize, clock: Clock) -> Arc<Self> {
        let start = clock();
        Arc::new(MockState {
            seed,
            start,
            max_clusters,
            clock,
            clusters: Mutex::new(HashMap::new()),
        })
    }

    fn cluster(&self, name: &str) -> Result<Arc<Mutex<Simulation>>, String> {
        let mut clusters = self.clusters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sim) = clusters.get(name) {
            return Ok(Arc::clone(sim));
        }
        if clusters.len() >= self.max_clusters {
            let mut known: Vec<&str> = clusters.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(format!(
                "cluster {name:?} would exceed the limit of {} distinct clusters (--clusters.max); serving: {}",
                self.max_clusters,
                known.join(", ")
            ));
        }
        let sim = Arc::new(Mutex::new(Simulation::new(
            self.seed,
            Profile::of(name),
            self.start,
        )));
        clusters.insert(name.to_string(), Arc::clone(&sim));
        Ok(sim)
    }
}

/// Builds the mock exporter's router.
pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/probe/{from}/{to}", get(probe_handler))
        .route("/-/healthy", get(|| async { "mock-exporter is healthy\n" }))
        .with_state(state)
}

#[derive(Deserialize)]
struct MetricsQuery {
    cluster: Option<String>,
}

async fn metrics(
    State(state): State<Arc<MockState>>,
    Query(q): Query<MetricsQuery>,
    headers: HeaderMap,
) -> Response {
    let name = q.cluster.as_deref().unwrap_or(cluster::DEFAULT_CLUSTER);
    if !cluster::is_valid_name(name) {
        let msg = format!("invalid cluster name {name:?}: use 1-64 of [A-Za-z0-9_.-]\n");
        return (StatusCode::BAD_REQUEST, msg).into_response();
    }
    let sim = match state.cluster(name) {
        Ok(sim) => sim,
        Err(msg) => return (StatusCode::TOO_MANY_REQUESTS, msg + "\n").into_response(),
    };
    let page = {
        let mut sim = sim.lock().unwrap_or_else(PoisonError::into_inner);
        sim.advance_to((state.clock)());
        sim.encode_openmetrics()
    };
    // Serve OpenMetrics to scrapers that ask for it (Prometheus, vmagent),
    // the classic text format to everyone else (curl, promtool).
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/openmetrics-text") {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            page,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            openmetrics_to_text(&page),
        )
            .into_response()
    }
}

async fn probe_handler(Path((from, to)): Path<(String, String)>) -> Response {
    let Some((low, high)) = probe::delay_range(&from, &to) else {
        let msg = format!(
            "unknown region in {from:?} -> {to:?}; known regions: {}\n",
            probe::known_regions()
        );
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    let delay = rand::rng().random_range(low.as_secs_f64()..=high.as_secs_f64());
    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
    format!("{from} -> {to}: {:.1} ms\n", delay * 1000.0).into_response()
}
