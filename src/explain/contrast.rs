//! "Why A, not B": the channels that most favour class A over class B in one
//! image, and those that most favour B, each with its prototypes.
//!
//! With v = avgpool(Ẑ) and A′ = A·U⁻¹, the logit margin splits exactly over
//! channels: logit_a − logit_b = Σ_c (A′\[a,c\] − A′\[b,c\])·v_c + (b_a − b_b).
//! Channels are ranked by (A′[a] − A′[b]) ⊙ ReLU(v) for A and by its negative
//! for B; each shown channel's term is its share of the margin, and what the
//! shown channels leave is stated as the rest: the other channels and the bias.
use super::explanation::{evidence, rotated_head, Evidence};
use crate::disentangle::Disentangler;
use crate::features::rotate;
use crate::study::Study;
use tch::{Kind, Tensor};

/// The channels of one side of a contrast, largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ContrastSide {
    /// The class this side argues for.
    pub class: i64,
    /// Its name.
    pub name: String,
    /// The channels.
    pub channels: Vec<i64>,
    /// Each channel's term (A′\[a,c\] − A′\[b,c\])·v_c of the margin logit_a − logit_b:
    /// positive on A's side, negative on B's.
    pub terms: Vec<f64>,
    /// Where each channel peaks in the image.
    pub cells: Vec<(i64, i64)>,
    /// Each channel's prototypes (indices into the training bank).
    pub prototypes: Vec<Vec<usize>>,
    /// Where each channel peaks in each prototype.
    pub prototype_cells: Vec<Vec<(i64, i64)>>,
}

/// A contrastive explanation of one image: A against B.
#[derive(Debug, Clone, PartialEq)]
pub struct Contrast {
    /// logit_a, logit_b.
    pub logits: [f64; 2],
    /// Their softmax probabilities.
    pub probs: [f64; 2],
    /// logit_a − logit_b.
    pub margin: f64,
    /// The channels for A, then those for B.
    pub sides: [ContrastSide; 2],
    /// Σ of the other channels' terms.
    pub other_channels: f64,
    /// b_a − b_b.
    pub bias: f64,
    /// Feature-map size (h, w).
    pub grid: (i64, i64),
    /// Largest |logit change| between the original head and A·U⁻¹ on this image.
    pub max_logit_change: f64,
}

impl Contrast {
    /// Σ of the shown channels' terms.
    pub fn shown(&self) -> f64 {
        self.sides.iter().flat_map(|s| s.terms.iter()).sum()
    }

    /// What the shown channels leave of the margin: the other channels and the bias.
    pub fn rest(&self) -> f64 {
        self.other_channels + self.bias
    }
}

impl Study {
    /// Contrasts `classes` = (a, b) on `image` `[3,H,W]` under `d` (default: the
    /// top two predictions), `k` channels a side with `m` prototypes each.
    pub fn contrast(
        &self,
        d: &Disentangler,
        image: &Tensor,
        classes: Option<(i64, i64)>,
        k: i64,
        m: i64,
    ) -> crate::Result<Contrast> {
        let net = self.network();
        let z = net.features(&image.f_unsqueeze(0)?)?;
        let (u, weight) = rotated_head(self, d, z.device())?;
        let rotated = rotate(&z, &u)?;
        let v = rotated.f_mean_dim([2i64, 3].as_slice(), false, Kind::Float)?.f_get(0)?.f_to_kind(Kind::Double)?;
        let weight = weight.f_to_kind(Kind::Double)?;
        let bias = net.head_bias().f_to_kind(Kind::Double)?;
        let logits = weight.f_mv(&v)?.f_add(&bias)?;
        let original = net.head_logits(&z)?.f_get(0)?.f_to_kind(Kind::Double)?;
        let change = logits.f_sub(&original)?.f_abs()?.f_max()?.f_double_value(&[])?;
        let (a, b) = match classes {
            Some(pair) => pair,
            None => {
                let top = Vec::<i64>::try_from(logits.f_topk(2, 0, true, true)?.1)?;
                (top[0], top[1])
            }
        };
        let n = logits.size()[0];
        for c in [a, b] {
            if !(0..n).contains(&c) {
                return Err(crate::Error::OutOfRange { what: "contrast class".into(), index: c, bound: n });
            }
        }
        if a == b {
            return Err(crate::Error::invalid("contrast", format!("classes A and B are both {a}")));
        }
        let diff = weight.f_get(a)?.f_sub(&weight.f_get(b)?)?;
        let terms = diff.f_mul(&v)?;
        let ranked = diff.f_mul(&v.f_relu()?)?;
        let channels = self.channels();
        let k = k.clamp(1, channels / 2);
        let names = self.class_names();
        let name = |c: i64| names.get(c as usize).cloned().unwrap_or_else(|| format!("class {c}"));
        let mut shown = Vec::new();
        let mut sides = Vec::new();
        for (class, sign) in [(a, 1.0), (b, -1.0)] {
            let order = ranked.f_mul_scalar(sign)?;
            // Channels of the other side are excluded, so that no channel shows twice.
            let order = if shown.is_empty() {
                order
            } else {
                let taken = Tensor::f_from_slice(&shown)?.f_to_device(order.device())?;
                order.f_index_fill(0, &taken, f64::NEG_INFINITY)?
            };
            let picked = Vec::<i64>::try_from(order.f_topk(k, 0, true, true)?.1)?;
            let idx = Tensor::f_from_slice(&picked)?.f_to_device(terms.device())?;
            let side_terms = Vec::<f64>::try_from(terms.f_index_select(0, &idx)?)?;
            let Evidence { cells, prototypes, prototype_cells } = evidence(self, &u, &rotated, &picked, m)?;
            shown.extend_from_slice(&picked);
            sides.push(ContrastSide {
                class,
                name: name(class),
                channels: picked,
                terms: side_terms,
                cells,
                prototypes,
                prototype_cells,
            });
        }
        let all = terms.f_sum(Kind::Double)?.f_double_value(&[])?;
        let shown_sum: f64 = sides.iter().flat_map(|s| s.terms.iter()).sum();
        let probs = logits.f_softmax(0, Kind::Double)?;
        let [side_a, side_b]: [ContrastSide; 2] =
            sides.try_into().map_err(|_| crate::Error::invalid("contrast", "two sides"))?;
        Ok(Contrast {
            logits: [logits.f_double_value(&[a])?, logits.f_double_value(&[b])?],
            probs: [probs.f_double_value(&[a])?, probs.f_double_value(&[b])?],
            margin: logits.f_double_value(&[a])? - logits.f_double_value(&[b])?,
            sides: [side_a, side_b],
            other_channels: all - shown_sum,
            bias: bias.f_double_value(&[a])? - bias.f_double_value(&[b])?,
            grid: (z.size()[2], z.size()[3]),
            max_logit_change: change,
        })
    }
}
