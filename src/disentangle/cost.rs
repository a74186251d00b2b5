//! EPIC's own cost per Adam step, measured at a given shape on a given device,
//! with synthetic maps: what `benches/epic.rs` measures on the CPU, available to
//! scripts (`adam_step_seconds`) so that `tools/gpu-check.sh` measures it where no
//! cargo is, on the GPU machine.

use super::{purity_step_gathered, Adam, AdamConfig, Disentangler, Gradient, MatrixKind};
use crate::error::Result;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The shape of a synthetic step: `pairs` (image, channel) pairs drawn from
/// `images` distinct prototype maps of `channels` × `map` × `map`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepShape {
    /// C.
    pub channels: i64,
    /// Distinct images whose maps the step reads (the memo's prototypes).
    pub images: i64,
    /// Side of the square map (7 for ResNets at 224).
    pub map: i64,
    /// (image, channel) pairs per step (`training.batch_size`).
    pub pairs: i64,
}

/// Mean seconds of one Adam step of `kind` with gradient `how` at `shape` on
/// `device`, after one untimed step, over `reps` steps; and the last loss.
///
/// A starts at ‖A − Aᵀ‖₂ ≈ 1.8, the demo's after training, so the exponential's
/// scaling and series lengths are those of a trained run, not of the identity.
pub fn adam_step_seconds(
    kind: MatrixKind,
    how: Gradient,
    shape: StepShape,
    device: Device,
    reps: usize,
) -> Result<(f64, f64)> {
    let StepShape { channels: c, images, map, pairs } = shape;
    if c < 1 || images < 1 || map < 1 || pairs < 1 {
        return Err(crate::Error::invalid("adam_step_seconds", format!("every size must be positive, got {shape:?}")));
    }
    let options = (Kind::Float, device);
    let a = Tensor::f_randn([c, c], options)?.f_mul_scalar(0.32 / (c as f64).sqrt())?;
    let mut d = Disentangler::from_raw(kind, &a)?;
    let mut opt = Adam::new(d.a_raw(), AdamConfig::default())?;
    let maps = Tensor::f_randn([images, c, map, map], options)?.f_relu()?;
    let rows = Tensor::f_randint(images, [pairs], (Kind::Int64, device))?;
    let chans = Tensor::f_randint(c, [pairs], (Kind::Int64, device))?;
    // The loss is read back each step: that waits for the device.
    let mut loss = purity_step_gathered(how, &mut d, &mut opt, &maps, &rows, &chans)?;
    let reps = reps.max(1);
    let start = Instant::now();
    for _ in 0..reps {
        loss = purity_step_gathered(how, &mut d, &mut opt, &maps, &rows, &chans)?;
    }
    Ok((start.elapsed().as_secs_f64() / reps as f64, loss))
}
