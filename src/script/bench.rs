//! Script bindings for measuring a run: the backbone-pass floor, peak memory and
//! the bank's footprint, as `scripts/bench.rhai` reports them. Time itself is
//! Rhai's own `timestamp()` and `.elapsed`.
use super::dataset::DatasetHandle as Dataset;
use super::model::ModelHandle as Model;
use super::tensor::ScriptTensor as Tensor;
use crate::study::Study as Bank;
use rhai::plugin::*;
use rhai::{Map, FLOAT, INT};

/// The script functions for measuring a run (see `epic doc`).
#[export_module]
pub mod api {
    /// One plain backbone pass over the data set, keeping nothing (the floor an
    /// EPIC run is measured against): `#{ images, batches, seconds }`. `opts`
    /// takes `batch_size` and `quiet`, like `extract`.
    ///
    /// ```rhai
    /// let floor = forward_pass(model, train, cfg.dataloader).seconds;
    /// ```
    #[rhai_fn(return_raw)]
    pub fn forward_pass(model: Model, dataset: Dataset, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        let value = crate::script::options(&opts);
        let o = crate::features::ExtractOptions::from_config(&crate::config::Section::at(&value, "dataloader")?)?;
        let batch = o.batch_size.for_network(&model.0);
        let r = crate::features::forward_pass(&model.0, dataset.dataset.clone(), batch, o.quiet)?;
        let mut out = Map::new();
        out.insert("images".into(), (r.images as INT).into());
        out.insert("batches".into(), (r.batches as INT).into());
        out.insert("seconds".into(), (r.seconds as FLOAT).into());
        Ok(out)
    }

    /// Seconds for one forward pass of the whole network (backbone and head) on
    /// one normalised image `[3,H,W]`, as `explain` runs it, waiting for the device.
    #[rhai_fn(return_raw)]
    pub fn forward_seconds(model: Model, image: Tensor) -> Result<FLOAT, Box<EvalAltResult>> {
        let start = std::time::Instant::now();
        let x = image.0.f_unsqueeze(0).map_err(crate::Error::from)?;
        let logits = model.0.logits(&x).map_err(crate::Error::from)?;
        logits.f_sum(tch::Kind::Float).and_then(|s| s.f_double_value(&[])).map_err(crate::Error::from)?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// Peak resident memory of this process so far, in MiB (0 where unknown).
    pub fn peak_rss_mib() -> FLOAT {
        crate::memory::peak_rss_bytes().map_or(0.0, |b| b as FLOAT / (1024.0 * 1024.0))
    }

    /// Bytes the bank holds per image: C f32 sums, label, prediction, validity.
    #[rhai_fn(pure)]
    pub fn bytes_per_image(b: &mut Bank) -> INT {
        b.bank().bytes_per_image() as INT
    }

    /// Maps held by the bank's prototype memo, and its hits and misses (backbone
    /// recomputations): `#{ maps, bytes, hits, misses }`.
    #[rhai_fn(pure)]
    pub fn memo_stats(b: &mut Bank) -> Map {
        let memo = b.memo_stats();
        let mut out = Map::new();
        out.insert("maps".into(), (memo.maps as INT).into());
        out.insert("bytes".into(), (memo.bytes as INT).into());
        out.insert("hits".into(), (memo.hits as INT).into());
        out.insert("misses".into(), (memo.misses as INT).into());
        out
    }
}
