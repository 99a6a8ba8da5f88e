//! The only shared mutable state of the data path: the latest sample of
//! every live series, and the metadata of every family.
//!
//! Layout: metric name → [`Metric`] ([`table`]), each a fixed array of
//! shards, each shard a `RwLock` around a hash table of [`Entry`](entry)
//! blocks keyed by the canonical series key. Grouping by name lets the
//! exposition walk one family at a time without sorting every series;
//! sharding within a name keeps a big family from serialising its writers,
//! and lets a reader hold one shard at a time. [`apply`] is the write path;
//! [`view`] is how everything else reads, without seeing the shards.
//!
//! Invariants (tests hold the ones marked †):
//! - † A series is found by its full canonical key; the hash only picks the
//!   bucket, so two keys with equal hashes stay two series.
//! - † Two updates of one series in a request apply in request order.
//! - Locks are taken in the order `metrics` map → shards, a writer's shards
//!   of one name in increasing shard order; nothing here is async, so no lock
//!   is held across `.await`; a reader holds at most one shard lock at a
//!   time and none while its caller writes out.
//! - `live` equals the number of entries whenever no apply or sweep is in
//!   flight (each adjusts it beside its own inserts and removals).

mod apply;
mod entry;
mod groups;
mod table;
mod view;

pub use apply::ApplyOutcome;
pub use groups::{FamilyView, GroupView, PushConflict, PushOutcome};
pub use view::{MetricView, Parts, SeriesRef};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::model::{self, Metadata, Sample};
use entry::Entry;
use table::{Metric, SeriesHasher, read, shard_of, write};

/// A read guard on one metric name's entry of the map.
type MetricRef<'a> = dashmap::mapref::one::Ref<'a, Box<str>, Arc<Metric>>;

/// Limits the store enforces.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Maximum live series; new series beyond it are rejected.
    pub max_series: usize,
    /// Maximum metadata families.
    pub max_metadata: usize,
}

/// Latest sample per series, metadata per family.
pub struct Store {
    metrics: DashMap<Box<str>, Arc<Metric>, foldhash::fast::RandomState>,
    metadata: DashMap<Box<str>, (Metadata, u32), foldhash::fast::RandomState>,
    hasher: SeriesHasher,
    live: AtomicUsize,
    limits: StoreLimits,
    epoch: Instant,
    groups: groups::Groups,
}

impl Store {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Self {
        Self::with_hasher(limits, SeriesHasher::Random(Default::default()))
    }

    fn with_hasher(limits: StoreLimits, hasher: SeriesHasher) -> Self {
        Store {
            metrics: DashMap::with_hasher(Default::default()),
            metadata: DashMap::with_hasher(Default::default()),
            hasher,
            live: AtomicUsize::new(0),
            limits,
            epoch: Instant::now(),
            groups: groups::Groups::default(),
        }
    }

