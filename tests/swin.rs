//! Swin Transformer v1 and v2 against torchvision, run by the venv's Python:
//! random weights in which every parameter matters (LayerNorm affines, biases,
//! the v1 bias table, the v2 `cpb_mlp` and `logit_scale`, partly above its clamp,
//! and the key third of the v2 `qkv.bias`, which both must ignore) are saved with
//! `torch.save`, and torchvision's logits and `permute(norm(features(x)))` on
//! random inputs are saved as safetensors for epic to reproduce. Input sizes
//! include ones whose stage maps are not multiples of the window (padding, odd
//! patch merging) and non-square ones where a stage shifts along one axis only.
//! Also: the bicubic resize against torchvision's tensor path and PIL. The Python
//! that makes the numbers is below (`GOLDEN`, `SHAPES`, `RESIZE`); nothing is stored.
mod common;
use common::*;
use epic::data::transform;
use epic::model::{swin, Interpolation, Network, Preprocess, ARCHITECTURES};
use std::collections::{BTreeMap, HashMap};
use tch::{Device, Kind, Tensor};

/// argv: DIR NAME SHAPE... (each `BxHxW`). Writes DIR/NAME.pth (the state dict)
/// and DIR/io.safetensors with, per shape, `input_<shape>`, `logits_<shape>` and
/// `features_<shape>` ([B,C,h,w]); prints the largest |logit|.
const GOLDEN: &str = r#"
import sys, json, struct, math, torch, torchvision
from torch import nn
from torchvision.models.swin_transformer import ShiftedWindowAttention, ShiftedWindowAttentionV2
torch.set_num_threads(2)

def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = v.detach().float().contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]

d, name, shapes = sys.argv[1], sys.argv[2], sys.argv[3:]
torch.manual_seed(0)
m = getattr(torchvision.models, name)(weights=None).eval()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, nn.LayerNorm):
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
        elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
            mod.bias.uniform_(-0.1, 0.1)  # for v2's qkv, the key third too
        if isinstance(mod, ShiftedWindowAttentionV2):
            mod.logit_scale.uniform_(1.0, 5.5)  # ln 100 = 4.6: some heads clamp
            for lin in (mod.cpb_mlp[0], mod.cpb_mlp[2]):
                lin.weight.normal_(0, 0.5)
        elif isinstance(mod, ShiftedWindowAttention):
            mod.relative_position_bias_table.normal_(0, 0.5)
torch.save(m.state_dict(), f"{d}/{name}.pth")
out, scale = {}, 0.0
torch.manual_seed(1)
for s in shapes:
    b, h, w = map(int, s.split("x"))
    x = torch.randn(b, 3, h, w)
    with torch.no_grad():
        logits = m(x)
        z = m.permute(m.norm(m.features(x)))
    out[f"input_{s}"], out[f"logits_{s}"], out[f"features_{s}"] = x, logits, z
    scale = max(scale, logits.abs().max().item())
save_safetensors(f"{d}/io.safetensors", out)
print(scale)
"#;

/// epic's `name` reproduces torchvision's logits and feature maps at every input
/// `shape` (`BxHxW`): max |Δ| < 1e-4, relative to the largest |logit| when it is above 1.
fn matches_torchvision(name: &str, channels: i64, shapes: &[&str]) {
    let start = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let mut args = vec![dir, name];
    args.extend_from_slice(shapes);
    let scale: f64 = run_python(GOLDEN, &args).trim().parse().unwrap();
    let io: HashMap<String, Tensor> =
        epic::io::load_tensors(&tmp.path().join("io.safetensors")).unwrap().into_iter().collect();
    let python_s = start.elapsed().as_secs_f64();

    let mut net = Network::new(name, 1000, Device::Cpu).unwrap();
    net.load_weights(&tmp.path().join(format!("{name}.pth"))).unwrap();
    assert_eq!(net.channels(), channels);
    let tol = 1e-4 * scale.max(1.0);
    for s in shapes {
        let t = std::time::Instant::now();
        let x = &io[&format!("input_{s}")];
        let z = net.features(x).unwrap();
        let want_z = &io[&format!("features_{s}")];
        assert_eq!(z.size(), want_z.size(), "{name} {s}");
        let logits = net.head_logits(&z).unwrap();
        let dl = max_abs_diff(&logits, &io[&format!("logits_{s}")]);
        let dz = max_abs_diff(&z, want_z);
        eprintln!(
            "{name} {s}: logits max |Δ| = {dl:.2e} (max |logit| {scale:.2}), features {:?} max |Δ| = {dz:.2e}; epic {:.1}s",
            z.size(),
            t.elapsed().as_secs_f64()
        );
        assert!(dl < tol, "{name} {s}: logits differ by {dl}");
        assert!(dz < 1e-4 * want_z.abs().max().double_value(&[]).max(1.0), "{name} {s}: features differ by {dz}");
    }
    eprintln!("{name}: python {python_s:.1}s, total {:.1}s", start.elapsed().as_secs_f64());
}

