//! Data sets of labelled images and the path from a file to a network's input:
//! decoding any common image to RGB ([`image`]), a model's eval transform
//! ([`transform`]), torchvision-ordered image folders (`folder`), Fashion-MNIST's
//! IDX files (`fashion_mnist`), and batches decoded in parallel while the
//! backbone works on the previous one (`loader`).
pub mod classes;
mod fashion_mnist;
mod folder;
pub mod image;
mod loader;
mod source;
pub mod transform;

pub use fashion_mnist::{FashionMnist, DEBIAN_DIR as FASHION_MNIST_DIR};
pub use folder::ImageFolder;
pub use loader::{Batch, Loader};
pub use source::DataSource;

use std::path::PathBuf;

/// What went wrong reading a data set or an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sandbox refused a path ([`crate::io::access`]).
    #[error(transparent)]
    Denied(#[from] crate::io::access::Denied),

    /// An image file could not be read or decoded.
    #[error("{path}: cannot decode the image ({why}); remove or replace the file")]
    Decode {
        /// The file or folder.
        path: PathBuf,
        /// Why, in a sentence.
        why: String,
    },
    /// An image larger than [`image::MAX_SIDE`], [`image::MAX_PIXELS`] or
    /// [`image::MAX_DECODED_BYTES`], refused before decoding.
    #[error(
        "{path}: the image is {width} × {height} pixels, beyond the limits of {} pixels a side and {} megapixels (a decompression bomb?); downscale it or remove it",
        image::MAX_SIDE,
        image::MAX_PIXELS / 1_000_000
    )]
    TooLarge {
        /// The file or folder.
        path: PathBuf,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// An image the eval transform cannot take.
    #[error("{why}; crop the image or remove it")]
    Transform {
        /// Why, in a sentence.
        why: String,
    },
    /// A data set folder does not have the expected layout.
    #[error("{path}: {why}")]
    Layout {
        /// The file or folder.
        path: PathBuf,
        /// Why, in a sentence.
        why: String,
    },
    /// Reading a file or folder failed.
    #[error("cannot read {path}: {source}; check the path")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An index outside the data set.
    #[error("image {index} is out of range: the data set has {len} images")]
    OutOfRange {
        /// The index given.
        index: usize,
        /// The number of images.
        len: usize,
    },
    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Short for `std::result::Result<T, epic::data::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A labelled image collection with a stable order.
pub trait Dataset: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class index of image `i`.
    fn label(&self, i: usize) -> i64;
    /// Class names, by class index.
    fn class_names(&self) -> &[String];
    /// Decodes image `i` to RGB.
    fn image(&self, i: usize) -> Result<::image::RgbImage>;
    /// A human-readable name of image `i` (its path, or set and index).
    fn describe(&self, i: usize) -> String;
    /// A string that changes whenever the images or their order change: the
    /// feature bank's cache key includes it.
    fn fingerprint(&self) -> String;
    /// How to open this data set again (a run's `.epic/run.json` records it);
    /// `None` for data sets made in memory.
    fn source(&self) -> Option<DataSource> {
        None
    }
}
