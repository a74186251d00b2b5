//! Prototypes: for each channel, the training images that activate it most
//! (`selection`; from a whole bank under U, [`Bank::top_prototypes`](crate::features::Bank::top_prototypes)
//! in `bank`), and how purely each one shows that channel (`purity`).
mod bank;
mod purity;
mod selection;

pub use purity::{mean_purity, purity_argmax, purity_argmax_orthogonal, purity_argmax_pairs, purity_argmax_under};
pub use selection::top_prototypes;
