//! The remote-write path below HTTP, as `src/http/write.rs` runs it, and
//! what must hold of its result: shared by the `write_v1` and `write_v2`
//! targets.
//!
//! An input is one mode byte, then the payload. The mode (`data[0] % 5`)
//! says what the payload is: `0` a snappy body as sent, `1` a zstd body as
//! sent, `2` an identity body, `3` a message the target compresses with
//! snappy, `4` one it compresses with zstd. Modes 0 to 2 fuzz the
//! decompressors on hostile bytes; 3 and 4 let the fuzzer reach deep into
//! the protobuf decoders through a real compressed body, which it could
//! hardly forge byte by byte.
//!
//! Each input goes through `ingest::negotiate` with the headers a sender
//! puts on such a body, then through the worker thread's reused `Decoder`
//! with the limits of a promgate started without flags, at a fixed clock.
//! Beyond "no panic", [`run`] asserts:
//!
//! - decompression: the bytes decoded are the payload the target
//!   compressed, or what snappy's own `decompress_vec` / zstd's one-shot
//!   decoder make of the body, and a body refused as too large declares or
//!   yields more than the limit;
//! - verdict and batch: the fast decoder and its prost reference
//!   (`decode_with_prost`) accept and refuse the same bodies (a body with
//!   several faults may be refused for another one of them) and give the
//!   same batch, bit for bit, rejections counted alike (a `SchemaMismatch`
//!   only where the reference found nothing at all);
//! - counts (against the request as prost reads it): every sample the
//!   request carried is either in an accepted series or counted rejected,
//!   no series is accepted twice, and every series that carried anything
//!   is accounted for;
//! - keys: each accepted key parses back with `model::parse_key` into a
//!   valid name and sorted, unique, valid, non-empty labels within the
//!   limits, and writing that label set again gives the same key and
//!   traits; each deciding sample is inside the accepted time range;
//! - exemplars: each one kept reads back with `parse_key` into labels
//!   sorted by name, unique, non-empty, within OpenMetrics' 128 characters,
//!   and written the same way again;
//! - store and page: the batch applied to a fresh store leaves exactly what
//!   an independent replay of its updates says (latest timestamp wins,
//!   later wins ties, a stale marker removes; the same for each series'
//!   exemplar, by its own timestamp), and the page rendered from
//!   it reads back, with the push API's Go-compatible text parser, to
//!   exactly the stored series, values (bit for bit, NaN as NaN) and
//!   timestamps, each family's HELP as stored.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use promgate::config::Config;
use promgate::exposition::{RenderOptions, TimestampPolicy, escape_key, render};
use promgate::ingest::{self, Decoder, Encoding, Error, Limits, Protocol, parse_text, v1, v2};
use promgate::model::{
    EXEMPLAR_MAX_LABEL_CHARS, ExemplarRejectReason, NativeHistogram, RejectReason, Sample,
    WriteBatch, build_key, is_legacy_label_name, is_legacy_metric_name, is_stale_marker, parse_key,
    store_name, write_label_text,
};
use promgate::proto;
use promgate::store::{Store, StoreLimits};
use prost::Message;

/// The receiver's clock for every input, so that a crash replays.
pub const NOW_MS: i64 = 1_700_000_000_000;

/// What `promgate` started with no flags runs with.
struct Server {
    limits: Limits,
    store: StoreLimits,
    render: RenderOptions,
}

static SERVER: LazyLock<Server> = LazyLock::new(|| {
    let config = Config::default();
    let mut render = config.render_options();
    // Timestamps on the page, so that they are checked too (the default).
    render.timestamps = TimestampPolicy::Original;
    Server {
        limits: config.decode_limits(),
        store: config.store_limits(),
        render,
    }
});

thread_local! {
    /// One decoder kept between inputs, as the write handler keeps one per
    /// worker thread: buffer reuse is part of what is fuzzed.
    static DECODER: RefCell<Decoder> = RefCell::default();
}

/// How the payload of an input becomes a body.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// The payload is the body, sent with this encoding.
    AsSent(Encoding),
    /// The payload is a message the target compresses with this encoding.
    Compressed(Encoding),
}

