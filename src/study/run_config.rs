//! A run's config as a run opens it: loaded with the command line's overrides,
//! its `output_path` held against other live runs from the run's first write
//! there ([`crate::io::claim::hold_on_first_write`]),
//! and, under `epic run --sandbox`, the folders it names granted
//! ([`crate::io::access`]): its data sets and weights to read, its
//! `output_path` and cache to write.
use crate::config::get;
use serde_yaml::Value;
use std::path::Path;

/// The config at `path` with `overrides` applied, opened for a run: see the
/// module documentation.
pub fn open_config(path: &Path, overrides: &[String]) -> crate::Result<Value> {
    let config = crate::config::load_with_overrides(path, overrides)?;
    let text = |k: &str| get(&config, k).and_then(Value::as_str).map(str::to_string);
    for key in ["dataset.datapath_train", "dataset.datapath_val"] {
        if let Some(dir) = text(key) {
            crate::io::access::grant(Path::new(&dir), false);
        }
    }
    if let Some(w) = text("model.custom_weights_path") {
        crate::io::access::grant(Path::new(&w), false);
    }
    if let Some(cache) = text("dataloader.cache") {
        crate::io::access::grant(Path::new(&cache), true);
    }
    if let Some(out) = text("output_path") {
        crate::io::access::grant(Path::new(&out), true);
        crate::io::claim::hold_on_first_write(Path::new(&out), "output_path");
    }
    Ok(config)
}
