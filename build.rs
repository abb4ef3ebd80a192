//! Build script. Compiles the DPDK C shim and its bindings when feature `dpdk` is on (see native/),
//! and the verbs/rdma_cm shim when feature `rdma` is on (src/transport/rdma/shim.c).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
    if std::env::var_os("CARGO_FEATURE_RDMA").is_some() {
        rdma_shim();
    }
}

/// DPDK: pkg-config `libdpdk` >= 22.11, the shim in native/ compiled with its flags, bindgen over
/// the shim's header with an allowlist. Every failure names the Debian packages that fix it.
#[cfg(feature = "dpdk")]
mod dpdk {
    use std::path::PathBuf;

    const PACKAGES: &str = "apt-get install libdpdk-dev dpdk clang libclang-dev pkg-config \
                            (or run hack/install-deps.sh)";

    pub fn build() {
        println!("cargo:rerun-if-changed=native/aurora_dpdk.c");
        println!("cargo:rerun-if-changed=native/aurora_dpdk.h");
        let lib = pkg_config::Config::new()
            .atleast_version("22.11")
            .probe("libdpdk")
            .unwrap_or_else(|e| {
                panic!(
                    "feature `dpdk` needs DPDK >= 22.11 found by pkg-config as `libdpdk`: {e}\n\
                     Install it: {PACKAGES}"
                )
            });
        // pkg-config's cflags beyond include paths (`-include rte_config.h -march=corei7`, which
        // the headers need for SSE4.2) come from `pkg-config --cflags`; the crate only exposes
        // include paths and defines, so ask for the rest directly.
        let cflags = std::process::Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .unwrap_or_else(|e| {
                panic!("running pkg-config --cflags libdpdk failed: {e}. {PACKAGES}")
            });
        let cflags = String::from_utf8_lossy(&cflags.stdout).to_string();
        let flags: Vec<&str> = cflags.split_whitespace().collect();

        let mut cc = cc::Build::new();
        cc.file("native/aurora_dpdk.c").warnings(true).opt_level(2);
        for f in &flags {
            cc.flag(f);
        }
        cc.try_compile("aurora_dpdk_shim").unwrap_or_else(|e| {
            panic!("compiling native/aurora_dpdk.c failed: {e}\nInstall: {PACKAGES}")
        });
        // The shim's own DPDK libraries (pkg-config already emitted -l lines for all of libdpdk).
        let _ = lib;

        let mut clang_args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        clang_args.push("-Inative".into());
        let bindings = bindgen::Builder::default()
            .header("native/aurora_dpdk.h")
            .clang_args(&clang_args)
            .allowlist_function("shim_.*")
            .allowlist_type("shim_.*")
            .opaque_type("rte_mbuf")
            .opaque_type("rte_mempool")
            .derive_default(true)
            .layout_tests(false)
            .generate()
            .unwrap_or_else(|e| {
                panic!(
                    "bindgen over native/aurora_dpdk.h failed: {e}\n\
                     bindgen needs libclang: {PACKAGES}"
                )
            });
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        bindings
            .write_to_file(out.join("aurora_dpdk.rs"))
            .expect("writing the bindings to OUT_DIR");
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
