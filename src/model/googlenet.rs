//! GoogLeNet (Szegedy et al. 2015, "Going Deeper with Convolutions"), with the
//! layout and state-dict names of torchvision's `torchvision/models/googlenet.py`:
//! `conv1`…`conv3`, `inception{3a..5b}.branch{1..4}` (each a `BasicConv2d`:
//! `.conv` without bias, `.bn` with eps 1e-3, ReLU), `fc`.
//!
//! Two departures from a plain reading of the Python, both as torchvision's
//! pretrained model evaluates:
//! - **`transform_input` is always applied.** torchvision's `googlenet(weights=…)`
//!   sets `transform_input=True`: the ImageNet-normalised input is mapped back to
//!   the (x − 0.5)/0.5 scale the ported weights expect,
//!   x_c · (std_c/0.5) + (mean_c − 0.5)/0.5. The registry's `googlenet` is that
//!   model; [`googlenet_with`] builds one without it, for checkpoints trained with
//!   `transform_input=False`.
//! - **No auxiliary heads.** They only run in training; torchvision's pretrained
//!   file still holds `aux1.*` and `aux2.*`, which loading accepts and ignores
//!   ([`is_aux_key`], the registry's `derived` column).
//!
//! The 3×3 convolution of the "5×5" branch is torchvision's (it kept the bug of
//! the original port). Max pools round up (`ceil_mode=True`). The backbone ends
//! after `inception5b`: Z is `[B,1024,7,7]` for a 224×224 input.
use super::backbone::{Backbone, Parts};
use super::layers::{BatchNorm2d, Conv2d, ConvOpts, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-3;

/// Whether a state-dict key belongs to an auxiliary classifier (`aux1.*`,
/// `aux2.*`), which epic does not build: accepted in a checkpoint, not read.
pub fn is_aux_key(key: &str) -> bool {
    key.starts_with("aux1.") || key.starts_with("aux2.")
}

/// torchvision's `BasicConv2d`: conv (no bias) + batch norm + ReLU.
struct BasicConv {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl BasicConv {
    fn new(p: &Params, cin: i64, cout: i64, k: i64, stride: i64, padding: i64) -> Result<Self> {
        let opts = ConvOpts { stride, padding, ..Default::default() };
        Ok(BasicConv {
            conv: Conv2d::new(&p.pp("conv"), cin, cout, k, opts)?,
            bn: BatchNorm2d::new(&p.pp("bn"), cout, BN_EPS)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.bn.forward(&self.conv.forward(x)?)?.f_relu()?)
    }
}

/// Max pooling that rounds the output size up, as torchvision's `ceil_mode=True`.
fn max_pool_ceil(x: &Tensor, k: i64, stride: i64, padding: i64) -> Result<Tensor> {
    Ok(x.f_max_pool2d([k; 2], [stride; 2], [padding; 2], [1i64; 2], true)?)
}

/// An inception module: 1×1; 1×1 → 3×3; 1×1 → 3×3; 3×3 max pool → 1×1,
/// concatenated along channels.
struct Inception {
    branch1: BasicConv,
    branch2: [BasicConv; 2],
    branch3: [BasicConv; 2],
    branch4: BasicConv,
}

impl Inception {
    /// `c` = (in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool projection).
    fn new(p: &Params, c: (i64, i64, i64, i64, i64, i64, i64)) -> Result<Self> {
        let (cin, c1, c3r, c3, c5r, c5, pool) = c;
        Ok(Inception {
            branch1: BasicConv::new(&p.pp("branch1"), cin, c1, 1, 1, 0)?,
            branch2: [
                BasicConv::new(&p.pp("branch2").pp(0), cin, c3r, 1, 1, 0)?,
                BasicConv::new(&p.pp("branch2").pp(1), c3r, c3, 3, 1, 1)?,
            ],
            branch3: [
                BasicConv::new(&p.pp("branch3").pp(0), cin, c5r, 1, 1, 0)?,
                BasicConv::new(&p.pp("branch3").pp(1), c5r, c5, 3, 1, 1)?,
            ],
            branch4: BasicConv::new(&p.pp("branch4").pp(1), cin, pool, 1, 1, 0)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b1 = self.branch1.forward(x)?;
        let b2 = self.branch2[1].forward(&self.branch2[0].forward(x)?)?;
        let b3 = self.branch3[1].forward(&self.branch3[0].forward(x)?)?;
        let b4 = self.branch4.forward(&max_pool_ceil(x, 3, 1, 1)?)?;
        Ok(Tensor::f_cat(&[b1, b2, b3, b4], 1)?)
    }
}

struct GoogLeNetBackbone {
    transform: Option<(Tensor, Tensor)>,
    stem: [BasicConv; 3],
    /// Inception modules, each with whether a 3×3/2 max pool precedes it.
    blocks: Vec<(bool, Inception)>,
}

impl Backbone for GoogLeNetBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = match &self.transform {
            Some((scale, shift)) => x.f_mul(&scale.f_to_kind(x.kind())?)?.f_add(&shift.f_to_kind(x.kind())?)?,
            None => x.shallow_clone(),
        };
        h = max_pool_ceil(&self.stem[0].forward(&h)?, 3, 2, 0)?;
        h = self.stem[2].forward(&self.stem[1].forward(&h)?)?;
        h = max_pool_ceil(&h, 3, 2, 0)?;
        for (i, (pool, block)) in self.blocks.iter().enumerate() {
            if *pool {
                // maxpool3 is 3×3/2, maxpool4 (before inception5a) 2×2/2.
                h = if i == 7 { max_pool_ceil(&h, 2, 2, 0)? } else { max_pool_ceil(&h, 3, 2, 0)? };
            }
            h = block.forward(&h)?;
        }
        Ok(h)
    }
}

/// One inception block: its name, whether a max pool precedes it, and
/// (in, 1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool projection) channels.
type InceptionRow = (&'static str, bool, (i64, i64, i64, i64, i64, i64, i64));

/// GoogLeNet with `num_classes` outputs, with or without torchvision's
/// `transform_input`: backbone `[B,3,H,W]` → `[B,1024,h,w]` (7×7 for 224), head `fc`.
pub fn googlenet_with(p: &Params, num_classes: i64, transform_input: bool) -> Result<Parts> {
    let stem = [
        BasicConv::new(&p.pp("conv1"), 3, 64, 7, 2, 3)?,
        BasicConv::new(&p.pp("conv2"), 64, 64, 1, 1, 0)?,
        BasicConv::new(&p.pp("conv3"), 64, 192, 3, 1, 1)?,
    ];
    let table: [InceptionRow; 9] = [
        ("inception3a", false, (192, 64, 96, 128, 16, 32, 32)),
        ("inception3b", false, (256, 128, 128, 192, 32, 96, 64)),
        ("inception4a", true, (480, 192, 96, 208, 16, 48, 64)),
        ("inception4b", false, (512, 160, 112, 224, 24, 64, 64)),
        ("inception4c", false, (512, 128, 128, 256, 24, 64, 64)),
        ("inception4d", false, (512, 112, 144, 288, 32, 64, 64)),
        ("inception4e", false, (528, 256, 160, 320, 32, 128, 128)),
        ("inception5a", true, (832, 256, 160, 320, 32, 128, 128)),
        ("inception5b", false, (832, 384, 192, 384, 48, 128, 128)),
    ];
    let mut blocks = Vec::new();
    for (name, pool, c) in table {
        blocks.push((pool, Inception::new(&p.pp(name), c)?));
    }
    let transform = if transform_input { Some(super::layers::transform_input(p.device())?) } else { None };
    Ok(Parts {
        backbone: Box::new(GoogLeNetBackbone { transform, stem, blocks }),
        head: Linear::new(&p.pp("fc"), 1024, num_classes)?,
        head_prefix: "fc",
        channels: 1024,
    })
}

/// GoogLeNet as torchvision's pretrained model evaluates it (`transform_input`
/// on): backbone `[B,3,H,W]` → `[B,1024,h,w]`, head `fc`.
pub fn googlenet(p: &Params, num_classes: i64) -> Result<Parts> {
    googlenet_with(p, num_classes, true)
}
