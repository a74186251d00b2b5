//! Bad input, one case per test: every one must end in an error that names the
//! file, key or script line and says what to do, and never in a panic, an abort
//! across the libtorch boundary or a half-written file posing as a whole one.
//!
//! Cases that a user meets through the command line run the `epic` binary, where a
//! panic would show (exit status 101, "panicked" on stderr); the rest call the
//! library. Inputs are made small on the spot; `tests/fixtures/bad_input` holds
//! what needs PyTorch or PIL to make (`make.py` there), and `tests/fixtures/fuzz`
//! the inputs fuzzing found (see `fuzz/`).
//!
//! Run with `--nocapture` to see every message (`CASE name: message`); README's
//! "Troubleshooting" section quotes them.
mod common;
use common::*;
use epic::data::{Dataset, ImageFolder};
use epic::model::Network;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};

// ---------------------------------------------------------------------------
// Helpers

/// The system allocator, noting the largest block each thread asks for, so that a
/// test can show that a hostile header did not make epic allocate what it claims.
struct Largest;

thread_local! {
    static LARGEST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

unsafe impl std::alloc::GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        std::alloc::System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        std::alloc::System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        std::alloc::System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// `f`'s result and the largest block (bytes) Rust code allocated on this thread meanwhile.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|m| m.set(0));
    let r = f();
    (r, LARGEST.with(|m| m.get()))
}

const MIB: usize = 1 << 20;

/// What a run of the binary left.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

/// Runs `epic args…` in `cwd`.
fn epic(args: &[&str], cwd: &Path) -> Run {
    let o = Command::new(epic_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("EPIC_LIB")
        .output()
        .expect("run epic");
    Run {
        code: o.status.code(),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Writes `body` to `dir/name` and runs it with `epic run` on the CPU, plus `args`.
fn run_script(dir: &Path, name: &str, body: &str, args: &[&str]) -> Run {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    let path = path.to_string_lossy().into_owned();
    let mut all = vec!["run", path.as_str(), "--device", "cpu"];
    all.extend_from_slice(args);
    epic(&all, dir)
}

/// The run failed as it should: exit status `code` (1: the script or an input
/// failed; 2: the command line), an `error:` line, no panic, no abort, no
/// libtorch backtrace. Returns stderr.
fn failed_cleanly(case: &str, r: &Run, code: i32) -> String {
    assert_eq!(r.code, Some(code), "{case}: exit status {:?}\nstdout:\n{}\nstderr:\n{}", r.code, r.out, r.err);
    for bad in ["panicked", "RUST_BACKTRACE", "terminate called", "Exception raised from", "Aborted"] {
        assert!(!r.err.contains(bad), "{case}: {bad:?} on stderr:\n{}", r.err);
    }
    assert!(r.err.contains("error: "), "{case}: no error line:\n{}", r.err);
    eprintln!("CASE {case}: {}", r.err.trim_end());
    r.err.clone()
}

/// `msg` contains every needle.
fn says(case: &str, msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "{case}: {n:?} missing from:\n{msg}");
    }
}

/// A library error's message, logged for the README.
fn message<T, E: std::fmt::Display>(case: &str, r: Result<T, E>) -> String {
    let e = match r {
        Ok(_) => panic!("{case}: succeeded, but the input is bad"),
        Err(e) => e.to_string(),
    };
    eprintln!("CASE {case}: {e}");
    e
}

/// Every file under `dir`, relative, sorted (to show nothing extra was left).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, ((x + y) * 7) as u8]))
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(gradient(w, h)), ImageFormat::Png)
}

fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(gradient(w, h)), ImageFormat::Jpeg)
}

/// A PNG that is only a header: `w`×`h` RGB8, one empty IDAT, IEND (CRCs valid).
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A small folder of class folders with PNGs: `(class, n)` pairs.
fn image_folder(root: &Path, classes: &[(&str, usize)]) {
    for (class, n) in classes {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..*n {
            gradient(20 + i as u32, 16).save(root.join(format!("{class}/{i}.png"))).unwrap();
        }
    }
}

/// A state dict of zeros with the parameter names and shapes of `name`.
fn zero_state(name: &str, classes: i64) -> Vec<(String, Tensor)> {
    let net = Network::new(name, classes, Device::Cpu).unwrap();
    net.parameter_shapes()
        .into_iter()
        .map(|(k, s)| (k, Tensor::zeros(s.as_slice(), (Kind::Float, Device::Cpu))))
        .collect()
}

fn save_state(state: &[(String, Tensor)], path: &Path) {
    let refs: Vec<(&str, &Tensor)> = state.iter().map(|(k, v)| (k.as_str(), v)).collect();
    epic::io::save_tensors(&refs, path).unwrap();
}

fn bad_input(rel: &str) -> PathBuf {
    fixture("bad_input").join(rel)
}

// ---------------------------------------------------------------------------
// Images