impl Mode {
    fn of(byte: u8) -> Mode {
        match byte % 5 {
            0 => Mode::AsSent(Encoding::Snappy),
            1 => Mode::AsSent(Encoding::Zstd),
            2 => Mode::AsSent(Encoding::Identity),
            3 => Mode::Compressed(Encoding::Snappy),
            _ => Mode::Compressed(Encoding::Zstd),
        }
    }

    fn encoding(self) -> Encoding {
        match self {
            Mode::AsSent(e) | Mode::Compressed(e) => e,
        }
    }
}

/// What an independent decompression makes of a body.
#[derive(Debug)]
enum Reference<'a> {
    /// These bytes.
    Bytes(Cow<'a, [u8]>),
    /// Over the limit.
    TooLarge,
    /// Not a valid body of its encoding.
    Malformed,
    /// A zstd body the decoder refused: not checked independently, as
    /// telling a malformed stream from an over-long one would take decoding
    /// up to the limit a second time.
    Unchecked,
}

/// Is `e` an error of decompression (as opposed to one of the message)?
fn decompression_error(e: &Error) -> bool {
    matches!(e, Error::DecodedTooLarge { .. } | Error::Decompress { .. })
}

/// Runs one input through the write path as a request of `protocol` with
/// `Content-Type: content_type`; panics on any broken rule.
pub fn run(data: &[u8], content_type: &str, protocol: Protocol) {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let mode = Mode::of(mode);
    let format = ingest::negotiate(Some(content_type), Some(mode.encoding().as_str()))
        .expect("the headers a sender puts on this body are accepted");
    assert_eq!(format.protocol, protocol);
    let body: Cow<[u8]> = match mode {
        Mode::AsSent(_) | Mode::Compressed(Encoding::Identity) => Cow::Borrowed(payload),
        Mode::Compressed(Encoding::Snappy) => Cow::Owned(
            snap::raw::Encoder::new()
                .compress_vec(payload)
                .expect("snappy compresses"),
        ),
        Mode::Compressed(Encoding::Zstd) => {
            Cow::Owned(zstd::bulk::compress(payload, 1).expect("zstd compresses"))
        }
    };
    let server = &*SERVER;
    DECODER.with_borrow_mut(|decoder| {
        let result = decoder
            .decode(format, &body, &server.limits, NOW_MS)
            .map(|_| ());
        let reference = match mode {
            Mode::Compressed(_) => Reference::Bytes(Cow::Borrowed(payload)),
            Mode::AsSent(e) => decompress(e, &body, server, &result, decoder.decoded_bytes()),
        };
        check(protocol, &result, reference, decoder, server);
        decoder.trim();
    });
}

/// `body` decompressed by the compression libraries' own one-shot calls,
/// not by promgate's bounded wrapper. `ours` and `decoded` are what the
/// decoder made of it (zstd is only checked where it decoded).
fn decompress<'a>(
    encoding: Encoding,
    body: &'a [u8],
    server: &Server,
    ours: &Result<(), Error>,
    decoded: usize,
) -> Reference<'a> {
    let max = server.limits.max_decoded_bytes;
    match encoding {
        Encoding::Identity if body.len() > max => Reference::TooLarge,
        Encoding::Identity => Reference::Bytes(Cow::Borrowed(body)),
        Encoding::Snappy => match snap::raw::decompress_len(body) {
            Err(_) => Reference::Malformed,
            Ok(n) if n > max => Reference::TooLarge,
            Ok(_) => match snap::raw::Decoder::new().decompress_vec(body) {
                Ok(bytes) => Reference::Bytes(Cow::Owned(bytes)),
                Err(_) => Reference::Malformed,
            },
        },
        Encoding::Zstd => match ours {
            Err(e) if decompression_error(e) => Reference::Unchecked,
            // Given exactly as much room as promgate decoded, the one-shot
            // decoder must yield the same bytes: nothing was cut off.
            _ => match zstd::bulk::decompress(body, decoded) {
                Ok(bytes) => Reference::Bytes(Cow::Owned(bytes)),
                Err(e) => panic!(
                    "promgate decoded {decoded} bytes of a zstd body that zstd's one-shot decoder refuses: {e}"
                ),
            },
        },
    }
}

