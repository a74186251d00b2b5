//! EfficientNet-B0…B7 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for
//! Convolutional Neural Networks") and EfficientNetV2-S/M/L (Tan & Le 2021,
//! "EfficientNetV2: Smaller Models and Faster Training"), with the layout and
//! state-dict names of torchvision's `torchvision/models/efficientnet.py`:
//! `features.0` (stem conv/bn), `features.{s}.{i}.block.{j}` (MBConv: expand,
//! depthwise, squeeze-excitation `fc1`/`fc2`, project; FusedMBConv: fused k×k,
//! project), the last 1×1 conv, `classifier.1`.
//!
//! Activations are SiLU, the squeeze-excitation has max(1, C_in/4) channels, and
//! stochastic depth and dropout are off (eval). Batch norm eps is torchvision's:
//! 1e-5 for B0–B4, 1e-3 for B5–B7 (their weights were ported from TensorFlow) and
//! for V2. The backbone is `features`: everything before `avgpool`, so Z is
//! `[B,1280,h,w]` for B0 (4 × the last stage's width for B1–B7, 1280 for V2) with
//! h = ⌈H/32⌉.
use super::backbone::{Backbone, Parts};
use super::layers::{BatchNorm2d, Conv2d, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

/// Which inverted-residual block a stage stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// 1×1 expand, k×k depthwise, squeeze-excitation, 1×1 project.
    MbConv,
    /// k×k expand (fused), 1×1 project; no squeeze-excitation.
    Fused,
}

/// One stage: block type, expand ratio, kernel, stride of its first block, input
/// and output channels and number of blocks, before width/depth scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// The block type.
    pub block: Block,
    /// Expanded channels = input channels × this.
    pub expand: f64,
    /// The k×k convolution's kernel.
    pub kernel: i64,
    /// Stride of the stage's first block (the others have 1).
    pub stride: i64,
    /// Input channels of the first block.
    pub cin: i64,
    /// Output channels of every block.
    pub cout: i64,
    /// Number of blocks.
    pub layers: i64,
}

const fn stage(block: Block, expand: f64, kernel: i64, stride: i64, cin: i64, cout: i64, layers: i64) -> Stage {
    Stage { block, expand, kernel, stride, cin, cout, layers }
}

use Block::{Fused, MbConv};

const B_STAGES: [Stage; 7] = [
    stage(MbConv, 1.0, 3, 1, 32, 16, 1),
    stage(MbConv, 6.0, 3, 2, 16, 24, 2),
    stage(MbConv, 6.0, 5, 2, 24, 40, 2),
    stage(MbConv, 6.0, 3, 2, 40, 80, 3),
    stage(MbConv, 6.0, 5, 1, 80, 112, 3),
    stage(MbConv, 6.0, 5, 2, 112, 192, 4),
    stage(MbConv, 6.0, 3, 1, 192, 320, 1),
];

const V2_S_STAGES: [Stage; 6] = [
    stage(Fused, 1.0, 3, 1, 24, 24, 2),
    stage(Fused, 4.0, 3, 2, 24, 48, 4),
    stage(Fused, 4.0, 3, 2, 48, 64, 4),
    stage(MbConv, 4.0, 3, 2, 64, 128, 6),
    stage(MbConv, 6.0, 3, 1, 128, 160, 9),
    stage(MbConv, 6.0, 3, 2, 160, 256, 15),
];

const V2_M_STAGES: [Stage; 7] = [
    stage(Fused, 1.0, 3, 1, 24, 24, 3),
    stage(Fused, 4.0, 3, 2, 24, 48, 5),
    stage(Fused, 4.0, 3, 2, 48, 80, 5),
    stage(MbConv, 4.0, 3, 2, 80, 160, 7),
    stage(MbConv, 6.0, 3, 1, 160, 176, 14),
    stage(MbConv, 6.0, 3, 2, 176, 304, 18),
    stage(MbConv, 6.0, 3, 1, 304, 512, 5),
];

