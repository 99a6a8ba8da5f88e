//! Any bytes as a pushed delimited protobuf body: parsing and checking never
//! panic, and families that pass both, written in the text format, parse
//! back to the same samples (HELP aside where the text format cannot hold
//! it: empty, or starting with a blank). A body with native histograms has
//! no text form (the text format has none): only the first part holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promgate::ingest::{check_push, parse_delimited, parse_text};

mod render;

fuzz_target!(|data: &[u8]| {
    let Ok(families) = parse_delimited(data) else {
        return;
    };
    if check_push(&families).is_err() {
        return;
    }
    if families.iter().any(|f| !f.natives.is_empty()) {
        return;
    }
    let text = render::render(&families);
    let again = parse_text(text.as_bytes())
        .unwrap_or_else(|e| panic!("families refused as text: {e}\n{text}"));
    let help_fits = families.iter().all(|f| {
        f.help
            .as_deref()
            .is_none_or(|h| !h.is_empty() && !h.starts_with([' ', '\t']))
    });
    assert!(
        render::same(&families, &again, help_fits),
        "families read otherwise as text:\n{text}\n{families:?}\n{again:?}"
    );
});
