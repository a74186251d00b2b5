//! An RGB canvas: images pasted in, boxes and text drawn on, saved atomically.
use crate::error::{Error, Result};
use image::RgbImage;
use plotters::prelude::*;
use std::path::Path;

/// An RGB8 picture being composed.
#[derive(Clone)]
pub struct Canvas {
    /// The picture.
    pub image: RgbImage,
}

/// Yellow, the reference's box colour.
pub const YELLOW: [u8; 3] = [255, 221, 0];

impl Canvas {
    /// A `width`×`height` canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: [u8; 3]) -> Self {
        Canvas { image: RgbImage::from_pixel(width.max(1), height.max(1), image::Rgb(background)) }
    }

    /// Pastes `img` with its top-left corner at (x, y), clipped to the canvas.
    pub fn paste(&mut self, img: &RgbImage, x: u32, y: u32) {
        for (ix, iy, p) in img.enumerate_pixels() {
            let (cx, cy) = (x + ix, y + iy);
            if cx < self.image.width() && cy < self.image.height() {
                self.image.put_pixel(cx, cy, *p);
            }
        }
    }

    /// A rectangle outline `thickness` pixels wide inside (x0, y0)–(x1, y1).
    pub fn rect(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, color: [u8; 3], thickness: u32) {
        let (w, h) = (self.image.width(), self.image.height());
        for t in 0..thickness {
            let (a0, b0) = (x0 + t, y0 + t);
            let (a1, b1) = (x1.saturating_sub(t + 1).max(a0), y1.saturating_sub(t + 1).max(b0));
            for x in a0..=a1 {
                for y in [b0, b1] {
                    if x < w && y < h {
                        self.image.put_pixel(x, y, image::Rgb(color));
                    }
                }
            }
            for y in b0..=b1 {
                for x in [a0, a1] {
                    if x < w && y < h {
                        self.image.put_pixel(x, y, image::Rgb(color));
                    }
                }
            }
        }
    }

    /// Text with its top-left corner at (x, y), `size` pixels high.
    pub fn text(&mut self, x: i32, y: i32, size: f64, s: &str, color: [u8; 3]) -> Result<()> {
        super::ensure_font();
        let (w, h) = self.image.dimensions();
        let area = BitMapBackend::with_buffer(self.image.as_mut(), (w, h)).into_drawing_area();
        let style = ("sans-serif", size).into_font().color(&RGBColor(color[0], color[1], color[2]));
        area.draw_text(s, &style, (x, y)).map_err(|e| Error::invalid("text", e.to_string()))?;
        area.present().map_err(|e| Error::invalid("text", e.to_string()))?;
        Ok(())
    }

    /// A canvas holding `image` as it is.
    pub fn from_image(image: RgbImage) -> Self {
        Canvas { image }
    }

    /// (width, height) in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.image.dimensions()
    }

    /// The canvas encoded as JPEG (quality 92) when `jpeg`, else as PNG.
    pub fn encode(&self, jpeg: bool) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut cursor = std::io::Cursor::new(&mut bytes);
        let res = if jpeg {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut cursor, 92).encode_image(&self.image)
        } else {
            self.image.write_to(&mut cursor, image::ImageFormat::Png)
        };
        res.map_err(|e| Error::invalid("figure", format!("cannot encode the figure: {e}")))?;
        Ok(bytes)
    }

    /// The canvas as PNG bytes (what notebooks show inline).
    pub fn png(&self) -> Result<Vec<u8>> {
        self.encode(false)
    }

    /// Writes the canvas as JPEG (`.jpg`/`.jpeg`, quality 92) or PNG, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let jpeg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        let bytes = self
            .encode(jpeg)
            .map_err(|e| Error::invalid(path.display().to_string(), format!("cannot encode the figure: {e}")))?;
        crate::io::atomic::write_bytes_atomic(path, &bytes)
    }

    /// Several pictures composed into one, on white, `gap` pixels apart: one
    /// under the other (`vertical`) or side by side, each aligned to the left or
    /// top. A notebook cell keeps one picture per output, so a value that shows
    /// several draws them this way.
    pub fn stack(parts: &[Canvas], vertical: bool, gap: u32) -> Canvas {
        let n = parts.len() as u32;
        let along = |c: &Canvas| if vertical { c.image.height() } else { c.image.width() };
        let across = |c: &Canvas| if vertical { c.image.width() } else { c.image.height() };
        let total = parts.iter().map(along).sum::<u32>() + gap * n.saturating_sub(1);
        let thick = parts.iter().map(across).max().unwrap_or(1);
        let (w, h) = if vertical { (thick, total) } else { (total, thick) };
        let mut out = Canvas::new(w, h, [255, 255, 255]);
        let mut at = 0;
        for p in parts {
            if vertical {
                out.paste(&p.image, 0, at);
            } else {
                out.paste(&p.image, at, 0);
            }
            at += along(p) + gap;
        }
        out
    }
}
