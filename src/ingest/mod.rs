//! Bytes → model: content negotiation, bounded decompression, one decoder per
//! protocol, and the one lowering they share into a [`WriteBatch`].
//!
//! Pure and synchronous: nothing here knows about axum, hyper or tokio
//! (`tests/layering.rs` checks the sources). The HTTP layer reads headers
//! and the size-limited body, hands them in, and maps [`Error`] to a status.
//!
//! Every protocol ends in [`lower::Lowering`], so validation, the
//! canonical key and the choice of each series' deciding sample are the same
//! whichever dialect a sender speaks: Remote-Write 1.0 is [`v1`], 2.0 is
//! [`v2`]. Bodies pushed to the Pushgateway API (text format 0.0.4 or
//! delimited protobuf) are read by [`push`] into [`ParsedFamily`] lists, as
//! strictly as the Pushgateway reads them, and checked by [`check_push`].

mod decompress;
mod error;
pub mod histogram;
pub mod lower;
pub mod push;
pub mod v1;
pub mod v2;
pub mod wire;

pub use decompress::{Decompressed, decompress_into};
pub use error::Error;
pub use lower::{Rules, TimeRange};
pub use push::{
    ParsedFamily, ParsedNative, ParsedSample, PushRule, check_push, check_push_grouped,
    parse_delimited, parse_text,
};

use std::time::Duration;

use crate::model::{SeriesLimits, WriteBatch};

/// The body encodings promgate accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Snappy block format, the remote-write default (and assumed when absent).
    Snappy,
    /// A zstd frame.
    Zstd,
    /// No compression.
    Identity,
}

impl Encoding {
    /// The label value of `promgate_received_bytes_total{encoding}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Snappy => "snappy",
            Encoding::Zstd => "zstd",
            Encoding::Identity => "identity",
        }
    }
}

/// The message schema of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Remote-Write 1.0, `prometheus.WriteRequest`.
    RemoteWrite1,
    /// Remote-Write 2.0, `io.prometheus.write.v2.Request`.
    RemoteWrite2,
}

/// What [`negotiate`] chose for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// The message schema.
    pub protocol: Protocol,
    /// The body's compression.
    pub encoding: Encoding,
}

/// Limits applied while decoding one request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Maximum decompressed body size in bytes, checked before allocating.
    pub max_decoded_bytes: usize,
    /// Per-series limits.
    pub series: SeriesLimits,
    /// How far ahead of the receiver's clock a sample may be stamped;
    /// `None` for no bound.
    pub future_window: Option<Duration>,
}

impl Limits {
    /// The lowering rules for a request received at `now_ms` (milliseconds
    /// since the Unix epoch, the receiver's wall clock).
    pub fn rules(&self, now_ms: i64) -> Rules {
        Rules {
            series: self.series,
            timestamps: TimeRange::new(now_ms, self.future_window),
        }
    }
}

/// The wall clock in milliseconds since the Unix epoch (0 if it is set
/// before the epoch), for [`Limits::rules`].
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The protocol a `Content-Type` names, with no regard to the encoding:
/// `None` unless it is protobuf. For answering a request whose encoding
/// could not be negotiated as its protocol asks (2.0's written headers).
pub fn protocol_of(content_type: Option<&str>) -> Option<Protocol> {
    match content_type {
        None => Some(Protocol::RemoteWrite1),
        Some(ct) => media_protocol(ct).ok(),
    }
}

/// The protocol of a `Content-Type` value: its media type must be
/// `application/x-protobuf` (any case), and its `proto` parameter, if any
/// (parameters in any order, spaces around `;` and `=`, the value quoted or
/// not, RFC 9110 §8.3), names the message.
fn media_protocol(ct: &str) -> Result<Protocol, Error> {
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(Error::UnsupportedMediaType(ct.to_string()));
    }
    let mut protocol = None;
    for param in parts {
        if let Some((k, v)) = param.split_once('=')
            && k.trim().eq_ignore_ascii_case("proto")
        {
            let named = match v.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Protocol::RemoteWrite1,
                "io.prometheus.write.v2.Request" => Protocol::RemoteWrite2,
                other => return Err(Error::UnsupportedProtocol(other.to_string())),
            };
            // A parameter given twice is an error (RFC 6838 §4.3; Go's
            // `mime.ParseMediaType`, which Prometheus' receiver uses,
            // refuses it): which message is meant is unsaid.
            if protocol.replace(named).is_some() {
                return Err(Error::UnsupportedProtocol(format!(
                    "proto given twice in {ct:?}"
                )));
            }
        }
    }
    Ok(protocol.unwrap_or(Protocol::RemoteWrite1))
}

