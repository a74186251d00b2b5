//! DenseNet-121/161/169/201 (Huang et al. 2017, "Densely Connected Convolutional Networks"),
//! with the layout and state-dict names of torchvision's
//! `torchvision/models/densenet.py`: `features.conv0`, `features.norm0`,
//! `features.denseblock{b}.denselayer{l}.norm1`/`conv1`/`norm2`/`conv2`,
//! `features.transition{t}.norm`/`conv`, `features.norm5`, `classifier`.
//!
//! Bottleneck width 4 × the growth rate, batch norm eps 1e-5; DenseNet-121 grows
//! by 32 over blocks of (6, 12, 24, 16) layers from 64 initial channels,
//! DenseNet-169 over (6, 12, 32, 32), DenseNet-201 over (6, 12, 48, 32), and
//! DenseNet-161 by 48 over (6, 12, 36, 24) from 96. As in the reference code, the
//! ReLU after `features.norm5` belongs to the backbone: Z = relu(features(x)) is
//! `[B,C,7,7]` for a 224×224 input, C = 1024, 2208, 1664, 1920 for 121, 161, 169, 201.
//!
//! Checkpoints saved by old torchvision versions name the dense layers' modules
//! `norm.1`, `conv.2`, …; [`rename_legacy_key`] maps them to today's names when
//! the weights are loaded.
use super::backbone::{Backbone, Parts};
use super::layers::{avg_pool2d, max_pool2d, BatchNorm2d, Conv2d, ConvBn, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-5;

/// A DenseNet's growth rate, bottleneck factor, layers per block and stem width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub growth: i64,
    pub bn_size: i64,
    pub blocks: [usize; 4],
    pub init_features: i64,
}

impl Config {
    pub fn densenet121() -> Self {
        Config { growth: 32, bn_size: 4, blocks: [6, 12, 24, 16], init_features: 64 }
    }
    /// DenseNet-161: growth 48, 96 initial channels.
    pub fn densenet161() -> Self {
        Config { growth: 48, bn_size: 4, blocks: [6, 12, 36, 24], init_features: 96 }
    }
    /// DenseNet-169.
    pub fn densenet169() -> Self {
        Config { blocks: [6, 12, 32, 32], ..Config::densenet121() }
    }
    /// DenseNet-201.
    pub fn densenet201() -> Self {
        Config { blocks: [6, 12, 48, 32], ..Config::densenet121() }
    }

    #[cfg(test)]
    /// C, the channels of the feature map (each transition halves them).
    pub fn channels(&self) -> i64 {
        let mut c = self.init_features;
        for (i, &n) in self.blocks.iter().enumerate() {
            c += n as i64 * self.growth;
            if i + 1 < self.blocks.len() {
                c /= 2;
            }
        }
        c
    }
}

/// Maps an old torchvision DenseNet key to today's name, and leaves others alone.
///
/// Old checkpoints (such as the first `densenet121-*.pth` releases) name a dense
/// layer's parameters `…denselayerN.norm.1.weight` where today's modules are
/// `…denselayerN.norm1.weight`; likewise `relu.1`, `conv.2`. Only the segment
/// pair right after a `denselayer{N}` segment is joined.
pub fn rename_legacy_key(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    let is_layer =
        |s: &str| s.strip_prefix("denselayer").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    for i in 0..parts.len().saturating_sub(3) {
        if is_layer(parts[i]) && matches!(parts[i + 1], "norm" | "relu" | "conv") && matches!(parts[i + 2], "1" | "2") {
            let mut joined: Vec<String> = parts[..=i].iter().map(|s| s.to_string()).collect();
            joined.push(format!("{}{}", parts[i + 1], parts[i + 2]));
            joined.extend(parts[i + 3..].iter().map(|s| s.to_string()));
            return joined.join(".");
        }
    }
    key.to_string()
}

/// Batch norm, ReLU, 1×1 convolution to `bn_size · growth` channels, batch norm,
/// ReLU, 3×3 convolution to `growth` new channels.
struct DenseLayer {
    norm1: BatchNorm2d,
    /// conv1 with norm2 folded in.
    conv1: ConvBn,
    conv2: Conv2d,
}

impl DenseLayer {
    fn new(p: &Params, cin: i64, c: &Config) -> Result<Self> {
        let mid = c.bn_size * c.growth;
        Ok(DenseLayer {
            norm1: BatchNorm2d::new(&p.pp("norm1"), cin, BN_EPS)?,
            conv1: ConvBn::new(
                Conv2d::new(&p.pp("conv1"), cin, mid, 1, ConvOpts::default())?,
                BatchNorm2d::new(&p.pp("norm2"), mid, BN_EPS)?,
            ),
            conv2: Conv2d::new(&p.pp("conv2"), mid, c.growth, 3, ConvOpts { padding: 1, ..Default::default() })?,
        })
    }

    /// x `[B,C,H,W]` → the new features `[B,growth,H,W]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward(x)?.f_relu_()?)?.f_relu_()?;
        self.conv2.forward(&h)
    }
}

/// Batch norm, ReLU, 1×1 convolution halving the channels, 2×2 average pooling.
struct Transition {
    norm: BatchNorm2d,
    conv: Conv2d,
}

