//! Floats as the Go implementations of the text format read and write them.
//!
//! client_golang's text parser (`expfmt.TextParser`, which the Pushgateway
//! and every Go scraper of the text format run) reads floats with
//! `strconv.ParseFloat` after refusing `p`, `P` and `_`, and its encoder
//! writes them with `strconv.FormatFloat(v, 'g', -1, 64)`. Rust's own parser
//! and formatter differ at the edges (`+NaN`, overflow to infinity, where the
//! exponent form starts), so pushed values, `le` and `quantile` are read and
//! written here, the Go way.

use std::fmt::Write as _;

/// Parses `s` as the Go text parser reads a value, an `le` or a `quantile`:
/// `strconv.ParseFloat(s, 64)` with `p`, `P` and `_` refused.
///
/// Accepted: decimal numbers with an optional sign, point and exponent
/// (`1`, `-.5`, `5.`, `1E+3`); `Inf`, `Infinity` (any case, optional sign);
/// `NaN` (any case, no sign). Refused: the empty string, hexadecimal floats,
/// underscores, a signed NaN, and a finite literal that overflows (`1e400`:
/// Go reports a range error where Rust would give infinity); one that
/// underflows reads as zero, as in Go.
pub fn parse_go_float(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_short_decimal(s) {
        return Some(v);
    }
    let (sign, rest) = match s.first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    match rest.first() {
        Some(b'0'..=b'9' | b'.') => {}
        Some(b'i' | b'I') => {
            return (rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity"))
                .then_some(sign * f64::INFINITY);
        }
        // Go's special-value reader takes NaN without a sign only.
        Some(b'n' | b'N') if rest.len() == s.len() => {
            return rest.eq_ignore_ascii_case(b"nan").then_some(f64::NAN);
        }
        _ => return None,
    }
    // What is left must be a decimal literal: Rust's grammar for those is
    // Go's (hexadecimal needs a `p` exponent in Go, refused above; Rust has
    // none), and neither accepts `_` in base 10.
    if !rest
        .iter()
        .all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// [`parse_go_float`] of text already known to be UTF-8.
#[inline]
pub fn parse_go_float_str(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if let Some(v) = parse_short_decimal(b) {
        return Some(v);
    }
    // The common case, plain decimals, straight to Rust's parser (whose
    // grammar is Go's for them).
    if !b.is_empty()
        && b.len() <= 32
        && b.iter()
            .all(|&c| c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.iter().any(u8::is_ascii_digit)
    {
        return s.parse().ok();
    }
    parse_go_float(b)
}

/// Powers of ten a double holds exactly: 10^22 is the last (5^22 < 2^53).
const EXACT_POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A short plain decimal (`-12.50`, `3`, `.5`, `7.`: an optional `-`,
/// digits with at most one point, at least one digit) read exactly as the
/// standard parser reads it, or `None` for anything else, left to it.
///
/// What pushed bodies carry is mostly such numbers, and the standard
/// parser's general algorithm costs several times this. With at most 15
/// digits the digits are an integer below 2^53, and the point divides it
/// by a power of ten of at most 10^15: both exact as doubles, so one
/// correctly rounded division gives the correctly rounded value (Clinger's
/// fast path, the standard parser's own first step). A `-` negates, so
/// `-0` is -0.0 as there.
#[inline]
pub fn parse_short_decimal(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut point = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(c - b'0'),
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    // Digits after the point (`point` counts those before it).
    let scale = match point {
        Some(p) => digits.len() - 1 - p,
        None => 0,
    };
    let count = digits.len() - usize::from(point.is_some());
    if count == 0 || count > 15 {
        return None;
    }
    let v = mantissa as f64 / EXACT_POWERS[scale];
    Some(if negative { -v } else { v })
}

/// Appends `v` as the Go text encoder writes it (`writeFloat`): `NaN`,
/// `+Inf`, `-Inf`, `0` for both zeros, and otherwise `strconv.FormatFloat(v,
/// 'g', -1, 64)`: the shortest digits that read back to the same bits, in
/// exponent form (`1e+06`, `1.5e-05`, two exponent digits at least) when the
/// decimal exponent is below -4 or at least 6, else positional (`100000`,
/// `0.0001`, `123456.75`).
pub fn write_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Rust's `{:e}` writes the same shortest round-trip digits as Go's
    // shortest formatting, as `d.ddde<exp>`; only the layout differs, and
    // the choice between two shortest candidates equally near `v`.
    let mut sci = Buf::default();
    let _ = write!(sci, "{:e}", v.abs());
    let mut text = sci.as_str();
    let mut even = Buf::default();
    if let Some(tied) = nearest_even_on_a_tie(text, v.abs(), &mut even) {
        text = tied;
    }
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = Buf::default();
    for c in mantissa.bytes().filter(u8::is_ascii_digit) {
        digits.push(c);
    }
    let digits = digits.as_str();
    if v < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        let _ = write!(out, "{e}");
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_digits = exp as usize + 1;
        if digits.len() <= int_digits {
            out.push_str(digits);
            for _ in digits.len()..int_digits {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_digits]);
            out.push('.');
            out.push_str(&digits[int_digits..]);
        }
    }
}

/// When `v` lies exactly halfway between two shortest candidates, Rust's
/// `{:e}` takes the upper one and Go's `strconv.FormatFloat` (its Ryū
/// shortest mode) the even one: `1796031508.61328125` is
/// `1.7960315086132812e+09` in Go. Returns the even candidate, written into
/// `buf`, when `shortest` (Rust's `{:e}` of `v`) is the odd one of a tie.
///
/// A tie needs 16 or 17 digits: with fewer, two neighbouring candidates are
/// further apart than the binary interval that reads back to `v`. Rust's
/// exact formatting to the same number of digits rounds a tie to even, so it
/// names the other candidate, which is used only if it reads back to `v`.
fn nearest_even_on_a_tie<'b>(shortest: &str, v: f64, buf: &'b mut Buf) -> Option<&'b str> {
    let mantissa = shortest.split_once('e').map_or(shortest, |(m, _)| m);
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let last = mantissa.bytes().last()?;
    if digits < 16 || (last - b'0').is_multiple_of(2) {
        return None;
    }
    write!(buf, "{:.*e}", digits - 1, v).ok()?;
    let exact = buf.as_str();
    (exact != shortest && exact.parse::<f64>() == Ok(v)).then_some(exact)
}

