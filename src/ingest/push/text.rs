//! The text format 0.0.4 as the Pushgateway reads a pushed body: the rules of
//! client_golang's `expfmt.TextParser`, line by line.
//!
//! Every construct of the format ends at its line's `\n`, so the body is cut
//! at each `\n` and each line parsed on its own, on slices of the body. What
//! Go does at the end of the input is kept exactly: only blanks may follow
//! the last `\n`; anything else fails with Go's "unexpected end of input
//! stream", unless a syntax error comes first in that line, as in Go.
//!
//! A sample joins a family the way Go resolves names: a family of exactly
//! its name if there is one; else, if the name ends in `_count` or `_sum`,
//! a summary of the base name; else, if it ends in `_count`, `_sum` or
//! `_bucket`, a histogram of the base name; else a new family. `# HELP` and
//! `# TYPE` lines resolve their name the same way, so `# HELP x_count` after
//! `# TYPE x summary` documents `x`. A resolution never changes once made
//! (a family's type cannot change after it has a sample), so each name is
//! resolved once and remembered.

use std::borrow::Cow;

use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashSet};

use std::ops::Range;

use super::fast::OnePass;
use super::lower::{Grouping, PushBatch, grouping_labels, same_push};
use super::scan::{NameMatcher, find_newline, find_quote};
use super::{Labels, ParsedFamily, ParsedSample, unescape};
use crate::ingest::Error;
use crate::ingest::lower::Rules;
use crate::model::{MetricType, parse_go_float, parse_go_float_str, parse_short_decimal};

/// Up to this many labels, duplicates are found by scanning.
const FEW_LABELS: usize = 16;

/// The type of a family as Go's parser knows it: client_model's enum, which
/// has `GAUGE_HISTOGRAM` besides the text format's five types.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GoType {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
    GaugeHistogram,
}

impl GoType {
    /// The type word of a `# TYPE` line, upper-cased as Go's
    /// `strings.ToUpper` does (Unicode-aware: `hıstogram` is `HISTOGRAM`).
    fn from_word(word: &[u8]) -> Option<Self> {
        // Most words are ASCII, which upper-case without a new string.
        if word.is_ascii() {
            const WORDS: [(&[u8], GoType); 6] = [
                (b"COUNTER", GoType::Counter),
                (b"GAUGE", GoType::Gauge),
                (b"SUMMARY", GoType::Summary),
                (b"UNTYPED", GoType::Untyped),
                (b"HISTOGRAM", GoType::Histogram),
                (b"GAUGE_HISTOGRAM", GoType::GaugeHistogram),
            ];
            return WORDS
                .iter()
                .find(|(w, _)| w.eq_ignore_ascii_case(word))
                .map(|&(_, t)| t);
        }
        let upper = std::str::from_utf8(word).ok()?.to_uppercase();
        Some(match upper.as_str() {
            "COUNTER" => GoType::Counter,
            "GAUGE" => GoType::Gauge,
            "SUMMARY" => GoType::Summary,
            "UNTYPED" => GoType::Untyped,
            "HISTOGRAM" => GoType::Histogram,
            "GAUGE_HISTOGRAM" => GoType::GaugeHistogram,
            _ => return None,
        })
    }

    fn model(self) -> MetricType {
        match self {
            GoType::Counter => MetricType::Counter,
            GoType::Gauge => MetricType::Gauge,
            GoType::Summary => MetricType::Summary,
            GoType::Untyped => MetricType::Unknown,
            GoType::Histogram => MetricType::Histogram,
            GoType::GaugeHistogram => MetricType::GaugeHistogram,
        }
    }
}

/// A family while the body is read.
struct Family<'a> {
    name: &'a str,
    help: Option<String>,
    ty: Option<GoType>,
    samples: Vec<ParsedSample<'a>>,
}

/// Parses a pushed body in the text format 0.0.4 exactly as the Pushgateway
/// 1.5.1 does (client_golang's `expfmt.TextParser`), returning its families
/// in order of first appearance (a `# HELP` or `# TYPE` line, or a sample),
/// families without samples left out.
///
/// The rules, each checked against the real Pushgateway (`tests/push_parser.rs`):
///
/// - Lines end in `\n`. Blanks and tabs may lead a line and separate its
///   tokens; a line of blanks only is skipped. Only blanks may follow the
///   last `\n`. A `\r` is an ordinary byte: it breaks a value (`1\r`) or a
///   line that would otherwise be blank, but is kept in a HELP text or a
///   label value and ignored in a comment.
/// - `#` starts a comment; `# HELP name text` and `# TYPE name type` (the
///   keyword may touch the `#`) are read, other comments skipped. A HELP
///   text unescapes `\\` and `\n` (any other escape is an error); a TYPE
///   word is matched case-insensitively (`counter`, `gauge`, `histogram`,
///   `summary`, `untyped`, and `gauge_histogram`, which a sample then
///   cannot use), and anything after it, trailing blanks included, makes it
///   unknown. A second HELP or TYPE for a family is an error, and so is a
///   TYPE once the family has a sample. A HELP or TYPE line without text is
///   ignored.
/// - Metric names are `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names
///   `[a-zA-Z_][a-zA-Z0-9_]*`: quoted (UTF-8) names are refused. A name
///   ends at the first other byte, which may start the value (`foo-1` is
///   `foo` = -1).
/// - Labels: `{name="value",…}`, blanks allowed around every token, a
///   trailing comma allowed, `__name__` and duplicate names refused (except
///   a histogram's `le` and a summary's `quantile`, which Go keeps apart).
///   Values unescape `\\`, `\"` and `\n`; any other escape, a raw newline or
///   invalid UTF-8 is an error. In a histogram family every `le`, and in a
///   summary every `quantile`, must read as a float.
/// - The value is Go's `strconv.ParseFloat` without `p` or `_`
///   ([`parse_go_float`]); an optional timestamp follows after blanks, an
///   `int64` in base 10, and nothing may follow it, not even a blank.
///
/// # Errors
///
/// [`Error::TextFormat`] with the line and Go's reason. Two deliberate
/// differences, reported only when the body has no error of Go's (which
/// reads on past them): a HELP text that is not UTF-8 (Go keeps the bytes,
/// but promgate's help is a `String`), and a sample of a `gauge_histogram`
/// family (Go's parser means to refuse it but loses its error, then keeps a
/// metric without a value that breaks the Pushgateway's own page).
pub fn parse_text(body: &[u8]) -> Result<Vec<ParsedFamily<'_>>, Error> {
    let mut parser = Parser::new();
    // One check of the whole body spares one per name and value; a body
    // with bytes that are not UTF-8 (allowed in comments) is checked token
    // by token instead.
    let text = std::str::from_utf8(body).ok();
    let mut start = 0;
    let mut number = 0;
    loop {
        number += 1;
        let rest = &body[start..];
        let (len, terminated) = match memchr::memchr(b'\n', rest) {
            Some(end) => (end, true),
            None => (rest.len(), false),
        };
        parser.line(&Line {
            bytes: &rest[..len],
            text: text.map(|t| &t[start..start + len]),
            terminated,
            number,
        })?;
        if !terminated {
            break;
        }
        start += len + 1;
    }
    if let Some(e) = parser.deferred {
        return Err(e);
    }
    Ok(parser
        .families
        .into_iter()
        .filter(|f| !f.samples.is_empty())
        .map(|f| ParsedFamily {
            name: Cow::Borrowed(f.name),
            help: f.help,
            metric_type: f.ty.map_or(MetricType::Unknown, GoType::model),
            samples: f.samples,
            natives: Vec::new(),
        })
        .collect())
}

