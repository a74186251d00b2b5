//! The one table of architectures epic builds natively: for each, its name, its
//! builder, the legacy key renamer its checkpoints may need, torchvision's file
//! name of its ImageNet weights, and its eval transform.
//!
//! Adding an architecture is one new file under `src/model/` (a builder returning
//! [`Parts`](super::Parts)) and one row in [`ARCHITECTURES`]; everything else —
//! `load_model`, `epic predict`, the messages that list known names or say which
//! weights file to download — reads this table. See ARCHITECTURE.md.
//!
//! [`REFUSED`] lists the torchvision classifiers EPIC cannot apply to, each with
//! the reason; asking for one is [`Error::NotPoolingLinear`](super::Error::NotPoolingLinear).
use super::backbone::{Builder, Interpolation, KeyRenamer, Preprocess};
use super::{
    convnext, densenet, efficientnet, efficientnet_lite, googlenet, inception, mobilenet_v2, regnet, resnet,
    shufflenet_v2, swin,
};

/// One architecture.
#[derive(Clone, Copy)]
pub struct Architecture {
    /// The name configs and scripts use (torchvision's, where it has one).
    pub name: &'static str,
    /// Builds the backbone and head with zero parameters.
    pub build: Builder,
    /// Renames legacy checkpoint keys before matching (DenseNet's `norm.1`).
    pub rename: Option<KeyRenamer>,
    /// torchvision's file name of the default ImageNet weights (as `torch.hub`
    /// saves them), for messages that say what to download.
    pub torchvision_weights: Option<&'static str>,
    /// The eval transform those weights were evaluated with.
    pub preprocess: Preprocess,
    /// Keys accepted in a state dict and not read from it: buffers the builder
    /// computes itself (Swin's position tables) and parts epic does not build
    /// (the auxiliary classifiers of GoogLeNet, `aux1.*`/`aux2.*`, and
    /// Inception-v3, `AuxLogits.*`, which torchvision's pretrained files hold).
    pub derived: Option<fn(&str) -> bool>,
}

const fn arch(name: &'static str, build: Builder, weights: &'static str, preprocess: Preprocess) -> Architecture {
    Architecture { name, build, rename: None, torchvision_weights: Some(weights), preprocess, derived: None }
}

const fn swin(name: &'static str, build: Builder, weights: &'static str, resize: i64, crop: i64) -> Architecture {
    Architecture {
        derived: Some(swin::is_derived_buffer),
        ..arch(name, build, weights, Preprocess::imagenet_bicubic(resize, crop))
    }
}

const BICUBIC: Interpolation = Interpolation::Bicubic;
const BILINEAR: Interpolation = Interpolation::Bilinear;

/// A row whose checkpoints may hold keys epic accepts and does not read.
const fn ignoring(keys: fn(&str) -> bool, row: Architecture) -> Architecture {
    Architecture { derived: Some(keys), ..row }
}

/// torchvision's ImageNet mean/std with another resize, crop and filter.
const fn sized(resize: i64, crop: i64, interpolation: Interpolation) -> Preprocess {
    Preprocess { resize, crop, interpolation, ..Preprocess::IMAGENET }
}

const fn densenet(name: &'static str, build: Builder, weights: &'static str) -> Architecture {
    Architecture { rename: Some(densenet::rename_legacy_key), ..arch(name, build, weights, Preprocess::IMAGENET) }
}

