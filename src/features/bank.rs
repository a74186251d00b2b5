//! The feature bank: one backbone pass over a data set, kept.
//!
//! Per image it stores the spatial sums Σ_hw Z `[C]` (f32), the label, the network's
//! prediction and whether the image decoded. That is all EPIC needs of a training
//! set between passes: prototypes under any U are the top-m of U·sums
//! ([`Bank::top_prototypes`]), and the logits are A·sums/(h·w) + b.
//!
//! **Cache.** [`extract`] writes the bank in chunks of `chunk` images to
//! `<cache>/<key>/chunk_<start>.safetensors`, each atomically, where the key is a
//! fingerprint of the network's weights, the transform and the data set's files.
//! A later run with the same key reuses every complete chunk and computes only
//! the missing ones: an interrupted pass resumes from its last complete chunk, and
//! a finished one costs no backbone batch at all.
use super::FeatureMemo;
use crate::data::{Dataset, Loader};
use crate::io::{load_tensors, save_tensors, Fingerprint};
use crate::model::Network;
use crate::progress::Progress;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tch::{Device, Kind, Tensor};

/// Bump when the chunk format changes: old caches are then ignored.
const FORMAT: &str = "epic-bank-v1";

type Result<T, E = crate::Error> = std::result::Result<T, E>;

/// Per-image results of one backbone pass over a data set.
#[derive(Debug)]
pub struct Bank {
    /// Σ_hw Z per image, `[N,C]` f32 on the CPU.
    pub sums: Tensor,
    /// Labels, `[N]` int64.
    pub labels: Tensor,
    /// The network's predicted class, `[N]` int64.
    pub predicted: Tensor,
    /// Whether the image decoded, `[N]` bool. Rows of images that failed are zeros
    /// and are never selected as prototypes.
    pub valid: Tensor,
    /// (h, w) of the feature map.
    pub map_size: (i64, i64),
    /// The last selection: (fingerprint of U, prototypes `[C,m]`); see
    /// [`Bank::top_prototypes`](crate::prototypes).
    pub(crate) selection: Mutex<Option<(String, Tensor)>>,
}

/// Images per backbone batch: a number, or the largest that fits the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// This many images per batch.
    Fixed(usize),
    /// `auto`: the largest batch that fits the GPU ([`Network::fit_batch_size`];
    /// 32 on the CPU).
    Auto,
}

impl BatchSize {
    /// The number of images per batch for `net`.
    pub fn for_network(self, net: &Network) -> usize {
        match self {
            BatchSize::Fixed(n) => n.max(1),
            BatchSize::Auto => {
                let b = net.fit_batch_size(1024);
                eprintln!("batch_size auto: {b} on {}", crate::device::device_name(net.device()));
                b
            }
        }
    }
}

/// How to run [`extract`] and keep prototype maps: the reference config's
/// `dataloader` section, plus epic's `cache`, `chunk`, `memo_mib`, `memo_half`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractOptions {
    /// Images per backbone batch (`dataloader.batch_size`: 512 as the reference, or `auto`).
    pub batch_size: BatchSize,
    /// Images per cache chunk, the unit of resumption (`dataloader.chunk`: 4096).
    pub chunk: usize,
    /// Cache folder (`dataloader.cache`); `None` keeps nothing on disk.
    pub cache: Option<PathBuf>,
    /// Bound of the prototype-map memo in MiB (`dataloader.memo_mib`: 1024).
    pub memo_mib: usize,
    /// Keep memo maps in f16 (`dataloader.memo_half`: false).
    pub memo_half: bool,
    /// No progress output (`quiet`).
    pub quiet: bool,
}

impl Default for ExtractOptions {
    /// The values of `configs/config_base.yaml` (a test holds them together).
    fn default() -> Self {
        ExtractOptions {
            batch_size: BatchSize::Fixed(512),
            chunk: 4096,
            cache: None,
            memo_mib: 1024,
            memo_half: false,
            quiet: false,
        }
    }
}

