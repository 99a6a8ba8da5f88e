//! The check and the lowering of a push in one pass over its samples, for
//! pushes that pass: each sample's labels are read once, its key written by
//! a [`KeyPlan`], and that key is what finds a duplicate series.
//!
//! [`check_push_grouped`](super::check_push_grouped) then [`lower`](super::lower)'s
//! reference stay the definition: this pass gives up (`None`) at the first
//! thing it does not settle itself, every refusal included, and the caller
//! runs the reference, which then names the same error as before, in the
//! same order of rules. So this pass only has to say yes exactly when the
//! reference does, with the same batch: debug builds check every push
//! against the reference, and a property test holds the two together.
//!
//! Why the key finds duplicates as the check's identity does: the key drops
//! what the identity ignores (empty values, `instance=""` written for no
//! instance either way, grouping labels all replaced by the group's values)
//! and writes a bound (`le`, `quantile`) in Go's shortest spelling of its
//! number, which is one spelling per number, `-0` and `0` alike (both `0`),
//! as the identity takes `-0` for `0`; NaN bounds are refused before.
//!
//! Why duplicates are searched per family: once no family is named like
//! another's series and no two alike (checked when the pass ends, which
//! gives up if not), the sample names of two families never meet. A plain family's samples carry its name; a
//! histogram's are its name with `_bucket`, `_sum` or `_count`, a summary's
//! its name, or with `_sum` or `_count`; and none of these suffixes ends
//! another. So a name of family `a` that is also one of family `b` would
//! make `a` or `b` a family named like the other's series. A small table
//! per family stays in cache where one for 100k series would not.

use std::hash::BuildHasher;
use std::ops::Range;

use foldhash::fast::RandomState;
use hashbrown::{HashSet, HashTable, hash_table};

use super::check::TWO_POW_64;
use super::lower::{Grouping, KeyPlan, PushBatch, PushedFamily, complete_metrics, push_update};
use super::scan::{NameMatcher, same_bytes};
use super::{PUSH_TIME_METRICS, ParsedFamily};
use crate::ingest::lower::Rules;
use crate::model::{self, Metadata, MetricType, name_order};

/// Plans kept at once: a family's shapes of label names (a histogram's
/// buckets and its `_sum`/`_count` make two) and those of the families
/// around it.
const PLANS: usize = 8;

/// Lowers `families` as [`lower`](super::lower) does when the push passes
/// every rule; `None` when it does not, or when it is a case left to the
/// reference (a grouping label named `le` or `quantile`, a key the planned
/// writer does not write).
pub(super) fn lower<'a>(
    families: &'a [ParsedFamily<'_>],
    grouping: &Grouping,
    grouping_labels: &[(&str, String)],
    rules: &Rules,
    stamp_ms: i64,
) -> Option<PushBatch> {
    let series: usize = families.iter().map(|f| f.samples.len()).sum();
    let mut pass = OnePass::new(grouping, grouping_labels, rules, stamp_ms, series, 0)?;
    let mut pairs: Vec<(&'a str, &'a str)> = Vec::with_capacity(16);
    for family in families {
        let start =
            pass.begin_family(&family.name, family.metric_type, Some(family.samples.len()))?;
        for sample in &family.samples {
            if sample.timestamp_ms.is_some() {
                return None;
            }
            pairs.clear();
            pairs.extend(sample.labels.escaped());
            let plan = pass.plan_for(&pairs);
            pass.sample(plan, &sample.name, &pairs, sample.value)?;
        }
        if !pass.end_family() {
            complete_metrics(
                family,
                grouping_labels,
                rules,
                stamp_ms,
                &mut pass.out.batch,
            )
            .ok()?;
        }
        let series = start..pass.series_len();
        pass.family_done(
            &family.name,
            family.metric_type,
            family.help.as_deref(),
            series,
        )?;
    }
    pass.finish()
}

