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

    /// Images per second of the model's backbone alone at a batch of `batch`
    /// synthetic images already on its device, over `reps` timed batches after a
    /// warm-up: the compute bound of a pass.
    ///
    /// ```rhai
    /// let rate = backbone_throughput(model, 256, 5);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn backbone_throughput(model: Model, batch: INT, reps: INT) -> Result<FLOAT, Box<EvalAltResult>> {
        Ok(crate::features::backbone_throughput(&model.0, batch.max(1) as usize, reps.max(1) as usize)?)
    }

    /// The loader alone over the data set, decoding and transforming to the
    /// model's input on all cores, nothing sent to the backbone:
    /// `#{ images, batches, seconds }`. `opts` takes `batch_size`, like `extract`.
    #[rhai_fn(return_raw)]
    pub fn decode_pass(model: Model, dataset: Dataset, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        let value = crate::script::options(&opts);
        let o = crate::features::ExtractOptions::from_config(&crate::config::Section::at(&value, "dataloader")?)?;
        let r = crate::features::decode_pass(&model.0, dataset.dataset.clone(), o.batch_size.for_network(&model.0))?;
        let mut out = Map::new();
        out.insert("images".into(), (r.images as INT).into());
        out.insert("batches".into(), (r.batches as INT).into());
        out.insert("seconds".into(), (r.seconds as FLOAT).into());
        Ok(out)
    }

    /// The batch size that `dataloader.batch_size: auto` picks for the model on
    /// its device, up to `max` (32 on the CPU).
    pub fn fit_batch_size(model: Model, max: INT) -> INT {
        model.0.fit_batch_size(max.max(1) as usize) as INT
    }

    /// Seconds of one Adam step on synthetic maps, on the host's device (the
    /// fastest of `reps`), the last loss, and one C×C matmul's seconds there:
    /// `#{ seconds, loss, matmul_seconds, matmuls }` (`matmuls` = seconds /
    /// matmul_seconds). `opts`: `kind` (`orthogonal`, `invertible`), `gradient`
    /// (`fast`, `autograd`), `channels` (C), `images` (distinct prototype maps,
    /// 512), `map` (side, 7), `pairs` (4096), `norm` (‖A − Aᵀ‖₂ to start from,
    /// 1.8: about the demo's trained U; 0 is the identity), `reps` (3).
    ///
    /// ```rhai
    /// let step = adam_step_seconds(#{ channels: 2048, gradient: "fast", norm: 0.2 });
    /// print(`${step.matmuls} matmuls`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn adam_step_seconds(ctx: NativeCallContext, opts: Map) -> Result<Map, Box<EvalAltResult>> {
        let value = crate::script::options(&opts);
        let opts = crate::config::Section::at(&value, "adam_step_seconds")?;
        let kind: crate::disentangle::MatrixKind =
            opts.string(&["kind"])?.unwrap_or_else(|| "orthogonal".into()).parse()?;
        let how: crate::disentangle::Gradient = opts.string(&["gradient"])?.unwrap_or_else(|| "fast".into()).parse()?;
        let shape = crate::disentangle::StepShape {
            channels: opts.int(&["channels"], 512)?,
            images: opts.int(&["images"], 512)?,
            map: opts.int(&["map"], 7)?,
            pairs: opts.int(&["pairs"], 4096)?,
            norm: opts.float(&["norm"], 1.8)?,
        };
        let reps = opts.int(&["reps"], 3)?.max(1) as usize;
        let device = crate::script::host_device(&ctx);
        let (seconds, loss) = crate::disentangle::adam_step_seconds(kind, how, shape, device, reps)?;
        let matmul = crate::disentangle::matmul_seconds(shape.channels, device, reps.max(5))?;
        let mut out = Map::new();
        out.insert("seconds".into(), (seconds as FLOAT).into());
        out.insert("loss".into(), (loss as FLOAT).into());
        out.insert("matmul_seconds".into(), (matmul as FLOAT).into());
        out.insert("matmuls".into(), ((seconds / matmul) as FLOAT).into());
        Ok(out)
    }

    /// The host's GPU as the CUDA runtime describes it: `#{ index, name,
    /// capability, memory_total_mib, memory_used_mib }`, or `()` on the CPU.
    ///
    /// ```rhai
    /// let g = gpu();
    /// if g != () { print(`${g.name}, capability ${g.capability}`); }
    /// ```
    pub fn gpu(ctx: NativeCallContext) -> Dynamic {
        let tch::Device::Cuda(i) = crate::script::host_device(&ctx) else {
            return Dynamic::UNIT;
        };
        let Some(g) = crate::device::gpu(i) else {
            return Dynamic::UNIT;
        };
        let mut out = Map::new();
        out.insert("index".into(), (g.index as INT).into());
        out.insert("name".into(), g.name.into());
        out.insert("capability".into(), format!("{}.{}", g.capability.0, g.capability.1).into());
        out.insert("memory_total_mib".into(), (g.memory.total as FLOAT / 1048576.0).into());
        out.insert("memory_used_mib".into(), g.memory.used_mib().into());
        out.into()
    }

    /// MiB in use on the host's GPU, every process and libtorch's cache included
    /// (the cache keeps its high-water mark, so this is the peak so far); 0 on the CPU.
    pub fn gpu_memory_mib(ctx: NativeCallContext) -> FLOAT {
        match crate::script::host_device(&ctx) {
            tch::Device::Cuda(i) => crate::device::memory(i).map_or(0.0, |m| m.used_mib()),
            _ => 0.0,
        }
    }
}
