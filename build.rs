//! Builds the admin gRPC API (`proto/admin.proto`) when the `admin` feature is on, with the `protoc`
//! shipped by the `protoc-bin-vendored` crate, so no system protoc is needed.

fn main() {
    println!("cargo:rerun-if-changed=proto/admin.proto");
    println!("cargo:rerun-if-changed=build.rs");
    // The compiler's version, for the resource's `process.runtime.version`.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default();
    println!("cargo:rustc-env=OLB_RUSTC_VERSION={version}");
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
