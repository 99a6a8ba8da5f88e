//! The only shared mutable state: the latest sample of every live series, and
//! the metadata of every family.
//!
//! Layout: metric name → [`Metric`], each a fixed array of shards, each shard
//! a `RwLock` around a hash table of [`Entry`]s keyed by the canonical series
//! key. Grouping by name lets the exposition walk one family at a time without
//! sorting every series; sharding within a name keeps a big family from
//! serialising its writers, and lets a scrape hold one shard at a time.
//!
//! Invariants:
//! - A series is found by its full canonical key; the hash only picks the
//!   bucket, so two keys with equal hashes stay two series.
//! - Locks are always taken in the order `metrics` map → shards, a writer's
//!   shards of one name in increasing order; never held across `.await`
//!   (nothing here is async); a scrape holds at most one shard lock at a time.
//! - `live` equals the number of entries across all shards.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;

/// A read guard on one metric name's entry of the map.
type MetricRef<'a> = dashmap::mapref::one::Ref<'a, Box<str>, Arc<Metric>>;

use crate::model::{
    KeyFlags, Metadata, RejectReason, Rejection, Rejections, Sample, SeriesUpdate, WriteBatch,
    is_stale_marker,
};

/// Shards per metric name. A power of two; small enough that thousands of
/// names stay cheap (64 empty shards are ~2.5 KiB), large enough that one huge
/// family rarely contends and that a scrape's per-shard chunk stays small
/// (a 1M-series name renders in ~3 MiB pieces: RSS grows < 5 MiB per scrape).
pub const SHARDS: usize = 64;

/// Runs of at least this many same-name updates are applied grouped by
/// shard; shorter ones one by one, where grouping costs more than it saves.
const GROUPED_RUN: usize = 32;

/// Asks the CPU to bring `block` into the cache; a hint that reads nothing.
#[inline(always)]
fn prefetch(block: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in block.chunks(64) {
        // SAFETY: a prefetch never faults and has no architectural effect;
        // the SSE it needs is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
}

/// How the store hashes canonical keys.
#[derive(Clone)]
enum SeriesHasher {
    Random(foldhash::fast::RandomState),
    /// Every key hashes alike, so tests can prove collisions never merge series.
    #[cfg(test)]
    Constant,
}

impl SeriesHasher {
    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        match self {
            SeriesHasher::Random(s) => s.hash_one(key),
            #[cfg(test)]
            SeriesHasher::Constant => 42,
        }
    }
}

/// One live series: a single heap block holding a fixed header — the latest
/// sample, the TTL clock, the flags — and then the canonical key.
///
/// One block, not a struct with a boxed key: the table slot is then just this
/// 16-byte pointer and length (a 100k-series table fits in L2), an update
/// touches one cache line that holds both the sample and the key's start,
/// and the render reads each series front to back. The key's length sits in
/// the slot, so a lookup rules out most other keys without touching the heap.
/// The hash is not kept: the table's control bytes already filter 127 of 128
/// candidates, and growth rehashes from the keys.
struct Entry(Box<[u8]>);

const VALUE: usize = 0;
const TIMESTAMP: usize = 8;
const TOUCHED: usize = 16;
const FLAGS: usize = 20;
const HEADER: usize = 21;

impl Entry {
    fn new(key: &str, sample: Sample, touched: u32, flags: KeyFlags) -> Self {
        let mut block = Vec::with_capacity(HEADER + key.len());
        block.extend_from_slice(&sample.value.to_bits().to_le_bytes());
        block.extend_from_slice(&sample.timestamp_ms.to_le_bytes());
        block.extend_from_slice(&touched.to_le_bytes());
        block.push(flags.bits());
        block.extend_from_slice(key.as_bytes());
        Entry(block.into_boxed_slice())
    }

    #[inline]
    fn key(&self) -> &[u8] {
        &self.0[HEADER..]
    }

    #[inline]
    fn word<const N: usize>(&self, at: usize) -> [u8; N] {
        self.0[at..at + N].try_into().expect("inside the header")
    }

    #[inline]
    fn sample(&self) -> Sample {
        Sample {
            value: f64::from_bits(u64::from_le_bytes(self.word(VALUE))),
            timestamp_ms: i64::from_le_bytes(self.word(TIMESTAMP)),
        }
    }

    #[inline]
    fn set_sample(&mut self, s: Sample) {
        self.0[VALUE..VALUE + 8].copy_from_slice(&s.value.to_bits().to_le_bytes());
        self.0[TIMESTAMP..TIMESTAMP + 8].copy_from_slice(&s.timestamp_ms.to_le_bytes());
    }

