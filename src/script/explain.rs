//! Script bindings for explanations and figures: `explain`, `save_prototype_grid`,
//! `prototype_grid`, `prototype_purities`, `plot_purity`, `plot_purity_histogram`,
//! `purity_plot`, `purity_table`.
use super::network::{BankHandle, DatasetHandle};
use super::tensor::ScriptTensor;
use super::train::DisentanglerHandle;
use crate::explain::Explanation;
use rhai::plugin::*;
use rhai::{Array, Map, FLOAT, INT};
use std::path::Path;
use std::rc::Rc;

/// A script's handle on an explanation, with what its figure needs.
#[derive(Clone)]
pub struct ExplanationHandle {
    pub explanation: Rc<Explanation>,
    pub input: Rc<image::RgbImage>,
    pub bank: BankHandle,
    pub gray: bool,
}

impl ExplanationHandle {
    /// The explanation figure (k rows of 1 + m boxed tiles), with the class names
    /// and training images of the bank it was made with.
    pub fn figure(&self) -> crate::Result<crate::render::Canvas> {
        let names = class_names(&self.bank);
        self.explanation
            .figure(&self.input, &names, self.bank.dataset.dataset.as_ref(), &self.bank.model.0.preprocess(), self.gray)
            .map_err(|e| crate::Error::invalid("explanation", e.to_string()))
    }

    /// The explained class's name (ImageNet's for 1000 classes, else the data set's).
    pub fn class_name(&self) -> String {
        class_names(&self.bank).get(self.explanation.class as usize).cloned().unwrap_or_default()
    }
}

/// A training history as `train_disentangler` returns it (`#{ steps, epochs }`,
/// each an array of `[m, purity]`), back as a [`crate::disentangle::History`].
pub fn history_of(history: &Map, what: &str) -> Result<crate::disentangle::History, Box<EvalAltResult>> {
    let series = |key: &str| -> Result<Vec<(usize, f64)>, Box<EvalAltResult>> {
        let arr = history
            .get(key)
            .and_then(|v| v.clone().try_cast::<Array>())
            .ok_or(format!("{what}: history.{key} missing"))?;
        arr.iter()
            .map(|p| {
                let p = p.clone().try_cast::<Array>().ok_or(format!("{what}: entries must be [m, purity]"))?;
                match (p.first().and_then(|x| x.as_int().ok()), p.get(1).and_then(|x| x.as_float().ok())) {
                    (Some(m), Some(v)) if m >= 0 => Ok((m as usize, v)),
                    _ => Err(format!("{what}: entries must be [m, purity]").into()),
                }
            })
            .collect()
    };
    Ok(crate::disentangle::History { steps: series("steps")?, epochs: series("epochs")? })
}

/// A tensor's values as f64, flattened.
fn values(t: &ScriptTensor) -> Result<Vec<f64>, Box<EvalAltResult>> {
    let v = t.0.f_to_kind(tch::Kind::Double).and_then(|x| x.f_reshape([-1])).map_err(err)?;
    Vec::<f64>::try_from(v).map_err(err)
}

fn gray_of(opts: &Map) -> bool {
    opts.get("img_fn").map(|v| v.to_string() == "gray").unwrap_or(false)
}

/// Names of the model's classes: ImageNet's for 1000 classes, the data set's when
/// it has as many classes as the head, else "class i".
fn class_names(bank: &BankHandle) -> Vec<String> {
    let k = bank.model.0.num_classes();
    let own = bank.dataset.dataset.class_names();
    if k != 1000 && own.len() as i64 == k {
        own.to_vec()
    } else {
        crate::data::classes::names_for(k)
    }
}

fn ints(v: &[i64]) -> Dynamic {
    Dynamic::from_array(v.iter().map(|&x| Dynamic::from_int(x)).collect())
}

fn err<E: std::fmt::Display>(e: E) -> Box<EvalAltResult> {
    e.to_string().into()
}

#[export_module]
pub mod api {
    use super::*;

