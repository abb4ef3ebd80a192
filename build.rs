//! Build script. Compiles the DPDK C shim and its bindings when feature `dpdk` is on (see native/).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_RDMA").is_some() {
        rdma_shim();
    }
}

/// Feature `rdma`: compiles src/transport/rdma/shim.c (see its header for why a shim) against the
/// system's libibverbs-dev and librdmacm-dev with the system C compiler, and links both libraries.
fn rdma_shim() {
    use std::process::Command;
    let src = "src/transport/rdma/shim.c";
    println!("cargo:rerun-if-changed={src}");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("aurora_rdma_shim.o");
    let lib = out.join("libaurora_rdma_shim.a");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let run = |cmd: &mut Command, what: &str| {
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
        assert!(
            status.success(),
            "{what} failed ({status}): feature rdma needs a C compiler and the verbs headers \
             (apt-get install gcc libibverbs-dev librdmacm-dev, see hack/install-deps.sh)"
        );
    };
    run(
        Command::new(&cc)
            .args([
                "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror", "-c", src, "-o",
            ])
            .arg(&obj),
        "compiling the rdma shim",
    );
    run(
        Command::new("ar").arg("crs").arg(&lib).arg(&obj),
        "archiving the rdma shim",
    );
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=aurora_rdma_shim");
    println!("cargo:rustc-link-lib=dylib=ibverbs");
    println!("cargo:rustc-link-lib=dylib=rdmacm");
}
