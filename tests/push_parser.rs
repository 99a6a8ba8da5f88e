//! The push parsers against their judge, the real Pushgateway (Debian's
//! 1.5.1: client_golang's text parser and consistency check).
//!
//! Every body — a hand-written corpus of each rule, a body written by
//! Python's prometheus_client, protobuf bodies encoded with prost, and a few
//! hundred mutations of valid bodies — is PUT to a fresh group of a real
//! Pushgateway, and read by promgate's `parse_text` (or `parse_delimited`)
//! and `check_push`. Then:
//!
//! - the verdicts agree: the Pushgateway's 200 exactly when promgate accepts;
//! - a text body both refuse fails at the same stage (parsing or the
//!   consistency check) and, when parsing, in the same line, for the same
//!   reason where Go's quoting and ours coincide;
//! - for a body both accept, the samples the Pushgateway then exposes for the
//!   group (name, labels but `job` and `instance`, value) are exactly ours
//!   plus those it invents (see [`expected_rows`]: a `+Inf` bucket, `_sum`
//!   and `_count` where missing), `le` and `quantile` in Go's spelling and
//!   counts truncated as it stores them; each family has our HELP and type;
//!   and every value it writes reads back and re-writes identically with
//!   `write_go_float`.
//!
//! Where promgate deliberately answers otherwise, the case must fall into
//! one of [`KNOWN_DIFFERENCES`], and that classification is checked against
//! what the Pushgateway did (its page then breaks, or shows other samples
//! than were pushed, or duplicate series). Families of the Pushgateway's own
//! (`go_*`, `process_*`, `pushgateway_*`) are read from its page at start.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use prost::Message;

use promgate::ingest::push::PUSH_TIME_METRICS;
use promgate::ingest::{Error, ParsedFamily, PushRule, check_push, parse_delimited, parse_text};
use promgate::model::{MetricType, go_float, parse_go_float};
use promgate::proto::client::{
    self, Bucket, BucketSpan, Counter, Gauge, Histogram, LabelPair, Metric, MetricType as PbType,
    Quantile, Summary, Untyped,
};

const TEXT: &str = "text/plain; version=0.0.4";
const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Where promgate deliberately answers otherwise than the Pushgateway, and
/// why. Every disagreement must be one of these.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "help_not_utf8",
        "a HELP text that is not UTF-8: promgate keeps help as text, the Pushgateway keeps the bytes",
    ),
    (
        "gauge_histogram",
        "a sample of a gauge_histogram family: Go's parser loses its own error, and the \
         Pushgateway then stores a metric without a value, which breaks its page",
    ),
    (
        "push_time_metric",
        "a family named push_time_seconds or push_failure_time_seconds: the Pushgateway \
         replaces it with its own gauge, silently dropping what was pushed",
    ),
    (
        "altered",
        "the Pushgateway accepts but drops, renames or garbles samples (a bare histogram \
         sample, a _bucket without le, le on _sum, a repeated or NaN bound, a count outside \
         uint64), or exposes duplicate series (a repeated bucket, quantile or _sum, or series \
         that differ only in empty-valued labels)",
    ),
    (
        "own_family",
        "a family named like one of the Pushgateway's own (go_*, process_*, pushgateway_*): \
         it checks a push against them, promgate does not serve them beside pushed ones",
    ),
    (
        "pb_stream_end",
        "a protobuf body ending inside or right after a length prefix: Go takes it as the end \
         of the stream, promgate as a truncated body",
    ),
    (
        "pb_breaks_page",
        "a protobuf family the Pushgateway accepts but cannot expose (an invalid or empty \
         name, a gauge_histogram or unknown type, an le label on a histogram): its page breaks \
         or shows a sample with two le labels",
    ),
    (
        "pb_duplicate_family",
        "a protobuf family sent twice: the Pushgateway keeps the last one only",
    ),
    (
        "pb_native_only",
        "a histogram with native buckets only: the Pushgateway 1.5.1's text page shows its \
         integer count as a +Inf bucket, _count and _sum (a float histogram's count as 0); \
         promgate stores the native histogram, whose classic form has a bucket per native \
         bucket (both protobuf pages carry it as pushed: tests/push_native.rs)",
    ),
    (
        "pb_native_invalid",
        "a native histogram Prometheus' validation refuses (spans not matching the buckets, a \
         negative count): the Pushgateway 1.5.1 keeps it as sent, for every scraper to refuse",
    ),
    (
        "pb_native_gauge_histogram",
        "a native gauge histogram: the Pushgateway 1.5.1 keeps it on its protobuf page, but \
         its text page stops at it; promgate stores it (a gauge histogram on protobuf pages, \
         its classic form on text pages)",
    ),
    (
        "pb_lenient_go",
        "protobuf Go reads leniently: a HELP that is not UTF-8 (kept as bytes), a field of \
         the wrong wire type (kept as unknown)",
    ),
];

fn known(id: &str) -> &'static str {
    KNOWN_DIFFERENCES
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(k, _)| *k)
        .unwrap_or_else(|| panic!("{id} is not in KNOWN_DIFFERENCES"))
}

/// A sample as compared: name, labels (sorted, without job and instance),
/// value as Go writes it.
type Row = (String, Vec<(String, String)>, String);

/// A running Pushgateway and a client for it.
struct Gateway {
    _proc: common::Proc,
    _dir: tempfile::TempDir,
    port: u16,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    /// The families the Pushgateway serves of its own.
    own: HashSet<String>,
    jobs: AtomicUsize,
}

/// What the Pushgateway answered to a push.
struct Answer {
    status: u16,
    message: String,
    /// Its page after an accepted push.
    page: Option<String>,
    job: String,
}

impl Gateway {
    fn start() -> Gateway {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (proc, port) = common::spawn_pushgateway(dir.path());
        let client = reqwest::Client::new();
        rt.block_on(common::pushgateway_ready(&client, port));
        let page = rt
            .block_on(common::fetch_text(
                &client,
                &format!("http://127.0.0.1:{port}/metrics"),
            ))
            .unwrap();
        let own = parse_text(page.as_bytes())
            .expect("the Pushgateway's own page parses")
            .into_iter()
            .map(|f| f.name.into_owned())
            .collect();
        Gateway {
            _proc: proc,
            _dir: dir,
            port,
            client,
            rt,
            own,
            jobs: AtomicUsize::new(0),
        }
    }

    /// PUTs `body` to a new group, reads the page if accepted, deletes the group.
    fn push(&self, body: &[u8], content_type: &str) -> Answer {
        let job = format!("case{}", self.jobs.fetch_add(1, Ordering::Relaxed));
        let base = format!("http://127.0.0.1:{}", self.port);
        self.rt.block_on(async {
            let url = format!("{base}/metrics/job/{job}");
            let resp = self
                .client
                .put(&url)
                .header("Content-Type", content_type)
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let message = resp.text().await.unwrap();
            let page = if status == 200 {
                Some(
                    common::fetch_text(&self.client, &format!("{base}/metrics"))
                        .await
                        .unwrap(),
                )
            } else {
                None
            };
            // Refused pushes leave a group too (its push_failure_time_seconds).
            let deleted = self.client.delete(&url).send().await.unwrap();
            assert_eq!(deleted.status().as_u16(), 202, "DELETE {url}");
            Answer {
                status,
                message: message.trim_end().to_string(),
                page,
                job,
            }
        })
    }

