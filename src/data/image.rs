//! Decoding image files to 8-bit RGB, whatever they hold.
//!
//! The format is detected from the content, not the extension. Grayscale, alpha,
//! CMYK and 16-bit images become RGB8 (alpha is dropped, as PIL's `convert("RGB")`
//! does). 16-bit values are scaled to 8 bits (v/257); PIL, and so the reference
//! code's loader, clips them at 255 instead, which turns most 16-bit images white.
//!
//! Sizes are checked from the header, before any pixel is decoded, so a hostile
//! header cannot exhaust memory: a side above [`MAX_SIDE`], more than
//! [`MAX_PIXELS`] pixels (PIL's decompression-bomb limit) or more than
//! [`MAX_DECODED_BYTES`] decoded is refused. A JPEG whose data ends before its
//! end-of-image marker is refused as truncated, as PIL refuses it, rather than
//! decoded with gray filling the missing rows.
use super::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// Largest width or height accepted.
pub const MAX_SIDE: u32 = 20_000;

/// Most pixels accepted: PIL's `DecompressionBombError` threshold (2 × `Image.MAX_IMAGE_PIXELS`).
pub const MAX_PIXELS: u64 = 178_956_970;

/// Most bytes a decoder may allocate for the decoded image.
pub const MAX_DECODED_BYTES: u64 = 2 << 30;

/// Decodes the image file at `path` to RGB8.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    crate::io::access::check_read(path)?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
    decode_rgb(&bytes, path)
}

/// Decodes an image held in memory to RGB8; `name` (its file) labels errors.
///
/// Never panics on any input: every failure is an [`Error`] naming `name`.
pub fn decode_rgb(bytes: &[u8], name: &Path) -> Result<RgbImage> {
    let bad = |why: String| Error::Decode { path: name.into(), why: one_line(&why) };
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| bad(e.to_string()))?;
    let Some(format) = reader.format() else {
        let why = if bytes.is_empty() {
            "the file is empty".to_string()
        } else {
            "its content is not JPEG, PNG, BMP, TIFF, WebP or PNM".to_string()
        };
        return Err(bad(why));
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| size_or_decode(e, name, bytes, format))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(bad(format!("the header says {width} × {height} pixels")));
    }
    let pixels = width as u64 * height as u64;
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS || decoder.total_bytes() > MAX_DECODED_BYTES {
        return Err(Error::TooLarge { path: name.into(), width, height });
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(bad(TRUNCATED.into()));
    }
    let img = DynamicImage::from_decoder(decoder).map_err(|e| size_or_decode(e, name, bytes, format))?;
    Ok(img.to_rgb8())
}

const TRUNCATED: &str = "the data ends before the end-of-image marker: the file is truncated";

/// A decoder's message on one line.
fn one_line(why: &str) -> String {
    why.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An image error as [`Error::TooLarge`] when a limit refused it (with the header's
/// size when it can be read), else [`Error::Decode`], which says "truncated" when
/// the data lacks its end marker.
fn size_or_decode(e: image::ImageError, name: &Path, bytes: &[u8], format: ImageFormat) -> Error {
    if let image::ImageError::Limits(_) = e {
        let dims = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .ok()
            .and_then(|mut r| {
                r.no_limits();
                r.into_decoder().ok().map(|d| d.dimensions())
            })
            .unwrap_or((0, 0));
        return Error::TooLarge { path: name.into(), width: dims.0, height: dims.1 };
    }
    let cut = match format {
        ImageFormat::Jpeg => !jpeg_is_complete(bytes),
        ImageFormat::Png => !bytes.windows(4).any(|w| w == b"IEND"),
        _ => false,
    };
    let why = if cut { format!("{TRUNCATED}; {e}") } else { e.to_string() };
    Error::Decode { path: name.into(), why: one_line(&why) }
}

/// Whether JPEG data reaches its end-of-image marker: walks the segments from
/// the start (skipping each by its length, and entropy-coded scan data up to the
/// next marker) until EOI. Bytes after EOI (camera padding) are allowed.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        while b.get(i).is_some_and(|&x| x != 0xFF) {
            i += 1;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else { return false };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue, // TEM, RSTn: no length
            _ => {
                let Some(&[hi, lo]) = b.get(i..i + 2) else { return false };
                let len = u16::from_be_bytes([hi, lo]) as usize;
                if len < 2 {
                    return false;
                }
                i += len;
                if marker == 0xDA {
                    // Scan data: up to the next marker other than a stuffed FF 00 or RSTn.
                    loop {
                        match b.get(i..i + 2) {
                            None => return false,
                            Some(&[0xFF, x]) if x != 0x00 && x != 0xFF && !(0xD0..=0xD7).contains(&x) => break,
                            _ => i += 1,
                        }
                    }
                }
            }
        }
    }
}
