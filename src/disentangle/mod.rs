//! Learning the change of basis U: its parametrisations (`matrix`), the purity
//! objective and one optimiser step (`objective`, `adam`), the gradient through
//! the exponential (`gradient` for the whole of it, `columns` for a batch's
//! channels only), the schedule of how many prototypes per channel each step
//! trains on (`schedule`), and the training loop over a feature bank (`trainer`).
mod adam;
pub(crate) mod checkpoint;
pub mod columns;
mod cost;
pub mod gradient;
mod matrix;
mod objective;
mod schedule;
pub mod store;
mod taylor;
mod train_config;
mod trainer;

pub use adam::{Adam, AdamConfig};
pub use checkpoint::inspect_checkpoint;
pub use cost::{adam_step_seconds, matmul_seconds, StepShape};
pub use matrix::{invertible_matrix, orthogonal_matrix, Disentangler, MatrixKind};
pub use objective::{purity_loss, purity_step, purity_step_gathered, purity_step_with, Gradient};
pub use schedule::{Schedule, ScheduleKind};
pub use train_config::TrainConfig;
pub use trainer::History;
