//! Canonical series keys: validating a label set and writing the one byte
//! string that identifies it.
//!
//! The canonical key of a label set is `name{a="x",b="y"}`: the metric name,
//! then the other labels sorted by name, empty values dropped, values
//! escaped (`\\`, `\"`, `\n`). Escaping is injective and legacy names cannot
//! contain the delimiters, so two label sets are the same series exactly when
//! their keys are byte-equal. For names in the legacy character set (all of
//! them today) the key is also the series' text-format prefix, so rendering a
//! series is a copy; ARCHITECTURE.md ("Identity, escaping and UTF-8 names")
//! says how names outside that set will keep the key an identity while each
//! scraper gets the escaping it negotiated.
//!
//! [`build_key`] handles every label set; [`KeyWriter`] is its fast path for
//! label sets already in canonical form.

use super::{RejectReason, Rejection, SeriesLimits};

/// Facts about a series' label values that decide how its family can be
/// exposed, learnt once at ingest rather than at every scrape. The store
/// counts series per trait and name without knowing what a trait means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesTraits(u8);

impl SeriesTraits {
    /// The key has an `le` label whose value is not a float the text-format
    /// parser accepts; such a series cannot be part of a typed histogram.
    pub const BAD_LE: u8 = 1;
    /// The key has a `quantile` label whose value is not a float the parser
    /// accepts; such a series cannot be part of a typed summary.
    pub const BAD_QUANTILE: u8 = 2;
    /// The key has an `le` label.
    pub const HAS_LE: u8 = 4;
    /// The key has a `quantile` label.
    pub const HAS_QUANTILE: u8 = 8;
    /// The key has no `le` label.
    pub const NO_LE: u8 = 16;
    /// The key has no `quantile` label.
    pub const NO_QUANTILE: u8 = 32;
    /// The series was pushed to a group (the push API), not remote-written:
    /// exposed without a timestamp, kept until its group goes rather than
    /// for `--series.ttl`.
    pub const PUSHED: u8 = 64;
    /// The key has a metric or label name outside the legacy character set
    /// (written quoted): a scraper that did not negotiate UTF-8 names gets
    /// it escaped.
    pub const UTF8: u8 = 128;
    /// How many traits there are (bits `0..COUNT`).
    pub const COUNT: usize = 8;

    /// The traits of a label set whose `le` and `quantile` labels (if any)
    /// were seen as `le` and `quantile`.
    #[inline]
    fn of(le: Option<&str>, quantile: Option<&str>) -> Self {
        Self::of_floats(
            le.map(is_text_format_float),
            quantile.map(is_text_format_float),
        )
    }

    /// [`SeriesTraits::of`] from whether the `le` and `quantile` labels, if
    /// any, read as floats.
    #[inline]
    fn of_floats(le: Option<bool>, quantile: Option<bool>) -> Self {
        let mut bits = 0;
        match le {
            None => bits |= Self::NO_LE,
            Some(true) => bits |= Self::HAS_LE,
            Some(false) => bits |= Self::HAS_LE | Self::BAD_LE,
        }
        match quantile {
            None => bits |= Self::NO_QUANTILE,
            Some(true) => bits |= Self::HAS_QUANTILE,
            Some(false) => bits |= Self::HAS_QUANTILE | Self::BAD_QUANTILE,
        }
        SeriesTraits(bits)
    }

    /// The traits of a pushed series ([`SeriesTraits::PUSHED`]) whose `le`
    /// and `quantile` labels, if any, have these values (escaped or not:
    /// an escaped value is no float either way).
    pub fn of_pushed(le: Option<&str>, quantile: Option<&str>) -> Self {
        SeriesTraits(Self::of(le, quantile).0 | Self::PUSHED)
    }

    /// [`SeriesTraits::of_pushed`] from whether the `le` and `quantile`
    /// labels, if any, read as floats ([`is_text_format_float`]), for a
    /// caller that knows it already.
    #[inline]
    pub fn of_pushed_floats(le: Option<bool>, quantile: Option<bool>) -> Self {
        SeriesTraits(Self::of_floats(le, quantile).0 | Self::PUSHED)
    }

    /// The flags as one byte, for compact storage.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Flags from [`SeriesTraits::bits`].
    pub fn from_bits(bits: u8) -> Self {
        SeriesTraits(bits)
    }

    /// Does the key carry an unparsable `le` label?
    pub fn bad_le(self) -> bool {
        self.0 & Self::BAD_LE != 0
    }

    /// Does the key carry an unparsable `quantile` label?
    pub fn bad_quantile(self) -> bool {
        self.0 & Self::BAD_QUANTILE != 0
    }

    /// Was the series pushed to a group ([`SeriesTraits::PUSHED`])?
    pub fn pushed(self) -> bool {
        self.0 & Self::PUSHED != 0
    }

    /// Has the key a name outside the legacy character set
    /// ([`SeriesTraits::UTF8`])?
    pub fn utf8(self) -> bool {
        self.0 & Self::UTF8 != 0
    }
}

/// Where a canonical key was written in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpan {
    /// Byte offset of the key in the buffer.
    pub start: u32,
    /// Byte length of the whole key.
    pub len: u32,
    /// Byte length of the metric name, the key's first component.
    pub name_len: u32,
    /// Facts for the exposition.
    pub traits: SeriesTraits,
}

/// Reads a canonical key (as [`build_key`] writes it) back into its metric
/// name and labels, names and values unescaped. A string that is not a
/// canonical key yields what could be read of it.
pub fn parse_key(key: &str) -> (String, Vec<(String, String)>) {
    let Some((name, labels)) = split_key(key) else {
        return (key.to_string(), Vec::new());
    };
    let labels = labels
        .map(|(n, v)| (n.chars().collect(), unescape_value(v)))
        .collect();
    (name.chars().collect(), labels)
}

/// A label value as a key writes it (`\\`, `\"`, `\n` escaped), unescaped.
pub fn unescape_value(escaped: &str) -> String {
    KeyName {
        text: escaped,
        quoted: true,
    }
    .chars()
    .collect()
}

/// Which bytes may appear in names: bit 0 — first byte of a label name,
/// bit 1 — later byte of a label name; bits 2 and 3 the same for metric names
/// (which also allow `:`).
const NAME_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] = 0b1111;
        } else if b.is_ascii_digit() {
            t[c] = 0b1010;
        } else if b == b':' {
            t[c] = 0b1100;
        }
        c += 1;
    }
    t
};

#[inline]
fn is_name(s: &[u8], first: u8, rest: u8) -> bool {
    // Byte by byte: most label names are under eight bytes, where a
    // word-at-a-time range test cost more instructions than the table
    // (callgrind, the 1.0 decode of the benchmark's series).
    match s {
        [] => false,
        [b0, tail @ ..] => {
            NAME_BYTES[usize::from(*b0)] & first != 0
                && tail.iter().all(|&c| NAME_BYTES[usize::from(c)] & rest != 0)
        }
    }
}

