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
    for batch in loader.batches(0..n) {
        let batch = batch?;
        let z = net.features(&batch.images)?;
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
