//! Script bindings for figures: prototype grids, purity plots and tables.
use super::disentangler::DisentanglerHandle;
use super::options;
use super::tensor::ScriptTensor;
use crate::config::Section;
use crate::render::figures::Visualization;
use crate::study::Study;
use rhai::plugin::*;
use rhai::{Array, Map, FLOAT, INT};
use std::path::Path;

/// A tensor's values as f64, flattened.
fn values(t: &ScriptTensor) -> Result<Vec<f64>, Box<EvalAltResult>> {
    let v = t.0.f_to_kind(tch::Kind::Double).and_then(|x| x.f_reshape([-1])).map_err(crate::Error::from)?;
    Ok(Vec::<f64>::try_from(v).map_err(crate::Error::from)?)
}

/// Whether a script's option map asks for gray images (`img_fn: "gray"`).
fn gray_of(opts: &Map) -> Result<bool, Box<EvalAltResult>> {
    let value = options(opts);
    Ok(Visualization::from_config(&Section::at(&value, "visualization")?)?.gray)
}

/// Channel `channel`'s grid as `opts` asks: its top-m prototypes, or with
/// `negative: true` its negative prototypes.
fn grid_of(
    bank: &crate::study::Study,
    d: &super::disentangler::DisentanglerHandle,
    channel: rhai::INT,
    m: rhai::INT,
    opts: &Map,
) -> Result<crate::render::figures::PrototypeGrid, Box<EvalAltResult>> {
    let gray = gray_of(opts)?;
    let negative = match opts.get("negative") {
        None => false,
        Some(v) => v.as_bool().map_err(|t| format!("negative must be true or false, not {t}"))?,
    };
    let d = d.0.borrow();
    Ok(if negative {
        bank.negative_prototype_grid(&d, channel, m, gray)?
    } else {
        bank.prototype_grid(&d, channel, m, gray)?
    })
}

