//! A body pushed to the Pushgateway API, as `src/http/push.rs` handles it:
//! decompressed (identity, gzip, framed snappy) within the push's limit,
//! parsed (text format or delimited protobuf), lowered into group
//! `{job="fuzz"}`, pushed into a fresh store, rendered.
//!
//! An input is one mode byte, then the payload. Bit 0 of the mode picks the
//! parser (0 text, 1 delimited protobuf); `(mode >> 1) % 5` what the
//! payload is: `0` an identity body, `1` a gzip body as sent, `2` a framed
//! snappy body as sent, `3` a body the target compresses with gzip, `4` one
//! it compresses with framed snappy.
//!
//! Beyond "no panic": a body the target compressed decompresses to the
//! payload; a text body lowered in one pass (`lower_text`, which the
//! handler tries first) gives the two steps' batch; what lowers passes
//! `check_push` too, and its keys carry the
//! group's `job` and an `instance`; the push is stored (a fresh store has
//! nothing to conflict with); and the page reads back with `parse_text` to
//! every series of the push with its value (bit for bit, NaN as NaN) and no
//! timestamp, beside the group's `push_time_seconds` and
//! `push_failure_time_seconds`, every line in the group; a native
//! histogram of the push by its classic form's `_count` (its count) and
//! `_sum` (its sum), or by the classic series pushed beside it.
#![no_main]

use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use promgate::config::Config;
use promgate::exposition::{RenderOptions, render};
use promgate::ingest::push::{self, Grouping, PushEncoding};
use promgate::ingest::{Limits, check_push, parse_delimited, parse_text};
use promgate::model::{build_pushed_key, parse_key};
use promgate::store::{Store, StoreLimits};

/// The receiver's clock, fixed so that a crash replays.
const NOW_MS: i64 = 1_700_000_000_000;