#[test]
fn truncated_png_is_a_decode_error_naming_the_file() {
    let png = png_bytes(24, 16);
    for cut in [8, 33, png.len() / 2, png.len() - 13] {
        let e = message("truncated PNG", epic::data::image::decode_rgb(&png[..cut], Path::new("cats/cut.png")));
        says("truncated PNG", &e, &["cats/cut.png", "cannot decode the image", "remove or replace the file"]);
    }
}

#[test]
fn truncated_jpeg_is_refused_not_filled_with_gray() {
    let jpg = jpeg_bytes(64, 48);
    assert!(epic::data::image::decode_rgb(&jpg, Path::new("whole.jpg")).is_ok());
    for frac in [0.3, 0.6, 0.9, 0.99] {
        let cut = &jpg[..(jpg.len() as f64 * frac) as usize];
        let e = message("truncated JPEG", epic::data::image::decode_rgb(cut, Path::new("dogs/cut.jpg")));
        says("truncated JPEG", &e, &["dogs/cut.jpg", "cannot decode the image", "remove or replace the file"]);
    }
    // The last two bytes are the end-of-image marker: without them the file is cut.
    let e = message("truncated JPEG", epic::data::image::decode_rgb(&jpg[..jpg.len() - 2], Path::new("dogs/eoi.jpg")));
    says("truncated JPEG", &e, &["truncated"]);
    // Padding after the marker, as cameras write, is fine.
    let mut padded = jpg.clone();
    padded.extend_from_slice(&[0; 100]);
    assert!(epic::data::image::decode_rgb(&padded, Path::new("padded.jpg")).is_ok());
}

#[test]
fn corrupt_jpeg_and_png_are_decode_errors() {
    // JPEG: the frame header (SOF0) says 0 components.
    let mut jpg = jpeg_bytes(32, 32);
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpg[sof + 9] = 0;
    let e = message("corrupt JPEG", epic::data::image::decode_rgb(&jpg, Path::new("corrupt.jpg")));
    says("corrupt JPEG", &e, &["corrupt.jpg", "cannot decode the image", "remove or replace the file"]);
    // PNG: the compressed pixel data is overwritten.
    let mut png = png_bytes(32, 32);
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    for b in &mut png[idat + 4..idat + 40] {
        *b = 0xA5;
    }
    let e = message("corrupt PNG", epic::data::image::decode_rgb(&png, Path::new("corrupt.png")));
    says("corrupt PNG", &e, &["corrupt.png", "cannot decode the image"]);
    // Text, and nothing at all, under an image name.
    let e = message("text as JPEG", epic::data::image::decode_rgb(b"just some notes\n", Path::new("notes.jpg")));
    says("text as JPEG", &e, &["notes.jpg", "not JPEG, PNG", "remove or replace the file"]);
    let e = message("empty file", epic::data::image::decode_rgb(b"", Path::new("empty.png")));
    says("empty file", &e, &["empty.png", "the file is empty"]);
}

#[test]
fn bad_images_through_the_cli_are_counted_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let png = png_bytes(40, 30);
    std::fs::write(d.join("cut.png"), &png[..png.len() / 2]).unwrap();
    let jpg = jpeg_bytes(40, 30);
    std::fs::write(d.join("cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    std::fs::write(d.join("bomb.png"), png_header_only(20_000, 20_000)).unwrap();
    std::fs::write(d.join("notes.jpg"), "not an image").unwrap();
    std::fs::write(d.join("good.png"), &png).unwrap();
    let names = ["cut.png", "cut.jpg", "bomb.png", "notes.jpg", "missing.png", "good.png"];
    let mut args = vec!["predict", "efficientnet_lite0", "-k", "1", "--device", "cpu"];
    args.extend(names);
    let r = epic(&args, d);
    let err = failed_cleanly("bad images (predict)", &r, 1);
    says("bad images (predict)", &err, &["5 of 6 images could not be read", "downscale it", "truncated"]);
    for n in &names[..5] {
        assert!(err.lines().any(|l| l.contains(n)), "{n} not named:\n{err}");
    }
    assert!(r.out.contains("good.png"), "the good image is still classified:\n{}", r.out);
}

#[test]
fn cmyk_16_bit_and_grayscale_images_decode_to_rgb() {
    // CMYK JPEG (made by PIL): PIL's own RGB conversion, within JPEG rounding.
    let img = epic::data::image::load_rgb(&bad_input("cmyk.jpg")).unwrap();
    let pil = std::fs::read(bad_input("cmyk.rgb")).unwrap();
    assert_eq!((img.width(), img.height()), (8, 6));
    let dev = img.as_raw().iter().zip(&pil).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(dev <= 2, "CMYK: {dev} levels from PIL");

    let src = gradient(7, 5);
    // 16-bit RGB and gray PNGs holding v·257: back to v exactly.
    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(7, 5, |x, y| Rgb(src.get_pixel(x, y).0.map(|v| v as u16 * 257)));
    let got = epic::data::image::decode_rgb(
        &encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png),
        Path::new("rgb16.png"),
    )
    .unwrap();
    assert_eq!(got.as_raw(), src.as_raw(), "16-bit RGB");
    let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(7, 5, |x, y| Luma([src.get_pixel(x, y).0[0] as u16 * 257]));
    let got = epic::data::image::decode_rgb(
        &encode(&DynamicImage::ImageLuma16(gray16), ImageFormat::Png),
        Path::new("g16.png"),
    )
    .unwrap();
    assert!(got.pixels().zip(src.pixels()).all(|(g, s)| g.0 == [s.0[0]; 3]), "16-bit gray");
    // 8-bit gray (PNG and JPEG): one value in all three channels.
    let gray: ImageBuffer<Luma<u8>, Vec<u8>> = ImageBuffer::from_fn(7, 5, |x, y| Luma([src.get_pixel(x, y).0[1]]));
    let got = epic::data::image::decode_rgb(
        &encode(&DynamicImage::ImageLuma8(gray.clone()), ImageFormat::Png),
        Path::new("g.png"),
    )
    .unwrap();
    assert!(got.pixels().zip(gray.pixels()).all(|(g, s)| g.0 == [s.0[0]; 3]), "8-bit gray");
    let got =
        epic::data::image::decode_rgb(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Jpeg), Path::new("g.jpg"))
            .unwrap();
    assert!(got.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]), "gray JPEG");
}

