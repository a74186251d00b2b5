//! A bank as a folder of its own, without the network that made it: saved in
//! the cache's format (`chunk_<start>.safetensors` files and `bank.json`), and
//! opened from any such folder, a cache's included, held in memory or, above a
//! bound, left on disk.
//!
//! This is how a bank moves between machines (extract on a GPU cluster, study
//! the prototypes on a laptop), and how a bank larger than memory is made and
//! read in tests without a backbone pass.
use super::bank::{assemble, Bank};
use super::cache::{chunk_path, Chunk, ChunkState};
use super::BankLayout;
use std::path::Path;
use tch::{Kind, Tensor};

impl Bank {
    /// Writes the bank into `folder` as a cache does: chunks of `chunk` images,
    /// each atomic and checksummed, and `bank.json` naming `model` and `dataset`.
    /// Rows are written a block at a time, so a bank on disk is copied without
    /// being loaded.
    pub fn save(&self, folder: &Path, chunk: usize, model: &str, dataset: &str) -> crate::Result<()> {
        let chunk = chunk.max(1);
        std::fs::create_dir_all(folder).map_err(|source| crate::Error::Io {
            action: "create",
            path: folder.to_path_buf(),
            source,
        })?;
        let map_hw = Tensor::f_from_slice(&[self.map_size.0, self.map_size.1])?;
        let n = self.len();
        // Rows of the chunk being filled, which may span blocks.
        let mut pending: Vec<Tensor> = Vec::new();
        let mut filled = 0usize;
        let mut next = 0usize;
        let flush = |pending: &mut Vec<Tensor>, start: usize| -> crate::Result<()> {
            let sums = Tensor::f_cat(pending, 0)?;
            let rows = sums.size()[0];
            let c = Chunk {
                sums,
                labels: self.labels.f_narrow(0, start as i64, rows)?,
                predicted: self.predicted.f_narrow(0, start as i64, rows)?,
                valid: self.valid.f_narrow(0, start as i64, rows)?,
                map_hw: map_hw.shallow_clone(),
            };
            pending.clear();
            c.write(&chunk_path(folder, start))
        };
        self.for_each_block(|start, sums| {
            let rows = sums.size()[0] as usize;
            let mut at = 0;
            while at < rows {
                let take = (chunk - filled).min(rows - at);
                pending.push(sums.f_narrow(0, at as i64, take as i64)?);
                (filled, at) = (filled + take, at + take);
                if filled == chunk || start + at == n {
                    flush(&mut pending, next)?;
                    (next, filled) = (next + chunk, 0);
                }
            }
            Ok(())
        })?;
        BankLayout { images: n, chunk, model: model.into(), dataset: dataset.into() }.write(folder)
    }

    /// The bank in `folder` (one bank's folder of a cache, or one written by
    /// [`Bank::save`]), every chunk checked. Its sums are held unless they are
    /// above `bank_mib` MiB; then they stay in the chunk files and selection
    /// streams them. A missing or damaged chunk is an error that names it.
    pub fn open(folder: &Path, bank_mib: Option<usize>) -> crate::Result<Bank> {
        let statuses = super::bank_status(folder)?;
        let status = match statuses.as_slice() {
            [one] if one.folder == folder => one.clone(),
            _ => {
                return Err(crate::Error::invalid(
                    folder.display().to_string(),
                    format!(
                        "not one bank's folder (no {}); `epic bank status {}` lists the banks under it",
                        BankLayout::path(folder).display(),
                        folder.display()
                    ),
                ))
            }
        };
        let layout = status.layout;
        if layout.images == 0 {
            return Err(crate::Error::EmptyDataset);
        }
        if status.present.iter().any(|p| !p) {
            return Err(crate::Error::BankGone {
                folder: folder.to_path_buf(),
                missing: status.present.iter().filter(|p| !**p).count(),
                chunks: layout.chunks(),
                rebuild: String::new(),
            });
        }
        let starts: Vec<usize> = (0..layout.images).step_by(layout.chunk.max(1)).collect();
        let channels = channels_of(&chunk_path(folder, 0))?;
        let on_disk = super::sums::above_bound(layout.images, channels, bank_mib);
        let mut chunks = Vec::with_capacity(starts.len());
        for &s in &starts {
            let rows = ((s + layout.chunk).min(layout.images) - s) as i64;
            let path = chunk_path(folder, s);
            match Chunk::read(&path, rows, channels) {
                ChunkState::Ready(mut c, _) => {
                    if on_disk {
                        c.sums = Tensor::new();
                        crate::memory::return_free_memory();
                    }
                    chunks.push(c);
                }
                ChunkState::Missing => {
                    return Err(crate::Error::BankGone {
                        folder: folder.to_path_buf(),
                        missing: 1,
                        chunks: layout.chunks(),
                        rebuild: String::new(),
                    })
                }
                ChunkState::Damaged(why) => {
                    return Err(crate::Error::Damaged { path, why, fix: "extract the bank again".into() })
                }
            }
        }
        assemble(&chunks, &starts, channels, on_disk.then(|| (folder, bank_mib.unwrap_or_default())))
    }
}

/// C, from the first chunk's sums.
fn channels_of(path: &Path) -> crate::Result<i64> {
    let file = crate::io::read_tensors(path)?;
    file.tensors
        .iter()
        .find(|(k, t)| k == "sums" && t.dim() == 2 && t.kind() == Kind::Float)
        .map(|(_, t)| t.size()[1])
        .ok_or_else(|| crate::Error::Damaged {
            path: path.to_path_buf(),
            why: "no [N,C] f32 \"sums\" tensor".into(),
            fix: "extract the bank again".into(),
        })
}
