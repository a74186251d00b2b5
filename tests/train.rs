//! Training U on a bank: purity of the prototypes rises, U stays orthogonal,
//! logits do not move, the maps are computed once, and a seed fixes the result.
mod common;
use common::*;
use epic::data::{Dataset, FashionMnist, Loader};
use epic::disentangle::{AdamConfig, Disentangler, Gradient, MatrixKind, Schedule, ScheduleKind, TrainConfig};
use epic::features::{extract, ExtractOptions, FeatureMemo};
use epic::model::Network;
use epic::Study;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// ResNet-18 with seeded random weights (C = 512 keeps U's exponential cheap on
/// two cores) on 40 Fashion-MNIST images at 64×64.
fn setup() -> (Network, Arc<dyn Dataset>) {
    let mut net = Network::new("resnet18", 10, Device::Cpu).unwrap();
    let state: Vec<(String, Tensor)> = net
        .parameter_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let t = if name.ends_with("running_var") {
                Tensor::ones(shape.as_slice(), (Kind::Float, Device::Cpu))
            } else {
                randn(&shape, 100 + i as u64)
                    * if name.contains("conv") || name.contains("downsample.0") { 0.05 } else { 0.1 }
            };
            (name, t)
        })
        .collect();
    net.load_state_dict(&state, std::path::Path::new("random")).unwrap();
    net.set_sizes(64, 64);
    (net, Arc::new(FashionMnist::open(None, "train", Some(4)).unwrap()))
}

fn config(seed: u64) -> TrainConfig {
    TrainConfig {
        schedule: Schedule::new(ScheduleKind::Lin, 3, 2, 2).unwrap(),
        epochs_per_step: 2,
        batch_size: 1024,
        adam: AdamConfig::new(1e-3, 1e-5).unwrap(),
        seed,
        gradient: Gradient::default(),
        checkpoint: None,
        quiet: true,
    }
}

