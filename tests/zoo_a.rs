//! ResNeXt, Wide ResNet, DenseNet-161/169/201, MobileNetV2 and ShuffleNet V2
//! against torchvision, run by the venv's Python: random weights in which every
//! parameter matters (randomised batch-norm statistics and affines, biases) are
//! saved with `torch.save`, torchvision's logits and feature map before pooling
//! on random inputs are saved as safetensors, and epic must reproduce both. Every
//! architecture's state-dict names and shapes, channels, weight file and eval
//! transform are also held to torchvision's (built on the meta device).
//!
//! To keep CPU time small, inputs are small where the architecture allows
//! (every one here downsamples by 32 and accepts any size above that), one
//! family's largest variants (ResNeXt-101 64×4d, Wide ResNet-101-2) are checked
//! by names and shapes only, and one Python process serves each family. The
//! Python that makes the numbers is below (`GOLDEN`, `SHAPES`); nothing is stored.
mod common;
use common::*;
use epic::model::{registry, Network};
use std::collections::{BTreeMap, HashMap};
use tch::{Device, Tensor};

/// argv: DIR NAME:SHAPE[,SHAPE…]… (each shape `BxHxW`). For each NAME writes
/// DIR/NAME.pth (the state dict of a seeded random model whose batch-norm
/// statistics and affines and biases are randomised) and DIR/NAME.safetensors
/// with, per shape, `input_<shape>`, `logits_<shape>` and `features_<shape>`
/// (the map before pooling, as epic splits it); prints {NAME: max |logit|} as JSON.
const GOLDEN: &str = r#"
import sys, json, struct, torch, torchvision
from torch import nn
torch.set_num_threads(1)

def random_model(name):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.uniform_(-0.1, 0.1)
    return m

def features(name, m, x):
    if name.startswith(("resnext", "wide_resnet")):
        return nn.Sequential(*list(m.children())[:-2])(x)
    if name.startswith("densenet"):
        return torch.relu(m.features(x))
    if name == "mobilenet_v2":
        return m.features(x)
    # ShuffleNet V2: through conv5.
    return m.conv5(m.stage4(m.stage3(m.stage2(m.maxpool(m.conv1(x))))))

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
for spec in sys.argv[2:]:
    name, shapes = spec.split(":")
    m = random_model(name)
    torch.save(m.state_dict(), f"{d}/{name}.pth")
    out, scale = {}, 0.0
    torch.manual_seed(1)
    for s in shapes.split(","):
        b, h, w = map(int, s.split("x"))
        x = torch.randn(b, 3, h, w)
        with torch.no_grad():
            logits = m(x)
            z = features(name, m, x)
            head = m.fc if hasattr(m, "fc") else m.classifier
            head = head[-1] if isinstance(head, nn.Sequential) else head
            assert torch.allclose(head(z.mean((2, 3))), logits, atol=1e-3 * max(1.0, logits.abs().max().item()))
        out[f"input_{s}"], out[f"logits_{s}"], out[f"features_{s}"] = x, logits, z
        scale = max(scale, logits.abs().max().item())
    save_safetensors(f"{d}/{name}.safetensors", out)
    scales[name] = scale
    del m
print(json.dumps(scales))
"#;

/// epic reproduces torchvision for every `(name, channels, shapes)`: logits within
/// 1e-4 (relative to the largest |logit| when it is above 1), the feature map
/// before pooling within 1e-4 (likewise relative), and head(backbone(x)) is the
/// network's own logits.
fn match_torchvision(cases: &[(&str, i64, &[&str])]) {
    let start = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let specs: Vec<String> = cases.iter().map(|(n, _, shapes)| format!("{n}:{}", shapes.join(","))).collect();
    let mut args = vec![dir];
    args.extend(specs.iter().map(String::as_str));
    let scales: HashMap<String, f64> = serde_json::from_str(&run_python(GOLDEN, &args)).unwrap();
    eprintln!("python {:.1}s", start.elapsed().as_secs_f64());
    for &(name, channels, shapes) in cases {
        let t = std::time::Instant::now();
        let io: HashMap<String, Tensor> =
            epic::io::load_tensors(&tmp.path().join(format!("{name}.safetensors"))).unwrap().into_iter().collect();
        let mut net = Network::new(name, 1000, Device::Cpu).unwrap();
        net.load_weights(&tmp.path().join(format!("{name}.pth"))).unwrap();
        assert_eq!(net.channels(), channels, "{name}");
        let scale = scales[name];
        for s in shapes {
            let x = &io[&format!("input_{s}")];
            let z = net.features(x).unwrap();
            let want_z = &io[&format!("features_{s}")];
            assert_eq!(z.size(), want_z.size(), "{name} {s}");
            let logits = net.head_logits(&z).unwrap();
            let dl = max_abs_diff(&logits, &io[&format!("logits_{s}")]);
            let dz = max_abs_diff(&z, want_z);
            let z_scale = want_z.abs().max().double_value(&[]);
            eprintln!(
                "{name} {s}: logits max |Δ| = {dl:.2e} (max |logit| {scale:.2}), features {:?} max |Δ| = {dz:.2e} \
                 (max |z| {z_scale:.2})",
                z.size()
            );
            assert!(dl < 1e-4 * scale.max(1.0), "{name} {s}: logits differ by {dl}");
            assert!(dz < 1e-4 * z_scale.max(1.0), "{name} {s}: features differ by {dz}");
            assert_eq!(max_abs_diff(&net.logits(x).unwrap(), &logits), 0.0, "{name} {s}");
        }
        eprintln!("{name}: epic {:.1}s", t.elapsed().as_secs_f64());
    }
    eprintln!("total {:.1}s", start.elapsed().as_secs_f64());
}