/// Every architecture epic builds natively, in the order messages list them.
///
/// Where torchvision has `IMAGENET1K_V1` and `IMAGENET1K_V2` weights, the file and
/// transform are V1's (resize 256); `resnext101_64x4d` and ShuffleNet V2 ×1.5/×2.0
/// have only weights evaluated at resize 232. `Network::set_sizes` selects another.
pub const ARCHITECTURES: &[Architecture] = &[
    Architecture {
        name: "efficientnet_lite0",
        build: efficientnet_lite::lite0,
        rename: None,
        torchvision_weights: None,
        preprocess: Preprocess::LITE,
        derived: None,
    },
    arch("resnet18", resnet::resnet18, "resnet18-f37072fd.pth", Preprocess::IMAGENET),
    arch("resnet34", resnet::resnet34, "resnet34-b627a593.pth", Preprocess::IMAGENET),
    arch("resnet50", resnet::resnet50, "resnet50-11ad3fa6.pth", Preprocess::IMAGENET),
    arch("resnet101", resnet::resnet101, "resnet101-cd907fc2.pth", Preprocess::IMAGENET),
    arch("resnet152", resnet::resnet152, "resnet152-f82ba261.pth", Preprocess::IMAGENET),
    arch("resnext50_32x4d", resnet::resnext50_32x4d, "resnext50_32x4d-7cdf4587.pth", Preprocess::IMAGENET),
    arch("resnext101_32x8d", resnet::resnext101_32x8d, "resnext101_32x8d-8ba56ff5.pth", Preprocess::IMAGENET),
    arch(
        "resnext101_64x4d",
        resnet::resnext101_64x4d,
        "resnext101_64x4d-173b62eb.pth",
        Preprocess::imagenet_resize(232),
    ),
    arch("wide_resnet50_2", resnet::wide_resnet50_2, "wide_resnet50_2-95faca4d.pth", Preprocess::IMAGENET),
    arch("wide_resnet101_2", resnet::wide_resnet101_2, "wide_resnet101_2-32ee1156.pth", Preprocess::IMAGENET),
    densenet("densenet121", densenet::densenet121, "densenet121-a639ec97.pth"),
    densenet("densenet161", densenet::densenet161, "densenet161-8d451a50.pth"),
    densenet("densenet169", densenet::densenet169, "densenet169-b2777c0a.pth"),
    densenet("densenet201", densenet::densenet201, "densenet201-c1103571.pth"),
    arch("mobilenet_v2", mobilenet_v2::mobilenet_v2, "mobilenet_v2-b0353104.pth", Preprocess::IMAGENET),
    arch(
        "shufflenet_v2_x0_5",
        shufflenet_v2::shufflenet_v2_x0_5,
        "shufflenetv2_x0.5-f707e7126e.pth",
        Preprocess::IMAGENET,
    ),
    arch(
        "shufflenet_v2_x1_0",
        shufflenet_v2::shufflenet_v2_x1_0,
        "shufflenetv2_x1-5666bf0f80.pth",
        Preprocess::IMAGENET,
    ),
    arch(
        "shufflenet_v2_x1_5",
        shufflenet_v2::shufflenet_v2_x1_5,
        "shufflenetv2_x1_5-3c479a10.pth",
        Preprocess::imagenet_resize(232),
    ),
    arch(
        "shufflenet_v2_x2_0",
        shufflenet_v2::shufflenet_v2_x2_0,
        "shufflenetv2_x2_0-8be3c8ee.pth",
        Preprocess::imagenet_resize(232),
    ),
    arch("convnext_tiny", convnext::convnext_tiny, "convnext_tiny-983f1562.pth", Preprocess::imagenet_resize(236)),
    arch("convnext_small", convnext::convnext_small, "convnext_small-0c510722.pth", Preprocess::imagenet_resize(230)),
    arch("convnext_base", convnext::convnext_base, "convnext_base-6075fbad.pth", Preprocess::imagenet_resize(232)),
    arch("convnext_large", convnext::convnext_large, "convnext_large-ea097f82.pth", Preprocess::imagenet_resize(232)),
    swin("swin_t", swin::swin_t, "swin_t-704ceda3.pth", 232, 224),
    swin("swin_s", swin::swin_s, "swin_s-5e29d889.pth", 246, 224),
    swin("swin_b", swin::swin_b, "swin_b-68c6b09e.pth", 238, 224),
    swin("swin_v2_t", swin::swin_v2_t, "swin_v2_t-b137f0e2.pth", 260, 256),
    swin("swin_v2_s", swin::swin_v2_s, "swin_v2_s-637d8ceb.pth", 260, 256),
    swin("swin_v2_b", swin::swin_v2_b, "swin_v2_b-781e5279.pth", 272, 256),
    // EfficientNet: torchvision's IMAGENET1K_V1 weights (B1 also has V2) and their
    // transforms: bicubic for B0–B7 and V2-L, bilinear for V2-S/M.
    arch(
        "efficientnet_b0",
        efficientnet::efficientnet_b0,
        "efficientnet_b0_rwightman-7f5810bc.pth",
        sized(256, 224, BICUBIC),
    ),
    arch(
        "efficientnet_b1",
        efficientnet::efficientnet_b1,
        "efficientnet_b1_rwightman-bac287d4.pth",
        sized(256, 240, BICUBIC),
    ),
    arch(
        "efficientnet_b2",
        efficientnet::efficientnet_b2,
        "efficientnet_b2_rwightman-c35c1473.pth",
        sized(288, 288, BICUBIC),
    ),
    arch(
        "efficientnet_b3",
        efficientnet::efficientnet_b3,
        "efficientnet_b3_rwightman-b3899882.pth",
        sized(320, 300, BICUBIC),
    ),
    arch(
        "efficientnet_b4",
        efficientnet::efficientnet_b4,
        "efficientnet_b4_rwightman-23ab8bcd.pth",
        sized(384, 380, BICUBIC),
    ),
    arch(
        "efficientnet_b5",
        efficientnet::efficientnet_b5,
        "efficientnet_b5_lukemelas-1a07897c.pth",
        sized(456, 456, BICUBIC),
    ),
    arch(
        "efficientnet_b6",
        efficientnet::efficientnet_b6,
        "efficientnet_b6_lukemelas-24a108a5.pth",
        sized(528, 528, BICUBIC),
    ),
    arch(
        "efficientnet_b7",
        efficientnet::efficientnet_b7,
        "efficientnet_b7_lukemelas-c5b4e57e.pth",
        sized(600, 600, BICUBIC),
    ),
    arch(
        "efficientnet_v2_s",
        efficientnet::efficientnet_v2_s,
        "efficientnet_v2_s-dd5fe13b.pth",
        sized(384, 384, BILINEAR),
    ),
    arch(
        "efficientnet_v2_m",
        efficientnet::efficientnet_v2_m,
        "efficientnet_v2_m-dc08266a.pth",
        sized(480, 480, BILINEAR),
    ),
    arch(
        "efficientnet_v2_l",
        efficientnet::efficientnet_v2_l,
        "efficientnet_v2_l-59c71312.pth",
        Preprocess { mean: [0.5; 3], std: [0.5; 3], ..sized(480, 480, BICUBIC) },
    ),
    // RegNet: IMAGENET1K_V1 (256 → 224, bilinear); Y-128GF has only SWAG weights,
    // IMAGENET1K_SWAG_E2E_V1 (384 → 384, bicubic).
    arch("regnet_x_400mf", regnet::regnet_x_400mf, "regnet_x_400mf-adf1edd5.pth", Preprocess::IMAGENET),
    arch("regnet_x_800mf", regnet::regnet_x_800mf, "regnet_x_800mf-ad17e45c.pth", Preprocess::IMAGENET),
    arch("regnet_x_1_6gf", regnet::regnet_x_1_6gf, "regnet_x_1_6gf-e3633e7f.pth", Preprocess::IMAGENET),
    arch("regnet_x_3_2gf", regnet::regnet_x_3_2gf, "regnet_x_3_2gf-f342aeae.pth", Preprocess::IMAGENET),
    arch("regnet_x_8gf", regnet::regnet_x_8gf, "regnet_x_8gf-03ceed89.pth", Preprocess::IMAGENET),
    arch("regnet_x_16gf", regnet::regnet_x_16gf, "regnet_x_16gf-2007eb11.pth", Preprocess::IMAGENET),
    arch("regnet_x_32gf", regnet::regnet_x_32gf, "regnet_x_32gf-9d47f8d0.pth", Preprocess::IMAGENET),
    arch("regnet_y_400mf", regnet::regnet_y_400mf, "regnet_y_400mf-c65dace8.pth", Preprocess::IMAGENET),
    arch("regnet_y_800mf", regnet::regnet_y_800mf, "regnet_y_800mf-1b27b58c.pth", Preprocess::IMAGENET),
    arch("regnet_y_1_6gf", regnet::regnet_y_1_6gf, "regnet_y_1_6gf-b11a554e.pth", Preprocess::IMAGENET),
    arch("regnet_y_3_2gf", regnet::regnet_y_3_2gf, "regnet_y_3_2gf-b5a9779c.pth", Preprocess::IMAGENET),
    arch("regnet_y_8gf", regnet::regnet_y_8gf, "regnet_y_8gf-d0d0e4a8.pth", Preprocess::IMAGENET),
    arch("regnet_y_16gf", regnet::regnet_y_16gf, "regnet_y_16gf-9e6ed7dd.pth", Preprocess::IMAGENET),
    arch("regnet_y_32gf", regnet::regnet_y_32gf, "regnet_y_32gf-4dee3f7a.pth", Preprocess::IMAGENET),
    arch("regnet_y_128gf", regnet::regnet_y_128gf, "regnet_y_128gf_swag-c8ce3e52.pth", sized(384, 384, BICUBIC)),
    // Both with transform_input on, as torchvision's pretrained builders set it.
    ignoring(
        googlenet::is_aux_key,
        arch("googlenet", googlenet::googlenet, "googlenet-1378be20.pth", Preprocess::IMAGENET),
    ),
    ignoring(
        inception::is_aux_key,
        arch("inception_v3", inception::inception_v3, "inception_v3_google-0cc3c7bd.pth", sized(342, 299, BILINEAR)),
    ),
];

