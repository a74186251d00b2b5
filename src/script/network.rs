//! Script bindings for networks, data sets and feature banks: `load_model`,
//! `predict`, `image_folder`, `fashion_mnist`, `extract`.
use super::rt;
use super::tensor::ScriptTensor;
use crate::data::{Dataset, FashionMnist, ImageFolder};
use crate::features::{Bank, ExtractOptions, ExtractReport};
use crate::model::{Network, Preprocess};
use rhai::plugin::*;
use rhai::{Array, Map, FLOAT, INT};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// A script's handle on a network with its weights.
#[derive(Clone)]
pub struct ModelHandle(pub Rc<Network>);

/// A script's handle on a data set, bound to a network's transform.
#[derive(Clone)]
pub struct DatasetHandle {
    pub dataset: Arc<dyn Dataset>,
    pub preprocess: Preprocess,
}

/// A script's handle on a feature bank, how it was made, and what training on it
/// needs: the model and data set it came from and the memo of prototype maps.
#[derive(Clone)]
pub struct BankHandle {
    pub bank: Rc<Bank>,
    pub report: Rc<ExtractReport>,
    pub model: ModelHandle,
    pub dataset: DatasetHandle,
    pub memo: Rc<std::cell::RefCell<crate::features::FeatureMemo>>,
    /// The `batch_size` the bank was extracted with: also the batch of memo maps.
    pub batch_size: usize,
}

impl BankHandle {
    /// A loader of the bank's data set for its model, in the extraction's batches.
    pub fn loader(&self) -> crate::data::Loader {
        let batch_size = self.batch_size;
        // The model's transform: the one the bank's sums were computed with.
        crate::data::Loader::new(self.dataset.dataset.clone(), self.model.0.preprocess(), batch_size)
    }
}

/// Default bound of the prototype-map memo: 4 GiB.
pub const MEMO_BYTES: usize = 4 << 30;

impl fmt::Display for ModelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.0;
        write!(
            f,
            "Model({}, C = {}, K = {}, {})",
            n.name(),
            n.channels(),
            n.num_classes(),
            crate::device::device_name(n.device())
        )
    }
}

impl fmt::Display for BankHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.bank;
        write!(f, "Bank(N = {}, C = {}, maps {}×{})", b.len(), b.channels(), b.map_size.0, b.map_size.1)
    }
}

fn get<'a>(map: &'a Map, keys: &[&str]) -> Option<&'a Dynamic> {
    keys.iter().find_map(|k| map.get(*k)).filter(|v| !v.is_unit())
}

/// Loads a network: `spec` has `name`, optional `weights` (or the reference's
/// `custom_weights_path`), `num_classes` (default 1000), `device`, `resize`, `crop`,
/// `precision` (`f32`, default; `f16` or `bf16` for the backbone, mainly on a GPU).
pub fn load_network(spec: &Map, default_device: tch::Device) -> Result<Network, Box<EvalAltResult>> {
    let name =
        get(spec, &["name"]).ok_or("load_model: the map needs a `name`, e.g. #{ name: \"efficientnet_lite0\" }")?;
    let name = name.clone().into_string().map_err(|t| format!("load_model: name must be a string, got a {t}"))?;
    let mut s = crate::model::ModelSpec::new(&name, default_device);
    s.num_classes = crate::script::map_int(spec, &["num_classes"], 1000)?;
    if let Some(d) = get(spec, &["device"]) {
        s.device = rt(crate::device::parse_device(&d.to_string()))?;
    }
    if let Some(w) = get(spec, &["weights", "custom_weights_path"]) {
        let w = w.clone().into_string().map_err(|t| format!("load_model: weights must be a path string, got a {t}"))?;
        s.weights = Some(PathBuf::from(w));
    }
    if let Some(b) = get(spec, &["backbone"]) {
        s.backbone = Some(PathBuf::from(b.to_string()));
    }
    if let Some(p) = get(spec, &["precision"]) {
        s.precision = crate::model::parse_precision(&p.to_string()).map_err(|e| e.to_string())?;
    }
    let crop = crate::script::map_int(spec, &["crop"], 0)?;
    let resize = crate::script::map_int(spec, &["resize"], 0)?;
    if crop > 0 || resize > 0 {
        s.sizes = Some((if resize > 0 { resize } else { crop }, if crop > 0 { crop } else { resize }));
    }
    crate::model::load(&s).map_err(|e| e.to_string().into())
}

/// `opts.batch_size`: an int, or `"auto"` for the largest that fits the
/// model's device ([`Network::fit_batch_size`]); `default` when absent.
pub fn batch_size_of(opts: &Map, model: &ModelHandle, default: usize) -> Result<usize, Box<EvalAltResult>> {
    match get(opts, &["batch_size"]) {
        Some(v) if v.is_string() && v.to_string() == "auto" => {
            let b = model.0.fit_batch_size(1024);
            eprintln!("batch_size auto: {b} on {}", crate::device::device_name(model.0.device()));
            Ok(b)
        }
        _ => Ok(crate::script::map_int(opts, &["batch_size"], default as i64)?.max(1) as usize),
    }
}

