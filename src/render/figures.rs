//! Prototype grids and explanation figures: images as the network saw them
//! (resized and cropped), each with a yellow box at the feature-map cell where
//! the channel peaks.
use super::canvas::{Canvas, YELLOW};
use crate::error::Result;
use image::RgbImage;

/// Pixels of a tile's side in the figures.
pub const TILE: u32 = 192;
const GAP: u32 = 8;
const LABEL: u32 = 26;

/// One image in a figure: the (cropped) input, the feature-map cell to box, a caption.
#[derive(Clone)]
pub struct Tile {
    /// The picture.
    pub image: RgbImage,
    /// (row, column) of the boxed cell in a feature map of `grid` = (h, w) cells.
    pub cell: (i64, i64),
    /// The feature map's size (h, w).
    pub grid: (i64, i64),
    /// The text under it.
    pub caption: String,
}

impl Tile {
    /// Draws the tile at (x, y): the image scaled to TILE×TILE, the box, the caption under it.
    fn draw(&self, canvas: &mut Canvas, x: u32, y: u32) -> Result<()> {
        let img = image::imageops::resize(&self.image, TILE, TILE, image::imageops::FilterType::Triangle);
        canvas.paste(&img, x, y);
        let (h, w) = (self.grid.0.max(1) as u32, self.grid.1.max(1) as u32);
        let (r, c) = (self.cell.0.max(0) as u32, self.cell.1.max(0) as u32);
        let (x0, y0) = (x + c * TILE / w, y + r * TILE / h);
        let (x1, y1) = (x + (c + 1) * TILE / w, y + (r + 1) * TILE / h);
        canvas.rect(x0, y0, x1, y1, YELLOW, 3);
        canvas.text(x as i32 + 2, (y + TILE + 4) as i32, 15.0, &self.caption, [30, 30, 30])
    }
}

/// Converts an image to gray (the reference's `img_fn: gray`), kept as RGB.
pub fn gray(img: &RgbImage) -> RgbImage {
    let g = image::imageops::grayscale(img);
    RgbImage::from_fn(g.width(), g.height(), |x, y| {
        let v = g.get_pixel(x, y)[0];
        image::Rgb([v, v, v])
    })
}

/// A channel's prototypes in one row under a title.
pub fn prototype_grid(title: &str, tiles: &[Tile]) -> Result<Canvas> {
    let n = tiles.len().max(1) as u32;
    let mut canvas = Canvas::new(GAP + n * (TILE + GAP), 36 + TILE + LABEL + GAP, [255, 255, 255]);
    canvas.text(GAP as i32, 8, 20.0, title, [0, 0, 0])?;
    for (i, t) in tiles.iter().enumerate() {
        t.draw(&mut canvas, GAP + i as u32 * (TILE + GAP), 36)?;
    }
    Ok(canvas)
}

/// One row of an explanation: the input boxed at the channel's peak, then the
/// channel's prototypes, under a label (channel id, contribution).
pub struct ExplanationRow {
    /// The text before the row.
    pub label: String,
    /// The input image, boxed at the channel's peak.
    pub input: Tile,
    /// The prototypes, each boxed.
    pub prototypes: Vec<Tile>,
}

/// Pixel size (width, height) of an explanation figure with `k` rows of `m` prototypes.
pub fn explanation_size(k: u32, m: u32) -> (u32, u32) {
    (GAP + (m + 1) * (TILE + GAP) + 2 * GAP, 44 + k * (24 + TILE + LABEL + GAP))
}

/// Top-left corner of tile `j` (0 = the input) of row `r` in an explanation figure.
pub fn explanation_tile_origin(r: u32, j: u32) -> (u32, u32) {
    let x = if j == 0 { GAP } else { 3 * GAP + j * (TILE + GAP) };
    (x, 44 + r * (24 + TILE + LABEL + GAP) + 24)
}

