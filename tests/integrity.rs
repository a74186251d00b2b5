//! What epic reads back is what it wrote: every bank chunk, training checkpoint
//! and U file carries a CRC-32 of its tensor bytes, checked on load.
//!
//! - A damaged chunk is recomputed, with a warning naming it, even under
//!   `quiet: true`; the bank equals the undamaged one bit for bit.
//! - A chunk written before checksums is read (shapes and finite sums checked),
//!   noted once, and re-saved with a checksum; a chunk whose sums are NaN under
//!   a valid checksum is recomputed.
//! - A damaged checkpoint or U file is an error naming the file and what to do.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const EXTRACT: &str = r#"
let model = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });
let train = fashion_mnist("train", 2, model);
let bank = extract(model, train, #{ batch_size: 5, chunk: 5, cache: args.cache, quiet: true });
save_tensors(#{ sums: bank.sums(), labels: bank.labels(), predicted: bank.predicted() }, args.out);
let r = bank.report();
print(`${r.chunks_reused} ${r.chunks_computed} ${r.batches_run}`);
"#;

struct Run {
    ok: bool,
    out: String,
    err: String,
}

fn epic(args: &[String]) -> Run {
    let o = Command::new(epic_bin())
        .args(args)
        .args(["--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("epic");
    finished(o)
}

/// A run's outcome, checked for panics and aborts.
fn finished(o: std::process::Output) -> Run {
    let r = Run {
        ok: o.status.success(),
        out: String::from_utf8_lossy(&o.stdout).trim().to_string(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    for bad in ["panicked", "RUST_BACKTRACE", "terminate called"] {
        assert!(!r.err.contains(bad), "{bad:?} on stderr:\n{}", r.err);
    }
    r
}

fn extract(dir: &Path, out: &str) -> Run {
    let script = dir.join("extract.rhai");
    std::fs::write(&script, EXTRACT).unwrap();
    epic(&[
        "run".into(),
        script.display().to_string(),
        format!("cache={}", dir.join("cache").display()),
        format!("out={}", dir.join(out).display()),
    ])
}

/// The cache's chunk files, sorted.
fn chunks(cache: &Path) -> Vec<PathBuf> {
    let key = std::fs::read_dir(cache).unwrap().flatten().next().unwrap().path();
    let mut v: Vec<PathBuf> = std::fs::read_dir(key)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    v.sort();
    v
}

/// Flips one bit of the last byte of `path` (inside the tensor bytes).
fn flip_last_byte(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x04;
    std::fs::write(path, b).unwrap();
}

fn same_tensors(a: &Path, b: &Path) {
    let (a, b) = (epic::io::load_tensors(a).unwrap(), epic::io::load_tensors(b).unwrap());
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs");
    }
}

#[test]
fn damaged_old_and_non_finite_chunks_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let r = extract(dir, "whole.safetensors");
    assert!(r.ok, "{}", r.err);
    assert_eq!(r.out, "0 4 4", "20 images: 4 chunks of 5");
    let files = chunks(&dir.join("cache"));
    assert_eq!(files.len(), 4);
    for f in &files {
        assert_eq!(epic::io::read_tensors(f).unwrap().integrity, epic::io::Integrity::Verified, "{}", f.display());
    }
    // The checksum is the standard CRC-32 (zlib's) of the bytes after the header,
    // so any tool can check a chunk: Python's zlib agrees.
    let py = run_python(
        "import sys, struct, json, zlib\nb = open(sys.argv[1], 'rb').read()\nn = struct.unpack('<Q', b[:8])[0]\n\
         print(json.loads(b[8:8 + n])['__metadata__']['epic.crc32'], '%08x' % zlib.crc32(b[8 + n:]))",
        &[files[0].to_str().unwrap()],
    );
    let words: Vec<&str> = py.split_whitespace().collect();
    assert_eq!(words.len(), 2, "{py}");
    assert_eq!(words[0], words[1], "epic's checksum is not zlib's CRC-32");

    // Bit rot in chunk 2: warned about by name (quiet notwithstanding), recomputed.
    flip_last_byte(&files[1]);
    let r = extract(dir, "after_damage.safetensors");
    assert!(r.ok, "{}", r.err);
    assert_eq!(r.out, "3 1 1");
    let name = files[1].file_name().unwrap().to_string_lossy().into_owned();
    let warning = r.err.lines().find(|l| l.starts_with("warning: cache chunk")).unwrap_or_else(|| panic!("{}", r.err));
    eprintln!("{warning}");
    for needle in [name.as_str(), "is damaged and is recomputed", "CRC-32"] {
        assert!(warning.contains(needle), "{needle:?} missing: {warning}");
    }
    same_tensors(&dir.join("whole.safetensors"), &dir.join("after_damage.safetensors"));

    // A chunk written before chunks carried a checksum (tch's writer puts none).
    let old: Vec<(String, tch::Tensor)> = epic::io::load_tensors(&files[2]).unwrap();
    tch::Tensor::write_safetensors(&old, &files[2]).unwrap();
    assert_eq!(epic::io::read_tensors(&files[2]).unwrap().integrity, epic::io::Integrity::Unchecked);
    let r = extract(dir, "after_old.safetensors");
    assert!(r.ok, "{}", r.err);
    assert_eq!(r.out, "4 0 0", "the old chunk is kept");
    let note = r.err.lines().find(|l| l.starts_with("note: 1 cache chunk")).unwrap_or_else(|| panic!("{}", r.err));
    assert!(note.contains("without a checksum") && note.contains("1 of them were re-saved"), "{note}");
    assert_eq!(epic::io::read_tensors(&files[2]).unwrap().integrity, epic::io::Integrity::Verified);
    same_tensors(&dir.join("whole.safetensors"), &dir.join("after_old.safetensors"));

    // NaN sums under a valid checksum (a bug upstream, not the disk): recomputed.
    let mut t = epic::io::load_tensors(&files[3]).unwrap();
    let sums = t.iter_mut().find(|(n, _)| n == "sums").unwrap();
    sums.1 = sums.1.fill_(f64::NAN);
    let refs: Vec<(&str, &tch::Tensor)> = t.iter().map(|(n, t)| (n.as_str(), t)).collect();
    epic::io::save_tensors(&refs, &files[3]).unwrap();
    let r = extract(dir, "after_nan.safetensors");
    assert!(r.ok, "{}", r.err);
    assert_eq!(r.out, "3 1 1");
    assert!(r.err.contains("NaN or infinite"), "{}", r.err);
    same_tensors(&dir.join("whole.safetensors"), &dir.join("after_nan.safetensors"));
}

/// The tiny demo (`common::tiny_demo`) into `out`.
fn demo(out: &Path, cache: &Path) -> Run {
    finished(tiny_demo(out, cache).output().expect("epic"))
}

#[test]
fn a_damaged_checkpoint_or_u_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    let r = demo(&out, &cache);
    assert!(r.ok, "{}", r.err);

    // The checkpoint: a rerun resumes from it, so it reads it.
    let ck = out.join(".epic/train_checkpoint.safetensors");
    assert_eq!(epic::io::read_tensors(&ck).unwrap().integrity, epic::io::Integrity::Verified);
    let good = std::fs::read(&ck).unwrap();
    flip_last_byte(&ck);
    let r = demo(&out, &cache);
    assert!(!r.ok, "a damaged checkpoint was used:\n{}", r.err);
    let e = r.err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{}", r.err));
    eprintln!("{e}");
    for needle in ["train_checkpoint.safetensors is damaged", "CRC-32", "delete it to start training over"] {
        assert!(e.contains(needle), "{needle:?} missing: {e}");
    }
    std::fs::write(&ck, good).unwrap();

    // U files, .safetensors and .pt (the zip's own CRC-32 of each entry).
    for name in ["orthogonal.safetensors", "orthogonal.pt"] {
        let u = out.join(name);
        let good = std::fs::read(&u).unwrap();
        let mut bad = good.clone();
        // A byte in the middle of A_raw's 6.5 MB.
        let mid = bad.len() / 2;
        bad[mid] ^= 0x20;
        std::fs::write(&u, &bad).unwrap();
        let script = tmp.path().join("load.rhai");
        std::fs::write(&script, format!("let d = load_disentangler(\"orthogonal\", \"{}\");\n", u.display())).unwrap();
        let r = epic(&["run".into(), script.display().to_string()]);
        assert!(!r.ok, "{name}: a damaged U file was used");
        let e = r.err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{}", r.err));
        eprintln!("{e}");
        assert!(e.contains(&u.display().to_string()), "{name}: {e}");
        assert!(e.contains("damaged") || e.contains("checksum"), "{name}: {e}");
        std::fs::write(&u, good).unwrap();
        let r = epic(&["run".into(), script.display().to_string()]);
        assert!(r.ok, "{name}: {}", r.err);
    }
}
