//! The delimited protobuf format of a push: `io.prometheus.client.MetricFamily`
//! messages, each after its length as a varint, flattened into the samples
//! the text format would show.

use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashSet};
use prost::Message;

use std::borrow::Cow;

use super::{Labels, ParsedFamily, ParsedNative, ParsedSample};
use crate::ingest::Error;
use crate::model::histogram::{RawHistogram, ResetHint, Span, WireCount};
use crate::model::{MetricType, go_float, is_legacy_label_name, is_legacy_metric_name};
use crate::proto::client::{self, MetricType as ProtoType};

/// Go reads the length prefix as a varint32: at most five bytes.
const MAX_PREFIX_BYTES: usize = 5;

/// Parses a delimited protobuf push body (`application/vnd.google.protobuf;
/// proto=io.prometheus.client.MetricFamily; encoding=delimited`) into its
/// families, in the order sent, each metric flattened into samples as Go's
/// text encoder would write them (which is how the Pushgateway then exposes
/// them):
///
/// - counter, gauge, untyped: one sample named like the family, the value
///   0 when absent;
/// - summary: `name{…,quantile="q"}` per quantile, then `name_sum` and
///   `name_count` (0 when absent);
/// - histogram: `name_bucket{…,le="b"}` per bucket in the order sent, with
///   its cumulative count (`cumulative_count_float` when above 0, as the
///   schema says), then `name_bucket{…,le="+Inf"}` with the sample count if
///   no bucket was +Inf, then `name_sum` and `name_count`;
/// - a histogram or gauge histogram metric with any native field (schema,
///   zero threshold or count, spans, deltas, counts) is also a
///   [`ParsedNative`] in [`ParsedFamily::natives`], validated later by
///   [`check_push`](super::check_push); with native fields only, it has no
///   samples (as Prometheus reads it: one native histogram). With classic
///   buckets too, both are kept, as the Pushgateway keeps both.
///
/// `le` and `quantile` are written as Go writes floats
/// ([`write_go_float`](crate::model::write_go_float)): `0.25`, `1`,
/// `1e+06`, `+Inf`, `NaN`. The metric's labels come first, in the order
/// sent, the bound last. A metric's timestamp goes to each of its samples
/// (and [`check_push`](super::check_push) refuses it).
///
/// The work is bounded by the body: a length prefix is at most five bytes
/// and never larger than what remains, so nothing is allocated for a length
/// that the body does not hold.
///
/// # Errors
///
/// [`Error::MetricFamily`] for what the Pushgateway refuses too: a length
/// prefix over five bytes, a message cut short, a malformed message, a
/// label name outside `[a-zA-Z_][a-zA-Z0-9_]*` or given twice, a metric
/// without the value its family's type names (a family without a type is a
/// counter), a summary metric with a `quantile` label. And, deliberately,
/// for what the Pushgateway 1.5.1 accepts but promgate cannot keep as sent:
/// a body that ends inside a length prefix or right after one (Go takes
/// that as the end of the stream), a string that is not UTF-8 (Go keeps a
/// family name or HELP as bytes; prost refuses), a field of the wrong wire
/// type (Go keeps it as an unknown field), a family name sent twice (Go
/// keeps the last one only), a name outside the legacy metric name
/// character set (UTF-8 names are another issue; Go exposes it and breaks
/// its page), an unknown type, a `gauge_histogram` metric without native
/// fields or with classic buckets (Go's text page breaks at any gauge
/// histogram; promgate keeps native ones only), and a histogram metric with
/// an `le` label (Go exposes two `le`). Families without metrics are
/// dropped, as Go drops them.
pub fn parse_delimited(body: &[u8]) -> Result<Vec<ParsedFamily<'static>>, Error> {
    let mut families = Vec::new();
    // Each name sent, and whether that family had metrics.
    let mut seen: HashMap<String, bool, RandomState> = HashMap::default();
    let mut rest = body;
    let mut index = 0;
    while !rest.is_empty() {
        index += 1;
        let (len, prefix) = length_prefix(rest, index)?;
        let rest_after = &rest[prefix..];
        if len > rest_after.len() as u64 {
            return Err(Error::MetricFamily(format!(
                "message {index} declares {len} bytes but only {} remain in the body",
                rest_after.len()
            )));
        }
        let (message, tail) = rest_after.split_at(len as usize);
        rest = tail;
        let mf = client::MetricFamily::decode(message)
            .map_err(|e| Error::MetricFamily(format!("message {index}: {e}")))?;
        let name = mf.name.clone().unwrap_or_default();
        let has_metrics = !mf.metric.is_empty();
        if let Some(had) = seen.insert(name.clone(), has_metrics)
            && (had || has_metrics)
        {
            return Err(Error::MetricFamily(format!(
                "family {name:?} is sent twice (message {index})"
            )));
        }
        if has_metrics {
            families.push(family(mf, name)?);
        }
    }
    Ok(families)
}

