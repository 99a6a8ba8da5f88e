//! What can go wrong turning a request body into a [`WriteBatch`](crate::model::WriteBatch)
//! or a pushed body into its families.
//!
//! This layer says *what* went wrong; which HTTP status that deserves is
//! decided once, in `http::error`.

use std::fmt;

/// Why a body could not be decoded at all. Per-series faults are not errors:
/// they are recorded in the batch's [`Rejections`](crate::model::Rejections).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A `Content-Type` other than `application/x-protobuf`.
    UnsupportedMediaType(String),
    /// A `proto=` parameter naming a message other than `prometheus.WriteRequest`.
    UnsupportedProtocol(String),
    /// A `Content-Encoding` other than snappy, zstd or identity.
    UnsupportedEncoding(String),
    /// The decompressed body is (or declares to be) over the decoded-size limit.
    DecodedTooLarge {
        /// The size the compressed header declares, when it declares one.
        declared: Option<u64>,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body is not valid for its `Content-Encoding`.
    Decompress {
        /// `snappy` or `zstd`.
        encoding: &'static str,
        /// What the decompressor reported.
        detail: String,
    },
    /// The decompressed body is not a valid `prometheus.WriteRequest`.
    Protobuf(String),
    /// The decompressed body is not a valid `io.prometheus.write.v2.Request`.
    ProtobufV2(String),
    /// A body that decoded to nothing as the message its `Content-Type`
    /// names, but carries the other protocol's fields.
    SchemaMismatch {
        /// What the `Content-Type` said.
        sent_as: super::Protocol,
        /// What the body looks like.
        looks_like: super::Protocol,
    },
    /// A Remote-Write 2.0 request breaking a rule of the whole message
    /// (the symbols table must start with the empty string).
    InvalidRequest(String),
    /// A push path (`/metrics/job/<job>{/<label>/<value>}`) that names no
    /// valid grouping key.
    InvalidGrouping(String),
    /// A push's `Content-Encoding` other than gzip, snappy or identity.
    UnsupportedPushEncoding(String),
    /// A pushed body in the text format that the Go parser (as the
    /// Pushgateway runs it) refuses.
    TextFormat {
        /// The line, counted from 1.
        line: usize,
        /// What is wrong there, in the words of Go's parser where it has them.
        reason: String,
    },
    /// A pushed delimited-protobuf body that is malformed, or carries what a
    /// push cannot (see `push::parse_delimited`).
    MetricFamily(String),
    /// A pushed body that parses but that the push's consistency check
    /// refuses.
    InvalidPush {
        /// The rule broken.
        rule: super::PushRule,
        /// Which series, and why.
        detail: String,
    },
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
                "unsupported remote-write message {p:?}: promgate accepts prometheus.WriteRequest (remote-write 1.0) and io.prometheus.write.v2.Request (2.0)"
            ),
            Error::UnsupportedEncoding(e) => write!(
                f,
                "unsupported Content-Encoding {e:?}: expected snappy, zstd or identity"
            ),
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
            Error::Decompress { encoding, detail } => {
                write!(f, "malformed {encoding} body: {detail}")
            }
            Error::Protobuf(e) => write!(f, "malformed protobuf WriteRequest: {e}"),
            Error::ProtobufV2(e) => {
                write!(f, "malformed protobuf io.prometheus.write.v2.Request: {e}")
            }
            Error::InvalidRequest(e) => write!(f, "invalid remote-write 2.0 request: {e}"),
            Error::InvalidGrouping(e) => write!(f, "invalid push path: {e}"),
            Error::UnsupportedPushEncoding(e) => write!(
                f,
                "unsupported Content-Encoding {e:?} for a push: expected gzip, snappy or identity"
            ),
            Error::TextFormat { line, reason } => {
                write!(f, "text format parsing error in line {line}: {reason}")
            }
            Error::MetricFamily(e) => {
                write!(f, "invalid delimited protobuf MetricFamily body: {e}")
            }
            Error::InvalidPush { detail, .. } => {
                write!(f, "pushed metrics are invalid or inconsistent: {detail}")
            }
            Error::SchemaMismatch {
                sent_as,
                looks_like,
            } => write!(
                f,
                "the body decodes to nothing as {} but carries the fields of {}: send it with Content-Type application/x-protobuf;proto={}",
                sent_as.message(),
                looks_like.message(),
                looks_like.message()
            ),
        }
    }
}

impl std::error::Error for Error {}