/// [`write_go_float`] into a new `String`.
pub fn go_float(v: f64) -> String {
    let mut s = String::new();
    write_go_float(&mut s, v);
    s
}

/// A small stack buffer: an f64 in `{:e}` form is at most 24 bytes.
#[derive(Default)]
struct Buf {
    bytes: [u8; 32],
    len: usize,
}

impl Buf {
    fn push(&mut self, c: u8) {
        if self.len < self.bytes.len() {
            self.bytes[self.len] = c;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every verdict below is what the Debian Pushgateway 1.5.1 (Go's
    /// `strconv.ParseFloat` in client_golang's text parser) answered for
    /// `a <value>\n`.
    #[test]
    fn parses_what_go_parses() {
        let accepted: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-0", -0.0),
            ("+1", 1.0),
            (".5", 0.5),
            ("+.5", 0.5),
            ("5.", 5.0),
            ("1.e3", 1000.0),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            ("1e-3", 0.001),
            ("00012", 12.0),
            ("1e-400", 0.0),
            ("4.9e-324", 5e-324),
            ("1.7976931348623157e308", f64::MAX),
            ("Inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("INF", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("infinity", f64::INFINITY),
        ];
        for (s, want) in accepted {
            let got = parse_go_float(s.as_bytes());
            assert_eq!(got.map(f64::to_bits), Some(want.to_bits()), "{s}");
            assert_eq!(
                parse_go_float_str(s).map(f64::to_bits),
                Some(want.to_bits()),
                "{s}"
            );
        }
        for s in ["NaN", "nan", "NAN", "nAn"] {
            assert!(parse_go_float(s.as_bytes()).unwrap().is_nan(), "{s}");
        }
        for s in [
            "",
            "+",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "+NaN",
            "-nan",
            "infinit",
            "in",
            "0x10",
            "0x1p3",
            "1p3",
            "1_000",
            "1e400",
            "-1e400",
            "1.7976931348623159e308",
            "1,5",
            " 1",
            "1 ",
            "0b1",
            "0o7",
            "1\r",
            "--1",
            "+-1",
            "1e5.5",
            "1..2",
            "∞",
            "1-2",
            "-",
            "-.",
            "1.5-",
        ] {
            assert_eq!(parse_go_float(s.as_bytes()), None, "{s:?}");
            assert_eq!(parse_go_float_str(s), None, "{s:?}");
        }
    }

    /// The texts are what the Pushgateway 1.5.1 wrote on its page for the
    /// values pushed.
    #[test]
    fn writes_what_go_writes() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.0, "-1"),
            (0.0, "0"),
            (-0.0, "0"),
            (1000.0, "1000"),
            (0.001, "0.001"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1_795_946_361.101_320_5, "1.7959463611013205e+09"),
            (18446744073709551615.0, "1.8446744073709552e+19"),
            (123456.75, "123456.75"),
            (-2.5e-7, "-2.5e-07"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(go_float(*v), *want, "{v:e}");
        }
    }

    /// A push time `s + k/256` (`k` odd) is exactly `s.dddddddd5`: 18
    /// digits, halfway between two 17-digit candidates that both read back.
    /// Go writes the even one (the Pushgateway wrote `1.7960315086132812e+09`
    /// for `1796031508.61328125`); the expected text here is built from the
    /// exact decimal by integer arithmetic, not by a float formatter.
    #[test]
    fn a_tie_between_two_shortest_candidates_is_written_even_as_go_does() {
        assert_eq!(
            go_float(1_796_031_508.0 + 157.0 / 256.0),
            "1.7960315086132812e+09"
        );
        let mut ties = 0;
        for s in [
            1_796_031_508u64,
            1_000_000_001,
            2_147_483_647,
            4_000_000_003,
        ] {
            for k in (1..256u64).step_by(2) {
                let v = s as f64 + k as f64 / 256.0;
                // The exact value in units of 1e-8: k/256 = k * 390625e-8.
                let exact = u128::from(s) * 100_000_000 + u128::from(k) * 390_625;
                let (kept, dropped) = (exact / 10, exact % 10);
                assert_eq!(dropped, 5, "k/256 ends in 5 at the 8th decimal");
                let even = if kept % 2 == 0 { kept } else { kept + 1 };
                let odd = if kept % 2 == 0 { kept + 1 } else { kept };
                let text = |d: u128| {
                    let d = d.to_string();
                    format!("{}.{}e+09", &d[..1], d[1..].trim_end_matches('0'))
                };
                let reads_back = |t: &str| t.parse::<f64>() == Ok(v);
                if !(reads_back(&text(even)) && reads_back(&text(odd))) {
                    continue; // a shorter candidate exists: no tie
                }
                ties += 1;
                assert_eq!(go_float(v), text(even), "{v}");
            }
        }
        assert!(ties > 100, "only {ties} ties were tried");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// The fast path gives the standard parser's bits, or leaves the
        /// text to it.
        #[test]
        fn short_decimals_read_as_the_standard_parser_reads_them(
            s in "-?[0-9]{0,17}(\\.[0-9]{0,17})?|[-+.0-9eE]{1,8}",
        ) {
            let fast = parse_short_decimal(s.as_bytes());
            if let Some(v) = fast {
                proptest::prop_assert_eq!(Some(v.to_bits()), s.parse::<f64>().ok().map(f64::to_bits), "{}", s);
            }
            // What both readers say is unchanged by the fast path.
            let slow = std::str::from_utf8(s.as_bytes()).ok().and_then(|t| {
                let rest = t.strip_prefix(['+', '-']).unwrap_or(t);
                (rest.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                    && rest.bytes().all(|c| c.is_ascii_digit() || b".eE+-".contains(&c)))
                .then(|| t.parse::<f64>().ok().filter(|v| v.is_finite()))
                .flatten()
            });
            proptest::prop_assert_eq!(parse_go_float(s.as_bytes()).map(f64::to_bits), slow.map(f64::to_bits), "{}", s);
            proptest::prop_assert_eq!(parse_go_float_str(&s).map(f64::to_bits), slow.map(f64::to_bits), "{}", s);
        }

        #[test]
        fn short_decimals_of_any_double(v in proptest::prelude::any::<f64>(), digits in 1usize..16) {
            // A double written with a few significant digits, as values are.
            let s = format!("{:.*}", digits.min(15), v);
            if let Some(fast) = parse_short_decimal(s.as_bytes()) {
                proptest::prop_assert_eq!(fast.to_bits(), s.parse::<f64>().unwrap().to_bits(), "{}", s);
            }
        }
    }

    #[test]
    fn short_decimals() {
        for (s, want) in [
            ("0", Some(0.0)),
            ("-0", Some(-0.0)),
            ("-0.0", Some(-0.0)),
            ("5.", Some(5.0)),
            (".5", Some(0.5)),
            ("0.005", Some(0.005)),
            ("123456789012345", Some(123456789012345.0)),
            ("0.1", Some(0.1)),
            ("1234567890123456", None),
            ("", None),
            ("-", None),
            (".", None),
            ("-.", None),
            ("+1", None),
            ("1e3", None),
            ("1..2", None),
            ("1-2", None),
        ] {
            assert_eq!(
                parse_short_decimal(s.as_bytes()).map(f64::to_bits),
                want.map(f64::to_bits),
                "{s}"
            );
        }
    }

    #[test]
    fn written_floats_read_back() {
        for v in [0.1, 1.0 / 3.0, 2.0f64.powi(60), 1e-300, 6.02214076e23, -7.5] {
            let s = go_float(v);
            assert_eq!(parse_go_float(s.as_bytes()), Some(v), "{s}");
        }
    }
}
