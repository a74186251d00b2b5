//! The gradient of a loss through U = exp(·), without differentiating
//! `matrix_exp` by autograd.
//!
//! libtorch back-propagates through `matrix_exp` by exponentiating the 2C×2C
//! block matrix [[Mᵀ, G], [0, Mᵀ]]: 8× the work of each C×C product, at the
//! degree and number of squarings that ‖G‖ + ‖M‖ asks for.
//!
//! Here one evaluation gives both U and the Fréchet derivative that the gradient
//! needs. [`ScaledExp::new`] scales M to N = M/2^s and evaluates the Taylor
//! polynomial T_m(N) by Paterson–Stockmeyer (powers N … N^q, then Horner in N^q),
//! keeping every product; s squarings give e^M. [`ScaledExp::frechet`] then
//! pushes a direction E through the same products by the product rule,
//! d(XY) = dX·Y + X·dY, and through the squarings, d(X²) = X·dX + dX·X: two
//! products for each one of the exponential, so exp and its derivative together
//! cost 3 (p + s) C×C products, p the polynomial's.
//!
//! Degree and scaling follow ‖M‖₂ (estimated by power iteration), chosen for the
//! least products such that the derivative's truncation, x^m/m! at x = ‖N‖₂, is
//! below f32 resolution:
//!
//! | ‖M‖₂ up to | 0 | 0.035 | 0.19 | 0.65 | 1.3 | 2.4 | 3.6 |
//! |---|---|---|---|---|---|---|---|
//! | degree, products p | 1, 0 | 4, 2 | 6, 3 | 9, 4 | 12, 5 | 16, 6 | 20, 7 |
//!
//! and above, degree 25 (to 5.2) and then squarings. So the first step of
//! training (U = I) costs no product at all, the early steps 9 to 12, and the
//! demo's trained ‖M‖₂ ≈ 1.8 costs 18. Measured at C = 1280 in units of one
//! C×C product: 9.6, 12.1 and 20.8 at ‖M‖₂ = 0.1, 0.5 and 1.8, against 18.6,
//! 24.3 and 29.9 for the commutator series with a fixed scaling that this
//! replaced (benches/RESULTS.md).
//!
//! A step whose batch names few channels of an orthogonal U needs only those
//! rows of U; [`columns`](super::columns) computes them and the gradient
//! through them, and the step takes whichever of the two costs fewer products.
//!
//! Checked against f64 autograd (`tests/properties.rs`): within 2e-5 relative
//! (f32 rounding, no worse than f32 autograd's), at ‖M‖₂ from 0 to ~8.
use super::MatrixKind;
use crate::error::Result;
use tch::{Kind, Tensor};

/// Largest ‖N‖₂ at which Taylor's degree m keeps the derivative's truncation
/// x^m/m! below 2^-24, for the degrees whose Paterson–Stockmeyer cost is least
/// for their reach: (degree, powers q, θ).
const DEGREES: [(usize, usize, f64); 8] = [
    (1, 1, 0.0),
    (4, 2, 0.0346),
    (6, 3, 0.187),
    (9, 3, 0.654),
    (12, 4, 1.32),
    (16, 4, 2.41),
    (20, 5, 3.61),
    (25, 5, 5.1),
];

/// At most this many squarings (‖M‖₂ beyond 2^30 · 5 is not a matrix to train).
const MAX_SQUARINGS: i32 = 30;

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

/// The cheapest (degree, powers, squarings) for ‖M‖₂ ≈ `norm`: fewest products
/// 3·(p + s), with p the Paterson–Stockmeyer products of the degree.
fn plan(norm: f64) -> Option<(usize, usize, i32)> {
    let x = norm * 1.1;
    let mut best: Option<(usize, usize, i32, usize)> = None;
    for &(m, q, theta) in &DEGREES {
        let s = if x <= theta {
            0
        } else if theta == 0.0 {
            continue;
        } else {
            (x / theta).log2().ceil() as i32
        };
        if s > MAX_SQUARINGS {
            continue;
        }
        let cost = products(m, q) + s as usize;
        // On a tie, fewer squarings: each one doubles the rounding error.
        if best.is_none_or(|b| cost < b.3 || (cost == b.3 && s < b.2)) {
            best = Some((m, q, s, cost));
        }
    }
    best.map(|(m, q, s, _)| (m, q, s))
}

/// C×C products of exp and its derivative together at ‖M‖₂ ≈ `norm`, 3(p + s);
/// `None` where no plan exists (autograd then).
pub fn dense_products(norm: f64) -> Option<usize> {
    plan(norm).map(|(m, q, s)| 3 * (products(m, q) + s as usize))
}

/// C×C products of Paterson–Stockmeyer for degree `m` with powers N … N^`q`.
fn products(m: usize, q: usize) -> usize {
    let r = m / q;
    (q - 1) + if m.is_multiple_of(q) { r - 1 } else { r }
}

/// 1/k!.
fn taylor(k: usize) -> f64 {
    (1..=k).fold(1.0, |c, i| c / i as f64)
}

