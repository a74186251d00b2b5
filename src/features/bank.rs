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
use super::cache::{chunk_path, claim_path, remove_stale_temporaries, Chunk, ChunkState};
use super::sums::{Part, Sums};
use super::FeatureMemo;
use crate::data::{Dataset, Loader};
use crate::io::{Fingerprint, Integrity};
use crate::model::Network;
use crate::progress::Progress;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tch::{Device, Kind, Tensor};

/// Bump when the chunk format changes: old caches are then ignored.
const FORMAT: &str = "epic-bank-v1";

type Result<T, E = crate::Error> = std::result::Result<T, E>;

/// Per-image results of one backbone pass over a data set.
#[derive(Debug)]
pub struct Bank {
    /// Σ_hw Z per image, `[N,C]` f32 on the CPU: held, or, above
    /// `dataloader.bank_mib`, left in the cache's chunks ([`Bank::sums`],
    /// [`Bank::for_each_block`]).
    sums: Sums,
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
/// `dataloader` section, plus epic's `cache`, `chunk`, `memo_mib`, `memo_half`,
/// `bank_mib`.
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
    /// Bound in MiB of the bank's sums held in memory (`dataloader.bank_mib`:
    /// none). A bank whose N·C·4 bytes exceed it keeps its sums on disk in the
    /// cache's chunks, and selection streams them (needs `cache`; 0 keeps every
    /// bank on disk).
    pub bank_mib: Option<usize>,
    /// No progress output (`quiet`).
    pub quiet: bool,
    /// Devices to run one backbone replica each on (`dataloader.devices`, or
    /// `--device cuda:0,cuda:1`); batches go to them in turn. Empty or one: the
    /// network's own device alone.
    pub devices: Vec<Device>,
    /// Only read the cache: missing chunks are an error ([`crate::Error::BankGone`])
    /// rather than a backbone pass (`epic explain`/`evaluate`/`report` on a finished run).
    pub cached_only: bool,
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
            bank_mib: None,
            quiet: false,
            devices: Vec::new(),
            cached_only: false,
        }
    }
}

/// `dataloader.devices`: a list of device names, or one comma-separated string.
fn devices_of(dataloader: &crate::config::Section) -> crate::Result<Vec<Device>> {
    let bad = || dataloader.invalid("devices", "must be a list of device names, e.g. [cuda:0, cuda:1]");
    match dataloader.get(&["devices"]) {
        None | Some(serde_yaml::Value::Null) => Ok(Vec::new()),
        Some(serde_yaml::Value::String(s)) => crate::device::parse_devices(s),
        Some(serde_yaml::Value::Sequence(v)) => {
            v.iter().map(|d| d.as_str().ok_or_else(bad).and_then(crate::device::parse_device)).collect()
        }
        Some(_) => Err(bad()),
    }
}

