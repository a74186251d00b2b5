//! Script bindings for explanations and figures: `explain`, `save_prototype_grid`,
//! `prototype_purities`, `plot_purity`, `plot_purity_histogram`.
use super::network::BankHandle;
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
        class_names(&e.bank).get(e.explanation.class as usize).cloned().unwrap_or_default()
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
        let names = class_names(&e.bank);
        let fig = e
            .explanation
            .figure(&e.input, &names, e.bank.dataset.dataset.as_ref(), &e.bank.model.0.preprocess(), e.gray)
            .map_err(err)?;
        fig.save(Path::new(path)).map_err(err)
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
        crate::render::prototype_grid(&title, &tiles).and_then(|c| c.save(Path::new(path))).map_err(err)
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
        let series = |key: &str| -> Result<Vec<(usize, f64)>, Box<EvalAltResult>> {
            let arr = history
                .get(key)
                .and_then(|v| v.clone().try_cast::<Array>())
                .ok_or(format!("plot_purity: history.{key} missing"))?;
            arr.iter()
                .map(|p| {
                    let p = p.clone().try_cast::<Array>().ok_or("plot_purity: entries must be [m, purity]")?;
                    match (p.first().and_then(|x| x.as_int().ok()), p.get(1).and_then(|x| x.as_float().ok())) {
                        (Some(m), Some(v)) => Ok((m as usize, v)),
                        _ => Err("plot_purity: entries must be [m, purity]".into()),
                    }
                })
                .collect()
        };
        let h = crate::disentangle::History { steps: series("steps")?, epochs: series("epochs")? };
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
        let v = |t: &Tensor| Vec::<f64>::try_from(t.0.f_to_kind(tch::Kind::Double).and_then(|x| x.f_reshape([-1]))?);
        let (b, a) = (v(&before).map_err(err)?, v(&after).map_err(err)?);
        crate::render::purity_histogram(&b, &a, title, Path::new(path)).map_err(err)
    }

    /// `Explanation(espresso, channels [12, 7, 3, 40])`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe(e: &mut Explanation) -> String {
        format!("Explanation(class {}, channels {:?})", e.explanation.class, e.explanation.channels)
    }
}
