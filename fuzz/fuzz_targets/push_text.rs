//! Any bytes as a pushed text body: parsing and checking never panic, and a
//! body that passes both, written back in the text format, parses to the
//! same families and passes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promgate::ingest::{check_push, parse_text};

mod render;

fuzz_target!(|data: &[u8]| {
    let Ok(families) = parse_text(data) else {
        return;
    };
    if check_push(&families).is_err() {
        return;
    }
    let text = render::render(&families);
    let again = parse_text(text.as_bytes())
        .unwrap_or_else(|e| panic!("re-rendered body refused: {e}\n{text}"));
    assert!(
        render::same(&families, &again, true),
        "re-rendered body parses otherwise:\n{text}\n{families:?}\n{again:?}"
    );
    check_push(&again).expect("re-rendered body passes the check");
});
