//! ResNet-18/34/50/101/152 (He et al. 2016, "Deep Residual Learning for Image
//! Recognition"), with the layout and state-dict names of torchvision's
//! `torchvision/models/resnet.py`: `conv1`, `bn1`, `layer{1..4}.{i}.conv1`/`bn1`/…,
//! `layer{k}.0.downsample.0`/`.1`, `fc`.
//!
//! Like torchvision (ResNet "v1.5"), a bottleneck block strides in its 3×3
//! convolution, not its first 1×1. Batch norm eps is 1e-5. The backbone is
//! everything before `avgpool`: Z is `[B,512,7,7]` (ResNet-18/34) or `[B,2048,7,7]`
//! (ResNet-50/101/152) for a 224×224 input.
//!
//! Inputs are ImageNet-normalised with torchvision's v1 preset (resize 256, crop
//! 224); its `IMAGENET1K_V2` weights were evaluated with resize 232, which
//! `Network::set_sizes` can select.
use super::backbone::{Backbone, Parts};
use super::layers::{max_pool2d, BatchNorm2d, Conv2d, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-5;

/// Which residual block a ResNet stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Two 3×3 convolutions; output channels = planes.
    Basic,
    /// 1×1 reduce, 3×3, 1×1 expand; output channels = 4 × planes.
    Bottleneck,
}

impl Block {
    fn expansion(self) -> i64 {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// A ResNet's block type and the number of blocks in each of its four stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub block: Block,
    pub layers: [usize; 4],
}

impl Config {
    pub fn resnet18() -> Self {
        Config { block: Block::Basic, layers: [2, 2, 2, 2] }
    }
    pub fn resnet34() -> Self {
        Config { block: Block::Basic, layers: [3, 4, 6, 3] }
    }
    pub fn resnet50() -> Self {
        Config { block: Block::Bottleneck, layers: [3, 4, 6, 3] }
    }
    pub fn resnet101() -> Self {
        Config { block: Block::Bottleneck, layers: [3, 4, 23, 3] }
    }
    pub fn resnet152() -> Self {
        Config { block: Block::Bottleneck, layers: [3, 8, 36, 3] }
    }

    /// C, the channels of the feature map: 512 × the block's expansion.
    pub fn channels(&self) -> i64 {
        512 * self.block.expansion()
    }
}

/// A convolution + batch norm pair named `{conv}` / `{bn}` under `p`.
fn conv_bn(p: &Params, names: (&str, &str), cin: i64, cout: i64, k: i64, stride: i64) -> Result<(Conv2d, BatchNorm2d)> {
    let opts = ConvOpts { stride, padding: k / 2, ..Default::default() };
    Ok((Conv2d::new(&p.pp(names.0), cin, cout, k, opts)?, BatchNorm2d::new(&p.pp(names.1), cout, BN_EPS)?))
}

/// One residual block: conv/bn pairs with ReLUs between them, plus the shortcut
/// (`downsample.0` 1×1 conv, `downsample.1` bn) where the shape changes.
struct Residual {
    /// (conv, bn) in order; ReLU follows every pair but the last.
    path: Vec<(Conv2d, BatchNorm2d)>,
    downsample: Option<(Conv2d, BatchNorm2d)>,
}

impl Residual {
    fn new(p: &Params, block: Block, cin: i64, planes: i64, stride: i64) -> Result<Self> {
        let cout = planes * block.expansion();
        let path = match block {
            Block::Basic => vec![
                conv_bn(p, ("conv1", "bn1"), cin, planes, 3, stride)?,
                conv_bn(p, ("conv2", "bn2"), planes, planes, 3, 1)?,
            ],
            Block::Bottleneck => vec![
                conv_bn(p, ("conv1", "bn1"), cin, planes, 1, 1)?,
                conv_bn(p, ("conv2", "bn2"), planes, planes, 3, stride)?,
                conv_bn(p, ("conv3", "bn3"), planes, cout, 1, 1)?,
            ],
        };
        let downsample = if stride != 1 || cin != cout {
            Some(conv_bn(&p.pp("downsample"), ("0", "1"), cin, cout, 1, stride)?)
        } else {
            None
        };
        Ok(Residual { path, downsample })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for (i, (conv, bn)) in self.path.iter().enumerate() {
            h = bn.forward(&conv.forward(&h)?)?;
            if i + 1 < self.path.len() {
                h = h.f_relu()?;
            }
        }
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward(&conv.forward(x)?)?,
            None => x.shallow_clone(),
        };
        Ok(h.f_add(&shortcut)?.f_relu()?)
    }
}

struct ResNetBackbone {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    blocks: Vec<Residual>,
}

impl Backbone for ResNetBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn1.forward(&self.conv1.forward(x)?)?.f_relu()?;
        let mut h = max_pool2d(&h, 3, 2, 1)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        Ok(h)
    }
}

/// A ResNet with `num_classes` outputs: backbone `[B,3,224,224]` → `[B,C,7,7]` with
/// C = `config.channels()`, head `fc`.
pub fn resnet(p: &Params, config: Config, num_classes: i64) -> Result<Parts> {
    let conv1 = Conv2d::new(&p.pp("conv1"), 3, 64, 7, ConvOpts { stride: 2, padding: 3, ..Default::default() })?;
    let bn1 = BatchNorm2d::new(&p.pp("bn1"), 64, BN_EPS)?;
    let mut blocks = Vec::new();
    let mut cin = 64;
    for (stage, &repeats) in config.layers.iter().enumerate() {
        let planes = 64 << stage;
        let stride = if stage == 0 { 1 } else { 2 };
        let layer = p.pp(format!("layer{}", stage + 1));
        for i in 0..repeats {
            let s = if i == 0 { stride } else { 1 };
            blocks.push(Residual::new(&layer.pp(i), config.block, cin, planes, s)?);
            cin = planes * config.block.expansion();
        }
    }
    let channels = config.channels();
    Ok(Parts {
        backbone: Box::new(ResNetBackbone { conv1, bn1, blocks }),
        head: Linear::new(&p.pp("fc"), channels, num_classes)?,
        head_prefix: "fc",
        channels,
    })
}

pub fn resnet18(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnet18(), num_classes)
}
pub fn resnet34(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnet34(), num_classes)
}
pub fn resnet50(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnet50(), num_classes)
}
pub fn resnet101(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnet101(), num_classes)
}
pub fn resnet152(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnet152(), num_classes)
}
