//! Shared helpers for the integration tests: fixture paths and tensor comparison.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// `tests/fixtures/<rel>` in this checkout.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The reference vectors (tests/fixtures/reference/vectors.safetensors) by name.
pub fn reference_vectors() -> HashMap<String, Tensor> {
    epic::io::load_tensors(&fixture("reference/vectors.safetensors"))
        .expect("reference vectors")
        .into_iter()
        .collect()
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
    Vec::<f64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Double).reshape([-1]))
        .expect("values")
}

/// A tensor's values as i64, flattened, on the CPU.
pub fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Int64).reshape([-1])).expect("ints")
}

/// The epic binary built for this test run.
pub fn epic_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epic"))
}