impl ExtractOptions {
    /// The options a `dataloader` section gives (`batch_size`, an int or `auto`;
    /// `chunk`, `cache`, `memo_mib`, `memo_half`, `quiet`); other keys, such as
    /// the reference's `num_workers` and `pin_memory`, are accepted and ignored
    /// (epic decodes on all cores and pins memory on CUDA).
    pub fn from_config(dataloader: &crate::config::Section) -> crate::Result<Self> {
        let d = ExtractOptions::default();
        let batch_size = match dataloader.get(&["batch_size"]) {
            Some(serde_yaml::Value::String(s)) if s == "auto" => BatchSize::Auto,
            _ => BatchSize::Fixed(dataloader.int_at_least(&["batch_size"], 512, 1)? as usize),
        };
        Ok(ExtractOptions {
            batch_size,
            chunk: dataloader.int_at_least(&["chunk"], d.chunk as i64, 1)? as usize,
            cache: dataloader.string(&["cache"])?.map(PathBuf::from),
            memo_mib: dataloader.int_at_least(&["memo_mib"], d.memo_mib as i64, 0)? as usize,
            memo_half: dataloader.bool(&["memo_half"], d.memo_half)?,
            quiet: dataloader.bool(&["quiet"], d.quiet)?,
        })
    }

    /// An empty memo of the bound these options give.
    pub fn memo(&self) -> FeatureMemo {
        FeatureMemo::new(self.memo_mib << 20, self.memo_half)
    }
}

/// What [`extract`] did.
#[derive(Debug, Clone, Default)]
pub struct ExtractReport {
    /// Backbone batches run (0 when the cache had everything).
    pub batches_run: usize,
    /// Chunks taken from the cache.
    pub chunks_reused: usize,
    /// Chunks computed in this run.
    pub chunks_computed: usize,
    /// Images that failed to decode: (index, message).
    pub failed: Vec<(usize, String)>,
    /// The cache key.
    pub key: String,
    /// The cache folder of this bank, if any.
    pub folder: Option<PathBuf>,
}

/// The cache key: network weights and transform, data set, chunk size, format.
pub fn cache_key(net: &Network, dataset: &dyn Dataset, chunk: usize) -> Result<String> {
    let mut h = Fingerprint::new();
    h.add_str(FORMAT);
    h.add_str(net.name());
    h.add_str(&net.weights_fingerprint()?);
    let p = net.preprocess();
    h.add_str(&format!("{} {} {:?} {:?}", p.resize, p.crop, p.mean, p.std));
    if p.interpolation != crate::model::Interpolation::Bilinear {
        // Only non-default filters enter the key, so existing caches stay valid.
        h.add_str(&format!("{:?}", p.interpolation));
    }
    h.add_str(&dataset.fingerprint());
    h.add_u64(dataset.len() as u64);
    h.add_u64(chunk as u64);
    Ok(format!("{}-{}", net.name(), &h.hex()[..20]))
}

/// Removes the temporary files a killed run left (`.chunk_*.tmp`). Two runs
/// must not share one cache folder at the same time.
fn remove_stale_temporaries(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".chunk_") && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn chunk_path(folder: &Path, start: usize) -> PathBuf {
    folder.join(format!("chunk_{start:09}.safetensors"))
}

/// One chunk's tensors, CPU.
struct Chunk {
    sums: Tensor,
    labels: Tensor,
    predicted: Tensor,
    valid: Tensor,
    map_hw: Tensor,
}

impl Chunk {
    fn read(path: &Path, rows: i64, channels: i64) -> Option<Chunk> {
        let t: HashMap<String, Tensor> = load_tensors(path).ok()?.into_iter().collect();
        let c = Chunk {
            sums: t.get("sums")?.shallow_clone(),
            labels: t.get("labels")?.shallow_clone(),
            predicted: t.get("predicted")?.shallow_clone(),
            valid: t.get("valid")?.shallow_clone(),
            map_hw: t.get("map_hw")?.shallow_clone(),
        };
        // Anything unexpected means the chunk is recomputed, never trusted.
        let ok = c.sums.size() == [rows, channels]
            && c.sums.kind() == Kind::Float
            && c.labels.size() == [rows]
            && c.labels.kind() == Kind::Int64
            && c.predicted.size() == [rows]
            && c.predicted.kind() == Kind::Int64
            && c.valid.size() == [rows]
            && c.valid.kind() == Kind::Bool
            && c.map_hw.size() == [2]
            && c.map_hw.kind() == Kind::Int64;
        ok.then_some(c)
    }

