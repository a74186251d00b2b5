//! EfficientNet (B0–B7, V2-S/M/L), RegNet (X and Y, 400MF–128GF), GoogLeNet and
//! Inception-v3 against torchvision, run by the venv's Python.
//!
//! - Numbers: one venv Python run (`GOLDEN`, shared by the tests through a
//!   `OnceLock`) builds one network per family and block kind with random
//!   weights in which every parameter matters (batch-norm statistics and affines,
//!   conv and linear biases), saves each state dict with `torch.save` —
//!   GoogLeNet's and Inception-v3's with their auxiliary heads, as torchvision's
//!   pretrained files have them — and saves torchvision's logits and the input of
//!   `avgpool` (the feature map epic's backbone returns) on a random input of
//!   batch 1 at a small size. epic must reproduce both: max |Δ| < 1e-4, relative
//!   to the largest value when it is above 1.
//! - Structure: every variant's state-dict names and shapes, from torchvision
//!   built on the meta device (`SHAPES`), equal epic's parameters, and the
//!   registry rows carry torchvision's `IMAGENET1K_V1` file names and transforms
//!   (`WEIGHTS`).
//!
//! Nothing is stored; the Python is below.
mod common;
use common::*;
use epic::model::{Interpolation, Network, ARCHITECTURES};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Device, Tensor};

/// Shared Python: torchvision's model by name (GoogLeNet and Inception-v3 as the
/// pretrained builders make them: `transform_input` on, auxiliary heads present).
const PRELUDE: &str = r#"
import sys, json, struct, torch, torchvision, warnings
from torch import nn
warnings.filterwarnings("ignore")
torch.set_num_threads(2)

def build(name, aux=True):
    f = getattr(torchvision.models, name)
    if name in ("googlenet", "inception_v3"):
        return f(weights=None, aux_logits=aux, transform_input=True, init_weights=False)
    return f(weights=None)
"#;

/// argv: DIR NAME:SIZE... For each, writes DIR/NAME.pth (the random state dict)
/// and DIR/NAME.safetensors (`input` [1,3,SIZE,SIZE], `logits`, `features`: the
/// input of `avgpool`); prints a JSON map NAME → largest |logit|.
const GOLDEN: &str = r#"
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

d, scales = sys.argv[1], {}
for job in sys.argv[2:]:
    name, size = job.split(":")
    torch.manual_seed(0)
    m = build(name).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.uniform_(-0.1, 0.1)
    torch.save(m.state_dict(), f"{d}/{name}.pth")
    seen = {}
    m.avgpool.register_forward_hook(lambda mod, inp, out: seen.update(z=inp[0]))
    torch.manual_seed(1)
    x = torch.randn(1, 3, int(size), int(size))
    with torch.no_grad():
        logits = m(x)
    save_safetensors(f"{d}/{name}.safetensors", {"input": x, "logits": logits, "features": seen["z"]})
    scales[name] = logits.abs().max().item()
print(json.dumps(scales))
"#;

/// The numeric checks: one network per family and block kind, at a small input
/// (EfficientNet-B5 for the 1e-3 batch-norm eps of B5–B7, V2-S for FusedMBConv,
/// RegNetY for squeeze-excitation; Inception-v3 at 139, where Z is 3×3).
const NUMERIC: [(&str, i64); 7] = [
    ("efficientnet_b0", 128),
    ("efficientnet_b5", 64),
    ("efficientnet_v2_s", 96),
    ("regnet_x_400mf", 64),
    ("regnet_y_400mf", 64),
    ("googlenet", 100),
    ("inception_v3", 139),
];

/// The folder where `GOLDEN` wrote its files, and each network's largest |logit|.
fn golden() -> &'static (PathBuf, HashMap<String, f64>) {
    static GOLDEN_DIR: OnceLock<(PathBuf, HashMap<String, f64>)> = OnceLock::new();
    GOLDEN_DIR.get_or_init(|| {
        let start = std::time::Instant::now();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zoo_b");
        std::fs::create_dir_all(&dir).unwrap();
        let jobs: Vec<String> = NUMERIC.iter().map(|(n, s)| format!("{n}:{s}")).collect();
        let mut args = vec![dir.to_str().unwrap()];
        args.extend(jobs.iter().map(String::as_str));
        let scales = serde_json::from_str(&run_python(&format!("{PRELUDE}{GOLDEN}"), &args)).unwrap();
        eprintln!("torchvision goldens: {:.1}s", start.elapsed().as_secs_f64());
        (dir, scales)
    })
}

/// epic's `name` loads torchvision's state dict and reproduces its logits and
/// feature map [1,C,h,w].
fn matches_torchvision(name: &str, channels: i64) {
    let (dir, scales) = golden();
    let start = std::time::Instant::now();
    let io: HashMap<String, Tensor> =
        epic::io::load_tensors(&dir.join(format!("{name}.safetensors"))).unwrap().into_iter().collect();
    let mut net = Network::new(name, 1000, Device::Cpu).unwrap();
    net.load_weights(&dir.join(format!("{name}.pth"))).unwrap();
    assert_eq!(net.channels(), channels);
    let z = net.features(&io["input"]).unwrap();
    let want_z = &io["features"];
    assert_eq!(z.size(), want_z.size(), "{name}");
    let logits = net.head_logits(&z).unwrap();
    let scale = scales[name];
    let dl = max_abs_diff(&logits, &io["logits"]);
    let dz = max_abs_diff(&z, want_z);
    let z_scale = want_z.abs().max().double_value(&[]);
    eprintln!(
        "{name} {}: logits max |Δ| = {dl:.2e} (max |logit| {scale:.2}), features {:?} max |Δ| = {dz:.2e} \
         (max {z_scale:.2}); epic {:.1}s",
        io["input"].size()[2],
        z.size(),
        start.elapsed().as_secs_f64()
    );
    assert!(dl < 1e-4 * scale.max(1.0), "{name}: logits differ by {dl}");
    assert!(dz < 1e-4 * z_scale.max(1.0), "{name}: features differ by {dz}");
}

