//! Who owns each pushed series: the registry's record of keys, kept
//! without a copy per key.
//!
//! A pushed family's canonical keys live in one [`FamilyKeys`] buffer (one
//! allocation per family, not one per series), and the owner table holds,
//! per series, the key's hash and a reference to the list and position
//! that hold its text: 24 bytes a series, where a map from a copied
//! `Arc<str>` to its owner took about 100 and one allocation each (a
//! 100k-series push spent a third of its time on them, most of it faulting
//! in fresh memory).

use std::sync::Arc;

use hashbrown::HashTable;

use crate::model::WriteBatch;

/// The canonical keys of one family of one pushed group, in push order,
/// with the group and family they belong to.
pub(super) struct FamilyKeys {
    /// The group's grouping key (`Grouping::id`).
    pub(super) group: Arc<str>,
    /// The family's name.
    pub(super) family: Arc<str>,
    text: String,
    /// End of each key in `text`.
    ends: Vec<u32>,
}

impl FamilyKeys {
    /// The keys of `batch`'s series `series`, in order.
    pub(super) fn from_batch(
        group: &Arc<str>,
        family: &Arc<str>,
        batch: &WriteBatch,
        series: std::ops::Range<usize>,
    ) -> Self {
        let updates = &batch.series[series];
        let bytes = updates.iter().map(|u| u.key.len as usize).sum();
        let mut keys = FamilyKeys {
            group: Arc::clone(group),
            family: Arc::clone(family),
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(updates.len()),
        };
        // A push's lowering writes a family's keys one after another, in
        // order: then they are copied at once.
        if let Some(text) = one_run(batch, updates) {
            keys.text.push_str(text);
            let mut at = 0u32;
            keys.ends.extend(updates.iter().map(|u| {
                at += u.key.len;
                at
            }));
        } else {
            for u in updates {
                keys.push(batch.key(u));
            }
        }
        keys
    }

    /// Are these the keys of `batch`'s series `series`, in order (a family
    /// pushed again as it was)?
    pub(super) fn same_as(&self, batch: &WriteBatch, series: std::ops::Range<usize>) -> bool {
        let updates = &batch.series[series];
        if updates.len() != self.len() {
            return false;
        }
        match one_run(batch, updates) {
            // One comparison of the text, and of where each key ends.
            Some(text) => {
                let mut at = 0u32;
                text == self.text
                    && updates.iter().zip(&self.ends).all(|(u, &end)| {
                        at += u.key.len;
                        at == end
                    })
            }
            None => self.iter().zip(updates).all(|(k, u)| k == batch.key(u)),
        }
    }

    /// A list of one key (a group's own series).
    pub(super) fn one(group: &Arc<str>, family: &Arc<str>, key: &str) -> Self {
        let mut keys = FamilyKeys {
            group: Arc::clone(group),
            family: Arc::clone(family),
            text: String::with_capacity(key.len()),
            ends: Vec::with_capacity(1),
        };
        keys.push(key);
        keys
    }

    fn push(&mut self, key: &str) {
        self.text.push_str(key);
        // A push body is held to --limits.request-body-bytes (at most a few
        // hundred MiB) and a family's keys are shorter than its lowered form.
        self.ends
            .push(u32::try_from(self.text.len()).expect("keys under 4 GiB"));
    }

    /// Number of keys.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Key `i`.
    pub(super) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The keys in order.
    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The text of `updates`' keys when they lie one after another in
/// `batch`, in order, as a push's lowering writes a family's.
fn one_run<'b>(batch: &'b WriteBatch, updates: &[crate::model::SeriesUpdate]) -> Option<&'b str> {
    let start = updates.first().map_or(0, |u| u.key.start as usize);
    let mut end = start;
    let contiguous = updates.iter().all(|u| {
        let at = u.key.start as usize == end;
        end += u.key.len as usize;
        at
    });
    contiguous.then(|| batch.keys.get(start..end)).flatten()
}

/// One owned series: its key's hash and where its text is.
struct Slot {
    hash: u64,
    keys: Arc<FamilyKeys>,
    index: u32,
}

