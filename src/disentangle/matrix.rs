//! The disentangling matrix U and its two parametrisations.
//!
//! Both start from a raw square matrix A (zeros by default, so U = I and the first
//! prototypes are the network's own):
//! - **orthogonal**: U = exp(A − Aᵀ), U⁻¹ = Uᵀ;
//! - **invertible**: U = exp(A), U⁻¹ = exp(−A).
//!
//! The exponential runs in A's dtype (f32), with libtorch's kernel, as the
//! reference does, so U agrees with the reference's bit for bit. Its rounding error
//! grows with C and ‖A‖. Measured ‖UᵀU − I‖_max for A ~ N(0, s²/C) (worst of 20
//! draws, libtorch 2.13, CPU):
//!
//! | C   | s = 0.3 | s = 0.5 | s = 1.0 |
//! |-----|---------|---------|---------|
//! | 16  | 9.5e-7  | 1.6e-6  | 2.2e-6  |
//! | 128 | 4.9e-6  | 1.0e-5  | 1.3e-5  |
//! | 512 | 1.2e-5  | 2.4e-5  | 3.3e-5  |
//!
//! Since the modified head uses U⁻¹ = Uᵀ, this error is also the scale of the
//! logit change (1.4e-4 measured on the demo's C = 1280). So [`Disentangler`]
//! evaluates U in f64 (Taylor's polynomial with the fewest products,
//! [`gradient::exp`](super::gradient::exp)) and rounds it to f32 (U, U⁻¹,
//! selection, explanations, saved files), while the free functions follow A's dtype: with an f32 A they
//! reproduce the reference bit for bit, with an f64 A they compute in f64
//! (error < 1e-12 at C = 512).
//!
//! The reference code calls the raw parameter `A_raw` and keeps it in a state dict
//! under that key; [`Disentangler::a_raw`] is the same tensor.
use crate::check;
use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// Which parametrisation of U to use (`matrix.type` in the reference's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatrixKind {
    /// U = exp(A − Aᵀ): a rotation; purity-preserving norms, U⁻¹ = Uᵀ.
    Orthogonal,
    /// U = exp(A): any invertible matrix with positive determinant; U⁻¹ = exp(−A).
    Invertible,
}

impl MatrixKind {
    /// The name used in configs and file names: `orthogonal` or `invertible`.
    pub fn name(self) -> &'static str {
        match self {
            MatrixKind::Orthogonal => "orthogonal",
            MatrixKind::Invertible => "invertible",
        }
    }

    /// U from the raw matrix `a_raw` `[C,C]` float → `[C,C]`.
    pub fn matrix(self, a_raw: &Tensor) -> Result<Tensor> {
        match self {
            MatrixKind::Orthogonal => orthogonal_matrix(a_raw),
            MatrixKind::Invertible => invertible_matrix(a_raw),
        }
    }
}

impl fmt::Display for MatrixKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MatrixKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "orthogonal" => Ok(MatrixKind::Orthogonal),
            "invertible" => Ok(MatrixKind::Invertible),
            other => Err(Error::invalid(
                "matrix type",
                format!("unknown matrix type {other:?}; use \"orthogonal\" or \"invertible\""),
            )),
        }
    }
}

/// Orthogonal U = exp(A − Aᵀ): `a_raw` `[C,C]` float → `[C,C]`, UᵀU = I.
pub fn orthogonal_matrix(a_raw: &Tensor) -> Result<Tensor> {
    check::square(a_raw, "a_raw")?;
    check::float(a_raw, "a_raw")?;
    Ok(a_raw.f_sub(&a_raw.f_tr()?)?.f_linalg_matrix_exp()?)
}

/// Invertible U = exp(A): `a_raw` `[C,C]` float → `[C,C]`, U⁻¹ = exp(−A).
pub fn invertible_matrix(a_raw: &Tensor) -> Result<Tensor> {
    check::square(a_raw, "a_raw")?;
    check::float(a_raw, "a_raw")?;
    Ok(a_raw.f_linalg_matrix_exp()?)
}