/// Checks the decoder's verdict and batch against the reference bytes,
/// then the counts, the keys, the store and the page.
fn check(
    protocol: Protocol,
    result: &Result<(), Error>,
    reference: Reference<'_>,
    decoder: &Decoder,
    server: &Server,
) {
    let raw: Cow<[u8]> = match (reference, result) {
        (Reference::TooLarge, Err(Error::DecodedTooLarge { .. }))
        | (Reference::Malformed, Err(Error::Decompress { .. })) => return,
        (Reference::Unchecked, Err(e)) if decompression_error(e) => return,
        (Reference::Bytes(bytes), Ok(()) | Err(_))
            if !result.as_ref().is_err_and(decompression_error) =>
        {
            bytes
        }
        (reference, result) => {
            panic!("decompression verdicts differ: reference {reference:?}, promgate {result:?}")
        }
    };
    assert_eq!(
        decoder.decoded_bytes(),
        raw.len(),
        "promgate decoded another length than the reference"
    );

    let rules = server.limits.rules(NOW_MS);
    let reference = match protocol {
        Protocol::RemoteWrite1 => v1::decode_with_prost(&raw, &rules),
        Protocol::RemoteWrite2 => v2::decode_with_prost(&raw, &rules),
    };
    let batch = match (result, &reference) {
        (Ok(()), Ok(r)) => {
            let batch = decoder.batch();
            assert_eq!(
                summary(batch),
                summary(r),
                "the fast decoder and prost differ"
            );
            batch
        }
        (Err(Error::SchemaMismatch { .. }), Ok(r)) => {
            assert!(
                !raw.is_empty()
                    && r.series.is_empty()
                    && r.metadata.is_empty()
                    && r.rejected.first.is_none(),
                "schema mismatch reported for a body that yields something: {r:?}"
            );
            return;
        }
        // Both refuse. Not necessarily for the same reason: a body with
        // several faults is refused for the first one each finds, and the
        // fast 2.0 decoder reads the symbols table before the series that
        // prost reads in one pass.
        (Err(_), Err(_)) => return,
        (ours, theirs) => panic!("verdicts differ: promgate {ours:?}, prost {theirs:?}"),
    };

    counts(protocol, &raw, batch);
    keys(batch, server);
    exemplars(batch);
    store_and_page(batch, server);
}

/// A batch as comparable data: floats by their bits; rejections as counts
/// per reason, whatever the order they were met in, and whether there was a
/// first one (which one is first differs when metadata come before series
/// on the wire: the fast decoder meets them in wire order, the reference
/// lowers every series before any metadata).
type Summary<'b> = (
    Vec<(&'b str, u64, i64, u32, u32, u8, Option<(&'b str, u64, i64)>)>,
    String,
    (
        Vec<(RejectReason, u64)>,
        u64,
        Vec<(RejectReason, u64)>,
        bool,
        Vec<(ExemplarRejectReason, u64)>,
    ),
);

fn summary(b: &WriteBatch) -> Summary<'_> {
    let series = b
        .series
        .iter()
        .map(|u| {
            (
                b.key(u),
                u.latest.value.to_bits(),
                u.latest.timestamp_ms,
                u.samples,
                u.exemplars,
                u.key.traits.bits(),
                b.exemplar(u)
                    .map(|(e, labels)| (labels, e.value.to_bits(), e.timestamp_ms)),
            )
        })
        .collect();
    fn sorted<R: Ord + Copy>(counts: &[(R, u64)]) -> Vec<(R, u64)> {
        let mut counts = counts.to_vec();
        counts.sort();
        counts
    }
    let r = &b.rejected;
    let rejected = (
        sorted(&r.series),
        r.metadata,
        sorted(&r.samples),
        r.first.is_some(),
        sorted(&r.exemplars),
    );
    (series, format!("{:?}", b.metadata), rejected)
}

