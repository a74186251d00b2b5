//! What the network looks for in a class: the channels with the largest mean
//! contribution A′\[y,c\]·ReLU(v_c) over the class's training images, each with
//! its prototypes (and, on request, its negative prototypes: the top-m of
//! −activation), and the share of the class logit each carries.
//!
//! Everything comes from the bank: v = sums·Uᵀ / (h·w) is avgpool(Ẑ) of every
//! training image (Σ_hw U z = U Σ_hw z), so a class view needs no backbone pass.
use super::explanation::rotated_head;
use crate::disentangle::Disentangler;
use crate::study::Study;
use tch::{Kind, Tensor};

/// A class view (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassView {
    /// The class.
    pub class: i64,
    /// Its name.
    pub name: String,
    /// Training images of the class the means are over.
    pub images: usize,
    /// The top channels, largest mean contribution first.
    pub channels: Vec<i64>,
    /// Their mean contributions A′\[y,c\]·ReLU(v_c).
    pub contributions: Vec<f64>,
    /// Each channel's share of the mean class logit minus its bias:
    /// mean(A′\[y,c\]·v_c) / mean(Σ_c A′\[y,c\]·v_c).
    pub shares: Vec<f64>,
    /// Each channel's top-m prototypes.
    pub prototypes: Vec<Vec<usize>>,
    /// Each channel's top-m negative prototypes, when asked for.
    pub negative: Option<Vec<Vec<usize>>>,
}

impl Study {
    /// The view of `class` under `d`: `k` channels, `m` prototypes each, and
    /// negative prototypes when `negative`.
    pub fn class_view(&self, d: &Disentangler, class: i64, k: i64, m: i64, negative: bool) -> crate::Result<ClassView> {
        let bank = self.bank();
        let names = self.class_names();
        let n_classes = self.network().head_weight().size()[0];
        if !(0..n_classes).contains(&class) {
            return Err(crate::Error::OutOfRange { what: "class".into(), index: class, bound: n_classes });
        }
        let (u, weight) = rotated_head(self, d, tch::Device::Cpu)?;
        let v = bank.pooled(Some(&u))?.f_to_kind(Kind::Double)?;
        let mine = bank.labels.f_eq(class)?.f_logical_and(&bank.valid)?;
        let rows = mine.f_nonzero()?.f_reshape([-1])?;
        let images = rows.size()[0] as usize;
        if images == 0 {
            return Err(crate::Error::invalid(
                format!("class {class}"),
                "no training image of this class in the bank".to_string(),
            ));
        }
        let v = v.f_index_select(0, &rows.f_to_device(v.device())?)?;
        let a = weight.f_get(class)?.f_to_kind(Kind::Double)?;
        let contrib = v.f_relu()?.f_mul(&a)?.f_mean_dim(0, false, Kind::Double)?;
        let exact = v.f_mul(&a)?.f_mean_dim(0, false, Kind::Double)?;
        let total = exact.f_sum(Kind::Double)?.f_double_value(&[])?;
        let k = k.clamp(1, self.channels());
        let channels = Vec::<i64>::try_from(contrib.f_topk(k, 0, true, true)?.1)?;
        let idx = Tensor::f_from_slice(&channels)?.f_to_device(contrib.device())?;
        let contributions = Vec::<f64>::try_from(contrib.f_index_select(0, &idx)?)?;
        let shares = Vec::<f64>::try_from(exact.f_index_select(0, &idx)?.f_div_scalar(total)?)?;
        let pick = |top: &Tensor| -> crate::Result<Vec<Vec<usize>>> {
            channels
                .iter()
                .map(|&c| Ok(Vec::<i64>::try_from(top.f_get(c)?)?.into_iter().map(|i| i as usize).collect()))
                .collect()
        };
        let prototypes = pick(&bank.top_prototypes(Some(&u), m)?)?;
        let negative = if negative { Some(pick(&bank.top_negative_prototypes(&u, m)?)?) } else { None };
        Ok(ClassView {
            class,
            name: names.get(class as usize).cloned().unwrap_or_else(|| format!("class {class}")),
            images,
            channels,
            contributions,
            shares,
            prototypes,
            negative,
        })
    }
}
