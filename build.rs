//! Builds the admin gRPC API (`proto/admin.proto`) when the `admin` feature is on, with the `protoc`
//! shipped by the `protoc-bin-vendored` crate, so no system protoc is needed.

fn main() {
    println!("cargo:rerun-if-changed=proto/admin.proto");
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "admin")]
    if let Err(e) = admin() {
        panic!("building the admin API from proto/admin.proto: {e}");
    }
}

#[cfg(feature = "admin")]
fn admin() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/admin.proto"], &["proto"])?;
    Ok(())
}