const V2_L_STAGES: [Stage; 7] = [
    stage(Fused, 1.0, 3, 1, 32, 32, 4),
    stage(Fused, 4.0, 3, 2, 32, 64, 7),
    stage(Fused, 4.0, 3, 2, 64, 96, 7),
    stage(MbConv, 4.0, 3, 2, 96, 192, 10),
    stage(MbConv, 6.0, 3, 1, 192, 224, 19),
    stage(MbConv, 6.0, 3, 2, 224, 384, 25),
    stage(MbConv, 6.0, 3, 1, 384, 640, 7),
];

/// An EfficientNet: its stages, the width and depth multipliers applied to them
/// (V1 only; 1 for V2), the last convolution's width and the batch-norm eps.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The stages before scaling.
    pub stages: &'static [Stage],
    /// Channels × this, rounded to a multiple of 8 (torchvision's `_make_divisible`).
    pub width_mult: f64,
    /// Blocks per stage × this, rounded up.
    pub depth_mult: f64,
    /// The last 1×1 convolution's output channels; `None`: 4 × the last stage's.
    pub last_channel: Option<i64>,
    /// Batch norm eps.
    pub bn_eps: f64,
}

impl Config {
    fn v1(width_mult: f64, depth_mult: f64, bn_eps: f64) -> Self {
        Config { stages: &B_STAGES, width_mult, depth_mult, last_channel: None, bn_eps }
    }
    /// EfficientNet-B0: width 1.0, depth 1.0.
    pub fn b0() -> Self {
        Self::v1(1.0, 1.0, 1e-5)
    }
    /// EfficientNet-B1: width 1.0, depth 1.1.
    pub fn b1() -> Self {
        Self::v1(1.0, 1.1, 1e-5)
    }
    /// EfficientNet-B2: width 1.1, depth 1.2.
    pub fn b2() -> Self {
        Self::v1(1.1, 1.2, 1e-5)
    }
    /// EfficientNet-B3: width 1.2, depth 1.4.
    pub fn b3() -> Self {
        Self::v1(1.2, 1.4, 1e-5)
    }
    /// EfficientNet-B4: width 1.4, depth 1.8.
    pub fn b4() -> Self {
        Self::v1(1.4, 1.8, 1e-5)
    }
    /// EfficientNet-B5: width 1.6, depth 2.2, eps 1e-3.
    pub fn b5() -> Self {
        Self::v1(1.6, 2.2, 1e-3)
    }
    /// EfficientNet-B6: width 1.8, depth 2.6, eps 1e-3.
    pub fn b6() -> Self {
        Self::v1(1.8, 2.6, 1e-3)
    }
    /// EfficientNet-B7: width 2.0, depth 3.1, eps 1e-3.
    pub fn b7() -> Self {
        Self::v1(2.0, 3.1, 1e-3)
    }
    fn v2(stages: &'static [Stage]) -> Self {
        Config { stages, width_mult: 1.0, depth_mult: 1.0, last_channel: Some(1280), bn_eps: 1e-3 }
    }
    /// EfficientNetV2-S.
    pub fn v2_s() -> Self {
        Self::v2(&V2_S_STAGES)
    }
    /// EfficientNetV2-M.
    pub fn v2_m() -> Self {
        Self::v2(&V2_M_STAGES)
    }
    /// EfficientNetV2-L.
    pub fn v2_l() -> Self {
        Self::v2(&V2_L_STAGES)
    }

    fn width(&self, c: i64) -> i64 {
        make_divisible(c as f64 * self.width_mult, 8)
    }

    /// C, the channels of the feature map.
    pub fn channels(&self) -> i64 {
        let last = self.stages.last().map_or(0, |s| self.width(s.cout));
        self.last_channel.unwrap_or(4 * last)
    }
}

/// torchvision's `_make_divisible(v, divisor)`: the nearest multiple of `divisor`
/// (at least `divisor`), bumped up one step if that lost more than 10 %.
fn make_divisible(v: f64, divisor: i64) -> i64 {
    let d = divisor as f64;
    let mut new = divisor.max(((v + d / 2.0) as i64) / divisor * divisor);
    if (new as f64) < 0.9 * v {
        new += divisor;
    }
    new
}