/// Checks `Content-Type` and `Content-Encoding` and picks the decoder.
///
/// A missing `Content-Type` is taken as protobuf (Prometheus always sends it;
/// hand-made requests often do not). A missing `Content-Encoding` is snappy,
/// as both specifications say ("Protocol": the body is snappy-compressed,
/// block format); zstd (VictoriaMetrics' variant) and identity are accepted
/// too.
///
/// # Errors
///
/// [`Error::UnsupportedMediaType`], [`Error::UnsupportedProtocol`] (a
/// `proto=` other than `prometheus.WriteRequest` or
/// `io.prometheus.write.v2.Request`) or [`Error::UnsupportedEncoding`].
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Format, Error> {
    let protocol = match content_type {
        None => Protocol::RemoteWrite1,
        Some(ct) => media_protocol(ct)?,
    };
    let encoding = match content_encoding.map(str::trim) {
        None | Some("") => Encoding::Snappy,
        Some(e) if e.eq_ignore_ascii_case("snappy") => Encoding::Snappy,
        Some(e) if e.eq_ignore_ascii_case("zstd") => Encoding::Zstd,
        Some(e) if e.eq_ignore_ascii_case("identity") => Encoding::Identity,
        Some(e) => return Err(Error::UnsupportedEncoding(e.to_string())),
    };
    Ok(Format { protocol, encoding })
}

/// The other protocol, if `raw` (a message that decoded as `sent_as` to
/// nothing) carries only that protocol's top-level fields: 1.0's
/// `timeseries` (1) and `metadata` (3), or 2.0's `symbols` (4) and
/// `timeseries` (5).
fn other_schema(raw: &[u8], sent_as: Protocol) -> Option<Protocol> {
    let (mut v1, mut v2) = (false, false);
    let mut r = wire::Reader::new(raw);
    while r.has_more() {
        let (field, wire) = r.key().ok()?;
        match field {
            1 | 3 => v1 = true,
            4 | 5 => v2 = true,
            _ => {}
        }
        r.skip(field, wire).ok()?;
    }
    match sent_as {
        Protocol::RemoteWrite1 if v2 && !v1 => Some(Protocol::RemoteWrite2),
        Protocol::RemoteWrite2 if v1 && !v2 => Some(Protocol::RemoteWrite1),
        _ => None,
    }
}

impl Protocol {
    /// The message's fully qualified name, as `proto=` names it.
    pub fn message(self) -> &'static str {
        match self {
            Protocol::RemoteWrite1 => "prometheus.WriteRequest",
            Protocol::RemoteWrite2 => "io.prometheus.write.v2.Request",
        }
    }
}

/// Decodes request bodies into a [`WriteBatch`], keeping its buffers (the
/// decompressed body, the key arena, the series list) between requests: once
/// warm, a request allocates and zeroes none of them. The write handler keeps
/// one per worker thread; the criterion benchmark times this same path.
#[derive(Default)]
pub struct Decoder {
    raw: Vec<u8>,
    batch: WriteBatch,
    /// Remote-Write 2.0's symbols table (offsets into `raw`).
    symbols: Vec<u32>,
    decoded_bytes: usize,
}

impl Decoder {
    /// Buffers larger than this are dropped by [`Decoder::trim`], so that one
    /// huge body does not pin its memory to a worker thread.
    pub const KEEP_BYTES: usize = 4 << 20;

