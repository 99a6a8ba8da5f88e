//! Planning a page: which metric names form which family, and the HELP and
//! TYPE each family is exposed with.
//!
//! Rules (so that any accepted input parses with `promtool`):
//! - `x_bucket`, `x_sum`, `x_count` join family `x` when `x` is a histogram;
//!   `x`, `x_sum`, `x_count` join it when `x` is a summary. Every other name is
//!   its own family.
//! - A counter pushed with the OpenMetrics family name `x` describes `x_total`.
//! - A histogram (summary) family with an `le` (`quantile`) value the parser
//!   cannot read is exposed without its TYPE line, which makes it untyped.
//! - Families are sorted by name; each appears once, HELP and TYPE first.

use std::collections::BTreeMap;

use crate::model::{Metadata, MetricType, SeriesTraits};
use crate::store::{MetricView, Store};

/// One family of the page.
pub(super) struct Family {
    /// The family name, as HELP and TYPE name it.
    pub name: Box<str>,
    /// The HELP text, unescaped, when pushed and non-empty.
    pub help: Option<String>,
    /// The TYPE word, when the family is typed.
    pub type_name: Option<&'static str>,
    /// The metric names of the family, sorted.
    pub members: Vec<MetricView>,
}

/// The family a metric name belongs to, given the pushed metadata.
pub(super) fn family_of<'a>(
    name: &'a str,
    metadata: &impl Fn(&str) -> Option<Metadata>,
) -> &'a str {
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

/// The families of the page, sorted by name: from the metric names (a few
/// thousand at most) and their metadata, never from the series.
pub(super) fn plan(store: &Store) -> Vec<Family> {
    let metadata = |n: &str| store.metadata(n);
    let mut families: BTreeMap<Box<str>, Vec<MetricView>> = BTreeMap::new();
    for metric in store.metrics() {
        let family = family_of(metric.name(), &metadata);
        families.entry(family.into()).or_default().push(metric);
    }
    families
        .into_iter()
        .map(|(name, mut members)| {
            members.sort_by(|a, b| a.name().cmp(b.name()));
            let md = family_metadata(&name, &metadata);
            let (help, type_name) = match md {
                None => (None, None),
                Some(md) => {
                    let parsable = match md.metric_type {
                        MetricType::Histogram => {
                            !members.iter().any(|m| m.any_with(SeriesTraits::BAD_LE))
                        }
                        MetricType::Summary => !members
                            .iter()
                            .any(|m| m.any_with(SeriesTraits::BAD_QUANTILE)),
                        _ => true,
                    };
                    (
                        Some(md.help).filter(|h| !h.is_empty()),
                        md.metric_type.text_format_name().filter(|_| parsable),
                    )
                }
            };
            Family {
                name,
                help,
                type_name,
                members,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
