//! RegNetX and RegNetY (Radosavovic et al. 2020, "Designing Network Design
//! Spaces"), with the layout and state-dict names of torchvision's
//! `torchvision/models/regnet.py`: `stem.0`/`stem.1`,
//! `trunk_output.block{s}.block{s}-{i}.f.{a,b,se,c}` (1×1, grouped 3×3,
//! squeeze-excitation `fc1`/`fc2` for Y, 1×1) and `.proj` (the shortcut's 1×1
//! conv/bn where the shape changes), `fc`.
//!
//! torchvision derives each variant's stage widths, depths and group widths from
//! (depth, w₀, w_a, w_m, group width) in f32 arithmetic; the presets here hold its
//! results (the bottleneck multiplier is 1 for every variant), which the tests
//! check against torchvision's state-dict shapes. Activations are ReLU, batch norm
//! eps is 1e-5, and RegNetY's squeeze-excitation has round(C_in/4) channels, C_in
//! being the block's input width. The backbone is `stem` + `trunk_output`: Z is
//! [B,C,⌈H/32⌉,⌈W/32⌉], C the last stage's width.
use super::backbone::{Backbone, Parts};
use super::layers::{BatchNorm2d, Conv2d, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-5;
const STEM_WIDTH: i64 = 32;

/// A RegNet's four stages (depth, width, group width each) and whether its blocks
/// have squeeze-excitation (RegNetY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Blocks per stage.
    pub depths: [i64; 4],
    /// Output channels per stage.
    pub widths: [i64; 4],
    /// Channels per group of the 3×3 convolution, per stage.
    pub group_widths: [i64; 4],
    /// Squeeze-excitation with ratio 1/4 (RegNetY).
    pub se: bool,
}

const fn x(depths: [i64; 4], widths: [i64; 4], group_widths: [i64; 4]) -> Config {
    Config { depths, widths, group_widths, se: false }
}

const fn y(depths: [i64; 4], widths: [i64; 4], group_width: i64) -> Config {
    Config { depths, widths, group_widths: [group_width; 4], se: true }
}

impl Config {
    /// RegNetX-400MF.
    pub const X_400MF: Config = x([1, 2, 7, 12], [32, 64, 160, 400], [16; 4]);
    /// RegNetX-800MF.
    pub const X_800MF: Config = x([1, 3, 7, 5], [64, 128, 288, 672], [16; 4]);
    /// RegNetX-1.6GF.
    pub const X_1_6GF: Config = x([2, 4, 10, 2], [72, 168, 408, 912], [24; 4]);
    /// RegNetX-3.2GF.
    pub const X_3_2GF: Config = x([2, 6, 15, 2], [96, 192, 432, 1008], [48; 4]);
    /// RegNetX-8GF (the first stage's group width is capped at its width, 80).
    pub const X_8GF: Config = x([2, 5, 15, 1], [80, 240, 720, 1920], [80, 120, 120, 120]);
    /// RegNetX-16GF.
    pub const X_16GF: Config = x([2, 6, 13, 1], [256, 512, 896, 2048], [128; 4]);
    /// RegNetX-32GF.
    pub const X_32GF: Config = x([2, 7, 13, 1], [336, 672, 1344, 2520], [168; 4]);
    /// RegNetY-400MF.
    pub const Y_400MF: Config = y([1, 3, 6, 6], [48, 104, 208, 440], 8);
    /// RegNetY-800MF.
    pub const Y_800MF: Config = y([1, 3, 8, 2], [64, 144, 320, 784], 16);
    /// RegNetY-1.6GF.
    pub const Y_1_6GF: Config = y([2, 6, 17, 2], [48, 120, 336, 888], 24);
    /// RegNetY-3.2GF.
    pub const Y_3_2GF: Config = y([2, 5, 13, 1], [72, 216, 576, 1512], 24);
    /// RegNetY-8GF.
    pub const Y_8GF: Config = y([2, 4, 10, 1], [224, 448, 896, 2016], 56);
    /// RegNetY-16GF.
    pub const Y_16GF: Config = y([2, 4, 11, 1], [224, 448, 1232, 3024], 112);
    /// RegNetY-32GF.
    pub const Y_32GF: Config = y([2, 5, 12, 1], [232, 696, 1392, 3712], 232);
    /// RegNetY-128GF.
    pub const Y_128GF: Config = y([2, 7, 17, 1], [528, 1056, 2904, 7392], 264);

    /// C, the channels of the feature map (the last stage's width).
    pub fn channels(&self) -> i64 {
        self.widths[3]
    }
}

/// Conv (no bias) + batch norm (+ ReLU): torchvision's `Conv2dNormActivation`,
/// `.0` conv, `.1` bn.
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
    relu: bool,
}

