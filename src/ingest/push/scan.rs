//! Eight bytes at a time: the searches of the one-pass reading of a text
//! body (`text::lower_text`) over label names and values, which are short
//! (a few bytes) and many (several per line). A byte loop costs some eight
//! instructions a byte and a call to `memcmp` or `memchr` a few dozen to set
//! up; one 64-bit word holds most names and values whole.

/// The eight bytes of `s` from `i`, little-endian, if there are eight.
#[inline(always)]
fn word(s: &[u8], i: usize) -> Option<u64> {
    let bytes = s.get(i..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*bytes))
}

/// `b` in every byte of a word.
const fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// The high bit of the lowest byte of `x` that is zero, and maybe of
/// bytes above it, and no bit if no byte is zero: the short form, whose
/// borrow may flag a byte above a zero one, never one below. So the
/// lowest bit set, also of several such masks or-ed, is the first match,
/// which is all the searches here ask.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(splat(0x01)) & !x & splat(0x80)
}

/// The index of the first `"`, `\` or `\n` in `s`: where a label value
/// ends, an escape the caller leaves to the general reader, or a newline,
/// which no value may hold (the value is read from the body, not from its
/// line, so the search must not run past the line's end).
#[inline]
pub(super) fn find_quote(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = word(s, i) {
        let found = zero_bytes(w ^ splat(b'"'))
            | zero_bytes(w ^ splat(b'\\'))
            | zero_bytes(w ^ splat(b'\n'));
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c == b'\n')
        .map(|p| i + p)
}

/// The index of the first `\n` in `s`.
#[inline]
pub(super) fn find_newline(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = word(s, i) {
        let found = zero_bytes(w ^ splat(b'\n'));
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..].iter().position(|&c| c == b'\n').map(|p| i + p)
}

/// Are `a` and `b` the same bytes? Inline for up to sixteen, by two
/// overlapping words (or halves), as label values mostly are: a call to
/// `memcmp` costs more than comparing them.
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let pair = |s: &[u8], k: usize| -> (u64, u64) {
        let head = u64::from_le_bytes(s[..8].try_into().expect("eight bytes"));
        let tail = u64::from_le_bytes(s[k - 8..k].try_into().expect("eight bytes"));
        (head, tail)
    };
    let half = |s: &[u8], k: usize| -> (u32, u32) {
        let head = u32::from_le_bytes(s[..4].try_into().expect("four bytes"));
        let tail = u32::from_le_bytes(s[k - 4..k].try_into().expect("four bytes"));
        (head, tail)
    };
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => half(a, n) == half(b, n),
        8..=16 => pair(a, n) == pair(b, n),
        _ => a == b,
    }
}

/// A label name and the `="` after it, to find at the start of some bytes:
/// two masked words when it fits in sixteen bytes.
#[derive(Clone, Debug)]
pub(super) struct NameMatcher {
    /// `name="`.
    needle: Vec<u8>,
    words: [u64; 2],
    masks: [u64; 2],
}

impl NameMatcher {
    pub(super) fn new(name: &str) -> Self {
        Self::of_needle([name.as_bytes(), b"=\""].concat())
    }

    /// A matcher of `",name="`: the end of the label value before, then
    /// this label's name.
    pub(super) fn after_value(name: &str) -> Self {
        Self::of_needle([b"\",", name.as_bytes(), b"=\""].concat())
    }

    fn of_needle(needle: Vec<u8>) -> Self {
        let (mut words, mut masks) = ([0; 2], [0; 2]);
        for (i, &c) in needle.iter().take(16).enumerate() {
            words[i / 8] |= u64::from(c) << (8 * (i % 8));
            masks[i / 8] |= 0xff << (8 * (i % 8));
        }
        NameMatcher {
            needle,
            words,
            masks,
        }
    }

    /// The length of what it matches.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.needle.len()
    }

    /// Do the bytes of `s` from `i` start with what it matches?
    #[inline(always)]
    pub(super) fn matches(&self, s: &[u8], i: usize) -> bool {
        match (self.needle.len() <= 16, word(s, i), word(s, i + 8)) {
            (true, Some(a), Some(b)) => {
                a & self.masks[0] == self.words[0] && b & self.masks[1] == self.words[1]
            }
            _ => s.get(i..).is_some_and(|r| r.starts_with(&self.needle)),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn searches_are_byte_loops(s in prop::collection::vec(prop::sample::select(&b"ab\"\\\n=\xff\x7f\x22\x80"[..]), 0..40)) {
            prop_assert_eq!(
                find_quote(&s),
                s.iter().position(|&c| c == b'"' || c == b'\\' || c == b'\n')
            );
            prop_assert_eq!(find_newline(&s), s.iter().position(|&c| c == b'\n'));
        }

        #[test]
        fn same_bytes_is_equality(
            a in prop::collection::vec(prop::sample::select(&b"ab"[..]), 0..24),
            flip in prop::option::of((0usize..24, prop::sample::select(&b"abc"[..]))),
            longer in any::<bool>(),
        ) {
            let mut b = a.clone();
            if let Some((i, c)) = flip && i < b.len() {
                b[i] = c;
            }
            if longer {
                b.push(b'a');
            }
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert!(same_bytes(&a, &a));
        }

        #[test]
        fn matchers_are_starts_with(
            name in "[a-c_]{0,20}",
            s in prop::collection::vec(prop::sample::select(&b"abc_=\"x"[..]), 0..40),
            at in 0usize..8,
        ) {
            let m = NameMatcher::new(&name);
            let needle = format!("{name}=\"");
            prop_assert_eq!(
                m.matches(&s, at),
                s.get(at..).is_some_and(|r| r.starts_with(needle.as_bytes()))
            );
        }

        #[test]
        fn matchers_after_values_are_starts_with(
            name in "[a-c_]{0,20}",
            s in prop::collection::vec(prop::sample::select(&b"abc_=\",x"[..]), 0..40),
            at in 0usize..8,
        ) {
            let m = NameMatcher::after_value(&name);
            let needle = format!("\",{name}=\"");
            prop_assert_eq!(m.len(), needle.len());
            prop_assert_eq!(
                m.matches(&s, at),
                s.get(at..).is_some_and(|r| r.starts_with(needle.as_bytes()))
            );
            let s = [needle.as_bytes(), &s].concat();
            prop_assert!(m.matches(&s, 0));
        }

        #[test]
        fn matchers_find_their_names(
            name in "[a-z_]{1,20}",
            tail in prop::collection::vec(any::<u8>(), 0..20),
            flip in prop::option::of((0usize..24, any::<u8>())),
        ) {
            let m = NameMatcher::new(&name);
            let needle = format!("{name}=\"");
            let mut s = needle.clone().into_bytes();
            s.extend_from_slice(&tail);
            if let Some((i, b)) = flip && i < s.len() {
                s[i] = b;
            }
            prop_assert_eq!(m.matches(&s, 0), s.starts_with(needle.as_bytes()));
        }
    }
}
