//! A pretrained classifier split where EPIC needs it: a backbone that maps images
//! to a feature map Z `[B,C,h,w]`, and a head that is global average pooling plus a
//! linear layer (A, b). head(backbone(x)) equals the full network's logits.
use super::backbone::{Backbone, KeyRenamer, Preprocess};
use super::layers::Linear;
use super::params::Params;
use super::{registry, Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A classifier with its weights, split into backbone and head.
pub struct Network {
    name: String,
    backbone: std::rc::Rc<dyn Backbone>,
    head: Linear,
    head_prefix: &'static str,
    channels: i64,
    preprocess: Preprocess,
    params: BTreeMap<String, Tensor>,
    /// Applied to every key of a state dict before matching (DenseNet's legacy names).
    rename: Option<KeyRenamer>,
    /// Keys of buffers the architecture computes itself, accepted on load (Swin's).
    derived: Option<fn(&str) -> bool>,
    /// Identity of weights that live outside `params` (a TorchScript backbone file).
    external: Option<String>,
    device: Device,
    /// The backbone's compute dtype: f32, or f16/bf16 after [`Network::set_precision`].
    precision: Kind,
    /// Names of the head's classes, when the head was fitted on a data set.
    class_names: Option<std::rc::Rc<Vec<String>>>,
}

impl Network {
    /// Builds architecture `name` with `num_classes` outputs on `device`; parameters
    /// are zero until [`load_state_dict`](Self::load_state_dict) or
    /// [`load_weights`](Self::load_weights). `name` is a row of the
    /// [registry](super::registry).
    pub fn new(name: &str, num_classes: i64, device: Device) -> Result<Self> {
        let arch = registry::find(name)?;
        if num_classes < 1 {
            return Err(Error::Invalid {
                model: name.into(),
                why: format!("num_classes = {num_classes}; must be at least 1"),
            });
        }
        let p = Params::new(device);
        let parts = (arch.build)(&p, num_classes)?;
        let (rename, preprocess, derived) = (arch.rename, arch.preprocess, arch.derived);
        Ok(Network {
            name: name.to_string(),
            backbone: std::rc::Rc::from(parts.backbone),
            head: parts.head,
            head_prefix: parts.head_prefix,
            channels: parts.channels,
            preprocess,
            params: p.into_map(),
            rename,
            derived,
            external: None,
            device,
            precision: Kind::Float,
            class_names: None,
        })
    }

    /// Any other network: a TorchScript backbone (a `torch.jit` trace or script of
    /// the part before average pooling, `[B,3,H,W]` → `[B,C,h,w]`) plus its linear head
    /// given as tensors, `weight` `[K,C]` and `bias` `[K]`. This is how networks epic
    /// has no Rust definition for (a mean-pooled ViT, say) come in.
    pub fn from_torchscript(
        backbone: &Path,
        weight: &Tensor,
        bias: &Tensor,
        preprocess: Preprocess,
        device: Device,
    ) -> Result<Self> {
        let fmt = |why: String| Error::Format { path: backbone.into(), why };
        if weight.dim() != 2 || bias.size() != [weight.size()[0]] {
            return Err(fmt(format!(
                "the head must be weight [K,C] and bias [K], got {:?} and {:?}",
                weight.size(),
                bias.size()
            )));
        }
        let mut module = tch::CModule::load_on_device(backbone, device).map_err(|e| {
            fmt(format!("not a loadable TorchScript file ({e}); export it with torch.jit.trace or torch.jit.script"))
        })?;
        module.f_set_eval()?;
        crate::io::access::check_read(backbone)?;
        let bytes = std::fs::read(backbone).map_err(|source| Error::Io { path: backbone.into(), source })?;
        let mut h = crate::io::Fingerprint::new();
        h.add_words(&bytes);
        let p = Params::new(device);
        let (k, c) = (weight.size()[0], weight.size()[1]);
        let head = Linear::new(&p.pp("head"), c, k)?;
        let mut params = p.into_map();
        {
            let _guard = tch::no_grad_guard();
            params
                .get_mut("head.weight")
                .map(|t| t.f_copy_(&weight.f_to_kind(Kind::Float)?.f_to_device(device)?))
                .transpose()?;
            params
                .get_mut("head.bias")
                .map(|t| t.f_copy_(&bias.f_to_kind(Kind::Float)?.f_to_device(device)?))
                .transpose()?;
        }
        let stem = backbone.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Network {
            name: format!("torchscript:{stem}"),
            backbone: std::rc::Rc::new(Scripted(module)),
            head,
            head_prefix: "head",
            channels: c,
            preprocess,
            params,
            rename: None,
            derived: None,
            external: Some(h.hex()),
            device,
            precision: Kind::Float,
            class_names: None,
        })
    }

    /// The names of the head's classes, when they are known (a head fitted on a
    /// data set names its classes as the data set does).
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref().map(Vec::as_slice)
    }

    /// The same network with its head's classes named `names` (one per class).
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Network> {
        if names.len() as i64 != self.num_classes() {
            return Err(Error::Invalid {
                model: self.name.clone(),
                why: format!("{} class names for a head of {} classes", names.len(), self.num_classes()),
            });
        }
        self.class_names = Some(std::rc::Rc::new(names));
        Ok(self)
    }

    /// The architecture name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// C, the channels of the feature map.
    pub fn channels(&self) -> i64 {
        self.channels
    }

    /// K, the number of classes.
    pub fn num_classes(&self) -> i64 {
        self.head.weight.size()[0]
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// How to prepare images for this network.
    pub fn preprocess(&self) -> Preprocess {
        self.preprocess
    }

    /// Overrides the resize and crop sizes.
    pub fn set_sizes(&mut self, resize: i64, crop: i64) {
        self.preprocess.resize = resize;
        self.preprocess.crop = crop;
    }

    /// Overrides the resize's filter.
    pub fn set_interpolation(&mut self, interpolation: super::Interpolation) {
        self.preprocess.interpolation = interpolation;
    }

    /// The head's weight A `[K,C]`.
    pub fn head_weight(&self) -> &Tensor {
        &self.head.weight
    }

    /// The head's bias b `[K]`.
    pub fn head_bias(&self) -> &Tensor {
        &self.head.bias
    }

    /// Parameter names and shapes, in name order.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<i64>)> {
        self.params.iter().map(|(k, v)| (k.clone(), v.size())).collect()
    }

    /// Feature maps: normalised images `[B,3,H,W]` → Z `[B,C,h,w]` f32, without gradients.
    ///
    /// To a CUDA device, host batches go through pinned memory with a
    /// non-blocking copy. Under a reduced [`precision`](Network::set_precision) the
    /// backbone runs in it and Z comes back as f32.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        if images.dim() != 4 || images.size()[1] != 3 {
            return Err(Error::Invalid {
                model: self.name.clone(),
                why: format!("images must be [B,3,H,W], got {:?}", images.size()),
            });
        }
        let x = if self.device.is_cuda() && images.device() == Device::Cpu {
            images.f_to_kind(Kind::Float)?.f_pin_memory(self.device)?.f_to_device_(
                self.device,
                self.precision,
                true,
                false,
            )?
        } else {
            images.f_to_device(self.device)?.f_to_kind(self.precision)?
        };
        // Channels-last where it pays: oneDNN in f32 on the CPU (its f16/bf16
        // depthwise kernels are slower so: MobileNetV2 bf16 1.4 → 2.2 s a batch),
        // and cuDNN's tensor-core kernels in half precision (its f32 kernels are
        // NCHW-first).
        let half = self.precision != Kind::Float;
        let channels_last = self.backbone.channels_last() && ((self.device == Device::Cpu) != half);
        let z = if channels_last {
            // NHWC in memory with the NCHW shape: the strides libtorch reads as
            // channels-last. The maps go back to the usual layout (a copy of Z only).
            let x = x.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?;
            self.backbone.forward(&x)?.f_contiguous()?
        } else {
            self.backbone.forward(&x)?
        };
        Ok(if z.kind() == Kind::Float { z } else { z.f_to_kind(Kind::Float)? })
    }

    /// [`features`](Network::features), bit for bit the same for an image in any
    /// batch: libtorch computes a batch of one image by another path on the CPU,
    /// whose maps differ from the same image's in a larger batch in the last bits
    /// (a batch of two or more agrees with any other, wherever the image sits).
    /// So a single image is computed beside a zero image. The bank's pass and the
    /// memo's recomputations use this, so that a map never depends on which
    /// images shared its batch: a resumed run equals an uninterrupted one.
    pub fn features_in_any_batch(&self, images: &Tensor) -> Result<Tensor> {
        if images.dim() != 4 || images.size()[0] != 1 {
            return self.features(images);
        }
        let pair = Tensor::f_cat(&[images, &images.f_zeros_like()?], 0)?;
        Ok(self.features(&pair)?.f_narrow(0, 0, 1)?)
    }

    /// The backbone's compute dtype (f32 unless [`set_precision`](Network::set_precision) changed it).
    pub fn precision(&self) -> Kind {
        self.precision
    }

    /// Runs the backbone in `kind`: `Float` (f32, the default), `Half` (f16) or
    /// `BFloat16`, converting its weights in place (networks made from this one by
    /// [`with_head`](Network::with_head) share them). On a GPU, f16/bf16 extraction
    /// roughly halves memory and time; EPIC's own math (U, purity, the head) stays
    /// f32. The difference in purity it causes is measured in `benches/RESULTS.md`.
    pub fn set_precision(&mut self, kind: Kind) -> Result<()> {
        if !matches!(kind, Kind::Float | Kind::Half | Kind::BFloat16) {
            return Err(Error::Invalid {
                model: self.name.clone(),
                why: format!("precision {kind:?} is not one of f32, f16, bf16"),
            });
        }
        if self.external.is_some() && kind != Kind::Float {
            return Err(Error::Invalid {
                model: self.name.clone(),
                why: "a TorchScript backbone runs in the precision it was saved in; use f32".into(),
            });
        }
        let head = format!("{}.", self.head_prefix);
        let _guard = tch::no_grad_guard();
        for (name, t) in self.params.iter_mut() {
            if !name.starts_with(&head) && t.is_floating_point() {
                let converted = t.f_to_kind(kind)?;
                t.f_set_data(&converted)?;
            }
        }
        self.precision = kind;
        super::layers::parameters_changed();
        Ok(())
    }

    /// Logits from feature maps: avgpool then the head, Z `[B,C,h,w]` → `[B,K]`.
    pub fn head_logits(&self, z: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        self.head.forward(&z.f_mean_dim([2i64, 3].as_slice(), false, Kind::Float)?)
    }

    /// Logits of the whole network: normalised images `[B,3,H,W]` → `[B,K]`.
    pub fn logits(&self, images: &Tensor) -> Result<Tensor> {
        self.head_logits(&self.features(images)?)
    }

    /// Copies a state dict's tensors into the network, by torchvision name.
    ///
    /// Every parameter must be present with its shape; `num_batches_tracked`
    /// counters and buffers the architecture computes itself (Swin's position
    /// tables, [`Architecture::derived`](super::Architecture::derived)) are ignored. Otherwise the error lists the missing and unexpected
    /// keys and the shape mismatches, and nothing is changed. Keys pass through the
    /// architecture's legacy renaming first, if it has one (DenseNet:
    /// `densenet::rename_legacy_key`).
    pub fn load_state_dict(&mut self, state: &[(String, Tensor)], origin: &Path) -> Result<()> {
        let renamed: Vec<(String, &Tensor)> =
            state.iter().map(|(k, v)| (self.rename.map_or_else(|| k.clone(), |f| f(k)), v)).collect();
        let given: BTreeMap<&str, &Tensor> = renamed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let missing: Vec<String> = self.params.keys().filter(|k| !given.contains_key(k.as_str())).cloned().collect();
        let unexpected: Vec<String> = given
            .keys()
            .filter(|k| {
                !self.params.contains_key(**k)
                    && !k.ends_with("num_batches_tracked")
                    && !self.derived.is_some_and(|derived| derived(k))
            })
            .map(|k| k.to_string())
            .collect();
        let shapes: Vec<(String, Vec<i64>, Vec<i64>)> = self
            .params
            .iter()
            .filter_map(|(k, v)| {
                given.get(k.as_str()).filter(|g| g.size() != v.size()).map(|g| (k.clone(), v.size(), g.size()))
            })
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() || !shapes.is_empty() {
            return Err(Error::Mismatch(Box::new(super::Mismatch {
                path: origin.into(),
                model: self.name.clone(),
                head: self.head_prefix,
                missing,
                unexpected,
                shapes,
            })));
        }
        let _guard = tch::no_grad_guard();
        for (k, v) in self.params.iter_mut() {
            let src = given[k.as_str()].f_to_device(self.device)?.f_to_kind(Kind::Float)?;
            v.f_copy_(&src)?;
        }
        super::layers::parameters_changed();
        Ok(())
    }

    /// Loads weights from a file: `.safetensors`, or a `.pth` (zip or legacy, a
    /// state dict or a checkpoint dict with a `model`/`state_dict` entry).
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        let state = if path.extension().is_some_and(|e| e == "safetensors") {
            crate::io::load_tensors(path).map_err(|e| Error::Format { path: path.into(), why: e.to_string() })?
        } else {
            super::pth::read_pth(path)?.state_dict(None)?
        };
        self.load_state_dict(&state, path)
    }
}

