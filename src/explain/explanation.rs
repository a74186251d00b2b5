//! One image explained: the class, the channels that carry its evidence in U's
//! basis, where each channel peaks in the image, and each channel's prototypes
//! from the **training** bank (the reference code looks training indices up in
//! the validation set; here prototype indices always index the bank's data set).
use super::channels::top_channels;
use crate::data::{transform, Dataset};
use crate::disentangle::Disentangler;
use crate::features::{rotate, Bank, BankError, FeatureMemo};
use crate::model::{Network, Preprocess};
use crate::render::{explanation_figure, Canvas, ExplanationRow, Tile};
use tch::{Kind, Tensor};

/// The numbers of an explanation; [`Explanation::figure`] draws them.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The explained class (the prediction unless another was asked for).
    pub class: i64,
    /// Its softmax probability.
    pub prob: f64,
    /// The top-k channels, largest contribution first.
    pub channels: Vec<i64>,
    /// Their contributions A′[class,c]·ReLU(avgpool(Ẑ))_c.
    pub scores: Vec<f64>,
    /// Feature-map size (h, w) and, per channel, the cell (row, col) where Ẑ_c peaks.
    pub grid: (i64, i64),
    pub cells: Vec<(i64, i64)>,
    /// Per channel, its m prototypes: indices into the bank's (training) data set.
    pub prototypes: Vec<Vec<usize>>,
    /// Per channel and prototype, the cell where Ẑ_c peaks in that prototype.
    pub prototype_cells: Vec<Vec<(i64, i64)>>,
    /// Largest |logit change| of this image between the original head and A·U⁻¹.
    pub max_logit_change: f64,
}

/// Ẑ_c = U[c]·Z at every pixel of `maps` [n,C,h,w] → [n,h,w] (row c of U only).
fn channel_maps(maps: &Tensor, u: &Tensor, c: i64) -> crate::Result<Tensor> {
    Ok(Tensor::f_einsum("j,njhw->nhw", &[&u.f_get(c)?, maps], None::<i64>)?)
}

/// Argmax cell (row, col) of each map in `maps` [n,h,w].
fn peak_cells(maps: &Tensor) -> crate::Result<Vec<(i64, i64)>> {
    let (n, w) = (maps.size()[0], maps.size()[2]);
    let flat = Vec::<i64>::try_from(maps.f_reshape([n, -1])?.f_argmax(1, false)?)?;
    Ok(flat.into_iter().map(|i| (i / w, i % w)).collect())
}

/// Explains `image` [3,H,W] (normalised for `net`): top-`k` channels of `class`
/// (default: the prediction) under `d`, each with its top-`m` prototypes from `bank`.
#[allow(clippy::too_many_arguments)]
pub fn explain(
    net: &Network,
    d: &Disentangler,
    bank: &Bank,
    train: &crate::data::Loader,
    memo: &mut FeatureMemo,
    image: &Tensor,
    k: i64,
    m: i64,
    class: Option<i64>,
) -> Result<Explanation, BankError> {
    let z = net.features(&image.f_unsqueeze(0)?)?;
    let device = z.device();
    let u = d.matrix()?.f_to_device(device)?;
    let u_inv = match d.kind() {
        crate::disentangle::MatrixKind::Orthogonal => u.f_tr()?,
        crate::disentangle::MatrixKind::Invertible => d.inverse()?.f_to_device(device)?,
    };
    let rotated = rotate(&z, &u)?;
    let weight = net.head_weight().f_matmul(&u_inv)?;
    let classes = class.map(|c| Tensor::from_slice(&[c]));
    let top = top_channels(&rotated, &weight, net.head_bias(), k, classes.as_ref())?;
    // The check of the head that explains: |head′(UZ) − head(Z)|, with head′ = A·U⁻¹ as used above.
    let change = top.logits.f_sub(&net.head_logits(&z)?)?.f_abs()?.f_max()?.f_double_value(&[])?;
    let class = top.classes.f_int64_value(&[0])?;
    let prob = top.logits.f_softmax(1, Kind::Double)?.f_double_value(&[0, class])?;
    let channels = Vec::<i64>::try_from(top.channels.f_reshape([-1])?)?;
    let scores = Vec::<f64>::try_from(top.scores.f_reshape([-1])?.f_to_kind(Kind::Double)?)?;
    let (h, w) = (z.size()[2], z.size()[3]);
    let idx = Tensor::f_from_slice(&channels)?.f_to_device(device)?;
    let cells = peak_cells(&rotated.f_get(0)?.f_index_select(0, &idx)?)?;

    let protos = bank.top_prototypes(Some(&u), m)?;
    let mut prototypes = Vec::new();
    let mut prototype_cells = Vec::new();
    for &c in &channels {
        let row: Vec<usize> = Vec::<i64>::try_from(protos.f_get(c)?)?.into_iter().map(|i| i as usize).collect();
        let maps = memo.maps(net, train, &row)?;
        prototype_cells.push(peak_cells(&channel_maps(&maps, &u, c)?)?);
        prototypes.push(row);
    }
    Ok(Explanation {
        class,
        prob,
        channels,
        scores,
        grid: (h, w),
        cells,
        prototypes,
        prototype_cells,
        max_logit_change: change,
    })
}

