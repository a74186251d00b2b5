//! Script bindings for configs: `config(path)` (YAML with the reference's keys,
//! composed and overridden by the command line) and `save_config`.
use crate::config as cfg;
use rhai::plugin::*;
use rhai::{Array, Map, FLOAT, INT};
use serde_yaml::Value;

/// A YAML value as Rhai values.
pub fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i as INT),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN) as FLOAT),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Sequence(s) => Dynamic::from_array(s.iter().map(to_dynamic).collect()),
        Value::Mapping(m) => {
            Dynamic::from_map(m.iter().filter_map(|(k, v)| Some((k.as_str()?.into(), to_dynamic(v)))).collect::<Map>())
        }
        Value::Tagged(t) => to_dynamic(&t.value),
    }
}

/// Rhai values as YAML (maps, arrays, numbers, strings, bools, ()); other values
/// (tensors, handles) as their printed form.
pub fn to_yaml(d: &Dynamic) -> Value {
    if d.is_unit() {
        Value::Null
    } else if let Ok(b) = d.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = d.as_int() {
        Value::Number(i.into())
    } else if let Ok(f) = d.as_float() {
        Value::Number(f.into())
    } else if let Some(a) = d.read_lock::<Array>() {
        Value::Sequence(a.iter().map(to_yaml).collect())
    } else if let Some(m) = d.read_lock::<Map>() {
        Value::Mapping(m.iter().map(|(k, v)| (Value::String(k.to_string()), to_yaml(v))).collect())
    } else {
        Value::String(d.to_string())
    }
}

/// The script functions for configs (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// The experiment config at `path` (YAML, the reference's key names, Hydra
    /// `defaults` composed, `${…}` resolved), with the command line's `key=value`
    /// overrides applied and type-checked. Its `output_path` is held for this run
    /// from its first write there: another live run writing to the same folder
    /// stops at once, naming this one's pid.
    /// Under `--sandbox`, the folders it names become readable (data, weights)
    /// and writable (`output_path`, `dataloader.cache`).
    ///
    /// ```rhai
    /// let cfg = config("configs/imagenet_resnet34.yaml");
    /// print(cfg.model.name);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn config(ctx: NativeCallContext, path: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let overrides = super::super::host_overrides(&ctx);
        Ok(to_dynamic(&crate::study::open_config(std::path::Path::new(path), &overrides)?))
    }

    /// The config at `path` with `overrides` (`"key=value"` strings, as on
    /// `epic run`'s command line) applied after the command line's: how a
    /// notebook cell sets what a script run gets from its command line.
    ///
    /// ```rhai
    /// let cfg = config("configs/demo_fashion_lite0.yaml", ["dataset.per_class=3", "+model.resize=64"]);
    /// ```
    #[rhai_fn(name = "config", return_raw)]
    pub fn config_with(
        ctx: NativeCallContext,
        path: &str,
        overrides: rhai::Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let mut all = super::super::host_overrides(&ctx);
        for o in overrides {
            all.push(
                o.into_string().map_err(|t| {
                    format!("config(path, overrides): an override is a {t}, not a \"key=value\" string")
                })?,
            );
        }
        Ok(to_dynamic(&crate::study::open_config(std::path::Path::new(path), &all)?))
    }

    /// The folder of the epic checkout this binary was built from (its
    /// `configs/`, `scripts/` and `examples/`).
    ///
    /// ```rhai
    /// cd(checkout());   // a notebook's first cell: paths as in the README
    /// ```
    pub fn checkout() -> String {
        env!("CARGO_MANIFEST_DIR").to_string()
    }

    /// Makes `dir` the working folder: relative paths (configs, `output_path`,
    /// caches) are read from there on. Returns the folder, absolute.
    ///
    /// ```rhai
    /// cd(checkout());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn cd(dir: &str) -> Result<String, Box<EvalAltResult>> {
        std::env::set_current_dir(dir).map_err(|e| format!("cd(\"{dir}\"): {e}"))?;
        let here = std::env::current_dir().map_err(|e| format!("cd(\"{dir}\"): {e}"))?;
        Ok(here.display().to_string())
    }

    /// Stops the script at once, before any work, when the config's data set
    /// folders or weights file are missing; the error names each missing path,
    /// the layout expected, the weights file wanted and the overrides to set.
    ///
    /// ```rhai
    /// preflight(cfg);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn preflight(config: Map) -> Result<(), Box<EvalAltResult>> {
        Ok(crate::study::preflight(&to_yaml(&Dynamic::from_map(config)))?)
    }

    /// Writes a config map as YAML (atomically), e.g. the resolved config of a run.
    ///
    /// ```rhai
    /// save_config(cfg, `${cfg.output_path}/.epic/config.yaml`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn save_config(config: Map, path: &str) -> Result<(), Box<EvalAltResult>> {
        Ok(cfg::save(&to_yaml(&Dynamic::from_map(config)), std::path::Path::new(path))?)
    }
}