impl Network {
    /// A hash of the architecture name and every parameter's name, shape and
    /// bytes (32 hex digits): equal fingerprints mean the same weights.
    pub fn weights_fingerprint(&self) -> Result<String> {
        let mut h = crate::io::Fingerprint::new();
        h.add_str(&self.name);
        h.add_str(self.external.as_deref().unwrap_or(""));
        for (name, t) in &self.params {
            h.add_str(name);
            for d in t.size() {
                h.add_u64(d as u64);
            }
            h.add_tensor_bytes(t)?;
        }
        Ok(h.hex())
    }
}

/// A TorchScript module as a backbone.
struct Scripted(tch::CModule);

impl Backbone for Scripted {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let z = self.0.forward_ts(&[x])?;
        if z.dim() != 4 {
            return Err(Error::Invalid {
                model: "<torchscript backbone>".into(),
                why: format!("returned shape {:?}; a backbone must return [B,C,h,w] feature maps", z.size()),
            });
        }
        Ok(z)
    }
}

impl Network {
    /// A copy of this network on `device`: the same architecture, weights, head,
    /// transform, precision and class names, for one replica per device of a
    /// multi-device extraction. A TorchScript backbone lives on the device it was
    /// loaded on and cannot be copied: load it once per device instead.
    pub fn replica(&self, device: Device) -> Result<Network> {
        if self.external.is_some() {
            return Err(Error::Invalid {
                model: self.name.clone(),
                why: "a TorchScript backbone cannot be copied to another device; use one device".into(),
            });
        }
        let mut r = Network::new(&self.name, 1, device)?;
        let head = format!("{}.", self.head_prefix);
        {
            let _guard = tch::no_grad_guard();
            for (name, t) in r.params.iter_mut() {
                if name.starts_with(&head) {
                    continue;
                }
                let source = self.params.get(name).ok_or_else(|| Error::Invalid {
                    model: self.name.clone(),
                    why: format!("no parameter {name} to copy to {device:?}"),
                })?;
                t.f_copy_(&source.f_to_kind(Kind::Float)?.f_to_device(device)?)?;
            }
        }
        let mut r = r.with_head(&self.head.weight, &self.head.bias)?;
        r.preprocess = self.preprocess;
        r.rename = self.rename;
        r.derived = self.derived;
        r.class_names = self.class_names.clone();
        if self.precision != Kind::Float {
            r.set_precision(self.precision)?;
        }
        Ok(r)
    }

