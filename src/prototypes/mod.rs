//! Prototypes: for each channel, the training images that activate it most
//! (`selection`; from a whole bank under U, [`Bank::top_prototypes`](crate::features::Bank::top_prototypes)
//! in `bank`; over a bank read a chunk at a time, `streaming`), and how purely
//! each one shows that channel (`purity`).
mod bank;
mod purity;
mod selection;
mod streaming;

pub use purity::{mean_purity, purity_argmax, purity_argmax_orthogonal, purity_argmax_pairs, purity_argmax_under};
pub use selection::top_prototypes;
pub use streaming::StreamingTop;