    #[inline]
    fn touched(&self) -> u32 {
        u32::from_le_bytes(self.word(TOUCHED))
    }

    #[inline]
    fn set_touched(&mut self, now: u32) {
        self.0[TOUCHED..TOUCHED + 4].copy_from_slice(&now.to_le_bytes());
    }

    /// Takes `sample` unless it is older than the stored one (not for stale
    /// markers, which remove the series); either way refreshes the TTL.
    #[inline]
    fn update(&mut self, sample: Sample, now: u32) -> Effect {
        self.set_touched(now);
        if sample.timestamp_ms < self.sample().timestamp_ms {
            return Effect::OutOfOrder;
        }
        self.set_sample(sample);
        Effect::Updated
    }

    fn flags(&self) -> KeyFlags {
        KeyFlags::from_bits(self.0[FLAGS])
    }
}

/// All series of one metric name.
pub struct Metric {
    shards: Box<[RwLock<HashTable<Entry>>]>,
    len: AtomicUsize,
    bad_le: AtomicUsize,
    bad_quantile: AtomicUsize,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[inline]
fn shard_of(hash: u64) -> usize {
    // hashbrown uses the low bits for the bucket and the top seven for its
    // control bytes; take the shard from bits in between so neither degrades.
    ((hash >> 32) as usize) & (SHARDS - 1)
}

impl Metric {
    fn new() -> Self {
        Metric {
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
            len: AtomicUsize::new(0),
            bad_le: AtomicUsize::new(0),
            bad_quantile: AtomicUsize::new(0),
        }
    }

    /// Number of live series of this name.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Does this name have no live series?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Does any series of this name carry an `le` the text parser rejects?
    pub fn has_bad_le(&self) -> bool {
        self.bad_le.load(Ordering::Relaxed) > 0
    }

    /// Does any series of this name carry a `quantile` the text parser rejects?
    pub fn has_bad_quantile(&self) -> bool {
        self.bad_quantile.load(Ordering::Relaxed) > 0
    }

    /// Calls `f(key, value, timestamp_ms)` for every series in shard `i`,
    /// holding only that shard's read lock.
    pub fn for_each_in_shard(&self, i: usize, mut f: impl FnMut(&[u8], f64, i64)) {
        for e in read(&self.shards[i]).iter() {
            let s = e.sample();
            f(e.key(), s.value, s.timestamp_ms);
        }
    }