/// Conv (no bias) + batch norm, with SiLU unless `act` is false (torchvision's
/// `Conv2dNormActivation`: `.0` conv, `.1` bn, padding (k − 1)/2).
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
    act: bool,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(p: &Params, cin: i64, cout: i64, k: i64, stride: i64, groups: i64, act: bool, eps: f64) -> Result<Self> {
        let opts = ConvOpts { stride, padding: (k - 1) / 2, groups, bias: false };
        Ok(ConvBn { conv: Conv2d::new(&p.pp(0), cin, cout, k, opts)?, bn: BatchNorm2d::new(&p.pp(1), cout, eps)?, act })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn.forward(&self.conv.forward(x)?)?;
        Ok(if self.act { h.f_silu()? } else { h })
    }
}

/// Squeeze-excitation: x · σ(fc2(SiLU(fc1(mean_hw x)))), `fc1`/`fc2` 1×1 convs with bias.
struct SqueezeExcitation {
    fc1: Conv2d,
    fc2: Conv2d,
}

impl SqueezeExcitation {
    fn new(p: &Params, c: i64, squeeze: i64) -> Result<Self> {
        let opts = ConvOpts { bias: true, ..Default::default() };
        Ok(SqueezeExcitation {
            fc1: Conv2d::new(&p.pp("fc1"), c, squeeze, 1, opts)?,
            fc2: Conv2d::new(&p.pp("fc2"), squeeze, c, 1, opts)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.f_mean_dim([2i64, 3].as_slice(), true, x.kind())?;
        let s = self.fc2.forward(&self.fc1.forward(&s)?.f_silu()?)?.f_sigmoid()?;
        Ok(x.f_mul(&s)?)
    }
}

/// One block (MBConv or FusedMBConv): its layers in order, then the residual
/// where stride is 1 and the channels do not change.
struct InvertedResidual {
    /// Layers before the squeeze-excitation (expand, depthwise / fused).
    pre: Vec<ConvBn>,
    se: Option<SqueezeExcitation>,
    /// The projection (or, for a fused block without expansion, nothing).
    post: Option<ConvBn>,
    residual: bool,
}

impl InvertedResidual {
    #[allow(clippy::too_many_arguments)]
    fn new(p: &Params, block: Block, expand: f64, k: i64, stride: i64, cin: i64, cout: i64, eps: f64) -> Result<Self> {
        let p = p.pp("block");
        let mid = make_divisible(cin as f64 * expand, 8);
        let mut pre = Vec::new();
        let (se, post);
        match block {
            Block::MbConv => {
                if mid != cin {
                    pre.push(ConvBn::new(&p.pp(pre.len()), cin, mid, 1, 1, 1, true, eps)?);
                }
                pre.push(ConvBn::new(&p.pp(pre.len()), mid, mid, k, stride, mid, true, eps)?);
                se = Some(SqueezeExcitation::new(&p.pp(pre.len()), mid, 1.max(cin / 4))?);
                post = Some(ConvBn::new(&p.pp(pre.len() + 1), mid, cout, 1, 1, 1, false, eps)?);
            }
            Block::Fused => {
                se = None;
                if mid != cin {
                    pre.push(ConvBn::new(&p.pp(0), cin, mid, k, stride, 1, true, eps)?);
                    post = Some(ConvBn::new(&p.pp(1), mid, cout, 1, 1, 1, false, eps)?);
                } else {
                    pre.push(ConvBn::new(&p.pp(0), cin, cout, k, stride, 1, true, eps)?);
                    post = None;
                }
            }
        }
        Ok(InvertedResidual { pre, se, post, residual: stride == 1 && cin == cout })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for layer in &self.pre {
            h = layer.forward(&h)?;
        }
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        if let Some(post) = &self.post {
            h = post.forward(&h)?;
        }
        Ok(if self.residual { h.f_add(x)? } else { h })
    }
}

struct EfficientNetBackbone {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    last: ConvBn,
}

impl Backbone for EfficientNetBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.stem.forward(x)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        self.last.forward(&h)
    }
}