/// The varint length prefix at the start of `rest`: its value and size.
fn length_prefix(rest: &[u8], index: usize) -> Result<(u64, usize), Error> {
    let mut len = 0u64;
    for (i, &b) in rest.iter().take(MAX_PREFIX_BYTES).enumerate() {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((len, i + 1));
        }
    }
    Err(Error::MetricFamily(if rest.len() < MAX_PREFIX_BYTES {
        format!("the body ends inside the length prefix of message {index}")
    } else {
        format!("invalid varint32 encountered as the length prefix of message {index}")
    }))
}

fn family(mf: client::MetricFamily, name: String) -> Result<ParsedFamily<'static>, Error> {
    let bad = |why: String| Error::MetricFamily(format!("family {name:?}: {why}"));
    if !is_legacy_metric_name(&name) {
        return Err(bad(
            "invalid metric name: names must match [a-zA-Z_:][a-zA-Z0-9_:]* (UTF-8 names are not supported)".to_string(),
        ));
    }
    // A family without a type is a counter: the enum's zero value.
    let proto_type = match mf.r#type {
        None => ProtoType::Counter,
        Some(t) => ProtoType::try_from(t).map_err(|_| bad(format!("unknown metric type {t}")))?,
    };
    let metric_type = match proto_type {
        ProtoType::Counter => MetricType::Counter,
        ProtoType::Gauge => MetricType::Gauge,
        ProtoType::Summary => MetricType::Summary,
        ProtoType::Untyped => MetricType::Unknown,
        ProtoType::Histogram => MetricType::Histogram,
        ProtoType::GaugeHistogram => MetricType::GaugeHistogram,
    };
    let mut samples = Vec::with_capacity(mf.metric.len());
    let mut natives = Vec::new();
    for mut m in mf.metric {
        let labels = labels(std::mem::take(&mut m.label), proto_type).map_err(&bad)?;
        let ts = m.timestamp_ms;
        let sample = |name: String, labels: Labels<'static>, value: f64| ParsedSample {
            name: Cow::Owned(name),
            labels,
            value,
            timestamp_ms: ts,
        };
        let missing = || {
            bad(format!(
                "a metric of a {} family has no {0} value",
                proto_type.as_str_name().to_lowercase()
            ))
        };
        match proto_type {
            ProtoType::Counter => {
                let v = m.counter.ok_or_else(missing)?.value.unwrap_or(0.0);
                samples.push(sample(name.clone(), labels, v));
            }
            ProtoType::Gauge => {
                let v = m.gauge.ok_or_else(missing)?.value.unwrap_or(0.0);
                samples.push(sample(name.clone(), labels, v));
            }
            ProtoType::Untyped => {
                let v = m.untyped.ok_or_else(missing)?.value.unwrap_or(0.0);
                samples.push(sample(name.clone(), labels, v));
            }
            ProtoType::Summary => {
                let s = m.summary.ok_or_else(missing)?;
                for q in &s.quantile {
                    let mut l = labels.clone();
                    l.push("quantile", &go_float(q.quantile.unwrap_or(0.0)));
                    samples.push(sample(name.clone(), l, q.value.unwrap_or(0.0)));
                }
                samples.push(sample(
                    format!("{name}_sum"),
                    labels.clone(),
                    s.sample_sum.unwrap_or(0.0),
                ));
                samples.push(sample(
                    format!("{name}_count"),
                    labels,
                    s.sample_count.unwrap_or(0) as f64,
                ));
            }
            ProtoType::Histogram | ProtoType::GaugeHistogram => {
                let h = m.histogram.ok_or_else(missing)?;
                let gauge = proto_type == ProtoType::GaugeHistogram;
                if has_native_buckets(&h) {
                    natives.push(ParsedNative {
                        labels: labels.clone(),
                        raw: raw_histogram(&h, gauge),
                        timestamp_ms: ts,
                    });
                    // Native only: nothing more, as Prometheus reads it.
                    if h.bucket.is_empty() {
                        continue;
                    }
                }
                if gauge {
                    return Err(bad(
                        "a gauge histogram must carry native buckets and no classic ones (the text format 0.0.4 has no gauge histograms)"
                            .to_string(),
                    ));
                }
                let count = count(h.sample_count_float, h.sample_count);
                let bucket = format!("{name}_bucket");
                let mut inf_seen = false;
                for b in &h.bucket {
                    let bound = b.upper_bound.unwrap_or(0.0);
                    inf_seen |= bound == f64::INFINITY;
                    let mut l = labels.clone();
                    l.push("le", &go_float(bound));
                    samples.push(sample(
                        bucket.clone(),
                        l,
                        self::count(b.cumulative_count_float, b.cumulative_count),
                    ));
                }
                if !inf_seen {
                    let mut l = labels.clone();
                    l.push("le", "+Inf");
                    samples.push(sample(bucket, l, count));
                }
                samples.push(sample(
                    format!("{name}_sum"),
                    labels.clone(),
                    h.sample_sum.unwrap_or(0.0),
                ));
                samples.push(sample(format!("{name}_count"), labels, count));
            }
        }
    }
    Ok(ParsedFamily {
        name: Cow::Owned(name),
        help: mf.help,
        metric_type,
        samples,
        natives,
    })
}

