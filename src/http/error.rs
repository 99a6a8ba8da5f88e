//! The one error type of the HTTP surface and how each case is answered.
//!
//! The layers below say what went wrong ([`ingest::Error`], the store's
//! rejections); this is the only place that decides statuses. Every variant
//! maps to an explicit status and a one-line reason that names the problem
//! precisely; nothing internal (OS errors, paths) reaches a body. `reason()`
//! is the label value under which the request is counted in
//! `promgate_requests_rejected_total`.
//!
//! Statuses are chosen knowing how senders retry: Prometheus retries 5xx
//! (and 429 only with `queue_config.retry_on_http_429`), vmagent retries
//! everything but 400, 409 and 415, and the Pushgateway's clients retry
//! nothing. So data that can never be accepted gets a 4xx (retrying would
//! block the sender's queue), and only a condition that passes (overload)
//! gets a 5xx, which every sender retries.

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ingest;
use crate::model::Rejection;
use crate::store::PushConflict;

/// Why a request was not (fully) served.
#[derive(Debug)]
pub enum Error {
    /// The body could not be negotiated, decompressed or decoded.
    Ingest(ingest::Error),
    /// The compressed body is over `--limits.request-body-bytes`.
    BodyTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body could not be read from the connection.
    BodyRead(String),
    /// The body did not arrive within `--web.read-timeout`.
    BodyTimeout {
        /// The configured timeout.
        after: Duration,
    },
    /// Some series or metadata were rejected; the valid ones were stored.
    Rejected {
        /// Series stored from this request.
        stored_series: u64,
        /// Series (and metadata entries) rejected.
        rejected_series: u64,
        /// Samples rejected.
        rejected_samples: u64,
        /// Metadata entries rejected.
        rejected_metadata: u64,
        /// The first rejection.
        first: Rejection,
    },
    /// `--exposition.max-concurrent-scrapes` renders were running for all of
    /// `--exposition.max-queue-duration`.
    TooManyScrapes {
        /// The configured bound.
        limit: usize,
        /// How long the scrape waited for a slot.
        waited: Duration,
    },
    /// `--limits.concurrent-writes` remote-write requests were being served
    /// for all of `--limits.write-queue-duration`.
    TooManyWrites {
        /// The configured bound.
        limit: usize,
        /// How long the request waited for a slot.
        waited: Duration,
    },
    /// Request bodies held `--limits.body-bytes-in-flight` bytes for all of
    /// `--limits.write-queue-duration` while this one was arriving.
    TooManyBodyBytes {
        /// The configured budget in bytes.
        budget: usize,
        /// How long the request waited for budget.
        waited: Duration,
    },
    /// The render thread could not be started (the cause is logged).
    RenderUnavailable,
    /// A push that parsed but is inconsistent with other groups, or would
    /// overfill the store; nothing of it was stored.
    PushConflict(PushConflict),
    /// No such route.
    NotFound,
    /// The route exists but does not serve this method (the `Allow` header,
    /// which axum adds, lists those it does).
    MethodNotAllowed {
        /// The method sent.
        method: String,
        /// The matched route, as axum writes it (never the raw path).
        route: &'static str,
    },
    /// `--web.config.file` asks for credentials and the request had none
    /// that match (why is logged, never told: the client cannot learn
    /// which users exist).
    Unauthorized {
        /// Offer `Basic realm="promgate"` (users are configured).
        basic: bool,
        /// Offer `Bearer realm="promgate"` (tokens are configured).
        bearer: bool,
    },
    /// The caller is authenticated but its `roles` do not allow the method.
    Forbidden {
        /// The role the request needed: `read` or `write`.
        needs: &'static str,
    },
}

