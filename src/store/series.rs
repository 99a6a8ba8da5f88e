//! A shard's series: the first two held in the shard itself, more in a
//! hash table.
//!
//! Most metric names have few series (a pushed family of 100 series over
//! 64 shards puts one or two in each), and a hash table allocates on its
//! first insert: a 100k-series push into 1,692 names made 59k tables of
//! one or two entries, a third of the instructions of creating its series
//! and 8 MiB of memory. Two entries live inline (48 bytes in the shard);
//! the third moves them into a table, which stays a table.

use hashbrown::HashTable;

use super::entry::Entry;

/// Entries held inline before a table is made.
const INLINE: usize = 2;

/// The series of one shard, each key at most once.
pub(super) enum Series {
    /// Up to [`INLINE`] entries, the filled slots first.
    Inline([Option<Entry>; INLINE]),
    Table(HashTable<Entry>),
}

impl Default for Series {
    fn default() -> Self {
        Series::Inline([None, None])
    }
}

impl Series {
    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        match self {
            Series::Inline(slots) => slots.iter().flatten().count(),
            Series::Table(t) => t.len(),
        }
    }

    /// The entry of hash `hash` for which `eq` holds.
    #[inline]
    pub(super) fn find(&self, hash: u64, eq: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        match self {
            Series::Inline(slots) => slots.iter().flatten().find(|e| e.hash() == hash && eq(e)),
            Series::Table(t) => t.find(hash, |e| e.hash() == hash && eq(e)),
        }
    }

    /// [`Series::find`], mutably.
    #[inline]
    pub(super) fn find_mut(
        &mut self,
        hash: u64,
        eq: impl Fn(&Entry) -> bool,
    ) -> Option<&mut Entry> {
        match self {
            Series::Inline(slots) => slots
                .iter_mut()
                .flatten()
                .find(|e| e.hash() == hash && eq(e)),
            Series::Table(t) => t.find_mut(hash, |e| e.hash() == hash && eq(e)),
        }
    }

    /// Removes and returns the entry [`Series::find`] finds.
    pub(super) fn remove(&mut self, hash: u64, eq: impl Fn(&Entry) -> bool) -> Option<Entry> {
        match self {
            Series::Inline(slots) => {
                let at = slots
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|e| e.hash() == hash && eq(e)))?;
                let removed = slots[at].take();
                // Keep the filled slots first.
                slots[at..].rotate_left(1);
                removed
            }
            Series::Table(t) => t
                .find_entry(hash, |e| e.hash() == hash && eq(e))
                .ok()
                .map(|found| found.remove().0),
        }
    }

    /// Adds `e`, whose key the caller found absent; returns it in place.
    pub(super) fn insert(&mut self, e: Entry) -> &mut Entry {
        if let Series::Inline(slots) = self
            && slots.iter().all(Option::is_some)
        {
            // Room for the inline ones, this one and a few more before the
            // first growth.
            let mut table = HashTable::with_capacity(2 * INLINE + 2);
            for held in slots.iter_mut().filter_map(Option::take) {
                table.insert_unique(held.hash(), held, Entry::hash);
            }
            *self = Series::Table(table);
        }
        match self {
            Series::Inline(slots) => {
                let free = slots.iter().position(Option::is_none).expect("a free slot");
                slots[free].insert(e)
            }
            Series::Table(t) => t.insert_unique(e.hash(), e, Entry::hash).into_mut(),
        }
    }

    /// Every entry, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        let (slots, table) = match self {
            Series::Inline(slots) => (Some(slots.iter().flatten()), None),
            Series::Table(t) => (None, Some(t.iter())),
        };
        slots
            .into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    /// Every entry, mutably.
    #[cfg(test)]
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        let (slots, table) = match self {
            Series::Inline(slots) => (Some(slots.iter_mut().flatten()), None),
            Series::Table(t) => (None, Some(t.iter_mut())),
        };
        slots
            .into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    /// Keeps the entries for which `keep` holds.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut Entry) -> bool) {
        match self {
            Series::Inline(slots) => {
                for slot in slots.iter_mut() {
                    if slot.as_mut().is_some_and(|e| !keep(e)) {
                        *slot = None;
                    }
                }
                // Keep the filled slots first.
                if slots[0].is_none() {
                    slots.swap(0, 1);
                }
            }
            Series::Table(t) => t.retain(keep),
        }
    }

    /// The hash table, once there is one (for prefetching its probes).
    #[inline]
    pub(super) fn table(&self) -> Option<&HashTable<Entry>> {
        match self {
            Series::Inline(_) => None,
            Series::Table(t) => Some(t),
        }
    }

    /// Where the entry of hash `hash` probably is, found from the hashes
    /// alone: an inline position or a table bucket. A later
    /// [`Series::at_mut`] of it gives an entry whose key the caller must
    /// still compare (an insert since may have moved things).
    #[inline]
    pub(super) fn hint(&self, hash: u64) -> Option<usize> {
        match self {
            Series::Inline(slots) => slots
                .iter()
                .position(|s| s.as_ref().is_some_and(|e| e.hash() == hash)),
            Series::Table(t) => t.find_bucket_index(hash, |e| e.hash() == hash),
        }
    }

    /// The entry at a [`Series::hint`], if that place holds one.
    #[inline]
    pub(super) fn at(&self, hint: usize) -> Option<&Entry> {
        match self {
            Series::Inline(slots) => slots.get(hint)?.as_ref(),
            Series::Table(t) => t.get_bucket(hint),
        }
    }

    /// [`Series::at`], mutably.
    #[inline]
    pub(super) fn at_mut(&mut self, hint: usize) -> Option<&mut Entry> {
        match self {
            Series::Inline(slots) => slots.get_mut(hint)?.as_mut(),
            Series::Table(t) => t.get_bucket_mut(hint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Sample, SeriesTraits};

    fn entry(key: &str, hash: u64) -> Entry {
        let sample = Sample {
            value: 1.0,
            timestamp_ms: 1,
        };
        Entry::new(key, hash, sample, 0, SeriesTraits::default())
    }

    fn keys(s: &Series) -> Vec<String> {
        let mut k: Vec<String> = s
            .iter()
            .map(|e| String::from_utf8(e.key().to_vec()).unwrap())
            .collect();
        k.sort();
        k
    }

    /// Every operation, on both forms, against a plain list; hashes
    /// collide on purpose (only the key tells entries apart).
    #[test]
    fn inline_and_table_forms_hold_the_same_entries() {
        let mut s = Series::default();
        let mut reference: Vec<String> = Vec::new();
        let hash = |i: usize| (i % 3) as u64;
        for round in 0..3 {
            for i in 0..7 {
                let key = format!("k{i}");
                let eq = |e: &Entry| e.key() == key.as_bytes();
                if s.find(hash(i), eq).is_none() {
                    s.insert(entry(&key, hash(i)));
                    reference.push(key.clone());
                }
                assert!(s.find(hash(i), eq).is_some());
                assert!(s.find(hash(i) + 1, eq).is_none(), "another hash");
                assert_eq!(s.len(), reference.len());
                if round > 0 && i % 2 == 1 {
                    let removed = s.remove(hash(i), eq).expect("held");
                    assert_eq!(removed.key(), key.as_bytes());
                    reference.retain(|k| *k != key);
                    assert!(s.find(hash(i), eq).is_none());
                }
                reference.sort();
                assert_eq!(keys(&s), reference);
            }
        }
        s.retain(|e| e.key() != b"k0");
        reference.retain(|k| k != "k0");
        assert_eq!(keys(&s), reference);
    }

    #[test]
    fn two_entries_stay_inline_and_a_third_makes_a_table() {
        let mut s = Series::default();
        s.insert(entry("a", 1));
        s.insert(entry("b", 2));
        assert!(s.table().is_none());
        s.remove(1, |e| e.key() == b"a");
        // The filled slot moved first: the next insert fills the second.
        assert_eq!(s.hint(2), Some(0));
        s.insert(entry("c", 3));
        s.insert(entry("d", 4));
        assert_eq!(s.table().map(HashTable::len), Some(3));
        assert_eq!(keys(&s), ["b", "c", "d"]);
        let at = s.hint(4).expect("a bucket");
        assert_eq!(s.at(at).map(Entry::key), Some(&b"d"[..]));
        s.at_mut(at).expect("held").set_touched(9);
        assert_eq!(s.find(4, |_| true).map(Entry::touched), Some(9));
    }

    #[test]
    fn retain_keeps_the_filled_inline_slot_first() {
        let mut s = Series::default();
        s.insert(entry("a", 1));
        s.insert(entry("b", 2));
        s.retain(|e| e.key() == b"b");
        assert_eq!(s.hint(2), Some(0));
        s.insert(entry("c", 3));
        assert!(s.table().is_none());
        assert_eq!(keys(&s), ["b", "c"]);
    }
}
