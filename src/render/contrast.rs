//! Figures of the questions after "why this class": why A and not B (two
//! explanation columns under one header that accounts for the margin), the top-K
//! classes side by side, and a class view (its channels' prototype grids).
use super::figures::{explanation_figure, gray, ExplanationRow, PrototypeGrid, PrototypeGrids, Tile};
use super::Canvas;
use crate::data::transform;
use crate::explain::{ClassView, Contrast};
use crate::study::Study;
use tch::Tensor;

/// A number for people: 3 significant digits, signed.
pub fn signed(x: f64) -> String {
    format!("{x:+.3}")
}

/// Stacks `parts` side by side under a one-line `header`.
fn with_header(header: &str, parts: &[Canvas]) -> crate::Result<Canvas> {
    let body = Canvas::stack(parts, false, 16);
    let (w, _) = body.size();
    let mut top = Canvas::new(w.max(600), 40, [255, 255, 255]);
    top.text(8, 8, 22.0, header, [0, 0, 0])?;
    Ok(Canvas::stack(&[top, body], true, 0))
}

impl Study {
    /// The contrast figure of `c` for `image` `[3,H,W]`: a header with the margin
    /// and how it splits (shown channels, other channels, bias), then A's
    /// channels and B's channels, each row the input boxed and the prototypes.
    pub fn contrast_figure(
        &self,
        d: &crate::disentangle::Disentangler,
        c: &Contrast,
        image: &Tensor,
        gray_images: bool,
    ) -> crate::Result<Canvas> {
        let preprocess = self.network().preprocess();
        let input = transform::to_display(image, &preprocess)?;
        let look = |img: image::RgbImage| if gray_images { gray(&img) } else { img };
        let u = d.matrix()?;
        let mut columns = Vec::new();
        for (s, side) in c.sides.iter().enumerate() {
            let mut rows = Vec::new();
            for (r, &ch) in side.channels.iter().enumerate() {
                let mut tiles = self.tiles_of(&u, ch, &side.prototypes[r], gray_images)?;
                for (t, &cell) in tiles.iter_mut().zip(&side.prototype_cells[r]) {
                    t.cell = cell;
                }
                rows.push(ExplanationRow {
                    label: format!("channel {ch}   {} to the margin", signed(side.terms[r])),
                    input: Tile {
                        image: look(input.clone()),
                        cell: side.cells[r],
                        grid: c.grid,
                        caption: "input".into(),
                    },
                    prototypes: tiles,
                });
            }
            let other = &c.sides[1 - s];
            let head = format!("for {} over {}: {}", side.name, other.name, signed(side.terms.iter().sum()));
            columns.push(explanation_figure(&head, &rows)?);
        }
        let header = format!(
            "why {} (p = {:.3}), not {} (p = {:.3}): margin {:.3} = shown {} + other channels {} + bias {}",
            c.sides[0].name,
            c.probs[0],
            c.sides[1].name,
            c.probs[1],
            c.margin,
            signed(c.shown()),
            signed(c.other_channels),
            signed(c.bias)
        );
        with_header(&header, &columns)
    }

    /// Explanation figures side by side under one header (the top-K classes of one image).
    pub fn side_by_side(&self, header: &str, figures: &[Canvas]) -> crate::Result<Canvas> {
        with_header(header, figures)
    }

    /// The class view figure: a header (class, images, the share of the logit the
    /// channels carry), then per channel its prototype grid, and its negative
    /// prototypes under it when the view has them.
    pub fn class_view_figure(
        &self,
        d: &crate::disentangle::Disentangler,
        v: &ClassView,
        gray_images: bool,
    ) -> crate::Result<Canvas> {
        let u = d.matrix()?;
        let mut grids = Vec::new();
        for (r, &ch) in v.channels.iter().enumerate() {
            grids.push(PrototypeGrid {
                title: format!(
                    "channel {ch}: mean contribution {:.3}, {:.1} % of the class logit",
                    v.contributions[r],
                    100.0 * v.shares[r]
                ),
                tiles: self.tiles_of(&u, ch, &v.prototypes[r], gray_images)?,
            });
            if let Some(neg) = &v.negative {
                grids.push(PrototypeGrid {
                    title: format!("channel {ch}: negative prototypes (lowest activation)"),
                    tiles: self.tiles_of(&u, ch, &neg[r], gray_images)?,
                });
            }
        }
        let share: f64 = v.shares.iter().sum();
        let header = format!(
            "{} (class {}): {} channels over {} training images carry {:.1} % of its logit",
            v.name,
            v.class,
            v.channels.len(),
            v.images,
            100.0 * share
        );
        with_header(&header, &[PrototypeGrids(grids).canvas()?])
    }
}
