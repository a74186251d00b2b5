//! The training objective: the mean argmax purity of prototypes under U, and one
//! Adam step on it, with the gradient by autograd (as the reference) or by the
//! closed-form adjoint of [`gradient`](super::gradient) (fast; the default).
use super::{Adam, Disentangler, MatrixKind};
use crate::error::{Error, Result};
use crate::prototypes::{purity_argmax_pairs, purity_argmax_under};
use std::fmt;
use std::str::FromStr;
use tch::{Kind, Tensor};

/// How [`purity_step_with`] gets the gradient of the loss in A
/// (`training.gradient` in configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gradient {
    /// Closed-form adjoint of exp's derivative and, for orthogonal U, purity with
    /// ‖Uz‖ = ‖z‖ (and, for a batch naming few channels, only those rows of U):
    /// the same gradient to ~1e-6, several times faster on a CPU.
    /// Falls back to autograd where ‖A‖ is not finite or absurdly large.
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

/// −mean purity of `features` `[B,C,H,W]` under U(`a_raw`), each image on its own
/// `channels` `[B]` entry → scalar tensor, differentiable in `a_raw` `[C,C]`.
pub fn purity_loss(kind: MatrixKind, a_raw: &Tensor, features: &Tensor, channels: &Tensor) -> Result<Tensor> {
    let u = kind.matrix(a_raw)?;
    let purity = purity_argmax_under(features, &u, channels)?;
    Ok(purity.f_mean(Kind::Float)?.f_neg()?)
}

/// One optimiser step on the purity loss: computes −mean purity of `features`
/// `[B,C,H,W]` (maps of prototypes, post-backbone) on `channels` `[B]` under the current
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
    let rows = Tensor::f_arange(features.size().first().copied().unwrap_or(0), (Kind::Int64, features.device()))?;
    purity_step_gathered(how, d, opt, features, &rows, channels)
}

/// Bytes of gathered maps one chunk of a step may hold (pairs are processed in
/// chunks this size, their gradients summed, so a 4096-pair batch at C = 1280
/// needs 256 MiB, not 1 GiB).
const CHUNK_BYTES: i64 = 256 << 20;

/// One optimiser step on pairs (maps[`rows``[i]`], `channels``[i]`): `maps`
/// `[N,C,H,W]` (each prototype image once), `rows` and `channels` `[B]` int64. The
/// same step as [`purity_step_with`] on the gathered features, without gathering
/// all B maps at once.
pub fn purity_step_gathered(
    how: Gradient,
    d: &mut Disentangler,
    opt: &mut Adam,
    maps: &Tensor,
    rows: &Tensor,
    channels: &Tensor,
) -> Result<f64> {
    if maps.device() != d.device() {
        return Err(Error::Device { what: "purity_step(features)".into(), a: maps.device(), b: d.device() });
    }
    crate::check::dims(maps, "features", 4, "[B,C,H,W]")?;
    let b = rows.size().first().copied().unwrap_or(0);
    if b == 0 {
        return Err(Error::invalid("purity_step", "no gradient reached A (empty batch?)"));
    }
    let s = maps.size();
    // Fast: one pass over the batch's distinct images (purity_argmax_pairs);
    // autograd: the reference's computation on gathered maps, in chunks.
    let chunk = match how {
        Gradient::Fast => b,
        Gradient::Autograd => (CHUNK_BYTES / (s[1] * s[2] * s[3] * 4).max(1)).clamp(1, b),
    };
    let maps = maps.f_detach()?;

    // Fast: U = (e^M)ᵀ from the scaled exponential the gradient reuses, or, for
    // orthogonal U and a batch naming few channels, only those rows of U.
    let prepared = match how {
        Gradient::Fast => {
            let (m, norm) = {
                let _guard = tch::no_grad_guard();
                let m = super::gradient::adjoint_exponent(d.kind(), d.a_raw())?;
                let norm = super::gradient::norm2_estimate(&m)?;
                (m, norm)
            };
            if d.kind() == MatrixKind::Orthogonal {
                if let Some(value) = columns_step(d, opt, &maps, rows, channels, &m, norm)? {
                    return Ok(value);
                }
            }
            let _guard = tch::no_grad_guard();
            super::gradient::ScaledExp::with_norm(&m, norm)?
        }
        Gradient::Autograd => None,
    };
    // U, as a leaf for the cheap part of the graph (purity), and the graph from
    // A to U where autograd is asked for (or the fast path cannot plan).
    let a = d.a_raw().f_detach()?.f_set_requires_grad(how == Gradient::Autograd)?;
    let u_graph = match &prepared {
        Some(p) => p.exp().f_tr()?.f_contiguous()?,
        None => d.kind().matrix(&a)?,
    };
    let leaf = u_graph.f_detach()?.f_set_requires_grad(true)?;
    let mut value = 0.0;
    for start in (0..b).step_by(chunk as usize) {
        let n = chunk.min(b - start);
        let (rows, channels) = (rows.f_narrow(0, start, n)?, channels.f_narrow(0, start, n)?);
        let purity = match how {
            Gradient::Fast => purity_argmax_pairs(&maps, &rows, &channels, &leaf, d.kind() == MatrixKind::Orthogonal)?,
            Gradient::Autograd => purity_argmax_under(&maps.f_index_select(0, &rows)?, &leaf, &channels)?,
        };
        // One chunk: −mean exactly as the reference computes it.
        let loss = if n == b {
            purity.f_mean(Kind::Float)?.f_neg()?
        } else {
            purity.f_sum(Kind::Float)?.f_mul_scalar(-1.0 / b as f64)?
        };
        loss.f_backward()?;
        value += loss.f_double_value(&[])?;
    }
    let g = checked_gradient(&leaf, value)?;
    let fast = match &prepared {
        Some(p) => Some(super::gradient::raw_gradient_from(d.kind(), p, &g)?),
        None => None,
    };
    let grad = match fast {
        Some(grad) => grad,
        None => {
            // Autograd from A to U, fed the gradient at U: dL/dU·dU/dA.
            let a = if a.requires_grad() { a } else { d.a_raw().f_detach()?.f_set_requires_grad(true)? };
            let u_graph = if u_graph.requires_grad() { u_graph } else { d.kind().matrix(&a)? };
            u_graph.f_mul(&g)?.f_sum(Kind::Float)?.f_backward()?;
            a.f_grad()?
        }
    };
    opt.update(d.a_raw_mut(), &grad)?;
    Ok(value)
}

