//! The layout of one live series: a single heap block; and the side table
//! of the few series' exemplars and native histograms.

use std::collections::HashMap;

use crate::model::{NativeHistogram, Sample, SeriesTraits};
use crate::store::view::ExemplarRef;

/// One live series: a single heap block holding a fixed header — the latest
/// sample, the TTL clock, the traits, whether it has an exemplar or a
/// native histogram — and then
/// the canonical key; and, in
/// the table slot beside the block's pointer and length, the key's hash.
///
/// One block, not a struct with a boxed key: an update touches one cache
/// line that holds both the sample and the key's start, and the render reads
/// each series front to back. The hash sits in the 24-byte slot, not in the
/// block: a lookup rules out every other key without touching the heap, and
/// a table that grows moves its slots without reading a single block (at a
/// million series, rehashing from the keys cost a cache miss and a hash per
/// series on the way).
pub(super) struct Entry {
    block: Box<[u8]>,
    hash: u64,
}

const VALUE: usize = 0;
const TIMESTAMP: usize = 8;
const TOUCHED: usize = 16;
const TRAITS: usize = 20;
/// Bit 0: the series has an exemplar in its shard's [`Extras`]; bit 1:
/// its latest sample is the native histogram there.
const FLAGS: usize = 21;
const HAS_EXEMPLAR: u8 = 1;
const HAS_HISTOGRAM: u8 = 2;
/// Bytes before the key.
pub(super) const HEADER: usize = 22;

/// What applying one series update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    Created,
    Updated,
    /// Older than the stored sample: kept the stored one, refreshed the TTL.
    OutOfOrder,
    /// A stale marker removed the series.
    Removed,
    /// A stale marker for a series that is not stored.
    Ignored,
}

impl Entry {
    pub(super) fn new(
        key: &str,
        hash: u64,
        sample: Sample,
        touched: u32,
        traits: SeriesTraits,
    ) -> Self {
        // The header is written on the stack, then copied with the key into
        // an allocation of the block's exact size.
        let mut header = [0u8; HEADER];
        header[VALUE..VALUE + 8].copy_from_slice(&sample.value.to_bits().to_le_bytes());
        header[TIMESTAMP..TIMESTAMP + 8].copy_from_slice(&sample.timestamp_ms.to_le_bytes());
        header[TOUCHED..TOUCHED + 4].copy_from_slice(&touched.to_le_bytes());
        header[TRAITS] = traits.bits();
        let mut block = Vec::with_capacity(HEADER + key.len());
        block.extend_from_slice(&header);
        block.extend_from_slice(key.as_bytes());
        Entry {
            block: block.into_boxed_slice(),
            hash,
        }
    }

    /// The whole block, for prefetching.
    #[inline]
    pub(super) fn block(&self) -> &[u8] {
        &self.block
    }

