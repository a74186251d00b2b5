//! The library core from Rust: a `Study` made from a config's typed options
//! carries the whole pipeline, and its verbs agree with each other and with the
//! stage functions underneath — one class-name policy for predictions,
//! explanations and figures, purities equal to a direct pass over the
//! prototypes' maps, and a head fitted on the bank that predicts what the bank says.
mod common;
use common::*;
use epic::prelude::*;
use std::sync::Arc;

/// Lite0 at 32×32 on 2 Fashion-MNIST images per class, with a fitted head.
fn study() -> Study {
    let cfg: serde_yaml::Value = serde_yaml::from_str(
        "model: {name: efficientnet_lite0, resize: 32, crop: 32}\ndataloader: {batch_size: 8, quiet: true}",
    )
    .unwrap();
    let root = Section::root(&cfg).unwrap();
    let net = ModelSpec::from_config(&root.section("model").unwrap(), Device::Cpu).unwrap().load().unwrap();
    let train: Arc<dyn Dataset> = Arc::new(FashionMnist::open(None, "train", Some(2)).unwrap());
    let options = ExtractOptions::from_config(&root.section("dataloader").unwrap()).unwrap();
    assert_eq!(options.batch_size, BatchSize::Fixed(8));
    let study = Study::extract(net, train, &options).unwrap();
    study.fit_head(10, &HeadFit::default()).unwrap().0
}

#[test]
fn predictions_explanations_and_figures_name_classes_alike() {
    let study = study();
    let names = study.class_names();
    assert_eq!(names, study.dataset().class_names(), "a head fitted on Fashion-MNIST is named by it");
    let d = Disentangler::identity(MatrixKind::Orthogonal, study.channels(), Device::Cpu).unwrap();
    let image =
        epic::data::transform::preprocess(&study.dataset().image(3).unwrap(), &study.network().preprocess()).unwrap();
    let prediction = study.predict(&image, 1).unwrap().remove(0);
    // The model alone (as `bank.model()` gives it to scripts) names it the same way.
    let alone = epic::explain::predict_image(study.network(), &image, 1).unwrap().remove(0);
    let e = study.explain(&d, &image, &ExplainOptions { channels: 2, prototypes: 3, class: None }).unwrap();
    assert_eq!((alone.class, alone.name.as_str()), (prediction.class, prediction.name.as_str()));
    assert_eq!((e.class, e.name.as_str()), (prediction.class, prediction.name.as_str()));
    assert_eq!(e.name, names[e.class as usize]);
    assert_eq!((e.channels.len(), e.prototypes[0].len()), (2, 3));
    let figure = study.explanation_figure(&e, &image, false).unwrap();
    assert_eq!(figure.size(), epic::render::figures::explanation_size(2, 3));
}

#[test]
fn the_fitted_head_predicts_what_the_bank_says_and_purity_is_a_direct_pass() {
    let study = study();
    // Predictions kept in the bank equal the network's own on the images.
    let loader = study.loader();
    let (images, _) = loader.images(&[0, 5, 11]).unwrap();
    let direct = study.network().logits(&images).unwrap().argmax(1, false);
    assert_eq!(ints(&direct), ints(&study.bank().predicted.index_select(0, &Tensor::from_slice(&[0i64, 5, 11]))));
    // Purity of the top-2 prototypes under U = I from the study equals the
    // reference's argmax purity on a direct pass over those images.
    let d = Disentangler::identity(MatrixKind::Orthogonal, study.channels(), Device::Cpu).unwrap();
    let purities = study.purities(&d, 2).unwrap();
    let protos = study.bank().top_prototypes(None, 2).unwrap();
    // The bank's selection is the brute-force one on recomputed maps.
    let all = study.loader().images(&(0..study.len()).collect::<Vec<_>>()).unwrap().0;
    let sums = channel_activation(&study.network().features(&all).unwrap()).unwrap();
    assert_eq!(ints(&protos), ints(&top_prototypes(&sums, 2).unwrap()));
    let images: Vec<usize> = ints(&protos).into_iter().map(|i| i as usize).collect();
    let maps = study.loader().images(&images).unwrap().0;
    let z = study.network().features(&maps).unwrap();
    let channels = Tensor::arange(study.channels(), (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(2, 0, None);
    let expected = purity_argmax(&z, &channels).unwrap();
    assert!(max_abs_diff(&purities, &expected) < 1e-5, "{}", max_abs_diff(&purities, &expected));
    assert!(
        (study.purity(&d, 2).unwrap() - values(&expected).iter().sum::<f64>() / expected.numel() as f64).abs() < 1e-6
    );
}
