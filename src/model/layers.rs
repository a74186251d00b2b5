//! The layers the supported backbones are made of, evaluated with libtorch's
//! fallible calls (eval mode only: batch norm uses running statistics).
use super::params::Params;
use super::Result;
use tch::Tensor;

/// 2-D convolution, torchvision's `Conv2d` (`weight` `[out, in/groups, k, k]`, optional `bias`).
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: i64,
    pub padding: i64,
    pub groups: i64,
}

/// Convolution options beyond the channel counts and kernel size.
#[derive(Clone, Copy)]
pub struct ConvOpts {
    pub stride: i64,
    pub padding: i64,
    pub groups: i64,
    pub bias: bool,
}

impl Default for ConvOpts {
    fn default() -> Self {
        ConvOpts { stride: 1, padding: 0, groups: 1, bias: false }
    }
}

impl Conv2d {
    pub fn new(p: &Params, cin: i64, cout: i64, k: i64, o: ConvOpts) -> Result<Self> {
        let weight = p.tensor("weight", &[cout, cin / o.groups, k, k])?;
        let bias = if o.bias { Some(p.tensor("bias", &[cout])?) } else { None };
        Ok(Conv2d { weight, bias, stride: o.stride, padding: o.padding, groups: o.groups })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_conv2d(&self.weight, self.bias.as_ref(), [self.stride; 2], [self.padding; 2], [1i64; 2], self.groups)?)
    }
}

/// Batch norm in eval mode: `weight`, `bias`, `running_mean`, `running_var` `[C]`.
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f64,
}

impl BatchNorm2d {
    pub fn new(p: &Params, c: i64, eps: f64) -> Result<Self> {
        Ok(BatchNorm2d {
            weight: p.tensor("weight", &[c])?,
            bias: p.tensor("bias", &[c])?,
            running_mean: p.tensor("running_mean", &[c])?,
            running_var: p.tensor("running_var", &[c])?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            false,
            0.1,
            self.eps,
            true,
        )?)
    }
}

/// A convolution followed by batch norm, run as one convolution: the batch
/// norm's affine map (eval mode: γ(x − μ)/√(σ² + ε) + β) folded into the
/// convolution's weight and bias, which saves a pass over every activation.
///
/// The parameters stay as loaded (they are the network's state dict); the folded
/// pair is computed at the first forward and again after any network's
/// parameters changed ([`parameters_changed`]: weights loaded, a new precision).
/// In f64, so the result differs from convolution-then-batch-norm by f32
/// rounding only (~1e-6 of the activations).
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm2d,
    folded: std::sync::Mutex<Option<Folded>>,
}

/// The folded weight and bias, and what they were computed from.
struct Folded {
    weight: Tensor,
    bias: Tensor,
    /// [`GENERATION`] then, the storage of the convolution's weight and its kind.
    from: (u64, usize, tch::Kind),
}

