//! Properties of the EPIC math on random inputs of several shapes, each checked
//! against an independent computation (brute-force sorts, plain-Rust Adam, the
//! definition of orthogonality and logit invariance).
mod common;
use common::*;
use epic::prelude::*;

/// (B, C, H, W) shapes: degenerate, odd, wide, tall, and ImageNet-ish channel counts.
const SHAPES: [(i64, i64, i64, i64); 6] =
    [(1, 1, 1, 1), (2, 3, 1, 4), (5, 8, 3, 3), (12, 16, 5, 5), (7, 33, 2, 7), (4, 128, 7, 7)];

fn random_features(b: i64, c: i64, h: i64, w: i64) -> Tensor {
    randn(&[b, c, h, w], seed()).relu()
}

/// A fresh seed per draw. Each test runs on its own thread, so the sequence is
/// the same in every run whatever the other tests do.
fn seed() -> u64 {
    thread_local!(static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(1) });
    NEXT.with(|n| {
        n.set(n.get() + 1);
        n.get()
    })
}

/// Integers uniform-ish in 0..n, int64 (from the seeded normal generator).
fn randint(n: i64, shape: &[i64]) -> Tensor {
    (randn(shape, seed()).abs() * 1e4).to_kind(Kind::Int64).remainder(n)
}

#[test]
fn orthogonal_u_is_orthogonal_and_starts_at_identity() {
    for &(_, c, _, _) in &SHAPES {
        // A ~ N(0, s²/C): U rotates by up to about 2√2·s radians, whatever C.
        // In f32 the error grows with s and C (see disentangle::matrix); s ≤ 0.3
        // covers training from U = I.
        for scale in [0.01, 0.1, 0.3] {
            let a = randn(&[c, c], seed()) * (scale / (c as f64).sqrt());
            let d = Disentangler::from_raw(MatrixKind::Orthogonal, &a).unwrap();
            let u = d.matrix().unwrap();
            let eye = Tensor::eye(c, (Kind::Float, Device::Cpu));
            // ‖·‖ is the largest entry: f32 rounding makes the Frobenius norm grow with C.
            let err = max_abs_diff(&u.tr().matmul(&u), &eye);
            assert!(err < 1e-5, "C = {c}, scale {scale}: ‖UᵀU − I‖_max = {err:e}");
            // The closed-form inverse is an inverse.
            let err = max_abs_diff(&d.inverse().unwrap().matmul(&u), &eye);
            assert!(err < 1e-5, "C = {c}: U⁻¹U − I = {err:e}");
        }
        for kind in [MatrixKind::Orthogonal, MatrixKind::Invertible] {
            let d = Disentangler::identity(kind, c, Device::Cpu).unwrap();
            let eye = Tensor::eye(c, (Kind::Float, Device::Cpu));
            assert_eq!(max_abs_diff(&d.matrix().unwrap(), &eye), 0.0, "{kind} identity start, C = {c}");
        }
    }
}

#[test]
fn invertible_u_has_exp_minus_a_as_inverse() {
    for &(_, c, _, _) in &SHAPES {
        let a = randn(&[c, c], seed()) * (0.5 / (c as f64).sqrt());
        let d = Disentangler::from_raw(MatrixKind::Invertible, &a).unwrap();
        let prod = d.inverse().unwrap().matmul(&d.matrix().unwrap());
        let err = max_abs_diff(&prod, &Tensor::eye(c, (Kind::Float, Device::Cpu)));
        assert!(err < 1e-5, "C = {c}: exp(−A)·exp(A) − I = {err:e}");
    }
}

