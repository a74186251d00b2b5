//! Argument checks shared by the public entry points of the tensor math.
//!
//! Each check returns an [`Error`] that names the argument (`what`) and the
//! expectation, so that libtorch never sees a malformed call.
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// `t` has exactly `dims` dimensions; `expected` spells them out for the message ("`[B,C,H,W]`").
pub(crate) fn dims(t: &Tensor, what: &str, dims: usize, expected: &str) -> Result<()> {
    if t.dim() != dims {
        return Err(Error::Shape { what: what.into(), expected: expected.into(), got: t.size() });
    }
    Ok(())
}

/// `t` holds floating-point values.
pub(crate) fn float(t: &Tensor, what: &str) -> Result<()> {
    if !t.is_floating_point() {
        return Err(Error::Kind { what: what.into(), expected: "floating-point", got: t.kind() });
    }
    Ok(())
}

/// `t` holds integers; returns them as int64 (the dtype libtorch indexes with).
pub(crate) fn indices(t: &Tensor, what: &str) -> Result<Tensor> {
    match t.kind() {
        Kind::Int64 => Ok(t.shallow_clone()),
        Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8 => Ok(t.f_to_kind(Kind::Int64)?),
        got => Err(Error::Kind { what: what.into(), expected: "integer", got }),
    }
}

/// Every entry of the integer tensor `t` lies in `0..bound`.
pub(crate) fn in_range(t: &Tensor, what: &str, bound: i64) -> Result<()> {
    if t.numel() == 0 {
        return Ok(());
    }
    let lo = t.f_min()?.f_int64_value(&[])?;
    let hi = t.f_max()?.f_int64_value(&[])?;
    if lo < 0 {
        return Err(Error::OutOfRange { what: what.into(), index: lo, bound });
    }
    if hi >= bound {
        return Err(Error::OutOfRange { what: what.into(), index: hi, bound });
    }
    Ok(())
}

/// `a` and `b` are on the same device.
pub(crate) fn same_device(a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    if a.device() != b.device() {
        return Err(Error::Device { what: what.into(), a: a.device(), b: b.device() });
    }
    Ok(())
}

/// Every value of `t` is finite; otherwise the error says where the first NaN or
/// infinity is and how many there are.
pub(crate) fn finite(t: &Tensor, what: &str) -> Result<()> {
    if t.numel() == 0 || bool::try_from(t.f_isfinite()?.f_all()?)? {
        return Ok(());
    }
    let bad = t.f_isfinite()?.f_logical_not()?;
    let count = bad.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    let at = Vec::<i64>::try_from(bad.f_nonzero()?.f_get(0)?.f_to_device(tch::Device::Cpu)?)?;
    let value = t.f_index(&at.iter().map(|&i| Some(Tensor::from(i))).collect::<Vec<_>>())?.f_double_value(&[])?;
    Err(Error::NonFiniteAt { what: what.into(), at, value, count })
}

/// `C` of a square `[C,C]` matrix.
pub(crate) fn square(t: &Tensor, what: &str) -> Result<i64> {
    let s = t.size();
    if s.len() != 2 || s[0] != s[1] {
        return Err(Error::Shape { what: what.into(), expected: "[C,C]".into(), got: s });
    }
    Ok(s[0])
}
