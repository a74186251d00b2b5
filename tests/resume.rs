//! A feature-bank pass killed with SIGKILL at five random points resumes from its
//! last complete chunk and ends with a bank bitwise identical to an uninterrupted
//! one; training killed (SIGKILL) or interrupted (SIGINT) resumes from its last
//! completed schedule step to the same U and history.
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = r#"
let model = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });
let train = fashion_mnist("train", 6, model);
let bank = extract(model, train, #{ batch_size: 4, chunk: 6, cache: args.cache, quiet: true });
save_tensors(#{ sums: bank.sums(), labels: bank.labels(), predicted: bank.predicted() }, args.out);
let r = bank.report();
print(`${r.chunks_reused} ${r.chunks_computed} ${r.batches_run}`);
"#;

fn epic_run(dir: &Path, cache: &Path, out: &Path) -> Command {
    let mut c = Command::new(epic_bin());
    c.arg("run")
        .arg(dir.join("extract.rhai"))
        .arg(format!("cache={}", cache.display()))
        .arg(format!("out={}", out.display()))
        .args(["--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn chunks_in(cache: &Path) -> usize {
    let Ok(keys) = std::fs::read_dir(cache) else { return 0 };
    keys.flatten()
        .filter_map(|k| std::fs::read_dir(k.path()).ok())
        .flat_map(|d| d.flatten())
        .filter(|f| {
            // Not `chunk_<start>.claim`, the claim of a chunk being computed.
            let name = f.file_name().to_string_lossy().into_owned();
            name.starts_with("chunk_") && name.ends_with(".safetensors")
        })
        .count()
}

#[test]
fn killed_extractions_resume_to_the_same_bank() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("extract.rhai"), SCRIPT).unwrap();
    let whole = tmp.path().join("whole.safetensors");
    let o = epic_run(tmp.path(), &tmp.path().join("cache_whole"), &whole).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0 10 20", "60 images: 10 chunks of 6, 2 batches each");
    let want: std::collections::HashMap<_, _> = epic::io::load_tensors(&whole).unwrap().into_iter().collect();

    // Kill after 5 random numbers of complete chunks (1 to 9 of 10); the seed is
    // printed, and EPIC_KILL_SEED replays a run.
    let seed: u64 = std::env::var("EPIC_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let mut state = seed | 1;
    let points: Vec<usize> = (0..5)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            1 + (state % 9) as usize
        })
        .collect();
    eprintln!("EPIC_KILL_SEED={seed}: kill after {points:?} complete chunks");
    let mut identical = 0;
    for (i, after) in points.into_iter().enumerate() {
        let cache = tmp.path().join(format!("cache_{i}"));
        let out = tmp.path().join(format!("out_{i}.safetensors"));
        let mut child = epic_run(tmp.path(), &cache, &out).spawn().unwrap();
        let start = Instant::now();
        while chunks_in(&cache) < after && start.elapsed() < Duration::from_secs(120) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let kept = chunks_in(&cache);
        assert!(kept >= after, "kill {i}: {kept} chunks kept");

        let o = epic_run(tmp.path(), &cache, &out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let counts: Vec<usize> =
            String::from_utf8_lossy(&o.stdout).split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(counts[0] + counts[1], 10);
        assert_eq!(counts[0], kept, "resumed from every complete chunk");
        let got: std::collections::HashMap<_, _> = epic::io::load_tensors(&out).unwrap().into_iter().collect();
        if ["sums", "labels", "predicted"].iter().all(|k| got[*k].equal(&want[*k])) {
            identical += 1;
        }
        eprintln!("kill after {after} chunks: kept {kept}, resumed with {} computed", counts[1]);
        let leftovers =
            std::fs::read_dir(cache.join(std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().file_name()))
                .unwrap()
                .flatten()
                .filter(|f| f.file_name().to_string_lossy().ends_with(".tmp"))
                .count();
        assert_eq!(leftovers, 0, "temporary files of the killed run are cleaned up");
    }
    assert_eq!(identical, 5, "{identical}/5 resumed banks identical");
}

/// Training on a small bank of the real Lite0: 3 schedule steps, 2 Adam steps each.
const TRAIN: &str = r#"
let model = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });
let train = fashion_mnist("train", 4, model);
let bank = extract(model, train, #{ batch_size: 8, quiet: true });
let d = disentangler("orthogonal", model.channels());
let cfg = #{
    seed: 3, output_path: args.out, quiet: true,
    prototypes: #{ scheduler: #{ type: "lin", num_prototypes_start: 4, num_prototypes_end: 2, num_steps: 3 } },
    training: #{ num_epochs_per_prototypes: 2, batch_size: 8192, lr: 0.01 },
};
let history = train_disentangler(bank, d, cfg);
save_disentangler(d, args.out);
save_json(history, `${args.out}/history.json`);
"#;

fn train_run(dir: &Path, out: &Path) -> Command {
    let mut c = Command::new(epic_bin());
    c.arg("run")
        .arg(dir.join("train.rhai"))
        .arg(format!("out={}", out.display()))
        .args(["--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Steps done in the checkpoint under `out`, if it exists and reads.
fn steps_done(out: &Path) -> Option<i64> {
    let t = epic::io::load_tensors(&out.join(".epic/train_checkpoint.safetensors")).ok()?;
    t.into_iter().find(|(k, _)| k == "state").map(|(_, s)| s.int64_value(&[0]))
}

fn wait_until(child: &mut std::process::Child, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < Duration::from_secs(300) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn killed_or_interrupted_training_resumes_to_the_same_u() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("train.rhai"), TRAIN).unwrap();
    let whole = tmp.path().join("whole");
    let o = train_run(tmp.path(), &whole).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(steps_done(&whole), Some(3));
    let read = |dir: &Path| {
        (std::fs::read(dir.join("orthogonal.pt")).unwrap(), std::fs::read(dir.join("history.json")).unwrap())
    };
    let want = read(&whole);

    // SIGKILL after the first and the second checkpoint, and once mid-step.
    let mut identical = 0;
    for (i, after) in [1i64, 2, 0].into_iter().enumerate() {
        let out = tmp.path().join(format!("killed_{i}"));
        let mut child = train_run(tmp.path(), &out).spawn().unwrap();
        if after > 0 {
            wait_until(&mut child, || steps_done(&out).is_some_and(|s| s >= after));
        } else {
            wait_until(&mut child, || steps_done(&out).is_some());
            std::thread::sleep(Duration::from_millis(300));
        }
        child.kill().ok();
        child.wait().unwrap();
        let kept = steps_done(&out).unwrap_or(0);
        let o = train_run(tmp.path(), &out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        eprintln!("kill {i}: checkpoint after step {kept}");
        if read(&out) == want {
            identical += 1;
        }
    }
    assert_eq!(identical, 3, "{identical}/3 resumed trainings identical");

    // SIGINT: a clean stop, a message saying how to resume, exit 130; then resume.
    let out = tmp.path().join("interrupted");
    let mut child = train_run(tmp.path(), &out).spawn().unwrap();
    wait_until(&mut child, || steps_done(&out).is_some());
    let pid = child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        // The run finished before the signal landed: nothing to resume.
        eprintln!("the run ended before SIGINT arrived");
    } else {
        assert_eq!(o.status.code(), Some(130), "{err}");
        assert!(err.contains("interrupted during training") && err.contains("run the same command again"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.join("orthogonal.pt").exists(), "no U file from an interrupted run");
    }
    let o = train_run(tmp.path(), &out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read(&out) == want, "the resumed run's U and history equal the uninterrupted run's");
}