    /// The store's clock: whole seconds since it was created (the TTL is
    /// measured in receive time, never in sample time).
    fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// Number of live series.
    pub fn live_series(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Number of metadata families held.
    pub fn metadata_len(&self) -> usize {
        self.metadata.len()
    }

    /// Removes remote-written series and metadata not updated for `ttl`
    /// (none when `ttl` is `None`, series kept forever), then the names left
    /// with no series; returns how many series expired. Pushed series stay:
    /// they leave with their group ([`Store::sweep_groups`]). Takes one
    /// shard lock at a time.
    pub fn sweep(&self, ttl: Option<Duration>) -> usize {
        let mut removed = 0;
        if let Some(ttl) = ttl {
            let ttl = ttl.as_secs().min(u64::from(u32::MAX)) as u32;
            let now = self.now();
            // The clock counts whole seconds, so `touched` may be up to a
            // second behind the update: a series is removed only once a full
            // `ttl` has certainly passed, between `ttl` and `ttl` + 1 s after
            // its last update (plus the sweep period).
            let expired = |touched: u32| now.saturating_sub(touched) > ttl;
            for metric in self.metrics() {
                let metric = metric.metric();
                for shard in metric.shards.iter() {
                    write(shard).retain(|e| {
                        if expired(e.touched()) && !e.traits().pushed() {
                            metric.removed(e.traits());
                            removed += 1;
                            false
                        } else {
                            true
                        }
                    });
                }
            }
            self.live.fetch_sub(removed, Ordering::Relaxed);
            // Metadata comes in its own requests, once a minute by default in
            // Prometheus: it lives as long as any series of its family does,
            // whatever its own age, so a TTL shorter than the sender's
            // metadata interval never strips a live family of HELP and TYPE.
            let mut name_buf = String::new();
            self.metadata.retain(|family, (_, touched)| {
                !expired(*touched) || self.family_is_live(family, &mut name_buf)
            });
        }
        // Writers hold the map guard while they insert, so an emptied Metric
        // cannot gain a series between this check and its removal. Names are
        // also emptied by stale markers, so this runs whatever the TTL.
        self.metrics.retain(|_, m| !m.is_empty());
        removed
    }

    /// Has family `family` a live series under any name its metadata can
    /// describe (`model::FAMILY_SUFFIXES`)?
    fn family_is_live(&self, family: &str, buf: &mut String) -> bool {
        model::FAMILY_SUFFIXES.iter().any(|suffix| {
            buf.clear();
            buf.push_str(family);
            buf.push_str(suffix);
            self.metrics
                .get(buf.as_str())
                .is_some_and(|m| !m.is_empty())
        })
    }

    /// The metadata of family `name`, if pushed.
    pub fn metadata(&self, name: &str) -> Option<Metadata> {
        self.metadata.get(name).map(|r| r.value().0.clone())
    }

    /// The latest sample of the series with canonical key `key`, if live.
    pub fn get(&self, key: &str) -> Option<Sample> {
        let name = key.split_once('{').map_or(key, |(n, _)| n);
        let metric = self.metrics.get(name)?;
        let hash = self.hasher.hash(key.as_bytes());
        let table = read(&metric.shards[shard_of(hash)]);
        table
            .find(hash, |e| e.key() == key.as_bytes())
            .map(Entry::sample)
    }

    #[cfg(test)]
    fn backdate(&self, secs: u32) {
        for m in self.metrics() {
            for shard in m.metric().shards.iter() {
                for e in write(shard).iter_mut() {
                    e.set_touched(e.touched().saturating_sub(secs));
                }
            }
        }
        for mut r in self.metadata.iter_mut() {
            r.value_mut().1 = r.value().1.saturating_sub(secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Metadata, RejectReason, STALE_NAN_BITS, SeriesLimits, SeriesUpdate, WriteBatch, build_key,
    };
    use apply::GROUPED_RUN;

    const LIMITS: StoreLimits = StoreLimits {
        max_series: 1_000_000,
        max_metadata: 100_000,
    };

    fn series_limits() -> SeriesLimits {
        crate::config::Config::default().series_limits()
    }

    type Labels<'a> = &'a [(&'a str, &'a str)];

    fn batch(items: &[(Labels, f64, i64)]) -> WriteBatch {
        let mut b = WriteBatch::default();
        let mut scratch = Vec::new();
        for (labels, value, ts) in items {
            let key = build_key(
                labels.iter().copied(),
                &series_limits(),
                &mut scratch,
                &mut b.keys,
            )
            .unwrap();
            b.series.push(SeriesUpdate {
                key,
                latest: Sample {
                    value: *value,
                    timestamp_ms: *ts,
                },
                samples: 1,
                exemplars: 0,
            });
        }
        b
    }

    const A: &[(&str, &str)] = &[("__name__", "m"), ("i", "a")];
    const B: &[(&str, &str)] = &[("__name__", "m"), ("i", "b")];

    #[test]
    fn latest_timestamp_wins_and_equal_timestamps_take_the_later_write() {
        let s = Store::new(LIMITS);
        s.apply(&batch(&[(A, 1.0, 100)]));
        let out = s.apply(&batch(&[(A, 0.5, 50)]));
        assert_eq!(out.out_of_order_samples, 1);
        assert_eq!(s.get(r#"m{i="a"}"#).unwrap().value, 1.0);
        s.apply(&batch(&[(A, 2.0, 100)]));
        assert_eq!(s.get(r#"m{i="a"}"#).unwrap().value, 2.0);
        assert_eq!(s.live_series(), 1);
    }

    #[test]
    fn stale_marker_removes_only_when_not_older() {
        let s = Store::new(LIMITS);
        let stale = f64::from_bits(STALE_NAN_BITS);
        s.apply(&batch(&[(A, 1.0, 100), (B, 1.0, 100)]));
        s.apply(&batch(&[(A, stale, 50)]));
        assert!(
            s.get(r#"m{i="a"}"#).is_some(),
            "older marker must not delete"
        );
        let out = s.apply(&batch(&[(A, stale, 150)]));
        assert_eq!(out.stale_removed, 1);
        assert!(s.get(r#"m{i="a"}"#).is_none());
        assert_eq!(s.live_series(), 1);
        // A marker for an unknown series changes nothing.
        s.apply(&batch(&[(&[("__name__", "other")], stale, 1)]));
        assert_eq!(s.live_series(), 1);
    }

    #[test]
    fn hash_collisions_do_not_merge_series() {
        let s = Store::with_hasher(LIMITS, SeriesHasher::Constant);
        s.apply(&batch(&[(A, 1.0, 1), (B, 2.0, 1)]));
        assert_eq!(s.live_series(), 2);
        assert_eq!(s.get(r#"m{i="a"}"#).unwrap().value, 1.0);
        assert_eq!(s.get(r#"m{i="b"}"#).unwrap().value, 2.0);
        let stale = f64::from_bits(STALE_NAN_BITS);
        s.apply(&batch(&[(A, stale, 2)]));
        assert_eq!(s.get(r#"m{i="b"}"#).unwrap().value, 2.0);
        assert_eq!(s.live_series(), 1);
    }

    #[test]
    fn series_limit_rejects_new_series_but_updates_existing() {
        let s = Store::new(StoreLimits {
            max_series: 1,
            max_metadata: 10,
        });
        s.apply(&batch(&[(A, 1.0, 1)]));
        let out = s.apply(&batch(&[(B, 1.0, 1), (A, 5.0, 2)]));
        assert_eq!(out.series, 1);
        assert_eq!(out.rejected.series, vec![(RejectReason::SeriesLimit, 1)]);
        assert_eq!(s.get(r#"m{i="a"}"#).unwrap().value, 5.0);
        assert!(s.get(r#"m{i="b"}"#).is_none());
        assert_eq!(s.live_series(), 1);
    }

    #[test]
    fn sweep_expires_idle_series_and_empty_names() {
        let mut s = Store::new(LIMITS);
        // Start the clock well past zero so that backdating does not saturate.
        s.epoch = Instant::now()
            .checked_sub(Duration::from_secs(1000))
            .unwrap();
        s.apply(&batch(&[(A, 1.0, 1)]));
        s.backdate(120);
        s.apply(&batch(&[(&[("__name__", "fresh")], 1.0, 1)]));
        assert_eq!(s.sweep(Some(Duration::from_secs(60))), 1);
        assert_eq!(s.live_series(), 1);
        assert!(s.get(r#"m{i="a"}"#).is_none());
        assert!(s.get("fresh").is_some());
        assert_eq!(s.metrics().len(), 1);
    }

    #[test]
    fn a_long_run_is_applied_in_request_order_per_series() {
        let s = Store::new(LIMITS);
        let values: Vec<String> = (0..GROUPED_RUN * 2).map(|i| i.to_string()).collect();
        let labels: Vec<[(&str, &str); 2]> = values
            .iter()
            .map(|v| [("__name__", "m"), ("i", v.as_str())])
            .collect();
        // Every series twice at one timestamp: the later write must win, in
        // whichever shard group it lands. A new name whose run starts with a
        // stale marker still creates the run's other series.
        let stale = f64::from_bits(STALE_NAN_BITS);
        let mut items: Vec<(Labels, f64, i64)> =
            vec![(&[("__name__", "m"), ("i", "gone")], stale, 5)];
        items.extend(labels.iter().map(|l| (&l[..], 1.0, 10)));
        items.extend(labels.iter().map(|l| (&l[..], 2.0, 10)));
        assert!(items.len() > GROUPED_RUN);
        let out = s.apply(&batch(&items));
        assert_eq!(out.series, items.len() as u64);
        assert_eq!(out.created, labels.len() as u64);
        assert_eq!(s.live_series(), labels.len());
        for v in &values {
            assert_eq!(
                s.get(&format!(r#"m{{i="{v}"}}"#)).unwrap().value,
                2.0,
                "{v}"
            );
        }
        assert!(s.get(r#"m{i="gone"}"#).is_none());

        // Existing series, found by the first pass: older samples are refused,
        // stale markers remove, newer samples land.
        let items: Vec<(Labels, f64, i64)> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| match i % 3 {
                0 => (&l[..], 3.0, 5),
                1 => (&l[..], stale, 20),
                _ => (&l[..], 4.0, 20),
            })
            .collect();
        let out = s.apply(&batch(&items));
        let thirds = |r: usize| (0..labels.len()).filter(|i| i % 3 == r).count();
        assert_eq!(out.out_of_order_samples, thirds(0) as u64);
        assert_eq!(out.stale_removed, thirds(1) as u64);
        assert_eq!(s.live_series(), labels.len() - thirds(1));
        for (i, v) in values.iter().enumerate() {
            let got = s.get(&format!(r#"m{{i="{v}"}}"#)).map(|s| s.value);
            let want = [Some(2.0), None, Some(4.0)][i % 3];
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn metadata_limit() {
        let s = Store::new(StoreLimits {
            max_series: 10,
            max_metadata: 1,
        });
        let mut b = WriteBatch::default();
        b.metadata.push(("a".into(), Metadata::default()));
        b.metadata.push(("b".into(), Metadata::default()));
        let out = s.apply(&b);
        assert_eq!(out.rejected.series, vec![(RejectReason::MetadataLimit, 1)]);
        assert_eq!(s.metadata_len(), 1);
    }
}
