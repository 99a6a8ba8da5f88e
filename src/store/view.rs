//! Reading the store without seeing its layout: a snapshot of the metric
//! names, and for each a cursor that visits its series one part at a time.
//!
//! A part is whatever one lock guards (today a shard). The cursor holds that
//! lock only while it hands the part's series to the caller's closure, so
//! the caller can write out between parts with no lock held: a slow scraper
//! stalls no writer, and a reader never holds two locks. The same cursor
//! serves the exposition and snapshots to disk (`persist`).

use std::sync::Arc;

use super::Store;
use super::entry::{Entry, Extras};
use super::table::{Metric, read};
use crate::model::{NativeHistogram, Sample, SeriesTraits};

/// One live series as a reader sees it.
#[derive(Clone, Copy, Debug)]
pub struct SeriesRef<'a> {
    /// The canonical key (see `model::key`).
    pub key: &'a [u8],
    /// The latest sample.
    pub sample: Sample,
    /// Facts about the series, pushed or not among them.
    pub traits: SeriesTraits,
    /// The series' latest exemplar, if one came with any of its updates
    /// since it was created (exemplars are not persisted: none after a
    /// restart until the next one arrives).
    pub exemplar: Option<ExemplarRef<'a>>,
    /// The series' latest sample when it is a native histogram (`sample`
    /// then holds its count and timestamp). Persisted whole in snapshots.
    pub histogram: Option<&'a NativeHistogram>,
}

/// A series' latest exemplar as a reader sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExemplarRef<'a> {
    /// Its labels as OpenMetrics label text without braces, ready to write
    /// between `# {` and `}`: names sorted, each value escaped as in keys
    /// (`\\`, `\"`, `\n`), a name outside `[a-zA-Z_][a-zA-Z0-9_]*` quoted
    /// (`"service.name"="api"`); empty for an empty label set. At most 128
    /// characters of names and values (OpenMetrics 1.0).
    pub labels: &'a str,
    /// The exemplar's value.
    pub value: f64,
    /// Milliseconds since the epoch; `None` when it was sent without one
    /// (remote write's 0).
    pub timestamp_ms: Option<i64>,
}

/// One metric name and its series, as of [`Store::metrics`]; series written
/// since may or may not be seen, as with any concurrent reader.
#[derive(Clone)]
pub struct MetricView {
    name: Box<str>,
    metric: Arc<Metric>,
}

impl MetricView {
    /// The metric name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Live series of this name now (exact when no write is in flight).
    pub fn len(&self) -> usize {
        self.metric.len()
    }

    /// Has this name no live series now?
    pub fn is_empty(&self) -> bool {
        self.metric.is_empty()
    }

    /// Live series of this name whose latest sample is a native histogram
    /// (exact when no write is in flight).
    pub fn histograms(&self) -> usize {
        self.metric.histograms()
    }

    /// Does any live series carry one of the `model::SeriesTraits` bits in `traits`?
    pub fn any_with(&self, traits: u8) -> bool {
        self.metric.any_with(traits)
    }

    /// A cursor over this name's series.
    pub fn parts(&self) -> Parts<'_> {
        Parts {
            metric: &self.metric,
            next: 0,
        }
    }

    pub(super) fn metric(&self) -> &Metric {
        &self.metric
    }
}

/// A cursor over one name's series, one locked part at a time.
pub struct Parts<'m> {
    metric: &'m Metric,
    next: usize,
}

impl Parts<'_> {
    /// Calls `f` for every series of the next part, holding that part's read
    /// lock only meanwhile; `false` once every part has been visited.
    pub fn visit_next(&mut self, mut f: impl FnMut(SeriesRef<'_>)) -> bool {
        let Some(shard) = self.metric.shards.get(self.next) else {
            return false;
        };
        self.next += 1;
        let shard = read(shard);
        for e in shard.series.iter() {
            f(SeriesRef {
                key: e.key(),
                sample: e.sample(),
                traits: e.traits(),
                exemplar: shard.extras.exemplar(e),
                histogram: shard.extras.histogram(e),
            });
        }
        true
    }

    /// [`Parts::visit_next`] with the store's own view of each series (its
    /// TTL clock too), for snapshots, which keep no exemplar.
    pub(super) fn visit_next_entries(&mut self, mut f: impl FnMut(&Entry, &Extras)) -> bool {
        let Some(shard) = self.metric.shards.get(self.next) else {
            return false;
        };
        self.next += 1;
        let shard = read(shard);
        for e in shard.series.iter() {
            f(e, &shard.extras);
        }
        true
    }
}

impl Store {
    /// A snapshot of the metric names, unordered; each view reads the live
    /// tables, not a copy.
    pub fn metrics(&self) -> Vec<MetricView> {
        self.metrics
            .iter()
            .map(|r| MetricView {
                name: r.key().clone(),
                metric: Arc::clone(r.value()),
            })
            .collect()
    }
}
