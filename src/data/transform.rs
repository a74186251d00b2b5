//! A network's eval transform: RGB8 image → normalised `[3,crop,crop]` f32 tensor.
//!
//! Mirrors torchvision's `Resize(resize, antialias=True)` + `CenterCrop(crop)` +
//! `Normalize(mean, std)`: the shorter side becomes `resize` (the longer one
//! `int(resize·long/short)`), resampling is bilinear (or bicubic, by
//! [`Preprocess::interpolation`]) with antialiasing (libtorch's
//! `_upsample_bilinear2d_aa` / `_upsample_bicubic2d_aa`, the kernels torchvision
//! uses on float tensors, rounded back to 8 bits), and the crop offset is `round((size − crop)/2)` with
//! Python's round-half-to-even. PIL resamples in two 8-bit passes, so pixels can
//! differ from the reference's PIL pipeline by a level or two (the test
//! `resize_matches_pil_within_a_small_bound` measures it).
use super::Result;
use crate::model::{Interpolation, Preprocess};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

/// Most pixels a resized image may have (about 716 MB as f32 RGB): a third of
/// [`super::image::MAX_PIXELS`].
pub const MAX_RESIZED_PIXELS: u64 = super::image::MAX_PIXELS / 3;

/// The resized size (h, w) whose shorter side is `target`, as torchvision computes it.
pub fn resized_size(h: i64, w: i64, target: i64) -> (i64, i64) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (target as f64 * long as f64 / short as f64) as i64;
    if w <= h {
        (new_long, target)
    } else {
        (target, new_long)
    }
}

/// RGB8 image → uint8-valued f32 tensor `[1,3,H,W]` (0–255).
pub fn to_tensor(img: &RgbImage) -> Result<Tensor> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let t = Tensor::f_from_data_size(img.as_raw(), &[h, w, 3], Kind::Uint8)?;
    Ok(t.f_permute([2, 0, 1])?.f_unsqueeze(0)?.f_to_kind(Kind::Float)?)
}

/// Resize (shorter side → `size`, bilinear, antialiased, rounded to 8 bits):
/// `[1,3,H,W]` 0–255 → `[1,3,h,w]` 0–255.
///
/// An image so elongated that the result would exceed [`MAX_RESIZED_PIXELS`]
/// (a 1 × 20 000 strip becomes 256 × 5 120 000) is an error, not a 16 GB tensor.
pub fn resize(x: &Tensor, size: i64) -> Result<Tensor> {
    resize_with(x, size, Interpolation::Bilinear)
}

/// [`resize`] with the filter `interpolation`: `[1,3,H,W]` 0–255 → `[1,3,h,w]` 0–255.
pub fn resize_with(x: &Tensor, size: i64, interpolation: Interpolation) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    if size < 1 || h < 1 || w < 1 {
        return Err(super::Error::Transform {
            why: format!("cannot resize a {w} × {h} image to a shorter side of {size}"),
        });
    }
    let (nh, nw) = resized_size(h, w, size);
    if nh as u64 * nw as u64 > MAX_RESIZED_PIXELS {
        return Err(super::Error::Transform {
            why: format!(
                "the image is {w} × {h} pixels: resizing its shorter side to {size} makes {nw} × {nh}, more than {} megapixels",
                MAX_RESIZED_PIXELS / 1_000_000
            ),
        });
    }
    if (nh, nw) == (h, w) {
        return Ok(x.shallow_clone());
    }
    let y = match interpolation {
        Interpolation::Bilinear => x.f_internal_upsample_bilinear2d_aa([nh, nw], false, None, None)?,
        Interpolation::Bicubic => x.f_internal_upsample_bicubic2d_aa([nh, nw], false, None, None)?,
    };
    Ok(y.f_round()?.f_clamp(0.0, 255.0)?)
}

/// Center crop to `crop`×`crop` (`[1,3,H,W]` → `[1,3,crop,crop]`), zero-padding an
/// image smaller than the crop as torchvision does.
pub fn center_crop(x: &Tensor, crop: i64) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let x = if h < crop || w < crop {
        let (ph, pw) = ((crop - h).max(0), (crop - w).max(0));
        x.f_constant_pad_nd([pw / 2, (pw + 1) / 2, ph / 2, (ph + 1) / 2])?
    } else {
        x.shallow_clone()
    };
    let (h, w) = (x.size()[2], x.size()[3]);
    let top = ((h - crop) as f64 / 2.0).round_ties_even() as i64;
    let left = ((w - crop) as f64 / 2.0).round_ties_even() as i64;
    Ok(x.f_narrow(2, top, crop)?.f_narrow(3, left, crop)?)
}

