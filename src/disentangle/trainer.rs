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
use super::{purity_step_gathered, Adam, AdamConfig, Disentangler, Gradient, Schedule};
use crate::data::Loader;
use crate::features::{Bank, BankError, FeatureMemo};
use crate::model::Network;
use crate::progress::Progress;
use tch::{Kind, Tensor};

/// How to train (the reference config's `training` and `prototypes.scheduler`).
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub schedule: Schedule,
    /// `training.num_epochs_per_prototypes` (2 in the paper).
    pub epochs_per_step: usize,
    /// (image, channel) pairs per Adam step (512 in the reference).
    pub batch_size: usize,
    pub adam: AdamConfig,
    /// Seeds the shuffling of pairs.
    pub seed: u64,
    /// How each Adam step gets its gradient (`training.gradient`).
    pub gradient: Gradient,
    pub quiet: bool,
}

/// Mean purities recorded during training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Per schedule step: (m, mean purity of the freshly selected prototypes).
    pub steps: Vec<(usize, f64)>,
    /// Per epoch: (m, mean of the batch purities).
    pub epochs: Vec<(usize, f64)>,
}

/// The (image, channel) pairs of prototypes `protos` [C,m]: images and channels, both [C·m] int64.
fn pairs(protos: &Tensor) -> crate::Result<(Tensor, Tensor)> {
    let (c, m) = (protos.size()[0], protos.size()[1]);
    let images = protos.f_reshape([c * m])?;
    let channels =
        Tensor::f_arange(c, (Kind::Int64, protos.device()))?.f_repeat_interleave_self_int(m, 0, None::<i64>)?;
    Ok((images, channels))
}

/// Feature maps of the distinct images in `images` [P] int64 (repeats allowed),
/// from the memo, [N,C,h,w] on the network's device, and for each entry of
/// `images` its row in them, [P] int64 on that device. Each map is held once,
/// however many channels share the image.
fn maps_for(
    images: &Tensor,
    net: &Network,
    loader: &Loader,
    memo: &mut FeatureMemo,
) -> Result<(Tensor, Tensor), BankError> {
    let list = Vec::<i64>::try_from(images)?;
    let mut unique: Vec<usize> = list.iter().map(|&i| i as usize).collect();
    unique.sort_unstable();
    unique.dedup();
    let maps = memo.maps(net, loader, &unique)?;
    let position: Vec<i64> =
        list.iter().map(|&i| unique.binary_search(&(i as usize)).map_or(0, |p| p as i64)).collect();
    let rows = Tensor::f_from_slice(&position)?.f_to_device(maps.device())?;
    Ok((maps, rows))
}

/// Pairs per chunk when measuring purity of many prototypes at once.
const PURITY_CHUNK: i64 = 1024;

/// Argmax purity of each of the top-`m` prototypes of every channel under `d`'s
/// U: [C·m] f32, channel-major (channel k's prototypes at k·m … k·m + m − 1).
pub fn prototype_purities(
    d: &Disentangler,
    bank: &Bank,
    m: i64,
    net: &Network,
    loader: &Loader,
    memo: &mut FeatureMemo,
) -> Result<Tensor, BankError> {
    let u = d.matrix()?;
    let (images, channels) = pairs(&bank.top_prototypes(Some(&u), m)?)?;
    let (maps, rows) = maps_for(&images, net, loader, memo)?;
    let _guard = tch::no_grad_guard();
    let u = u.f_to_device(maps.device())?;
    Ok(purities_of(&maps, &rows, &u, &channels.f_to_device(maps.device())?)?)
}

/// Argmax purity under `u` of the pairs (maps[rows[i]], channels[i]), in chunks.
fn purities_of(maps: &Tensor, rows: &Tensor, u: &Tensor, channels: &Tensor) -> crate::Result<Tensor> {
    let p = rows.size()[0];
    let mut parts = Vec::new();
    for start in (0..p).step_by(PURITY_CHUNK as usize) {
        let n = PURITY_CHUNK.min(p - start);
        let features = maps.f_index_select(0, &rows.f_narrow(0, start, n)?)?;
        parts.push(crate::prototypes::purity_argmax_under(&features, u, &channels.f_narrow(0, start, n)?)?);
    }
    if parts.is_empty() {
        return Ok(Tensor::f_zeros([0], (tch::Kind::Float, maps.device()))?);
    }
    Ok(Tensor::f_cat(&parts, 0)?)
}

/// Mean argmax purity of the top-`m` prototypes of every channel under `d`'s U.
pub fn prototype_purity(
    d: &Disentangler,
    bank: &Bank,
    m: i64,
    net: &Network,
    loader: &Loader,
    memo: &mut FeatureMemo,
) -> Result<f64, BankError> {
    let p = prototype_purities(d, bank, m, net, loader, memo)?;
    Ok(p.f_mean(Kind::Double)?.f_double_value(&[])?)
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

/// Trains `d` on `bank` through the schedule; returns the purity history.
pub fn train(
    d: &mut Disentangler,
    bank: &Bank,
    net: &Network,
    loader: &Loader,
    memo: &mut FeatureMemo,
    config: &TrainConfig,
) -> Result<History, BankError> {
    // A lives where the network's maps live (a resumed U is loaded on the CPU).
    if d.device() != net.device() {
        *d = d.to_device(net.device())?;
    }
    let mut adam = Adam::new(d.a_raw(), config.adam)?;
    let mut shuffler = Shuffler(config.seed);
    let mut history = History::default();
    let batch = config.batch_size.max(1);
    for (step, m) in config.schedule.values().into_iter().enumerate() {
        let u = d.matrix()?;
        let (images, channels) = pairs(&bank.top_prototypes(Some(&u), m as i64)?)?;
        let (maps, rows) = maps_for(&images, net, loader, memo)?;
        let channels = channels.f_to_device(maps.device())?;
        let selected = {
            let _guard = tch::no_grad_guard();
            let u = u.f_to_device(maps.device())?;
            purities_of(&maps, &rows, &u, &channels)?.f_mean(Kind::Double)?.f_double_value(&[])?
        };
        history.steps.push((m, selected));
        let n = images.size()[0] as usize;
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
            "purity {selected:.4} at selection, {:.4} after the last epoch",
            history.epochs.last().map_or(selected, |e| e.1)
        ));
    }
    Ok(history)
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