// Window 7 (v1): 224 divides at every stage; 200 pads every stage but the last
// and merges an odd 25×25; 224×96 leaves stage 3 at 14×6, shifted along H only.
#[test]
fn swin_t_matches_torchvision() {
    matches_torchvision("swin_t", 768, &["2x224x224", "1x200x200", "1x224x96"]);
}

#[test]
fn swin_s_matches_torchvision() {
    matches_torchvision("swin_s", 768, &["1x224x224", "1x200x200"]);
}

#[test]
fn swin_b_matches_torchvision() {
    matches_torchvision("swin_b", 1024, &["1x224x224"]);
}

// Window 8 (v2): 256 divides at every stage; 224 pads stages 2–4 (the last one,
// 7 → 8, unshifted); 200×120 merges odd sizes and leaves stage 3 at 13×8,
// shifted along H only.
#[test]
fn swin_v2_t_matches_torchvision() {
    matches_torchvision("swin_v2_t", 768, &["2x256x256", "1x224x224", "1x200x120"]);
}

#[test]
fn swin_v2_s_matches_torchvision() {
    matches_torchvision("swin_v2_s", 768, &["1x256x256", "1x224x224"]);
}

#[test]
fn swin_v2_b_matches_torchvision() {
    matches_torchvision("swin_v2_b", 1024, &["1x256x256"]);
}

/// argv: DIR NAME... For each Swin: its state dict's names and shapes (built on
/// the meta device), printed as JSON, and for the T models DIR/NAME.pth with the
/// real (computed) position buffers.
const SHAPES: &str = r#"
import sys, json, torch, torchvision
d, names = sys.argv[1], sys.argv[2:]
out = {}
for name in names:
    with torch.device("meta"):
        m = getattr(torchvision.models, name)(weights=None)
    out[name] = {k: list(v.shape) for k, v in m.state_dict().items()}
for name in ["swin_t", "swin_v2_t"]:
    torch.save(getattr(torchvision.models, name)(weights=None).state_dict(), f"{d}/{name}.pth")
print(json.dumps(out))
"#;

const SWINS: [(&str, i64, i64); 6] = [
    ("swin_t", 768, 224),
    ("swin_s", 768, 224),
    ("swin_b", 1024, 224),
    ("swin_v2_t", 768, 256),
    ("swin_v2_s", 768, 256),
    ("swin_v2_b", 1024, 256),
];