#[test]
fn logits_are_unchanged_under_both_parametrisations() {
    for &(b, c, h, w) in &SHAPES {
        let z = random_features(b, c, h, w);
        let weight = randn(&[10, c], seed());
        let bias = randn(&[10], seed());
        for kind in [MatrixKind::Orthogonal, MatrixKind::Invertible] {
            let a = randn(&[c, c], seed()) * (0.5 / (c as f64).sqrt());
            let u = Disentangler::from_raw(kind, &a).unwrap().matrix().unwrap();
            let change = max_logit_change(&z, &weight, &bias, &u).unwrap();
            assert!(change < 1e-4, "{kind}, shape {:?}: logit change {change:e}", (b, c, h, w));
            // Independently: rotating is a per-pixel matmul, so pooled features rotate too.
            let rotated = rotate(&z, &u).unwrap();
            let pooled = z.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
            let err =
                max_abs_diff(&rotated.mean_dim([2i64, 3].as_slice(), false, Kind::Float), &pooled.matmul(&u.tr()));
            assert!(err < 1e-4, "{kind}: avgpool(UZ) vs U·avgpool(Z): {err:e}");
        }
    }
}

#[test]
fn purity_is_at_most_one_and_one_for_pure_pixels() {
    for &(b, c, h, w) in &SHAPES {
        let z = randn(&[b, c, h, w], seed()); // signed: the hard case
        let channels = randint(c, &[b]);
        let p = values(&purity_argmax(&z, &channels).unwrap());
        assert!(p.iter().all(|&x| (-1.0 - 1e-6..=1.0 + 1e-6).contains(&x)), "{p:?}");

        // Brute force on a few images: the peak pixel of the channel, then p_k/‖p‖.
        let zv = values(&z);
        let ch = ints(&channels);
        for i in 0..b as usize {
            let at = |k: usize, y: usize, x: usize| zv[((i * c as usize + k) * h as usize + y) * w as usize + x];
            let k = ch[i] as usize;
            let (mut best, mut by, mut bx) = (f64::NEG_INFINITY, 0, 0);
            for y in 0..h as usize {
                for x in 0..w as usize {
                    if at(k, y, x) > best {
                        (best, by, bx) = (at(k, y, x), y, x);
                    }
                }
            }
            let norm = (0..c as usize).map(|j| at(j, by, bx).powi(2)).sum::<f64>().sqrt().max(1e-8);
            assert!((p[i] - best / norm).abs() < 1e-5, "image {i}: {} vs {}", p[i], best / norm);
        }
    }
    // A pixel that is all channel 2 has purity exactly 1.
    let z = Tensor::zeros([1, 4, 2, 2], (Kind::Float, Device::Cpu));
    let _ = z.narrow(1, 2, 1).narrow(2, 1, 1).narrow(3, 0, 1).fill_(3.0);
    let p = purity_argmax(&z, &Tensor::from_slice(&[2i64])).unwrap();
    assert_eq!(values(&p), [1.0]);
}

/// Top-m by brute force: sort (−value, index) and take m.
fn brute_top(act: &[f64], n: usize, c: usize, m: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for k in 0..c {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| act[b * c + k].partial_cmp(&act[a * c + k]).unwrap().then(a.cmp(&b)));
        out.extend(idx[..m].iter().map(|&i| i as i64));
    }
    out
}

#[test]
fn top_prototypes_are_exact_sorted_and_break_ties_low() {
    for (n, c) in [(1, 1), (7, 3), (50, 16), (513, 40), (2000, 64)] {
        for ties in [false, true] {
            let act = if ties {
                // Few distinct values: many ties, the case streaming top-k gets wrong.
                randint(4, &[n, c]).to_kind(Kind::Float)
            } else {
                randn(&[n, c], seed())
            };
            for m in [1, n.min(5), n] {
                let got = ints(&top_prototypes(&act, m).unwrap());
                let want = brute_top(&values(&act), n as usize, c as usize, m as usize);
                assert_eq!(got, want, "n = {n}, C = {c}, m = {m}, ties = {ties}");
            }
        }
    }
    let act = randn(&[4, 2], seed());
    assert!(top_prototypes(&act, 5).unwrap_err().to_string().contains("the set has 4 images"));
    assert!(top_prototypes(&act, 0).is_err());
    let nan = Tensor::from_slice(&[1.0f32, f32::NAN, 0.5, 0.2]).reshape([2, 2]);
    match top_prototypes(&nan, 1) {
        Err(Error::NonFiniteAt { at, count, .. }) => assert_eq!((at, count), (vec![0, 1], 1), "the NaN at [0, 1]"),
        other => panic!("expected NonFiniteAt, got {other:?}"),
    }
}

