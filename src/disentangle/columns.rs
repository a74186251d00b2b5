//! e^M on a few of its columns, and the gradient through them: the fast path
//! of an Adam step whose batch names few of the C channels.
//!
//! For orthogonal U the purity loss reads only the rows of U at the batch's
//! channels K (‖Uz‖ = ‖z‖, see
//! [`purity_argmax_pairs`](crate::prototypes::purity_argmax_pairs)), and those
//! rows are the columns K of Uᵀ = e^M. So instead of the whole exponential and
//! its C×C Fréchet derivative, the step needs
//!
//! F = e^M·E_K = Σ_{l ≤ d} M^l·E_K / l!, `[C,w]`, w = |K|,
//!
//! with E_K the identity's columns K, and the gradient of ⟨F̄, F⟩ in M:
//!
//! M̄ = Σ_{n < d} 1/(n+1)! · Σ_{i+l = n} (Mᵀ)^i F̄ · (M^l E_K)ᵀ
//!   = Σ_{i < d} Q_i · V_iᵀ,  Q_i = (Mᵀ)^i F̄,  V_i = Σ_l P_l / (i+l+1)!,  P_l = M^l E_K.
//!
//! P_1 is M's columns K (no product), so the forward costs d − 1 products of
//! C×C by C×w, the Q_i another d − 1, and M̄ one C×(d·w) by (d·w)×C product:
//! (3d − 2)·w/C C×C products in all, against 3(p + s) for the dense path of
//! [`gradient`](super::gradient). Without scaling and squaring the degree grows
//! with ‖M‖₂ (15 at ‖M‖₂ ≈ 1.85, where the dense path needs 15 products), so
//! this pays while w/C is small, below about 0.3 there: 128 pairs at C = 512
//! name about 113 channels, 512 pairs at C = 2048 about 453.
//!
//! The degree is the least d with x^d/d! below 2^-24 at x = 1.1·‖M‖₂, the
//! dense path's criterion for the derivative's truncation. The sum runs without
//! scaling, so terms up to e^x/√x in size cancel to a result of norm 1: the
//! path is used up to ‖M‖₂ = [`MAX_NORM`] only, where that bounds the loss to a
//! factor of about 15 in f32 rounding. Measured against f64 autograd
//! (`tests/properties.rs`' cases, taken to ‖M‖₂ ≈ 3.9): 7e-7 relative at
//! C = 256, below f32 autograd's own 3e-6.
use crate::error::Result;
use tch::Tensor;

/// Largest ‖M‖₂ (estimated) the unscaled series is used at.
pub const MAX_NORM: f64 = 4.0;

/// Highest degree ever planned (x = 4.4 needs 23).
const MAX_DEGREE: usize = 40;

/// The least degree d whose derivative truncation (1.1·`norm`)^d/d! is below
/// 2^-24; `None` beyond [`MAX_NORM`] or for a norm that is not finite.
pub fn degree(norm: f64) -> Option<usize> {
    if !(norm.is_finite() && norm <= MAX_NORM) {
        return None;
    }
    let x = 1.1 * norm.max(0.0);
    let mut term = 1.0;
    for d in 1..=MAX_DEGREE {
        term *= x / d as f64;
        if term < 2f64.powi(-24) {
            return Some(d);
        }
    }
    None
}

/// C×C products (in flops) of the columns path at degree `d` for `columns` of `c`.
pub fn products(d: usize, columns: i64, c: i64) -> f64 {
    (3 * d).saturating_sub(2) as f64 * columns as f64 / c.max(1) as f64
}

/// F = e^M·E_K by Taylor's polynomial of degree d, with the powers P_l = M^l E_K
/// kept for the gradient.
pub struct ExpColumns {
    /// M `[C,C]`.
    m: Tensor,
    /// P_0 … P_{d−1}, stacked `[d,C,w]`.
    powers: Tensor,
    /// F `[C,w]`.
    value: Tensor,
}

impl ExpColumns {
    /// Columns `columns` `[w]` int64 of e^`m` (`m` `[C,C]` float), by Taylor's
    /// polynomial of degree `degree` (at least 1; see [`degree`]).
    pub fn new(m: &Tensor, columns: &Tensor, degree: usize) -> Result<Self> {
        let _guard = tch::no_grad_guard();
        let degree = degree.max(1);
        let c = m.size()[0];
        let w = columns.size()[0];
        let options = (m.kind(), m.device());
        let e = Tensor::f_zeros([c, w], options)?.f_scatter_value(0, &columns.f_view([1, w])?, 1.0)?;
        let mut powers = vec![e, m.f_index_select(1, columns)?];
        for _ in 2..=degree {
            let next = m.f_matmul(&powers[powers.len() - 1])?;
            powers.push(next);
        }
        let mut value = powers[0].f_zeros_like()?;
        // Smallest terms first.
        for l in (0..=degree).rev() {
            value = value.f_add(&powers[l].f_mul_scalar(inverse_factorial(l))?)?;
        }
        powers.truncate(degree);
        Ok(ExpColumns { m: m.shallow_clone(), powers: Tensor::f_stack(&powers, 0)?, value })
    }