/// Reads a text body and lowers it into group `grouping` in one pass, as
/// [`parse_text`] then [`lower`](super::lower) would, for a body as client
/// libraries write it: UTF-8, every sample line in the form
/// [`Parser::sample_plain`] takes, each family's samples together, every
/// histogram and summary whole. The line scan, the family of each sample,
/// its label names (compared with those of the sample before rather than
/// scanned byte by byte) and values are then read once and go straight
/// into the keys, with no parsed form in between.
///
/// `None` for any other body, or one that either step refuses: the caller
/// then runs those two steps, which name the error. Debug builds check
/// every batch this returns against theirs.
pub fn lower_text(
    body: &[u8],
    grouping: &Grouping,
    rules: &Rules,
    stamp_ms: i64,
) -> Option<PushBatch> {
    let text = std::str::from_utf8(body).ok()?;
    let grouping_labels = grouping_labels(grouping);
    let out = one_pass(text, grouping, &grouping_labels, rules, stamp_ms);
    debug_assert!(
        out.as_ref().is_none_or(|out| parse_text(body)
            .ok()
            .and_then(|f| super::lower(&f, grouping, rules, stamp_ms).ok())
            .is_some_and(|reference| same_push(out, &reference))),
        "the one-pass reading of a text body is parse_text's then lower's"
    );
    out
}

fn one_pass<'a>(
    text: &'a str,
    grouping: &Grouping,
    grouping_labels: &[(&str, String)],
    rules: &Rules,
    stamp_ms: i64,
) -> Option<PushBatch> {
    let body = text.as_bytes();
    let mut parser = Parser::new();
    // Keys are about as long as the lines, plus the grouping labels and
    // `instance` (untouched capacity costs no memory).
    let mut pass = OnePass::new(
        grouping,
        grouping_labels,
        rules,
        stamp_ms,
        body.len() / 48,
        2 * body.len(),
    )?;
    // Per family lowered: its index in `parser.families` and its series,
    // in the order their samples came.
    let mut lowered: Vec<(usize, Range<usize>)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut done: Vec<bool> = Vec::new();
    let mut pairs: Vec<(&'a str, &'a str)> = Vec::with_capacity(16);
    let mut pos = 0;
    while pos < body.len() {
        if !is_metric_start(body[pos]) {
            // A comment or a blank line; anything else is for the general
            // reader.
            let rest = &body[pos..];
            let (len, terminated) = match memchr::memchr(b'\n', rest) {
                Some(end) => (end, true),
                None => (rest.len(), false),
            };
            let l = Line {
                bytes: &rest[..len],
                text: Some(&text[pos..pos + len]),
                terminated,
                number: 0,
            };
            let i = l.skip_blanks(0);
            match l.bytes.get(i) {
                None => {}
                Some(b'#') => parser.comment(&l, i + 1).ok()?,
                Some(_) => return None,
            }
            pos += len + 1;
            continue;
        }
        let rest = &body[pos..];
        // The sample's name: most often the one before.
        let (name, family) = match parser.last {
            Some((last, family))
                if rest.starts_with(last.as_bytes())
                    && !rest.get(last.len()).copied().is_some_and(is_metric_char) =>
            {
                (last, family)
            }
            _ => {
                let n = rest.iter().position(|&c| !is_metric_char(c))?;
                let name = &text[pos..pos + n];
                (name, parser.resolve(name))
            }
        };
        let name_len = name.len();
        if current.is_none_or(|(f, _)| f != family) {
            if let Some((f, start)) = current {
                if !pass.end_family() {
                    return None;
                }
                lowered.push((f, start..pass.series_len()));
            }
            // A family's samples come together.
            if done.len() <= family {
                done.resize(parser.families.len(), false);
            }
            if std::mem::replace(&mut done[family], true) {
                return None;
            }
            let f = &mut parser.families[family];
            let ty = *f.ty.get_or_insert(GoType::Untyped);
            if ty == GoType::GaugeHistogram {
                return None;
            }
            current = Some((family, pass.begin_family(f.name, ty.model(), None)?));
        }
        // Labels, their names compared with those of the plan used last
        // (`guided` while they are the same).
        pairs.clear();
        let mut i = name_len;
        let mut guided = false;
        match rest.get(i) {
            Some(b' ') => i += 1,
            Some(b'{') if rest.get(i + 1..i + 3) == Some(b"} ") => i += 3,
            Some(b'{') => {
                let guide = pass.last_plan().map(|p| pass.plan_names(p));
                (i, guided) = one_pass_labels(text, pos, i + 1, guide, &mut pairs)?;
            }
            _ => return None,
        }
        // The value is the rest of the line: a blank in it would start a
        // timestamp (or be an error).
        let len = find_newline(&rest[i..])?;
        let value = parse_short_decimal(&rest[i..i + len]).or_else(|| {
            let value = &text[pos + i..pos + i + len];
            value
                .bytes()
                .all(|c| !is_blank(c))
                .then(|| parse_go_float_str(value))
                .flatten()
        })?;
        let plan = match pass.last_plan() {
            Some(p) if guided => p,
            _ => pass.plan_for(&pairs),
        };
        pass.sample(plan, name, &pairs, value)?;
        pos += i + len + 1;
    }
    if parser.deferred.is_some() {
        return None;
    }
    if let Some((f, start)) = current {
        if !pass.end_family() {
            return None;
        }
        lowered.push((f, start..pass.series_len()));
    }
    // Families in the order they first appeared (a HELP or TYPE line
    // counts), as the parsed form has them.
    if !lowered.is_sorted_by_key(|&(f, _)| f) {
        lowered.sort_by_key(|&(f, _)| f);
        let series = &mut pass.out.batch.series;
        let mut ordered = Vec::with_capacity(series.len());
        for (_, range) in &mut lowered {
            let start = ordered.len();
            ordered.extend_from_slice(&series[range.clone()]);
            *range = start..ordered.len();
        }
        *series = ordered;
    }
    for (f, series) in lowered {
        let f = &parser.families[f];
        let ty = f.ty.map_or(MetricType::Unknown, GoType::model);
        pass.family_done(f.name, ty, f.help.as_deref(), series)?;
    }
    pass.finish()
}

