//! The training objective: the mean argmax purity of prototypes under U, and one
//! Adam step on it.
use super::{Adam, Disentangler, MatrixKind};
use crate::error::{Error, Result};
use crate::prototypes::purity_argmax_under;
use tch::{Kind, Tensor};

/// −mean purity of `features` [B,C,H,W] under U(`a_raw`), each image on its own
/// `channels` [B] entry → scalar tensor, differentiable in `a_raw` [C,C].
pub fn purity_loss(kind: MatrixKind, a_raw: &Tensor, features: &Tensor, channels: &Tensor) -> Result<Tensor> {
    let u = kind.matrix(a_raw)?;
    let purity = purity_argmax_under(features, &u, channels)?;
    Ok(purity.f_mean(Kind::Float)?.f_neg()?)
}

/// One optimiser step on the purity loss: computes −mean purity of `features`
/// [B,C,H,W] (maps of prototypes, post-backbone) on `channels` [B] under the current
/// U, back-propagates to A, and updates A in place. Returns the loss *before* the
/// update, as the reference logs it.
pub fn purity_step(d: &mut Disentangler, opt: &mut Adam, features: &Tensor, channels: &Tensor) -> Result<f64> {
    if features.device() != d.device() {
        return Err(Error::Device { what: "purity_step(features)".into(), a: features.device(), b: d.device() });
    }
    let a = d.a_raw().f_detach()?.f_set_requires_grad(true)?;
    let loss = purity_loss(d.kind(), &a, &features.f_detach()?, channels)?;
    loss.f_backward()?;
    let grad = a.f_grad()?;
    if !grad.defined() {
        return Err(Error::invalid("purity_step", "no gradient reached A (empty batch?)"));
    }
    let value = loss.f_double_value(&[])?;
    if !value.is_finite() {
        return Err(Error::NonFinite { what: "purity loss".into() });
    }
    opt.update(d.a_raw_mut(), &grad)?;
    Ok(value)
}