/// e^`m` for an f64 `m`: Taylor's polynomial to f64's unit with the fewest
/// products ([`gradient::exp`](super::gradient::exp)), or libtorch's
/// `matrix_exp` where ‖m‖ is beyond any plan.
fn exp64(m: &Tensor) -> Result<Tensor> {
    match super::gradient::exp(m, F64_UNIT)? {
        Some(e) => Ok(e),
        None => Ok(m.f_linalg_matrix_exp()?),
    }
}

/// f64's unit roundoff, 2^-53.
const F64_UNIT: f64 = 1.1102230246251565e-16;

/// The learned change of basis: a parametrisation and its raw matrix A `[C,C]` f32.
///
/// U and U⁻¹ are computed once per value of A and kept (an f64 exponential at
/// C = 2048 takes about a second on a CPU; explanations and grids ask for U
/// often); any change to A through the optimiser drops them. The exponential
/// is [`gradient::exp`](super::gradient::exp) to f64's unit: at C = 1280 it
/// takes 0.2 to 0.3 s where libtorch's f64 `matrix_exp` takes 0.28 to 0.45 s.
#[derive(Debug)]
pub struct Disentangler {
    kind: MatrixKind,
    a_raw: Tensor,
    cache: Mutex<Cached>,
}

/// U and U⁻¹ of the current A, once computed.
#[derive(Debug, Default)]
struct Cached {
    matrix: Option<Tensor>,
    inverse: Option<Tensor>,
}

/// A copy of `t` with its own storage.
fn deep_copy(t: &Tensor) -> Result<Tensor> {
    let mut out = t.f_empty_like()?;
    out.f_copy_(t)?;
    Ok(out)
}

impl Disentangler {
    /// U = I: A = 0 `[C,C]` f32 on `device`.
    pub fn identity(kind: MatrixKind, channels: i64, device: Device) -> Result<Self> {
        if channels < 1 {
            return Err(Error::invalid("channels", format!("{channels}; must be at least 1")));
        }
        let a_raw = Tensor::f_zeros([channels, channels], (Kind::Float, device))?;
        Ok(Disentangler::new(kind, a_raw))
    }

    /// From a raw matrix A `[C,C]` float (for example a saved `A_raw`); copied, as f32.
    pub fn from_raw(kind: MatrixKind, a_raw: &Tensor) -> Result<Self> {
        check::square(a_raw, "a_raw")?;
        check::float(a_raw, "a_raw")?;
        check::finite(a_raw, "a_raw")?;
        let a_raw = deep_copy(&a_raw.f_detach()?.f_to_kind(Kind::Float)?)?;
        Ok(Disentangler::new(kind, a_raw))
    }

    fn new(kind: MatrixKind, a_raw: Tensor) -> Self {
        Disentangler { kind, a_raw, cache: Mutex::new(Cached::default()) }
    }

    /// The kept value of `pick`, or `compute`'s, kept.
    fn cached(
        &self,
        pick: fn(&mut Cached) -> &mut Option<Tensor>,
        compute: impl Fn() -> Result<Tensor>,
    ) -> Result<Tensor> {
        if let Ok(mut c) = self.cache.lock() {
            if let Some(t) = pick(&mut c) {
                return Ok(t.shallow_clone());
            }
        }
        let t = compute()?;
        if let Ok(mut c) = self.cache.lock() {
            *pick(&mut c) = Some(t.shallow_clone());
        }
        Ok(t)
    }

    /// The parametrisation.
    pub fn kind(&self) -> MatrixKind {
        self.kind
    }

    /// C, the number of channels U acts on.
    pub fn channels(&self) -> i64 {
        self.a_raw.size()[0]
    }

    /// The device A lives on.
    pub fn device(&self) -> Device {
        self.a_raw.device()
    }

    /// The raw parameter A `[C,C]` f32 (the reference's `A_raw`).
    pub fn a_raw(&self) -> &Tensor {
        &self.a_raw
    }

