//! Prototypes of a feature bank under U: the top-m images of every channel by
//! activation sums·Uᵀ, over the images that decoded, ranked a slice of rows at
//! a time (from memory, or a chunk at a time from disk), with the last selection
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
        let protos = self.select(u, m, false)?;
        if let Ok(mut cache) = self.selection.lock() {
            *cache = Some((key, protos.shallow_clone()));
        }
        // The caller's own copy: nothing it does reaches the cache.
        Ok(protos.f_detach_copy()?)
    }

    /// Negative prototypes: per channel, the `m` images of smallest activation
    /// under `u` (the paper's top-m of −activation), `[C,m]` indices, not cached.
    pub fn top_negative_prototypes(&self, u: &Tensor, m: i64) -> crate::Result<Tensor> {
        self.select(Some(u), m, true)
    }

    /// The top m of every channel over the valid images, rotated and ranked a
    /// slice of rows at a time (negated for negative prototypes) and merged into
    /// the running top m: exact, ties included, for a bank held or on disk, and
    /// holding a slice's activations rather than all N·C of them (at ImageNet's
    /// 1.28M × 2048, 10 GB per copy).
    fn select(&self, u: Option<&Tensor>, m: i64, negate: bool) -> crate::Result<Tensor> {
        let u = u.map(|u| u.f_to_device(tch::Device::Cpu)).transpose()?;
        let slice = (SLICE_BYTES / (4 * self.channels().max(1))).max(256);
        let mut top = super::StreamingTop::new(m);
        self.for_each_block(|block_start, block| {
            let rows_in_block = block.size()[0];
            for at in (0..rows_in_block).step_by(slice as usize) {
                let n = slice.min(rows_in_block - at);
                let start = block_start as i64 + at;
                let sums = block.f_narrow(0, at, n)?;
                let mut act = match &u {
                    Some(u) => crate::features::rotate_sums(&sums, u)?,
                    None => sums,
                };
                if negate {
                    act = act.f_neg()?;
                }
                let rows = self.valid.f_narrow(0, start, n)?.f_nonzero()?.f_squeeze_dim(1)?;
                let index = rows.f_add_scalar(start)?;
                if rows.size()[0] == n {
                    top.push(&act, &index)?;
                } else {
                    top.push(&act.f_index_select(0, &rows)?, &index)?;
                }
            }
            Ok(())
        })?;
        top.finish()
    }
}

/// Bytes of activations rotated and ranked at a time (16 MiB: 4096 rows at C = 1024).
const SLICE_BYTES: i64 = 16 << 20;