/// A count as the schema defines it: the float one when above 0.
fn count(float: Option<f64>, integer: Option<u64>) -> f64 {
    match float {
        Some(f) if f > 0.0 => f,
        _ => integer.unwrap_or(0) as f64,
    }
}

/// A pushed histogram's native fields as a remote-written histogram's,
/// read as Prometheus' protobuf parser reads them: a float histogram when
/// `sample_count_float` or `zero_count_float` is above 0 (its counts
/// absolute), an integer one otherwise (bucket deltas); reset hint `Gauge`
/// in a gauge histogram family, unknown otherwise. Classic buckets are not
/// part of it.
fn raw_histogram(h: &client::Histogram, gauge: bool) -> RawHistogram {
    let float =
        h.sample_count_float.unwrap_or(0.0) > 0.0 || h.zero_count_float.unwrap_or(0.0) > 0.0;
    let spans = |spans: &[client::BucketSpan]| -> Vec<Span> {
        spans
            .iter()
            .map(|s| Span {
                offset: s.offset.unwrap_or(0),
                length: s.length.unwrap_or(0),
            })
            .collect()
    };
    let mut raw = RawHistogram {
        sum: super::lower::pushed_value(h.sample_sum.unwrap_or(0.0)),
        schema: h.schema.unwrap_or(0),
        zero_threshold: h.zero_threshold.unwrap_or(0.0),
        negative_spans: spans(&h.negative_span),
        positive_spans: spans(&h.positive_span),
        reset_hint: if gauge {
            ResetHint::Gauge.to_wire()
        } else {
            ResetHint::Unknown.to_wire()
        },
        ..RawHistogram::default()
    };
    if float {
        raw.count = Some(WireCount::Float(h.sample_count_float.unwrap_or(0.0)));
        raw.zero_count = Some(WireCount::Float(h.zero_count_float.unwrap_or(0.0)));
        raw.negative_counts = h.negative_count.clone();
        raw.positive_counts = h.positive_count.clone();
    } else {
        raw.count = Some(WireCount::Int(h.sample_count.unwrap_or(0)));
        raw.zero_count = Some(WireCount::Int(h.zero_count.unwrap_or(0)));
        raw.negative_deltas = h.negative_delta.clone();
        raw.positive_deltas = h.positive_delta.clone();
    }
    raw
}

/// Does the histogram carry any field of a native histogram?
fn has_native_buckets(h: &client::Histogram) -> bool {
    h.schema.is_some()
        || h.zero_threshold.is_some()
        || h.zero_count.is_some()
        || h.zero_count_float.is_some()
        || !h.negative_span.is_empty()
        || !h.negative_delta.is_empty()
        || !h.negative_count.is_empty()
        || !h.positive_span.is_empty()
        || !h.positive_delta.is_empty()
        || !h.positive_count.is_empty()
}

/// The metric's labels, checked as the Pushgateway's consistency check does
/// (names valid and distinct, not `__name__`, no `quantile` on a summary
/// metric), and, a deliberate difference, no `le` on a histogram metric.
fn labels(label: Vec<client::LabelPair>, t: ProtoType) -> Result<Labels<'static>, String> {
    // Scanning for duplicates is quadratic: hash the names of a long list.
    let mut names: HashSet<&str, RandomState> = HashSet::default();
    for (i, lp) in label.iter().enumerate() {
        let name = lp.name.as_deref().unwrap_or_default();
        if !is_legacy_label_name(name) {
            return Err(format!(
                "invalid label name {name:?}: names must match [a-zA-Z_][a-zA-Z0-9_]* (UTF-8 names are not supported)"
            ));
        }
        let twice = if label.len() <= 16 {
            label[..i].iter().any(|l| l.name.as_deref() == Some(name))
        } else {
            !names.insert(name)
        };
        if twice {
            return Err(format!("label {name:?} is given twice in one metric"));
        }
        if name == "__name__" {
            return Err("label name \"__name__\" is reserved".to_string());
        }
        if t == ProtoType::Summary && name == "quantile" {
            return Err(
                "a summary metric must not have an explicit \"quantile\" label".to_string(),
            );
        }
        if matches!(t, ProtoType::Histogram | ProtoType::GaugeHistogram) && name == "le" {
            return Err("a histogram metric must not have an explicit \"le\" label".to_string());
        }
    }
    Ok(Labels::from_pairs(label.iter().map(|lp| {
        (
            lp.name.as_deref().unwrap_or_default(),
            lp.value.as_deref().unwrap_or_default(),
        )
    })))
}