    /// A copy of A `[C,C]` f32 that later updates do not touch.
    pub fn a_raw_copy(&self) -> Result<Tensor> {
        deep_copy(&self.a_raw)
    }

    /// U `[C,C]` f32.
    ///
    /// Evaluated in f64 and rounded to f32, so that Uᵀ (orthogonal) is U⁻¹ to f32
    /// rounding at any C: the modified head A·Uᵀ then keeps logits to ~1e-6 where
    /// an f32 exponential loses 1e-4 at C = 1280 (see the module docs). The
    /// training loss keeps the f32 exponential of the reference (speed; its
    /// gradient direction is unaffected).
    pub fn matrix(&self) -> Result<Tensor> {
        self.cached(
            |c| &mut c.matrix,
            || {
                let a = self.a_raw.f_to_kind(Kind::Double)?;
                let exponent = match self.kind {
                    MatrixKind::Orthogonal => a.f_sub(&a.f_tr()?)?,
                    MatrixKind::Invertible => a,
                };
                Ok(exp64(&exponent)?.f_to_kind(Kind::Float)?)
            },
        )
    }

    /// U⁻¹ `[C,C]` f32, in closed form: Uᵀ (orthogonal) or exp(−A) (invertible), in f64.
    pub fn inverse(&self) -> Result<Tensor> {
        match self.kind {
            MatrixKind::Orthogonal => Ok(self.matrix()?.f_tr()?),
            MatrixKind::Invertible => self.cached(
                |c| &mut c.inverse,
                || Ok(exp64(&self.a_raw.f_to_kind(Kind::Double)?.f_neg()?)?.f_to_kind(Kind::Float)?),
            ),
        }
    }

    /// Moves A to `device`.
    pub fn to_device(&self, device: Device) -> Result<Self> {
        Ok(Disentangler::new(self.kind, self.a_raw.f_to_device(device)?))
    }

    /// Mutable A, for optimisers: callers must keep it `[C,C]` f32.
    pub(crate) fn a_raw_mut(&mut self) -> &mut Tensor {
        if let Ok(mut c) = self.cache.lock() {
            *c = Cached::default();
        }
        &mut self.a_raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// U and U⁻¹ of a disentangler (our f64 Taylor) against libtorch's f64
    /// `matrix_exp`, rounded to f32 alike: at most one or two f32 ulps apart.
    #[test]
    fn u_and_its_inverse_equal_libtorchs_f64_exponential_to_f32_rounding() {
        let c = 96;
        let base = Tensor::randn([c, c], (Kind::Double, Device::Cpu)) / (c as f64).sqrt();
        for kind in [MatrixKind::Orthogonal, MatrixKind::Invertible] {
            for scale in [0.0, 1e-4, 0.02, 0.2, 0.6, 1.5, 4.0] {
                let a = (&base * scale).to_kind(Kind::Float);
                let d = Disentangler::from_raw(kind, &a).unwrap();
                let a64 = a.to_kind(Kind::Double);
                let exponent = match kind {
                    MatrixKind::Orthogonal => &a64 - a64.tr(),
                    MatrixKind::Invertible => a64.shallow_clone(),
                };
                let want = exponent.linalg_matrix_exp();
                let err = (d.matrix().unwrap().to_kind(Kind::Double) - &want).abs().max().double_value(&[]);
                let size = want.abs().max().double_value(&[]);
                assert!(err <= 1.2e-7 * size, "{kind} at {scale}: U off by {err:e} (max |U| {size})");
                let inv = (-&exponent).linalg_matrix_exp();
                let err = (d.inverse().unwrap().to_kind(Kind::Double) - &inv).abs().max().double_value(&[]);
                let size = inv.abs().max().double_value(&[]);
                assert!(err <= 1.2e-7 * size, "{kind} at {scale}: U⁻¹ off by {err:e}");
            }
        }
    }
}
