//! Shared helpers for the integration tests: fixture paths and tensor comparison.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// `tests/fixtures/<rel>` in this checkout.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// The reference vectors (tests/fixtures/reference/vectors.safetensors) by name.
pub fn reference_vectors() -> HashMap<String, Tensor> {
    epic::io::load_tensors(&fixture("reference/vectors.safetensors")).expect("reference vectors").into_iter().collect()
}

/// tests/fixtures/reference/expected.json.
pub fn reference_expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("reference/expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// max |a − b| in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    epic::report::max_abs_diff(a, b).expect("comparable tensors")
}

/// A tensor's values as f64, flattened, on the CPU.
pub fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Double).reshape([-1])).expect("values")
}

/// A tensor's values as i64, flattened, on the CPU.
pub fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Int64).reshape([-1])).expect("ints")
}

/// Runs the venv's Python `code` with `args` (tools/setup.sh installs torch and
/// torchvision there); panics with its stderr on failure, else returns stdout.
pub fn run_python(code: &str, args: &[&str]) -> String {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let o = std::process::Command::new(py)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("the venv's python (tools/setup.sh)");
    assert!(o.status.success(), "python failed:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The epic binary built for this test run.
pub fn epic_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epic"))
}

/// Standard-normal f32 tensor from a seeded generator of its own (splitmix64 +
/// Box-Muller), so that tests running in parallel threads do not share
/// libtorch's global RNG and every run sees the same numbers.
pub fn randn(shape: &[i64], seed: u64) -> Tensor {
    let mut state = seed.wrapping_add(0x9E3779B97F4A7C15);
    let mut next = || {
        state = state.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let (u1, u2) = (next().max(1e-300), next());
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect();
    Tensor::from_slice(&v).reshape(shape)
}

/// `epic run scripts/demo.rhai` on the CPU, sized for tests that run it many
/// times: 3 training images per class at 64×64, two schedule steps of one epoch,
/// one explanation; outputs to `out`, its bank cached in `cache`. Callers add
/// their own arguments and pipes.
pub fn tiny_demo(out: &std::path::Path, cache: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(epic_bin());
    c.args(["run", "scripts/demo.rhai", "--device", "cpu"])
        .args([
            "dataset.per_class=3",
            "dataset.val_per_class=1",
            "prototypes.scheduler.num_prototypes_start=3",
            "prototypes.scheduler.num_prototypes_end=2",
            "prototypes.scheduler.num_steps=2",
            "training.num_epochs_per_prototypes=1",
            "+model.resize=64",
            "+model.crop=64",
            "visualization.num_explanations=1",
            "visualization.num_prototypes=2",
            "visualization.num_prototypical_channels=2",
            "visualization.num_channels_shown=2",
            // The report and evaluation have their own tests (report_browser, explain_run).
            "report=false",
        ])
        .arg(format!("output_path={}", out.display()))
        .arg(format!("dataloader.cache={}", cache.display()))
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}
