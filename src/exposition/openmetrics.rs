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
//!   family that would clash is exposed as `unknown` names instead.
//! - `# UNIT` only where the family name ends in `_<unit>`; HELP escapes
//!   `\`, newline and `"`; timestamps in seconds; `# EOF` last.

use std::collections::HashMap;
use std::io::{self, Write};

use super::family::Family;
use super::points::{Gathered, by_page_name, exemplar_labels, gather, points, unit_fits};
use super::{
    HistogramForm, Line, PageStats, RenderOptions, Sink, TimestampPolicy, Visited, visit_family,
    write_float,
};
use crate::model::Sample;
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
/// typed families involved as plain names.
fn shapes(families: &[Family]) -> Vec<Shape> {
    let mut shapes: Vec<Shape> = families.iter().map(Shape::of).collect();
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
    for (family, shape) in families.iter().zip(shapes) {
        match shape {
            Shape::Counter { base } => page.counter(family, &base, out)?,
            Shape::Gauge => page.single(family, "gauge", out)?,
            Shape::Unknown => page.single(family, "unknown", out)?,
            Shape::Histogram | Shape::Summary => {
                let histogram = shape == Shape::Histogram;
                let lines = page.gather(family);
                match points(family, &lines, histogram) {
                    Some(points) => {
                        let type_name = if histogram { "histogram" } else { "summary" };
                        page.header(&family.name, family, type_name);
                        for &(_, i) in points.iter().flatten() {
                            let g = &lines[i];
                            let bucket = histogram && g.name(family).ends_with("_bucket");
                            page.line(g, bucket);
                            page.flush_if_full(out)?;
                        }
                    }
                    None => page.members(family, lines, out)?,
                }
            }
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
