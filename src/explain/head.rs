//! The classification head: global average pooling then a linear map (A, b), and
//! its modified form A′ = A·U⁻¹ for rotated features Ẑ = U·Z, under which every
//! logit is unchanged: A′·avgpool(U·Z) = A·U⁻¹·U·avgpool(Z).
use crate::check;
use crate::error::{Error, Result};
use crate::features::rotate;
use tch::{Kind, Tensor};

/// Logits of the avgpool + linear head: `features` `[B,C,H,W]`, `weight` `[K,C]`,
/// `bias` `[K]` → `[B,K]`.
pub fn logits(features: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    check::dims(features, "features", 4, "[B,C,H,W]")?;
    let pooled = features.f_mean_dim([2i64, 3].as_slice(), false, None::<Kind>)?;
    linear(&pooled, weight, bias)
}

/// `pooled` `[B,C]` · `weight`ᵀ `[C,K]` + `bias` `[K]` → `[B,K]`, with shape checks.
pub(crate) fn linear(pooled: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    check::dims(weight, "weight", 2, "[K,C]")?;
    check::float(weight, "weight")?;
    let (k, c) = (weight.size()[0], weight.size()[1]);
    if pooled.size()[1] != c {
        return Err(Error::Shape {
            what: "features".into(),
            expected: format!("C = {c} channels to match weight [{k},{c}]"),
            got: pooled.size(),
        });
    }
    if bias.size() != [k] {
        return Err(Error::Shape { what: "bias".into(), expected: format!("[{k}]"), got: bias.size() });
    }
    check::same_device(pooled, weight, "head(features, weight)")?;
    check::same_device(weight, bias, "head(weight, bias)")?;
    Ok(pooled.f_linear(weight, Some(bias))?)
}

/// The modified head's weight A′ = A·U⁻¹: `weight` `[K,C]`, `u` `[C,C]` → `[K,C]`.
///
/// Solves X·U = A rather than forming U⁻¹, so any invertible U works. With a
/// [`Disentangler`](crate::disentangle::Disentangler) at hand, `weight·d.inverse()`
/// uses the closed-form inverse instead (Uᵀ or exp(−A)).
pub fn modified_head(weight: &Tensor, u: &Tensor) -> Result<Tensor> {
    check::dims(weight, "weight", 2, "[K,C]")?;
    check::float(weight, "weight")?;
    let c = check::square(u, "u")?;
    check::same_device(weight, u, "modified_head(weight, u)")?;
    if weight.size()[1] != c {
        return Err(Error::Shape {
            what: "weight".into(),
            expected: format!("[K,{c}] to match u [{c},{c}]"),
            got: weight.size(),
        });
    }
    Ok(Tensor::f_linalg_solve(u, weight, false)?)
}

/// Largest |logit change| from explaining in U's basis: max over images and classes
/// of |head′(U·Z) − head(Z)|, with head′ = (A·U⁻¹, b). `features` `[B,C,H,W]`, `weight`
/// `[K,C]`, `bias` `[K]`, `u` `[C,C]` → f64. EPIC promises 0 up to float rounding.
pub fn max_logit_change(features: &Tensor, weight: &Tensor, bias: &Tensor, u: &Tensor) -> Result<f64> {
    let before = logits(features, weight, bias)?;
    let after = logits(&rotate(features, u)?, &modified_head(weight, u)?, bias)?;
    Ok(after.f_sub(&before)?.f_abs()?.f_max()?.f_double_value(&[])?)
}