/// The one pass over a push: its samples given family by family, each
/// family's samples together; what it lowered, or `None` as soon as
/// anything is for the reference to decide.
pub(super) struct OnePass<'a, 'g> {
    grouping: &'g Grouping,
    grouping_labels: &'g [(&'g str, String)],
    rules: &'g Rules,
    stamp_ms: i64,
    hasher: RandomState,
    pub(super) out: PushBatch,
    plans: Vec<KeyPlan<'a>>,
    /// Each plan's number, never reused (a slot's plan may be replaced).
    plan_ids: Vec<usize>,
    next_id: usize,
    last_plan: usize,
    next_slot: usize,
    /// The current family's keys, (hash, start, length) in `batch.keys`,
    /// once they are not all in ascending order.
    seen: HashTable<(u64, u32, u32)>,
    /// Have the current family's keys come in strictly ascending order so
    /// far (and none is in `seen`)? Then none is a duplicate, and the next
    /// is none either if it comes after the last: one comparison instead of
    /// hashing and probing (Go clients write a family's series in order).
    ascending: bool,
    /// Where the current family's series start in the batch.
    family_start: usize,
    /// Bounds in Go's spelling (the reference's cache): each distinct
    /// spelling converted once per push, found from the last one.
    spellings: Vec<Spelling<'a>>,
    next_spelling: usize,
    family: Family<'a>,
}

/// A bound as written, and in Go's spelling.
struct Spelling<'a> {
    raw: &'a str,
    go: String,
    /// Is it `+Inf`?
    inf: bool,
    /// Does `go` read as a float (for the key's traits)?
    float: bool,
}

/// The family being lowered.
#[derive(Default)]
struct Family<'a> {
    name: &'a str,
    histogram: bool,
    /// `le` or `quantile` for histograms and summaries.
    bound_label: Option<&'static str>,
    metrics: Metrics<'a>,
    sums: usize,
    counts: usize,
    infs: usize,
}

