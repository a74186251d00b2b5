//! MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
//! Bottlenecks"), width 1.0, with the layout and state-dict names of torchvision's
//! `torchvision/models/mobilenetv2.py`: `features.0.0`/`.1` (the 3×3 stem),
//! `features.{1..17}.conv.{j}` (inverted residuals), `features.18.0`/`.1` (the 1×1
//! expansion to 1280 channels), `classifier.1`.
//!
//! An inverted residual is a 1×1 expansion by `t` (absent when `t` = 1), a 3×3
//! depthwise convolution (striding), both with batch norm and ReLU6, then a linear
//! 1×1 projection with batch norm; the input is added when the stride is 1 and the
//! channels stay. Batch norm eps 1e-5. The backbone is `features`, ending in the
//! last ReLU6: Z is `[B,1280,7,7]` for a 224×224 input. torchvision's head is
//! `Dropout(0.2)`, `Linear(1280, classes)`; dropout is the identity in eval mode,
//! so the head is `classifier.1`.
use super::backbone::{Backbone, Parts};
use super::layers::{BatchNorm2d, Conv2d, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-5;

/// torchvision's `inverted_residual_setting`: expansion t, output channels c,
/// repeats n, first stride s.
const SETTING: [(i64, i64, usize, i64); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// Channels of the stem and of the last 1×1 convolution.
const STEM: i64 = 32;
const LAST: i64 = 1280;

/// torchvision's `Conv2dNormActivation`: `0` convolution (no bias, "same"
/// padding), `1` batch norm, then ReLU6 where `relu6` is set.
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
    relu6: bool,
}

impl ConvBn {
    fn new(p: &Params, (cin, cout): (i64, i64), k: i64, stride: i64, groups: i64) -> Result<Self> {
        let opts = ConvOpts { stride, padding: (k - 1) / 2, groups, ..Default::default() };
        Ok(ConvBn {
            conv: Conv2d::new(&p.pp(0), cin, cout, k, opts)?,
            bn: BatchNorm2d::new(&p.pp(1), cout, BN_EPS)?,
            relu6: true,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn.forward(&self.conv.forward(x)?)?;
        Ok(if self.relu6 { h.f_relu6()? } else { h })
    }
}

/// An inverted residual: its `conv.{j}` layers in order, and whether the input
/// is added.
struct InvertedResidual {
    layers: Vec<ConvBn>,
    residual: bool,
}

impl InvertedResidual {
    fn new(p: &Params, cin: i64, cout: i64, stride: i64, t: i64) -> Result<Self> {
        let p = p.pp("conv");
        let hidden = cin * t;
        let mut layers = Vec::new();
        if t != 1 {
            layers.push(ConvBn::new(&p.pp(layers.len()), (cin, hidden), 1, 1, 1)?);
        }
        layers.push(ConvBn::new(&p.pp(layers.len()), (hidden, hidden), 3, stride, hidden)?);
        // The projection is a bare Conv2d at `conv.{j}` and its BatchNorm at
        // `conv.{j+1}`, not a nested pair.
        let j = layers.len();
        let opts = ConvOpts::default();
        layers.push(ConvBn {
            conv: Conv2d::new(&p.pp(j), hidden, cout, 1, opts)?,
            bn: BatchNorm2d::new(&p.pp(j + 1), cout, BN_EPS)?,
            relu6: false,
        });
        Ok(InvertedResidual { layers, residual: stride == 1 && cin == cout })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for layer in &self.layers {
            h = layer.forward(&h)?;
        }
        Ok(if self.residual { x.f_add(&h)? } else { h })
    }
}

struct MobileNetV2Backbone {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    last: ConvBn,
}

impl Backbone for MobileNetV2Backbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.stem.forward(x)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        self.last.forward(&h)
    }
}

/// MobileNetV2 (width 1.0) with `num_classes` outputs: backbone `[B,3,224,224]` →
/// `[B,1280,7,7]`, head `classifier.1`.
pub fn mobilenet_v2(p: &Params, num_classes: i64) -> Result<Parts> {
    let f = p.pp("features");
    let stem = ConvBn::new(&f.pp(0), (3, STEM), 3, 2, 1)?;
    let mut blocks = Vec::new();
    let mut cin = STEM;
    for (t, c, n, s) in SETTING {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            blocks.push(InvertedResidual::new(&f.pp(blocks.len() + 1), cin, c, stride, t)?);
            cin = c;
        }
    }
    let last = ConvBn::new(&f.pp(blocks.len() + 1), (cin, LAST), 1, 1, 1)?;
    Ok(Parts {
        backbone: Box::new(MobileNetV2Backbone { stem, blocks, last }),
        head: Linear::new(&p.pp("classifier").pp(1), LAST, num_classes)?,
        head_prefix: "classifier.1",
        channels: LAST,
    })
}