    fn added(&self, flags: KeyFlags) {
        self.len.fetch_add(1, Ordering::Relaxed);
        if flags.bad_le() {
            self.bad_le.fetch_add(1, Ordering::Relaxed);
        }
        if flags.bad_quantile() {
            self.bad_quantile.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn removed(&self, flags: KeyFlags) {
        self.len.fetch_sub(1, Ordering::Relaxed);
        if flags.bad_le() {
            self.bad_le.fetch_sub(1, Ordering::Relaxed);
        }
        if flags.bad_quantile() {
            self.bad_quantile.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What applying one series update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Created,
    Updated,
    /// Older than the stored sample: kept the stored one, refreshed the TTL.
    OutOfOrder,
    /// A stale marker removed the series.
    Removed,
    /// A stale marker for a series that is not stored.
    Ignored,
}

/// The result of [`Store::apply`].
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Series whose update was accepted (stored, refreshed or removed by a stale marker).
    pub series: u64,
    /// Samples of those series.
    pub samples: u64,
    /// Series created by this request.
    pub created: u64,
    /// Series removed by stale markers.
    pub stale_removed: u64,
    /// Series whose newest sample was older than the stored one.
    pub out_of_order: u64,
    /// What the store refused (series and metadata over the limits).
    pub rejected: Rejections,
}

impl ApplyOutcome {
    fn record(&mut self, update: &SeriesUpdate, result: Result<Effect, Rejection>) {
        match result {
            Ok(effect) => {
                self.series += 1;
                self.samples += u64::from(update.samples);
                match effect {
                    Effect::Created => self.created += 1,
                    Effect::Removed => self.stale_removed += 1,
                    Effect::OutOfOrder => self.out_of_order += 1,
                    Effect::Updated | Effect::Ignored => {}
                }
            }
            Err(rejection) => self.rejected.add(rejection, u64::from(update.samples)),
        }
    }
}

/// A run's updates grouped by shard, each group in request order (so that of
/// two updates of one series in a request the later still wins). One plan
/// serves every run of a request, so its buffers are allocated once.
struct Plan {
    hashes: Vec<u64>,
    /// Per member, in group order: the table bucket its entry likely sits in.
    hints: Vec<u32>,
    /// (index in the run, key hash), grouped by shard.
    members: Vec<(u32, u64)>,
    /// Where each shard's group ends in `members`.
    ends: [u32; SHARDS],
}

/// The updates of one run that fall into one shard.
#[derive(Clone, Copy)]
struct Group<'p> {
    shard: usize,
    members: &'p [(u32, u64)],
}

impl Plan {
    /// A plan with room for runs of up to `series` updates.
    fn with_capacity(series: usize) -> Self {
        Plan {
            hashes: Vec::with_capacity(series),
            hints: Vec::with_capacity(series),
            members: Vec::with_capacity(series),
            ends: [0; SHARDS],
        }
    }

    /// Groups the run whose key hashes `hashes` yields, by a counting sort.
    fn order(&mut self, hashes: impl Iterator<Item = u64>) {
        self.hashes.clear();
        self.hashes.extend(hashes);
        let mut counts = [0u32; SHARDS];
        for &h in &self.hashes {
            counts[shard_of(h)] += 1;
        }
        let mut at = 0;
        let mut starts = [0u32; SHARDS];
        for shard in 0..SHARDS {
            starts[shard] = at;
            at += counts[shard];
            self.ends[shard] = at;
        }
        self.members.clear();
        self.members.resize(self.hashes.len(), (0, 0));
        for (i, &h) in self.hashes.iter().enumerate() {
            let slot = &mut starts[shard_of(h)];
            self.members[*slot as usize] = (i as u32, h);
            *slot += 1;
        }
    }

    /// The non-empty groups, by shard.
    fn groups(&self) -> impl Iterator<Item = Group<'_>> {
        (0..SHARDS).filter_map(move |shard| {
            let start = if shard == 0 { 0 } else { self.ends[shard - 1] } as usize;
            let end = self.ends[shard] as usize;
            (start < end).then(|| Group {
                shard,
                members: &self.members[start..end],
            })
        })
    }
}

/// Limits the store enforces.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Maximum live series; new series beyond it are rejected.
    pub max_series: usize,
    /// Maximum metadata families.
    pub max_metadata: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_series: 1_000_000,
            max_metadata: 100_000,
        }
    }
}