#[test]
fn training_raises_prototype_purity_and_keeps_logits() {
    let (net, ds) = setup();
    let (bank, _) = extract(&net, ds.clone(), &ExtractOptions { quiet: true, ..Default::default() }).unwrap();
    let loader = Loader::new(ds.clone(), net.preprocess(), 16);
    let net = std::rc::Rc::new(net);
    // A memo that starts empty: every map training needs is computed here.
    let study = Study::from_bank(net.clone(), ds, bank, 16, FeatureMemo::new(1 << 30, false)).unwrap();
    let mut d = Disentangler::identity(MatrixKind::Orthogonal, net.channels(), Device::Cpu).unwrap();
    let before = study.purity(&d, 2).unwrap();
    let history = study.train(&mut d, &config(42)).unwrap();
    let after = study.purity(&d, 2).unwrap();
    let memo = study.memo_stats();
    eprintln!(
        "purity at m = 2: {before:.4} → {after:.4}; history {history:?}; memo {} hits, {} misses",
        memo.hits, memo.misses
    );
    assert!(after > before + 0.01, "{before} → {after}");
    assert_eq!(history.steps.iter().map(|s| s.0).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(history.epochs.len(), 4);
    assert!(
        (history.steps[0].1
            - study.purity(&Disentangler::identity(MatrixKind::Orthogonal, 512, Device::Cpu).unwrap(), 3).unwrap())
        .abs()
            < 1e-9
    );
    // Maps of the 40 images were computed at most once each.
    let memo = study.memo_stats();
    assert!(memo.misses <= 40, "{} maps computed", memo.misses);

    let u = d.matrix().unwrap();
    let eye = Tensor::eye(512, (Kind::Float, Device::Cpu));
    assert!(max_abs_diff(&u.tr().matmul(&u), &eye) < 1e-5);
    let z = net.features(&loader.images(&[0, 1, 2, 3]).unwrap().0).unwrap();
    let change = epic::explain::max_logit_change(&z, net.head_weight(), net.head_bias(), &u).unwrap();
    assert!(change < 1e-4, "logit change {change}");
}

#[test]
fn the_same_seed_gives_the_same_u_bit_for_bit() {
    let (net, ds) = setup();
    let (bank, _) = extract(&net, ds.clone(), &ExtractOptions { quiet: true, ..Default::default() }).unwrap();
    let net = std::rc::Rc::new(net);
    let bank = std::rc::Rc::new(bank);
    let run = |seed| {
        let fresh = epic::features::Bank::new(
            bank.sums().unwrap(),
            bank.labels.shallow_clone(),
            bank.predicted.shallow_clone(),
            bank.valid.shallow_clone(),
            bank.map_size,
        );
        let study = Study::from_bank(net.clone(), ds.clone(), fresh, 16, FeatureMemo::new(1 << 30, false)).unwrap();
        let mut d = Disentangler::identity(MatrixKind::Orthogonal, 512, Device::Cpu).unwrap();
        let h = study.train(&mut d, &config(seed)).unwrap();
        (d.a_raw().copy(), h)
    };
    let (a1, h1) = run(7);
    let (a2, h2) = run(7);
    assert!(a1.equal(&a2) && h1 == h2, "same seed, different result");
    let (a3, _) = run(8);
    assert!(!a1.equal(&a3), "another seed shuffles differently");
}

/// A bank kept on disk (`dataloader.bank_mib` below its size) with a memo that
/// holds nothing: every selection streams the chunks, and each step's prototype
/// maps are recomputed, only theirs. Training ends where the held bank's does:
/// the same selections, and U within float noise (recomputed maps come from
/// batches of another composition).
#[test]
fn training_on_a_bank_on_disk_with_no_memo_matches_the_held_bank() {
    let (net, ds) = setup();
    let tmp = tempfile::tempdir().unwrap();
    let options = ExtractOptions { quiet: true, chunk: 16, cache: Some(tmp.path().into()), ..Default::default() };
    let (held, _) = extract(&net, ds.clone(), &options).unwrap();
    let (disk, _) = extract(&net, ds.clone(), &ExtractOptions { bank_mib: Some(0), ..options }).unwrap();
    assert!(disk.on_disk());
    let net = std::rc::Rc::new(net);
    let held = Study::from_bank(net.clone(), ds.clone(), held, 16, FeatureMemo::new(1 << 30, false)).unwrap();
    let disk = Study::from_bank(net.clone(), ds, disk, 16, FeatureMemo::new(0, false)).unwrap();
    let train = |study: &Study| {
        let mut d = Disentangler::identity(MatrixKind::Orthogonal, 512, Device::Cpu).unwrap();
        let h = study.train(&mut d, &config(5)).unwrap();
        (d, h)
    };
    let ((dh, hh), (dd, hd)) = (train(&held), train(&disk));
    for (a, b) in hh.steps.iter().zip(&hd.steps).chain(hh.epochs.iter().zip(&hd.epochs)) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() < 1e-5, "purity {} vs {}", a.1, b.1);
    }
    let (uh, ud) = (dh.matrix().unwrap(), dd.matrix().unwrap());
    assert!(max_abs_diff(&uh, &ud) < 1e-5, "U differs by {}", max_abs_diff(&uh, &ud));
    let (mh, md) = (held.memo_stats(), disk.memo_stats());
    assert_eq!(md.maps, 0);
    // Held: each image's map once. On disk: each step's prototype images again,
    // at most min(N, C·m) a step (two steps here).
    assert!(mh.misses <= 40 && md.misses > mh.misses && md.misses <= 2 * 40, "{mh:?} {md:?}");
    let (a, b) = (held.bank().top_prototypes(Some(&uh), 2).unwrap(), disk.bank().top_prototypes(Some(&ud), 2).unwrap());
    assert!(a.equal(&b), "the trained U's prototypes differ");
}