/// exp(M) by Taylor's polynomial on M/2^s and s squarings, with every product
/// kept: it gives U for the forward pass ([`exp`](Self::exp)) and the Fréchet
/// derivative for the backward ([`frechet`](Self::frechet)) without a second
/// exponential.
pub struct ScaledExp {
    /// N, N², …, N^q.
    powers: Vec<Tensor>,
    /// Taylor's degree m.
    degree: usize,
    /// H_1 … H_r of Horner's rule in N^q, T = H_0 = B_0 + N^q·H_1 (H_j = B_j + N^q·H_{j+1}).
    horner: Vec<Tensor>,
    /// X_0 = T(N), X_j = X_{j−1}² for j < s.
    squares: Vec<Tensor>,
    s: i32,
    /// e^M = X_{s−1}² (X_0 when s = 0).
    exp: Tensor,
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
        let Some((degree, q, s)) = plan(norm) else { return Ok(None) };
        let n = m.f_div_scalar(2f64.powi(s))?;
        let mut powers = vec![n];
        for k in 1..q {
            let next = powers[k - 1].f_matmul(&powers[0])?;
            powers.push(next);
        }
        let mut exp = ScaledExp { powers, degree, horner: Vec::new(), squares: Vec::new(), s, exp: Tensor::new() };
        // Horner from the top block down; each H_{j+1} is kept for the derivative.
        let top = exp.blocks() - 1;
        let mut h = exp.block(top, |k| exp.identity_or_power(k))?;
        for j in (0..top).rev() {
            let product = exp.powers[q - 1].f_matmul(&h)?;
            let b = exp.block(j, |k| exp.identity_or_power(k))?;
            exp.horner.push(h);
            h = b.f_add(&product)?;
        }
        exp.horner.reverse();
        for _ in 0..s {
            let next = h.f_matmul(&h)?;
            exp.squares.push(h);
            h = next;
        }
        exp.exp = h;
        Ok(Some(exp))
    }

    /// e^M.
    pub fn exp(&self) -> &Tensor {
        &self.exp
    }

    /// Blocks B_0 … B_r of degree < q each, r = ⌊m/q⌋ (a last block of degree 0
    /// is folded into the one below).
    fn blocks(&self) -> usize {
        let q = self.powers.len();
        let r = self.degree / q;
        if self.degree.is_multiple_of(q) && r > 0 {
            r
        } else {
            r + 1
        }
    }

    /// Σ_i c_{qj+i} f(i) for i < q, with c_k = 1/k! up to the degree; and, when
    /// the top block is c_m·I alone, its term c_m·N^q in the block below.
    fn block(&self, j: usize, f: impl Fn(usize) -> Result<Option<Tensor>>) -> Result<Tensor> {
        let q = self.powers.len();
        let folded = self.degree.is_multiple_of(q) && j + 1 == self.blocks();
        let last = if folded { q } else { q - 1 };
        let mut sum: Option<Tensor> = None;
        for i in 0..=last {
            let k = q * j + i;
            if k > self.degree {
                break;
            }
            if let Some(t) = f(i)? {
                let term = t.f_mul_scalar(taylor(k))?;
                sum = Some(match sum {
                    None => term,
                    Some(acc) => acc.f_add(&term)?,
                });
            }
        }
        Ok(match sum {
            Some(t) => t,
            None => self.powers[0].f_zeros_like()?,
        })
    }

    /// I for i = 0, N^i otherwise.
    fn identity_or_power(&self, i: usize) -> Result<Option<Tensor>> {
        let n = &self.powers[0];
        Ok(Some(match i {
            0 => Tensor::f_eye(n.size()[0], (n.kind(), n.device()))?,
            i => self.powers[i - 1].shallow_clone(),
        }))
    }

    /// L(M, G) `[C,C]`: the derivative of e^M in the direction `g`.
    pub fn frechet(&self, g: &Tensor) -> Result<Tensor> {
        // Directions of N, N², …: dN = G/2^s, d(N^k) = d(N^{k−1})·N + N^{k−1}·dN.
        let e = g.f_div_scalar(2f64.powi(self.s))?;
        let mut dpowers = vec![e];
        for k in 1..self.powers.len() {
            let d = dpowers[k - 1].f_matmul(&self.powers[0])?.f_add(&self.powers[k - 1].f_matmul(&dpowers[0])?)?;
            dpowers.push(d);
        }
        // dH_j = dB_j + d(N^q)·H_{j+1} + N^q·dH_{j+1}.
        let top = self.blocks() - 1;
        let q = self.powers.len();
        let db = |j: usize| self.block(j, |i| Ok(if i == 0 { None } else { Some(dpowers[i - 1].shallow_clone()) }));
        let mut dx = db(top)?;
        for j in (0..top).rev() {
            let h = &self.horner[j];
            dx = db(j)?.f_add(&dpowers[q - 1].f_matmul(h)?)?.f_add(&self.powers[q - 1].f_matmul(&dx)?)?;
        }
        // d(X²) = X·dX + dX·X through the squarings.
        for x in &self.squares {
            dx = x.f_matmul(&dx)?.f_add(&dx.f_matmul(x)?)?;
        }
        Ok(dx)
    }
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
