//! Script bindings for data sets: the `Dataset` handle, `image_folder`,
//! `fashion_mnist`, images as tensors and as pictures.
use super::model::ModelHandle;
use super::tensor::ScriptTensor;
use crate::data::{Dataset, FashionMnist, ImageFolder};
use crate::model::Preprocess;
use rhai::plugin::*;
use rhai::{Array, INT};
use std::path::Path;
use std::sync::Arc;

/// A script's handle on a data set, bound to a network's transform.
#[derive(Clone)]
pub struct DatasetHandle {
    /// The images and labels.
    pub dataset: Arc<dyn Dataset>,
    /// The transform of the model the data set was opened for.
    pub preprocess: Preprocess,
}

fn index(i: INT, what: &str) -> Result<usize, Box<EvalAltResult>> {
    usize::try_from(i).map_err(|_| format!("{what}: index {i} is negative").into())
}

/// The script functions for data sets (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// A libtorch tensor.
    pub type Tensor = ScriptTensor;
    /// A pretrained network split into backbone and head.
    pub type Model = ModelHandle;
    /// A labelled image set with the transform of the model it was opened for.
    pub type Dataset = DatasetHandle;
    /// An RGB picture.
    pub type Picture = crate::render::Canvas;

    /// An image folder laid out as torchvision's ImageFolder (one sub-folder per
    /// class), in its order, with the model's transform.
    ///
    /// ```rhai
    /// let train = image_folder("data/imagenet-1k/train", model);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn image_folder(path: &str, model: Model) -> Result<Dataset, Box<EvalAltResult>> {
        let folder = ImageFolder::open(Path::new(path)).map_err(crate::Error::from)?;
        if !folder.skipped().is_empty() {
            eprintln!(
                "warning: {}: skipped {} non-image file(s), e.g. {}",
                path,
                folder.skipped().len(),
                folder.skipped()[0].display()
            );
        }
        Ok(DatasetHandle { dataset: Arc::new(folder), preprocess: model.0.preprocess() })
    }

    /// Fashion-MNIST (Debian's dataset-fashion-mnist): split `"train"` or `"test"`,
    /// the first `per_class` images of each class (0: all), with the model's transform.
    ///
    /// ```rhai
    /// let train = fashion_mnist("train", 20, model);   // 200 images
    /// ```
    #[rhai_fn(return_raw)]
    pub fn fashion_mnist(split: &str, per_class: INT, model: Model) -> Result<Dataset, Box<EvalAltResult>> {
        let per_class = (per_class > 0).then_some(per_class as usize);
        let ds = FashionMnist::open(None, split, per_class).map_err(crate::Error::from)?;
        Ok(DatasetHandle { dataset: Arc::new(ds), preprocess: model.0.preprocess() })
    }

    /// Number of images.
    #[rhai_fn(pure, name = "len")]
    pub fn dataset_len(d: &mut Dataset) -> INT {
        d.dataset.len() as INT
    }

    /// Image i through the model's transform: `[3,crop,crop]` f32.
    #[rhai_fn(pure, name = "image", return_raw)]
    pub fn dataset_image(d: &mut Dataset, i: INT) -> Result<Tensor, Box<EvalAltResult>> {
        let img = d.dataset.image(index(i, "image")?).map_err(crate::Error::from)?;
        Ok(ScriptTensor(crate::data::transform::preprocess(&img, &d.preprocess).map_err(crate::Error::from)?))
    }

    /// Class index of image i.
    #[rhai_fn(pure, name = "label", return_raw)]
    pub fn dataset_label(d: &mut Dataset, i: INT) -> Result<INT, Box<EvalAltResult>> {
        match usize::try_from(i) {
            Ok(i) if i < d.dataset.len() => Ok(d.dataset.label(i)),
            _ => Err(format!("label: image {i} is out of range 0..{}", d.dataset.len()).into()),
        }
    }

    /// The class names, by class index.
    #[rhai_fn(pure)]
    pub fn class_names(d: &mut Dataset) -> Array {
        d.dataset.class_names().iter().map(|s| Dynamic::from(s.clone())).collect()
    }

    /// Image i of a data set as the network sees it (resized and cropped, not
    /// normalised), as a picture: `.save(path)` writes it, a notebook shows it.
    ///
    /// ```rhai
    /// let p = picture(val, 0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn picture(dataset: Dataset, i: INT) -> Result<Picture, Box<EvalAltResult>> {
        let img = dataset.dataset.image(index(i, "picture")?).map_err(crate::Error::from)?;
        let rgb = crate::data::transform::cropped_rgb(&img, &dataset.preprocess).map_err(crate::Error::from)?;
        Ok(Picture::from_image(rgb))
    }

    /// Writes the picture to a .jpg/.png.
    #[rhai_fn(pure, name = "save", return_raw)]
    pub fn save_picture(p: &mut Picture, path: &str) -> Result<(), Box<EvalAltResult>> {
        Ok(p.save(Path::new(path))?)
    }

    /// `Picture(64×64)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_picture(p: &mut Picture) -> String {
        let (w, h) = p.size();
        format!("Picture({w}×{h})")
    }

    /// `Dataset(200 images, 10 classes)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_dataset(d: &mut Dataset) -> String {
        format!("Dataset({} images, {} classes)", d.dataset.len(), d.dataset.class_names().len())
    }
}
