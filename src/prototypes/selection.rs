//! Exact top-m prototype selection over a whole set of channel activations.
//!
//! The reference code streams batches through `topk` and, on a short last batch,
//! maps some positions to the wrong image. Here selection sees the whole [N,C]
//! activation matrix at once (the bank keeps it), so it is exact by construction:
//! largest first, ties to the lower image index (a stable sort).
use crate::check;
use crate::error::{Error, Result};
use tch::Tensor;

/// Top-m images per channel: `activation` [N,C] float → int64 [C,m] image indices,
/// largest activation first, ties broken towards the lower index.
///
/// Errors when `m` is 0 or larger than N, and when an activation is NaN (a NaN would
/// otherwise sort first and become everybody's prototype).
pub fn top_prototypes(activation: &Tensor, m: i64) -> Result<Tensor> {
    check::dims(activation, "activation", 2, "[N,C]")?;
    check::float(activation, "activation")?;
    let n = activation.size()[0];
    if m < 1 || m > n {
        return Err(Error::invalid(
            "top_prototypes",
            format!("m = {m} prototypes asked for, but the set has {n} images; use 1 <= m <= {n}"),
        ));
    }
    check::finite(activation, "activation")?;
    let (_, order) = activation.f_tr()?.f_sort_stable(true, 1, true)?;
    Ok(order.f_narrow(1, 0, m)?.f_contiguous()?)
}
