//! Swin Transformer v1 (Liu et al. 2021, "Swin Transformer: Hierarchical Vision
//! Transformer using Shifted Windows") and v2 (Liu et al. 2022, "Swin Transformer
//! V2: Scaling Up Capacity and Resolution"), T/S/B, with the layout and
//! state-dict names of torchvision's `torchvision/models/swin_transformer.py`:
//! `features.0.0` (4×4 stride-4 patch embedding) and `features.0.2` (its
//! LayerNorm, after the permute to `[B,H,W,C]`), stages at `features.{1,3,5,7}` of
//! blocks `features.{i}.{j}` (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.0`,
//! `mlp.3`), patch merging at `features.{2,4,6}` (`reduction`, `norm`), then `norm`
//! and the classifier `head`.
//!
//! Block j of a stage attends within non-overlapping windows (7×7 in v1, 8×8 in
//! v2); odd blocks shift the windows by half a window, with torchvision's
//! attention mask between regions that the cyclic shift brought together. As in
//! torchvision (and unlike the paper's code), a map that is not a multiple of the
//! window is zero-padded on the bottom and right and the padding takes part in
//! attention unmasked, and the shift is dropped along an axis whose padded size
//! is no larger than the window.
//!
//! - v1: pre-norm blocks, x + attn(norm1(x)), scaled dot-product attention plus
//!   a learned relative position bias (`attn.relative_position_bias_table`);
//!   patch merging normalises 4C then reduces to 2C.
//! - v2: post-norm blocks, x + norm1(attn(x)), cosine attention scaled by
//!   exp(min(`logit_scale`, ln 100)), a continuous position bias
//!   16·sigmoid(`cpb_mlp`(log-spaced relative coordinates)), no key bias (the
//!   middle third of `qkv.bias` is ignored); patch merging reduces then
//!   normalises 2C.
//!
//! Stochastic depth is the identity at evaluation. The backbone returns
//! `permute(norm(features(x)))`, `[B,C,h,w]` with h = w = 7 for a 224 input
//! (8 for 256), so the head is exactly torchvision's average pooling + `head`.
//!
//! **Buffers.** torchvision saves `attn.relative_position_index` (and, in v2,
//! `attn.relative_coords_table`) in its state dicts. They depend only on the
//! window size, so epic computes them ([`relative_position_index`],
//! [`relative_coords_table`]) and a checkpoint's copies are accepted and not
//! read ([`is_derived_buffer`]).
//!
//! Inputs are ImageNet-normalised after a bicubic resize, with the sizes
//! torchvision's `IMAGENET1K_V1` weights were evaluated with: v1 T 232, S 246,
//! B 238, crop 224; v2 T and S 260, B 272, crop 256.
use super::backbone::{Backbone, Parts};
use super::layers::{Conv2d, ConvOpts, LayerNorm, Linear};
use super::params::Params;
use super::Result;
use tch::{Device, Kind, Tensor};

const LN_EPS: f64 = 1e-5;

/// Which Swin: the original or V2 (post-norm, cosine attention, continuous bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Liu et al. 2021: pre-norm blocks, relative position bias table.
    V1,
    /// Liu et al. 2022: post-norm blocks, cosine attention, continuous position bias.
    V2,
}

/// A Swin's width, blocks and heads per stage, and window (the eval transform
/// of each variant is in the [registry](super::registry)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Swin or Swin-V2.
    pub version: Version,
    /// Channels of the first stage; stage s has `embed_dim`·2^s.
    pub embed_dim: i64,
    /// Blocks per stage.
    pub depths: [usize; 4],
    /// Attention heads per stage.
    pub heads: [i64; 4],
    /// The square attention window's side.
    pub window: i64,
}

