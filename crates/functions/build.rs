//! Generates the RunFunction client and server (the server for the tests'
//! fake functions) with protox, so a fresh machine needs no `protoc`.
//! Maps are BTreeMaps so an encoded request is the same bytes every time:
//! the request's tag, and the cache keyed by it, depend on that.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../proto/crossplane/fn/v1/run_function.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["../../proto"])?;
    tonic_prost_build::configure()
        .btree_map(".")
        .compile_fds(descriptors)?;
    Ok(())
}