#[test]
fn top_channels_rank_contributions_of_the_predicted_class() {
    for &(b, c, h, w) in &SHAPES {
        let z = random_features(b, c, h, w);
        let weight = randn(&[6, c], seed());
        let bias = randn(&[6], seed());
        let k = c.min(4);
        let top = top_channels(&z, &weight, &bias, k, None).unwrap();
        let pooled = values(&z.mean_dim([2i64, 3].as_slice(), false, Kind::Float));
        let wv = values(&weight);
        let lg = values(&logits(&z, &weight, &bias).unwrap());
        let (chans, scores, classes) = (ints(&top.channels), values(&top.scores), ints(&top.classes));
        for i in 0..b as usize {
            let pred = (0..6).max_by(|&x, &y| lg[i * 6 + x].partial_cmp(&lg[i * 6 + y]).unwrap()).unwrap();
            assert_eq!(classes[i], pred as i64);
            let contrib: Vec<f64> =
                (0..c as usize).map(|j| wv[pred * c as usize + j] * pooled[i * c as usize + j].max(0.0)).collect();
            let mut sorted = contrib.clone();
            sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
            for r in 0..k as usize {
                let ch = chans[i * k as usize + r] as usize;
                assert!((contrib[ch] - sorted[r]).abs() < 1e-5, "image {i}, rank {r}");
                assert!((scores[i * k as usize + r] - sorted[r]).abs() < 1e-5);
            }
        }
        // An explicit class is explained instead of the prediction.
        let cls = Tensor::full([b], 5, (Kind::Int64, Device::Cpu));
        assert_eq!(ints(&top_channels(&z, &weight, &bias, k, Some(&cls)).unwrap().classes), vec![5; b as usize]);
    }
}