/// The script functions for figures (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// A libtorch tensor.
    pub type Tensor = ScriptTensor;
    /// The learned change of basis U.
    pub type Disentangler = DisentanglerHandle;
    /// A feature bank with its network, data set and prototype-map memo.
    pub type Bank = Study;
    /// Purity over training.
    pub type History = crate::disentangle::History;
    /// A channel's prototypes, boxed at its peak, under a title.
    pub type PrototypeGrid = crate::render::PrototypeGrid;
    /// Several channels' prototype grids, shown as one picture.
    pub type PrototypeGrids = crate::render::PrototypeGrids;
    /// Purity over training and its before/after histogram, shown as one picture.
    pub type PurityPlot = crate::render::PurityPlot;
    /// Purity statistics before and after training.
    pub type PurityTable = crate::render::PurityTable;

    /// Saves channel `channel`'s top-m prototypes under U, each boxed at the
    /// channel's peak, as one row (the reference's Base_/Trained_prototypes files).
    /// `opts`: `img_fn: "gray"`, and `negative: true` for the channel's negative
    /// prototypes (the m images of lowest activation) instead.
    ///
    /// ```rhai
    /// save_prototype_grid(bank, d, 17, 5, "outputs/Trained_prototypes/channel_17_prototypes.jpg", #{});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn save_prototype_grid(
        bank: Bank,
        d: Disentangler,
        channel: INT,
        m: INT,
        path: &str,
        opts: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        let grid = grid_of(&bank, &d, channel, m, &opts)?;
        Ok(grid.canvas()?.save(Path::new(path))?)
    }

    /// Channel `channel`'s top-m prototypes under U, each boxed at the channel's
    /// peak, as a value: `.save(path)` writes it, a notebook shows it inline.
    ///
    /// ```rhai
    /// let grid = prototype_grid(bank, d, 17, 5, #{});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prototype_grid(
        bank: Bank,
        d: Disentangler,
        channel: INT,
        m: INT,
        opts: Map,
    ) -> Result<PrototypeGrid, Box<EvalAltResult>> {
        grid_of(&bank, &d, channel, m, &opts)
    }

    /// Several channels' prototype grids as one value (one picture, a row per channel).
    ///
    /// ```rhai
    /// let grids = prototype_grids(bank, d, `[3, 17]`, 5, #{});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prototype_grids(
        bank: Bank,
        d: Disentangler,
        channels: Array,
        m: INT,
        opts: Map,
    ) -> Result<PrototypeGrids, Box<EvalAltResult>> {
        let mut grids = Vec::new();
        for c in channels {
            let c = c.as_int().map_err(|t| format!("prototype_grids: channels must be ints, got a {t}"))?;
            grids.push(grid_of(&bank, &d, c, m, &opts)?);
        }
        Ok(crate::render::PrototypeGrids(grids))
    }

    /// Writes the grid to a .jpg/.png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_grid(g: &mut PrototypeGrid, path: &str) -> Result<(), Box<EvalAltResult>> {
        Ok(g.canvas()?.save(Path::new(path))?)
    }

    /// Writes the grids, one under the other, to a .jpg/.png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_grids(g: &mut PrototypeGrids, path: &str) -> Result<(), Box<EvalAltResult>> {
        Ok(g.canvas()?.save(Path::new(path))?)
    }

    /// Plots a training history (as `train_disentangler` returns it) to a PNG:
    /// purity per epoch, and at each re-selection of prototypes.
    ///
    /// ```rhai
    /// plot_purity(history, "orthogonal", `${cfg.output_path}/orthogonal_train.png`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn plot_purity(history: History, title: &str, path: &str) -> Result<(), Box<EvalAltResult>> {
        Ok(crate::render::purity_curve(&history, &format!("Average purity over training ({title})"), Path::new(path))?)
    }

    /// Plots a history written as a map (`#{ steps: [[m, purity], …], epochs: … }`,
    /// as `load_json` reads a saved one back) to a PNG, or an SVG when `path` ends in `.svg`.
    #[rhai_fn(name = "plot_purity", return_raw)]
    pub fn plot_purity_map(history: Map, title: &str, path: &str) -> Result<(), Box<EvalAltResult>> {
        plot_purity(super::super::disentangler::history_of(&history, "plot_purity")?, title, path)
    }

    /// Histograms of per-prototype purity before and after training, to a PNG, or
    /// an SVG when `path` ends in `.svg`.
    #[rhai_fn(return_raw)]
    pub fn plot_purity_histogram(
        before: Tensor,
        after: Tensor,
        title: &str,
        path: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        Ok(crate::render::purity_histogram(&values(&before)?, &values(&after)?, title, Path::new(path))?)
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
        history: History,
        before: Tensor,
        after: Tensor,
        title: &str,
    ) -> Result<PurityPlot, Box<EvalAltResult>> {
        Ok(crate::render::PurityPlot {
            title: title.to_string(),
            history,
            before: values(&before)?,
            after: values(&after)?,
        })
    }

    /// [`purity_plot`] of a history written as a map (`#{ steps, epochs }`).
    #[rhai_fn(name = "purity_plot", return_raw)]
    pub fn purity_plot_map(
        history: Map,
        before: Tensor,
        after: Tensor,
        title: &str,
    ) -> Result<PurityPlot, Box<EvalAltResult>> {
        purity_plot(super::super::disentangler::history_of(&history, "purity_plot")?, before, after, title)
    }

    /// Writes the curve above the histogram: SVG when `path` ends in `.svg`
    /// (vector, for papers), else PNG or JPEG.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_plot(p: &mut PurityPlot, path: &str) -> Result<(), Box<EvalAltResult>> {
        Ok(p.save(Path::new(path))?)
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

    /// `channel 3: …; channel 17: …`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_grids(g: &mut PrototypeGrids) -> String {
        g.summary()
    }

    /// `purity (orthogonal): before 0.1234; at each step m=3: …; after 0.2345`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_plot(p: &mut PurityPlot) -> String {
        p.summary()
    }
}
