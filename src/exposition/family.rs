//! Planning a page: which metric names form which family, and the HELP and
//! TYPE each family is exposed with.
//!
//! Rules:
//! - `x_bucket`, `x_sum`, `x_count` join family `x` when `x` is a histogram;
//!   `x`, `x_sum`, `x_count` join it when `x` is a summary. Every other name is
//!   its own family.
//! - A counter pushed with the OpenMetrics family name `x` describes `x_total`.
//! - Families are sorted by name; each appears once, HELP and TYPE first.
//!
//! Every page must read completely, with no sample lost, in each parser that
//! scrapes it. Prometheus' and vmagent's parsers take a sample line as it is,
//! so only client_golang's text parser (promtool, the Pushgateway, every Go
//! program using `expfmt`) can be led astray: it files a line or a HELP/TYPE
//! comment under the first family it finds among the name itself, the name
//! less `_count`/`_sum` if that is a summary, and the name less
//! `_count`/`_sum`/`_bucket` if that is a histogram; and inside a histogram
//! (summary) it sets `le` (`quantile`) aside, so two lines differing only
//! there become one. [`plan`] replays that filing on the planned page
//! ([`check`]) and takes the TYPE off a histogram or summary family that
//! would lose or misfile a line, or the HELP and TYPE off a family whose
//! header would land in another family, until the page files cleanly. The
//! suffixes `_total`, `_created`, `_info`, `_gsum` and `_gcount` mean nothing
//! to a text-format 0.0.4 parser and need no rule here.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::escaping::{self, Escaping};
use crate::model::{Metadata, MetricType, SeriesTraits};
use crate::store::{MetricView, Store};

/// One family of the page.
pub(super) struct Family {
    /// The family name, as HELP and TYPE name it (escaped for the page).
    pub name: Box<str>,
    /// The HELP text, unescaped, when pushed and non-empty.
    pub help: Option<String>,
    /// The TYPE word, when the family is typed.
    pub type_name: Option<&'static str>,
    /// The unit, when the sender gave one (Remote-Write 2.0, 1.0's metadata).
    pub unit: Option<String>,
    /// The metric names of the family, sorted by their name on the page,
    /// a name that needed no escaping before those escaped to it.
    pub members: Vec<Member>,
    /// Does some series of the family have a name outside the legacy set
    /// that the page escapes? Then two series may escape alike, and the
    /// renderer keeps the first (see `render`).
    pub escapes: bool,
    /// Has the family a `<name>_bucket`, `_count` or `_sum` metric of its
    /// own (escaping alike included), beside native histograms? Then their
    /// sender writes the classic form too (or lines that would clash with
    /// it), and the text pages show those only: never a series twice.
    pub classic_sent: bool,
}

/// A metric name of the store as one page shows it.
#[derive(Clone)]
pub(super) struct Member {
    /// The name on the page (the store's, escaped by the page's scheme).
    pub name: Box<str>,
    /// The store's series of that name.
    pub view: MetricView,
}

impl Family {
    fn has_header(&self) -> bool {
        self.help.is_some() || self.type_name.is_some()
    }

    /// The parser's kind of the family's own name, once its header is read.
    fn kind(&self) -> Kind {
        match self.type_name {
            Some("histogram") => Kind::Histogram,
            Some("summary") => Kind::Summary,
            _ => Kind::Other,
        }
    }
}

/// Passes of [`check`] before every histogram and summary is left untyped,
/// and as many again before no family has HELP or TYPE (a page that always
/// files cleanly). Each pass settles at least one family; real pages settle
/// in one or two.
const MAX_PASSES: usize = 16;

