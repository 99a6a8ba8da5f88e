//! Store → Prometheus text format 0.0.4, written into a sink chunk by chunk.
//!
//! The page is planned once per scrape from the metric names and metadata
//! (a few thousand entries at most), then each family is written shard by
//! shard: a shard's read lock is held only while its series are copied into
//! the buffer, and full chunks are handed to the sink between shards, never
//! under a lock.
//!
//! Family rules (so that any accepted input parses with `promtool`):
//! - `x_bucket`, `x_sum`, `x_count` join family `x` when `x` is a histogram;
//!   `x`, `x_sum`, `x_count` join it when `x` is a summary. Every other name is
//!   its own family.
//! - A counter pushed with the OpenMetrics family name `x` describes `x_total`.
//! - A histogram (summary) family with an `le` (`quantile`) value the parser
//!   cannot read is exposed without its TYPE line, which makes it untyped.
//! - Families are sorted by name; each appears once, HELP and TYPE first.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Metadata, MetricType};
use crate::store::{Metric, SHARDS, Store};

/// Whether exposed samples carry the timestamps they were pushed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampPolicy {
    /// Each sample carries its pushed timestamp (milliseconds).
    #[default]
    Original,
    /// No timestamps: the scraper stamps samples with its scrape time.
    None,
}

/// How a page is rendered.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    /// Timestamp policy.
    pub timestamps: TimestampPolicy,
    /// A chunk is handed to the sink once the buffer holds this many bytes.
    pub chunk_bytes: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            timestamps: TimestampPolicy::Original,
            chunk_bytes: 64 * 1024,
        }
    }
}

/// The content type of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct FamilyPlan {
    help: Option<String>,
    type_name: Option<&'static str>,
    members: Vec<(Box<str>, Arc<Metric>)>,
}

/// The family a metric name belongs to, given the pushed metadata.
fn family_of<'a>(name: &'a str, metadata: &impl Fn(&str) -> Option<Metadata>) -> &'a str {
    for (suffix, histogram, summary) in [
        ("_bucket", true, false),
        ("_sum", true, true),
        ("_count", true, true),
    ] {
        if let Some(base) = name.strip_suffix(suffix).filter(|b| !b.is_empty()) {
            match metadata(base).map(|m| m.metric_type) {
                Some(MetricType::Histogram) if histogram => return base,
                Some(MetricType::Summary) if summary => return base,
                _ => {}
            }
        }
    }
    name
}

/// The metadata describing family `family`.
fn family_metadata(family: &str, metadata: &impl Fn(&str) -> Option<Metadata>) -> Option<Metadata> {
    metadata(family).or_else(|| {
        let base = family.strip_suffix("_total")?;
        metadata(base).filter(|m| m.metric_type == MetricType::Counter)
    })
}

fn plan(store: &Store) -> BTreeMap<Box<str>, FamilyPlan> {
    let metadata = |n: &str| store.metadata(n);
    let mut families: BTreeMap<Box<str>, FamilyPlan> = BTreeMap::new();
    for (name, metric) in store.metric_names() {
        let family = family_of(&name, &metadata);
        families
            .entry(family.into())
            .or_insert_with(|| FamilyPlan {
                help: None,
                type_name: None,
                members: Vec::new(),
            })
            .members
            .push((name, metric));
    }
    for (family, plan) in families.iter_mut() {
        plan.members.sort_by(|a, b| a.0.cmp(&b.0));
        let Some(md) = family_metadata(family, &metadata) else {
            continue;
        };
        let parsable = match md.metric_type {
            MetricType::Histogram => !plan.members.iter().any(|(_, m)| m.has_bad_le()),
            MetricType::Summary => !plan.members.iter().any(|(_, m)| m.has_bad_quantile()),
            _ => true,
        };
        plan.type_name = md.metric_type.text_format_name().filter(|_| parsable);
        plan.help = Some(md.help).filter(|h| !h.is_empty());
    }
    families
}

/// Appends `v` as the text format writes floats: shortest round-trip digits,
/// `NaN`, `+Inf`, `-Inf`.
pub fn write_float(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        let mut fmt = ryu::Buffer::new();
        let s = fmt.format_finite(v);
        // ryu writes integral values as "1.0"; Prometheus writes "1".
        buf.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
    }
}

fn write_help(buf: &mut Vec<u8>, family: &str, help: &str) {
    buf.extend_from_slice(b"# HELP ");
    buf.extend_from_slice(family.as_bytes());
    buf.push(b' ');
    for &c in help.as_bytes() {
        match c {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            _ => buf.push(c),
        }
    }
    buf.push(b'\n');
}

/// Renders every live series into chunks of about `opts.chunk_bytes`, each
/// handed to `emit`. Stops early (returning `false`) when `emit` returns
/// `false`, e.g. because the client went away.
pub fn render(store: &Store, opts: &RenderOptions, mut emit: impl FnMut(Vec<u8>) -> bool) -> bool {
    let mut buf = Vec::with_capacity(opts.chunk_bytes + 4096);
    let mut ts = itoa::Buffer::new();
    for (family, plan) in plan(store) {
        if let Some(help) = &plan.help {
            write_help(&mut buf, &family, help);
        }
        if let Some(t) = plan.type_name {
            buf.extend_from_slice(b"# TYPE ");
            buf.extend_from_slice(family.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(t.as_bytes());
            buf.push(b'\n');
        }
        for (_, metric) in &plan.members {
            for shard in 0..SHARDS {
                metric.for_each_in_shard(shard, |key, value, timestamp_ms| {
                    buf.extend_from_slice(key);
                    buf.push(b' ');
                    write_float(&mut buf, value);
                    if opts.timestamps == TimestampPolicy::Original {
                        buf.push(b' ');
                        buf.extend_from_slice(ts.format(timestamp_ms).as_bytes());
                    }
                    buf.push(b'\n');
                });
                if buf.len() >= opts.chunk_bytes {
                    let full =
                        std::mem::replace(&mut buf, Vec::with_capacity(opts.chunk_bytes + 4096));
                    if !emit(full) {
                        return false;
                    }
                }
            }
        }
    }
    buf.is_empty() || emit(buf)
}

/// Renders the whole page into one buffer (for tests and small stores).
pub fn render_to_vec(store: &Store, opts: &RenderOptions) -> Vec<u8> {
    let mut page = Vec::new();
    render(store, opts, |chunk| {
        page.extend_from_slice(&chunk);
        true
    });
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_in_go_syntax() {
        let cases = [
            (1.0, "1"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (1e21, "1e21"),
            (123456.0, "123456"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (v, want) in cases {
            let mut b = Vec::new();
            write_float(&mut b, v);
            assert_eq!(std::str::from_utf8(&b).unwrap(), want);
            if v.is_finite() {
                assert_eq!(want.parse::<f64>().unwrap().to_bits(), v.to_bits());
            }
        }
    }

    #[test]
    fn families_join_only_when_metadata_says_so() {
        let md = |n: &str| match n {
            "h" => Some(Metadata {
                metric_type: MetricType::Histogram,
                ..Default::default()
            }),
            "s" => Some(Metadata {
                metric_type: MetricType::Summary,
                ..Default::default()
            }),
            _ => None,
        };
        assert_eq!(family_of("h_bucket", &md), "h");
        assert_eq!(family_of("h_count", &md), "h");
        assert_eq!(family_of("s_sum", &md), "s");
        assert_eq!(family_of("s_bucket", &md), "s_bucket");
        assert_eq!(family_of("u_bucket", &md), "u_bucket");
        assert_eq!(family_of("_count", &md), "_count");
    }
}
