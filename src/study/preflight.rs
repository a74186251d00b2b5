//! Checks, before any work, that a config's inputs exist: the data set folders
//! and the weights file. A run on a cluster then fails in its first second, not
//! after the first hour, with a message naming each missing path.
use crate::config::get;
use crate::model::default_weights;
use crate::model::registry::torchvision_weights_file;
use serde_yaml::Value;
use std::path::Path;

/// Checks, before any work, that a config's data set folders and weights file
/// exist. The error names every missing path, the layout expected, the weights
/// file wanted and the keys (or `key=value` overrides) that point to them.
pub fn preflight(config: &Value) -> crate::Result<()> {
    let text = |k: &str| get(config, k).and_then(Value::as_str).map(str::to_string);
    let mut problems = Vec::new();
    for key in ["dataset.datapath_train", "dataset.datapath_val"] {
        match text(key) {
            None => problems.push(format!("- {key} is not set")),
            Some(p) if !Path::new(&p).is_dir() => problems.push(format!("- {key} = {p}: no such folder")),
            Some(_) => {}
        }
    }
    let name = text("model.name").unwrap_or_default();
    let weights = text("model.custom_weights_path");
    let default = default_weights(&name);
    match (&weights, &default) {
        (Some(w), _) if !Path::new(w).is_file() => {
            problems.push(format!("- model.custom_weights_path = {w}: no such file"))
        }
        (None, None) => problems.push("- model.custom_weights_path is not set".into()),
        _ => {}
    }
    if problems.is_empty() {
        return Ok(());
    }
    let wanted = torchvision_weights_file(&name)
        .map(|f| format!("torchvision's ImageNet weights for {name} are the file {f} (or give a fine-tuned checkpoint {{\"model\": state_dict}} with model.num_classes)"))
        .unwrap_or_else(|| format!("a weights file for {name}"));
    Err(crate::Error::Preflight(format!(
        "cannot start: inputs are missing\n{}\nexpected: dataset.datapath_train and dataset.datapath_val are folders with one sub-folder per class \
         (e.g. data/imagenet-1k/train/n01440764/*.JPEG and data/imagenet-1k/val/n01440764/*.JPEG); {wanted}.\n\
         point to them in the config or on the command line, e.g. dataset.datapath_train=/data/imagenet/train dataset.datapath_val=/data/imagenet/val model.custom_weights_path=/weights/{}",
        problems.join("\n"),
        torchvision_weights_file(&name).unwrap_or("model.pth")
    )))
}
