//! Exact top-m prototype selection over a whole set of channel activations.
//!
//! The reference code streams batches through `topk` and, on a short last batch,
//! maps some positions to the wrong image. Here [`top_prototypes`] ranks a whole
//! `[N,C]` activation matrix exactly: largest first, ties to the lower image
//! index. A bank ranks its rows a slice at a time through it and merges the
//! slices' results ([`super::StreamingTop`]), which is exact in the same order.
//!
//! Cost: a `topk` of m + 8 candidates per channel, ordered by (value, index), is
//! O(N·C) and needs no `[C,N]` index array (a full sort of ImageNet's 1.28M × 512
//! sums would allocate about 8 GB). When ties at the m-th value may reach past
//! the candidates, that channel alone falls back to a stable sort of its column.
use crate::check;
use crate::error::{Error, Result};
use tch::Tensor;

/// Top-m images per channel: `activation` `[N,C]` float → int64 `[C,m]` image indices,
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
    let act = activation.f_tr()?; // [C,N]
    let k = (m + SLACK).min(n);
    let (values, index) = act.f_topk(k, 1, true, true)?; // [C,k], largest first, ties unordered
                                                         // Order the candidates by value (descending), then index (ascending): sort by
                                                         // index, then stable-sort by value.
    let (index, by_index) = index.f_sort(1, false)?;
    let values = values.f_gather(1, &by_index, false)?;
    let (sorted, by_value) = values.f_sort_stable(true, 1, true)?;
    let top = index.f_gather(1, &by_value, false)?.f_narrow(1, 0, m)?.f_contiguous()?;
    if k == n {
        return Ok(top); // every image was a candidate
    }
    // Exact unless the m-th value also ends the candidate list: then equal values
    // may lie beyond it, with lower indices.
    let boundary = sorted.f_narrow(1, m - 1, 1)?.f_eq_tensor(&sorted.f_narrow(1, k - 1, 1)?)?.f_squeeze_dim(1)?;
    let rows = Vec::<i64>::try_from(boundary.f_nonzero()?.f_reshape([-1])?)?;
    for c in rows {
        let (_, order) = act.f_get(c)?.f_sort_stable(true, 0, true)?;
        top.f_get(c)?.f_copy_(&order.f_narrow(0, 0, m)?)?;
    }
    Ok(top)
}

/// Candidates beyond m taken by `topk` before ordering ties.
const SLACK: i64 = 8;
