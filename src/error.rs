//! The one error type of the HTTP surface and how each case is answered.
//!
//! Every variant maps to an explicit status and a one-line reason that names
//! the problem precisely; nothing internal leaks into a body. `reason()` is the
//! label value under which the request is counted in
//! `promgate_requests_rejected_total`.

use std::fmt;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::model::Rejection;

/// Why a request was not (fully) accepted.
#[derive(Debug)]
pub enum Error {
    /// A `Content-Type` other than `application/x-protobuf`.
    UnsupportedMediaType(String),
    /// A `proto=` parameter naming a message other than `prometheus.WriteRequest`.
    UnsupportedProtocol(String),
    /// A `Content-Encoding` other than snappy, zstd or identity.
    UnsupportedEncoding(String),
    /// The compressed body is over `--limits.request-body-bytes`.
    BodyTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The decompressed body is (or declares to be) over `--limits.decoded-body-bytes`.
    DecodedTooLarge {
        /// The size the compressed header declares, when it declares one.
        declared: Option<u64>,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body could not be read from the connection.
    BodyRead(String),
    /// The body is not valid for its `Content-Encoding`.
    Decompress {
        /// `snappy` or `zstd`.
        encoding: &'static str,
        /// What the decompressor reported.
        detail: String,
    },
    /// The decompressed body is not a valid `prometheus.WriteRequest`.
    Protobuf(String),
    /// Some series or metadata were rejected; the valid ones were stored.
    Rejected {
        /// Series stored from this request.
        stored_series: u64,
        /// Series (and metadata entries) rejected.
        rejected_series: u64,
        /// Samples rejected.
        rejected_samples: u64,
        /// The first rejection.
        first: Rejection,
    },
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::UnsupportedMediaType(_)
            | Error::UnsupportedProtocol(_)
            | Error::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::BodyTooLarge { .. } | Error::DecodedTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::BodyRead(_)
            | Error::Decompress { .. }
            | Error::Protobuf(_)
            | Error::Rejected { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The label value of `promgate_requests_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::UnsupportedProtocol(_) => "unsupported_protocol",
            Error::UnsupportedEncoding(_) => "unsupported_encoding",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::DecodedTooLarge { .. } => "decoded_body_too_large",
            Error::BodyRead(_) => "body_read",
            Error::Decompress { .. } => "malformed_compression",
            Error::Protobuf(_) => "malformed_protobuf",
            Error::Rejected { .. } => "invalid_series",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedMediaType(t) => write!(
                f,
                "unsupported Content-Type {t:?}: expected application/x-protobuf"
            ),
            Error::UnsupportedProtocol(p) => write!(
                f,
                "unsupported remote-write message {p:?}: promgate accepts prometheus.WriteRequest (remote-write 1.0)"
            ),
            Error::UnsupportedEncoding(e) => write!(
                f,
                "unsupported Content-Encoding {e:?}: expected snappy, zstd or identity"
            ),
            Error::BodyTooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            Error::DecodedTooLarge {
                declared: Some(n),
                limit,
            } => write!(
                f,
                "decompressed body would be {n} bytes, more than the limit of {limit} bytes"
            ),
            Error::DecodedTooLarge {
                declared: None,
                limit,
            } => write!(
                f,
                "decompressed body is larger than the limit of {limit} bytes"
            ),
            Error::BodyRead(e) => write!(f, "could not read request body: {e}"),
            Error::Decompress { encoding, detail } => {
                write!(f, "malformed {encoding} body: {detail}")
            }
            Error::Protobuf(e) => write!(f, "malformed protobuf WriteRequest: {e}"),
            Error::Rejected {
                stored_series,
                rejected_series,
                rejected_samples,
                first,
            } => write!(
                f,
                "stored {stored_series} series, rejected {rejected_series} series \
                 ({rejected_samples} samples); first error: {first}"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // The body is one line of plain text, as Prometheus logs it verbatim.
        (self.status(), format!("{self}\n")).into_response()
    }
}