    /// The same backbone (shared) with another linear head: `weight` `[K,C]`,
    /// `bias` `[K]`. For a head fitted on a bank ([`crate::explain::fit_head`]) or
    /// a probe of a new data set.
    pub fn with_head(&self, weight: &Tensor, bias: &Tensor) -> Result<Network> {
        let c = self.channels;
        if weight.size().len() != 2 || weight.size()[1] != c || bias.size() != [weight.size()[0]] {
            return Err(Error::Invalid {
                model: self.name.clone(),
                why: format!(
                    "a head for C = {c} must be weight [K,{c}] and bias [K], got {:?} and {:?}",
                    weight.size(),
                    bias.size()
                ),
            });
        }
        let p = Params::new(self.device);
        let head = Linear::new(&p.pp(self.head_prefix), c, weight.size()[0])?;
        {
            let _guard = tch::no_grad_guard();
            head.weight.shallow_clone().f_copy_(&weight.f_to_kind(Kind::Float)?.f_to_device(self.device)?)?;
            head.bias.shallow_clone().f_copy_(&bias.f_to_kind(Kind::Float)?.f_to_device(self.device)?)?;
        }
        let mut params: BTreeMap<String, Tensor> = self
            .params
            .iter()
            .filter(|(k, _)| !k.starts_with(&format!("{}.", self.head_prefix)))
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        params.extend(p.into_map());
        Ok(Network {
            name: self.name.clone(),
            backbone: self.backbone.clone(),
            head,
            head_prefix: self.head_prefix,
            channels: c,
            preprocess: self.preprocess,
            params,
            rename: self.rename,
            derived: self.derived,
            external: self.external.clone(),
            device: self.device,
            precision: self.precision,
            class_names: None,
        })
    }
}

impl Network {
    /// A batch size for extraction that fits this device: on a CUDA device the
    /// largest power of two up to `max` whose forward pass at the crop size
    /// succeeds, halved for headroom (decode buffers, the memo, other processes);
    /// on the CPU 32, where larger batches do not run faster.
    pub fn fit_batch_size(&self, max: usize) -> usize {
        if !self.device.is_cuda() {
            return 32.min(max.max(1));
        }
        let max = max.max(1);
        let crop = self.preprocess.crop;
        let mut fits = 0usize;
        let mut b = 8usize.min(max);
        while b <= max {
            let ok = Tensor::f_zeros([b as i64, 3, crop, crop], (Kind::Float, Device::Cpu))
                .map_err(Error::from)
                .and_then(|x| self.features(&x))
                .and_then(|z| Ok(z.f_sum(Kind::Float)?.f_double_value(&[])?));
            if ok.is_err() {
                break;
            }
            fits = b;
            b *= 2;
        }
        (fits / 2).clamp(1, max)
    }
}
