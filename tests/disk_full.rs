//! Every writer against a full disk: a small tmpfs where this test may mount one
//! (root), an injected failure otherwise (`RLIMIT_FSIZE`, so that any write past
//! the limit fails with EFBIG, with `SIGXFSZ` ignored). Each writer's error names
//! the file it was asked to write and says the disk is full; the version of the
//! file written before stays intact; no partial or temporary file is left. Then
//! the tiny demo itself runs out of space: every artifact it left is byte-identical
//! to an uninterrupted run's.
//!
//! One test function, so that the file-size limit of the fallback cannot touch
//! another test of this binary.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// A place where writes past `room` bytes fail.
enum Disk {
    Tmpfs(PathBuf),
    Limit(PathBuf),
}

impl Disk {
    fn new(root: &Path, size: u64) -> Disk {
        let dir = root.join("disk");
        std::fs::create_dir_all(&dir).unwrap();
        // EPIC_TEST_NO_TMPFS=1 tries the fallback where mounting would work.
        let ok = std::env::var_os("EPIC_TEST_NO_TMPFS").is_none()
            && std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}")])
                .arg("tmpfs")
                .arg(&dir)
                .output()
                .is_ok_and(|o| o.status.success());
        if ok {
            Disk::Tmpfs(dir)
        } else {
            eprintln!("no tmpfs (not root?): the file-size limit stands in for a full disk");
            Disk::Limit(dir)
        }
    }

    fn dir(&self) -> &Path {
        match self {
            Disk::Tmpfs(d) | Disk::Limit(d) => d,
        }
    }

    /// Leaves about `room` bytes writable (per file, for the limit).
    fn fill(&self, room: u64) {
        match self {
            Disk::Tmpfs(d) => {
                let filler = d.join("filler");
                let _ = std::fs::remove_file(&filler);
                let free = fs_free(d);
                let f = std::fs::File::create(&filler).unwrap();
                let mut w = std::io::BufWriter::new(f);
                let block = vec![0u8; 4096];
                let mut left = free.saturating_sub(room);
                while left > 0 {
                    let n = left.min(4096);
                    if std::io::Write::write_all(&mut w, &block[..n as usize]).is_err() {
                        break;
                    }
                    left -= n;
                }
                let _ = std::io::Write::flush(&mut w);
            }
            Disk::Limit(_) => set_file_limit(room),
        }
    }

    fn unfill(&self) {
        match self {
            Disk::Tmpfs(d) => {
                let _ = std::fs::remove_file(d.join("filler"));
            }
            Disk::Limit(_) => set_file_limit(u64::MAX),
        }
    }

    /// Files in the disk's folder `sub`, other than the filler.
    fn files(&self, sub: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(sub)
            .map(|d| {
                d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n != "filler").collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.unfill();
        if let Disk::Tmpfs(d) = self {
            let _ = std::process::Command::new("umount").arg(d).status();
        }
    }
}

fn fs_free(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
}

