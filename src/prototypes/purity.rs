//! Argmax purity: how much of a pixel's feature vector belongs to one channel.
//!
//! For image b and channel k, take the pixel where channel k peaks, p = Z[b,:,y,x];
//! purity = p_k / ‖p‖ (the norm clamped at 1e-8, as in the reference). It is 1 when
//! the pixel is all channel k, and at most 1 always.
use crate::check;
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// Argmax purity per image: `features` [B,C,H,W] float, `channels` [B] int → [B] float.
///
/// Differentiable in `features` (the argmax location itself is not), so it serves as
/// the training objective. Ties in the argmax go to the first pixel in row-major order.
pub fn purity_argmax(features: &Tensor, channels: &Tensor) -> Result<Tensor> {
    let (channels, [b, c, h, w]) = checked_args(features, channels, "purity_argmax")?;

    let flat = features.f_reshape([b, c, h * w])?;
    let pick = channels.f_view([b, 1, 1])?.f_expand([b, 1, h * w], false)?;
    let own = flat.f_gather(1, &pick, false)?.f_squeeze_dim(1)?; // [B,HW]
    let peak = own.f_argmax(1, false)?; // [B]
    let at_peak = peak.f_view([b, 1, 1])?.f_expand([b, c, 1], false)?;
    let vectors = flat.f_gather(2, &at_peak, false)?.f_squeeze_dim(2)?; // [B,C]
    let norm = vectors.f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?.f_clamp_min(1e-8)?;
    let own_value = vectors.f_gather(1, &channels.f_view([b, 1])?, false)?.f_squeeze_dim(1)?;
    Ok(own_value.f_div(&norm)?)
}

/// Checks `features` [B,C,H,W] float and `channels` [B] int in 0..C on the same
/// device; returns the channels as int64 and [B,C,H,W].
fn checked_args(features: &Tensor, channels: &Tensor, what: &str) -> Result<(Tensor, [i64; 4])> {
    check::dims(features, "features", 4, "[B,C,H,W]")?;
    check::float(features, "features")?;
    check::finite(features, "features")?;
    let channels = check::indices(channels, "channels")?;
    let s = features.size();
    let (b, c) = (s[0], s[1]);
    if channels.size() != [b] {
        return Err(Error::Shape {
            what: "channels".into(),
            expected: format!("[{b}] (one channel per image)"),
            got: channels.size(),
        });
    }
    check::same_device(features, &channels, &format!("{what}(features, channels)"))?;
    check::in_range(&channels, "channels", c)?;
    Ok((channels, [s[0], s[1], s[2], s[3]]))
}

/// Mean argmax purity of prototypes: `features` [N,C,H,W] float, `prototypes` [C,m]
/// int image indices into it (as [`top_prototypes`](super::top_prototypes) returns)
/// → mean over all (k, j) of the purity of image `prototypes[k][j]` on channel k.
pub fn mean_purity(features: &Tensor, prototypes: &Tensor) -> Result<f64> {
    check::dims(features, "features", 4, "[N,C,H,W]")?;
    check::dims(prototypes, "prototypes", 2, "[C,m]")?;
    let prototypes = check::indices(prototypes, "prototypes")?;
    let (n, c) = (features.size()[0], features.size()[1]);
    let m = prototypes.size()[1];
    if prototypes.size()[0] != c {
        return Err(Error::Shape {
            what: "prototypes".into(),
            expected: format!("[{c},m] (one row per channel of features)"),
            got: prototypes.size(),
        });
    }
    check::in_range(&prototypes, "prototypes", n)?;
    let rows = prototypes.f_reshape([c * m])?;
    let maps = features.f_index_select(0, &rows)?;
    let channels =
        Tensor::f_arange(c, (Kind::Int64, features.device()))?.f_repeat_interleave_self_int(m, 0, None::<i64>)?;
    Ok(purity_argmax(&maps, &channels)?.f_mean(Kind::Double)?.f_double_value(&[])?)
}

