//! Prototypes: for each channel, the training images that activate it most
//! ([`selection`]), and how purely each one shows that channel ([`purity`]).
pub mod purity;
pub mod selection;

pub use purity::{mean_purity, purity_argmax, purity_argmax_orthogonal, purity_argmax_pairs, purity_argmax_under};
pub use selection::top_prototypes;