#[test]
fn huge_images_are_refused_from_the_header_before_decoding() {
    for (w, h) in [(20_000, 20_000), (60_000, 8), (8, 1 << 30)] {
        let bytes = png_header_only(w, h);
        let t = std::time::Instant::now();
        let (r, largest) = largest_allocation(|| epic::data::image::decode_rgb(&bytes, Path::new("bomb.png")));
        let e = message("huge image", r);
        assert!(t.elapsed().as_secs_f64() < 1.0, "{w}×{h}: took {:?}", t.elapsed());
        assert!(largest < 16 * MIB, "{w}×{h}: allocated {largest} bytes for a {}-byte file", bytes.len());
        says("huge image", &e, &["bomb.png", &format!("{w} × {h} pixels"), "megapixels", "downscale it"]);
    }
    // Within the limits, a header-only file is an ordinary decode error.
    let e = message("no pixel data", epic::data::image::decode_rgb(&png_header_only(300, 200), Path::new("short.png")));
    says("no pixel data", &e, &["short.png", "cannot decode the image"]);
}

#[test]
fn an_elongated_image_is_refused_at_the_resize_not_blown_up() {
    // 20 000 pixels decode fine, but a shorter side of 256 would make the strip
    // 256 × 5 120 000 (a 16 GB tensor).
    let strip = encode(&DynamicImage::ImageRgb8(gradient(20_000, 1)), ImageFormat::Png);
    let img = epic::data::image::decode_rgb(&strip, Path::new("strip.png")).unwrap();
    let t = std::time::Instant::now();
    let e = message("elongated image", epic::data::transform::preprocess(&img, &epic::model::Preprocess::LITE));
    assert!(t.elapsed().as_secs_f64() < 1.0, "took {:?}", t.elapsed());
    says("elongated image", &e, &["20000 × 1 pixels", "5120000 × 256", "crop the image or remove it"]);
    // In a data set, the image is named and the others go on.
    let tmp = tempfile::tempdir().unwrap();
    image_folder(tmp.path(), &[("c", 2)]);
    std::fs::write(tmp.path().join("c/strip.png"), &strip).unwrap();
    let folder = std::sync::Arc::new(ImageFolder::open(tmp.path()).unwrap());
    let loader = epic::data::Loader::new(folder, epic::model::Preprocess::LITE, 4);
    let (images, failed) = loader.images(&[0, 1, 2]).unwrap();
    assert_eq!(images.size(), [3, 3, 224, 224]);
    assert_eq!(failed.len(), 1);
    says("elongated image (loader)", &failed[0].1, &["strip.png", "crop the image or remove it"]);
}

// ---------------------------------------------------------------------------
// Image folders

