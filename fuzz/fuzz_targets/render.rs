//! Accepted families written back in the text format, for the round trip.

use std::fmt::Write as _;

use promgate::ingest::ParsedFamily;
use promgate::model::write_go_float;

/// `families` in the text format 0.0.4: HELP and TYPE, then the samples,
/// escaped as the format says.
pub fn render(families: &[ParsedFamily]) -> String {
    let mut out = String::new();
    for f in families {
        if let Some(help) = &f.help {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            out.push_str(&help.replace('\\', "\\\\").replace('\n', "\\n"));
            out.push('\n');
        }
        let t = f.metric_type.text_format_name().unwrap_or("untyped");
        let _ = writeln!(out, "# TYPE {} {t}", f.name);
        for s in &f.samples {
            out.push_str(&s.name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (n, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('\n', "\\n")
                        .replace('"', "\\\"");
                    let _ = write!(out, "{n}=\"{v}\"");
                }
                out.push('}');
            }
            out.push(' ');
            write_go_float(&mut out, s.value);
            if let Some(ts) = s.timestamp_ms {
                let _ = write!(out, " {ts}");
            }
            out.push('\n');
        }
    }
    out
}

/// Whether two parses hold the same families (floats equal as values, NaN
/// equal to NaN); HELP compared only when `help` is set.
pub fn same(a: &[ParsedFamily], b: &[ParsedFamily], help: bool) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && (!help || x.help == y.help)
                && x.metric_type == y.metric_type
                && x.samples.len() == y.samples.len()
                && x.samples.iter().zip(&y.samples).all(|(s, t)| {
                    s.name == t.name
                        && s.labels == t.labels
                        && s.timestamp_ms == t.timestamp_ms
                        && (s.value == t.value || (s.value.is_nan() && t.value.is_nan()))
                })
        })
}