/// Bumped whenever parameters are written in place: every [`ConvBn`] folds again.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Says that some network's parameters were written (loaded, converted): folded
/// layers recompute their weights at their next forward. Refolding costs a pass
/// over the weights, nothing next to one batch.
pub fn parameters_changed() {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

impl ConvBn {
    pub fn new(conv: Conv2d, bn: BatchNorm2d) -> Self {
        ConvBn { conv, bn, folded: std::sync::Mutex::new(None) }
    }

    /// The folded (weight, bias) for the parameters as they are now.
    fn folded(&self) -> Result<(Tensor, Tensor)> {
        let generation = GENERATION.load(std::sync::atomic::Ordering::SeqCst);
        let from = (generation, self.conv.weight.data_ptr() as usize, self.conv.weight.kind());
        let mut cache = self.folded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = cache.as_ref().filter(|f| f.from == from) {
            return Ok((f.weight.shallow_clone(), f.bias.shallow_clone()));
        }
        let _guard = tch::no_grad_guard();
        let double = |t: &Tensor| t.f_to_kind(tch::Kind::Double);
        let bn = &self.bn;
        let scale = double(&bn.weight)?.f_div(&double(&bn.running_var)?.f_add_scalar(bn.eps)?.f_sqrt()?)?;
        let weight = double(&self.conv.weight)?.f_mul(&scale.f_view([-1, 1, 1, 1])?)?;
        let conv_bias = match &self.conv.bias {
            Some(b) => double(b)?,
            None => scale.f_zeros_like()?,
        };
        let bias = conv_bias.f_sub(&double(&bn.running_mean)?)?.f_mul(&scale)?.f_add(&double(&bn.bias)?)?;
        let kind = self.conv.weight.kind();
        let f = Folded { weight: weight.f_to_kind(kind)?, bias: bias.f_to_kind(kind)?, from };
        let out = (f.weight.shallow_clone(), f.bias.shallow_clone());
        *cache = Some(f);
        Ok(out)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.conv.weight.kind() != tch::Kind::Float {
            // f16/bf16 weights: folding would round γ/σ·w to 8 or 11 bits once
            // more (bf16: ‖Δz‖/‖z‖ 0.16 instead of 0.13 on Lite0), so the pair
            // runs as loaded.
            return self.bn.forward(&self.conv.forward(x)?);
        }
        let (weight, bias) = self.folded()?;
        let c = &self.conv;
        Ok(x.f_conv2d(&weight, Some(&bias), [c.stride; 2], [c.padding; 2], [1i64; 2], c.groups)?)
    }
}

/// `weight` `[out, in]`, `bias` [out].
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(p: &Params, cin: i64, cout: i64) -> Result<Self> {
        Ok(Linear { weight: p.tensor("weight", &[cout, cin])?, bias: p.tensor("bias", &[cout])? })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_linear(&self.weight, Some(&self.bias))?)
    }
}

/// Layer norm over the last dimension: `weight`, `bias` `[C]`.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(p: &Params, c: i64, eps: f64) -> Result<Self> {
        Ok(LayerNorm { weight: p.tensor("weight", &[c])?, bias: p.tensor("bias", &[c])?, eps })
    }

    /// Normalises `x` [..., C] over C.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.weight.size()[0];
        Ok(x.f_layer_norm([c], Some(&self.weight), Some(&self.bias), self.eps, true)?)
    }

    /// Normalises `x` `[B,C,H,W]` over C at every pixel (torchvision's LayerNorm2d).
    pub fn forward_2d(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(&x.f_permute([0, 2, 3, 1])?)?.f_permute([0, 3, 1, 2]).map_err(Into::into)
    }
}

/// Max pooling over `k`×`k` windows with `stride` and zero `padding` (ignored
/// cells, as in PyTorch): `[B,C,H,W]` → [B,C,H',W'].
pub fn max_pool2d(x: &Tensor, k: i64, stride: i64, padding: i64) -> Result<Tensor> {
    Ok(x.f_max_pool2d([k; 2], [stride; 2], [padding; 2], [1i64; 2], false)?)
}

/// Average pooling over `k`×`k` windows with `stride`, no padding:
/// `[B,C,H,W]` → [B,C,H',W'].
pub fn avg_pool2d(x: &Tensor, k: i64, stride: i64) -> Result<Tensor> {
    Ok(x.f_avg_pool2d([k; 2], [stride; 2], [0i64; 2], false, true, None)?)
}

/// torchvision's `transform_input` (GoogLeNet, Inception-v3), which re-normalises
/// ImageNet-normalised input to the (x − 0.5)/0.5 its weights were trained on: a
/// per-channel scale and shift, each `[1,3,1,1]` on `device`, applied as x·scale + shift.
/// The constants are computed in f64 and rounded once, as Python computes them.
pub fn transform_input(device: tch::Device) -> Result<(Tensor, Tensor)> {
    let (mean, std) = ([0.485f64, 0.456, 0.406], [0.229f64, 0.224, 0.225]);
    let scale: Vec<f32> = std.iter().map(|s| (s / 0.5) as f32).collect();
    let shift: Vec<f32> = mean.iter().map(|m| ((m - 0.5) / 0.5) as f32).collect();
    let t = |v: &[f32]| -> Result<Tensor> {
        Ok(Tensor::f_from_slice(v)?.f_to_kind(tch::Kind::Float)?.f_view([1, 3, 1, 1])?.f_to_device(device)?)
    };
    Ok((t(&scale)?, t(&shift)?))
}