/// Is `s` a metric name in the legacy character set
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`), one every text-format parser reads
/// unquoted? Any other non-empty UTF-8 name is valid too (Remote-Write,
/// Prometheus 3), but is quoted in keys and escaped for scrapers that did
/// not negotiate UTF-8 names.
pub fn is_legacy_metric_name(s: &str) -> bool {
    is_name(s.as_bytes(), 0b0100, 0b1000)
}

/// Is `s` a label name in the legacy character set (`[a-zA-Z_][a-zA-Z0-9_]*`)?
/// See [`is_legacy_metric_name`].
pub fn is_legacy_label_name(s: &str) -> bool {
    is_name(s.as_bytes(), 0b0001, 0b0010)
}

/// Would the text-format parser (Go's `strconv.ParseFloat` without `p`, `P`
/// or `_`) accept `s` as a float? Used for `le` and `quantile` values.
pub fn is_text_format_float(s: &str) -> bool {
    // Fast path for what histograms carry: short digit strings with at most
    // one point (too short to overflow), or +Inf.
    let b = s.as_bytes();
    if s == "+Inf"
        || (b.len() <= 16
            && b.iter().any(u8::is_ascii_digit)
            && b.iter().all(|&c| c.is_ascii_digit() || c == b'.')
            && b.iter().filter(|&&c| c == b'.').count() <= 1)
    {
        return true;
    }
    super::parse_go_float(b).is_some()
}

/// Appends `value` escaped for a label value (`\\`, `\"`, `\n`) to `out`.
#[inline]
pub fn escape_label_value(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    // Most values are short and need no escaping: eight bytes at a time beats
    // setting up SIMD for them; longer ones go to memchr.
    if bytes.len() < 32 && !has_escapable(bytes) {
        out.push_str(value);
        return;
    }
    escape_slow(out, value);
}

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGHS: u64 = ONES << 7;

/// The high bit of each byte of `word` that is a `\\`, `"` or newline
/// (a byte equals `c` exactly when `byte ^ c` is zero), and possibly of the
/// bytes after it: only for testing against zero.
#[inline(always)]
fn escapable_bytes(word: u64) -> u64 {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    has_zero(word ^ (ONES * u64::from(b'\\')))
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\n')))
}

/// Is `test`, which flags bytes of an eight-byte word, non-zero for some
/// word of `bytes`? Every byte of every word tested is a byte of `bytes`
/// (some tested twice): a tail shorter than a word is tested as the last
/// eight bytes, overlapping the word before; a slice shorter than a word as
/// its first and last four bytes, or, under four, its first, middle and last
/// byte repeated. So `test` need not hold for padding, and a byte-per-step
/// loop runs nowhere.
#[inline(always)]
fn any_byte(bytes: &[u8], test: impl Fn(u64) -> u64) -> bool {
    let n = bytes.len();
    if n >= 8 {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            if test(u64::from_le_bytes(w.try_into().expect("8 bytes"))) != 0 {
                return true;
            }
        }
        if words.remainder().is_empty() {
            return false;
        }
        let last = bytes[n - 8..].try_into().expect("8 bytes");
        return test(u64::from_le_bytes(last)) != 0;
    }
    let word = if n >= 4 {
        let head = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        let tail = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
        u64::from(head) | (u64::from(tail) << 32)
    } else if let [first, .., last] | [first @ last] = bytes {
        (ONES * u64::from(*last)) << 16 | u64::from(bytes[n / 2]) << 8 | u64::from(*first)
    } else {
        return false;
    };
    test(word) != 0
}

/// Does `bytes` hold a `\\`, `"` or newline? Eight bytes per step
/// ([`any_byte`]).
#[inline]
fn has_escapable(bytes: &[u8]) -> bool {
    any_byte(bytes, escapable_bytes)
}

/// Is `bytes` ASCII with nothing to escape, a value a key takes as it is?
#[inline]
fn is_plain_value(bytes: &[u8]) -> bool {
    !any_byte(bytes, |w| escapable_bytes(w) | (w & HIGHS))
}

#[inline(never)]
fn escape_slow(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for i in memchr::memchr3_iter(b'\\', b'"', b'\n', bytes) {
        out.push_str(&value[start..i]);
        out.push_str(match bytes[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// Builds the canonical key of a label set into `out` and returns where it is.
///
/// `scratch` is reused between calls to avoid an allocation per series. On
/// error, `out` is left as it was. A label set with several faults is
/// rejected for one of them: duplicates and the label count first, then the
/// metric name, then the other labels in order.
pub fn build_key<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: &SeriesLimits,
    scratch: &mut Vec<(&'a str, &'a str)>,
    out: &mut String,
) -> Result<KeySpan, Rejection> {
    scratch.clear();
    scratch.extend(labels.into_iter().filter(|(_, v)| !v.is_empty()));
    write_key::<false>(limits, scratch, out)
}

/// [`build_key`] for a series pushed to a group: the key always carries an
/// `instance` label, `instance=""` when the push gave none, as the
/// Pushgateway exposes it ("About the job and instance labels" in its
/// README) so that a scraper with `honor_labels: true` attaches no
/// `instance` of its own; and the traits carry [`SeriesTraits::PUSHED`].
///
/// # Errors
///
/// As [`build_key`].
pub fn build_pushed_key<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: &SeriesLimits,
    scratch: &mut Vec<(&'a str, &'a str)>,
    out: &mut String,
) -> Result<KeySpan, Rejection> {
    pushed_scratch(labels, scratch);
    let mut span = write_key::<false>(limits, scratch, out)?;
    span.traits = SeriesTraits(span.traits.0 | SeriesTraits::PUSHED);
    Ok(span)
}

/// [`build_pushed_key`] for label values already escaped as a key writes
/// them (`\\`, `\"`, `\n`; the text format's escapes, so a pushed body's
/// values as written): they are copied, not escaped again. The value
/// length limit applies to the unescaped value, as in [`build_key`].
///
/// # Errors
///
/// As [`build_key`].
pub fn build_pushed_key_escaped<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: &SeriesLimits,
    scratch: &mut Vec<(&'a str, &'a str)>,
    out: &mut String,
) -> Result<KeySpan, Rejection> {
    pushed_scratch(labels, scratch);
    let mut span = write_key::<true>(limits, scratch, out)?;
    span.traits = SeriesTraits(span.traits.0 | SeriesTraits::PUSHED);
    Ok(span)
}

/// The label set of a pushed series in `scratch`: empty values dropped,
/// `instance=""` added when it has no instance.
#[inline]
fn pushed_scratch<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    scratch: &mut Vec<(&'a str, &'a str)>,
) {
    scratch.clear();
    let mut has_instance = false;
    scratch.extend(labels.into_iter().filter(|&(n, v)| {
        has_instance |= n == "instance" && !v.is_empty();
        !v.is_empty()
    }));
    if !has_instance {
        scratch.push(("instance", ""));
    }
}