#[test]
fn non_image_files_in_a_class_folder_are_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("train");
    image_folder(&root, &[("cats", 2), ("dogs", 2)]);
    std::fs::write(root.join("cats/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("dogs/.DS_Store"), [0u8; 16]).unwrap();
    // Image 1 (sorted after 0.png): an image extension, not an image.
    std::fs::write(root.join("cats/0broken.png"), "an image extension, not an image").unwrap();
    let folder = ImageFolder::open(&root).unwrap();
    assert_eq!(folder.len(), 5, "0broken.png has an image extension: kept, fails at decoding");
    assert!(folder.describe(1).ends_with("0broken.png"));
    assert_eq!(folder.skipped().len(), 2);

    // Through a script: one warning that counts the skipped files, and the broken
    // image reported by extraction, never a prototype; the script goes on.
    let r = run_script(
        tmp.path(),
        "folder.rhai",
        &format!(
            r#"let model = load_model(#{{ name: "efficientnet_lite0", resize: 32, crop: 32 }});
let ds = image_folder("{}", model);
let bank = extract(model, ds, #{{ batch_size: 4 }});
let chosen = false;
for row in bank.top_prototypes(4).to_array() {{ if 1 in row {{ chosen = true; }} }}
print(`${{ds.len()}} ${{bank.report().failed}} ${{chosen}}`);
bank.top_prototypes(5);
"#,
            root.display()
        ),
        &[],
    );
    let err = failed_cleanly("non-image files", &r, 1);
    says("non-image files", &err, &["warning:", "skipped 2 non-image file(s)", "train"]);
    says("non-image files", &err, &["0broken.png: cannot decode the image", "remove or replace the file"]);
    // The broken image is never a prototype: only 4 images can be.
    assert_eq!(r.out.trim(), "5 1 false");
    says("non-image files", &err, &["folder.rhai:7:6", "m = 5", "use 1 <= m <= 4"]);
}

#[test]
fn an_empty_class_folder_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    image_folder(tmp.path(), &[("cats", 2)]);
    std::fs::create_dir_all(tmp.path().join("dogs")).unwrap();
    std::fs::write(tmp.path().join("dogs/readme.txt"), "x").unwrap();
    let e = message("empty class folder", ImageFolder::open(tmp.path()));
    says("empty class folder", &e, &[&tmp.path().display().to_string(), "dogs", "remove empty class folders"]);
    assert!(!e.contains("cats"), "{e}");
}

#[test]
fn a_data_set_without_images_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    // No class folders at all.
    std::fs::write(tmp.path().join("a.png"), png_bytes(4, 4)).unwrap();
    let e = message("no class folders", ImageFolder::open(tmp.path()));
    says("no class folders", &e, &[&tmp.path().display().to_string(), "no class folders", "one sub-folder per class"]);
    // Class folders, none with an image.
    std::fs::create_dir_all(tmp.path().join("a")).unwrap();
    std::fs::create_dir_all(tmp.path().join("b")).unwrap();
    let e = message("no images", ImageFolder::open(tmp.path()));
    says("no images", &e, &["a, b", "supported extensions"]);
    // No folder.
    let e = message("missing folder", ImageFolder::open(&tmp.path().join("nope")));
    says("missing folder", &e, &["nope", "no such folder"]);
}

// ---------------------------------------------------------------------------
// Weights

#[test]
fn weights_of_another_architecture_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    save_state(&zero_state("resnet18", 10), &tmp.path().join("resnet18.safetensors"));
    let r = run_script(
        tmp.path(),
        "arch.rhai",
        "let m = load_model(#{ name: \"efficientnet_lite0\", weights: \"resnet18.safetensors\", num_classes: 10 });\n",
        &[],
    );
    let err = failed_cleanly("wrong architecture", &r, 1);
    says(
        "wrong architecture",
        &err,
        &[
            "arch.rhai:1:9",
            "resnet18.safetensors: weights do not fit efficientnet_lite0",
            "missing keys: _blocks.0",
            "unexpected keys: bn1.bias",
            "check model.name",
        ],
    );
}

#[test]
fn a_missing_key_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut state = zero_state("efficientnet_lite0", 3);
    let dropped = state.remove(7).0;
    let path = tmp.path().join("lite0.safetensors");
    save_state(&state, &path);
    let mut net = Network::new("efficientnet_lite0", 3, Device::Cpu).unwrap();
    let e = message("missing key", net.load_weights(&path));
    says("missing key", &e, &["lite0.safetensors", &format!("missing keys: {dropped}"), "check model.name"]);
    assert!(!e.contains("unexpected"), "{e}");
}

#[test]
fn a_wrong_shape_is_listed_with_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    // A backbone tensor of the wrong shape.
    let mut state = zero_state("efficientnet_lite0", 3);
    let (name, want) = (state[3].0.clone(), state[3].1.size());
    state[3].1 = Tensor::zeros([want.iter().product::<i64>() + 1], (Kind::Float, Device::Cpu));
    let path = tmp.path().join("shape.safetensors");
    save_state(&state, &path);
    let mut net = Network::new("efficientnet_lite0", 3, Device::Cpu).unwrap();
    let e = message("wrong shape", net.load_weights(&path));
    let got = want.iter().product::<i64>() + 1;
    says(
        "wrong shape",
        &e,
        &["shape.safetensors", &format!("{name} [{got}] (model wants {want:?})"), "another architecture"],
    );
    // Only the head: the number of classes.
    save_state(&zero_state("efficientnet_lite0", 3), &path);
    let mut net = Network::new("efficientnet_lite0", 5, Device::Cpu).unwrap();
    let e = message("wrong number of classes", net.load_weights(&path));
    says("wrong number of classes", &e, &["_fc.weight [3, 1280] (model wants [5, 1280])", "set model.num_classes"]);
}

