//! A plain backbone pass over a data set, keeping nothing: the floor that an
//! EPIC run is measured against (`scripts/bench.rhai`).

use crate::data::{Dataset, Loader};
use crate::model::Network;
use crate::progress::Progress;
use std::sync::Arc;
use std::time::Instant;

/// What [`forward_pass`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassReport {
    /// Images through the backbone (those that decoded).
    pub images: usize,
    /// Batches run.
    pub batches: usize,
    /// Wall time, decode and transform included, seconds.
    pub seconds: f64,
}

/// Decodes, transforms and runs every image of `dataset` through `net`'s
/// backbone in batches of `batch_size`, exactly as [`extract`](super::extract)
/// feeds it, and discards the maps.
pub fn forward_pass(
    net: &Network,
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    quiet: bool,
) -> crate::Result<PassReport> {
    let n = dataset.len();
    if n == 0 {
        return Err(crate::Error::EmptyDataset);
    }
    let start = Instant::now();
    let loader = Loader::new(dataset, net.preprocess(), batch_size);
    let mut progress = Progress::new("forward pass", n as u64, quiet);
    let mut report = PassReport { images: 0, batches: 0, seconds: 0.0 };
    let mut fitting = super::ShrinkingBatch::new(batch_size);
    for batch in loader.batches(0..n) {
        let batch = batch?;
        let z = fitting.features(net, &batch.images)?;
        // Wait for the device, so that the time is the work's, not its queueing.
        let _ = z.f_sum(tch::Kind::Float)?.f_double_value(&[])?;
        report.images += batch.range.len() - batch.failed.len();
        report.batches += 1;
        progress.inc(batch.range.len() as u64);
    }
    report.seconds = start.elapsed().as_secs_f64();
    progress.finish(&format!("{} images in {:.1}s", report.images, report.seconds));
    Ok(report)
}

/// Images per second of `net`'s backbone alone, at a batch of `batch` synthetic
/// normalised images already on its device (no decoding, no copy): the mean of
/// `reps` timed batches after one untimed warm-up batch. `#{images_per_s}` in
/// scripts, for `tools/gpu-check.sh` and the benches.
pub fn backbone_throughput(net: &Network, batch: usize, reps: usize) -> crate::Result<f64> {
    let crop = net.preprocess().crop;
    let x = tch::Tensor::f_randn([batch.max(1) as i64, 3, crop, crop], (tch::Kind::Float, net.device()))?;
    let run = || -> crate::Result<()> {
        let z = net.features(&x)?;
        // Reading a value back waits for the device.
        let _ = z.f_sum(tch::Kind::Float)?.f_double_value(&[])?;
        Ok(())
    };
    run()?;
    let reps = reps.max(1);
    let start = Instant::now();
    for _ in 0..reps {
        run()?;
    }
    Ok((batch.max(1) * reps) as f64 / start.elapsed().as_secs_f64())
}

/// The loader alone over `dataset`: decode and transform to `net`'s input, in
/// batches of `batch_size` on all cores (rayon's pool), nothing sent to the
/// backbone. Its `seconds` against [`forward_pass`]'s say which one bounds a pass.
pub fn decode_pass(net: &Network, dataset: Arc<dyn Dataset>, batch_size: usize) -> crate::Result<PassReport> {
    let n = dataset.len();
    if n == 0 {
        return Err(crate::Error::EmptyDataset);
    }
    let start = Instant::now();
    let loader = Loader::new(dataset, net.preprocess(), batch_size);
    let mut report = PassReport { images: 0, batches: 0, seconds: 0.0 };
    for batch in loader.batches(0..n) {
        let batch = batch?;
        report.images += batch.range.len() - batch.failed.len();
        report.batches += 1;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