#[cfg(test)]
mod tests {
    //! The Pushgateway 1.5.1's answer to each body is in its case's comment;
    //! `tests/push_parser.rs` pushes protobuf bodies to the real one.

    use super::*;
    use crate::proto::client::{
        Bucket, BucketSpan, Counter, Gauge, Histogram, LabelPair, Metric, Quantile, Summary,
    };

    fn delimited(families: &[client::MetricFamily]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in families {
            f.encode_length_delimited(&mut out).unwrap();
        }
        out
    }

    fn family(name: &str, t: ProtoType, metric: Vec<Metric>) -> client::MetricFamily {
        client::MetricFamily {
            name: Some(name.to_string()),
            help: None,
            r#type: Some(t as i32),
            metric,
            unit: None,
        }
    }

    fn gauge(labels: &[(&str, &str)], v: f64) -> Metric {
        Metric {
            label: labels
                .iter()
                .map(|(n, v)| LabelPair {
                    name: Some(n.to_string()),
                    value: Some(v.to_string()),
                })
                .collect(),
            gauge: Some(Gauge { value: Some(v) }),
            ..Default::default()
        }
    }

    /// The samples as `name{labels} value` lines.
    fn lines(families: &[ParsedFamily]) -> Vec<String> {
        families
            .iter()
            .flat_map(|f| &f.samples)
            .map(|s| {
                let labels: Vec<_> = s.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                format!("{}{{{}}} {}", s.name, labels.join(","), s.value)
            })
            .collect()
    }

    #[track_caller]
    fn refused(body: &[u8], want: &str) {
        match parse_delimited(body) {
            Err(Error::MetricFamily(e)) => assert!(e.contains(want), "{e:?} lacks {want:?}"),
            other => panic!("expected an error with {want:?}, got {other:?}"),
        }
    }

    #[test]
    fn gauges_counters_untyped() {
        let body = delimited(&[
            client::MetricFamily {
                help: Some("Help.".into()),
                ..family(
                    "g",
                    ProtoType::Gauge,
                    vec![gauge(&[("b", "x"), ("a", "y")], 1.5)],
                )
            },
            family(
                "c",
                ProtoType::Counter,
                vec![Metric {
                    counter: Some(Counter::default()),
                    ..Default::default()
                }],
            ),
        ]);
        let parsed = parse_delimited(&body).unwrap();
        assert_eq!(lines(&parsed), ["g{b=\"x\",a=\"y\"} 1.5", "c{} 0"]);
        assert_eq!(parsed[0].help.as_deref(), Some("Help."));
        assert_eq!(parsed[0].metric_type, MetricType::Gauge);
        assert_eq!(parsed[1].metric_type, MetricType::Counter);
        assert_eq!(parse_delimited(b"").unwrap(), []);
    }

    #[test]
    fn summaries_flatten_like_the_text_format() {
        let m = Metric {
            summary: Some(Summary {
                sample_count: Some(7),
                sample_sum: Some(3.5),
                quantile: vec![
                    Quantile {
                        quantile: Some(0.5),
                        value: Some(1.25),
                    },
                    Quantile {
                        quantile: Some(1e-5),
                        value: Some(2.0),
                    },
                ],
                created_timestamp: None,
            }),
            ..gauge(&[("a", "b")], 0.0)
        };
        let body = delimited(&[family("s", ProtoType::Summary, vec![m])]);
        assert_eq!(
            lines(&parse_delimited(&body).unwrap()),
            [
                "s{a=\"b\",quantile=\"0.5\"} 1.25",
                "s{a=\"b\",quantile=\"1e-05\"} 2",
                "s_sum{a=\"b\"} 3.5",
                "s_count{a=\"b\"} 7",
            ]
        );
        // 400 there too: "must not have an explicit quantile label".
        let m = Metric {
            summary: Some(Summary::default()),
            ..gauge(&[("quantile", "0.5")], 0.0)
        };
        refused(
            &delimited(&[family("s", ProtoType::Summary, vec![m])]),
            "explicit \"quantile\" label",
        );
    }

