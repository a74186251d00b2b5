//! A backbone batch that fits the device: a batch runs in parts of at most
//! `limit` images, and when the device runs out of memory the limit is halved
//! and the pass goes on, with a warning that says so. The halved limit stays for
//! the rest of the pass. A batch of 1 that still does not fit is an error that
//! names the model, the batch asked for and the device's free memory.
//!
//! The maps of a batch are the same whichever parts it ran in: the backbone
//! treats images independently (eval-mode batch norm), and the parts are
//! concatenated in order.

use crate::error::{Error, Result};
use crate::model::Network;
use tch::{Device, Tensor};

/// Backbone batches that shrink on out-of-memory (see the module docs).
#[derive(Debug, Clone)]
pub struct ShrinkingBatch {
    asked: usize,
    limit: usize,
}

impl ShrinkingBatch {
    /// Parts of at most `batch_size` images (the configured batch).
    pub fn new(batch_size: usize) -> Self {
        let b = batch_size.max(1);
        ShrinkingBatch { asked: b, limit: b }
    }

    /// The largest part that has fitted so far.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Z `[B,C,h,w]` of normalised `images` `[B,3,H,W]` through `net`'s backbone.
    pub fn features(&mut self, net: &Network, images: &Tensor) -> Result<Tensor> {
        let device = net.device();
        self.run(images, net.name(), device, |x| Ok(net.features_in_any_batch(x)?))
    }

    /// [`features`](Self::features) with the backbone given as `forward`: the
    /// seam through which tests inject an out-of-memory failure on the CPU.
    pub fn run(
        &mut self,
        images: &Tensor,
        model: &str,
        device: Device,
        mut forward: impl FnMut(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let b = images.size().first().copied().unwrap_or(0) as usize;
        if b <= self.limit {
            match forward(images) {
                Ok(z) => return Ok(z),
                Err(e) if is_out_of_memory(&e) => self.halve(model, device, b.min(self.limit), &e)?,
                Err(e) => return Err(e),
            }
        }
        let mut parts = Vec::new();
        let mut start = 0;
        while start < b {
            let n = self.limit.min(b - start);
            let x = images.f_narrow(0, start as i64, n as i64)?;
            match forward(&x) {
                Ok(z) => {
                    parts.push(z);
                    start += n;
                }
                Err(e) if is_out_of_memory(&e) => self.halve(model, device, n, &e)?,
                Err(e) => return Err(e),
            }
        }
        Ok(Tensor::f_cat(&parts, 0)?)
    }

    /// After a part of `failed` images ran out of memory: the next limit, or the
    /// error when `failed` was 1.
    fn halve(&mut self, model: &str, device: Device, failed: usize, error: &Error) -> Result<()> {
        if failed <= 1 {
            return Err(Error::OutOfMemory {
                model: model.to_string(),
                device: crate::device::describe(device),
                batch: self.asked,
                free: free_memory(device, error),
            });
        }
        self.limit = failed / 2;
        crate::progress::warning(&format!(
            "{model} ran out of memory on {} at a batch of {failed}: going on in batches of {} \
             (set dataloader.batch_size to {} to start there)",
            crate::device::device_name(device),
            self.limit,
            self.limit
        ));
        Ok(())
    }
}

/// Whether `error` is libtorch failing to allocate: CUDA's caching allocator,
/// cuBLAS/cuDNN workspaces, or the CPU allocator.
pub fn is_out_of_memory(error: &Error) -> bool {
    let text = error.to_string();
    ["out of memory", "not enough memory", "can't allocate memory", "ALLOC_FAILED", "OutOfMemoryError"]
        .iter()
        .any(|needle| text.contains(needle))
}

/// The device's free memory for the error message: the CUDA runtime's count,
/// else libtorch's own words ("… of which 10.50 MiB is free"), else "unknown".
fn free_memory(device: Device, error: &Error) -> String {
    if let Device::Cuda(i) = device {
        if let Some(m) = crate::device::memory(i) {
            return format!(
                "{:.1} MiB free of {:.1} GiB",
                m.free as f64 / (1u64 << 20) as f64,
                m.total as f64 / (1u64 << 30) as f64
            );
        }
    }
    let text = error.to_string();
    text.find("of which ")
        .and_then(|at| {
            let rest = &text[at + "of which ".len()..];
            rest.find(" is free").map(|end| format!("{} free", &rest[..end]))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oom() -> Error {
        Error::Torch(tch::TchError::Torch(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB \
             of which 10.50 MiB is free."
                .into(),
        ))
    }

    /// A "backbone" that doubles its input and fails on parts larger than `fits`.
    fn backbone(fits: usize, calls: &mut Vec<usize>) -> impl FnMut(&Tensor) -> Result<Tensor> + '_ {
        move |x: &Tensor| {
            let n = x.size()[0] as usize;
            calls.push(n);
            if n > fits {
                Err(oom())
            } else {
                Ok(x.f_mul_scalar(2.0)?)
            }
        }
    }

    #[test]
    fn halves_until_it_fits_and_keeps_the_order() {
        let images = Tensor::arange(13 * 3, (tch::Kind::Float, Device::Cpu)).view([13, 3, 1, 1]);
        let mut calls = Vec::new();
        let mut s = ShrinkingBatch::new(16);
        let z = s.run(&images, "net", Device::Cpu, backbone(3, &mut calls)).unwrap();
        // 13 fails, 6 fails, 3 fits: then 3, 3, 3, 1 more.
        assert_eq!(calls, vec![13, 6, 3, 3, 3, 3, 1]);
        assert_eq!(s.limit(), 3);
        assert_eq!(z.size(), vec![13, 3, 1, 1]);
        let want = images.f_mul_scalar(2.0).unwrap();
        assert_eq!(z.f_sub(&want).unwrap().abs().max().double_value(&[]), 0.0);
        // The next batch starts at the halved limit: no failed attempt.
        calls.clear();
        let z = s.run(&images.narrow(0, 0, 5), "net", Device::Cpu, backbone(3, &mut calls)).unwrap();
        assert_eq!(calls, vec![3, 2]);
        assert_eq!(z.size()[0], 5);
    }

    #[test]
    fn a_batch_of_one_that_does_not_fit_names_model_batch_and_free_memory() {
        let images = Tensor::zeros([4, 3, 1, 1], (tch::Kind::Float, Device::Cpu));
        let mut calls = Vec::new();
        let mut s = ShrinkingBatch::new(4);
        let e = s.run(&images, "resnet50", Device::Cpu, backbone(0, &mut calls)).unwrap_err();
        assert_eq!(calls, vec![4, 2, 1]);
        let text = e.to_string();
        assert!(text.contains("resnet50") && text.contains("asked for 4"), "{text}");
        assert!(text.contains("10.50 MiB free"), "{text}");
    }

    #[test]
    fn other_errors_pass_through_untouched() {
        let images = Tensor::zeros([4, 3, 1, 1], (tch::Kind::Float, Device::Cpu));
        let mut s = ShrinkingBatch::new(4);
        let e = s.run(&images, "net", Device::Cpu, |_| Err(Error::invalid("images", "wrong size"))).unwrap_err();
        assert_eq!(e.to_string(), "images: wrong size");
        assert_eq!(s.limit(), 4);
    }

    #[test]
    fn a_real_cpu_allocation_failure_is_out_of_memory() {
        // 4 TiB: more than this machine's memory and swap, refused at once.
        let e = Tensor::f_empty([1i64 << 40], (tch::Kind::Float, Device::Cpu)).map(|_| ()).unwrap_err();
        assert!(is_out_of_memory(&Error::from(e)));
    }
}
