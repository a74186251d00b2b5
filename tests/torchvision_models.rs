//! The torchvision architectures (ResNet, DenseNet, ConvNeXt) against torchvision
//! itself, run by the venv's Python: random weights (with randomised batch-norm
//! statistics, norm affines, biases and ConvNeXt layer scales, so that every
//! parameter matters) are saved with `torch.save`, torchvision's logits and
//! backbone output on a random input [2,3,224,224] are saved as safetensors, and
//! epic must reproduce them. The Python that makes the numbers is below
//! (`GOLDEN`, `SHAPES`, `LEGACY`); nothing is stored.
mod common;
use common::*;
use epic::model::{Network, ARCHITECTURES};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Device, Tensor};

/// Shared Python: a seeded torchvision model whose every parameter matters, and
/// a hand-written safetensors writer (no extra package).
const PRELUDE: &str = r#"
import sys, json, struct, re, torch, torchvision
from torch import nn
torch.set_num_threads(2)

def random_model(name):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
            if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.uniform_(-0.1, 0.1)
            if hasattr(mod, "layer_scale"):
                mod.layer_scale.uniform_(0.1, 1.0)
    return m

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
"#;

/// argv: DIR NAME. Writes DIR/NAME.pth (the state dict) and DIR/io.safetensors:
/// `input` [2,3,224,224], `logits` [2,1000] and `features`, the backbone output
/// as epic splits it (see each architecture's module docs).
const GOLDEN: &str = r#"
d, name = sys.argv[1], sys.argv[2]
m = random_model(name)
torch.save(m.state_dict(), f"{d}/{name}.pth")
torch.manual_seed(1)
x = torch.randn(2, 3, 224, 224)
with torch.no_grad():
    logits = m(x)
    if name.startswith("resnet"):
        z = nn.Sequential(*list(m.children())[:-2])(x)
    elif name.startswith("densenet"):
        z = torch.relu(m.features(x))
    else:  # ConvNeXt: the sample-wide form of classifier.0, which commutes with pooling
        h = m.features(x)
        mu = h.mean(dim=(2, 3), keepdim=True)
        var = mu.var(dim=1, unbiased=False, keepdim=True)
        ln = m.classifier[0]
        z = (h - mu.mean(dim=1, keepdim=True)) / torch.sqrt(var + ln.eps)
        z = z * ln.weight[None, :, None, None] + ln.bias[None, :, None, None]
save_safetensors(f"{d}/io.safetensors", {"input": x, "logits": logits, "features": z})
print(logits.abs().max().item())
"#;

/// Builds `name` and loads the state dict torchvision saved.
fn load(name: &str, weights: &Path) -> Network {
    let mut net = Network::new(name, 1000, Device::Cpu).unwrap();
    net.load_weights(weights).unwrap();
    net
}

/// epic's `name` reproduces torchvision's logits (max |Δ| < 1e-4) and backbone
/// output, and its split is exact.
fn matches_torchvision(name: &str, channels: i64) {
    let start = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let scale: f64 = run_python(&format!("{PRELUDE}{GOLDEN}"), &[dir, name]).trim().parse().unwrap();
    let io: HashMap<String, Tensor> =
        epic::io::load_tensors(&tmp.path().join("io.safetensors")).unwrap().into_iter().collect();
    let python_s = start.elapsed().as_secs_f64();

    let net = load(name, &tmp.path().join(format!("{name}.pth")));
    assert_eq!(net.channels(), channels);
    let z = net.features(&io["input"]).unwrap();
    assert_eq!(z.size(), [2, channels, 7, 7]);
    let logits = net.head_logits(&z).unwrap();
    let dz = max_abs_diff(&z, &io["features"]);
    let dl = max_abs_diff(&logits, &io["logits"]);
    eprintln!(
        "{name}: logits max |Δ| = {dl:.2e} (max |logit| {scale:.2}), features max |Δ| = {dz:.2e}; \
         python {python_s:.1}s, total {:.1}s",
        start.elapsed().as_secs_f64()
    );
    assert!(dl < 1e-4, "{name}: logits differ by {dl}");
    // Relative to the features' size beyond 10: folded batch norms round
    // differently from PyTorch's separate pass, and ResNet-50's random-weight
    // maps reach 346 (measured max |Δ| 1.3e-3 there, 3.6e-6 of it).
    let z_scale = io["features"].abs().max().double_value(&[]);
    assert!(dz < 1e-5 * z_scale.max(10.0), "{name}: features differ by {dz} (max |z| {z_scale:.1})");
    // head(backbone(x)) is the network's own logits.
    assert_eq!(max_abs_diff(&net.logits(&io["input"]).unwrap(), &logits), 0.0);
}

