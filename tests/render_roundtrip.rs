//! Whatever promgate accepts, its page gives back: random valid
//! Remote-Write 1.0 requests — awkward label values (quotes, backslashes,
//! newlines, carriage returns, any UTF-8), any float (NaN payloads, ±Inf,
//! -0, subnormals, stale markers), metadata with awkward HELP — decoded
//! through the write path's `Decoder` (snappy, the server's limits),
//! applied to a store and rendered by `exposition::render`, read back by an
//! independent parser (`ingest::parse_text`, the Go text parser's rules as
//! the Pushgateway runs them) to exactly the series a replay of the
//! requests predicts: the same label sets, the same values bit for bit (any
//! NaN as NaN; a stale marker removes its series, so it is never on the
//! page), the same timestamps, and each family's HELP and TYPE as sent.
//! One fixed page also goes through `promtool check metrics`.

mod common;

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use common::{MetricType, assert_parses};
use promgate::config::Config;
use promgate::exposition::{Escaping, RenderOptions, TimestampPolicy, render};
use promgate::ingest::{Decoder, Encoding, Format, Protocol, parse_text};
use promgate::model::{STALE_NAN_BITS, is_stale_marker};
use promgate::proto::{Label, MetricMetadata};
use promgate::store::Store;

/// The receiver's clock; samples are stamped up to an hour before it.
const NOW_MS: i64 = 1_700_000_000_000;

/// Metric names, some of one family (`rpc_seconds` and its suffixes).
const NAMES: &[&str] = &[
    "up",
    "http_requests_total",
    "http_requests",
    "rpc_seconds",
    "rpc_seconds_bucket",
    "rpc_seconds_sum",
    "rpc_seconds_count",
    "a:b",
    "_x",
];

/// Label names; `le` and `quantile` mean something to histogram and
/// summary families.
const LABEL_NAMES: &[&str] = &["job", "instance", "le", "quantile", "path", "Z", "_"];

/// Values a page must escape or may misread.
const AWKWARD: &[&str] = &[
    "",
    "\"",
    "\\",
    "\\n",
    "\n",
    "a\"b\\c\nd",
    "\r\n",
    "}",
    "{a=\"b\"}",
    ", ",
    " lead and trail ",
    "Hà Nội",
    "東京",
    "🚀",
    "\u{0}",
    "\t#",
    "+Inf",
    "0.5",
    "NaN",
];

const TYPES: [MetricType; 8] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Histogram,
    MetricType::Summary,
    MetricType::Unknown,
    MetricType::Gaugehistogram,
    MetricType::Info,
    MetricType::Stateset,
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(AWKWARD).prop_map(str::to_string),
        any::<String>(),
        "[\\\\\"\n a-zé]{0,8}",
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => any::<u64>().prop_map(f64::from_bits),
        2 => any::<f64>(),
        // Often, so that it meets a stored sample of its series.
        1 => Just(f64::from_bits(STALE_NAN_BITS)),
        2 => prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            5e-324,
            f64::MAX,
            0.1,
        ]),
    ]
}

/// One series: its metric name, labels (names unique) and samples.
type GenSeries = (String, Vec<(String, String)>, Vec<(f64, i64)>);

/// Label sets that come back across a batch and across requests, so that
/// series are updated, outdated and removed, not only created.
const RECURRING: &[&[(&str, &str)]] = &[
    &[],
    &[("job", "a")],
    &[("job", "a\"b"), ("path", "/x\ny")],
    &[("path", "/x\ny"), ("job", "a\"b")],
    &[("job", "a"), ("instance", "")],
];

fn series(names: &'static [&'static str]) -> impl Strategy<Value = GenSeries> {
    let any_labels = (
        prop::collection::btree_map(prop::sample::select(LABEL_NAMES), text(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(labels, reverse)| {
            let mut labels: Vec<(String, String)> = labels
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect();
            // Off Prometheus' sorted layout too.
            if reverse {
                labels.reverse();
            }
            labels
        });
    let recurring = prop::sample::select(RECURRING).prop_map(|labels| {
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    });
    (
        prop::sample::select(names),
        prop_oneof![any_labels, recurring],
        // Timestamps in a narrow range, so that series repeat them.
        prop::collection::vec((value(), NOW_MS - 5..=NOW_MS), 1..4),
    )
        .prop_map(|(name, labels, samples)| (name.to_string(), labels, samples))
}

/// One family's metadata: name, type, HELP.
type GenMetadata = (String, MetricType, String);

fn metadata(names: &'static [&'static str]) -> impl Strategy<Value = GenMetadata> {
    (
        prop::sample::select(names),
        prop::sample::select(&TYPES[..]),
        text(),
    )
        .prop_map(|(n, t, h)| (n.to_string(), t, h))
}

/// Up to three requests, applied in order.
type GenRequests = Vec<(Vec<GenSeries>, Vec<GenMetadata>)>;

fn requests(names: &'static [&'static str]) -> impl Strategy<Value = GenRequests> {
    prop::collection::vec(
        (
            prop::collection::vec(series(names), 1..10),
            prop::collection::vec(metadata(names), 0..4),
        ),
        1..4,
    )
}