#[test]
fn truncated_pth_files_are_errors_in_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("small_zip.pth");
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape([2, 3]);
    epic::model::pth::write_pth(&[("fc.weight", &a), ("fc.bias", &Tensor::from_slice(&[0.5f32, -1.5]))], &zip).unwrap();
    let legacy = bad_input("small_legacy.pth");
    for whole in [&zip, &legacy] {
        // The whole file loads, with its values.
        let sd = epic::model::pth::read_pth(whole).unwrap().state_dict(None).unwrap();
        assert_eq!(values(&sd[0].1), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0].map(|v| v + if whole == &zip { 1.0 } else { 0.0 }));
        let bytes = std::fs::read(whole).unwrap();
        let mut shown = false;
        for cut in 0..bytes.len() {
            let path = tmp.path().join("cut.pth");
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let r = epic::model::pth::read_pth(&path).and_then(|c| c.state_dict(None));
            let e = match r {
                Ok(_) => panic!("{} cut at {cut} of {} loads", whole.display(), bytes.len()),
                Err(e) => e.to_string(),
            };
            assert!(e.contains("cut.pth"), "{e}");
            assert!(
                e.contains("truncated") || e.contains("corrupt") || e.contains("not a PyTorch checkpoint"),
                "cut at {cut}: {e}"
            );
            assert!(e.contains("download or save the checkpoint again"), "cut at {cut}: {e}");
            if !shown && cut > bytes.len() / 2 {
                eprintln!("CASE truncated .pth: {e}");
                shown = true;
            }
        }
    }
}

#[test]
fn a_pickle_that_calls_another_global_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["evil_zip.pth", "evil_legacy.pth"] {
        let path = tmp.path().join(name);
        std::fs::copy(bad_input(name), &path).unwrap();
        let e = message("pickle calls os.system", epic::model::pth::read_pth(&path));
        says("pickle calls os.system", &e, &[name, "refused", "posix.system", "torch.save(model.state_dict()"]);
    }
    // Through the command line, as weights.
    let photo = fixture("efficientnet_lite0/photos/coffee.png");
    let r = epic(
        &["predict", "efficientnet_lite0", "--weights", "evil_zip.pth", "--device", "cpu", photo.to_str().unwrap()],
        tmp.path(),
    );
    let err = failed_cleanly("pickle calls os.system (predict)", &r, 2);
    says("pickle calls os.system (predict)", &err, &["evil_zip.pth", "posix.system"]);
    assert_eq!(err.matches("refused").count(), 1, "said once: {err}");
    assert!(!tmp.path().join("pwned_by_pickle").exists() && !Path::new("pwned_by_pickle").exists());
    // Protocol 4's STACK_GLOBAL is checked the same way: builtins.eval.
    let p = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x011\x94\x85\x94R\x94.";
    let e = message("pickle calls builtins.eval", epic::model::pth::parse_pickle(p));
    says("pickle calls builtins.eval", &e, &["refused", "builtins.eval"]);
}

#[test]
fn pickle_bombs_are_refused_quickly() {
    // 100 000 nested lists: dropping or copying them would overflow the stack.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(std::iter::repeat_n(b'a', 99_999));
    deep.push(b'.');
    let e = message("deeply nested pickle", epic::model::pth::parse_pickle(&deep));
    says("deeply nested pickle", &e, &["malformed pickle", "nest more than 100 levels"]);
    // A list of 20 000 values memoised 400 000 times: 8·10⁹ copies.
    let mut memo = b"\x80\x02]".to_vec();
    for _ in 0..20_000 {
        memo.extend_from_slice(b"Na");
    }
    for _ in 0..400_000 {
        memo.extend_from_slice(b"q\x00");
    }
    memo.push(b'.');
    let t = std::time::Instant::now();
    let e = message("memo bomb", epic::model::pth::parse_pickle(&memo));
    assert!(t.elapsed().as_secs_f64() < 2.0, "took {:?}", t.elapsed());
    says("memo bomb", &e, &["memo copies exceed", "pickle bomb"]);
    // In a legacy checkpoint, the file is named.
    let tmp = tempfile::tempdir().unwrap();
    let legacy = std::fs::read(bad_input("small_legacy.pth")).unwrap();
    let mut bomb = legacy[..legacy.windows(2).position(|w| w == b".\x80").unwrap() + 1].to_vec(); // the magic number
    bomb.extend_from_slice(b"\x80\x02M\xe9\x03.\x80\x02}.");
    bomb.extend_from_slice(&deep);
    std::fs::write(tmp.path().join("deep.pth"), &bomb).unwrap();
    let e = message("deeply nested checkpoint", epic::model::pth::read_pth(&tmp.path().join("deep.pth")));
    says(
        "deeply nested checkpoint",
        &e,
        &["deep.pth", "nest more than 100 levels", "download or save the checkpoint again"],
    );
}

// ---------------------------------------------------------------------------
// Configs

#[test]
fn bad_yaml_names_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bad.yaml"), "seed: 1\nmodel:\n  name: [resnet34\n  num_classes: 10\n").unwrap();
    let r = run_script(tmp.path(), "cfg.rhai", "let cfg = config(\"bad.yaml\");\n", &[]);
    let err = failed_cleanly("bad YAML", &r, 1);
    says("bad YAML", &err, &["cfg.rhai:1:11", "bad.yaml", "not valid YAML", "line 4", "fix"]);
}