    fn write(&self, path: &Path) -> crate::Result<()> {
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

/// One backbone pass over `dataset` through `net`: a [`Bank`], reusing and
/// extending the cache in `options.cache` when given.
///
/// Images that fail to decode are reported in [`ExtractReport::failed`] and marked
/// invalid; the pass goes on.
pub fn extract(net: &Network, dataset: Arc<dyn Dataset>, options: &ExtractOptions) -> Result<(Bank, ExtractReport)> {
    extract_into(net, dataset, options, None)
}

/// [`extract`], offering every feature map it computes to `memo`
/// ([`FeatureMemo::offer`]): the maps training needs first are then already
/// there, and a data set whose maps fit the memo is never passed twice.
pub fn extract_into(
    net: &Network,
    dataset: Arc<dyn Dataset>,
    options: &ExtractOptions,
    mut memo: Option<&mut FeatureMemo>,
) -> Result<(Bank, ExtractReport)> {
    let n = dataset.len();
    if n == 0 {
        return Err(crate::Error::EmptyDataset);
    }
    let chunk = options.chunk.max(1);
    let key = cache_key(net, dataset.as_ref(), chunk)?;
    let folder = options.cache.as_ref().map(|c| c.join(&key));
    let starts: Vec<usize> = (0..n).step_by(chunk).collect();
    let rows = |s: usize| ((s + chunk).min(n) - s) as i64;

    if let Some(f) = &folder {
        remove_stale_temporaries(f);
    }
    let mut chunks: Vec<Option<Chunk>> = starts
        .iter()
        .map(|&s| folder.as_ref().and_then(|f| Chunk::read(&chunk_path(f, s), rows(s), net.channels())))
        .collect();
    let mut report = ExtractReport { key: key.clone(), folder: folder.clone(), ..Default::default() };
    report.chunks_reused = chunks.iter().filter(|c| c.is_some()).count();
    for (c, &s) in chunks.iter().zip(&starts) {
        if let Some(c) = c {
            let valid = Vec::<bool>::try_from(&c.valid)?;
            report.failed.extend(
                valid
                    .iter()
                    .enumerate()
                    .filter(|(_, ok)| !**ok)
                    .map(|(i, _)| (s + i, "failed in an earlier run".to_string())),
            );
        }
    }

    let missing: Vec<usize> = (0..starts.len()).filter(|&i| chunks[i].is_none()).collect();
    if !missing.is_empty() {
        let todo: usize = missing.iter().map(|&i| rows(starts[i]) as usize).sum();
        let mut progress = Progress::new("extract", todo as u64, options.quiet);
        let loader = Loader::new(dataset.clone(), net.preprocess(), options.batch_size.for_network(net));
        let ranges = missing.iter().map(|&i| starts[i]..starts[i] + rows(starts[i]) as usize).collect();
        let mut batches = loader.batches_in(ranges);
        for &i in &missing {
            let (start, end) = (starts[i], starts[i] + rows(starts[i]) as usize);
            let (mut sums, mut labels, mut predicted, mut valid) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut map_hw = (0, 0);
            let mut done = start;
            while done < end {
                if crate::interrupt::requested() {
                    let resume = match &folder {
                        Some(f) => format!(
                            "{} of {} chunks are complete in {}; run the same command again to resume from there",
                            chunks.iter().filter(|c| c.is_some()).count(),
                            starts.len(),
                            f.display()
                        ),
                        None => "no cache folder was given (dataloader.cache), so a new run starts over".into(),
                    };
                    return Err(crate::Error::Interrupted { what: "extraction".into(), resume });
                }
                let batch = batches
                    .next()
                    .ok_or_else(|| crate::Error::invalid("extract", "the image loader stopped early"))??;
                let z = net.features(&batch.images)?;
                map_hw = (z.size()[2], z.size()[3]);
                if let Some(memo) = memo.as_deref_mut() {
                    let failed: Vec<usize> = batch.failed.iter().map(|(i, _)| *i).collect();
                    for (k, i) in batch.range.clone().enumerate() {
                        if !failed.contains(&i) && !memo.offer(i, &z.f_get(k as i64)?)? {
                            break;
                        }
                    }
                }
                sums.push(crate::features::channel_activation(&z)?.f_to_device(Device::Cpu)?);
                predicted.push(net.head_logits(&z)?.f_argmax(1, false)?.f_to_device(Device::Cpu)?);
                labels.push(batch.labels.shallow_clone());
                let mut ok = vec![true; batch.range.len()];
                for (idx, msg) in &batch.failed {
                    ok[idx - batch.range.start] = false;
                    if !options.quiet {
                        eprintln!("warning: {msg}");
                    }
                    report.failed.push((*idx, msg.clone()));
                }
                valid.push(Tensor::f_from_slice(&ok)?);
                report.batches_run += 1;
                progress.inc(batch.range.len() as u64);
                done = batch.range.end;
            }
            let mut c = Chunk {
                sums: Tensor::f_cat(&sums, 0)?,
                labels: Tensor::f_cat(&labels, 0)?,
                predicted: Tensor::f_cat(&predicted, 0)?,
                valid: Tensor::f_cat(&valid, 0)?,
                map_hw: Tensor::f_from_slice(&[map_hw.0, map_hw.1])?,
            };
            // Failed images: zero sums, never prototypes.
            let mask = c.valid.f_to_kind(Kind::Float)?.f_unsqueeze(1)?;
            c.sums = c.sums.f_mul(&mask)?;
            if let Some(f) = &folder {
                c.write(&chunk_path(f, start))?;
            }
            chunks[i] = Some(c);
            report.chunks_computed += 1;
        }
        progress.finish(&format!("{todo} images, {} batches, {} failed", report.batches_run, report.failed.len()));
    }

    let chunks: Vec<Chunk> = chunks.into_iter().flatten().collect();
    let hw = Vec::<i64>::try_from(&chunks[0].map_hw)?;
    let cat = |f: fn(&Chunk) -> &Tensor| Tensor::f_cat(&chunks.iter().map(f).collect::<Vec<_>>(), 0);
    let bank = Bank {
        sums: cat(|c| &c.sums)?,
        labels: cat(|c| &c.labels)?,
        predicted: cat(|c| &c.predicted)?,
        valid: cat(|c| &c.valid)?,
        map_size: (hw[0], hw[1]),
        selection: Mutex::new(None),
    };
    Ok((bank, report))
}

impl Bank {
    /// A bank from its per-image tensors (see the fields).
    pub fn new(sums: Tensor, labels: Tensor, predicted: Tensor, valid: Tensor, map_size: (i64, i64)) -> Bank {
        Bank { sums, labels, predicted, valid, map_size, selection: Mutex::new(None) }
    }

    /// The same bank with other predictions (after a new head), sharing the rest.
    pub fn with_predictions(&self, predicted: Tensor) -> Bank {
        Bank::new(
            self.sums.shallow_clone(),
            self.labels.shallow_clone(),
            predicted,
            self.valid.shallow_clone(),
            self.map_size,
        )
    }

    /// N, the number of images.
    pub fn len(&self) -> usize {
        self.sums.size()[0] as usize
    }

    /// Whether the bank is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// C, the number of channels.
    pub fn channels(&self) -> i64 {
        self.sums.size()[1]
    }

    /// Bytes held per image (sums, label, prediction, validity).
    pub fn bytes_per_image(&self) -> usize {
        self.channels() as usize * 4 + 8 + 8 + 1
    }

    /// Channel activations under U: Σ_hw(U·z) = sums·Uᵀ `[N,C]` (`u` = None: sums).
    pub fn activations(&self, u: Option<&Tensor>) -> crate::Result<Tensor> {
        match u {
            None => Ok(self.sums.shallow_clone()),
            Some(u) => crate::features::rotate_sums(&self.sums, &u.f_to_device(Device::Cpu)?),
        }
    }

    /// Logits from the bank alone: A·sums/(h·w) + b, `weight` `[K,C]`, `bias` `[K]` → `[N,K]`.
    pub fn logits(&self, weight: &Tensor, bias: &Tensor) -> crate::Result<Tensor> {
        let hw = (self.map_size.0 * self.map_size.1) as f64;
        Ok(self
            .sums
            .f_div_scalar(hw)?
            .f_linear(&weight.f_to_device(Device::Cpu)?, Some(&bias.f_to_device(Device::Cpu)?))?)
    }
}