    /// The hash of the key, as the store's hasher gave it.
    #[inline]
    pub(super) fn hash(&self) -> u64 {
        self.hash
    }

    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        &self.block[HEADER..]
    }

    #[inline]
    fn word<const N: usize>(&self, at: usize) -> [u8; N] {
        self.block[at..at + N]
            .try_into()
            .expect("inside the header")
    }

    #[inline]
    pub(super) fn sample(&self) -> Sample {
        Sample {
            value: f64::from_bits(u64::from_le_bytes(self.word(VALUE))),
            timestamp_ms: i64::from_le_bytes(self.word(TIMESTAMP)),
        }
    }

    #[inline]
    fn set_sample(&mut self, s: Sample) {
        self.block[VALUE..VALUE + 8].copy_from_slice(&s.value.to_bits().to_le_bytes());
        self.block[TIMESTAMP..TIMESTAMP + 8].copy_from_slice(&s.timestamp_ms.to_le_bytes());
    }

    /// The store-clock second of the last update.
    #[inline]
    pub(super) fn touched(&self) -> u32 {
        u32::from_le_bytes(self.word(TOUCHED))
    }

    #[inline]
    pub(super) fn set_touched(&mut self, now: u32) {
        self.block[TOUCHED..TOUCHED + 4].copy_from_slice(&now.to_le_bytes());
    }

    /// Takes `sample` unless it is older than the stored one (not for stale
    /// markers, which remove the series); either way refreshes the TTL.
    #[inline]
    pub(super) fn update(&mut self, sample: Sample, now: u32) -> Effect {
        self.set_touched(now);
        if sample.timestamp_ms < self.sample().timestamp_ms {
            return Effect::OutOfOrder;
        }
        self.set_sample(sample);
        Effect::Updated
    }

    /// Sets the series' sample whatever its timestamp: a push's, which
    /// replaces what its group holds as the Pushgateway's does, even a
    /// remote-written sample stamped later (a sender's clock ahead).
    pub(super) fn replace(&mut self, sample: Sample, now: u32) -> Effect {
        self.set_touched(now);
        self.set_sample(sample);
        Effect::Updated
    }

    pub(super) fn traits(&self) -> SeriesTraits {
        SeriesTraits::from_bits(self.block[TRAITS])
    }

    /// Replaces the series' traits (a push taking a remote-written series
    /// over); the caller recounts its Metric's.
    pub(super) fn set_traits(&mut self, traits: SeriesTraits) {
        self.block[TRAITS] = traits.bits();
    }

    /// Has the series an exemplar in its shard's [`Extras`]?
    #[inline]
    pub(super) fn has_exemplar(&self) -> bool {
        self.block[FLAGS] & HAS_EXEMPLAR != 0
    }

    /// Is the series' latest sample the native histogram in its shard's
    /// [`Extras`]?
    #[inline]
    pub(super) fn has_histogram(&self) -> bool {
        self.block[FLAGS] & HAS_HISTOGRAM != 0
    }

    /// The block's address: the series' identity in its shard's
    /// [`Extras`]. A block never moves while its entry lives (the table
    /// moves the slot, not the block), and no two live blocks share an
    /// address (none is empty).
    #[inline]
    fn address(&self) -> usize {
        self.block.as_ptr() as usize
    }
}

/// The latest exemplar and the latest native histogram of each series of
/// one shard that has either, by its entry's block address, beside the
/// shard's table and under the same lock.
///
/// A side table, not fields of every entry: series with exemplars or
/// native histograms are few (a histogram's buckets, a few counters, the
/// native histograms of a few families), and a series with neither pays
/// two bits of its header's flags byte, which every reader and remover
/// checks before looking here. *Invariant:* an entry's `HAS_EXEMPLAR`
/// (`HAS_HISTOGRAM`) bit is set exactly when this table holds an exemplar
/// (a histogram) at its address; whoever removes an entry from the shard's
/// table calls [`Extras::forget`] with it.
///
/// Boxed, and only once a series of the shard has either: an empty map is
/// 40 bytes, and a name has 64 shards whether or not any of its series
/// ever carries one; a `None` is 8.
#[derive(Default)]
pub(super) struct Extras {
    #[expect(
        clippy::box_collection,
        reason = "the box is the point: 8 bytes in every shard, not 40"
    )]
    by_block: Option<Box<HashMap<usize, Extra, foldhash::fast::FixedState>>>,
}

/// What one series keeps besides its sample.
#[derive(Default)]
struct Extra {
    exemplar: Option<StoredExemplar>,
    /// The native histogram that is the series' latest sample (its
    /// timestamp is the entry's).
    histogram: Option<NativeHistogram>,
}

/// One series' exemplar as stored.
struct StoredExemplar {
    /// OpenMetrics label text (see `model::Exemplar::labels`); a `String`
    /// so that a replacement that fits reuses its allocation.
    labels: String,
    value: f64,
    timestamp_ms: i64,
}

