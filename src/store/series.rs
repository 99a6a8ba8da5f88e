//! A shard's series: the first held in the shard itself, more in a hash
//! table.
//!
//! Most metric names have few series (a pushed family of 100 series over
//! 64 shards puts a few at most in each), and a hash table allocates on
//! its first insert: a 100k-series push into 1,692 names made 59k tables
//! of one or two entries, 128 bytes and an allocation each. A shard's
//! first entry lives inline, in the bytes the empty table would take; the
//! second moves both into a table, which stays a table.

use hashbrown::HashTable;

use super::entry::Entry;

/// The series of one shard, each key at most once.
///
/// No larger than the table alone (32 bytes: the inline form fits in the
/// table's niche), so a name's 64 shards cost what they did before;
/// `tests::a_shard_is_no_larger_than_its_table` holds it.
pub(super) enum Series {
    /// No entry or one.
    Inline(Option<Entry>),
    /// Two or more since the second was added (it stays a table).
    Table(HashTable<Entry>),
}

impl Default for Series {
    fn default() -> Self {
        Series::Inline(None)
    }
}

impl Series {
    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        match self {
            Series::Inline(slot) => usize::from(slot.is_some()),
            Series::Table(t) => t.len(),
        }
    }

    /// The entry of hash `hash` for which `eq` holds.
    #[inline]
    pub(super) fn find(&self, hash: u64, eq: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        match self {
            Series::Inline(slot) => slot.as_ref().filter(|e| e.hash() == hash && eq(e)),
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
            Series::Inline(slot) => slot.as_mut().filter(|e| e.hash() == hash && eq(e)),
            Series::Table(t) => t.find_mut(hash, |e| e.hash() == hash && eq(e)),
        }
    }

    /// Removes and returns the entry [`Series::find`] finds.
    pub(super) fn remove(&mut self, hash: u64, eq: impl Fn(&Entry) -> bool) -> Option<Entry> {
        match self {
            Series::Inline(slot) => slot.take_if(|e| e.hash() == hash && eq(e)),
            Series::Table(t) => t
                .find_entry(hash, |e| e.hash() == hash && eq(e))
                .ok()
                .map(|found| found.remove().0),
        }
    }

    /// Adds `e`, whose key the caller found absent; returns it in place.
    pub(super) fn insert(&mut self, e: Entry) -> &mut Entry {
        if let Series::Inline(slot) = self
            && let Some(held) = slot.take()
        {
            // The smallest table (four buckets, room for three): most
            // shards of a small name never hold a third.
            let mut table = HashTable::with_capacity(3);
            table.insert_unique(held.hash(), held, Entry::hash);
            *self = Series::Table(table);
        }
        match self {
            Series::Inline(slot) => slot.insert(e),
            Series::Table(t) => t.insert_unique(e.hash(), e, Entry::hash).into_mut(),
        }
    }

    /// Every entry, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        let (slot, table) = match self {
            Series::Inline(slot) => (slot.as_ref(), None),
            Series::Table(t) => (None, Some(t.iter())),
        };
        slot.into_iter().chain(table.into_iter().flatten())
    }

    /// Every entry, mutably.
    #[cfg(test)]
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        let (slot, table) = match self {
            Series::Inline(slot) => (slot.as_mut(), None),
            Series::Table(t) => (None, Some(t.iter_mut())),
        };
        slot.into_iter().chain(table.into_iter().flatten())
    }

    /// Keeps the entries for which `keep` holds.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut Entry) -> bool) {
        match self {
            Series::Inline(slot) => {
                slot.take_if(|e| !keep(e));
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
    /// alone: 0 for the inline entry, or a table bucket. A later
    /// [`Series::at_mut`] of it gives an entry whose key the caller must
    /// still compare (an insert since may have moved things).
    #[inline]
    pub(super) fn hint(&self, hash: u64) -> Option<usize> {
        match self {
            Series::Inline(slot) => slot.as_ref().filter(|e| e.hash() == hash).map(|_| 0),
            Series::Table(t) => t.find_bucket_index(hash, |e| e.hash() == hash),
        }
    }

    /// The entry at a [`Series::hint`], if that place holds one.
    #[inline]
    pub(super) fn at(&self, hint: usize) -> Option<&Entry> {
        match self {
            Series::Inline(slot) => slot.as_ref().filter(|_| hint == 0),
            Series::Table(t) => t.get_bucket(hint),
        }
    }

    /// [`Series::at`], mutably.
    #[inline]
    pub(super) fn at_mut(&mut self, hint: usize) -> Option<&mut Entry> {
        match self {
            Series::Inline(slot) => slot.as_mut().filter(|_| hint == 0),
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
    fn one_entry_stays_inline_and_a_second_makes_a_table() {
        let mut s = Series::default();
        s.insert(entry("a", 1));
        assert!(s.table().is_none());
        assert_eq!(s.hint(1), Some(0));
        assert_eq!(s.at(0).map(Entry::key), Some(&b"a"[..]));
        assert!(s.at(1).is_none() && s.hint(2).is_none());
        s.remove(1, |e| e.key() == b"a");
        assert_eq!(s.len(), 0);
        s.insert(entry("b", 2));
        assert!(s.table().is_none());
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
    fn a_shard_is_no_larger_than_its_table() {
        assert_eq!(size_of::<Series>(), size_of::<HashTable<Entry>>());
    }
}
