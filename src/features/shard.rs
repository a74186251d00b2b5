//! Sharded extraction: a process that runs `epic run … --shard i/n` computes
//! only its share of the bank's chunks (chunk j belongs to shard j mod n), writes
//! them into the shared cache folder (each chunk atomic, claimed while it is
//! computed, so shards need no coordination), and stops there. A later run (the
//! training job) finds every chunk and reads the bank; chunks still missing it
//! computes itself. The bank equals a single-process pass bit for bit: a chunk's
//! batches are the same whichever process runs them.
//!
//! Every cache folder also holds `bank.json` (images, chunk size, chunks), so
//! that `epic bank status DIR` can say what is there and which shards are done.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Shard `index` of `count` (0-based, as `$SLURM_ARRAY_TASK_ID` of `--array=0-(n-1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0 ≤ index < count.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl Shard {
    /// Whether chunk `chunk` (its position in the bank, 0-based) is this shard's.
    pub fn owns(&self, chunk: usize) -> bool {
        chunk % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Shard> {
        let bad = || crate::Error::invalid(format!("shard {s:?}"), "use i/n with 0 ≤ i < n, e.g. --shard 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

static SHARD: Mutex<Option<Shard>> = Mutex::new(None);
static DONE: Mutex<Option<String>> = Mutex::new(None);

/// After this process, a shard, computed its share of a bank: what it did (the
/// `epic run --shard` face exits 0 with it when the script stops there).
pub fn shard_done() -> Option<String> {
    DONE.lock().ok().and_then(|d| d.clone())
}

pub(super) fn mark_done(message: String) {
    if let Ok(mut d) = DONE.lock() {
        *d = Some(message);
    }
}

/// Makes this process shard `shard` of every extraction it runs (`None`: all chunks).
pub fn set_shard(shard: Option<Shard>) {
    if let Ok(mut s) = SHARD.lock() {
        *s = shard;
    }
}

/// This process's shard, if it is one.
pub fn shard() -> Option<Shard> {
    SHARD.lock().ok().and_then(|s| *s)
}

/// `bank.json` of a cache folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankLayout {
    /// Images in the bank.
    pub images: usize,
    /// Images per chunk.
    pub chunk: usize,
    /// The network.
    pub model: String,
    /// The data set, for people.
    pub dataset: String,
}

impl BankLayout {
    /// Chunks in all.
    pub fn chunks(&self) -> usize {
        self.images.div_ceil(self.chunk.max(1))
    }

    /// `folder/bank.json`.
    pub fn path(folder: &Path) -> PathBuf {
        folder.join("bank.json")
    }

    /// Writes `folder/bank.json` unless it is there already.
    pub fn write_once(&self, folder: &Path) -> crate::Result<()> {
        if Self::path(folder).is_file() {
            return Ok(());
        }
        self.write(folder)
    }

    /// Writes `folder/bank.json` (atomically), replacing one that is there.
    pub fn write(&self, folder: &Path) -> crate::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| crate::Error::invalid("bank.json", e.to_string()))?;
        crate::io::atomic::write_bytes_atomic(&Self::path(folder), text.as_bytes())
    }
}

/// One bank of a cache: its layout and which chunks are there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankStatus {
    /// The bank's folder (cache/key).
    pub folder: PathBuf,
    /// Its layout.
    pub layout: BankLayout,
    /// Per chunk (in order), whether its file is there.
    pub present: Vec<bool>,
}

impl BankStatus {
    /// Chunks there.
    pub fn done(&self) -> usize {
        self.present.iter().filter(|&&p| p).count()
    }

    /// For `count` shards: per shard, (chunks done, chunks it owns).
    pub fn shards(&self, count: usize) -> Vec<(usize, usize)> {
        (0..count.max(1))
            .map(|i| {
                let s = Shard { index: i, count: count.max(1) };
                let owned: Vec<bool> =
                    self.present.iter().enumerate().filter(|(j, _)| s.owns(*j)).map(|(_, &p)| p).collect();
                (owned.iter().filter(|&&p| p).count(), owned.len())
            })
            .collect()
    }
}

/// The banks under `cache` (a cache folder, or one bank's folder in it).
pub fn bank_status(cache: &Path) -> crate::Result<Vec<BankStatus>> {
    let folders: Vec<PathBuf> = if BankLayout::path(cache).is_file() {
        vec![cache.to_path_buf()]
    } else {
        let entries = std::fs::read_dir(cache).map_err(|source| crate::Error::Io {
            action: "read",
            path: cache.to_path_buf(),
            source,
        })?;
        let mut v: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| BankLayout::path(p).is_file()).collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for folder in folders {
        let path = BankLayout::path(&folder);
        let text = std::fs::read_to_string(&path).map_err(|source| crate::Error::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let layout: BankLayout = serde_json::from_str(&text)
            .map_err(|e| crate::Error::invalid(path.display().to_string(), format!("not a bank layout: {e}")))?;
        let present =
            (0..layout.chunks()).map(|j| super::cache::chunk_path(&folder, j * layout.chunk).is_file()).collect();
        out.push(BankStatus { folder, layout, present });
    }
    Ok(out)
}
