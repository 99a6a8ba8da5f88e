//! Names outside the legacy character set, as each scraper negotiated them
//! (`escaping_schemes.md` and `content_negotiation.md` in prometheus/docs).
//!
//! A key holds such a name quoted (`model::key`); a page either keeps the
//! quoted syntax of the UTF-8 text exposition (`allow-utf-8`: only a
//! quoted metric name moves into the braces) or replaces the name by its
//! escaped form (`underscores`, `dots`, `values`). As in the reference
//! implementation (`EscapeName` in prometheus/common), a name already in
//! the legacy character set is never rewritten, whatever the scheme; unlike
//! it, a label name is held to the label set (no `:`), which is what every
//! text-format parser reads unquoted.

use std::fmt::Write as _;

use crate::model::{KeyName, is_legacy_label_name, is_legacy_metric_name, split_key};

/// An escaping scheme (`escaping=` in `Accept` and `Content-Type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Escaping {
    /// No escaping: names outside the legacy set in the quoted syntax
    /// (`{"http.server.duration","service.name"="api"}`).
    #[value(name = "allow-utf-8")]
    AllowUtf8,
    /// Every character outside the legacy set becomes `_` (the spec's
    /// default when the scraper names no scheme).
    #[default]
    Underscores,
    /// `.` becomes `_dot_`, `_` becomes `__`, any other character outside
    /// the legacy set `_`.
    Dots,
    /// `U__` then the name, `_` doubled, any character outside the legacy
    /// set as its code point in hex between underscores (`U__a_2e_b`).
    Values,
}

impl Escaping {
    /// The scheme named by an `escaping=` parameter value.
    pub fn from_param(value: &str) -> Option<Self> {
        Some(match value {
            "allow-utf-8" => Escaping::AllowUtf8,
            "underscores" => Escaping::Underscores,
            "dots" => Escaping::Dots,
            "values" => Escaping::Values,
            _ => return None,
        })
    }

    /// The parameter value naming this scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Escaping::AllowUtf8 => "allow-utf-8",
            Escaping::Underscores => "underscores",
            Escaping::Dots => "dots",
            Escaping::Values => "values",
        }
    }
}

/// Which characters a name may hold unquoted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metric,
    Label,
}

impl Kind {
    fn legacy(self, name: &str) -> bool {
        match self {
            Kind::Metric => is_legacy_metric_name(name),
            Kind::Label => is_legacy_label_name(name),
        }
    }

    fn legacy_char(self, c: char, first: bool) -> bool {
        c.is_ascii_alphabetic()
            || c == '_'
            || (c == ':' && self == Kind::Metric)
            || (c.is_ascii_digit() && !first)
    }
}

/// Appends `name` escaped by `scheme` (not [`Escaping::AllowUtf8`]) for
/// the given kind of name.
fn escape(out: &mut String, name: KeyName<'_>, kind: Kind, scheme: Escaping) {
    if !name.quoted && kind.legacy(name.text) {
        out.push_str(name.text);
        return;
    }
    if scheme == Escaping::Values {
        out.push_str("U__");
    }
    for (i, c) in name.chars().enumerate() {
        match (scheme, c) {
            (Escaping::Dots | Escaping::Values, '_') => out.push_str("__"),
            (Escaping::Dots, '.') => out.push_str("_dot_"),
            _ if kind.legacy_char(c, i == 0) => out.push(c),
            (Escaping::Values, c) => {
                let _ = write!(out, "_{:x}_", u32::from(c));
            }
            _ => out.push('_'),
        }
    }
}

/// The name a family or metric named `name` in the store (see
/// `model::key_name`) has on a page escaped by `scheme`: unchanged for a
/// legacy name or with [`Escaping::AllowUtf8`].
pub(super) fn metric_name(name: &str, scheme: Escaping) -> std::borrow::Cow<'_, str> {
    if scheme == Escaping::AllowUtf8 || is_legacy_metric_name(name) {
        return name.into();
    }
    let mut out = String::with_capacity(name.len() + 8);
    let quoted = KeyName {
        text: name,
        quoted: true,
    };
    escape(&mut out, quoted, Kind::Metric, scheme);
    out.into()
}