impl ConvBn {
    fn new(p: &Params, cin: i64, cout: i64, k: i64, stride: i64, groups: i64, relu: bool) -> Result<Self> {
        let opts = ConvOpts { stride, padding: (k - 1) / 2, groups, bias: false };
        Ok(ConvBn {
            conv: Conv2d::new(&p.pp(0), cin, cout, k, opts)?,
            bn: BatchNorm2d::new(&p.pp(1), cout, BN_EPS)?,
            relu,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn.forward(&self.conv.forward(x)?)?;
        Ok(if self.relu { h.f_relu()? } else { h })
    }
}

/// Squeeze-excitation: x · σ(fc2(ReLU(fc1(mean_hw x)))), 1×1 convs with bias.
struct SqueezeExcitation {
    fc1: Conv2d,
    fc2: Conv2d,
}

impl SqueezeExcitation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.f_mean_dim([2i64, 3].as_slice(), true, x.kind())?;
        let s = self.fc2.forward(&self.fc1.forward(&s)?.f_relu()?)?.f_sigmoid()?;
        Ok(x.f_mul(&s)?)
    }
}

/// ReLU(shortcut(x) + c(se(b(a(x))))), torchvision's `ResBottleneckBlock`.
struct ResBottleneck {
    a: ConvBn,
    b: ConvBn,
    se: Option<SqueezeExcitation>,
    c: ConvBn,
    proj: Option<ConvBn>,
}

impl ResBottleneck {
    fn new(p: &Params, cin: i64, cout: i64, stride: i64, group_width: i64, se: bool) -> Result<Self> {
        let f = p.pp("f");
        let groups = cout / group_width;
        let se = if se {
            let squeeze = (0.25 * cin as f64).round() as i64;
            let opts = ConvOpts { bias: true, ..Default::default() };
            let s = f.pp("se");
            Some(SqueezeExcitation {
                fc1: Conv2d::new(&s.pp("fc1"), cout, squeeze, 1, opts)?,
                fc2: Conv2d::new(&s.pp("fc2"), squeeze, cout, 1, opts)?,
            })
        } else {
            None
        };
        let proj = if cin != cout || stride != 1 {
            Some(ConvBn::new(&p.pp("proj"), cin, cout, 1, stride, 1, false)?)
        } else {
            None
        };
        Ok(ResBottleneck {
            a: ConvBn::new(&f.pp("a"), cin, cout, 1, 1, 1, true)?,
            b: ConvBn::new(&f.pp("b"), cout, cout, 3, stride, groups, true)?,
            se,
            c: ConvBn::new(&f.pp("c"), cout, cout, 1, 1, 1, false)?,
            proj,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.b.forward(&self.a.forward(x)?)?;
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        let h = self.c.forward(&h)?;
        let shortcut = match &self.proj {
            Some(proj) => proj.forward(x)?,
            None => x.shallow_clone(),
        };
        Ok(shortcut.f_add(&h)?.f_relu()?)
    }
}

struct RegNetBackbone {
    stem: ConvBn,
    blocks: Vec<ResBottleneck>,
}

impl Backbone for RegNetBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.stem.forward(x)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        Ok(h)
    }
}

/// A RegNet with `num_classes` outputs: backbone `[B,3,H,W]` → [B,C,⌈H/32⌉,⌈W/32⌉]
/// with C = `config.channels()`, head `fc`.
pub fn regnet(p: &Params, config: &Config, num_classes: i64) -> Result<Parts> {
    let stem = ConvBn::new(&p.pp("stem"), 3, STEM_WIDTH, 3, 2, 1, true)?;
    let trunk = p.pp("trunk_output");
    let mut blocks = Vec::new();
    let mut cin = STEM_WIDTH;
    for s in 0..4 {
        let name = format!("block{}", s + 1);
        let stage = trunk.pp(&name);
        for i in 0..config.depths[s] {
            let stride = if i == 0 { 2 } else { 1 };
            let bp = stage.pp(format!("{name}-{i}"));
            blocks.push(ResBottleneck::new(&bp, cin, config.widths[s], stride, config.group_widths[s], config.se)?);
            cin = config.widths[s];
        }
    }
    let channels = config.channels();
    Ok(Parts {
        backbone: Box::new(RegNetBackbone { stem, blocks }),
        head: Linear::new(&p.pp("fc"), channels, num_classes)?,
        head_prefix: "fc",
        channels,
    })
}

macro_rules! variants {
    ($($name:ident => $config:ident, $c:literal;)*) => {$(
        #[doc = concat!("torchvision's `", stringify!($name), "`: Z [B,", stringify!($c), ",h,w].")]
        pub fn $name(p: &Params, num_classes: i64) -> Result<Parts> {
            regnet(p, &Config::$config, num_classes)
        }
    )*};
}

variants! {
    regnet_x_400mf => X_400MF, 400;
    regnet_x_800mf => X_800MF, 672;
    regnet_x_1_6gf => X_1_6GF, 912;
    regnet_x_3_2gf => X_3_2GF, 1008;
    regnet_x_8gf => X_8GF, 1920;
    regnet_x_16gf => X_16GF, 2048;
    regnet_x_32gf => X_32GF, 2520;
    regnet_y_400mf => Y_400MF, 440;
    regnet_y_800mf => Y_800MF, 784;
    regnet_y_1_6gf => Y_1_6GF, 888;
    regnet_y_3_2gf => Y_3_2GF, 1512;
    regnet_y_8gf => Y_8GF, 2016;
    regnet_y_16gf => Y_16GF, 3024;
    regnet_y_32gf => Y_32GF, 3712;
    regnet_y_128gf => Y_128GF, 7392;
}