#[test]
fn interpolations_that_repeat_themselves_are_refused() {
    // k0 = "x", k1 = 4 × k0, …, k11 = 4¹¹ × "x" (4 MiB): exponential growth.
    let mut yaml = String::from("k0: x\n");
    for i in 1..=11 {
        yaml.push_str(&format!("k{i}: '{}'\n", format!("${{k{}}}", i - 1).repeat(4)));
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.yaml");
    std::fs::write(&path, yaml).unwrap();
    let (r, largest) = largest_allocation(|| epic::config::load(&path));
    let e = message("interpolation bomb", r);
    says(
        "interpolation bomb",
        &e,
        &["bomb.yaml", "k11: ${…} interpolations make it longer than 1024 KiB", "check the references"],
    );
    assert!(largest < 4 * MIB, "allocated {largest} bytes");
    // A reference to no key names the nearest ones.
    std::fs::write(&path, "output_path: out\nhydra: {run: {dir: '${output_pth}/train'}}\n").unwrap();
    let e = message("interpolation of no key", epic::config::load(&path));
    says(
        "interpolation of no key",
        &e,
        &["bomb.yaml", "hydra.run.dir: ${output_pth} names no key", "nearest: output_path"],
    );
    // A cycle is named too.
    std::fs::write(&path, "a: '${b}/x'\nb: '${a}'\n").unwrap();
    let e = message("interpolation cycle", epic::config::load(&path));
    says("interpolation cycle", &e, &["bomb.yaml", "form a cycle", "give one of them a plain value"]);
}

#[test]
fn an_unknown_override_key_names_the_nearest_keys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("c.yaml"), "seed: 1\nmodel: {name: resnet34, num_classes: 10}\n").unwrap();
    let r = run_script(tmp.path(), "cfg.rhai", "let cfg = config(\"c.yaml\");\n", &["model.nmae=resnet50"]);
    let err = failed_cleanly("unknown override key", &r, 1);
    says(
        "unknown override key",
        &err,
        &["cfg.rhai:1:11", "model.nmae=resnet50", "no key model.nmae", "nearest: model.name", "+model.nmae="],
    );
}

#[test]
fn a_wrongly_typed_override_says_the_type_wanted() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("c.yaml"), "seed: 1\ntraining: {lr: 0.001, shuffle: true}\n").unwrap();
    for (arg, needles) in [
        ("seed=abc", &["seed is an int", "\"abc\" is a string", "e.g. seed=1"][..]),
        ("training.lr=fast", &["training.lr is a float", "e.g. training.lr=0.001"][..]),
        ("training.shuffle=3", &["training.shuffle is a bool", "e.g. training.shuffle=true"][..]),
    ] {
        let r = run_script(tmp.path(), "cfg.rhai", "let cfg = config(\"c.yaml\");\n", &[arg]);
        let err = failed_cleanly("wrongly typed override", &r, 1);
        says("wrongly typed override", &err, &["cfg.rhai:1:11", arg]);
        says("wrongly typed override", &err, needles);
    }
}

// ---------------------------------------------------------------------------
// Scripts

#[test]
fn a_call_with_wrong_types_quotes_the_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let r =
        run_script(tmp.path(), "types.rhai", "let z = zeros([2, 4, 3, 3]);\nlet r = rotate(z, \"identity\");\n", &[]);
    let err = failed_cleanly("wrong argument types", &r, 1);
    says(
        "wrong argument types",
        &err,
        &[
            "types.rhai:2:9",
            "rotate cannot take arguments (Tensor, string);",
            "expected `rotate(features: Tensor, u: Tensor) -> Tensor`",
        ],
    );
}

#[test]
fn missing_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("load_tensors(\"no/such.safetensors\");\n", &["missing.rhai:1:1", "no/such.safetensors", "no such file"][..]),
        (
            "load_model(#{ name: \"resnet18\", weights: \"no/resnet18.pth\" });\n",
            &["no/resnet18.pth", "weights file not found", "custom_weights_path"][..],
        ),
        ("config(\"no/such.yaml\");\n", &["no/such.yaml", "cannot read"][..]),
    ];
    for (body, needles) in cases {
        let r = run_script(tmp.path(), "missing.rhai", body, &[]);
        let err = failed_cleanly("missing file", &r, 1);
        says("missing file", &err, needles);
    }
    // The script itself.
    let r = epic(&["run", "no_such_script.rhai"], tmp.path());
    let err = failed_cleanly("missing script", &r, 1);
    says("missing script", &err, &["no_such_script.rhai", "cannot read the script", "check the path"]);
}