// The numeric checks: one full-size input per family, the rest small, and odd
// sizes (100 → 50 → 25 → 13 → 7 → 4) where padding decides the map's size.
#[test]
fn resnext_and_wide_resnet_match_torchvision() {
    match_torchvision(&[
        ("resnext50_32x4d", 2048, &["1x224x224"]),
        ("resnext101_32x8d", 2048, &["1x64x64"]),
        ("wide_resnet50_2", 2048, &["1x96x96"]),
    ]);
}

#[test]
fn densenets_match_torchvision() {
    match_torchvision(&[
        ("densenet161", 2208, &["1x64x64"]),
        ("densenet169", 1664, &["2x96x96"]),
        ("densenet201", 1920, &["1x64x64"]),
    ]);
}

#[test]
fn mobilenet_v2_matches_torchvision() {
    match_torchvision(&[("mobilenet_v2", 1280, &["1x224x224", "2x100x100"])]);
}

#[test]
fn shufflenets_match_torchvision() {
    match_torchvision(&[
        ("shufflenet_v2_x0_5", 1024, &["1x224x224"]),
        ("shufflenet_v2_x1_0", 1024, &["2x96x96"]),
        ("shufflenet_v2_x1_5", 1024, &["1x100x100"]),
        ("shufflenet_v2_x2_0", 2048, &["1x64x64"]),
    ]);
}

/// argv: NAME… For each, its state dict's names and shapes (built on the meta
/// device: no memory, no initialisation, `num_batches_tracked` left out), and its
/// `IMAGENET1K_V1` weights' file name, resize, crop and interpolation, as JSON.
const SHAPES: &str = r#"
import sys, json, torch, torchvision
out = {}
for name in sys.argv[1:]:
    with torch.device("meta"):
        m = getattr(torchvision.models, name)(weights=None)
    w = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    t = w.transforms()
    out[name] = {
        "params": {k: list(v.shape) for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")},
        "file": w.url.rsplit("/", 1)[1],
        "resize": t.resize_size[0], "crop": t.crop_size[0], "interpolation": t.interpolation.value,
    }
print(json.dumps(out))
"#;

const ALL: [(&str, i64); 13] = [
    ("resnext50_32x4d", 2048),
    ("resnext101_32x8d", 2048),
    ("resnext101_64x4d", 2048),
    ("wide_resnet50_2", 2048),
    ("wide_resnet101_2", 2048),
    ("densenet161", 2208),
    ("densenet169", 1664),
    ("densenet201", 1920),
    ("mobilenet_v2", 1280),
    ("shufflenet_v2_x0_5", 1024),
    ("shufflenet_v2_x1_0", 1024),
    ("shufflenet_v2_x1_5", 1024),
    ("shufflenet_v2_x2_0", 2048),
];

#[test]
fn every_new_architecture_has_torchvision_names_shapes_weight_file_and_transform() {
    let names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
    let torchvision: BTreeMap<String, serde_json::Value> = serde_json::from_str(&run_python(SHAPES, &names)).unwrap();
    for (name, channels) in ALL {
        let tv = &torchvision[name];
        let arch = registry::find(name).unwrap();
        assert_eq!(arch.torchvision_weights, tv["file"].as_str(), "{name}");
        let p = arch.preprocess;
        assert_eq!((Some(p.resize), Some(p.crop)), (tv["resize"].as_i64(), tv["crop"].as_i64()), "{name}");
        assert_eq!(tv["interpolation"], "bilinear", "{name}");
        assert_eq!(p.interpolation, epic::model::Interpolation::Bilinear, "{name}");
        assert_eq!(p, epic::model::Preprocess { resize: p.resize, ..epic::model::Preprocess::IMAGENET }, "{name}");

        let net = Network::new(name, 1000, Device::Cpu).unwrap();
        assert_eq!((net.channels(), net.num_classes()), (channels, 1000), "{name}");
        let ours: BTreeMap<String, Vec<i64>> = net.parameter_shapes().into_iter().collect();
        let theirs: BTreeMap<String, Vec<i64>> = serde_json::from_value(tv["params"].clone()).unwrap();
        assert_eq!(ours, theirs, "{name}: parameters differ");
    }
}

#[test]
fn refused_torchvision_classifiers_say_why_and_name_the_torchscript_route() {
    for (name, needle) in [
        ("vit_b_16", "class token"),
        ("vit_h_14", "class token"),
        ("maxvit_t", "MLP"),
        ("mobilenet_v3_large", "MLP"),
        ("vgg16_bn", "three linear layers"),
        ("alexnet", "three linear layers"),
        ("squeezenet1_1", "convolution"),
    ] {
        let e = match Network::new(name, 1000, Device::Cpu) {
            Err(e @ epic::model::Error::NotPoolingLinear { .. }) => e.to_string(),
            Err(e) => panic!("{name}: wrong error {e}"),
            Ok(_) => panic!("{name}: built"),
        };
        for n in [name, needle, "one linear layer", "name: \"torchscript\"", "head.safetensors"] {
            assert!(e.contains(n), "{name}: {n:?} missing from {e}");
        }
    }
}