    /// Decompresses and decodes one body of `format`, received at `now_ms`
    /// (which bounds the sample timestamps accepted).
    ///
    /// # Errors
    ///
    /// Any [`Error`] of decompression or of the protocol's wire format,
    /// and [`Error::SchemaMismatch`] for a non-empty body that yields nothing
    /// but carries the other protocol's fields; the body then changes
    /// nothing. Invalid series are not errors: they are counted in the
    /// batch's `rejected`.
    pub fn decode(
        &mut self,
        format: Format,
        body: &[u8],
        limits: &Limits,
        now_ms: i64,
    ) -> Result<&WriteBatch, Error> {
        self.decoded_bytes = 0;
        let raw = decompress_into(
            format.encoding,
            body,
            limits.max_decoded_bytes,
            &mut self.raw,
        )?
        .bytes(body, &self.raw);
        self.decoded_bytes = raw.len();
        let result = match format.protocol {
            Protocol::RemoteWrite1 => v1::decode_into(raw, &limits.rules(now_ms), &mut self.batch),
            Protocol::RemoteWrite2 => v2::decode_reusing(
                raw,
                &limits.rules(now_ms),
                &mut self.batch,
                &mut self.symbols,
            ),
        };
        result?;
        // Each schema skips the other's fields (2.0 reserves 1.0's numbers so
        // that a mislabelled body reads as empty): a body that held something
        // yet yielded nothing was most likely sent under the wrong type.
        let b = &self.batch;
        if !raw.is_empty()
            && b.series.is_empty()
            && b.metadata.is_empty()
            && b.rejected.first.is_none()
            && let Some(looks_like) = other_schema(raw, format.protocol)
        {
            return Err(Error::SchemaMismatch {
                sent_as: format.protocol,
                looks_like,
            });
        }
        Ok(&self.batch)
    }

    /// The batch of the last body decoded without error.
    pub fn batch(&self) -> &WriteBatch {
        &self.batch
    }

    /// The decompressed size of the last body, in bytes (0 if it failed to decompress).
    pub fn decoded_bytes(&self) -> usize {
        self.decoded_bytes
    }

    /// Drops buffers grown over [`Decoder::KEEP_BYTES`].
    pub fn trim(&mut self) {
        if self.raw.capacity() > Self::KEEP_BYTES {
            self.raw = Vec::new();
        }
        if self.batch.capacity_bytes() > Self::KEEP_BYTES {
            self.batch = WriteBatch::default();
        }
        if self.symbols.capacity() * 4 > Self::KEEP_BYTES {
            self.symbols = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let v1 = |encoding| {
            Ok(Format {
                protocol: Protocol::RemoteWrite1,
                encoding,
            })
        };
        let pb = Some("application/x-protobuf");
        assert_eq!(negotiate(pb, Some("snappy")), v1(Encoding::Snappy));
        assert_eq!(negotiate(pb, None), v1(Encoding::Snappy));
        assert_eq!(negotiate(None, None), v1(Encoding::Snappy));
        assert_eq!(negotiate(pb, Some("zstd")), v1(Encoding::Zstd));
        assert_eq!(negotiate(pb, Some("identity")), v1(Encoding::Identity));
        let with_proto = Some("application/x-protobuf;proto=prometheus.WriteRequest");
        assert_eq!(negotiate(with_proto, None), v1(Encoding::Snappy));
        let v2 = |encoding| {
            Ok(Format {
                protocol: Protocol::RemoteWrite2,
                encoding,
            })
        };
        for ct in [
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "Application/X-Protobuf ; charset=utf-8; proto = \"io.prometheus.write.v2.Request\"",
        ] {
            assert_eq!(
                negotiate(Some(ct), Some("snappy")),
                v2(Encoding::Snappy),
                "{ct}"
            );
        }
        assert!(matches!(
            negotiate(
                Some("application/x-protobuf;proto=io.prometheus.write.v3.Request"),
                None
            ),
            Err(Error::UnsupportedProtocol(_))
        ));
        assert!(matches!(
            negotiate(Some("application/json"), None),
            Err(Error::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            negotiate(pb, Some("gzip")),
            Err(Error::UnsupportedEncoding(_))
        ));
    }
}
