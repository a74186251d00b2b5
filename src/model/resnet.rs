//! ResNet-18/34/50/101/152 (He et al. 2016, "Deep Residual Learning for Image
//! Recognition"), ResNeXt-50 32×4d, ResNeXt-101 32×8d and 64×4d (Xie et al. 2017,
//! "Aggregated Residual Transformations for Deep Neural Networks") and Wide
//! ResNet-50-2/101-2 (Zagoruyko & Komodakis 2016, "Wide Residual Networks"), with
//! the layout and state-dict names of torchvision's `torchvision/models/resnet.py`:
//! `conv1`, `bn1`, `layer{1..4}.{i}.conv1`/`bn1`/…, `layer{k}.0.downsample.0`/`.1`,
//! `fc`.
//!
//! Like torchvision (ResNet "v1.5"), a bottleneck block strides in its 3×3
//! convolution, not its first 1×1. ResNeXt and Wide ResNet change only the
//! bottleneck's inner width, `planes · width_per_group / 64 · groups`, and split its
//! 3×3 convolution into `groups` groups; the block's output stays 4 × planes.
//! Batch norm eps is 1e-5. The backbone is everything before `avgpool`: Z is
//! `[B,512,7,7]` (ResNet-18/34) or `[B,2048,7,7]` (every bottleneck network) for a
//! 224×224 input.
//!
//! Inputs are ImageNet-normalised with torchvision's v1 preset (resize 256, crop
//! 224); its `IMAGENET1K_V2` weights were evaluated with resize 232, which
//! `Network::set_sizes` can select.
use super::backbone::{Backbone, Parts};
use super::layers::{max_pool2d, BatchNorm2d, Conv2d, ConvBn, ConvOpts, Linear};
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

/// A ResNet's block type, the number of blocks in each of its four stages, and
/// the bottleneck's grouping (torchvision's `groups`, `width_per_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The residual block.
    pub block: Block,
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Groups of the bottleneck's 3×3 convolution (1 but for ResNeXt).
    pub groups: i64,
    /// Channels per group of the bottleneck at 64 planes (64; ResNeXt 4 or 8,
    /// Wide ResNet 128).
    pub width_per_group: i64,
}

impl Config {
    pub fn resnet18() -> Self {
        Config { block: Block::Basic, layers: [2, 2, 2, 2], groups: 1, width_per_group: 64 }
    }
    pub fn resnet34() -> Self {
        Config { block: Block::Basic, layers: [3, 4, 6, 3], groups: 1, width_per_group: 64 }
    }
    pub fn resnet50() -> Self {
        Config { block: Block::Bottleneck, layers: [3, 4, 6, 3], groups: 1, width_per_group: 64 }
    }
    pub fn resnet101() -> Self {
        Config { block: Block::Bottleneck, layers: [3, 4, 23, 3], groups: 1, width_per_group: 64 }
    }
    pub fn resnet152() -> Self {
        Config { block: Block::Bottleneck, layers: [3, 8, 36, 3], groups: 1, width_per_group: 64 }
    }
    /// ResNeXt-50 32×4d: ResNet-50's stages, 32 groups of 4 channels at 64 planes.
    pub fn resnext50_32x4d() -> Self {
        Config { groups: 32, width_per_group: 4, ..Config::resnet50() }
    }
    /// ResNeXt-101 32×8d: ResNet-101's stages, 32 groups of 8 channels.
    pub fn resnext101_32x8d() -> Self {
        Config { groups: 32, width_per_group: 8, ..Config::resnet101() }
    }
    /// ResNeXt-101 64×4d: ResNet-101's stages, 64 groups of 4 channels.
    pub fn resnext101_64x4d() -> Self {
        Config { groups: 64, width_per_group: 4, ..Config::resnet101() }
    }
    /// Wide ResNet-50-2: ResNet-50 with bottlenecks twice as wide inside.
    pub fn wide_resnet50_2() -> Self {
        Config { width_per_group: 128, ..Config::resnet50() }
    }
    /// Wide ResNet-101-2: ResNet-101 with bottlenecks twice as wide inside.
    pub fn wide_resnet101_2() -> Self {
        Config { width_per_group: 128, ..Config::resnet101() }
    }

    /// C, the channels of the feature map: 512 × the block's expansion.
    pub fn channels(&self) -> i64 {
        512 * self.block.expansion()
    }
}

/// A convolution (`groups` groups) + batch norm pair named `{conv}` / `{bn}` under `p`.
fn conv_bn(
    p: &Params,
    names: (&str, &str),
    (cin, cout): (i64, i64),
    k: i64,
    stride: i64,
    groups: i64,
) -> Result<ConvBn> {
    let opts = ConvOpts { stride, padding: k / 2, groups, ..Default::default() };
    Ok(ConvBn::new(Conv2d::new(&p.pp(names.0), cin, cout, k, opts)?, BatchNorm2d::new(&p.pp(names.1), cout, BN_EPS)?))
}