/// The labels of a sample line at `line` in `text`, from `open` (just past
/// the `{`, relative to `line`) into `pairs`, as [`Parser::sample_plain`]
/// takes them: where the value starts (past `} `), and whether the names
/// are `guide`'s (those of the plan used last), found by comparing rather
/// than scanned.
#[inline]
fn one_pass_labels<'a>(
    text: &'a str,
    line: usize,
    open: usize,
    guide: Option<(&[&'a str], &[NameMatcher])>,
    pairs: &mut Vec<(&'a str, &'a str)>,
) -> Option<(usize, bool)> {
    let rest = &text.as_bytes()[line..];
    if let Some((names, matchers)) = guide
        && !names.is_empty()
    {
        // The matchers take the `",` between a value and the next name
        // (a name never starts with `}`).
        let mut i = open;
        let mut whole = true;
        for (&name, m) in names.iter().zip(matchers) {
            if !m.matches(rest, i) {
                whole = false;
                break;
            }
            i += m.len();
            let Some(end) = find_quote(&rest[i..]) else {
                whole = false;
                break;
            };
            if rest[i + end] != b'"' {
                return None;
            }
            let (from, to) = (line + i, line + i + end);
            // SAFETY: `from..to` lies in `text` (the byte at `to` was just
            // read), and both ends are next to a `"` (the matcher's last
            // byte, and the one at `to`), so on char boundaries: the
            // checks `&text[from..to]` makes again, a fair part of reading
            // a label.
            pairs.push((name, unsafe { text.get_unchecked(from..to) }));
            i += end;
        }
        if whole && rest.get(i..i + 3) == Some(b"\"} ") {
            return Some((i + 3, true));
        }
        pairs.clear();
    }
    let mut i = open;
    loop {
        let at = &rest[i..];
        let n = at.iter().position(|&c| !is_label_char(c))?;
        if n == 0 || !is_label_start(at[0]) || at.get(n..n + 2) != Some(b"=\"") {
            return None;
        }
        let end = find_quote(&at[n + 2..])?;
        if at[n + 2 + end] != b'"' {
            return None;
        }
        let start = line + i;
        let (value, to) = (start + n + 2, start + n + 2 + end);
        // SAFETY: both ranges lie in `text` (the byte at `to` was just
        // read), and every end is next to an ASCII byte of the line's
        // syntax (the `{` or `,` before the name, the `="` after it, the
        // `"` at `to`), so on a char boundary: the checks slicing would
        // make again.
        pairs.push(unsafe {
            (
                text.get_unchecked(start..start + n),
                text.get_unchecked(value..to),
            )
        });
        i += n + 3 + end;
        match rest.get(i..i + 2) {
            Some([b',', next]) if *next != b'}' => i += 1,
            Some(b"} ") => return Some((i + 2, false)),
            _ => return None,
        }
    }
}

struct Parser<'a> {
    families: Vec<Family<'a>>,
    /// Every name resolved so far, to its family: family names, and the
    /// `_count`, `_sum`, `_bucket` names that joined a summary or histogram.
    by_name: HashMap<&'a str, usize, RandomState>,
    /// The label names of the sample being read, for the duplicate check:
    /// scanned while few, hashed once there are many (a line of a million
    /// labels must not cost a million squared).
    dedup: Vec<&'a str>,
    dedup_set: HashSet<&'a str, RandomState>,
    /// The labels of the sample being read, (name, value as written), for
    /// a label set that must be rewritten in normal form.
    pairs: Vec<(&'a str, &'a str)>,
    /// The name resolved last, and its family.
    last: Option<(&'a str, usize)>,
    /// The first error of promgate's own that Go's parser does not raise:
    /// reported when the body has no error of Go's.
    deferred: Option<Error>,
}

/// One line of the body (without its `\n`) and where it stands.
struct Line<'a> {
    bytes: &'a [u8],
    /// The same line as text, when the whole body is UTF-8 (checked once):
    /// then names, values and label values are sliced without checking
    /// each again.
    text: Option<&'a str>,
    /// Whether a `\n` ended it (every line but the last one does).
    terminated: bool,
    number: usize,
}

impl<'a> Line<'a> {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::TextFormat {
            line: self.number,
            reason: reason.into(),
        }
    }

    /// The byte at `i`: the line's `\n` just past its end, or Go's error
    /// when the input ends there.
    #[inline]
    fn at(&self, i: usize) -> Result<u8, Error> {
        match self.bytes.get(i) {
            Some(&c) => Ok(c),
            None if self.terminated => Ok(b'\n'),
            None => Err(self.error("unexpected end of input stream")),
        }
    }

    /// The first position from `i` on that is not a blank or a tab.
    #[inline]
    fn skip_blanks(&self, mut i: usize) -> usize {
        while let Some(b' ' | b'\t') = self.bytes.get(i) {
            i += 1;
        }
        i
    }

    /// The end of the run of bytes from `i` on that `keep` accepts.
    #[inline]
    fn scan(&self, i: usize, keep: impl Fn(u8) -> bool) -> usize {
        let rest = self.bytes.get(i..).unwrap_or_default();
        i + rest.iter().position(|&c| !keep(c)).unwrap_or(rest.len())
    }

    /// The slice `[from, to)` as text, or `None` if it is not UTF-8.
    #[inline]
    fn str(&self, from: usize, to: usize) -> Option<&'a str> {
        match self.text {
            Some(t) => t.get(from..to),
            None => std::str::from_utf8(&self.bytes[from..to]).ok(),
        }
    }
}

/// Byte classes, one bit each, looked up in [`CLASS`].
const BLANK: u8 = 1;
const LABEL_START: u8 = 2;
const LABEL_CHAR: u8 = 4;
const METRIC_START: u8 = 8;
const METRIC_CHAR: u8 = 16;

/// The classes of every byte: one load per byte when scanning names.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut k = 0;
        if b == b' ' || b == b'\t' {
            k |= BLANK;
        }
        if alpha {
            k |= LABEL_START | LABEL_CHAR | METRIC_START | METRIC_CHAR;
        }
        if digit {
            k |= LABEL_CHAR | METRIC_CHAR;
        }
        if b == b':' {
            k |= METRIC_START | METRIC_CHAR;
        }
        t[c] = k;
        c += 1;
    }
    t
};

#[inline]
fn is_blank(c: u8) -> bool {
    CLASS[usize::from(c)] & BLANK != 0
}

#[inline]
fn is_label_start(c: u8) -> bool {
    CLASS[usize::from(c)] & LABEL_START != 0
}

#[inline]
fn is_label_char(c: u8) -> bool {
    CLASS[usize::from(c)] & LABEL_CHAR != 0
}

#[inline]
fn is_metric_start(c: u8) -> bool {
    CLASS[usize::from(c)] & METRIC_START != 0
}

#[inline]
fn is_metric_char(c: u8) -> bool {
    CLASS[usize::from(c)] & METRIC_CHAR != 0
}

/// Go's `%q` of a string, near enough for an error message.
fn quoted(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Go's `%q` of a byte (`'}'`, `'\n'`).
fn quoted_byte(c: u8) -> String {
    match c {
        b'\n' => "'\\n'".to_string(),
        b'\t' => "'\\t'".to_string(),
        b'\'' => "'\\''".to_string(),
        b'\\' => "'\\\\'".to_string(),
        0x20..=0x7e => format!("'{}'", c as char),
        _ => format!("'\\x{c:02x}'"),
    }
}

impl<'a> Parser<'a> {
    fn new() -> Self {
        Parser {
            families: Vec::new(),
            by_name: HashMap::with_hasher(RandomState::default()),
            dedup: Vec::new(),
            dedup_set: HashSet::with_hasher(RandomState::default()),
            pairs: Vec::new(),
            last: None,
            deferred: None,
        }
    }