impl Error {
    /// Every value [`Error::reason`] can return, so that each counter
    /// starts at zero.
    pub const REASONS: [&'static str; 26] = [
        "unsupported_media_type",
        "unsupported_protocol",
        "unsupported_encoding",
        "body_too_large",
        "decoded_body_too_large",
        "body_read",
        "body_timeout",
        "malformed_compression",
        "malformed_protobuf",
        "invalid_request",
        "schema_mismatch",
        "malformed_text",
        "invalid_push",
        "invalid_series",
        "too_many_scrapes",
        "too_many_writes",
        "too_many_body_bytes",
        "render_unavailable",
        "invalid_push_path",
        "unsupported_push_encoding",
        "inconsistent_push",
        "push_series_limit",
        "not_found",
        "method_not_allowed",
        "unauthorized",
        "forbidden",
    ];

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Ingest(e) => match e {
                ingest::Error::UnsupportedMediaType(_)
                | ingest::Error::UnsupportedProtocol(_)
                | ingest::Error::UnsupportedEncoding(_)
                | ingest::Error::SchemaMismatch { .. }
                | ingest::Error::UnsupportedPushEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ingest::Error::DecodedTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                ingest::Error::Decompress { .. }
                | ingest::Error::Protobuf(_)
                | ingest::Error::ProtobufV2(_)
                | ingest::Error::InvalidRequest(_)
                | ingest::Error::InvalidGrouping(_)
                | ingest::Error::TextFormat { .. }
                | ingest::Error::MetricFamily(_)
                | ingest::Error::InvalidPush { .. } => StatusCode::BAD_REQUEST,
            },
            Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::BodyRead(_) | Error::Rejected { .. } => StatusCode::BAD_REQUEST,
            Error::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            // Not 429, the 2.0 spec's answer to an overloaded receiver: a
            // Prometheus without `retry_on_http_429` drops the batch on 429,
            // and retries a 503 with backoff, as vmagent retries both.
            Error::TooManyScrapes { .. }
            | Error::TooManyWrites { .. }
            | Error::TooManyBodyBytes { .. }
            | Error::RenderUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            // The Pushgateway's answer; batch jobs do not retry a push.
            Error::PushConflict(_) => StatusCode::BAD_REQUEST,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The label value of `promgate_requests_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Ingest(e) => match e {
                ingest::Error::UnsupportedMediaType(_) => "unsupported_media_type",
                ingest::Error::UnsupportedProtocol(_) => "unsupported_protocol",
                ingest::Error::UnsupportedEncoding(_) => "unsupported_encoding",
                ingest::Error::DecodedTooLarge { .. } => "decoded_body_too_large",
                ingest::Error::Decompress { .. } => "malformed_compression",
                ingest::Error::Protobuf(_)
                | ingest::Error::ProtobufV2(_)
                | ingest::Error::MetricFamily(_) => "malformed_protobuf",
                ingest::Error::InvalidRequest(_) => "invalid_request",
                ingest::Error::SchemaMismatch { .. } => "schema_mismatch",
                ingest::Error::InvalidGrouping(_) => "invalid_push_path",
                ingest::Error::UnsupportedPushEncoding(_) => "unsupported_push_encoding",
                ingest::Error::TextFormat { .. } => "malformed_text",
                ingest::Error::InvalidPush { .. } => "invalid_push",
            },
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::BodyRead(_) => "body_read",
            Error::BodyTimeout { .. } => "body_timeout",
            Error::Rejected { .. } => "invalid_series",
            Error::TooManyScrapes { .. } => "too_many_scrapes",
            Error::TooManyWrites { .. } => "too_many_writes",
            Error::TooManyBodyBytes { .. } => "too_many_body_bytes",
            Error::RenderUnavailable => "render_unavailable",
            Error::PushConflict(PushConflict::SeriesLimit(_)) => "push_series_limit",
            Error::PushConflict(_) => "inconsistent_push",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
        }
    }
}

impl From<ingest::Error> for Error {
    fn from(e: ingest::Error) -> Self {
        Error::Ingest(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Ingest(e) => e.fmt(f),
            Error::BodyTooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            Error::BodyRead(e) => write!(f, "could not read request body: {e}"),
            Error::BodyTimeout { after } => write!(
                f,
                "request body not received within {}",
                humantime::format_duration(*after)
            ),
            Error::Rejected {
                stored_series,
                rejected_series,
                rejected_samples,
                rejected_metadata,
                first,
            } => {
                write!(
                    f,
                    "stored {stored_series} series, rejected {rejected_series} series \
                     ({rejected_samples} samples)"
                )?;
                match rejected_metadata {
                    0 => {}
                    1 => f.write_str(" and 1 metadata entry")?,
                    n => write!(f, " and {n} metadata entries")?,
                }
                write!(f, "; first error: {first}")
            }
            Error::TooManyScrapes { limit, waited } => write!(
                f,
                "too many concurrent scrapes: {limit} pages were being rendered for all of {}ms; retry later",
                waited.as_millis()
            ),
            Error::TooManyWrites { limit, waited } => write!(
                f,
                "too many concurrent writes: {limit} requests were being served for all of {}; retry later",
                humantime::format_duration(*waited)
            ),
            Error::TooManyBodyBytes { budget, waited } => write!(
                f,
                "too many request bytes in flight: other bodies held the budget of {budget} bytes for all of {}; retry later",
                humantime::format_duration(*waited)
            ),
            Error::RenderUnavailable => {
                f.write_str("cannot start rendering the page now; retry later")
            }
            Error::PushConflict(c) => {
                write!(f, "pushed metrics are inconsistent with existing metrics: {c}")
            }
            Error::NotFound => f.write_str(
                "not found: promgate serves POST /api/v1/write, GET /metrics, PUT|POST|DELETE /metrics/job/<job>{/<label>/<value>}, GET /api/v1/metrics, /api/v1/status, PUT /api/v1/admin/wipe, /-/metrics, /-/healthy, /-/ready",
            ),
            Error::MethodNotAllowed { method, route } => {
                write!(f, "method not allowed: {method} {route}; ")?;
                if *route == "/api/v1/write" {
                    f.write_str("POST remote-write requests to it")
                } else {
                    f.write_str("the Allow header lists the methods it takes")
                }
            }
            Error::Unauthorized { .. } => {
                f.write_str("unauthorized: missing or invalid credentials")
            }
            Error::Forbidden { needs } => write!(
                f,
                "forbidden: these credentials do not have the {needs} role"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The longest reason line an answer carries, in bytes (before its line
/// break). A reason quotes the name or token at fault, which a hostile
/// request can make as long as its body; the sender logs the line, so it is
/// cut short, on a character boundary, with `…`.
pub const MAX_REASON_BYTES: usize = 1024;

/// `reason` cut to [`MAX_REASON_BYTES`], with a line break.
fn reason_line(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES - '…'.len_utf8();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason.push('\n');
    reason
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // The body is one line of plain text, as Prometheus logs it verbatim.
        let mut response = (self.status(), reason_line(self.to_string())).into_response();
        if let Error::Unauthorized { basic, bearer } = self {
            let headers = response.headers_mut();
            // One challenge per header (RFC 9110 allows either form; curl
            // and browsers read both).
            if basic || !bearer {
                headers.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"promgate\""),
                );
            }
            if bearer {
                headers.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"promgate\""),
                );
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RejectReason;

    #[test]
    fn a_reason_line_is_cut_on_a_character_boundary() {
        assert_eq!(reason_line("short".into()), "short\n");
        let exact = "x".repeat(MAX_REASON_BYTES);
        assert_eq!(reason_line(exact.clone()), exact + "\n");
        // Two-byte characters straddling the cut.
        let long = "é".repeat(MAX_REASON_BYTES);
        let line = reason_line(long);
        assert!(line.len() <= MAX_REASON_BYTES + 1, "{}", line.len());
        assert!(line.ends_with("é…\n"), "{line}");
    }

    #[test]
    fn every_reason_is_listed_once() {
        let all = [
            Error::Ingest(ingest::Error::UnsupportedMediaType(String::new())),
            Error::Ingest(ingest::Error::UnsupportedProtocol(String::new())),
            Error::Ingest(ingest::Error::UnsupportedEncoding(String::new())),
            Error::BodyTooLarge { limit: 1 },
            Error::Ingest(ingest::Error::DecodedTooLarge {
                declared: None,
                limit: 1,
            }),
            Error::BodyRead(String::new()),
            Error::BodyTimeout {
                after: Duration::from_secs(1),
            },
            Error::Ingest(ingest::Error::Decompress {
                encoding: "snappy",
                detail: String::new(),
            }),
            Error::Ingest(ingest::Error::Protobuf(String::new())),
            Error::Ingest(ingest::Error::InvalidRequest(String::new())),
            Error::Ingest(ingest::Error::SchemaMismatch {
                sent_as: ingest::Protocol::RemoteWrite1,
                looks_like: ingest::Protocol::RemoteWrite2,
            }),
            Error::Ingest(ingest::Error::TextFormat {
                line: 1,
                reason: String::new(),
            }),
            Error::Ingest(ingest::Error::InvalidPush {
                rule: ingest::PushRule::Timestamp,
                detail: String::new(),
            }),
            Error::Rejected {
                stored_series: 0,
                rejected_series: 1,
                rejected_samples: 1,
                rejected_metadata: 0,
                first: Rejection {
                    reason: RejectReason::InvalidMetricName,
                    detail: String::new(),
                },
            },
            Error::TooManyScrapes {
                limit: 1,
                waited: Duration::ZERO,
            },
            Error::TooManyWrites {
                limit: 1,
                waited: Duration::ZERO,
            },
            Error::TooManyBodyBytes {
                budget: 1,
                waited: Duration::ZERO,
            },
            Error::RenderUnavailable,
            Error::Ingest(ingest::Error::InvalidGrouping(String::new())),
            Error::Ingest(ingest::Error::UnsupportedPushEncoding(String::new())),
            Error::PushConflict(PushConflict::DuplicateSeries {
                key: String::new(),
                group: String::new(),
            }),
            Error::PushConflict(PushConflict::SeriesLimit(Rejection {
                reason: RejectReason::SeriesLimit,
                detail: String::new(),
            })),
            Error::NotFound,
            Error::MethodNotAllowed {
                method: "PATCH".into(),
                route: "/metrics",
            },
            Error::Unauthorized {
                basic: true,
                bearer: false,
            },
            Error::Forbidden { needs: "write" },
        ];
        let reasons: Vec<_> = all.iter().map(Error::reason).collect();
        assert_eq!(reasons, Error::REASONS);
        for e in &all {
            let line = e.to_string();
            assert!(!line.is_empty() && !line.contains('\n'), "{line:?}");
        }
    }
}
