//! One image explained: the class, the channels that carry its evidence in U's
//! basis, where each channel peaks in the image, and each channel's prototypes
//! from the **training** bank (the reference code looks training indices up in
//! the validation set; here prototype indices always index the bank's data set).
use super::channels::top_channels;
use crate::config::Section;
use crate::disentangle::Disentangler;
use crate::features::rotate;
use crate::study::Study;
use tch::{Kind, Tensor};

/// What to explain (the reference config's `visualization` keys): how many
/// channels, how many prototypes each, and which class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainOptions {
    /// The top-k channels shown (`num_prototypical_channels` or `k`: 4).
    pub channels: i64,
    /// Prototypes per channel (`num_prototypes` or `m`: 5, as the reference's
    /// training config; its `config_explain.yaml` sets 4).
    pub prototypes: i64,
    /// The class explained (`class`); `None`: the prediction.
    pub class: Option<i64>,
}

impl Default for ExplainOptions {
    /// The `visualization` values of `configs/train_base.yaml`: 4 channels of 5
    /// prototypes each.
    fn default() -> Self {
        ExplainOptions { channels: 4, prototypes: 5, class: None }
    }
}

impl ExplainOptions {
    /// The options a `visualization` section (or a script's option map) gives.
    pub fn from_config(visualization: &Section) -> crate::Result<Self> {
        let d = ExplainOptions::default();
        let class = match visualization.get(&["class"]) {
            None => None,
            Some(_) => Some(visualization.int(&["class"], 0)?),
        };
        Ok(ExplainOptions {
            channels: visualization.int(&["num_prototypical_channels", "k"], d.channels)?,
            prototypes: visualization.int(&["num_prototypes", "m"], d.prototypes)?,
            class,
        })
    }
}

/// The numbers of an explanation; [`Study::explanation_figure`] draws them.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The explained class (the prediction unless another was asked for).
    pub class: i64,
    /// Its name ([`Study::class_names`]).
    pub name: String,
    /// Its softmax probability.
    pub prob: f64,
    /// The top-k channels, largest contribution first.
    pub channels: Vec<i64>,
    /// Their contributions A′`[class,c]`·ReLU(avgpool(Ẑ))_c.
    pub scores: Vec<f64>,
    /// Feature-map size (h, w) and, per channel, the cell (row, col) where Ẑ_c peaks.
    pub grid: (i64, i64),
    /// The cells.
    pub cells: Vec<(i64, i64)>,
    /// Per channel, its m prototypes: indices into the bank's (training) data set.
    pub prototypes: Vec<Vec<usize>>,
    /// Per channel and prototype, the cell where Ẑ_c peaks in that prototype.
    pub prototype_cells: Vec<Vec<(i64, i64)>>,
    /// Largest |logit change| of this image between the original head and A·U⁻¹.
    pub max_logit_change: f64,
}

/// Ẑ_c = U[c]·Z at every pixel of `maps` `[n,C,h,w]` → `[n,h,w]` (row c of U only).
pub(crate) fn channel_maps(maps: &Tensor, u: &Tensor, c: i64) -> crate::Result<Tensor> {
    Ok(Tensor::f_einsum("j,njhw->nhw", &[&u.f_get(c)?, maps], None::<i64>)?)
}

/// Argmax cell (row, col) of each map in `maps` `[n,h,w]`.
pub(crate) fn peak_cells(maps: &Tensor) -> crate::Result<Vec<(i64, i64)>> {
    let (n, w) = (maps.size()[0], maps.size()[2]);
    let flat = Vec::<i64>::try_from(maps.f_reshape([n, -1])?.f_argmax(1, false)?)?;
    Ok(flat.into_iter().map(|i| (i / w, i % w)).collect())
}

impl Study {
    /// Explains `image` `[3,H,W]` (normalised for the study's network): the top
    /// `options.channels` channels of `options.class` (default: the prediction)
    /// under `d`, each with its top `options.prototypes` prototypes from the
    /// study's training bank.
    pub fn explain(&self, d: &Disentangler, image: &Tensor, options: &ExplainOptions) -> crate::Result<Explanation> {
        explain(self, d, image, options)
    }
}

