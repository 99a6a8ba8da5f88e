//! Pushed groups (the Pushgateway's push API): which series each group
//! owns, so that a `PUT` replaces the group, a `POST` the families it
//! carries, a `DELETE` removes it, and pushes stay consistent across groups.
//!
//! The series themselves live in the store's tables like remote-written
//! ones (one page, one family plan, one set of limits); this registry only
//! records ownership. Every operation holds the registry's one lock for its
//! whole course, so pushes and deletes apply in the order they arrive, as
//! the Pushgateway guarantees; the lock order is registry → metrics map →
//! shards, and nothing that holds a store lock takes the registry.
//!
//! Consistency (the Pushgateway README, "About metric inconsistencies"): a
//! family pushed to several groups has one type, and no series (name and
//! label set, grouping labels included) is pushed by two groups or two
//! families. A push breaking either is refused whole and recorded as the
//! group's failure (`push_failure_time_seconds`), as the Pushgateway does.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Store;
use super::owners::{FamilyKeys, Owners};
use super::table::write;
use crate::ingest::push::{
    Grouping, PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, PUSH_TIME, PUSH_TIME_HELP, PushBatch,
    PushedFamily,
};
use crate::model::{
    Metadata, MetricType, Rejection, Sample, SeriesLimits, SeriesUpdate, build_pushed_key,
};

use super::ApplyOutcome;

/// Why a push was refused by the store (its body was valid on its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushConflict {
    /// The family has another type in another group.
    TypeMismatch {
        /// The family.
        family: String,
        /// Its type in this push.
        pushed: MetricType,
        /// Its type in the other group.
        held: MetricType,
        /// The other group's grouping key.
        group: String,
    },
    /// A histogram or summary and a family named like one of its series
    /// (`x` and `x_count`): client_golang, which the Pushgateway gathers
    /// with, refuses such a pair on one page.
    NameCollision {
        /// The histogram or summary.
        family: String,
        /// The family named like one of its series.
        other: String,
    },
    /// A series of the push is another group's (or another family's).
    DuplicateSeries {
        /// The series' canonical key.
        key: String,
        /// The grouping key of its owner.
        group: String,
    },
    /// The push would create more series than the store may hold.
    SeriesLimit(Rejection),
}

impl std::fmt::Display for PushConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushConflict::TypeMismatch {
                family,
                pushed,
                held,
                group,
            } => write!(
                f,
                "family {family:?} is pushed as {} but group {group} holds it as {}",
                type_word(*pushed),
                type_word(*held)
            ),
            PushConflict::NameCollision { family, other } => write!(
                f,
                "family {other:?} collides with the series of histogram or summary {family:?}"
            ),
            PushConflict::DuplicateSeries { key, group } => {
                write!(f, "series {key} was already pushed by group {group}")
            }
            PushConflict::SeriesLimit(r) => r.fmt(f),
        }
    }
}

fn type_word(t: MetricType) -> &'static str {
    match t {
        // The text format has no word for it; the protobuf push named it.
        MetricType::GaugeHistogram => "gauge histogram",
        _ => t.text_format_name().unwrap_or("untyped"),
    }
}

/// What a successful push did.
#[derive(Debug, Default)]
pub struct PushOutcome {
    /// The store's account of the series written.
    pub applied: ApplyOutcome,
    /// Series of the group removed because the push replaced them.
    pub replaced: usize,
}

/// A group as the query API shows it.
#[derive(Clone, Debug)]
pub struct GroupView {
    /// The grouping key's labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Unix time of the last successful push (0: none yet).
    pub push_time: f64,
    /// Unix time of the last refused push (0: none yet).
    pub push_failure_time: f64,
    /// Its families, by name.
    pub families: Vec<FamilyView>,
}

/// One family of a group.
#[derive(Clone, Debug)]
pub struct FamilyView {
    /// The family name.
    pub name: String,
    /// Its type.
    pub metric_type: MetricType,
    /// Its HELP (the store's metadata for the name).
    pub help: String,
    /// Unix time of the push that last wrote it.
    pub pushed_at: f64,
    /// Its live series: canonical key and value (a native histogram's
    /// value is its count).
    pub series: Vec<(String, f64)>,
    /// The sum of each of `series` whose latest sample is a native
    /// histogram, by its index there.
    pub native_sums: Vec<(usize, f64)>,
}

/// What a push's apply may add past `--limits.series`: anything. The push
/// was counted against the limit under the registry's lock (with the
/// series its replacement removes, which stay live until it is applied),
/// but remote writers create series without that lock; one that takes the
/// room while the push is applied must not leave the push answered 200
/// with some of its series refused, owned by the group but not live. The
/// store then stands past the limit by what those writers created, at
/// most the room the push was counted in, until series leave; new series
/// are refused until then.
const ADMITTED: usize = usize::MAX;

/// The registry of pushed groups, one per store.
#[derive(Default)]
pub(super) struct Groups(Mutex<Registry>);

#[derive(Default)]
pub(super) struct Registry {
    pub(super) groups: HashMap<Arc<str>, Group, RandomState>,
    /// Every pushed series → its group and family.
    owners: Owners,
    /// Family name → (type, groups holding it as that type).
    types: HashMap<Arc<str>, Vec<(MetricType, usize)>, RandomState>,
    /// The last stamp given to pushed samples: never going back, so a
    /// clock step cannot make a later push look older than an earlier one.
    pub(super) last_stamp_ms: i64,
}

pub(super) struct Group {
    pub(super) grouping: Grouping,
    pub(super) families: HashMap<Arc<str>, GroupFamily, RandomState>,
    pub(super) push_time: f64,
    pub(super) push_failure_time: f64,
    /// Store clock second of the last push (successful or not).
    pub(super) touched: u32,
}

pub(super) struct GroupFamily {
    pub(super) metric_type: MetricType,
    /// Its series' keys, in push order; the owner table points into them.
    pub(super) keys: Arc<FamilyKeys>,
    pub(super) pushed_at: f64,
}

/// A pushed group read back from a snapshot, for [`Store::restore_group`].
pub(super) struct RestoredGroup {
    pub(super) grouping: Grouping,
    pub(super) push_time: f64,
    pub(super) push_failure_time: f64,
    /// Its families (their own two series among them), each with the time
    /// of the push that last wrote it; their series are `batch.series`.
    pub(super) families: Vec<(PushedFamily, f64)>,
    pub(super) batch: crate::model::WriteBatch,
}

/// Limits for the two series promgate writes itself per group: its grouping
/// labels were checked when the path was read.
const OWN_SERIES: SeriesLimits = SeriesLimits {
    max_labels: usize::MAX,
    max_name_len: usize::MAX,
    max_value_len: usize::MAX,
    max_help_len: usize::MAX,
    max_histogram_buckets: 320,
};

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Registry {
    fn group_mut(&mut self, grouping: &Grouping, touched: u32) -> &mut Group {
        self.groups
            .entry(grouping.id().into())
            .or_insert_with(|| Group {
                grouping: grouping.clone(),
                families: HashMap::default(),
                push_time: 0.0,
                push_failure_time: 0.0,
                touched,
            })
    }
}