/// An EfficientNet with `num_classes` outputs: backbone `[B,3,H,W]` → [B,C,⌈H/32⌉,⌈W/32⌉]
/// with C = `config.channels()`, head `classifier.1`.
pub fn efficientnet(p: &Params, config: &Config, num_classes: i64) -> Result<Parts> {
    let f = p.pp("features");
    let eps = config.bn_eps;
    let stem_width = config.width(config.stages[0].cin);
    let stem = ConvBn::new(&f.pp(0), 3, stem_width, 3, 2, 1, true, eps)?;
    let mut blocks = Vec::new();
    for (s, st) in config.stages.iter().enumerate() {
        let (cin, cout) = (config.width(st.cin), config.width(st.cout));
        let layers = (st.layers as f64 * config.depth_mult).ceil() as i64;
        for i in 0..layers {
            let (c, stride) = if i == 0 { (cin, st.stride) } else { (cout, 1) };
            let bp = f.pp(s + 1).pp(i);
            blocks.push(InvertedResidual::new(&bp, st.block, st.expand, st.kernel, stride, c, cout, eps)?);
        }
    }
    let last_in = config.width(config.stages[config.stages.len() - 1].cout);
    let channels = config.channels();
    let last = ConvBn::new(&f.pp(config.stages.len() + 1), last_in, channels, 1, 1, 1, true, eps)?;
    Ok(Parts {
        backbone: Box::new(EfficientNetBackbone { stem, blocks, last }),
        head: Linear::new(&p.pp("classifier").pp(1), channels, num_classes)?,
        head_prefix: "classifier.1",
        channels,
    })
}

/// EfficientNet-B0 (torchvision's `efficientnet_b0`): Z `[B,1280,h,w]`.
pub fn efficientnet_b0(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b0(), num_classes)
}
/// EfficientNet-B1: Z `[B,1280,h,w]`.
pub fn efficientnet_b1(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b1(), num_classes)
}
/// EfficientNet-B2: Z `[B,1408,h,w]`.
pub fn efficientnet_b2(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b2(), num_classes)
}
/// EfficientNet-B3: Z `[B,1536,h,w]`.
pub fn efficientnet_b3(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b3(), num_classes)
}
/// EfficientNet-B4: Z `[B,1792,h,w]`.
pub fn efficientnet_b4(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b4(), num_classes)
}
/// EfficientNet-B5: Z `[B,2048,h,w]`.
pub fn efficientnet_b5(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b5(), num_classes)
}
/// EfficientNet-B6: Z `[B,2304,h,w]`.
pub fn efficientnet_b6(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b6(), num_classes)
}
/// EfficientNet-B7: Z `[B,2560,h,w]`.
pub fn efficientnet_b7(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::b7(), num_classes)
}
/// EfficientNetV2-S: Z `[B,1280,h,w]`.
pub fn efficientnet_v2_s(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::v2_s(), num_classes)
}
/// EfficientNetV2-M: Z `[B,1280,h,w]`.
pub fn efficientnet_v2_m(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::v2_m(), num_classes)
}
/// EfficientNetV2-L: Z `[B,1280,h,w]`.
pub fn efficientnet_v2_l(p: &Params, num_classes: i64) -> Result<Parts> {
    efficientnet(p, &Config::v2_l(), num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_match_torchvision() {
        // torchvision's classifier[1].in_features per variant.
        let got: Vec<i64> = [Config::b0(), Config::b2(), Config::b4(), Config::b7(), Config::v2_l()]
            .iter()
            .map(Config::channels)
            .collect();
        assert_eq!(got, [1280, 1408, 1792, 2560, 1280]);
        assert_eq!(make_divisible(32.0 * 1.1, 8), 32);
        assert_eq!(make_divisible(16.0 * 1.1, 8), 16);
        assert_eq!(make_divisible(16.0 * 1.6, 8), 24);
    }
}
