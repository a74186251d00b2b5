//! The `epic` binary end to end, in temporary folders: the cross-check script,
//! `key=value` arguments, error messages with script positions, and `epic doc`.
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn epic(args: &[&str], cwd: &Path) -> Output {
    Command::new(epic_bin()).args(args).current_dir(cwd).env_remove("LD_LIBRARY_PATH").output().expect("run epic")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn write_script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn crosscheck_script_reproduces_every_reference_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("reference");
    let script = repo().join("scripts/crosscheck.rhai");
    let o = epic(&["run", script.to_str().unwrap(), &format!("dir={}", dir.display()), "--device", "cpu"], tmp.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    // One row per tensor of vectors.safetensors except the five inputs, all ok.
    let names = epic::io::load_tensors(&dir.join("vectors.safetensors")).unwrap();
    for (name, _) in
        names.iter().filter(|(n, _)| !["features", "a_raw", "fc_weight", "fc_bias", "channels"].contains(&n.as_str()))
    {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("| {name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"));
        assert!(row.trim_end().ends_with("| ok   |") || row.contains("| ok "), "{row}");
    }
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("all 25 quantities match the reference"), "{out}");
}

#[test]
fn crosscheck_script_fails_on_a_tampered_vector() {
    // The same script must notice a deviation just above its tolerance.
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = epic::io::load_tensors(&fixture("reference/vectors.safetensors")).unwrap();
    for (name, t) in tensors.iter_mut() {
        if name == "rotated" {
            *t = &*t + 3e-5;
        }
    }
    let refs: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    epic::io::save_tensors(&refs, &tmp.path().join("vectors.safetensors")).unwrap();
    std::fs::copy(fixture("reference/expected.json"), tmp.path().join("expected.json")).unwrap();
    let script = repo().join("scripts/crosscheck.rhai");
    let o = epic(
        &["run", script.to_str().unwrap(), &format!("dir={}", tmp.path().display()), "--device", "cpu"],
        tmp.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let row = out.lines().find(|l| l.starts_with("| rotated ")).unwrap();
    assert!(row.contains("FAIL") && row.contains("| 3.00"), "{row}");
    assert!(err.contains("crosscheck.rhai:") && err.contains("cross-check failed for [\"rotated\"]"), "{err}");
}

#[test]
fn key_value_arguments_reach_the_script_typed_and_nested() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_script(
        tmp.path(),
        "args.rhai",
        r#"print(`${type_of(args.n)} ${args.n + 1} ${type_of(args.lr)} ${args.model.name} ${args.flag}`);"#,
    );
    let o = epic(&["run", &s, "n=41", "lr=1e-3", "model.name=resnet50", "flag=true"], tmp.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), "i64 42 f64 resnet50 true");

    let o = epic(&["run", &s, "oops"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("argument \"oops\" is not key=value"));
}