#[test]
fn every_swin_has_torchvision_names_and_shapes_and_computes_its_buffers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec![tmp.path().to_str().unwrap()];
    args.extend(SWINS.iter().map(|s| s.0));
    let torchvision: BTreeMap<String, BTreeMap<String, Vec<i64>>> =
        serde_json::from_str(&run_python(SHAPES, &args)).unwrap();
    for (name, channels, crop) in SWINS {
        assert!(ARCHITECTURES.iter().any(|a| a.name == name), "{name} not registered");
        assert!(
            epic::model::registry::torchvision_weights_file(name).is_some_and(|f| f.starts_with(&format!("{name}-")))
        );
        let net = Network::new(name, 1000, Device::Cpu).unwrap();
        assert_eq!((net.channels(), net.num_classes()), (channels, 1000), "{name}");
        assert_eq!(net.preprocess().crop, crop, "{name}");
        assert_eq!(net.preprocess().interpolation, Interpolation::Bicubic, "{name}");
        let ours: BTreeMap<String, Vec<i64>> = net.parameter_shapes().into_iter().collect();
        let theirs: BTreeMap<String, Vec<i64>> = torchvision[name]
            .iter()
            .filter(|(k, _)| !swin::is_derived_buffer(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(ours, theirs, "{name}: parameters differ");
        let buffers = torchvision[name].keys().filter(|k| swin::is_derived_buffer(k)).count();
        let blocks: usize = if name.ends_with("_t") { 12 } else { 24 };
        assert_eq!(buffers, blocks * if name.starts_with("swin_v2") { 2 } else { 1 }, "{name}");
    }
    // The buffers torchvision saves are the ones epic computes; a state dict
    // with or without them loads.
    for (name, window) in [("swin_t", 7), ("swin_v2_t", 8)] {
        let path = tmp.path().join(format!("{name}.pth"));
        let state = epic::model::pth::read_pth(&path).unwrap().state_dict(None).unwrap();
        let index = swin::relative_position_index(window, Device::Cpu).unwrap();
        let coords = swin::relative_coords_table(window, Device::Cpu).unwrap();
        for (k, v) in &state {
            if k.ends_with("relative_position_index") {
                assert_eq!(v.kind(), Kind::Int64);
                assert!(v.equal(&index), "{k}");
            } else if k.ends_with("relative_coords_table") {
                assert_eq!(max_abs_diff(v, &coords), 0.0, "{k}");
            }
        }
        let mut net = Network::new(name, 1000, Device::Cpu).unwrap();
        net.load_state_dict(&state, &path).unwrap();
        let without: Vec<(String, Tensor)> = state
            .iter()
            .filter(|(k, _)| !swin::is_derived_buffer(k))
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        assert!(without.len() < state.len());
        net.load_state_dict(&without, &path).unwrap();
    }
}

/// argv: PHOTOS OUT SIZE CROP. For each photo, PIL's decoded pixels
/// (`OUT/NAME.rgb`, raw u8 [H,W,3], so that JPEG decoders do not enter the
/// comparison) and torchvision's eval resize and crop (SIZE bicubic → CROP) in
/// 0–255 levels, two ways: the reference's PIL backend (`OUT/NAME.pil`) and
/// torchvision's float tensor path (`OUT/NAME.tensor`), both raw u8 [3,CROP,CROP].
const RESIZE: &str = r#"
import sys, numpy as np, torch, torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
photos, out, size, crop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bicubic = T.InterpolationMode.BICUBIC
pil = T.Compose([T.Resize(size, interpolation=bicubic, antialias=True), T.CenterCrop(crop), T.PILToTensor()])
for n in ["chelsea.png", "coffee.png", "rocket.jpg"]:
    img = Image.open(photos + "/" + n).convert("RGB")
    open(out + "/" + n + ".rgb", "wb").write(np.asarray(img).tobytes())
    open(out + "/" + n + ".pil", "wb").write(pil(img).numpy().astype(np.uint8).tobytes())
    x = F.pil_to_tensor(img).float()
    x = F.resize(x, [size], interpolation=bicubic, antialias=True).round().clamp(0, 255)
    x = F.center_crop(x, [crop]).to(torch.uint8)
    open(out + "/" + n + ".tensor", "wb").write(x.numpy().tobytes())
"#;

/// epic's bicubic equals torchvision's tensor path exactly, and is within a few
/// levels of PIL's (which rounds to 8 bits and clips the cubic's overshoot
/// between its two passes), much nearer than bilinear is, at Swin-T's and
/// Swin-V2-T's sizes.
#[test]
fn bicubic_resize_matches_torchvision_and_is_near_pil() {
    let photos = fixture("efficientnet_lite0/photos");
    for name in ["swin_t", "swin_v2_t"] {
        let tmp = tempfile::tempdir().unwrap();
        let pre = Network::new(name, 1000, Device::Cpu).unwrap().preprocess();
        let (size, crop) = (pre.resize.to_string(), pre.crop.to_string());
        let args = [photos.to_str().unwrap(), tmp.path().to_str().unwrap(), &size, &crop];
        assert!(run_python(RESIZE, &args).is_empty());
        let levels = Preprocess { mean: [0.0; 3], std: [1.0 / 255.0; 3], ..pre };
        let read = |file: String| {
            let raw = std::fs::read(tmp.path().join(file)).unwrap();
            Tensor::from_slice(&raw).to_kind(Kind::Float).view([3, pre.crop, pre.crop])
        };
        for photo in ["chelsea.png", "coffee.png", "rocket.jpg"] {
            let (w, h) = epic::data::image::load_rgb(&photos.join(photo)).unwrap().dimensions();
            let rgb = std::fs::read(tmp.path().join(format!("{photo}.rgb"))).unwrap();
            let img = image::RgbImage::from_raw(w, h, rgb).unwrap();
            let ours = transform::preprocess(&img, &levels).unwrap().round();
            let bilinear = Preprocess { interpolation: Interpolation::Bilinear, ..levels };
            let bilinear = transform::preprocess(&img, &bilinear).unwrap().round();
            let pil = read(format!("{photo}.pil"));
            let stats = |a: &Tensor, b: &Tensor| {
                let d = (a - b).abs();
                (d.max().double_value(&[]), d.mean(Kind::Double).double_value(&[]))
            };
            let (tensor_max, tensor_mean) = stats(&ours, &read(format!("{photo}.tensor")));
            let (pil_max, pil_mean) = stats(&ours, &pil);
            let (bil_max, bil_mean) = stats(&bilinear, &pil);
            eprintln!(
                "{name} {size}→{crop} {photo}: epic bicubic vs torchvision tensor: max {tensor_max}, mean \
                 {tensor_mean:.4}; vs PIL bicubic: max {pil_max}, mean {pil_mean:.4}; epic bilinear vs PIL \
                 bicubic: max {bil_max}, mean {bil_mean:.4}"
            );
            assert_eq!(tensor_max, 0.0, "{photo}: epic's bicubic is torchvision's tensor path");
            assert!(pil_max <= 8.0 && pil_mean < 0.25, "{photo}: max {pil_max}, mean {pil_mean} levels from PIL");
            assert!(bil_mean > 2.0 * pil_mean, "{photo}: bicubic must be much nearer PIL's bicubic than bilinear");
        }
    }
}