    fn line(&mut self, l: &Line<'a>) -> Result<(), Error> {
        let i = l.skip_blanks(0);
        match l.bytes.get(i) {
            // A blank line, or blanks after the last `\n`: the only place
            // where the end of the input is not an error.
            None => Ok(()),
            Some(b'#') => self.comment(l, i + 1),
            Some(_) => {
                if self.sample_plain(l, i) {
                    Ok(())
                } else {
                    self.sample(l, i)
                }
            }
        }
    }

    /// A sample line as client libraries write it, read in one go:
    /// `name{a="x",b="y"} value` (or `name value`), with nothing between
    /// the tokens but the one blank before the value, no escapes in label
    /// values, no timestamp, the body UTF-8 and the line ended by `\n`.
    /// `false` (having added no sample) for anything else, then read by
    /// [`Parser::sample`], which also names every error: this only takes
    /// what that would take as it would, so pushes as libraries write them
    /// are read without the general path's checks at every byte.
    #[inline]
    fn sample_plain(&mut self, l: &Line<'a>, i: usize) -> bool {
        let (Some(text), true) = (l.text, l.terminated) else {
            return false;
        };
        let b = l.bytes;
        if !is_metric_start(b[i]) {
            return false;
        }
        let name_end = l.scan(i + 1, is_metric_char);
        let name = &text[i..name_end];
        let family = self.resolve(name);
        let ty = *self.families[family].ty.get_or_insert(GoType::Untyped);
        if ty == GoType::GaugeHistogram {
            return false;
        }
        let (labels, value_start) = match b.get(name_end) {
            Some(b' ') => (Labels::default(), name_end + 1),
            Some(b'{') => match plain_labels(b, name_end + 1, ty) {
                Some(close) if b.get(close + 1) == Some(&b' ') => {
                    (Labels::from_escaped(&text[name_end + 1..close]), close + 2)
                }
                _ => return false,
            },
            _ => return false,
        };
        // The value is the rest of the line: a blank in it would start a
        // timestamp (or be an error).
        let value = &text[value_start..];
        let Some(value) = parse_short_decimal(value.as_bytes()).or_else(|| {
            value
                .bytes()
                .all(|c| !is_blank(c))
                .then(|| parse_go_float_str(value))
                .flatten()
        }) else {
            return false;
        };
        self.families[family].samples.push(ParsedSample {
            name: Cow::Borrowed(name),
            labels,
            value,
            timestamp_ms: None,
        });
        true
    }

    fn defer(&mut self, e: Error) {
        self.deferred.get_or_insert(e);
    }

    /// Resolves `name` to a family as Go's `setOrCreateCurrentMF` does,
    /// creating the family if nothing matches.
    fn resolve(&mut self, name: &'a str) -> usize {
        // Runs of one name (a family's series, a histogram's buckets) skip
        // the hash.
        if let Some((last, family)) = self.last
            && last == name
        {
            return family;
        }
        let family = self.lookup(name);
        self.last = Some((name, family));
        family
    }