#[test]
fn script_errors_name_the_line_column_and_what_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let vectors = fixture("reference/vectors.safetensors");
    let head = format!("let v = load_tensors(\"{}\");\n", vectors.display());
    std::fs::write(tmp.path().join("corrupt.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    std::fs::write(tmp.path().join("file"), b"a file, not a folder").unwrap();
    let cases: [(&str, String, &[&str]); 8] = [
        // A mistyped argument: the signature that exists is quoted.
        ("types.rhai", format!("{head}\nlet r = rotate(v.features, 3);\n"), &[":3:9:", "rotate cannot take arguments (Tensor, i64)", "rotate(features: Tensor, u: Tensor) -> Tensor"]),
        // A library error: m larger than the set.
        ("m.rhai", format!("{head}let p = top_prototypes(channel_activation(v.features), 99);\n"), &[":2:9:", "m = 99", "24 images"]),
        // A channel out of range.
        ("range.rhai", format!("{head}let p = purity_argmax(v.features, tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0, 0]));\n"), &[":2:9:", "channels: index 16 is out of range 0..16"]),
        // A missing file.
        ("missing.rhai", "let v = load_tensors(\"no/such.safetensors\");\n".into(), &[":1:9:", "no/such.safetensors", "no such file"]),
        // A corrupt tensor file.
        ("corrupt.rhai", "let v = load_tensors(\"corrupt.safetensors\");\n".into(), &[":1:9:", "corrupt.safetensors", "not a readable safetensors file"]),
        // An output folder that cannot be created.
        ("unwritable.rhai", "save_tensors(#{ z: zeros([2]) }, \"file/out.safetensors\");\n".into(), &[":1:1:", "cannot create the folder", "file"]),
        // A wrong disentangler kind.
        ("kind.rhai", "let d = disentangler(\"rotation\", 4);\n".into(), &[":1:9:", "\"rotation\"", "use \"orthogonal\" or \"invertible\""]),
        // A syntax error.
        ("syntax.rhai", "let x = (;\n".into(), &[":1:10:", "syntax error"]),
    ];
    for (name, body, needles) in cases {
        let s = write_script(tmp.path(), name, &body);
        let o = epic(&["run", &s, "--device", "cpu"], tmp.path());
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(name), "{name}: file not named: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: {n:?} missing from: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn adam_and_disentangler_handles_share_one_u() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("u.safetensors");
    let s = write_script(
        tmp.path(),
        "train.rhai",
        &format!(
            r#"
            seed(0);
            let z = randn([8, 6, 3, 3]);
            let d = disentangler("orthogonal", 6);
            let before = d.matrix();
            let opt = adam(d, 0.01, 0.0);
            let ch = tensor([0, 1, 2, 3, 4, 5, 0, 1]);
            let l0 = opt.step(z, ch);
            let l1 = opt.step(z, ch);
            print(`${{opt.steps}} ${{d.kind}} ${{d.channels}} ${{max_abs_diff(before, d.matrix()) > 0.0}} ${{l1 < l0}}`);
            print(d);
            save_tensors(#{{ A_raw: d.a_raw(), U: d.matrix() }}, "{}");
            "#,
            out.display()
        ),
    );
    let o = epic(&["run", &s, "--device", "cpu"], tmp.path());
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "2 orthogonal 6 true true");
    assert_eq!(lines[1], "Disentangler(orthogonal, C = 6, cpu)");
    let saved: std::collections::HashMap<_, _> = epic::io::load_tensors(&out).unwrap().into_iter().collect();
    assert_eq!(saved["U"].size(), [6, 6]);
    let u = epic::disentangle::orthogonal_matrix(&saved["A_raw"]).unwrap();
    assert!(max_abs_diff(&u, &saved["U"]) < 1e-6);
}

#[test]
fn epic_doc_matches_docs_reference_md() {
    let o = epic(&["doc"], repo());
    assert!(o.status.success());
    let generated = String::from_utf8(o.stdout).unwrap();
    let committed = std::fs::read_to_string(repo().join("docs/reference.md")).unwrap_or_default();
    assert!(generated == committed, "docs/reference.md is stale: run `cargo run -- doc > docs/reference.md`");
    // Every function the cross-check relies on is documented with an example.
    for f in [
        "load_tensors",
        "save_tensors",
        "orthogonal_matrix",
        "invertible_matrix",
        "rotate",
        "channel_activation",
        "top_prototypes",
        "purity_argmax",
        "modified_head",
        "top_channels",
        "disentangler",
        "adam",
        "step",
        "shape",
        "select_rows",
        "max_abs_diff",
        "to_array",
    ] {
        let head = format!("### `{f}(");
        let at = generated.find(&head).unwrap_or_else(|| panic!("{f} undocumented"));
        let section = &generated[at..];
        let end = section[4..].find("\n### ").map(|e| e + 4).unwrap_or(section.len());
        assert!(section[..end].contains("```rhai"), "{f} has no example");
    }
}

#[test]
fn epic_predict_names_the_classes_and_counts_unreadable_images() {
    let photos = fixture("efficientnet_lite0/photos");
    let args: Vec<String> = ["predict", "efficientnet_lite0", "-k", "2", "--device", "cpu"]
        .iter()
        .map(|s| s.to_string())
        .chain(["coffee.png", "missing.png", "rocket.jpg"].iter().map(|n| photos.join(n).display().to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = epic(&args, repo());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "one image is missing: {err}");
    assert!(out.contains("967  espresso") && out.contains("657  missile"), "{out}");
    assert!(err.contains("missing.png") && err.contains("1 of 3 images could not be read"), "{err}");
    let o = epic(&["predict", "resnet18", photos.join("coffee.png").to_str().unwrap()], repo());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--weights"), "{}", text(&o).1);
}

#[test]
fn data_set_and_bank_functions_work_from_a_script() {
    let tmp = tempfile::tempdir().unwrap();
    for (class, n) in [("cats", 3), ("dogs", 2)] {
        std::fs::create_dir_all(tmp.path().join(class)).unwrap();
        for i in 0..n {
            let img = image::RgbImage::from_fn(50, 40, |x, y| image::Rgb([(x * (i + 1)) as u8, y as u8, 100]));
            img.save(tmp.path().join(format!("{class}/{i}.png"))).unwrap();
        }
    }
    std::fs::write(tmp.path().join("dogs/notes.txt"), "not an image").unwrap();
    let s = write_script(
        tmp.path(),
        "bank.rhai",
        &format!(
            r#"
            let model = load_model(#{{ name: "efficientnet_lite0", resize: 64, crop: 56 }});
            let ds = image_folder("{}", model);
            print(`${{ds.len()}} ${{ds.class_names()}} ${{ds.label(0)}} ${{ds.label(4)}} ${{ds.image(4).shape()}} ${{model.channels()}} ${{model.num_classes()}} ${{model.transform().crop}}`);
            let bank = extract(model, ds, #{{ batch_size: 2, quiet: true, num_workers: 8 }});
            print(`${{bank.len()}} ${{bank.sums().shape()}} ${{bank.report().batches_run}} ${{bank.top_prototypes(2).shape()}}`);
            print(predict(model, ds.image(0), 1)[0].class == bank.predicted().to_array()[0]);
            ds.label(5);
            "#,
            tmp.path().display()
        ),
    );
    let o = epic(&["run", &s, "--device", "cpu"], tmp.path());
    let (out, err) = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "5 [\"cats\", \"dogs\"] 0 1 [3, 56, 56] 1280 1000 56");
    assert_eq!(lines[1], "5 [5, 1280] 3 [1280, 2]");
    assert_eq!(lines[2], "true");
    assert!(err.contains("skipped 1 non-image file(s)"), "{err}");
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("bank.rhai:8:16:") && err.contains("label: image 5 is out of range 0..5"), "{err}");
}

#[test]
fn a_script_trains_u_on_a_bank_with_the_reference_config_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_script(
        tmp.path(),
        "train.rhai",
        r#"
let model = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });
let bank = extract(model, fashion_mnist("train", 3, model), #{ batch_size: 16, quiet: true });
let d = disentangler("orthogonal", model.channels());
let before = purity(bank, d, 2);
let cfg = #{ seed: 1, quiet: true,
             prototypes: #{ scheduler: #{ type: "lin", num_prototypes_start: 2, num_prototypes_end: 2, num_steps: 1 } },
             training: #{ num_epochs_per_prototypes: 1, lr: 0.001, batch_size: 4096 } };
let h = train_disentangler(bank, d, cfg);
print(`${purity(bank, d, 2) > before} ${h.steps.len()} ${h.epochs.len()} ${h.steps[0][1] == before}`);
cfg.training.lr = "fast";
train_disentangler(bank, d, cfg);
"#,
    );
    let o = epic(&["run", &s, "--device", "cpu"], tmp.path());
    let (out, err) = text(&o);
    assert_eq!(out.trim(), "true 1 1 true", "{err}");
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("train.rhai:12:1:") && err.contains("training.lr: expected a number, got a string"), "{err}");
}

