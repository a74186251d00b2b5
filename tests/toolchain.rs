//! The build's link arrangements (build.rs): an rpath to libtorch, and
//! libtorch_cuda kept as a dependency under --as-needed, so that
//! `Device::cuda_if_available()` can be true on a GPU machine.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn dynamic_section(bin: &Path) -> String {
    let o = Command::new("readelf").arg("-d").arg(bin).output().expect("readelf (binutils) is installed");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn binary_has_an_rpath_to_libtorch_and_runs_without_ld_library_path() {
    let lib = env!("EPIC_LIBTORCH_LIB");
    let dynamic = dynamic_section(&epic_bin());
    let rpath = dynamic.lines().find(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)")).expect("an rpath entry");
    assert!(rpath.contains(lib), "rpath {rpath:?} lacks {lib}");
    let o = Command::new(epic_bin()).arg("--version").env_remove("LD_LIBRARY_PATH").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn libtorch_cuda_stays_linked_when_libtorch_has_it() {
    let lib = Path::new(env!("EPIC_LIBTORCH_LIB"));
    let dynamic = dynamic_section(&epic_bin());
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(needed.iter().any(|l| l.contains("libtorch_cpu.so")), "{needed:?}");
    if lib.join("libtorch_cuda.so").exists() {
        assert!(
            needed.iter().any(|l| l.contains("libtorch_cuda.so")),
            "libtorch_cuda.so dropped by --as-needed: {needed:?}"
        );
    }
}

#[test]
fn cuda_is_available_exactly_when_a_gpu_is_present() {
    // On a machine with an NVIDIA driver and device, the linked CUDA backend must
    // register; on one without, libtorch must say no rather than fail.
    let gpu_present =
        Path::new("/dev/nvidia0").exists() && Path::new(env!("EPIC_LIBTORCH_LIB")).join("libtorch_cuda.so").exists();
    assert_eq!(tch::Cuda::is_available(), gpu_present);
    let device = epic::device::parse_device("auto").unwrap();
    assert_eq!(device.is_cuda(), gpu_present);
}