/// Every sample the request carried is in an accepted series or counted
/// rejected; no series is accepted twice; every series that carried
/// anything (2.0: every series) is accepted or counted rejected; every 1.0
/// metadata entry is kept or counted rejected.
fn counts(protocol: Protocol, raw: &[u8], batch: &WriteBatch) {
    // (samples and histograms of each series, metadata entries)
    let (carried, metadata): (Vec<u64>, Option<usize>) = match protocol {
        Protocol::RemoteWrite1 => {
            let req = proto::lenient::WriteRequest::decode(raw).expect("prost read it before");
            let carried = req
                .timeseries
                .iter()
                .map(|t| (t.samples.len() + t.histograms.len()) as u64)
                .collect();
            (carried, Some(req.metadata.len()))
        }
        Protocol::RemoteWrite2 => {
            let req = proto::v2::lenient::Request::decode(raw).expect("prost read it before");
            let carried = req
                .timeseries
                .iter()
                .map(|t| (t.samples.len() + t.histograms.len()) as u64)
                .collect();
            (carried, None)
        }
    };
    let accepted: u64 = batch
        .series
        .iter()
        .map(|u| u64::from(u.samples + batch.histogram(u).map_or(0, |h| h.written)))
        .sum();
    assert_eq!(
        accepted + batch.rejected.samples_total(),
        carried.iter().sum::<u64>(),
        "accepted + rejected samples != samples in the request: {:?}",
        batch.rejected
    );
    assert!(
        batch.series.len() <= carried.len(),
        "more series accepted than sent"
    );
    let must_account = match protocol {
        Protocol::RemoteWrite1 => carried.iter().filter(|&&n| n > 0).count(),
        Protocol::RemoteWrite2 => carried.len(),
    };
    assert!(
        batch.series.len() as u64 + batch.rejected.series_total() >= must_account as u64,
        "a series is neither accepted nor rejected: {} accepted, {:?}",
        batch.series.len(),
        batch.rejected
    );
    if let Some(sent) = metadata {
        assert_eq!(
            batch.metadata.len() as u64 + batch.rejected.metadata,
            sent as u64,
            "a metadata entry is neither kept nor rejected"
        );
    }
}

/// Each accepted key reads back into a valid label set within the limits,
/// written again to the same key; each deciding sample is in the time range.
fn keys(batch: &WriteBatch, server: &Server) {
    let limits = &server.limits.series;
    let range = server.limits.rules(NOW_MS).timestamps;
    for u in &batch.series {
        let key = batch.key(u);
        let (name, labels) = parse_key(key);
        assert_eq!(store_name(&name), batch.name(u), "key {key:?}");
        assert!(!name.is_empty(), "key {key:?}");
        // A name outside the legacy set is flagged for the exposition.
        let utf8 =
            !is_legacy_metric_name(&name) || labels.iter().any(|(n, _)| !is_legacy_label_name(n));
        assert_eq!(u.key.traits.utf8(), utf8, "key {key:?}");
        assert!(labels.len() < limits.max_labels, "key {key:?}");
        for pair in labels.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "labels not sorted or repeated: {key:?}"
            );
        }
        for (n, v) in &labels {
            assert!(
                !n.is_empty() && !n.starts_with("__") && n.len() <= limits.max_name_len,
                "label name {n:?} in key {key:?}"
            );
            assert!(
                !v.is_empty() && v.len() <= limits.max_value_len,
                "label value {v:?} in key {key:?}"
            );
        }
        let again = std::iter::once(("__name__", name.as_str()))
            .chain(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let mut out = String::new();
        let span = build_key(again, limits, &mut Vec::new(), &mut out)
            .unwrap_or_else(|r| panic!("key {key:?} read back is refused: {r}"));
        assert_eq!(out, key, "key read back and written again differs");
        assert_eq!(span.traits, u.key.traits, "key {key:?}");
        assert!(
            range.contains(u.latest.timestamp_ms),
            "deciding sample of {key:?} out of range: {}",
            u.latest.timestamp_ms
        );
    }
}

/// Are two samples the same, floats bit for bit?
fn same(a: Sample, b: Sample) -> bool {
    a.value.to_bits() == b.value.to_bits() && a.timestamp_ms == b.timestamp_ms
}