impl Config {
    /// Swin-T.
    pub fn t() -> Self {
        Config { version: Version::V1, embed_dim: 96, depths: [2, 2, 6, 2], heads: [3, 6, 12, 24], window: 7 }
    }
    /// Swin-S.
    pub fn s() -> Self {
        Config { depths: [2, 2, 18, 2], ..Self::t() }
    }
    /// Swin-B.
    pub fn b() -> Self {
        Config { embed_dim: 128, depths: [2, 2, 18, 2], heads: [4, 8, 16, 32], ..Self::t() }
    }
    /// Swin-V2-T.
    pub fn v2_t() -> Self {
        Config { version: Version::V2, window: 8, ..Self::t() }
    }
    /// Swin-V2-S.
    pub fn v2_s() -> Self {
        Config { depths: [2, 2, 18, 2], ..Self::v2_t() }
    }
    /// Swin-V2-B.
    pub fn v2_b() -> Self {
        Config { embed_dim: 128, depths: [2, 2, 18, 2], heads: [4, 8, 16, 32], ..Self::v2_t() }
    }

    /// C, the channels of the feature map (the last stage's).
    pub fn channels(&self) -> i64 {
        self.embed_dim * 8
    }
}

/// Whether a state-dict key is one of the position tables torchvision saves as
/// buffers and epic computes from the window size (see the module docs).
pub fn is_derived_buffer(key: &str) -> bool {
    key.ends_with(".attn.relative_position_index") || key.ends_with(".attn.relative_coords_table")
}

/// For a `window`×`window` window, the index into a (2w−1)² table of each pair
/// of tokens (a, b) in row-major order: (y_a − y_b + w − 1)(2w − 1) + (x_a − x_b + w − 1),
/// an i64 tensor `[w⁴]`, torchvision's `relative_position_index`.
pub fn relative_position_index(window: i64, device: Device) -> Result<Tensor> {
    let n = window * window;
    let mut idx = Vec::with_capacity((n * n) as usize);
    for a in 0..n {
        for b in 0..n {
            let dy = a / window - b / window + window - 1;
            let dx = a % window - b % window + window - 1;
            idx.push(dy * (2 * window - 1) + dx);
        }
    }
    Ok(Tensor::f_from_slice(&idx)?.f_to_device(device)?)
}

/// v2's relative coordinates, `[1, 2w−1, 2w−1, 2]` f32: each offset d ∈ (−w, w)
/// scaled to 8·d/(w − 1), then sign · log2(1 + |·|)/3 (torchvision's
/// `relative_coords_table`, computed in the same order so the values are equal).
pub fn relative_coords_table(window: i64, device: Device) -> Result<Tensor> {
    let d = Tensor::f_arange_start(-(window - 1), window, (Kind::Float, device))?
        .f_div_scalar((window - 1) as f64)?
        .f_mul_scalar(8.0)?;
    let d = d.f_sign()?.f_mul(&d.f_abs()?.f_add_scalar(1.0)?.f_log2()?)?.f_div_scalar(3.0)?;
    let side = 2 * window - 1;
    let dy = d.f_view([side, 1])?.f_expand([side, side], false)?;
    let dx = d.f_view([1, side])?.f_expand([side, side], false)?;
    Ok(Tensor::f_stack(&[dy, dx], -1)?.f_unsqueeze(0)?)
}

/// How attention logits get their position term.
enum PositionBias {
    /// v1: `relative_position_bias_table` [(2w−1)², heads].
    Table(Tensor),
    /// v2: `cpb_mlp.0` (Linear 2→512), ReLU, `cpb_mlp.2.weight` `[heads,512]` (no
    /// bias) on the coordinates table, then 16·sigmoid; and `logit_scale`
    /// `[heads,1,1]` for the cosine attention.
    Continuous { fc1: Linear, fc2: Tensor, coords: Tensor, logit_scale: Tensor },
}

/// torchvision's `ShiftedWindowAttention(V2)`: `qkv` (Linear C→3C), `proj`.
struct WindowAttention {
    qkv: Linear,
    proj: Linear,
    heads: i64,
    window: i64,
    /// Half a window for odd blocks, 0 for even ones (before the map-size check).
    shift: i64,
    position: PositionBias,
    index: Tensor,
}