const VIT: &str = "its head reads the class token, not an average of a feature map";
const MLP_AFTER_POOL: &str =
    "its classifier is an MLP (Linear, activation, Linear) after pooling, not one linear layer";
const VGG: &str = "it pools to a fixed grid (7×7) and flattens it into an MLP of three linear layers, \
                   not one linear layer on the average of a feature map";

/// torchvision classifiers EPIC cannot apply to, with why: EPIC needs the
/// logits to be one linear layer applied to the global average of a feature map.
pub const REFUSED: &[(&str, &str)] = &[
    ("vit_b_16", VIT),
    ("vit_b_32", VIT),
    ("vit_l_16", VIT),
    ("vit_l_32", VIT),
    ("vit_h_14", VIT),
    ("maxvit_t", "its head is an MLP after pooling (LayerNorm, Linear, Tanh, Linear), not one linear layer"),
    ("mobilenet_v3_small", MLP_AFTER_POOL),
    ("mobilenet_v3_large", MLP_AFTER_POOL),
    ("vgg11", VGG),
    ("vgg11_bn", VGG),
    ("vgg13", VGG),
    ("vgg13_bn", VGG),
    ("vgg16", VGG),
    ("vgg16_bn", VGG),
    ("vgg19", VGG),
    ("vgg19_bn", VGG),
    (
        "alexnet",
        "it pools to a fixed grid (6×6) and flattens it into an MLP of three linear layers, \
         not one linear layer on the average of a feature map",
    ),
    ("squeezenet1_0", "its classifier is a 1×1 convolution and a ReLU before pooling, not a linear layer after it"),
    ("squeezenet1_1", "its classifier is a 1×1 convolution and a ReLU before pooling, not a linear layer after it"),
];