#[export_module]
pub mod api {
    use super::*;

    pub type Tensor = ScriptTensor;
    /// A pretrained network split into backbone and head.
    pub type Model = ModelHandle;
    /// A labelled image set with the transform of the model it was opened for.
    pub type Dataset = DatasetHandle;
    /// One backbone pass over a data set: spatial sums, labels, predictions.
    pub type Bank = BankHandle;

    /// A network by name with its default weights (EfficientNet-Lite0's come
    /// with the setup), on the host's device.
    ///
    /// ```rhai
    /// let model = load_model("efficientnet_lite0");
    /// ```
    #[rhai_fn(name = "load_model", return_raw)]
    pub fn load_model_named(ctx: NativeCallContext, name: &str) -> Result<Model, Box<EvalAltResult>> {
        let mut spec = Map::new();
        spec.insert("name".into(), name.into());
        load_network(&spec, super::super::host_device(&ctx)).map(|n| ModelHandle(Rc::new(n)))
    }

    /// A network from a map: `name`, `weights` or `custom_weights_path` (.pth,
    /// checkpoint with a `model` entry, or .safetensors), `num_classes`, `device`,
    /// and `resize`/`crop` to change the transform's sizes; so
    /// `load_model(cfg.model)` takes the reference config's model section. Any
    /// other network: `name: "torchscript"`, `backbone` (a torch.jit file of the
    /// part before pooling) and `weights` (its linear head: weight, bias).
    ///
    /// ```rhai
    /// let model = load_model(#{ name: "resnet34", weights: "weights/resnet34-b627a593.pth" });
    /// ```
    #[rhai_fn(name = "load_model", return_raw)]
    pub fn load_model_map(ctx: NativeCallContext, spec: Map) -> Result<Model, Box<EvalAltResult>> {
        load_network(&spec, super::super::host_device(&ctx)).map(|n| ModelHandle(Rc::new(n)))
    }

    /// C, the channels of the feature map.
    #[rhai_fn(pure)]
    pub fn channels(m: &mut Model) -> INT {
        m.0.channels()
    }

    /// K, the number of classes.
    #[rhai_fn(pure)]
    pub fn num_classes(m: &mut Model) -> INT {
        m.0.num_classes()
    }

    /// The model's eval transform: `#{ resize, crop, mean, std }`.
    ///
    /// ```rhai
    /// print(model.transform().crop);   // 224
    /// ```
    #[rhai_fn(pure)]
    pub fn transform(m: &mut Model) -> Map {
        let p = m.0.preprocess();
        let arr = |v: [f64; 3]| Dynamic::from_array(v.iter().map(|&x| Dynamic::from_float(x)).collect());
        let mut map = Map::new();
        map.insert("resize".into(), Dynamic::from_int(p.resize));
        map.insert("crop".into(), Dynamic::from_int(p.crop));
        map.insert("mean".into(), arr(p.mean));
        map.insert("std".into(), arr(p.std));
        map
    }

    /// The top-k classes of an image file: an array of `#{ class, name, prob }`.
    ///
    /// ```rhai
    /// for p in predict(model, "tests/fixtures/efficientnet_lite0/photos/coffee.png", 3) { print(`${p.name}: ${p.prob}`); }
    /// ```
    #[rhai_fn(name = "predict", return_raw)]
    pub fn predict_path(m: Model, path: &str, k: INT) -> Result<Array, Box<EvalAltResult>> {
        let preds = rt(crate::predict::predict_file(&m.0, Path::new(path), k))?;
        Ok(preds.into_iter().map(prediction_map).collect())
    }

    /// The top-k classes of a preprocessed image [3,H,W] (as `dataset.image(i)` returns).
    ///
    /// ```rhai
    /// let p = predict(model, train.image(0), 1);
    /// ```
    #[rhai_fn(name = "predict", return_raw)]
    pub fn predict_tensor(m: Model, image: Tensor, k: INT) -> Result<Array, Box<EvalAltResult>> {
        let names = crate::data::classes::names_for(m.0.num_classes());
        let x = image.0.f_unsqueeze(0).map_err(|e| e.to_string())?;
        let mut preds = rt(crate::predict::predict(&m.0, &x, k, &names))?;
        Ok(preds.remove(0).into_iter().map(prediction_map).collect())
    }

