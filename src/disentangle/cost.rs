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
    /// ‖A − Aᵀ‖₂ (about) of the A the steps start from: 0 is the identity where
    /// training starts; the demo's trained A has 1.78, the 600-image ResNet-18
    /// run's 1.85 after 60 steps. The exponential's degree and scaling, and so
    /// the step's cost, follow it (for invertible U, ‖A‖₂ is about 1/√2 of it).
    pub norm: f64,
}

/// Seconds of one Adam step of `kind` with gradient `how` at `shape` on
/// `device`: the fastest of `reps` steps after one untimed (the least disturbed
/// by whatever else the machine runs); and the last loss.
///
/// A starts at ‖A − Aᵀ‖₂ ≈ `shape.norm` (a Gaussian matrix scaled to it), so the
/// exponential's degree and scaling are those of that point of a run.
pub fn adam_step_seconds(
    kind: MatrixKind,
    how: Gradient,
    shape: StepShape,
    device: Device,
    reps: usize,
) -> Result<(f64, f64)> {
    let StepShape { channels: c, images, map, pairs, norm } = shape;
    if c < 1 || images < 1 || map < 1 || pairs < 1 || !(norm.is_finite() && norm >= 0.0) {
        return Err(crate::Error::invalid("adam_step_seconds", format!("every size must be positive, got {shape:?}")));
    }
    let options = (Kind::Float, device);
    // ‖A − Aᵀ‖₂ ≈ 2√2·σ·√C for A ~ N(0, σ²) (0.89 and 0.90 measured for the
    // σ = 0.32/√C that the benchmarks took for the demo's 1.78 before).
    let a = Tensor::f_randn([c, c], options)?.f_mul_scalar(norm / (2.0 * 2f64.sqrt() * (c as f64).sqrt()))?;
    let maps = Tensor::f_randn([images, c, map, map], options)?.f_relu()?;
    let rows = Tensor::f_randint(images, [pairs], (Kind::Int64, device))?;
    let chans = Tensor::f_randint(c, [pairs], (Kind::Int64, device))?;
    // Every timed step starts from the same A: a step moves A (by lr per entry,
    // so ‖A − Aᵀ‖₂ by about 0.1 at C = 512), which matters at the start of a run.
    let step = || -> Result<(f64, f64)> {
        let mut d = Disentangler::from_raw(kind, &a)?;
        let mut opt = Adam::new(d.a_raw(), AdamConfig::default())?;
        let start = Instant::now();
        // The loss is read back: that waits for the device.
        let loss = purity_step_gathered(how, &mut d, &mut opt, &maps, &rows, &chans)?;
        Ok((start.elapsed().as_secs_f64(), loss))
    };
    let (_, mut loss) = step()?;
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let (seconds, l) = step()?;
        best = best.min(seconds);
        loss = l;
    }
    Ok((best, loss))
}

/// Seconds of one `[C,C]` × `[C,C]` f32 product on `device`, the fastest of
/// `reps` after one untimed: the unit the Adam step's cost is counted in.
pub fn matmul_seconds(channels: i64, device: Device, reps: usize) -> Result<f64> {
    if channels < 1 {
        return Err(crate::Error::invalid("matmul_seconds", format!("channels = {channels}; must be positive")));
    }
    let a = Tensor::f_randn([channels, channels], (Kind::Float, device))?;
    let b = Tensor::f_randn([channels, channels], (Kind::Float, device))?;
    // Reading one entry back waits for the device.
    a.f_matmul(&b)?.f_double_value(&[0, 0])?;
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        std::hint::black_box(a.f_matmul(&b)?.f_double_value(&[0, 0])?);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}