/// The request's protobuf encoding. Written field by field because prost's
/// encoder leaves out a `double` equal to the default, and `-0.0 == 0.0`:
/// a prost sender turns -0 into 0, where Prometheus (Go) sends its bits.
fn encode(series: &[GenSeries], md: &[GenMetadata]) -> Vec<u8> {
    use prost::encoding::{bytes, double, int64, message};
    let mut out = Vec::new();
    for (name, labels, samples) in series {
        let mut ts = Vec::new();
        let all = std::iter::once(("__name__", name.as_str()))
            .chain(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        for (n, v) in all {
            let label = Label {
                name: n.to_string(),
                value: v.to_string(),
            };
            message::encode(1, &label, &mut ts);
        }
        for &(value, timestamp) in samples {
            let mut sample = Vec::new();
            double::encode(1, &value, &mut sample);
            int64::encode(2, &timestamp, &mut sample);
            bytes::encode(2, &sample, &mut ts);
        }
        bytes::encode(1, &ts, &mut out);
    }
    for (name, t, help) in md {
        let md = MetricMetadata {
            r#type: *t as i32,
            metric_family_name: name.clone(),
            help: help.clone(),
            unit: String::new(),
        };
        message::encode(3, &md, &mut out);
    }
    out
}

/// A series as the page names it: metric name and labels by name, empty
/// values left out (a series is its non-empty labels).
type SeriesId = (String, BTreeMap<String, String>);

/// What the store must hold after the requests, replayed one series at a
/// time from the spec's rules: a series' deciding sample is its newest
/// (the last of equals); a newer or equally new sample replaces the
/// stored one, an older one is dropped; a stale marker not older than the
/// stored sample removes the series. Metadata: the last sent per family.
struct Expected {
    series: HashMap<SeriesId, (f64, i64)>,
    metadata: HashMap<String, (MetricType, String)>,
}

fn replay(reqs: &GenRequests) -> Expected {
    let mut series: HashMap<SeriesId, (f64, i64)> = HashMap::new();
    let mut metadata = HashMap::new();
    for (batch, md) in reqs {
        for (name, labels, samples) in batch {
            let id = (
                name.clone(),
                labels
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .cloned()
                    .collect(),
            );
            let (value, ts) = samples
                .iter()
                .copied()
                .reduce(|best, s| if s.1 >= best.1 { s } else { best })
                .expect("at least one sample");
            let newer = series.get(&id).map(|&(_, stored)| ts >= stored);
            match (is_stale_marker(value), newer) {
                (true, Some(true)) => {
                    series.remove(&id);
                }
                (false, None | Some(true)) => {
                    series.insert(id, (value, ts));
                }
                _ => {}
            }
        }
        for (name, t, help) in md {
            metadata.insert(name.clone(), (*t, help.clone()));
        }
    }
    Expected { series, metadata }
}

/// The requests through the write path's decoder into a store, and the
/// page rendered from it (timestamps on).
fn page_of(reqs: &GenRequests) -> (Store, String) {
    let config = Config::default();
    let limits = config.decode_limits();
    let store = Store::new(config.store_limits());
    let mut decoder = Decoder::default();
    let format = Format {
        protocol: Protocol::RemoteWrite1,
        encoding: Encoding::Snappy,
    };
    for (series, md) in reqs {
        let body = snap::raw::Encoder::new()
            .compress_vec(&encode(series, md))
            .unwrap();
        let batch = decoder
            .decode(format, &body, &limits, NOW_MS)
            .expect("a valid request decodes");
        assert!(
            batch.rejected.first.is_none(),
            "a valid series was refused: {:?}",
            batch.rejected
        );
        let applied = store.apply(batch);
        assert!(applied.rejected.first.is_none(), "{:?}", applied.rejected);
    }
    let opts = RenderOptions {
        timestamps: TimestampPolicy::Original,
        chunk_bytes: config.render_options().chunk_bytes,
        escaping: Escaping::Underscores,
        native_histogram_max_buckets: 0,
    };
    let mut page = Vec::new();
    render(&store, &opts, &mut page).unwrap();
    (store, String::from_utf8(page).expect("the page is UTF-8"))
}

/// The HELP a text-format parser can read back: one cannot start with a
/// blank (the format's separator), and an empty one is not written.
fn readable_help(help: &str) -> Option<&str> {
    Some(help.trim_start_matches([' ', '\t'])).filter(|h| !h.is_empty())
}

/// The TYPE word of the text format 0.0.4 for a sent type, as the model
/// reads it back (`Unknown` for untyped).
fn exposed_type(t: MetricType) -> promgate::model::MetricType {
    use promgate::model::MetricType as M;
    match t {
        MetricType::Counter => M::Counter,
        MetricType::Gauge => M::Gauge,
        MetricType::Histogram => M::Histogram,
        MetricType::Summary => M::Summary,
        _ => M::Unknown,
    }
}

/// Reads `page` back and checks it against the replay: the same series,
/// values and timestamps; every HELP on the page is the one sent.
fn assert_page_is(page: &str, want: &Expected) -> Result<(), TestCaseError> {
    let families = parse_text(page.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("the page does not parse: {e}\n{page}")))?;
    let mut got: HashMap<SeriesId, (f64, i64)> = HashMap::new();
    for f in &families {
        if let Some(help) = &f.help {
            // A counter sent as family `x` documents `x_total`.
            let sent = want.metadata.get(&*f.name).or_else(|| {
                f.name
                    .strip_suffix("_total")
                    .and_then(|n| want.metadata.get(n))
            });
            let sent = sent.and_then(|(_, h)| readable_help(h));
            prop_assert_eq!(Some(help.as_str()), sent, "HELP of {}", f.name);
        }
        for s in &f.samples {
            let id = (
                s.name.to_string(),
                s.labels
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.into_owned()))
                    .collect(),
            );
            let ts = s
                .timestamp_ms
                .ok_or_else(|| TestCaseError::fail(format!("no timestamp: {s:?}")))?;
            prop_assert!(got.insert(id, (s.value, ts)).is_none(), "twice: {:?}", s);
        }
    }
    let mut missing: Vec<_> = want
        .series
        .keys()
        .filter(|k| !got.contains_key(k))
        .collect();
    let mut extra: Vec<_> = got
        .keys()
        .filter(|k| !want.series.contains_key(k))
        .collect();
    missing.sort();
    extra.sort();
    prop_assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {:?}, extra {:?}\n{}",
        missing,
        extra,
        page
    );
    for (id, &(value, ts)) in &want.series {
        let (v, t) = got[id];
        let same = v.to_bits() == value.to_bits() || (v.is_nan() && value.is_nan());
        prop_assert!(
            same && t == ts,
            "{:?}: page {} ({:#x}) at {}, sent {} ({:#x}) at {}",
            id,
            v,
            v.to_bits(),
            t,
            value,
            value.to_bits(),
            ts
        );
    }
    Ok(())
}