impl<'a, 'g> OnePass<'a, 'g> {
    /// A pass for about `series` samples of about `key_bytes` bytes of
    /// keys (0 if unknown); `None` for a grouping the pass leaves to the
    /// reference.
    pub(super) fn new(
        grouping: &'g Grouping,
        grouping_labels: &'g [(&'g str, String)],
        rules: &'g Rules,
        stamp_ms: i64,
        series: usize,
        key_bytes: usize,
    ) -> Option<Self> {
        let is_grouping = |n: &str| grouping.labels.iter().any(|(g, _)| g == n);
        // The check reads a grouping `le` or `quantile` apart from the key's.
        if is_grouping("le") || is_grouping("quantile") {
            return None;
        }
        let mut out = PushBatch::default();
        out.batch.series.reserve(series);
        out.batch.keys.reserve(key_bytes);
        Some(OnePass {
            grouping,
            grouping_labels,
            rules,
            stamp_ms,
            hasher: RandomState::default(),
            out,
            plans: Vec::with_capacity(PLANS),
            plan_ids: Vec::with_capacity(PLANS),
            next_id: 0,
            last_plan: 0,
            next_slot: 0,
            seen: HashTable::new(),
            ascending: true,
            family_start: 0,
            spellings: Vec::new(),
            next_spelling: 0,
            family: Family::default(),
        })
    }

    /// Starts family `name` of `samples` samples (`None`: not known); where
    /// its series start in the batch.
    pub(super) fn begin_family(
        &mut self,
        name: &'a str,
        metric_type: MetricType,
        samples: Option<usize>,
    ) -> Option<usize> {
        // A sample's name is its family's, or that with a suffix of its
        // type (checked per sample): valid when the family's is.
        if !model::is_legacy_metric_name(name) {
            return None;
        }
        match samples {
            Some(n) if self.seen.capacity() > 4 * n + 64 => {
                self.seen = HashTable::with_capacity(n);
            }
            _ => {
                self.seen.clear();
                self.seen.reserve(samples.unwrap_or(0), |&(h, _, _)| h);
            }
        }
        self.ascending = true;
        self.family_start = self.out.batch.series.len();
        // The metrics' buffers are kept from family to family.
        let mut metrics = std::mem::take(&mut self.family.metrics);
        metrics.clear();
        self.family = Family {
            name,
            metrics,
            histogram: metric_type == MetricType::Histogram,
            bound_label: match metric_type {
                MetricType::Histogram => Some("le"),
                MetricType::Summary => Some("quantile"),
                _ => None,
            },
            ..Family::default()
        };
        Some(self.out.batch.series.len())
    }

    /// The plan made for labels of these names, the last one used first.
    #[inline]
    pub(super) fn plan_for(&mut self, pairs: &[(&'a str, &str)]) -> usize {
        let p = if self
            .plans
            .get(self.last_plan)
            .is_some_and(|p| p.fits(pairs))
        {
            self.last_plan
        } else if let Some(p) = self.plans.iter().position(|p| p.fits(pairs)) {
            p
        } else {
            let plan = KeyPlan::new(pairs, self.grouping_labels, &self.rules.series);
            self.next_id += 1;
            if self.plans.len() < PLANS {
                self.plans.push(plan);
                self.plan_ids.push(self.next_id);
                self.plans.len() - 1
            } else {
                let p = self.next_slot;
                self.plans[p] = plan;
                self.plan_ids[p] = self.next_id;
                self.next_slot = (p + 1) % PLANS;
                p
            }
        };
        self.last_plan = p;
        p
    }

    /// The label names of plan `p`, in body order, and their matchers.
    #[inline]
    pub(super) fn plan_names(&self, p: usize) -> (&[&'a str], &[NameMatcher]) {
        (&self.plans[p].names, &self.plans[p].matchers)
    }

    /// The plan used last.
    #[inline]
    pub(super) fn last_plan(&self) -> Option<usize> {
        (self.last_plan < self.plans.len()).then_some(self.last_plan)
    }

    /// Lowers a sample of the current family: `name`, labels `pairs` as
    /// written (names those of plan `p`), `value`.
    #[inline]
    pub(super) fn sample(
        &mut self,
        p: usize,
        name: &str,
        pairs: &[(&'a str, &'a str)],
        mut value: f64,
    ) -> Option<()> {
        let plan = &self.plans[p];
        // Valid names, none reserved (`__`), none twice.
        if !plan.valid || !plan.distinct {
            return None;
        }
        let family = &mut self.family;
        // The bound's index in `pairs`, and its spelling's in `spellings`.
        let mut bound: Option<(usize, usize)> = None;
        if family.bound_label.is_some() {
            let mut bound_at = None;
            let suffix = name.strip_prefix(family.name)?;
            // The bound is `le` in a histogram, `quantile` in a summary.
            let at = if family.histogram {
                plan.le_at
            } else {
                plan.quantile_at
            };
            match (suffix, at) {
                ("_sum", None) => family.sums += 1,
                ("_count", None) => {
                    if !(0.0..TWO_POW_64).contains(&value) {
                        return None;
                    }
                    value = value.trunc();
                    family.counts += 1;
                }
                ("_bucket", Some(at)) if family.histogram => {
                    if !(0.0..TWO_POW_64).contains(&value) {
                        return None;
                    }
                    value = value.trunc();
                    bound_at = Some(at);
                }
                ("", Some(at)) if !family.histogram => bound_at = Some(at),
                _ => return None,
            }
            if let Some(at) = bound_at {
                let raw = pairs[at].1;
                let spellings = &mut self.spellings;
                let i = match spellings.get(self.next_spelling) {
                    Some(s) if same_bytes(s.raw.as_bytes(), raw.as_bytes()) => self.next_spelling,
                    _ => match spellings.iter().position(|s| s.raw == raw) {
                        Some(i) => i,
                        None => {
                            // NaN and what is no number are refused.
                            let v =
                                model::parse_go_float(raw.as_bytes()).filter(|v| !v.is_nan())?;
                            let go = model::go_float(v);
                            spellings.push(Spelling {
                                raw,
                                inf: go == "+Inf",
                                float: model::is_text_format_float(&go),
                                go,
                            });
                            spellings.len() - 1
                        }
                    },
                };
                self.next_spelling = i + 1;
                family.infs += usize::from(spellings[i].inf);
                bound = Some((at, i));
            }
        } else if !(name.len() == family.name.len()
            // Most often the very slice the family was named by (the
            // text reader's), which needs no comparing.
            && (name.as_ptr() == family.name.as_ptr() || name == family.name))
        {
            return None;
        }
        let batch = &mut self.out.batch;
        let key = plan.write_checked_name(
            name,
            pairs,
            bound.map(|(at, i)| {
                let s = &self.spellings[i];
                (at, s.go.as_str(), s.float)
            }),
            self.grouping_labels,
            &self.rules.series,
            &mut batch.keys,
        )?;
        let (start, len) = (key.start, key.len);
        let keys = batch.keys.as_bytes();
        let bytes = &keys[start as usize..][..len as usize];
        if self.ascending
            && let Some(previous) = batch.series[self.family_start..].last()
            && key_bytes(keys, previous.key) >= bytes
        {
            // Out of order: the family's keys so far (distinct, being
            // ascending) go into the table, which finds duplicates from now
            // on.
            self.ascending = false;
            for u in &batch.series[self.family_start..] {
                let h = self.hasher.hash_one(key_bytes(keys, u.key));
                self.seen
                    .insert_unique(h, (h, u.key.start, u.key.len), |&(h, _, _)| h);
            }
        }
        if !self.ascending {
            let hash = self.hasher.hash_one(bytes);
            let same = |&(h, s, l): &(u64, u32, u32)| {
                h == hash && keys[s as usize..][..l as usize] == *bytes
            };
            // One probe finds a duplicate or the place for the key.
            match self.seen.entry(hash, same, |&(h, _, _)| h) {
                hash_table::Entry::Occupied(_) => return None,
                hash_table::Entry::Vacant(place) => {
                    place.insert((hash, start, len));
                }
            }
        }
        if family.bound_label.is_some() {
            let grouping = self.grouping;
            let is_grouping = |n: &str| grouping.labels.iter().any(|(g, _)| g == n);
            let bound_at = bound.map(|(at, _)| at);
            if !family.metrics.add(
                self.plan_ids[p],
                pairs,
                bound_at,
                &is_grouping,
                &self.hasher,
            ) {
                return None;
            }
        }
        push_update(batch, key, value, self.stamp_ms);
        Some(())
    }

    /// Ends the current family's samples: does every histogram or summary
    /// metric have its `_sum`, `_count` and (histograms) `+Inf` bucket? If
    /// not, the caller adds what the reference adds.
    pub(super) fn end_family(&self) -> bool {
        let f = &self.family;
        let metrics = f.metrics.count;
        f.sums == metrics && f.counts == metrics && (!f.histogram || f.infs == metrics)
    }

    /// How many series the batch holds.
    pub(super) fn series_len(&self) -> usize {
        self.out.batch.series.len()
    }

    /// Records the family whose series are `series` in the batch, as the
    /// reference does: its metadata and its place in the batch.
    pub(super) fn family_done(
        &mut self,
        name: &str,
        metric_type: MetricType,
        help: Option<&str>,
        series: Range<usize>,
    ) -> Option<()> {
        let help = help.unwrap_or("");
        if help.len() > self.rules.series.max_help_len {
            return None;
        }
        let out = &mut self.out;
        out.batch.metadata.push((
            name.to_string(),
            Metadata {
                metric_type,
                help: help.to_string(),
                unit: String::new(),
            },
        ));
        out.families.push(PushedFamily {
            name: name.to_string(),
            metric_type,
            series,
        });
        Some(())
    }

    /// The lowered push, once the rules over all its families hold: no
    /// family named twice, none reserved, none named like a histogram's
    /// or summary's series.
    pub(super) fn finish(self) -> Option<PushBatch> {
        self.families_pass().then_some(self.out)
    }

    fn families_pass(&self) -> bool {
        let families = &self.out.families;
        let names: HashSet<&str, RandomState> = families.iter().map(|f| &*f.name).collect();
        if names.len() != families.len() {
            return false;
        }
        let mut suffixed = String::new();
        for f in families {
            if PUSH_TIME_METRICS.contains(&&*f.name) {
                return false;
            }
            let suffixes: &[&str] = match f.metric_type {
                MetricType::Summary => &["_count", "_sum"],
                MetricType::Histogram => &["_count", "_sum", "_bucket"],
                _ => &[],
            };
            for suffix in suffixes {
                suffixed.clear();
                suffixed.push_str(&f.name);
                suffixed.push_str(suffix);
                if names.contains(suffixed.as_str()) {
                    return false;
                }
            }
        }
        true
    }
}

/// The histogram or summary metrics of one family (label sets besides the
/// bound), as the check tells them apart: by their labels that count (not
/// empty, not grouping), each with its labels as written, which must agree
/// for all of its samples.
#[derive(Default)]
struct Metrics<'a> {
    /// The previous sample's labels besides the bound, as written: a
    /// sample with the same ones is the same metric, consistent with
    /// itself (a metric's samples come together as client libraries write
    /// them); and its plan's number (with the same, only values need
    /// comparing).
    previous: Vec<(&'a str, &'a str)>,
    previous_plan: Option<usize>,
    /// Keys: per metric its counted labels, then its labels as written,
    /// each sorted; `0xfe` before a name and `0xff` before a value, bytes
    /// no UTF-8 holds.
    arena: Vec<u8>,
    /// (hash of the counted labels, their span, the written labels' span).
    table: HashTable<(u64, Span, Span)>,
    sorted: Vec<(&'a str, &'a str)>,
    count: usize,
}

impl<'a> Metrics<'a> {
    /// Forgets every metric, keeping the buffers.
    fn clear(&mut self) {
        self.previous.clear();
        self.previous_plan = None;
        self.arena.clear();
        self.table.clear();
        self.sorted.clear();
        self.count = 0;
    }

    /// Adds a sample with labels `pairs` (bound at `bound_at`); `false`
    /// when its metric was seen with other labels as written.
    fn add(
        &mut self,
        plan: usize,
        pairs: &[(&'a str, &'a str)],
        bound_at: Option<usize>,
        is_grouping: &impl Fn(&str) -> bool,
        hasher: &RandomState,
    ) -> bool {
        let others = pairs
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != bound_at)
            .map(|(_, &p)| p);
        if self.previous_plan == Some(plan) {
            // The same names in the same places.
            if others
                .clone()
                .zip(&self.previous)
                .all(|((_, v), &(_, w))| same_bytes(v.as_bytes(), w.as_bytes()))
            {
                return true;
            }
        } else if self.count > 0 {
            let mut prev = self.previous.iter();
            let mut same = true;
            for (n, v) in others.clone() {
                same &= prev.next().is_some_and(|&(m, w)| {
                    same_bytes(n.as_bytes(), m.as_bytes()) && same_bytes(v.as_bytes(), w.as_bytes())
                });
            }
            if same && prev.next().is_none() {
                self.previous_plan = Some(plan);
                return true;
            }
        }
        self.previous_plan = Some(plan);
        self.previous.clear();
        self.previous.extend(others);
        self.sorted.clear();
        self.sorted.extend(self.previous.iter().copied());
        // Names are distinct (the plan says so): one order, the check's.
        self.sorted.sort_unstable_by(|a, b| name_order(a.0, b.0));
        let start = self.arena.len();
        for &(n, v) in &self.sorted {
            if !v.is_empty() && !is_grouping(n) {
                push_pair(&mut self.arena, n, v);
            }
        }
        let counted = (start as u32, self.arena.len() as u32);
        for &(n, v) in &self.sorted {
            push_pair(&mut self.arena, n, v);
        }
        let written = (counted.1, self.arena.len() as u32);
        let span = |(s, e): Span| s as usize..e as usize;
        let arena = &self.arena;
        let hash = hasher.hash_one(&arena[span(counted)]);
        let found = self.table.find(hash, |&(h, c, _)| {
            h == hash && arena[span(c)] == arena[span(counted)]
        });
        match found {
            Some(&(_, _, first)) => {
                let consistent = arena[span(first)] == arena[span(written)];
                self.arena.truncate(start);
                consistent
            }
            None => {
                self.table
                    .insert_unique(hash, (hash, counted, written), |&(h, _, _)| h);
                self.count += 1;
                true
            }
        }
    }
}