/// The image as the network sees it, before normalisation: resized and
/// center-cropped RGB8 [crop×crop], for figures.
pub fn cropped_rgb(img: &RgbImage, p: &Preprocess) -> Result<RgbImage> {
    let _guard = tch::no_grad_guard();
    let x = center_crop(&resize_with(&to_tensor(img)?, p.resize, p.interpolation)?, p.crop)?;
    let hwc = x.f_squeeze_dim(0)?.f_permute([1, 2, 0])?.f_to_kind(Kind::Uint8)?.f_contiguous()?;
    let bytes = Vec::<u8>::try_from(hwc.f_reshape([-1])?)?;
    let side = p.crop as u32;
    RgbImage::from_raw(side, side, bytes)
        .ok_or_else(|| super::Error::Layout { path: "<image>".into(), why: "crop size mismatch".into() })
}

/// The whole eval transform: RGB8 → normalised f32 `[3,crop,crop]` on the CPU.
pub fn preprocess(img: &RgbImage, p: &Preprocess) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let x = center_crop(&resize_with(&to_tensor(img)?, p.resize, p.interpolation)?, p.crop)?;
    let mean = Tensor::f_from_slice(&p.mean.map(|m| m * 255.0))?.f_view([1, 3, 1, 1])?;
    let std = Tensor::f_from_slice(&p.std.map(|s| s * 255.0))?.f_view([1, 3, 1, 1])?;
    let x = x.f_sub(&mean.f_to_kind(Kind::Float)?)?.f_div(&std.f_to_kind(Kind::Float)?)?;
    Ok(x.f_squeeze_dim(0)?.f_to_device(Device::Cpu)?.f_contiguous()?)
}

/// A normalised image `[3,H,W]` back to RGB8 for display: the inverse of the
/// transform's normalisation, rounded and clamped to 0–255.
pub fn to_display(image: &Tensor, p: &Preprocess) -> crate::Result<RgbImage> {
    let mean = Tensor::f_from_slice(&p.mean.map(|v| v as f32))?.f_view([3, 1, 1])?;
    let std = Tensor::f_from_slice(&p.std.map(|v| v as f32))?.f_view([3, 1, 1])?;
    let x = image
        .f_to_device(tch::Device::Cpu)?
        .f_mul(&std)?
        .f_add(&mean)?
        .f_mul_scalar(255.0)?
        .f_round()?
        .f_clamp(0.0, 255.0)?;
    let (h, w) = (x.size()[1], x.size()[2]);
    let bytes = Vec::<u8>::try_from(x.f_permute([1, 2, 0])?.f_to_kind(Kind::Uint8)?.f_contiguous()?.f_reshape([-1])?)?;
    RgbImage::from_raw(w as u32, h as u32, bytes).ok_or_else(|| crate::Error::invalid("to_display", "size mismatch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_torchvision() {
        assert_eq!(resized_size(480, 640, 256), (256, 341)); // int(256·640/480) = 341
        assert_eq!(resized_size(640, 480, 256), (341, 256));
        assert_eq!(resized_size(300, 300, 256), (256, 256));
        assert_eq!(resized_size(28, 28, 256), (256, 256));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // 227 − 224 = 3 → 1.5 → 2 (Python's round), not 1.
        let x = Tensor::arange(227, (Kind::Float, Device::Cpu)).view([1, 1, 1, 227]).expand([1, 3, 224, 227], false);
        let c = center_crop(&x, 224).unwrap();
        assert_eq!(c.size(), [1, 3, 224, 224]);
        assert_eq!(c.double_value(&[0, 0, 0, 0]), 2.0);
        // 225 − 224 = 1 → 0.5 → 0.
        let x = Tensor::arange(225, (Kind::Float, Device::Cpu)).view([1, 1, 1, 225]).expand([1, 3, 224, 225], false);
        assert_eq!(center_crop(&x, 224).unwrap().double_value(&[0, 0, 0, 0]), 0.0);
    }

    #[test]
    fn a_flat_image_normalises_to_the_expected_constant() {
        let img = RgbImage::from_pixel(300, 200, image::Rgb([127, 255, 0]));
        let t = preprocess(&img, &Preprocess::LITE).unwrap();
        assert_eq!(t.size(), [3, 224, 224]);
        // (127 − 127)/128 = 0, (255 − 127)/128 = 1, (0 − 127)/128 = −0.9921875
        for (c, want) in [0.0, 1.0, -0.9921875].iter().enumerate() {
            let v = t.get(c as i64);
            assert!((v.max().double_value(&[]) - want).abs() < 1e-5 && (v.min().double_value(&[]) - want).abs() < 1e-5);
        }
    }
}
