//! What a finished run records about its study, so that `epic explain`,
//! `epic evaluate` and `epic report` can open it again without re-running the
//! script: `RUN_DIR/.epic/run.json` (where the data came from, the bank's cache
//! key, the class names, the U file, the command that made it) and
//! `RUN_DIR/.epic/head.safetensors` (the head A, b the run explained, which may
//! be one fitted on the bank rather than the network's own). The resolved config
//! beside them, `.epic/config.yaml`, gives the model section.
use super::Study;
use crate::data::{DataSource, Dataset};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The manifest's format version.
pub const MANIFEST_VERSION: u32 = 1;

/// `RUN_DIR/.epic/run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The network's name, as the registry knows it.
    pub model: String,
    /// C, the backbone's channels.
    pub channels: i64,
    /// The training data set (the bank's).
    pub train: DataSource,
    /// The training data set's fingerprint: reopening must find the same images.
    pub train_fingerprint: String,
    /// The held-out data set explanations and `evaluate` use, when the run had one.
    pub val: Option<DataSource>,
    /// The cache folder the bank lives in (`dataloader.cache`), if any.
    pub cache: Option<PathBuf>,
    /// The bank's cache key (a sub-folder of `cache`).
    pub cache_key: String,
    /// Images per cache chunk.
    pub chunk: usize,
    /// Images per backbone batch.
    pub batch_size: usize,
    /// The head's class names.
    pub class_names: Vec<String>,
    /// `orthogonal` or `invertible`: U's file is `RUN_DIR/<matrix>.safetensors`.
    pub matrix: String,
    /// The command that made the run (and rebuilds its bank), when known.
    pub command: Option<String>,
}

/// The manifest's path in a run folder.
pub fn manifest_path(run: &Path) -> PathBuf {
    run.join(".epic").join("run.json")
}

/// The head's path in a run folder.
pub fn head_path(run: &Path) -> PathBuf {
    run.join(".epic").join("head.safetensors")
}

impl Study {
    /// Writes `run`'s manifest and head (see the module docs): the study, its
    /// held-out data set `val`, U's kind `matrix`, the `command` that made it.
    /// Data sets made in memory cannot be reopened, and are an error.
    pub fn save_manifest(
        &self,
        run: &Path,
        val: Option<&dyn Dataset>,
        matrix: &str,
        command: Option<String>,
    ) -> crate::Result<PathBuf> {
        let train = self.dataset().source().ok_or_else(|| {
            crate::Error::invalid(
                "the run's manifest",
                "the training data set was made in memory and cannot be reopened",
            )
        })?;
        let report = self.report();
        let manifest = RunManifest {
            version: MANIFEST_VERSION,
            model: self.network().name().to_string(),
            channels: self.channels(),
            train,
            train_fingerprint: self.dataset().fingerprint(),
            val: val.and_then(|v| v.source()),
            cache: report.folder.as_ref().and_then(|f| f.parent()).map(Path::to_path_buf),
            cache_key: report.key.clone(),
            chunk: report.chunk,
            batch_size: self.batch_size(),
            class_names: self.class_names(),
            matrix: matrix.to_string(),
            command,
        };
        let path = manifest_path(run);
        let text =
            serde_json::to_string_pretty(&manifest).map_err(|e| crate::Error::invalid("run.json", e.to_string()))?;
        crate::io::atomic::write_bytes_atomic(&path, text.as_bytes())?;
        let net = self.network();
        crate::io::save_tensors(&[("weight", net.head_weight()), ("bias", net.head_bias())], &head_path(run))?;
        Ok(path)
    }
}

/// Reads a run's manifest, naming the file in every error.
pub fn read_manifest(run: &Path) -> crate::Result<RunManifest> {
    let path = manifest_path(run);
    crate::io::access::check_read(&path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        crate::Error::invalid(
            path.display().to_string(),
            format!("{e}: not a finished epic run (scripts/lib/pipeline.rhai writes .epic/run.json at its end)"),
        )
    })?;
    let manifest: RunManifest = serde_json::from_str(&text)
        .map_err(|e| crate::Error::invalid(path.display().to_string(), format!("not a run manifest: {e}")))?;
    if manifest.version != MANIFEST_VERSION {
        return Err(crate::Error::invalid(
            path.display().to_string(),
            format!("manifest version {} (this epic reads {MANIFEST_VERSION})", manifest.version),
        ));
    }
    Ok(manifest)
}