/// The bytes of key `key` in `keys`.
#[inline]
fn key_bytes(keys: &[u8], key: model::KeySpan) -> &[u8] {
    &keys[key.start as usize..][..key.len as usize]
}

/// Where a key lies in [`Metrics::arena`]: start and end.
type Span = (u32, u32);

/// Appends a label to a metric's key.
fn push_pair(arena: &mut Vec<u8>, name: &str, value: &str) {
    arena.push(0xfe);
    arena.extend_from_slice(name.as_bytes());
    arena.push(0xff);
    arena.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ingest::lower::TimeRange;
    use crate::ingest::parse_text;
    use crate::ingest::push::lower::{grouping_labels, lower_reference, same_push};
    use crate::ingest::push::lower_text;
    use crate::model::SeriesLimits;

    fn rules(small: bool) -> Rules {
        let series = if small {
            SeriesLimits {
                max_labels: 5,
                max_name_len: 8,
                max_value_len: 10,
                max_help_len: 9,
                max_histogram_buckets: 320,
            }
        } else {
            SeriesLimits {
                max_labels: 30,
                max_name_len: 256,
                max_value_len: 4096,
                max_help_len: 4096,
                max_histogram_buckets: 320,
            }
        };
        Rules {
            series,
            timestamps: TimeRange::new(0, None),
        }
    }

    /// The one-pass lowering of `body`, if it does not give up, and the
    /// reference's.
    fn both(
        body: &str,
        grouping: &Grouping,
        rules: &Rules,
    ) -> Option<(Option<PushBatch>, Result<PushBatch, crate::ingest::Error>)> {
        let families = parse_text(body.as_bytes()).ok()?;
        let labels = grouping_labels(grouping);
        Some((
            lower(&families, grouping, &labels, rules, 7),
            lower_reference(&families, grouping, rules, 7),
        ))
    }

    #[test]
    fn client_library_pushes_take_one_pass() {
        let body = concat!(
            "# HELP c_total A counter.\n",
            "# TYPE c_total counter\n",
            "c_total{service=\"a\",method=\"m0\",code=\"200\"} 1\n",
            "c_total{service=\"a\",method=\"m1\",code=\"200\"} 2.5\n",
            "# TYPE g gauge\n",
            "g 3\n",
            "# TYPE h histogram\n",
            "h_bucket{service=\"a\",le=\"0.5\"} 1\n",
            "h_bucket{service=\"a\",le=\"+Inf\"} 2\n",
            "h_sum{service=\"a\"} 0.7\n",
            "h_count{service=\"a\"} 2\n",
            "h_bucket{service=\"b\",le=\"0.50\"} 1\n",
            "h_bucket{service=\"b\",le=\"+Inf\"} 2\n",
            "h_sum{service=\"b\"} 0.7\n",
            "h_count{service=\"b\"} 2\n",
            "# TYPE s summary\n",
            "s{quantile=\"0.5\"} 1\n",
            "s_sum 3\n",
            "s_count 2\n",
        );
        let grouping = Grouping::new("j".into(), vec![("i".into(), "x".into())]).unwrap();
        let (fast, reference) = both(body, &grouping, &rules(false)).unwrap();
        let fast = fast.expect("a push as client libraries write it takes one pass");
        let reference = reference.unwrap();
        assert!(same_push(&fast, &reference));
        let text = lower_text(body.as_bytes(), &grouping, &rules(false), 7)
            .expect("and is read in one pass");
        assert!(same_push(&text, &reference));
    }

    #[test]
    fn text_in_one_pass_or_not() {
        let grouping = Grouping::new("j".into(), vec![]).unwrap();
        let rules = rules(false);
        let one_pass = |body: &str| lower_text(body.as_bytes(), &grouping, &rules, 7);
        let reference = |body: &str| {
            lower_reference(&parse_text(body.as_bytes()).unwrap(), &grouping, &rules, 7).unwrap()
        };
        // Families are listed, and their series placed, in the order they
        // first appear, a HELP or TYPE line included; a late HELP counts.
        for body in [
            "# TYPE b gauge\n# TYPE a gauge\na 1\nb{x=\"1\"} 2\n# HELP a late\n",
            "a{} 1\n\n  \n# comment\nb{x=\"1\",y=\"2\"} 2\nb{y=\"2\",x=\"3\"} 3\n",
            "a 1\nb 1e3\nc NaN\nd +Inf\n",
            // Keys ascending, then not.
            "a{x=\"1\"} 1\na{x=\"3\"} 1\na{x=\"2\"} 1\na{x=\"4\"} 1\nb{x=\"1\"} 1\n",
        ] {
            let fast = one_pass(body).unwrap_or_else(|| panic!("{body:?} in one pass"));
            assert!(same_push(&fast, &reference(body)), "{body:?}");
        }
        // What is left to the two steps.
        for body in [
            "a 1\nb 2\na{x=\"1\"} 3\n",
            "a{x=\"a\\\"b\"} 1\n",
            "a{ x=\"1\"} 1\n",
            "a{x=\"1\",} 1\n",
            "a  1\n",
            " a 1\n",
            "a 1 5\n",
            "a 1",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n",
        ] {
            assert!(one_pass(body).is_none(), "{body:?}");
        }
    }

    #[test]
    fn refusals_are_the_references() {
        let grouping = Grouping::new("j".into(), vec![]).unwrap();
        for body in [
            "a 1\na 2\n",
            "a{x=\"\"} 1\na 2\n",
            "a{job=\"x\"} 1\na 2\n",
            "# TYPE h histogram\nh_bucket{le=\"0\"} 1\nh_bucket{le=\"-0\"} 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\n",
            "# TYPE s summary\ns{quantile=\"-0\"} 1\ns{quantile=\"0.0\"} 1\n",
            "# TYPE h histogram\nh_sum{a=\"1\"} 1\nh_count{a=\"1\",b=\"\"} 1\n",
            "# TYPE h histogram\nh_bucket{le=\"NaN\"} 1\n",
            "# TYPE h histogram\nh_count -1\n",
            "a 1 5\n",
            "a{__x=\"1\"} 1\n",
            "push_time_seconds 1\n",
            "# TYPE x summary\nx_sum 1\nx_count 1\nx_count{} 2\n",
            // A duplicate while a family's keys ascend, and after.
            "a{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"2\"} 1\n",
            "a{x=\"1\"} 1\na{x=\"3\"} 1\na{x=\"2\"} 1\na{x=\"3\"} 1\n",
            "a{x=\"1\"} 1\na{x=\"3\"} 1\na{x=\"2\"} 1\na{x=\"1\",y=\"\"} 1\n",
        ] {
            let (fast, reference) = both(body, &grouping, &rules(false)).unwrap();
            assert!(fast.is_none(), "{body:?} gives up");
            assert!(reference.is_err(), "{body:?} is refused");
            let text = lower_text(body.as_bytes(), &grouping, &rules(false), 7);
            assert!(text.is_none(), "{body:?} gives up in one pass");
        }
        // `-0` and `0` are one bound here as in the check.
        let (_, reference) = both(
            "# TYPE h histogram\nh_bucket{le=\"-0\"} 1\nh_bucket{le=\"0\"} 2\n",
            &grouping,
            &rules(false),
        )
        .unwrap();
        assert!(matches!(
            reference,
            Err(crate::ingest::Error::InvalidPush {
                rule: crate::ingest::push::PushRule::DuplicateSeries,
                ..
            })
        ));
    }

    const NAMES: &[&str] = &[
        "a",
        "a_count",
        "a_sum",
        "a_bucket",
        "b",
        "push_time_seconds",
    ];
    const TYPES: &[&str] = &["", "counter", "gauge", "untyped", "histogram", "summary"];
    const LABELS: &[&str] = &["x", "y", "job", "instance", "le", "quantile", "__r", "zz"];
    const VALUES: &[&str] = &[
        "", "1", "-0", "0", "0.0", "1.0", "+Inf", "NaN", "v", "a\\\"b", "1e3",
    ];
    const SAMPLE_VALUES: &[&str] = &["1", "0", "-1", "2.5", "NaN", "+Inf", "1e30", "7 12"];
    const SUFFIXES: &[&str] = &["", "", "_bucket", "_sum", "_count", "_total"];

    fn line() -> impl Strategy<Value = String> {
        (
            prop::sample::select(NAMES),
            prop::sample::select(SUFFIXES),
            prop::collection::vec(
                (prop::sample::select(LABELS), prop::sample::select(VALUES)),
                0..4,
            ),
            prop::sample::select(SAMPLE_VALUES),
        )
            .prop_map(|(name, suffix, labels, value)| {
                let labels: Vec<String> =
                    labels.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
                if labels.is_empty() {
                    format!("{name}{suffix} {value}\n")
                } else {
                    format!("{name}{suffix}{{{}}} {value}\n", labels.join(","))
                }
            })
    }

    /// Bodies as client libraries write them but for what is drawn wrong:
    /// families of histograms' shape, repeated metrics and bounds.
    fn body() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop::sample::select(NAMES),
                prop::sample::select(TYPES),
                prop::collection::vec(line(), 0..4),
                prop::collection::vec(
                    (
                        prop::sample::select(&["x", "y", "instance", "job"][..]),
                        prop::sample::select(&["", "1", "2"][..]),
                        prop::sample::select(&["0.5", "1", "1.0", "-0", "0", "+Inf"][..]),
                    ),
                    0..4,
                ),
            ),
            0..4,
        )
        .prop_map(|families| {
            let mut body = String::new();
            for (name, ty, lines, metrics) in families {
                if !ty.is_empty() {
                    body.push_str(&format!("# TYPE {name} {ty}\n"));
                }
                for l in lines {
                    body.push_str(&l);
                }
                // Whole histogram and summary metrics, as libraries write them.
                for (label, value, bound) in metrics {
                    let (bucket, le) = if ty == "summary" {
                        ("", "quantile")
                    } else {
                        ("_bucket", "le")
                    };
                    body.push_str(&format!(
                        "{name}{bucket}{{{label}=\"{value}\",{le}=\"{bound}\"}} 1\n"
                    ));
                    body.push_str(&format!("{name}_sum{{{label}=\"{value}\"}} 1\n"));
                    body.push_str(&format!("{name}_count{{{label}=\"{value}\"}} 1\n"));
                }
            }
            body
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn text_in_one_pass_is_parse_then_lower(
            body in body(),
            late_help in any::<bool>(),
            grouping in prop::collection::vec(
                (prop::sample::select(&["instance", "x", "le"][..]), prop::sample::select(&["g", "1"][..])),
                0..2,
            ),
            small in any::<bool>(),
        ) {
            let mut body = body;
            if late_help {
                body.push_str("# HELP a late\n# HELP b late\n");
            }
            let grouping = Grouping::new(
                "j".into(),
                grouping.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            )
            .unwrap();
            let rules = rules(small);
            let Some(fast) = lower_text(body.as_bytes(), &grouping, &rules, 7) else {
                return Ok(());
            };
            let reference = parse_text(body.as_bytes())
                .map_err(|e| TestCaseError::fail(format!("{body:?}: one pass accepts, the parser says {e}")))?;
            let reference = lower_reference(&reference, &grouping, &rules, 7)
                .map_err(|e| TestCaseError::fail(format!("{body:?}: one pass accepts, the lowering says {e}")))?;
            prop_assert!(same_push(&fast, &reference), "{:?}: {:?} vs {:?}", body, fast, reference);
        }

        #[test]
        fn one_pass_is_the_reference(
            body in body(),
            grouping in prop::collection::vec(
                (prop::sample::select(&["instance", "x", "le", "quantile"][..]), prop::sample::select(&["g", "1"][..])),
                0..2,
            ),
            small in any::<bool>(),
        ) {
            let grouping = Grouping::new(
                "j".into(),
                grouping.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            )
            .unwrap();
            let Some((fast, reference)) = both(&body, &grouping, &rules(small)) else {
                return Ok(());
            };
            if let Some(fast) = fast {
                let reference = reference.map_err(|e| TestCaseError::fail(format!("{body:?}: one pass accepts, the reference says {e}")))?;
                prop_assert!(same_push(&fast, &reference), "{:?}: {:?} vs {:?}", body, fast, reference);
            }
        }
    }
}