impl Slot {
    fn key(&self) -> &str {
        self.keys.get(self.index as usize)
    }
}

/// Every pushed series' key → the [`FamilyKeys`] holding it.
///
/// Keyed by the store's own hash of each key (`SeriesHasher`): a push
/// hashes its keys once, for this table's questions and for the store's
/// tables alike, where a hasher of its own cost two more hashes a key.
///
/// *Invariant:* a key is here exactly when a family of a group holds it,
/// and its slot points at that family's list (the registry writes a
/// family's slots when it stores the family and takes them out with it).
#[derive(Default)]
pub(super) struct Owners {
    table: HashTable<Slot>,
}

impl Owners {
    /// The list holding `key` (of store hash `hash`), if a group owns it.
    pub(super) fn get(&self, key: &str, hash: u64) -> Option<&FamilyKeys> {
        self.table
            .find(hash, |s| s.hash == hash && s.key() == key)
            .map(|s| &*s.keys)
    }

    /// Room for `n` more keys.
    pub(super) fn reserve(&mut self, n: usize) {
        self.table.reserve(n, |s| s.hash);
    }

    /// Records every key of `keys` (of store hashes `hashes`, in order) as
    /// owned by it, taking each over from any list that held it (a key
    /// moving between families of a group).
    pub(super) fn own_all(&mut self, keys: &Arc<FamilyKeys>, hashes: &[u64]) {
        debug_assert_eq!(keys.len(), hashes.len(), "a hash per key");
        self.reserve(keys.len());
        for (index, (key, &hash)) in keys.iter().zip(hashes).enumerate() {
            let slot = Slot {
                hash,
                keys: Arc::clone(keys),
                index: index as u32,
            };
            // One probe whether the key is held or not: most of a first
            // push's keys are new, and each probe is a cache miss.
            match self
                .table
                .entry(hash, |s| s.hash == hash && s.key() == key, |s| s.hash)
            {
                hashbrown::hash_table::Entry::Occupied(mut held) => *held.get_mut() = slot,
                hashbrown::hash_table::Entry::Vacant(free) => {
                    free.insert(slot);
                }
            }
        }
    }

    /// Forgets the keys of `keys` that it still owns (not taken over by
    /// another list since), each hashed by `hash` (the store's); hands
    /// each of them to `released`.
    pub(super) fn release_all<'k>(
        &mut self,
        keys: &'k Arc<FamilyKeys>,
        hash: impl Fn(&str) -> u64,
        mut released: impl FnMut(&'k str),
    ) {
        for key in keys.iter() {
            let hash = hash(key);
            if let Ok(entry) = self
                .table
                .find_entry(hash, |s| s.hash == hash && s.key() == key)
                && Arc::ptr_eq(&entry.get().keys, keys)
            {
                entry.remove();
                released(key);
            }
        }
    }

