//! What an architecture file builds, and nothing else: the [`Backbone`] trait (the
//! part of a network before global average pooling), the [`Parts`] a builder
//! returns, the eval transform [`Preprocess`] and the legacy key renamer type.
//!
//! This is the leaf of `model`: architecture files import it, the
//! [`registry`](super::registry) lists them, and [`Network`](super::Network)
//! assembles a registry entry into a classifier. Nothing here imports any of them.
use super::layers::Linear;
use super::Result;
use tch::Tensor;

/// The part of a network before global average pooling.
pub trait Backbone {
    /// Normalised images `[B,3,H,W]` f32 → feature map `[B,C,h,w]` f32.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Whether [`forward`](Self::forward) is faster on channels-last input
    /// (NHWC in memory, `[B,3,H,W]` still as the shape): true for convolutional
    /// networks whose every layer keeps that layout, where oneDNN then skips the
    /// reorders around each convolution (about 0.8× the time on a CPU).
    /// [`Network::features`](super::Network::features) uses it in f32 on the
    /// CPU and in f16/bf16 on CUDA. The maps come back in the usual layout.
    fn channels_last(&self) -> bool {
        false
    }
}

/// How images are prepared for a network: resize the shorter side to `resize`
/// (antialiased, with `interpolation`), center-crop `crop`, scale to `[0,1]`, then
/// (x − mean)/std.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// The shorter side's length after resizing, in pixels.
    pub resize: i64,
    /// The side of the square center crop, in pixels.
    pub crop: i64,
    /// Per-channel mean on the `[0,1]` scale (RGB).
    pub mean: [f64; 3],
    /// Per-channel standard deviation on the `[0,1]` scale (RGB).
    pub std: [f64; 3],
    /// The resize's filter.
    pub interpolation: Interpolation,
}

/// The resampling filter of the resize, antialiased as torchvision's tensor
/// `F.resize(..., antialias=True)` does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// Triangle filter; torchvision's default and most architectures' weights.
    #[default]
    Bilinear,
    /// Keys' cubic (a = −0.5); the Swin weights were evaluated with it.
    Bicubic,
}

impl Preprocess {
    /// torchvision's ImageNet eval preset: 256 → 224, ImageNet mean/std.
    pub const IMAGENET: Preprocess = Preprocess {
        resize: 256,
        crop: 224,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        interpolation: Interpolation::Bilinear,
    };
    /// EfficientNet-Lite's: 256 → 224, x = (pixel − 127)/128 on the 0–255 scale.
    pub const LITE: Preprocess = Preprocess {
        resize: 256,
        crop: 224,
        mean: [127.0 / 255.0; 3],
        std: [128.0 / 255.0; 3],
        interpolation: Interpolation::Bilinear,
    };

    /// The ImageNet preset with another resize (torchvision's newer weights were
    /// evaluated at 230–236 before the 224 crop).
    pub const fn imagenet_resize(resize: i64) -> Preprocess {
        Preprocess { resize, ..Preprocess::IMAGENET }
    }

    /// The ImageNet preset resized bicubically to `resize`, cropped to `crop`
    /// (the transform of torchvision's Swin weights).
    pub const fn imagenet_bicubic(resize: i64, crop: i64) -> Preprocess {
        Preprocess { resize, crop, interpolation: Interpolation::Bicubic, ..Preprocess::IMAGENET }
    }
}

/// What an architecture builder returns.
pub struct Parts {
    /// Everything before global average pooling.
    pub backbone: Box<dyn Backbone>,
    /// The linear layer after pooling.
    pub head: Linear,
    /// The head's state-dict prefix (`fc`, `classifier`, `classifier.2`, `_fc`).
    pub head_prefix: &'static str,
    /// C, the channels of the feature map.
    pub channels: i64,
}

/// Maps a checkpoint's key to the architecture's name for it (legacy renames).
pub type KeyRenamer = fn(&str) -> String;

/// An architecture builder: the parameter store at the root and the number of
/// classes → the backbone and head whose parameters it registered.
pub type Builder = fn(&super::params::Params, i64) -> Result<Parts>;