    #[test]
    fn histograms_flatten_like_the_text_format() {
        let bucket = |ub: f64, c: u64| Bucket {
            cumulative_count: Some(c),
            upper_bound: Some(ub),
            ..Default::default()
        };
        let h = Histogram {
            sample_count: Some(10),
            sample_sum: Some(12.5),
            bucket: vec![bucket(0.1, 2), bucket(1.0, 5), bucket(1e6, 7)],
            ..Default::default()
        };
        let m = Metric {
            histogram: Some(h.clone()),
            ..gauge(&[], 0.0)
        };
        let body = delimited(&[family("h", ProtoType::Histogram, vec![m])]);
        // The Pushgateway showed exactly these, the +Inf bucket added.
        assert_eq!(
            lines(&parse_delimited(&body).unwrap()),
            [
                "h_bucket{le=\"0.1\"} 2",
                "h_bucket{le=\"1\"} 5",
                "h_bucket{le=\"1e+06\"} 7",
                "h_bucket{le=\"+Inf\"} 10",
                "h_sum{} 12.5",
                "h_count{} 10",
            ]
        );
        // A +Inf bucket sent is not added again; float counts win when > 0.
        let h2 = Histogram {
            sample_count_float: Some(3.5),
            bucket: vec![Bucket {
                cumulative_count_float: Some(2.5),
                ..bucket(f64::INFINITY, 9)
            }],
            ..Default::default()
        };
        let m = Metric {
            histogram: Some(h2),
            ..gauge(&[], 0.0)
        };
        let body = delimited(&[family("h", ProtoType::Histogram, vec![m])]);
        assert_eq!(
            lines(&parse_delimited(&body).unwrap()),
            ["h_bucket{le=\"+Inf\"} 2.5", "h_sum{} 0", "h_count{} 3.5"]
        );
        // Deliberate: an `le` label (the Pushgateway exposes two).
        let m = Metric {
            histogram: Some(h.clone()),
            ..gauge(&[("le", "1")], 0.0)
        };
        refused(
            &delimited(&[family("h", ProtoType::Histogram, vec![m])]),
            "explicit \"le\" label",
        );
    }

    /// A native histogram as client_golang sends one: schema 3, a zero
    /// bucket, negative and positive buckets as deltas.
    fn native() -> Histogram {
        let span = |offset, length| BucketSpan {
            offset: Some(offset),
            length: Some(length),
        };
        Histogram {
            sample_count: Some(9),
            sample_sum: Some(1.5),
            schema: Some(3),
            zero_threshold: Some(1e-128),
            zero_count: Some(1),
            negative_span: vec![span(-2, 1)],
            negative_delta: vec![2],
            positive_span: vec![span(0, 2), span(1, 1)],
            positive_delta: vec![3, -2, 1],
            ..Default::default()
        }
    }

    fn metric(h: Histogram, labels: &[(&str, &str)]) -> Metric {
        Metric {
            histogram: Some(h),
            gauge: None,
            ..gauge(labels, 0.0)
        }
    }

