//! Training U on a feature bank, as the paper's schedule says.
//!
//! For each schedule step s with m = schedule[s] prototypes per channel:
//! 1. re-select the top-m prototypes of every channel from the bank under the
//!    current U (a matmul on cached sums, no backbone pass);
//! 2. measure their mean argmax purity (the value the reference logs per step);
//! 3. run `epochs_per_step` epochs of Adam over the shuffled (image, channel)
//!    pairs in batches, with loss −mean purity.
//!
//! The prototypes' full feature maps come from a [`FeatureMemo`]: computed once,
//! and never again while they stay prototypes and fit the memo's bound.
//! Shuffling uses the configured seed, so a run is reproducible.
use super::checkpoint::Checkpoint;
use super::{purity_step_gathered, Adam, Disentangler, TrainConfig};
use crate::features::Bank;
use crate::progress::Progress;
use crate::study::Study;
use tch::{Kind, Tensor};

/// Mean purities recorded during training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Per schedule step: (m, mean purity of the freshly selected prototypes).
    pub steps: Vec<(usize, f64)>,
    /// Per epoch: (m, mean of the batch purities).
    pub epochs: Vec<(usize, f64)>,
}

impl std::fmt::Display for History {
    /// `History(3 steps, 6 epochs; purity 0.0474 → 0.0563)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.steps.first().map_or(f64::NAN, |s| s.1);
        let last = self.epochs.last().map_or(first, |e| e.1);
        write!(f, "History({} steps, {} epochs; purity {first:.4} → {last:.4})", self.steps.len(), self.epochs.len())
    }
}

/// The (image, channel) pairs of prototypes `protos` `[C,m]`: images and channels, both `[C·m]` int64.
fn pairs(protos: &Tensor) -> crate::Result<(Tensor, Tensor)> {
    let (c, m) = (protos.size()[0], protos.size()[1]);
    let images = protos.f_reshape([c * m])?;
    let channels =
        Tensor::f_arange(c, (Kind::Int64, protos.device()))?.f_repeat_interleave_self_int(m, 0, None::<i64>)?;
    Ok((images, channels))
}

/// Feature maps of the distinct images in `images` `[P]` int64 (repeats allowed),
/// from the study's memo, `[N,C,h,w]` on the network's device, and for each entry
/// of `images` its row in them, `[P]` int64 on that device. Each map is held once,
/// however many channels share the image.
fn maps_for(images: &Tensor, study: &Study) -> crate::Result<(Tensor, Tensor)> {
    let list = Vec::<i64>::try_from(images)?;
    let mut unique: Vec<usize> = list.iter().map(|&i| i as usize).collect();
    unique.sort_unstable();
    unique.dedup();
    let maps = study.maps(&unique)?;
    let position: Vec<i64> =
        list.iter().map(|&i| unique.binary_search(&(i as usize)).map_or(0, |p| p as i64)).collect();
    let rows = Tensor::f_from_slice(&position)?.f_to_device(maps.device())?;
    Ok((maps, rows))
}

/// Pairs per chunk when measuring purity of many prototypes at once.
const PURITY_CHUNK: i64 = 1024;

/// The top-`m` prototypes of every channel under `d`'s U as (image, channel)
/// pairs, channel-major: the maps of their images (each once), each pair's row
/// in them and channel, and each pair's argmax purity, all on the maps' device.
/// Also: how many distinct images the pairs have (at most C·m), and how many of
/// their maps the backbone computed because the memo did not hold them.
struct Selection {
    maps: Tensor,
    rows: Tensor,
    channels: Tensor,
    purities: Tensor,
    images: usize,
    recomputed: usize,
}

fn select(d: &Disentangler, study: &Study, m: i64) -> crate::Result<Selection> {
    let u = d.matrix()?;
    let (images, channels) = pairs(&study.bank().top_prototypes(Some(&u), m)?)?;
    let misses = study.memo_stats().misses;
    let (maps, rows) = maps_for(&images, study)?;
    let recomputed = study.memo_stats().misses - misses;
    let channels = channels.f_to_device(maps.device())?;
    let purities = {
        let _guard = tch::no_grad_guard();
        purities_of(&maps, &rows, &u.f_to_device(maps.device())?, &channels)?
    };
    Ok(Selection { images: maps.size()[0] as usize, maps, rows, channels, purities, recomputed })
}