/// What `promgate` started with no flags runs with: decode limits, the
/// push's decompressed-size limit, store limits, render options.
static SERVER: LazyLock<(Limits, usize, StoreLimits, RenderOptions)> = LazyLock::new(|| {
    let config = Config::default();
    let limits = config.decode_limits();
    // As the handler: the decoded limit, but no more than the body limit.
    let max = limits.max_decoded_bytes.min(config.max_body_bytes);
    (limits, max, config.store_limits(), config.render_options())
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let delimited = mode & 1 == 1;
    let (encoding, body) = match (mode >> 1) % 5 {
        0 => (PushEncoding::Identity, payload.to_vec()),
        1 => (PushEncoding::Gzip, payload.to_vec()),
        2 => (PushEncoding::SnappyFramed, payload.to_vec()),
        3 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(payload).expect("gzip compresses");
            (PushEncoding::Gzip, gz.finish().expect("gzip compresses"))
        }
        _ => {
            let mut sz = snap::write::FrameEncoder::new(Vec::new());
            sz.write_all(payload).expect("snappy compresses");
            let body = sz.into_inner().expect("snappy compresses");
            (PushEncoding::SnappyFramed, body)
        }
    };
    let (limits, max, store_limits, render_options) = &*SERVER;
    let Ok(decoded) = push::decompress(encoding, &body, *max) else {
        assert!(
            (mode >> 1) % 5 < 3,
            "a body the target compressed does not decompress"
        );
        return;
    };
    if (mode >> 1) % 5 >= 3 {
        assert_eq!(&decoded[..], payload, "decompressed to another payload");
    }
    let parsed = if delimited {
        parse_delimited(&decoded)
    } else {
        parse_text(&decoded)
    };
    let grouping = Grouping::new("fuzz".into(), Vec::new()).expect("a valid grouping key");
    let rules = limits.rules(NOW_MS);
    let Ok(families) = parsed else {
        // What does not parse is not lowered in one pass either (a raw
        // newline in a label value once was).
        assert!(
            delimited || push::lower_text(&decoded, &grouping, &rules, NOW_MS).is_none(),
            "one pass lowers what the parser refuses"
        );
        return;
    };
    // The handler tries a text body in one pass first: what that gives
    // must be the two steps' batch.
    let one_pass = (!delimited)
        .then(|| push::lower_text(&decoded, &grouping, &rules, NOW_MS))
        .flatten();
    let Ok(pushed) = push::lower(&families, &grouping, &rules, NOW_MS) else {
        assert!(
            one_pass.is_none(),
            "one pass lowers what the two steps refuse"
        );
        return;
    };
    if let Some(one_pass) = one_pass {
        let series = |p: &push::PushBatch| -> Vec<(String, u8, u64)> {
            p.batch
                .series
                .iter()
                .map(|u| {
                    (
                        p.batch.key(u).to_string(),
                        u.key.traits.bits(),
                        u.latest.value.to_bits(),
                    )
                })
                .collect()
        };
        let families = |p: &push::PushBatch| -> Vec<(String, std::ops::Range<usize>)> {
            p.families
                .iter()
                .map(|f| (f.name.clone(), f.series.clone()))
                .collect()
        };
        assert_eq!(
            series(&one_pass),
            series(&pushed),
            "one pass wrote other series"
        );
        assert_eq!(
            families(&one_pass),
            families(&pushed),
            "one pass placed families otherwise"
        );
        assert_eq!(
            one_pass.batch.metadata, pushed.batch.metadata,
            "one pass wrote other metadata"
        );
    }
    check_push(&families).expect("a push that lowers passes the check of one push");

    let mut want: HashMap<String, f64> = HashMap::new();
    // Native histograms: key → (count, sum, seen on the page).
    let mut natives: HashMap<String, (f64, f64, bool)> = HashMap::new();
    for u in &pushed.batch.series {
        let key = pushed.batch.key(u);
        let (_, labels) = parse_key(key);
        assert!(
            labels.iter().any(|(n, v)| n == "job" && v == "fuzz"),
            "{key} lacks the group's job"
        );
        assert!(
            labels.iter().any(|(n, _)| n == "instance"),
            "{key} lacks an instance"
        );
        assert!(u.key.traits.pushed(), "{key} not marked pushed");
        if let Some(h) = pushed.batch.histogram(u) {
            let h = h.latest.as_ref().expect("a pushed histogram is the latest");
            assert!(
                natives
                    .insert(key.to_string(), (h.count(), h.sum(), false))
                    .is_none(),
                "{key} twice in one push"
            );
            continue;
        }
        assert!(
            want.insert(key.to_string(), u.latest.value).is_none(),
            "{key} twice in one push"
        );
    }

    let store = Store::new(*store_limits);
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(NOW_MS as u64);
    store
        .push(&grouping, pushed, true, now)
        .expect("a fresh store takes any push that lowered");
    let mut page = Vec::new();
    render(&store, render_options, &mut page).expect("a Vec takes any page");
    let families = parse_text(&page).unwrap_or_else(|e| {
        panic!(
            "the page does not parse: {e}\n{}",
            String::from_utf8_lossy(&page)
        )
    });
    let mut found = 0;
    for f in &families {
        for s in &f.samples {
            assert_eq!(
                s.timestamp_ms, None,
                "a pushed line with a timestamp: {s:?}"
            );
            let pairs: Vec<(&str, std::borrow::Cow<'_, str>)> = s.labels.iter().collect();
            let labels = std::iter::once(("__name__", &*s.name))
                .chain(pairs.iter().map(|(n, v)| (*n, &**v)));
            let mut key = String::new();
            build_pushed_key(labels, &limits.series, &mut Vec::new(), &mut key)
                .unwrap_or_else(|r| panic!("a line of the page is no valid series: {r}: {s:?}"));
            assert!(
                key.contains("job=\"fuzz\""),
                "a line outside the group: {key}"
            );
            // The native histogram this line is of the classic form of
            // (or a classic series pushed beside it: then the line's own
            // value, the classic count truncated, is checked below).
            let native = ["_count", "_sum", "_bucket"].iter().find_map(|suffix| {
                let base = s.name.strip_suffix(suffix)?;
                let labels = std::iter::once(("__name__", base)).chain(
                    pairs
                        .iter()
                        .filter(|(n, _)| *n != "le")
                        .map(|(n, v)| (*n, &**v)),
                );
                let mut native_key = String::new();
                build_pushed_key(labels, &limits.series, &mut Vec::new(), &mut native_key).ok()?;
                natives
                    .contains_key(&native_key)
                    .then_some((*suffix, native_key))
            });
            if let Some((suffix, native_key)) = native {
                let (count, sum, seen) = natives.get_mut(&native_key).expect("found above");
                let classic = want.contains_key(&key);
                match suffix {
                    "_count" => {
                        assert!(
                            classic || s.value == *count || (s.value.is_nan() && count.is_nan()),
                            "{key}: page has another count"
                        );
                        *seen = true;
                    }
                    "_sum" => assert!(
                        classic
                            || sum.to_bits() == s.value.to_bits()
                            || (sum.is_nan() && s.value.is_nan()),
                        "{key}: page has another sum"
                    ),
                    _ => {}
                }
                if !classic {
                    continue;
                }
            }
            if let Some(&v) = want.get(&key) {
                assert!(
                    v.to_bits() == s.value.to_bits() || (v.is_nan() && s.value.is_nan()),
                    "{key}: page has {}, pushed {v}",
                    s.value
                );
                found += 1;
            } else {
                assert!(
                    s.name == push::PUSH_TIME || s.name == push::PUSH_FAILURE_TIME,
                    "{key} is on the page but was not pushed"
                );
            }
        }
    }
    assert_eq!(found, want.len(), "pushed series missing from the page");
    assert!(
        natives.values().all(|&(_, _, seen)| seen),
        "a pushed native histogram missing from the page"
    );
});