/// Names of which none is another's family part (no `_total`, `_bucket`,
/// `_sum`, `_count` pairs), so that every family keeps its HELP and TYPE.
const PLAIN_NAMES: &[&str] = &["up", "temperature_celsius", "a:b", "_x"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accepted_batches_read_back_exactly(reqs in requests(NAMES)) {
        let want = replay(&reqs);
        let (store, page) = page_of(&reqs);
        prop_assert_eq!(store.live_series(), want.series.len());
        assert_page_is(&page, &want)?;
    }

    #[test]
    fn help_and_type_read_back_as_sent(reqs in requests(PLAIN_NAMES)) {
        let want = replay(&reqs);
        let (_, page) = page_of(&reqs);
        assert_page_is(&page, &want)?;
        let families = parse_text(page.as_bytes()).unwrap();
        // Every live name is a family of its own, with the HELP last sent
        // for it.
        let live: std::collections::BTreeSet<&str> =
            want.series.keys().map(|(n, _)| n.as_str()).collect();
        let on_page: Vec<&str> = families.iter().map(|f| &*f.name).collect();
        prop_assert_eq!(on_page, live.iter().copied().collect::<Vec<_>>());
        for f in &families {
            let sent = want.metadata.get(&*f.name);
            prop_assert_eq!(
                f.help.as_deref(),
                sent.and_then(|(_, h)| readable_help(h)),
                "HELP of {}", f.name
            );
            // A gauge or an untyped family keeps its TYPE (a counter is
            // typed by its `_total` name, and the planner may untype a
            // histogram or summary whose lines it would misfile).
            let t = sent.map(|(t, _)| *t);
            if !matches!(t, Some(MetricType::Counter | MetricType::Histogram | MetricType::Summary)) {
                prop_assert_eq!(f.metric_type, t.map_or(promgate::model::MetricType::Unknown, exposed_type), "TYPE of {}", f.name);
            }
        }
    }
}

/// One page of awkward input, from a fixed seed, read by promtool
/// (client_golang's parser, as Prometheus' tooling runs it).
#[test]
fn promtool_reads_a_page_of_awkward_input() {
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(requests(NAMES), 4);
    let reqs: GenRequests = strategy
        .new_tree(&mut runner)
        .expect("a value")
        .current()
        .into_iter()
        .flatten()
        .collect();
    let want = replay(&reqs);
    let (_, page) = page_of(&reqs);
    assert!(
        want.series.len() >= 10,
        "the fixed seed gives a page worth checking: {page}"
    );
    for escaped in ["\\\"", "\\\\", "\\n"] {
        assert!(page.contains(escaped), "no {escaped} on the page:\n{page}");
    }
    assert_page_is(&page, &want).unwrap();
    assert_parses(&page);
}