impl Extras {
    /// The exemplar of `e`, if it has one.
    #[inline]
    pub(super) fn exemplar(&self, e: &Entry) -> Option<ExemplarRef<'_>> {
        if !e.has_exemplar() {
            return None;
        }
        let s = self
            .by_block
            .as_ref()?
            .get(&e.address())?
            .exemplar
            .as_ref()?;
        Some(ExemplarRef {
            labels: &s.labels,
            value: s.value,
            // Remote write's 0 is "no timestamp" (Prometheus' `HasTs`).
            timestamp_ms: (s.timestamp_ms != 0).then_some(s.timestamp_ms),
        })
    }

    /// The native histogram of `e`, if its latest sample is one.
    #[inline]
    pub(super) fn histogram(&self, e: &Entry) -> Option<&NativeHistogram> {
        if !e.has_histogram() {
            return None;
        }
        self.by_block
            .as_ref()?
            .get(&e.address())?
            .histogram
            .as_ref()
    }

    /// Keeps `labels`, `value` and `timestamp_ms` as the exemplar of `e`
    /// unless the one it has is newer (a greater timestamp; the later wins
    /// among equals, as for samples). An exemplar sent without a timestamp
    /// (0) therefore never replaces one sent with one, as Prometheus'
    /// exemplar storage refuses it as out of order.
    pub(super) fn set_exemplar(
        &mut self,
        e: &mut Entry,
        labels: &str,
        value: f64,
        timestamp_ms: i64,
    ) {
        let by_block = self.by_block.get_or_insert_default();
        let extra = by_block.entry(e.address()).or_default();
        let stored = extra.exemplar.get_or_insert_with(|| StoredExemplar {
            labels: String::new(),
            value,
            timestamp_ms: i64::MIN,
        });
        if timestamp_ms < stored.timestamp_ms {
            return;
        }
        stored.labels.clear();
        stored.labels.push_str(labels);
        stored.value = value;
        stored.timestamp_ms = timestamp_ms;
        e.block[FLAGS] |= HAS_EXEMPLAR;
    }

    /// Keeps `h` as the latest sample of `e` (the caller has stored its
    /// timestamp in the entry); `true` when `e` had no histogram before.
    pub(super) fn set_histogram(&mut self, e: &mut Entry, h: &NativeHistogram) -> bool {
        let by_block = self.by_block.get_or_insert_default();
        let extra = by_block.entry(e.address()).or_default();
        let new = extra.histogram.is_none();
        extra.histogram = Some(h.clone());
        e.block[FLAGS] |= HAS_HISTOGRAM;
        new
    }

    /// Drops the histogram of `e`, whose latest sample is now a float;
    /// `true` when it had one.
    pub(super) fn clear_histogram(&mut self, e: &mut Entry) -> bool {
        if !e.has_histogram() {
            return false;
        }
        e.block[FLAGS] &= !HAS_HISTOGRAM;
        if let Some(by_block) = self.by_block.as_mut()
            && let Some(extra) = by_block.get_mut(&e.address())
        {
            extra.histogram = None;
            if extra.exemplar.is_none() {
                by_block.remove(&e.address());
                self.shrink();
            }
        }
        true
    }

    /// Drops what `e`, an entry being removed, kept here.
    #[inline]
    pub(super) fn forget(&mut self, e: &Entry) {
        if e.block[FLAGS] & (HAS_EXEMPLAR | HAS_HISTOGRAM) != 0
            && let Some(by_block) = self.by_block.as_mut()
        {
            by_block.remove(&e.address());
            self.shrink();
        }
    }

    /// A shard whose extras all left gives their memory back.
    fn shrink(&mut self) {
        if self.by_block.as_ref().is_some_and(|m| m.is_empty()) {
            self.by_block = None;
        }
    }

    /// How many series have an exemplar here.
    #[cfg(test)]
    pub(super) fn exemplars_len(&self) -> usize {
        self.by_block
            .as_ref()
            .map_or(0, |m| m.values().filter(|x| x.exemplar.is_some()).count())
    }
}