/// The families of the page escaped by `scheme`, sorted by name: from the
/// metric names (a few thousand at most) and their metadata, never from the
/// series. Names that escape to one name are one family, its metadata the
/// unescaped name's if it has any, else the first escaped one's.
pub(super) fn plan(store: &Store, scheme: Escaping) -> Vec<Family> {
    let mut metrics: Vec<Member> = store
        .metrics()
        .into_iter()
        .map(|view| Member {
            name: escaping::metric_name(view.name(), scheme).into(),
            view,
        })
        .collect();
    // The name that needed no escaping first among those escaping alike.
    metrics.sort_by(|a, b| {
        (&a.name, &*a.name != a.view.name(), a.view.name()).cmp(&(
            &b.name,
            &*b.name != b.view.name(),
            b.view.name(),
        ))
    });
    // Where the metadata of an escaped name (a metric's, or a family's that
    // its `_bucket`, `_count`, `_sum` or `_total` names) is looked up: the
    // name as it is first, then the store's names escaping to it.
    let mut sources: HashMap<Box<str>, Vec<Box<str>>> = HashMap::new();
    for m in metrics.iter().filter(|m| &*m.name != m.view.name()) {
        let name = m.view.name();
        let bases = ["", "_bucket", "_count", "_sum", "_total"]
            .into_iter()
            .filter_map(|suffix| name.strip_suffix(suffix).filter(|b| !b.is_empty()));
        for base in bases {
            let escaped: Box<str> = escaping::metric_name(base, scheme).into();
            let names = sources
                .entry(escaped.clone())
                .or_insert_with(|| vec![escaped]);
            if !names.iter().any(|n| **n == *base) {
                names.push(base.into());
            }
        }
    }
    let natives = metrics
        .iter()
        .filter(|m| m.view.histograms() > 0)
        .map(|m| m.name.clone())
        .collect();
    let mut metadata = MetadataCache {
        store,
        sources,
        known: HashMap::new(),
        natives,
    };
    let mut settled = Settled::default();
    let mut passes = 0;
    loop {
        let families = group(&metrics, &mut metadata, &settled, scheme);
        let found = check(&families);
        if found.is_empty() {
            return families;
        }
        passes += 1;
        if !settled.take(found) || passes == MAX_PASSES {
            if settled.all_untyped {
                break;
            }
            settled.all_untyped = true;
            passes = 0;
        }
    }
    settled.no_headers = true;
    group(&metrics, &mut metadata, &settled, scheme)
}

/// Families whose typing [`check`] found unsafe.
#[derive(Default)]
struct Settled {
    /// Histogram and summary families exposed without TYPE (their names
    /// still join them, so their HELP stays with them).
    untyped: HashSet<Box<str>>,
    /// Families exposed without HELP and TYPE.
    headerless: HashSet<Box<str>>,
    /// Every histogram and summary untyped.
    all_untyped: bool,
    /// No HELP or TYPE at all.
    no_headers: bool,
}

impl Settled {
    /// Takes what a pass found; `false` if it was all known already.
    fn take(&mut self, found: Vec<Finding>) -> bool {
        let mut new = false;
        for f in found {
            new |= match f {
                Finding::Untype(name) => self.untyped.insert(name),
                Finding::DropHeader(name) => self.headerless.insert(name),
            };
        }
        new
    }

    fn untyped(&self, family: &str) -> bool {
        self.all_untyped || self.untyped.contains(family)
    }
}

/// Metadata looked up once per name (as the page names it) per scrape.
struct MetadataCache<'s> {
    store: &'s Store,
    /// The store's names of each escaped name on the page, in the order
    /// their metadata is preferred.
    sources: HashMap<Box<str>, Vec<Box<str>>>,
    known: HashMap<String, Option<Metadata>>,
    /// The names on the page of metrics with native histograms: each is a
    /// histogram family (a gauge histogram's when its metadata says so),
    /// whose classic form has `_bucket`, `_count` and `_sum` lines.
    natives: HashSet<Box<str>>,
}

impl MetadataCache<'_> {
    fn get(&mut self, name: &str) -> Option<&Metadata> {
        if !self.known.contains_key(name) {
            let md = match self.sources.get(name) {
                Some(names) => names.iter().find_map(|n| self.store.metadata(n)),
                None => self.store.metadata(name),
            };
            self.known.insert(name.to_string(), md);
        }
        self.known[name].as_ref()
    }

    fn type_of(&mut self, name: &str) -> Option<MetricType> {
        self.get(name).map(|m| m.metric_type)
    }
}

