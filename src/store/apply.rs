//! Applying a batch: its updates grouped by (metric name, shard), whatever
//! their order in the request.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hashbrown::HashTable;

use super::Store;
use super::entry::{Effect, Entry, Extras};
use super::table::{Metric, SHARDS, Shard, shard_of, write};
use crate::model::{
    Metadata, NO_EXEMPLAR, NO_HISTOGRAM, RejectReason, Rejection, Rejections, SeriesUpdate,
    WriteBatch, is_stale_marker,
};

/// Asks the CPU to bring `block` into the cache; a hint that reads nothing.
#[inline(always)]
fn prefetch(block: &[u8]) {
    for line in block.chunks(64) {
        prefetch_address(line.as_ptr() as usize);
    }
}

/// Asks the CPU to bring the cache line holding `address` into the cache.
/// Any address will do: a wrong one costs a wasted fetch, nothing else.
#[inline(always)]
fn prefetch_address(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, reads nothing the program can see
    // and has no architectural effect, whatever the address; the SSE it
    // needs is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            std::ptr::without_provenance(address),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Where a table's lookups of a hash start, to prefetch them: hashbrown
/// keeps a table as one allocation, the slots in reverse order and then the
/// control bytes, and starts probing a hash at bucket `hash & (buckets - 1)`
/// (its `h1` and `probe_seq`). Found from any full bucket's address; if
/// hashbrown ever lays its tables out otherwise, the prefetches fetch the
/// wrong lines and the lookups are only as fast as without them.
struct Probes {
    /// Address of the control bytes (the end of slot 0).
    ctrl: usize,
    mask: usize,
}

impl Probes {
    fn of(table: &HashTable<Entry>) -> Option<Probes> {
        let bucket = table.iter_buckets().next()?;
        let slot = table.get_bucket(bucket)? as *const Entry as usize;
        Some(Probes {
            ctrl: slot.wrapping_add((bucket + 1) * size_of::<Entry>()),
            mask: table.num_buckets() - 1,
        })
    }

    /// Prefetches the first control bytes and slot a lookup of `hash` reads.
    #[inline(always)]
    fn prefetch(&self, hash: u64) {
        let bucket = hash as usize & self.mask;
        prefetch_address(self.ctrl.wrapping_add(bucket));
        prefetch_address(
            self.ctrl
                .wrapping_sub(bucket.wrapping_add(1).wrapping_mul(size_of::<Entry>())),
        );
    }
}

/// A push onto a remote-written series takes it over: from then on it is
/// its group's (exposed without a timestamp, kept until the group goes,
/// not for `--series.ttl`), as the group's registry says it is. A remote
/// write onto a pushed series leaves it the group's.
#[inline(always)]
fn take_over(metric: &Metric, e: &mut Entry, update: &SeriesUpdate) {
    let (held, pushed) = (e.traits(), update.key.traits);
    if pushed.pushed() && !held.pushed() {
        e.set_traits(pushed);
        metric.retraited(held, pushed);
    }
}

/// Writes `update`'s sample into `e`, the series it names (not a stale
/// marker's removal): a remote writer's sample if not older than the one
/// held; a push's in any case, taking a remote-written series over (a push
/// replaces what its group holds, even a sample a writer stamped later).
#[inline(always)]
fn write_sample(metric: &Metric, e: &mut Entry, update: &SeriesUpdate, now: u32) -> Effect {
    take_over(metric, e, update);
    if update.key.traits.pushed() {
        e.replace(update.latest, now)
    } else {
        e.update(update.latest, now)
    }
}

/// Does applying `update` to `e` touch the shard's [`Extras`]: an
/// exemplar or a native histogram to keep, or a histogram a float replaces?
#[inline(always)]
fn has_extras(e: &Entry, update: &SeriesUpdate) -> bool {
    // Both "none"s are `u32::MAX`: one compare tells whether either is set.
    const _: () = assert!(NO_EXEMPLAR == u32::MAX && NO_HISTOGRAM == u32::MAX);
    (update.exemplar & update.histogram) != u32::MAX || e.has_histogram()
}

/// Keeps what `update` carries besides its sample, `effect` being what the
/// sample did to `e`: its exemplar, unless `e`'s is newer; its native
/// histogram as `e`'s latest sample when that sample was taken; and when a
/// float sample was taken, drops the histogram `e` held.
#[cold]
fn keep_extras(
    metric: &Metric,
    extras: &mut Extras,
    e: &mut Entry,
    batch: &WriteBatch,
    update: &SeriesUpdate,
    effect: Effect,
) {
    if let Some((x, labels)) = batch.exemplar(update) {
        extras.set_exemplar(e, labels, x.value, x.timestamp_ms);
    }
    if !matches!(effect, Effect::Created | Effect::Updated) {
        return;
    }
    match batch.histogram(update).and_then(|h| h.latest.as_ref()) {
        Some(h) => {
            if extras.set_histogram(e, h) {
                metric.histogram_changed(true);
            }
        }
        None => {
            if extras.clear_histogram(e) {
                metric.histogram_changed(false);
            }
        }
    }
}

/// The result of [`Store::apply`].
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Series whose update was accepted (stored, refreshed or removed by a stale marker).
    pub series: u64,
    /// Samples of those series.
    pub samples: u64,
    /// Native histograms of those series.
    pub histograms: u64,
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
    fn record(
        &mut self,
        batch: &WriteBatch,
        update: &SeriesUpdate,
        result: Result<Effect, Rejection>,
    ) {
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
            Err(rejection) => {
                // Counted as written when the batch began applying.
                let histograms = u64::from(batch.histogram(update).map_or(0, |h| h.written));
                self.histograms = self.histograms.saturating_sub(histograms);
                self.rejected
                    .add(rejection, u64::from(update.samples) + histograms);
            }
        }
    }
}

