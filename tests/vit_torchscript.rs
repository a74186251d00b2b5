//! The worked example for a transformer epic has no Rust definition of, and
//! whose head is pooling + linear: a ViT whose logits are a linear layer on the
//! *mean* of its patch tokens (not the class token). The venv's PyTorch builds a
//! small one (torchvision's `VisionTransformer`, 2 layers, width 64, patch 16),
//! traces the part before pooling — tokens reshaped to a 14×14 map
//! [B,64,14,14] — and saves the linear head; epic loads both as
//! `name: "torchscript"` and runs EPIC on the token grid. The Python is below;
//! nothing is stored.
mod common;
use common::*;
use epic::prelude::*;
use epic::render::figures::{explanation_size, explanation_tile_origin, TILE};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

const MAKE_VIT: &str = r#"
import sys, json, struct, torch
from torchvision.models.vision_transformer import VisionTransformer
def save_st(tensors, path):
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = v.detach().contiguous().float().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
d = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(2)
vit = VisionTransformer(image_size=224, patch_size=16, num_layers=2, num_heads=2, hidden_dim=64,
                        mlp_dim=128, num_classes=10).eval()
class Tokens(torch.nn.Module):
    """The ViT up to its final LayerNorm, patch tokens only, as a [B,C,14,14] map."""
    def __init__(self, v):
        super().__init__(); self.v = v
    def forward(self, x):
        t = self.v._process_input(x)
        cls = self.v.class_token.expand(t.shape[0], -1, -1)
        t = self.v.encoder(torch.cat([cls, t], dim=1))[:, 1:]
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], 14, 14)
backbone = Tokens(vit).eval()
head = torch.nn.Linear(64, 10)
with torch.no_grad():
    x = torch.randn(2, 3, 224, 224)
    torch.jit.trace(backbone, x).save(f"{d}/vit_backbone.pt")
    logits = head(backbone(x).mean(dim=(2, 3)))
save_st({"weight": head.weight, "bias": head.bias}, f"{d}/head.safetensors")
save_st({"x": x, "logits": logits}, f"{d}/io.safetensors")
"#;

#[test]
fn a_mean_pooled_vit_comes_in_through_torchscript_and_epic_runs_on_its_token_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let o = Command::new(py).arg("-c").arg(MAKE_VIT).arg(tmp.path()).output().expect("venv python");
    assert!(o.status.success(), "python: {}", String::from_utf8_lossy(&o.stderr));

    // As a script would load it: load_model(#{ name: "torchscript", backbone, weights }).
    let mut spec = ModelSpec::new("torchscript", Device::Cpu);
    spec.backbone = Some(tmp.path().join("vit_backbone.pt"));
    spec.weights = Some(tmp.path().join("head.safetensors"));
    let net = spec.load().unwrap();
    assert_eq!((net.channels(), net.num_classes()), (64, 10));
    let io: std::collections::HashMap<_, _> =
        epic::io::load_tensors(&tmp.path().join("io.safetensors")).unwrap().into_iter().collect();
    let err = max_abs_diff(&net.logits(&io["x"]).unwrap(), &io["logits"]);
    assert!(err < 1e-4, "mean-pooled ViT logits differ from PyTorch's by {err}");

    // EPIC on the 14×14 token grid of 10 Fashion-MNIST images.
    let train: Arc<dyn Dataset> = Arc::new(FashionMnist::open(None, "train", Some(1)).unwrap());
    let options = ExtractOptions { batch_size: BatchSize::Fixed(5), quiet: true, ..Default::default() };
    let study = Study::extract(net, train, &options).unwrap();
    assert_eq!(study.bank().map_size, (14, 14));
    let d = Disentangler::from_raw(MatrixKind::Orthogonal, &(randn(&[64, 64], 3) * 0.1)).unwrap();
    let u = d.matrix().unwrap();
    let (images, _) = study.loader().images(&(0..10).collect::<Vec<_>>()).unwrap();
    let z = study.network().features(&images).unwrap();
    let change = max_logit_change(&z, study.network().head_weight(), study.network().head_bias(), &u).unwrap();
    assert!(change < 1e-4, "logits moved by {change}");
    let direct = top_prototypes(&channel_activation(&rotate(&z, &u).unwrap()).unwrap(), 2).unwrap();
    assert_eq!(ints(&study.bank().top_prototypes(Some(&u), 2).unwrap()), ints(&direct));

    // The explanation boxes the token where each channel peaks: cell (r, c) of
    // the 14×14 grid is pixels [c·224/14, (c+1)·224/14) of the input, drawn at
    // TILE/14 per token in the figure.
    let image = images.get(3);
    let e = study.explain(&d, &image, &ExplainOptions { channels: 2, prototypes: 2, class: None }).unwrap();
    assert_eq!(e.grid, (14, 14));
    let zr = rotate(&z.narrow(0, 3, 1), &u).unwrap().get(0);
    let fig = study.explanation_figure(&e, &image, false).unwrap();
    assert_eq!(fig.size(), explanation_size(2, 2));
    let img = image::load_from_memory(&fig.png().unwrap()).unwrap().to_rgb8();
    let yellow = |x: u32, y: u32| {
        let p = img.get_pixel(x, y);
        p[0] > 200 && p[1] > 180 && p[2] < 90
    };
    for (row, &ch) in e.channels.iter().enumerate() {
        let flat = zr.get(ch).reshape([-1]).argmax(0, false).int64_value(&[]);
        let (r, c) = (flat / 14, flat % 14);
        assert_eq!(e.cells[row], (r, c), "channel {ch}");
        let (x, y) = explanation_tile_origin(row as u32, 0);
        let corner = |r: i64, c: i64| (x + c as u32 * TILE / 14 + 1, y + r as u32 * TILE / 14 + 1);
        let (bx, by) = corner(r, c);
        assert!(yellow(bx, by), "row {row}: no box at token ({r}, {c})");
        let (ox, oy) = corner((r + 7) % 14, (c + 7) % 14);
        assert!(!yellow(ox, oy), "row {row}: a box at a token that is not the peak");
    }
}
