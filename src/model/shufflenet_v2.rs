//! ShuffleNet V2 ×0.5/×1.0/×1.5/×2.0 (Ma et al. 2018, "ShuffleNet V2: Practical
//! Guidelines for Efficient CNN Architecture Design"), with the layout and
//! state-dict names of torchvision's `torchvision/models/shufflenetv2.py`:
//! `conv1.0`/`.1`, `stage{2,3,4}.{i}.branch1.{j}`/`branch2.{j}`, `conv5.0`/`.1`, `fc`.
//!
//! A unit of stride 1 keeps the first half of its channels and sends the second
//! through `branch2` (1×1, depthwise 3×3, 1×1); a unit of stride 2 sends the whole
//! input through both branches (`branch1`: depthwise 3×3, 1×1). The halves are
//! concatenated and shuffled (two groups interleaved). Stages repeat (4, 8, 4)
//! units; batch norm eps 1e-5. The backbone runs through `conv5` and its ReLU: Z
//! is `[B,1024,7,7]` (×2.0: `[B,2048,7,7]`) for a 224×224 input, and the head `fc`
//! reads its spatial mean, as torchvision's `x.mean([2, 3])` does.
use super::backbone::{Backbone, Parts};
use super::layers::{max_pool2d, BatchNorm2d, Conv2d, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-5;

/// Units per stage (stages 2, 3, 4).
const REPEATS: [usize; 3] = [4, 8, 4];

/// A ShuffleNet V2's output channels: the stem, stages 2–4, `conv5`
/// (torchvision's `stages_out_channels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// `stages_out_channels`.
    pub channels: [i64; 5],
}

impl Config {
    /// ×0.5.
    pub fn x0_5() -> Self {
        Config { channels: [24, 48, 96, 192, 1024] }
    }
    /// ×1.0.
    pub fn x1_0() -> Self {
        Config { channels: [24, 116, 232, 464, 1024] }
    }
    /// ×1.5.
    pub fn x1_5() -> Self {
        Config { channels: [24, 176, 352, 704, 1024] }
    }
    /// ×2.0.
    pub fn x2_0() -> Self {
        Config { channels: [24, 244, 488, 976, 2048] }
    }
}

/// A convolution (no bias) at `p.{conv}` and its batch norm at `p.{bn}`,
/// followed by a ReLU where `relu` is set.
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
    relu: bool,
}

