//! The series of one metric name: a fixed array of shards, each a `RwLock`
//! around a hash table of [`Entry`]s keyed by the canonical key.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::entry::{Entry, Extras};
use super::series::Series;
use crate::model::SeriesTraits;

/// Shards per metric name. A power of two; small enough that thousands of
/// names stay cheap (64 empty shards are ~2.5 KiB), large enough that one huge
/// family rarely contends and that a scrape's per-shard part stays small
/// (a 1M-series name renders in ~3 MiB pieces: RSS grows < 5 MiB per scrape).
pub(super) const SHARDS: usize = 64;

/// How the store hashes canonical keys.
#[derive(Clone)]
pub(super) enum SeriesHasher {
    Random(foldhash::fast::RandomState),
    /// Every key hashes alike, so tests can prove collisions never merge series.
    #[cfg(test)]
    Constant,
}

impl SeriesHasher {
    #[inline]
    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        match self {
            SeriesHasher::Random(s) => s.hash_one(key),
            #[cfg(test)]
            SeriesHasher::Constant => 42,
        }
    }
}

/// The shard a key hash falls into.
#[inline]
pub(super) fn shard_of(hash: u64) -> usize {
    // hashbrown uses the low bits for the bucket and the top seven for its
    // control bytes; take the shard from bits in between so neither degrades.
    ((hash >> 32) as usize) & (SHARDS - 1)
}

pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// One shard of a name: its series, and the exemplars of the few that
/// have one, under one lock.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) series: Series,
    pub(super) extras: Extras,
}

/// All series of one metric name.
pub(super) struct Metric {
    pub(super) shards: Box<[RwLock<Shard>]>,
    len: AtomicUsize,
    /// Live series per [`SeriesTraits`] bit.
    with_trait: [AtomicUsize; SeriesTraits::COUNT],
    /// Live series whose latest sample is a native histogram.
    histograms: AtomicUsize,
    /// Set by the sweeper, holding every shard, as it removes this empty
    /// Metric from the map: a writer that looked the name up before must
    /// look it up again. Read and written only under a shard lock.
    retired: AtomicBool,
}

impl Metric {
    pub(super) fn new() -> Self {
        Metric {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            len: AtomicUsize::new(0),
            with_trait: Default::default(),
            histograms: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// Has the sweeper removed this Metric from the map? Only meaningful
    /// under one of its shard locks.
    #[inline]
    pub(super) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// Retires this Metric if it has no series, for the sweeper to remove
    /// it from the map: with every shard locked, no writer is adding a
    /// series, and each writer checks [`Metric::is_retired`] under the shard
    /// lock it takes before adding one. Cheap for a Metric with series.
    pub(super) fn retire_if_empty(&self) -> bool {
        if !self.is_empty() {
            return false;
        }
        let _all: Vec<_> = self.shards.iter().map(write).collect();
        let empty = self.is_empty();
        if empty {
            self.retired.store(true, Ordering::Relaxed);
        }
        empty
    }

    /// Number of live series of this name (exact when no write is in flight).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Does this name have no live series?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Does any live series of this name carry one of the traits whose
    /// [`SeriesTraits`] bits are set in `traits`?
    pub fn any_with(&self, traits: u8) -> bool {
        (0..SeriesTraits::COUNT)
            .filter(|bit| traits & (1 << bit) != 0)
            .any(|bit| self.with_trait[bit].load(Ordering::Relaxed) > 0)
    }

    pub(super) fn added(&self, traits: SeriesTraits) {
        self.len.fetch_add(1, Ordering::Relaxed);
        self.count_traits(traits, |c| c.fetch_add(1, Ordering::Relaxed));
    }

    /// A series of this name changed traits from `old` to `new`.
    pub(super) fn retraited(&self, old: SeriesTraits, new: SeriesTraits) {
        self.count_traits(old, |c| c.fetch_sub(1, Ordering::Relaxed));
        self.count_traits(new, |c| c.fetch_add(1, Ordering::Relaxed));
    }

    /// `e` leaves this name's table.
    pub(super) fn removed(&self, e: &Entry) {
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.count_traits(e.traits(), |c| c.fetch_sub(1, Ordering::Relaxed));
        if e.has_histogram() {
            self.histograms.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Live series whose latest sample is a native histogram (exact when
    /// no write is in flight).
    pub fn histograms(&self) -> usize {
        self.histograms.load(Ordering::Relaxed)
    }

    /// One series' latest sample became (`true`) or stopped being a native
    /// histogram.
    pub(super) fn histogram_changed(&self, now_one: bool) {
        if now_one {
            self.histograms.fetch_add(1, Ordering::Relaxed);
        } else {
            self.histograms.fetch_sub(1, Ordering::Relaxed);
        }
    }

    #[inline]
    fn count_traits(&self, traits: SeriesTraits, f: impl Fn(&AtomicUsize) -> usize) {
        let bits = traits.bits();
        if bits != 0 {
            for (bit, count) in self.with_trait.iter().enumerate() {
                if bits & (1 << bit) != 0 {
                    f(count);
                }
            }
        }
    }
}
