//! The demo script end to end on a tiny subset (ImageNet Lite0 backbone, a head
//! fitted on Fashion-MNIST, EPIC training, artifacts, explanations), its
//! determinism, and the explanation values a script can read.
mod common;
use common::*;
use epic::render::figures::{explanation_size, explanation_tile_origin, TILE};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Overrides that make the demo small: 3 images per class at 64×64, two
/// schedule steps of one epoch.
fn tiny(out: &Path, cache: &Path) -> Vec<String> {
    [
        "dataset.per_class=3",
        "dataset.val_per_class=1",
        "prototypes.scheduler.num_prototypes_start=3",
        "prototypes.scheduler.num_prototypes_end=2",
        "prototypes.scheduler.num_steps=2",
        "training.num_epochs_per_prototypes=1",
        "+model.resize=64",
        "+model.crop=64",
        "visualization.num_explanations=2",
        "visualization.num_prototypes=4",
        "visualization.num_prototypical_channels=3",
        "visualization.num_channels_shown=2",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("output_path={}", out.display()), format!("dataloader.cache={}", cache.display())])
    .collect()
}

fn run(script: &str, args: &[String]) -> Output {
    Command::new(epic_bin())
        .arg("run")
        .arg(script)
        .args(args)
        .args(["--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("epic")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_demo_writes_every_artifact_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let o = run("scripts/demo.rhai", &tiny(&a, &tmp.path().join("cache_a")));
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");

    // Purity rose.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("purity_after_orthogonal_train.json")).unwrap()).unwrap();
    let (before, after) = (json["purity_before_train"].as_f64().unwrap(), json["purity_after_train"].as_f64().unwrap());
    eprintln!("tiny demo: purity {before:.4} → {after:.4}");
    assert!(after > before, "{before} → {after}");

    // Every artifact exists and decodes.
    for name in [
        "orthogonal.pt",
        "orthogonal.safetensors",
        "orthogonal_train.png",
        "orthogonal_purity_histogram.png",
        ".epic/config.yaml",
    ] {
        assert!(a.join(name).is_file(), "{name} missing");
    }
    let u = epic::model::pth::read_pth(&a.join("orthogonal.pt")).unwrap().state_dict(None).unwrap();
    assert_eq!((u[0].0.as_str(), u[0].1.size()), ("A_raw", vec![1280, 1280]));
    let cfg: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(a.join(".epic/config.yaml")).unwrap()).unwrap();
    assert_eq!(cfg["dataset"]["per_class"].as_i64(), Some(3));
    let all = files(&a);
    let count = |dir: &str| all.iter().filter(|p| p.strip_prefix(&a).unwrap().starts_with(dir)).count();
    assert_eq!((count("Base_prototypes"), count("Trained_prototypes"), count("Explanations")), (2, 2, 2));
    for p in all.iter().filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png")) {
        image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    // An explanation has k = 3 rows of 1 + m = 5 boxed tiles.
    let fig = all.iter().find(|p| p.strip_prefix(&a).unwrap().starts_with("Explanations")).unwrap();
    let img = image::open(fig).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), explanation_size(3, 4));
    for r in 0..3 {
        for j in 0..5 {
            let (x, y) = explanation_tile_origin(r, j);
            let yellow = (x..x + TILE)
                .flat_map(|px| (y..y + TILE).map(move |py| (px, py)))
                .filter(|&(px, py)| {
                    let p = img.get_pixel(px, py);
                    p[0] > 200 && p[1] > 180 && p[2] < 90
                })
                .count();
            assert!(yellow > 100, "row {r} tile {j}: no yellow box ({yellow} px)");
        }
    }

    // The same seed gives the same artifacts, byte for byte (the config snapshot
    // and the run's manifest differ only by their output and cache paths).
    let o = run("scripts/demo.rhai", &tiny(&b, &tmp.path().join("cache_b")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rel =
        |root: &Path, v: &[PathBuf]| v.iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect::<Vec<_>>();
    let bfiles = files(&b);
    assert_eq!(rel(&a, &all), rel(&b, &bfiles));
    for (pa, pb) in all.iter().zip(&bfiles) {
        if pa.ends_with(".epic/config.yaml") || pa.ends_with(".epic/run.json") || pa.ends_with("report/index.html") {
            continue;
        }
        assert!(std::fs::read(pa).unwrap() == std::fs::read(pb).unwrap(), "{} differs between runs", pa.display());
    }
}

#[test]
fn explanation_values_name_training_images_with_the_top_activations() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("values.rhai");
    std::fs::write(
        &script,
        r#"
let cfg = config("configs/demo_fashion_lite0.yaml");
seed(cfg.seed);
let base = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });
let train = fashion_mnist("train", 3, base);
let val = fashion_mnist("test", 1, base);
let bank = fit_head(extract(base, train, #{ quiet: true }), 10);
let d = disentangler("orthogonal", 1280);
let opt = adam(d, 0.001, 0.0);
let batch = [0, 1, 2, 3, 4, 5, 6, 7];
opt.step(bank.model().channels() * 0 + 0 == 0, 0);
"#,
    )
    .unwrap();
    // (The step above is a deliberate type error: its message names the line.)
    let o = run(script.to_str().unwrap(), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("values.rhai:11:5:") && err.contains("step cannot take arguments"), "{err}");

    std::fs::write(
        &script,
        r#"
let base = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });
let train = fashion_mnist("train", 3, base);
let val = fashion_mnist("test", 1, base);
let bank = fit_head(extract(base, train, #{ quiet: true }), 10);
let d = disentangler("orthogonal", 1280);
let e = explain(d, bank, val.image(4), #{ num_prototypical_channels: 3, num_prototypes: 4 });
let top = bank.top_prototypes(d.matrix(), 4).to_array();
let ok = true;
for r in 0..3 {
    let c = e.channels[r];
    if e.prototypes[r] != top[c] { ok = false; }
    for i in e.prototypes[r] { if i < 0 || i >= train.len() { ok = false; } }
}
print(`${ok} ${e.channels.len()} ${e.prototypes[0].len()} ${e.max_logit_change < 1e-4} ${e.class == predict(bank.model(), val.image(4), 1)[0].class}`);
"#,
    )
    .unwrap();
    let o = run(script.to_str().unwrap(), &[]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(out.trim(), "true 3 4 true true", "{err}");
}

#[test]
fn the_macro_benchmark_reports_its_ratios_and_needs_no_second_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = tiny(&tmp.path().join("unused"), &tmp.path().join("cache"));
    args.push(format!("output={}", tmp.path().join("bench").display()));
    let o = run("scripts/bench.rhai", &args);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    let number = |prefix: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in\n{out}"));
        line[prefix.len()..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let ratio = number("EPIC run / floor =");
    let explain = number("explain / one forward =");
    eprintln!("tiny bench: EPIC run / floor {ratio:.2}, explain / forward {explain:.2}");
    // The run includes its own backbone pass over the same images, so it cannot
    // be much cheaper than the floor; an explanation includes one forward pass.
    assert!(ratio > 0.7 && explain > 0.5, "{out}");
    // Every prototype map came from the extraction's own pass.
    assert!(out.contains("0 backbone recomputations"), "{out}");
    // Lite0: C = 1280 f32 sums + label and prediction (i64) + validity (bool).
    assert!(out.contains(&format!("bank: {} bytes per image", 1280 * 4 + 8 + 8 + 1)), "{out}");
    assert!(number("peak RSS:") > 100.0, "{out}");
    assert!(tmp.path().join("bench/orthogonal.pt").is_file());
}
