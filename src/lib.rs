//! # epic — explain pretrained image classifiers with prototypes
//!
//! EPIC (Borycki et al., AAAI-26) explains an unmodified CNN whose head is global
//! average pooling plus a linear layer. It learns a change of basis U for the
//! backbone's feature map, Ẑ = U·Z at every pixel, such that each channel's top
//! training images (its *prototypes*) show one pure concept, and re-expresses the
//! head as A·U⁻¹ so that no logit changes.
//!
//! The library is organised by the data it handles:
//! - [`config`]: YAML experiment configs with the reference's keys, overrides;
//! - [`data`]: image folders, Fashion-MNIST, transforms, parallel batches;
//! - [`features`]: feature maps, the per-pixel rotation, spatial sums;
//! - [`prototypes`]: top-m selection and argmax purity;
//! - [`disentangle`]: U's parametrisations, Adam, the prototype-count schedules;
//! - [`explain`]: the modified head and the channels that explain a prediction;
//! - [`io`]: tensor files and atomic writes;
//! - [`model`]: networks split into backbone and head, one file per architecture,
//!   and their weights (`.pth` read without executing pickle, safetensors);
//! - [`render`]: prototype grids, explanation figures, purity plots;
//! - [`script`]: the Rhai engine that exposes all of it to experiment scripts,
//!   and sessions that keep one engine and scope across notebook cells;
//! - `notebook` (cargo feature `notebook`): inline display in evcxr Jupyter.
//!
//! Everything works on any libtorch device, in f32, and returns [`Error`] instead
//! of panicking.
pub(crate) mod check;
pub mod config;
pub mod data;
pub mod device;
pub mod disentangle;
pub mod error;
pub mod explain;
pub mod features;
pub mod interrupt;
pub mod io;
pub mod memory;
pub mod model;
#[cfg(feature = "notebook")]
pub mod notebook;
pub mod predict;
pub mod progress;
pub mod prototypes;
pub mod render;
pub mod report;
pub mod script;

pub use error::{Error, Result};

/// The names most programs need: `use epic::prelude::*;`.
pub mod prelude {
    pub use crate::device::parse_device;
    pub use crate::disentangle::{
        purity_step, purity_step_with, Adam, AdamConfig, Disentangler, Gradient, MatrixKind, Schedule, ScheduleKind,
    };
    pub use crate::error::{Error, Result};
    pub use crate::explain::{logits, max_logit_change, modified_head, top_channels, TopChannels};
    pub use crate::features::{channel_activation, rotate, rotate_sums};
    pub use crate::io::{load_tensors, save_tensors};
    pub use crate::prototypes::{
        mean_purity, purity_argmax, purity_argmax_orthogonal, purity_argmax_pairs, purity_argmax_under, top_prototypes,
    };
    pub use tch::{Device, Kind, Tensor};
}