impl Groups {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store {
    /// Pushes `pushed` to group `grouping`: `replace` (`PUT`) replaces the
    /// whole group, otherwise (`POST`) only the families the push carries.
    /// Sets the group's `push_time_seconds` to `now`; an empty push only
    /// does that (and, with `replace`, empties the group).
    ///
    /// # Errors
    ///
    /// A [`PushConflict`] when the push is inconsistent with other groups
    /// or the store is full; nothing of it is stored, and the group's
    /// `push_failure_time_seconds` is set to `now` (the group is created
    /// for that if new, as the Pushgateway does).
    pub fn push(
        &self,
        grouping: &Grouping,
        pushed: PushBatch,
        replace: bool,
        now: SystemTime,
    ) -> Result<PushOutcome, PushConflict> {
        let mut reg = self.groups.lock();
        let gid: Arc<str> = grouping.id().into();
        let PushBatch {
            mut batch,
            families,
        } = pushed;

        // The families this push replaces; the group's own two series are
        // rewritten in place by every push instead.
        let own = reg.groups.get(&gid);
        let pushed_names: HashSet<&str, RandomState> = if replace {
            HashSet::default()
        } else {
            families.iter().map(|f| f.name.as_str()).collect()
        };
        let replaced: HashSet<Arc<str>, RandomState> = match own {
            Some(g) => g
                .families
                .keys()
                .filter(|name| {
                    let name: &str = name;
                    name != PUSH_TIME
                        && name != PUSH_FAILURE_TIME
                        && (replace || pushed_names.contains(name))
                })
                .cloned()
                .collect(),
            None => HashSet::default(),
        };
        // The families pushed again with the same type and the same keys in
        // the same order, as a job pushing every run does: their keys stay
        // theirs, so ownership is neither checked nor rewritten, and no key
        // of theirs goes stale. Their values are updated in place.
        let unchanged: Vec<bool> = families
            .iter()
            .map(|f| {
                own.and_then(|g| g.families.get(f.name.as_str()))
                    .is_some_and(|held| {
                        held.metric_type == f.metric_type
                            && held.keys.same_as(&batch, f.series.clone())
                    })
            })
            .collect();
        // Each key hashed once, as the store's tables hash it: for the
        // check's ownership questions, the store and the new ownership.
        let hashes: Vec<u64> = batch
            .series
            .iter()
            .map(|u| self.hasher.hash(batch.key(u).as_bytes()))
            .collect();
        // An unchanged family's keys are its own already: only the others'
        // ownership is checked.
        let changed_keys = families
            .iter()
            .zip(&unchanged)
            .filter(|&(_, &same)| !same)
            .flat_map(|(f, _)| f.series.clone())
            .map(|i| (batch.key(&batch.series[i]), hashes[i]));
        let kept: HashSet<&str, RandomState> = families
            .iter()
            .zip(&unchanged)
            .filter(|&(_, &same)| same)
            .map(|(f, _)| f.name.as_str())
            .collect();
        let leaving = self.leaving(&reg, &gid, &replaced, &kept, &batch, &hashes);
        if let Err(conflict) =
            self.check_push(&reg, &gid, &replaced, &families, changed_keys, leaving)
        {
            self.fail(&mut reg, grouping, now);
            return Err(conflict);
        }

        let stamp = reg.last_stamp_ms.max(
            now.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        );
        reg.last_stamp_ms = stamp;
        for u in &mut batch.series {
            u.latest.timestamp_ms = stamp;
        }
        // Admitted: the apply is not bounded again (see `ADMITTED`). The
        // series leaving are still held while the new ones are written.
        let applied = self.apply_hashed_at(&batch, self.now(), Some(&hashes), ADMITTED);

        // The new ownership; then what the push replaced and did not
        // write again leaves the store. Unchanged families keep theirs.
        let pushed_at = unix_seconds(now);
        // The families the push replaces and does not keep leave the group;
        // their keys are released once the new ownership is written, so a
        // key that moved to another family of the group stays.
        let mut removed: Vec<Arc<FamilyKeys>> = Vec::new();
        let mut released: Vec<Arc<str>> = Vec::new();
        {
            let reg = &mut *reg;
            if let Some(g) = reg.groups.get_mut(&gid) {
                for name in &replaced {
                    if let Some(held) = g.families.get_mut(name)
                        && kept.contains(&**name)
                    {
                        held.pushed_at = pushed_at;
                        continue;
                    }
                    if let Some(old) = g.families.remove(name) {
                        Self::count_type(&mut reg.types, name, old.metric_type, -1);
                        released.push(Arc::clone(name));
                        removed.push(old.keys);
                    }
                }
            }
        }

        let touched = self.now();
        let reg = &mut *reg;
        let g = reg.group_mut(grouping, touched);
        g.push_time = pushed_at;
        g.touched = touched;
        let mut owned: Vec<(Arc<FamilyKeys>, Range<usize>)> = Vec::new();
        let mut type_uses = Vec::new();
        for (
            PushedFamily {
                name,
                metric_type,
                series,
            },
            &same,
        ) in families.iter().zip(&unchanged)
        {
            if same {
                continue;
            }
            let name: Arc<str> = name.as_str().into();
            let keys = Arc::new(FamilyKeys::from_batch(&gid, &name, &batch, series.clone()));
            owned.push((Arc::clone(&keys), series.clone()));
            type_uses.push((Arc::clone(&name), *metric_type));
            g.families.insert(
                name,
                GroupFamily {
                    metric_type: *metric_type,
                    keys,
                    pushed_at,
                },
            );
        }
        // Room for every key at once: growing family by family would
        // rehash the table as many times as it doubles.
        reg.owners
            .reserve(owned.iter().map(|(keys, _)| keys.len()).sum());
        for (keys, series) in &owned {
            reg.owners.own_all(keys, &hashes[series.clone()]);
        }
        let mut stale: Vec<&str> = Vec::new();
        for keys in &removed {
            reg.owners
                .release_all(keys, |k| self.hasher.hash(k.as_bytes()), |k| stale.push(k));
        }
        let replaced_series = self.remove_pushed(stale.into_iter());
        for (name, t) in type_uses {
            Self::count_type(&mut reg.types, &name, t, 1);
        }
        // Only now: a family the push replaced and wrote again is held still.
        self.release_metadata(reg, &released);
        self.write_own_series(reg, &gid);
        Ok(PushOutcome {
            applied,
            replaced: replaced_series,
        })
    }

    /// Records a refused push to group `grouping` at `now`: its
    /// `push_failure_time_seconds`, the group created for it if new (the
    /// Pushgateway does so for every push refused after parsing, timestamps
    /// and duplicates included).
    pub fn record_push_failure(&self, grouping: &Grouping, now: SystemTime) {
        let mut reg = self.groups.lock();
        self.fail(&mut reg, grouping, now);
    }

    fn fail(&self, reg: &mut Registry, grouping: &Grouping, now: SystemTime) {
        // A new group costs its two series: a refusal creates one only
        // while the store has room for them, so refused pushes cannot grow
        // the registry past --limits.series.
        if !reg.groups.contains_key(grouping.id())
            && self.live_series() + 2 > self.limits.max_series
        {
            return;
        }
        let touched = self.now();
        let g = reg.group_mut(grouping, touched);
        g.push_failure_time = unix_seconds(now);
        g.touched = touched;
        let gid: Arc<str> = grouping.id().into();
        self.write_own_series(reg, &gid);
    }

    fn count_type(
        types: &mut HashMap<Arc<str>, Vec<(MetricType, usize)>, RandomState>,
        family: &Arc<str>,
        t: MetricType,
        delta: isize,
    ) {
        let uses = types.entry(Arc::clone(family)).or_default();
        match uses.iter_mut().find(|(u, _)| *u == t) {
            Some((_, n)) => *n = n.saturating_add_signed(delta),
            None if delta > 0 => uses.push((t, delta as usize)),
            None => {}
        }
        uses.retain(|&(_, n)| n > 0);
        if uses.is_empty() {
            types.remove(family);
        }
    }

    /// How many series leave the store once a push to group `gid` is
    /// applied: the keys of the families it replaces and does not keep
    /// (`kept`: pushed again unchanged) that those families still own and
    /// the push (`batch`, its keys' store hashes `hashes`) does not write
    /// again. None for a new group, or one whose families all stay.
    fn leaving(
        &self,
        reg: &Registry,
        gid: &Arc<str>,
        replaced: &HashSet<Arc<str>, RandomState>,
        kept: &HashSet<&str, RandomState>,
        batch: &crate::model::WriteBatch,
        hashes: &[u64],
    ) -> usize {
        let Some(g) = reg.groups.get(gid) else {
            return 0;
        };
        let lists: Vec<&Arc<FamilyKeys>> = replaced
            .iter()
            .filter(|name| !kept.contains(&***name))
            .filter_map(|name| g.families.get(name).map(|f| &f.keys))
            .collect();
        if lists.is_empty() {
            return 0;
        }
        let mut pushed: HashTable<usize> = HashTable::with_capacity(hashes.len());
        for (i, &h) in hashes.iter().enumerate() {
            pushed.insert_unique(h, i, |&j| hashes[j]);
        }
        let mut n = 0;
        for list in lists {
            for key in list.iter() {
                let hash = self.hasher.hash(key.as_bytes());
                let still_its = reg
                    .owners
                    .get(key, hash)
                    .is_some_and(|o| std::ptr::eq(o, &**list));
                let again = pushed
                    .find(hash, |&i| batch.key(&batch.series[i]) == key)
                    .is_some();
                n += usize::from(still_its && !again);
            }
        }
        n
    }

