//! Data sets and transforms against torchvision and PIL (the venv's, run by the
//! test), and Lite0's predictions on the CC0 photos through the whole path.
mod common;
use common::*;
use epic::data::{transform, Dataset, FashionMnist, ImageFolder, Loader};
use epic::model::{default_weights, Network, Preprocess};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

fn python(code: &str, args: &[&str]) -> String {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let o = Command::new(py).arg("-c").arg(code).args(args).output().expect("venv python");
    assert!(o.status.success(), "python: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn write_png(path: &Path, w: u32, h: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x as u8).wrapping_mul(seed), y as u8, seed]));
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

#[test]
fn image_folder_order_matches_torchvision() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    write_png(&r.join("zebra/b.png"), 4, 4, 1);
    write_png(&r.join("zebra/A.png"), 4, 4, 2);
    write_png(&r.join("zebra/sub/c.PNG"), 4, 4, 3);
    write_png(&r.join("ant/x.png"), 4, 4, 4);
    write_png(&r.join("ant/deeper/more/y.png"), 4, 4, 5);
    write_png(&r.join("Bee/10.png"), 4, 4, 6);
    write_png(&r.join("Bee/9.png"), 4, 4, 7);
    std::fs::write(r.join("ant/notes.txt"), "not an image").unwrap();
    std::fs::write(r.join("readme.md"), "top-level files are not classes").unwrap();

    let folder = ImageFolder::open(r).unwrap();
    let ours: Vec<String> = (0..folder.len())
        .map(|i| format!("{} {}", folder.sample(i).unwrap().0.strip_prefix(r).unwrap().display(), folder.label(i)))
        .collect();
    let theirs = python(
        "import sys, torchvision\nds = torchvision.datasets.ImageFolder(sys.argv[1])\nfor p, c in ds.samples: print(p[len(sys.argv[1]) + 1:], c)\nprint('classes', *ds.classes)",
        &[r.to_str().unwrap()],
    );
    let mut lines: Vec<&str> = theirs.lines().collect();
    let classes = lines.pop().unwrap();
    assert_eq!(ours, lines);
    assert_eq!(format!("classes {}", folder.class_names().join(" ")), classes);
    assert_eq!(folder.skipped().len(), 1, "notes.txt is skipped and counted");
}

#[test]
fn bad_folder_layouts_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let e = ImageFolder::open(&tmp.path().join("nope")).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("no such folder") && e.contains("one sub-folder per class"), "{e}");
    let e = ImageFolder::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("no class folders"), "{e}");
    write_png(&tmp.path().join("cat/a.png"), 4, 4, 1);
    std::fs::create_dir_all(tmp.path().join("dog")).unwrap();
    std::fs::write(tmp.path().join("dog/a.txt"), "x").unwrap();
    let e = ImageFolder::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("no image files in the class folder(s) dog"), "{e}");
}

#[test]
fn odd_image_modes_become_rgb_like_pil() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    // Gray, gray+alpha, RGBA, 16-bit gray, palette, CMYK JPEG: made by PIL; PIL's
    // own convert("RGB") is the expectation, except for 16 bits (see below).
    let out = python(
        r#"
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(0)
rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
Image.fromarray(rgb).convert("L").save(f"{d}/gray.png")
Image.fromarray(rgb).convert("LA").save(f"{d}/gray_alpha.png")
Image.fromarray(rgb).convert("RGBA").save(f"{d}/rgba.png")
Image.fromarray(rgb).convert("P").save(f"{d}/palette.png")
Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(f"{d}/gray16.png")
Image.fromarray(rgb).convert("CMYK").save(f"{d}/cmyk.jpg", quality=100)
for n in ["gray.png", "gray_alpha.png", "rgba.png", "palette.png", "cmyk.jpg"]:
    a = np.asarray(Image.open(f"{d}/{n}").convert("RGB")).astype(int)
    print(n, " ".join(map(str, a.flatten())))
# PIL clips 16-bit values to 255 on convert("RGB"); epic scales them (v/257), so
# the expectation is the 8-bit source the 16-bit image was made from.
print("gray16.png", " ".join(map(str, np.repeat(rgb[..., :1], 3, axis=2).astype(int).flatten())))
"#,
        &[d],
    );
    for line in out.lines() {
        let (name, vals) = line.split_once(' ').unwrap();
        let want: Vec<i64> = vals.split(' ').map(|v| v.parse().unwrap()).collect();
        let img = epic::data::image::load_rgb(&tmp.path().join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (7, 9), "{name}");
        let got: Vec<i64> = img.as_raw().iter().map(|&v| v as i64).collect();
        let dev = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).max().unwrap();
        // JPEG decoders differ by a few levels (IDCT rounding); lossless formats agree exactly.
        let bound = if name.ends_with(".jpg") { 2 } else { 0 };
        eprintln!("{name}: max |Δ| vs PIL = {dev}");
        assert!(dev <= bound, "{name}: {dev} levels from PIL");
    }
}

#[test]
fn resize_matches_pil_within_a_small_bound() {
    // torchvision's eval preset with the PIL backend (the reference's pipeline)
    // against epic's libtorch transform, in 0–255 levels before normalisation.
    let photos = fixture("efficientnet_lite0/photos");
    let out = python(
        r#"
import sys, numpy as np, torchvision.transforms as T
from PIL import Image
t = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BILINEAR, antialias=True), T.CenterCrop(224), T.PILToTensor()])
for n in ["chelsea.png", "coffee.png", "rocket.jpg"]:
    a = t(Image.open(sys.argv[1] + "/" + n).convert("RGB")).numpy().astype(np.uint8)
    open(sys.argv[2] + "/" + n + ".raw", "wb").write(a.tobytes())
