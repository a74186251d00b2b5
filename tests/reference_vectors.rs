//! Every tensor in the reference vectors (made by the authors' Python code, see
//! tests/fixtures/SOURCE.md) is reproduced from its inputs by epic's library,
//! within 1e-5, and so are the three Adam losses and the schedules in expected.json.
mod common;
use common::*;
use epic::prelude::*;

const TOL: f64 = 1e-5;

fn assert_close(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.size(), want.size(), "{name}: shape");
    let err = max_abs_diff(got, want);
    eprintln!("{name:<28} max |Δ| = {err:.3e}");
    assert!(err <= TOL, "{name}: max |Δ| = {err:e} > {TOL:e}");
}

#[test]
fn matrices_rotation_and_activation() {
    let v = reference_vectors();
    let u = orthogonal_matrix_of(&v["a_raw"]);
    assert_close("orthogonal", &u, &v["orthogonal"]);
    assert_close("invertible", &epic::disentangle::invertible_matrix(&v["a_raw"]).unwrap(), &v["invertible"]);
    let rotated = rotate(&v["features"], &u).unwrap();
    assert_close("rotated", &rotated, &v["rotated"]);
    assert_close("activation_rotated", &channel_activation(&rotated).unwrap(), &v["activation_rotated"]);
    // The same sums from the un-rotated sums alone: Σ_hw(U z) = U Σ_hw z.
    let via_sums = rotate_sums(&channel_activation(&v["features"]).unwrap(), &u).unwrap();
    assert_close("activation_rotated (sums)", &via_sums, &v["activation_rotated"]);
}

/// The reference's f32 exponential (the free function follows A's dtype).
fn orthogonal_matrix_of(a: &Tensor) -> Tensor {
    epic::disentangle::orthogonal_matrix(a).unwrap()
}

#[test]
fn the_disentanglers_f64_u_agrees_and_is_orthogonal() {
    let v = reference_vectors();
    for (kind, name) in [(MatrixKind::Orthogonal, "orthogonal"), (MatrixKind::Invertible, "invertible")] {
        let d = Disentangler::from_raw(kind, &v["a_raw"]).unwrap();
        let u = d.matrix().unwrap();
        assert_close(&format!("{name} (Disentangler, f64)"), &u, &v[name]);
        let eye = Tensor::eye(16, (Kind::Float, Device::Cpu));
        assert!(max_abs_diff(&d.inverse().unwrap().matmul(&u), &eye) < 1e-6, "{name}: U⁻¹U");
    }
}

#[test]
fn purity_and_prototypes() {
    let v = reference_vectors();
    let e = reference_expected();
    let rotated = &v["rotated"];
    let p_plain = purity_argmax(&v["features"], &v["channels"]).unwrap();
    let p_rot = purity_argmax(rotated, &v["channels"]).unwrap();
    assert_close("purity_plain", &p_plain, &v["purity_plain"]);
    assert_close("purity_rotated", &p_rot, &v["purity_rotated"]);
    let mean = |t: &Tensor| values(t).iter().sum::<f64>() / t.numel() as f64;
    assert!((mean(&p_plain) - e["mean_purity_plain"].as_f64().unwrap()).abs() < TOL);
    assert!((mean(&p_rot) - e["mean_purity_rotated"].as_f64().unwrap()).abs() < TOL);

    let m = e["prototypes_per_channel"].as_i64().unwrap();
    let plain = top_prototypes(&channel_activation(&v["features"]).unwrap(), m).unwrap();
    assert_eq!(ints(&plain), ints(&v["prototypes_plain"]), "prototypes_plain");
    let rot = top_prototypes(&channel_activation(rotated).unwrap(), m).unwrap();
    assert_eq!(ints(&rot), ints(&v["prototypes_rotated"]), "prototypes_rotated");
}

