//! Script bindings for networks: the `Model` handle, `load_model`, its
//! transform, and `predict`.
use super::tensor::ScriptTensor;
use super::{host_device, options};
use crate::config::Section;
use crate::model::{ModelSpec, Network};
use rhai::plugin::*;
use rhai::{Array, Map, FLOAT, INT};
use std::fmt;
use std::path::Path;
use std::rc::Rc;

/// A script's handle on a network with its weights.
#[derive(Clone)]
pub struct ModelHandle(pub Rc<Network>);

impl fmt::Display for ModelHandle {
    /// `Model(efficientnet_lite0, C = 1280, K = 1000, cpu)`
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

/// A network from a script's model map (a config's `model` section), on the
/// host's device unless the map names one.
pub(crate) fn load(spec: &Map, ctx: &NativeCallContext) -> Result<ModelHandle, Box<EvalAltResult>> {
    let value = options(spec);
    let section = Section::at(&value, "model")?;
    let net = ModelSpec::from_config(&section, host_device(ctx))?.load()?;
    Ok(ModelHandle(Rc::new(net)))
}

fn prediction_map(p: crate::explain::Prediction) -> Dynamic {
    let mut m = Map::new();
    m.insert("class".into(), Dynamic::from_int(p.class));
    m.insert("name".into(), p.name.into());
    m.insert("prob".into(), Dynamic::from_float(p.prob as FLOAT));
    Dynamic::from_map(m)
}

/// The script functions for networks (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// A libtorch tensor.
    pub type Tensor = ScriptTensor;
    /// A pretrained network split into backbone and head.
    pub type Model = ModelHandle;

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
        load(&spec, &ctx)
    }

    /// A network from a map: `name`, `weights` or `custom_weights_path` (.pth,
    /// checkpoint with a `model` entry, or .safetensors), `num_classes`, `device`,
    /// `precision` (`f32`, `f16`, `bf16`) and `resize`/`crop` to change the
    /// transform's sizes; so `load_model(cfg.model)` takes the reference config's
    /// model section. Any other network: `name: "torchscript"`, `backbone` (a
    /// torch.jit file of the part before pooling) and `weights` (its linear head:
    /// weight, bias).
    ///
    /// ```rhai
    /// let model = load_model(#{ name: "resnet34", weights: "weights/resnet34-b627a593.pth" });
    /// ```
    #[rhai_fn(name = "load_model", return_raw)]
    pub fn load_model_map(ctx: NativeCallContext, spec: Map) -> Result<Model, Box<EvalAltResult>> {
        load(&spec, &ctx)
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

    /// The model's eval transform: `#{ resize, crop, mean, std, interpolation }`
    /// (`"bilinear"` or `"bicubic"`, both antialiased).
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
        let filter = match p.interpolation {
            crate::model::Interpolation::Bilinear => "bilinear",
            crate::model::Interpolation::Bicubic => "bicubic",
        };
        map.insert("interpolation".into(), filter.into());
        map
    }

    /// The top-k classes of an image file: an array of `#{ class, name, prob }`.
    ///
    /// ```rhai
    /// for p in predict(model, "tests/fixtures/efficientnet_lite0/photos/coffee.png", 3) { print(`${p.name}: ${p.prob}`); }
    /// ```
    #[rhai_fn(name = "predict", return_raw)]
    pub fn predict_path(m: Model, path: &str, k: INT) -> Result<Array, Box<EvalAltResult>> {
        let preds = crate::explain::predict_file(&m.0, Path::new(path), k)?;
        Ok(preds.into_iter().map(prediction_map).collect())
    }

    /// The top-k classes of a preprocessed image `[3,H,W]` (as `dataset.image(i)`
    /// returns), named as explanations name them.
    ///
    /// ```rhai
    /// let p = predict(model, train.image(0), 1);
    /// ```
    #[rhai_fn(name = "predict", return_raw)]
    pub fn predict_tensor(m: Model, image: Tensor, k: INT) -> Result<Array, Box<EvalAltResult>> {
        let preds = crate::explain::predict_image(&m.0, &image.0, k)?;
        Ok(preds.into_iter().map(prediction_map).collect())
    }

    /// `Model(efficientnet_lite0, C = 1280, K = 1000, cpu)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_model(m: &mut Model) -> String {
        m.to_string()
    }
}
