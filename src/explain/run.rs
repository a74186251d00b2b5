//! A finished run, opened again: its resolved config, its study (the network
//! with the head it explained, the training bank read from the cache, never
//! recomputed), its held-out data set and its trained U. `epic explain`,
//! `epic evaluate` and `epic report` start here.
use crate::disentangle::{Disentangler, MatrixKind};
use crate::features::{BatchSize, ExtractOptions};
use crate::study::{head_path, read_manifest, RunManifest, Study};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::Device;

/// A finished run (see the module docs).
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// Its `.epic/run.json`.
    pub manifest: RunManifest,
    /// Its resolved config, `.epic/config.yaml`.
    pub config: serde_yaml::Value,
    /// The network with the run's head, and the training bank.
    pub study: Study,
    /// The held-out data set, when the run had one.
    pub val: Option<Arc<dyn crate::data::Dataset>>,
    /// U as trained.
    pub disentangler: Disentangler,
}

impl Run {
    /// Opens the run in `dir` on `device`. The bank must be in the cache: when
    /// chunks are missing the error says so and gives the command that rebuilds
    /// it; when the model or the images changed since, the error says that.
    pub fn open(dir: &Path, device: Device, quiet: bool) -> crate::Result<Run> {
        let manifest = read_manifest(dir)?;
        let config_path = dir.join(".epic").join("config.yaml");
        let config = crate::config::load(&config_path)?;
        let model = crate::config::Section::at(config.get("model").unwrap_or(&serde_yaml::Value::Null), "model")?;
        let base = crate::model::ModelSpec::from_config(&model, device)?.load()?;
        let head = crate::io::read_tensors(&head_path(dir))?.tensors;
        let get = |name: &str| {
            head.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).ok_or_else(|| {
                crate::Error::invalid(head_path(dir).display().to_string(), format!("no tensor {name:?}"))
            })
        };
        let mut net = base.with_head(&get("weight")?.f_to_device(device)?, &get("bias")?.f_to_device(device)?)?;
        if !manifest.class_names.is_empty() {
            net = net.with_class_names(manifest.class_names.clone())?;
        }
        if net.channels() != manifest.channels {
            return Err(crate::Error::invalid(
                config_path.display().to_string(),
                format!("the model has {} channels, the run's bank {}", net.channels(), manifest.channels),
            ));
        }
        let train = manifest.train.open()?;
        if train.fingerprint() != manifest.train_fingerprint {
            return Err(crate::Error::invalid(
                format!("{:?}", manifest.train),
                "the training images changed since the run; rerun it".to_string(),
            ));
        }
        let val = manifest.val.as_ref().map(|v| v.open()).transpose()?;
        let rebuild = || manifest.command.clone().unwrap_or_else(|| "the run's script again".into());
        let Some(cache) = manifest.cache.clone() else {
            return Err(crate::Error::BankGone {
                folder: PathBuf::new(),
                missing: 1,
                chunks: 1,
                rebuild: format!("{} dataloader.cache=outputs/cache (the run kept no cache)", rebuild()),
            });
        };
        // The bank was made by the model as loaded (its key covers its own head).
        let key = crate::features::cache_key(&base, train.as_ref(), manifest.chunk)?;
        if key != manifest.cache_key {
            return Err(crate::Error::invalid(
                dir.display().to_string(),
                format!(
                    "the model or its weights changed since the run (bank key {key}, the run's {}); rerun: {}",
                    manifest.cache_key,
                    rebuild()
                ),
            ));
        }
        let options = ExtractOptions {
            batch_size: BatchSize::Fixed(manifest.batch_size),
            chunk: manifest.chunk,
            cache: Some(cache),
            quiet,
            cached_only: true,
            ..ExtractOptions::default()
        };
        let study = Study::extract(base, train, &options).map_err(|e| match e {
            crate::Error::BankGone { folder, missing, chunks, .. } => {
                crate::Error::BankGone { folder, missing, chunks, rebuild: rebuild() }
            }
            other => other,
        })?;
        // The run's head on the same bank: predictions from it, as the run had them.
        let study = study.with_network(net)?;
        let kind: MatrixKind = manifest.matrix.parse()?;
        let u_file = dir.join(format!("{}.safetensors", kind.name()));
        let disentangler = crate::disentangle::store::load(kind, &u_file)?.to_device(device)?;
        Ok(Run { dir: dir.to_path_buf(), manifest, config, study, val, disentangler })
    }
}