#[test]
fn an_output_folder_that_cannot_be_made_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    // A regular file where a folder should be: refused even to root, unlike chmod.
    std::fs::write(tmp.path().join("taken"), "a file, not a folder").unwrap();
    let before = files_under(tmp.path());
    for (what, call) in [
        ("save_tensors", "save_tensors(#{ u: zeros([2, 2]) }, \"taken/out/u.safetensors\");"),
        ("save_json", "save_json(#{ purity: 0.5 }, \"taken/purity.json\");"),
        ("save_config", "save_config(#{ seed: 1 }, \"taken/.epic/config.yaml\");"),
        ("save_disentangler", "save_disentangler(disentangler(\"orthogonal\", 4), \"taken/u\");"),
    ] {
        let r = run_script(tmp.path(), "write.rhai", &format!("{call}\n"), &[]);
        let err = failed_cleanly(&format!("unwritable output ({what})"), &r, 1);
        says(
            what,
            &err,
            &["write.rhai:1:1", "cannot write taken", "taken is a file, not a folder", "choose another output path"],
        );
        std::fs::remove_file(tmp.path().join("write.rhai")).unwrap();
        assert_eq!(files_under(tmp.path()), before, "{what} left files behind");
    }
    // A folder where the file should be: the temporary file is removed, the folder kept.
    std::fs::create_dir_all(tmp.path().join("u.safetensors")).unwrap();
    let e = message(
        "output is a folder",
        epic::io::save_tensors(
            &[("u", &Tensor::zeros([2], (Kind::Float, Device::Cpu)))],
            &tmp.path().join("u.safetensors"),
        ),
    );
    says("output is a folder", &e, &["u.safetensors", "a folder has this name", "choose another output path"]);
    assert_eq!(files_under(tmp.path()), ["taken", "u.safetensors"]);
}

// ---------------------------------------------------------------------------
// Tensor math

#[test]
fn nan_in_features_is_located_and_refused() {
    let z = randn(&[6, 4, 3, 3], 11).abs();
    let _ = z.get(4).get(2).get(1).get(0).fill_(f64::NAN);
    let act = epic::features::channel_activation(&z).unwrap();
    let e = message("NaN in features", epic::prototypes::top_prototypes(&act, 2));
    says("NaN in features", &e, &["activation", "[4, 2]", "NaN", "check the features"]);
    // Purity on NaN maps would be NaN and poison training: refused too.
    let channels = Tensor::from_slice(&[0i64, 1, 2, 3, 0, 1]);
    let e = message("NaN in features (purity)", epic::prototypes::purity_argmax(&z, &channels));
    says("NaN in features (purity)", &e, &["features", "[4, 2, 1, 0]", "NaN"]);
    // From a script, with the line.
    let tmp = tempfile::tempdir().unwrap();
    let r = run_script(
        tmp.path(),
        "nan.rhai",
        "let nan = 0.0 / 0.0;\nlet a = tensor([[1.0, 2.0], [0.5, 1.0], [3.0, 0.0]]);\nlet b = tensor([[1.0, 2.0], [0.5, nan], [3.0, 0.0]]);\nlet p = top_prototypes(b, 1);\n",
        &[],
    );
    let err = failed_cleanly("NaN in features (script)", &r, 1);
    says("NaN in features (script)", &err, &["nan.rhai:4:9", "activation: NaN at [1, 1]"]);
}

#[test]
fn m_larger_than_the_data_set_says_the_range() {
    let act = randn(&[5, 3], 2);
    let e = message("m too large", epic::prototypes::top_prototypes(&act, 9));
    says("m too large", &e, &["m = 9", "the set has 5 images", "use 1 <= m <= 5"]);
    let e = message("m = 0", epic::prototypes::top_prototypes(&act, 0));
    says("m = 0", &e, &["use 1 <= m <= 5"]);
    let tmp = tempfile::tempdir().unwrap();
    let r = run_script(tmp.path(), "m.rhai", "let a = zeros([4, 2]);\n\nlet p = top_prototypes(a, 99);\n", &[]);
    let err = failed_cleanly("m too large (script)", &r, 1);
    says("m too large (script)", &err, &["m.rhai:3:9", "m = 99", "use 1 <= m <= 4"]);
}

#[test]
fn a_channel_out_of_range_is_named_with_the_range() {
    let z = randn(&[3, 4, 2, 2], 5);
    for (bad, shown) in [(4i64, "index 4"), (-1, "index -1")] {
        let e =
            message("channel out of range", epic::prototypes::purity_argmax(&z, &Tensor::from_slice(&[0i64, bad, 1])));
        says("channel out of range", &e, &["channels", shown, "out of range 0..4", "use 0 to 3"]);
    }
    // A training step, on the path through the few rows of U its batch names
    // (16 pairs over 128 channels of an orthogonal U away from the identity).
    use epic::disentangle::{purity_step_with, Adam, AdamConfig, Disentangler, Gradient, MatrixKind};
    let maps = randn(&[16, 128, 2, 2], 6).relu();
    let a = randn(&[128, 128], 7) * (0.3 / 128f64.sqrt());
    let mut d = Disentangler::from_raw(MatrixKind::Orthogonal, &a).unwrap();
    let mut opt = Adam::new(d.a_raw(), AdamConfig::default()).unwrap();
    let mut channels: Vec<i64> = (0..16).collect();
    channels[3] = 128;
    let e = message(
        "channel out of range (step)",
        purity_step_with(Gradient::Fast, &mut d, &mut opt, &maps, &Tensor::from_slice(&channels)),
    );
    says("channel out of range (step)", &e, &["channels", "index 128", "out of range 0..128"]);
    assert!(d.a_raw().equal(&a), "a failed step leaves A as it was");
    let tmp = tempfile::tempdir().unwrap();
    let r = run_script(
        tmp.path(),
        "ch.rhai",
        "let z = zeros([2, 3, 2, 2]);\nlet p = purity_argmax(z, tensor([0, 3]));\n",
        &[],
    );
    let err = failed_cleanly("channel out of range (script)", &r, 1);
    says("channel out of range (script)", &err, &["ch.rhai:2:9", "channels: index 3 is out of range 0..3"]);
}