    /// The push's conflicts with other groups and with the store's limit;
    /// `changed_keys` are the keys (and store hashes) of the families not
    /// pushed again unchanged, whose ownership is in question.
    fn check_push<'k>(
        &self,
        reg: &Registry,
        gid: &Arc<str>,
        replaced: &HashSet<Arc<str>, RandomState>,
        families: &[PushedFamily],
        changed_keys: impl Iterator<Item = (&'k str, u64)>,
        leaving: usize,
    ) -> Result<(), PushConflict> {
        let own = reg.groups.get(gid);
        for f in families {
            let Some(uses) = reg.types.get(f.name.as_str()) else {
                continue;
            };
            let mine = own
                .and_then(|g| g.families.get(f.name.as_str()))
                .map(|gf| gf.metric_type);
            for &(t, n) in uses {
                let others = n - usize::from(mine == Some(t));
                if t != f.metric_type && others > 0 {
                    let group = reg
                        .groups
                        .iter()
                        .find(|(id, g)| {
                            *id != gid
                                && g.families
                                    .get(f.name.as_str())
                                    .is_some_and(|gf| gf.metric_type == t)
                        })
                        .map_or_else(String::new, |(id, _)| id.to_string());
                    return Err(PushConflict::TypeMismatch {
                        family: f.name.clone(),
                        pushed: f.metric_type,
                        held: t,
                        group,
                    });
                }
            }
        }
        // What the page's families would be after the push: its own, and
        // every other one held except those it replaces. (The push's own by
        // name: a push of a thousand families asks about each several times.)
        let pushed: HashMap<&str, MetricType, RandomState> = families
            .iter()
            .map(|f| (f.name.as_str(), f.metric_type))
            .collect();
        let present = |name: &str| -> Option<MetricType> {
            if let Some(&t) = pushed.get(name) {
                return Some(t);
            }
            let mine = own
                .filter(|_| replaced.contains(name))
                .and_then(|g| g.families.get(name))
                .map(|gf| gf.metric_type);
            reg.types.get(name).and_then(|uses| {
                uses.iter()
                    .find(|&&(t, n)| n > usize::from(mine == Some(t)))
                    .map(|&(t, _)| t)
            })
        };
        for f in families {
            let name = f.name.as_str();
            for suffix in ["_count", "_sum", "_bucket"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    let clash = match present(base) {
                        // A gauge histogram (pushed native) too: its
                        // classic form on a text page has these series.
                        Some(MetricType::Histogram | MetricType::GaugeHistogram) => true,
                        Some(MetricType::Summary) => suffix != "_bucket",
                        _ => false,
                    };
                    if clash {
                        return Err(PushConflict::NameCollision {
                            family: base.to_string(),
                            other: name.to_string(),
                        });
                    }
                }
                let structured = match f.metric_type {
                    MetricType::Histogram | MetricType::GaugeHistogram => true,
                    MetricType::Summary => suffix != "_bucket",
                    _ => false,
                };
                let series = format!("{name}{suffix}");
                if structured && present(&series).is_some() {
                    return Err(PushConflict::NameCollision {
                        family: name.to_string(),
                        other: series,
                    });
                }
            }
        }
        // A new group's own two series (`push_time_seconds`,
        // `push_failure_time_seconds`) are new series too: counted, or a
        // push that fits only without them would be answered 200 and one of
        // them left out.
        let mut new = if own.is_some() { 0 } else { 2 };
        for (key, hash) in changed_keys {
            match reg.owners.get(key, hash) {
                None => new += 1,
                Some(o) if o.group == *gid && replaced.contains(&o.family) => {}
                Some(o) => {
                    return Err(PushConflict::DuplicateSeries {
                        key: key.to_string(),
                        group: o.group.to_string(),
                    });
                }
            }
        }
        let max = self.limits.max_series;
        // A push that adds no more than it removes is admitted even with
        // the store past the limit (where a push racing remote writers can
        // leave it, see `ADMITTED`): a job pushing the same series again
        // must not fail until remote-written series leave.
        if new > leaving && self.live_series().saturating_add(new - leaving) > max {
            return Err(PushConflict::SeriesLimit(Rejection {
                reason: crate::model::RejectReason::SeriesLimit,
                detail: format!(
                    "the push would add {new} series{}{} to {} live, more than the limit of {max}",
                    if own.is_some() {
                        ""
                    } else {
                        " (2 of them the new group's push times)"
                    },
                    if leaving > 0 {
                        format!(" and remove {leaving}")
                    } else {
                        String::new()
                    },
                    self.live_series()
                ),
            }));
        }
        Ok(())
    }

    /// Writes group `gid`'s `push_time_seconds` and
    /// `push_failure_time_seconds` series and their metadata.
    fn write_own_series(&self, reg: &mut Registry, gid: &Arc<str>) {
        let Some(g) = reg.groups.get_mut(gid) else {
            return;
        };
        let mut batch = crate::model::WriteBatch::default();
        let mut scratch = Vec::new();
        let stamp = reg.last_stamp_ms;
        for (name, help, value) in [
            (PUSH_TIME, PUSH_TIME_HELP, g.push_time),
            (
                PUSH_FAILURE_TIME,
                PUSH_FAILURE_TIME_HELP,
                g.push_failure_time,
            ),
        ] {
            let labels = std::iter::once(("__name__", name)).chain(
                g.grouping
                    .labels()
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            );
            let key = build_pushed_key(labels, &OWN_SERIES, &mut scratch, &mut batch.keys)
                .expect("grouping labels are valid label names");
            batch.series.push(SeriesUpdate {
                key,
                latest: Sample {
                    value,
                    timestamp_ms: stamp,
                },
                samples: 1,
                exemplars: 0,
                exemplar: crate::model::NO_EXEMPLAR,
                histogram: crate::model::NO_HISTOGRAM,
            });
            batch.metadata.push((
                name.to_string(),
                Metadata {
                    metric_type: MetricType::Gauge,
                    help: help.to_string(),
                    unit: String::new(),
                },
            ));
            // A group's own series never change key: written once.
            if !g.families.contains_key(name) {
                let key = batch.key(batch.series.last().expect("just pushed"));
                let family: Arc<str> = name.into();
                let keys = Arc::new(FamilyKeys::one(gid, &family, key));
                reg.owners
                    .own_all(&keys, &[self.hasher.hash(key.as_bytes())]);
                g.families.insert(
                    Arc::clone(&family),
                    GroupFamily {
                        metric_type: MetricType::Gauge,
                        keys,
                        pushed_at: g.push_time,
                    },
                );
                Self::count_type(&mut reg.types, &family, MetricType::Gauge, 1);
            }
        }
        // Counted by the caller's check: admitted (see `ADMITTED`).
        self.apply_hashed_at(&batch, self.now(), None, ADMITTED);
    }

    /// Deletes group `grouping` and its series; `false` if there was none
    /// (not an error: the Pushgateway answers both alike).
    pub fn delete_group(&self, grouping: &Grouping) -> bool {
        let mut reg = self.groups.lock();
        let Some(g) = reg.groups.remove(grouping.id()) else {
            return false;
        };
        self.drop_group(&mut reg, g);
        true
    }

    /// Deletes every pushed group; returns how many there were.
    pub fn wipe_groups(&self) -> usize {
        let mut reg = self.groups.lock();
        let groups: Vec<Group> = reg.groups.drain().map(|(_, g)| g).collect();
        let n = groups.len();
        for g in groups {
            self.drop_group(&mut reg, g);
        }
        n
    }

