//! The training objective: the mean argmax purity of prototypes under U, and one
//! Adam step on it, with the gradient by autograd (as the reference) or by the
//! closed-form adjoint of [`gradient`](super::gradient) (fast; the default).
use super::{Adam, Disentangler, MatrixKind};
use crate::error::{Error, Result};
use crate::prototypes::{purity_argmax_orthogonal, purity_argmax_under};
use std::fmt;
use std::str::FromStr;
use tch::{Kind, Tensor};

/// How [`purity_step_with`] gets the gradient of the loss in A
/// (`training.gradient` in configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gradient {
    /// Closed-form adjoint of exp's derivative and, for orthogonal U, purity with
    /// ‖Uz‖ = ‖z‖: the same gradient to ~1e-6, several times faster on a CPU.
    /// Falls back to autograd where its series does not converge.
    #[default]
    Fast,
    /// Autograd through libtorch's `matrix_exp`, operation for operation the
    /// reference's computation.
    Autograd,
}

impl fmt::Display for Gradient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gradient::Fast => "fast",
            Gradient::Autograd => "autograd",
        })
    }
}

impl FromStr for Gradient {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fast" => Ok(Gradient::Fast),
            "autograd" => Ok(Gradient::Autograd),
            other => Err(Error::invalid(
                "training.gradient",
                format!("unknown gradient {other:?}; use \"fast\" or \"autograd\""),
            )),
        }
    }
}

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
    purity_step_with(Gradient::Autograd, d, opt, features, channels)
}

/// [`purity_step`] with the gradient computed as `how` says.
pub fn purity_step_with(
    how: Gradient,
    d: &mut Disentangler,
    opt: &mut Adam,
    features: &Tensor,
    channels: &Tensor,
) -> Result<f64> {
    if features.device() != d.device() {
        return Err(Error::Device { what: "purity_step(features)".into(), a: features.device(), b: d.device() });
    }
    let features = features.f_detach()?;
    let fast = match how {
        Gradient::Fast => fast_loss_and_gradient(d, &features, channels)?,
        Gradient::Autograd => None,
    };
    let (value, grad) = match fast {
        Some(found) => found,
        None => {
            let a = d.a_raw().f_detach()?.f_set_requires_grad(true)?;
            let loss = purity_loss(d.kind(), &a, &features, channels)?;
            loss.f_backward()?;
            (loss.f_double_value(&[])?, a.f_grad()?)
        }
    };
    if !grad.defined() {
        return Err(Error::invalid("purity_step", "no gradient reached A (empty batch?)"));
    }
    if !value.is_finite() {
        return Err(Error::NonFinite { what: "purity loss".into() });
    }
    opt.update(d.a_raw_mut(), &grad)?;
    Ok(value)
}

/// The loss and its gradient in A by [`super::gradient::raw_gradient`]; `None`
/// where its series does not converge.
fn fast_loss_and_gradient(d: &Disentangler, features: &Tensor, channels: &Tensor) -> Result<Option<(f64, Tensor)>> {
    let u = {
        let _guard = tch::no_grad_guard();
        d.kind().matrix(&d.a_raw().f_detach()?)?
    };
    let leaf = u.f_detach()?.f_set_requires_grad(true)?;
    let purity = match d.kind() {
        MatrixKind::Orthogonal => purity_argmax_orthogonal(features, &leaf, channels)?,
        MatrixKind::Invertible => purity_argmax_under(features, &leaf, channels)?,
    };
    let loss = purity.f_mean(Kind::Float)?.f_neg()?;
    loss.f_backward()?;
    let g = leaf.f_grad()?;
    if !g.defined() {
        return Ok(None);
    }
    let value = loss.f_double_value(&[])?;
    Ok(super::gradient::raw_gradient(d.kind(), d.a_raw(), &u, &g)?.map(|grad| (value, grad)))
}