impl WindowAttention {
    fn new(p: &Params, dim: i64, heads: i64, window: i64, shift: i64, version: Version) -> Result<Self> {
        let position = match version {
            Version::V1 => PositionBias::Table(
                p.tensor("relative_position_bias_table", &[(2 * window - 1) * (2 * window - 1), heads])?,
            ),
            Version::V2 => PositionBias::Continuous {
                fc1: Linear::new(&p.pp("cpb_mlp").pp(0), 2, 512)?,
                fc2: p.pp("cpb_mlp").pp(2).tensor("weight", &[heads, 512])?,
                coords: relative_coords_table(window, p.device())?,
                logit_scale: p.tensor("logit_scale", &[heads, 1, 1])?,
            },
        };
        Ok(WindowAttention {
            qkv: Linear::new(&p.pp("qkv"), dim, 3 * dim)?,
            proj: Linear::new(&p.pp("proj"), dim, dim)?,
            heads,
            window,
            shift,
            position,
            index: relative_position_index(window, p.device())?,
        })
    }

    /// The position term added to the logits, `[1, heads, N, N]` with N = w².
    fn position_bias(&self) -> Result<Tensor> {
        let table = match &self.position {
            PositionBias::Table(t) => t.shallow_clone(),
            PositionBias::Continuous { fc1, fc2, coords, .. } => {
                let h = fc1.forward(&coords.f_to_kind(fc2.kind())?)?.f_relu()?;
                h.f_linear(fc2, None::<&Tensor>)?.f_view([-1, self.heads])?
            }
        };
        let n = self.window * self.window;
        let bias = table.f_index_select(0, &self.index)?.f_view([n, n, self.heads])?.f_permute([2, 0, 1])?;
        let bias = bias.f_unsqueeze(0)?;
        Ok(match self.position {
            PositionBias::Table(_) => bias,
            PositionBias::Continuous { .. } => bias.f_sigmoid()?.f_mul_scalar(16.0)?,
        })
    }

    /// x `[B,H,W,C]` → `[B,H,W,C]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = size4(x)?;
        let ws = self.window;
        let (pad_b, pad_r) = ((ws - h % ws) % ws, (ws - w % ws) % ws);
        let x = x.f_constant_pad_nd([0, 0, 0, pad_r, 0, pad_b])?;
        let (ph, pw) = (h + pad_b, w + pad_r);
        let shift = [if ws >= ph { 0 } else { self.shift }, if ws >= pw { 0 } else { self.shift }];
        let shifted = shift[0] + shift[1] > 0;
        let x = if shifted { x.f_roll([-shift[0], -shift[1]], [1, 2])? } else { x };

        let (nh, nw) = (ph / ws, pw / ws);
        let n = ws * ws;
        let x = x.f_reshape([b, nh, ws, nw, ws, c])?.f_permute([0, 1, 3, 2, 4, 5])?.f_reshape([b * nh * nw, n, c])?;

        let qkv_bias = match &self.position {
            // V2 has no key bias: torchvision zeroes that third of `qkv.bias` at every call.
            PositionBias::Continuous { .. } => {
                let bias = &self.qkv.bias;
                Tensor::f_cat(
                    &[bias.f_narrow(0, 0, c)?, bias.f_narrow(0, c, c)?.f_zeros_like()?, bias.f_narrow(0, 2 * c, c)?],
                    0,
                )?
            }
            PositionBias::Table(_) => self.qkv.bias.shallow_clone(),
        };
        let d = c / self.heads;
        let qkv = x
            .f_linear(&self.qkv.weight, Some(&qkv_bias))?
            .f_reshape([-1, n, 3, self.heads, d])?
            .f_permute([2, 0, 3, 1, 4])?;
        let (q, k, v) = (qkv.f_get(0)?, qkv.f_get(1)?, qkv.f_get(2)?);
        let attn = match &self.position {
            PositionBias::Continuous { logit_scale, .. } => {
                let scale = logit_scale.f_clamp_max(100f64.ln())?.f_exp()?;
                normalize(&q)?.f_matmul(&normalize(&k)?.f_transpose(-2, -1)?)?.f_mul(&scale)?
            }
            PositionBias::Table(_) => q.f_mul_scalar((d as f64).powf(-0.5))?.f_matmul(&k.f_transpose(-2, -1)?)?,
        };
        let mut attn = attn.f_add(&self.position_bias()?)?;
        if shifted {
            let mask = shift_mask(ph, pw, ws, shift, attn.kind(), attn.device())?; // [nW, N, N]
            attn = attn
                .f_view([b, nh * nw, self.heads, n, n])?
                .f_add(&mask.f_unsqueeze(1)?.f_unsqueeze(0)?)?
                .f_view([-1, self.heads, n, n])?;
        }
        let attn = attn.f_softmax(-1, attn.kind())?;
        let x = attn.f_matmul(&v)?.f_transpose(1, 2)?.f_reshape([-1, n, c])?;
        let x = self.proj.forward(&x)?;

