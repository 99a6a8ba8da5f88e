//! The layout of one live series: a single heap block.

use crate::model::{Sample, SeriesTraits};

/// One live series: a single heap block holding a fixed header — the latest
/// sample, the TTL clock, the traits — and then the canonical key.
///
/// One block, not a struct with a boxed key: the table slot is then just this
/// 16-byte pointer and length (a 100k-series table fits in L2), an update
/// touches one cache line that holds both the sample and the key's start,
/// and the render reads each series front to back. The key's length sits in
/// the slot, so a lookup rules out most other keys without touching the heap.
/// The hash is not kept: the table's control bytes already filter 127 of 128
/// candidates, and growth rehashes from the keys.
pub(super) struct Entry(Box<[u8]>);

const VALUE: usize = 0;
const TIMESTAMP: usize = 8;
const TOUCHED: usize = 16;
const TRAITS: usize = 20;
/// Bytes before the key.
pub(super) const HEADER: usize = 21;

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
    pub(super) fn new(key: &str, sample: Sample, touched: u32, traits: SeriesTraits) -> Self {
        let mut block = Vec::with_capacity(HEADER + key.len());
        block.extend_from_slice(&sample.value.to_bits().to_le_bytes());
        block.extend_from_slice(&sample.timestamp_ms.to_le_bytes());
        block.extend_from_slice(&touched.to_le_bytes());
        block.push(traits.bits());
        block.extend_from_slice(key.as_bytes());
        Entry(block.into_boxed_slice())
    }

    /// The whole block, for prefetching and length checks.
    #[inline]
    pub(super) fn block(&self) -> &[u8] {
        &self.0
    }

    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        &self.0[HEADER..]
    }

    #[inline]
    fn word<const N: usize>(&self, at: usize) -> [u8; N] {
        self.0[at..at + N].try_into().expect("inside the header")
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
        self.0[VALUE..VALUE + 8].copy_from_slice(&s.value.to_bits().to_le_bytes());
        self.0[TIMESTAMP..TIMESTAMP + 8].copy_from_slice(&s.timestamp_ms.to_le_bytes());
    }

    /// The store-clock second of the last update.
    #[inline]
    pub(super) fn touched(&self) -> u32 {
        u32::from_le_bytes(self.word(TOUCHED))
    }

    #[inline]
    pub(super) fn set_touched(&mut self, now: u32) {
        self.0[TOUCHED..TOUCHED + 4].copy_from_slice(&now.to_le_bytes());
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

    pub(super) fn traits(&self) -> SeriesTraits {
        SeriesTraits::from_bits(self.0[TRAITS])
    }
}
