//! The one table of architectures epic builds natively: for each, its name, its
//! builder, the legacy key renamer its checkpoints may need, torchvision's file
//! name of its ImageNet weights, and its eval transform.
//!
//! Adding an architecture is one new file under `src/model/` (a builder returning
//! [`Parts`](super::Parts)) and one row in [`ARCHITECTURES`]; everything else —
//! `load_model`, `epic predict`, the messages that list known names or say which
//! weights file to download — reads this table. See ARCHITECTURE.md.
use super::backbone::{Builder, Interpolation, KeyRenamer, Preprocess};
use super::{convnext, densenet, efficientnet, efficientnet_lite, googlenet, inception, regnet, resnet, swin};

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

/// Every architecture epic builds natively, in the order messages list them.
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
    Architecture {
        rename: Some(densenet::rename_legacy_key),
        ..arch("densenet121", densenet::densenet121, "densenet121-a639ec97.pth", Preprocess::IMAGENET)
    },
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

/// The architecture called `name`, or the error that lists the known ones.
pub fn find(name: &str) -> super::Result<&'static Architecture> {
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
}