/// The explanation figure: a header line, then one row per explaining channel,
/// each of 1 + m tiles (the input, then the prototypes).
pub fn explanation_figure(header: &str, rows: &[ExplanationRow]) -> Result<Canvas> {
    let m = rows.iter().map(|r| r.prototypes.len()).max().unwrap_or(0) as u32;
    let (width, height) = explanation_size(rows.len() as u32, m);
    let mut canvas = Canvas::new(width, height, [255, 255, 255]);
    canvas.text(GAP as i32, 10, 22.0, header, [0, 0, 0])?;
    for (i, row) in rows.iter().enumerate() {
        let (x, y) = explanation_tile_origin(i as u32, 0);
        canvas.text(GAP as i32, (y - 24) as i32, 17.0, &row.label, [20, 20, 120])?;
        row.input.draw(&mut canvas, x, y)?;
        for (j, t) in row.prototypes.iter().enumerate() {
            let (x, y) = explanation_tile_origin(i as u32, j as u32 + 1);
            t.draw(&mut canvas, x, y)?;
        }
    }
    Ok(canvas)
}

/// A channel's prototypes as a value: the title and the boxed tiles, drawn by
/// [`PrototypeGrid::canvas`] (the same figure as [`prototype_grid`]).
#[derive(Clone)]
pub struct PrototypeGrid {
    /// The title above it.
    pub title: String,
    /// The prototypes as tiles.
    pub tiles: Vec<Tile>,
}

impl PrototypeGrid {
    /// The figure: the title, then the tiles in one row.
    pub fn canvas(&self) -> Result<Canvas> {
        prototype_grid(&self.title, &self.tiles)
    }

    /// One line: the title and each tile's caption.
    pub fn summary(&self) -> String {
        let captions: Vec<&str> = self.tiles.iter().map(|t| t.caption.as_str()).collect();
        format!("{}: {}", self.title, captions.join(", "))
    }
}

/// Several prototype grids (one per channel) as one value, drawn one under the
/// other in a single picture.
#[derive(Clone)]
pub struct PrototypeGrids(pub Vec<PrototypeGrid>);

impl PrototypeGrids {
    /// The grids stacked vertically, 8 pixels apart.
    pub fn canvas(&self) -> Result<Canvas> {
        let parts = self.0.iter().map(PrototypeGrid::canvas).collect::<Result<Vec<_>>>()?;
        Ok(Canvas::stack(&parts, true, GAP))
    }

    /// One line per grid.
    pub fn summary(&self) -> String {
        self.0.iter().map(PrototypeGrid::summary).collect::<Vec<_>>().join("\n")
    }
}

/// How figures are drawn (the reference config's `visualization` keys that are
/// not about what is explained; see [`crate::explain::ExplainOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visualization {
    /// Prototypes per channel in grids (`num_prototypes`: 5).
    pub num_prototypes: i64,
    /// Images in gray (`img_fn: gray`; the default `none` keeps colour).
    pub gray: bool,
    /// Validation images explained by a run (`num_explanations`: 10).
    pub num_explanations: i64,
    /// Channels whose prototype grids a run writes (`num_channels_shown`: 4, epic's key).
    pub num_channels_shown: i64,
}

impl Default for Visualization {
    /// The reference's `visualization` values.
    fn default() -> Self {
        Visualization { num_prototypes: 5, gray: false, num_explanations: 10, num_channels_shown: 4 }
    }
}

impl Visualization {
    /// The options a `visualization` section (or a script's option map) gives.
    pub fn from_config(visualization: &crate::config::Section) -> Result<Self> {
        let d = Visualization::default();
        let gray = match visualization.string(&["img_fn"])?.as_deref() {
            None | Some("none") => false,
            Some("gray") => true,
            Some(other) => {
                return Err(
                    visualization.invalid("img_fn", format!("unknown image function {other:?}; use none or gray"))
                )
            }
        };
        Ok(Visualization {
            num_prototypes: visualization.int_at_least(&["num_prototypes", "m"], d.num_prototypes, 1)?,
            gray,
            num_explanations: visualization.int_at_least(&["num_explanations"], d.num_explanations, 0)?,
            num_channels_shown: visualization.int_at_least(&["num_channels_shown"], d.num_channels_shown, 0)?,
        })
    }
}