/// How many distinct names a request may have before they are found by
/// hash rather than by a scan of the ones seen so far.
const SCANNED_NAMES: usize = 8;

/// One distinct metric name of a request.
struct Name<'b> {
    name: &'b str,
    /// Does any of its updates create a series (anything but a stale marker)?
    creates: bool,
    /// Its Metric, once looked up; `None` when it has none and cannot get
    /// one (only stale markers, or the store is full).
    metric: Option<Arc<Metric>>,
    /// Its Metric's place in the lock order, among the request's Metrics.
    rank: u32,
}

/// The distinct names of a request, each found once per update: the name of
/// the update before first (a contiguous family), then a scan of the few
/// seen so far, then a hash table once there are many.
struct Names<'b> {
    list: Vec<Name<'b>>,
    index: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    last: usize,
}

impl<'b> Names<'b> {
    fn new() -> Self {
        Names {
            list: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::FixedState::default(),
            last: 0,
        }
    }

    /// The index of `name`, added if new.
    #[inline]
    fn index_of(&mut self, name: &'b str) -> usize {
        if self.list.get(self.last).is_some_and(|n| n.name == name) {
            return self.last;
        }
        let found = if self.list.len() <= SCANNED_NAMES {
            self.list.iter().position(|n| n.name == name)
        } else {
            let list = &self.list;
            let hash = self.hasher.hash_one(name);
            self.index
                .find(hash, |&i| list[i as usize].name == name)
                .map(|&i| i as usize)
        };
        let i = found.unwrap_or_else(|| self.add(name));
        self.last = i;
        i
    }

    fn add(&mut self, name: &'b str) -> usize {
        let i = self.list.len();
        self.list.push(Name {
            name,
            creates: false,
            metric: None,
            rank: 0,
        });
        if self.list.len() > SCANNED_NAMES {
            let (list, hasher) = (&self.list, &self.hasher);
            let rehash = |&j: &u32| hasher.hash_one(list[j as usize].name);
            if self.index.is_empty() {
                // Past the scan's reach: index every name so far.
                for j in 0..=i as u32 {
                    self.index
                        .insert_unique(hasher.hash_one(list[j as usize].name), j, rehash);
                }
            } else {
                self.index
                    .insert_unique(hasher.hash_one(name), i as u32, rehash);
            }
        }
        i
    }
}