    /// Deletes the groups not pushed to for more than `ttl` (`--push.ttl`;
    /// none when `None`); returns how many.
    pub fn sweep_groups(&self, ttl: Option<Duration>) -> usize {
        let Some(ttl) = ttl else { return 0 };
        let ttl = ttl.as_secs().min(u64::from(u32::MAX)) as u32;
        let now = self.now();
        let mut reg = self.groups.lock();
        let expired: Vec<Arc<str>> = reg
            .groups
            .iter()
            .filter(|(_, g)| now.saturating_sub(g.touched) > ttl)
            .map(|(id, _)| Arc::clone(id))
            .collect();
        for id in &expired {
            if let Some(g) = reg.groups.remove(id) {
                self.drop_group(&mut reg, g);
            }
        }
        expired.len()
    }

    fn drop_group(&self, reg: &mut Registry, g: Group) {
        let mut lists = Vec::with_capacity(g.families.len());
        let mut released = Vec::with_capacity(g.families.len());
        for (name, f) in g.families {
            Self::count_type(&mut reg.types, &name, f.metric_type, -1);
            lists.push(f.keys);
            released.push(name);
        }
        let mut keys = Vec::new();
        for list in &lists {
            reg.owners
                .release_all(list, |k| self.hasher.hash(k.as_bytes()), |k| keys.push(k));
        }
        self.remove_pushed(keys.into_iter());
        self.release_metadata(reg, &released);
    }

    /// Removes the metadata of the families among `released` that no group
    /// holds any more. A name's metadata is the pushes' while a group holds
    /// it (every push rewrites it), so it leaves with the last of them,
    /// whoever wrote it last: left behind, a histogram's or summary's TYPE
    /// would draw a later `x_count`, `x_sum` or `x_bucket` into a family it
    /// is not part of, and pushed series never expire. A remote writer that
    /// describes series of the name sends its metadata again (Prometheus
    /// once per metadata interval, Remote-Write 2.0 with every series).
    fn release_metadata(&self, reg: &Registry, released: &[Arc<str>]) {
        for name in released {
            if !reg.types.contains_key(name) {
                self.metadata.remove(&**name);
            }
        }
    }

