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
//! - † Any order of a request's updates (names interleaved, series repeated)
//!   leaves the store as applying them one by one in request order does.
//! - Locks are taken in the order `metrics` map → shards. A writer looks its
//!   names up first and holds no map guard while it holds shards; it takes
//!   all the shards a request touches in increasing (Metric address, shard)
//!   order, so two writers cannot deadlock. The sweeper removes a name only
//!   after retiring its empty Metric under all its shard locks, and a writer
//!   that finds a Metric retired under its shard lock looks the name up
//!   again, so no series is written into a Metric no longer in the map.
//!   Nothing here is async, so no lock is held across `.await`; a reader
//!   holds at most one shard lock at a time and none while its caller
//!   writes out.
//! - `live` equals the number of entries whenever no apply or sweep is in
//!   flight (each adjusts it beside its own inserts and removals).
//! - † A series' exemplar lives in its shard's side table
//!   (`entry::Exemplars`) exactly while the series does: whoever removes
//!   an entry (stale marker, sweep, pushed group) forgets its exemplar
//!   under the shard lock it holds. Exemplars are not persisted.

mod apply;
mod entry;
mod groups;
mod owners;
pub mod persist;
mod series;
mod table;
mod view;

pub use apply::ApplyOutcome;
pub use groups::{FamilyView, GroupView, PushConflict, PushOutcome};
pub use view::{ExemplarRef, MetricView, Parts, SeriesRef};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::model::{self, Metadata, Sample};
use entry::Entry;
use table::{Metric, SeriesHasher, read, shard_of, write};

