//! Where a data set comes from, written into a run's `.epic/run.json` so that
//! `epic explain`, `epic evaluate` and `epic report` open the same images again.
use super::{Dataset, FashionMnist, ImageFolder, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// How to open a data set again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// A Fashion-MNIST split from the IDX files in `dir`.
    FashionMnist {
        /// The folder of the IDX files.
        dir: PathBuf,
        /// `train` or `test`.
        split: String,
        /// The first `per_class` images of each class, when given.
        per_class: Option<usize>,
    },
    /// An image folder, one sub-folder per class.
    ImageFolder {
        /// The folder.
        root: PathBuf,
    },
}

impl DataSource {
    /// Opens the data set.
    pub fn open(&self) -> Result<Arc<dyn Dataset>> {
        Ok(match self {
            DataSource::FashionMnist { dir, split, per_class } => {
                Arc::new(FashionMnist::open(Some(dir), split, *per_class)?)
            }
            DataSource::ImageFolder { root } => Arc::new(ImageFolder::open(root)?),
        })
    }
}
