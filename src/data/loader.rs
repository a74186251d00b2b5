//! Batches of preprocessed images, decoded in parallel on a background thread
//! while the caller (the backbone) works on the previous batch.
//!
//! An image that cannot be decoded does not stop the pass: its slot in the batch
//! is zeros, and [`Batch::failed`] names it with the reason, so that the caller
//! can report and count it and keep indices aligned with the data set.
use super::{Dataset, Result};
use crate::model::Preprocess;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// One batch: images `range` of the data set.
pub struct Batch {
    /// Data-set indices of the batch's images.
    pub range: Range<usize>,
    /// Normalised images `[B,3,crop,crop]` f32 on the CPU.
    pub images: Tensor,
    /// Labels `[B]` int64.
    pub labels: Tensor,
    /// Images that failed to decode: (data-set index, message). Their rows are zeros.
    pub failed: Vec<(usize, String)>,
}

/// Makes batches of a data set for one network's transform.
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<dyn Dataset>,
    preprocess: Preprocess,
    batch_size: usize,
}

impl Loader {
    /// Batches of `batch_size` images (at least 1) prepared with `preprocess`.
    pub fn new(dataset: Arc<dyn Dataset>, preprocess: Preprocess, batch_size: usize) -> Self {
        Loader { dataset, preprocess, batch_size: batch_size.max(1) }
    }

    /// The data set.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// Prepares images `range` as one batch, decoding in parallel.
    pub fn batch(&self, range: Range<usize>) -> Result<Batch> {
        let indices: Vec<usize> = range.clone().collect();
        let (images, failed) = self.images(&indices)?;
        let labels: Vec<i64> = range.clone().map(|i| self.dataset.label(i)).collect();
        Ok(Batch { range, images, labels: Tensor::f_from_slice(&labels)?, failed })
    }

    /// Prepares the images `indices` (any order), decoding in parallel:
    /// `[n,3,crop,crop]` f32 on the CPU, and the images that failed (zero rows).
    pub fn images(&self, indices: &[usize]) -> Result<(Tensor, Vec<(usize, String)>)> {
        let crop = self.preprocess.crop;
        let prepared: Vec<std::result::Result<Tensor, String>> = indices
            .par_iter()
            .map(|&i| {
                let img = self.dataset.image(i).map_err(|e| e.to_string())?;
                super::transform::preprocess(&img, &self.preprocess)
                    .map_err(|e| format!("{}: {e}", self.dataset.describe(i)))
            })
            .collect();
        let mut rows = Vec::with_capacity(prepared.len());
        let mut failed = Vec::new();
        for (&i, r) in indices.iter().zip(prepared) {
            match r {
                Ok(t) => rows.push(t),
                Err(msg) => {
                    failed.push((i, msg));
                    rows.push(Tensor::f_zeros([3, crop, crop], (Kind::Float, tch::Device::Cpu))?);
                }
            }
        }
        if rows.is_empty() {
            return Ok((Tensor::f_zeros([0, 3, crop, crop], (Kind::Float, tch::Device::Cpu))?, failed));
        }
        Ok((Tensor::f_stack(&rows, 0)?, failed))
    }

    /// Images per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches covering `range` in order, prepared one ahead on a background thread.
    pub fn batches(&self, range: Range<usize>) -> Batches {
        self.batches_in(vec![range])
    }

    /// Batches covering each of `ranges` in turn (no batch spans two ranges),
    /// prepared one ahead on a background thread.
    pub fn batches_in(&self, ranges: Vec<Range<usize>>) -> Batches {
        let (tx, rx) = sync_channel(1);
        let this = self.clone();
        let bs = self.batch_size;
        std::thread::spawn(move || {
            for range in ranges {
                let mut start = range.start;
                while start < range.end {
                    let end = (start + bs).min(range.end);
                    if tx.send(this.batch(start..end)).is_err() {
                        return; // the consumer stopped
                    }
                    start = end;
                }
            }
        });
        Batches { rx }
    }
}

/// Iterator over prefetched batches; dropping it stops the producer.
pub struct Batches {
    rx: Receiver<Result<Batch>>,
}

impl Iterator for Batches {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}
