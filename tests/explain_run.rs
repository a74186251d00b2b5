//! A finished run explains new images, contrasts two classes, shows a class, and
//! evaluates itself: `epic explain`, `epic evaluate` on a tiny demo, each number
//! checked against an independent computation (a full forward pass of the
//! network, brute-force contributions from the bank with plain tensor ops).
mod common;
use common::*;
use epic::explain::Run;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind};

/// The tiny demo with 5 held-out images per class (50: an honest comparison over
/// images in the deletion test), into `dir/run`, cached in `dir/cache`.
fn finished_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    let o = tiny_demo(&run, &dir.join("cache")).arg("dataset.val_per_class=5").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join(".epic/run.json").is_file() && run.join(".epic/head.safetensors").is_file());
    run
}

fn epic(args: &[&str]) -> std::process::Output {
    Command::new(epic_bin()).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `epic explain RUN WHAT… --device cpu --channels 3 --prototypes 2 --out OUT`, succeeding.
fn explain(run: &str, what: &[&str], out: &Path) {
    let mut args = vec!["explain", run];
    args.extend_from_slice(what);
    args.extend(["--device", "cpu", "--channels", "3", "--prototypes", "2", "--out", out.to_str().unwrap()]);
    let o = epic(&args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// The run's network on an image file, through its own transform: logits `[K]`, f64.
fn logits_of(net: &epic::model::Network, path: &str) -> tch::Tensor {
    let img = epic::data::image::load_rgb(Path::new(path)).unwrap();
    let x = epic::data::transform::preprocess(&img, &net.preprocess()).unwrap();
    net.logits(&x.unsqueeze(0)).unwrap().get(0).to_kind(Kind::Double)
}

fn photo(name: &str) -> String {
    fixture(&format!("efficientnet_lite0/photos/{name}")).display().to_string()
}

#[test]
fn a_finished_run_explains_contrasts_shows_a_class_and_evaluates_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    let run_s = run.display().to_string();
    let opened = Run::open(&run, Device::Cpu, true).unwrap();
    let net = opened.study.network();

    // 1. Explain two photos: one figure each, explanations.json naming the prototypes' files.
    let out = dir.path().join("explain");
    explain(&run_s, &[&photo("chelsea.png"), &photo("coffee.png")], &out);
    let doc = read_json(&out.join("explanations.json"));
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for e in images {
        let figure = image::open(e["figure"].as_str().unwrap()).unwrap();
        assert_eq!((figure.width(), figure.height()), epic::render::figures::explanation_size(3, 2));
        assert_eq!(e["channels"].as_array().unwrap().len(), 3);
        let protos = &e["prototypes"][0];
        assert_eq!(protos.as_array().unwrap().len(), 2);
        assert!(protos[0]["source"].as_str().unwrap().starts_with("fashion-mnist train #"), "{protos}");
        // The predicted class and probability, against a full forward pass of the run's network.
        let p = logits_of(net, e["image"].as_str().unwrap()).softmax(0, Kind::Double);
        let class = p.argmax(0, false).int64_value(&[]);
        assert_eq!(e["predicted"]["class"].as_i64(), Some(class));
        assert!((e["predicted"]["probability"].as_f64().unwrap() - p.double_value(&[class])).abs() < 1e-5);
    }

    // 2. Why A, not B: the shown terms, the other channels and the bias add up to the margin,
    //    which is the top-2 logit difference of a full forward pass.
    let out = dir.path().join("contrast");
    explain(&run_s, &[&photo("rocket.jpg"), "--classes", "2"], &out);
    let c = &read_json(&out.join("explanations.json"))["images"][0]["contrast"];
    let terms: f64 = c["sides"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["terms"].as_array().unwrap().iter())
        .map(|t| t.as_f64().unwrap())
        .sum();
    let margin = c["margin"].as_f64().unwrap();
    assert!((terms - c["shown"].as_f64().unwrap()).abs() < 1e-9);
    let sum = terms + c["other_channels"].as_f64().unwrap() + c["bias"].as_f64().unwrap();
    assert!((sum - margin).abs() < 1e-4, "{sum} vs {margin}");
    let logits = logits_of(net, &photo("rocket.jpg"));
    let (top, idx) = logits.topk(2, 0, true, true);
    assert!((top.double_value(&[0]) - top.double_value(&[1]) - margin).abs() < 1e-4);
    assert_eq!(c["sides"][0]["class"].as_i64(), Some(idx.int64_value(&[0])));
    assert_eq!(c["sides"][1]["class"].as_i64(), Some(idx.int64_value(&[1])));
    // A's terms favour A, B's favour B, and no channel shows on both sides.
    let side = |s: usize, key: &str| c["sides"][s][key].as_array().unwrap().clone();
    assert!(side(0, "terms").iter().all(|t| t.as_f64().unwrap() > 0.0), "{c}");
    assert!(side(1, "terms").iter().all(|t| t.as_f64().unwrap() < 0.0), "{c}");
    assert!(side(0, "channels").iter().all(|ch| !side(1, "channels").contains(ch)));

    // 3. A class view by name: its channels are the brute-force top-3 of the mean
    //    contribution A′[y,c]·ReLU(v_c) over the class's training images.
    let out = dir.path().join("class");
    explain(&run_s, &["--class", "sneaker", "--negative"], &out);
    let v = read_json(&out.join("class_7.json"));
    assert_eq!(v["name"], "Sneaker");
    let bank = opened.study.bank();
    let u = opened.disentangler.matrix().unwrap().to_kind(Kind::Double);
    let (h, w) = bank.map_size;
    let pooled = bank.sums().unwrap().to_kind(Kind::Double) / (h * w) as f64;
    let rotated = pooled.matmul(&u.tr());
    let a_mod = net.head_weight().to_kind(Kind::Double).matmul(&u.tr()); // orthogonal: U⁻¹ = Uᵀ
    let rows = bank.labels.eq(7).nonzero().reshape([-1]);
    let mean = (rotated.index_select(0, &rows).relu() * a_mod.get(7)).mean_dim(0, false, Kind::Double);
    let want: Vec<i64> = Vec::try_from(mean.topk(3, 0, true, true).1).unwrap();
    let got: Vec<i64> = v["channels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    assert_eq!(got, want);
    assert!(
        (v["contributions"][0].as_f64().unwrap() - mean.double_value(&[want[0]])).abs()
            < 1e-4 * mean.double_value(&[want[0]]).abs().max(1.0)
    );
    assert_eq!(v["negative_prototypes"].as_array().unwrap().len(), 3);
    // Negative prototypes of a grid: the brute-force 3 lowest rotated sums of the channel.
    let c = want[0];
    let grid = opened.study.negative_prototype_grid(&opened.disentangler, c, 3, false).unwrap();
    let shown: Vec<i64> =
        grid.tiles.iter().map(|t| t.caption[1..].split(' ').next().unwrap().parse().unwrap()).collect();
    let lowest: Vec<i64> = Vec::try_from(rotated.select(1, c).topk(3, 0, false, true).1).unwrap();
    assert_eq!(shown, lowest, "{}", grid.title);
    assert!(grid.title.contains("negative prototypes"));
    let figure = image::open(out.join("class_7.png")).unwrap();
    assert!(figure.width() > 400 && figure.height() > 6 * 192, "{}×{}", figure.width(), figure.height());

    // 4. Evaluate: the modified head agrees with the original on every held-out image,
    //    and removing the explaining channels hurts the prediction more than random ones.
    let o = epic(&["evaluate", &run_s, "--device", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = read_json(&run.join("evaluation.json"));
    assert_eq!(e["images"].as_i64(), Some(50));
    assert_eq!(e["agreement"].as_f64(), Some(1.0));
    assert_eq!(e["accuracy_original"], e["accuracy_modified"]);
    // The original accuracy, from full forward passes of the 50 held-out images.
    let val = opened.val.as_ref().unwrap();
    let mut correct = 0;
    for i in 0..val.len() {
        let x = epic::data::transform::preprocess(&val.image(i).unwrap(), &net.preprocess()).unwrap();
        correct += i64::from(net.logits(&x.unsqueeze(0)).unwrap().argmax(1, false).int64_value(&[0]) == val.label(i));
    }
    assert!((e["accuracy_original"].as_f64().unwrap() - correct as f64 / 50.0).abs() < 1e-12);
    let drop = |k: i64, kind: &str| {
        e["deletion"].as_array().unwrap().iter().find(|d| d["k"] == k && d["channels"] == kind).unwrap()
            ["mean_probability_drop"]
            .as_f64()
            .unwrap()
    };
    for k in [3, 5, 10] {
        assert!(drop(k, "explained") > drop(k, "random"), "k = {k}: {e}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("prediction agreement") && stdout.contains("100.0 %"), "{stdout}");

    // 5. The same from a script: the bindings return what the commands wrote.
    let script = dir.path().join("after.rhai");
    std::fs::write(
        &script,
        "let e = evaluate_run(args.run, #{});\n\
         let d = explain_images(args.run, [args.photo], #{ classes: 2, channels: 3, prototypes: 2, out: args.out });\n\
         let v = class_view(args.run, \"Sneaker\", #{ channels: 3, prototypes: 2, out: args.out });\n\
         print(`${e.agreement} ${d.images[0].contrast.margin} ${v.channels}`);\n",
    )
    .unwrap();
    let o = epic(&[
        "run",
        "--device",
        "cpu",
        script.to_str().unwrap(),
        &format!("run={run_s}"),
        &format!("photo={}", photo("rocket.jpg")),
        &format!("out={}", dir.path().join("script").display()),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    let words: Vec<&str> = printed.trim().splitn(3, ' ').collect();
    assert_eq!(words[0], "1.0");
    assert!((words[1].parse::<f64>().unwrap() - margin).abs() < 1e-9, "{printed}");
    assert_eq!(words[2].replace(' ', ""), v["channels"].to_string(), "{printed}");
}

#[test]
fn a_run_whose_bank_is_gone_says_so_and_gives_the_command_that_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = finished_run(dir.path());
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let o = epic(&["explain", run.to_str().unwrap(), &photo("chelsea.png"), "--device", "cpu"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("the run's bank is gone"), "{stderr}");
    assert!(stderr.contains("rebuild it with: epic run scripts/demo.rhai"), "{stderr}");
    // Not a run folder at all: the manifest is named.
    let o = epic(&["evaluate", dir.path().to_str().unwrap(), "--device", "cpu"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains(".epic/run.json"), "{stderr}");
}