/// Validates the label set in `scratch` (empty values already dropped) and
/// writes its canonical key to `out`; `ESCAPED`: the values are written
/// escaped already.
fn write_key<'a, const ESCAPED: bool>(
    limits: &SeriesLimits,
    scratch: &mut [(&'a str, &'a str)],
    out: &mut String,
) -> Result<KeySpan, Rejection> {
    let reject = |reason, detail: String| Err(Rejection { reason, detail });
    // Prometheus sends label sets sorted by name; then this one check also
    // proves the names distinct.
    if !scratch.is_sorted_by(|a, b| name_order(a.0, b.0).is_lt()) {
        scratch.sort_unstable_by(|a, b| name_order(a.0, b.0));
        if let Some(w) = scratch.windows(2).find(|w| w[0].0 == w[1].0) {
            return reject(
                RejectReason::DuplicateLabelName,
                format!("duplicate label name {:?}", w[0].0),
            );
        }
    }
    if scratch.len() > limits.max_labels {
        return reject(
            RejectReason::TooManyLabels,
            format!(
                "series has {} labels, more than the limit of {}",
                scratch.len(),
                limits.max_labels
            ),
        );
    }
    let Some(&(_, name)) = scratch.iter().find(|(n, _)| *n == "__name__") else {
        return reject(
            RejectReason::MissingMetricName,
            "series has no __name__ label".to_string(),
        );
    };
    check_lengths("__name__", name, limits)?;

    let start = out.len();
    out.reserve(
        name.len()
            + 4
            + scratch
                .iter()
                .map(|(n, v)| n.len() + v.len() + 6)
                .sum::<usize>(),
    );
    let mut utf8 = !is_legacy_metric_name(name);
    let name_len = write_name(out, name, !utf8);
    let (mut le, mut quantile) = (None, None);
    let mut open = false;
    for &(n, v) in scratch.iter() {
        if n == "__name__" {
            continue;
        }
        let lengths = if ESCAPED {
            check_escaped_lengths(n, v, limits)
        } else {
            check_lengths(n, v, limits)
        };
        let valid = lengths.and_then(|()| {
            if n.is_empty() {
                Err(Rejection {
                    reason: RejectReason::InvalidLabelName,
                    detail: "empty label name".to_string(),
                })
            } else if n.starts_with("__") {
                Err(reserved(n))
            } else {
                Ok(())
            }
        });
        if let Err(rejection) = valid {
            out.truncate(start);
            return Err(rejection);
        }
        out.push(if open { ',' } else { '{' });
        open = true;
        let legacy = is_legacy_label_name(n);
        utf8 |= !legacy;
        write_name(out, n, legacy);
        out.push_str("=\"");
        if ESCAPED {
            out.push_str(v);
        } else {
            escape_label_value(out, v);
        }
        out.push('"');
        // An escaped value is no float, escaped or not: the traits are the
        // same either way.
        match n {
            "le" => le = Some(v),
            "quantile" => quantile = Some(v),
            _ => {}
        }
    }
    if open {
        out.push('}');
    }
    let mut traits = SeriesTraits::of(le, quantile);
    if utf8 {
        traits.0 |= SeriesTraits::UTF8;
    }
    Ok(KeySpan {
        start: start as u32,
        len: (out.len() - start) as u32,
        name_len: name_len as u32,
        traits,
    })
}

/// Writes a metric or label name as a key holds it: a name in the legacy
/// character set (`legacy`) as it is, any other quoted and escaped as a
/// label value is (`"http.server.duration"`), the quoted form of the UTF-8
/// text exposition. Returns the length of what is between the quotes (the
/// name as the store knows it, see [`key_name`]).
#[inline]
fn write_name(out: &mut String, name: &str, legacy: bool) -> usize {
    if legacy {
        out.push_str(name);
        return name.len();
    }
    out.push('"');
    let at = out.len();
    escape_label_value(out, name);
    let len = out.len() - at;
    out.push('"');
    len
}

/// Appends a label set as OpenMetrics label text without braces, in the
/// order given: `trace_id="abc",span_id="x"`, each value escaped as in keys
/// (`\\`, `\"`, `\n`), each name outside the legacy set quoted as keys
/// write it (`"service.name"="api"`); nothing for no labels. What an
/// exemplar's `# {…}` holds.
pub fn write_label_text<'a>(
    out: &mut String,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (i, (name, value)) in labels.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_name(out, name, is_legacy_label_name(name));
        out.push_str("=\"");
        escape_label_value(out, value);
        out.push('"');
    }
}

/// The metric name of a canonical key as the store knows it: the name in
/// the legacy character set as it is, any other without its quotes, still
/// escaped (`\\`, `\"`, `\n`: the raw name for every name without those
/// three). `name_len` is [`KeySpan::name_len`].
#[inline]
pub fn key_name(key: &str, name_len: u32) -> &str {
    let at = usize::from(key.as_bytes().first() == Some(&b'"'));
    &key[at..at + name_len as usize]
}

/// The metric name of a canonical key, found by reading it (see
/// [`key_name`]); the whole string when it is no key.
pub fn name_in_key(key: &str) -> &str {
    match split_key(key) {
        Some((name, _)) => name.text,
        None => key,
    }
}

/// The store's name of a metric family named `name` by a sender (in
/// metadata): the name as a key holds it, less any quotes (see
/// [`key_name`]): borrowed unless it holds a `\\`, `"` or newline.
pub fn store_name(name: &str) -> std::borrow::Cow<'_, str> {
    if has_escapable(name.as_bytes()) {
        let mut out = String::with_capacity(name.len() + 2);
        escape_slow(&mut out, name);
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// A name read from a canonical key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyName<'k> {
    /// The name as the key writes it, less any quotes: escaped (`\\`,
    /// `\"`, `\n`) when `quoted`.
    pub text: &'k str,
    /// Was it quoted (a name outside the legacy character set)?
    pub quoted: bool,
}

impl KeyName<'_> {
    /// The name's characters, unescaped.
    pub fn chars(&self) -> impl Iterator<Item = char> + '_ {
        let quoted = self.quoted;
        let mut it = self.text.chars();
        std::iter::from_fn(move || {
            let c = it.next()?;
            if quoted && c == '\\' {
                return Some(match it.next() {
                    Some('n') => '\n',
                    Some(c) => c,
                    None => '\\',
                });
            }
            Some(c)
        })
    }
}

/// The labels of a canonical key after its name, in key order: each label's
/// name and its value as written (escaped).
#[derive(Clone, Debug)]
pub struct KeyLabels<'k> {
    rest: &'k str,
}

impl<'k> Iterator for KeyLabels<'k> {
    type Item = (KeyName<'k>, &'k str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.strip_prefix([',', '{'])?;
        let (name, after) = read_name(rest, '=')?;
        let after = after.strip_prefix("=\"")?;
        let end = closing_quote(after.as_bytes())?;
        self.rest = &after[end + 1..];
        Some((name, &after[..end]))
    }
}