    /// Does any family of `families` meet one of the Pushgateway's own, or
    /// collide with one by a `_count`, `_sum` or `_bucket` suffix?
    fn touches_own(&self, names: &[String]) -> bool {
        names.iter().any(|n| {
            let base = ["_count", "_sum", "_bucket"]
                .iter()
                .find_map(|s| n.strip_suffix(s));
            self.own.contains(n)
                || base.is_some_and(|b| self.own.contains(b))
                || ["_count", "_sum", "_bucket"]
                    .iter()
                    .any(|s| self.own.contains(&format!("{n}{s}")))
        })
    }
}

/// The role of a sample in its family, as the Pushgateway stores it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    Bucket,
    Quantile,
    Sum,
    Count,
}

fn role(f: &ParsedFamily<'_>, name: &str) -> Role {
    let suffix = name.strip_prefix(&*f.name).unwrap_or(name);
    match (f.metric_type, suffix) {
        (MetricType::Histogram, "_bucket") => Role::Bucket,
        (MetricType::Summary, "") => Role::Quantile,
        (MetricType::Histogram | MetricType::Summary, "_sum") => Role::Sum,
        (MetricType::Histogram | MetricType::Summary, "_count") => Role::Count,
        _ => Role::Plain,
    }
}

fn bound_label(f: &ParsedFamily<'_>) -> &'static str {
    if f.metric_type == MetricType::Histogram {
        "le"
    } else {
        "quantile"
    }
}

/// The Pushgateway's `uint64` of a count, for counts it can hold.
fn stored_count(v: f64) -> f64 {
    if (0.0..18_446_744_073_709_551_616.0).contains(&v) {
        v.trunc()
    } else {
        v
    }
}

fn without_job_instance(labels: &[(String, String)]) -> Vec<(String, String)> {
    let mut l: Vec<_> = labels
        .iter()
        .filter(|(n, _)| n != "job" && n != "instance")
        .cloned()
        .collect();
    l.sort();
    l
}

/// What was pushed of one histogram or summary metric.
#[derive(Default)]
struct Seen {
    inf_bucket: bool,
    count: Option<f64>,
    sum: bool,
}

/// What the Pushgateway should expose for `families` (parsed from what was
/// pushed): every sample, its bound in Go's spelling (when `respell`), its
/// count truncated, and what it invents for each histogram or summary
/// metric (one label set as written, bound aside): a `+Inf` bucket with the
/// count (0 without one) when no bucket was +Inf, `_sum` 0 and `_count` 0
/// when not pushed.
fn expected_rows(families: &[ParsedFamily<'_>], respell: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    for f in families {
        let mut metrics: BTreeMap<Vec<(String, String)>, Seen> = BTreeMap::new();
        let special = bound_label(f);
        let composite = matches!(f.metric_type, MetricType::Histogram | MetricType::Summary);
        for s in &f.samples {
            let r = role(f, &s.name);
            let mut labels = s.labels.to_vec();
            if respell && matches!(r, Role::Bucket | Role::Quantile) {
                for (n, v) in &mut labels {
                    if n == special {
                        *v = go_float(parse_go_float(v.as_bytes()).unwrap_or(f64::NAN));
                    }
                }
            }
            let value = match (r, f.metric_type) {
                (Role::Bucket | Role::Count, _) => stored_count(s.value),
                _ => s.value,
            };
            rows.push((
                s.name.to_string(),
                without_job_instance(&labels),
                go_float(value),
            ));
            if composite {
                let mut key: Vec<_> = s
                    .labels
                    .to_vec()
                    .into_iter()
                    .filter(|(n, _)| n != special)
                    .collect();
                key.sort();
                let m = metrics.entry(key).or_default();
                match r {
                    Role::Bucket => {
                        let le = s.labels.get("le");
                        m.inf_bucket |=
                            le.and_then(|v| parse_go_float(v.as_bytes())) == Some(f64::INFINITY);
                    }
                    Role::Count => m.count = Some(stored_count(s.value)),
                    Role::Sum => m.sum = true,
                    _ => {}
                }
            }
        }
        for (labels, seen) in metrics {
            let labels = without_job_instance(&labels);
            let count = seen.count;
            if f.metric_type == MetricType::Histogram && !seen.inf_bucket {
                let mut l = labels.clone();
                l.push(("le".into(), "+Inf".into()));
                l.sort();
                rows.push((
                    format!("{}_bucket", f.name),
                    l,
                    go_float(count.unwrap_or(0.0)),
                ));
            }
            if !seen.sum {
                rows.push((format!("{}_sum", f.name), labels.clone(), "0".into()));
            }
            if count.is_none() {
                rows.push((format!("{}_count", f.name), labels, "0".into()));
            }
        }
    }
    rows.sort();
    rows
}

/// The group's samples on the Pushgateway's page (its own push-time
/// families left out), and whether it shows a series twice by Prometheus'
/// identity (empty values dropped).
fn page_rows(page: &[ParsedFamily<'_>], job: &str) -> (Vec<Row>, bool) {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut duplicates = false;
    for f in page {
        if PUSH_TIME_METRICS.contains(&&*f.name) {
            continue;
        }
        for s in &f.samples {
            if !s.labels.iter().any(|(n, v)| n == "job" && v == job) {
                continue;
            }
            let mut identity: Vec<_> = s
                .labels
                .to_vec()
                .into_iter()
                .filter(|(n, v)| n != "job" && !v.is_empty())
                .collect();
            identity.sort();
            duplicates |= !seen.insert((s.name.to_string(), identity));
            rows.push((
                s.name.to_string(),
                without_job_instance(&s.labels.to_vec()),
                go_float(s.value),
            ));
        }
    }
    rows.sort();
    (rows, duplicates)
}

/// How a case came out.
#[derive(Debug, PartialEq, Eq)]
enum Agreement {
    Same,
    Known(&'static str),
}

/// One body pushed both ways and compared; `Err` says how they disagree.
fn judge(
    gw: &Gateway,
    body: &[u8],
    protobuf: bool,
) -> Result<(Agreement, u16, Result<(), Error>), String> {
    let parsed = if protobuf {
        parse_delimited(body)
    } else {
        parse_text(body)
    };
    let ours = parsed
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|f| check_push(f));
    let answer = gw.push(body, if protobuf { PROTOBUF } else { TEXT });
    let show = || {
        format!(
            "\n--- body ---\n{}\n--- promgate: {:?}\n--- Pushgateway: {} {}",
            String::from_utf8_lossy(body),
            ours,
            answer.status,
            answer.message
        )
    };
    let page = answer.page.as_deref().map(|p| parse_text(p.as_bytes()));
    let agreement = match (&ours, answer.status) {
        (Ok(()), 200) => {
            let families = parsed.as_ref().unwrap();
            let gauge_histogram = families
                .iter()
                .any(|f| f.metric_type == MetricType::GaugeHistogram);
            let page = match page {
                Some(Ok(p)) => p,
                // Go's text encoder stops at a gauge histogram.
                Some(Err(_)) if gauge_histogram => {
                    return Ok((
                        Agreement::Known(known("pb_native_gauge_histogram")),
                        answer.status,
                        ours,
                    ));
                }
                _ => return Err(format!("the Pushgateway's page does not parse{}", show())),
            };
            let native_only = native_only_rows(families);
            compare_accepted(gw, families, &page, &answer, !protobuf, &native_only)
                .map_err(|e| format!("{e}{}", show()))?;
            if native_only.is_empty() {
                Agreement::Same
            } else {
                Agreement::Known(known("pb_native_only"))
            }
        }
        (Err(e), 400) => {
            if !protobuf {
                same_refusal(e, &answer.message).map_err(|m| format!("{m}{}", show()))?;
            }
            Agreement::Same
        }
        (Err(e), 200) => {
            let page = page.expect("a page after 200");
            let id = deliberate_refusal(body, protobuf, e, parsed.as_ref().ok(), &page, &answer)
                .ok_or_else(|| {
                    format!("promgate refuses what the Pushgateway accepts{}", show())
                })?;
            Agreement::Known(id)
        }
        (Ok(()), _) => {
            let names: Vec<String> = parsed
                .unwrap()
                .into_iter()
                .map(|f| f.name.into_owned())
                .collect();
            // The Pushgateway must name one of its own families.
            let names_own = gw.own.iter().any(|o| answer.message.contains(o.as_str()));
            if answer.status == 400 && gw.touches_own(&names) && names_own {
                Agreement::Known(known("own_family"))
            } else {
                return Err(format!(
                    "promgate accepts what the Pushgateway refuses{}",
                    show()
                ));
            }
        }
        (Err(_), s) => return Err(format!("unexpected status {s}{}", show())),
    };
    Ok((agreement, answer.status, ours))
}

/// What the Pushgateway's text page shows of each native histogram
/// pushed without classic buckets: its integer count as the `+Inf`
/// bucket and `_count` (0 for a float histogram, whose integer count is
/// unset), and its `_sum`. promgate shows its classic form instead.
fn native_only_rows(families: &[ParsedFamily<'_>]) -> Vec<Row> {
    use promgate::model::histogram::WireCount;
    let mut rows = Vec::new();
    for f in families {
        for n in &f.natives {
            let labels = n.labels.to_vec();
            let classic = f.samples.iter().any(|s| s.labels.to_vec() == labels);
            if classic {
                continue;
            }
            let count = match n.raw.count {
                Some(WireCount::Int(c)) => c as f64,
                _ => 0.0,
            };
            let labels = without_job_instance(&labels);
            let mut bucket = labels.clone();
            bucket.push(("le".into(), "+Inf".into()));
            bucket.sort();
            rows.push((format!("{}_bucket", f.name), bucket, go_float(count)));
            rows.push((format!("{}_count", f.name), labels.clone(), go_float(count)));
            rows.push((format!("{}_sum", f.name), labels, go_float(n.raw.sum)));
        }
    }
    rows
}

/// Both accepted: the Pushgateway exposes exactly our samples (plus what
/// it invents, and `native_only`: what it shows of native histograms
/// without classic buckets), with our HELP and types.
fn compare_accepted(
    gw: &Gateway,
    families: &[ParsedFamily],
    page: &[ParsedFamily],
    answer: &Answer,
    respell: bool,
    native_only: &[Row],
) -> Result<(), String> {
    let (got, _) = page_rows(page, &answer.job);
    let mut want = expected_rows(families, respell);
    want.extend_from_slice(native_only);
    want.sort();
    if got != want {
        return Err(format!(
            "samples differ\n--- Pushgateway exposes ---\n{}\n--- promgate expects ---\n{}",
            show_rows(&got),
            show_rows(&want)
        ));
    }
    for f in families {
        if gw.touches_own(&[f.name.to_string()]) {
            continue;
        }
        let theirs = page
            .iter()
            .find(|p| p.name == f.name)
            .ok_or_else(|| format!("family {} missing from the page", f.name))?;
        if (theirs.help.as_deref(), theirs.metric_type) != (f.help.as_deref(), f.metric_type) {
            return Err(format!(
                "family {}: the Pushgateway has {:?} {:?}, promgate {:?} {:?}",
                f.name, theirs.help, theirs.metric_type, f.help, f.metric_type
            ));
        }
    }
    // Every value the Pushgateway wrote for the group is Go's formatting,
    // which ours must reproduce byte for byte.
    let raw = answer.page.as_deref().unwrap_or_default();
    let marker = format!("job=\"{}\"", answer.job);
    for line in raw.lines().filter(|l| l.contains(&marker)) {
        let value = line.rsplit(' ').next().unwrap();
        let v = parse_go_float(value.as_bytes()).ok_or(format!("value of {line:?}"))?;
        if go_float(v) != value {
            return Err(format!("Go wrote {value}, write_go_float {}", go_float(v)));
        }
    }
    Ok(())
}

fn show_rows(rows: &[Row]) -> String {
    rows.iter()
        .map(|(n, l, v)| format!("{n}{l:?} {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Both refused a text body: at the same stage, and when parsing, in the
/// same line, for the same reason where both quote it alike.
fn same_refusal(ours: &Error, message: &str) -> Result<(), String> {
    let parse_prefix = "text format parsing error in line ";
    if let Some(rest) = message.strip_prefix(parse_prefix) {
        let (line, reason) = rest.split_once(": ").ok_or("odd message")?;
        let line: usize = line.parse().map_err(|_| "odd line")?;
        let Error::TextFormat {
            line: ours_line,
            reason: ours_reason,
        } = ours
        else {
            return Err(format!("the Pushgateway fails parsing, promgate: {ours}"));
        };
        if *ours_line != line {
            return Err(format!("line {ours_line}, the Pushgateway's {line}"));
        }
        let plain = |s: &str| {
            s.bytes().all(|c| (0x20..0x7f).contains(&c))
                && !s.contains("\\x")
                && !s.contains("\\u")
                && !s.contains("\\0")
        };
        if plain(reason) && plain(ours_reason) && !ours_reason.starts_with(reason) {
            return Err(format!(
                "reason {ours_reason:?}, the Pushgateway's {reason:?}"
            ));
        }
        Ok(())
    } else if message.starts_with("pushed metrics are invalid or inconsistent") {
        match ours {
            Error::InvalidPush { .. } => Ok(()),
            // promgate refuses these when parsing (known differences
            // help_not_utf8 and gauge_histogram), the Pushgateway only in
            // its check of what else is wrong.
            Error::TextFormat { reason, .. }
                if reason.starts_with("HELP text is not valid UTF-8")
                    || reason.starts_with("unexpected type for metric name") =>
            {
                Ok(())
            }
            _ => Err(format!(
                "the Pushgateway's check refuses it, promgate: {ours}"
            )),
        }
    } else {
        Err(format!("unexpected refusal {message:?}"))
    }
}

/// promgate refused what the Pushgateway accepted: which known difference,
/// if what the Pushgateway did bears it out.
fn deliberate_refusal(
    body: &[u8],
    protobuf: bool,
    ours: &Error,
    parsed: Option<&Vec<ParsedFamily>>,
    page: &Result<Vec<ParsedFamily>, Error>,
    answer: &Answer,
) -> Option<&'static str> {
    // A page that does not parse, or was cut short before the Pushgateway's
    // own families, or shows a sample with a label name twice.
    let page_broken = match page {
        Err(_) => true,
        Ok(p) => {
            !p.iter().any(|f| f.name == "pushgateway_build_info")
                || p.iter().flat_map(|f| &f.samples).any(|s| {
                    let names: HashSet<_> = s.labels.iter().map(|(n, _)| n).collect();
                    names.len() < s.labels.len()
                })
        }
    };
    match ours {
        Error::TextFormat { reason, .. } if reason.starts_with("HELP text is not valid UTF-8") => {
            let bad_help = body
                .split(|&c| c == b'\n')
                .any(|l| l.windows(4).any(|w| w == b"HELP") && std::str::from_utf8(l).is_err());
            bad_help.then(|| known("help_not_utf8"))
        }
        Error::TextFormat { reason, .. }
            if reason.starts_with("unexpected type for metric name") =>
        {
            page_broken.then(|| known("gauge_histogram"))
        }
        Error::InvalidPush {
            rule: PushRule::ReservedMetricName,
            ..
        } => {
            // Each pushed push-time sample is gone: the group shows its own.
            let shown = page.as_ref().ok()?.iter().flat_map(|f| &f.samples);
            let shown: Vec<_> = shown
                .filter(|s| s.labels.iter().any(|(n, v)| n == "job" && *v == answer.job))
                .map(|s| (s.name.clone(), s.value.to_bits()))
                .collect();
            let pushed: Vec<_> = parsed?
                .iter()
                .filter(|f| PUSH_TIME_METRICS.contains(&&*f.name))
                .flat_map(|f| &f.samples)
                .collect();
            let dropped = pushed
                .iter()
                .all(|s| !shown.contains(&(s.name.clone(), s.value.to_bits())));
            (!pushed.is_empty() && dropped).then(|| known("push_time_metric"))
        }
        Error::InvalidPush {
            rule:
                PushRule::MalformedSample
                | PushRule::InvalidCount
                | PushRule::DuplicateSeries
                | PushRule::InconsistentLabels,
            ..
        } => {
            // The Pushgateway must have changed what was pushed, or show a
            // series twice.
            let (got, duplicates) = page_rows(page.as_ref().ok()?, &answer.job);
            let altered = got != expected_rows(parsed?, !protobuf);
            (altered || duplicates).then(|| known("altered"))
        }
        Error::InvalidPush {
            rule: PushRule::InvalidNativeHistogram,
            ..
        } if protobuf => Some(known("pb_native_invalid")),
        Error::MetricFamily(e) if protobuf => {
            if e.contains("remain in the body") || e.contains("ends inside the length prefix") {
                Some(known("pb_stream_end"))
            } else if e.contains("sent twice") {
                Some(known("pb_duplicate_family"))
            } else if page_broken {
                Some(known("pb_breaks_page"))
            } else if e.contains("UTF-8") || e.contains("invalid wire type") {
                Some(known("pb_lenient_go"))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A hand-written case and what the Pushgateway answers to it.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    /// The Pushgateway's status, as observed (checked on every run).
    pushgateway: u16,
    /// The known difference, if promgate answers otherwise.
    differs: Option<&'static str>,
}

fn case(name: &'static str, body: impl AsRef<[u8]>, pushgateway: u16) -> Case {
    Case {
        name,
        body: body.as_ref().to_vec(),
        pushgateway,
        differs: None,
    }
}

/// A case the Pushgateway accepts and promgate refuses, deliberately.
fn differs(name: &'static str, body: impl AsRef<[u8]>, difference: &'static str) -> Case {
    Case {
        name,
        body: body.as_ref().to_vec(),
        pushgateway: 200,
        differs: Some(known(difference)),
    }
}

/// A case the Pushgateway refuses and promgate accepts, deliberately.
fn differs_refused(name: &'static str, body: impl AsRef<[u8]>, difference: &'static str) -> Case {
    Case {
        pushgateway: 400,
        ..differs(name, body, difference)
    }
}

/// The hand-written text corpus: every rule of the parser and the check.
fn text_corpus() -> Vec<Case> {
    let python = include_str!("fixtures/push/python_client.txt");
    vec![
        // Realistic bodies.
        case("python prometheus_client 0.26", python, 200),
        case(
            "client_golang-style histogram and summary",
            concat!(
                "# HELP rpc_duration_seconds RPC latency.\n",
                "# TYPE rpc_duration_seconds summary\n",
                "rpc_duration_seconds{service=\"a\",quantile=\"0.5\"} 0.0121\n",
                "rpc_duration_seconds{service=\"a\",quantile=\"0.9\"} 0.5\n",
                "rpc_duration_seconds{service=\"a\",quantile=\"0.99\"} 1.2e-05\n",
                "rpc_duration_seconds_sum{service=\"a\"} 1.7560473e+07\n",
                "rpc_duration_seconds_count{service=\"a\"} 2693\n",
                "# HELP http_request_duration_seconds Request latency.\n",
                "# TYPE http_request_duration_seconds histogram\n",
                "http_request_duration_seconds_bucket{code=\"200\",le=\"0.05\"} 24054\n",
                "http_request_duration_seconds_bucket{code=\"200\",le=\"0.1\"} 33444\n",
                "http_request_duration_seconds_bucket{code=\"200\",le=\"0.2\"} 100392\n",
                "http_request_duration_seconds_bucket{code=\"200\",le=\"1e+06\"} 129389\n",
                "http_request_duration_seconds_bucket{code=\"200\",le=\"+Inf\"} 144320\n",
                "http_request_duration_seconds_sum{code=\"200\"} 53423\n",
                "http_request_duration_seconds_count{code=\"200\"} 144320\n",
            ),
            200,
        ),
        case(
            "OpenMetrics-looking body (UNIT and EOF are comments, x_total its own family)",
            "# TYPE x counter\n# UNIT x seconds\nx_total 1\nx_created 1.7e9\n# EOF\n",
            200,
        ),
        case("empty body", "", 200),
        case(
            "blank lines and trailing blanks",
            "\n\n  \n\t\na 1\n   ",
            200,
        ),
        // Line endings.
        case("no final newline", "a 1", 400),
        case("CRLF", "a 1\r\n", 400),
        case(
            "CR kept in HELP and label value",
            "# HELP a x\r\na{b=\"c\r\"} 1\n",
            200,
        ),
        case("CR line", "a 1\n\r\n", 400),
        case("comment at the end without newline", "a 1\n#", 400),
        // HELP and TYPE.
        case("HELP escapes", "# HELP a x \\\\ y \\n z\na 1\n", 200),
        case("HELP invalid escape", "# HELP a \\t\na 1\n", 400),
        case("HELP touching #", "#HELP a foo\na 1\n", 200),
        case("second HELP", "# HELP a x\n# HELP a y\na 1\n", 400),
        case("HELP after samples", "a 1\n# HELP a late\n", 200),
        case("empty HELP then HELP", "# HELP a\n# HELP a x\na 1\n", 200),
        case("HELP backslash at end of line", "# HELP a x\\\n", 400),
        case("HELP invalid metric name", "# HELP 1a x\na 1\n", 400),
        case(
            "HELP of x_count documents summary x",
            "# TYPE x summary\n# HELP x_count hi\nx_count 1\n",
            200,
        ),
        differs(
            "HELP not UTF-8",
            b"# HELP a \xff\xfe\na 1\n",
            "help_not_utf8",
        ),
        case("TYPE after samples", "a 1\n# TYPE a gauge\n", 400),
        case("second TYPE", "# TYPE a gauge\n# TYPE a gauge\na 1\n", 400),
        case("TYPE case-insensitive", "# TYPE a GaUgE\na 1\n", 200),
        case(
            "TYPE with Unicode case folding",
            "# TYPE h hıstogram\nh_count 1\n",
            200,
        ),
        case("TYPE trailing blank", "# TYPE a gauge \na 1\n", 400),
        case("TYPE backslashes dropped", "# TYPE a gau\\ge\na 1\n", 200),
        case("TYPE info", "# TYPE a info\na 1\n", 400),
        case(
            "TYPE gauge_histogram without samples",
            "# TYPE a gauge_histogram\n",
            200,
        ),
        differs(
            "TYPE gauge_histogram with a sample",
            "# TYPE a gauge_histogram\na 1\n",
            "gauge_histogram",
        ),
        case(
            "TYPE of x_count after summary x",
            "# TYPE x summary\nx_count 1\n# TYPE x_count gauge\n",
            400,
        ),
        case(
            "other comments",
            "#\n# \n# FOO a b\n# HELPER a\n# TYPE\na 1\n# EOF\n",
            200,
        ),
        // Names.
        case("colons and underscores", "a:b 1\n:c 2\n_ 3\n", 200),
        case("name starting with a digit", "1a 1\n", 400),
        case("quoted UTF-8 metric name", "{\"a.b\"} 1\n", 400),
        case("quoted UTF-8 label name", "a{\"b.c\"=\"d\"} 1\n", 400),
        case("value glued to the name", "foo-1\nbar1.5\n", 200),
        case("__name__ label", "a{__name__=\"x\"} 1\n", 400),
        case("label starting with __", "a{__x=\"y\"} 1\n", 400),
        case("colon in a label name", "a{b:c=\"d\"} 1\n", 400),
        // Label sets.
        case("trailing comma and blanks", "a { b = \"c\" , } 1\n", 200),
        case("empty label set, no blank before value", "a{}1\n", 200),
        case("lone comma", "a{,} 1\n", 400),
        case("missing comma", "a{b=\"c\" d=\"e\"} 1\n", 400),
        case("duplicate label", "a{b=\"1\",b=\"2\"} 1\n", 400),
        case("label value escapes", "a{b=\"x\\\"y\\\\z\\nw\"} 1\n", 200),
        case("label value invalid escape", "a{b=\"\\x\"} 1\n", 400),
        case("label value raw newline", "a{b=\"c} 1\n", 400),
        case("label value not UTF-8", b"a{b=\"\xff\"} 1\n", 400),
        case("label value UTF-8, tab, NUL", "a{b=\"ü\t\0\"} 1\n", 200),
        case("unquoted label value", "a{b=c} 1\n", 400),
        // Values and timestamps.
        case(
            "special values",
            "a{v=\"1\"} Inf\na{v=\"2\"} -inf\na{v=\"3\"} NaN\na{v=\"4\"} nan\na{v=\"5\"} +Infinity\na{v=\"6\"} .5\na{v=\"7\"} 5.\na{v=\"8\"} 1E+3\na{v=\"9\"} -0\na{v=\"10\"} 1e-400\na{v=\"11\"} 00012\n",
            200,
        ),
        case("signed NaN", "a +NaN\n", 400),
        case("overflow", "a 1e400\n", 400),
        case("hex float", "a 0x1p3\n", 400),
        case("underscore", "a 1_000\n", 400),
        case("timestamp", "a 1 123\n", 400),
        case("bad timestamp", "a 1 12x\n", 400),
        case("blank after value", "a 1 \n", 400),
        case("spurious after timestamp", "a 1 2 3\n", 400),
        // Families.
        case("non-contiguous family", "a 1\nb 2\na{x=\"y\"} 3\n", 200),
        case(
            "histogram",
            "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"1e3\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4\nh_count 3\n",
            200,
        ),
        case(
            "histogram without +Inf, _sum, _count",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n",
            200,
        ),
        case(
            "histogram count only, fractional",
            "# TYPE h histogram\nh_count 1.7\n",
            200,
        ),
        case(
            "histogram not cumulative",
            "# TYPE h histogram\nh_bucket{le=\"2\"} 5\nh_bucket{le=\"1\"} 7\n",
            200,
        ),
        case(
            "le not a float",
            "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
            400,
        ),
        case(
            "le not a float on _sum",
            "# TYPE h histogram\nh_sum{le=\"x\"} 1\n",
            400,
        ),
        case("le ordinary in untyped", "a{le=\"x\"} 1\n", 200),
        case(
            "summary",
            "# TYPE s summary\ns{quantile=\"0.50\"} 1\ns{quantile=\"1e-3\"} 2\ns_sum 3\ns_count 4\n",
            200,
        ),
        case(
            "summary quantile not a float",
            "# TYPE s summary\ns{quantile=\"x\"} 1\n",
            400,
        ),
        case(
            "summary with _bucket family",
            "# TYPE s summary\ns_bucket 1\n",
            200,
        ),
        // The consistency check.
        case("duplicate series", "a 1\na 2\n", 400),
        case("duplicate after job replaced", "a{job=\"x\"} 1\na 2\n", 400),
        case(
            "duplicate by empty instance",
            "a{instance=\"\"} 1\na 2\n",
            400,
        ),
        case("pushed instance kept", "a{instance=\"i\"} 1\na 2\n", 200),
        case(
            "suffix collision",
            "x_count 1\n# TYPE x summary\nx{quantile=\"0.5\"} 1\n",
            400,
        ),
        case(
            "suffix collision with a bucket",
            "x_bucket 1\n# TYPE x histogram\nx_sum 1\n",
            400,
        ),
        case(
            "histogram metric split by job",
            "# TYPE h histogram\nh_bucket{le=\"1\",job=\"a\"} 1\nh_sum{job=\"b\"} 2\n",
            400,
        ),
        differs(
            "empty label value makes a second series",
            "a{x=\"\"} 1\na 2\n",
            "altered",
        ),
        differs(
            "repeated bucket",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"1.0\"} 7\n",
            "altered",
        ),
        differs(
            "repeated _sum",
            "# TYPE h histogram\nh_sum 1\nh_sum 2\n",
            "altered",
        ),
        differs(
            "bare histogram sample with le",
            "# TYPE h histogram\nh{le=\"1\"} 5\n",
            "altered",
        ),
        differs(
            "bucket without le",
            "# TYPE h histogram\nh_bucket 1\n",
            "altered",
        ),
        differs(
            "le on _sum",
            "# TYPE h histogram\nh_sum{le=\"1\"} 1\n",
            "altered",
        ),
        differs(
            "le twice on a bucket",
            "# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 5\n",
            "altered",
        ),
        differs(
            "NaN bound",
            "# TYPE h histogram\nh_bucket{le=\"NaN\"} 1\n",
            "altered",
        ),
        differs(
            "summary sample without quantile",
            "# TYPE s summary\ns 1\n",
            "altered",
        ),
        differs(
            "quantile on _sum",
            "# TYPE s summary\ns_sum{quantile=\"0.5\"} 1\n",
            "altered",
        ),
        differs(
            "negative count",
            "# TYPE h histogram\nh_count -1\n",
            "altered",
        ),
        differs("NaN count", "# TYPE s summary\ns_count NaN\n", "altered"),
        differs(
            "summary split by an empty label",
            "# TYPE s summary\ns{quantile=\"0.5\",a=\"\"} 1\ns_sum 2\n",
            "altered",
        ),
        differs(
            "push_time_seconds pushed",
            "push_time_seconds 5\n",
            "push_time_metric",
        ),
        differs_refused("go_goroutines untyped", "go_goroutines 5\n", "own_family"),
        case(
            "go_goroutines as a gauge",
            "# TYPE go_goroutines gauge\ngo_goroutines 5\n",
            200,
        ),
    ]
}

fn pb_family(name: &str, t: Option<PbType>, metric: Vec<Metric>) -> client::MetricFamily {
    client::MetricFamily {
        name: Some(name.to_string()),
        help: Some(format!("Help of {name}.")),
        r#type: t.map(|t| t as i32),
        metric,
        unit: None,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(n, v)| LabelPair {
            name: Some(n.to_string()),
            value: Some(v.to_string()),
        })
        .collect()
}

fn pb_gauge(pairs: &[(&str, &str)], v: f64) -> Metric {
    Metric {
        label: labels(pairs),
        gauge: Some(Gauge { value: Some(v) }),
        ..Default::default()
    }
}

fn delimited(families: &[client::MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        f.encode_length_delimited(&mut out).unwrap();
    }
    out
}

fn pb_histogram(buckets: &[(f64, u64)], count: u64, sum: f64) -> Histogram {
    Histogram {
        sample_count: Some(count),
        sample_sum: Some(sum),
        bucket: buckets
            .iter()
            .map(|&(ub, c)| Bucket {
                cumulative_count: Some(c),
                upper_bound: Some(ub),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The protobuf corpus.
fn protobuf_corpus() -> Vec<Case> {
    let g = |name: &str| {
        pb_family(
            name,
            Some(PbType::Gauge),
            vec![pb_gauge(&[("a", "b")], 1.5)],
        )
    };
    let summary = Metric {
        label: labels(&[("db", "main")]),
        summary: Some(Summary {
            sample_count: Some(7),
            sample_sum: Some(3.5),
            quantile: [(0.5, 1.25), (0.99, 2.0), (1e-5, 0.5)]
                .iter()
                .map(|&(q, v)| Quantile {
                    quantile: Some(q),
                    value: Some(v),
                })
                .collect(),
            created_timestamp: None,
        }),
        ..Default::default()
    };
    let histogram = |h: Histogram, pairs: &[(&str, &str)]| Metric {
        label: labels(pairs),
        histogram: Some(h),
        ..Default::default()
    };
    let classic = pb_histogram(&[(0.1, 2), (1.0, 5), (1e6, 7), (123456.75, 8)], 10, 12.5);
    let native = Histogram {
        sample_count: Some(3),
        sample_sum: Some(1.0),
        schema: Some(3),
        zero_threshold: Some(1e-128),
        zero_count: Some(1),
        positive_span: vec![BucketSpan {
            offset: Some(0),
            length: Some(1),
        }],
        positive_delta: vec![2],
        ..Default::default()
    };
    let one = delimited(&[g("a")]);
    let mut bad_help = pb_family("a", Some(PbType::Gauge), vec![pb_gauge(&[], 1.0)]);
    bad_help.help = None;
    let mut bad_help = bad_help.encode_to_vec();
    bad_help.extend_from_slice(b"\x12\x01\xff");
    let mut bad_help_body = Vec::new();
    prost::encoding::encode_varint(bad_help.len() as u64, &mut bad_help_body);
    bad_help_body.extend_from_slice(&bad_help);
    let mut unknown_type = g("a");
    unknown_type.r#type = Some(9);
    vec![
        case(
            "protobuf gauge, counter, untyped",
            delimited(&[
                g("pb_g"),
                pb_family(
                    "pb_c",
                    Some(PbType::Counter),
                    vec![Metric {
                        label: labels(&[("x", "1")]),
                        counter: Some(Counter {
                            value: Some(7.0),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                ),
                pb_family(
                    "pb_u",
                    Some(PbType::Untyped),
                    vec![Metric {
                        untyped: Some(Untyped { value: Some(-2.5) }),
                        ..Default::default()
                    }],
                ),
            ]),
            200,
        ),
        case(
            "protobuf summary",
            delimited(&[pb_family(
                "pb_s",
                Some(PbType::Summary),
                vec![summary.clone()],
            )]),
            200,
        ),
        case(
            "protobuf histogram, +Inf added",
            delimited(&[pb_family(
                "pb_h",
                Some(PbType::Histogram),
                vec![histogram(classic.clone(), &[("x", "y")])],
            )]),
            200,
        ),
        case(
            "protobuf empty summary and histogram",
            delimited(&[
                pb_family(
                    "pb_s",
                    Some(PbType::Summary),
                    vec![Metric {
                        summary: Some(Summary::default()),
                        ..Default::default()
                    }],
                ),
                pb_family(
                    "pb_h",
                    Some(PbType::Histogram),
                    vec![histogram(Histogram::default(), &[])],
                ),
            ]),
            200,
        ),
        case(
            "protobuf empty family and empty message",
            [
                &delimited(&[pb_family("e", Some(PbType::Gauge), vec![])])[..],
                b"\x00",
            ]
            .concat(),
            200,
        ),
        case(
            "protobuf no type is counter",
            {
                let mut f = g("a");
                f.r#type = None;
                delimited(&[f])
            },
            400,
        ),
        case("protobuf 6-byte varint", b"\xff\xff\xff\xff\xff\x01", 400),
        case(
            "protobuf truncated message",
            [&one[..], b"\x05ab"].concat(),
            400,
        ),
        case("protobuf malformed message", b"\x02\x0a\x05", 400),
        case(
            "protobuf timestamp",
            delimited(&[pb_family(
                "a",
                Some(PbType::Gauge),
                vec![Metric {
                    timestamp_ms: Some(5),
                    ..pb_gauge(&[], 1.0)
                }],
            )]),
            400,
        ),
        case(
            "protobuf duplicate series",
            delimited(&[pb_family(
                "a",
                Some(PbType::Gauge),
                vec![pb_gauge(&[], 1.0), pb_gauge(&[], 2.0)],
            )]),
            400,
        ),
        case(
            "protobuf empty label name",
            delimited(&[pb_family(
                "a",
                Some(PbType::Gauge),
                vec![pb_gauge(&[("", "x")], 1.0)],
            )]),
            400,
        ),
        case(
            "protobuf dotted label name",
            delimited(&[pb_family(
                "a",
                Some(PbType::Gauge),
                vec![pb_gauge(&[("a.b", "x")], 1.0)],
            )]),
            400,
        ),
        case(
            "protobuf duplicate label",
            delimited(&[pb_family(
                "a",
                Some(PbType::Gauge),
                vec![pb_gauge(&[("x", "1"), ("x", "2")], 1.0)],
            )]),
            400,
        ),
        case(
            "protobuf __ label",
            delimited(&[pb_family(
                "a",
                Some(PbType::Gauge),
                vec![pb_gauge(&[("__x", "1")], 1.0)],
            )]),
            400,
        ),
        case(
            "protobuf __name__ label",
            delimited(&[pb_family(
                "a",
                Some(PbType::Gauge),
                vec![pb_gauge(&[("__name__", "b")], 1.0)],
            )]),
            400,
        ),
        case(
            "protobuf quantile label on a summary",
            delimited(&[pb_family(
                "s",
                Some(PbType::Summary),
                vec![Metric {
                    label: labels(&[("quantile", "0.5")]),
                    ..summary.clone()
                }],
            )]),
            400,
        ),
        case(
            "protobuf suffix collision",
            delimited(&[
                g("a_count"),
                pb_family("a", Some(PbType::Summary), vec![summary.clone()]),
            ]),
            400,
        ),
        differs(
            "protobuf length prefix without data",
            [&one[..], b"\x05"].concat(),
            "pb_stream_end",
        ),
        differs(
            "protobuf truncated length prefix",
            [&one[..], b"\x85"].concat(),
            "pb_stream_end",
        ),
        differs(
            "protobuf 4 GiB length prefix",
            b"\xff\xff\xff\xff\x0f",
            "pb_stream_end",
        ),
        differs(
            "protobuf family twice",
            delimited(&[g("a"), g("a")]),
            "pb_duplicate_family",
        ),
        differs(
            "protobuf name with a blank",
            delimited(&[g("a b")]),
            "pb_breaks_page",
        ),
        differs("protobuf empty name", delimited(&[g("")]), "pb_breaks_page"),
        differs(
            "protobuf gauge histogram",
            delimited(&[pb_family(
                "a",
                Some(PbType::GaugeHistogram),
                vec![histogram(classic.clone(), &[])],
            )]),
            "pb_breaks_page",
        ),
        differs(
            "protobuf unknown type",
            delimited(&[unknown_type]),
            "pb_breaks_page",
        ),
        differs(
            "protobuf le label on a histogram",
            delimited(&[pb_family(
                "h",
                Some(PbType::Histogram),
                vec![histogram(classic, &[("le", "1")])],
            )]),
            "pb_breaks_page",
        ),
        differs(
            "protobuf native-only histogram",
            delimited(&[pb_family(
                "h",
                Some(PbType::Histogram),
                vec![histogram(native.clone(), &[])],
            )]),
            "pb_native_only",
        ),
        differs(
            "protobuf native-only float histogram",
            delimited(&[pb_family(
                "h",
                Some(PbType::Histogram),
                vec![histogram(
                    Histogram {
                        sample_count: None,
                        sample_count_float: Some(2.5),
                        zero_count: None,
                        zero_count_float: Some(0.5),
                        positive_delta: vec![],
                        positive_count: vec![2.0],
                        ..native.clone()
                    },
                    &[("a", "b")],
                )],
            )]),
            "pb_native_only",
        ),
        // Both forms, as client_golang sends them when both are
        // configured: the text pages agree (the classic buckets).
        case(
            "protobuf native histogram with classic buckets",
            delimited(&[pb_family(
                "h",
                Some(PbType::Histogram),
                vec![histogram(
                    Histogram {
                        bucket: pb_histogram(&[(1.0, 2), (2.0, 3)], 3, 1.0).bucket,
                        ..native.clone()
                    },
                    &[],
                )],
            )]),
            200,
        ),
        differs(
            "protobuf native gauge histogram",
            delimited(&[pb_family(
                "h",
                Some(PbType::GaugeHistogram),
                vec![histogram(native.clone(), &[])],
            )]),
            "pb_native_gauge_histogram",
        ),
        differs(
            "protobuf native histogram with spans not matching its deltas",
            delimited(&[pb_family(
                "h",
                Some(PbType::Histogram),
                vec![histogram(
                    Histogram {
                        positive_delta: vec![2, -1],
                        ..native.clone()
                    },
                    &[],
                )],
            )]),
            "pb_native_invalid",
        ),
        differs(
            "protobuf native histogram with a negative bucket",
            delimited(&[pb_family(
                "h",
                Some(PbType::Histogram),
                vec![histogram(
                    Histogram {
                        sample_count: Some(0),
                        zero_count: Some(3),
                        positive_delta: vec![-3],
                        ..native
                    },
                    &[],
                )],
            )]),
            "pb_native_invalid",
        ),
        differs("protobuf HELP not UTF-8", bad_help_body, "pb_lenient_go"),
    ]
}

/// Runs a hand-written corpus: the Pushgateway answers as recorded, and
/// promgate as it, or as the recorded known difference.
fn run_corpus(corpus: Vec<Case>, protobuf: bool, at_least: usize) {
    assert!(corpus.len() >= at_least, "{} cases", corpus.len());
    let gw = Gateway::start();
    let mut failures = Vec::new();
    for c in &corpus {
        match judge(&gw, &c.body, protobuf) {
            Ok((agreement, status, _)) => {
                if status != c.pushgateway {
                    failures.push(format!(
                        "{}: the Pushgateway answered {status}, the corpus says {}",
                        c.name, c.pushgateway
                    ));
                }
                let want = c.differs.map_or(Agreement::Same, Agreement::Known);
                if agreement != want {
                    failures.push(format!(
                        "{}: {agreement:?}, the corpus says {want:?}",
                        c.name
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn push_text_corpus_matches_the_pushgateway() {
    run_corpus(text_corpus(), false, 60);
}

#[test]
fn push_protobuf_corpus_matches_the_pushgateway() {
    run_corpus(protobuf_corpus(), true, 20);
}

/// One edit of a body.
#[derive(Clone, Debug)]
enum Mutation {
    /// Insert a snippet at a byte position.
    Insert(Index, &'static [u8]),
    /// Delete up to three bytes at a position.
    Delete(Index, usize),
    /// Insert a label first in a line's label set (or open one).
    Label(Index, &'static str),
    /// Replace a line's value.
    Value(Index, &'static str),
    /// Repeat a line.
    DuplicateLine(Index),
    /// Drop a line.
    DeleteLine(Index),
    /// Swap two lines.
    SwapLines(Index, Index),
    /// Change a TYPE line's type, or declare one before a sample line.
    Retype(Index, &'static str),
    /// Add a suffix to a sample line's name, or take its suffix off.
    Suffix(Index, &'static str),
}

const SNIPPETS: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"",
    b"\\",
    b"\\\\",
    b"\\n",
    b"\\\"",
    b"\\t",
    b"=",
    b",",
    b" ",
    b"\t",
    b"\n",
    b"\r",
    b"#",
    b"_",
    b":",
    b"0",
    b"1",
    b".",
    b"e",
    b"+",
    b"-",
    b"\xff",
    b"le",
    b"quantile",
    b"__",
    b"_count",
    b"_sum",
    b"_bucket",
    b" 123",
    b"# TYPE ",
    b"# HELP ",
    b"histogram",
    b"summary",
    b"gauge",
    b"counter",
    b"NaN",
    b"Inf",
    b"\xc3\xbc",
];

const LABELS: &[&str] = &[
    "le=\"1\",",
    "le=\"+Inf\",",
    "le=\"1.0\",",
    "quantile=\"0.5\",",
    "a=\"\",",
    "job=\"j\",",
    "instance=\"\",",
    "instance=\"i\",",
    "__x=\"y\",",
    "x=\"1\",",
    "x=\"a\\\"b\",",
];

const VALUES: &[&str] = &[
    "1e400",
    "+NaN",
    "-0",
    "0x1p3",
    "1_0",
    ".5",
    "Infinity",
    "-1",
    "1.5",
    "NaN",
    "2 5",
    "1e-5",
    "18446744073709551616",
    "7",
];

const TYPES: &[&str] = &[
    "histogram",
    "summary",
    "gauge",
    "counter",
    "untyped",
    "gauge_histogram",
    "HISTOGRAM",
    "info",
];

const SUFFIXES: &[&str] = &["_count", "_sum", "_bucket", "_total", ""];

/// The metric name a sample line starts with (after blanks).
fn line_name(line: &[u8]) -> Option<(usize, usize)> {
    let start = line.iter().position(|&c| c != b' ' && c != b'\t')?;
    let len = line[start..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b':'))
        .unwrap_or(line.len() - start);
    (len > 0 && line[start] != b'#').then_some((start, start + len))
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), prop::sample::select(SNIPPETS)).prop_map(|(i, s)| Mutation::Insert(i, s)),
        2 => (any::<Index>(), 1..4usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), prop::sample::select(LABELS)).prop_map(|(i, s)| Mutation::Label(i, s)),
        2 => (any::<Index>(), prop::sample::select(VALUES)).prop_map(|(i, v)| Mutation::Value(i, v)),
        2 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (any::<Index>(), prop::sample::select(TYPES)).prop_map(|(i, t)| Mutation::Retype(i, t)),
        2 => (any::<Index>(), prop::sample::select(SUFFIXES)).prop_map(|(i, t)| Mutation::Suffix(i, t)),
    ]
}

fn apply(body: &[u8], m: &Mutation) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = body.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
    // The split leaves an empty last piece after the final newline.
    let n = lines.len().saturating_sub(1).max(1);
    match m {
        Mutation::Insert(i, s) => {
            let at = i.index(body.len() + 1);
            return [&body[..at], s, &body[at..]].concat();
        }
        Mutation::Delete(i, k) => {
            if body.is_empty() {
                return body.to_vec();
            }
            let at = i.index(body.len());
            let end = (at + k).min(body.len());
            return [&body[..at], &body[end..]].concat();
        }
        Mutation::Label(i, label) => {
            let line = &mut lines[i.index(n)];
            if line.starts_with(b"#") || line.is_empty() {
                return body.to_vec();
            }
            if let Some(p) = line.iter().position(|&c| c == b'{') {
                line.splice(p + 1..p + 1, label.bytes());
            } else {
                let p = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
                let set = format!("{{{label}}}");
                line.splice(p..p, set.into_bytes());
            }
        }
        Mutation::Value(i, v) => {
            let line = &mut lines[i.index(n)];
            if line.starts_with(b"#") || line.is_empty() {
                return body.to_vec();
            }
            let p = line.iter().rposition(|&c| c == b' ').map_or(0, |p| p + 1);
            line.truncate(p);
            line.extend_from_slice(v.as_bytes());
        }
        Mutation::DuplicateLine(i) => {
            let at = i.index(n);
            let l = lines[at].clone();
            lines.insert(at, l);
        }
        Mutation::DeleteLine(i) => {
            if n > 1 {
                lines.remove(i.index(n));
            }
        }
        Mutation::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
        Mutation::Retype(i, t) => {
            let at = i.index(n);
            let line = &mut lines[at];
            if line.starts_with(b"# TYPE ") {
                let p = line.iter().rposition(|&c| c == b' ').unwrap_or(0);
                line.truncate(p + 1);
                line.extend_from_slice(t.as_bytes());
            } else if let Some((a, b)) = line_name(line) {
                let declared = [b"# TYPE ", &line[a..b], b" ", t.as_bytes()].concat();
                lines.insert(at, declared);
            }
        }
        Mutation::Suffix(i, suffix) => {
            let line = &mut lines[i.index(n)];
            if let Some((a, b)) = line_name(line) {
                let name = String::from_utf8_lossy(&line[a..b]).into_owned();
                let base = ["_count", "_sum", "_bucket", "_total"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                let renamed = format!("{base}{suffix}");
                line.splice(a..b, renamed.into_bytes());
            }
        }
    }
    lines.join(&b'\n')
}

/// A few hundred mutations of the corpus' valid bodies, each judged like a
/// corpus case. The seed is fixed so that CI runs the same bodies; set
/// PUSH_PARSER_SEED to explore others.
#[test]
fn push_text_mutations_match_the_pushgateway() {
    let bases: Vec<Vec<u8>> = text_corpus()
        .into_iter()
        .filter(|c| c.pushgateway == 200 && c.differs.is_none() && !c.body.is_empty())
        .map(|c| c.body)
        .collect();
    let seed: u64 = std::env::var("PUSH_PARSER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let cases: u32 = std::env::var("PUSH_PARSER_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..ProptestConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let gw = Gateway::start();
    let tally = std::sync::Mutex::new(BTreeMap::<String, usize>::new());
    let strategy = (
        prop::sample::select(bases),
        prop::collection::vec(mutation(), 1..4),
    )
        .prop_map(|(base, ms)| ms.iter().fold(base, |b, m| apply(&b, m)));
    let result = runner.run(&strategy, |body| {
        let (agreement, status, _) = judge(&gw, &body, false).map_err(TestCaseError::fail)?;
        let key = match agreement {
            Agreement::Same => format!("same, {status}"),
            Agreement::Known(id) => format!("known difference {id}"),
        };
        *tally.lock().unwrap().entry(key).or_default() += 1;
        Ok(())
    });
    let tally = tally.into_inner().unwrap();
    eprintln!("mutations (seed {seed}): {tally:?}");
    if let Err(e) = result {
        panic!("{e}");
    }
    // The mutations must reach both verdicts, or they prove little.
    assert!(
        tally.get("same, 200").copied().unwrap_or(0) >= cases as usize / 10,
        "{tally:?}"
    );
    assert!(
        tally.get("same, 400").copied().unwrap_or(0) >= cases as usize / 10,
        "{tally:?}"
    );
}