    fn lookup(&mut self, name: &'a str) -> usize {
        if let Some(&family) = self.by_name.get(name) {
            return family;
        }
        // A base must be a family of exactly that name (Go's map holds
        // family names only; ours also remembers the names that joined one).
        let family_of_type = |suffixes: &[&str], ty: GoType| {
            let base = suffixes
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| !b.is_empty()))?;
            let &family = self.by_name.get(base)?;
            let f = &self.families[family];
            (f.name == base && f.ty == Some(ty)).then_some(family)
        };
        // Go tries the summary reading first, then the histogram one.
        let family = family_of_type(&["_count", "_sum"], GoType::Summary)
            .or_else(|| family_of_type(&["_count", "_sum", "_bucket"], GoType::Histogram))
            .unwrap_or_else(|| {
                self.families.push(Family {
                    name,
                    help: None,
                    ty: None,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            });
        self.by_name.insert(name, family);
        family
    }

    /// A line starting with `#`; `i` is just past it.
    fn comment(&mut self, l: &Line<'a>, i: usize) -> Result<(), Error> {
        let i = l.skip_blanks(i);
        if l.at(i)? == b'\n' {
            return Ok(());
        }
        let end = l.scan(i, |c| !is_blank(c));
        if l.at(end)? == b'\n' {
            return Ok(());
        }
        let keyword = &l.bytes[i..end];
        if keyword != b"HELP" && keyword != b"TYPE" {
            // Any other comment: skipped to its `\n`.
            return l.at(l.bytes.len()).map(|_| ());
        }
        let start = l.skip_blanks(end);
        l.at(start)?;
        let name_end = if l.bytes.get(start).copied().is_some_and(is_metric_start) {
            l.scan(start, is_metric_char)
        } else {
            start
        };
        let after = l.at(name_end)?;
        if after == b'\n' {
            return Ok(());
        }
        if !is_blank(after) {
            return Err(l.error("invalid metric name in comment"));
        }
        let family = self.resolve(l.str(start, name_end).unwrap_or_default());
        let text = l.skip_blanks(name_end);
        if l.at(text)? == b'\n' {
            return Ok(());
        }
        let f = &mut self.families[family];
        if keyword == b"HELP" {
            if f.help.is_some() {
                return Err(l.error(format!("second HELP line for metric name {:?}", f.name)));
            }
            match String::from_utf8(help_text(l, text)?) {
                Ok(help) => f.help = Some(help),
                Err(e) => {
                    // Go keeps the bytes and reads on: the body is refused
                    // at its end unless Go's parser fails first.
                    f.help = Some(String::from_utf8_lossy(e.as_bytes()).into_owned());
                    self.defer(
                        l.error("HELP text is not valid UTF-8 (promgate keeps help as UTF-8 text)"),
                    );
                }
            }
        } else {
            if f.ty.is_some() {
                return Err(l.error(format!(
                    "second TYPE line for metric name {:?}, or TYPE reported after samples",
                    f.name
                )));
            }
            l.at(l.bytes.len())?;
            // Go reads the rest of the line dropping every backslash.
            let rest = &l.bytes[text..];
            let word: Cow<'_, [u8]> = if memchr::memchr(b'\\', rest).is_none() {
                Cow::Borrowed(rest)
            } else {
                Cow::Owned(rest.iter().copied().filter(|&c| c != b'\\').collect())
            };
            match GoType::from_word(&word) {
                Some(t) => f.ty = Some(t),
                None => {
                    return Err(l.error(format!("unknown metric type {}", quoted(&word))));
                }
            }
        }
        Ok(())
    }

    /// A sample line; `i` is at its first byte (not a blank, not `#`).
    fn sample(&mut self, l: &Line<'a>, i: usize) -> Result<(), Error> {
        let first = l.bytes[i];
        if !is_metric_start(first) {
            return Err(l.error(match first {
                b'{' | b'"' => "invalid metric name (quoted UTF-8 metric names are not supported)",
                _ => "invalid metric name",
            }));
        }
        let name_end = l.scan(i, is_metric_char);
        let mut c = l.at(name_end)?;
        let name = l.str(i, name_end).unwrap_or_default();
        let family = self.resolve(name);
        let ty = *self.families[family].ty.get_or_insert(GoType::Untyped);
        let family_name = self.families[family].name;
        let mut pos = name_end;
        if is_blank(c) {
            pos = l.skip_blanks(pos);
            c = l.at(pos)?;
        }
        let mut labels = Labels::default();
        if c == b'{' {
            (pos, labels) = self.labels(l, pos + 1, family_name, ty)?;
        }
        // The value: everything up to a blank or the end of the line.
        let value_end = l.scan(pos, |c| !is_blank(c));
        let after = l.at(value_end)?;
        let token = &l.bytes[pos..value_end];
        let value = l
            .str(pos, value_end)
            .and_then(parse_go_float_str)
            .ok_or_else(|| l.error(format!("expected float as value, got {}", quoted(token))))?;
        if ty == GoType::GaugeHistogram {
            // Go means to fail here too but overwrites the error with its next
            // read and reads on, keeping a metric without a value that its own
            // exposition cannot write: refused at the end of the body, unless
            // Go's parser fails first (a deliberate difference).
            self.defer(l.error(format!(
                "unexpected type for metric name {family_name:?}: gauge_histogram cannot be pushed in the text format"
            )));
        }
        let mut timestamp_ms = None;
        if after != b'\n' {
            let start = l.skip_blanks(value_end);
            l.at(start)?;
            let end = l.scan(start, |c| !is_blank(c));
            l.at(end)?;
            let token = &l.bytes[start..end];
            let ts = std::str::from_utf8(token)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| {
                    l.error(format!(
                        "expected integer as timestamp, got {}",
                        quoted(token)
                    ))
                })?;
            l.at(l.bytes.len())?;
            let spurious: Vec<u8> = l.bytes[end..]
                .iter()
                .copied()
                .filter(|&c| c != b'\\')
                .collect();
            if !spurious.is_empty() {
                return Err(l.error(format!(
                    "spurious string after timestamp: {}",
                    quoted(&spurious)
                )));
            }
            timestamp_ms = Some(ts);
        }
        if ty == GoType::GaugeHistogram {
            return Ok(());
        }
        self.families[family].samples.push(ParsedSample {
            name: Cow::Borrowed(name),
            labels,
            value,
            timestamp_ms,
        });
        Ok(())
    }

    /// Reads a label set; `i` is just past its `{`. Returns the position of
    /// the value's first byte, and the labels: a slice of the line when it
    /// is written in [`Labels`]' form (no blanks, no trailing comma), as
    /// client libraries write it, else a normalised copy.
    fn labels(
        &mut self,
        l: &Line<'a>,
        open: usize,
        family: &str,
        ty: GoType,
    ) -> Result<(usize, Labels<'a>), Error> {
        self.dedup.clear();
        self.dedup_set.clear();
        // Whether the text so far is in normal form; if not, the pairs
        // (name, value as written) are kept to write it.
        let mut clean = true;
        self.pairs.clear();
        let mut i = open;
        let close = loop {
            let at = i;
            i = l.skip_blanks(i);
            clean &= i == at;
            let c = l.at(i)?;
            if c == b'}' {
                // Empty braces, or a trailing comma.
                clean &= i == open;
                break i;
            }
            if !is_label_start(c) {
                return Err(l.error(if c == b'"' {
                    format!(
                        "invalid label name for metric {family:?} (quoted UTF-8 label names are not supported)"
                    )
                } else {
                    format!("invalid label name for metric {family:?}")
                }));
            }
            let name_end = l.scan(i, is_label_char);
            let mut c = l.at(name_end)?;
            let name = l.str(i, name_end).unwrap_or_default();
            if name == "__name__" {
                return Err(l.error("label name \"__name__\" is reserved"));
            }
            // Go keeps a histogram's `le` and a summary's `quantile` out of
            // its duplicate check (they become the bucket or quantile).
            let special = (ty == GoType::Histogram && name == "le")
                || (ty == GoType::Summary && name == "quantile");
            let mut eq = name_end;
            if is_blank(c) {
                clean = false;
                eq = l.skip_blanks(eq);
                c = l.at(eq)?;
            }
            if c != b'=' {
                return Err(l.error(format!(
                    "expected '=' after label name, found {}",
                    quoted_byte(c)
                )));
            }
            if !special {
                let seen = if self.dedup.len() < FEW_LABELS {
                    self.dedup.contains(&name)
                } else {
                    if self.dedup_set.is_empty() {
                        self.dedup_set.extend(self.dedup.iter().copied());
                    }
                    !self.dedup_set.insert(name)
                };
                if seen {
                    return Err(l.error(format!("duplicate label names for metric {family:?}")));
                }
                self.dedup.push(name);
            }
            let quote = l.skip_blanks(eq + 1);
            clean &= quote == eq + 1;
            let c = l.at(quote)?;
            if c != b'"' {
                return Err(l.error(format!(
                    "expected '\"' at start of label value, found {}",
                    quoted_byte(c)
                )));
            }
            let (value, end) = label_value(l, quote + 1)?;
            if special {
                let which = if name == "le" { "le" } else { "quantile" };
                if parse_go_float(value.as_bytes()).is_none() {
                    return Err(l.error(format!(
                        "expected float as value for '{which}' label, got {:?}",
                        unescape(value)
                    )));
                }
            }
            self.pairs.push((name, value));
            i = l.skip_blanks(end + 1);
            clean &= i == end + 1;
            match l.at(i)? {
                b',' => i += 1,
                b'}' => break i,
                _ => {
                    return Err(l.error(format!(
                        "unexpected end of label value {:?}",
                        unescape(value)
                    )));
                }
            }
        };
        let v = l.skip_blanks(close + 1);
        l.at(v)?;
        let labels = match l.str(open, close) {
            Some(text) if clean => Labels::from_escaped(text),
            _ => {
                let mut text = String::new();
                for &(n, value) in &self.pairs {
                    if !text.is_empty() {
                        text.push(',');
                    }
                    text.push_str(n);
                    text.push_str("=\"");
                    text.push_str(value);
                    text.push('"');
                }
                Labels::from_escaped_owned(text)
            }
        };
        Ok((v, labels))
    }
}

/// The labels of [`Parser::sample_plain`] from just past the `{`, in the
/// form [`Labels`] keeps (`a="x",b="y"`, or nothing): the position of the
/// `}`, or `None` for anything [`Parser::labels`] must read (blanks, a
/// trailing comma, an escape, `__name__`, a name twice, more than
/// [`FEW_LABELS`] labels, a bound that is no float).
#[inline]
fn plain_labels(b: &[u8], open: usize, ty: GoType) -> Option<usize> {
    let mut names: [&[u8]; FEW_LABELS] = [&[]; FEW_LABELS];
    let mut count = 0;
    let mut i = open;
    if b.get(i) == Some(&b'}') {
        return Some(i);
    }
    loop {
        if !is_label_start(*b.get(i)?) {
            return None;
        }
        let start = i;
        i += 1;
        while b.get(i).copied().is_some_and(is_label_char) {
            i += 1;
        }
        let name = &b[start..i];
        if b.get(i..i + 2) != Some(b"=\"") || name == b"__name__" {
            return None;
        }
        i += 2;
        let value_start = i;
        // Values eight bytes at a time.
        i += find_quote(&b[i..])?;
        if b[i] != b'"' {
            return None;
        }
        let special = (ty == GoType::Histogram && name == b"le")
            || (ty == GoType::Summary && name == b"quantile");
        if special {
            parse_go_float(&b[value_start..i])?;
        } else {
            if count == FEW_LABELS || names[..count].contains(&name) {
                return None;
            }
            names[count] = name;
            count += 1;
        }
        i += 1;
        match *b.get(i)? {
            b',' if b.get(i + 1) != Some(&b'}') => i += 1,
            b'}' => return Some(i),
            _ => return None,
        }
    }
}