impl ExtractOptions {
    /// The options a `dataloader` section gives (`batch_size`, an int or `auto`;
    /// `chunk`, `cache`, `memo_mib`, `memo_half`, `bank_mib`, `quiet`); other keys, such as
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
            bank_mib: match dataloader.get(&["bank_mib"]) {
                None | Some(serde_yaml::Value::Null) => None,
                Some(_) => Some(dataloader.int_at_least(&["bank_mib"], 0, 0)? as usize),
            },
            quiet: dataloader.bool(&["quiet"], d.quiet)?,
            devices: devices_of(dataloader)?,
            cached_only: false,
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
    /// Chunks another run sharing the cache computed while this one waited.
    pub chunks_by_others: usize,
    /// Images that failed to decode: (index, message).
    pub failed: Vec<(usize, String)>,
    /// The cache key.
    pub key: String,
    /// The cache folder of this bank, if any.
    pub folder: Option<PathBuf>,
    /// Images per cache chunk (part of the key).
    pub chunk: usize,
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
///
/// Processes that extract the same bank into one cache at the same time divide
/// the missing chunks: each claims a chunk before computing it
/// ([`crate::io::claim`]), skips the chunks others hold, and then waits for
/// them; a chunk whose holder dies is claimed and computed.
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
        let layout = super::BankLayout {
            images: n,
            chunk,
            model: net.name().to_string(),
            dataset: dataset.describe(0).split(" #").next().unwrap_or_default().to_string(),
        };
        // For `epic bank status` only: a bank without it is still whole.
        let _ = std::fs::create_dir_all(f);
        if let Err(e) = layout.write_once(f) {
            crate::progress::warning(&format!("cannot write {}: {e}", super::BankLayout::path(f).display()));
        }
    }
    let shard = super::shard();
    if shard.is_some() && folder.is_none() {
        return Err(crate::Error::invalid(
            "--shard",
            "a shard writes its chunks into the shared cache: set dataloader.cache to a folder all shards see",
        ));
    }
    let on_disk = keeps_sums_on_disk(options, n, net.channels(), chunk, folder.as_deref())?;
    // A chunk of a bank kept on disk holds no sums in memory once checked or written.
    let settle = |mut c: Chunk| {
        if on_disk {
            c.sums = Tensor::new();
            crate::memory::return_free_memory();
        }
        c
    };
    let mut report = ExtractReport { key: key.clone(), folder: folder.clone(), chunk, ..Default::default() };
    let (mut unchecked, mut resaved) = (0, 0);
    let mut chunks: Vec<Option<Chunk>> = Vec::with_capacity(starts.len());
    for &s in &starts {
        let Some(f) = &folder else {
            chunks.push(None);
            continue;
        };
        let path = chunk_path(f, s);
        chunks.push(match Chunk::read(&path, rows(s), net.channels()) {
            ChunkState::Ready(c, integrity) => {
                if integrity == Integrity::Unchecked {
                    // Written before chunks carried a checksum: checked above, kept, re-saved
                    // with one where the cache is writable (a shared read-only cache is read as is).
                    unchecked += 1;
                    resaved += usize::from(c.write(&path).is_ok());
                }
                Some(settle(c))
            }
            ChunkState::Missing => None,
            ChunkState::Damaged(why) => {
                crate::progress::warning(&format!(
                    "cache chunk {} is damaged and is recomputed: {why}",
                    path.display()
                ));
                let _ = std::fs::remove_file(&path);
                None
            }
        });
    }
    if unchecked > 0 {
        crate::progress::note(&format!(
            "{unchecked} cache chunk(s) in {} were written without a checksum (by an earlier epic); \
             their shapes and sums were checked, and {resaved} of them were re-saved with one",
            folder.as_ref().map(|f| f.display().to_string()).unwrap_or_default()
        ));
    }
    report.chunks_reused = chunks.iter().filter(|c| c.is_some()).count();

    let mut missing: Vec<usize> = (0..starts.len()).filter(|&i| chunks[i].is_none()).collect();
    if let Some(s) = shard {
        missing.retain(|&i| s.owns(i));
    }
    if options.cached_only && !missing.is_empty() {
        return Err(crate::Error::BankGone {
            folder: folder.clone().unwrap_or_default(),
            missing: missing.len(),
            chunks: starts.len(),
            rebuild: String::new(),
        });
    }
    if !missing.is_empty() {
        let todo: usize = missing.iter().map(|&i| rows(starts[i]) as usize).sum();
        let mut progress = Progress::new("extract", todo as u64, options.quiet);
        let batch_size = options.batch_size.for_network(net);
        let loader = Loader::new(dataset.clone(), net.preprocess(), batch_size);
        let devices = if options.devices.is_empty() { super::host_devices() } else { options.devices.clone() };
        let mut replicas = Vec::new();
        for &d in devices.iter().skip(1) {
            replicas.push(net.replica(d)?);
        }
        let mut nets: Vec<&Network> = vec![net];
        nets.extend(replicas.iter());
        let mut fitting: Vec<super::ShrinkingBatch> =
            nets.iter().map(|_| super::ShrinkingBatch::new(batch_size)).collect();
        let mut pending = missing;
        let mut waited = false;
        while !pending.is_empty() {
            let mut busy = Vec::new();
            for i in pending {
                let (start, len) = (starts[i], rows(starts[i]));
                let claim = match &folder {
                    None => None,
                    Some(f) => match crate::io::claim::try_claim(&claim_path(f, start))? {
                        crate::io::claim::Attempt::Busy(_) => {
                            busy.push(i);
                            continue;
                        }
                        crate::io::claim::Attempt::Held(c) => Some(c),
                    },
                };
                // Another run may have finished the chunk before this one claimed it.
                if let (Some(f), Some(_)) = (&folder, &claim) {
                    if let ChunkState::Ready(c, _) = Chunk::read(&chunk_path(f, start), len, net.channels()) {
                        chunks[i] = Some(settle(c));
                        report.chunks_by_others += 1;
                        progress.inc(len as u64);
                        continue;
                    }
                }
                let done = chunks.iter().filter(|c| c.is_some()).count();
                let c = compute_chunk(
                    &nets,
                    &loader,
                    &mut fitting,
                    start..start + len as usize,
                    &mut memo,
                    &mut report,
                    &mut progress,
                )
                .map_err(|e| match e {
                    crate::Error::Interrupted { what, .. } => {
                        crate::Error::Interrupted { what, resume: resume_hint(folder.as_deref(), done, starts.len()) }
                    }
                    e => e,
                })?;
                if let Some(f) = &folder {
                    c.write(&chunk_path(f, start))?;
                }
                drop(claim);
                chunks[i] = Some(settle(c));
                report.chunks_computed += 1;
            }
            pending = busy;
            if !pending.is_empty() {
                if !waited {
                    crate::progress::note(&format!(
                        "{} chunk(s) are being computed by another run sharing {}; waiting for them",
                        pending.len(),
                        folder.as_ref().map(|f| f.display().to_string()).unwrap_or_default()
                    ));
                    waited = true;
                }
                if crate::interrupt::requested() {
                    let done = chunks.iter().filter(|c| c.is_some()).count();
                    return Err(crate::Error::Interrupted {
                        what: "extraction".into(),
                        resume: resume_hint(folder.as_deref(), done, starts.len()),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        progress.finish(&format!(
            "{todo} images, {} batches, {} failed{}",
            report.batches_run,
            report.failed.len(),
            match report.chunks_by_others {
                0 => String::new(),
                k => format!(", {k} chunk(s) computed by another run"),
            }
        ));
    }

    if let Some(s) = shard {
        // A shard stops here: the run that trains reads the whole bank.
        let there = chunks.iter().filter(|c| c.is_some()).count();
        let message = format!(
            "shard {s}: computed {} of the bank's {} chunk(s) in {}; {there} of {} are there{}",
            report.chunks_computed,
            starts.len(),
            folder.as_ref().map(|f| f.display().to_string()).unwrap_or_default(),
            starts.len(),
            if there == starts.len() { ": the bank is complete" } else { "" }
        );
        super::shard::mark_done(message.clone());
        return Err(crate::Error::ShardDone(message));
    }
    let chunks: Vec<Chunk> = chunks.into_iter().flatten().collect();
    let failed_now: std::collections::HashSet<usize> = report.failed.iter().map(|(i, _)| *i).collect();
    for (c, &s) in chunks.iter().zip(&starts) {
        let valid = Vec::<bool>::try_from(&c.valid)?;
        report.failed.extend(
            valid
                .iter()
                .enumerate()
                .filter(|(i, ok)| !**ok && !failed_now.contains(&(s + i)))
                .map(|(i, _)| (s + i, "failed in an earlier run".to_string())),
        );
    }
    report.failed.sort_by_key(|(i, _)| *i);
    let disk = match &folder {
        Some(f) if on_disk => Some((f.as_path(), options.bank_mib.unwrap_or_default())),
        _ => None,
    };
    let bank = assemble(&chunks, &starts, net.channels(), disk)?;
    Ok((bank, report))
}

/// A bank from its chunks in order (first images `starts`): sums held, or, with
/// `disk` = (folder, bound), left in the folder's chunk files (the chunks then
/// carry no sums).
pub(super) fn assemble(
    chunks: &[Chunk],
    starts: &[usize],
    channels: i64,
    disk: Option<(&Path, usize)>,
) -> Result<Bank> {
    let hw = Vec::<i64>::try_from(&chunks[0].map_hw)?;
    let cat = |f: fn(&Chunk) -> &Tensor| Tensor::f_cat(&chunks.iter().map(f).collect::<Vec<_>>(), 0);
    let sums = match disk {
        Some((folder, bound)) => {
            let parts: Vec<Part> = chunks
                .iter()
                .zip(starts)
                .map(|(c, &s)| Part { path: chunk_path(folder, s), start: s, rows: c.labels.size()[0] })
                .collect();
            let n: i64 = parts.iter().map(|p| p.rows).sum();
            crate::progress::note(&format!(
                "the bank's sums ({}) are above dataloader.bank_mib = {bound} MiB: they stay on disk in {}, \
                 and each selection reads them a chunk at a time",
                crate::report::mib(super::sums::sums_bytes(n as usize, channels)),
                folder.display()
            ));
            Sums::Disk { parts, channels }
        }
        None => Sums::Memory(cat(|c| &c.sums)?),
    };
    Ok(Bank {
        sums,
        labels: cat(|c| &c.labels)?,
        predicted: cat(|c| &c.predicted)?,
        valid: cat(|c| &c.valid)?,
        map_size: (hw[0], hw[1]),
        selection: Mutex::new(None),
    })
}

/// Whether a bank of `n` images × `channels` keeps its sums on disk: above
/// `options.bank_mib`, which then needs a cache folder, and a chunk small enough
/// that reading one stays well within the bound.
fn keeps_sums_on_disk(
    options: &ExtractOptions,
    n: usize,
    channels: i64,
    chunk: usize,
    folder: Option<&Path>,
) -> Result<bool> {
    let Some(bound) = options.bank_mib else { return Ok(false) };
    if !super::sums::above_bound(n, channels, options.bank_mib) {
        return Ok(false);
    }
    let bytes = super::sums::sums_bytes(n, channels);
    if folder.is_none() {
        return Err(crate::Error::invalid(
            "dataloader.bank_mib",
            format!(
                "the bank's sums ({}) are above the bound of {bound} MiB, so they stay on disk, \
                 in the cache: set dataloader.cache to a folder",
                crate::report::mib(bytes)
            ),
        ));
    }
    // Reading, rotating and ranking a chunk holds about four chunks of sums.
    let working = 4 * chunk.min(n) as u64 * channels as u64 * 4;
    if bound > 0 && working > (bound as u64) << 20 {
        crate::progress::warning(&format!(
            "dataloader.chunk = {chunk} images make chunks of {} of sums, and reading one holds about four \
             ({}): more than dataloader.bank_mib = {bound} MiB; a smaller chunk keeps selection within the bound",
            crate::report::mib(chunk as u64 * channels as u64 * 4),
            crate::report::mib(working)
        ));
    }
    Ok(true)
}

/// How to resume an interrupted extraction, in a sentence.
fn resume_hint(folder: Option<&Path>, done: usize, total: usize) -> String {
    match folder {
        Some(f) => format!(
            "{done} of {total} chunks are complete in {}; run the same command again to resume from there",
            f.display()
        ),
        None => "no cache folder was given (dataloader.cache), so a new run starts over".into(),
    }
}

/// The chunk of images `range`: backbone sums, predictions, labels, validity.
/// Maps go to `memo` while it has room; failed images are warned about.
fn compute_chunk(
    nets: &[&Network],
    loader: &Loader,
    fitting: &mut [super::ShrinkingBatch],
    range: std::ops::Range<usize>,
    memo: &mut Option<&mut FeatureMemo>,
    report: &mut ExtractReport,
    progress: &mut Progress,
) -> Result<Chunk> {
    let (mut sums, mut labels, mut predicted, mut valid) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut map_hw = (0, 0);
    let primary = nets[0].device();
    let mut batches = loader.batches(range).peekable();
    while batches.peek().is_some() {
        if crate::interrupt::requested() {
            return Err(crate::Error::Interrupted { what: "extraction".into(), resume: String::new() });
        }
        // One batch per replica, all launched before any result is read back, so
        // that several GPUs work at once; batch r of a round goes to replica r.
        let mut round = Vec::new();
        for (r, net) in nets.iter().enumerate() {
            let Some(batch) = batches.next() else { break };
            let batch = batch?;
            let z = fitting[r].features(net, &batch.images)?;
            round.push((r, batch, z));
        }
        for (r, batch, z) in round {
            let net = nets[r];
            map_hw = (z.size()[2], z.size()[3]);
            if let Some(memo) = memo.as_deref_mut() {
                let failed: Vec<usize> = batch.failed.iter().map(|(i, _)| *i).collect();
                for (k, i) in batch.range.clone().enumerate() {
                    if !failed.contains(&i) && !memo.offer(i, &z.f_get(k as i64)?.f_to_device(primary)?)? {
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
                crate::progress::warning(msg);
                report.failed.push((*idx, msg.clone()));
            }
            valid.push(Tensor::f_from_slice(&ok)?);
            report.batches_run += 1;
            progress.inc(batch.range.len() as u64);
        }
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
    Ok(c)
}

impl Bank {
    /// A bank from its per-image tensors (see the fields), held in memory.
    pub fn new(sums: Tensor, labels: Tensor, predicted: Tensor, valid: Tensor, map_size: (i64, i64)) -> Bank {
        Bank { sums: Sums::Memory(sums), labels, predicted, valid, map_size, selection: Mutex::new(None) }
    }

    /// The same bank with other predictions (after a new head), sharing the rest.
    pub fn with_predictions(&self, predicted: Tensor) -> Bank {
        Bank {
            sums: self.sums.share(),
            labels: self.labels.shallow_clone(),
            predicted,
            valid: self.valid.shallow_clone(),
            map_size: self.map_size,
            selection: Mutex::new(None),
        }
    }

    /// Σ_hw Z of every image, `[N,C]` f32 on the CPU. A bank kept on disk
    /// (above `dataloader.bank_mib`) reads every chunk for this: N·C·4 bytes.
    /// Passes over the rows stream instead ([`Bank::for_each_block`]).
    pub fn sums(&self) -> crate::Result<Tensor> {
        self.sums.load()
    }

    /// Whether the sums stay on disk, read a chunk at a time.
    pub fn on_disk(&self) -> bool {
        matches!(self.sums, Sums::Disk { .. })
    }

    /// Calls `f(start, sums)` for consecutive row blocks of the sums `[n,C]`
    /// covering the bank in order: all rows at once when held, a chunk at a time
    /// from disk otherwise.
    pub fn for_each_block(&self, f: impl FnMut(usize, &Tensor) -> crate::Result<()>) -> crate::Result<()> {
        self.sums.for_each_block(f)
    }

    /// `f` applied to every row block of the sums, the results joined in order:
    /// a per-row map of the whole bank, streamed when it is on disk.
    fn map_rows(&self, f: impl FnMut(&Tensor) -> crate::Result<Tensor>) -> crate::Result<Tensor> {
        self.sums.map_rows(f)
    }

    /// N, the number of images.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// Whether the bank is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// C, the number of channels.
    pub fn channels(&self) -> i64 {
        self.sums.channels()
    }

    /// Bytes per image (sums, label, prediction, validity).
    pub fn bytes_per_image(&self) -> usize {
        self.channels() as usize * 4 + 8 + 8 + 1
    }

    /// Channel activations under U: Σ_hw(U·z) = sums·Uᵀ `[N,C]` (`u` = None: sums).
    pub fn activations(&self, u: Option<&Tensor>) -> crate::Result<Tensor> {
        match u {
            None => self.sums(),
            Some(u) => {
                let u = u.f_to_device(Device::Cpu)?;
                self.map_rows(|s| crate::features::rotate_sums(s, &u))
            }
        }
    }

    /// avgpool(U·Z) of every image from its sums alone, `[N,C]`: `activations(u)`/(h·w)
    /// (Σ_hw U z = U Σ_hw z).
    pub fn pooled(&self, u: Option<&Tensor>) -> crate::Result<Tensor> {
        let (h, w) = self.map_size;
        Ok(self.activations(u)?.f_div_scalar((h * w).max(1) as f64)?)
    }

    /// Logits from the bank alone: A·sums/(h·w) + b, `weight` `[K,C]`, `bias` `[K]` → `[N,K]`.
    pub fn logits(&self, weight: &Tensor, bias: &Tensor) -> crate::Result<Tensor> {
        let hw = (self.map_size.0 * self.map_size.1) as f64;
        let (weight, bias) = (weight.f_to_device(Device::Cpu)?, bias.f_to_device(Device::Cpu)?);
        self.map_rows(|s| Ok(s.f_div_scalar(hw)?.f_linear(&weight, Some(&bias))?))
    }
}
