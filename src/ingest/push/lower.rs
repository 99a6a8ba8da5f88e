//! Pushed groups → model: the Pushgateway's push API (its README, "API" and
//! "About the job and instance labels"), lowered into the same
//! [`WriteBatch`] as remote write.
//!
//! A push is all or nothing, as in the Pushgateway: one invalid series, a
//! timestamp, or two samples of one series refuse the whole body, so
//! [`lower`] returns an [`Error`] rather than per-series rejections.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;

use super::check::check_families;
use super::{PUSH_TIME_METRICS, PushRule};
use crate::ingest::Error;
use crate::ingest::lower::Rules;
use crate::model::{
    self, BatchHistogram, Metadata, MetricType, NativeHistogram, Sample, SeriesLimits,
    SeriesTraits, SeriesUpdate, WriteBatch, build_pushed_key_escaped, escape_label_value,
    name_order,
};

use super::ParsedFamily;
use super::scan::{NameMatcher, same_bytes};

/// The series every group carries, set by promgate: pushed families of these
/// names are dropped, as the Pushgateway overrides them.
pub const PUSH_TIME: &str = PUSH_TIME_METRICS[0];
/// See [`PUSH_TIME`].
pub const PUSH_FAILURE_TIME: &str = PUSH_TIME_METRICS[1];
/// HELP of [`PUSH_TIME`], the Pushgateway's words.
pub const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
/// HELP of [`PUSH_FAILURE_TIME`], the Pushgateway's words.
pub const PUSH_FAILURE_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// A group's grouping key: `job` and any further labels of the push path,
/// sorted by name, names distinct (a later one in the path wins, and `job`
/// always comes from its own path segment).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grouping {
    pub(super) labels: Vec<(String, String)>,
    id: String,
}

impl Grouping {
    /// The grouping key of job `job` and the path's further `labels`, in
    /// path order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGrouping`] for an empty job, or a label name that is
    /// not a legacy label name or starts with `__` (as the Pushgateway
    /// answers).
    pub fn new(job: String, labels: Vec<(String, String)>) -> Result<Self, Error> {
        if job.is_empty() {
            return Err(Error::InvalidGrouping("job name is required".into()));
        }
        let mut all: Vec<(String, String)> = Vec::with_capacity(labels.len() + 1);
        for (name, value) in labels {
            if !model::is_legacy_label_name(&name) || name.starts_with("__") {
                return Err(Error::InvalidGrouping(format!(
                    "improper label name {name:?}"
                )));
            }
            match all.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => all.push((name, value)),
            }
        }
        // An empty value is an absent label to every scraper: `{job="a",l=""}`
        // is the group `{job="a"}` (the Pushgateway keeps them apart and
        // exposes `l=""`, so their series and push times would collide).
        all.retain(|(n, v)| n != "job" && !v.is_empty());
        all.push(("job".into(), job));
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut id = String::from("{");
        for (i, (n, v)) in all.iter().enumerate() {
            if i > 0 {
                id.push(',');
            }
            let _ = write!(id, "{n}=\"");
            escape_label_value(&mut id, v);
            id.push('"');
        }
        id.push('}');
        Ok(Grouping { labels: all, id })
    }

    /// Checks the grouping labels against the per-series limits every
    /// pushed series (and the group's `push_time_seconds`) inherits: the
    /// grouping labels plus `__name__` and, when the path has none,
    /// `instance` count against `max_labels`; each name and value against
    /// its length limit. Checked before anything of the push is kept, so a
    /// path over a limit creates no group, not even its failure time.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGrouping`] naming the limit and the label.
    pub fn check_limits(&self, limits: &SeriesLimits) -> Result<(), Error> {
        let has_instance = self.labels.iter().any(|(n, _)| n == "instance");
        let labels = self.labels.len() + 1 + usize::from(!has_instance);
        if labels > limits.max_labels {
            return Err(Error::InvalidGrouping(format!(
                "{} grouping labels give every series of the group {labels} labels, more than --limits.labels-per-series {}",
                self.labels.len(),
                limits.max_labels
            )));
        }
        for (name, value) in &self.labels {
            if name.len() > limits.max_name_len {
                return Err(Error::InvalidGrouping(format!(
                    "label name of {} bytes is longer than --limits.label-name-length {}",
                    name.len(),
                    limits.max_name_len
                )));
            }
            if value.len() > limits.max_value_len {
                return Err(Error::InvalidGrouping(format!(
                    "value of label {name} is {} bytes, longer than --limits.label-value-length {}",
                    value.len(),
                    limits.max_value_len
                )));
            }
        }
        Ok(())
    }

    /// The labels, sorted by name.
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    /// The key as a label set, `{job="a",x="b"}`: unique per group, and
    /// how errors and logs name it.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// One family of a push: where its series are in the batch.
