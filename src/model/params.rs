//! A network's parameters by their torchvision state-dict names.
//!
//! Builders ask a [`Params`] for each tensor under a composed path
//! (`p.pp("layer1").pp(0).pp("conv1").tensor("weight", …)`), so the Rust nesting
//! mirrors the checkpoint's key tree and names are never spelled out twice. Loading
//! a state dict then copies values into these tensors in place (see
//! [`super::network::Network::load_state_dict`]).
use super::{Error, Result};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// A view of the parameter store at one path prefix.
#[derive(Clone)]
pub struct Params {
    prefix: String,
    store: Rc<RefCell<BTreeMap<String, Tensor>>>,
    device: Device,
}

impl Params {
    /// An empty store on `device`.
    pub fn new(device: Device) -> Self {
        Params { prefix: String::new(), store: Rc::default(), device }
    }

    /// The sub-path `prefix.name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        let prefix = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) };
        Params { prefix, store: self.store.clone(), device: self.device }
    }

    /// The device parameters are created on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// A new f32 parameter `prefix.name` of `shape`, zero until weights are loaded.
    pub fn tensor(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let key = self.pp(name).prefix;
        let t = Tensor::f_zeros(shape, (Kind::Float, self.device))?;
        let mut store = self.store.borrow_mut();
        if store.contains_key(&key) {
            return Err(Error::Invalid {
                model: "<model definition>".into(),
                why: format!("parameter {key} defined twice"),
            });
        }
        store.insert(key, t.shallow_clone());
        Ok(t)
    }

    /// All parameters by name (shallow clones sharing storage with the layers).
    pub fn into_map(self) -> BTreeMap<String, Tensor> {
        self.store.borrow().iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect()
    }
}