/// Argmax purity under `u` of the pairs (maps[rows[i]], channels[i]), in chunks.
fn purities_of(maps: &Tensor, rows: &Tensor, u: &Tensor, channels: &Tensor) -> crate::Result<Tensor> {
    let p = rows.size()[0];
    let mut parts = Vec::new();
    for start in (0..p).step_by(PURITY_CHUNK as usize) {
        let n = PURITY_CHUNK.min(p - start);
        let (rows, channels) = (rows.f_narrow(0, start, n)?, channels.f_narrow(0, start, n)?);
        parts.push(crate::prototypes::purity_argmax_pairs(maps, &rows, &channels, u, false)?);
    }
    if parts.is_empty() {
        return Ok(Tensor::f_zeros([0], (tch::Kind::Float, maps.device()))?);
    }
    Ok(Tensor::f_cat(&parts, 0)?)
}

impl Study {
    /// Argmax purity of each of the top-`m` prototypes of every channel under
    /// `d`'s U: `[C·m]` f32, channel-major (channel k's prototypes at k·m … k·m + m − 1).
    pub fn purities(&self, d: &Disentangler, m: i64) -> crate::Result<Tensor> {
        Ok(select(d, self, m)?.purities)
    }

    /// Mean argmax purity of the top-`m` prototypes of every channel under `d`'s U
    /// (m = 5 for the reference's before/after numbers).
    pub fn purity(&self, d: &Disentangler, m: i64) -> crate::Result<f64> {
        Ok(self.purities(d, m)?.f_mean(Kind::Double)?.f_double_value(&[])?)
    }

    /// Trains `d` on this study's bank through the schedule; returns the purity
    /// history. Resumes from `config.checkpoint` when it holds the same training,
    /// and stops at a safe point on Ctrl-C.
    pub fn train(&self, d: &mut Disentangler, config: &TrainConfig) -> crate::Result<History> {
        train(d, self, config)
    }
}

/// A small seeded generator for shuffling (splitmix64), independent of libtorch's RNG.
struct Shuffler(u64);

