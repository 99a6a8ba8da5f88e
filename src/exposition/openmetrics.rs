//! Store → OpenMetrics 1.0 (`application/openmetrics-text`), for scrapers
//! that ask for it: Prometheus 2 and 3 put it first in their `Accept`.
//!
//! The page is the text page's plan ([`super::family`]) held to the
//! OpenMetrics rules, as its strictest parser (PyPI's `prometheus_client`,
//! `openmetrics/parser.py`) checks them:
//!
//! - A counter family is named without `_total` and its samples end in
//!   `_total`; a counter family whose samples lack the suffix is exposed as
//!   `unknown`. A counter sample that is NaN or negative (the spec forbids
//!   both) is left off the page and counted.
//! - A histogram (summary) family is typed only when every one of its
//!   label sets is a valid MetricPoint: its samples together, buckets in
//!   increasing `le` ending in `le="+Inf"`, integral and non-decreasing,
//!   `_count` equal to the `+Inf` bucket, `_count` and `_sum` together, one
//!   timestamp (quantiles in 0..=1, non-negative). Otherwise each of its
//!   metric names is a family of its own, typed `unknown`: the samples are
//!   all there, only the type is lost.
//! - A family name one family claims with its suffixes (`x` counter claims
//!   `x_total` and `x_created`) is never another family's: the typed
//!   family that would clash is exposed as `unknown` names instead. The
//!   one exception is what the text format makes of OpenMetrics' created
//!   timestamps: a gauge or untyped family `x_created` beside a counter,
//!   histogram or summary `x` (`prometheus_client` writes one for each) is
//!   written inside `x` as its `_created` samples, each with the
//!   MetricPoint of its label set (before its other lines when its
//!   timestamp is earlier, as timestamps may not go back within one), a
//!   label set of no MetricPoint as one of its own.
//! - `# UNIT` only where the family name ends in `_<unit>`; HELP escapes
//!   `\`, newline and `"`; timestamps in seconds; `# EOF` last.

use std::collections::HashMap;
use std::io::{self, Write};

use super::family::Family;
use super::points::{
    Gathered, Point, by_page_name, exemplar_labels, gather, label_group, points, unit_fits,
};
use super::{
    HistogramForm, Line, PageStats, RenderOptions, Sink, TimestampPolicy, Visited, visit_family,
    write_float,
};
use crate::model::{Sample, is_legacy_metric_name};
use crate::store::{ExemplarRef, Store};

/// How a planned family goes on an OpenMetrics page.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// A counter family named `base`, its samples `base_total`.
    Counter { base: Box<str> },
    /// A gauge family; one metric name, the family's.
    Gauge,
    /// One metric name, the family's, of no known type.
    Unknown,
    /// A classic histogram, if its MetricPoints hold up.
    Histogram,
    /// A summary, if its MetricPoints hold up.
    Summary,
    /// Each metric name a family of its own, typed `unknown`.
    Members,
    /// The `_created` samples of the typed family at index `into`, written
    /// there; on its own (should that family turn out untyped) a gauge
    /// when `gauge`, else `unknown`.
    Created { into: usize, gauge: bool },
}

impl Shape {
    fn of(family: &Family) -> Shape {
        let single = family.members.iter().all(|m| m.name == family.name);
        let native = family.members.iter().any(|m| m.view.histograms() > 0);
        match family.type_name {
            // A native histogram's classic form has `_bucket`, `_count` and
            // `_sum` lines: only a histogram family may hold them as one.
            Some("histogram") => Shape::Histogram,
            _ if native => Shape::Members,
            Some("counter") => match family.name.strip_suffix("_total") {
                Some(base) if single && !base.is_empty() => Shape::Counter { base: base.into() },
                _ if single => Shape::Unknown,
                _ => Shape::Members,
            },
            Some("gauge") if single => Shape::Gauge,
            Some("summary") => Shape::Summary,
            _ if single => Shape::Unknown,
            _ => Shape::Members,
        }
    }

