//! The one table of architectures epic builds natively: for each, its name, its
//! builder, the legacy key renamer its checkpoints may need, torchvision's file
//! name of its ImageNet weights, and its eval transform.
//!
//! Adding an architecture is one new file under `src/model/` (a builder returning
//! [`Parts`](super::Parts)) and one row in [`ARCHITECTURES`]; everything else —
//! `load_model`, `epic predict`, the messages that list known names or say which
//! weights file to download — reads this table. See ARCHITECTURE.md.
use super::backbone::{Builder, KeyRenamer, Preprocess};
use super::{convnext, densenet, efficientnet_lite, resnet, swin};

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
    /// Keys of buffers the builder computes itself (Swin's position tables):
    /// accepted in a state dict, not read from it.
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