/// Appends a family name as HELP and TYPE lines name it: quoted when it is
/// outside the legacy set (only possible with [`Escaping::AllowUtf8`],
/// where `name` is the store's, already escaped for quotes).
pub(super) fn write_family_name(buf: &mut Vec<u8>, name: &str) {
    if is_legacy_metric_name(name) {
        buf.extend_from_slice(name.as_bytes());
    } else {
        buf.push(b'"');
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'"');
    }
}

/// Why a series was left off a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Two of its label names escape to the same name.
    LabelCollision,
    /// A label name escapes to one starting with `__`, which scrapers drop
    /// after relabelling (so series differing in it would merge), as
    /// promgate refuses such names on ingest.
    ReservedLabelName,
}

/// Appends the series line prefix of canonical key `key` (a key with a name
/// outside the legacy set) for a page escaped by `scheme` to `out`.
///
/// # Errors
///
/// [`Dropped::LabelCollision`] when two label names escape alike, and
/// [`Dropped::ReservedLabelName`] when one escapes to a `__` name (`..x`
/// with underscores, `_.x` with dots); `out` is then left as it was.
pub(super) fn write_key(out: &mut Vec<u8>, key: &str, scheme: Escaping) -> Result<(), Dropped> {
    let Some((name, labels)) = split_key(key) else {
        // Never: the store holds only keys `model::key` wrote.
        out.extend_from_slice(key.as_bytes());
        return Ok(());
    };
    if scheme == Escaping::AllowUtf8 {
        if !name.quoted {
            out.extend_from_slice(key.as_bytes());
            return Ok(());
        }
        // `"a.b"{x="y"}` is `{"a.b",x="y"}` on the page.
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(name.text.as_bytes());
        out.push(b'"');
        let rest = &key[name.text.len() + 2..];
        match rest.strip_prefix('{') {
            Some(labels) => {
                out.push(b',');
                out.extend_from_slice(labels.as_bytes());
            }
            None => out.push(b'}'),
        }
        return Ok(());
    }
    let mut line = String::with_capacity(key.len() + 16);
    escape(&mut line, name, Kind::Metric, scheme);
    let mut names: Vec<(usize, usize)> = Vec::new();
    for (label, value) in labels {
        line.push(if names.is_empty() { '{' } else { ',' });
        let at = line.len();
        escape(&mut line, label, Kind::Label, scheme);
        if line[at..].starts_with("__") {
            return Err(Dropped::ReservedLabelName);
        }
        names.push((at, line.len()));
        line.push_str("=\"");
        line.push_str(value);
        line.push('"');
    }
    if !names.is_empty() {
        line.push('}');
        if names.len() > 1 {
            let mut seen: Vec<&str> = names.iter().map(|&(a, b)| &line[a..b]).collect();
            seen.sort_unstable();
            if seen.windows(2).any(|w| w[0] == w[1]) {
                return Err(Dropped::LabelCollision);
            }
        }
    }
    out.extend_from_slice(line.as_bytes());
    Ok(())
}