/// A request's updates grouped by (Metric, shard) in lock order, each group
/// in request order (so that of two updates of one series in a request the
/// later still wins, both landing in one group).
struct Plan {
    /// Per update: its key hash and the index of its name in `Names`.
    hashes: Vec<u64>,
    names: Vec<u32>,
    /// Per update: its group, rank × SHARDS + shard, or `NO_GROUP`.
    keys: Vec<u32>,
    /// Per update: has it been applied (its group's window is done)?
    applied: Vec<bool>,
    /// (index in the request, key hash), grouped.
    members: Vec<(u32, u64)>,
    /// Scratch of the sort.
    sorted: Vec<u32>,
    counts: Vec<u32>,
    /// Each group: its Metric's rank, its shard, and its end in `members`.
    groups: Vec<(u32, u32, u32)>,
    /// Per member, in group order: the table bucket its entry likely sits in.
    hints: Vec<u32>,
}

/// The group of an update whose name has no Metric, or already applied.
const NO_GROUP: u32 = u32::MAX;

/// When an apply happens (the store-clock second) and how many live
/// series it may reach.
#[derive(Clone, Copy)]
struct Bounds {
    now: u32,
    max_series: usize,
}

/// Updates per window: a writer locks a window's shards, applies its
/// updates and unlocks before the next. Enough lookups in flight to overlap
/// their cache misses; few enough that a request on the same names as
/// another waits for a window, not the whole request.
const WINDOW: u32 = 128;

/// Up to this many possible groups (names × shards), the plan sorts in one
/// counting pass over them all; beyond, in two (by shard, then by name).
const ONE_PASS_GROUPS: usize = 16 * SHARDS;

impl Plan {
    fn with_capacity(series: usize) -> Self {
        Plan {
            hashes: Vec::with_capacity(series),
            names: Vec::with_capacity(series),
            keys: Vec::with_capacity(series),
            applied: vec![false; series],
            members: Vec::with_capacity(series),
            sorted: Vec::with_capacity(series),
            counts: Vec::new(),
            groups: Vec::new(),
            hints: Vec::with_capacity(series),
        }
    }

    /// Groups the updates not yet applied whose name has a Metric by
    /// (rank, shard), by a counting sort (stable, so each group keeps
    /// request order).
    fn order(&mut self, names: &[Name<'_>], ranks: usize) {
        self.keys.clear();
        let pending = self.hashes.iter().zip(&self.names).zip(&self.applied);
        self.keys.extend(pending.map(|((&h, &n), &applied)| {
            let name = &names[n as usize];
            match name.metric {
                Some(_) if !applied => name.rank * SHARDS as u32 + shard_of(h) as u32,
                _ => NO_GROUP,
            }
        }));
        self.members.clear();
        self.groups.clear();
        if ranks * SHARDS <= ONE_PASS_GROUPS {
            // One counting sort over every (rank, shard) group; the groups
            // are read off the counts.
            self.counts.clear();
            self.counts.resize(ranks * SHARDS, 0);
            for &k in self.keys.iter().filter(|&&k| k != NO_GROUP) {
                self.counts[k as usize] += 1;
            }
            let mut at = 0;
            for (g, c) in self.counts.iter_mut().enumerate() {
                if *c > 0 {
                    let (rank, shard) = (g / SHARDS, g % SHARDS);
                    self.groups.push((rank as u32, shard as u32, at + *c));
                }
                (*c, at) = (at, at + *c);
            }
            self.members.resize(at as usize, (0, 0));
            for (i, &k) in self.keys.iter().enumerate() {
                if k != NO_GROUP {
                    let slot = &mut self.counts[k as usize];
                    self.members[*slot as usize] = (i as u32, self.hashes[i]);
                    *slot += 1;
                }
            }
            return;
        }
        // Many names: by shard, then stably by rank.
        self.counts.clear();
        self.counts.resize(SHARDS, 0);
        for &k in self.keys.iter().filter(|&&k| k != NO_GROUP) {
            self.counts[k as usize % SHARDS] += 1;
        }
        let total = prefix_sums(&mut self.counts);
        self.sorted.clear();
        self.sorted.resize(total as usize, 0);
        for (i, &k) in self.keys.iter().enumerate() {
            if k != NO_GROUP {
                let slot = &mut self.counts[k as usize % SHARDS];
                self.sorted[*slot as usize] = i as u32;
                *slot += 1;
            }
        }
        self.counts.clear();
        self.counts.resize(ranks, 0);
        for &i in &self.sorted {
            self.counts[self.keys[i as usize] as usize / SHARDS] += 1;
        }
        prefix_sums(&mut self.counts);
        self.members.resize(self.sorted.len(), (0, 0));
        for &i in &self.sorted {
            let slot = &mut self.counts[self.keys[i as usize] as usize / SHARDS];
            self.members[*slot as usize] = (i, self.hashes[i as usize]);
            *slot += 1;
        }
        let mut current = NO_GROUP;
        for (at, &(i, _)) in self.members.iter().enumerate() {
            let key = self.keys[i as usize];
            if key != current {
                current = key;
                let (rank, shard) = (key / SHARDS as u32, key % SHARDS as u32);
                self.groups.push((rank, shard, at as u32));
            }
            self.groups.last_mut().expect("a group").2 = at as u32 + 1;
        }
    }
}

/// Turns counts into each one's start, in place; returns the total.
fn prefix_sums(counts: &mut [u32]) -> u32 {
    let mut at = 0;
    for c in counts.iter_mut() {
        (*c, at) = (at, at + *c);
    }
    at
}

impl Store {
    /// Applies every series update and metadata entry of `batch`.
    pub fn apply(&self, batch: &WriteBatch) -> ApplyOutcome {
        self.apply_at(batch, self.now())
    }