#[derive(Clone, Debug)]
pub struct PushedFamily {
    /// The family name (a histogram's, not its `_bucket` series').
    pub name: String,
    /// Its type (`Unknown` for untyped).
    pub metric_type: MetricType,
    /// Its series: `batch.series[series]`.
    pub series: Range<usize>,
}

/// A push lowered: its series (keys carry the grouping labels and
/// `model::SeriesTraits::PUSHED`), metadata, and families.
#[derive(Debug, Default)]
pub struct PushBatch {
    /// Series and metadata; no rejections (a push is all or nothing).
    pub batch: WriteBatch,
    /// The families, in body order.
    pub families: Vec<PushedFamily>,
}

/// Lowers a parsed push into group `grouping`, each sample stamped
/// `stamp_ms` (the store orders a series' updates by it; the page shows
/// pushed series without timestamps).
///
/// First runs [`check_push_grouped`] (the Pushgateway's consistency check of
/// one push, and promgate's stricter rules). Then, as the Pushgateway's page
/// shows a push (its README, "About the job and instance labels", and what
/// its text encoder writes; `tests/push_api.rs` compares the pages):
/// grouping labels override same-named labels of the body and are added to
/// every series; a series with no `instance` gets `instance=""`; `le` and
/// `quantile` are written the way Go formats floats (`1.0` → `1`); bucket
/// and count values are truncated to integers (they are `uint64` there);
/// and each histogram or summary metric missing them gets `_sum 0`,
/// `_count 0` and, for a histogram, a `+Inf` bucket holding its count.
/// Each native histogram ([`super::ParsedNative`]) is a series named like
/// its family, after the family's samples, held to
/// `--limits.native-histogram-buckets` as a remote-written one is.
///
/// # Errors
///
/// [`Error::InvalidPush`] naming the first problem: a rule of
/// [`check_push_grouped`], or a series over the per-series limits or a
/// native histogram over the bucket limit at the lowest resolution
/// ([`PushRule::OverLimit`]).
pub fn lower(
    families: &[ParsedFamily<'_>],
    grouping: &Grouping,
    rules: &Rules,
    stamp_ms: i64,
) -> Result<PushBatch, Error> {
    let grouping_labels = grouping_labels(grouping);
    // Native histograms (protobuf pushes only, and rare) take the plain way.
    if families.iter().any(|f| !f.natives.is_empty()) {
        return lower_reference(families, grouping, rules, stamp_ms);
    }
    match super::fast::lower(families, grouping, &grouping_labels, rules, stamp_ms) {
        Some(out) => {
            debug_assert!(
                lower_reference(families, grouping, rules, stamp_ms)
                    .is_ok_and(|reference| same_push(&out, &reference)),
                "the one-pass lowering is the reference's"
            );
            Ok(out)
        }
        None => lower_reference(families, grouping, rules, stamp_ms),
    }
}

/// The grouping labels as a key writes them, once per push.
pub(super) fn grouping_labels(grouping: &Grouping) -> Vec<(&str, String)> {
    grouping
        .labels
        .iter()
        .map(|(n, v)| {
            let mut escaped = String::with_capacity(v.len());
            escape_label_value(&mut escaped, v);
            (n.as_str(), escaped)
        })
        .collect()
}

/// Do two lowered pushes hold the same series (keys, traits, values'
/// bits, stamps), metadata and families?
pub(super) fn same_push(a: &PushBatch, b: &PushBatch) -> bool {
    let series = |p: &PushBatch| -> Vec<(String, u8, u32, u64, i64)> {
        p.batch
            .series
            .iter()
            .map(|u| {
                (
                    p.batch.key(u).to_string(),
                    u.key.traits.bits(),
                    u.key.name_len,
                    u.latest.value.to_bits(),
                    u.latest.timestamp_ms,
                )
            })
            .collect()
    };
    let families = |p: &PushBatch| -> Vec<(String, MetricType, Range<usize>)> {
        p.families
            .iter()
            .map(|f| (f.name.clone(), f.metric_type, f.series.clone()))
            .collect()
    };
    series(a) == series(b)
        && a.batch.metadata == b.batch.metadata
        && a.batch.rejected.first.is_none()
        && b.batch.rejected.first.is_none()
        && families(a) == families(b)
}

/// [`lower`] the plain way: the whole check ([`check_push_grouped`]), then
/// the keys. The definition the one-pass lowering (`fast.rs`) is held to,
/// and what names the error of a push that one gives up on.
pub(super) fn lower_reference(
    families: &[ParsedFamily<'_>],
    grouping: &Grouping,
    rules: &Rules,
    stamp_ms: i64,
) -> Result<PushBatch, Error> {
    let names: Vec<&str> = grouping.labels.iter().map(|(n, _)| n.as_str()).collect();
    let metrics = check_families(families, &names)?;
    let over_limit = |family: &str, r: crate::model::Rejection| Error::InvalidPush {
        rule: PushRule::OverLimit,
        detail: format!("{r} (in family {family:?})"),
    };
    let grouping_labels = &grouping_labels(grouping);
    let is_grouping = |n: &str| grouping_labels.iter().any(|&(g, _)| g == n);
    let mut out = PushBatch::default();
    let series: usize = families.iter().map(|f| f.samples.len()).sum();
    out.batch.series.reserve(series);
    out.families.reserve(families.len());
    let batch = &mut out.batch;
    for (family, &metric_count) in families.iter().zip(&metrics) {
        let start = batch.series.len();
        let bound_label = match family.metric_type {
            MetricType::Histogram => Some("le"),
            MetricType::Summary => Some("quantile"),
            _ => None,
        };
        // Bounds in Go's spelling, as the Pushgateway exposes them (`1.0`
        // is `1`): each distinct spelling converted once per family, found
        // from the last one (buckets come in the same order per metric).
        let mut spellings: Vec<(&str, String)> = Vec::new();
        let mut bounds: Vec<u32> = Vec::new();
        if let Some(bound_label) = bound_label {
            bounds.reserve(family.samples.len());
            let mut next = 0;
            for sample in &family.samples {
                let Some((_, raw)) = sample.labels.escaped().find(|&(n, _)| n == bound_label)
                else {
                    bounds.push(u32::MAX);
                    continue;
                };
                let i = match spellings.get(next) {
                    Some(&(r, _)) if r == raw => next,
                    _ => match spellings.iter().position(|&(r, _)| r == raw) {
                        Some(i) => i,
                        None => {
                            let v = model::parse_go_float(raw.as_bytes()).unwrap_or(f64::NAN);
                            spellings.push((raw, model::go_float(v)));
                            spellings.len() - 1
                        }
                    },
                };
                next = i + 1;
                bounds.push(i as u32);
            }
        }
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(16);
        let mut plan = KeyPlan::default();
        // What the family's histogram or summary metrics carried, counted:
        // the check refused repeats, so a metric lacks a `_sum`, `_count`
        // or `+Inf` bucket exactly when these fall short of its metrics.
        let (mut sums, mut counts, mut infs) = (0, 0, 0);
        for (k, sample) in family.samples.iter().enumerate() {
            let mut value = sample.value;
            let mut bound = None;
            if let Some(bound_label) = bound_label {
                match &sample.name[family.name.len()..] {
                    "_sum" => sums += 1,
                    "_count" => {
                        value = value.trunc();
                        counts += 1;
                    }
                    _ => {
                        if let Some((_, text)) = spellings.get(bounds[k] as usize) {
                            infs += usize::from(text == "+Inf");
                            bound = Some((bound_label, text.as_str()));
                        }
                        if family.metric_type == MetricType::Histogram {
                            value = value.trunc();
                        }
                    }
                }
            }
            pairs.clear();
            pairs.extend(sample.labels.escaped().map(|(n, v)| match bound {
                Some((b, text)) if n == b => (n, text),
                _ => (n, v),
            }));
            if !plan.fits(&pairs) {
                plan = KeyPlan::new(&pairs, grouping_labels, &rules.series);
            }
            let planned = plan.write(
                &sample.name,
                &pairs,
                None,
                grouping_labels,
                &rules.series,
                &mut batch.keys,
            );
            let general = |out: &mut String| {
                let labels = std::iter::once(("__name__", &*sample.name))
                    .chain(pairs.iter().copied().filter(|&(n, _)| !is_grouping(n)))
                    .chain(grouping_labels.iter().map(|(n, v)| (*n, v.as_str())));
                build_pushed_key_escaped(labels, &rules.series, &mut Vec::new(), out)
            };
            let key = match planned {
                Some(key) => key,
                // Over a limit, or names a key cannot have: the general
                // writer says which.
                None => general(&mut batch.keys).map_err(|r| over_limit(&family.name, r))?,
            };
            debug_assert!(
                {
                    let mut out = String::new();
                    let span =
                        general(&mut out).expect("the plan writes keys the general writer accepts");
                    span.traits == key.traits
                        && out == batch.keys[key.start as usize..][..key.len as usize]
                },
                "the planned key is the general writer's"
            );
            push_update(batch, key, value, stamp_ms);
        }
        for native in &family.natives {
            lower_native(family, native, grouping_labels, rules, stamp_ms, batch)?;
        }
        let complete = sums == metric_count
            && counts == metric_count
            && (family.metric_type != MetricType::Histogram || infs == metric_count);
        if !complete {
            complete_metrics(family, grouping_labels, rules, stamp_ms, batch)?;
        }
        let help = family.help.as_deref().unwrap_or("");
        if help.len() > rules.series.max_help_len {
            return Err(Error::InvalidPush {
                rule: PushRule::OverLimit,
                detail: format!(
                    "HELP of family {:?} has {} bytes, more than the limit of {}",
                    family.name,
                    help.len(),
                    rules.series.max_help_len
                ),
            });
        }
        // Always, untyped and without HELP too: a push declares its
        // families' type (the Pushgateway's page says `untyped`), so what an
        // earlier push or sender said of the name must not linger.
        batch.metadata.push((
            family.name.to_string(),
            Metadata {
                metric_type: family.metric_type,
                help: help.to_string(),
                unit: String::new(),
            },
        ));
        out.families.push(PushedFamily {
            name: family.name.to_string(),
            metric_type: family.metric_type,
            series: start..batch.series.len(),
        });
    }
    // check_push_grouped already refused two samples of one series (by the
    // same identity the keys encode), so the keys are distinct; debug
    // builds (every test) prove it rather than sort 100k keys per push.
    debug_assert!({
        let batch = &out.batch;
        let keys: std::collections::HashSet<&str> =
            batch.series.iter().map(|u| batch.key(u)).collect();
        keys.len() == batch.series.len()
    });
    Ok(out)
}

/// How to write the keys of samples whose labels have the same names in
/// the same order (a family's series, as client libraries write them):
/// the sort of the labels with the grouping labels and `instance`, and the
/// checks of the names, done once for the run rather than per sample.
#[derive(Default)]
pub(super) struct KeyPlan<'p> {
    /// The sample label names it was made for, in body order.
    pub(super) names: Vec<&'p str>,
    /// The same to find in a text body: `name="` for the first, then
    /// `",name="`, what comes between a value and the next.
    pub(super) matchers: Vec<NameMatcher>,
    /// Which sample labels are named `le` and `quantile`.
    pub(super) le_at: Option<usize>,
    pub(super) quantile_at: Option<usize>,
    /// The key's labels in key order: where each comes from, and its name
    /// written as `name="`.
    slots: Vec<(Slot, String)>,
    /// Which slots are named `le`, `quantile` and `instance`.
    le: Option<usize>,
    quantile: Option<usize>,
    instance: Option<usize>,
    /// Do the names pass every rule of a key (valid, not reserved, within
    /// the length limit, distinct)? If not, every sample takes the general
    /// writer, which names the fault.
    pub(super) valid: bool,
    /// Are the sample's label names distinct, grouping names included (which
    /// `valid` leaves out, as the key does)?
    pub(super) distinct: bool,
    /// The key of a sample whose label values are all non-empty, as runs of
    /// fixed text between them: `{a="` v0 `",instance="",job="j",b="` v1
    /// `"}`. The sample labels in key order, and where each run before one
    /// ends in `fixed`; the last run goes to the end.
    sample_order: Vec<usize>,
    fixed: String,
    fixed_ends: Vec<usize>,
    /// Does every key written from the runs pass the limits that do not
    /// depend on the sample (label count, grouping values' lengths)?
    fixed_fits: bool,
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    /// The sample's label at this index.
    Sample(usize),
    /// The grouping label at this index.
    Grouping(usize),
    /// `instance=""`: neither the sample nor the grouping has one.
    EmptyInstance,
}

impl<'p> KeyPlan<'p> {
    pub(super) fn new(
        pairs: &[(&'p str, &str)],
        grouping: &[(&str, String)],
        limits: &SeriesLimits,
    ) -> Self {
        let is_grouping = |n: &str| grouping.iter().any(|&(g, _)| g == n);
        let mut entries: Vec<(&str, Slot)> = pairs
            .iter()
            .enumerate()
            .filter(|&(_, &(n, _))| !is_grouping(n))
            .map(|(i, &(n, _))| (n, Slot::Sample(i)))
            .collect();
        entries.extend(
            grouping
                .iter()
                .enumerate()
                .map(|(j, &(n, _))| (n, Slot::Grouping(j))),
        );
        if !entries.iter().any(|&(n, _)| n == "instance") {
            entries.push(("instance", Slot::EmptyInstance));
        }
        entries.sort_by(|a, b| name_order(a.0, b.0));
        let valid = entries.windows(2).all(|w| w[0].0 != w[1].0)
            && entries.iter().all(|&(n, _)| {
                model::is_legacy_label_name(n)
                    && !n.starts_with("__")
                    && n.len() <= limits.max_name_len
            });
        let find = |name: &str| entries.iter().position(|&(n, _)| n == name);
        let mut names: Vec<&str> = pairs.iter().map(|&(n, _)| n).collect();
        names.sort_unstable();
        let distinct = names.windows(2).all(|w| w[0] != w[1]);
        let (mut sample_order, mut fixed, mut fixed_ends) = (Vec::new(), String::new(), Vec::new());
        let mut fixed_fits =
            "__name__".len() <= limits.max_name_len && entries.len() < limits.max_labels;
        for (k, &(n, slot)) in entries.iter().enumerate() {
            fixed.push(if k == 0 { '{' } else { ',' });
            fixed.push_str(n);
            fixed.push_str("=\"");
            match slot {
                Slot::Sample(i) => {
                    fixed_ends.push(fixed.len());
                    sample_order.push(i);
                }
                Slot::Grouping(j) => {
                    let v = grouping[j].1.as_str();
                    fixed_fits &= v.len() <= limits.max_value_len;
                    fixed.push_str(v);
                }
                Slot::EmptyInstance => {}
            }
            fixed.push('"');
        }
        fixed.push('}');
        KeyPlan {
            names: pairs.iter().map(|&(n, _)| n).collect(),
            matchers: pairs
                .iter()
                .enumerate()
                .map(|(k, &(n, _))| match k {
                    0 => NameMatcher::new(n),
                    _ => NameMatcher::after_value(n),
                })
                .collect(),
            le_at: pairs.iter().position(|&(n, _)| n == "le"),
            quantile_at: pairs.iter().position(|&(n, _)| n == "quantile"),
            le: find("le"),
            quantile: find("quantile"),
            instance: find("instance"),
            slots: entries
                .iter()
                .map(|&(n, slot)| (slot, format!("{n}=\"")))
                .collect(),
            valid,
            distinct,
            sample_order,
            fixed,
            fixed_ends,
            fixed_fits,
        }
    }

    /// [`KeyPlan::write`] for a sample whose `name` the caller has checked
    /// (a valid metric name): when every label value is non-empty, the key
    /// is the plan's fixed runs with the values between them. A `bound`
    /// also says whether its text reads as a float, known to the caller.
    #[inline]
    pub(super) fn write_checked_name(
        &self,
        name: &str,
        pairs: &[(&str, &str)],
        bound: Option<(usize, &str, bool)>,
        grouping: &[(&str, String)],
        limits: &SeriesLimits,
        out: &mut String,
    ) -> Option<crate::model::KeySpan> {
        let value = |i: usize| match bound {
            Some((at, text, _)) if at == i => text,
            _ => pairs[i].1,
        };
        let max = limits.max_value_len;
        // Every value not empty and within the limit (`n - 1 < max`); the
        // bound, if any, is a sample label (never a grouping one), checked
        // as written and as spelled: one too long as written but not as
        // spelled goes to the general writer, which writes the same key.
        let mut plain = self.valid && self.fixed_fits && name.len() <= max;
        let mut len = name.len() + self.fixed.len();
        for &i in &self.sample_order {
            let n = pairs[i].1.len();
            plain &= n.wrapping_sub(1) < max;
            len += n;
        }
        if let Some((at, text, _)) = bound {
            plain &= text.len().wrapping_sub(1) < max;
            len = len + text.len() - pairs[at].1.len();
        }
        if !plain {
            let bound = bound.map(|(at, text, _)| (at, text));
            return self.write(name, pairs, bound, grouping, limits, out);
        }
        let start = out.len();
        // The key's pieces are short (a few bytes each) and many: copied
        // inline rather than by a call to `memcpy` each.
        // SAFETY: the bytes pushed here are zeros, then overwritten by the
        // pieces below, every one a `&str` copied whole, which together
        // fill the key's `len` bytes exactly: the key is UTF-8 once
        // written, and nothing in between can panic (the lengths were just
        // summed).
        let bytes = unsafe { out.as_mut_vec() };
        bytes.resize(start + len, 0);
        let key = &mut bytes[start..];
        let fixed = self.fixed.as_bytes();
        let mut at = put(key, 0, name.as_bytes());
        let mut from = 0;
        for (&i, &to) in self.sample_order.iter().zip(&self.fixed_ends) {
            at = put(key, at, &fixed[from..to]);
            at = put(key, at, value(i).as_bytes());
            from = to;
        }
        at = put(key, at, &fixed[from..]);
        debug_assert_eq!(at, len);
        let traits = match (self.le, self.quantile) {
            (None, None) => SeriesTraits::of_pushed_floats(None, None),
            (le, quantile) => SeriesTraits::of_pushed_floats(
                le.and_then(|k| self.reads_as_float(k, pairs, bound, grouping)),
                quantile.and_then(|k| self.reads_as_float(k, pairs, bound, grouping)),
            ),
        };
        Some(crate::model::KeySpan {
            start: start as u32,
            len: (out.len() - start) as u32,
            name_len: name.len() as u32,
            traits,
        })
    }

    /// Does the value of slot `k` read as a float? `None` when it is empty.
    fn reads_as_float(
        &self,
        k: usize,
        pairs: &[(&str, &str)],
        bound: Option<(usize, &str, bool)>,
        grouping: &[(&str, String)],
    ) -> Option<bool> {
        let v = match self.slots[k].0 {
            Slot::Sample(i) => match bound {
                Some((at, _, float)) if at == i => return Some(float),
                _ => pairs[i].1,
            },
            Slot::Grouping(j) => grouping[j].1.as_str(),
            Slot::EmptyInstance => "",
        };
        (!v.is_empty()).then(|| model::is_text_format_float(v))
    }

    /// Was the plan made for labels of these names?
    #[inline]
    pub(super) fn fits(&self, pairs: &[(&str, &str)]) -> bool {
        self.names.len() == pairs.len()
            && self
                .names
                .iter()
                .zip(pairs)
                .all(|(a, (b, _))| same_bytes(a.as_bytes(), b.as_bytes()))
    }

    /// Writes the key of sample `name` with labels `pairs` (those the plan
    /// was made for; with `bound`, the label at that index has that value
    /// instead) to `out`; `None`, writing nothing, when the general writer
    /// must decide (a limit, or a rule the plan's names break).
    #[inline]
    pub(super) fn write(
        &self,
        name: &str,
        pairs: &[(&str, &str)],
        bound: Option<(usize, &str)>,
        grouping: &[(&str, String)],
        limits: &SeriesLimits,
        out: &mut String,
    ) -> Option<crate::model::KeySpan> {
        // The general writer holds the name to both length limits, as the
        // value of a label `__name__`.
        if !self.valid
            || name.len() > limits.max_value_len
            || "__name__".len() > limits.max_name_len
            || !model::is_legacy_metric_name(name)
        {
            return None;
        }
        let value = |slot: Slot| match slot {
            Slot::Sample(i) => match bound {
                Some((at, text)) if at == i => text,
                _ => pairs[i].1,
            },
            Slot::Grouping(j) => grouping[j].1.as_str(),
            Slot::EmptyInstance => "",
        };
        // An empty value drops its label, but for `instance`, which is then
        // written empty.
        let mut labels = 1;
        for (i, &(slot, _)) in self.slots.iter().enumerate() {
            let v = value(slot);
            if v.len() > limits.max_value_len {
                return None;
            }
            labels += usize::from(!v.is_empty() || Some(i) == self.instance);
        }
        if labels > limits.max_labels {
            return None;
        }
        let start = out.len();
        out.push_str(name);
        let mut sep = '{';
        for (i, (slot, prefix)) in self.slots.iter().enumerate() {
            let v = value(*slot);
            if v.is_empty() && Some(i) != self.instance {
                continue;
            }
            out.push(sep);
            sep = ',';
            out.push_str(prefix);
            out.push_str(v);
            out.push('"');
        }
        out.push('}');
        let le = self
            .le
            .map(|i| value(self.slots[i].0))
            .filter(|v| !v.is_empty());
        let quantile = self
            .quantile
            .map(|i| value(self.slots[i].0))
            .filter(|v| !v.is_empty());
        Some(crate::model::KeySpan {
            start: start as u32,
            len: (out.len() - start) as u32,
            name_len: name.len() as u32,
            traits: SeriesTraits::of_pushed(le, quantile),
        })
    }
}

/// Copies `src` into `key` at `at`; where it ends. A short piece takes two
/// overlapping word copies, inline.
#[inline(always)]
fn put(key: &mut [u8], at: usize, src: &[u8]) -> usize {
    let n = src.len();
    let dst = &mut key[at..at + n];
    match n {
        0 => {}
        1..4 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..8 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        17..=32 => {
            dst[..16].copy_from_slice(&src[..16]);
            dst[n - 16..].copy_from_slice(&src[n - 16..]);
        }
        _ => dst.copy_from_slice(src),
    }
    at + n
}

/// Adds to `batch` what the histogram or summary metrics of `family` lack,
/// as the Pushgateway exposes them: a `_sum` of 0, a `_count` of 0 and, for
/// a histogram, a `+Inf` bucket holding its count. Rare (client libraries
/// write all three), so found the plain way.
pub(super) fn complete_metrics(
    family: &ParsedFamily<'_>,
    grouping_labels: &[(&str, String)],
    rules: &Rules,
    stamp_ms: i64,
    batch: &mut WriteBatch,
) -> Result<(), Error> {
    let over_limit = |r: crate::model::Rejection| Error::InvalidPush {
        rule: PushRule::OverLimit,
        detail: format!("{r} (in family {:?})", family.name),
    };
    let bound_label = match family.metric_type {
        MetricType::Histogram => "le",
        _ => "quantile",
    };
    let is_grouping = |n: &str| grouping_labels.iter().any(|&(g, _)| g == n);
    // Per metric (its labels without the bound, sorted): what it carried.
    let mut index: hashbrown::HashMap<Vec<(&str, &str)>, usize> = hashbrown::HashMap::new();
    let mut metrics: Vec<(Vec<(&str, &str)>, Completion)> = Vec::new();
    for sample in &family.samples {
        let mut own: Vec<(&str, &str)> = sample
            .labels
            .escaped()
            .filter(|&(n, v)| n != bound_label && !v.is_empty() && !is_grouping(n))
            .collect();
        own.sort_unstable();
        let i = *index.entry(own.clone()).or_insert_with(|| {
            metrics.push((own, Completion::default()));
            metrics.len() - 1
        });
        let c = &mut metrics[i].1;
        match &sample.name[family.name.len()..] {
            "_sum" => c.sum = true,
            "_count" => c.count = Some(sample.value.trunc()),
            _ => {
                if let Some((_, t)) = sample.labels.escaped().find(|&(n, _)| n == bound_label) {
                    c.inf |= model::parse_go_float(t.as_bytes()) == Some(f64::INFINITY);
                }
            }
        }
    }
    let suffixed: [String; 3] =
        ["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", family.name));
    let mut scratch = Vec::new();
    for (labels, c) in &metrics {
        let count = c.count.unwrap_or(0.0);
        let mut add = |name: usize, bound: Option<(&'static str, &'static str)>, v: f64| {
            let all = std::iter::once(("__name__", suffixed[name].as_str()))
                .chain(labels.iter().copied())
                .chain(bound)
                .chain(grouping_labels.iter().map(|(n, v)| (*n, v.as_str())));
            let key = build_pushed_key_escaped(all, &rules.series, &mut scratch, &mut batch.keys)
                .map_err(over_limit)?;
            push_update(batch, key, v, stamp_ms);
            Ok::<(), Error>(())
        };
        if family.metric_type == MetricType::Histogram && !c.inf {
            add(0, Some(("le", "+Inf")), count)?;
        }
        if !c.sum {
            add(1, None, 0.0)?;
        }
        if c.count.is_none() {
            add(2, None, 0.0)?;
        }
    }
    Ok(())
}

/// Adds a pushed native histogram to `batch`: a series named like its
/// family, its labels merged with the grouping as a sample's are, held to
/// `--limits.native-histogram-buckets` as a remote-written one is (fewer
/// buckets by a lower resolution, or refused when still over at the
/// lowest). [`check_families`] has validated it.
fn lower_native(
    family: &ParsedFamily<'_>,
    native: &super::ParsedNative,
    grouping_labels: &[(&str, String)],
    rules: &Rules,
    stamp_ms: i64,
    batch: &mut WriteBatch,
) -> Result<(), Error> {
    let refused = |detail: String| Error::InvalidPush {
        rule: PushRule::OverLimit,
        detail,
    };
    let mut h = NativeHistogram::from_raw(&native.raw).map_err(|e| Error::InvalidPush {
        rule: PushRule::InvalidNativeHistogram,
        detail: format!("native histogram of family {:?} refused: {e}", family.name),
    })?;
    let max = rules.series.max_histogram_buckets;
    if max > 0 {
        match h.limit_buckets(max) {
            None => {
                return Err(refused(format!(
                    "native histogram of {} buckets in family {:?} refused: more than --limits.native-histogram-buckets {max} even at the lowest resolution",
                    h.bucket_count().max(h.custom_values().len()),
                    family.name
                )));
            }
            Some(Cow::Owned(reduced)) => h = reduced,
            Some(Cow::Borrowed(_)) => {}
        }
    }
    let is_grouping = |n: &str| grouping_labels.iter().any(|&(g, _)| g == n);
    let labels = std::iter::once(("__name__", &*family.name))
        .chain(native.labels.escaped().filter(|&(n, _)| !is_grouping(n)))
        .chain(grouping_labels.iter().map(|(n, v)| (*n, v.as_str())));
    let key = build_pushed_key_escaped(labels, &rules.series, &mut Vec::new(), &mut batch.keys)
        .map_err(|r| refused(format!("{r} (in family {:?})", family.name)))?;
    push_update(batch, key, h.count(), stamp_ms);
    let update = batch.series.last_mut().expect("just pushed");
    update.histogram = batch.histograms.len() as u32;
    batch.histograms.push(BatchHistogram {
        written: 1,
        latest: Some(h),
    });
    Ok(())
}

/// A pushed value as stored: the staleness marker's bit pattern (which only
/// a protobuf push can carry) as an ordinary NaN. A push has no notion of
/// staleness: the Pushgateway keeps such a value and shows it as `NaN` on
/// its text page, and so does promgate, where the marker itself would
/// remove the series from the store, or tell a scraper of the protobuf
/// page that the series went stale at every scrape.
pub(super) fn pushed_value(value: f64) -> f64 {
    if crate::model::is_stale_marker(value) {
        f64::NAN
    } else {
        value
    }
}

pub(super) fn push_update(
    batch: &mut WriteBatch,
    key: crate::model::KeySpan,
    value: f64,
    stamp_ms: i64,
) {
    batch.series.push(SeriesUpdate {
        key,
        latest: Sample {
            value: pushed_value(value),
            timestamp_ms: stamp_ms,
        },
        samples: 1,
        exemplars: 0,
        exemplar: crate::model::NO_EXEMPLAR,
        histogram: crate::model::NO_HISTOGRAM,
    });
}

/// What one histogram or summary metric of a push carried.
#[derive(Default)]
struct Completion {
    inf: bool,
    sum: bool,
    count: Option<f64>,
}

/// The `Content-Type` of delimited protobuf pushes (the Pushgateway README,
/// "PUT method"); anything else is read as the text format.
pub const DELIMITED_PROTOBUF: &str = "application/vnd.google.protobuf";

/// Is `content_type` the delimited protobuf of `io.prometheus.client.MetricFamily`
/// (type `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily`
/// and `encoding=delimited`, parameters in any order)? Anything else is read
/// as the text format, as the Pushgateway does.
pub fn is_delimited_protobuf(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let mut parts = ct.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case(DELIMITED_PROTOBUF))
    {
        return false;
    }
    let (mut proto, mut delimited) = (false, false);
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "proto" => proto = v == "io.prometheus.client.MetricFamily",
                "encoding" => delimited = v == "delimited",
                _ => {}
            }
        }
    }
    proto && delimited
}