/// The fast step for orthogonal U through the rows of U at the batch's
/// channels only ([`columns`](super::columns)), when that costs fewer products
/// than the whole exponential at this ‖M‖₂ ≈ `norm` (`m`, the
/// [`adjoint_exponent`](super::gradient::adjoint_exponent)); `None` otherwise.
fn columns_step(
    d: &mut Disentangler,
    opt: &mut Adam,
    maps: &Tensor,
    rows: &Tensor,
    channels: &Tensor,
    m: &Tensor,
    norm: f64,
) -> Result<Option<f64>> {
    use super::columns::{self, ExpColumns};
    let Some(degree) = columns::degree(norm) else { return Ok(None) };
    let channels = crate::check::indices(channels, "channels")?;
    crate::check::in_range(&channels, "channels", d.channels())?;
    let list = Vec::<i64>::try_from(channels.f_to_device(tch::Device::Cpu)?)?;
    let mut distinct = list.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let (w, c) = (distinct.len() as i64, d.channels());
    // The skinny products run at about 85 % of a square one's rate.
    let dense = super::gradient::dense_products(norm).map_or(f64::INFINITY, |p| p as f64);
    if columns::products(degree, w, c) / COLUMN_EFFICIENCY >= dense {
        return Ok(None);
    }
    let device = maps.device();
    let local: Vec<i64> = list.iter().map(|k| distinct.binary_search(k).map_or(0, |p| p as i64)).collect();
    let local = Tensor::f_from_slice(&local)?.f_to_device(device)?;
    let exp = ExpColumns::new(m, &Tensor::f_from_slice(&distinct)?.f_to_device(device)?, degree)?;
    // Columns K of e^M = Uᵀ are rows K of U.
    let leaf = exp.value().f_tr()?.f_contiguous()?.f_set_requires_grad(true)?;
    let purity = purity_argmax_pairs(maps, rows, &local, &leaf, true)?;
    let loss = purity.f_mean(Kind::Float)?.f_neg()?;
    loss.f_backward()?;
    let value = loss.f_double_value(&[])?;
    let g = checked_gradient(&leaf, value)?;
    // M = Sᵀ − S, so dS = M̄ᵀ − M̄ (as columns::orthogonal_gradient).
    let m_bar = exp.gradient(&g.f_tr()?)?;
    let grad = {
        let _guard = tch::no_grad_guard();
        m_bar.f_tr()?.f_sub(&m_bar)?
    };
    opt.update(d.a_raw_mut(), &grad)?;
    Ok(Some(value))
}

/// The gradient that reached `leaf` after the loss `value` was back-propagated:
/// an error when none did (an empty batch) or the loss is not finite.
fn checked_gradient(leaf: &Tensor, value: f64) -> Result<Tensor> {
    let g = leaf.f_grad()?;
    if !g.defined() {
        return Err(Error::invalid("purity_step", "no gradient reached A (empty batch?)"));
    }
    if !value.is_finite() {
        return Err(Error::NonFinite { what: "purity loss".into() });
    }
    Ok(g)
}

/// A C×C by C×w product's rate relative to a C×C by C×C one's (w ≈ C/4).
const COLUMN_EFFICIENCY: f64 = 0.85;
