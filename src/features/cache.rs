//! The bank's cache on disk: one folder per cache key, holding
//! `chunk_<start>.safetensors` files (each written atomically, with a checksum
//! of its tensor bytes) and, while a process computes a chunk, its
//! `chunk_<start>.claim` ([`crate::io::claim`]).
//!
//! What a chunk file can be when a run looks at it ([`ChunkState`]): whole and
//! verified; whole but written before chunks carried a checksum (read, checked
//! for shape and finite sums, and re-saved with a checksum, so that a cache of
//! hours of backbone time is not thrown away for want of a checksum); damaged
//! (a warning names the file, and the chunk is recomputed); or missing.
use crate::io::{read_tensors, save_tensors, Integrity};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// One chunk's tensors, CPU.
pub(super) struct Chunk {
    pub sums: Tensor,
    pub labels: Tensor,
    pub predicted: Tensor,
    pub valid: Tensor,
    pub map_hw: Tensor,
}

/// What a chunk file holds.
pub(super) enum ChunkState {
    /// A whole chunk; `Unchecked` when it carried no checksum.
    Ready(Chunk, Integrity),
    /// No file.
    Missing,
    /// A file that is not a whole chunk of this bank: why.
    Damaged(String),
}

/// `folder/chunk_<start>.safetensors`.
pub(super) fn chunk_path(folder: &Path, start: usize) -> PathBuf {
    folder.join(format!("chunk_{start:09}.safetensors"))
}

/// `folder/chunk_<start>.claim`.
pub(super) fn claim_path(folder: &Path, start: usize) -> PathBuf {
    folder.join(format!("chunk_{start:09}.claim"))
}

/// Removes the temporary chunk files (`.chunk_*.<pid>.tmp`) and the claims of
/// runs that are gone; a live run's are its work in progress.
pub(super) fn remove_stale_temporaries(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".claim") {
            // Taking a claim nobody holds, then dropping it, removes its file.
            if let Ok(crate::io::claim::Attempt::Held(stale)) = crate::io::claim::try_claim(&e.path()) {
                drop(stale);
            }
            continue;
        }
        let Some(stem) = name.strip_prefix(".chunk_").and_then(|n| n.strip_suffix(".tmp")) else { continue };
        let pid = stem.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_none_or(|p| !crate::io::claim::pid_alive(p)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Chunk {
    /// The chunk at `path`, checked against the bank's `rows` and `channels`.
    pub fn read(path: &Path, rows: i64, channels: i64) -> ChunkState {
        if !path.exists() {
            return ChunkState::Missing;
        }
        let file = match read_tensors(path) {
            Ok(f) => f,
            Err(crate::Error::Damaged { why, .. }) => return ChunkState::Damaged(why),
            Err(e) => return ChunkState::Damaged(e.to_string().replace(&format!("{}: ", path.display()), "")),
        };
        let t: HashMap<String, Tensor> = file.tensors.into_iter().collect();
        let get = |k: &str| t.get(k).map(|t| t.shallow_clone()).ok_or_else(|| format!("no {k:?} tensor"));
        let c = match (|| {
            Ok::<_, String>(Chunk {
                sums: get("sums")?,
                labels: get("labels")?,
                predicted: get("predicted")?,
                valid: get("valid")?,
                map_hw: get("map_hw")?,
            })
        })() {
            Ok(c) => c,
            Err(why) => return ChunkState::Damaged(why),
        };
        let shapes = c.sums.size() == [rows, channels]
            && c.sums.kind() == Kind::Float
            && c.labels.size() == [rows]
            && c.labels.kind() == Kind::Int64
            && c.predicted.size() == [rows]
            && c.predicted.kind() == Kind::Int64
            && c.valid.size() == [rows]
            && c.valid.kind() == Kind::Bool
            && c.map_hw.size() == [2]
            && c.map_hw.kind() == Kind::Int64;
        if !shapes {
            return ChunkState::Damaged(format!(
                "tensors of other shapes than a chunk of {rows} images × {channels} channels"
            ));
        }
        let finite = c.sums.f_isfinite().and_then(|f| f.f_all()).map(|a| bool::try_from(a).unwrap_or(false));
        if !matches!(finite, Ok(true)) {
            return ChunkState::Damaged("sums with NaN or infinite values".into());
        }
        ChunkState::Ready(c, file.integrity)
    }

    /// Writes the chunk to `path` atomically, with a checksum.
    pub fn write(&self, path: &Path) -> crate::Result<()> {
        save_tensors(
            &[
                ("sums", &self.sums),
                ("labels", &self.labels),
                ("predicted", &self.predicted),
                ("valid", &self.valid),
                ("map_hw", &self.map_hw),
            ],
            path,
        )
    }
}