/// Where the store's clock starts. Not at zero: an entry loaded from a
/// snapshot keeps the age it had, so its last update is placed before the
/// process started, up to this many seconds (34 years) back; ahead, the
/// clock has as many seconds left before it saturates.
const CLOCK_START: u32 = 1 << 30;

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

    /// The store's clock: whole seconds since it was created, plus
    /// [`CLOCK_START`] (the TTL is measured in receive time, never in sample
    /// time).
    fn now(&self) -> u32 {
        CLOCK_START.saturating_add(self.epoch.elapsed().as_secs() as u32)
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
                    let mut shard = write(shard);
                    let table::Shard { series, extras } = &mut *shard;
                    series.retain(|e| {
                        if expired(e.touched()) && !e.traits().pushed() {
                            metric.removed(e);
                            extras.forget(e);
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
        // A writer may hold a name's Metric, looked up before, without the
        // map guard: retiring locks the Metric's shards and marks it, so a
        // writer that comes later looks the name up again instead of writing
        // into a Metric no longer in the map. Names are also emptied by stale
        // markers, so this runs whatever the TTL.
        self.metrics.retain(|_, m| !m.retire_if_empty());
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
        self.find(key, |e, _| e.sample())
    }

    /// The latest exemplar of the series with canonical key `key`, if live
    /// and it has one: (label text, value, timestamp).
    #[cfg(test)]
    fn exemplar(&self, key: &str) -> Option<(String, f64, Option<i64>)> {
        self.find(key, |e, extras| {
            extras
                .exemplar(e)
                .map(|x| (x.labels.to_string(), x.value, x.timestamp_ms))
        })
        .flatten()
    }

    /// `f` of the entry of the series with canonical key `key`, if live,
    /// and its shard's exemplars, under its shard's read lock.
    fn find<R>(&self, key: &str, f: impl FnOnce(&Entry, &entry::Extras) -> R) -> Option<R> {
        let name = crate::model::name_in_key(key);
        let metric = self.metrics.get(name)?;
        let hash = self.hasher.hash(key.as_bytes());
        let shard = read(&metric.shards[shard_of(hash)]);
        shard
            .series
            .find(hash, |e| e.key() == key.as_bytes())
            .map(|e| f(e, &shard.extras))
    }

    #[cfg(test)]
    fn backdate(&self, secs: u32) {
        for m in self.metrics() {
            for shard in m.metric().shards.iter() {
                for e in write(shard).series.iter_mut() {
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
                exemplar: crate::model::NO_EXEMPLAR,
                histogram: crate::model::NO_HISTOGRAM,
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

    /// An exemplar of a test batch: label text, value, timestamp.
    type ExemplarIn<'a> = (&'a str, f64, i64);

    /// `batch(items)` with an exemplar (label text, value, timestamp) on
    /// the updates that have one.
    fn batch_with_exemplars(items: &[(Labels, f64, i64, Option<ExemplarIn<'_>>)]) -> WriteBatch {
        let plain: Vec<(Labels, f64, i64)> = items.iter().map(|i| (i.0, i.1, i.2)).collect();
        let mut b = batch(&plain);
        for (u, item) in b.series.iter_mut().zip(items) {
            if let Some((labels, value, timestamp_ms)) = item.3 {
                let start = b.keys.len() as u32;
                b.keys.push_str(labels);
                u.exemplar = b.exemplars.len() as u32;
                u.exemplars = 1;
                b.exemplars.push(model::Exemplar {
                    labels: model::TextSpan {
                        start,
                        len: labels.len() as u32,
                    },
                    value,
                    timestamp_ms,
                });
            }
        }
        b
    }

    /// Exemplars held in every shard's side table.
    fn exemplars_held(s: &Store) -> usize {
        s.metrics()
            .iter()
            .flat_map(|m| {
                m.metric()
                    .shards
                    .iter()
                    .map(|sh| read(sh).extras.exemplars_len())
            })
            .sum()
    }

    #[test]
    fn the_latest_exemplar_is_kept_across_plain_updates() {
        let s = Store::new(LIMITS);
        let ex = |labels, value, ts| Some((labels, value, ts));
        let out = s.apply(&batch_with_exemplars(&[
            (A, 1.0, 10, ex(r#"trace_id="a""#, 0.5, 10)),
            (B, 1.0, 10, None),
        ]));
        assert_eq!(out.exemplars, 1);
        let a = r#"m{i="a"}"#;
        assert_eq!(
            s.exemplar(a),
            Some((r#"trace_id="a""#.into(), 0.5, Some(10)))
        );
        assert_eq!(s.exemplar(r#"m{i="b"}"#), None);
        // A newer one replaces it, an equal timestamp too (the later wins);
        // an older one does not.
        s.apply(&batch_with_exemplars(&[(
            A,
            2.0,
            20,
            ex(r#"trace_id="b""#, 0.7, 20),
        )]));
        s.apply(&batch_with_exemplars(&[(
            A,
            3.0,
            30,
            ex(r#"trace_id="c""#, 0.8, 20),
        )]));
        s.apply(&batch_with_exemplars(&[(
            A,
            4.0,
            40,
            ex(r#"trace_id="d""#, 0.9, 15),
        )]));
        assert_eq!(
            s.exemplar(a),
            Some((r#"trace_id="c""#.into(), 0.8, Some(20)))
        );
        // Samples without an exemplar keep it; so does an out-of-order
        // sample, whose newer exemplar still replaces it.
        s.apply(&batch(&[(A, 5.0, 50)]));
        assert_eq!(s.get(a).unwrap().value, 5.0);
        assert_eq!(
            s.exemplar(a),
            Some((r#"trace_id="c""#.into(), 0.8, Some(20)))
        );
        let out = s.apply(&batch_with_exemplars(&[(A, 0.0, 45, ex("", 1.5, 45))]));
        assert_eq!(out.out_of_order_samples, 1);
        assert_eq!(s.get(a).unwrap().value, 5.0);
        assert_eq!(s.exemplar(a), Some((String::new(), 1.5, Some(45))));
        // Two updates of one series in a request: request order decides.
        s.apply(&batch_with_exemplars(&[
            (A, 6.0, 60, ex(r#"x="1""#, 1.0, 60)),
            (A, 7.0, 60, ex(r#"x="2""#, 2.0, 60)),
        ]));
        assert_eq!(s.exemplar(a), Some((r#"x="2""#.into(), 2.0, Some(60))));
        assert_eq!(exemplars_held(&s), 1);
    }

    #[test]
    fn an_exemplar_without_a_timestamp_reads_as_none_and_never_replaces_a_stamped_one() {
        let s = Store::new(LIMITS);
        let a = r#"m{i="a"}"#;
        s.apply(&batch_with_exemplars(&[(A, 1.0, 10, Some(("", 1.0, 0)))]));
        assert_eq!(s.exemplar(a), Some((String::new(), 1.0, None)));
        s.apply(&batch_with_exemplars(&[(A, 1.0, 11, Some(("", 2.0, 0)))]));
        assert_eq!(s.exemplar(a), Some((String::new(), 2.0, None)));
        s.apply(&batch_with_exemplars(&[(A, 1.0, 12, Some(("", 3.0, 12)))]));
        s.apply(&batch_with_exemplars(&[(A, 1.0, 13, Some(("", 4.0, 0)))]));
        assert_eq!(s.exemplar(a), Some((String::new(), 3.0, Some(12))));
    }

    #[test]
    fn an_exemplar_leaves_with_its_series_by_stale_marker() {
        let s = Store::with_hasher(LIMITS, SeriesHasher::Constant);
        let stale = f64::from_bits(STALE_NAN_BITS);
        s.apply(&batch_with_exemplars(&[
            (A, 1.0, 10, Some((r#"t="a""#, 1.0, 10))),
            (B, 1.0, 10, Some((r#"t="b""#, 2.0, 10))),
        ]));
        assert_eq!(exemplars_held(&s), 2);
        // A marker with an exemplar of its own removes both.
        let out = s.apply(&batch_with_exemplars(&[(
            A,
            stale,
            20,
            Some(("", 9.0, 20)),
        )]));
        assert_eq!(out.stale_removed, 1);
        assert_eq!(exemplars_held(&s), 1);
        assert_eq!(
            s.exemplar(r#"m{i="b"}"#),
            Some((r#"t="b""#.into(), 2.0, Some(10)))
        );
        // The series created anew (its block maybe where the old one was)
        // has none until one comes.
        s.apply(&batch(&[(A, 1.0, 30)]));
        assert_eq!(s.exemplar(r#"m{i="a"}"#), None);
        // Its page shows the same, through the readers' cursor.
        let mut seen = Vec::new();
        for m in s.metrics() {
            let mut parts = m.parts();
            while parts.visit_next(|r| {
                seen.push((
                    String::from_utf8(r.key.to_vec()).unwrap(),
                    r.exemplar.map(|e| e.labels.to_string()),
                ));
            }) {}
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                (r#"m{i="a"}"#.to_string(), None),
                (r#"m{i="b"}"#.to_string(), Some(r#"t="b""#.to_string()))
            ]
        );
    }

    #[test]
    fn an_exemplar_leaves_with_its_series_by_the_ttl_sweep() {
        let mut s = Store::new(LIMITS);
        s.epoch = Instant::now()
            .checked_sub(Duration::from_secs(1000))
            .unwrap();
        s.apply(&batch_with_exemplars(&[(
            A,
            1.0,
            1,
            Some((r#"t="a""#, 1.0, 1)),
        )]));
        s.backdate(120);
        s.apply(&batch_with_exemplars(&[(
            B,
            1.0,
            1,
            Some((r#"t="b""#, 1.0, 1)),
        )]));
        assert_eq!(s.sweep(Some(Duration::from_secs(60))), 1);
        assert_eq!(exemplars_held(&s), 1);
        assert_eq!(s.exemplar(r#"m{i="a"}"#), None);
        assert!(s.exemplar(r#"m{i="b"}"#).is_some());
        s.backdate(120);
        assert_eq!(s.sweep(Some(Duration::from_secs(60))), 1);
        assert_eq!(exemplars_held(&s), 0);
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
        // Two names interleaved series by series, enough of them that every
        // shard of both has a group of several updates.
        const SERIES: usize = 2 * 64 * 4;
        let values: Vec<String> = (0..SERIES).map(|i| i.to_string()).collect();
        let name = |i: usize| ["m", "n"][i % 2];
        let labels: Vec<[(&str, &str); 2]> = values
            .iter()
            .enumerate()
            .map(|(i, v)| [("__name__", name(i)), ("i", v.as_str())])
            .collect();
        let key = |i: usize| format!(r#"{}{{i="{i}"}}"#, name(i));
        // Every series twice at one timestamp: the later write must win, in
        // whichever shard group it lands. A new name whose first update is a
        // stale marker still creates the request's other series.
        let stale = f64::from_bits(STALE_NAN_BITS);
        let mut items: Vec<(Labels, f64, i64)> =
            vec![(&[("__name__", "m"), ("i", "gone")], stale, 5)];
        items.extend(labels.iter().map(|l| (&l[..], 1.0, 10)));
        items.extend(labels.iter().map(|l| (&l[..], 2.0, 10)));
        let out = s.apply(&batch(&items));
        assert_eq!(out.series, items.len() as u64);
        assert_eq!(out.created, labels.len() as u64);
        assert_eq!(s.live_series(), labels.len());
        for i in 0..SERIES {
            assert_eq!(s.get(&key(i)).unwrap().value, 2.0, "{}", key(i));
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
        for i in 0..SERIES {
            let got = s.get(&key(i)).map(|s| s.value);
            let want = [Some(2.0), None, Some(4.0)][i % 3];
            assert_eq!(got, want, "{}", key(i));
        }

        // A stale marker, then a new sample, then another marker and a
        // sample of one series, interleaved with the other name's updates:
        // request order decides.
        let items: Vec<(Labels, f64, i64)> = labels
            .iter()
            .flat_map(|l| {
                [
                    (&l[..], stale, 30),
                    (&l[..], 5.0, 31),
                    (&l[..], stale, 32),
                    (&l[..], 6.0, 33),
                ]
            })
            .collect();
        s.apply(&batch(&items));
        assert_eq!(s.live_series(), labels.len());
        for i in 0..SERIES {
            assert_eq!(s.get(&key(i)).unwrap().value, 6.0, "{}", key(i));
        }
    }

    #[test]
    fn a_name_emptied_and_swept_is_retired_and_created_anew() {
        let s = Store::new(LIMITS);
        let stale = f64::from_bits(STALE_NAN_BITS);
        s.apply(&batch(&[(A, 1.0, 1)]));
        let held = s.metrics.get("m").map(|m| Arc::clone(&m)).unwrap();
        s.apply(&batch(&[(A, stale, 2)]));
        s.sweep(None);
        assert!(s.metrics.get("m").is_none());
        assert!(held.is_retired());
        // Writers that looked the name up before the sweep find it retired
        // under their shard lock and look it up again, as this one does.
        s.apply(&batch(&[(A, 3.0, 3), (B, 4.0, 3)]));
        assert_eq!(held.len(), 0);
        assert_eq!(s.get(r#"m{i="a"}"#).unwrap().value, 3.0);
        assert_eq!(s.live_series(), 2);
    }

    #[test]
    fn writers_racing_the_sweeper_lose_no_series() {
        // Writers empty their names with stale markers and fill them again
        // while the sweeper removes emptied names: a writer that wrote into
        // a Metric no longer in the map would lose its series.
        let s = Store::new(LIMITS);
        let stale = f64::from_bits(STALE_NAN_BITS);
        let done = std::sync::atomic::AtomicBool::new(false);
        let names = ["a", "b", "c"];
        let values: Vec<String> = (0..120).map(|i| i.to_string()).collect();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    s.sweep(None);
                }
            });
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let (s, values) = (&s, &values);
                    scope.spawn(move || {
                        let labels: Vec<[(&str, &str); 3]> = values
                            .iter()
                            .enumerate()
                            .map(|(i, v)| {
                                [("__name__", names[i % 3]), ("i", v), ("w", ["0", "1"][w])]
                            })
                            .collect();
                        for round in 0..40i64 {
                            let fill: Vec<(Labels, f64, i64)> = labels
                                .iter()
                                .map(|l| (&l[..], 1.0, 2 * round + 1))
                                .collect();
                            s.apply(&batch(&fill));
                            if round < 39 {
                                let empty: Vec<(Labels, f64, i64)> = labels
                                    .iter()
                                    .map(|l| (&l[..], stale, 2 * round + 2))
                                    .collect();
                                s.apply(&batch(&empty));
                            }
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
        });
        s.sweep(None);
        assert_eq!(s.live_series(), 2 * values.len());
        assert_eq!(contents(&s).len(), 2 * values.len());
        for w in ["0", "1"] {
            for (i, v) in values.iter().enumerate() {
                let key = format!(r#"{}{{i="{v}",w="{w}"}}"#, names[i % 3]);
                assert_eq!(s.get(&key).map(|x| x.timestamp_ms), Some(79), "{key}");
            }
        }
    }

    /// What the store should hold after a sequence of requests, computed
    /// series by series in request order: key → latest sample, with the
    /// store's rules (the newer or equal timestamp wins; a stale marker not
    /// older than the stored sample removes the series; one for a series
    /// not stored changes nothing).
    #[derive(Default)]
    struct Reference {
        series: std::collections::BTreeMap<String, (u64, i64)>,
    }

    impl Reference {
        /// Applies one update; returns what the store's outcome counts.
        fn apply(&mut self, key: String, value: f64, ts: i64) -> Effect {
            let stale = model::is_stale_marker(value);
            match self.series.get_mut(&key) {
                Some(stored) if ts < stored.1 => Effect::OutOfOrder,
                Some(_) if stale => {
                    self.series.remove(&key);
                    Effect::Removed
                }
                Some(stored) => {
                    *stored = (value.to_bits(), ts);
                    Effect::Updated
                }
                None if stale => Effect::Ignored,
                None => {
                    self.series.insert(key, (value.to_bits(), ts));
                    Effect::Created
                }
            }
        }
    }

    /// Every series the store holds, key → (value bits, timestamp).
    fn contents(s: &Store) -> std::collections::BTreeMap<String, (u64, i64)> {
        let mut all = std::collections::BTreeMap::new();
        for m in s.metrics() {
            let mut parts = m.parts();
            while parts.visit_next(|r| {
                let key = String::from_utf8(r.key.to_vec()).unwrap();
                all.insert(key, (r.sample.value.to_bits(), r.sample.timestamp_ms));
            }) {}
        }
        all
    }

    use entry::Effect;
    use proptest::prelude::*;

    /// One update: (name, label value, value, timestamp, stale?), from a
    /// small universe so that requests repeat series, names interleave and
    /// markers meet the series they remove.
    fn update() -> impl Strategy<Value = (usize, usize, u8, i64, bool)> {
        (
            0..5usize,
            0..40usize,
            any::<u8>(),
            1..6i64,
            prop::bool::weighted(0.15),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Requests of any shape (names interleaved, series repeated, stale
        /// markers, series created and removed between requests) leave the
        /// store as applying their updates one by one in request order does,
        /// with the same outcome counts; with every key hashing alike too.
        #[test]
        fn any_request_order_matches_applying_series_one_by_one(
            requests in prop::collection::vec(prop::collection::vec(update(), 0..150), 1..5),
            constant in any::<bool>(),
        ) {
            let hasher = if constant {
                SeriesHasher::Constant
            } else {
                SeriesHasher::Random(Default::default())
            };
            let s = Store::with_hasher(LIMITS, hasher);
            let mut reference = Reference::default();
            let names = ["a", "b_total", "c_bucket", "d", "e"];
            for (r, request) in requests.iter().enumerate() {
                let values: Vec<String> = request.iter().map(|u| u.1.to_string()).collect();
                let labels: Vec<[(&str, &str); 2]> = request
                    .iter()
                    .zip(&values)
                    .map(|(u, v)| [("__name__", names[u.0]), ("i", v.as_str())])
                    .collect();
                let items: Vec<(Labels, f64, i64)> = request
                    .iter()
                    .zip(&labels)
                    .map(|(u, l)| {
                        let value = if u.4 { f64::from_bits(STALE_NAN_BITS) } else { f64::from(u.2) };
                        (&l[..], value, r as i64 * 3 + u.3)
                    })
                    .collect();
                let out = s.apply(&batch(&items));
                let (mut created, mut removed, mut out_of_order) = (0, 0, 0);
                for (u, (_, value, ts)) in request.iter().zip(&items) {
                    let key = format!(r#"{}{{i="{}"}}"#, names[u.0], u.1);
                    match reference.apply(key, *value, *ts) {
                        Effect::Created => created += 1,
                        Effect::Removed => removed += 1,
                        Effect::OutOfOrder => out_of_order += 1,
                        Effect::Updated | Effect::Ignored => {}
                    }
                }
                prop_assert_eq!(out.series, items.len() as u64);
                prop_assert_eq!(out.created, created);
                prop_assert_eq!(out.stale_removed, removed);
                prop_assert_eq!(out.out_of_order_samples, out_of_order);
                prop_assert_eq!(&contents(&s), &reference.series);
                prop_assert_eq!(s.live_series(), reference.series.len());
                if r % 2 == 1 {
                    // Names emptied by markers go; the next request makes them anew.
                    s.sweep(None);
                }
            }
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