#[test]
fn efficientnet_b0_matches_torchvision() {
    matches_torchvision("efficientnet_b0", 1280);
}

#[test]
fn efficientnet_b5_matches_torchvision() {
    matches_torchvision("efficientnet_b5", 2048);
}

#[test]
fn efficientnet_v2_s_matches_torchvision() {
    matches_torchvision("efficientnet_v2_s", 1280);
}

#[test]
fn regnet_x_400mf_matches_torchvision() {
    matches_torchvision("regnet_x_400mf", 400);
}

#[test]
fn regnet_y_400mf_matches_torchvision() {
    matches_torchvision("regnet_y_400mf", 440);
}

#[test]
fn googlenet_with_aux_keys_matches_torchvision() {
    matches_torchvision("googlenet", 1024);
}

#[test]
fn inception_v3_with_aux_keys_matches_torchvision() {
    matches_torchvision("inception_v3", 2048);
}

/// Every architecture of this file with its feature channels.
const ALL: [(&str, i64); 28] = [
    ("efficientnet_b0", 1280),
    ("efficientnet_b1", 1280),
    ("efficientnet_b2", 1408),
    ("efficientnet_b3", 1536),
    ("efficientnet_b4", 1792),
    ("efficientnet_b5", 2048),
    ("efficientnet_b6", 2304),
    ("efficientnet_b7", 2560),
    ("efficientnet_v2_s", 1280),
    ("efficientnet_v2_m", 1280),
    ("efficientnet_v2_l", 1280),
    ("regnet_x_400mf", 400),
    ("regnet_x_800mf", 672),
    ("regnet_x_1_6gf", 912),
    ("regnet_x_3_2gf", 1008),
    ("regnet_x_8gf", 1920),
    ("regnet_x_16gf", 2048),
    ("regnet_x_32gf", 2520),
    ("regnet_y_400mf", 440),
    ("regnet_y_800mf", 784),
    ("regnet_y_1_6gf", 888),
    ("regnet_y_3_2gf", 1512),
    ("regnet_y_8gf", 2016),
    ("regnet_y_16gf", 3024),
    ("regnet_y_32gf", 3712),
    ("regnet_y_128gf", 7392),
    ("googlenet", 1024),
    ("inception_v3", 2048),
];

/// argv: NAME... Prints, per name, torchvision's state-dict names and shapes
/// without `num_batches_tracked` and without auxiliary heads (built on the meta
/// device: no memory, no initialisation; RegNet's width arithmetic on the CPU).
const SHAPES: &str = r#"
from torchvision.models import regnet
# RegNet computes its widths with tensors, which need data: on the CPU.
widths = regnet.BlockParams.from_init_params.__func__
def on_cpu(cls, *args, **kwargs):
    with torch.device("cpu"):
        return widths(cls, *args, **kwargs)
regnet.BlockParams.from_init_params = classmethod(on_cpu)
out = {}
for name in sys.argv[1:]:
    with torch.device("meta"):
        m = build(name, aux=False)
    out[name] = {k: list(v.shape) for k, v in m.state_dict().items()
                 if not k.endswith("num_batches_tracked")}
print(json.dumps(out))
"#;

#[test]
fn every_variant_has_torchvision_names_shapes_and_channels() {
    let names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
    let torchvision: BTreeMap<String, BTreeMap<String, Vec<i64>>> =
        serde_json::from_str(&run_python(&format!("{PRELUDE}{SHAPES}"), &names)).unwrap();
    for (name, channels) in ALL {
        // One at a time: RegNetY-128GF's zeros alone are 2.6 GB.
        let net = Network::new(name, 1000, Device::Cpu).unwrap();
        assert_eq!(net.channels(), channels, "{name}");
        let ours: BTreeMap<String, Vec<i64>> = net.parameter_shapes().into_iter().collect();
        assert_eq!(ours, torchvision[name], "{name}: parameters differ");
    }
}

/// argv: NAME... Prints, per name, the basename of its default weights' URL and
/// their eval transform: resize, crop, interpolation, mean, std.
const WEIGHTS: &str = r#"
import os
out = {}
for name in sys.argv[1:]:
    enum = torchvision.models.get_model_weights(name)
    w = getattr(enum, "IMAGENET1K_V1", None) or list(enum)[0]
    t = w.transforms()
    out[name] = [os.path.basename(w.url), t.resize_size[0], t.crop_size[0], t.interpolation.value, t.mean, t.std]
print(json.dumps(out))
"#;

#[test]
fn registry_rows_carry_torchvision_weight_files_and_transforms() {
    let names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
    // name → (weight file, resize, crop, interpolation, mean, std)
    type Row = (String, i64, i64, String, Vec<f64>, Vec<f64>);
    let torchvision: BTreeMap<String, Row> =
        serde_json::from_str(&run_python(&format!("{PRELUDE}{WEIGHTS}"), &names)).unwrap();
    for name in names {
        let a = ARCHITECTURES.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{name} not registered"));
        let (file, resize, crop, interpolation, mean, std) = &torchvision[name];
        let p = a.preprocess;
        assert_eq!(a.torchvision_weights, Some(file.as_str()), "{name}");
        assert_eq!((p.resize, p.crop), (*resize, *crop), "{name}");
        let filter = match p.interpolation {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
        };
        assert_eq!(filter, interpolation, "{name}");
        assert_eq!((p.mean.to_vec(), p.std.to_vec()), (mean.clone(), std.clone()), "{name}");
    }
}