        let x = x.f_view([b, nh, nw, ws, ws, c])?.f_permute([0, 1, 3, 2, 4, 5])?.f_reshape([b, ph, pw, c])?;
        let x = if shifted { x.f_roll([shift[0], shift[1]], [1, 2])? } else { x };
        Ok(x.f_narrow(1, 0, h)?.f_narrow(2, 0, w)?.f_contiguous()?)
    }
}

/// The dimensions of a `[B,H,W,C]` tensor.
fn size4(x: &Tensor) -> Result<(i64, i64, i64, i64)> {
    match x.size()[..] {
        [b, h, w, c] => Ok((b, h, w, c)),
        ref other => {
            Err(super::Error::Format { path: "<swin>".into(), why: format!("expected a [B,H,W,C] map, got {other:?}") })
        }
    }
}

/// x / max(‖x‖₂, 1e-12) over the last dimension (`F.normalize`).
fn normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.f_norm_scalaropt_dim(2, [-1i64].as_slice(), true)?.f_clamp_min(1e-12)?;
    Ok(x.f_div(&norm.f_expand_as(x)?)?)
}

/// torchvision's mask for shifted windows on a padded ph×pw map: `[nW, N, N]`,
/// 0 between tokens of the same region and −100 otherwise. Along an axis
/// shifted by s > 0, the regions are [0, p−w), [p−w, p−s), [p−s, p); along an
/// unshifted axis there is one region.
fn shift_mask(ph: i64, pw: i64, ws: i64, shift: [i64; 2], kind: Kind, device: Device) -> Result<Tensor> {
    let region = |i: i64, p: i64, s: i64| -> i64 {
        if s == 0 || i >= p - s {
            2
        } else if i >= p - ws {
            1
        } else {
            0
        }
    };
    let mut labels = Vec::with_capacity((ph * pw) as usize);
    for y in 0..ph {
        for x in 0..pw {
            labels.push((3 * region(y, ph, shift[0]) + region(x, pw, shift[1])) as f32);
        }
    }
    let n = ws * ws;
    let labels = Tensor::f_from_slice(&labels)?
        .f_view([ph / ws, ws, pw / ws, ws])?
        .f_permute([0, 2, 1, 3])?
        .f_reshape([-1, n])?;
    let diff = labels.f_unsqueeze(1)?.f_sub(&labels.f_unsqueeze(2)?)?;
    let mask = diff.f_ne(0.0)?.f_to_kind(Kind::Float)?.f_mul_scalar(-100.0)?;
    Ok(mask.f_to_kind(kind)?.f_to_device(device)?)
}

/// torchvision's `MLP`: `mlp.0` Linear C→4C, GELU, `mlp.3` Linear 4C→C.
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.f_gelu("none")?)
    }
}

/// `SwinTransformerBlock` (v1, pre-norm) or `SwinTransformerBlockV2` (post-norm).
struct Block {
    norm1: LayerNorm,
    attn: WindowAttention,
    norm2: LayerNorm,
    mlp: Mlp,
    version: Version,
}