#[test]
fn resnet18_matches_torchvision() {
    matches_torchvision("resnet18", 512);
}

#[test]
fn resnet50_matches_torchvision() {
    matches_torchvision("resnet50", 2048);
}

#[test]
fn densenet121_matches_torchvision() {
    matches_torchvision("densenet121", 1024);
}

#[test]
fn convnext_tiny_matches_torchvision() {
    matches_torchvision("convnext_tiny", 768);
}

/// argv: DIR. Writes DIR/modern.pth and DIR/legacy.pth, the same DenseNet-121
/// weights with old torchvision's key names (`denselayer1.norm.1.weight`), no
/// `num_batches_tracked`, in the legacy (non-zip) format; prints how many keys
/// were renamed.
const LEGACY: &str = r#"
d = sys.argv[1]
sd = random_model("densenet121").state_dict()
torch.save(sd, f"{d}/modern.pth")
old = {}
for k, v in sd.items():
    if k.endswith("num_batches_tracked"):
        continue
    old[re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k)] = v
torch.save(old, f"{d}/legacy.pth", _use_new_zipfile_serialization=False)
print(sum(k not in sd for k in old))
"#;

#[test]
fn densenet121_checkpoint_with_legacy_key_names_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let renamed: usize =
        run_python(&format!("{PRELUDE}{LEGACY}"), &[tmp.path().to_str().unwrap()]).trim().parse().unwrap();
    // 58 dense layers × (2 norms × 4 + 2 convs).
    assert_eq!(renamed, 58 * 10);
    let modern = load("densenet121", &tmp.path().join("modern.pth"));
    let legacy = load("densenet121", &tmp.path().join("legacy.pth"));
    let x = Tensor::randn([1, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
    let (a, b) = (modern.logits(&x).unwrap(), legacy.logits(&x).unwrap());
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert!(max_abs_diff(&a, &a.zeros_like()) > 0.0);
}

/// Prints, for every torchvision architecture, its state dict's parameter names
/// and shapes (built on the meta device: no memory, no initialisation).
const SHAPES: &str = r#"
out = {}
for name in sys.argv[1:]:
    with torch.device("meta"):
        m = getattr(torchvision.models, name)(weights=None)
    out[name] = {k: list(v.shape) for k, v in m.state_dict().items()
                 if not k.endswith("num_batches_tracked")}
print(json.dumps(out))
"#;

#[test]
fn every_architecture_builds_with_torchvision_names_shapes_and_channels() {
    let expected: [(&str, i64); 10] = [
        ("resnet18", 512),
        ("resnet34", 512),
        ("resnet50", 2048),
        ("resnet101", 2048),
        ("resnet152", 2048),
        ("densenet121", 1024),
        ("convnext_tiny", 768),
        ("convnext_small", 768),
        ("convnext_base", 1024),
        ("convnext_large", 1536),
    ];
    let names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    let torchvision: BTreeMap<String, BTreeMap<String, Vec<i64>>> =
        serde_json::from_str(&run_python(&format!("{PRELUDE}{SHAPES}"), &names)).unwrap();
    for (name, channels) in expected {
        assert!(ARCHITECTURES.iter().any(|a| a.name == name), "{name} not registered");
        let net = Network::new(name, 1000, Device::Cpu).unwrap();
        assert_eq!(net.channels(), channels, "{name}");
        assert_eq!(net.num_classes(), 1000, "{name}");
        let ours: BTreeMap<String, Vec<i64>> = net.parameter_shapes().into_iter().collect();
        assert_eq!(ours, torchvision[name], "{name}: parameters differ");
        assert_eq!(net.preprocess().crop, 224, "{name}");
    }
}