    /// [`Store::apply`] as if at store-clock second `now`: what a loaded
    /// snapshot uses to give each entry the age it had.
    pub(super) fn apply_at(&self, batch: &WriteBatch, now: u32) -> ApplyOutcome {
        self.apply_hashed_at(batch, now, None, 0)
    }

    /// [`Store::apply_at`] given the store's hash of every series' key
    /// (`hashes[i]` for `batch.series[i]`), when the caller has them, and
    /// `extra` series it may create past `--limits.series` because the
    /// caller removes as many right after (a push replacing a group's
    /// series: its new ones are written before the old ones leave).
    pub(super) fn apply_hashed_at(
        &self,
        batch: &WriteBatch,
        now: u32,
        hashes: Option<&[u64]>,
        extra: usize,
    ) -> ApplyOutcome {
        let at = Bounds {
            now,
            max_series: self.limits.max_series.saturating_add(extra),
        };
        // Every histogram of the batch is written unless its series is
        // refused (`ApplyOutcome::record` takes those off): no per-update
        // cost for the batches without any.
        let mut out = ApplyOutcome {
            histograms: batch.histograms.iter().map(|h| u64::from(h.written)).sum(),
            ..ApplyOutcome::default()
        };
        self.apply_series(batch, at, hashes, &mut out);
        for (name, md) in &batch.metadata {
            self.apply_metadata(name, md, now, &mut out);
        }
        out
    }

    /// Stores family `name`'s metadata `md`, last updated at `now`, within
    /// `--limits.metadata`.
    pub(super) fn apply_metadata(
        &self,
        name: &str,
        md: &Metadata,
        now: u32,
        out: &mut ApplyOutcome,
    ) {
        if let Some(mut slot) = self.metadata.get_mut(name) {
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
            self.metadata.insert(name.into(), (md.clone(), now));
        }
    }