/// Groups the sorted `metrics` into families with their HELP and TYPE.
fn group(
    metrics: &[Member],
    md: &mut MetadataCache<'_>,
    settled: &Settled,
    scheme: Escaping,
) -> Vec<Family> {
    let mut families: BTreeMap<Box<str>, Vec<Member>> = BTreeMap::new();
    for metric in metrics {
        let family = family_of(&metric.name, md);
        families
            .entry(family.into())
            .or_default()
            .push(metric.clone());
    }
    families
        .into_iter()
        .map(|(name, members)| {
            let (mut help, mut type_name, unit) = match family_metadata(&name, md) {
                None => (None, None, None),
                Some(m) => (
                    Some(m.help).filter(|h| !h.is_empty()),
                    m.metric_type.text_format_name(),
                    Some(m.unit).filter(|u| !u.is_empty()),
                ),
            };
            if md.natives.contains(&name) && md.type_of(&name) != Some(MetricType::GaugeHistogram) {
                type_name = Some("histogram");
            }
            if matches!(type_name, Some("histogram" | "summary")) && settled.untyped(&name) {
                type_name = None;
            }
            if settled.no_headers || settled.headerless.contains(&name) {
                (help, type_name) = (None, None);
            }
            // An untyped family (a gauge histogram's) whose lines are all a
            // native histogram's `_bucket`, `_count` and `_sum`: a parser
            // files none of them under the family's own name, so its HELP
            // would describe nothing (client_golang drops it).
            let plain_own = members
                .iter()
                .any(|m| m.name == name && m.view.histograms() < m.view.len());
            if type_name.is_none() && md.natives.contains(&name) && !plain_own {
                help = None;
            }
            let escapes = scheme != Escaping::AllowUtf8
                && members.iter().any(|m| m.view.any_with(SeriesTraits::UTF8));
            // Float series only: a name holding native histograms is a
            // family of its own (`family_of`).
            let classic_sent = md.natives.contains(&name)
                && members.iter().any(|m| {
                    matches!(
                        m.name.strip_prefix(&*name),
                        Some("_bucket" | "_count" | "_sum")
                    )
                });
            Family {
                name,
                help,
                type_name,
                unit,
                members,
                escapes,
                classic_sent,
            }
        })
        .collect()
}

/// The family a metric name belongs to, given the pushed metadata.
fn family_of<'a>(name: &'a str, md: &mut MetadataCache<'_>) -> &'a str {
    // A name holding native histograms is a histogram family of its own
    // (`x_count` native beside `x`: its classic form is `x_count_bucket`,
    // `x_count_count`, `x_count_sum`).
    if md.natives.contains(name) {
        return name;
    }
    for (suffix, histogram, summary) in [
        ("_bucket", true, false),
        ("_sum", true, true),
        ("_count", true, true),
    ] {
        if let Some(base) = name.strip_suffix(suffix).filter(|b| !b.is_empty()) {
            // Beside native histograms, whatever the metadata says: the
            // family is a histogram, and a line of this name would be one
            // of their classic form's.
            let joins = md.natives.contains(base)
                || match md.type_of(base) {
                    Some(MetricType::Histogram) => histogram,
                    Some(MetricType::Summary) => summary,
                    _ => false,
                };
            if joins {
                return base;
            }
        }
    }
    name
}

/// The metadata describing family `family`.
fn family_metadata(family: &str, md: &mut MetadataCache<'_>) -> Option<Metadata> {
    if let Some(m) = md.get(family) {
        return Some(m.clone());
    }
    let base = family.strip_suffix("_total")?;
    md.get(base)
        .filter(|m| m.metric_type == MetricType::Counter)
        .cloned()
}

/// What [`check`] found unsafe about a family.
#[derive(Debug, PartialEq, Eq)]
enum Finding {
    /// Expose this histogram or summary untyped.
    Untype(Box<str>),
    /// Expose this family without HELP and TYPE.
    DropHeader(Box<str>),
}

/// How client_golang's parser treats a family it has created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Takes `_count`/`_sum` lines of its name.
    Summary,
    /// Takes `_count`/`_sum`/`_bucket` lines of its name.
    Histogram,
    /// Takes only lines of exactly its name.
    Other,
}

/// Where client_golang's parser files a line or comment naming `name`.
#[derive(Debug, PartialEq, Eq)]
enum Route<'n> {
    /// A family of exactly this name exists already.
    Exact,
    /// The histogram or summary family of this base name takes it.
    Into(&'n str),
    /// A new family of this name.
    New,
}

/// `name` less `suffix`, if something is left (the parser's `isCount` and
/// friends require a non-empty base).
fn base<'n>(name: &'n str, suffix: &str) -> Option<&'n str> {
    name.strip_suffix(suffix).filter(|b| !b.is_empty())
}

