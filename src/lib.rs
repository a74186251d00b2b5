//! # epic — explain pretrained image classifiers with prototypes
//!
//! EPIC (Borycki et al., AAAI-26) explains an unmodified CNN whose head is global
//! average pooling plus a linear layer. It learns a change of basis U for the
//! backbone's feature map, Ẑ = U·Z at every pixel, such that each channel's top
//! training images (its *prototypes*) show one pure concept, and re-expresses the
//! head as A·U⁻¹ so that no logit changes.
//!
//! The library is organised by the data it handles, in the order it flows
//! (ARCHITECTURE.md is the map; a test holds every `use` to it):
//! - [`model`]: networks split into backbone and head, one file per
//!   architecture, one [registry](model::registry), and their weights (`.pth`
//!   read without executing pickle, safetensors);
//! - [`data`]: image folders, Fashion-MNIST, transforms, parallel batches;
//! - [`features`]: feature maps, the per-pixel rotation, spatial sums, the
//!   [`Bank`](features::Bank) of one backbone pass and the memo of prototype maps;
//! - [`study`]: the [`Study`] that ties a network, its data set, bank and memo;
//! - [`prototypes`]: top-m selection and argmax purity;
//! - [`disentangle`]: U's parametrisations, Adam, the prototype-count schedules,
//!   training ([`Study::train`]);
//! - [`explain`]: the modified head, the channels that explain a prediction
//!   ([`Study::explain`]), predictions, a head fitted on a bank;
//! - [`render`]: prototype grids, explanation figures, purity plots and tables.
//!
//! Beside the flow: [`config`] (YAML configs with the reference's keys, typed
//! reading), [`error`], [`io`] (tensor files, atomic writes), [`device`].
//! The faces are thin: [`script`] (the Rhai engine of `epic run`), [`kernel`]
//! (`epic kernel`: a Jupyter kernel of Rhai cells), [`notebook`] (what values
//! show in a notebook; with cargo feature `notebook`, inline display in evcxr
//! Jupyter), and the `epic` binary.
//!
//! Everything works on any libtorch device, in f32, and returns [`Error`] instead
//! of panicking. `use epic::prelude::*` brings the types most programs need.
#![warn(missing_docs)]
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
pub mod kernel;
pub mod memory;
pub mod model;
pub mod notebook;
pub mod progress;
pub mod prototypes;
pub mod render;
pub mod report;
pub mod script;
pub mod study;

pub use error::{Error, Result};
pub use study::Study;

/// The names most programs need: `use epic::prelude::*;`.
pub mod prelude {
    pub use crate::config::Section;
    pub use crate::data::{Dataset, FashionMnist, ImageFolder};
    pub use crate::device::parse_device;
    pub use crate::disentangle::{
        purity_step, purity_step_with, Adam, AdamConfig, Disentangler, Gradient, History, MatrixKind, Schedule,
        ScheduleKind, TrainConfig,
    };
    pub use crate::error::{Error, Result};
    pub use crate::explain::{
        logits, max_logit_change, modified_head, top_channels, ExplainOptions, Explanation, HeadFit, TopChannels,
    };
    pub use crate::features::{channel_activation, rotate, rotate_sums, BatchSize, ExtractOptions};
    pub use crate::io::{load_tensors, save_tensors};
    pub use crate::model::{ModelSpec, Network};
    pub use crate::prototypes::{
        mean_purity, purity_argmax, purity_argmax_orthogonal, purity_argmax_pairs, purity_argmax_under, top_prototypes,
    };
    pub use crate::render::{Canvas, PrototypeGrid, PurityPlot, PurityTable};
    pub use crate::study::Study;
    pub use tch::{Device, Kind, Tensor};
}