/// Argmax purity under U without rotating whole maps: `features` Z [B,C,H,W],
/// `u` [C,C], `channels` [B] → [B], equal to `purity_argmax(rotate(Z, U), channels)`.
///
/// Rotating every pixel costs C² per pixel; purity needs only channel k at every
/// pixel (row k of U, C per pixel) to find the peak, then the whole rotated
/// vector at that one pixel (C²). For C = 1280 and 7×7 maps that is 47× less
/// work, and it is what makes training on a CPU practical. Differentiable in `u`.
pub fn purity_argmax_under(features: &Tensor, u: &Tensor, channels: &Tensor) -> Result<Tensor> {
    let (channels, [b, c, h, w]) = checked_args(features, channels, "purity_argmax_under")?;
    if check::square(u, "u")? != c {
        return Err(Error::Shape { what: "u".into(), expected: format!("[{c},{c}] to match features"), got: u.size() });
    }
    check::same_device(features, u, "purity_argmax_under(features, u)")?;

    let flat = features.f_reshape([b, c, h * w])?;
    let rows = u.f_index_select(0, &channels)?; // [B,C]: row k of U per image
    let own = rows.f_unsqueeze(1)?.f_bmm(&flat)?.f_squeeze_dim(1)?; // [B,HW]: Ẑ_k at every pixel
    let peak = own.f_detach()?.f_argmax(1, false)?;
    let at_peak = peak.f_view([b, 1, 1])?.f_expand([b, c, 1], false)?;
    let z_at = flat.f_gather(2, &at_peak, false)?.f_squeeze_dim(2)?; // [B,C]: z at the peak
    let vectors = z_at.f_matmul(&u.f_tr()?)?; // [B,C]: Ẑ at the peak
    let norm = vectors.f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?.f_clamp_min(1e-8)?;
    let own_value = vectors.f_gather(1, &channels.f_view([b, 1])?, false)?.f_squeeze_dim(1)?;
    Ok(own_value.f_div(&norm)?)
}

/// Argmax purity under an orthogonal U: [`purity_argmax_under`] with ‖U·z‖ taken
/// as ‖z‖, which it is for orthogonal U. The rotated vector at the peak is then
/// never formed: C per image instead of C², so the loss and its gradient (nonzero
/// only in the rows of U that `channels` name) cost O(B·C·HW) in all.
///
/// For a U that is orthogonal to f32 rounding, the result differs from
/// [`purity_argmax_under`] by that rounding (1e-5 relative at C = 1280).
pub fn purity_argmax_orthogonal(features: &Tensor, u: &Tensor, channels: &Tensor) -> Result<Tensor> {
    let (channels, [b, c, h, w]) = checked_args(features, channels, "purity_argmax_orthogonal")?;
    if check::square(u, "u")? != c {
        return Err(Error::Shape { what: "u".into(), expected: format!("[{c},{c}] to match features"), got: u.size() });
    }
    check::same_device(features, u, "purity_argmax_orthogonal(features, u)")?;

    let flat = features.f_reshape([b, c, h * w])?;
    let rows = u.f_index_select(0, &channels)?; // [B,C]
    let own = rows.f_unsqueeze(1)?.f_bmm(&flat)?.f_squeeze_dim(1)?; // [B,HW]
    let peak = own.f_detach()?.f_argmax(1, false)?;
    let own_value = own.f_gather(1, &peak.f_view([b, 1])?, false)?.f_squeeze_dim(1)?; // [B]
    let at_peak = peak.f_view([b, 1, 1])?.f_expand([b, c, 1], false)?;
    let z_at = flat.f_gather(2, &at_peak, false)?.f_squeeze_dim(2)?; // [B,C]
    let norm = z_at.f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?.f_clamp_min(1e-8)?;
    Ok(own_value.f_div(&norm)?)
}
