//! Generates the protobuf types of `proto/` with prost: Remote-Write 1.0 and
//! 2.0, and the client data model that pushes use.
//!
//! protox compiles the `.proto` files in pure Rust, so building promgate never
//! needs a system `protoc`. A second, lenient copy of each Remote-Write
//! schema (package `<package>.lenient`, every `string` read as `bytes`) is
//! generated from the same files for the reference decoders, which must see a
//! series whose label is not UTF-8 as that series' fault rather than the
//! whole message's. The client model needs no such copy: a pushed body is
//! accepted or refused whole.

use std::path::{Path, PathBuf};

/// Each Remote-Write schema: its include directory and files.
const SCHEMAS: [(&str, &[&str]); 2] = [
    ("proto", &["remote.proto", "types.proto"]),
    ("proto/v2", &["write.proto"]),
];

/// Schemas generated as they are, without a lenient copy.
const STRICT_SCHEMAS: [(&str, &[&str]); 1] = [("proto/client", &["metrics.proto"])];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    for (dir, files) in STRICT_SCHEMAS {
        prost_build::Config::new().compile_fds(protox::compile(files, [dir])?)?;
    }
    for (dir, files) in SCHEMAS {
        let descriptors = protox::compile(files, [dir])?;
        prost_build::Config::new().compile_fds(descriptors)?;

        let lenient = out.join("lenient").join(dir);
        std::fs::create_dir_all(&lenient)?;
        for file in files {
            let text = std::fs::read_to_string(Path::new(dir).join(file))?;
            let text = text
                .lines()
                .map(|line| match line.strip_prefix("package ") {
                    Some(package) => format!("package {}.lenient;", package.trim_end_matches(';')),
                    None => line.replace(" string ", " bytes "),
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(lenient.join(file), text)?;
        }
        let descriptors = protox::compile(files, [&lenient])?;
        prost_build::Config::new().compile_fds(descriptors)?;
    }
    Ok(())
}
