//! `epic kernel` over the Jupyter protocol, driven by the venv's real
//! jupyter_client (tests/kernel_driver.py): a cell with an error and one that
//! still runs, completion, inspection (the text of `epic doc`), a picture, an
//! interrupt during extraction and one in a script loop, and a clean shutdown.
//! The kernelspec is the one `epic kernel install --prefix` writes.
mod common;
use common::*;
use std::path::Path;

#[test]
fn the_kernel_answers_jupyter_client() {
    let tmp = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(epic_bin())
        .args(["kernel", "install", "--prefix"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spec = tmp.path().join("share/jupyter/kernels/epic-rhai/kernel.json");
    assert!(String::from_utf8_lossy(&o.stdout).contains("epic-rhai"), "{}", String::from_utf8_lossy(&o.stdout));
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
    assert_eq!(spec["argv"][0].as_str(), Some(epic_bin().to_str().unwrap()));

    let expected = tmp.path().join("explain.txt");
    let docs: Vec<String> = epic::script::docs::lookup("explain").iter().map(|e| e.text()).collect();
    assert!(!docs.is_empty());
    std::fs::write(&expected, &docs[0]).unwrap();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/kernel_driver.py"))
        .env("JUPYTER_PATH", tmp.path().join("share/jupyter"))
        .env("EPIC_EXPECTED_EXPLAIN_DOC", &expected)
        .current_dir(root)
        .output()
        .expect("the venv's python (make notebook-kernel installs jupyter_client)");
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    assert!(o.status.success(), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("PASS a clean shutdown") && !out.contains("FAIL"), "{out}");
}

#[test]
fn without_a_connection_file_the_kernel_says_how_to_start_it() {
    let o = std::process::Command::new(epic_bin()).arg("kernel").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("epic kernel install") && err.contains("-f"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("connection.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let o = std::process::Command::new(epic_bin()).arg("kernel").arg("-f").arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("connection.json is not a Jupyter connection file"), "{err}");
}