impl Shuffler {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// A uniformly random permutation of 0..n (Fisher–Yates).
    fn permutation(&mut self, n: usize) -> Vec<i64> {
        let mut p: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// What is being trained, as a fingerprint: a checkpoint resumes only the
/// training it was written by.
fn fingerprint(d: &Disentangler, bank: &Bank, config: &TrainConfig) -> crate::Result<String> {
    let mut h = crate::io::Fingerprint::new();
    h.add_str("epic-train-v1");
    // Another version of epic may train differently: never resume across versions.
    h.add_str(env!("CARGO_PKG_VERSION"));
    h.add_str(d.kind().name());
    h.add_tensor_bytes(d.a_raw())?;
    // The bank: its shape, its labels and a sample of its sums (every image's
    // total and up to 1024 whole rows), cheap at ImageNet scale.
    let n = bank.len() as i64;
    h.add_u64(n as u64);
    h.add_u64(bank.channels() as u64);
    let stride = (n / 1024).max(1) as usize;
    let (mut totals, mut sample) = (Vec::new(), Vec::new());
    bank.for_each_block(|start, sums| {
        totals.push(sums.f_sum_dim_intlist([1i64].as_slice(), false, Kind::Float)?);
        // Rows start, start + stride, … of the whole bank that fall in this block.
        let first = (start.div_ceil(stride) * stride - start) as i64;
        if first < sums.size()[0] {
            sample.push(sums.f_slice(0, first, sums.size()[0], stride as i64)?);
        }
        Ok(())
    })?;
    h.add_tensor_bytes(&Tensor::f_cat(&totals, 0)?)?;
    h.add_tensor_bytes(&Tensor::f_cat(&sample, 0)?)?;
    h.add_tensor_bytes(&bank.valid.f_to_kind(Kind::Uint8)?)?;
    h.add_str(&format!(
        "{:?} {} {} {:?} {} {}",
        config.schedule.values(),
        config.epochs_per_step,
        config.batch_size,
        config.adam,
        config.seed,
        config.gradient
    ));
    Ok(h.hex())
}

/// Trains `d` on `study`'s bank through the schedule; returns the purity history.
///
/// With `config.checkpoint`, the state after each schedule step is saved there,
/// and a run that finds a checkpoint of the same training resumes after its last
/// step, with results bitwise identical to an uninterrupted run. Ctrl-C (see
/// [`crate::interrupt`]) stops between Adam steps with an
/// [`Error::Interrupted`](crate::Error::Interrupted) saying how to resume.
fn train(d: &mut Disentangler, study: &Study, config: &TrainConfig) -> crate::Result<History> {
    let (bank, net) = (study.bank(), study.network());
    // A lives where the network's maps live (a resumed U is loaded on the CPU).
    if d.device() != net.device() {
        *d = d.to_device(net.device())?;
    }
    let fp = match &config.checkpoint {
        Some(_) => fingerprint(d, bank, config)?,
        None => String::new(),
    };
    let mut adam = Adam::new(d.a_raw(), config.adam)?;
    let mut shuffler = Shuffler(config.seed);
    let mut history = History::default();
    let mut first = 0;
    if let Some(path) = &config.checkpoint {
        if let Some(ck) = Checkpoint::load(path, &fp)? {
            let device = net.device();
            *d = Disentangler::from_raw(d.kind(), &ck.a_raw.f_to_device(device)?)?;
            adam = Adam::restore(
                config.adam,
                ck.adam_step,
                ck.exp_avg.f_to_device(device)?,
                ck.exp_avg_sq.f_to_device(device)?,
            )?;
            shuffler = Shuffler(ck.shuffler);
            history = ck.history;
            first = ck.steps_done.min(config.schedule.steps);
            if !config.quiet {
                eprintln!("resuming training after step {first}/{} from {}", config.schedule.steps, path.display());
            }
        }
    }
    let batch = config.batch_size.max(1);
    for (step, m) in config.schedule.values().into_iter().enumerate().skip(first) {
        let Selection { maps, rows, channels, purities, images, recomputed } = select(d, study, m as i64)?;
        let selected = purities.f_mean(Kind::Double)?.f_double_value(&[])?;
        history.steps.push((m, selected));
        let n = rows.size()[0] as usize;
        let batches = n.div_ceil(batch);
        let mut progress = Progress::new(
            &format!("step {}/{} m={m}", step + 1, config.schedule.steps),
            (config.epochs_per_step * batches) as u64,
            config.quiet,
        );
        for _ in 0..config.epochs_per_step {
            let order = config_order(&mut shuffler, n, maps.device())?;
            let mut total = 0.0;
            for b in 0..batches {
                if crate::interrupt::requested() {
                    return Err(interrupted(step, config));
                }
                let idx = order.f_narrow(0, (b * batch) as i64, (batch.min(n - b * batch)) as i64)?;
                let loss = purity_step_gathered(
                    config.gradient,
                    d,
                    &mut adam,
                    &maps,
                    &rows.f_index_select(0, &idx)?,
                    &channels.f_index_select(0, &idx)?,
                )?;
                total += -loss;
                progress.inc(1);
            }
            history.epochs.push((m, total / batches as f64));
        }
        progress.finish(&format!(
            "purity {selected:.4} at selection, {:.4} after the last epoch; {images} prototype images{}",
            history.epochs.last().map_or(selected, |e| e.1),
            match recomputed {
                0 => String::new(),
                r => format!(", {r} of their maps recomputed (the memo, dataloader.memo_mib, held the rest)"),
            }
        ));
        if let Some(path) = &config.checkpoint {
            let [(_, exp_avg), (_, exp_avg_sq)] = adam.moments();
            Checkpoint {
                fingerprint: fp.clone(),
                steps_done: step + 1,
                a_raw: d.a_raw_copy()?,
                adam_step: adam.steps(),
                exp_avg: exp_avg.shallow_clone(),
                exp_avg_sq: exp_avg_sq.shallow_clone(),
                shuffler: shuffler.0,
                history: history.clone(),
            }
            .save(path)?;
        }
    }
    Ok(history)
}

/// The error for a Ctrl-C during schedule step `step` (0-based).
fn interrupted(step: usize, config: &TrainConfig) -> crate::Error {
    let resume = match &config.checkpoint {
        Some(path) if step > 0 => format!(
            "{} holds the state after step {step}/{}; run the same command again to resume from there",
            path.display(),
            config.schedule.steps
        ),
        Some(_) => "no schedule step had completed; run the same command again to start training over".into(),
        None => "this training keeps no checkpoint (set training.checkpoint); run again to start over".into(),
    };
    crate::Error::Interrupted { what: format!("training (step {}/{})", step + 1, config.schedule.steps), resume }
}

fn config_order(shuffler: &mut Shuffler, n: usize, device: tch::Device) -> crate::Result<Tensor> {
    Ok(Tensor::f_from_slice(&shuffler.permutation(n))?.f_to_device(device)?)
}

#[cfg(test)]
mod tests {
    use super::Shuffler;

    #[test]
    fn shuffles_are_permutations_and_reproducible() {
        let (a, b) = (Shuffler(7).permutation(100), Shuffler(7).permutation(100));
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<i64>>());
        assert_ne!(a, (0..100).collect::<Vec<i64>>());
        assert_ne!(a, Shuffler(8).permutation(100));
    }
}