    /// The sample names a family of this shape claims (the parser's
    /// "Clashing name" check).
    fn claims(&self, family: &Family) -> Vec<String> {
        let with = |base: &str, suffixes: &[&str]| {
            suffixes
                .iter()
                .map(|s| format!("{base}{s}"))
                .collect::<Vec<_>>()
        };
        match self {
            Shape::Counter { base } => with(base, &["", "_total", "_created"]),
            Shape::Histogram => with(&family.name, &["", "_bucket", "_count", "_sum", "_created"]),
            Shape::Summary => with(&family.name, &["", "_count", "_sum", "_created"]),
            Shape::Gauge | Shape::Unknown => vec![family.name.to_string()],
            Shape::Members => family.members.iter().map(|m| m.name.to_string()).collect(),
            // Its name is its typed family's.
            Shape::Created { .. } => Vec::new(),
        }
    }

    /// The family name a typed shape writes `_created` samples under.
    fn created_base<'f>(&'f self, family: &'f Family) -> Option<&'f str> {
        match self {
            Shape::Counter { base } => Some(base),
            Shape::Histogram | Shape::Summary => Some(&family.name),
            _ => None,
        }
    }

    fn typed(&self) -> bool {
        matches!(
            self,
            Shape::Counter { .. } | Shape::Histogram | Shape::Summary
        )
    }
}

/// The shape of each family, with every clash settled by exposing the
/// typed families involved as plain names, and each `x_created` family of
/// a typed `x` folded into it.
fn shapes(families: &[Family]) -> Vec<Shape> {
    let mut shapes: Vec<Shape> = families.iter().map(Shape::of).collect();
    let index: HashMap<&str, usize> = families
        .iter()
        .enumerate()
        .map(|(i, f)| (&*f.name, i))
        .collect();
    for into in 0..shapes.len() {
        let Some(base) = shapes[into].created_base(&families[into]) else {
            continue;
        };
        // A quoted name (`{"a.b_created"}`) is left to the clash rule.
        if !is_legacy_metric_name(base) {
            continue;
        }
        if let Some(&j) = index.get(format!("{base}_created").as_str()) {
            let gauge = match shapes[j] {
                Shape::Gauge => true,
                Shape::Unknown => false,
                _ => continue,
            };
            shapes[j] = Shape::Created { into, gauge };
        }
    }
    loop {
        let mut owners: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (shape, family)) in shapes.iter().zip(families).enumerate() {
            for name in shape.claims(family) {
                owners.entry(name).or_default().push(i);
            }
        }
        let mut changed = false;
        for sharing in owners.values().filter(|o| o.len() > 1) {
            for &i in sharing {
                if shapes[i].typed() {
                    shapes[i] = Shape::Members;
                    changed = true;
                }
            }
        }
        // A `_created` family whose family is no longer typed stands alone.
        for j in 0..shapes.len() {
            if let Shape::Created { into, gauge } = shapes[j]
                && !shapes[into].typed()
            {
                shapes[j] = if gauge { Shape::Gauge } else { Shape::Unknown };
                changed = true;
            }
        }
        if !changed {
            return shapes;
        }
    }
}