#[test]
fn adam_matches_the_textbook_update_with_coupled_l2() {
    // Minimise f(θ) = ½‖θ − t‖² with Adam in epic and in plain f64 Rust.
    let target = [1.0, -2.0, 0.5, 3.0];
    let (lr, wd, b1, b2, eps) = (0.05, 0.01, 0.9, 0.999, 1e-8);
    let mut theta = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
    let mut opt = Adam::new(&theta, AdamConfig::new(lr, wd).unwrap()).unwrap();
    let (mut p, mut m, mut v) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
    for t in 1..=25 {
        let grad = &theta - Tensor::from_slice(&target.map(|x| x as f32)).reshape([2, 2]);
        opt.update(&mut theta, &grad).unwrap();
        for i in 0..4 {
            let g = (p[i] - target[i]) + wd * p[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let (mh, vh) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
            p[i] -= lr * mh / (vh.sqrt() + eps);
        }
    }
    let got = values(&theta);
    for i in 0..4 {
        assert!((got[i] - p[i]).abs() < 1e-5, "θ[{i}]: {} vs {}", got[i], p[i]);
    }
}

#[test]
fn a_purity_step_raises_the_purity_of_its_batch() {
    let z = random_features(16, 8, 4, 4);
    let channels = randint(8, &[16]);
    let mut d = Disentangler::identity(MatrixKind::Orthogonal, 8, Device::Cpu).unwrap();
    let mut opt = Adam::new(d.a_raw(), AdamConfig::new(1e-2, 0.0).unwrap()).unwrap();
    let first = purity_step(&mut d, &mut opt, &z, &channels).unwrap();
    let mut last = first;
    for _ in 0..30 {
        last = purity_step(&mut d, &mut opt, &z, &channels).unwrap();
    }
    assert!(last < first - 0.01, "loss {first} → {last}: purity did not rise");
    let u = d.matrix().unwrap();
    let err = max_abs_diff(&u.tr().matmul(&u), &Tensor::eye(8, (Kind::Float, Device::Cpu)));
    assert!(err < 1e-5, "U stays orthogonal through training: {err:e}");
}

#[test]
fn bad_arguments_are_errors_that_name_them() {
    let z = random_features(2, 4, 3, 3);
    let e = rotate(&z, &Tensor::eye(5, (Kind::Float, Device::Cpu))).unwrap_err().to_string();
    assert!(e.contains("features") && e.contains("[B,5,H,W]") && e.contains("[2, 4, 3, 3]"), "{e}");
    let e = purity_argmax(&z, &Tensor::from_slice(&[0i64, 9])).unwrap_err().to_string();
    assert!(e.contains("channels") && e.contains("9") && e.contains("0..4"), "{e}");
    let e = purity_argmax(&z.sum_dim_intlist([3i64].as_slice(), false, Kind::Float), &Tensor::from_slice(&[0i64, 1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("[B,C,H,W]"), "{e}");
    let e = "rotation".parse::<MatrixKind>().unwrap_err().to_string();
    assert!(e.contains("orthogonal") && e.contains("invertible"), "{e}");
    let e = top_channels(&z, &randn(&[3, 4], seed()), &Tensor::zeros([2], (Kind::Float, Device::Cpu)), 2, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bias") && e.contains("[3]"), "{e}");
}

#[test]
fn an_f64_raw_matrix_gives_an_orthogonal_u_at_any_size() {
    // The escape hatch documented in disentangle::matrix: f32 error grows with C
    // and ‖A‖, f64 does not matter at these sizes.
    for c in [128, 512] {
        let a = randn(&[c, c], seed()).to_kind(Kind::Double) * (1.0 / (c as f64).sqrt());
        let u = epic::disentangle::orthogonal_matrix(&a).unwrap();
        assert_eq!(u.kind(), Kind::Double);
        let err = max_abs_diff(&u.tr().matmul(&u), &Tensor::eye(c, (Kind::Double, Device::Cpu)));
        assert!(err < 1e-12, "C = {c}: {err:e}");
    }
}

#[test]
fn purity_under_u_equals_purity_of_rotated_maps() {
    for &(b, c, h, w) in &SHAPES {
        let z = random_features(b, c, h, w);
        let channels = randint(c, &[b]);
        let a = randn(&[c, c], seed()) * (0.3 / (c as f64).sqrt());
        for kind in [MatrixKind::Orthogonal, MatrixKind::Invertible] {
            let u = Disentangler::from_raw(kind, &a).unwrap().matrix().unwrap();
            let slow = purity_argmax(&rotate(&z, &u).unwrap(), &channels).unwrap();
            let fast = epic::prototypes::purity_argmax_under(&z, &u, &channels).unwrap();
            assert!(max_abs_diff(&slow, &fast) < 1e-5, "{kind} {:?}: {}", (b, c, h, w), max_abs_diff(&slow, &fast));
        }
    }
}

/// ‖a − b‖_F / ‖b‖_F, in f64.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    (&a - &b).norm().double_value(&[]) / b.norm().double_value(&[]).max(1e-300)
}

/// dL/dA for L = ⟨G, U(A)⟩ by autograd through libtorch's matrix_exp, in f64.
fn autograd_gradient(kind: MatrixKind, a: &Tensor, g: &Tensor) -> Tensor {
    let a = a.to_kind(Kind::Double).detach().set_requires_grad(true);
    let u = kind.matrix(&a).unwrap();
    (u * g.to_kind(Kind::Double)).sum(Kind::Double).backward();
    a.grad()
}

#[test]
fn the_closed_form_gradient_through_exp_equals_autograd() {
    use epic::disentangle::gradient::raw_gradient;
    for kind in [MatrixKind::Orthogonal, MatrixKind::Invertible] {
        for c in [1i64, 8, 64, 256] {
            // ‖A‖₂ from 0 (the identity, where training starts) to ~6, beyond the
            // demo's trained 1.8: the squarings must carry the large ones.
            for s in [0.0, 0.05, 0.5, 1.5, 3.0] {
                let a = randn(&[c, c], seed()) * (s / (c as f64).sqrt());
                let g = randn(&[c, c], seed()) * 1e-3;
                let want = autograd_gradient(kind, &a, &g);
                let got = raw_gradient(kind, &a, &g).unwrap().expect("the series converges at these norms");
                assert_eq!(got.kind(), Kind::Float);
                // The f32 autograd gradient is the yardstick for f32 rounding.
                let f32_autograd = {
                    let a = a.detach().set_requires_grad(true);
                    (kind.matrix(&a).unwrap() * &g).sum(Kind::Float).backward();
                    a.grad()
                };
                let (e_fast, e_auto) = (rel_err(&got, &want), rel_err(&f32_autograd, &want));
                assert!(
                    e_fast < 2e-5 && e_fast < 20.0 * e_auto.max(1e-7),
                    "{kind} C = {c}, s = {s}: fast {e_fast:e}, f32 autograd {e_auto:e}"
                );
            }
        }
    }
}

#[test]
fn the_gradient_through_a_few_rows_of_u_equals_autograd() {
    use epic::disentangle::columns::orthogonal_gradient;
    let mut checked = 0;
    for c in [1i64, 8, 64, 256] {
        // ‖A − Aᵀ‖₂ ≈ 2√2·s: from the identity to ~3.4, near the path's limit of 4.
        for s in [0.0, 0.05, 0.5, 0.9, 1.2] {
            let a = randn(&[c, c], seed()) * (s / (c as f64).sqrt());
            // A batch naming w of the C channels: G is nonzero in those rows only.
            let w = (c / 4).max(1);
            let rows = randn(&[c], seed()).argsort(0, false).narrow(0, 0, w);
            let g_rows = randn(&[w, c], seed()) * 1e-3;
            let g = Tensor::zeros([c, c], (Kind::Float, Device::Cpu)).index_add(0, &rows, &g_rows);
            let want = autograd_gradient(MatrixKind::Orthogonal, &a, &g);
            let Some((got, u_rows)) = orthogonal_gradient(&a, &rows, &g_rows).unwrap() else { continue };
            checked += 1;
            let u = epic::disentangle::orthogonal_matrix(&a.to_kind(Kind::Double)).unwrap();
            let e_rows = rel_err(&u_rows, &u.index_select(0, &rows));
            assert!(e_rows < 1e-5, "C = {c}, s = {s}: rows of U off by {e_rows:e}");
            let f32_autograd = {
                let a = a.detach().set_requires_grad(true);
                (MatrixKind::Orthogonal.matrix(&a).unwrap() * &g).sum(Kind::Float).backward();
                a.grad()
            };
            let (e_fast, e_auto) = (rel_err(&got, &want), rel_err(&f32_autograd, &want));
            assert!(
                e_fast < 2e-5 && e_fast < 20.0 * e_auto.max(1e-7),
                "C = {c}, s = {s}: rows {e_fast:e}, f32 autograd {e_auto:e}"
            );
        }
    }
    // Every norm but the largest at large C is within the path's reach.
    assert!(checked >= 18, "only {checked} of 20 cases ran the rows path");
}

#[test]
fn orthogonal_purity_equals_purity_under_u_when_u_is_orthogonal() {
    for &(b, c, h, w) in &SHAPES {
        let z = random_features(b, c, h, w);
        let channels = randint(c, &[b]);
        let a = randn(&[c, c], seed()).to_kind(Kind::Double) * (0.5 / (c as f64).sqrt());
        let u = epic::disentangle::orthogonal_matrix(&a).unwrap().to_kind(Kind::Float);
        let fast = purity_argmax_orthogonal(&z, &u, &channels).unwrap();
        let full = purity_argmax_under(&z, &u, &channels).unwrap();
        assert!(max_abs_diff(&fast, &full) < 1e-6, "({b},{c},{h},{w}): {:e}", max_abs_diff(&fast, &full));
    }
}

#[test]
fn fast_and_autograd_training_steps_agree() {
    // 64 pairs over 48 channels take the whole exponential; 16 pairs over 128
    // channels, orthogonal, only the rows of U they name (disentangle::columns:
    // (3·11 − 2)·16/128 ≈ 4 products against the whole path's 15).
    for ((c, b), kind) in [(48, 64), (128, 16)]
        .into_iter()
        .flat_map(|shape| [MatrixKind::Orthogonal, MatrixKind::Invertible].map(|kind| (shape, kind)))
    {
        let z = random_features(b, c, 4, 4);
        let channels = randint(c, &[b]);
        let start = randn(&[c, c], seed()) * (0.3 / (c as f64).sqrt());
        let run = |how: Gradient| {
            let mut d = Disentangler::from_raw(kind, &start).unwrap();
            let mut opt = Adam::new(d.a_raw(), AdamConfig::new(1e-3, 1e-5).unwrap()).unwrap();
            let losses: Vec<f64> =
                (0..5).map(|_| purity_step_with(how, &mut d, &mut opt, &z, &channels).unwrap()).collect();
            (losses, d.a_raw_copy().unwrap())
        };
        let (fast, a_fast) = run(Gradient::Fast);
        let (auto, a_auto) = run(Gradient::Autograd);
        for (f, a) in fast.iter().zip(&auto) {
            assert!((f - a).abs() < 1e-6, "{kind} C = {c}: losses {fast:?} vs {auto:?}");
        }
        // Five steps of lr 1e-3 move A by ~5e-3; the two paths agree far below that.
        let moved = max_abs_diff(&a_auto, &start);
        let apart = max_abs_diff(&a_fast, &a_auto);
        assert!(moved > 1e-3 && apart < 1e-2 * moved, "{kind} C = {c}: moved {moved:e}, apart {apart:e}");
    }
}

#[test]
fn purity_of_pairs_equals_purity_of_gathered_maps() {
    for &(b, c, h, w) in &SHAPES {
        let maps = random_features(b, c, h, w);
        for pairs in [1i64, 3 * b, 40] {
            // Skewed rows: image 0 takes half the pairs, so groups split.
            let rows = randint(b, &[pairs]) * randint(2, &[pairs]);
            let channels = randint(c, &[pairs]);
            let a = randn(&[c, c], seed()).to_kind(Kind::Double) * (0.5 / (c as f64).sqrt());
            let u = epic::disentangle::orthogonal_matrix(&a).unwrap().to_kind(Kind::Float);
            let want = purity_argmax_under(&maps.index_select(0, &rows), &u, &channels).unwrap();
            for orthogonal in [false, true] {
                let got = purity_argmax_pairs(&maps, &rows, &channels, &u, orthogonal).unwrap();
                let diff = max_abs_diff(&got, &want);
                assert!(diff < 1e-5, "({b},{c},{h},{w}) × {pairs}, orthogonal {orthogonal}: {diff:e}");
            }
            // The gradient in U reaches the same rows.
            let leaf = u.detach().set_requires_grad(true);
            purity_argmax_pairs(&maps, &rows, &channels, &leaf, false).unwrap().sum(Kind::Float).backward();
            let g1 = leaf.grad();
            let leaf = u.detach().set_requires_grad(true);
            purity_argmax_under(&maps.index_select(0, &rows), &leaf, &channels).unwrap().sum(Kind::Float).backward();
            assert!(max_abs_diff(&g1, &leaf.grad()) < 1e-4, "gradients: {:e}", max_abs_diff(&g1, &leaf.grad()));
        }
    }
    let e = purity_argmax_pairs(
        &random_features(2, 4, 3, 3),
        &Tensor::from_slice(&[0i64, 5]),
        &Tensor::from_slice(&[0i64, 1]),
        &Tensor::eye(4, (Kind::Float, Device::Cpu)),
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("rows") && e.contains('5'), "{e}");
}