// ---------------------------------------------------------------------------
// Odds and ends of the command line

#[test]
fn corrupt_tensor_files_and_bad_arguments_are_clean_errors() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("half.safetensors"), b"\x40\x00\x00\x00\x00\x00\x00\x00{\"u\":{\"dtype\":\"F32\"")
        .unwrap();
    let r = run_script(tmp.path(), "st.rhai", "let v = load_tensors(\"half.safetensors\");\n", &[]);
    let err = failed_cleanly("corrupt safetensors", &r, 1);
    says(
        "corrupt safetensors",
        &err,
        &["st.rhai:1:9", "half.safetensors", "not a readable safetensors file", "written completely"],
    );
    let r = run_script(tmp.path(), "args.rhai", "print(1);\n", &["lr"]);
    let err = failed_cleanly("argument without =", &r, 2);
    says("argument without =", &err, &["\"lr\" is not key=value", "write for example"]);
    let r = run_script(tmp.path(), "model.rhai", "load_model(\"resnet9000\");\n", &[]);
    let err = failed_cleanly("unknown model", &r, 1);
    says("unknown model", &err, &["model.rhai:1:1", "resnet9000", "unknown model; known: efficientnet_lite0"]);
    let r = epic(&["run", "x.rhai", "--device", "tpu"], tmp.path());
    let err = failed_cleanly("unknown device", &r, 2);
    says("unknown device", &err, &["--device", "\"tpu\"", "use auto, cpu, cuda or cuda:N"]);
}

/// A torchvision classifier whose logits are not one linear layer on a pooled map
/// (ViT, VGG, SqueezeNet, …) is refused by name, with the reason and the
/// TorchScript route, from a script (exit 1) and from `epic predict` (exit 2).
#[test]
fn refused_architectures_say_why_and_point_to_torchscript() {
    let tmp = tempfile::tempdir().unwrap();
    let route = ["name: \"torchscript\"", "head.safetensors", "one linear layer"];
    let r = run_script(tmp.path(), "vit.rhai", "load_model(\"vit_b_16\");\n", &[]);
    let err = failed_cleanly("refused model (vit_b_16)", &r, 1);
    says("refused model (vit_b_16)", &err, &["vit.rhai:1:1", "vit_b_16", "class token"]);
    says("refused model (vit_b_16)", &err, &route);
    let r = run_script(tmp.path(), "vgg.rhai", "let m = load_model(#{ name: \"vgg16\" });\n", &[]);
    let err = failed_cleanly("refused model (vgg16)", &r, 1);
    says("refused model (vgg16)", &err, &["vgg.rhai:1:9", "vgg16", "three linear layers"]);
    says("refused model (vgg16)", &err, &route);
    let r = epic(&["predict", "squeezenet1_0", "photo.jpg", "--device", "cpu"], tmp.path());
    let err = failed_cleanly("refused model (predict squeezenet1_0)", &r, 2);
    says("refused model (predict squeezenet1_0)", &err, &["squeezenet1_0", "convolution and a ReLU before pooling"]);
    says("refused model (predict squeezenet1_0)", &err, &route);
}

// ---------------------------------------------------------------------------
// Inputs found by fuzzing (fuzz/, `cargo fuzz run <target>`), minimised where
// useful, in tests/fixtures/fuzz/<target>/: each must now be a clean error.

fn fuzz_inputs(target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture("fuzz").join(target))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn fuzz_found_checkpoints_are_clean_errors() {
    let files = fuzz_inputs("pth");
    assert!(!files.is_empty());
    for path in files {
        let t = std::time::Instant::now();
        let (r, largest) = largest_allocation(|| epic::model::pth::read_pth(&path).and_then(|c| c.state_dict(None)));
        let e = message("fuzz: checkpoint", r);
        assert!(t.elapsed().as_secs_f64() < 2.0, "{}: took {:?}", path.display(), t.elapsed());
        assert!(largest < 16 * MIB, "{}: allocated {largest} bytes", path.display());
        says("fuzz: checkpoint", &e, &[&path.display().to_string(), "download or save the checkpoint again"]);
    }
}
