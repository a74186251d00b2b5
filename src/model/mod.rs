//! Networks and their weights. So far: reading PyTorch checkpoints without
//! executing pickle ([`pickle`], [`pth`]).
pub mod pickle;
pub mod pth;

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
    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Short for `std::result::Result<T, epic::model::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
