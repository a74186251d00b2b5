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