/// The series line prefix of canonical key `key` on a page escaped by
/// `scheme` (see [`write_key`]); for tests and fuzzing.
///
/// # Errors
///
/// As [`write_key`].
pub fn escape_key(key: &str, scheme: Escaping) -> Result<String, Dropped> {
    let mut out = Vec::with_capacity(key.len() + 16);
    write_key(&mut out, key, scheme)?;
    Ok(String::from_utf8(out).expect("escaping keeps UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_key(key: &str, scheme: Escaping) -> Result<String, Dropped> {
        let mut out = Vec::new();
        write_key(&mut out, key, scheme).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn schemes_escape_as_the_spec_says() {
        // The examples of escaping_schemes.md.
        let m = |n, s| metric_name(n, s).into_owned();
        assert_eq!(
            m("metric.name/with/slashes", Escaping::Underscores),
            "metric_name_with_slashes"
        );
        assert_eq!(
            m("metric.name.with.dots", Escaping::Dots),
            "metric_dot_name_dot_with_dot_dots"
        );
        assert_eq!(m("metric.name", Escaping::Values), "U__metric_2e_name");
        // Underscores doubled by dots and values; a leading digit replaced.
        assert_eq!(m("a_b.c", Escaping::Dots), "a__b_dot_c");
        assert_eq!(m("a_b.c", Escaping::Values), "U__a__b_2e_c");
        assert_eq!(m("1a.b", Escaping::Underscores), "_a_b");
        assert_eq!(m("1a.b", Escaping::Values), "U___31_a_2e_b");
        assert_eq!(m("é", Escaping::Values), "U___e9_");
        // Legacy names are never rewritten, and allow-utf-8 rewrites nothing.
        for s in [Escaping::Underscores, Escaping::Dots, Escaping::Values] {
            assert_eq!(m("a_b:c", s), "a_b:c");
        }
        assert_eq!(m("a.b", Escaping::AllowUtf8), "a.b");
        // A quote, backslash or newline is one character, escaped in the store.
        assert_eq!(m(r#"a\"b\\c\nd"#, Escaping::Underscores), "a_b_c_d");
    }

    #[test]
    fn keys_are_rewritten_for_each_scheme() {
        let key = r#""http.server.duration"{job="j","service.name"="a\"pi"}"#;
        assert_eq!(
            page_key(key, Escaping::AllowUtf8).unwrap(),
            r#"{"http.server.duration",job="j","service.name"="a\"pi"}"#
        );
        assert_eq!(
            page_key(key, Escaping::Underscores).unwrap(),
            r#"http_server_duration{job="j",service_name="a\"pi"}"#
        );
        assert_eq!(
            page_key(key, Escaping::Values).unwrap(),
            r#"U__http_2e_server_2e_duration{job="j",U__service_2e_name="a\"pi"}"#
        );
        assert_eq!(
            page_key(r#""a.b""#, Escaping::AllowUtf8).unwrap(),
            r#"{"a.b"}"#
        );
        assert_eq!(page_key(r#""a.b""#, Escaping::Dots).unwrap(), "a_dot_b");
        // A legacy metric name keeps its place; `:` is no label character.
        assert_eq!(
            page_key(r#"up{"a:b"="1"}"#, Escaping::AllowUtf8).unwrap(),
            r#"up{"a:b"="1"}"#
        );
        assert_eq!(
            page_key(r#"up{"a:b"="1"}"#, Escaping::Underscores).unwrap(),
            r#"up{a_b="1"}"#
        );
    }

    #[test]
    fn label_names_escaping_to_reserved_ones_drop_the_series() {
        assert_eq!(
            page_key(r#"up{"..f"="1"}"#, Escaping::Underscores),
            Err(Dropped::ReservedLabelName)
        );
        assert_eq!(
            page_key(r#"up{"_.f"="1"}"#, Escaping::Dots),
            Err(Dropped::ReservedLabelName)
        );
        assert_eq!(
            page_key(r#"up{"_.f"="1"}"#, Escaping::Values).unwrap(),
            r#"up{U_____2e_f="1"}"#
        );
        assert_eq!(
            page_key(r#"up{"..f"="1"}"#, Escaping::AllowUtf8).unwrap(),
            r#"up{"..f"="1"}"#
        );
    }

    #[test]
    fn label_names_escaping_alike_drop_the_series() {
        let key = r#"up{"a.b"="1",a_b="2"}"#;
        assert_eq!(
            page_key(key, Escaping::Underscores),
            Err(Dropped::LabelCollision)
        );
        // Injective schemes keep both.
        assert_eq!(
            page_key(key, Escaping::Dots).unwrap(),
            r#"up{a_dot_b="1",a_b="2"}"#
        );
        assert_eq!(
            page_key(key, Escaping::AllowUtf8).unwrap(),
            r#"up{"a.b"="1",a_b="2"}"#
        );
    }
}
