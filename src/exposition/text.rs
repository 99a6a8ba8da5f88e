//! The text format's small pieces: floats and HELP/TYPE lines.

/// Appends `v` as the text format writes floats: shortest digits that parse
/// back to the same bits, `NaN`, `+Inf`, `-Inf`; integral values without
/// `.0`, as Prometheus writes them.
pub fn write_float(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        let mut fmt = ryu::Buffer::new();
        let s = fmt.format_finite(v);
        buf.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
    }
}

/// Appends a family's `# HELP` (escaped: `\\`, `\n`) and `# TYPE` lines,
/// each only when given.
pub(super) fn write_header(
    buf: &mut Vec<u8>,
    family: &str,
    help: Option<&str>,
    type_name: Option<&str>,
) {
    if let Some(help) = help {
        buf.extend_from_slice(b"# HELP ");
        super::escaping::write_family_name(buf, family);
        buf.push(b' ');
        for &c in help.as_bytes() {
            match c {
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                _ => buf.push(c),
            }
        }
        buf.push(b'\n');
    }
    if let Some(t) = type_name {
        buf.extend_from_slice(b"# TYPE ");
        super::escaping::write_family_name(buf, family);
        buf.push(b' ');
        buf.extend_from_slice(t.as_bytes());
        buf.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_in_go_syntax() {
        let cases = [
            (1.0, "1"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (1e21, "1e21"),
            (123456.0, "123456"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (v, want) in cases {
            let mut b = Vec::new();
            write_float(&mut b, v);
            assert_eq!(std::str::from_utf8(&b).unwrap(), want);
            if v.is_finite() {
                assert_eq!(want.parse::<f64>().unwrap().to_bits(), v.to_bits());
            }
        }
    }
}
