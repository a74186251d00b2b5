//! Full feature maps of the images that are currently prototypes, kept within a
//! memory bound so that training never recomputes a map while its image stays a
//! prototype.
//!
//! Maps can be kept in f16 (half the memory); the purity error this causes is
//! measured in the test `the_memo_serves_exact_maps_within_its_bound` (tests/bank.rs:
//! 1.8e-5 on Lite0). Maps are returned in f32, and in f16 mode always rounded
//! through f16, held or not, so results never depend on the memo's history.

use crate::data::Loader;
use crate::model::Network;
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// A bounded memo of feature maps Z `[C,h,w]` by data-set index.
pub struct FeatureMemo {
    maps: HashMap<usize, (Tensor, u64)>,
    limit_bytes: usize,
    bytes: usize,
    half: bool,
    tick: u64,
    /// Maps served from the memo.
    pub hits: usize,
    /// Maps computed by the backbone.
    pub misses: usize,
}

impl FeatureMemo {
    /// An empty memo holding at most `limit_bytes` of maps, in f16 when `half`.
    pub fn new(limit_bytes: usize, half: bool) -> Self {
        FeatureMemo { maps: HashMap::new(), limit_bytes, bytes: 0, half, tick: 0, hits: 0, misses: 0 }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of maps held.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Whether no map is held.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Feature maps of `indices` `[n,C,h,w]` f32 on the network's device, computing
    /// (in batches of the loader's size) only those not held. Maps of images not in
    /// this request are evicted, least recently used first, when over the bound.
    pub fn maps(&mut self, net: &Network, loader: &Loader, indices: &[usize]) -> crate::Result<Tensor> {
        self.tick += 1;
        let mut missing: Vec<usize> = indices.iter().copied().filter(|i| !self.maps.contains_key(i)).collect();
        missing.sort_unstable();
        missing.dedup();
        self.hits += indices.len() - missing.len().min(indices.len());
        let mut fresh: HashMap<usize, Tensor> = HashMap::new();
        for group in missing.chunks(loader.batch_size()) {
            let (images, failed) = loader.images(group)?;
            if let Some((_, msg)) = failed.first() {
                return Err(crate::data::Error::Decode {
                    path: msg.clone().into(),
                    why: "needed as a prototype".into(),
                }
                .into());
            }
            let z = net.features_in_any_batch(&images)?;
            for (k, &i) in group.iter().enumerate() {
                // A copy, so that a kept map does not pin its whole batch.
                fresh.insert(i, z.f_get(k as i64)?.f_detach_copy()?);
            }
            self.misses += group.len();
        }
        let mut out = Vec::with_capacity(indices.len());
        for i in indices {
            if let Some((t, used)) = self.maps.get_mut(i) {
                *used = self.tick;
                out.push(t.f_to_kind(Kind::Float)?);
            } else if self.half {
                // Rounded as a stored map would be: values never depend on
                // whether the map was held (resumed runs stay bitwise identical).
                out.push(fresh[i].f_to_kind(Kind::Half)?.f_to_kind(Kind::Float)?);
            } else {
                out.push(fresh[i].shallow_clone());
            }
        }
        // Keep the new maps while there is room, evicting maps not asked for now.
        for (i, z) in fresh {
            let stored = if self.half { z.f_to_kind(Kind::Half)? } else { z };
            let size = stored.numel() * stored.kind().elt_size_in_bytes();
            while self.bytes + size > self.limit_bytes {
                let victim = self
                    .maps
                    .iter()
                    .filter(|(_, (_, used))| *used < self.tick)
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| *k);
                let Some(v) = victim else { break };
                if let Some((t, _)) = self.maps.remove(&v) {
                    self.bytes -= t.numel() * t.kind().elt_size_in_bytes();
                }
            }
            if self.bytes + size <= self.limit_bytes {
                self.bytes += size;
                self.maps.insert(i, (stored, self.tick));
            }
        }
        Ok(Tensor::f_stack(&out, 0)?)
    }

    /// Keeps the map `z` `[C,h,w]` of image `index` if it fits without evicting
    /// anything; returns whether it was kept. The feature bank's pass offers every
    /// map it computes, so that the first prototypes (and, on small data sets,
    /// all later ones) never cost a second backbone pass.
    pub fn offer(&mut self, index: usize, z: &Tensor) -> crate::Result<bool> {
        if self.maps.contains_key(&index) {
            return Ok(true);
        }
        let size = z.numel() * if self.half { 2 } else { z.kind().elt_size_in_bytes() };
        if self.bytes + size > self.limit_bytes {
            return Ok(false);
        }
        let stored = if self.half { z.f_to_kind(Kind::Half)? } else { z.f_detach_copy()? };
        self.bytes += size;
        self.maps.insert(index, (stored, 0));
        Ok(true)
    }
}