fn set_file_limit(bytes: u64) {
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: if bytes == u64::MAX { libc::RLIM_INFINITY } else { bytes },
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

type Writer = Box<dyn Fn(&Path, usize) -> epic::Result<()>>;

/// (name, file name, writer of a version of about `n` bytes).
fn writers() -> Vec<(&'static str, &'static str, Writer)> {
    let floats = |n: usize| Tensor::arange((n / 4) as i64, (Kind::Float, tch::Device::Cpu));
    vec![
        (
            "safetensors (U, checkpoints, chunks)",
            "u.safetensors",
            Box::new(move |p, n| epic::io::save_tensors(&[("A_raw", &floats(n))], p)),
        ),
        (
            "torch.save zip (U .pt)",
            "u.pt",
            Box::new(move |p, n| epic::model::pth::write_pth(&[("A_raw", &floats(n))], p).map_err(epic::Error::from)),
        ),
        (
            "figure (PNG)",
            "figure.png",
            Box::new(|p, n| {
                let side = ((n / 3) as f64).sqrt() as u32;
                let mut c = epic::render::Canvas::new(side, side, [255, 255, 255]);
                let mut state = 1u32;
                for y in 0..side {
                    for x in 0..side {
                        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                        c.image.put_pixel(
                            x,
                            y,
                            image::Rgb([(state >> 24) as u8, (state >> 16) as u8, (state >> 8) as u8]),
                        );
                    }
                }
                c.save(p)
            }),
        ),
        (
            "config (YAML)",
            "config.yaml",
            Box::new(|p, n| {
                let v: serde_yaml::Value = serde_yaml::from_str(&format!("note: {}\n", "x".repeat(n))).unwrap();
                epic::config::save(&v, p)
            }),
        ),
        ("JSON and text", "purity.json", Box::new(|p, n| epic::io::atomic::write_bytes_atomic(p, &vec![b' '; n]))),
    ]
}

#[test]
fn every_writer_fails_cleanly_on_a_full_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Disk::new(tmp.path(), 48 << 20);
    let dir = disk.dir().join("out");
    std::fs::create_dir_all(&dir).unwrap();
    for (what, name, write) in writers() {
        let path = dir.join(name);
        write(&path, 4096).unwrap_or_else(|e| panic!("{what}: {e}"));
        let before = std::fs::read(&path).unwrap();
        disk.fill(64 << 10);
        let r = write(&path, 2 << 20);
        disk.unfill();
        let e = match r {
            Ok(()) => panic!("{what}: a 2 MiB write succeeded on a full disk"),
            Err(e) => e.to_string(),
        };
        eprintln!("CASE {what}: {e}");
        assert!(e.contains(&path.display().to_string()), "{what}: the message does not name {}: {e}", path.display());
        assert!(e.contains("disk is full"), "{what}: {e}");
        assert!(std::fs::read(&path).unwrap() == before, "{what}: the earlier version changed");
        let left: Vec<String> = disk.files(&dir).into_iter().filter(|f| f.ends_with(".tmp")).collect();
        assert!(left.is_empty(), "{what}: left {left:?}");
    }

    // Cache chunks: the pass stops at the chunk that did not fit, naming it; the
    // chunks before it are whole, and a rerun with space resumes from them.
    let net = {
        let mut n = epic::model::Network::new("efficientnet_lite0", 1000, tch::Device::Cpu).unwrap();
        n.load_weights(&epic::model::default_weights("efficientnet_lite0").unwrap()).unwrap();
        n.set_sizes(64, 64);
        n
    };
    let data: std::sync::Arc<dyn epic::data::Dataset> =
        std::sync::Arc::new(epic::data::FashionMnist::open(None, "train", Some(2)).unwrap());
    let options = epic::features::ExtractOptions {
        batch_size: epic::features::BatchSize::Fixed(5),
        chunk: 5,
        cache: Some(disk.dir().join("cache")),
        quiet: true,
        ..Default::default()
    };
    // A chunk of 5 images holds 5 × 1280 sums: 25.6 kB. The tmpfs leaves room
    // for two; the file-size limit (per file) fails the first.
    disk.fill(match disk {
        Disk::Tmpfs(_) => 60 << 10,
        Disk::Limit(_) => 16 << 10,
    });
    let r = epic::features::extract(&net, data.clone(), &options);
    disk.unfill();
    let e = r.err().map(|e| e.to_string()).expect("the pass fit in 60 kB");
    eprintln!("CASE cache chunk: {e}");
    assert!(e.contains("chunk_0000000") && e.contains("disk is full"), "{e}");
    let key = std::fs::read_dir(disk.dir().join("cache")).unwrap().flatten().next().unwrap().path();
    let kept = disk.files(&key);
    // Whole chunks, and the bank's layout (for `epic bank status`).
    let kept: Vec<String> = kept.into_iter().filter(|f| f != "bank.json").collect();
    assert!(kept.iter().all(|f| f.starts_with("chunk_") && f.ends_with(".safetensors")), "{kept:?}");
    for f in &kept {
        epic::io::load_tensors(&key.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let (_, report) = epic::features::extract(&net, data, &options).unwrap();
    assert_eq!((report.chunks_reused, report.chunks_computed), (kept.len(), 4 - kept.len()));
    drop(disk);

    // The tiny demo runs out of space: whatever it left equals a full run's.
    let full = tmp.path().join("full");
    let cache = tmp.path().join("cache");
    let o = demo(&full, &cache, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let disk = Disk::new(&tmp.path().join("small"), 24 << 20);
    let out = disk.dir().join("out");
    let o = demo(
        &out,
        &cache,
        match &disk {
            Disk::Limit(_) => Some(8 << 20),
            Disk::Tmpfs(_) => None,
        },
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    eprintln!("CASE tiny demo: {line}");
    assert!(line.contains("disk is full") && line.contains(&out.display().to_string()), "{line}");
    let mut stack = vec![out.clone()];
    let mut kept = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(&out).unwrap();
            let name = rel.file_name().unwrap().to_string_lossy();
            assert!(!name.ends_with(".tmp"), "a temporary file is left: {}", rel.display());
            if rel.ends_with(".epic/config.yaml") || rel.ends_with(".epic/run.json") {
                continue; // they hold the output path
            }
            if rel.ends_with(".epic/train_checkpoint.safetensors") {
                // The state after an earlier step: whole, by its checksum.
                epic::io::read_tensors(&p).unwrap_or_else(|e| panic!("a partial checkpoint: {e}"));
                kept += 1;
                continue;
            }
            assert!(std::fs::read(&p).unwrap() == std::fs::read(full.join(rel)).unwrap(), "{} differs", rel.display());
            kept += 1;
        }
    }
    eprintln!("tiny demo on a full disk: {kept} artifact(s) kept, each identical to the full run's");
}

/// The tiny demo (`common::tiny_demo`) into `out`, optionally under a file-size limit.
fn demo(out: &Path, cache: &Path, limit: Option<u64>) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut c = tiny_demo(out, cache);
    if let Some(bytes) = limit {
        unsafe {
            c.pre_exec(move || {
                set_file_limit(bytes);
                Ok(())
            });
        }
    }
    c.output().unwrap()
}
