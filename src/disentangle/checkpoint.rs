//! Training checkpoints: the whole training state after each completed schedule
//! step, so that a run killed or interrupted later resumes there and ends with
//! bitwise the same U, history and artifacts as an uninterrupted run.
//!
//! One safetensors file, written atomically: A, Adam's moments, the step
//! counters, the shuffler's state, the history so far, and a fingerprint of what
//! was being trained (the parametrisation, the starting A, the bank, the
//! schedule and every training setting). A checkpoint with another fingerprint
//! is never resumed from: training starts over and replaces it.
use super::History;
use crate::error::{Error, Result};
use crate::io::{save_tensors, Integrity};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// The state of training after `steps_done` schedule steps.
#[derive(Debug)]
pub struct Checkpoint {
    pub fingerprint: String,
    /// Schedule steps completed.
    pub steps_done: usize,
    /// The raw matrix A `[C,C]` f32.
    pub a_raw: Tensor,
    /// Adam's update count and moments `[C,C]`.
    pub adam_step: i64,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    /// The pair shuffler's state.
    pub shuffler: u64,
    pub history: History,
}

fn pairs_tensor(rows: &[(usize, f64)]) -> Result<Tensor> {
    let flat: Vec<f64> = rows.iter().flat_map(|&(m, p)| [m as f64, p]).collect();
    Ok(Tensor::f_from_slice(&flat)?.f_reshape([rows.len() as i64, 2])?)
}

fn pairs_of(t: &Tensor) -> Result<Vec<(usize, f64)>> {
    let flat = Vec::<f64>::try_from(t.f_to_kind(Kind::Double)?.f_reshape([-1])?)?;
    Ok(flat.chunks_exact(2).map(|r| (r[0] as usize, r[1])).collect())
}

/// The schedule steps a training checkpoint's bytes record, read exactly as a
/// resuming run reads them (`path` labels errors): for tools, and the fuzzer.
pub fn inspect_checkpoint(bytes: &[u8], path: &Path) -> Result<usize> {
    Ok(Checkpoint::parse(bytes, path, None)?.map_or(0, |c| c.steps_done))
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically (a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        // save_tensors creates the folder (inside the sandbox, when there is one).
        let state = Tensor::f_from_slice(&[self.steps_done as i64, self.adam_step, self.shuffler as i64])?;
        let fp = Tensor::f_from_slice(self.fingerprint.as_bytes())?;
        let (steps, epochs) = (pairs_tensor(&self.history.steps)?, pairs_tensor(&self.history.epochs)?);
        save_tensors(
            &[
                ("fingerprint", &fp),
                ("state", &state),
                ("A_raw", &self.a_raw),
                ("exp_avg", &self.exp_avg),
                ("exp_avg_sq", &self.exp_avg_sq),
                ("history_steps", &steps),
                ("history_epochs", &epochs),
            ],
            path,
        )
    }

    /// The checkpoint at `path` if there is one for `fingerprint`; `None` when
    /// there is none, or it belongs to other training (a note says so). A file
    /// that cannot be read is an error naming it.
    pub fn load(path: &Path, fingerprint: &str) -> Result<Option<Checkpoint>> {
        if !path.exists() {
            return Ok(None);
        }
        crate::io::access::check_read(path)?;
        let bytes = std::fs::read(path).map_err(|source| Error::Io { action: "read", path: path.into(), source })?;
        Checkpoint::parse(&bytes, path, Some(fingerprint))
    }

    /// A checkpoint from its file's bytes (`path` labels errors); `fingerprint`
    /// `None` accepts any training's.
    fn parse(bytes: &[u8], path: &Path, fingerprint: Option<&str>) -> Result<Option<Checkpoint>> {
        let file = crate::io::tensors::parse_tensors(bytes, path).map_err(|e| match e {
            Error::Damaged { path, why, .. } => {
                Error::Damaged { path, why, fix: "delete it to start training over, or restore it from a copy".into() }
            }
            e => e,
        })?;
        if file.integrity == Integrity::Unchecked {
            crate::progress::note(&format!(
                "{} was written without a checksum (by an earlier epic); it is read unchecked, \
                 and the next checkpoint carries one",
                path.display()
            ));
        }
        let t: HashMap<String, Tensor> = file.tensors.into_iter().collect();
        let get = |k: &str| {
            t.get(k).map(|t| t.shallow_clone()).ok_or_else(|| {
                Error::invalid(
                    path.display().to_string(),
                    format!("training checkpoint without {k:?}; delete the file to start training over"),
                )
            })
        };
        let fp =
            String::from_utf8(Vec::<u8>::try_from(get("fingerprint")?.f_to_kind(Kind::Uint8)?)?).unwrap_or_default();
        if fingerprint.is_some_and(|want| fp != want) {
            crate::progress::note(&format!(
                "{} is a checkpoint of other training (another config, bank or start); starting over",
                path.display()
            ));
            return Ok(None);
        }
        let state = Vec::<i64>::try_from(get("state")?.f_to_kind(Kind::Int64)?).unwrap_or_default();
        if state.len() != 3 {
            return Err(Error::invalid(
                path.display().to_string(),
                "training checkpoint with a damaged state; delete the file to start training over",
            ));
        }
        Ok(Some(Checkpoint {
            fingerprint: fp,
            steps_done: state[0].max(0) as usize,
            adam_step: state[1],
            shuffler: state[2] as u64,
            a_raw: get("A_raw")?,
            exp_avg: get("exp_avg")?,
            exp_avg_sq: get("exp_avg_sq")?,
            history: History { steps: pairs_of(&get("history_steps")?)?, epochs: pairs_of(&get("history_epochs")?)? },
        }))
    }
}
