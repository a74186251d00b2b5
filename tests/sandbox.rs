//! `epic run --sandbox`: a shared script writes only under its config's
//! `output_path` and cache and `--allow-write` folders, reads only under its
//! own, its config's and its data's folders and `--allow-read` folders, and
//! stops with a message when it loops or recurses away. Every refusal names the
//! path and the flag that would allow it, exits with 1, and writes nothing.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

struct Run {
    code: Option<i32>,
    err: String,
}

fn sandboxed(dir: &Path, body: &str, flags: &[String]) -> Run {
    let script = dir.join("shared").join("ablation.rhai");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(&script, body).unwrap();
    let o = Command::new(epic_bin())
        .arg("run")
        .arg("--sandbox")
        .args(flags)
        .arg(&script)
        .arg(format!("config={}", dir.join("shared/c.yaml").display()))
        .args(["--device", "cpu"])
        .current_dir(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    for bad in ["panicked", "RUST_BACKTRACE", "terminate called"] {
        assert!(!err.contains(bad), "{bad:?} on stderr:\n{err}");
    }
    Run { code: o.status.code(), err }
}

fn refused(case: &str, r: &Run, needles: &[&str]) {
    assert_eq!(r.code, Some(1), "{case}: {}", r.err);
    eprintln!("CASE {case}: {}", r.err.trim());
    for n in needles {
        assert!(r.err.contains(n), "{case}: {n:?} missing from:\n{}", r.err);
    }
}

#[test]
fn writes_and_reads_outside_the_allowed_folders_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    std::fs::write(dir.join("shared/c.yaml"), format!("seed: 0\noutput_path: {}\n", dir.join("out").display()))
        .unwrap();
    std::fs::create_dir_all(dir.join("secret")).unwrap();
    epic::io::save_tensors(&[("a", &tch::Tensor::from_slice(&[1.0f32, 2.0]))], &dir.join("secret/x.safetensors"))
        .unwrap();
    let head = "let cfg = config(args.config);\n";

    // Into output_path: allowed.
    let r = sandboxed(
        &dir,
        &format!("{head}save_tensors(#{{ a: zeros([2]) }}, `${{cfg.output_path}}/a.safetensors`);\n"),
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(dir.join("out/a.safetensors").is_file());

    // Elsewhere: refused, nothing written; --allow-write lets it.
    let outside = dir.join("elsewhere/b.safetensors");
    let body = format!("{head}save_tensors(#{{ a: zeros([2]) }}, \"{}\");\n", outside.display());
    let r = sandboxed(&dir, &body, &[]);
    let folder = dir.join("elsewhere").display().to_string();
    refused(
        "write outside",
        &r,
        &[&outside.display().to_string(), "may not write", &format!("--allow-write {folder}"), "ablation.rhai:2"],
    );
    assert!(!dir.join("elsewhere").exists(), "the refused write created its folder");
    let r = sandboxed(&dir, &body, &["--allow-write".into(), folder.clone()]);
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(outside.is_file());

    // `..` does not climb out of output_path.
    let body = format!("{head}save_config(cfg, `${{cfg.output_path}}/../escaped.yaml`);\n");
    refused("dot-dot", &sandboxed(&dir, &body, &[]), &["escaped.yaml", "may not write"]);
    assert!(!dir.join("escaped.yaml").exists());

    // Reads outside: refused; --allow-read lets them.
    let secret = dir.join("secret/x.safetensors");
    let body = format!("{head}let t = load_tensors(\"{}\");\nprint(t.a);\n", secret.display());
    refused(
        "read outside",
        &sandboxed(&dir, &body, &[]),
        &[&secret.display().to_string(), "may not read", "--allow-read"],
    );
    let r = sandboxed(&dir, &body, &["--allow-read".into(), dir.join("secret").display().to_string()]);
    assert_eq!(r.code, Some(0), "{}", r.err);

    // A module outside the readable folders is not imported.
    std::fs::write(dir.join("secret/helpers.rhai"), "fn f() { 1 }\n").unwrap();
    let r = sandboxed(&dir, "import \"../secret/helpers\" as h;\nprint(h::f());\n", &[]);
    refused("import outside", &r, &["helpers.rhai", "may not read", "--allow-read"]);
}

#[test]
fn runaway_scripts_stop_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    std::fs::write(dir.join("shared/c.yaml"), "seed: 0\n").unwrap();
    let flags = ["--max-operations".to_string(), "200000".to_string()];
    let r = sandboxed(&dir, "let x = 0;\nloop { x += 1; }\n", &flags);
    refused("loop", &r, &["more than 200000 Rhai operations", "--max-operations"]);
    let r = sandboxed(&dir, "fn f(n) { f(n + 1) }\nf(0);\n", &[]);
    refused("recursion", &r, &["nest deeper than 64 levels"]);
    let r = sandboxed(&dir, "let s = \"x\";\nfor i in 0..40 { s += s; }\n", &[]);
    refused("string", &r, &["grew past the sandbox's limit"]);
    // Without --sandbox the flags are refused by the command line.
    let o = Command::new(epic_bin()).args(["run", "x.rhai", "--allow-read", "/"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