    /// Removes the series with these canonical keys; returns how many were
    /// live.
    fn remove_pushed<'k>(&self, keys: impl Iterator<Item = &'k str>) -> usize {
        let mut removed = 0;
        for key in keys {
            let name = crate::model::name_in_key(key);
            let Some(metric) = self.metrics.get(name) else {
                continue;
            };
            let hash = self.hasher.hash(key.as_bytes());
            let mut shard = write(&metric.shards[super::table::shard_of(hash)]);
            let super::table::Shard { series, extras } = &mut *shard;
            if let Some(e) = series.remove(hash, |e| e.key() == key.as_bytes()) {
                extras.forget(&e);
                metric.removed(&e);
                removed += 1;
            }
        }
        self.live
            .fetch_sub(removed, std::sync::atomic::Ordering::Relaxed);
        removed
    }

    /// Restores a group read from a snapshot, its series last updated at
    /// store-clock second `touched`: `Ok(false)` (and nothing stored) when
    /// its series do not fit under `--limits.series`, as a push would be
    /// refused whole.
    ///
    /// # Errors
    ///
    /// The group is inconsistent with itself or with the groups restored
    /// before it (a group, family or series twice, a series not marked as
    /// pushed): the snapshot is not one promgate wrote.
    pub(super) fn restore_group(
        &self,
        restored: RestoredGroup,
        touched: u32,
    ) -> Result<bool, String> {
        let RestoredGroup {
            grouping,
            push_time,
            push_failure_time,
            families,
            batch,
        } = restored;
        let mut reg = self.groups.lock();
        let gid: Arc<str> = grouping.id().into();
        if reg.groups.contains_key(&gid) {
            return Err(format!("group {gid} appears twice"));
        }
        let hashes: Vec<u64> = batch
            .series
            .iter()
            .map(|u| self.hasher.hash(batch.key(u).as_bytes()))
            .collect();
        let mut keys = HashSet::with_capacity(batch.series.len());
        for (u, &hash) in batch.series.iter().zip(&hashes) {
            let key = batch.key(u);
            if !u.key.traits.pushed() {
                return Err(format!(
                    "series {key} of group {gid} is not marked as pushed"
                ));
            }
            if reg.owners.get(key, hash).is_some() || !keys.insert(key) {
                return Err(format!("series {key} belongs to two groups or families"));
            }
        }
        if self.live_series().saturating_add(batch.series.len()) > self.limits.max_series {
            return Ok(false);
        }
        let applied = self.apply_hashed_at(&batch, touched, Some(&hashes), 0);
        if applied.created != batch.series.len() as u64 {
            // Groups are restored first, each key checked above: a series
            // that was not created is a stale marker or a duplicate.
            return Err(format!("group {gid} has series that cannot be stored"));
        }
        let mut group = Group {
            grouping,
            families: HashMap::with_capacity_and_hasher(families.len(), RandomState::default()),
            push_time,
            push_failure_time,
            touched,
        };
        let reg = &mut *reg;
        for (family, pushed_at) in families {
            let name: Arc<str> = family.name.as_str().into();
            let keys = Arc::new(FamilyKeys::from_batch(
                &gid,
                &name,
                &batch,
                family.series.clone(),
            ));
            reg.owners.own_all(&keys, &hashes[family.series]);
            Self::count_type(&mut reg.types, &name, family.metric_type, 1);
            let previous = group.families.insert(
                Arc::clone(&name),
                GroupFamily {
                    metric_type: family.metric_type,
                    keys,
                    pushed_at,
                },
            );
            if previous.is_some() {
                return Err(format!("family {name} appears twice in group {gid}"));
            }
        }
        reg.groups.insert(gid, group);
        Ok(true)
    }

    /// Number of pushed groups.
    pub fn group_count(&self) -> usize {
        self.groups.lock().groups.len()
    }

    /// Every pushed group with its families and series, for the query API;
    /// groups sorted by grouping key, families by name.
    pub fn group_views(&self) -> Vec<GroupView> {
        self.group_ids()
            .iter()
            .filter_map(|id| self.group_view(id))
            .collect()
    }

    /// The grouping key (`Grouping::id`) of every pushed group, sorted.
    pub fn group_ids(&self) -> Vec<Arc<str>> {
        let reg = self.groups.lock();
        let mut ids: Vec<Arc<str>> = reg.groups.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Group `id` with its families (sorted by name) and series; `None`
    /// once it is gone. One group at a time, so that a listing holds one
    /// group's series, not every group's.
    pub fn group_view(&self, id: &str) -> Option<GroupView> {
        // The registry's lock only while the family lists are taken (they
        // are shared, never changed): looking 100k series up under it held
        // pushes back for 140 ms.
        let (labels, push_time, push_failure_time, lists) = {
            let reg = self.groups.lock();
            let g = reg.groups.get(id)?;
            let lists: Vec<(Arc<str>, MetricType, f64, Arc<FamilyKeys>)> = g
                .families
                .iter()
                .map(|(name, f)| {
                    (
                        Arc::clone(name),
                        f.metric_type,
                        f.pushed_at,
                        Arc::clone(&f.keys),
                    )
                })
                .collect();
            (
                g.grouping.labels().to_vec(),
                g.push_time,
                g.push_failure_time,
                lists,
            )
        };
        let mut families: Vec<FamilyView> = lists
            .into_iter()
            .map(|(name, metric_type, pushed_at, keys)| {
                let mut series = Vec::with_capacity(keys.len());
                let mut native_sums = Vec::new();
                for k in keys.iter() {
                    let found = self.find(k, |e, extras| {
                        (e.sample().value, extras.histogram(e).map(|h| h.sum()))
                    });
                    if let Some((value, sum)) = found {
                        if let Some(sum) = sum {
                            native_sums.push((series.len(), sum));
                        }
                        series.push((k.to_string(), value));
                    }
                }
                FamilyView {
                    name: name.to_string(),
                    metric_type,
                    help: self.metadata(&name).map(|m| m.help).unwrap_or_default(),
                    pushed_at,
                    series,
                    native_sums,
                }
            })
            .collect();
        families.sort_by(|a, b| a.name.cmp(&b.name));
        Some(GroupView {
            labels,
            push_time,
            push_failure_time,
            families,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::push::{self, Labels, ParsedFamily, ParsedSample};
    use crate::ingest::{Limits, Rules};
    use crate::store::StoreLimits;

    fn rules() -> Rules {
        Limits {
            max_decoded_bytes: 1 << 20,
            series: crate::config::Config::default().series_limits(),
            future_window: None,
        }
        .rules(0)
    }

    /// A sample: name, labels, value.
    type S<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

    fn family(name: &str, t: MetricType, samples: &[S<'_>]) -> ParsedFamily<'static> {
        ParsedFamily {
            name: name.to_string().into(),
            help: Some(format!("help of {name}")),
            metric_type: t,
            samples: samples
                .iter()
                .map(|(n, labels, v)| ParsedSample {
                    name: n.to_string().into(),
                    labels: Labels::from_pairs(labels.iter().copied()),
                    value: *v,
                    timestamp_ms: None,
                })
                .collect(),
            natives: Vec::new(),
        }
    }

    fn group(job: &str, labels: &[(&str, &str)]) -> Grouping {
        Grouping::new(
            job.into(),
            labels
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect(),
        )
        .unwrap()
    }

    /// Gauge family `name` of one series per value `values` of label
    /// `label`, each of value 1.
    fn gauges(name: &str, label: &str, values: std::ops::Range<usize>) -> ParsedFamily<'static> {
        let values: Vec<String> = values.map(|i| i.to_string()).collect();
        let labels: Vec<[(&str, &str); 1]> = values.iter().map(|v| [(label, v.as_str())]).collect();
        let samples: Vec<S<'_>> = labels.iter().map(|l| (name, &l[..], 1.0)).collect();
        family(name, MetricType::Gauge, &samples)
    }

    fn push(
        s: &Store,
        g: &Grouping,
        families: &[ParsedFamily<'_>],
        replace: bool,
        at: u64,
    ) -> Result<PushOutcome, PushConflict> {
        let batch = push::lower(families, g, &rules(), 0).unwrap();
        s.push(g, batch, replace, UNIX_EPOCH + Duration::from_secs(at))
    }

    /// Remote-writes one sample to each series `labels` names (name
    /// first, as `__name__`), as a remote-write request's batch would.
    fn remote_write(s: &Store, series: &[&[(&str, &str)]], value: f64, timestamp_ms: i64) {
        s.apply(&remote_write_batch(series, value, timestamp_ms));
    }

    /// The batch [`remote_write`] applies.
    fn remote_write_batch(
        series: &[&[(&str, &str)]],
        value: f64,
        timestamp_ms: i64,
    ) -> crate::model::WriteBatch {
        let mut b = crate::model::WriteBatch::default();
        for labels in series {
            let key = crate::model::build_key(
                labels.iter().copied(),
                &rules().series,
                &mut Vec::new(),
                &mut b.keys,
            )
            .unwrap();
            b.series.push(SeriesUpdate {
                key,
                latest: Sample {
                    value,
                    timestamp_ms,
                },
                samples: 1,
                exemplars: 0,
                exemplar: crate::model::NO_EXEMPLAR,
                histogram: crate::model::NO_HISTOGRAM,
            });
        }
        b
    }

    fn store() -> Store {
        Store::new(StoreLimits {
            max_series: 100,
            max_metadata: 100,
        })
    }

    fn value(s: &Store, key: &str) -> Option<f64> {
        s.get(key).map(|x| x.value)
    }

    #[test]
    fn put_replaces_the_group_post_only_the_families_it_carries() {
        let s = store();
        let g = group("batch", &[("instance", "a")]);
        let a = family("a", MetricType::Gauge, &[("a", &[("x", "1")], 1.0)]);
        let b = family("b", MetricType::Counter, &[("b", &[], 2.0)]);
        push(&s, &g, &[a, b], true, 100).unwrap();
        assert_eq!(value(&s, r#"a{instance="a",job="batch",x="1"}"#), Some(1.0));
        assert_eq!(value(&s, r#"b{instance="a",job="batch"}"#), Some(2.0));
        assert_eq!(
            value(&s, r#"push_time_seconds{instance="a",job="batch"}"#),
            Some(100.0)
        );
        assert_eq!(
            value(&s, r#"push_failure_time_seconds{instance="a",job="batch"}"#),
            Some(0.0)
        );

        // POST of `a` with another series: `a`'s old series goes, `b` stays.
        let a2 = family("a", MetricType::Gauge, &[("a", &[("x", "2")], 3.0)]);
        let out = push(&s, &g, &[a2], false, 200).unwrap();
        assert_eq!(out.replaced, 1);
        assert_eq!(value(&s, r#"a{instance="a",job="batch",x="1"}"#), None);
        assert_eq!(value(&s, r#"a{instance="a",job="batch",x="2"}"#), Some(3.0));
        assert_eq!(value(&s, r#"b{instance="a",job="batch"}"#), Some(2.0));
        assert_eq!(
            value(&s, r#"push_time_seconds{instance="a",job="batch"}"#),
            Some(200.0)
        );

        // PUT of `b` alone: `a` goes.
        let b2 = family("b", MetricType::Counter, &[("b", &[], 5.0)]);
        push(&s, &g, &[b2], true, 300).unwrap();
        assert_eq!(value(&s, r#"a{instance="a",job="batch",x="2"}"#), None);
        assert_eq!(value(&s, r#"b{instance="a",job="batch"}"#), Some(5.0));
        // b, push_time_seconds, push_failure_time_seconds.
        assert_eq!(s.live_series(), 3);

        assert!(s.delete_group(&g));
        assert_eq!(s.live_series(), 0);
        assert!(!s.delete_group(&g));
        assert_eq!(s.group_count(), 0);
    }

    #[test]
    fn a_push_of_the_same_series_updates_them_and_keeps_their_ownership() {
        let s = store();
        let g = group("cron", &[]);
        let m = |v: f64| {
            family(
                "m",
                MetricType::Gauge,
                &[("m", &[("x", "1")], v), ("m", &[("x", "2")], v + 1.0)],
            )
        };
        let c = |v: f64| family("c", MetricType::Counter, &[("c", &[], v)]);
        push(&s, &g, &[m(1.0), c(5.0)], true, 1).unwrap();
        // The same keys again, PUT then POST: new values, nothing replaced.
        let out = push(&s, &g, &[m(10.0), c(6.0)], true, 2).unwrap();
        assert_eq!((out.replaced, out.applied.created), (0, 0));
        assert_eq!(value(&s, r#"m{instance="",job="cron",x="1"}"#), Some(10.0));
        assert_eq!(value(&s, r#"m{instance="",job="cron",x="2"}"#), Some(11.0));
        assert_eq!(value(&s, r#"c{instance="",job="cron"}"#), Some(6.0));
        let out = push(&s, &g, &[m(20.0)], false, 3).unwrap();
        assert_eq!(out.replaced, 0);
        let pushed_at = |family: &str| {
            let views = s.group_views();
            let f = views[0].families.iter().find(|f| f.name == family);
            f.map(|f| f.pushed_at)
        };
        assert_eq!((pushed_at("m"), pushed_at("c")), (Some(3.0), Some(2.0)));
        assert_eq!(value(&s, r#"m{instance="",job="cron",x="1"}"#), Some(20.0));
        assert_eq!(value(&s, r#"c{instance="",job="cron"}"#), Some(6.0));
        // Still this group's: another group may not push them.
        let err = push(
            &s,
            &group("cron", &[("x", "1")]),
            &[family("m", MetricType::Gauge, &[("m", &[], 1.0)])],
            true,
            4,
        )
        .unwrap_err();
        assert!(matches!(err, PushConflict::DuplicateSeries { .. }), "{err}");
        // A PUT that keeps one family unchanged and drops the other.
        let out = push(&s, &g, &[m(30.0)], true, 5).unwrap();
        assert_eq!(out.replaced, 1);
        assert_eq!(value(&s, r#"c{instance="",job="cron"}"#), None);
        assert_eq!(value(&s, r#"m{instance="",job="cron",x="2"}"#), Some(31.0));
        // The same type but other keys: the old key goes.
        let other = family("m", MetricType::Gauge, &[("m", &[("x", "3")], 7.0)]);
        let out = push(&s, &g, &[other], true, 6).unwrap();
        assert_eq!(out.replaced, 2);
        assert_eq!(value(&s, r#"m{instance="",job="cron",x="1"}"#), None);
        assert_eq!(value(&s, r#"m{instance="",job="cron",x="3"}"#), Some(7.0));
        // The group's view shows what it holds.
        let views = s.group_views();
        let view = views.iter().find(|v| v.labels.len() == 1).unwrap();
        let names: Vec<&str> = view.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["m", "push_failure_time_seconds", "push_time_seconds"]
        );
        assert_eq!(view.families[0].pushed_at, 6.0);
        assert_eq!(view.families[0].series.len(), 1);
        // m{x="3"} and the two groups' push_time_seconds and
        // push_failure_time_seconds (the refused push created its group).
        assert_eq!(s.live_series(), 5);
    }

    #[test]
    fn grouping_labels_override_the_body_and_instance_defaults_to_empty() {
        let s = store();
        let g = group("j", &[("zone", "eu")]);
        let f = family(
            "m",
            MetricType::Unknown,
            &[("m", &[("job", "other"), ("zone", "us"), ("k", "v")], 1.0)],
        );
        push(&s, &g, &[f], true, 1).unwrap();
        assert_eq!(
            value(&s, r#"m{instance="",job="j",k="v",zone="eu"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn a_type_conflict_with_another_group_stores_nothing_and_records_the_failure() {
        let s = store();
        let g1 = group("one", &[]);
        let g2 = group("two", &[]);
        push(
            &s,
            &g1,
            &[family("m", MetricType::Counter, &[("m", &[], 1.0)])],
            true,
            10,
        )
        .unwrap();
        let before = s.live_series();
        let err = push(
            &s,
            &g2,
            &[family("m", MetricType::Gauge, &[("m", &[], 2.0)])],
            true,
            20,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PushConflict::TypeMismatch { group, .. } if group == r#"{job="one"}"#),
            "{err}"
        );
        assert_eq!(value(&s, r#"m{instance="",job="two"}"#), None);
        // The failed group exists, with its failure time and no push time.
        assert_eq!(
            value(&s, r#"push_failure_time_seconds{instance="",job="two"}"#),
            Some(20.0)
        );
        assert_eq!(
            value(&s, r#"push_time_seconds{instance="",job="two"}"#),
            Some(0.0)
        );
        assert_eq!(s.live_series(), before + 2);
        // The same group may change its own family's type.
        push(
            &s,
            &g1,
            &[family("m", MetricType::Gauge, &[("m", &[], 3.0)])],
            true,
            30,
        )
        .unwrap();
        // Now `two` may push `m` as a gauge.
        push(
            &s,
            &g2,
            &[family("m", MetricType::Gauge, &[("m", &[], 4.0)])],
            true,
            40,
        )
        .unwrap();
        assert_eq!(value(&s, r#"m{instance="",job="two"}"#), Some(4.0));
    }

    #[test]
    fn a_family_named_like_a_histograms_series_is_refused() {
        let s = store();
        let h = family(
            "h",
            MetricType::Histogram,
            &[("h_bucket", &[("le", "+Inf")], 1.0), ("h_count", &[], 1.0)],
        );
        push(&s, &group("a", &[]), &[h], true, 1).unwrap();
        let err = push(
            &s,
            &group("b", &[]),
            &[family(
                "h_count",
                MetricType::Gauge,
                &[("h_count", &[], 2.0)],
            )],
            true,
            2,
        )
        .unwrap_err();
        assert!(matches!(err, PushConflict::NameCollision { .. }), "{err}");
        // The other way round: a summary over an existing `s_sum`.
        push(
            &s,
            &group("a", &[]),
            &[family("s_sum", MetricType::Gauge, &[("s_sum", &[], 1.0)])],
            false,
            3,
        )
        .unwrap();
        let err = push(
            &s,
            &group("b", &[]),
            &[family("s", MetricType::Summary, &[("s_count", &[], 1.0)])],
            true,
            4,
        )
        .unwrap_err();
        assert!(matches!(err, PushConflict::NameCollision { .. }), "{err}");
        // A group may replace its own colliding family in one push.
        push(
            &s,
            &group("a", &[]),
            &[family(
                "h_count",
                MetricType::Gauge,
                &[("h_count", &[], 1.0)],
            )],
            true,
            5,
        )
        .unwrap();
    }

    #[test]
    fn a_series_pushed_by_two_groups_is_refused() {
        let s = store();
        // {job="a"} pushes m{x="1"}; {job="a",x="1"} pushes m: the same series.
        let g1 = group("a", &[]);
        let g2 = group("a", &[("x", "1")]);
        push(
            &s,
            &g1,
            &[family("m", MetricType::Gauge, &[("m", &[("x", "1")], 1.0)])],
            true,
            1,
        )
        .unwrap();
        let err = push(
            &s,
            &g2,
            &[family("m", MetricType::Gauge, &[("m", &[], 2.0)])],
            true,
            2,
        )
        .unwrap_err();
        assert!(matches!(err, PushConflict::DuplicateSeries { .. }), "{err}");
        assert_eq!(value(&s, r#"m{instance="",job="a",x="1"}"#), Some(1.0));
    }

    #[test]
    fn the_series_limit_refuses_a_push_whole() {
        let s = Store::new(StoreLimits {
            max_series: 5,
            max_metadata: 100,
        });
        let g = group("a", &[]);
        let err = push(&s, &g, &[gauges("m", "i", 0..10)], true, 1).unwrap_err();
        assert!(matches!(err, PushConflict::SeriesLimit(_)), "{err}");
        assert_eq!(s.get(r#"m{i="0",instance="",job="a"}"#), None);
    }

    #[test]
    fn a_push_replacing_series_near_the_limit_is_counted_after_the_replacement() {
        let s = Store::new(StoreLimits {
            max_series: 100,
            max_metadata: 100,
        });
        // Values `from..from + n` of label `i`, in family `name`.
        let gauge = |name: &str, from: usize, n: usize| gauges(name, "i", from..from + n);
        let a = group("a", &[]);
        // 90 series and the group's own 2: 92 of 100.
        push(&s, &a, &[gauge("x", 0, 90)], true, 1).unwrap();
        assert_eq!(s.live_series(), 92);
        // A PUT of 90 other series: 92 again once the first 90 leave.
        push(&s, &a, &[gauge("x", 1000, 90)], true, 2).unwrap();
        assert_eq!(s.live_series(), 92);
        assert_eq!(s.get(r#"x{i="0",instance="",job="a"}"#), None);
        assert!(s.get(r#"x{i="1089",instance="",job="a"}"#).is_some());
        // A POST of the family with 40 of them and 50 new ones: 92 again.
        push(&s, &a, &[gauge("x", 1050, 90)], false, 3).unwrap();
        assert_eq!(s.live_series(), 92);
        // Moved to another name, the same count of series fits too.
        push(&s, &a, &[gauge("y", 0, 90)], true, 4).unwrap();
        assert_eq!(s.live_series(), 92);
        assert_eq!(s.get(r#"x{i="1050",instance="",job="a"}"#), None);
        // One more than fits after the replacement is refused, whole.
        let err = push(&s, &a, &[gauge("z", 0, 99)], true, 5).unwrap_err();
        assert!(matches!(err, PushConflict::SeriesLimit(_)), "{err}");
        assert!(
            err.to_string()
                .contains("would add 99 series and remove 90 to 92 live"),
            "{err}"
        );
        assert_eq!(s.get(r#"z{i="0",instance="",job="a"}"#), None);
        assert!(s.get(r#"y{i="0",instance="",job="a"}"#).is_some());
        assert_eq!(s.live_series(), 92);
        // Up to the limit exactly once the replaced series leave: 98 and
        // the group's own 2.
        push(&s, &a, &[gauge("z", 0, 98)], true, 6).unwrap();
        assert_eq!(s.live_series(), 100);
    }

    #[test]
    fn a_new_groups_own_series_count_against_the_series_limit() {
        let s = Store::new(StoreLimits {
            max_series: 10,
            max_metadata: 100,
        });
        let gauge = |name: &str, n: usize| gauges(name, "i", 0..n);
        // 4 series and the group's own 2: 6 of 10.
        push(&s, &group("a", &[]), &[gauge("x", 4)], true, 1).unwrap();
        // 3 more and their group's own 2 would be 11.
        let err = push(&s, &group("b", &[]), &[gauge("y", 3)], true, 2).unwrap_err();
        assert!(matches!(err, PushConflict::SeriesLimit(_)), "{err}");
        assert_eq!(s.get(r#"y{i="0",instance="",job="b"}"#), None);
        // The refusal made group b, with its failure time: 8 of 10.
        assert_eq!(s.live_series(), 8);
        // Group b exists: 2 more series fit.
        push(&s, &group("b", &[]), &[gauge("y", 2)], true, 3).unwrap();
        assert_eq!(s.live_series(), 10);
        // A new group with no series still needs room for its own 2.
        let err = push(&s, &group("c", &[]), &[], true, 4).unwrap_err();
        assert!(matches!(err, PushConflict::SeriesLimit(_)), "{err}");
        assert_eq!(s.get(r#"push_time_seconds{instance="",job="c"}"#), None);
        assert_eq!(s.live_series(), 10);
    }

    #[test]
    fn refused_pushes_create_no_group_the_store_has_no_room_for() {
        let s = Store::new(StoreLimits {
            max_series: 3,
            max_metadata: 100,
        });
        let m = || family("m", MetricType::Gauge, &[("m", &[], 1.0)]);
        push(&s, &group("a", &[]), &[m()], true, 1).unwrap();
        assert_eq!(s.live_series(), 3);
        for job in ["b", "c", "d"] {
            let err = push(&s, &group(job, &[]), &[m()], true, 2).unwrap_err();
            assert!(matches!(err, PushConflict::SeriesLimit(_)), "{err}");
        }
        assert_eq!(s.group_count(), 1);
        assert_eq!(s.live_series(), 3);
    }

    #[test]
    fn pushed_series_outlive_the_series_ttl_and_leave_with_their_group() {
        let mut s = store();
        s.epoch = std::time::Instant::now()
            .checked_sub(Duration::from_secs(1000))
            .unwrap();
        let g = group("a", &[]);
        push(
            &s,
            &g,
            &[family("m", MetricType::Gauge, &[("m", &[], 1.0)])],
            true,
            1,
        )
        .unwrap();
        s.backdate(120);
        for g in s.groups.lock().groups.values_mut() {
            g.touched -= 120;
        }
        assert_eq!(s.sweep(Some(Duration::from_secs(60))), 0);
        assert_eq!(value(&s, r#"m{instance="",job="a"}"#), Some(1.0));
        assert_eq!(s.sweep_groups(None), 0);
        assert_eq!(s.sweep_groups(Some(Duration::from_secs(300))), 0);
        assert_eq!(s.sweep_groups(Some(Duration::from_secs(60))), 1);
        assert_eq!(s.live_series(), 0);
        assert_eq!(s.group_count(), 0);
    }

    /// One series both pushed and remote-written: the push takes it over
    /// (it is its group's, kept past `--series.ttl`), a remote write only
    /// updates its value, and a remote-written stale marker leaves it, so
    /// every owned key stays a live series and a replacing push's count
    /// of the series leaving is right (found by review: a store past
    /// `--limits.series`, a push answered 200 with its series dropped).
    #[test]
    fn a_pushed_series_is_its_groups_whoever_else_writes_it() {
        let mut s = Store::new(StoreLimits {
            max_series: 10,
            max_metadata: 100,
        });
        s.epoch = std::time::Instant::now()
            .checked_sub(Duration::from_secs(1000))
            .unwrap();
        let key = r#"x{instance="i",job="j"}"#;
        let x_ij: &[(&str, &str)] = &[("__name__", "x"), ("instance", "i"), ("job", "j")];
        let remote_write = |s: &Store, value: f64, ts: i64| remote_write(s, &[x_ij], value, ts);
        let g = group("j", &[("instance", "i")]);
        let x = |v: f64| family("x", MetricType::Gauge, &[("x", &[], v)]);
        remote_write(&s, 5.0, 1);
        push(&s, &g, &[x(2.0)], true, 2).unwrap();
        assert_eq!(value(&s, key), Some(2.0));
        // The group's now: the series TTL does not expire it.
        s.backdate(120);
        assert_eq!(s.sweep(Some(Duration::from_secs(60))), 0);
        assert_eq!(value(&s, key), Some(2.0));
        // A remote write updates the value; a stale marker removes nothing.
        let later = i64::MAX / 2;
        remote_write(&s, 7.0, later);
        assert_eq!(value(&s, key), Some(7.0));
        remote_write(&s, f64::from_bits(crate::model::STALE_NAN_BITS), later + 1);
        assert_eq!(value(&s, key), Some(7.0));
        check_ownership(&s).unwrap();
        // A push replaces it although the remote write was stamped later,
        // and so the group's own push time, whatever a writer stamped there.
        let push_time: &[(&str, &str)] = &[
            ("__name__", "push_time_seconds"),
            ("instance", "i"),
            ("job", "j"),
        ];
        self::remote_write(&s, &[push_time], 1.0, later);
        push(&s, &g, &[x(3.0)], true, 3).unwrap();
        assert_eq!(value(&s, key), Some(3.0));
        assert_eq!(
            value(&s, r#"push_time_seconds{instance="i",job="j"}"#),
            Some(3.0)
        );
        // The group holds 3 of 10 (x and its push times); 7 more fit after a
        // PUT replacing x, and the count of what leaves is right.
        let many = |n: usize| gauges("y", "n", 0..n);
        let err = push(&s, &g, &[many(9)], true, 4).unwrap_err();
        assert!(matches!(err, PushConflict::SeriesLimit(_)), "{err}");
        push(&s, &g, &[many(8)], true, 5).unwrap();
        assert_eq!(s.live_series(), 10);
        assert_eq!(value(&s, key), None);
        check_ownership(&s).unwrap();
    }

    /// A push is checked against `--limits.series` under the registry's
    /// lock, and remote writers create series without it: one that
    /// creates a series while the push is applied must not leave the
    /// push answered with one of its series refused (owned, not live).
    #[test]
    fn a_push_admitted_under_the_limit_is_stored_whole_whatever_remote_writers_create_meanwhile() {
        let s = Store::new(StoreLimits {
            max_series: 20_002,
            max_metadata: 100,
        });
        let g = group("a", &[]);
        let z: &[(&str, &str)] = &[("__name__", "z")];
        let family = gauges("k", "i", 0..20_000);
        let (mut stored, mut refused) = (0, 0);
        for round in 0..20 {
            let done = std::sync::atomic::AtomicBool::new(false);
            let result = std::thread::scope(|scope| {
                scope.spawn(|| {
                    // Create and remove `z`, round after round, until the push is done.
                    let mut ts = 1;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        remote_write(&s, &[z], 1.0, ts);
                        remote_write(
                            &s,
                            &[z],
                            f64::from_bits(crate::model::STALE_NAN_BITS),
                            ts + 1,
                        );
                        ts += 2;
                    }
                });
                let result = push(&s, &g, std::slice::from_ref(&family), true, round + 1);
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                result
            });
            match result {
                Ok(_) => {
                    stored += 1;
                    check_ownership(&s).unwrap();
                    assert!(s.get(r#"k{i="19999",instance="",job="a"}"#).is_some());
                }
                Err(PushConflict::SeriesLimit(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
            s.delete_group(&g);
        }
        assert!(stored > 0, "no push was stored ({refused} refused)");
    }

    /// Past the limit (a push racing remote writers can leave the store
    /// there), a push adding no more series than it removes still goes in;
    /// one adding more does not.
    #[test]
    fn past_the_limit_a_push_that_adds_nothing_is_admitted() {
        let s = Store::new(StoreLimits {
            max_series: 12,
            max_metadata: 100,
        });
        let g = group("keep", &[]);
        push(&s, &g, &[gauges("k", "i", 0..5)], true, 1).unwrap();
        assert_eq!(s.live_series(), 7);
        // Five remote-written series: 12 of 12; then two more, past the
        // limit as a racing writer could leave it, written here unbounded.
        let values: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let series: Vec<[(&str, &str); 2]> = values
            .iter()
            .map(|i| [("__name__", "rw"), ("i", i)])
            .collect();
        let series: Vec<&[(&str, &str)]> = series.iter().map(|l| &l[..]).collect();
        s.apply_hashed_at(
            &remote_write_batch(&series, 1.0, 1),
            s.now(),
            None,
            ADMITTED,
        );
        assert_eq!(s.live_series(), 14);
        // The same series again, by PUT and by POST; then one fewer.
        push(&s, &g, &[gauges("k", "i", 0..5)], true, 2).unwrap();
        push(&s, &g, &[gauges("k", "i", 0..5)], false, 3).unwrap();
        push(&s, &g, &[gauges("k", "i", 1..5)], true, 4).unwrap();
        assert_eq!(s.live_series(), 13);
        // Others in place of those: as many, admitted; one more, refused.
        push(&s, &g, &[gauges("k", "i", 10..14)], true, 5).unwrap();
        let err = push(&s, &g, &[gauges("k", "i", 10..15)], true, 6).unwrap_err();
        assert!(matches!(err, PushConflict::SeriesLimit(_)), "{err}");
        assert_eq!(s.live_series(), 13);
        assert!(s.get(r#"k{i="13",instance="",job="keep"}"#).is_some());
        assert_eq!(s.get(r#"k{i="14",instance="",job="keep"}"#), None);
    }

    #[test]
    fn metadata_leaves_with_the_last_group_holding_its_family() {
        let s = store();
        let (a, b) = (group("a", &[]), group("b", &[]));
        let m = |v: f64| {
            family(
                "m",
                MetricType::Gauge,
                &[("m", &[("v", &v.to_string())], v)],
            )
        };
        push(&s, &a, &[m(1.0)], true, 1).unwrap();
        push(&s, &b, &[m(2.0)], true, 1).unwrap();
        // Replaced by other keys in one PUT: still held.
        push(&s, &a, &[m(3.0)], true, 2).unwrap();
        assert!(s.metadata("m").is_some());
        assert!(s.delete_group(&a));
        assert!(s.metadata("m").is_some());
        assert!(s.metadata(PUSH_TIME).is_some());
        // The last holder replaces it with another family.
        push(
            &s,
            &b,
            &[family("n", MetricType::Counter, &[("n", &[], 1.0)])],
            true,
            3,
        )
        .unwrap();
        assert_eq!(s.metadata("m"), None);
        assert!(s.metadata("n").is_some());
        assert!(s.delete_group(&b));
        assert_eq!(s.metadata("n"), None);
        assert_eq!(s.metadata(PUSH_TIME), None);
        assert_eq!(s.metadata_len(), 0);
    }

    #[test]
    fn wipe_removes_every_group_and_no_remote_written_series() {
        let s = store();
        push(
            &s,
            &group("a", &[]),
            &[family("m", MetricType::Gauge, &[("m", &[], 1.0)])],
            true,
            1,
        )
        .unwrap();
        push(
            &s,
            &group("b", &[]),
            &[family("m", MetricType::Gauge, &[("m", &[], 1.0)])],
            true,
            1,
        )
        .unwrap();
        remote_write(&s, &[&[("__name__", "rw")]], 1.0, 1);
        assert_eq!(s.wipe_groups(), 2);
        assert_eq!(s.live_series(), 1);
        assert!(s.get("rw").is_some());
    }

    /// The registry's invariant: every key a family holds is owned by that
    /// family's list and by nothing else, no other key is owned, and every
    /// owned key is a live series of the store (which holds nothing else
    /// here).
    fn check_ownership(s: &Store) -> Result<(), String> {
        let reg = s.groups.lock();
        let mut held = 0;
        for (gid, g) in &reg.groups {
            for (name, f) in &g.families {
                for key in f.keys.iter() {
                    held += 1;
                    let Some(owner) = reg.owners.get(key, s.hasher.hash(key.as_bytes())) else {
                        return Err(format!("{key} of {gid}/{name} has no owner"));
                    };
                    if !std::ptr::eq(owner, &*f.keys) {
                        return Err(format!(
                            "{key} of {gid}/{name} is owned by {}/{}",
                            owner.group, owner.family
                        ));
                    }
                    if s.get(key).is_none() {
                        return Err(format!("{key} of {gid}/{name} is not in the store"));
                    }
                }
            }
        }
        if reg.owners.len() != held {
            return Err(format!("{} owned keys, {held} held", reg.owners.len()));
        }
        if s.live_series() != held {
            return Err(format!("{} live series, {held} held", s.live_series()));
        }
        Ok(())
    }

    /// The families a push may carry: several bodies of `m` whose series
    /// meet another group's (`instance="x"` is `{job="a",instance="x"}`'s
    /// grouping label), and a histogram `h` whose bucket series a gauge
    /// family `h_bucket` can take over.
    fn pool(variant: usize) -> ParsedFamily<'static> {
        let g = MetricType::Gauge;
        match variant {
            0 => family(
                "m",
                g,
                &[("m", &[("i", "0")], 1.0), ("m", &[("i", "1")], 2.0)],
            ),
            1 => family("m", g, &[("m", &[("i", "1"), ("instance", "x")], 3.0)]),
            2 => family("m", g, &[("m", &[("i", "1")], 4.0)]),
            3 => family("n", MetricType::Counter, &[("n", &[], 5.0)]),
            4 => family(
                "h",
                MetricType::Histogram,
                &[
                    ("h_bucket", &[("le", "1")], 1.0),
                    ("h_bucket", &[("le", "+Inf")], 2.0),
                    ("h_sum", &[], 3.0),
                    ("h_count", &[], 2.0),
                ],
            ),
            _ => family("h_bucket", g, &[("h_bucket", &[("le", "1")], 6.0)]),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any sequence of PUT, POST and DELETE over groups whose series can
        /// meet (one job with and without an instance, another job), with
        /// families replacing each other and keys moving between families,
        /// keeps every key owned by exactly the family holding it.
        #[test]
        fn ownership_follows_every_push_and_delete(
            ops in proptest::collection::vec(
                (0usize..3, 0usize..3, proptest::collection::vec(0usize..6, 0..3)),
                1..24,
            )
        ) {
            let s = Store::new(StoreLimits { max_series: 1000, max_metadata: 100 });
            let groups = [group("a", &[]), group("a", &[("instance", "x")]), group("b", &[])];
            for (at, (g, op, variants)) in ops.into_iter().enumerate() {
                let g = &groups[g];
                if op == 2 {
                    s.delete_group(g);
                } else {
                    let mut families: Vec<ParsedFamily<'_>> = Vec::new();
                    for v in variants {
                        let f = pool(v);
                        if families.iter().all(|held| held.name != f.name) {
                            families.push(f);
                        }
                    }
                    // A body the push's own check refuses never reaches the store.
                    if let Ok(batch) = push::lower(&families, g, &rules(), 0) {
                        let _ = s.push(g, batch, op == 0, UNIX_EPOCH + Duration::from_secs(at as u64));
                    }
                }
                let checked = check_ownership(&s);
                proptest::prop_assert!(checked.is_ok(), "after op {}: {:?}", at, checked);
            }
        }
    }
}
