//! Bytes → model: content negotiation, bounded decompression, protobuf decode.
//!
//! Pure and synchronous: nothing here knows about axum or tokio. The HTTP
//! layer reads headers and the (size-limited) body and hands them in.

pub mod v1;
pub mod wire;

use std::borrow::Cow;
use std::io::Read;

use crate::error::Error;
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

/// Limits applied while decoding one request.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Maximum decompressed body size, checked before allocating.
    pub max_decoded_bytes: usize,
    /// Per-series limits.
    pub series: SeriesLimits,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decoded_bytes: 64 << 20,
            series: SeriesLimits::default(),
        }
    }
}

/// Checks `Content-Type` and `Content-Encoding` and picks the decoder.
///
/// A missing `Content-Type` is taken as protobuf (Prometheus always sends it;
/// hand-made requests often do not). A missing `Content-Encoding` is snappy,
/// as the remote-write 1.0 specification says.
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Encoding, Error> {
    if let Some(ct) = content_type {
        let mut parts = ct.split(';');
        let media = parts.next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(Error::UnsupportedMediaType(ct.to_string()));
        }
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("proto")
            {
                let v = v.trim().trim_matches('"');
                if v != "prometheus.WriteRequest" {
                    return Err(Error::UnsupportedProtocol(v.to_string()));
                }
            }
        }
    }
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(Encoding::Snappy),
        Some(e) if e.eq_ignore_ascii_case("snappy") => Ok(Encoding::Snappy),
        Some(e) if e.eq_ignore_ascii_case("zstd") => Ok(Encoding::Zstd),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(Encoding::Identity),
        Some(e) => Err(Error::UnsupportedEncoding(e.to_string())),
    }
}

/// Decompresses `body`, refusing before allocation anything that declares a
/// size over `max`, and stopping any decoder that tries to produce more.
pub fn decompress(encoding: Encoding, body: &[u8], max: usize) -> Result<Cow<'_, [u8]>, Error> {
    let mut out = Vec::new();
    match decompress_into(encoding, body, max, &mut out)? {
        Decompressed::Body => Ok(Cow::Borrowed(body)),
        Decompressed::Out(len) => {
            out.truncate(len);
            Ok(Cow::Owned(out))
        }
    }
}

/// Where [`decompress_into`] left the decompressed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decompressed {
    /// The body itself (no compression).
    Body,
    /// The first `len` bytes of the output buffer.
    Out(usize),
}

impl Decompressed {
    /// The decompressed bytes.
    pub fn bytes<'b>(self, body: &'b [u8], out: &'b [u8]) -> &'b [u8] {
        match self {
            Decompressed::Body => body,
            Decompressed::Out(len) => &out[..len],
        }
    }
}

/// [`decompress`] into `out`, a buffer kept between requests: once it has
/// grown to the usual size, a request costs no allocation and no zeroing.
/// `out`'s length is its initialised part, and may exceed the result.
pub fn decompress_into(
    encoding: Encoding,
    body: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<Decompressed, Error> {
    let too_large = |declared| Error::DecodedTooLarge {
        declared,
        limit: max,
    };
    match encoding {
        Encoding::Identity if body.len() > max => Err(too_large(Some(body.len() as u64))),
        Encoding::Identity => Ok(Decompressed::Body),
        Encoding::Snappy => {
            let malformed = |e: snap::Error| Error::Decompress {
                encoding: "snappy",
                detail: e.to_string(),
            };
            let len = snap::raw::decompress_len(body).map_err(malformed)?;
            if len > max {
                return Err(too_large(Some(len as u64)));
            }
            if out.len() < len {
                out.resize(len, 0);
            }
            let n = snap::raw::Decoder::new()
                .decompress(body, &mut out[..len])
                .map_err(malformed)?;
            Ok(Decompressed::Out(n))
        }
        Encoding::Zstd => {
            let malformed = |detail: String| Error::Decompress {
                encoding: "zstd",
                detail,
            };
            let declared = zstd::zstd_safe::get_frame_content_size(body)
                .map_err(|_| malformed("not a zstd frame".to_string()))?;
            if let Some(n) = declared
                && n > max as u64
            {
                return Err(too_large(Some(n)));
            }
            let decoder = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|e| malformed(e.to_string()))?;
            out.clear();
            out.reserve(declared.unwrap_or(0) as usize);
            // One byte past the limit tells "exactly at the limit" from "over".
            decoder
                .take(max as u64 + 1)
                .read_to_end(out)
                .map_err(|e| malformed(e.to_string()))?;
            if out.len() > max {
                return Err(too_large(None));
            }
            Ok(Decompressed::Out(out.len()))
        }
    }
}

