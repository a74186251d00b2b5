//! Decoding image files to 8-bit RGB, whatever they hold.
//!
//! The format is detected from the content, not the extension. Grayscale, alpha,
//! CMYK and 16-bit images become RGB8 (alpha is dropped, as PIL's `convert("RGB")`
//! does). 16-bit values are scaled to 8 bits (v/257); PIL, and so the reference
//! code's loader, clips them at 255 instead, which turns most 16-bit images white. Images beyond 20 000 × 20 000 pixels or 2 GiB decoded are refused
//! before decoding, so a hostile header cannot exhaust memory.
use super::{Error, Result};
use image::{ImageReader, Limits, RgbImage};
use std::path::Path;

/// Largest width or height accepted.
pub const MAX_SIDE: u32 = 20_000;

/// Decodes `path` to RGB8.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bad = |why: String| Error::Decode { path: path.into(), why };
    let reader = ImageReader::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let mut reader = reader.with_guessed_format().map_err(|e| bad(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(2 << 30);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad(e.to_string()))?;
    Ok(img.to_rgb8())
}
