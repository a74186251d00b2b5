//! Top-k class predictions of a network on images, named by the one class-name
//! policy ([`classes::names_for_head`]).
use crate::data::{classes, transform};
use crate::model::Network;
use crate::study::Study;
use std::path::Path;
use tch::{Kind, Tensor};

/// One predicted class.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The class index.
    pub class: i64,
    /// Its name.
    pub name: String,
    /// Softmax probability.
    pub prob: f64,
}

/// Top-`k` predictions per image: `images` `[B,3,H,W]` normalised → B lists,
/// most probable first. `names` label the classes (see [`classes::names_for`]).
pub fn predict(net: &Network, images: &Tensor, k: i64, names: &[String]) -> crate::Result<Vec<Vec<Prediction>>> {
    let logits = net.logits(images).map_err(|e| crate::Error::invalid(net.name(), e.to_string()))?;
    let k = k.clamp(1, net.num_classes());
    let (p, idx) = logits.f_softmax(1, Kind::Float)?.f_topk(k, 1, true, true)?;
    let (p, idx) = (
        Vec::<f64>::try_from(p.f_reshape([-1])?.f_to_kind(Kind::Double)?)?,
        Vec::<i64>::try_from(idx.f_reshape([-1])?)?,
    );
    Ok(p.chunks(k as usize)
        .zip(idx.chunks(k as usize))
        .map(|(ps, cs)| {
            ps.iter()
                .zip(cs)
                .map(|(&prob, &class)| Prediction {
                    class,
                    name: names.get(class as usize).cloned().unwrap_or_default(),
                    prob,
                })
                .collect()
        })
        .collect())
}

/// Top-`k` predictions for an image file, through the network's transform.
pub fn predict_file(net: &Network, path: &Path, k: i64) -> crate::Result<Vec<Prediction>> {
    let img = crate::data::image::load_rgb(path).map_err(|e| crate::Error::invalid("predict", e.to_string()))?;
    let x = transform::preprocess(&img, &net.preprocess())
        .map_err(|e| crate::Error::invalid("predict", format!("{}: {e}", path.display())))?;
    let names = classes::names_for_head(net.num_classes(), net.class_names());
    Ok(predict(net, &x.f_unsqueeze(0)?, k, &names)?.remove(0))
}

/// Top-`k` predictions for a preprocessed image `[3,H,W]` (as a data set gives it).
pub fn predict_image(net: &Network, image: &Tensor, k: i64) -> crate::Result<Vec<Prediction>> {
    let names = classes::names_for_head(net.num_classes(), net.class_names());
    Ok(predict(net, &image.f_unsqueeze(0)?, k, &names)?.remove(0))
}

impl Study {
    /// Top-`k` predictions of the study's network for a preprocessed image
    /// `[3,H,W]`, named as the study's explanations name them.
    pub fn predict(&self, image: &Tensor, k: i64) -> crate::Result<Vec<Prediction>> {
        Ok(predict(self.network(), &image.f_unsqueeze(0)?, k, &self.class_names())?.remove(0))
    }
}