    #[test]
    fn native_histograms_are_kept_with_or_without_classic_buckets() {
        // Native only: one native histogram, no samples (the Pushgateway
        // 1.5.1 answers 200 and exposes the message as sent).
        let body = delimited(&[family(
            "h",
            ProtoType::Histogram,
            vec![metric(native(), &[("a", "b")])],
        )]);
        let parsed = parse_delimited(&body).unwrap();
        assert!(parsed[0].samples.is_empty());
        let n = &parsed[0].natives[..];
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].labels.as_text(), "a=\"b\"");
        assert_eq!(n[0].timestamp_ms, None);
        let raw = &n[0].raw;
        assert_eq!(
            (raw.schema, raw.zero_threshold, raw.sum, raw.reset_hint),
            (3, 1e-128, 1.5, 0)
        );
        assert_eq!(raw.count, Some(WireCount::Int(9)));
        assert_eq!(raw.zero_count, Some(WireCount::Int(1)));
        assert_eq!(raw.negative_deltas, [2]);
        assert_eq!(raw.positive_deltas, [3, -2, 1]);
        assert_eq!(
            raw.positive_spans,
            [
                Span {
                    offset: 0,
                    length: 2
                },
                Span {
                    offset: 1,
                    length: 1
                }
            ]
        );
        // With classic buckets too (client_golang sends both when both are
        // configured): the classic samples and the native histogram.
        let both = Histogram {
            bucket: vec![Bucket {
                cumulative_count: Some(4),
                upper_bound: Some(1.0),
                ..Default::default()
            }],
            ..native()
        };
        let body = delimited(&[family("h", ProtoType::Histogram, vec![metric(both, &[])])]);
        let parsed = parse_delimited(&body).unwrap();
        assert_eq!(
            lines(&parsed),
            [
                "h_bucket{le=\"1\"} 4",
                "h_bucket{le=\"+Inf\"} 9",
                "h_sum{} 1.5",
                "h_count{} 9"
            ]
        );
        assert_eq!(parsed[0].natives.len(), 1);
        // Float counts, as Prometheus' parser tells them: absolute counts.
        let float = Histogram {
            sample_count: None,
            sample_count_float: Some(2.5),
            zero_count: None,
            zero_count_float: Some(0.5),
            negative_span: vec![],
            negative_delta: vec![],
            positive_span: vec![BucketSpan {
                offset: Some(1),
                length: Some(1),
            }],
            positive_delta: vec![],
            positive_count: vec![2.0],
            ..native()
        };
        let body = delimited(&[family("h", ProtoType::Histogram, vec![metric(float, &[])])]);
        let raw = &parse_delimited(&body).unwrap()[0].natives[0].raw;
        assert_eq!(raw.count, Some(WireCount::Float(2.5)));
        assert_eq!(raw.zero_count, Some(WireCount::Float(0.5)));
        assert_eq!(raw.positive_counts, [2.0]);
        // A classic histogram without buckets is no native one.
        let body = delimited(&[family(
            "h",
            ProtoType::Histogram,
            vec![metric(Histogram::default(), &[])],
        )]);
        let parsed = parse_delimited(&body).unwrap();
        assert!(parsed[0].natives.is_empty());
        assert_eq!(
            lines(&parsed),
            ["h_bucket{le=\"+Inf\"} 0", "h_sum{} 0", "h_count{} 0"]
        );
    }

    #[test]
    fn gauge_histograms_are_taken_native_only() {
        // The Pushgateway answers 200 to each (and its text page then
        // stops at the family).
        let body = delimited(&[family(
            "g",
            ProtoType::GaugeHistogram,
            vec![metric(native(), &[])],
        )]);
        let parsed = parse_delimited(&body).unwrap();
        assert_eq!(parsed[0].metric_type, MetricType::GaugeHistogram);
        assert_eq!(
            parsed[0].natives[0].raw.reset_hint,
            ResetHint::Gauge.to_wire()
        );
        let both = Histogram {
            bucket: vec![Bucket {
                cumulative_count: Some(4),
                upper_bound: Some(1.0),
                ..Default::default()
            }],
            ..native()
        };
        for h in [both, Histogram::default()] {
            refused(
                &delimited(&[family("g", ProtoType::GaugeHistogram, vec![metric(h, &[])])]),
                "must carry native buckets and no classic ones",
            );
        }
        refused(
            &delimited(&[family(
                "g",
                ProtoType::GaugeHistogram,
                vec![metric(native(), &[("le", "1")])],
            )]),
            "explicit \"le\" label",
        );
    }

    #[test]
    fn native_histograms_are_checked() {
        use super::super::{PushRule, check_push};
        let rule = |body: &[u8]| match check_push(&parse_delimited(body).unwrap()) {
            Err(Error::InvalidPush { rule, detail }) => Some((rule, detail)),
            Ok(()) => None,
            Err(e) => panic!("{e}"),
        };
        let one =
            |h: Histogram| delimited(&[family("h", ProtoType::Histogram, vec![metric(h, &[])])]);
        assert_eq!(rule(&one(native())), None);
        // Spans that do not match the deltas; a negative bucket count.
        let (r, detail) = rule(&one(Histogram {
            positive_delta: vec![3, -2],
            ..native()
        }))
        .unwrap();
        assert_eq!(r, PushRule::InvalidNativeHistogram);
        assert!(
            detail.starts_with("native histogram h refused: "),
            "{detail}"
        );
        assert!(!detail.contains('\n'));
        let (r, _) = rule(&one(Histogram {
            positive_delta: vec![3, -4, 1],
            ..native()
        }))
        .unwrap();
        assert_eq!(r, PushRule::InvalidNativeHistogram);
        // Two metrics of one label set, grouping labels aside.
        let body = delimited(&[family(
            "h",
            ProtoType::Histogram,
            vec![metric(native(), &[("job", "x")]), metric(native(), &[])],
        )]);
        assert_eq!(rule(&body).unwrap().0, PushRule::DuplicateSeries);
        // A timestamp, as for any pushed metric.
        let body = delimited(&[family(
            "h",
            ProtoType::Histogram,
            vec![Metric {
                timestamp_ms: Some(5),
                ..metric(native(), &[])
            }],
        )]);
        assert_eq!(rule(&body).unwrap().0, PushRule::Timestamp);
        // A family named like its classic form's series.
        let body = delimited(&[
            family("h", ProtoType::GaugeHistogram, vec![metric(native(), &[])]),
            family("h_count", ProtoType::Gauge, vec![gauge(&[], 1.0)]),
        ]);
        assert_eq!(rule(&body).unwrap().0, PushRule::SuffixCollision);
    }

    #[test]
    fn native_histograms_are_lowered_as_remote_written_ones() {
        use super::super::{Grouping, PushRule, lower};
        use crate::ingest::{Rules, TimeRange};
        use crate::model::SeriesLimits;
        let rules = |max_histogram_buckets| Rules {
            series: SeriesLimits {
                max_labels: 30,
                max_name_len: 256,
                max_value_len: 4096,
                max_help_len: 4096,
                max_histogram_buckets,
            },
            timestamps: TimeRange::new(0, None),
        };
        let grouping = Grouping::new("j".into(), vec![]).unwrap();
        let both = Histogram {
            bucket: vec![Bucket {
                cumulative_count: Some(4),
                upper_bound: Some(1.0),
                ..Default::default()
            }],
            ..native()
        };
        let body = delimited(&[family(
            "h",
            ProtoType::Histogram,
            vec![metric(native(), &[("a", "x")]), metric(both, &[("a", "y")])],
        )]);
        let families = parse_delimited(&body).unwrap();
        let pushed = lower(&families, &grouping, &rules(0), 7).unwrap();
        let b = &pushed.batch;
        let keys: Vec<(&str, bool)> = b
            .series
            .iter()
            .map(|u| (b.key(u), b.histogram(u).is_some()))
            .collect();
        // The classic samples of the second metric, then both natives.
        assert_eq!(
            keys,
            [
                ("h_bucket{a=\"y\",instance=\"\",job=\"j\",le=\"1\"}", false),
                (
                    "h_bucket{a=\"y\",instance=\"\",job=\"j\",le=\"+Inf\"}",
                    false
                ),
                ("h_sum{a=\"y\",instance=\"\",job=\"j\"}", false),
                ("h_count{a=\"y\",instance=\"\",job=\"j\"}", false),
                ("h{a=\"x\",instance=\"\",job=\"j\"}", true),
                ("h{a=\"y\",instance=\"\",job=\"j\"}", true),
            ]
        );
        let native_update = &b.series[4];
        assert!(native_update.key.traits.pushed());
        assert_eq!(native_update.latest.value, 9.0);
        let h = b.histogram(native_update).unwrap().latest.as_ref().unwrap();
        assert_eq!(
            (h.schema(), h.count(), h.sum(), h.bucket_count()),
            (3, 9.0, 1.5, 4)
        );
        assert_eq!(pushed.families[0].series, 0..6);
        // Over --limits.native-histogram-buckets: a lower resolution, the
        // count kept; refused when even the lowest holds too many.
        let one = |h: Histogram| {
            parse_delimited(&delimited(&[family(
                "h",
                ProtoType::Histogram,
                vec![metric(h, &[])],
            )]))
            .unwrap()
        };
        let reduced = lower(&one(native()), &grouping, &rules(3), 7).unwrap();
        let h = reduced.batch.histograms[0].latest.as_ref().unwrap();
        assert!(h.bucket_count() <= 3 && h.schema() < 3, "{h:?}");
        assert_eq!(h.count(), 9.0);
        let wide = Histogram {
            sample_count: Some(1 + 3),
            zero_count: Some(0),
            negative_span: vec![],
            negative_delta: vec![],
            schema: Some(-4),
            positive_span: vec![
                BucketSpan {
                    offset: Some(-5),
                    length: Some(1),
                },
                BucketSpan {
                    offset: Some(15),
                    length: Some(1),
                },
            ],
            positive_delta: vec![1, 2],
            ..native()
        };
        match lower(&one(wide), &grouping, &rules(1), 7) {
            Err(Error::InvalidPush {
                rule: PushRule::OverLimit,
                detail,
            }) => assert!(
                detail.contains("--limits.native-histogram-buckets 1"),
                "{detail}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn framing_is_bounded_by_the_body() {
        let one = delimited(&[family("a", ProtoType::Gauge, vec![gauge(&[], 1.0)])]);
        // 400 there: "invalid varint32 encountered".
        refused(b"\xff\xff\xff\xff\xff\x01", "invalid varint32");
        // 400 there: "unexpected EOF".
        refused(
            &[&one[..], b"\x05ab"].concat(),
            "declares 5 bytes but only 2 remain",
        );
        // 200 there (Go takes these as the end of the stream); refused here.
        refused(
            &[&one[..], b"\x05"].concat(),
            "declares 5 bytes but only 0 remain",
        );
        refused(
            &[&one[..], b"\x85"].concat(),
            "ends inside the length prefix",
        );
        // A declared length of 4 GiB allocates nothing.
        refused(b"\xff\xff\xff\xff\x0f", "declares 4294967295 bytes");
        // An empty message is an empty family, dropped (200 there).
        assert_eq!(parse_delimited(b"\x00\x00").unwrap(), []);
        // 400 there too: a malformed message.
        refused(b"\x02\x0a\x05", "message 1");
        // Deliberate: a string that is not UTF-8 (Go keeps a HELP as bytes).
        let mut bad = family("a", ProtoType::Gauge, vec![gauge(&[], 1.0)]).encode_to_vec();
        bad.extend_from_slice(b"\x12\x01\xff");
        let mut body = Vec::new();
        prost::encoding::encode_varint(bad.len() as u64, &mut body);
        body.extend_from_slice(&bad);
        refused(&body, "message 1");
    }

    #[test]
    fn families_and_types() {
        let g = || vec![gauge(&[], 1.0)];
        // 400 there: a family without a type is a counter.
        let mut untyped = family("a", ProtoType::Gauge, g());
        untyped.r#type = None;
        refused(&delimited(&[untyped]), "has no counter value");
        // Deliberate: unknown types break Go's page. A gauge histogram
        // needs its histogram value, as a histogram does.
        let mut unknown = family("a", ProtoType::Gauge, g());
        unknown.r#type = Some(9);
        refused(&delimited(&[unknown]), "unknown metric type 9");
        refused(
            &delimited(&[family("a", ProtoType::GaugeHistogram, g())]),
            "has no gauge_histogram value",
        );
        // Deliberate: Go keeps only the last family of a name.
        refused(
            &delimited(&[
                family("a", ProtoType::Gauge, g()),
                family("a", ProtoType::Gauge, g()),
            ]),
            "sent twice",
        );
        assert_eq!(
            parse_delimited(&delimited(&[
                family("a", ProtoType::Gauge, vec![]),
                family("b", ProtoType::Gauge, g()),
            ]))
            .unwrap()
            .len(),
            1
        );
        // Deliberate: names outside the legacy set (Go exposes `a b` as is).
        for name in ["a b", "", "a.b", "1a"] {
            refused(
                &delimited(&[family(name, ProtoType::Gauge, g())]),
                "invalid metric name",
            );
        }
        // The value a type names must be there (400 there: "is not a gauge").
        let counter_only = Metric {
            counter: Some(Counter::default()),
            ..Default::default()
        };
        refused(
            &delimited(&[family("a", ProtoType::Gauge, vec![counter_only])]),
            "has no gauge value",
        );
        // Other values beside it are ignored, as Go's encoder ignores them.
        let both = Metric {
            counter: Some(Counter {
                value: Some(2.0),
                ..Default::default()
            }),
            ..gauge(&[], 1.0)
        };
        assert_eq!(
            lines(
                &parse_delimited(&delimited(&[family("a", ProtoType::Gauge, vec![both])])).unwrap()
            ),
            ["a{} 1"]
        );
    }

    #[test]
    fn labels_are_checked() {
        let one = |labels: &[(&str, &str)]| {
            delimited(&[family("a", ProtoType::Gauge, vec![gauge(labels, 1.0)])])
        };
        // 400 there for each.
        refused(&one(&[("", "x")]), "invalid label name \"\"");
        refused(&one(&[("a.b", "x")]), "invalid label name \"a.b\"");
        refused(&one(&[("x", "1"), ("x", "2")]), "given twice");
        // Long label lists are checked in linear time, duplicates found.
        let many: Vec<(String, String)> = (0..20_000)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            parse_delimited(&one(&refs)).unwrap()[0].samples[0]
                .labels
                .len(),
            20_000
        );
        let mut twice = refs.clone();
        twice.push(("l7", "x"));
        refused(&one(&twice), "given twice");
        // `__name__` is the metric name's; other `__` names parse, and
        // check_push refuses them (400 there for both).
        refused(&one(&[("__name__", "b")]), "is reserved");
        assert!(parse_delimited(&one(&[("__x", "1")])).is_ok());
    }

    #[test]
    fn timestamps_reach_every_sample() {
        let m = Metric {
            summary: Some(Summary::default()),
            timestamp_ms: Some(5),
            ..Default::default()
        };
        let parsed =
            parse_delimited(&delimited(&[family("s", ProtoType::Summary, vec![m])])).unwrap();
        assert!(parsed[0].samples.iter().all(|s| s.timestamp_ms == Some(5)));
        assert!(matches!(
            super::super::check_push(&parsed),
            Err(Error::InvalidPush {
                rule: super::super::PushRule::Timestamp,
                ..
            })
        ));
    }
}