/// Renders every live series into `out` as an OpenMetrics 1.0 page, in
/// writes of about `opts.chunk_bytes` bytes; names as `opts.escaping` says
/// (see [`super::render`]).
///
/// # Errors
///
/// The first error `out` returns; rendering stops there.
pub fn render(store: &Store, opts: &RenderOptions, out: &mut impl Write) -> io::Result<PageStats> {
    let families = super::family::plan(store, opts.escaping);
    let shapes = shapes(&families);
    let mut page = Om {
        buf: Vec::with_capacity(opts.chunk_bytes + 4096),
        opts,
        stats: PageStats::default(),
    };
    let mut created_of = vec![None; families.len()];
    for (j, shape) in shapes.iter().enumerate() {
        if let Shape::Created { into, gauge } = *shape {
            created_of[into] = Some((&families[j], gauge));
        }
    }
    for ((family, shape), created) in families.iter().zip(&shapes).zip(created_of) {
        match shape {
            Shape::Counter { base } => match created {
                Some(created) => page.counter_with_created(family, base, created, out)?,
                None => page.counter(family, base, out)?,
            },
            Shape::Gauge => page.single(family, "gauge", out)?,
            Shape::Unknown => page.single(family, "unknown", out)?,
            Shape::Histogram | Shape::Summary => {
                let histogram = *shape == Shape::Histogram;
                let lines = page.gather(family);
                let bound = if histogram { "le" } else { "quantile" };
                let created = created.map(|(c, gauge)| (c, gauge, page.created(c, bound)));
                let points = points(family, &lines, histogram);
                // The `_created` line of each MetricPoint, when every line
                // has one to go with, at its time.
                let taken = match (&points, &created) {
                    (Some(points), Some((_, _, c))) => page.created_of_points(points, &lines, c),
                    _ => Some(Vec::new()),
                };
                match (points, taken) {
                    (Some(points), Some(taken)) => {
                        let type_name = if histogram { "histogram" } else { "summary" };
                        page.header(&family.name, family, type_name);
                        for (at, point) in points.iter().enumerate() {
                            for &(_, i) in point {
                                let g = &lines[i];
                                let bucket = histogram && g.name(family).ends_with("_bucket");
                                page.line(g, bucket);
                            }
                            if let (Some(&c), Some((_, _, created))) = (taken.get(at), &created)
                                && let Some(c) = c
                            {
                                page.line(&created.lines[c], false);
                            }
                            page.flush_if_full(out)?;
                        }
                    }
                    _ => {
                        page.members(family, lines, out)?;
                        if let Some((family, gauge, created)) = created {
                            page.alone(family, gauge, created.lines, out)?;
                        }
                    }
                }
            }
            // Written with the family it belongs to.
            Shape::Created { .. } => {}
            Shape::Members => {
                let lines = page.gather(family);
                page.members(family, lines, out)?;
            }
        }
    }
    page.buf.extend_from_slice(b"# EOF\n");
    out.write_all(&page.buf)?;
    Ok(page.stats)
}

struct Om<'o> {
    buf: Vec<u8>,
    opts: &'o RenderOptions,
    stats: PageStats,
}

