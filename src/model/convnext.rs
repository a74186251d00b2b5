//! ConvNeXt-T/S/B/L (Liu et al. 2022, "A ConvNet for the 2020s"), with the layout
//! and state-dict names of torchvision's `torchvision/models/convnext.py`:
//! `features.0.0` (4×4 stride-4 stem convolution), `features.0.1` (its
//! LayerNorm2d), stages at `features.{1,3,5,7}` made of blocks
//! `features.{i}.{j}.block.{0,2,3,5}` with `features.{i}.{j}.layer_scale`,
//! downsampling at `features.{2,4,6}` (`.0` LayerNorm2d, `.1` 2×2 stride-2
//! convolution), and `classifier.0` (LayerNorm2d), `classifier.2` (the linear layer).
//!
//! A block is x + γ ⊙ Linear(GELU(Linear(LayerNorm(dwconv7×7(x))))), with the
//! per-channel layer scale γ; layer norms use eps 1e-6. Stochastic depth is the
//! identity at evaluation.
//!
//! **Where epic departs from torchvision's split.** torchvision's classifier
//! applies `classifier.0` (a LayerNorm over channels) to the *pooled* vector, so
//! its head is not "average pooling + linear". epic moves that normalisation into
//! the backbone in a form that commutes with average pooling: per image, with
//! m = mean over (H,W) of x `[C]`,
//! Z = (x − mean_C(m)) / sqrt(var_C(m) + eps) · γ_c + β_c,
//! γ, β = `classifier.0.weight`/`.bias` (they keep their state-dict names). Then
//! mean over (H,W) of Z is exactly LayerNorm(m), and head(backbone(x)) equals
//! torchvision's logits. The feature map Z is `[B,C,7,7]` for a 224×224 input, but
//! it is one sample-wide affine map of the last stage's output, not a per-pixel
//! layer norm.
//!
//! Inputs are ImageNet-normalised (see the registry) with the resize torchvision's `IMAGENET1K_V1`
//! weights were evaluated with (T 236, S 230, B and L 232) and crop 224.
use super::backbone::{Backbone, Parts};
use super::layers::{Conv2d, ConvOpts, LayerNorm, Linear};
use super::params::Params;
use super::Result;
use tch::{Kind, Tensor};

const LN_EPS: f64 = 1e-6;

/// A ConvNeXt's blocks per stage and channels per stage (the eval resize of each
/// variant is in the [registry](super::registry)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub depths: [usize; 4],
    pub dims: [i64; 4],
}

impl Config {
    pub fn tiny() -> Self {
        Config { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] }
    }
    pub fn small() -> Self {
        Config { depths: [3, 3, 27, 3], dims: [96, 192, 384, 768] }
    }
    pub fn base() -> Self {
        Config { depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024] }
    }
    pub fn large() -> Self {
        Config { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536] }
    }

    /// C, the channels of the feature map (the last stage's).
    pub fn channels(&self) -> i64 {
        self.dims[3]
    }
}

/// A convolution with bias, `k`×`k`, stride `stride`, padding `padding`.
fn conv(p: &Params, cin: i64, cout: i64, k: i64, o: ConvOpts) -> Result<Conv2d> {
    Conv2d::new(p, cin, cout, k, ConvOpts { bias: true, ..o })
}

/// torchvision's CNBlock: `block.0` depthwise 7×7 conv, `block.2` LayerNorm,
/// `block.3` Linear C→4C, GELU, `block.5` Linear 4C→C, then × `layer_scale`
/// `[C,1,1]` and the residual.
struct CnBlock {
    dwconv: Conv2d,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    layer_scale: Tensor,
}