/// A pushed body's `Content-Encoding` (the Pushgateway README, "Request
/// compression": gzip, or snappy's framing format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushEncoding {
    /// No compression.
    Identity,
    /// gzip.
    Gzip,
    /// snappy, framing format (what `snzip` and Go's `snappy.NewWriter` write).
    SnappyFramed,
}

impl PushEncoding {
    /// The encoding named by a `Content-Encoding` header.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedPushEncoding`] for anything but gzip, snappy and
    /// identity.
    pub fn from_header(value: Option<&str>) -> Result<Self, Error> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => Ok(PushEncoding::Identity),
            Some("gzip" | "x-gzip") => Ok(PushEncoding::Gzip),
            Some("snappy") => Ok(PushEncoding::SnappyFramed),
            Some(_) => Err(Error::UnsupportedPushEncoding(
                value.unwrap_or("").to_string(),
            )),
        }
    }
}

/// Decompresses a pushed body, stopping past `max` bytes.
///
/// # Errors
///
/// [`Error::DecodedTooLarge`] past `max`, [`Error::Decompress`] for a body
/// that is not what its encoding says.
pub fn decompress(
    encoding: PushEncoding,
    body: &[u8],
    max: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    use std::io::Read;
    let (name, reader): (&'static str, Box<dyn Read + '_>) = match encoding {
        PushEncoding::Identity => {
            if body.len() > max {
                return Err(Error::DecodedTooLarge {
                    declared: None,
                    limit: max,
                });
            }
            return Ok(std::borrow::Cow::Borrowed(body));
        }
        PushEncoding::Gzip => ("gzip", Box::new(flate2::read::MultiGzDecoder::new(body))),
        PushEncoding::SnappyFramed => ("snappy", Box::new(snap::read::FrameDecoder::new(body))),
    };
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Decompress {
            encoding: name,
            detail: e.to_string(),
        })?;
    if out.len() > max {
        return Err(Error::DecodedTooLarge {
            declared: None,
            limit: max,
        });
    }
    Ok(std::borrow::Cow::Owned(out))
}