/// One residual block: conv/bn pairs with ReLUs between them, plus the shortcut
/// (`downsample.0` 1×1 conv, `downsample.1` bn) where the shape changes.
struct Residual {
    /// (conv, bn) in order; ReLU follows every pair but the last.
    path: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Residual {
    fn new(p: &Params, config: &Config, cin: i64, planes: i64, stride: i64) -> Result<Self> {
        let cout = planes * config.block.expansion();
        let path = match config.block {
            Block::Basic => vec![
                conv_bn(p, ("conv1", "bn1"), (cin, planes), 3, stride, 1)?,
                conv_bn(p, ("conv2", "bn2"), (planes, planes), 3, 1, 1)?,
            ],
            Block::Bottleneck => {
                // torchvision: int(planes * (base_width / 64.0)) * groups.
                let width = planes * config.width_per_group / 64 * config.groups;
                vec![
                    conv_bn(p, ("conv1", "bn1"), (cin, width), 1, 1, 1)?,
                    conv_bn(p, ("conv2", "bn2"), (width, width), 3, stride, config.groups)?,
                    conv_bn(p, ("conv3", "bn3"), (width, cout), 1, 1, 1)?,
                ]
            }
        };
        let downsample = if stride != 1 || cin != cout {
            Some(conv_bn(&p.pp("downsample"), ("0", "1"), (cin, cout), 1, stride, 1)?)
        } else {
            None
        };
        Ok(Residual { path, downsample })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for (i, conv_bn) in self.path.iter().enumerate() {
            h = conv_bn.forward(&h)?;
            if i + 1 < self.path.len() {
                h = h.f_relu_()?;
            }
        }
        let shortcut = match &self.downsample {
            Some(conv_bn) => conv_bn.forward(x)?,
            None => x.shallow_clone(),
        };
        // In place, as torchvision's ReLU(inplace=True): no allocation per block.
        Ok(h.f_add_(&shortcut)?.f_relu_()?)
    }
}

struct ResNetBackbone {
    stem: ConvBn,
    blocks: Vec<Residual>,
}

impl Backbone for ResNetBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.stem.forward(x)?.f_relu_()?;
        let mut h = max_pool2d(&h, 3, 2, 1)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        Ok(h)
    }

    fn channels_last(&self) -> bool {
        true
    }
}

/// A ResNet with `num_classes` outputs: backbone `[B,3,224,224]` → `[B,C,7,7]` with
/// C = `config.channels()`, head `fc`.
pub fn resnet(p: &Params, config: Config, num_classes: i64) -> Result<Parts> {
    let conv1 = Conv2d::new(&p.pp("conv1"), 3, 64, 7, ConvOpts { stride: 2, padding: 3, ..Default::default() })?;
    let stem = ConvBn::new(conv1, BatchNorm2d::new(&p.pp("bn1"), 64, BN_EPS)?);
    let mut blocks = Vec::new();
    let mut cin = 64;
    for (stage, &repeats) in config.layers.iter().enumerate() {
        let planes = 64 << stage;
        let stride = if stage == 0 { 1 } else { 2 };
        let layer = p.pp(format!("layer{}", stage + 1));
        for i in 0..repeats {
            let s = if i == 0 { stride } else { 1 };
            blocks.push(Residual::new(&layer.pp(i), &config, cin, planes, s)?);
            cin = planes * config.block.expansion();
        }
    }
    let channels = config.channels();
    Ok(Parts {
        backbone: Box::new(ResNetBackbone { stem, blocks }),
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

/// ResNeXt-50 32×4d: backbone `[B,3,224,224]` → `[B,2048,7,7]`.
pub fn resnext50_32x4d(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnext50_32x4d(), num_classes)
}
/// ResNeXt-101 32×8d: backbone `[B,3,224,224]` → `[B,2048,7,7]`.
pub fn resnext101_32x8d(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnext101_32x8d(), num_classes)
}
/// ResNeXt-101 64×4d: backbone `[B,3,224,224]` → `[B,2048,7,7]`.
pub fn resnext101_64x4d(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::resnext101_64x4d(), num_classes)
}
/// Wide ResNet-50-2: backbone `[B,3,224,224]` → `[B,2048,7,7]`.
pub fn wide_resnet50_2(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::wide_resnet50_2(), num_classes)
}
/// Wide ResNet-101-2: backbone `[B,3,224,224]` → `[B,2048,7,7]`.
pub fn wide_resnet101_2(p: &Params, num_classes: i64) -> Result<Parts> {
    resnet(p, Config::wide_resnet101_2(), num_classes)
}
