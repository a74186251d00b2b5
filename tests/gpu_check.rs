//! tools/gpu-check.sh, the script the GPU machine runs from the device bundle,
//! runs here on the CPU at tiny sizes (`--device cpu --tiny`), so that it is not
//! broken when a GPU is next at hand; and its agreement test fails where the two
//! demos disagree.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_gpu_check_passes_on_the_cpu_at_tiny_sizes() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(repo().join("tools/gpu-check.sh"))
        .arg(out.path())
        .args(["--device", "cpu", "--tiny"])
        .env("EPIC", epic_bin())
        .output()
        .unwrap();
    let log = std::fs::read_to_string(out.path().join("gpu_check.log")).unwrap_or_default();
    assert!(o.status.success(), "gpu-check failed:\n{}\n{log}", String::from_utf8_lossy(&o.stderr));
    let r = read_json(&out.path().join("gpu_check.json"));
    assert_eq!(r["device"], "cpu");
    assert_eq!(r["gpu"], Value::Null, "no GPU description on the CPU");
    assert_eq!(r["crosscheck"], "ok");
    assert_eq!(r["failures"].as_array().unwrap().len(), 0, "{r}");

    // The same demo twice on one CPU: every quantity identical.
    let a = &r["agreement"];
    assert_eq!(a["prototype_slots_equal"].as_f64(), Some(1.0));
    assert_eq!(a["purity_before"][2].as_f64(), Some(0.0));
    assert_eq!(a["purity_after"][2].as_f64(), Some(0.0));
    assert_eq!(a["purity_before"][0], a["purity_before"][1]);
    // 10 classes × val_per_class 1.
    assert_eq!(a["explanations_same_channels"], "10/10");
    let change = a["max_logit_change"].as_f64().unwrap();
    assert!((0.0..1e-4).contains(&change), "{change}");

    // Three precisions of Lite0 (no torchvision ResNet-50 at tiny sizes).
    let rows = r["backbone"].as_array().unwrap();
    let precisions: Vec<&str> = rows.iter().map(|x| x["precision"].as_str().unwrap()).collect();
    assert_eq!(precisions, ["f32", "bf16", "f16"]);
    assert!(rows.iter().all(|x| x["images_per_s"].as_f64().unwrap() > 0.0 && x["batch"] == 4));
    // On the CPU, batch_size auto is 32 capped at the maximum asked (8).
    assert_eq!(r["batch_size_auto"].as_i64(), Some(8));
    // The loader saw each CC0 photo twice.
    let photos = std::fs::read_dir(fixture("efficientnet_lite0/photos")).unwrap().count() as i64;
    assert_eq!(r["loader"]["images"].as_i64(), Some(2 * photos));
    let steps = r["adam"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert!(steps.iter().all(|s| s["seconds"].as_f64().unwrap() > 0.0 && s["memory_mib"].as_f64() == Some(0.0)));
    assert_eq!(r["selection"]["images"].as_i64(), Some(10_000));
}

#[test]
fn a_demo_that_disagrees_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("cpu");
    let o = Command::new(epic_bin())
        .current_dir(repo())
        .args(["run", "--device", "cpu", "scripts/gpu_check.rhai", "part=demo", "tiny=true"])
        .arg(format!("out={}", demo.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let state = read_json(&demo.join("state.json"));

    let check = |tamper: &dyn Fn(&mut Value)| {
        let mut other = state.clone();
        tamper(&mut other);
        let path = dir.path().join("other.json");
        std::fs::write(&path, other.to_string()).unwrap();
        Command::new(epic_bin())
            .current_dir(repo())
            .args(["run", "--device", "cpu", "scripts/gpu_check.rhai", "part=costs", "tiny=true"])
            .arg(format!("out={}", dir.path().display()))
            .arg(format!("cpu={}", demo.join("state.json").display()))
            .arg(format!("dev={}", path.display()))
            .output()
            .unwrap()
    };

    // One prototype slot of C·5·2 differs: within the 99 % the check allows.
    let o = check(&|s| s["prototypes_after"][0][0] = Value::from(-1));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let slots = read_json(&dir.path().join("gpu_check.json"))["agreement"]["prototype_slots_equal"].as_f64().unwrap();
    let c = state["prototypes_after"].as_array().unwrap().len() as f64;
    assert!((slots - (1.0 - 1.0 / (2.0 * 5.0 * c))).abs() < 1e-12, "{slots}");

    // Purity after training off by 2e-4, and an explanation with other channels: both named.
    let o = check(&|s| {
        let p = s["purity_after"].as_f64().unwrap();
        s["purity_after"] = Value::from(p + 2e-4);
        s["explanations"][0]["channels"][0] = Value::from(-1);
    });
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("purity after differs by more than 1e-4"), "{stderr}");
    assert!(stderr.contains("an explanation's channels differ"), "{stderr}");
    assert!(!stderr.contains("purity before"), "{stderr}");
}