/// The parser's `setOrCreateCurrentMF`, over the families created so far.
fn route<'n>(name: &'n str, created: &HashMap<Box<str>, Kind>) -> Route<'n> {
    if created.contains_key(name) {
        return Route::Exact;
    }
    let count_or_sum = base(name, "_count").or_else(|| base(name, "_sum"));
    if let Some(b) = count_or_sum
        && created.get(b) == Some(&Kind::Summary)
    {
        return Route::Into(b);
    }
    if let Some(b) = count_or_sum.or_else(|| base(name, "_bucket"))
        && created.get(b) == Some(&Kind::Histogram)
    {
        return Route::Into(b);
    }
    Route::New
}

/// Does a typed histogram or summary family hold only lines the parser
/// files under it, with no two collapsing into one?
fn structure_ok(family: &Family) -> bool {
    let name = &*family.name;
    let histogram = family.kind() == Kind::Histogram;
    family.members.iter().all(|m| {
        let suffix = m.name.strip_prefix(name).unwrap_or("?");
        let any = |traits| m.view.any_with(traits);
        match (histogram, suffix) {
            // Every bucket has a readable bound.
            (true, "_bucket") => !any(SeriesTraits::NO_LE | SeriesTraits::BAD_LE),
            // A count or sum with an `le` would merge with its neighbour.
            (true, "_count" | "_sum") => !any(SeriesTraits::HAS_LE),
            // Every quantile line has a readable quantile.
            (false, "") => !any(SeriesTraits::NO_QUANTILE | SeriesTraits::BAD_QUANTILE),
            (false, "_count" | "_sum") => !any(SeriesTraits::HAS_QUANTILE),
            // Native histograms only, shown in their classic form.
            (true, "") => m.view.histograms() == m.view.len() && !any(SeriesTraits::HAS_LE),
            // Anything else (a bare histogram name) would be dropped.
            _ => false,
        }
    })
}

/// The metric names of the lines member `m` puts on the page: its name,
/// and for native histograms their classic form's.
fn line_names(m: &Member) -> Vec<Box<str>> {
    let mut names = Vec::new();
    if m.view.histograms() < m.view.len() {
        names.push(m.name.clone());
    }
    if m.view.histograms() > 0 {
        for suffix in ["_bucket", "_count", "_sum"] {
            names.push(format!("{}{suffix}", m.name).into());
        }
    }
    names
}

/// Replays client_golang's filing of the page `families` describes; what
/// must change for every line and comment to land in its own family.
fn check(families: &[Family]) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut created: HashMap<Box<str>, Kind> = HashMap::new();
    'families: for family in families {
        let kind = family.kind();
        let typed = kind != Kind::Other;
        if typed && !structure_ok(family) {
            found.push(Finding::Untype(family.name.clone()));
            continue;
        }
        if family.has_header() {
            if route(&family.name, &created) != Route::New {
                found.push(Finding::DropHeader(family.name.clone()));
                continue;
            }
            created.insert(family.name.clone(), kind);
        }
        for m in &family.members {
            for name in line_names(m) {
                let own = *name == *family.name;
                let filed = match route(&name, &created) {
                    // Its own name, created by its header (or a duplicate line).
                    Route::Exact => own,
                    Route::Into(b) if b == &*family.name => typed,
                    // Another family's histogram or summary would take the
                    // line: that family must not be typed.
                    Route::Into(captor) => {
                        found.push(Finding::Untype(captor.into()));
                        continue 'families;
                    }
                    Route::New if !typed => {
                        created.insert(name.clone(), Kind::Other);
                        true
                    }
                    Route::New => false,
                };
                if !filed {
                    found.push(Finding::Untype(family.name.clone()));
                    continue 'families;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_client_golang() {
        let created: HashMap<Box<str>, Kind> = [
            ("h", Kind::Histogram),
            ("s", Kind::Summary),
            ("g", Kind::Other),
        ]
        .into_iter()
        .map(|(n, k)| (n.into(), k))
        .collect();
        assert_eq!(route("h_bucket", &created), Route::Into("h"));
        assert_eq!(route("h_count", &created), Route::Into("h"));
        assert_eq!(route("s_sum", &created), Route::Into("s"));
        assert_eq!(route("s_bucket", &created), Route::New);
        assert_eq!(route("g_count", &created), Route::New);
        assert_eq!(route("g", &created), Route::Exact);
        assert_eq!(route("_count", &created), Route::New);
        assert_eq!(route("h_count_count", &created), Route::New);
    }
}
