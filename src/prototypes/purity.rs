//! Argmax purity: how much of a pixel's feature vector belongs to one channel.
//!
//! For image b and channel k, take the pixel where channel k peaks, p = Z[b,:,y,x];
//! purity = p_k / ‖p‖ (the norm clamped at 1e-8, as in the reference). It is 1 when
//! the pixel is all channel k, and at most 1 always.
use crate::check;
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// Argmax purity per image: `features` `[B,C,H,W]` float, `channels` `[B]` int → `[B]` float.
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

/// Checks `features` `[B,C,H,W]` float and `channels` `[B]` int in 0..C on the same
/// device; returns the channels as int64 and `[B,C,H,W]`.
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

/// Mean argmax purity of prototypes: `features` `[N,C,H,W]` float, `prototypes` `[C,m]`
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

/// Argmax purity under U without rotating whole maps: `features` Z `[B,C,H,W]`,
/// `u` `[C,C]`, `channels` `[B]` → `[B]`, equal to `purity_argmax(rotate(Z, U), channels)`.
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

/// Argmax purity of pairs (image `rows[i]` of `maps`, channel `channels[i]`)
/// under U, without gathering one map per pair: `maps` `[N,C,H,W]`, `rows` and
/// `channels` `[B]` int, `u` `[C,C]` → `[B]`, equal to
/// `purity_argmax_under(maps[rows], u, channels)` up to summation order.
///
/// Training pairs share images (every channel's prototypes come from the same
/// few images), so the maps are taken once per distinct image in the batch, and
/// each image's channels are rotated in one product: a 4096-pair batch at
/// C = 1280 over 200 images reads 50 MB of maps instead of copying 1 GB.
/// `orthogonal` takes ‖Uz‖ = ‖z‖ ([`purity_argmax_orthogonal`]); it then needs
/// only the rows of U that the channels name, so `u` may also be those rows,
/// `[R,C]`, with `channels` indexing them. Differentiable in `u`.
pub fn purity_argmax_pairs(
    maps: &Tensor,
    rows: &Tensor,
    channels: &Tensor,
    u: &Tensor,
    orthogonal: bool,
) -> Result<Tensor> {
    check::dims(maps, "features", 4, "[N,C,H,W]")?;
    check::float(maps, "features")?;
    let s = maps.size();
    let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
    let rows = check::indices(rows, "rows")?;
    let channels = check::indices(channels, "channels")?;
    if rows.size() != channels.size() || rows.dim() != 1 {
        return Err(Error::Shape {
            what: "rows".into(),
            expected: format!("[B] like channels {:?}", channels.size()),
            got: rows.size(),
        });
    }
    let u_rows = match u.size().as_slice() {
        &[r, cu] if cu == c && (orthogonal || r == c) => r,
        _ => {
            let expected = if orthogonal { format!("[R,{c}] (rows of U) or [{c},{c}]") } else { format!("[{c},{c}]") };
            return Err(Error::Shape {
                what: "u".into(),
                expected: format!("{expected} to match features"),
                got: u.size(),
            });
        }
    };
    check::same_device(maps, &rows, "purity_argmax_pairs(features, rows)")?;
    check::same_device(maps, &channels, "purity_argmax_pairs(features, channels)")?;
    check::same_device(maps, u, "purity_argmax_pairs(features, u)")?;
    check::in_range(&rows, "rows", n)?;
    check::in_range(&channels, "channels", u_rows)?;
    let device = maps.device();
    let b = rows.size()[0];
    if b == 0 {
        return Ok(Tensor::f_zeros([0], (maps.kind(), device))?);
    }

    // Group pairs by image, at most `width` pairs a group (an image with more
    // gets several groups), so that padding stays within 2× the batch.
    let row_list = Vec::<i64>::try_from(rows.f_to_device(tch::Device::Cpu)?)?;
    let channel_list = Vec::<i64>::try_from(channels.f_to_device(tch::Device::Cpu)?)?;
    let mut distinct = row_list.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let position = |r: &i64| distinct.binary_search(r).unwrap_or(0);
    let mut count = vec![0i64; distinct.len()];
    for r in &row_list {
        count[position(r)] += 1;
    }
    let width = ((2 * b) as u64).div_ceil(distinct.len() as u64).max(1) as i64;
    let mut base = Vec::with_capacity(distinct.len());
    let mut group_images = Vec::new();
    for (d, &n_d) in count.iter().enumerate() {
        base.push(group_images.len() as i64);
        group_images.extend(std::iter::repeat_n(distinct[d], (n_d as u64).div_ceil(width as u64) as usize));
    }
    let groups = group_images.len() as i64;
    let mut seen = vec![0i64; distinct.len()];
    let mut group_of = Vec::with_capacity(row_list.len());
    let mut table = vec![0i64; (groups * width) as usize]; // padding: channel 0, never read
    let mut pick_list = Vec::with_capacity(row_list.len());
    for (r, &k) in row_list.iter().zip(&channel_list) {
        let d = position(r);
        let (g, slot) = (base[d] + seen[d] / width, seen[d] % width);
        seen[d] += 1;
        group_of.push(g);
        table[(g * width + slot) as usize] = k;
        pick_list.push(g * width + slot);
    }
    let to_dev = |v: &[i64]| -> Result<Tensor> { Ok(Tensor::f_from_slice(v)?.f_to_device(device)?) };
    let flat = maps.f_index_select(0, &to_dev(&group_images)?)?.f_reshape([groups, c, hw])?;
    let table = to_dev(&table)?;
    let group = to_dev(&group_of)?;
    let pick = to_dev(&pick_list)?;

    // Ẑ_k at every pixel, per image for all its channels at once.
    let rotated_rows = u.f_index_select(0, &table)?.f_reshape([groups, width, c])?;
    let own = rotated_rows.f_bmm(&flat)?.f_reshape([groups * width, hw])?.f_index_select(0, &pick)?; // [B,HW]
    let peak = own.f_detach()?.f_argmax(1, false)?;
    let own_value = own.f_gather(1, &peak.f_view([b, 1])?, false)?.f_squeeze_dim(1)?;
    let z_at = flat.f_index(&[Some(group), None, Some(peak)])?; // [B,C]: z at the peak
    let (value, norm) = if orthogonal {
        (own_value, z_at.f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?)
    } else {
        let vectors = z_at.f_matmul(&u.f_tr()?)?;
        let own = vectors.f_gather(1, &channels.f_view([b, 1])?, false)?.f_squeeze_dim(1)?;
        (own, vectors.f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), false)?)
    };
    Ok(value.f_div(&norm.f_clamp_min(1e-8)?)?)
}
