//! Remote-Write 1.0 bodies (snappy, zstd, identity) through
//! `ingest::negotiate` and the reused `Decoder`, as the write handler runs
//! them, into a store and back off its page: see `write.rs` for the input
//! format and every rule checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promgate::ingest::Protocol;

mod write;

fuzz_target!(|data: &[u8]| {
    write::run(data, "application/x-protobuf", Protocol::RemoteWrite1);
});