impl Block {
    fn new(p: &Params, dim: i64, heads: i64, window: i64, shift: i64, version: Version) -> Result<Self> {
        Ok(Block {
            norm1: LayerNorm::new(&p.pp("norm1"), dim, LN_EPS)?,
            attn: WindowAttention::new(&p.pp("attn"), dim, heads, window, shift, version)?,
            norm2: LayerNorm::new(&p.pp("norm2"), dim, LN_EPS)?,
            mlp: Mlp {
                fc1: Linear::new(&p.pp("mlp").pp(0), dim, 4 * dim)?,
                fc2: Linear::new(&p.pp("mlp").pp(3), 4 * dim, dim)?,
            },
            version,
        })
    }

    /// x `[B,H,W,C]` → `[B,H,W,C]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self.version {
            Version::V1 => {
                let x = x.f_add(&self.attn.forward(&self.norm1.forward(x)?)?)?;
                x.f_add(&self.mlp.forward(&self.norm2.forward(&x)?)?)?
            }
            Version::V2 => {
                let x = x.f_add(&self.norm1.forward(&self.attn.forward(x)?)?)?;
                x.f_add(&self.norm2.forward(&self.mlp.forward(&x)?)?)?
            }
        })
    }
}

/// `PatchMerging` / `PatchMergingV2`: each 2×2 neighbourhood (zero-padded to
/// even sizes) concatenated to 4C, then `reduction` (4C→2C, no bias) with `norm`
/// before it (v1, over 4C) or after it (v2, over 2C). `[B,H,W,C]` → [B,⌈H/2⌉,⌈W/2⌉,2C].
struct PatchMerging {
    reduction: Tensor,
    norm: LayerNorm,
    version: Version,
}

impl PatchMerging {
    fn new(p: &Params, dim: i64, version: Version) -> Result<Self> {
        let norm_dim = if version == Version::V1 { 4 * dim } else { 2 * dim };
        Ok(PatchMerging {
            reduction: p.pp("reduction").tensor("weight", &[2 * dim, 4 * dim])?,
            norm: LayerNorm::new(&p.pp("norm"), norm_dim, LN_EPS)?,
            version,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w, _) = size4(x)?;
        let x = x.f_constant_pad_nd([0, 0, 0, w % 2, 0, h % 2])?;
        let take = |dy: i64, dx: i64| -> Result<Tensor> {
            Ok(x.f_slice(1, dy, None::<i64>, 2)?.f_slice(2, dx, None::<i64>, 2)?)
        };
        let x = Tensor::f_cat(&[take(0, 0)?, take(1, 0)?, take(0, 1)?, take(1, 1)?], -1)?;
        let reduce = |x: &Tensor| -> Result<Tensor> { Ok(x.f_linear(&self.reduction, None::<&Tensor>)?) };
        match self.version {
            Version::V1 => reduce(&self.norm.forward(&x)?),
            Version::V2 => self.norm.forward(&reduce(&x)?),
        }
    }
}

/// One step of `features`, in order.
enum Step {
    Stage(Vec<Block>),
    Merge(PatchMerging),
}

struct SwinBackbone {
    embed: Conv2d,
    embed_norm: LayerNorm,
    steps: Vec<Step>,
    /// The `norm` after `features`.
    norm: LayerNorm,
}

impl Backbone for SwinBackbone {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.embed_norm.forward(&self.embed.forward(x)?.f_permute([0, 2, 3, 1])?)?;
        for step in &self.steps {
            h = match step {
                Step::Stage(blocks) => {
                    for b in blocks {
                        h = b.forward(&h)?;
                    }
                    h
                }
                Step::Merge(m) => m.forward(&h)?,
            };
        }
        Ok(self.norm.forward(&h)?.f_permute([0, 3, 1, 2])?)
    }
}

