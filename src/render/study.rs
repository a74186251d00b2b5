//! The figures of a [`Study`]: a channel's prototypes as a boxed grid (the
//! reference's `Base_prototypes`/`Trained_prototypes` files) and an explanation
//! as k rows of the input and its prototypes, each boxed where the channel peaks.
use super::figures::{explanation_figure, gray, ExplanationRow, PrototypeGrid, Tile};
use super::Canvas;
use crate::data::transform;
use crate::disentangle::Disentangler;
use crate::explain::explanation::{channel_maps, peak_cells};
use crate::explain::Explanation;
use crate::study::Study;
use tch::Tensor;

impl Study {
    /// Tiles of channel `channel`'s top-`m` prototypes under `d`, each boxed at
    /// the channel's peak and captioned `#index label`; `gray` draws them in gray
    /// (the reference's `img_fn: gray`).
    pub fn prototype_tiles(&self, d: &Disentangler, channel: i64, m: i64, gray: bool) -> crate::Result<Vec<Tile>> {
        let bank = self.bank();
        if channel < 0 || channel >= bank.channels() {
            return Err(crate::Error::OutOfRange { what: "channel".into(), index: channel, bound: bank.channels() });
        }
        let u = d.matrix()?;
        let row: Vec<usize> = Vec::<i64>::try_from(bank.top_prototypes(Some(&u), m)?.f_get(channel)?)?
            .into_iter()
            .map(|i| i as usize)
            .collect();
        self.tiles_of(&u, channel, &row, gray)
    }

    /// Tiles of training images `row`, each boxed where Ẑ_`channel` = (U·Z)_`channel`
    /// peaks in it and captioned `#index label`.
    pub fn tiles_of(&self, u: &Tensor, channel: i64, row: &[usize], gray: bool) -> crate::Result<Vec<Tile>> {
        let maps = self.maps(row)?;
        let cells = peak_cells(&channel_maps(&maps, &u.f_to_device(maps.device())?, channel)?)?;
        let grid = (maps.size()[2], maps.size()[3]);
        let train = self.dataset();
        let names = train.class_names();
        let mut tiles = Vec::new();
        for (j, &i) in row.iter().enumerate() {
            let img = transform::cropped_rgb(&train.image(i)?, &self.network().preprocess())?;
            let img = if gray { self::gray(&img) } else { img };
            let label = names.get(train.label(i) as usize).cloned().unwrap_or_default();
            tiles.push(Tile { image: img, cell: cells[j], grid, caption: format!("#{i} {label}") });
        }
        Ok(tiles)
    }

    /// Channel `channel`'s top-`m` prototypes under `d` as a grid under a title
    /// that says whether U is still the identity ("before training") or not.
    pub fn prototype_grid(&self, d: &Disentangler, channel: i64, m: i64, gray: bool) -> crate::Result<PrototypeGrid> {
        let tiles = self.prototype_tiles(d, channel, m, gray)?;
        let untrained = d.a_raw().f_abs()?.f_max()?.f_double_value(&[])? == 0.0;
        let stage = if untrained { "before training (U = I)" } else { "after training" };
        let title = format!("channel {channel}: top {m} prototypes, {stage}, {} U", d.kind());
        Ok(PrototypeGrid { title, tiles })
    }

    /// Channel `channel`'s negative prototypes under `d`: the `m` training images
    /// of lowest activation (the paper's top-m of −activation), as a grid.
    pub fn negative_prototype_grid(
        &self,
        d: &Disentangler,
        channel: i64,
        m: i64,
        gray: bool,
    ) -> crate::Result<PrototypeGrid> {
        let bank = self.bank();
        if channel < 0 || channel >= bank.channels() {
            return Err(crate::Error::OutOfRange { what: "channel".into(), index: channel, bound: bank.channels() });
        }
        let u = d.matrix()?;
        let row: Vec<usize> = Vec::<i64>::try_from(bank.top_negative_prototypes(&u, m)?.f_get(channel)?)?
            .into_iter()
            .map(|i| i as usize)
            .collect();
        let untrained = d.a_raw().f_abs()?.f_max()?.f_double_value(&[])? == 0.0;
        let stage = if untrained { "before training (U = I)" } else { "after training" };
        let title = format!("channel {channel}: {m} negative prototypes (lowest activation), {stage}, {} U", d.kind());
        Ok(PrototypeGrid { title, tiles: self.tiles_of(&u, channel, &row, gray)? })
    }

    /// The figure of explanation `e` of `image` `[3,H,W]` (normalised, as it was
    /// explained): a header (class, probability, logit check), then per channel
    /// the input boxed at the channel's peak and its prototypes, each boxed.
    pub fn explanation_figure(&self, e: &Explanation, image: &Tensor, gray: bool) -> crate::Result<Canvas> {
        let preprocess = self.network().preprocess();
        let input = transform::to_display(image, &preprocess)?;
        let look = |img: image::RgbImage| if gray { self::gray(&img) } else { img };
        let train = self.dataset();
        let train_names = train.class_names();
        let mut rows = Vec::new();
        for (r, &c) in e.channels.iter().enumerate() {
            let mut tiles = Vec::new();
            for (j, &i) in e.prototypes[r].iter().enumerate() {
                let img = transform::cropped_rgb(&train.image(i)?, &preprocess)?;
                let label = train_names.get(train.label(i) as usize).cloned().unwrap_or_default();
                tiles.push(Tile {
                    image: look(img),
                    cell: e.prototype_cells[r][j],
                    grid: e.grid,
                    caption: format!("#{i} {label}"),
                });
            }
            rows.push(ExplanationRow {
                label: format!("channel {c}   contribution {:.3}", e.scores[r]),
                input: Tile { image: look(input.clone()), cell: e.cells[r], grid: e.grid, caption: "input".into() },
                prototypes: tiles,
            });
        }
        let header = format!(
            "{} (class {}, p = {:.3})   max |logit change| {:.1e}",
            e.name, e.class, e.prob, e.max_logit_change
        );
        explanation_figure(&header, &rows)
    }
}
