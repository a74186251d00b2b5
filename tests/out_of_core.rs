//! A bank larger than its memory bound (`dataloader.bank_mib`): 262 144 images ×
//! 256 channels (256 MiB of sums, ties everywhere, some images invalid), kept
//! on disk in 64 chunks and selected from with a bound of 32 MiB.
//!
//! Peak memory is a property of a whole process, so each phase runs in a child
//! process of this test binary (the same test, with a role in the environment):
//! one writes the bank, one selects from it on disk, one selects from it held in
//! memory. The parent checks that both selections are equal, positive and
//! negative, and that the on-disk selection's peak stays within the bound, while
//! the held one's does not (so the measurement can fail).
use epic::features::Bank;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

const ROLE: &str = "EPIC_OUT_OF_CORE_ROLE";
const DIR: &str = "EPIC_OUT_OF_CORE_DIR";
const N: i64 = 262_144;
const C: i64 = 256;
const CHUNK: usize = 2048;
const BOUND_MIB: usize = 40;
const M: i64 = 100;

#[test]
fn selection_over_a_bank_on_disk_stays_within_its_bound_and_equals_the_held_one() {
    if let (Ok(role), Ok(dir)) = (std::env::var(ROLE), std::env::var(DIR)) {
        return child(&role, Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap();
    for role in ["write", "disk", "memory"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "selection_over_a_bank_on_disk_stays_within_its_bound_and_equals_the_held_one"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(ROLE, role)
            .env(DIR, tmp.path())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the {role} child failed:\n{text}");
        for line in text.lines().filter_map(|l| l.find("out-of-core").map(|at| &l[at..])) {
            eprintln!("{line}");
        }
    }
    let read = |role: &str| -> (Vec<(String, Tensor)>, serde_json::Value) {
        let t = epic::io::load_tensors(&tmp.path().join(format!("{role}.safetensors"))).unwrap();
        let j = std::fs::read_to_string(tmp.path().join(format!("{role}.json"))).unwrap();
        (t, serde_json::from_str(&j).unwrap())
    };
    let ((disk, dj), (held, hj)) = (read("disk"), read("memory"));
    for ((name, d), (_, h)) in disk.iter().zip(&held) {
        assert_eq!(d.size(), [C, M]);
        assert!(d.equal(h), "{name}: the selection on disk differs from the held one");
    }
    // Invalid images (every 1000th) are never prototypes.
    let invalid = disk[0].1.remainder(1000).eq(0).any().int64_value(&[]);
    assert_eq!(invalid, 0);
    let growth = |j: &serde_json::Value| j["peak_growth"].as_u64().unwrap();
    let (dg, hg) = (growth(&dj), growth(&hj));
    // Everything the bank holds (labels, predictions, validity: 4.25 MiB) and
    // selection's working set (a chunk read, rotated and ranked; the candidates).
    assert!(dg <= (BOUND_MIB as u64) << 20, "on disk: {dg} bytes above the start");
    assert!(hg >= (N * C * 4) as u64, "held: {hg} bytes above the start (the sums alone are {})", N * C * 4);
}

fn child(role: &str, dir: &Path) {
    let folder: PathBuf = dir.join("bank");
    let cpu = (Kind::Float, Device::Cpu);
    if role == "write" {
        tch::manual_seed(21);
        // One decimal: many equal values at every channel's cut.
        let sums = (Tensor::randn([N, C], cpu) * 10.0).round() / 10.0;
        let valid = Tensor::arange(N, (Kind::Int64, Device::Cpu)).remainder(1000).ne(0);
        let sums = sums * valid.to_kind(Kind::Float).unsqueeze(1);
        let labels = Tensor::arange(N, (Kind::Int64, Device::Cpu)).remainder(10);
        let bank = Bank::new(sums, labels.shallow_clone(), labels, valid, (7, 7));
        bank.save(&folder, CHUNK, "synthetic", "random sums").unwrap();
        return;
    }
    // libtorch's own first: thread pools and kernels' buffers, warmed on one chunk.
    let warm = Tensor::randn([CHUNK as i64, C], cpu);
    let _ = warm.matmul(&Tensor::eye(C, cpu)).tr().topk(M + 8, 1, true, true).1.sort_stable(true, 1, true);
    drop(warm);
    epic::memory::return_free_memory();
    let reset = epic::memory::reset_peak_rss();
    let start = epic::memory::rss_bytes().unwrap();
    let start_peak = epic::memory::peak_rss_bytes().unwrap();
    let t0 = std::time::Instant::now();
    let bank = Bank::open(&folder, if role == "disk" { Some(BOUND_MIB) } else { None }).unwrap();
    assert_eq!(bank.on_disk(), role == "disk");
    let opened = t0.elapsed().as_secs_f64();
    tch::manual_seed(22);
    let u = epic::disentangle::orthogonal_matrix(&(Tensor::randn([C, C], cpu) * 0.01)).unwrap();
    let t1 = std::time::Instant::now();
    let top = bank.top_prototypes(Some(&u), M).unwrap();
    let selected = t1.elapsed().as_secs_f64();
    let negative = bank.top_negative_prototypes(&u, M).unwrap();
    let peak = epic::memory::peak_rss_bytes().unwrap();
    // Without a reset the peak may predate the phase; count growth from the larger.
    let growth = peak.saturating_sub(if reset { start } else { start_peak.max(start) });
    println!(
        "out-of-core {role}: open {opened:.2} s, selection of {M} under U {selected:.2} s \
         ({:.2} s per million images at C = {C}), peak {:.1} MiB above the start (reset: {reset})",
        selected / (N as f64 / 1e6),
        growth as f64 / 1048576.0
    );
    epic::io::save_tensors(&[("top", &top), ("negative", &negative)], &dir.join(format!("{role}.safetensors")))
        .unwrap();
    let j = serde_json::json!({ "peak_growth": growth, "selection_s": selected, "open_s": opened });
    std::fs::write(dir.join(format!("{role}.json")), j.to_string()).unwrap();
}