impl Transition {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv.forward(&self.norm.forward(x)?.f_relu_()?)?;
        avg_pool2d(&h, 2, 2)
    }
}

struct DenseNetBackbone {
    /// conv0 with norm0 folded in.
    stem: ConvBn,
    /// Each dense block's layers, then the transition after it (none after the last).
    blocks: Vec<(Vec<DenseLayer>, Option<Transition>)>,
    norm5: BatchNorm2d,
}

impl Backbone for DenseNetBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.stem.forward(x)?.f_relu_()?;
        let mut h = max_pool2d(&h, 3, 2, 1)?;
        for (layers, transition) in &self.blocks {
            for layer in layers {
                let new = layer.forward(&h)?;
                h = Tensor::f_cat(&[&h, &new], 1)?;
            }
            if let Some(t) = transition {
                h = t.forward(&h)?;
            }
        }
        Ok(self.norm5.forward(&h)?.f_relu_()?)
    }

    fn channels_last(&self) -> bool {
        true
    }
}

/// A DenseNet with `num_classes` outputs: backbone `[B,3,224,224]` → `[B,C,7,7]` with
/// C = `config.channels()`, head `classifier`.
pub fn densenet(p: &Params, config: Config, num_classes: i64) -> Result<Parts> {
    let f = p.pp("features");
    let conv0 = Conv2d::new(
        &f.pp("conv0"),
        3,
        config.init_features,
        7,
        ConvOpts { stride: 2, padding: 3, ..Default::default() },
    )?;
    let stem = ConvBn::new(conv0, BatchNorm2d::new(&f.pp("norm0"), config.init_features, BN_EPS)?);
    let mut c = config.init_features;
    let mut blocks = Vec::new();
    for (b, &n) in config.blocks.iter().enumerate() {
        let block = f.pp(format!("denseblock{}", b + 1));
        let mut layers = Vec::with_capacity(n);
        for l in 0..n {
            layers.push(DenseLayer::new(&block.pp(format!("denselayer{}", l + 1)), c, &config)?);
            c += config.growth;
        }
        let transition = if b + 1 < config.blocks.len() {
            let t = f.pp(format!("transition{}", b + 1));
            let cout = c / 2;
            let transition = Transition {
                norm: BatchNorm2d::new(&t.pp("norm"), c, BN_EPS)?,
                conv: Conv2d::new(&t.pp("conv"), c, cout, 1, ConvOpts::default())?,
            };
            c = cout;
            Some(transition)
        } else {
            None
        };
        blocks.push((layers, transition));
    }
    let norm5 = BatchNorm2d::new(&f.pp("norm5"), c, BN_EPS)?;
    Ok(Parts {
        backbone: Box::new(DenseNetBackbone { stem, blocks, norm5 }),
        head: Linear::new(&p.pp("classifier"), c, num_classes)?,
        head_prefix: "classifier",
        channels: c,
    })
}

/// DenseNet-121: backbone `[B,3,224,224]` → `[B,1024,7,7]`.
pub fn densenet121(p: &Params, num_classes: i64) -> Result<Parts> {
    densenet(p, Config::densenet121(), num_classes)
}

/// DenseNet-161: backbone `[B,3,224,224]` → `[B,2208,7,7]`.
pub fn densenet161(p: &Params, num_classes: i64) -> Result<Parts> {
    densenet(p, Config::densenet161(), num_classes)
}

/// DenseNet-169: backbone `[B,3,224,224]` → `[B,1664,7,7]`.
pub fn densenet169(p: &Params, num_classes: i64) -> Result<Parts> {
    densenet(p, Config::densenet169(), num_classes)
}

/// DenseNet-201: backbone `[B,3,224,224]` → `[B,1920,7,7]`.
pub fn densenet201(p: &Params, num_classes: i64) -> Result<Parts> {
    densenet(p, Config::densenet201(), num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_dense_layer_keys_are_joined_and_others_kept() {
        let cases = [
            ("features.denseblock1.denselayer1.norm.1.weight", "features.denseblock1.denselayer1.norm1.weight"),
            ("features.denseblock4.denselayer16.conv.2.weight", "features.denseblock4.denselayer16.conv2.weight"),
            (
                "features.denseblock2.denselayer3.norm.2.running_var",
                "features.denseblock2.denselayer3.norm2.running_var",
            ),
            ("features.denseblock1.denselayer1.norm1.weight", "features.denseblock1.denselayer1.norm1.weight"),
            ("features.transition1.norm.weight", "features.transition1.norm.weight"),
            ("features.norm5.bias", "features.norm5.bias"),
            ("classifier.weight", "classifier.weight"),
            ("denselayer.norm.1.weight", "denselayer.norm.1.weight"),
        ];
        for (old, new) in cases {
            assert_eq!(rename_legacy_key(old), new, "{old}");
        }
    }

    #[test]
    fn densenets_have_torchvision_channels() {
        assert_eq!(Config::densenet121().channels(), 1024);
        assert_eq!(Config::densenet161().channels(), 2208);
        assert_eq!(Config::densenet169().channels(), 1664);
        assert_eq!(Config::densenet201().channels(), 1920);
    }
}
