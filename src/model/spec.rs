//! What to load — an architecture, its weights, its classes, its device, its
//! transform sizes and precision — read from a config's `model` section
//! ([`ModelSpec::from_config`]), and [`load`], which builds and loads it.
use super::backbone::Preprocess;
use super::network::Network;
use super::{default_weights, pth, Error, Result};
use crate::config::Section;
use std::path::PathBuf;

/// What to load: an architecture, its weights, its classes, where, at what size.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Architecture name (see [`ARCHITECTURES`](super::ARCHITECTURES)), or
    /// `torchscript` for a TorchScript backbone.
    pub name: String,
    /// Weights file; `None` uses [`default_weights`].
    pub weights: Option<PathBuf>,
    /// Number of classes of the head (a fine-tuned checkpoint's own).
    pub num_classes: i64,
    /// Where the network runs.
    pub device: tch::Device,
    /// (resize, crop) overriding the architecture's transform sizes.
    pub sizes: Option<(i64, i64)>,
    /// For `name = "torchscript"`: the TorchScript backbone file; `weights` then
    /// holds the head (`weight` `[K,C]` and `bias` `[K]`, optionally under a prefix).
    pub backbone: Option<PathBuf>,
    /// The backbone's compute dtype: `Float` (default), `Half` or `BFloat16`
    /// (see [`Network::set_precision`]).
    pub precision: tch::Kind,
}

/// The resize of the transform for weights given by file (`custom_weights_path`),
/// as the reference's `ClassificationPresetEval` (bilinear, antialiased).
pub const CUSTOM_WEIGHTS_RESIZE: i64 = 256;
/// The crop of that transform.
pub const CUSTOM_WEIGHTS_CROP: i64 = 224;

/// A precision's name in configs (`f32`, `f16`, `bf16`) → its dtype.
pub fn parse_precision(name: &str) -> crate::Result<tch::Kind> {
    match name {
        "f32" | "float32" => Ok(tch::Kind::Float),
        "f16" | "float16" | "half" => Ok(tch::Kind::Half),
        "bf16" | "bfloat16" => Ok(tch::Kind::BFloat16),
        other => Err(crate::Error::Config {
            key: "model.precision".into(),
            why: format!("unknown precision {other:?}; use f32, f16 or bf16"),
        }),
    }
}

impl ModelSpec {
    /// `name` with its default weights, 1000 classes, on `device`.
    pub fn new(name: &str, device: tch::Device) -> Self {
        ModelSpec {
            name: name.into(),
            weights: None,
            num_classes: 1000,
            device,
            sizes: None,
            backbone: None,
            precision: tch::Kind::Float,
        }
    }

    /// The spec a config's `model` section describes: `name` (required),
    /// `custom_weights_path` (the reference's key) or `weights`, `num_classes`
    /// (1000), `device` (else `device`), `resize`/`crop`, `backbone` (TorchScript)
    /// and `precision` (`f32`, `f16`, `bf16`).
    pub fn from_config(model: &Section, device: tch::Device) -> crate::Result<Self> {
        let name = model
            .string(&["name"])?
            .ok_or_else(|| model.invalid("name", "missing: name an architecture, e.g. name: efficientnet_lite0"))?;
        let mut s = ModelSpec::new(&name, device);
        s.num_classes = model.int(&["num_classes"], 1000)?;
        if let Some(d) = model.string(&["device"])? {
            s.device = crate::device::parse_device(&d)?;
        }
        s.weights = model.string(&["weights", "custom_weights_path"])?.map(PathBuf::from);
        s.backbone = model.string(&["backbone"])?.map(PathBuf::from);
        if let Some(p) = model.string(&["precision"])? {
            s.precision = parse_precision(&p)?;
        }
        let crop = model.int(&["crop"], 0)?;
        let resize = model.int(&["resize"], 0)?;
        if crop > 0 || resize > 0 {
            s.sizes = Some((if resize > 0 { resize } else { crop }, if crop > 0 { crop } else { resize }));
        }
        Ok(s)
    }

    /// Builds and loads the network this spec describes.
    pub fn load(&self) -> crate::Result<Network> {
        Ok(load(self)?)
    }
}