#[test]
fn head_logits_and_explaining_channels() {
    let v = reference_vectors();
    let e = reference_expected();
    let (w, b) = (&v["fc_weight"], &v["fc_bias"]);
    let d = Disentangler::from_raw(MatrixKind::Orthogonal, &v["a_raw"]).unwrap();
    let u = d.matrix().unwrap();
    assert_close("logits", &logits(&v["features"], w, b).unwrap(), &v["logits"]);
    let w2 = modified_head(w, &u).unwrap();
    assert_close("head_weight_modified", &w2, &v["head_weight_modified"]);
    // The closed-form inverse gives the same head.
    assert_close("head_weight_modified (Uᵀ)", &w.matmul(&d.inverse().unwrap()), &v["head_weight_modified"]);
    let rotated = rotate(&v["features"], &u).unwrap();
    assert_close("logits_modified", &logits(&rotated, &w2, b).unwrap(), &v["logits_modified"]);

    let k = e["topk"].as_i64().unwrap();
    let top = top_channels(&rotated, &w2, b, k, None).unwrap();
    assert_eq!(ints(&top.classes), ints(&v["predicted"]), "predicted");
    assert_eq!(ints(&top.channels), ints(&v["topk_channels"]), "topk_channels");
    // Scores are sorted and are the named channels' contributions.
    let scores = values(&top.scores);
    for row in scores.chunks(k as usize) {
        assert!(row.windows(2).all(|p| p[0] >= p[1]), "scores not sorted: {row:?}");
    }

    let change = max_logit_change(&v["features"], w, b, &u).unwrap();
    let bound = e["max_abs_logit_change"].as_f64().unwrap();
    eprintln!("max logit change: {change:.3e} (reference {bound:.3e})");
    assert!(change < 1e-4);
}

#[test]
fn three_adam_steps_match_torch_optim_adam() {
    let v = reference_vectors();
    let e = reference_expected();
    let adam_e = &e["adam"];
    let mut d = Disentangler::from_raw(MatrixKind::Orthogonal, &v["a_raw"]).unwrap();
    let cfg = AdamConfig::new(adam_e["lr"].as_f64().unwrap(), adam_e["weight_decay"].as_f64().unwrap()).unwrap();
    let mut opt = Adam::new(d.a_raw(), cfg).unwrap();
    let b = v["features"].size()[0];
    for (s, want) in adam_e["losses"].as_array().unwrap().iter().enumerate() {
        let rows: Vec<i64> = (0..8).map(|i| (8 * s as i64 + i) % b).collect();
        let rows = Tensor::from_slice(&rows);
        let loss =
            purity_step(&mut d, &mut opt, &v["features"].index_select(0, &rows), &v["channels"].index_select(0, &rows))
                .unwrap();
        let want = want.as_f64().unwrap();
        eprintln!("adam loss {s}: {loss:.8} (reference {want:.8})");
        assert!((loss - want).abs() < TOL, "loss {s}: {loss} vs {want}");
    }
    assert_eq!(opt.steps(), 3);
    assert_close("a_raw_after_3_adam_steps", d.a_raw(), &v["a_raw_after_3_adam_steps"]);
    // The steps moved A by far more than the tolerance: the check has teeth.
    assert!(max_abs_diff(&v["a_raw"], &v["a_raw_after_3_adam_steps"]) > 100.0 * TOL);
}

#[test]
fn schedules_match_the_reference_except_lin_which_reaches_its_end() {
    let e = reference_expected();
    let want = |k: &str| -> Vec<usize> {
        e["schedules_100_5_10"][k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
    };
    let values = |k: ScheduleKind| Schedule::new(k, 100, 5, 10).unwrap().values();
    assert_eq!(values(ScheduleKind::Exp), want("exp"));
    assert_eq!(values(ScheduleKind::Log), want("log"));
    assert_eq!(values(ScheduleKind::LinReference), want("lin"));
    let lin = values(ScheduleKind::Lin);
    assert_eq!((lin[0], lin[9]), (100, 5));
    assert_eq!(want("lin")[9], 14, "the reference's linear schedule stops at 14");
}