impl Om<'_> {
    fn flush_if_full(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.buf.len() >= self.opts.chunk_bytes {
            out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// HELP, TYPE and (when the name ends in it) UNIT of a family named
    /// `name` on the page, with `family`'s metadata.
    fn header(&mut self, name: &str, family: &Family, type_name: &str) {
        let buf = &mut self.buf;
        if let Some(help) = &family.help {
            buf.extend_from_slice(b"# HELP ");
            super::escaping::write_family_name(buf, name);
            buf.push(b' ');
            for &c in help.as_bytes() {
                match c {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'"' => buf.extend_from_slice(b"\\\""),
                    _ => buf.push(c),
                }
            }
            buf.push(b'\n');
        }
        buf.extend_from_slice(b"# TYPE ");
        super::escaping::write_family_name(buf, name);
        buf.push(b' ');
        buf.extend_from_slice(type_name.as_bytes());
        buf.push(b'\n');
        if let Some(unit) = &family.unit
            && unit_fits(name, unit)
        {
            buf.extend_from_slice(b"# UNIT ");
            super::escaping::write_family_name(buf, name);
            buf.push(b' ');
            buf.extend_from_slice(unit.as_bytes());
            buf.push(b'\n');
        }
    }

    /// A sample line: prefix, value, timestamp in seconds, and the
    /// exemplar when given (only counters' and histogram buckets' lines
    /// may carry one).
    fn write(
        &mut self,
        prefix: &[u8],
        sample: Sample,
        pushed: bool,
        exemplar: Option<ExemplarRef<'_>>,
    ) {
        let buf = &mut self.buf;
        buf.extend_from_slice(prefix);
        buf.push(b' ');
        write_float(buf, sample.value);
        if self.opts.timestamps == TimestampPolicy::Original && !pushed {
            buf.push(b' ');
            write_seconds(buf, sample.timestamp_ms);
        }
        if let Some(e) = exemplar {
            self.exemplar(e);
        }
        self.buf.push(b'\n');
        self.stats.series += 1;
    }

    /// ` # {labels} value [timestamp]`, the labels escaped for the page;
    /// left out (counted) when escaping makes them break a rule.
    fn exemplar(&mut self, e: ExemplarRef<'_>) {
        // prometheus_client's parser cannot read an escaped quote inside
        // exemplar labels: such an exemplar would fail the whole page.
        if e.labels.contains("\\\"") {
            self.stats.exemplars_dropped += 1;
            return;
        }
        let Some(labels) = exemplar_labels(e.labels, self.opts.escaping) else {
            self.stats.exemplars_dropped += 1;
            return;
        };
        let labels = labels.as_bytes();
        let buf = &mut self.buf;
        buf.extend_from_slice(b" # {");
        buf.extend_from_slice(labels);
        buf.extend_from_slice(b"} ");
        write_float(buf, e.value);
        if let Some(ts) = e.timestamp_ms {
            buf.push(b' ');
            write_seconds(buf, ts);
        }
        self.stats.exemplars += 1;
    }

    /// A gathered line; with its exemplar when `exemplar` (a typed
    /// histogram's bucket).
    fn line(&mut self, g: &Gathered, exemplar: bool) {
        let e = g.exemplar().filter(|_| exemplar);
        self.write(&g.prefix, g.sample, g.pushed, e);
    }

    /// A counter: family `base`, samples `base_total` that are neither NaN
    /// nor negative (the others left off, counted).
    fn counter(&mut self, family: &Family, base: &str, out: &mut impl Write) -> io::Result<()> {
        self.stream(family, base, "counter", out)
    }

    /// A counter with the `_created` family `created` folded in: each
    /// `_total` sample (as [`Om::counter`] writes them) with the
    /// `_created` sample of its label set, the earlier first; then the
    /// `_created` samples of no `_total`. Where a pair cannot be one
    /// MetricPoint (one of its lines has a timestamp on the page and the
    /// other not), the two families are written apart, the counter's
    /// name by name. Both families are held in memory meanwhile.
    fn counter_with_created(
        &mut self,
        family: &Family,
        base: &str,
        (created_family, gauge): (&Family, bool),
        out: &mut impl Write,
    ) -> io::Result<()> {
        let lines = self.gather(family);
        let created = self.created(created_family, "");
        let valid = |g: &Gathered| !(g.sample.value.is_nan() || g.sample.value < 0.0);
        let taken: Vec<Option<usize>> = lines
            .iter()
            .map(|g| created.find(g).filter(|_| valid(g)))
            .collect();
        let together = lines
            .iter()
            .zip(&taken)
            .all(|(g, c)| c.is_none_or(|c| self.stamped(g) == self.stamped(&created.lines[c])));
        if !together {
            self.members(family, lines, out)?;
            return self.alone(created_family, gauge, created.lines, out);
        }
        self.stats.invalid += lines.iter().filter(|g| !valid(g)).count() as u64;
        if lines.iter().any(valid) || !created.lines.is_empty() {
            self.header(base, family, "counter");
        }
        let mut used = vec![false; created.lines.len()];
        for (g, &c) in lines.iter().zip(&taken).filter(|(g, _)| valid(g)) {
            let c = c.map(|c| {
                used[c] = true;
                &created.lines[c]
            });
            // Timestamps may not go back within a MetricPoint.
            let early =
                c.filter(|c| self.stamped(c) && c.sample.timestamp_ms < g.sample.timestamp_ms);
            if let Some(c) = early {
                self.line(c, false);
            }
            self.line(g, true);
            if let Some(c) = c.filter(|_| early.is_none()) {
                self.line(c, false);
            }
            self.flush_if_full(out)?;
        }
        for (c, _) in created.lines.iter().zip(used).filter(|(_, used)| !used) {
            self.line(c, false);
            self.flush_if_full(out)?;
        }
        Ok(())
    }

    /// For each of `points`, the line of `created` with its label set, if
    /// any; `None` unless every line of `created` goes with a MetricPoint
    /// and carries the same timestamp on the page (a histogram's
    /// MetricPoint has one, and a `_created` line alone is none).
    fn created_of_points(
        &self,
        points: &[Point],
        lines: &[Gathered],
        created: &CreatedLines,
    ) -> Option<Vec<Option<usize>>> {
        let taken: Vec<Option<usize>> = points
            .iter()
            .map(|p| created.find(&lines[p[0].1]))
            .collect();
        let same_time = |g: &Gathered, c: &Gathered| {
            self.stamped(g) == self.stamped(c)
                && (!self.stamped(g) || g.sample.timestamp_ms == c.sample.timestamp_ms)
        };
        let all = taken.iter().flatten().count() == created.lines.len();
        let timely = points
            .iter()
            .zip(&taken)
            .all(|(p, c)| c.is_none_or(|c| same_time(&lines[p[0].1], &created.lines[c])));
        (all && timely).then_some(taken)
    }

    /// The lines of a `_created` family, to be found by the label set of
    /// the MetricPoint they belong to (`bound_label` left out).
    fn created(&mut self, family: &Family, bound_label: &'static str) -> CreatedLines {
        let lines = self.gather(family);
        let mut by_group = HashMap::with_capacity(lines.len());
        for (i, g) in lines.iter().enumerate() {
            // A line with the bound label of its own goes with no MetricPoint.
            if let Some((group, None)) = page_group(g, bound_label) {
                by_group.insert(group, i);
            }
        }
        CreatedLines {
            lines,
            by_group,
            bound_label,
        }
    }

    /// Does `g` carry a timestamp on this page?
    fn stamped(&self, g: &Gathered) -> bool {
        self.opts.timestamps == TimestampPolicy::Original && !g.pushed
    }

    /// A `_created` family that goes with no typed family after all,
    /// written as a family of its own (`gauge`, else `unknown`).
    fn alone(
        &mut self,
        family: &Family,
        gauge: bool,
        lines: Vec<Gathered>,
        out: &mut impl Write,
    ) -> io::Result<()> {
        self.header(
            &family.name,
            family,
            if gauge { "gauge" } else { "unknown" },
        );
        for g in &lines {
            self.line(g, false);
            self.flush_if_full(out)?;
        }
        Ok(())
    }

    /// A family of one metric name, its own.
    fn single(
        &mut self,
        family: &Family,
        type_name: &'static str,
        out: &mut impl Write,
    ) -> io::Result<()> {
        self.stream(family, &family.name, type_name, out)
    }

    /// A family written as the store's cursor reads it.
    fn stream(
        &mut self,
        family: &Family,
        name: &str,
        type_name: &'static str,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let mut visited = Visited::default();
        let mut sink = Streamed {
            om: self,
            out,
            family,
            name,
            type_name,
            header_pending: true,
            invalid: 0,
        };
        let form = HistogramForm::classic(family, sink.om.opts);
        visit_family(family, sink.om.opts.escaping, form, &mut visited, &mut sink)?;
        let invalid = sink.invalid;
        self.stats.add(visited);
        self.stats.invalid += invalid;
        Ok(())
    }

    /// Every series of `family`, in memory (a histogram's or summary's
    /// MetricPoints must be checked, and their samples put together).
    fn gather(&mut self, family: &Family) -> Vec<Gathered> {
        let mut visited = Visited::default();
        let form = HistogramForm::classic(family, self.opts);
        let lines = gather(family, self.opts.escaping, form, &mut visited);
        self.stats.add(visited);
        lines
    }

    /// Each metric name of `family` as a family of its own, typed
    /// `unknown` (a native histogram's `_bucket`, `_count` and `_sum`
    /// lines each under their own name); the HELP goes with the name that
    /// is the family's.
    fn members(
        &mut self,
        family: &Family,
        lines: Vec<Gathered>,
        out: &mut impl Write,
    ) -> io::Result<()> {
        for (name, own, lines) in by_page_name(family, lines) {
            let help = if own { family.help.clone() } else { None };
            let own = Family {
                name: name.clone(),
                help,
                type_name: None,
                unit: family.unit.clone().filter(|_| own),
                members: Vec::new(),
                escapes: false,
                classic_sent: false,
            };
            self.header(&name, &own, "unknown");
            for g in lines {
                self.line(&g, false);
                self.flush_if_full(out)?;
            }
        }
        Ok(())
    }
}

/// A `_created` family's lines, by the label set of their MetricPoint
/// on the page.
struct CreatedLines {
    lines: Vec<Gathered>,
    by_group: HashMap<String, usize>,
    bound_label: &'static str,
}

impl CreatedLines {
    /// The line for the MetricPoint `line` is one of.
    fn find(&self, line: &Gathered) -> Option<usize> {
        let (group, _) = page_group(line, self.bound_label)?;
        self.by_group.get(&group).copied()
    }
}

/// The label set of `line` as the page writes it (escaped names, which
/// is what the parser compares), `bound_label` left out, and that label's
/// value.
fn page_group<'g>(line: &'g Gathered, bound_label: &str) -> Option<(String, Option<&'g str>)> {
    label_group(std::str::from_utf8(&line.prefix).ok()?, bound_label)
}