/// Splits a canonical key into its metric name and labels; `None` if it is
/// no key (an empty name, an unterminated quote).
pub fn split_key(key: &str) -> Option<(KeyName<'_>, KeyLabels<'_>)> {
    let (name, rest) = read_name(key, '{')?;
    Some((name, KeyLabels { rest }))
}

/// Reads a name at the start of `s`: quoted, or up to `end` (or the end of
/// `s`); the rest of `s` after it.
fn read_name(s: &str, end: char) -> Option<(KeyName<'_>, &str)> {
    if let Some(quoted) = s.strip_prefix('"') {
        let close = closing_quote(quoted.as_bytes())?;
        let name = KeyName {
            text: &quoted[..close],
            quoted: true,
        };
        return Some((name, &quoted[close + 1..]));
    }
    let at = s.find(end).unwrap_or(s.len());
    (at > 0).then(|| {
        let name = KeyName {
            text: &s[..at],
            quoted: false,
        };
        (name, &s[at..])
    })
}

/// The index of the first `"` in `s` not escaped by a backslash.
fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', &s[i..])?;
        if s[j] == b'"' {
            return Some(j);
        }
        i = j + 2;
        if i > s.len() {
            return None;
        }
    }
}

/// The order of label names (bytewise), deciding on the first byte inline:
/// the names of a label set mostly differ there, and a call to `memcmp`
/// per comparison costs more than the rest of a short sort.
#[inline(always)]
pub fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// [`check_lengths`] for a value written escaped: its unescaped length
/// counts.
#[inline]
fn check_escaped_lengths(n: &str, v: &str, limits: &SeriesLimits) -> Result<(), Rejection> {
    if v.len() <= limits.max_value_len {
        return check_lengths(n, "", limits);
    }
    // Rare: a value over the limit as written may fit once unescaped.
    if n.len() > limits.max_name_len {
        return check_lengths(n, "", limits);
    }
    let unescaped = v.len() - escapes(v.as_bytes());
    if unescaped <= limits.max_value_len {
        return Ok(());
    }
    Err(Rejection {
        reason: RejectReason::LabelValueTooLong,
        detail: format!(
            "value of label {n:?} has {unescaped} bytes, more than the limit of {}",
            limits.max_value_len
        ),
    })
}

/// How many escapes (a backslash and the byte after it) `escaped` holds.
fn escapes(escaped: &[u8]) -> usize {
    let (mut n, mut i) = (0, 0);
    while let Some(j) = memchr::memchr(b'\\', &escaped[i..]) {
        n += 1;
        i += j + 2;
        if i >= escaped.len() {
            break;
        }
    }
    n
}

/// The rejection of a label name starting with `__`.
fn reserved(name: &str) -> Rejection {
    Rejection {
        reason: RejectReason::ReservedLabelName,
        detail: format!(
            "label name {name:?} is reserved: names starting with \"__\" are dropped by scrapers, so series differing only in them would merge"
        ),
    }
}

/// Checks one label against the length limits.
#[inline]
fn check_lengths(n: &str, v: &str, limits: &SeriesLimits) -> Result<(), Rejection> {
    if n.len() > limits.max_name_len {
        return Err(Rejection {
            reason: RejectReason::LabelNameTooLong,
            detail: format!(
                "label name of {} bytes is longer than the limit of {}",
                n.len(),
                limits.max_name_len
            ),
        });
    }
    if v.len() > limits.max_value_len {
        return Err(Rejection {
            reason: RejectReason::LabelValueTooLong,
            detail: format!(
                "value of label {n:?} has {} bytes, more than the limit of {}",
                v.len(),
                limits.max_value_len
            ),
        });
    }
    Ok(())
}

/// What [`KeyWriter::label`] checks of one string, found once for a string
/// used many times (a Remote-Write 2.0 symbol).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SymbolFacts {
    /// A label name other than a reserved one (`[a-zA-Z_][a-zA-Z0-9_]*`,
    /// not starting with `__`).
    pub label_name: bool,
    /// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub metric_name: bool,
    /// A non-empty value with nothing to escape, all ASCII.
    pub plain_value: bool,
}

impl SymbolFacts {
    /// The facts of `s`.
    pub fn of(s: &[u8]) -> Self {
        let Some((&first, tail)) = s.split_first() else {
            return SymbolFacts::default();
        };
        // `is_name` for both name sets in one pass: the bits of the two
        // "rest" sets that every byte after the first has.
        let mut rest = 0b1010;
        for &c in tail {
            rest &= NAME_BYTES[usize::from(c)];
            if rest == 0 {
                break;
            }
        }
        let first = NAME_BYTES[usize::from(first)];
        SymbolFacts {
            label_name: first & 0b0001 != 0 && rest & 0b0010 != 0 && !s.starts_with(b"__"),
            metric_name: first & 0b0100 != 0 && rest & 0b1000 != 0,
            plain_value: is_plain_value(s),
        }
    }
}

/// Writes a canonical key label by label, straight from the wire, for label
/// sets already in canonical form — the form Prometheus sends: `__name__`
/// first, the other names strictly increasing, every value non-empty, ASCII
/// and with nothing to escape, all within the limits.
///
/// [`KeyWriter::label`] returns `false` for anything else; the caller then
/// [`abandon`](KeyWriter::abandon)s the writer and takes [`build_key`], which
/// handles (or rejects) every label set. On the inputs the writer accepts
/// both produce the same key; a property test holds them to it.
pub struct KeyWriter<'o, 'a> {
    out: &'o mut String,
    limits: &'o SeriesLimits,
    known: &'o mut KnownNames<'a>,
    start: usize,
    name_len: usize,
    labels: usize,
    previous: &'a [u8],
    le: Option<&'a str>,
    quantile: Option<&'a str>,
}

impl<'o, 'a> KeyWriter<'o, 'a> {
    /// A writer appending to `out`; `known` remembers the names found
    /// valid, for the next writers over the same body.
    pub fn new(
        out: &'o mut String,
        limits: &'o SeriesLimits,
        known: &'o mut KnownNames<'a>,
    ) -> Self {
        let start = out.len();
        KeyWriter {
            out,
            limits,
            known,
            start,
            name_len: 0,
            labels: 0,
            previous: b"",
            le: None,
            quantile: None,
        }
    }

    /// Appends one label; `false` if the label set is not in canonical form.
    // Always: the decoders' hot loop calls it per label, and whether LLVM
    // inlines a plain `#[inline]` here varies with unrelated code (a
    // build where it did not cost the 1.0 decode 7% more instructions).
    #[inline(always)]
    pub fn label(&mut self, name: &'a [u8], value: &'a [u8]) -> bool {
        self.label_in(name, value, None)
    }

