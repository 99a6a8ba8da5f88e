//! What the typed pages (OpenMetrics, protobuf) share: a histogram's or
//! summary's series gathered in memory and checked as MetricPoints, the
//! page names of a family exposed name by name, and exemplar labels escaped
//! for the page.
//!
//! A classic histogram (summary) family is typed on those pages only when
//! every label set is a whole MetricPoint (OpenMetrics 1.0, "Histogram" and
//! "Summary"): its samples together, buckets in increasing `le` ending in
//! `le="+Inf"`, integral and non-decreasing, `_count` equal to the `+Inf`
//! bucket, `_count` and `_sum` together, one timestamp (quantiles in 0..=1,
//! non-negative). Otherwise each of its metric names is exposed on its own,
//! untyped, with `le` (`quantile`) kept as a label: no sample is lost.

use std::borrow::Cow;
use std::io;

use super::escaping::{self, Escaping};
use super::family::Family;
use super::{HistogramForm, Line, Sink, Visited, visit_family};
use crate::model::{Sample, split_key};
use crate::store::ExemplarRef;

/// A series line gathered from the store.
pub(super) struct Gathered {
    /// The series as the page names it (see [`Line::prefix`]).
    pub prefix: Vec<u8>,
    /// The store's canonical key.
    pub key: Box<str>,
    /// Which of the family's members it is.
    pub member: usize,
    /// What a native histogram's classic form added to the member's name.
    pub suffix: &'static str,
    pub sample: Sample,
    pub pushed: bool,
    pub exemplar: Option<(Box<str>, f64, Option<i64>)>,
}

impl Gathered {
    /// The line's metric name on the page.
    pub fn name(&self, family: &Family) -> String {
        format!("{}{}", family.members[self.member].name, self.suffix)
    }

    pub fn exemplar(&self) -> Option<ExemplarRef<'_>> {
        self.exemplar
            .as_ref()
            .map(|(labels, value, ts)| ExemplarRef {
                labels,
                value: *value,
                timestamp_ms: *ts,
            })
    }
}

/// Every series of `family` on a page escaped by `scheme`, in memory (a
/// histogram's or summary's MetricPoints must be checked, and their samples
/// put together), native histograms in `form`; what the walk left off or
/// rewrote goes into `visited`.
pub(super) fn gather(
    family: &Family,
    scheme: Escaping,
    form: HistogramForm,
    visited: &mut Visited,
) -> Vec<Gathered> {
    let mut sink = GatheredLines(Vec::new());
    // The sink never fails.
    let _ = visit_family(family, scheme, form, visited, &mut sink);
    sink.0
}

/// Every line of a family, collected.
struct GatheredLines(Vec<Gathered>);

impl Sink for GatheredLines {
    fn series(&mut self, line: Line<'_>) {
        self.0.push(Gathered {
            prefix: line.prefix.to_vec(),
            key: String::from_utf8_lossy(line.key).into(),
            member: line.member,
            suffix: line.suffix,
            sample: line.sample,
            pushed: line.traits.pushed(),
            exemplar: line
                .exemplar
                .map(|e| (e.labels.into(), e.value, e.timestamp_ms)),
        });
    }

    fn part_end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A line's place in its MetricPoint: which kind of sample, and its bound.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub(super) enum Part {
    /// A bucket (its `le`), or a quantile (its `quantile`).
    Bound(f64),
    Count,
    Sum,
}

/// One MetricPoint: its lines (indexes into the gathered lines), buckets
/// or quantiles first in increasing bound, then `_count`, then `_sum`.
pub(super) type Point = Vec<(Part, usize)>;

/// The valid MetricPoints `lines` make for a histogram (`histogram`) or
/// summary family, sorted by their label set (the bound left out), or
/// `None` if some label set cannot be one (the family is then exposed name
/// by name, untyped).
pub(super) fn points(family: &Family, lines: &[Gathered], histogram: bool) -> Option<Vec<Point>> {
    let bound_label = if histogram { "le" } else { "quantile" };
    // (label set without the bound, part, line) for every line.
    let mut keyed: Vec<(String, Part, usize)> = Vec::with_capacity(lines.len());
    for (i, g) in lines.iter().enumerate() {
        let name = g.name(family);
        let suffix = name.strip_prefix(&*family.name).unwrap_or("?");
        let (group, bound) = label_group(&g.key, bound_label)?;
        let part = match (suffix, histogram) {
            ("_bucket", true) => {
                let le = bound?;
                let v = crate::model::parse_go_float_str(le)?;
                // The one bound the parser holds to its canonical form.
                if v == f64::INFINITY && le != "+Inf" {
                    return None;
                }
                Part::Bound(v)
            }
            ("", false) => {
                let q = crate::model::parse_go_float_str(bound?)?;
                if !(0.0..=1.0).contains(&q) {
                    return None;
                }
                Part::Bound(q)
            }
            ("_count", _) if bound.is_none() => Part::Count,
            ("_sum", _) if bound.is_none() => Part::Sum,
            _ => return None,
        };
        keyed.push((group, part, i));
    }
    keyed.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
    });
    let mut out = Vec::new();
    for point in keyed.chunk_by(|a, b| a.0 == b.0) {
        if !valid_point(point, lines, histogram) {
            return None;
        }
        out.push(point.iter().map(|&(_, part, i)| (part, i)).collect());
    }
    Some(out)
}

