//! How to train U: the reference config's `training`, `prototypes.scheduler` and
//! `seed` keys as a typed [`TrainConfig`], with the paper's values as its
//! [`Default`] (the same as `configs/config_base.yaml` + `configs/train_base.yaml`;
//! a test holds them together).
use super::{AdamConfig, Gradient, Schedule, ScheduleKind};
use crate::config::Section;
use std::path::PathBuf;

/// How to train (the reference config's `training` and `prototypes.scheduler`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Prototypes per channel at each step (`prototypes.scheduler.*`: lin 100 → 5 in 10 steps).
    pub schedule: Schedule,
    /// `training.num_epochs_per_prototypes` (2 in the paper).
    pub epochs_per_step: usize,
    /// (image, channel) pairs per Adam step: `training.batch_size`, else
    /// `dataloader.batch_size` as in the reference (512).
    pub batch_size: usize,
    /// Adam's `training.lr` (1e-3) and `training.weight_decay` (1e-5).
    pub adam: AdamConfig,
    /// Seeds the shuffling of pairs (`seed`: 42).
    pub seed: u64,
    /// How each Adam step gets its gradient (`training.gradient`: fast).
    pub gradient: Gradient,
    /// Where to keep a checkpoint after each schedule step, and resume from
    /// (`training.checkpoint`; by default `<output_path>/.epic/train_checkpoint.safetensors`;
    /// `None`: no checkpoints).
    pub checkpoint: Option<PathBuf>,
    /// No progress output (`quiet`).
    pub quiet: bool,
}

impl Default for TrainConfig {
    /// The paper's training: lin schedule 100 → 5 over 10 steps, 2 epochs each,
    /// Adam lr 1e-3 with weight decay 1e-5, 512 pairs per step, seed 42.
    fn default() -> Self {
        TrainConfig {
            schedule: Schedule { kind: ScheduleKind::Lin, start: 100, end: 5, steps: 10, log_c: 0.1 },
            epochs_per_step: 2,
            batch_size: 512,
            adam: AdamConfig { lr: 1e-3, weight_decay: 1e-5, ..AdamConfig::default() },
            seed: 42,
            gradient: Gradient::default(),
            checkpoint: None,
            quiet: false,
        }
    }
}

impl TrainConfig {
    /// Reads the reference config's keys from a whole config: `seed`,
    /// `prototypes.scheduler.{type, num_prototypes_start, num_prototypes_end,
    /// num_steps}`, `training.{num_epochs_per_prototypes, lr, weight_decay,
    /// batch_size, gradient, checkpoint}` (batch_size falling back to
    /// `dataloader.batch_size`), `output_path` and `quiet`. Missing keys take
    /// the paper's values ([`Default`]).
    pub fn from_config(config: &Section) -> crate::Result<Self> {
        let d = TrainConfig::default();
        let sched = config.section("prototypes")?.section("scheduler")?;
        let kind: ScheduleKind = match sched.string(&["type"])? {
            Some(t) => t.parse()?,
            None => d.schedule.kind,
        };
        let count = |key: &str, default: usize| -> crate::Result<usize> {
            Ok(sched.int_at_least(&[key], default as i64, 0)? as usize)
        };
        let schedule = Schedule::new(
            kind,
            count("num_prototypes_start", d.schedule.start)?,
            count("num_prototypes_end", d.schedule.end)?,
            count("num_steps", d.schedule.steps)?,
        )?;
        let training = config.section("training")?;
        let adam = AdamConfig::new(
            training.float(&["lr"], d.adam.lr)?,
            training.float(&["weight_decay"], d.adam.weight_decay)?,
        )?;
        // As the reference: pairs per Adam step are the dataloader's batch size.
        let loader_batch = match config.section("dataloader")?.get(&["batch_size"]) {
            Some(v) if v.as_i64().is_some() => config.section("dataloader")?.int_at_least(&["batch_size"], 512, 1)?,
            _ => d.batch_size as i64,
        };
        let output = config.string(&["output_path"])?;
        let default_checkpoint =
            || output.as_ref().map(|o| PathBuf::from(o).join(".epic/train_checkpoint.safetensors"));
        let checkpoint = match training.get(&["checkpoint"]) {
            // `checkpoint: null` (or false) keeps none; absent (or true) the default.
            None if training.is_null("checkpoint") => None,
            None => default_checkpoint(),
            Some(serde_yaml::Value::Bool(false)) => None,
            Some(serde_yaml::Value::Bool(true)) => default_checkpoint(),
            Some(_) => training.string(&["checkpoint"])?.map(PathBuf::from),
        };
        Ok(TrainConfig {
            schedule,
            epochs_per_step: training.int_at_least(&["num_epochs_per_prototypes"], d.epochs_per_step as i64, 0)?
                as usize,
            batch_size: training.int_at_least(&["batch_size"], loader_batch, 1)? as usize,
            adam,
            seed: config.int(&["seed"], d.seed as i64)? as u64,
            checkpoint,
            gradient: match training.string(&["gradient"])? {
                Some(g) => g.parse()?,
                None => d.gradient,
            },
            quiet: config.bool(&["quiet"], d.quiet)?,
        })
    }
}
