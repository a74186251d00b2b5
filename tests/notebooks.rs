//! The executed notebooks (`make notebooks` writes them to .notebook/executed/;
//! quickstart and rhai_cells in the evcxr kernel, epic_rhai in `epic kernel`):
//! every code cell ran, no output is an error, the inline pictures are PNGs that
//! decode (the explanations at their figure's size), and the purity numbers the
//! notebooks show match `epic run scripts/demo.rhai` on the same data.
//!
//! Ignored by a plain `cargo test`: `make test` runs it after executing the notebooks.
mod common;
use common::*;
use epic::render::figures::explanation_size;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The overrides both notebooks apply to configs/demo_fashion_lite0.yaml.
const TINY: &[&str] = &[
    "dataset.per_class=3",
    "dataset.val_per_class=1",
    "prototypes.scheduler.num_prototypes_start=3",
    "prototypes.scheduler.num_prototypes_end=2",
    "prototypes.scheduler.num_steps=2",
    "training.num_epochs_per_prototypes=1",
    "+model.resize=64",
    "+model.crop=64",
    "visualization.num_prototypes=4",
    "visualization.num_prototypical_channels=3",
    "visualization.num_channels_shown=2",
];

fn executed(name: &str) -> PathBuf {
    let dir = std::env::var_os("EPIC_EXECUTED_NOTEBOOKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".notebook/executed"));
    dir.join(format!("{name}.ipynb"))
}

/// Standard base64 (as nbformat stores image/png), ignoring whitespace.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    };
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').map(val).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &d)| acc | (d as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A notebook output's text: nbformat stores strings or lists of lines.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// What one executed notebook shows.
struct Shown {
    /// (width, height) of every inline PNG.
    pictures: Vec<(u32, u32)>,
    /// Every text/html output.
    html: Vec<String>,
    /// Every stdout stream, joined.
    stdout: String,
    /// Every stderr stream, joined.
    stderr: String,
}

fn read(name: &str) -> Shown {
    let path = executed(name);
    let nb: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make notebooks`", path.display())),
    )
    .unwrap();
    let mut shown = Shown { pictures: Vec::new(), html: Vec::new(), stdout: String::new(), stderr: String::new() };
    let mut code_cells = 0;
    for (i, cell) in nb["cells"].as_array().unwrap().iter().enumerate() {
        if cell["cell_type"] != "code" {
            continue;
        }
        code_cells += 1;
        assert!(cell["execution_count"].is_number(), "{name} cell {i} did not run");
        for out in cell["outputs"].as_array().unwrap() {
            let kind = out["output_type"].as_str().unwrap();
            assert_ne!(kind, "error", "{name} cell {i}: {out}");
            if kind == "stream" {
                let t = text(&out["text"]);
                assert!(!t.contains("EVCXR_") && !t.contains("panicked"), "{name} cell {i}: {t}");
                if out["name"] == "stdout" {
                    shown.stdout += &t;
                } else {
                    shown.stderr += &t;
                }
                continue;
            }
            let data = &out["data"];
            assert!(data.get("text/plain").is_some(), "{name} cell {i}: an output without text/plain: {out}");
            if let Some(png) = data.get("image/png") {
                let bytes = base64_decode(&text(png));
                let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
                    .unwrap_or_else(|e| panic!("{name} cell {i}: the PNG does not decode: {e}"));
                shown.pictures.push((img.width(), img.height()));
            }
            if let Some(html) = data.get("text/html") {
                shown.html.push(text(html));
            }
        }
    }
    assert!(code_cells >= 5, "{name}: {code_cells} code cells");
    shown
}

/// (before, after) of the mean row of the notebook's purity table.
fn mean_purity(name: &str, shown: &Shown) -> (f64, f64) {
    let table = shown.html.iter().find(|h| h.contains("class=\"epic-purity\"")).unwrap_or_else(|| {
        panic!("{name}: no purity table among {} HTML outputs", shown.html.len());
    });
    let row = table.split("<tr data-stat=\"mean\">").nth(1).unwrap().split("</tr>").next().unwrap();
    let cells: Vec<f64> = row
        .split("<td>")
        .skip(2)
        .take(2)
        .map(|c| c.split("</td>").next().unwrap().parse().unwrap_or_else(|e| panic!("{name}: {row}: {e}")))
        .collect();
    (cells[0], cells[1])
}

#[test]
#[ignore = "needs the executed notebooks: make notebooks"]
fn the_executed_notebooks_show_pictures_and_the_purity_of_a_cli_run() {
    let quick = read("quickstart");
    let rhai = read("rhai_cells");
    let kernel = read("epic_rhai");
    let figure = explanation_size(3, 4);
    // quickstart: a training image, the purity plot, the explanation.
    assert_eq!(quick.pictures.len(), 3, "{:?}", quick.pictures);
    assert!(quick.pictures.contains(&(64, 64)) && quick.pictures.contains(&(1000, 1208)), "{:?}", quick.pictures);
    assert!(quick.pictures.contains(&figure), "{:?}", quick.pictures);
    // rhai_cells: prototype grids before and after, the purity plot, the explanation.
    assert_eq!(rhai.pictures.len(), 4, "{:?}", rhai.pictures);
    assert!(rhai.pictures.contains(&(1000, 1208)) && rhai.pictures.contains(&figure), "{:?}", rhai.pictures);
    // The explanation as numbers (HTML), and an error message that names its cell.
    assert!(quick.html.iter().any(|h| h.contains("class=\"epic-explanation\"")));
    assert!(rhai.html.iter().any(|h| h.contains("class=\"epic-explanation\"")));
    assert!(rhai.stdout.contains(":2:1: rotate cannot take arguments"), "{}", rhai.stdout);
    // epic_rhai (the Rhai kernel): grids before and after, the purity plot, the
    // explanation and the contrast, with the progress lines in the cells' stderr.
    assert_eq!(kernel.pictures.len(), 5, "{:?}", kernel.pictures);
    assert!(kernel.pictures.contains(&(1000, 1208)) && kernel.pictures.contains(&figure), "{:?}", kernel.pictures);
    let grids: Vec<_> = kernel.pictures.iter().filter(|p| rhai.pictures.contains(p) && **p != figure).collect();
    assert!(grids.len() >= 3, "the grids match rhai_cells': {:?} vs {:?}", kernel.pictures, rhai.pictures);
    assert!(kernel.stderr.contains("fit_head: 10 classes"), "{}", kernel.stderr);
    assert!(kernel.stdout.contains(": p = "), "{}", kernel.stdout);

    // The Rhai notebook passes the same overrides to config(path, overrides).
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/notebooks/epic_rhai.ipynb"))
            .unwrap();
    for o in TINY {
        assert!(source.contains(&format!("\\\"{o}\\\"")), "epic_rhai.ipynb lacks the override {o}");
    }

    // The same data through the command line.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = std::process::Command::new(epic_bin())
        .args(["run", "scripts/demo.rhai"])
        .args(TINY)
        .arg(format!("output_path={}", out.display()))
        .arg(format!("dataloader.cache={}", tmp.path().join("cache").display()))
        .args(["--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("purity_after_orthogonal_train.json")).unwrap())
            .unwrap();
    let cli = (json["purity_before_train"].as_f64().unwrap(), json["purity_after_train"].as_f64().unwrap());
    for (name, shown) in [("quickstart", &quick), ("rhai_cells", &rhai), ("epic_rhai", &kernel)] {
        let (before, after) = mean_purity(name, shown);
        eprintln!("{name}: purity {before} → {after}; epic run: {} → {}", cli.0, cli.1);
        // The tables show 6 decimals.
        assert!(
            (before - cli.0).abs() <= 6e-7 && (after - cli.1).abs() <= 6e-7,
            "{name}: {before} → {after} vs {cli:?}"
        );
        assert!(after > before);
    }
}

#[test]
fn base64_decodes_as_nbformat_writes_it() {
    assert_eq!(base64_decode("aGVsbG8gd29ybGQ=\n"), b"hello world");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
    assert_eq!(base64_decode("YQ=="), b"a");
}

/// The notebook dylib that evcxr built for the executed notebooks keeps
/// libtorch_cuda (epic-nb runs ../build.rs), as the binary does (tests/toolchain.rs).
#[test]
#[ignore = "needs the notebooks' build of epic-nb: make notebooks"]
fn the_notebook_dylib_keeps_libtorch_cuda_linked() {
    let lib = Path::new(env!("EPIC_LIBTORCH_LIB"));
    let evcxr = Path::new(env!("CARGO_MANIFEST_DIR")).join(".notebook/evcxr");
    let dylibs: Vec<PathBuf> = std::fs::read_dir(&evcxr)
        .unwrap_or_else(|e| panic!("{}: {e}; run make notebooks", evcxr.display()))
        .flatten()
        .flat_map(|slot| std::fs::read_dir(slot.path().join("target")).into_iter().flatten().flatten())
        .map(|triple| triple.path().join("debug/libepic_nb.so"))
        .filter(|p| p.is_file())
        .collect();
    assert!(!dylibs.is_empty(), "no libepic_nb.so under {}; run make notebooks", evcxr.display());
    for dylib in dylibs {
        let o = std::process::Command::new("readelf").arg("-d").arg(&dylib).output().expect("readelf");
        let dynamic = String::from_utf8_lossy(&o.stdout);
        let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
        assert!(needed.iter().any(|l| l.contains("libtorch_cpu.so")), "{}: {needed:?}", dylib.display());
        if lib.join("libtorch_cuda.so").exists() {
            assert!(
                needed.iter().any(|l| l.contains("libtorch_cuda.so")),
                "{} dropped libtorch_cuda.so: {needed:?}",
                dylib.display()
            );
        }
        let rpath = dynamic.lines().find(|l| l.contains("PATH)")).unwrap_or_default();
        assert!(
            rpath.contains(&*lib.to_string_lossy()),
            "{}: rpath {rpath:?} lacks {}",
            dylib.display(),
            lib.display()
        );
    }
}