/// Reads a quoted label value starting just past its `"`: the value as
/// written (its escapes, which are a canonical key's, kept) and the
/// position of the closing `"`.
fn label_value<'a>(l: &Line<'a>, start: usize) -> Result<(&'a str, usize), Error> {
    let rest = &l.bytes[start..];
    let mut i = 0;
    let end = loop {
        // Values are short: a plain loop beats setting up memchr.
        let Some(q) = rest[i..].iter().position(|&c| c == b'"' || c == b'\\') else {
            // The line ends inside the value: a raw newline in it, or the
            // end of the input.
            l.at(l.bytes.len())?;
            return Err(l.error(format!(
                "label value {} contains unescaped new-line",
                quoted(unescape(&String::from_utf8_lossy(rest)).as_bytes())
            )));
        };
        i += q;
        if rest[i] == b'"' {
            break i;
        }
        match l.at(start + i + 1)? {
            b'"' | b'\\' | b'n' => i += 2,
            other => {
                return Err(l.error(format!(
                    "invalid escape sequence '\\{}'",
                    escaped_char(other)
                )));
            }
        }
    };
    let value = l.str(start, start + end).ok_or_else(|| {
        l.error(format!(
            "invalid label value {}",
            quoted(unescape(&String::from_utf8_lossy(&rest[..end])).as_bytes())
        ))
    })?;
    Ok((value, start + end))
}