/// The labels of canonical key `key` but `bound_label` (`le`, `quantile`),
/// as one string: lines with the same one belong to one MetricPoint
/// (OpenMetrics 1.0, "MetricPoint"); and the value of `bound_label`, if
/// the key has it. `None` if `key` is no canonical key.
pub(super) fn label_group<'k>(
    key: &'k str,
    bound_label: &str,
) -> Option<(String, Option<&'k str>)> {
    let (_, labels) = split_key(key)?;
    let mut group = String::new();
    let mut bound = None;
    for (name, value) in labels {
        if !name.quoted && name.text == bound_label {
            bound = Some(value);
        } else {
            group.push_str(name.text);
            group.push('\u{0}');
            group.push_str(value);
            group.push('\u{0}');
        }
    }
    Some((group, bound))
}

/// Is one label set's lines (sorted by part) a valid MetricPoint?
fn valid_point(point: &[(String, Part, usize)], lines: &[Gathered], histogram: bool) -> bool {
    let first = &lines[point[0].2];
    let same_time = point.iter().all(|p| {
        let g = &lines[p.2];
        g.pushed == first.pushed && (g.pushed || g.sample.timestamp_ms == first.sample.timestamp_ms)
    });
    if !same_time {
        return false;
    }
    let integral = |v: f64| v.is_finite() && v >= 0.0 && v.fract() == 0.0;
    let (mut count, mut sum) = (None, None);
    let (mut last_bound, mut last_value, mut negative_bound) = (None::<f64>, 0.0, false);
    for &(_, part, i) in point {
        let v = lines[i].sample.value;
        match part {
            Part::Bound(b) => {
                if last_bound.is_some_and(|l| b <= l) {
                    return false;
                }
                if histogram {
                    if !integral(v) || v < last_value {
                        return false;
                    }
                    negative_bound |= b < 0.0;
                    last_value = v;
                } else if v < 0.0 {
                    return false;
                }
                last_bound = Some(b);
            }
            Part::Count => {
                if !integral(v) {
                    return false;
                }
                count = Some(v);
            }
            Part::Sum => {
                // Counter-like: neither NaN nor negative.
                if v.is_nan() || v < 0.0 {
                    return false;
                }
                sum = Some(v);
            }
        }
    }
    if count.is_some() != sum.is_some() {
        return false;
    }
    if histogram {
        if last_bound != Some(f64::INFINITY) {
            return false;
        }
        if count.is_some_and(|c| c != last_value) || (negative_bound && sum.is_some()) {
            return false;
        }
    }
    true
}

/// A family's lines exposed name by name: for each name on the page (the
/// family's members escaping to one name are one, and a native
/// histogram's `x_count` lines join a member `x_count`), whether it is the
/// family's own name (which keeps the HELP and UNIT), and its lines in the
/// order gathered. Names without lines are left out.
pub(super) fn by_page_name(
    family: &Family,
    lines: Vec<Gathered>,
) -> Vec<(Box<str>, bool, Vec<Gathered>)> {
    let mut by_name: std::collections::BTreeMap<String, Vec<Gathered>> = Default::default();
    for g in lines {
        by_name.entry(g.name(family)).or_default().push(g);
    }
    by_name
        .into_iter()
        .map(|(name, lines)| {
            let own = name == *family.name;
            (name.into(), own, lines)
        })
        .collect()
}

/// Does the family name `name` end in `_<unit>` (OpenMetrics' rule for
/// `# UNIT`), with a unit the text syntax can carry?
pub(super) fn unit_fits(name: &str, unit: &str) -> bool {
    name.len() > unit.len()
        && name.ends_with(unit)
        && name.as_bytes()[name.len() - unit.len() - 1] == b'_'
        && !unit.contains(['\n', ' ', '"', '\\'])
}

/// An exemplar's label text (as [`ExemplarRef::labels`] holds it) with its
/// names escaped for a page escaped by `scheme`; `None` when escaping makes
/// them break a rule (two names alike, a `__` name) or over the 128
/// characters of names and values OpenMetrics 1.0 allows.
pub(super) fn exemplar_labels(labels: &str, scheme: Escaping) -> Option<Cow<'_, str>> {
    if scheme == Escaping::AllowUtf8 || !has_quoted_name(labels) {
        return Some(labels.into());
    }
    // The key writer's escaping, on a key of these labels.
    let key = format!("x{{{labels}}}");
    let mut rewritten = Vec::new();
    escaping::write_key(&mut rewritten, &key, scheme).ok()?;
    let inner = String::from_utf8(rewritten[2..rewritten.len() - 1].to_vec()).ok()?;
    if label_chars(&inner) > crate::model::EXEMPLAR_MAX_LABEL_CHARS {
        return None;
    }
    Some(inner.into())
}

/// Does an exemplar's label text hold a quoted (non-legacy) label name?
fn has_quoted_name(labels: &str) -> bool {
    let key = format!("x{{{labels}}}");
    split_key(&key).is_some_and(|(_, mut l)| l.any(|(name, _)| name.quoted))
}

/// Characters of label names and values in `name="value",…` text, values
/// unescaped (OpenMetrics' 128-character rule counts those).
fn label_chars(text: &str) -> usize {
    let key = format!("x{{{text}}}");
    split_key(&key).map_or(usize::MAX, |(_, labels)| {
        labels
            .map(|(n, v)| n.chars().count() + crate::model::unescape_value(v).chars().count())
            .sum()
    })
}
