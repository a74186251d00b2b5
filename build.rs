//! Link-time arrangements for libtorch, so that `target/*/epic` runs as it is.
//!
//! 1. An rpath to libtorch's `lib/` folder: binaries, tests, benches and examples
//!    find `libtorch*.so` without `LD_LIBRARY_PATH`.
//! 2. `libtorch_cuda.so`, where the libtorch build has one, is linked with
//!    `--no-as-needed`. Nothing in epic references a CUDA symbol, so under the
//!    default `--as-needed` the linker would drop the library, the CUDA backend
//!    would never register, and `Device::cuda_if_available()` would be false
//!    even on a GPU machine. Check with `readelf -d target/debug/epic | grep NEEDED`
//!    (the test `toolchain_links_libtorch_cuda` does exactly that).
//!
//! The libtorch folder comes from `LIBTORCH` (set in `.cargo/config.toml` to the
//! project venv's torch wheel) or from torch-sys's `DEP_TCH_LIBTORCH_LIB`.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let lib_dir = std::env::var_os("LIBTORCH")
        .map(|p| PathBuf::from(p).join("lib"))
        .or_else(|| std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from));
    let Some(lib_dir) = lib_dir else {
        println!("cargo:warning=LIBTORCH is not set: no rpath written; run tools/setup.sh");
        return;
    };
    // Resolve the venv symlink so the rpath survives a moved or re-created link.
    let lib_dir = lib_dir.canonicalize().unwrap_or(lib_dir);
    if !lib_dir.join("libtorch_cpu.so").exists() {
        println!("cargo:warning=no libtorch_cpu.so in {}: run tools/setup.sh", lib_dir.display());
        return;
    }
    let lib = lib_dir.display();
    println!("cargo:rustc-env=EPIC_LIBTORCH_LIB={lib}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
