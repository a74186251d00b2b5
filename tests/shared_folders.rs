//! Runs that share folders: two processes extracting one bank into one cache
//! divide its chunks (a claim per chunk) instead of both computing everything;
//! a run whose `output_path` a live run holds stops at once, naming the other
//! run's pid and the folder; a killed run's lock is taken over.
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

const EXTRACT: &str = r#"
let model = load_model(#{ name: "efficientnet_lite0", resize: 128, crop: 128 });
let train = fashion_mnist("train", 10, model);
let bank = extract(model, train, #{ batch_size: 5, chunk: 5, cache: args.cache, quiet: true });
save_tensors(#{ sums: bank.sums(), labels: bank.labels(), predicted: bank.predicted() }, args.out);
let r = bank.report();
print(`${r.chunks_reused} ${r.chunks_computed} ${r.chunks_by_others}`);
"#;

fn extract(dir: &Path, out: &str) -> Command {
    let mut c = Command::new(epic_bin());
    c.arg("run")
        .arg(dir.join("extract.rhai"))
        .arg(format!("cache={}", dir.join("cache").display()))
        .arg(format!("out={}", dir.join(out).display()))
        .args(["--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn two_processes_divide_one_bank() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("extract.rhai"), EXTRACT).unwrap();
    let (a, b) =
        (extract(tmp.path(), "a.safetensors").spawn().unwrap(), extract(tmp.path(), "b.safetensors").spawn().unwrap());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let counts = |o: &std::process::Output| -> Vec<usize> {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).split_whitespace().map(|x| x.parse().unwrap()).collect()
    };
    let (ca, cb) = (counts(&a), counts(&b));
    eprintln!(
        "run a: reused {} computed {} by the other {}; run b: reused {} computed {} by the other {}",
        ca[0], ca[1], ca[2], cb[0], cb[1], cb[2]
    );
    // 100 images, 20 chunks: each computed exactly once between the two runs.
    assert_eq!(ca[1] + cb[1], 20, "chunks computed twice or not at all");
    assert_eq!(ca[0] + ca[1] + ca[2], 20);
    assert_eq!(cb[0] + cb[1] + cb[2], 20);
    let (ta, tb) = (
        epic::io::load_tensors(&tmp.path().join("a.safetensors")).unwrap(),
        epic::io::load_tensors(&tmp.path().join("b.safetensors")).unwrap(),
    );
    for ((n, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(x.equal(y), "{n} differs between the two runs");
    }
    // No claim is left behind.
    let key = std::fs::read_dir(tmp.path().join("cache")).unwrap().flatten().next().unwrap().path();
    let left: Vec<String> = std::fs::read_dir(key)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".safetensors") && n != "bank.json")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The bank's layout, as `epic bank status` reads it: 2 chunks of the two runs' bank.
    let status = epic::features::bank_status(&tmp.path().join("cache")).unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].done(), status[0].layout.chunks());
}

#[test]
fn a_live_runs_output_path_is_refused_and_a_dead_ones_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::write(tmp.path().join("c.yaml"), format!("seed: 0\noutput_path: {}\n", out.display())).unwrap();
    let script = tmp.path().join("s.rhai");
    std::fs::write(
        &script,
        "let cfg = config(args.config);\nsave_config(cfg, `${cfg.output_path}/c.yaml`);\nprint(\"wrote\");\n",
    )
    .unwrap();
    let run = || {
        Command::new(epic_bin())
            .arg("run")
            .arg(&script)
            .arg(format!("config={}", tmp.path().join("c.yaml").display()))
            .output()
            .unwrap()
    };
    // This test process holds the folder, as a live run would.
    epic::io::claim::hold_folder(&out, "output_path").unwrap();
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{}", err.trim());
    assert_eq!(o.status.code(), Some(1), "{err}");
    for needle in [
        out.display().to_string(),
        format!("pid {}", std::process::id()),
        "in use by another epic run".into(),
        "s.rhai:2".into(),
    ] {
        assert!(err.contains(&needle), "{needle:?} missing: {err}");
    }
    assert!(!out.join("c.yaml").exists(), "the second run wrote");
    epic::io::claim::release_folder(&out);

    // A lock left by a killed run (its pid gone) is taken over, with a note.
    std::fs::write(out.join(".epic/run.lock"), "4000000 elsewhere 2026-01-01T00:00:00Z\n").unwrap();
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("held by run 4000000") && err.contains("which is gone"), "{err}");
    assert!(out.join("c.yaml").is_file());
    assert!(!out.join(".epic/run.lock").exists(), "the lock outlived its run");
}
