//! Script bindings for explanations: `explain` and the `Explanation` handle.
use super::disentangler::DisentanglerHandle;
use super::options;
use super::tensor::ScriptTensor;
use crate::config::Section;
use crate::explain::{ExplainOptions, Explanation};
use crate::render::figures::Visualization;
use crate::study::Study;
use rhai::plugin::*;
use rhai::{Array, Map, FLOAT, INT};
use std::path::Path;
use std::rc::Rc;

/// A script's handle on an explanation, with what its figure needs: the image
/// explained and the study whose prototypes it shows.
#[derive(Clone)]
pub struct ExplanationHandle {
    /// The numbers.
    pub explanation: Rc<Explanation>,
    /// The image explained, `[3,H,W]` normalised.
    pub image: ScriptTensor,
    /// The study it was explained with.
    pub study: Study,
    /// Draw images in gray (`img_fn: gray`).
    pub gray: bool,
}

impl ExplanationHandle {
    /// The explanation figure (k rows of 1 + m boxed tiles).
    pub fn figure(&self) -> crate::Result<crate::render::Canvas> {
        self.study.explanation_figure(&self.explanation, &self.image.0, self.gray)
    }
}

fn ints(v: &[i64]) -> Dynamic {
    Dynamic::from_array(v.iter().map(|&x| Dynamic::from_int(x)).collect())
}

/// The script functions for explanations (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// A libtorch tensor.
    pub type Tensor = ScriptTensor;
    /// The learned change of basis U.
    pub type Disentangler = DisentanglerHandle;
    /// A feature bank with its network, data set and prototype-map memo.
    pub type Bank = Study;
    /// One image explained: class, channels, scores, peak cells, prototypes.
    pub type Explanation = ExplanationHandle;

    /// Explains `image` `[3,H,W]` (as `dataset.image(i)` gives it) with the bank's
    /// model under U: the top `num_prototypical_channels` (or `k`, default 4)
    /// channels of the predicted class (or `class`), each with its
    /// `num_prototypes` (or `m`, default 5) prototypes from the bank's training set.
    /// `img_fn: "gray"` draws images in gray. The reference config's
    /// `visualization` section fits as `opts`.
    ///
    /// ```rhai
    /// let e = explain(d, bank, val.image(3), cfg.visualization);
    /// print(`${e.name}: channels ${e.channels}`);
    /// e.save(`${cfg.output_path}/Explanations/3.jpg`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn explain(d: Disentangler, bank: Bank, image: Tensor, opts: Map) -> Result<Explanation, Box<EvalAltResult>> {
        let value = options(&opts);
        let section = Section::at(&value, "visualization")?;
        let e = bank.explain(&d.0.borrow(), &image.0, &ExplainOptions::from_config(&section)?)?;
        let gray = Visualization::from_config(&section)?.gray;
        Ok(ExplanationHandle { explanation: Rc::new(e), image, study: bank, gray })
    }

    /// A picture (a data set image, a figure).
    pub type Picture = crate::render::Canvas;

    /// Why the bank's model says class A rather than class B for `image`
    /// `[3,H,W]`, under U: the contrast figure. A header gives the logit margin
    /// and how it splits (the channels shown, the other channels, the bias); then
    /// A's top channels and B's, each row the image boxed where the channel peaks
    /// and the channel's prototypes. `opts`: `classes` (`[a, b]`; default the two
    /// top predictions), `num_prototypical_channels` or `k` (4 a side),
    /// `num_prototypes` or `m` (5), `img_fn: "gray"`.
    ///
    /// ```rhai
    /// contrast(d, bank, val.image(4), #{ k: 2, m: 4 })
    /// ```
    #[rhai_fn(return_raw)]
    pub fn contrast(d: Disentangler, bank: Bank, image: Tensor, opts: Map) -> Result<Picture, Box<EvalAltResult>> {
        let value = options(&opts);
        let section = Section::at(&value, "contrast")?;
        let o = ExplainOptions::from_config(&section)?;
        let classes = match section.get(&["classes"]) {
            None | Some(serde_yaml::Value::Null) => None,
            Some(serde_yaml::Value::Sequence(v)) if v.len() == 2 && v.iter().all(|c| c.as_i64().is_some()) => {
                Some((v[0].as_i64().unwrap_or_default(), v[1].as_i64().unwrap_or_default()))
            }
            Some(_) => return Err(section.invalid("classes", "must be two class indices, e.g. [3, 5]").into()),
        };
        let d = d.0.borrow();
        let c = bank.contrast(&d, &image.0, classes, o.channels, o.prototypes)?;
        let gray = Visualization::from_config(&section)?.gray;
        Ok(bank.contrast_figure(&d, &c, &image.0, gray)?)
    }

    /// The explained class.
    #[rhai_fn(pure, get = "class")]
    pub fn class(e: &mut Explanation) -> INT {
        e.explanation.class
    }

    /// Its name (ImageNet's for 1000 classes, else the data set's).
    #[rhai_fn(pure, get = "name")]
    pub fn name(e: &mut Explanation) -> String {
        e.explanation.name.clone()
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

    /// Their contributions A′`[class,c]`·ReLU(avgpool(Ẑ))_c.
    #[rhai_fn(pure, get = "scores")]
    pub fn scores(e: &mut Explanation) -> Array {
        e.explanation.scores.iter().map(|&s| Dynamic::from_float(s)).collect()
    }

    /// Per channel, the `[row, col]` feature-map cell where it peaks in the input.
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
        Ok(e.figure()?.save(Path::new(path))?)
    }

    /// `Explanation(class 3, channels [12, 7, 3, 40])`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe(e: &mut Explanation) -> String {
        format!("Explanation(class {}, channels {:?})", e.explanation.class, e.explanation.channels)
    }
}
