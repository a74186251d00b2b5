//! `epic report` of the tiny demo, opened in a real browser: Debian's headless
//! Chromium (tools/setup.sh installs it; this test installs it when absent).
//! Every page's images load (the pages' own check marks the body with
//! `data-images-broken`), the console stays silent, every internal link of every
//! page resolves, and the summary's screenshot is kept in target/tmp/ to look at.
mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    let find = || ["chromium", "chromium-browser"].iter().map(|n| Path::new("/usr/bin").join(n)).find(|p| p.is_file());
    if let Some(p) = find() {
        return p;
    }
    let o = Command::new("sh")
        .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium"])
        .output()
        .expect("apt-get");
    assert!(o.status.success(), "installing chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    find().expect("chromium after apt-get install")
}

/// Loads `page` headlessly: (the DOM after load, Chromium's console lines).
fn open(browser: &Path, page: &Path, profile: &Path) -> (String, Vec<String>) {
    let o = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", page.display(), String::from_utf8_lossy(&o.stderr));
    let console =
        String::from_utf8_lossy(&o.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(String::from).collect();
    (String::from_utf8_lossy(&o.stdout).into_owned(), console)
}

/// `name="…"` attribute values in `html`.
fn attributes(html: &str, name: &str) -> Vec<String> {
    let needle = format!("{name}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

fn body_attribute(dom: &str, name: &str) -> Option<i64> {
    let body = &dom[dom.find("<body")?..];
    let tag = &body[..body.find('>')?];
    attributes(tag, name).first()?.parse().ok()
}

#[test]
fn the_report_of_the_tiny_demo_loads_in_chromium_with_every_image_and_link() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = tiny_demo(&run, &dir.path().join("cache")).arg("dataset.val_per_class=1").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for args in [
        vec!["evaluate", run.to_str().unwrap(), "--device", "cpu"],
        vec!["report", run.to_str().unwrap(), "--device", "cpu", "--per-page", "500"],
    ] {
        let o = Command::new(epic_bin()).args(&args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let report = run.join("report");

    // Every link and image of every page resolves to a file of the report.
    let mut pages: Vec<PathBuf> = vec![report.join("index.html"), report.join("gallery.html")];
    pages.extend(std::fs::read_dir(report.join("channels")).unwrap().map(|e| e.unwrap().path()));
    let channel_pages =
        pages.iter().filter(|p| p.file_stem().unwrap().to_str().unwrap().parse::<i64>().is_ok()).count();
    assert_eq!(channel_pages, 1280, "one page per EfficientNet-Lite0 channel");
    // 1280 channels at 500 a page: 3 pages in each of the two orders.
    for order in ["by-gain", "by-id"] {
        for p in 1..=3 {
            assert!(report.join(format!("channels/{order}-{p}.html")).is_file());
        }
        assert!(!report.join(format!("channels/{order}-4.html")).exists());
    }
    let mut targets = BTreeSet::new();
    for page in &pages {
        let html = std::fs::read_to_string(page).unwrap();
        for link in attributes(&html, "href").into_iter().chain(attributes(&html, "src")) {
            assert!(
                !link.starts_with("http") && !link.starts_with("//"),
                "{}: a link off the machine: {link}",
                page.display()
            );
            let file = link.split('#').next().unwrap();
            if file.is_empty() {
                continue;
            }
            let target = page.parent().unwrap().join(file);
            assert!(target.is_file(), "{}: link {link} does not resolve", page.display());
            targets.insert(target.canonicalize().unwrap());
        }
    }
    assert!(targets.iter().any(|t| t.extension().is_some_and(|e| e == "png")));

    // In the browser: the summary, the gallery, a list page and two channel pages.
    let profile = dir.path().join("profile");
    let sample = [
        report.join("index.html"),
        report.join("gallery.html"),
        report.join("channels/by-gain-1.html"),
        report.join("channels/0.html"),
        report.join("channels/1279.html"),
    ];
    for page in &sample {
        let (dom, console) = open(&browser, page, &profile);
        assert!(console.is_empty(), "{}: console: {console:?}", page.display());
        let html = std::fs::read_to_string(page).unwrap();
        let expected = html.matches("<img ").count() as i64;
        assert_eq!(body_attribute(&dom, "data-images-broken"), Some(0), "{}", page.display());
        assert_eq!(body_attribute(&dom, "data-images-loaded"), Some(expected), "{}", page.display());
    }
    // The summary shows evaluate's agreement and both purities.
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(index.contains("prediction agreement") && index.contains("100.0 %"), "evaluate's numbers");
    let purity = std::fs::read_to_string(run.join("purity_after_orthogonal_train.json")).unwrap();
    let purity: serde_json::Value = serde_json::from_str(&purity).unwrap();
    assert!(index.contains(&format!("{:.4}", purity["purity_after_train"].as_f64().unwrap())), "purity after");

    // A page whose image is gone says so, in the browser.
    let html = std::fs::read_to_string(report.join("channels/0.html")).unwrap();
    let victim = attributes(&html, "src")[0].clone();
    std::fs::remove_file(report.join("channels").join(&victim)).unwrap();
    let (dom, _) = open(&browser, &report.join("channels/0.html"), &profile);
    // The image may be a prototype both before and after training: each use counts.
    let uses = attributes(&html, "src").iter().filter(|s| **s == victim).count() as i64;
    assert_eq!(body_attribute(&dom, "data-images-broken"), Some(uses));

    // The screenshot, to look at.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/report_index.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let o = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1700"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.join("index.html").display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = image::open(&shot).unwrap();
    assert_eq!((png.width(), png.height()), (1280, 1700));
}
