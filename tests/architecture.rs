//! The data flow of ARCHITECTURE.md, checked over the source: no module of
//! `src/` refers to one later in the flow
//! (model → data → features → study → prototypes → disentangle → explain → render,
//! then the faces, and the kernel over them), and the shared leaves (config, io, device, …) refer to
//! leaves only. Every path that names another top-level module — `crate::x`,
//! or `super::…` climbing out of the file's own module — counts, in code and in
//! `use` lines alike; comments do not.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module's place in the flow; 0 is a shared leaf.
fn layer(module: &str) -> Option<u32> {
    Some(match module {
        "check" | "config" | "device" | "interrupt" | "io" | "memory" | "progress" | "report" => 0,
        "model" => 1,
        "data" => 2,
        "features" => 3,
        "study" => 4,
        "prototypes" => 5,
        "disentangle" => 6,
        "explain" => 7,
        "render" => 8,
        "script" | "notebook" => 9,
        // The Jupyter kernel serves script sessions and shows notebook outputs.
        "kernel" => 10,
        _ => return None,
    })
}

/// `error.rs` names each module's error type to wrap it, and `lib.rs` declares
/// them all: the two files outside the flow.
const OUTSIDE_THE_FLOW: &[&str] = &["error", "lib"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/features/bank.rs` → ["features", "bank"].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// The top-level modules that `line` refers to from a file at `module`.
fn references(line: &str, module: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = line.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        let boundary = i == 0 || !is_ident(bytes[i - 1]);
        if boundary && rest.starts_with("crate::") {
            let name: String =
                rest["crate::".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.push(name);
            i += "crate::".len();
        } else if boundary && rest.starts_with("super::") {
            let mut ups = 0;
            let mut r = rest;
            while let Some(t) = r.strip_prefix("super::") {
                ups += 1;
                r = t;
            }
            // A file's own module is `module`; `super` from a file `a/b.rs` is `a`.
            if ups >= module.len() {
                let name: String = r.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.push(name);
            }
            i += ups * "super::".len();
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

#[test]
fn no_module_imports_one_later_in_the_data_flow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = module_path(rel);
        let Some(top) = module.first().cloned() else { continue };
        if top == "main" || top == "bin" {
            continue; // the binary is a face over the public API
        }
        if OUTSIDE_THE_FLOW.contains(&top.as_str()) {
            continue;
        }
        let Some(own) = layer(&top) else {
            unknown.push(rel.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for target in references(code, &module) {
                if target == top || target.is_empty() || OUTSIDE_THE_FLOW.contains(&target.as_str()) {
                    continue;
                }
                // Items of lib.rs itself (crate::Result, crate::Study re-exports) are not modules.
                let Some(theirs) = layer(&target) else { continue };
                let allowed = if own == 0 { theirs == 0 } else { theirs <= own };
                if !allowed {
                    edges.entry((top.clone(), target)).or_default().push(format!("{}:{}", rel.display(), n + 1));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "modules with no place in the flow (add them to layer()): {unknown:?}");
    let report: Vec<String> =
        edges.iter().map(|((from, to), at)| format!("{from} → {to} at {}", at.join(", "))).collect();
    assert!(report.is_empty(), "imports against the data flow:\n{}", report.join("\n"));
}

#[test]
fn the_check_sees_every_kind_of_reference() {
    let m = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
    assert_eq!(references("use crate::features::Bank;", &m("model/network")), ["features"]);
    assert_eq!(references("let x = super::super::render::Canvas::new();", &m("model/network")), ["render"]);
    assert_eq!(references("use super::layers::Linear;", &m("model/network")), Vec::<String>::new());
    assert_eq!(references("use super::Bank;", &m("features")), ["Bank"]);
    assert_eq!(references("not_crate::x", &m("model")), Vec::<String>::new());
}
