//! The gradient of a loss through U = exp(·), without differentiating
//! `matrix_exp` by autograd.
//!
//! libtorch back-propagates through `matrix_exp` by exponentiating the 2C×2C
//! block matrix [[Mᵀ, G], [0, Mᵀ]]: 8× the work of each C×C product, at the
//! degree and number of squarings that ‖G‖ + ‖M‖ asks for.
//!
//! Here one evaluation gives both U and the Fréchet derivative that the gradient
//! needs. [`ScaledExp::new`] scales M to N = M/2^s and evaluates Taylor's
//! polynomial T_m(N) with the few products of Bader, Blanes and Casas
//! (the `taylor` module), keeping every value; s squarings give e^M.
//! [`ScaledExp::frechet`] then pushes a direction E through the same products
//! by the product rule, d(XY) = dX·Y + X·dY: two products for each one of the
//! exponential, so exp and its derivative together cost 3 (p + s) C×C
//! products, p the polynomial's.
//!
//! Degree and scaling follow ‖M‖₂ (estimated by power iteration), chosen for the
//! least products such that the derivative's truncation, x^m/m! at x = 1.1·‖N‖₂,
//! is below f32 resolution:
//!
//! | ‖M‖₂ up to | 5.4e-8 | 3.1e-4 | 0.031 | 0.43 | 1.20 | 2.72 |
//! |---|---|---|---|---|---|---|
//! | degree, products p | 1, 0 | 2, 1 | 4, 2 | 8, 3 | 12, 4 | 18, 5 |
//!
//! and above, degree 18 and squarings. So the first step of training (U = I)
//! costs no product at all, the early steps 9 to 12, and the demo's trained
//! ‖M‖₂ ≈ 1.8 costs 15 (Paterson–Stockmeyer's degree 16 cost 18 there, and the
//! commutator series with a fixed scaling before it about 25; benches/RESULTS.md).
//!
//! [`exp`] is the same exponential without the derivative's bookkeeping, at any
//! unit: [`Disentangler`](super::Disentangler) takes U from it in f64 (2^-53).
//!
//! A step whose batch names few channels of an orthogonal U needs only those
//! rows of U; [`columns`](super::columns) computes them and the gradient
//! through them, and the step takes whichever of the two costs fewer products.
//!
//! Checked against f64 autograd (`tests/properties.rs`): within 2e-5 relative
//! (f32 rounding, no worse than f32 autograd's), at ‖M‖₂ from 0 to ~8.
use super::taylor::{reach, Program, DEGREES};
use super::MatrixKind;
use crate::error::Result;
use tch::{Kind, Tensor};

/// At most this many squarings (‖M‖₂ beyond 2^30 · 3 is not a matrix to train).
const MAX_SQUARINGS: i32 = 30;

/// The unit the derivative's truncation must stay below: f32's, 2^-24.
pub(crate) const F32_UNIT: f64 = 5.960464477539063e-8;

/// An estimate of ‖m‖₂ from 8 power iterations on mᵀm (O(C²) each, one read
/// back at the end): a lower bound, tight to a few percent on the matrices seen
/// here; the choice of degree allows 10 % on top.
pub fn norm2_estimate(m: &Tensor) -> Result<f64> {
    let c = m.size()[0];
    let mut v = Tensor::f_ones([c, 1], (m.kind(), m.device()))?.f_div_scalar((c as f64).sqrt())?;
    let mut n = Tensor::f_zeros([], (m.kind(), m.device()))?;
    for _ in 0..8 {
        let w = m.f_tr()?.f_matmul(&m.f_matmul(&v)?)?;
        n = w.f_norm()?;
        // 0/0 stays 0 for m = 0; the value read below is what matters.
        v = w.f_div(&n.f_clamp_min(1e-30)?)?;
    }
    let n = n.f_double_value(&[])?;
    Ok(if n.is_finite() { n.sqrt() } else { f64::INFINITY })
}

/// The cheapest (degree, squarings, products) for ‖M‖₂ ≈ `norm` with the
/// truncation below `unit`: fewest products, the program's plus one per squaring.
fn plan(norm: f64, unit: f64) -> Option<(usize, i32, usize)> {
    let x = norm * 1.1;
    let mut best: Option<(usize, i32, usize)> = None;
    for (m, products) in DEGREES {
        let theta = reach(m, unit);
        let s = if x <= theta { 0 } else { (x / theta).log2().ceil() as i32 };
        if !(0..=MAX_SQUARINGS).contains(&s) {
            continue;
        }
        let cost = products + s as usize;
        // On a tie, fewer squarings: each one doubles the rounding error.
        if best.is_none_or(|b| cost < b.2 || (cost == b.2 && s < b.1)) {
            best = Some((m, s, cost));
        }
    }
    best
}

