//! What values show in a notebook: explanations, prototype grids, pictures and
//! purity plots as `image/png`, purity tables as `text/html`, each with a
//! `text/plain` summary ([`Output`], from each type's `notebook_output()`).
//!
//! Two kernels show them: `epic kernel` (Rhai cells, [`crate::kernel`]) sends
//! them as `execute_result` bundles, and in evcxr (Rust cells, cargo feature
//! `notebook`) every such type has an inherent `evcxr_display(&self)` method (no
//! trait to import), which emits them through `evcxr_runtime`. The pictures are drawn
//! and encoded by [`crate::render`]; evcxr keeps one output per MIME type per
//! cell, so a value that shows several pictures composes them into one
//! ([`crate::render::Canvas::stack`]).
//!
//! One file per idea: [`image`] (single pictures), [`explanation`], [`grid`]
//! (prototype grids), [`plot`] (purity curve and histogram), [`table`] (purity
//! table), [`script`] (values and handles of a Rhai [`crate::script::Session`]).
pub mod explanation;
pub mod grid;
pub mod image;
pub mod plot;
pub mod script;
pub mod table;

use crate::render::Canvas;

/// One piece of content of an output.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Text content (HTML, plain text).
    Text(String),
    /// Binary content (PNG), base64-encoded when emitted.
    Bytes(Vec<u8>),
}

/// What a value shows in a notebook: at most one content per MIME type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// The items.
    pub items: Vec<(&'static str, Content)>,
}

impl Output {
    /// `canvas` as `image/png` with a `text/plain` summary; if encoding fails,
    /// the summary and the error as text.
    pub fn picture(canvas: &Canvas, plain: String) -> Output {
        match canvas.png() {
            Ok(png) => Output { items: vec![("image/png", Content::Bytes(png)), ("text/plain", Content::Text(plain))] },
            Err(e) => Output::text(format!("{plain}\n(cannot draw it: {e})")),
        }
    }

    /// A picture drawn by `draw`, or the error as text when drawing fails.
    pub fn drawn(draw: crate::Result<Canvas>, plain: String) -> Output {
        match draw {
            Ok(canvas) => Output::picture(&canvas, plain),
            Err(e) => Output::text(format!("{plain}\n(cannot draw it: {e})")),
        }
    }

    /// `text/html` with a `text/plain` summary.
    pub fn html(html: String, plain: String) -> Output {
        Output { items: vec![("text/html", Content::Text(html)), ("text/plain", Content::Text(plain))] }
    }

    /// `text/plain` only.
    pub fn text(plain: String) -> Output {
        Output { items: vec![("text/plain", Content::Text(plain))] }
    }

    /// The content of type `mime`, if any.
    pub fn get(&self, mime: &str) -> Option<&Content> {
        self.items.iter().find(|(m, _)| *m == mime).map(|(_, c)| c)
    }

    /// The text of type `mime` (text/plain, text/html), if any.
    pub fn text_of(&self, mime: &str) -> Option<&str> {
        match self.get(mime) {
            Some(Content::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// The bytes of type `mime` (image/png), if any.
    pub fn bytes_of(&self, mime: &str) -> Option<&[u8]> {
        match self.get(mime) {
            Some(Content::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    /// Sends every content to the evcxr kernel (on stdout, in evcxr's framing).
    #[cfg(feature = "notebook")]
    pub fn emit(&self) {
        for (mime, content) in &self.items {
            match content {
                Content::Text(s) => evcxr_runtime::mime_type(*mime).text(s),
                Content::Bytes(b) => evcxr_runtime::mime_type(*mime).bytes(b),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes the output's PNG: (width, height) and the pixels.
    pub(crate) fn png_of(out: &Output) -> ::image::RgbImage {
        let png = out.bytes_of("image/png").expect("an image/png output");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        ::image::load_from_memory_with_format(png, ::image::ImageFormat::Png).expect("the PNG decodes").to_rgb8()
    }

    #[test]
    fn a_picture_is_png_and_plain_text() {
        let mut c = Canvas::new(30, 20, [255, 255, 255]);
        c.rect(2, 3, 12, 13, crate::render::canvas::YELLOW, 2);
        let out = Output::picture(&c, "a test picture".into());
        let img = png_of(&out);
        assert_eq!(img.dimensions(), (30, 20));
        assert_eq!(img.get_pixel(2, 3).0, crate::render::canvas::YELLOW);
        assert_eq!(img.get_pixel(20, 15).0, [255, 255, 255]);
        assert_eq!(out.text_of("text/plain"), Some("a test picture"));
        assert_eq!(out.items.iter().map(|(m, _)| *m).collect::<Vec<_>>(), ["image/png", "text/plain"]);
    }

    #[test]
    fn a_failed_drawing_says_why_in_text() {
        let out = Output::drawn(Err(crate::Error::invalid("plot", "no data")), "purity".into());
        assert!(out.get("image/png").is_none());
        let t = out.text_of("text/plain").unwrap();
        assert!(t.starts_with("purity") && t.contains("no data"), "{t}");
    }
}
