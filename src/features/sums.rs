//! Where a bank's spatial sums live: in memory as one `[N,C]` tensor, or, for a
//! bank above its memory bound (`dataloader.bank_mib`), on disk in the cache's
//! chunk files, read back one chunk at a time.
//!
//! Everything EPIC does with the sums of a whole training set is a pass over
//! rows: prototypes are a per-channel top-m of sums·Uᵀ, which streams (see
//! [`crate::prototypes::StreamingTop`]); logits are a per-row product. So a bank
//! on disk costs one read of its chunks per selection, and holds in memory only
//! its labels, predictions and validity (17 bytes an image) plus the chunk being
//! read: about four chunks' worth of sums while a chunk is read, rotated and
//! ranked.
use super::cache::{Chunk, ChunkState};
use std::path::PathBuf;
use tch::Tensor;

/// One chunk file of a bank on disk: its first image and its number of rows.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub path: PathBuf,
    pub start: usize,
    pub rows: i64,
}

/// A bank's sums: held, or left in the cache's chunks.
#[derive(Debug)]
pub(crate) enum Sums {
    /// `[N,C]` f32 on the CPU.
    Memory(Tensor),
    /// The chunks, in order, and C.
    Disk { parts: Vec<Part>, channels: i64 },
}

impl Sums {
    /// Another handle on the same sums (no copy).
    pub fn share(&self) -> Sums {
        match self {
            Sums::Memory(t) => Sums::Memory(t.shallow_clone()),
            Sums::Disk { parts, channels } => Sums::Disk { parts: parts.clone(), channels: *channels },
        }
    }

    /// C.
    pub fn channels(&self) -> i64 {
        match self {
            Sums::Memory(t) => t.size()[1],
            Sums::Disk { channels, .. } => *channels,
        }
    }

    /// Calls `f(start, sums)` for consecutive row blocks `[n,C]` covering every
    /// image in order: the whole tensor at once when held, else each chunk as it
    /// is read (a chunk changed or gone since the bank was made is an error
    /// naming its file).
    pub fn for_each_block(&self, mut f: impl FnMut(usize, &Tensor) -> crate::Result<()>) -> crate::Result<()> {
        match self {
            Sums::Memory(t) => f(0, t),
            Sums::Disk { parts, channels } => {
                for p in parts {
                    let sums = read_part(p, *channels)?;
                    f(p.start, &sums)?;
                    drop(sums);
                    crate::memory::return_free_memory();
                }
                Ok(())
            }
        }
    }

    /// The whole `[N,C]` matrix in memory (for a bank on disk, every chunk read
    /// and joined: N·C·4 bytes).
    pub fn load(&self) -> crate::Result<Tensor> {
        match self {
            Sums::Memory(t) => Ok(t.shallow_clone()),
            Sums::Disk { .. } => self.map_rows(|s| Ok(s.shallow_clone())),
        }
    }

    /// `f` applied to every row block, the results joined in order.
    pub fn map_rows(&self, mut f: impl FnMut(&Tensor) -> crate::Result<Tensor>) -> crate::Result<Tensor> {
        let mut out = Vec::new();
        self.for_each_block(|_, s| {
            out.push(f(s)?);
            Ok(())
        })?;
        Ok(Tensor::f_cat(&out, 0)?)
    }
}

/// Bytes of the sums of `n` images × `channels` (f32).
pub(crate) fn sums_bytes(n: usize, channels: i64) -> u64 {
    n as u64 * channels as u64 * 4
}

/// Whether sums of `n` images × `channels` stay on disk under `bank_mib`
/// (none: no bound; 0: always on disk).
pub(crate) fn above_bound(n: usize, channels: i64, bank_mib: Option<usize>) -> bool {
    bank_mib.is_some_and(|b| sums_bytes(n, channels) > (b as u64) << 20)
}

/// The sums of one chunk file, checked as when the bank was read.
fn read_part(p: &Part, channels: i64) -> crate::Result<Tensor> {
    match Chunk::read(&p.path, p.rows, channels) {
        ChunkState::Ready(c, _) => Ok(c.sums),
        ChunkState::Missing => Err(crate::Error::Damaged {
            path: p.path.clone(),
            why: "the chunk of a bank kept on disk is gone since the bank was read".into(),
            fix: "run again to recompute it".into(),
        }),
        ChunkState::Damaged(why) => Err(crate::Error::Damaged {
            path: p.path.clone(),
            why: format!("{why}, since the bank was read"),
            fix: "run again: the run that reads the bank recomputes damaged chunks".into(),
        }),
    }
}
