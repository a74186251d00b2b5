//! The error type of epic's tensor math: the EPIC primitives (`features`,
//! `prototypes`, `disentangle`, `explain`) and tensor files (`io`).
//!
//! Public entry points check shapes, dtypes and devices themselves and return
//! [`Error::Shape`] and friends before libtorch would throw, so a message names the
//! argument and what was expected rather than an ATen stack trace.
use std::path::PathBuf;

/// What went wrong in epic's tensor math or tensor files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor argument has the wrong shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape { what: String, expected: String, got: Vec<i64> },

    /// A tensor argument has the wrong element type.
    #[error("{what}: expected {expected} elements, got {got:?}")]
    Kind { what: String, expected: &'static str, got: tch::Kind },

    /// Two tensors that must live together are on different devices.
    #[error("{what}: tensors are on different devices ({a:?} and {b:?}); move them with .to(device) first")]
    Device { what: String, a: tch::Device, b: tch::Device },

    /// An index (channel, class, row) is outside its range.
    #[error("{what}: index {index} is out of range 0..{bound}; {}", in_range_hint(*.bound))]
    OutOfRange { what: String, index: i64, bound: i64 },

    /// Ctrl-C stopped a long operation at a safe point.
    #[error("interrupted during {what}; {resume}")]
    Interrupted { what: String, resume: String },

    /// A value that must be finite is NaN or infinite.
    #[error("{what}: contains NaN or infinite values; check the features or the matrix that produced them")]
    NonFinite { what: String },

    /// A tensor that must be finite holds NaN or infinity: the first one's index
    /// and value, and how many there are.
    #[error("{what}: {value} at {at:?} ({count} NaN or infinite value(s) in all); check the features or the matrix that produced them")]
    NonFiniteAt { what: String, at: Vec<i64>, value: f64, count: i64 },

    /// Any other invalid argument, with a sentence saying why.
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },

    /// Reading or writing a file failed; `action` says what epic was doing.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An output could not be put where it belongs: a folder could not be
    /// created, or a folder stands where the file should go.
    #[error("cannot write {path}: {why}; choose another output path")]
    Folder { path: PathBuf, why: String },

    /// A tensor file could not be read or written.
    #[error("{path}: not a readable safetensors file ({message}); was it written completely?")]
    TensorFile { path: PathBuf, message: String },

    /// libtorch refused an operation that the checks above did not foresee.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Short for `std::result::Result<T, epic::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn in_range_hint(bound: i64) -> String {
    match bound {
        b if b < 1 => "there is nothing to index".into(),
        1 => "the only valid index is 0".into(),
        b => format!("use 0 to {}", b - 1),
    }
}

impl Error {
    pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), why: why.into() }
    }
}
