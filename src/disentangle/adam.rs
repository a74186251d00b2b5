//! Adam, as `torch.optim.Adam` computes it, for the one parameter EPIC trains.
//!
//! Weight decay is PyTorch's *coupled* L2 (g ← g + λ·θ before the moments), not
//! AdamW's decoupled decay; the reference trains with λ = 1e-5. The update follows
//! PyTorch's single-tensor kernel operation by operation, so A matches the
//! reference's to float rounding after any number of steps.
use crate::check;
use crate::error::{Error, Result};
use tch::Tensor;

/// Adam's hyper-parameters; the defaults are torch.optim.Adam's with the reference's
/// lr = 1e-3 and weight decay 1e-5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment (0.9).
    pub beta1: f64,
    /// Decay of the second moment (0.999).
    pub beta2: f64,
    /// Added to the denominator (1e-8).
    pub eps: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-5 }
    }
}

impl AdamConfig {
    /// torch.optim.Adam's betas and eps with the given learning rate and weight decay.
    pub fn new(lr: f64, weight_decay: f64) -> Result<Self> {
        let cfg = AdamConfig { lr, weight_decay, ..Default::default() };
        let valid = |x: f64| x.is_finite() && x >= 0.0;
        if !(valid(lr) && valid(weight_decay)) {
            return Err(Error::invalid(
                "adam",
                format!("lr = {lr}, weight_decay = {weight_decay}; both must be finite and >= 0"),
            ));
        }
        Ok(cfg)
    }
}

/// Adam's state for one parameter tensor: the two moment estimates and the step count.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    step: i64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

impl Adam {
    /// Fresh state (zero moments, step 0) for a parameter shaped like `param`.
    pub fn new(param: &Tensor, config: AdamConfig) -> Result<Self> {
        check::float(param, "param")?;
        Ok(Adam { config, step: 0, exp_avg: param.f_zeros_like()?, exp_avg_sq: param.f_zeros_like()? })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> AdamConfig {
        self.config
    }

    /// How many updates have been applied.
    pub fn steps(&self) -> i64 {
        self.step
    }

    /// The state as named tensors (`exp_avg`, `exp_avg_sq`), for checkpoints.
    pub fn moments(&self) -> [(&'static str, &Tensor); 2] {
        [("exp_avg", &self.exp_avg), ("exp_avg_sq", &self.exp_avg_sq)]
    }

    /// State restored from a checkpoint: `step` updates done and the two moments,
    /// shaped like the parameter.
    pub fn restore(config: AdamConfig, step: i64, exp_avg: Tensor, exp_avg_sq: Tensor) -> Result<Self> {
        if exp_avg.size() != exp_avg_sq.size() || step < 0 {
            return Err(Error::invalid(
                "adam state",
                format!("moments {:?} and {:?} at step {step} do not match", exp_avg.size(), exp_avg_sq.size()),
            ));
        }
        Ok(Adam { config, step, exp_avg, exp_avg_sq })
    }

    /// One update of `param` in place from its gradient `grad` (same shape), no autograd.
    pub fn update(&mut self, param: &mut Tensor, grad: &Tensor) -> Result<()> {
        if param.size() != grad.size() || param.size() != self.exp_avg.size() {
            return Err(Error::Shape {
                what: "adam grad".into(),
                expected: format!("{:?} (the parameter's shape)", self.exp_avg.size()),
                got: grad.size(),
            });
        }
        let AdamConfig { lr, beta1, beta2, eps, weight_decay } = self.config;
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let grad =
            if weight_decay != 0.0 { grad.f_add(&param.f_mul_scalar(weight_decay)?)? } else { grad.shallow_clone() };
        let _ = self.exp_avg.f_lerp_(&grad, 1.0 - beta1)?;
        let _ = self.exp_avg_sq.f_mul_scalar_(beta2)?;
        let _ = self.exp_avg_sq.f_add_(&grad.f_mul(&grad)?.f_mul_scalar(1.0 - beta2)?)?;
        let bias_correction1 = 1.0 - beta1.powi(self.step as i32);
        let bias_correction2 = 1.0 - beta2.powi(self.step as i32);
        let step_size = lr / bias_correction1;
        let denom = self.exp_avg_sq.f_sqrt()?.f_div_scalar(bias_correction2.sqrt())?.f_add_scalar(eps)?;
        let _ = param.f_sub_(&self.exp_avg.f_div(&denom)?.f_mul_scalar(step_size)?)?;
        Ok(())
    }
}