"#,
        &[photos.to_str().unwrap(), std::env::temp_dir().to_str().unwrap()],
    );
    assert!(out.is_empty());
    let pre = Preprocess { mean: [0.0; 3], std: [1.0 / 255.0; 3], ..Preprocess::IMAGENET };
    for name in ["chelsea.png", "coffee.png", "rocket.jpg"] {
        let raw = std::fs::read(std::env::temp_dir().join(format!("{name}.raw"))).unwrap();
        let pil = Tensor::from_slice(&raw).to_kind(Kind::Float).view([3, 224, 224]);
        let img = epic::data::image::load_rgb(&photos.join(name)).unwrap();
        let ours = transform::preprocess(&img, &pre).unwrap();
        let diff = (&ours - &pil).abs();
        let (max, mean) = (diff.max().double_value(&[]), diff.mean(Kind::Double).double_value(&[]));
        eprintln!("{name}: epic vs PIL resize: max {max} levels, mean {mean:.4}");
        assert!(max <= 1.0 && mean < 0.25, "{name}: max {max}, mean {mean}");
    }
}

#[test]
fn lite0_recognises_the_photos() {
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("efficientnet_lite0/expected.json")).unwrap()).unwrap();
    let mut net = Network::new("efficientnet_lite0", 1000, Device::Cpu).unwrap();
    net.load_weights(&default_weights("efficientnet_lite0").unwrap()).unwrap();
    for name in ["chelsea.png", "coffee.png", "rocket.jpg"] {
        let img = epic::data::image::load_rgb(&fixture("efficientnet_lite0/photos").join(name)).unwrap();
        let x = transform::preprocess(&img, &net.preprocess()).unwrap().unsqueeze(0);
        let probs = net.logits(&x).unwrap().softmax(1, Kind::Float);
        let (p, idx) = probs.topk(5, 1, true, true);
        let ours = ints(&idx);
        let want: Vec<i64> =
            g["photos_top5"][name].as_array().unwrap().iter().map(|r| r[0].as_i64().unwrap()).collect();
        let shared = ours.iter().filter(|c| want.contains(c)).count();
        eprintln!("{name}: top-5 {ours:?} p {:?} (reference {want:?})", values(&p));
        match name {
            "coffee.png" => assert_eq!(ours[0], 967, "espresso"),
            "rocket.jpg" => assert_eq!(ours[0], 657, "missile"),
            _ => assert!([282, 285, 281].contains(&ours[0]), "chelsea: {}", ours[0]),
        }
        assert!(shared >= 4, "{name}: {shared} of 5 top-5 classes shared");
    }
}

#[test]
fn fashion_mnist_reads_the_debian_files_like_python() {
    let ds = FashionMnist::open(None, "train", Some(3)).unwrap();
    assert_eq!(ds.len(), 30);
    let out = python(
        r#"
import gzip, numpy as np
d = "/usr/share/datasets/fashion-mnist/"
lab = np.frombuffer(gzip.open(d + "train-labels-idx1-ubyte.gz").read()[8:], np.uint8)
img = np.frombuffer(gzip.open(d + "train-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 28, 28)
taken = {}
for i, c in enumerate(lab):
    if taken.get(c, 0) < 3:
        taken[c] = taken.get(c, 0) + 1
        print(i, c, int(img[i].sum()))
"#,
        &[],
    );
    for (k, line) in out.lines().enumerate() {
        let v: Vec<i64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        assert_eq!(ds.file_index(k), Some(v[0] as usize));
        assert_eq!(ds.label(k), v[1]);
        let img = ds.image(k).unwrap();
        let sum: i64 = img.pixels().map(|p| p[0] as i64).sum();
        assert_eq!(sum, v[2], "image {k}");
    }
    assert_eq!(FashionMnist::open(None, "test", None).unwrap().len(), 10_000);
    let e = FashionMnist::open(Some(Path::new("/nonexistent")), "train", None).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte.gz") && e.contains("dataset-fashion-mnist"), "{e}");
}

#[test]
fn loader_batches_cover_the_range_and_report_bad_images() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write_png(&tmp.path().join(format!("c/{i}.png")), 40 + i, 30, i as u8);
    }
    std::fs::write(tmp.path().join("c/5.png"), b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    let folder = ImageFolder::open(tmp.path()).unwrap();
    let loader = Loader::new(Arc::new(folder.clone()), Preprocess { resize: 32, crop: 24, ..Preprocess::IMAGENET }, 4);
    let batches: Vec<_> = loader.batches(0..6).map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.range.clone()).collect::<Vec<_>>(), [0..4, 4..6]);
    assert_eq!(batches[0].images.size(), [4, 3, 24, 24]);
    let failed = &batches[1].failed;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 5);
    assert!(failed[0].1.contains("5.png") && failed[0].1.contains("cannot decode"), "{}", failed[0].1);
    assert_eq!(batches[1].images.get(1).abs().sum(Kind::Double).double_value(&[]), 0.0);
    // Each row is the transform of its image.
    let direct =
        transform::preprocess(&folder.image(2).unwrap(), &Preprocess { resize: 32, crop: 24, ..Preprocess::IMAGENET })
            .unwrap();
    assert_eq!(max_abs_diff(&batches[0].images.get(2), &direct), 0.0);
}
