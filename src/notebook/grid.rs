//! Prototype grids inline: one channel's row of boxed prototypes, or several
//! channels' rows composed into one picture.
use super::Output;
use crate::render::{PrototypeGrid, PrototypeGrids};

impl PrototypeGrid {
    /// The grid as `image/png`, its title and captions as text.
    pub fn notebook_output(&self) -> Output {
        Output::drawn(self.canvas(), self.summary())
    }

    /// Shows the grid under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

impl PrototypeGrids {
    /// The grids, one under the other, as one `image/png`; a line per grid as text.
    pub fn notebook_output(&self) -> Output {
        Output::drawn(self.canvas(), self.summary())
    }

    /// Shows the grids under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::png_of;
    use crate::render::figures::TILE;
    use crate::render::{PrototypeGrid, PrototypeGrids, Tile};

    fn grid(channel: usize, n: usize) -> PrototypeGrid {
        let tiles = (0..n)
            .map(|i| Tile {
                image: image::RgbImage::from_pixel(28, 28, image::Rgb([(40 * i) as u8, 90, 200])),
                cell: (i as i64 % 2, 1),
                grid: (2, 2),
                caption: format!("#{} Bag", 10 + i),
            })
            .collect();
        PrototypeGrid { title: format!("channel {channel}: top {n} prototypes"), tiles }
    }

    #[test]
    fn grids_show_as_one_picture_with_their_captions() {
        let one = grid(5, 3).notebook_output();
        let img = png_of(&one);
        // 3 tiles of TILE px with 8 px gaps, under a 36 px title, over a 26 px caption.
        assert_eq!(img.dimensions(), (8 + 3 * (TILE + 8), 36 + TILE + 26 + 8));
        assert_eq!(one.text_of("text/plain"), Some("channel 5: top 3 prototypes: #10 Bag, #11 Bag, #12 Bag"));
        // The yellow box of tile 0 is at cell (0, 1) of a 2×2 map: the top right quarter.
        let p = img.get_pixel(8 + TILE / 2 + 1, 36 + 1).0;
        assert!(p[0] > 200 && p[1] > 180 && p[2] < 90, "{p:?}");

        let both = PrototypeGrids(vec![grid(5, 3), grid(9, 4)]).notebook_output();
        let img = png_of(&both);
        assert_eq!(img.dimensions(), (8 + 4 * (TILE + 8), 2 * (36 + TILE + 26 + 8) + 8));
        let plain = both.text_of("text/plain").unwrap();
        assert_eq!(plain.lines().count(), 2);
        assert!(plain.lines().nth(1).unwrap().starts_with("channel 9: top 4 prototypes"));
    }
}
