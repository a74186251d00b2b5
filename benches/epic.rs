//! EPIC's own costs at ImageNet-like shapes, without a backbone: prototype
//! selection from cached sums, purity of prototype maps, one training step (fast
//! and autograd gradients) and the math of one explanation, for C = 512
//! (ResNet-34), 1280 (EfficientNet-Lite0) and 2048 (ResNet-50).
//!
//! `cargo bench --bench epic` (or `make bench`). Under `cargo test` each runs once
//! at a tenth of the bank size. Results: benches/RESULTS.md.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use epic::disentangle::{purity_step_gathered, Adam, AdamConfig, Disentangler, Gradient, MatrixKind};
use epic::explain::{modified_head, top_channels};
use epic::features::rotate;
use epic::prototypes::{purity_argmax_under, top_prototypes};
use std::time::Duration;
use tch::{Device, Kind, Tensor};

/// (C, N sums): the bank sizes the selection runs on.
const SHAPES: [(i64, i64); 3] = [(512, 100_000), (1280, 50_000), (2048, 25_000)];

/// Full sizes under `cargo bench`, a tenth under `cargo test`.
fn scale(n: i64) -> i64 {
    if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        (n / 10).max(1)
    }
}

fn randn(shape: &[i64], seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

/// A disentangler with ‖A − Aᵀ‖₂ ≈ 1.8, the demo's after training.
fn trained(c: i64) -> Disentangler {
    let a = randn(&[c, c], 1) * (0.32 / (c as f64).sqrt());
    Disentangler::from_raw(MatrixKind::Orthogonal, &a).expect("disentangler")
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    g
}

/// Top-5 prototypes of every channel under U from N cached sums: sums·Uᵀ then top-m.
fn selection(c: &mut Criterion) {
    let mut g = group(c, "select_top5_under_u");
    for (ch, n) in SHAPES {
        let n = scale(n);
        let sums = randn(&[n, ch], 2).relu();
        let u = trained(ch).matrix().expect("U");
        g.bench_with_input(BenchmarkId::new(format!("C{ch}"), n), &n, |b, _| {
            b.iter(|| top_prototypes(&epic::features::rotate_sums(&sums, &u).expect("rotate"), 5).expect("top"))
        });
    }
    g.finish();
}

/// A bank's own selection of 100 prototypes per channel under U, from N sums
/// held in memory and from the same sums kept on disk in chunks of 4096
/// (`dataloader.bank_mib` below the bank), streamed chunk by chunk. Negative
/// prototypes take the same path as positive ones without the selection cache,
/// so every iteration selects.
fn bank_selection(c: &mut Criterion) {
    let mut g = group(c, "bank_select_top100_under_u");
    let tmp = tempfile::tempdir().expect("temporary folder");
    for (ch, n) in SHAPES {
        let n = scale(n);
        let sums = randn(&[n, ch], 2).relu();
        let labels = Tensor::zeros([n], (Kind::Int64, Device::Cpu));
        let valid = Tensor::ones([n], (Kind::Bool, Device::Cpu));
        let held = epic::features::Bank::new(sums, labels.shallow_clone(), labels, valid, (7, 7));
        let folder = tmp.path().join(format!("c{ch}"));
        held.save(&folder, 4096, "random", "random sums").expect("save");
        let disk = epic::features::Bank::open(&folder, Some(0)).expect("open");
        let u = trained(ch).matrix().expect("U");
        for (name, bank) in [("held", &held), ("disk", &disk)] {
            g.bench_with_input(BenchmarkId::new(format!("C{ch}/{name}"), n), &n, |b, _| {
                b.iter(|| bank.top_negative_prototypes(&u, 100.min(n)).expect("select"))
            });
        }
    }
    g.finish();
}

/// Argmax purity of 1024 prototype maps (7×7) under U: the chunk the trainer
/// measures at once.
fn purity(c: &mut Criterion) {
    let mut g = group(c, "purity_of_1024_prototypes");
    for (ch, _) in SHAPES {
        let maps = randn(&[1024, ch, 7, 7], 3).relu();
        let channels = (randn(&[1024], 9).abs() * 1e4).to_kind(Kind::Int64).remainder(ch);
        let u = trained(ch).matrix().expect("U");
        g.bench_with_input(BenchmarkId::new(format!("C{ch}"), 1024), &ch, |b, _| {
            b.iter(|| purity_argmax_under(&maps, &u, &channels).expect("purity"))
        });
    }
    g.finish();
}

/// One Adam step on 4096 (image, channel) pairs over 512 prototype images, 7×7
/// maps, at the demo's trained ‖A‖: the fast gradient against autograd.
fn training_step(c: &mut Criterion) {
    let mut g = group(c, "adam_step_4096_pairs");
    for (ch, _) in SHAPES {
        let maps = randn(&[512, ch, 7, 7], 4).relu();
        let rows = (randn(&[4096], 5).abs() * 1e4).to_kind(Kind::Int64).remainder(512);
        let channels = (randn(&[4096], 6).abs() * 1e4).to_kind(Kind::Int64).remainder(ch);
        for how in [Gradient::Fast, Gradient::Autograd] {
            // Autograd at C = 2048 exponentiates a 4096² block matrix: ~30 s a step here.
            if how == Gradient::Autograd && ch > 1280 {
                continue;
            }
            let mut d = trained(ch);
            let mut adam = Adam::new(d.a_raw(), AdamConfig::default()).expect("adam");
            g.bench_with_input(BenchmarkId::new(format!("{how}/C{ch}"), 4096), &ch, |b, _| {
                b.iter(|| purity_step_gathered(how, &mut d, &mut adam, &maps, &rows, &channels).expect("step"))
            });
        }
    }
    g.finish();
}

/// The math of one explanation after the backbone: rotate Z, A·Uᵀ, top-3 channels.
fn explanation(c: &mut Criterion) {
    let mut g = group(c, "explain_math_k1000");
    for (ch, _) in SHAPES {
        let z = randn(&[1, ch, 7, 7], 7).relu();
        let weight = randn(&[1000, ch], 8) * 0.01;
        let bias = Tensor::zeros([1000], (Kind::Float, Device::Cpu));
        let u = trained(ch).matrix().expect("U");
        g.bench_with_input(BenchmarkId::new(format!("C{ch}"), 1), &ch, |b, _| {
            b.iter(|| {
                let rotated = rotate(&z, &u).expect("rotate");
                let w = modified_head(&weight, &u).expect("head");
                top_channels(&rotated, &w, &bias, 3, None).expect("top channels")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, selection, bank_selection, purity, training_step, explanation);
criterion_main!(benches);
