//! Prototypes of a feature bank under U: the top-m images of every channel by
//! activation sums·Uᵀ, over the images that decoded, with the last selection
//! kept per fingerprint of U (explanations and prototype grids ask once per
//! channel or image; the product is O(N·C²)).
use crate::features::Bank;
use crate::io::Fingerprint;
use tch::Tensor;

/// A fingerprint of U's values (or of "no U"), for the selection cache.
fn u_fingerprint(u: Option<&Tensor>) -> crate::Result<String> {
    let mut h = Fingerprint::new();
    if let Some(u) = u {
        for d in u.size() {
            h.add_u64(d as u64);
        }
        h.add_str(&format!("{:?}", u.kind()));
        h.add_tensor_bytes(u)?;
    }
    Ok(h.hex())
}

impl Bank {
    /// Top-m prototypes per channel under U, over the images that decoded:
    /// int64 `[C,m]` data-set indices, largest activation first.
    ///
    /// The last selection is kept: asking again under the same U (same values) for
    /// m or fewer prototypes costs a fingerprint of U, not the O(N·C²) product
    /// (explanations and prototype grids ask once per channel or image).
    pub fn top_prototypes(&self, u: Option<&Tensor>, m: i64) -> crate::Result<Tensor> {
        let key = u_fingerprint(u)?;
        if let Ok(cache) = self.selection.lock() {
            if let Some((k, protos)) = cache.as_ref() {
                if *k == key && m >= 1 && protos.size()[1] >= m {
                    return Ok(protos.f_narrow(1, 0, m)?.f_detach_copy()?);
                }
            }
        }
        let protos = self.select(u, m)?;
        if let Ok(mut cache) = self.selection.lock() {
            *cache = Some((key, protos.shallow_clone()));
        }
        // The caller's own copy: nothing it does reaches the cache.
        Ok(protos.f_detach_copy()?)
    }

    /// Negative prototypes: per channel, the `m` images of smallest activation
    /// under `u` (the paper's top-m of −activation), `[C,m]` indices, not cached.
    pub fn top_negative_prototypes(&self, u: &Tensor, m: i64) -> crate::Result<Tensor> {
        self.select_from(self.activations(Some(u))?.f_neg()?, m)
    }

    fn select(&self, u: Option<&Tensor>, m: i64) -> crate::Result<Tensor> {
        self.select_from(self.activations(u)?, m)
    }

    fn select_from(&self, act: Tensor, m: i64) -> crate::Result<Tensor> {
        let valid_rows = self.valid.f_nonzero()?.f_squeeze_dim(1)?;
        if valid_rows.size()[0] == act.size()[0] {
            return super::top_prototypes(&act, m);
        }
        let local = super::top_prototypes(&act.f_index_select(0, &valid_rows)?, m)?;
        Ok(valid_rows.f_index(&[Some(local)])?)
    }
}
