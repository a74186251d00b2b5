//! Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for
//! Computer Vision"), with the layout and state-dict names of torchvision's
//! `torchvision/models/inception.py`: `Conv2d_1a_3x3`…`Conv2d_4a_3x3`,
//! `Mixed_{5b..7c}.branch*` (each a `BasicConv2d`: `.conv` without bias, `.bn`
//! with eps 1e-3, ReLU; factorised 1×7/7×1 and 1×3/3×1 kernels), `fc`.
//!
//! As torchvision's pretrained model evaluates it:
//! - **`transform_input` is always applied** (`inception_v3(weights=…)` sets it):
//!   the ImageNet-normalised input becomes x_c · (std_c/0.5) + (mean_c − 0.5)/0.5,
//!   the scale of the ported Google weights. [`inception_v3_with`] builds the
//!   network without it.
//! - **No auxiliary classifier.** `AuxLogits.*` in a checkpoint (torchvision's
//!   pretrained file has them) are accepted and ignored ([`is_aux_key`], the
//!   registry's `derived` column).
//!
//! The input must be at least 75×75; the weights were evaluated at 299×299,
//! where Z (the output of `Mixed_7c`, before `avgpool`) is `[B,2048,8,8]`.
use super::backbone::{Backbone, Parts};
use super::layers::{max_pool2d, BatchNorm2d, Linear};
use super::params::Params;
use super::Result;
use tch::Tensor;

const BN_EPS: f64 = 1e-3;

/// Whether a state-dict key belongs to the auxiliary classifier (`AuxLogits.*`),
/// which epic does not build: accepted in a checkpoint, not read.
pub fn is_aux_key(key: &str) -> bool {
    key.starts_with("AuxLogits.")
}

/// torchvision's `BasicConv2d` with a kh×kw kernel: conv (no bias) + batch norm + ReLU.
struct BasicConv {
    weight: Tensor,
    stride: i64,
    padding: [i64; 2],
    bn: BatchNorm2d,
}

impl BasicConv {
    /// A `k.0`×`k.1` convolution with `stride` and zero padding `pad` (rows, columns).
    fn new(p: &Params, cin: i64, cout: i64, k: (i64, i64), stride: i64, pad: (i64, i64)) -> Result<Self> {
        Ok(BasicConv {
            weight: p.pp("conv").tensor("weight", &[cout, cin, k.0, k.1])?,
            stride,
            padding: [pad.0, pad.1],
            bn: BatchNorm2d::new(&p.pp("bn"), cout, BN_EPS)?,
        })
    }

    /// A square `k`×`k` convolution.
    fn square(p: &Params, cin: i64, cout: i64, k: i64, stride: i64, pad: i64) -> Result<Self> {
        Self::new(p, cin, cout, (k, k), stride, (pad, pad))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = x.f_conv2d(&self.weight, None::<&Tensor>, [self.stride; 2], self.padding, [1i64; 2], 1)?;
        Ok(self.bn.forward(&h)?.f_relu()?)
    }
}

/// A chain of convolutions, applied in order.
fn chain(convs: &[BasicConv], x: &Tensor) -> Result<Tensor> {
    let mut h = x.shallow_clone();
    for c in convs {
        h = c.forward(&h)?;
    }
    Ok(h)
}

/// 3×3 average pooling, stride 1, padding 1 counted (F.avg_pool2d's default).
fn avg_pool_3x3_same(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_avg_pool2d([3i64; 2], [1i64; 2], [1i64; 2], false, true, None)?)
}

/// The five kinds of mixed block. Built once per network, so the variants'
/// different sizes cost nothing worth boxing.
#[allow(clippy::large_enum_variant)]
enum Mixed {
    /// 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg pool→1×1.
    A { b1: BasicConv, b5: Vec<BasicConv>, b3: Vec<BasicConv>, pool: BasicConv },
    /// Grid reduction: 3×3/2 | 1×1→3×3→3×3/2 | max pool 3×3/2.
    B { b3: BasicConv, b3dbl: Vec<BasicConv> },
    /// 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avg pool→1×1.
    C { b1: BasicConv, b7: Vec<BasicConv>, b7dbl: Vec<BasicConv>, pool: BasicConv },
    /// Grid reduction: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max pool 3×3/2.
    D { b3: Vec<BasicConv>, b7: Vec<BasicConv> },
    /// 1×1 | 1×1→(1×3, 3×1) | 1×1→3×3→(1×3, 3×1) | avg pool→1×1.
    E {
        b1: BasicConv,
        b3: BasicConv,
        b3ab: [BasicConv; 2],
        b3dbl: [BasicConv; 2],
        b3dbl_ab: [BasicConv; 2],
        pool: BasicConv,
    },
}

