//! Access control: the layer `router()` puts over every route and the
//! fallback when `--web.config.file` is set.
//!
//! It reads the config in force for each request (a reload applies to the
//! next request), checks the `Authorization` header against its users and
//! tokens when it has any, checks the caller's role against the method
//! (`GET`/`HEAD` read, anything else writes), and adds the configured
//! response headers to every answer, refusals included. A refusal is
//! counted like any other (`promgate_http_requests_total` with its route
//! and status, `promgate_requests_rejected_total` with its reason) and
//! logged with the reason and the peer, never with the secret.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Error, route_label};
use crate::self_metrics::{ReasonLabels, RequestLabels, SelfMetrics};
use crate::web_config::{Role, WebConfigHandle};

/// What the layer needs: the config in force and the counters.
#[derive(Clone)]
pub(super) struct Guard {
    pub(super) web: Arc<WebConfigHandle>,
    pub(super) metrics: Arc<SelfMetrics>,
}

/// The middleware: authenticate, authorize, then serve.
pub(super) async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let config = guard.web.current();
    let credentials = &config.credentials;
    let mut response = if credentials.is_empty() {
        next.run(req).await
    } else {
        let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
        let verdict = Arc::clone(credentials).authenticate(header).await;
        let needs = if matches!(*req.method(), Method::GET | Method::HEAD) {
            Role::Read
        } else {
            Role::Write
        };
        match verdict {
            Ok(principal) if principal.may(needs) => next.run(req).await,
            Ok(principal) => {
                let needs = match needs {
                    Role::Read => "read",
                    Role::Write => "write",
                };
                tracing::warn!(
                    peer = %peer(&req),
                    method = %req.method(),
                    route = route(&req),
                    name = %principal.name,
                    needs,
                    "request refused: role missing"
                );
                refuse(&guard.metrics, &req, Error::Forbidden { needs })
            }
            Err(denied) => {
                tracing::warn!(
                    peer = %peer(&req),
                    method = %req.method(),
                    route = route(&req),
                    reason = %denied,
                    "request refused: not authenticated"
                );
                let e = Error::Unauthorized {
                    basic: credentials.has_users(),
                    bearer: credentials.has_tokens(),
                };
                refuse(&guard.metrics, &req, e)
            }
        }
    };
    let headers = response.headers_mut();
    for (name, value) in &config.headers {
        // Validated when the config was loaded.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

fn route(req: &Request) -> &'static str {
    route_label(req.extensions().get::<MatchedPath>())
}

fn peer(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string())
}

/// Counts the refusal as the routes count their answers, and answers it.
fn refuse(metrics: &SelfMetrics, req: &Request, e: Error) -> Response {
    let labels = RequestLabels {
        route: route(req),
        code: e.status().as_u16(),
    };
    metrics.http_requests.get_or_create(&labels).inc();
    let reason = ReasonLabels { reason: e.reason() };
    metrics.requests_rejected.get_or_create(&reason).inc();
    e.into_response()
}