/// A Swin Transformer with `num_classes` outputs: backbone `[B,3,H,W]` →
/// [B,C,⌈H/32⌉,⌈W/32⌉] (for H, W multiples of 4) with C = `config.channels()`, head `head`.
pub fn swin(p: &Params, config: Config, num_classes: i64) -> Result<Parts> {
    let f = p.pp("features");
    let e = config.embed_dim;
    let embed = Conv2d::new(&f.pp(0).pp(0), 3, e, 4, ConvOpts { stride: 4, bias: true, ..Default::default() })?;
    let embed_norm = LayerNorm::new(&f.pp(0).pp(2), e, LN_EPS)?;
    let mut steps = Vec::new();
    for (s, &depth) in config.depths.iter().enumerate() {
        let dim = e << s;
        let stage = f.pp(2 * s + 1);
        let blocks = (0..depth)
            .map(|j| {
                let shift = if j % 2 == 0 { 0 } else { config.window / 2 };
                Block::new(&stage.pp(j), dim, config.heads[s], config.window, shift, config.version)
            })
            .collect::<Result<Vec<_>>>()?;
        steps.push(Step::Stage(blocks));
        if s < 3 {
            steps.push(Step::Merge(PatchMerging::new(&f.pp(2 * s + 2), dim, config.version)?));
        }
    }
    let c = config.channels();
    let backbone = SwinBackbone { embed, embed_norm, steps, norm: LayerNorm::new(&p.pp("norm"), c, LN_EPS)? };
    Ok(Parts {
        backbone: Box::new(backbone),
        head: Linear::new(&p.pp("head"), c, num_classes)?,
        head_prefix: "head",
        channels: c,
    })
}

/// Swin-T: backbone `[B,3,224,224]` → `[B,768,7,7]`.
pub fn swin_t(p: &Params, num_classes: i64) -> Result<Parts> {
    swin(p, Config::t(), num_classes)
}
/// Swin-S: backbone `[B,3,224,224]` → `[B,768,7,7]`.
pub fn swin_s(p: &Params, num_classes: i64) -> Result<Parts> {
    swin(p, Config::s(), num_classes)
}
/// Swin-B: backbone `[B,3,224,224]` → `[B,1024,7,7]`.
pub fn swin_b(p: &Params, num_classes: i64) -> Result<Parts> {
    swin(p, Config::b(), num_classes)
}
/// Swin-V2-T: backbone `[B,3,256,256]` → `[B,768,8,8]`.
pub fn swin_v2_t(p: &Params, num_classes: i64) -> Result<Parts> {
    swin(p, Config::v2_t(), num_classes)
}
/// Swin-V2-S: backbone `[B,3,256,256]` → `[B,768,8,8]`.
pub fn swin_v2_s(p: &Params, num_classes: i64) -> Result<Parts> {
    swin(p, Config::v2_s(), num_classes)
}
/// Swin-V2-B: backbone `[B,3,256,256]` → `[B,1024,8,8]`.
pub fn swin_v2_b(p: &Params, num_classes: i64) -> Result<Parts> {
    swin(p, Config::v2_b(), num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_index_spans_the_table() {
        let idx = Vec::<i64>::try_from(relative_position_index(7, Device::Cpu).unwrap()).unwrap();
        assert_eq!(idx.len(), 49 * 49);
        // A token with itself is offset (0, 0), the table's centre (6·13 + 6).
        assert_eq!(idx[0], 84);
        assert_eq!(*idx.iter().max().unwrap(), 13 * 13 - 1);
        assert_eq!(*idx.iter().min().unwrap(), 0);
    }

    #[test]
    fn unshifted_axes_have_one_region() {
        // Shifted along W only: tokens in the same column band never mask each other vertically.
        let m = shift_mask(8, 16, 8, [0, 4], Kind::Float, Device::Cpu).unwrap();
        assert_eq!(m.size(), [2, 64, 64]);
        // First window: one region; second: two column bands.
        assert_eq!(m.get(0).abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert!(m.get(1).abs().sum(Kind::Float).double_value(&[]) > 0.0);
        // Token (0,0) and (7,0) of window 1 are in the same band.
        assert_eq!(m.double_value(&[1, 0, 56]), 0.0);
        assert_eq!(m.double_value(&[1, 0, 4]), -100.0);
    }
}
