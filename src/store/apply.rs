//! Applying a batch: runs of one metric name, grouped by shard when long.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;

use super::entry::{Effect, Entry, HEADER};
use super::table::{Metric, SHARDS, shard_of, write};
use super::{MetricRef, Store};
use crate::model::{
    RejectReason, Rejection, Rejections, SeriesUpdate, WriteBatch, is_stale_marker,
};

/// Runs of at least this many same-name updates are applied grouped by
/// shard; shorter ones one by one, where grouping costs more than it saves.
pub(super) const GROUPED_RUN: usize = 32;

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

/// The result of [`Store::apply`].
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Series whose update was accepted (stored, refreshed or removed by a stale marker).
    pub series: u64,
    /// Samples of those series.
    pub samples: u64,
    /// Exemplars of those series.
    pub exemplars: u64,
    /// Series created by this request.
    pub created: u64,
    /// Series removed by stale markers.
    pub stale_removed: u64,
    /// Samples not stored because their series' newest sample in the
    /// request was older than the stored one (all its samples were).
    pub out_of_order_samples: u64,
    /// What the store refused (series and metadata over the limits).
    pub rejected: Rejections,
}

impl ApplyOutcome {
    fn record(&mut self, update: &SeriesUpdate, result: Result<Effect, Rejection>) {
        match result {
            Ok(effect) => {
                self.series += 1;
                self.samples += u64::from(update.samples);
                self.exemplars += u64::from(update.exemplars);
                match effect {
                    Effect::Created => self.created += 1,
                    Effect::Removed => self.stale_removed += 1,
                    Effect::OutOfOrder => self.out_of_order_samples += u64::from(update.samples),
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

impl Store {
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
                // Remote-Write 2.0 repeats the metadata with every series:
                // most updates only refresh it.
                if slot.0 != *md {
                    slot.0 = md.clone();
                }
                slot.1 = now;
            } else if self.metadata.len() >= self.limits.max_metadata {
                out.rejected.add_metadata(Rejection {
                    reason: RejectReason::MetadataLimit,
                    detail: format!(
                        "metadata for {name:?} would exceed the limit of {} families",
                        self.limits.max_metadata
                    ),
                });
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
                let hint = table.find_bucket_index(hash, |e| e.block().len() == len);
                if let Some(e) = hint.and_then(|b| table.get_bucket(b)) {
                    prefetch(e.block());
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
                metric.removed(e.traits());
                self.live.fetch_sub(1, Ordering::Relaxed);
                Ok(Effect::Removed)
            }
            TableEntry::Vacant(_) if stale => Ok(Effect::Ignored),
            TableEntry::Vacant(vacant) => {
                if self.live.fetch_add(1, Ordering::Relaxed) >= self.limits.max_series {
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    return Err(self.series_limit(key));
                }
                vacant.insert(Entry::new(key, sample, now, update.key.traits));
                metric.added(update.key.traits);
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
}
