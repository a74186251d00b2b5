//! Feature maps Z `[B,C,H,W]` as the backbone leaves them, and the two things EPIC
//! does to them before anything else: the per-pixel change of basis Ẑ = U·Z
//! ([`rotate`]) and the spatial sum that ranks images per channel
//! ([`channel_activation`]).
//!
//! Because Σ_hw(U·z) = U·Σ_hw z, the spatial sums of a whole training set, taken
//! once, rank the images under any later U ([`rotate_sums`]): this is what makes
//! re-selecting prototypes cheap. The `bank` keeps those sums for a whole data
//! set from one backbone pass (in memory, or on disk above a bound: `sums`); the
//! `memo` keeps the full maps of the current prototypes.
mod bank;
mod cache;
mod devices;
mod memo;
mod pass;
mod shard;
mod shrink;
mod stored;
mod sums;

pub use bank::{cache_key, extract, extract_into, Bank, BatchSize, ExtractOptions, ExtractReport};
pub use devices::{host_devices, set_host_devices};
pub use memo::FeatureMemo;
pub use pass::{backbone_throughput, decode_pass, forward_pass, PassReport};
pub use shard::{bank_status, set_shard, shard, shard_done, BankLayout, BankStatus, Shard};
pub use shrink::{is_out_of_memory, ShrinkingBatch};

use crate::check;
use crate::error::Result;
use tch::Tensor;

/// Ẑ = U·Z at every pixel: `features` `[B,C,H,W]` f32, `u` `[C,C]` → `[B,C,H,W]`.
///
/// Output channel i at pixel (h,w) is Σ_j `U[i,j]·Z[j,h,w]`, as the reference's
/// `einsum("ij,bjhw->bihw")`.
pub fn rotate(features: &Tensor, u: &Tensor) -> Result<Tensor> {
    check::dims(features, "features", 4, "[B,C,H,W]")?;
    check::float(features, "features")?;
    let c = check::square(u, "u")?;
    check::same_device(features, u, "rotate(features, u)")?;
    let s = features.size();
    if s[1] != c {
        return Err(crate::Error::Shape {
            what: "features".into(),
            expected: format!("[B,{c},H,W] to match u [{c},{c}]"),
            got: s,
        });
    }
    Ok(Tensor::f_einsum("ij,bjhw->bihw", &[u, features], None::<i64>)?)
}

/// Spatial sum per channel: `features` `[B,C,H,W]` → `[B,C]`, same dtype.
///
/// This is the activation by which prototypes are ranked.
pub fn channel_activation(features: &Tensor) -> Result<Tensor> {
    check::dims(features, "features", 4, "[B,C,H,W]")?;
    check::float(features, "features")?;
    Ok(features.f_sum_dim_intlist([2i64, 3].as_slice(), false, None)?)
}

/// Spatial sums under U from spatial sums without it: `sums` `[N,C]`, `u` `[C,C]` → `[N,C]` = sums·Uᵀ.
///
/// Equals `channel_activation(rotate(z, u))` up to float rounding, without the maps.
pub fn rotate_sums(sums: &Tensor, u: &Tensor) -> Result<Tensor> {
    check::dims(sums, "sums", 2, "[N,C]")?;
    check::float(sums, "sums")?;
    let c = check::square(u, "u")?;
    check::same_device(sums, u, "rotate_sums(sums, u)")?;
    if sums.size()[1] != c {
        return Err(crate::Error::Shape {
            what: "sums".into(),
            expected: format!("[N,{c}] to match u [{c},{c}]"),
            got: sums.size(),
        });
    }
    Ok(sums.f_matmul(&u.f_tr()?)?)
}