/// A family of one metric name (a counter's or another), written as read.
struct Streamed<'a, 'o, W> {
    om: &'a mut Om<'o>,
    out: &'a mut W,
    family: &'a Family,
    /// The family's name on the page (a counter's without `_total`).
    name: &'a str,
    type_name: &'static str,
    header_pending: bool,
    /// Counter samples left off: NaN or negative.
    invalid: u64,
}

impl<W: Write> Sink for Streamed<'_, '_, W> {
    #[inline(always)]
    fn series(&mut self, line: Line<'_>) {
        let v = line.sample.value;
        if self.type_name == "counter" && (v.is_nan() || v < 0.0) {
            self.invalid += 1;
            return;
        }
        if std::mem::take(&mut self.header_pending) {
            self.om.header(self.name, self.family, self.type_name);
        }
        // Only a counter's samples (`_total`) may carry one here.
        let exemplar = line.exemplar.filter(|_| self.type_name == "counter");
        self.om
            .write(line.prefix, line.sample, line.traits.pushed(), exemplar);
    }

    fn part_end(&mut self) -> io::Result<()> {
        self.om.flush_if_full(self.out)
    }
}

/// Milliseconds since the epoch as OpenMetrics' seconds: `1700000000.123`,
/// `-0.005`.
fn write_seconds(buf: &mut Vec<u8>, ms: i64) {
    if ms < 0 {
        buf.push(b'-');
    }
    let ms = ms.unsigned_abs();
    let mut digits = itoa::Buffer::new();
    buf.extend_from_slice(digits.format(ms / 1000).as_bytes());
    let frac = (ms % 1000) as u32;
    if frac != 0 {
        let digits = [
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let mut n = 4;
        while digits[n - 1] == b'0' {
            n -= 1;
        }
        buf.extend_from_slice(&digits[..n]);
    }
}