    /// Number of owned keys.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn hash(key: &str) -> u64 {
        foldhash::fast::FixedState::with_seed(7).hash_one(key)
    }

    fn hashes(keys: &FamilyKeys) -> Vec<u64> {
        keys.iter().map(hash).collect()
    }

    fn list(group: &str, family: &str, keys: &[&str]) -> Arc<FamilyKeys> {
        let (group, family): (Arc<str>, Arc<str>) = (group.into(), family.into());
        let mut l = FamilyKeys::one(&group, &family, keys[0]);
        for k in &keys[1..] {
            l.push(k);
        }
        Arc::new(l)
    }

    /// A batch of `keys` whose text is written in `layout` order: a
    /// family's keys one after another, or not.
    fn batch(keys: &[&str], layout: &[usize]) -> WriteBatch {
        use crate::model::{
            KeySpan, NO_EXEMPLAR, NO_HISTOGRAM, Sample, SeriesTraits, SeriesUpdate,
        };
        let mut batch = WriteBatch::default();
        let mut spans = vec![None; keys.len()];
        for &i in layout {
            let start = batch.keys.len() as u32;
            batch.keys.push_str(keys[i]);
            batch.keys.push('#');
            spans[i] = Some(KeySpan {
                start,
                len: keys[i].len() as u32,
                name_len: 1,
                traits: SeriesTraits::default(),
            });
        }
        for span in spans {
            batch.series.push(SeriesUpdate {
                key: span.expect("every key laid out"),
                latest: Sample {
                    value: 1.0,
                    timestamp_ms: 0,
                },
                samples: 1,
                exemplars: 0,
                exemplar: NO_EXEMPLAR,
                histogram: NO_HISTOGRAM,
            });
        }
        batch
    }

    #[test]
    fn a_familys_keys_are_taken_from_the_batch_whatever_their_layout() {
        let keys = ["a{x=\"1\"}", "a{x=\"22\"}", "a{x=\"333\"}", "b"];
        let (group, family): (Arc<str>, Arc<str>) = ("g".into(), "a".into());
        // Each key followed by a separator: never one run.
        let scattered = batch(&keys, &[2, 0, 3, 1]);
        let taken = FamilyKeys::from_batch(&group, &family, &scattered, 0..3);
        assert_eq!(taken.iter().collect::<Vec<_>>(), &keys[..3]);
        // One run (the separators cut out): copied at once.
        let mut run = batch(&keys, &[0, 1, 2, 3]);
        run.keys = run.keys.replace('#', "");
        let mut at = 0;
        for u in &mut run.series {
            u.key.start = at;
            at += u.key.len;
        }
        let taken = FamilyKeys::from_batch(&group, &family, &run, 1..4);
        assert_eq!(taken.iter().collect::<Vec<_>>(), &keys[1..]);
        // The same keys again, laid out either way; not others.
        assert!(taken.same_as(&run, 1..4));
        assert!(taken.same_as(&scattered, 1..4));
        assert!(!taken.same_as(&run, 0..3));
        assert!(!taken.same_as(&run, 1..3));
        // The same text cut elsewhere is other keys.
        let cut = |keys: &[&str]| {
            let mut b = batch(keys, &[0, 1]);
            b.keys = b.keys.replace('#', "");
            b.series[1].key.start = b.series[0].key.len;
            b
        };
        let ab_c = FamilyKeys::from_batch(&group, &family, &cut(&["ab", "c"]), 0..2);
        assert!(ab_c.same_as(&cut(&["ab", "c"]), 0..2));
        assert!(!ab_c.same_as(&cut(&["a", "bc"]), 0..2));
    }

    #[test]
    fn keys_come_back_in_order_with_their_owner() {
        let a = list("{job=\"a\"}", "x", &["x{a=\"1\"}", "", "x{a=\"22\"}"]);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            ["x{a=\"1\"}", "", "x{a=\"22\"}"]
        );
        let mut owners = Owners::default();
        owners.own_all(&a, &hashes(&a));
        assert_eq!(owners.len(), 3);
        let key = "x{a=\"22\"}";
        let held = owners.get(key, hash(key)).expect("owned");
        assert_eq!((&*held.group, &*held.family), ("{job=\"a\"}", "x"));
        assert!(owners.get("x{a=\"2\"}", hash("x{a=\"2\"}")).is_none());
    }

    #[test]
    fn a_key_taken_over_is_not_released_by_its_old_list() {
        let old = list("g", "x", &["k1", "k2"]);
        let new = list("g", "y", &["k2", "k3"]);
        let mut owners = Owners::default();
        owners.own_all(&old, &hashes(&old));
        owners.own_all(&new, &hashes(&new));
        assert_eq!(owners.len(), 3);
        assert_eq!(&*owners.get("k2", hash("k2")).unwrap().family, "y");
        let mut released = Vec::new();
        owners.release_all(&old, hash, |k| released.push(k));
        assert_eq!(released, ["k1"]);
        assert!(owners.get("k1", hash("k1")).is_none());
        assert_eq!(&*owners.get("k2", hash("k2")).unwrap().family, "y");
        owners.release_all(&new, hash, |_| {});
        assert_eq!(owners.len(), 0);
    }
}
