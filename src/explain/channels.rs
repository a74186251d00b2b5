//! Which channels explain a prediction.
//!
//! A channel's contribution to class y is A′`[y,c]`·ReLU(avgpool(Ẑ))_c; the explanation
//! shows the k channels with the largest contributions.
//!
//! Ranking uses libtorch's `topk`, as the reference does, so tied contributions are
//! broken exactly as there. Ties arise in practice only among channels that
//! contribute exactly 0 (ReLU zeroed them: +0.0 and −0.0 alike) and so explain
//! nothing; scores say which entries those are.
use super::head::linear;
use crate::check;
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// The k channels that explain each image's class, with their contributions.
#[derive(Debug)]
pub struct TopChannels {
    /// The explained class per image: the prediction, or the class asked for. `[B]` int64.
    pub classes: Tensor,
    /// Channel indices, largest contribution first. `[B,k]` int64.
    pub channels: Tensor,
    /// A′`[class,c]`·ReLU(avgpool(Ẑ))_c for those channels. `[B,k]` float.
    pub scores: Tensor,
    /// The modified head's logits. `[B,K]` float.
    pub logits: Tensor,
}

/// Top-k explaining channels: `rotated` Ẑ `[B,C,H,W]`, `weight_modified` A′ `[K,C]`,
/// `bias` `[K]` → [`TopChannels`] with `channels` `[B,k]` int64.
///
/// `classes` `[B]` int picks the class to explain per image; `None` explains the
/// predicted class (argmax of the modified head's logits).
pub fn top_channels(
    rotated: &Tensor,
    weight_modified: &Tensor,
    bias: &Tensor,
    k: i64,
    classes: Option<&Tensor>,
) -> Result<TopChannels> {
    check::dims(rotated, "rotated", 4, "[B,C,H,W]")?;
    check::float(rotated, "rotated")?;
    let (b, c) = (rotated.size()[0], rotated.size()[1]);
    if k < 1 || k > c {
        return Err(Error::invalid(
            "top_channels",
            format!("k = {k}; the features have {c} channels, use 1 <= k <= {c}"),
        ));
    }
    let pooled = rotated.f_mean_dim([2i64, 3].as_slice(), false, None::<Kind>)?;
    let logits = linear(&pooled, weight_modified, bias)?;
    let classes = match classes {
        None => logits.f_argmax(1, false)?,
        Some(t) => {
            let t = check::indices(t, "classes")?;
            if t.size() != [b] {
                return Err(Error::Shape { what: "classes".into(), expected: format!("[{b}]"), got: t.size() });
            }
            check::in_range(&t, "classes", weight_modified.size()[0])?;
            t.f_to_device(rotated.device())?
        }
    };
    let contributions = weight_modified.f_index_select(0, &classes)?.f_mul(&pooled.f_relu()?)?; // [B,C]
    let (scores, channels) = contributions.f_topk(k, 1, true, true)?;
    Ok(TopChannels { classes, channels, scores, logits })
}