fn explain(study: &Study, d: &Disentangler, image: &Tensor, options: &ExplainOptions) -> crate::Result<Explanation> {
    let net = study.network();
    let (k, m, class) = (options.channels, options.prototypes, options.class);
    let z = net.features(&image.f_unsqueeze(0)?)?;
    let (u, weight) = rotated_head(study, d, z.device())?;
    let rotated = rotate(&z, &u)?;
    let classes = class.map(|c| Tensor::from_slice(&[c]));
    let top = top_channels(&rotated, &weight, net.head_bias(), k, classes.as_ref())?;
    // The check of the head that explains: |head′(UZ) − head(Z)|, with head′ = A·U⁻¹ as used above.
    let change = top.logits.f_sub(&net.head_logits(&z)?)?.f_abs()?.f_max()?.f_double_value(&[])?;
    let class = top.classes.f_int64_value(&[0])?;
    let prob = top.logits.f_softmax(1, Kind::Double)?.f_double_value(&[0, class])?;
    let channels = Vec::<i64>::try_from(top.channels.f_reshape([-1])?)?;
    let scores = Vec::<f64>::try_from(top.scores.f_reshape([-1])?.f_to_kind(Kind::Double)?)?;
    let (h, w) = (z.size()[2], z.size()[3]);
    let Evidence { cells, prototypes, prototype_cells } = evidence(study, &u, &rotated, &channels, m)?;
    let name = study.class_names().get(class as usize).cloned().unwrap_or_else(|| format!("class {class}"));
    Ok(Explanation {
        class,
        name,
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

/// Where `channels` peak in one image, and their prototypes with their peaks.
pub(crate) struct Evidence {
    /// Per channel, the cell where Ẑ_c of the image peaks.
    pub cells: Vec<(i64, i64)>,
    /// Per channel, its top-m prototypes (indices into the training bank).
    pub prototypes: Vec<Vec<usize>>,
    /// Per channel and prototype, the cell where Ẑ_c of the prototype peaks.
    pub prototype_cells: Vec<Vec<(i64, i64)>>,
}

/// The [`Evidence`] for `channels` of the image whose rotated maps are `rotated`
/// `[1,C,h,w]`, under `u`, with `m` prototypes each.
pub(crate) fn evidence(
    study: &Study,
    u: &Tensor,
    rotated: &Tensor,
    channels: &[i64],
    m: i64,
) -> crate::Result<Evidence> {
    let idx = Tensor::f_from_slice(channels)?.f_to_device(rotated.device())?;
    let cells = peak_cells(&rotated.f_get(0)?.f_index_select(0, &idx)?)?;
    let protos = study.bank().top_prototypes(Some(u), m)?;
    let mut prototypes = Vec::new();
    let mut prototype_cells = Vec::new();
    for &c in channels {
        let row: Vec<usize> = Vec::<i64>::try_from(protos.f_get(c)?)?.into_iter().map(|i| i as usize).collect();
        let maps = study.maps(&row)?;
        prototype_cells.push(peak_cells(&channel_maps(&maps, u, c)?)?);
        prototypes.push(row);
    }
    Ok(Evidence { cells, prototypes, prototype_cells })
}

/// U on `device` and the head A·U⁻¹ of `study`'s network: (U, A′).
pub(crate) fn rotated_head(study: &Study, d: &Disentangler, device: tch::Device) -> crate::Result<(Tensor, Tensor)> {
    let u = d.matrix()?.f_to_device(device)?;
    let u_inv = match d.kind() {
        crate::disentangle::MatrixKind::Orthogonal => u.f_tr()?,
        crate::disentangle::MatrixKind::Invertible => d.inverse()?.f_to_device(device)?,
    };
    let weight = study.network().head_weight().f_matmul(&u_inv)?;
    Ok((u, weight))
}