#[test]
fn configs_compose_and_take_typed_overrides_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg_path = repo().join("configs/imagenet_resnet34.yaml");
    let s = write_script(
        tmp.path(),
        "cfg.rhai",
        &format!(
            "let cfg = config(\"{}\");\nprint(`${{cfg.model.name}} ${{cfg.model.num_classes}} ${{cfg.prototypes.scheduler.type}} ${{cfg.training.lr}} ${{cfg.dataloader.batch_size}} ${{cfg.visualization.num_prototypes}} ${{args.tag}}`);\nsave_config(cfg, \"{}\");\n",
            cfg_path.display(),
            tmp.path().join("out/.epic/config.yaml").display()
        ),
    );
    let o = epic(
        &["run", &s, "model.name=resnet50", "training.lr=1e-2", "+training.weight_decay=0", "tag=mine"],
        tmp.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), "resnet50 1000 lin 0.01 512 5 mine");
    let saved: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(tmp.path().join("out/.epic/config.yaml")).unwrap()).unwrap();
    assert_eq!(saved["model"]["name"].as_str(), Some("resnet50"));
    assert_eq!(saved["training"]["weight_decay"].as_i64(), Some(0));

    for (arg, needles) in [
        ("model.nmae=resnet50", &["no key model.nmae", "nearest: model.name"][..]),
        ("seed=abc", &["seed is an int, and \"abc\" is a string"][..]),
        ("training.lr=fast", &["training.lr is a float, and \"fast\" is a string"][..]),
    ] {
        let o = epic(&["run", &s, arg], tmp.path());
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(1), "{arg}: {err}");
        assert!(err.contains("cfg.rhai:1:11:"), "{err}");
        for n in needles {
            assert!(err.contains(n), "{arg}: {n:?} missing: {err}");
        }
    }
    // A plain key one typo from a config key: passed to the script, with a warning.
    let err = text(&epic(&["run", &s, "sed=1"], tmp.path())).1;
    assert!(err.contains("warning: sed=1: not a config key (did you mean seed?)"), "{err}");
    std::fs::write(tmp.path().join("bad.yaml"), "model: {name: [resnet\n").unwrap();
    let s2 = write_script(tmp.path(), "bad.rhai", "let cfg = config(\"bad.yaml\");\n");
    let err = text(&epic(&["run", &s2], tmp.path())).1;
    assert!(err.contains("bad.yaml: not valid YAML"), "{err}");
}

