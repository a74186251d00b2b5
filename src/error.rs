//! epic's one error type, [`Error`], which every stage of the pipeline returns.
//!
//! Structured variants carry what the message names: the argument and shape
//! ([`Error::Shape`]), the config key ([`Error::Config`]), the file
//! ([`Error::Io`]). The two modules with their own vocabulary of failures,
//! weights files ([`crate::model::Error`], e.g. `UnknownArchitecture { name,
//! known }`) and images ([`crate::data::Error`]), and config files
//! ([`crate::config::ConfigError`]) convert into it with `?`, their messages
//! unchanged. Faces (the CLI, Rhai, notebooks) print it and never re-spell it.
//!
//! Public entry points check shapes, dtypes and devices themselves and return
//! [`Error::Shape`] and friends before libtorch would throw, so a message names the
//! argument and what was expected rather than an ATen stack trace.
//!
//! This file is the one exception to the data-flow order of ARCHITECTURE.md: it
//! names each module's error type in order to wrap it.
use std::path::PathBuf;

/// What went wrong in epic's tensor math or tensor files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor argument has the wrong shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
        /// What was expected.
        expected: String,
        /// What was given.
        got: Vec<i64>,
    },

    /// A tensor argument has the wrong element type.
    #[error("{what}: expected {expected} elements, got {got:?}")]
    Kind {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
        /// What was expected.
        expected: &'static str,
        /// What was given.
        got: tch::Kind,
    },

    /// Two tensors that must live together are on different devices.
    #[error("{what}: tensors are on different devices ({a:?} and {b:?}); move them with .to(device) first")]
    Device {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
        /// The first tensor's device.
        a: tch::Device,
        /// The second tensor's device.
        b: tch::Device,
    },

    /// An index (channel, class, row) is outside its range.
    #[error("{what}: index {index} is out of range 0..{bound}; {}", in_range_hint(*.bound))]
    OutOfRange {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
        /// The index given.
        index: i64,
        /// The number of valid indices.
        bound: i64,
    },

    /// `epic kernel` could not start or serve: a connection file, a socket.
    #[error("epic kernel: {0}")]
    Kernel(String),

    /// Ctrl-C stopped a long operation at a safe point.
    #[error("interrupted during {what}; {resume}")]
    Interrupted {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
        /// How to resume, in a sentence.
        resume: String,
    },

    /// A value that must be finite is NaN or infinite.
    #[error("{what}: contains NaN or infinite values; check the features or the matrix that produced them")]
    NonFinite {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
    },

    /// A tensor that must be finite holds NaN or infinity: the first one's index
    /// and value, and how many there are.
    #[error("{what}: {value} at {at:?} ({count} NaN or infinite value(s) in all); check the features or the matrix that produced them")]
    NonFiniteAt {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
        /// Where: the index or byte offset.
        at: Vec<i64>,
        /// The first such value.
        value: f64,
        /// How many there are.
        count: i64,
    },

    /// Any other invalid argument, with a sentence saying why.
    #[error("{what}: {why}")]
    Invalid {
        /// What the message is about: an argument, a tensor, an operation.
        what: String,
        /// Why, in a sentence.
        why: String,
    },

    /// Reading or writing a file failed; `action` says what epic was doing.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What epic was doing (`read`, `write`).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The disk (or the file-size limit) is full: nothing of the file was kept.
    #[error("cannot write {path}: the disk is full ({source}); free some space or choose another output_path, then run again (finished artifacts and cache chunks are kept)")]
    DiskFull {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An output could not be put where it belongs: a folder could not be
    /// created, or a folder stands where the file should go.
    #[error("cannot write {path}: {why}; choose another output path")]
    Folder {
        /// The file or folder.
        path: PathBuf,
        /// Why, in a sentence.
        why: String,
    },

    /// A tensor file could not be read or written.
    #[error("{path}: not a readable safetensors file ({message}); was it written completely?")]
    TensorFile {
        /// The file or folder.
        path: PathBuf,
        /// The underlying message.
        message: String,
    },

    /// A shard (`epic run --shard i/n`) computed its share of a bank and stopped.
    #[error("{0}")]
    ShardDone(String),

    /// A finished run's bank is no longer (all) in its cache.
    #[error("the run's bank is gone: {missing} of its {chunks} cache chunk(s) are missing from {}{}", folder.display(), if rebuild.is_empty() { String::new() } else { format!("; rebuild it with: {rebuild}") })]
    BankGone {
        /// The cache folder of the bank (empty where the run kept no cache).
        folder: PathBuf,
        /// Chunks missing.
        missing: usize,
        /// Chunks in all.
        chunks: usize,
        /// The command that rebuilds it, when known.
        rebuild: String,
    },

    /// The backbone did not fit the device even one image at a time.
    #[error("{model} does not fit {device} even at a batch of 1 (the run asked for {batch}); {free}. Free memory on the device (nvidia-smi lists the processes on a GPU), set model.precision: bf16, or run on another device")]
    OutOfMemory {
        /// The network.
        model: String,
        /// The device, described.
        device: String,
        /// The batch size the run asked for.
        batch: usize,
        /// The device's free memory, as far as it is known.
        free: String,
    },

    /// A file's bytes are not the bytes epic wrote: its checksum does not match.
    #[error("{path} is damaged: {why}; {fix}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What the check found.
        why: String,
        /// What to do, in a sentence.
        fix: String,
    },

    /// Another live epic run holds a folder this run would write into.
    #[error("{path} is in use by another epic run (pid {pid} on {host}, since {since}); wait for it to finish, or give this run another {what}")]
    Busy {
        /// The folder.
        path: PathBuf,
        /// What the folder is to the run (`output_path`).
        what: String,
        /// The other run's process id.
        pid: u32,
        /// The other run's host.
        host: String,
        /// When the other run took the folder (UTC).
        since: String,
    },

    /// The sandbox refused a path ([`crate::io::access`]).
    #[error(transparent)]
    Denied(#[from] crate::io::access::Denied),

    /// A config key has a value of the wrong type or out of range.
    #[error("config key {key}: {why}")]
    Config {
        /// The dotted config key.
        key: String,
        /// Why, in a sentence.
        why: String,
    },

    /// A config file could not be read, parsed or overridden.
    #[error(transparent)]
    ConfigFile(#[from] crate::config::ConfigError),

    /// A network or its weights could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::model::Error),

    /// A data set or an image could not be read.
    #[error(transparent)]
    Data(#[from] crate::data::Error),

    /// A run's inputs are missing ([`crate::study::preflight`]); the text lists them.
    #[error("{0}")]
    Preflight(String),

    /// The data set has no images.
    #[error("the data set is empty: nothing to extract")]
    EmptyDataset,

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