/// Each exemplar kept reads back into labels sorted by name, unique,
/// non-empty, within OpenMetrics' bound, that write back to the same text;
/// a series counts at least the exemplar it keeps.
fn exemplars(batch: &WriteBatch) {
    for u in &batch.series {
        let Some((_, text)) = batch.exemplar(u) else {
            continue;
        };
        assert!(u.exemplars >= 1, "an exemplar kept but none counted");
        if text.is_empty() {
            continue;
        }
        // Read as the labels of a key (the same escaping and quoting).
        let (_, labels) = parse_key(&format!("x{{{text}}}"));
        let chars: usize = labels
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        assert!(
            chars <= EXEMPLAR_MAX_LABEL_CHARS,
            "{text}: {chars} characters"
        );
        assert!(
            labels.windows(2).all(|w| w[0].0 < w[1].0) && !labels[0].0.is_empty(),
            "{text}: names not sorted, unique and non-empty"
        );
        let mut again = String::new();
        write_label_text(
            &mut again,
            labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        assert_eq!(again, text, "exemplar labels do not write back the same");
    }
}

/// The batch applied to a fresh store leaves what replaying its updates one
/// by one says, and the page of that store reads back to exactly it.
fn store_and_page(batch: &WriteBatch, server: &Server) {
    // The replay: in request order, the newer timestamp wins (the later
    // update among equals), and a stale marker not older than the stored
    // sample removes the series.
    // Each series' exemplar: the newer timestamp wins (the later among
    // equals), whether or not its sample was; it leaves with its series.
    // Each series whose latest sample is a native histogram: that one.
    let mut model: HashMap<&str, Sample> = HashMap::new();
    let mut hist: HashMap<&str, &NativeHistogram> = HashMap::new();
    let mut kept: HashMap<&str, (&str, u64, i64)> = HashMap::new();
    for u in &batch.series {
        let key = batch.key(u);
        let s = u.latest;
        let stored = model.get(key).map(|cur| s.timestamp_ms >= cur.timestamp_ms);
        match (is_stale_marker(s.value), stored) {
            (true, Some(true)) => {
                model.remove(key);
                hist.remove(key);
                kept.remove(key);
                continue;
            }
            (true, None) => continue,
            (false, None | Some(true)) => {
                model.insert(key, s);
                match batch.histogram(u).and_then(|h| h.latest.as_ref()) {
                    Some(h) => hist.insert(key, h),
                    None => hist.remove(key),
                };
            }
            _ => {}
        }
        if let Some((e, labels)) = batch.exemplar(u)
            && kept.get(key).is_none_or(|k| e.timestamp_ms >= k.2)
        {
            kept.insert(key, (labels, e.value.to_bits(), e.timestamp_ms));
        }
    }

    let store = Store::new(server.store);
    let outcome = store.apply(batch);
    assert!(outcome.rejected.first.is_none(), "{:?}", outcome.rejected);
    assert_eq!(store.live_series(), model.len(), "live series");
    for (key, want) in &model {
        let got = store
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the store"));
        assert!(same(got, *want), "{key}: stored {got:?}, want {want:?}");
    }
    let mut stored_exemplars: HashMap<String, (String, u64, i64)> = HashMap::new();
    for m in store.metrics() {
        let mut parts = m.parts();
        while parts.visit_next(|r| {
            if let Some(e) = r.exemplar {
                let key = String::from_utf8(r.key.to_vec()).expect("keys are UTF-8");
                let t = e.timestamp_ms.unwrap_or(0);
                assert_ne!(e.timestamp_ms, Some(0), "a timestamp of 0 reads as none");
                stored_exemplars.insert(key, (e.labels.to_string(), e.value.to_bits(), t));
            }
        }) {}
    }
    let want: HashMap<String, (String, u64, i64)> = kept
        .iter()
        .map(|(k, (l, v, t))| (k.to_string(), (l.to_string(), *v, *t)))
        .collect();
    assert_eq!(stored_exemplars, want, "stored exemplars");

    // Series with names outside the legacy set are on the (underscores)
    // page escaped: each line is one of them, or left off as a collision.
    let mut escaped: HashMap<String, Vec<Sample>> = HashMap::new();
    // The same for native histograms, by the line of their escaped key.
    let mut escaped_hist: HashMap<String, Vec<&NativeHistogram>> = HashMap::new();
    let mut utf8_live = 0;
    for u in batch.series.iter().filter(|u| u.key.traits.utf8()) {
        let key = batch.key(u);
        if let Some(&h) = hist.get(key) {
            if let Ok(line) = escape_key(key, server.render.escaping) {
                let (name, labels) = parse_key(&line);
                let line = key_line(&name, labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                escaped_hist.entry(line).or_default().push(h);
            }
            continue;
        }
        if let Some(&s) = model.get(key) {
            if let Ok(line) = escape_key(key, server.render.escaping) {
                let (name, labels) = parse_key(&line);
                let line = key_line(&name, labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                let held = escaped.entry(line).or_default();
                if !held.iter().any(|h| same(*h, s)) {
                    held.push(s);
                }
            }
        }
    }
    for key in model.keys().filter(|k| !hist.contains_key(*k)) {
        if batch
            .series
            .iter()
            .any(|u| u.key.traits.utf8() && batch.key(u) == *key)
        {
            utf8_live += 1;
        }
    }

    let mut page = Vec::new();
    let stats = render(&store, &server.render, &mut page).expect("a Vec takes any page");
    let families = parse_text(&page).unwrap_or_else(|e| {
        panic!(
            "the page does not parse: {e}\n{}",
            String::from_utf8_lossy(&page)
        )
    });
    let mut seen = HashSet::new();
    let mut utf8_lines = 0;
    // Native histograms met on the page, by their `_count` line.
    let mut hist_seen = 0;
    let mut plain_lines = 0;
    for f in &families {
        if let Some(help) = &f.help {
            // The family's metadata: under its name, or under a name
            // outside the legacy set that escapes to it.
            let described = |family: &str| {
                store.metadata(family).or_else(|| {
                    batch.metadata.iter().find_map(|(n, _)| {
                        let as_key = if is_legacy_metric_name(n) {
                            n.clone()
                        } else {
                            format!("\"{n}\"")
                        };
                        let escaped = escape_key(&as_key, server.render.escaping).ok()?;
                        (escaped == family).then(|| store.metadata(n)).flatten()
                    })
                })
            };
            let md = described(&f.name)
                .or_else(|| f.name.strip_suffix("_total").and_then(described))
                .unwrap_or_else(|| panic!("HELP of {} without metadata", f.name));
            // The text format cannot carry a HELP's leading blanks.
            assert_eq!(
                help,
                md.help.trim_start_matches([' ', '\t']),
                "HELP of {}",
                f.name
            );
        }
        for s in &f.samples {
            let pairs: Vec<(&str, std::borrow::Cow<'_, str>)> = s.labels.iter().collect();
            let labels = std::iter::once(("__name__", &*s.name))
                .chain(pairs.iter().map(|(n, v)| (*n, &**v)));
            let mut key = String::new();
            build_key(labels, &server.limits.series, &mut Vec::new(), &mut key)
                .unwrap_or_else(|r| panic!("a line of the page is no valid series: {r}: {s:?}"));
            let want = match model.get(key.as_str()) {
                Some(want) if !hist.contains_key(key.as_str()) => *want,
                _ if classic_line(s, &hist, &escaped_hist, &server.limits.series) => {
                    let line = key_line(&s.name, pairs.iter().map(|(n, v)| (*n, &**v)));
                    assert!(seen.insert(line), "a series twice on the page");
                    hist_seen += usize::from(s.name.ends_with("_count"));
                    continue;
                }
                _ => {
                    // An escaped line: its value is one of the series
                    // escaping to it.
                    let line = key_line(&s.name, pairs.iter().map(|(n, v)| (*n, &**v)));
                    let held = escaped
                        .get(&line)
                        .unwrap_or_else(|| panic!("{line} is on the page but not stored"));
                    assert!(
                        held.iter().any(|h| s.timestamp_ms == Some(h.timestamp_ms)
                            && (h.value.to_bits() == s.value.to_bits()
                                || (h.value.is_nan() && s.value.is_nan()))),
                        "{line}: page has {} at {:?}, stored {held:?}",
                        s.value,
                        s.timestamp_ms
                    );
                    assert!(seen.insert(line), "a series twice on the page");
                    utf8_lines += 1;
                    continue;
                }
            };
            let got_value = s.value.to_bits() == want.value.to_bits()
                || (s.value.is_nan() && want.value.is_nan());
            assert!(
                got_value && s.timestamp_ms == Some(want.timestamp_ms),
                "{key}: page has {} at {:?}, stored {want:?}",
                s.value,
                s.timestamp_ms
            );
            assert!(seen.insert(key), "a series twice on the page");
            plain_lines += 1;
        }
    }
    assert_eq!(
        plain_lines,
        model.len() - hist.len() - utf8_live,
        "stored series missing from the page"
    );
    let hist_lines = seen.len() - utf8_lines - plain_lines;
    // Each shown histogram has its `_count` and `_sum` lines besides its
    // buckets, `+Inf` at least.
    assert!(hist_lines >= hist_seen * 3, "a histogram without its lines");
    assert_eq!(
        hist_seen as u64 + stats.histograms_dropped,
        stats.histograms,
        "native histograms shown and counted"
    );
    assert!(hist_seen <= hist.len(), "more histograms than stored");
    assert_eq!(
        utf8_lines
            + stats.dropped as usize
            + hist_seen
            + (stats.histograms_dropped + stats.histograms_hidden) as usize,
        utf8_live + hist.len(),
        "escaped series or histograms missing from the page, and not counted as dropped"
    );
}

/// Is `s` a line of a stored native histogram's classic form (`_bucket`
/// with its `le`, `_count`, `_sum`), with that histogram's figures? Its
/// series is the line less the suffix and the `le`, as stored or escaped.
fn classic_line(
    s: &promgate::ingest::push::ParsedSample<'_>,
    hist: &HashMap<&str, &NativeHistogram>,
    escaped_hist: &HashMap<String, Vec<&NativeHistogram>>,
    limits: &promgate::model::SeriesLimits,
) -> bool {
    let Some((base, suffix)) = ["_bucket", "_count", "_sum"]
        .into_iter()
        .find_map(|x| Some((s.name.strip_suffix(x)?, x)))
    else {
        return false;
    };
    let pairs: Vec<(&str, std::borrow::Cow<'_, str>)> = s.labels.iter().collect();
    let le = pairs
        .iter()
        .find(|(n, _)| *n == "le")
        .map(|(_, v)| v.clone());
    if (suffix == "_bucket") != le.is_some() {
        return false;
    }
    let rest = pairs.iter().filter(|(n, _)| *n != "le");
    let labels = std::iter::once(("__name__", base)).chain(rest.clone().map(|(n, v)| (*n, &**v)));
    let mut key = String::new();
    let mut candidates: Vec<&NativeHistogram> = Vec::new();
    if build_key(labels, limits, &mut Vec::new(), &mut key).is_ok()
        && let Some(&h) = hist.get(key.as_str())
    {
        candidates.push(h);
    }
    let line = key_line(base, rest.map(|(n, v)| (*n, &**v)));
    candidates.extend(escaped_hist.get(&line).into_iter().flatten().copied());
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    candidates.iter().any(|h| {
        s.timestamp_ms == Some(h.timestamp_ms())
            && match (suffix, le.as_deref()) {
                ("_count", _) | ("_bucket", Some("+Inf")) => same(s.value, h.count()),
                ("_sum", _) => same(s.value, h.sum()),
                // A cumulative count at a boundary: within the total.
                _ => s.value >= 0.0 && !s.value.is_nan(),
            }
    })
}

/// The line prefix of a parsed sample as the page writes it: the name, then
/// its labels sorted, values escaped.
fn key_line<'a>(name: &str, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<_> = pairs.filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut line = name.to_string();
    for (i, (n, v)) in pairs.iter().enumerate() {
        line.push(if i == 0 { '{' } else { ',' });
        line.push_str(n);
        line.push_str("=\"");
        promgate::model::escape_label_value(&mut line, v);
        line.push('"');
    }
    if !pairs.is_empty() {
        line.push('}');
    }
    line
}
