//! Generates the Remote-Write 1.0 types from `proto/` with prost.
//!
//! protox compiles the `.proto` files in pure Rust, so building promgate never
//! needs a system `protoc`. A second, lenient copy (package
//! `prometheus.lenient`, every `string` read as `bytes`) is generated from
//! the same files for the reference decoder, which must see a series whose
//! label is not UTF-8 as that series' fault rather than the whole message's.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = ["remote.proto", "types.proto"];
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;

    let lenient = PathBuf::from(std::env::var("OUT_DIR")?).join("lenient");
    std::fs::create_dir_all(&lenient)?;
    for file in files {
        let text = std::fs::read_to_string(PathBuf::from("proto").join(file))?
            .replace("package prometheus;", "package prometheus.lenient;")
            .replace("  string ", "  bytes ");
        std::fs::write(lenient.join(file), text)?;
    }
    let descriptors = protox::compile(files, [&lenient])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