/// A HELP text from `start` to the end of the line, `\\` and `\n` unescaped.
fn help_text(l: &Line<'_>, start: usize) -> Result<Vec<u8>, Error> {
    let rest = &l.bytes[start..];
    // Most texts have no escapes: taken whole.
    if memchr::memchr(b'\\', rest).is_none() {
        l.at(l.bytes.len())?;
        return Ok(rest.to_vec());
    }
    let mut out = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => {
                i += 1;
                match rest.get(i) {
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'n') => out.push(b'\n'),
                    Some(&other) => {
                        return Err(l.error(format!(
                            "invalid escape sequence '\\{}'",
                            escaped_char(other)
                        )));
                    }
                    // A backslash right before the `\n` escapes the newline:
                    // an error in Go; at the end of the input, its EOF.
                    None => {
                        l.at(start + i)?;
                        return Err(l.error("invalid escape sequence '\\\n'"));
                    }
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    l.at(l.bytes.len())?;
    Ok(out)
}

/// The character Go's `%c` shows for a byte after a backslash.
fn escaped_char(c: u8) -> char {
    // Go formats the byte as a rune: values above 0x7f are Latin-1 code points.
    char::from(c)
}

#[cfg(test)]
mod tests {
    //! Each expectation was checked against the Debian Pushgateway 1.5.1
    //! (`tests/push_parser.rs` runs these bodies and more against it).

    use super::*;

    /// The families as compact text: `# name type help`, then one line per
    /// sample.
    fn show(families: &[ParsedFamily]) -> String {
        let mut out = String::new();
        for f in families {
            out.push_str(&format!("# {} {:?}", f.name, f.metric_type));
            if let Some(h) = &f.help {
                out.push_str(&format!(" {h:?}"));
            }
            out.push('\n');
            for s in &f.samples {
                out.push_str(&s.name);
                if !s.labels.is_empty() {
                    let labels: Vec<_> =
                        s.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                    out.push_str(&format!("{{{}}}", labels.join(",")));
                }
                out.push_str(&format!(" {}", s.value));
                if let Some(ts) = s.timestamp_ms {
                    out.push_str(&format!(" @{ts}"));
                }
                out.push('\n');
            }
        }
        out
    }

    #[track_caller]
    fn ok(body: &str, want: &str) {
        match parse_text(body.as_bytes()) {
            Ok(f) => assert_eq!(show(&f), want, "body {body:?}"),
            Err(e) => panic!("body {body:?} refused: {e}"),
        }
    }

    #[track_caller]
    fn err(body: impl AsRef<[u8]>, line: usize, reason: &str) {
        let body = body.as_ref();
        match parse_text(body) {
            Err(Error::TextFormat { line: l, reason: r }) => {
                assert_eq!((l, r.as_str()), (line, reason), "body {body:?}")
            }
            other => panic!("body {body:?}: expected an error in line {line}, got {other:?}"),
        }
    }

    const EOF: &str = "unexpected end of input stream";

    #[test]
    fn lines_end_in_newline_only() {
        ok("", "");
        ok("\n\n", "");
        ok("a 1\n", "# a Unknown\na 1\n");
        ok("\n  \n\t\na 1\n   \t", "# a Unknown\na 1\n");
        err("a 1", 1, EOF);
        err("a 1\nb 2", 2, EOF);
        err("a 1\n#", 2, EOF);
        err("a 1\n# comment", 2, EOF);
        err("# HELP a x", 1, EOF);
        err("a{b=\"c\"", 1, EOF);
        err("a 1\r\n", 1, r#"expected float as value, got "1\r""#);
        err("\r\n", 1, "invalid metric name");
        err("a 1\n\r\n", 2, "invalid metric name");
        // `\r` is an ordinary byte where Go keeps or skips the rest of a line.
        ok("# comment\r\na 1\n", "# a Unknown\na 1\n");
        ok(
            "# HELP a x\r\na{b=\"c\r\"} 1\n",
            "# a Unknown \"x\\r\"\na{b=\"c\\r\"} 1\n",
        );
        // A syntax error before the end of the input is reported as such.
        err("a{b=\"\\x", 1, "invalid escape sequence '\\x'");
    }

    /// A raw newline inside a label value ends the line: the value is
    /// unterminated, and the one pass, which reads values from the body
    /// rather than from their line, refuses it too (it once found the
    /// value's end on a later line and wrote the newline into the page).
    #[test]
    fn a_newline_in_a_label_value_is_refused_by_both_readers() {
        let grouping = Grouping::new("t".into(), vec![]).unwrap();
        let rules = crate::ingest::Limits {
            max_decoded_bytes: 1 << 20,
            series: crate::config::Config::default().series_limits(),
            future_window: None,
        }
        .rules(0);
        for body in [
            "a{x=\"1\nevil 666\nb{y=\"} 1\n",
            "a{x=\"1\nb\"} 1\n",
            "a{y=\"2\",x=\"1\n\"} 1\n",
            // The label names of the line before guide the scan.
            "a{x=\"0\",y=\"0\"} 1\na{x=\"1\ny=\"} 1\n",
        ] {
            assert!(parse_text(body.as_bytes()).is_err(), "{body:?}");
            assert!(
                lower_text(body.as_bytes(), &grouping, &rules, 0).is_none(),
                "{body:?}"
            );
        }
        err(
            "a{x=\"1\nb\"} 1\n",
            1,
            "label value \"1\" contains unescaped new-line",
        );
    }

    #[test]
    fn blanks_and_tabs_separate_tokens() {
        ok("  a 1\n", "# a Unknown\na 1\n");
        ok("\ta\t1\n", "# a Unknown\na 1\n");
        ok("a  1\n", "# a Unknown\na 1\n");
        ok("a { b = \"c\" , } 1\n", "# a Unknown\na{b=\"c\"} 1\n");
        ok("a{}1\n", "# a Unknown\na 1\n");
        ok("a{b=\"c\"}2\n", "# a Unknown\na{b=\"c\"} 2\n");
        // A blank after the value starts a timestamp.
        err("a 1 \n", 1, r#"expected integer as timestamp, got """#);
        err("a 1\t\n", 1, r#"expected integer as timestamp, got """#);
    }

    #[test]
    fn help_lines() {
        ok(
            "# HELP a x \\\\ y \\n z\na 1\n",
            "# a Unknown \"x \\\\ y \\n z\"\na 1\n",
        );
        ok("#HELP a x\na 1\n", "# a Unknown \"x\"\na 1\n");
        ok("# HELP a x\ty\na 1\n", "# a Unknown \"x\\ty\"\na 1\n");
        ok("a 1\n# HELP a late\n", "# a Unknown \"late\"\na 1\n");
        // Without text, HELP is ignored: a later one is not a second one.
        ok(
            "# HELP a\n# HELP a \n# HELP a x\na 1\n",
            "# a Unknown \"x\"\na 1\n",
        );
        err(
            "# HELP a x\n# HELP a y\na 1\n",
            2,
            "second HELP line for metric name \"a\"",
        );
        err("# HELP a \\t\n", 1, "invalid escape sequence '\\t'");
        err("# HELP a \\\"\n", 1, "invalid escape sequence '\\\"'");
        err("# HELP a x\\\n", 1, "invalid escape sequence '\\\n'");
        err("# HELP a x\\", 1, EOF);
        err("# HELP 1a x\n", 1, "invalid metric name in comment");
        err("# HELP a{ x\n", 1, "invalid metric name in comment");
        // Deliberate: Go keeps HELP bytes that are not UTF-8, and reads on.
        err(
            b"# HELP a \xff\na 1\n",
            1,
            "HELP text is not valid UTF-8 (promgate keeps help as UTF-8 text)",
        );
        err(
            b"# HELP a \xff\nb x\n",
            2,
            "expected float as value, got \"x\"",
        );
        err(
            b"# HELP a \xff\n# HELP a y\n",
            2,
            "second HELP line for metric name \"a\"",
        );
        // A HELP for `x_count` documents the summary `x`.
        ok(
            "# TYPE x summary\n# HELP x_count hi\nx_count 1\n",
            "# x Summary \"hi\"\nx_count 1\n",
        );
        err(
            "# TYPE x summary\n# HELP x a\n# HELP x_count b\n",
            3,
            "second HELP line for metric name \"x\"",
        );
    }

    #[test]
    fn type_lines() {
        ok("# TYPE a gauge\na 1\n", "# a Gauge\na 1\n");
        ok("# TYPE a COUNTER\na 1\n", "# a Counter\na 1\n");
        ok("# TYPE a Untyped\na 1\n", "# a Unknown\na 1\n");
        ok("# TYPE a  gauge\na 1\n", "# a Gauge\na 1\n");
        ok("# TYPE a\tgauge\na 1\n", "# a Gauge\na 1\n");
        // Go drops every backslash of a TYPE line, and upper-cases Unicode.
        ok("# TYPE a gau\\ge\na 1\n", "# a Gauge\na 1\n");
        ok(
            "# TYPE h hıstogram\nh_count 1\n",
            "# h Histogram\nh_count 1\n",
        );
        ok("# TYPE a\n# TYPE a gauge\na 1\n", "# a Gauge\na 1\n");
        err(
            "# TYPE a gauge \na 1\n",
            1,
            "unknown metric type \"gauge \"",
        );
        err("# TYPE a info\n", 1, "unknown metric type \"info\"");
        err("# TYPE a stateset\n", 1, "unknown metric type \"stateset\"");
        err("# TYPE a \\\n", 1, "unknown metric type \"\"");
        err(
            "# TYPE a gauge\n# TYPE a gauge\n",
            2,
            "second TYPE line for metric name \"a\", or TYPE reported after samples",
        );
        err(
            "a 1\n# TYPE a gauge\n",
            2,
            "second TYPE line for metric name \"a\", or TYPE reported after samples",
        );
        err(
            "# TYPE x summary\nx_count 1\n# TYPE x_count gauge\n",
            3,
            "second TYPE line for metric name \"x\", or TYPE reported after samples",
        );
        // gauge_histogram is a type word Go knows, but a sample cannot use it.
        ok("# TYPE a gauge_histogram\n", "");
        err(
            "# TYPE a gauge_histogram\na 1\n",
            2,
            "unexpected type for metric name \"a\": gauge_histogram cannot be pushed in the text format",
        );
        // Go reads on past it.
        err(
            "# TYPE a gauge_histogram\na 1 x\n",
            2,
            "expected integer as timestamp, got \"x\"",
        );
        err(
            "# TYPE a gauge_histogram\na 1\nb x\n",
            3,
            "expected float as value, got \"x\"",
        );
    }

    #[test]
    fn other_comments_are_skipped() {
        ok(
            "#\n# \n#  HELP\n# HELP\n# FOO a b\n# HELPER a b\n# TYPE\na 1\n# EOF\n",
            "# a Unknown\na 1\n",
        );
        err("# FOO a b", 1, EOF);
    }

    #[test]
    fn metric_names() {
        ok(
            "a:b 1\n:a 2\n_ 3\n",
            "# a:b Unknown\na:b 1\n# :a Unknown\n:a 2\n# _ Unknown\n_ 3\n",
        );
        err("1a 1\n", 1, "invalid metric name");
        err(
            "{\"a.b\"} 1\n",
            1,
            "invalid metric name (quoted UTF-8 metric names are not supported)",
        );
        // A name ends at the first byte that cannot continue it.
        ok("foo-1\n", "# foo Unknown\nfoo -1\n");
        ok("foo1.5\n", "# foo1 Unknown\nfoo1 0.5\n");
        err("a}1\n", 1, "expected float as value, got \"}1\"");
        err("a\n", 1, "expected float as value, got \"\"");
        err("a.b 1\n", 1, "expected float as value, got \".b\"");
    }

    #[test]
    fn label_names() {
        ok(
            "a{_=\"x\",B2=\"y\"} 1\n",
            "# a Unknown\na{_=\"x\",B2=\"y\"} 1\n",
        );
        err("a{,} 1\n", 1, "invalid label name for metric \"a\"");
        err("a{=} 1\n", 1, "invalid label name for metric \"a\"");
        err("a{1b=\"x\"} 1\n", 1, "invalid label name for metric \"a\"");
        err(
            "a{\"a.b\"=\"x\"} 1\n",
            1,
            "invalid label name for metric \"a\" (quoted UTF-8 label names are not supported)",
        );
        err(
            "a{b:c=\"d\"} 1\n",
            1,
            "expected '=' after label name, found ':'",
        );
        err("a{b} 1\n", 1, "expected '=' after label name, found '}'");
        err(
            "a{__name__=\"x\"} 1\n",
            1,
            "label name \"__name__\" is reserved",
        );
        // Other names starting with __ parse; check_push refuses them.
        ok("a{__x=\"y\"} 1\n", "# a Unknown\na{__x=\"y\"} 1\n");
        err(
            "a{b=\"1\",b=\"2\"} 1\n",
            1,
            "duplicate label names for metric \"a\"",
        );
        err(
            "a{le=\"1\",le=\"2\"} 1\n",
            1,
            "duplicate label names for metric \"a\"",
        );
        // Go keeps a histogram's le and a summary's quantile out of that check.
        ok(
            "# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 1\n",
            "# h Histogram\nh_bucket{le=\"1\",le=\"2\"} 1\n",
        );
        ok(
            "# TYPE s summary\ns{quantile=\"0.5\",quantile=\"0.9\"} 1\n",
            "# s Summary\ns{quantile=\"0.5\",quantile=\"0.9\"} 1\n",
        );
    }

    #[test]
    fn many_labels_cost_no_square() {
        // Scanning 20,000 names for duplicates would be 200 million compares.
        let labels: Vec<String> = (0..20_000).map(|i| format!("l{i}=\"v\"")).collect();
        let body = format!("a{{{}}} 1\n", labels.join(","));
        let parsed = parse_text(body.as_bytes()).unwrap();
        assert_eq!(parsed[0].samples[0].labels.len(), 20_000);
        // A duplicate far past the scanned ones is still found.
        err(
            format!("a{{{},l7=\"x\"}} 1\n", labels.join(",")),
            1,
            "duplicate label names for metric \"a\"",
        );
    }

    #[test]
    fn label_values() {
        ok(
            "a{b=\"x\\\"y\\\\z\\nw\"} 1\n",
            "# a Unknown\na{b=\"x\\\"y\\\\z\\nw\"} 1\n",
        );
        ok("a{b=\"ü\t\0\"} 1\n", "# a Unknown\na{b=\"ü\\t\\0\"} 1\n");
        ok("a{b=\"\"} 1\n", "# a Unknown\na{b=\"\"} 1\n");
        err("a{b=\"\\x\"} 1\n", 1, "invalid escape sequence '\\x'");
        err("a{b=\"\\t\"} 1\n", 1, "invalid escape sequence '\\t'");
        err(
            "a{b=\"c} 1\n",
            1,
            "label value \"c} 1\" contains unescaped new-line",
        );
        err("a{b=\"c\\\n", 1, "invalid escape sequence '\\\n'");
        err(b"a{b=\"\xff\"} 1\n", 1, "invalid label value \"\u{fffd}\"");
        err(
            "a{b=} 1\n",
            1,
            "expected '\"' at start of label value, found '}'",
        );
        err(
            "a{b=c} 1\n",
            1,
            "expected '\"' at start of label value, found 'c'",
        );
        err(
            "a{b=\"c\" d=\"e\"} 1\n",
            1,
            "unexpected end of label value \"c\"",
        );
        err("a{b=\"c\"\n", 1, "unexpected end of label value \"c\"");
    }

    #[test]
    fn values_and_timestamps() {
        ok(
            "a{x=\"1\"} +Inf\na{x=\"2\"} -inf\na{x=\"3\"} 1e3\na{x=\"4\"} .5\n",
            "# a Unknown\na{x=\"1\"} inf\na{x=\"2\"} -inf\na{x=\"3\"} 1000\na{x=\"4\"} 0.5\n",
        );
        let nan = parse_text(b"a NaN\n").unwrap();
        assert!(nan[0].samples[0].value.is_nan());
        for bad in ["+NaN", "1e400", "0x10", "1_000", "1,5", "."] {
            err(
                format!("a {bad}\n"),
                1,
                &format!("expected float as value, got {bad:?}"),
            );
        }
        ok("a 1 123\n", "# a Unknown\na 1 @123\n");
        ok("a 1 -5\n", "# a Unknown\na 1 @-5\n");
        ok("a 1\t+7\n", "# a Unknown\na 1 @7\n");
        err("a 1 12x\n", 1, "expected integer as timestamp, got \"12x\"");
        err(
            "a 1 9223372036854775808\n",
            1,
            "expected integer as timestamp, got \"9223372036854775808\"",
        );
        err("a 1 1.5\n", 1, "expected integer as timestamp, got \"1.5\"");
        err("a 1 2 3\n", 1, "spurious string after timestamp: \" 3\"");
        err("a 1 2 \n", 1, "spurious string after timestamp: \" \"");
        err("a 1 2", 1, EOF);
    }

    #[test]
    fn samples_join_families_as_go_resolves_names() {
        // Histogram and summary series join the declared family.
        ok(
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
            "# h Histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
        );
        ok(
            "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n",
            "# s Summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n",
        );
        // A summary has no buckets: `s_bucket` is a family of its own.
        ok(
            "# TYPE s summary\ns_bucket 1\n",
            "# s_bucket Unknown\ns_bucket 1\n",
        );
        // A counter `x` does not take `x_count`.
        ok(
            "# TYPE x counter\nx_count 1\nx 2\n",
            "# x Counter\nx 2\n# x_count Unknown\nx_count 1\n",
        );
        // Before its TYPE, `x_count` is its own family, and stays one.
        ok(
            "x_count 1\n# TYPE x summary\nx_sum 2\nx_count 3\n",
            "# x_count Unknown\nx_count 1\nx_count 3\n# x Summary\nx_sum 2\n",
        );
        // Families are gathered across the body, in order of first
        // appearance (a HELP or TYPE counts), empty ones dropped.
        ok(
            "# HELP b hb\n# HELP e empty\na 1\nb 2\na{x=\"y\"} 3\n",
            "# b Unknown \"hb\"\nb 2\n# a Unknown\na 1\na{x=\"y\"} 3\n",
        );
        // `le` and `quantile` must be floats on every sample of a histogram
        // or summary, and are ordinary labels elsewhere.
        err(
            "# TYPE h histogram\nh_sum{le=\"x\"} 1\n",
            2,
            "expected float as value for 'le' label, got \"x\"",
        );
        err(
            "# TYPE s summary\ns{quantile=\"x\"} 1\n",
            2,
            "expected float as value for 'quantile' label, got \"x\"",
        );
        ok("a{le=\"x\"} 1\n", "# a Unknown\na{le=\"x\"} 1\n");
        ok(
            "# TYPE h histogram\nh_bucket{quantile=\"x\",le=\"1.0\"} 1\n",
            "# h Histogram\nh_bucket{quantile=\"x\",le=\"1.0\"} 1\n",
        );
    }

    #[test]
    fn errors_print_like_go() {
        let e = parse_text(b"a 1\nb x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "text format parsing error in line 2: expected float as value, got \"x\""
        );
    }
}