    /// Applies the series updates of `batch`, whatever their order.
    ///
    /// Each distinct name is looked up once. The updates are grouped by
    /// (Metric, shard) and taken in windows of whole groups: each group's
    /// shard is locked once, in lock order, while its window is applied;
    /// within a window all entries are looked up from the tables alone and
    /// their blocks prefetched before any is applied, in request order
    /// within each group: with no lock operation between lookups, the CPU
    /// overlaps their cache misses instead of waiting for each in turn. A
    /// name whose Metric the sweeper retired meanwhile is looked up again
    /// and the updates not yet applied are planned anew.
    fn apply_series(
        &self,
        batch: &WriteBatch,
        at: Bounds,
        hashes: Option<&[u64]>,
        out: &mut ApplyOutcome,
    ) {
        let series = &batch.series;
        let mut plan = Plan::with_capacity(series.len());
        let mut names = Names::new();
        for u in series {
            let n = names.index_of(batch.name(u));
            names.list[n].creates |= !is_stale_marker(u.latest.value);
            plan.names.push(n as u32);
        }
        match hashes {
            Some(hashes) => {
                debug_assert_eq!(hashes.len(), series.len(), "a hash per series");
                plan.hashes.extend_from_slice(hashes);
            }
            None => plan.hashes.extend(
                series
                    .iter()
                    .map(|u| self.hasher.hash(batch.key(u).as_bytes())),
            ),
        }
        let mut resolve: Vec<usize> = (0..names.list.len()).collect();
        loop {
            for &n in &resolve {
                let name = &mut names.list[n];
                name.metric = self.metric(name.name, name.creates, at.max_series);
            }
            // Lock order across names: by the Metric's address, which no
            // other Metric alive shares.
            let mut ranked: Vec<usize> = (0..names.list.len())
                .filter(|&n| names.list[n].metric.is_some())
                .collect();
            ranked.sort_unstable_by_key(|&n| names.list[n].metric.as_ref().map(Arc::as_ptr));
            for (rank, &n) in ranked.iter().enumerate() {
                names.list[n].rank = rank as u32;
            }
            let metrics: Vec<&Metric> = ranked
                .iter()
                .filter_map(|&n| names.list[n].metric.as_deref())
                .collect();
            plan.order(&names.list, metrics.len());
            match self.apply_groups(batch, &metrics, &mut plan, at, out) {
                Ok(()) => break,
                Err(retired) => resolve = retired.into_iter().map(|r| ranked[r]).collect(),
            }
        }
        // The updates of names with no Metric: nothing to look up.
        for (u, &applied) in series.iter().zip(&plan.applied) {
            if !applied {
                let result = if is_stale_marker(u.latest.value) {
                    Ok(Effect::Ignored)
                } else {
                    Err(self.series_limit(batch.key(u)))
                };
                out.record(batch, u, result);
            }
        }
    }

    /// Applies the plan's groups window by window: each window's shards
    /// locked, in lock order, then its updates applied in three passes;
    /// or, once the sweeper has retired one of `metrics` (ranks returned)
    /// since it was looked up, stops before that window. `plan.applied`
    /// says which updates are done.
    fn apply_groups(
        &self,
        batch: &WriteBatch,
        metrics: &[&Metric],
        plan: &mut Plan,
        bounds: Bounds,
        out: &mut ApplyOutcome,
    ) -> Result<(), Vec<usize>> {
        let series = &batch.series;
        let groups = &plan.groups;
        let mut tables = Vec::new();
        let (mut first, mut start) = (0, 0);
        while first < groups.len() {
            // A window: whole groups, until it holds WINDOW updates.
            let mut last = first + 1;
            while last < groups.len() && groups[last - 1].2 - start < WINDOW {
                last += 1;
            }
            let end = groups[last - 1].2;
            // Its shards, locked in lock order (as every writer does, so two
            // writers cannot deadlock), each once; a writer holds one
            // window's locks at a time, so concurrent requests on the same
            // names pipeline rather than wait for each other's whole request.
            tables.clear();
            let mut retired = Vec::new();
            let mut checked = None;
            let mut at = start;
            for &(rank, shard, group_end) in &groups[first..last] {
                let metric = metrics[rank as usize];
                let table = write(&metric.shards[shard as usize]);
                // Read under a shard lock: the sweeper retires a Metric
                // holding all of them.
                if checked != Some(rank) {
                    checked = Some(rank);
                    if metric.is_retired() {
                        retired.push(rank as usize);
                    }
                }
                tables.push((rank, at as usize..group_end as usize, table));
                at = group_end;
            }
            if !retired.is_empty() {
                return Err(retired);
            }
            // First, the tables' lines the lookups read, for every member:
            // at a million series the slots alone are 24 MiB.
            for (_, members, shard) in &tables {
                if let Some(probes) = shard.series.table().and_then(Probes::of) {
                    for &(_, hash) in &plan.members[members.clone()] {
                        probes.prefetch(hash);
                    }
                }
            }
            // Then find each update's likely entry from the table alone (the
            // full hash) and prefetch its block. These lookups do not depend
            // on one another, so their cache misses overlap.
            let hints = &mut plan.hints;
            hints.clear();
            for (_, members, shard) in &tables {
                let series = &shard.series;
                for &(i, hash) in &plan.members[members.clone()] {
                    let hint = series.hint(hash);
                    if let Some(e) = hint.and_then(|at| series.at(at)) {
                        prefetch(e.block());
                    }
                    hints.push(hint.map_or(u32::MAX, |b| b as u32));
                    // The key too (reading the update here brings it in):
                    // planned long before, in a batch larger than the cache
                    // (a 100k-series push is 10 MB), and read here in group
                    // order, not in order. Its first and last byte.
                    let key = batch.series[i as usize].key;
                    let at = batch.keys.as_ptr() as usize + key.start as usize;
                    prefetch_address(at);
                    prefetch_address(at + (key.len as usize).saturating_sub(1));
                }
            }
            // Last, apply, the blocks now on their way into the cache. A
            // hinted entry with the same key is the series (keys are unique
            // in a table, wherever an insert since has moved things);
            // anything else takes the full lookup.
            let mut next = hints.iter();
            for (rank, members, shard) in &mut tables {
                let metric = metrics[*rank as usize];
                let shard = &mut **shard;
                for &(i, hash) in &plan.members[members.clone()] {
                    let u = &series[i as usize];
                    let key = batch.key(u);
                    let hint = *next.next().expect("one hint per member");
                    let result = match shard.series.at_mut(hint as usize) {
                        Some(e)
                            if e.key() == key.as_bytes() && !is_stale_marker(u.latest.value) =>
                        {
                            let effect = write_sample(metric, e, u, bounds.now);
                            if has_extras(e, u) {
                                keep_extras(metric, &mut shard.extras, e, batch, u, effect);
                            }
                            Ok(effect)
                        }
                        _ => self.upsert(metric, shard, hash, batch, u, bounds),
                    };
                    out.record(batch, u, result);
                    plan.applied[i as usize] = true;
                }
            }
            (first, start) = (last, end);
        }
        Ok(())
    }

