//! A YAML alias bomb ("billion laughs") is refused before anything expands, in
//! bounded memory: this process's peak RSS, reset just before the parse
//! (`/proc/self/clear_refs`), grows by less than 64 MiB. One test alone in its
//! binary, so that no other test's memory counts.
use std::path::Path;

/// Resident set size now and its peak since the last reset, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = |key: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

#[test]
fn an_alias_bomb_is_refused_before_it_expands() {
    // Nine levels of nine aliases: 9⁹ ≈ 387 million strings once expanded.
    let mut yaml =
        String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..=9 {
        let p = format!("*a{}", i - 1);
        yaml.push_str(&format!("a{i}: &a{i} [{}]\n", vec![p; 9].join(", ")));
    }
    yaml.push_str("seed: 0\n");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.yaml");
    std::fs::write(&path, &yaml).unwrap();
    // The reset needs a kernel with clear_refs (Linux ≥ 4.0); the test fails without it.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let (before, _) = rss();
    let r = epic::config::load(&path);
    let (_, peak) = rss();
    let grew = peak.saturating_sub(before);
    let e = match r {
        Ok(_) => panic!("the alias bomb was accepted"),
        Err(e) => e.to_string(),
    };
    eprintln!("alias bomb ({} bytes): peak RSS grew by {:.1} MiB; {e}", yaml.len(), grew as f64 / (1 << 20) as f64);
    for needle in ["bomb.yaml", "line 2", "YAML alias", "write the values out"] {
        assert!(e.contains(needle), "{needle:?} missing from: {e}");
    }
    assert!(grew < 64 << 20, "peak RSS grew by {grew} bytes");

    // A merge key is refused likewise; an ordinary config still loads.
    std::fs::write(&path, "base: {lr: 1}\ntraining:\n  <<: {lr: 2}\n").unwrap();
    let e = epic::config::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("line 3") && e.contains("merge key"), "{e}");
    let ok = epic::config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/imagenet_resnet34.yaml")));
    assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.to_string()));
}