    /// An image folder laid out as torchvision's ImageFolder (one sub-folder per
    /// class), in its order, with the model's transform.
    ///
    /// ```rhai
    /// let train = image_folder("data/imagenet-1k/train", model);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn image_folder(path: &str, model: Model) -> Result<Dataset, Box<EvalAltResult>> {
        let folder = ImageFolder::open(Path::new(path)).map_err(|e| e.to_string())?;
        if !folder.skipped().is_empty() {
            eprintln!(
                "warning: {}: skipped {} non-image file(s), e.g. {}",
                path,
                folder.skipped().len(),
                folder.skipped()[0].display()
            );
        }
        Ok(DatasetHandle { dataset: Arc::new(folder), preprocess: model.0.preprocess() })
    }

    /// Fashion-MNIST (Debian's dataset-fashion-mnist): split `"train"` or `"test"`,
    /// the first `per_class` images of each class (0: all), with the model's transform.
    ///
    /// ```rhai
    /// let train = fashion_mnist("train", 20, model);   // 200 images
    /// ```
    #[rhai_fn(return_raw)]
    pub fn fashion_mnist(split: &str, per_class: INT, model: Model) -> Result<Dataset, Box<EvalAltResult>> {
        let per_class = (per_class > 0).then_some(per_class as usize);
        let ds = FashionMnist::open(None, split, per_class).map_err(|e| e.to_string())?;
        Ok(DatasetHandle { dataset: Arc::new(ds), preprocess: model.0.preprocess() })
    }

    /// Number of images.
    #[rhai_fn(pure, name = "len")]
    pub fn dataset_len(d: &mut Dataset) -> INT {
        d.dataset.len() as INT
    }

    /// Image i through the model's transform: [3,crop,crop] f32.
    #[rhai_fn(pure, name = "image", return_raw)]
    pub fn dataset_image(d: &mut Dataset, i: INT) -> Result<Tensor, Box<EvalAltResult>> {
        let i = usize::try_from(i).map_err(|_| format!("image: index {i} is negative"))?;
        let img = d.dataset.image(i).map_err(|e| e.to_string())?;
        crate::data::transform::preprocess(&img, &d.preprocess).map(ScriptTensor).map_err(|e| e.to_string().into())
    }

    /// Class index of image i.
    #[rhai_fn(pure, name = "label", return_raw)]
    pub fn dataset_label(d: &mut Dataset, i: INT) -> Result<INT, Box<EvalAltResult>> {
        match usize::try_from(i) {
            Ok(i) if i < d.dataset.len() => Ok(d.dataset.label(i)),
            _ => Err(format!("label: image {i} is out of range 0..{}", d.dataset.len()).into()),
        }
    }

    /// The class names, by class index.
    #[rhai_fn(pure)]
    pub fn class_names(d: &mut Dataset) -> Array {
        d.dataset.class_names().iter().map(|s| Dynamic::from(s.clone())).collect()
    }

    /// One backbone pass over the data set: a `Bank`. `opts` takes `batch_size`
    /// (an int, or `"auto"`: the largest that fits the GPU; the reference's
    /// dataloader section works: other keys are ignored),
    /// `cache` (a folder: reuse and resume), `chunk` (images per cache file),
    /// `memo_mib` (bound of the prototype-map memo, 4096 MiB by default),
    /// `memo_half` (keep memo maps in f16) and `quiet`.
    ///
    /// ```rhai
    /// let bank = extract(model, train, #{ batch_size: 64, cache: "outputs/cache" });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn extract(model: Model, dataset: Dataset, opts: Map) -> Result<Bank, Box<EvalAltResult>> {
        let defaults = ExtractOptions::default();
        let options = ExtractOptions {
            batch_size: batch_size_of(&opts, &model, defaults.batch_size)?,
            chunk: crate::script::map_int(&opts, &["chunk"], defaults.chunk as i64)?.max(1) as usize,
            cache: get(&opts, &["cache"]).map(|c| PathBuf::from(c.to_string())),
            quiet: get(&opts, &["quiet"]).and_then(|q| q.as_bool().ok()).unwrap_or(false),
        };
        let memo_mib = crate::script::map_int(&opts, &["memo_mib"], (MEMO_BYTES >> 20) as i64)?.max(0) as usize;
        let half = get(&opts, &["memo_half"]).and_then(|q| q.as_bool().ok()).unwrap_or(false);
        let mut memo = crate::features::FeatureMemo::new(memo_mib << 20, half);
        let (bank, report) =
            crate::features::extract_into(&model.0, dataset.dataset.clone(), &options, Some(&mut memo))
                .map_err(|e| e.to_string())?;
        Ok(BankHandle {
            bank: Rc::new(bank),
            report: Rc::new(report),
            model,
            dataset,
            memo: Rc::new(std::cell::RefCell::new(memo)),
            batch_size: options.batch_size,
        })
    }

    /// Fits a `classes`-way linear head on the bank's pooled features (softmax
    /// regression, 300 full-batch Adam steps): returns the bank with that model,
    /// whose predictions come from the new head. The backbone is shared.
    ///
    /// ```rhai
    /// let bank = fit_head(extract(model, fashion_mnist("train", 20, model), #{}), 10);
    /// let model = bank.model();
    /// ```
    #[rhai_fn(return_raw)]
    pub fn fit_head(b: Bank, classes: INT) -> Result<Bank, Box<EvalAltResult>> {
        let fitted = rt(crate::features::fit_head(&b.bank, classes, 300, 0.05))?;
        eprintln!("fit_head: {classes} classes, training accuracy {:.3}", fitted.train_accuracy);
        let net = b.model.0.with_head(&fitted.weight, &fitted.bias).map_err(|e| e.to_string())?;
        let predicted =
            rt(b.bank.logits(&fitted.weight, &fitted.bias).and_then(|l| l.f_argmax(1, false).map_err(Into::into)))?;
        let bank = b.bank.with_predictions(predicted);
        let memo = b.memo.clone();
        Ok(BankHandle {
            bank: Rc::new(bank),
            report: b.report,
            model: ModelHandle(Rc::new(net)),
            dataset: b.dataset,
            memo,
            batch_size: b.batch_size,
        })
    }

    /// The model the bank was made with (after `fit_head`, the one with the new head).
    #[rhai_fn(pure)]
    pub fn model(b: &mut Bank) -> Model {
        b.model.clone()
    }

    /// The data set the bank was made from.
    #[rhai_fn(pure)]
    pub fn dataset(b: &mut Bank) -> Dataset {
        b.dataset.clone()
    }

    /// N, the number of images.
    #[rhai_fn(pure, name = "len")]
    pub fn bank_len(b: &mut Bank) -> INT {
        b.bank.len() as INT
    }

    /// The spatial sums Σ_hw Z [N,C].
    #[rhai_fn(pure)]
    pub fn sums(b: &mut Bank) -> Tensor {
        ScriptTensor(b.bank.sums.shallow_clone())
    }

    /// Labels [N] int64.
    #[rhai_fn(pure)]
    pub fn labels(b: &mut Bank) -> Tensor {
        ScriptTensor(b.bank.labels.shallow_clone())
    }

    /// The network's predictions [N] int64.
    #[rhai_fn(pure)]
    pub fn predicted(b: &mut Bank) -> Tensor {
        ScriptTensor(b.bank.predicted.shallow_clone())
    }

    /// Top-m prototypes per channel without U: int64 [C,m] image indices.
    #[rhai_fn(pure, name = "top_prototypes", return_raw)]
    pub fn bank_top(b: &mut Bank, m: INT) -> Result<Tensor, Box<EvalAltResult>> {
        rt(b.bank.top_prototypes(None, m)).map(ScriptTensor)
    }

    /// Top-m prototypes per channel under U [C,C]: the top-m of sums·Uᵀ.
    ///
    /// ```rhai
    /// let protos = bank.top_prototypes(d.matrix(), 5);
    /// ```
    #[rhai_fn(pure, name = "top_prototypes", return_raw)]
    pub fn bank_top_u(b: &mut Bank, u: Tensor, m: INT) -> Result<Tensor, Box<EvalAltResult>> {
        rt(b.bank.top_prototypes(Some(&u.0), m)).map(ScriptTensor)
    }

    /// How the bank was made: `#{ key, batches_run, chunks_reused, chunks_computed, failed }`.
    #[rhai_fn(pure)]
    pub fn report(b: &mut Bank) -> Map {
        let r = &b.report;
        let mut m = Map::new();
        m.insert("key".into(), r.key.clone().into());
        m.insert("batches_run".into(), Dynamic::from_int(r.batches_run as INT));
        m.insert("chunks_reused".into(), Dynamic::from_int(r.chunks_reused as INT));
        m.insert("chunks_computed".into(), Dynamic::from_int(r.chunks_computed as INT));
        m.insert("failed".into(), Dynamic::from_int(r.failed.len() as INT));
        m
    }

    /// `Model(efficientnet_lite0, C = 1280, K = 1000, cpu)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_model(m: &mut Model) -> String {
        m.to_string()
    }

    /// `Bank(N = 200, C = 1280, maps 7×7)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_bank(b: &mut Bank) -> String {
        b.to_string()
    }

    /// `Dataset(200 images, 10 classes)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_dataset(d: &mut Dataset) -> String {
        format!("Dataset({} images, {} classes)", d.dataset.len(), d.dataset.class_names().len())
    }
}

fn prediction_map(p: crate::predict::Prediction) -> Dynamic {
    let mut m = Map::new();
    m.insert("class".into(), Dynamic::from_int(p.class));
    m.insert("name".into(), p.name.into());
    m.insert("prob".into(), Dynamic::from_float(p.prob as FLOAT));
    Dynamic::from_map(m)
}