    /// [`label`](Self::label) for a name and value that sit in `span` as
    /// Remote-Write 1.0's `Label` holds them after its first byte: one
    /// byte, the name, two bytes, the value (`len name 0x12 len value`).
    /// The key's `,name="value"` is that span and one byte more: it is
    /// copied whole and its delimiters set, one copy where
    /// [`label`](Self::label) makes two. A `span` that does not hold `name`
    /// and `value` so is not used.
    #[inline(always)]
    pub fn label_spanned(&mut self, span: &'a [u8], name: &'a [u8], value: &'a [u8]) -> bool {
        self.label_in(name, value, Some(span))
    }

    #[inline(always)]
    fn label_in(&mut self, name: &'a [u8], value: &'a [u8], span: Option<&'a [u8]>) -> bool {
        let limits = self.limits;
        if name.len() > limits.max_name_len
            || value.is_empty()
            || value.len() > limits.max_value_len
        {
            return false;
        }
        self.labels += 1;
        if self.labels == 1 {
            if name != b"__name__"
                || !self
                    .known
                    .check(value, KnownNames::METRIC, |v| is_name(v, 0b0100, 0b1000))
            {
                return false;
            }
            // SAFETY: `is_name` accepts only ASCII bytes.
            unsafe { self.push_ascii(value) };
            self.name_len = value.len();
            self.previous = name;
            return true;
        }
        if !sorts_after(name, self.previous)
            || !self.known.check(name, KnownNames::LABEL, |n| {
                is_name(n, 0b0001, 0b0010) && !n.starts_with(b"__")
            })
            || !is_plain_value(value)
        {
            return false;
        }
        // SAFETY: `is_name` accepts only ASCII, and `is_plain_value` refuses
        // every byte with the high bit set.
        let (name, value) = unsafe { (str_of(name), str_of(value)) };
        match span {
            Some(span)
                if span.len() == name.len() + value.len() + 3
                    && span[1..].as_ptr() == name.as_ptr()
                    && span[name.len() + 3..].as_ptr() == value.as_ptr() =>
            {
                self.push_span(span, name, value)
            }
            _ => self.push_pair(name, value),
        }
        true
    }

    /// [`push_pair`](Self::push_pair) from the span of
    /// [`label_spanned`](Self::label_spanned), which holds `name` at 1 and
    /// `value` at the end. Kept apart from `push_pair` on purpose: the two
    /// as one function branching on the span made the 1.0 update round
    /// execute 4% more instructions (callgrind, `examples/rw2_phases
    /// --protocol 1`: 311.4 M against 323.6 M).
    #[inline(always)]
    fn push_span(&mut self, span: &'a [u8], name: &'a str, value: &'a str) {
        let (n, v) = (name.len(), value.len());
        self.out.reserve(n + v + 4);
        // SAFETY: room was reserved for the `n + v + 4` bytes written. The
        // span's bytes that stay are the name's and the value's, both
        // ASCII (see `label_in`); the other three, and the one after, are
        // set to ASCII delimiters.
        unsafe {
            let out = self.out.as_mut_vec();
            let at = out.len();
            let dst = out.as_mut_ptr().add(at);
            copy_short(span.as_ptr(), dst, n + v + 3);
            dst.write(if self.labels == 2 { b'{' } else { b',' });
            dst.add(n + 1).write(b'=');
            dst.add(n + 2).write(b'"');
            dst.add(n + v + 3).write(b'"');
            out.set_len(at + n + v + 4);
        }
        self.remember(name, value);
    }

    /// [`label`](Self::label) for a name and value whose checks were made
    /// once for many references (Remote-Write 2.0's symbols, each checked
    /// when its table is read): the same answer for the same label.
    #[inline]
    pub fn checked_label(
        &mut self,
        (name, name_facts): (&'a str, SymbolFacts),
        (value, value_facts): (&'a str, SymbolFacts),
    ) -> bool {
        let limits = self.limits;
        if name.len() > limits.max_name_len || value.len() > limits.max_value_len {
            return false;
        }
        self.labels += 1;
        if self.labels == 1 {
            if name != "__name__" || !value_facts.metric_name {
                return false;
            }
            // SAFETY: a metric name in the legacy set is ASCII.
            unsafe { self.push_ascii(value.as_bytes()) };
            self.name_len = value.len();
            self.previous = name.as_bytes();
            return true;
        }
        if !sorts_after(name.as_bytes(), self.previous)
            || !name_facts.label_name
            || !value_facts.plain_value
        {
            return false;
        }
        self.push_pair(name, value);
        true
    }

    /// Appends `bytes` with [`copy_short`].
    ///
    /// # Safety
    ///
    /// `bytes` must be ASCII, so that `out` stays UTF-8.
    #[inline(always)]
    unsafe fn push_ascii(&mut self, bytes: &[u8]) {
        self.out.reserve(bytes.len());
        // SAFETY: room was reserved, and the caller guarantees ASCII.
        unsafe {
            let out = self.out.as_mut_vec();
            let at = out.len();
            copy_short(bytes.as_ptr(), out.as_mut_ptr().add(at), bytes.len());
            out.set_len(at + bytes.len());
        }
    }

    /// Writes a checked label after the name (or the labels before it),
    /// remembering it for the order check and `le`/`quantile`.
    #[inline(always)]
    fn push_pair(&mut self, name: &'a str, value: &'a str) {
        let (n, v) = (name.as_bytes(), value.as_bytes());
        let len = n.len() + v.len() + 4;
        // One capacity check for the five pieces, and copies inlined: with
        // `push_str` each piece checked the capacity and each string called
        // `memcpy`, a sixth of the 1.0 decode's instructions (callgrind).
        self.out.reserve(len);
        // SAFETY: `reserve` made room for the `len` bytes written below,
        // and all of them are ASCII (both strings passed the checks of a
        // canonical label, which admit ASCII only), so `out` stays UTF-8.
        unsafe {
            let out = self.out.as_mut_vec();
            let at = out.len();
            let dst = out.as_mut_ptr().add(at);
            dst.write(if self.labels == 2 { b'{' } else { b',' });
            copy_short(n.as_ptr(), dst.add(1), n.len());
            let dst = dst.add(1 + n.len());
            dst.write(b'=');
            dst.add(1).write(b'"');
            copy_short(v.as_ptr(), dst.add(2), v.len());
            dst.add(2 + v.len()).write(b'"');
            out.set_len(at + len);
        }
        self.remember(name, value);
    }

    /// Remembers a label written, for the order check and for the
    /// series' traits (`le`, `quantile`).
    #[inline(always)]
    fn remember(&mut self, name: &'a str, value: &'a str) {
        self.previous = name.as_bytes();
        match name {
            "le" => self.le = Some(value),
            "quantile" => self.quantile = Some(value),
            _ => {}
        }
    }

    /// The key written; `None` (and `out` as it was) if the label set was
    /// empty or has more labels than the limit.
    pub fn finish(self) -> Option<KeySpan> {
        if self.labels == 0 || self.labels > self.limits.max_labels {
            self.abandon();
            return None;
        }
        if self.labels > 1 {
            self.out.push('}');
        }
        Some(KeySpan {
            start: self.start as u32,
            len: (self.out.len() - self.start) as u32,
            name_len: self.name_len as u32,
            traits: SeriesTraits::of(self.le, self.quantile),
        })
    }

    /// Leaves `out` as it was before this writer.
    pub fn abandon(self) {
        self.out.truncate(self.start);
    }
}

/// The metric and label names a [`KeyWriter`] found valid in one body,
/// a few of each: the names of a request repeat from series to series, and
/// comparing one with the name it was last seen as costs a third of checking
/// its bytes again (callgrind, the 1.0 decode of the benchmark's series).
///
/// A slot holds only a name that passed its check, so a name equal to it
/// passes the same check: the answer is the check's, only cheaper.
#[derive(Debug, Default)]
pub struct KnownNames<'a> {
    slots: [&'a [u8]; KnownNames::SLOTS],
}

impl<'a> KnownNames<'a> {
    const SLOTS: usize = 32;
    /// The slots of metric names, and of label names.
    const METRIC: usize = 0;
    const LABEL: usize = Self::SLOTS / 2;

    /// `valid(name)`, remembered: `kind` is [`Self::METRIC`] or
    /// [`Self::LABEL`], each with its own slots and its own check.
    #[inline(always)]
    fn check(&mut self, name: &'a [u8], kind: usize, valid: impl FnOnce(&[u8]) -> bool) -> bool {
        let Some(&last) = name.last() else {
            return false;
        };
        // Neighbouring names of a family differ in length or last byte.
        let slot = kind + ((name.len() + usize::from(last)) & (Self::SLOTS / 2 - 1));
        if eq_short(self.slots[slot], name) {
            return true;
        }
        let ok = valid(name);
        if ok {
            self.slots[slot] = name;
        }
        ok
    }
}

/// `a == b`, with the bytes of strings up to 32 long compared inline (as
/// [`copy_short`] copies them) where `==` calls `memcmp`.
#[inline(always)]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    macro_rules! two {
        ($t:ty, $w:expr) => {{
            let at =
                |s: &[u8], i: usize| <$t>::from_le_bytes(s[i..i + $w].try_into().expect("width"));
            at(a, 0) == at(b, 0) && at(a, len - $w) == at(b, len - $w)
        }};
    }
    match len {
        0 => true,
        1 => a[0] == b[0],
        2..=3 => two!(u16, 2),
        4..=7 => two!(u32, 4),
        8..=15 => two!(u64, 8),
        16..=32 => two!(u128, 16),
        _ => a == b,
    }
}

