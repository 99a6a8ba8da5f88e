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
//! logged with the reason and the peer, never with the secret: at most
//! [`LogBudget::PER_SECOND`] lines a second, so that a client retrying
//! without credentials in a loop cannot flood the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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
    pub(super) log_budget: Arc<LogBudget>,
}

/// How many refusals are logged each second. The counters count every
/// refusal; the lines left out are counted and reported (`suppressed`) on
/// the next line written. Approximate under races, which is enough to
/// bound the log. (No well-kept crate rate-limits tracing events; this is a
/// few atomics.)
pub(super) struct LogBudget {
    start: Instant,
    /// The second (since `start`) the counts below belong to.
    second: AtomicU64,
    /// Lines written in that second.
    written: AtomicU64,
    /// Lines left out since the last line written.
    suppressed: AtomicU64,
}

impl LogBudget {
    /// Lines a second.
    pub(super) const PER_SECOND: u64 = 10;

    pub(super) fn new() -> Self {
        LogBudget {
            start: Instant::now(),
            second: AtomicU64::new(0),
            written: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out before this one)` when this line may be
    /// written; `None` (and counted) when the second's lines are spent.
    fn take(&self) -> Option<u64> {
        let now = self.start.elapsed().as_secs();
        let second = self.second.load(Ordering::Relaxed);
        if now != second
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.written.store(0, Ordering::Relaxed);
        }
        if self.written.fetch_add(1, Ordering::Relaxed) < Self::PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
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
                if let Some(suppressed) = guard.log_budget.take() {
                    tracing::warn!(
                        peer = %peer(&req),
                        method = %req.method(),
                        route = route(&req),
                        name = %principal.name,
                        needs,
                        suppressed,
                        "request refused: role missing"
                    );
                }
                refuse(&guard.metrics, &req, Error::Forbidden { needs })
            }
            Err(denied) => {
                if let Some(suppressed) = guard.log_budget.take() {
                    tracing::warn!(
                        peer = %peer(&req),
                        method = %req.method(),
                        route = route(&req),
                        reason = %denied,
                        suppressed,
                        "request refused: not authenticated"
                    );
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_budget_writes_a_few_lines_a_second_and_counts_the_rest() {
        let budget = LogBudget::new();
        let taken: Vec<Option<u64>> = (0..25).map(|_| budget.take()).collect();
        // Unless the clock crossed a second boundary mid-test, the first
        // ten are written and the rest counted.
        if budget.start.elapsed().as_secs() == 0 {
            assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 10);
            assert_eq!(taken[0], Some(0));
            assert_eq!(budget.suppressed.load(Ordering::Relaxed), 15);
        }
        // In a new second the next line is written and reports those left out.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let left_out = budget.suppressed.load(Ordering::Relaxed);
        assert_eq!(budget.take(), Some(left_out));
        assert!(left_out > 0);
    }
}