/// A normalised image [3,H,W] back to RGB8 for display.
pub fn to_display(image: &Tensor, p: &Preprocess) -> crate::Result<image::RgbImage> {
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
    image::RgbImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| crate::Error::invalid("to_display", "size mismatch"))
}

impl Explanation {
    /// The figure: a header (class, probability, logit check), then per channel
    /// the input boxed at the channel's peak and its prototypes, each boxed.
    /// `gray` renders images in gray (the reference's `img_fn: gray`).
    pub fn figure(
        &self,
        input: &image::RgbImage,
        class_names: &[String],
        train: &dyn Dataset,
        preprocess: &Preprocess,
        gray: bool,
    ) -> Result<Canvas, BankError> {
        let look = |img: image::RgbImage| if gray { crate::render::figures::gray(&img) } else { img };
        let train_names = train.class_names();
        let name = class_names.get(self.class as usize).cloned().unwrap_or_else(|| format!("class {}", self.class));
        let mut rows = Vec::new();
        for (r, &c) in self.channels.iter().enumerate() {
            let mut tiles = Vec::new();
            for (j, &i) in self.prototypes[r].iter().enumerate() {
                let img = transform::cropped_rgb(&train.image(i)?, preprocess)?;
                let label = train_names.get(train.label(i) as usize).cloned().unwrap_or_default();
                tiles.push(Tile {
                    image: look(img),
                    cell: self.prototype_cells[r][j],
                    grid: self.grid,
                    caption: format!("#{i} {label}"),
                });
            }
            rows.push(ExplanationRow {
                label: format!("channel {c}   contribution {:.3}", self.scores[r]),
                input: Tile {
                    image: look(input.clone()),
                    cell: self.cells[r],
                    grid: self.grid,
                    caption: "input".into(),
                },
                prototypes: tiles,
            });
        }
        let header = format!(
            "{name} (class {}, p = {:.3})   max |logit change| {:.1e}",
            self.class, self.prob, self.max_logit_change
        );
        Ok(explanation_figure(&header, &rows)?)
    }
}

/// Tiles of channel `channel`'s top-`m` prototypes under `d` (identity when
/// `None`), each boxed at the channel's peak: for the Base/Trained prototype grids.
#[allow(clippy::too_many_arguments)]
pub fn prototype_tiles(
    net: &Network,
    d: &Disentangler,
    bank: &Bank,
    loader: &crate::data::Loader,
    memo: &mut FeatureMemo,
    train: &dyn Dataset,
    channel: i64,
    m: i64,
    gray: bool,
) -> Result<Vec<Tile>, BankError> {
    if channel < 0 || channel >= bank.channels() {
        return Err(crate::Error::OutOfRange { what: "channel".into(), index: channel, bound: bank.channels() }.into());
    }
    let u = d.matrix()?;
    let row: Vec<usize> = Vec::<i64>::try_from(bank.top_prototypes(Some(&u), m)?.f_get(channel)?)?
        .into_iter()
        .map(|i| i as usize)
        .collect();
    let maps = memo.maps(net, loader, &row)?;
    let cells = peak_cells(&channel_maps(&maps, &u.f_to_device(maps.device())?, channel)?)?;
    let grid = (maps.size()[2], maps.size()[3]);
    let names = train.class_names();
    let mut tiles = Vec::new();
    for (j, &i) in row.iter().enumerate() {
        let img = transform::cropped_rgb(&train.image(i)?, &net.preprocess())?;
        let img = if gray { crate::render::figures::gray(&img) } else { img };
        let label = names.get(train.label(i) as usize).cloned().unwrap_or_default();
        tiles.push(Tile { image: img, cell: cells[j], grid, caption: format!("#{i} {label}") });
    }
    Ok(tiles)
}