/// Does `name` sort strictly after `previous`? Neighbouring label names
/// nearly always differ in their first byte: decided there, without a call
/// to `memcmp`.
#[inline(always)]
fn sorts_after(name: &[u8], previous: &[u8]) -> bool {
    match (name.first(), previous.first()) {
        (Some(a), Some(b)) if a != b => a > b,
        _ => name > previous,
    }
}

/// Copies `len` bytes from `src` to `dst` with at most four loads and
/// stores for up to 32 bytes, inline: label names and values are short,
/// and a call to `memcpy` per string cost more than the copy itself.
///
/// # Safety
///
/// As [`std::ptr::copy_nonoverlapping`]: `src` readable and `dst` writable
/// for `len` bytes, the two not overlapping.
#[inline(always)]
unsafe fn copy_short(src: *const u8, dst: *mut u8, len: usize) {
    // Two copies of a power-of-two width that overlap in the middle
    // cover every length from that width to twice it.
    macro_rules! two {
        ($t:ty, $w:expr) => {{
            let head = src.cast::<$t>().read_unaligned();
            let tail = src.add(len - $w).cast::<$t>().read_unaligned();
            dst.cast::<$t>().write_unaligned(head);
            dst.add(len - $w).cast::<$t>().write_unaligned(tail);
        }};
    }
    // SAFETY: every access below is within the first `len` bytes of both.
    unsafe {
        match len {
            0 => {}
            1 => dst.write(src.read()),
            2..=3 => two!(u16, 2),
            4..=7 => two!(u32, 4),
            8..=15 => two!(u64, 8),
            16..=32 => two!(u128, 16),
            _ => std::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}

/// `bytes` as a `str`, without the UTF-8 check the caller has already done.
///
/// # Safety
///
/// `bytes` must be ASCII (hence valid UTF-8). [`KeyWriter::label`] passes
/// only names that passed the name table (ASCII by construction) and values
/// that passed [`is_plain_value`] (no byte with the high bit set).
#[inline(always)]
unsafe fn str_of(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: the caller guarantees ASCII, which is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SeriesLimits {
        crate::config::Config::default().series_limits()
    }

    fn key(labels: &[(&str, &str)]) -> Result<String, RejectReason> {
        let mut out = String::new();
        let mut scratch = Vec::new();
        build_key(labels.iter().copied(), &limits(), &mut scratch, &mut out)
            .map(|span| {
                assert_eq!(span.len as usize, out.len());
                out
            })
            .map_err(|r| r.reason)
    }

    #[test]
    fn key_is_sorted_and_drops_empty_values() {
        let a = key(&[("b", "2"), ("__name__", "m"), ("a", "1"), ("z", "")]).unwrap();
        let b = key(&[("a", "1"), ("__name__", "m"), ("b", "2")]).unwrap();
        assert_eq!(a, r#"m{a="1",b="2"}"#);
        assert_eq!(a, b);
        assert_eq!(key(&[("__name__", "up")]).unwrap(), "up");
    }

    #[test]
    fn names_outside_the_legacy_set_are_quoted_and_flagged() {
        let span = |labels: &[(&str, &str)]| {
            let (mut out, mut scratch) = (String::new(), Vec::new());
            let span = build_key(labels.iter().copied(), &limits(), &mut scratch, &mut out);
            (out, span.unwrap())
        };
        let (k, s) = span(&[
            ("__name__", "http.server.duration"),
            ("service.name", "api"),
            ("job", "j"),
        ]);
        assert_eq!(k, r#""http.server.duration"{job="j","service.name"="api"}"#);
        assert_eq!(key_name(&k, s.name_len), "http.server.duration");
        assert!(s.traits.utf8());
        // A legacy name with one UTF-8 label name: the name stays bare.
        let (k, s) = span(&[("__name__", "up"), ("a b", "x")]);
        assert_eq!(k, r#"up{"a b"="x"}"#);
        assert_eq!(key_name(&k, s.name_len), "up");
        assert!(s.traits.utf8());
        // Legacy names keep today's bytes and no flag.
        let (k, s) = span(&[("__name__", "up"), ("a", "x")]);
        assert_eq!(k, r#"up{a="x"}"#);
        assert!(!s.traits.utf8());
        // Names starting with a digit, and the delimiters themselves.
        let (k, s) = span(&[("__name__", "1up{\"\\"), ("é", "{}")]);
        assert_eq!(k, r#""1up{\"\\"{"é"="{}"}"#);
        assert_eq!(key_name(&k, s.name_len), r#"1up{\"\\"#);
        assert_eq!(name_in_key(&k), r#"1up{\"\\"#);
        assert_eq!(
            parse_key(&k),
            (
                "1up{\"\\".to_string(),
                vec![("é".to_string(), "{}".to_string())]
            )
        );
    }

    #[test]
    fn split_key_reads_every_form_back() {
        let k = r#""a.b"{"c\"d"="x\"y",e="z"}"#;
        let (name, labels) = split_key(k).unwrap();
        assert_eq!(
            name,
            KeyName {
                text: "a.b",
                quoted: true
            }
        );
        let labels: Vec<_> = labels.collect();
        assert_eq!(
            labels,
            [
                (
                    KeyName {
                        text: r#"c\"d"#,
                        quoted: true
                    },
                    r#"x\"y"#
                ),
                (
                    KeyName {
                        text: "e",
                        quoted: false
                    },
                    "z"
                )
            ]
        );
        assert_eq!(labels[0].0.chars().collect::<String>(), "c\"d");
        assert_eq!(split_key("up").unwrap().0.text, "up");
        assert_eq!(split_key("up").unwrap().1.count(), 0);
        assert!(split_key("").is_none());
        assert!(split_key(r#""open"#).is_none());
    }

    #[test]
    fn key_escapes_values() {
        let k = key(&[("__name__", "m"), ("p", "a\\b\"c\nd é")]).unwrap();
        assert_eq!(k, r#"m{p="a\\b\"c\nd é"}"#);
    }

    #[test]
    fn key_rejections() {
        use RejectReason::*;
        assert_eq!(key(&[("job", "x")]), Err(MissingMetricName));
        assert_eq!(key(&[("__name__", "")]), Err(MissingMetricName));
        assert_eq!(key(&[("__name__", "up"), ("", "x")]), Err(InvalidLabelName));
        assert_eq!(
            key(&[("__name__", "up"), ("__é", "x")]),
            Err(ReservedLabelName)
        );
        assert_eq!(
            key(&[("__name__", "up"), ("a", "x"), ("a", "y")]),
            Err(DuplicateLabelName)
        );
        assert_eq!(
            key(&[("__name__", "up"), ("__name__", "up")]),
            Err(DuplicateLabelName)
        );
        let long = "v".repeat(5000);
        assert_eq!(
            key(&[("__name__", "up"), ("a", &long)]),
            Err(LabelValueTooLong)
        );
        let long_name = "n".repeat(300);
        assert_eq!(
            key(&[("__name__", "up"), (&long_name, "x")]),
            Err(LabelNameTooLong)
        );
        let many: Vec<(String, &str)> = (0..70).map(|i| (format!("l{i}"), "x")).collect();
        let mut labels: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        labels.push(("__name__", "up"));
        assert_eq!(key(&labels), Err(TooManyLabels));
    }

    #[test]
    fn traits_record_le_and_quantile() {
        use SeriesTraits as T;
        let traits = |labels: &[(&'static str, &'static str)]| {
            let mut scratch = Vec::new();
            let slow = build_key(
                labels.iter().copied(),
                &limits(),
                &mut scratch,
                &mut String::new(),
            )
            .unwrap()
            .traits;
            // The fast path learns the same, where it takes the label set.
            let (mut out, l) = (String::new(), limits());
            let mut known = KnownNames::default();
            let mut w = KeyWriter::new(&mut out, &l, &mut known);
            if labels
                .iter()
                .all(|(n, v)| w.label(n.as_bytes(), v.as_bytes()))
            {
                assert_eq!(w.finish().unwrap().traits, slow, "{labels:?}");
            }
            slow.bits()
        };
        let n = "__name__";
        assert_eq!(
            traits(&[(n, "h_bucket"), ("le", "+Inf")]),
            T::HAS_LE | T::NO_QUANTILE
        );
        assert_eq!(
            traits(&[(n, "h_bucket"), ("le", "0x1p3")]),
            T::HAS_LE | T::BAD_LE | T::NO_QUANTILE
        );
        assert_eq!(
            traits(&[(n, "s"), ("quantile", "0.5")]),
            T::NO_LE | T::HAS_QUANTILE
        );
        assert_eq!(
            traits(&[(n, "s"), ("quantile", "high")]),
            T::NO_LE | T::HAS_QUANTILE | T::BAD_QUANTILE
        );
        assert_eq!(traits(&[(n, "g"), ("a", "1")]), T::NO_LE | T::NO_QUANTILE);
        assert!(SeriesTraits::from_bits(traits(&[(n, "h"), ("le", "x")])).bad_le());
    }

    #[test]
    fn labels_starting_with_two_underscores_are_reserved() {
        for name in ["__tmp_shard", "__address__", "__", "___x", "__meta_x"] {
            assert_eq!(
                key(&[("__name__", "m"), (name, "1")]),
                Err(RejectReason::ReservedLabelName),
                "{name}"
            );
            let (mut out, l) = (String::new(), limits());
            let mut known = KnownNames::default();
            let mut w = KeyWriter::new(&mut out, &l, &mut known);
            assert!(w.label(b"__name__", b"m"));
            assert!(
                !w.label(name.as_bytes(), b"1"),
                "the fast path gives {name} up"
            );
        }
        assert!(key(&[("__name__", "m"), ("_x", "1")]).is_ok());
        assert!(
            key(&[("__name__", "__m")]).is_ok(),
            "metric names are values, not label names"
        );
    }

    #[test]
    fn a_checked_label_is_written_exactly_as_label_writes_it() {
        // Every pair of these strings, as the first and as a later label:
        // the writer fed facts found once gives the same answer and key.
        let strings = [
            "",
            "__name__",
            "__tmp",
            "_x",
            "a",
            "b",
            "le",
            "quantile",
            "0.5",
            "m:x",
            "1bad",
            "a b",
            "a\"b",
            "a\\b",
            "a\nb",
            "é",
            "abcdefghi",
            "job",
        ];
        let l = SeriesLimits {
            max_name_len: 8,
            max_value_len: 8,
            ..limits()
        };
        let facts = |s: &'static str| (s, SymbolFacts::of(s.as_bytes()));
        // One memory of names for every writer of `label`, as over a body.
        let mut known = KnownNames::default();
        for first in strings {
            for name in strings {
                for value in strings {
                    let (mut plain, mut checked) = (String::new(), String::new());
                    let mut p = KeyWriter::new(&mut plain, &l, &mut known);
                    let mut unused = KnownNames::default();
                    let mut c = KeyWriter::new(&mut checked, &l, &mut unused);
                    let a = p.label(b"__name__", first.as_bytes());
                    assert_eq!(
                        a,
                        c.checked_label(facts("__name__"), facts(first)),
                        "{first:?}"
                    );
                    if !a {
                        // A writer that said false is abandoned.
                        continue;
                    }
                    let b = p.label(name.as_bytes(), value.as_bytes());
                    assert_eq!(
                        b,
                        c.checked_label(facts(name), facts(value)),
                        "{name:?}={value:?}"
                    );
                    if b {
                        assert_eq!(p.finish(), c.finish());
                        assert_eq!(plain, checked);
                    }
                }
            }
        }
    }

    #[test]
    fn text_format_floats_follow_go() {
        for ok in ["1", "0.5", "+Inf", "-Inf", "inf", "NaN", "1e3", ".5", "5."] {
            assert!(is_text_format_float(ok), "{ok}");
        }
        // Go reads NaN without a sign only.
        for bad in [
            "", "abc", "1e400", "0x1p3", "1_000", "1,5", ".", "1.2.3", "+NaN", "-nan",
        ] {
            assert!(!is_text_format_float(bad), "{bad}");
        }
        assert!(is_text_format_float(&"9".repeat(300)));
        assert!(!is_text_format_float(&"9".repeat(400)), "overflows");
    }

    #[test]
    fn escapable_bytes_are_found_at_every_position() {
        for len in 0..40 {
            let plain = "a".repeat(len);
            assert!(!has_escapable(plain.as_bytes()), "{len}");
            for at in 0..len {
                for c in ['\\', '"', '\n'] {
                    let mut v = plain.clone().into_bytes();
                    v[at] = c as u8;
                    assert!(has_escapable(&v), "{len} {at} {c:?}");
                }
            }
        }
        // Neighbours of the three, and bytes with the high bit, are plain.
        assert!(!has_escapable("[]#!\x0b\t é日本".as_bytes()));
    }

    #[test]
    fn name_rules() {
        for ok in ["a", "_", "A_1", "__name__", "z9"] {
            assert!(is_legacy_label_name(ok), "{ok}");
            assert!(is_legacy_metric_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "é", "a.b"] {
            assert!(!is_legacy_label_name(bad), "{bad}");
            assert!(!is_legacy_metric_name(bad), "{bad}");
        }
        assert!(is_legacy_metric_name(":a:b"));
        assert!(!is_legacy_label_name(":a"));
        assert!(!is_legacy_label_name("a:b"));
    }

    /// A label given with its wire span writes what `label` writes, and a
    /// span that does not hold the name and value where the layout puts
    /// them is not used.
    #[test]
    fn a_spanned_label_is_written_as_label_writes_it() {
        let l = limits();
        let wire = |n: &str, v: &str| {
            let mut f = vec![n.len() as u8];
            f.extend_from_slice(n.as_bytes());
            f.extend_from_slice(&[0x12, v.len() as u8]);
            f.extend_from_slice(v.as_bytes());
            f
        };
        let long = "v".repeat(40);
        for (n, v) in [
            ("a", "1"),
            ("le", "0.5"),
            ("quantile", "x"),
            ("job", long.as_str()),
            ("zz", "a\"b"),
        ] {
            let span = wire(n, v);
            let (name, value) = (&span[1..1 + n.len()], &span[n.len() + 3..]);
            let other = wire(n, v);
            let write = |how: u8| {
                let (mut out, mut known) = (String::new(), KnownNames::default());
                let mut w = KeyWriter::new(&mut out, &l, &mut known);
                assert!(w.label(b"__name__", b"m"));
                let ok = match how {
                    0 => w.label(name, value),
                    1 => w.label_spanned(&span, name, value),
                    // The same bytes elsewhere, and a span one byte short.
                    2 => w.label_spanned(&other, name, value),
                    _ => w.label_spanned(&span[..span.len() - 1], name, value),
                };
                let span = if ok { w.finish() } else { None };
                (ok, span, out)
            };
            let expected = write(0);
            for how in 1..4 {
                assert_eq!(write(how), expected, "{n}={v:?} {how}");
            }
        }
    }

    /// A remembered name answers only for itself: names that share a
    /// slot (same length, same last byte), valid and not, in every order,
    /// get the answer of their own check.
    #[test]
    fn known_names_answer_only_for_the_name_remembered() {
        let names: [&[u8]; 10] = [
            b"ab", b"-b", b"_b", b"1b", b"__b", b"xab", b"a:b", b"aab", b"b", b"\xffb",
        ];
        let l = limits();
        for order in 0..names.len() {
            let mut known = KnownNames::default();
            for round in 0..2 {
                for i in 0..names.len() {
                    let name = names[(order + i) % names.len()];
                    let label_ok = is_name(name, 0b0001, 0b0010) && !name.starts_with(b"__");
                    let metric_ok = is_name(name, 0b0100, 0b1000);
                    let mut out = String::new();
                    let mut w = KeyWriter::new(&mut out, &l, &mut known);
                    assert_eq!(w.label(b"__name__", name), metric_ok, "{name:?} {round}");
                    let mut out = String::new();
                    let mut w = KeyWriter::new(&mut out, &l, &mut known);
                    assert!(w.label(b"__name__", b"m"));
                    assert_eq!(w.label(name, b"v"), label_ok, "{name:?} {round}");
                }
            }
        }
        for (a, b) in [
            (&b"abcdefghijklmnopq"[..], &b"abcdefghijklmnopr"[..]),
            (b"abcdefgh", b"abcdefgi"),
        ] {
            assert!(eq_short(a, a) && !eq_short(a, b) && !eq_short(a, &a[1..]));
        }
    }

    /// The word-at-a-time checks against the byte-at-a-time rules they
    /// replace: every byte value at every position of every length that
    /// takes a different path through `any_byte` (under four, under eight,
    /// whole words, words and an overlapping tail).
    #[test]
    fn word_checks_agree_with_the_byte_rules_at_every_position() {
        let name_ref = |s: &[u8], colon: bool| {
            let rest = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':');
            let first = |c: u8| c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':');
            s.split_first()
                .is_some_and(|(&b0, tail)| first(b0) && tail.iter().all(|&c| rest(c)))
        };
        let plain_ref = |s: &[u8]| s.iter().all(|&c| c.is_ascii() && !b"\\\"\n".contains(&c));
        for len in 1..=26 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = byte;
                    let what = format!("{len} {at} {byte:#04x}");
                    assert_eq!(
                        is_name(&s, 0b0001, 0b0010),
                        name_ref(&s, false),
                        "label {what}"
                    );
                    assert_eq!(
                        is_name(&s, 0b0100, 0b1000),
                        name_ref(&s, true),
                        "metric {what}"
                    );
                    assert_eq!(is_plain_value(&s), plain_ref(&s), "value {what}");
                }
            }
        }
        // Empty: nothing to escape (the key writer refuses empty values itself).
        assert!(is_plain_value(b"") && !has_escapable(b""));
    }
}