impl CnBlock {
    fn new(p: &Params, c: i64) -> Result<Self> {
        let b = p.pp("block");
        Ok(CnBlock {
            dwconv: conv(&b.pp(0), c, c, 7, ConvOpts { padding: 3, groups: c, ..Default::default() })?,
            norm: LayerNorm::new(&b.pp(2), c, LN_EPS)?,
            fc1: Linear::new(&b.pp(3), c, 4 * c)?,
            fc2: Linear::new(&b.pp(5), 4 * c, c)?,
            layer_scale: p.tensor("layer_scale", &[c, 1, 1])?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.dwconv.forward(x)?.f_permute([0, 2, 3, 1])?;
        let h = self.fc1.forward(&self.norm.forward(&h)?)?.f_gelu("none")?;
        let h = self.fc2.forward(&h)?.f_permute([0, 3, 1, 2])?;
        Ok(h.f_mul(&self.layer_scale)?.f_add(x)?)
    }
}

/// One step of the trunk: a LayerNorm2d + convolution (the stem, or a
/// downsampling layer), or a stage of blocks.
enum Step {
    /// Stem: conv then norm. Downsampling: norm then conv.
    Stem(Conv2d, LayerNorm),
    Downsample(LayerNorm, Conv2d),
    Stage(Vec<CnBlock>),
}

struct ConvNextBackbone {
    steps: Vec<Step>,
    /// `classifier.0`, applied sample-wide so that it commutes with pooling.
    final_norm: LayerNorm,
}

impl ConvNextBackbone {
    /// x `[B,C,H,W]` → (x − μ)/sqrt(σ² + eps)·γ + β, with μ and σ² the mean and
    /// (biased) variance over C of x's spatial means, per image.
    fn pooled_layer_norm(&self, x: &Tensor) -> Result<Tensor> {
        let m = x.f_mean_dim([2i64, 3].as_slice(), true, Kind::Float)?; // [B,C,1,1]
        let mean = m.f_mean_dim([1i64].as_slice(), true, Kind::Float)?; // [B,1,1,1]
        let var = m.f_var_dim([1i64].as_slice(), false, true)?; // [B,1,1,1]
        let scale = var.f_add_scalar(self.final_norm.eps)?.f_rsqrt()?;
        let c = self.final_norm.weight.size()[0];
        let gamma = self.final_norm.weight.f_reshape([1, c, 1, 1])?;
        let beta = self.final_norm.bias.f_reshape([1, c, 1, 1])?;
        Ok(x.f_sub(&mean)?.f_mul(&scale)?.f_mul(&gamma)?.f_add(&beta)?)
    }
}

impl Backbone for ConvNextBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for step in &self.steps {
            h = match step {
                Step::Stem(conv, norm) => norm.forward_2d(&conv.forward(&h)?)?,
                Step::Downsample(norm, conv) => conv.forward(&norm.forward_2d(&h)?)?,
                Step::Stage(blocks) => {
                    for b in blocks {
                        h = b.forward(&h)?;
                    }
                    h
                }
            };
        }
        self.pooled_layer_norm(&h)
    }
}

/// A ConvNeXt with `num_classes` outputs: backbone `[B,3,224,224]` → `[B,C,7,7]` with
/// C = `config.channels()`, head `classifier.2`.
pub fn convnext(p: &Params, config: Config, num_classes: i64) -> Result<Parts> {
    let f = p.pp("features");
    let d = config.dims;
    let stem = f.pp(0);
    let mut steps = vec![Step::Stem(
        conv(&stem.pp(0), 3, d[0], 4, ConvOpts { stride: 4, ..Default::default() })?,
        LayerNorm::new(&stem.pp(1), d[0], LN_EPS)?,
    )];
    for (s, &depth) in config.depths.iter().enumerate() {
        if s > 0 {
            let down = f.pp(2 * s);
            steps.push(Step::Downsample(
                LayerNorm::new(&down.pp(0), d[s - 1], LN_EPS)?,
                conv(&down.pp(1), d[s - 1], d[s], 2, ConvOpts { stride: 2, ..Default::default() })?,
            ));
        }
        let stage = f.pp(2 * s + 1);
        let blocks = (0..depth).map(|j| CnBlock::new(&stage.pp(j), d[s])).collect::<Result<Vec<_>>>()?;
        steps.push(Step::Stage(blocks));
    }
    let c = config.channels();
    let classifier = p.pp("classifier");
    let backbone = ConvNextBackbone { steps, final_norm: LayerNorm::new(&classifier.pp(0), c, LN_EPS)? };
    Ok(Parts {
        backbone: Box::new(backbone),
        head: Linear::new(&classifier.pp(2), c, num_classes)?,
        head_prefix: "classifier.2",
        channels: c,
    })
}

/// ConvNeXt-T: backbone `[B,3,224,224]` → `[B,768,7,7]`.
pub fn convnext_tiny(p: &Params, num_classes: i64) -> Result<Parts> {
    convnext(p, Config::tiny(), num_classes)
}
/// ConvNeXt-S: backbone `[B,3,224,224]` → `[B,768,7,7]`.
pub fn convnext_small(p: &Params, num_classes: i64) -> Result<Parts> {
    convnext(p, Config::small(), num_classes)
}
/// ConvNeXt-B: backbone `[B,3,224,224]` → `[B,1024,7,7]`.
pub fn convnext_base(p: &Params, num_classes: i64) -> Result<Parts> {
    convnext(p, Config::base(), num_classes)
}
/// ConvNeXt-L: backbone `[B,3,224,224]` → `[B,1536,7,7]`.
pub fn convnext_large(p: &Params, num_classes: i64) -> Result<Parts> {
    convnext(p, Config::large(), num_classes)
}