#[test]
fn the_u_file_and_purity_json_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_script(
        tmp.path(),
        "save.rhai",
        r#"
seed(3);
let d = disentangler("invertible", 6);
let opt = adam(d, 0.05, 0.0);
opt.step(randn([4, 6, 2, 2]), tensor([0, 1, 2, 3]));
let pt = save_disentangler(d, "out");
let back = load_disentangler("invertible", pt);
let back_st = load_disentangler("invertible", "out/invertible.safetensors");
print(`${pt} ${max_abs_diff(back.matrix(), d.matrix())} ${max_abs_diff(back_st.a_raw(), d.a_raw())} ${max_abs_diff(d.a_raw(), zeros([6, 6])) > 0.0}`);
save_json(#{ purity_before_train: 0.25, purity_after_train: 0.5, steps: [[10, 0.3]] }, "out/purity_after_invertible_train.json");
load_disentangler("orthogonal", "out/purity_after_invertible_train.json");
"#,
    );
    let o = epic(&["run", &s, "--device", "cpu"], tmp.path());
    let (out, err) = text(&o);
    assert_eq!(out.trim(), "out/invertible.pt 0.0 0.0 true", "{err}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/purity_after_invertible_train.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["purity_after_train"].as_f64(), Some(0.5));
    assert_eq!(json["steps"][0][0].as_i64(), Some(10));
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("save.rhai:11:1: U file: out/purity_after_invertible_train.json: neither a zip"), "{err}");
}

#[test]
fn modules_come_from_lib_folders_and_their_errors_name_them() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared_modules");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("helpers.rhai"), "fn double(x) { x * 2 }\nfn bad(t) {\n    top_prototypes(t, 99)\n}\n")
        .unwrap();
    let s = write_script(
        tmp.path(),
        "uses.rhai",
        "import \"helpers\" as h;\nprint(h::double(21));\nh::bad(zeros([4, 2]));\n",
    );
    // Not found without the folder on the search path.
    let o = epic(&["run", &s], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("helpers"), "{}", text(&o).1);
    for (flag, env) in [(true, false), (false, true)] {
        let mut cmd = Command::new(epic_bin());
        cmd.arg("run").arg(&s).current_dir(tmp.path());
        if flag {
            cmd.arg("--lib").arg(&shared);
        }
        if env {
            cmd.env("EPIC_LIB", &shared);
        }
        let o = cmd.output().unwrap();
        let (out, err) = text(&o);
        assert_eq!(out.trim(), "42", "{err}");
        assert!(
            err.contains("helpers.rhai:3:5: in bad(): top_prototypes: m = 99") && err.contains("imported by"),
            "{err}"
        );
    }
}
