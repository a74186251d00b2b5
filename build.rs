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
//! 3. Where that libtorch sits without the CUDA libraries beside it (a torch wheel
//!    unpacked without its `nvidia-*` dependencies, as the device bundle does), the
//!    link allows undefined symbols in shared libraries: `libcudart` and the rest
//!    are resolved on the machine that runs the binary, by its own torch install.
//! 4. A libtorch whose version no tch flavour binds stops the build with a message
//!    that names the supported versions (see `tools/flavour.sh`).
//!
//! The libtorch folder comes from `LIBTORCH` (set in `.cargo/config.toml` to the
//! project venv's torch wheel, or by `tools/flavour.sh`) or from torch-sys's
//! `DEP_TCH_LIBTORCH_LIB`.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed={}", file!());
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
    if let Some(version) = libtorch_version(&lib_dir) {
        let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
        if !SUPPORTED.contains(&minor.as_str()) {
            panic!(
                "libtorch {version} at {} is not supported: epic builds against PyTorch {}. \
                 Point LIBTORCH (or tools/flavour.sh --python/--torch) at one of those.",
                lib_dir.display(),
                SUPPORTED.join(", ")
            );
        }
    }
    let lib = lib_dir.display();
    println!("cargo:rustc-env=EPIC_LIBTORCH_LIB={lib}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        // A pip wheel keeps libcudart & co. in site-packages/nvidia/, which
        // libtorch_cuda's RPATH names relative to itself.
        let site = lib_dir.parent().and_then(|torch| torch.parent());
        if !site.is_some_and(|site| site.join("nvidia").is_dir()) {
            println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
        }
    }
}

/// PyTorch minor versions that some tch release binds (tch 0.24, 0.25, 0.26).
const SUPPORTED: [&str; 3] = ["2.11", "2.12", "2.13"];

/// The version of the libtorch in `lib_dir`: a wheel's `torch/version.py`, or a
/// C++ distribution's `build-version`.
fn libtorch_version(lib_dir: &std::path::Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        println!("cargo:rerun-if-changed={}", root.join("version.py").display());
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_string())
}