/// Decompresses and decodes one remote-write 1.0 request body.
pub fn decode_request(
    encoding: Encoding,
    body: &[u8],
    limits: &DecodeLimits,
) -> Result<WriteBatch, Error> {
    let raw = decompress(encoding, body, limits.max_decoded_bytes)?;
    v1::decode(&raw, &limits.series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let pb = Some("application/x-protobuf");
        assert_eq!(negotiate(pb, Some("snappy")).unwrap(), Encoding::Snappy);
        assert_eq!(negotiate(pb, None).unwrap(), Encoding::Snappy);
        assert_eq!(negotiate(None, None).unwrap(), Encoding::Snappy);
        assert_eq!(negotiate(pb, Some("zstd")).unwrap(), Encoding::Zstd);
        assert_eq!(negotiate(pb, Some("identity")).unwrap(), Encoding::Identity);
        let with_proto = Some("application/x-protobuf;proto=prometheus.WriteRequest");
        assert_eq!(negotiate(with_proto, None).unwrap(), Encoding::Snappy);
        assert!(matches!(
            negotiate(
                Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
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

    #[test]
    fn a_reused_buffer_yields_only_this_body() {
        let long = snap::raw::Encoder::new()
            .compress_vec(&[1u8; 1000])
            .unwrap();
        let short = snap::raw::Encoder::new().compress_vec(b"abc").unwrap();
        let mut zstd_short = Vec::new();
        zstd::stream::copy_encode(&b"xyz"[..], &mut zstd_short, 1).unwrap();
        let mut out = Vec::new();
        let got = decompress_into(Encoding::Snappy, &long, 1 << 20, &mut out).unwrap();
        assert_eq!(got.bytes(&long, &out), &[1u8; 1000][..]);
        let got = decompress_into(Encoding::Snappy, &short, 1 << 20, &mut out).unwrap();
        assert_eq!(got.bytes(&short, &out), b"abc");
        let got = decompress_into(Encoding::Zstd, &zstd_short, 1 << 20, &mut out).unwrap();
        assert_eq!(got.bytes(&zstd_short, &out), b"xyz");
        let got = decompress_into(Encoding::Identity, b"raw", 1 << 20, &mut out).unwrap();
        assert_eq!(got.bytes(b"raw", &out), b"raw");
    }

    #[test]
    fn snappy_declared_size_is_checked_before_decoding() {
        // A varint header declaring 1 GiB followed by nothing.
        let body = [0x80, 0x80, 0x80, 0x80, 0x04];
        match decompress(Encoding::Snappy, &body, 1 << 20) {
            Err(Error::DecodedTooLarge { declared, .. }) => assert_eq!(declared, Some(1 << 30)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn zstd_without_declared_size_is_stopped_at_the_limit() {
        let data = vec![7u8; 10_000];
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        // Streaming encoders do not write the content size into the frame header.
        std::io::Write::write_all(&mut enc, &data).unwrap();
        let body = enc.finish().unwrap();
        assert!(matches!(
            decompress(Encoding::Zstd, &body, 9_999),
            Err(Error::DecodedTooLarge { declared: None, .. })
        ));
        assert_eq!(
            decompress(Encoding::Zstd, &body, 10_000).unwrap().len(),
            10_000
        );
    }
}
