//! The U file: a disentangler saved as the reference saves it, `<type>.pt`
//! (`torch.save` of the state dict `{"A_raw": A}`), plus the same tensor as
//! `<type>.safetensors`; and loading either back to resume or explain.
//!
//! Both are checked on load: the `.safetensors` by its `epic.crc32`, the `.pt` by
//! the CRC-32 that the zip format keeps for every entry (as `torch.save` writes
//! it), so a damaged U file is an error naming it, never a wrong explanation.
use super::{Disentangler, MatrixKind};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Writes `<dir>/<type>.pt` and `<dir>/<type>.safetensors` (key `A_raw`),
/// atomically; returns both paths.
pub fn save(d: &Disentangler, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let pt = dir.join(format!("{}.pt", d.kind().name()));
    let st = dir.join(format!("{}.safetensors", d.kind().name()));
    crate::model::pth::write_pth(&[("A_raw", d.a_raw())], &pt).map_err(|e| Error::invalid("U file", e.to_string()))?;
    crate::io::save_tensors(&[("A_raw", d.a_raw())], &st)?;
    Ok((pt, st))
}

/// Reads a U file (`.pt` from epic or the reference code, or `.safetensors`)
/// holding `A_raw`.
pub fn load(kind: MatrixKind, path: &Path) -> Result<Disentangler> {
    let bad = |why: String| Error::invalid(path.display().to_string(), why);
    let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
        let file = crate::io::read_tensors(path).map_err(|e| match e {
            Error::Damaged { path, why, .. } => Error::Damaged {
                path,
                why,
                fix:
                    "copy the U file again from where it came from (its .pt twin holds the same A_raw), or train again"
                        .into(),
            },
            e => e,
        })?;
        if file.integrity == crate::io::Integrity::Unchecked {
            crate::progress::note(&format!("{} carries no checksum; it is read unchecked", path.display()));
        }
        file.tensors
    } else {
        crate::model::pth::read_pth(path)
            .and_then(|c| c.state_dict(None))
            .map_err(|e| Error::invalid("U file", e.to_string()))?
    };
    let a = tensors.iter().find(|(k, _)| k == "A_raw").map(|(_, t)| t).ok_or_else(|| {
        bad(format!(
            "no A_raw tensor (found: {})",
            tensors.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    Disentangler::from_raw(kind, a)
}