impl ConvBn {
    fn new(
        p: &Params,
        (conv, bn): (usize, usize),
        (cin, cout): (i64, i64),
        k: i64,
        stride: i64,
        relu: bool,
    ) -> Result<Self> {
        // Every 3×3 convolution of a unit is depthwise; 1×1 ones are dense.
        let groups = if k == 3 { cin } else { 1 };
        let opts = ConvOpts { stride, padding: k / 2, groups, ..Default::default() };
        Ok(ConvBn {
            conv: Conv2d::new(&p.pp(conv), cin, cout, k, opts)?,
            bn: BatchNorm2d::new(&p.pp(bn), cout, BN_EPS)?,
            relu,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn.forward(&self.conv.forward(x)?)?;
        Ok(if self.relu { h.f_relu()? } else { h })
    }
}

/// Runs `layers` in order.
fn sequence(layers: &[ConvBn], x: &Tensor) -> Result<Tensor> {
    let mut h = x.shallow_clone();
    for l in layers {
        h = l.forward(&h)?;
    }
    Ok(h)
}

/// torchvision's `channel_shuffle(x, 2)`: `[B,C,H,W]` with channels (a₀…, b₀…) →
/// (a₀, b₀, a₁, b₁, …).
fn channel_shuffle(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.size4()?;
    Ok(x.f_view([b, 2, c / 2, h, w])?.f_transpose(1, 2)?.f_contiguous()?.f_view([b, c, h, w])?)
}

/// One ShuffleNet V2 unit (torchvision's `InvertedResidual`).
struct Unit {
    /// Empty for stride 1 (the first half passes through).
    branch1: Vec<ConvBn>,
    branch2: Vec<ConvBn>,
}

impl Unit {
    fn new(p: &Params, cin: i64, cout: i64, stride: i64) -> Result<Self> {
        let half = cout / 2;
        let mut branch1 = Vec::new();
        if stride > 1 {
            let b = p.pp("branch1");
            branch1.push(ConvBn::new(&b, (0, 1), (cin, cin), 3, stride, false)?);
            branch1.push(ConvBn::new(&b, (2, 3), (cin, half), 1, 1, true)?);
        }
        let b = p.pp("branch2");
        let first_in = if stride > 1 { cin } else { half };
        let branch2 = vec![
            ConvBn::new(&b, (0, 1), (first_in, half), 1, 1, true)?,
            ConvBn::new(&b, (3, 4), (half, half), 3, stride, false)?,
            ConvBn::new(&b, (5, 6), (half, half), 1, 1, true)?,
        ];
        Ok(Unit { branch1, branch2 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = if self.branch1.is_empty() {
            let halves = x.f_chunk(2, 1)?;
            Tensor::f_cat(&[&halves[0], &sequence(&self.branch2, &halves[1])?], 1)?
        } else {
            Tensor::f_cat(&[&sequence(&self.branch1, x)?, &sequence(&self.branch2, x)?], 1)?
        };
        channel_shuffle(&out)
    }
}

struct ShuffleNetV2Backbone {
    conv1: ConvBn,
    units: Vec<Unit>,
    conv5: ConvBn,
}

impl Backbone for ShuffleNetV2Backbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = max_pool2d(&self.conv1.forward(x)?, 3, 2, 1)?;
        for u in &self.units {
            h = u.forward(&h)?;
        }
        self.conv5.forward(&h)
    }
}

/// A ShuffleNet V2 with `num_classes` outputs: backbone `[B,3,224,224]` →
/// `[B,C,7,7]` with C = `config.channels[4]`, head `fc`.
pub fn shufflenet_v2(p: &Params, config: Config, num_classes: i64) -> Result<Parts> {
    let [stem, .., last] = config.channels;
    // The stem's 3×3 convolution is dense, unlike the units' 3×3 ones.
    let conv1 = ConvBn {
        conv: Conv2d::new(&p.pp("conv1").pp(0), 3, stem, 3, ConvOpts { stride: 2, padding: 1, ..Default::default() })?,
        bn: BatchNorm2d::new(&p.pp("conv1").pp(1), stem, BN_EPS)?,
        relu: true,
    };
    let mut units = Vec::new();
    let mut cin = stem;
    for (s, (&n, &cout)) in REPEATS.iter().zip(&config.channels[1..4]).enumerate() {
        let stage = p.pp(format!("stage{}", s + 2));
        for i in 0..n {
            units.push(Unit::new(&stage.pp(i), cin, cout, if i == 0 { 2 } else { 1 })?);
            cin = cout;
        }
    }
    let conv5 = ConvBn::new(&p.pp("conv5"), (0, 1), (cin, last), 1, 1, true)?;
    Ok(Parts {
        backbone: Box::new(ShuffleNetV2Backbone { conv1, units, conv5 }),
        head: Linear::new(&p.pp("fc"), last, num_classes)?,
        head_prefix: "fc",
        channels: last,
    })
}

/// ShuffleNet V2 ×0.5: backbone `[B,3,224,224]` → `[B,1024,7,7]`.
pub fn shufflenet_v2_x0_5(p: &Params, num_classes: i64) -> Result<Parts> {
    shufflenet_v2(p, Config::x0_5(), num_classes)
}
/// ShuffleNet V2 ×1.0: backbone `[B,3,224,224]` → `[B,1024,7,7]`.
pub fn shufflenet_v2_x1_0(p: &Params, num_classes: i64) -> Result<Parts> {
    shufflenet_v2(p, Config::x1_0(), num_classes)
}
/// ShuffleNet V2 ×1.5: backbone `[B,3,224,224]` → `[B,1024,7,7]`.
pub fn shufflenet_v2_x1_5(p: &Params, num_classes: i64) -> Result<Parts> {
    shufflenet_v2(p, Config::x1_5(), num_classes)
}
/// ShuffleNet V2 ×2.0: backbone `[B,3,224,224]` → `[B,2048,7,7]`.
pub fn shufflenet_v2_x2_0(p: &Params, num_classes: i64) -> Result<Parts> {
    shufflenet_v2(p, Config::x2_0(), num_classes)
}