impl Mixed {
    fn a(p: &Params, cin: i64, pool_features: i64) -> Result<Self> {
        Ok(Mixed::A {
            b1: BasicConv::square(&p.pp("branch1x1"), cin, 64, 1, 1, 0)?,
            b5: vec![
                BasicConv::square(&p.pp("branch5x5_1"), cin, 48, 1, 1, 0)?,
                BasicConv::square(&p.pp("branch5x5_2"), 48, 64, 5, 1, 2)?,
            ],
            b3: vec![
                BasicConv::square(&p.pp("branch3x3dbl_1"), cin, 64, 1, 1, 0)?,
                BasicConv::square(&p.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                BasicConv::square(&p.pp("branch3x3dbl_3"), 96, 96, 3, 1, 1)?,
            ],
            pool: BasicConv::square(&p.pp("branch_pool"), cin, pool_features, 1, 1, 0)?,
        })
    }

    fn b(p: &Params, cin: i64) -> Result<Self> {
        Ok(Mixed::B {
            b3: BasicConv::square(&p.pp("branch3x3"), cin, 384, 3, 2, 0)?,
            b3dbl: vec![
                BasicConv::square(&p.pp("branch3x3dbl_1"), cin, 64, 1, 1, 0)?,
                BasicConv::square(&p.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                BasicConv::square(&p.pp("branch3x3dbl_3"), 96, 96, 3, 2, 0)?,
            ],
        })
    }

    fn c(p: &Params, cin: i64, c7: i64) -> Result<Self> {
        let (r, c) = ((1, 7), (7, 1));
        let (pr, pc) = ((0, 3), (3, 0));
        Ok(Mixed::C {
            b1: BasicConv::square(&p.pp("branch1x1"), cin, 192, 1, 1, 0)?,
            b7: vec![
                BasicConv::square(&p.pp("branch7x7_1"), cin, c7, 1, 1, 0)?,
                BasicConv::new(&p.pp("branch7x7_2"), c7, c7, r, 1, pr)?,
                BasicConv::new(&p.pp("branch7x7_3"), c7, 192, c, 1, pc)?,
            ],
            b7dbl: vec![
                BasicConv::square(&p.pp("branch7x7dbl_1"), cin, c7, 1, 1, 0)?,
                BasicConv::new(&p.pp("branch7x7dbl_2"), c7, c7, c, 1, pc)?,
                BasicConv::new(&p.pp("branch7x7dbl_3"), c7, c7, r, 1, pr)?,
                BasicConv::new(&p.pp("branch7x7dbl_4"), c7, c7, c, 1, pc)?,
                BasicConv::new(&p.pp("branch7x7dbl_5"), c7, 192, r, 1, pr)?,
            ],
            pool: BasicConv::square(&p.pp("branch_pool"), cin, 192, 1, 1, 0)?,
        })
    }

    fn d(p: &Params, cin: i64) -> Result<Self> {
        Ok(Mixed::D {
            b3: vec![
                BasicConv::square(&p.pp("branch3x3_1"), cin, 192, 1, 1, 0)?,
                BasicConv::square(&p.pp("branch3x3_2"), 192, 320, 3, 2, 0)?,
            ],
            b7: vec![
                BasicConv::square(&p.pp("branch7x7x3_1"), cin, 192, 1, 1, 0)?,
                BasicConv::new(&p.pp("branch7x7x3_2"), 192, 192, (1, 7), 1, (0, 3))?,
                BasicConv::new(&p.pp("branch7x7x3_3"), 192, 192, (7, 1), 1, (3, 0))?,
                BasicConv::square(&p.pp("branch7x7x3_4"), 192, 192, 3, 2, 0)?,
            ],
        })
    }

    fn e(p: &Params, cin: i64) -> Result<Self> {
        let pair = |a: &str, b: &str| -> Result<[BasicConv; 2]> {
            Ok([
                BasicConv::new(&p.pp(a), 384, 384, (1, 3), 1, (0, 1))?,
                BasicConv::new(&p.pp(b), 384, 384, (3, 1), 1, (1, 0))?,
            ])
        };
        Ok(Mixed::E {
            b1: BasicConv::square(&p.pp("branch1x1"), cin, 320, 1, 1, 0)?,
            b3: BasicConv::square(&p.pp("branch3x3_1"), cin, 384, 1, 1, 0)?,
            b3ab: pair("branch3x3_2a", "branch3x3_2b")?,
            b3dbl: [
                BasicConv::square(&p.pp("branch3x3dbl_1"), cin, 448, 1, 1, 0)?,
                BasicConv::square(&p.pp("branch3x3dbl_2"), 448, 384, 3, 1, 1)?,
            ],
            b3dbl_ab: pair("branch3x3dbl_3a", "branch3x3dbl_3b")?,
            pool: BasicConv::square(&p.pp("branch_pool"), cin, 192, 1, 1, 0)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let branches = match self {
            Mixed::A { b1, b5, b3, pool } => {
                vec![b1.forward(x)?, chain(b5, x)?, chain(b3, x)?, pool.forward(&avg_pool_3x3_same(x)?)?]
            }
            Mixed::B { b3, b3dbl } => vec![b3.forward(x)?, chain(b3dbl, x)?, max_pool2d(x, 3, 2, 0)?],
            Mixed::C { b1, b7, b7dbl, pool } => {
                vec![b1.forward(x)?, chain(b7, x)?, chain(b7dbl, x)?, pool.forward(&avg_pool_3x3_same(x)?)?]
            }
            Mixed::D { b3, b7 } => vec![chain(b3, x)?, chain(b7, x)?, max_pool2d(x, 3, 2, 0)?],
            Mixed::E { b1, b3, b3ab, b3dbl, b3dbl_ab, pool } => {
                let h3 = b3.forward(x)?;
                let h3 = Tensor::f_cat(&[b3ab[0].forward(&h3)?, b3ab[1].forward(&h3)?], 1)?;
                let hd = chain(b3dbl, x)?;
                let hd = Tensor::f_cat(&[b3dbl_ab[0].forward(&hd)?, b3dbl_ab[1].forward(&hd)?], 1)?;
                vec![b1.forward(x)?, h3, hd, pool.forward(&avg_pool_3x3_same(x)?)?]
            }
        };
        Ok(Tensor::f_cat(&branches, 1)?)
    }
}

struct InceptionBackbone {
    transform: Option<(Tensor, Tensor)>,
    stem: [BasicConv; 5],
    mixed: Vec<Mixed>,
}

impl Backbone for InceptionBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = match &self.transform {
            Some((scale, shift)) => x.f_mul(&scale.f_to_kind(x.kind())?)?.f_add(&shift.f_to_kind(x.kind())?)?,
            None => x.shallow_clone(),
        };
        h = chain(&self.stem[..3], &h)?;
        h = max_pool2d(&h, 3, 2, 0)?;
        h = chain(&self.stem[3..], &h)?;
        h = max_pool2d(&h, 3, 2, 0)?;
        for m in &self.mixed {
            h = m.forward(&h)?;
        }
        Ok(h)
    }
}

/// Inception-v3 with `num_classes` outputs, with or without torchvision's
/// `transform_input`: backbone `[B,3,H,W]` (H, W ≥ 75) → `[B,2048,h,w]` (8×8 for 299), head `fc`.
pub fn inception_v3_with(p: &Params, num_classes: i64, transform_input: bool) -> Result<Parts> {
    let stem = [
        BasicConv::square(&p.pp("Conv2d_1a_3x3"), 3, 32, 3, 2, 0)?,
        BasicConv::square(&p.pp("Conv2d_2a_3x3"), 32, 32, 3, 1, 0)?,
        BasicConv::square(&p.pp("Conv2d_2b_3x3"), 32, 64, 3, 1, 1)?,
        BasicConv::square(&p.pp("Conv2d_3b_1x1"), 64, 80, 1, 1, 0)?,
        BasicConv::square(&p.pp("Conv2d_4a_3x3"), 80, 192, 3, 1, 0)?,
    ];
    let mixed = vec![
        Mixed::a(&p.pp("Mixed_5b"), 192, 32)?,
        Mixed::a(&p.pp("Mixed_5c"), 256, 64)?,
        Mixed::a(&p.pp("Mixed_5d"), 288, 64)?,
        Mixed::b(&p.pp("Mixed_6a"), 288)?,
        Mixed::c(&p.pp("Mixed_6b"), 768, 128)?,
        Mixed::c(&p.pp("Mixed_6c"), 768, 160)?,
        Mixed::c(&p.pp("Mixed_6d"), 768, 160)?,
        Mixed::c(&p.pp("Mixed_6e"), 768, 192)?,
        Mixed::d(&p.pp("Mixed_7a"), 768)?,
        Mixed::e(&p.pp("Mixed_7b"), 1280)?,
        Mixed::e(&p.pp("Mixed_7c"), 2048)?,
    ];
    let transform = if transform_input { Some(super::layers::transform_input(p.device())?) } else { None };
    Ok(Parts {
        backbone: Box::new(InceptionBackbone { transform, stem, mixed }),
        head: Linear::new(&p.pp("fc"), 2048, num_classes)?,
        head_prefix: "fc",
        channels: 2048,
    })
}

/// Inception-v3 as torchvision's pretrained model evaluates it (`transform_input`
/// on): backbone `[B,3,H,W]` → `[B,2048,h,w]`, head `fc`.
pub fn inception_v3(p: &Params, num_classes: i64) -> Result<Parts> {
    inception_v3_with(p, num_classes, true)
}
