//! EPIC end to end on a transformer: `swin_v2_t` with seeded random weights on a
//! handful of Fashion-MNIST images (64×64: an 8×8 token grid after patch
//! embedding, a 2×2 map at the end). The logits are unchanged under a random
//! orthogonal U, purity and top-m prototypes from the study's bank equal a
//! direct pass, and the explanation figure boxes the cell where each channel
//! peaks, computed here independently from the rotated map.
mod common;
use common::*;
use epic::prelude::*;
use epic::render::figures::{explanation_size, explanation_tile_origin, TILE};
use std::sync::Arc;

/// swin_v2_t with random weights whose every parameter matters: layer norms
/// near 1, small random projections, biases and position-bias MLPs.
fn swin_v2_t() -> Network {
    let mut net = Network::new("swin_v2_t", 10, Device::Cpu).unwrap();
    let state: Vec<(String, Tensor)> = net
        .parameter_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let r = randn(&shape, 500 + i as u64);
            let t = if name.contains("norm") && name.ends_with("weight") {
                r * 0.1 + 1.0
            } else if name.ends_with("logit_scale") {
                Tensor::full(shape.as_slice(), 10f64.ln(), (Kind::Float, Device::Cpu))
            } else {
                r * 0.05
            };
            (name, t)
        })
        .collect();
    net.load_state_dict(&state, std::path::Path::new("random")).unwrap();
    net.set_sizes(64, 64);
    net
}

#[test]
fn epic_on_swin_v2_t_keeps_logits_selects_as_a_direct_pass_and_boxes_the_peaks() {
    let net = swin_v2_t();
    let c = net.channels();
    let train: Arc<dyn Dataset> = Arc::new(FashionMnist::open(None, "train", Some(1)).unwrap());
    let options = ExtractOptions { batch_size: BatchSize::Fixed(5), quiet: true, ..Default::default() };
    let study = Study::extract(net, train.clone(), &options).unwrap();
    assert_eq!((study.len(), study.channels(), study.bank().map_size), (10, 768, (2, 2)));

    // A random orthogonal U: exp(A − Aᵀ) of a seeded A.
    let d = Disentangler::from_raw(MatrixKind::Orthogonal, &(randn(&[c, c], 7) * 0.05)).unwrap();
    let u = d.matrix().unwrap();
    let loader = study.loader();
    let (images, _) = loader.images(&(0..10).collect::<Vec<_>>()).unwrap();
    let z = study.network().features(&images).unwrap();
    let change = max_logit_change(&z, study.network().head_weight(), study.network().head_bias(), &u).unwrap();
    assert!(change < 1e-4, "logits moved by {change}");

    // Top-3 prototypes under U from the bank = brute force on the rotated maps.
    let direct = top_prototypes(&channel_activation(&rotate(&z, &u).unwrap()).unwrap(), 3).unwrap();
    assert_eq!(ints(&study.bank().top_prototypes(Some(&u), 3).unwrap()), ints(&direct));
    // Their purity from the study = the reference's argmax purity of the rotated maps.
    let protos = ints(&direct);
    let rotated = rotate(&z, &u).unwrap().index_select(0, &Tensor::from_slice(&protos));
    let channels = Tensor::arange(c, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(3, 0, None);
    let expected = purity_argmax(&rotated, &channels).unwrap();
    let got = study.purities(&d, 3).unwrap();
    assert!(max_abs_diff(&got, &expected) < 1e-5, "purity off by {}", max_abs_diff(&got, &expected));

    // An explanation: its cells are where the rotated channel peaks, and the
    // figure boxes exactly those cells.
    let image = images.get(4);
    let e = study.explain(&d, &image, &ExplainOptions { channels: 2, prototypes: 2, class: None }).unwrap();
    let zr = rotate(&z.narrow(0, 4, 1), &u).unwrap().get(0);
    for (r, &ch) in e.channels.iter().enumerate() {
        let flat = zr.get(ch).reshape([-1]).argmax(0, false).int64_value(&[]);
        assert_eq!(e.cells[r], (flat / 2, flat % 2), "channel {ch}");
    }
    let fig = study.explanation_figure(&e, &image, false).unwrap();
    assert_eq!(fig.size(), explanation_size(2, 2));
    let png = fig.png().unwrap();
    // Kept for a look: target/tmp/swin_v2_t_explanation.png.
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("swin_v2_t_explanation.png");
    std::fs::write(&kept, &png).unwrap();
    eprintln!("explanation figure: {}", kept.display());
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    let yellow = |x: u32, y: u32| {
        let p = img.get_pixel(x, y);
        p[0] > 200 && p[1] > 180 && p[2] < 90
    };
    for (r, &(row, col)) in e.cells.iter().enumerate() {
        let (x, y) = explanation_tile_origin(r as u32, 0);
        let half = TILE / 2;
        // The box's top edge runs through the boxed quadrant, not the other one.
        let (bx, by) = (x + col as u32 * half + half / 2, y + row as u32 * half + 1);
        let (ox, oy) = (x + (1 - col as u32) * half + half / 2, y + (1 - row as u32) * half + 1);
        assert!(yellow(bx, by), "row {r}: no box edge at cell ({row}, {col})");
        assert!(!yellow(ox, oy), "row {r}: a box edge in the other cell");
    }
}
