//! Script bindings for feature banks: the `Bank` handle, which is a
//! [`Study`] (the network, the data set, the bank of one backbone pass and the
//! memo of prototype maps): `extract`, `fit_head`, sums, labels, prototypes,
//! purity.
use super::dataset::DatasetHandle;
use super::disentangler::DisentanglerHandle;
use super::model::ModelHandle;
use super::options;
use super::tensor::ScriptTensor;
use crate::config::Section;
use crate::explain::HeadFit;
use crate::features::ExtractOptions;
use crate::study::Study;
use rhai::plugin::*;
use rhai::{Map, FLOAT, INT};

/// The script functions for feature banks (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// A libtorch tensor.
    pub type Tensor = ScriptTensor;
    /// A pretrained network split into backbone and head.
    pub type Model = ModelHandle;
    /// A labelled image set with a model's transform.
    pub type Dataset = DatasetHandle;
    /// The learned change of basis U.
    pub type Disentangler = DisentanglerHandle;
    /// One backbone pass over a data set (spatial sums, labels, predictions),
    /// with the model and data set it came from and the memo of prototype maps.
    pub type Bank = Study;

    /// One backbone pass over the data set: a `Bank`. `opts` is the reference
    /// config's `dataloader` section: `batch_size` (an int, or `"auto"`: the
    /// largest that fits the GPU; 512 when absent), `cache` (a folder: reuse and
    /// resume), `chunk` (images per cache file), `memo_mib` (bound of the
    /// prototype-map memo, 1024 MiB), `memo_half` (keep memo maps in f16),
    /// `bank_mib` (above this many MiB of sums, the bank stays on disk in the
    /// cache and selection streams it; no bound when absent) and `quiet`; other
    /// keys are accepted and ignored.
    ///
    /// ```rhai
    /// let bank = extract(model, train, #{ batch_size: 64, cache: "outputs/cache" });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn extract(model: Model, dataset: Dataset, opts: Map) -> Result<Bank, Box<EvalAltResult>> {
        let value = options(&opts);
        let extract = ExtractOptions::from_config(&Section::at(&value, "dataloader")?)?;
        Ok(Study::extract(model.0, dataset.dataset, &extract)?)
    }

    /// Records the run in `out` for `epic explain`, `epic evaluate` and
    /// `epic report`: `.epic/run.json` (where the training and held-out images come
    /// from, the bank's cache key, the class names, the command that made it) and
    /// `.epic/head.safetensors` (the head the run explained). Returns the manifest's path.
    ///
    /// ```rhai
    /// save_run(bank, val, d, cfg.output_path);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn save_run(
        ctx: NativeCallContext,
        bank: Bank,
        val: Dataset,
        d: Disentangler,
        out: &str,
    ) -> Result<String, Box<EvalAltResult>> {
        let kind = d.0.borrow().kind().name();
        let path = bank.save_manifest(
            std::path::Path::new(out),
            Some(val.dataset.as_ref()),
            kind,
            crate::script::host_command(&ctx),
        )?;
        Ok(path.display().to_string())
    }

    /// Fits a `classes`-way linear head on the bank's pooled features (softmax
    /// regression, 300 full-batch Adam steps): returns the bank with that model,
    /// whose predictions come from the new head and whose classes are named as the
    /// data set's. The backbone is shared.
    ///
    /// ```rhai
    /// let bank = fit_head(extract(model, fashion_mnist("train", 20, model), #{}), 10);
    /// let model = bank.model();
    /// ```
    #[rhai_fn(return_raw)]
    pub fn fit_head(b: Bank, classes: INT) -> Result<Bank, Box<EvalAltResult>> {
        let (study, fitted) = b.fit_head(classes, &HeadFit::default())?;
        eprintln!("fit_head: {classes} classes, training accuracy {:.3}", fitted.train_accuracy);
        Ok(study)
    }

    /// The model the bank was made with (after `fit_head`, the one with the new head).
    #[rhai_fn(pure)]
    pub fn model(b: &mut Bank) -> Model {
        ModelHandle(b.network_rc())
    }

    /// The data set the bank was made from.
    #[rhai_fn(pure)]
    pub fn dataset(b: &mut Bank) -> Dataset {
        DatasetHandle { dataset: b.dataset().clone(), preprocess: b.network().preprocess() }
    }

    /// N, the number of images.
    #[rhai_fn(pure, name = "len")]
    pub fn bank_len(b: &mut Bank) -> INT {
        b.len() as INT
    }

    /// The spatial sums Σ_hw Z `[N,C]` (a bank kept on disk, above
    /// `dataloader.bank_mib`, reads all of its chunks for this).
    #[rhai_fn(pure, return_raw)]
    pub fn sums(b: &mut Bank) -> Result<Tensor, Box<EvalAltResult>> {
        Ok(ScriptTensor(b.bank().sums()?))
    }

    /// Labels `[N]` int64.
    #[rhai_fn(pure)]
    pub fn labels(b: &mut Bank) -> Tensor {
        ScriptTensor(b.bank().labels.shallow_clone())
    }

    /// The network's predictions `[N]` int64.
    #[rhai_fn(pure)]
    pub fn predicted(b: &mut Bank) -> Tensor {
        ScriptTensor(b.bank().predicted.shallow_clone())
    }

    /// Top-m prototypes per channel without U: int64 `[C,m]` image indices.
    #[rhai_fn(pure, name = "top_prototypes", return_raw)]
    pub fn bank_top(b: &mut Bank, m: INT) -> Result<Tensor, Box<EvalAltResult>> {
        Ok(ScriptTensor(b.bank().top_prototypes(None, m)?))
    }

    /// Top-m prototypes per channel under U `[C,C]`: the top-m of sums·Uᵀ.
    ///
    /// ```rhai
    /// let protos = bank.top_prototypes(d.matrix(), 5);
    /// ```
    #[rhai_fn(pure, name = "top_prototypes", return_raw)]
    pub fn bank_top_u(b: &mut Bank, u: Tensor, m: INT) -> Result<Tensor, Box<EvalAltResult>> {
        Ok(ScriptTensor(b.bank().top_prototypes(Some(&u.0), m)?))
    }

    /// How the bank was made: `#{ key, batches_run, chunks_reused, chunks_computed,
    /// chunks_by_others, failed }` (`chunks_by_others`: computed meanwhile by
    /// another run sharing the cache).
    #[rhai_fn(pure)]
    pub fn report(b: &mut Bank) -> Map {
        let r = b.report();
        let mut m = Map::new();
        m.insert("key".into(), r.key.clone().into());
        m.insert("batches_run".into(), Dynamic::from_int(r.batches_run as INT));
        m.insert("chunks_reused".into(), Dynamic::from_int(r.chunks_reused as INT));
        m.insert("chunks_computed".into(), Dynamic::from_int(r.chunks_computed as INT));
        m.insert("chunks_by_others".into(), Dynamic::from_int(r.chunks_by_others as INT));
        m.insert("failed".into(), Dynamic::from_int(r.failed.len() as INT));
        m
    }

    /// Mean argmax purity of the top-m prototypes of every channel of the bank
    /// under the disentangler's U (m = 5 for the reference's before/after numbers).
    ///
    /// ```rhai
    /// let before = purity(bank, d, 5);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn purity(bank: Bank, d: Disentangler, m: INT) -> Result<FLOAT, Box<EvalAltResult>> {
        Ok(bank.purity(&d.0.borrow(), m)?)
    }

    /// Argmax purity of every channel's top-m prototypes under U: `[C·m]`, channel-major.
    ///
    /// ```rhai
    /// let before = prototype_purities(bank, d, 5);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prototype_purities(bank: Bank, d: Disentangler, m: INT) -> Result<Tensor, Box<EvalAltResult>> {
        Ok(ScriptTensor(bank.purities(&d.0.borrow(), m)?))
    }

    /// `Bank(N = 200, C = 1280, maps 7×7)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_bank(b: &mut Bank) -> String {
        b.to_string()
    }
}