    /// F = e^M·E_K `[C,w]`.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// M̄ `[C,C]`: the gradient in M of ⟨`f_bar`, F⟩, `f_bar` `[C,w]` (dLoss/dF).
    pub fn gradient(&self, f_bar: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let s = self.powers.size();
        let (d, c, w) = (s[0], s[1], s[2]);
        let mt = self.m.f_tr()?;
        let mut q = vec![f_bar.f_contiguous()?];
        for _ in 1..d {
            let next = mt.f_matmul(&q[q.len() - 1])?;
            q.push(next);
        }
        // V = H·P over the stack, H[i][l] = 1/(i+l+1)! for i + l < d.
        let mut h = vec![0f64; (d * d) as usize];
        for i in 0..d {
            for l in 0..d - i {
                h[(i * d + l) as usize] = inverse_factorial((i + l + 1) as usize);
            }
        }
        let h = Tensor::f_from_slice(&h)?.f_view([d, d])?.f_to(self.powers.device())?.f_to_kind(self.powers.kind())?;
        let v = h.f_matmul(&self.powers.f_view([d, c * w])?)?.f_view([d, c, w])?;
        // Σ_i Q_i V_iᵀ as one product of [C, d·w] by [d·w, C].
        let side = |t: &Tensor| -> Result<Tensor> { Ok(t.f_permute([1, 0, 2])?.f_reshape([c, d * w])?) };
        Ok(side(&Tensor::f_stack(&q, 0)?)?.f_matmul(&side(&v)?.f_tr()?)?)
    }
}

/// dLoss/dA_raw for orthogonal U = exp(A_raw − A_rawᵀ) from the gradient in
/// rows `rows` `[w]` int64 of U, `g_rows` `[w,C]`, through those rows alone;
/// `None` beyond [`MAX_NORM`] (use [`gradient`](super::gradient)). Also the rows.
pub fn orthogonal_gradient(a_raw: &Tensor, rows: &Tensor, g_rows: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
    let _guard = tch::no_grad_guard();
    let m = super::gradient::adjoint_exponent(super::MatrixKind::Orthogonal, a_raw)?;
    let Some(d) = degree(super::gradient::norm2_estimate(&m)?) else { return Ok(None) };
    let exp = ExpColumns::new(&m, rows, d)?;
    let m_bar = exp.gradient(&g_rows.f_tr()?)?;
    Ok(Some((m_bar.f_tr()?.f_sub(&m_bar)?, exp.value().f_tr()?)))
}

/// 1/k!, in f64.
fn inverse_factorial(k: usize) -> f64 {
    (1..=k).fold(1.0, |c, i| c / i as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn degrees_follow_the_dense_criterion() {
        assert_eq!(degree(0.0), Some(1));
        // x = 2.035: 2.035^14/14! = 2.5e-7 > 2^-24 > 2.035^15/15! = 3.4e-8.
        assert_eq!(degree(1.85), Some(15));
        assert_eq!(degree(4.1), None);
        assert_eq!(degree(f64::NAN), None);
    }

    #[test]
    fn columns_and_gradient_match_the_whole_exponential() {
        let c = 12;
        let m = Tensor::randn([c, c], (Kind::Double, tch::Device::Cpu)) * 0.3;
        let cols = Tensor::from_slice(&[3i64, 7, 0]);
        let want = m.linalg_matrix_exp().index_select(1, &cols);
        let got = ExpColumns::new(&m, &cols, 30).unwrap();
        assert!((got.value() - &want).abs().max().double_value(&[]) < 1e-12);
        // The gradient by autograd through matrix_exp.
        let f_bar = Tensor::randn([c, 3], (Kind::Double, tch::Device::Cpu));
        let leaf = m.detach().set_requires_grad(true);
        (leaf.linalg_matrix_exp().index_select(1, &cols) * &f_bar).sum(Kind::Double).backward();
        let diff = (got.gradient(&f_bar).unwrap() - leaf.grad()).abs().max().double_value(&[]);
        assert!(diff < 1e-12, "{diff:e}");
    }
}
