//! A study: everything one EPIC experiment works on, in one value — the
//! network, the training data set, its [`Bank`] (one backbone pass), the batch
//! size the bank was made with, and the [`FeatureMemo`] of prototype maps.
//!
//! These four always travel together: selecting prototypes reads the bank,
//! measuring their purity reads their maps from the memo, and a map the memo
//! lacks is recomputed by the network from the data set in the bank's batches.
//! A [`Study`] ties them once, so that the pipeline's verbs take one argument:
//!
//! ```no_run
//! # fn main() -> epic::Result<()> {
//! use epic::prelude::*;
//! let net = ModelSpec::new("efficientnet_lite0", Device::Cpu).load()?;
//! let train = std::sync::Arc::new(epic::data::FashionMnist::open(None, "train", Some(20))?);
//! let study = Study::extract(net, train, &ExtractOptions::default())?;
//! let mut d = Disentangler::identity(MatrixKind::Orthogonal, study.channels(), Device::Cpu)?;
//! let before = study.purity(&d, 5)?;
//! let history = study.train(&mut d, &TrainConfig::default())?;
//! # Ok(()) }
//! ```
//!
//! This module defines the type, its construction and its data. Each later stage
//! of the pipeline adds its verbs in its own module: `disentangle` adds
//! [`purities`](Study::purities) and [`train`](Study::train), `explain` adds
//! [`explain`](Study::explain), [`fit_head`](Study::fit_head) and
//! [`predict`](Study::predict), `render` adds [`prototype_grid`](Study::prototype_grid)
//! and [`explanation_figure`](Study::explanation_figure).
mod manifest;
mod preflight;
mod run_config;
mod sandbox;
pub mod slurm;

use crate::data::{classes, Dataset, Loader};
use crate::features::{extract_into, Bank, BatchSize, ExtractOptions, ExtractReport, FeatureMemo};
use crate::model::Network;
pub use manifest::{head_path, manifest_path, read_manifest, RunManifest, MANIFEST_VERSION};
pub use preflight::preflight;
pub use run_config::open_config;
pub use sandbox::script_policy;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use tch::Tensor;

/// One EPIC experiment's network, data set, bank and prototype-map memo.
///
/// Clones are cheap and share everything (the memo too).
#[derive(Clone)]
pub struct Study {
    network: Rc<Network>,
    dataset: Arc<dyn Dataset>,
    bank: Rc<Bank>,
    report: Rc<ExtractReport>,
    memo: Rc<RefCell<FeatureMemo>>,
    batch_size: usize,
}

/// How full the prototype-map memo is, and how often it served a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoStats {
    /// Maps held.
    pub maps: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Maps served from the memo.
    pub hits: usize,
    /// Maps computed by the backbone.
    pub misses: usize,
}

impl Study {
    /// One backbone pass of `network` over `dataset` (reusing and extending the
    /// cache of `options.cache`), offering every map to a memo of the options'
    /// bound: a study.
    pub fn extract(
        network: impl Into<Rc<Network>>,
        dataset: Arc<dyn Dataset>,
        options: &ExtractOptions,
    ) -> crate::Result<Study> {
        let network = network.into();
        let batch_size = options.batch_size.for_network(&network);
        let fixed = ExtractOptions { batch_size: BatchSize::Fixed(batch_size), ..options.clone() };
        let mut memo = options.memo();
        let (bank, report) = extract_into(&network, dataset.clone(), &fixed, Some(&mut memo))?;
        Ok(Study {
            network,
            dataset,
            bank: Rc::new(bank),
            report: Rc::new(report),
            memo: Rc::new(RefCell::new(memo)),
            batch_size,
        })
    }

    /// A study of a bank made elsewhere: `bank` must come from `network`'s
    /// backbone over `dataset` (maps the memo lacks are recomputed from them, in
    /// batches of `batch_size`).
    pub fn from_bank(
        network: impl Into<Rc<Network>>,
        dataset: Arc<dyn Dataset>,
        bank: Bank,
        batch_size: usize,
        memo: FeatureMemo,
    ) -> crate::Result<Study> {
        if bank.len() != dataset.len() {
            return Err(crate::Error::invalid(
                "Study::from_bank",
                format!("the bank has {} images, the data set {}", bank.len(), dataset.len()),
            ));
        }
        Ok(Study {
            network: network.into(),
            dataset,
            bank: Rc::new(bank),
            report: Rc::new(ExtractReport::default()),
            memo: Rc::new(RefCell::new(memo)),
            batch_size: batch_size.max(1),
        })
    }

    /// The same data set, bank and memo with another network of the same
    /// backbone (a new head): predictions come from its head, on the bank alone.
    pub fn with_network(&self, network: impl Into<Rc<Network>>) -> crate::Result<Study> {
        let network: Rc<Network> = network.into();
        let predicted = self.bank.logits(network.head_weight(), network.head_bias())?.f_argmax(1, false)?;
        Ok(Study { network, bank: Rc::new(self.bank.with_predictions(predicted)), ..self.clone() })
    }

    /// The network (after [`fit_head`](Study::fit_head), the one with the new head).
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The network, shared.
    pub fn network_rc(&self) -> Rc<Network> {
        self.network.clone()
    }

    /// The training data set the bank was made from.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// The bank: spatial sums, labels, predictions and validity per image.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// How the bank was made (batches run, chunks reused, images that failed).
    pub fn report(&self) -> &ExtractReport {
        &self.report
    }

    /// N, the number of training images.
    pub fn len(&self) -> usize {
        self.bank.len()
    }

    /// Whether the study has no images.
    pub fn is_empty(&self) -> bool {
        self.bank.is_empty()
    }

    /// C, the channels of the feature map.
    pub fn channels(&self) -> i64 {
        self.bank.channels()
    }

    /// Images per backbone batch, for the bank and for maps the memo lacks.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// A loader of the data set through the network's transform, in the bank's
    /// batches (the transform the sums were computed with).
    pub fn loader(&self) -> Loader {
        Loader::new(self.dataset.clone(), self.network.preprocess(), self.batch_size)
    }

    /// Feature maps of training images `indices` `[n,C,h,w]` f32 on the network's
    /// device, from the memo or, for those it lacks, one backbone pass.
    pub fn maps(&self, indices: &[usize]) -> crate::Result<Tensor> {
        self.memo.borrow_mut().maps(&self.network, &self.loader(), indices)
    }

    /// How full the memo is and how often it served.
    pub fn memo_stats(&self) -> MemoStats {
        let m = self.memo.borrow();
        MemoStats { maps: m.len(), bytes: m.bytes(), hits: m.hits, misses: m.misses }
    }

    /// The class names of the network's head: the one policy that explanations,
    /// predictions and figures share ([`classes::names_for_head`]), given the
    /// network's own names (a head fitted on a data set) or the data set's.
    pub fn class_names(&self) -> Vec<String> {
        let own = self.network.class_names();
        classes::names_for_head(self.network.num_classes(), own.or(Some(self.dataset.class_names())))
    }
}

impl std::fmt::Display for Study {
    /// `Bank(N = 200, C = 1280, maps 7×7)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.bank;
        write!(f, "Bank(N = {}, C = {}, maps {}×{})", b.len(), b.channels(), b.map_size.0, b.map_size.1)
    }
}
