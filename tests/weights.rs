//! The other ways weights come in: a TorchScript backbone with a linear head given
//! as tensors (for networks without a Rust definition), fine-tuned checkpoint
//! dicts with their own number of classes (the reference's custom_weights_path),
//! and .safetensors state dicts.
mod common;
use common::*;
use epic::model::{load, ModelSpec, Network};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Tensor};

fn python(code: &str, dir: &Path) {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let o = Command::new(py).arg("-c").arg(code).arg(dir).output().expect("venv python");
    assert!(o.status.success(), "python: {}", String::from_utf8_lossy(&o.stderr));
}

/// Writes tensors as safetensors from Python without the safetensors package.
const SAVE_ST: &str = r#"
import json, struct, torch
def save_st(tensors, path):
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = v.detach().contiguous().float().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
"#;

#[test]
fn a_torchscript_backbone_with_a_tensor_head_gives_pytorchs_logits() {
    let tmp = tempfile::tempdir().unwrap();
    python(
        &format!(
            "{SAVE_ST}\n{}",
            r#"
import sys, torch, torchvision
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=7).eval()
backbone = torch.nn.Sequential(*list(m.children())[:-2]).eval()
x = torch.randn(2, 3, 96, 96)
torch.jit.trace(backbone, x).save(f"{d}/backbone.pt")
save_st({"fc.weight": m.fc.weight, "fc.bias": m.fc.bias}, f"{d}/head.safetensors")
save_st({"x": x, "logits": m(x)}, f"{d}/io.safetensors")
"#
        ),
        tmp.path(),
    );
    let mut spec = ModelSpec::new("torchscript", Device::Cpu);
    spec.backbone = Some(tmp.path().join("backbone.pt"));
    spec.weights = Some(tmp.path().join("head.safetensors"));
    let net = load(&spec).unwrap();
    assert_eq!((net.channels(), net.num_classes()), (512, 7));
    let io: std::collections::HashMap<_, _> =
        epic::io::load_tensors(&tmp.path().join("io.safetensors")).unwrap().into_iter().collect();
    let err = max_abs_diff(&net.logits(&io["x"]).unwrap(), &io["logits"]);
    eprintln!("torchscript resnet18: logits max |Δ| = {err:.2e}");
    assert!(err < 1e-4, "{err}");

    spec.weights = None;
    let e = load(&spec).err().unwrap().to_string();
    assert!(e.contains("needs `weights`"), "{e}");
    spec.weights = Some(tmp.path().join("head.safetensors"));
    spec.backbone = Some(tmp.path().join("head.safetensors"));
    let e = load(&spec).err().unwrap().to_string();
    assert!(e.contains("not a loadable TorchScript file"), "{e}");
}

#[test]
fn a_fine_tuned_checkpoint_dict_loads_with_its_own_classes() {
    let tmp = tempfile::tempdir().unwrap();
    python(
        &format!(
            "{SAVE_ST}\n{}",
            r#"
import sys, torch, torchvision
d = sys.argv[1]
torch.manual_seed(1)
m = torchvision.models.resnet18(num_classes=200).eval()
torch.save({"model": m.state_dict(), "epoch": 90, "args": {"lr": 0.1}}, f"{d}/cub_resnet18.pth")
save_st(m.state_dict(), f"{d}/cub_resnet18.safetensors")
x = torch.randn(1, 3, 64, 64)
save_st({"x": x, "logits": m(x)}, f"{d}/io.safetensors")
"#
        ),
        tmp.path(),
    );
    let io: std::collections::HashMap<_, _> =
        epic::io::load_tensors(&tmp.path().join("io.safetensors")).unwrap().into_iter().collect();
    for file in ["cub_resnet18.pth", "cub_resnet18.safetensors"] {
        let mut spec = ModelSpec::new("resnet18", Device::Cpu);
        spec.weights = Some(tmp.path().join(file));
        spec.num_classes = 200;
        let net = load(&spec).unwrap();
        let err = max_abs_diff(&net.logits(&io["x"]).unwrap(), &io["logits"]);
        assert!(err < 1e-4, "{file}: {err}");
        // With the ImageNet head size, only the head differs: the error says so.
        spec.num_classes = 1000;
        let e = load(&spec).err().unwrap().to_string();
        assert!(
            e.contains("fc.weight [200, 512] (model wants [1000, 512])") && e.contains("set model.num_classes"),
            "{e}"
        );
    }
    let mut spec = ModelSpec::new("resnet18", Device::Cpu);
    spec.weights = Some(tmp.path().join("missing.pth"));
    let e = load(&spec).err().unwrap().to_string();
    assert!(e.contains("missing.pth") && e.contains("weights file not found"), "{e}");
}

#[test]
fn a_network_round_trips_through_safetensors() {
    // Lite0's ImageNet weights, re-saved by epic, load into a fresh network.
    let net = load(&ModelSpec::new("efficientnet_lite0", Device::Cpu)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("lite0.safetensors");
    let shapes = net.parameter_shapes();
    let w = epic::model::pth::read_pth(&epic::model::default_weights("efficientnet_lite0").unwrap())
        .unwrap()
        .state_dict(None)
        .unwrap();
    let refs: Vec<(&str, &Tensor)> = w.iter().map(|(k, v)| (k.as_str(), v)).collect();
    epic::io::save_tensors(&refs, &path).unwrap();
    let mut again = Network::new("efficientnet_lite0", 1000, Device::Cpu).unwrap();
    again.load_weights(&path).unwrap();
    assert_eq!(again.parameter_shapes(), shapes);
    assert_eq!(again.weights_fingerprint().unwrap(), net.weights_fingerprint().unwrap());
}

/// As the reference's `create_backbone_model`: a weights file of one's own
/// (`custom_weights_path`) is evaluated with resize 256, crop 224, bilinear, for
/// every architecture, whatever its torchvision weights used (Swin-T's: 232,
/// bicubic); `resize`/`crop` still override it, and the default weights keep
/// the registry's transform.
#[test]
fn custom_weights_use_the_references_256_224_bilinear_transform() {
    use epic::model::{Interpolation, Preprocess};
    let tmp = tempfile::tempdir().unwrap();
    let net = Network::new("swin_t", 10, Device::Cpu).unwrap();
    assert_eq!((net.preprocess().resize, net.preprocess().interpolation), (232, Interpolation::Bicubic));
    let zeros: Vec<(String, Tensor)> = net
        .parameter_shapes()
        .into_iter()
        .map(|(k, s)| (k, Tensor::zeros(s.as_slice(), (tch::Kind::Float, Device::Cpu))))
        .collect();
    let path = tmp.path().join("swin_t_finetuned.safetensors");
    epic::io::save_tensors(&zeros.iter().map(|(k, v)| (k.as_str(), v)).collect::<Vec<_>>(), &path).unwrap();
    let mut spec = ModelSpec::new("swin_t", Device::Cpu);
    spec.num_classes = 10;
    spec.weights = Some(path.clone());
    let p = load(&spec).unwrap().preprocess();
    assert_eq!(
        p,
        Preprocess { resize: 256, crop: 224, interpolation: Interpolation::Bilinear, ..Preprocess::IMAGENET }
    );
    spec.sizes = Some((64, 56));
    let p = load(&spec).unwrap().preprocess();
    assert_eq!((p.resize, p.crop, p.interpolation), (64, 56, Interpolation::Bilinear));
    // EfficientNet-Lite0's default weights keep its own transform.
    let lite = load(&ModelSpec::new("efficientnet_lite0", Device::Cpu)).unwrap();
    assert_eq!(lite.preprocess(), Preprocess::LITE);
}