/// C×C products of exp and its derivative together at ‖M‖₂ ≈ `norm`, 3(p + s);
/// `None` where no plan exists (autograd then).
pub fn dense_products(norm: f64) -> Option<usize> {
    plan(norm, F32_UNIT).map(|(_, _, cost)| 3 * cost)
}

/// exp(M) by Taylor's polynomial on N = M/2^s and s squarings, every value of
/// the program kept: it gives U for the forward pass ([`exp`](Self::exp)) and
/// the Fréchet derivative for the backward ([`frechet`](Self::frechet))
/// without a second exponential.
pub struct ScaledExp {
    program: Program,
    values: Vec<Option<Tensor>>,
    s: i32,
}

impl ScaledExp {
    /// Plans degree and scaling for `m` `[C,C]` and exponentiates; `None` when its
    /// norm is not finite or absurdly large.
    pub fn new(m: &Tensor) -> Result<Option<Self>> {
        Self::with_norm(m, norm2_estimate(m)?)
    }

    /// [`new`](Self::new) with ‖`m`‖₂ ≈ `norm` already estimated
    /// ([`norm2_estimate`]).
    pub fn with_norm(m: &Tensor, norm: f64) -> Result<Option<Self>> {
        let Some((degree, s, _)) = plan(norm, F32_UNIT) else { return Ok(None) };
        let program = Program::taylor(degree).square(s as usize);
        let values = program.run(&m.f_div_scalar(2f64.powi(s))?, true)?;
        Ok(Some(ScaledExp { program, values, s }))
    }

    /// e^M.
    pub fn exp(&self) -> &Tensor {
        self.values[self.program.result()].as_ref().expect("the result is kept")
    }

    /// L(M, G) `[C,C]`: the derivative of e^M in the direction `g`.
    pub fn frechet(&self, g: &Tensor) -> Result<Tensor> {
        self.program.push(&self.values, &g.f_div_scalar(2f64.powi(self.s))?)
    }
}

/// e^`m` `[C,C]` in `m`'s own precision, the truncation below `unit` (2^-53 for
/// f64), keeping no intermediate value; `None` when ‖m‖ is not finite or
/// absurdly large.
pub fn exp(m: &Tensor, unit: f64) -> Result<Option<Tensor>> {
    let _guard = tch::no_grad_guard();
    let Some((degree, s, _)) = plan(norm2_estimate(m)?, unit) else { return Ok(None) };
    let program = Program::taylor(degree).square(s as usize);
    let mut values = program.run(&m.f_div_scalar(2f64.powi(s))?, false)?;
    Ok(values.pop().flatten())
}

/// The exponent M = (S − Sᵀ)ᵀ or Sᵀ whose exponential is Uᵀ, for `kind`.
pub fn adjoint_exponent(kind: MatrixKind, a_raw: &Tensor) -> Result<Tensor> {
    let a_raw = a_raw.f_detach()?.f_to_kind(Kind::Float)?;
    Ok(match kind {
        MatrixKind::Orthogonal => a_raw.f_tr()?.f_sub(&a_raw)?,
        MatrixKind::Invertible => a_raw.f_tr()?,
    })
}

/// dLoss/dA_raw from G = dLoss/dU, given the [`ScaledExp`] of
/// [`adjoint_exponent`] (whose `exp()` is Uᵀ).
pub fn raw_gradient_from(kind: MatrixKind, prepared: &ScaledExp, g: &Tensor) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let x = prepared.frechet(g)?;
    Ok(match kind {
        MatrixKind::Orthogonal => x.f_sub(&x.f_tr()?)?,
        MatrixKind::Invertible => x,
    })
}

/// dLoss/dA_raw from G = dLoss/dU, for U = `kind`.matrix(A_raw): `a_raw`, `g`
/// `[C,C]` → `[C,C]`; `None` when ‖A‖ is not finite or absurdly large (use autograd).
///
/// Orthogonal: U = exp(S − Sᵀ) with X = L((S − Sᵀ)ᵀ, G), so dS = X − Xᵀ.
/// Invertible: U = exp(S), dS = L(Sᵀ, G). Here e^{Mᵀ} = Uᵀ for both.
pub fn raw_gradient(kind: MatrixKind, a_raw: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
    let _guard = tch::no_grad_guard();
    match ScaledExp::new(&adjoint_exponent(kind, a_raw)?)? {
        Some(prepared) => Ok(Some(raw_gradient_from(kind, &prepared, g)?)),
        None => Ok(None),
    }
}