/// Builds and loads a network as `spec` says. Errors name the missing weights file
/// and what to set.
///
/// The eval transform is the registry's (the one torchvision's ImageNet weights
/// were evaluated with) for the default weights, and — as in the reference —
/// 256 → 224 bilinear for a weights file given in `weights`/`custom_weights_path`;
/// `sizes` (`model.resize`/`model.crop`) override either.
pub fn load(spec: &ModelSpec) -> Result<Network> {
    if spec.name == "torchscript" {
        return load_torchscript(spec);
    }
    let mut net = Network::new(&spec.name, spec.num_classes, spec.device)?;
    let weights = spec
        .weights
        .clone()
        .or_else(|| default_weights(&spec.name))
        .ok_or_else(|| Error::NoWeights { model: spec.name.clone() })?;
    if !weights.is_file() {
        return Err(Error::WeightsNotFound { path: weights });
    }
    net.load_weights(&weights)?;
    if spec.weights.is_some() {
        // As the reference: weights of one's own (`custom_weights_path`) are
        // evaluated with resize 256, crop 224, bilinear, whatever transform the
        // architecture's torchvision weights used.
        net.set_sizes(CUSTOM_WEIGHTS_RESIZE, CUSTOM_WEIGHTS_CROP);
        net.set_interpolation(super::Interpolation::Bilinear);
    }
    if let Some((resize, crop)) = spec.sizes {
        net.set_sizes(resize, crop);
    }
    if spec.precision != tch::Kind::Float {
        net.set_precision(spec.precision)?;
    }
    Ok(net)
}

fn load_torchscript(spec: &ModelSpec) -> Result<Network> {
    let need = |what: &str| {
        Error::Invalid {
        model: "torchscript".into(),
        why: format!("needs `{what}`: the backbone is a TorchScript file (`backbone`), the head a state dict with weight and bias (`weights`)"),
    }
    };
    let backbone = spec.backbone.as_ref().ok_or_else(|| need("backbone"))?;
    let head_file = spec.weights.as_ref().ok_or_else(|| need("weights"))?;
    let state = if head_file.extension().is_some_and(|e| e == "safetensors") {
        crate::io::load_tensors(head_file).map_err(|e| Error::Format { path: head_file.clone(), why: e.to_string() })?
    } else {
        pth::read_pth(head_file)?.state_dict(None)?
    };
    let find = |suffix: &str| {
        let hits: Vec<&(String, tch::Tensor)> =
            state.iter().filter(|(k, _)| k == suffix || k.ends_with(&format!(".{suffix}"))).collect();
        match hits.as_slice() {
            [one] => Ok(one.1.shallow_clone()),
            _ => Err(Error::Format {
                path: head_file.clone(),
                why: format!("expected exactly one `{suffix}` tensor for the head, found {}", hits.len()),
            }),
        }
    };
    let mut preprocess = Preprocess::IMAGENET;
    if let Some((resize, crop)) = spec.sizes {
        preprocess.resize = resize;
        preprocess.crop = crop;
    }
    Network::from_torchscript(backbone, &find("weight")?, &find("bias")?, preprocess, spec.device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_config_reads_the_reference_keys() {
        let v: serde_yaml::Value = serde_yaml::from_str(
            "model: {name: resnet34, custom_weights_path: w.pth, num_classes: 200, resize: 64, precision: bf16}",
        )
        .unwrap();
        let root = Section::root(&v).unwrap();
        let s = ModelSpec::from_config(&root.section("model").unwrap(), tch::Device::Cpu).unwrap();
        assert_eq!((s.name.as_str(), s.num_classes, s.sizes), ("resnet34", 200, Some((64, 64))));
        assert_eq!((s.weights, s.precision), (Some(PathBuf::from("w.pth")), tch::Kind::BFloat16));
        let v: serde_yaml::Value = serde_yaml::from_str("model: {num_classes: 3}").unwrap();
        let e = ModelSpec::from_config(&Section::root(&v).unwrap().section("model").unwrap(), tch::Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.name: missing"), "{e}");
    }
}