/// The architecture called `name`, or the error that says why EPIC refuses it
/// ([`REFUSED`]) or lists the known ones.
pub fn find(name: &str) -> super::Result<&'static Architecture> {
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
        return Err(super::Error::NotPoolingLinear { name: name.to_string(), why });
    }
    ARCHITECTURES.iter().find(|a| a.name == name).ok_or_else(|| super::Error::UnknownArchitecture {
        name: name.to_string(),
        known: names().map(str::to_string).collect(),
    })
}

/// Every known name, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    ARCHITECTURES.iter().map(|a| a.name)
}

/// torchvision's file name of `name`'s default ImageNet weights, if it has one.
pub fn torchvision_weights_file(name: &str) -> Option<&'static str> {
    ARCHITECTURES.iter().find(|a| a.name == name).and_then(|a| a.torchvision_weights)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_every_row_builds() {
        let mut seen = std::collections::BTreeSet::new();
        for a in super::ARCHITECTURES {
            assert!(seen.insert(a.name), "{} twice", a.name);
        }
        // The cheapest row builds; the others are built against torchvision in tests/.
        let p = super::super::params::Params::new(tch::Device::Cpu);
        let parts = (super::find("resnet18").unwrap().build)(&p, 10).unwrap();
        assert_eq!((parts.channels, parts.head_prefix), (512, "fc"));
        let e = super::find("resnet9000").err().unwrap().to_string();
        assert!(e.contains("resnet9000: unknown model; known: efficientnet_lite0, resnet18"), "{e}");
    }

    #[test]
    fn refused_names_say_why_and_are_not_built() {
        for (name, why) in super::REFUSED {
            assert!(super::ARCHITECTURES.iter().all(|a| a.name != *name), "{name} is both built and refused");
            match super::find(name) {
                Err(super::super::Error::NotPoolingLinear { name: n, why: w }) => {
                    assert_eq!((n.as_str(), w), (*name, *why))
                }
                _ => panic!("{name} not refused"),
            }
        }
        let e = super::find("vit_b_16").err().unwrap().to_string();
        assert!(e.contains("class token") && e.contains("torchscript"), "{e}");
    }
}
