//! Generates the Remote-Write 1.0 types from `proto/` with prost.
//!
//! protox compiles the `.proto` files in pure Rust, so building promgate never
//! needs a system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["remote.proto", "types.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
