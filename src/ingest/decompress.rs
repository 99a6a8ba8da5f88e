//! Bounded decompression: a body's decoded size is checked against the limit
//! before anything is allocated for it (STYLE habit 4).

use std::io::Read;

use super::{Encoding, Error};

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

/// Decompresses `body` into `out`, a buffer kept between requests: once it
/// has grown to the usual size, a request costs no allocation and no zeroing.
/// `out`'s length is its initialised part, and may exceed the result.
///
/// Refuses, before allocating, anything that declares a decoded size over
/// `max` bytes (snappy's varint preamble, zstd's frame content size), and
/// stops a zstd stream that declares nothing at `max + 1` bytes.
///
/// # Errors
///
/// [`Error::DecodedTooLarge`] over `max`; [`Error::Decompress`] for a body
/// that is not valid snappy block format or a zstd frame.
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
            // Nothing in the block format writes more than 64 bytes for 3
            // (a copy with a 2-byte offset), so a body cannot hold more
            // than 64/3 of its size: a length beyond that is a lie, refused
            // before the buffer is grown (and zeroed) for it. Without this,
            // a 6-byte body declaring 64 MiB had that much filled in vain.
            // (An empty body declares 0 in no bytes at all.)
            let data = body.len().saturating_sub(varint_len(len));
            if len > data.saturating_mul(64) / 3 {
                return Err(Error::Decompress {
                    encoding: "snappy",
                    detail: format!(
                        "the header declares {len} decoded bytes, more than {data} bytes of snappy data can hold"
                    ),
                });
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

/// The bytes of `n` as a varint (snappy's length preamble).
fn varint_len(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).max(1).div_ceil(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompress(encoding: Encoding, body: &[u8], max: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let got = decompress_into(encoding, body, max, &mut out)?;
        Ok(got.bytes(body, &out).to_vec())
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
    fn snappy_declaring_more_than_its_data_can_hold_is_refused_unallocated() {
        // 64 MiB declared (the default limit), five bytes of data.
        let mut body = vec![0x80, 0x80, 0x80, 0x20];
        body.extend_from_slice(&[0; 5]);
        let mut out = Vec::new();
        match decompress_into(Encoding::Snappy, &body, 64 << 20, &mut out) {
            Err(Error::Decompress { detail, .. }) => {
                assert!(detail.contains("67108864 decoded bytes"), "{detail}")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(out.capacity(), 0, "nothing allocated for the lie");
        // The densest real body (runs of one byte: 3-byte copies of 64)
        // is within the bound, at every size.
        for n in [0, 1, 63, 64, 65, 1000, 1 << 20] {
            let data = vec![b'x'; n];
            let body = snap::raw::Encoder::new().compress_vec(&data).unwrap();
            assert_eq!(decompress(Encoding::Snappy, &body, 1 << 21).unwrap(), data);
        }
    }

    #[test]
    fn an_empty_snappy_body_reads_as_snap_reads_it() {
        // Found by the write_v1 fuzz target: the preamble's length was
        // subtracted from an empty body.
        let snap = snap::raw::Decoder::new().decompress_vec(&[]);
        let ours = decompress(Encoding::Snappy, &[], 1 << 20);
        assert_eq!(ours.is_ok(), snap.is_ok(), "{ours:?} {snap:?}");
        if let (Ok(ours), Ok(snap)) = (ours, snap) {
            assert_eq!(ours, snap);
        }
    }

    #[test]
    fn varint_lengths() {
        for (n, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (1 << 26, 4),
        ] {
            assert_eq!(varint_len(n), len, "{n}");
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
