//! A single picture ([`Canvas`]) inline: `image/png`, with its size as text.
use super::Output;
use crate::render::Canvas;

impl Canvas {
    /// `image/png` of the picture and `Picture(W×H)` as text.
    pub fn notebook_output(&self) -> Output {
        let (w, h) = self.size();
        Output::picture(self, format!("Picture({w}×{h})"))
    }

    /// Shows the picture under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::png_of;
    use crate::render::Canvas;

    #[test]
    fn composed_pictures_show_as_one_png() {
        let a = Canvas::new(40, 10, [255, 0, 0]);
        let b = Canvas::new(25, 30, [0, 0, 255]);
        let out = Canvas::stack(&[a.clone(), b.clone()], true, 4).notebook_output();
        let img = png_of(&out);
        assert_eq!(img.dimensions(), (40, 44));
        assert_eq!(img.get_pixel(39, 9).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(0, 12).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(24, 43).0, [0, 0, 255]);
        assert_eq!(img.get_pixel(30, 30).0, [255, 255, 255]);
        assert_eq!(out.text_of("text/plain"), Some("Picture(40×44)"));
        let side = Canvas::stack(&[a, b], false, 0).notebook_output();
        assert_eq!(png_of(&side).dimensions(), (65, 30));
    }
}