/// Latest sample per series, metadata per family.
pub struct Store {
    metrics: DashMap<Box<str>, Arc<Metric>, foldhash::fast::RandomState>,
    metadata: DashMap<Box<str>, (Metadata, u32), foldhash::fast::RandomState>,
    hasher: SeriesHasher,
    live: AtomicUsize,
    limits: StoreLimits,
    epoch: Instant,
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
        }
    }

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

    /// Applies every series update and metadata entry of `batch`.
    pub fn apply(&self, batch: &WriteBatch) -> ApplyOutcome {
        let now = self.now();
        let mut out = ApplyOutcome::default();
        let mut plan = Plan::with_capacity(batch.series.len());
        // Series come in runs of one metric name (a sender keeps a scrape's
        // families together): one map lookup per run.
        let mut rest = &batch.series[..];
        while let Some(first) = rest.first() {
            let name = batch.name(first);
            let len = rest
                .iter()
                .position(|u| batch.name(u) != name)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(len);
            self.apply_run(batch, name, run, now, &mut plan, &mut out);
            rest = tail;
        }
        for (name, md) in &batch.metadata {
            if let Some(mut slot) = self.metadata.get_mut(name.as_str()) {
                *slot = (md.clone(), now);
            } else if self.metadata.len() >= self.limits.max_metadata {
                out.rejected.add(
                    Rejection {
                        reason: RejectReason::MetadataLimit,
                        detail: format!(
                            "metadata for {name:?} would exceed the limit of {} families",
                            self.limits.max_metadata
                        ),
                    },
                    0,
                );
            } else {
                self.metadata
                    .insert(name.as_str().into(), (md.clone(), now));
            }
        }
        out
    }

    /// Applies a run of updates that share the metric name `name`.
    ///
    /// A short run goes series by series, one shard lock each. A long run
    /// locks every shard it touches once, looks all its entries up from the
    /// tables alone and prefetches their blocks, then applies them in request
    /// order within each shard: with no lock operation between lookups, the
    /// CPU overlaps their cache misses instead of waiting for each in turn.
    fn apply_run(
        &self,
        batch: &WriteBatch,
        name: &str,
        run: &[SeriesUpdate],
        now: u32,
        plan: &mut Plan,
        out: &mut ApplyOutcome,
    ) {
        let creates = run.iter().any(|u| !is_stale_marker(u.latest.value));
        // The map guard is held while the shards are updated, so the sweeper
        // cannot drop this name's Metric between lookup and insert.
        let Some(metric) = self.metric(name, creates) else {
            for u in run {
                let result = if is_stale_marker(u.latest.value) {
                    Ok(Effect::Ignored)
                } else {
                    Err(self.series_limit(batch.key(u)))
                };
                out.record(u, result);
            }
            return;
        };
        if run.len() < GROUPED_RUN {
            for u in run {
                let key = batch.key(u);
                let hash = self.hasher.hash(key.as_bytes());
                let mut table = write(&metric.shards[shard_of(hash)]);
                let result = self.upsert(&metric, &mut table, hash, key, u, now);
                out.record(u, result);
            }
            return;
        }
        plan.order(
            run.iter()
                .map(|u| self.hasher.hash(batch.key(u).as_bytes())),
        );
        let mut hints = std::mem::take(&mut plan.hints);
        hints.clear();
        // Every shard the run touches, locked in shard order (as every writer
        // does, so two runs of one name cannot deadlock) for the whole run:
        // a few microseconds.
        let mut tables: Vec<_> = plan
            .groups()
            .map(|g| (g, write(&metric.shards[g.shard])))
            .collect();
        // First pass: find each update's likely entry from the table alone
        // (hash and key length) and prefetch its block. These lookups do not
        // depend on one another, so their cache misses overlap.
        for (group, table) in &tables {
            for &(i, hash) in group.members {
                let len = HEADER + run[i as usize].key.len as usize;
                let hint = table.find_bucket_index(hash, |e| e.0.len() == len);
                if let Some(e) = hint.and_then(|b| table.get_bucket(b)) {
                    prefetch(&e.0);
                }
                hints.push(hint.map_or(u32::MAX, |b| b as u32));
            }
        }
        // Second pass: apply, the blocks now on their way into the cache. A
        // hinted entry with the same key is the series (keys are unique in a
        // table, wherever an insert since has moved things); anything else
        // takes the full lookup.
        let mut next = hints.iter();
        for (group, table) in &mut tables {
            for &(i, hash) in group.members {
                let u = &run[i as usize];
                let key = batch.key(u);
                let hint = *next.next().expect("one hint per member");
                let result = match table.get_bucket_mut(hint as usize) {
                    Some(e) if e.key() == key.as_bytes() && !is_stale_marker(u.latest.value) => {
                        Ok(e.update(u.latest, now))
                    }
                    _ => self.upsert(&metric, table, hash, key, u, now),
                };
                out.record(u, result);
            }
        }
        drop(tables);
        plan.hints = hints;
    }

    /// The guard of `name`'s Metric, created if needed; `None` when the
    /// name is new and the update cannot create a series (a stale marker, or
    /// the store is full).
    fn metric(&self, name: &str, creates: bool) -> Option<MetricRef<'_>> {
        loop {
            if let Some(m) = self.metrics.get(name) {
                return Some(m);
            }
            if !creates || self.live_series() >= self.limits.max_series {
                return None;
            }
            self.metrics
                .entry(name.into())
                .or_insert_with(|| Arc::new(Metric::new()));
        }
    }

    /// Applies one update to its shard's `table`, locked by the caller.
    fn upsert(
        &self,
        metric: &Metric,
        table: &mut HashTable<Entry>,
        hash: u64,
        key: &str,
        update: &SeriesUpdate,
        now: u32,
    ) -> Result<Effect, Rejection> {
        let sample = update.latest;
        let stale = is_stale_marker(sample.value);
        let entry = table.entry(
            hash,
            |e| e.key() == key.as_bytes(),
            |e| self.hasher.hash(e.key()),
        );
        match entry {
            TableEntry::Occupied(mut occupied) => {
                let e = occupied.get_mut();
                if !stale || sample.timestamp_ms < e.sample().timestamp_ms {
                    return Ok(e.update(sample, now));
                }
                let (e, _) = occupied.remove();
                metric.removed(e.flags());
                self.live.fetch_sub(1, Ordering::Relaxed);
                Ok(Effect::Removed)
            }
            TableEntry::Vacant(_) if stale => Ok(Effect::Ignored),
            TableEntry::Vacant(vacant) => {
                if self.live.fetch_add(1, Ordering::Relaxed) >= self.limits.max_series {
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    return Err(self.series_limit(key));
                }
                vacant.insert(Entry::new(key, sample, now, update.key.flags));
                metric.added(update.key.flags);
                Ok(Effect::Created)
            }
        }
    }

    fn series_limit(&self, key: &str) -> Rejection {
        Rejection {
            reason: RejectReason::SeriesLimit,
            detail: format!(
                "new series {key} would exceed the limit of {} live series",
                self.limits.max_series
            ),
        }
    }

    /// Removes series and metadata not updated for `ttl`; returns how many
    /// series were removed. Takes one shard lock at a time.
    pub fn sweep(&self, ttl: Duration) -> usize {
        let ttl = ttl.as_secs().min(u64::from(u32::MAX)) as u32;
        let now = self.now();
        let expired = |touched: u32| now.saturating_sub(touched) >= ttl;
        let mut removed = 0;
        for (_, metric) in self.metric_names() {
            for shard in metric.shards.iter() {
                write(shard).retain(|e| {
                    if expired(e.touched()) {
                        metric.removed(e.flags());
                        removed += 1;
                        false
                    } else {
                        true
                    }
                });
            }
        }
        self.live.fetch_sub(removed, Ordering::Relaxed);
        // Writers hold the map guard while they insert, so an emptied Metric
        // cannot gain a series between this check and its removal.
        self.metrics.retain(|_, m| !m.is_empty());
        self.metadata.retain(|_, (_, touched)| !expired(*touched));
        removed
    }

    /// A snapshot of the metric names and their series tables, unordered.
    pub fn metric_names(&self) -> Vec<(Box<str>, Arc<Metric>)> {
        self.metrics
            .iter()
            .map(|r| (r.key().clone(), Arc::clone(r.value())))
            .collect()
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
        for (_, m) in self.metric_names() {
            for shard in m.shards.iter() {
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
    use crate::model::{STALE_NAN_BITS, SeriesLimits, SeriesUpdate, build_key};

    type Labels<'a> = &'a [(&'a str, &'a str)];

    fn batch(items: &[(Labels, f64, i64)]) -> WriteBatch {
        let mut b = WriteBatch::default();
        let mut scratch = Vec::new();
        for (labels, value, ts) in items {
            let key = build_key(
                labels.iter().copied(),
                &SeriesLimits::default(),
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
            });
        }
        b
    }

    const A: &[(&str, &str)] = &[("__name__", "m"), ("i", "a")];
    const B: &[(&str, &str)] = &[("__name__", "m"), ("i", "b")];

    #[test]
    fn latest_timestamp_wins_and_equal_timestamps_take_the_later_write() {
        let s = Store::new(StoreLimits::default());
        s.apply(&batch(&[(A, 1.0, 100)]));
        let out = s.apply(&batch(&[(A, 0.5, 50)]));
        assert_eq!(out.out_of_order, 1);
        assert_eq!(s.get(r#"m{i="a"}"#).unwrap().value, 1.0);
        s.apply(&batch(&[(A, 2.0, 100)]));
        assert_eq!(s.get(r#"m{i="a"}"#).unwrap().value, 2.0);
        assert_eq!(s.live_series(), 1);
    }

    #[test]
    fn stale_marker_removes_only_when_not_older() {
        let s = Store::new(StoreLimits::default());
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
        let s = Store::with_hasher(StoreLimits::default(), SeriesHasher::Constant);
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
        let mut s = Store::new(StoreLimits::default());
        // Start the clock well past zero so that backdating does not saturate.
        s.epoch = Instant::now()
            .checked_sub(Duration::from_secs(1000))
            .unwrap();
        s.apply(&batch(&[(A, 1.0, 1)]));
        s.backdate(120);
        s.apply(&batch(&[(&[("__name__", "fresh")], 1.0, 1)]));
        assert_eq!(s.sweep(Duration::from_secs(60)), 1);
        assert_eq!(s.live_series(), 1);
        assert!(s.get(r#"m{i="a"}"#).is_none());
        assert!(s.get("fresh").is_some());
        assert_eq!(s.metric_names().len(), 1);
    }

    #[test]
    fn a_long_run_is_applied_in_request_order_per_series() {
        let s = Store::new(StoreLimits::default());
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
        assert_eq!(out.out_of_order, thirds(0) as u64);
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