    pub type Tensor = ScriptTensor;
    /// One image explained: class, channels, scores, peak cells, prototypes.
    pub type Explanation = ExplanationHandle;
    /// A channel's prototypes, boxed at its peak, under a title.
    pub type PrototypeGrid = crate::render::PrototypeGrid;
    /// Several channels' prototype grids, shown as one picture.
    pub type PrototypeGrids = crate::render::PrototypeGrids;
    /// Purity over training and its before/after histogram, shown as one picture.
    pub type PurityPlot = crate::render::PurityPlot;
    /// Purity statistics before and after training.
    pub type PurityTable = crate::render::PurityTable;
    /// An RGB picture.
    pub type Picture = crate::render::Canvas;

    /// Explains `image` [3,H,W] (as `dataset.image(i)` gives it) with the bank's
    /// model under U: the top `num_prototypical_channels` (or `k`, default 4)
    /// channels of the predicted class (or `class`), each with its
    /// `num_prototypes` (or `m`, default 4) prototypes from the bank's training set.
    /// `img_fn: "gray"` draws images in gray. The reference config's
    /// `visualization` section fits as `opts`.
    ///
    /// ```rhai
    /// let e = explain(d, bank, val.image(3), cfg.visualization);
    /// print(`${e.name}: channels ${e.channels}`);
    /// e.save(`${cfg.output_path}/Explanations/3.jpg`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn explain(
        d: DisentanglerHandle,
        bank: BankHandle,
        image: Tensor,
        opts: Map,
    ) -> Result<Explanation, Box<EvalAltResult>> {
        let k = crate::script::map_int(&opts, &["num_prototypical_channels", "k"], 4)?;
        let m = crate::script::map_int(&opts, &["num_prototypes", "m"], 4)?;
        let class = match opts.get("class") {
            Some(c) if !c.is_unit() => Some(c.as_int().map_err(|t| format!("class: expected an int, got a {t}"))?),
            _ => None,
        };
        let loader = bank.loader();
        let e = {
            let mut memo = bank.memo.borrow_mut();
            crate::explain::explain(&bank.model.0, &d.0.borrow(), &bank.bank, &loader, &mut memo, &image.0, k, m, class)
                .map_err(err)?
        };
        let input = crate::explain::explanation::to_display(&image.0, &bank.model.0.preprocess()).map_err(err)?;
        Ok(ExplanationHandle { explanation: Rc::new(e), input: Rc::new(input), bank, gray: gray_of(&opts) })
    }

    /// The explained class.
    #[rhai_fn(pure, get = "class")]
    pub fn class(e: &mut Explanation) -> INT {
        e.explanation.class
    }

    /// Its name (ImageNet's for 1000 classes, else the data set's).
    #[rhai_fn(pure, get = "name")]
    pub fn name(e: &mut Explanation) -> String {
        e.class_name()
    }

    /// Its softmax probability.
    #[rhai_fn(pure, get = "prob")]
    pub fn prob(e: &mut Explanation) -> FLOAT {
        e.explanation.prob
    }

    /// The explaining channels, largest contribution first.
    #[rhai_fn(pure, get = "channels")]
    pub fn channels(e: &mut Explanation) -> Array {
        e.explanation.channels.iter().map(|&c| Dynamic::from_int(c)).collect()
    }

    /// Their contributions A′[class,c]·ReLU(avgpool(Ẑ))_c.
    #[rhai_fn(pure, get = "scores")]
    pub fn scores(e: &mut Explanation) -> Array {
        e.explanation.scores.iter().map(|&s| Dynamic::from_float(s)).collect()
    }

    /// Per channel, the [row, col] feature-map cell where it peaks in the input.
    #[rhai_fn(pure, get = "cells")]
    pub fn cells(e: &mut Explanation) -> Array {
        e.explanation.cells.iter().map(|&(r, c)| ints(&[r, c])).collect()
    }

    /// Per channel, its prototypes: indices into the bank's training set.
    #[rhai_fn(pure, get = "prototypes")]
    pub fn prototypes(e: &mut Explanation) -> Array {
        e.explanation.prototypes.iter().map(|row| ints(&row.iter().map(|&i| i as i64).collect::<Vec<_>>())).collect()
    }

    /// Largest |logit change| between the original head and A·U⁻¹ on this image.
    #[rhai_fn(pure, get = "max_logit_change")]
    pub fn logit_change(e: &mut Explanation) -> FLOAT {
        e.explanation.max_logit_change
    }

    /// Draws the explanation figure (k rows of 1 + m boxed tiles) to a .jpg/.png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save(e: &mut Explanation, path: &str) -> Result<(), Box<EvalAltResult>> {
        e.figure().and_then(|fig| fig.save(Path::new(path))).map_err(err)
    }

    /// Saves channel `channel`'s top-m prototypes under U, each boxed at the
    /// channel's peak, as one row (the reference's Base_/Trained_prototypes files).
    ///
    /// ```rhai
    /// save_prototype_grid(bank, d, 17, 5, "outputs/Trained_prototypes/channel_17_prototypes.jpg", #{});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn save_prototype_grid(
        bank: BankHandle,
        d: DisentanglerHandle,
        channel: INT,
        m: INT,
        path: &str,
        opts: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        let grid = prototype_grid(bank, d, channel, m, opts)?;
        grid.canvas().and_then(|c| c.save(Path::new(path))).map_err(err)
    }

    /// Channel `channel`'s top-m prototypes under U, each boxed at the channel's
    /// peak, as a value: `.save(path)` writes it, a notebook shows it inline.
    ///
    /// ```rhai
    /// let grid = prototype_grid(bank, d, 17, 5, #{});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prototype_grid(
        bank: BankHandle,
        d: DisentanglerHandle,
        channel: INT,
        m: INT,
        opts: Map,
    ) -> Result<PrototypeGrid, Box<EvalAltResult>> {
        let loader = bank.loader();
        let tiles = {
            let mut memo = bank.memo.borrow_mut();
            crate::explain::explanation::prototype_tiles(
                &bank.model.0,
                &d.0.borrow(),
                &bank.bank,
                &loader,
                &mut memo,
                bank.dataset.dataset.as_ref(),
                channel,
                m,
                gray_of(&opts),
            )
            .map_err(err)?
        };
        let untrained =
            d.0.borrow().a_raw().f_abs().and_then(|a| a.f_max()).and_then(|a| a.f_double_value(&[])).map_err(err)?
                == 0.0;
        let stage = if untrained { "before training (U = I)" } else { "after training" };
        let title = format!("channel {channel}: top {m} prototypes, {stage}, {} U", d.0.borrow().kind());
        Ok(crate::render::PrototypeGrid { title, tiles })
    }

    /// Several channels' prototype grids as one value (one picture, a row per channel).
    ///
    /// ```rhai
    /// let grids = prototype_grids(bank, d, [3, 17], 5, #{});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prototype_grids(
        bank: BankHandle,
        d: DisentanglerHandle,
        channels: Array,
        m: INT,
        opts: Map,
    ) -> Result<PrototypeGrids, Box<EvalAltResult>> {
        let mut grids = Vec::new();
        for c in channels {
            let c = c.as_int().map_err(|t| format!("prototype_grids: channels must be ints, got a {t}"))?;
            grids.push(prototype_grid(bank.clone(), d.clone(), c, m, opts.clone())?);
        }
        Ok(crate::render::PrototypeGrids(grids))
    }

    /// Writes the grid to a .jpg/.png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_grid(g: &mut PrototypeGrid, path: &str) -> Result<(), Box<EvalAltResult>> {
        g.canvas().and_then(|c| c.save(Path::new(path))).map_err(err)
    }

    /// Writes the grids, one under the other, to a .jpg/.png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_grids(g: &mut PrototypeGrids, path: &str) -> Result<(), Box<EvalAltResult>> {
        g.canvas().and_then(|c| c.save(Path::new(path))).map_err(err)
    }

    /// Image i of a data set as the network sees it (resized and cropped, not
    /// normalised), as a picture: `.save(path)` writes it, a notebook shows it.
    ///
    /// ```rhai
    /// let p = picture(val, 0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn picture(dataset: DatasetHandle, i: INT) -> Result<Picture, Box<EvalAltResult>> {
        let i = usize::try_from(i).map_err(|_| format!("picture: index {i} is negative"))?;
        let img = dataset.dataset.image(i).map_err(err)?;
        crate::data::transform::cropped_rgb(&img, &dataset.preprocess).map(Picture::from_image).map_err(err)
    }

    /// Writes the picture to a .jpg/.png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_picture(p: &mut Picture, path: &str) -> Result<(), Box<EvalAltResult>> {
        p.save(Path::new(path)).map_err(err)
    }

    /// `Picture(64×64)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_picture(p: &mut Picture) -> String {
        let (w, h) = p.size();
        format!("Picture({w}×{h})")
    }

    /// Argmax purity of every channel's top-m prototypes under U: [C·m], channel-major.
    #[rhai_fn(return_raw)]
    pub fn prototype_purities(bank: BankHandle, d: DisentanglerHandle, m: INT) -> Result<Tensor, Box<EvalAltResult>> {
        let loader = bank.loader();
        let mut memo = bank.memo.borrow_mut();
        crate::disentangle::prototype_purities(&d.0.borrow(), &bank.bank, m, &bank.model.0, &loader, &mut memo)
            .map(ScriptTensor)
            .map_err(err)
    }

    /// Plots a training history (as `train_disentangler` returns it) to a PNG:
    /// purity per epoch, and at each re-selection of prototypes.
    ///
    /// ```rhai
    /// plot_purity(history, "orthogonal", `${cfg.output_path}/orthogonal_train.png`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn plot_purity(history: Map, title: &str, path: &str) -> Result<(), Box<EvalAltResult>> {
        let h = history_of(&history, "plot_purity")?;
        crate::render::purity_curve(&h, &format!("Average purity over training ({title})"), Path::new(path))
            .map_err(err)
    }

    /// Histograms of per-prototype purity before and after training, to a PNG.
    #[rhai_fn(return_raw)]
    pub fn plot_purity_histogram(
        before: Tensor,
        after: Tensor,
        title: &str,
        path: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        crate::render::purity_histogram(&values(&before)?, &values(&after)?, title, Path::new(path)).map_err(err)
    }

    /// Training's purity as one value: the curve over training (`history` as
    /// `train_disentangler` returns it) above the before/after histogram of
    /// per-prototype purities; `.save(path)` writes it, a notebook shows it inline.
    ///
    /// ```rhai
    /// let plot = purity_plot(history, before, after, "orthogonal");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn purity_plot(
        history: Map,
        before: Tensor,
        after: Tensor,
        title: &str,
    ) -> Result<PurityPlot, Box<EvalAltResult>> {
        Ok(crate::render::PurityPlot {
            title: title.to_string(),
            history: history_of(&history, "purity_plot")?,
            before: values(&before)?,
            after: values(&after)?,
        })
    }

    /// Writes the curve above the histogram to a .png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_plot(p: &mut PurityPlot, path: &str) -> Result<(), Box<EvalAltResult>> {
        p.canvas().and_then(|c| c.save(Path::new(path))).map_err(err)
    }

    /// Per-prototype purities before and after training (as `prototype_purities`
    /// gives them) as a table of mean, median, percentiles, min and max; a notebook
    /// shows it as HTML, `print` as text.
    ///
    /// ```rhai
    /// let table = purity_table(before, after, "top-5 prototypes");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn purity_table(before: Tensor, after: Tensor, caption: &str) -> Result<PurityTable, Box<EvalAltResult>> {
        Ok(crate::render::PurityTable::new(caption, values(&before)?, values(&after)?))
    }

    /// The mean purity before training.
    #[rhai_fn(pure, get = "mean_before")]
    pub fn mean_before(t: &mut PurityTable) -> FLOAT {
        t.rows()[0].before
    }

    /// The mean purity after training.
    #[rhai_fn(pure, get = "mean_after")]
    pub fn mean_after(t: &mut PurityTable) -> FLOAT {
        t.rows()[0].after
    }

    /// The table as aligned text.
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_table(t: &mut PurityTable) -> String {
        t.text()
    }

    /// `channel 17: top 5 prototypes, after training, orthogonal U: #12 Dress, …`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_grid(g: &mut PrototypeGrid) -> String {
        g.summary()
    }

    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_grids(g: &mut PrototypeGrids) -> String {
        g.summary()
    }

    /// `purity (orthogonal): before 0.1234; at each step m=3: …; after 0.2345`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_plot(p: &mut PurityPlot) -> String {
        p.summary()
    }

    /// `Explanation(espresso, channels [12, 7, 3, 40])`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe(e: &mut Explanation) -> String {
        format!("Explanation(class {}, channels {:?})", e.explanation.class, e.explanation.channels)
    }
}