    /// `name`'s Metric, created if needed; `None` when the name is new and
    /// no update of it can create a series (only stale markers, or the
    /// store is full).
    fn metric(&self, name: &str, creates: bool, max_series: usize) -> Option<Arc<Metric>> {
        loop {
            if let Some(m) = self.metrics.get(name) {
                return Some(Arc::clone(&m));
            }
            if !creates || self.live_series() >= max_series {
                return None;
            }
            self.metrics
                .entry(name.into())
                .or_insert_with(|| Arc::new(Metric::new()));
        }
    }

    /// Applies one update to its `shard`, locked by the caller.
    fn upsert(
        &self,
        metric: &Metric,
        shard: &mut Shard,
        hash: u64,
        batch: &WriteBatch,
        update: &SeriesUpdate,
        at: Bounds,
    ) -> Result<Effect, Rejection> {
        let key = batch.key(update);
        let sample = update.latest;
        let stale = is_stale_marker(sample.value);
        let Shard { series, extras } = shard;
        let same = |e: &Entry| e.key() == key.as_bytes();
        if let Some(e) = series.find_mut(hash, same) {
            // A stale marker is a remote writer's (a push has none): a
            // pushed series is its group's to remove, not the writer's.
            if stale && e.traits().pushed() {
                return Ok(Effect::Ignored);
            }
            if !stale || sample.timestamp_ms < e.sample().timestamp_ms {
                let effect = write_sample(metric, e, update, at.now);
                if has_extras(e, update) {
                    keep_extras(metric, extras, e, batch, update, effect);
                }
                return Ok(effect);
            }
            let e = series.remove(hash, same).expect("found above");
            extras.forget(&e);
            metric.removed(&e);
            self.live.fetch_sub(1, Ordering::Relaxed);
            return Ok(Effect::Removed);
        }
        if stale {
            return Ok(Effect::Ignored);
        }
        if self.live.fetch_add(1, Ordering::Relaxed) >= at.max_series {
            self.live.fetch_sub(1, Ordering::Relaxed);
            return Err(self.series_limit(key));
        }
        let e = series.insert(Entry::new(key, hash, sample, at.now, update.key.traits));
        metric.added(update.key.traits);
        if has_extras(e, update) {
            keep_extras(metric, extras, e, batch, update, Effect::Created);
        }
        Ok(Effect::Created)
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
